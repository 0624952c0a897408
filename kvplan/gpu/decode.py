"""Verify's decode sweep: the bundled kernel over every KV layer and the weights streamed as GEMMs, timed per
batch size (CUDA graphs where the step can be captured)."""

from __future__ import annotations

import time

from ..model.spec import ModelSpec
from ..plan.speed import decode_roofline, weights_read_bytes
from ..verify.allocator import kernel_block_table
from ..verify.layout import attention_read_bytes
from ..verify.weights import stream_bytes, sweep_batches, weight_stream
from .mla_standin import MLAStandIn, faster_mla, mla_reference, pick_sdpa_backend, relative_l2
from .timing import DEVICE, time_step

SWEEP_BUDGET_S = 45.0  # decode sweep stops adding batch sizes past this (batch 1 and max always run)


def torch_dtype(torch, name: str):
    from ..verify.layout import TORCH_DTYPES

    return getattr(torch, TORCH_DTYPES[name])


def _kernel_choice(group, progress) -> tuple:
    """(callable, label, graph-capturable) for one full/sliding group."""
    from .kernels import kernel_unavailable_reason, paged_decode_attention, reference_paged_decode_attention

    reason = kernel_unavailable_reason()
    if reason is None and group.head_dim not in (64, 128, 256):
        reason = f"head_dim {group.head_dim} is not one the kernel covers (64, 128, 256)"
    if reason is None:
        return paged_decode_attention, "bundled CUDA kernel (NVRTC)", True
    progress.note(f"[yellow]CUDA kernel unavailable ({reason}): timing the torch reference instead[/yellow]")
    return reference_paged_decode_attention, f"torch reference kernel, NOT the CUDA kernel ({reason})", False


