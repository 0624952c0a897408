"""The typed model spec: everything downstream (planning, engine models, verify) reads this, never a raw
config dict. Layers are layer kinds (model/kinds.py); weights are parameter groups with their stored size."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple, Optional

from .kinds import FullAttention, LinearState, MLALatent, SharedKV
from .vision import MediaPrefix, VisionEncoder


class LinearShape(NamedTuple):
    """One LinearBase module's weight matrix (a fused module's parts stacked: QKVParallelLinear's q, k and v) and how
    TP splits it: `split` "rows" (column-parallel: each rank a slice of the outputs), "cols" (row-parallel: o_proj,
    down_proj, a mixer's out_proj, Mamba-1's x_proj: a slice of the inputs) or "" (every rank holds it whole:
    ReplicatedLinear, disable_tp); `kv_rows` of its rows are K / V heads (`kv_heads` of them), of which a rank holds
    one whole head where tp exceeds them (QKVParallelLinear num_kv_head_replicas)."""

    rows: int  # N: outputs
    cols: int  # K: inputs
    split: str = "rows"
    kv_rows: int = 0
    kv_heads: int = 0

    def on_rank(self, tp: int) -> tuple:
        """(N, K) of one rank's partition at `tp` (vLLM's output_size_per_partition, input_size_per_partition)."""
        if self.split == "cols":
            return self.rows, self.cols // tp
        if self.split != "rows":
            return self.rows, self.cols
        kv = self.kv_rows // min(tp, self.kv_heads) if self.kv_heads else 0
        return (self.rows - self.kv_rows) // tp + kv, self.cols


@dataclass(frozen=True)
class ParamGroup:
    """Parameters of one kind of weight (embed, lm_head, attention, linear, dense, shared_experts, experts,
    router, norms, vision) and how they are stored. bytes_per_param is the group's stored bytes over its
    parameters: a blend where a group mixes formats (mxfp4 experts with bf16 biases, fp8 weights with their
    float32 block scales)."""

    name: str
    parameters: int
    bytes_per_param: float
    stored: str  # bf16, fp8, mxfp4, int4-awq, ...
    replicated: int = 0  # stored bytes of the group every TP rank holds whole (model/tensors.py Tensor.replicated)
    # (KV heads, stored bytes) of the group split by that many KV heads (model/tensors.py Tensor.kv_split)
    kv_split: tuple = ()
    # the weight matrices of its LinearBase layers (Tensor.linear, and a router's GateLinear: Tensor.gate) as a group
    # of their own, with their share of `replicated` and `kv_split`: what an online method re-prices (engines/
    # vllm_mxfp4_online.py) apart from the norms, biases and sinks beside them; None where the group has none
    linear: Optional["ParamGroup"] = None
    # of a `linear` group: (LinearShape, how many) of its matrices, for a kernel's tile padding
    shapes: tuple = ()

    @property
    def bytes(self) -> int:
        return round(self.parameters * self.bytes_per_param)


@dataclass(frozen=True)
class Weights:
    """What the checkpoint weighs, and how we know."""

    parameters: int
    bytes: int
    dtype: str  # stored format, e.g. bf16, fp8, mxfp4, int4-awq
    source: str  # "safetensors metadata", "bundled spec", "estimated from config"


@dataclass(frozen=True)
class RopeEntry:
    """One RoPE scaling entry of the config (rope_scaling / rope_parameters, or one of its per-layer-type entries),
    as vLLM's length rule reads it (engines/vllm_rope_len.py)."""

    kind: str  # rope_type, 'type' read as it (patch_rope_parameters); "" where neither is named
    factor: Optional[float]  # None for a null factor
    named_factor: bool  # the entry names 'factor' (vLLM keeps the previous entry's factor where it does not)
    original: Optional[int] = None  # the entry's original_max_position_embeddings
    key: str = "rope_scaling"  # the config field it came from (rope_scaling or rope_parameters)


