// kvplan absorbed-MLA paged decode (DeepSeek V2/V3/R1, Kimi K2), compiled at run time with NVRTC.
//
// After weight absorption, MLA decode is MQA over one latent row per token: 512 "nope" dims (the
// values too) + 64 rope dims. score(h, t) = q_nope[h] . c[t, :512] + q_rope[h] . c[t, 512:];
// out[h] = softmax_t(score * scale) . c[t, :512].
//
// One CTA per (split, group of HG query heads, sequence), 8 warps. Bf16 latents at <= 16 heads on sm_90 take the
// heads-in-M step (KVP_MLA_HM, paged_mla_hm.cuh: the 16 heads as the MMAs' M, one barrier a step; with KVP_MLA_TMA,
// the default under the driver launcher, one tensor copy per box of rows instead of a copy per row); the copies and
// the split merge below serve both.
// The head-tile step (every other case), per pipeline step of TOK tokens:
//   QK   S^T = C Q^T on the tensor cores (m16n8k16: 16 tokens x 8 heads x 16 dims); units of
//        (16-token m-tile, 8-head n-tile) are dealt round-robin to the warps (fewer units than warps:
//        several warps share a unit's k-groups, see KSPLIT); q sits in shared memory.
//        Lanes own whole chunks of 8 dims of a latent row and of the matching q row (a dot product
//        does not care which dims a lane holds), so every load is one 16-byte (8 for fp8) word.
//   softmax  per-head maxima of the step meet in shared memory (barrier A); every warp derives the
//        same running max, P = 2^(s - max) goes to shared memory as bf16 [head][token] (barrier B).
//   PV   O^T = C[:, :512]^T P^T: warp w owns value dims [64w, 64w + 64) for all HG heads
//        (4 m-tiles of 16 dims x HG/8 n-tiles), so the latent is read once per CTA and O stays in
//        registers. The O^T A fragment comes from 16-byte words of 4 token rows (prmt pairs them).
// Splits of one sequence write fp32 partials + log-sum-exp and kvp_mla_merge combines them.
//
// Latent rows are copied global -> shared whole: sm_90 with one cp.async.bulk per row completing on
// the stage's mbarrier (each warp issues its TOK / 8 rows, page ids loaded one step ahead; thread 0
// posts the step's bytes before barrier A), older GPUs with 16-byte cp.async from every thread. Rows land at padded offsets (limits.py, "MLA shared memory") that keep
// both fragment reads free of bank conflicts. Rows past the sequence end are never copied: their
// scores are masked by a select and their value words zeroed in registers (NaN x 0 = NaN).
//
// fp8 e4m3 latents: one scale per tensor (kv_scale) folded into the score scale and the output;
// each 8-byte word is widened to bf16 in registers (exact) before the bf16 MMAs.
//
// Config macros (build.py; sizes from limits.py): KVP_KVT (1 bf16, 2 fp8 e4m3), KVP_MLA_BULK,
// KVP_MLA_HG, KVP_MLA_TOK, KVP_MLA_* layout sizes, KVP_MBAR_AREA, KVP_MAX_STAGES.

#include "kvp_common.cuh"

#if !defined(KVP_MLA_HG) || !defined(KVP_MLA_STAGE_BYTES) || !defined(KVP_MLA_ROW_STRIDE)
#error "compile through kvplan.kernels.build: the layout sizes come from limits.py"
#endif
#ifndef KVP_MLA_BULK
#define KVP_MLA_BULK 0
#endif
#ifndef KVP_MLA_HM
#define KVP_MLA_HM 0
#endif
#ifndef KVP_MLA_LAZY
#define KVP_MLA_LAZY 0
#endif
#ifndef KVP_MLA_TMA
#define KVP_MLA_TMA 0  // heads in M: one tensor copy per step through a tensor map (paged_mla_hm.cuh, "TMA")
#endif
#if KVP_MLA_TMA
#define KVP_MLA_TMAP_PARAM , const __grid_constant__ kvp::mla::TmapParam tmap
#else
#define KVP_MLA_TMAP_PARAM
#endif
#if KVP_MLA_BULK && defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#undef KVP_MLA_BULK
#define KVP_MLA_BULK 0  // bulk copies need sm_90 (the host never asks for them elsewhere)
#endif

