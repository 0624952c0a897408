"""Sparse MLA configs that share lightning indexers (GLM-5.2's IndexShare: index_topk_freq, index_skip_topk_offset,
index_topk_pattern) in vLLM releases before the first that builds an indexer only where the config says.

kvplan's model reader sizes them as vLLM 0.32 builds them (model/layers.py indexer_layers: 21 of GLM-5.2's 78
layers run an indexer and hold its 132-byte key cache). Read in the sources of 0.16.0 (GlmMoeDsaForCausalLM's first
registry entry, models/registry.py:117) to 0.32.0, model_executor/models/deepseek_v2.py DeepseekV2MLAAttention:
- 0.16.0-0.20.2 (0.16.0 :832-853, 0.20.0 :976-997; 0.17.0, 0.20.1 and 0.20.2 alike): every layer of a config with
  index_topk builds an Indexer, whose DeepseekV32IndexerCache registers its key cache; no sharing key is read.
- 0.21.0-0.22.1 (:986-1023): the same; index_topk_freq / index_topk_pattern (offset fixed at 1) only set
  skip_topk, and only under the config's use_index_cache.
- 0.23.0 (:999-1038): all three keys set skip_topk, the offset too, but every layer still builds its indexer.
- 0.24.0 on (:1003-1049 `if self.is_v32 and (not _skip_topk or is_mtp_layer)`; 0.25.1 :1106, 0.27.0 :1121, 0.28.0
  :1084-1110; from 0.29, whose registry names vllm.models.deepseek_v32, models/deepseek_v32/attention.py
  DeepseekV32Attention, 0.29.0 :164-185, 0.30.0-0.32.0 :169-190, whose ROCm subclass builds alike): a layer that
  reuses a top-k builds no indexer and holds no key cache.
  MLAAttentionSpec.is_index_group_leader (v1/kv_cache_interface.py 0.30.0 :653; none in 0.29.0) only parts the two
  kinds of latent into attention groups of the one KV cache group: no capacity changes with it.
So before 0.24 every sparse layer holds the indexer's keys (index_view). And there vLLM loads such a checkpoint only
with quantised weights: the checkpoint ships no indexer for the layers that share one (0.24-0.32's load_weights
looks every checkpoint tensor up among the model's parameters, models/deepseek_v32/nvidia/model.py 0.32.0 :420, so
it could not load one), and the loader checks the parameters it left unset for an unquantised model
(model_config.quantization None): 0.16.0-0.20.x model_loader/default_loader.py (0.16.0 :300-306, 0.20.0 :390-396)
every one; 0.21.0-0.23.0 (:403-436 track_weights_loading) excuse those of modules with a quant method (the linear
layers), not the indexer's k_norm (a LayerNorm, deepseek_v2.py 0.23.0 :644). A quantised checkpoint or --quantization
skips the check: vLLM starts with those indexers as allocated (index_share_refusal).
Releases before 0.16 (DeepseekV32ForCausalLM's from 0.11.0) read no sharing key either (the keys came in 0.21.0).

Those extra indexers' weights are allocated as the model is built, loaded or not, so the weights term vLLM measures
holds them (shared_indexer_weights); kvplan's parameter groups price the indexers the config asks for (model/
params.py, as 0.32 builds them). One Indexer (model_executor/models/deepseek_v2.py Indexer.__init__), every rank
holding it whole:
- wq_b, a ReplicatedLinear q_lora_rank -> index_n_heads x index_head_dim with the attention's quant_config (0.11.0
  :746-750, 0.16.0 :614-618, 0.20.0 :632-636, 0.23.0 :627-631): stored as the checkpoint stores its attention
  projections (an fp8 checkpoint: fp8 with its block scales; --quantization fp8: the online method's meta weight,
  which model_loader/reload/layerwise.py 0.23.0 :254-259 finalize_layerwise_processing materialises and quantises
  for a layer the checkpoint has no weights for, so fp8 and a scale all the same).
- 0.11.0-0.19.x: wk, a ReplicatedLinear hidden -> index_head_dim with the quant_config too, and weights_proj, one
  hidden -> index_n_heads with quant_config None (0.11.0 :751-760, 0.16.0 :621-633, 0.19.0 and 0.19.1 :642-654);
  0.20.0 on: one MergedColumnParallelLinear wk_weights_proj hidden -> index_head_dim + index_n_heads, quant_config
  None, disable_tp (0.20.0 :641-645, 0.23.0 :636-640): in the model dtype.
- k_norm: a LayerNorm of index_head_dim, float32 weight and bias (model_executor/layers/layernorm.py 0.16.0
  :452-453, 0.23.0 :322-323).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..model.kinds import IndexerKeys, MLALatent
from ..model.precision import DTYPE_BYTES
from .figures import Refusal
from .vllm_versions import PINNED, release_rule

# what vLLM builds for a sparse layer the config marks as reusing a top-k, by first release (newest first)
INDEXERS_BUILT = (
    ((0, 24), "own", "0.24.0 deepseek_v2.py:1003-1049 ... 0.32.0 models/deepseek_v32/attention.py:169-190"),
    ((0, 23), "every, skipping", "0.23.0 deepseek_v2.py:999-1038: the keys set skip_topk; an Indexer on every layer"),
    ((0, 11), "every", "0.16.0 deepseek_v2.py:832-853, 0.20.0 :976-997, 0.21.0-0.22.1 :986-1023 (use_index_cache)"),
)
# where wk leaves the quant_config for one unquantised projection fused with weights_proj, by first release
WK_FUSED = (
    ((0, 20), True, "0.20.0 deepseek_v2.py:641-645 wk_weights_proj, quant_config None (0.23.0 :636-640)"),
    ((0, 11), False, "0.11.0 deepseek_v2.py:751-760, 0.16.0 :621-633, 0.19.1 :642-654: wk quantised, weights_proj not"),
)
NORM_BYTES = 4  # k_norm's float32 weight and bias
NOTE_START = "Shared indexers: vLLM"
MISSING = "Following weights were not initialized from checkpoint"  # default_loader.py 0.16.0 :304-305


def builds_every_indexer(version: str = PINNED) -> bool:
    """Whether vLLM `version` builds a lightning indexer (and its key cache) on every sparse layer, whatever the
    config's sharing keys say (INDEXERS_BUILT)."""
    return release_rule(INDEXERS_BUILT, version, "every") != "own"


