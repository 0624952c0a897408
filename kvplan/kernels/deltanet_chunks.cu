// The sequential part of the chunked gated-DeltaNet prefill (kvplan/gpu/deltanet.py chunked_delta_rule), float32:
// per head row h (sequence x value head) and chunk c in order,
//     out[c, h]  = o_intra[c, h] + q_eff[c, h] @ S          ([C, dv]: C tokens of the chunk)
//     S          = M[c, h] @ S + B[c, h]                    ([dk, dv])
// from S = state[h]; the final S is written back to state[h]. Everything else of the chunked form (the triangular
// inverse, q_eff, o_intra, M, B) is batched torch over all chunks; this loop was 128 dependent cuBLAS launches a
// layer at 8,192 tokens (7 us each on an H200, latency-bound), here one launch.
//
// A CTA owns KVP_DC_COLS columns of one head's state in shared memory (two buffers: a chunk reads one and writes
// the other, one barrier a chunk); columns of a state are independent, so dv / COLS CTAs run a head in parallel.
// Threads: 256. Output phase: thread t takes row t / 4 of the chunk and 4 columns; state phase: row t / 2 of S and
// 8 columns. Rows of q_eff and M stream from global memory (L2: the head's dv / COLS CTAs read the same rows), all
// of a thread's loads of a chunk issued at once and the next chunk's rows prefetched to L2 (the first form, a
// float4 at a time, was latency-bound: 15 us a chunk on an H200, twice the torch loop's time).
// DK (the key dim) is compiled; dv % COLS == 0 and C <= 64 (the host checks).

#include "kvp_pdl.cuh"

#ifndef KVP_DC_DK
#define KVP_DC_DK 128
#endif
#define KVP_DC_COLS 16
#define KVP_DC_THREADS 256

static_assert(KVP_DC_DK == KVP_DC_THREADS / 2, "state phase: one row of S per two threads");
static_assert(KVP_DC_DK % 16 == 0, "rows are read 16 floats at a time");

__device__ __forceinline__ float4 ld4(const float* p) { return __ldg(reinterpret_cast<const float4*>(p)); }

__device__ __forceinline__ void prefetch_l2(const float* p) { asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p)); }

__device__ __forceinline__ void fma4(float (&acc)[4], float a, const float4& b) {
  acc[0] = fmaf(a, b.x, acc[0]), acc[1] = fmaf(a, b.y, acc[1]), acc[2] = fmaf(a, b.z, acc[2]),
  acc[3] = fmaf(a, b.w, acc[3]);
}

extern "C" __global__ void __launch_bounds__(KVP_DC_THREADS)
kvp_dn_chunks(const float* __restrict__ trans,   // M      [nc, H, DK, DK]
              const float* __restrict__ inject,  // B      [nc, H, DK, dv]
              const float* __restrict__ q_eff,   // Q_eff  [nc, H, C, DK]
              const float* __restrict__ o_intra, // O_intra[nc, H, C, dv]
              float* __restrict__ out,           // out    [nc, H, C, dv] (not o_intra: its reads are non-coherent)
              float* __restrict__ state,         // S      [H, DK, dv]: initial in, final out
              int nc, int heads, int chunk, int dv) {
  constexpr int DK = KVP_DC_DK, W = KVP_DC_COLS;
  __shared__ __align__(16) float s_buf[2][DK][W];
  const int tid = threadIdx.x, h = blockIdx.y, col0 = blockIdx.x * W;
  kvp::pdl_wait();  // every input is written by the torch launches before this one
  for (int i = tid; i < DK * W / 4; i += KVP_DC_THREADS) {
    const int r = i / (W / 4), c4 = (i % (W / 4)) * 4;
    *reinterpret_cast<float4*>(&s_buf[0][r][c4]) =
        *reinterpret_cast<const float4*>(state + ((size_t)h * DK + r) * dv + col0 + c4);
  }
  __syncthreads();
  kvp::pdl_release();
  const int orow = tid >> 2, oc = (tid & 3) * 4;  // output phase: row of the chunk, 4 columns
  const int srow = tid >> 1, sc = (tid & 1) * 8;  // state phase: row of S, 8 columns
  const bool orow_ok = orow < chunk;
  int cur = 0;
  for (int c = 0; c < nc; ++c) {
    const size_t ch = (size_t)c * heads + h;
    const float(*s)[W] = s_buf[cur];
    const float* q = q_eff + (ch * chunk + orow) * DK;
    const float* m = trans + (ch * DK + srow) * DK;
    if (c + 1 < nc) {  // the next chunk's rows on their way to L2 (each row: 4 lines of 128 bytes)
      const size_t step = (size_t)heads;
      if (orow_ok && (tid & 3) == 0)
        for (int l = 0; l < DK / 32; ++l) prefetch_l2(q + step * chunk * DK + l * 32);
      if ((tid & 1) == 0)
        for (int l = 0; l < DK / 32; ++l) prefetch_l2(m + step * DK * DK + l * 32);
    }
    // every load of both phases issued before the first multiply: one memory latency a chunk, not one per 4 dims
    float4 mv[DK / 4];
#pragma unroll
    for (int i = 0; i < DK / 4; ++i) mv[i] = ld4(m + 4 * i);
    const size_t b = (ch * DK + srow) * dv + col0 + sc;
    const float4 b0 = ld4(inject + b), b1 = ld4(inject + b + 4);
    if (orow_ok) {
      const size_t o = (ch * chunk + orow) * dv + col0 + oc;
      float4 qv[DK / 4];
#pragma unroll
      for (int i = 0; i < DK / 4; ++i) qv[i] = ld4(q + 4 * i);
      const float4 base = ld4(o_intra + o);
      float acc[4] = {base.x, base.y, base.z, base.w};
#pragma unroll
      for (int i = 0; i < DK / 4; ++i) {
        fma4(acc, qv[i].x, *reinterpret_cast<const float4*>(&s[4 * i][oc]));
        fma4(acc, qv[i].y, *reinterpret_cast<const float4*>(&s[4 * i + 1][oc]));
        fma4(acc, qv[i].z, *reinterpret_cast<const float4*>(&s[4 * i + 2][oc]));
        fma4(acc, qv[i].w, *reinterpret_cast<const float4*>(&s[4 * i + 3][oc]));
      }
      *reinterpret_cast<float4*>(out + o) = make_float4(acc[0], acc[1], acc[2], acc[3]);
    }
    {
      float lo[4] = {b0.x, b0.y, b0.z, b0.w}, hi[4] = {b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < DK / 4; ++i) {
        const float av[4] = {mv[i].x, mv[i].y, mv[i].z, mv[i].w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          fma4(lo, av[j], *reinterpret_cast<const float4*>(&s[4 * i + j][sc]));
          fma4(hi, av[j], *reinterpret_cast<const float4*>(&s[4 * i + j][sc + 4]));
        }
      }
      float* d = s_buf[cur ^ 1][srow] + sc;
      *reinterpret_cast<float4*>(d) = make_float4(lo[0], lo[1], lo[2], lo[3]);
      *reinterpret_cast<float4*>(d + 4) = make_float4(hi[0], hi[1], hi[2], hi[3]);
    }
    __syncthreads();  // the new S complete before the next chunk reads it; the old one free to overwrite after
    cur ^= 1;
  }
  for (int i = tid; i < DK * W / 4; i += KVP_DC_THREADS) {
    const int r = i / (W / 4), c4 = (i % (W / 4)) * 4;
    *reinterpret_cast<float4*>(state + ((size_t)h * DK + r) * dv + col0 + c4) =
        *reinterpret_cast<const float4*>(&s_buf[cur][r][c4]);
  }
}
