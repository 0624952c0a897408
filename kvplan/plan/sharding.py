"""Tensor- and pipeline-parallel sharding, as vLLM enforces it (vllm/config/model.py and QKVParallelLinear):
query heads split evenly; each layer kind says whether a TP degree can shard it (KV heads split when tp
divides them or are replicated one per GPU when they divide tp; MLA latents are replicated on every rank;
linear-attention state heads split evenly).

Pipeline stages take contiguous decoder layers as vllm/distributed/utils.py get_pp_indices deals them (vLLM
0.32.0): num_hidden_layers // pp each, the remainder one more each on the stages before the last, counting back
from the second-to-last (61 layers at pp 2: [31, 30]; 62 at pp 4: [15, 16, 16, 15]); VLLM_PP_LAYER_PARTITION's
explicit list (the field `pp_layer_partition`, --pp-layer-partition) replaces that and must sum to
num_hidden_layers. Any layer count splits.

Data and expert parallelism (--data-parallel-size D, --enable-expert-parallel), the one place kvplan lays out an MoE
model's routed experts (moe_layout, MoeLayout): see moe_layout's docstring."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Optional

from ..errors import FieldError, quote
from ..memo import per_object
from ..model.kinds import FullAttention, LinearState, kv_heads_per_gpu
from ..model.spec import ModelSpec
from ..units import require_positive
from .capacity import layer_kinds


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: decoder layers [first_layer, end_layer) of the model."""

    index: int
    stages: int
    first_layer: int
    end_layer: int

    @property
    def is_first(self) -> bool:
        return self.index == 0

    @property
    def is_last(self) -> bool:
        return self.index == self.stages - 1

    @property
    def layers(self) -> int:
        return self.end_layer - self.first_layer


def require_stage_counts(pp: Optional[int], partition: Optional[tuple]) -> None:
    """A layer partition names one layer count per pipeline stage (vLLM 0.32.0 distributed/utils.py:148-149
    get_pp_indices: "len(partitions)=... does not match pp_size=..."). Another number of counts contradicts the
    caller's own pp (None: 1, vLLM's default) whatever the model, so it is refused as bad input (FieldError) where
    the settings are read, before any model; whether the counts fit the model's layers is sharding's verdict
    (_pp_errors), as every other fit of the settings to the model is."""
    stages = pp or 1
    if partition is not None and len(partition) != stages:
        counts = ",".join(map(str, partition))
        unset = "" if pp else " (its default)"
        raise FieldError("pp_layer_partition", f"has {len(partition)} stages ({counts}) but pp is {stages}{unset}: "
                                               f"vLLM needs one layer count per stage (VLLM_PP_LAYER_PARTITION); set "
                                               f"pp to {len(partition)}, or give {stages} layer "
                                               f"count{'s' if stages != 1 else ''}.", names=("pp",))


