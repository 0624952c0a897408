# Session 9 call 1: programmatic dependent launch for every kernel of the package (kvp_pdl.cuh). GPU tests of the
# kernels it touched, the whole-model weight stream with PDL on / off, the decode step kernel by kernel on / off.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 python3 benchmarks/skinny_gemm.py --stream > $OUT/stream.txt 2>&1; cat $OUT/stream.txt
for pdl in 1 0; do
  for m in deepseek-ai/DeepSeek-V2-Lite "Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2" openai/gpt-oss-20b \
           meta-llama/Llama-3.1-8B-Instruct meta-llama/Llama-3.2-1B-Instruct; do
    KVPLAN_PDL=$pdl timeout 60 python3 benchmarks/forward_profile.py $m --batch 1 --context 4096 --top 12 \
      >> $OUT/forward_profile_pdl$pdl.txt 2>&1
  done
done
grep -H "graph step" $OUT/forward_profile_pdl*.txt
timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_norm.py tests/test_rope_cache.py tests/test_router.py \
  tests/test_skinny_gpu.py tests/test_deltanet_step.py tests/test_kernel_mla_gpu.py tests/test_verify_gpu.py \
  > $OUT/pytest.txt 2>&1
tail -5 $OUT/pytest.txt
