"""MLA decode: DRAM-bound vs L2-resident time per launch variant (is the kernel waiting on memory or on itself?).

python3 benchmarks/mla_probe.py [VARIANTS]  VARIANTS: "k=v k2=v2;..." of paged_mla_decode_plan options ("" = default).
L2-resident: every block-table entry points into 32 pages (2.4 MB), so the copies hit L2 and the time is the
kernel's own step cost. Times: CUDA graphs, median (kernel_vs_flashinfer.time_calls). Each variant's output is also
compared with the default's on the same inputs (max |difference|; bf16 outputs of two kernels differ by ~1e-3).
E.g. the three-stage form beside the default (session 48):
  python3 benchmarks/mla_probe.py "wg_stages=3;wg_stages=3 early_free=2;early_free=0" "16h B32 8K,16h B8 32K"
"""
import sys

import torch

sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
from kernel_vs_flashinfer import mla_inputs, time_calls  # noqa: E402

from kvplan.kernels import paged_mla_decode_plan  # noqa: E402

DEV = torch.device("cuda")
SHAPES = [("16h B1 4K", 1, 4096, 16, torch.bfloat16), ("16h B1 32K", 1, 32768, 16, torch.bfloat16),
          ("16h B32 8K", 32, 8192, 16, torch.bfloat16), ("16h B128 4K", 128, 4096, 16, torch.bfloat16),
          ("16h B8 32K", 8, 32768, 16, torch.bfloat16), ("16h fp8 B32 8K", 32, 8192, 16, torch.float8_e4m3fn),
          ("16h fp8 B1 4K", 1, 4096, 16, torch.float8_e4m3fn), ("16h fp8 B1 32K", 1, 32768, 16, torch.float8_e4m3fn),
          ("16h fp8 B8 32K", 8, 32768, 16, torch.float8_e4m3fn), ("16h fp8 B128 4K", 128, 4096, 16, torch.float8_e4m3fn),
          ("16h fp8 B64 16K", 64, 16384, 16, torch.float8_e4m3fn), ("8h fp8 B32 8K", 32, 8192, 8, torch.float8_e4m3fn),
          ("64h fp8 B32 8K", 32, 8192, 64, torch.float8_e4m3fn), ("128h fp8 B8 8K", 8, 8192, 128, torch.float8_e4m3fn),
          ("128h fp8 B32 4K", 32, 4096, 128, torch.float8_e4m3fn), ("128h B32 4K", 32, 4096, 128, torch.bfloat16),
          ("128h B8 8K", 8, 8192, 128, torch.bfloat16), ("128h B1 32K", 1, 32768, 128, torch.bfloat16)]
SHAPES += [("16h B1 8K", 1, 8192, 16, torch.bfloat16), ("16h B2 8K", 2, 8192, 16, torch.bfloat16),
           ("16h B4 8K", 4, 8192, 16, torch.bfloat16)]  # verify's batch-1 steps at 8K (DeepSeek-V3 at tp 8)
SHAPES += [("16h B32 8K bs16", 32, 8192, 16, torch.bfloat16, 16),  # (a 6th entry: the block size; 64 otherwise)
           ("16h B400 8K bs16", 400, 8192, 16, torch.bfloat16, 16), ("16h B400 8K", 400, 8192, 16, torch.bfloat16)]
SHAPES += [(f"16h B{b} {ctx // 1024}K", b, ctx, 16, torch.bfloat16)  # 2 to 11 waves of CTAs (bf16 16 heads)
           for b, ctx in ((96, 8192), (200, 8192), (264, 4096), (528, 4096), (1056, 2048))]
SHAPES = [s for s in SHAPES if not sys.argv[2:] or s[0] in sys.argv[2].split(",")]  # [VARIANTS] [SHAPE,SHAPE]


def variants(text):
    """``"stages=3;tokens=64"`` -> [{}, {"stages": 3}, {"tokens": 64}] (the default first)."""
    out = [{}]
    for part in filter(None, (p.strip() for p in text.split(";"))):
        out.append({k: (v == "True") if v in ("True", "False") else int(v)
                    for k, _, v in (item.partition("=") for item in part.split())})
    return out


def main():
    variants_ = variants(sys.argv[1] if len(sys.argv) > 1 else "")
    l2 = torch.cuda.get_device_properties(DEV).L2_cache_size
    for label, B, ctx, H, dt, *bs in SHAPES:
        BS = bs[0] if bs else 64
        kv_bytes, copies, lat, bts, qn, qr, outs, sl = mla_inputs(B, ctx, H, dt, l2, BS)
        hot = [(bt % 32).contiguous() for bt in bts]
        first = None  # the default's output on copy 0
        for var in variants_:
            try:
                plan = paged_mla_decode_plan(H, 512, 64, BS, dt, B, ctx // BS, DEV, **var)
            except Exception as e:  # noqa: BLE001 - a variant may not fit this shape; say so and go on
                print(f"{label:16s} {var}: {type(e).__name__}: {e}")
                continue
            def calls(tables):
                return [lambda i=i: plan.run(qn[i], qr[i], lat, tables[i], sl, scale=0.07, out=outs[i])
                        for i in range(copies)]
            got = plan.run(qn[0], qr[0], lat, bts[0], sl, scale=0.07, out=outs[0]).float()
            first = got.clone() if first is None else first
            diff = float((got - first).abs().max()) if torch.isfinite(got).all() else float("nan")
            cold = time_calls(calls(bts)) * 1e6
            warm = time_calls(calls(hot)) * 1e6
            print(f"{label:16s} {str(var):32s} splits {plan.splits_for(B):3d}  DRAM {cold:7.1f} us "
                  f"({kv_bytes / cold / 1e6 / 4.49:5.1%} of 4.49 TB/s)  L2-resident {warm:7.1f} us  "
                  f"|out - default| {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
