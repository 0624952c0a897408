"""What estimate says of the same deployment, said by check on the key it speaks of: the cache flags' effects
(warnings), and the notes that explain a plan, its engine and its model (notices, which never fail or warn)."""

from __future__ import annotations

from ...errors import respelled
from ...model.spec import ModelSpec
from ...engines.vllm_cache_notes import cache_flag_notes
from ...engines.vllm_chunked_flag import chunked_notes
from ...engines.vllm_prefix_flag import only_confirms, prefix_notes
from ...engines.vllm_rope_len import rope_note
from ...plan.budget import prompt_limit
from ...plan.plan import prompt_limit_warning, release_of
from ...render.estimate import (concurrency_note, drafter_line, graph_reserve_note, lora_graphs_note, override_fix,
                                override_note, parallel_capacity, resident_line, v0_notes, vision_note,
                                weights_exceed)
from ..deployments import Deployment
from .served import engine_for, read_model


def cache_flag_findings(dep: Deployment, spec: ModelSpec, resolved: dict, spell) -> list:
    """(level, key, sentence) for each of the Mamba dtypes, --disable-sliding-window, --enable-prefix-caching and
    --mamba-block-size the deployment sets: estimate's notes (vllm_cache_notes.cache_flag_notes,
    vllm_prefix_flag.prefix_notes), each on the key it speaks of; a warning, but a notice where the note only
    confirms a prefix-caching flag that changes nothing planned (a `vllm serve` line spelling out the default)."""
    found = []
    if dep.mamba_cache_dtype or dep.mamba_ssm_cache_dtype or dep.disable_sliding_window:
        said = cache_flag_notes(read_model(dep, resolved), spec, dep, release_of(engine_for(dep)), spell)
        keys = ([next(k for k in ("mamba_cache_dtype", "mamba_ssm_cache_dtype") if getattr(dep, k))]
                if dep.mamba_cache_dtype or dep.mamba_ssm_cache_dtype else []) + \
            (["disable_sliding_window"] if dep.disable_sliding_window else [])
        found += (("warning", key, note) for key, note in zip(keys, said))
    # prefix_notes says the prefix-caching flag first, then the Mamba block, each only where given
    keys = [k for k in ("enable_prefix_caching", "mamba_block_size") if getattr(dep, k) is not None]
    release = release_of(engine_for(dep))
    confirms = only_confirms(spec, release, dep.enable_prefix_caching)
    found += (("notice" if key == "enable_prefix_caching" and confirms else "warning", key, note)
              for key, note in zip(keys, prefix_notes(spec, dep, release, spell)))
    said = chunked_notes(spec, dep, release) if release else ()  # vllm_chunked_flag.py; none for engine none
    return found + [("warning", "enable_chunked_prefill", note) for note in said]


def plan_notices(dep: Deployment, result, spell) -> list:
    """(key, sentence) for what estimate's footnotes explain of the same plan (render/estimate.py, the one render
    path): the requests held against vLLM's logged concurrency (else a max_num_seqs cap), the DP / EP ranks the
    figures are one of, a KV cache sized by num_gpu_blocks_override (and what it would take), a CUDA-graph reserve
    left out, LoRA's second graph capture, the vision tower's profile pass. `result`: the deployment's Plan, None
    where there is none to explain (sharding failed, vLLM refuses it, or it crashes)."""
    if result is None:
        return []
    capped = result.max_concurrency_limited_by == "max_num_seqs" and dep.max_num_seqs is not None
    eager = next((k for k in ("enforce_eager", "compilation_config", "optimization_level", "max_cudagraph_capture_size",
                              "cudagraph_capture_sizes")
                  if getattr(dep, k)), None)
    ranks = next((k for k in ("dp", "enable_expert_parallel", "enable_eplb", "eplb_config") if getattr(dep, k)), "dp")
    said = [("max_num_seqs" if capped else None, concurrency_note(result, spell) or resident_line(result, spell)),
            (ranks, parallel_capacity(result, spell) if result.parallel is not None else ""),
            ("num_gpu_blocks_override", override_note(result, spell).removeprefix("; ")),
            ("num_gpu_blocks_override", _override_fix(result, spell)),
            (eager, graph_reserve_note(result.budget)),
            ("enable_lora", lora_graphs_note(result.budget).removeprefix("; ")),
            (None, vision_note(result.budget, spell).removeprefix("; "))]
    return [(key, respelled(text, BUDGET_FLAGS, spell)) for key, text in said if text]


# the flags the budget terms' own sources name as the command line writes them (engines/vllm_budget.py; the graph
# term's cause, engines/vllm_graphs_off.graphs_off_cause: "stock torch.compile (--compilation-config mode 1)"); the
# notes render/estimate.py words (vision_note, override_note) spell theirs through the caller already
BUDGET_FLAGS = (("enforce_eager", "--enforce-eager"), ("compilation_config", "--compilation-config"),
                ("optimization_level", "--optimization-level"))


def _override_fix(result, spell) -> str:
    """What num_gpu_blocks_override would have to be where it alone keeps every request out (estimate's footnote,
    render/estimate.py override_fix); '' otherwise."""
    blocked = not result.fits and not weights_exceed(result) and override_note(result)
    return override_fix(result, spell) if blocked else ""


def engine_notices(dep: Deployment, result, spell) -> list:
    """(key, sentence) for estimate's notes on the engine that serves the plan, refused or not: the GPUs of one engine
    core under -pcp (tp x pp x pcp, Plan.core_gpus; with -dp parallel_capacity says it), and the V0 fallback of a
    release from 0.8 (render/estimate.py v0_notes). `result`: the deployment's Plan, None where sharding failed."""
    if result is None:
        return []
    said = [("engine", note) for note in v0_notes([result])]
    if dep.pcp and result.parallel is None:
        said.insert(0, ("pcp", f"{spell('pcp')} {dep.pcp}: one engine core is tp {dep.tp} x pp {dep.pp or 1} x pcp "
                               f"{dep.pcp} = {result.core_gpus} GPUs (vLLM's world size), the figures each GPU's"))
    return said


def spec_notices(spec: ModelSpec, spell) -> list:
    """(key, sentence) for estimate's notes on the model as served that explain a setting: the length vLLM derives
    from a RoPE scaling (vllm_rope_len.rope_note), the drafter's memory (render/estimate.py drafter_line)."""
    said = [("context", rope_note(spec)),
            ("speculative_config", drafter_line(spec, spell) if spec.draft is not None else "")]
    return [(key, text) for key, text in said if text]


def prompt_limit_note(spec: ModelSpec, dep: Deployment, device, spell) -> str:
    """plan()'s warning where the engine serves no prompt of the whole length (plan.prompt_limit_warning), "" where
    it does."""
    engine = engine_for(dep)
    limit = prompt_limit(engine, spec, device, dep.context, dep.pp or 1, dep.max_num_batched_tokens,
                         dep.max_num_seqs, dep.kv_dtype)
    return prompt_limit_warning(engine, limit, dep.context, spell)


def asked_eight_bits_kept(result) -> bool:
    """An fp8 cache asked and an fp8 one kept in the engine's own layout (DeepSeek-V3.2 / V4's fp8_ds_mla): the
    deployment gets the 8-bit cache it asked for, so check has nothing to warn of (estimate still says it)."""
    kept = result.engine.kv_cache_dtype if result.engine else ""
    return str(result.kv_dtype).startswith("fp8") and str(kept).startswith("fp8")
