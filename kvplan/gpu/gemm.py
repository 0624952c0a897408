"""The skinny matmuls of decode, chosen at start: for every linear weight shape of the model and every batch of
1-8 tokens, the ways of writing x @ W^T (F.linear and W @ x^T through cuBLAS, and where they run the bundled skinny
kernel of kvplan/kernels/skinny.py and streaming GEMV of kvplan/kernels/gemv_stream.py, its CTAs in order,
rotated or owning whole rows at two ring depths or on three CTAs an SM) are timed in CUDA graphs
over all the layers' weights of that shape (so that they stream from HBM, not L2), and the fastest is kept in the
model's Matmul. The same timings give the
weight stream's bandwidth at each batch, the figure held to >= 90% of the measured read bandwidth."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import fp8
from ..kernels.gemv_stream_config import OWN_THREE_LAUNCH
from .ops import BLOCK_FORMS, MM_FORMS, stacked_rows
from .timing import capture, time_replays
from .weights import JOINT_ROWS

SKINNY = (1, 2, 4, 8)
LINEAR_NAMES = ("qkv", "o", "q", "q_a", "q_b", "kv_a", "qkvz", "ba", "in_proj", "f_b", "g_a", "g_b", "router",
                "shared_gate", "gate_up", "down", "lm_head", "idx_wq_b", "idx_wk_w")
DEEP_OWN = {"ctas_per_sm": 2, "depth": 8}  # MM_FORMS[6]: the row-owned launch with 128 KB in flight per SM
# MM_FORMS[7]: a slice a CTA where 16-row slices outnumber two CTAs an SM (Qwen3-14B's o, 320 on 132 SMs); three
# rings of 5 fit an SM. H200, session 44, % of read at batch 1 / 8 against the best of the other forms: 14B o
# 82.7 / 77.6 vs 73.7 / 73.6, 8B qkv 87.1 / 79.6 vs 76.5 / 76.1, Gemma-3-27B o 82.8 / 80.9 vs 74.3 / 75.8; worse
# where slices are fewer (8B o 67 vs 81.5), so it is one more form timed per shape (benchmarks/own_ring_probe.py).
THREE_OWN = dict(zip(("ctas_per_sm", "depth"), OWN_THREE_LAUNCH))
# Another form must beat F.linear by 1% to be chosen (F.linear is what engines run; ties stay with it). It was 3%:
# H200, session 44, Llama-3.1-8B's gate_up at batch 8 read 4.21 TB/s rows owned against F.linear's 4.12 and stayed
# on F.linear. Timing noise of a graph of every layer's launches is well under 1% (the chosen forms are timed again).
PREFER_MARGIN = 0.99


def decode_order(weights: dict, tied: bool) -> list:
    """The 2-D weights decode multiplies by, in the order a decode step runs them (layer by layer, the LM head
    last); a stacked JOINT_ROWS pair is the one weight decode multiplies by (kvplan/gpu/ops.py stacked_rows)."""
    stacked, seconds = {}, set()  # a pair's first name -> the stacked weight; its second's name
    for name in weights:
        prefix, _, base = name.rpartition(".")
        for first, second in JOINT_ROWS:
            both = stacked_rows(weights[name], weights.get(f"{prefix}.{second}")) if base == first else None
            if both is not None:
                stacked[name] = both
                seconds.add(f"{prefix}.{second}")
    order = [stacked.get(name, w) for name, w in weights.items() if name not in seconds
             and (name in stacked or w.dim() == 2 and name.rsplit(".", 1)[-1] in LINEAR_NAMES)]
    return order + ([weights["embed"]] if tied and "embed" in weights else [])


def decode_linears(weights: dict, tied: bool) -> dict:
    """(rows, cols) -> the 2-D weights decode multiplies by, every layer's (decode_order grouped by shape)."""
    shapes: dict = {}
    for w in decode_order(weights, tied):
        shapes.setdefault(tuple(w.shape), []).append(w)
    return shapes