namespace kvp {
namespace mla {

constexpr int RANK = KVP_MLA_RANK;                 // 512 value dims
constexpr int ROW = KVP_MLA_RANK + KVP_MLA_ROPE;   // 576 dims per latent row
constexpr int ES = (KVP_KVT == 2) ? 1 : 2;         // latent element bytes
constexpr int ROWB = ROW * ES;
constexpr int CW = 8 * ES;                          // bytes of one 8-dim chunk
constexpr int HG = KVP_MLA_HG;                      // query heads per CTA
constexpr int NT = HG / 8;                          // head n-tiles
constexpr int TOK = KVP_MLA_TOK;                    // tokens per stage
constexpr int MTI = TOK / 16;                       // token m-tiles per stage
constexpr int NW = KVP_MLA_WARPS;
constexpr int UNITS = MTI * NT;                     // (m-tile, n-tile) QK units per step
constexpr int UPW = (UNITS + NW - 1) / NW;          // units per warp (warps past UNITS idle in QK)
// Fewer units than warps (16 heads x 32 tokens: 4): KSPLIT warps share a unit, each over 1/KSPLIT of the k-groups,
// and meet at the unit's named barrier (1 + unit) where the owner (warp < UNITS) adds the others' partial
// scores from shared memory. Otherwise half the warps idled through QK while the rest ran it (H200, ncu, 16
// heads B32 8K: 49% of warp cycles stalled at the CTA barriers).
constexpr int KSPLIT = (UNITS < NW && NW % UNITS == 0) ? NW / UNITS : 1;
constexpr int KG = ROW / 32;                        // QK k-groups of 32 dims (4 chunks x 8 dims)
constexpr int QS = KVP_MLA_Q_STRIDE;
constexpr int PS = KVP_MLA_P_STRIDE;
constexpr int STAGE_B = KVP_MLA_STAGE_BYTES;
constexpr int OFF_Q = KVP_MBAR_AREA;
constexpr int OFF_P = OFF_Q + HG * QS;
constexpr int OFF_MAX = OFF_P + HG * PS;
constexpr int OFF_SUM = OFF_MAX + MTI * HG * 4;
constexpr int OFF_X = OFF_SUM + MTI * HG * 4;  // k-split partial scores: [warp - UNITS][lane][4] fp32
constexpr int OFF_ST = KVP_MLA_STAGE_OFFSET;

static_assert(RANK == 64 * NW, "each warp owns 64 value dims");
static_assert(ROW % 32 == 0 && HG % 8 == 0 && TOK % 16 == 0, "tile shapes");
static_assert(NW % MTI == 0, "a warp's QK units share one token m-tile");
static_assert(KSPLIT == 1 || UPW == 1, "k-split QK: one unit per warp");
#if !KVP_MLA_HM  // (heads in M lays out its own fixed area: paged_mla_hm.cuh)
static_assert((KSPLIT == 1 ? 0 : (NW - UNITS) * 512) == KVP_MLA_X_BYTES, "limits.mla_x_bytes disagrees");
static_assert(OFF_X + KVP_MLA_X_BYTES <= OFF_ST, "limits.mla_fixed_smem disagrees with the layout");
#endif
static_assert(OFF_ST % 128 == 0 && STAGE_B % 128 == 0, "stages start on 128-byte lines");
static_assert(QS >= ROW * 2 && PS >= 2 * TOK, "row strides");
static_assert(KVP_MAX_STAGES * 8 <= KVP_MBAR_AREA, "mbarriers fit their area");

// latent tile: row t at STRIDE t + SKEW ((t >> SHIFT) & MASK) + ODD (t & 1) (limits.mla_row_offset)
__device__ __forceinline__ int row_off(int t) {
#ifdef KVP_MLA_ROW_MASK
  return KVP_MLA_ROW_STRIDE * t + KVP_MLA_ROW_SKEW * ((t >> KVP_MLA_ROW_SHIFT) & KVP_MLA_ROW_MASK) +
         KVP_MLA_ROW_ODD * (t & 1);
#else
  return KVP_MLA_ROW_STRIDE * t + KVP_MLA_ROW_SKEW * (t >> KVP_MLA_ROW_SHIFT) + KVP_MLA_ROW_ODD * (t & 1);
#endif
}
static_assert(KVP_MLA_ROW_STRIDE >= ROWB, "rows may not overlap");

__device__ __forceinline__ void mma_bf16(float (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// two e4m3 (low 16 bits of x) -> bf16x2, exactly (every e4m3 value is a bf16 value)
__device__ __forceinline__ u32 e4m3x2_to_bf2(u32 x) {
  const u32 h = e4m3x2_to_h2(x);
  const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&h));
  return pack2<true>(f.x, f.y);
}

// one 8-dim chunk of a latent row in shared memory as 4 words of bf16 pairs (dims 0-1, 2-3, 4-5, 6-7)
__device__ __forceinline__ uint4 chunk8(const unsigned char* p) {
#if KVP_KVT == 2
  const uint2 w = *reinterpret_cast<const uint2*>(p);
  return make_uint4(e4m3x2_to_bf2(w.x), e4m3x2_to_bf2(w.x >> 16), e4m3x2_to_bf2(w.y), e4m3x2_to_bf2(w.y >> 16));
#else
  return *reinterpret_cast<const uint4*>(p);
#endif
}

#if KVP_MLA_HM
#include "paged_mla_hm.cuh"
#endif

}  // namespace mla
}  // namespace kvp

