// Skinny GEMM for decode: y[col, row] = sum_k W[row, k] * x[col, k] for up to 16 columns (tokens), every
// weight byte read once with 16-byte streaming loads. The same kernel runs the routed experts of an MoE
// layer: a CTA owns one expert and gathers every (token, expert) pair routed to it as its columns, so a
// distinct expert is read once however many tokens chose it.
//
// Tensor cores do the arithmetic (mma.m16n8k16, fp32 accumulate) straight from the loaded registers. The
// order of k inside an MMA does not matter as long as A (weights) and B (x) use the same one, so each lane
// loads a contiguous chunk of one row (8 bf16/fp16 values, or 32 mxfp4 values = one E8M0 scale group) and
// its pairs become the lane's A registers directly; the lane loads x at the same k for the column
// (lane / 4) whose B fragment it holds. No shared memory staging, no ldmatrix.
//
// CTA: KVP_SK_WARPS warps split the CTA's k range (interleaved steps) and reduce through shared memory.
// A CTA owns 32 weight rows: two 16-row MMA tiles (plain), or 16 gate rows and their 16 up rows (gated:
// the activation act(gate) * up is applied in the epilogue). grid.z splits k across CTAs when the rows
// alone give too few CTAs; those partials meet in an fp32 workspace and the last CTA of a tile (a counter)
// finishes it and leaves workspace and counter zeroed for the next launch (no memset, graph-safe).
// Dense launches may instead run "stream-K" (streamk > 0): grid.x = streamk CTAs, each owning an equal
// contiguous range of the flattened (row tile, k step) space, so every CTA streams the same number of weight
// bytes whatever the tile count (a grid of 896 tiles on 264 slots ran 3.4 waves, the last 40% full); a tile
// split between CTAs meets in the same workspace, its counter expecting as many parts as CTAs touched it.
//
// Programmatic dependent launch (sm_90, the host sets the attribute): weights never depend on the kernel
// before, so a dense CTA prefetches its first steps' weight lines into L2 before griddepcontrol.wait, and
// every CTA lets the next kernel launch at once. The next matmul's CTAs take the SM slots this grid frees as
// it drains and stage their weights while it finishes; everything that reads x, ids, the workspace or
// writes y comes after the wait.
//
// Launch arguments (all run-time; templates only pick dtype, weight format and 8 or 16 columns):
//   w         weights: [experts][rows][k] 16-bit, or [experts][rows][k/2] packed e2m1 (low nibble first)
//   s         mxfp4 only: [experts][rows][k/32] E8M0 scales
//   x         [*, k] activations (16-bit); column c reads x row cols[c] / div
//   y         output: plain [pairs][n] (16-bit, or fp32 when out_f32), gated [pairs][n]
//   ids       MoE only: [ncols] int32 expert id per pair (pair p = token * top_k + j); null for dense
//   wts       optional [pairs] fp32 factor per output row (routing weights); null for none
//   ws, counters  split-k workspace [slots * tiles * 32 * 16] fp32 and [slots * tiles] counters, zeroed
//   w_stride, s_stride  bytes between experts
//   n         plain: rows of W (outputs per column); gated: intermediate size (W has 2n rows: gate then up)
//   k         reduction length (16-bit: multiple of 8; mxfp4: multiple of 32)
//   ncols     dense: columns (tokens); MoE: pairs (grid.y == ncols, one CTA row per pair slot)
//   div       x row of pair p is p / div (MoE stage 1: top_k; otherwise 1)
//   mode      0 plain, 1 gated SiLU, 2 gated GELU (tanh)
//   out_f32   store fp32 (MoE stage 2 partial sums)
//   ksplit    CTAs along k (grid.z)
//   experts   number of experts (ids outside 0..experts-1 are skipped)
//   streamk   0: grid (tiles, slots, ksplit) as above; > 0: dense stream-K over grid.x == streamk CTAs

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kvp_common.cuh"

