"""vLLM's speculative decoding (--speculative-config) as it moves the memory budget and the KV cache, read in vLLM
0.32.0 (paths under vllm/). Decode-speed effects (acceptance rates) are not modelled.

- The config (config/speculative.py SpeculativeConfig.__post_init__): a JSON object; `method` inferred as "ngram"
  from model "ngram"/"[ngram]", else "draft_model"; the per-model MTP names (deepseek_mtp, qwen3_next_mtp, ...)
  are deprecated spellings of "mtp"; num_speculative_tokens > 0 (a pydantic Field(gt=0), 0.34.0:455, with no upper
  bound: kvplan's is units.MAX_TOKENS, as every token count's); for MTP a count above the model's n_predict must be
  a multiple of it ("must be divisible by n_predict").
- ngram, ngram_gpu, suffix: no weights, no KV layers; VllmConfig.num_lookahead_tokens is 0 (only EAGLE-family and
  draft-model methods reserve lookahead slots). Suffix decoding runs on the V1 model runner through 0.33
  (VllmConfig._get_v2_model_runner_unsupported_features), on V2 in 0.34; ngram and suffix turn async scheduling off
  (vllm_runner.async_scheduling).
- mtp: the proposer builds the checkpoint's n_predict MTP modules (deepseek_mtp.py, glm4_moe_mtp.py,
  qwen3_next_mtp.py) with the target's quantisation and TP, and takes the target's embedding and LM head
  (v1/spec_decode/llm_base_proposer.py _maybe_share_embeddings / _maybe_share_lm_head: "Detected MTP model";
  the copies it loaded are freed before the model's memory is read), so the weights term grows by the modules'
  decoder layers, norms and 2h -> h projection (model/tensors.py mtp_module_tensors). Each module's attention
  layer registers a KV cache layer of the target's attention kind, so it joins the cache groups (one more MLA
  layer for DeepSeek-V3: 62 x 576 x 2 bytes a token at bf16). num_lookahead_tokens = num_speculative_tokens:
  the scheduler asks allocate_slots for that many slots past the scheduled tokens, capped at max_model_len
  (v1/core/kv_cache_manager.py allocate_slots: min(tokens + lookahead, max_model_len)), so a request of
  max_model_len tokens holds no more blocks and the resident count at the boundary does not move.
- the profile run (v1/worker/gpu/model_runner.py _dummy_run): after the target's forward the drafter proposes
  over the same tokens, the target's hidden states still held, on the workspace lane 0 it shares with the
  target (only DSpark gets its own), so the fused-MoE workspace does not grow; kvplan adds the held hidden
  states and the module's 2h input to the forward peak (DRAFT_PASS).
- draft_model (inferred from "model"): a second model, read by kvplan's one config reader (model/sources.py
  resolve: bundled spec, local path, Hub cache; its omitted fields as the target's release's transformers fills
  them, read_draft), built whole at the target's TP with its own embedding and LM head
  (v1/spec_decode/draft_model.py: no sharing; draft_tensor_parallel_size must equal the target's; equal
  vocabularies); every cache layer of it joins the groups; lookahead as MTP's.
- Mamba / linear-attention layers, whatever the method: the convolution state keeps conv_kernel - 1 + k inputs
  (model_executor/layers/mamba/mamba_utils.py MambaStateShapeCalculator num_spec: gated DeltaNet, Mamba-2, short
  conv; not Mamba-1) and a request holds k more state blocks (abstract.py MambaSpec num_speculative_blocks,
  allocated with its first state block: v1/core/single_type_kv_cache_manager.py MambaManager).
- eagle, eagle3: a Llama EAGLE head (with_eagle_head), read as a draft model is; its attention layers join the
  groups; lookahead as MTP's.
- the drafter's cache dtype (vllm_draft_cache.drafter_caches): SpeculativeConfig.kv_cache_dtype, a field from 0.26.0
  (config/speculative.py 0.26.0:123; not in 0.25.0), "the draft inherits the target model's --kv-cache-dtype" when
  unset. A set value builds the drafter's layers with their own cache_config.cache_dtype, whatever the method: a draft
  model's (V2 standalone_ar/speculator.py 0.32.0:108-110; 0.34.0:114 apply_draft_overrides), an EAGLE head's or the
  MTP modules' (spec_decode/eagle/utils.py 0.32.0:83, 0.34.0:124 apply_draft_overrides, _DRAFT_VLLM_CONFIG_OVERRIDES
  0.32.0:376-383 ("kv_cache_dtype", "cache_config", "cache_dtype")); V1's proposer the same (llm_base_proposer.py
  0.32.0:1292-1299). Each attention layer reads its cache_config's dtype (model_executor/layers/attention/
  attention.py 0.32.0:276-279) and pages its own KVCacheSpec at it (:606-675), so the drafter's pages are its own
  beside the target's. `auto` there is the drafter's model dtype, the target's (drafter_in_dtype). Its values: the
  release's CacheDType (0.32.0 a Literal, pydantic refuses any other; 0.33.0 :448 and 0.34.0 :507 `CacheDType | str`,
  which CacheConfig._validate_cache_dtype refuses as the draft's config is built, "Invalid kv_cache_dtype",
  config/cache.py 0.33.0:468-475): kvplan takes the release's --kv-cache-dtype choices, spelled as vLLM spells them.
  Unset, 0.32 and 0.33 keep a separate (non-MTP) drafter's cache at `auto` where GlmMoeDsaForCausalLM's hook turns
  the target's `auto` into fp8_e4m3 on SM10x (models/config.py 0.32.0:56-64, 0.33.0:104-110: spec_config.
  kv_cache_dtype = "auto" for a method other than mtp); 0.34 no longer does (0.34.0:163-181), so the drafter
  inherits the fp8_e4m3. Not modelled: a drafter's own attention backend (its refusals and blocks are the target's
  here), and an explicit dtype on sparse-MLA MTP modules (priced as a plain cache, not fp8_ds_mla).
- the drafter's own runner buffers (EAGLE / MTP hidden states, the n-gram and suffix scans, suffix decoding's
  corpus of finished responses: SUFFIX_CORPUS) are runner_state's (vllm_budget.drafter_buffers).
- parallel_drafting (P-EAGLE, PARD; 0.32.0 config/speculative.py:478, a bool): Model Runner V2 has no parallel
  drafting outside DFlash / DSpark, so 0.32 and 0.33 run the model on the V1 runner (vllm_runner.model_runner),
  whose proposer keeps its own buffers (vllm_budget.drafter_buffers); 0.34 refuses it for every method but those
  two (0.34.0 config/speculative.py:1688-1693). vLLM 0.32-0.33 also need the draft's config to name the mask token
  (llm_base_proposer.py:356-380), which kvplan does not check.
- draft_sample_method: "greedy" or "probabilistic" (config/speculative.py:85 DraftSampleMethod, a Literal).
- rejection_sample_method: the values of the release's RejectionSampleMethod Literal ("fly" from 0.33), FLy with 2
  draft tokens or more and a fly_window_size below them (REJECTION_METHODS, FLY_LEAST_TOKENS); FLy's fields from 0.33
  within their pydantic bounds (FLY_FIELDS); anything else is refused as vLLM's pydantic check is.
Not modelled (refused with a sentence, exit 2): the other methods (medusa, mlp_speculator, dflash, dspark, ...),
non-Llama EAGLE heads, draft_sample_method "probabilistic" for a method that drafts with a model (eagle, eagle3,
mtp, draft_model: V2's DraftModelSpeculator caches draft logits, [max_num_seqs, k, vocab], 0.32.0
v1/worker/gpu/spec_decode/speculator.py:179-193; the n-gram and suffix speculators keep none, ngram/speculator.py:155
draft_logits = None and 0.34.0 suffix/speculator.py:500 on BaseSpeculator's None), releases before 0.32 (their
model-runner and MTP rules were not read) and pipeline parallelism.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from ..errors import FieldError, KvplanError, quote
from ..model.files import parse_json
from ..model.kinds import IndexerKeys, LinearState, MLALatent
from ..model.layers import MIMO_ARCHITECTURES
from ..units import MAX_TOKENS

FIELD = "speculative_config"
NO_WEIGHTS = ("ngram", "ngram_gpu", "suffix")
# config/speculative.py MTPModelTypes: deprecated spellings of "mtp"
MTP_NAMES = ("deepseek_mtp", "dots3_note_mtp", "mimo_mtp", "mimo_v2_mtp", "glm4_moe_mtp", "glm4_moe_lite_mtp",
             "glm_ocr_mtp", "ernie_mtp", "nemotron_h_mtp", "exaone_moe_mtp", "exaone4_5_mtp", "qwen3_next_mtp",
             "qwen4_exp_mtp", "qwen3_5_mtp", "longcat_flash_mtp", "bailing_hybrid_v3_mtp", "minimax_m3_mtp",
             "bailing_hybrid_mtp", "kimi_k3_mtp", "pangu_ultra_moe_mtp", "step3p5_mtp", "hy_v3_mtp", "hy_v4_mtp",
             "gemma4_mtp", "inkling_mtp", "glm5_next_mtp")
NOT_MODELLED = ("medusa", "mlp_speculator", "custom_class", "dflash", "dspark", "extract_hidden_states")
EAGLE = ("eagle", "eagle3")
MODELLED = NO_WEIGHTS + ("mtp", "draft_model") + EAGLE
# config/speculative.py hf_config_override: the model types whose MTP modules vLLM builds, as kvplan counts them
MTP_MODEL_TYPES = ("deepseek_v3", "deepseek_v32", "glm_moe_dsa", "glm4_moe", "glm4_moe_lite", "qwen3_next")
SINCE = (0, 32)  # the rules above were read in 0.32.0 only
# config/speculative.py (0.34.0 :584-595): suffix decoding's GPU corpus of finished responses, in tokens, and the
# cached requests whose 0 turns it off; suffix/speculator.py:535-548 also turns it off below a tree depth of 2
SUFFIX_CORPUS, SUFFIX_CACHED_REQUESTS, SUFFIX_DEPTH = 1 << 20, 10_000, 24
# SpeculativeConfig's fields, the annotated fields of the class body its __init__ takes (0.32.0
# config/speculative.py:386-608, 0.33.0 :406-659, 0.34.0 :448-711; 0.34.0's checked against dataclasses.fields() of
# the imported class, custom_method being init=False there). It is a pydantic dataclass with extra="forbid" (the
# @config decorator, 0.32.0 config/utils.py:71, 0.33.0 :71, 0.34.0 :72), and EngineArgs passes the JSON's keys, each
# "-" read as "_", as its keywords (0.32.0 engine/arg_utils.py:2085-2099, 0.33.0 :2125-2139, 0.34.0 :2158-2172), so
# any other key is refused: "Unexpected keyword argument" (check_fields).
FIELDS_032 = ("enforce_eager", "num_speculative_tokens", "model", "method", "draft_tensor_parallel_size",
              "tensor_parallel_size", "quantization", "moe_backend", "attention_backend", "kv_cache_dtype",
              "max_model_len", "revision", "code_revision", "index_share_for_mtp_iteration",
              "disable_padded_drafter_batch", "disable_eagle_block_drop", "use_local_argmax_reduction",
              "use_heterogeneous_vocab", "prompt_lookup_max", "prompt_lookup_min", "parallel_drafting",
              "target_model_config", "target_parallel_config", "num_speculative_tokens_per_batch_size",
              "draft_model_config", "draft_parallel_config", "suffix_decoding_max_tree_depth",
              "suffix_decoding_max_cached_requests", "suffix_decoding_max_spec_factor",
              "suffix_decoding_min_token_prob", "draft_load_config", "rejection_sample_method",
              "synthetic_acceptance_rates", "synthetic_acceptance_length", "enable_adaptive_verification",
              "draft_sample_method", "dspark_draft_topk")
# 0.33.0 adds :478 disable_lookahead_block_hashes, :484 draft_lm_head_quantization, :646 xpress_topc and FLy's three
# (:652 fly_window_size, :656 fly_entropy_threshold, :659 fly_entropy_top_k)
FIELDS_033 = FIELDS_032 + ("disable_lookahead_block_hashes", "draft_lm_head_quantization", "xpress_topc",
                           "fly_window_size", "fly_entropy_threshold", "fly_entropy_top_k")
# 0.34.0 adds :484 draft_decode_context_parallel_size, :592 suffix_decoding_corpus_tokens (0.32.0 :505-520 and 0.33.0
# :538-553 have the other suffix_decoding_* fields only), :700 speculator_options and drops
# disable_padded_drafter_batch and use_heterogeneous_vocab
FIELDS_034 = tuple(f for f in FIELDS_033 if f not in ("disable_padded_drafter_batch", "use_heterogeneous_vocab")) + (
    "draft_decode_context_parallel_size", "suffix_decoding_corpus_tokens", "speculator_options")
SPECULATIVE_FIELDS = (((0, 34), FIELDS_034), ((0, 33), FIELDS_033), ((0, 32), FIELDS_032))  # newest first
# FLy's fields as pydantic types them, (key, whole numbers only, least value, null allowed): 0.33.0
# config/speculative.py:652 Field(ge=1) on an int | None, :656 ge=0 on a float, :659 ge=1 on an int (0.34.0 :704,
# :708, :711)
FLY_FIELDS = (("fly_window_size", True, 1, True), ("fly_entropy_threshold", False, 0, False),
              ("fly_entropy_top_k", True, 1, False))
# RejectionSampleMethod, a Literal pydantic checks, by the first release of each list (newest first): 0.33.0
# config/speculative.py:83 adds "fly" (0.34.0 :98); 0.32.0 :84 (so from 0.25.0 :75). Earlier lists (0.21.0 :68
# "standard", "synthetic"; 0.18.0 :60 "strict", "probabilistic") lie before SINCE.
REJECTION_METHODS = (((0, 33), ("standard", "synthetic", "block", "fly")),
                     ((0, 32), ("standard", "synthetic", "block")))
FLY_LEAST_TOKENS = 2  # 0.33.0 config/speculative.py:2020-2023, 0.34.0 :1706-1709: "FLy requires ... at least 2"
# and a window below the draft tokens (0.33.0 :2026-2029, 0.34.0 :1712-1715), unset taking min(6, k - 1)
DRAFT_SAMPLE_METHODS = ("greedy", "probabilistic")  # config/speculative.py:85 (0.32.0; 0.34.0 :99)
# the methods whose V2 speculator caches draft logits under "probabilistic" (DraftModelSpeculator's subclasses)
DRAFT_LOGITS_METHODS = ("mtp", "draft_model") + EAGLE
PARALLEL_DRAFTING_REFUSED_SINCE = (0, 34)  # 0.34.0 config/speculative.py:1688-1693
TARGETS_CACHE = "cached as the model's"  # a drafter without a cache dtype of its own (Drafter.cache_rule)


@dataclass(frozen=True)
class Speculative:
    """--speculative-config, as vLLM resolves what kvplan models of it."""

    method: str  # ngram | ngram_gpu | suffix | mtp | draft_model | eagle | eagle3
    num_speculative_tokens: int
    model: Optional[str] = None  # draft_model: the draft's id or path, read as the target is (model/sources.py)
    draft_tp: Optional[int] = None  # draft_tensor_parallel_size (vLLM: the target's, and must equal it)
    suffix_corpus: int = SUFFIX_CORPUS  # suffix: the corpus's tokens on the GPU (0: none), suffix_corpus_tokens
    parallel_drafting: bool = False  # every draft token in one pass (P-EAGLE, PARD): the V1 runner up to 0.33
    draft_sampling: str = "greedy"  # draft_sample_method (DRAFT_SAMPLE_METHODS)
    rejection_method: str = "standard"  # rejection_sample_method, checked against the release (REJECTION_METHODS)
    fly: tuple = ()  # ((key, value), ...) of the FLY_FIELDS the config names, checked where the release has them
    keys: frozenset = frozenset()  # the fields the config names (check_fields: a release without one refuses it)
    kv_cache_dtype: Optional[str] = None  # the drafter's own cache dtype (vllm_draft_cache); None: the target's

    @property
    def lookahead(self) -> int:
        """VllmConfig.num_lookahead_tokens: KV slots reserved past the scheduled tokens."""
        return 0 if self.method in NO_WEIGHTS else self.num_speculative_tokens


def speculative_config(value) -> Optional[Speculative]:
    """vLLM's --speculative-config: a JSON object (a mapping from a deployments file); None when not given."""
    if value is None:
        return None
    config = value
    if not isinstance(value, dict):
        try:  # the bounded JSON reader: a 5,000-digit number or 100,000 '[' is refused, not a crash
            config = parse_json(str(value).encode("utf-8"), "--speculative-config")
        except (KvplanError, ValueError):
            raise FieldError(FIELD, f"must be a JSON object like '{{\"method\": \"mtp\", \"num_speculative_tokens\": "
                                    f"1}}' (vLLM's --speculative-config), got {quote(value)}.") from None
    if not isinstance(config, dict):
        raise FieldError(FIELD, f"must be a JSON object (vLLM's --speculative-config), got {quote(value)}.")
    config = {str(key).replace("-", "_"): item for key, item in config.items()}  # as EngineArgs reads the keys
    method, model = config.get("method"), config.get("model")
    if method is None:  # SpeculativeConfig.__post_init__: inferred from the model
        method = "ngram" if model in ("ngram", "[ngram]") else "draft_model" if model is not None else None
    if method is None:
        raise FieldError(FIELD, "names neither a method nor a model: give \"method\" (ngram, suffix, mtp, ...).")
    method = "mtp" if method in MTP_NAMES else "ngram" if method == "[ngram]" else method
    if method in NOT_MODELLED:
        raise FieldError(FIELD, f"method {quote(method)} is not modelled yet (kvplan models {', '.join(MODELLED)}): "
                                f"its draft weights and KV cache would be missing from the estimate.")
    if method not in MODELLED:
        raise FieldError(FIELD, f"method {quote(method)} is not one of vLLM's speculative methods ("
                                f"{', '.join(MODELLED + NOT_MODELLED)}).")
    tokens = config.get("num_speculative_tokens")
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
        what = "is missing" if tokens is None else f"must be a whole number, 1 or more, got {quote(tokens)}"
        raise FieldError(FIELD, f"num_speculative_tokens {what} (the draft tokens a step proposes).")
    if tokens > MAX_TOKENS:  # vLLM takes any count above 0 (Field(gt=0)); kvplan bounds it as every token count
        raise FieldError(FIELD, f"num_speculative_tokens must be at most {MAX_TOKENS:,} (kvplan's bound on a token "
                                f"count; vLLM sets none), got {quote(tokens)}.")
    check_ngram_window(config, method)
    sampling = config.get("draft_sample_method", "greedy")
    check_draft_sampling(method, sampling)
    parallel = config.get("parallel_drafting")
    if parallel is not None and not isinstance(parallel, bool):
        raise FieldError(FIELD, f"parallel_drafting must be true or false, got {quote(parallel)}.")
    cache = config.get("kv_cache_dtype")
    if cache is not None and not isinstance(cache, str):
        raise FieldError(FIELD, f"kv_cache_dtype must be a cache dtype as vLLM spells it (\"auto\", \"fp8\", ...), "
                                f"got {quote(cache)}.")
    common = dict(parallel_drafting=bool(parallel), keys=frozenset(config), draft_sampling=sampling,
                  rejection_method=config.get("rejection_sample_method", "standard"),
                  fly=tuple((key, config[key]) for key, *_ in FLY_FIELDS if key in config), kv_cache_dtype=cache)
    if method == "suffix":
        return Speculative(method, tokens, suffix_corpus=suffix_corpus_tokens(config), **common)
    if method not in ("draft_model",) + EAGLE:
        return Speculative(method, tokens, **common)
    if not isinstance(model, str) or not model.strip():
        raise FieldError(FIELD, f"method {method} needs \"model\": the draft's Hub id or config path, got "
                                f"{quote(model)}.")
    if config.get("use_heterogeneous_vocab"):
        raise FieldError(FIELD, "use_heterogeneous_vocab (a draft with its own tokenizer) is not modelled yet.")
    draft_tp = config.get("draft_tensor_parallel_size")
    if draft_tp is not None and (isinstance(draft_tp, bool) or not isinstance(draft_tp, int) or draft_tp < 1):
        raise FieldError(FIELD, f"draft_tensor_parallel_size must be a whole number, 1 or more, got "
                                f"{quote(draft_tp)}.")
    return Speculative(method, tokens, model.strip(), draft_tp, **common)


