"""verify's DeepSeek sparse attention (DSA: DeepSeek-V3.2, GLM-5.2's shared indexers), kvplan/gpu/sparse_mla.py:
the architecture from the bundled configs; the lightning indexer's pieces against hand-computed cases (ue8m0
quantisation, the key cache's page layout, scores, top-k) and against vLLM's own scores over the pages; the tiny
models' prefill and decode on paged caches (each pool its own shuffled block table, NaN in every unused slot)
against the float64 reference; the bytes a rank holds against the estimate's weights; the indexer key pools
against the plan. GPU tests skip without CUDA."""

import json
import math
import random
from pathlib import Path

import pytest

from conftest import run_kvplan
from tiny_models import TINY

torch = pytest.importorskip("torch")

from test_verify_model import run_against_reference  # noqa: E402
from kvplan.gpu import sparse_mla as S  # noqa: E402
from kvplan.gpu.caches import caches_from_layout, small_caches  # noqa: E402
from kvplan.gpu.generate import decode, prefill  # noqa: E402
from kvplan.gpu.model import Runtime, Transformer  # noqa: E402
from kvplan.gpu.reference import Reference  # noqa: E402
from kvplan.gpu.weights import full_weights  # noqa: E402
from kvplan.model import parse_config  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.plan.budget import fixed_budget  # noqa: E402
from kvplan.plan.plan import plan as make_plan  # noqa: E402
from kvplan.plan.sharding import stage_weights  # noqa: E402
from kvplan.verify.allocator import kernel_block_table, probe_boundary  # noqa: E402
from kvplan.verify.arch import architecture  # noqa: E402
from kvplan.verify.layout import cache_layout  # noqa: E402
from kvplan.verify.shards import rank_weights, weight_bytes  # noqa: E402

V32, V3, GLM = "deepseek-ai/DeepSeek-V3.2", "deepseek-ai/DeepSeek-V3", "zai-org/GLM-5.2"
DATA = Path(__file__).parent / "data"
TOL = 5e-4
GiB = 2**30


def tiny(name, **changes):
    raw = {**TINY[name], **changes}
    return architecture(raw, parse_config(raw, name), 1)


def bundled(name, tp):
    raw: list = []
    spec = resolve(name, raw_out=raw)
    return spec, architecture(raw[0], spec, tp)


# ---- the architecture ---------------------------------------------------------------------------------------------

def test_v32_runs_an_indexer_on_every_layer_beside_its_latent():
    """61 MLA layers, each with its latent at spec.layers[2i] and its indexer keys at [2i + 1]; top 2,048 of 64
    indexer heads of 128 (config.json), the whole indexer on every rank."""
    spec, arch = bundled(V32, 8)
    assert [(layer.mixer, layer.cache, layer.keys) for layer in arch.layers] == [("mla", 2 * i, 2 * i + 1)
                                                                                for i in range(61)]
    assert (arch.index_topk, arch.index_heads, arch.index_dim, arch.q_lora_rank) == (2048, 64, 128, 1536)
    names = {s.name: s for s in rank_weights(arch) if s.name.startswith("layers.0.idx_")}
    assert {n: (s.shape(8), s.dtype) for n, s in names.items()} == {
        "layers.0.idx_wq_b": ((8192, 1536), "fp8"), "layers.0.idx_wq_b_scale": ((64, 12), "fp32"),
        "layers.0.idx_wk_w": ((128 + 64, 7168), "model"), "layers.0.idx_k_norm": ((128,), "fp32"),
        "layers.0.idx_k_norm_bias": ((128,), "fp32")}
    assert any("sparse attention in torch" in note for note in arch.notes)


def test_glm_runs_21_indexers_and_57_layers_reuse_their_top_k():
    """vLLM's skip rule (index_topk_freq 4, index_skip_topk_offset 3): layers 0, 1, 2, 6, 10, ..., 74 run an indexer;
    only they hold its weights and a key cache."""
    spec, arch = bundled(GLM, 8)
    leaders = [layer.index for layer in arch.layers if layer.keys is not None]
    assert leaders == [0, 1, 2] + list(range(6, 78, 4)) and len(leaders) == 21
    held = {s.name.split(".")[1] for s in rank_weights(arch) if ".idx_wq_b" in s.name}
    assert held == {str(i) for i in leaders}
    assert all(layer.mixer == "mla" for layer in arch.layers) and arch.index_topk == 2048


