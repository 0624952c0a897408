// Decode's rotary embedding and paged-cache write in one launch (vLLM runs its rotary_embedding and
// reshape_and_cache ops here): per new token, q rotated into a contiguous output, k rotated and v stored at the
// token's slot of the paged caches [blocks, block_size, kv_heads, head_dim] (flat slot = block * block_size +
// offset), fp8 caches divided by their scale. Rotate-half RoPE on the first `rot` dims of each head (pairs i,
// i + rot/2; the rest copied), cos/sin rows of `rot` values per token in the activations' dtype. Arithmetic in
// float32, one rounding per stored value.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>

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
// cs_row); q_out [T, hq, d] contiguous; slots [T] int64.
extern "C" __global__ void __launch_bounds__(256)
kvp_rope_cache(const act_t* __restrict__ q, long long q_row, const act_t* __restrict__ k, long long k_row,
               const act_t* __restrict__ v, long long v_row, const act_t* __restrict__ cos_t,
               const act_t* __restrict__ sin_t, long long cs_row, act_t* __restrict__ q_out,
               cache_t* __restrict__ kc, cache_t* __restrict__ vc, const long long* __restrict__ slots, int hq,
               int hk, int d, int rot, float inv_k_scale, float inv_v_scale) {
  // grid (tokens, chunks): a token's q, k and v elements are spread over gridDim.y CTAs, one element per thread
  // (one CTA looping over a batch-1 token's 4,096 q values took 7 us on an H200, a chain of dependent loads)
  const int t = blockIdx.x;
  const act_t* c = cos_t + t * cs_row;
  const act_t* s = sin_t + t * cs_row;
  const act_t* qt = q + t * q_row;
  act_t* qo = q_out + (long long)t * hq * d;
  const long long base = slots[t] * hk * d;
  const act_t* kt = k + t * k_row;
  const act_t* vt = v + t * v_row;
  const int nq = hq * d;
  for (int i = blockIdx.y * blockDim.x + threadIdx.x; i < nq + hk * d; i += gridDim.y * blockDim.x) {
    if (i < nq) {
      const int h = i / d, e = i - h * d;
      qo[i] = F2A(rotated(qt + h * d, c, s, e, rot));
    } else {
      const int ik = i - nq, h = ik / d, e = ik - h * d;
      kc[base + ik] = F2C(rotated(kt + h * d, c, s, e, rot) * inv_k_scale);
      vc[base + ik] = F2C(A2F(vt[ik]) * inv_v_scale);
    }
  }
}
