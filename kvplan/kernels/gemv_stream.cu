// Weight-streaming GEMV for decode: y[b, row] = sum_k W[row, k] * x[b, k] for 1..8 tokens, 16-bit weights, or
// e4m3 weights and x (kvp_gemv_stream_e4m3: W8A8, y in bf16 times `scale`).
//
// Why a second dense kernel beside skinny_gemm.cu: a decode step is a chain of matmuls of 8-250 MB each, and a
// kernel that ends and a kernel that starts leave the memory system idle for a few microseconds, which is what
// keeps a whole model's weight stream under 85% of read bandwidth with cuBLAS. This kernel is built so that the
// next one's weights are already on their way while the one before drains:
//   - a persistent grid of one CTA per SM (shared memory DEPTH x 9 KB; the plan pads each launch's shared memory
//     so that no SM takes more of its CTAs than it is shaped for, even when the launch before leaves room:
//     gemv_stream.py, RESULTS.md session 45; as the CTAs of the launch before exit, the next one's take their SMs);
//   - programmatic dependent launch: the next grid is released at once, and its producer starts copying the
//     first DEPTH steps of weights before griddepcontrol.wait (weights are constants; only x comes from the
//     kernel before);
//   - every CTA an equal contiguous range of the flattened (64-row tile, k step) space, so no SM is left with a
//     tail; a tile cut between CTAs meets in an fp32 workspace, the last warp to arrive (a counter) writes it and
//     leaves workspace and counter zeroed for the next launch (graph-safe, no memset).
// A step is one 64-row tile x 64 k (8 KB). A producer warp streams the CTA's steps into a ring of DEPTH stages:
// one TMA tensor copy per step (a box of 64 rows x 128 bytes, 128-byte swizzle, rows past n zero-filled) and the
// step's x (8 columns x 128 bytes, the same swizzle by hand, cp.async by its 32 lanes), both completing on the
// stage's full mbarrier; four MMA warps take 16 rows of the box each (ldmatrix, conflict-free through the
// swizzle; mma.m16n8k16 with x as B) and release the stage on its empty mbarrier. Measured before this form
// (benchmarks/RESULTS.md, session 17): loads straight into a per-warp register ring keep one step in flight
// (ptxas waits for all of a warp's outstanding loads at the first use of any); per-warp cp.async or 2 KB TMA
// rings reached 67-81% of DRAM bandwidth on Llama-3.1-8B's gate_up where cuBLAS's 8 KB TMA boxes reach 86%.
// sm_90 only (TMA, PDL); the plan refuses other GPUs.
// e4m3: the mma.m16n8k32 fragments of 8-bit values hold the same bytes where m16n8k16's hold 16-bit ones, so the
// kernel streams an e4m3 row of k values as a 16-bit row of k / 2 (the host passes k / 2 and encodes the map over
// 16-bit units): every copy, swizzle and ldmatrix is the 16-bit kernel's, a step 64 rows x 128 values.
// e4m3 block-scaled (kvp_gemv_stream_e4m3b: DeepSeek-V3's checkpoints, W8A8 as vLLM runs them): W[r][k] =
// q[r][k] sw[r / 128][k / 128] and x[b][k] = qx[b][k] sx[k / 128][b] (x quantised per token per 128 values before:
// fp8_quant.cu's group kernel). A step is one 128-value group and a 64-row tile lies in one 128-row block, so each
// step's MMAs go to an accumulator of their own, added into the sums times sw sx of that group: fp32 scaling, as
// cuBLAS's block-scaled GEMM. Not in the row-owned form (the plan refuses it).
//
//   map       a CUtensorMap over w [n, k] (16-bit, k a multiple of 64): dims {k, n}, box {64, 64}, 128-byte swizzle
//   x         [batch, k] (written by the kernel before: read after the wait)
//   y         [batch, n]
//   ws        [CTAs * 4 * MT * 128] fp32 zeros; counters [CTAs * 4 * MT] zeros (a cell per 16-row slice of a shared
//             tile, by the tile's first CTA: gv_slot)
//   per_cta   steps per CTA (ceil(ceil(n / 64) * k / 64 / CTAs), the host's choice)
//   dynamic shared memory: DEPTH x (8 KB x MT + 1 KB + 16) + 1 KB (alignment of the swizzled stages) + 4 bytes a
//             thread (gv_release)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "kvp_pdl.cuh"
#include "kvp_common.cuh"

