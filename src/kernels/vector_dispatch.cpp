#include <bitnet/dtype.h>

#include <cstring>

#include "kernels/convert.h"
#include "kernels/vector.h"

namespace bitnet::kernels {

namespace ref { extern const VectorKernels kVectorKernels; }
#if defined(__x86_64__)
namespace avx2 { extern const VectorKernels kVectorKernels; }
namespace avx512 { extern const VectorKernels kVectorKernels; }
#endif
#if defined(__aarch64__)
namespace neon { extern const VectorKernels kVectorKernels; }
#endif

const Family<VectorKernels>& vector_family() {
  static const Family<VectorKernels> family("vector_f32", {
      &ref::kVectorKernels,
#if defined(__x86_64__)
      &avx2::kVectorKernels, &avx512::kVectorKernels, nullptr,
#elif defined(__aarch64__)
      nullptr, nullptr, &neon::kVectorKernels,
#else
      nullptr, nullptr, nullptr,
#endif
  });
  return family;
}

bool convert_contiguous(const std::byte* src, DType st, std::byte* dst, DType dt, int64_t n) {
  if (st == dt) {
    std::memcpy(dst, src, static_cast<size_t>(n) * dtype_size(st));
    return true;
  }
  const VectorKernels& k = vector_kernels();
  const auto* f = reinterpret_cast<const float*>(src);
  const auto* h = reinterpret_cast<const uint16_t*>(src);
  if (st == DType::f32 && dt == DType::f16) k.f32_to_f16(f, reinterpret_cast<uint16_t*>(dst), n);
  else if (st == DType::f32 && dt == DType::bf16) k.f32_to_bf16(f, reinterpret_cast<uint16_t*>(dst), n);
  else if (st == DType::f16 && dt == DType::f32) k.f16_to_f32(h, reinterpret_cast<float*>(dst), n);
  else if (st == DType::bf16 && dt == DType::f32) k.bf16_to_f32(h, reinterpret_cast<float*>(dst), n);
  else return false;
  return true;
}

}  // namespace bitnet::kernels
