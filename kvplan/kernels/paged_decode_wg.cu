// kvplan paged GQA/MQA decode on Hopper's warpgroup MMAs (wgmma, sm_90a), for large groups: compiled at run time
// with NVRTC. The mma.sync kernels (paged_decode.cu) run a warp's 16 heads on a serial chain of small MMAs and
// shuffles per 16 tokens, which bounds MQA by latency (H200, session 11: 64q/1kv B8 32K at 42% of the read rate);
// here one warpgroup takes HG = 16, 32 or 64 query heads of one KV head and 64 tokens a step, as paged_mla_wg.cu
// does for MLA's latent, with the step's tokens as the M of every wgmma:
//   QK  S^T[64 tokens x HG heads] = K[64 x D] Q^T: D / 16 wgmmas m64nHGk16, K as TMA lands it (K-major), q staged
//       once in the same layout;
//   softmax: each thread holds 2 tokens x HG / 4 heads; a head's step max meets across the 4 warps in shared
//       memory; P^T goes to shared memory as 16-bit [HG heads][64 tokens] (the K-major B operand of PV);
//   PV  O^T[D dims x HG heads] += V^T P^T: D / 64 dim tiles x 4 token k-steps, V read as the MN-major A operand.
// Layout: K and V of a step land as [D / 64 blocks][64 tokens][128 bytes] each with the 128-byte swizzle (chunk c
// of row t at c ^ (t & 7)). Tensor maps view each cache as [KV heads][D / 64 blocks][tokens][64 dims]; a box is a
// page run of min(block size, 64) rows of one block (steps start on multiples of 64 tokens, so no box crosses a
// page). STAGES steps in flight; warp 0 refills a stage once every warp's PV over it has completed. Rows past the
// sequence end: their scores are masked by a select and, in the last step, their value rows zeroed in shared
// memory before PV (NaN x 0 = NaN). 16-bit caches only (fp16 or bf16, as q).
// KVP_WG_GROUPS = 2: two warpgroups take alternate steps, each with its own ring, P and reductions, so that one's
// softmax runs while the other's wgmmas do (one warpgroup leaves the tensor cores idle during its softmax: H200,
// session 31, ~2 us a 64-token step at 64 heads, compute-bound at ~130 TFLOP/s); the second's (m, l, O) meet the
// first's in shared memory at the end.

#include "kvp_common.cuh"
#define KVP_WG_FP16 (KVP_QT == 0)
#include "kvp_wgmma.cuh"

#if !defined(KVP_QT) || !defined(KVP_D) || !defined(KVP_WG_HEADS) || !defined(KVP_WG_STAGES) || !defined(KVP_WG_GROUPS)
#error "compile through kvplan.kernels.build"
#endif

