// kvplan absorbed-MLA paged decode on Hopper's warpgroup MMAs (wgmma, sm_90a), compiled at run time with NVRTC.
//
// The same maths as paged_mla_decode.cu (MQA over one 576-dim latent row per token, the first 512 dims the
// values). One CTA = one warpgroup (4 warps) per (split, HG = 16 or 32 query heads, sequence), 64 latent rows a
// step, and the step's tokens are the M of every wgmma, so no operand passes through registers but the scores:
//   QK  S^T[64 tokens x HG heads] = C[64 x 576] Q^T: 36 wgmma m64nHGk16 over shared memory, the latent tile as
//       TMA lands it (K-major) and q staged once in the same layout.
//   softmax: each thread holds 2 tokens x HG / 4 heads; a head's step max meets across the 4 warps in shared
//       memory; P^T goes to shared memory as bf16 [HG heads][64 tokens] (the K-major B operand of PV).
//   PV  O^T[512 dims x HG heads] += C[:, :512]^T P^T: 8 dim tiles x 4 token k-steps, the latent read as the
//       MN-major A operand: the bytes QK read K-major, with no copy and no transpose.
// Layout: a step lands as [9 blocks of 64 dims][64 tokens][128 bytes] with the 128-byte swizzle (16-byte chunk c of
// row t at chunk c ^ (t & 7)); each block is a canonical SW128 tile of both operand forms: 8-row groups 1,024
// bytes apart (the descriptors' stride offset), the k-steps inside a 128-byte row 32 bytes apart. q and P are
// written by the threads in that layout (HG rows: groups of 8 heads 1,024 bytes apart). The tensor map views the
// cache as [9 blocks][tokens][64 dims] (strides 128 and 1,152 bytes): pages of 64+ tokens bring a step in one tensor
// copy, smaller pages one per (page, block). Two stages of 72 KB; thread 0 refills a stage once every warp's wgmmas
// over it have completed; 32 heads a CTA (above 16 a rank) read each latent from L2 half as often as 16 (H200: 128
// heads B32 4K 127.5 against 197.3 us). (Measured slower on
// H200, benchmarks/RESULTS.md session 23: a ring of 25 block tiles of 8 KB, 1.7x, where a step still waited for
// its last tiles, issued no earlier than with whole stages; 48-row steps in three stages, 1.5x.)
// Early refill (KVP_MLA_EARLY = 2 or 4, bf16; the default at 16 heads a CTA on 64+-token pages): the stage's copies are
// one box per 64-dim block, and thread 0 refills the rope block with the step after next once QK is done with it
// (PV never reads it), the value blocks after each of KVP_MLA_EARLY wgmma commit groups of PV; the stage's mbarrier
// is armed with the whole step's bytes at the first of them. Two stages of 72 KB are all that fit, and the kernel
// waits on memory (H200, session 26: B32 8K 84.9 us from DRAM, 54.4 L2-resident): 2.4-3.7% faster with 2 groups.
// Three stages (KVP_MLA_STAGES == 3, opt-in `wg_stages=3`; bf16, 16 heads a CTA, pages of 64+ tokens; not measured
// yet): a third stage of the 8 value blocks fits if P lies in the step's rope block and the alignment slack goes.
// The value blocks of a step land in a ring of 3 stages, its rope block in a ring of 2 slots, each on its own
// "full" mbarrier (the TMA bytes); a stage or slot is empty once every warp's wgmmas over it have completed, which
// one warpgroup knows from a CTA barrier after its waits (thread 0, one of the readers, then refills it). P is
// written over the rope block after the CTA barrier that follows every warp's QK wait, and the slot takes the rope
// block of step k + 2 after the barrier that follows every warp's PV wait. So the values of step k + 3 and the rope
// of step k + 2 are issued at the end of step k (the two-stage kernel: all of step k + 2). Shared memory, bytes
// from the 1,024-aligned base:
//        0 -     40  mbarriers: value stages [3], then rope slots [2] (8 bytes each)
//       64 -    832  reduction buffers [3][4 warps][16 heads] fp32 (832 - 896: q exponents, fp8 only: unused)
//    1,024 - 19,456  q [9 blocks][16 heads][128 bytes]
//   19,456 - 216,064 value stages [3][8 blocks][64 tokens][128 bytes] (65,536 each)
//  216,064 - 232,448 rope slots [2][64 tokens][128 bytes] (8,192 each); P [16 heads][64 tokens] bf16 (2,048 bytes)
//                    over the first 2 KB of the current step's slot once QK is done with it
// 232,448 in all: the sm_90 opt-in limit, with no slack to align the base (sm_90 starts dynamic shared memory at
// 1,024, after the CTA's reserved 1 KB; the kernel traps if it does not). The early refill (KVP_MLA_EARLY) is off
// by default there (configs.mla_early_free_default): the third stage gives each value copy a whole step more, the
// rope block cannot be refilled after QK (P lies in it), and with the early refill the two-stage kernel's own step
// grew (L2-resident B32 8K 54.4 -> 71.9 us, session 26); with it (early_free=2) the value blocks of step k + 3
// follow each PV commit group. Tensor copies: one per 64-dim block (9 a step on pages of 64+ tokens).
// Rows past the sequence end: their scores are masked by a select and, in the last step, their value rows zeroed
// in shared memory before PV (NaN x 0 = NaN).
// fp8 e4m3 latents (KVP_KVT == 2): a step lands raw as [9 blocks][64 tokens][64 bytes] (three raw stages of 36 KB)
// and the warpgroup widens it into one 16-bit operand tile in the layout above (exact: every e4m3 value is an fp16
// value), rows past the end written as zeros; the raw stage is refilled as soon as it is widened. The MMAs are then
// fp16 x fp16: q is brought into fp16 range per head by a power of two, taken back in that head's score multiplier,
// and P is fp16. One scale per tensor (kv_scale) sits in the score multiplier and the output scale, as elsewhere.
// fp8 straight into e4m3 wgmmas (KVP_MLA_F8MMA, 16 heads; its own kernel below, warpgroups in a pipeline: one runs
// QK, the softmax and P of step k while the others run PV of earlier steps): no widening. Raw steps land [9][64
// tokens][64 bytes] with the 64-byte swizzle (chunk c of row t at c ^ ((t >> 1) & 3)) in five stages; QK reads
// them as the K-major A operand of m64n32k32 e4m3 wgmmas whose 32 columns are q split in two e4m3 parts, hi and
// lo (q per head brought to [128, 256) by a power of two: hi + lo carry ~8 significant bits, as bf16 does);
// S = S_hi + S_lo.
// PV cannot read an 8-bit A MN-major, so each thread builds its A fragments in registers: its 16 dims are one
// 16-byte chunk of a
// latent row, read as two 8-byte halves (lanes r odd take the upper half first), 4 tokens' words byte-transposed by
// PRMTs. Row 16 w + r + 8 x of dim tile u is latent dim 16 (8 w + r) + 8 ((u >> 2) ^ (r & 1)) + 2 (u & 3) + x (the
// epilogue undoes it) and k column 4 j + i of a 16-token group is its token 4 i + j (P is stored to match): each
// half warp's 8-byte reads then meet 32 distinct banks. P' = 256 p, split hi + lo as q is, is the 32 columns of
// the B operand. Each step's PV accumulates into fresh registers added to O in fp32 (e4m3 wgmmas accumulate with
// fewer bits than fp32).

