"""Engine models: what a serving engine makes of kvplan's KV arithmetic (its budget, block groups, reserves,
start-up figures, resident sequences). One module per engine; `get_engine(name)` is the only way in.

- "vllm": vLLM pinned at 0.32.0 (engines/vllm.py); "vllm==X.Y[.Z]" selects an older release's behaviour
  (engines/vllm_versions.py).
- "none": kvplan's ideal paged arithmetic, no engine reserves (engines/ideal.py).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace
from typing import Optional

from ..errors import FieldError, quote
from ..model.choices import refuse_spaces
from ..units import MAX_BYTES, REAL_TEXT, whole_number
from .vllm_releases import SPAN, canonical

ENGINE_NAMES = ("vllm", "none")
VALID = f"vllm (vLLM 0.32.0), vllm==<release> (another vLLM release, {SPAN}), none (ideal paging, no engine)"


# None where not given: False is the user's --no-enable-prefix-caching / --no-enable-chunked-prefill
TRI_STATE_FLAGS = ("enable_prefix_caching", "enable_chunked_prefill")


@dataclass(frozen=True)
class EngineFlags:
    """The engine's own flags that change its budget (vLLM's names). The ideal engine reads enforce_eager and the
    runner (whether an LM head is loaded) only: it has no profile run and loads whatever the model holds, so
    get_engine refuses the others with it, all but kv_budget, which budget_function applies for either engine."""

    enforce_eager: bool = False  # --enforce-eager: no CUDA graphs, so no graph reserve
    skip_mm_profiling: bool = False  # --skip-mm-profiling: no vision-tower pass in the profile run (0.10.1+)
    language_model_only: bool = False  # --language-model-only: no vision tower at all, loaded or profiled (0.17+)
    mm_limits: Optional["MediaLimits"] = None  # --limit-mm-per-prompt's image / video counts (None: vLLM's 999)
    mm_encoder_tp_mode: Optional[str] = None  # --mm-encoder-tp-mode weights | data (0.10.2+; None: vLLM's weights)
    cpu_offload_gb: Optional[float] = None  # --cpu-offload-gb: GiB of each GPU's weights held in CPU memory (0.5.3+)
    num_gpu_blocks_override: Optional[int] = None  # --num-gpu-blocks-override: the pool's blocks, whatever the budget
    speculative: Optional[object] = None  # --speculative-config: vllm_speculative.Speculative (0.32 rules)
    dp: Optional[int] = None  # --data-parallel-size: engine cores of T GPUs each (None: 1)
    # --decode-context-parallel-size (None: 1) and --cp-kv-cache-interleave-size (None: 1): vllm_dcp.py
    dcp: Optional[int] = None
    dcp_interleave: Optional[int] = None
    dcp_comm_backend: Optional[str] = None  # --dcp-comm-backend ag_rs | a2a (0.18+; None: vLLM's ag_rs): vllm_dcp.py
    dcp_q_replicate: Optional[bool] = None  # --dcp-q-replicate / --no-dcp-q-replicate (0.29+; None: off): vllm_dcp.py
    pcp: Optional[int] = None  # --prefill-context-parallel-size (None: 1): vllm_pcp.py
    enable_expert_parallel: bool = False  # --enable-expert-parallel: routed experts whole, over T x D ranks
    mm_processor_kwargs: Optional["ProcessorKwargs"] = None  # --mm-processor-kwargs: the Qwen-VL dummy items' size
    enable_eplb: Optional[object] = None  # --enable-eplb with --eplb-config: vllm_eplb.Eplb (None: off)
    eplb_spelled_off: Optional[str] = None  # the redundant experts' flag given with EPLB off (vllm_eplb.spelled_off)
    enable_lora: Optional[object] = None  # --enable-lora with --max-loras ...: vllm_lora.LoraConfig (None: off)
    lora_ignored: tuple = ()  # the LoRA settings given without --enable-lora, which vLLM ignores (said, not priced)
    runner: str = "auto"  # --runner auto | generate | pooling (vllm_runner_flag.py), carried on the spec (with_runner)
    convert: str = "auto"  # --convert auto | none | embed | classify | reward: the pooling adapter
    pooler_config: Optional[str] = None  # --pooler-config, canonical JSON (vllm_pooler_config.py), on the spec too
    max_cudagraph_capture_size: Optional[int] = None  # --max-cudagraph-capture-size (vllm_graphs.py; 0.11.1+)
    cudagraph_capture_sizes: Optional[tuple] = None  # --cudagraph-capture-sizes (vllm_graphs.py; 0.11.1+)
    # --compilation-config (canonical JSON) and -O (as typed), which get_engine resolves for the release into
    # cudagraph_mode (None: vLLM's default, FULL_AND_PIECEWISE) and the two capture-size fields
    # (vllm_compilation.py)
    compilation_config: Optional[str] = None
    optimization_level: Optional[str] = None
    cudagraph_mode: Optional[str] = None
    # use_cudagraph as the release reads it (False: it set cudagraph_mode NONE, 0.9.1-0.11.0; None: not given, or
    # a release that ignores it): what graphs_off_cause names
    use_cudagraph: Optional[bool] = None
    # a piecewise cudagraph_mode given below compilation level 3 (0.10.1-0.11.x) without --enforce-eager: V1 stops
    # at start-up, V0 starts; the plan, which knows its engine, refuses it (vllm_level_assert.py)
    piecewise_below_level_3: Optional[str] = None
    # a full cudagraph_mode (FULL, FULL_DECODE_ONLY) kept below compilation mode VLLM_COMPILE without --enforce-eager
    # (0.11.1-0.11.x, 0.13+), which vLLM turns PIECEWISE for -dcp or a pooling model and then stops on
    # (vllm_level_assert.downgrade_refusal)
    full_below_compile: Optional[str] = None
    # breakable CUDA graphs (vllm_breakable.py, on by default per architecture): the graph mode the compilation flags
    # leave with no compile-mode rule (None: FULL_AND_PIECEWISE), and, on a plan's graph view alone, why they are on
    # ("": off)
    breakable_cudagraph_mode: Optional[str] = None
    breakable: str = ""
    # the mode the compilation flags leave where vLLM turns full graphs PIECEWISE before its splitting_ops rule (a
    # pooler config; -dcp in 0.11.1-0.12): vllm_full_downgrade.py (None: no compilation flags, PIECEWISE)
    downgraded_cudagraph_mode: Optional[str] = None
    # compilation mode STOCK_TORCH_COMPILE given, whose graphs 0.32+ turn off (vllm_stock_compile.py)
    stock_compile: bool = False
    # why cudagraph_mode is NONE, in the words of the rule that left it so, written by the step that decided
    # (vllm_compilation.resolve, the graph views; read by vllm_graphs_off.graphs_off_cause; "": not NONE), and the
    # same for the breakable mode and for the downgraded one (there the part after the downgrade's cause)
    cudagraph_mode_why: str = ""
    breakable_mode_why: str = ""
    downgraded_mode_why: str = ""
    # --mamba-cache-dtype / --mamba-ssm-cache-dtype as vLLM spells them (None: not given) and
    # --disable-sliding-window: carried on the spec (vllm_cache_flags.with_cache_flags)
    mamba_cache_dtype: Optional[str] = None
    mamba_ssm_cache_dtype: Optional[str] = None
    disable_sliding_window: bool = False
    # --enable-prefix-caching / --no-enable-prefix-caching (None: vLLM's default) and --mamba-block-size
    # (vllm_prefix_flag.py)
    enable_prefix_caching: Optional[bool] = None
    mamba_block_size: Optional[int] = None
    # --enable-chunked-prefill / --no-enable-chunked-prefill (None: vLLM's default): vllm_chunked_flag.py
    enable_chunked_prefill: Optional[bool] = None
    # --kv-cache-memory-bytes in bytes (None: not given), here for the release rules alone (vllm_engine.FLAG_SINCE:
    # 0.10.2+); the budget it replaces is budget_function's (commands/estimate.py flag_budget)
    kv_budget: Optional[int] = None

    @property
    def graphs_off(self) -> bool:
        """No CUDA graph captured by V1: --enforce-eager, or cudagraph_mode NONE (the compilation config, -O0,
        use_cudagraph false, or a later rule: cudagraph_mode_why says which). A plan V0 runs reads
        vllm_graphs_off.core_flags' view, which drops cudagraph_mode."""
        return self.enforce_eager or self.cudagraph_mode == "NONE"

    def unused_on(self, spec, version: Optional[str] = None) -> tuple:
        """The multimodal flags set (as MEDIA_FLAGS names their fields) that change nothing for `spec`, a model vLLM's
        registry serves as a text class (vllm_multimodal.registry_multimodal, whatever kvplan reads of its towers).
        vLLM reads them into MultiModalConfig alone, which it builds only for a class that supports multimodal input,
        and drops them without a word otherwise (0.32.0 config/model.py:817-868, 0.11.0 :604-630, 0.34.0 :851-901: no
        else branch), so kvplan says so in a note (unused_media_note) rather than refuse what vLLM serves."""
        from .vllm_multimodal import registry_multimodal

        if registry_multimodal(spec, version):
            return ()
        return tuple(field for name, field in MEDIA_FLAGS.items() if getattr(self, name))

    def with_runner(self, spec):
        """`spec` carrying --runner / --convert (ModelSpec.runner / .convert), which vllm_pooling.pooling_runner reads
        wherever the runner matters (the ideal engine's LM head too, engines/ideal.py), --pooler-config
        (ModelSpec.pooler_config, vllm_pooling_budget.incremental_prefill), and the Mamba dtypes and
        --disable-sliding-window (vllm_cache_flags.with_cache_flags)."""
        from .vllm_cache_flags import with_cache_flags

        return with_cache_flags(replace(spec, runner=self.runner, convert=self.convert,
                                        pooler_config=self.pooler_config), self)

    def moe_layout(self, spec, tp: int, version: Optional[tuple] = None):
        """The routed experts on one GPU under these flags (plan/sharding.py moe_layout, the rule's one place)."""
        from ..plan.sharding import moe_layout

        eplb = self.enable_eplb
        ranks = tp * (self.dp or 1) * (self.pcp or 1)
        return moe_layout(spec, tp, self.dp or 1, self.enable_expert_parallel,
                          remainder_last=version is not None and version < (0, 10, 1), eplb=eplb is not None,
                          redundant=eplb.redundant_for(spec.experts, ranks, version) if eplb else 0, pcp=self.pcp or 1)


