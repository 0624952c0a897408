// kvplan: the Mamba-2 (SSD) state space over whole prompts in three launches (kvplan/gpu/mamba.py ssd_chunks
// computes the same in torch), compiled at run time with NVRTC. Per head h (of group g) and token t of a chunk of
// C tokens, with cum_t the chunk's cumulative log-decay (sum of dt A up to t), the chunk's input state S_in [P, N]
// and CB[t, s] = C_t . B_s:
//     y_t = sum_{s <= t} exp(cum_t - cum_s) CB[t, s] dt_s x_s  +  exp(cum_t) S_in C_t
//     S_out = exp(cum_last) S_in + sum_s exp(cum_last - cum_s) dt_s x_s B_s^T
// as vLLM's Triton kernels split it (chunk state, state passing, chunk scan):
//
// kvp_ssd_conv_{bf16,f16}  the causal depthwise convolution (+ bias) and SiLU over each sequence's rows of xBC, as
//                      they lie in in_proj's output, into fp32 rows (torch: four shifted multiply-adds over fp32
//                      copies and SiLU, 21 of Nemotron-H-8B's prefill ms at 8,192 tokens, session 35)
// kvp_ssd_chunk_state  per (head, chunk, sequence): the chunk's own contribution to the state handed on,
//                      sum_s w_s x_s B_s^T (w_s = exp(cum_last - cum_s) dt_s), [N, P] fp32
// kvp_ssd_state_pass   per state element: along the chunks, each chunk's contribution replaced by its input state
//                      (S_in of chunk z + 1 = exp(cum_last of z) S_in of z + contribution of z); the final state
//                      written [H, P, N]
// kvp_ssd_chunk_scan   per (head, chunk, sequence): y of the chunk's tokens (+ D x), the two sums above as one
//                      product of a [C, 2 C]-wide operand and a [2 C, P] one, in tiles of 32 along the shared
//                      dimension
//
// The torch form builds the decay exp(cum_t - cum_s) for every (head, t, s) as a tensor (537 MB a layer at 8,192
// tokens of Nemotron-H-8B) and passes over it five times; H200, session 35: 180 of the 390 ms of that model's
// prefill. The products run on tensor cores in TF32 (mma.sync m16n8k8, fp32 accumulation; the torch form's
// matmuls are TF32 too): a warp 16 rows of the output, operands converted once as they are stored to shared memory;
// the decays and exponentials in fp32. (Session 38's first form, fp32 FMAs a thread 4 x 8 of the output, took 1.45
// and 0.77 ms a layer for the scan and the chunk states at 8,192 tokens of Nemotron-H-8B on an H200.) CB comes from
// a batched matmul of the caller (a group's C and B, shared by its heads). x, B and C are read where they lie in the
// convolution's output rows (token stride `row`).

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include "kvp_pdl.cuh"
#include "kvp_vec8.cuh"
#include "kvp_conv8.cuh"

namespace {

constexpr int TAPS = 4;   // the convolution width compiled (Nemotron-H's conv_kernel)

// out[t, c] = SiLU(bias[c] + sum_j w[c, j] in[t - (TAPS - 1) + j, c]) over earlier positions of t's sequence (of n
// tokens; before its start 0), eight channels a thread (kvp_conv8.cuh, as the DeltaNet prefill's). 32-bit indices:
// the host checks tokens x C / 8 < 2^31.
template <bool BF>
__device__ __forceinline__ void causal_conv(const unsigned short* __restrict__ in, long long in_row,
                                            const unsigned short* __restrict__ w,
                                            const unsigned short* __restrict__ bias,
                                            int tokens, int n, int channels, float* __restrict__ out) {
  kvp::pdl_enter();
  const int octs = channels / 8, total = tokens * octs;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
    const int t = i / octs, c = (i - t * octs) * 8, pos = t % n;
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (bias != nullptr) kvp::unpack8<BF>(*reinterpret_cast<const uint4*>(bias + c), acc);
    kvp::causal_conv8<BF, TAPS>(in, in_row, w, t, c, pos, acc);
    float4* o = reinterpret_cast<float4*>(out + (long long)t * channels + c);
#pragma unroll
    for (int k = 0; k < 8; ++k) acc[k] = acc[k] / (1.f + __expf(-acc[k]));
    o[0] = make_float4(acc[0], acc[1], acc[2], acc[3]);
    o[1] = make_float4(acc[4], acc[5], acc[6], acc[7]);
  }
}

