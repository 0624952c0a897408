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

}  // namespace

extern "C" __global__ void __launch_bounds__(256) kvp_fp8_quant_bf16(const unsigned short* x, uint2* y,
                                                                      long long octs, float inv_scale) {
  quant<true>(x, y, octs, inv_scale);
}

extern "C" __global__ void __launch_bounds__(256) kvp_fp8_quant_f16(const unsigned short* x, uint2* y,
                                                                     long long octs, float inv_scale) {
  quant<false>(x, y, octs, inv_scale);
}