using kvp::bulk_g2s;
using kvp::mbar_arrive;
using kvp::mbar_arrive_tx;
using kvp::mbar_fence_init;
using kvp::mbar_init;
using kvp::mbar_wait;
using kvp::pdl_release;
using kvp::pdl_wait;

#ifndef KVP_SK_WARPS
#define KVP_SK_WARPS 8
#endif
#ifndef KVP_SK_MAX_SLOTS
#define KVP_SK_MAX_SLOTS 256
#endif
// Bytes in flight per lane (benchmark variants; skinny_config.SkinnyConfig sets them only when not default):
// chunks per row per lane per step (16-bit weights / mxfp4), the launch bound's CTAs per SM (2 caps registers
// at 128 per thread), and L2 prefetches of the lane's rows KVP_SK_PF of its own steps ahead (0: none).
#ifndef KVP_SK_U
#define KVP_SK_U 2
#endif
#ifndef KVP_SK_U_FP4
#define KVP_SK_U_FP4 1
#endif
#ifndef KVP_SK_MINB
#define KVP_SK_MINB 2
#endif
#ifndef KVP_SK_PF
#define KVP_SK_PF 0
#endif
#ifndef KVP_SKB_STAGE_K
#define KVP_SKB_STAGE_K 256
#endif
#ifndef KVP_SKB_STAGES
#define KVP_SKB_STAGES 5
#endif
#define SK_THREADS (KVP_SK_WARPS * 32)
#define SK_ROWS 32
#define SK_WS_COLS 16

static_assert(KVP_SK_MAX_SLOTS == SK_THREADS, "one thread per pair slot when gathering an expert's columns");
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
  int n, k, ncols, div, mode, out_f32, ksplit, experts, streamk;
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

__device__ __forceinline__ float act(int mode, float g) {
  if (mode == 1) return g / (1.0f + __expf(-g));
  const float u = 0.7978845608028654f * (g + 0.044715f * g * g * g);
  return 0.5f * g * (1.0f + tanhf(u));
}

// The CTA's shared state: the per-warp partials, then the finished tile (red[0]); its columns.
template <int NC>
struct SkShared {
  float red[KVP_SK_WARPS][SK_ROWS][NC];
  int ids_s[KVP_SK_MAX_SLOTS];
  int cols[NC];
  int wcount[KVP_SK_WARPS];
  int last_s;
};

// Weight rows of the lane for row tile `tile`: rows g, g + 8 of its two 16-row MMA tiles (plain), or gate row
// g / g + 8 and the same up rows (gated).
struct SkRows {
  const unsigned char* w[2][2];
  const unsigned char* s[2][2];
  bool ok[2][2];
};

template <int FMT>
__device__ __forceinline__ SkRows sk_rows(const SkArgs& a, int tile, int expert, int g) {
  SkRows R;
  const bool gated = a.mode != 0;
  const long long row_bytes = FMT ? (long long)(a.k / 2) : (long long)a.k * 2;
  const int groups = a.k / 32;
#pragma unroll
  for (int t = 0; t < 2; ++t)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = gated ? tile * 16 + h * 8 + g : tile * SK_ROWS + t * 16 + h * 8 + g;
      R.ok[t][h] = r < a.n;
      const long long wr = R.ok[t][h] ? (gated ? r + (long long)t * a.n : r) : 0;
      R.w[t][h] = a.w + expert * a.w_stride + wr * row_bytes;
      R.s[t][h] = FMT ? a.s + expert * a.s_stride + wr * groups : nullptr;
    }
  return R;
}

// L2 prefetch of the weight lines of steps st and st + WARPS (a lane of each quad per 128-byte line).
template <int FMT>
__device__ __forceinline__ void sk_prefetch(const SkRows& R, long long row_bytes, int st, int s1, int c) {
  constexpr int U = FMT ? KVP_SK_U_FP4 : KVP_SK_U;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int step = st + i * KVP_SK_WARPS;
    const long long off = (long long)step * U * 64 + c * 128;
    if (step < s1 && c * 128 < U * 64 && off < row_bytes) {
#pragma unroll
      for (int t = 0; t < 2; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          if (R.ok[t][h]) prefetch_l2(R.w[t][h] + off);
    }
  }
}

