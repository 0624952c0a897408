# Session 17 call 1 (run five times, one per form of the kernel: a register ring, a per-warp cp.async ring, per-warp 2 KB TMA rings, a CTA ring of 8 KB TMA boxes fed by a producer warp, the same with the L2-promotion variants): the streaming GEMV (gemv_stream.cu) --
# against F.linear per shape and over the whole-model stream (issue 13's >= 90% bar).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_gemv_stream_gpu.py 2>&1 | tail -4
timeout 120 compute-sanitizer --tool memcheck --report-api-errors no python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_gemv_stream_gpu.py -k "16-64 or 3-192 or chain" 2>&1 | grep -E "ERROR SUMMARY|passed|failed" | tail -3
timeout 240 python3 benchmarks/skinny_gemm.py --gemv --out $OUT/gemv.json 2>&1 | tee $OUT/gemv.txt
