// The selective state space of a Mamba-1 layer (Jamba; vLLM model_executor/layers/mamba/mamba_mixer.py) over R
// sequences of L tokens each: a prompt's scan (L tokens from empty states) and the decode step (L = 1 from the
// states in the slots) are the same kernel.
//
//   kvp_state_conv  (decode) per (sequence, channel): the causal depthwise convolution + bias, SiLU, the window
//                   shifted in its state slot (kvp_state_step.cuh)
//   kvp_m1_scan*    per (sequence, channel, state n), token by token, with dt = softplus(dt_in + dt_bias) and
//                   A = -exp(A_log) per (channel, state):
//                       h[n] <- exp(dt A[n]) h[n] + dt x B[n];    y = (sum_n h[n] C[n] + D x) SiLU(z)
//
// Thread layout of kvp_m1_scan16 (prompts): N / 16 lanes share a channel (one lane for Jamba's N = 16), each holding
// sixteen of its states in registers for the whole sequence (sixteen independent recurrences a thread); with more
// than one lane a channel's y is their sum by shuffles (kvp_m1_scan4, decode steps: four states a lane, N / 4 lanes
// a channel). A CTA of 128 threads covers CPB = 128 / lanes channels of one sequence (blockIdx.y). The inputs
// stream through shared memory in tiles of TILE tokens (x, dt, z: [TILE][CPB]; B and C: [TILE][2 N]) by 16-byte
// cp.async copies one tile ahead; a tile's B and C are widened to float32 once, and each lane reads its states' B
// and C as 16-byte broadcasts. Arithmetic in fp32; the slots keep the pool's dtype.
// H200, Jamba's 8,192 channels, one 8,192-token prompt (session 39): four states a thread (four lanes a channel,
// y by shuffles), token by token from global memory, 6.0 ms; through shared-memory tiles 2.8 ms; with softplus once
// a (token, channel) and the token loop unrolled 2.2 ms, split into 7 segments 1.7 ms; sixteen states a thread, 25
// segments, 1.03 ms.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_state_step.cuh"

#define KVP_M1_TILE 16  // tokens a shared-memory tile
#define KVP_M1_LOG2E 1.4426950408889634f

__device__ __forceinline__ void m1_copy16(act_t* dst, const act_t* src, bool valid) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0) : "memory");
}

// rows [first + t0, first + t0 + TILE) of a [rows, >= C] tensor, channels c0 .. c0 + cpb, into tile [TILE][cpb];
// past the sequence's end or the channels, zeros
__device__ __forceinline__ void m1_tile(act_t* tile, const act_t* src, long long stride, long long first, int t0,
                                        int tokens, int c0, int cpb, int channels) {
  const int per_row = cpb / 8;
  for (int i = threadIdx.x; i < KVP_M1_TILE * per_row; i += blockDim.x) {
    const int t = i / per_row, ch = c0 + (i % per_row) * 8;
    const bool valid = t0 + t < tokens && ch < channels;
    m1_copy16(tile + t * cpb + (i % per_row) * 8, valid ? src + (first + t0 + t) * stride + ch : src, valid);
  }
}

// x, dt, z [R L, >= C] activations (row strides xs, ds, zs; dt before its bias), bc [R L, >= 2 N] (B then C, row
// stride bcs), dt_bias [C] and d [C] activations, a_log [C, N] float32. slot [R] int32 or null; pool rows of
// row_stride elements, the states [C, N] at state_offset; load_state: start from the slots' states (else zeros);
// the final states are stored when slot is given. y [R L, C] activations (row stride ys). C, the strides and the
// tensors' addresses are multiples of 8 values (16 bytes); dynamic shared memory as Mamba1Plan.smem.
//
// Segments (blockIdx.z) of seg tokens split a long prompt over more CTAs than its channels give (one prompt of
// Jamba's 8,192 channels fills 64 CTAs): phase 1 scans every segment but the last from zero states and leaves its
// end state h_end [R, segs, C, N] and the sum of its steps [R, segs, C] in float32 workspaces (no y); phase 2 starts
// segment z from the state the segments before it hand on (A is constant in time, so a segment's decay is
// exp(A * its steps' sum): h <- exp(A sum_q) h + h_end_q, q < z) and writes y; the last segment stores the final
// state. Phase 0: one segment, no workspaces.

