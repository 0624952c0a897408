# session 26 call 2: the e4m3 MLA kernel's end hand-over at one __syncthreads site after the role branches (its GPU
# tests, synccheck / racecheck of its two cases); early_free=2 against the default wgmma path at 16 and 128 bf16
# heads; verify of four dense models with the seventh matmul form (the row-owned GEMV at two CTAs per SM, rings of 8)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
SAN="compute-sanitizer --report-api-errors no"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_mla_gpu.py -k "e4m3 or fp8" 2>&1 | tail -1
for i in 17 18; do
  timeout 45 $SAN --tool synccheck python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "ERROR SUMMARY" | sed "s/^/synccheck $i: /"
  timeout 45 $SAN --tool racecheck --racecheck-report all --print-limit 2 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -E "RACECHECK SUMMARY|Potential" | head -3 | sed "s/^/racecheck $i: /"
done
timeout 100 python3 benchmarks/mla_probe.py "wgmma=True early_free=2" "16h B1 4K,16h B1 32K,16h fp8 B32 8K,128h B32 4K,128h B8 8K,128h B1 32K" 2>&1 | grep -v Warn
timeout 300 python3 benchmarks/verify_device_run.py models --only=llama8b-8k,qwen3-14b,llama1b,gemma3-27b --budget=290 2>&1 | tail -6
python3 benchmarks/probes/verify_forms_summary.py 2>&1 | tail -30
