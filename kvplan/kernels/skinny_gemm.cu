// Skinny GEMM for decode: y[col, row] = sum_k W[row, k] * x[col, k] for up to 16 columns (tokens), every
// weight byte read once with 16-byte streaming loads. The same kernel runs the routed experts of an MoE
// layer: a CTA owns one expert and gathers every (token, expert) pair routed to it as its columns, so a
// distinct expert is read once however many tokens chose it.
//
// Tensor cores do the arithmetic (mma.m16n8k16, fp32 accumulate) straight from the loaded registers. The
// order of k inside an MMA does not matter as long as A (weights) and B (x) use the same one, so each lane
// loads a contiguous chunk of one row (16 bytes: 8 bf16/fp16 values, 32 mxfp4 values = one E8M0 scale group, or
// 16 e4m3 values) and its pairs become the lane's A registers directly; the lane loads x at the same k for the
// column (lane / 4) whose B fragment it holds. No shared memory staging, no ldmatrix.
//
// Weight formats (FMT): 0 16-bit (the type of x); 1 mxfp4 (e2m1 values, an E8M0 scale per 32), bf16 x; 2 fp8
// (DeepSeek-V3's block-scaled e4m3: one fp32 scale per 128 x 128 block of a matrix), bf16 x. Both quantised
// formats become bf16 A registers by bit placement and one bf16 multiply by the scale, so the MMAs are bf16 ones;
// fp8's scale is rounded to bf16 (up to 2^-9 relative, the same error over the whole block) and so is each
// dequantised value (a 4-bit times an 8-bit significand: up to 2^-9 relative); both exact for power-of-two
// scales. (Exact fp32 scaling would need each 128-k block's MMAs in an accumulator of their own, scaled and added
// after: see fp8_chunk.)
//
// CTA: KVP_SK_WARPS warps split the CTA's k range (interleaved steps) and reduce through shared memory.
// A CTA owns 32 weight rows: two 16-row MMA tiles (plain), or 16 gate rows and their 16 up rows (gated:
// the activation act(gate) * up is applied in the epilogue). grid.z splits k across CTAs when the rows
// alone give too few CTAs; those partials meet in an fp32 workspace and the last CTA of a tile (a counter)
// finishes it and leaves workspace and counter zeroed for the next launch (no memset, graph-safe).
//
// Launch arguments (all run-time; templates only pick dtype, weight format and 8 or 16 columns):
//   w         weights: [experts][rows][k] 16-bit, [experts][rows][k/2] packed e2m1 (low nibble first), or
//             [experts][rows][k] e4m3 (fp8)
//   s         mxfp4: [experts][rows][k/32] E8M0 scales; fp8: [experts][ceil(rows/128)][k/128] fp32 block scales
//             (the weight W[r][k] = w[r][k] * s[r / 128][k / 128], r the row of the expert's matrix: a gated
//             matrix's up rows are rows n..2n-1); null for 16-bit weights
//   x         [*, k] activations (16-bit); column c reads x row cols[c] / div
//   y         output: plain [pairs][n] (16-bit, or fp32 when out_f32), gated [pairs][n]
//   ids       MoE only: [ncols] int32 expert id per pair (pair p = token * top_k + j); null for dense
//   wts       optional [pairs] fp32 factor per output row (routing weights); null for none
//   ws, counters  split-k workspace [slots * tiles * 32 * 16] fp32 and [slots * tiles] counters, zeroed
//   w_stride, s_stride  bytes between experts
//   n         plain: rows of W (outputs per column); gated: intermediate size (W has 2n rows: gate then up)
//   k         reduction length (16-bit: multiple of 8; mxfp4: multiple of 32; fp8: multiple of 128)
//   ncols     dense: columns (tokens); MoE: pairs (grid.y == ncols, one CTA row per pair slot)
//   div       x row of pair p is p / div (MoE stage 1: top_k; otherwise 1)
//   mode      0 plain, 1 gated SiLU, 2 gated GELU (tanh), 3 plain then squared ReLU (Nemotron-H's experts)
//   out_f32   store fp32 (MoE stage 2 partial sums)
//   ksplit    CTAs along k (grid.z); the row-tile kernel (_er): CTA rows per hot expert
//   experts   number of experts (ids outside 0..experts-1 are skipped)
//   order, offs  MoE by expert (the _e kernels, skinny_by_expert; ids unused, grid.y == experts, ksplit 1): the
//             pairs sorted by expert [ncols] and each expert's range in it [experts + 1]. Any number of pairs per
//             expert (the pair-slot kernels hold 16).
//   hot       the row-tile kernel: the last `hot` experts see every token (joined shared experts); 0 elsewhere

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "kvp_pdl.cuh"

#ifndef KVP_SK_ROW_TILES
#define KVP_SK_ROW_TILES 4
#endif
// mxfp4's row-tile passes: 8 column tiles (64 pairs), so that a chunk's unpacking (most of the kernel's instructions)
// serves twice the MMAs: gpt-oss-20b's experts at 295 tokens ran two passes of 32 (37 pairs per expert on average)
#ifndef KVP_SK_ROW_TILES_FP4
#define KVP_SK_ROW_TILES_FP4 8
#endif
#ifndef KVP_SK_WARPS
#define KVP_SK_WARPS 8
#endif
#ifndef KVP_SK_MAX_SLOTS
#define KVP_SK_MAX_SLOTS 256
#endif
// Bytes in flight per lane (benchmark variants; skinny_config.SkinnyConfig sets them only when not default):
// chunks per row per lane per step (16-bit and fp8 weights / mxfp4), the launch bound's CTAs per SM (2 caps
// registers at 128 per thread), and L2 prefetches of the lane's rows KVP_SK_PF of its own steps ahead (0: none).
#ifndef KVP_SK_U
#define KVP_SK_U 2
#endif
#ifndef KVP_SK_U_FP4
#define KVP_SK_U_FP4 1
#endif
#ifndef KVP_SK_MINB
#define KVP_SK_MINB 2
#endif
#ifndef KVP_SK_MINB_FP4
#define KVP_SK_MINB_FP4 1
#endif
#ifndef KVP_SK_PF
#define KVP_SK_PF 0
#endif
// Dense launches: steps per warp of the CTA's weights prefetched to L2 before pdl_wait (8 KB per warp at 2 with
// 16-bit weights), so that a GEMM's first loads overlap the end of the kernel before it
#ifndef KVP_SK_PDL_STEPS
#define KVP_SK_PDL_STEPS 2
#endif
// 8-column MMA tiles per pass of the by-expert kernels (8: 64 pairs a pass)
#ifndef KVP_SK_DENSE_ONLY
#define KVP_SK_DENSE_ONLY 0
#endif
#ifndef KVP_SK_EXPERT_TILES
#define KVP_SK_EXPERT_TILES 8
#endif
#define SK_THREADS (KVP_SK_WARPS * 32)
#define SK_ROWS 32
#define SK_WS_COLS 16

