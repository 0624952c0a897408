// kvplan paged decode attention, compiled at run time with NVRTC (see build.py).
//
// One CTA per (split, KH kv heads, sequence); KH is 1 by default. The CTA's warps form
// KH x NWS x HT: HT warps share one token slice and split the group's G query heads between them
// (HPW heads each), NWS token slices run independent online softmaxes that are merged in shared
// memory at the end. Splits of one sequence are merged by kvp_merge, or kvp_merge_few up to 8 splits
// (log-sum-exp weights).
//
// Tensor cores with tokens in the M dimension: S^T = K Q^T (m16n8k16: 16 tokens x 8 heads x 16
// dims) and O^T = V^T P^T (16 dims x 8 heads x 16 tokens), so 8 heads fill the N side with no
// padding for the common G <= 8, and P^T comes from S^T with two movmatrix.trans per 16 tokens.
// A dot product does not care which dims each lane owns, so lanes own whole 16-byte chunks of
// K and V rows: every load is 16 bytes and no ldmatrix is needed.
//
// Loads go global -> shared with 16-byte cp.async into a ring of STAGES steps (16 tokens each).
// V: each lane reads back only the slots that its own lane id copied (whichever warp of the
// slice issued them), layout [stage][slot][lane], free of bank conflicts. K: copied as whole
// rows (see KVP_KCOAL) into a swizzled tile, read after __syncwarp. With HT > 1 the slice's warps
// split the copies and meet at a named barrier once per step.
//
// Config macros (set by build.py):
//   KVP_QT   query/output dtype: 0 = fp16, 1 = bf16
//   KVP_KVT  cache dtype: 0 = fp16, 1 = bf16, 2 = fp8 e4m3 (computed as fp16 on the tensor cores)
//   KVP_D    head dim: 64, 128 or 256
//   KVP_HPW  query heads per warp: 8 or 16
//   KVP_MAXW most warps per CTA (launch bounds)
//   KVP_L2PF L2 prefetch hint of the cp.async copies: 0 none, 1 = 128 B, 2 = 256 B
//   KVP_KCOAL 1: K is copied as whole rows (every copy instruction covers full 128-byte lines)
//            into a swizzled row-major tile that lanes read after __syncwarp; 0: each lane
//            copies exactly the 16-byte K chunks it later reads (64 bytes per row per instruction)
//   KVP_BULK 1 (sm_90+, rows of a multiple of 128 bytes; the host checks): Hopper bulk copies
//            instead of the cp.async ring: per 16-token step each lane issues ONE cp.async.bulk of a
//            whole row (lanes 0-15 the K rows, 16-31 the V rows of the step's tokens) completing on
//            the stage's mbarrier; see "bulk layout" below. With KH > 1 or HT > 1 (then NWS == 1) the
//            CTA's warps share one ring and split each step's 32 copies between them
//   KVP_TRACE 1: write a per-CTA timeline to `trace` (benchmarks only; 0 compiles it out)
//   KVP_EARLY_PAGE 1: load the first page ids together with seqlens (no window only)
//   KVP_LAZY 1: a head's running max moves only when a step's max exceeds it by more than 8 (log2), so the
//            accumulators are rescaled (a warp-wide skip) only then; a step's probabilities stay <= 2^8
//   KVP_HM 1: heads in M (16 heads per warp, one token slice): S = Q K^T, O = P V with the heads as the MMAs'
//            M side (paged_decode_hm.cuh); opt-in, written without a GPU in session 10 (not yet run on one)
//   KVP_SORT 1: a CTA takes its steps in the address order of their first rows (see "step order" below)
//   KVP_RUN 1 (with KVP_HM and bulk copies): tiles laid out row after row, and where a CTA's KV heads are all of
//            them (a token's rows then follow the last token's in the cache) and a step lies in one page (block
//            size >= 16, no window), a step's K and its V each come in ONE bulk copy instead of 16 row copies;
//            opt-in, written without a GPU in session 10
// Layout sizes (ring and bulk stage bytes, mbarrier area, ...) come from kvplan/kernels/limits.py as
// KVP_* macros; the static_asserts below check that this file's layout fits them.

#include "kvp_common.cuh"

#if !defined(KVP_RING_STEP_BYTES) || !defined(KVP_BULK_STEP_BYTES) || !defined(KVP_MBAR_AREA)
#error "compile through kvplan.kernels.build: the layout sizes come from limits.py"
#endif

#ifndef KVP_QT
#define KVP_QT 1
#endif
#ifndef KVP_KVT
#define KVP_KVT 1
#endif
#ifndef KVP_D
#define KVP_D 128
#endif
#ifndef KVP_HPW
#define KVP_HPW 8
#endif
#ifndef KVP_MAXW
#define KVP_MAXW 8
#endif
#ifndef KVP_L2PF
#define KVP_L2PF 2
#endif
#ifndef KVP_KCOAL
#define KVP_KCOAL 1
#endif
#ifndef KVP_TRACE
#define KVP_TRACE 0
#endif
#ifndef KVP_EARLY_PAGE
#define KVP_EARLY_PAGE 1
#endif
#ifndef KVP_BULK
#define KVP_BULK 0
#endif
#ifndef KVP_LAZY
#define KVP_LAZY 0
#endif
#ifndef KVP_HM
#define KVP_HM 0
#endif
#ifndef KVP_RUN
#define KVP_RUN 0
#endif
#ifndef KVP_SORT
#define KVP_SORT 0
#define KVP_SORT_MIN 0
#define KVP_SORT_MAX 0
#define KVP_SORT_BYTES 0
#endif

#define KVP_MMA_BF16 (KVP_KVT == 1)

