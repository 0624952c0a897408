// kvplan: the combine of MoE's grouped path (kvplan/gpu/ffn.py MoE._grouped), compiled at run time with NVRTC.
// The grouped GEMMs leave each (token, slot) pair's output row y[where[t k + j]] in expert order; a token's output
// is their sum weighted by the router, plus, where given, a shared expert's row times sigmoid of its gate:
//     out[t] = sum_j weights[t k + j] y[where[t k + j]]  (+ extra[t] sigmoid(gate[t gate_row]))
// torch did it as a gather of every pair row into token order, then a batched 1 x k by k x h matmul that cuBLAS
// runs as a GEMV (0.31 ms a layer at 8,192 tokens x 10 pairs on an H200, Qwen3-Next; the gather as much again),
// then two or three elementwise kernels for the shared expert. Here each pair row is read once where it lies.
// Eight columns a thread (16-byte loads), fp32 sums, the activations' dtype out.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_vec8.cuh"

namespace {

template <bool BF>
__device__ __forceinline__ void add8(float* acc, uint4 raw, float w) {
  const unsigned u[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    float2 f;
    if (BF) {
      f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u[k]));
    } else {
      f = __half22float2(*reinterpret_cast<const __half2*>(&u[k]));
    }
    acc[2 * k] += w * f.x, acc[2 * k + 1] += w * f.y;
  }
}

template <bool BF>
__device__ __forceinline__ float scalar(const void* p, long long i) {
  return BF ? __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(p)[i])
            : __half2float(reinterpret_cast<const __half*>(p)[i]);
}

template <bool BF>
__device__ __forceinline__ void gather_sum(const void* __restrict__ y, const long long* __restrict__ where,
                                           const float* __restrict__ weights, void* __restrict__ out, int tokens,
                                           int top_k, int h, const void* __restrict__ extra,
                                           const void* __restrict__ gate, long long gate_row) {
  kvp::pdl_enter();
  const int octs = h / 8, total = tokens * octs;  // 32-bit: the host checks tokens x h / 8 < 2^31
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int t = i / octs, col = (i - t * octs) * 8;
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
#pragma unroll 4  // several rows in flight a thread: each row's address is itself a load
    for (int j = 0; j < top_k; ++j) {
      const long long pair = (long long)t * top_k + j;
      const uint4 raw = *reinterpret_cast<const uint4*>(reinterpret_cast<const unsigned short*>(y)
                                                        + where[pair] * h + col);
      add8<BF>(acc, raw, weights[pair]);
    }
    if (extra != nullptr) {
      const float s = gate != nullptr ? 1.f / (1.f + __expf(-scalar<BF>(gate, t * gate_row))) : 1.f;
      add8<BF>(acc, *reinterpret_cast<const uint4*>(reinterpret_cast<const unsigned short*>(extra)
                                                    + (long long)t * h + col), s);
    }
    *reinterpret_cast<uint4*>(reinterpret_cast<unsigned short*>(out) + (long long)t * h + col) = kvp::pack8<BF>(acc);
  }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256) kvp_moe_gather_sum_bf16(
    const void* y, const long long* where, const float* weights, void* out, int tokens, int top_k, int h,
    const void* extra, const void* gate, long long gate_row) {
  gather_sum<true>(y, where, weights, out, tokens, top_k, h, extra, gate, gate_row);
}

extern "C" __global__ void __launch_bounds__(256) kvp_moe_gather_sum_f16(
    const void* y, const long long* where, const float* weights, void* out, int tokens, int top_k, int h,
    const void* extra, const void* gate, long long gate_row) {
  gather_sum<false>(y, where, weights, out, tokens, top_k, h, extra, gate, gate_row);
}
