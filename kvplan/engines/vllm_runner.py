"""Which model runner a vLLM release runs a model with, and the two budget terms that follow from it.

vLLM 0.22 added Model Runner V2 (vllm/v1/worker/gpu/model_runner.py) beside the V1 runner
(vllm/v1/worker/gpu_model_runner.py); VllmConfig.use_v2_model_runner (vllm/config/vllm.py) picks one per model.
Read in the released wheels of 0.21.0-0.32.0 (tests/data/vllm_model_runner.py runs each release's own method
bodies over every combination of the properties below; tests/test_vllm_runner.py holds this module to them), and
in the source releases of 0.33.0 and 0.34.0 (tests/test_vllm_runner_033.py):

- 0.20-0.21: V1 (gpu_worker.py reads VLLM_USE_V2_MODEL_RUNNER, default "0").
- 0.22-0.23: V2 for the architectures of DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES, dense and unquantised only.
- 0.24: V2 for those architectures, whatever their experts or quantisation.
- 0.25-0.26: V2 for every model but hybrid (Mamba / linear attention beside attention) and attention-free ones,
  MoE models only where their architecture is listed.
- 0.27-0.28: as 0.25, and hybrids whose architecture is listed; on ROCm each lists one fewer.
- 0.29-0.33: V2 for every model (on ROCm, 0.29-0.31 keep V1 for a few sparse-attention architectures).
- 0.34: V2 only: gpu_model_runner.py is gone, gpu_worker.py:579-587 builds v1/worker/gpu/model_runner.py's
  GPUModelRunner for every generating model, and platforms/interface.py:1481-1490 refuses VLLM_USE_V2_MODEL_RUNNER != 1.
A discrete-diffusion model (DiffusionGemma, registered from 0.24) runs on V2 in every release that has it
(use_v2_model_runner: `is_diffusion`, 0.24.0:527-528, 0.28.0:645-646; V1 lists it unsupported, 0.32.0:2993-2994).
Up to 0.33 suffix decoding sends any model back to V1 (_get_v2_model_runner_unsupported_features, 0.33
config/vllm.py:3066-3068: "suffix" and "custom_class"); 0.34 runs it on V2 (v1/worker/gpu/spec_decode/suffix/).
So does parallel drafting with any method but DFlash / DSpark (0.32 config/vllm.py:2935-2942, 0.33 :3070-3077:
"parallel drafting for EAGLE speculative decoding"); 0.34 refuses that configuration (vllm_speculative.py).

What the runner changes in the budget (gpu_worker.py determine_available_memory, 0.20 on):
- CUDA graphs: the worker subtracts `model_runner.profile_cudagraph_memory()`. V1 profiles a capture; V2's was a
  placeholder returning 0 until 0.29 (then vllm/v1/worker/gpu/cudagraph_utils.py profile_cudagraph_memory). The
  worker skips the profile on ROCm (and with cudagraph_mode NONE), so there it is 0 too.
- The profile's sampler pass: V1 samples with top-k / top-p over float32 logits, V2 by one Gumbel-max kernel over
  the logits as the LM head leaves them (vllm_profile.dummy_sampler); from 0.33 V2 samples a second time with
  SamplingParams.for_sampler_warmup(), top-k / top-p over a float32 copy (v1/worker/gpu/model_runner.py:1008-1014).
- A pooling model (vllm_pooling.py) runs on V1 in 0.22-0.28: _is_default_v2_model_runner_model answers False for
  any runner but "generate" (config/vllm.py 0.22.0:523, 0.28.0:696); 0.29 on, V2 as every model.
- Async scheduling, on by default: CPU-side drafting (ngram, suffix) turns it off on either runner up to 0.32
  (0.32 config/vllm.py:1597-1610), on the V1 runner only in 0.33 (:1651-1666, 1711-1717), never in 0.34
  (:1610-1637); what it changes is VllmConfig.max_concurrent_batches (vllm_settings.resolve_settings).
- A multimodal model's encoder pass: V1 runs the vision tower over a batch of dummy images before the text
  forward (gpu_model_runner.py profile_run); V2's profile_run ran the text forward alone until 0.27
  (v1/worker/gpu/model_runner.py, 0.26.0; 0.27.0 added encoder_runner.profile_encoder_cache).

vLLM's is_quantized reads the checkpoint's quantization_config; kvplan counts `--quantization` (a checkpoint
quantised at load) as quantised too, which differs only for 0.22-0.23's dense-and-unquantised rule.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from ..model.quantization import checkpoint_format

# DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES (vllm/config/vllm.py), by the first release that has each set
_V22 = frozenset({"Qwen3ForCausalLM"})
_V23 = _V22 | {"LlamaForCausalLM", "MistralForCausalLM"}
_V24 = _V23 | {"DeepseekV2ForCausalLM", "Qwen2MoeForCausalLM", "GraniteMoeForCausalLM"}
_V25 = frozenset({"DeepseekV2ForCausalLM", "Qwen2MoeForCausalLM", "GraniteMoeForCausalLM"})
_V26 = _V25 | {"InklingForCausalLM", "InklingForConditionalGeneration", "LongcatFlashNgramForCausalLM"}
_V27 = _V26 | {"KimiK3ForConditionalGeneration"}
_V28 = _V27 | {"DeepseekV4ForCausalLM"}
# ROCm: 0.27's ROCM_EXCLUDED_V2_MODEL_RUNNER_ARCHITECTURES, 0.29-0.31's ROCM_DEFAULT_MRV1_ARCHITECTURES
_ROCM_V1_29 = frozenset({"DeepseekV32ForCausalLM", "DeepseekV4ForCausalLM"})
_ROCM_V1_30 = _ROCM_V1_29 | {"GlmMoeDsaForCausalLM"}


@dataclass(frozen=True)
class RunnerRule:
    """How one range of releases picks the runner (`check`, below) and whether its V2 profiles graph memory."""

    check: str  # v1 | dense_listed | listed | not_hybrid | hybrid_listed | v2
    listed: frozenset = frozenset()
    rocm_v1: frozenset = frozenset()  # architectures ROCm keeps off V2
    v2_profiles_graphs: bool = False
    v2_profiles_encoder: bool = False  # V2's profile_run runs a multimodal model's vision tower (0.27 on)
    v2_offloads: bool = False  # V2 installs the weight offloader (0.28 on: set_offloader in its __init__)
    v2_sampler_warmup: bool = False  # V2's profile samples again with the warmup parameters (0.33 on)
    v2_model_state_sampler: bool = False  # a ModelState may run its own dummy sampler pass (0.34: dummy_sampler_run)
    has_v1: bool = True  # the V1 runner still exists (removed in 0.34), so suffix decoding runs on it
    cpu_drafting_async: str = "never"  # the runners keeping async scheduling with ngram / suffix: never | v2 | both


RULES = {  # vllm_versions.Behaviour.runner -> its rule
    "v1": RunnerRule("v1"),
    "0.22": RunnerRule("dense_listed", _V22),
    "0.23": RunnerRule("dense_listed", _V23),
    "0.24": RunnerRule("listed", _V24),
    "0.25": RunnerRule("not_hybrid", _V25),
    "0.26": RunnerRule("not_hybrid", _V26),
    "0.27": RunnerRule("hybrid_listed", _V27, frozenset({"KimiK3ForConditionalGeneration"}),
                       v2_profiles_encoder=True),
    "0.28": RunnerRule("hybrid_listed", _V28, frozenset({"DeepseekV4ForCausalLM"}), v2_profiles_encoder=True,
                       v2_offloads=True),
    "0.29": RunnerRule("v2", rocm_v1=_ROCM_V1_29, v2_profiles_graphs=True, v2_profiles_encoder=True,
                       v2_offloads=True),
    "0.30": RunnerRule("v2", rocm_v1=_ROCM_V1_30, v2_profiles_graphs=True, v2_profiles_encoder=True,
                       v2_offloads=True),
    "0.32": RunnerRule("v2", v2_profiles_graphs=True, v2_profiles_encoder=True, v2_offloads=True),
    "0.33": RunnerRule("v2", v2_profiles_graphs=True, v2_profiles_encoder=True, v2_offloads=True,
                       v2_sampler_warmup=True, cpu_drafting_async="v2"),
    "0.34": RunnerRule("v2", v2_profiles_graphs=True, v2_profiles_encoder=True, v2_offloads=True,
                       v2_sampler_warmup=True, v2_model_state_sampler=True, has_v1=False,
                       cpu_drafting_async="both"),
}
# Speculative methods whose drafting keeps async scheduling in every release: EagleModelTypes (eagle, eagle3, mtp),
# NgramGPUTypes and draft_model (0.32 config/vllm.py:1597-1603); of kvplan's methods, ngram and suffix are not
ASYNC_DRAFTING = ("eagle", "eagle3", "mtp", "ngram_gpu", "draft_model")


def uses_v2(rule: RunnerRule, names: tuple, is_moe: bool, is_quantized: bool, is_hybrid: bool,
            attention_free: bool, rocm: bool = False) -> bool:
    """VllmConfig.use_v2_model_runner for a text-generation model without speculative decoding or the other
    features that force one runner; `names`: the top-level config's `architectures`, of which any one listed counts
    (config/vllm.py 0.23.0:552-554, 0.28.0:699-703, ROCm's 0.30.0:699-701: `any(arch in ... for arch in
    model_config.architectures)`, hf_config's own list, not the name the registry resolved nor a nested config's).
    ROCm's list differs by release: 0.27-0.28 take its names out of the default list (default_v2_model_runner_
    architectures, 0.27.1:91-101, 0.28.0:84-93, a set difference), so another listed name of `names` still counts;
    0.29-0.31 keep V1 where any name is in it (use_v2_model_runner, 0.29.0:654-655, 0.31.0:726-727)."""
    rocm_v1 = rocm and any(name in rule.rocm_v1 for name in names)
    listed = any(name in rule.listed and not (rocm and name in rule.rocm_v1) for name in names)
    if rule.check == "v1":
        return False
    if rule.check == "dense_listed":
        return listed and not is_moe and not is_quantized
    if rule.check == "listed":
        return listed
    if rule.check == "not_hybrid":
        return not is_hybrid and not attention_free and (listed or not is_moe)
    if rule.check == "hybrid_listed":
        return not (is_hybrid and not listed) and not attention_free and (listed or not is_moe)
    return not rocm_v1


@dataclass(frozen=True)
class Runner:
    name: str  # "V1" | "V2"
    graphs_profiled: bool  # whether profile_cudagraph_memory measures a capture (else it returns 0)
    why: str
    encoder_profiled: bool = True  # whether profile_run runs a multimodal model's vision tower
    offloads: bool = True  # whether --cpu-offload-gb takes effect (V2 before 0.28 never installs the offloader)
    sampler_warmup: bool = False  # whether profile_run samples again with SamplingParams.for_sampler_warmup()
    pooling: bool = False  # the pooling runner (vllm_pooling.pooling_runner), which never samples
    model_state_sampler: bool = False  # profile_run asks the ModelState for its own dummy sampler pass first
    # (ModelState.dummy_sampler_run, 0.34.0 v1/worker/gpu/model_runner.py:1039-1042): DiffusionGemma's canvas pass


def model_properties(spec) -> tuple:
    """(is_moe, is_quantized, is_hybrid, is_attention_free) as vLLM's ModelConfig answers them: routed experts; a
    quantised checkpoint (or --quantization, module docstring); a state layer (Mamba, linear attention) beside
    attention layers (the model class's IsHybrid); no attention layer at all (IsAttentionFree)."""
    return (spec.experts > 0, checkpoint_format(spec) is not None,
            bool(spec.linear_layers) and bool(spec.attention_layers), not spec.attention_layers)


def is_rocm(gpu) -> bool:
    """An AMD GPU (its driver names in the catalog); None: a CUDA GPU."""
    return gpu is not None and any(name.startswith("AMD ") for name in gpu.device_names)


def cuda_capability(gpu) -> tuple:
    """The GPU's compute capability as the catalog gives it (catalog.GPU.compute_capability); () when unknown or no
    GPU is named."""
    return tuple(getattr(gpu, "compute_capability", ()) or ())


def model_runner(spec, rules, gpu, version: Optional[str] = None) -> Runner:
    """The runner vLLM `rules` (a vllm_versions.Behaviour; `version` the release, None: PINNED, for the pooling
    runner's modules.json rule) runs `spec` with on `gpu` (None: a CUDA GPU), and why."""
    from .vllm_pooling import pooling_runner

    pooled = pooling_runner(spec, version)
    return replace(_model_runner(spec, rules, gpu, pooled, version), pooling=pooled)


def _model_runner(spec, rules, gpu, pooled: bool, version: Optional[str]) -> Runner:
    from .vllm_config_read import registry_names

    rule = RULES[rules.runner]
    names = registry_names(spec)  # the top-level list, as uses_v2 says
    if rule.check not in ("v1", "v2") and pooled:  # V2 takes generating models only before 0.29
        return Runner("V1", True, "V1 (vllm/v1/worker/gpu_model_runner.py): V2 is the default for generating models "
                                  "only before 0.29 (VllmConfig._is_default_v2_model_runner_model, config/vllm.py "
                                  "0.22.0:523, 0.28.0:696), and this is a pooling model")
    # a diffusion model runs on V2 wherever the release has it (use_v2_model_runner: is_diffusion, config/vllm.py
    # 0.24.0:527-528, 0.28.0:645-646; V1 lists it unsupported, 0.32.0:2993-2994): DiffusionGemma from 0.24
    diffusion = bool(getattr(spec, "canvas_length", 0)) and rule.check != "v1"
    v2 = diffusion or uses_v2(rule, names, *model_properties(spec), rocm=is_rocm(gpu))
    unsupported = v2_unsupported_drafting(spec) if v2 and rule.has_v1 else ""
    if unsupported:
        return Runner("V1", True, f"V1 (vllm/v1/worker/gpu_model_runner.py): V2 has no {unsupported} "
                                  f"(VllmConfig._get_v2_model_runner_unsupported_features)")
    if not v2:
        named = " / ".join(name for name in names if name) or "this architecture"
        why = ("V1 (vllm/v1/worker/gpu_model_runner.py): " + ("this release has no V2 default" if rule.check == "v1"
                                                               else f"{named} is not a V2 default here "
                                                                    f"(VllmConfig.use_v2_model_runner)"))
        return Runner("V1", True, why)
    if rule.v2_profiles_graphs:
        return Runner("V2", True, "V2 (vllm/v1/worker/gpu/model_runner.py), which profiles graph capture",
                      rule.v2_profiles_encoder, rule.v2_offloads, rule.v2_sampler_warmup,
                      model_state_sampler=rule.v2_model_state_sampler)
    return Runner("V2", False, "V2 (vllm/v1/worker/gpu/model_runner.py), whose profile_cudagraph_memory returns 0 "
                               "before 0.29", rule.v2_profiles_encoder, rule.v2_offloads)


def v2_unsupported_drafting(spec) -> str:
    """What of `spec`'s speculative config Model Runner V2 lacks up to 0.33, in words ("" for none): suffix
    decoding (0.33 config/vllm.py:3066-3068) and parallel drafting (0.32 :2935-2942, 0.33 :3070-3077; DFlash and
    DSpark, which kvplan does not model, draft in parallel on V2)."""
    if draft_method(spec) == "suffix":
        return "suffix decoding"
    config = getattr(spec.draft, "config", None)
    return "parallel drafting" if getattr(config, "parallel_drafting", False) else ""


def draft_method(spec) -> str:
    """The --speculative-config method `spec` carries ("" without one)."""
    draft = getattr(spec.draft, "config", None)
    return draft.method if draft is not None else ""


def async_scheduling(spec, rules, runner: Runner) -> bool:
    """Whether vLLM `rules` turns async scheduling on by default for `spec` on `runner`: off for drafting on the CPU
    (ngram, suffix) up to 0.32 (config/vllm.py:1597-1610, whatever the runner), on V1 only in 0.33 (:1651-1666: the
    check moved under `not self.use_v2_model_runner`), never from 0.34 (:1610-1637 keep the pooling, executor and
    ROCm DeepEP conditions only); off for a pooling model from 0.20 (Behaviour.pooling_sync)."""
    if rules.pooling_sync and runner.pooling:  # off for pooling from 0.20 (vllm_pooling_budget.py)
        return False
    method = draft_method(spec)
    if not method or method in ASYNC_DRAFTING:
        return True
    keeps = RULES[rules.runner].cpu_drafting_async
    return keeps == "both" or (keeps == "v2" and runner.name == "V2")
