// kvplan: three kernels of the gated-DeltaNet prefill (kvplan/gpu/deltanet.py), compiled at run time with NVRTC.
//
// kvp_dn_conv_chunks_{bf16,f16}: the causal depthwise convolution over each sequence's tokens and SiLU, reading
// the projection's rows where they lie, then q and k l2-normalised (q scaled), each key head's rows copied to the
// value heads it serves, and q, k, v written chunk-major in fp32: what the chunked rule multiplies. torch ran it
// as a transpose to [R, C, L], a pad, its generic depthwise conv2d kernel (0.35 ms a layer at 8,192 tokens on an
// H200), SiLU, a transpose back, the norms, the copies to value heads and three chunk-major copies.
//
// kvp_dn_gated_norm_{bf16,f16}: the layer's output RMSNorm times SiLU(z), from the chunk-major output of the chunked
// rule into token order in the activations' dtype: a warp a (token, head). torch ran it as a permute copy and
// eight elementwise passes over fp32 tensors (~0.3 ms a layer at 8,192 tokens).
//
// kvp_dn_scan: the sequential part of the chunked delta rule (chunked_delta_rule). Every chunk's state follows
// from the one before through an affine map,
//     S[c + 1] = M[c] S[c] + B[c]        (S: [dk, dv] a value head, M: [dk, dk], fp32),
// which torch ran as one batched matmul launch a chunk: 128 launches a layer at 8,192 tokens, 34 of Qwen3-Next's
// 297 GPU ms (H200, session 32's prefill profile), each mostly launch and tile overhead. Here one launch runs them
// all. The columns of S are independent, so a CTA owns 16 columns of one head's state: 128 CTAs for 16 heads of
// dv = 128. A thread holds a 2 x 16 block of M in registers (2 rows, 16 of their columns; the next chunk's block
// loaded while this one is multiplied) and multiplies it by the 16 rows of S it meets, which live in shared
// memory (two buffers: one barrier a chunk); the 8 threads that share two rows add their partial sums through
// shuffles. fp32 throughout, as the torch form. Session 33 (H200): a first form, a row of M a thread, read twice
// as much of S from shared memory a product and took 7 us a chunk, no faster than torch's batched matmuls; the
// second, 16 contiguous columns a thread, 4.6 us (half of each sector of M fetched unused); this one interleaves.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_vec8.cuh"
#include "kvp_conv8.cuh"

namespace {

template <bool BF>
__device__ __forceinline__ void to_float4(uint2 raw, float* f) {
  const unsigned u[2] = {raw.x, raw.y};
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const float2 v = BF ? __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u[k]))
                        : __half22float2(*reinterpret_cast<const __half2*>(&u[k]));
    f[2 * k] = v.x, f[2 * k + 1] = v.y;
  }
}

constexpr int TAPS = 4;     // the convolution width compiled (Qwen3-Next's); deltanet_prefill.py refuses others
constexpr int HEAD_DIM = 128;  // q, k and v heads of 128 (Qwen3-Next's)