def test_verify_refuses_fp8_latents_in_one_line_naming_the_flag():
    """vLLM keeps a sparse model's fp8 cache as 656-byte fp8_ds_mla entries (engines/vllm_kv_dtype.py
    SPARSE_MLA_FP8); verify's sparse MLA reads 16-bit latents only, and says so before it needs a GPU."""
    for dtype in ("fp8", "fp8_ds_mla"):
        r = run_kvplan("verify", V32, "--tp", "8", "--kv-cache-dtype", dtype)
        assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
        (line,) = r.stderr.strip().splitlines()
        assert line.startswith(f"kvplan: error: --kv-cache-dtype {dtype} is not run by verify") and "656-byte" in line


def test_a_shape_the_indexer_does_not_take_is_refused():
    from kvplan.errors import KvplanError

    with pytest.raises(KvplanError, match="index_head_dim is 64; verify's lightning indexer takes 128"):
        tiny("deepseek_v32", index_head_dim=64)
    with pytest.raises(KvplanError, match="first sparse layer \\(0\\) reuses a top-k"):
        tiny("glm_dsa", index_topk_pattern="SFF")


# ---- the indexer's pieces by hand ---------------------------------------------------------------------------------

def test_ue8m0_quantisation_by_hand():
    """amax 3: 3 / 448 = 0.0067 -> 2^ceil(log2) = 2^-7, values x 128 (all exact in e4m3); an all-small row is scaled
    from amax 1e-4: 1e-4 / 448 = 2.2e-7 -> 2^-22."""
    values, scales = S.quantize_ue8m0(torch.tensor([[1.0, -3.0, 0.5], [1e-6, 0.0, 0.0]]))
    assert scales.tolist() == [2.0 ** -7, 2.0 ** -22]
    assert values.float()[0].tolist() == [128.0, -384.0, 64.0]
    assert values.dtype == torch.float8_e4m3fn


def test_the_key_cache_page_holds_a_blocks_values_then_its_scales():
    """DeepseekV32IndexerCache's page as vLLM's kernels read it (fp8_paged_mqa_logits_torch: block_size x D values,
    then block_size float32 scales): slot 5 of blocks of 4 is block 1, offset 1."""
    dim, bs = 128, 4
    pages = torch.zeros(2, bs, dim + 4, dtype=torch.uint8)
    values = torch.full((2, dim), 2.0).to(torch.float8_e4m3fn)
    values[1] = -1.0
    S.write_keys(pages, values, torch.tensor([0.25, 8.0]), torch.tensor([5, 2]))
    raw = pages.view(2, -1)
    assert torch.equal(raw[1, dim:2 * dim].view(torch.float8_e4m3fn).float(), torch.full((dim,), 2.0))
    assert raw[1, bs * dim + 4:bs * dim + 8].view(torch.float32).item() == 0.25
    assert torch.equal(raw[0, 2 * dim:3 * dim].view(torch.float8_e4m3fn).float(), torch.full((dim,), -1.0))
    assert raw[0, bs * dim + 8:bs * dim + 12].view(torch.float32).item() == 8.0
    rest = raw.clone()  # nothing else written
    rest[1, dim:2 * dim] = rest[1, bs * dim + 4:bs * dim + 8] = rest[0, 2 * dim:3 * dim] = 0
    rest[0, bs * dim + 8:bs * dim + 12] = 0
    assert not rest.any()
    got, scales = S.read_keys(pages, torch.tensor([[1, 0]]), torch.float32)  # the sequence's blocks 1 then 0
    assert scales.tolist() == [[0, 0.25, 0, 0, 0, 0, 8.0, 0]] and got[0, 1, 0] == 2.0 and got[0, 6, 0] == -1.0