using namespace kvp;
using namespace kvp::mla;

#if KVP_MLA_HM
#define KVP_MLA_MIN_CTAS 2  // two CTAs per SM hide each other's barrier (128 registers)
#else
#define KVP_MLA_MIN_CTAS 1
#endif

extern "C" __global__ void __launch_bounds__(KVP_MLA_WARPS * 32, KVP_MLA_MIN_CTAS)
kvp_mla_decode(const unsigned short* __restrict__ qn,   // [B, Hq, 512] bf16 (absorbed q_nope)
               const unsigned short* __restrict__ qr,   // [B, Hq, 64] bf16
               const unsigned char* __restrict__ lat,   // [NB, BS, 576] bf16 | fp8
               const int* __restrict__ bt,              // [B, bt_stride]
               const int* __restrict__ seqlens,         // [B]
               unsigned short* __restrict__ out,        // [B, Hq, 512] bf16         (one split)
               float* __restrict__ opart,               // [B, Hq, splits, 512]      (several splits)
               float* __restrict__ lse,                 // [B, Hq, splits] (log2 domain)
               int Hq, int STAGES, int chunk, int bt_stride, int log2bs, float cbase, float vscale KVP_MLA_TMAP_PARAM) {
  extern __shared__ __align__(128) unsigned char smem[];
  const int split = blockIdx.x, nsplit = gridDim.x, hg0 = blockIdx.y * HG, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int r = lane >> 2, j = lane & 3;
  const u32 FULL = 0xffffffffu;
  const u32 sbase = (u32)__cvta_generic_to_shared(smem);
  unsigned short* const sq = reinterpret_cast<unsigned short*>(smem + OFF_Q);
  unsigned short* const sp = reinterpret_cast<unsigned short*>(smem + OFF_P);
  float* const smax = reinterpret_cast<float*>(smem + OFF_MAX);  // [MTI][HG]
  float* const ssum = reinterpret_cast<float*>(smem + OFF_SUM);  // [MTI][HG]

  pdl_wait();
  const int len = seqlens[b];
  const int2 span = split_span(split, chunk, len);
  const int c_lo = span.x, c_hi = span.y;
  const int nsteps = (c_hi - c_lo + TOK - 1) / TOK;
  const int* btrow = bt + (size_t)b * bt_stride;
  const int bs = 1 << log2bs;

#if KVP_MLA_BULK
  // bytes the copies of step k bring (posted on stage s's mbarrier before any warp issues them)
  auto expect_at = [&](int k, int s) { mbar_arrive_tx(sbase + 8 * s, (u32)min(TOK, c_hi - c_lo - k * TOK) * ROWB); };
  auto expect = [&](int k) { expect_at(k, k % STAGES); };
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) mbar_init(sbase + 8 * s, 1);
    mbar_fence_init();
    for (int k = 0; k < STAGES - 1 && k < nsteps && !KVP_MLA_TMA; ++k) expect(k);
  }
