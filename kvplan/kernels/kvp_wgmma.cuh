// Hopper warpgroup-MMA helpers (sm_90a) shared by the wgmma decode kernels (paged_mla_wg.cu, paged_decode_wg.cu):
// tensor copies, the 128-byte swizzle and its shared-memory descriptors, wgmma issue, commit and wait, and the
// softmax of a step over a warpgroup's accumulators. The includer defines KVP_WG_FP16: 1 where the MMAs' 16-bit
// operands are fp16, 0 for bf16.
#pragma once
#include "kvp_common.cuh"

#ifndef KVP_WG_FP16
#error "define KVP_WG_FP16 before kvp_wgmma.cuh"
#endif
#if KVP_WG_FP16
#define KVP_WG_TYPES ".f32.f16.f16"
#else
#define KVP_WG_TYPES ".f32.bf16.bf16"
#endif

namespace kvp {

struct alignas(64) TmapParam {
  unsigned long long opaque[16];  // a CUtensorMap encoded on the host (_runtime.encode_tensor_map)
};

// one box of a 3-D tensor map at (0, row, block) into shared dst, completing on mbarrier bar
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

// D[64 x N] (+)= A B over 16-bit operands in shared memory (N = 16, 32 or 64: N / 2 fp32 registers a thread);
// TRANS_A: A is MN-major
template <int N, int TRANS_A>
__device__ __forceinline__ void wgmma_acc(float (&d)[N / 2], u64 da, u64 db, int accumulate) {
  static_assert(N == 16 || N == 32 || N == 64, "wgmma N");
  if constexpr (N == 16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16" KVP_WG_TYPES " {%0,%1,%2,%3,%4,%5,%6,%7}, %8, %9, p, 1, 1, %11, 0;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
        : "l"(da), "l"(db), "r"(accumulate), "n"(TRANS_A));
  } else if constexpr (N == 32) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16" KVP_WG_TYPES " {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,"
        "%15}, %16, %17, p, 1, 1, %19, 0;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "l"(da), "l"(db), "r"(accumulate), "n"(TRANS_A));
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16" KVP_WG_TYPES " {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,"
        "%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, %35, 0;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db), "r"(accumulate), "n"(TRANS_A));
  }
}
__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// wait until at most n (a constant after unrolling: 0..3) of this warp's wgmma groups are pending
__device__ __forceinline__ void wg_wait_pending(int n) {
  switch (n) {
    case 0: asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); break;
    case 1: asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); break;
    case 2: asm volatile("wgmma.wait_group.sync.aligned 2;\n" ::: "memory"); break;
    default: asm volatile("wgmma.wait_group.sync.aligned 3;\n" ::: "memory"); break;
  }
}
// the accumulators stay put across an asynchronous wgmma (the compiler may not move their uses over it)
template <int N>
__device__ __forceinline__ void hold(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
// generic-proxy shared writes (q, P, zeroed or widened rows) made visible to the wgmmas, then the CTA meets
__device__ __forceinline__ void publish() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
}

// a 16-bit value of the MMAs' type
__device__ __forceinline__ unsigned short wg_to16(float x) {
#if KVP_WG_FP16
  const __half h = __float2half_rn(x);
#else
  const __nv_bfloat16 h = __float2bfloat16_rn(x);
#endif
  return *reinterpret_cast<const unsigned short*>(&h);
}

// ---- the softmax of one 64-token step over a warpgroup's S^T accumulator [64 tokens x HG heads]. Thread (warp w,
// lane (r, j)) holds rows 16 w + r + 8 x and columns 8 i + 2 j + e at entry 4 i + 2 x + e; its head slot q = 2 i + e
// is head 8 (q >> 1) + 2 j + (q & 1). Log2 domain: the raw scores are kept and the maxima scaled by cb (> 0 keeps
// their order). Per-warp values meet in [4 warps][HG] fp32 buffers in shared memory.