def first_sharing_release() -> str:
    """The first release that builds an indexer only where the config says."""
    return ".".join(map(str, INDEXERS_BUILT[0][0] + (0,)))


def config_leaders(spec) -> tuple:
    """Whether each decoder layer's sparse latent runs its own indexer as the config says (vLLM 0.32's reading,
    model/layers.py indexer_layers), whatever release's view `spec` is (drafter layers left out)."""
    if spec.config_index_leaders:
        return spec.config_index_leaders
    latents = [layer for layer in spec.layers if isinstance(layer, MLALatent) and layer.sparse]
    return tuple(layer.leads_index_group for layer in latents[:spec.num_hidden_layers])


def _with_leaders(layers: tuple, leaders: tuple, keys: IndexerKeys) -> tuple:
    """`layers` with the first len(leaders) sparse latents leading an index group as `leaders` says, the indexer's
    `keys` right after each that does (as model/layers.py cache_layers lays them); later layers (a drafter's) as
    they are."""
    out, seen, follows = [], 0, False
    for layer in layers:
        if follows and type(layer) is IndexerKeys:  # the keys of a latent just laid out anew
            follows = False
            continue
        follows = False
        if isinstance(layer, MLALatent) and layer.sparse and seen < len(leaders):
            leads, seen, follows = leaders[seen], seen + 1, True
            out += [replace(layer, leads_index_group=leads)] + ([keys] if leads else [])
        else:
            out.append(layer)
    return tuple(out)