#include "kvp_common.cuh"
#define KVP_WG_FP16 (KVP_KVT == 2)  // fp8 latents are widened to fp16 operands
#include "kvp_wgmma.cuh"

#ifndef KVP_KVT
#error "compile through kvplan.kernels.build"
#endif
#ifndef KVP_MLA_F8MMA
#define KVP_MLA_F8MMA 0
#endif
#ifndef KVP_MLA_PROBE  // timing probes of the e4m3 kernel only (benchmarks/mla_e4m3_probe.py; wrong results):
#define KVP_MLA_PROBE 0  // 1: the values warpgroups skip PV; 2: the scores warpgroup skips QK
#endif
#if KVP_MLA_F8MMA && !(defined(KVP_MLA_VALUE_WGS) && defined(KVP_MLA_P_BUFFERS))  // limits.MLA_WG_E4M3_*
#error "compile through kvplan.kernels.build"
#endif
#if !KVP_MLA_F8MMA
#define KVP_MLA_P_BUFFERS 1
#endif
#ifndef KVP_MLA_EARLY  // bf16: PV in this many commit groups (2 or 4), each group's blocks refilled as it completes
#define KVP_MLA_EARLY 0
#endif
#if KVP_MLA_EARLY && (KVP_KVT == 2 || (KVP_MLA_EARLY != 2 && KVP_MLA_EARLY != 4))
#error "KVP_MLA_EARLY: 2 or 4 PV groups, bf16 latents"
#endif
#ifndef KVP_MLA_STAGES  // 3: the three-stage form (bf16, 16 heads a CTA); 2 (the default): two whole stages
#define KVP_MLA_STAGES 2
#endif
#if KVP_MLA_STAGES != 2 && (KVP_MLA_STAGES != 3 || KVP_KVT == 2 || KVP_MLA_WG_HEADS != 16 || KVP_MLA_F8MMA)
#error "KVP_MLA_STAGES: 2, or 3 for bf16 latents at 16 heads a CTA"
#endif

