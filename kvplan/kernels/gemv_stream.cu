// Weight-streaming GEMV for decode: y[b, row] = sum_k W[row, k] * x[b, k] for 1..8 tokens, 16-bit weights.
//
// Why a second dense kernel beside skinny_gemm.cu: a decode step is a chain of matmuls of 8-250 MB each, and a
// kernel that ends and a kernel that starts leave the memory system idle for a few microseconds, which is what
// keeps a whole model's weight stream under 85% of read bandwidth with cuBLAS. This kernel is built so that the
// next one's weights are already on their way while the one before drains:
//   - a persistent grid that leaves room on every SM for the next launch's CTAs (two CTAs of four warps and
//     4 x DEPTH x 3 KB of shared memory each, of the four an SM holds);
//   - programmatic dependent launch: the next grid is released at once, and its warps start copying their
//     first DEPTH steps of weights before griddepcontrol.wait (weights are constants; only x comes from the
//     kernel before);
//   - every warp an equal contiguous range of the flattened (row tile, k step) space, so no warp is left with a
//     tail; a tile cut between warps meets in an fp32 workspace, the last warp to arrive (a counter) writes it
//     and leaves workspace and counter zeroed for the next launch (graph-safe, no memset).
// A step is one 16-row tile x 64 k (2 KB). Each warp streams its steps through its own ring of DEPTH stages in
// shared memory with 16-byte cp.async, one commit group per step: a lane copies exactly the bytes it reads
// back (64 bytes of weights: rows g and g + 8 at k chunks c and 4 + c; 32 bytes of x's column g), so no
// barrier is needed, and wait_group keeps DEPTH - 1 steps in flight while one is used (loads into registers
// cannot do that: ptxas waits for all of a warp's outstanding loads at the first use of any). The 16-byte
// chunks go straight into mma.m16n8k16 as A (the k order inside an MMA is free as long as x, B, uses the same
// one: see skinny_gemm.cu), x's column g as B.
//
//   w         [n, k] 16-bit, k a multiple of 64, 16-byte aligned
//   x         [batch, k] (written by the kernel before: read after the wait)
//   y         [batch, n]
//   ws        [tiles * 128] fp32 zeros; counters [tiles] zeros
//   per_warp  steps per warp (ceil(tiles * k / 64 / warps), the host's choice)
//   dynamic shared memory: GV_WARPS x DEPTH x 3 KB

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "kvp_pdl.cuh"

#ifndef KVP_GV_DEPTH
#define KVP_GV_DEPTH 4
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

