"""kvplan verify on a real CUDA GPU. Skips cleanly without torch or CUDA (CI has neither); run on a GPU machine
with `pytest tests/test_verify_gpu.py`. Tiny models check the forward pass (bundled kernels, grouped GEMMs, CUDA
graphs) against the float64 reference; small real models and few capture sizes keep the end-to-end runs short."""

import json
import random

import pytest

from conftest import run_kvplan
from tiny_models import TINY

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

from bf16_forward import unit_attention_logits  # noqa: E402
from kvplan import verify as V  # noqa: E402
from kvplan.commands.verify import verify as run_verify  # noqa: E402
from kvplan.errors import KvplanError  # noqa: E402

SMALL = "meta-llama/Llama-3.2-1B-Instruct"
FAST = dict(max_num_seqs=8, max_num_batched_tokens=2048)  # 5 capture sizes, a short profile run


# the tiny models, and DeepSeek's with two shared experts of the routed width (DeepSeek-V2-Lite's layout: joined to
# the routed experts as two more, weights.join_shared_experts)
CONFIGS = {**TINY,
           "deepseek_shared2": {**TINY["deepseek_v2"], "n_shared_experts": 2}}


def gpu_config(name):
    """The tiny config with the kernels' shapes: head_dim 64, MLA latent 512 + 64. (Its DeltaNet heads stay 8 x 8:
    at 128 x 128 the bf16 forward is 0.18 off the float64 reference with every DeltaNet kernel refused, the torch
    forms alone; H200, session 33. tests/test_prefill_kernels.py holds the kernels to those torch forms there.)"""
    raw = dict(CONFIGS[name], head_dim=64, hidden_size=128)
    if "text_config" in raw:  # a wrapper (Llama 4): the language model's fields are the ones read
        raw = {**raw, "text_config": dict(raw["text_config"], head_dim=64, hidden_size=128)}
    if name == "llama_fp8":  # rows of 512 and 1,024 e4m3 values: every GEMV form takes some (rows owned: k % 512)
        raw.update(hidden_size=512, intermediate_size=1024)
    if "kv_lora_rank" in raw:
        raw.update(kv_lora_rank=512, qk_rope_head_dim=64, qk_nope_head_dim=64, v_head_dim=64)
    if name == "deepseek_v3_fp8":  # whole 128 x 128 blocks: the bundled kernels' fp8 forms take every matrix
        raw.update(intermediate_size=256)
    if "rotary_dim" in raw:  # MiniMax-M2: rotary on half of each head, as its 64 of 128
        raw.update(rotary_dim=32)
    if "swa_head_dim" in raw:  # MiMo-V2: the sliding layers' keys as wide, rotary on an even share of both
        raw.update(swa_head_dim=64, partial_rotary_factor=0.5)
    if name == "mimo_v2_fp8":  # whole 128 x 128 blocks in the dense MLP too
        raw.update(intermediate_size=256)
    if name == "kimi_linear":  # every expert chosen: its top 2 of 8 sigmoid scores sit within bf16 rounding of a tie
        # (the tiny model in bf16 on the CPU: 0.96 off in one seed of four, 0.03-0.06 with all 8 chosen); the float32
        # CPU tests hold the choice (tests/test_verify_kda.py)
        raw.update(num_experts_per_token=8)
    if "index_topk" in raw:  # DSA in bf16: a top-k wider than the prompts (bf16 rounding flips a narrow one's near
        raw.update(index_topk=64)  # ties); tests/test_verify_sparse_mla.py runs the narrow one in float32 on the GPU
    return raw


def _keep_stored(name, v, arch):
    """float32 test weights in bf16 on the GPU; e4m3, packed ones, fp8 block scales and a float32 router (MiniMax-M2:
    its logits float32 as vLLM's) as stored."""
    kept = name.endswith("_scale") or (arch.router_fp32 and name.endswith(".router"))
    return v.to("cuda", torch.bfloat16 if v.dtype == torch.float32 and not kept else v.dtype)


