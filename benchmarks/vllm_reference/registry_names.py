"""Every architecture name vLLM 0.32.0's model registry lists (model_executor/models/registry.py: the keys of its
*_MODELS dicts that make up _VLLM_MODELS, lines 72-778; not _PREVIOUSLY_SUPPORTED_MODELS or _OOT_SUPPORTED_MODELS,
which name what it no longer serves), written as kvplan/engines/vllm_registry_names.py. Read from the source file's
syntax tree: nothing of vLLM is imported or run.

    python benchmarks/vllm_reference/registry_names.py \\
        /tmp/pip-download-7lf6yn5o/vllm_ddad43081b6948e08347b9446dce76f7/vllm kvplan/engines/vllm_registry_names.py

Session 68 ran it on the vllm-0.32.0 sdist (PKG-INFO Version: 0.32.0)."""

import ast
import sys
import textwrap
from pathlib import Path

NOT_SERVED = {"_PREVIOUSLY_SUPPORTED_MODELS", "_OOT_SUPPORTED_MODELS"}


def listed(registry: Path) -> list:
    names = set()
    for node in ast.parse(registry.read_text()).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if (isinstance(target, ast.Name) and target.id.endswith("_MODELS") and target.id not in NOT_SERVED
                and isinstance(node.value, ast.Dict)):
            names |= {key.value for key in node.value.keys if isinstance(key, ast.Constant)}
    return sorted(names)


def main(source: str, out: str) -> None:
    names = listed(Path(source) / "model_executor" / "models" / "registry.py")
    body = textwrap.fill(" ".join(names), width=116, break_on_hyphens=False)
    Path(out).write_text(
        '"""The architectures vLLM 0.32.0\'s model registry lists (registry.py:72-778, the dicts _VLLM_MODELS joins),\n'
        'written by benchmarks/vllm_reference/registry_names.py; data, not rules: vllm_config_read.listed_anywhere reads\n'
        f'it. {len(names)} names."""\n\nLISTED_0_32 = frozenset("""\n{body}\n""".split())\n')


if __name__ == "__main__":
    main(*sys.argv[1:3])
