"""Which architectures of vLLM's model registry a release refuses at pp > 1: the architectures whose registered class
(model_executor/models/registry.py, the *_MODELS dicts _VLLM_MODELS joins: arch -> (module, class)) does not
implement SupportsPP, which ModelConfig.verify_with_parallel_config asks through registry.is_pp_supported_model
(0.6.3 config.py:412-418 ... 0.10.2 config/__init__.py:1363-1369). interfaces.supports_pp answers True where the
class carries `supports_pp = True` (the SupportsPP protocol's class variable) and its forward takes
`intermediate_tensors` (0.6.3 interfaces.py:218-270).

Read from the source files' syntax trees, nothing of vLLM imported or run: each class's bases are resolved within
its module (local classes, simple aliases) and through `from .sibling import Name` / `from
vllm.model_executor.models.sibling import Name` imports, so a class subclassing LlamaForCausalLM inherits its
SupportsPP; a base it cannot resolve (nn.Module, a mixin from elsewhere) adds nothing. Prints every architecture
some release refuses: the releases that refuse it and those that take it (a release that does not list it is in
neither); "no-forward" (SupportsPP but a forward without intermediate_tensors) or "unresolved" (a class the scan
cannot find) would follow the line.

    pip download --no-deps vllm==X -d WHEELS; unzip -o -q WHEELS/vllm-X-*.whl 'vllm/model_executor/models/*' -d SRC/X
    python benchmarks/vllm_reference/supports_pp_scan.py SRC 0.6.3 0.6.4 ... 0.10.2 0.11.0

Session 74 ran it on the wheels of 0.6.3, 0.6.4, 0.6.5, 0.6.6, 0.7.0, 0.7.1, 0.7.2, 0.7.3, 0.8.0, 0.8.1, 0.8.2,
0.8.3, 0.8.4, 0.8.5, 0.9.0, 0.9.1, 0.9.2, 0.10.0, 0.10.1, 0.10.1.1, 0.10.2 and 0.11.0 (0.11.0 to check against
kvplan's NO_PIPELINE, read there by importing each class: the same answers); kvplan/plan/sharding.py's NO_PIPELINE
freezes what it printed for the generative decoders kvplan plans (drafters, pooling and encoder-decoder models left
out). Only the speculative heads (Eagle*) show "no-forward", and only pooling classes built by a function
(Qwen2ForSequenceClassification on 0.9.2) "unresolved"."""

import ast
import sys
from functools import lru_cache
from pathlib import Path

NOT_SERVED = {"_PREVIOUSLY_SUPPORTED_MODELS", "_OOT_SUPPORTED_MODELS"}
PACKAGE = "vllm.model_executor.models"


def registry(models: Path) -> dict:
    """arch -> (module, class) of every dict _VLLM_MODELS joins."""
    found = {}
    for node in ast.parse((models / "registry.py").read_text()).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if (isinstance(target, ast.Name) and target.id.endswith("_MODELS") and target.id not in NOT_SERVED
                and isinstance(node.value, ast.Dict)):
            for key, value in zip(node.value.keys, node.value.values):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Tuple) and len(value.elts) == 2:
                    found[key.value] = tuple(elt.value for elt in value.elts)
    return found


def _models_module(node: ast.ImportFrom) -> str:
    """The models module an import reads from: "llama" (from .llama, from vllm.model_executor.models.llama), ""
    (the package itself: from . import llama), "!" + name outside the models package."""
    if node.level == 1:
        return node.module or ""
    if node.level == 0 and node.module == PACKAGE:
        return ""
    if node.level == 0 and (node.module or "").startswith(PACKAGE + "."):
        return node.module[len(PACKAGE) + 1:]
    return "!" + "." * node.level + (node.module or "")