#if KVP_MLA_TMA
  // thread 0 copies a step as TOK / T boxes of T = min(block size, TOK) rows (a box never crosses a page) into
  // stages that start on 1,024-byte boundaries (the 128-byte swizzle's period); boxes past the end are not copied.
  // The first steps are issued before q is staged (their stages and q's tile do not overlap; only thread 0 touches
  // the mbarriers until the barrier after staging), so q's loads and the first data's latency overlap.
  const int OST = (int)(((sbase + OFF_ST + 1023u) & ~1023u) - sbase), tbox = min(bs, TOK);
  int tpg0 = 0, tpg1 = 0;  // page ids of the next step's boxes
  auto tma_pages = [&](int k) {
    const int pos = c_lo + k * TOK;
    tpg0 = pos < c_hi ? __ldg(btrow + (pos >> log2bs)) : 0;
    tpg1 = tbox < TOK && pos + tbox < c_hi ? __ldg(btrow + ((pos + tbox) >> log2bs)) : 0;
  };
  auto tma_issue = [&](int k, int s) {
    const int pos = c_lo + k * TOK;
    const bool two = tbox < TOK && pos + tbox < c_hi;
    const u32 bar = sbase + 8 * s, dst = sbase + OST + s * STAGE_B;
    mbar_arrive_tx(bar, (u32)((two ? 2 : 1) * tbox * ROWB));
    tma_load_3d(dst, &tmap, tpg0 * bs + (pos & (bs - 1)), bar);
    if (two) tma_load_3d(dst + tbox * ROWB, &tmap, tpg1 * bs + ((pos + tbox) & (bs - 1)), bar);
    tma_pages(k + 1);
  };
  if (threadIdx.x == 0) {
    tma_pages(0);
    for (int k = 0; k < STAGES - 1 && k < nsteps; ++k) tma_issue(k, k);
  }
#endif
#endif
#if KVP_MLA_HM
  hm_stage_q(smem, qn, qr, b, hg0, Hq);
#else
  // q rows of this head group -> shared memory (heads past Hq are zero and never written out)
  for (int i = threadIdx.x; i < HG * (ROW / 8); i += NW * 32) {
    const int h = i / (ROW / 8), c = i - h * (ROW / 8);
    const int hq = hg0 + h;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (hq < Hq) {
      const size_t row = (size_t)b * Hq + hq;
      v = c < RANK / 8 ? *reinterpret_cast<const uint4*>(qn + row * RANK + c * 8)
                       : *reinterpret_cast<const uint4*>(qr + row * KVP_MLA_ROPE + (c - RANK / 8) * 8);
    }
    *reinterpret_cast<uint4*>(smem + OFF_Q + h * QS + c * 16) = v;
  }
#endif

  // ---- copies of step k into stage k % STAGES
