"""vLLM's breakable CUDA graphs: the architectures they are on for by default, by release, and the graph mode they
leave.

Breakable graphs capture the PIECEWISE graphs without torch.compile: one stream capture over the whole forward,
broken at the attention / KV-cache ops, which run eagerly in between (compilation/breakable_cudagraph.py 0.34.0:1-21).
When on, VllmConfig sets the compilation mode NONE (config/vllm.py 0.22.0:1047-1052, 0.28.0:1343-1345, 0.32.0:839,
0.34.0:831-833) and skips the rule that drops piecewise graphs without VLLM_COMPILE (NONE up to 0.29: 0.22.0:1119-1129,
0.28.0:1417-1427; without_piecewise from 0.30: 0.30.0:1010-1030, 0.32.0:1077-1097, 0.34.0:1050-1070), and the start-up
assert that a piecewise mode has VLLM_COMPILE passes (0.22.0:1357, 0.32.0:2097, 0.34.0:2083). So the graph mode is
the one -O / --compilation-config give, FULL_AND_PIECEWISE by default, whatever the compilation mode.

What that changes for kvplan: with vLLM's default compilation (none given), nothing. The mode stays
FULL_AND_PIECEWISE, the same sizes are captured (the V2 runner's graph profile captures the breakable PIECEWISE graphs
as it would the compiled ones and measures them alike: v1/worker/gpu/cudagraph_utils.py 0.34.0:456-550, 989-1068),
so the graph term, its single figure (vllm_budget.graph_bytes), stays and verify still captures. kvplan's profile
peak has no compiled-forward term, so running the profile forward eagerly moves no byte it counts either. The
difference is where a compilation mode below VLLM_COMPILE is given (-cc '{"mode": "NONE"}'): without breakable
graphs 0.13-0.29 turn the piecewise modes NONE (no graph, no graph term from 0.20) and 0.30+ PIECEWISE NONE and
FULL_AND_PIECEWISE FULL_DECODE_ONLY (vllm_compilation.resolve); with them the mode given stays
(EngineFlags.breakable_cudagraph_mode), and a full mode kept below VLLM_COMPILE no longer trips the assert
(vllm_level_assert.downgrade_refusal). The empty splitting_ops / fuse_attn_quant rule, which acts under
VLLM_COMPILE alone (vllm_splitting_ops.py), leaves that mode too.

When they are on, as kvplan models it: the model's architecture in the release's default set on that platform,
the inline lists of 0.23-0.28 (config/vllm.py 0.23.0:1074-1080, 0.24.0:1081-1093, 0.25.0:1115-1127, 0.26.0:
1182-1196, 0.27.0:1213-1230, 0.28.0:1316-1333; any platform), DEFAULT_BREAKABLE_CUDAGRAPH_ARCHITECTURES from 0.29
(0.29.0:75, 0.30.0:77, 0.31.0:79, 0.32.0:74, 0.33.0:76, 0.34.0:99-134) with default_breakable_cudagraph_architectures'
ROCm set (0.29.0:98-110: the list less DeepSeek-V3.2; 0.30.0:108-120 to 0.33.0:113-125: DeepseekV41ForCausalLM
alone; 0.34.0:138-158: that and HYV4) and, on CUDA in 0.34, Qwen3.5 (_QWEN3_5_ARCHITECTURES, 0.34.0:88-97,
:154-157). 0.23-0.33 read model_config.architectures (the top-level config's); 0.34 adds hf_text_config's
(0.34.0:764-773). 0.22 has no default set (0.22.0:1047 reads the environment alone), so no 0.22 plan has them.

What kvplan does not read: the serving host's environment. VLLM_USE_BREAKABLE_CUDAGRAPH, where set there, wins
over the architecture (0.34.0:811-812; on only for "1", envs.py 0.34.0:821-823), and VLLM_BATCH_INVARIANT=1 with a
tuned bf16 matmul shape turns them on too (0.34.0:775-808, 817-828); a plan is a function of its flags alone (the
machine kvplan runs on is not the serving host), so the graph term says the opt-out instead (graph_words). The
CompilationConfig field use_breakable_cudagraph (0.34) is no input either: VllmConfig overwrites it (0.34.0:830).
"""

from __future__ import annotations

from dataclasses import replace

ENV = "VLLM_USE_BREAKABLE_CUDAGRAPH"
TEXT_CONFIG_SINCE = (0, 34)  # hf_text_config's architectures read too

_V23 = frozenset({"DeepseekV4ForCausalLM", "DeepSeekV4MTPModel"})
_V24 = _V23 | {"MiniMaxM3SparseForCausalLM", "MiniMaxM3SparseForConditionalGeneration"}
_V26 = _V24 | {"InklingForCausalLM", "InklingForConditionalGeneration"}
_V27 = _V26 | {"KimiK3ForConditionalGeneration", "KimiK3MTPModel", "KimiLinearForCausalLM"}
_V32_PAIR = frozenset({"DeepseekV32ForCausalLM", "DeepseekV32MTPModel"})
_V29 = _V27 | _V32_PAIR | {"Dots3NoteForCausalLM", "Dots3NoteMTPModel", "GlmMoeDsaForCausalLM", "HYV4ForCausalLM",
                           "HYV4MTPModel"}
