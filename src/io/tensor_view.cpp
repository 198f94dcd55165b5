// Model-file tensors as bitnet::Tensor views of the mapping (no copy) for the plain element types.
#include <bitnet/error.h>
#include <bitnet/model_files.h>
#include <bitnet/safetensors.h>

#include <cstdint>

namespace bitnet {

namespace {
Tensor view_or_copy(const std::shared_ptr<MappedFile>& file, std::span<const std::byte> data, const Shape& shape,
                    DType dtype) {
  // A tensor whose bytes are not aligned to its element size (possible with general.alignment 1 or 2) is copied,
  // so typed loads stay aligned.
  if (file && reinterpret_cast<uintptr_t>(data.data()) % dtype_size(dtype) == 0)
    return Tensor::from_mapped(file, static_cast<size_t>(data.data() - file->data()), shape, dtype);
  return Tensor::from_bytes(data.data(), shape, dtype);
}
}  // namespace

Tensor gguf_tensor_view(const GgufFile& f, std::string_view name) {
  const GgufTensorInfo& t = f.tensor(name);
  DType dtype;
  switch (t.type) {
    case GgmlType::f32: dtype = DType::f32; break;
    case GgmlType::f16: dtype = DType::f16; break;
    case GgmlType::bf16: dtype = DType::bf16; break;
    case GgmlType::i8: dtype = DType::i8; break;
    case GgmlType::i32: dtype = DType::i32; break;
    default:
      fail("{}: tensor '{}' is {}, which has no plain Tensor dtype (unpack it with ternary_formats.h)", f.path(), name,
           ggml_type_name(t.type));
  }
  return view_or_copy(f.mapping(), f.tensor_data(t), t.torch_shape(), dtype);
}

Tensor safetensors_tensor_view(const SafetensorsModel& m, std::string_view name) {
  const auto& e = m.tensor(name);
  DType dtype;
  switch (e.info->dtype) {
    case StDType::f32: dtype = DType::f32; break;
    case StDType::f16: dtype = DType::f16; break;
    case StDType::bf16: dtype = DType::bf16; break;
    case StDType::i8: dtype = DType::i8; break;
    case StDType::u8: dtype = DType::u8; break;
    case StDType::i32: dtype = DType::i32; break;
    default:
      fail("{}: tensor '{}' has dtype {}, which has no Tensor dtype", m.source(), name, st_dtype_name(e.info->dtype));
  }
  return view_or_copy(e.file->mapping(), m.data(e), e.info->shape, dtype);
}

}  // namespace bitnet
