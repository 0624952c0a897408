"""Writes a kernel source with its weight / KV loads marked L2 evict-first into DIR, for an A/B against the file
in the checkout (each is read once a decode step; the streaming GEMV's and the decode kernels' bulk copies gained
1.5-2.5 points and 1-3% from this policy in session 19, benchmarks/RESULTS.md):

    python3 benchmarks/probes/evict_first_patch.py fp8-decode DIR   # paged_decode.cu's cp.async (fp8 path, sm_90)
    python3 benchmarks/probes/evict_first_patch.py skinny DIR       # skinny_gemm.cu: ld.global.nc, row-tile cp.async

Used by benchmarks/sessions/s20_call2_device.sh and s20_call3_device.sh."""
import re
import sys
from pathlib import Path

KERNELS = Path(__file__).resolve().parents[2] / "kvplan" / "kernels"


def policy_fn(name: str) -> str:
    return (f'__device__ __forceinline__ unsigned long long {name}() {{\n  unsigned long long p;\n'
            '  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\\n" : "=l"(p));\n  return p;\n}\n\n')


def fp8_decode(text: str) -> str:
    """Every cp.async form of cp_async16 / cp_async8: the cache hint and the policy operand (prefetch sizes kept)."""
    pat = re.compile(r'"cp\.async\.(cg|ca)\.shared\.global((?:\.L2::(?:128|256)B)?) \[%0\], \[%1\], (16|8), %2;\\n" '
                     r'::"r"\(dst\), "l"\(src\), "r"\(nbytes\)')
    out, n = pat.subn(lambda m: f'"cp.async.{m[1]}.shared.global.L2::cache_hint{m[2]} [%0], [%1], {m[3]}, %2, %3;\\n" '
                      '::"r"(dst), "l"(src), "r"(nbytes), "l"(kvp_evict_first())', text)
    assert n == 6, f"expected 6 cp.async forms, found {n}"
    return _before(out, "__device__ __forceinline__ void cp_async16(", policy_fn("kvp_evict_first"))


SKINNY_EDITS = (
    ('asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\\n"\n'
     '               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));',
     'asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], %5;\\n"\n'
     '               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p), "l"(sk_evict_first()));'),
    ('asm volatile("ld.global.nc.L1::no_allocate.u8 %0, [%1];\\n" : "=h"(v) : "l"(p));',
     'asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.u8 %0, [%1], %2;\\n" : "=h"(v) : "l"(p), '
     '"l"(sk_evict_first()));'),
    ('asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\\n" ::"r"(dst), "l"(src), "r"(ok ? 16 : 0) : '
     '"memory");',
     'asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;\\n" ::"r"(dst), "l"(src), '
     '"r"(ok ? 16 : 0), "l"(sk_evict_first()) : "memory");'),
)


def skinny(text: str) -> str:
    for old, new in SKINNY_EDITS:
        assert text.count(old) == 1, old[:60]
        text = text.replace(old, new)
    return _before(text, "__device__ __forceinline__ uint4 ld_stream(", policy_fn("sk_evict_first"))


def _before(text: str, anchor: str, insert: str) -> str:
    assert text.count(anchor) == 1, anchor
    return text.replace(anchor, insert + anchor)


PATCHES = {"fp8-decode": ("paged_decode.cu", fp8_decode), "skinny": ("skinny_gemm.cu", skinny)}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in PATCHES:
        sys.exit(f"usage: evict_first_patch.py {{{'|'.join(PATCHES)}}} DIR")
    source, patch = PATCHES[sys.argv[1]]
    dst = Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    (dst / source).write_text(patch((KERNELS / source).read_text()))
    print(f"wrote {dst / source}")