namespace kvp {
namespace mlawg {

constexpr bool FP8 = KVP_KVT == 2;
constexpr int RANK = 512;                // value dims
constexpr int BLOCKS = 9;                // 64-dim blocks of a row
constexpr int HG = KVP_MLA_WG_HEADS;     // query heads per CTA: the N of every wgmma (16 or 32)
constexpr int NI = HG / 8;               // 8-head column chunks of an accumulator tile
constexpr int NQ = 2 * NI;               // heads a thread holds (slot q: head 8 (q >> 1) + 2 j + (q & 1))
constexpr int ACC = 4 * NI;              // fp32 registers of an accumulator tile per thread
constexpr int TOK = 64;                  // latent rows per step: the M of QK
constexpr int TILE = TOK * 128;          // one block of a step's 16-bit operand tile
constexpr int OPERAND = BLOCKS * TILE;   // 73,728 bytes
constexpr int RAW = FP8 ? BLOCKS * TOK * 64 : OPERAND;  // bytes a step lands as
constexpr bool F8MMA = KVP_MLA_F8MMA != 0;
constexpr bool S3 = KVP_MLA_STAGES == 3;  // the three-stage form (see the top): values and rope blocks in two rings
constexpr int STAGES = F8MMA ? 5 : FP8 ? 3 : KVP_MLA_STAGES;
constexpr int ROPES = S3 ? 2 : 0;        // rope slots of the three-stage form (else the rope block is in the stage)
constexpr int QRB = F8MMA ? 64 : 128;     // bytes of a q / P row in one 64-dim block (resp. of 64 tokens)
constexpr int QROWS = F8MMA ? 2 * HG : HG;  // q / P rows: e4m3 MMAs hold each head twice (hi, then lo)
constexpr int OFF_HB = 64;               // e4m3: the hand-over mbarriers [PBUF] READY, then [PBUF] FREE
constexpr int OFF_RED = F8MMA ? 128 : 64;  // reduction buffers (RED_FLOATS below)
constexpr int PBUF = KVP_MLA_P_BUFFERS;  // P buffers (e4m3: the steps the scores may run ahead of the values)
// [3 buffers][4 warps][HG] fp32: step maxima (2), row sums (1); e4m3: maxima (2; the last step's row sums in one),
// [PBUF][HG] rescale factors, M
constexpr int RED_FLOATS = F8MMA ? 2 * 4 * HG + (PBUF + 1) * HG : 3 * 4 * HG;
constexpr int OFF_QX = OFF_RED + RED_FLOATS * 4;  // fp8: per-head q exponents [HG] (int)
constexpr int OFF_Q = (OFF_QX + 4 * HG + 1023) / 1024 * 1024;  // [9 blocks][QROWS][QRB bytes]
constexpr int OFF_P = OFF_Q + BLOCKS * QROWS * QRB;  // [PBUF][QROWS][64 tokens], 16-bit or e4m3 (S3: none)
constexpr int OFF_ST = OFF_P + (S3 ? 0 : PBUF * QROWS * QRB);  // the stages (bf16: each is its operand tile)
constexpr int STAGE_B = S3 ? (BLOCKS - 1) * TILE : RAW;  // bytes of a stage (S3: the value blocks only)
constexpr int OFF_ROPE = OFF_ST + STAGES * STAGE_B;  // S3: the rope slots [ROPES][TILE]
constexpr int OFF_CV = OFF_ROPE + ROPES * TILE;     // fp8 widened: the operand tile
constexpr int SLACK = S3 ? 0 : 1024;                // to align the base to the swizzle period
static_assert((HG == 16 || HG == 32) && OFF_ST % 1024 == 0 && OFF_CV % 1024 == 0, "shared layout");
static_assert(!F8MMA || (FP8 && HG == 16), "e4m3 MMAs: fp8 latents, 16 heads a CTA");
static_assert(8 * (STAGES + ROPES) <= 64 && OFF_QX + 4 * HG <= OFF_Q, "mbarriers and buffers in the first 1 KB");
static_assert(OFF_CV + (FP8 && !F8MMA ? OPERAND : 0) + SLACK == KVP_MLA_WG_SMEM, "limits.mla_wg_smem disagrees");
static_assert(!S3 || (OFF_ST == 19456 && OFF_ROPE == 216064 && KVP_MLA_WG_SMEM == 232448), "the three-stage map");

// fp8: q's HG heads -> [9 blocks][HG heads][128 bytes] fp16, each head times 2^-x[h] with x[h] >= 0 the smallest
// that keeps its largest |q| below 2^15 (fp16 holds 65,504); warp w takes heads HG / 4 w .. + HG / 4 - 1
__device__ __forceinline__ void stage_q_fp16(unsigned char* sm, const unsigned short* qn, const unsigned short* qr,
                                             int b, int hg0, int Hq) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int* const qx = reinterpret_cast<int*>(sm + OFF_QX);
  for (int h = HG / 4 * warp; h < HG / 4 * (warp + 1); ++h) {
    const int hq = hg0 + h;
    const size_t row = (size_t)b * Hq + (hq < Hq ? hq : 0);
    uint4 v[3];
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < 3; ++i) {  // chunks lane, lane + 32, lane + 64 (< 72) of the head's 576 dims
      const int c = lane + 32 * i;
      v[i] = make_uint4(0, 0, 0, 0);
      if (hq < Hq && c < 72)
        v[i] = c < 64 ? *reinterpret_cast<const uint4*>(qn + row * RANK + 8 * c)
                      : *reinterpret_cast<const uint4*>(qr + row * 64 + 8 * (c - 64));
      const u32 w[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
#pragma unroll
      for (int t = 0; t < 4; ++t) amax = fmaxf(amax, fmaxf(fabsf(bf16lo(w[t])), fabsf(bf16hi(w[t]))));
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    int x = 0;
    if (amax >= 32768.f) x = ((__float_as_int(amax) >> 23) & 0xff) - 127 - 14;  // 2^e <= amax < 2^(e+1)
    const float sc = __int_as_float((127 - x) << 23);
    if (lane == 0) qx[h] = x;
#pragma unroll
    for (int i = 0; i < 3; ++i) {
      const int c = lane + 32 * i;
      if (c >= 72) continue;
      const u32 w[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
      uint4 o;
      o.x = pack2<false>(bf16lo(w[0]) * sc, bf16hi(w[0]) * sc);
      o.y = pack2<false>(bf16lo(w[1]) * sc, bf16hi(w[1]) * sc);
      o.z = pack2<false>(bf16lo(w[2]) * sc, bf16hi(w[2]) * sc);
      o.w = pack2<false>(bf16lo(w[3]) * sc, bf16hi(w[3]) * sc);
      *reinterpret_cast<uint4*>(sm + OFF_Q + (c >> 3) * (HG * 128) + sw128(h, c & 7)) = o;
    }
  }
}

// fp8: widen the raw stage at shared offset `raw` ([9][64 rows][64 bytes]) into the operand tile; rows >= nval of
// the value blocks are written as zeros (rows past the end: stale, or another sequence's)
__device__ __forceinline__ void widen(unsigned char* sm, int raw, int nval) {
  for (int idx = threadIdx.x; idx < BLOCKS * TOK * 4; idx += 128) {  // 16 raw bytes -> two 16-byte chunks
    const int blk = idx >> 8, t = (idx >> 2) & 63, qd = idx & 3;
    uint4 lo = make_uint4(0, 0, 0, 0), hi = lo;
    if (t < nval || blk == BLOCKS - 1) {
      const uint4 w = *reinterpret_cast<const uint4*>(sm + raw + 16 * idx);
      lo = make_uint4(e4m3x2_to_h2(w.x), e4m3x2_to_h2(w.x >> 16), e4m3x2_to_h2(w.y), e4m3x2_to_h2(w.y >> 16));
      hi = make_uint4(e4m3x2_to_h2(w.z), e4m3x2_to_h2(w.z >> 16), e4m3x2_to_h2(w.w), e4m3x2_to_h2(w.w >> 16));
    }
    unsigned char* const row = sm + OFF_CV + blk * TILE;
    *reinterpret_cast<uint4*>(row + sw128(t, 2 * qd)) = lo;
    *reinterpret_cast<uint4*>(row + sw128(t, 2 * qd + 1)) = hi;
  }
}

#if KVP_MLA_F8MMA
// byte offset of 16-byte chunk c of row t in a 64-byte-swizzled [rows][64 bytes] tile starting on 512 bytes
__device__ __forceinline__ int sw64(int t, int c) { return 64 * t + 16 * (c ^ ((t >> 1) & 3)); }

// wgmma descriptor of a SW64 tile at shared address a: 8-row groups 512 bytes apart
__device__ __forceinline__ u64 desc64(u32 a) {
  return (u64)((a & 0x3FFFF) >> 4) | ((u64)(512 >> 4) << 16) | ((u64)(512 >> 4) << 32) | (2ull << 62);
}

// D[64 x 32] (+)= A B, e4m3 x e4m3: A from shared memory (K-major) or from registers (4 words a thread)
__device__ __forceinline__ void wgmma_e4m3(float (&d)[16], u64 da, u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,"
      "%15}, %16, %17, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "l"(da), "l"(db), "r"(accumulate));
}
__device__ __forceinline__ void wgmma_e4m3(float (&d)[16], const u32 (&a)[4], u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k32.f32.e4m3.e4m3 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,"
      "%15}, {%16,%17,%18,%19}, %20, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
}

// two floats -> two e4m3 bytes (round to nearest, saturating): lo in bits 0-7, hi in bits 8-15
__device__ __forceinline__ u32 e4m3x2(float lo, float hi) {
  unsigned short d;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(d) : "f"(hi), "f"(lo));
  return d;
}
// x ~ hi + lo as two e4m3 pairs: (hi bytes, lo bytes) of two values
__device__ __forceinline__ uint2 split_e4m3x2(float a, float b) {
  const u32 hi = e4m3x2(a, b), h2 = e4m3x2_to_h2(hi);
  const float2 hv = __half22float2(*reinterpret_cast<const __half2*>(&h2));
  return make_uint2(hi, e4m3x2(a - hv.x, b - hv.y));
}

// 4 words of 4 bytes (tokens 0-3, each 4 consecutive dims) -> 4 words (dims 0-3, each tokens 0-3 in byte order)
__device__ __forceinline__ void transpose4x4(u32 a, u32 b, u32 c, u32 d, u32& o0, u32& o1, u32& o2, u32& o3) {
  const u32 t0 = prmt(a, b, 0x5140), t1 = prmt(a, b, 0x7362), t2 = prmt(c, d, 0x5140), t3 = prmt(c, d, 0x7362);
  o0 = prmt(t0, t2, 0x5410), o1 = prmt(t0, t2, 0x7632), o2 = prmt(t1, t3, 0x5410), o3 = prmt(t1, t3, 0x7632);
}

// q's 16 heads -> [9 blocks][32 rows][64 bytes] e4m3, SW64: row h its hi part, row 16 + h its lo part, each head
// times 2^-x[h] so that its largest |q| lies in [128, 256) (e4m3 holds 448); warp w takes heads w, w + 8
__device__ __forceinline__ void stage_q_e4m3(unsigned char* sm, const unsigned short* qn, const unsigned short* qr,
                                             int b, int hg0, int Hq) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int* const qx = reinterpret_cast<int*>(sm + OFF_QX);
  for (int h = warp; h < HG; h += blockDim.x >> 5) {
    const int hq = hg0 + h;
    const size_t row = (size_t)b * Hq + (hq < Hq ? hq : 0);
    float v[2][16];  // 16-dim chunks lane, lane + 32 (< 36) of the head's 576 dims
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int c = lane + 32 * i;
      uint4 w[2] = {make_uint4(0, 0, 0, 0), make_uint4(0, 0, 0, 0)};
      if (hq < Hq && c < 36) {
        const unsigned short* src = c < 32 ? qn + row * RANK + 16 * c : qr + row * 64 + 16 * (c - 32);
        w[0] = *reinterpret_cast<const uint4*>(src);
        w[1] = *reinterpret_cast<const uint4*>(src + 8);
      }
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const u32 ws[4] = {w[k].x, w[k].y, w[k].z, w[k].w};
#pragma unroll
        for (int t = 0; t < 4; ++t) {
          v[i][8 * k + 2 * t] = bf16lo(ws[t]), v[i][8 * k + 2 * t + 1] = bf16hi(ws[t]);
          amax = fmaxf(amax, fmaxf(fabsf(v[i][8 * k + 2 * t]), fabsf(v[i][8 * k + 2 * t + 1])));
        }
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const int x = amax > 0.f ? max(((__float_as_int(amax) >> 23) & 0xff) - 127 - 7, -120) : 0;
    const float sc = __int_as_float((127 - x) << 23);
    if (lane == 0) qx[h] = x;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int c = lane + 32 * i;
      if (c >= 36) continue;
      u32 hi[4], lo[4];
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const uint2 a = split_e4m3x2(v[i][4 * t] * sc, v[i][4 * t + 1] * sc);
        const uint2 z = split_e4m3x2(v[i][4 * t + 2] * sc, v[i][4 * t + 3] * sc);
        hi[t] = a.x | (z.x << 16), lo[t] = a.y | (z.y << 16);
      }
      unsigned char* const blk = sm + OFF_Q + (c >> 2) * (QROWS * 64);
      *reinterpret_cast<uint4*>(blk + sw64(h, c & 3)) = make_uint4(hi[0], hi[1], hi[2], hi[3]);
      *reinterpret_cast<uint4*>(blk + sw64(HG + h, c & 3)) = make_uint4(lo[0], lo[1], lo[2], lo[3]);
    }
  }
}

