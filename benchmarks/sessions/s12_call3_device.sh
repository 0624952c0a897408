# Session 12 call 3: heads-in-M MLA variants (L2 prefetch a step ahead, 3 stages at one CTA per SM) on the 16-head
# shapes, then Nsight Compute's stall lines for the default heads-in-M launch (16h B32 8K).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 100 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "heads_in_m" > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
timeout 200 python3 benchmarks/mla_probe.py "l2_prefetch=True;stages=3;stages=3 l2_prefetch=True" "16h B32 8K,16h B128 4K,16h B8 32K" > $OUT/probe.txt 2>&1; cat $OUT/probe.txt
NCU_OUT=$OUT/stalls timeout 150 bash benchmarks/ncu_kernel_device.sh kvp_mla_decode benchmarks/probes/mla_one_launch.py
cat $OUT/stalls/stall_reasons.txt; head -40 $OUT/stalls/top_stalls.txt
grep -E "Registers Per|Achieved Occupancy|Issue Slots Busy|Duration|Theoretical Occ" $OUT/stalls/ncu_details.txt