# EngineFlags' multimodal flags -> the field each is (vLLM's MultiModalConfig reads them all)
MEDIA_FLAGS = {"skip_mm_profiling": "skip_mm_profiling", "language_model_only": "language_model_only",
               "mm_limits": "limit_mm_per_prompt", "mm_encoder_tp_mode": "mm_encoder_tp_mode",
               "mm_processor_kwargs": "mm_processor_kwargs"}


def unused_media_note(spec, flags: EngineFlags, spell=str, version: Optional[str] = None) -> str:
    """A sentence (no full stop) naming, as `spell` writes them, the multimodal flags vLLM ignores on a text-only
    model (EngineFlags.unused_on); '' when none, or where vLLM `version` refuses one of them instead (up to 0.10.0:
    vllm_multimodal.text_only_refusal, which the plans carry)."""
    from .vllm_multimodal import refused_flag

    fields = flags.unused_on(spec, version)
    if not fields or (version is not None and refused_flag(spec, version, flags)):
        return ""
    from .vllm_registry import served_architecture

    verb = "changes" if len(fields) == 1 else "change"
    return (f"{', '.join(spell(f) for f in fields)} {verb} nothing here: vLLM serves {spec.name} "
            f"({served_architecture(spec, version)}) as a text-only model, and ignores its multimodal flags on one")


