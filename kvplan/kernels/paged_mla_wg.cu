// kvplan absorbed-MLA paged decode on Hopper's warpgroup MMAs (wgmma, sm_90a), compiled at run time with NVRTC.
//
// The same maths as paged_mla_decode.cu (MQA over one 576-dim latent row per token, the first 512 dims the
// values). One CTA = one warpgroup (4 warps) per (split, 16 query heads, sequence), 64 latent rows a step, and
// the step's tokens are the M of every wgmma, so no operand passes through registers but the scores:
//   QK  S^T[64 tokens x 16 heads] = C[64 x 576] Q^T: 36 wgmma m64n16k16 over shared memory, the latent tile as
//       TMA lands it (K-major) and q staged once in the same layout.
//   softmax: each thread holds 2 tokens x 4 heads; a head's step max meets across the 4 warps in shared memory;
//       P^T goes to shared memory as bf16 [16 heads][64 tokens] (the K-major B operand of PV).
//   PV  O^T[512 dims x 16 heads] += C[:, :512]^T P^T: 8 dim tiles x 4 token k-steps, the latent read as the
//       MN-major A operand: the bytes QK read K-major, with no copy and no transpose.
// Layout: a step lands as [9 blocks of 64 dims][64 tokens][128 bytes] with the 128-byte swizzle (16-byte chunk c of
// row t at chunk c ^ (t & 7)); each block is a canonical SW128 tile of both operand forms: 8-row groups 1,024
// bytes apart (the descriptors' stride offset), the k-steps inside a 128-byte row 32 bytes apart. q and P are
// written by the threads in that layout. The tensor map views the cache as [9 blocks][tokens][64 dims] (strides
// 128 and 1,152 bytes): pages of 64+ tokens bring a step in one tensor copy, smaller pages one per (page, block).
// Two stages of 72 KB; thread 0 refills a stage once every warp's wgmmas over it have completed. (Measured slower on
// H200, benchmarks/RESULTS.md session 23: a ring of 25 block tiles of 8 KB, 1.7x, where a step still waited for
// its last tiles, issued no earlier than with whole stages; 48-row steps in three stages, 1.5x.)
// Rows past the sequence end: their scores are masked by a select and, in the last step, their value rows zeroed
// in shared memory before PV (NaN x 0 = NaN).
// fp8 e4m3 latents (KVP_KVT == 2) are not handled here: the plan keeps them on paged_mla_decode.cu.

#include "kvp_common.cuh"

#if KVP_KVT != 1
#error "paged_mla_wg.cu: bf16 latents only"
#endif

namespace kvp {
namespace mlawg {

constexpr int RANK = 512;                // value dims
constexpr int BLOCKS = 9;                // 64-dim blocks of a row
constexpr int HG = 16;                   // query heads per CTA: the N of every wgmma
constexpr int TOK = 64;                  // latent rows per step: the M of QK
constexpr int TILE = TOK * 128;          // one block of a step
constexpr int STAGE = BLOCKS * TILE;     // 73,728 bytes
constexpr int STAGES = 2;
constexpr int OFF_RED = 64;              // [3 buffers][4 warps][16 heads] fp32: step maxima (2), row sums (1)
constexpr int OFF_Q = 1024;              // [9 blocks][16 heads][128 bytes]
constexpr int OFF_P = OFF_Q + BLOCKS * HG * 128;  // [16 heads][64 tokens] bf16
constexpr int OFF_ST = OFF_P + HG * 128;
static_assert(OFF_RED + 3 * 4 * HG * 4 <= OFF_Q && OFF_ST % 1024 == 0, "shared layout");
static_assert(OFF_ST + STAGES * STAGE + 1024 == KVP_MLA_WG_SMEM, "limits.MLA_WG_SMEM disagrees");

struct alignas(64) TmapParam {
  unsigned long long opaque[16];  // a CUtensorMap encoded on the host (paged_mla.py): [tokens][9 blocks][64 dims]
};

// one box of the latent tensor map ({64 dims, rows, 1 or 9 blocks}) at (token row, block) into shared dst
__device__ __forceinline__ void tma_box(u32 dst, const TmapParam* map, int row, int block, u32 bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {0, %2, %3}], "
      "[%4];\n" ::"r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(row), "r"(block), "r"(bar)
      : "memory");
}

// byte offset of 16-byte chunk c of row t in a 128-byte-swizzled [rows][128 bytes] tile starting on 1,024 bytes
__device__ __forceinline__ int sw128(int t, int c) { return 128 * t + 16 * (c ^ (t & 7)); }

