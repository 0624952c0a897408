# Session 11 call 4: heads in M as the default for 16 heads per warp (head_dim <= 128, lazy rescale off there), with
# 16-byte output stores everywhere: the kernel GPU tests and both sanitizers over the case list (kernel_device_run.py
# tests sanitize), then the sweep of the large-group shapes: the new default against the old layout, page runs,
# ring depths, and the cp.async ring (bulk=False, what sm_80 / sm_89 run) with and without heads in M.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 400 python3 benchmarks/kernel_device_run.py tests sanitize > $OUT/run.txt 2>&1; tail -6 $OUT/run.txt
grep -E "passed|failed|error" $OUT/tests.log | tail -3
timeout 180 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "MQA 64q/1kv B8 32K,64q/4kv B16 16K,MQA 64q/1kv B1 32K,MQA 64q/1kv fp8 B8 32K,MQA 64q/1kv head_dim 64 B8 32K,64q/4kv B64 4K,16q/1kv B32 8K" --variants "heads_in_m=False;page_runs=True;page_runs=True kv_per_cta=4;stages=3;stages=6;bulk=False;bulk=False heads_in_m=False" > $OUT/sweep.txt 2>&1
grep "^| [M61]" $OUT/sweep.txt | sed -E 's/\(bulk=([A-Za-z]+).*stages=([A-Za-z0-9]+), kv_per_cta=([A-Za-z0-9]+).*lazy_rescale=([A-Za-z]+), heads_in_m=([A-Za-z]+), page_runs=([A-Za-z]+).*\)/bulk=\1 st=\2 kh=\3 lazy=\4 hm=\5 runs=\6/' | cut -c1-150