constexpr int CH = 128;   // tokens a chunk (Nemotron-H's chunk_size; ssd_prefill.py refuses others)
constexpr int P = 64;     // head dim compiled
constexpr int N = 128;    // state size compiled
constexpr int KT = 32;    // the shared dimension's tile
constexpr int THREADS = 256;  // 8 warps: a warp 16 rows of the output, all its 64 columns
constexpr int SKEW = 8;   // floats after each shared-memory row: fragment loads hit 32 banks

__device__ __forceinline__ unsigned tf32(float v) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(v));
  return r;
}

// D[16 x 8] += A[16 x 8] B[8 x 8] in TF32 (fp32 accumulate); fragments as PTX's m16n8k8 .tf32 lays them out
__device__ __forceinline__ void mma_tf32(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// One KT-deep tile of the product for warp w: rows 16 w .. + 15 of the left operand, stored [k][row] with row
// index row ^ swz(k) (swz below), times the right operand [k][64 columns]; acc[j]: columns 8 j .. + 7.
template <int LS, int RS>
__device__ __forceinline__ void mma_tile(float (&acc)[8][4], const unsigned* left, const unsigned* right, int w,
                                         int lane) {
  const int g = lane >> 2, q = lane & 3;
#pragma unroll
  for (int k8 = 0; k8 < KT; k8 += 8) {
    const int s0 = 4 * ((k8 >> 2) & 7), s1 = 4 * (((k8 + 4) >> 2) & 7);  // the rows' swizzle at k8 and k8 + 4
    const unsigned a[4] = {left[(k8 + q) * LS + ((16 * w + g) ^ s0)], left[(k8 + q) * LS + ((16 * w + g + 8) ^ s0)],
                           left[(k8 + q + 4) * LS + ((16 * w + g) ^ s1)],
                           left[(k8 + q + 4) * LS + ((16 * w + g + 8) ^ s1)]};
#pragma unroll
    for (int j = 0; j < 8; ++j)
      mma_tf32(acc[j], a, right[(k8 + q) * RS + 8 * j + g], right[(k8 + q + 4) * RS + 8 * j + g]);
  }
}

// the left operand's row index in shared memory: rows XOR 4 x (k / 4 mod 8), so that a warp's stores of one k
// column (32 rows apart in k blocks) and its fragment loads (4 k x 8 rows) both hit 32 banks
__device__ __forceinline__ int swz(int row, int k) { return row ^ (4 * ((k >> 2) & 7)); }

}  // namespace

extern "C" __global__ void __launch_bounds__(256)
kvp_ssd_conv_bf16(const unsigned short* in, long long in_row, const unsigned short* w, const unsigned short* bias,
                  int tokens, int n, int channels, float* out) {
  causal_conv<true>(in, in_row, w, bias, tokens, n, channels, out);
}

extern "C" __global__ void __launch_bounds__(256)
kvp_ssd_conv_f16(const unsigned short* in, long long in_row, const unsigned short* w, const unsigned short* bias,
                 int tokens, int n, int channels, float* out) {
  causal_conv<false>(in, in_row, w, bias, tokens, n, channels, out);
}

