# Session 11 call 6: the decode kernel's standing table against FlashInfer and SDPA with this session's defaults
# (heads in M for 16 heads per warp, 16-byte output stores), .peers carried.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 500 python3 benchmarks/kernel_device_run.py env bench > $OUT/run.txt 2>&1
tail -45 $OUT/run.txt