#ifndef KVP_GV_DEPTH
#define KVP_GV_DEPTH 8
#endif
#define GV_WARPS 4  // MMA warps; one more copies
#define GV_THREADS ((GV_WARPS + 1) * 32)
#define GV_STEP_K 64
#ifndef KVP_GV_MT
#define KVP_GV_MT 1  // 16-row MMA tiles per warp: a step is 64 x MT rows
#endif
#define GV_TILE_ROWS (64 * KVP_GV_MT)
#define GV_TILE_VALUES 128  // a 16-row cell x 8 columns
#define GV_E4M3 2  // the kernels' element kinds: 1 bf16, 0 f16, GV_E4M3 e4m3 weights and x (bf16 y)
#define GV_E4M3B 3  // e4m3 with block scales (sw, sx)
// The weights' copies carry an L2 evict-first policy (each weight is read once a step; H200, whole-model stream
// +1.5-2.5 points, benchmarks/RESULTS.md session 19); KVP_GV_EVICT_FIRST=0 leaves the default policy, to compare.
#ifndef KVP_GV_EVICT_FIRST
#define KVP_GV_EVICT_FIRST 1
#endif
// KVP_GV_TRACE=1 (benchmarks/gemv_trace.py only): every CTA writes GV_STAMPS globaltimer readings to
// trace[GV_STAMPS cta ..]: 0 entry, 1 the producer's wait returned (x may be read), 2 the MMA warps' wait returned
// (warp 0), 3 the last MMA warp's end (atomicMax), 4 warp 0's first stage full (x landed), 5 the last MMA warp's last
// step done, before the split tiles' counting (atomicMax), 6 the producer's last copy issued; so that a chain's
// kernel boundaries can be taken apart. An extra kernel argument; off by default.
#ifndef KVP_GV_TRACE
#define KVP_GV_TRACE 0
#endif
// KVP_GV_ROTATE=1 (opt-in, plan(rotate=True)): a CTA runs its range from the start of its last tile, then wraps to
// its first step. The last tile, which the CTA shares as its first contributor, is published early (sums added into
// the workspace, counted in), while the ring keeps streaming; the first tile, which it shares as its last
// contributor, comes last and is finished by this CTA alone (wait for the others' count, one read of their sums,
// store): one round trip at the kernel's end instead of fence, count and read in a row (trace: 1.5-1.8 us a launch
// on Llama-3.1-8B, benchmarks/RESULTS.md session 21).
#ifndef KVP_GV_ROTATE
#define KVP_GV_ROTATE 0
#endif
// KVP_GV_OWN=1 (opt-in, plan(own=True)): rows instead of steps are shared out. A CTA owns per_cta whole 16-row
// slices (the host picks the fewest CTAs that hold every slice with that many each, so none has a shorter share)
// and runs them in groups of four, one slice per MMA warp, along all of k: no tile is cut between CTAs, so no
// workspace, no counting and no fence at the end (trace, Llama-3.1-8B: the counting of cut tiles costs 1.0-1.8 us a
// launch, benchmarks/RESULTS.md session 21). A step is one TMA box (a 3-D view of W: 16 rows x 64 k per slice of
// the group, x q k steps): a group of one or two slices takes four / two k steps at once (one per warp) to keep
// 8 KB a step in flight, and its warps add their sums in shared memory at the group's end. Each CTA starts its
// slices' k at its own offset, wrapping round. The producer does no division a step: a first form with one
// 16-row box per slice and the k step divided out per box reached a third of read bandwidth (H200, session 22).
#ifndef KVP_GV_OWN
#define KVP_GV_OWN 0
#endif
// KVP_GV_SPLIT3=1 (with KVP_GV_OWN, GemvStreamConfig.split3): a group of three slices runs as two then one
#ifndef KVP_GV_SPLIT3
#define KVP_GV_SPLIT3 0
#endif
// KVP_GV_GATHER=1 (plan(gather=...)): an MoE layer's experts at one token as one GEMV. W is [experts, rows, k] (a 3-D
// tensor map {k, rows, expert}) and `ids` [pairs] the token's experts (the router's output: read after the wait, so
// no weights go out before it). g_tiles > 0 ("rows", the gate/up stage): the virtual W is the pairs' matrices stacked,
// [pairs x rows, k], row tile t of pair t / g_tiles, y [pairs x rows]. g_ksteps > 0 ("k", the down stage): the
// virtual W is [rows, pairs x k], k step s of pair s / g_ksteps, x the pairs' activations laid end to end, each
// step's sums times the pair's routing weight wts[j] before they are added, y [rows] the routed experts' sum. One
// launch a stage instead of the pair-slot kernel's CTA per (pair, 32 rows) and its combine launch. In order only.
#ifndef KVP_GV_GATHER
#define KVP_GV_GATHER 0
#endif
#if KVP_GV_GATHER
#define GV_GATHER_ARG , const int *ids, const float *wts, int g_tiles, int g_ksteps, long long sw_stride
#define GV_GATHER_VAL ids, wts, g_tiles, g_ksteps, sw_stride
#else
#define GV_GATHER_ARG
#define GV_GATHER_VAL nullptr, nullptr, 0, 0, 0
#endif
#if KVP_GV_TRACE
#define GV_TRACE_ARG , unsigned long long* trace
#define GV_TRACE_VAL , trace
#define GV_STAMPS 8
#define GV_MARK(slot) (a.trace[GV_STAMPS * blockIdx.x + (slot)] = kvp::globaltimer())
#define GV_MARK_MAX(slot) atomicMax(a.trace + GV_STAMPS * blockIdx.x + (slot), kvp::globaltimer())
#else
#define GV_TRACE_ARG
#define GV_TRACE_VAL
#define GV_MARK(slot) ((void)0)
#define GV_MARK_MAX(slot) ((void)0)
#endif

struct alignas(64) GvTmap {
  unsigned long long opaque[16];  // a CUtensorMap, encoded on the host (gemv_stream.py)
};

struct GvArgs {
  const GvTmap* map;
  const unsigned char* x;
  void* y;
  float* ws;
  unsigned* counters;
  int n, k, batch, per_cta;
  float scale;  // e4m3: s_x s_w (1 otherwise)
  const float* sw;  // e4m3b: [ceil(n / 128)][k / 64] weight scales (k in 16-bit units); null otherwise
  const float* sx;  // e4m3b: x's scales, group g of column b at sx[g * sx_stride + b]
  int sx_stride;
  // KVP_GV_GATHER only: the pairs' experts [pairs] and routing weights [pairs] ("k" stage); 64-row tiles a pair
  // ("rows" stage) or k steps a pair ("k" stage), the other 0; e4m3b: floats between experts' block scales
  const int* ids;
  const float* wts;
  int g_tiles, g_ksteps;
  long long sw_stride;
#if KVP_GV_TRACE
  unsigned long long* trace;
#endif
};

// one box (64 rows x 64 k of W from row `row`, k `k0`) into the swizzled stage at dst, completing on bar
__device__ __forceinline__ void gv_tma(unsigned dst, const GvTmap* map, int k0, int row, unsigned bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
      ::"r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(k0), "r"(row), "r"(bar) : "memory");
#endif
}
// the same copy marked with an L2 cache policy (createpolicy)
__device__ __forceinline__ void gv_tma_hint(unsigned dst, const GvTmap* map, int k0, int row, unsigned bar,
                                            unsigned long long policy) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1, {%2, "
      "%3}], [%4], %5;\n"
      ::"r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(k0), "r"(row), "r"(bar), "l"(policy)
      : "memory");
#endif
}
__device__ __forceinline__ unsigned long long gv_evict_first_policy() {
  unsigned long long p = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(p));
