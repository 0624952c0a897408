"""A deployment as the engine serves it: its model read once per check() call, the spec as its weights and flags
make it, its engine (the release with the deployment's flags), its GPU, its budget and its plan; and the same
deployment under another release, for the remedies that name one."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Optional

from ...errors import FieldError, KvplanError, RefusedInput
from ...gpu.detect import choose_gpu
from ...model.quantization import apply_weight_precision, settings_file_method
from ...model.sources import ConfigObject, resolve
from ...model.spec import ModelSpec, identical
from ...engines import EngineFlags, get_engine
from ...engines.vllm_cache_flags import with_cache_flags
from ...engines.vllm_config_read import refuse_encoder_only
from ...engines.vllm_pooler_config import refuse_pooler_config
from ...engines.vllm_pooling import refuse_st_pooling
from ...engines.vllm_runner_flag import refuse_runner
from ...engines.vllm_speculative import served
from ...engines.vllm_v1_oracle import refuse_v0_unmodelled
from ...engines.vllm_versions import release_transformers
from ...plan.catalog import with_node_gpus
from ...plan.plan import plan
from ..deployments import Deployment, one_line
from ..estimate import budget_function


def read_model(dep: Deployment, resolved: dict) -> ModelSpec:
    """The deployment's model, read once per check() call: `resolved` (that call's, keyed by model, revision,
    settings file and the transformers the deployment's release installs, which fills the fields its config leaves
    out: vllm_versions.release_transformers) is shared by its deployments and their remedies under other releases,
    and a config.json edited between calls is read again. A model that is no text is resolve()'s to refuse, as
    estimate's is, not a key."""
    settings = settings_file_method(dep.quantization)
    if not isinstance(dep.model, (str, ConfigObject)):  # a config.json's object (the API's) is read as a path is
        return resolve(dep.model, dep.revision, quantization=settings)  # FieldError('model')
    try:
        version = get_engine(dep.engine).version
    except FieldError:  # a bad engine is said where the deployment's engine is read, after its model's errors
        version = None
    transformers = release_transformers(version)
    key = (dep.model, dep.revision, settings, transformers)
    if key not in resolved:
        resolved[key] = resolve(dep.model, dep.revision, quantization=settings, transformers=transformers)
    return resolved[key]


def spec_for(dep: Deployment, resolved: dict) -> ModelSpec:
    """The model as the deployment serves its weights: its dtype, then its quantization (as estimate's; awq / gptq
    also read the settings file vLLM reads beside a config.json with none: model/sources.py resolve)."""
    try:
        spec = with_cache_flags(replace(read_model(dep, resolved), runner=dep.runner, convert=dep.convert,
                                        pooler_config=dep.pooler_config), dep)  # as estimate's flags
        refuse_encoder_only(spec, get_engine(dep.engine).version)  # said on the model's line, as any model error
        refuse_v0_unmodelled(spec, get_engine(dep.engine).version)  # V0 kvplan does not model: not planned
        refuse_runner(spec, get_engine(dep.engine).version)  # a runner the class cannot do, as vLLM's ModelConfig
        refuse_pooler_config(spec, get_engine(dep.engine).version)  # a field or type the release refuses
        refuse_st_pooling(spec, get_engine(dep.engine).version)  # 0.11-0.13 stop on a Pooling module's config.json
    except KvplanError as exc:
        if dep.file is None or getattr(exc, "field", None) == "quantization":
            raise  # a refusal of the quantization key: check() says that key's line
        # a refused runner or pooler config: on its key, with the keys the file names (RefusedInput)
        key, said = (exc.field, exc.spelled()) if isinstance(exc, RefusedInput) and exc.field else ("model", exc)
        raise KvplanError(one_line(f"{dep.file}:{dep.line_of(key)}: deployment {dep.name!r} field '{key}': "
                                   f"{said}")) from None
    return apply_weight_precision(spec, dep.quantization, dep.dtype)  # FieldError: check() says the key's line


def device_for(dep: Deployment):
    """The deployment's GPU, with its gpu_memory and gpus_per_node in place of the catalog's (as estimate's
    --gpu-memory and --gpus-per-node)."""
    device = with_node_gpus(choose_gpu(dep.gpu), dep.gpus_per_node)
    return device if dep.gpu_memory is None else replace(device, memory_bytes=dep.gpu_memory)


def settings_for(dep: Deployment) -> dict:
    """plan()'s engine settings the deployment sets: its layer partition and batch limits (None: the engine's)."""
    return dict(pp_partition=dep.pp_layer_partition, max_num_seqs=dep.max_num_seqs,
                max_num_batched_tokens=dep.max_num_batched_tokens)


