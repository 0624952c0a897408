"""`kvplan verify` for people: the same figures as its json/yaml result dict."""

from __future__ import annotations

from rich.markup import escape

from ..verify import weight_stream
from ..verify.decode_terms import NAMES, of_result
from ..verify.recorded import known, recorded
from .text import prompt_words, size, table_box

MAX_WIDTH = 100


def tbps(value) -> str:
    return "-" if not value else f"{value / 1e12:.2f} TB/s"


def ms(value) -> str:
    """Milliseconds to about three significant digits."""
    if value is None:
        return "-"
    for limit, digits in ((100, 0), (10, 1), (1, 2)):
        if value >= limit:
            return f"{value:.{digits}f}"
    return f"{value:.3f}"


def pct(value) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _shape(shapes: list, dtype: str) -> str:
    if len(shapes) == 2 and shapes[0] == shapes[1]:
        return f"2 x {shapes[0]} {dtype}".replace(", ", ",")
    return " + ".join(str(s).replace(", ", ",") for s in shapes) + f" {dtype}"


def header_lines(r: dict) -> list:
    g, rank, o = r["gpu"], r["rank"], r["options"]
    lines = [f"[bold]kvplan verify {r['model']}[/bold] on {g['name']} ({r['date']}; driver {recorded(g, 'driver')}, "
             f"torch {g['torch']}, CUDA {g['cuda']}; {r['elapsed_s']:.0f} s)",
             f"GPU: {size(g['memory_total_bytes'])}, {g['sm_count']} SMs; bandwidth: planner "
             f"{tbps(g['bandwidth_planner_bytes_per_s'])} ({g['bandwidth_planner_source']}), measured read "
             f"{tbps(g['bandwidth_read_bytes_per_s'])} ({escape(g['bandwidth_read_method'])}).",
             f"Rank: {escape(rank['mode'])}; weights {size(rank['arch_weights_bytes'])} in the forward pass"
             + (f" + {size(rank['vision_held_bytes'])} vision tower held" if rank["vision_held_bytes"] else "")
             + (f" + {size(rank['per_layer_input_buffer_bytes'])} per-layer-input buffer (Gemma 4's multimodal "
                f"wrapper) held" if rank.get("per_layer_input_buffer_bytes") else "") + ".",
             "Options: " + (f"engine {engine_release(r)}, " if engine_release(r) else "")
             + f"context {o['context']:,}, KV {r['plan']['kv_dtype']}, block {_block_size(r)}, "
             f"--gpu-util {o['gpu_util']:.2f}, max_num_seqs {o['max_num_seqs']}, max_num_batched_tokens "
             f"{o['max_num_batched_tokens']:,}{_engine_flags(o.get('engine_flags'), engine_release(r))}."]
    lines += [f"Forward ({kind}): {escape(label)}." for kind, label in r["forward"]["labels"].items()]
    return lines


def _block_size(r: dict):
    """The block size the plan ran with: the engine's default where --block-size was not given (the options hold
    None then, which the line printed as "block None" until session 64)."""
    return recorded(r["plan"], "block_size")


def _engine_flags(given, release=None) -> str:
    """The engine flags given (the result's options), as the command line of vLLM `release` (as engine_release
    names it) spells them: -O's level is --optimization-level from 0.12 only (vllm_compilation.level_flag)."""
    from ..engines.vllm_compilation import level_flag

    words = []
    for name, value in (given or {}).items():
        flag = level_flag(release) if name == "optimization_level" else "--" + name.replace("_", "-")
        if value is True:
            words.append(flag)
        elif value is False:  # --no-enable-prefix-caching
            words.append(flag.replace("--", "--no-", 1))
        else:
            words.append(f"{flag} {' '.join(map(str, value)) if isinstance(value, list) else value}")
    return "".join(f", {escape(word)}" for word in words)