#endif
  return p;
}
// a step's weights: the box, with the evict-first policy unless KVP_GV_EVICT_FIRST=0
__device__ __forceinline__ void gv_weights(unsigned dst, const GvTmap* map, int k0, int row, unsigned bar,
                                           unsigned long long policy) {
#if KVP_GV_EVICT_FIRST
  gv_tma_hint(dst, map, k0, row, bar, policy);
#else
  gv_tma(dst, map, k0, row, bar);
#endif
}
// The token's pairs in the lanes of a warp (gather form): lane j holds pair j's expert and routing weight, read once
// after the wait through L2 (the router wrote them); a step's pair comes by shuffle (a load a step held the producer
// to L2's latency: H200, session 43, GLM-4.7-Flash's experts 36 -> 41 us a layer).
struct GvPairs {
  int id;
  float wt;
};
#if KVP_GV_GATHER
__device__ __forceinline__ GvPairs gv_pairs(const GvArgs& a, int lane) {
  const int pairs = a.g_tiles ? a.n / (a.g_tiles * GV_TILE_ROWS) : a.k / (a.g_ksteps * GV_STEP_K);
  GvPairs p = {-1, 0.f};
  if (lane < pairs) {
    p.id = __ldcg(a.ids + lane);
    if (a.g_ksteps) p.wt = __ldcg(a.wts + lane);
  }
  return p;
}
// Where a unit (tile, k step) of the virtual W lies: pair j, expert e (an id outside the map's experts reads zeros:
// the copy's out-of-bounds fill), its routing weight, the row of the expert's matrix its tile starts at, its k step
// in the expert's matrix, and that matrix's k steps. Every lane of the warp calls it (the shuffles).
struct GvAt {
  int j, e, row, ks, ksteps;
  float wt;
};
__device__ __forceinline__ GvAt gv_at(const GvArgs& a, int tile, int step, int steps_per_tile, const GvPairs& p) {
  GvAt at;
  if (a.g_tiles) {
    at.j = tile / a.g_tiles;
    at.row = (tile - at.j * a.g_tiles) * GV_TILE_ROWS;
    at.ks = step;
    at.ksteps = steps_per_tile;
  } else {
    at.j = step / a.g_ksteps;
    at.row = tile * GV_TILE_ROWS;
    at.ks = step - at.j * a.g_ksteps;
    at.ksteps = a.g_ksteps;
  }
  at.e = __shfl_sync(0xffffffffu, p.id, at.j);
  at.wt = __shfl_sync(0xffffffffu, p.wt, at.j);
  return at;
}
// the unit's box through the 3-D map {k, row, expert}
__device__ __forceinline__ void gv_gather_weights(unsigned dst, const GvArgs& a, const GvAt& at, unsigned bar,
                                                  unsigned long long policy) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1, {%2, "
      "%3, %4}], [%5], %6;\n"
      ::"r"(dst), "l"(reinterpret_cast<unsigned long long>(a.map)), "r"(at.ks * GV_STEP_K), "r"(at.row), "r"(at.e),
      "r"(bar), "l"(policy)
      : "memory");
#endif
}
#endif
// The producer's copy of stage d's weights at the cursor, issued by lane 0 (the gather form: every lane finds the
// step's expert by shuffle first)
#if KVP_GV_GATHER
#define GV_ISSUE(d)                                                                            \
  do {                                                                                         \
    const GvAt at_ = gv_at(a, cur.tile, cur.step, steps_per_tile, pairs);                      \
    if (lane == 0) {                                                                           \
      kvp::mbar_arrive_tx(full + 8 * (d), WST);                                                \
      gv_gather_weights(wring + (d) * WST, a, at_, full + 8 * (d), policy);                    \
    }                                                                                          \
  } while (0)
#else
#define GV_ISSUE(d)                                                                                               \
  do {                                                                                                            \
    if (lane == 0) {                                                                                              \
      kvp::mbar_arrive_tx(full + 8 * (d), WST);                                                                   \
      gv_weights(wring + (d) * WST, a.map, cur.step * GV_STEP_K, cur.tile * GV_TILE_ROWS, full + 8 * (d), policy); \
    }                                                                                                             \
  } while (0)
#endif
__device__ __forceinline__ void gv_ldsm4(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
__device__ __forceinline__ void gv_cp_x(unsigned dst, const unsigned char* src) {  // x: every warp reads it, L1 too
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}
// Release a stage once this thread's ldmatrix results of it are in registers. An mbarrier arrive does not wait for
// the thread's outstanding ldmatrix loads, and ptxas scheduled the e4m3 kernel's arrive above the conversions that
// first use them (SASS: no wait on their scoreboards), so the stage could be refilled before it was read: at batch
// 1 x's cp.async refills hit L1 and landed first (wrong sums, H200, session 36). A store of a value made from
// one register of every ldmatrix issues only once they have landed, and the arrive's release keeps it after that
// store; `sink` is the thread's own 4 bytes.
// KVP_GV_RELEASE_STORE=0 drops the store (benchmarks only: what the wait costs; racy).
#ifndef KVP_GV_RELEASE_STORE
#define KVP_GV_RELEASE_STORE 1
#endif
__device__ __forceinline__ void gv_release(unsigned bar, unsigned sink, unsigned dep) {
  if (KVP_GV_RELEASE_STORE) asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(sink), "r"(dep) : "memory");
  kvp::mbar_arrive(bar);
}
// the mbarrier counts one arrival once every cp.async this thread issued before has landed
__device__ __forceinline__ void gv_cp_arrive(unsigned bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}

