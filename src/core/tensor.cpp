#include <bitnet/tensor.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/element.h"
#include "core/strided_loop.h"
#include "kernels/convert.h"

namespace bitnet {

// --- shapes --------------------------------------------------------------------------------------------
int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    BITNET_CHECK(d >= 0, "[tensor] negative dimension in shape {}", shape_str(shape));
    BITNET_CHECK(d == 0 || n <= INT64_MAX / d, "[tensor] shape {} has too many elements", shape_str(shape));
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      fail("[{}] shapes {} and {} do not broadcast (dimension {}: {} vs {})", op, shape_str(a), shape_str(b),
           i, da, db);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Strides contiguous_strides(const Shape& shape) {
  Strides s(shape.size());
  int64_t step = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    s[i] = step;
    step *= std::max<int64_t>(shape[i], 1);
  }
  return s;
}

// --- construction ----------------------------------------------------------------------------------------
Tensor::Tensor(std::shared_ptr<Storage> storage, DType dtype, Shape shape, Strides strides, int64_t offset)
    : storage_(std::move(storage)), dtype_(dtype), shape_(std::move(shape)), strides_(std::move(strides)),
      offset_(offset) {}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  const int64_t n = shape_numel(shape);
  BITNET_CHECK(static_cast<uint64_t>(n) <= (uint64_t{1} << 48) / dtype_size(dtype),
               "[tensor] shape {} of {} is too large to allocate", shape_str(shape), dtype_name(dtype));
  auto storage = Storage::allocate(static_cast<size_t>(n) * dtype_size(dtype));
  return Tensor(std::move(storage), dtype, shape, contiguous_strides(shape), 0);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.data(), 0, t.nbytes());  // all-zero bytes are 0 in every dtype
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::byte pattern[8];
  detail::store_element(pattern, dtype, value);
  auto* p = static_cast<std::byte*>(t.data());
  const size_t es = t.element_size();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) std::memcpy(p + i * es, pattern, es);
  return t;
}

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, dtype);
  auto* p = static_cast<std::byte*>(t.data());
  for (int64_t i = 0; i < n; ++i) detail::store_element(p + i * t.element_size(), dtype, static_cast<double>(i));
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  BITNET_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
               "[tensor] from_vector: {} values do not fill shape {}", values.size(), shape_str(shape));
  return from_bytes(values.data(), shape, DType::f32);
}

Tensor Tensor::from_bytes(const void* data, const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  if (t.nbytes() > 0) std::memcpy(t.data(), data, t.nbytes());
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, bool read_only) {
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(Storage::external(data, bytes, read_only), dtype, shape, contiguous_strides(shape), 0);
}

Tensor Tensor::from_mapped(std::shared_ptr<MappedFile> file, size_t offset, const Shape& shape, DType dtype) {
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(Storage::mapped(std::move(file), offset, bytes), dtype, shape, contiguous_strides(shape), 0);
}

Tensor Tensor::from_arena(Arena& arena, const Shape& shape, DType dtype) {
  const size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return wrap(arena.alloc(bytes), shape, dtype);
}

// --- properties ------------------------------------------------------------------------------------------
int64_t Tensor::wrap_dim(int64_t dim, int64_t ndim_plus) const {
  const int64_t n = ndim() + ndim_plus;
  const int64_t d = dim < 0 ? dim + n : dim;
  BITNET_CHECK(d >= 0 && d < std::max<int64_t>(n, 1) && (n > 0 || d == 0),
               "[tensor] dimension {} out of range for a {}-d tensor", dim, ndim());
  return d;
}

