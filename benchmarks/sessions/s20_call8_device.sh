# Session 20 (issue 13): a chain of GEMVs mixing the two launches (one CTA per SM, ring of 8; two with rings of 6)
# ran far slower than either alone (calls 4, 6). The kernel releases its dependents (griddepcontrol.launch_dependents)
# at its top, so up to three grids are resident at once; "late" releases right after the wait instead (at most two).
# Timing only (no tests): whole-model chain, main's file and late alternating twice.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
F=kvplan/kernels/gemv_stream.cu
mkdir -p /tmp/base /tmp/late && cp $F /tmp/base/
python3 - <<'PY' || exit 1
s = open("kvplan/kernels/gemv_stream.cu").read()
top = "  kvp::pdl_release();\n  if (u0 >= u1) {"
assert s.count(top) == 1
s = s.replace(top, "  if (u0 >= u1) {")
prod = "    kvp::pdl_wait();\n    GvCursor xc = first;"
mma = "  constexpr int MT = KVP_GV_MT;\n  kvp::pdl_wait();\n"
assert s.count(prod) == 1 and s.count(mma) == 1
s = s.replace(prod, "    kvp::pdl_wait();\n    kvp::pdl_release();\n    GvCursor xc = first;")
s = s.replace(mma, mma + "  kvp::pdl_release();\n")
open("/tmp/late/gemv_stream.cu", "w").write(s)
PY
for i in 1 2; do
  for form in base late; do
    cp /tmp/$form/gemv_stream.cu $F
    echo "== $form $i" | tee -a $OUT/log.txt
    timeout 60 python3 benchmarks/skinny_gemm.py --gemv --forms "gemv,c1 d8,c2 d6" --only Llama-3.1-8B,Llama-3.2-1B \
      2>&1 | grep " b[18]:" | cut -c1-110 | tee -a $OUT/log.txt
  done
done
cp /tmp/base/gemv_stream.cu $F
