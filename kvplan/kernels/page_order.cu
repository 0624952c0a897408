// kvplan: each sequence's full pages sorted by address inside runs of positions (page_order.py), compiled at run
// time with NVRTC. One CTA per (run, sequence), a thread per slot of the run padded to a power of two (<= 1,024):
// the run's full pages, and above them sentinels that sort last, go through a bitonic network in shared memory
// (log2(N) (log2(N) + 1) / 2 barrier steps: ranking every key against every other cost 129 us for 2 x 256 runs
// of 1,024 on an H200, session 32), then the first n slots are written back in order; the partly filled last page
// and the unused entries are written back where they were. Reads precede the first barrier and writes follow the
// last, so out may be bt.

#include "kvp_pdl.cuh"

extern "C" __global__ void __launch_bounds__(1024)
kvp_sort_pages(const int* bt,       // [B, width] block ids
               const int* seqlens,  // [B] tokens
               int* out,            // [B, width]
               int width, int log2bs, int run) {
  __shared__ int keys[1024];
  kvp::pdl_wait();  // the table and the lengths may come from the kernel before
  const int b = blockIdx.y, p0 = blockIdx.x * run, i = threadIdx.x, p = p0 + i, N = blockDim.x;
  const int full = min(seqlens[b] >> log2bs, width);  // pages holding block_size tokens
  const int n = max(0, min(run, full - p0));           // of them in this run: its first n positions
  const size_t row = (size_t)b * width;
  const bool mine = i < run && p < width;
  const int key = mine ? bt[row + p] : 0;
  keys[i] = i < n ? key : 0x7fffffff;
  __syncthreads();
  kvp::pdl_release();
  for (int k = 2; k <= N; k <<= 1)
    for (int j = k >> 1; j > 0; j >>= 1) {
      const int x = i ^ j;
      if (x > i) {
        const int a = keys[i], c = keys[x];
        if ((a > c) == ((i & k) == 0)) keys[i] = c, keys[x] = a;
      }
      __syncthreads();
    }
  if (mine) out[row + p] = i < n ? keys[i] : key;
}
