"""`kvplan verify` of MiMo-V2 (XiaomiMiMo/MiMo-V2-Flash) as vLLM 0.32.0 model_executor/models/mimo_v2.py builds it:
full and sliding layers with their own heads, keys wider than values (192 vs 128), a learned sink a query head on
the sliding layers, block-scaled fp8 with o_proj kept 16-bit. Expected values are hand arithmetic from the config,
hand-worked softmax cases, brute-force float64 loops, or the float64 reference (kvplan/gpu/reference.py, written
apart from the forward pass)."""

import json
import math
from pathlib import Path

import pytest

from conftest import load_yaml, run_kvplan
from tiny_models import TINY

torch = pytest.importorskip("torch")

from kvplan.errors import KvplanError  # noqa: E402
from kvplan.gpu import mixers, paged  # noqa: E402
from kvplan.gpu.caches import caches_from_layout, small_caches  # noqa: E402
from kvplan.gpu.reference import Reference  # noqa: E402
from kvplan.gpu.weights import full_weights  # noqa: E402
from kvplan.model import parse_config  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.plan.budget import fixed_budget  # noqa: E402
from kvplan.plan.plan import plan as make_plan  # noqa: E402
from kvplan.verify.arch import architecture  # noqa: E402
from kvplan.verify.judge import STAND_IN, stand_ins  # noqa: E402
from kvplan.verify.layout import cache_layout  # noqa: E402
from kvplan.verify.shards import layer_weights, rank_weights, shard_slices, weight_bytes  # noqa: E402

from test_verify_model import TOL, run_against_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FLASH = "XiaomiMiMo/MiMo-V2-Flash"
H, VOCAB, LAYERS = 4096, 152576, 48
FULL_LAYERS = (0, 5, 11, 17, 23, 29, 35, 41, 47)
GiB = 2**30


def bundled_config() -> dict:
    return load_yaml((ROOT / "model_specs" / (FLASH.replace("/", "--") + ".yaml")).read_text())["config"]


def flash(tp: int, config: dict = None):
    config = config or bundled_config()
    return architecture(config, parse_config(config, FLASH), tp)


def tiny(name: str = "mimo_v2", tp: int = 1, **fields):
    raw = {**TINY[name], **fields}
    return architecture(raw, parse_config(raw, name), tp)


# ---- the forward pass's shapes -----------------------------------------------------------------------------------

def test_verify_builds_flash_from_its_config():
    """One rank of tp 4: every layer has its type's heads (full: 64 query / 4 KV, one a rank; sliding: 64 / 8, two
    a rank), keys 192 and values 128 wide, scores at 192^-0.5 (mimo_v2.py:258); sinks on the sliding layers only;
    rotary over all 192 dims at base 1e6 in both (the bundled file drops partial_rotary_factor and the thetas: vLLM's
    getattr defaults 1.0 and 1000000, lines 371 and 394-398); layernorm_epsilon; the dense first layer and 47 MoE
    layers of 256 experts of 2,048, top 8, sigmoid scores chosen with a correction bias, float32 router, no shared
    expert; fp8 in 128 x 128 blocks, o_proj 16-bit."""
    a = flash(4)
    assert [layer.index for layer in a.layers if layer.window is None] == list(FULL_LAYERS)
    full, sliding = a.layers[0].shape, a.layers[1].shape
    assert (full.heads_rank(4), full.kv_heads_rank(4), full.head_dim, full.v_head_dim) == (16, 1, 192, 128)
    assert (sliding.heads_rank(4), sliding.kv_heads_rank(4), sliding.head_dim, sliding.v_head_dim) == (16, 2, 192, 128)
    assert not full.sinks and sliding.sinks and a.layers[1].window == 128
    assert full.scale == sliding.scale == 192 ** -0.5 and full.rope_dim == sliding.rope_dim == 192
    assert {layer.rope_theta for layer in a.layers} == {1e6} and a.value_scale == 1.0 and a.norm_eps == 1e-5
    assert [layer.ffn for layer in a.layers] == ["dense"] + ["moe"] * 47
    assert (a.experts, a.top_k, a.expert_intermediate, a.shared_intermediate) == (256, 8, 2048, 0)
    assert a.intermediate == 16384
    assert a.router_fp32 and a.routing.scoring == "sigmoid" and a.routing.correction_bias and a.routing.renormalize
    assert (a.linear_format, a.experts_format, a.unquantized) == ("fp8_block", "fp8_block", ("o",))
    assert any("MTP layers are not built or run" in note for note in a.notes)
    assert not any("chunked" in note for note in a.notes)  # attention_chunk_size names no chunk (vLLM deletes it)


