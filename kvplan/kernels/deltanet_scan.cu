// kvplan: the sequential part of a chunked gated-DeltaNet prefill (kvplan/gpu/deltanet.py chunked_delta_rule),
// compiled at run time with NVRTC. Every chunk's state follows from the one before through an affine map,
//     S[c + 1] = M[c] S[c] + B[c]        (S: [dk, dv] a value head, M: [dk, dk], fp32),
// which torch ran as one batched matmul launch a chunk: 128 launches a layer at 8,192 tokens, 34 of Qwen3-Next's
// 297 GPU ms (H200, session 32's prefill profile), each mostly launch and tile overhead. Here one launch runs them
// all. The columns of S are independent, so a CTA owns 16 columns of one head's state: 128 CTAs for 16 heads of
// dv = 128. Four threads share a row of M (32 of its columns each, in registers, the next chunk's loaded while
// this one is multiplied), the 16 columns of S live in shared memory (two buffers: one barrier a chunk), and the
// four partial sums of a row meet through shuffles. fp32 throughout, as the torch form.

#include "kvp_pdl.cuh"

namespace {
constexpr int DK = 128;          // key dim (rows of S and of M)
constexpr int COLS = 16;         // columns of S a CTA owns
constexpr int PARTS = 4;         // threads sharing one row of M
constexpr int SPAN = DK / PARTS; // columns of M a thread holds
constexpr int THREADS = DK * PARTS;
// S rows padded by 4 floats every SPAN rows: the four parts of a row read rows SPAN apart in the same instruction,
// which would otherwise fall in the same banks
__device__ __forceinline__ int srow(int l) { return l * COLS + (l / SPAN) * 4; }
constexpr int SBUF = DK * COLS + PARTS * 4;
}  // namespace

extern "C" __global__ void __launch_bounds__(THREADS)
kvp_dn_scan(const float* __restrict__ m,  // [chunks, heads, DK, DK]
            float* states,                // [chunks + 1, heads, DK, dv]: S[0], then B[c] in, S[c + 1] out
            int chunks, int heads, int dv) {
  __shared__ __align__(16) float s[2][SBUF];
  const int h = blockIdx.y, col0 = blockIdx.x * COLS;
  const int row = threadIdx.x / PARTS, part = threadIdx.x % PARTS;
  const long long m_step = (long long)heads * DK * DK, s_step = (long long)heads * DK * dv;
  const float* mp = m + (long long)h * DK * DK + (long long)row * DK + part * SPAN;
  // the 4 columns this thread finishes after the reduction: part p ends with columns 4p .. 4p + 3
  float* sp = states + (long long)h * DK * dv + (long long)row * dv + col0 + part * 4;
  kvp::pdl_wait();
  {
    const float4 v = *reinterpret_cast<const float4*>(sp);
    *reinterpret_cast<float4*>(&s[0][srow(row) + part * 4]) = v;
  }
  float4 next[SPAN / 4], add_next = make_float4(0.f, 0.f, 0.f, 0.f);
  if (chunks > 0) {
#pragma unroll
    for (int i = 0; i < SPAN / 4; ++i) next[i] = __ldg(reinterpret_cast<const float4*>(mp) + i);
    add_next = *reinterpret_cast<const float4*>(sp + s_step);
  }
  __syncthreads();
  for (int c = 0; c < chunks; ++c) {
    float cur[SPAN];
#pragma unroll
    for (int i = 0; i < SPAN / 4; ++i)
      cur[4 * i] = next[i].x, cur[4 * i + 1] = next[i].y, cur[4 * i + 2] = next[i].z, cur[4 * i + 3] = next[i].w;
    const float4 add = add_next;
    if (c + 1 < chunks) {  // the next chunk's row of M and B, in flight while this chunk is multiplied
      const float* mn = mp + (c + 1) * m_step;
#pragma unroll
      for (int i = 0; i < SPAN / 4; ++i) next[i] = __ldg(reinterpret_cast<const float4*>(mn) + i);
      add_next = *reinterpret_cast<const float4*>(sp + (c + 2) * s_step);
    }
    const float* src = s[c & 1];
    float acc[COLS];
#pragma unroll
    for (int j = 0; j < COLS; ++j) acc[j] = 0.f;
#pragma unroll
    for (int l = 0; l < SPAN; ++l) {
      const float* r = src + srow(part * SPAN + l);
#pragma unroll
      for (int j = 0; j < COLS; j += 4) {
        const float4 v = *reinterpret_cast<const float4*>(r + j);
        acc[j] += cur[l] * v.x, acc[j + 1] += cur[l] * v.y, acc[j + 2] += cur[l] * v.z, acc[j + 3] += cur[l] * v.w;
      }
    }
    // reduce-scatter over the row's four threads: bit 1 of the part keeps columns 8 b1 .., bit 0 then 4 b0 ..
    float half[8];
    const bool hi = part & 2;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float keep = hi ? acc[8 + j] : acc[j], give = hi ? acc[j] : acc[8 + j];
      half[j] = keep + __shfl_xor_sync(0xffffffffu, give, 2);
    }
    float quad[4];
    const bool odd = part & 1;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float keep = odd ? half[4 + j] : half[j], give = odd ? half[j] : half[4 + j];
      quad[j] = keep + __shfl_xor_sync(0xffffffffu, give, 1);
    }
    const float4 out = make_float4(quad[0] + add.x, quad[1] + add.y, quad[2] + add.z, quad[3] + add.w);
    *reinterpret_cast<float4*>(&s[(c + 1) & 1][srow(row) + part * 4]) = out;
    *reinterpret_cast<float4*>(sp + (c + 1) * s_step) = out;
    __syncthreads();
  }
  kvp::pdl_release();
}