def check_ngram_window(config: dict, method: str) -> None:
    """prompt_lookup_min / prompt_lookup_max as vLLM checks them (0.32.0 config/speculative.py:470-474 Field(ge=1)
    on an int | None, whatever the method; :1195-1221 for the ngram proposers, an unset one taking the other's value:
    min at most max). They size nothing, but a value vLLM refuses is a server that does not start."""
    window = {key: config.get(key) for key in ("prompt_lookup_min", "prompt_lookup_max")}
    for key, value in window.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise FieldError(FIELD, f"{key} must be a whole number, 1 or more, got {quote(value)}.")
    low, high = window.values()
    if method in ("ngram", "ngram_gpu") and low is not None and high is not None and low > high:
        raise FieldError(FIELD, f"prompt_lookup_min ({low}) must be at most prompt_lookup_max ({high}), as vLLM "
                                f"requires for the ngram proposer.")


def check_draft_sampling(method: str, sampling) -> None:
    """draft_sample_method as vLLM types it (DRAFT_SAMPLE_METHODS), "probabilistic" refused only where its draft
    logits cache would be missing from the budget (DRAFT_LOGITS_METHODS)."""
    if sampling not in DRAFT_SAMPLE_METHODS:
        raise FieldError(FIELD, f"draft_sample_method must be one of {', '.join(map(quote, DRAFT_SAMPLE_METHODS))} "
                                f"(vLLM's DraftSampleMethod), got {quote(sampling)}.")
    if sampling == "probabilistic" and method in DRAFT_LOGITS_METHODS:
        raise FieldError(FIELD, f"draft_sample_method 'probabilistic' is not modelled yet for method {method} (its "
                                f"cache of draft logits, max_num_seqs x num_speculative_tokens x vocab, would be "
                                f"missing from the budget); leave it at \"greedy\".")