namespace kvp {
namespace gqawg {

constexpr int D = KVP_D;                 // head dim: 64 or 128
constexpr int BLOCKS = D / 64;           // 64-dim blocks of a row
constexpr int HG = KVP_WG_HEADS;         // query heads per CTA: the N of every wgmma
constexpr int NI = HG / 8;               // 8-head column chunks of an accumulator tile
constexpr int NQ = 2 * NI;               // heads a thread holds (slot q: head 8 (q >> 1) + 2 j + (q & 1))
constexpr int ACC = 4 * NI;              // fp32 registers of an accumulator tile per thread
constexpr int TOK = 64;                  // tokens a step: the M of QK
constexpr int TILE = TOK * 128;          // one 64-dim block of a step's K or V
constexpr int KV_TILE = BLOCKS * TILE;   // a step's K (or V)
constexpr int STEP_B = 2 * KV_TILE;      // K then V
constexpr int STAGES = KVP_WG_STAGES;   // steps in flight per warpgroup
constexpr int WGS = KVP_WG_GROUPS;       // warpgroups (1 or 2), each over every WGS-th step
constexpr int RED_FLOATS = 3 * 4 * HG;   // a warpgroup's [3 buffers][4 warps][HG] fp32: maxima (2), row sums
// the second warpgroup's hand-over mbarrier, after the stages' [WGS][STAGES]
constexpr int OFF_HAND = 8 * WGS * STAGES;
constexpr int OFF_RED = 128;
constexpr int OFF_Q = (OFF_RED + WGS * RED_FLOATS * 4 + 1023) / 1024 * 1024;  // [BLOCKS][HG heads][128 bytes]
constexpr int OFF_P = OFF_Q + BLOCKS * HG * 128;                               // [WGS][HG heads][64 tokens] 16-bit
constexpr int OFF_ST = OFF_P + WGS * HG * 128;                                 // the stages [WGS][STAGES]
static_assert((D == 64 || D == 128) && (HG == 16 || HG == 32 || HG == 64) && (WGS == 1 || WGS == 2), "shape");
static_assert(OFF_HAND + 8 <= OFF_RED && OFF_ST % 1024 == 0, "shared layout");
static_assert(OFF_ST + WGS * STAGES * STEP_B + 1024 == KVP_WG_SMEM, "limits.decode_wg_smem disagrees");
static_assert(WGS == 1 || (BLOCKS * ACC + NQ) * 128 * 4 <= STAGES * STEP_B, "the second warpgroup's hand-over");

// warpgroup g's barrier (ids 1, 2; the non-.aligned form: a warp may arrive diverged after its lane-0 stores)
__device__ __forceinline__ void wg_sync(int g) {
  if (WGS == 1) {
    __syncthreads();
  } else {
    asm volatile("barrier.sync %0, 128;\n" ::"r"(1 + g) : "memory");
  }
}
// shared writes made visible to warpgroup g's wgmmas, then its warps meet
__device__ __forceinline__ void wg_publish(int g) {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  wg_sync(g);
}

// one box of a 4-D tensor map at (0, row, block, head) into shared dst, completing on mbarrier bar
__device__ __forceinline__ void tma_box4(u32 dst, const TmapParam* map, int row, int block, int head, u32 bar) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {0, %2, %3, "
      "%4}], [%5];\n" ::"r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(row), "r"(block), "r"(head),
      "r"(bar)
      : "memory");
}

// Warp 0's copies of step k into stage s: lane p takes page run p (min(block size, 64) rows: up to 8 runs a step),
// one box per (K or V, block). Each lane loads its page ids a step ahead (page_of), so that no block-table round
// trip sits between a step's end and its refill (the warpgroup's next wgmma waits for warp 0).
struct StepCopies {
  const int* btrow;
  int c_lo, c_hi, nsteps, bs, log2bs, tbox, kvh, lane, g;  // g: the warpgroup, whose steps are g + WGS i
  u32 sb;
  const TmapParam* kmap;
  const TmapParam* vmap;

  // this lane's page of the warpgroup's local step i, or -1 (no run: past the step's rows, the sequence or the steps)
  __device__ __forceinline__ int page_of(int i) const {
    const int k = g + WGS * i, pos = c_lo + k * TOK + lane * tbox;
    return (k < nsteps && lane * tbox < TOK && pos < c_hi) ? __ldg(btrow + (pos >> log2bs)) : -1;
  }
  __device__ __forceinline__ void issue(int i, int s, int page) const {
    const int pos0 = c_lo + (g + WGS * i) * TOK, runs = (min(TOK, c_hi - pos0) + tbox - 1) / tbox;
    const u32 bar = sb + 8 * (g * STAGES + s), dst = sb + OFF_ST + (g * STAGES + s) * STEP_B;
    if (lane == 0) mbar_arrive_tx(bar, (u32)(runs * tbox * 128 * BLOCKS * 2));
    __syncwarp();
    if (page >= 0) {
      const int row = page * bs + ((pos0 + lane * tbox) & (bs - 1));
#pragma unroll
      for (int blk = 0; blk < BLOCKS; ++blk) {
        const u32 at = dst + (blk * TOK + lane * tbox) * 128;
        tma_box4(at, kmap, row, blk, kvh, bar);
        tma_box4(at + KV_TILE, vmap, row, blk, kvh, bar);
      }
    }
  }
  // the warpgroup's warp 0, before the first barrier: its stages' mbarriers, then its first STAGES steps' copies
  __device__ __forceinline__ void start(int nloc) const {
    int pages[STAGES];
#pragma unroll
    for (int i = 0; i < STAGES; ++i) pages[i] = page_of(i);
    if (lane == 0) {
      for (int s = 0; s < STAGES; ++s) mbar_init(sb + 8 * (g * STAGES + s), 1);
      mbar_fence_init();
    }
    __syncwarp();
#pragma unroll
    for (int i = 0; i < STAGES; ++i)
      if (i < nloc) issue(i, i, pages[i]);
  }
};

}  // namespace gqawg
}  // namespace kvp

