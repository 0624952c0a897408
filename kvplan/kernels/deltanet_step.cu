// One decode step of a gated DeltaNet layer (Qwen3-Next's linear attention) for a batch of sequences, in two
// kernels that replace ~40 small torch kernels per layer:
//
//   kvp_state_conv  per (sequence, channel): the causal depthwise convolution (kvp_state_step.cuh), SiLU, and
//                 the window shifted in place in the state slot. (A separate kernel because the q/k channels
//                 are shared by several value heads: one writer.)
//   kvp_dn_delta  per (sequence, value head): l2-normalised q and k, decay a = exp(g) and beta from the gate
//                 inputs, then with the head's state S [dk, dv] (read and written once, in its slot):
//                     S <- a S;  delta = beta (v - S^T k);  S <- S + k delta^T;  out = S^T q
//                 and the output RMSNorm times SiLU(z), stored in the activations' dtype.
//
// Thread layout of kvp_dn_delta: dv x DKS threads; thread r * dv + j holds rows r*RPT .. r*RPT+RPT-1 of column
// j of S in registers (RPT = DK / DKS), so each state element is loaded once, coalesced along j. Arithmetic in
// float32; the state slot keeps the pool's dtype (bf16 or fp16 or fp32), as the torch path does.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_state_step.cuh"

#define DK KVP_DN_DK
#define DKS 4
#define RPT (DK / DKS)

// conv_out [B, C] float32 (q | k | v channels: nk*DK, nk*DK, nv*dv); ba [B, >= 2 nv] activations (beta logits
// then decay inputs); z [B, nv*dv] activations (row stride z_stride); A_log, dt_bias [nv]; o_norm [dv].
// gated [B, nv*dv] activations.
extern "C" __global__ void __launch_bounds__(512)
kvp_dn_delta(const float* __restrict__ conv_out, int channels, const act_t* __restrict__ ba, long long ba_stride,
             const act_t* __restrict__ z, long long z_stride, const int* __restrict__ slot,
             state_t* __restrict__ pool, long long row_stride, long long state_offset,
             const act_t* __restrict__ a_log, const act_t* __restrict__ dt_bias, const act_t* __restrict__ o_norm,
             int nk, int nv, int dv, float eps, act_t* __restrict__ gated) {
  __shared__ float qs[DK], ks[DK], part[DKS][128], scratch[32];
  kvp::pdl_enter();
  const int b = blockIdx.y, h = blockIdx.x, tid = threadIdx.x, threads = blockDim.x;  // threads = dv * DKS
  const int j = tid % dv, r = tid / dv;
  const int kh = h / (nv / nk);
  const float* row = conv_out + (long long)b * channels;

  // l2-normalised q (scaled by DK^-1/2) and k of this value head's key head
  float qq = 0.0f, kk = 0.0f;
  for (int i = tid; i < DK; i += threads) {
    const float q = row[kh * DK + i], k = row[nk * DK + kh * DK + i];
    qs[i] = q;
    ks[i] = k;
    qq += q * q;
    kk += k * k;
  }
  qq = block_sum(qq, scratch);
  kk = block_sum(kk, scratch);
  const float q_scale = rsqrtf(qq + 1e-6f) * rsqrtf((float)DK), k_scale = rsqrtf(kk + 1e-6f);

  const float beta_in = ACT_TO_F(ba[(long long)b * ba_stride + h]);
  const float a_in = ACT_TO_F(ba[(long long)b * ba_stride + nv + h]) + ACT_TO_F(dt_bias[h]);
  const float softplus = a_in > 20.0f ? a_in : log1pf(__expf(a_in));
  const float decay = __expf(-__expf(ACT_TO_F(a_log[h])) * softplus);
  const float beta = 1.0f / (1.0f + __expf(-beta_in));
  const float v = row[2 * nk * DK + h * dv + j];

  state_t* S = pool + (long long)slot[b] * row_stride + state_offset + (long long)h * DK * dv;
  float s[RPT];
  float kv = 0.0f;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int ii = r * RPT + i;
    s[i] = decay * S_TO_F(S[(long long)ii * dv + j]);
    kv += s[i] * ks[ii];
  }
  part[r][j] = kv * k_scale;
  __syncthreads();
  float kv_mem = 0.0f;
#pragma unroll
  for (int p = 0; p < DKS; ++p) kv_mem += part[p][j];
  const float delta = beta * (v - kv_mem);
  float o = 0.0f;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    const int ii = r * RPT + i;
    s[i] += ks[ii] * k_scale * delta;
    o += s[i] * qs[ii];
    S[(long long)ii * dv + j] = F_TO_S(s[i]);
  }
  __syncthreads();  // every thread has read part[] before it is reused
  part[r][j] = o * q_scale;
  __syncthreads();
  float out = 0.0f;
#pragma unroll
  for (int p = 0; p < DKS; ++p) out += part[p][j];

  // output RMSNorm over the head's dv values (each row r holds the full sum; count each once), then SiLU(z)
  const float ms = block_sum(r == 0 ? out * out : 0.0f, scratch) / (float)dv;
  if (r == 0) {
    const float zz = ACT_TO_F(z[(long long)b * z_stride + h * dv + j]);
    const float normed = out * rsqrtf(ms + eps) * ACT_TO_F(o_norm[j]);
    gated[(long long)b * nv * dv + h * dv + j] = F_TO_ACT(normed * silu(zz));
  }
}
