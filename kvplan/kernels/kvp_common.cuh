// Device helpers shared by paged_decode.cu and paged_mla_decode.cu (build.py inlines this header
// into each source before NVRTC sees it, and hashes the result for the kernel cache).
#pragma once
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include "kvp_pdl.cuh"

typedef unsigned int u32;
typedef unsigned long long u64;

#define KVP_NEG_INF (-__int_as_float(0x7f800000))

namespace kvp {

__device__ __forceinline__ u32 movtrans(u32 x) {
  u32 y;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
  return y;
}

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ u32 prmt(u32 a, u32 b, u32 sel) {
  u32 d;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
  return d;
}

// two e4m3 bytes (the low 16 bits of x, lo = first) -> fp16x2
__device__ __forceinline__ u32 e4m3x2_to_h2(u32 x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(x & 0xffffu), __NV_E4M3);
  return (u32)h.x | ((u32)h.y << 16);
#else
  // no cvt instruction before sm_89 (the header's fallback loops): place sign, exponent and
  // mantissa in fp16's fields, which is the e4m3 value times 2^-8 (subnormals included), then
  // scale by 2^8, exactly
  const u32 t = prmt(x, 0u, 0x1404);  // [0, b0, 0, b1]
  const u32 hb = (t & 0x80008000u) | ((t >> 1) & 0x3f803f80u);
  __half2 v = __hmul2(*reinterpret_cast<const __half2*>(&hb), __float2half2_rn(256.f));
  return *reinterpret_cast<u32*>(&v);
#endif
}

// tokens [x, y) of split `split` of a `len`-token sequence cut in chunks of `chunk` (empty past the end; 64-bit
// product: split x chunk may pass 2^31 when the splits overshoot a short sequence)
__device__ __forceinline__ int2 split_span(int split, int chunk, int len) {
  const long long lo = (long long)split * chunk;
  return make_int2((int)min(lo, (long long)len), (int)min(lo + chunk, (long long)len));
}
__device__ __forceinline__ float bf16lo(u32 w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf16hi(u32 w) { return __uint_as_float(w & 0xffff0000u); }

__device__ __forceinline__ void mbar_init(u32 bar, u32 count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_fence_init() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive_tx(u32 bar, u32 bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void mbar_arrive(u32 bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#else
  __trap();
#endif
}
__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  u32 done;
  do {
    asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done) : "r"(bar), "r"(parity) : "memory");
  } while (!done);
#else
  __trap();
#endif
}
// nanoseconds, for the KVP_TRACE timeline
__device__ __forceinline__ unsigned long long globaltimer() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
// global -> shared bulk copy of `bytes` (multiple of 16, 16-byte aligned ends) completing on bar
__device__ __forceinline__ void bulk_g2s(u32 dst, const void* src, u32 bytes, u32 bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
               ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
#else
  __trap();
#endif
}

// the same copy of data read once (a decode step's KV pages), marked L2 evict-first so that it does not push out
// what is read again; H200: 1-3% faster on most decode shapes, 2-8% on MLA 128 heads, none slower
// (benchmarks/RESULTS.md, session 19). The read probe keeps the plain copy.
__device__ __forceinline__ void bulk_g2s_once(u32 dst, const void* src, u32 bytes, u32 bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  unsigned long long policy;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;\n"
      ::"r"(dst), "l"(src), "r"(bytes), "r"(bar), "l"(policy) : "memory");
#else
  __trap();
#endif
}

// 16-byte global load that skips L1 (streamed once)
__device__ __forceinline__ uint4 ld_nc16(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

// two floats -> a packed bf16 (BF16) or fp16 pair, lo = first
template <bool BF16>
__device__ __forceinline__ u32 pack2(float lo, float hi) {
  if constexpr (BF16) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<u32*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<u32*>(&v);
  }
}