template <int BF>
__device__ __forceinline__ void gv_mma(float (&d)[4], unsigned a0, unsigned a1, unsigned a2, unsigned a3,
                                       unsigned b0, unsigned b1) {
  if (BF >= GV_E4M3) {  // the same fragments' bytes: 32 e4m3 values where 16-bit types have 16
    asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else if (BF) {
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

template <int BF>
__device__ __forceinline__ void gv_store(const GvArgs& a, long long i, float v) {
  if (BF >= GV_E4M3) {  // W8A8: the sums times both scales, in bf16 (e4m3b: scaled step by step, scale 1)
    reinterpret_cast<__nv_bfloat16*>(a.y)[i] = __float2bfloat16(v * a.scale);
  } else if (BF) {
    reinterpret_cast<__nv_bfloat16*>(a.y)[i] = __float2bfloat16(v);
  } else {
    reinterpret_cast<__half*>(a.y)[i] = __float2half(v);
  }
}

// Where the producer's copies stand: the step (unit) of the CTA's range and its tile and k step.
struct GvCursor {
  int tile, step;
};

__device__ __forceinline__ void gv_advance(GvCursor& cur, int steps_per_tile) {
  if (++cur.step == steps_per_tile) {
    cur.step = 0;
    ++cur.tile;
  }
}

// The order a CTA runs its range in: from `start`; after `wrap` units (0: never) it continues at `again` (rotated:
// the last tile's units first, then the range from its first step; KVP_GV_ROTATE).
struct GvOrder {
  GvCursor start, again;
  long long wrap;
};

// the cursor after unit i (0-based) of the order
__device__ __forceinline__ void gv_next(GvCursor& cur, long long i, const GvOrder& o, int steps_per_tile) {
  if (KVP_GV_ROTATE && o.wrap && i + 1 == o.wrap)
    cur = o.again;
  else
    gv_advance(cur, steps_per_tile);
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

#if KVP_GV_OWN
// x's k step `step`, or zeros for a step past k (a row-owned group's last step may reach past k: gv_group), through
// the same cp.async as x (a source size of 0 writes 16 zero bytes), so that the stage's arrive covers it alike
__device__ __forceinline__ void gv_copy_x_or_zero(const GvArgs& a, int step, int steps_per_slice, unsigned xs,
                                                  int lane) {
  if (step < steps_per_slice) {
    gv_copy_x(a, step, xs, lane);
    return;
  }
  const int j = lane >> 2;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int q = 2 * (lane & 3) + h;
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(xs + j * 128 + ((q ^ j) << 4)),
                 "l"(a.x), "r"(0) : "memory");
  }
}
#endif

// CTAs whose step range touches 64-row tile t (ranges of per_cta steps from 0): they all add into its cells.
__device__ __forceinline__ int gv_contributors(int t, int steps_per_tile, int per_cta) {
  const long long first = (long long)t * steps_per_tile / per_cta;
  const long long last = ((long long)(t + 1) * steps_per_tile - 1) / per_cta;
  return (int)(last - first + 1);
}

// The workspace cell of a shared tile's 16-row cell (wid, h): by the first CTA that touches the tile. That CTA's
// range ends inside the tile (another one touches it too), so no other shared tile has the same first CTA: the
// workspace is one tile's cells per CTA whatever n is (a few hundred KB, not a buffer the size of the output).
__device__ __forceinline__ int gv_slot(int t, int steps_per_tile, int per_cta, int wid, int h) {
  const int first = (int)((long long)t * steps_per_tile / per_cta);
  return (first * GV_WARPS + wid) * KVP_GV_MT + h;
}

// A tile's sums for this warp: stored when the warp owns the whole tile, otherwise added into the workspace (no
// fence here; gv_finish fences once, after the warp's last step).
template <int BF>
__device__ __forceinline__ void gv_flush(const GvArgs& a, int tile, int slot, const float (&acc)[4], bool owned, int g,
                                         int c) {
  const int rows[2] = {tile * 16 + g, tile * 16 + g + 8};
  const int cols[2] = {2 * c, 2 * c + 1};
  if (owned) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if (rows[i / 2] < a.n && cols[i % 2] < a.batch)
        gv_store<BF>(a, (long long)cols[i % 2] * a.n + rows[i / 2], acc[i]);
    return;
  }
  float* cell = a.ws + (long long)slot * GV_TILE_VALUES;
#pragma unroll
  for (int i = 0; i < 4; ++i)
    if (cols[i % 2] < a.batch) atomicAdd(cell + (i / 2 * 8 + g) * 8 + cols[i % 2], acc[i]);
}

// The CTA whose share touches a tile last (the one that finishes it when the order is rotated).
__device__ __forceinline__ int gv_last_cta(int t, int steps_per_tile, int per_cta) {
  return (int)(((long long)(t + 1) * steps_per_tile - 1) / per_cta);
}

#if KVP_GV_ROTATE
// A shared tile's cell at the end of this warp's part of it (rotated order): the tile's last CTA waits until every
// other contributor has counted in, then adds their sums to its own and stores, leaving cell and counter zeroed; any
// other contributor adds its sums into the cell and counts in.
template <int BF>
__device__ __forceinline__ void gv_share(const GvArgs& a, int cell, int slot, const float (&acc)[4], bool last,
                                         unsigned others, int g, int c, int lane) {
  unsigned* counter = a.counters + slot;
  if (!last) {
    gv_flush<BF>(a, cell, slot, acc, false, g, c);
    __threadfence();
    __syncwarp();
    if (lane == 0) atomicAdd(counter, 1u);
    return;
  }
  if (lane == 0) {
    unsigned seen;
    do {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(seen) : "l"(counter) : "memory");
    } while (seen < others);
  }
  __syncwarp();
  __threadfence();
  float* ws = a.ws + (long long)slot * GV_TILE_VALUES;
  const int rows[2] = {cell * 16 + g, cell * 16 + g + 8};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int row = rows[i / 2], col = 2 * c + (i % 2);
    if (col < a.batch) {
      const float v = atomicExch(ws + (i / 2 * 8 + g) * 8 + col, 0.f) + acc[i];
      if (row < a.n) gv_store<BF>(a, (long long)col * a.n + row, v);
    }
  }
  if (lane == 0) *counter = 0;  // the next launch counts after this grid has ended (griddepcontrol.wait)
}
#endif

// The last arriving warp of a shared cell: store its sums, leave the workspace zeroed (the counter: the caller).
template <int BF>
__device__ __forceinline__ void gv_drain(const GvArgs& a, int tile, int slot, int g, int c) {
  float* cell = a.ws + (long long)slot * GV_TILE_VALUES;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int row = tile * 16 + g + (i / 2) * 8, col = 2 * c + (i % 2);
    if (col < a.batch) {
      const float v = atomicExch(cell + (i / 2 * 8 + g) * 8 + col, 0.f);
      if (row < a.n) gv_store<BF>(a, (long long)col * a.n + row, v);
    }
  }
}

