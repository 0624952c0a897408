# The first GPU run of the opt-in heads-in-M step (KernelOptions(heads_in_m=True), paged_decode_hm.cuh) and of its
# page runs (page_runs=True: a step's K and V in one bulk copy each for MQA; written
# in session 10 without a GPU, its fragment mappings emulated on the CPU by tests/test_kernel_hm_fragments.py):
# its tests, memcheck + racecheck of the case list (three heads-in-M cases at the end), then the MQA and 64q/4kv
# shapes with and without it. If it is right and faster, make it the default for 16 heads per warp
# (decode_launch.plan_cta) and rerun the standing table (kernel_device_run.py env bench, .peers carried).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernel_gpu.py -k "heads_in_m or head_tiles" > $OUT/pytest.txt 2>&1
tail -3 $OUT/pytest.txt
timeout 300 python3 benchmarks/kernel_device_run.py sanitize > $OUT/sanitize.txt 2>&1; tail -4 $OUT/sanitize.txt
timeout 120 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --sweep --sweep-only "MQA 64q/1kv B8 32K,64q/4kv B16 16K" --variants "heads_in_m=True;heads_in_m=True stages=3;heads_in_m=True lazy_rescale=False;heads_in_m=True page_runs=True;heads_in_m=True page_runs=True stages=6;heads_in_m=True kv_per_cta=4;heads_in_m=True kv_per_cta=4 page_runs=True" > $OUT/sweep.txt 2>&1
grep "^|" $OUT/sweep.txt | tail -8
