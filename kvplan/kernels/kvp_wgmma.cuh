// Hopper warpgroup-MMA helpers (sm_90a) shared by the wgmma decode kernels (paged_mla_wg.cu, paged_decode_wg.cu):
// tensor copies, the 128-byte swizzle and its shared-memory descriptors, wgmma issue, commit and wait. The includer
// defines KVP_WG_TYPES, the MMAs' accumulator and operand types (".f32.bf16.bf16" or ".f32.f16.f16").
#pragma once
#include "kvp_common.cuh"

#ifndef KVP_WG_TYPES
#error "define KVP_WG_TYPES before kvp_wgmma.cuh"
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

}  // namespace kvp