def check_release(config: Speculative, version: str) -> None:
    """The keys `version`'s SpeculativeConfig has no field for (check_fields), 0.34's refusal of parallel drafting
    outside DFlash / DSpark (PARALLEL_DRAFTING_REFUSED_SINCE), FLy's values and the rejection method, as vLLM's
    SpeculativeConfig raises them."""
    from .vllm_versions import parse_version

    release = parse_version(version)
    check_fields(config.keys, version)
    if config.parallel_drafting and release >= PARALLEL_DRAFTING_REFUSED_SINCE:
        raise FieldError(FIELD, f"parallel_drafting is only supported by the dflash and dspark methods in "
                                f"vllm=={version}, not {quote(config.method)}; leave it off.")
    check_fly_fields(config)
    check_rejection_method(config, version, release)
    check_cache_dtype(config, version)


def check_cache_dtype(config: Speculative, version: str) -> None:
    """kv_cache_dtype against `version`'s cache dtypes (the module docstring): exactly as vLLM spells one."""
    from .vllm_versions import kv_dtype_choices

    choices = kv_dtype_choices(version)
    if config.kv_cache_dtype is not None and config.kv_cache_dtype not in choices:
        raise FieldError(FIELD, f"kv_cache_dtype must be one of {', '.join(choices)} in vllm=={version} (the "
                                f"drafter's cache dtype, spelled as vLLM spells it), got "
                                f"{quote(config.kv_cache_dtype)}.")


