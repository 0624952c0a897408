// The residual add and the RMS norm after it in one launch (verify ran torch's add and F.rms_norm: two launches,
// the norm 7-12 us in an H200's batch-1 step, 2.9-7.3 us alone; this kernel 2.7-5.1 us alone): per token row,
// s = x + h rounded to the activations' dtype (the residual stream as the engine keeps it) and
// y = s * rsqrt(mean(s^2) + eps) * (w or 1 + w), float32 statistics.
// Without h, y is the norm of x. One CTA of 256 threads per row; a thread holds 4 adjacent elements (one 8-byte
// load) per 1,024 of the row, in registers until the statistics are known. hidden: a multiple of 4, at most
// ITEMS * 1,024; rows contiguous; s may be written over x (each thread reads its elements first).
// One entry per ITEMS (1, 2, 4, 8, 16), the host taking the smallest that holds the row: with ITEMS fixed at 16
// every thread kept 64 floats in registers whatever the row, so that an SM held two CTAs, and a prefill's 8,192
// rows of 2,048 ran in 31 waves (about 100 us a norm on an H200, three times its bytes' time).
// q_inv > 0 (an fp8 linear follows): y is written in e4m3 instead, y rounded to the activations' dtype, times q_inv,
// saturated (vLLM's fused RMSNorm + static fp8 quant), so that no quantisation launch sits between the norm and the
// matmul (sm_89 and later).
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_vec8.cuh"

#define KVP_NORM_THREADS 256

#if KVP_NORM_T == 0
typedef __half act_t;
typedef __half2 act2_t;
#define A2F(x) __half2float(x)
#define F2A(x) __float2half_rn(x)
#define A22F(x) __half22float2(x)
#define F22A(x) __float22half2_rn(x)
#else
typedef __nv_bfloat16 act_t;
typedef __nv_bfloat162 act2_t;
#define A2F(x) __bfloat162float(x)
#define F2A(x) __float2bfloat16_rn(x)
#define A22F(x) __bfloat1622float2(x)
#define F22A(x) __float22bfloat162_rn(x)
#endif

union Four {
  uint2 raw;
  act2_t pair[2];
};

__device__ __forceinline__ void load4(const act_t* p, float* out) {
  Four f;
  f.raw = *reinterpret_cast<const uint2*>(p);
  const float2 a = A22F(f.pair[0]), b = A22F(f.pair[1]);
  out[0] = a.x, out[1] = a.y, out[2] = b.x, out[3] = b.y;
}

__device__ __forceinline__ void store4(act_t* p, const float* v) {
  Four f;
  f.pair[0] = F22A(make_float2(v[0], v[1]));
  f.pair[1] = F22A(make_float2(v[2], v[3]));
  *reinterpret_cast<uint2*>(p) = f.raw;
}

// y's four values as e4m3 bytes (sm_89+: the host asks for them there only)
__device__ __forceinline__ void store4_e4m3(unsigned char* p, const float* v, float q_inv) {
  float q[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) q[j] = A2F(F2A(v[j])) * q_inv;
  *reinterpret_cast<unsigned*>(p) = kvp::e4m3x4(q);
}
template <int ITEMS>
__device__ __forceinline__ void add_rms_norm(const act_t* x, const act_t* __restrict__ h, const act_t* __restrict__ w,
                                             act_t* s_out, act_t* __restrict__ y, int hidden, float eps,
                                             float w_offset, float q_inv) {
  __shared__ float warps[KVP_NORM_THREADS / 32];
  const long long row = (long long)blockIdx.x * hidden;
  // the weight is read only after the statistics: start its (cold, per-layer) lines on their way to L2 now
  for (int line = threadIdx.x; line * 64 < hidden; line += KVP_NORM_THREADS)
    asm volatile("prefetch.global.L2 [%0];\n" ::"l"(w + line * 64));
  kvp::pdl_enter();  // x and h come from the kernels before
  float v[ITEMS][4];
  float ss = 0.f;
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int i = (k * KVP_NORM_THREADS + threadIdx.x) * 4;
    if (i < hidden) {
      load4(x + row + i, v[k]);
      if (h != nullptr) {
        float add[4];
        load4(h + row + i, add);
#pragma unroll
        for (int j = 0; j < 4; ++j) v[k][j] = A2F(F2A(v[k][j] + add[j]));
        store4(s_out + row + i, v[k]);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) ss += v[k][j] * v[k][j];
    }
  }
  for (int o = 16; o; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = ss;
  __syncthreads();
  ss = 0.f;
#pragma unroll
  for (int i = 0; i < KVP_NORM_THREADS / 32; ++i) ss += warps[i];
  const float r = rsqrtf(ss / hidden + eps);
#pragma unroll
  for (int k = 0; k < ITEMS; ++k) {
    const int i = (k * KVP_NORM_THREADS + threadIdx.x) * 4;
    if (i < hidden) {
      float g[4];
      load4(w + i, g);
#pragma unroll
      for (int j = 0; j < 4; ++j) v[k][j] = v[k][j] * r * (g[j] + w_offset);
      if (q_inv > 0.f)
        store4_e4m3(reinterpret_cast<unsigned char*>(y) + row + i, v[k], q_inv);
      else
        store4(y + row + i, v[k]);
    }
  }
}

#define KVP_NORM_ENTRY(ITEMS)                                                                                    \
  extern "C" __global__ void __launch_bounds__(KVP_NORM_THREADS)                                                \
      kvp_add_rms_norm_##ITEMS(const act_t* x, const act_t* __restrict__ h, const act_t* __restrict__ w,         \
                               act_t* s_out, act_t* __restrict__ y, int hidden, float eps, float w_offset,      \
                               float q_inv) {                                                                    \
    add_rms_norm<ITEMS>(x, h, w, s_out, y, hidden, eps, w_offset, q_inv);                                       \
  }
KVP_NORM_ENTRY(1)
KVP_NORM_ENTRY(2)
KVP_NORM_ENTRY(4)
KVP_NORM_ENTRY(8)
KVP_NORM_ENTRY(16)