def engine_release(r: dict):
    """The vLLM release whose plan is judged: the budget's engine ("vllm 0.34.0", as results recorded before
    --engine name it), else the options' (--engine); None for a result that names neither."""
    return r["budget"].get("engine") or r["options"].get("engine")


def terms_table(r: dict):
    from rich.table import Table

    b = r["budget"]
    table = Table(title="Budget terms of one rank: predicted by the plan, measured here", title_justify="left",
                  box=table_box(), pad_edge=False)
    for name in ("term", "predicted", "measured", "difference", "error"):
        table.add_column(name, justify="left" if name == "term" else "right", no_wrap=True)
    for row in r["terms"]:
        table.add_row(row["term"].replace("_", " "), size(row["predicted_bytes"]), size(row["measured_bytes"]),
                      size(row["difference_bytes"]), pct(row["error"]))
    predicted, measured = b["predicted_kv_budget_bytes"], b["measured_kv_budget_bytes"]
    table.add_row("[bold]KV budget[/bold]", size(predicted), size(measured), size(measured - predicted),
                  pct((measured - predicted) / predicted))
    return table


def _vllm_method(gr: dict) -> str:
    """What vLLM's profiler would charge for the same captures (verify/terms.py vllm_method_estimate); older
    results lack it."""
    if gr.get("vllm_method_bytes") is None:
        return ""
    second = gr.get("second_capture_bytes")
    return (f"; vLLM's estimator on these captures (largest {size(gr['first_capture_bytes'])} + "
            f"{len(gr['sizes']) - 1} x {size(max(second or 0, 1 << 20))}) would charge {size(gr['vllm_method_bytes'])}")

def _graphs_line(gr: dict) -> str:
    """The decode graphs captured, or why none was (gpu/rank.py no_graphs: --enforce-eager, cudagraph_mode NONE)."""
    if not gr["sizes"]:
        return f"Decode graphs: none captured ({escape(gr.get('why', 'no capture size'))})."
    sizes = ", ".join(map(str, gr["sizes"])) if len(gr["sizes"]) <= 8 else f"1..{max(gr['sizes'])}"
    return (f"Decode graphs: {len(gr['sizes'])} sizes ({sizes}), one pool: {size(gr['bytes'])} "
            f"(pool {size(gr['pool_bytes'])}, driver {size(gr['driver_bytes'])}; {gr['seconds']:.1f} s)"
            + _vllm_method(gr) + ".")


def measurement_lines(r: dict) -> list:
    p, gr = r["profile"], r["graphs"]
    return [f"Profile run: {p['tokens']:,} tokens as {p['sequences']} sequences of {p['tokens_per_sequence']} "
            f"({escape(p['attention'])}), sampler over {p['sequences']} rows: peak {size(p['peak_bytes'])} "
            f"above the weights ({p['seconds']:.1f} s).",
            _graphs_line(gr),
            f"CUDA context {size(r['gpu']['cuda_context_bytes_nvml'])} (NVML)" + _cublas(r["gpu"]) + ": "
            + ("in the baseline, which vLLM 0.34 keeps out of the device's memory." if r["budget"].get("extensible")
               else "not a budget term, the engine's baseline is taken after it."),
            _budget_line(r)]


def _cublas(g: dict) -> str:
    """cuBLAS's handles and workspaces, made before the snapshot as vLLM 0.33 on does (gpu/verify_run.py)."""
    made = g.get("cublas_warmup_bytes_nvml")
    return "" if made is None else f", then {size(made)} of cuBLAS handles and workspaces, as vLLM 0.33+ makes them"


