# Session 16 call 2 (run at commit c6b10d1, branch gqa-tma): the decode kernel tensor-copy (TMA) path (KernelOptions.tma): its GPU tests and the bulk /
# MLA tests it touches, compute-sanitizer over the memcheck cases, then the A/B against the row copies on the large
# shapes, pages shuffled, and in address order for two of them.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 200 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_gpu.py -k "tma or bulk_variant or many_pairs or head_tiles" tests/test_kernel_mla_gpu.py > $OUT/tests.txt 2>&1; tail -4 $OUT/tests.txt
S="B64 8K,B16 32K,fp8 B64 8K,fp8 B16 32K,B32 4K,B1 128K,B1 32K,B8 8K,head_dim 64 B16 32K,64q/4kv B16 16K"
clean() { grep "^| \|read bandwidth\|error" | sed -E 's/bulk=None, pdl=None, fuse_merge=False, //; s/, min_split_tokens=256, l2_prefetch=2, k_coalesced=True, early_page=True//; s/, trace=False, launcher=.driver.//; s/slices=None, //; s/num_splits=None, //; s/stages=None, //; s/heads_per_warp=None, //; s/, page_runs=False, max_registers=None//'; }
timeout 150 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "$S" --variants "tma=True;tma=True heads_in_m=False" 2>&1 | clean | tee $OUT/ab.txt
timeout 60 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "B64 8K,fp8 B64 8K,B1 128K" --variants "tma=True" --ordered-pages 2>&1 | clean | tee $OUT/ab_ordered.txt
for tool in memcheck racecheck; do
  timeout 120 compute-sanitizer --tool $tool --report-api-errors no --error-exitcode 1 python3 benchmarks/kernel_memcheck.py > $OUT/$tool.txt 2>&1; echo "$tool rc $?"; tail -2 $OUT/$tool.txt
done