// The weight formats (FMT): values per lane chunk (16 bytes of weights), A registers per row per chunk, 16-byte x
// loads per chunk (bf16 x at the chunk's k), chunks per row per lane per step, the launch bound's CTAs per SM, the
// bytes of a row of k values and the byte offset of value k0 in a row.
template <int FMT>
struct SkFmt;
template <>
struct SkFmt<0> {  // 16-bit: 8 values, the lane's pairs as loaded
  static constexpr int CE = 8, REGS = 4, XV = 1, U = KVP_SK_U, MINB = KVP_SK_MINB;
  static __device__ __forceinline__ long long row_bytes(int k) { return (long long)k * 2; }
  static __device__ __forceinline__ int offset(int k0) { return k0 * 2; }
};
template <>
struct SkFmt<1> {  // mxfp4: 32 values (one scale group), pairs (j, j + 4) of each 8-value word (fp4_chunk)
  static constexpr int CE = 32, REGS = 16, XV = 4, U = KVP_SK_U_FP4, MINB = KVP_SK_MINB_FP4;
  static __device__ __forceinline__ long long row_bytes(int k) { return (long long)(k / 2); }
  static __device__ __forceinline__ int offset(int k0) { return k0 / 2; }
};
template <>
struct SkFmt<2> {  // fp8: 16 e4m3 values, pairs in order (fp8_chunk)
  static constexpr int CE = 16, REGS = 8, XV = 2, U = KVP_SK_U, MINB = KVP_SK_MINB;
  static __device__ __forceinline__ long long row_bytes(int k) { return (long long)k; }
  static __device__ __forceinline__ int offset(int k0) { return k0; }
};
#define SK_FP8_BLOCK 128  // fp8: rows and k values per block scale

static_assert(KVP_SK_MAX_SLOTS % SK_THREADS == 0, "whole passes of threads over the pair slots");
static_assert(KVP_SK_WARPS <= 32, "warp counts are summed by one warp");

struct SkArgs {
  const unsigned char* w;
  const unsigned char* s;
  const unsigned char* x;
  void* y;
  const int* ids;
  const float* wts;
  float* ws;
  unsigned* counters;
  long long w_stride, s_stride;
  int n, k, ncols, div, mode, out_f32, ksplit, experts;
  const int* order;
  const int* offs;
  int hot;  // the row-tile kernel: the last `hot` experts take every token, their passes dealt over ksplit CTA rows
};

__device__ __forceinline__ uint4 ld_stream(const unsigned char* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

__device__ __forceinline__ void prefetch_l2(const unsigned char* p) {
  asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p));
}

__device__ __forceinline__ unsigned ld_stream_u8(const unsigned char* p) {
  unsigned short v;
  asm volatile("ld.global.nc.L1::no_allocate.u8 %0, [%1];\n" : "=h"(v) : "l"(p));
  return v;
}

template <bool BF>
__device__ __forceinline__ void mma16816(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                         unsigned b0, unsigned b1) {
  if (BF) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
}

// Nibbles j and j + 4 of q (elements j and j + 4 of an 8-value word) as a bf16 pair whose value is the e2m1
// value times 2^-126: the 3 magnitude bits go to the exponent's two low bits and the mantissa's top bit (e = 0
// lands on a bf16 subnormal, exactly 0.5 * 2^-126 for m = 1), the sign to bit 15 / 31. The scale multiply
// that follows restores 2^126.
template <int J>
__device__ __forceinline__ unsigned fp4_pair(unsigned q) {
  const unsigned em = (J == 0 ? q << 6 : J == 1 ? q << 2 : J == 2 ? q >> 2 : q >> 6) & 0x01C001C0u;
  const unsigned sg = (J == 0 ? q << 12 : J == 1 ? q << 8 : J == 2 ? q << 4 : q) & 0x80008000u;
  return em | sg;
}

__device__ __forceinline__ unsigned bf16x2_mul(unsigned a, unsigned b) {
  __nv_bfloat162 r = __hmul2(*reinterpret_cast<__nv_bfloat162*>(&a), *reinterpret_cast<__nv_bfloat162*>(&b));
  return *reinterpret_cast<unsigned*>(&r);
}

// 16 bf16 pairs of one 32-value mxfp4 chunk, scaled by 2^(s - 127): pair 4w + j holds elements 8w + j and
// 8w + j + 4.
__device__ __forceinline__ void fp4_chunk(const uint4 q, unsigned s, unsigned (&a)[16]) {
  const unsigned e1 = min(s, 128u) + 126u;  // 2^(min(s,128) - 1): 2^126 (see fp4_pair) times the scale
  const unsigned m1 = (e1 << 7) | (e1 << 23);
  const unsigned qs[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    a[4 * w + 0] = bf16x2_mul(fp4_pair<0>(qs[w]), m1);
    a[4 * w + 1] = bf16x2_mul(fp4_pair<1>(qs[w]), m1);
    a[4 * w + 2] = bf16x2_mul(fp4_pair<2>(qs[w]), m1);
    a[4 * w + 3] = bf16x2_mul(fp4_pair<3>(qs[w]), m1);
  }
  if (s > 128u) {  // scales above 2^1: one more factor 2^(s - 128) (never seen in real checkpoints)
    const unsigned e2 = s - 1u;
    const unsigned m2 = (e2 << 7) | (e2 << 23);
#pragma unroll
    for (int i = 0; i < 16; ++i) a[i] = bf16x2_mul(a[i], m2);
  }
}

// x pairs reordered like fp4_chunk's A pairs: (j, j + 4) of each 8-value word.
__device__ __forceinline__ void x_pairs_fp4(const uint4 (&xv)[4], unsigned (&b)[16]) {
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    const unsigned n[4] = {xv[w].x, xv[w].y, xv[w].z, xv[w].w};
    b[4 * w + 0] = __byte_perm(n[0], n[2], 0x5410);
    b[4 * w + 1] = __byte_perm(n[0], n[2], 0x7632);
    b[4 * w + 2] = __byte_perm(n[1], n[3], 0x5410);
    b[4 * w + 3] = __byte_perm(n[1], n[3], 0x7632);
  }
}

// Bytes J and J + 1 (J = 0 or 2) of q as a bf16 pair whose value is the e4m3 value times 2^-120: each byte's
// sign goes to bit 15 of its half and its 7 magnitude bits (4 exponent, 3 mantissa) to bits 4..10, the exponent's
// low four bits and the mantissa's top three (bf16's exponent bias is 127, e4m3's 7; e = 0 lands on a bf16
// subnormal, exactly the e4m3 subnormal times 2^-120; e4m3fn's NaN codes 0x7F / 0xFF read as +-480). The bytes go
// to the top of each half first (one prmt), so that sign and magnitude each take one mask.
template <int J>
__device__ __forceinline__ unsigned e4m3_pair(unsigned q) {
  const unsigned hi = __byte_perm(q, 0u, J == 0 ? 0x1404 : 0x3424);  // byte J -> byte 1, byte J + 1 -> byte 3
  return (hi & 0x80008000u) | ((hi >> 4) & 0x07F007F0u);
}

// 8 bf16 pairs of one 16-value e4m3 chunk in natural order (pair j: values 2j, 2j + 1) times the chunk's block scale
// s, applied in bf16: bf16(s * 2^120) (2^120 undoes e4m3_pair's placement), so the block's scale is rounded to 8
// significant bits and each product to bf16 (exact for power-of-two scales). Scales of 2^7 and above (never seen
// in checkpoints: a block's largest weight over 57,000) would overflow that factor and take two: s * 2^56, 2^64.
// Exact alternative, not taken: multiply by 2^120 only (exact) and scale in fp32 per step, each step's MMAs in a
// zeroed accumulator of their own (a step of U = 2 chunks is one 128-k block, and a tile's 16 rows share a block):
// 8 or 16 more accumulator registers and 4 FFMAs per tile and column tile a step (the 16-column kernel is at its
// 128-register cap already).
__device__ __forceinline__ void fp8_chunk(const uint4 q, float s, unsigned (&a)[8]) {
  const bool big = s >= 128.f;
  const unsigned short f = __bfloat16_as_ushort(__float2bfloat16_rn(s * (big ? 0x1p56f : 0x1p120f)));
  const unsigned m = f | ((unsigned)f << 16);
  const unsigned qs[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    a[2 * w] = bf16x2_mul(e4m3_pair<0>(qs[w]), m);
    a[2 * w + 1] = bf16x2_mul(e4m3_pair<2>(qs[w]), m);
  }
  if (big) {
#pragma unroll
    for (int i = 0; i < 8; ++i) a[i] = bf16x2_mul(a[i], 0x5F805F80u);  // 2^64
  }
}

