"""Writes the decode kernel with its cp.async copies (the fp8 caches' path on sm_90) marked L2 evict-first into
DIR/paged_decode.cu, for an A/B against the file in the checkout (benchmarks/s20_call2_device.sh):

    python3 benchmarks/fp8_cp_async_evict_first.py DIR

The bulk copies of the bf16 path are evict-first since session 19 (1-3% on most shapes); this is the same policy
on `cp.async.cg/ca ... .L2::cache_hint` (one createpolicy, the copies' L2 prefetch size hints kept)."""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "kvplan" / "kernels" / "paged_decode.cu"


def patched(text: str) -> str:
    # every cp.async form in cp_async16 / cp_async8: add the cache hint and the policy operand
    pat = re.compile(r'"cp\.async\.(cg|ca)\.shared\.global((?:\.L2::(?:128|256)B)?) \[%0\], \[%1\], (16|8), %2;\\n" '
                     r'::"r"\(dst\), "l"\(src\), "r"\(nbytes\)')
    out, n = pat.subn(lambda m: f'"cp.async.{m[1]}.shared.global.L2::cache_hint{m[2]} [%0], [%1], {m[3]}, %2, %3;\\n" '
                      '::"r"(dst), "l"(src), "r"(nbytes), "l"(kvp_evict_first())', text)
    assert n == 6, f"expected 6 cp.async forms, found {n}"
    helper = ('__device__ __forceinline__ unsigned long long kvp_evict_first() {\n  unsigned long long p;\n'
              '  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\\n" : "=l"(p));\n  return p;\n}\n')
    anchor = "__device__ __forceinline__ void cp_async16("
    assert out.count(anchor) == 1
    return out.replace(anchor, helper + anchor)


if __name__ == "__main__":
    dst = Path(sys.argv[1])
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "paged_decode.cu").write_text(patched(SRC.read_text()))
    print(f"wrote {dst / 'paged_decode.cu'}")