def check_fields(keys, version: str) -> None:
    """The keys of the config against `version`'s SpeculativeConfig fields (SPECULATIVE_FIELDS): vLLM's pydantic
    check refuses any other (extra="forbid"); a field of other releases is said with the releases that have it."""
    from .vllm_versions import release_rule

    fields = release_rule(SPECULATIVE_FIELDS, version, FIELDS_032)
    unknown = sorted(set(keys) - set(fields))
    if not unknown:
        return
    key = unknown[0]
    having = [".".join(map(str, since)) for since, names in reversed(SPECULATIVE_FIELDS) if key in names]
    newest = ".".join(map(str, SPECULATIVE_FIELDS[0][0]))
    where = "" if not having else f" (from {having[0]})" if having[-1] == newest else \
        f" (vLLM {having[0]} to {having[-1]} have it)" if len(having) > 1 else f" (vLLM {having[0]} alone has it)"
    raise FieldError(FIELD, f"names {key if having else quote(key)}, which vllm=={version}'s SpeculativeConfig does "
                            f"not have{where}; vLLM refuses any key but its fields: {', '.join(fields)}.")


def check_fly_fields(config: Speculative) -> None:
    """FLy's fields against their pydantic types and bounds (FLY_FIELDS), where the release has them."""
    for key, whole, least, nullable in FLY_FIELDS:
        value = dict(config.fly).get(key, least)
        if value is None and nullable:
            continue
        number = isinstance(value, int) or (not whole and isinstance(value, float))
        if isinstance(value, bool) or not number or value < least:
            kind = "a whole number" if whole else "a number"
            raise FieldError(FIELD, f"{key} must be {kind}, {least} or more, got {quote(value)}.")