using namespace kvp;
using namespace kvp::gqawg;

extern "C" __global__ void __launch_bounds__(128 * WGS, 1)
kvp_decode_wg(const unsigned short* __restrict__ q,   // [B, Hq, D]
              const int* __restrict__ bt,              // [B, bt_stride]
              const int* __restrict__ seqlens,         // [B]
              unsigned short* __restrict__ out,        // [B, Hq, D]              (one split)
              float* __restrict__ opart,               // [B, Hq, splits, D]      (several splits)
              float* __restrict__ lse,                 // [B, Hq, splits] (log2 domain)
              int G, int Hq, int chunk, int bt_stride, int log2bs, float cbase, float vscale,
              const __grid_constant__ TmapParam kmap, const __grid_constant__ TmapParam vmap) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const u32 raw = (u32)__cvta_generic_to_shared(smem_raw), sb = (raw + 1023u) & ~1023u;
  unsigned char* const sm = smem_raw + (sb - raw);
  const int groups = G / HG;  // head groups per KV head
  const int split = blockIdx.x, nsplit = gridDim.x, kvh = blockIdx.y / groups, b = blockIdx.z;
  const int hg0 = kvh * G + (blockIdx.y - kvh * groups) * HG;
  const int g = threadIdx.x >> 7, tid = threadIdx.x & 127;  // warpgroup, thread in it
  const int warp = tid >> 5, lane = tid & 31, r = lane >> 2, j = lane & 3;
  float* const red = reinterpret_cast<float*>(sm + OFF_RED) + g * RED_FLOATS;
  const u32 pb = sb + OFF_P + g * (HG * 128);  // this warpgroup's P

  pdl_wait();
  const int len = seqlens[b];
  const int2 span = split_span(split, chunk, len);
  const int c_lo = span.x, c_hi = span.y;
  const int nsteps = (c_hi - c_lo + TOK - 1) / TOK;
  const int nloc = nsteps > g ? (nsteps - g + WGS - 1) / WGS : 0;  // this warpgroup's steps
  const int bs = 1 << log2bs;
  const StepCopies copies{bt + (size_t)b * bt_stride, c_lo, c_hi, nsteps, bs, log2bs, min(bs, TOK), kvh, lane, g,
                          sb, &kmap, &vmap};
  if (warp == 0) copies.start(nloc);
  if (WGS == 2 && threadIdx.x == 0) mbar_init(sb + OFF_HAND, 128);  // (made visible by the publish below)

  // q -> [BLOCKS][HG heads][128 bytes], swizzled
  for (int idx = threadIdx.x; idx < HG * (D / 8); idx += 128 * WGS) {
    const int h = idx / (D / 8), c = idx - (D / 8) * h;
    const uint4 v = *reinterpret_cast<const uint4*>(q + ((size_t)b * Hq + hg0 + h) * D + 8 * c);
    *reinterpret_cast<uint4*>(sm + OFF_Q + (c >> 3) * (HG * 128) + sw128(h, c & 7)) = v;
  }
  publish();  // q visible to the wgmmas; the mbarriers initialised

  // thread (warp w, lane (r, j)): S and O columns 8 i + 2 j + e (head slot 2 i + e), S rows (tokens) 16 w + r + 8 x,
  // O rows (dims) 64 u + 16 w + r + 8 x; accumulator entry 4 i + 2 x + e
  float o[BLOCKS][ACC];
