// kvplan: activations to e4m3 for an fp8 linear (W8A8), as vLLM's scaled_fp8_quant with a static scale: y = x / s,
// saturated to +-448, rounded to nearest, in one pass (torch needs four: to float32, divide, clamp, cast; and an
// fp32 copy of a whole prefill's rows). compiled at run time with NVRTC. Eight values a thread (a 16-byte load, an
// 8-byte store); the tensor's length a multiple of 8. It lets the next kernel (the GEMV, whose weights need no
// input) start before its own wait: that one waits for this grid before it reads y.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_vec8.cuh"

namespace {

// two floats to two e4m3 bytes, a in the low one (first in memory): cvt puts its first operand high (sm_89+)
__device__ __forceinline__ unsigned short e4m3x2(float a, float b) {
  unsigned short d = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(d) : "f"(b), "f"(a));
#else
  __trap();  // the host runs this kernel on sm_89 and later only
#endif
  return d;
}

template <bool BF>
__device__ __forceinline__ void quant(const unsigned short* __restrict__ x, uint2* __restrict__ y, long long octs,
                                      float inv_scale) {
  kvp::pdl_release();  // the GEMV after may start copying its weights while this waits for x
  kvp::pdl_wait();
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < octs;
       i += (long long)gridDim.x * blockDim.x) {
    float v[8];
    kvp::unpack8<BF>(*reinterpret_cast<const uint4*>(x + 8 * i), v);
    unsigned w[2];
#pragma unroll
    for (int h = 0; h < 2; ++h)
      w[h] = e4m3x2(v[4 * h] * inv_scale, v[4 * h + 1] * inv_scale) |
             ((unsigned)e4m3x2(v[4 * h + 2] * inv_scale, v[4 * h + 3] * inv_scale) << 16);
    y[i] = make_uint2(w[0], w[1]);
  }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256) kvp_fp8_quant_bf16(const unsigned short* x, uint2* y,
                                                                      long long octs, float inv_scale) {
  quant<true>(x, y, octs, inv_scale);
}

extern "C" __global__ void __launch_bounds__(256) kvp_fp8_quant_f16(const unsigned short* x, uint2* y,
                                                                     long long octs, float inv_scale) {
  quant<false>(x, y, octs, inv_scale);
}