def _run_tiny(name, graph, mm_form=None):
    from kvplan.gpu.caches import small_caches
    from kvplan.gpu.generate import decode, prefill
    from kvplan.gpu.model import Runtime, Transformer
    from kvplan.gpu.reference import Reference
    from kvplan.gpu.weights import engine_layout, full_weights
    from kvplan.model import parse_config
    from kvplan.verify.arch import architecture

    raw = gpu_config(name)
    arch = architecture(raw, parse_config(raw, name), 1)
    full = full_weights(arch, seed=3)
    for key in [k for k in full if k.endswith(".router")]:
        # decisive routing: with fan_in^-0.5 router weights the top-k choice of a token can sit within bf16
        # rounding of a tie, and a flipped expert is a different function, not an error (seen on the H200,
        # 2026-12-01: 1 run in 8 off by 0.2-0.35 while the rest were below 0.05). Sigmoid scores saturate at x 8
        # and their choice falls to near ties again: the tiny Nemotron-H MoE was 1.146 off on the H200 with the
        # gather-sum kernel and 0.012 with torch's combine, the two 3-5e-3 apart call by call; on the CPU 0.4%
        # noise on the MoE outputs moves it from 0.011 to 1.146 at x 8, at most 0.020 at x 2 (session 37)
        full[key] = full[key] * (2 if arch.routing.scoring == "sigmoid" else 8)
    full = unit_attention_logits(arch, full)  # Gemma 3n / 4: scale 1.0 behind q/k norms (bf16_forward.py)
    # laid out as verify allocates them (weights.engine_layout): the pairs run as one matmul, their outputs as views,
    # shared experts inside the routed experts' launches; the reference reads the separate tensors
    separate = {k: _keep_stored(k, v, arch) for k, v in full.items()}
    weights = engine_layout(dict(separate), join_shared=not arch.routing.on_input)
    rt = Runtime("cuda")
    model = Transformer(arch, weights, rt)
    if mm_form:  # every decode matmul the form's kernel takes runs through it (2 tokens)
        from kvplan.gpu.gemm import kind_groups, kernel_plan

        for shape, tensors in kind_groups(rt.mm, weights, arch.tied_embeddings):
            plan = kernel_plan(mm_form, shape, tensors[0].dtype, 8)
            if not isinstance(plan, str):
                rt.mm.kernel_plans(mm_form)[rt.mm.plan_key(tensors[0])] = plan
                rt.mm.forms[rt.mm.form_key(tensors[0], 2)] = mm_form
                rt.labels.setdefault("mm", []).append(shape)
    model.caches = small_caches(arch, 64, 16, 4, torch.bfloat16, "cuda")
    for c in model.caches.values():
        if c.kind == "state":
            c.tensors[0].zero_()
    ids = list(range(64))
    random.Random(1).shuffle(ids)
    # block-scaled fp8 prefill above 16 tokens quantises its activations per token and 128 columns (W8A8, as vLLM):
    # 2-4% off the unquantised reference per matmul, enough to flip the tiny router's near ties; prompts of at most
    # 16 tokens run the skinny kernel's W8A16 form the reference mirrors (test_block_matmul_w8a8 holds the W8A8 one)
    lens = [13, 9] if arch.linear_format == "fp8_block" else [37, 20]
    rows = [ids[:8], ids[8:16]]
    paged = {c.group for c in model.caches.values() if c.kind != "state"}
    refs = [Reference(arch, {k: v.to(torch.float64) if v.dtype == torch.bfloat16 else v
                             for k, v in ((k, w.cpu()) for k, w in separate.items())}) for _ in lens]
    worst = 0.0
    gen = torch.Generator().manual_seed(2)
    for i, n in enumerate(lens):
        prompt = torch.randint(0, arch.vocab, (n,), generator=gen)
        prefill(model, prompt[None].cuda(), {g: [rows[i]] for g in paged}, torch.tensor([i], device="cuda"))
        for t in prompt.tolist():
            refs[i].step(t)
    tables = {g: torch.tensor(rows, dtype=torch.int32, device="cuda") for g in paged}
    tokens = torch.randint(0, arch.vocab, (2,), generator=gen).cuda()
    positions = torch.tensor(lens, device="cuda")
    slots = torch.arange(2, device="cuda")

    def step():
        return decode(model, tokens, positions, tables, slots)

    if graph:
        from kvplan.gpu.timing import capture

        g, out = capture(step, warm=False)
        g.replay()
    else:
        out = step()
    torch.cuda.synchronize()
    for i in range(2):
        want = refs[i].step(int(tokens[i]))
        worst = max(worst, float((out[i].double().cpu() - want).abs().max() / want.abs().max()))
    return worst, {**rt.paged.labels, **rt.labels}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("graph", [False, True])