// fp8: the block scale of value kb (>= 0) of a row whose block-scale row is srow. A read-only load: the four lanes of
// a quad and the 16 rows of a tile read the same word.
__device__ __forceinline__ float fp8_scale(const unsigned char* srow, int kb) {
  return __ldg(reinterpret_cast<const float*>(srow) + (kb >> 7));
}

// fp8's B pairs: x at the chunk's 16 values (two 16-byte loads), in natural order like fp8_chunk's A pairs.
__device__ __forceinline__ void x_pairs_fp8(const uint4 (&xv)[2], unsigned (&b)[8]) {
  b[0] = xv[0].x, b[1] = xv[0].y, b[2] = xv[0].z, b[3] = xv[0].w;
  b[4] = xv[1].x, b[5] = xv[1].y, b[6] = xv[1].z, b[7] = xv[1].w;
}

template <bool BF>
__device__ __forceinline__ void store_out(void* y, long long i, float v, int out_f32) {
  if (out_f32) {
    reinterpret_cast<float*>(y)[i] = v;
  } else if (BF) {
    reinterpret_cast<__nv_bfloat16*>(y)[i] = __float2bfloat16(v);
  } else {
    reinterpret_cast<__half*>(y)[i] = __float2half(v);
  }
}

__device__ __forceinline__ bool gated_mode(int mode) { return mode == 1 || mode == 2; }

__device__ __forceinline__ float act(int mode, float g) {
  if (mode == 1) return g / (1.0f + __expf(-g));
  if (mode == 3) {
    const float r = fmaxf(g, 0.f);
    return r * r;
  }
  const float u = 0.7978845608028654f * (g + 0.044715f * g * g * g);
  return 0.5f * g * (1.0f + tanhf(u));
}

// The lane's four weight rows of a CTA's tile (t: 16-row half of a plain tile, or gate / up of a gated one; h:
// its 8-row half) and their scale rows: E8M0 scales of the row (mxfp4), or the fp32 block scales of the row's
// 128-row block (fp8: row wr of the expert's matrix, so a gated tile's up rows, n + r, have block (n + r) / 128).
// A tile t's 16 rows start at a multiple of 16 (plain: tile * 32 + t * 16; gated: tile * 16, and n + tile * 16 with
// n a multiple of 16, which the fp8 plans hold to 128), so they never straddle a 128-row block: the fp8 kernels
// read the scales of srow[t][0] for both halves (rok[t][1] implies rok[t][0]).
template <int FMT>
__device__ __forceinline__ void weight_rows(const SkArgs& a, int tile, int expert, bool gated, int g,
                                            const unsigned char* (&wrow)[2][2], const unsigned char* (&srow)[2][2],
                                            bool (&rok)[2][2]) {
  const long long row_bytes = SkFmt<FMT>::row_bytes(a.k);
  const int groups = a.k / 32;                                     // mxfp4: scales per row
  const long long block_row = (long long)(a.k / SK_FP8_BLOCK) * 4;  // fp8: bytes per row of block scales
#pragma unroll
  for (int t = 0; t < 2; ++t)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = gated ? tile * 16 + h * 8 + g : tile * SK_ROWS + t * 16 + h * 8 + g;
      rok[t][h] = r < a.n;
      const long long wr = rok[t][h] ? (gated ? r + (long long)t * a.n : r) : 0;
      wrow[t][h] = a.w + expert * a.w_stride + wr * row_bytes;
      const unsigned char* se = a.s + expert * a.s_stride;
      srow[t][h] = FMT == 1 ? se + wr * groups : FMT == 2 ? se + wr / SK_FP8_BLOCK * block_row : nullptr;
    }
}

// A finished tile's NC columns (red: [32 rows][NC], summed over k) to their pairs' output rows: gated rows meet
// their up rows (16 + r) through the activation, plain rows are stored; both times the pair's routing weight.
template <bool BF, int NC>
__device__ __forceinline__ void store_tile(const SkArgs& a, const float (*red)[NC], const int* cols, int ncols,
                                           int tile, bool gated, int tid) {
  if (gated) {
    for (int i = tid; i < 16 * NC; i += SK_THREADS) {
      const int r = i % 16, col = i / 16, row = tile * 16 + r;
      if (row < a.n && col < ncols) {
        const int p = cols[col];
        float h = act(a.mode, red[r][col]) * red[16 + r][col];
        if (a.wts) h *= a.wts[p];
        store_out<BF>(a.y, (long long)p * a.n + row, h, a.out_f32);
      }
    }
  } else {
    for (int i = tid; i < SK_ROWS * NC; i += SK_THREADS) {
      const int r = i % SK_ROWS, col = i / SK_ROWS, row = tile * SK_ROWS + r;
      if (row < a.n && col < ncols) {
        const int p = cols[col];
        float o = a.mode == 3 ? act(3, red[r][col]) : red[r][col];
        if (a.wts) o *= a.wts[p];
        store_out<BF>(a.y, (long long)p * a.n + row, o, a.out_f32);
      }
    }
  }
}

