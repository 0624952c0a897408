"""vLLM's decode context parallelism (--decode-context-parallel-size / -dcp D): the D ranks of one DCP group, carved
out of the TP ranks (no extra GPUs), each keep every D-th token (or every D-th run of `interleave` tokens) of every
request, so one request's cache is spread over D GPUs. Paths under vllm/ of the release named; read in the wheels
0.10.1.1 (no flag), 0.10.2, 0.11.0, 0.11.1, 0.11.2, 0.12.0, 0.14.0, 0.18.0, 0.20.0, 0.20.1, 0.24.0-0.28.0, 0.32.0,
0.34.0.

The flag: engine/arg_utils.py 0.10.2:647 (absent from 0.10.1.1's), default 1 (config/parallel.py 0.10.2:173; a
pydantic Field ge=1 from 0.24: :339). --dcp-kv-cache-interleave-size from 0.11.1 (config/parallel.py 0.11.1:242,
default 1); --cp-kv-cache-interleave-size from 0.12 (arg_utils.py 0.12.0:763, the dcp spelling overrides it:
config/vllm.py 0.12.0:781-791). --prefill-context-parallel-size / -pcp from 0.12 (arg_utils.py 0.12.0:768): vllm_pcp.py.

What vLLM checks (each one line of kvplan's, exit 2, or vLLM's start refusal):
- tp % dcp: config/parallel.py 0.18.0:416-419 and 0.32.0:593-596 (ValueError "tp_size=T must be divisible by
  dcp_size=D."); up to 0.17 distributed/parallel_state.py 0.10.2:1120-1124 reshapes the TP ranks into rows of D,
  which fails likewise. kvplan: bad input on -dcp.
- GQA / MHA (not MLA) from 0.11.1 (config/model.py 0.11.1:1170-1190 asserts; ValueErrors from 0.27, 0.28.0:1386-1413,
  0.32.0:1565-1592): tp > total KV heads, D <= tp // KV heads, and the query heads a KV head divisible by D. So
  Llama-3.1-70B (8 KV heads) at tp 8 is refused at any D > 1; at tp 16, D = 2 passes.
- the attention impl must return the softmax LSE for decode (v1/worker/gpu_model_runner.py 0.10.2:3592-3602,
  0.11.0:4001-4011; v1/worker/cp_utils.py 0.14.0:30-35, 0.18.0:31-36): 0.10.2 only FLASH_ATTN_MLA
  (v1/attention/backends/mla/flashattn_mla.py 0.10.2:181), so every default backend (FlashMLA on Hopper, CUTLASS MLA
  on SM100, FlashAttention for GQA) is refused; from 0.11.0 FLASHMLA, FLASH_ATTN_MLA, CUTLASS_MLA and TRITON_MLA;
  from 0.11.1 FLASH_ATTN and FLASHINFER too; FLASHINFER_MLA from 0.25 (flashinfer_mla.py 0.25.0:125, absent from
  0.24.0). From 0.28 the selector drops a backend without DCP (v1/attention/backend.py 0.32.0:343-344 "DCP not
  supported") where 0.15-0.24 start FLASHINFER_MLA on SM10x and fail the assert.
- the block a multiple of the interleave, at least it (config/vllm.py 0.11.1:611-622, 0.12.0:781-800).
- layers other than full attention / MLA: "DCP not support sliding window." (v1/kv_cache_interface.py 0.10.2:171,
  0.32.0:888-891), "DCP not support hybrid attn now." (v1/core/kv_cache_coordinator.py 0.11.0:286, 0.24.0:548);
  kvplan does not model DCP for them, nor for sparse MLA's indexer or DeepSeek-V4's pools (bad input on -dcp).

The cache (the pages per rank are those of dcp 1; num_blocks = available // bytes per block unchanged):
- a request of L tokens needs cdiv(cdiv(L, D), block) blocks on each rank (FullAttentionSpec.max_memory_usage_bytes:
  v1/kv_cache_interface.py 0.10.2:86-95, 0.32.0:602-607), the same as cdiv(L, block x D): the scheduler's block is
  block x D tokens (v1/core/single_type_kv_cache_manager.py 0.10.2:38-40, 0.32.0:106-108), so concurrency =
  num_blocks / that, and resident requests are admitted at block x D (dcp_groups).
- "GPU KV cache size": up to 0.20.0 num_blocks // groups x block x D, after the line "Multiplying the GPU KV cache size
  by the dcp_world_size D." (v1/core/kv_cache_utils.py 0.10.2:857-861, 0.11.x) or "... by the cp_world_size D
  (pcp_world_size 1 * dcp_world_size D)." (0.12.0:1274-1283, 0.20.0:1704); from 0.20.1 int(concurrency x L), which
  carries D through the concurrency (0.32.0:2302-2335), no extra line.

Decode speed (plan/plan.py, plan/work.py dcp_exchange): a GPU reads its share of each request, cdiv(L, D) tokens,
attends over it with the D x heads / TP query heads its DCP group gathers, and each attention layer runs three
collectives over the D ranks (query all-gather, LSE all-gather, output reduce-scatter: the default "ag_rs" backend),
priced as the TP all-reduces are. How the run departs from that (dcp_comm, a work.DcpComm):
- --dcp-comm-backend ag_rs | a2a from 0.18.0 (config/parallel.py 0.18.0:309-315, arg_utils.py 0.18.0:834; absent
  from 0.17.0's), "ag_rs" by default; "a2a" with -dcp 1 a ValueError up to 0.28 ("dcp_comm_backend='a2a' requires
  decode_context_parallel_size > 1.", config/parallel.py 0.18.0:422-425, 0.28.0:541-544), accepted and unused from
  0.29 (None, the model's set_dcp_defaults choosing: 0.32.0:397-406, 610-620; only GLM-MoE-DSA and Mistral Large 4,
  sparse MLA kvplan refuses under DCP, pick a2a). a2a exchanges each rank's partial outputs and LSEs with one
  all-to-all after the query gather from 0.21 (packed: v1/attention/ops/dcp_alltoall.py 0.21.0, dcp.py 0.32.0:
  939-1010), two all-to-alls in 0.18-0.20 (dcp_alltoall.py 0.18.0 dcp_a2a_lse_reduce), for MLA
  (mla_attention.py 0.32.0:1110-1140, the direct symmetric-memory A2A where NVLS spans the group priced the same)
  and GQA (flash_attn.py 0.32.0:1162-1167, flashinfer.py 0.32.0:323-328, 1934-1942) alike.
- a GQA prefill chunk with nothing cached: FlashAttention skips the exchange from 0.26 (should_skip_dcp_context_
  attention, v1/worker/cp_utils.py 0.27.0:123, 0.32.0:117-127; flash_attn.py 0.26.0), runs it before (flash_attn.py
  0.18.0:852 gathers the query for every chunk); FlashInfer runs it on every chunk (BatchDCPPrefillWrapper.run,
  flashinfer.py 0.32.0:394-409, called for any prefill under DCP :2193-2219; 0.34.0:428, 520), and FlashInfer is the
  GQA default on SM100 (platforms/cuda.py 0.32.0:158-166, 0.34.0:157-161; 0.10.2-0.11.0 on capability 10.0 only,
  cuda.py 0.10.2:335-346), FlashAttention on Hopper (0.32.0:167-179).
- the interleave I: a rank holds at most cdiv(L, D x I) x I tokens of a request, within I - 1 of cdiv(L, D) (decode
  reads priced at cdiv(L, D)); MLA's prefill gather pads each rank's rows to it (mla_attention.py 0.32.0:2050-2060).
  It changes no capacity: blocks are allocated per block x D tokens whatever I (single_type_kv_cache_manager.py
  0.32.0:106-108, kv_cache_interface.py 0.32.0:602-607 and 0.34.0 take no interleave), and the context workspace is
  aligned to lcm(block, D x I) rows (align_mla_chunked_context_workspace_size, mla_attention.py 0.32.0:1989-2001),
  which 64K rows already are for D x I a power of two.
- --dcp-q-replicate / --no-dcp-q-replicate from 0.29.0 (config/parallel.py 0.29.0:372, 0.32.0:408-417, 0.34.0:450,
  `bool | None`, None; arg_utils.py 0.29.0:1120, 0.32.0:1189, 0.34.0:1236, argparse's BooleanOptionalAction for a
  bool field, :378-380; 0.28.0's argparse has no such flag, only the environment variable VLLM_DCP_Q_REPLICATE,
  envs.py 0.28.0:198, which kvplan does not read). None means the model's set_dcp_defaults (0.32.0:607-620): off,
  but for GLM-MoE-DSA (models/config.py 0.32.0:66-70, 0.34.0:177-181), sparse MLA kvplan refuses under DCP. vLLM
  refuses nothing at parse time: DeepseekV2MLAAttention (models/deepseek_v2.py 0.29.0:1058-1070, 0.32.0:1068-1080,
  0.34.0:1068-1080) turns it on only with -dcp above 1 and -pcp 1, and builds q_b_proj (q_proj without a q LoRA) as
  a DCPGroupColumnParallelLinear (layers/linear.py 0.32.0:632-670, 0.34.0:648-686), split over tp / D instead of tp:
  each rank computes its whole DCP group's D x heads / TP query heads (layers/mla.py 0.32.0:222-242), so decode
  skips the query all-gather (mla_attention.py 0.29.0:965-967, 0.32.0:1110-1112, 0.34.0:1393-1395) and multiplies
  by W_UK_T_dcp_qrep, the D ranks' W_UK_T all-gathered once at load, a new activation-dtype tensor (0.32.0:1328-1334,
  0.34.0:1537-1541). The LSE all-gather and output reduce-scatter (or a2a) stay. Other MLA models build a plain
  ColumnParallelLinear and ignore the flag, as does every GQA model and -dcp 1 (QREP_ARCHITECTURES). Its one start
  refusal: a head-padding decode backend (CUTLASS_MLA, q_pad_num_heads 128, v1/attention/backends/mla/cutlass_mla.py
  0.32.0:134) with other than 128 heads a rank: "DCP query replication is unsupported on head-padding MLA backends
  (q_pad_num_heads)." (mla_attention.py 0.29.0:1093-1098, 0.32.0:1233-1238, 0.34.0:1442-1447, as weights load).
  Priced (work.replicated_query, dcp_exchange): the query gather's call and bytes gone from each MLA decode layer;
  q_b_proj's (D - 1) / D more weights read and FLOPs a rank on every token, decode and prefill; W_UK_T_dcp_qrep's
  (D - 1) x heads / TP x qk_nope x kv_lora_rank more 16-bit bytes read and FLOPs in decode. The weights term gains
  the same q_b_proj and W_UK_T_dcp_qrep bytes (replicated_query_weights, below): DeepSeek-V3 tp 8 -dcp 8,
  61 x (7 x 4,718,592 x 1.00024 + 128 x 128 x 512 x 2) B = 2.83 GiB less KV cache a rank.
Not priced: the correction / merge kernels beside the collectives (within layer_us).
Not in the budget, by reading 0.32.0: the profile run builds no attention metadata, so attention returns before any
DCP collective or buffer (v1/worker/gpu_model_runner.py 0.32.0:5698 force_attention off in profile_run :6192;
flash_attn.py 0.32.0:1221-1223, mla_attention.py 0.32.0:919-938): the profile peak is dcp 1's. What DCP allocates
elsewhere: MLA's metadata builder keeps W + W / D rows of latent instead of W (mla_attention.py 0.32.0:2428-2459;
DeepSeek-V3 at 163,840: W = 65,536, 8,192 rows x 1,152 B = 9 MiB more at D 8), built after the profile run; on a
node where NVLS multicast spans the group, the direct symmetric-memory query-gather and context-KV-gather
workspaces (v1/attention/ops/dcp.py 0.32.0 get_direct_dcp_q_gather_workspace, get_direct_dcp_kv_gather_workspace:
tokens x D x heads / TP x 576 x 2 B, 1,024 x 128 x 1,152 = 144 MiB, and 2 x 65,536 x 1,152 = 144 MiB for
DeepSeek-V3), symmetric memory outside the torch allocator, where they land in vLLM's accounting unread; GQA's
context-output workspace (flash_attn.py 0.32.0:1528-1537, max_num_batched_tokens x D x heads / TP x head_dim x 2 B:
16 MiB for Qwen3-30B-A3B tp 8 -dcp 2) from the first real forward. Left out of the budget (under 0.2% of an
H200's 141 GiB each).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

from ..errors import FieldError
from ..model.choices import refuse_spaces
from ..model.kinds import MLALatent
from ..model.precision import DTYPE_BYTES
from .figures import Refusal
from .vllm_versions import parse_version, release_rule

DCP_SINCE = (0, 10, 2)  # engine/arg_utils.py 0.10.2:647
INTERLEAVE_SINCE = (0, 11, 1)  # config/parallel.py 0.11.1:242
GQA_CHECK_SINCE = (0, 11, 1)  # config/model.py 0.11.1:1170-1190
# the attention backends whose impl returns the softmax LSE for decode, by first release (newest first)
_MLA_011 = frozenset({"FLASHMLA", "FLASH_ATTN_MLA", "CUTLASS_MLA", "TRITON_MLA"})
LSE_BACKENDS = (((0, 25), _MLA_011 | {"FLASH_ATTN", "FLASHINFER", "FLASHINFER_MLA"}),
                ((0, 11, 1), _MLA_011 | {"FLASH_ATTN", "FLASHINFER"}),
                ((0, 11), _MLA_011),
                ((0, 10, 2), frozenset({"FLASH_ATTN_MLA"})))
IMPL_NAMES = {"FLASHMLA": "FlashMLAImpl", "FLASH_ATTN_MLA": "FlashAttnMLAImpl", "CUTLASS_MLA": "CutlassMLAImpl",
              "TRITON_MLA": "TritonMLAImpl", "FLASHINFER_MLA": "FlashInferMLAImpl", "FLASH_ATTN": "FlashAttentionImpl",
              "FLASHINFER": "FlashInferImpl"}
# where the LSE assert sits, by first release (newest first)
LSE_ASSERT_AT = (((0, 14), "v1/worker/cp_utils.py check_attention_cp_compatibility"),
                 ((0, 10, 2), "v1/worker/gpu_model_runner.py initialize_kv_cache"))
# the assert's words, by first release (newest first): reworded in 0.20.0 (v1/worker/cp_utils.py 0.19.1:31-36,
# 0.20.0:31-37, 0.32.0:51-57)
LSE_ASSERT_WORDS = (((0, 20), "Decode Context Parallelism (DCP) requires attention implementations to return the "
                              "softmax LSE during decode, but {impl} does not. Try a different backend by setting "
                              "--attention-backend or disable DCP."),
                    ((0, 10, 2), "DCP requires attention impls to return the softmax lse for decode, but the impl "
                                 "{impl} does not return the softmax lse for decode."))
DCP_KINDS = ("full", "mla")  # the cache kinds a DCP rank shards by token
COMM_BACKENDS = ("ag_rs", "a2a")  # config/parallel.py 0.18.0:39 DCPCommBackend
COMM_BACKEND_SINCE = (0, 18)  # config/parallel.py 0.18.0:309 (absent from 0.17.0)
A2A_NEEDS_DCP_UNTIL = (0, 29)  # the ValueError of a2a at -dcp 1: config/parallel.py 0.18.0:422-425 .. 0.28.0:541-544
A2A_CALLS = (((0, 21), 1), ((0, 18), 2))  # output and LSE packed in one all-to-all from 0.21 (dcp_alltoall.py 0.21.0)
FA_SKIPS_EMPTY_CONTEXT_SINCE = (0, 26)  # flash_attn.py 0.26.0 skip_dcp_context_attention
Q_REPLICATE_SINCE = (0, 29)  # config/parallel.py 0.29.0:372 dcp_q_replicate (absent from 0.28.0's)
# the architectures whose MLA layers are DeepseekV2MLAAttention, the one that reads dcp_q_replicate (deepseek_v2.py
# 0.32.0:1068-1080, 1289-1290; glm4_moe_lite.py :104, longcat_flash.py :269, mistral_large_3.py :12 build it;
# kimi_k25.py :380 its language model as DeepseekV2ForCausalLM); Dots3NoteForCausalLM (models/dots3_note) likewise
QREP_ARCHITECTURES = frozenset({"DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", "Glm4MoeLiteForCausalLM",
                                "LongcatFlashForCausalLM", "MistralLarge3ForCausalLM",
                                "KimiK25ForConditionalGeneration", "Dots3NoteForCausalLM"})
HEAD_PADDING = {"CUTLASS_MLA": 128}  # q_pad_num_heads: cutlass_mla.py 0.29.0:133, 0.32.0:134, 0.34.0:134
QREP_PADDING_WORDS = "DCP query replication is unsupported on head-padding MLA backends (q_pad_num_heads)."


def dcp_size(value) -> Optional[int]:
    """vLLM's --decode-context-parallel-size: a whole number 1 or more; None when not given or 1."""
    return context_ranks(value, "dcp", "decode-context-parallel ranks, 1 to 1024, dividing the TP degree (vLLM's "
                                       "--decode-context-parallel-size)")