ENCODER_TP_MODES = ("weights", "data")
MAX_BLOCKS = 2**48  # more blocks than any GPU's memory holds pages of: a bound on the numbers, not vLLM's


MAX_OFFLOAD_GIB = MAX_BYTES // 2**30  # 2**30 GiB = 1 EiB, units.MAX_BYTES: kvplan's bound on every size, not vLLM's


def cpu_offload_gb(value) -> Optional[float]:
    """vLLM's --cpu-offload-gb: GiB (2^30 bytes) of weights a GPU keeps in CPU memory; None or 0 when not given.
    vLLM takes any float 0 or more (config/offload.py UVAOffloadConfig, 0.34.0:23 Field(ge=0)) and offloads at most
    what the decoder layers hold; kvplan bounds it at MAX_OFFLOAD_GIB, as it bounds every size, so the bytes stay a
    finite number (1e300 GiB is more bytes than a float holds)."""
    if value is None:
        return None
    number = -1.0
    if isinstance(value, str) and REAL_TEXT.fullmatch(value.strip()):  # ASCII digits, as every number kvplan reads
        number = float(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):  # not bytes: float(b"8") is 8.0
        number = float(value) if abs(value) <= MAX_OFFLOAD_GIB else -1.0  # 10**400 is past any float
    if not 0 <= number <= MAX_OFFLOAD_GIB:  # NaN too
        raise FieldError("cpu_offload_gb", f"must be a number of GiB from 0 to {MAX_OFFLOAD_GIB:,} (2**30 GiB = 1 "
                                           f"EiB, kvplan's bound on sizes; vLLM's --cpu-offload-gb), got "
                                           f"{quote(value)}.")
    return number or None