def kind_groups(mm, weights: dict, tied: bool) -> list:
    """[(shape, weights)] of decode_linears apart by kind (16-bit, e4m3, block-scaled: Matmul.kind), each timed and
    given forms of its own."""
    groups: dict = {}
    for shape, tensors in decode_linears(weights, tied).items():
        for w in tensors:
            groups.setdefault((shape, mm.kind(w)), []).append(w)
    return [(shape, tensors) for (shape, _), tensors in groups.items()]


def _graph_ms(fn, reps: int) -> float:
    """Milliseconds of fn's launches replayed as one CUDA graph (median of reps)."""
    graph, _ = capture(fn)
    ms = time_replays(graph.replay, reps=reps)["ms"]
    del graph
    return ms


def _form(mm, form: str, x, w):
    if w.dtype == fp8.E4M3:
        return mm.fp8(form, x, w)
    if form == MM_FORMS[0]:
        return F.linear(x, w)
    if form == MM_FORMS[1]:
        return torch.mm(w, x.t())
    return mm.kernel_plans(form)[mm.plan_key(w)].run(x, w)


def block_stream_plans(mm, shape: tuple, max_batch: int) -> None:
    """The streaming GEMV's block-scaled plans (in order, rotated) for a block-scaled weight shape, into
    mm.block_streams; a shape or GPU the GEMV refuses leaves the skinny kernel's fp8 form alone."""
    for form in BLOCK_FORMS[1:]:
        try:
            from ..kernels.gemv_stream import gemv_stream_plan

            mm.block_streams[(form, *shape)] = gemv_stream_plan(shape[0], shape[1], fp8.E4M3, max_batch=max_batch,
                                                                block_scaled=True, rotate=form == BLOCK_FORMS[2])
        except (ValueError, RuntimeError, ImportError):  # KernelUnavailableError is a RuntimeError
            return


def _time_block(mm, tensors: list, batch: int, reps: int) -> tuple:
    """(bytes, {form: ms}) of one decode batch through every block-scaled weight of a shape (the e4m3 values and
    their scales) in each of its forms as Matmul.block runs them (the GEMV's with x's quantisation), the fastest
    kept in mm.forms."""
    x = torch.randn(batch, tensors[0].shape[1], dtype=torch.bfloat16, device=tensors[0].device)
    nbytes = sum(t.numel() + mm.block_scale(t).numel() * 4 for t in tensors)
    key = mm.form_key(tensors[0], batch)
    times = {}
    for form in BLOCK_FORMS:
        if form != BLOCK_FORMS[0] and (form, *tensors[0].shape) not in mm.block_streams:
            continue
        mm.forms[key] = form
        times[form] = _graph_ms(lambda: [mm(x, w) for w in tensors], reps)
    mm.forms[key] = min(times, key=times.get)
    return nbytes, times


def kernel_plan(form: str, shape: tuple, dtype, max_batch: int):
    """A bundled kernel's plan (skinny GEMM, streaming GEMV in order, rotated or rows owned) for a weight shape, or
    the reason it cannot run it (a sentence)."""
    try:
        if form == MM_FORMS[2]:
            from ..kernels.skinny import skinny_gemm_plan

            return skinny_gemm_plan(shape[0], shape[1], dtype, max_batch=max_batch)
        from ..kernels.gemv_stream import gemv_stream_plan

        if form == MM_FORMS[6]:
            return gemv_stream_plan(shape[0], shape[1], dtype, max_batch=max_batch, own=True, **DEEP_OWN)
        if form == MM_FORMS[7]:
            return gemv_stream_plan(shape[0], shape[1], dtype, max_batch=max_batch, own=True, **THREE_OWN)
        return gemv_stream_plan(shape[0], shape[1], dtype, max_batch=max_batch, rotate=form == MM_FORMS[4],
                                own=form == MM_FORMS[5])
    except (ValueError, RuntimeError, ImportError) as exc:  # KernelUnavailableError is a RuntimeError
        return str(exc)


