"""verify's forward pass on the CPU with tiny shapes, against the float64 reference (kvplan/gpu/reference.py: one
token at a time, contiguous caches, experts as a loop, MLA unabsorbed, DeltaNet as its recurrence, mxfp4 decoded
bit by bit). Paged caches with shuffled block tables and NaN in every unused slot, ragged prompts, prefill then
decode. Plus the pieces one by one, and the shapes of the real models against their published sizes."""

import math
import random

import pytest

from hub_configs import DEEPSEEK_V2_LITE, JAMBA, LLAMA3_8B, NEMOTRON_H_8B
from tiny_models import TINY

torch = pytest.importorskip("torch")

from kvplan.gpu import ffn  # noqa: E402
from kvplan.gpu import mixers  # noqa: E402
from kvplan.gpu import paged  # noqa: E402
from kvplan.gpu.caches import small_caches  # noqa: E402
from kvplan.gpu.deltanet import CHUNK, chunked_delta_rule  # noqa: E402
from kvplan.gpu.generate import decode, prefill  # noqa: E402
from kvplan.gpu.mamba import CHUNK as SSD_CHUNK, ssd_chunks  # noqa: E402
from kvplan.gpu.caches import state_elements  # noqa: E402
from kvplan.gpu.model import Runtime, Transformer  # noqa: E402
from kvplan.gpu.reference import Reference, decode_mxfp4  # noqa: E402
from kvplan.gpu.step import prefill_step, write_cache  # noqa: E402
from kvplan.gpu.weights import (dequantize_mxfp4, engine_layout, full_weights, join_shared_experts,  # noqa: E402
                                stack_rows)
from kvplan.model import parse_config  # noqa: E402
from kvplan.model.sources import resolve  # noqa: E402
from kvplan.verify.arch import architecture  # noqa: E402
from kvplan.verify.shards import WeightSpec, rank_weights, shard_slices, weight_bytes  # noqa: E402

GiB = 2**30
TOL = 5e-4


def tiny(name, tp=1):
    raw = TINY[name]
    return architecture(raw, parse_config(raw, name), tp)


def run_against_reference(arch, prompt_lens=(5, 13), steps=3, block=4, seed=0, stacked=False, built=None,
                          caches=None, tables=None, table_per_group=False):
    """Worst relative error (max |diff| / max |logit|) over the prompts' last logits and every decode step.
    `stacked`: the model's weights laid out as verify allocates them (weights.engine_layout: JOINT_ROWS pairs in one
    buffer each, shared experts joined to the routed ones), the reference reading the separate tensors; `built` (a
    list) receives the model. `caches` / `tables` ({group: rows}) replace the NaN-filled pools and the shuffled block
    tables; `table_per_group`: each pool its own shuffle of block ids (sparse MLA's latent and indexer pools)."""
    weights = full_weights(arch, seed)
    layout = engine_layout(dict(weights), join_shared=not arch.routing.on_input) if stacked else weights
    model = Transformer(arch, layout, Runtime("cpu"))
    if built is not None:
        built.append(model)
    blocks = 64
    model.caches = caches or small_caches(arch, blocks, block, len(prompt_lens), torch.float32)
    for cache in model.caches.values():
        if cache.kind == "state":
            cache.tensors[0].zero_()
    width = -(-(max(prompt_lens) + steps) // block)
    paged_groups = sorted({c.group for c in model.caches.values() if c.kind != "state"})
    if tables is None:
        tables = {}
        for n, group in enumerate(paged_groups):
            ids = list(range(blocks))
            random.Random(seed * 100 + n if table_per_group else seed).shuffle(ids)
            tables[group] = [ids[i * width:(i + 1) * width] for i in range(len(prompt_lens))]
    gen = torch.Generator().manual_seed(seed + 1)
    refs = [Reference(arch, weights) for _ in prompt_lens]
    worst = 0.0

    def err(got, want):
        return float((got.double() - want).abs().max() / want.abs().max())

    for i, n in enumerate(prompt_lens):
        prompt = torch.randint(0, arch.vocab, (n,), generator=gen)
        out = prefill(model, prompt[None], {g: [rows[i]] for g, rows in tables.items()}, torch.tensor([i]))
        for token in prompt.tolist():
            want = refs[i].step(token)
        worst = max(worst, err(out[0], want))
    stacked_tables = {g: torch.tensor(rows, dtype=torch.int32) for g, rows in tables.items()}
    positions = torch.tensor(prompt_lens)
    for _ in range(steps):
        tokens = torch.randint(0, arch.vocab, (len(prompt_lens),), generator=gen)
        out = decode(model, tokens, positions, stacked_tables, torch.arange(len(prompt_lens)))
        for i in range(len(prompt_lens)):
            worst = max(worst, err(out[i], refs[i].step(int(tokens[i]))))
        positions = positions + 1
    return worst


@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_matches_the_reference(name):
    # float32 against float64: rounding stays below 1.2e-4 (the DeltaNet chain is the worst); a rotary table off by
    # 1% already gives 9e-3, a wrong layer ~1e-1
    assert run_against_reference(tiny(name)) < TOL


def test_stack_rows_keeps_names_values_and_one_buffer_per_pair():
    from kvplan.gpu.gemm import decode_linears
    from kvplan.gpu.ops import stacked_rows

    w = full_weights(tiny("qwen3_next"), 0)
    s = stack_rows(dict(w))  # a copy of the dict: w keeps the separate tensors to compare with
    assert list(s) == list(w) and all(torch.equal(s[k], w[k]) for k in w)
    qkvz, ba = s["layers.0.qkvz"], s["layers.0.ba"]
    both = stacked_rows(qkvz, ba)
    rows = qkvz.shape[0] + ba.shape[0]
    assert both.shape == (rows + (-rows % 8), qkvz.shape[1]) and torch.equal(both[qkvz.shape[0]:rows], ba)
    assert not both[rows:].any()  # the zero rows that keep the joint output's rows 16-byte aligned
    assert stacked_rows(w["layers.0.qkvz"], w["layers.0.ba"]) is None  # separate tensors: two matmuls
    shapes = decode_linears(s, False)  # the stacked pair is one weight to time, its parts are not timed alone
    assert tuple(both.shape) in shapes and all(t is not ba for ts in shapes.values() for t in ts)
    router, gate = s["layers.0.router"], s["layers.0.shared_gate"]  # E + 1 rows: padded to a multiple of 8
    joint = stacked_rows(router, gate)
    assert joint.shape[0] % 8 == 0 and joint.shape[0] - (router.shape[0] + gate.shape[0]) in range(1, 8)
    x = torch.randn(3, router.shape[1], generator=torch.Generator().manual_seed(0))
    from kvplan.gpu.ops import Matmul

    logits, g = Matmul().pair(x, router, gate, joint)
    # one matmul over the stacked rows sums in another order than two: float32 rounding, not exact equality
    # (a near-zero output missed allclose's default atol of 1e-8 in one CI run)
    assert torch.allclose(logits, x @ router.T, rtol=1e-5, atol=1e-5)
    assert torch.allclose(g, x @ gate.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, kinds", [("deepseek_v2", {"MLAttention", "shared x1"}),
                                         ("deepseek_shared2", {"MLAttention", "shared x2"}),
                                         ("deepseek_q_lora", {"MLAttention"}),
                                         ("deepseek_v3_fp8", {"MLAttention", "shared x1"}),
                                         ("qwen3_next", {"GatedDeltaNet", "router+gate", "shared x1"}),
                                         ("mixtral", set()), ("llama", set())])
