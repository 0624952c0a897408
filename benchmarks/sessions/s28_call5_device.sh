# every GPU test file on main (after the e4m3 mbarrier hand-overs): kernels, MLA, GEMV / skinny, mxfp4, verify
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for f in tests/*gpu*.py; do
  echo "$f: $(timeout 300 python3 -m pytest -q -p no:cacheprovider $f 2>&1 | tail -1)"
done