// One token's 8 channels: the causal convolution over its sequence (earlier positions 0), SiLU, then for q and k
// the l2 norm over the head (16 threads a head: lanes 16 h .. 16 h + 15 of a warp) and q's scale, written
// chunk-major ([chunks, seqs, heads, chunk, 128]) to every value head the key head serves: what the chunked rule
// multiplies, in one pass. Eight channels a thread: their 8 x TAPS weights are contiguous (w is [C, TAPS]), TAPS
// 16-byte loads; 32-bit indices (the host checks tokens x C / 8 < 2^31; a 64-bit division a thread cost more than
// the arithmetic).
template <bool BF>
__device__ __forceinline__ void conv_chunks(const unsigned short* __restrict__ x, long long x_row,
                                            const unsigned short* __restrict__ w, int tokens, int n, int chunk,
                                            int nk, int rep, float q_scale, float* __restrict__ qc,
                                            float* __restrict__ kc, float* __restrict__ vc) {
  kvp::pdl_enter();
  const int nv = nk * rep, octs = (2 * nk + nv) * HEAD_DIM / 8, total = tokens * octs, seqs = tokens / n;
  // a half-warp is one head of one token, all of its lanes in the loop or none (total and the stride are
  // multiples of 16), so the norm's shuffles see every lane they name
  const unsigned half = 0xffffu << (threadIdx.x & 16);
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int t = i / octs, c = (i - t * octs) * 8, pos = t % n;
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    kvp::causal_conv8<BF, TAPS>(x, x_row, w, t, c, pos, acc);
#pragma unroll
    for (int k = 0; k < 8; ++k) acc[k] = acc[k] / (1.f + __expf(-acc[k]));
    const int head = c / HEAD_DIM, d = c - head * HEAD_DIM;  // over q's nk heads, k's nk, then v's nv
    float* dst = vc;
    int first = head - 2 * nk, count = 1;
    if (head < 2 * nk) {
      float ss = 0.f;
#pragma unroll
      for (int k = 0; k < 8; ++k) ss += acc[k] * acc[k];
#pragma unroll
      for (int m = 8; m > 0; m >>= 1) ss += __shfl_xor_sync(half, ss, m);
      const float r = rsqrtf(ss + 1e-6f) * (head < nk ? q_scale : 1.f);
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[k] *= r;
      dst = head < nk ? qc : kc;
      first = (head % nk) * rep, count = rep;
    }
    const int seq = t / n, nc = pos / chunk, cp = pos - nc * chunk;
    for (int h = first; h < first + count; ++h) {
      const long long row = (((long long)nc * seqs + seq) * nv + h) * chunk + cp;
      float4* o = reinterpret_cast<float4*>(dst + row * HEAD_DIM + d);
      o[0] = make_float4(acc[0], acc[1], acc[2], acc[3]);
      o[1] = make_float4(acc[4], acc[5], acc[6], acc[7]);
    }
  }
}

constexpr int NORM_DV = 128;  // the value head dim the norm compiles (Qwen3-Next's); deltanet_prefill.py checks

// out[t, h] = o[t, h] rsqrt(mean(o[t, h]^2) + eps) w silu(z[t, h]), o read from [N, R, H, chunk, NORM_DV]
template <bool BF>
__device__ __forceinline__ void gated_norm(const float* __restrict__ o, int chunk, int seqs, int n, int heads,
                                           const unsigned short* __restrict__ z, long long z_row,
                                           const unsigned short* __restrict__ w, float eps,
                                           unsigned short* __restrict__ out) {
  kvp::pdl_enter();
  const int lane = threadIdx.x % 32, warps = blockDim.x / 32;
  const int rows = seqs * n * heads;  // 32-bit: the host checks
  float wt[4], zz[4];
  {
    const uint2 raw = *reinterpret_cast<const uint2*>(w + lane * 4);
    to_float4<BF>(raw, wt);
  }
  for (int row = blockIdx.x * warps + threadIdx.x / 32; row < rows; row += gridDim.x * warps) {
    const int t = row / heads, h = row - t * heads, seq = t / n, pos = t - seq * n;
    const int nc = pos / chunk, cp = pos - nc * chunk;
    const float4 v = *reinterpret_cast<const float4*>(
        o + ((((long long)nc * seqs + seq) * heads + h) * chunk + cp) * NORM_DV + lane * 4);
    float ss = v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
#pragma unroll
    for (int m = 16; m > 0; m >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, m);
    const float r = rsqrtf(ss / NORM_DV + eps);
    to_float4<BF>(*reinterpret_cast<const uint2*>(z + t * z_row + h * NORM_DV + lane * 4), zz);
    const float f[4] = {v.x, v.y, v.z, v.w};
    unsigned u[2];
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      float g[2];
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int i = 2 * k + e;
        g[e] = f[i] * r * wt[i] * (zz[i] / (1.f + __expf(-zz[i])));
      }
      if (BF) {
        const __nv_bfloat162 p = __floats2bfloat162_rn(g[0], g[1]);
        u[k] = *reinterpret_cast<const unsigned*>(&p);
      } else {
        const __half2 p = __floats2half2_rn(g[0], g[1]);
        u[k] = *reinterpret_cast<const unsigned*>(&p);
      }
    }
    *reinterpret_cast<uint2*>(out + ((long long)t * heads + h) * NORM_DV + lane * 4) = make_uint2(u[0], u[1]);
  }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256) kvp_dn_conv_chunks_bf16(
    const unsigned short* x, long long x_row, const unsigned short* w, int tokens, int n, int chunk, int nk, int rep,
    float q_scale, float* qc, float* kc, float* vc) {
  conv_chunks<true>(x, x_row, w, tokens, n, chunk, nk, rep, q_scale, qc, kc, vc);
}

