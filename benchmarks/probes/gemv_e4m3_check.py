"""The streaming GEMV's e4m3 kernel on one shape, every launch form: worst relative error against float64 per batch,
and where the worst rows sit (64-row tiles, CTAs), to tell a precision limit from a cut-tile bug.

    python3 benchmarks/probes/gemv_e4m3_check.py [n k] [--quick]
    python3 benchmarks/probes/gemv_e4m3_check.py --variants     # the failing launch under changes, one suspect each"""

import sys

import torch

from kvplan.kernels.gemv_stream import gemv_stream_plan


def e4m3(shape, scale, gen):
    q = (torch.randn(*shape, device="cuda", generator=gen) / scale).clamp(-448, 448).to(torch.float8_e4m3fn)
    return q, q.double() * scale


def main(argv):
    if "--variants" in argv:
        return variants()
    quick = "--quick" in argv  # the failing launch alone (compute-sanitizer runs)
    argv = [a for a in argv if a != "--quick"]
    n, k = (int(argv[0]), int(argv[1])) if len(argv) >= 2 else (4096, 5120)
    gen = torch.Generator(device="cuda").manual_seed(0)
    bf = torch.randn(n, k // 2, device="cuda", generator=gen).mul_((k // 2) ** -0.5).bfloat16()
    # the 16-bit kernel on the same bytes (k / 2 values)
    for form in () if quick else ({"ctas_per_sm": 1}, {"ctas_per_sm": 2}):
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




def variants(n=4096, k=5120, reps=10):
    """The launch that failed in session 36 (e4m3, tiles cut, two CTAs per SM, batch 1) ten times in a row under
    changes that each remove one suspect: a sync between runs, rings of 6, the default L2 policy; and the 16-bit
    kernel at two CTAs per SM on the same bytes. Run once more with KVPLAN_PDL=0 (no programmatic dependent
    launch)."""
    gen = torch.Generator(device="cuda").manual_seed(1)
    w, w64 = e4m3((n, k), k ** -0.5 / 64, gen)
    x, x64 = e4m3((1, k), 1 / 32, gen)
    ref = x64 @ w64.t()
    cases = [("default", {}, False), ("sync between runs", {}, True), ("depth 6", {"depth": 6}, False),
             ("evict_first off", {"evict_first": False}, False), ("rows owned", {"own": True}, False)]
    for label, opts, sync in cases:
        plan = gemv_stream_plan(n, k, torch.float8_e4m3fn, device=0, ctas_per_sm=2, **opts)
        errs = []
        for _ in range(reps):
            got = plan.run(x, w, scale=(k ** -0.5 / 64) / 32).double()
            if sync:
                torch.cuda.synchronize()
            errs.append(float((got - ref).norm() / ref.norm()))
        print(f"variant {label}: ctas {plan.ctas}, rel err per run " + " ".join(f"{e:.1e}" for e in errs), flush=True)
    wb = torch.randn(n, k // 2, device="cuda", generator=gen).mul_((k // 2) ** -0.5).bfloat16()
    xb = torch.randn(1, k // 2, device="cuda", generator=gen).bfloat16()
    refb = xb.double() @ wb.double().t()
    plan = gemv_stream_plan(n, k // 2, torch.bfloat16, device=0, ctas_per_sm=2)
    errs = [float((plan.run(xb, wb).double() - refb).norm() / refb.norm()) for _ in range(reps)]
    print("variant bf16 same bytes: rel err per run " + " ".join(f"{e:.1e}" for e in errs), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