@dataclass(frozen=True)
class ModelSpec:
    """One model, whatever shape its config.json had. The derived views below are computed once per spec
    (cached_property: a plan's TP and context searches ask them hundreds of times)."""

    name: str
    layers: tuple  # one layer kind per decoder layer that holds a cache (MLP-only layers are left out)
    num_hidden_layers: int
    num_attention_heads: int
    hidden_size: int
    dtype: str  # the model's compute dtype: what `kv_dtype auto` resolves to
    max_position_embeddings: Optional[int]
    weights: Weights
    params: tuple = ()  # ParamGroups estimated from the config (they sum to the estimate, not to `weights`)
    # Shapes the activation-reserve estimate needs (per token, whole model width).
    intermediate_size: int = 0  # a dense MLP layer's width (tensors.feed_forward_sizes: the dense weights' width)
    vocab_size: int = 0
    experts: int = 0  # routed experts per MoE layer
    moe_layers: int = 0  # decoder layers that route to experts (layers.py ffn_kinds)
    # an MoE model's feed-forward block per decoder layer, dense | moe | none (layers.py ffn_kinds): which layers a
    # pipeline stage builds as dense MLPs; () for a model without routed experts
    ffn_kinds: tuple = ()
    experts_per_token: int = 0
    expert_intermediate_size: int = 0
    notes: tuple = ()  # parser decisions worth telling the user ("dtype float32 served as bf16")
    model_type: str = ""  # the config's model_type: engine models key their family quirks on it
    architecture: str = ""  # the config's first `architectures` entry (engines refuse ones they dropped)
    # the top-level config's first `architectures` entry where a nested language model's config names another: the
    # one vLLM's registry and config handlers pick by (engines/vllm_config_read.py ENCODER_ONLY_FROM); "" where the same
    registered_architecture: str = ""
    # the top-level config's `architectures` where it names more than one, in order: vLLM serves the first its release
    # lists (engines/vllm_registry.py served_name), which may be another than `architecture`; () for one name
    architectures: tuple = ()
    # a nested language-model config's own `architectures` where it names more than one, in order: a wrapper that
    # hands that config on gets its language model built as the first the release lists (engines/vllm_registry.py
    # language_model_architecture); () otherwise
    language_architectures: tuple = ()
    # the config keys vLLM's decoder layers pick their attention by, ((key, value), ...) as the language model's config
    # sets them (parse.SWITCH_KEYS: is_causal, is_decoder, openpangu.py's MLA and sink keys): vLLM builds some
    # architectures encoder-only by them, from a release on (engines/vllm_config_read.py ENCODER_ONLY_FROM)
    attention_switches: tuple = ()
    # the Pooling module types the Sentence Transformers modules.json beside config.json lists (model/st_modules.py):
    # vLLM then serves the model on its pooling runner before looking at its architecture (engines/vllm_pooling.py);
    # () where it lists none or there is no such file
    st_pooling: tuple = ()
    # beside each of st_pooling, what vLLM reads of that Pooling module's own config.json (st_modules.
    # pooling_mode_fields: ((key, value), ...) naming its pooling type; None where there is no such file), which
    # overrides the class's pooling type (engines/vllm_pooling.py st_pooling_types)
    st_pooling_modes: tuple = ()
    # vLLM's --runner and --convert (engines/vllm_runner_flag.py), set where the commands apply the flags: the runner
    # vllm_pooling.pooling_runner answers with ("auto": the architecture's, as vLLM's default)
    runner: str = "auto"
    convert: str = "auto"
    # vLLM's --pooler-config as canonical JSON (engines/vllm_pooler_config.py), None where not given: its pooling type
    # comes before the Sentence Transformers module's and the class's (vllm_pooling_budget.incremental_prefill)
    pooler_config: Optional[str] = None
    mtp: tuple = (0, 0)  # (parameters, stored bytes) of the multi-token-prediction blocks a checkpoint ships
    mtp_modules: int = 0  # those blocks: the MTP modules vLLM builds to draft with (speculative method mtp)
    mtp_module: tuple = ()  # ParamGroups of one of them as vLLM builds it (params.mtp_module_groups)
    multimodal: bool = False  # a vision tower beside the language model (parse._multimodal): engines profile it
    vision_encoder: Optional[VisionEncoder] = None  # the tower's profile shape where kvplan models it (vision.py)
    media_prefix: Optional[MediaPrefix] = None  # bidirectional attention over media items (Gemma 4's "vision")
    audio_tower: bool = False  # an audio_config beside the language model: vLLM's Gemma 4 then takes audio items
    # a discrete-diffusion model's denoising canvas, the tokens vLLM schedules as draft tokens each denoising step
    # (model/layers.py diffusion_canvas: DiffusionGemma's); 0: an autoregressive model
    canvas_length: int = 0
    draft: Optional[object] = None  # engines/vllm_speculative.py Drafter: what --speculative-config adds to serving
    # the frozen transformers whose config classes filled what the config left out (class_defaults.transformers_for;
    # None: the newest), with which verify's forward reads the same raw config (verify/arch.py); not compared (nor by
    # identical): two specs read alike are the same model whichever table read them
    transformers: Optional[str] = field(default=None, compare=False)
    # (parameters, stored bytes) vLLM loads beyond the checkpoint, negative for fewer (params.load_delta: Gemma 4's
    # K = V layers gain V rows, its KV-sharing layers drop the K / V the checkpoint ships)
    load_delta: tuple = (0, 0)
    per_layer_input: int = 0  # Gemma 4's hidden_size_per_layer_input (per-layer embeddings; 0: none)
    mla_up_elements: int = 0  # one MLA layer's kv_b_proj elements at tp 1 (tensors.mla_up_projection; 0: no MLA)
    mla_q_elements: int = 0  # one MLA layer's q_b_proj / q_proj elements at tp 1 (tensors.mla_query_projection)
    # the lightning indexer's wq_b input width (q_lora_rank) of a sparse-attention config (0: no indexer), which the
    # indexers a release builds beyond the config's are priced by (engines/vllm_index_share.py shared_indexer_weights)
    indexer_q_rank: int = 0
    per_layer_table: int = 0  # of the embed group, the per-layer embedding table's parameters (not the LM head's)
    # the cache format `--kv-cache-dtype auto` means when it is not the model dtype: DeepSeek-V4's attention turns
    # auto into its fp8_ds_mla layout (vLLM models/deepseek_v4/attention.py _resolve_dsv4_kv_cache_dtype)
    auto_kv_dtype: str = ""
    # the KV cache the checkpoint names: a ModelOpt quantization_config's (params.modelopt_kv_cache: fp8_e4m3, nvfp4)
    # or a compressed-tensors kv_cache_scheme's (params.compressed_kv_cache: fp8), which vLLM stores from a release on
    # (engines/vllm_kv_dtype.py CHECKPOINT_KV); auto_kv_dtype holds it as kvplan's pinned release reads it; "" for none
    checkpoint_kv_dtype: str = ""
    # the compressed-tensors kv_cache_scheme's fields vLLM validates, ((key, value), ...), where checkpoint_kv_dtype
    # comes from one (params.compressed_kv_scheme; engines/vllm_ct_kv.py refuses what each release refuses)
    kv_cache_scheme: tuple = ()
    # the language model's config's own mamba_ssm_cache_dtype ("auto", "float32", "float16", "bfloat16" as written;
    # "" where it names none of them), which vLLM's NemotronH config handler reads (engines/vllm_mamba_state.py
    # ssm_state_dtype)
    ssm_cache_dtype: str = ""
    # the language model's config's own mamba_ssm_dtype (the same values, as written; "" where it names none of them),
    # which vLLM's Qwen3.5 config handler reads (engines/vllm_mamba_state.py ssm_state_dtype)
    config_ssm_dtype: str = ""
    # vLLM's --mamba-cache-dtype / --mamba-ssm-cache-dtype as asked ("" not given: 'auto'), set where the commands
    # apply the flags (engines/vllm_cache_flags.py with_cache_flags); engines/vllm_mamba_state.py ssm_state_dtype
    # reads them
    mamba_cache_dtype: str = ""
    mamba_ssm_cache_dtype: str = ""
    # (conv, temporal) dtype names of the Mamba / linear-attention states as the engine keeps them, set by its GPU
    # view (engines/vllm_model_dtype.py on_gpu from mamba_state_dtypes, the page size's rule); (): the model dtype
    state_dtypes: tuple = ()
    attention_sinks: bool = False  # some attention layer has a learned sink a head (layers.attention_sinks)
    attention_softcap: bool = False  # its attention layers soft-cap their logits (layers.attention_softcap)
    # --dtype named the model dtype (vLLM resolves only `auto` per GPU: vllm_model_dtype.served_dtype)
    dtype_asked: bool = False
    length_key: str = "max_position_embeddings"  # the config field max_position_embeddings was read from
    # the config's own length where --disable-sliding-window capped max_position_embeddings to the window
    # (length_key 'sliding_window'; engines/vllm_cache_flags.py without_sliding_window); None: not capped
    config_length: Optional[int] = None
    # the config's RoPE scaling entries, RopeEntry each (parse._rope_factors), and its top-level
    # original_max_position_embeddings (Phi-3's LongRoPE); engines/vllm_rope_len.py scales the length by them
    rope_factors: tuple = ()
    rope_original: Optional[int] = None
    # the length before vLLM's RoPE scaling where a release's view multiplied max_position_embeddings
    # (vllm_rope_len.rope_view; None: not scaled), and LongRoPE's shorter default length (None: the derived one)
    rope_base_length: Optional[int] = None
    rope_default_length: Optional[int] = None
    # whether each decoder layer's sparse latent runs its own indexer as the config says (vLLM 0.32's reading) where a
    # release's view gave every one an indexer (engines/vllm_index_share.py index_view); (): the layers say it
    config_index_leaders: tuple = ()
    # the config's sliding_window where it is a list of per-layer windows (model/config.py WINDOW_LIST; None for a
    # full-attention layer), as written, which each vLLM release reads its own way (engines/vllm_window_list.py); ()
    # for one window or none
    window_list: tuple = ()
    sliding_window_disabled: bool = False  # --disable-sliding-window asked (engines/vllm_cache_flags.with_cache_flags)
    # what a release's view changed where it turned the window off itself (Gemma 2 before vLLM 0.6.5:
    # engines/vllm_gemma2_window.py window_view), to view the config again for another release; (): nothing
    release_window: tuple = ()
    # the MLA layers where a release's view cached every head's K and V instead (engines/vllm_premla.py per_head_view),
    # to view the config again for another release; (): nothing
    release_latents: tuple = ()
    # the smallest share of an expert's intermediate size a TP rank holds, vLLM padding the experts to tp x it
    # when tp splits them thinner (Kimi Linear: 256, kimi_k3/nvidia/model.py KimiMoE); 0: no padding
    expert_min_partition: int = 0
    # the weight quantisation as vLLM's ModelConfig.quantization starts from: the checkpoint's quantization_config
    # quant_method ("fp8", "awq", "compressed-tensors"; ModelOpt's by its algorithm: "modelopt" / "modelopt_fp4"),
    # and what --quantization asked ("" for neither); engines/vllm_quant.py resolves the method vLLM runs
    quantization: str = ""
    quantization_asked: str = ""
    # the quantization_config keys vLLM's AWQ / GPTQ classes read to pick their kernel or refuse the checkpoint,
    # ((key, value), ...) as the checkpoint sets them (params.quantization_fields)
    quantization_fields: tuple = ()
    # (bits, group_size, sym) of each quantised linear module under a GPTQ config's `dynamic` rules, in vLLM's build
    # order, each once (params.module_settings); () without rules
    module_settings: tuple = ()
    # (key, ((setting, value), ...)) of each `dynamic` rule but "-:" ones, in the file's order, with the desc_act and
    # group_size it sets (params.dynamic_overrides): AutoGPTQConfig's constructor reads every such rule
    dynamic_overrides: tuple = ()
    # ModelOpt's own config (no quant_method): (quant_algo, named by producer.name) (params.modelopt_legacy_form)
    modelopt_legacy: tuple = ()

    def param_count(self, name: str) -> int:
        return sum(g.parameters for g in self.params if g.name == name)

    @property
    def expert_fraction(self) -> float:
        """Share of the parameters in routed experts, router excluded (decode reads only the experts a batch
        routes to; the router is read every step)."""
        return self.param_count("experts") / max(1, sum(g.parameters for g in self.params))

    @property
    def tower_uncounted(self) -> bool:
        """A multimodal model whose size is estimated from its config without its vision tower: the config names
        no tower kvplan sizes (model/vision.py), while vLLM loads one."""
        return (self.multimodal and "estimated from config" in self.weights.source
                and not any(g.bytes for g in self.params if g.name == "vision"))

    @cached_property
    def resident_weight_bytes(self) -> int:
        """What serving loads: the checkpoint less its multi-token-prediction blocks (model/tensors.py
        mtp_blocks: no engine loads them for the model itself; an estimate from the config never held them), and
        with what loading adds or drops (load_delta)."""
        mtp = 0 if self.weights.source == "estimated from config" else self.mtp[1]
        return max(0, self.weights.bytes - mtp + self.load_delta[1])

    @cached_property
    def layer_counts(self) -> tuple:
        """(layer kind, number of layers) pairs, in first-seen order: sums over the model cost its distinct kinds,
        not its layers, so a plan's TP and context searches stay fast whatever num_hidden_layers says."""
        return tuple(Counter(self.layers).items())

    @cached_property
    def attention_layers(self) -> tuple:
        """Layers holding an attention cache (not a recurrent state, not another layer's cache: SharedKV)."""
        return tuple(layer for layer in self.layers if not isinstance(layer, (LinearState, SharedKV)))

    @cached_property
    def linear_layers(self) -> tuple:
        return tuple(layer for layer in self.layers if isinstance(layer, LinearState))

    @cached_property
    def compressed_attention(self) -> bool:
        """DeepSeek-V4's compressed sparse attention (its window cache is on every layer)."""
        return any(layer.kind == "v4_window" for layer in self.layers)

    @cached_property
    def is_mla(self) -> bool:
        return any(isinstance(layer, MLALatent) for layer in self.layers)

    @cached_property
    def kv_heads(self) -> Optional[int]:
        """KV heads of the attention layers (None for MLA-only or attention-free models)."""
        heads = {layer.kv_heads for layer in self.attention_layers if isinstance(layer, FullAttention)}
        return max(heads) if heads else None

    @cached_property
    def head_dim(self) -> Optional[int]:
        dims = {layer.head_dim for layer in self.attention_layers if isinstance(layer, FullAttention)}
        return max(dims) if dims else None

    @cached_property
    def windows(self) -> dict:
        """window -> number of layers with that window."""
        # DeepSeek-V4's compressor states keep a few tokens' rows by a window of their own, not the sequence's
        return dict(Counter(layer.window for layer in self.attention_layers
                            if layer.window is not None and layer.kind != "v4_state"))

    @cached_property
    def uniform(self) -> bool:
        """Every cache layer holds every token (full attention or MLA): one pool with one token count."""
        return all(layer.window is None for layer in self.layers) and not self.linear_layers


def identical(a: ModelSpec, b: ModelSpec) -> bool:
    """`a` and `b` alike in every field, the ones equality leaves out included (a layer's heads_field, which words
    its errors), a drafter's spec's as well: either may stand for the other where a memo keys specs by identity."""
    if a is b:
        return True
    if a != b or _heads_fields(a) != _heads_fields(b):
        return False
    drafts = [getattr(getattr(s, "draft", None), "model", None) for s in (a, b)]
    return drafts[0] is None or identical(*drafts)


def _heads_fields(spec: ModelSpec) -> list:
    return [getattr(layer, "heads_field", None) for layer in spec.layers]