def context_ranks(value, field: str, what: str) -> Optional[int]:
    """A context-parallel degree (-dcp, -pcp): a whole number 1 to 1024; None when not given or 1; bad input naming
    `field` and `what` it must be otherwise."""
    from ..errors import quote
    from ..units import whole_number

    if value is None:
        return None
    number = whole_number(value)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 1024:
        raise FieldError(field, f"must be a whole number of {what}, got {quote(value)}.")
    return number if number > 1 else None


def interleave_size(value) -> Optional[int]:
    """vLLM's --dcp-kv-cache-interleave-size / --cp-kv-cache-interleave-size: tokens a DCP rank takes in a row;
    None when not given or 1."""
    from ..errors import quote
    from ..units import whole_number

    if value is None:
        return None
    number = whole_number(value)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 2**20:
        raise FieldError("dcp_interleave", f"must be a whole number of tokens, 1 or more, dividing the block size "
                                           f"(vLLM's --cp-kv-cache-interleave-size), got {quote(value)}.")
    return number if number > 1 else None


def comm_backend(value) -> Optional[str]:
    """vLLM's --dcp-comm-backend: ag_rs or a2a, spelled as vLLM spells them (argparse choices from the
    DCPCommBackend Literal, arg_utils.py 0.18.0:833-835, literal_to_kwargs :174-187: "A2A" is an invalid choice);
    None when not given."""
    from ..errors import quote

    if value is None:
        return None
    name = str(value)  # as typed: argparse's choices take no " a2a " either
    if name not in COMM_BACKENDS:
        refuse_spaces("dcp_comm_backend", value, COMM_BACKENDS)
        case = ", in lower case" if name.lower() in COMM_BACKENDS else ""
        raise FieldError("dcp_comm_backend", f"must be one of ag_rs, a2a (vLLM's --dcp-comm-backend{case}), got "
                                             f"{quote(value)}.")
    return name