// wgmma shared-memory descriptor of a SW128 tile at shared address a: 8-row groups 1,024 bytes apart (both
// offsets: the stride offset for K-major operands, the leading one where an MN-major form reads it)
__device__ __forceinline__ u64 desc(u32 a) {
  return (u64)((a & 0x3FFFF) >> 4) | ((u64)(1024 >> 4) << 16) | ((u64)(1024 >> 4) << 32) | (1ull << 62);
}

// D[64 x 16] (+)= A B; TRANS_A: A is MN-major (the latent as V^T)
template <int TRANS_A>
__device__ __forceinline__ void wgmma16(float (&d)[8], u64 da, u64 db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7}, %8, %9, p, 1, 1, %11, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
      : "l"(da), "l"(db), "r"(accumulate), "n"(TRANS_A));
}
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// the accumulators stay put across an asynchronous wgmma (the compiler may not move their uses over it)
__device__ __forceinline__ void hold(float (&d)[8]) {
#pragma unroll
  for (int i = 0; i < 8; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
// generic-proxy shared writes (q, P, zeroed rows) made visible to the wgmmas, then the warpgroup meets
__device__ __forceinline__ void publish() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
}

}  // namespace mlawg
}  // namespace kvp

using namespace kvp;
using namespace kvp::mlawg;

extern "C" __global__ void __launch_bounds__(128, 1)
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
  const u32 raw = (u32)__cvta_generic_to_shared(smem_raw), sb = (raw + 1023u) & ~1023u;
  unsigned char* const sm = smem_raw + (sb - raw);
  const int split = blockIdx.x, nsplit = gridDim.x, hg0 = blockIdx.y * HG, b = blockIdx.z;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, r = lane >> 2, j = lane & 3;
  const u32 FULL = 0xffffffffu;
  float* const red = reinterpret_cast<float*>(sm + OFF_RED);

  pdl_wait();
  const int len = seqlens[b];
  const long long lo_l = (long long)split * chunk;
  const int c_lo = (int)min(lo_l, (long long)len);
  const int c_hi = (int)min(lo_l + chunk, (long long)len);
  const int nsteps = (c_hi - c_lo + TOK - 1) / TOK;
  const int* btrow = bt + (size_t)b * bt_stride;
  const int bs = 1 << log2bs, tbox = min(bs, TOK);

  // thread 0: step k into stage s: one box of all 9 blocks (pages of 64+ tokens), else one box of tbox rows per
  // (page run holding a row before the end, block) (a box never crosses a page: steps start on multiples of 64)
  auto issue = [&](int k, int s) {
    const int pos0 = c_lo + k * TOK, runs = (min(TOK, c_hi - pos0) + tbox - 1) / tbox;
    const u32 bar = sb + 8 * s, dst = sb + OFF_ST + s * STAGE;
    mbar_arrive_tx(bar, (u32)(runs * tbox * 128 * BLOCKS));
    for (int p = 0; p < runs; ++p) {
      const int pos = pos0 + p * tbox, row = __ldg(btrow + (pos >> log2bs)) * bs + (pos & (bs - 1));
#pragma unroll 1
      if (tbox == TOK) {
        tma_box(dst, &tmap, row, 0, bar);
      } else {
        for (int blk = 0; blk < BLOCKS; ++blk) tma_box(dst + blk * TILE + p * tbox * 128, &tmap, row, blk, bar);
      }
    }
  };
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) mbar_init(sb + 8 * s, 1);
    mbar_fence_init();
    for (int k = 0; k < STAGES && k < nsteps; ++k) issue(k, k);
  }
  // q -> [9 blocks][16 heads][128 bytes], swizzled (heads past Hq zero)
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

  // thread (warp w, lane (r, j)): S and O columns 8 i + 2 j + e (head slot 2 i + e), S rows (tokens) 16 w + r + 8 x,
  // O rows (dims) 64 u + 16 w + r + 8 x; accumulator entry 4 i + 2 x + e
  float o[8][8];
#pragma unroll
  for (int u = 0; u < 8; ++u)
