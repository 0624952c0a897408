# Session 16 call 1 (run at commit c6b10d1, branch gqa-tma, which has the L2 prefetch kernel and benchmark): the page-walk probe (the decode kernel's bulk copies of rows or whole pages, pages shuffled or in
# address order, no arithmetic) and the L2 prefetch of the next weight in the whole-model weight stream.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
timeout 60 python3 -m pytest -q -p no:cacheprovider "tests/test_kernel_gpu.py::test_paged_walk_probe_reads_both_buffers" "tests/test_kernel_gpu.py::test_paged_read_probe_reads_pages_in_either_order" 2>&1 | tail -3
timeout 200 python3 benchmarks/page_scatter_probe.py --walks --reps 9 2>&1 | tee $OUT/walks.txt
timeout 280 python3 benchmarks/l2_prefetch_stream.py --batches 1,8 2>&1 | tee $OUT/prefetch.txt