def _budget_line(r: dict) -> str:
    b, m = r["budget"], r["measured_plan"]
    engine = engine_release(r) or "kvplan's generic budget"
    laid_out = recorded(m, "pool_sequences")  # the clause is left out of a result recorded before the pools' count
    pools = f"; the pools below lay it out with ideal paging: {laid_out:,} sequences" if known(laid_out) else ""
    held = (f"{engine} keeps {m['max_concurrency']:,} sequences resident on it, its plan "
            f"{r['plan']['max_concurrency']:,}{pools}.")
    if b.get("extensible"):
        return f"{_extensible_line(b['extensible'], b['measured_kv_budget_bytes'], m)}; {held}"
    terms = " - ".join(t.replace("_", " ") for t in b.get("subtracted_terms", ())) or "measured terms"
    own = b.get("rank_kv_budget_bytes", b["measured_kv_budget_bytes"])
    return (f"KV budget = {size(b['usable_bytes'])} usable - {terms} (as measured) = {size(own)}"
            f"{_group_minimum(own, b['measured_kv_budget_bytes'])}: {held}")


def _group_minimum(own: int, budget: int) -> str:
    """A real TP group sizes every rank's cache by its smallest budget: said where it is not this rank's."""
    return "" if own == budget else f"; the TP group sizes every rank's cache by its smallest budget, {size(budget)}"


def _extensible_line(x: dict, budget: int, m: dict) -> str:
    """vLLM 0.34's sizing after warmup on this rank's measured terms (verify/terms.py measured_extensible_budget):
    this rank's own figure (`available`), and the group's (`budget`) where it is smaller."""
    bound = "the device binds" if x["device_binds"] else "the requested memory binds"
    mine = x.get("persistent_measured")
    kept = (f"the {size(x.get('persistent', 0))} the engine keeps from the profile run, as predicted"
            + (f", where verify's own run kept {size(mine)}" if mine is not None else ""))
    group = _group_minimum(x["available"], budget)
    blocks = (f"{',' if group else ''} and commits {m['kv_blocks']:,} blocks of it in 2 MiB granules a layer"
              if m.get("kv_blocks") else "")
    return (f"KV budget, sized after warmup as vLLM 0.34 does = min(requested {size(x['requested'])} - used "
            f"{size(x['used'])}, memory {size(x['memory'])} - baseline {size(x['baseline'])} - used - margin "
            f"{size(x['margin'])}) - transient {size(x['transient'])} = {size(x['available'])} ({bound}; used: "
            f"weights, non-torch, runner state, graphs and {kept}){group}{blocks}")


def allocation_table(r: dict):
    from rich.table import Table

    a = r["allocation"]
    table = Table(title="KV pools (one rank, sized from the measured budget)", title_justify="left",
                  pad_edge=False)
    for name, justify in (("cache group", "left"), ("layers", "right"), ("tensors per layer", "left"),
                          ("blocks/seq", "right"), ("bytes", "right")):
        table.add_column(name, justify=justify)
    for g in r["layout"]:
        table.add_row(g["name"], str(g["layers"]), _shape(g["tensor_shapes"], g["dtype"]),
                      str(g["blocks_per_sequence"]), size(g["bytes"]))
    table.add_row("[bold]layout[/bold]", "", "", "", f"{a['layout_bytes']:,}")
    table.add_row("torch memory_allocated delta", "", f"[dim]error {a['torch_error']:+.4%}[/dim]", "",
                  f"{a['torch_bytes']:,}")
    reused = a.get("torch_cache_reused_bytes") or 0
    table.add_row("NVML used-memory delta" + (f" + {size(reused)} from torch's cache" if reused else ""), "",
                  f"[dim]error {a['nvml_error']:+.4%}[/dim]", "", f"{a['nvml_bytes']:,}")
    return table


def boundary_line(r: dict) -> str:
    b = r["boundary"]
    per = ", ".join(f"{n} {k}" for k, n in b["blocks_per_sequence"].items())
    mark = "[green]confirmed[/green]" if b["confirmed"] else "[red]NOT confirmed[/red]"
    return (f"Boundary {mark}: {b['served']:,} sequences of {b['context']:,} tokens admitted (blocks each: {per}); "
            f"sequence {b['max_concurrency'] + 1:,} {'refused' if b['refused_next'] else 'ADMITTED'}; it needs "
            f"{size(b['sequence_bytes'])} and {size(b['budget_left_bytes'])} of the budget are left.")


