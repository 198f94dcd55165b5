#pragma once
// Reverse-mode automatic differentiation over bitnet::Tensor. A Var is a tensor value plus, when it was made
// by an op on Vars that need gradients, the node that knows how to send a gradient back to its inputs. Each
// op's backward is written next to its forward (src/autograd/*.cpp), as MLX does with its vjp.
//
//   Var w = Var::parameter(Tensor::zeros({4, 3}));
//   Var loss = sum(relu2(matmul(Var(x), w)));
//   loss.backward();            // w.grad() now holds d loss / d w
//
// Gradients accumulate (+=) into leaves until zero_grad(), which is what gradient accumulation needs.
// All autograd values are f32. Graph nodes hold their inputs, never their outputs, so a graph is freed
// when the last Var that reaches it goes away.
#include <bitnet/ops.h>
#include <bitnet/tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bitnet::autograd {

struct VarImpl;

class Var {
 public:
  Var() = default;  // undefined
  // A constant (requires_grad=false) or a leaf that collects a gradient (requires_grad=true). The value is
  // converted to f32; the tensor is shared, not copied, when it already is f32.
  explicit Var(Tensor value, bool requires_grad = false);
  static Var parameter(Tensor value) { return Var(std::move(value), true); }

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const;
  const Shape& shape() const { return value().shape(); }
  int64_t ndim() const { return value().ndim(); }
  int64_t size(int64_t dim) const { return value().size(dim); }
  int64_t numel() const { return value().numel(); }
  double item() const { return value().item(); }

  bool requires_grad() const;
  bool is_leaf() const;
  // The accumulated gradient of a leaf (undefined until a backward pass reaches it).
  const Tensor& grad() const;
  void set_grad(Tensor grad);  // replaces it (optimizers and clipping scale it in place instead)
  void zero_grad();            // makes grad undefined again

  // Back-propagates from this scalar (numel 1) with seed 1, or with `seed` (same shape as the value).
  void backward() const;
  void backward(const Tensor& seed) const;
  // The same, calling `leaf_ready(leaf)` as soon as a leaf's gradient is final for this pass (every op that uses
  // it has passed its gradient back): data parallelism starts summing it across processes while the pass goes
  // on. A leaf the pass does not reach is not reported.
  void backward(const Tensor& seed, const std::function<void(const VarImpl*)>& leaf_ready) const;

  // The same value, cut from the graph.
  Var detach() const;