def _plain_input(tensors: list, batch: int):
    """A decode batch's x for a 16-bit or e4m3 (W8A8) weight: for e4m3, x in e4m3 as the norms hand it over (o and
    down quantise it first), so that the weight stream is timed alone."""
    w8 = tensors[0].dtype == fp8.E4M3
    x = torch.randn(batch, tensors[0].shape[1], dtype=torch.bfloat16 if w8 else tensors[0].dtype,
                    device=tensors[0].device)
    return fp8.quantize(x) if w8 else x


RETIME_SLACK = 1.03  # a chosen form timed again this much slower than at its choice: the runner-up is timed too


def _timed_again(mm, key: tuple, x, tensors: list, times: dict, reps: int) -> float:
    """The chosen form (mm.forms[key]) timed again, as decode runs it. Where it runs slower than when it was
    chosen, the fastest other form is timed again too and the faster of the two kept. H200, session 45: on some
    machines a shape read ~8% slower in the second pass (Gemma-3-27B's gate_up through F.linear 4.27-4.30 TB/s
    when chosen, 3.89-3.94 again, and once its runner-up no faster), while five captures in a row on another agreed
    within 0.5% (benchmarks/probes/flinear_capture_probe.py): the machine's state, not the form."""
    best = mm.forms[key]
    again = _graph_ms(lambda: [mm(x, w) for w in tensors], reps)
    others = [form for form in times if form != best]
    if best not in times or not others or again <= RETIME_SLACK * times[best]:
        return again
    mm.forms[key] = min(others, key=times.get)
    other = _graph_ms(lambda: [mm(x, w) for w in tensors], reps)
    if other < again:
        return other
    mm.forms[key] = best
    return again


def decode_order_stream(mm, weights: dict, tied: bool, read_bw: float, batches=SKINNY, reps: int = 8) -> dict:
    """The chosen forms (mm.forms) over every linear in decode order, one CUDA graph a batch, nothing between them
    (attention, norms and activations left out): the weight stream as a decode step meets it, where launches of
    different forms sit side by side (H200, session 45: Qwen3-14B's linears in decode order read at 58% until the
    GEMV's launches were padded to their intended CTAs an SM, 89-92% after, against 89-91% shape by shape)."""
    order = decode_order(weights, tied)
    nbytes = sum(w.numel() * w.element_size() + (0 if mm.block_scale(w) is None else mm.block_scale(w).numel() * 4)
                 for w in order)
    stream = {}
    for batch in batches:
        xs: dict = {}
        for w in order:  # one x per input width and kind, as choose_forms times each shape
            key = (w.shape[1], w.dtype, mm.block_scale(w) is not None)
            if key not in xs:
                xs[key] = (torch.randn(batch, w.shape[1], dtype=torch.bfloat16, device=w.device) if key[2]
                           else _plain_input([w], batch))
        ms = _graph_ms(lambda: [mm(xs[(w.shape[1], w.dtype, mm.block_scale(w) is not None)], w) for w in order],
                       reps)
        stream[batch] = {"bytes": nbytes, "ms": ms, "bytes_per_s": nbytes / (ms / 1e3),
                         "fraction_of_read": nbytes / (ms / 1e3) / read_bw if read_bw else None}
    torch.cuda.empty_cache()
    return stream


