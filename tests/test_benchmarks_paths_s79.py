"""Every `benchmarks/...` path that README.md, docs/*.md, benchmarks/RESULTS.md, benchmarks/NOTES_kernel.md,
benchmarks/README.md and kvplan/'s source (.py, .cu, .cuh) name exists in the tree (session 79 moved the one-off
session scripts to benchmarks/sessions/, the probes to benchmarks/probes/ and the early raw outputs to
benchmarks/device_runs/early/, and rewrote every page's paths).

The rule, per path found (`benchmarks/` then path characters, trailing punctuation `.,;:)]` dropped):
- a placeholder is not checked: it holds `<`, `$` or `...` (`benchmarks/verify_h200_....jsonl`, `<name>`);
- braces expand as bash expands them (`s12_call{1..11}_device.sh`, `_s8_{start,final}.txt`): every expansion must
  exist;
- `callN` (any call of a session) and `a..b` ranges (`call1..2`) are read as `*`; a glob (`*`, `?`, `[`) must match
  at least one path;
- a path cut by a line end after a hyphen (`nvidia--Nemotron-H-8B-` / `Base-8K.json`) is joined to the next line's
  first word;
- outputs that stayed on the device machine are named `$OUT/...` on these pages, never `benchmarks/...`, so none is
  exempt: every device output a page names as `benchmarks/...` was copied into benchmarks/device_runs/ and must be
  there;
- GONE lists the paths that were already missing before session 79: scripts that lived only on a branch, or were
  removed from main in the commit given. They are named as history and must stay missing (if one comes back, its
  entry goes)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"(?<![\w/.$-])benchmarks/(?:[\w./*?<>\[\]$-]|\{[^{}\s`]*\})*")

# path -> where it went (never found in the tree since; the pages name it as history)
GONE = {
    "benchmarks/verify_device_run.sh": "removed in b2bb87aa (H100 runs of 2026-11-22)",
    "benchmarks/verify_gemm_shapes.py": "removed in b2bb87aa",
    "benchmarks/kernel_bulk_compare.py": "removed in 62c4a0ca (session 1-2 kernel A/Bs)",
    "benchmarks/kernel_split_sweep.py": "removed in 62c4a0ca",
    "benchmarks/kernel_variant_compare.py": "removed in 62c4a0ca",
    "benchmarks/kernel_host_overhead.py": "removed in 62c4a0ca",
    "benchmarks/l2_prefetch_stream.py": "on branch gqa-tma only (session 16 call 1)",
    "benchmarks/s15_call9_device.sh": "removed in 8718e653 (kept on branch deltanet-chunks)",
    "benchmarks/s17_call12_device.sh": "on branch gemv-bulk-x only",
    "benchmarks/gemv_dyn_exp.py": "on branch gemv-dyn-exp only",
    "benchmarks/s18_call7_device.sh": "on session 18's branches, lost with its checkout",
    "benchmarks/s18_call8_device.sh": "on session 18's branches, lost with its checkout",
    "benchmarks/s18_call9_device.sh": "on session 18's branches, lost with its checkout",
    "benchmarks/s18_call10_device.sh": "on session 18's branches, lost with its checkout",
    "benchmarks/s29_call2_device.sh": "on branch gqa-balanced only",
    "benchmarks/s30_call6_device.sh": "reverted in 35077f04 (on its branch)",
    "benchmarks/balanced_own_probe.py": "on branch gemv-balanced-s46 only",
    "benchmarks/s50_sparse_mla_diag.py": "removed in fbd22135 (superseded by probes/s51_dsa_float32_ops.py)",
    "benchmarks/s58_device.sh": "removed in e7cdac94 (never ran; s59_device.sh ran its checks)",
}


def pages() -> list:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found += [ROOT / "benchmarks" / name for name in ("RESULTS.md", "NOTES_kernel.md", "README.md")]
    found += sorted(p for p in (ROOT / "kvplan").rglob("*") if p.suffix in (".py", ".cu", ".cuh"))
    return [p for p in found if p.exists()]


def named_paths(text: str):
    """(line number, path) of every benchmarks/ path the text names, a hyphen-cut path joined to its next line."""
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        for match in PATH.finditer(line):
            path = match.group(0).rstrip(".,;:)]")
            if path.endswith("-") and match.end() == len(line) and n < len(lines):
                path += re.match(r"\s*([\w./-]*)", lines[n]).group(1).rstrip(".,;:)]")
            yield n, path


def expand(path: str) -> list:
    """Bash's brace expansion: `{a,b}` lists and `{1..3}` ranges, nested left to right."""
    braces = re.search(r"\{([^{}]*)\}", path)
    if not braces:
        return [path]
    found = []
    for part in braces.group(1).split(","):
        span = re.fullmatch(r"(\d+)\.\.(\d+)", part)
        items = [str(i) for i in range(int(span[1]), int(span[2]) + 1)] if span else [part]
        for item in items:
            found += expand(path[:braces.start()] + item + path[braces.end():])
    return found


def exists(path: str) -> bool:
    if any(c in path for c in "<$") or "..." in path:
        return True  # a placeholder
    if expand(path) != [path]:
        return all(exists(each) for each in expand(path))
    pattern = re.sub(r"\d+\.\.\d+", "*", path.replace("callN", "call*"))
    if any(c in pattern for c in "*?["):
        return any(ROOT.glob(pattern))
    return (ROOT / path).exists()


def dangling() -> list:
    return [f"{page.relative_to(ROOT)}:{n}: {path}" for page in pages()
            for n, path in named_paths(page.read_text()) if not exists(path)]


def test_every_benchmarks_path_the_pages_name_exists():
    missing = [where for where in dangling() if where.split(": ", 1)[1] not in GONE]
    assert not missing, "\n".join(missing)


def test_the_gone_paths_are_still_gone_and_still_named():
    named = {where.split(": ", 1)[1] for where in dangling()}
    assert named == set(GONE)  # 24 references before session 79's moves and after them, all to these 19 paths
    assert not [path for path in GONE if (ROOT / path).exists()]


def test_the_rules_on_examples():
    assert exists("benchmarks/RESULTS.md") and exists("benchmarks/sessions/s78_device.sh")
    assert exists("benchmarks/verify_h200_....jsonl") and exists("benchmarks/<name>.py")  # placeholders
    assert exists("benchmarks/sessions/s27_callN_device.sh") and exists("benchmarks/device_runs/early/s4*")
    assert exists("benchmarks/sessions/s12_call{1..11}_device.sh")  # braces: every expansion
    assert not exists("benchmarks/sessions/s12_call{1..12}_device.sh") and not exists("benchmarks/s12_call{1,2}.sh")
    assert not exists("benchmarks/sessions/s99_callN_device.sh") and not exists("benchmarks/s78_device.sh")
    joined = list(named_paths("`benchmarks/configs/nvidia--Nemotron-H-8B-\nBase-8K.json`"))
    assert joined == [(1, "benchmarks/configs/nvidia--Nemotron-H-8B-Base-8K.json")] and exists(joined[0][1])


def test_the_top_level_keeps_only_what_a_newcomer_reruns():
    """No session script, raw output or probe back at benchmarks/'s top (benchmarks/README.md lists what stays)."""
    top = [p.name for p in (ROOT / "benchmarks").iterdir() if p.is_file()]
    assert not [name for name in top if re.match(r"s\d+_", name) or name.endswith((".txt", ".jsonl", ".json"))]
    listed = (ROOT / "benchmarks" / "README.md").read_text()
    assert not [name for name in top if f"`{name}`" not in listed and f"[{name}]" not in listed and name != "README.md"]
