# Session 14 call 6: the MoE combine launch with four columns a thread (16-byte partial loads): the skinny/MoE GPU
# tests, verify of Qwen3-Next tp 2, then its step kernel by kernel.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 110 python3 -m pytest -q -x -p no:cacheprovider tests/test_skinny_gpu.py > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
timeout 80 python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2 --budget=70 > /dev/null 2>&1; tail -2 $OUT/summary.txt
python3 benchmarks/verify_verdict_lines.py $OUT/results.jsonl 2>&1 | cut -c1-700
timeout 60 python3 benchmarks/forward_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --batch 437 --context 8192 --top 8 > $OUT/prof_qwen.txt 2>&1; grep -v Warn $OUT/prof_qwen.txt | tail -10 | cut -c1-160