def data_parallel_size(value) -> Optional[int]:
    """vLLM's --data-parallel-size: engine replicas, a whole number 1 or more; None when not given or 1."""
    if value is None:
        return None
    number = whole_number(value)  # '8' as 8; ASCII digits, counted before int() (units.MAX_INT_DIGITS)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 4096:
        raise FieldError("dp", f"must be a whole number of engine replicas, 1 to 4096 (vLLM's --data-parallel-size), "
                               f"got {quote(value)}.")
    return number if number > 1 else None


def enable_eplb(value, config=None, redundant=None):
    """vLLM's --enable-eplb with --eplb-config (0.10.2+) or --num-redundant-experts (0.9.2 to 0.11.2):
    engines/vllm_eplb.py Eplb, or None when EPLB is off."""
    from .vllm_eplb import eplb

    return eplb(value, config, redundant)


def eplb_spelled_off(value, config=None, redundant=None) -> Optional[str]:
    """The redundant experts' flag given without --enable-eplb (vllm_eplb.spelled_off): EngineFlags.eplb_spelled_off."""
    from .vllm_eplb import spelled_off

    return spelled_off(value, config, redundant)


def gpu_blocks_override(value) -> Optional[int]:
    """vLLM's --num-gpu-blocks-override: a whole number of blocks, 1 or more (config/cache.py CacheConfig takes an
    int); None when not given."""
    if value is None:
        return None
    number = whole_number(value)  # '8' as 8; ASCII digits, counted before int() (units.MAX_INT_DIGITS)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_BLOCKS:
        raise FieldError("num_gpu_blocks_override", f"must be a whole number of KV-cache blocks, 1 to 2^48 (vLLM's "
                                                    f"--num-gpu-blocks-override), got {quote(value)}.")
    return number


def enable_lora(value, max_loras=None, max_lora_rank=None, lora_dtype=None, fully_sharded_loras=None):
    """vLLM's --enable-lora with --max-loras, --max-lora-rank, --lora-dtype, --fully-sharded-loras:
    engines/vllm_lora.py LoraConfig, or None when LoRA is off (the others then ignored, as vLLM ignores them:
    ignored_lora)."""
    from .vllm_lora import lora_config

    return lora_config(value, max_loras, max_lora_rank, lora_dtype, fully_sharded_loras)


def ignored_lora(value, max_loras=None, max_lora_rank=None, lora_dtype=None, fully_sharded_loras=None) -> tuple:
    """The LoRA settings given without --enable-lora (vllm_lora.ignored_flags): EngineFlags.lora_ignored."""
    from .vllm_lora import ignored_flags

    return ignored_flags(value, max_loras, max_lora_rank, lora_dtype, fully_sharded_loras)


def speculative_config(value):
    """vLLM's --speculative-config (engines/vllm_speculative.py); None when not given."""
    from .vllm_speculative import speculative_config as parse

    return parse(value)


def encoder_tp_mode(value) -> Optional[str]:
    """vLLM's --mm-encoder-tp-mode: weights (the tower's layers split over the TP ranks, the default) or data (every
    rank holds the whole tower and runs its share of the images); None when not given."""
    if value is None:
        return None
    if value not in ENCODER_TP_MODES:
        refuse_spaces("mm_encoder_tp_mode", value, ENCODER_TP_MODES)
        raise FieldError("mm_encoder_tp_mode", f"must be one of {', '.join(ENCODER_TP_MODES)} (vLLM's values), got "
                                               f"{quote(value)}.")
    return value


