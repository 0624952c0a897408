# Session 8 call 2: GPU tests of the new kernels (add + RMS norm, MLA RoPE + latent write, router tree argmax,
# shared expert in the MoE combine) and the forward on the GPU; the decode step kernel by kernel again; MoE
# pairs-kernel variants on DeepSeek-V2-Lite's and Qwen3-Next's expert shapes.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_norm.py tests/test_rope_cache.py tests/test_router.py tests/test_skinny_gpu.py tests/test_verify_gpu.py > $OUT/pytest.txt 2>&1
tail -15 $OUT/pytest.txt
for m in "Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2" deepseek-ai/DeepSeek-V2-Lite meta-llama/Llama-3.1-8B-Instruct; do
  echo "=== $m" >> $OUT/forward_profile.txt
  timeout 100 python3 benchmarks/forward_profile.py $m --batch 1 --context 4096 --top 25 >> $OUT/forward_profile.txt 2>&1
done
grep "graph step" $OUT/forward_profile.txt
timeout 120 python3 benchmarks/skinny_gemm.py --moe-sweep --only "DeepSeek-V2-Lite,Qwen3-Next-80B tp2" > $OUT/moe_sweep.txt 2>&1
tail -3 $OUT/moe_sweep.txt
