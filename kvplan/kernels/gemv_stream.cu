// Weight-streaming GEMV for decode: y[b, row] = sum_k W[row, k] * x[b, k] for 1..8 tokens, 16-bit weights.
//
// Why a second dense kernel beside skinny_gemm.cu: a decode step is a chain of matmuls of 8-250 MB each, and a
// kernel that ends and a kernel that starts leave the memory system idle for a few microseconds, which is what
// keeps a whole model's weight stream under 85% of read bandwidth with cuBLAS. This kernel is built so that the
// next one's weights are already on their way while the one before drains:
//   - a persistent grid that takes half of each SM (two 128-thread CTAs of <= 128 registers), so the next
//     launch's CTAs fit beside it;
//   - programmatic dependent launch: the next grid is released at once, and a warp loads its first DEPTH steps of
//     weights into registers before griddepcontrol.wait (weights are constants; only x comes from the kernel
//     before);
//   - every warp an equal contiguous range of the flattened (row tile, k step) space, so no warp is left with a
//     tail; a tile cut between warps meets in an fp32 workspace, the last warp to arrive (a counter) writes it
//     and leaves workspace and counter zeroed for the next launch (graph-safe, no memset).
// A step is one 16-row tile x 64 k (2 KB); a lane holds 16 bytes of rows g and g + 8 at two k chunks and feeds
// them straight into mma.m16n8k16 as A (the k order inside an MMA is free as long as x, B, uses the same one:
// see skinny_gemm.cu), x's column g as B. Weights stream in a register ring of DEPTH steps.
//
//   w         [n, k] 16-bit, k a multiple of 64, 16-byte aligned
//   x         [batch, k] (written by the kernel before: read after the wait)
//   y         [batch, n]
//   ws        [tiles * 128] fp32 zeros; counters [tiles] zeros
//   per_warp  steps per warp (ceil(tiles * k / 64 / warps), the host's choice)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "kvp_pdl.cuh"

#ifndef KVP_GV_DEPTH
#define KVP_GV_DEPTH 3
#endif
#define GV_WARPS 4
#define GV_THREADS (GV_WARPS * 32)
#define GV_STEP_K 64
#define GV_TILE_VALUES 128  // 16 rows x 8 columns

struct GvArgs {
  const unsigned char* w;
  const unsigned char* x;
  void* y;
  float* ws;
  unsigned* counters;
  int n, k, batch, per_warp;
};