__device__ __forceinline__ void gv_cp_w(unsigned dst, const unsigned char* src) {  // weights: L2 only
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void gv_cp_x(unsigned dst, const unsigned char* src) {  // x: every warp reads it, L1 too
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void gv_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void gv_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

template <bool BF>
__device__ __forceinline__ void gv_mma(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                       unsigned b0, unsigned b1) {
  if (BF) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
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

// Where a warp's copies stand: the step (unit) of its range, its tile and k step, the lane's two row pointers. The
// cursor stops at the range's last step: a stage refilled past the end copies that step again (from L2) and is
// never used, so that every step commits one group and wait_group's count stays the ring's.
struct GvCursor {
  long long u;
  int tile, step;
  const unsigned char* r0;  // row tile * 16 + g (clamped to n - 1), at the lane's first chunk of this step
  const unsigned char* r1;  // row tile * 16 + g + 8 (clamped; rows past n are computed and never stored)
};

__device__ __forceinline__ void gv_seek(const GvArgs& a, GvCursor& cur, int g, int c) {
  const long long row_bytes = (long long)a.k * 2, at = (long long)cur.step * GV_STEP_K * 2 + c * 16;
  cur.r0 = a.w + min(cur.tile * 16 + g, a.n - 1) * row_bytes + at;
  cur.r1 = a.w + min(cur.tile * 16 + g + 8, a.n - 1) * row_bytes + at;
}

__device__ __forceinline__ void gv_advance(const GvArgs& a, GvCursor& cur, long long last, int steps_per_tile,
                                           int g, int c) {
  if (cur.u == last) return;
  ++cur.u;
  if (++cur.step == steps_per_tile) {
    cur.step = 0;
    ++cur.tile;
    gv_seek(a, cur, g, c);
  } else {
    cur.r0 += GV_STEP_K * 2;
    cur.r1 += GV_STEP_K * 2;
  }
}

// A stage: 6 chunks of 16 bytes per lane, chunk-major so that a warp's reads of one chunk are 512 contiguous
// bytes (conflict-free): 0-3 weights (row g k chunk c, row g k chunk 4 + c, row g + 8 likewise), 4-5 x.
__device__ __forceinline__ unsigned gv_chunk(unsigned stage, int j) { return stage + j * 512; }

__device__ __forceinline__ void gv_copy_w(const GvCursor& cur, unsigned stage) {
  gv_cp_w(gv_chunk(stage, 0), cur.r0);
  gv_cp_w(gv_chunk(stage, 1), cur.r0 + 64);
  gv_cp_w(gv_chunk(stage, 2), cur.r1);
  gv_cp_w(gv_chunk(stage, 3), cur.r1 + 64);
}

__device__ __forceinline__ void gv_copy_x(const unsigned char* xrow, int step, unsigned stage) {
  const unsigned char* p = xrow + (long long)step * GV_STEP_K * 2;
  gv_cp_x(gv_chunk(stage, 4), p);
  gv_cp_x(gv_chunk(stage, 5), p + 64);
}

__device__ __forceinline__ uint4 gv_lds(unsigned addr) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(addr));
  return v;
}

// Warps whose step range touches tile t (ranges of per_warp steps from 0): they all add into its workspace.
__device__ __forceinline__ int gv_contributors(int t, int steps_per_tile, int per_warp) {
  const long long first = (long long)t * steps_per_tile / per_warp;
  const long long last = ((long long)(t + 1) * steps_per_tile - 1) / per_warp;
  return (int)(last - first + 1);
}

// A tile's sums for this warp: stored when the warp owns the whole tile, otherwise added into the workspace (no
// fence here; gv_finish fences once, after the warp's last step).
template <bool BF>
__device__ __forceinline__ void gv_flush(const GvArgs& a, int tile, const float (&acc)[4], bool owned, int g,
                                         int c) {
  const int rows[2] = {tile * 16 + g, tile * 16 + g + 8};
  const int cols[2] = {2 * c, 2 * c + 1};
  if (owned) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if (rows[i / 2] < a.n && cols[i % 2] < a.batch)
        gv_store<BF>(a.y, (long long)cols[i % 2] * a.n + rows[i / 2], acc[i]);
    return;
  }
  float* cell = a.ws + (long long)tile * GV_TILE_VALUES;
#pragma unroll
  for (int i = 0; i < 4; ++i)
    if (cols[i % 2] < a.batch) atomicAdd(cell + (i / 2 * 8 + g) * 8 + cols[i % 2], acc[i]);
}

// After the warp's last step: count the warp in for a tile it shared; the last warp to arrive stores the sums and
// leaves the workspace and counter zeroed.
template <bool BF>
__device__ __forceinline__ void gv_finish(const GvArgs& a, int tile, int count, int g, int c, int lane) {
  if (count == 1) return;
  __threadfence();
  __syncwarp();
  unsigned old = 0;
  if (lane == 0) old = atomicAdd(a.counters + tile, 1u);
  old = __shfl_sync(0xffffffffu, old, 0);
  if (old + 1 != (unsigned)count) return;
  __threadfence();  // every other warp's sums are in before this warp reads them
  float* cell = a.ws + (long long)tile * GV_TILE_VALUES;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int row = tile * 16 + g + (i / 2) * 8, col = 2 * c + (i % 2);
    if (col < a.batch) {
      const float v = atomicExch(cell + (i / 2 * 8 + g) * 8 + col, 0.f);
      if (row < a.n) gv_store<BF>(a.y, (long long)col * a.n + row, v);
    }
  }
  if (lane == 0) a.counters[tile] = 0;
}

