// kvplan: activations to e4m3 for an fp8 linear (W8A8), as vLLM's scaled_fp8_quant with a static scale: y = x / s,
// saturated to +-448, rounded to nearest, in one pass (torch needs four: to float32, divide, clamp, cast; and an
// fp32 copy of a whole prefill's rows). compiled at run time with NVRTC. Eight values a thread (a 16-byte load, an
// 8-byte store); the tensor's length a multiple of 8. It lets the next kernel (the GEMV, whose weights need no
// input) start before its own wait: that one waits for this grid before it reads y.
//
// Also per-token-group scales (DeepSeek-V3's block-fp8 linears run as W8A8, vLLM's per_token_group_quant_fp8):
// x [tokens, 128 * groups], s[t, g] = max(amax(|x[t, 128g : 128g + 128]|) / 448, GROUP_EPS), q = x / s saturated,
// rounded to nearest. s is column-major over padded_rows (s[g * padded_rows + t], as cuBLAS's 1x128 block scales
// want); rows past tokens get q = 0 and s = 1. Sixteen threads a group (a 16-byte load, an 8-byte store each),
// its amax by shuffles within the sixteen. Both divisions are correctly rounded (__fdiv_rn: the build has
// --use_fast_math), so q and s equal the torch form's (fp8_quant.py group_quant_reference) bit for bit; its
// ftz changes nothing: s >= GROUP_EPS is normal, and a quotient or input below float32's normals is e4m3's +-0 either
// way. A NaN in a group makes its scale and its q NaN, as torch's amax does.
//
// And back: block-scaled e4m3 weights to bf16 (DeepSeek-V3's experts before the grouped GEMMs of a long prefill),
// out[m][r][c] = bf16(q[m][r][c] * s[m][r / 128][c / 128]): the fp32 product rounded to nearest, as torch's
// q.to(bf16) * s (kvplan/gpu/fp8.py dequantize_blocks) bit for bit. Sixteen values a thread (a 16-byte load, two
// 16-byte stores) under one scale: cols is a multiple of 128, so a run of sixteen lies in one block.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_vec8.cuh"

namespace {

template <bool BF>
__device__ __forceinline__ void quant(const unsigned short* __restrict__ x, uint2* __restrict__ y, long long octs,
                                      float inv_scale) {
  kvp::pdl_release();  // the GEMV after may start copying its weights while this waits for x
  kvp::pdl_wait();
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < octs;
       i += (long long)gridDim.x * blockDim.x) {
    float v[8];
    kvp::unpack8<BF>(*reinterpret_cast<const uint4*>(x + 8 * i), v);
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] *= inv_scale;
    y[i] = make_uint2(kvp::e4m3x4(v), kvp::e4m3x4(v + 4));
  }
}

constexpr float GROUP_EPS = 1e-10f;  // the scale of an all-zero group (fp8_quant.py GROUP_EPS)

__device__ __forceinline__ float max_nan(float a, float b) { return (a > b || a != a) ? a : b; }