// the scan's parameters, shared by its two entry points
#define KVP_M1_PARAMS                                                                                              \
  const act_t *__restrict__ x, long long xs, const act_t *__restrict__ dt, long long ds,                          \
      const act_t *__restrict__ z, long long zs, const act_t *__restrict__ bc, long long bcs,                     \
      const act_t *__restrict__ dt_bias, const float *__restrict__ a_log, const act_t *__restrict__ d,            \
      const int *__restrict__ slot, state_t *__restrict__ pool, long long row_stride, long long state_offset,    \
      int load_state, int channels, int n_state, int tokens, act_t *__restrict__ y, long long ys, int phase,     \
      int seg, float *__restrict__ ws_h, float *__restrict__ ws_sum
#define KVP_M1_ARGS                                                                                                \
  x, xs, dt, ds, z, zs, bc, bcs, dt_bias, a_log, d, slot, pool, row_stride, state_offset, load_state, channels,   \
      n_state, tokens, y, ys, phase, seg, ws_h, ws_sum

template <int SPT>
__device__ __forceinline__ void m1_scan(KVP_M1_PARAMS) {
  extern __shared__ __align__(16) act_t m1_smem[];
  const int lanes = n_state / SPT;
  const int cpb = blockDim.x / lanes;
  const int c0 = blockIdx.x * cpb, cl = threadIdx.x / lanes;
  const bool live = c0 + cl < channels;
  const int c = live ? c0 + cl : channels - 1;  // dead lanes still shuffle with their group
  const int n0 = (threadIdx.x % lanes) * SPT;
  const int r = blockIdx.y, segs = gridDim.z + (phase == 1), zi = blockIdx.z;
  const int tile_x = KVP_M1_TILE * cpb, tile_bc = KVP_M1_TILE * 2 * n_state, buf = 3 * tile_x + tile_bc;
  float* bcf = reinterpret_cast<float*>(m1_smem + 2 * buf);  // the tile's B and C in float32, [TILE][2 N]
  float a2[SPT], h[SPT];
#pragma unroll
  for (int s = 0; s < SPT; ++s) a2[s] = -__expf(a_log[(long long)c * n_state + n0 + s]) * KVP_M1_LOG2E;
  const float dd = ACT_TO_F(d[c]), bias = ACT_TO_F(dt_bias[c]);
  kvp::pdl_enter();
  state_t* st = slot ? pool + (long long)slot[r] * row_stride + state_offset + (long long)c * n_state + n0 : nullptr;
#pragma unroll
  for (int s = 0; s < SPT; ++s) h[s] = (phase != 1 && load_state && st) ? S_TO_F(st[s]) : 0.0f;
  const long long ws_row = ((long long)r * segs) * channels + c;  // segment q of (r, c): ws_row + q * channels
  if (phase == 2) {
    for (int q = 0; q < zi; ++q) {
      const long long at = ws_row + (long long)q * channels;
      const float sum = ws_sum[at];
#pragma unroll
      for (int s = 0; s < SPT; ++s) h[s] = exp2f(sum * a2[s]) * h[s] + ws_h[at * n_state + n0 + s];
    }
  }
  const int begin = phase ? zi * seg : 0;
  const long long first = (long long)r * tokens + begin;
  const int count_all = phase ? min(seg, tokens - begin) : tokens;
  const int tiles = (count_all + KVP_M1_TILE - 1) / KVP_M1_TILE;
  float step_sum = 0.0f;
  auto load = [&](int k) {
    act_t* b = m1_smem + (k & 1) * buf;
    const int t0 = k * KVP_M1_TILE;
    m1_tile(b, x, xs, first, t0, count_all, c0, cpb, channels);
    m1_tile(b + tile_x, dt, ds, first, t0, count_all, c0, cpb, channels);
    m1_tile(b + 2 * tile_x, z, zs, first, t0, count_all, c0, cpb, channels);
    m1_tile(b + 3 * tile_x, bc, bcs, first, t0, count_all, 0, 2 * n_state, 2 * n_state);
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  };
  load(0);
  for (int k = 0; k < tiles; ++k) {
    if (k + 1 < tiles) {
      load(k + 1);
      asm volatile("cp.async.wait_group 1;\n" ::: "memory");
    } else {
      asm volatile("cp.async.wait_group 0;\n" ::: "memory");
    }
    __syncthreads();  // tile k has landed for every thread; the last tile's B and C are read
    const act_t* b = m1_smem + (k & 1) * buf;
    const int count = min(KVP_M1_TILE, count_all - k * KVP_M1_TILE);
    for (int i = threadIdx.x; i < count * 2 * n_state; i += blockDim.x) bcf[i] = ACT_TO_F(b[3 * tile_x + i]);
    __syncthreads();
    for (int t = 0; t < count; ++t) {
      const float xv = ACT_TO_F(b[t * cpb + cl]);
      float step = ACT_TO_F(b[tile_x + t * cpb + cl]) + bias;
      step = step <= 20.0f ? log1pf(__expf(step)) : step;  // softplus, as vLLM's selective scan
      const float dx = step * xv;
      const float4* bq = reinterpret_cast<const float4*>(bcf + t * 2 * n_state + n0);
      const float4* cq = reinterpret_cast<const float4*>(bcf + t * 2 * n_state + n_state + n0);
      float acc = 0.0f;
#pragma unroll
      for (int q = 0; q < SPT / 4; ++q) {
        const float4 bv = bq[q], cv = cq[q];
        const float bb[4] = {bv.x, bv.y, bv.z, bv.w}, cc[4] = {cv.x, cv.y, cv.z, cv.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int s = 4 * q + e;
          h[s] = exp2f(step * a2[s]) * h[s] + dx * bb[e];
          acc += h[s] * cc[e];
        }
      }
      if (phase == 1) {  // the segment's end state and decay only
        step_sum += step;
        continue;
      }
      for (int o = lanes >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
      if (live && n0 == 0) {
        const float gate = silu(ACT_TO_F(b[2 * tile_x + t * cpb + cl]));
        y[(first + k * KVP_M1_TILE + t) * ys + c] = F_TO_ACT((acc + dd * xv) * gate);
      }
    }
    __syncthreads();  // every thread is done with this buffer and B, C before the next round refills them
  }
  if (phase == 1) {
    const long long at = ws_row + (long long)zi * channels;
    if (live) {
#pragma unroll
      for (int s = 0; s < SPT; ++s) ws_h[at * n_state + n0 + s] = h[s];
      if (n0 == 0) ws_sum[at] = step_sum;
    }
    return;
  }
  if (live && st && (phase == 0 || zi == (int)gridDim.z - 1)) {
#pragma unroll
    for (int s = 0; s < SPT; ++s) st[s] = F_TO_S(h[s]);
  }
}

// SPT states a thread: 16 for prompts (one lane a channel at N = 16: sixteen independent recurrences a thread), 4
// for decode steps (four lanes a channel: a step of one token is all prologue and state traffic, which more
// threads a channel spread: H200, Jamba's decode layer with its matmuls at batch 256, 0.49 ms with sixteen states a
// thread, 0.29 with four; session 39 calls 4-5)
extern "C" __global__ void __launch_bounds__(128) kvp_m1_scan16(KVP_M1_PARAMS) { m1_scan<16>(KVP_M1_ARGS); }

extern "C" __global__ void __launch_bounds__(128) kvp_m1_scan4(KVP_M1_PARAMS) { m1_scan<4>(KVP_M1_ARGS); }
