// One decode step of a Kimi Delta Attention layer (Kimi Linear; vLLM 0.32.0 model_executor/layers/mamba/gdn/
// kimi_gdn_linear_attn.py, its decode op fused_recurrent_kda_packed_decode in vllm/models/kimi_k3/nvidia/ops/
// third_party/kda/fused_recurrent.py) for a batch of sequences, in one kernel a (head, sequence) that replaces the
// torch path's float32 gathers and ~30 small kernels a layer (kvplan/gpu/kda.py):
//
//   the head's short causal convolutions: its D q, D k and D v channels (kvp_state_step.cuh state_conv_step, float32
//       weights, no bias), SiLU, each window shifted in place in the window pool's slot (a head's channels are its
//       own: KDA shares no key heads, so the convolution needs no kernel of its own: one writer a channel);
//   q, k l2-normalised (q times D^-1/2); the log decay per key channel g = -exp(A_log) softplus(g_raw + dt_bias)
//       (softplus linear above 20), or with a gate lower bound lb < 0, g = lb sigmoid(exp(A_log) (g_raw + dt_bias));
//       beta = sigmoid(beta_raw); then with the head's float32 state S [D keys, D values] (read and written once, in
//       its slot of the state pool):
//           S <- diag(exp g) S;   delta = beta (v - S^T k);   S <- S + k delta^T;   o = S^T q
//   and the output RMSNorm over the head's D values (eps), times the norm weight, times sigmoid(gate), stored in the
//   activations' dtype: what o_proj multiplies.
//
// Two pools, as vLLM keeps a KDA slot (mamba_utils.py kda_state_dtype): the windows [slots, 3 width (K - 1)] in the
// window dtype (state_t, KVP_DN_S: the model's or --mamba-cache-dtype's), laid out channel after channel, and the
// recurrent states [slots, heads D D] in float32.
//
// Thread layout (as deltanet_step.cu): D x KDS threads; thread r * D + j holds rows r*RPT .. r*RPT + RPT - 1 of column
// j of S in registers (RPT = D / KDS), so each state element is loaded once, coalesced along j. Arithmetic in float32.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_state_step.cuh"

#define KDA_D KVP_KDA_D  // head dim (of q, k and v alike)
#define KDS 4
#define RPT (KDA_D / KDS)

// mixed [B, >= 3 width] activations (q | k | v channels, width = heads D each; row stride mixed_stride); beta_raw
// [B, >= heads], g_raw and gate [B, >= width] activations (each with its row stride); slot [B] int32; conv_pool rows
// of conv_stride window elements, state_pool rows of state_stride floats; conv_w [3 width, taps], a_log [heads],
// dt_bias [width] float32; o_norm [D] activations. out [B, width] activations (contiguous).
extern "C" __global__ void __launch_bounds__(KDA_D * KDS)
kvp_kda_step(const act_t* __restrict__ mixed, long long mixed_stride, const act_t* __restrict__ beta_raw,
             long long beta_stride, const act_t* __restrict__ g_raw, long long g_stride, const act_t* __restrict__ gate,
             long long gate_stride, const int* __restrict__ slot, state_t* __restrict__ conv_pool,
             long long conv_stride, float* __restrict__ state_pool, long long state_stride,
             const float* __restrict__ conv_w, const float* __restrict__ a_log, const float* __restrict__ dt_bias,
             const act_t* __restrict__ o_norm, int heads, int taps, float lower_bound, float eps,
             act_t* __restrict__ out) {
  __shared__ float qs[KDA_D], ks[KDA_D], vs[KDA_D], decay[KDA_D], part[KDS][KDA_D], scratch[32];
  kvp::pdl_enter();
  const int h = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, threads = blockDim.x;  // threads = D * KDS
  const int j = tid % KDA_D, r = tid / KDA_D;
  const long long width = (long long)heads * KDA_D, head0 = (long long)h * KDA_D;  // the head's first channel
  const long long s_b = slot[b];

  // the convolutions: channel i < 3 D of this head is the layer's channel (i / D) width + h D + i % D
  state_t* const windows = conv_pool + s_b * conv_stride;
  const act_t* const row = mixed + (long long)b * mixed_stride;
  float qq = 0.0f, kk = 0.0f;
  for (int i = tid; i < 3 * KDA_D; i += threads) {
    const int which = i / KDA_D, d = i % KDA_D;  // 0 q, 1 k, 2 v
    const long long c = which * width + head0 + d;
    const float y = silu(state_conv_step(windows + c * (taps - 1), conv_w + c * taps, ACT_TO_F(row[c]), taps, 0.0f));
    if (which == 0) {
      qs[d] = y;
      qq += y * y;
    } else if (which == 1) {
      ks[d] = y;
      kk += y * y;
    } else {
      vs[d] = y;
    }
  }
  // the log decay per key channel, as its factor exp(g)
  const float rate = expf(a_log[h]);
  for (int i = tid; i < KDA_D; i += threads) {
    const float x = ACT_TO_F(g_raw[(long long)b * g_stride + head0 + i]) + dt_bias[head0 + i];
    const float g = lower_bound != 0.0f ? lower_bound / (1.0f + expf(-rate * x))
                                        : -rate * (x > 20.0f ? x : log1pf(expf(x)));
    decay[i] = expf(g);
  }
  // block_sum's barriers also publish qs, ks, vs and decay to every thread
  qq = block_sum(qq, scratch);
  kk = block_sum(kk, scratch);
  const float q_scale = rsqrtf(qq + 1e-6f) * rsqrtf((float)KDA_D), k_scale = rsqrtf(kk + 1e-6f);
  const float beta = 1.0f / (1.0f + expf(-ACT_TO_F(beta_raw[(long long)b * beta_stride + h])));

  float* const S = state_pool + s_b * state_stride + head0 * KDA_D;
  float s[RPT];
  float kv = 0.0f;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int ii = r * RPT + i;
    s[i] = decay[ii] * S[(long long)ii * KDA_D + j];
    kv += s[i] * ks[ii];
  }
  part[r][j] = kv * k_scale;
  __syncthreads();
  float kv_mem = 0.0f;
#pragma unroll
  for (int p = 0; p < KDS; ++p) kv_mem += part[p][j];
  const float delta = beta * (vs[j] - kv_mem);
  float o = 0.0f;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int ii = r * RPT + i;
    s[i] += ks[ii] * k_scale * delta;
    o += s[i] * qs[ii];
    S[(long long)ii * KDA_D + j] = s[i];
  }
  __syncthreads();  // every thread has read part[] before it is reused
  part[r][j] = o * q_scale;
  __syncthreads();
  float o_j = 0.0f;
#pragma unroll
  for (int p = 0; p < KDS; ++p) o_j += part[p][j];

  // output RMSNorm over the head's D values (every row r holds the whole o_j: count each once), times sigmoid(gate)
  const float ms = block_sum(r == 0 ? o_j * o_j : 0.0f, scratch) / (float)KDA_D;
  if (r == 0) {
    const float gt = ACT_TO_F(gate[(long long)b * gate_stride + head0 + j]);
    const float normed = o_j * rsqrtf(ms + eps) * ACT_TO_F(o_norm[j]);
    out[(long long)b * width + head0 + j] = F_TO_ACT(normed / (1.0f + expf(-gt)));
  }
}
