"""Writes skinny_gemm.cu (the skinny GEMM, the MoE pairs and row-tile kernels) with its weight loads marked L2
evict-first into DIR/skinny_gemm.cu, for an A/B against the file in the checkout (benchmarks/s20_call3_device.sh):

    python3 benchmarks/skinny_evict_first.py DIR

Every weight is read once a decode step; the streaming GEMV's and the decode kernels' copies gained 1.5-2.5 points
and 1-3% from the same policy in session 19. The three weight loads: `ld.global.nc` (16 bytes and the mxfp4 scales'
byte) and the row-tile kernel's `cp.async.cg`."""
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "kvplan" / "kernels" / "skinny_gemm.cu"
POLICY = ('__device__ __forceinline__ unsigned long long sk_evict_first() {\n  unsigned long long p;\n'
          '  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\\n" : "=l"(p));\n  return p;\n}\n\n')
EDITS = (
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


def patched(text: str) -> str:
    for old, new in EDITS:
        assert text.count(old) == 1, old[:60]
        text = text.replace(old, new)
    anchor = "__device__ __forceinline__ uint4 ld_stream("
    assert text.count(anchor) == 1
    return text.replace(anchor, POLICY + anchor)


if __name__ == "__main__":
    dst = Path(sys.argv[1])
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "skinny_gemm.cu").write_text(patched(SRC.read_text()))
    print(f"wrote {dst / 'skinny_gemm.cu'}")