def decode_sweep(torch, rank, spec: ModelSpec, plan, layout, boundary, allocator, precision, bw_plan: float,
            bw_copy: float, progress, notes: list) -> dict:
    caches = rank.objects["caches"]
    weights_buffer = rank.objects["weights"]
    max_batch = boundary.served
    model_dtype = torch_dtype(torch, spec.dtype if spec.dtype in ("bf16", "fp16") else "bf16")
    seq_lens = rank.keep("seq_lens", torch.full((max_batch,), plan.context, dtype=torch.int32, device=DEVICE))
    # per group: block tables for every admitted sequence, a query and an output buffer
    inputs = rank.keep("inputs", {})
    methods, checks = {}, {}
    for group in layout.groups:
        if group.kind == "linear":
            methods[group.name] = "torch in-place update of the state (stand-in for the recurrent kernel: reads " \
                                  "and writes the state once, as the roofline counts)"
            continue
        rows = [kernel_block_table(group, allocator.tables[s][group.name], plan.context) for s in range(max_batch)]
        table = torch.tensor(rows, dtype=torch.int32, device=DEVICE)
        if group.kind == "mla":
            q_dtype = torch_dtype(torch, group.dtype)
            q = torch.randn(max_batch, layout.q_heads_per_gpu, group.head_dim, dtype=q_dtype, device=DEVICE)
            mla = spec.layers[group.layers[0]]
            backend = pick_sdpa_backend(torch, group.head_dim, mla.kv_lora_rank, q_dtype)
            inputs[group.name] = {"table": table, "q": q, "v_dim": mla.kv_lora_rank, "backend": backend,
                                  "scale": group.head_dim ** -0.5, "chosen": {}}
            continue
        q_dtype = model_dtype if group.dtype.startswith("fp8") else torch_dtype(torch, group.dtype)
        q = torch.randn(max_batch, layout.q_heads_per_gpu, group.head_dim, dtype=q_dtype, device=DEVICE)
        out = torch.empty_like(q)
        fn, label, capturable = _kernel_choice(group, progress)
        methods[group.name] = label
        inputs[group.name] = {"table": table, "q": q, "out": out, "fn": fn, "capturable": capturable}

    # -- correctness on the real caches: a few sequences of the first layer against a reference --------------
    with progress.step("checking the attention outputs against a reference"):
        for group in layout.groups:
            if group.kind == "linear":
                continue
            x = inputs[group.name]
            b = min(2, max_batch)
            cache = caches[group.name][0]
            if group.kind == "mla":
                ref = mla_reference(torch, x["q"][:b], cache[0], x["table"][:b], seq_lens[:b], x["v_dim"], x["scale"])
                errors = {}
                for method in ("sdpa", "bmm"):
                    stand_in = MLAStandIn(torch, cache[0], x["table"][:b], seq_lens[:b], x["v_dim"], x["scale"],
                                          method, x["backend"])
                    errors[method] = relative_l2(torch, stand_in(x["q"][:b]), ref)
                methods[group.name] = (f"torch absorbed-MLA stand-in, NOT a CUDA kernel: the bundled kernel covers "
                                       f"head dims 64/128/256, not the {group.head_dim}-wide latent; per batch the "
                                       f"faster of SDPA {x['backend']} (heads as query rows) and two bmm + softmax, "
                                       f"pages read through {stand_in.how}")
                checks[group.name] = {"against": "float64 torch", "batch": b, "rel_l2": max(errors.values()),
                                      "by_method": errors}
                continue
            from .kernels import reference_paged_decode_attention

            kwargs = dict(sliding_window=group.window)
            out = x["fn"](x["q"][:b], cache[0], cache[1], x["table"][:b], seq_lens[:b], **kwargs)
            ref = reference_paged_decode_attention(x["q"][:b], cache[0], cache[1], x["table"][:b], seq_lens[:b],
                                                   compute_dtype=torch.float64, **kwargs)
            checks[group.name] = {"against": "float64 torch reference", "batch": b,
                                  "rel_l2": relative_l2(torch, out, ref)}
            if x["capturable"]:  # check every block id of the full table once; timed calls then skip the check
                x["fn"](x["q"], cache[0], cache[1], x["table"], seq_lens, sliding_window=group.window)
        torch.cuda.synchronize()
    for name, check in checks.items():
        if not check["rel_l2"] < 2e-2:
            notes.append(f"{name}: attention output differs from the float64 reference (rel. L2 {check['rel_l2']:.2e})")

    attention_per_seq = attention_read_bytes(spec, plan)
    state_per_seq = 2 * (plan.state_bytes_per_sequence_per_gpu or 0)
    weights_per_gpu = plan.budget.weights_bytes_per_gpu
    x_tokens = rank.keep("activations", torch.randn(max_batch, spec.hidden_size, dtype=torch.bfloat16,
                                                    device=DEVICE))
    graph_ok = all(inputs[g.name].get("capturable", True) for g in layout.groups if g.kind != "linear")
    weight_forms: dict = {}  # batch -> {part: "x @ W^T" | "W @ x^T"}

    def build(batch: int):
        """(attention-only step, weights-only step, whole step, bytes streamed by the weights)."""
        layer_calls = {}  # KV layer index -> its call; `calls` runs them in layer order
        for group in layout.groups:
            tensors = caches[group.name]
            if group.kind == "linear":
                for index, (state,) in zip(group.layers, tensors):
                    view = state[:batch]
                    layer_calls[index] = view.neg_
                continue
            x = inputs[group.name]
            if group.kind == "mla":
                q = x["q"][:batch]

                def make(method, cache=tensors[0][0], x=x):
                    return MLAStandIn(torch, cache, x["table"][:batch], seq_lens[:batch], x["v_dim"], x["scale"],
                                      method, x["backend"])

                method = faster_mla(torch, make, q)[0].method
                x["chosen"][batch] = method
                for index, (cache,) in zip(group.layers, tensors):
                    stand_in = MLAStandIn(torch, cache, x["table"][:batch], seq_lens[:batch], x["v_dim"],
                                          x["scale"], method, x["backend"])
                    layer_calls[index] = (lambda s=stand_in, q=q: s(q))
                continue
            for index, (k, v) in zip(group.layers, tensors):
                layer_calls[index] = _attention_call(x, k, v, seq_lens, batch, group.window)
        calls = [layer_calls[i] for i in sorted(layer_calls)]
        matrices = weight_stream(spec, weights_per_gpu, batch)
        views = [(m, x_tokens[:m.tokens], weights_buffer[m.offset:m.offset + m.rows * m.cols].view(m.rows, m.cols))
                 for m in matrices]
        chosen = weight_forms[batch] = {}
        for part in ("dense", "experts"):  # cuBLAS picks kernels by shape: take the faster way to write it
            first = next(((a, w) for m, a, w in views if m.part == part), None)
            if first is not None:
                chosen[part] = faster_gemm(torch, *first)
        gemms: dict = {}
        for m, a, w in views:
            gemms.setdefault(m.layer, []).append(_gemm(torch, a, w, chosen[m.part]))

        def attention():
            for call in calls:
                call()

        def weights():
            for layer in range(spec.num_hidden_layers):
                for gemm in gemms.get(layer, ()):
                    gemm()

        def whole():
            for layer in range(max(spec.num_hidden_layers, len(calls))):
                for gemm in gemms.get(layer, ()):
                    gemm()
                if layer < len(calls):
                    calls[layer]()

        return attention, weights, whole, stream_bytes(matrices)

    batches = sweep_batches(max_batch)
    order = [1, max_batch] + [b for b in batches if b not in (1, max_batch)]
    points, skipped, sweep_start = [], [], time.perf_counter()
    timing_methods = set()
    for batch in dict.fromkeys(order):
        if batch not in (1, max_batch) and time.perf_counter() - sweep_start > SWEEP_BUDGET_S:
            skipped.append(batch)
            continue
        with progress.step(f"decode, batch {batch}"):
            attention, weights, whole, streamed = build(batch)
            t_attention = time_step(torch, attention, graph=graph_ok)
            t_weights = time_step(torch, weights, graph=True)
            t_whole = time_step(torch, whole, graph=graph_ok)
            del attention, weights, whole
            torch.cuda.empty_cache()
        timing_methods |= {t_attention["method"], t_whole["method"]}
        attention_bytes = batch * attention_per_seq + batch * state_per_seq
        roof = decode_roofline(spec, plan.tp, precision, plan.context, batch, bw_plan)
        planner_weights = weights_read_bytes(spec, weights_per_gpu, batch)
        step_bytes = planner_weights + batch * (attention_per_seq + state_per_seq)
        points.append({
            "batch": batch,
            "kv_bytes_read": attention_bytes,
            "attention_ms": t_attention["ms"],
            "attention_predicted_ms": attention_bytes / bw_plan * 1e3,
            "attention_predicted_copy_bw_ms": attention_bytes / bw_copy * 1e3,
            "attention_achieved_bytes_per_s": attention_bytes / (t_attention["ms"] / 1e3),
            "weights_bytes_read": planner_weights,
            "weights_bytes_streamed": streamed,
            "weights_ms": t_weights["ms"],
            "weights_predicted_ms": planner_weights / bw_plan * 1e3,
            "weights_achieved_bytes_per_s": streamed / (t_weights["ms"] / 1e3),
            "step_ms": t_whole["ms"],
            "step_predicted_ms": roof.ms_per_step_at_max,
            "step_predicted_copy_bw_ms": step_bytes / bw_copy * 1e3,
            "step_achieved_bytes_per_s": step_bytes / (t_whole["ms"] / 1e3),
            "tokens_per_s": batch / (t_whole["ms"] / 1e3),
            "reps": t_whole["reps"],
            "mla_method": next((inputs[g.name]["chosen"].get(batch) for g in layout.groups if g.kind == "mla"), None),
            "weights_forms": weight_forms.get(batch, {}),
        })
    points.sort(key=lambda p: p["batch"])
    if skipped:
        notes.append(f"decode sweep stopped after {SWEEP_BUDGET_S:.0f} s; batches {skipped} not timed")
    return {
        "attention_methods": methods,
        "attention_checks": checks,
        "timing": sorted(timing_methods),
        "weights_method": "bf16 cuBLAS GEMMs over views of the held weights buffer, [rows, hidden_size] per layer, "
                          "bytes = the planner's weights read at each batch (routed experts: the expected touched "
                          "share, each touched expert multiplying only its tokens); per batch and part the faster "
                          "of x @ W^T and W @ x^T",
        "bandwidth_planner_bytes_per_s": bw_plan,
        "bandwidth_copy_bytes_per_s": bw_copy,
        "points": points,
        "skipped_batches": skipped,
    }