#pragma unroll
  for (int u = 0; u < BLOCKS; ++u)
#pragma unroll
    for (int e = 0; e < ACC; ++e) o[u][e] = 0.f;
  float m[NQ], l[NQ], cb[NQ];  // running max and sum, score multiplier of each head slot
#pragma unroll
  for (int qs = 0; qs < NQ; ++qs) m[qs] = KVP_NEG_INF, l[qs] = 0.f, cb[qs] = cbase;

  int s = 0;  // stage of local step i and its mbarrier's parity
  u32 parity = 0;
  for (int i = 0; i < nloc; ++i) {
    const int nval = c_hi - (c_lo + (g + WGS * i) * TOK);
    const int refill = warp == 0 ? copies.page_of(i + STAGES) : -1;  // (its round trip overlaps the step)
    mbar_wait(sb + 8 * (g * STAGES + s), parity);
    const u32 ktile = sb + OFF_ST + (g * STAGES + s) * STEP_B, vtile = ktile + KV_TILE;
    if (nval < TOK) {  // rows past the end (stale, or another sequence's): zero values before PV reads them
      for (int idx = tid; idx < (TOK - nval) * 8 * BLOCKS; idx += 128) {
        const int t = nval + idx / (8 * BLOCKS), blk = (idx >> 3) % BLOCKS;
        *reinterpret_cast<uint4*>(sm + (vtile - sb) + blk * TILE + 128 * t + 16 * (idx & 7)) =
            make_uint4(0, 0, 0, 0);
      }
      wg_publish(g);
    }

    // ---- QK
    float sc[ACC];
#pragma unroll
    for (int e = 0; e < ACC; ++e) sc[e] = 0.f;
    wg_fence();
#pragma unroll
    for (int ks = 0; ks < 4 * BLOCKS; ++ks)
      wgmma_acc<HG, 0>(sc, desc(ktile + (ks >> 2) * TILE + 32 * (ks & 3)),
                       desc(sb + OFF_Q + (ks >> 2) * (HG * 128) + 32 * (ks & 3)), ks > 0);
    wg_commit();
    wg_wait();
    hold(sc);

    // ---- softmax (log2 domain, kvp_wgmma.cuh)
    const bool v0 = 16 * warp + r < nval, v1 = 16 * warp + r + 8 < nval;
    float* const rk = red + (i & 1) * (4 * HG);
    wg_step_max<HG>(sc, v0, v1, rk, warp, r, j);
    wg_sync(g);
    float al[NQ], mu[NQ];
    wg_new_max<HG>(rk, cb, m, l, al, mu, j);
    wg_scale_o<HG>(o, al);
    wg_store_p<HG>(reinterpret_cast<unsigned short*>(sm + (pb - sb)), sc, cb, mu, l, warp, r, j);
    wg_publish(g);  // P visible to the wgmmas

    // ---- PV
    wg_fence();
#pragma unroll
    for (int u = 0; u < BLOCKS; ++u)
#pragma unroll
      for (int kt = 0; kt < 4; ++kt)
        wgmma_acc<HG, 1>(o[u], desc(vtile + u * TILE + kt * 16 * 128), desc(pb + 32 * kt), 1);
    wg_commit();
    wg_wait();
#pragma unroll
    for (int u = 0; u < BLOCKS; ++u) hold(o[u]);
    wg_sync(g);  // every warp's wgmmas over this step's stage (and over P) have completed
    if (warp == 0 && i + STAGES < nloc) copies.issue(i + STAGES, s, refill);
    if (++s == STAGES) s = 0, parity ^= 1u;
  }
  pdl_release();

  // ---- epilogue: a head's sum over its 64-token rows meets across lanes r and the 4 warps
  float* const rl = red + 2 * (4 * HG);