@dataclass(frozen=True)
class MediaLimits:
    """The image, video and audio counts of vLLM's --limit-mm-per-prompt; None where it names none (vLLM's 999). Its
    richer form's dummy-data options (config/multimodal.py ImageDummyOptions width / height, VideoDummyOptions
    num_frames / width / height) bound the profile run's dummy item (multimodal/processing/dummy_inputs.py
    _get_dummy_images / _get_dummy_videos: the smaller of each and the model's own), not the budget's tokens."""

    image: Optional[int] = None
    video: Optional[int] = None
    image_width: Optional[int] = None
    image_height: Optional[int] = None
    video_width: Optional[int] = None
    video_height: Optional[int] = None
    video_frames: Optional[int] = None  # VideoDummyOptions.num_frames
    audio: Optional[int] = None  # an audio tower's count (Gemma 4's): it takes media while it is not 0
    empty: bool = False  # given as '{}', which vLLM's truth tests treat as not given (vllm_multimodal._empty)

    @property
    def sized(self) -> bool:
        """Whether any dummy-data option (a size or a frame count) is given."""
        return any(v is not None for v in (self.image_width, self.image_height, self.video_width, self.video_height,
                                            self.video_frames))

    def shut(self, modalities: tuple) -> bool:
        """Whether every modality a tower serves is limited to 0: vLLM then builds no tower (interfaces.py
        _mark_tower_model skips a tower whose modalities are all 0; Qwen-VL's serve image and video)."""
        return all(getattr(self, modality) == 0 for modality in modalities)

    def with_counts(self, **counts) -> "MediaLimits":
        """These limits with some modalities' counts changed; a count of 0 drops that modality's dummy options."""
        options = {"image": ("image_width", "image_height"), "video": ("video_width", "video_height", "video_frames")}
        dropped = {key: None for modality, count in counts.items() if count == 0 for key in options.get(modality, ())}
        return replace(self, **counts, **dropped, empty=self.empty and not counts)

    def said(self) -> str:
        """These limits as vLLM's --limit-mm-per-prompt takes them: JSON, image, audio, video in that order (vLLM
        0.11-0.34 parses the flag with json.loads, engine/arg_utils.py 0.32.0:412-414; kvplan also reads the older
        image=2,video=0 form, but never suggests it)."""
        import json

        options = {"image": (("width", self.image_width), ("height", self.image_height)),
                   "video": (("num_frames", self.video_frames), ("width", self.video_width),
                             ("height", self.video_height))}
        limits = {}
        for modality in ("image", "audio", "video"):
            count = getattr(self, modality)
            extra = {key: value for key, value in options.get(modality, ()) if value is not None}
            if extra:
                limits[modality] = {**({"count": count} if count is not None else {}), **extra}
            elif count is not None:
                limits[modality] = count
        return json.dumps(limits)


def media_limits(value) -> Optional[MediaLimits]:
    """vLLM's --limit-mm-per-prompt: JSON ('{"image": 2, "video": 0}', '{"image": {"count": 2}}'), the older
    image=2,video=1 form, or a mapping; None when not given."""
    import json

    if value is None:
        return None

    def count(item):
        if isinstance(item, dict):
            item = item.get("count")
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise ValueError
        return item

    def options(limits, modality, keys):  # the dummy options vLLM takes (extra keys forbidden, each above 0)
        item = limits.get(modality)
        if not isinstance(item, dict):
            return [None] * len(keys)
        if set(item) - {"count", *keys}:
            raise ValueError
        for key in keys:
            if item.get(key) is not None and (isinstance(item[key], bool) or not isinstance(item[key], int)
                                              or item[key] <= 0):
                raise ValueError
        return [item.get(key) for key in keys]

    text = "" if isinstance(value, dict) else str(value).strip()
    try:
        if isinstance(value, dict):  # a deployments file's mapping: limit_mm_per_prompt: {image: 0}
            limits = value
        elif text.startswith("{"):
            limits = json.loads(text)
            if not isinstance(limits, dict):
                raise ValueError
        else:
            if not text:  # vLLM parses the flag with json.loads, which refuses '' (0.32.0 engine/arg_utils.py:414-415)
                raise ValueError
            limits = dict(part.split("=", 1) for part in text.split(","))
            limits = {k.strip(): int(v) for k, v in limits.items()}
        counts = [count(limits[m]) if m in limits and (not isinstance(limits[m], dict) or "count" in limits[m])
                  else None for m in ("image", "video", "audio")]
        return MediaLimits(*counts[:2], *options(limits, "image", ("width", "height")),
                           *options(limits, "video", ("width", "height", "num_frames")), audio=counts[2],
                           empty=not limits)
    except (ValueError, TypeError):
        raise FieldError("limit_mm_per_prompt", f"must be vLLM's form, '{{\"image\": 0}}' or image=0,video=0 (a "
                                                f"count of 0 or more a modality; image width / height, video "
                                                f"num_frames / width / height above 0), got {quote(value)}.") from None