def check_rejection_method(config: Speculative, version: str, release: tuple) -> None:
    """rejection_sample_method against the Literal `version` (parsed: `release`) types it with (REJECTION_METHODS),
    and FLy's least num_speculative_tokens (FLY_LEAST_TOKENS) and its window below them."""
    accepted = next((methods for since, methods in REJECTION_METHODS if release >= since), ())
    if config.rejection_method not in accepted:
        raise FieldError(FIELD, f"rejection_sample_method must be one of {', '.join(map(quote, accepted))} in "
                                f"vllm=={version}, got {quote(config.rejection_method)}.")
    if config.rejection_method != "fly":
        return
    tokens, window = config.num_speculative_tokens, dict(config.fly).get("fly_window_size")
    if tokens < FLY_LEAST_TOKENS:
        raise FieldError(FIELD, f"rejection_sample_method 'fly' needs num_speculative_tokens {FLY_LEAST_TOKENS} or "
                                f"more in vllm=={version}, got {tokens}.")
    if window is not None and window >= tokens:
        raise FieldError(FIELD, f"fly_window_size must be smaller than num_speculative_tokens ({tokens}) for "
                                f"rejection_sample_method 'fly' in vllm=={version}, got {window}.")


def suffix_corpus_tokens(config: dict) -> int:
    """The tokens of suffix decoding's corpus (0.34.0 suffix/speculator.py:535-548): suffix_decoding_corpus_tokens,
    0 where suffix_decoding_max_cached_requests is 0 or suffix_decoding_max_tree_depth below 2."""
    values = {}
    for key, default, least in (("suffix_decoding_corpus_tokens", SUFFIX_CORPUS, 0),  # suffix/config.py:34-48
                                ("suffix_decoding_max_cached_requests", SUFFIX_CACHED_REQUESTS, 0),
                                ("suffix_decoding_max_tree_depth", SUFFIX_DEPTH, 1)):
        value = config.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise FieldError(FIELD, f"{key} must be a whole number, {least} or more, got {quote(value)}.")
        values[key] = value
    if values["suffix_decoding_corpus_tokens"] >= 1 << 31:  # suffix/config.py:39-42
        raise FieldError(FIELD, f"suffix_decoding_corpus_tokens must be below 2**31, got "
                                f"{values['suffix_decoding_corpus_tokens']:,}.")
    if values["suffix_decoding_max_cached_requests"] == 0 or values["suffix_decoding_max_tree_depth"] < 2:
        return 0
    return values["suffix_decoding_corpus_tokens"]