GEMM_FORMS = ("x @ W^T", "W @ x^T")


def _gemm(torch, a, w, form: str):
    """One weight GEMM: activations a [tokens, hidden] times W [rows, hidden], written one of two ways."""
    if form == GEMM_FORMS[0]:
        return lambda: torch.mm(a, w.t())
    return lambda: torch.mm(w, a.t())


def faster_gemm(torch, a, w) -> str:
    """x @ W^T (what serving engines run) unless W @ x^T is clearly faster for this shape: 20 event-timed
    calls of each after a warm-up. Three calls once picked the slow form at 37 and 290 tokens (cuBLAS
    selects kernels by shape; benchmarks/verify_gemm_shapes.py)."""
    times = {}
    for form in GEMM_FORMS:
        call = _gemm(torch, a, w, form)
        for _ in range(3):
            call()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(20):
            call()
        end.record()
        end.synchronize()
        times[form] = start.elapsed_time(end)
    return GEMM_FORMS[1] if times[GEMM_FORMS[1]] < 0.8 * times[GEMM_FORMS[0]] else GEMM_FORMS[0]


def _attention_call(x: dict, k, v, seq_lens, batch: int, window):
    """One layer's kernel call at this batch, its arguments bound now (not when the loop has moved on)."""
    fn, q, table, out, lens = x["fn"], x["q"][:batch], x["table"][:batch], x["out"][:batch], seq_lens[:batch]
    if x["capturable"]:  # block ids were checked once; skipping the check keeps the call sync-free
        return lambda: fn(q, k, v, table, lens, sliding_window=window, out=out, check_block_ids=False)
    return lambda: fn(q, k, v, table, lens, sliding_window=window)
