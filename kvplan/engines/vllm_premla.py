"""MLA models vLLM caches as every head's K and V, as any multi-head attention layer: DeepSeek-V2 / V3 before it
cached the latent, MiniCPM3 in every release.

- 0.5.1 (DeepseekV2ForCausalLM registered) to 0.6.6 (DeepseekV3ForCausalLM from 0.6.6): ModelConfig.get_head_size
  returns 256 for a "deepseek_v2" config ("we need to pad head_size 192 to 256" for FlashAttention: config.py
  0.5.1:308-314, 0.5.4:325-328, 0.6.3:451-457; + "deepseek_v3" in 0.6.6:719-726), and the model builds
  Attention(num_local_heads, 256, num_kv_heads=num_local_heads) with q, k and v padded to 256 (models/deepseek_v2.py
  0.5.1:278, 0.5.4:264-266 and :303-311, 0.6.6:266; models/deepseek_v3.py 0.6.6:274-275 and :314-322).
- 0.7.0: get_head_size returns qk_nope_head_dim + qk_rope_head_dim (config.py 0.7.0:733-743), the layer
  Attention(num_local_heads, qk_head_dim, num_kv_heads=num_local_heads) with v padded to qk_head_dim (deepseek_v2.py
  0.7.0:265-268 and :316-319, deepseek_v3.py 0.7.0:272 and :324).
- 0.7.1-0.7.2: ModelConfig.use_mla caches the latent (get_head_size kv_lora_rank + rope, no V: config.py
  0.7.1:747-756, worker/cache_engine.py 0.7.1:107-116), but is False for a quantization other than fp8 and
  compressed-tensors ("MLA is not supported with %s quantization. Disabling MLA.", config.py 0.7.1:972-978,
  0.7.2:987-996); the layer is then 0.7.0's (deepseek_v2.py 0.7.1:265-268, :491-494). 0.7.3 keeps MLA on whatever
  the quantization (config.py 0.7.3:998-999). A compressed-tensors checkpoint is MLA only where every group is fp8
  weights and activations (0.7.1:980-997); kvplan does not read the groups and plans it as MLA (its FP8 checkpoints).
  VLLM_MLA_DISABLE (an environment variable, every release from 0.7.1) is not a flag kvplan takes.
The V0 cache holds K and V of get_head_size for get_num_kv_heads = num_key_value_heads // tp heads a rank
(worker/cache_engine.py 0.5.4:105-123, 0.7.0:101-119): the configs' num_key_value_heads equal their
num_attention_heads (DeepSeek-V2-Lite 16, DeepSeek-V3 128), so the layer's heads split by TP as its queries do.

MiniCPM3 (MiniCPM3ForCausalLM from 0.6.2) has DeepSeek-V2's MLA projections but vLLM never caches its latent: every
release builds Attention(num_local_heads, qk_head_dim, num_kv_heads=num_local_heads), num_local_heads =
num_attention_heads // tp, with v padded to qk_head_dim (models/minicpm3.py 0.6.2:75, :116-119, :164-166; 0.6.3:118-121;
0.8.5:120-123, :167; 0.11.0:121-124, :168; 0.34.0:80, :126-131, :173), and ModelConfig.is_deepseek_mla never names
"minicpm3" (config.py 0.7.3:763-767, 0.8.5:980-992; config/model.py 0.11.0:1076-1089;
transformers_utils/model_arch_config_convertor.py 0.34.0:294-328), so use_mla stays off. V0 sizes the cache by
get_head_size, the config's head_dim (config.py 0.6.2:465-466, 0.8.5:1015; worker/cache_engine.py 0.6.3:107-108),
which the checkpoint's remote MiniCPM3Config sets to qk_nope_head_dim + qk_rope_head_dim; V1 by the layer's own
head_size (v1/worker/gpu_model_runner.py 0.8.5:1754-1755; model_executor/layers/attention/attention.py 0.34.0:358,
:705-711): qk_head_dim either way.
"""

from __future__ import annotations

from dataclasses import replace

from .vllm_versions import in_span, release_order, release_rule

