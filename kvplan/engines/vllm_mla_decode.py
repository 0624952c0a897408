"""Which requests vLLM's dense MLA runs on its decode path: those of at most reorder_batch_threshold new tokens, a
prompt's chunk included (split_decodes_and_prefills counts short extends as decodes: v1/attention/backends/utils.py
0.32.0:803-843; MLA asks it with treat_short_extends_as_decodes where -pcp is off, model_executor/layers/attention/
mla_attention.py 0.32.0:2571-2578). The threshold is the metadata builder's, so the backend's that runs, read in the
wheels 0.10.2, 0.11.0, 0.11.1, 0.11.2, 0.12.0, 0.13.0, 0.14.0, 0.15.1, 0.16.0-0.34.0 (paths under vllm/):
- the base builder's 1 (v1/attention/backends/mla/common.py 0.11.1:476; mla_attention.py 0.32.0:2265): TRITON_MLA
  (Ampere, Ada, SM12x), CUTLASS_MLA and FLASHINFER_MLA (SM10x);
- FLASH_ATTN_MLA 512 ("process small prefills with decode pathway": flashattn_mla.py 0.10.2:70, 0.11.1:97,
  0.32.0:130), the first MLA backend on Hopper from 0.11.1 for a 16-bit cache (platforms/cuda.py 0.11.1:63-70
  _get_backend_priorities, 0.32.0:147-151; supported_kv_cache_dtypes auto only up to 0.14, flashattn_mla.py
  0.11.1:45, then auto / bfloat16, 0.15.1:46-49, and float16 from 0.18.0:47-51). 0.10.2-0.11.0 run FLASHMLA on
  Hopper (cuda.py 0.11.0:263-290: FLASHMLA first wherever the forced 64-token block lets it), 1 there;
- FLASHMLA 128 from 0.11.1 (flashmla.py 0.11.1:101, 0.32.0:113), Hopper's backend for an fp8 cache; 1 before.
Speculative decoding raises it to 1 + k (k draft tokens; 1 + 2k under parallel drafting, 0.16 on: v1/attention/
backend.py 0.16.0:485, 0.32.0:569-592 max_decode_query_len) where the builder's query_len_support is not
SINGLE_ONLY (backend.py 0.32.0:662-674, mla_attention.py 0.32.0:2466-2469): FLASH_ATTN_MLA (VARLEN), FLASHMLA and
FLASHINFER_MLA (UNIFORM; VARLEN from 0.31) from 0.11.1, TRITON_MLA from 0.31 (UNIFORM, triton_mla.py 0.31.0; 0.27-0.30
only for DSpark's non-causal drafts), never CUTLASS_MLA. Under -dcp D > 1 the threshold falls back to 1 unless the
builder passes supports_dcp_with_varlen (backend.py 0.32.0:676-680; utils.py 0.11.1:297-301): FLASH_ATTN_MLA always
in 0.11.1-0.12.x (flashattn_mla.py 0.11.1:112, 0.12.0:115), from 0.13 only at --dcp-kv-cache-interleave-size 1, the
default (0.13.0:115, 0.32.0:146); FLASHINFER_MLA from 0.29 (flashinfer_mla.py 0.29.0:147); never FLASHMLA. Before
0.11.1 FLASH_ATTN_MLA set 1 under -dcp itself (flashattn_mla.py 0.10.2:104-105, 0.11.0:102-103).
Not modelled: an explicit --kv-cache-dtype float16 in 0.15-0.17 (FLASH_ATTN_MLA lists bfloat16 only: FLASHMLA runs),
ROCm's backends (1 here), sparse MLA's backends (kvplan prices no -dcp for them; 1 here)."""

from __future__ import annotations

from typing import Optional

from .vllm_versions import parse_version, release_order, release_rule

# the builder's own threshold by backend: ((first release, threshold), ...) newest first; 1 where none applies
OWN_THRESHOLD = {"FLASH_ATTN_MLA": (((0, 10, 2), 512),), "FLASHMLA": (((0, 11, 1), 128),)}
# the first release whose builder of the backend widens its threshold for speculative decoding
SPEC_AS_DECODE = {"FLASH_ATTN_MLA": (0, 11, 1), "FLASHMLA": (0, 11, 1), "FLASHINFER_MLA": (0, 11, 1),
                  "TRITON_MLA": (0, 31)}
# the first release whose builder keeps its threshold under -dcp (FLASH_ATTN_MLA from 0.13 at interleave 1 only)
DCP_VARLEN = {"FLASH_ATTN_MLA": (0, 11, 1), "FLASHINFER_MLA": (0, 29)}
FA_MLA_INTERLEAVE_SINCE = (0, 13)  # supports_dcp_with_varlen=(interleave_size == 1)
FA_MLA_HOPPER_SINCE = (0, 11, 1)  # FLASH_ATTN_MLA first in Hopper's MLA priority list
PARALLEL_DRAFTING_SINCE = (0, 16)  # 1 + 2k under parallel_drafting
NEVER = (1 << 30,)  # a release no backend reaches: the rule never applies


def running_backend(block_backend: str, kv_quantized: bool, version: str) -> str:
    """The dense MLA backend that runs, from the one whose blocks set the block (vllm_specs.dense_mla_backend): up
    to 0.17 Hopper forces FLASHMLA's block, yet from 0.11.1 FLASH_ATTN_MLA, first in the list, runs a 16-bit cache."""
    if block_backend == "FLASHMLA" and not kv_quantized and parse_version(version) >= FA_MLA_HOPPER_SINCE:
        return "FLASH_ATTN_MLA"
    return block_backend


def decode_query_len(backend: str, version: str, dcp: int = 1, interleave: Optional[int] = None,
                     draft_tokens: int = 0, parallel_drafting: bool = False) -> int:
    """reorder_batch_threshold of the dense MLA `backend` that runs in vLLM `version` under -dcp `dcp` at interleave
    `interleave` (None: 1) with `draft_tokens` speculative tokens a step: the most new tokens a request may bring
    and still run the decode path (the module docstring)."""
    threshold = release_rule(OWN_THRESHOLD.get(backend, ()), version, 1)
    if draft_tokens and release_order(version) >= SPEC_AS_DECODE.get(backend, NEVER):
        widened = 2 if parallel_drafting and parse_version(version) >= PARALLEL_DRAFTING_SINCE else 1
        threshold = max(threshold, 1 + widened * draft_tokens)
    if dcp > 1 and not _keeps_under_dcp(backend, version, interleave or 1):
        return 1
    return threshold


def _keeps_under_dcp(backend: str, version: str, interleave: int) -> bool:
    if release_order(version) < DCP_VARLEN.get(backend, NEVER):
        return False
    return backend != "FLASH_ATTN_MLA" or interleave == 1 or parse_version(version) < FA_MLA_INTERLEAVE_SINCE