// P' = 256 p of head h at tokens t and t + 8 (t < 8 mod 16) -> rows h (hi) and 16 + h (lo) of the P buffer at
// sm + OFF_P, SW64, at the k columns PV's A fragments give those tokens (token 4 i + j of a group is column 4 j + i)
__device__ __forceinline__ void store_p_e4m3(unsigned char* sm, int h, int t, float p0, float p1) {
  const uint2 hl = split_e4m3x2(p0, p1);
  unsigned char* const P = sm + OFF_P;
  const int ch = t >> 4, k0 = 4 * (t & 3) + ((t >> 2) & 3);  // token t + 8: column k0 + 2
  P[sw64(h, ch) + k0] = (unsigned char)hl.x, P[sw64(h, ch) + k0 + 2] = (unsigned char)(hl.x >> 8);
  P[sw64(HG + h, ch) + k0] = (unsigned char)hl.y, P[sw64(HG + h, ch) + k0 + 2] = (unsigned char)(hl.y >> 8);
}

// O^T += C[:, :512]^T P'^T over the raw stage at shared offset `raw` and the P buffer at `pbuf`, 4 dim tiles at a
// time: A fragments built in registers (tokens >= nval read as zeros), fresh accumulators per step folded into o
// in fp32 (hi + lo columns); warp w of the warpgroup, dim-tile quads half0 .. half0 + NH - 1
template <int NH>
__device__ __forceinline__ void pv_e4m3(float (&o)[4 * NH][ACC], const unsigned char* sm, u32 sb, int raw, int pbuf,
                                        int nval, int half0) {
  const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, r = lane >> 2, j = lane & 3;
  const int g = 8 * warp + r;  // this thread's dims 16 g .. 16 g + 15: chunk g & 3 of block g >> 2 of a row
  const unsigned char* const blk = sm + raw + (g >> 2) * (TOK * 64);
#pragma unroll
  for (int hh = 0; hh < NH; ++hh) {  // dim tiles 4 half .. 4 half + 3: bytes 8 (half ^ (r & 1)) .. + 7
    const int half = half0 + hh;
    u32 a[2][4][4];                       // [k-step][tile][fragment word]
#pragma unroll
    for (int kk = 0; kk < 2; ++kk)
#pragma unroll
      for (int up = 0; up < 2; ++up) {  // k columns 16 up + 4 j + i, tokens 32 kk + 16 up + 4 i + j: words 2 up, + 1
        u32 w[4][2];
#pragma unroll
        for (int tt = 0; tt < 4; ++tt) {
          const int t = 32 * kk + 16 * up + 4 * tt + j;
          uint2 v = *reinterpret_cast<const uint2*>(blk + sw64(t, g & 3) + 8 * (half ^ (r & 1)));
          if (t >= nval) v = make_uint2(0, 0);
          w[tt][0] = v.x, w[tt][1] = v.y;
        }
        u32 d[8];  // bytes 8 (half ^ (r & 1)) + e of the chunk, 4 tokens each
        transpose4x4(w[0][0], w[1][0], w[2][0], w[3][0], d[0], d[1], d[2], d[3]);
        transpose4x4(w[0][1], w[1][1], w[2][1], w[3][1], d[4], d[5], d[6], d[7]);
#pragma unroll
        for (int ul = 0; ul < 4; ++ul) a[kk][ul][2 * up] = d[2 * ul], a[kk][ul][2 * up + 1] = d[2 * ul + 1];
      }
    float st[4][16];
    __syncwarp();  // (wgmmas are .aligned: the warp converged after the waits and lane stores)
    wg_fence();
#pragma unroll
    for (int ul = 0; ul < 4; ++ul)
#pragma unroll
      for (int kk = 0; kk < 2; ++kk) wgmma_e4m3(st[ul], a[kk][ul], desc64(sb + pbuf + 32 * kk), kk);
    wg_commit();
    wg_wait();
#pragma unroll
    for (int ul = 0; ul < 4; ++ul) {
      hold(st[ul]);
#pragma unroll
      for (int e = 0; e < ACC; ++e) o[4 * hh + ul][e] += st[ul][e] + st[ul][e + 8];
    }
  }
}
#endif

}  // namespace mlawg
}  // namespace kvp