def test_engine_layout_runs_one_matmul_per_pair_and_matches_the_reference(name, kinds):
    """verify allocates DeepSeek's q (or q_a) + kv_a, DeltaNet's qkvz + ba and the router + Qwen's shared-expert gate
    in one buffer each, and each shared expert as S more routed experts (weights.engine_layout); the layers then run
    one matmul for each pair and the shared expert inside the routed experts' computation, against the reference over
    the separate tensors. `kinds`: the layer parts that must find their layout (Llama and Mixtral have none)."""
    built: list = []
    if name == "deepseek_shared2":  # two shared experts of the routed width, as DeepSeek-V2-Lite has
        raw = {**TINY["deepseek_v2"], "n_shared_experts": 2}
        arch = architecture(raw, parse_config(raw, name), 1)
    else:
        arch = tiny(name)
    assert run_against_reference(arch, prompt_lens=(6, 3), steps=2, stacked=True, built=built) < TOL
    found = set()
    for block in built[0].blocks:
        if getattr(block.mixer, "joint", None) is not None:
            found.add(type(block.mixer).__name__)
        if getattr(block.ffn, "router_gate", None) is not None:
            found.add("router+gate")
        if getattr(block.ffn, "joined", 0):
            assert block.ffn.shared is None
            found.add(f"shared x{block.ffn.joined}")
    assert found == kinds


@pytest.mark.parametrize("shared", [1, 3])
def test_join_shared_experts_keeps_the_function_and_the_bytes(shared):
    """The shared expert's gate / up rows and down columns, cut into `shared` experts of the routed experts' width:
    the sum of those experts' gated MLPs is the shared MLP (checked by hand, not through the model)."""
    gen = torch.Generator().manual_seed(shared)
    e, inter, hidden = 4, 8, 16
    w = {"layers.0.w13": torch.randn(e, 2 * inter, hidden, generator=gen),
         "layers.0.w2": torch.randn(e, hidden, inter, generator=gen),
         "layers.0.shared.gate_up": torch.randn(2 * shared * inter, hidden, generator=gen),
         "layers.0.shared.down": torch.randn(hidden, shared * inter, generator=gen),
         "layers.0.router": torch.randn(e, hidden)}
    before = dict(w)
    out = join_shared_experts(w)
    assert out is w and set(w) == {"layers.0.w13", "layers.0.w2", "layers.0.router"}
    assert (w["layers.0.w13"].shape == (e + shared, 2 * inter, hidden)
            and w["layers.0.w2"].shape == (e + shared, hidden, inter))
    assert (torch.equal(w["layers.0.w13"][:e], before["layers.0.w13"])
            and torch.equal(w["layers.0.w2"][:e], before["layers.0.w2"]))
    assert sum(t.numel() for t in w.values()) == sum(t.numel() for t in before.values())
    x = torch.randn(hidden, generator=gen, dtype=torch.float32)
    gate_up = before["layers.0.shared.gate_up"] @ x
    want = before["layers.0.shared.down"] @ (torch.nn.functional.silu(gate_up[:shared * inter])
                                             * gate_up[shared * inter:])
    got = sum(w["layers.0.w2"][s] @ (torch.nn.functional.silu(w["layers.0.w13"][s, :inter] @ x)
                                     * (w["layers.0.w13"][s, inter:] @ x))
              for s in range(e, e + shared))
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-5)
    odd = dict(before, **{"layers.0.shared.down": torch.randn(hidden, 12),
                          "layers.0.shared.gate_up": torch.randn(24, hidden)})
    assert set(join_shared_experts(odd)) == set(before)  # 12 is not a multiple of 8: left as its own MLP


def test_allocation_joins_shared_experts_at_once_with_the_same_bytes():
    """allocate_weights makes the routed experts' tensors E + S experts long from the start (no replaced tensors left
    behind in torch's cache) and no shared.* tensors; the bytes are the spec's (DeepSeek-V2-Lite: S = 2)."""
    from kvplan.gpu.weights import allocate_weights

    arch = architecture(DEEPSEEK_V2_LITE, parse_config(DEEPSEEK_V2_LITE, "deepseek-ai/DeepSeek-V2-Lite"), 1)
    w = allocate_weights(arch, "meta", fill=False)
    assert not any(".shared." in k for k in w)
    assert w["layers.1.w13"].shape == (66, 2 * 1408, 2048) and w["layers.1.w2"].shape == (66, 2048, 1408)
    assert "layers.0.w13" not in w  # the first layer is dense
    assert sum(t.numel() * t.element_size() for t in w.values()) == weight_bytes(arch)


