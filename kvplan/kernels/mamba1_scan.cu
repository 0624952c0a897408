// The selective state space of a Mamba-1 layer (Jamba; vLLM model_executor/layers/mamba/mamba_mixer.py) over R
// sequences of L tokens each: a prompt's scan (L tokens from empty states) and the decode step (L = 1 from the
// states in the slots) are the same kernel.
//
//   kvp_state_conv  (decode) per (sequence, channel): the causal depthwise convolution + bias, SiLU, the window
//                   shifted in its state slot (kvp_state_step.cuh)
//   kvp_m1_scan     per (sequence, channel, state n), token by token, with dt = softplus(dt_in + dt_bias) and
//                   A = -exp(A_log) per (channel, state):
//                       h[n] <- exp(dt A[n]) h[n] + dt x B[n];    y = (sum_n h[n] C[n] + D x) SiLU(z)
//
// Thread layout of kvp_m1_scan: N / 4 consecutive lanes share a channel (a power of two up to 32), each holding
// four of its states in registers for the whole sequence; y is their sum by shuffles. A CTA of 128 threads covers
// 128 / (N / 4) channels of one sequence (blockIdx.y). The next token's inputs are loaded before this token's
// update, so that only the recurrence itself is serial. Arithmetic in fp32; the slots keep the pool's dtype.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_state_step.cuh"

#define KVP_M1_SPT 4  // states a thread
#define KVP_M1_LOG2E 1.4426950408889634f

struct M1Token {
  float x, dt, z, b[KVP_M1_SPT], c[KVP_M1_SPT];
};

__device__ __forceinline__ void m1_load(M1Token& v, long long row, const act_t* x, long long xs, const act_t* dt,
                                        long long ds, const act_t* z, long long zs, const act_t* bc, long long bcs,
                                        int c, int n0, int n_state) {
  v.x = ACT_TO_F(x[row * xs + c]);
  v.dt = ACT_TO_F(dt[row * ds + c]);
  v.z = ACT_TO_F(z[row * zs + c]);
  const act_t* p = bc + row * bcs + n0;
#pragma unroll
  for (int s = 0; s < KVP_M1_SPT; ++s) {
    v.b[s] = ACT_TO_F(p[s]);
    v.c[s] = ACT_TO_F(p[n_state + s]);
  }
}

// x, dt, z [R L, >= C] activations (row strides xs, ds, zs; dt before its bias), bc [R L, >= 2 N] (B then C, row
// stride bcs), dt_bias [C] and d [C] activations, a_log [C, N] float32. slot [R] int32 or null; pool rows of
// row_stride elements, the states [C, N] at state_offset; load_state: start from the slots' states (else zeros);
// the final states are stored when slot is given. y [R L, C] activations (row stride ys).
extern "C" __global__ void __launch_bounds__(128)
kvp_m1_scan(const act_t* __restrict__ x, long long xs, const act_t* __restrict__ dt, long long ds,
            const act_t* __restrict__ z, long long zs, const act_t* __restrict__ bc, long long bcs,
            const act_t* __restrict__ dt_bias, const float* __restrict__ a_log, const act_t* __restrict__ d,
            const int* __restrict__ slot, state_t* __restrict__ pool, long long row_stride, long long state_offset,
            int load_state, int channels, int n_state, int tokens, act_t* __restrict__ y, long long ys) {
  const int lanes = n_state / KVP_M1_SPT;
  const int c_raw = blockIdx.x * (blockDim.x / lanes) + threadIdx.x / lanes;
  const bool live = c_raw < channels;
  const int c = live ? c_raw : channels - 1;  // dead lanes still shuffle with their group
  const int n0 = (threadIdx.x % lanes) * KVP_M1_SPT;
  const int r = blockIdx.y;
  float a2[KVP_M1_SPT], h[KVP_M1_SPT];
#pragma unroll
  for (int s = 0; s < KVP_M1_SPT; ++s) a2[s] = -__expf(a_log[(long long)c * n_state + n0 + s]) * KVP_M1_LOG2E;
  const float bias = ACT_TO_F(dt_bias[c]), dd = ACT_TO_F(d[c]);
  kvp::pdl_enter();
  state_t* st = slot ? pool + (long long)slot[r] * row_stride + state_offset + (long long)c * n_state + n0 : nullptr;
#pragma unroll
  for (int s = 0; s < KVP_M1_SPT; ++s) h[s] = (load_state && st) ? S_TO_F(st[s]) : 0.0f;
  const long long first = (long long)r * tokens;
  M1Token cur, next;
  m1_load(cur, first, x, xs, dt, ds, z, zs, bc, bcs, c, n0, n_state);
  for (int t = 0; t < tokens; ++t) {
    if (t + 1 < tokens) m1_load(next, first + t + 1, x, xs, dt, ds, z, zs, bc, bcs, c, n0, n_state);
    float step = cur.dt + bias;
    step = step <= 20.0f ? log1pf(__expf(step)) : step;  // softplus, as vLLM's selective scan
    const float dx = step * cur.x;
    float acc = 0.0f;
#pragma unroll
    for (int s = 0; s < KVP_M1_SPT; ++s) {
      h[s] = exp2f(step * a2[s]) * h[s] + dx * cur.b[s];
      acc += h[s] * cur.c[s];
    }
    for (int o = lanes >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (live && n0 == 0) y[(first + t) * ys + c] = F_TO_ACT((acc + dd * cur.x) * silu(cur.z));
    cur = next;
  }
  if (live && st) {
#pragma unroll
    for (int s = 0; s < KVP_M1_SPT; ++s) st[s] = F_TO_S(h[s]);
  }
}