namespace kvp {

constexpr int D = KVP_D;
constexpr int HPW = KVP_HPW;
constexpr int NT = HPW / 8;                  // n-tiles of 8 heads per warp
constexpr int ES = (KVP_KVT == 2) ? 1 : 2;   // cache element bytes
constexpr int ROWB = D * ES;                 // bytes of one token's row for one kv head
constexpr int EK = 16 / ES;                  // elements per 16-byte K chunk
constexpr int KCH = ROWB / 64;               // K chunks per lane per row (4 lanes share a row)
constexpr int VCW = (ROWB / 8 >= 16) ? 16 : ROWB / 8;   // V chunk bytes (8 lanes share a row)
constexpr int EV = VCW / ES;                 // elements per V chunk
constexpr int VCH = ROWB / VCW / 8;          // V chunks per lane per row
constexpr int KSTEPS = D / 16;
constexpr int MT = D / 16;                   // m-tiles of 16 dims in O^T
constexpr int SLOTS = 2 * KCH + 4 * VCH;     // 16-byte slots per lane per step
constexpr int NCK = ROWB / 16;               // 16-byte chunks per K row
constexpr int KCOAL = KVP_KCOAL;
constexpr int SLOT_STRIDE = KVP_WARP_SLOT;    // bytes between consecutive slots of one stage

static_assert(KCH >= 1 && VCH >= 1, "unsupported head dim");
static_assert(EV % 2 == 0, "V chunk must hold dim pairs");
static_assert(KVP_STEP_TOKENS == 16, "one ring stage is one 16-token M tile");
static_assert(SLOTS * SLOT_STRIDE == KVP_RING_STEP_BYTES, "limits.ring_step_bytes disagrees with the ring layout");
static_assert(KVP_MAX_STAGES - 2 <= 6, "cp_wait covers at most 6 pending groups");

__device__ __forceinline__ void mma16816(float (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
#if KVP_MMA_BF16
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}

// two floats -> packed 16-bit pair of the tensor-core input type (lo = first)
__device__ __forceinline__ u32 pack_mma(float lo, float hi) {
#if KVP_MMA_BF16
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
#else
  __half2 v = __floats2half2_rn(lo, hi);
#endif
  return *reinterpret_cast<u32*>(&v);
}

// two floats -> packed pair of the output dtype
__device__ __forceinline__ u32 pack_out(float lo, float hi) {
#if KVP_QT == 1
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
#else
  __half2 v = __floats2half2_rn(lo, hi);
#endif
  return *reinterpret_cast<u32*>(&v);
}

// eight consecutive dims d.. of query row rowq: one 16-byte store of the output (one split), or two float4 partials
// of split `split` (several; kvp_merge combines them)
__device__ __forceinline__ void store_dims8(unsigned short* out, float* opart, size_t rowq, int nsplit, int split,
                                            int d, const float (&v)[8]) {
  if (nsplit == 1) {
    *reinterpret_cast<uint4*>(out + rowq * D + d) =
        make_uint4(pack_out(v[0], v[1]), pack_out(v[2], v[3]), pack_out(v[4], v[5]), pack_out(v[6], v[7]));
  } else {
    float4* dst = reinterpret_cast<float4*>(opart + (rowq * nsplit + split) * D + d);
    dst[0] = make_float4(v[0], v[1], v[2], v[3]);
    dst[1] = make_float4(v[4], v[5], v[6], v[7]);
  }
}

// KVP_L2PF: L2 prefetch size hint (0 none, 1 = 128 B, 2 = 256 B): a K or V row spans 2..4
// lines that several copy instructions request piecewise. Never prefetch past a row: that would
// fetch the next KV head's row (measured: 256 B on 128-byte rows cost 15%).
constexpr int PF = (KVP_L2PF >= 2 && ROWB >= 256) ? 2 : (KVP_L2PF >= 1 && ROWB >= 128) ? 1 : 0;
__device__ __forceinline__ void cp_async16(u32 dst, const void* src, int nbytes) {
  if (PF == 2)
    asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(nbytes) : "memory");
  else if (PF == 1)
    asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(nbytes) : "memory");
  else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(nbytes) : "memory");
}
__device__ __forceinline__ void cp_async8(u32 dst, const void* src, int nbytes) {
  if (PF == 2)
    asm volatile("cp.async.ca.shared.global.L2::256B [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(src), "r"(nbytes) : "memory");
  else if (PF == 1)
    asm volatile("cp.async.ca.shared.global.L2::128B [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(src), "r"(nbytes) : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(src), "r"(nbytes) : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// wait until at most n groups are pending (n is runtime; the instruction needs an immediate)
__device__ __forceinline__ void cp_wait(int n) {
  switch (n) {
    case 0: asm volatile("cp.async.wait_group 0;\n" ::: "memory"); break;
    case 1: asm volatile("cp.async.wait_group 1;\n" ::: "memory"); break;
    case 2: asm volatile("cp.async.wait_group 2;\n" ::: "memory"); break;
    case 3: asm volatile("cp.async.wait_group 3;\n" ::: "memory"); break;
    case 4: asm volatile("cp.async.wait_group 4;\n" ::: "memory"); break;
    case 5: asm volatile("cp.async.wait_group 5;\n" ::: "memory"); break;
    default: asm volatile("cp.async.wait_group 6;\n" ::: "memory"); break;
  }
}

__device__ __forceinline__ void bar_named(int id, int nthreads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(nthreads) : "memory");
}

// dim of O^T m-tile u, row r (row r+8 is the next dim); m-tiles u .. u + 3 (u % 4 == 0) are 8 consecutive dims
static_assert(EV % 8 == 0 && MT % 4 == 0, "vdim: four m-tiles of a row are one 16-byte run");
__device__ __forceinline__ int vdim(int r, int u) {
  const int i = u / (EV / 2);
  return (r + 8 * i) * EV + 2 * (u - i * (EV / 2));
}

// ---- bulk layout (KVP_BULK). A bulk copy writes one row contiguously, so bank conflicts are
// avoided by where each row lands, not by a swizzle inside it:
//   K tile: even tokens at (t/2) * ROWB, odd tokens 8 * ROWB + 64 further on, so the two rows that
//           one 8-lane phase reads (r = 2p, 2p+1; same 4 chunks) sit 64 bytes apart mod 128;
//   V tile: token t at t * ROWB + (t/2) * 32, so rows 2j (j = 0..3) read at chunk r start on
//           4 different 32-byte bank offsets.
// Rows past the end of the range are not copied (stale or NaN bytes stay): scores are masked by a
// select and the V words of those tokens are zeroed in registers on the last, partial step.
constexpr int BULK = (KVP_BULK && ROWB % 128 == 0) ? 1 : 0;
constexpr int KT_BYTES = 16 * ROWB + KVP_BULK_K_GAP;
constexpr int STEP_B = KVP_BULK_STEP_BYTES;  // K tile + V tile, padded (limits.bulk_step_bytes)
constexpr int BARB = BULK ? KVP_MBAR_AREA : 0;  // mbarriers at the front of shared memory
static_assert(KVP_SORT_BYTES >= 2 * KVP_SORT_MAX && KVP_SORT_BYTES % 128 == 0, "step order area");
static_assert(KT_BYTES + 15 * ROWB + 7 * KVP_BULK_V_SKEW + ROWB <= STEP_B, "bulk stage overflows its bytes");
static_assert(STEP_B % 128 == 0, "bulk stages start on 128-byte lines");
static_assert(KVP_MAX_STAGES * 8 * 16 <= KVP_MBAR_AREA, "mbarriers of 16 slices x MAX_STAGES fit the area");

// ts: bytes between consecutive tokens' rows of a tile: ROWB, or KH * ROWB when the CTA's KH warps share one
// stage holding all their heads (a token's KH rows are adjacent, as in the cache; head hh at + hh * ROWB).
// ROWB % 128 == 0, so the bank pattern above is the same for any ts.
#if KVP_RUN
// row after row (a page run lands as it is in the cache): 2-way bank conflicts on the K reads, 4-way on the V reads
static_assert(KVP_HM, "page runs: the heads-in-M step reads rows through koff / voff only");
__device__ __forceinline__ int koff(int t, int ts) { return t * ts; }
__device__ __forceinline__ int voff(int t, int ts) { return (16 + t) * ts; }
#else
__device__ __forceinline__ int koff(int t, int ts) { return (t & 1) * (8 * ts + KVP_BULK_K_GAP) + (t >> 1) * ts; }
__device__ __forceinline__ int voff(int t, int ts) {
  return 16 * ts + KVP_BULK_K_GAP + t * ts + (t >> 1) * KVP_BULK_V_SKEW;
}
#endif

}  // namespace kvp

#include "paged_decode_hm.cuh"

using namespace kvp;

// KVP_MAXREG > 0: a register cap instead of the launch bounds (NVRTC takes one or the other), so that more CTAs of
// few warps fit an SM: page runs take 168 (ptxas chose 171: two 4-warp CTAs per SM instead of three)
#ifndef KVP_MAXREG
#define KVP_MAXREG 0
#endif
#if KVP_MAXREG > 0
extern "C" __global__ void __maxnreg__(KVP_MAXREG)
#else
extern "C" __global__ void __launch_bounds__(KVP_MAXW * 32, 1)
#endif
kvp_decode(const unsigned short* __restrict__ q,    // [B, Hq, D]
           const unsigned char* __restrict__ kc,    // [NB, BS, Hkv, D]
           const unsigned char* __restrict__ vc,    // [NB, BS, Hkv, D]
           const int* __restrict__ bt,              // [B, bt_stride]
           const int* __restrict__ seqlens,         // [B]
           unsigned short* __restrict__ out,        // [B, Hq, D]           (one split)
           float* __restrict__ opart,               // [B, Hq, splits, D]   (several splits)
           float* __restrict__ lse,                 // [B, Hq, splits]      (log2 domain)
           int* __restrict__ counters,              // [B, Hkv / KH] zeros, or null: kvp_merge merges
           int G, int Hkv, int KH, int HT, int NWS, int STAGES, int chunk, int bt_stride, int log2bs,
           int window, float cbase, float vscale,
           unsigned long long* __restrict__ trace) {  // KVP_TRACE: per CTA start, first data, end (ns), SM
  extern __shared__ __align__(16) unsigned char smem[];
  // warp = (hh * NWS + ws) * HT + ht: KH kv heads per CTA (their rows of one token are adjacent
  // in memory, so a CTA reading them together streams whole DRAM pages), NWS token slices,
  // HT head tiles. The host keeps KH == 1 whenever NWS > 1 or HT > 1.
  const int split = blockIdx.x, nsplit = gridDim.x, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int r = lane >> 2, j = lane & 3;
  const int ht = warp % HT, ws = (warp / HT) % NWS, hh = warp / (HT * NWS);
  const int kvh = blockIdx.y * KH + hh;
  const int Hq = G * Hkv;
  const u32 FULL = 0xffffffffu;

  pdl_wait();
  unsigned long long t_start = 0, t_first = 0;
  if (KVP_TRACE && threadIdx.x == 0) t_start = globaltimer();

  // first page id of this lane's row, loaded together with seqlens rather than after it (one memory
  // round trip less before the first copy; H100, two runs: within noise, the wait is bandwidth).
  // Without a window the range starts at split * chunk whatever the length; the entry is used only
  // if the length turns out to cover it (entries past the end may be garbage: never used).
  const int* btrow = bt + (size_t)b * bt_stride;
  const long long pos0 = (long long)split * chunk + ws * 16 + (lane & 15);
  const int pg0 = (KVP_EARLY_PAGE && window == 0 && pos0 < ((long long)bt_stride << log2bs))
                      ? __ldg(btrow + (pos0 >> log2bs)) : 0;

  // this CTA's token range [c_lo, c_hi)
  const int len = seqlens[b];
  const int lo = (window > 0 && len > window) ? len - window : 0;
  const long long c_lo_l = (long long)lo + (long long)split * chunk;
  const int c_lo = (int)min(c_lo_l, (long long)len);
  const int c_hi = (int)min(c_lo_l + chunk, (long long)len);
  const int nsteps = (c_hi - c_lo + 15) >> 4;
  const int nloc = ws < nsteps ? (nsteps - ws + NWS - 1) / NWS : 0;

  // ---- step order. With KVP_SORT a CTA of at least KVP_SORT_MIN steps takes them in the address order of their
  // first rows, so that all CTAs sweep the cache from low to high addresses together and DRAM sees neighbouring
  // pages at about the same time (H200, session 30: shuffled tables sorted per CTA chunk took back half of what
  // shuffling costs at large batch; ranked here, the sort cost more than that, so it is an option). The sum over a
  // CTA's tokens is the same in any order, and the order is a function of the block table alone, so results stay
  // reproducible. Each thread ranks up to 4 steps; their keys (row of the step's first token) are loaded here,
  // before q, so that the two round trips overlap.
#if KVP_SORT
  const int nthr = blockDim.x;
  const bool sorted = window == 0 && nsteps >= KVP_SORT_MIN && nsteps <= KVP_SORT_MAX && nsteps <= 4 * nthr;
  u32 skey[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const int st = threadIdx.x + e * nthr, p = c_lo + st * 16;
    skey[e] = sorted && st < nsteps
                  ? (u32)__ldg(btrow + (p >> log2bs)) * (u32)(1 << log2bs) + (u32)(p & ((1 << log2bs) - 1))
                  : 0xffffffffu;
  }
#else
  const bool sorted = false;
#endif

#if KVP_HM
  hm::State hs;
  hm::load_q(hs, q + ((size_t)b * Hq + (size_t)kvh * G) * D, G, ht, r, j, cbase);
#else
  // ---- q fragments (B operand of S^T = K Q^T), lane (r, j) holds head r of each n-tile
  u32 qf[KSTEPS][NT][2];
  float csc[NT][2];  // score multiplier for heads 2j, 2j+1 of each n-tile (log2 domain)
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int hl = ht * HPW + nt * 8 + r;
    const bool hv = hl < G;
    const unsigned short* qrow = q + ((size_t)b * Hq + (size_t)kvh * G + (hv ? hl : 0)) * D;
    float pw = 1.f;
#if KVP_KVT == 2 && KVP_QT == 1
    // fp8 cache runs on fp16 tensor cores: bring each bf16 head into fp16 range by a power of two
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < KCH; ++i) {
      const int c = j + 4 * i;
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        uint4 v = hv ? *reinterpret_cast<const uint4*>(qrow + c * EK + hh * 8) : make_uint4(0, 0, 0, 0);
        u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int t = 0; t < 4; ++t) amax = fmaxf(amax, fmaxf(fabsf(bf16lo(w[t])), fabsf(bf16hi(w[t]))));
      }
    }
    amax = fmaxf(amax, __shfl_xor_sync(FULL, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(FULL, amax, 2));
    if (amax > 0.f && amax < 3.0e38f) {
      int e;
      frexpf(amax, &e);           // amax < 2^e
      pw = ldexpf(1.f, 14 - e);   // amax * pw < 2^14
    }
#endif
#pragma unroll
    for (int i = 0; i < KCH; ++i) {
      const int c = j + 4 * i;
#if KVP_KVT != 2
      uint4 v = hv ? *reinterpret_cast<const uint4*>(qrow + c * EK) : make_uint4(0, 0, 0, 0);
      qf[2 * i][nt][0] = v.x;
      qf[2 * i][nt][1] = v.y;
      qf[2 * i + 1][nt][0] = v.z;
      qf[2 * i + 1][nt][1] = v.w;
#else
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        uint4 v = hv ? *reinterpret_cast<const uint4*>(qrow + c * EK + hh * 8) : make_uint4(0, 0, 0, 0);
        u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int t = 0; t < 4; ++t) {
#if KVP_QT == 1
          __half2 h = __floats2half2_rn(bf16lo(w[t]) * pw, bf16hi(w[t]) * pw);
          w[t] = *reinterpret_cast<u32*>(&h);
#endif
        }
        qf[4 * i + 2 * hh][nt][0] = w[0];
        qf[4 * i + 2 * hh][nt][1] = w[1];
        qf[4 * i + 2 * hh + 1][nt][0] = w[2];
        qf[4 * i + 2 * hh + 1][nt][1] = w[3];
      }
