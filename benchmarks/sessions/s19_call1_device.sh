# Session 19 call 1 (issue 13): the streaming GEMV's cut-tile finish (fence.acq_rel.gpu instead of __threadfence;
# both cut tiles of a warp with one fence and one atomic instruction), an L2 evict-first policy on the weights'
# copies, and an L2 prefetch of the 8/16/32 steps after the ring before griddepcontrol.wait. GPU tests first
# (stops on a failure), then the whole-model weight stream and every shape for each form, then memcheck of the forms.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/log.txt
python3 -c "import torch; print('torch', torch.__version__)" | tee -a $OUT/log.txt
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_gemv_stream_gpu.py > $OUT/t.txt 2>&1
tail -4 $OUT/t.txt | tee -a $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A25 "^____" $OUT/t.txt > $OUT/fail.txt; exit 1; }
timeout 330 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all \
  --forms "gemv d8,acqrel,acqrel joint,ef,ef pf8,ef pf16,ef pf32,pf16,all pf16" --out $OUT/gemv.json 2>&1 | tee -a $OUT/log.txt
timeout 150 compute-sanitizer --tool memcheck --report-api-errors no python3 -m pytest -q -x -p no:cacheprovider \
  tests/test_gemv_stream_gpu.py -k "forms or chain" 2>&1 | grep -E "ERROR SUMMARY|passed|failed" | tail -3 | tee -a $OUT/log.txt