extern "C" __global__ void __launch_bounds__(256) kvp_dn_gated_norm_bf16(
    const float* o, int chunk, int seqs, int n, int heads, const unsigned short* z, long long z_row,
    const unsigned short* w, float eps, unsigned short* out) {
  gated_norm<true>(o, chunk, seqs, n, heads, z, z_row, w, eps, out);
}

extern "C" __global__ void __launch_bounds__(256) kvp_dn_gated_norm_f16(
    const float* o, int chunk, int seqs, int n, int heads, const unsigned short* z, long long z_row,
    const unsigned short* w, float eps, unsigned short* out) {
  gated_norm<false>(o, chunk, seqs, n, heads, z, z_row, w, eps, out);
}

extern "C" __global__ void __launch_bounds__(256) kvp_dn_conv_chunks_f16(
    const unsigned short* x, long long x_row, const unsigned short* w, int tokens, int n, int chunk, int nk, int rep,
    float q_scale, float* qc, float* kc, float* vc) {
  conv_chunks<false>(x, x_row, w, tokens, n, chunk, nk, rep, q_scale, qc, kc, vc);
}

namespace {
constexpr int DK = 128;           // key dim (rows of S and of M)
constexpr int COLS = 16;          // columns of S a CTA owns
constexpr int PARTS = 8;          // threads sharing two rows of M (lanes 8 w .. 8 w + 7 of a warp)
constexpr int SPAN = DK / PARTS;  // columns of M a thread holds: the rows of S it multiplies
constexpr int THREADS = DK / 2 * PARTS;
// A thread's columns of M are 4 p + 32 q + e (part p, q and e in 0..3): the 8 parts' float4 loads of one row are
// then 128 contiguous bytes (with 16 contiguous columns a part they were 16-byte pieces 64 bytes apart: half of
// every sector fetched unused). The rows of S they meet in one instruction are 4 apart; each 4 rows of S are
// padded by 4 floats so that those 8 rows fall in 8 different groups of 4 banks.
__device__ __forceinline__ int srow(int l) { return l * COLS + (l / 4) * 4; }
constexpr int SBUF = DK * COLS + DK;

// a thread's block of M for one chunk, half h: two rows, columns 4 part + 32 q + 0..3 for q = 2 h, 2 h + 1
__device__ __forceinline__ void load_half(float (&a)[2][SPAN], const float* mp, int half) {
#pragma unroll
  for (int r = 0; r < 2; ++r)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int q = 2 * half + i;
      const float4 v = __ldg(reinterpret_cast<const float4*>(mp + r * DK + 32 * q));
      a[r][4 * q] = v.x, a[r][4 * q + 1] = v.y, a[r][4 * q + 2] = v.z, a[r][4 * q + 3] = v.w;
    }
}

