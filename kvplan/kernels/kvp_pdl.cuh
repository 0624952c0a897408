// Programmatic dependent launch, for every kernel of the package (build.py inlines this header; the host sets the
// launch attribute on sm_90 unless KVPLAN_PDL=0, configs.pdl_enabled): a grid may be scheduled while the kernel
// before it in the stream drains. pdl_wait() returns once that kernel has completed and its writes are visible,
// so it precedes every global read of what a kernel before may have written and every global write; only
// constant inputs (weights) may be touched before it. Every thread that exits must have passed it, so that a
// grid completes only after the one before it (the chain stays ordered). pdl_release() lets the next kernel be
// scheduled before this grid ends; that kernel still waits for this grid to finish. No-ops without the attribute
// and before sm_90.
#pragma once

namespace kvp {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
// both, at the top of a kernel with nothing to start before its wait
__device__ __forceinline__ void pdl_enter() {
  pdl_wait();
  pdl_release();
}

}  // namespace kvp