def gemm_line(r: dict) -> str:
    """The stream of every dense linear at each skinny batch (shape by shape, and in decode order), the shapes under
    the bar, and the form chosen where it is not F.linear."""
    stream = r["gemm"]["stream"]
    parts = [f"batch {b}: {tbps(s['bytes_per_s'])}" + (f" ({s['fraction_of_read']:.0%} of read)"
                                                        if s.get("fraction_of_read") else "")
             for b, s in stream.items()]
    chosen: dict = {}
    for row in r["gemm"]["shapes"]:
        if row["chosen"] != "x @ W^T":
            chosen.setdefault(row["chosen"], set()).add(f"{row['shape'][0]}x{row['shape'][1]}@{row['batch']}")
    forms = "".join(f"; {form} chosen for {', '.join(sorted(where))}" for form, where in sorted(chosen.items())) \
        or "; F.linear (x @ W^T) everywhere"
    chain = r["gemm"].get("decode_order") or {}
    in_order = "; in decode order (one graph of every linear) " + ", ".join(
        f"batch {b}: {s['fraction_of_read']:.0%}" for b, s in chain.items() if s.get("fraction_of_read")) \
        if any(s.get("fraction_of_read") for s in chain.values()) else ""
    return (f"Weight stream (dense linears, chosen forms, shape by shape): {'; '.join(parts)}{in_order}"
            f"{_under_bar_clause(r)}{forms}.")


def _under_bar_clause(r: dict) -> str:
    shapes = weight_stream.by_shape(r)
    under = weight_stream.under_bar(shapes)
    if not shapes:
        return ""
    if not under:
        return f"; every shape at or above {weight_stream.BAR:.0%} of read"
    first = min(shapes[0]["batches"])
    share = weight_stream.share_of_time(shapes, first)
    extra = [b["extra_us"] for s in under for b in s["batches"].values()]
    return (f"; under {weight_stream.BAR:.0%} of read: {len(under)} of {len(shapes)} shapes "
            f"({share:.0%} of the stream's time at batch {first}), their launches {min(extra):.1f}-{max(extra):.1f} "
            f"us each over reading their weight at the read bandwidth (table below)")


def stream_table(r: dict):
    """Each weight shape's stream, % of the measured read bandwidth per batch (under the bar in red), with the
    microseconds a launch spends over reading its weight at that bandwidth: None where nothing is under the bar."""
    from rich.table import Table

    shapes = weight_stream.by_shape(r)
    if not weight_stream.under_bar(shapes):
        return None
    batches = sorted({b for s in shapes for b in s["batches"]})
    table = Table(title="Weight stream by shape: bN, % of the measured read bandwidth at batch N (the chosen form, "
                        "every layer's weight in one graph); the us a launch spends over reading its weight at it",
                  title_justify="left", box=table_box(), pad_edge=False)
    for name in ("shape", "layers", "MB each", *(f"b{b}" for b in batches)):
        table.add_column(name, justify="left" if name == "shape" else "right", no_wrap=True)
    table.add_column("us over", justify="right")
    for s in shapes:
        cells = []
        for b in batches:
            f = s["batches"].get(b, {}).get("fraction")
            cells.append("-" if f is None else f"[red]{f:.0%}[/red]" if f < weight_stream.BAR else f"{f:.0%}")
        extra = [x["extra_us"] for x in s["batches"].values()]
        kind = "" if s["kind"] == "16-bit" else f" {s['kind']}"
        table.add_row(f"{s['shape'][0]}x{s['shape'][1]}{kind}", f"{s['layers']:,}", f"{s['bytes'] / 1e6:,.1f}",
                      *cells, f"{min(extra):.1f}-{max(extra):.1f}")
    refused: dict = {}  # reason -> (forms, shapes) under the bar it kept from a form
    for s in weight_stream.under_bar(shapes):
        for form, reason in s["refused"].items():
            forms, names = refused.setdefault(reason, (set(), set()))
            forms.add(form)
            names.add(f"{s['shape'][0]}x{s['shape'][1]}")
    if refused:
        table.caption = "; ".join(f"{', '.join(sorted(names))}: {', '.join(sorted(forms))} refused ({reason})"
                                  for reason, (forms, names) in refused.items())
        table.caption_justify = "left"
    return table


