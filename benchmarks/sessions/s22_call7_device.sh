# Session 22, call 7 (issue 13): the row-owned GEMV's two-CTA launch with rings of 4 / 5 / 6 (room for two / one /
# no CTA of the next launch beside the two) per shape, against the in-order default and F.linear.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 250 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all --forms "gemv,own auto,own c2 d4,own c2 d5,own c2 d6" \
  --out $OUT/gemv_own.json 2>&1 | tee $OUT/bench.txt | grep -v registers | tail -40
