"""Which releases run a model with Mamba / linear-attention state on vLLM's V0 engine by default, where kvplan's
rules (V1's hybrid cache: MambaSpec pages beside attention, vllm_mamba_state.py) are not what vLLM does, so kvplan
refuses to plan the release asked for, in one line (v0_state_unmodelled: RefusedInput, exit 2, for vLLM does start
there), and a remedy never names it (v0_state_refusal among the configuration's refusals).

EngineArgs._is_v1_supported_oracle (engine/arg_utils.py), asked as the engine config is created, right after
ModelConfig (the architecture, the length, the dtype and the quantisation are read first):
- 0.8-0.9.1: every class with inner state (HasInnerState: Mamba, Mamba-2, the hybrids, MiniMax's lightning
  attention) is also SupportsV0Only, so `not model_config.is_v1_compatible` falls back to V0, or raises with
  VLLM_USE_V1=1 (0.8.0:1518-1519, 0.9.0:1300-1302, 0.9.1:1354; the classes in model_executor/models/*.py 0.8.0,
  0.9.0 and 0.9.1: bamba.py, falcon_h1.py, granitemoehybrid.py, jamba.py, mamba.py, mamba2.py, minimax_text_01.py,
  nemotron_h.py (0.9.1), plamo2.py, zamba2.py).
- 0.9.2-0.10.1: `model_config.has_inner_state and _warn_or_fallback(feature_name="Mamba")` ("V1 mamba models are
  unoptimized", 0.9.2:1402-1404, 0.10.0:1375-1377, 0.10.1:1428-1430): V0 unless VLLM_USE_V1=1 is set
  (_warn_or_fallback, 0.10.0:1693-1705: "Mamba is experimental on VLLM_USE_V1=1. Falling back to V0 Engine.");
  SupportsV0Only classes (jamba.py and mamba.py to 0.10.0, minimax_text_01.py to 0.10.0, plamo2.py to 0.10.1,
  phi4flash.py) refuse even that.
- 0.10.2: the Mamba fallback is gone (0.10.2:1479-1490 keeps only is_v1_compatible); Phi4FlashForCausalLM stays
  SupportsV0Only (phi4flash.py 0.10.2:598) until V0 is removed with it in 0.11.
kvplan models vLLM's default, VLLM_USE_V1 unset, and does not model V0's state cache (MambaCacheManager's
max_num_seqs slots, allocated in the profile's first forward, and V0's attention-only block count), so it does not
plan these releases. Up to 0.7 kvplan's own era "v0" (vllm_versions.py) plans these models as before.
"""

from __future__ import annotations

from typing import Optional

from .vllm_registry import served_architecture
from .vllm_versions import parse_version

V0_STATE_RELEASES = ((0, 8), (0, 10, 2))  # [from, before): inner state runs V0 by default (module docstring)
# SupportsV0Only past those releases: the class and the first release without V0 (phi4flash.py 0.10.2:598; the
# class leaves the registry in 0.11: vllm_registry.py RETIRED)
V0_ONLY_CLASSES = {"Phi4FlashForCausalLM": (0, 11)}
V1_STATE_SINCE = "0.10.2"  # the first release that runs inner state on V1 by default


def runs_v0(spec, version: str) -> bool:
    """Whether vLLM `version` serves `spec` on its V0 engine by default for the state its layers keep (module
    docstring); only for releases from 0.8, where kvplan's rules are V1's."""
    release = parse_version(version)
    first, before = V0_STATE_RELEASES
    if release < first:
        return False
    architecture = served_architecture(spec, version)
    if architecture in V0_ONLY_CLASSES:
        return release < V0_ONLY_CLASSES[architecture]
    return bool(spec.linear_layers) and release < before


def v0_state_refusal(spec, version: str):
    """kvplan's refusal of a release that serves `spec`'s Mamba / linear-attention states on V0 (runs_v0), naming
    the release to take (field engine); None where vLLM `version` runs it on V1."""
    from .figures import Refusal

    if not runs_v0(spec, version):
        return None
    architecture = served_architecture(spec, version)
    if architecture in V0_ONLY_CLASSES:
        return Refusal(f"vLLM {version} serves {architecture} on its V0 engine only (SupportsV0Only); kvplan models "
                       "V1's cache only and no release serves it on V1.", None, configuration=True, field="engine")
    return Refusal(f"vLLM {version} serves {architecture}'s Mamba / linear-attention state on its V0 engine by "
                   f"default (engine/arg_utils.py _is_v1_supported_oracle), which kvplan does not model; "
                   f"vllm=={V1_STATE_SINCE} on runs it on V1.", None, configuration=True, field="engine",
                   options=(f"vllm=={V1_STATE_SINCE}",), onward="newer")


def v0_state_unmodelled(spec, version: str) -> None:
    """Raise RefusedInput (field engine) where vLLM `version` serves `spec`'s Mamba / linear-attention states on V0
    (runs_v0), asked for by --engine: vLLM starts there, on an engine whose state cache kvplan does not model, so
    kvplan plans nothing rather than a V1 plan or a refusal vLLM never makes; it names the first release that runs the
    model on V1. A release whose registry does not list the architecture refuses it first (the engine's refusal to
    say). v0_state_refusal stays in the configuration's refusals, so that a remedy never names such a release."""
    from ..errors import RefusedInput
    from .vllm_config_read import architectures_refusal, registry_names

    if version is None or not runs_v0(spec, version) or architectures_refusal(registry_names(spec), version):
        return
    architecture = served_architecture(spec, version)
    if architecture in V0_ONLY_CLASSES:
        raise RefusedInput(f"vLLM {version} serves {architecture} on its V0 engine only (SupportsV0Only), whose "
                           "state cache kvplan does not model, and no release serves it on V1; --engine takes a "
                           "release kvplan can plan it on only where one exists.", field="engine")
    raise RefusedInput(f"vLLM {version} serves {architecture}'s Mamba / linear-attention state on its V0 engine by "
                       f"default (engine/arg_utils.py _is_v1_supported_oracle), whose state cache kvplan does not "
                       f"model; plan it with --engine vllm=={V1_STATE_SINCE} or newer, which run it on V1.",
                       field="engine")
