# Session 8 call 4: ncu of the MoE pairs kernel's up and down launches at batch 1 on Qwen3-Next's and DeepSeek-V2-
# Lite's expert shapes (why 28% / 53% of read); the decode step kernel by kernel with the norm's weight prefetch.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
for m in qwen3-next dsv2-lite; do
  for skip in 2 3; do
    NCU_OUT=/tmp/ncu_$m$skip NCU_SKIP=$skip timeout 100 bash benchmarks/ncu_kernel_device.sh kvp_skinny_bf16_c8 benchmarks/probes/moe_one_launch.py 1 $m
    echo "=== $m launch $skip" >> $OUT/ncu_moe.txt
    grep -E "Grid Size|Duration|DRAM Throughput|Memory Throughput|Elapsed Cycles|SM Frequency|Registers Per|Achieved Occupancy|Waves Per SM|Theoretical Occ" /tmp/ncu_$m$skip/ncu_details.txt | head -14 >> $OUT/ncu_moe.txt
    sort -t' ' -k2 -n -r /tmp/ncu_$m$skip/stall_reasons.txt | head -6 >> $OUT/ncu_moe.txt
  done
done
cat $OUT/ncu_moe.txt | head -60
for m in meta-llama/Llama-3.1-8B-Instruct deepseek-ai/DeepSeek-V2-Lite; do
  timeout 100 python3 benchmarks/forward_profile.py $m --batch 1 --context 4096 --top 8 >> $OUT/forward_profile.txt 2>&1
done
grep -E "graph step|add_rms_norm|mla_rope" $OUT/forward_profile.txt
