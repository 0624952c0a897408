# Session 22, call 3 (issue 13): the row-owned GEMV with each CTA starting its k at its own offset (call 2: all CTAs
# at k = 0 together reached a third of read bandwidth); GPU tests of the GEMV, then the per-shape and whole-model
# streams of the three dense models.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 100 python3 -m pytest -q -x -p no:cacheprovider tests/test_gemv_stream_gpu.py -k "own" \
  > $OUT/tests.txt 2>&1; echo "tests rc $?" | tee $OUT/log.txt; tail -2 $OUT/tests.txt | tee -a $OUT/log.txt
timeout 250 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all --forms "c1 d8,own,own d6,own c2 d4" \
  --out $OUT/gemv_own.json 2>&1 | tee $OUT/bench.txt | grep -v registers | tail -40