#if KVP_MLA_BULK
  // Every warp copies its own TOK / NW rows of a step, one cp.async.bulk per lane: one warp issuing all of them
  // serialised 32 bulk-copy instructions between barriers A and B of every step while the other warps waited
  // (H200, ncu, 16 heads B32 8K: 33% of warp samples at the first read after barrier B).
  constexpr int RPW = TOK / NW;  // rows per warp per step
  static_assert(TOK % NW == 0 && RPW <= 32, "rows of a step split evenly over the warps");
  const int my_row = warp * RPW + lane;  // this lane's row of every step (lanes < RPW)
  int pg = 0;                            // page id of that row in the next step to issue, loaded one step ahead
  auto load_page = [&](int k) {
    const int pos = c_lo + k * TOK + my_row;
    pg = (k < nsteps && lane < RPW && pos < c_hi) ? __ldg(btrow + (pos >> log2bs)) : 0;
  };
  auto issue_at = [&](int k, int s) {  // every warp, after the step's bytes were posted on stage s (expect_at)
    const int pos = c_lo + k * TOK + my_row;
    if (lane < RPW && pos < c_hi) {
      const unsigned char* src = lat + ((size_t)pg * bs + (pos & (bs - 1))) * ROWB;
      bulk_g2s_once(sbase + OFF_ST + s * STAGE_B + row_off(my_row), src, ROWB, sbase + 8 * s);
    }
    load_page(k + 1);
  };
  auto issue = [&](int k) { issue_at(k, k % STAGES); };
  __syncthreads();  // mbarriers initialised and the first steps' bytes posted before any copy
#if !KVP_MLA_TMA
#if KVP_MLA_HM
  constexpr int OST = OFF_ST;
#endif
  load_page(0);
  for (int k = 0; k < STAGES - 1 && k < nsteps; ++k) issue(k);
#endif
#else
  auto issue = [&](int k) {  // every thread: 16-byte cp.async, rows past the end zero-filled
    if (k < nsteps) {
      const int base = c_lo + k * TOK;
      const u32 tile = sbase + OFF_ST + (k % STAGES) * STAGE_B;
      constexpr int CPR = ROWB / 16;
      for (int i = threadIdx.x; i < TOK * CPR; i += NW * 32) {
        const int t = i / CPR, c = i - t * CPR;
        const int pos = base + t;
        const bool ok = pos < c_hi;
        const int page = ok ? __ldg(btrow + (pos >> log2bs)) : 0;
        const unsigned char* src = ok ? lat + ((size_t)page * bs + (pos & (bs - 1))) * ROWB + c * 16 : lat;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
                     ::"r"(tile + row_off(t) + c * 16), "l"(src), "r"(ok ? 16 : 0) : "memory");
      }
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  };
  for (int k = 0; k < STAGES - 1; ++k) issue(k);
#endif
  __syncthreads();  // q tile and mbarriers ready

#if KVP_MLA_HM
  HMState st;
#pragma unroll
  for (int n = 0; n < 8; ++n) st.o[n][0] = st.o[n][1] = st.o[n][2] = st.o[n][3] = 0.f;
  st.m0 = st.m1 = KVP_NEG_INF;
  st.l0 = st.l1 = 0.f;
#if KVP_MLA_TMA
  hm_swizzle_offsets(st);
#endif
  // stage and mbarrier parity of step k kept incrementally (a division by the run-time STAGES costs ~10
  // instructions per use)
  int stage = 0;
  u32 parity = 0;
  for (int k = 0; k < nsteps; ++k) {
    const int fill = k + STAGES - 1, fill_stage = stage == 0 ? STAGES - 1 : stage - 1;
    mbar_wait(sbase + 8 * stage, parity);
#if KVP_MLA_TMA
    hm_step(st, smem, sbase, OST + stage * STAGE_B, c_hi - (c_lo + k * TOK), k & 1, cbase, [&] {
      if (fill < nsteps && threadIdx.x == 0) tma_issue(fill, fill_stage);
    });
#else
    if (threadIdx.x == 0 && fill < nsteps) expect_at(fill, fill_stage);
    hm_step(st, smem, sbase, OST + stage * STAGE_B, c_hi - (c_lo + k * TOK), k & 1, cbase, [&] {
      if (fill < nsteps) issue_at(fill, fill_stage);
    });
#endif
    if (++stage == STAGES) stage = 0, parity ^= 1u;
  }
  pdl_release();
  hm_store(st, out, opart, lse, b, hg0, Hq, split, nsplit, vscale);