#endif
    }
    // lanes with r == 2j + c hold head 2j + c's power of two
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const float p = __shfl_sync(FULL, pw, (2 * j + c) * 4);
      csc[nt][c] = cbase / p;
    }
  }

  float o[MT][NT][4];
  float m[NT][2], l[NT][2];
#pragma unroll
  for (int u = 0; u < MT; ++u)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int t = 0; t < 4; ++t) o[u][nt][t] = 0.f;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    m[nt][0] = m[nt][1] = KVP_NEG_INF;
    l[nt][0] = l[nt][1] = 0.f;
  }
#endif  // KVP_HM

#if KVP_SORT
  // rank of each step: keys before it that are <= its own, keys after it that are < (ties keep step order, so the
  // ranks are a permutation even where a table names one page twice); keys sit in the ring, not written yet
  unsigned short* const order_of = reinterpret_cast<unsigned short*>(smem + BARB);  // [KVP_SORT_MAX] local steps
  if (sorted) {
    u32* const keys = reinterpret_cast<u32*>(smem + BARB + KVP_SORT_BYTES);
    const int n4 = (nsteps + 3) >> 2;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int st = threadIdx.x + e * nthr;
      if (st < 4 * n4) keys[st] = skey[e];  // (0xffffffff pads the last group of 4)
    }
    __syncthreads();
    const uint4* const k4 = reinterpret_cast<const uint4*>(keys);