def decode_table(r: dict):
    """The decode step at each batch: the calibrated estimate term by term against this forward pass
    (verify/decode_terms.py), or for a plan without a calibrated estimate the step against its roofline."""
    from rich.table import Table

    eager = any(p.get("eager") for p in r["decode"]["points"])
    # what turned the graphs off; results recorded before it was had --enforce-eager alone
    off_by = r["decode"].get("graphs_off_by") or "--enforce-eager"
    title = f"Decode step (whole forward, {f'eager: {escape(off_by)}' if eager else 'CUDA graph'}), ms"
    split = of_result(r)
    if split:
        return terms_of_step_table(r, split, title + ": the calibrated estimate term by term vs this forward pass")
    table = Table(title=title, title_justify="left", box=table_box(), pad_edge=False)
    for name in ("batch", "measured", "estimate", "vs estimate", "roofline", "vs roofline", "tokens/s"):
        table.add_column(name, justify="right", no_wrap=True)
    for p in r["decode"]["points"]:
        est = p.get("estimate_ms")
        table.add_row(f"{p['batch']:,}", ms(p["measured_ms"]), ms(est),
                      pct(None if est is None else p["measured_ms"] / est - 1), ms(p["roofline_ms"]),
                      pct(p["measured_ms"] / p["roofline_ms"] - 1), f"{p['tokens_per_s']:,.0f}")
    return table


def signed_ms(value) -> str:
    """A difference in milliseconds, signed, to about three significant digits."""
    value = round(value, 3) + 0.0
    return ("+" if value > 0 else "-" if value < 0 else "") + ms(abs(value))


def terms_of_step_table(r: dict, split: dict, title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=table_box(), pad_edge=False)
    for name in ("batch", "term", "estimate", "measured", "difference"):
        table.add_column(name, justify="left" if name == "term" else "right", no_wrap=True)
    table.add_column("from: estimate | measured")
    points = {p["batch"]: p for p in r["decode"]["points"]}
    for batch, rows in split.items():
        for i, row in enumerate(rows):
            step = row["term"] == "step"
            name = f"[bold]{NAMES[row['term']]}[/bold]" if step else NAMES[row["term"]]
            table.add_row(f"{batch:,}" if i == 0 else "", name, ms(row["estimate_ms"]), ms(row["measured_ms"]),
                          signed_ms(row["difference_ms"]), escape(_term_basis(r, row, points[batch])),
                          end_section=step and batch != list(split)[-1])
    return table


def _term_basis(r: dict, row: dict, point: dict) -> str:
    """What a row's two figures are made of: the estimate's side, then the measured side."""
    term = row["term"]
    if term == "roofline":
        bytes_read = "bytes" if row.get("bytes") is None else f"{row['bytes'] / 1e9:.2f} GB"
        return (f"{bytes_read} / {tbps(row['estimate_bandwidth_bytes_per_s']).removesuffix(' TB/s')} | "
                f"{tbps(row['measured_bandwidth_bytes_per_s'])}")
    if term == "per_layer_fixed":
        return f"{row['layers']} x {row['estimate_us']:.1f} | {row['measured_us']:.1f} us"
    if term == "allreduce":
        if row["measured_how"] == "none in this step":
            return "none: one GPU" if r["rank"]["tp"] == 1 else "none: one simulated rank"
        return f"planner | {row['measured_how']}"
    if term == "compute":
        eff = (((r["plan"].get("decode") or {}).get("constants") or {}).get("gemm_efficiency"))
        return ("FLOPs" + (f" at {eff:.1%} of peak" if eff else " x fitted efficiency")) + " | rest"
    return f"{row['error']:+.1%}; {point['tokens_per_s']:,.0f} tokens/s"


