// mxfp4 experts (OCP MX: e2m1 values, low nibble first, one E8M0 scale per 32 values) -> bf16, for the grouped
// GEMMs that run gpt-oss's experts at large batches (kvplan/gpu/ffn.py): every expert of a layer dequantised into
// one scratch the layers share, instead of torch's lookup-table ops (a transient per op) or kvplan's by-expert
// kernel (mma.sync on values dequantised per warp: 57 TFLOP/s at 599 tokens, H200).
//
// A warp takes 32 consecutive groups (1,024 values, 128 chunks of 8): in each of 4 steps lane t converts chunk
// 32 k + t (group 8 k + t / 4, packed word t % 4), so every load is 128 contiguous bytes and every store 512
// (one 16-byte store per lane). Each thread converting a whole group with 4 stores 64 bytes apart measured
// 1.03 ms for gpt-oss-20b's 2 GB a layer on an H200 (partial 32-byte sectors in every store); contiguous stores
// with a dozen integer ops a value 0.76 ms; hence the lookup below.
// Exact, in integers (the package compiles with --use_fast_math, which would flush subnormal float products):
// an e2m1 value has two significant bits and the scale is a power of two, so nothing rounds. Scale bytes 2..252
// (every result a normal bf16: every real checkpoint) take a per-group lookup of the 8 magnitudes' bf16 bits
// through PRMT (4 values per PRMT pair); the others a per-value path with subnormals and infinities.

#include "kvp_pdl.cuh"

#define KVP_MX_THREADS 256

__device__ __forceinline__ unsigned prmt(unsigned a, unsigned b, unsigned sel) {
  unsigned d;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
  return d;
}

// the bf16 bits of magnitudes m = 0..7 times 2^(s - 127) for 2 <= s <= 252 (entry 0 is 0, entry 1 (0.5) is
// (s - 1) << 7, entry m >= 2 is (m << 6) + that), as PRMT tables: low bytes of entries 0-3 and 4-7, high bytes
struct Tables {
  unsigned lo0, lo1, hi0, hi1;
};
__device__ __forceinline__ Tables scale_tables(int s) {
  const unsigned base = (unsigned)(s - 1) << 7, b2 = base * 0x10001u;
  const unsigned p01 = base << 16, p23 = b2 + 0x00c00080u, p45 = b2 + 0x01400100u, p67 = b2 + 0x01c00180u;
  return {prmt(p01, p23, 0x6420), prmt(p45, p67, 0x6420), prmt(p01, p23, 0x7531), prmt(p45, p67, 0x7531)};
}

// 4 nibbles (the low 16 bits of q) -> 2 bf16 pairs by lookup; the signs (bit 3 of each nibble) reach bits 15 and 31
// of a pair through one multiply (<< 12 and << 24 at once) and a mask
__device__ __forceinline__ uint2 four_to_bf16(unsigned q, const Tables& t) {
  const unsigned sel = q & 0x7777u;
  const unsigned lo = prmt(t.lo0, t.lo1, sel), hi = prmt(t.hi0, t.hi1, sel);
  const unsigned p01 = prmt(lo, hi, 0x5140) | (((q & 0x88u) * 0x01001000u) & 0x80008000u);
  const unsigned p23 = prmt(lo, hi, 0x7362) | ((((q >> 8) & 0x88u) * 0x01001000u) & 0x80008000u);
  return make_uint2(p01, p23);
}

// bf16 bits of e2m1 nibble `nib` times 2^(s - 127); the scale byte 255 (NaN in the MX format) gives NaN
__device__ __forceinline__ unsigned e2m1_bf16_bits(unsigned nib, int s) {
  const unsigned sign = (nib & 8u) << 12, m = nib & 7u;
  if (s == 255) return 0x7fc0u;
  if (m == 0u) return sign;
  // value = S * 2^X: m = 1 is 0.5 (S = 1, X = -1); from m = 2 on S = 2 + (m & 1), X = (m >> 1) - 2
  const bool big = m >= 2u;
  const int e = (big ? (int)(m >> 1) - 1 : -1) + s;  // biased bf16 exponent of 1.f x 2^(e - 127)
  if (e >= 1 && e <= 254) return sign | ((unsigned)e << 7) | (big ? (m & 1u) << 6 : 0u);
  if (e > 254) return sign | 0x7f80u;  // beyond bf16's range: inf (as torch's float product)
  // subnormal: the value in units of 2^-133, S << (X + s + 6) with X + s + 6 >= 4 (exact)
  const int S = big ? 2 + (int)(m & 1u) : 1, X = big ? (int)(m >> 1) - 2 : -1;
  return sign | ((unsigned)S << (X + s + 6));
}

// the 8 values of one packed word (4 bytes, low nibble first) as 4 bf16 pairs
__device__ __forceinline__ uint4 word_to_bf16(unsigned w, int s) {
  if (s >= 2 && s <= 252) {
    const Tables t = scale_tables(s);
    const uint2 a = four_to_bf16(w & 0xffffu, t), b = four_to_bf16(w >> 16, t);
    return make_uint4(a.x, a.y, b.x, b.y);
  }
  unsigned r[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const unsigned byte = w >> (8 * i);
    r[i] = e2m1_bf16_bits(byte & 0xfu, s) | (e2m1_bf16_bits((byte >> 4) & 0xfu, s) << 16);
  }
  return make_uint4(r[0], r[1], r[2], r[3]);
}

extern "C" __global__ void __launch_bounds__(KVP_MX_THREADS)
kvp_mxfp4_to_bf16(const unsigned* __restrict__ words, const unsigned char* __restrict__ scales,
                  uint4* __restrict__ out, long long groups) {
  const int lane = threadIdx.x & 31;
  const long long g0 = ((long long)blockIdx.x * KVP_MX_THREADS + (threadIdx.x & ~31));  // the warp's first group
  unsigned w[4];
  int s[4];
  // weights are constant: load them before the wait; `out` may still be read by the kernel before (the previous
  // GEMM over the same scratch), so every store comes after it
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const long long g = g0 + 8 * k + (lane >> 2);
    w[k] = g < groups ? __ldg(words + g0 * 4 + 32 * k + lane) : 0u;
    s[k] = g < groups ? __ldg(scales + g) : 0;
  }
  kvp::pdl_enter();
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const long long g = g0 + 8 * k + (lane >> 2);
    if (g < groups) out[g0 * 4 + 32 * k + lane] = word_to_bf16(w[k], s[k]);
  }
}
