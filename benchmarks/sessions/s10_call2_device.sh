# Session 10 call 2: the row-tile MoE kernel as the 16-bit default above 16 tokens (<= 12 pairs per expert): verify's
# forward tests, verify on the three 16-bit MoE models; then Nsight Compute on the MQA launch with head tiles sharing
# one bulk ring (the new sm_90 default), with source lines.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_verify_gpu.py -k "forward" > $OUT/pytest.txt 2>&1
tail -2 $OUT/pytest.txt
python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2,dsv2-lite,mixtral-tp2 --budget=240 > /dev/null 2>&1
cat $OUT/summary.txt
NCU_OUT=$OUT/mqa timeout 150 bash benchmarks/ncu_kernel_device.sh kvp_decode benchmarks/gqa_one_launch.py 8 32768 128 64 1
head -45 $OUT/mqa/top_stalls.txt; head -30 $OUT/mqa/stall_reasons.txt
grep -E "Registers Per|Achieved Occupancy|Duration|DRAM Throughput|Issue Slots Busy|Executed Ipc A|Warp Cycles Per Issued" $OUT/mqa/ncu_details.txt | head -12
