"""What one forward pass costs one GPU of a TP group, before any engine: the bytes it must read and the FLOPs
it must do. Weights are priced per parameter group at the group's stored precision (spec.params); the KV cache
per layer kind (each kind says which tokens a step reads and how many bytes they are).

Bytes a decode step reads, per group:
- embed: not streamed (decode gathers one row per sequence); vision (a multimodal tower): not run in decode;
- lm_head: read whole (the embedding when the head is tied: the group is then empty), split by TP;
- attention, linear (linear attention / Mamba), dense MLPs, shared experts: read whole, split by TP;
- experts (routed): the expected touched share of their PARAMETERS, 1 - (1 - k/E)^tokens (each token picks k
  of E experts), times their stored bytes, split by TP;
- router, norms: read whole on every GPU (vLLM's MoE gate is a ReplicatedLinear).
Under --data-parallel-size D / --enable-expert-parallel (`moe`: sharding.MoeLayout) the MoE layers run on all D
ranks' tokens (D x batch, all-gathered; under -pcp P the P ranks' too, MoeLayout.gathered); a GPU reads the experts
of its own that those tokens touch (rank_expert_share): without EP its 1/(T x D) slice of every touched expert; with
EP its whole local experts that are touched, at the busiest rank's expectation (each layer's step waits for its
slowest rank): uniform routing, the count of a rank's L experts touched ~ mean L p, sd sqrt(L p (1 - p)), the
busiest of ep ranks taken as mean + sd sqrt(2 ln ep) (the Gaussian bound on a maximum), at most L.
FLOPs: 2 x parameters x rows / TP per weight matrix, where a matrix multiplies at least TILE_ROWS rows (a
tensor-core MMA is 16 rows tall: a decode batch of 3 costs what 16 rows cost) and a routed expert multiplies
only the tokens routed to it; plus attention over the tokens each layer reads."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

from ..model.precision import DTYPE_BYTES, Precision
from ..model.spec import ModelSpec
from .capacity import layer_kinds, read_bytes, state_bytes

NOT_STREAMED = ("embed", "vision")
REPLICATED = ("router", "norms")
NO_MATMUL = ("norms",)
TILE_ROWS = 16  # rows of the smallest tensor-core MMA (mma.m16n8k16): fewer rows cost as much as 16


def touched_share(spec: ModelSpec, tokens: int) -> float:
    """Expected share of one MoE layer's routed experts that `tokens` tokens touch, each token picking
    experts_per_token of `experts` (uniform routing)."""
    if not spec.experts or not spec.experts_per_token:
        return 1.0
    return 1 - (1 - spec.experts_per_token / spec.experts) ** tokens


def rank_expert_share(spec: ModelSpec, moe, tokens: int) -> float:
    """Share of all routed experts' bytes one GPU reads for `tokens` tokens through the MoE layers (the module
    docstring: the busiest rank under EP)."""
    p = touched_share(spec, tokens)
    if moe.ep <= 1:
        return p / moe.moe_tp
    local = moe.local_experts
    busiest = local * p + math.sqrt(local * p * (1 - p) * 2 * math.log(moe.ep))
    return min(local, busiest) / spec.experts


def padded(rows: float) -> float:
    return math.ceil(rows / TILE_ROWS - 1e-6) * TILE_ROWS if rows > 0 else 0.0  # 16.0000001 tokens: one tile


def _group_params(spec: ModelSpec, group) -> int:
    """A tied LM head has no group of its own: it reads the embedding matrix (not Gemma 4's per-layer table)."""
    if group.name == "lm_head" and group.parameters == 0:
        return spec.param_count("embed") - spec.per_layer_table
    return group.parameters


def kv_read_bytes(spec: ModelSpec, tp: int, precision: Precision, context: int, kinds: Optional[tuple] = None) -> int:
    """capacity.read_bytes over the model's distinct layer kinds (equal by test; asked once per prefill chunk)."""
    return kv_reader(spec, tp, precision, kinds)(context)


def kv_reader(spec: ModelSpec, tp: int, precision: Precision, kinds: Optional[tuple] = None):
    """kv_read_bytes as a function of the context alone: the state's bytes and each kind's method looked up once (a
    prefill asks once per chunk, up to 32,768 times); the same sum in the same order, so the same number."""
    kinds = kinds or layer_kinds(spec)
    reads = tuple((n, layer.read_bytes) for layer, n in kinds)
    state = 2 * state_bytes(spec, tp, kinds)

    def read(context: int) -> int:
        return sum(n * read_bytes(context, tp, precision) for n, read_bytes in reads) + state
    return read


def _laid_out(moe) -> bool:
    return moe is not None and not moe.default


def weight_bytes_read(spec: ModelSpec, tp: int, tokens: int, moe=None, copies: int = 1) -> dict:
    """Bytes of each parameter group one GPU reads in one forward pass over `tokens` tokens (of this DP rank). `copies`:
    of the ranks whose rows the MoE layers gather, how many carry the same tokens (P where every PCP rank runs the
    same decode rows, vLLM 0.27-0.31: engines/vllm_pcp.py), so the experts read are those the distinct tokens touch."""
    out: dict = {}
    for group in spec.params:
        if group.name in NOT_STREAMED:
            continue
        share = touched_share(spec, tokens) if group.name == "experts" else 1.0
        split = 1 if group.name in REPLICATED else tp
        if group.name == "experts" and _laid_out(moe):
            share, split = rank_expert_share(spec, moe, tokens * moe.gathered // copies), 1
        out[group.name] = out.get(group.name, 0.0) + _group_params(spec, group) * group.bytes_per_param * share / split
    return out


def linear_flops(spec: ModelSpec, tp: int, tokens: int, head_tokens: int, moe=None, copies: int = 1) -> dict:
    """FLOPs of the weight matmuls on one GPU, per stored precision (it picks the tensor-core peak): every
    matrix over `tokens` rows padded to the MMA tile, routed experts each over the rows routed to it, the LM
    head over `head_tokens` rows (decode: every sequence; prefill: the last token of the chunk). `copies`
    (weight_bytes_read): the gathered rows are `copies` copies of their tokens, each copy multiplied, the experts
    touched those of the distinct tokens."""
    out: dict = {}
    for group in spec.params:
        if group.name in NOT_STREAMED + NO_MATMUL:
            continue
        params = _group_params(spec, group)
        split = 1 if group.name in REPLICATED else tp
        if group.name == "experts" and spec.experts and spec.experts_per_token:
            routed = tokens * moe.gathered if _laid_out(moe) else tokens
            touched = touched_share(spec, routed // copies)
            per_expert = routed * spec.experts_per_token / (spec.experts * touched)
            if _laid_out(moe):  # this GPU's touched experts (or slices of them), each over its routed rows
                touched, split = rank_expert_share(spec, moe, routed // copies), 1
            rows = touched * padded(per_expert)  # in units of "all experts' parameters"
        else:
            rows = padded(head_tokens if group.name == "lm_head" else tokens)
        out[group.stored] = out.get(group.stored, 0.0) + 2 * params * rows / split
    return out


def _attended(start: int, count: int, window) -> float:
    """Keys the queries at positions start .. start+count-1 attend in total (causal, capped by the window)."""
    end = start + count
    full = end * (end + 1) / 2 - start * (start + 1) / 2
    if window is None or window >= end:
        return full
    capped_from = max(start, window)  # queries at positions >= window see exactly `window` keys
    return _attended(start, capped_from - start, None) + (end - capped_from) * window


def attention_flops(spec: ModelSpec, tp: int, start: int, count: int, decode: bool,
                    kinds: Optional[tuple] = None) -> float:
    """Attention FLOPs on one GPU for `count` new tokens of one sequence that already holds `start`: per layer,
    q.K over the keys each query sees and p.V back, query heads split by TP. MLA decode runs absorbed (each head
    scores against the latent, kv_lora_rank + rope dims, and sums its kv_lora_rank part); MLA prefill runs with
    keys and values up-projected, priced at DeepSeek's head shape (qk_nope = v = kv_lora_rank / 4, plus the rope
    dims; the latent kind does not carry them). Sparse MLA attends at most index_topk keys a query; its indexer
    scores every key with all its heads on every rank (index_head_dim a head, no value sum). A linear-attention
    layer updates and reads its state: about 4 FLOPs per state element per token."""
    return attention_counter(spec, tp, decode, kinds)(start, count)


def attention_counter(spec: ModelSpec, tp: int, decode: bool, kinds: Optional[tuple] = None, absorbed: bool = False):
    """attention_flops as a function of (start, count) alone: each layer kind's factor worked out once (a prefill asks
    once per chunk, up to 32,768 times). Each term is the same product in the same order (n x 2 x scoring x per_key,
    then x keys; n x 4 x state elements, then x count) and the terms are summed in the same order from 0.0, so every
    float is attention_flops' own to the last bit. `absorbed`: a prefill chunk that MLA runs on its decode path
    (MLA_DECODE_QUERY_LEN): MLA layers score against the latent as decode does, over the causal keys of a prefill."""
    heads = spec.num_attention_heads / tp
    terms = []
    for layer, n in kinds or layer_kinds(spec):
        if hasattr(layer, "attention_flops"):  # kinds that price their own attention (DeepSeek-V4's caches)
            terms.append(lambda start, count, n=n, own=layer.attention_flops: n * own(heads, start, count, decode))
            continue
        if layer.kind == "linear":
            per_token = n * 4 * layer.state_elements_per_sequence(tp)
            terms.append(lambda start, count, factor=per_token: factor * count)
            continue
        scoring = heads
        if layer.kind == "indexer":
            per_key, scoring = layer.head_dim, layer.heads
        elif layer.kind == "mla":
            per_key = (layer.latent_dim + layer.kv_lora_rank) if decode or absorbed else \
                (layer.kv_lora_rank // 4 + layer.qk_rope_head_dim + layer.kv_lora_rank // 4)
        else:
            per_key = layer.head_dim + layer.value_dim
        factor = n * 2 * scoring * per_key
        if decode:
            terms.append(lambda start, count, factor=factor, read=layer.tokens_read:
                         factor * (count * read(start + count)))
        else:
            window = getattr(layer, "index_topk", 0) or layer.window
            terms.append(lambda start, count, factor=factor, window=window:
                         factor * _attended(start, count, window))

    def total(start: int, count: int) -> float:
        flops = 0.0
        for term in terms:
            flops += term(start, count)
        return flops
    return total


@dataclass(frozen=True)
class PassWork:
    """One forward pass on one GPU of a TP group: a decode step of `batch` sequences of `context` tokens, or one
    prefill chunk (batch 1)."""

    tokens: int  # rows through the weights
    tp: int
    dtype: str  # the activations' (and attention's) precision
    layers: int
    hidden_size: int
    weight_bytes: dict  # group -> bytes read
    kv_bytes: float  # paged KV read + linear state read and written
    linear_flops: dict  # stored precision -> FLOPs
    attention_flops: float
    dp: int = 1  # data-parallel ranks whose tokens the MoE layers all-gather (sharding.MoeLayout.dp)
    dcp: Optional["DcpExchange"] = None  # -dcp D > 1: the collectives of its attention layers (dcp_exchange)
    pcp: Optional["DcpExchange"] = None  # -pcp P > 1: the KV, MoE and output collectives over P ranks (pcp_exchange)
    tile_flops: Optional[dict] = None  # linear_flops of a one-token pass (one MMA tile of rows): speed.engine_ms' floor

    @property
    def bytes(self) -> float:
        return sum(self.weight_bytes.values()) + self.kv_bytes


@dataclass(frozen=True)
class DcpExchange:
    """What one forward pass sends over a context-parallel group of `ranks` GPUs: `calls` collectives in all, and the
    bytes one GPU sends in them (dcp_exchange: a decode step's attention under -dcp D, ag_rs backend; pcp_exchange:
    a pass under -pcp P)."""

    ranks: int
    calls: int
    bytes_sent: float


@dataclass(frozen=True)
class DcpComm:
    """How a -dcp group runs its attention exchange, where it departs from vLLM 0.32's default (engines/vllm_dcp.py
    dcp_comm has the rules): `a2a_calls` 0 for the "ag_rs" backend, else the all-to-all calls that replace its LSE
    all-gather and output reduce-scatter (1 where output and LSE travel packed, 2 where apart); `empty_context` True
    where a GQA prefill chunk with nothing cached still runs the exchange; `interleave` the tokens a rank takes in a
    row, to which MLA's prefill gather pads each rank's rows; `q_replicated` True where each rank computes its DCP
    group's whole query (--dcp-q-replicate: replicated_query)."""

    a2a_calls: int = 0
    empty_context: bool = False
    interleave: int = 1
    q_replicated: bool = False


# the MLA prefill's context workspace holds at most this many context rows (min(max(8 x max len, ...), 64K), rounded
# to the block: model_executor/layers/attention/mla_attention.py 0.32.0:2293-2318); a longer context takes more chunks
MLA_CONTEXT_ROWS = 64 * 1024
# MLA attention runs a request of at most this many new tokens as a decode, a 1-token prompt included (the batch split
# at reorder_batch_threshold, 1 in the base builder: mla_attention.py 0.32.0:2265, 2571-2578; split_decodes_and_prefills
# counts short extends as decodes, v1/attention/backends/utils.py 0.32.0:838-843). The default of the `decode_tokens`
# arguments below; the engine's backend may raise it (engines/vllm_mla_decode.py: 512 for Hopper's FLASH_ATTN_MLA)
MLA_DECODE_QUERY_LEN = 1


def dcp_exchange(spec: ModelSpec, tp: int, precision: Precision, batch: int, dcp: int,
                 cached: Optional[int] = None, comm: Optional[DcpComm] = None,
                 decode_tokens: int = MLA_DECODE_QUERY_LEN) -> DcpExchange:
    """Each attention layer's decode under -dcp D, as vLLM 0.32.0 and 0.34.0 run it by default
    (dcp_comm_backend "ag_rs": config/parallel.py 0.32.0:397-406 and set_dcp_defaults :610-620, which only GLM-MoE-DSA
    (models/config.py 0.32.0:68) and Mistral Large 4 (0.34.0:121-134) turn to "a2a", sparse MLA that kvplan does not
    plan under DCP), three collectives over the D ranks:
    1. the query all-gather over heads: a rank's H = heads / TP query heads become the D x H of its DCP group
       (MLA: model_executor/layers/attention/mla_attention.py 0.32.0:1099-1112, MLADCPManager._gather_query,
       v1/attention/ops/dcp.py 0.32.0; (B, H, kv_lora_rank + rope) in fp8 under an fp8 cache, mla_attention.py
       0.32.0:690-697; GQA: v1/attention/backends/flash_attn.py 0.32.0:1511, flashinfer.py 0.32.0:2426,
       (B, H, head_dim) in the layer's query dtype);
    2. the all-gather of the partial softmax LSEs, float32 (B, D x H) (dcp.py 0.32.0 _cp_lse_common);
    3. the reduce-scatter of the LSE-corrected partial outputs back to H heads a rank, (B, D x H, kv_lora_rank) for
       MLA, (B, D x H, head_dim) for GQA, in the model dtype (dcp.py cp_lse_ag_out_rs; flash_attn.py 0.32.0:1167-1175).
    A ring all-gather or reduce-scatter sends (D - 1) / D of the gathered (scattered) tensor, as speed.basis prices
    the MoE's under DP. The query gather may run as a direct symmetric-memory kernel (VLLM_USE_DIRECT_DCP_Q_GATHER,
    on by default where NVLS multicast spans the group: v1/attention/ops/cp_common.py 0.32.0 direct_cp_enabled):
    priced as an all-gather all the same.

    With `cached` (an int) the pass is a prefill chunk of `batch` new tokens after `cached` tokens in the cache; a
    rank reads its 1/D of those (get_dcp_local_seq_lens) and the new tokens attend each other unsharded, as at -dcp 1:
    - MLA (forward_mha, mla_attention.py 0.32.0:3182-3264, _context_parallel_compute_prefill_context :3037-3180):
      per layer and per workspace chunk of MLA_CONTEXT_ROWS context rows, one all-gather of the ranks' latent rows,
      (rows / D, kv_lora_rank + rope) in the model dtype (the workspace's, bf16 under fp8_ds_mla: :2427-2443), at
      :3119 (MLADCPManager.kv_gather: all_gather_into_tensor or its direct symmetric-memory kernel,
      v1/attention/ops/dcp.py 0.32.0:1610-1650); each rank then attends the whole context with its own heads / TP
      heads: no LSE exchange;
    - GQA (FlashAttentionImpl._forward_with_dcp, flash_attn.py 0.32.0:1463-1637; FlashInfer's BatchDCPPrefillWrapper,
      flashinfer.py 0.32.0:386-428): decode's three collectives over the chunk's tokens, skipped where no request
      has cached context (v1/worker/cp_utils.py 0.32.0:117-127; FlashInfer runs them all the same, not modelled);
    - MLA, a chunk of at most `decode_tokens` tokens (reorder_batch_threshold: 1, a 1-token prompt, by default;
      512 on Hopper's FLASH_ATTN_MLA, engines/vllm_mla_decode.py): decode's three collectives, as a decode step.

    `comm` (DcpComm; None: the above) where the run departs from it:
    - --dcp-comm-backend a2a: steps 2 and 3 give way to all-to-alls in which a rank sends each other rank the partial
      outputs and LSEs of that rank's H heads, (D - 1) / D of its (B, D x H, value dim) outputs, as the reduce-scatter
      sends, and of its (B, D x H) float32 LSEs, 1 / D of the LSE all-gather's; one call packing both from 0.21
      (v1/attention/ops/dcp.py 0.32.0:939-1010 dcp_a2a_lse_reduce), two before (dcp_alltoall.py 0.18.0
      dcp_a2a_lse_reduce); the query gather stays (mla_attention.py 0.32.0:1110-1112, flash_attn.py 0.32.0:1511);
    - a GQA chunk with nothing cached runs the exchange all the same (`empty_context`);
    - MLA's prefill gather pads each rank's rows to the interleave I: cdiv(cached, D x I) x I rows a rank
      (mla_attention.py 0.32.0:2050-2060 padded_rows, the chunks aligned to D x I);
    - --dcp-q-replicate (`q_replicated`): an MLA layer's decode skips step 1, each rank holding its group's D x H
      query heads already (mla_attention.py 0.32.0:1110-1112; what that costs: replicated_query)."""
    heads = spec.num_attention_heads / tp
    out_bytes = DTYPE_BYTES.get(spec.dtype, 2)
    query_bytes = 1 if precision.bits == 8 else out_bytes  # the decode kernels take an fp8 query under an fp8 cache
    comm = comm or DcpComm()
    share = (dcp - 1) / dcp
    rank_rows = comm.interleave * -(-cached // (dcp * comm.interleave)) if cached else 0  # a rank's cached rows
    lse_copies = 1 if comm.a2a_calls else dcp  # the all-to-all sends a rank's LSEs once, the all-gather D times
    sent, calls = 0.0, 0
    for layer, n in layer_kinds(spec):
        # a chunk of `decode_tokens` tokens or fewer runs MLA's decode path: decode's three collectives
        if cached is not None and layer.kind == "mla" and batch > decode_tokens:
            # prefill: the latent context gathered, workspace by workspace
            if cached:
                calls += n * -(-cached // MLA_CONTEXT_ROWS)
                sent += n * (dcp - 1) * rank_rows * layer.latent_dim * out_bytes
            continue
        if cached == 0 and layer.kind != "mla" and not comm.empty_context:  # GQA's first chunk: no collective
            continue
        query, value = (layer.latent_dim, layer.kv_lora_rank) if layer.kind == "mla" else \
            (layer.head_dim, layer.value_dim)
        gather = 0 if comm.q_replicated and layer.kind == "mla" else 1  # the query all-gather's call
        # per token: the queries gathered, the LSEs, the partial outputs
        gathered = dcp * heads * (gather * query * query_bytes + lse_copies * 4 + value * out_bytes)
        sent += n * share * gathered * batch
        calls += n * (gather + (comm.a2a_calls or 2))
    return DcpExchange(dcp, calls, sent)


def pcp_exchange(spec: ModelSpec, rows: int, pcp: int, dp: int = 1, latent: bool = True) -> DcpExchange:
    """What one forward pass of `rows` rows a rank sends over its -pcp P group, as vLLM 0.27.0-0.34.0 run it (Model
    Runner V2, -dcp 1), each collective an all-gather or reduce-scatter of which a ring sends (P - 1) / P:
    1. every attention layer all-gathers its ranks' new latent KV, kv_c_normed (kv_lora_rank) and k_pe (rope dims) in
       the model dtype, two calls, so that every rank writes the whole cache (v1/attention/ops/pcp.py 0.32.0:35-42
       _gather_prefill_cache_inputs, called from MLAAttention.update_kv_cache, mla_attention.py 0.32.0:777-789);
    2. every MoE layer all-gathers the hidden states and the router logits (model dtype: DeepSeek's gate keeps it
       unless moe_router_dtype is float32, models/deepseek_v2.py 0.32.0:135-145) of the P ranks and reduce-scatters
       the experts' output back (fused_moe/runner/moe_runner.py 0.32.0:824-828, 853-860; with EP the default
       allgather_reducescatter backend does the same over the PCP group, distributed/device_communicators/all2all.py
       0.32.0:76-86); under DP these carry the D ranks' tokens DP's dispatch gathered first (`dp`);
    3. once a pass the model runner all-gathers the last hidden states to sample the whole batch on every rank
       (PCPManager.restore_hidden_states, v1/worker/gpu/pcp_manager.py 0.32.0:773-777).
    Where a kind has no latent (kvplan plans -pcp for all-MLA models only) its KV gather is the K and V heads'.
    `latent` False: a 0.27-0.31 decode step, whose rows every rank runs and writes to its own cache, gathering no KV
    (v1/attention/ops/pcp.py 0.29.0:16-22: "Keep replicated decode writes local"; engines/vllm_pcp.py)."""
    act = DTYPE_BYTES.get(spec.dtype, 2)
    kv = sum(n * (layer.latent_dim if layer.kind == "mla" else 2 * layer.head_dim)
             for layer, n in layer_kinds(spec)) if latent else 0
    moe_layers = spec.moe_layers if spec.experts else 0
    per_row = (kv * act + moe_layers * dp * (2 * spec.hidden_size + spec.experts) * act + spec.hidden_size * act)
    attention_layers = sum(n for _, n in layer_kinds(spec)) if latent else 0
    return DcpExchange(pcp, 2 * attention_layers + 3 * moe_layers + 1, (pcp - 1) * rows * per_row)


def replicated_query(spec: ModelSpec, tp: int, dcp: int, rows: int, decode: bool) -> tuple:
    """(bytes, {stored precision: FLOPs}) one rank adds to a pass of `rows` rows under --dcp-q-replicate
    (engines/vllm_dcp.py): every MLA layer's q_b_proj split over tp / D, not tp, so (D - 1) x its tp share more read
    and multiplied (layers/linear.py 0.32.0:632-670 DCPGroupColumnParallelLinear, prefill included: layers/mla.py
    0.32.0:222-242); in decode the absorbed key multiply by W_UK_T_dcp_qrep, D x heads / TP heads of qk_nope x
    kv_lora_rank in the activation dtype, where W_UK_T has heads / TP (mla_attention.py 0.32.0:1071, 1328-1334)."""
    attention = next((g for g in spec.params if g.name == "attention"), None)
    if attention is None:
        return 0.0, {}
    stored = attention.linear or attention
    act = DTYPE_BYTES.get(spec.dtype, 2)
    latents = [(layer, n) for layer, n in layer_kinds(spec) if layer.kind == "mla"]
    q_more = sum(n for _, n in latents) * spec.mla_q_elements * (dcp - 1) / tp  # q_b_proj elements more a rank
    uk_more = sum(n * layer.qk_nope_head_dim * layer.kv_lora_rank for layer, n in latents) \
        * spec.num_attention_heads * (dcp - 1) / tp if decode else 0  # W_UK_T_dcp_qrep elements more
    flops = {stored.stored: 2 * q_more * padded(rows)}
    if uk_more:
        flops[spec.dtype] = flops.get(spec.dtype, 0.0) + 2 * uk_more * rows
    return q_more * stored.bytes_per_param + uk_more * act, flops


def _with_replicated_query(work: "PassWork", spec: ModelSpec, dcp: int, comm: Optional[DcpComm],
                           decode: bool) -> "PassWork":
    """`work` with replicated_query's bytes and FLOPs where `comm` replicates the query (tile_flops as one row)."""
    if comm is None or not comm.q_replicated:
        return work
    more, flops = replicated_query(spec, work.tp, dcp, work.tokens, decode)
    tile = replicated_query(spec, work.tp, dcp, 1, decode)[1]
    return replace(work, weight_bytes={**work.weight_bytes, "dcp_q_replicate": more},
                   linear_flops=_added(work.linear_flops, flops), tile_flops=_added(work.tile_flops or {}, tile))


def _added(a: dict, b: dict) -> dict:
    return {key: a.get(key, 0.0) + b.get(key, 0.0) for key in {**a, **b}}


def decode_work(spec: ModelSpec, tp: int, precision: Precision, context: int, batch: int, moe=None,
                dcp: int = 1, pcp: int = 1, head_rows: Optional[int] = None, replicated: bool = False,
                comm: Optional[DcpComm] = None) -> PassWork:
    """One decode step: `batch` sequences of `context` tokens each add one (on every DP rank, under `moe`). Under
    -dcp D (`dcp`) `context` is a GPU's share of each sequence, and its attention runs the D x heads / TP query heads
    its DCP group gathers over that share (dcp_exchange), as many FLOPs as heads / TP over the whole sequence. Under
    -pcp P (`pcp`) `batch` is one PCP rank's share of the engine's requests, whose cache it reads; the MoE layers run
    the P ranks' (MoeLayout.gathered) and the LM head the engine's `head_rows` (pcp_exchange). `replicated` (vLLM
    0.27-0.31, engines/vllm_pcp.py decodes_replicated): every PCP rank runs the engine's whole `batch`, so the MoE
    layers multiply P copies of each token and no latent KV is gathered. `comm`: dcp_exchange's."""
    dp = moe.dp if _laid_out(moe) and spec.experts else 1
    copies = pcp if replicated else 1
    exchange = dcp_exchange(spec, tp, precision, batch, dcp, comm=comm) if dcp > 1 else None
    gather = pcp_exchange(spec, batch, pcp, dp, latent=not replicated) if pcp > 1 else None
    work = PassWork(batch, tp, spec.dtype, spec.num_hidden_layers, spec.hidden_size,
                    weight_bytes_read(spec, tp, batch, moe, copies), batch * read_bytes(spec, tp, precision, context),
                    linear_flops(spec, tp, batch, head_rows or batch, moe, copies),
                    batch * attention_flops(spec, tp // dcp, context - 1, 1, decode=True), dp, exchange, gather,
                    tile_flops(spec, tp, moe))
    return _with_replicated_query(work, spec, dcp, comm, decode=True)


def prefill_work(spec: ModelSpec, tp: int, precision: Precision, start: int, count: int, moe=None,
                 pcp: int = 1, dcp: int = 1, comm: Optional[DcpComm] = None,
                 decode_tokens: int = MLA_DECODE_QUERY_LEN) -> PassWork:
    """One prefill chunk of `count` tokens of one sequence that already holds `start` (its cache is read once). Under
    -pcp P (`moe`: its MoeLayout) `count` is one PCP rank's rows, the MoE layers running the P ranks' (and under DP
    the D ranks', each DP rank's step as large, as decode_work has them). Under -dcp D (`dcp`) a GPU reads its share
    of the cache, ceil(start / D) tokens, and exchanges with its D ranks (dcp_exchange); the attention FLOPs stay
    heads / TP over the whole sequence (MLA gathers the context; GQA runs D x the heads over the share). `comm`:
    dcp_exchange's. A chunk of at most `decode_tokens` tokens runs MLA's decode path (MLA_DECODE_QUERY_LEN): its
    MLA layers attend absorbed (attention_counter) and exchange as decode does."""
    kv = kv_read_bytes(spec, tp, precision, -(-start // dcp)) if start else 0
    dp = moe.dp if _laid_out(moe) and spec.experts else 1
    gather = pcp_exchange(spec, count, pcp, dp) if pcp > 1 else None
    exchange = dcp_exchange(spec, tp, precision, count, dcp, start, comm, decode_tokens) if dcp > 1 else None
    attention = attention_counter(spec, tp, False, absorbed=count <= decode_tokens)(start, count)
    work = PassWork(count, tp, spec.dtype, spec.num_hidden_layers, spec.hidden_size,
                    weight_bytes_read(spec, tp, count, moe), kv, linear_flops(spec, tp, count, 1, moe),
                    attention, dp, exchange, gather,
                    tile_flops(spec, tp, moe))
    return _with_replicated_query(work, spec, dcp, comm, decode=count <= decode_tokens)


def tile_flops(spec: ModelSpec, tp: int, moe=None) -> dict:
    """linear_flops of one token through the weights: every matrix over one MMA tile of rows, the routed experts one
    token picks (a batch-1 decode step's, and a 1-token prefill chunk's)."""
    return linear_flops(spec, tp, 1, 1, moe)