#pragma unroll 1
    for (int st = threadIdx.x; st < nsteps; st += nthr) {
      const u32 key = keys[st];
      const int g0 = st >> 2;
      int rank = 0;
#pragma unroll 4
      for (int g = 0; g < g0; ++g) {
        const uint4 o = k4[g];
        rank += (o.x <= key) + (o.y <= key) + (o.z <= key) + (o.w <= key);
      }
      const uint4 o = k4[g0];
      const u32 ov[4] = {o.x, o.y, o.z, o.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) rank += 4 * g0 + i < st ? (ov[i] <= key) : (ov[i] < key);
#pragma unroll 4
      for (int g = g0 + 1; g < n4; ++g) {
        const uint4 o2 = k4[g];
        rank += (o2.x < key) + (o2.y < key) + (o2.z < key) + (o2.w < key);
      }
      order_of[rank] = (unsigned short)st;
    }
    __syncthreads();
  }
  // first token of this slice's local step k (past the end: a step never taken)
  auto step_base = [&](int k) -> int {
    const int st = ws + k * NWS;
    return c_lo + (sorted && st < nsteps ? (int)order_of[st] : st) * 16;
  };
#else
  auto step_base = [&](int k) -> int { return c_lo + (ws + k * NWS) * 16; };
#endif

  // ---- staging ring of this token slice
  // Bulk copies with KH > 1 kv heads per CTA: the KH warps share one ring whose token rows span all KH heads
  // (the cache stores a token's heads adjacently), so one copy brings a token's K (or V) for every head: a step
  // takes 32 copies of KH * ROWB bytes, KH times fewer than one row each (the per-lane copy issue is serial:
  // H200 ncu, B64 8K one head per warp, 55% of warp samples in that loop). With HT > 1 head tiles (large
  // groups, one kv head) the HT warps read the same tiles and split the 32 row copies of a step the same way
  // (the cp.async ring made each of them compute every slot's address: ~390 of a step's ~785 instructions).
  // Each stage has a "full" mbarrier (R = KH * HT expect-tx arrivals) and an "empty" one (R * 32 arrivals)
  // that a refill of the stage waits for.
  const bool shared = BULK && (KH > 1 || HT > 1);
  const int R = KH * HT;          // warps sharing the ring (the host keeps KH == 1 or HT == 1, and NWS == 1)
  const int sid = hh * HT + ht;   // this warp's share of a step's copies
  // lanes of each warp issuing one of them. Where 32 / R is computed changes the loop's schedule (H200, session 10,
  // A/B of the same launches): hoisted here, 16 heads per warp ran faster (MQA 64q/1kv B8 32K 92.2 against 96.5 us,
  // 64q/4kv B16 16K 137.5 against 139.5), 8 heads per warp slower (head_dim 64 B16 32K 269 against 255)
#if KVP_HPW == 16
  const int rlanes = 32 / R;
#endif
  const int ts = shared ? KH * ROWB : ROWB;  // token stride inside a tile (koff / voff)
  unsigned char* const smain = smem + BARB + KVP_SORT * KVP_SORT_BYTES;  // rings, then the slice-merge epilogue
  const int stage_bytes = BULK ? (shared ? KH * STEP_B : STEP_B) : SLOTS * SLOT_STRIDE;
  const int ring_bytes = STAGES * stage_bytes;
  unsigned char* ring = smain + (shared ? 0 : (hh * NWS + ws) * ring_bytes);
  const u32 ring_sb = (u32)__cvta_generic_to_shared(ring);
  const u32 bar_s = (u32)__cvta_generic_to_shared(smem) + (shared ? 0 : (hh * NWS + ws) * STAGES * 8);
  const u32 empty_s = bar_s + KVP_MAX_STAGES * 8;  // (shared ring only)
  if (BULK) {
    if (shared) {
      if (threadIdx.x == 0) {
        for (int s = 0; s < STAGES; ++s) {
          mbar_init(bar_s + 8 * s, R);
          mbar_init(empty_s + 8 * s, R * 32);
        }
      }
      mbar_fence_init();
      __syncthreads();  // uniform: KH and HT are launch arguments
    } else {
      if (lane == 0)
        for (int s = 0; s < STAGES; ++s) mbar_init(bar_s + 8 * s, 1);
      mbar_fence_init();
      __syncwarp();
    }
  }
  const u32 ring_s = (u32)__cvta_generic_to_shared(ring) + lane * 16;
  const int bs = 1 << log2bs;
  const size_t row_stride = (size_t)Hkv * ROWB;