// After the warp's last step: count the warp in for the tiles it shared, both ends of its range at once (count1 is
// 1 when the range has one tile): one fence, lane 0 counts the first tile and lane 1 the last in one atomic
// instruction, so the two round trips overlap (whole-model stream +1.5 points against one tile after the other,
// session 19). The last warp to arrive at a cell stores its sums and leaves the workspace and counter zeroed.
template <int BF>
__device__ __forceinline__ void gv_finish(const GvArgs& a, int tile0, int slot0, int count0, int tile1, int slot1,
                                          int count1, int g, int c, int lane) {
  if (count0 == 1 && count1 == 1) return;
  __threadfence();
  __syncwarp();
  unsigned old = 0;
  if ((lane == 0 && count0 > 1) || (lane == 1 && count1 > 1))
    old = atomicAdd(a.counters + (lane ? slot1 : slot0), 1u);
  const unsigned old0 = __shfl_sync(0xffffffffu, old, 0), old1 = __shfl_sync(0xffffffffu, old, 1);
  const bool last0 = count0 > 1 && old0 + 1 == (unsigned)count0, last1 = count1 > 1 && old1 + 1 == (unsigned)count1;
  if (!last0 && !last1) return;
  __threadfence();
  if (last0) gv_drain<BF>(a, tile0, slot0, g, c);  // every other warp's sums are in (the fence above)
  if (last1) gv_drain<BF>(a, tile1, slot1, g, c);
  if ((lane == 0 && last0) || (lane == 1 && last1)) a.counters[lane ? slot1 : slot0] = 0;
}