// Dense launches only (the weights are constants, never written by a kernel before): the first
// KVP_SK_PDL_STEPS steps of each warp's rows on their way to L2 before pdl_wait. MoE launches wait first: their
// experts come from the router's output.
template <int FMT, int U>
__device__ __forceinline__ void prefetch_first_steps(const SkArgs& a, int tile, int g, int c, int warp, int s0,
                                                     int s1) {
  const unsigned char* wrow[2][2];
  const unsigned char* srow[2][2];
  bool rok[2][2];
  weight_rows<FMT>(a, tile, 0, gated_mode(a.mode), g, wrow, srow, rok);
  const long long row_bytes = SkFmt<FMT>::row_bytes(a.k);
#pragma unroll
  for (int i = 0; i < KVP_SK_PDL_STEPS; ++i) {
    const int st = s0 + warp + i * KVP_SK_WARPS;
    const long long off = (long long)st * U * 64 + c * 128;  // a row's step: U * 64 contiguous bytes (all formats)
    if (st < s1 && c * 128 < U * 64 && off < row_bytes) {
#pragma unroll
      for (int t = 0; t < 2; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          if (rok[t][h]) prefetch_l2(wrow[t][h] + off);
    }
  }
}

// FMT 0: 16-bit weights (T = x's type); FMT 1: mxfp4 weights, bf16 x; FMT 2: fp8 (block-scaled e4m3) weights,
// bf16 x. NT: 8-column MMA tiles (1 or 2).
template <bool BF, int FMT, int NT>
__device__ __forceinline__ void skinny(const SkArgs& a) {
  constexpr int CE = SkFmt<FMT>::CE;      // elements per lane chunk (16 bytes of weights)
  constexpr int QS = 4 * CE;              // elements per quad of lanes
  constexpr int U = SkFmt<FMT>::U;        // chunks per row per lane per step
  constexpr int STEP = U * QS;
  constexpr int NC = NT * 8;
  constexpr int REGS = SkFmt<FMT>::REGS;  // A registers per row per chunk
  constexpr int XV = SkFmt<FMT>::XV;      // 16-byte x loads per chunk
  constexpr int SB = (STEP + SK_FP8_BLOCK - 1) / SK_FP8_BLOCK;  // fp8: 128-value blocks a step touches
  __shared__ float red[KVP_SK_WARPS][SK_ROWS][NC];
  __shared__ int ids_s[KVP_SK_MAX_SLOTS];
  __shared__ int cols[NC];
  __shared__ int wcount[KVP_SK_WARPS];
  __shared__ int last_s;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int tile = blockIdx.x, slot = blockIdx.y, kz = blockIdx.z;
  const bool gated = gated_mode(a.mode);
  const int nsteps = (a.k + STEP - 1) / STEP;
  const int per = (nsteps + a.ksplit - 1) / a.ksplit;
  const int s0 = kz * per, s1 = min(nsteps, s0 + per);
  if (!a.ids) prefetch_first_steps<FMT, U>(a, tile, g, c, warp, s0, s1);
  kvp::pdl_enter();

  int expert = 0, ncols;
  if (a.ids) {  // pair slots in passes of SK_THREADS (one pass with eight warps; more with fewer: pair_warps)
    const int pairs = a.ncols;
#pragma unroll
    for (int i = tid; i - tid < KVP_SK_MAX_SLOTS; i += SK_THREADS) ids_s[i] = i < pairs ? a.ids[i] : -1;
    __syncthreads();
    expert = ids_s[slot];
    // the first slot of an expert runs it for every pair routed to it; later slots of the same expert exit
    bool earlier = false;
#pragma unroll
    for (int i = tid; i - tid < KVP_SK_MAX_SLOTS; i += SK_THREADS) earlier |= i < slot && ids_s[i] == expert;
    if (__syncthreads_or(earlier) || expert < 0 || expert >= a.experts) return;
    ncols = 0;
#pragma unroll
    for (int i = tid; i - tid < KVP_SK_MAX_SLOTS; i += SK_THREADS) {
      const bool mine = ids_s[i] == expert;
      const unsigned ball = __ballot_sync(0xffffffffu, mine);
      if (lane == 0) wcount[warp] = __popc(ball);
      __syncthreads();
      int before = ncols;
#pragma unroll
      for (int w = 0; w < KVP_SK_WARPS; ++w) {
        before += w < warp ? wcount[w] : 0;
        ncols += wcount[w];
      }
      if (mine) {
        const int pos = before + __popc(ball & ((1u << lane) - 1u));
        if (pos < NC) cols[pos] = i;
      }
      if (KVP_SK_MAX_SLOTS > SK_THREADS) __syncthreads();  // wcount again in the next pass
    }
    ncols = min(ncols, NC);
  } else {
    ncols = min(a.ncols, NC);
    if (tid < NC) cols[tid] = tid;
  }
  __syncthreads();

  // the lane's four weight rows (tile t, row-half h) and its column per 8-column tile
  const unsigned char* wrow[2][2];
  const unsigned char* srow[2][2];
  bool rok[2][2];
  weight_rows<FMT>(a, tile, expert, gated, g, wrow, srow, rok);
  const unsigned char* xrow[NT];
  bool xok[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int col = nt * 8 + g;
    xok[nt] = col < ncols;
    const int p = xok[nt] ? cols[col] : 0;
    xrow[nt] = a.x + (long long)(p / a.div) * a.k * 2;
  }

  float acc[2][NT][4];
#pragma unroll
  for (int t = 0; t < 2; ++t)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[t][nt][i] = 0.f;

  for (int st = s0 + warp; st < s1; st += KVP_SK_WARPS) {
    if constexpr (KVP_SK_PF > 0) {
      // a row's step is U * 64 contiguous bytes (every format): lanes c < max(1, U / 2) take a
      // 128-byte line each (a hint: an unaligned row start leaves part of a line to the load itself)
      const int ahead = st + KVP_SK_PF * KVP_SK_WARPS;
      const long long off = (long long)ahead * U * 64 + c * 128;
      if (ahead < s1 && c * 128 < U * 64) {
#pragma unroll
        for (int t = 0; t < 2; ++t)
#pragma unroll
          for (int h = 0; h < 2; ++h)
            if (rok[t][h] && off < SkFmt<FMT>::row_bytes(a.k)) prefetch_l2(wrow[t][h] + off);
      }
    }
    uint4 wv[U][2][2];
    unsigned sc[U][2][2];  // mxfp4: E8M0 scale per chunk and row
    uint4 xv[U][NT][XV];
    // fp8: the step's block scales per tile (a tile's rows lie in one 128-row block: weight_rows). A step of U * 64
    // values from st * STEP: half a block (U = 1), or U / 2 whole ones; chunk u's is block u * QS / 128. k is a
    // multiple of 128, so a block is either in k or past it.
    float bs[SB][2];
    if constexpr (FMT == 2) {
#pragma unroll
      for (int b = 0; b < SB; ++b) {
        const int kb = st * STEP + b * SK_FP8_BLOCK;
#pragma unroll
        for (int t = 0; t < 2; ++t) bs[b][t] = kb < a.k && rok[t][0] ? fp8_scale(srow[t][0], kb) : 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int k0 = (st * U + u) * QS + c * CE;
      const bool kok = k0 < a.k;
#pragma unroll
      for (int t = 0; t < 2; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const bool ok = kok && rok[t][h];
          wv[u][t][h] = ok ? ld_stream(wrow[t][h] + SkFmt<FMT>::offset(k0)) : make_uint4(0, 0, 0, 0);
          if constexpr (FMT == 1) sc[u][t][h] = ok ? ld_stream_u8(srow[t][h] + k0 / 32) : 127u;
        }
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < XV; ++i)
          xv[u][nt][i] = (kok && xok[nt]) ? *reinterpret_cast<const uint4*>(xrow[nt] + k0 * 2 + 16 * i)
                                          : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      unsigned b[NT][REGS];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        if constexpr (FMT == 1) {
          unsigned tmp[16];
          x_pairs_fp4(*reinterpret_cast<const uint4(*)[4]>(&xv[u][nt][0]), tmp);
#pragma unroll
          for (int i = 0; i < REGS; ++i) b[nt][i] = tmp[i];
        } else if constexpr (FMT == 2) {
          x_pairs_fp8(xv[u][nt], b[nt]);
        } else {
          b[nt][0] = xv[u][nt][0].x, b[nt][1] = xv[u][nt][0].y, b[nt][2] = xv[u][nt][0].z, b[nt][3] = xv[u][nt][0].w;
        }
      }
#pragma unroll
      for (int t = 0; t < 2; ++t) {
        unsigned r0[REGS], r1[REGS];
        if constexpr (FMT == 1) {
          fp4_chunk(wv[u][t][0], sc[u][t][0], *reinterpret_cast<unsigned(*)[16]>(r0));
          fp4_chunk(wv[u][t][1], sc[u][t][1], *reinterpret_cast<unsigned(*)[16]>(r1));
        } else if constexpr (FMT == 2) {
          fp8_chunk(wv[u][t][0], bs[u * QS / SK_FP8_BLOCK][t], *reinterpret_cast<unsigned(*)[8]>(r0));
          fp8_chunk(wv[u][t][1], bs[u * QS / SK_FP8_BLOCK][t], *reinterpret_cast<unsigned(*)[8]>(r1));
        } else {
          r0[0] = wv[u][t][0].x, r0[1] = wv[u][t][0].y, r0[2] = wv[u][t][0].z, r0[3] = wv[u][t][0].w;
          r1[0] = wv[u][t][1].x, r1[1] = wv[u][t][1].y, r1[2] = wv[u][t][1].z, r1[3] = wv[u][t][1].w;
        }
#pragma unroll
        for (int i = 0; i < REGS / 2; ++i)
#pragma unroll
          for (int nt = 0; nt < NT; ++nt)
            mma16816<BF>(acc[t][nt], r0[2 * i], r1[2 * i], r0[2 * i + 1], r1[2 * i + 1], b[nt][2 * i],
                         b[nt][2 * i + 1]);
      }
    }
  }

  // reduce the warps' partials: C fragment (row g / g + 8, columns 2c, 2c + 1)
#pragma unroll
  for (int t = 0; t < 2; ++t)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      red[warp][t * 16 + g][nt * 8 + 2 * c] = acc[t][nt][0];
      red[warp][t * 16 + g][nt * 8 + 2 * c + 1] = acc[t][nt][1];
      red[warp][t * 16 + g + 8][nt * 8 + 2 * c] = acc[t][nt][2];
      red[warp][t * 16 + g + 8][nt * 8 + 2 * c + 1] = acc[t][nt][3];
    }
  __syncthreads();
  constexpr int VALS = SK_ROWS * NC;
  constexpr int PER = (VALS + SK_THREADS - 1) / SK_THREADS;
  float v[PER];
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    const int i = tid + j * SK_THREADS;  // i = col * 32 + row: consecutive threads, consecutive rows
    v[j] = 0.f;
    if (i < VALS) {
#pragma unroll
      for (int w = 0; w < KVP_SK_WARPS; ++w) v[j] += red[w][i % SK_ROWS][i / SK_ROWS];
    }
  }
  if (a.ksplit > 1) {
    const long long cell = (long long)slot * gridDim.x + tile;
    float* wsl = a.ws + cell * (SK_ROWS * SK_WS_COLS);
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      const int i = tid + j * SK_THREADS;
      if (i < VALS) atomicAdd(wsl + (i / SK_ROWS) * SK_ROWS + i % SK_ROWS, v[j]);
    }
    __threadfence();
    __syncthreads();
    if (tid == 0) last_s = atomicAdd(a.counters + cell, 1u) == (unsigned)(a.ksplit - 1);
    __syncthreads();
    if (!last_s) return;
    __threadfence();
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      const int i = tid + j * SK_THREADS;
      if (i < VALS) {
        float* p = wsl + (i / SK_ROWS) * SK_ROWS + i % SK_ROWS;
        v[j] = __ldcg(p);
        __stcg(p, 0.f);
      }
    }
    if (tid == 0) a.counters[cell] = 0u;
  }
  // the finished tile: red[0][row][col] holds it so that gated rows can meet their up rows
  __syncthreads();
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    const int i = tid + j * SK_THREADS;
    if (i < VALS) red[0][i % SK_ROWS][i / SK_ROWS] = v[j];
  }
  __syncthreads();
  store_tile<BF, NC>(a, red[0], cols, ncols, tile, gated, tid);
}

