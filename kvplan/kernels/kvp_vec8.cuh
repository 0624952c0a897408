// Eight 16-bit activations (bf16 or fp16, one 16-byte load or store) to and from fp32: the grid-stride
// elementwise kernels' (gated_act.cu, moe_gather_sum.cu) unit of work. Needs cuda_bf16.h and cuda_fp16.h first.
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

}  // namespace kvp