template <int BF>
__device__ __forceinline__ void gemv_stream(const GvArgs& a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int D = KVP_GV_DEPTH;
  constexpr unsigned WST = GV_TILE_ROWS * 128, XST = 1024;  // bytes of a stage's weights and x
  extern __shared__ __align__(16) unsigned char gv_smem[];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  const int steps_per_tile = a.k / GV_STEP_K;
  const long long total = (long long)((a.n + GV_TILE_ROWS - 1) / GV_TILE_ROWS) * steps_per_tile;
  const long long u0 = (long long)blockIdx.x * a.per_cta, u1 = min(total, u0 + a.per_cta);
  if (KVP_GV_TRACE && threadIdx.x == 0) GV_MARK(0);
  kvp::pdl_release();
  if (u0 >= u1) {
    kvp::pdl_wait();
    if (KVP_GV_TRACE && threadIdx.x == 0) GV_MARK(1);
    return;
  }
  // weight stages (1024-byte aligned for the swizzle), x stages, full and empty mbarriers
  const unsigned base_s = ((unsigned)__cvta_generic_to_shared(gv_smem) + 1023u) & ~1023u;
  const unsigned wring = base_s, xring = base_s + D * WST, full = xring + D * XST, empty = full + D * 8;
  const unsigned sink = empty + D * 8 + 4 * threadIdx.x;  // gv_release
  if (threadIdx.x == 0) {
#pragma unroll
    for (int d = 0; d < D; ++d) {
      kvp::mbar_init(full + 8 * d, 1 + 32);  // the TMA's transaction arrival + 32 lanes' x copies
      kvp::mbar_init(empty + 8 * d, GV_WARPS * 32);  // every MMA lane releases a stage (below)
    }
    kvp::mbar_fence_init();
  }
  __syncthreads();
  GvCursor cur;
  cur.tile = (int)(u0 / steps_per_tile);
  cur.step = (int)(u0 % steps_per_tile);
  const long long steps = u1 - u0;
  GvOrder order = {cur, cur, 0};
#if KVP_GV_ROTATE
  if ((u1 - 1) / steps_per_tile != cur.tile) {  // the last tile's units, then the range from its first step
    order.start.tile = (int)((u1 - 1) / steps_per_tile);
    order.start.step = 0;
    order.wrap = u1 - (long long)order.start.tile * steps_per_tile;
    cur = order.start;
  }
#endif

  if (wid == GV_WARPS) {  // the producer
    const GvCursor first = cur;
    const int pre = (int)min((long long)D, steps);
    const unsigned long long policy = gv_evict_first_policy();
    GvPairs pairs = {0, 0.f};
#if KVP_GV_GATHER
    kvp::pdl_wait();  // which experts: the router's output
    pairs = gv_pairs(a, lane);
#endif
    for (int d = 0; d < pre; ++d) {  // weights before the wait (but in the gather form)
      GV_ISSUE(d);
      gv_next(cur, d, order, steps_per_tile);
    }
    if (!KVP_GV_GATHER) kvp::pdl_wait();
    if (KVP_GV_TRACE && lane == 0) GV_MARK(1);
    GvCursor xc = first;
    for (int d = 0; d < pre; ++d) {
      gv_copy_x(a, xc.step, xring + d * XST, lane);
      gv_cp_arrive(full + 8 * d);
      gv_next(xc, d, order, steps_per_tile);
    }
    for (long long i = D; i < steps; ++i) {
      const int d = (int)(i % D);
      kvp::mbar_wait(empty + 8 * d, (unsigned)((i / D - 1) & 1));  // the MMA warps are done with its last use
      GV_ISSUE(d);
      gv_copy_x(a, cur.step, xring + d * XST, lane);
      gv_cp_arrive(full + 8 * d);
      gv_next(cur, i, order, steps_per_tile);
    }
    if (KVP_GV_TRACE && lane == 0) GV_MARK(6);
    return;
  }

  // an MMA warp: MT 16-row cells of every box, cell wid * MT + h of the tile (global cell tile * 4 MT + ...)
  constexpr int MT = KVP_GV_MT;
  kvp::pdl_wait();
  if (KVP_GV_TRACE && threadIdx.x == 0) GV_MARK(2);
#if KVP_GV_GATHER
  const GvPairs pairs = gv_pairs(a, lane);
#endif
  const int g = lane >> 2, c = lane & 3;
  const int arow = 16 * MT * wid + (lane & 15), ahalf = lane >> 4, bcol = lane & 7, bq = lane >> 3;
  const unsigned a_off = arow * 128, a_sw = arow & 7;  // + 2 KB per h: the swizzle repeats every 8 rows
  float acc[MT][4];
#pragma unroll
  for (int h = 0; h < MT; ++h) acc[h][0] = acc[h][1] = acc[h][2] = acc[h][3] = 0.f;
  const int tile0 = KVP_GV_ROTATE ? (int)(u0 / steps_per_tile) : cur.tile;
  int tile = cur.tile, step = cur.step;
  bool owned = gv_contributors(tile, steps_per_tile, a.per_cta) == 1;
  // e4m3b: x's scales of columns 2c and 2c + 1 (column 0's for those past the batch: computed, never stored)
  const int sx_col0 = 2 * c < a.batch ? 2 * c : 0, sx_col1 = 2 * c + 1 < a.batch ? 2 * c + 1 : 0;
  for (long long i = 0; i < steps; ++i) {
    const int d = (int)(i % D);
    float sw = 0.f, sx0 = 0.f, sx1 = 0.f, wj = 1.f;
#if KVP_GV_GATHER
    const GvAt at = gv_at(a, tile, step, steps_per_tile, pairs);
    if (a.g_ksteps) wj = at.wt;
    if (BF == GV_E4M3B) sw = __ldg(a.sw + at.e * a.sw_stride + (long long)(at.row >> 7) * at.ksteps + at.ks);
#else
    if (BF == GV_E4M3B) sw = __ldg(a.sw + (long long)((tile * GV_TILE_ROWS) >> 7) * steps_per_tile + step);
#endif
    if (BF == GV_E4M3B) {  // the step's scales, loaded before the wait for its stage
      sx0 = __ldg(a.sx + (long long)step * a.sx_stride + sx_col0);
      sx1 = __ldg(a.sx + (long long)step * a.sx_stride + sx_col1);
    }
    kvp::mbar_wait(full + 8 * d, (unsigned)((i / D) & 1));
    if (KVP_GV_TRACE && i == 0 && threadIdx.x == 0) GV_MARK(4);
    const unsigned ws_ = wring + d * WST, xs_ = xring + d * XST;
    unsigned b[8];
    gv_ldsm4(xs_ + bcol * 128 + ((bq ^ bcol) << 4), b[0], b[1], b[2], b[3]);
    gv_ldsm4(xs_ + bcol * 128 + (((4 + bq) ^ bcol) << 4), b[4], b[5], b[6], b[7]);
    unsigned dep = b[0] ^ b[4];  // a register of every ldmatrix of the stage (gv_release)
#pragma unroll
    for (int h = 0; h < MT; ++h) {
      constexpr bool PART = BF == GV_E4M3B || KVP_GV_GATHER;  // the step scaled before it is added
      float part[4] = {0.f, 0.f, 0.f, 0.f};  // e4m3b: this step's group alone
#pragma unroll
      for (int kb = 0; kb < 4; ++kb) {
        unsigned a0, a1, a2, a3;
        gv_ldsm4(ws_ + a_off + h * 2048 + (((2 * kb + ahalf) ^ a_sw) << 4), a0, a1, a2, a3);
        dep ^= a0;
        gv_mma<BF>(PART ? part : acc[h], a0, a1, a2, a3, b[2 * kb], b[2 * kb + 1]);
      }
      if (PART) {
        const float s0 = BF == GV_E4M3B ? sw * sx0 * wj : wj, s1 = BF == GV_E4M3B ? sw * sx1 * wj : wj;
        acc[h][0] = fmaf(part[0], s0, acc[h][0]);
        acc[h][1] = fmaf(part[1], s1, acc[h][1]);
        acc[h][2] = fmaf(part[2], s0, acc[h][2]);
        acc[h][3] = fmaf(part[3], s1, acc[h][3]);
      }
    }
    // every lane arrives, after its own ldmatrix of the stage: lane 0 arriving after __syncwarp is as correct, as
    // fast, and racecheck reports its x refills as WAR hazards (it does not follow the order through the warp
    // barrier; H200, benchmarks/RESULTS.md session 19)
    gv_release(empty + 8 * d, sink, dep);
    const bool wraps = KVP_GV_ROTATE && order.wrap && i + 1 == order.wrap;
    if (++step == steps_per_tile || i + 1 == steps || wraps) {
#pragma unroll
      for (int h = 0; h < MT; ++h) {
        const int cell = (tile * 4 + wid) * MT + h, slot = gv_slot(tile, steps_per_tile, a.per_cta, wid, h);
#if KVP_GV_ROTATE
        if (owned)
          gv_flush<BF>(a, cell, slot, acc[h], true, g, c);
        else
          gv_share<BF>(a, cell, slot, acc[h], (int)blockIdx.x == gv_last_cta(tile, steps_per_tile, a.per_cta),
                       (unsigned)gv_contributors(tile, steps_per_tile, a.per_cta) - 1, g, c, lane);
#else
        gv_flush<BF>(a, cell, slot, acc[h], owned, g, c);
#endif
        acc[h][0] = acc[h][1] = acc[h][2] = acc[h][3] = 0.f;
      }
      if (wraps) {
        tile = order.again.tile;
        step = order.again.step;
      } else {
        step = 0;
        ++tile;
      }
      owned = gv_contributors(tile, steps_per_tile, a.per_cta) == 1;
    }
  }
  if (KVP_GV_TRACE && lane == 0) GV_MARK_MAX(5);
#if !KVP_GV_ROTATE
  const int t_last = (int)((u1 - 1) / steps_per_tile);
#pragma unroll
  for (int h = 0; h < MT; ++h) {
    gv_finish<BF>(a, (tile0 * 4 + wid) * MT + h, gv_slot(tile0, steps_per_tile, a.per_cta, wid, h),
                  gv_contributors(tile0, steps_per_tile, a.per_cta), (t_last * 4 + wid) * MT + h,
                  gv_slot(t_last, steps_per_tile, a.per_cta, wid, h),
                  t_last != tile0 ? gv_contributors(t_last, steps_per_tile, a.per_cta) : 1, g, c, lane);
  }
#endif
#if KVP_GV_TRACE
  if (lane == 0) GV_MARK_MAX(3);
#endif
#else
  __trap();  // sm_90 only (the plan refuses other GPUs)
#endif
}