@pytest.mark.parametrize("name", ["mixtral", "deepseek_v2", "gpt_oss", "qwen3_next", "deepseek_v3_fp8"])
@pytest.mark.parametrize("factor", [0, 10**6])  # 0: every call gathers each pair's expert; 10**6: grouped GEMMs
def test_both_moe_forms_match_the_reference(name, factor, monkeypatch):
    monkeypatch.setattr(ffn, "SLOT_FACTOR", factor)
    assert run_against_reference(tiny(name), prompt_lens=(6,), steps=2) < TOL


def test_grouped_rows_in_float32_or_float64_keep_their_precision():
    """The GPU's float32 / float64 grouped GEMM (torch._grouped_mm takes 16-bit rows there) gathers each row's weight:
    the product of each group's rows by hand, an empty group included."""
    from kvplan.gpu.ffn import _gathered_mm

    g = torch.Generator().manual_seed(5)
    x, w = torch.randn(9, 6, dtype=torch.float64, generator=g), torch.randn(4, 3, 6, dtype=torch.float64, generator=g)
    ends = torch.tensor([2, 2, 7, 9], dtype=torch.int32)  # group 1 empty
    want = torch.cat([x[0:2] @ w[0].T, x[2:7] @ w[2].T, x[7:9] @ w[3].T])
    assert torch.allclose(_gathered_mm(x, w, ends), want, rtol=0, atol=1e-12)
    assert _gathered_mm(x.float(), w.float(), ends).dtype == torch.float32


def test_long_prompts_cross_chunks_and_windows():
    # 150 tokens: three DeltaNet chunks of 64; the windowed layers (8 tokens) drop most of the prompt
    assert run_against_reference(tiny("qwen3_next"), prompt_lens=(150, 70), steps=2, block=8) < TOL
    assert run_against_reference(tiny("gemma3"), prompt_lens=(30, 17), steps=2, block=8) < TOL


