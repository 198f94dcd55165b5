// Module bookkeeping (parameters, children, modes, state dicts) and the deterministic init generator.
#include <bitnet/nn.h>

#include <cmath>
#include <numbers>
#include <set>

namespace bitnet::nn {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

InitRng::InitRng(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

uint64_t InitRng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double InitRng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double InitRng::normal() {
  // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
  const double u1 = 1.0 - uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

Tensor InitRng::normal_tensor(const Shape& shape, double std) {
  Tensor t = Tensor::empty(shape);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(normal() * std);
  return t;
}

Var Module::register_parameter(std::string name, Tensor init, ParamKind kind) {
  Var v = Var::parameter(init.to(DType::f32).contiguous().clone());
  params_.push_back({std::move(name), v, kind});
  return v;
}

void Module::collect(const std::string& prefix, std::vector<NamedParameter>& out) const {
  for (const auto& p : params_) out.push_back({prefix + p.name, p.var, p.kind});
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<NamedParameter> Module::named_parameters() const {
  std::vector<NamedParameter> out;
  collect("", out);
  return out;
}

std::vector<Var> Module::parameters() const {
  std::vector<Var> out;
  for (auto& p : named_parameters()) out.push_back(p.var);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : named_parameters()) n += p.var.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& p : named_parameters()) p.var.zero_grad();
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (const auto& p : named_parameters()) out.emplace(p.name, p.var.value().clone());
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  const auto params = named_parameters();
  std::vector<std::string> missing, unexpected;
  std::set<std::string> known;
  for (const auto& p : params) {
    known.insert(p.name);
    auto it = state.find(p.name);
    if (it == state.end()) {
      missing.push_back(p.name);
      continue;
    }
    BITNET_CHECK(it->second.shape() == p.var.shape(), "[load_state_dict] '{}' has shape {} in the state, the model has {}",
                 p.name, shape_str(it->second.shape()), shape_str(p.var.shape()));
    // In place: optimizers and other holders of this Var see the new values.
    Tensor dst = p.var.value();
    dst.copy_from(it->second);
  }
  for (const auto& [name, t] : state)
    if (!known.count(name)) unexpected.push_back(name);
  BITNET_CHECK(!strict || (missing.empty() && unexpected.empty()),
               "[load_state_dict] the state does not match the model: missing [{}], unexpected [{}]",
               fmt::join(missing, ", "), fmt::join(unexpected, ", "));
}

}  // namespace bitnet::nn