class Scan:
    def __init__(self, models: Path):
        self.models = models

    @lru_cache(maxsize=None)
    def module(self, name: str):
        """(classes by name, imported names -> (module, name), aliases name -> name) of models/<name>.py."""
        path = self.models / f"{name}.py"
        if not path.exists():
            return {}, {}, {}
        classes, imported, aliases = {}, {}, {}
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, node)
            elif isinstance(node, ast.ImportFrom):
                source = _models_module(node)
                for alias in node.names:
                    imported[alias.asname or alias.name] = (source, alias.name)
            elif (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                  and isinstance(node.value, ast.Name)):
                aliases[node.targets[0].id] = node.value.id
        return classes, imported, aliases

    def resolve(self, module: str, name: str, depth: int = 0):
        """(module, ClassDef) that `name` means in `module`, or (None, name) where it is no models class."""
        classes, imported, aliases = self.module(module)
        if depth > 20:
            return None, name
        if name in classes:
            return module, classes[name]
        if name in aliases:
            return self.resolve(module, aliases[name], depth + 1)
        if name in imported:
            source, real = imported[name]
            if source.startswith("!") or source in ("", "interfaces", "interfaces_base"):
                return None, real
            return self.resolve(source, real, depth + 1)
        return None, name

    def bases(self, module: str, node: ast.ClassDef) -> list:
        out = []
        for base in node.bases:
            if isinstance(base, ast.Subscript):
                base = base.value
            if isinstance(base, ast.Name):
                out.append(self.resolve(module, base.id))
            elif isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name):
                owner = self.module(module)[1].get(base.value.id)
                if owner and owner[0] == "":  # from . import llama; class X(llama.LlamaForCausalLM)
                    out.append(self.resolve(owner[1], base.attr))
                else:
                    out.append((None, base.attr))
        return out

    def supports_pp(self, module: str, node: ast.ClassDef, depth: int = 0) -> bool:
        for item in node.body:
            if (isinstance(item, (ast.Assign, ast.AnnAssign)) and any(
                    isinstance(t, ast.Name) and t.id == "supports_pp"
                    for t in (item.targets if isinstance(item, ast.Assign) else [item.target]))):
                return isinstance(item.value, ast.Constant) and item.value.value is True
        for base_module, base in self.bases(module, node):
            if base_module is None:
                if base == "SupportsPP":
                    return True
            elif depth < 20 and self.supports_pp(base_module, base, depth + 1):
                return True
        return False

    def forward_takes(self, module: str, node: ast.ClassDef, depth: int = 0):
        """Whether the first forward up the bases takes intermediate_tensors; None where none is found."""
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == "forward":
                args = item.args
                names = {a.arg for a in args.args + args.kwonlyargs + args.posonlyargs}
                return "intermediate_tensors" in names or args.kwarg is not None
        for base_module, base in self.bases(module, node):
            if base_module is not None and depth < 20:
                found = self.forward_takes(base_module, base, depth + 1)
                if found is not None:
                    return found
        return None

    def answer(self, module: str, name: str) -> str:
        where, node = self.resolve(module, name)
        if where is None:
            return "unresolved"
        if not self.supports_pp(where, node):
            return "no"
        return "yes" if self.forward_takes(where, node) is not False else "no-forward"


def scan(root: Path, release: str) -> dict:
    models = root / release / "vllm" / "model_executor" / "models"
    reader = Scan(models)
    return {arch: reader.answer(module, cls) for arch, (module, cls) in registry(models).items()}


def main(root: str, *releases: str) -> None:
    answers = {release: scan(Path(root), release) for release in releases}
    archs = sorted(set().union(*answers.values()))
    for arch in archs:
        row = [answers[r].get(arch, "-") for r in releases]
        if any(a not in ("yes", "-") for a in row):
            refused = [r for r, a in zip(releases, row) if a not in ("yes", "-")]
            taken = [r for r, a in zip(releases, row) if a == "yes"]
            print(f"{arch}: refused {' '.join(refused)} | taken {' '.join(taken) or '-'}"
                  + ("" if all(a in ("yes", "no", "-") for a in row) else f"  {set(row)}"))


if __name__ == "__main__":
    main(sys.argv[1], *sys.argv[2:])