// The CTA's 8 (consumer) warps meet: the whole CTA, or named barrier 1 when a producer warp runs beside them.
template <bool NAMED>
__device__ __forceinline__ void sk_sync() {
  if (NAMED) {
    asm volatile("bar.sync 1, %0;\n" ::"n"(SK_THREADS) : "memory");
  } else {
    __syncthreads();
  }
}

// The tile's partials (C fragments: rows g / g + 8 of the two 16-row tiles, columns 2c, 2c + 1) reduced over
// the warps; then, if the tile has `parts` > 1 contributors, added into workspace cell `cell` and finished by
// the last of them (the others return); the finisher applies the activation / routing weight and stores y.
template <bool BF, int NT, bool NAMED>
__device__ __forceinline__ void sk_finish(const SkArgs& a, SkShared<NT * 8>& sh, const float (&acc)[2][NT][4],
                                          int ncols, int tile, int parts, long long cell) {
  constexpr int NC = NT * 8;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, c = lane & 3;
  const bool gated = a.mode != 0;
  // reduce the warps' partials: C fragment (row g / g + 8, columns 2c, 2c + 1)
#pragma unroll
  for (int t = 0; t < 2; ++t)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      sh.red[warp][t * 16 + g][nt * 8 + 2 * c] = acc[t][nt][0];
      sh.red[warp][t * 16 + g][nt * 8 + 2 * c + 1] = acc[t][nt][1];
      sh.red[warp][t * 16 + g + 8][nt * 8 + 2 * c] = acc[t][nt][2];
      sh.red[warp][t * 16 + g + 8][nt * 8 + 2 * c + 1] = acc[t][nt][3];
    }
  sk_sync<NAMED>();
  constexpr int VALS = SK_ROWS * NC;
  constexpr int PER = (VALS + SK_THREADS - 1) / SK_THREADS;
  float v[PER];
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    const int i = tid + j * SK_THREADS;  // i = col * 32 + row: consecutive threads, consecutive rows
    v[j] = 0.f;
    if (i < VALS) {
#pragma unroll
      for (int w = 0; w < KVP_SK_WARPS; ++w) v[j] += sh.red[w][i % SK_ROWS][i / SK_ROWS];
    }
  }
  if (parts > 1) {
    float* wsl = a.ws + cell * (SK_ROWS * SK_WS_COLS);
#pragma unroll
    for (int j = 0; j < PER; ++j) {
      const int i = tid + j * SK_THREADS;
      if (i < VALS) atomicAdd(wsl + (i / SK_ROWS) * SK_ROWS + i % SK_ROWS, v[j]);
    }
    __threadfence();
    sk_sync<NAMED>();
    if (tid == 0) sh.last_s = atomicAdd(a.counters + cell, 1u) == (unsigned)(parts - 1);
    sk_sync<NAMED>();
    if (!sh.last_s) return;  // uniform: another CTA finishes this tile
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
  sk_sync<NAMED>();
#pragma unroll
  for (int j = 0; j < PER; ++j) {
    const int i = tid + j * SK_THREADS;
    if (i < VALS) sh.red[0][i % SK_ROWS][i / SK_ROWS] = v[j];
  }
  sk_sync<NAMED>();
  if (gated) {
    for (int i = tid; i < 16 * NC; i += SK_THREADS) {
      const int r = i % 16, col = i / 16, row = tile * 16 + r;
      if (row < a.n && col < ncols) {
        const int p = sh.cols[col];
        float h = act(a.mode, sh.red[0][r][col]) * sh.red[0][16 + r][col];
        if (a.wts) h *= a.wts[p];
        store_out<BF>(a.y, (long long)p * a.n + row, h, a.out_f32);
      }
    }
  } else {
    for (int i = tid; i < VALS; i += SK_THREADS) {
      const int r = i % SK_ROWS, col = i / SK_ROWS, row = tile * SK_ROWS + r;
      if (row < a.n && col < ncols) {
        const int p = sh.cols[col];
        float o = sh.red[0][r][col];
        if (a.wts) o *= a.wts[p];
        store_out<BF>(a.y, (long long)p * a.n + row, o, a.out_f32);
      }
    }
  }
}

