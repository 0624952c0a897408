"""Parameter groups of a config, each with its stored precision: the weight estimate (when neither safetensors
metadata nor a bundled spec gives the exact size) and the decode model's bytes per step both read these groups,
never the raw config. Every MoE expert is counted (all are resident on the GPU), the LM head is tied to the
embedding when the config says so, and quantised checkpoints are priced at their stored size: only the linear
layers are quantised, embeddings and norms stay in the model dtype."""

from __future__ import annotations

from .config import MAX_VOCAB, Config
from .precision import DTYPE_BYTES
from .spec import ParamGroup, Weights

# Families whose MLP is up/down only (no gate projection).
NON_GATED_MLP = ("gpt2", "falcon", "refinedweb", "refinedwebmodel", "gpt_bigcode", "gpt_neox", "phi")
# Families whose config class ties the LM head to the embedding unless the file says otherwise.
TIED_BY_DEFAULT = ("gemma", "gemma2", "gemma3", "gemma3_text", "gpt2")
# Groups a quantised checkpoint stores in its quantised format (mxfp4 quantises the routed experts only).
LINEAR_GROUPS = ("attention", "linear", "dense", "shared_experts", "experts")
HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "dim")


def _attention_params(cfg: Config, hidden: int, heads: int, kv_heads: int, head_dim: int) -> int:
    if cfg.has("kv_lora_rank"):  # MLA: low-rank q and kv projections
        rope, nope = cfg.optional_int("qk_rope_head_dim"), cfg.optional_int("qk_nope_head_dim")
        v_dim = cfg.int("v_head_dim", required=False, minimum=0) or nope
        kv_rank, q_rank = cfg.optional_int("kv_lora_rank"), cfg.optional_int("q_lora_rank")
        q = hidden * q_rank + q_rank * heads * (nope + rope) if q_rank else hidden * heads * (nope + rope)
        kv = hidden * (kv_rank + rope) + kv_rank * heads * (nope + v_dim)
        return q + kv + heads * v_dim * hidden
    return hidden * head_dim * (2 * heads + 2 * kv_heads)


def _linear_attention_params(cfg: Config, hidden: int) -> int:
    nk, nv = cfg.optional_int("linear_num_key_heads"), cfg.optional_int("linear_num_value_heads")
    dk, dv = cfg.optional_int("linear_key_head_dim"), cfg.optional_int("linear_value_head_dim")
    key_dim, value_dim = nk * dk, nv * dv
    return hidden * (2 * key_dim + 2 * value_dim + 2 * nv) + value_dim * hidden


def _mlp_params(cfg: Config, hidden: int, layers: int) -> tuple[int, int, int]:
    """(dense MLP params, shared-expert params, routed-expert params incl. routers) over all layers."""
    gated = cfg.model_type not in NON_GATED_MLP
    per_matrix = 3 if gated else 2
    inter = cfg.optional_int(("intermediate_size", "n_inner", "ffn_hidden_size")) or 4 * hidden
    experts = cfg.optional_int(("n_routed_experts", "num_local_experts", "num_experts"))
    if not experts:
        return layers * per_matrix * hidden * inter, 0, 0
    expert_inter = cfg.optional_int("moe_intermediate_size") or inter
    shared = cfg.optional_int("n_shared_experts") * expert_inter + cfg.optional_int("shared_expert_intermediate_size")
    if cfg.model_type.startswith("llama4"):
        shared = inter  # Llama 4: every MoE layer also runs one shared expert of intermediate_size
    dense_layers = cfg.optional_int("first_k_dense_replace")
    step = cfg.optional_int(("interleave_moe_layer_step", "decoder_sparse_step")) or 1
    moe_layers = sum(1 for i in range(dense_layers, layers) if (i + 1) % step == 0)
    dense_inter = cfg.optional_int(("intermediate_size_mlp", "intermediate_size")) or inter
    dense = (layers - moe_layers) * per_matrix * hidden * dense_inter
    routed = moe_layers * (experts * per_matrix * hidden * expert_inter + hidden * experts)
    return dense, moe_layers * per_matrix * hidden * shared, routed