MLA_SINCE = (0, 7, 1)  # the first release that caches the latent
MLA_TYPES = ("deepseek_v2", "deepseek_v3")  # the model types these releases pad or cache per head (docstring)
ALWAYS_PER_HEAD = ("minicpm3",)  # model types every release caches per head at qk_head_dim (docstring)
# The head size K and V are cached at by first release, newest first (docstring); "qk": qk_nope + qk_rope
HEAD_SIZE_RULES = (((0, 7), "qk", "config.py 0.7.0:733-743 get_head_size, deepseek_v2.py 0.7.0:265-268"),
                   ((0, 0), 256, "config.py 0.5.1:308-314 ... 0.6.6:719-726, deepseek_v2.py 0.5.1:278"))
QUANTIZED_OFF = ((0, 7, 1), (0, 7, 3))  # [from, before): use_mla off for other quantizations
MLA_QUANTIZATIONS = ("fp8", "compressed-tensors")


def caches_per_head(spec, version: str) -> bool:
    """Whether vLLM `version` caches `spec`'s MLA layers as every head's K and V (module docstring)."""
    if spec.model_type in ALWAYS_PER_HEAD:
        return True
    if spec.model_type not in MLA_TYPES:
        return False
    if in_span(version, QUANTIZED_OFF):
        quantization = spec.quantization_asked or spec.quantization
        return bool(quantization) and quantization not in MLA_QUANTIZATIONS
    return release_order(version) < MLA_SINCE


def per_head_view(spec, version: str):
    """`spec` as vLLM `version` caches it: each dense MLA layer as `num_attention_heads` K and V heads of the
    release's head size (HEAD_SIZE_RULES) where it caches per head, with a note saying so; the latents kept in
    ModelSpec.release_latents for `with_latents`."""
    from ..model.kinds import MLALatent

    spec = with_latents(spec)
    if not caches_per_head(spec, version):
        return spec
    rule = "qk" if spec.model_type in ALWAYS_PER_HEAD else release_rule(HEAD_SIZE_RULES, version)
    layers = tuple(layer.per_head(spec.num_attention_heads, 0 if rule == "qk" else rule)
                   if isinstance(layer, MLALatent) and not layer.sparse else layer for layer in spec.layers)
    if layers == spec.layers:
        return spec
    return replace(spec, layers=layers, release_latents=spec.layers,
                   notes=spec.notes + (_note(spec, layers, version),))


def latent_since(spec) -> str:
    """The first release that caches DeepSeek `spec`'s MLA latent (module docstring): 0.7.3 under a quantization
    that turns use_mla off in 0.7.1-0.7.2 (QUANTIZED_OFF), else 0.7.1 (MLA_SINCE)."""
    off = caches_per_head(spec, ".".join(map(str, QUANTIZED_OFF[0])))
    return ".".join(map(str, QUANTIZED_OFF[1] if off else MLA_SINCE))


def with_latents(spec):
    """`spec` before per_head_view: its MLA layers back where a release's view replaced them."""
    kept = getattr(spec, "release_latents", ())
    if not kept:
        return spec
    notes = tuple(note for note in spec.notes if not note.startswith(NOTE_START))
    return replace(spec, layers=kept, release_latents=(), notes=notes)


NOTE_START = "MLA cached per head:"


def _note(spec, layers, version: str) -> str:
    """What per_head_view says: the head size the release caches K and V at, and why."""
    head = next(layer.head_dim for layer, was in zip(layers, spec.layers) if layer is not was)
    if spec.model_type in ALWAYS_PER_HEAD:
        why = f"vLLM's {spec.model_type}.py builds per-head attention in every release, caching no latent"
    elif in_span(version, QUANTIZED_OFF):
        why = (f"its use_mla is off for {spec.quantization_asked or spec.quantization} quantization (fp8 and "
               f"compressed-tensors only: config.py 0.7.1:972-978)")
    else:
        why = "it caches no MLA latent before 0.7.1"
    padded = "q, k and v padded to it for FlashAttention" if head == 256 else "v padded to the key width"
    return (f"{NOTE_START} vLLM {version} keeps every head's K and V, head size {head} ({padded}), "
            f"{spec.num_attention_heads} heads split by TP: {why}")