  const std::shared_ptr<VarImpl>& impl() const { return impl_; }
  explicit Var(std::shared_ptr<VarImpl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<VarImpl> impl_;
};

// Computes the gradients of a node's inputs from the gradient of its output. Entries for inputs that do not
// need a gradient may be left undefined.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_out)>;

struct VarImpl {
  Tensor value;
  Tensor grad;
  bool requires_grad = false;
  std::string op;                  // name of the op that made it ("" for a leaf)
  std::vector<Var> inputs;         // empty for a leaf
  BackwardFn backward;             // null for a leaf
};

// Builds an op result: when grad mode is on and some input requires a gradient, the result records the
// inputs and the backward function; otherwise it is a constant. This is how every op (and any op a user
// adds) joins the graph.
Var make_result(Tensor value, std::string op, std::vector<Var> inputs, BackwardFn backward);

// Grad mode: while a NoGradGuard lives (per thread), ops build no graph (evaluation, optimizer updates).
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Sums `grad` down to `shape` (undoing NumPy broadcasting): the backward of every broadcasting op.
Tensor sum_to(const Tensor& grad, const Shape& shape);

// --- elementwise arithmetic with NumPy broadcasting (ops_arith.cpp) ---------------------------------------
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var div(const Var& a, const Var& b);
Var add(const Var& a, double s);
Var mul(const Var& a, double s);
Var neg(const Var& a);
Var pow(const Var& a, double exponent);
Var exp(const Var& a);
Var log(const Var& a);
Var sqrt(const Var& a);
inline Var operator+(const Var& a, const Var& b) { return add(a, b); }
inline Var operator-(const Var& a, const Var& b) { return sub(a, b); }
inline Var operator*(const Var& a, const Var& b) { return mul(a, b); }
inline Var operator/(const Var& a, const Var& b) { return div(a, b); }
inline Var operator+(const Var& a, double s) { return add(a, s); }
inline Var operator-(const Var& a, double s) { return add(a, -s); }
inline Var operator*(const Var& a, double s) { return mul(a, s); }
inline Var operator-(const Var& a) { return neg(a); }

// --- shape (ops_shape.cpp): results are contiguous copies -------------------------------------------------
Var reshape(const Var& x, const Shape& shape);
Var transpose(const Var& x, int64_t dim0, int64_t dim1);
Var broadcast_to(const Var& x, const Shape& shape);

// --- reductions (ops_reduce.cpp) ---------------------------------------------------------------------------
Var sum(const Var& x, const Axes& axes = {}, bool keepdims = false);
Var mean(const Var& x, const Axes& axes = {}, bool keepdims = false);

// --- linear algebra (ops_matmul.cpp): NumPy matmul with broadcast batch dims; both operands >= 2-D -------
Var matmul(const Var& a, const Var& b);
// x [..., in] times w [out, in] transposed: [..., out] (torch.nn.functional.linear without bias).
Var linear(const Var& x, const Var& w);

// --- activations and normalization (ops_nn.cpp) ------------------------------------------------------------
Var relu(const Var& x);
Var relu2(const Var& x);  // relu(x)^2
Var silu(const Var& x);
Var sigmoid(const Var& x);
Var softmax(const Var& x, int64_t axis = -1);
Var log_softmax(const Var& x, int64_t axis = -1);
// x / sqrt(mean(x^2, last axis) + eps) * weight; `weight` ([last]) may be undefined (no gain).
Var rms_norm(const Var& x, const Var& weight, float eps = 1e-6f);

// --- losses and lookups (ops_nn.cpp) -----------------------------------------------------------------------
// Mean over the targets that are >= 0 of -log softmax(logits)[target]; logits [..., V], targets i32 [...].
// Targets < 0 are ignored (padding). Throws when a target is >= V or when every target is ignored.
Var cross_entropy(const Var& logits, const Tensor& targets);
// Rows of `weight` ([V, D]) picked by `ids` (i32, any shape): result [ids..., D].
Var embedding(const Var& weight, const Tensor& ids);

// --- transformer pieces (ops_attention.cpp) ----------------------------------------------------------------
// Rotary position embedding with half-split pairing (element i pairs with i + D/2, as Llama/HF do) on
// x [B, T, H, D], positions start_pos..start_pos+T-1, frequencies theta^(-2i/D).
Var rope(const Var& x, double theta, int64_t start_pos = 0);
// Causal scaled-dot-product attention. q [B, Hq, T, D], k and v [B, Hkv, T, D] with Hq a multiple of Hkv
// (grouped-query attention: query head h reads key/value head h / (Hq/Hkv)). Result [B, Hq, T, D].
// seq_major: q, k, v and the result are [B, T, H, D] instead (the projections' own layout, no transposes).
Var causal_attention(const Var& q, const Var& k, const Var& v, bool seq_major = false);

// --- straight-through estimators (ops_ste.cpp) -------------------------------------------------------------
// Forward: x + lambda * (quantized - x), where `quantized` is a function of x's value computed by the
// caller (a fake-quantizer). Backward: the identity, as x + lambda * (Q(x) - x).detach() gives in PyTorch.
// lambda in [0, 1] phases quantization in when converting a full-precision model (1 = fully quantized).
Var straight_through(const Var& x, const Tensor& quantized, float lambda = 1.0f);

}  // namespace bitnet::autograd
