"""Which hybrids vLLM keeps Mamba states for in "all" mode (a state every block) with prefix caching on, by release:
the rule vllm_settings.py (with_model_defaults), vllm.py (layer_specs) and vllm_prefix_flag.py read."""

from __future__ import annotations

from .vllm_registry import served_architecture
from .vllm_versions import in_span, parse_version

# Hybrid classes that implement SupportsMambaPrefixCaching (model_executor/models/*.py 0.11.1-0.25.1: bamba.py (to
# 0.25.0), falcon_h1.py, granitemoehybrid.py, jamba.py, nemotron_h.py, zamba2.py). With prefix caching on, the others
# have it turned off again in 0.11.1-0.14.x (MambaModelConfig, models/config.py 0.11.1:293-305), run "align" in
# 0.15.0-0.27.x and these "all" (0.15.0:332-347), from 0.28 every class "align" (0.28.0:602-609). In 0.11.1-0.14.x,
# before mamba_cache_mode, these keep prefix caching on and the hybrid block takes the same "all" branch
# (models/config.py 0.11.1:394-415, 0.14.1 the same under `if cache_config.enable_prefix_caching`), and MambaSpec
# keeps cdiv(max_model_len, mamba_block_size) states a request whatever the mode (v1/kv_cache_interface.py
# 0.11.1:261-263, 0.14.1:292-294). "all" mode: vllm_specs.mamba_all_blocks, CacheSpec.all_mode.
# vLLM asks the class the registry resolves the architecture to (supports_mamba_prefix_caching(model), registry.py
# 0.14.1:594), so the table names architectures by that class: JambaForSequenceClassification subclasses
# JambaForCausalLM (jamba.py 0.14.1:576, 0.20.0:584) and NemotronHPuzzleForCausalLM resolves to NemotronHForCausalLM
# (registry.py 0.16.0:168, 0.20.0:177).
MAMBA_PREFIX_CLASSES = frozenset({"BambaForCausalLM", "FalconH1ForCausalLM", "GraniteMoeHybridForCausalLM",
                                  "JambaForCausalLM", "JambaForSequenceClassification", "NemotronHForCausalLM",
                                  "NemotronHPuzzleForCausalLM", "Zamba2ForCausalLM"})
MAMBA_ALL_MODE = ((0, 11, 1), (0, 28))  # [from, before): releases whose MAMBA_PREFIX_CLASSES keep one state a block
# MambaManager frees a request's states behind the newest (get_num_skipped_tokens = computed - 1) from 0.14
# (v1/core/single_type_kv_cache_manager.py 0.14.0:830-834, 0.20.0:1044, 0.27.1:1673); before, it skips none (the
# base class's 0, 0.13.0 :290-301), so a request holds every state block it was given until it ends.
MAMBA_FREES_STATES_SINCE = (0, 14)


def _is_hybrid(spec) -> bool:
    states = len(spec.linear_layers)
    return 0 < states < len(spec.layers)


def _mamba_prefix_class(spec, version: str) -> bool:
    return served_architecture(spec, version) in MAMBA_PREFIX_CLASSES


def mamba_all_mode(spec, version: str, prefix_caching: bool) -> str:
    """How vLLM `version` keeps `spec`'s Mamba states in "all" mode (CacheSpec.all_mode), "" where it does not: a
    hybrid of MAMBA_PREFIX_CLASSES with prefix caching on (`prefix_caching`: with_model_defaults' settings) in
    MAMBA_ALL_MODE: a pooling runner's, a --pooler-config's (vllm_settings.HYBRID_PREFIX_RULES) or
    --enable-prefix-caching's (vllm_prefix_flag.py); "frees" from 0.14,
    else "keeps" (MAMBA_FREES_STATES_SINCE)."""
    if not (prefix_caching and in_span(version, MAMBA_ALL_MODE) and _is_hybrid(spec)
            and _mamba_prefix_class(spec, version)):
        return ""
    return "frees" if parse_version(version) >= MAMBA_FREES_STATES_SINCE else "keeps"
