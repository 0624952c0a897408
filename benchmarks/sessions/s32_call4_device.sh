# session 32 call 4: the split merge fused into the last CTA against the merge launch on the large split shapes,
# tables shuffled and sorted once (benchmarks/probes/fuse_merge_ab.py)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 400 python3 benchmarks/probes/fuse_merge_ab.py 2>&1
} | tee $OUT/s32_call4_h200_2026-12-03.txt
