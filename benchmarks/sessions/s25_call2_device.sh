export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
for i in 17 18; do
echo "=== memcheck mla $i"
timeout 100 compute-sanitizer --tool memcheck --print-limit 4 python3 benchmarks/kernel_memcheck.py --mla $i 2>&1 | grep -v Warn | head -60
done
echo "=== memcheck mla 16 (widened wgmma)"
timeout 100 compute-sanitizer --tool memcheck --print-limit 2 python3 benchmarks/kernel_memcheck.py --mla 16 2>&1 | tail -3
echo "=== racecheck mla 17"
timeout 150 compute-sanitizer --tool racecheck --racecheck-report hazard --print-limit 6 python3 benchmarks/kernel_memcheck.py --mla 17 2>&1 | grep -v Warn | head -80
echo "=== synccheck mla 17"
timeout 100 compute-sanitizer --tool synccheck --print-limit 4 python3 benchmarks/kernel_memcheck.py --mla 17 2>&1 | grep -v Warn | head -40
