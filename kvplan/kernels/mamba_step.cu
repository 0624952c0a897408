// One decode step of a Mamba-2 layer (Nemotron-H) for a batch of sequences, in two kernels that replace the torch
// path's ~20 kernels and its fp32 copies of every state (kvplan/gpu/mamba.py):
//
//   kvp_state_conv  per (sequence, channel): the causal depthwise convolution + bias, SiLU, the window shifted in
//                   its state slot (kvp_state_step.cuh; B and C channels are shared by a group's heads: one writer)
//   kvp_mb_ssm      per (sequence, group of heads): for each head h of the group, with dt = softplus(dt_in + bias)
//                   and its state S [P, N] (read and written once, in its slot):
//                       S <- exp(dt A_h) S + dt x_h B^T;   y_h = S C + D_h x_h
//                   then the gated RMSNorm of the group (y SiLU(z), normed over the group's heads, times the
//                   norm weight), stored in the activations' dtype: what out_proj multiplies.
//
// Thread layout of kvp_mb_ssm: a head's state is P rows of N values in 8-value vectors; N / 8 consecutive threads
// share a row (a power of two dividing 32), each holding its 8 columns of B and C in registers, and the row's y
// is their sum by shuffles. Every state element is loaded and stored once, 16 bytes at a time (bf16 / fp16 slots)
// or 32 (fp32). Arithmetic in fp32; the slot keeps the pool's dtype, as the torch path does.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_vec8.cuh"
#include "kvp_state_step.cuh"

__device__ __forceinline__ void load8(const state_t* p, float* f) {
#if KVP_DN_S == 2
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
#else
  kvp::unpack8<KVP_DN_S == 1>(*reinterpret_cast<const uint4*>(p), f);
#endif
}

__device__ __forceinline__ void store8(state_t* p, const float* f) {
#if KVP_DN_S == 2
  reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
#else
  *reinterpret_cast<uint4*>(p) = kvp::pack8<KVP_DN_S == 1>(f);
#endif
}

// conv_out [B, C] float32 (x: heads * P, then B and C: groups * N each); dt [B, >= heads] and z [B, heads * P]
// activations (row strides dt_stride, z_stride); A_log, D, dt_bias [heads]; o_norm [heads * P]. Shared memory:
// (2 N + heads / groups * P + 32) floats. gated [B, heads * P] activations.
extern "C" __global__ void __launch_bounds__(256)
kvp_mb_ssm(const float* __restrict__ conv_out, int channels, const act_t* __restrict__ dt, long long dt_stride,
           const act_t* __restrict__ z, long long z_stride, const int* __restrict__ slot,
           state_t* __restrict__ pool, long long row_stride, long long state_offset,
           const act_t* __restrict__ a_log, const act_t* __restrict__ d_skip, const act_t* __restrict__ dt_bias,
           const act_t* __restrict__ o_norm, int heads, int groups, int p_dim, int n_dim, float eps,
           act_t* __restrict__ gated) {
  extern __shared__ float sm[];
  kvp::pdl_enter();
  const int b = blockIdx.y, g = blockIdx.x, tid = threadIdx.x;
  const int rep = heads / groups, width = rep * p_dim;
  float* const bv = sm;
  float* const cv = sm + n_dim;
  float* const y = sm + 2 * n_dim;
  float* const scratch = y + width;
  const float* row = conv_out + (long long)b * channels;
  const float* x = row + (long long)g * width;  // the x channels of heads g * rep ..
  for (int i = tid; i < n_dim; i += blockDim.x) {
    bv[i] = row[heads * p_dim + g * n_dim + i];
    cv[i] = row[heads * p_dim + (groups + g) * n_dim + i];
  }
  __syncthreads();
  const int lanes = n_dim / 8, vecs = p_dim * lanes, n0 = (tid % lanes) * 8;
  float bb[8], cc[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) bb[k] = bv[n0 + k], cc[k] = cv[n0 + k];
  state_t* const states = pool + (long long)slot[b] * row_stride + state_offset;
  for (int hh = 0; hh < rep; ++hh) {
    const int h = g * rep + hh;
    const float in = ACT_TO_F(dt[(long long)b * dt_stride + h]) + ACT_TO_F(dt_bias[h]);
    const float step = in > 20.0f ? in : log1pf(__expf(in));
    const float decay = __expf(-step * __expf(ACT_TO_F(a_log[h])));
    const float d = ACT_TO_F(d_skip[h]);
    state_t* const S = states + (long long)h * p_dim * n_dim;
    for (int first = 0; first < vecs; first += blockDim.x) {  // every thread runs every round: the shuffles
      const int v = first + tid, p = v / lanes;
      const bool active = v < vecs;  // a row's lanes are all active or all not (vecs is a multiple of lanes)
      float acc = 0.0f;
      if (active) {
        float s[8];
        load8(S + (long long)v * 8, s);
        const float dx = step * x[hh * p_dim + p];
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          s[k] = decay * s[k] + dx * bb[k];
          acc += s[k] * cc[k];
        }
        store8(S + (long long)v * 8, s);
      }
      for (int o = lanes >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
      if (active && tid % lanes == 0) y[hh * p_dim + p] = acc + d * x[hh * p_dim + p];
    }
  }
  __syncthreads();
  float ss = 0.0f;
  for (int i = tid; i < width; i += blockDim.x) {
    const float v = y[i] * silu(ACT_TO_F(z[(long long)b * z_stride + g * width + i]));
    y[i] = v;
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / (float)width + eps);
  for (int i = tid; i < width; i += blockDim.x)
    gated[(long long)b * heads * p_dim + g * width + i] = F_TO_ACT(y[i] * inv * ACT_TO_F(o_norm[g * width + i]));
}