@dataclass(frozen=True)
class Drafter:
    """What a speculative config adds to serving a model: its weights (ParamGroups, each rank's share as the
    target's) and its cache layers, appended to the model's."""

    config: Speculative
    modules: int  # MTP modules built
    params: tuple  # ParamGroups of all of them
    layers: tuple  # cache layer kinds they add
    model: Optional[object] = None  # draft_model / EAGLE: the ModelSpec of the draft's config
    whole: bool = False  # draft_model: every weight of `model` loaded, at the target's TP

    @property
    def describe(self) -> str:
        c = self.config
        if self.whole:
            built = f", draft model {self.model.name} ({self.cached}, its own embedding and LM head)"
        elif self.model is not None:
            built = f", {c.method} head {self.model.name} ({self.cached}, the target's embedding)"
        elif self.modules:
            built = f", {self.modules} MTP module{'s' * (self.modules > 1)} (embedding and LM head the target's)"
        else:
            built = ", no draft weights"
        tokens = f"{c.num_speculative_tokens} draft token{'s' * (c.num_speculative_tokens != 1)}"
        parallel = ", drafted in one pass on vLLM's V1 runner (parallel_drafting)" if c.parallel_drafting else ""
        own = f", {self.cache_rule}" if self.cache_rule != TARGETS_CACHE else ""
        return f"speculative {c.method}, {tokens} a step{parallel}{built}{own}"

    @property
    def cache_rule(self) -> str:
        """The drafter's cache dtype in words (vllm_draft_cache.drafter_caches): TARGETS_CACHE where it keeps the
        target's."""
        own = next((layer for layer in self.layers if getattr(layer, "cache", None) is not None
                    or getattr(layer, "auto_cache", None) is not None), None)
        if own is None:
            return TARGETS_CACHE
        if own.cache is not None:
            return f"cached as {own.cache.name} (its kv_cache_dtype {self.config.kv_cache_dtype})"
        return (f"cached as {own.auto_cache.name} where the target's is auto (GlmMoeDsaForCausalLM's hook sets the "
                f"drafter's kv_cache_dtype to auto)")

    @property
    def cached(self) -> str:
        return f"{len(self.layers)} cache layer{'s' * (len(self.layers) != 1)}"

    @property
    def weighs(self) -> bool:
        return bool(self.modules or self.model is not None)

    @property
    def reads(self) -> int:
        """Target hidden states a token the drafter's profile pass holds: EAGLE-3's aux layers, else one."""
        return 3 if self.config.method == "eagle3" else 1


