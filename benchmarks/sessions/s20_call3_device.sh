# Results: benchmarks/RESULTS.md "Session 20".
# Prepared in session 19, run in session 20 (issue 13): the skinny GEMM / MoE kernels' weight loads (skinny_gemm.cu:
# ld.global.nc and the row-tile kernel's cp.async) marked L2 evict-first, as the GEMV's and the decode kernels'
# copies are since session 19. "ef" = the file `benchmarks/probes/evict_first_patch.py skinny` writes. GPU tests of the skinny
# and mxfp4 kernels on it (stops on a failure), then the routed experts of one layer of the four MoE models
# (skinny_gemm.py --moe-sweep, us per layer at batch 1 / 4 / 8), main's file and ef alternating twice.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
F=kvplan/kernels/skinny_gemm.cu
export ROOT=$OUT
mkdir -p /tmp/base && cp $F /tmp/base/ && python3 benchmarks/probes/evict_first_patch.py skinny /tmp/ef || exit 1
cp /tmp/ef/skinny_gemm.cu $F
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py tests/test_mxfp4_gpu.py > $ROOT/t.txt 2>&1
tail -1 $ROOT/t.txt | tee $ROOT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $ROOT/t.txt && { grep -m5 -B2 -A25 "^____" $ROOT/t.txt > $ROOT/fail.txt; cp /tmp/base/skinny_gemm.cu $F; exit 1; }
for i in 1 2; do
  for form in base ef; do
    cp /tmp/$form/skinny_gemm.cu $F
    echo "== $form $i" | tee -a $ROOT/log.txt
    timeout 80 python3 benchmarks/skinny_gemm.py --moe-sweep --variants default 2>&1 | grep -v "^read" | tee -a $ROOT/log.txt
  done
done
cp /tmp/base/skinny_gemm.cu $F