#else
  float o[4][NT][4];
  float m[NT][2], l[NT][2];
#pragma unroll
  for (int u = 0; u < 4; ++u)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) o[u][nt][0] = o[u][nt][1] = o[u][nt][2] = o[u][nt][3] = 0.f;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    m[nt][0] = m[nt][1] = KVP_NEG_INF;
    l[nt][0] = l[nt][1] = 0.f;
  }
  const int mt = warp % MTI;  // this warp's token m-tile in QK (shared by all its units)

  for (int k = 0; k < nsteps; ++k) {
    const unsigned char* tile = smem + OFF_ST + (k % STAGES) * STAGE_B;
#if KVP_MLA_BULK
    mbar_wait(sbase + 8 * (k % STAGES), (u32)((k / STAGES) & 1));
#else
    switch (STAGES) {  // this thread's copies of step k are done; the barrier makes everyone's visible
      case 2: asm volatile("cp.async.wait_group 0;\n" ::: "memory"); break;
      case 3: asm volatile("cp.async.wait_group 1;\n" ::: "memory"); break;
      case 4: asm volatile("cp.async.wait_group 2;\n" ::: "memory"); break;
      default: asm volatile("cp.async.wait_group 3;\n" ::: "memory"); break;
    }
    __syncthreads();
#endif
    const int nval = c_hi - (c_lo + k * TOK);  // valid rows in this stage (>= 1)

    // ---- QK: S^T for this warp's units; rows t0 = 16 mt + r and t0 + 8
    // two accumulator chains per unit (even / odd 16-dim halves): the MMAs of one chain wait on each other
    float sc[UPW][4], sc2[UPW][4];
#pragma unroll
    for (int u = 0; u < UPW; ++u)
#pragma unroll
      for (int t = 0; t < 4; ++t) sc[u][t] = sc2[u][t] = 0.f;
    const int kh = KSPLIT > 1 ? warp / UNITS : 0;  // this warp's share of the k-groups
    const bool qk = warp < UNITS * KSPLIT && 16 * mt < nval;
    if (qk) {
      const unsigned char* ra = tile + row_off(16 * mt + r);
      const unsigned char* rb = tile + row_off(16 * mt + r + 8);
#pragma unroll 2
      for (int i = kh * KG / KSPLIT; i < (kh + 1) * KG / KSPLIT; ++i) {
        const int c = j + 4 * i;
        const uint4 x0 = chunk8(ra + c * CW), x1 = chunk8(rb + c * CW);
#pragma unroll
        for (int u = 0; u < UPW; ++u) {
          const int unit = KSPLIT > 1 ? warp % UNITS : warp + NW * u;
          if (unit < UNITS) {
            const int nt = unit / MTI;
            const uint4 qv = *reinterpret_cast<const uint4*>(smem + OFF_Q + (8 * nt + r) * QS + c * 16);
            mma_bf16(sc[u], x0.x, x1.x, x0.y, x1.y, qv.x, qv.y);
            mma_bf16(sc2[u], x0.z, x1.z, x0.w, x1.w, qv.z, qv.w);
          }
        }
      }
#pragma unroll
      for (int u = 0; u < UPW; ++u)
#pragma unroll
        for (int t = 0; t < 4; ++t) sc[u][t] += sc2[u][t];
    }
    if constexpr (KSPLIT > 1) {  // the unit's other warps hand their partial scores to its owner
      float4* const sx = reinterpret_cast<float4*>(smem + OFF_X);
      if (qk && kh > 0) sx[(warp - UNITS) * 32 + lane] = make_float4(sc[0][0], sc[0][1], sc[0][2], sc[0][3]);
      asm volatile("bar.sync %0, %1;\n" ::"r"(1 + warp % UNITS), "n"(32 * KSPLIT) : "memory");
      if (qk && kh == 0) {
#pragma unroll
        for (int h = 1; h < KSPLIT; ++h) {
          const float4 x = sx[(warp + (h - 1) * UNITS) * 32 + lane];
          sc[0][0] += x.x, sc[0][1] += x.y, sc[0][2] += x.z, sc[0][3] += x.w;
        }
      }
    }
    // scores (log2 domain), masked by a select; per-head maxima of this m-tile
    const bool v0 = 16 * mt + r < nval, v1 = 16 * mt + r + 8 < nval;
#pragma unroll
    for (int u = 0; u < UPW; ++u) {
      const int unit = warp + NW * u;  // (with KSPLIT > 1, warps >= UNITS own no unit here)
      if (unit < UNITS) {
        const int nt = unit / MTI;
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          sc[u][c] = (qk && v0) ? sc[u][c] * cbase : KVP_NEG_INF;
          sc[u][2 + c] = (qk && v1) ? sc[u][2 + c] * cbase : KVP_NEG_INF;
          float mx = fmaxf(sc[u][c], sc[u][2 + c]);
          mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 4));
          mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 8));
          mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 16));
          if (r == 0) smax[mt * HG + 8 * nt + 2 * j + c] = mx;
        }
      }
    }
