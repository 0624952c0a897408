# (for the next session) does the SM count bound the large-batch GQA shapes? Every default there runs 128 or 256 CTAs
# on 128 of the H200's 132 SMs. The same work per CTA on 132 SMs (B66 8K at 2 splits, B132 4K at 1, fp8 B66 8K at 4)
# against 128 (B64 8K, B128 4K, fp8 B64 8K): equal times per call mean the SMs bound it (a balanced split over all
# SMs would gain up to 3%), times 66/64 longer mean the bandwidth does. Alternating twice.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for i in 1 2; do
timeout 200 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --json $OUT/s29_call1_sweep$i.json \
  --sweep-only "B64 8K 2 splits,B66 8K,B128 4K,B132 4K,fp8 B64 8K 4 splits,fp8 B66 8K" 2>&1 \
  | grep -E "^\| [Bf]|^#|rror" | sed -E "s/\(bulk=.*launcher='driver'\)/(opts)/"
done
