"""Which architectures each vLLM release serves without LoRA, read from its sources: writes
kvplan/engines/vllm_lora_classes.py (WITHOUT_LORA).

A registered class supports LoRA when SupportsLoRA is among its bases, transitively, or it sets supports_lora
(model_executor/models/interfaces.py SupportsLoRA / supports_lora: a protocol check on supports_lora and the two
LoRA attributes); the worker refuses any other class when --enable-lora is given (v1/worker/
lora_model_runner_mixin.py load_lora_model: "<class> does not support LoRA yet."). Registered classes are those of
model_executor/models/registry.py's _TEXT_GENERATION_MODELS and _MULTIMODAL_MODELS; a platform-dispatched package
(vllm/models/X, 0.29 on) is read in its CUDA build (nvidia/).

Checked against vLLM 0.34.0's own supports_lora() on every class its pure-python import loads on a CPU (171 of
256; the others need CUDA-only extensions): all agree (benchmarks/vllm_reference/lora_support.py --check, run with
/tmp/v34/bin/python from the 0.34.0 source tree).

    python benchmarks/vllm_reference/lora_support.py <folder of unpacked vLLM sources> [<folder> ...] \
        > kvplan/engines/vllm_lora_classes.py

Each folder holds vllm-X.Y.Z/vllm trees; session 58 ran it on /tmp/s52/sd (the sdists 0.12.0-0.34.0) and /tmp/s58/sd
(0.15.0 and 0.15.1, which have no source release: unpacked from their wheels). A minor missing from every folder is
named in the generated docstring.
"""

import ast
import os
import sys

FIRST_MODELLED = (0, 12)


def release_key(name: str) -> tuple:
    return tuple(int(p) for p in name.split("."))


def registry(root: str) -> dict:
    """architecture -> (module, class) of the generating models (text and multimodal)."""
    tree = ast.parse(open(f"{root}/model_executor/models/registry.py").read())
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if getattr(target, "id", "") in ("_TEXT_GENERATION_MODELS", "_MULTIMODAL_MODELS") \
                    and isinstance(node.value, ast.Dict):
                for key, value in zip(node.value.keys, node.value.values):
                    if isinstance(key, ast.Constant) and isinstance(value, ast.Tuple):
                        out[key.value] = tuple(e.value for e in value.elts if isinstance(e, ast.Constant))
    return out


def classes(root: str) -> dict:
    """class name -> [(module, bases, own supports_lora or None)] over model_executor/models and vllm/models."""
    out = {}
    for base in (f"{root}/model_executor/models", f"{root}/models"):
        for folder, _, files in os.walk(base):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                module = os.path.relpath(path, base)[:-3].replace(os.sep, ".")
                if base.endswith("/vllm/models"):
                    module = "vllm.models." + module
                try:
                    tree = ast.parse(open(path).read())
                except SyntaxError:
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, ast.ClassDef):
                        bases = [getattr(b, "id", getattr(b, "attr", getattr(getattr(b, "value", None), "id", "")))
                                 for b in node.bases]
                        flag = None
                        for st in node.body:
                            if isinstance(st, (ast.Assign, ast.AnnAssign)) and isinstance(st.value, ast.Constant):
                                target = st.targets[0] if isinstance(st, ast.Assign) else st.target
                                if getattr(target, "id", "") == "supports_lora":
                                    flag = bool(st.value.value)
                        out.setdefault(node.name, []).append((module, bases, flag))
    return out


def pick(found: dict, module: str, name: str):
    """The definition of class `name` the registry's `module` means: that module's, a dispatched package's CUDA
    build, else any but config.py's namesakes (VerifyAndUpdateConfig)."""
    options = found.get(name, [])
    exact = [o for o in options if o[0] == module]
    package = sorted((o for o in options if o[0].startswith(module + ".")),
                     key=lambda o: (".nvidia." not in o[0], "stub" in o[0]))
    return (exact or package or [o for o in options if o[0] != "config"] or options or [None])[0]


