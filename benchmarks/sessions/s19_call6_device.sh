# Session 19 call 6 (issue 14): the GEMV's evict-first finding tried on the decode kernels: their KV bulk copies
# (cp.async.bulk, bf16 GQA and MLA paths) with an L2 evict-first policy ("ef", made here: a hinted copy added to
# kvp_common.cuh and used by paged_decode.cu and paged_mla_decode.cu; the read probe keeps the plain copy), against
# main's ("base"). The decode and MLA GPU tests on "ef" (stops on a failure), then the table without FlashInfer,
# base / ef alternating twice.
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 KVPLAN_CACHE_DIR=/tmp/kc KVPLAN_REQUIRE_NVRTC=1
K=kvplan/kernels
mkdir -p /tmp/base /tmp/ef
cp $K/kvp_common.cuh $K/paged_decode.cu $K/paged_mla_decode.cu /tmp/base/
python3 - <<'PY'
import re
K = "kvplan/kernels/"
s = open(K + "kvp_common.cuh").read()
anchor = "// 16-byte global load that skips L1"
assert s.count(anchor) == 1
s = s.replace(anchor, '''__device__ __forceinline__ void bulk_g2s_ef(u32 dst, const void* src, u32 bytes, u32 bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  unsigned long long pol;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\\n" : "=l"(pol));
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;\\n"
               ::"r"(dst), "l"(src), "r"(bytes), "r"(bar), "l"(pol) : "memory");
#else
  __trap();
#endif
}

''' + anchor)
open("/tmp/ef/kvp_common.cuh", "w").write(s)
for f, n in (("paged_decode.cu", 3), ("paged_mla_decode.cu", 1)):
    t = open(K + f).read()
    assert len(re.findall(r"\bbulk_g2s\(", t)) == n, f
    open("/tmp/ef/" + f, "w").write(re.sub(r"\bbulk_g2s\(", "bulk_g2s_ef(", t))
PY
cp /tmp/ef/* $K/
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_kernel_gpu.py tests/test_kernel_mla_gpu.py > $OUT/t.txt 2>&1
tail -2 $OUT/t.txt | tee $OUT/log.txt
grep -qE "[0-9]+ (failed|errors?)" $OUT/t.txt && { grep -m5 -B2 -A25 "^____" $OUT/t.txt > $OUT/fail.txt; cp /tmp/base/* $K/; exit 1; }
for i in 1 2; do
  for form in base ef; do
    cp /tmp/$form/* $K/
    echo "== $form $i" | tee -a $OUT/log.txt
    timeout 75 python3 benchmarks/kernel_vs_flashinfer.py --no-flashinfer --json $OUT/t_${form}_$i.json 2>&1 \
      | grep "^|\|^host\|^read" | tee -a $OUT/log.txt
  done
done
cp /tmp/base/* $K/