SPLIT_LINE = ("Measured terms: the roofline's bytes at the measured read bandwidth; the per-layer cost is batch 1's "
              "step over its roofline and all-reduces, per layer, at every batch (so batch 1's compute reads 0); "
              "compute is what remains of each step.")


def timing_lines(r: dict) -> list:
    d, p = r["decode"], r["prefill"]
    lines = [SPLIT_LINE if of_result(r) else
             f"Per-layer fixed cost: {d['per_layer_fixed_us']:.1f} us ({escape(d['per_layer_fixed_how'])}).",
             f"TTFT of one {prompt_words(p['input_len'], p.get('input_len_note'))}: {ms(p['ttft_ms'])} ms"
             + (f" vs estimate {ms(p['estimate_ms'])} ms ({pct(p['error'])})" if p.get("estimate_ms") else
                " (the plan carries no prefill estimate)") + "."]
    first = d["points"][0] if d["points"] else {}
    if first.get("estimate_includes_allreduce") is False:
        lines.append(f"The estimate above leaves out the planner's all-reduce term (batch {first['batch']}: "
                     f"{ms(first['tp_term_ms'])} ms; engine estimate {ms(first['engine_estimate_ms'])} ms): this "
                     f"simulated rank runs no all-reduce.")
    if r.get("tp"):
        parts = [f"batch {q['batch']}: {q['per_layer_us']:.1f} us/layer" for q in r["tp"]["points"]]
        how = "eager" if r["tp"].get("eager") else "CUDA graph"
        lines.append(f"All-reduce ({r['tp']['ranks']} ranks, 2 per layer, {how}): {'; '.join(parts)}.")
    for s in r.get("ranks", []):
        lines.append(f"Rank {s['rank']}: NCCL {size(s['nccl_init_bytes'])} after init, {size(s['nccl_bytes'])} after "
                     f"the first collectives; own KV budget "
                     f"{size(s.get('rank_kv_budget_bytes') or s['measured_kv_budget_bytes'])}; allocation torch "
                     f"{s['allocation']['torch_error']:+.3%}; boundary "
                     f"{'confirmed' if s['boundary_confirmed'] else 'NOT confirmed'} ({s['served']:,} sequences).")
    return lines


def verdict_lines(r: dict) -> list:
    v = r["verdict"]
    cap = "[green]CONFIRMED[/green]" if v["capacity_confirmed"] else "[red]NOT CONFIRMED[/red]"
    bud = "[green]WITHIN[/green]" if v["budget_within"] else "[red]NOT WITHIN[/red]"
    dec = {True: "[green]WITHIN[/green]", False: "[red]NOT WITHIN[/red]", None: "[yellow]NOT JUDGED[/yellow]"}[
        v["decode_within"]]
    lines = [f"[bold]Verdict[/bold] capacity {cap}: {escape(v['capacity_reason'])}.",
             f"[bold]Verdict[/bold] budget {bud}: {escape(v['budget_reason'])}.",
             f"[bold]Verdict[/bold] decode {dec}: {escape(v['decode_reason'])}."]
    lines += [f"Note: {escape(n)}." for n in v["notes"]]
    return lines


def renderable(result, width=None):
    from rich.console import Group
    from rich.text import Text

    def text(lines):
        return [Text.from_markup(line) for line in lines]

    r = result.result
    return Group(*text(header_lines(r)), terms_table(r), *text(measurement_lines(r)), allocation_table(r),
                 Text.from_markup(boundary_line(r)), Text.from_markup(gemm_line(r)),
                 *[t for t in (stream_table(r),) if t is not None], decode_table(r),
                 *text(timing_lines(r)), *text(verdict_lines(r)))
