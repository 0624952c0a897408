# Session 21, call 7 (issue 13): the rotated order per shape (call 5 measured it whole-model only: Qwen3-14B +1-2
# points, Llama-3.1-8B -1.5..-3): every dense model's shapes, one and two CTAs per SM, in order and rotated, each
# shape's layers back to back (verify's weight-stream figure is this, per shape, the fastest form kept).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
timeout 250 python3 benchmarks/skinny_gemm.py --gemv --per-shape-all --forms "c1 d8,c1 rot,c2 d6,c2 rot" 2>&1 \
  | tee $OUT/log.txt | tail -60
