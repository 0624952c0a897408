// Decode's rotary embedding and paged-cache write in one launch (vLLM runs its rotary_embedding and
// reshape_and_cache ops here): per new token, q rotated into a contiguous output, k rotated and v stored at the
// token's slot of the paged caches [blocks, block_size, kv_heads, head_dim] (flat slot = block * block_size +
// offset), fp8 caches divided by their scale. Rotate-half RoPE on the first `rot` dims of each head (pairs i,
// i + rot/2; the rest copied), cos/sin rows of `rot` values per token in the activations' dtype. Arithmetic in
// float32, one rounding per stored value.
// Prefill takes the same launch: k rotated is also written to a contiguous k_out (attention over the prompt reads
// it), no cache (null) or a slot of -1 (a window's tokens that stay out of the cache) skips the cache write.
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include "kvp_pdl.cuh"

#if KVP_RC_T == 0
typedef __half act_t;
#define A2F(x) __half2float(x)
#define F2A(x) __float2half_rn(x)
#else
typedef __nv_bfloat16 act_t;
#define A2F(x) __bfloat162float(x)
#define F2A(x) __float2bfloat16_rn(x)
#endif

#if KVP_RC_FP8
typedef __nv_fp8_e4m3 cache_t;
#define F2C(x) __nv_fp8_e4m3(x)
#else
typedef act_t cache_t;
#define F2C(x) F2A(x)
#endif

__device__ __forceinline__ float rotated(const act_t* x, const act_t* c, const act_t* s, int e, int rot) {
  const int half = rot >> 1;
  if (e >= rot) return A2F(x[e]);
  const float xe = A2F(x[e]);
  return e < half ? xe * A2F(c[e]) - A2F(x[e + half]) * A2F(s[e]) : xe * A2F(c[e]) + A2F(x[e - half]) * A2F(s[e]);
}

// q [T, hq, d] (row stride q_row, heads d apart), k / v [T, hk, d] likewise; cos / sin [T, rot] (row stride
// cs_row); q_out [T, hq, d] contiguous; k_out [T, hk, d] contiguous or null; kc / vc null (no cache) or caches
// with slots [T] int64 (-1: not stored).
extern "C" __global__ void __launch_bounds__(256)
kvp_rope_cache(const act_t* __restrict__ q, long long q_row, const act_t* __restrict__ k, long long k_row,
               const act_t* __restrict__ v, long long v_row, const act_t* __restrict__ cos_t,
               const act_t* __restrict__ sin_t, long long cs_row, act_t* __restrict__ q_out,
               act_t* __restrict__ k_out, cache_t* __restrict__ kc, cache_t* __restrict__ vc,
               const long long* __restrict__ slots, int hq, int hk, int d, int rot, float inv_k_scale,
               float inv_v_scale) {
  // grid (tokens, chunks): a token's q, k and v elements are spread over gridDim.y CTAs, one element per thread
  // (one CTA looping over a batch-1 token's 4,096 q values took 7 us on an H200, a chain of dependent loads)
  kvp::pdl_enter();
  const int t = blockIdx.x;
  const act_t* c = cos_t + t * cs_row;
  const act_t* s = sin_t + t * cs_row;
  const act_t* qt = q + t * q_row;
  act_t* qo = q_out + (long long)t * hq * d;
  const long long slot = kc != nullptr ? slots[t] : -1;
  const long long base = slot * hk * d;
  act_t* ko = k_out != nullptr ? k_out + (long long)t * hk * d : nullptr;
  const act_t* kt = k + t * k_row;
  const act_t* vt = v + t * v_row;
  const int nq = hq * d;
  for (int i = blockIdx.y * blockDim.x + threadIdx.x; i < nq + hk * d; i += gridDim.y * blockDim.x) {
    if (i < nq) {
      const int h = i / d, e = i - h * d;
      qo[i] = F2A(rotated(qt + h * d, c, s, e, rot));
    } else {
      const int ik = i - nq, h = ik / d, e = ik - h * d;
      const float kr = rotated(kt + h * d, c, s, e, rot);
      if (ko != nullptr) ko[ik] = F2A(kr);
      if (slot >= 0) {
        kc[base + ik] = F2C(kr * inv_k_scale);
        vc[base + ik] = F2C(A2F(vt[ik]) * inv_v_scale);
      }
    }
  }
}