#if KVP_RUN
  // a step's rows are one run in the cache: all KV heads in this CTA, steps 16-aligned in pages of >= 16 tokens
  const bool run_ok = KH == Hkv && bs >= 16 && window == 0 && (c_lo & 15) == 0;
#endif
  const unsigned char* kbase = kc + (size_t)kvh * ROWB + j * 16;         // + 64 * i: K chunk j + 4i
  const unsigned char* vbase = vc + (size_t)kvh * ROWB + r * VCW;        // + 8 * VCW * i: V chunk r + 8i
  // slots this warp copies: all of them, or its share when HT warps split the slice's copies
  u32 own = 0xffffffffu;
  if (HT > 1) {
    own = 0;
#pragma unroll
    for (int slot = 0; slot < SLOTS; ++slot)
      if (slot % HT == ht) own |= 1u << slot;
  }

  // page of this lane's row (lane & 15) for local step k; loaded one step ahead
  auto load_page = [&](int k) -> int {
    const int pos = step_base(k) + (lane & 15);
    return (k < nloc && pos < c_hi) ? __ldg(btrow + (pos >> log2bs)) : 0;
  };
  int pg = (KVP_EARLY_PAGE && window == 0 && !sorted) ? ((nloc > 0 && pos0 < c_hi) ? pg0 : 0) : load_page(0);
  int wstage = 0;  // ring stage the next issue writes

  auto issue = [&](int k) {
    if constexpr (BULK != 0) {
      // one whole row per lane: lane t < 16 K of token t, lane 16 + t V of token t
      const int base = step_base(k);
      const int t = lane & 15;
      const int pos = base + t;
      const int ridx = pg * bs + (pos & (bs - 1));
      pg = load_page(k + 1);
      const u32 bar = bar_s + 8 * wstage;
      const u32 tile = ring_sb + wstage * stage_bytes;
      if (++wstage == STAGES) wstage = 0;
#if KVP_RUN
      if (shared && run_ok) {
        // the step's tokens are one run of rows in one page: warp 0's lanes 0 and 1 copy K and V, the others arrive
        const int n = min(16, c_hi - base);
        const int r0 = __shfl_sync(FULL, ridx, 0);  // row of the step's first token
        if (lane == 0) {
          if (sid == 0) mbar_arrive_tx(bar, 2u * (u32)(n * ts));
          else mbar_arrive(bar);
        }
        __syncwarp();
        if (sid == 0 && lane < 2) {
          const unsigned char* src = (lane == 0 ? kc : vc) + (size_t)blockIdx.y * KH * ROWB + (size_t)r0 * row_stride;
          bulk_g2s_once(tile + (lane == 0 ? koff(0, ts) : voff(0, ts)), src, (u32)(n * ts), bar);
        }
        return;
      }
#endif
      if (shared) {
        // copy c = sid + R * lane (lanes < 32 / R, see rlanes): token c & 15, K (c < 16) or V, all KH heads at once
        const int c = sid + R * lane;
        const int tc = c & 15;
        const int rc = __shfl_sync(FULL, ridx, tc);
#if KVP_HPW == 16
        const bool ok = lane < rlanes && base + tc < c_hi;
#else
        const bool ok = lane < 32 / R && base + tc < c_hi;
#endif
        const u32 n = __popc(__ballot_sync(FULL, ok));
        if (lane == 0) mbar_arrive_tx(bar, n * (u32)ts);
        __syncwarp();
        if (ok) {
          const unsigned char* src = (c < 16 ? kc : vc) + (size_t)blockIdx.y * KH * ROWB + (size_t)rc * row_stride;
          bulk_g2s_once(tile + (c < 16 ? koff(tc, ts) : voff(tc, ts)), src, (u32)ts, bar);
        }
        return;
      }
      if (lane == 0) mbar_arrive_tx(bar, (u32)min(16, c_hi - base) * (2 * ROWB));
      __syncwarp();
      if (pos < c_hi) {
        const unsigned char* src = (lane < 16 ? kc : vc) + (size_t)kvh * ROWB + (size_t)ridx * row_stride;
        bulk_g2s_once(tile + (lane < 16 ? koff(t, ts) : voff(t, ts)), src, ROWB, bar);
      }
      return;
    }
    const int pos = step_base(k) + (lane & 15);
    const int ridx = pos < c_hi ? pg * bs + (pos & (bs - 1)) : -1;
    pg = load_page(k + 1);
    int rows[6];
    rows[0] = __shfl_sync(FULL, ridx, r);
    rows[1] = __shfl_sync(FULL, ridx, r + 8);
    rows[2] = __shfl_sync(FULL, ridx, 2 * j);
    rows[3] = __shfl_sync(FULL, ridx, 2 * j + 1);
    rows[4] = __shfl_sync(FULL, ridx, 2 * j + 8);
    rows[5] = __shfl_sync(FULL, ridx, 2 * j + 9);
    const u32 dst = ring_s + wstage * (SLOTS * SLOT_STRIDE);
    if (++wstage == STAGES) wstage = 0;
    if (KCOAL) {
      // K tile: 16 rows x ROWB bytes; copy instruction i covers flat chunks 32i .. 32i+31, i.e.
      // whole rows; chunk c of row t lands at c ^ ((t & 1) * 4) so the fragment reads below
      // (rows 2p, 2p+1 x 4 chunks per 8-lane phase) hit distinct banks
      const u32 kdst = dst - lane * 16;
#pragma unroll
      for (int i = 0; i < 2 * KCH; ++i) {
        const int f = i * 32 + lane;
        const int t = f / NCK, c = f % NCK;
        const int row = __shfl_sync(FULL, ridx, t);
        const int sw = NCK >= 8 ? (t & 1) * 4 : 0;
        const unsigned char* src = kc + (size_t)kvh * ROWB + (size_t)max(row, 0) * row_stride + c * 16;
        if (own & (1u << i)) cp_async16(kdst + t * ROWB + (c ^ sw) * 16, src, row >= 0 ? 16 : 0);
      }
    } else {
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        // rows past the end copy nothing (src-size 0 zero-fills) from a valid address
        const unsigned char* src = kbase + (size_t)max(rows[hr], 0) * row_stride;
        const int n = rows[hr] >= 0 ? 16 : 0;
#pragma unroll
        for (int i = 0; i < KCH; ++i) {
          const int slot = hr * KCH + i;
          if (own & (1u << slot)) cp_async16(dst + slot * SLOT_STRIDE, src + 64 * i, n);
        }
      }
    }
