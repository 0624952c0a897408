"""The streaming GEMV's e4m3 kernel on one shape, every launch form: worst relative error against float64 per batch,
and where the worst rows sit (64-row tiles, CTAs), to tell a precision limit from a cut-tile bug.

    python3 benchmarks/gemv_e4m3_check.py [n k]"""

import sys

import torch

from kvplan.kernels.gemv_stream import gemv_stream_plan


def e4m3(shape, scale, gen):
    q = (torch.randn(*shape, device="cuda", generator=gen) / scale).clamp(-448, 448).to(torch.float8_e4m3fn)
    return q, q.double() * scale


def main(argv):
    quick = "--quick" in argv  # the failing launch alone (compute-sanitizer runs)
    argv = [a for a in argv if a != "--quick"]
    n, k = (int(argv[0]), int(argv[1])) if len(argv) >= 2 else (4096, 5120)
    gen = torch.Generator(device="cuda").manual_seed(0)
    bf = torch.randn(n, k // 2, device="cuda", generator=gen).mul_((k // 2) ** -0.5).bfloat16()
    for form in () if quick else ({"ctas_per_sm": 1}, {"ctas_per_sm": 2}):  # the 16-bit kernel on the same bytes (k / 2 values)
        plan = gemv_stream_plan(n, k // 2, torch.bfloat16, device=0, **form)
        for rep in range(3):
            x = torch.randn(1, k // 2, device="cuda", generator=gen).bfloat16()
            ref = x.double() @ bf.double().t()
            rel = float(((plan.run(x, bf).double() - ref).norm() / ref.norm()))
            print(f"bf16 {n}x{k // 2} {form} run {rep}: rel {rel:.2e}", flush=True)
    for wscale, label in ((k ** -0.5 / 16, "saturated w"),) + (() if quick else ((k ** -0.5 / 64, "w in range"),)):
        w, w64 = e4m3((n, k), wscale, gen)
        forms = ({"ctas_per_sm": 1}, {"ctas_per_sm": 2}, {"ctas_per_sm": 2, "rotate": True},
                 {"ctas_per_sm": 1, "own": True})
        for form in forms[1:2] if quick else forms:
            try:
                plan = gemv_stream_plan(n, k, torch.float8_e4m3fn, device=0, **form)
            except ValueError as exc:
                print(label, form, "refused:", exc)
                continue
            worst = []
            for b, rep in ((1, 0), (1, 1), (1, 2), (2, 0), (8, 0)):
                if rep == 0:
                    x, x64 = e4m3((b, k), 1 / 32, gen)
                    ref = x64 @ w64.t()
                got = plan.run(x, w, scale=wscale / 32).double()
                err = (got - ref).abs() / ref.abs().max(dim=-1, keepdim=True).values
                rel = (got - ref).norm(dim=-1) / ref.norm(dim=-1)
                bad = (err > 0.02).nonzero()
                rows = sorted({int(r) for r in bad[:, 1]})[:12]
                worst.append(f"b{b}.{rep} rel {float(rel.max()):.2e} max elem {float(err.max()):.2e} bad {len(bad)} "
                             f"rows {rows} tiles {sorted({r // 64 for r in rows})}")
            print(label, form, f"ctas {plan.ctas} per_cta {plan.per_cta}", "; ".join(worst), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
