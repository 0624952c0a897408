// kvplan: each sequence's full pages sorted by address inside runs of positions (page_order.py), compiled at run
// time with NVRTC. One CTA per (run, sequence), a thread per position of the run (<= 1,024): the run's full pages
// are ranked in shared memory (every key compared in turn, ties by position, so the ranks are a permutation even
// where a table names a page twice) and written at their rank; the partly filled last page and the unused entries
// are written back where they were. Reads precede the barrier and writes follow it, so out may be bt.

#include "kvp_pdl.cuh"

extern "C" __global__ void __launch_bounds__(1024)
kvp_sort_pages(const int* bt,       // [B, width] block ids
               const int* seqlens,  // [B] tokens
               int* out,            // [B, width]
               int width, int log2bs, int run) {
  __shared__ int keys[1024];
  kvp::pdl_wait();  // the table and the lengths may come from the kernel before
  const int b = blockIdx.y, p0 = blockIdx.x * run, i = threadIdx.x, p = p0 + i;
  const int full = min(seqlens[b] >> log2bs, width);  // pages holding block_size tokens
  const int n = max(0, min(run, full - p0));           // of them in this run: its first n positions
  const size_t row = (size_t)b * width;
  int key = 0;
  if (i < run && p < width) {
    key = bt[row + p];
    if (i < n) keys[i] = key;
  }
  __syncthreads();
  kvp::pdl_release();
  if (i < n) {
    int rank = 0;
    for (int j = 0; j < n; ++j) {
      const int kj = keys[j];
      rank += (kj < key) | ((kj == key) & (j < i));
    }
    out[row + p0 + rank] = key;
  } else if (i < run && p < width) {
    out[row + p] = key;
  }
}
