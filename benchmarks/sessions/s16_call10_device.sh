# Session 16 call 10: the page-walk probe with the decode kernel's shared-ring protocol (8 warps splitting a step's
# row copies, full / empty mbarriers, refill after every warp is done with the step before, a spin for the
# arithmetic), 2 against 3 stages: does the protocol alone lose what the 3-stage decode ring loses (72.6% DRAM)?
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc
timeout 60 python3 -m pytest -q -p no:cacheprovider "tests/test_kernel_gpu.py::test_paged_walk_probe_reads_both_buffers" 2>&1 | tail -1
timeout 200 python3 benchmarks/page_scatter_probe.py --walks --reps 7 2>&1 | tee $OUT/walks.txt
