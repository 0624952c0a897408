# Session 10 call 4: the decode kernel's standing table against FlashInfer and SDPA with this session's defaults (head
# tiles sharing one bulk ring, lazy rescale for 16 heads per warp), then the MoE batch comparison with the joined
# shared experts routed as verify routes them (every token).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 420 python3 benchmarks/kernel_device_run.py env bench > $OUT/run.txt 2>&1
tail -45 $OUT/run.txt
timeout 120 python3 benchmarks/skinny_gemm.py --moe-batch > $OUT/moe_batch.txt 2>&1
grep -v Warn $OUT/moe_batch.txt | cut -c1-260 | tail -16