// rows v0 / v1 (16 w + r, + 8) past the end -> -inf; each head's maximum over this warp's rows into rk[warp][head]
template <int HG>
__device__ __forceinline__ void wg_step_max(float (&sc)[HG / 2], bool v0, bool v1, float* rk, int warp, int r,
                                            int j) {
  float mx[HG / 4];
#pragma unroll
  for (int i = 0; i < HG / 8; ++i)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      sc[4 * i + e] = v0 ? sc[4 * i + e] : KVP_NEG_INF;
      sc[4 * i + 2 + e] = v1 ? sc[4 * i + 2 + e] : KVP_NEG_INF;
      float x = fmaxf(sc[4 * i + e], sc[4 * i + 2 + e]);
      x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 4));
      x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 8));
      mx[2 * i + e] = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 16));
    }
  if (r == 0) {
#pragma unroll
    for (int q = 0; q < HG / 4; ++q) rk[warp * HG + 8 * (q >> 1) + 2 * j + (q & 1)] = mx[q];
  }
}

// once the warpgroup has met: each head's step max over the 4 warps (times cb), the running max m, the factor al the
// old sums and outputs take (l *= al here) and mu, the max the step's probabilities subtract (0 while nothing seen)
template <int HG>
__device__ __forceinline__ void wg_new_max(const float* rk, const float (&cb)[HG / 4], float (&m)[HG / 4],
                                           float (&l)[HG / 4], float (&al)[HG / 4], float (&mu)[HG / 4], int j) {
#pragma unroll
  for (int q = 0; q < HG / 4; ++q) {
    const int h = 8 * (q >> 1) + 2 * j + (q & 1);
    const float step = fmaxf(fmaxf(rk[h], rk[HG + h]), fmaxf(rk[2 * HG + h], rk[3 * HG + h])) * cb[q];
    const float mn = fmaxf(m[q], step);
    mu[q] = mn == KVP_NEG_INF ? 0.f : mn;
    al[q] = ex2(m[q] - mu[q]);
    m[q] = mn;
    l[q] *= al[q];
  }
}

// O^T tiles (columns: heads) times each head's al
template <int HG, int U>
__device__ __forceinline__ void wg_scale_o(float (&o)[U][HG / 2], const float (&al)[HG / 4]) {
#pragma unroll
  for (int u = 0; u < U; ++u)
#pragma unroll
    for (int e = 0; e < HG / 2; ++e) o[u][e] *= al[2 * (e >> 2) + (e & 1)];
}

// P = exp2(s cb - mu) into sp as 16-bit [HG heads][64 tokens] (SW128: the K-major B operand of PV); l += P
template <int HG>
__device__ __forceinline__ void wg_store_p(unsigned short* sp, const float (&sc)[HG / 2], const float (&cb)[HG / 4],
                                           const float (&mu)[HG / 4], float (&l)[HG / 4], int warp, int r, int j) {
#pragma unroll
  for (int i = 0; i < HG / 8; ++i)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int q = 2 * i + e, h = 8 * i + 2 * j + e;
#pragma unroll
      for (int x = 0; x < 2; ++x) {
        const float p = ex2(fmaf(sc[4 * i + 2 * x + e], cb[q], -mu[q]));
        l[q] += p;
        const int t = 16 * warp + r + 8 * x;
        sp[(h >> 3) * 512 + (sw128(h & 7, t >> 3) >> 1) + (t & 7)] = wg_to16(p);
      }
    }
}

// head slot q's row sum over this warp's rows (lanes r), one value a warp, into rl[warp][head]
template <int HG>
__device__ __forceinline__ void wg_row_sum(float* rl, float x, int warp, int r, int j, int q) {
  x += __shfl_xor_sync(0xffffffffu, x, 4);
  x += __shfl_xor_sync(0xffffffffu, x, 8);
  x += __shfl_xor_sync(0xffffffffu, x, 16);
  if (r == 0) rl[warp * HG + 8 * (q >> 1) + 2 * j + (q & 1)] = x;
}

// head h's value summed over the 4 warps' parts of a [4][HG] buffer
template <int HG>
__device__ __forceinline__ float wg_sum4(const float* v, int h) {
  return v[h] + v[HG + h] + v[2 * HG + h] + v[3 * HG + h];
}

}  // namespace kvp