def shared_indexer_weights(spec, stage=None, version: str = PINNED) -> int:
    """Bytes one rank of pipeline `stage` (None: the whole model) holds for the lightning indexers vLLM `version`
    builds on the sparse layers the config marks as reusing a top-k (the module docstring): 0 where the release
    builds an indexer only where the config says, which kvplan's weights already follow, and for a config that
    shares none. The quantised projections at the attention group's stored bytes a parameter."""
    keys = next((layer for layer in spec.layers if type(layer) is IndexerKeys), None)
    attention = next((g for g in spec.params if g.name == "attention"), None)
    if keys is None or attention is None or not builds_every_indexer(version):
        return 0
    first, end = (0, spec.num_hidden_layers) if stage is None else (stage.first_layer, stage.end_layer)
    extra = config_leaders(spec)[first:end].count(False)
    if not extra:
        return 0
    dim, heads, wk = keys.head_dim, keys.heads, spec.hidden_size * keys.head_dim
    fused = release_rule(WK_FUSED, version, True)
    quantised = heads * dim * spec.indexer_q_rank + (0 if fused else wk)  # wq_b (and wk up to 0.19)
    plain = spec.hidden_size * heads + (wk if fused else 0)  # weights_proj (and wk from 0.20)
    one = quantised * attention.bytes_per_param + plain * DTYPE_BYTES[spec.dtype] + 2 * dim * NORM_BYTES
    return round(extra * one)


def index_view(spec, version: str = PINNED):
    """`spec` with its cache layers as vLLM `version` builds them: before 0.24 an indexer on every sparse layer (the
    config's leaders kept in config_index_leaders, so a view for another release starts from them again) and a
    note saying so; unchanged where the config shares no indexer or the release reads the sharing."""
    leaders = config_leaders(spec)
    keys = next((layer for layer in spec.layers if type(layer) is IndexerKeys), None)
    notes = tuple(note for note in spec.notes if not note.startswith(NOTE_START))
    if all(leaders) or keys is None:  # no sharing, or no indexer to copy (an index_topk_pattern of 'S' only)
        return spec
    if not builds_every_indexer(version):
        if not spec.config_index_leaders:
            return spec
        return replace(spec, layers=_with_leaders(spec.layers, leaders, keys), config_index_leaders=(), notes=notes)
    every = (True,) * len(leaders)
    return replace(spec, layers=_with_leaders(spec.layers, every, keys), config_index_leaders=leaders,
                   notes=notes + (_note(leaders.count(False), version),))


def _note(shared: int, version: str) -> str:
    skips = " (it reads them only to skip those layers' top-k)" \
        if release_rule(INDEXERS_BUILT, version) == "every, skipping" else ""
    return (f"{NOTE_START} {version} builds a lightning indexer on every sparse layer whatever index_topk_freq / "
            f"index_skip_topk_offset / index_topk_pattern say{skips} (model_executor/models/deepseek_v2.py "
            f"DeepseekV2MLAAttention), so the {shared} layers the config marks as reusing a top-k hold the indexer's "
            f"keys too, and its weights, which the checkpoint does not ship (left unset where a quantised model "
            f"loads; counted in the weights term); {first_sharing_release()} on build them only where the config says")


def index_share_refusal(spec, version: str = PINNED, capability=()) -> Optional[Refusal]:
    """vLLM's refusal, as it loads the weights, of an unquantised checkpoint whose config shares indexers in a
    release that builds every layer's (the module docstring); None where it loads."""
    from .vllm_quant import vllm_method

    if not builds_every_indexer(version) or vllm_method(spec, capability, version) is not None:
        return None
    leaders = config_leaders(spec)
    if all(leaders):
        return None
    first = leaders.index(False)  # the decoder layer: every layer holds a sparse latent
    return Refusal(f"vLLM {version} builds a lightning indexer on every sparse layer (model_executor/models/"
                   f"deepseek_v2.py DeepseekV2MLAAttention), but the checkpoint has none for the "
                   f"{leaders.count(False)} layers its config marks as reusing a top-k (index_topk_freq / "
                   f"index_skip_topk_offset / index_topk_pattern), so loading an unquantised model stops "
                   f"(model_executor/model_loader/default_loader.py load_weights): ValueError: {MISSING}: "
                   f"{{'model.layers.{first}.self_attn.indexer.k_norm.weight', ...}}",
                   None, configuration=True, field="engine", options=(f"vllm=={first_sharing_release()}",),
                   onward="newer")