def test_scores_and_top_k_by_hand():
    """Two heads, keys of two values. Head 0 . keys = (1, 2, 3), head 1 = (-1, 1, 0) -> relu (0, 1, 0); weights
    (0.5, 2): (0.5, 3, 1.5); times the key scales (1, 2, 0.5): (0.5, 6, 0.75). The top 2 are keys 1 and 2; with key 2
    not yet written (invalid, NaN in its slot) keys 1 and 0; a row of one valid key picks it and -1."""
    q = torch.tensor([[[1.0, 2.0], [-1.0, 1.0]]])
    keys = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    scores = S.index_scores(q, torch.tensor([[0.5, 2.0]]), keys, torch.tensor([[1.0, 2.0, 0.5]]))
    assert scores.tolist() == [[0.5, 6.0, 0.75]]
    assert S.select(scores, torch.tensor([[True, True, True]]), 2).tolist() == [[1, 2]]
    poisoned = torch.tensor([[0.5, 6.0, float("nan")]])
    assert S.select(poisoned, torch.tensor([[True, True, False]]), 2).tolist() == [[1, 0]]
    assert S.select(scores, torch.tensor([[False, True, False]]), 2).tolist() == [[1, -1]]
    assert S.select(scores, torch.tensor([[True, True, True]]), 8).shape == (1, 3)  # k = min(topk, keys)


def _e4m3(rows):
    return torch.tensor([list(bytes.fromhex(h)) for h in rows], dtype=torch.uint8).view(torch.float8_e4m3fn)