def test_forward_on_gpu_matches_the_reference(name, graph):
    worst, labels = _run_tiny(name, graph)
    # bf16 activations against float64 (a wrong layer is off by ~100%). The tiny mxfp4 experts' values (up to
    # 6 x 2^-4) are larger than fan_in^-0.5, so its activations and bf16 error run larger: 0.113 measured on
    # the H200 (2026-12-01), the others below 0.05 except the tiny Qwen3-Next (gated attention, 4 layers of bf16
    # DeltaNet state and MoE): 0.096 with torch's MoE, 0.126 with the bundled MoE kernel whose rounding differs
    # (the same kernel on Mixtral's identical expert shapes: 0.029 vs torch 0.026; H200, 2026-12-01).
    assert worst < (0.15 if name in ("gpt_oss", "qwen3_next") else 0.1), (name, worst)
    if "attention" in labels:  # MiMo-V2 (keys wider than values, sinks): torch over gathered pages, labelled so
        stand_in = name.startswith("mimo_v2")
        assert ("NOT a CUDA kernel" if stand_in else "bundled CUDA kernel") in labels["attention"], labels
    if "mamba1" in labels:  # Jamba's prompt and decode scans
        assert labels["mamba1"].startswith("bundled Mamba-1 kernels") and labels["mamba1 prefill"] == labels["mamba1"]
    if CONFIGS[name].get("model_type") == "minimax_m2":  # its float32 logits through the router kernel's float32 form
        assert labels["router"].startswith("bundled router kernel"), labels["router"]
    if "moe" in labels:  # decode (2 tokens) runs the routed experts through the bundled pairs kernel
        assert labels["moe"].startswith("bundled MoE pairs kernel"), labels["moe"]
        joined = ("deepseek_v2", "deepseek_shared2", "qwen3_next", "deepseek_v3_groups", "deepseek_v3_fp8",
                  "ernie4_5_moe", "kimi_linear", "glm4_moe")
        assert ("shared expert as" in labels["moe"]) == (name in joined)


