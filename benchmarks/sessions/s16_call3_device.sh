# Session 16 call 3: the page-walk probe with copies of 1, 2 and 4 tokens' rows and of whole pages (does a copy of
# two rows, which the decode kernel's skewed V tile allows, read as fast as a whole page?)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KVPLAN_CACHE_DIR=/tmp/kc
timeout 200 python3 benchmarks/page_scatter_probe.py --walks --reps 9 2>&1 | tee $OUT/walks.txt