def q_replicate(value) -> Optional[bool]:
    """vLLM's --dcp-q-replicate / --no-dcp-q-replicate as a deployment file or the API gives it: true or false (None:
    not given, vLLM's None)."""
    from ..errors import quote

    if value is None or isinstance(value, bool):
        return value
    raise FieldError("dcp_q_replicate", f"must be true or false (vLLM's --dcp-q-replicate / --no-dcp-q-replicate), "
                                        f"got {quote(value)}.")


def check_flags(dcp: Optional[int], interleave: Optional[int], version: str, backend: Optional[str] = None,
                replicate: Optional[bool] = None) -> None:
    """The release has the flags (exit 2 naming the flag where not); interleave without DCP is accepted and
    ignored, as vLLM ignores it; --dcp-comm-backend a2a without DCP refused where vLLM refuses it (up to 0.28);
    --dcp-q-replicate either way only from 0.29 (0.28's argparse: unrecognized arguments)."""
    release = parse_version(version)
    if replicate is not None and release < Q_REPLICATE_SINCE:
        spelled = "--dcp-q-replicate" if replicate else "--no-dcp-q-replicate"
        raise FieldError("dcp_q_replicate", f"needs vLLM 0.29.0 or later (vllm=={version} has no such flag: its "
                                            f"argparse stops at \"unrecognized arguments: {spelled}\"); leave it "
                                            f"off or pick a later release.")
    if backend and release < COMM_BACKEND_SINCE:
        raise FieldError("dcp_comm_backend", f"needs vLLM 0.18.0 or later (vllm=={version} has no such flag); leave "
                                             f"it off or pick a later release.")
    if backend == "a2a" and not dcp and release < A2A_NEEDS_DCP_UNTIL:
        raise FieldError("dcp_comm_backend", f"a2a needs dcp above 1: vllm=={version} refuses it (\"dcp_comm_backend="
                                             f"'a2a' requires decode_context_parallel_size > 1.\"); give dcp or "
                                             f"leave it off.", names=("dcp",))
    if dcp and release < DCP_SINCE:
        raise FieldError("dcp", f"needs vLLM 0.10.2 or later (vllm=={version} has no such flag); leave it off or "
                                f"pick a later release.")
    if interleave and release < INTERLEAVE_SINCE:
        raise FieldError("dcp_interleave", f"needs vLLM 0.11.1 or later (vllm=={version} has no such flag); leave "
                                           f"it off or pick a later release.")


