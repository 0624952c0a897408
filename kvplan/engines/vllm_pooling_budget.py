"""What vLLM's pooling runner (vllm_pooling.pooling_runner: embedding, classification, reward, ranking models)
changes in the memory budget and the scheduler settings kvplan plans with. Read in the sources of 0.11.0-0.34.0:

- weights: no LM head. The pooling adapters build none (model_executor/models/adapters.py: 0.11.0:185-192 and
  0.14.0:183-185 delete lm_head after building it, which the weights' profiler, allocated after less before
  (utils/mem_utils.py DeviceMemoryProfiler, platforms/cuda.py get_current_memory_usage), then never sees; 0.15.0
  :145-150, 0.16.0 :145-149 and 0.34.0:163-167 build it as StageMissingLayer under no_init_weights), and the pooling
  classes of their own (Qwen2ForRewardModel, *Model) have none (without_lm_head).
- the model runner: before 0.29 Model Runner V2 takes generating models only (_is_default_v2_model_runner_model:
  `runner_type != "generate"` returns False, config/vllm.py 0.22.0:523, 0.28.0:696), so a pooling model runs on V1
  there (vllm_runner.model_runner); from 0.29 on V2 as every model (0.29.0 :645-675 has no such check).
- the profile run's last pass: _dummy_pooler_run instead of _dummy_sampler_run on the last stage (V1
  v1/worker/gpu_model_runner.py 0.11.0:3393-3397, 0.20.0:5851-5855, 0.32.0:6196-6200; V2 v1/worker/gpu/
  model_runner.py 0.32.0:1012-1017, 0.34.0:1093-1099): no logits, so nothing a vocabulary wide (pooler_pass_bytes).
- V2's sampler state: the sampler (penalty counts, per-request rows) and the structured-output bitmask are built
  only where `self.is_last_pp_rank and not self.is_pooling_model` (gpu/model_runner.py 0.29.0:436-463, 0.32.0
  :460-518, 0.34.0:486-549): none for a pooling model (vllm_budget.runner_state).
- async scheduling off by default from 0.20 (config/vllm.py 0.20.0:800-807, 0.32.0:1585-1595, 0.34.0:1610-1620:
  "negatively impacts performance of pooling models"), so one batch in flight without PP (vllm_runner
  .async_scheduling).
- chunked prefill and prefix caching by the pooler's pooling type (incremental_prefill): the user's --pooler-config's
  (engines/vllm_pooler_config.py), else the Sentence Transformers Pooling module's config.json's where it names one
  (model/st_modules.py; config/model.py 0.34.0:796-822 sets the user's, then the file's, then the class's default),
  else the class's; off, `vllm serve`'s default max_num_batched_tokens is raised to max_model_len
  (vllm_settings.whole_prompt_batch).
Not modelled: CUDA graphs are PIECEWISE only for a pooling model (config/vllm.py 0.32.0:1874-1884 overrides a
full-graph mode), which kvplan's one assumed graph reserve (vllm_budget.CONSTANTS "cuda_graphs") does not tell
apart; a *ForSequenceClassification's score head, [num_labels, hidden] float32 (the pooling head_dtype, config/
model.py 0.32.0:2503-2524; adapters.py 0.34.0:388-396), a few KiB, is left out.
Encoder-only pooling models (BERT family, EmbeddingGemma) have no KV cache and are refused before any of this
(model/unmodelled.py ENCODER_ONLY).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..model.precision import DTYPE_BYTES
from ..model.spec import Weights
from .vllm_pooler_config import given, user_pooling_type, user_pooling_types
from .vllm_pooling import SUFFIX_RUNNER, pooling_runner, st_legacy_pooling_type, st_pooling_types
from .vllm_registry import served_architecture
from .vllm_versions import parse_version

__all__ = ["pooling_runner", "without_lm_head", "pooler_pass_bytes", "incremental_prefill"]

HEAD_BYTES = 4  # the pooler's head dtype, float32 for pooling models (config/model.py 0.32.0:2503-2524)


def without_lm_head(spec, version: Optional[str] = None):
    """`spec` as vLLM `version`'s pooling runner loads it (None: PINNED): no LM head (module docstring). An estimate
    from the config drops the head kvplan added for an untied config (model/tensors.py model_tensors); a checkpoint's
    own size drops it only where the checkpoint is a generating class's (*ForCausalLM and the other generating
    suffixes: served pooling by modules.json or vLLM's --runner pooling), whose file ships lm_head.weight that the
    pooling class does not load; a pooling class's checkpoint (*Model, *ForSequenceClassification, a reward model)
    ships none. A tied embedding has no head of its own: nothing to drop, and the inner model still builds it on a
    pipeline's last rank (qwen2.py 0.34.0:363-375, llama.py 0.34.0:379: `config.tie_word_embeddings and
    get_pp_group().is_last_rank`, whatever the runner), as plan/sharding.py stage_weights counts it."""
    head = next((g for g in spec.params if g.name == "lm_head"), None)
    if head is None or not head.bytes or not pooling_runner(spec, version):
        return spec
    estimated = spec.weights.source == "estimated from config"
    # the class that saved the checkpoint: the top-level config's (transformers' save_pretrained writes its own class
    # there), not a nested language-model config's
    shipped = estimated or _generating_checkpoint(getattr(spec, "registered_architecture", "") or spec.architecture)
    parameters, stored = (head.parameters, head.bytes) if shipped else (0, 0)
    weights = Weights(spec.weights.parameters - parameters, spec.weights.bytes - stored, spec.weights.dtype,
                      spec.weights.source)
    return replace(spec, params=tuple(g for g in spec.params if g.name != "lm_head"), weights=weights)


def _generating_checkpoint(architecture: str) -> bool:
    """Whether a checkpoint of `architecture` is a generating class's (one with an LM head), by the suffixes vLLM
    reads (vllm_pooling.SUFFIX_RUNNER)."""
    return any(architecture.endswith(suffix) for suffix, runner in SUFFIX_RUNNER if runner == "generate")


def pooler_pass_bytes(spec, tokens: int, requests: int) -> tuple:
    """(bytes, how) the profile's pooler pass holds over `tokens` dummy tokens in min(tokens, max_num_seqs)
    requests. _dummy_pooler_run runs every task the pooler supports over the forward's hidden states, which the
    profile holds meanwhile (tokens x hidden in the model dtype). The largest is the token-wise one (token_embed /
    token_classify; 0.32.0 model_executor/layers/pooler/tokwise/methods.py:36-101 AllPool splits the hidden states
    into views, tokwise/heads.py:48-103 casts each request's rows to the float32 head dtype and normalises them):
    tokens x hidden float32 outputs kept until the pass returns, and one request's float32 copy beside its
    normalised rows (V1 gives the last request the remainder: gpu_model_runner.py 0.32.0:6046-6058; V2 spreads it,
    gpu/pool/pooling_runner.py 0.32.0:168-177, so this bounds it). A sequence-wise task pools to [requests,
    hidden]; a classifier's outputs are [tokens, num_labels]: both less. So (width + 4) bytes a token's hidden value
    and a request's copy: under the forward's activations over the same tokens whenever the MLP is wider than a
    third of the hidden size (3 x intermediate x width > 4 x hidden bytes a token), every model kvplan reads; it is
    priced all the same."""
    hidden, width = spec.hidden_size, DTYPE_BYTES[spec.dtype]
    requests = max(1, min(tokens, requests))
    largest = tokens - (requests - 1) * (tokens // requests)
    held, outputs, copy = tokens * hidden * width, tokens * hidden * HEAD_BYTES, largest * hidden * HEAD_BYTES
    return held + outputs + copy, (f"pooler over {tokens} tokens in {requests} requests (hidden states x {width} B "
                                   f"held, token-wise float32 outputs and a request's copy x {HEAD_BYTES} B; "
                                   f"no logits)")


# The pooling type a class declares (model_executor/models/*.py @default_pooling_type), where it is not the default:
# (from 0.14, seq_pooling_type, tok_pooling_type; before, its one pooling_type). Defaults LAST and ALL
# (interfaces_base.py 0.34.0:163, :173; 0.11.0 :144). Read in 0.11.0 and 0.34.0: qwen2_rm.py
# 0.34.0:93 / :105 (0.11.0:97 / :111), internlm2.py 0.34.0:388 (0.11.0:403), gritlm.py 0.20.0:199 (0.11.0:218),
# embedding_gemma2.py 0.34.0:980, colqwen3.py :109, colqwen3_5.py :106, colpali.py :71 (CLS: attn_type
# "encoder_only", config/model.py 0.34.0:2218-2224)
CLASS_POOLING = {
    "Qwen2ForRewardModel": ("LAST", "ALL", "ALL"),
    "InternLM2ForRewardModel": ("LAST", "ALL", "ALL"),
    "Qwen2ForProcessRewardModel": ("LAST", "STEP", "STEP"),
    "GritLM": ("MEAN", "ALL", "MEAN"),
    "EmbeddingGemma2Model": ("MEAN", "ALL", "MEAN"),
    **dict.fromkeys(("ColQwen3", "ColQwen3_5", "ColPaliForRetrieval"), ("CLS", "ALL", "CLS")),
}
DEFAULT_POOLING = ("LAST", "ALL", "LAST")
# (first release, the one pooling_type values that keep chunked prefill and prefix caching on), newest first:
# 0.13.0 config/model.py:1683-1707 (mean / step / cls off), 0.12.0 :1772-1798 (all / mean / step / cls off), 0.11.0
# engine/arg_utils.py:1563-1577 (last only); from 0.14 the two types (SPLIT_TYPES_SINCE)
LEGACY_INCREMENTAL = (((0, 13), ("LAST", "ALL")), ((0, 0), ("LAST",)))
SPLIT_TYPES_SINCE = (0, 14)  # config/model.py 0.14.0:1567-1600, 0.34.0:2237-2309: off for MEAN / CLS or STEP
ENCODER_ONLY_CLS_SINCE = (0, 12)  # attn_type: a class defaulting to CLS is encoder_only (0.12.0:1753-1760)


def incremental_prefill(spec, version: str) -> bool:
    """Whether vLLM `version` turns chunked prefill and prefix caching on by default for `spec` (both follow one
    rule: ModelConfig.is_chunked_prefill_supported / is_prefix_caching_supported, 0.34.0 config/model.py:2237-2309,
    read by arg_utils.py:3078-3121). For a pooling model the pooler's types are, field by field, the user's
    --pooler-config's (vllm_pooler_config.user_pooling_types), else the Sentence Transformers Pooling module's
    (vllm_pooling.st_pooling_types) where its config.json names them, else the class's (CLASS_POOLING); a generating
    model is always on, unless --pooler-config is given, which vLLM keeps and reads as a pooling model's, its types
    alone (vllm_pooler_config's docstring). From 0.12 a class whose own default is CLS builds encoder-only attention,
    whatever the pooler's type (ModelConfig.attn_type reads _model_info's default: 0.12.0:1753-1760,
    0.34.0:2217-2226): off. Then from 0.14 off where the pooler pools MEAN or CLS or steps (STEP); before, by its one
    type (LEGACY_INCREMENTAL; 0.11.0 arg_utils.py:1563-1567 reads pooler_config.pooling_type only, .lower())."""
    pooled = pooling_runner(spec, version)
    if not pooled and given(spec) is None:
        return True
    classes = CLASS_POOLING.get(served_architecture(spec, version), DEFAULT_POOLING)
    seq, tok, single = classes if pooled else (None, None, None)  # the generate runner merges no default
    release = parse_version(version)
    if release >= ENCODER_ONLY_CLS_SINCE and (classes[0] if release >= SPLIT_TYPES_SINCE else classes[2]) == "CLS":
        return False
    if release >= SPLIT_TYPES_SINCE:
        user_seq, user_tok = user_pooling_types(spec, version)
        st_seq, st_tok = st_pooling_types(spec, version) if pooled else (None, None)
        seq, tok = user_seq or st_seq or seq, user_tok or st_tok or tok
        return seq not in ("MEAN", "CLS") and tok != "STEP"
    single = user_pooling_type(spec, version) or (st_legacy_pooling_type(spec, version) if pooled else None) or single
    return str(single).upper() in next(kept for first, kept in LEGACY_INCREMENTAL if release >= first)