def with_drafter(spec, config: Speculative, version: str, pp: int = 1):
    """`spec` as vLLM serves it with `config` (module docstring), the drafter in the target's dtype
    (drafter_in_dtype), or FieldError where kvplan does not model it."""
    from ..model.quantization import drafter_in_dtype

    from .vllm_draft_cache import drafter_caches

    # its cache dtype as far as the GPU does not decide it (on_gpu settles it: vllm_model_dtype.on_gpu)
    return drafter_caches(drafter_in_dtype(_with_drafter(spec, config, version, pp)), (), version)


def _with_drafter(spec, config: Speculative, version: str, pp: int = 1):
    from .vllm_versions import parse_version, release_transformers

    if parse_version(version) < SINCE:
        raise FieldError(FIELD, f"is modelled as vLLM 0.32 treats it; vllm=={version}'s rules (model runner, MTP "
                                f"support) are not, so use the default engine or leave it off.")
    check_release(config, version)
    if pp > 1:
        raise FieldError(FIELD, "is not modelled with pipeline parallelism (where vLLM places the drafter); use pp 1.")
    if spec.compressed_attention:
        raise FieldError(FIELD, "is not modelled for DeepSeek-V4 (its MTP and DSpark drafters, models/deepseek_v4/"
                                "nvidia/mtp.py, dspark.py, and the draft tokens' window caches); leave it off.")
    if config.method == "mtp" and spec.architecture in MIMO_ARCHITECTURES:
        raise FieldError(FIELD, "method mtp is not modelled for MiMo-V2 (its MTP drafter, model_executor/models/"
                                "mimo_v2_mtp.py, is not DeepSeek's); leave it off or use an EAGLE head.")
    if spec.linear_layers:  # every state layer keeps the draft tokens' inputs (Mamba-1 excepted)
        k = config.num_speculative_tokens
        spec = replace(spec, layers=tuple(layer.widened(k) if isinstance(layer, LinearState) else layer
                                          for layer in spec.layers))
    if config.method == "draft_model":
        return with_draft_model(spec, config, release_transformers(version))
    if config.method in EAGLE:
        return with_eagle_head(spec, config, release_transformers(version))
    if config.method != "mtp":
        return replace(spec, draft=Drafter(config, 0, (), ()))
    n = spec.mtp_modules
    if not n:
        raise FieldError(FIELD, f"method mtp needs the model's own MTP layers; {spec.name}'s config names none "
                                f"(num_nextn_predict_layers, mtp_num_hidden_layers).")
    if spec.model_type not in MTP_MODEL_TYPES:
        raise FieldError(FIELD, f"method mtp is not modelled yet for model type {quote(spec.model_type)} (kvplan "
                                f"counts the MTP modules of {', '.join(MTP_MODEL_TYPES)}).")
    k = config.num_speculative_tokens
    if k > n and k % n:  # SpeculativeConfig.__post_init__
        raise FieldError(FIELD, f"num_speculative_tokens {k} must be divisible by the model's {n} MTP modules, as "
                                f"vLLM requires (n_predict={n}).")
    layers = mtp_cache_layers(spec) * n
    params = tuple(replace(g, parameters=g.parameters * n, replicated=g.replicated * n,
                           kv_split=tuple((kv, size * n) for kv, size in g.kv_split))
                   for g in spec.mtp_module)
    return replace(spec, layers=spec.layers + layers, draft=Drafter(config, n, params, layers))


def mtp_cache_layers(spec) -> tuple:
    """The cache layers one MTP module adds: its decoder layer attends as the model's last layer does; under
    sparse attention it always runs its own indexer (models/deepseek_v32/attention.py: an MTP layer never skips
    its top-k), so it holds a latent that leads an index group and the indexer's keys."""
    latent = next((layer for layer in reversed(spec.layers) if isinstance(layer, MLALatent)), None)
    indexer = next((layer for layer in spec.layers if isinstance(layer, IndexerKeys)), None)
    if latent is not None and indexer is not None:
        return (replace(latent, leads_index_group=True), indexer)
    return (spec.attention_layers[-1],)


