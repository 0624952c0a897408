"""`kvplan verify`: prove a plan on the local GPU by building one TP rank of it.

What it does, in order (the GPU work lives in kvplan/gpu/, the pure parts in kvplan/verify/):

1. Detect the GPU (NVML), plan with kvplan's planner on its real memory, and build one TP rank of the model:
   dummy weights of the real shapes and stored precision, the forward pass of its architecture.
2. Measure the budget terms instead of holding them: the weights, the profile run's activation peak, memory
   outside torch's allocator, the decode CUDA graphs, NCCL (a real TP group); set each beside its prediction.
3. Size the paged KV pools from what is really left, allocate them, and prove the boundary with a block
   allocator: the pools' sequences admitted, one more refused.
4. Time the decode step (CUDA graph of the whole forward) at batch 1 and at max concurrency, and one prefill.
5. Judge (kvplan/verify/judge.py).

With --tp N and N GPUs, one process per GPU runs its rank (kvplan/gpu/tp.py); with fewer, one rank is
simulated and said to be. --engine vllm==X.Y.Z judges that vLLM release's plan (its defaults, budget terms and
sizing: verify/terms.py; 0.34 sizes the cache from the memory measured after warmup), the model's omitted config
fields filled as the transformers that release installs fills them (the spec and the forward's shapes alike).

The engine flags that change the plan and that the GPU run can honour are taken as estimate takes them (parsed by
the same functions, carried as engines.EngineFlags on gpu/rank.py Options): --enforce-eager (no graph term, no
decode graphs captured, decode timed eagerly), --max-cudagraph-capture-size / --cudagraph-capture-sizes (the sizes
captured), --compilation-config / -cc and -O / --optimization-level (resolved for the release judged as estimate
resolves them, engines/vllm_compilation.py; see gpu/rank.py graph_flags for what each cudagraph_mode does here),
--enable-prefix-caching / --no-enable-prefix-caching and --mamba-block-size (a hybrid's blocks), and
--disable-sliding-window (the spec's sliding layers full, so the forward's too), and the Mamba state dtypes (the
pools in the engine's dtypes), refused where they would split a state verify's forward holds in one tensor
(refuse_state_dtypes).

Bad input is refused before the CUDA probe wherever no GPU would change it: the flags and the model's own checks
first, then the plan verify makes once it has the GPU, worked out on the catalog's CUDA GPUs (verify/stand_in.py:
a refusal every one meets in the same words is said, in estimate's words, on a machine without a GPU too; one whose
words depend on the GPU waits for it). A valid run pays for one stand-in's plan (milliseconds).

Nothing here imports torch or pynvml: `kvplan estimate` never pays for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..engines import ENGINE_NAMES, EngineFlags, get_engine
from ..engines.vllm_cache_flags import with_cache_flags
from ..engines.vllm_config_read import config_read_refusal, model_length_refusal, refuse_encoder_only
from ..engines.vllm_v1_oracle import refuse_v0_unmodelled
from ..engines.vllm_graphs import refuse_capture_flags
from ..engines.vllm_kv_dtype import release_view, unviewed
from ..engines.vllm_pooling import pooling_runner
from ..engines.vllm_rope_len import rope_view
from ..engines.vllm_premla import ALWAYS_PER_HEAD, caches_per_head, latent_since
from ..engines.vllm_releases import SPAN
from ..engines.vllm_versions import release_transformers
from ..errors import FieldError, quote
from ..render import VERIFY_FORMATS
from ..units import switches
from ..model.sources import resolve
from ..plan.plan import KEEPS_ROOM, default_prompt, no_prompt_words
from ..plan.sharding import shard
from ..units import require_fraction, require_positive
from ..verify.arch import architecture
from ..verify.layout import TORCH_DTYPES, kernel_kv_dtype
from ..verify.planned import Options
from ..verify.progress import Progress
from ..verify.shards import rank_weights
from ..verify.stand_in import any_gpu_refusal, refuse_on_every_gpu

KERNEL_BLOCK_SIZES = (8, 16, 32, 64, 128)


@dataclass(frozen=True)
class VerifyResult:
    """A verify run's result dict: a fresh run's, or one recorded by an earlier kvplan, read under today's field
    names (verify/recorded.py, which also decides what a field it lacks renders as)."""

    result: dict
    view = "verify"
    formats = VERIFY_FORMATS

    def __post_init__(self):
        from ..verify.recorded import current

        object.__setattr__(self, "result", current(self.result))

    @property
    def ok(self) -> bool:
        return self.result["verdict"]["ok"]

    def to_dict(self) -> dict:
        return self.result

    def rows(self) -> list:
        from ..verify.rows import verify_rows

        return verify_rows(self.result)


def check_options(tp: int, context: Optional[int], gpu_util: Optional[float], block_size: Optional[int],
                  max_num_seqs: Optional[int] = None, max_num_batched_tokens: Optional[int] = None) -> None:
    require_positive("tp", tp)
    if context is not None:  # None: verify_length's default
        require_positive("context", context)
    if gpu_util is not None:
        require_fraction("gpu_util", gpu_util)
    for field, value in (("max_num_seqs", max_num_seqs), ("max_num_batched_tokens", max_num_batched_tokens)):
        if value is not None:
            require_positive(field, value)
    if max_num_seqs is not None and max_num_batched_tokens is not None and max_num_batched_tokens < max_num_seqs:
        from ..engines.vllm_settings import more_seqs_than_tokens

        raise more_seqs_than_tokens(max_num_seqs, max_num_batched_tokens, None)  # as estimate refuses it, before torch
    if block_size is not None and block_size not in KERNEL_BLOCK_SIZES:
        raise FieldError("block_size", f"must be one of {', '.join(map(str, KERNEL_BLOCK_SIZES))} for verify (the "
                                       f"block sizes the bundled kernel reads), got {block_size}.")


VERIFY_ENGINES = f"verify takes vllm (vLLM 0.32.0) or vllm==<release> (another vLLM release, {SPAN})"


def verify_engine(name) -> str:
    """The engine release verify judges, spelled as --engine takes it (vllm==X.Y.Z), checked as get_engine checks
    it; the ideal engine ("none") is refused: it has no budget terms to measure. Before torch loads."""
    text = str(name).strip().lower()
    if text != "vllm" and not text.startswith("vllm=="):
        why = ("has no engine budget to judge (verify measures the terms a vLLM release subtracts)"
               if text in ENGINE_NAMES else "is not an engine kvplan models")
        raise FieldError("engine", f"{quote(name)} {why}; {VERIFY_ENGINES}.")
    return f"vllm=={get_engine(text).version}"


VERIFY_CONTEXT = 8192  # verify's max model length where none is given (vLLM's default, the model's own, may be 1M)


def verify_length(spec, context: Optional[int]) -> int:
    """The max model length verify runs: the one given, else VERIFY_CONTEXT, or the model's own maximum where vLLM
    would refuse VERIFY_CONTEXT as longer (Llama 2's 4,096; a window --disable-sliding-window caps it to): a run
    given no length must not be refused for one. `spec` as the release views it (release_view: RoPE factors)."""
    if context is not None:
        return context
    refusal = model_length_refusal(spec, VERIFY_CONTEXT)
    return VERIFY_CONTEXT if refusal is None else refusal.estimated_max_model_len


def refuse_config_read(spec, context: int, engine, *, kv_dtype: str, block_size: Optional[int], tp: int) -> None:
    """vLLM's refusals of the configuration met before any GPU is read (engines/vllm_config_read.py
    config_read_refusal: the architecture, the length), named before torch as estimate plans them, with the values
    the release accepts instead (its own fix search, unplanned: whether those hold a request is the GPU's to say)."""
    refusal = config_read_refusal(spec, context, engine.version)
    if refusal is not None:
        raise any_gpu_refusal(spec, refusal, engine, context=context, kv_dtype=kv_dtype, block_size=block_size,
                              tp=tp, given={"context": context, "engine": f"vllm=={engine.version}"})


def refuse_no_prompt(spec, context: int, version: str) -> None:
    """Verify times a prompt (TTFT): a max model length at which the release serves none (1, where it keeps room
    for one output token: plan.default_prompt) is refused before torch."""
    if not default_prompt(context, spec, version).tokens:
        raise FieldError("context", f"({context:,}) leaves no prompt to time: vLLM {version} {KEEPS_ROOM}, so "
                                    f"{no_prompt_words()}.")


def refuse_per_head_mla(spec, version: str) -> None:
    """A release that caches an MLA model's every head's K and V (engines/vllm_premla.py: MiniCPM3 always, DeepSeek
    before 0.7.3) plans a cache verify's forward does not build: its MLA layers cache the latent (gpu/mixers.py
    MLAttention), and its paged kernels take no head size 96 or 192 (kernels/limits.py HEAD_DIMS). Refused before
    torch rather than measured against another cache."""
    if not caches_per_head(spec, version):
        return
    if spec.model_type in ALWAYS_PER_HEAD:
        raise FieldError("model", f"{quote(spec.name)}: vLLM {version} {_per_head_words('its MLA layers')}.")
    layers = f"the MLA layers of {quote(spec.name)}"
    first = latent_since(spec)  # 0.7.1, or 0.7.3 where the checkpoint's quantization keeps use_mla off before it
    raise FieldError("engine", f"vllm=={version} {_per_head_words(layers)}; verify it with --engine vllm=={first} or "
                               f"newer, the first release that caches this checkpoint's latent, which verify builds.")


def _per_head_words(layers: str) -> str:
    return (f"caches every head's K and V of {layers} (engines/vllm_premla.py), while verify's forward "
            f"builds MLA layers that cache the latent, so it would not measure the cache planned; `kvplan estimate` "
            f"plans it")


def refuse_pooling(spec, version: str) -> None:
    """verify builds a generating model's rank (its LM head, a sampler pass, decode steps); a model vLLM serves with its
    pooling runner has none of them (engines/vllm_pooling_budget.py: no LM head, a pooler pass), so its plan is not
    one verify can measure: refused before torch."""
    if pooling_runner(spec, version):
        raise FieldError("model", f"{quote(spec.name)} runs on vLLM {version}'s pooling runner (embedding, "
                                  f"classification or reward), which verify does not build: it measures a generating "
                                  f"model's LM head, sampler pass and decode steps; `kvplan estimate` plans it.")


def verify(model: str, *, tp: int = 1, context: Optional[int] = None, kv_dtype: str = "auto",
           gpu_util: Optional[float] = None, block_size: Optional[int] = None, max_num_seqs: Optional[int] = None,
           max_num_batched_tokens: Optional[int] = None, revision: Optional[str] = None,
           progress: Optional[Progress] = None, engine: str = "vllm", enforce_eager: bool = False,
           max_cudagraph_capture_size=None, cudagraph_capture_sizes=None,
           enable_prefix_caching: Optional[bool] = None, mamba_block_size=None, disable_sliding_window: bool = False,
           mamba_cache_dtype: Optional[str] = None, mamba_ssm_cache_dtype: Optional[str] = None,
           compilation_config=None, optimization_level=None,
           enable_chunked_prefill: Optional[bool] = None) -> VerifyResult:
    """Everything `kvplan verify` does. Every GPU tensor it makes is released before it returns, raises or is
    interrupted. None means the engine's default (vLLM's, for this GPU); `engine`: the vLLM release whose plan is
    judged (vllm: 0.32.0, vllm==X.Y.Z); `context` None: verify_length's; the engine flags as vLLM's keywords, taken
    as kvplan.api.estimate takes them (verify_flags)."""
    check_options(tp, context, gpu_util, block_size, max_num_seqs, max_num_batched_tokens)
    flags = verify_flags(enforce_eager, max_cudagraph_capture_size, cudagraph_capture_sizes, enable_prefix_caching,
                         mamba_block_size, disable_sliding_window, mamba_cache_dtype, mamba_ssm_cache_dtype,
                         compilation_config, optimization_level, enable_chunked_prefill, engine=engine)
    release = verify_engine(engine)
    # the release's own refusals of the flags (engines/vllm_engine.py), the compilation config's among them
    engine_model = get_engine(release, flags)
    version = engine_model.version
    refuse_capture_flags(engine_model.flags, version, max_num_batched_tokens)  # resolved: the JSON's sizes too
    # before the model is read (from the Hub, maybe), as estimate checks them: they need no model
    if isinstance(kv_dtype, str) and "," in kv_dtype:  # a sweep's list, which the dtype check would call unknown
        raise FieldError("kv_dtype", f"takes one KV-cache dtype for verify (it allocates one plan), got "
                                     f"{quote(kv_dtype)}.")
    engine_model.check_kv_dtype(kv_dtype)  # a dtype this release's --kv-cache-dtype does not list
    engine_model.check_block_size(block_size)  # a block its --block-size does not
    raw: list = []
    # the config's omitted fields as the release's transformers fills them, for the forward's raw reads too (arch.py)
    spec = with_cache_flags(resolve(model, revision, raw_out=raw, transformers=release_transformers(version)),
                            flags)  # --disable-sliding-window: layers full
    # the length as the release derives it (a RoPE factor's), which the plan checks as estimate's does; the forward
    # reads no length, so its shapes are the config's still
    spec = rope_view(spec, version)
    refuse_encoder_only(spec, version)  # before torch, as the release-independent refusal
    refuse_v0_unmodelled(spec, version)  # V0 kvplan does not model (vllm_mamba_v0 / vllm_v1_oracle V0_UNMODELLED)
    viewed = release_view(unviewed(spec), version)  # the length as this release derives it (RoPE factors)
    context = verify_length(viewed, context)
    refuse_config_read(viewed, context, engine_model, kv_dtype=kv_dtype, block_size=block_size, tp=tp)
    refuse_no_prompt(spec, context, version)
    refuse_pooling(spec, version)
    refuse_state_dtypes(spec, flags, version)
    refuse_prefix_flags(spec, flags, context, version)
    if spec.compressed_attention:  # before the KV dtype: no dtype would make verify run it
        architecture(raw[0], spec, tp)
    kernel_kv_dtype(kv_dtype, spec)
    sharding = shard(spec, tp)
    if not sharding.valid:  # before torch: a bad TP degree needs no GPU to be refused
        raise FieldError("tp", f"{tp} cannot shard {spec.name}: {sharding.errors[0].rstrip('.')}.")
    # a model the forward pass does not cover, or a rank's tensors it cannot shard (an fp8 block cut), is refused
    # before torch loads
    rank_weights(architecture(raw[0], spec, tp))
    # after the weights: a checkpoint verify's forward runs on no release (AWQ's int4) is said before a release to try
    refuse_per_head_mla(spec, version)
    options = Options(tp, context, kv_dtype, gpu_util, block_size, max_num_seqs, max_num_batched_tokens, release,
                      flags)
    # the plan's own refusals that no GPU would change (vLLM's settings checks, flags the release refuses for the
    # model), met on the catalog's GPUs as estimate meets them: said on a machine without one too
    refuse_on_every_gpu(spec, options)
    from ..gpu.nvml import import_stack

    import_stack()  # no torch, no CUDA GPU, no NVML: one clear line before any module needs them
    import torch  # only verify pays for it

    progress = progress or Progress()
    if tp > 1 and torch.cuda.device_count() >= tp:  # a real group: one process per GPU
        from ..gpu.tp import verify_group

        return VerifyResult(verify_group(spec, raw[0], options, progress))
    from ..gpu.verify_run import verify_rank

    return VerifyResult(verify_rank(spec, raw[0], options, progress))


# ---- the engine flags verify takes (estimate's, where the GPU run can honour them) -----------------------------

def verify_flags(enforce_eager=False, max_capture_size=None, capture_sizes=None, prefix_caching=None,
                 mamba_block=None, disable_sliding_window=False, mamba_cache_dtype=None,
                 mamba_ssm_cache_dtype=None, compilation_config=None, optimization_level=None,
                 chunked_prefill=None, engine=None) -> EngineFlags:
    """The engine flags as estimate reads them (the same parsers: engines/vllm_graphs.py, vllm_prefix_flag.py,
    vllm_cache_flags.py, vllm_compilation.py; units.switches), the command line's strings or the Python values
    alike; the compilation config and -O as given, which get_engine resolves for the release. Before torch."""
    from ..engines.vllm_cache_flags import mamba_dtype
    from ..engines.vllm_compilation import level_value
    from ..engines.vllm_compilation_text import engine_config_value
    from ..engines.vllm_graphs import capture_sizes_value, max_capture_size_value
    from ..engines.vllm_chunked_flag import chunked_prefill_choice
    from ..engines.vllm_prefix_flag import mamba_block_size, prefix_caching_choice

    eager, no_window = switches(enforce_eager=enforce_eager, disable_sliding_window=disable_sliding_window).values()
    return EngineFlags(enforce_eager=eager, max_cudagraph_capture_size=max_capture_size_value(max_capture_size),
                       cudagraph_capture_sizes=capture_sizes_value(capture_sizes),
                       enable_prefix_caching=prefix_caching_choice(prefix_caching),
                       mamba_block_size=mamba_block_size(mamba_block), disable_sliding_window=no_window,
                       mamba_cache_dtype=mamba_dtype("mamba_cache_dtype", mamba_cache_dtype),
                       mamba_ssm_cache_dtype=mamba_dtype("mamba_ssm_cache_dtype", mamba_ssm_cache_dtype),
                       compilation_config=engine_config_value(compilation_config, engine),
                       optimization_level=level_value(optimization_level),
                       enable_chunked_prefill=chunked_prefill_choice(chunked_prefill))


def refuse_state_dtypes(spec, flags: EngineFlags, version: str) -> None:
    """--mamba-cache-dtype / --mamba-ssm-cache-dtype where verify cannot lay the states out as vLLM `version` would
    keep them (engines/vllm_mamba_state.py mamba_state_dtypes, as the plan and the pools read them): its forward
    holds a layer's convolution and SSM states in one tensor of one dtype but for Mamba-2, gated DeltaNet and KDA
    layers (verify/layout.py splits), and KDA's recurrent state in float32 only. Before torch."""
    from ..engines.vllm_mamba_state import mamba_state_dtypes
    from ..model.kinds import LinearState
    from ..verify.layout import splits

    given = [(field, value) for field, value in (("mamba_ssm_cache_dtype", flags.mamba_ssm_cache_dtype),
                                                 ("mamba_cache_dtype", flags.mamba_cache_dtype)) if value is not None]
    states = [layer for layer in spec.layers if isinstance(layer, LinearState)]
    if not given or not states:
        return
    dtypes = mamba_state_dtypes(spec, version)
    layer = next((layer for layer in states if not splits(layer, dtypes)), None)
    if layer is not None:
        conv, ssm = (TORCH_DTYPES.get(d, d) for d in dtypes)  # as vLLM's flags spell them
        field, value = given[0]
        if layer.flavor == "kda":  # vLLM 0.30+ keeps it as --mamba-ssm-cache-dtype asks (vllm_cache_flags.py)
            raise FieldError(field, f"{value} is not run by verify for {spec.name}: vLLM {version} would keep its "
                                    f"Kimi Delta Attention recurrent state in {ssm}, and verify's KDA layer runs a "
                                    f"float32 one only; leave it out, or give float32 (`kvplan estimate` plans it).")
        mixer = MIXER_NAMES.get(layer.flavor, layer.flavor)
        raise FieldError(field, f"{value} is not run by verify for {spec.name}: vLLM {version} would keep its "
                                f"{mixer} layers' convolution state in {conv} and SSM state in {ssm}, and verify's "
                                f"{mixer} layer holds both in one tensor of one dtype (its Mamba-2 and "
                                f"gated DeltaNet layers take two); leave it out, or give the two one dtype "
                                f"(`kvplan estimate` plans it).")


MIXER_NAMES = {"mamba": "Mamba-1", "gated-deltanet": "gated DeltaNet"}  # LinearState.flavor, as the refusal says it


def refuse_prefix_flags(spec, flags: EngineFlags, context: int, version: str) -> None:
    """--enable-prefix-caching / --no-enable-prefix-caching, --mamba-block-size and --no-enable-chunked-prefill where
    vLLM `version` refuses them
    for `spec` (vllm_prefix_flag.as_asked, through vllm_settings.with_model_defaults as the plan applies them after
    torch): before torch. as_asked reads the length and these flags of the settings (verify builds a generating model
    with no drafter), so the batch figures there are placeholders."""
    from ..engines.vllm_settings import Settings, with_model_defaults

    chunked = flags.enable_chunked_prefill is not False  # off: a Mamba prefix cache may need it (vllm_chunked_flag)
    if flags.enable_prefix_caching is None and flags.mamba_block_size is None and chunked:
        return
    with_model_defaults(spec, Settings(context, 1, 1, 1, prefix_caching_asked=flags.enable_prefix_caching,
                                       mamba_block_size=flags.mamba_block_size, chunked_prefill=chunked), version)