// acc[r][j] += a[r][4 q + e] S[4 part + 32 q + e][j] over the half's q and every e
__device__ __forceinline__ void multiply_half(float (&acc)[2][COLS], const float (&a)[2][SPAN], const float* src,
                                              int part, int half) {
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int q = 2 * half + i;
      const float* srcrow = src + srow(4 * part + 32 * q + e);
#pragma unroll
      for (int j = 0; j < COLS; j += 4) {
        const float4 v = *reinterpret_cast<const float4*>(srcrow + j);
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const float x = a[r][4 * q + e];
          acc[r][j] += x * v.x, acc[r][j + 1] += x * v.y, acc[r][j + 2] += x * v.z, acc[r][j + 3] += x * v.w;
        }
      }
    }
}
}  // namespace

extern "C" __global__ void __launch_bounds__(THREADS)
kvp_dn_scan(const float* __restrict__ m,  // [chunks, heads, DK, DK]
            float* states,                // [chunks + 1, heads, DK, dv]: S[0], then B[c] in, S[c + 1] out
            int chunks, int heads, int dv) {
  __shared__ __align__(16) float s[2][SBUF];
  const int h = blockIdx.y, col0 = blockIdx.x * COLS;
  const int part = threadIdx.x % PARTS, row0 = threadIdx.x / PARTS * 2;
  const long long m_step = (long long)heads * DK * DK, s_step = (long long)heads * DK * dv;
  const float* mp = m + (long long)h * DK * DK + (long long)row0 * DK + 4 * part;
  // after the reduction a thread holds row row0 + bit 2 of its part, columns 4 (part & 3) .. + 3
  const int row = row0 + ((part >> 2) & 1), quad = (part & 3) * 4;
  float* sp = states + (long long)h * DK * dv + (long long)row * dv + col0 + quad;
  kvp::pdl_wait();
  *reinterpret_cast<float4*>(&s[0][srow(row) + quad]) = *reinterpret_cast<const float4*>(sp);
  float a[2][SPAN];
  float4 add_next = make_float4(0.f, 0.f, 0.f, 0.f);
  if (chunks > 0) {
    load_half(a, mp, 0);
    load_half(a, mp, 1);
    add_next = *reinterpret_cast<const float4*>(sp + s_step);
  }
  __syncthreads();
  for (int c = 0; c < chunks; ++c) {
    const bool more = c + 1 < chunks;
    const float4 add = add_next;
    if (more) add_next = *reinterpret_cast<const float4*>(sp + (c + 2) * s_step);
    const float* src = s[c & 1];
    float acc[2][COLS];
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int j = 0; j < COLS; ++j) acc[r][j] = 0.f;
    // each half of the block is reloaded with the next chunk's as soon as it has been used: the loads have the
    // rest of this chunk (and the first half of the next) to land, in 32 registers rather than 64
    multiply_half(acc, a, src, part, 0);
    if (more) load_half(a, mp + (c + 1) * m_step, 0);
    multiply_half(acc, a, src, part, 1);
    if (more) load_half(a, mp + (c + 1) * m_step, 1);
    // reduce-scatter over the 8 parts: bit 2 keeps a row, bit 1 eight columns, bit 0 four
    float one[COLS];
    const bool second = part & 4;
#pragma unroll
    for (int j = 0; j < COLS; ++j) {
      const float keep = second ? acc[1][j] : acc[0][j], give = second ? acc[0][j] : acc[1][j];
      one[j] = keep + __shfl_xor_sync(0xffffffffu, give, 4);
    }
    float eight[8];
    const bool hi = part & 2;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float keep = hi ? one[8 + j] : one[j], give = hi ? one[j] : one[8 + j];
      eight[j] = keep + __shfl_xor_sync(0xffffffffu, give, 2);
    }
    float four[4];
    const bool odd = part & 1;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float keep = odd ? eight[4 + j] : eight[j], give = odd ? eight[j] : eight[4 + j];
      four[j] = keep + __shfl_xor_sync(0xffffffffu, give, 1);
    }
    const float4 out = make_float4(four[0] + add.x, four[1] + add.y, four[2] + add.z, four[3] + add.w);
    *reinterpret_cast<float4*>(&s[(c + 1) & 1][srow(row) + quad]) = out;
    *reinterpret_cast<float4*>(sp + (c + 1) * s_step) = out;
    __syncthreads();
  }
  kvp::pdl_release();
}

