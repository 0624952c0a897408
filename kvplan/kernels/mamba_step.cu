// One decode step of a Mamba-2 layer (Nemotron-H) for a batch of sequences, in three kernels that replace the
// torch path's ~20 kernels and its fp32 copies of every state (kvplan/gpu/mamba.py):
//
//   kvp_state_conv  per (sequence, channel): the causal depthwise convolution + bias, SiLU, the window shifted in
//                   its state slot (kvp_state_step.cuh; B and C channels are shared by a group's heads: one writer)
//   kvp_mb_ssm      per (sequence, hc heads of a group): for each head h, with dt = softplus(dt_in + bias) and its
//                   state S [P, N] (read and written once, in its slot):  S <- exp(dt A_h) S + dt x_h B^T;
//                   y_h = S C + D_h x_h
//   kvp_mb_norm     per (sequence, group): the gated RMSNorm (y SiLU(z), normed over the group's heads, times the
//                   norm weight) in the activations' dtype: what out_proj multiplies.
//
// Thread layout of kvp_mb_ssm: a head's state is P rows of N values in 8-value vectors; N / 8 consecutive threads
// share a row (a power of two dividing 32), each holding its 8 columns of B and C in registers, and the row's y
// is their sum by shuffles, one 8-value vector a thread at a time. Every state element is loaded and stored once,
// 16 bytes at a time (bf16 / fp16 slots) or 32 (fp32). Arithmetic in fp32; the slot keeps the pool's dtype, as
// the torch path does. Heads a CTA (hc) by batch: few sequences need a CTA a head to fill the GPU, many run
// better with fewer, longer CTAs. H200, Nemotron-H-8B's 128 x 64 x 128 heads with in_proj and out_proj
// (benchmarks/RESULTS.md session 35): a CTA a group (16 heads, the norm inside) b1 123 us, b256 467 us; a CTA a
// head b1 81, b256 732; a group's heads with the next head's loads issued early (two in registers, 128
// registers) b1 125, b256 781.

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

// conv_out [B, C] float32 (x: heads * P, then B and C: groups * N each); dt [B, >= heads] activations (row
// stride dt_stride); A_log, D, dt_bias [heads]. A CTA takes `hc` consecutive heads of one group (the plan's
// choice by batch). Shared memory: 2 N floats. y [B, heads * P] float32: S C + D x.
extern "C" __global__ void __launch_bounds__(256)
kvp_mb_ssm(const float* __restrict__ conv_out, int channels, const act_t* __restrict__ dt, long long dt_stride,
           const int* __restrict__ slot, state_t* __restrict__ pool, long long row_stride, long long state_offset,
           const act_t* __restrict__ a_log, const act_t* __restrict__ d_skip, const act_t* __restrict__ dt_bias,
           int heads, int groups, int p_dim, int n_dim, int hc, float* __restrict__ y) {
  extern __shared__ float sm[];
  kvp::pdl_enter();
  const int b = blockIdx.y, h0 = blockIdx.x * hc, tid = threadIdx.x;
  const int g = h0 / (heads / groups);
  const float* row = conv_out + (long long)b * channels;
  for (int i = tid; i < n_dim; i += blockDim.x) {
    sm[i] = row[heads * p_dim + g * n_dim + i];
    sm[n_dim + i] = row[heads * p_dim + (groups + g) * n_dim + i];
  }
  __syncthreads();
  const int lanes = n_dim / 8, vecs = p_dim * lanes, n0 = (tid % lanes) * 8;
  float bb[8], cc[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) bb[k] = sm[n0 + k], cc[k] = sm[n_dim + n0 + k];
  state_t* const states = pool + (long long)slot[b] * row_stride + state_offset;
  for (int h = h0; h < h0 + hc; ++h) {
    const float in = ACT_TO_F(dt[(long long)b * dt_stride + h]) + ACT_TO_F(dt_bias[h]);
    const float step = in > 20.0f ? in : log1pf(__expf(in));
    const float decay = __expf(-step * __expf(ACT_TO_F(a_log[h])));
    const float d = ACT_TO_F(d_skip[h]);
    const float* x = row + (long long)h * p_dim;
    state_t* const S = states + (long long)h * p_dim * n_dim;
    for (int first = 0; first < vecs; first += blockDim.x) {  // every thread runs every round: the shuffles
      const int v = first + tid, p = v / lanes;
      const bool active = v < vecs;  // a row's lanes are all active or all not (vecs is a multiple of lanes)
      float acc = 0.0f;
      if (active) {
        float s[8];
        load8(S + (long long)v * 8, s);
        const float dx = step * x[p];
#pragma unroll
        for (int k = 0; k < 8; ++k) {
          s[k] = decay * s[k] + dx * bb[k];
          acc += s[k] * cc[k];
        }
        store8(S + (long long)v * 8, s);
      }
      for (int o = lanes >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
      if (active && tid % lanes == 0) y[(long long)b * heads * p_dim + h * p_dim + p] = acc + d * x[p];
    }
  }
}

// y [B, width * groups] float32, z [B, >= width * groups] activations (row stride z_stride), o_norm [width *
// groups]: gated [B, width * groups] = RMSNorm(y SiLU(z)) over each group's `width` values, times o_norm.
extern "C" __global__ void __launch_bounds__(256)
kvp_mb_norm(const float* __restrict__ y, const act_t* __restrict__ z, long long z_stride,
            const act_t* __restrict__ o_norm, int groups, int width, float eps, act_t* __restrict__ gated) {
  __shared__ float scratch[32];
  kvp::pdl_enter();
  const int b = blockIdx.y, g = blockIdx.x, tid = threadIdx.x;
  const long long base = (long long)b * groups * width + (long long)g * width;
  float ss = 0.0f;
  for (int i = tid; i < width; i += blockDim.x) {
    const float v = y[base + i] * silu(ACT_TO_F(z[(long long)b * z_stride + g * width + i]));
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / (float)width + eps);
  for (int i = tid; i < width; i += blockDim.x) {
    const float v = y[base + i] * silu(ACT_TO_F(z[(long long)b * z_stride + g * width + i]));
    gated[base + i] = F_TO_ACT(v * inv * ACT_TO_F(o_norm[g * width + i]));
  }
}
