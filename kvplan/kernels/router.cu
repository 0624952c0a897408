// The router of an MoE layer in one launch (verify ran softmax, top-k, the renormalising sum and divide and the
// scale as five to seven torch kernels per layer): per token, softmax over the experts' logits in float32, the
// top k, their probabilities renormalised to sum 1 where the model does so, times the routed scale. One warp per
// token; lane l holds experts l, l + 32, ... Ties go to the lower expert id.
//
// The general rule (kvplan/model/routing.py, vLLM's grouped_topk), when `general` is set: the router's own bias
// `logit_bias` [E] (logits' dtype) added first; softmax or sigmoid (`sigmoid`) scores; a float32 correction bias
// [E] added to the scores to choose, not to weigh; `groups` equal runs of experts of which the `topk_groups` best
// may be chosen (a group's score: its best value, or the sum of its two best with a correction bias); the top k
// weighed by their scores.
//
// logits [T, E] (KVP_RT_T: 0 fp16, 1 bf16, 2 fp32, row stride `row`); weights [T, k + shared] fp32; ids
// [T, k + shared] int64, or int32 with ids32 (what the MoE pairs kernel takes: no conversion launch). The last
// `shared` columns are a shared expert joined to the routed ones (kvplan/gpu/weights.py join_shared_experts): ids
// E, E + 1, ... at weight sigmoid(gate[t * gate_row]) (Qwen's shared-expert gate, same dtype as the logits), or 1
// without a gate.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "kvp_pdl.cuh"

#define KVP_RT_MAX_E 512
#define KVP_RT_NEG_INF __int_as_float(0xff800000)
#define KVP_RT_PER_LANE (KVP_RT_MAX_E / 32)

#if KVP_RT_T == 0
typedef __half logit_t;
__device__ __forceinline__ float to_f(logit_t x) { return __half2float(x); }
#elif KVP_RT_T == 1
typedef __nv_bfloat16 logit_t;
__device__ __forceinline__ float to_f(logit_t x) { return __bfloat162float(x); }
#else
typedef float logit_t;
__device__ __forceinline__ float to_f(logit_t x) { return x; }
#endif

// (a, ea) before (b, eb): the larger logit, ties to the lower expert id.
__device__ __forceinline__ bool better(float a, int ea, float b, int eb) { return a > b || (a == b && ea < eb); }

// The best of a lane's experts lane + 32 j (a tree: 4 dependent levels for 16 values); id INT_MAX when none.
__device__ __forceinline__ void lane_argmax(const float (&v)[KVP_RT_PER_LANE], int lane, int experts, float& best,
                                            int& best_e) {
  float b[KVP_RT_PER_LANE];
  int e[KVP_RT_PER_LANE];
#pragma unroll
  for (int j = 0; j < KVP_RT_PER_LANE; ++j) {
    e[j] = lane + 32 * j < experts ? lane + 32 * j : 0x7fffffff;
    b[j] = v[j];
  }
  static_assert(KVP_RT_PER_LANE == 16, "four tree levels");
#define KVP_RT_LEVEL(W)                                                                  \
  _Pragma("unroll") for (int j = 0; j < W; ++j) if (better(b[j + W], e[j + W], b[j], e[j])) \
      b[j] = b[j + W], e[j] = e[j + W];
  KVP_RT_LEVEL(8)
  KVP_RT_LEVEL(4)
  KVP_RT_LEVEL(2)
  KVP_RT_LEVEL(1)
#undef KVP_RT_LEVEL
  best = b[0], best_e = e[0];
}

// Lane l < k writes the token's l-th chosen expert (weight p times the scale), lanes k .. k + shared - 1 the joined
// shared expert's columns.
__device__ __forceinline__ void write_route(int tok, int lane, int k, int shared, int experts, float p, float scale,
                                            long long picked_id, const logit_t* __restrict__ gate, long long gate_row,
                                            float* __restrict__ weights, void* __restrict__ ids, int ids32) {
  const int width = k + shared;
  if (lane >= width) return;
  float w;
  if (lane < k) {
    w = p * scale;
  } else {
    picked_id = experts + lane - k;
    w = gate != nullptr ? 1.f / (1.f + __expf(-to_f(gate[tok * gate_row]))) : 1.f;
  }
  weights[(long long)tok * width + lane] = w;
  if (ids32)
    reinterpret_cast<int*>(ids)[(long long)tok * width + lane] = (int)picked_id;
  else
    reinterpret_cast<long long*>(ids)[(long long)tok * width + lane] = picked_id;
}