// MoE by expert (order / offs): the CTA (tile, expert) walks the expert's pairs order[offs[e] .. offs[e + 1])
// PT x 8 columns per pass. Each k step unpacks the lane's weight chunks once and multiplies them into every
// column tile of the pass (mxfp4 unpacking is ALU work: one pass of 16 columns per 16 pairs cost gpt-oss-20b
// 2.56 ms per layer at 599 tokens); the x fragments of a tile are loaded just before its MMAs. The weight tile
// streams from HBM in the first pass and from L2 after. Warps split k as in skinny(); the epilogue reduces 16
// columns at a time (static shared memory).
// A by-expert pass's setup: the lane's x row per 8-column tile (column nt * 8 + g of the pass; xok false past
// ncols, which then reads row 0 and is masked), and zeroed accumulators.
template <int PT>
__device__ __forceinline__ void pass_columns(const SkArgs& a, const int* cols, int ncols, int g,
                                             const unsigned char* (&xrow)[PT], bool (&xok)[PT],
                                             float (&acc)[2][PT][4]) {
#pragma unroll
  for (int nt = 0; nt < PT; ++nt) {
    const int col = nt * 8 + g;
    xok[nt] = col < ncols;
    xrow[nt] = a.x + (long long)((xok[nt] ? cols[col] : 0) / a.div) * a.k * 2;
  }
#pragma unroll
  for (int t = 0; t < 2; ++t)
#pragma unroll
    for (int nt = 0; nt < PT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[t][nt][i] = 0.f;
}

template <bool BF, int FMT, int PT>
__device__ __forceinline__ void skinny_by_expert(const SkArgs& a) {
  constexpr int CE = SkFmt<FMT>::CE;
  constexpr int QS = 4 * CE;
  constexpr int REGS = SkFmt<FMT>::REGS;
  constexpr int XV = SkFmt<FMT>::XV;
  constexpr int PASS = PT * 8;
  __shared__ float red[KVP_SK_WARPS][SK_ROWS][16];
  __shared__ int cols[PASS];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int tile = blockIdx.x, expert = blockIdx.y;
  const bool gated = gated_mode(a.mode);
  kvp::pdl_enter();
  const int lo = a.offs[expert], total = a.offs[expert + 1] - lo;
  if (total <= 0 || expert >= a.experts) return;
  const unsigned char* wrow[2][2];
  const unsigned char* srow[2][2];
  bool rok[2][2];
  weight_rows<FMT>(a, tile, expert, gated, g, wrow, srow, rok);
  const int nsteps = (a.k + QS - 1) / QS;
  for (int p0 = 0; p0 < total; p0 += PASS) {
    const int ncols = min(PASS, total - p0), ntiles = (ncols + 7) / 8;
    __syncthreads();  // the previous pass is done with cols and red
    if (tid < PASS) cols[tid] = tid < ncols ? a.order[lo + p0 + tid] : 0;
    __syncthreads();
    const unsigned char* xrow[PT];
    bool xok[PT];
    float acc[2][PT][4];
    pass_columns<PT>(a, cols, ncols, g, xrow, xok, acc);
    for (int st = warp; st < nsteps; st += KVP_SK_WARPS) {
      const int k0 = st * QS + c * CE;
      const bool kok = k0 < a.k;
      unsigned r[2][2][REGS];
      float bs[2];  // fp8: the tile's block scale (its rows lie in one 128-row block: weight_rows)
      if constexpr (FMT == 2) {
#pragma unroll
        for (int t = 0; t < 2; ++t) bs[t] = kok && rok[t][0] ? fp8_scale(srow[t][0], st * QS) : 0.f;
      }
#pragma unroll
      for (int t = 0; t < 2; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const bool ok = kok && rok[t][h];
          const uint4 wv = ok ? ld_stream(wrow[t][h] + SkFmt<FMT>::offset(k0)) : make_uint4(0, 0, 0, 0);
          if constexpr (FMT == 1) {
            fp4_chunk(wv, ok ? ld_stream_u8(srow[t][h] + k0 / 32) : 127u, r[t][h]);
          } else if constexpr (FMT == 2) {
            fp8_chunk(wv, bs[t], r[t][h]);
          } else {
            r[t][h][0] = wv.x, r[t][h][1] = wv.y, r[t][h][2] = wv.z, r[t][h][3] = wv.w;
          }
        }
#pragma unroll
      for (int nt = 0; nt < PT; ++nt) {
        if (nt >= ntiles) break;
        uint4 xv[XV];
#pragma unroll
        for (int i = 0; i < XV; ++i)
          xv[i] = (kok && xok[nt]) ? *reinterpret_cast<const uint4*>(xrow[nt] + k0 * 2 + 16 * i)
                                   : make_uint4(0, 0, 0, 0);
        unsigned b[REGS];
        if constexpr (FMT == 1) {
          x_pairs_fp4(*reinterpret_cast<const uint4(*)[4]>(&xv[0]), *reinterpret_cast<unsigned(*)[16]>(b));
        } else if constexpr (FMT == 2) {
          x_pairs_fp8(xv, b);
        } else {
          b[0] = xv[0].x, b[1] = xv[0].y, b[2] = xv[0].z, b[3] = xv[0].w;
        }
#pragma unroll
        for (int t = 0; t < 2; ++t)
#pragma unroll
          for (int i = 0; i < REGS / 2; ++i)
            mma16816<BF>(acc[t][nt], r[t][0][2 * i], r[t][1][2 * i], r[t][0][2 * i + 1], r[t][1][2 * i + 1],
                         b[2 * i], b[2 * i + 1]);
      }
    }
    // 16 columns at a time: the warps' partials through shared memory, summed, stored
#pragma unroll
    for (int sub = 0; sub < PT / 2; ++sub) {
      if (2 * sub >= ntiles) break;
      __syncthreads();
#pragma unroll
      for (int t = 0; t < 2; ++t)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const float* v = acc[t][2 * sub + j];
          red[warp][t * 16 + g][j * 8 + 2 * c] = v[0];
          red[warp][t * 16 + g][j * 8 + 2 * c + 1] = v[1];
          red[warp][t * 16 + g + 8][j * 8 + 2 * c] = v[2];
          red[warp][t * 16 + g + 8][j * 8 + 2 * c + 1] = v[3];
        }
      __syncthreads();
      float sum[2];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int i = tid + j * SK_THREADS;  // SK_ROWS x 16 = 2 x SK_THREADS values
        sum[j] = 0.f;
#pragma unroll
        for (int w = 0; w < KVP_SK_WARPS; ++w) sum[j] += red[w][i % SK_ROWS][i / SK_ROWS];
      }
      __syncthreads();
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int i = tid + j * SK_THREADS;
        red[0][i % SK_ROWS][i / SK_ROWS] = sum[j];
      }
      __syncthreads();
      store_tile<BF, 16>(a, red[0], cols + 16 * sub, min(16, ncols - 16 * sub), tile, gated, tid);
    }
  }
}