def pp_partition(num_hidden_layers: int, pp: int, partition: Optional[tuple] = None) -> tuple:
    """Layers per stage, as get_pp_indices deals them."""
    if partition is not None:
        return tuple(partition)
    counts = [num_hidden_layers // pp] * pp
    for i in range(2, num_hidden_layers % pp + 2):
        counts[-i] += 1
    return tuple(counts)


def pp_stages(num_hidden_layers: int, pp: int, partition: Optional[tuple] = None) -> tuple:
    """The pipeline's stages (frozen), dealt once per layer count and partition: a release remedy plans every
    boundary release at the same stages."""
    try:
        return _pp_stages(num_hidden_layers, pp, partition)
    except TypeError:  # a partition given as a list: dealt afresh
        return _pp_stages.__wrapped__(num_hidden_layers, pp, partition)


@lru_cache(maxsize=256)
def _pp_stages(num_hidden_layers: int, pp: int, partition: Optional[tuple] = None) -> tuple:
    counts, start, stages = pp_partition(num_hidden_layers, pp, partition), 0, []
    for i, count in enumerate(counts):
        stages.append(Stage(i, pp, start, start + count))
        start += count
    return tuple(stages)


def layer_share(spec: ModelSpec, stage: Optional[Stage]) -> float:
    """The share of the decoder layers pipeline `stage` builds (make_layers: get_pp_indices' range, the rest
    PPMissingLayer; vllm/model_executor/models/utils.py 0.32.0:886-916): what a stage holds of anything that comes
    once a layer (its weights, a kernel's padding of them), spread evenly over the layers as kvplan's per-layer bytes
    are; 1.0 for the whole model (None) or a one-stage pipeline."""
    return 1.0 if stage is None or stage.stages == 1 else stage.layers / spec.num_hidden_layers


def stage_cache_layers(spec: ModelSpec, stages: tuple) -> list:
    """The cache-layer indices (positions in spec.layers) each stage holds. Every bundled family keeps a cache in
    every decoder layer; when a config has cache-less layers (Nemotron-H MLP blocks) their positions are not in
    the spec, so cache layers are dealt to stages in proportion (approximate). A cache that joins a layer (kinds
    joins_layer: a sparse-attention indexer's keys beside the latent before them, DeepSeek-V4's compressed, state and
    indexer caches after the layer's window) sits in the same decoder layer as the cache before it."""
    if len(spec.layers) == spec.num_hidden_layers and not any(kind.joins_layer for kind, _ in spec.layer_counts):
        # one cache layer a decoder layer (a pp 16 release remedy asks this of every release it plans): a stage
        # holds its own range
        return [set(range(max(stage.first_layer, 0), min(stage.end_layer, len(spec.layers)))) for stage in stages]
    owners, layer = [], -1
    for kind in spec.layers:
        layer += not kind.joins_layer
        owners.append(layer)
    n, total = layer + 1, spec.num_hidden_layers
    decoder = owners if n == total else [owner * total // max(n, 1) for owner in owners]
    # one pass over the layers (a pp 16 release remedy asks this of every release it plans): each layer goes to the
    # stages whose range holds its decoder layer
    where: dict = {}
    for position, stage in enumerate(stages):
        for index in range(stage.first_layer, stage.end_layer):
            where.setdefault(index, []).append(position)
    held = [set() for _ in stages]
    for i, index in enumerate(decoder):
        for position in where.get(index, ()):
            held[position].add(i)
    return held


# Architectures whose vLLM model class does not implement SupportsPP, which ModelConfig.verify_with_parallel_config
# refuses at pp > 1 whatever the memory, in the same words from 0.6.3 on (SUPPORTS_PP_REFUSAL; config.py 0.6.3:415-418,
# 0.8.5:944-947, 0.10.0:1218-1221; config/__init__.py 0.10.1:1315-1319, 0.10.2:1365-1369; config/model.py
# 0.11.0:1059-1063, 0.32.0:1557-1563, 0.34.0:1590-1595): architecture -> (first release refused, last release
# refused; "" for every one before or since). Read off each release's registry: 0.6.3-0.10.2 by
# benchmarks/vllm_reference/supports_pp_scan.py (every three-part release's wheel, the registered class's bases,
# SupportsPP or not, through the classes it subclasses); 0.11.0 to 0.34.0 by every class of
# model_executor/models/registry.py _VLLM_MODELS imported and asked interfaces.supports_pp (0.15.0 and 0.15.1, wheels
# only, by their bases, which give 0.14.1's and 0.16.0's answers there too). The generative decoders among them
# (drafters, pooling and encoder-decoder models never take pp here), e.g. 0.32.0
# gemma3n.py:1102 Gemma3nForCausalLM(nn.Module), gemma3n_mm.py:575-576, mamba2.py:170-171, zamba2.py:836,
# idefics3.py:522-523 (SmolVLM subclasses it: smolvlm.py:31), phi4mm.py:1035, iquest_loopcoder.py:536, hrm_text.py:457,
# paddleocr_vl.py:934, aria.py:375; DeepSeek-V4 from 0.21.0 on (deepseek_v4.py 0.20.0:1413
# DeepseekV4ForCausalLM(nn.Module), 0.21.0:1620 with SupportsPP); Aria until 0.33.0; DiffusionGemma from 0.27.0
# (0.24.0-0.26.0 took it); MiniMax-Text-01 / M1 until 0.23.0 and Ouro until 0.26.0, the last releases listing them;
# 0.34.0's alice_ai.py:581 (nn.Module, HasInnerState, IsHybrid, SupportsLoRA, MixtureOfExperts), domyn_edge.py:226 and
# dory.py:283 (nn.Module), zaya.py:536 (nn.Module, HasInnerState, IsHybrid), models/mistral/mistral_large4/
# nvidia/model.py:449 and amd/model.py:468 (nn.Module, SupportsEagle3): the first three registered from 0.33.0.
# Those refused before 0.11 only, until the release before the one whose class gains SupportsPP: ChatGLM (chatglm.py
# 0.6.3:565, 0.6.4:580) and Molmo (molmo.py 0.6.3:1031, 0.6.4:1025) until 0.6.3; Mamba / FalconMamba (mamba.py
# 0.6.4:133, 0.6.5:156) and Jamba (jamba.py 0.6.4:330, 0.6.5:364) until 0.6.4; Llama 4 (mllama4.py 0.8.3:692,
# 0.8.4:653) until 0.8.3; Ovis (ovis.py 0.9.0:398, 0.9.1:404) until 0.9.0; Plamo2 (plamo2.py 0.10.0:585, 0.10.1:703)
# until 0.10.0; HunYuan V1 dense / MoE (hunyuan_v1.py 0.10.1:844 HunYuanV1Base(nn.Module, SupportsLoRA), 0.10.2:844
# with SupportsPP), Kimi-VL (kimi_vl.py 0.10.1:273, 0.10.2:281) and gpt-oss (gpt_oss.py 0.10.1:229
# GptOssForCausalLM(nn.Module), 0.10.2:616) until 0.10.1; Mllama (mllama.py 0.6.3:895 ... 0.10.2:1273), Phi-4-flash
# (phi4flash.py 0.10.2:598) and NemotronH_Nano_VL (nano_nemotron_vl.py, 0.10.2 only; NemotronH_Nano_VL_V2 from 0.11.0)
# in every release that lists them. Every other generative decoder registered in 0.6.3-0.10.2 implements SupportsPP
# there (Gemma-2, Phi-3, Mixtral, DeepSeek-V2 from 0.6.3: gemma2.py 0.6.3:363, phi3.py 0.6.3:8 subclassing llama.py
# :443 LlamaForCausalLM(nn.Module, SupportsLoRA, SupportsPP), mixtral.py :312, deepseek_v2.py :479).
NO_PIPELINE = {
    **dict.fromkeys(("Gemma3nForCausalLM", "Gemma3nForConditionalGeneration", "Idefics3ForConditionalGeneration",
                     "SmolVLMForConditionalGeneration", "Mamba2ForCausalLM", "Zamba2ForCausalLM", "Phi4MMForCausalLM",
                     "IQuestLoopCoderForCausalLM", "HrmTextForCausalLM", "PaddleOCRVLForConditionalGeneration",
                     "NemotronH_Nano_VL_V2", "NemotronH_Nano_Omni_Reasoning_V3", "NemotronH_Omni_Reasoning_V3",
                     "NemotronH_Super_Omni_Reasoning_V3", "RadioMBartPrefixForCausalLM", "AliceAIForCausalLM",
                     "DomynEdgeForCausalLM", "DoryForCausalLM", "MistralLarge4ForCausalLM", "ZayaForCausalLM"),
                    ("", "")),
    **dict.fromkeys(("MiniMaxForCausalLM", "MiniMaxM1ForCausalLM", "MiniMaxText01ForCausalLM"), ("", "0.23.0")),
    "DeepseekV4ForCausalLM": ("", "0.20.2"), "AriaForConditionalGeneration": ("", "0.33.0"),
    "OuroForCausalLM": ("", "0.26.0"), "Phi4MultimodalForCausalLM": ("", "0.12.0"),
    "DiffusionGemmaForBlockDiffusion": ("0.27.0", ""),
    **dict.fromkeys(("ChatGLMModel", "ChatGLMForConditionalGeneration", "MolmoForCausalLM"), ("", "0.6.3")),
    **dict.fromkeys(("MambaForCausalLM", "FalconMambaForCausalLM", "JambaForCausalLM"), ("", "0.6.4")),
    "Llama4ForConditionalGeneration": ("", "0.8.3"), "Ovis": ("", "0.9.0"), "Plamo2ForCausalLM": ("", "0.10.0"),
    **dict.fromkeys(("HunYuanDenseV1ForCausalLM", "HunYuanMoEV1ForCausalLM", "KimiVLForConditionalGeneration",
                     "GptOssForCausalLM"), ("", "0.10.1")),
    **dict.fromkeys(("MllamaForConditionalGeneration", "Phi4FlashForCausalLM", "NemotronH_Nano_VL"), ("", "0.10.2")),
}
SUPPORTS_PP_REFUSAL = ("Pipeline parallelism is not supported for this model. Supported models implement the "
                       "`SupportsPP` interface.")


def refuses_pipeline(architecture: str, version: Optional[str] = None) -> bool:
    """Whether vLLM `version` (None: kvplan's pinned release) refuses pp > 1 for `architecture` since its class lacks
    SupportsPP (NO_PIPELINE; releases before SUPPORTS_PP_SINCE refuse by EARLY_PIPELINE instead). Not where the
    release's registry refuses the name (vllm_config_read.architecture_refusal): that comes first, while the config
    is read."""
    from ..engines.vllm_config_read import architecture_refusal
    from ..engines.vllm_versions import PINNED, parse_version

    refused, release = NO_PIPELINE.get(architecture), parse_version(version or PINNED)
    return (refused is not None and release >= SUPPORTS_PP_SINCE
            and architecture_refusal(architecture, version or PINNED) is None
            and not (refused[0] and release < parse_version(refused[0]))
            and not (refused[1] and release > parse_version(refused[1])))


def _supports_pp_file(release: tuple) -> str:
    """The file ModelConfig.verify_with_parallel_config lives in (SUPPORTS_PP_REFUSAL's citations)."""
    return "config.py" if release < (0, 10, 1) else "config/__init__.py" if release < (0, 11) else "config/model.py"


# Before SupportsPP (0.6.3), by release (config.py, read in the wheels 0.2.0, 0.4.0, 0.5.0, 0.5.0.post1, 0.5.1-0.5.5,
# 0.5.3.post1, 0.6.0, 0.6.1, 0.6.1.post2, 0.6.2):
# - up to 0.5.0.post1 ParallelConfig._verify_args refuses any pp > 1 (0.2.0:250-253, 0.4.0:503-506, 0.5.0:628-631);
# - 0.5.1 and 0.5.2 refuse it with the multiprocessing executor (0.5.1:711-714, 0.5.2:702-705), which ParallelConfig
#   picks on one node where no Ray placement group is set (0.5.1:679, 0.5.2:676); kvplan plans that default (Ray's
#   executor would meet the list below);
# - 0.5.3 to 0.6.2 ModelConfig.verify_with_parallel_config takes pp > 1 only where every name of the config's
#   `architectures` is on _PP_SUPPORTED_MODELS (0.5.3:31, :281-285; 0.5.3.post1:31, :275; 0.5.4:32, :283; 0.5.5:36,
#   :347; 0.6.0:37, :413; 0.6.1:37, :418; 0.6.2:36, :424), each release's list below in its own order (the message
#   prints it). From 0.6.3 the registry's SupportsPP decides (NO_PIPELINE).
# Each row: first release, the refusal (vLLM's message), the architectures taken (None: none), where vLLM says it.
_PP_051 = ("AquilaModel", "AquilaForCausalLM", "InternLMForCausalLM", "LlamaForCausalLM", "LLaMAForCausalLM",
           "MistralForCausalLM", "Phi3ForCausalLM", "GPT2LMHeadModel")
_PP_054 = ("AquilaModel", "AquilaForCausalLM", "DeepseekV2ForCausalLM", "InternLMForCausalLM", "LlamaForCausalLM",
           "LLaMAForCausalLM", "MistralForCausalLM", "Phi3ForCausalLM", "GPT2LMHeadModel", "MixtralForCausalLM",
           "NemotronForCausalLM", "Qwen2ForCausalLM", "Qwen2MoeForCausalLM", "QWenLMHeadModel")
_PP_061 = ("AquilaForCausalLM", "AquilaModel", "DeepseekV2ForCausalLM", "GPT2LMHeadModel", "InternLM2ForCausalLM",
           "InternLMForCausalLM", "InternVLChatModel", "JAISLMHeadModel", "LlamaForCausalLM", "LLaMAForCausalLM",
           "MistralForCausalLM", "MixtralForCausalLM", "NemotronForCausalLM", "Phi3ForCausalLM", "Qwen2ForCausalLM",
           "Qwen2MoeForCausalLM", "QWenLMHeadModel")
PP_LISTED = "Pipeline parallelism is only supported for the following  architectures: {listed}."
_LISTED_BY = "config.py ModelConfig.verify_with_parallel_config"
EARLY_PIPELINE = (
    ((0, 2), "Pipeline parallelism is not supported yet.", None, "config.py ParallelConfig._verify_args"),
    ((0, 5, 1), "Pipeline parallelism is not supported yet with multiprocessing.", None,
     "config.py ParallelConfig._verify_args, with the executor it picks on one node"),
    ((0, 5, 3), PP_LISTED, _PP_051 + ("MixtralForCausalLM",), _LISTED_BY),
    ((0, 5, 4), PP_LISTED, _PP_054, _LISTED_BY),
    ((0, 5, 5), PP_LISTED, _PP_054[:4] + ("JAISLMHeadModel",) + _PP_054[4:], _LISTED_BY),
    ((0, 6, 1), PP_LISTED, _PP_061, _LISTED_BY),
    ((0, 6, 2), PP_LISTED, _PP_061 + ("Qwen2VLForConditionalGeneration",), _LISTED_BY),
)
SUPPORTS_PP_SINCE = (0, 6, 3)


def _early_pipeline_refusal(names: tuple, release: tuple) -> str:
    """vLLM's own message refusing pp > 1 for a config naming `names` before SUPPORTS_PP_SINCE (EARLY_PIPELINE); ""
    where the release takes them."""
    row = next((row for row in reversed(EARLY_PIPELINE) if release >= row[0]), None)
    if row is None or release >= SUPPORTS_PP_SINCE:
        return ""
    _, message, taken, where = row
    if taken is not None and all(name in taken for name in names):
        return ""
    return f"\"{message.format(listed=list(taken or ()))}\" ({where})"


def pipeline_release(spec: ModelSpec, version: str) -> str:
    """The first release after `version` whose registry serves the model (vllm_registry.lists) and takes pp > 1 for
    it (EARLY_PIPELINE, NO_PIPELINE), "" where none does."""
    from ..engines.vllm_registry import lists, served_architecture
    from ..engines.vllm_releases import PUBLISHED
    from ..engines.vllm_versions import parse_version

    asked = parse_version(version)
    later = sorted({parse_version(name) for name in PUBLISHED if parse_version(name) > asked})
    for release in later:
        named = ".".join(map(str, release + (0,) * (3 - len(release))))
        if lists(served_architecture(spec, named), named) and not pipeline_refusal(spec, named):
            return named
    return ""


def pipeline_refusal(spec: ModelSpec, version: Optional[str] = None) -> str:
    """vLLM `version`'s refusal of any pp > 1 for the model's architecture (EARLY_PIPELINE before 0.6.3, NO_PIPELINE
    from then on: refuses_pipeline; None: kvplan's pinned release), in vLLM's words; "" where it takes pipeline
    stages."""
    from ..engines.vllm_config_read import registry_names
    from ..engines.vllm_registry import served_architecture
    from ..engines.vllm_versions import PINNED, parse_version

    release = parse_version(version or PINNED)
    early = _early_pipeline_refusal(registry_names(spec), release)
    if early:
        return f"vLLM {version} refuses it: {early}"
    architecture = served_architecture(spec, version)
    if not refuses_pipeline(architecture, version):
        return ""
    return (f"vLLM {version or PINNED} refuses pipeline parallelism for {architecture}: its model class does not "
            f"implement SupportsPP (\"{SUPPORTS_PP_REFUSAL}\", {_supports_pp_file(release)} "
            f"ModelConfig.verify_with_parallel_config)")


def _pp_errors(spec: ModelSpec, pp: int, partition: Optional[tuple], spell: Callable[[str], str],
               version: Optional[str] = None) -> list:
    """Each names its fields (pp, pp_layer_partition) as `spell` writes them: the caller's flag, key or keyword."""
    layers, stages, split = spec.num_hidden_layers, spell("pp"), spell("pp_layer_partition")
    refused = pipeline_refusal(spec, version) if pp > 1 else ""
    if refused:
        later = pipeline_release(spec, version) if version else ""
        newer = f"{spell('engine')} vllm=={later} or newer takes it; at vllm=={version} " if later else ""
        return [f"{stages} {pp}: {refused}; {newer}only {stages} 1 starts."]
    if partition is not None:
        if len(partition) != pp:
            return [f"{split} has {len(partition)} stages ({','.join(map(str, partition))}) but {stages} is {pp}: "
                    f"vLLM needs one layer count per stage (VLLM_PP_LAYER_PARTITION)."]
        if sum(partition) != layers or min(partition) < 1:
            counts = "one positive layer count equal to" if pp == 1 else f"{pp} positive layer counts summing to"
            return [f"{split} {','.join(map(str, partition))} must be {counts} num_hidden_layers ({layers})."]
    elif pp > layers:
        return [f"{stages} {pp} exceeds num_hidden_layers ({layers}): every pipeline stage needs at least one layer."]
    return _sharing_errors(spec, pp_partition(layers, pp, partition), spell)


def _sharing_errors(spec: ModelSpec, counts: tuple, spell: Callable[[str], str]) -> list:
    """A KV-sharing layer (Gemma 4's last num_kv_shared_layers) names its target by decoder index
    (model_executor/models/gemma4.py Gemma4Attention), and model_executor/layers/attention/attention.py
    validate_kv_sharing_target refuses a target the stage does not build (an earlier stage's layers are
    PPMissingLayer): the targets and every sharing layer after them must share the last stage."""
    if len(spec.layers) != spec.num_hidden_layers:
        return []
    reads = {i: layer.source for i, layer in enumerate(spec.layers) if getattr(layer, "source", None) is not None}
    if not reads:
        return []
    stage = [k for k, count in enumerate(counts) for _ in range(count)]  # each decoder layer's stage
    apart = next(((i, s) for i, s in reads.items() if stage[i] != stage[s]), None)
    if apart is None:
        return []
    (i, source), first = apart, min(reads.values())
    return [f"{spell('pp')} {len(counts)} ({','.join(map(str, counts))} layers a stage) puts layer {i} on stage "
            f"{stage[i]} and "
            f"layer {source}, whose KV cache it reads (KV sharing), on stage {stage[source]}: vLLM refuses a sharing "
            f"target outside the stage's own layers (attention.py validate_kv_sharing_target), so the last stage "
            f"must hold layers {first} to {spec.num_hidden_layers - 1} ({spell('pp_layer_partition')} ending in "
            f"{spec.num_hidden_layers - first} or more)."]


@dataclass(frozen=True)
class Sharding:
    tp: int
    pp: Optional[int]
    errors: tuple  # each a sentence quoting the numbers that do not divide
    warnings: tuple
    kv_heads_per_gpu: Optional[int]  # None when the model has no per-head KV (MLA, linear only)
    replicated: bool  # KV heads copied on several GPUs
    partition: tuple = ()  # decoder layers per pipeline stage (pp given)
    pp_errors: tuple = ()  # those of `errors` that are the pipeline's (pp, pp_layer_partition), not the TP degree's

    @property
    def valid(self) -> bool:
        return not self.errors

    # how estimate's plans and check's rows give the sharding in their JSON (one form for both: tests/
    # test_coldpaths_s63.py compares them)
    @property
    def served_kv_heads_per_gpu(self) -> Optional[int]:
        """KV heads on one GPU of the deployment vLLM serves: None where it refuses the sharding (the TP degree, the
        pipeline or the experts' layout), as every other per-GPU figure of such a plan."""
        return self.kv_heads_per_gpu if self.valid else None

    def stage_layers(self, num_hidden_layers: int) -> Optional[tuple]:
        """The decoder layers each pipeline stage holds: one stage of every layer without a pipeline (pp 1, given or
        not), so that len() is pp and sum() the model's layers on every row; None where the pipeline is refused."""
        if self.pp_errors:
            return None
        return self.partition or (num_hidden_layers,)


def _unique(messages) -> tuple:
    return tuple(dict.fromkeys(messages))


def _tp_warnings(spec: ModelSpec, kind, tp: int, dcp: int = 1) -> tuple:
    """A kind's TP warnings; where the attention layers have more than one KV head count, each count's warning
    names its field and its layers (the replicated copies cost those layers only); `dcp`: FullAttention.tp_warnings."""
    counts = {}
    for other, n in layer_kinds(spec):
        if isinstance(other, FullAttention):
            counts[other.kv_heads] = counts.get(other.kv_heads, 0) + n
    if isinstance(kind, FullAttention):
        return kind.tp_warnings(tp, counts[kind.kv_heads] if len(counts) > 1 else None, dcp)
    return kind.tp_warnings(tp)


def shard(spec: ModelSpec, tp: int, pp: Optional[int] = None, partition: Optional[tuple] = None,
          spell: Callable[[str], str] = str, version: Optional[str] = None, dcp: int = 1) -> Sharding:
    """Whether `tp` (and `pp` stages, `partition` layers each) shard the model as vLLM `version` does (None: kvplan's
    pinned release); the pipeline errors name their fields (`pp`, `pp_layer_partition`) as `spell` writes them, the
    caller's flag, key or keyword; `dcp`: --decode-context-parallel-size, for the KV head copies warned of."""
    require_positive("tp", tp)
    if pp is not None:
        require_positive("pp", pp)
    heads = spec.num_attention_heads
    errors = []
    if heads % tp:
        errors.append(f"num_attention_heads ({heads}) is not divisible by tp {tp}: vLLM splits query heads "
                      f"evenly, so tp must divide {heads}.")
    # attention kinds, then linear ones, each once (layer_kinds: not a walk over every layer per TP degree)
    kinds = sorted((kind for kind, _ in layer_kinds(spec)), key=lambda kind: isinstance(kind, LinearState))
    errors += _unique(m for kind in kinds for m in kind.tp_errors(tp))
    warnings = _unique(m for kind in kinds for m in _tp_warnings(spec, kind, tp, dcp))
    split, pp_errors = (), ()
    if pp is not None:
        pp_errors = _pp_errors(spec, pp, partition, spell, version)
        errors += pp_errors
        if not pp_errors:
            split = pp_partition(spec.num_hidden_layers, pp, partition)
    per_gpu, replicated = None, False
    kv = spec.kv_heads
    if kv is not None and (kv % tp == 0 or tp % kv == 0):
        per_gpu, replicated = kv_heads_per_gpu(kv, tp), kv % tp != 0
    return Sharding(tp, pp, tuple(errors), warnings, per_gpu, replicated, split, tuple(pp_errors))


@dataclass(frozen=True)
class MoeLayout:
    """The routed experts of one MoE layer on one GPU of a D x T deployment (moe_layout)."""

    tp: int  # the attention's TP degree (T)
    dp: int = 1  # --data-parallel-size (D): engine cores, each with its own KV cache and scheduler
    expert_parallel: bool = False  # --enable-expert-parallel as given
    moe_tp: int = 1  # the experts' TP degree: T x D without EP, 1 with EP
    ep: int = 1  # ep_size: T x D with EP, else 1
    experts: int = 0  # routed (logical) experts a layer (0: a dense model)
    local_experts: int = 0  # routed experts the busiest rank holds whole (physical ones under EPLB)
    remainder_last: bool = False  # before 0.10.1 the last EP rank took the E % ep experts left over
    eplb: bool = False  # --enable-eplb
    redundant: int = 0  # EPLB's redundant experts: E + redundant physical experts over the EP ranks
    errors: tuple = ()  # vLLM's refusals of this layout (eplb_errors), each a sentence
    pcp: int = 1  # --prefill-context-parallel-size (P): copies of the T ranks in one engine, experts over T x D x P

    def experts_on(self, rank: int) -> int:
        """Routed experts EP rank `rank` holds (determine_expert_map: the first E % ep ranks one more; under EPLB
        the E + R physical experts, which split evenly)."""
        physical = self.experts + self.redundant
        if self.ep <= 1:
            return physical
        base, extra = divmod(physical, self.ep)
        return base + extra * (rank == self.ep - 1) if self.remainder_last else base + (rank < extra)

    @property
    def share(self) -> float:
        """Of the routed experts' bytes, what the busiest GPU holds (a redundant expert is a second copy)."""
        return self.local_experts / self.experts / self.moe_tp if self.experts else 1 / self.tp

    @property
    def gathered(self) -> int:
        """The ranks whose tokens one GPU's MoE layers run: D (DP's all-gather), times P (PCP's all-gather of its
        ranks' tokens, moe_runner.py 0.32.0:824-828)."""
        return self.dp * self.pcp

    @property
    def default(self) -> bool:
        """The experts split as everything else: 1/T a rank (D 1, no EP): kvplan's figures before DP/EP."""
        return self.moe_tp == self.tp and self.ep == 1

    def logical(self) -> "MoeLayout":
        """This layout without EPLB's redundant copies: what a token reads (one replica of each expert it routes
        to), the busiest rank holding ceil(E / ep) of the logical experts."""
        if not self.redundant:
            return self
        plain = replace(self, redundant=0)
        return replace(plain, local_experts=max(plain.experts_on(0), plain.experts_on(self.ep - 1)))

    def describe(self, pp: int = 1) -> str:
        """The ranks' layout in words; `pp`: the pipeline stages of each engine (each stage lays its layers out so)."""
        if not self.experts:
            stages = f" x PP {pp}" if pp > 1 else ""
            return f"dense model: {self.dp} independent engine(s) of TP {self.tp}{stages}"
        return self._experts_described() + (f", in each of the {pp} pipeline stages" if pp > 1 else "")

    def _experts_described(self) -> str:
        if self.ep > 1:
            held = (f"{self.local_experts} of the {self.experts} + {self.redundant} redundant (EPLB) = "
                    f"{self.experts + self.redundant} routed experts"
                    if self.redundant else f"{self.local_experts} of {self.experts} routed experts")
            return (f"EP {self.ep}: {held} whole on the busiest GPU, attention/shared experts/embeddings over TP "
                    f"{self.tp}, copied on the {self.dp} DP rank(s)")
        if self.moe_tp == 1:  # FusedMoEParallelConfig.make: use_ep needs T x D > 1
            return "one GPU holds every expert: expert parallelism changes nothing on a single rank"
        over = "T x D x PCP" if self.pcp > 1 else "T x D"
        return f"routed experts split over TP {self.moe_tp} ({over}), the rest over TP {self.tp}"


def eplb_errors(experts: int, ranks: int, redundant: int) -> tuple:
    """vLLM's refusals of --enable-eplb that depend on the TP degree, as sentences (a plan's tp_errors):
    config/parallel.py ParallelConfig (EPLB needs TP x DP > 1) and fused_moe/layer.py FusedMoEFactory (the E + R
    physical experts split evenly over the ep ranks); () when vLLM takes the layout."""
    if ranks <= 1:
        return ("EPLB needs more than one GPU in the expert-parallel group (TP x DP > 1): vLLM refuses it "
                "(\"EPLB requires tensor, prefill-context, or data parallelism\").",)
    physical = experts + redundant
    if not physical % ranks:
        return ()
    fits = ", ".join(str(r) for r in range(-experts % ranks, 3 * ranks, ranks))
    return (f"EPLB's {experts} + {redundant} redundant = {physical} physical experts do not split evenly over the "
            f"{ranks} EP ranks (TP x DP): vLLM refuses it (\"EPLB currently only supports even distribution of "
            f"experts across ranks\"); num_redundant_experts {fits}, ... would.",)


def moe_layout(spec: ModelSpec, tp: int, dp: int = 1, expert_parallel: bool = False,
               remainder_last: bool = False, eplb: bool = False, redundant: int = 0, pcp: int = 1) -> MoeLayout:
    """vLLM's layout of the routed experts (0.32.0 read; the same from 0.9 on but where noted):
    - config/parallel.py ParallelConfig: --data-parallel-size D engine cores (v1/engine/core.py run_engine_core:
      DPEngineCoreProc for an MoE model), each with T GPUs, its own KV cache pool, scheduler and max_num_seqs; a
      dense model's DP ranks are independent engines (reconfigure_for_independent_dp_rank).
    - fused_moe/config.py FusedMoEParallelConfig.make: the MoE layers flatten TP across DP (T x D ranks). Without
      EP the experts are TP-sharded over all T x D GPUs (intermediate / (T x D) a rank); with EP (and T x D > 1)
      ep_size = T x D and the MoE's TP is 1: each rank holds its experts whole.
    - fused_moe/expert_map_manager.py determine_expert_map: E // ep experts a rank, the first E % ep ranks one more
      (0.10.1 on; before, layer.py gave the last rank the remainder): the busiest rank holds ceil(E / ep).
    - --enable-eplb with R redundant experts (fused_moe/layer.py determine_expert_counts): E + R physical experts,
      (E + R) / ep a rank, refused unless they split evenly (FusedMoEFactory) and unless T x D > 1 (ParallelConfig):
      MoeLayout.errors, per TP degree as a plan's tp_errors (the busiest rank then holds ceil((E + R) / ep)).
    - attention, dense MLP layers, shared experts, routers, embeddings and the LM head stay TP-sharded over T and are
      copied on every DP rank.
    - config/model.py _verify_with_expert_parallelism: EP on a model without experts is refused.
    - --prefill-context-parallel-size P (engines/vllm_pcp.py): the MoE flattens TP across DP and PCP, T x D x P ranks
      (flatten_tp_across_dp_and_pcp, fused_moe/config.py 0.32.0:1097-1104), the rest copied on every PCP rank."""
    if isinstance(dp, bool) or not isinstance(dp, int) or dp < 1:
        raise FieldError("dp", f"must be a whole number of engine replicas, 1 or more (vLLM's --data-parallel-size), "
                               f"got {quote(dp)}.")
    experts = spec.experts
    if expert_parallel and not experts:
        raise FieldError("enable_expert_parallel", f"needs a model with routed experts, and {spec.name} has none: "
                                                   f"vLLM refuses it (\"Number of experts in the model must be "
                                                   f"greater than 0 when expert parallelism is enabled\").")
    if not experts:
        return MoeLayout(tp, dp, expert_parallel, tp, 1, 0, 0, pcp=pcp)
    ranks = tp * dp * pcp
    refusals = eplb_errors(experts, ranks, redundant) if eplb else ()
    if not (expert_parallel and ranks > 1):
        return MoeLayout(tp, dp, expert_parallel, ranks, 1, experts, experts, errors=refusals, pcp=pcp)
    layout = MoeLayout(tp, dp, expert_parallel, 1, ranks, experts, 0, remainder_last, eplb, redundant, refusals, pcp)
    busiest = max(layout.experts_on(0), layout.experts_on(ranks - 1))  # the first rank, or the last before 0.10.1
    return replace(layout, local_experts=busiest)


def routed_expert_bytes(spec: ModelSpec, moe: MoeLayout) -> int:
    """The routed experts' checkpoint bytes on this GPU under `moe`, over all the model's MoE layers (the same
    split of the checkpoint's own bytes as stage_weights)."""
    return round(_routed_bytes(spec, 1.0) * moe.share)


def _routed_bytes(spec: ModelSpec, layers: float) -> float:
    """The whole model's routed-expert checkpoint bytes, `layers` of them (a stage's share of the layers)."""
    estimated = sum(g.bytes for g in spec.params)
    experts = sum(g.bytes for g in spec.params if g.name == "experts")
    return spec.resident_weight_bytes * experts * layers / estimated if estimated else 0.0


def weights_per_gpu(spec: ModelSpec, tp: int, pp: int = 1) -> int:
    """Weight bytes one GPU holds: an even share of what serving loads (rounded up)."""
    return -(-spec.resident_weight_bytes // (tp * pp))


def stage_weights(spec: ModelSpec, tp: int, stage: Optional[Stage] = None, moe: Optional[MoeLayout] = None,
                  head: bool = True) -> int:
    """Weight bytes one GPU of pipeline `stage` holds: its layers' share, the embeddings on the first stage, the LM
    head on the last (a tied embedding is loaded again there) and a vision tower on every stage, over tp, but for
    what every rank holds whole (ParamGroup.replicated: norms, MoE routers, MLA's latent projections; 0.9 GiB of
    DeepSeek-V3's 79 GiB a GPU at tp 8) and for the K / V projections where tp exceeds the KV heads (each rank one
    whole head: ParamGroup.kv_split). The whole model's share when stage is None. Of what serving loads: the
    checkpoint less its MTP blocks. `moe`: the routed experts laid out by DP / EP (moe_layout), MoeLayout.share of
    them on this GPU instead of 1/tp. `head` False: the last stage builds no untied LM head (vLLM's pooling runner,
    engines/vllm_pooling_budget.py; the caller's spec has no lm_head group then, which would read as tied)."""
    total = spec.resident_weight_bytes
    sums = _group_sums(spec.params)
    estimated = sums["estimated"]
    if not estimated:
        return -(-total // tp)
    replicated = sums["replicated"]  # in the decoder layers but for the final norm
    layers = layer_share(spec, stage)
    if stage is None or stage.stages == 1:
        share = 1.0
    else:
        per_layer, embed = sums["per_layer"], sums["embed"]
        # vLLM builds a multimodal model's tower and projector on every pipeline rank (gemma3_mm.py, mllama4.py
        # __init__: no get_pp_group() check, 0.8.5 to 0.32.0 read), and loads their weights there
        tower = sums["vision"]
        head_bytes = (sums["lm_head"] or embed) if head else 0
        share = (per_layer * layers + embed * stage.is_first + head_bytes * stage.is_last + tower) / estimated
    # the estimate's split applied to the checkpoint's own bytes
    whole = int(total * replicated * layers / estimated) if tp > 1 else 0
    extra = int(kv_replica_bytes(spec.params, tp) * layers * total / estimated)
    if moe is not None and not moe.default:  # the routed experts' checkpoint bytes, moe.share of them here
        routed = _routed_bytes(spec, layers)
        extra += round(routed * moe.share) - round(routed / tp)
    padding = expert_padding(spec, tp, moe is not None and moe.expert_parallel)
    if padding > 1:  # zero-filled expert columns vLLM allocates beyond the checkpoint's
        extra += round(_routed_bytes(spec, layers) * (moe.share if moe is not None else 1 / tp) * (padding - 1))
    return -(-(int(total * share) - whole) // tp) + whole + extra


def _group_sums(params: tuple) -> dict:
    """The byte sums stage_weights reads of a spec's parameter groups, once per `params` (a pp 16 plan asks them for
    every stage, and a release remedy plans every boundary release so); keyed by identity, the tuple kept alive."""
    return per_object(_GROUP_SUMS, MAX_GROUP_SUMS, params, lambda groups: {
        "estimated": sum(g.bytes for g in groups), "replicated": sum(g.replicated for g in groups),
        "per_layer": sum(g.bytes for g in groups if g.name not in ("embed", "lm_head", "vision")),
        **{name: sum(g.bytes for g in groups if g.name == name) for name in ("embed", "vision", "lm_head")}})


_GROUP_SUMS: dict = {}
MAX_GROUP_SUMS = 256


def kv_replica_bytes(params, tp: int) -> float:
    """Bytes a rank of tp holds beyond a 1/tp share of the K / V projections split by fewer KV heads than tp: one whole
    head each (ParamGroup.kv_split, by each projection's own KV heads: layer types may differ)."""
    return sum(size * (1 / kv - 1 / tp) for g in params for kv, size in g.kv_split if tp > kv)


def expert_padding(spec: ModelSpec, tp: int, expert_parallel: bool = False) -> float:
    """How much larger than the checkpoint's the routed experts vLLM allocates: Kimi Linear pads an expert's
    intermediate size to tp x 256 when tp > 1 splits it thinner and experts are not parallel (kimi_k3/nvidia/
    model.py KimiMoE: padded_moe_intermediate_size, the padding zero-filled); 1.0 otherwise."""
    floor, inter = spec.expert_min_partition, spec.expert_intermediate_size
    if not floor or not inter or tp <= 1 or expert_parallel or inter // tp >= floor:
        return 1.0
    return floor * tp / inter


def valid_tp_degrees(spec: ModelSpec, limit: int = 64) -> list:
    return [s for s in (shard(spec, tp) for tp in range(1, limit + 1)) if s.valid]