#pragma unroll
    for (int qq = 0; qq < 4; ++qq) {
      const unsigned char* src = vbase + (size_t)max(rows[2 + qq], 0) * row_stride;
      const int n = rows[2 + qq] >= 0 ? VCW : 0;
#pragma unroll
      for (int i = 0; i < VCH; ++i) {
        const int slot = 2 * KCH + qq * VCH + i;
        if (own & (1u << slot)) {
          if (VCW == 16) cp_async16(dst + slot * SLOT_STRIDE, src + 8 * VCW * i, n);
          else cp_async8(dst + slot * SLOT_STRIDE, src + 8 * VCW * i, n);
        }
      }
    }
  };

  for (int k = 0; k < STAGES - 1; ++k) {
    if (k < nloc) issue(k);
    if (!BULK) cp_commit();
  }

  int rstage = 0;  // ring stage step k reads
  u32 rphase = 0;  // (bulk) parity of that stage's mbarrier phase
  for (int k = 0; k < nloc; ++k) {
    if (BULK) {
      mbar_wait(bar_s + 8 * rstage, rphase);
      if (KVP_TRACE && threadIdx.x == 0 && k == 0) t_first = globaltimer();
      __syncwarp();  // every lane is done reading step k - 1, whose stage the next issue refills
      if (shared && k > 0 && k + STAGES - 1 < nloc) {
        // ... and so has every lane of the other warps of a shared ring (step k - 1's stage is the one refilled)
        // step k - 1's stage and phase parity, from step k's (no division by the run-time STAGES)
        const int s_prev = rstage == 0 ? STAGES - 1 : rstage - 1;
        mbar_wait(empty_s + 8 * s_prev, rstage == 0 ? rphase ^ 1u : rphase);
      }
    } else {
      cp_wait(STAGES - 2);
      // HT warps share the slice's ring: their copies of step k are done and nobody still reads
      // the slot that the next issue overwrites
      if (HT > 1) bar_named(1 + ws, HT * 32);
      else if (KCOAL) __syncwarp();  // lanes read K chunks that other lanes copied
    }
    if (k + STAGES - 1 < nloc) issue(k + STAGES - 1);
    if (!BULK) cp_commit();

    const unsigned char* st = ring + rstage * stage_bytes + (shared ? hh * ROWB : 0);
    const uint4* sl = reinterpret_cast<const uint4*>(st) + lane;
    const u32 read_stage = rstage;
    if (++rstage == STAGES) {
      rstage = 0;
      rphase ^= 1u;
    }

#if KVP_HM
    {
      float sc[2][2][4] = {};
#pragma unroll
      for (int i = 0; i < KCH; ++i) {
        uint4 x0, x1;  // K chunk j + 4i of tokens r and r + 8 (as below)
        if (BULK) {
          x0 = *reinterpret_cast<const uint4*>(st + koff(r, ts) + (j + 4 * i) * 16);
          x1 = *reinterpret_cast<const uint4*>(st + koff(r + 8, ts) + (j + 4 * i) * 16);
        } else if (KCOAL) {
          const unsigned char* kt = reinterpret_cast<const unsigned char*>(sl - lane);
          const int pc = ((j + 4 * i) ^ (NCK >= 8 ? (r & 1) * 4 : 0)) * 16;
          x0 = *reinterpret_cast<const uint4*>(kt + r * ROWB + pc);
          x1 = *reinterpret_cast<const uint4*>(kt + (r + 8) * ROWB + pc);
        } else {
          x0 = sl[i * 32];
          x1 = sl[(KCH + i) * 32];
        }
        hm::qk_chunk(sc, hs.qa[i], x0, x1);
      }
      const int base = step_base(k);
      u32 pa[4];
      hm::softmax(hs, sc, base, j, c_hi, pa);
#pragma unroll
      for (int i = 0; i < VCH; ++i) {
        uint4 y0, y1, y2, y3;  // V rows 2j, 2j + 1, 2j + 8, 2j + 9 of chunk r + 8i (as below)
        if (BULK) {
          const unsigned char* vr = st + (r + 8 * i) * 16;
          y0 = *reinterpret_cast<const uint4*>(vr + voff(2 * j, ts));
          y1 = *reinterpret_cast<const uint4*>(vr + voff(2 * j + 1, ts));
          y2 = *reinterpret_cast<const uint4*>(vr + voff(2 * j + 8, ts));
          y3 = *reinterpret_cast<const uint4*>(vr + voff(2 * j + 9, ts));
          if (base + 16 > c_hi) {  // rows past the end were never copied (NaN x 0 = NaN)
            const uint4 z = make_uint4(0, 0, 0, 0);
            if (base + 2 * j >= c_hi) y0 = z;
            if (base + 2 * j + 1 >= c_hi) y1 = z;
            if (base + 2 * j + 8 >= c_hi) y2 = z;
            if (base + 2 * j + 9 >= c_hi) y3 = z;
          }
        } else {
          y0 = sl[(2 * KCH + 0 * VCH + i) * 32];
          y1 = sl[(2 * KCH + 1 * VCH + i) * 32];
          y2 = sl[(2 * KCH + 2 * VCH + i) * 32];
          y3 = sl[(2 * KCH + 3 * VCH + i) * 32];
        }
        hm::pv_chunk(hs, pa, i, y0, y1, y2, y3);
      }
    }
#else
    // ---- S^T = K Q^T (rows: tokens r, r+8; cols: heads 2j, 2j+1 of each n-tile)
    float s[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int i = 0; i < KCH; ++i) {
      uint4 x0, x1;
      if (BULK) {
        x0 = *reinterpret_cast<const uint4*>(st + koff(r, ts) + (j + 4 * i) * 16);
        x1 = *reinterpret_cast<const uint4*>(st + koff(r, ts) + 4 * ts + (j + 4 * i) * 16);  // koff(r + 8)
      } else if (KCOAL) {
        const unsigned char* kt = reinterpret_cast<const unsigned char*>(sl - lane);
        const int pc = ((j + 4 * i) ^ (NCK >= 8 ? (r & 1) * 4 : 0)) * 16;
        x0 = *reinterpret_cast<const uint4*>(kt + r * ROWB + pc);
        x1 = *reinterpret_cast<const uint4*>(kt + (r + 8) * ROWB + pc);
      } else {
        x0 = sl[i * 32];
        x1 = sl[(KCH + i) * 32];
      }
#if KVP_KVT != 2
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        mma16816(s[nt], x0.x, x1.x, x0.y, x1.y, qf[2 * i][nt][0], qf[2 * i][nt][1]);
        mma16816(s[nt], x0.z, x1.z, x0.w, x1.w, qf[2 * i + 1][nt][0], qf[2 * i + 1][nt][1]);
      }
#else
      const u32 w0[4] = {x0.x, x0.y, x0.z, x0.w};
      const u32 w1[4] = {x1.x, x1.y, x1.z, x1.w};
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const u32 a0 = e4m3x2_to_h2(w0[t]), a1 = e4m3x2_to_h2(w1[t]);
        const u32 a2 = e4m3x2_to_h2(w0[t] >> 16), a3 = e4m3x2_to_h2(w1[t] >> 16);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma16816(s[nt], a0, a1, a2, a3, qf[4 * i + t][nt][0], qf[4 * i + t][nt][1]);
      }