def test_the_fields_the_bundled_file_drops_are_read_where_given():
    """The published config's partial_rotary_factor 0.334, rope_theta 5e6, swa_rope_theta 1e4 and
    attention_value_scale 0.707: int(192 x 0.334) = 64 rotated dims (vLLM get_rope), each type at its base, v scaled."""
    config = {**bundled_config(), "partial_rotary_factor": 0.334, "rope_theta": 5000000, "swa_rope_theta": 10000,
              "attention_value_scale": 0.707}
    a = flash(8, config)
    assert a.rope_dim == a.layers[0].shape.rope_dim == a.layers[1].shape.rope_dim == 64
    assert (a.layers[0].rope_theta, a.layers[1].rope_theta, a.value_scale) == (5e6, 1e4, 0.707)


@pytest.mark.parametrize("field, value, message", [
    ("layernorm_epsilon", None, "config field 'layernorm_epsilon' is missing"),
    ("partial_rotary_factor", 1.5, r"config field 'partial_rotary_factor' must be a number from 0 to 1, got 1.5"),
    ("partial_rotary_factor", 0.3, r"rotates 57 of head_dim 192"),
    ("attention_value_scale", "big", "config field 'attention_value_scale' must be a positive number"),
    ("swa_num_attention_heads", 48, r"'swa_num_attention_heads' \(48\) is not divisible by tp 32"),
])
def test_bad_fields_are_named(field, value, message):
    config = bundled_config()
    config.pop(field, None)
    if value is not None:
        config[field] = value
    with pytest.raises(KvplanError, match=message):
        flash(32 if field == "swa_num_attention_heads" else 4, config)


def test_o_proj_kept_16_bit_in_some_layers_only_is_refused():
    config = bundled_config()
    config["quantization_config"] = {**config["quantization_config"],
                                     "ignored_layers": config["quantization_config"]["ignored_layers"][:10]}
    with pytest.raises(KvplanError, match="keeps o_proj 16-bit in 10 of its 48 attention layers"):
        flash(4, config)
    config["quantization_config"].pop("ignored_layers")
    a = flash(4, config)
    assert a.unquantized == () and {s.name: s.dtype for s in layer_weights(a, a.layers[0])}["o"] == "fp8"


def test_verify_goes_on_to_the_gpu(monkeypatch):
    """verify refused MiMo-V2 before session 49; now its architecture builds at tp 4 and verify goes on to the GPU
    (stopped here where it would load torch)."""
    from kvplan.gpu import nvml

    def stop():
        raise KvplanError("stopped before torch")

    monkeypatch.setattr(nvml, "import_stack", stop)
    r = run_kvplan("verify", FLASH, "-tp", "4")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["kvplan: error: stopped before torch"]


# ---- the bytes a rank holds --------------------------------------------------------------------------------------

