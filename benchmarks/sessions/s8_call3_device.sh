# Session 8 call 3: the add + RMS norm alone (graph of 200 calls) and under ncu; GPU tests of the router's int32
# ids, the shared expert in the combine and the forward; verify on the four MoE models with this session's kernels.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 60 python3 benchmarks/probes/norm_probe.py > $OUT/norm_probe.txt 2>&1
cat $OUT/norm_probe.txt
NCU_OUT=/tmp/ncu_norm timeout 100 bash benchmarks/ncu_kernel_device.sh kvp_add_rms_norm benchmarks/probes/norm_probe.py --kernel-only --launches 4
grep -E "Duration|Elapsed Cycles|SM Frequency|DRAM Frequency|Registers|Achieved Occupancy" /tmp/ncu_norm/ncu_details.txt | head -12 > $OUT/ncu_norm.txt
head -8 /tmp/ncu_norm/stall_reasons.txt >> $OUT/ncu_norm.txt; head -30 /tmp/ncu_norm/top_stalls.txt >> $OUT/ncu_norm.txt
cat $OUT/ncu_norm.txt | head -20
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_router.py tests/test_skinny_gpu.py tests/test_verify_gpu.py tests/test_norm.py > $OUT/pytest.txt 2>&1
tail -3 $OUT/pytest.txt
python3 benchmarks/verify_device_run.py models --only=dsv2-lite,qwen3next-tp2,gpt-oss-20b,mixtral-tp2 --budget=300 > /dev/null 2>&1
cat $OUT/summary.txt