#pragma unroll
    for (int e = 0; e < 8; ++e) o[u][e] = 0.f;
  float m[4], l[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) m[q] = KVP_NEG_INF, l[q] = 0.f;

  for (int k = 0; k < nsteps; ++k) {
    const int s = k & 1;
    const u32 tile = sb + OFF_ST + s * STAGE;
    const int nval = c_hi - (c_lo + k * TOK);
    mbar_wait(sb + 8 * s, (u32)((k >> 1) & 1));
    if (nval < TOK) {  // rows past the end (stale, or another sequence's): zero values before PV reads them
      for (int idx = tid; idx < (TOK - nval) * 64; idx += 128) {
        const int t = nval + (idx >> 6), blk = (idx >> 3) & 7;
        *reinterpret_cast<uint4*>(sm + OFF_ST + s * STAGE + blk * TILE + 128 * t + 16 * (idx & 7)) =
            make_uint4(0, 0, 0, 0);
      }
      publish();
    }

    // ---- QK
    float sc[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) sc[e] = 0.f;
    wg_fence();
#pragma unroll
    for (int ks = 0; ks < 36; ++ks)
      wgmma16<0>(sc, desc(tile + (ks >> 2) * TILE + 32 * (ks & 3)), desc(sb + OFF_Q + (ks >> 2) * (HG * 128) +
                                                                         32 * (ks & 3)), ks > 0);
    wg_commit();
    wg_wait();
    hold(sc);

    // ---- softmax (log2 domain); the raw scores are kept, the maxima scaled (cbase > 0 keeps their order)
    const bool v0 = 16 * warp + r < nval, v1 = 16 * warp + r + 8 < nval;
    float mx[4];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        sc[4 * i + e] = v0 ? sc[4 * i + e] : KVP_NEG_INF;
        sc[4 * i + 2 + e] = v1 ? sc[4 * i + 2 + e] : KVP_NEG_INF;
        float x = fmaxf(sc[4 * i + e], sc[4 * i + 2 + e]);
        x = fmaxf(x, __shfl_xor_sync(FULL, x, 4));
        x = fmaxf(x, __shfl_xor_sync(FULL, x, 8));
        mx[2 * i + e] = fmaxf(x, __shfl_xor_sync(FULL, x, 16));
      }
    float* const rk = red + s * (4 * HG);
    if (r == 0) {
#pragma unroll
      for (int q = 0; q < 4; ++q) rk[warp * HG + 8 * (q >> 1) + 2 * j + (q & 1)] = mx[q];
    }
    __syncthreads();
    float al[4], mu[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int h = 8 * (q >> 1) + 2 * j + (q & 1);
      const float step = fmaxf(fmaxf(rk[h], rk[HG + h]), fmaxf(rk[2 * HG + h], rk[3 * HG + h])) * cbase;
      const float mn = fmaxf(m[q], step);
      mu[q] = mn == KVP_NEG_INF ? 0.f : mn;
      al[q] = ex2(m[q] - mu[q]);
      m[q] = mn;
      l[q] *= al[q];
    }
#pragma unroll
    for (int u = 0; u < 8; ++u)
#pragma unroll
      for (int e = 0; e < 8; ++e) o[u][e] *= al[2 * (e >> 2) + (e & 1)];
    unsigned short* const sp = reinterpret_cast<unsigned short*>(sm + OFF_P);
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int q = 2 * i + e, h = 8 * i + 2 * j + e;
#pragma unroll
        for (int x = 0; x < 2; ++x) {
          const float p = ex2(fmaf(sc[4 * i + 2 * x + e], cbase, -mu[q]));
          l[q] += p;
          const int t = 16 * warp + r + 8 * x;
          const __nv_bfloat16 pb = __float2bfloat16_rn(p);
          sp[(h >> 3) * 512 + (sw128(h & 7, t >> 3) >> 1) + (t & 7)] = *reinterpret_cast<const unsigned short*>(&pb);
        }
      }
    publish();  // P visible to the wgmmas

    // ---- PV
    wg_fence();
#pragma unroll
    for (int u = 0; u < 8; ++u)
#pragma unroll
      for (int kt = 0; kt < 4; ++kt)
        wgmma16<1>(o[u], desc(tile + u * TILE + kt * 16 * 128), desc(sb + OFF_P + 32 * kt), 1);
    wg_commit();
    wg_wait();
#pragma unroll
    for (int u = 0; u < 8; ++u) hold(o[u]);
    __syncthreads();  // every warp's wgmmas over this stage (and over P) have completed
    if (tid == 0 && k + STAGES < nsteps) issue(k + STAGES, s);
  }
  pdl_release();

  // ---- epilogue: a head's sum over its 64-token rows meets across lanes r and the 4 warps
  float* const rl = red + 2 * (4 * HG);
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    float x = l[q];
    x += __shfl_xor_sync(FULL, x, 4);
    x += __shfl_xor_sync(FULL, x, 8);
    x += __shfl_xor_sync(FULL, x, 16);
    if (r == 0) rl[warp * HG + 8 * (q >> 1) + 2 * j + (q & 1)] = x;
  }
  __syncthreads();
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const int h = 8 * (q >> 1) + 2 * j + (q & 1), hq = hg0 + h;
    if (hq >= Hq) continue;
    const float L = rl[h] + rl[HG + h] + rl[2 * HG + h] + rl[3 * HG + h];
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
}

extern "C" __global__ void __launch_bounds__(256)
kvp_mla_merge(const float* __restrict__ opart, const float* __restrict__ lse, unsigned short* __restrict__ out,
              int rows, int nsplit) {
  merge_split_rows<RANK, true>(opart, lse, out, nsplit);
}