def test_a_rank_of_tp_4_holds_the_checkpoints_tensors_priced_by_hand():
    """The tensors of one rank of tp 4 (kvplan/verify/shards.py), each priced by hand: bf16 embeddings, LM head,
    norms, o_proj (ignored_layers) and sinks; e4m3 QKV, MLP and expert matrices with a float32 scale per started
    128 x 128 block of the rank's rows (a full layer's fused QKV: 3,072 + 192 + 128 = 3,392 rows, 27 scale rows);
    the float32 router and correction bias whole on every rank."""
    embed = 2 * VOCAB * H * 2 // 4  # embedding and LM head (152,576 is a multiple of 64: no padding)
    norms = (2 * LAYERS + 1) * H * 2
    o = H * (64 * 128 // 4) * 2
    full = 3392 * H + 27 * 32 * 4 + o
    sliding = 3712 * H + 29 * 32 * 4 + o + 16 * 2  # 3,072 + 2 x 192 + 2 x 128 rows = 29 blocks; 16 sinks
    dense = (8192 * H + 64 * 32 * 4) + (H * 4096 + 32 * 32 * 4)  # 16,384 / 4 intermediate rows
    moe = 256 * (1024 * H + 8 * 32 * 4 + H * 512 + 32 * 4 * 4) + 256 * H * 4 + 256 * 4
    expected = embed + norms + 9 * full + 39 * sliding + dense + 47 * moe
    assert weight_bytes(flash(4)) == expected == 78_114_045_920  # 72.75 GiB: one simulated rank fits an H200


def test_rank_bytes_against_the_estimates_weights():
    """At tp 1 and 2 every share is whole blocks and verify holds exactly the estimate's bytes (the checkpoint's
    311,862,256,256: kvplan/model/params.py prices q, k and v scales matrix by matrix). At tp 4 a full layer's QKV
    cuts a block (one 192-row key head): vLLM lets a fused layer do that and sizes its scales over the rank's summed
    rows (linear.py:549-572, fp8_utils.py:1412-1425), 27 rows where the estimate's 1/4 of 96 + 6 + 4 is 26.5:
    9 layers x 0.5 x 32 columns x 4 bytes = 576 bytes more than the estimate's weights term. At tp 8 every layer's
    share is 14.5 scale rows (the full layers' 4 KV heads replicated on 2 ranks each, as the estimate now prices per
    layer type), 15 held: 48 x 0.5 x 32 x 4 = 3,072 bytes (the estimate was 5.9 MB short before it priced each layer
    type's KV heads)."""
    terms = {}
    for tp in (1, 2, 4, 8):
        r = run_kvplan("estimate", FLASH, "--gpu", "h200", "-tp", str(tp), "--format", "json")
        assert r.returncode == 0, r.stderr
        plan = json.loads(r.stdout)["plans"][0]
        terms[tp] = next(t for t in plan["budget"]["terms"] if t["name"] == "weights")["bytes"]
    assert weight_bytes(flash(1)) == terms[1] == resolve(FLASH).weights.bytes == 311_862_256_256
    assert weight_bytes(flash(2)) == terms[2]
    assert weight_bytes(flash(4)) - terms[4] == 9 * 0.5 * 32 * 4 == 576
    assert weight_bytes(flash(8)) - terms[8] == 48 * 0.5 * 32 * 4 == 3072


def test_fused_qkv_scales_cover_the_ranks_rows():
    """tp 8: 8 query heads x 192 + one key head of 192 + one value head of 128 = 1,856 rows in either layer type
    (the full layers' 4 KV heads replicated on 2 ranks each): ceil(1,856 / 128) = 15 scale rows (vLLM's docstring
    of _requantize_fp8 names the same 14.5 blocks); such scales are no slice of the whole model's (the tests' shard
    cutter says so); a tp whose expert share cuts a block is still refused (2,048 / 32 = 64 rows)."""
    a = flash(8)
    specs = {s.name: s for s in rank_weights(a)}
    for i in (0, 1):
        assert specs[f"layers.{i}.qkv"].shape(8) == (1856, H) and specs[f"layers.{i}.qkv_scale"].shape(8) == (15, 32)
    assert specs["layers.1.sinks"].shape(8) == (8,) and specs["layers.1.o"].dtype == "model"
    with pytest.raises(KvplanError, match="not a slice of the whole model's scales"):
        shard_slices(specs["layers.0.qkv_scale"], 0, 8)
    with pytest.raises(KvplanError, match="w13 holds 64 rows or columns per rank at tp 32"):
        rank_weights(flash(32))


@pytest.mark.parametrize("tp", [4, 8])
def test_a_flash_rank_runs_prefill_and_decode_at_its_real_shapes(tp, monkeypatch):
    """One rank's real tensors (72.75 GiB at tp 4) on the meta device, no memory: a 300-token prefill of two
    sequences (the sliding layers' 128-token window in query blocks, with sinks) and a decode step go through
    every layer, the logits this rank's share of the vocabulary."""
    from kvplan.gpu.generate import decode, prefill
    from kvplan.gpu.model import Runtime, Transformer
    from kvplan.gpu.weights import allocate_weights

    config = pytest.importorskip("torch.fx.experimental._config")
    if not hasattr(config, "meta_nonzero_assume_all_nonzero"):
        pytest.skip("this torch cannot index by a mask on the meta device")
    monkeypatch.setattr(config, "meta_nonzero_assume_all_nonzero", True)  # the prefill's masked cache writes
    a = flash(tp)
    weights = allocate_weights(a, "meta", fill=False)
    assert sum(t.numel() * t.element_size() for t in weights.values()) == weight_bytes(a)
    model = Transformer(a, weights, Runtime("meta"))
    model.caches = small_caches(a, 64, 16, 2, torch.bfloat16, "meta")
    groups = {c.group for c in model.caches.values()}
    out = prefill(model, torch.zeros(2, 300, dtype=torch.long, device="meta"),
                  {g: [list(range(20)), list(range(20, 40))] for g in groups})
    assert out.shape == (2, VOCAB // tp) and out.dtype == torch.bfloat16
    tables = {g: torch.zeros(2, 20, dtype=torch.int32, device="meta") for g in groups}
    out = decode(model, torch.zeros(2, dtype=torch.long, device="meta"), torch.tensor([300, 301], device="meta"),
                 tables)
    assert out.shape == (2, VOCAB // tp)
    assert "keys 192 wide, values 128" in model.rt.paged.labels["rope_cache"]


# ---- the paged pools -------------------------------------------------------------------------------------------

def test_pools_hold_keys_and_values_of_their_own_widths_and_the_plans_bytes():
    """tp 4, 32K tokens a sequence: the full layers' pool K [blocks, 16, 1, 192] and V [.., 128], 2,048 blocks a
    sequence; the sliding layers' K [.., 16, 2, 192] and V [.., 128], 9 blocks a sequence (its 128-token window
    straddling block edges); bytes by hand equal the plan's, and the tensors caches_from_layout makes."""
    spec = resolve(FLASH)
    plan = make_plan(spec, context=32768, kv_dtype="auto", tp=4, block_size=16, engine="none", speed=False,
                     suggest=False, budget_for=fixed_budget(20 * GiB))
    layout = cache_layout(spec, plan)
    n = plan.max_concurrency
    full, sliding = layout.groups
    assert (full.kind, len(full.layers), full.blocks_per_sequence) == ("full", 9, 2048)
    assert full.tensor_shapes == ((n * 2048, 16, 1, 192), (n * 2048, 16, 1, 128))
    assert (sliding.kind, len(sliding.layers), sliding.blocks_per_sequence) == ("sliding", 39, 9)
    assert sliding.tensor_shapes == ((n * 9, 16, 2, 192), (n * 9, 16, 2, 128))
    by_hand = n * (9 * 2048 * 16 * 1 * (192 + 128) * 2 + 39 * 9 * 16 * 2 * (192 + 128) * 2)
    assert layout.allocated_bytes == layout.predicted_bytes == by_hand
    caches = caches_from_layout(layout, "meta")
    assert sum(t.numel() * t.element_size() for c in caches.values() for t in c.tensors) == by_hand
    assert tuple(caches[1].tensors[0].shape[-2:]) == (2, 192) and tuple(caches[1].tensors[1].shape[-2:]) == (2, 128)


def test_small_caches_follow_each_layers_widths():
    a = tiny()
    caches = small_caches(a, 8, 4, 1, torch.float32)
    assert [tuple(t.shape) for t in caches[0].tensors] == [(8, 4, 1, 24), (8, 4, 1, 16)]  # full: 1 KV head
    assert [tuple(t.shape) for t in caches[1].tensors] == [(8, 4, 2, 24), (8, 4, 2, 8)]  # sliding: 2


# ---- sinks by hand ---------------------------------------------------------------------------------------------

def _hand_case():
    """One query head, two keys: scores 0 and ln 2 (scale 1), values [4, 0] and [0, 8]."""
    q = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    keys = torch.tensor([[[[0.0, 0.0]], [[math.log(2), 0.0]]]], dtype=torch.float64)  # [B, N, Hk, D]
    values = torch.tensor([[[[4.0, 0.0, 0.0]], [[0.0, 8.0, 0.0]]]], dtype=torch.float64)
    return q, keys, values, torch.tensor([2])


@pytest.mark.parametrize("sink, want", [(None, [4 / 3, 16 / 3, 0.0]), (float("-inf"), [4 / 3, 16 / 3, 0.0]),
                                        (0.0, [1.0, 4.0, 0.0]), (math.log(3), [4 / 6, 16 / 6, 0.0]),
                                        (1e4, [0.0, 0.0, 0.0])])
def test_decode_sinks_by_hand(sink, want):
    """e^0 = 1 and e^(ln 2) = 2 share the denominator with e^s: s = 0 gives (4 x 1 + 0, 8 x 2) / 4 = (1, 4); a
    sink of -inf adds nothing (no sink); a sink of 10^4 takes every query's weight (output 0)."""
    q, keys, values, lens = _hand_case()
    sinks = None if sink is None else torch.tensor([sink], dtype=torch.float64)
    out = paged._masked_softmax_attend(q, keys, values.clone(), lens, 1.0, sinks=sinks)
    assert torch.allclose(out[0, 0], torch.tensor(want, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("sink, want", [(float("-inf"), [4 / 3, 16 / 3, 0.0]), (0.0, [1.0, 4.0, 0.0]),
                                        (1e4, [0.0, 0.0, 0.0])])
def test_prefill_sinks_by_hand(sink, want):
    """The same case through SDPA with the sink as one more key (mixers.sink_sdpa): q [1, 1, 1, 2]."""
    q, keys, values, _ = _hand_case()
    out = mixers.sink_sdpa(q[:, :, None, :], keys.permute(0, 2, 1, 3), values.permute(0, 2, 1, 3),
                           torch.ones(1, 2, dtype=torch.bool), 1.0, torch.tensor([sink], dtype=torch.float64))
    assert torch.allclose(out[0, 0, 0], torch.tensor(want, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("n, window, block", [(40, 8, 4), (40, 8, 128), (9, None, 128)])
def test_prefill_with_sinks_against_a_loop(n, window, block, monkeypatch):
    """sdpa_prefill with sinks (windowed in query blocks, one L x L mask, or causal) against a float64 loop over
    every query: weights e^(z_j) / (e^(s_h) + sum_i e^(z_i)) over the last `window` keys, GQA 4 query / 2 KV heads,
    keys 6 wide and values 5."""
    monkeypatch.setattr(mixers, "WINDOW_BLOCK_MIN", block)
    gen = torch.Generator().manual_seed(11)
    r, heads, kv_heads = 2, 4, 2
    q = torch.randn(r * n, heads, 6, generator=gen, dtype=torch.float64)
    k = torch.randn(r * n, kv_heads, 6, generator=gen, dtype=torch.float64)
    v = torch.randn(r * n, kv_heads, 5, generator=gen, dtype=torch.float64)
    sinks = torch.randn(heads, generator=gen, dtype=torch.float64)
    step = type("Step", (), {"seqs": r, "seq_len": n})()
    out = mixers.sdpa_prefill(q, k, v, step, window, 0.4, sinks).view(r, n, heads, 5)
    q, k, v = q.view(r, n, heads, 6), k.view(r, n, kv_heads, 6), v.view(r, n, kv_heads, 5)
    for b in range(r):
        for h in range(heads):
            for t in range(n):
                first = max(0, t - window + 1) if window else 0
                e = torch.exp(0.4 * k[b, first:t + 1, h // 2] @ q[b, t, h])
                want = e @ v[b, first:t + 1, h // 2] / (e.sum() + torch.exp(sinks[h]))
                assert torch.allclose(out[b, t, h], want, atol=1e-12)


def test_paged_decode_with_sinks_and_a_window_against_a_loop():
    """torch_paged_attention over shuffled pages with NaN in every unused slot, keys 6 wide and values 5, sinks, a
    window of 7 (only the window's blocks gathered: paged.window_columns), against a float64 loop."""
    gen = torch.Generator().manual_seed(12)
    blocks, bs, heads, kv_heads = 24, 4, 4, 2
    k_cache = torch.full((blocks, bs, kv_heads, 6), float("nan"), dtype=torch.float64)
    v_cache = torch.full((blocks, bs, kv_heads, 5), float("nan"), dtype=torch.float64)
    table = torch.randperm(blocks, generator=gen)[:18].view(3, 6).to(torch.int32)
    lens = torch.tensor([21, 3, 9], dtype=torch.int32)
    for b, n in enumerate(lens.tolist()):
        for t in range(n):
            block, slot = int(table[b, t // bs]), t % bs
            k_cache[block, slot] = torch.randn(kv_heads, 6, generator=gen, dtype=torch.float64)
            v_cache[block, slot] = torch.randn(kv_heads, 5, generator=gen, dtype=torch.float64)
    q = torch.randn(3, heads, 6, generator=gen, dtype=torch.float64)
    sinks = torch.randn(heads, generator=gen, dtype=torch.float64)
    out = paged.torch_paged_attention(q, k_cache, v_cache, table, lens, 7, 0.5, sinks=sinks)
    assert not out.isnan().any()
    for b, n in enumerate(lens.tolist()):
        tokens = range(max(0, n - 7), n)
        keys = torch.stack([k_cache[int(table[b, t // bs]), t % bs] for t in tokens])
        values = torch.stack([v_cache[int(table[b, t // bs]), t % bs] for t in tokens])
        for h in range(heads):
            e = torch.exp(0.5 * keys[:, h // 2] @ q[b, h])
            assert torch.allclose(out[b, h], e @ values[:, h // 2] / (e.sum() + torch.exp(sinks[h])), atol=1e-12)


def test_a_sink_of_minus_infinity_is_no_sink_in_the_model_and_the_reference():
    """The tiny MiMo-V2 with every sink at -inf runs as the same model without sinks (add_swa_attention_sink_bias
    false), in the forward pass and in the float64 reference alike; with its random sinks it does not."""
    with_sinks, without = tiny(), tiny(add_swa_attention_sink_bias=False)
    weights = full_weights(with_sinks, 0)
    plain = {k: v for k, v in weights.items() if not k.endswith(".sinks")}
    assert set(weights) - set(plain) == {"layers.1.sinks", "layers.2.sinks"}
    silenced = {k: torch.full_like(v, float("-inf")) if k.endswith(".sinks") else v for k, v in weights.items()}
    prompt = [3, 17, 5, 99, 42, 7, 1, 0, 64, 12, 100]

    def reference(arch, w):
        ref = Reference(arch, w)
        return [ref.step(t) for t in prompt][-1]

    assert torch.equal(reference(with_sinks, silenced), reference(without, plain))
    assert not torch.allclose(reference(with_sinks, weights), reference(without, plain), atol=1e-3)
    from kvplan.gpu.generate import prefill
    from kvplan.gpu.model import Runtime, Transformer

    def model(arch, w):
        m = Transformer(arch, w, Runtime("cpu"))
        m.caches = small_caches(arch, 8, 4, 1, torch.float32)
        return prefill(m, torch.tensor([prompt]), {c.group: [list(range(8))] for c in m.caches.values()})[0]

    assert torch.allclose(model(with_sinks, silenced), model(without, plain), atol=1e-6)


# ---- the forward pass against the float64 reference -----------------------------------------------------------

@pytest.mark.parametrize("name, prompts, block", [("mimo_v2", (5, 13), 4), ("mimo_v2", (30, 17), 4),
                                                  ("mimo_v2", (23, 40), 8), ("mimo_v2_fp8", (5, 13), 4),
                                                  ("mimo_v2_fp8", (30, 17), 8)])
def test_forward_matches_the_reference(name, prompts, block):
    """Prefill then decode on paged caches (shuffled block tables, NaN in every unused slot), prompts shorter and
    longer than the 8-token window, against the float64 reference: keys 24 wide, values 16 / 8, sinks, v x 0.707,
    rotary on 8 of 24 dims at two bases, the fp8 form's block-scaled linears with o_proj 16-bit."""
    assert run_against_reference(tiny(name), prompt_lens=prompts, steps=4, block=block) < TOL


def test_a_gpu_decode_is_labelled_a_torch_stand_in():
    """On a GPU (here: the GPU branch taken on CPU tensors) keys wider than values or sinks take the torch stand-in,
    labelled with judge.STAND_IN, so verify reports the decode step as not judged; the output is the CPU path's."""
    pa = paged.PagedAttention.__new__(paged.PagedAttention)
    pa.cuda, pa.labels, pa._plans, pa._kernels = True, {}, {}, None
    gen = torch.Generator().manual_seed(4)
    k, v = torch.randn(6, 4, 1, 192, generator=gen), torch.randn(6, 4, 1, 128, generator=gen)
    q, table = torch.randn(2, 16, 192, generator=gen), torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
    lens = torch.tensor([9, 12], dtype=torch.int32)
    out = pa.gqa(q, k, v, table, lens, None, 192 ** -0.5, sinks=torch.zeros(16))
    assert STAND_IN in pa.labels["attention"] and "keys 192 wide, values 128" in pa.labels["attention"]
    assert stand_ins(pa.labels) == ["attention"]
    assert torch.equal(out, paged.torch_paged_attention(q, k, v, table, lens, None, 192 ** -0.5, sinks=torch.zeros(16)))


# ---- on a GPU (skipped here) ----------------------------------------------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("n, window", [(1000, 128), (300, None)])
def test_sink_prefill_on_gpu_bf16_at_flash_widths(n, window):
    """bf16 SDPA with the sink key at Flash's widths (keys 192, values 128, 16 query / 2 KV heads, window 128 in
    query blocks) against float64 on the CPU: bf16 rounding, a few 1e-3 of the largest output."""
    gen = torch.Generator().manual_seed(5)
    q, k = torch.randn(n, 16, 192, generator=gen), torch.randn(n, 2, 192, generator=gen)
    v, sinks = torch.randn(n, 2, 128, generator=gen), torch.randn(16, generator=gen)
    step = type("Step", (), {"seqs": 1, "seq_len": n})()
    got = mixers.sdpa_prefill(q.cuda().bfloat16(), k.cuda().bfloat16(), v.cuda().bfloat16(), step, window,
                              192 ** -0.5, sinks.cuda().bfloat16()).double().cpu()
    want = mixers.sdpa_prefill(q.double(), k.double(), v.double(), step, window, 192 ** -0.5,
                               sinks.bfloat16().double())
    assert float((got - want).abs().max() / want.abs().max()) < 2e-2


@cuda
def test_mimo_decode_on_gpu_in_a_cuda_graph():
    """The stand-in decode (window gather, sinks, keys 192 / values 128) captured in a CUDA graph and replayed,
    against the same torch on the CPU in float64."""
    from kvplan.gpu.timing import capture

    gen = torch.Generator().manual_seed(6)
    k, v = torch.randn(64, 16, 2, 192, generator=gen), torch.randn(64, 16, 2, 128, generator=gen)
    table = torch.randperm(64, generator=gen)[:60].view(4, 15).to(torch.int32)
    lens = torch.tensor([240, 17, 129, 200], dtype=torch.int32)
    q, sinks = torch.randn(4, 16, 192, generator=gen), torch.randn(16, generator=gen)
    args = [t.cuda() for t in (q.bfloat16(), k.bfloat16(), v.bfloat16(), table, lens)]
    sinks_gpu = sinks.cuda().bfloat16()  # no host-to-device copy inside the capture (torch refuses unpinned ones)
    graph, out = capture(lambda: paged.torch_paged_attention(*args, 128, 192 ** -0.5, sinks=sinks_gpu))
    graph.replay()
    torch.cuda.synchronize()
    want = paged.torch_paged_attention(q.bfloat16().double(), k.bfloat16().double(), v.bfloat16().double(), table,
                                       lens, 128, 192 ** -0.5, sinks=sinks.bfloat16().double())
    assert float((out.double().cpu() - want).abs().max() / want.abs().max()) < 2e-2


SMALL_MIMO = {**bundled_config(), "hidden_size": 1024, "intermediate_size": 2048, "moe_intermediate_size": 256,
              "num_hidden_layers": 6, "num_attention_heads": 16, "swa_num_attention_heads": 16,
              "n_routed_experts": 16, "num_experts_per_tok": 4, "vocab_size": 32000,
              "max_position_embeddings": 16384, "hybrid_layer_pattern": [0, 1, 1, 1, 1, 0],
              "moe_layer_freq": [0, 1, 1, 1, 1, 1],
              "quantization_config": {**bundled_config()["quantization_config"],
                                      "ignored_layers": [f"model.layers.{i}.self_attn.o_proj" for i in range(6)]}}


@cuda
def test_small_mimo_end_to_end(write_config):
    """verify of a 6-layer MiMo-V2-Flash of the same head shapes, fp8 blocks and o_proj 16-bit: the pools,
    budget and boundary are measured, the decode step runs the labelled stand-in and is not judged."""
    from kvplan.commands.verify import verify as run_verify
    from test_verify_gpu import FAST, Quiet

    r = run_verify(str(write_config(SMALL_MIMO)), context=4096, gpu_util=0.3, progress=Quiet(), **FAST).result
    assert STAND_IN in r["forward"]["labels"]["attention"]
    assert r["verdict"]["decode_within"] is None and "ran a torch stand-in" in r["verdict"]["decode_reason"]
    assert r["verdict"]["capacity_confirmed"], r["verdict"]["capacity_reason"]
    terms = {row["term"]: row for row in r["terms"]}
    assert 0 <= terms["weights"]["measured_bytes"] - r["rank"]["arch_weights_bytes"] <= 2**21
    assert [g["tensor_shapes"][0][-1] for g in r["layout"]] == [192, 192]
    assert [g["tensor_shapes"][1][-1] for g in r["layout"]] == [128, 128]
