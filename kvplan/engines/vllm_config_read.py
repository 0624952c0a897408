"""vLLM's first refusals, met while ModelConfig reads the config and before anything reads the GPU
(config_read_refusal), and the architectures a release builds with no KV cache at all.

Rules and where vLLM has them (paths under vllm/):
- an architecture the release's registry does not list: added later (vllm_registry.py ADDED_ARCHITECTURES), dropped
  or renamed (RETIRED, UNLISTED) (architecture_refusal: model_executor/models/registry.py _raise_for_unsupported);
  of a config naming several, the first the release lists decides (architectures_refusal; vllm_registry.served_name:
  registry.py inspect_model_cls).
- a max_model_len past the model's own (length_refusal: config/model.py _get_and_verify_max_len; the length the
  RoPE factor scales: vllm_rope_len.py), and --disable-sliding-window beside a RoPE scaling type 0.4.3-0.11.x cannot
  pair with it (rope_window_refusal).
- encoder-only builds, whose layers ask for no KV cache (ENCODER_ONLY_FROM: encoder_only_since, refuse_encoder_only;
  layers/attention/encoder_only_attention.py), and configs a release's model class refuses to build
  (BUILD_REFUSED_SINCE: build_refusal).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..errors import KvplanError
from ..model.unmodelled import encoder_only_error, switched_on
from .figures import Refusal
from .vllm_pooling import pooling_runner
from .vllm_registry import (ADDED_ARCHITECTURES, PLUGINS, RETIRED, TRANSFORMERS_BACKEND, before_transformers_backend,
                            last_serving, listed_anywhere, listed_by_name, padded_release, retirement,
                            language_model_architecture, served_architecture, served_name, unlisted_span)
from .vllm_versions import NEWEST, parse_version

# Architectures vLLM builds encoder-only from a release on (EncoderOnlyAttention asks for no KV cache spec:
# layers/attention/encoder_only_attention.py 0.34.0:94-96), so it allocates no cache to size: architecture (the config's
# top-level one, vLLM's registry key) -> (first release, the config switch (key, the value that makes it encoder-only)
# or None where the config handler or the model class always does, or _POOLING_RUNNER where the class does on the
# pooling runner, where vLLM reads it). Older releases build the same config causal, with a KV cache, or
# (ADDED_ARCHITECTURES) do not serve it; a release that has dropped it refuses it (vllm_registry.RETIRED). The
# architectures every release builds encoder-only (BERT's family, EmbeddingGemma) model/unmodelled.py ENCODER_ONLY
# refuses for every engine.
_IS_CAUSAL = ("is_causal", False)
# From 0.10.1 the V1 engine keeps no cache for an ENCODER_ONLY layer (v1/worker/gpu_model_runner.py 0.10.1:3256-3258,
# and marks a model of them encoder-only, :2823-2857) and its FlashAttention runs one (flash_attn.py 0.10.1:393);
# 0.10.0's raises NotImplementedError for any attention but the decoder's (flash_attn.py 0.10.0:378-382).
_LLAMA = ("0.10.1", _IS_CAUSAL, "llama.py LlamaDecoderLayer 0.10.1:251-254, 0.10.2:271-274, 0.11.0:275, 0.34.0:280")
_QWEN2 = ("0.10.1", _IS_CAUSAL, "qwen2.py Qwen2DecoderLayer 0.10.1:211-214, 0.11.0:214, 0.34.0:266")
_DEEPSEEK = ("0.29.0", _IS_CAUSAL, "deepseek_v2.py 0.29.0:566, 0.34.0:571; no is_causal in 0.28.0's")
_ALWAYS = None  # the config handler sets is_causal false whatever the config says
_POOLING_RUNNER = "pooling runner"  # the class sets is_causal false when vLLM serves it with the pooling runner
ENCODER_ONLY_FROM = {
    # registry.py 0.11.0:106, :121, :178 (Mistral's in the llama module until 0.14.1), 0.14.0:134, 0.20.0:214
    **dict.fromkeys(("LlamaForCausalLM", "LLaMAForCausalLM", "LlamaModel", "MistralModel", "InternLM3ForCausalLM",
                     "IQuestCoderForCausalLM", "TeleChat3ForCausalLM", "MistralForCausalLM"), _LLAMA),
    # the mistral module from 0.15.0 (registry.py 0.15.0:156, 0.16.0:158, 0.20.0:166-167): MistralDecoderLayer builds
    # LlamaDecoderLayer with the attn_type it picks (mistral.py 0.15.0 and 0.16.0 :77-90, :144-156)
    "Ministral3ForCausalLM": ("0.20.0", _IS_CAUSAL, "mistral.py 0.20.0:144-156 over llama.py 0.20.0's"),
    # qwen2_rm.py 0.11.0:54: the reward models build Qwen2Model
    **dict.fromkeys(("Qwen2ForCausalLM", "Qwen2Model", "Qwen2ForRewardModel", "Qwen2ForProcessRewardModel"), _QWEN2),
    "Qwen3ForCausalLM": ("0.11.0", _IS_CAUSAL, "qwen3.py 0.11.0:183, 0.34.0:197"),
    "ApertusForCausalLM": ("0.11.0", _IS_CAUSAL, "apertus.py 0.11.0:260, 0.34.0:259"),
    "Gemma3ForCausalLM": ("0.11.0", _IS_CAUSAL, "gemma3.py 0.11.0:172, 0.34.0:165"),
    # OpenPanguDecoderLayer's GQA attention (not where the config makes it MLA: CAUSAL_BY_KEYS; from 0.14.0 a sink
    # attention raises on is_causal false instead: BUILD_REFUSED_SINCE); registered from 0.11.1 (ADDED_ARCHITECTURES)
    "PanguEmbeddedForCausalLM": ("0.11.1", _IS_CAUSAL, "openpangu.py 0.11.1:595-602, 0.34.0:859-866"),
    # Qwen3NextAttention builds its full_attention layers ENCODER_ONLY from 0.24.0 (qwen3_next.py 0.24.0:271-279,
    # 0.34.0:353-359; 0.23.0 reads no is_causal), from the language model's config (qwen3_5.py 0.24.0:132,
    # 0.34.0:132 hf_text_config; qwen3_next.py 0.24.0:390 hf_config); the gated-DeltaNet layers keep their state
    # (refuse_encoder_only says so). Qwen3.5's CausalLM pair is registered from 0.27.0 (ADDED_ARCHITECTURES).
    **dict.fromkeys(("Qwen3NextForCausalLM", "Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration",
                     "Qwen3_5ForCausalLM", "Qwen3_5MoeForCausalLM"),
                    ("0.24.0", _IS_CAUSAL, "qwen3_next.py 0.24.0:271-279, 0.34.0:353-359")),
    # ColQwen3_5Model is a Qwen3_5ForConditionalGeneration (colqwen3_5.py 0.27.0:113-116, 0.34.0:112-115) whose
    # config handler sets is_causal on hf_config and hf_text_config from retrieval_attention_contract (models/config.py
    # 0.27.0:840-875, 0.34.0:1413-1448): "bidirectional" builds the full-attention layers encoder-only
    # (Qwen3NextAttention, qwen3_next.py 0.27.0:291-298). 0.24-0.26's handler sets only hf_config.is_causal
    # (0.24.0:639-641), which a nested text_config's layers never read; older releases read no is_causal.
    "ColQwen3_5": ("0.27.0", ("retrieval_attention_contract", "bidirectional"),
                   "models/config.py 0.27.0:840-875, 0.34.0:1413-1448"),
    "IQuestLoopCoderForCausalLM": ("0.14.0", _IS_CAUSAL, "iquest_loopcoder.py 0.14.0:225, 0.34.0:225"),
    # only DeepseekV2Attention reads it; DeepSeek v1 (model_type deepseek) builds DeepseekAttention, causal whatever the
    # config says (deepseek_v2.py 0.29.0:1268-1276, 0.34.0:1280)
    **dict.fromkeys(("DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", "DeepseekV3BidirectionalModel"), _DEEPSEEK),
    # JinaEmbeddingsV5ModelConfig sets is_causal false where is_decoder is false and jina.py picks the encoder
    # (models/config.py 0.27.0:477-493, jina.py 0.27.0:310-311); 0.20-0.26 build it a causal Qwen3
    "JinaEmbeddingsV5Model": ("0.27.0", ("is_decoder", False), "models/config.py 0.27.0:477-493, 0.34.0:931-947"),
    **dict.fromkeys(("LlamaBidirectionalModel", "LlamaBidirectionalForSequenceClassification"),
                    ("0.14.0", _ALWAYS, "LlamaBidirectionalConfig, models/config.py 0.14.0:94-100")),
    "VoyageQwen3BidirectionalEmbedModel": ("0.16.0", _ALWAYS, "models/config.py 0.16.0:585, 0.17.0:652-655"),
    # pooling classes whose every attention layer is built encoder-only (Attention with attn_type ENCODER_ONLY or
    # EncoderOnlyAttention: get_kv_cache_spec returns None, layers/attention/attention.py 0.32.0:614-615) in every
    # release that lists them (vllm_registry.FIRST_LISTED, RETIRED); their vision towers' MMEncoderAttention keeps no
    # cache either. SigLIP's text tower (siglip.py 0.11.1:592, 0.34.0:575), unlike CLIP's
    # (vllm_kv_dtype.KV_DTYPE_QUIRKS)
    "SiglipModel": ("0.11.1", _ALWAYS, "siglip.py 0.11.1:592, 0.34.0:575"),
    # ERNIE's classes build bert.py's layers (ernie.py 0.18.0 and 0.23.0:73 ErnieModel(BertModel), :125, :194;
    # bert.py 0.18.0 and 0.23.0:265 EncoderOnlyAttention); listed 0.18.0-0.23.0
    **dict.fromkeys(("ErnieModel", "ErnieForSequenceClassification", "ErnieForTokenClassification"),
                    ("0.18.0", _ALWAYS, "ernie.py 0.18.0:73 over bert.py 0.18.0:265")),
    # ModernBertLayer (colmodernvbert.py 0.17.0:278, 0.34.0:285; modernbert.py 0.17.0:114, 0.34.0:110);
    # ModernVBertModel is its alias from 0.33.0 (registry.py 0.33.0:286)
    **dict.fromkeys(("ColModernVBertForRetrieval", "ModernVBertModel"),
                    ("0.17.0", _ALWAYS, "colmodernvbert.py 0.17.0:278 over modernbert.py 0.17.0:114")),
    # UltraBertAttention (colultravbert.py 0.33.0 and 0.34.0:110); UltraVBertModel its alias from 0.34.0 (:293)
    **dict.fromkeys(("ColUltraVBertForRetrieval", "UltraVBertModel"),
                    ("0.33.0", _ALWAYS, "colultravbert.py 0.33.0:110, 0.34.0:110")),
    # EmbeddingGemma2Attention: Attention(attn_type=ENCODER_ONLY) (embedding_gemma2.py 0.32.0:157, 0.33.0:158), then
    # EncoderOnlyAttention (0.34.0:148)
    "EmbeddingGemma2Model": ("0.32.0", _ALWAYS, "embedding_gemma2.py 0.32.0:157, 0.34.0:148"),
    # GritLM sets hf_config.is_causal = False on the pooling runner (gritlm.py 0.10.2:245-247, 0.11.0:245-247, 0.28.0:
    # 226-228), which LlamaDecoderLayer reads (llama.py 0.10.2:271-274 EncoderOnlyAttention); on the generate runner it
    # is a causal Llama; listed to 0.28.0. Up to 0.10.1 it is SupportsV0Only (gritlm.py 0.10.1:218), so V0 runs it with
    # a cache for every layer; 0.10.2 drops that (gritlm.py 0.10.2:219) and V1 keeps none (gpu_model_runner.py
    # 0.10.2:3692-3694).
    "GritLM": ("0.10.2", _POOLING_RUNNER, "gritlm.py 0.10.2:245-247 over llama.py 0.10.2:271-274"),
    **dict.fromkeys(("LlamaNemotronVLModel", "LlamaNemotronVLForSequenceClassification"),
                    ("0.17.0", _ALWAYS, "LlamaNemotronVLConfig, models/config.py 0.17.0:115-127")),
}
# Architectures of ENCODER_ONLY_FROM whose decoder layer builds an attention that never reads the switch (causal, with
# a cache) where the config has every one of these keys: OpenPanguDecoderLayer's MLA, picked by hasattr of the four
# (openpangu.py 0.11.1:564-569, 0.34.0:790-795; OpenPanguMLAAttention reads no is_causal)
CAUSAL_BY_KEYS = {"PanguEmbeddedForCausalLM": ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "kv_lora_rank")}
# Architectures whose model vLLM refuses to build from a release on, for a config kvplan can read the reason from
# (build_refusal): PanguEmbedded's sink attention (param_sink_number > 0, not MLA) raises on is_causal false from
# 0.14.0 (openpangu.py 0.14.0:832-834 picks it, :859-866 raises; 0.34.0:796-798, :822-829; 0.13.0 has no sink
# attention and builds the GQA one, encoder-only); ColQwen3.5's config handler raises from 0.27.0 where neither
# config declares retrieval_attention_contract, or one declares a value other than "causal" / "bidirectional", or the
# two disagree (models/config.py 0.27.0:851-872, 0.34.0:1424-1445)
BUILD_REFUSED_SINCE = {"PanguEmbeddedForCausalLM": "0.14.0", "ColQwen3_5": "0.27.0"}
CONTRACTS = ("causal", "bidirectional")  # models/config.py 0.27.0:858 (0.34.0:1431)


def encoder_only_since(spec, version: Optional[str] = None) -> Optional[str]:
    """The first release that builds `spec` encoder-only (ENCODER_ONLY_FROM), by its top-level architecture and its
    switches (a _POOLING_RUNNER one: the runner `version`, None the newest, serves it with), and serves it
    (ADDED_ARCHITECTURES: TeleChat3's Llama module reads is_causal before 0.20 registers it); None where none does."""
    architecture = encoder_only_class(spec, version or NEWEST)
    entry = ENCODER_ONLY_FROM.get(architecture)
    if entry is None:
        return None
    first, switch, _ = entry
    switches = dict(getattr(spec, "attention_switches", ()))
    if switch == _POOLING_RUNNER:
        if not pooling_runner(spec, version or NEWEST):
            return None
    elif not switched_on(switch, switches.get) or _built_causal(architecture, switches):
        return None
    return max(first, ADDED_ARCHITECTURES.get(architecture, first), key=parse_version)


def refuse_encoder_only(spec, version: Optional[str]) -> None:
    """Raise where vLLM `version` builds `spec` encoder-only, with no KV cache for kvplan to size; `version` None
    (--engine none, no release to ask) takes the newest release's rule. A release whose registry does not list the
    architecture refuses it first (architecture_refusal, while ModelConfig reads the config, before any layer is
    built): that refusal is the engine's to say, so this one stays quiet. A release whose model class raises while
    it builds such a config's attention (build_refusal) says that instead."""
    architecture = encoder_only_class(spec, version or NEWEST)
    if version is not None and architectures_refusal(registry_names(spec), version):
        return
    reason = build_refusal(spec, version)
    if reason is not None:
        by = f"vLLM {version}" if version else f"vLLM (from {BUILD_REFUSED_SINCE[architecture]})"
        raise KvplanError(f"{spec.name} ({architecture}) does not start on {by}: building the model raises "
                          f"\"{reason}\".")
    first = encoder_only_since(spec, version)
    if first is not None and parse_version(version or NEWEST) >= parse_version(first):
        retired = RETIRED.get(architecture)
        span = f"{first} to {last_serving(architecture)}" if retired else f"from {first}"
        by = f"vLLM {version}" if version else f"vLLM ({span})"
        raise encoder_only_error(spec.name, architecture, by, keeps_state=bool(spec.linear_layers))


def build_refusal(spec, version: Optional[str]) -> Optional[str]:
    """vLLM's error while its model class builds `spec`'s attention at `version` (None: the newest), for a config
    ENCODER_ONLY_FROM would otherwise call encoder-only (BUILD_REFUSED_SINCE); None where it builds."""
    architecture = encoder_only_class(spec, version or NEWEST)
    since = BUILD_REFUSED_SINCE.get(architecture)
    if since is None or parse_version(version or NEWEST) < parse_version(since):
        return None
    switches = dict(getattr(spec, "attention_switches", ()))
    if architecture == "ColQwen3_5":
        return _contract_refusal(switches.get("retrieval_attention_contract"))
    sinks = switches.get("param_sink_number")
    sink_attention = not isinstance(sinks, bool) and isinstance(sinks, (int, float)) and sinks > 0
    if not sink_attention or _built_causal(architecture, switches) or not switched_on(_IS_CAUSAL, switches.get):
        return None
    return f"is_causal={switches['is_causal']} is not support for attention with sink"


def encoder_only_class(spec, version: str) -> str:
    """The class whose ENCODER_ONLY_FROM entry decides for `spec` in `version`: the one vLLM serves (the top-level
    name: its config handler, or its own layers); where that has none, the language model a wrapper builds from its
    nested config's class (vllm_registry.language_model_architecture) if that class's decoder layers read is_causal
    (_IS_CAUSAL entries), which they read from the nested config they are built with (the copy's hf_config, config/
    vllm.py 0.32.0:987; llama.py 0.32.0:369, :277-283)."""
    served = served_architecture(spec, version)
    if served in ENCODER_ONLY_FROM:
        return served
    inner = language_model_architecture(spec, version)
    entry = ENCODER_ONLY_FROM.get(inner)
    return inner if entry is not None and entry[1] == _IS_CAUSAL else served


def _contract_refusal(declared) -> Optional[str]:
    """ColQwen3_5Config's error for the retrieval_attention_contract the configs declare (parse records one value,
    or a tuple where the outer and the language model's configs disagree), None for a supported one."""
    if declared is None:
        return "ColQwen3.5 checkpoints must declare retrieval_attention_contract as 'causal' or 'bidirectional'"
    if isinstance(declared, str) and declared in CONTRACTS:
        return None
    declarations = list(declared) if isinstance(declared, tuple) else [declared]
    return f"unsupported or conflicting ColQwen3.5 retrieval_attention_contract declarations: {declarations!r}"


def _built_causal(architecture: str, switches: dict) -> bool:
    """Whether the config's keys make the decoder layer build an attention that never reads the switch
    (CAUSAL_BY_KEYS)."""
    keys = CAUSAL_BY_KEYS.get(architecture)
    return keys is not None and all(switches.get(key) is not None for key in keys)


def architecture_refusal(architecture: str, version: str) -> Optional[Refusal]:
    """model_executor/models/registry.py (0.32.0:1186-1209, _raise_for_unsupported): an architecture the release's
    registry does not list is refused while the config is read, whatever the memory; the release is at fault
    (field engine), and the remedy names the releases that serve it."""
    first = ADDED_ARCHITECTURES.get(architecture)
    if first is not None and padded_release(version) < padded_release(first):  # a minor series as its .0 release
        return Refusal(f"Model architectures ['{architecture}'] are not supported for now (vLLM's registry lists "
                       f"them from v{first} on; vllm=={version} is older).", None, configuration=True, field="engine",
                       options=(f"vllm=={first}",), onward="newer")
    return (_unlisted_refusal(architecture, version) or _retired_refusal(architecture, version)
            or _nowhere_refusal(architecture, version))


def architectures_refusal(names, version: str) -> Optional[Refusal]:
    """architecture_refusal of a config's whole `architectures` list, as registry.py inspect_model_cls
    (0.32.0:1323-1374) resolves it: none where the release lists one of the names or (from TRANSFORMERS_BACKEND) tries
    its Transformers backend on the first, which no release lists (vllm_registry.served_name); else
    _raise_for_unsupported's (0.32.0:1177-1209, 0.7.1:346-356, model_loader.py 0.2.0:55-57), which walks the list for
    the first name it names as retired or left to a plugin (:1186-1203) and else names the whole list. The remedy
    searches the first name's way (newer or older) from the nearest release that lists any name that way, each release
    it tries checked against the whole list."""
    names = tuple(names)
    if len(names) < 2:
        return architecture_refusal(names[0] if names else "", version)
    own = architecture_refusal(served_name(names, version), version)
    if own is None:
        return None
    named = next((name for name in names if retirement(name, version) in ("named", "plugin")), None)
    if named is not None:
        return _retired_refusal(named, version)
    listings = [listing for listing in (_listing(name, version) for name in names) if listing]
    why = (f"vLLM's registry lists {', '.join(listings)}; " if listings else "no vLLM release lists them; ") + \
        f"vllm=={version} lists none of them" + \
        (f" and predates the Transformers backend of v{TRANSFORMERS_BACKEND}"
         if before_transformers_backend(version) else "")
    options = {option for refusal in (architecture_refusal(name, version) for name in names)
               if refusal is not None and refusal.onward == own.onward for option in refusal.options}
    nearest = (min if own.onward == "newer" else max)(options, key=lambda name: padded_release(name.split("==")[1]))
    return replace(own, reason=f"Model architectures {list(names)!r} are not supported for now ({why}).",
                   options=tuple(sorted(options)), note=own.note if nearest in own.options else "")


def _listing(name: str, version: str) -> str:
    """Where vLLM's registries list `name`, for a refusal of several names no one of which `version` lists: from the
    release that adds it, up to the one that drops it, only from the Transformers backend's release (a name served
    by another or on that backend: vllm_registry.listed_by_name); "" for one no release lists."""
    first = ADDED_ARCHITECTURES.get(name)
    span = unlisted_span(name, version)
    if first is not None and padded_release(version) < padded_release(first):
        return f"{name} from v{first} on"
    if span is not None:
        return f"{name} up to v{span[0]}" + (f" and again from v{span[1]}" if span[1] else "")
    if retirement(name, version):
        return f"{name} up to v{RETIRED[name].last}"
    return f"{name} only from v{TRANSFORMERS_BACKEND} on" if listed_anywhere(name) else ""


def registry_names(spec) -> tuple:
    """The names vLLM's registry resolves `spec` by: the top-level config's `architectures` where it names several
    (ModelSpec.architectures), else the one it serves."""
    return getattr(spec, "architectures", ()) or (served_architecture(spec),)


# the remedy's words on TRANSFORMERS_BACKEND for a name no release before it lists (_nowhere_refusal): that release
# serves such a name only where its Transformers backend takes it (unlisted_note), which kvplan cannot see offline
BACKEND_MAY_SERVE = "the Transformers backend it tries on a name its registry lacks may or may not serve it"


def _nowhere_refusal(architecture: str, version: str) -> Optional[Refusal]:
    """_raise_for_unsupported's line (registry.py 0.32.0:1206-1209, worded as architecture_refusal's) for an
    architecture no release lists by that name (listed_by_name), in a release from before the Transformers backend
    took such names (TRANSFORMERS_BACKEND); later ones may serve it there (unlisted_note) or as another name."""
    if not architecture or not before_transformers_backend(version) or listed_by_name(architecture):
        return None
    # a name served later only through another one (_normalize_arch) or the Transformers backend: such a release
    # resolves the names it lists, no other (vllm#11647: 'Gemma2ForSequenceClassification' refused in December 2024)
    listed = (f"vllm=={version} lists no such name and" if listed_anywhere(architecture)
              else f"no vLLM release lists them; vllm=={version}")
    return Refusal(f"Model architectures ['{architecture}'] are not supported for now ({listed} predates the "
                   f"Transformers backend of v{TRANSFORMERS_BACKEND}).", None,
                   configuration=True, field="engine", options=(f"vllm=={TRANSFORMERS_BACKEND}",), onward="newer",
                   note=BACKEND_MAY_SERVE)




def unlisted_note(spec, version: Optional[str]) -> str:
    """The note on a model whose architecture no release lists, where `version` (0.7.2 on) hands it to the
    Transformers backend (registry.py 0.32.0:1222-1295, _try_resolve_transformers): that backend serves it only where
    transformers or the checkpoint's remote code has a compatible class, which kvplan cannot see offline; '' for
    a listed one, --engine none (version None) and earlier releases (they refuse it: _nowhere_refusal). Of a config
    naming several, the one `version` serves (vllm_registry.served_name): the first only where it lists none."""
    architecture = served_architecture(spec, version)
    if version is None or not architecture or listed_anywhere(architecture) or before_transformers_backend(version):
        return ""
    return (f"no vLLM release lists {architecture} in its registry: vLLM {version} hands it to its Transformers "
            f"backend, which serves it only where the installed transformers (or the checkpoint's auto_map code) has "
            f"a compatible class for it, and refuses it otherwise; kvplan plans the layers its config names")


def _retired_refusal(architecture: str, version: str) -> Optional[Refusal]:
    """_raise_for_unsupported's line where `version`'s registry has dropped the architecture for good
    (vllm_registry.RETIRED): "not supported for now" until a release names it in _PREVIOUSLY_SUPPORTED_MODELS, then
    the release it names (registry.py 0.32.0:1186-1195), or the plugin that serves it (PLUGINS: 0.32.0:1196-1203).
    The remedy is the newest release that serves it (last_serving), which vLLM's named release is not always."""
    kind = retirement(architecture, version)
    if kind is None:
        return None
    retired = RETIRED[architecture]
    if kind == "unlisted":
        reason = (f"Model architectures ['{architecture}'] are not supported for now (vLLM's registry lists them up "
                  f"to v{retired.last}; vllm=={version} does not).")
    elif kind == "plugin":
        reason = (f"Model architecture {architecture} is not supported in-tree anymore. Please install the plugin at "
                  f"{PLUGINS[architecture][1]} if you want to use this model architecture.")
    else:
        reason = (f"Model architecture {architecture} was supported in vLLM until v{retired.until}, and is not "
                  f"supported anymore. Please use an older version of vLLM if you want to use this model "
                  f"architecture.")
    return Refusal(reason, None, configuration=True, field="engine", options=(f"vllm=={last_serving(architecture)}",),
                   onward="older")


def _unlisted_refusal(architecture: str, version: str) -> Optional[Refusal]:
    """The same refusal where `version`'s registry drops an architecture an older one lists (vllm_registry.UNLISTED:
    renamed, or gone without a _PREVIOUSLY_SUPPORTED_MODELS entry): the remedy is the first release that lists it
    again, else the last that did."""
    span = unlisted_span(architecture, version)
    if span is None:
        return None
    last, back = span
    listed = f"up to v{last} and again from v{back}" if back else f"up to v{last}"
    return Refusal(f"Model architectures ['{architecture}'] are not supported for now (vLLM's registry lists them "
                   f"{listed}; vllm=={version} does not).", None, configuration=True, field="engine",
                   options=(f"vllm=={back or last}",), onward="newer" if back else "older")


# Families whose transformers config class has no length attribute (MambaConfig, FalconMambaConfig,
# Mamba2Config): vLLM's derived length is then infinite and any --max-model-len is taken as given (config/model.py
# _get_and_verify_max_len: "If max_model_len is specified, we use it"), 2048 without one. Others without the key in
# their file still get a class default (FalconConfig: 2048), which vLLM holds them to.
NO_LENGTH_ATTRIBUTE = ("mamba", "falcon_mamba", "mamba2")


def length_refusal(max_model_len: int, derived: Optional[int], model_type: str = "",
                   key: str = "max_position_embeddings") -> Optional[Refusal]:
    """config/model.py _get_and_verify_max_len (0.32.0:2637-2666): a max_model_len above the model's own
    (max_position_embeddings, 2048 when the config names none) is refused while the config is read, whatever the
    memory, unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1; the length is at fault (field context), and the remedy is the
    model's own maximum (also `estimated_max_model_len`). `derived` is the length after the RoPE factor
    (vllm_rope_len.rope_view), as an int: vLLM compares with the float, the same for a whole --max-model-len."""
    if derived is None and model_type in NO_LENGTH_ATTRIBUTE:
        return None
    derived = derived or 2048
    if max_model_len <= derived:
        return None
    # the derived length is a float once multiplied by the RoPE factor, which a "gemma3" model type skips
    # (0.32.0:2585): --disable-sliding-window's cap on Gemma 3 prints the window as an int
    shown = derived if key == "sliding_window" and "gemma3" in model_type else float(derived)
    owner = "the model's own maximum" if key != "sliding_window" else \
        "the sliding window --disable-sliding-window caps it to"
    return Refusal(
        f"User-specified max_model_len ({max_model_len}) is greater than the derived max_model_len "
        f"({key}={shown} or model_max_length={derived if key == 'model_max_length' else None} in model's "
        f"config.json). To allow "
        f"overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. VLLM_ALLOW_LONG_MAX_MODEL_LEN "
        f"must be used with extreme caution. If the model uses relative position encoding (RoPE), positions "
        f"exceeding derived_max_model_len lead to nan. If the model uses absolute position encoding, positions "
        f"exceeding derived_max_model_len will cause a CUDA array out-of-bounds error.", derived,
        configuration=True, field="context", options=(derived,), onward="less",
        note=f"{owner}; or VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at your own risk",
        remedy_flags=(("disable_sliding_window", "--disable-sliding-window"),) if key == "sliding_window" else ())


def rope_window_refusal(spec, version: str) -> Optional[Refusal]:
    """vLLM 0.4.3-0.11.x's NotImplementedError for --disable-sliding-window beside a RoPE scaling type it multiplies
    the length by (vllm_rope_len.window_pair_refused), met while the length is derived; 0.12 takes the pair."""
    from .vllm_rope_len import window_pair_refused

    said = window_pair_refused(spec, version, getattr(spec, "sliding_window_disabled", False))
    if not said:
        return None
    return Refusal(said, None, configuration=True, field="engine", options=("vllm==0.12.0",), onward="newer",
                   note="vLLM 0.12 caps the length to the window and multiplies it by the RoPE factor")


def config_read_refusal(spec, length: int, version: str) -> Optional[Refusal]:
    """The first refusals start-up meets, while ModelConfig reads the config and before anything reads the GPU: the
    architecture (the release's registry), a list of per-layer windows (vllm_window_list.py), the length past the
    model's own (or the window --disable-sliding-window caps it to) and a RoPE type the release cannot pair with that
    switch. The same on every GPU, so verify asks them
    before torch (commands/verify.py); `spec` as the release views it (vllm_kv_dtype.release_view)."""
    from .vllm_window_list import list_refusal

    return architectures_refusal(registry_names(spec), version) or list_refusal(spec, version) or \
        model_length_refusal(spec, length) or rope_window_refusal(spec, version)


def model_length_refusal(spec, length: int) -> Optional[Refusal]:
    """length_refusal of `length` against `spec`'s own length (`spec` as the release views it:
    vllm_kv_dtype.release_view); where the release itself capped it to Gemma 2's window (vllm_gemma2_window.py),
    the note says so and names no flag to clear."""
    from .vllm_gemma2_window import capped_by_release

    refusal = length_refusal(length, spec.max_position_embeddings, getattr(spec, "model_type", ""),
                             getattr(spec, "length_key", "max_position_embeddings"))
    if refusal is None or not capped_by_release(spec):
        return refusal
    whose = "a list of windows' smallest in 0.6.3.post1-0.6.4" if getattr(spec, "window_list", ()) else \
        "Gemma 2's window before 0.6.5"
    return replace(refusal, remedy_flags=(), note=f"the sliding window vLLM caps the length to ({whose}); 0.6.5 "
                                                  f"serves the model's own; or VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, at "
                                                  f"your own risk")