def with_draft_model(spec, config: Speculative, transformers: Optional[str] = None):
    """A separate draft model (v1/spec_decode/draft_model.py DraftModelProposer): its config read as the target's
    (by the same transformers, the release's: `transformers`, vllm_versions.release_transformers; None: the newest),
    built whole with its own embedding and LM head (_maybe_share_embeddings / _maybe_share_lm_head do nothing),
    every cache layer of it beside the target's; vLLM refuses a draft whose vocabulary differs
    (SpeculativeConfig.verify_equal_vocab_size_if_draft_model)."""
    draft = read_draft(config.model, transformers)
    if draft.vocab_size != spec.vocab_size:
        raise FieldError(FIELD, f"draft model {quote(config.model)} has vocab_size {draft.vocab_size}, the target "
                                f"{spec.vocab_size}: vLLM refuses a draft model with another vocabulary.")
    if draft.linear_layers or not draft.layers:
        raise FieldError(FIELD, f"draft model {quote(config.model)} has Mamba / linear-attention layers: not "
                                f"modelled yet.")
    return replace(spec, layers=spec.layers + draft.layers, draft=Drafter(config, 0, (), draft.layers, draft, True))


def read_draft(model: str, transformers: Optional[str] = None, raw: Optional[list] = None):
    """The draft's spec through kvplan's one config reader (model/sources.py resolve: bundled spec, local path,
    Hub cache), the fields its config leaves out filled by `transformers` (the target's release's: the draft's
    ModelConfig, config/speculative.py 0.32.0:1289, reads its config through get_config as the target's does,
    config/model.py:669, in the one transformers installed), or FieldError naming the flag."""
    from ..errors import KvplanError
    from ..model.sources import resolve

    try:
        return resolve(model, None, raw_out=raw, transformers=transformers)
    except KvplanError as exc:
        raise FieldError(FIELD, f"draft model {quote(model)} cannot be read: {exc}") from None


def with_eagle_head(spec, config: Speculative, transformers: Optional[str] = None):
    """An EAGLE / EAGLE-3 head (model/tensors.py eagle_head_tensors: llama_eagle.py, llama_eagle3.py), its
    attention layers in the cache groups. vLLM shares the target's embedding (and EAGLE's LM head) only when the
    checkpoint has none of its own or an identical one (_maybe_share_embeddings, _maybe_share_lm_head compare
    tensors); kvplan, reading configs only, assumes the public heads' layout: no embedding of their own, EAGLE
    without an LM head, EAGLE-3 with one of draft_vocab_size rows."""
    from ..model.parse import eagle_head_groups

    raw: list = []
    head = read_draft(config.model, transformers, raw)
    if head.model_type != "llama" or not raw or head.linear_layers:
        raise FieldError(FIELD, f"{config.method} head {quote(config.model)} is not a Llama head (model_type "
                                f"{quote(head.model_type)}): only llama_eagle.py / llama_eagle3.py are modelled yet.")
    params = eagle_head_groups(raw[0], head.name, config.method == "eagle3", spec.vocab_size, spec.dtype,
                               head.transformers)
    return replace(spec, layers=spec.layers + head.layers, draft=Drafter(config, 0, params, head.layers, head))


def served(spec, engine, pp: int = 1):
    """The model as `engine` serves it: as its vLLM release builds it (vllm_kv_dtype.release_view), with its drafter
    where the engine's flags name a speculative config."""
    if getattr(engine, "name", "") == "vllm":
        from .vllm_kv_dtype import release_view

        spec = release_view(spec, engine.version)
    config = getattr(getattr(engine, "flags", None), "speculative", None)
    return spec if config is None else with_drafter(spec, config, engine.version, pp)


def draft_weights(drafter: Drafter, tp: int) -> int:
    """Bytes of the drafter's weights on one TP rank: a draft model's as the target's (plan/sharding.py
    stage_weights); MTP modules' what every rank holds whole (norms, eh_proj, MLA's latent projections, routers),
    one whole KV head's K / V projections where tp exceeds their KV heads, the rest split as the target's layers
    are."""
    from ..plan.sharding import kv_replica_bytes, stage_weights

    if drafter.whole:
        return stage_weights(drafter.model, tp)
    total = sum(g.bytes for g in drafter.params)
    whole = sum(g.replicated for g in drafter.params) if tp > 1 else 0
    return -(-(total - whole) // tp) + whole + int(kv_replica_bytes(drafter.params, tp))


def draft_pass(spec, tp: int, tokens: int, rules, peak: int) -> int:
    """DRAFT_PASS: the profile peak with the drafter's pass after the target's. MTP modules: the target's forward
    peak plus the target's hidden states they read and their 2h input (embeddings and hidden states
    concatenated), tokens wide in the model dtype (a decoder layer of the target's kind, the MoE workspace shared);
    a draft model: the target's hidden states held while the draft's own forward runs, if that is higher."""
    from ..model.precision import DTYPE_BYTES
    from .vllm_profile import forward_peak

    hidden = tokens * spec.hidden_size * DTYPE_BYTES[spec.dtype]
    if spec.draft.model is not None:  # a draft model, or an EAGLE head reading the target's (aux) hidden states
        return max(peak, spec.draft.reads * hidden + forward_peak(spec.draft.model, tp, tokens, rules))
    return peak + 3 * hidden if spec.draft.modules else peak
