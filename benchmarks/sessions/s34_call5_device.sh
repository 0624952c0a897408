# session 34 call 5 (issue 13): the DeltaNet chunks' triangular solve as one kernel (kvp_dn_solve: A built from
# K K^T, forward substitution a thread a column of [beta V | beta exp(G) K]) in place of cuBLAS's batched trsm
# against the identity and two products. Its GPU tests (float64 solve, the chunked rule against the recurrence,
# the tiny Qwen3-Next forward), the sanitizers, the kernels against their torch forms, Qwen3-Next's prefill profile
# and verify on Qwen3-Next and DeepSeek-V2-Lite (the MLA merge of call 4 in verify's decode).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
{
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_prefill_kernels.py tests/test_verify_gpu.py \
  -k "not end_to_end and not interrupt and not cli" 2>&1 | tail -4 | cut -c1-300
for tool in memcheck racecheck synccheck; do
  echo "== $tool"; timeout 60 compute-sanitizer --report-api-errors no --tool $tool python3 \
    benchmarks/probes/prefill_kernels_check.py 2>&1 | tail -2
done
timeout 60 python3 benchmarks/probes/prefill_kernels_time.py
timeout 60 python3 benchmarks/prefill_profile.py Qwen/Qwen3-Next-80B-A3B-Thinking --tp 2 --top 16 2>&1 \
  | grep -v "Warn\|_warn_once" | cut -c1-200
OUT=$OUT/v timeout 200 python3 benchmarks/verify_device_run.py models --only=qwen3next-tp2,dsv2-lite --budget=190 \
  > /dev/null 2>&1
python3 benchmarks/verify_summary_md.py $OUT/v/results.jsonl
} 2>&1 | tee $OUT/s34_call5_h200_2026-12-03.txt
