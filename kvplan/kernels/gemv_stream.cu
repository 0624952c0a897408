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
// shared memory: lane 0 copies a step's weights with one TMA tensor copy (a box of 16 rows x 128 bytes, 128-byte
// swizzle, rows past n zero-filled) completing on the stage's mbarrier, and the lanes copy the step's x (8
// columns x 128 bytes, the same swizzle by hand) with cp.async, one commit group per step; the MMAs read both
// with ldmatrix (conflict-free through the swizzle). A stage is refilled once every lane is done with it
// (__syncwarp), DEPTH - 1 steps stay in flight while one is used. (Loads straight into registers cannot keep a
// ring in flight: ptxas waits for all of a warp's outstanding loads at the first use of any; 16-byte cp.async
// kept it but reached only 67-73% of DRAM bandwidth where TMA copies reach 86%: benchmarks/RESULTS.md, session 17.)
// sm_90 only (TMA, PDL); the plan refuses other GPUs.
//
//   map       a CUtensorMap over w [n, k] (16-bit, k a multiple of 64): dims {k, n}, box {64, 16}, 128-byte swizzle
//   x         [batch, k] (written by the kernel before: read after the wait)
//   y         [batch, n]
//   ws        [tiles * 128] fp32 zeros; counters [tiles] zeros
//   per_warp  steps per warp (ceil(tiles * k / 64 / warps), the host's choice)
//   dynamic shared memory: GV_WARPS x DEPTH x 3 KB + 1 KB (alignment of the swizzled stages)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "kvp_pdl.cuh"
#include "kvp_common.cuh"

#ifndef KVP_GV_DEPTH
#define KVP_GV_DEPTH 4
#endif
#define GV_WARPS 4
#define GV_THREADS (GV_WARPS * 32)
#define GV_STEP_K 64
#define GV_TILE_VALUES 128  // 16 rows x 8 columns

struct alignas(64) GvTmap {
  unsigned long long opaque[16];  // a CUtensorMap, encoded on the host (gemv_stream.py)
};

struct GvArgs {
  const GvTmap* map;
  const unsigned char* x;
  void* y;
  float* ws;
  unsigned* counters;
  int n, k, batch, per_warp;
};