_V30 = _V29 | {"DeepseekV41ForCausalLM", "DeepseekV4ForConditionalGeneration", "Glm5NextForCausalLM",
               "Glm5NextForConditionalGeneration", "Glm5NextMTPModel", "Qwen4ExpForCausalLM",
               "Qwen4ExpForConditionalGeneration", "Qwen4ExpMTP"}
_V33 = _V30 | {"AliceAIForCausalLM", "BeamForCausalLM", "MuseSpark1xForCausalLM",
               "MuseSparkForConditionalGeneration", "Step5ForCausalLM", "Step5ForConditionalGeneration"}
_V34 = (_V33 - {"MuseSpark1xForCausalLM"}) | {"KimiK31ForConditionalGeneration", "MistralLarge4ForCausalLM",
                                              "MuseSparkForCausalLM"}
_QWEN3_5 = frozenset({"Qwen3_5ForCausalLM", "Qwen3_5ForConditionalGeneration", "Qwen3_5MTP", "Qwen3_5MoeForCausalLM",
                      "Qwen3_5MoeForConditionalGeneration", "Qwen3_5MoeMTP"})
# (first release, the CUDA set, the ROCm set), newest first
DEFAULTS = (
    ((0, 34), _V34 | _QWEN3_5, frozenset({"DeepseekV41ForCausalLM", "HYV4ForCausalLM", "HYV4MTPModel"})),
    ((0, 33), _V33, frozenset({"DeepseekV41ForCausalLM"})),
    ((0, 30), _V30, frozenset({"DeepseekV41ForCausalLM"})),
    ((0, 29), _V29, _V29 - _V32_PAIR),
    ((0, 27), _V27, _V27),
    ((0, 26), _V26, _V26),
    ((0, 24), _V24, _V24),
    ((0, 23), _V23, _V23),
)


def default_architectures(release: tuple, rocm: bool = False) -> frozenset:
    """The architectures vLLM `release` turns breakable graphs on for by default (module docstring)."""
    for since, cuda, amd in DEFAULTS:
        if release >= since:
            return amd if rocm else cuda
    return frozenset()


def _architectures(spec, release: tuple) -> set:
    """The names `release` checks: model_config.architectures, the top-level config's list (ModelSpec.architectures
    where it names several, registered_architecture where a nested config names another class, else architecture),
    and from 0.34 hf_text_config's own (language_architectures where several, architecture where it names one other
    than the top-level's). A wrapper's nested name is not the top-level's before 0.34."""
    registered = getattr(spec, "registered_architecture", "") or ""
    names = set(getattr(spec, "architectures", ()) or ()) or {registered or getattr(spec, "architecture", "") or ""}
    if release >= TEXT_CONFIG_SINCE:
        names |= set(getattr(spec, "language_architectures", ()) or ()) or (
            {getattr(spec, "architecture", "") or ""} if registered else set())
    return names - {""}


def listed(spec, version: str, rocm: bool = False) -> tuple:
    """The names of `spec` vLLM `version` finds in its default set (sorted; () where breakable graphs stay off)."""
    from .vllm_versions import parse_version

    release = parse_version(version)
    return tuple(sorted(_architectures(spec, release) & default_architectures(release, rocm)))


def enabled(spec, version: str, rocm: bool = False) -> bool:
    """Whether vLLM `version` runs `spec` with breakable graphs by default (module docstring)."""
    return bool(listed(spec, version, rocm))


def why(names: tuple) -> str:
    """Why breakable graphs are on, in words for the graph term (`names`: listed's): the default, and the opt-out
    kvplan cannot see."""
    return (f"on by default for {', '.join(names)}; {ENV}=0 on the serving host opts out, which kvplan does not "
            f"read")


def graph_view(flags, spec, version: str, rocm: bool = False):
    """`flags` (engines.EngineFlags, resolved by with_compilation) as vLLM `version` reads their graphs for `spec`:
    where breakable graphs are on, cudagraph_mode is the one given (no compile-mode downgrade), no full mode trips the
    assert, and `breakable` says why; otherwise `flags` themselves. Made afresh each call (a few microseconds); the
    engine keeps one view per (spec, GPU) for the budget's identity-keyed memos (VllmEngine.graph_flags)."""
    names = () if spec is None else listed(spec, version, rocm)
    if not names:
        return flags
    return replace(flags, cudagraph_mode=flags.breakable_cudagraph_mode, full_below_compile=None,
                   breakable=why(names), cudagraph_mode_why=flags.breakable_mode_why)


def graph_words(flags) -> str:
    """What the graph term's source adds where breakable graphs are on (`flags`: a graph_view), else ""."""
    if not flags.breakable or flags.graphs_off:
        return ""
    return (f"; breakable CUDA graphs ({flags.breakable}): compilation mode NONE, the PIECEWISE graphs captured "
            f"without torch.compile (config/vllm.py _maybe_enable_breakable_cudagraph)")