__device__ __forceinline__ uint4 gv_ld_stream(const unsigned char* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

__device__ __forceinline__ uint4 gv_ld_x(const unsigned char* p) {
  uint4 v;
  asm volatile("ld.global.nc.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

template <bool BF>
__device__ __forceinline__ void gv_mma(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
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

template <bool BF>
__device__ __forceinline__ void gv_store(void* y, long long i, float v) {
  if (BF) {
    reinterpret_cast<__nv_bfloat16*>(y)[i] = __float2bfloat16(v);
  } else {
    reinterpret_cast<__half*>(y)[i] = __float2half(v);
  }
}

// Where a warp's loads stand: the tile, the step inside it and the lane's two row pointers at that step.
struct GvCursor {
  int tile, step;
  const unsigned char* r0;  // row tile * 16 + g, at this step's first chunk of the lane
  bool ok0, ok1;            // rows g and g + 8 inside n
};

__device__ __forceinline__ void gv_seek(const GvArgs& a, GvCursor& cur, int g, int c) {
  const int row = cur.tile * 16 + g;
  cur.ok0 = row < a.n;
  cur.ok1 = row + 8 < a.n;
  cur.r0 = a.w + (long long)(cur.ok0 ? row : 0) * a.k * 2 + (long long)cur.step * GV_STEP_K * 2 + c * 16;
}

__device__ __forceinline__ void gv_advance(const GvArgs& a, GvCursor& cur, int steps_per_tile, int g, int c) {
  if (++cur.step == steps_per_tile) {
    cur.step = 0;
    ++cur.tile;
    gv_seek(a, cur, g, c);
  } else {
    cur.r0 += GV_STEP_K * 2;
  }
}

// The lane's 64 bytes of one step: rows g and g + 8, k chunks c and 4 + c (16 bytes each).
__device__ __forceinline__ void gv_load_w(const GvArgs& a, const GvCursor& cur, uint4 (&wv)[4]) {
  const long long row8 = 8LL * a.k * 2;
  const uint4 z = make_uint4(0, 0, 0, 0);
  wv[0] = cur.ok0 ? gv_ld_stream(cur.r0) : z;
  wv[1] = cur.ok0 ? gv_ld_stream(cur.r0 + 64) : z;
  wv[2] = cur.ok1 ? gv_ld_stream(cur.r0 + row8) : z;
  wv[3] = cur.ok1 ? gv_ld_stream(cur.r0 + row8 + 64) : z;
}

__device__ __forceinline__ void gv_load_x(const GvArgs& a, int step, bool xok, const unsigned char* xrow,
                                          uint4 (&xv)[2]) {
  const uint4 z = make_uint4(0, 0, 0, 0);
  const unsigned char* p = xrow + (long long)step * GV_STEP_K * 2;
  xv[0] = xok ? gv_ld_x(p) : z;
  xv[1] = xok ? gv_ld_x(p + 64) : z;
}

// Warps whose step range touches tile t (ranges of per_warp steps from 0): they all flush into its workspace.
__device__ __forceinline__ int gv_contributors(long long t, int steps_per_tile, int per_warp) {
  const long long first = t * steps_per_tile / per_warp;
  const long long last = ((t + 1) * steps_per_tile - 1) / per_warp;
  return (int)(last - first + 1);
}

template <bool BF>
__device__ __forceinline__ void gv_flush(const GvArgs& a, int tile, float (&acc)[4], int steps_per_tile, int g,
                                         int c, int lane) {
  const int rows[2] = {tile * 16 + g, tile * 16 + g + 8};
  const int cols[2] = {2 * c, 2 * c + 1};
  if (gv_contributors(tile, steps_per_tile, a.per_warp) == 1) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if (rows[i / 2] < a.n && cols[i % 2] < a.batch) gv_store<BF>(a.y, (long long)cols[i % 2] * a.n + rows[i / 2], acc[i]);
    return;
  }
  float* cell = a.ws + (long long)tile * GV_TILE_VALUES;
#pragma unroll
  for (int i = 0; i < 4; ++i)
    if (cols[i % 2] < a.batch) atomicAdd(cell + (i / 2 * 8 + g) * 8 + cols[i % 2], acc[i]);
  __threadfence();
  __syncwarp();
  unsigned old = 0;
  if (lane == 0) old = atomicAdd(a.counters + tile, 1u);
  old = __shfl_sync(0xffffffffu, old, 0);
  if (old + 1 != (unsigned)gv_contributors(tile, steps_per_tile, a.per_warp)) return;
  __threadfence();  // every other warp's sums are in before this warp reads them
#pragma unroll
  for (int i = 0; i < 4; ++i)
    if (cols[i % 2] < a.batch) {
      const float v = atomicExch(cell + (i / 2 * 8 + g) * 8 + cols[i % 2], 0.f);
      if (rows[i / 2] < a.n) gv_store<BF>(a.y, (long long)cols[i % 2] * a.n + rows[i / 2], v);
    }
  if (lane == 0) a.counters[tile] = 0;
}

template <bool BF>
__device__ __forceinline__ void gemv_stream(const GvArgs& a) {
  constexpr int D = KVP_GV_DEPTH;
  const int lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const long long warp = (long long)blockIdx.x * GV_WARPS + (threadIdx.x >> 5);
  const int steps_per_tile = a.k / GV_STEP_K;
  const long long total = (long long)((a.n + 15) / 16) * steps_per_tile;
  const long long u0 = warp * a.per_warp, u1 = min(total, u0 + a.per_warp);
  kvp::pdl_release();

  // the ring's first DEPTH steps of weights, before the wait
  uint4 wv[D][4];
  GvCursor ld;
  ld.tile = (int)(u0 / steps_per_tile);
  ld.step = (int)(u0 % steps_per_tile);
  gv_seek(a, ld, g, c);
#pragma unroll
  for (int d = 0; d < D; ++d) {
    if (u0 + d < u1) {
      gv_load_w(a, ld, wv[d]);
      gv_advance(a, ld, steps_per_tile, g, c);
    }
  }
  kvp::pdl_wait();
  if (u0 >= u1) return;

  const bool xok = g < a.batch;
  const unsigned char* xrow = a.x + (long long)(xok ? g : 0) * a.k * 2 + c * 16;
  uint4 xv[D][2];
  int tile = (int)(u0 / steps_per_tile), step = (int)(u0 % steps_per_tile), xstep = step;
#pragma unroll
  for (int d = 0; d < D; ++d) {
    gv_load_x(a, xstep, xok, xrow, xv[d]);
    xstep = xstep + 1 == steps_per_tile ? 0 : xstep + 1;
  }
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (long long base = u0; base < u1; base += D) {
#pragma unroll
    for (int d = 0; d < D; ++d) {
      const long long u = base + d;
      if (u < u1) {
        gv_mma<BF>(acc, wv[d][0].x, wv[d][2].x, wv[d][0].y, wv[d][2].y, xv[d][0].x, xv[d][0].y);
        gv_mma<BF>(acc, wv[d][0].z, wv[d][2].z, wv[d][0].w, wv[d][2].w, xv[d][0].z, xv[d][0].w);
        gv_mma<BF>(acc, wv[d][1].x, wv[d][3].x, wv[d][1].y, wv[d][3].y, xv[d][1].x, xv[d][1].y);
        gv_mma<BF>(acc, wv[d][1].z, wv[d][3].z, wv[d][1].w, wv[d][3].w, xv[d][1].z, xv[d][1].w);
        if (u + D < u1) {  // refill this slot with the step DEPTH ahead
          gv_load_w(a, ld, wv[d]);
          gv_advance(a, ld, steps_per_tile, g, c);
          gv_load_x(a, xstep, xok, xrow, xv[d]);
          xstep = xstep + 1 == steps_per_tile ? 0 : xstep + 1;
        }
        if (++step == steps_per_tile || u + 1 == u1) {
          gv_flush<BF>(a, tile, acc, steps_per_tile, g, c, lane);
          acc[0] = acc[1] = acc[2] = acc[3] = 0.f;
          step = 0;
          ++tile;
        }
      }
    }
  }
}

// four CTAs' worth of registers per SM (<= 128 a thread): the grid takes two, the next launch the other two
#define GV_KERNEL(NAME, BF)                                                                                      \
  extern "C" __global__ void __launch_bounds__(GV_THREADS, 4)                                                    \
      NAME(const unsigned char* w, const unsigned char* x, void* y, float* ws, unsigned* counters, int n, int k, \
           int batch, int per_warp) {                                                                          \
    const GvArgs a = {w, x, y, ws, counters, n, k, batch, per_warp};                                             \
    gemv_stream<BF>(a);                                                                                          \
  }
GV_KERNEL(kvp_gemv_stream_bf16, true)
GV_KERNEL(kvp_gemv_stream_f16, false)