def test_block_matmul_w8a8_and_w8a16_against_float64():
    """verify's block-scaled fp8 matmul (kvplan/gpu/ops.py Matmul.block) on DeepSeek-V3-like shapes: the skinny
    kernel's fp8 form up to 16 rows (the scale applied in bf16: ~3e-3), the per-token-group quantisation + cuBLAS
    form above (e4m3 activations, 3 mantissa bits: a few % of the largest output), against float64 products of the
    dequantised weights."""
    from kvplan.gpu import fp8
    from kvplan.gpu.ops import Matmul

    gen = torch.Generator(device="cuda").manual_seed(1)
    mm = Matmul()
    for n, k in ((704, 128), (2112, 7168), (7168, 2048), (4096, 512)):
        q = (torch.randn(n, k, device="cuda", generator=gen) * 16).clamp(-448, 448).to(fp8.E4M3)
        s = torch.rand(fp8.block_rows(n), k // 128, device="cuda", generator=gen) * 2e-3 + 1e-3
        mm.register_block(q, s)
        w = fp8.dequantize_blocks(q, s, torch.float64)
        for t in (1, 5, 16, 17, 40):
            x = torch.randn(t, k, device="cuda", generator=gen).bfloat16()
            want = x.double() @ w.t()
            err = float((mm(x, q).double() - want).abs().max() / want.abs().max())
            assert err < (1e-2 if t <= fp8.SKINNY_TOKENS else 6e-2), (n, k, t, err)
        assert not isinstance(mm.block_plans[(n, k)], str), mm.block_plans[(n, k)]


def test_block_matmul_through_the_streaming_gemv_against_float64():
    """The same product where the decode forms' timing picks the streaming GEMV's block-scaled kernel (x quantised
    per token per 128 values, W8A8: a few % of the largest output, as cuBLAS's form), in order and rotated, at
    1-8 tokens; the forms' timing itself keeps one of the three forms and reports each one's bandwidth."""
    from kvplan.gpu import fp8, gemm
    from kvplan.gpu.ops import BLOCK_FORMS, Matmul

    gen = torch.Generator(device="cuda").manual_seed(3)
    mm = Matmul()
    weights = {}
    for i, (n, k) in enumerate(((2112, 7168), (7168, 2048))):
        q = (torch.randn(n, k, device="cuda", generator=gen) * 16).clamp(-448, 448).to(fp8.E4M3)
        s = torch.rand(fp8.block_rows(n), k // 128, device="cuda", generator=gen) * 2e-3 + 1e-3
        mm.register_block(q, s)
        weights[f"layers.0.{('q_a', 'o')[i]}"] = q
        gemm.block_stream_plans(mm, (n, k), 8)
        w = fp8.dequantize_blocks(q, s, torch.float64)
        for form in BLOCK_FORMS[1:]:
            assert (form, n, k) in mm.block_streams
            for t in (1, 3, 8):
                mm.forms[mm.form_key(q, t)] = form
                x = torch.randn(t, k, device="cuda", generator=gen).bfloat16()
                want = x.double() @ w.t()
                err = float((mm(x, q).double() - want).abs().max() / want.abs().max())
                assert err < 6e-2, (n, k, t, form, err)
    mm.forms.clear()
    report = gemm.choose_forms(mm, weights, tied=False, read_bw=4e12, batches=(1, 8), reps=2)
    assert {row["chosen"] for row in report["shapes"]} <= set(BLOCK_FORMS)
    assert all(f"{BLOCK_FORMS[1]} TB/s" in row for row in report["shapes"])
    assert set(mm.forms) == {(2112, 7168, 1, "block"), (2112, 7168, 8, "block"), (7168, 2048, 1, "block"),
                             (7168, 2048, 8, "block")}  # Matmul.form_key: block-scaled forms apart


@pytest.mark.parametrize("form", ["kvplan streaming GEMV", "kvplan streaming GEMV, rotated",
                                  "kvplan streaming GEMV, rows owned"])
def test_fp8_linears_through_the_gemv_match_the_reference(form):
    """W8A8 decode through the GEMV's e4m3 kernel (x quantised, scaled bf16 out) on the shapes it takes (k a
    multiple of 128; 512 rows owned), cuBLAS's fp8 GEMM on the rest, graphed, against the float64 reference."""
    worst, labels = _run_tiny("llama_fp8", True, mm_form=form)
    assert labels["mm"], "no weight shape took the GEMV"
    # e4m3 activations round in steps of 6%, and a bf16 rounding difference upstream flips some of them against
    # the float64 reference: 0.102-0.111 measured through the GEMV forms, under 0.1 through cuBLAS (H200, session
    # 36); a wrong scale or layer is off by ~1
    assert worst < 0.15, worst


def _memory():
    torch.cuda.synchronize()
    return torch.cuda.memory_allocated(), torch.cuda.memory_reserved()


def _assert_released(before):
    allocated, reserved = _memory()
    assert allocated <= before[0], torch.cuda.memory_summary(abbreviated=True)
    assert reserved <= before[1], torch.cuda.memory_summary(abbreviated=True)


class Quiet(V.Progress):
    """Progress that prints nothing, and can interrupt the run at a named step (as Ctrl-C would)."""

    def __init__(self, interrupt_at=None):
        from rich.console import Console

        super().__init__(Console(quiet=True))
        self.interrupt_at = interrupt_at
        self.steps = []

    def step(self, text):
        self.steps.append(text)
        if self.interrupt_at and text.startswith(self.interrupt_at):
            raise KeyboardInterrupt
        return super().step(text)


def test_small_model_end_to_end():
    before = _memory()
    r = run_verify(SMALL, context=4096, gpu_util=0.3, progress=Quiet(), **FAST).result
    _assert_released(before)
    a = r["allocation"]
    assert abs(a["torch_error"]) <= V.ALLOCATION_TOLERANCE and abs(a["nvml_error"]) <= V.ALLOCATION_TOLERANCE
    b = r["boundary"]
    # the boundary probes the pools (memory); max_concurrency may be capped by max_num_seqs (FAST sets 8)
    assert b["confirmed"] and b["served"] == r["measured_plan"]["pool_sequences"] and b["refused_next"]
    terms = {row["term"]: row for row in r["terms"]}
    # the weights' own bytes, plus 1 MiB torch allocated on the first fill (seen on the H200, 2026-12-01)
    assert 0 <= terms["weights"]["measured_bytes"] - r["rank"]["arch_weights_bytes"] <= 2**21
    assert terms["activation_peak"]["measured_bytes"] > 0 and terms["cuda_graphs"]["measured_bytes"] > 0
    assert r["budget"]["measured_kv_budget_bytes"] == r["budget"]["usable_bytes"] - sum(
        row["measured_bytes"] or 0 for row in r["terms"])
    # decode at batch 1 and at most max_num_seqs (vLLM runs no more a step: verify.terms.decode_batches)
    assert {p["batch"] for p in r["decode"]["points"]} == {1, min(b["served"], FAST["max_num_seqs"])}
    assert all(p["measured_ms"] > 0 for p in r["decode"]["points"])
    assert r["prefill"]["ttft_ms"] > 0 and r["verdict"]["capacity_confirmed"]
    assert all(s["fraction_of_read"] > 0.3 for s in r["gemm"]["stream"].values())


def test_interrupt_releases_every_tensor():
    before = _memory()
    progress = Quiet(interrupt_at="decode, batch")
    with pytest.raises(KeyboardInterrupt):
        run_verify(SMALL, context=2048, gpu_util=0.3, progress=progress, **FAST)
    assert any(s.startswith("allocating the paged KV pools") for s in progress.steps)
    _assert_released(before)


def test_clear_lines_for_models_that_do_not_fit():
    before = _memory()
    with pytest.raises(KvplanError, match="of weights on each rank, more than this"):
        run_verify("meta-llama/Llama-3.1-405B", progress=Quiet())
    # a GPU too small for one sequence: 7.5 GiB of it (2.5 GB of weights) against the 4 GiB one 131,072-token sequence
    # of the 1B needs (a length past the model's own is refused before torch: tests/test_fuzz_verify_s66.py)
    util = 7.5 * 2**30 / torch.cuda.get_device_properties(0).total_memory
    no_room = r"leaves no room for one 131,072-token sequence .* one sequence needs 4\.00 GiB"
    with pytest.raises(KvplanError, match=no_room):
        run_verify(SMALL, context=131072, gpu_util=round(util, 4), progress=Quiet(), **FAST)
    _assert_released(before)


def test_cli_json_and_progress():
    r = run_kvplan("verify", SMALL, "--context", "2048", "--gpu-util", "0.25", "--max-num-seqs", "8",
                   "--max-num-batched-tokens", "2048", "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    data = json.loads(r.stdout)
    assert data["boundary"]["confirmed"] and data["verdict"]["ok"] == (r.returncode == 0)
    assert "decode, batch 1" in r.stderr and "profile run" in r.stderr