#endif
    }

    // ---- online softmax, one rescale per 16 tokens (KVP_LAZY: only when some head's max moved)
    const int base = step_base(k);
    const bool v0 = base + r < c_hi, v1 = base + r + 8 < c_hi;
    u32 pb[NT][2];
    float al[NT][2];
    bool moved = false;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      float p0[2], p1[2];
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const float t0 = v0 ? s[nt][c] * csc[nt][c] : KVP_NEG_INF;
        const float t1 = v1 ? s[nt][2 + c] * csc[nt][c] : KVP_NEG_INF;
        float mx = fmaxf(t0, t1);
        mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 4));
        mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 8));
        mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 16));
        const float mo = m[nt][c];
        const float mn = (!KVP_LAZY || mx > mo + 8.f) ? fmaxf(mo, mx) : mo;
        const float mu = (mn == KVP_NEG_INF) ? 0.f : mn;
        al[nt][c] = ex2(mo - mu);  // exactly 1 when the max stayed
        moved |= mn != mo;
        p0[c] = ex2(t0 - mu);
        p1[c] = ex2(t1 - mu);
        l[nt][c] = l[nt][c] * al[nt][c] + p0[c] + p1[c];
        m[nt][c] = mn;
#if !KVP_LAZY
        // interleaved with the exponentials' latency (after the P fragments: 6% slower at head_dim 64, H200)
#pragma unroll
        for (int u = 0; u < MT; ++u) {
          o[u][nt][c] *= al[nt][c];
          o[u][nt][2 + c] *= al[nt][c];
        }
#endif
      }
      // P (tokens x heads) -> P^T fragments: B operand of O^T = V^T P^T
      pb[nt][0] = movtrans(pack_mma(p0[0], p0[1]));
      pb[nt][1] = movtrans(pack_mma(p1[0], p1[1]));
    }
#if KVP_LAZY
    if (__any_sync(FULL, moved)) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c)
#pragma unroll
          for (int u = 0; u < MT; ++u) {
            o[u][nt][c] *= al[nt][c];
            o[u][nt][2 + c] *= al[nt][c];
          }
    }
#endif

    // ---- O^T += V^T P^T; lane (r, j) holds V rows 2j, 2j+1, 2j+8, 2j+9 of its chunks
#pragma unroll
    for (int i = 0; i < VCH; ++i) {
      uint4 y0, y1, y2, y3;
      if (BULK) {
        // rows 2j, 2j+1, 2j+8, 2j+9, chunk r + 8i
        const unsigned char* vr = st + (r + 8 * i) * 16;
        y0 = *reinterpret_cast<const uint4*>(vr + voff(2 * j, ts));
        y1 = *reinterpret_cast<const uint4*>(vr + voff(2 * j + 1, ts));
        y2 = *reinterpret_cast<const uint4*>(vr + voff(2 * j + 8, ts));
        y3 = *reinterpret_cast<const uint4*>(vr + voff(2 * j + 9, ts));
        if (base + 16 > c_hi) {  // last step: rows past the end were never copied (NaN x 0 = NaN)
          const uint4 z = make_uint4(0, 0, 0, 0);
          if (base + 2 * j >= c_hi) y0 = z;
          if (base + 2 * j + 1 >= c_hi) y1 = z;
          if (base + 2 * j + 8 >= c_hi) y2 = z;
          if (base + 2 * j + 9 >= c_hi) y3 = z;
        }
      } else {
        y0 = sl[(2 * KCH + 0 * VCH + i) * 32];
        y1 = sl[(2 * KCH + 1 * VCH + i) * 32];
        y2 = sl[(2 * KCH + 2 * VCH + i) * 32];
        y3 = sl[(2 * KCH + 3 * VCH + i) * 32];
      }
      const u32 w0[4] = {y0.x, y0.y, y0.z, y0.w};
      const u32 w1[4] = {y1.x, y1.y, y1.z, y1.w};
      const u32 w2[4] = {y2.x, y2.y, y2.z, y2.w};
      const u32 w3[4] = {y3.x, y3.y, y3.z, y3.w};
#if KVP_KVT != 2
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const int u = i * (EV / 2) + w;
        const u32 a0 = prmt(w0[w], w1[w], 0x5410), a1 = prmt(w0[w], w1[w], 0x7632);
        const u32 a2 = prmt(w2[w], w3[w], 0x5410), a3 = prmt(w2[w], w3[w], 0x7632);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma16816(o[u][nt], a0, a1, a2, a3, pb[nt][0], pb[nt][1]);
      }
#else
#pragma unroll
      for (int w = 0; w < VCW / 4; ++w) {
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int u = i * (EV / 2) + 2 * w + hh;
          const u32 sel = hh ? 0x7362 : 0x5140;
          const u32 e = prmt(w0[w], w1[w], sel), f = prmt(w2[w], w3[w], sel);
          const u32 a0 = e4m3x2_to_h2(e), a1 = e4m3x2_to_h2(e >> 16);
          const u32 a2 = e4m3x2_to_h2(f), a3 = e4m3x2_to_h2(f >> 16);
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) mma16816(o[u][nt], a0, a1, a2, a3, pb[nt][0], pb[nt][1]);
        }
      }
#endif
    }
#endif  // KVP_HM
    // this lane is done reading the stage. Every lane arrives (count KH * 32): lane 0 arriving after __syncwarp
    // is ordered the same by the PTX rules, but racecheck does not carry __syncwarp into the mbarrier (WAR
    // reports against the refill, H200); a named barrier in its place measured 11% slower at head_dim 64.
    if (shared) mbar_arrive(empty_s + 8 * read_stage);
  }
  if (!BULK) cp_wait(0);  // (bulk: every issued step was waited for)
  // A slice with fewer steps than slice 0 (a sequence shorter than NWS steps) passes its named barrier as
  // often as slice 0 does, so every warp reaches the epilogue's __syncthreads after the same number of
  // barriers. Barrier ids are independent, so this is not needed for correctness; racecheck reported a RAW
  // hazard across the epilogue's __syncthreads only in CTAs whose slices had unequal counts (H200, 2 of 6
  // runs of 32q/1kv, lengths [250, 1]) and none once the counts were equal (RESULTS.md, racecheck).
  if (!BULK && HT > 1)
    for (int k = nloc; k < (nsteps + NWS - 1) / NWS; ++k) bar_named(1 + ws, HT * 32);
  // let the merge (or the next kernel) be scheduled now, not at the start: its CTAs would sit on the
  // SMs waiting for this grid the whole time (measured: head_dim 64, B=16, 7% slower with an early release)
  pdl_release();
  if (KVP_TRACE && trace != nullptr && threadIdx.x == 0) {  // (a trace plan may run without a buffer)
    unsigned long long* tr = trace + 4 * (((size_t)b * gridDim.y + blockIdx.y) * gridDim.x + split);
    u32 smid;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(smid));
    tr[0] = t_start;
    tr[1] = t_first;
    tr[2] = globaltimer();
    tr[3] = smid;
  }

  // ---- epilogue
