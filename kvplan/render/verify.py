"""`kvplan verify` for people: the same figures as its json/yaml result dict."""

from __future__ import annotations

from rich.markup import escape

from .text import size

MAX_WIDTH = 100


def tbps(value) -> str:
    return "-" if not value else f"{value / 1e12:.2f} TB/s"


def _shape(shapes: list, dtype: str) -> str:
    if len(shapes) == 2 and shapes[0] == shapes[1]:
        return f"2 x {shapes[0]} {dtype}".replace(", ", ",")
    return " + ".join(str(s).replace(", ", ",") for s in shapes) + f" {dtype}"


def header_lines(r: dict) -> list:
    g, rank, p, b = r["gpu"], r["rank"], r["plan"], r["plan"]["budget"]
    lines = [f"[bold]kvplan verify {r['model']}[/bold] on {g['name']} ({r['date']}; driver {g.get('driver')}, "
             f"torch {g['torch']}, CUDA {g['cuda']}; {r['elapsed_s']:.0f} s)"]
    nvml_bw = ""
    if g.get("bandwidth_nvml_bytes_per_s"):
        nvml_bw = (f", NVML {g['memory_bus_width_bits']}-bit x {g['memory_clock_mhz']} MHz = "
                   f"{tbps(g['bandwidth_nvml_bytes_per_s'])}")
    lines.append(f"GPU: {size(g['memory_total_bytes'])} (torch.cuda.mem_get_info), {g['sm_count']} SMs; bandwidth: "
                 f"planner {tbps(g['bandwidth_planner_bytes_per_s'])} ({g['bandwidth_planner_source']}){nvml_bw}, "
                 f"measured copy {tbps(g['bandwidth_copy_bytes_per_s'])}.")
    if rank["tp"] > 1:
        bigger = " (the model is larger than this GPU)" if rank["larger_than_gpu"] else ""
        lines.append(f"Rank: simulates one rank of {rank['tp']}{bigger}: weights/TP {size(rank['weights_bytes_per_gpu'])} "
                     f"of {size(rank['weights_bytes_total'])}; the other ranks are not run.")
    else:
        lines.append(f"Rank: the whole model on this GPU (tp 1), weights {size(rank['weights_bytes_per_gpu'])}.")
    terms = (f"{size(b['gpu_memory_bytes'])} x {b['gpu_util']:.2f} - weights/TP {size(b['weights_bytes_per_gpu'])} - "
             f"activations {size(b['activation_bytes'])} - CUDA context {size(b['cuda_context_bytes'])} - CUDA graphs "
             f"{size(b['cuda_graph_bytes'])}" + (f" - NCCL {size(b['nccl_bytes'])}" if b["nccl_bytes"] else ""))
    pool = f"{p['kv_blocks']:,} blocks of {p['block_size']}" if r["layout_uniform"] else "per-group pools"
    lines.append(f"Plan: context {p['context']:,}, KV {p['kv_dtype']}, tp {p['tp']}; KV budget = {terms} = "
                 f"{size(p['kv_budget_bytes_per_gpu'])}; {pool}; max concurrency [bold]{p['max_concurrency']:,}[/bold].")
    return lines


def allocation_table(r: dict):
    from rich.table import Table

    a = r["allocation"]
    table = Table(title="Allocation (one rank)", title_justify="left", pad_edge=False)
    for name, justify in (("cache group", "left"), ("layers", "right"), ("tensors per layer", "left"),
                          ("blocks/seq", "right"), ("bytes", "right")):
        table.add_column(name, justify=justify)
    for g in r["layout"]:
        table.add_row(g["name"], str(g["layers"]), _shape(g["tensor_shapes"], g["dtype"]),
                      str(g["blocks_per_sequence"]), size(g["bytes"]))
    table.add_row("[bold]predicted (plan)[/bold]", "", "", "", f"{a['predicted_bytes']:,}")
    table.add_row("torch memory_allocated delta", "", "", "", f"{a['torch_bytes']:,}")
    table.add_row("", "", f"[dim]error {a['torch_error']:+.4%}[/dim]", "", "")
    table.add_row("NVML used-memory delta", "", "", "", f"{a['nvml_bytes']:,}")
    table.add_row("", "", f"[dim]error {a['nvml_error']:+.4%}[/dim]", "", "")
    return table


def allocation_lines(r: dict) -> list:
    a, g = r["allocation"], r["gpu"]
    held = ", ".join(f"{k.replace('_', ' ')} {size(v)}" for k, v in a["held_terms"].items() if v)
    return [
        f"Engine stand-in held: {held} = {size(a['held_predicted_bytes'])} (torch {size(a['held_torch_bytes'])}, "
        f"NVML {size(a['held_nvml_bytes'])}); this process's CUDA context (NVML) {size(g['cuda_context_bytes_nvml'])} "
        f"against the planner's {size(r['plan']['budget']['cuda_context_bytes'])} term.",
        f"GPU memory used after allocation (NVML): {size(a['gpu_used_after_bytes'])} = "
        f"{a['gpu_used_after_fraction']:.1%} of {size(g['nvml_total_bytes'])} (--gpu-util "
        f"{r['plan']['budget']['gpu_util']:.2f}); KV budget left unallocated: {size(a['unallocated_budget_bytes'])}.",
    ]


