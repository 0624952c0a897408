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
typedef uint2 cache8_t;  // eight cache values
#define F2C(x) __nv_fp8_e4m3(x)
#else
typedef act_t cache_t;
typedef uint4 cache8_t;
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
#define KVP_RC_ARGS                                                                                              \
  const act_t *__restrict__ q, long long q_row, const act_t *__restrict__ k, long long k_row,                    \
      const act_t *__restrict__ v, long long v_row, const act_t *__restrict__ cos_t,                            \
      const act_t *__restrict__ sin_t, long long cs_row, act_t *__restrict__ q_out, act_t *__restrict__ k_out,   \
      cache_t *__restrict__ kc, cache_t *__restrict__ vc, const long long *__restrict__ slots, int hq, int hk,   \
      int d, int rot, float inv_k_scale, float inv_v_scale

extern "C" __global__ void __launch_bounds__(256) kvp_rope_cache(KVP_RC_ARGS) {
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

// ---- eight values a thread (16-byte loads and stores) --------------------------------------------------------------
// The same rotation as `rotated`, a pair of 8-value groups at once: dims e..e+7 of the first half with e+half.. of the
// second. One value a thread with a division per value ran a prefill's RoPE at a sixth of its bytes' rate (H200,
// session 34: 262 us a layer of gpt-oss-20b at 8,192 tokens). The host takes these entries where every row, head and
// table starts 16 bytes aligned and rot is a multiple of 16 (rope_cache.py _aligned).

struct V8 {
  float f[8];
};

__device__ __forceinline__ V8 load8(const act_t* p) {
  union {
    uint4 raw;
    act_t h[8];
  } u;
  u.raw = *reinterpret_cast<const uint4*>(p);
  V8 v;
#pragma unroll
  for (int j = 0; j < 8; ++j) v.f[j] = A2F(u.h[j]);
  return v;
}

__device__ __forceinline__ void store8(act_t* p, const V8& v) {
  union {
    uint4 raw;
    act_t h[8];
  } u;
#pragma unroll
  for (int j = 0; j < 8; ++j) u.h[j] = F2A(v.f[j]);
  *reinterpret_cast<uint4*>(p) = u.raw;
}

__device__ __forceinline__ void store8_cache(cache_t* p, const V8& v, float inv_scale) {
  union {
    cache8_t raw;
    cache_t h[8];
  } u;
#pragma unroll
  for (int j = 0; j < 8; ++j) u.h[j] = F2C(v.f[j] * inv_scale);
  *reinterpret_cast<cache8_t*>(p) = u.raw;
}

// dims e..e+7 and half+e..half+e+7 of the head at x rotated into a (first) and b (second)
__device__ __forceinline__ void rotate8(const act_t* x, const act_t* c, const act_t* s, int e, int half, V8& a, V8& b) {
  const V8 x1 = load8(x + e), x2 = load8(x + half + e), c1 = load8(c + e), s1 = load8(s + e),
           c2 = load8(c + half + e), s2 = load8(s + half + e);
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    a.f[j] = x1.f[j] * c1.f[j] - x2.f[j] * s1.f[j];
    b.f[j] = x2.f[j] * c2.f[j] + x1.f[j] * s2.f[j];
  }
}