using namespace kvp;
using namespace kvp::mlawg;

// Thread 0's copies of step k into stage s: one box of all 9 blocks (pages of 64+ tokens), else one box of tbox rows
// per (page run holding a row before the end, block) (a box never crosses a page: steps start on multiples of 64).
constexpr int ROWB = RAW / (BLOCKS * TOK);  // bytes of a row in one block as it lands: 128 (bf16), 64 (fp8)
struct StepCopies {
  const int* btrow;
  int c_lo, c_hi, bs, log2bs, tbox;
  u32 sb;
  const TmapParam* tmap;

  __device__ __forceinline__ void issue(int k, int s) const {
    const int pos0 = c_lo + k * TOK, runs = (min(TOK, c_hi - pos0) + tbox - 1) / tbox;
    const u32 bar = sb + 8 * s, dst = sb + OFF_ST + s * RAW;
    mbar_arrive_tx(bar, (u32)(runs * tbox * ROWB * BLOCKS));
    for (int p = 0; p < runs; ++p) {
      const int pos = pos0 + p * tbox, row = __ldg(btrow + (pos >> log2bs)) * bs + (pos & (bs - 1));
      if (tbox == TOK && !KVP_MLA_EARLY) {
        tma_box(dst, tmap, row, 0, bar);
      } else {
        for (int blk = 0; blk < BLOCKS; ++blk) tma_box(dst + (blk * TOK + p * tbox) * ROWB, tmap, row, blk, bar);
      }
    }
  }
  // blocks b0 .. b1 - 1 of step k, block blk landing at dst + blk * TOK * ROWB, completing on bar; arm > 0: first set
  // the bar's expected bytes to `arm` blocks of the step (the first part of what lands on it)
  __device__ __forceinline__ void blocks(int k, int b0, int b1, u32 dst, u32 bar, int arm) const {
    const int pos0 = c_lo + k * TOK, runs = (min(TOK, c_hi - pos0) + tbox - 1) / tbox;
    if (arm) mbar_arrive_tx(bar, (u32)(runs * tbox * ROWB * arm));
    for (int p = 0; p < runs; ++p) {
      const int pos = pos0 + p * tbox, row = __ldg(btrow + (pos >> log2bs)) * bs + (pos & (bs - 1));
      for (int blk = b0; blk < b1; ++blk) tma_box(dst + (blk * TOK + p * tbox) * ROWB, tmap, row, blk, bar);
    }
  }
  // blocks b0 .. b1 - 1 of step k into stage s (their readers done; S3: value blocks only); `arm`: the first part,
  // which sets the stage's expected bytes for the whole step (S3: its value blocks)
  __device__ __forceinline__ void issue_part(int k, int s, int b0, int b1, bool arm) const {
    blocks(k, b0, b1, sb + OFF_ST + s * STAGE_B, sb + 8 * s, arm ? (S3 ? BLOCKS - 1 : BLOCKS) : 0);
  }
  // S3: step k's rope block into rope slot r, on the slot's mbarrier
  __device__ __forceinline__ void rope(int k, int r) const {
    blocks(k, BLOCKS - 1, BLOCKS, sb + OFF_ROPE + r * TILE - (BLOCKS - 1) * TILE, sb + 8 * (STAGES + r), 1);
  }
  // S3, once every warp's PV of step k (over stage s and, through P, rope slot k & 1) has completed: the rope block
  // of step k + 2 into that slot, then (`values`: without the early refill) the value blocks of step k + 3 into s
  __device__ __forceinline__ void refill3(int k, int s, int nsteps, bool values) const {
    if (k + ROPES < nsteps) rope(k + ROPES, k & 1);
    if (values && k + STAGES < nsteps) issue_part(k + STAGES, s, 0, BLOCKS - 1, true);
  }
  // before the first barrier: the stages' (and S3: the rope slots') mbarriers, then the first STAGES steps' copies
  __device__ __forceinline__ void start(int nsteps) const {
    for (int s = 0; s < STAGES + ROPES; ++s) mbar_init(sb + 8 * s, 1);
    mbar_fence_init();
    for (int k = 0; k < STAGES && k < nsteps; ++k) {
      if (!S3) {
        issue(k, k);
        continue;
      }
      if (k < ROPES) rope(k, k);
      issue_part(k, k, 0, BLOCKS - 1, true);
    }
  }
};

