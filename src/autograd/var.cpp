// Var, grad mode, and the backward engine: a topological order of the graph, then each node's backward in
// reverse, gradients summed per node.
#include <bitnet/autograd.h>

#include <unordered_map>
#include <unordered_set>

namespace bitnet::autograd {

namespace {
thread_local bool t_grad_enabled = true;

Tensor as_f32(Tensor t) { return t.dtype() == DType::f32 ? t : t.to(DType::f32); }

// into += g for same-shape f32 tensors (the accumulation of gradients). A gradient may alias another (the
// backward of add returns grad_out for both inputs), so memory is written in place only when no other
// tensor shares it. A gradient that lives only for the pass (an interior node's, or a leaf's before it is
// finished) may go on sharing (share = true): the sum then goes to new memory when a second gradient
// arrives. A leaf's final gradient is copied unless it owns its memory: the optimizer and clipping write
// into it.
void accumulate(Tensor& into, Tensor g, bool share = false) {
  const bool g_exclusive = g.is_contiguous() && g.storage().use_count() == 1;
  if (!into.defined()) {
    into = g_exclusive || (share && g.is_contiguous()) ? std::move(g) : g.contiguous().clone();
    return;
  }
  if (into.is_contiguous() && into.storage().use_count() == 1) {
    const Tensor gc = g.contiguous();
    float* a = into.data_as<float>();
    const float* b = gc.data_as<float>();
    const int64_t n = into.numel();
    for (int64_t i = 0; i < n; ++i) a[i] += b[i];
    return;
  }
  into = bitnet::add(into, g);
}
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

Var::Var(Tensor value, bool requires_grad) : impl_(std::make_shared<VarImpl>()) {
  BITNET_CHECK(value.defined(), "[autograd] a Var needs a defined tensor");
  BITNET_CHECK(is_floating(value.dtype()), "[autograd] Var values must be float, got {}", value.str());
  impl_->value = as_f32(std::move(value));
  impl_->requires_grad = requires_grad;
}

const Tensor& Var::value() const {
  BITNET_CHECK(impl_, "[autograd] the Var is undefined");
  return impl_->value;
}
bool Var::requires_grad() const { return impl_ && impl_->requires_grad; }
bool Var::is_leaf() const { return impl_ && !impl_->backward; }
const Tensor& Var::grad() const {
  BITNET_CHECK(impl_, "[autograd] the Var is undefined");
  return impl_->grad;
}
void Var::set_grad(Tensor grad) {
  BITNET_CHECK(impl_, "[autograd] the Var is undefined");
  BITNET_CHECK(!grad.defined() || grad.shape() == impl_->value.shape(),
               "[autograd] set_grad: gradient shape {} differs from the value's {}", shape_str(grad.shape()),
               shape_str(impl_->value.shape()));
  impl_->grad = grad.defined() ? as_f32(std::move(grad)).contiguous() : Tensor();
}
void Var::zero_grad() {
  if (impl_) impl_->grad = Tensor();
}

Var Var::detach() const { return Var(value(), false); }

Var make_result(Tensor value, std::string op, std::vector<Var> inputs, BackwardFn backward) {
  bool needs = false;
  if (t_grad_enabled)
    for (const auto& in : inputs) needs = needs || in.requires_grad();
  auto impl = std::make_shared<VarImpl>();
  impl->value = as_f32(std::move(value));
  if (needs) {
    impl->requires_grad = true;
    impl->op = std::move(op);
    impl->inputs = std::move(inputs);
    impl->backward = std::move(backward);
  }
  return Var(std::move(impl));
}

void Var::backward() const {
  BITNET_CHECK(impl_ && impl_->value.numel() == 1,
               "[backward] needs a scalar (one element) to start from, got {}; pass a seed gradient instead",
               impl_ ? impl_->value.str() : std::string("undefined"));
  backward(Tensor::ones(impl_->value.shape()));
}

void Var::backward(const Tensor& seed) const { backward(seed, nullptr); }

void Var::backward(const Tensor& seed, const std::function<void(const VarImpl*)>& leaf_ready) const {
  BITNET_CHECK(impl_, "[backward] the Var is undefined");
  BITNET_CHECK(impl_->requires_grad,
               "[backward] this value does not depend on anything that requires a gradient (did a NoGradGuard "
               "or detach() cut the graph?)");
  BITNET_CHECK(seed.shape() == impl_->value.shape(), "[backward] seed shape {} differs from the value's {}",
               shape_str(seed.shape()), shape_str(impl_->value.shape()));

  // Topological order by an iterative depth-first search (graphs of deep models would overflow recursion).
  std::vector<VarImpl*> order;
  std::unordered_set<VarImpl*> seen;
  std::vector<std::pair<VarImpl*, size_t>> stack{{impl_.get(), 0}};
  seen.insert(impl_.get());
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      VarImpl* child = node->inputs[next++].impl().get();
      if (child->requires_grad && child->backward && seen.insert(child).second) stack.push_back({child, 0});
      continue;
    }
    order.push_back(node);
    stack.pop_back();
  }