int64_t Tensor::size(int64_t dim) const { return shape_[static_cast<size_t>(wrap_dim(dim))]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] == 1) continue;
    if (strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

bool Tensor::read_only() const { return storage_ && storage_->read_only(); }

std::string Tensor::str() const { return fmt::format("Tensor({}, {})", dtype_name(dtype_), shape_str(shape_)); }

void* Tensor::data() {
  BITNET_CHECK(defined(), "[tensor] access to an undefined tensor");
  BITNET_CHECK(!storage_->read_only(), "[tensor] {} is read-only (memory-mapped); clone() it to modify", str());
  return storage_->data() + offset_ * static_cast<int64_t>(element_size());
}

const void* Tensor::data() const {
  BITNET_CHECK(defined(), "[tensor] access to an undefined tensor");
  return storage_->data() + offset_ * static_cast<int64_t>(element_size());
}

double Tensor::item() const {
  BITNET_CHECK(numel() == 1, "[item] tensor {} has {} elements, not 1", str(), numel());
  return detail::load_element(static_cast<const std::byte*>(data()), dtype_);
}

double Tensor::at(std::span<const int64_t> index) const {
  BITNET_CHECK(static_cast<int64_t>(index.size()) == ndim(), "[at] {} indices for a {}-d tensor",
               index.size(), ndim());
  int64_t off = 0;
  for (size_t d = 0; d < index.size(); ++d) {
    const int64_t i = index[d] < 0 ? index[d] + shape_[d] : index[d];
    BITNET_CHECK(i >= 0 && i < shape_[d], "[at] index {} out of range for dimension {} of size {}", index[d], d,
                 shape_[d]);
    off += i * strides_[d];
  }
  return detail::load_element(static_cast<const std::byte*>(data()) + off * static_cast<int64_t>(element_size()),
                              dtype_);
}

double Tensor::at(std::initializer_list<int64_t> index) const {
  return at(std::span<const int64_t>(index.begin(), index.size()));
}

void Tensor::set(std::initializer_list<int64_t> index, double value) {
  BITNET_CHECK(static_cast<int64_t>(index.size()) == ndim(), "[set] {} indices for a {}-d tensor", index.size(),
               ndim());
  int64_t off = 0;
  size_t d = 0;
  for (int64_t idx : index) {
    const int64_t i = idx < 0 ? idx + shape_[d] : idx;
    BITNET_CHECK(i >= 0 && i < shape_[d], "[set] index {} out of range for dimension {} of size {}", idx, d,
                 shape_[d]);
    off += i * strides_[d++];
  }
  detail::store_element(static_cast<std::byte*>(data()) + off * static_cast<int64_t>(element_size()), dtype_,
                        value);
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = to(DType::f32).contiguous();
  const auto* p = c.data_as<float>();
  return std::vector<float>(p, p + c.numel());
}

// --- views -----------------------------------------------------------------------------------------------
Tensor Tensor::slice(int64_t dim, int64_t start, int64_t stop, int64_t step) const {
  const auto d = static_cast<size_t>(wrap_dim(dim));
  BITNET_CHECK(step > 0, "[slice] step must be positive, got {}", step);
  const int64_t n = shape_[d];
  auto clamp = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  const int64_t b = clamp(start), e = std::max(clamp(stop), clamp(start));
  Shape shape = shape_;
  Strides strides = strides_;
  shape[d] = (e - b + step - 1) / step;
  strides[d] = strides_[d] * step;
  return Tensor(storage_, dtype_, shape, strides, offset_ + b * strides_[d]);
}

Tensor Tensor::select(int64_t dim, int64_t index) const {
  const auto d = static_cast<size_t>(wrap_dim(dim));
  const int64_t i = index < 0 ? index + shape_[d] : index;
  BITNET_CHECK(i >= 0 && i < shape_[d], "[select] index {} out of range for dimension {} of size {}", index, d,
               shape_[d]);
  Shape shape = shape_;
  Strides strides = strides_;
  shape.erase(shape.begin() + static_cast<int64_t>(d));
  strides.erase(strides.begin() + static_cast<int64_t>(d));
  return Tensor(storage_, dtype_, shape, strides, offset_ + i * strides_[d]);
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  const auto a = static_cast<size_t>(wrap_dim(dim0)), b = static_cast<size_t>(wrap_dim(dim1));
  Shape shape = shape_;
  Strides strides = strides_;
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  return Tensor(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::t() const {
  BITNET_CHECK(ndim() == 2, "[t] expects a 2-d tensor, got {}", str());
  return transpose(0, 1);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  BITNET_CHECK(static_cast<int64_t>(dims.size()) == ndim(), "[permute] {} dims given for a {}-d tensor",
               dims.size(), ndim());
  std::vector<bool> seen(dims.size(), false);
  Shape shape(dims.size());
  Strides strides(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    const auto d = static_cast<size_t>(wrap_dim(dims[i]));
    BITNET_CHECK(!seen[d], "[permute] dimension {} repeated in {}", d, shape_str(dims));
    seen[d] = true;
    shape[i] = shape_[d];
    strides[i] = strides_[d];
  }
  return Tensor(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::squeeze() const {
  Shape shape;
  Strides strides;
  for (size_t i = 0; i < shape_.size(); ++i)
    if (shape_[i] != 1) {
      shape.push_back(shape_[i]);
      strides.push_back(strides_[i]);
    }
  return Tensor(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::squeeze(int64_t dim) const {
  const auto d = static_cast<size_t>(wrap_dim(dim));
  BITNET_CHECK(shape_[d] == 1, "[squeeze] dimension {} has size {}, not 1", dim, shape_[d]);
  return select(static_cast<int64_t>(d), 0);
}

Tensor Tensor::unsqueeze(int64_t dim) const {
  const auto d = static_cast<size_t>(wrap_dim(dim, 1));
  Shape shape = shape_;
  Strides strides = strides_;
  const int64_t stride = d < shape_.size() ? strides_[d] * shape_[d] : 1;
  shape.insert(shape.begin() + static_cast<int64_t>(d), 1);
  strides.insert(strides.begin() + static_cast<int64_t>(d), stride);
  return Tensor(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::broadcast_to(const Shape& shape) const {
  BITNET_CHECK(shape.size() >= shape_.size(), "[broadcast_to] cannot broadcast {} to fewer dims {}",
               shape_str(shape_), shape_str(shape));
  const size_t lead = shape.size() - shape_.size();
  Strides strides(shape.size(), 0);
  for (size_t i = 0; i < shape_.size(); ++i) {
    const int64_t want = shape[lead + i];
    if (shape_[i] == want) {
      strides[lead + i] = strides_[i];
    } else {
      BITNET_CHECK(shape_[i] == 1, "[broadcast_to] cannot broadcast {} to {} (dimension {}: {} vs {})",
                   shape_str(shape_), shape_str(shape), lead + i, shape_[i], want);
    }
  }
  return Tensor(storage_, dtype_, shape, strides, offset_);
}

Tensor Tensor::view(const Shape& shape) const {
  BITNET_CHECK(is_contiguous(), "[view] {} is not contiguous; use reshape() (which copies) or contiguous()",
               str());
  Shape resolved = shape;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      BITNET_CHECK(infer < 0, "[view] only one dimension may be -1 in {}", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      BITNET_CHECK(resolved[i] >= 0, "[view] invalid dimension {} in {}", resolved[i], shape_str(shape));
      known *= resolved[i];
    }
  }
  if (infer >= 0) {
    BITNET_CHECK(known != 0 && numel() % known == 0, "[view] cannot infer -1 in {} for {} elements",
                 shape_str(shape), numel());
    resolved[static_cast<size_t>(infer)] = numel() / known;
  }
  BITNET_CHECK(shape_numel(resolved) == numel(), "[view] shape {} does not hold {} elements of {}",
               shape_str(shape), numel(), str());
  return Tensor(storage_, dtype_, resolved, contiguous_strides(resolved), offset_);
}

// --- copies ----------------------------------------------------------------------------------------------
Tensor Tensor::reshape(const Shape& shape) const { return is_contiguous() ? view(shape) : contiguous().view(shape); }

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape_, dtype_);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor out = empty(shape_, dtype);
  out.copy_from(*this);
  return out;
}

void Tensor::copy_from(const Tensor& src) {
  BITNET_CHECK(src.defined(), "[copy] source tensor is undefined");
  const Tensor s = src.broadcast_to(shape_);
  auto* dst_base = static_cast<std::byte*>(data());
  const auto* src_base = static_cast<const std::byte*>(s.data());
  if (s.is_contiguous() && is_contiguous() && kernels::convert_contiguous(src_base, s.dtype_, dst_base, dtype_, numel()))
    return;
  const DType sd = s.dtype_, dd = dtype_;
  detail::StridedLoop<2> loop(shape_, {detail::byte_strides(*this), detail::byte_strides(s)});
  loop.run({dst_base, const_cast<std::byte*>(src_base)}, [&](auto p, auto st, int64_t n) {
    if (sd == dd) {
      const size_t es = dtype_size(dd);
      for (int64_t i = 0; i < n; ++i) std::memcpy(p[0] + i * st[0], p[1] + i * st[1], es);
    } else {
      for (int64_t i = 0; i < n; ++i)
        detail::store_element(p[0] + i * st[0], dd, detail::load_element(p[1] + i * st[1], sd));
    }
  });
}

}  // namespace bitnet
