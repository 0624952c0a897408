# Session 8 call 5: row tiles per CTA in the MoE pair-slot launches: GPU tests, the variants on the four MoE
# models' expert shapes (batch 1, 4, 8), the decode step kernel by kernel on Qwen3-Next and DeepSeek-V2-Lite.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 120 python3 -m pytest -q -x -p no:cacheprovider tests/test_skinny_gpu.py > $OUT/pytest.txt 2>&1
tail -3 $OUT/pytest.txt
timeout 150 python3 benchmarks/skinny_gemm.py --moe-sweep --variants default,rg1,rg2,rg4,rg8 > $OUT/moe_sweep.txt 2>&1
python3 - <<'PY'
import json, os
for l in open(os.environ["OUT"] + "/moe_sweep.txt"):
    if l.startswith("{"):
        r = json.loads(l)
        print(r["model"][:16], r["batch"], r["variant"], round(r.get("us_per_layer", 0), 1), round(r.get("read", 0), 3),
              r.get("row_groups"), r.get("error", "")[:60])
PY
for m in "Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2" deepseek-ai/DeepSeek-V2-Lite; do
  timeout 100 python3 benchmarks/forward_profile.py $m --batch 1 --context 4096 --top 12 >> $OUT/forward_profile.txt 2>&1
done
grep -E "graph step|kvp_skinny" $OUT/forward_profile.txt
