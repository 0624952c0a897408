"""The package's shape: no import cycles between kvplan's modules, and `kvplan estimate` loads none of the heavy
stacks (torch, numpy, pynvml, the Hub client) it does not need."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kvplan"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set:
    """kvplan modules `path` imports, at module level or inside functions (a cycle through a function-level
    import is still a cycle of responsibilities)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith("kvplan")}
    return found


def graph() -> dict:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        edges[name] = {m for m in imports_of(path) if m in modules and m != name}
    return edges


def test_no_import_cycles():
    edges = graph()
    # package __init__ files re-export their own modules; an edge into a package's own __init__ from inside it
    # is how Python resolves `from . import x`, not a dependency between responsibilities
    for name in edges:
        edges[name] = {m for m in edges[name] if not name.startswith(m + ".")}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_estimate_loads_no_heavy_stack():
    code = ("import sys; from kvplan.cli import main; "
            "code = main(['estimate', 'meta-llama/Llama-3.1-8B-Instruct', '--format', 'json']); "
            "heavy = {'torch', 'numpy', 'scipy', 'pynvml', 'huggingface_hub'} "
            "& {m.split('.')[0] for m in sys.modules}; "
            "assert code == 0 and not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
