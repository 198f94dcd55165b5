#pragma once
// The CUDA engine backend: the whole transformer forward pass on one GPU, the model's weights uploaded once
// (ternary matrices repacked to the GPU layout, q|k|v and gate|up fused into one matrix each), an f16 KV cache
// and scratch sized at construction, and the decode step (batches of up to 8 tokens) replayed from captured
// CUDA graphs, one per (tokens, logits) shape. Prefill (more tokens) runs the same kernels eagerly, with the
// GEMM instead of the GEMV.
#include <bitnet/engine.h>

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <cuda_runtime.h>

#include "cuda/device_buffer.h"
#include "cuda/kernels.h"

namespace bitnet::cuda {

struct DevMatrix {
  DeviceBuffer data, scales;  // scales: tensor_scale[rows] then row_scale[rows]
  DevTernary view;
};

class CudaBackend final : public EngineBackend {
 public:
  CudaBackend(const Model& model, int64_t n_ctx, int n_seq, int64_t max_batch, int device);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  void decode(std::span<const BatchToken> batch, float* logits) override;
  std::string name() const override { return name_; }
  // Off: every step runs eagerly (the tests compare both paths).
  void use_graphs(bool on) { use_graphs_ = on; }
  int kernels_per_layer() const { return 10; }

 private:
  struct Layer {
    DevMatrix qkv, wo, gate_up, down;
    DeviceBuffer norms;  // attn_norm | attn_sub_norm | ffn_norm | ffn_sub_norm, hidden / q_dim / hidden / ffn
  };
  void enqueue_layers(int tokens);
  void enqueue_head(int first, int count);  // logits of logit rows first..first+count-1 into logits_dev_
  cudaGraphExec_t graph_for(int tokens, int n_logits);

  const Model& model_;
  std::string name_;
  int device_ = 0;
  int64_t n_ctx_, max_batch_;
  int n_seq_;
  int64_t q_dim_, kv_dim_, qkv_dim_, act_k_pad_;
  cudaStream_t stream_ = nullptr;
  std::vector<Layer> layers_;
  DeviceBuffer embedding_, head_f16_, head_i8_, head_i8_scales_, output_norm_;
  const void* embedding_ptr_ = nullptr;  // embedding_ or head_f16_ when the head is the tied embedding
  const uint16_t* head_f16_ptr_ = nullptr;
  bool embedding_f16_ = true;
  DeviceBuffer k_cache_, v_cache_, rope_cos_, rope_sin_;
  DeviceBuffer x_, qkv_, o_, gu_, q8_, dequant_, sums_, h_, logits_dev_, meta_;
  int32_t* meta_host_ = nullptr;   // pinned: token | pos | seq | logit row, max_batch each
  float* logits_host_ = nullptr;   // pinned: 8 rows of vocab
  bool use_graphs_ = true;
  std::map<std::pair<int, int>, cudaGraphExec_t> graphs_;
};

}  // namespace bitnet::cuda
