// The causal depthwise convolution of eight adjacent channels at one token, the prefill convolutions' unit of work
// (deltanet_prefill.cu, ssd_prefill.cu): acc[k] += sum over taps j of w[c + k, j] x[t - (TAPS - 1 - j), c + k],
// taps before the sequence's start (TAPS - 1 - j > pos, t's position in it) skipped. w [C, TAPS] 16-bit (a
// channel's TAPS weights adjacent: TAPS 16-byte loads), x rows x_row apart, 16-byte aligned. Needs kvp_vec8.cuh.
#pragma once

namespace kvp {

template <bool BF, int TAPS>
__device__ __forceinline__ void causal_conv8(const unsigned short* __restrict__ x, long long x_row,
                                             const unsigned short* __restrict__ w, int t, int c, int pos,
                                             float (&acc)[8]) {
  float wt[8 * TAPS];  // wt[k * TAPS + j]: channel c + k, tap j
#pragma unroll
  for (int q = 0; q < TAPS; ++q)
    unpack8<BF>(*reinterpret_cast<const uint4*>(w + (long long)c * TAPS + 8 * q), wt + 8 * q);
#pragma unroll
  for (int j = 0; j < TAPS; ++j) {
    const int back = TAPS - 1 - j;
    if (back > pos) continue;
    float v[8];
    unpack8<BF>(*reinterpret_cast<const uint4*>(x + (long long)(t - back) * x_row + c), v);
#pragma unroll
    for (int k = 0; k < 8; ++k) acc[k] += wt[k * TAPS + j] * v[k];
  }
}

}  // namespace kvp