// Steps [s0, s1) of row tile `tile` (warps take every WARPS-th step), then sk_finish.
template <bool BF, int FMT, int NT>
__device__ __forceinline__ void sk_tile(const SkArgs& a, SkShared<NT * 8>& sh, const SkRows& R,
                                        const unsigned char* const (&xrow)[NT], const bool (&xok)[NT], int ncols,
                                        int tile, int s0, int s1, int parts, long long cell) {
  constexpr int CE = FMT ? 32 : 8;                  // elements per lane chunk (16 bytes of weights)
  constexpr int QS = 4 * CE;                        // elements per quad of lanes
  constexpr int U = FMT ? KVP_SK_U_FP4 : KVP_SK_U;  // chunks per row per lane per step
  constexpr int NC = NT * 8;
  constexpr int REGS = FMT ? 16 : 4;                // A registers per row per chunk
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, c = lane & 3;
  const bool gated = a.mode != 0;

  float acc[2][NT][4];
#pragma unroll
  for (int t = 0; t < 2; ++t)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[t][nt][i] = 0.f;

  for (int st = s0 + warp; st < s1; st += KVP_SK_WARPS) {
    if constexpr (KVP_SK_PF > 0) {
      // a row's step is U * 64 contiguous bytes (16-bit and mxfp4 alike): lanes c < max(1, U / 2) take a
      // 128-byte line each (a hint: an unaligned row start leaves part of a line to the load itself)
      const int ahead = st + KVP_SK_PF * KVP_SK_WARPS;
      const long long off = (long long)ahead * U * 64 + c * 128;
      const long long row_bytes = FMT ? (long long)(a.k / 2) : (long long)a.k * 2;
      if (ahead < s1 && c * 128 < U * 64) {
#pragma unroll
        for (int t = 0; t < 2; ++t)
#pragma unroll
          for (int h = 0; h < 2; ++h)
            if (R.ok[t][h] && off < row_bytes) prefetch_l2(R.w[t][h] + off);
      }
    }
    uint4 wv[U][2][2];
    unsigned sc[U][2][2];
    uint4 xv[U][NT][FMT ? 4 : 1];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int k0 = (st * U + u) * QS + c * CE;
      const bool kok = k0 < a.k;
#pragma unroll
      for (int t = 0; t < 2; ++t)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const bool ok = kok && R.ok[t][h];
          wv[u][t][h] = ok ? ld_stream(R.w[t][h] + (FMT ? k0 / 2 : k0 * 2)) : make_uint4(0, 0, 0, 0);
          if constexpr (FMT) sc[u][t][h] = ok ? ld_stream_u8(R.s[t][h] + k0 / 32) : 127u;
        }
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int i = 0; i < (FMT ? 4 : 1); ++i)
          xv[u][nt][i] = (kok && xok[nt]) ? *reinterpret_cast<const uint4*>(xrow[nt] + k0 * 2 + 16 * i)
                                          : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      unsigned b[NT][REGS];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        if constexpr (FMT) {
          unsigned tmp[16];
          x_pairs_fp4(*reinterpret_cast<const uint4(*)[4]>(&xv[u][nt][0]), tmp);
#pragma unroll
          for (int i = 0; i < REGS; ++i) b[nt][i] = tmp[i];
        } else {
          b[nt][0] = xv[u][nt][0].x, b[nt][1] = xv[u][nt][0].y, b[nt][2] = xv[u][nt][0].z, b[nt][3] = xv[u][nt][0].w;
        }
      }