#if KVP_MLA_BULK
    // step k + STAGES - 1 refills step k - 1's stage, whose mbarrier phase completed before step k - 1 was read
    if (threadIdx.x == 0 && k + STAGES - 1 < nsteps) expect(k + STAGES - 1);
#endif
    __syncthreads();  // A: maxima visible; every warp is done with step k - 1's stage

#if KVP_MLA_BULK
    if (k + STAGES - 1 < nsteps) issue(k + STAGES - 1);
#else
    issue(k + STAGES - 1);
#endif

    // running max (every warp derives the same values), rescale O and l now
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int h = 8 * nt + 2 * j + c;
        float mn = m[nt][c];
#pragma unroll
        for (int t = 0; t < MTI; ++t) mn = fmaxf(mn, smax[t * HG + h]);
        const float mu = (mn == KVP_NEG_INF) ? 0.f : mn;
        const float al = ex2(m[nt][c] - mu);
        m[nt][c] = mn;
        l[nt][c] *= al;
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          o[u][nt][c] *= al;
          o[u][nt][2 + c] *= al;
        }
      }
    // P = 2^(s - max) -> shared memory [head][token] bf16; per-head sums of this m-tile
#pragma unroll
    for (int u = 0; u < UPW; ++u) {
      const int unit = warp + NW * u;  // (with KSPLIT > 1, warps >= UNITS own no unit here)
      if (unit < UNITS) {
        const int nt = unit / MTI;
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int h = 8 * nt + 2 * j + c;
          const float mn = m[nt][c];
          const float mu = (mn == KVP_NEG_INF) ? 0.f : mn;
          const float p0 = ex2(sc[u][c] - mu), p1 = ex2(sc[u][2 + c] - mu);
          const __nv_bfloat16 b0 = __float2bfloat16_rn(p0), b1 = __float2bfloat16_rn(p1);
          sp[h * (PS / 2) + 16 * mt + r] = *reinterpret_cast<const unsigned short*>(&b0);
          sp[h * (PS / 2) + 16 * mt + r + 8] = *reinterpret_cast<const unsigned short*>(&b1);
          float sum = p0 + p1;
          sum += __shfl_xor_sync(FULL, sum, 4);
          sum += __shfl_xor_sync(FULL, sum, 8);
          sum += __shfl_xor_sync(FULL, sum, 16);
          if (r == 0) ssum[mt * HG + h] = sum;
        }
      }
    }
    __syncthreads();  // B: P and the sums visible

#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int h = 8 * nt + 2 * j + c;
#pragma unroll
        for (int t = 0; t < MTI; ++t)
          if (16 * t < nval) l[nt][c] += ssum[t * HG + h];
      }

    // ---- PV: O^T[64 dims of this warp x HG heads] += C^T P^T over the step's tokens