@pytest.mark.parametrize("n,window,block", [(300, 16, 128), (45, 8, 4), (45, 8, 16), (20, 19, 4), (9, 30, 4)])
def test_windowed_prefill_attends_the_last_window_keys(n, window, block, monkeypatch):
    # query blocks of `block` tokens each over their own keys (or, where blocks would cost more, one L x L mask)
    monkeypatch.setattr(mixers, "WINDOW_BLOCK_MIN", block)
    gen = torch.Generator().manual_seed(7)
    r, heads, kv_heads = 2, 4, 2
    q = torch.randn(r, heads, n, 8, generator=gen, dtype=torch.float64)
    k = torch.randn(r, kv_heads, n, 8, generator=gen, dtype=torch.float64)
    v = torch.randn(r, kv_heads, n, 6, generator=gen, dtype=torch.float64)
    out = mixers.windowed_sdpa(q, k, v, window, 0.3)
    for b in range(r):
        for h in range(heads):
            for t in range(n):
                first = max(0, t - window + 1)
                p = torch.softmax(0.3 * k[b, h // 2, first:t + 1] @ q[b, h, t], dim=0)
                assert torch.allclose(out[b, h, t], p @ v[b, h // 2, first:t + 1], atol=1e-12)


def test_windowed_prefill_in_blocks_matches_the_reference(monkeypatch):
    monkeypatch.setattr(mixers, "WINDOW_BLOCK_MIN", 4)  # gemma3's 8-token window: 30 tokens in blocks of 8
    assert run_against_reference(tiny("gemma3"), prompt_lens=(30, 17), steps=2, block=8) < TOL


@pytest.mark.parametrize("n", [2 * CHUNK + 7, 8, 1])  # several chunks; one short chunk (the profile run's 8)
def test_chunked_delta_rule_is_the_recurrence(n):
    gen = torch.Generator().manual_seed(4)
    r, h, dk, dv = 2, 3, 5, 4
    q, k = torch.randn(r, n, h, dk, generator=gen), torch.randn(r, n, h, dk, generator=gen)
    k = k / k.norm(dim=-1, keepdim=True)
    v = torch.randn(r, n, h, dv, generator=gen)
    g = -torch.rand(r, n, h, generator=gen)
    beta = torch.rand(r, n, h, generator=gen)
    s0 = torch.randn(r, h, dk, dv, generator=gen)
    out, s = chunked_delta_rule(q, k, v, g, beta, s0.clone())
    state = s0.double().clone()
    for t in range(n):  # S <- a S;  S <- S + k (beta (v - S^T k))^T;  o = S^T q
        for b in range(r):
            for head in range(h):
                st = state[b, head] * math.exp(float(g[b, t, head]))
                kk, vv = k[b, t, head].double(), v[b, t, head].double()
                st = st + torch.outer(kk, float(beta[b, t, head]) * (vv - st.T @ kk))
                state[b, head] = st
                assert torch.allclose(out[b, t, head].double(), st.T @ q[b, t, head].double(), atol=1e-4)
    assert torch.allclose(s.double(), state, atol=1e-4)


@pytest.mark.parametrize("n,chunk", [(2 * SSD_CHUNK + 7, SSD_CHUNK), (53, 16), (16, 16), (1, 16)])
def test_ssd_chunks_is_the_recurrence(n, chunk):
    """The chunked Mamba-2 state space, from a non-zero state, against its token recurrence in float64."""
    gen = torch.Generator().manual_seed(5)
    r, h, g, p, s_dim = 2, 4, 2, 3, 5
    x = torch.randn(r, n, h, p, generator=gen)
    dt = torch.rand(r, n, h, generator=gen) * 0.5
    a = -torch.rand(h, generator=gen) * 2
    b, c = torch.randn(r, n, g, s_dim, generator=gen), torch.randn(r, n, g, s_dim, generator=gen)
    s0 = torch.randn(r, h, p, s_dim, generator=gen)
    y, s = ssd_chunks(x, dt, a, b, c, s0.clone(), chunk)
    state = s0.double().clone()
    for t in range(n):  # S <- exp(dt a) S + dt x B^T;  y = S C
        for head in range(h):
            grp = head // (h // g)
            decay = torch.exp(dt[:, t, head].double() * float(a[head]))[:, None, None]
            state[:, head] = decay * state[:, head] + (dt[:, t, head, None, None].double() * x[:, t, head, :, None]
                                                       * b[:, t, grp, None, :])
            want = (state[:, head] @ c[:, t, grp, :, None].double())[..., 0]
            assert torch.allclose(y[:, t, head].double(), want, atol=1e-4), (t, head)
    assert torch.allclose(s.double(), state, atol=1e-4)


def test_mamba_gated_norm_in_row_slices_and_the_profile_run(monkeypatch):
    """The gated norm taken a few rows at a time gives the reference's logits; the profile run (no caches: vLLM
    skips the convolution and the state space then) gives finite logits of every sequence."""
    from kvplan.gpu import mamba

    monkeypatch.setattr(mamba, "NORM_ROWS", 3)
    arch = tiny("nemotron_h")
    built: list = []
    assert run_against_reference(arch, prompt_lens=(7, 13), steps=2, built=built) < TOL
    # the prefill said which state space ran: the torch chunked form on the CPU, with the kernels' reason
    assert built[0].rt.labels["mamba prefill"] == f"{mamba.PREFILL_TORCH_LABEL} (the kernels refused: not on a GPU)"
    model = Transformer(arch, full_weights(arch, 1), Runtime("cpu"))
    logits = prefill(model, torch.randint(0, arch.vocab, (3, 8)))
    assert logits.shape == (3, arch.vocab) and bool(torch.isfinite(logits).all())


def test_nemotron_h_blocks_and_state_slots():
    """nvidia/Nemotron-H-8B-Base-8K: its pattern's blocks by hand, the mixers' cache places in spec.layers, the
    forward's tensors adding up to the published 8,100,852,736 parameters (tests/test_params.py), and a state
    slot of the size the cache layout gives it."""
    spec = parse_config(NEMOTRON_H_8B, "nemotron-h-8b")
    arch = architecture(NEMOTRON_H_8B, spec, 1)
    pattern = NEMOTRON_H_8B["hybrid_override_pattern"]
    assert [layer.mixer for layer in arch.layers] == [{"M": "mamba", "*": "attention", "-": "none"}[k] for k in pattern]
    assert [layer.ffn for layer in arch.layers] == ["dense" if k == "-" else "none" for k in pattern]
    caches = [layer.cache for layer in arch.layers if layer.cache is not None]
    assert caches == list(range(len(spec.layers))) == list(range(28))  # 24 Mamba-2 + 4 attention blocks
    assert arch.rope_dim == 0 and arch.activation == "relu2" and not arch.gated_mlp
    assert sum(s.elements(1) for s in rank_weights(arch)) == 8_100_852_736
    for tp in (1, 2, 4, 8):
        sharded = architecture(NEMOTRON_H_8B, spec, tp)
        assert state_elements(sharded) == spec.linear_layers[0].state_elements_per_sequence(tp)
    assert state_elements(arch) == 3 * (8192 + 2 * 8 * 128) + 128 * 64 * 128


def test_jamba_layers_and_state_slots():
    """Jamba-v0.1's shapes: one attention layer in eight (offset 4) without RoPE, Mamba-1 elsewhere, MoE on odd
    layers routed by softmax top-2 without renormalising (vLLM jamba.py JambaMoE: renormalize=False)."""
    spec = parse_config(JAMBA, "jamba")
    arch = architecture(JAMBA, spec, 1)
    assert [layer.mixer for layer in arch.layers] == ["attention" if i % 8 == 4 else "mamba1" for i in range(32)]
    assert [layer.ffn for layer in arch.layers] == ["moe" if i % 2 else "dense" for i in range(32)]
    assert arch.rope_dim == 0 and not arch.routing.renormalize and arch.routing.scoring == "softmax"
    assert (arch.mamba1_inner, arch.ssm_state, arch.mamba_dt_rank, arch.conv_kernel) == (8192, 16, 256, 4)
    mixer = {s.name: s.elements(1) for s in rank_weights(arch) if s.name.startswith("layers.0.")}
    mamba = {k: v for k, v in mixer.items() if not k.endswith(("attn_norm", "ffn_norm", "gate_up", "down"))}
    # in_proj 2 x 8192 x 4096, conv 8192 x 4 + bias, x_proj (256 + 2 x 16) x 8192, norms 256 + 16 + 16,
    # dt_proj 8192 x 256 + bias, A 8192 x 16, D 8192, out_proj 4096 x 8192
    assert sum(mamba.values()) == 105_308_448
    for tp in (1, 2, 4, 8):
        sharded = architecture(JAMBA, spec, tp)
        assert state_elements(sharded) == spec.linear_layers[0].state_elements_per_sequence(tp)
        assert sharded.conv_dim_rank == 8192 // tp
    assert state_elements(arch) == 3 * 8192 + 8192 * 16


def test_verify_refuses_the_mamba_forms_it_does_not_run():
    from kvplan.errors import KvplanError

    falcon_h1 = {"model_type": "falcon_h1", "num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "intermediate_size": 512, "vocab_size": 1000, "mamba_n_heads": 8,
                 "mamba_d_head": 32, "mamba_d_state": 16, "mamba_n_groups": 1, "mamba_d_conv": 4}
    with pytest.raises(KvplanError, match="side by side in every layer \\(Falcon-H1\\); verify's layers hold one"):
        architecture(falcon_h1, parse_config(falcon_h1, "falcon-h1"), 1)
    lfm2 = {"model_type": "lfm2", "num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4,
            "num_key_value_heads": 2, "vocab_size": 1000, "conv_L_cache": 3, "layer_types": ["conv", "full_attention"]}
    with pytest.raises(KvplanError, match="has shortconv layers; verify's forward pass has gated DeltaNet"):
        architecture(lfm2, parse_config(lfm2, "lfm2"), 1)
    biased = {**JAMBA, "mamba_proj_bias": True}
    with pytest.raises(KvplanError, match="biases on its Mamba projections \\(mamba_proj_bias\\); verify's Mamba-1"):
        architecture(biased, parse_config(biased, "jamba-biased"), 1)
    moe = {**NEMOTRON_H_8B, "hybrid_override_pattern": "M*E" * 2, "num_hidden_layers": 6, "n_routed_experts": 8,
           "num_experts_per_tok": 2, "moe_intermediate_size": 256, "moe_latent_size": 1024}
    with pytest.raises(KvplanError, match="runs its experts in a latent space \\(moe_latent_size\\)"):
        architecture(moe, parse_config(moe, "nemotron-moe"), 1)
    with pytest.raises(KvplanError, match="n_groups \\(8\\) is not divisible by tp 16"):
        architecture(NEMOTRON_H_8B, parse_config(NEMOTRON_H_8B, "nemotron-h-8b"), 16)


@pytest.mark.parametrize("name, tp", [("meta-llama/Llama-4-Scout-17B-16E-Instruct", 2),
                                      ("meta-llama/Llama-4-Maverick-17B-128E-Instruct", 8),
                                      ("zai-org/GLM-4.7-Flash", 1), ("deepseek-ai/DeepSeek-V2-Lite", 1),
                                      ("Qwen/Qwen3-30B-A3B", 2), ("mistralai/Mixtral-8x7B-v0.1", 2)])
def test_moe_ranks_hold_the_estimates_weights(name, tp):
    """Every tensor the estimate counts, verify allocates (vision towers aside): Llama 4's shared expert in every
    MoE layer and Maverick's dense layers of intermediate_size_mlp (16384, not the experts' 8192), GLM's
    float32 correction bias. The whole model's bytes from tp ranks' shards (replicated tensors tp times)."""
    raw: list = []
    spec = resolve(name, raw_out=raw)
    arch = architecture(raw[0], spec, tp)
    estimate = sum(g.bytes for g in spec.params if g.name != "vision")
    replicated = sum(s.elements(tp) * (4 if s.dtype == "fp32" else 2) for s in rank_weights(arch) if s.axis is None)
    assert weight_bytes(arch) * tp - (tp - 1) * replicated == estimate


def test_llama4_routes_top1_on_the_input_with_its_shared_expert_apart():
    """vLLM's Llama4MoE: the router's sigmoid scales the routed expert's input, the shared expert reads x as is,
    so verify keeps it an MLP of its own (joined to the routed experts it would read the scaled input)."""
    from kvplan.gpu.weights import allocate_weights

    arch = tiny("llama4")
    assert arch.routing.on_input and arch.shared_intermediate == 32 and arch.intermediate == 96
    w = allocate_weights(arch, "meta", fill=False)
    assert tuple(w["layers.1.w13"].shape) == (4, 64, 64) and "layers.1.shared.gate_up" in w
    assert tuple(w["layers.0.mlp.gate_up"].shape) == (192, 64)
    plain = tiny("mixtral")
    assert not plain.routing.on_input


def test_minimax_m2_routes_on_float32_logits_from_bf16_activations(monkeypatch):
    """MiniMax-M2's router as verify allocates it: float32 in bf16 weights (allocate_weights), so its logits are
    float32 from x in float32, as vLLM's GateLinear(params_dtype=float32, out_dtype=float32); the experts still run
    in bf16. The bf16 forward stays near the float64 reference (decisive routing: the router x 2, as on the GPU)."""
    from kvplan.gpu.weights import allocate_weights

    arch = tiny("minimax_m2")
    allocated = allocate_weights(arch, "meta", fill=False)
    assert allocated["layers.0.router"].dtype == torch.float32 and allocated["layers.0.w13"].dtype == torch.bfloat16
    assert tuple(allocated["layers.0.q_norm"].shape) == (64,) and tuple(allocated["layers.0.k_norm"].shape) == (32,)
    full = full_weights(arch, 3)
    for name in [k for k in full if k.endswith(".router")]:
        full[name] = full[name] * 2
    weights = {k: v if k.endswith(".router") else v.bfloat16() for k, v in full.items()}
    seen = []
    route = ffn.MoE.route
    monkeypatch.setattr(ffn.MoE, "route", lambda self, logits, gate=None: seen.append(logits.dtype)
                        or route(self, logits, gate))
    model = Transformer(arch, engine_layout(dict(weights)), Runtime("cpu"))
    model.caches = small_caches(arch, 16, 4, 1, torch.bfloat16)
    prompt = [3, 17, 5, 99, 42, 7]
    out = prefill(model, torch.tensor([prompt]), {c.group: [list(range(16))] for c in model.caches.values()},
                  torch.tensor([0]))
    ref = Reference(arch, {k: v.double() if v.dtype == torch.bfloat16 else v for k, v in weights.items()})
    for token in prompt:
        want = ref.step(token)
    assert seen == [torch.float32] * 2 and out.dtype == torch.bfloat16
    assert float((out[0].double() - want).abs().max() / want.abs().max()) < 0.05


def test_fp8_checkpoints_per_tensor_run_and_the_others_are_refused():
    """Devstral-Small-2 (one scale a matrix, the bundled spec) allocates its attention and MLP matrices in e4m3:
    this rank's bytes are the estimate's language model but for its 280 float32 scales (40 layers x q, k, v, o,
    gate, up, down, which verify holds as one constant); the Pixtral tower verify holds as its bytes beside it
    (gpu/rank.py). Per-tensor fp8 experts and other formats are refused in one line."""
    from kvplan.errors import KvplanError

    raw: list = []
    spec = resolve("mistralai/Devstral-Small-2-24B-Instruct-2512", raw_out=raw)
    arch = architecture(raw[0], spec, 1)
    assert arch.linear_format == "fp8"
    stored = {s.name.rsplit(".", 1)[-1]: s.dtype for s in rank_weights(arch)}
    assert {k: stored[k] for k in ("qkv", "o", "gate_up", "down", "embed", "lm_head", "attn_norm")} == {
        "qkv": "fp8", "o": "fp8", "gate_up": "fp8", "down": "fp8", "embed": "model", "lm_head": "model",
        "attn_norm": "model"}
    assert sum(g.bytes for g in spec.params if g.name != "vision") - weight_bytes(arch) == 280 * 4
    moe = {**TINY["mixtral"], "quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic"}}
    with pytest.raises(KvplanError, match="its routed-expert weights in fp8"):
        architecture(moe, parse_config(moe, "mixtral-fp8"), 1)
    awq = {**TINY["llama"], "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}
    with pytest.raises(KvplanError, match="stores weights as int4-awq; .* fp8 linears \\(one scale a matrix"):
        architecture(awq, parse_config(awq, "llama-awq"), 1)


def test_block_scaled_fp8_checkpoints_hold_the_estimates_bytes_and_shard_by_blocks():
    """DeepSeek-V3 (every layer matrix e4m3, a float32 scale per 128 x 128 block): at tp 1 the tensors verify
    allocates are exactly the estimate's bytes (kvplan/model/params.py counts the scales of each whole matrix); at
    tp 8 each rank's scales cover its share of the weight (by hand: q_b 16 heads x 192 = 3,072 rows = 24 blocks,
    7,168 columns = 56, the experts' 2,048 / 8 = 256 intermediate rows = 2 blocks per projection), and a tp that
    would cut a block is refused as vLLM refuses it."""
    from kvplan.errors import KvplanError

    raw: list = []
    spec = resolve("deepseek-ai/DeepSeek-V3", raw_out=raw)
    one = architecture(raw[0], spec, 1)
    assert (one.linear_format, one.experts_format) == ("fp8_block", "fp8_block")
    assert weight_bytes(one) == sum(g.bytes for g in spec.params)
    arch = architecture(raw[0], spec, 8)
    specs = {s.name: s for s in rank_weights(arch)}
    shapes = {k: specs[f"layers.5.{k}"].shape(8) for k in ("q_a", "q_a_scale", "q_b", "q_b_scale", "kv_b_scale",
                                                            "o_scale", "w13_scale", "w2_scale", "shared.down_scale")}
    assert shapes == {"q_a": (1536, 7168), "q_a_scale": (12, 56), "q_b": (3072, 1536), "q_b_scale": (24, 12),
                      "kv_b_scale": (32, 4), "o_scale": (56, 16), "w13_scale": (256, 4, 56),
                      "w2_scale": (256, 56, 2), "shared.down_scale": (56, 2)}
    for name in ("layers.5.q_b", "layers.5.o", "layers.5.w13", "layers.0.mlp.down"):
        weight, scale = specs[name], specs[name + "_scale"]
        for rank in (0, 3, 7):
            assert [(a * 128, b * 128) for a, b in shard_slices(scale, rank, 8)] == shard_slices(weight, rank, 8)
    with pytest.raises(KvplanError, match="layers.0.mlp.gate_up holds 576 rows or columns per rank at tp 32"):
        rank_weights(architecture(raw[0], spec, 32))
    blocks64 = {**TINY["llama"], "quantization_config": {"quant_method": "fp8", "weight_block_size": [64, 64]}}
    with pytest.raises(KvplanError, match="in 64x64 blocks .* take 128x128 blocks"):
        architecture(blocks64, parse_config(blocks64, "llama-fp8-64"), 1)
    deltanet = {**TINY["qwen3_next"], "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}
    with pytest.raises(KvplanError, match="fp8 weights in linear layers"):
        architecture(deltanet, parse_config(deltanet, "qwen3-next-fp8"), 1)


def test_the_fp8_forward_labels_its_linears_and_hands_e4m3_rows_to_them():
    from kvplan.gpu import fp8

    arch = tiny("llama_fp8")
    model = Transformer(arch, full_weights(arch, 0), Runtime("cpu"))
    assert model.rt.labels["fp8 linears"] == fp8.LABEL
    block = model.blocks[0]
    x = torch.randn(3, arch.hidden, generator=torch.Generator().manual_seed(0))
    _, n = block.add_norm(x, None, "attn_norm", block.fp8_inputs)
    assert n.dtype == fp8.E4M3 and block.w["qkv"].dtype == fp8.E4M3
    assert model.rt.mm(n, block.w["qkv"]).dtype == torch.float32  # the activations' dtype, not bf16
    assert "fp8 linears" not in Transformer(tiny("llama"), full_weights(tiny("llama"), 0), Runtime("cpu")).rt.labels


def test_mxfp4_dequantisation_matches_the_bitwise_decoding():
    gen = torch.Generator().manual_seed(5)
    blocks = torch.randint(0, 256, (3, 4, 32), dtype=torch.uint8, generator=gen)
    scales = torch.randint(120, 130, (3, 4, 2), dtype=torch.uint8, generator=gen)
    assert torch.equal(dequantize_mxfp4(blocks, scales, torch.float32).double(), decode_mxfp4(blocks, scales))
    # by hand: byte 0x2F holds 0xF (-6) then 0x2 (1.0); scale byte 128 is 2^1
    one = dequantize_mxfp4(torch.tensor([[[0x2F] + [0] * 15]], dtype=torch.uint8),
                           torch.tensor([[[128]]], dtype=torch.uint8), torch.float32)
    assert one[0, 0, :2].tolist() == [-12.0, 2.0]


def test_prefill_slots_skip_what_a_window_does_not_keep():
    step = prefill_step(1, 10, "cpu", {"w": [[7, 3, 9]], "f": [[1, 2, 5]]}, {"w": 4, "f": 4}, {"w": 4, "f": None})
    # window 4 of 10 tokens: the kept blocks start at block (10 - 4) // 4 = 1; tokens 0-3 are not stored
    assert step.slots["w"].tolist() == [-1] * 4 + [12, 13, 14, 15, 36, 37]
    assert step.slots["f"].tolist() == [4, 5, 6, 7, 8, 9, 10, 11, 20, 21]


def test_write_cache_masks_and_scales_fp8():
    cache = torch.zeros(2, 4, 1, 2, dtype=torch.float8_e4m3fn)
    values = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]])
    write_cache(cache, values, torch.tensor([-1, 6]), scale=0.5, masked=True)
    flat = cache.view(-1, 1, 2).float()
    assert flat[6].tolist() == [[6.0, 8.0]] and float(flat.abs().sum()) == 14.0  # stored as value / scale


def test_torch_paged_attention_chunks_give_the_same_output(monkeypatch):
    gen = torch.Generator().manual_seed(6)
    k, v = torch.randn(20, 4, 2, 8, generator=gen), torch.randn(20, 4, 2, 8, generator=gen)
    q = torch.randn(5, 4, 8, generator=gen)
    table = torch.randperm(20, generator=gen)[:15].view(5, 3).to(torch.int32)
    lens = torch.tensor([12, 1, 7, 9, 11], dtype=torch.int32)
    whole = paged.torch_paged_attention(q, k, v, table, lens, 5, 0.3)
    monkeypatch.setattr(paged, "GATHER_LIMIT", 1)
    assert torch.allclose(paged.torch_paged_attention(q, k, v, table, lens, 5, 0.3), whole, atol=1e-6)


# ---- shapes of the real models --------------------------------------------------------------------------------

@pytest.mark.parametrize("model,tp", [("meta-llama/Llama-3.1-8B-Instruct", 1), ("Qwen/Qwen3-14B", 1),
                                      ("meta-llama/Llama-3.1-70B-Instruct", 2),
                                      ("meta-llama/Llama-3.1-70B-Instruct", 8),
                                      ("mistralai/Mixtral-8x7B-v0.1", 2), ("deepseek-ai/DeepSeek-V2-Lite", 1),
                                      ("meta-llama/Llama-3.2-1B-Instruct", 1)])
def test_rank_weights_are_the_checkpoint_share(model, tp):
    """The forward pass's tensors of one rank add up to the checkpoint's bytes / tp (the bundled specs' exact
    parameter counts, cited in model_specs/), within the vocabulary padding vLLM adds (a multiple of 64)."""
    raw = []
    spec = resolve(model, raw_out=raw)
    arch = architecture(raw[0], spec, tp)
    padding = (arch.padded_vocab - arch.vocab) * arch.hidden * 2 * 2 // tp
    replicated = sum(s.elements(1) * 2 for s in rank_weights(arch) if s.axis is None)  # norms, routers: on every rank
    assert abs(weight_bytes(arch) - spec.weights.bytes / tp) <= padding + replicated * (tp - 1) / tp
    assert replicated < 0.005 * spec.weights.bytes  # MLA kv_a projections and routers are the largest


def test_shard_slices_by_hand():
    # fused QKV of 4 query heads and 2 KV heads of dim 8 at tp 4: query heads one per rank, each KV head on 2 ranks
    qkv = WeightSpec("qkv", (64, 16), "model", 0, ((32, 4), (16, 2), (16, 2)))
    assert qkv.shape(4) == (24, 16)  # 8 query rows + one 8-row K head + one 8-row V head
    assert shard_slices(qkv, 0, 4) == [(0, 8), (32, 40), (48, 56)]
    assert shard_slices(qkv, 3, 4) == [(24, 32), (40, 48), (56, 64)]
    down = WeightSpec("down", (16, 96), "model", 1, ((96, 96),))
    assert down.shape(2) == (16, 48) and shard_slices(down, 1, 2) == [(48, 96)]


def test_architecture_reads_the_config():
    a = architecture(LLAMA3_8B, parse_config(LLAMA3_8B, "llama"), 2)
    assert (a.heads_rank, a.kv_heads_rank, a.head_dim, a.vocab_rank) == (16, 4, 128, 64128)
    assert {layer.mixer for layer in a.layers} == {"attention"} and not a.experts
    d = architecture(DEEPSEEK_V2_LITE, parse_config(DEEPSEEK_V2_LITE, "dsv2"), 1)
    assert (d.kv_lora_rank, d.qk_rope_dim, d.v_head_dim, d.experts, d.top_k) == (512, 64, 128, 64, 6)
    assert [layer.ffn for layer in d.layers[:2]] == ["dense", "moe"] and not d.routing.renormalize
    assert d.shared_intermediate == 2 * 1408


def test_no_usable_kernel_is_one_clear_error():
    """Where the bundled kernel cannot run (no NVRTC, no CUDA device: this CPU machine), verify stops with one
    sentence instead of timing something else."""
    from kvplan.errors import KvplanError
    from kvplan.kernels import kernel_unavailable_reason

    if kernel_unavailable_reason() is None:
        pytest.skip("the kernel can run here")
    with pytest.raises(KvplanError, match=r"^kvplan verify times decode with its bundled CUDA kernel, which cannot "
                                          r"run here \(.+\); pip install 'kvplan\[gpu\]'"):
        paged.PagedAttention("cuda")


def test_hybrid_block_size_is_read_as_kernel_pages():
    """Qwen3-Next's attention blocks of 544 tokens (raised to the DeltaNet state's page) are read by the kernel as
    17 blocks of 32: the same attention output as over the 544-token pages, NaN in unused slots staying unread."""
    g = torch.Generator().manual_seed(7)
    blocks, bs, kv_heads, dim = 5, 544, 2, 64
    k = torch.full((blocks, bs, kv_heads, dim), float("nan"))
    v = torch.full((blocks, bs, kv_heads, dim), float("nan"))
    lens = torch.tensor([700, 90, 1088])
    table = torch.tensor([[3, 1], [4, 0], [0, 2]], dtype=torch.int32)
    for b, n in enumerate(lens.tolist()):
        for t in range(n):
            k[table[b, t // bs], t % bs] = torch.randn(kv_heads, dim, generator=g)
            v[table[b, t // bs], t % bs] = torch.randn(kv_heads, dim, generator=g)
    q = torch.randn(3, 8, dim, generator=g)
    k2, v2, t2 = paged.as_kernel_pages(k, v, table, (8, 16, 32, 64, 128))
    assert k2.shape == (blocks * 17, 32, kv_heads, dim) and t2.shape == (3, 2 * 17)
    assert t2[0, :3].tolist() == [51, 52, 53] and t2[0, 17].item() == 17
    want = paged.torch_paged_attention(q, k, v, table, lens, None, 0.125)
    got = paged.torch_paged_attention(q, k2, v2, t2, lens, None, 0.125)
    assert torch.isfinite(got).all() and torch.allclose(got, want, atol=1e-6)
    with pytest.raises(Exception, match="block size 100 is not a multiple"):
        paged.as_kernel_pages(k[:, :100], v[:, :100], table, (8, 16, 32, 64, 128))


def test_matmul_runs_each_kernel_form_through_its_own_plans():
    """A (shape, rows) whose chosen form is one of the bundled kernels' runs that family's plan for the shape (the
    skinny kernel, the streaming GEMV in order, rotated or rows owned); any other runs F.linear; a bias is added
    either way."""
    from kvplan.gpu.ops import MM_FORMS, Matmul

    class Plan:
        def __init__(self, name):
            self.name, self.calls = name, 0

        def run(self, x, w):
            self.calls += 1
            return x @ w.t()

    mm, w, bias = Matmul(), torch.randn(6, 4), torch.randn(6)
    plans = {form: Plan(form) for form in MM_FORMS[2:]}
    for form, plan in plans.items():
        mm.kernel_plans(form)[(6, 4)] = plan
    kinds = range(1, len(plans) + 1)
    for rows, form in zip(kinds, MM_FORMS[2:]):
        mm.forms[(6, 4, rows)] = form
        x = torch.randn(rows, 4)
        torch.testing.assert_close(mm(x, w, bias), x @ w.t() + bias)
        assert [p.calls for p in plans.values()] == [int(rows >= i) for i in kinds], form
    x = torch.randn(len(plans) + 1, 4)
    torch.testing.assert_close(mm(x, w), x @ w.t())
    assert [p.calls for p in plans.values()] == [1] * len(plans), "no form for this many rows: F.linear"


def test_decode_order_is_layer_by_layer_with_the_lm_head_last():
    """verify's weight stream in decode order (gpu/gemm.py decode_order_stream) runs the linears as a decode step
    does: each layer's qkv, o, gate_up, down, then the next layer's, the (tied) LM head last; a stacked pair
    (Qwen3-Next's router and shared-expert gate) once, at its first part's place, and not its parts."""
    from kvplan.gpu.gemm import decode_linears, decode_order

    w = stack_rows(dict(full_weights(tiny("llama"), 0)))
    order = decode_order(w, True)
    expect = [w[f"layers.{i}.{p}"] for i in range(2) for p in ("qkv", "o", "mlp.gate_up", "mlp.down")] + [w["embed"]]
    assert len(order) == len(expect) and all(a is b for a, b in zip(order, expect))
    assert decode_order(w, False)[-1] is w["layers.1.mlp.down"]  # untied: no LM head among these weights
    s = stack_rows(dict(full_weights(tiny("qwen3_next"), 0)))
    order = decode_order(s, False)
    assert not any(t is s["layers.0.shared_gate"] or t is s["layers.0.router"] for t in order)
    grouped = decode_linears(s, False)
    assert sum(len(ts) for ts in grouped.values()) == len(order)


@pytest.mark.parametrize("name, field, value", [
    ("llama", "rms_norm_eps", "x"), ("llama", "rms_norm_eps", -1), ("gemma3", "rope_local_base_freq", "x"),
    ("gemma3", "query_pre_attn_scalar", "big"), ("ernie4_5_moe", "rms_norm_eps", None)])
def test_bad_float_fields_are_named_in_one_line(name, field, value):
    """Review finding (session 49): these fields went through float() unchecked (a traceback, exit 3, or a negative
    epsilon taken); now a positive number or one line naming the field."""
    from kvplan.errors import KvplanError

    raw = {**TINY[name], field: value}
    if value is None:  # absent: the default epsilon, no error
        raw.pop(field)
        assert tiny_raw(raw, name).norm_eps == 1e-6
        return
    with pytest.raises(KvplanError, match=f"config field '{field}' must be a positive number"):
        tiny_raw(raw, name)


def tiny_raw(raw, name):
    return architecture(raw, parse_config(raw, name), 1)


@pytest.mark.parametrize("hidden", [5376, 3840, 2560, 2048, 1152])
@pytest.mark.parametrize("dtype, torch_dtype", [("bf16", "bfloat16"), ("fp16", "float16")])
def test_gemmas_embedding_scale_is_held_in_the_model_dtype(hidden, dtype, torch_dtype):
    """Review note (session 49): vLLM holds Gemma's sqrt(hidden) as a tensor of the model dtype; the pure rounding
    in arch.py against torch's own cast."""
    from kvplan.verify.arch import embedding_scale

    want = torch.tensor(math.sqrt(hidden), dtype=getattr(torch, torch_dtype)).item()
    assert embedding_scale(hidden, dtype) == want