// kvp_rope_cache's work, a unit a thread: per head rot / 16 rotated pairs of groups, then (d - rot) / 8 groups
// copied; q's heads, then k's; then v's d / 8 groups a head (cache only).
extern "C" __global__ void __launch_bounds__(256) kvp_rope_cache_v8(KVP_RC_ARGS) {
  kvp::pdl_enter();
  const int t = blockIdx.x, half = rot >> 1, pairs = half >> 3, per_head = pairs + ((d - rot) >> 3);
  const int nq = hq * per_head, nk = hk * per_head, nv = hk * (d >> 3);
  const act_t* c = cos_t + t * cs_row;
  const act_t* s = sin_t + t * cs_row;
  const long long slot = kc != nullptr ? slots[t] : -1;
  const long long base = slot * hk * d;
  for (int i = blockIdx.y * blockDim.x + threadIdx.x; i < nq + nk + nv; i += gridDim.y * blockDim.x) {
    if (i >= nq + nk) {  // v: to the cache only
      if (slot >= 0) {
        const int e = (i - nq - nk) << 3, h = e / d;
        store8_cache(vc + base + e, load8(v + t * v_row + h * d + (e - h * d)), inv_v_scale);
      }
      continue;
    }
    const bool is_q = i < nq;
    const int j = is_q ? i : i - nq, h = j / per_head, u = j - h * per_head;
    const act_t* x = (is_q ? q + t * q_row : k + t * k_row) + h * d;
    V8 a, b;
    int e, e2 = -1;  // the group's dims (and its partner's)
    if (u < pairs) {
      e = u << 3;
      e2 = half + e;
      rotate8(x, c, s, e, half, a, b);
    } else {
      e = rot + ((u - pairs) << 3);
      a = load8(x + e);
    }
    act_t* out = is_q ? q_out + ((long long)t * hq + h) * d : (k_out != nullptr ? k_out + ((long long)t * hk + h) * d
                                                                                   : nullptr);
    if (out != nullptr) {
      store8(out + e, a);
      if (e2 >= 0) store8(out + e2, b);
    }
    if (!is_q && slot >= 0) {
      store8_cache(kc + base + h * d + e, a, inv_k_scale);
      if (e2 >= 0) store8_cache(kc + base + h * d + e2, b, inv_k_scale);
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

// CTA 0's share of a token: the latent row normed (and out), its rotated key part (and out), both stored at the slot
__device__ __forceinline__ void mla_latent_row(const act_t* __restrict__ kv, long long kv_row,
                                               const act_t* __restrict__ norm_w, const act_t* c, const act_t* s,
                                               act_t* __restrict__ latent_out, act_t* __restrict__ k_pe_out,
                                               cache_t* __restrict__ cache, const long long* __restrict__ slots,
                                               int rank, int rot, float eps, float inv_scale) {
  const int t = blockIdx.x;
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
}

#define KVP_MLA_ARGS                                                                                             \
  const act_t *__restrict__ q, long long q_row, int q_head, int q_off, int q_keep, const act_t *__restrict__ kv, \
      long long kv_row, const act_t *__restrict__ norm_w, const act_t *__restrict__ cos_t,                      \
      const act_t *__restrict__ sin_t, long long cs_row, act_t *__restrict__ q_out,                              \
      act_t *__restrict__ latent_out, act_t *__restrict__ k_pe_out, cache_t *__restrict__ cache,                 \
      const long long *__restrict__ slots, int hq, int rank, int rot, float eps, float inv_scale

extern "C" __global__ void __launch_bounds__(256) kvp_mla_rope_cache(KVP_MLA_ARGS) {
  const int t = blockIdx.x;
  const act_t* c = cos_t + t * cs_row;
  const act_t* s = sin_t + t * cs_row;
  if (blockIdx.y == 0) {
    mla_latent_row(kv, kv_row, norm_w, c, s, latent_out, k_pe_out, cache, slots, rank, rot, eps, inv_scale);
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

// The same, the query eight values a thread: per head q_keep / 8 groups copied, then rot / 16 rotated pairs
// (the host's alignment checks as kvp_rope_cache_v8's).
extern "C" __global__ void __launch_bounds__(256) kvp_mla_rope_cache_v8(KVP_MLA_ARGS) {
  const int t = blockIdx.x;
  const act_t* c = cos_t + t * cs_row;
  const act_t* s = sin_t + t * cs_row;
  if (blockIdx.y == 0) {
    mla_latent_row(kv, kv_row, norm_w, c, s, latent_out, k_pe_out, cache, slots, rank, rot, eps, inv_scale);
    return;
  }
  kvp::pdl_enter();
  const int half = rot >> 1, keep = q_keep >> 3, per_head = keep + (half >> 3), width = q_keep + rot;
  for (int i = (blockIdx.y - 1) * blockDim.x + threadIdx.x; i < hq * per_head; i += (gridDim.y - 1) * blockDim.x) {
    const int h = i / per_head, u = i - h * per_head;
    const act_t* qh = q + t * q_row + (long long)h * q_head;
    act_t* out = q_out + ((long long)t * hq + h) * width;
    if (u < keep) {
      store8(out + (u << 3), load8(qh + (u << 3)));
    } else {
      const int e = (u - keep) << 3;
      V8 a, b;
      rotate8(qh + q_off, c, s, e, half, a, b);
      store8(out + q_keep + e, a);
      store8(out + q_keep + half + e, b);
    }
  }
}
