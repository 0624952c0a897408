# Session 7 call 3: GPU tests of the MLA split floor and the mxfp4 launch bound, the two sweeps again on the new
# defaults, ncu of the mxfp4 pairs kernel, the forward kernel by kernel, verify on three models.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 170 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py tests/test_kernel_mla_gpu.py tests/test_rope_cache.py > $OUT/pytest.txt 2>&1
tail -2 $OUT/pytest.txt
timeout 60 python3 benchmarks/probes/mla_splits.py > $OUT/mla_splits.txt 2>&1
timeout 60 python3 benchmarks/skinny_gemm.py --moe-sweep > $OUT/moe_sweep.txt 2>&1
NCU_OUT=/tmp/fp4 timeout 100 bash benchmarks/ncu_kernel_device.sh kvp_skinny_mxfp4_c8 benchmarks/probes/moe_one_launch.py 1
tar -C /tmp -czf $OUT/ncu_fp4.tgz fp4
for m in deepseek-ai/DeepSeek-V2-Lite openai/gpt-oss-20b; do
  timeout 80 python3 benchmarks/forward_profile.py $m --batch 1 --context 4096 --top 12 >> $OUT/forward_profile.txt 2>&1
done
python3 benchmarks/verify_device_run.py models --only=dsv2-lite,gpt-oss-20b,llama8b-8k --budget=150 > /dev/null 2>&1