// MoE by expert, 16-bit weights, few pairs per expert: each warp owns one row tile (tile = blockIdx.x * WARPS +
// warp) over the whole k, so no warp splits k and nothing is reduced across warps; the C fragments go straight to
// the outputs (a gated tile's lane holds its gate and up values of the same rows and columns). The k-split
// skinny_by_expert left a k = 256 down projection (Qwen3-Next at tp 2) 32,832 CTAs of one k step per warp, slower
// than cutlass's grouped GEMM. PT x 8 pairs a pass; the CTA's warps share the pass's columns.
//
// Weights stream through a ring of KVP_SK_ROW_STAGES steps per warp (cp.async, 16 bytes a lane a chunk, laid out
// lane-contiguous: the lane reads back only what it copied, so no barrier guards the ring and the reads are
// conflict-free). The ring runs ahead across the passes of the CTA, and its first steps are issued before the
// pass's columns are gathered, so a CTA's setup (the expert's pair range, its columns, their x rows) overlaps its
// first weight reads. Registers keep one step of weights, not the bytes in flight.
//
// Grid: blockIdx.y < hot x slices (a.ksplit) deals the passes of the `a.hot` last experts (joined shared experts:
// every token routes to them) over `slices` CTA rows each (passes slice, slice + slices, ...); the other rows are
// one expert each, walking all of its passes. The hot experts come first, so their longer CTAs start with the
// launch instead of trailing it, and no CTA row is launched for a pass that cannot exist.
#ifndef KVP_SK_ROW_STAGES
#define KVP_SK_ROW_STAGES 2
#endif
#define SK_ROW_U 2  // chunks per row per lane per step: 64 k (fp8 128, mxfp4 256) of 32 rows a step (4 KB a warp)
#define SK_ROW_CHUNKS (SK_ROW_U * 4)  // 16-byte chunks a lane copies per step: U x (2 tiles x 2 halves)

__device__ __forceinline__ void row_copy16(unsigned dst, const unsigned char* src, bool ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(ok ? 16 : 0) : "memory");
}