#pragma unroll
      for (int t = 0; t < 2; ++t) {
        unsigned r0[REGS], r1[REGS];
        if constexpr (FMT) {
          fp4_chunk(wv[u][t][0], sc[u][t][0], *reinterpret_cast<unsigned(*)[16]>(r0));
          fp4_chunk(wv[u][t][1], sc[u][t][1], *reinterpret_cast<unsigned(*)[16]>(r1));
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

  sk_finish<BF, NT, false>(a, sh, acc, ncols, tile, parts, cell);
}

// FMT 0: 16-bit weights (T = x's type); FMT 1: mxfp4 weights, bf16 x. NT: 8-column MMA tiles (1 or 2).
template <bool BF, int FMT, int NT>
__device__ __forceinline__ void skinny(const SkArgs& a) {
  constexpr int U = FMT ? KVP_SK_U_FP4 : KVP_SK_U;
  constexpr int NC = NT * 8;
  __shared__ SkShared<NC> sh;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int slot = blockIdx.y;
  const bool gated = a.mode != 0;
  const int tiles = gated ? (a.n + 15) / 16 : (a.n + SK_ROWS - 1) / SK_ROWS;
  const int nsteps = (a.k + U * 4 * (FMT ? 32 : 8) - 1) / (U * 4 * (FMT ? 32 : 8));
  const long long row_bytes = FMT ? (long long)(a.k / 2) : (long long)a.k * 2;
  // this CTA's first (tile, step range): stream-K takes an equal share of tiles x nsteps steps
  const long long total = (long long)tiles * nsteps;
  const long long lo = a.streamk ? total * blockIdx.x / gridDim.x : 0, hi = a.streamk ? total * (blockIdx.x + 1) / gridDim.x : 0;
  const int per = (nsteps + a.ksplit - 1) / a.ksplit;

  int expert = 0, ncols;
  if (a.ids) {
    pdl_wait();  // the ids come from the router kernel before
    pdl_release();
    const int pairs = a.ncols;
    sh.ids_s[tid] = tid < pairs ? a.ids[tid] : -1;
    __syncthreads();
    expert = sh.ids_s[slot];
    // the first slot of an expert runs it for every pair routed to it; later slots of the same expert exit
    if (__syncthreads_or(tid < slot && sh.ids_s[tid] == expert) || expert < 0 || expert >= a.experts) return;
    const bool mine = sh.ids_s[tid] == expert;
    const unsigned ball = __ballot_sync(0xffffffffu, mine);
    if (lane == 0) sh.wcount[warp] = __popc(ball);
    __syncthreads();
    int before = 0;
    ncols = 0;
#pragma unroll
    for (int w = 0; w < KVP_SK_WARPS; ++w) {
      before += w < warp ? sh.wcount[w] : 0;
      ncols += sh.wcount[w];
    }
    if (mine) {
      const int pos = before + __popc(ball & ((1u << lane) - 1u));
      if (pos < NC) sh.cols[pos] = tid;
    }
    ncols = min(ncols, NC);
  } else {
    // weights do not depend on the kernel before: stage this CTA's first steps in L2 while it drains
    if (FMT == 0 && a.streamk) {
      if (lo < hi) {
        const int t0 = (int)(lo / nsteps), st0 = (int)(lo - (long long)t0 * nsteps);
        sk_prefetch<FMT>(sk_rows<FMT>(a, t0, 0, g), row_bytes, st0 + warp, (int)min((long long)nsteps, st0 + hi - lo), c);
      }
    } else {
      const int s0 = blockIdx.z * per;
      sk_prefetch<FMT>(sk_rows<FMT>(a, blockIdx.x, 0, g), row_bytes, s0 + warp, min(nsteps, s0 + per), c);
    }
    pdl_release();
    pdl_wait();
    ncols = min(a.ncols, NC);
    if (tid < NC) sh.cols[tid] = tid;
  }
  __syncthreads();

  const unsigned char* xrow[NT];
  bool xok[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int col = nt * 8 + g;
    xok[nt] = col < ncols;
    const int p = xok[nt] ? sh.cols[col] : 0;
    xrow[nt] = a.x + (long long)(p / a.div) * a.k * 2;
  }

  if (FMT != 0 || !a.streamk) {  // (mxfp4 runs MoE experts only: never stream-K)
    const int tile = blockIdx.x, s0 = blockIdx.z * per;
    sk_tile<BF, FMT, NT>(a, sh, sk_rows<FMT>(a, tile, expert, g), xrow, xok, ncols, tile, s0, min(nsteps, s0 + per),
                         a.ksplit, (long long)slot * gridDim.x + tile);
    return;
  }
  if constexpr (FMT != 0) return;
  // stream-K: the owner of flattened step q is the CTA whose [lo, hi) holds it
  auto owner = [&](long long q) { return (int)(((q + 1) * gridDim.x - 1) / total); };
  for (long long q = lo; q < hi;) {
    const int tile = (int)(q / nsteps), s0 = (int)(q - (long long)tile * nsteps);
    const int s1 = (int)min((long long)nsteps, s0 + (hi - q));
    const long long first = (long long)tile * nsteps;
    const int parts = owner(first + nsteps - 1) - owner(first) + 1;
    sk_tile<BF, FMT, NT>(a, sh, sk_rows<FMT>(a, tile, 0, g), xrow, xok, ncols, tile, s0, s1, parts, tile);
    __syncthreads();  // red and last_s are reused by the next tile
    q += s1 - s0;
  }
}

// ---- sm_90: dense matmuls with bulk copies (16-bit weights) -----------------------------------------------
// A producer warp streams the weight rows of the CTA's (tile, stage) range into a ring of KVP_SKB_STAGES shared
// stages, one cp.async.bulk per row (32 lanes, 32 rows; rows padded by 16 bytes so that the ldmatrix phases hit
// distinct banks), each stage completing on its "full" mbarrier; it refills a stage once the 8 consumer warps
// have arrived on its "empty" mbarrier. The consumers split a stage's k16 chunks, read A with ldmatrix and x
// from global memory (L1/L2: a few KB), and finish tiles with sk_finish on named barrier 1. Ranges are
// stream-K over grid.x CTAs, so the ring runs on across tile boundaries. The producer starts before
// griddepcontrol.wait (weights never depend on the kernel before): a CTA that the previous kernel's drain
// lets onto an SM fills its whole ring while that kernel finishes.
constexpr int SKB_K = KVP_SKB_STAGE_K;                 // k elements per stage
constexpr int SKB_STAGES = KVP_SKB_STAGES;
constexpr int SKB_ROW = SKB_K * 2 + 16;                // padded row stride in a stage (bytes)
constexpr int SKB_STAGE_BYTES = SK_ROWS * SKB_ROW;
constexpr int SKB_BARS = ((16 * SKB_STAGES + 127) / 128) * 128;  // full + empty mbarriers, then the stages
static_assert(SKB_K % 16 == 0 && (SKB_K / 16) % KVP_SK_WARPS == 0, "every consumer warp owns whole k16 chunks");
static_assert((SKB_ROW / 4) % 32 == 4, "row stride: 8 rows of one ldmatrix phase on distinct 4-bank groups");
#define SKB_THREADS (SK_THREADS + 32)

__device__ __forceinline__ void ldsm_x4(u32 addr, u32& r0, u32& r1, u32& r2, u32& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

template <bool BF, int NT>
__device__ __forceinline__ void skinny_bulk(const SkArgs& a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int NC = NT * 8;
  __shared__ SkShared<NC> sh;
  extern __shared__ __align__(128) unsigned char dsm[];
  const u32 full0 = (u32)__cvta_generic_to_shared(dsm), empty0 = full0 + 8 * SKB_STAGES;
  const u32 ring = full0 + SKB_BARS;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int tiles = (a.n + SK_ROWS - 1) / SK_ROWS;
  const int nst = (a.k + SKB_K - 1) / SKB_K;  // stages per tile
  const long long total = (long long)tiles * nst;
  const long long lo = total * blockIdx.x / gridDim.x, hi = total * (blockIdx.x + 1) / gridDim.x;
  if (tid == 0) {
    for (int s = 0; s < SKB_STAGES; ++s) {
      mbar_init(full0 + 8 * s, 1);
      mbar_init(empty0 + 8 * s, KVP_SK_WARPS);
    }
    mbar_fence_init();
  }
  __syncthreads();
  pdl_release();

  if (warp == KVP_SK_WARPS) {  // producer
    for (long long q = lo; q < hi; ++q) {
      const int i = (int)(q - lo), s = i % SKB_STAGES, round = i / SKB_STAGES;
      if (round > 0) mbar_wait(empty0 + 8 * s, (round - 1) & 1);
      const int tile = (int)(q / nst), k0 = (int)(q - (long long)tile * nst) * SKB_K;
      const int kb = min(SKB_K, a.k - k0) * 2, rows = min(SK_ROWS, a.n - tile * SK_ROWS);
      if (lane == 0) mbar_arrive_tx(full0 + 8 * s, (u32)(rows * kb));
      __syncwarp();
      if (lane < rows)
        bulk_g2s(ring + s * SKB_STAGE_BYTES + lane * SKB_ROW,
                 a.w + ((long long)(tile * SK_ROWS + lane) * a.k + k0) * 2, (u32)kb, full0 + 8 * s);
    }
    return;
  }

  pdl_wait();  // x, the workspace and y belong to the kernels around this one
  const int g = lane >> 2, c = lane & 3;
  const int ncols = min(a.ncols, NC);
  if (tid < NC) sh.cols[tid] = tid;
  const unsigned char* xrow[NT];
  bool xok[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    xok[nt] = nt * 8 + g < ncols;
    xrow[nt] = a.x + (long long)(xok[nt] ? nt * 8 + g : 0) * a.k * 2;
  }
  auto owner = [&](long long q) { return (int)(((q + 1) * gridDim.x - 1) / total); };
  // ldmatrix x4: lanes 0-15 give rows 0-15 at the chunk's k, lanes 16-31 the same rows 8 values on
  const u32 a_off = (lane & 15) * SKB_ROW + (lane >> 4) * 16;
  for (long long q = lo; q < hi;) {
    const int tile = (int)(q / nst), s0 = (int)(q - (long long)tile * nst);
    const int s1 = (int)min((long long)nst, s0 + (hi - q));
    const long long first = (long long)tile * nst;
    const int parts = owner(first + nst - 1) - owner(first) + 1;
    float acc[2][NT][4];
#pragma unroll
    for (int t = 0; t < 2; ++t)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[t][nt][e] = 0.f;
    for (int st = s0; st < s1; ++st) {
      const int i = (int)(q - lo) + (st - s0), s = i % SKB_STAGES;
      mbar_wait(full0 + 8 * s, (u32)((i / SKB_STAGES) & 1));
      const u32 stage = ring + s * SKB_STAGE_BYTES + a_off;
      const int kl = min(SKB_K, a.k - st * SKB_K);  // valid k of this stage (a multiple of 8)
#pragma unroll
      for (int ch = warp; ch < SKB_K / 16; ch += KVP_SK_WARPS) {
        const int kc = ch * 16;
        if (kc < kl) {
          const bool half = kc + 16 > kl;  // only k 0-7 of this chunk exist
          const int kg = st * SKB_K + kc + 2 * c;
          u32 b[NT][2];
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            b[nt][0] = xok[nt] ? __ldg(reinterpret_cast<const unsigned*>(xrow[nt] + kg * 2)) : 0u;
            b[nt][1] = (xok[nt] && !half) ? __ldg(reinterpret_cast<const unsigned*>(xrow[nt] + (kg + 8) * 2)) : 0u;
          }
#pragma unroll
          for (int t = 0; t < 2; ++t) {
            u32 a0, a1, a2, a3;
            ldsm_x4(stage + t * 16 * SKB_ROW + kc * 2, a0, a1, a2, a3);
            if (half) a2 = a3 = 0u;  // stale bytes past the row's end (possibly NaN patterns)
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) mma16816<BF>(acc[t][nt], a0, a1, a2, a3, b[nt][0], b[nt][1]);
          }
        }
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(empty0 + 8 * s);
    }
    sk_finish<BF, NT, true>(a, sh, acc, ncols, tile, parts, tile);
    sk_sync<true>();  // red and last_s are reused by the next tile
    q += s1 - s0;
  }
#endif
}

#define SKB_KERNEL(NAME, BF, NT)                                                                                 \
  extern "C" __global__ void __launch_bounds__(SKB_THREADS) NAME(SK_PARAMS) {                                     \
    const SkArgs a = SK_ARGS;                                                                                    \
    skinny_bulk<BF, NT>(a);                                                                                      \
  }

#define SK_PARAMS                                                                                                \
  const unsigned char *w, const unsigned char *s, const unsigned char *x, void *y, const int *ids,              \
      const float *wts, float *ws, unsigned *counters, long long w_stride, long long s_stride, int n, int k,     \
      int ncols, int div, int mode, int out_f32, int ksplit, int experts, int streamk
#define SK_ARGS {w, s, x, y, ids, wts, ws, counters, w_stride, s_stride, n, k, ncols, div, mode, out_f32, ksplit, experts, \
                 streamk}

