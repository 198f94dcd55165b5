#pragma once
// bitnet::Tensor: an n-dimensional strided view of typed elements over shared Storage. Views (slice,
// transpose, permute, squeeze, unsqueeze, broadcast_to, view) never copy; contiguous(), clone(), to() do.
#include <bitnet/dtype.h>
#include <bitnet/error.h>
#include <bitnet/memory.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace bitnet {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;  // in elements, may be 0 (broadcast) or negative never

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);
// NumPy broadcasting of two shapes; throws naming `op` and both shapes when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op = "broadcast");

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: defined() is false

  // --- creation (all results are contiguous and own their memory) ---------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
  static Tensor arange(int64_t n, DType dtype = DType::f32);
  static Tensor scalar(double value, DType dtype = DType::f32);  // 0-d
  // Copies `values` (as f32) into a new tensor of `shape`; numel must match.
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  // Copies raw bytes of `dtype` elements laid out contiguously.
  static Tensor from_bytes(const void* data, const Shape& shape, DType dtype);
  // Views memory owned elsewhere without copying; the caller keeps it alive.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, bool read_only = false);
  // Views `shape` elements at byte `offset` of a mapped file without copying (read-only).
  static Tensor from_mapped(std::shared_ptr<MappedFile> file, size_t offset, const Shape& shape, DType dtype);
  // Scratch tensor carved from an arena (valid until the arena is reset).
  static Tensor from_arena(Arena& arena, const Shape& shape, DType dtype = DType::f32);

  // --- properties -----------------------------------------------------------------------------------------
  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }
  int64_t ndim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t dim) const;  // negative dims count from the end
  int64_t numel() const { return shape_numel(shape_); }
  size_t element_size() const { return dtype_size(dtype_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(); }
  int64_t offset() const { return offset_; }  // in elements, into storage
  bool is_contiguous() const;
  bool read_only() const;
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  std::string str() const;  // "Tensor(f32, [2, 3])"

  // Pointer to element 0 of this view. data() throws on a read-only tensor.
  void* data();
  const void* data() const;
  const void* cdata() const { return data(); }
  template <class T>
  T* data_as() {
    return static_cast<T*>(data());
  }
  template <class T>
  const T* data_as() const {
    return static_cast<const T*>(data());
  }

  // Element access by index (slow; for tests and small work). Values go through double.
  double item() const;  // requires numel() == 1
  double at(std::initializer_list<int64_t> index) const;
  double at(std::span<const int64_t> index) const;
  void set(std::initializer_list<int64_t> index, double value);
  std::vector<float> to_vector() const;  // all elements in row-major order, as f32

  // --- views (no copy) ----------------------------------------------------------------------------------
  Tensor slice(int64_t dim, int64_t start, int64_t stop, int64_t step = 1) const;  // Python semantics
  Tensor select(int64_t dim, int64_t index) const;                                   // drops the dim
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;  // 2-D transpose
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor broadcast_to(const Shape& shape) const;
  Tensor view(const Shape& shape) const;  // requires contiguity; one dim may be -1

  // --- copies -------------------------------------------------------------------------------------------
  Tensor reshape(const Shape& shape) const;  // a view when contiguous, else a copy
  Tensor contiguous() const;                 // this tensor itself when already contiguous
  Tensor clone() const;
  Tensor to(DType dtype) const;  // rounding: RNE for f16/bf16; float->int truncates toward zero, saturates
  void copy_from(const Tensor& src);  // src broadcast to this shape, converted to this dtype

 private:
  Tensor(std::shared_ptr<Storage> storage, DType dtype, Shape shape, Strides strides, int64_t offset);
  int64_t wrap_dim(int64_t dim, int64_t ndim_plus = 0) const;

  std::shared_ptr<Storage> storage_;
  DType dtype_ = DType::f32;
  Shape shape_;
  Strides strides_;
  int64_t offset_ = 0;
};

Strides contiguous_strides(const Shape& shape);

}  // namespace bitnet