// Step `st` of the lane's four weight rows into ring stage `stage` (zero-filled past k or past the rows), one
// commit group per step (an empty one when `live` is false, so that the group count stays one per step).
template <int FMT>
__device__ __forceinline__ void row_issue(unsigned ring, int stage, int lane, const unsigned char* (&wrow)[2][2],
                                          const bool (&rok)[2][2], int k, int st, int c, bool live) {
  constexpr int CE = SkFmt<FMT>::CE, QS = 4 * CE;
  if (live) {
#pragma unroll
    for (int u = 0; u < SK_ROW_U; ++u) {
      const int k0 = (st * SK_ROW_U + u) * QS + c * CE;
#pragma unroll
      for (int t = 0; t < 2; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int j = u * 4 + t * 2 + h;
          const bool ok = k0 < k && rok[t][h];
          row_copy16(ring + ((stage * SK_ROW_CHUNKS + j) * 32 + lane) * 16,
                     ok ? wrow[t][h] + SkFmt<FMT>::offset(k0) : wrow[0][0], ok);
        }
    }
  }
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// FMT 0 (16-bit), 2 (fp8: a lane's 16-byte chunk is 16 e4m3 values, dequantised in registers by its 128 x 128
// block's scale as the pair-slot kernel does (fp8_chunk); a step of U chunks is one block along k) or 1 (mxfp4: a
// chunk is 32 e2m1 values, one E8M0 scale group, unpacked as fp4_chunk does; the scales read before the step's
// wait). The k-split skinny_by_expert ran gpt-oss-20b's mxfp4 experts at 295 tokens at 12% of read (H100, session
// 64: 1.09 ms a layer, each x fragment an L2 round trip per warp step, one CTA per SM).
template <bool BF, int FMT, int PT>
__device__ __forceinline__ void skinny_by_expert_rows(const SkArgs& a) {
  constexpr int CE = SkFmt<FMT>::CE, QS = 4 * CE, XV = SkFmt<FMT>::XV, U = SK_ROW_U, D = KVP_SK_ROW_STAGES;
  constexpr int PASS = PT * 8;
  static_assert(D >= 2, "a ring of at least two steps");
  __shared__ int cols[PASS];
  extern __shared__ __align__(16) unsigned char sk_ring[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int tile = blockIdx.x * KVP_SK_WARPS + warp;
  const int hot_rows = a.hot * a.ksplit;
  const bool is_hot = (int)blockIdx.y < hot_rows;
  const int expert = is_hot ? a.experts - a.hot + (int)blockIdx.y / a.ksplit : (int)blockIdx.y - hot_rows;
  const int slice = is_hot ? (int)blockIdx.y % a.ksplit : 0, stride = is_hot ? a.ksplit : 1;
  const bool gated = gated_mode(a.mode);
  kvp::pdl_enter();
  const int lo = a.offs[expert], total = a.offs[expert + 1] - lo;
  if (total <= slice * PASS || expert >= a.experts) return;  // the whole CTA: same expert
  const int passes = (total - slice * PASS + stride * PASS - 1) / (stride * PASS);
  const bool active = tile * (gated ? 16 : SK_ROWS) < a.n;
  const unsigned char* wrow[2][2];
  const unsigned char* srow[2][2];
  bool rok[2][2];
  weight_rows<FMT>(a, active ? tile : 0, expert, gated, g, wrow, srow, rok);
  const int nsteps = (a.k + U * QS - 1) / (U * QS), all = passes * nsteps;
  const unsigned ring = (unsigned)__cvta_generic_to_shared(sk_ring) + warp * D * SK_ROW_CHUNKS * 32 * 16;
  // the ring's first D - 1 steps, before the columns (global step i is k step i % nsteps of pass i / nsteps)
#pragma unroll
  for (int i = 0; i < D - 1; ++i) row_issue<FMT>(ring, i, lane, wrow, rok, a.k, i % nsteps, c, active && i < all);
  int step = 0;  // global steps consumed
  for (int p0 = slice * PASS; p0 < total; p0 += stride * PASS) {
    const int ncols = min(PASS, total - p0), ntiles = (ncols + 7) / 8;
    __syncthreads();  // the previous pass is done with cols
    if (tid < PASS) cols[tid] = tid < ncols ? a.order[lo + p0 + tid] : 0;
    __syncthreads();
    if (!active) continue;
    const unsigned char* xrow[PT];
    bool xok[PT];
    float acc[2][PT][4];
    pass_columns<PT>(a, cols, ncols, g, xrow, xok, acc);
    for (int st = 0; st < nsteps; ++st, ++step) {
      const int ahead = step + D - 1;  // refills the stage the step before this one read
      row_issue<FMT>(ring, ahead % D, lane, wrow, rok, a.k, ahead % nsteps, c, ahead < all);
      uint4 xv[U][PT];  // 16-bit: x of the whole step, loaded before the wait (fp8: a chunk's x at its use)
      if constexpr (FMT == 0) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
          const int k0 = (st * U + u) * QS + c * CE;
#pragma unroll
          for (int nt = 0; nt < PT; ++nt)
            xv[u][nt] = k0 < a.k && xok[nt] && nt < ntiles ? *reinterpret_cast<const uint4*>(xrow[nt] + k0 * 2)
                                                           : make_uint4(0, 0, 0, 0);
        }
      }
      float bs[2] = {0.f, 0.f};  // fp8: the step's block scale per tile (a step is one 128-value block along k)
      if constexpr (FMT == 2) {
        const int kb = st * U * QS;
#pragma unroll
        for (int t = 0; t < 2; ++t) bs[t] = kb < a.k && rok[t][0] ? fp8_scale(srow[t][0], kb) : 0.f;
      }
      unsigned e8[U][2][2];  // mxfp4: each chunk's E8M0 scale (127, 2^0, past k or the rows: those chunks are zeros)
      if constexpr (FMT == 1) {
#pragma unroll
        for (int u = 0; u < U; ++u)
#pragma unroll
          for (int t = 0; t < 2; ++t)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const int k0 = (st * U + u) * QS + c * CE;
              e8[u][t][h] = k0 < a.k && rok[t][h] ? ld_stream_u8(srow[t][h] + k0 / 32) : 127u;
            }
      }
      asm volatile("cp.async.wait_group %0;\n" ::"n"(D - 1) : "memory");  // this step's group has landed
      const uint4* mine = reinterpret_cast<const uint4*>(sk_ring) + ((warp * D + step % D) * SK_ROW_CHUNKS * 32 + lane);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        uint4 wv[2][2];
#pragma unroll
        for (int t = 0; t < 2; ++t)
#pragma unroll
          for (int h = 0; h < 2; ++h) wv[t][h] = mine[(u * 4 + t * 2 + h) * 32];
        if constexpr (FMT != 0) {
          // each column tile's x (a chunk's values) loaded once for both row tiles, the first before the
          // dequantisation and each next one before the MMAs of the one before, so their latency (L1 / L2 hits)
          // runs under work (H200, session 42: loaded again for each row tile, at its use, the fp8 kernel stalled on
          // those loads most, 28% of read at 84 tokens)
          constexpr int REGS = SkFmt<FMT>::REGS;
          const int k0 = (st * U + u) * QS + c * CE;
          auto load_x = [&](int nt, uint4(&v)[XV]) {
#pragma unroll
            for (int i = 0; i < XV; ++i)
              v[i] = k0 < a.k && xok[nt] ? *reinterpret_cast<const uint4*>(xrow[nt] + k0 * 2 + 16 * i)
                                         : make_uint4(0, 0, 0, 0);
          };
          uint4 x2[XV];
          load_x(0, x2);
          unsigned r[2][2][REGS];
#pragma unroll
          for (int t = 0; t < 2; ++t)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              if constexpr (FMT == 1)
                fp4_chunk(wv[t][h], e8[u][t][h], r[t][h]);
              else
                fp8_chunk(wv[t][h], bs[t], r[t][h]);
            }
#pragma unroll
          for (int nt = 0; nt < PT; ++nt) {
            if (nt >= ntiles) break;
            unsigned b[REGS];
            if constexpr (FMT == 1)
              x_pairs_fp4(x2, b);
            else
              x_pairs_fp8(x2, b);
            if (nt + 1 < ntiles) load_x(nt + 1, x2);
#pragma unroll
            for (int t = 0; t < 2; ++t)
#pragma unroll
              for (int i = 0; i < REGS / 2; ++i)
                mma16816<BF>(acc[t][nt], r[t][0][2 * i], r[t][1][2 * i], r[t][0][2 * i + 1], r[t][1][2 * i + 1],
                             b[2 * i], b[2 * i + 1]);
          }
        } else {
#pragma unroll
          for (int nt = 0; nt < PT; ++nt) {
            if (nt >= ntiles) break;
            const uint4 x = xv[u][nt];
#pragma unroll
            for (int t = 0; t < 2; ++t) {
              mma16816<BF>(acc[t][nt], wv[t][0].x, wv[t][1].x, wv[t][0].y, wv[t][1].y, x.x, x.y);
              mma16816<BF>(acc[t][nt], wv[t][0].z, wv[t][1].z, wv[t][0].w, wv[t][1].w, x.z, x.w);
            }
          }
        }
      }
    }
    // C fragment: rows g (i < 2) / g + 8, columns 2c + (i & 1) of each 8-column tile
#pragma unroll
    for (int nt = 0; nt < PT; ++nt) {
      if (nt >= ntiles) break;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int col = nt * 8 + 2 * c + (i & 1), r = g + (i >= 2 ? 8 : 0);
        if (col >= ncols) continue;
        const int p = cols[col];
        const float wt = a.wts ? a.wts[p] : 1.f;
        if (gated) {
          const int row = tile * 16 + r;
          if (row < a.n) store_out<BF>(a.y, (long long)p * a.n + row, act(a.mode, acc[0][nt][i]) * acc[1][nt][i] * wt,
                                       a.out_f32);
        } else {
#pragma unroll
          for (int t = 0; t < 2; ++t) {
            const int row = tile * SK_ROWS + t * 16 + r;
            const float o = a.mode == 3 ? act(3, acc[t][nt][i]) : acc[t][nt][i];
            if (row < a.n) store_out<BF>(a.y, (long long)p * a.n + row, o * wt, a.out_f32);
          }
        }
      }
    }
  }
  asm volatile("cp.async.wait_all;\n" ::: "memory");  // no copy outlives the CTA's shared memory
}