#define SK_KERNEL(NAME, BF, FMT, NT)                                                                             \
  extern "C" __global__ void __launch_bounds__(SK_THREADS, KVP_SK_MINB) NAME(SK_PARAMS) {                         \
    const SkArgs a = SK_ARGS;                                                                                    \
    skinny<BF, FMT, NT>(a);                                                                                      \
  }

SK_KERNEL(kvp_skinny_bf16_c8, true, 0, 1)
SK_KERNEL(kvp_skinny_bf16_c16, true, 0, 2)
SK_KERNEL(kvp_skinny_f16_c8, false, 0, 1)
SK_KERNEL(kvp_skinny_f16_c16, false, 0, 2)
SK_KERNEL(kvp_skinny_mxfp4_c8, true, 1, 1)
SK_KERNEL(kvp_skinny_mxfp4_c16, true, 1, 2)
SKB_KERNEL(kvp_skinny_bulk_bf16_c8, true, 1)
SKB_KERNEL(kvp_skinny_bulk_bf16_c16, true, 2)
SKB_KERNEL(kvp_skinny_bulk_f16_c8, false, 1)
SKB_KERNEL(kvp_skinny_bulk_f16_c16, false, 2)

// out[t, :] = sum_j y[t * top_k + j, :] (fp32 partials of MoE stage 2, already weighted) in the 16-bit dtype.
template <bool BF>
__device__ __forceinline__ void combine(const float* __restrict__ y, void* __restrict__ out, int tokens, int top_k,
                                        int h) {
  const int total = tokens * h;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int t = i / h, col = i - t * h;
    float acc = 0.f;
    for (int j = 0; j < top_k; ++j) acc += y[((long long)t * top_k + j) * h + col];
    store_out<BF>(out, i, acc, 0);
  }
}

extern "C" __global__ void __launch_bounds__(256) kvp_skinny_combine_bf16(const float* y, void* out, int tokens,
                                                                          int top_k, int h) {
  combine<true>(y, out, tokens, top_k, h);
}

extern "C" __global__ void __launch_bounds__(256) kvp_skinny_combine_f16(const float* y, void* out, int tokens,
                                                                         int top_k, int h) {
  combine<false>(y, out, tokens, top_k, h);
}