def quantized_format(qcfg: dict) -> tuple[float, str, bool]:
    """(bytes per quantised parameter, format name, experts only?) of a quantization_config."""
    method = str(qcfg.get("quant_method", "")).lower()
    bits = qcfg.get("bits") or qcfg.get("w_bit") or 4
    group = qcfg.get("group_size") or qcfg.get("q_group_size") or 128
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 16:
        bits = 4
    if not isinstance(group, int) or isinstance(group, bool) or group < 1:
        group = 128
    if method == "mxfp4":
        return 4.25 / 8, "mxfp4", True  # 4-bit values + one 8-bit scale per 32; gpt-oss quantises experts
    if method in ("fp8", "fbgemm_fp8") or "fp8" in str(qcfg.get("fmt", "")):
        return 1.0, "fp8", False
    if method in ("awq", "gptq", "marlin", "autoround"):
        return bits / 8 + 4 / group, f"int{bits}-{method}", False  # fp16 scale + packed zero per group
    if method == "bitsandbytes":
        return (0.5 + 4 / 64, "nf4", False) if qcfg.get("load_in_4bit") else (1.0, "int8", False)
    if method == "compressed-tensors":
        return 1.0, "compressed-tensors (8-bit assumed)", False
    return bits / 8, f"{method or 'quantized'} {bits}-bit", False


def parameter_groups(cfg: Config, *, hidden: int, layers: int, heads: int, kv_heads: int, head_dim: int,
                     dtype: str) -> tuple:
    """ParamGroups of this config: embed, lm_head, attention, linear (linear attention / Mamba), dense (MLPs),
    shared_experts, experts (routed, with their routers), norms; each with its stored bytes per parameter."""
    vocab = cfg.optional_int(("vocab_size", "padded_vocab_size"), maximum=MAX_VOCAB)
    tied = cfg.flag("tie_word_embeddings", cfg.model_type in TIED_BY_DEFAULT)
    attention = layers * _attention_params(cfg, hidden, heads, kv_heads, head_dim)
    linear = 0
    every = cfg.optional_int("full_attention_interval")
    if every:  # hybrid: only every `every`-th layer is softmax attention
        full = layers // every
        attention = full * _attention_params(cfg, hidden, heads, kv_heads, head_dim)
        linear = (layers - full) * _linear_attention_params(cfg, hidden)
    dense, shared, experts = _mlp_params(cfg, hidden, layers)
    counts = {"embed": vocab * hidden, "lm_head": 0 if tied else vocab * hidden, "attention": attention,
              "linear": linear, "dense": dense, "shared_experts": shared, "experts": experts,
              "norms": (2 * layers + 1) * hidden}
    model_bytes = DTYPE_BYTES[dtype]
    qcfg = cfg.get("quantization_config")
    quantized, fmt = (), dtype
    per_param = model_bytes
    if isinstance(qcfg, dict):
        per_param, fmt, experts_only = quantized_format(qcfg)
        quantized = ("experts",) if experts_only else LINEAR_GROUPS
    return tuple(ParamGroup(name, count, per_param if name in quantized else model_bytes,
                            fmt if name in quantized else dtype) for name, count in counts.items())


def estimate_weights(groups: tuple, dtype: str) -> Weights:
    """Stored size of the parameter groups of a config."""
    total = sum(g.parameters for g in groups)
    formats = {g.stored for g in groups if g.parameters}
    quantized = [g for g in groups if g.stored != dtype]
    if not quantized:
        return Weights(total, total * DTYPE_BYTES[dtype], dtype, "estimated from config")
    count = sum(g.parameters for g in quantized)
    stored = int(count * quantized[0].bytes_per_param + (total - count) * DTYPE_BYTES[dtype])
    fmt = next(iter(formats - {dtype}), dtype)
    return Weights(total, stored, fmt, "estimated from config")