def check_tp(dcp: Optional[int], tps) -> None:
    """Bad input on -dcp: D not dividing a TP degree asked (vLLM's ValueError, config/parallel.py 0.32.0:593-596)."""
    for tp in tps if dcp else ():
        if tp % dcp:
            raise FieldError("dcp", f"must divide the TP degree: vLLM refuses tp_size={tp} with dcp_size={dcp} "
                                    f"(\"tp_size={tp} must be divisible by dcp_size={dcp}.\"); pick a divisor of "
                                    f"{tp}.")


def tp_refusal(dcp: Optional[int], tp: int) -> Optional[Refusal]:
    """The same as vLLM's start refusal, for a TP degree a remedy tries (check_tp refuses one asked)."""
    if not dcp or tp % dcp == 0:
        return None
    return Refusal(f"ValueError: tp_size={tp} must be divisible by dcp_size={dcp}. (config/parallel.py "
                   f"ParallelConfig)", None, configuration=True, field="dcp")


def check_layout(spec, dcp: Optional[int]) -> None:
    """Bad input on -dcp: a model whose cache kvplan does not shard by token (sliding / chunked / state / indexer /
    DeepSeek-V4 layers)."""
    if not dcp:
        return
    others = sorted({layer.kind for layer in spec.layers if layer is not None} - set(DCP_KINDS))
    if others:
        kinds = ", ".join(others)
        raise FieldError("dcp", f"is modelled for full-attention and MLA caches only; this model also has "
                                f"{kinds} layers (vLLM refuses sliding-window and hybrid caches under DCP).")


