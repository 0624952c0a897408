// What the recurrent-state decode steps share (deltanet_step.cu, mamba_step.cu, mamba1_scan.cu, kda_step.cu): the
// activation and state-slot types, and the causal depthwise convolution over each channel's stored window.
// Activations are fp16 or bf16 (KVP_DN_T 0 / 1), state slots fp16, bf16 or fp32 (KVP_DN_S 0 / 1 / 2); arithmetic in
// fp32.
#pragma once

#if KVP_DN_T == 0
typedef __half act_t;
#define ACT_TO_F(x) __half2float(x)
#define F_TO_ACT(x) __float2half_rn(x)
#else
typedef __nv_bfloat16 act_t;
#define ACT_TO_F(x) __bfloat162float(x)
#define F_TO_ACT(x) __float2bfloat16_rn(x)
#endif

#if KVP_DN_S == 0
typedef __half state_t;
#define S_TO_F(x) __half2float(x)
#define F_TO_S(x) __float2half_rn(x)
#elif KVP_DN_S == 1
typedef __nv_bfloat16 state_t;
#define S_TO_F(x) __bfloat162float(x)
#define F_TO_S(x) __float2bfloat16_rn(x)
#else
typedef float state_t;
#define S_TO_F(x) (x)
#define F_TO_S(x) (x)
#endif

__device__ __forceinline__ float silu(float x) { return x / (1.0f + __expf(-x)); }

__device__ __forceinline__ float block_sum(float v, float* scratch) {
  // every thread gets the sum of v over the block (blockDim.x threads, a multiple of 32)
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int tid = threadIdx.x, warps = blockDim.x >> 5;
  __syncthreads();
  if ((tid & 31) == 0) scratch[tid >> 5] = v;
  __syncthreads();
  float s = 0.0f;
  for (int i = 0; i < warps; ++i) s += scratch[i];
  return s;
}

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

// One channel's causal depthwise convolution: acc (the bias, or 0) + sum_j w[j] win[j] + w[taps - 1] x over its
// stored window win[0 .. taps - 2] (oldest first, in the slot's dtype) and the new input x, the window shifted left
// in place (the oldest input leaves, x enters). Weights of any float type (KDA's are float32).
template <typename W>
__device__ __forceinline__ float state_conv_step(state_t* win, const W* w, float x, int taps, float acc) {
  for (int j = 0; j < taps - 1; ++j) {
    const float s = S_TO_F(win[j]);
    acc += s * to_f32(w[j]);
    if (j > 0) win[j - 1] = F_TO_S(s);
  }
  acc += x * to_f32(w[taps - 1]);
  if (taps > 1) win[taps - 2] = F_TO_S(x);
  return acc;
}

// mixed [B, C] (activations, row stride mixed_stride), slot [B] int32, pool rows of `row_stride` elements: the
// [C, K-1] window first. conv_w [C, K], conv_b [C] or null (activations' dtype). out [B, C] float32:
// SiLU(conv + bias); the window shifted left in place (the oldest input leaves, the new one enters).
extern "C" __global__ void __launch_bounds__(256)
kvp_state_conv(const act_t* __restrict__ mixed, long long mixed_stride, const int* __restrict__ slot,
               state_t* __restrict__ pool, long long row_stride, const act_t* __restrict__ conv_w,
               const act_t* __restrict__ conv_b, int channels, int taps, float* __restrict__ out) {
  kvp::pdl_enter();
  const int b = blockIdx.y;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= channels) return;
  state_t* win = pool + (long long)slot[b] * row_stride + (long long)c * (taps - 1);
  const float x = ACT_TO_F(mixed[(long long)b * mixed_stride + c]);
  const float acc = state_conv_step(win, conv_w + (long long)c * taps, x, taps, conv_b ? ACT_TO_F(conv_b[c]) : 0.0f);
  out[(long long)b * channels + c] = silu(acc);
}
