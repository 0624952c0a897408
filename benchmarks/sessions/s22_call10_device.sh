# Session 22, call 10 (issue 13): more bytes in flight per SM. Two CTAs per SM with rings of 8 for the row-owned form
# (2 x 101 KB: 128 KB of weights in flight per SM against 96 KB at rings of 6), and the in-order form at two CTAs
# with rings of 8 / 10 (128 / 160 KB), against the defaults; per shape and whole model, three dense models.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 200 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all --forms "c1 d8,own auto,own c2 d8,c2 d8,c2 d10" \
  2>&1 | grep -v registers | tee $OUT/bench.txt | tail -24