// x and b: the sequence's rows (token r L + t at x + (r L + t) row), head h's P values at x + h P, group g's N at
// b + g N (16-byte aligned, row a multiple of 4: the host checks). dt and cum: [R, nc, H, CH] fp32 (dt 0 past the
// sequence's end, so that cum_last = cum[CH - 1]). states: [R, nc, H, N, P] fp32, the chunk's contribution. A
// thread loads the next tile's values into registers (two and four float4s) while the tile before is multiplied.
extern "C" __global__ void __launch_bounds__(THREADS, 2)
kvp_ssd_chunk_state(const float* __restrict__ x, const float* __restrict__ b, long long row, int seq_len,
                    const float* __restrict__ dt, const float* __restrict__ cum, int heads, int groups,
                    float* __restrict__ states) {
  // S^T [N, P] = B^T (w x): the left operand B_s[n] stored [s][n] (rows n), the right one w_s x_s[p], [s][p]
  __shared__ __align__(16) unsigned bs[KT][N + SKEW];
  __shared__ __align__(16) unsigned xs[KT][P + SKEW];
  __shared__ float ws[CH];
  const int h = blockIdx.x, z = blockIdx.y, r = blockIdx.z, nc = gridDim.y, tid = threadIdx.x;
  const int g = h / (heads / groups);
  const int valid = min(CH, seq_len - z * CH);
  const long long hc = (((long long)r * nc + z) * heads + h) * CH;
  kvp::pdl_enter();
  if (tid < CH) ws[tid] = tid < valid ? __expf(cum[hc + CH - 1] - cum[hc + tid]) * dt[hc + tid] : 0.f;
  const float* xr = x + ((long long)r * seq_len + (long long)z * CH) * row + h * P;
  const float* br = b + ((long long)r * seq_len + (long long)z * CH) * row + g * N;
  constexpr int XV = KT * P / 4 / THREADS, BV = KT * N / 4 / THREADS;  // float4s a thread loads a tile
  float4 rx[XV], rb[BV];
  auto load = [&](int s0) {
#pragma unroll
    for (int q = 0; q < XV; ++q) {
      const int i = tid + q * THREADS, s = i / (P / 4), p4 = i % (P / 4);
      rx[q] = s0 + s < valid ? *reinterpret_cast<const float4*>(xr + (long long)(s0 + s) * row + 4 * p4)
                             : make_float4(0.f, 0.f, 0.f, 0.f);
    }
#pragma unroll
    for (int q = 0; q < BV; ++q) {
      const int i = tid + q * THREADS, s = i / (N / 4), n4 = i % (N / 4);
      rb[q] = s0 + s < valid ? *reinterpret_cast<const float4*>(br + (long long)(s0 + s) * row + 4 * n4)
                             : make_float4(0.f, 0.f, 0.f, 0.f);
    }
  };
  const int w = tid >> 5, lane = tid & 31;
  float acc[8][4] = {};
  load(0);
  for (int s0 = 0; s0 < valid; s0 += KT) {
    __syncthreads();  // ws written; the tile before consumed
#pragma unroll
    for (int q = 0; q < XV; ++q) {
      const int i = tid + q * THREADS, s = i / (P / 4), p4 = i % (P / 4);
      const float v = ws[min(s0 + s, CH - 1)];
      *reinterpret_cast<uint4*>(&xs[s][4 * p4]) =
          make_uint4(tf32(rx[q].x * v), tf32(rx[q].y * v), tf32(rx[q].z * v), tf32(rx[q].w * v));
    }
#pragma unroll
    for (int q = 0; q < BV; ++q) {
      const int i = tid + q * THREADS, s = i / (N / 4), n4 = i % (N / 4);  // swz keeps 4 aligned rows together
      *reinterpret_cast<uint4*>(&bs[s][swz(4 * n4, s)]) =
          make_uint4(tf32(rb[q].x), tf32(rb[q].y), tf32(rb[q].z), tf32(rb[q].w));
    }
    __syncthreads();
    if (s0 + KT < valid) load(s0 + KT);
    mma_tile<N + SKEW, P + SKEW>(acc, &bs[0][0], &xs[0][0], w, lane);
  }
  kvp::pdl_release();
  // acc[j]: n 16 w + lane / 4 (+ 8), p 8 j + 2 (lane % 4) (+ 1)
  float* out = states + (((long long)r * nc + z) * heads + h) * N * P;
  const int n0 = 16 * w + (lane >> 2), p0 = 2 * (lane & 3);
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    *reinterpret_cast<float2*>(out + n0 * P + 8 * j + p0) = make_float2(acc[j][0], acc[j][1]);
    *reinterpret_cast<float2*>(out + (n0 + 8) * P + 8 * j + p0) = make_float2(acc[j][2], acc[j][3]);
  }
}

