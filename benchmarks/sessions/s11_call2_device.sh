# Session 11 call 2: Nsight Compute on the MQA launch (64q/1kv B8 32K) with heads in M, lazy rescale on (its
# default for 16 heads per warp) and off, beside the default launch: why it runs slower than the default although
# its loop has 18% fewer instructions (call 1: 102.4 / 96.5 vs 91.2 us).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
for v in "default:" "hm:heads_in_m=True" "hm_nolazy:heads_in_m=True lazy_rescale=False"; do
  name=${v%%:*}; opts=${v#*:}
  NCU_OUT=$OUT/$name timeout 170 bash benchmarks/ncu_kernel_device.sh kvp_decode benchmarks/gqa_one_launch.py 8 32768 128 64 1 bf16 "$opts"
  echo "== $name"; head -25 $OUT/$name/top_stalls.txt; head -14 $OUT/$name/stall_reasons.txt
  grep -E "Registers Per|Achieved Occupancy|Duration|Issue Slots Busy|Executed Ipc A|Warp Cycles Per Issued|Bank|Shared.*Excessive|Local" $OUT/$name/ncu_details.txt | head -16
done