// kvp_dn_solve: the chunked rule's triangular solve for every (chunk, sequence, head) at once. Within a chunk of
// SOLVE_C tokens with cumulative log-decay G and gates beta,
//     A[i][t] = beta_i (K K^T)[i][t] exp(G_i - G_t)   (t < i; 0 on and above the diagonal),
//     [U | W] = (I + A)^-1 [beta V | beta exp(G) K],
// the U_v and W_k of chunked_delta_rule. torch built A in three elementwise passes, inverted I + A with cuBLAS's
// batched trsm against the identity (7.7 ms of Qwen3-Next's prefill, H200, session 33) and multiplied the inverse
// into both right-hand sides (two batched TF32 GEMMs), the right-hand sides made in two more passes. Here a CTA takes
// one matrix: A built in shared memory from K K^T (the caller's matmul), then forward substitution with a thread a
// column of [beta V | beta exp(G) K] in registers, A's rows read as broadcasts. fp32 throughout.
constexpr int SOLVE_C = 64;  // tokens a chunk (deltanet.py CHUNK); deltanet_prefill.py refuses other chunks

extern "C" __global__ void __launch_bounds__(256)
kvp_dn_solve(const float* __restrict__ kk,    // [B, C, C]: K K^T of each chunk
             const float* __restrict__ k,     // [B, C, dk]
             const float* __restrict__ v,     // [B, C, dv]
             const float* __restrict__ cum,   // [B, C]: cumulative log-decay G
             const float* __restrict__ beta,  // [B, C]
             float* __restrict__ u,           // [B, C, dv] out
             float* __restrict__ w,           // [B, C, dk] out
             int dk, int dv) {
  constexpr int C = SOLVE_C;
  __shared__ __align__(16) float a[C][C];
  __shared__ float g[C], b[C];
  kvp::pdl_enter();
  const long long mat = blockIdx.x;
  for (int i = threadIdx.x; i < C; i += blockDim.x) {
    g[i] = cum[mat * C + i];
    b[i] = beta[mat * C + i];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < C * C; e += blockDim.x) {
    const int i = e / C, t = e % C;
    a[i][t] = t < i ? b[i] * kk[mat * C * C + e] * __expf(g[i] - g[t]) : 0.f;
  }
  __syncthreads();
  const int j = threadIdx.x;
  if (j >= dv + dk) return;
  const bool is_u = j < dv;
  const int width = is_u ? dv : dk, col = is_u ? j : j - dv;
  const float* src = (is_u ? v : k) + mat * C * width + col;
  float x[C];
#pragma unroll
  for (int i = 0; i < C; ++i) x[i] = src[(long long)i * width] * b[i] * (is_u ? 1.f : __expf(g[i]));
#pragma unroll
  for (int i = 1; i < C; ++i) {
    float s[4] = {0.f, 0.f, 0.f, 0.f};  // four chains: the sum's latency, not its length
#pragma unroll
    for (int t = 0; t < i; t += 4) {
      const float4 r = *reinterpret_cast<const float4*>(&a[i][t]);  // a[i][t..t+3]: zero from t = i on
      s[0] += r.x * x[t];
      if (t + 1 < i) s[1] += r.y * x[t + 1];
      if (t + 2 < i) s[2] += r.z * x[t + 2];
      if (t + 3 < i) s[3] += r.w * x[t + 3];
    }
    x[i] -= (s[0] + s[1]) + (s[2] + s[3]);
  }
  float* dst = (is_u ? u : w) + mat * C * width + col;
#pragma unroll
  for (int i = 0; i < C; ++i) dst[(long long)i * width] = x[i];
}