#define SK_PARAMS                                                                                                \
  const unsigned char *w, const unsigned char *s, const unsigned char *x, void *y, const int *ids,              \
      const float *wts, float *ws, unsigned *counters, long long w_stride, long long s_stride, int n, int k,     \
      int ncols, int div, int mode, int out_f32, int ksplit, int experts, const int *order, const int *offs, int hot
#define SK_ARGS {w, s, x, y, ids, wts, ws, counters, w_stride, s_stride, n, k, ncols, div, mode, out_f32, ksplit, \
                 experts, order, offs, hot}

#define SK_KERNEL(NAME, BF, FMT, NT)                                                                             \
  extern "C" __global__ void __launch_bounds__(SK_THREADS, SkFmt<FMT>::MINB) NAME(SK_PARAMS) {                 \
    const SkArgs a = SK_ARGS;                                                                                    \
    skinny<BF, FMT, NT>(a);                                                                                      \
  }
// by expert: one CTA per SM (no register cap: the pass's accumulators and unpacked chunks live together)
#define SK_EXPERT_KERNEL(NAME, BF, FMT)                                                                          \
  extern "C" __global__ void __launch_bounds__(SK_THREADS, 1) NAME(SK_PARAMS) {                                  \
    const SkArgs a = SK_ARGS;                                                                                    \
    skinny_by_expert<BF, FMT, KVP_SK_EXPERT_TILES>(a);                                                           \
  }

SK_KERNEL(kvp_skinny_bf16_c8, true, 0, 1)
SK_KERNEL(kvp_skinny_bf16_c16, true, 0, 2)
SK_KERNEL(kvp_skinny_f16_c8, false, 0, 1)
SK_KERNEL(kvp_skinny_f16_c16, false, 0, 2)
SK_KERNEL(kvp_skinny_mxfp4_c8, true, 1, 1)
SK_KERNEL(kvp_skinny_mxfp4_c16, true, 1, 2)
SK_KERNEL(kvp_skinny_fp8_c8, true, 2, 1)
SK_KERNEL(kvp_skinny_fp8_c16, true, 2, 2)
#if !KVP_SK_DENSE_ONLY  // the by-expert entry points (most of the compile time), left out of the sweep variants
SK_EXPERT_KERNEL(kvp_skinny_bf16_e, true, 0)
SK_EXPERT_KERNEL(kvp_skinny_f16_e, false, 0)
SK_EXPERT_KERNEL(kvp_skinny_mxfp4_e, true, 1)
SK_EXPERT_KERNEL(kvp_skinny_fp8_e, true, 2)
// by expert, a row tile per warp (KVP_SK_ROW_TILES x 8 pairs a pass, mxfp4 KVP_SK_ROW_TILES_FP4 x 8); the format's
// register cap (mxfp4: none, its unpacked chunks and the pass's accumulators live together)
#define SK_EXPERT_ROWS_KERNEL(NAME, BF, FMT)                                                                     \
  extern "C" __global__ void __launch_bounds__(SK_THREADS, SkFmt<FMT>::MINB) NAME(SK_PARAMS) {                   \
    const SkArgs a = SK_ARGS;                                                                                    \
    skinny_by_expert_rows<BF, FMT, FMT == 1 ? KVP_SK_ROW_TILES_FP4 : KVP_SK_ROW_TILES>(a);                      \
  }
SK_EXPERT_ROWS_KERNEL(kvp_skinny_bf16_er, true, 0)
SK_EXPERT_ROWS_KERNEL(kvp_skinny_f16_er, false, 0)
SK_EXPERT_ROWS_KERNEL(kvp_skinny_fp8_er, true, 2)
SK_EXPERT_ROWS_KERNEL(kvp_skinny_mxfp4_er, true, 1)
#endif

template <bool BF>
__device__ __forceinline__ float load16(const void* p, long long i) {
  return BF ? __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(p)[i])
            : __half2float(reinterpret_cast<const __half*>(p)[i]);
}

// Four consecutive 16-bit values at element i (8-byte aligned) as floats, and back.
template <bool BF>
__device__ __forceinline__ void load16x4(const void* p, long long i, float (&f)[4]) {
  const uint2 u = *reinterpret_cast<const uint2*>(reinterpret_cast<const unsigned short*>(p) + i);
  const unsigned w[2] = {u.x, u.y};
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    if (BF) {
      const float2 v = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[k]));
      f[2 * k] = v.x, f[2 * k + 1] = v.y;
    } else {
      const float2 v = __half22float2(*reinterpret_cast<const __half2*>(&w[k]));
      f[2 * k] = v.x, f[2 * k + 1] = v.y;
    }
  }
}

template <bool BF>
__device__ __forceinline__ void store16x4(void* p, long long i, const float (&f)[4]) {
  unsigned w[2];
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    if (BF) {
      const __nv_bfloat162 v = __floats2bfloat162_rn(f[2 * k], f[2 * k + 1]);
      w[k] = *reinterpret_cast<const unsigned*>(&v);
    } else {
      const __half2 v = __floats2half2_rn(f[2 * k], f[2 * k + 1]);
      w[k] = *reinterpret_cast<const unsigned*>(&v);
    }
  }
  *reinterpret_cast<uint2*>(reinterpret_cast<unsigned short*>(p) + i) = make_uint2(w[0], w[1]);
}

// out[t] = sum over the token's k pair rows of y (fp32 partials of MoE stage 2, already weighted), plus (when
// `extra` is given: a shared expert's [T, h] output) extra[t] times sigmoid(gate[t * gate_row]) (Qwen's
// shared-expert gate; 1 without `gate`): the shared expert's gate, product and sum in this launch instead of three
// elementwise kernels. Four columns a thread (h is a multiple of 8: 16-byte partials, 8-byte outputs): scalar
// loads read the partials at ~1.5 TB/s (H200, Qwen3-Next at 437 tokens x 11 pairs: 26 us a layer, session 14).
template <bool BF>
__device__ __forceinline__ void combine(const float* __restrict__ y, void* __restrict__ out, int tokens, int top_k,
                                        int h, const void* __restrict__ extra, const void* __restrict__ gate,
                                        long long gate_row) {
  kvp::pdl_enter();
  const int quads = h / 4, total = tokens * quads;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int t = i / quads, col = (i - t * quads) * 4;
    const float* row = y + (long long)t * top_k * h + col;
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (int j = 0; j < top_k; ++j) {
      const float4 v = *reinterpret_cast<const float4*>(row + (long long)j * h);
      acc[0] += v.x, acc[1] += v.y, acc[2] += v.z, acc[3] += v.w;
    }
    if (extra != nullptr) {
      float e[4];
      load16x4<BF>(extra, (long long)t * h + col, e);
      const float s = gate != nullptr ? 1.f / (1.f + __expf(-load16<BF>(gate, t * gate_row))) : 1.f;
#pragma unroll
      for (int k = 0; k < 4; ++k) acc[k] += e[k] * s;
    }
    store16x4<BF>(out, (long long)t * h + col, acc);
  }
}

extern "C" __global__ void __launch_bounds__(256) kvp_skinny_combine_bf16(
    const float* y, void* out, int tokens, int top_k, int h, const void* extra, const void* gate, long long gate_row) {
  combine<true>(y, out, tokens, top_k, h, extra, gate, gate_row);
}

extern "C" __global__ void __launch_bounds__(256) kvp_skinny_combine_f16(
    const float* y, void* out, int tokens, int top_k, int h, const void* extra, const void* gate, long long gate_row) {
  combine<false>(y, out, tokens, top_k, h, extra, gate, gate_row);
}