#if KVP_GV_OWN
// the same copy through a 3-D view of W (gemv_stream.py _own_maps: {64 k, row, k step}), coordinates k step `ks`
__device__ __forceinline__ void gv_tma3(unsigned dst, const GvTmap* map, int row, int ks, unsigned bar,
                                        unsigned long long policy) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#if KVP_GV_EVICT_FIRST
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1, {0, "
      "%2, %3}], [%4], %5;\n"
      ::"r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(row), "r"(ks), "r"(bar), "l"(policy)
      : "memory");
#else
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {0, %2, %3}], "
      "[%4];\n"
      ::"r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(row), "r"(ks), "r"(bar) : "memory");
#endif
#endif
}

// A group of the row-owned form: h slices from `first`, q = 4 / h k steps a step for h <= 2 (else 1): one box of
// 16 h rows x q k steps (map h - 1), in shared memory k step by k step, so 2 KB slab j is slice j % h at k step
// j / h of the step. The CTA runs a group's k from its own offset on, wrapping round. Where q does not divide the
// slice's k steps (gpt-oss's k of 2,880: 45 steps), the last step reaches past k: the copy engine fills the box's
// steps past the view with zeros and x's are zeros too (gv_copy_x_or_zero), so they add nothing.
struct GvGroup {
  int first, h, q, steps, k0;
};

__device__ __forceinline__ GvGroup gv_group(int s, int s1, int steps_per_slice) {
  GvGroup g;
  g.first = s;
  g.h = min(4, s1 - s);
#if KVP_GV_SPLIT3
  if (g.h == 3) g.h = 2;  // three slices as two then one: 8 KB a step, every warp busy (not 6 KB, one warp idle)
#endif
  g.q = g.h <= 2 ? 4 / g.h : 1;
  g.steps = (steps_per_slice + g.q - 1) / g.q;
  g.k0 = (int)((unsigned)blockIdx.x * (unsigned)g.steps / gridDim.x) * g.q;  // the first step's k step
  return g;
}

// the k step after `ks` in a group (q at a time, wrapping round at the slice's end)
__device__ __forceinline__ int gv_own_next(int ks, const GvGroup& g, int steps_per_slice) {
  ks += g.q;
  return ks >= steps_per_slice ? 0 : ks;
}

