// kvplan: a gated MLP's activation in one pass, act(gate) * up (vLLM runs its SiluAndMul / GeluAndMul op here),
// compiled at run time with NVRTC. The gate/up projection leaves each row as [gate (I) | up (I)]; torch split it and
// ran the activation and the multiply as two kernels, three passes over rows of the largest activations of a
// prefill (8,192 tokens x 4 pairs x 2 x 2,880 values a layer in gpt-oss-20b). Here each row is read once and the
// [rows, I] product written once. As torch and vLLM: act(gate) rounded to the activations' dtype, then times up in
// fp32, rounded again. Eight values a thread (16-byte loads and stores); I a multiple of 8.
// q_inv > 0 (an fp8 down projection follows): out is written in e4m3 instead, the product rounded to the activations'
// dtype, times q_inv, saturated (vLLM's silu_and_mul + static fp8 quant); sm_89 and later.
//   act 0: SiLU, x / (1 + e^-x); act 1: GELU, tanh approximation (Gemma); act 2: squared ReLU, not gated (Nemotron-H's
//   MLP and experts, vLLM's ReLUSquaredActivation: torch's relu and square, two passes): out = relu(in)^2, in [rows,
//   inter]

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_vec8.cuh"

namespace {

template <bool BF>
__device__ __forceinline__ float round16(float v) {  // to the activations' dtype and back
  return BF ? __bfloat162float(__float2bfloat16_rn(v)) : __half2float(__float2half_rn(v));
}

// GELU as x sigmoid(2 u), which is 0.5 x (1 + tanh u): the package builds with fast math, whose tanh is good to
// about 2^-11, and 1 + tanh u cancels where tanh u nears -1 (the tanh form failed its float64 test on an H200,
// session 34 call 1)
__device__ __forceinline__ float act(float x, int kind) {
  if (kind == 1) {
    const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);  // sqrt(2 / pi) (x + 0.044715 x^3)
    return x / (1.f + expf(-2.f * u));
  }
  if (kind == 2) {
    x = fmaxf(x, 0.f);
    return x * x;
  }
  return x / (1.f + expf(-x));
}

// eight values (rounded to the activations' dtype) times q_inv as e4m3 bytes (its own conversion, not kvp_vec8.cuh's
// e4m3x2: through that one the sm_90 cubin's registers and order differ from the one tested on the H200, session 36)
template <bool BF>
__device__ __forceinline__ uint2 e4m3x8(const float* v, float q_inv) {
  unsigned w[2] = {0u, 0u};
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
#pragma unroll
  for (int h = 0; h < 4; ++h) {
    unsigned short d;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n"
        : "=h"(d) : "f"(round16<BF>(v[2 * h + 1]) * q_inv), "f"(round16<BF>(v[2 * h]) * q_inv));
    w[h / 2] |= (unsigned)d << (16 * (h % 2));
  }
#else
  __trap();  // the host asks for e4m3 on sm_89 and later only
#endif
  return make_uint2(w[0], w[1]);
}

// in: [rows, 2 inter] (act 2: [rows, inter]; row stride in_row elements, 16-byte aligned rows); out: [rows, inter]
// contiguous (16-bit, or e4m3 bytes when q_inv > 0)
template <bool BF>
__device__ __forceinline__ void gated_act(const unsigned short* __restrict__ in, long long in_row,
                                          unsigned short* __restrict__ out, long long rows, int inter, int kind,
                                          float q_inv) {
  kvp::pdl_enter();
  const int octs = inter / 8;
  const long long total = rows * octs;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (long long)gridDim.x * blockDim.x) {
    const long long r = i / octs;
    const int col = (int)(i - r * octs) * 8;
    const unsigned short* row = in + r * in_row + col;
    float g[8], u[8];
    kvp::unpack8<BF>(*reinterpret_cast<const uint4*>(row), g);
    if (kind == 2) {
#pragma unroll
      for (int j = 0; j < 8; ++j) g[j] = act(g[j], 2);
    } else {
      kvp::unpack8<BF>(*reinterpret_cast<const uint4*>(row + inter), u);
#pragma unroll
      for (int j = 0; j < 8; ++j) g[j] = round16<BF>(act(g[j], kind)) * u[j];
    }
    if (q_inv > 0.f)
      *reinterpret_cast<uint2*>(reinterpret_cast<unsigned char*>(out) + r * inter + col) = e4m3x8<BF>(g, q_inv);
    else
      *reinterpret_cast<uint4*>(out + r * inter + col) = kvp::pack8<BF>(g);
  }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256) kvp_gated_act_bf16(const unsigned short* in, long long in_row,
                                                                      unsigned short* out, long long rows,
                                                                      int inter, int kind, float q_inv) {
  gated_act<true>(in, in_row, out, rows, inter, kind, q_inv);
}

extern "C" __global__ void __launch_bounds__(256) kvp_gated_act_f16(const unsigned short* in, long long in_row,
                                                                     unsigned short* out, long long rows,
                                                                     int inter, int kind, float q_inv) {
  gated_act<false>(in, in_row, out, rows, inter, kind, q_inv);
}
