# Session 23, call 8: every default cubin for sm_90 (the warpgroup MLA ones as sm_90a) and the kernel GPU tests
# (decode, MLA, references, skinny GEMM, DeltaNet step) on the code as landed.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
mkdir -p $OUT/k; OUT=$OUT/k timeout 420 python3 benchmarks/kernel_device_run.py env tests > $OUT/run.txt 2>&1
echo "rc $?" >> $OUT/run.txt
tail -30 $OUT/run.txt; ls $OUT/k 2>/dev/null | head; tail -12 $OUT/k/tests.log 2>/dev/null
