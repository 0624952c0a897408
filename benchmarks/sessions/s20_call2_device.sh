# Results: benchmarks/RESULTS.md "Session 20".
# Prepared in session 19, run in session 20 (issue 14): the decode kernel's cp.async copies (the fp8 caches' path on
# sm_90: fp8 B64 8K / B16 32K at 91.4-91.8% of read, the bar is 92%) marked L2 evict-first, as the bf16 bulk
# copies are since session 19. "ef" = the file `benchmarks/probes/evict_first_patch.py fp8-decode` writes; decode GPU tests on
# it (stops on a failure), memcheck, then the table without FlashInfer, main's file and ef alternating twice.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
F=kvplan/kernels/paged_decode.cu
mkdir -p /tmp/base && cp $F /tmp/base/ && python3 benchmarks/probes/evict_first_patch.py fp8-decode /tmp/ef || exit 1
cp /tmp/ef/paged_decode.cu $F
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py > $OUT/t.txt 2>&1
tail -1 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A25 "^____" $OUT/t.txt > $OUT/fail.txt; cp /tmp/base/paged_decode.cu $F; exit 1; }
timeout 100 compute-sanitizer --report-api-errors no --tool memcheck --error-exitcode 1 \
  python3 benchmarks/kernel_memcheck.py > $OUT/memcheck.txt 2>&1; echo "memcheck rc $?" | tee -a $OUT/log.txt
for i in 1 2; do
  for form in base ef; do
    cp /tmp/$form/paged_decode.cu $F
    echo "== $form $i" | tee -a $OUT/log.txt
    timeout 75 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --json $OUT/t_${form}_$i.json 2>&1 \
      | grep "^|\|^read" | tee -a $OUT/log.txt
  done
done
cp /tmp/base/paged_decode.cu $F
