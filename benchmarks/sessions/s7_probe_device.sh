# Session 7, one device call: verify on two models (the decode verdict's responsible term, first GPU run), the
# forward pass kernel by kernel (DeepSeek-V2-Lite, gpt-oss-20b at batch 1), ncu on the decode kernel's MQA shape
# and fp8 shape. Each result lands in $OUT as soon as it exists.     bash benchmarks/sessions/s7_probe_device.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 benchmarks/verify_device_run.py models --only=llama1b,llama8b-8k --budget=200 > /tmp/verify_stdout.txt 2>&1
for m in "deepseek-ai/DeepSeek-V2-Lite" "openai/gpt-oss-20b"; do
  timeout 120 python3 benchmarks/forward_profile.py $m --batch 1 --context 4096 --top 30 >> $OUT/forward_profile.txt 2>&1
done
for c in "mqa 8 32768 128 64 1" "fp8 64 8192 128 32 8 fp8"; do
  set -- $c; tag=$1; shift
  NCU_OUT=/tmp/$tag bash benchmarks/ncu_kernel_device.sh kvp_decode benchmarks/gqa_one_launch.py "$@"
  tar -C /tmp -czf $OUT/ncu_$tag.tgz $tag
done