// Split merge of row blockIdx.x: out[row] = sum_s w_s o_s / sum_s w_s with w_s = 2^(lse_s - max lse);
// empty splits have lse -inf (their partials are never read). opart [rows, nsplit, D] fp32 (each split already
// normalised), lse [rows, nsplit] (log2 domain). Every warp first takes the row's largest lse, so the weighted
// sum carries no running rescale from split to split and its loads overlap (a running max made each split wait
// for the previous one: H200, MLA 16 heads at 43 splits, 5.1 us per merge); D/4 threads per split group (float4
// each), 256 / (D/4) groups walk the splits, then sum through shared memory. Launch with 256 threads.
template <int D, bool BF16>
__device__ __forceinline__ void merge_split_rows(const float* __restrict__ opart, const float* __restrict__ lse,
                                                 unsigned short* __restrict__ out, int nsplit) {
  constexpr int TPR = D / 4;
  constexpr int NG = 256 / TPR;
  __shared__ float4 s_acc[NG][TPR];
  __shared__ float s_den[NG];
  pdl_wait();
  pdl_release();
  const int row = blockIdx.x, lane = threadIdx.x & 31;
  const int t = threadIdx.x % TPR, g = threadIdx.x / TPR;
  const float* ls = lse + (size_t)row * nsplit;
  const float4* op = reinterpret_cast<const float4*>(opart + (size_t)row * nsplit * D) + t;
  float M = KVP_NEG_INF;
  for (int s = lane; s < nsplit; s += 32) M = fmaxf(M, ls[s]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
  float den = 0.f;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  if (M != KVP_NEG_INF) {
#pragma unroll 4
    for (int s = g; s < nsplit; s += NG) {
      const float x = ls[s];
      if (x == KVP_NEG_INF) continue;
      const float w = ex2(x - M);
      const float4 v = op[(size_t)s * TPR];
      acc.x += w * v.x;
      acc.y += w * v.y;
      acc.z += w * v.z;
      acc.w += w * v.w;
      den += w;
    }
  }
  s_acc[g][t] = acc;
  if (t == 0) s_den[g] = den;
  __syncthreads();
  if (g != 0) return;
  float4 tot = make_float4(0.f, 0.f, 0.f, 0.f);
  float dd = 0.f;
#pragma unroll
  for (int k = 0; k < NG; ++k) {
    const float4 v = s_acc[k][t];
    tot.x += v.x;
    tot.y += v.y;
    tot.z += v.z;
    tot.w += v.w;
    dd += s_den[k];
  }
  const float inv = dd > 0.f ? 1.f / dd : 0.f;
  uint2 pk;
  pk.x = pack2<BF16>(tot.x * inv, tot.y * inv);
  pk.y = pack2<BF16>(tot.z * inv, tot.w * inv);
  *reinterpret_cast<uint2*>(out + (size_t)row * D + t * 4) = pk;
}

// Split merge for few splits (nsplit <= SMAX): D/4 threads (float4 each) per row, 256 / (D/4) rows per CTA, each
// thread reading the row's lse values and its partials itself, all loads issued together, no shared memory. One
// 256-thread CTA per row left most of its threads idle at 2-8 splits (a large batch's merge: rows of 2-8 splits).
template <int D, bool BF16, int SMAX>
__device__ __forceinline__ void merge_few_splits(const float* __restrict__ opart, const float* __restrict__ lse,
                                                 unsigned short* __restrict__ out, int rows, int nsplit) {
  constexpr int TPR = D / 4;
  constexpr int RPC = 256 / TPR;
  pdl_wait();
  pdl_release();
  const int t = threadIdx.x % TPR, row = blockIdx.x * RPC + threadIdx.x / TPR;
  if (threadIdx.x >= RPC * TPR || row >= rows) return;  // (RPC * TPR < 256 where D / 4 does not divide it)
  const float* ls = lse + (size_t)row * nsplit;
  const float4* op = reinterpret_cast<const float4*>(opart + (size_t)row * nsplit * D) + t;
  float x[SMAX];
  float M = KVP_NEG_INF;
#pragma unroll
  for (int s = 0; s < SMAX; ++s) {
    x[s] = s < nsplit ? ls[s] : KVP_NEG_INF;
    M = fmaxf(M, x[s]);
  }
  float den = 0.f;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  if (M != KVP_NEG_INF) {
#pragma unroll
    for (int s = 0; s < SMAX; ++s) {
      if (x[s] == KVP_NEG_INF) continue;  // (an empty split, or past nsplit: never read)
      const float w = ex2(x[s] - M);
      const float4 v = op[(size_t)s * TPR];
      acc.x += w * v.x;
      acc.y += w * v.y;
      acc.z += w * v.z;
      acc.w += w * v.w;
      den += w;
    }
  }
  const float inv = den > 0.f ? 1.f / den : 0.f;
  uint2 pk;
  pk.x = pack2<BF16>(acc.x * inv, acc.y * inv);
  pk.y = pack2<BF16>(acc.z * inv, acc.w * inv);
  *reinterpret_cast<uint2*>(out + (size_t)row * D + t * 4) = pk;
}

}  // namespace kvp