def dcp_refusal(spec, dcp: Optional[int], tp: int, backend: str, version: str,
                replicate: Optional[bool] = None) -> Optional[Refusal]:
    """vLLM's start refusal of DCP for this model: GQA / MHA head counts (config/model.py), then a backend whose impl
    returns no LSE for decode (LSE_BACKENDS), then --dcp-q-replicate on a head-padding backend; None where it
    starts."""
    if not dcp:
        return None
    if tp % dcp:
        return tp_refusal(dcp, tp)
    heads = heads_refusal(spec, dcp, tp, version)
    if heads is not None:
        return heads
    if backend in release_rule(LSE_BACKENDS, version, frozenset()):
        return padding_refusal(spec, tp, backend) if q_replicated(spec, dcp, replicate, version) else None
    impl = IMPL_NAMES.get(backend, backend)
    return Refusal(f"No decode context parallelism on {backend}, the attention backend vLLM {version} picks here: "
                   f"its workers stop as they set up the KV cache ({release_rule(LSE_ASSERT_AT, version)}): "
                   f"AssertionError: {release_rule(LSE_ASSERT_WORDS, version).format(impl=impl)}", None,
                   configuration=True, field="dcp")


def heads_refusal(spec, dcp: int, tp: int, version: str) -> Optional[Refusal]:
    """vLLM's refusal of -dcp `dcp` at `tp` for a GQA / MHA model's KV heads, as it reads the config (from 0.11.1);
    None for MLA, earlier releases and head counts it takes."""
    release = parse_version(version)
    if release < GQA_CHECK_SINCE or any(layer.kind == "mla" for layer in spec.layers if layer is not None):
        return None
    kv = next(layer.kv_heads for layer in spec.layers if layer is not None)
    words = _gqa_words(tp, kv, dcp, spec.num_attention_heads // kv, release >= (0, 27))
    if words is None:
        return None
    return Refusal(f"Decode context parallelism refused for this GQA/MHA model: vLLM {version} checks the KV heads "
                   f"as it reads the config (config/model.py ModelConfig.verify_with_parallel_config): {words}", None,
                   configuration=True, field="dcp")


def _gqa_words(tp: int, kv: int, dcp: int, q_per_kv: int, value_error: bool) -> Optional[str]:
    """config/model.py's three checks in order (0.11.1 asserts, 0.27 on ValueErrors); None when all pass."""
    if tp <= kv:
        return (f"ValueError: Decode context parallelism for GQA/MQA requires `--tensor-parallel-size` ({tp}) to be "
                f"greater than the model's total number of KV heads ({kv}). Increase `--tensor-parallel-size` or set "
                f"`--decode-context-parallel-size 1`." if value_error else
                f"AssertionError: tensor parallel size {tp} must be greater than total num kv heads {kv} when enable "
                f"decode context parallel for GQA/MQA")
    if dcp > tp // kv:
        return (f"ValueError: `--decode-context-parallel-size` ({dcp}) exceeds the maximum supported value "
                f"({tp // kv}) for `--tensor-parallel-size` ({tp}) and {kv} model KV heads." if value_error else
                f"AssertionError: decode context parallel size must less than or equal to (tensor parallel size {tp} "
                f"// total num kv heads {kv}) = {tp // kv}, but got {dcp}")
    if q_per_kv % dcp:
        return (f"ValueError: The model's number of query heads per KV head ({q_per_kv}) must be divisible by "
                f"`--decode-context-parallel-size` ({dcp}) for GQA/MQA." if value_error else
                f"AssertionError: Total number of q per kv attn heads ({q_per_kv}) must be divisible by dcp world "
                f"size when enable decode context parallel for GQA ({dcp}).")
    return None


def interleave_refusal(dcp: Optional[int], interleave: Optional[int], block: int, version: str) -> Optional[Refusal]:
    """config/vllm.py 0.11.1:611-622 (0.12.0:781-800 the cp spelling): the block a multiple of the interleave."""
    if not dcp or not interleave or (interleave <= block and block % interleave == 0):
        return None
    name = "dcp_kv_cache_interleave_size" if parse_version(version) < (0, 12) else "cp_kv_cache_interleave_size"
    return Refusal(f"AssertionError: Block_size({block}) should be greater than or equal to and divisible by {name} "
                   f"({interleave}).", None, configuration=True, field="dcp_interleave")


def remedy_engines(model, spec, tp: int):
    """(D, the engine at -dcp D) for each D the remedies may try at `tp` (plan.fitting_remedies): above the D asked,
    dividing tp, on a vLLM release with the flag, for a model whose caches are all full attention / MLA (check_layout);
    lazily, smallest first, but none vLLM's KV-head check refuses (heads_refusal). Its other refusals at D (the
    backend's LSE, the interleave) are the engine's: a refused plan holds no request, so that D is not named."""
    flags = getattr(model, "flags", None)
    if flags is None or flags.pcp or parse_version(model.version) < DCP_SINCE:  # -pcp plans -dcp 1 only
        return
    if {layer.kind for layer in spec.layers if layer is not None} - set(DCP_KINDS):
        return
    asked = flags.dcp or 1
    for d in range(asked + 1, tp + 1):
        if tp % d == 0 and heads_refusal(spec, d, tp, model.version) is None:  # the heads' refusal needs no plan
            yield d, type(model)(model.version, replace(flags, dcp=d))


def dcp_comm(flags, version: str, backend: str, spec=None):
    """The work.DcpComm of a -dcp run on attention backend `backend` (the module docstring's departures from
    0.32's default) for `spec`; None without -dcp."""
    from ..plan.work import DcpComm

    if not getattr(flags, "dcp", None):
        return None
    release = parse_version(version)
    a2a = getattr(flags, "dcp_comm_backend", None) == "a2a"
    empty_context = backend == "FLASHINFER" or release < FA_SKIPS_EMPTY_CONTEXT_SINCE
    replicated = spec is not None and q_replicated(spec, flags.dcp, getattr(flags, "dcp_q_replicate", None), version,
                                                   getattr(flags, "pcp", None))
    return DcpComm(release_rule(A2A_CALLS, version, 0) if a2a else 0, empty_context, flags.dcp_interleave or 1,
                   replicated)


def q_replicated(spec, dcp: Optional[int], replicate: Optional[bool], version: str, pcp: Optional[int] = None) -> bool:
    """Whether vLLM builds this model's query projection replicated over the DCP group (the module docstring's
    --dcp-q-replicate): asked (None: off, set_dcp_defaults), -dcp above 1, -pcp 1, an architecture whose MLA layers
    read it, a release with the flag."""
    return bool(replicate and dcp and dcp > 1 and not (pcp and pcp > 1) and spec.mla_q_elements
                and spec.architecture in QREP_ARCHITECTURES and parse_version(version) >= Q_REPLICATE_SINCE)


def padding_refusal(spec, tp: int, backend: str) -> Optional[Refusal]:
    """The assert of MLAAttention.process_weights_after_loading: a backend that pads the query to q_pad_num_heads
    heads takes no replicated query unless a rank's heads are that many already."""
    padded = HEAD_PADDING.get(backend)
    if padded is None or spec.num_attention_heads // tp == padded:
        return None
    return Refusal(f"No --dcp-q-replicate on {backend}, the attention backend vLLM picks here: its workers stop as "
                   f"the weights load (MLAAttention.process_weights_after_loading): AssertionError: "
                   f"{QREP_PADDING_WORDS}", None, configuration=True, field="dcp_q_replicate")


def dcp_groups(groups, dcp: Optional[int]):
    """The groups as the scheduler sees them: a full / MLA group's block spans block x D tokens of a request
    (single_type_kv_cache_manager.py), its pages unchanged."""
    if not dcp:
        return groups
    return type(groups)(replace(g, spec=replace(g.spec, block_size=g.spec.block_size * dcp))
                        if g.spec.kind in DCP_KINDS else g for g in groups)


def multiply_line(dcp: Optional[int], version: str, rules) -> Optional[str]:
    """The line logged before "GPU KV cache size" up to 0.20.0 (kv_cache_utils.py 0.10.2:857-861, 0.12.0:1274-1283)."""
    if not dcp or rules.tokens_rule != "blocks_per_group":
        return None
    if parse_version(version) < (0, 12):
        return f"Multiplying the GPU KV cache size by the dcp_world_size {dcp}."
    return f"Multiplying the GPU KV cache size by the cp_world_size {dcp} (pcp_world_size 1 * dcp_world_size {dcp})."


def replicated_query_weights(spec, tp: int, stage, flags, version: str) -> int:
    """Bytes --dcp-q-replicate adds to a rank's weights as they load (engines/vllm_dcp.py): each MLA layer's q_b_proj
    split over tp / D, (D - 1) x its tp share more at the attention weights' stored bytes, and W_UK_T_dcp_qrep, the
    D ranks' W_UK_T all-gathered into a new activation-dtype tensor of D x heads / TP x qk_nope x kv_lora_rank
    (mla_attention.py 0.32.0:1328-1334, in process_weights_after_loading, inside load_model's measurement). The
    layers of this stage (its share under PP, as mla_dequantized_copies counts them); drafter layers left out."""
    dcp = getattr(flags, "dcp", None)
    if not q_replicated(spec, dcp, getattr(flags, "dcp_q_replicate", None), version, getattr(flags, "pcp", None)):
        return 0
    attention = next((g for g in spec.params if g.name == "attention"), None)
    if attention is None:
        return 0
    stored = (attention.linear or attention).bytes_per_param
    drafted = len(spec.draft.layers) if spec.draft is not None else 0
    latents = [layer for layer in spec.layers[:len(spec.layers) - drafted] if isinstance(layer, MLALatent)]
    uk = sum(layer.qk_nope_head_dim * layer.kv_lora_rank for layer in latents) * spec.num_attention_heads // tp
    more = len(latents) * spec.mla_q_elements * (dcp - 1) / tp * stored + dcp * uk * DTYPE_BYTES[spec.dtype]
    if stage is not None and stage.stages > 1:
        more = more * stage.layers / spec.num_hidden_layers
    return int(more)