def supports_lora(found: dict, module: str, name: str, seen=frozenset()) -> bool:
    entry = pick(found, module, name)
    if entry is None or (entry[0], name) in seen:
        return False
    own_module, bases, flag = entry
    if flag is not None:
        return flag
    if "SupportsLoRA" in bases:
        return True
    return any(supports_lora(found, own_module, b, seen | {(own_module, name)}) for b in bases
               if b not in ("Module", "object", "Protocol"))


def release_roots(folders) -> dict:
    """release -> its vllm/ tree, over every folder (the first folder holding a release wins)."""
    roots = {}
    for folder in folders:
        for name in os.listdir(folder):
            path = os.path.join(folder, name, "vllm")
            if name.startswith("vllm-") and os.path.isdir(path):
                roots.setdefault(name[len("vllm-"):], path)
    return roots


def table(folders) -> tuple:
    """architecture -> (first release with LoRA or None, class name), for those some release >= 0.12 lacks."""
    roots = release_roots(folders)
    releases = sorted(roots, key=release_key)
    seen = {}
    for release in releases:
        if release_key(release)[:2] < FIRST_MODELLED:
            continue
        root = roots[release]
        found = classes(root)
        for arch, (module, name) in registry(root).items():
            seen.setdefault(arch, []).append((release, supports_lora(found, module, name), name))
    out = {}
    for arch, rows in sorted(seen.items()):
        if all(ok for _, ok, _ in rows):
            continue
        first = next((release for release, ok, _ in rows if ok), None)
        assert first is None or all(ok for r, ok, _ in rows if release_key(r) >= release_key(first)), arch
        out[arch] = (first, rows[-1][2])
    return out, releases


def check() -> None:
    """vLLM 0.34.0's own supports_lora() against this reading, where the class imports on a CPU."""
    import importlib
    import logging

    logging.disable(logging.WARNING)
    from vllm.model_executor.models.interfaces import supports_lora as real
    from vllm.model_executor.models.registry import _MULTIMODAL_MODELS, _TEXT_GENERATION_MODELS

    root = os.path.dirname(os.path.dirname(os.path.abspath(__import__("vllm").__file__))) + "/vllm"
    found = classes(root)
    agree = differ = skipped = 0
    for arch, (module, name) in {**_TEXT_GENERATION_MODELS, **_MULTIMODAL_MODELS}.items():
        try:
            cls = getattr(importlib.import_module(module if module.startswith("vllm.")
                                                  else f"vllm.model_executor.models.{module}"), name)
        except Exception:
            skipped += 1
            continue
        same = real(cls) == supports_lora(found, module, name)
        agree += same
        differ += not same
        if not same:
            print("differs:", arch)
    print(f"agree {agree}, differ {differ}, not importable on a CPU {skipped}")


def missing_minors(read: list) -> str:
    """' (no 0.X.x)' for each minor between the first and the last release read that no folder holds."""
    minors = sorted({release_key(r)[:2] for r in read})
    gaps = [f"0.{minor}.x" for minor in range(minors[0][1], minors[-1][1] + 1) if (0, minor) not in minors]
    return f" (no {', '.join(gaps)})" if gaps else ""


def main(folders) -> None:
    out, releases = table(folders)
    read = [r for r in releases if release_key(r)[:2] >= FIRST_MODELLED]
    print('"""Generated by benchmarks/vllm_reference/lora_support.py from the vLLM sources '
          + f"{read[0]} to {read[-1]}{missing_minors(read)}" + '.\n\nThe generating architectures some release serves '
          "without LoRA: architecture -> "
          "(the first release whose class\nsupports LoRA, None for none up to " + read[-1] + "; the class name "
          'vLLM\'s refusal names). Every other registered\narchitecture supports LoRA in every release read."""\n')
    print("WITHOUT_LORA = {")
    for arch, (first, name) in out.items():
        print(f"    {arch!r}: ({first!r}, {name!r}),")
    print("}")


if __name__ == "__main__":
    check() if sys.argv[1] == "--check" else main(sys.argv[1:])