# vLLM 0.32 multimodal/processing/context.py get_merged_mm_kwargs: flat kwargs go to every processor scope whose
# processor takes them, a scope's own value winning; the Qwen-VL image and video processors both take these
QWEN_SIZE_KEYS = ("size", "min_pixels", "max_pixels")
SCOPES = {"image": "images_kwargs", "video": "videos_kwargs"}
EDGES = {"min_pixels": "shortest_edge", "max_pixels": "longest_edge"}
HF_SCOPES = ("text_kwargs", "images_kwargs", "videos_kwargs", "audio_kwargs")  # context.py 0.32.0:49-54


@dataclass(frozen=True)
class ProcessorKwargs:
    """vLLM's --mm-processor-kwargs as its Qwen-VL dummy items read them (qwen2_vl.py _get_vision_size over the
    images' and videos' scopes; get_image_size_with_most_features, get_max_video_tokens, qwen3_vl.py
    get_dummy_mm_data): each modality's size edges, (modality, ((edge, pixels), ...)) pairs; and Gemma 4's
    max_soft_tokens, an image's tokens (soft_tokens). Other keys (fps, num_frames, do_sample_frames, ...) reach the
    HF processor but not the dummy items' size, so kvplan ignores them."""

    sizes: tuple = ()
    text: str = ""  # the size keys as given, for the budget line
    # Gemma 4's max_soft_tokens where given: ((scope, value), ...), scope "" for the flat key, else the HF processor
    # scope holding it (images_kwargs, ...); engines/vllm_media_floor.py soft_tokens resolves it per release
    soft_tokens: tuple = ()
    empty: bool = False  # given as '{}', which vLLM's truth tests treat as not given (vllm_multimodal._empty)

    def size(self, modality: str, default: tuple) -> tuple:
        """(shortest_edge, longest_edge) for `modality`, over the processor's own `default`."""
        edges = dict(dict(self.sizes).get(modality, ()))
        return edges.get("shortest_edge", default[0]), edges.get("longest_edge", default[1])


def _scope_size(kwargs: dict, scope: str) -> tuple:
    """A scope's size edges as vLLM resolves them: the scope's size over the flat one (merged key by key), then
    min_pixels / max_pixels over the shortest / longest edge (qwen2_vl.py _get_vision_size)."""
    own = kwargs.get(scope) or {}
    if not isinstance(own, dict):
        raise ValueError
    merged = {}
    for key in QWEN_SIZE_KEYS:
        flat, scoped = kwargs.get(key), own.get(key)
        if isinstance(flat, dict) and isinstance(scoped, dict):
            merged[key] = {**flat, **scoped}
        else:
            merged[key] = scoped if key in own else flat
    size = merged["size"] if isinstance(merged["size"], dict) else {}
    if merged["size"] is not None and not isinstance(merged["size"], dict):
        raise ValueError
    edges = {edge: size[edge] for edge in ("shortest_edge", "longest_edge") if size.get(edge) is not None}
    edges.update({EDGES[key]: merged[key] for key in EDGES if merged[key] is not None})
    for pixels in edges.values():
        if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels <= 0:
            raise ValueError
    return tuple(sorted(edges.items()))


