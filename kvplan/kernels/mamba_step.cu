// One decode step of a Mamba-2 layer (Nemotron-H) for a batch of sequences, in two kernels that replace the torch
// path's ~20 kernels and its fp32 copies of every state (kvplan/gpu/mamba.py):
//
//   kvp_state_conv  per (sequence, channel): the causal depthwise convolution + bias, SiLU, the window shifted in
//                   its state slot (kvp_state_step.cuh; B and C channels are shared by a group's heads: one writer)
//   kvp_mb_ssm      per (sequence, group of heads): for each head h, with dt = softplus(dt_in + bias) and its state
//                   S [P, N] (read and written once, in its slot):  S <- exp(dt A_h) S + dt x_h B^T;
//                   y_h = S C + D_h x_h;  then the group's gated RMSNorm (y SiLU(z), normed over its heads, times
//                   the norm weight) in the activations' dtype: what out_proj multiplies.
//
// Thread layout of kvp_mb_ssm: a head's state is P rows of N values in 8-value vectors; N / 8 consecutive threads
// share a row (a power of two dividing 32), each holding its 8 columns of B and C in registers, and the row's y
// is their sum by shuffles. A thread's work is batches of ROUNDS vectors (a head's 8K-value state is one batch),
// and the next batch's loads are issued before the current one's update (two batches in registers). H200,
// Nemotron-H-8B's 128 x 64 x 128 heads (benchmarks/RESULTS.md session 35): one vector a thread at a time ran
// b256 at 52% of read and b1 in 123 us; a CTA per head (a third launch for the norm) b1 in 81 us but b256 at 33%.
// Every state element is loaded and stored once, 16 bytes at a time (bf16 / fp16 slots) or 32 (fp32).
// Arithmetic in fp32; the slot keeps the pool's dtype, as the torch path does.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_vec8.cuh"
#include "kvp_state_step.cuh"

#define ROUNDS 4  // 8-value vectors a thread loads before it computes (bytes in flight)

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

// One CTA's state update: batch t of its heads' work (head t / per_head, vectors from (t % per_head) ROUNDS
// blockDim.x on), the batch's loads all in flight together (load_batch), then its update, stores and row sums.
struct Work {
  state_t* states;  // the group's first head's state in the slot
  const float* x;   // the group's x channels (conv_out)
  float* y;         // shared [rep * P]
  const act_t *dt, *dt_bias, *a_log, *d_skip;
  int h0, per_head, vecs, lanes, p_dim, n_dim;
  float bb[8], cc[8];  // this thread's 8 columns of B and C
};

__device__ __forceinline__ void load_batch(const Work& w, int t, float (&s)[ROUNDS][8]) {
  const int hh = t / w.per_head, first = (t % w.per_head) * ROUNDS * blockDim.x;
  const state_t* S = w.states + (long long)hh * w.p_dim * w.n_dim;
#pragma unroll
  for (int r = 0; r < ROUNDS; ++r) {
    const int v = first + r * blockDim.x + threadIdx.x;
    if (v < w.vecs) load8(S + (long long)v * 8, s[r]);
  }
}

__device__ __forceinline__ void update_batch(const Work& w, int t, float (&s)[ROUNDS][8]) {
  const int hh = t / w.per_head, h = w.h0 + hh, first = (t % w.per_head) * ROUNDS * blockDim.x;
  const float in = ACT_TO_F(w.dt[h]) + ACT_TO_F(w.dt_bias[h]);
  const float step = in > 20.0f ? in : log1pf(__expf(in));
  const float decay = __expf(-step * __expf(ACT_TO_F(w.a_log[h])));
  const float d = ACT_TO_F(w.d_skip[h]);
  state_t* S = w.states + (long long)hh * w.p_dim * w.n_dim;
  const float* x = w.x + (long long)hh * w.p_dim;
#pragma unroll
  for (int r = 0; r < ROUNDS; ++r) {
    const int v = first + r * blockDim.x + threadIdx.x, p = v / w.lanes;
    const bool active = v < w.vecs;  // a row's lanes are all active or all not (vecs is a multiple of lanes)
    float acc = 0.0f;
    if (active) {
      const float dx = step * x[p];
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        s[r][k] = decay * s[r][k] + dx * w.bb[k];
        acc += s[r][k] * w.cc[k];
      }
      store8(S + (long long)v * 8, s[r]);
    }
    for (int o = w.lanes >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (active && threadIdx.x % w.lanes == 0) w.y[hh * w.p_dim + p] = acc + d * x[p];
  }
}

// conv_out [B, C] float32 (x: heads * P, then B and C: groups * N each); dt [B, >= heads] and z [B, heads * P]
// activations (row strides dt_stride, z_stride); A_log, D, dt_bias [heads]; o_norm [heads * P]. Shared memory:
// (2 N + heads / groups * P + 32) floats. gated [B, heads * P] activations.
extern "C" __global__ void __launch_bounds__(256, 2)
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
  float* const scratch = sm + 2 * n_dim + width;
  const float* row = conv_out + (long long)b * channels;
  for (int i = tid; i < n_dim; i += blockDim.x) {
    bv[i] = row[heads * p_dim + g * n_dim + i];
    cv[i] = row[heads * p_dim + (groups + g) * n_dim + i];
  }
  __syncthreads();
  Work w;
  w.lanes = n_dim / 8;
  w.vecs = p_dim * w.lanes;
  w.per_head = (w.vecs + ROUNDS * blockDim.x - 1) / (ROUNDS * blockDim.x);
  w.h0 = g * rep;
  w.states = pool + (long long)slot[b] * row_stride + state_offset + (long long)w.h0 * p_dim * n_dim;
  w.x = row + (long long)w.h0 * p_dim;
  w.y = sm + 2 * n_dim;
  w.dt = dt + (long long)b * dt_stride, w.dt_bias = dt_bias, w.a_log = a_log, w.d_skip = d_skip;
  w.p_dim = p_dim, w.n_dim = n_dim;
  const int n0 = (tid % w.lanes) * 8;
#pragma unroll
  for (int k = 0; k < 8; ++k) w.bb[k] = bv[n0 + k], w.cc[k] = cv[n0 + k];
  // batches two at a time: the next one's loads are issued before this one's update
  const int batches = rep * w.per_head;
  float s0[ROUNDS][8], s1[ROUNDS][8];
  load_batch(w, 0, s0);
  for (int t = 0; t < batches; t += 2) {
    if (t + 1 < batches) load_batch(w, t + 1, s1);
    update_batch(w, t, s0);
    if (t + 1 < batches) {
      if (t + 2 < batches) load_batch(w, t + 2, s0);
      update_batch(w, t + 1, s1);
    }
  }
  __syncthreads();
  float ss = 0.0f;
  for (int i = tid; i < width; i += blockDim.x) {
    const float v = w.y[i] * silu(ACT_TO_F(z[(long long)b * z_stride + g * width + i]));
    w.y[i] = v;
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss, scratch) / (float)width + eps);
  for (int i = tid; i < width; i += blockDim.x)
    gated[(long long)b * heads * p_dim + g * width + i] = F_TO_ACT(w.y[i] * inv * ACT_TO_F(o_norm[g * width + i]));
}
