# Session 19 call 2. Part 1 (issue 13): the GEMV forms of call 1 that helped (joint finish, evict-first) combined,
# and the first cut tile counted as soon as its sums are in ("early"); GPU tests of the GEMV, then the forms.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py > $OUT/tg.txt 2>&1
tail -2 $OUT/tg.txt | tee $OUT/log_gemv.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/tg.txt && grep -m5 -B2 -A25 "^____" $OUT/tg.txt > $OUT/fail_gemv.txt || \
timeout 200 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all --out $OUT/gemv.json \
  --forms "gemv d8,joint,acqrel joint,ef,joint ef,acqrel joint ef,early,early ef,acqrel early ef" 2>&1 \
  | tee -a $OUT/log_gemv.txt
timeout 100 compute-sanitizer --tool memcheck --report-api-errors no python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_gemv_stream_gpu.py -k "early" 2>&1 | grep -E "ERROR SUMMARY|passed|failed" | tail -3 | tee -a $OUT/log_gemv.txt
# Part 2 (issue 14):
# the decode kernel's fused split merge fenced with fence.acq_rel.gpu (release +
# acquire, all its counter needs) instead of __threadfence (MEMBAR.SC): main's file ("sc") and the changed one
# ("ar", made here by replacing the merge's two fences) alternate twice through the quick table (the split
# launches of the B1 shapes and the MLA rows); the decode GPU tests on "ar" first (stops on a failure).
F=kvplan/kernels/paged_decode.cu
cp $F /tmp/sc.cu
python3 - <<'PY'
s = open("/tmp/sc.cu").read()
i = s.index("// ---- fused split merge")
j = s.index("for (int idx = threadIdx.x", i)
m = s[i:j]
assert m.count("__threadfence();") == 2, m
open("/tmp/ar.cu", "w").write(s[:i] + m.replace("__threadfence();", "fence_acq_rel_gpu();") + s[j:])
PY
cp /tmp/ar.cu $F
timeout 160 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py > $OUT/t.txt 2>&1
tail -3 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A25 "^____" $OUT/t.txt > $OUT/fail.txt; cp /tmp/sc.cu $F; exit 1; }
for i in 1 2; do
  for form in sc ar; do
    cp /tmp/$form.cu $F
    echo "== $form $i" | tee -a $OUT/log.txt
    timeout 75 python3 benchmarks/kernel_vs_flashinfer.py --quick --no-flashinfer --json $OUT/q_${form}_$i.json 2>&1 \
      | grep -v "^\s*$" | tail -14 | tee -a $OUT/log.txt
  done
done
cp /tmp/sc.cu $F
