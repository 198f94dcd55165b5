// The model's BitLinears by name and the sign classes of their quantized weights (analyze.h): what the trainer
// compares between log intervals to log the flip rate, and what `bitnet analyze` ranks.
#include <bitnet/analyze.h>
#include <bitnet/error.h>
#include <bitnet/thread_pool.h>

#include <bit>

namespace bitnet::train {

std::vector<std::pair<std::string, std::shared_ptr<nn::BitLinear>>> named_bit_linears(const nn::CausalLM& lm) {
  std::vector<std::pair<std::string, std::shared_ptr<nn::BitLinear>>> out;
  for (size_t l = 0; l < lm.layers.size(); ++l) {
    const auto& b = *lm.layers[l];
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.emplace_back(p + "self_attn.q_proj", b.self_attn->q_proj);
    out.emplace_back(p + "self_attn.k_proj", b.self_attn->k_proj);
    out.emplace_back(p + "self_attn.v_proj", b.self_attn->v_proj);
    out.emplace_back(p + "self_attn.o_proj", b.self_attn->o_proj);
    out.emplace_back(p + "mlp.gate_proj", b.mlp->gate_proj);
    out.emplace_back(p + "mlp.up_proj", b.mlp->up_proj);
    out.emplace_back(p + "mlp.down_proj", b.mlp->down_proj);
  }
  return out;
}

SignClasses quantized_sign_classes(const nn::CausalLM& lm) {
  SignClasses out;
  for (const auto& [name, layer] : named_bit_linears(lm)) {
    const Tensor q = nn::fake_quantize(layer->weight.value(), layer->options().weight_quant).contiguous();
    const float* p = q.data_as<float>();
    const int64_t n = q.numel();
    out.packed.resize(static_cast<size_t>((out.count + n + 3) / 4), 0);
    uint8_t* packed = out.packed.data();
    int64_t k = 0;
    // 1 positive, 2 negative, 0 zero; branch-free so that the loop below vectorizes.
    auto code = [p](int64_t i) { return static_cast<uint8_t>(static_cast<int>(p[i] > 0.0f) | (static_cast<int>(p[i] < 0.0f) << 1)); };
    auto set_one = [&](int64_t i) {  // element i alone, into its 2 bits of a shared byte
      packed[(out.count + i) / 4] |= static_cast<uint8_t>(code(i) << (2 * ((out.count + i) % 4)));
    };
    for (; k < n && (out.count + k) % 4 != 0; ++k) set_one(k);  // finish the byte the previous matrix left open
    // Whole bytes (this runs at every log row: with log_every 1 it cost 8% of a training step).
    const int64_t first_byte = (out.count + k) / 4, whole = (n - k) / 4;
    parallel_for(whole, [packed, first_byte, k, &code](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t i = k + 4 * b;
        packed[first_byte + b] = static_cast<uint8_t>(code(i) | (code(i + 1) << 2) | (code(i + 2) << 4) | (code(i + 3) << 6));
      }
    }, 4096);
    for (k += 4 * whole; k < n; ++k) set_one(k);
    out.count += n;
  }
  return out;
}

double flipped_fraction(const SignClasses& before, const SignClasses& now) {
  BITNET_CHECK(before.count == now.count, "[train] flip count: {} weights before, {} now", before.count, now.count);
  if (now.count == 0) return 0.0;
  int64_t flips = 0;
  for (size_t i = 0; i < now.packed.size(); ++i) {
    const unsigned x = before.packed[i] ^ now.packed[i];
    flips += std::popcount((x | (x >> 1)) & 0x55u);  // one bit per 2-bit field that differs
  }
  return static_cast<double>(flips) / static_cast<double>(now.count);
}

}  // namespace bitnet::train
