# Session 14 call 1: the row-tile MoE kernel with a cp.async weight ring per warp and joined experts' CTA rows first:
# the skinny/MoE GPU tests, memcheck and racecheck over the by-expert tests, then --moe-batch (ring of 2 / 3 / 4 steps
# against the grouped GEMMs).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc
python3 -m kvplan.kernels.batch sm_90 > /dev/null 2>&1
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py > $OUT/t.txt 2>&1; tail -2 $OUT/t.txt
grep -E "^FAILED|Error:" $OUT/t.txt | head -8 | cut -c1-300
SAN="compute-sanitizer --report-api-errors no --error-exitcode 1"
timeout 120 $SAN --tool memcheck python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py -k "joined or above_max" > $OUT/mc.txt 2>&1; echo "memcheck rc=$?"; tail -2 $OUT/mc.txt
timeout 100 $SAN --tool racecheck python3 -m pytest -q -p no:cacheprovider tests/test_skinny_gpu.py -k "joined" > $OUT/rc.txt 2>&1; echo "racecheck rc=$?"; tail -2 $OUT/rc.txt
timeout 200 python3 benchmarks/skinny_gemm.py --moe-batch > $OUT/moe_batch.txt 2>&1; grep -v Warn $OUT/moe_batch.txt | cut -c1-330