#pragma unroll
    for (int kt = 0; kt < MTI; ++kt) {
      const int t0 = 16 * kt;
      if (t0 >= nval) break;  // uniform: no valid token in this k-step
      const unsigned char* col = tile + (8 * warp + r) * CW;
      uint4 y0 = chunk8(col + row_off(t0 + 2 * j)), y1 = chunk8(col + row_off(t0 + 2 * j + 1));
      uint4 y2 = chunk8(col + row_off(t0 + 2 * j + 8)), y3 = chunk8(col + row_off(t0 + 2 * j + 9));
      if (t0 + 16 > nval) {  // rows past the end were never copied: stale or NaN words
        const uint4 z = make_uint4(0, 0, 0, 0);
        if (t0 + 2 * j >= nval) y0 = z;
        if (t0 + 2 * j + 1 >= nval) y1 = z;
        if (t0 + 2 * j + 8 >= nval) y2 = z;
        if (t0 + 2 * j + 9 >= nval) y3 = z;
      }
      const u32 w0[4] = {y0.x, y0.y, y0.z, y0.w}, w1[4] = {y1.x, y1.y, y1.z, y1.w};
      const u32 w2[4] = {y2.x, y2.y, y2.z, y2.w}, w3[4] = {y3.x, y3.y, y3.z, y3.w};
      u32 pb[NT][2];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const unsigned short* prow = sp + (8 * nt + r) * (PS / 2) + t0 + 2 * j;
        pb[nt][0] = *reinterpret_cast<const u32*>(prow);
        pb[nt][1] = *reinterpret_cast<const u32*>(prow + 8);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        // m-tile u: row r = dim 8 (8 warp + r) + 2u, row r + 8 = that dim + 1
        const u32 a0 = prmt(w0[u], w1[u], 0x5410), a1 = prmt(w0[u], w1[u], 0x7632);
        const u32 a2 = prmt(w2[u], w3[u], 0x5410), a3 = prmt(w2[u], w3[u], 0x7632);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma_bf16(o[u][nt], a0, a1, a2, a3, pb[nt][0], pb[nt][1]);
      }
    }
  }
#if !KVP_MLA_BULK
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
#endif
  pdl_release();

  // ---- epilogue: lane (r, j) holds dims d, d + 1 (d = 64 warp + 8 r + 2u) of heads 8 nt + 2j + c
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const int hq = hg0 + 8 * nt + 2 * j + c;
      if (hq >= Hq) continue;
      const size_t row = (size_t)b * Hq + hq;
      const float L = l[nt][c];
      const float inv = L > 0.f ? vscale / L : 0.f;
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int d = 64 * warp + 8 * r + 2 * u;
        const float a = o[u][nt][c] * inv, bb = o[u][nt][2 + c] * inv;
        if (nsplit == 1) {
          *reinterpret_cast<u32*>(out + row * RANK + d) = pack2<true>(a, bb);
        } else {
          *reinterpret_cast<float2*>(opart + (row * nsplit + split) * RANK + d) = make_float2(a, bb);
        }
      }
      if (nsplit > 1 && warp == 0 && r == 0) lse[row * nsplit + split] = L > 0.f ? m[nt][c] + log2f(L) : KVP_NEG_INF;
    }
#endif
}

extern "C" __global__ void __launch_bounds__(256)
kvp_mla_merge(const float* __restrict__ opart, const float* __restrict__ lse, unsigned short* __restrict__ out,
              int rows, int nsplit) {
  merge_split_rows<RANK, true>(opart, lse, out, nsplit);
}

// up to KVP_MERGE_FEW splits (limits.MERGE_FEW_SPLITS): two rows a CTA, each thread reading its own partials, no
// shared memory (kvp_common.cuh merge_few_splits; one 256-thread CTA a row left half its threads on one split each)
extern "C" __global__ void __launch_bounds__(256)
kvp_mla_merge_few(const float* __restrict__ opart, const float* __restrict__ lse, unsigned short* __restrict__ out,
                  int rows, int nsplit) {
  merge_few_splits<RANK, true, KVP_MERGE_FEW>(opart, lse, out, rows, nsplit);
}