#if KVP_HM
  hm::store(hs, G, ht, r, j, (size_t)b * Hq + (size_t)kvh * G, nsplit, split, vscale, out, opart, lse);
#else
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      float x = l[nt][c];
      x += __shfl_xor_sync(FULL, x, 4);
      x += __shfl_xor_sync(FULL, x, 8);
      x += __shfl_xor_sync(FULL, x, 16);
      l[nt][c] = x;
    }

  if (NWS == 1) {
    // every head of this warp is complete: write straight from registers
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int hl = ht * HPW + nt * 8 + 2 * j + c;
        if (hl >= G) continue;
        const size_t rowq = (size_t)b * Hq + (size_t)kvh * G + hl;
        const float L = l[nt][c];
        const float inv = L > 0.f ? vscale / L : 0.f;
        // m-tiles u .. u + 3 (u % 4 == 0) of row r hold 8 consecutive dims: one 16-byte store, or two
#pragma unroll
        for (int u = 0; u < MT; u += 4) {
          const int d = vdim(r, u);
          float v[8];
#pragma unroll
          for (int t = 0; t < 4; ++t) {
            v[2 * t] = o[u + t][nt][c] * inv;
            v[2 * t + 1] = o[u + t][nt][2 + c] * inv;
          }
          store_dims8(out, opart, rowq, nsplit, split, d, v);
        }
        if (nsplit > 1 && r == 0) lse[rowq * nsplit + split] = L > 0.f ? m[nt][c] + log2f(L) : KVP_NEG_INF;
      }
  } else {
  // several token slices: merge them through shared memory (the ring is free now)
  __syncthreads();
  const int HH = HT * HPW;
  float* so = reinterpret_cast<float*>(smain);  // [NWS][HH][D] (after the mbarriers)
  float* smx = so + (size_t)NWS * HH * D;       // [NWS][HH]
  float* ssum = smx + NWS * HH;                 // [NWS][HH]
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const int hl = ht * HPW + nt * 8 + 2 * j + c;
      float* dst = so + ((size_t)ws * HH + hl) * D;
#pragma unroll
      for (int u = 0; u < MT; ++u) {
        *reinterpret_cast<float2*>(dst + vdim(r, u)) = make_float2(o[u][nt][c], o[u][nt][2 + c]);
      }
      if (r == 0) {
        smx[ws * HH + hl] = m[nt][c];
        ssum[ws * HH + hl] = l[nt][c];
      }
    }
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * (D / 2); idx += blockDim.x) {
    const int h = idx / (D / 2), d = (idx - h * (D / 2)) * 2;
    float M = KVP_NEG_INF;
    for (int w = 0; w < NWS; ++w) M = fmaxf(M, smx[w * HH + h]);
    float L = 0.f, a = 0.f, bb = 0.f;
    if (M != KVP_NEG_INF) {
      for (int w = 0; w < NWS; ++w) {
        const float mw = smx[w * HH + h];
        if (mw == KVP_NEG_INF) continue;
        const float e = ex2(mw - M);
        L += e * ssum[w * HH + h];
        const float2 ov = *reinterpret_cast<const float2*>(so + ((size_t)w * HH + h) * D + d);
        a += e * ov.x;
        bb += e * ov.y;
      }
    }
    const float inv = L > 0.f ? vscale / L : 0.f;
    const size_t rowq = (size_t)b * Hq + (size_t)kvh * G + h;
    if (nsplit == 1) {
      *reinterpret_cast<u32*>(out + rowq * D + d) = pack_out(a * inv, bb * inv);
    } else {
      *reinterpret_cast<float2*>(opart + (rowq * nsplit + split) * D + d) = make_float2(a * inv, bb * inv);
      if (d == 0) lse[rowq * nsplit + split] = L > 0.f ? M + log2f(L) : KVP_NEG_INF;
    }
  }
  }  // NWS > 1
#endif  // KVP_HM

  // ---- fused split merge (counters != null): the last CTA of this (sequence, kv-head group) to
  // finish merges every split's partials (threadfence-reduction pattern; partials are read through
  // L2 with ld.cg since other SMs wrote them) and re-arms the counter to 0 for the next launch.
  if (nsplit > 1 && counters != nullptr) {
    int* const ctr = counters + (size_t)b * gridDim.y + blockIdx.y;
    __threadfence();
    int last = 0;
    __syncthreads();  // every thread's partials are written and fenced
    if (threadIdx.x == 0) last = atomicAdd(ctr, 1) == nsplit - 1;
    if (!__syncthreads_or(last)) return;
    __threadfence();
    constexpr int TPR = D / 4;
    const int nrows = KH * G;
    const size_t row0 = (size_t)b * Hq + (size_t)blockIdx.y * KH * G;
    for (int idx = threadIdx.x; idx < nrows * TPR; idx += blockDim.x) {
      const int rr = idx / TPR, t = idx - rr * TPR;
      const size_t row = row0 + rr;
      const float* ls = lse + row * nsplit;
      float M = KVP_NEG_INF;
      for (int s2 = 0; s2 < nsplit; ++s2) M = fmaxf(M, __ldcg(ls + s2));
      float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
      float den = 0.f;
      if (M != KVP_NEG_INF) {
        const float4* op = reinterpret_cast<const float4*>(opart + row * nsplit * D) + t;
        for (int s2 = 0; s2 < nsplit; ++s2) {
          const float x = __ldcg(ls + s2);
          if (x == KVP_NEG_INF) continue;  // empty split
          const float w = ex2(x - M);
          const float4 v = __ldcg(op + (size_t)s2 * TPR);
          acc.x += w * v.x;
          acc.y += w * v.y;
          acc.z += w * v.z;
          acc.w += w * v.w;
          den += w;
        }
      }
      const float inv = den > 0.f ? 1.f / den : 0.f;
      uint2 pk;
      pk.x = pack_out(acc.x * inv, acc.y * inv);
      pk.y = pack_out(acc.z * inv, acc.w * inv);
      *reinterpret_cast<uint2*>(out + row * D + t * 4) = pk;
    }
    if (threadIdx.x == 0) *ctr = 0;
  }
}

// split merge: one CTA per (sequence, head) row (kvp_common.cuh)
extern "C" __global__ void __launch_bounds__(256)
kvp_merge(const float* __restrict__ opart, const float* __restrict__ lse, unsigned short* __restrict__ out,
          int rows, int nsplit) {
  merge_split_rows<D, KVP_QT == 1>(opart, lse, out, nsplit);
}

// the same for at most KVP_MERGE_FEW splits: 256 / (D / 4) rows per CTA (kvp_common.cuh)
extern "C" __global__ void __launch_bounds__(256)
kvp_merge_few(const float* __restrict__ opart, const float* __restrict__ lse, unsigned short* __restrict__ out,
              int rows, int nsplit) {
  merge_few_splits<D, KVP_QT == 1, KVP_MERGE_FEW>(opart, lse, out, rows, nsplit);
}