// The sum of a CTA's `v` (blockDim.x a multiple of 32, at most 1,024), in every thread.
__device__ __forceinline__ float cta_sum(float v) {
  __shared__ float warps[32];
  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();  // warps[] may still be read by a previous call
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = v;
  __syncthreads();
  v = 0.f;
  for (int w = 0; w < (int)(blockDim.x >> 5); ++w) v += warps[w];
  return v;
}

// MLA decode's glue in one launch (verify ran an RMS norm, two rotate-half RoPEs of five kernels each, a concat
// and an index_put per layer): per new token, CTA 0 RMS-norms the latent part of kv_a's output row (weight w,
// float32 statistics) and stores it with the rotated key part at the token's slot of the latent cache
// [blocks, block_size, rank + rot]; CTAs 1.. rotate the query's rotary parts into a contiguous q_pe [T, hq, rot].
// q: head h's rotary part at q + t * q_row + h * q_head + q_off; kv: row t at kv + t * kv_row, [rank | rot].
// Prefill: q_keep = q_off copies each head's leading (no-RoPE) dims in front of its rotated part, so q_out is the
// whole query [T, hq, q_keep + rot] attention reads (decode: q_keep 0); the normed latent and the rotated key part
// also go to latent_out [T, rank] and k_pe_out [T, rot] where not null (the prompt's keys and values are made
// from them); no cache (null) or a slot of -1 skips the cache write.
extern "C" __global__ void __launch_bounds__(256)
kvp_mla_rope_cache(const act_t* __restrict__ q, long long q_row, int q_head, int q_off, int q_keep,
                   const act_t* __restrict__ kv, long long kv_row, const act_t* __restrict__ norm_w,
                   const act_t* __restrict__ cos_t, const act_t* __restrict__ sin_t, long long cs_row,
                   act_t* __restrict__ q_out, act_t* __restrict__ latent_out, act_t* __restrict__ k_pe_out,
                   cache_t* __restrict__ cache, const long long* __restrict__ slots, int hq, int rank, int rot,
                   float eps, float inv_scale) {
  const int t = blockIdx.x;
  const act_t* c = cos_t + t * cs_row;
  const act_t* s = sin_t + t * cs_row;
  if (blockIdx.y == 0) {
    const act_t* row = kv + t * kv_row;
    for (int line = threadIdx.x; line * 64 < rank; line += blockDim.x)  // read after the statistics: start it now
      asm volatile("prefetch.global.L2 [%0];\n" ::"l"(norm_w + line * 64));
    kvp::pdl_enter();
    float ss = 0.f;
    for (int i = threadIdx.x; i < rank; i += blockDim.x) {
      const float x = A2F(row[i]);
      ss += x * x;
    }
    const float r = rsqrtf(cta_sum(ss) / rank + eps);
    const long long slot = cache != nullptr ? slots[t] : -1;
    cache_t* dst = slot >= 0 ? cache + slot * (rank + rot) : nullptr;
    for (int i = threadIdx.x; i < rank; i += blockDim.x) {
      const float y = A2F(row[i]) * r * A2F(norm_w[i]);
      if (latent_out != nullptr) latent_out[(long long)t * rank + i] = F2A(y);
      if (slot >= 0) dst[i] = F2C(y * inv_scale);
    }
    for (int i = threadIdx.x; i < rot; i += blockDim.x) {
      const float y = rotated(row + rank, c, s, i, rot);
      if (k_pe_out != nullptr) k_pe_out[(long long)t * rot + i] = F2A(y);
      if (slot >= 0) dst[rank + i] = F2C(y * inv_scale);
    }
    return;
  }
  kvp::pdl_enter();
  const act_t* qt = q + t * q_row;
  const int width = q_keep + rot;
  act_t* qo = q_out + (long long)t * hq * width;
  for (int i = (blockIdx.y - 1) * blockDim.x + threadIdx.x; i < hq * width; i += (gridDim.y - 1) * blockDim.x) {
    const int h = i / width, e = i - h * width;
    const act_t* qh = qt + (long long)h * q_head;
    qo[i] = e < q_keep ? qh[e] : F2A(rotated(qh + q_off, c, s, e - q_keep, rot));
  }
}