def mm_processor_kwargs(value) -> Optional[ProcessorKwargs]:
    """vLLM's --mm-processor-kwargs: a JSON object ('{"max_pixels": 1003520}') or a deployments file's mapping;
    None when not given. Pixel counts must be whole numbers above 0."""
    import json

    if value is None:
        return None
    try:
        kwargs = value if isinstance(value, dict) else json.loads(str(value))
        if not isinstance(kwargs, dict):
            raise ValueError
        sizes = tuple((m, edges) for m, edges in ((m, _scope_size(kwargs, s)) for m, s in SCOPES.items()) if edges)
    except (ValueError, TypeError, RecursionError):
        raise FieldError("mm_processor_kwargs", f"must be vLLM's form, a JSON object such as '{{\"max_pixels\": "
                                                f"1003520}}' (pixel counts whole numbers above 0), got "
                                                f"{quote(value)}.") from None
    said = {k: v for k, v in kwargs.items() if k in QWEN_SIZE_KEYS}
    said.update({s: {k: v for k, v in kwargs[s].items() if k in QWEN_SIZE_KEYS} for s in SCOPES.values()
                 if isinstance(kwargs.get(s), dict) and set(kwargs[s]) & set(QWEN_SIZE_KEYS)})
    scopes = {scope: kwargs.get(scope) for scope in HF_SCOPES}
    soft = tuple((scope, scoped["max_soft_tokens"]) for scope, scoped in (("", kwargs), *scopes.items())
                 if isinstance(scoped, dict) and "max_soft_tokens" in scoped)
    return ProcessorKwargs(sizes, json.dumps(said, separators=(", ", ": ")), soft, not kwargs)


def get_engine(name, flags: EngineFlags = EngineFlags()):
    """An engine model by name, with its flags; FieldError('engine', ...) listing the valid names otherwise."""
    from .ideal import IdealEngine
    from .vllm_engine import VllmEngine
    from .vllm_versions import PINNED, behaviour

    text = str(name).strip().lower() if isinstance(name, str) else None
    if text == "none":
        vllm_only = {"dp": "no expert or data-parallel layout", "dcp": "no context-parallel cache",
                     "pcp": "no context-parallel ranks",
                     "enable_expert_parallel": "no expert layout",
                     "enable_eplb": "no expert load balancer", "enable_lora": "no LoRA adapter slots",
                     "num_gpu_blocks_override": "no blocks to override", "speculative": "no drafter",
                     "cpu_offload_gb": "no CPU offload", "skip_mm_profiling": "no profile run",
                     "language_model_only": "no vision-tower rules", "mm_limits": "no profile run",
                     "mm_encoder_tp_mode": "no vision-tower rules", "mm_processor_kwargs": "no profile run",
                     "pooler_config": "no chunked-prefill or prefix-caching rule",
                     "mamba_cache_dtype": "no state dtype rules", "mamba_ssm_cache_dtype": "no state dtype rules",
                     "disable_sliding_window": "no sliding-window switch",
                     "enable_prefix_caching": "no prefix-caching rule", "mamba_block_size": "no Mamba block rule",
                     "enable_chunked_prefill": "no scheduler batch rule",
                     "max_cudagraph_capture_size": "no CUDA graphs", "cudagraph_capture_sizes": "no CUDA graphs",
                     "compilation_config": "no CUDA graphs", "optimization_level": "no CUDA graphs"}
        fields = {"speculative": "speculative_config", "mm_limits": "limit_mm_per_prompt"}
        for name, missing in vllm_only.items():  # refused, not silently left out of the figures
            value = getattr(flags, name)
            if value or (value is False and name in TRI_STATE_FLAGS):  # --no-X is given too, as much as --X
                field = fields.get(name, name)
                raise FieldError(field, f"is modelled with vLLM only (engine vllm): engine none, ideal paging, "
                                        f"has {missing}.", names=("engine",))
        return IdealEngine(flags.enforce_eager)
    from .vllm_compilation import with_compilation

    if text == "vllm":
        return VllmEngine(PINNED, with_compilation(flags, PINNED))
    if text is not None and text.startswith("vllm=="):
        version = text[len("vllm=="):]
        behaviour(version)  # FieldError for a release outside the table
        release = canonical(version)  # as PyPI spells it: " 0.32.0" and 0.10.01 are 0.32.0, 0.10.1
        return VllmEngine(release, with_compilation(flags, release))
    raise FieldError("engine", f"{quote(name)} is not an engine kvplan models; use one of {VALID}.")