// states [R, nc, H, N P]: chunk z's contribution in, its input state out (zeros for the first chunk); final [R, H,
// P, N]: the state after the last chunk. A thread an element of one sequence's [H, N, P] states; it loads LOOK
// chunks' values at once (the chain along the chunks runs on registers, not on one load's latency after another).
constexpr int LOOK = 8;
extern "C" __global__ void __launch_bounds__(THREADS, 8)
kvp_ssd_state_pass(float* __restrict__ states, const float* __restrict__ cum, int nc, int heads,
                   float* __restrict__ final_state) {
  const int r = blockIdx.y;
  const long long per = (long long)heads * N * P;
  const long long e = (long long)blockIdx.x * THREADS + threadIdx.x;
  kvp::pdl_enter();
  if (e >= per) return;
  const int h = (int)(e / (N * P)), np = (int)(e % (N * P)), n = np / P, p = np % P;
  float* s = states + (long long)r * nc * per + e;
  const float* c = cum + ((long long)r * nc * heads + h) * CH + CH - 1;
  float run = 0.f;
  for (int z0 = 0; z0 < nc; z0 += LOOK) {
    float own[LOOK], decay[LOOK];
#pragma unroll
    for (int j = 0; j < LOOK; ++j)
      if (z0 + j < nc) own[j] = s[(z0 + j) * per], decay[j] = __expf(c[(long long)(z0 + j) * heads * CH]);
#pragma unroll
    for (int j = 0; j < LOOK; ++j)
      if (z0 + j < nc) {
        s[(z0 + j) * per] = run;
        run = fmaf(run, decay[j], own[j]);
      }
  }
  final_state[((long long)r * heads + h) * N * P + (long long)p * N + n] = run;
}