// one warp: two groups a pass (lanes 0-15, 16-31), in the order of x; items = padded_rows * groups. The loop's
// bound is the warp's, so every lane reaches the shuffles; a half past the end (odd items) computes on zeros
template <bool BF>
__device__ __forceinline__ void group_quant(const unsigned short* __restrict__ x, uint2* __restrict__ q,
                                            float* __restrict__ s, int tokens, int padded_rows, int groups) {
  kvp::pdl_release();
  kvp::pdl_wait();
  const long long items = (long long)padded_rows * groups;
  const int lane = threadIdx.x & 15;
  const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
  for (long long w = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); 2 * w < items; w += warps) {
    const long long item = 2 * w + ((threadIdx.x >> 4) & 1);  // row-major (t, g): x's and q's order
    const bool live = item < items;
    const int t = (int)(item / groups), g = (int)(item - (long long)t * groups);
    const bool real = live && t < tokens;
    float v[8];
    float amax = 0.f;
    if (real) {
      kvp::unpack8<BF>(*reinterpret_cast<const uint4*>(x + 128 * item + 8 * lane), v);
#pragma unroll
      for (int j = 0; j < 8; ++j) amax = max_nan(amax, fabsf(v[j]));
    }
#pragma unroll
    for (int o = 8; o; o >>= 1) amax = max_nan(amax, __shfl_xor_sync(0xffffffffu, amax, o, 16));
    if (!live) continue;
    if (!real) {  // a padded row: a product of zeros, a scale of one
      q[16 * item + lane] = make_uint2(0u, 0u);
      if (lane == 0) s[(long long)g * padded_rows + t] = 1.f;
      continue;
    }
    float scale = __fdiv_rn(amax, 448.f);
    scale = scale < GROUP_EPS ? GROUP_EPS : scale;  // NaN stays NaN
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = __fdiv_rn(v[j], scale);
    q[16 * item + lane] = make_uint2(kvp::e4m3x4(v), kvp::e4m3x4(v + 4));
    if (lane == 0) s[(long long)g * padded_rows + t] = scale;
  }
}

// two e4m3 bytes (the first in memory in the low byte) as two floats, exactly (every e4m3 value is a half)
__device__ __forceinline__ float2 e4m3x2_float2(unsigned short v) {
  unsigned h = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;\n" : "=r"(h) : "h"(v));
#else
  __trap();
#endif
  return __half22float2(*reinterpret_cast<const __half2*>(&h));
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256) kvp_fp8_block_dequant_bf16(const uint4* __restrict__ q,
                                                                              const float* __restrict__ s,
                                                                              uint4* __restrict__ out,
                                                                              long long sixteens, int rows, int cols) {
  kvp::pdl_release();
  kvp::pdl_wait();
  const int per_row = cols >> 4, groups = cols >> 7, blocks = (rows + 127) >> 7;
  const long long per_matrix = (long long)rows * per_row;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < sixteens;
       i += (long long)gridDim.x * blockDim.x) {
    const long long m = i / per_matrix, rem = i - m * per_matrix;
    const int r = (int)(rem / per_row), c16 = (int)(rem - (long long)r * per_row);
    const float sc = __ldg(s + (m * blocks + (r >> 7)) * groups + (c16 >> 3));
    const uint4 v = q[i];
    const unsigned w[4] = {v.x, v.y, v.z, v.w};
    unsigned o[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float2 f = e4m3x2_float2((unsigned short)(w[j >> 1] >> (16 * (j & 1))));
      const __nv_bfloat162 b = __floats2bfloat162_rn(f.x * sc, f.y * sc);
      o[j] = *reinterpret_cast<const unsigned*>(&b);
    }
    out[2 * i] = make_uint4(o[0], o[1], o[2], o[3]);
    out[2 * i + 1] = make_uint4(o[4], o[5], o[6], o[7]);
  }
}

extern "C" __global__ void __launch_bounds__(256) kvp_fp8_quant_bf16(const unsigned short* x, uint2* y,
                                                                      long long octs, float inv_scale) {
  quant<true>(x, y, octs, inv_scale);
}

extern "C" __global__ void __launch_bounds__(256) kvp_fp8_quant_f16(const unsigned short* x, uint2* y,
                                                                     long long octs, float inv_scale) {
  quant<false>(x, y, octs, inv_scale);
}

extern "C" __global__ void __launch_bounds__(256) kvp_fp8_group_quant_bf16(const unsigned short* x, uint2* q, float* s,
                                                                            int tokens, int padded_rows, int groups) {
  group_quant<true>(x, q, s, tokens, padded_rows, groups);
}

extern "C" __global__ void __launch_bounds__(256) kvp_fp8_group_quant_f16(const unsigned short* x, uint2* q, float* s,
                                                                           int tokens, int padded_rows, int groups) {
  group_quant<false>(x, q, s, tokens, padded_rows, groups);
}