  // How many uses of each leaf are still to pass a gradient back in this pass. A leaf's contributions are summed
  // here first and added to its grad once, when the last use is done: so a pass adds one whole gradient to what
  // earlier passes left, and accumulating micro-batches gives ((P0 + P1) + P2) for passes P, the sums that data
  // parallelism forms across ranks, whatever number of uses a leaf has (a tied embedding has two).
  std::unordered_map<const VarImpl*, int64_t> pending_uses;
  for (VarImpl* node : order)
    for (const Var& in : node->inputs)
      if (in.impl()->requires_grad && !in.impl()->backward) ++pending_uses[in.impl().get()];
  std::unordered_map<VarImpl*, Tensor> leaf_pass;
  auto finish_leaf = [&](VarImpl* leaf) {
    if (auto p = leaf_pass.find(leaf); p != leaf_pass.end()) {
      accumulate(leaf->grad, std::move(p->second));
      leaf_pass.erase(p);
    }
    if (leaf_ready && leaf->grad.defined()) leaf_ready(leaf);
  };
  // Gradients of interior nodes live here only for the pass.
  std::unordered_map<VarImpl*, Tensor> grads;
  grads[impl_.get()] = as_f32(seed);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    VarImpl* node = *it;
    auto found = grads.find(node);
    if (found == grads.end()) continue;
    Tensor g = std::move(found->second);
    grads.erase(found);
    std::vector<Tensor> in_grads = node->backward(g);
    // Dropped now, so that a gradient passed through unchanged (or as a view) is owned by one tensor and
    // accumulate() takes it over instead of copying it.
    g = Tensor();
    BITNET_CHECK(in_grads.size() == node->inputs.size(), "[backward] op '{}' returned {} gradients for {} inputs",
                 node->op, in_grads.size(), node->inputs.size());
    for (size_t i = 0; i < in_grads.size(); ++i) {
      VarImpl* in = node->inputs[i].impl().get();
      if (!in->requires_grad) continue;
      const bool leaf = !in->backward;
      // The use is done either way; the leaf is finished after its gradient (if any) is added below.
      const bool last_use = leaf && --pending_uses[in] == 0;
      if (in_grads[i].defined()) {
        BITNET_CHECK(in_grads[i].shape() == in->value.shape(),
                     "[backward] op '{}' gave input {} a gradient of shape {}, expected {}", node->op, i,
                     shape_str(in_grads[i].shape()), shape_str(in->value.shape()));
        accumulate(leaf ? leaf_pass[in] : grads[in], as_f32(std::move(in_grads[i])), /*share=*/true);
      }
      if (last_use) finish_leaf(in);
    }
  }
  // Leaves some of whose uses received no gradient (a branch the seed does not reach) are finished here.
  while (!leaf_pass.empty()) finish_leaf(leaf_pass.begin()->first);
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const int64_t lead = grad.ndim() - static_cast<int64_t>(shape.size());
  BITNET_CHECK(lead >= 0, "[sum_to] cannot reduce {} to {}", shape_str(grad.shape()), shape_str(shape));
  Axes axes;
  for (int64_t d = 0; d < grad.ndim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && grad.size(d) != 1)) axes.push_back(d);
  Tensor r = axes.empty() ? grad : bitnet::sum(grad, axes, /*keepdims=*/true);
  return r.reshape(shape);
}

}  // namespace bitnet::autograd