def choose_forms(mm, weights: dict, tied: bool, read_bw: float, batches=SKINNY, reps: int = 8) -> dict:
    """Time every form per (shape, batch), store the fastest in `mm.forms`, and report bandwidths. The weight
    stream is the chosen forms timed again after the choice, so that picking the fastest of several noisy times
    does not flatter it."""
    groups = kind_groups(mm, weights, tied)
    refused = {form: {} for form in MM_FORMS[2:]}
    for shape, tensors in groups:
        if mm.block_scale(tensors[0]) is not None:  # block-scaled fp8 (ops.Matmul.block): its plans made now
            mm.block_plan(tensors[0], 1)
            block_stream_plans(mm, shape, max(batches))
            continue
        for form in MM_FORMS[2:]:
            plan = kernel_plan(form, shape, tensors[0].dtype, max(batches))
            if isinstance(plan, str):
                refused[form][f"{shape[0]}x{shape[1]}"] = plan
            else:
                mm.kernel_plans(form)[mm.plan_key(tensors[0])] = plan
    rows, stream = [], {}
    for batch in batches:
        chosen = []
        for (out, inp), tensors in groups:
            key = mm.form_key(tensors[0], batch)
            if mm.block_scale(tensors[0]) is not None:
                nbytes, times = _time_block(mm, tensors, batch, reps)
                x = torch.randn(batch, inp, dtype=torch.bfloat16, device=tensors[0].device)
            else:
                x = _plain_input(tensors, batch)
                nbytes = sum(t.numel() * t.element_size() for t in tensors)
                w8 = tensors[0].dtype == fp8.E4M3  # W8A8: cuBLAS's fp8 GEMM as the first form, no W @ x^T
                forms = MM_FORMS[:1 if w8 else 2] + tuple(f for f in MM_FORMS[2:]
                                                           if mm.plan_key(tensors[0]) in mm.kernel_plans(f))
                times = {form: _graph_ms(lambda: [_form(mm, form, x, w) for w in tensors], reps) for form in forms}
                fastest = min(forms[1:], key=times.get, default=MM_FORMS[0])
                best = fastest if times[fastest] < PREFER_MARGIN * times[MM_FORMS[0]] else MM_FORMS[0]
                mm.forms[key] = best
            rows.append({"shape": [out, inp], "kind": mm.kind(tensors[0]) or "16-bit", "layers": len(tensors),
                         "batch": batch, "chosen": mm.forms[key],
                         **{f"{form} TB/s": nbytes / (ms / 1e3) / 1e12 for form, ms in times.items()}})
            chosen.append((rows[-1], key, nbytes, x, tensors, times))
        total_bytes, total_ms = 0, 0.0
        for row, key, nbytes, x, tensors, times in chosen:  # a pass of its own: no shape right after its own timings
            again = _timed_again(mm, key, x, tensors, times, reps)
            row["chosen"] = mm.forms[key]
            row["chosen, timed again TB/s"] = nbytes / (again / 1e3) / 1e12
            total_bytes, total_ms = total_bytes + nbytes, total_ms + again
        achieved = total_bytes / (total_ms / 1e3)
        stream[batch] = {"bytes": total_bytes, "ms": total_ms, "bytes_per_s": achieved,
                         "fraction_of_read": achieved / read_bw if read_bw else None}
    torch.cuda.empty_cache()
    return {"method": "per (shape, batch) the fastest of F.linear (x @ W^T), torch.mm(W, x^T), the bundled skinny "
                      "kernel (NVRTC, kvplan/kernels/skinny_gemm.cu) and the bundled streaming GEMV "
                      "(kvplan/kernels/gemv_stream.cu, sm_90; CTAs in order, rotated, or owning whole rows at rings "
                      "of 6 or 8, or three CTAs an SM at rings of 5), CUDA graphs over every layer's weight of the "
                      "shape; fp8 weights: cuBLAS's fp8 GEMM (torch._scaled_mm) and the GEMV's e4m3 kernel over x in "
                      "e4m3 (W8A8); block-scaled fp8 weights: the bundled skinny kernel's fp8 form (x in bf16) and "
                      "the streaming GEMV's block-scaled e4m3 kernel (in order, rotated) over x quantised per token "
                      "per 128 columns; "
                      "F.linear kept unless another form is 1% faster; the stream: the chosen forms timed again",
            "shapes": rows, "stream": stream, "skinny_refused": refused[MM_FORMS[2]],
            "stream_refused": refused[MM_FORMS[3]],
            "forms_refused": {form: where for form, where in refused.items() if where}}  # every kernel form's