template <bool BF>
__device__ __forceinline__ void gemv_stream(const GvArgs& a) {
  constexpr int D = KVP_GV_DEPTH;
  constexpr unsigned STAGE = 6 * 512;
  extern __shared__ __align__(16) unsigned char gv_smem[];
  const int lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3, wid = threadIdx.x >> 5;
  const long long warp = (long long)blockIdx.x * GV_WARPS + wid;
  const int steps_per_tile = a.k / GV_STEP_K;
  const long long total = (long long)((a.n + 15) / 16) * steps_per_tile;
  const long long u0 = warp * a.per_warp, u1 = min(total, u0 + a.per_warp);
  kvp::pdl_release();
  if (u0 >= u1) {
    kvp::pdl_wait();
    return;
  }
  const unsigned ring = (unsigned)__cvta_generic_to_shared(gv_smem) + wid * D * STAGE + lane * 16;
  const unsigned char* xrow = a.x + (long long)(g < a.batch ? g : 0) * a.k * 2 + c * 16;

  // the first DEPTH steps of weights before the wait (one group each); their x after it (one more group)
  GvCursor cur;
  cur.u = u0;
  cur.tile = (int)(u0 / steps_per_tile);
  cur.step = (int)(u0 % steps_per_tile);
  gv_seek(a, cur, g, c);
  const int tile0 = cur.tile, step0 = cur.step;
#pragma unroll
  for (int d = 0; d < D; ++d) {
    gv_copy_w(cur, ring + d * STAGE);
    gv_commit();
    gv_advance(a, cur, u1 - 1, steps_per_tile, g, c);
  }
  kvp::pdl_wait();
  {
    long long xu = u0;
    int xs = step0;
#pragma unroll
    for (int d = 0; d < D; ++d) {
      gv_copy_x(xrow, xs, ring + d * STAGE);
      if (xu != u1 - 1) {
        ++xu;
        xs = xs + 1 == steps_per_tile ? 0 : xs + 1;
      }
    }
    gv_commit();
    gv_wait<0>();
  }

  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  int tile = tile0, step = step0;
  bool owned = gv_contributors(tile, steps_per_tile, a.per_warp) == 1;
  for (long long base = u0; base < u1; base += D) {
#pragma unroll
    for (int d = 0; d < D; ++d) {
      gv_wait<D - 1>();  // this stage's group: D - 1 newer ones stay in flight
      const unsigned st = ring + d * STAGE;
      const uint4 w0 = gv_lds(gv_chunk(st, 0)), w1 = gv_lds(gv_chunk(st, 1)), w2 = gv_lds(gv_chunk(st, 2)),
                  w3 = gv_lds(gv_chunk(st, 3)), x0 = gv_lds(gv_chunk(st, 4)), x1 = gv_lds(gv_chunk(st, 5));
      const bool live = base + d < u1;
      if (live) {
        gv_mma<BF>(acc, w0.x, w2.x, w0.y, w2.y, x0.x, x0.y);
        gv_mma<BF>(acc, w0.z, w2.z, w0.w, w2.w, x0.z, x0.w);
        gv_mma<BF>(acc, w1.x, w3.x, w1.y, w3.y, x1.x, x1.y);
        gv_mma<BF>(acc, w1.z, w3.z, w1.w, w3.w, x1.z, x1.w);
      }
      // refill the stage with the step DEPTH ahead (the last one again past the end), after the MMAs have its data
      gv_copy_w(cur, st);
      gv_copy_x(xrow, cur.step, st);
      gv_commit();
      gv_advance(a, cur, u1 - 1, steps_per_tile, g, c);
      if (live && (++step == steps_per_tile || base + d + 1 == u1)) {
        gv_flush<BF>(a, tile, acc, owned, g, c);
        acc[0] = acc[1] = acc[2] = acc[3] = 0.f;
        step = 0;
        ++tile;
        owned = gv_contributors(tile, steps_per_tile, a.per_warp) == 1;
      }
    }
  }
  gv_wait<0>();
  const int t_last = (int)((u1 - 1) / steps_per_tile);
  gv_finish<BF>(a, tile0, gv_contributors(tile0, steps_per_tile, a.per_warp), g, c, lane);
  if (t_last != tile0) gv_finish<BF>(a, t_last, gv_contributors(t_last, steps_per_tile, a.per_warp), g, c, lane);
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