// y [R L, H, P] fp32: the chunk's tokens, plus d_h x_t where d is given ([H] fp32). c: the C rows (group g's N
// values at c + g N, the rows of x); cb [R, nc, G, CH, CH] = C_t . B_s; states [R, nc, H, N, P]: each chunk's input
// state (kvp_ssd_state_pass). The shared dimension in tiles of KT: N / KT tiles of exp(cum_t) C_t against S_in, then
// the tiles of s up to the chunk's end of exp(cum_t - cum_s) CB[t, s] dt_s against x_s; a warp's 16 rows t skip the
// tiles of s past them (causal), a thread loads the next tile into registers while one is multiplied.
extern "C" __global__ void __launch_bounds__(THREADS, 2)
kvp_ssd_chunk_scan(const float* __restrict__ x, const float* __restrict__ c, long long row, int seq_len,
                   const float* __restrict__ cb, const float* __restrict__ dt, const float* __restrict__ cum,
                   const float* __restrict__ states, const float* __restrict__ d, int heads, int groups,
                   float* __restrict__ y) {
  __shared__ __align__(16) unsigned as[KT][CH + SKEW];  // the left operand, stored [k][t] (swizzled rows)
  __shared__ __align__(16) unsigned bs[KT][P + SKEW];   // the right one, [k][p]
  __shared__ float cs[CH], ds[CH];
  const int h = blockIdx.x, z = blockIdx.y, r = blockIdx.z, nc = gridDim.y, tid = threadIdx.x;
  const int g = h / (heads / groups);
  const int valid = min(CH, seq_len - z * CH);
  const long long hc = (((long long)r * nc + z) * heads + h) * CH;
  const long long first = (long long)r * seq_len + (long long)z * CH;  // the chunk's first token row
  kvp::pdl_enter();
  if (tid < CH) cs[tid] = cum[hc + tid], ds[tid] = dt[hc + tid];
  const float* sin = states + (((long long)r * nc + z) * heads + h) * N * P;
  const float* cr = c + first * row + g * N;
  const float* cbr = cb + (((long long)r * nc + z) * groups + g) * CH * CH;
  const float* xr = x + first * row + h * P;
  const int inter = N / KT, tiles = inter + (valid + KT - 1) / KT;
  constexpr int AV = KT * CH / 4 / THREADS, BV = KT * P / 4 / THREADS;  // float4s a thread loads a tile
  float4 ra[AV], rb[BV];
  // tile k's raw values: A a row t's 4 consecutive k (C_t[n..] or CB[t, s..]), B a row k's 4 consecutive p
  auto load = [&](int k) {
    const bool left = k < inter;
    const int k0 = left ? k * KT : (k - inter) * KT;
#pragma unroll
    for (int q = 0; q < AV; ++q) {
      const int i = tid + q * THREADS, t = i / (KT / 4), k4 = 4 * (i % (KT / 4));
      ra[q] = t >= valid ? make_float4(0.f, 0.f, 0.f, 0.f)
              : left ? *reinterpret_cast<const float4*>(cr + (long long)t * row + k0 + k4)
                     : *reinterpret_cast<const float4*>(cbr + t * CH + k0 + k4);
    }
#pragma unroll
    for (int q = 0; q < BV; ++q) {
      const int i = tid + q * THREADS, kk = i / (P / 4), p4 = 4 * (i % (P / 4));
      rb[q] = left ? *reinterpret_cast<const float4*>(sin + (long long)(k0 + kk) * P + p4)
              : k0 + kk < valid ? *reinterpret_cast<const float4*>(xr + (long long)(k0 + kk) * row + p4)
                                : make_float4(0.f, 0.f, 0.f, 0.f);
    }
  };
  const int w = tid >> 5, lane = tid & 31;
  const int last_t = 16 * w + 15;  // the warp's last row
  float acc[8][4] = {};
  load(0);
  for (int k = 0; k < tiles; ++k) {
    const bool left = k < inter;
    const int k0 = left ? k * KT : (k - inter) * KT;
    __syncthreads();  // cs, ds written; the tile before consumed
#pragma unroll
    for (int q = 0; q < AV; ++q) {
      const int i = tid + q * THREADS, t = i / (KT / 4), k4 = 4 * (i % (KT / 4));
      const float v[4] = {ra[q].x, ra[q].y, ra[q].z, ra[q].w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int s = k0 + k4 + e;
        as[k4 + e][swz(t, k4 + e)] =
            tf32(left ? __expf(cs[t]) * v[e] : s <= t ? __expf(cs[t] - cs[s]) * v[e] * ds[s] : 0.f);
      }
    }
#pragma unroll
    for (int q = 0; q < BV; ++q) {
      const int i = tid + q * THREADS;
      const float4 v = rb[q];
      *reinterpret_cast<uint4*>(&bs[i / (P / 4)][4 * (i % (P / 4))]) =
          make_uint4(tf32(v.x), tf32(v.y), tf32(v.z), tf32(v.w));
    }
    __syncthreads();
    if (k + 1 < tiles) load(k + 1);
    if (left || k0 <= last_t) mma_tile<CH + SKEW, P + SKEW>(acc, &as[0][0], &bs[0][0], w, lane);
  }
  kvp::pdl_release();
  // acc[j]: t 16 w + lane / 4 (+ 8), p 8 j + 2 (lane % 4) (+ 1)
  const float dh = d != nullptr ? d[h] : 0.f;
  const int p0 = 2 * (lane & 3);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int t = 16 * w + (lane >> 2) + 8 * half;
    if (t >= valid) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float2 xv = *reinterpret_cast<const float2*>(xr + (long long)t * row + 8 * j + p0);
      *reinterpret_cast<float2*>(y + ((first + t) * heads + h) * P + 8 * j + p0) =
          make_float2(fmaf(dh, xv.x, acc[j][2 * half]), fmaf(dh, xv.y, acc[j][2 * half + 1]));
    }
  }
}
