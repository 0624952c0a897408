"""Make tests/data/vllm_model_runner.json: which model runner each vLLM release picks (VllmConfig.use_v2_model_runner,
vllm/config/vllm.py) for every combination of the model properties it reads, and whether that release's Model Runner
V2 profiles CUDA-graph memory (vllm/v1/worker/gpu/model_runner.py profile_cudagraph_memory), for the rules of
kvplan/engines/vllm_runner.py. No vLLM install needed: it runs each release's own method bodies, taken from the
released wheel's source by `ast`, against a stand-in config object.

    for v in 0.20.0 0.21.0 ... 0.32.0; do pip download -q --no-deps vllm==$v -d whl/$v
        unzip -q whl/$v/*.whl 'vllm/config/vllm.py' 'vllm/envs.py' 'vllm/v1/worker/*' -d src/$v; done
    python tests/data/vllm_model_runner.py src > tests/data/vllm_model_runner.json

The stand-in: a text-generation model with no speculative decoding, PP 1, no prefill context parallelism, no
dual-batch overlap, no HiSparse or watermarking, Triton present, VLLM_USE_V2_MODEL_RUNNER at the release's default
(0.20-0.21: "0", later: unset). Each combination of (architecture, is_moe, is_quantized, is_hybrid, is_attention_free,
ROCm) gives one bit.
"""

import ast
import json
import sys
import types
from itertools import product
from pathlib import Path

VERSIONS = ("0.20.0", "0.21.0", "0.22.0", "0.23.0", "0.24.0", "0.25.1", "0.26.0", "0.27.1", "0.28.0", "0.29.0",
            "0.30.0", "0.31.0", "0.32.0")
# the bundled specs' architectures and each release's default-V2 / ROCm-V1 sets (collected below)
BUNDLED = ("DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", "Exaone4ForCausalLM", "FalconMambaForCausalLM",
           "Gemma2ForCausalLM", "Gemma3ForConditionalGeneration", "Glm4MoeLiteForCausalLM", "GptOssForCausalLM",
           "JambaForCausalLM", "Llama4ForConditionalGeneration", "LlamaForCausalLM", "Ministral3ForCausalLM",
           "Mistral3ForConditionalGeneration", "MistralForCausalLM", "MixtralForCausalLM", "NemotronHForCausalLM",
           "Olmo3ForCausalLM", "Phi3ForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Qwen3MoeForCausalLM",
           "Qwen3NextForCausalLM", "Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration",
           "RWForCausalLM")
FLAGS = ("is_moe", "is_quantized", "is_hybrid", "is_attention_free")
SETS = ("DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES", "ROCM_EXCLUDED_V2_MODEL_RUNNER_ARCHITECTURES",
        "ROCM_DEFAULT_MRV1_ARCHITECTURES")
METHODS = ("use_v2_model_runner", "_is_default_v2_model_runner_model")


class _Config(types.SimpleNamespace):
    """The stand-in VllmConfig: private predicates it does not set (_dflash_needs_multi_kv_group, ...) are False,
    as for a config without speculative decoding; the unsupported-feature lists are empty."""

    def __getattr__(self, name):
        if name.startswith("_"):
            return lambda *a, **k: False
        raise AttributeError(name)


class _Logger:
    def warning_once(self, *a, **k):
        pass

    info_once = warning_once


def _frozensets(tree) -> dict:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id in SETS:
            out[node.targets[0].id] = eval(compile(ast.Expression(node.value), "<set>", "eval"), {})
    return out


def _function_source(tree, text: str, cls: str | None, name: str):
    scope = tree.body
    if cls:
        scope = next(n.body for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    node = next((n for n in scope if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if node is None:
        return None
    node.decorator_list = []  # @property / @lru_cache: called directly here
    return ast.unparse(node)


def _platform(rocm: bool):
    return types.SimpleNamespace(is_rocm=lambda: rocm, is_cuda=lambda: not rocm)


def _decider(src: Path, rocm: bool):
    """f(arch, flags) -> True when the release picks Model Runner V2."""
    cfg = src / "vllm/config/vllm.py"
    text = cfg.read_text()
    tree = ast.parse(text)
    env_default = "1" if 'os.getenv("VLLM_USE_V2_MODEL_RUNNER", "1")' in (src / "vllm/envs.py").read_text() else None
    sets = _frozensets(tree)
    use_src = _function_source(tree, text, "VllmConfig", "use_v2_model_runner")
    if use_src is None:  # 0.20-0.21: gpu_worker.py reads envs.VLLM_USE_V2_MODEL_RUNNER, default "0"
        return lambda arch, flags: env_default == "1"
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = _platform(rocm)
    sys.modules["vllm"] = types.ModuleType("vllm")
    sys.modules["vllm.platforms"] = platforms
    ns = dict(sets, envs=types.SimpleNamespace(VLLM_USE_V2_MODEL_RUNNER=None), HAS_TRITON=True, logger=_Logger(),
              current_platform=_platform(rocm))
    default_fn = _function_source(tree, text, None, "default_v2_model_runner_architectures")
    if default_fn:
        exec(default_fn, ns)
    for name in METHODS:  # 0.29 on: no default-architecture check
        body = _function_source(tree, text, "VllmConfig", name)
        if body:
            exec(body, ns)

    def decide(arch, flags):
        model = types.SimpleNamespace(runner_type="generate", architectures=[arch], is_diffusion=False,
                                      **dict(zip(FLAGS, flags)))
        self = _Config(
            model_config=model, speculative_config=None, watermark_config=None,
            attention_config=types.SimpleNamespace(hisparse_config=None),
            parallel_config=types.SimpleNamespace(prefill_context_parallel_size=1, pipeline_parallel_size=1,
                                                  distributed_executor_backend=None, use_ubatching=False))
        if "_is_default_v2_model_runner_model" in ns:
            self._is_default_v2_model_runner_model = lambda: ns["_is_default_v2_model_runner_model"](self)
        return bool(ns["use_v2_model_runner"](self))

    return decide


def _v2_profiles_graphs(src: Path) -> bool:
    """False where Model Runner V2's profile_cudagraph_memory is `return 0` (a placeholder)."""
    tree = ast.parse((src / "vllm/v1/worker/gpu/model_runner.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "GPUModelRunner")
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "profile_cudagraph_memory")
    body = [n for n in fn.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    placeholder = (len(body) == 1 and isinstance(body[0], ast.Return) and isinstance(body[0].value, ast.Constant)
                   and body[0].value.value == 0)
    return not placeholder


def main(root: str) -> None:
    out = {"script": "tests/data/vllm_model_runner.py", "source": "released wheels from PyPI (vllm==VERSION)",
           "flags": list(FLAGS), "bits": "one a combination of the flags in itertools.product order, 1 = V2",
           "releases": {}}
    for version in VERSIONS:
        src = Path(root) / version
        tree = ast.parse((src / "vllm/config/vllm.py").read_text())
        sets = _frozensets(tree)
        archs = sorted(set(BUNDLED).union(*sets.values()))
        release = {"v2_profiles_graphs": _v2_profiles_graphs(src),
                   "sets": {k: sorted(v) for k, v in sets.items()}}
        for platform, rocm in (("cuda", False), ("rocm", True)):
            decide = _decider(src, rocm)
            release[platform] = {a: "".join("1" if decide(a, f) else "0" for f in product((False, True), repeat=4))
                                 for a in archs}
        out["releases"][version] = release
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