#if KVP_MLA_F8MMA
// fp8 latents into e4m3 wgmmas: warpgroups in a pipeline. Warpgroup 0 (scores) runs QK, the softmax and P of step
// k while the values warpgroups (1 .. VWG, each over 512 / VWG dims) run PV of an earlier step: P and the step's
// rescale factors sit in PBUF buffers in shared memory, handed over through mbarriers (READY b: P in buffer b
// ready, 128 scores arrivals; FREE b: buffer b free again, the values' arrivals), and thread 128 refills a stage
// once every PV over it is done (QK over it finished before its P was handed over). The scores run up to PBUF steps
// ahead. (H200, session 25, 16h B32 8K: 63.2 us; the scores alone 55.4, the values alone 61.6; two values
// warpgroups or 3-4 P buffers level.) Named-barrier hand-overs (arrive / sync) were 2% faster, but racecheck does
// not take their arrive as a release and reported every form tried (sessions 25-27); mbarriers it follows: 0
// hazards on every MLA case (session 28).
constexpr int VWG = KVP_MLA_VALUE_WGS, NH_V = 2 / VWG, THREADS = 128 * (1 + VWG);
static_assert(VWG == 1 || VWG == 2, "values warpgroups");
constexpr int BAR_SCORES = 1, BAR_VALUES = 2;  // named barriers within one role
static_assert(OFF_HB + 16 * PBUF <= OFF_RED && 8 * STAGES <= OFF_HB, "hand-over mbarriers");
// the non-.aligned forms: a warp may reach them diverged (after a lane-0 store or thread 128's refill), which
// bar.sync (= barrier.sync.aligned) leaves undefined (synccheck reported it)
__device__ __forceinline__ void bar_sync(int id, int n) {
  asm volatile("barrier.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}
__device__ __forceinline__ void bar_arrive(int id, int n) {
  asm volatile("barrier.arrive %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}

#else
constexpr int THREADS = 128;  // one warpgroup
#endif

extern "C" __global__ void __launch_bounds__(THREADS, 1)
kvp_mla_wg(const unsigned short* __restrict__ qn,   // [B, Hq, 512] bf16 (absorbed q_nope)
           const unsigned short* __restrict__ qr,   // [B, Hq, 64] bf16
           const int* __restrict__ bt,              // [B, bt_stride]
           const int* __restrict__ seqlens,         // [B]
           unsigned short* __restrict__ out,        // [B, Hq, 512] bf16         (one split)
           float* __restrict__ opart,               // [B, Hq, splits, 512]      (several splits)
           float* __restrict__ lse,                 // [B, Hq, splits] (log2 domain)
           int Hq, int chunk, int bt_stride, int log2bs, float cbase, float vscale,
           const __grid_constant__ TmapParam tmap) {
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const u32 raw = (u32)__cvta_generic_to_shared(smem_raw), sb = S3 ? raw : (raw + 1023u) & ~1023u;
  if (S3 && (raw & 1023u)) __trap();  // S3 has no slack to align by (sm_90: the base is 1,024, see the top)
  unsigned char* const sm = smem_raw + (sb - raw);
  const int split = blockIdx.x, nsplit = gridDim.x, hg0 = blockIdx.y * HG, b = blockIdx.z;
  const int tid = threadIdx.x, wg = tid >> 7, warp = THREADS == 128 ? tid >> 5 : (tid >> 5) & 3;  // warpgroup, warp
  const int lane = tid & 31, r = lane >> 2, j = lane & 3;
  const u32 FULL = 0xffffffffu;
  float* const red = reinterpret_cast<float*>(sm + OFF_RED);

  pdl_wait();
  const int len = seqlens[b];
  const int2 span = split_span(split, chunk, len);
  const int c_lo = span.x, c_hi = span.y;
  const int nsteps = (c_hi - c_lo + TOK - 1) / TOK;
  const int* btrow = bt + (size_t)b * bt_stride;
  const int bs = 1 << log2bs, tbox = min(bs, TOK);
  const StepCopies copies{btrow, c_lo, c_hi, bs, log2bs, tbox, sb, &tmap};
  if (tid == 0) copies.start(nsteps);
#if KVP_MLA_F8MMA
  float* const fac = red + 2 * 4 * HG;  // [PBUF][16] rescale factors, then [16] M ([2][4][16] maxima before)
  float o[4 * NH_V][ACC];  // the values warpgroups' O^T (declared here: it outlives the roles' branches)
  float rowsum[NQ], rowmax[NQ];  // the values' copy of L and M (an empty split keeps 0 and -inf)
#pragma unroll
  for (int q = 0; q < NQ; ++q) rowsum[q] = 0.f, rowmax[q] = KVP_NEG_INF;
  const u32 ready0 = sb + OFF_HB, free0 = ready0 + 8 * PBUF;  // buffer b's: + 8 b
  if (tid == 0) {
    for (int i = 0; i < PBUF; ++i) mbar_init(ready0 + 8 * i, 128), mbar_init(free0 + 8 * i, 128 * VWG);
    mbar_fence_init();
  }
  stage_q_e4m3(sm, qn, qr, b, hg0, Hq);
  publish();  // q and its exponents visible; the mbarriers initialised

  if (wg == 0) {
    // ---- scores: thread (warp w, lane (r, j)) holds S rows (tokens) 16 w + r + 8 x, head slots q = 2 i + e
    float cb[NQ], m[NQ], l[NQ];
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      cb[q] = cbase * __int_as_float((127 + reinterpret_cast<const int*>(sm + OFF_QX)[8 * (q >> 1) + 2 * j + (q & 1)])
                                     << 23);
      m[q] = KVP_NEG_INF, l[q] = 0.f;
    }
    int s = 0, pb = 0;
    u32 parity = 0;
    for (int k = 0; k < nsteps; ++k) {
      const int nval = c_hi - (c_lo + k * TOK);
      const u32 tile = sb + OFF_ST + s * RAW;
      mbar_wait(sb + 8 * s, parity);
      float s2[16];  // columns: hi parts of the 16 heads, then lo parts
#pragma unroll
      for (int e = 0; e < 16; ++e) s2[e] = 0.f;
      __syncwarp();
      wg_fence();
#pragma unroll
      for (int ks = 0; ks < 18; ++ks)
        if (KVP_MLA_PROBE != 2)
          wgmma_e4m3(s2, desc64(tile + (ks >> 1) * (TOK * 64) + 32 * (ks & 1)),
                     desc64(sb + OFF_Q + (ks >> 1) * (QROWS * 64) + 32 * (ks & 1)), ks > 0);
      wg_commit();
      wg_wait();
      hold(s2);
      float sc[ACC];
      const bool v0 = 16 * warp + r < nval, v1 = 16 * warp + r + 8 < nval;
      float mx[NQ];
#pragma unroll
      for (int i = 0; i < NI; ++i)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          sc[4 * i + e] = v0 ? s2[4 * i + e] + s2[4 * i + e + 8] : KVP_NEG_INF;
          sc[4 * i + 2 + e] = v1 ? s2[4 * i + 2 + e] + s2[4 * i + 2 + e + 8] : KVP_NEG_INF;
          float x = fmaxf(sc[4 * i + e], sc[4 * i + 2 + e]);
          x = fmaxf(x, __shfl_xor_sync(FULL, x, 4));
          x = fmaxf(x, __shfl_xor_sync(FULL, x, 8));
          mx[2 * i + e] = fmaxf(x, __shfl_xor_sync(FULL, x, 16));
        }
      float* const rk = red + (k & 1) * (4 * HG);
      if (r == 0) {
#pragma unroll
        for (int q = 0; q < NQ; ++q) rk[warp * HG + 8 * (q >> 1) + 2 * j + (q & 1)] = mx[q];
      }
      bar_sync(BAR_SCORES, 128);
      float mu[NQ], al[NQ];
      wg_new_max<HG>(rk, cb, m, l, al, mu, j);
      if (k >= PBUF) mbar_wait(free0 + 8 * pb, (k / PBUF - 1) & 1);  // PV of step k - PBUF is done with buffer pb
      if (warp == 0 && r == 0) {
#pragma unroll
        for (int q = 0; q < NQ; ++q) fac[pb * HG + 8 * (q >> 1) + 2 * j + (q & 1)] = al[q];
      }
#pragma unroll
      for (int i = 0; i < NI; ++i)
#pragma unroll
        for (int e = 0; e < 2; ++e) {  // P' = 256 p (e4m3's range), taken back through the row sums
          const int q = 2 * i + e;
          const float p0 = ex2(fmaf(sc[4 * i + e], cb[q], 8.f - mu[q]));
          const float p1 = ex2(fmaf(sc[4 * i + 2 + e], cb[q], 8.f - mu[q]));
          l[q] += p0 + p1;
          store_p_e4m3(sm + pb * (QROWS * 64), 8 * i + 2 * j + e, 16 * warp + r, p0, p1);
        }
      // the row sums' per-warp parts and M travel with the last step's P, behind its READY arrive (no end barrier);
      // the values sum the parts
      if (k + 1 == nsteps) {
        float* const rl = red + ((k + 1) & 1) * (4 * HG);  // the maxima buffer no warp reads in this step
#pragma unroll
        for (int q = 0; q < NQ; ++q) {
          wg_row_sum<HG>(rl, l[q], warp, r, j, q);
          if (r == 0 && warp == 0) fac[PBUF * HG + 8 * (q >> 1) + 2 * j + (q & 1)] = m[q];
        }
      }
      asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // P for the values' wgmmas
      mbar_arrive(ready0 + 8 * pb);
      if (++s == STAGES) s = 0, parity ^= 1u;
      if (++pb == PBUF) pb = 0;
    }
  } else {
    // ---- values: O^T rows (dims) as pv_e4m3 says, columns head slots q = 2 i + e
    const int half0 = (wg - 1) * NH_V;  // this warpgroup's dim-tile quads
#pragma unroll
    for (int u = 0; u < 4 * NH_V; ++u)
#pragma unroll
      for (int e = 0; e < ACC; ++e) o[u][e] = 0.f;
    int s = 0, pb = 0;
    u32 parity = 0;
    for (int k = 0; k < nsteps; ++k) {
      const int nval = c_hi - (c_lo + k * TOK);
      mbar_wait(ready0 + 8 * pb, (k / PBUF) & 1);  // P and the factors of step k are in buffer pb
      if (k + 1 == nsteps) {  // and, with the last step's, the row sums' per-warp parts and M
        const float* const rl = red + (nsteps & 1) * (4 * HG);
#pragma unroll
        for (int q = 0; q < NQ; ++q) {
          const int h = 8 * (q >> 1) + 2 * j + (q & 1);
          rowsum[q] = wg_sum4<HG>(rl, h), rowmax[q] = fac[PBUF * HG + h];
        }
      }
      mbar_wait(sb + 8 * s, parity);  // (its bytes visible to this warpgroup's own reads)
#pragma unroll
      for (int q = 0; q < NQ; ++q) {
        const float al = fac[pb * HG + 8 * (q >> 1) + 2 * j + (q & 1)];
#pragma unroll
        for (int u = 0; u < 4 * NH_V; ++u) o[u][4 * (q >> 1) + (q & 1)] *= al, o[u][4 * (q >> 1) + 2 + (q & 1)] *= al;
      }
      if (KVP_MLA_PROBE != 1) pv_e4m3<NH_V>(o, sm, sb, OFF_ST + s * RAW, OFF_P + pb * (QROWS * 64), nval, half0);
      bar_sync(BAR_VALUES, 128 * VWG);  // every values warp is done with the stage and buffer pb
      if (k + PBUF < nsteps) mbar_arrive(free0 + 8 * pb);
      if (tid == 128 && k + STAGES < nsteps) {
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // the stage's reads before its refill
        copies.issue(k + STAGES, s);
      }
      if (++s == STAGES) s = 0, parity ^= 1u;
      if (++pb == PBUF) pb = 0;
    }
  }
  pdl_release();
  if (wg != 0) {
    const int half0 = (wg - 1) * NH_V;
#pragma unroll
    for (int q = 0; q < NQ; ++q) {
      const int h = 8 * (q >> 1) + 2 * j + (q & 1), hq = hg0 + h;
      if (hq >= Hq) continue;
      const float L = rowsum[q], M = rowmax[q];
      const float inv = L > 0.f ? vscale / L : 0.f;
      const size_t row = (size_t)b * Hq + hq;
#pragma unroll
      for (int u = 0; u < 4 * NH_V; ++u)
#pragma unroll
        for (int x = 0; x < 2; ++x) {
          const int d = 16 * (8 * warp + r) + 8 * ((half0 + (u >> 2)) ^ (r & 1)) + 2 * (u & 3) + x;
          const float v = o[u][4 * (q >> 1) + 2 * x + (q & 1)] * inv;
          if (nsplit == 1) {
            const __nv_bfloat16 vb = __float2bfloat16_rn(v);
            out[row * RANK + d] = *reinterpret_cast<const unsigned short*>(&vb);
          } else {
            opart[(row * nsplit + split) * RANK + d] = v;
          }
        }
      if (nsplit > 1 && wg == 1 && warp == 0 && r == 0)
        lse[row * nsplit + split] = L > 0.f ? M + log2f(L) : KVP_NEG_INF;
    }
  }
#else
  float cb[NQ];  // score multiplier of this thread's heads (log2 domain)
#if KVP_KVT == 2
  stage_q_fp16(sm, qn, qr, b, hg0, Hq);
  publish();  // q and its exponents visible; the mbarriers initialised
#pragma unroll
  for (int q = 0; q < NQ; ++q)
    cb[q] = cbase * __int_as_float((127 + reinterpret_cast<const int*>(sm + OFF_QX)[8 * (q >> 1) + 2 * j + (q & 1)])
                                   << 23);
#else
  // q -> [9 blocks][HG heads][128 bytes], swizzled (heads past Hq zero)
  for (int idx = tid; idx < HG * 72; idx += 128) {
    const int h = idx / 72, c = idx - 72 * h, hq = hg0 + h;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (hq < Hq) {
      const size_t row = (size_t)b * Hq + hq;
      v = c < 64 ? *reinterpret_cast<const uint4*>(qn + row * RANK + 8 * c)
                 : *reinterpret_cast<const uint4*>(qr + row * 64 + 8 * (c - 64));
    }
    *reinterpret_cast<uint4*>(sm + OFF_Q + (c >> 3) * (HG * 128) + sw128(h, c & 7)) = v;
  }
  publish();  // q visible to the wgmmas; the mbarriers initialised
#pragma unroll
  for (int q = 0; q < NQ; ++q) cb[q] = cbase;
#endif

  // thread (warp w, lane (r, j)): S and O columns 8 i + 2 j + e (head slot 2 i + e), S rows (tokens) 16 w + r + 8 x,
  // O rows (dims) 64 u + 16 w + r + 8 x; accumulator entry 4 i + 2 x + e
  float o[8][ACC];
#pragma unroll
  for (int u = 0; u < 8; ++u)
#pragma unroll
    for (int e = 0; e < ACC; ++e) o[u][e] = 0.f;
  float m[NQ], l[NQ];
#pragma unroll
  for (int q = 0; q < NQ; ++q) m[q] = KVP_NEG_INF, l[q] = 0.f;

  int s = 0;  // stage of step k and its mbarrier's parity
  u32 parity = 0;
  for (int k = 0; k < nsteps; ++k) {
    const int nval = c_hi - (c_lo + k * TOK);
    mbar_wait(sb + 8 * s, parity);
    if (S3) mbar_wait(sb + 8 * (STAGES + (k & 1)), (k >> 1) & 1);  // and the rope slot's
#if KVP_KVT == 2
    const u32 tile = sb + OFF_CV;
    widen(sm, OFF_ST + s * RAW, nval);
    publish();  // the operand tile visible to the wgmmas; every thread is done with the raw stage
    if (tid == 0 && k + STAGES < nsteps) copies.issue(k + STAGES, s);
#else
    const u32 tile = sb + OFF_ST + s * STAGE_B;
    if (nval < TOK) {  // rows past the end (stale, or another sequence's): zero values before PV reads them
      for (int idx = tid; idx < (TOK - nval) * 64; idx += 128) {
        const int t = nval + (idx >> 6), blk = (idx >> 3) & 7;
        *reinterpret_cast<uint4*>(sm + (tile - sb) + blk * TILE + 128 * t + 16 * (idx & 7)) = make_uint4(0, 0, 0, 0);
      }
      publish();
    }
#endif
    // the step's rope block (S3: its own slot, which takes P once QK is done with it) and P
    const u32 rope = S3 ? sb + OFF_ROPE + (k & 1) * TILE : tile + (BLOCKS - 1) * TILE, pbuf = S3 ? rope : sb + OFF_P;

    // ---- QK
    float sc[ACC];
#pragma unroll
    for (int e = 0; e < ACC; ++e) sc[e] = 0.f;
    wg_fence();
#pragma unroll
    for (int ks = 0; ks < 36; ++ks)
      wgmma_acc<HG, 0>(sc, desc(((ks >> 2) == BLOCKS - 1 ? rope : tile + (ks >> 2) * TILE) + 32 * (ks & 3)),
                       desc(sb + OFF_Q + (ks >> 2) * (HG * 128) + 32 * (ks & 3)), ks > 0);
    wg_commit();
    wg_wait();
    hold(sc);

    // ---- softmax (log2 domain); the raw scores are kept, the maxima scaled (cb > 0 keeps their order)
    const bool v0 = 16 * warp + r < nval, v1 = 16 * warp + r + 8 < nval;
    wg_step_max<HG>(sc, v0, v1, red + (k & 1) * (4 * HG), warp, r, j);
    float* const rk = red + (k & 1) * (4 * HG);
    __syncthreads();  // (S3: every warp's QK over the rope block has completed, so P may overwrite it)
#if KVP_MLA_EARLY
    // every warp's QK over the stage has completed: the rope block, which PV does not read, refills now (not in S3:
    // P is written over it)
    if (!S3 && tid == 0 && k + STAGES < nsteps) copies.issue_part(k + STAGES, s, BLOCKS - 1, BLOCKS, true);
#endif
    float al[NQ], mu[NQ];
    wg_new_max<HG>(rk, cb, m, l, al, mu, j);
    wg_scale_o<HG>(o, al);
    wg_store_p<HG>(reinterpret_cast<unsigned short*>(sm + (pbuf - sb)), sc, cb, mu, l, warp, r, j);
    publish();  // P visible to the wgmmas

    // ---- PV
    wg_fence();
#if KVP_MLA_EARLY
    constexpr int PVG = KVP_MLA_EARLY, UG = 8 / PVG;  // commit groups, dim tiles (= latent blocks) a group
#pragma unroll
    for (int g = 0; g < PVG; ++g) {
#pragma unroll
      for (int u = UG * g; u < UG * (g + 1); ++u)
#pragma unroll
        for (int kt = 0; kt < 4; ++kt)
          wgmma_acc<HG, 1>(o[u], desc(tile + u * TILE + kt * 16 * 128), desc(pbuf + 32 * kt), 1);
      wg_commit();
    }
#pragma unroll
    for (int g = 0; g < PVG; ++g) {
      wg_wait_pending(PVG - 1 - g);
#pragma unroll
      for (int u = UG * g; u < UG * (g + 1); ++u) hold(o[u]);
      __syncthreads();  // every warp's wgmmas over group g's blocks (and, last, over P) have completed
      if (S3 && tid == 0 && g == PVG - 1) copies.refill3(k, s, nsteps, false);  // P's rope slot
      if (tid == 0 && k + STAGES < nsteps) copies.issue_part(k + STAGES, s, UG * g, UG * (g + 1), S3 && g == 0);
    }
#else
#pragma unroll
    for (int u = 0; u < 8; ++u)
#pragma unroll
      for (int kt = 0; kt < 4; ++kt)
        wgmma_acc<HG, 1>(o[u], desc(tile + u * TILE + kt * 16 * 128), desc(pbuf + 32 * kt), 1);
    wg_commit();
    wg_wait();
#pragma unroll
    for (int u = 0; u < 8; ++u) hold(o[u]);
    __syncthreads();  // every warp's wgmmas over this step's tile (and over P) have completed
#if KVP_KVT != 2
    if (S3 && tid == 0) copies.refill3(k, s, nsteps, true);
    if (!S3 && tid == 0 && k + STAGES < nsteps) copies.issue(k + STAGES, s);
#endif
#endif
    if (++s == STAGES) s = 0, parity ^= 1u;
  }
  pdl_release();

  // ---- epilogue: a head's sum over its 64-token rows meets across lanes r and the 4 warps
  float* const rl = red + 2 * (4 * HG);
#pragma unroll
  for (int q = 0; q < NQ; ++q) wg_row_sum<HG>(rl, l[q], warp, r, j, q);
  __syncthreads();
#pragma unroll
  for (int q = 0; q < NQ; ++q) {
    const int h = 8 * (q >> 1) + 2 * j + (q & 1), hq = hg0 + h;
    if (hq >= Hq) continue;
    const float L = wg_sum4<HG>(rl, h);
    const float inv = L > 0.f ? vscale / L : 0.f;
    const size_t row = (size_t)b * Hq + hq;
#pragma unroll
    for (int u = 0; u < 8; ++u)
#pragma unroll
      for (int x = 0; x < 2; ++x) {
        const int d = 64 * u + 16 * warp + r + 8 * x;
        const float v = o[u][4 * (q >> 1) + 2 * x + (q & 1)] * inv;
        if (nsplit == 1) {
          const __nv_bfloat16 vb = __float2bfloat16_rn(v);
          out[row * RANK + d] = *reinterpret_cast<const unsigned short*>(&vb);
        } else {
          opart[(row * nsplit + split) * RANK + d] = v;
        }
      }
    if (nsplit > 1 && warp == 0 && r == 0) lse[row * nsplit + split] = L > 0.f ? m[q] + log2f(L) : KVP_NEG_INF;
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