def boundary_line(r: dict) -> str:
    b = r["boundary"]
    per = ", ".join(f"{n} {k}" for k, n in b["blocks_per_sequence"].items())
    free = ", ".join(f"{n} {k}" for k, n in b["free_blocks_after"].items())
    mark = "[green]confirmed[/green]" if b["confirmed"] else "[red]NOT confirmed[/red]"
    return (f"Boundary {mark}: {b['served']} sequences of {b['context']:,} tokens admitted (blocks each: {per}); "
            f"sequence {b['max_concurrency'] + 1} {'refused' if b['refused_next'] else 'ADMITTED'}: free blocks left "
            f"{free}; it needs {size(b['sequence_bytes'])} and {size(b['budget_left_bytes'])} of the budget are left.")


def ms(value: float) -> str:
    """Milliseconds to about three significant digits."""
    for limit, digits in ((100, 0), (10, 1), (1, 2)):
        if value >= limit:
            return f"{value:.{digits}f}"
    return f"{value:.3f}"


def decode_table(r: dict):
    from rich import box
    from rich.table import Table

    d = r["decode"]
    table = Table(title="Decode, ms per step; pred = bytes / planner bandwidth | bytes / measured copy bandwidth",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("batch", "KV read", "attn", "attn pred", "TB/s", "weights", "TB/s", "step", "step pred",
                 "step/pred"):
        table.add_column(name, justify="right", no_wrap=True)
    for p in d["points"]:
        table.add_row(str(p["batch"]), size(p["kv_bytes_read"]), ms(p["attention_ms"]),
                      f"{ms(p['attention_predicted_ms'])}|{ms(p['attention_predicted_copy_bw_ms'])}",
                      f"{p['attention_achieved_bytes_per_s'] / 1e12:.2f}", ms(p["weights_ms"]),
                      f"{p['weights_achieved_bytes_per_s'] / 1e12:.2f}", ms(p["step_ms"]),
                      f"{ms(p['step_predicted_ms'])}|{ms(p['step_predicted_copy_bw_ms'])}",
                      f"{p['step_ms'] / p['step_predicted_ms']:.2f}")
    return table


def decode_lines(r: dict) -> list:
    d = r["decode"]
    lines = [f"Attention ({name}): {escape(method)}." for name, method in d["attention_methods"].items()]
    for name, check in d["attention_checks"].items():
        lines.append(f"Check ({name}): output vs {check['against']} on {check['batch']} sequences, rel. L2 "
                     f"{check['rel_l2']:.1e}.")
    lines.append(f"Weights: {escape(d['weights_method'])}.")
    lines.append(f"Timing: {escape('; '.join(d['timing']))}; median per step. Planner bandwidth "
                 f"{tbps(d['bandwidth_planner_bytes_per_s'])}, measured copy {tbps(d['bandwidth_copy_bytes_per_s'])}; "
                 f"TB/s = bytes read / time (KV for attention, weights streamed for weights); step = weights + "
                 f"attention of every layer.")
    forms = {p["batch"]: p.get("weights_forms") for p in d["points"] if p.get("weights_forms")}
    if forms:
        lines.append("Weight GEMM form per batch: " + ", ".join(
            f"{b}: " + "/".join(f"{part} {form}" for part, form in f.items()) for b, f in forms.items()) + ".")
    mla = {p["batch"]: p["mla_method"] for p in d["points"] if p.get("mla_method")}
    if mla:
        lines.append("MLA stand-in used per batch: " + ", ".join(f"{b}: {m}" for b, m in mla.items()) + ".")
    if d["skipped_batches"]:
        lines.append(f"Not timed (sweep time limit): batches {d['skipped_batches']}.")
    return lines


def verdict_lines(r: dict) -> list:
    v = r["verdict"]
    cap = "[green]CONFIRMED[/green]" if v["capacity_confirmed"] else "[red]NOT CONFIRMED[/red]"
    dec = "[green]WITHIN[/green]" if v["decode_within"] else "[red]NOT WITHIN[/red]"
    lines = [f"[bold]Verdict[/bold] capacity {cap}: {escape(v['capacity_reason'])}.",
             f"[bold]Verdict[/bold] decode {dec} {v['tolerance_decode']:.0%} (whole step, weights + attention): "
             f"{escape(v['decode_reason'])}."]
    lines += [f"Note: {escape(n)}." for n in v["notes"]]
    return lines


def renderable(result, width=None):
    from rich.console import Group
    from rich.text import Text

    def text(lines):
        return [Text.from_markup(line) for line in lines]

    r = result.result
    return Group(*text(header_lines(r)), allocation_table(r), *text(allocation_lines(r)),
                 Text.from_markup(boundary_line(r)), decode_table(r), *text(decode_lines(r)), *text(verdict_lines(r)))