def test_scores_over_the_pages_are_vllms_own():
    """tests/data/vllm_indexer_logits.json (vLLM 0.32.0's fp8_paged_mqa_logits_torch over pages kvplan's write_keys
    laid out, three sequences of 37, 5 and 64 tokens on shuffled blocks of 16): kvplan's gathered keys and scores
    are vLLM's logits to float32 rounding, and so is each sequence's top 8."""
    data = json.loads((DATA / "vllm_indexer_logits.json").read_text())
    bs, table = data["block_size"], torch.tensor(data["table"], dtype=torch.int32)
    pages = torch.zeros(data["blocks"], bs, data["dim"] + 4, dtype=torch.uint8)
    for row, n, keys in zip(table, data["lens"], data["keys"]):
        pos = torch.arange(n)
        S.write_keys(pages, _e4m3(keys["values"]), torch.tensor(keys["scales"]), row.long()[pos // bs] * bs + pos % bs)
    q = torch.stack([_e4m3(rows) for rows in data["q"]]).float()
    scores = S.index_scores(q, torch.tensor(data["weights"]), *S.read_keys(pages, table, torch.float32))
    for got, n, want in zip(scores, data["lens"], data["logits"]):
        want = torch.tensor(want)
        assert float((got[:n] - want).abs().max() / want.abs().max()) < 1e-6
        assert set(got[:n].topk(min(8, n)).indices.tolist()) == set(want.topk(min(8, n)).indices.tolist())


def test_prefill_mask_keeps_each_querys_top_k_of_its_own_keys():
    """One head, keys 1-D: key j scores relu(q_i x k_j) x weight. Keys (4, 1, 3, 2), queries 1, weight 1: query 0
    keeps {0}, query 1 {0, 1} (no more than 2 keys yet), query 2 the best 2 of (4, 1, 3) = {0, 2}, query 3 of
    (4, 1, 3, 2) = {0, 2}."""
    keys = torch.tensor([[4.0], [1.0], [3.0], [2.0]])
    mask = S.prefill_mask(torch.ones(4, 1, 1), torch.ones(4, 1), keys, torch.ones(4), 1, 4, 2)
    assert mask.shape == (1, 1, 4, 4)
    assert [row.nonzero().flatten().tolist() for row in mask[0, 0]] == [[0], [0, 1], [0, 2], [0, 2]]


# ---- the forward against the float64 reference --------------------------------------------------------------------

def run_sparse(arch, prompt_lens, steps=3, block=4, seed=0, caches=None, tables=None):
    """run_against_reference with every pool (each layer's latent, each indexer's keys) on its own shuffled block
    ids; unused cache slots hold NaN (latents) and 0xFF bytes (keys: an e4m3 NaN and a float32 NaN scale)."""
    return run_against_reference(arch, prompt_lens, steps, block, seed, caches=caches, tables=tables,
                                 table_per_group=True)


@pytest.mark.parametrize("name", ["deepseek_v32", "deepseek_v32_wide", "glm_dsa"])
@pytest.mark.parametrize("lens", [(5, 13), (20, 3, 9)])
def test_prefill_and_decode_match_the_reference(name, lens):
    """Top 8 (6 for GLM's form): the 13- and 20-token prompts attend a selection in prefill (vLLM's sparse path,
    past index_topk) and every decode step past 8 tokens does; the 3- and 5-token prompts cross from all to a
    selection while decoding; the wide top-k (64) never selects. float32 against float64: ~1e-6 measured."""
    assert run_sparse(tiny(name), lens) < TOL


def test_in_chunks_as_the_long_contexts_run(monkeypatch):
    """The chunks that bound the real model's transients, one row or sequence at a time here: prefill scores a query
    at a time (LOGITS_LIMIT), the masked prefill 4 queries at a time (QUERY_BLOCK), decode's gathers a sequence at a
    time (paged.GATHER_LIMIT)."""
    from kvplan.gpu import paged

    monkeypatch.setattr(S, "LOGITS_LIMIT", 1)
    monkeypatch.setattr(S, "QUERY_BLOCK", 4)
    monkeypatch.setattr(paged, "GATHER_LIMIT", 1)
    assert run_sparse(tiny("glm_dsa"), (13, 10)) < TOL


def test_the_selection_matters():
    """The same weights attending the top 8 or every latent differ by far more than the tolerance: the comparison
    above would see a wrong selection."""
    narrow, wide = tiny("deepseek_v32"), tiny("deepseek_v32_wide")
    weights = full_weights(narrow, 0)
    a, b = Reference(narrow, weights), Reference(wide, weights)
    for token in [5, 77, 3, 19, 42, 8, 99, 1, 64, 23, 7, 50, 31, 2]:
        x, y = a.step(token), b.step(token)
    assert float((x - y).abs().max() / y.abs().max()) > 20 * TOL


def test_a_layer_that_reuses_the_top_k_runs_no_indexer(monkeypatch):
    """GLM's form: layer 1 attends layer 0's selection; only layers 0 and 2 score keys (one call each a forward)."""
    arch = tiny("glm_dsa")
    calls = []
    real = S.SparseMLAttention.indexer
    monkeypatch.setattr(S.SparseMLAttention, "indexer",
                        lambda self, *args: calls.append(self.layer.index) or real(self, *args))
    assert run_sparse(arch, (9,), steps=1) < TOL
    assert calls == [0, 2, 0, 2]
    assert "layers.1.idx_wq_b" not in {s.name for s in rank_weights(arch)}


def test_through_verify_layout_allocator_and_block_tables():
    """The tiny V3.2 as verify runs it: the plan's layout (one latent pool and one indexer-key pool, shared by the
    layers), the pools from caches_from_layout (filled with NaN / 0xFF), block ids from the allocator, the kernel's
    block-table rows. The indexer pool is exactly the plan's bytes less the latents'."""
    raw = TINY["deepseek_v32"]
    spec = parse_config(raw, "deepseek_v32")
    arch = architecture(raw, spec, 1)
    context, bs = 24, 4
    per_block = 2 * bs * (40 * 2 + 132)  # 2 layers x 4 tokens x (latent 32 + 8 bf16, key 128 + 4)
    p = make_plan(spec, context=context, kv_dtype="auto", tp=1, budget_for=fixed_budget(
        13 * per_block + 100), block_size=bs, engine="none", speed=False, suggest=False)
    layout = cache_layout(spec, p)
    assert p.kv_blocks == 13 and p.max_concurrency == 2  # 6 blocks a sequence of 24 tokens
    groups = {g.name: g for g in layout.groups}
    assert set(groups) == {"MLA latent", "indexer keys"}
    keys = groups["indexer keys"]
    assert (keys.kind, keys.dtype, keys.tensor_shapes, keys.bytes) == ("indexer", "u8", ((13, bs, 132),),
                                                                      2 * 13 * bs * 132)
    assert layout.allocated_bytes == layout.predicted_bytes == 13 * per_block
    caches = caches_from_layout(layout, "cpu")
    for cache in caches.values():
        if cache.kind == "keys":
            cache.tensors[0].fill_(255)
        else:
            cache.tensors[0].fill_(float("nan"))
    caches = {i: as_float32(c) for i, c in caches.items()}
    boundary, allocator = probe_boundary(layout, 13 * per_block + 100)
    assert boundary.confirmed and boundary.served == 2
    tables = {g.name: [kernel_block_table(g, allocator.tables[s][g.name], context) for s in range(2)]
              for g in layout.groups}
    assert run_sparse(arch, (11, 17), steps=3, block=bs, caches=caches, tables=tables) < TOL


def as_float32(cache):
    """The test runs the model in float32: a bf16 latent pool as float32 of the same shape (NaN kept)."""
    t = cache.tensors[0]
    if t.dtype == torch.bfloat16:
        cache.tensors = (t.float(),)
    return cache


# ---- bytes: a rank's weights, the pools ---------------------------------------------------------------------------

def test_a_v32_rank_holds_the_estimates_weights_and_the_indexer_by_hand():
    """At tp 8 one rank holds V3's tensors plus, in each of 61 layers, the indexer whole (vLLM builds it on every
    rank): wq_b 8,192 x 1,536 e4m3 and its 64 x 12 float32 block scales, wk + weights_proj (128 + 64) x 7,168 bf16,
    k_norm's float32 weight and bias of 128 = 15,339,520 bytes. Against the estimate's weights a GPU: 6.2e-5 below,
    as for V3 (the estimate prices the checkpoint's counted parameters, which run 0.006% above the config's tensors:
    tests/test_params.py)."""
    per_layer = 8192 * 1536 + 64 * 12 * 4 + 192 * 7168 * 2 + 2 * 128 * 4
    assert per_layer == 15_339_520
    spec, arch = bundled(V32, 8)
    _, dense = bundled(V3, 8)
    assert weight_bytes(arch) - weight_bytes(dense) == 61 * per_layer
    assert weight_bytes(arch) == 86_075_841_568
    estimate = stage_weights(spec, 8)
    assert estimate == 86_081_184_824 and abs(estimate / weight_bytes(arch) - 1) < 1e-4


def test_glm_ranks_hold_exactly_the_estimates_weights():
    """GLM-5.2's bf16 checkpoint is priced from its config (no published count): the 21 indexers' tensors included,
    verify's rank and the estimate agree to the byte at tp 1 and 8."""
    spec, _ = bundled(GLM, 1)
    for tp in (1, 8):
        assert weight_bytes(bundled(GLM, tp)[1]) == stage_weights(spec, tp)


@pytest.mark.parametrize("name, indexers", [(V32, 61), (GLM, 21)])
def test_the_pools_allocate_the_indexer_bytes_the_plan_predicts(name, indexers):
    """40 GiB at 32K and tp 8, laid out as verify does (engine 'none': every block a sequence can use): one block
    is 64 tokens of every layer's latent (576 x 2 bytes) and of each indexer's key (128 + 4); the indexer pool's
    tensors (allocated on the meta device) are indexers x blocks x 64 x 132 bytes, and the pools together the
    plan's KV bytes."""
    spec = resolve(name)
    p = make_plan(spec, context=32768, kv_dtype="auto", tp=8, budget_for=fixed_budget(40 * GiB),
                  block_size=64, engine="none", speed=False, suggest=False)
    per_block = 64 * (spec.num_hidden_layers * 1152 + indexers * 132)
    assert p.kv_blocks == 40 * GiB // per_block
    layout = cache_layout(spec, p)
    caches = caches_from_layout(layout, "meta")
    key_bytes = sum(t.numel() for c in caches.values() if c.kind == "keys" for t in c.tensors)
    assert sum(c.kind == "keys" for c in caches.values()) == indexers
    assert key_bytes == indexers * p.kv_blocks * 64 * 132
    allocated = sum(t.numel() * t.element_size() for c in caches.values() for t in c.tensors)
    assert allocated == layout.allocated_bytes == layout.predicted_bytes == p.kv_blocks * per_block
    boundary, _ = probe_boundary(layout, 40 * GiB)
    assert boundary.confirmed and boundary.served == p.max_concurrency == p.kv_blocks // 512


# ---- on a GPU -----------------------------------------------------------------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("name", ["deepseek_v32", "glm_dsa"])
def test_on_the_gpu_in_float32_with_a_graphed_decode(name):
    """The narrow top-k on the GPU, float32 (bf16 rounding would flip near ties of the selection: a different set of
    latents, not an error; tests/test_verify_gpu.py runs the tiny models in bf16 with a top-k wider than its
    prompts), the decode step captured in a CUDA graph and replayed, against the float64 reference."""
    from kvplan.gpu.timing import capture

    arch = tiny(name)
    weights = full_weights(arch, 0)
    model = Transformer(arch, {k: v.cuda() for k, v in weights.items()}, Runtime("cuda"))
    model.caches = small_caches(arch, 64, 16, 2, torch.float32, "cuda")
    lens = [37, 20]
    ids = list(range(64))
    random.Random(1).shuffle(ids)
    rows = [ids[:4], ids[4:8]]
    groups = {c.group for c in model.caches.values()}
    refs = [Reference(arch, weights) for _ in lens]
    gen = torch.Generator().manual_seed(2)
    for i, n in enumerate(lens):
        prompt = torch.randint(0, arch.vocab, (n,), generator=gen)
        prefill(model, prompt[None].cuda(), {g: [rows[i]] for g in groups})
        for t in prompt.tolist():
            refs[i].step(t)
    tables = {g: torch.tensor(rows, dtype=torch.int32, device="cuda") for g in groups}
    tokens = torch.randint(0, arch.vocab, (2,), generator=gen).cuda()
    positions = torch.tensor(lens, device="cuda")
    graph, out = capture(lambda: decode(model, tokens, positions, tables))  # the warm-up writes what replay does
    graph.replay()
    torch.cuda.synchronize()
    for i in range(2):
        want = refs[i].step(int(tokens[i]))
        # float32's 1e-3: session 50's H200 ran 0.31% / 0.57% off while grouped_mm rounded float32 rows through bf16
        # on the GPU (found in session 51: benchmarks/probes/s51_dsa_float32_ops.py; now a gathered bmm)
        assert float((out[i].double().cpu() - want).abs().max() / want.abs().max()) < 1e-3
    assert "NOT a CUDA kernel" in model.rt.paged.labels["sparse mla"]


@cuda
def test_key_cache_round_trip_on_the_gpu():
    pages = torch.full((8, 64, 132), 255, dtype=torch.uint8, device="cuda")
    k = torch.randn(5, 128, device="cuda")
    values, scales = S.quantize_ue8m0(k)
    slots = torch.tensor([3, 64, 65, 200, 511], device="cuda")
    S.write_keys(pages, values, scales, slots)
    table = torch.arange(8, dtype=torch.int32, device="cuda")[None]
    got, got_scales = S.read_keys(pages, table, torch.float32)
    assert torch.equal(got[0, slots], values.float()) and torch.equal(got_scales[0, slots], scales)
    assert math.isclose(float((got[0, slots] * got_scales[0, slots, None] - k).abs().max() / k.abs().max()), 0,
                        abs_tol=0.07)  # e4m3: 3 mantissa bits


def test_a_tp_that_cuts_an_fp8_block_is_refused_before_the_gpu():
    """Review finding (session 49): the rank's tensors are cut before torch loads, so a tp whose share cuts a 128 x 128
    fp8 block (DeepSeek-V3.2's dense MLP of 18,432 at tp 32: 576 rows) is one line, exit 2, even on a machine
    without a GPU (before: "needs a CUDA GPU")."""
    r = run_kvplan("verify", "deepseek-ai/DeepSeek-V3.2", "--tp", "32")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        "kvplan: error: deepseek-ai/DeepSeek-V3.2: layers.0.mlp.gate_up holds 576 rows or columns per rank at tp 32, "
        "not a multiple of 128, so vLLM cannot load its fp8 blocks."]
