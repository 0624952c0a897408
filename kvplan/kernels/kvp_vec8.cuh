// Eight 16-bit activations (bf16 or fp16, one 16-byte load or store) to and from fp32: the grid-stride
// elementwise kernels' (gated_act.cu, moe_gather_sum.cu) unit of work. Needs cuda_bf16.h and cuda_fp16.h first.
// Also fp32 to e4m3 bytes for the fp8 linears' inputs (fp8_quant.cu, norm.cu; gated_act.cu keeps its own).
// (moe_gather_sum.cu's add8 keeps its own unpacking, fused with its weighted sum: written through unpack8 its
// cubins differed from the GPU-tested ones, which sharing this header left byte-identical; session 34.)
#pragma once

namespace kvp {

template <bool BF>
__device__ __forceinline__ void unpack8(uint4 raw, float* f) {
  const unsigned u[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    float2 p;
    if (BF) {
      p = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u[k]));
    } else {
      p = __half22float2(*reinterpret_cast<const __half2*>(&u[k]));
    }
    f[2 * k] = p.x, f[2 * k + 1] = p.y;
  }
}

template <bool BF>
__device__ __forceinline__ uint4 pack8(const float* f) {
  unsigned u[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if (BF) {
      const __nv_bfloat162 v = __floats2bfloat162_rn(f[2 * k], f[2 * k + 1]);
      u[k] = *reinterpret_cast<const unsigned*>(&v);
    } else {
      const __half2 v = __floats2half2_rn(f[2 * k], f[2 * k + 1]);
      u[k] = *reinterpret_cast<const unsigned*>(&v);
    }
  }
  return make_uint4(u[0], u[1], u[2], u[3]);
}


// two floats to two e4m3 bytes, lo first in memory (cvt puts its first operand in the high byte), saturated at
// +-448 and rounded to nearest; sm_89 and later (elsewhere a trap: the hosts ask for e4m3 there only)
__device__ __forceinline__ unsigned short e4m3x2(float lo, float hi) {
  unsigned short d = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(d) : "f"(hi), "f"(lo));
#else
  __trap();
#endif
  return d;
}

// four floats to four e4m3 bytes, v[0] first in memory
__device__ __forceinline__ unsigned e4m3x4(const float* v) {
  return (unsigned)e4m3x2(v[0], v[1]) | ((unsigned)e4m3x2(v[2], v[3]) << 16);
}

}  // namespace kvp