// one box (16 rows x 64 k of W from row `row`, k `k0`) into the swizzled stage at dst, completing on bar
__device__ __forceinline__ void gv_tma(unsigned dst, const GvTmap* map, int k0, int row, unsigned bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
      ::"r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(k0), "r"(row), "r"(bar) : "memory");
#endif
}
__device__ __forceinline__ void gv_ldsm4(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
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

// Where a warp's copies stand: the step (unit) of its range and its tile and k step. The cursor stops at the
// range's last step: a stage refilled past the end copies that step again (from L2) and is never used, so that
// every stage completes once per round (the mbarrier parity and wait_group's count stay the ring's).
struct GvCursor {
  long long u;
  int tile, step;
};

__device__ __forceinline__ void gv_advance(GvCursor& cur, long long last, int steps_per_tile) {
  if (cur.u == last) return;
  ++cur.u;
  if (++cur.step == steps_per_tile) {
    cur.step = 0;
    ++cur.tile;
  }
}

// The step's x: 8 columns x 128 bytes, 16-byte chunk q of column j at chunk q ^ j (conflict-free ldmatrix);
// lane copies chunks 2 lane and 2 lane + 1 (column lane / 4). Columns past the batch copy column 0 (computed,
// never stored).
__device__ __forceinline__ void gv_copy_x(const GvArgs& a, int step, unsigned xs, int lane) {
  const int j = lane >> 2, col = j < a.batch ? j : 0;
  const unsigned char* src = a.x + (long long)col * a.k * 2 + (long long)step * GV_STEP_K * 2;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int q = 2 * (lane & 3) + h;
    gv_cp_x(xs + j * 128 + ((q ^ j) << 4), src + q * 16);
  }
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
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int D = KVP_GV_DEPTH;
  constexpr unsigned WST = 2048, XST = 1024;  // bytes of a stage's weights and x
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
  // this warp's weight stages (1024-byte aligned for the swizzle), then its x stages, then its mbarriers
  const unsigned base_s = ((unsigned)__cvta_generic_to_shared(gv_smem) + 1023u) & ~1023u;
  const unsigned wring = base_s + wid * D * WST;
  const unsigned xring = base_s + GV_WARPS * D * WST + wid * D * XST;
  const unsigned bars = base_s + GV_WARPS * D * (WST + XST) + wid * D * 8;
  if (lane == 0) {
#pragma unroll
    for (int d = 0; d < D; ++d) kvp::mbar_init(bars + 8 * d, 1);
    kvp::mbar_fence_init();
  }
  __syncwarp();

  // the first DEPTH steps of weights before the wait; their x after it (one group)
  GvCursor cur;
  cur.u = u0;
  cur.tile = (int)(u0 / steps_per_tile);
  cur.step = (int)(u0 % steps_per_tile);
  const int tile0 = cur.tile, step0 = cur.step;
#pragma unroll
  for (int d = 0; d < D; ++d) {
    if (lane == 0) {
      kvp::mbar_arrive_tx(bars + 8 * d, WST);
      gv_tma(wring + d * WST, a.map, cur.step * GV_STEP_K, cur.tile * 16, bars + 8 * d);
    }
    gv_advance(cur, u1 - 1, steps_per_tile);
  }
  kvp::pdl_wait();
  {
    GvCursor xc;
    xc.u = u0, xc.tile = tile0, xc.step = step0;
#pragma unroll
    for (int d = 0; d < D; ++d) {
      gv_copy_x(a, xc.step, xring + d * XST, lane);
      gv_advance(xc, u1 - 1, steps_per_tile);
    }
    gv_commit();
    gv_wait<0>();  // the first round's x (the weights complete on the mbarriers)
  }
  // ldmatrix lane addresses: A rows (lane & 15) at chunk 2 kb + (lane >> 4); B column (lane & 7) at chunk
  // 2 kb + (lane >> 3) (two k16 blocks per x4)
  const int arow = lane & 15, ahalf = lane >> 4, bcol = lane & 7, bq = lane >> 3;

  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  int tile = tile0, step = step0;
  bool owned = gv_contributors(tile, steps_per_tile, a.per_warp) == 1;
  unsigned parity = 0;
  for (long long base = u0; base < u1; base += D, parity ^= 1u) {
#pragma unroll
    for (int d = 0; d < D; ++d) {
      const unsigned ws_ = wring + d * WST, xs_ = xring + d * XST;
      kvp::mbar_wait(bars + 8 * d, parity);
      gv_wait<D - 1>();  // this stage's x: D - 1 newer groups stay in flight
      __syncwarp();      // every lane's x copies of the stage are in
      const bool live = base + d < u1;
      if (live) {
        unsigned b[8];
        gv_ldsm4(xs_ + bcol * 128 + (((bq) ^ bcol) << 4), b[0], b[1], b[2], b[3]);
        gv_ldsm4(xs_ + bcol * 128 + (((4 + bq) ^ bcol) << 4), b[4], b[5], b[6], b[7]);
#pragma unroll
        for (int kb = 0; kb < 4; ++kb) {
          unsigned a0, a1, a2, a3;
          gv_ldsm4(ws_ + arow * 128 + (((2 * kb + ahalf) ^ (arow & 7)) << 4), a0, a1, a2, a3);
          gv_mma<BF>(acc, a0, a1, a2, a3, b[2 * kb], b[2 * kb + 1]);
        }
      }
      __syncwarp();  // every lane is done with the stage: refill it with the step DEPTH ahead
      if (lane == 0) {
        kvp::mbar_arrive_tx(bars + 8 * d, WST);
        gv_tma(ws_, a.map, cur.step * GV_STEP_K, cur.tile * 16, bars + 8 * d);
      }
      gv_copy_x(a, cur.step, xs_, lane);
      gv_commit();
      gv_advance(cur, u1 - 1, steps_per_tile);
      if (live && (++step == steps_per_tile || base + d + 1 == u1)) {
        gv_flush<BF>(a, tile, acc, owned, g, c);
        acc[0] = acc[1] = acc[2] = acc[3] = 0.f;
        step = 0;
        ++tile;
        owned = gv_contributors(tile, steps_per_tile, a.per_warp) == 1;
      }
    }
  }
  // the ring's last refills (copies of the last step, never read) land before the CTA may exit
  gv_wait<0>();
  {
    const long long rounds = (u1 - u0 + D - 1) / D;
#pragma unroll
    for (int d = 0; d < D; ++d) kvp::mbar_wait(bars + 8 * d, (unsigned)(rounds & 1));
  }
  const int t_last = (int)((u1 - 1) / steps_per_tile);
  gv_finish<BF>(a, tile0, gv_contributors(tile0, steps_per_tile, a.per_warp), g, c, lane);
  if (t_last != tile0) gv_finish<BF>(a, t_last, gv_contributors(t_last, steps_per_tile, a.per_warp), g, c, lane);
#else
  __trap();  // sm_90 only (the plan refuses other GPUs)
#endif
}

// four CTAs' worth of registers per SM (<= 128 a thread): the grid takes two, the next launch the other two
#define GV_KERNEL(NAME, BF)                                                                                      \
  extern "C" __global__ void __launch_bounds__(GV_THREADS, 4)                                                    \
      NAME(const __grid_constant__ GvTmap map, const unsigned char* x, void* y, float* ws, unsigned* counters,   \
           int n, int k, int batch, int per_warp) {                                                            \
    const GvArgs a = {&map, x, y, ws, counters, n, k, batch, per_warp};                                          \
    gemv_stream<BF>(a);                                                                                          \
  }
GV_KERNEL(kvp_gemv_stream_bf16, true)
GV_KERNEL(kvp_gemv_stream_f16, false)