template <int BF>
__device__ __forceinline__ void gemv_own(const GvArgs& a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int D = KVP_GV_DEPTH;
  constexpr unsigned WST = 8192, XST = 4096;  // a stage's weights (up to four 2 KB slabs) and x (four k steps)
  extern __shared__ __align__(16) unsigned char gv_smem[];
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  const int steps_per_slice = a.k / GV_STEP_K, slices = (a.n + 15) / 16;
  const int s0 = (int)blockIdx.x * a.per_cta, s1 = min(slices, s0 + a.per_cta);
  if (KVP_GV_TRACE && threadIdx.x == 0) GV_MARK(0);
  kvp::pdl_release();
  if (s0 >= s1) {
    kvp::pdl_wait();
    return;
  }
  const unsigned base_s = ((unsigned)__cvta_generic_to_shared(gv_smem) + 1023u) & ~1023u;
  const unsigned wring = base_s, xring = base_s + D * WST, full = xring + D * XST, empty = full + D * 8;
  float* red = reinterpret_cast<float*>(gv_smem + (empty + D * 8 - (unsigned)__cvta_generic_to_shared(gv_smem)));
  const unsigned sink = empty + D * 8 + 2 * GV_WARPS * 128 * 4 + 4 * threadIdx.x;  // after red (gv_release)
  if (threadIdx.x == 0) {
#pragma unroll
    for (int d = 0; d < D; ++d) {
      kvp::mbar_init(full + 8 * d, 1 + 32);
      kvp::mbar_init(empty + 8 * d, GV_WARPS * 32);
    }
    kvp::mbar_fence_init();
  }
  __syncthreads();

  if (wid == GV_WARPS) {  // the producer: one box a step, group by group; weights of the first D before the wait
    const unsigned long long policy = gv_evict_first_policy();
    GvGroup gr = gv_group(s0, s1, steps_per_slice);
    int st = 0, ks = gr.k0;
    GvGroup xg = gr;  // x of the ring's first steps, copied after the wait
    int xst = 0, xks = gr.k0;
    for (long long i = 0;; ++i) {
      const int d = (int)(i % D);
      if (i == D || (i < D && gr.first >= s1)) {
        kvp::pdl_wait();
        if (KVP_GV_TRACE && lane == 0) GV_MARK(1);
        for (int j = 0; j < (int)min(i, (long long)D); ++j) {
          for (int r = 0; r < xg.q; ++r)
            gv_copy_x_or_zero(a, xks + r, steps_per_slice, xring + j * XST + r * 1024, lane);
          gv_cp_arrive(full + 8 * j);
          xks = gv_own_next(xks, xg, steps_per_slice);
          if (++xst == xg.steps) {
            xg = gv_group(xg.first + xg.h, s1, steps_per_slice);
            xst = 0;
            xks = xg.k0;
          }
        }
      }
      if (gr.first >= s1) break;
      if (i >= D) kvp::mbar_wait(empty + 8 * d, (unsigned)((i / D - 1) & 1));
      if (lane == 0) {
        kvp::mbar_arrive_tx(full + 8 * d, gr.h * gr.q * 2048);
        gv_tma3(wring + d * WST, a.map + gr.h - 1, gr.first * 16, ks, full + 8 * d, policy);
      }
      if (i >= D) {
        for (int r = 0; r < gr.q; ++r) gv_copy_x_or_zero(a, ks + r, steps_per_slice, xring + d * XST + r * 1024, lane);
        gv_cp_arrive(full + 8 * d);
      }
      ks = gv_own_next(ks, gr, steps_per_slice);
      if (++st == gr.steps) {
        gr = gv_group(gr.first + gr.h, s1, steps_per_slice);
        st = 0;
        ks = gr.k0;
      }
    }
    if (KVP_GV_TRACE && lane == 0) GV_MARK(6);
    return;
  }

  kvp::pdl_wait();
  if (KVP_GV_TRACE && threadIdx.x == 0) GV_MARK(2);
#if KVP_GV_GATHER
  const GvPairs pairs = gv_pairs(a, lane);
#endif
  const int g = lane >> 2, c = lane & 3;
  const int arow = 16 * wid + (lane & 15), ahalf = lane >> 4, bcol = lane & 7, bq = lane >> 3;
  const unsigned a_off = arow * 128, a_sw = arow & 7;
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  GvGroup gr = gv_group(s0, s1, steps_per_slice);
  bool active = gr.q > 1 || wid < gr.h;  // warp-uniform: a group of three leaves one warp idle
  unsigned x_off = (gr.q > 1 ? wid / gr.h : 0) * 1024 + bcol * 128;
  int st = 0, parity = 0;
  for (long long i = 0;; ++i) {
    const int d = (int)(i % D);
    kvp::mbar_wait(full + 8 * d, (unsigned)((i / D) & 1));
    if (KVP_GV_TRACE && i == 0 && threadIdx.x == 0) GV_MARK(4);
    unsigned dep = 0;  // a register of every ldmatrix of the stage (gv_release)
    if (active) {
      const unsigned ws_ = wring + d * WST, xs_ = xring + d * XST + x_off;
      unsigned b[8];
      gv_ldsm4(xs_ + ((bq ^ bcol) << 4), b[0], b[1], b[2], b[3]);
      gv_ldsm4(xs_ + (((4 + bq) ^ bcol) << 4), b[4], b[5], b[6], b[7]);
      dep = b[0] ^ b[4];
#pragma unroll
      for (int kb = 0; kb < 4; ++kb) {
        unsigned a0, a1, a2, a3;
        gv_ldsm4(ws_ + a_off + (((2 * kb + ahalf) ^ a_sw) << 4), a0, a1, a2, a3);
        dep ^= a0;
        gv_mma<BF>(acc, a0, a1, a2, a3, b[2 * kb], b[2 * kb + 1]);
      }
    }
    gv_release(empty + 8 * d, sink, dep);
    if (++st < gr.steps) continue;
    if (gr.q > 1) {  // the warps of a slice add up in shared memory. Only a CTA's last group has fewer than four
                     // slices, so this runs once a CTA; the second buffer would keep two such groups in a row apart
      float* r = red + parity * (GV_WARPS * 128);
      if (wid >= gr.h) *reinterpret_cast<float4*>(r + wid * 128 + lane * 4) = make_float4(acc[0], acc[1], acc[2],
                                                                                         acc[3]);
      asm volatile("bar.sync 1, %0;\n" ::"n"(GV_WARPS * 32) : "memory");
      if (wid < gr.h)
        for (int o = wid + gr.h; o < GV_WARPS; o += gr.h) {
          const float4 v = *reinterpret_cast<const float4*>(r + o * 128 + lane * 4);
          acc[0] += v.x;
          acc[1] += v.y;
          acc[2] += v.z;
          acc[3] += v.w;
        }
      parity ^= 1;
    }
    if (wid < gr.h) gv_flush<BF>(a, gr.first + wid, 0, acc, true, g, c);
    acc[0] = acc[1] = acc[2] = acc[3] = 0.f;
    st = 0;
    gr = gv_group(gr.first + gr.h, s1, steps_per_slice);
    if (gr.first >= s1) break;
    active = gr.q > 1 || wid < gr.h;
    x_off = (gr.q > 1 ? wid / gr.h : 0) * 1024 + bcol * 128;
  }
  if (KVP_GV_TRACE && lane == 0) GV_MARK_MAX(5);
  if (KVP_GV_TRACE && lane == 0) GV_MARK_MAX(3);
#else
  __trap();
#endif
}
#endif

#if KVP_GV_OWN
#define GV_OWN_CALL(BF) gemv_own<BF>(a)
#else
#define GV_OWN_CALL(BF) ((void)0)
#endif
// the row-owned form takes four views of W, one per group height (gemv_stream.py _own_maps)
struct GvMaps {
  GvTmap view[KVP_GV_OWN ? 4 : 1];
};
// two CTAs per SM: the grid's and the next launch's
#define GV_KERNEL(NAME, BF)                                                                                      \
  extern "C" __global__ void __launch_bounds__(GV_THREADS, 2)                                                    \
      NAME(const __grid_constant__ GvMaps maps, const unsigned char* x, void* y, float* ws, unsigned* counters,  \
           int n, int k, int batch, int per_cta, float scale GV_GATHER_ARG GV_TRACE_ARG) {                    \
    const GvArgs a = {maps.view, x, y, ws, counters, n, k, batch, per_cta, scale, nullptr, nullptr, 0,         \
                      GV_GATHER_VAL GV_TRACE_VAL};                                                              \
    if (KVP_GV_OWN)                                                                                             \
      GV_OWN_CALL(BF);                                                                                           \
    else                                                                                                         \
      gemv_stream<BF>(a);                                                                                        \
  }
GV_KERNEL(kvp_gemv_stream_bf16, 1)
GV_KERNEL(kvp_gemv_stream_f16, 0)
GV_KERNEL(kvp_gemv_stream_e4m3, GV_E4M3)
#if !KVP_GV_OWN
// block-scaled e4m3: the scales after the common arguments (in order and rotated forms only)
extern "C" __global__ void __launch_bounds__(GV_THREADS, 2)
    kvp_gemv_stream_e4m3b(const __grid_constant__ GvMaps maps, const unsigned char* x, void* y, float* ws,
                          unsigned* counters, int n, int k, int batch, int per_cta, float scale, const float* sw,
                          const float* sx, int sx_stride GV_GATHER_ARG GV_TRACE_ARG) {
  const GvArgs a = {maps.view, x, y, ws, counters, n, k, batch, per_cta, scale, sw, sx, sx_stride, GV_GATHER_VAL
                    GV_TRACE_VAL};
  gemv_stream<GV_E4M3B>(a);
}
#endif