// k rounds of a warp argmax over the chosen-on values v of the experts not yet taken, then the route written.
// Each lane keeps the best of its own experts; a round compares the 32 lanes' bests (5 shuffle levels) and only
// the lane whose expert was taken looks again (a 4-level tree over its 16 values). A linear scan of all 16 values
// every round, a 16-step dependent chain, took 9.1 us per call at 512 experts, top 10, on an H200. A pick weighs
// its score s, read by the lane that holds it (SCORED: the general rule, where the values chosen on are not the
// scores), or its softmax probability from the logit it was chosen on and the row's max m and sum.
template <bool SCORED>
__device__ __forceinline__ void take_top_k(float (&v)[KVP_RT_PER_LANE], const float (&s)[KVP_RT_PER_LANE], int lane,
                                           int experts, int k, float m, float sum, int tok, int shared, int renorm,
                                           float scale, const logit_t* gate, long long gate_row, float* weights,
                                           void* ids, int ids32) {
  const unsigned FULL = 0xffffffffu;
  float lane_best;
  int lane_e;
  lane_argmax(v, lane, experts, lane_best, lane_e);
  float picked_p = 0.f, picked_sum = 0.f;
  long long picked_id = 0;
  for (int r = 0; r < k; ++r) {
    float best = lane_best;
    int best_e = lane_e;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(FULL, best, o);
      const int oe = __shfl_xor_sync(FULL, best_e, o);
      if (better(ob, oe, best, best_e)) best = ob, best_e = oe;
    }
    float p = 0.f;
    if ((best_e & 31) == lane) {  // taken: the lane that holds it drops it (static indices keep v in registers)
#pragma unroll
      for (int j = 0; j < KVP_RT_PER_LANE; ++j)
        if (best_e == lane + 32 * j) {
          v[j] = KVP_RT_NEG_INF;
          if (SCORED) p = s[j];
        }
      lane_argmax(v, lane, experts, lane_best, lane_e);
    }
    p = SCORED ? __shfl_sync(FULL, p, best_e & 31) : __expf(best - m) / sum;
    picked_sum += p;
    if (lane == r) picked_p = p, picked_id = best_e;
  }
  write_route(tok, lane, k, shared, experts, renorm ? picked_p / picked_sum : picked_p, scale, picked_id, gate,
              gate_row, weights, ids, ids32);
}

extern "C" __global__ void __launch_bounds__(128)
kvp_router(const logit_t* __restrict__ logits, long long row, int tokens, int experts, int k, int renorm,
           float scale, float* __restrict__ weights, void* __restrict__ ids, int ids32, int shared,
           const logit_t* __restrict__ gate, long long gate_row, int general, int sigmoid,
           const logit_t* __restrict__ logit_bias, const float* __restrict__ correction, int groups,
           int topk_groups) {
  const unsigned FULL = 0xffffffffu;
  __shared__ float group_values[4][KVP_RT_MAX_E];  // a warp's chosen-on values, read group by group
  kvp::pdl_enter();  // the logits come from the kernel before
  const int lane = threadIdx.x & 31;
  const int tok = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (tok >= tokens) return;  // whole warps leave together
  const logit_t* lr = logits + tok * row;
  float v[KVP_RT_PER_LANE];
  float m = KVP_RT_NEG_INF;
#pragma unroll
  for (int j = 0; j < KVP_RT_PER_LANE; ++j) {
    const int e = lane + 32 * j;
    v[j] = e < experts ? to_f(lr[e]) + (logit_bias != nullptr ? to_f(logit_bias[e]) : 0.f) : KVP_RT_NEG_INF;
    m = fmaxf(m, v[j]);
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(FULL, m, o));
  float sum = 0.f;
#pragma unroll
  for (int j = 0; j < KVP_RT_PER_LANE; ++j) sum += lane + 32 * j < experts ? __expf(v[j] - m) : 0.f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(FULL, sum, o);
  if (general) {
    // scores s (what weighs), chosen-on values c = s + correction (what chooses)
    float s[KVP_RT_PER_LANE];
#pragma unroll
    for (int j = 0; j < KVP_RT_PER_LANE; ++j) {
      const int e = lane + 32 * j;
      s[j] = e >= experts ? 0.f : sigmoid ? 1.f / (1.f + expf(-v[j])) : expf(v[j] - m) / sum;
      v[j] = e >= experts ? KVP_RT_NEG_INF : s[j] + (correction != nullptr ? correction[e] : 0.f);
    }
    if (topk_groups < groups) {
      float* gv = group_values[(threadIdx.x >> 5) & 3];
#pragma unroll
      for (int j = 0; j < KVP_RT_PER_LANE; ++j)
        if (lane + 32 * j < experts) gv[lane + 32 * j] = v[j];
      __syncwarp();
      const int size = experts / groups;
      float g = KVP_RT_NEG_INF;
      if (lane < groups) {  // the group's best value, or its two best summed with a correction bias
        float b1 = KVP_RT_NEG_INF, b2 = KVP_RT_NEG_INF;
        for (int i = lane * size; i < (lane + 1) * size; ++i) {
          const float x = gv[i];
          if (x > b1) b2 = b1, b1 = x;
          else if (x > b2) b2 = x;
        }
        g = correction != nullptr ? b1 + b2 : b1;
      }
      unsigned allowed = 0;  // bit per group: among the topk_groups best (ties to the lower group)
      for (int r = 0; r < topk_groups; ++r) {
        float best = g;
        int best_g = lane < groups ? lane : 0x7fffffff;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
          const float ob = __shfl_xor_sync(FULL, best, o);
          const int og = __shfl_xor_sync(FULL, best_g, o);
          if (better(ob, og, best, best_g)) best = ob, best_g = og;
        }
        allowed |= 1u << best_g;
        if (lane == best_g) g = KVP_RT_NEG_INF;
      }
#pragma unroll
      for (int j = 0; j < KVP_RT_PER_LANE; ++j)
        if (lane + 32 * j < experts && !((allowed >> ((lane + 32 * j) / size)) & 1u)) v[j] = KVP_RT_NEG_INF;
    }
    take_top_k<true>(v, s, lane, experts, k, m, sum, tok, shared, renorm, scale, gate, gate_row, weights, ids,
                     ids32);
    return;
  }
  take_top_k<false>(v, v, lane, experts, k, m, sum, tok, shared, renorm, scale, gate, gate_row, weights, ids, ids32);
}