#pragma unroll
  for (int qs = 0; qs < NQ; ++qs) wg_row_sum<HG>(rl, l[qs], warp, r, j, qs);
  wg_sync(g);  // every warp's parts of the row sums written (the first warpgroup reads its own below)
  if (WGS == 2) {
    // the second warpgroup hands its O and running maxima over through its (now idle) stages, thread to thread, and
    // its row sums in its reduction buffer, behind an mbarrier each of its threads arrives on (a release of its own
    // writes: racecheck follows mbarriers, where it reported this hand-over behind __syncthreads)
    float* const hand = reinterpret_cast<float*>(sm + OFF_ST + STAGES * STEP_B);
    if (g == 1) {
#pragma unroll
      for (int u = 0; u < BLOCKS; ++u)
#pragma unroll
        for (int e = 0; e < ACC; ++e) hand[(u * ACC + e) * 128 + tid] = o[u][e];
#pragma unroll
      for (int qs = 0; qs < NQ; ++qs) hand[(BLOCKS * ACC + qs) * 128 + tid] = m[qs];
      __syncwarp();  // (the row sums' lane-0 stores before every lane's arrive)
      mbar_arrive(sb + OFF_HAND);
      return;
    }
    mbar_wait(sb + OFF_HAND, 0);
    const float* const rl1 = reinterpret_cast<const float*>(sm + OFF_RED) + RED_FLOATS + 2 * (4 * HG);
#pragma unroll
    for (int qs = 0; qs < NQ; ++qs) {
      const int h = 8 * (qs >> 1) + 2 * j + (qs & 1);
      const float m1 = hand[(BLOCKS * ACC + qs) * 128 + tid], mm = fmaxf(m[qs], m1);
      const float a0 = m[qs] == KVP_NEG_INF ? 0.f : ex2(m[qs] - mm), a1 = m1 == KVP_NEG_INF ? 0.f : ex2(m1 - mm);
      const float L0 = wg_sum4<HG>(rl, h);
      const float L1 = wg_sum4<HG>(rl1, h);
      l[qs] = a0 * L0 + a1 * L1, m[qs] = mm;
#pragma unroll
      for (int u = 0; u < BLOCKS; ++u)
#pragma unroll
        for (int x = 0; x < 2; ++x) {
          const int e = 4 * (qs >> 1) + 2 * x + (qs & 1);
          o[u][e] = a0 * o[u][e] + a1 * hand[(u * ACC + e) * 128 + tid];
        }
    }
  } else {
#pragma unroll
    for (int qs = 0; qs < NQ; ++qs) {
      const int h = 8 * (qs >> 1) + 2 * j + (qs & 1);
      l[qs] = wg_sum4<HG>(rl, h);
    }
  }
#pragma unroll
  for (int qs = 0; qs < NQ; ++qs) {
    const int h = 8 * (qs >> 1) + 2 * j + (qs & 1);
    const float L = l[qs];
    const float inv = L > 0.f ? vscale / L : 0.f;
    const size_t row = (size_t)b * Hq + hg0 + h;
#pragma unroll
    for (int u = 0; u < BLOCKS; ++u)
#pragma unroll
      for (int x = 0; x < 2; ++x) {
        const int d = 64 * u + 16 * warp + r + 8 * x;
        const float v = o[u][4 * (qs >> 1) + 2 * x + (qs & 1)] * inv;
        if (nsplit == 1) {
          out[row * D + d] = wg_to16(v);
        } else {
          opart[(row * nsplit + split) * D + d] = v;
        }
      }
    if (nsplit > 1 && warp == 0 && r == 0) lse[row * nsplit + split] = L > 0.f ? m[qs] + log2f(L) : KVP_NEG_INF;
  }
}

extern "C" __global__ void __launch_bounds__(256)
kvp_decode_wg_merge(const float* __restrict__ opart, const float* __restrict__ lse, unsigned short* __restrict__ out,
                    int rows, int nsplit) {
  merge_split_rows<D, KVP_QT == 1>(opart, lse, out, nsplit);
}