def device_and_budget(spec: ModelSpec, dep: Deployment):
    """budget_for(tp[, stage]) as plan() takes it: vLLM's budget of one GPU of each pipeline stage (its own
    layers and weights: embeddings on the first stage, the LM head on the last), or the deployment's kv_budget
    on every GPU."""
    device = device_for(dep)
    return device, budget_function(spec, engine=engine_for(dep), device=device, gpu_util=dep.gpu_util,
                                   context=dep.context, kv_budget=dep.kv_budget, gpu_memory=dep.gpu_memory,
                                   max_num_batched_tokens=dep.max_num_batched_tokens, max_num_seqs=dep.max_num_seqs,
                                   block_size=dep.block_size,
                                   asked_context=dep.fitted_from if dep.fitted_from != dep.context else None)


def engine_for(dep: Deployment):
    from ...engines import enable_eplb, eplb_spelled_off, ignored_lora
    from ...engines.vllm_dcp import check_tp
    from ..deployments import lora_settings

    check_tp(dep.dcp, (dep.tp,))  # -dcp dividing the deployment's TP degree
    balancer = enable_eplb(dep.enable_eplb, dep.eplb_config, dep.num_redundant_experts)
    adapters = lora_settings(vars(dep))
    ignored = ignored_lora(dep.enable_lora, dep.max_loras, dep.max_lora_rank, dep.lora_dtype, dep.fully_sharded_loras)
    return get_engine(dep.engine, EngineFlags(dep.enforce_eager, dep.skip_mm_profiling, dep.language_model_only,
                                              dep.limit_mm_per_prompt, dep.mm_encoder_tp_mode, dep.cpu_offload_gb,
                                              num_gpu_blocks_override=dep.num_gpu_blocks_override,
                                              speculative=dep.speculative_config, dp=dep.dp, dcp=dep.dcp,
                                              dcp_interleave=dep.dcp_interleave,
                                              dcp_comm_backend=dep.dcp_comm_backend,
                                              dcp_q_replicate=dep.dcp_q_replicate, pcp=dep.pcp,
                                              enable_expert_parallel=dep.enable_expert_parallel,
                                              mm_processor_kwargs=dep.mm_processor_kwargs, enable_eplb=balancer,
                                              eplb_spelled_off=eplb_spelled_off(dep.enable_eplb, dep.eplb_config,
                                                                                dep.num_redundant_experts),
                                              enable_lora=adapters, lora_ignored=ignored,
                                              pooler_config=dep.pooler_config,
                                              max_cudagraph_capture_size=dep.max_cudagraph_capture_size,
                                              cudagraph_capture_sizes=dep.cudagraph_capture_sizes,
                                              mamba_cache_dtype=dep.mamba_cache_dtype,
                                              mamba_ssm_cache_dtype=dep.mamba_ssm_cache_dtype,
                                              disable_sliding_window=dep.disable_sliding_window,
                                              enable_prefix_caching=dep.enable_prefix_caching,
                                              enable_chunked_prefill=dep.enable_chunked_prefill,
                                              mamba_block_size=dep.mamba_block_size, kv_budget=dep.kv_budget,
                                              compilation_config=dep.compilation_config,
                                              optimization_level=dep.optimization_level))


def other_engine(dep: Deployment, resolved: dict, planned: Optional[ModelSpec] = None):
    """plan()'s other_engine for `dep`: the deployment under another release (a remedy's), as check plans it;
    `resolved`: the check() call's models (read_model); `planned`: the spec the deployment itself is planned with."""
    built: list = [planned] if planned is not None else []  # the specs built so far: most releases serve it alike

    @lru_cache(maxsize=None)  # a remedy plans each release's range and the changes that fit at it
    def build(name: str, context: int):
        other = replace(dep, engine=name, context=context)
        spec = served(spec_for(other, resolved), engine_for(other), other.pp or 1)
        # an identical spec built for another release is that one, so that the memos keyed by a spec's identity
        # (plan._stage_specs, the engine's settings and stage-free budget terms) serve every release alike, as
        # estimate's one spec does
        spec = next((held for held in built if identical(held, spec)), spec)
        if not any(held is spec for held in built):
            built.append(spec)
        return (spec, engine_for(other), device_and_budget(spec, other)[1])
    return build


def plan_deployment(spec: ModelSpec, dep: Deployment, pp: int, device, budget_for):
    """The deployment's plan, nothing suggested, no speed."""
    return plan(spec, context=dep.context, kv_dtype=dep.kv_dtype, tp=dep.tp, budget_for=budget_for,
                block_size=dep.block_size, suggest=False, speed=False, engine=engine_for(dep), pp=pp, gpu=device,
                **settings_for(dep))
