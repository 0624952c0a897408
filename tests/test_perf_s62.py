"""Session 62 speed work keeps every answer: each memo and closed form is checked against the unmemoised
computation (fresh engines, cleared tables) or the walk it replaces, never against a time."""

import random

import pytest

from kvplan.engines import EngineFlags, get_engine
from kvplan.engines import vllm_budget as vb
from kvplan.engines.vllm_engine import VllmEngine
from kvplan.model.sources import resolve
from kvplan.plan.catalog import DEFAULT_GPU, find_gpu
from kvplan.plan.sharding import pp_stages

MODELS = ("tiiuae/falcon-7b", "deepseek-ai/DeepSeek-V3.2", "Qwen/Qwen3-235B-A22B", "google/gemma-3-12b-it",
          "nvidia/Nemotron-H-8B-Base-8K", "Qwen/Qwen3-Next-80B-A3B-Thinking", "openai/gpt-oss-20b")
RELEASES = ("0.32.0", "0.10.2", "0.6.0", "0.19.0", "0.34.0")


def _budgets(engine, spec, gpu, pp, **asked):
    stages = pp_stages(spec.num_hidden_layers, pp) if pp > 1 else (None,)
    out = []
    for stage in stages:
        try:
            out.append(engine.budget(spec, 1, gpu, None, stage=stage, **asked))
        except Exception as exc:  # an error must stay the same error
            out.append((type(exc).__name__, str(exc)))
    return out


def _fresh(release):
    vb._STAGE_FREE.clear()
    return VllmEngine(release, EngineFlags())


@pytest.mark.parametrize("model", MODELS)
def test_budget_memos_change_no_stage_budget(model):
    """Every stage's budget through the warm memos (one engine asked again and again, settings and the stage-free
    terms kept) equals the budget a fresh engine with cleared tables works out for that stage alone."""
    spec, gpu = resolve(model, None), find_gpu(DEFAULT_GPU)
    rng = random.Random(model)
    warm = {release: VllmEngine(release, EngineFlags()) for release in RELEASES}
    for _ in range(6):
        release = rng.choice(RELEASES)
        pp = rng.choice((1, 2, 4, 16))
        asked = dict(context=rng.choice((None, 2048, 32768)), max_num_batched_tokens=rng.choice((None, 512, 8192)),
                     max_num_seqs=rng.choice((None, 8)), kv_dtype=rng.choice(("auto", "fp8")))
        memoised = _budgets(warm[release], spec, gpu, pp, **asked)
        again = _budgets(warm[release], spec, gpu, pp, **asked)  # every answer from the tables
        fresh = []
        for stage_budget in range(len(memoised)):
            stages = pp_stages(spec.num_hidden_layers, pp) if pp > 1 else (None,)
            try:
                fresh.append(_fresh(release).budget(spec, 1, gpu, None, stage=stages[stage_budget], **asked))
            except Exception as exc:
                fresh.append((type(exc).__name__, str(exc)))
        assert memoised == fresh == again


def test_budget_settings_memo_is_the_settings_call():
    """_budget_settings answers what on_gpu and settings answer when asked directly, and keys the spec by identity:
    an equal spec built apart gets an answer equal to, not taken for, the first's."""
    spec, gpu = resolve("tiiuae/falcon-40b", None), find_gpu(DEFAULT_GPU)
    engine = get_engine("vllm==0.10.2")
    viewed, settings = engine._budget_settings(spec, gpu, None, 16, 2048, None, None)
    direct = engine.on_gpu(spec, gpu)
    assert viewed == direct
    assert settings == engine.settings(2048, gpu, 16, None, None, direct)
    assert engine._budget_settings(spec, gpu, None, 16, 2048, None, None)[1] is settings
    other = resolve("tiiuae/falcon-40b", None)
    if other is not spec:
        assert engine._budget_settings(other, gpu, None, 16, 2048, None, None) == (viewed, settings)


def test_stage_free_keys_by_identity_and_keeps_no_error():
    calls = []

    def compute():
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("first")
        return len(calls)

    a, b = [1], [1]
    with pytest.raises(ValueError):
        vb.stage_free("t", (a,), (), compute)
    assert vb.stage_free("t", (a,), (), compute) == 2  # the error was not kept
    assert vb.stage_free("t", (a,), (), compute) == 2  # the answer was
    assert vb.stage_free("t", (b,), (), compute) == 3  # an equal object is another key


# --- whole estimates: every memo on (and warm from an earlier run) against every memo off ---

def _unmemoised(monkeypatch):
    """Every session-62 memo bypassed: settings and the stage-free terms worked out per call, remedies replanned."""
    from kvplan.plan import plan as plan_module

    monkeypatch.setattr(vb, "stage_free", lambda name, objects, values, compute: compute())
    monkeypatch.setattr(plan_module, "_stage_specs", _stage_views)

    def settings_afresh(self, spec, gpu, gpu_memory, pp, context, max_num_batched_tokens, max_num_seqs,
                        kv_dtype="auto"):
        from kvplan.engines.vllm_engine import _with_memory

        viewed = self.on_gpu(spec, gpu)
        length = context or viewed.max_position_embeddings or 8192
        memory_gpu = gpu if gpu_memory is None else _with_memory(gpu, gpu_memory)
        return viewed, self.settings(length, memory_gpu, pp, max_num_batched_tokens, max_num_seqs, viewed, kv_dtype)

    monkeypatch.setattr(VllmEngine, "_budget_settings", settings_afresh)
    monkeypatch.setattr(plan_module, "_replanned", lambda spec, context, precision, tp, block_size, budget_for,
                        pp=None, settings=None: plan_module._plan_afresh(spec, context, precision, tp, block_size,
                                                                         budget_for, pp, settings or {}))


SWEEPS = (
    ("tiiuae/falcon-40b", dict(pp=16)),
    ("tiiuae/falcon-7b", dict(pp=16, contexts=[2**20], kv_dtypes=["auto", "fp8", "fp8_e5m2"])),
    ("deepseek-ai/DeepSeek-V3", dict(tps=[1, 2, 4, 8, 16], engine="vllm==0.10.2")),
    ("Qwen/Qwen3-235B-A22B", dict(tps=[1, 2, 4, 8, 16])),
    ("deepseek-ai/DeepSeek-V3.2", dict(max_num_batched_tokens=64, tps=[1, 8])),
    ("meta-llama/Llama-3.1-405B", dict(tps=[1, 2, 8], kv_dtypes=["auto", "fp8"], pp=2)),
    ("google/gemma-3-27b-it", dict(tps=[1, 2], contexts=[2**20], engine="vllm==0.8.5")),
)


@pytest.mark.parametrize("model, asked", SWEEPS, ids=[m for m, _ in SWEEPS])
def test_estimates_are_the_unmemoised_estimates(model, asked, monkeypatch):
    from kvplan.commands.estimate import estimate

    first = estimate(model, **asked).to_dict()
    warm = estimate(model, **asked).to_dict()  # every table already holds this run's answers
    with monkeypatch.context() as patched:
        _unmemoised(patched)
        plain = estimate(model, **asked).to_dict()
    assert first == warm == plain


def _stage_views(spec, layer_sets):
    """Each stage's spec built afresh (what plan._stage_specs keeps)."""
    from dataclasses import replace

    return [replace(spec, layers=tuple(spec.layers[i] for i in sorted(s))) for s in layer_sets]


@pytest.mark.parametrize("model", MODELS)
def test_stage_specs_memo_is_the_fresh_views(model):
    from kvplan.plan.plan import _stage_specs
    from kvplan.plan.sharding import stage_cache_layers

    spec = resolve(model, None)
    for pp in (2, 3, 4, 16):
        if pp > spec.num_hidden_layers:
            continue
        sets = stage_cache_layers(spec, pp_stages(spec.num_hidden_layers, pp))
        first, again = _stage_specs(spec, sets), _stage_specs(spec, sets)
        assert first == again == _stage_views(spec, sets)
        assert all(a is b for a, b in zip(first, again)) and first is not again  # shared views, a list each


# --- the prefill walk's per-chunk figures: by hand, and the hoisted forms against the layers' own reads ---

@pytest.mark.parametrize("model,tp,start,count,decode,flops", [
    # 32 layers x 2 (q.K and p.V) x 32 heads x (128 + 128) x the 1,001 keys the new token sees
    ("meta-llama/Llama-3.1-8B-Instruct", 1, 1000, 1, True, 32 * 2 * 32 * 256 * 1001),
    # an 8,192-token prompt from empty: the i-th token sees i keys, 8,192 x 8,193 / 2 in all
    ("meta-llama/Llama-3.1-8B-Instruct", 1, 0, 8192, False, 32 * 2 * 32 * 256 * (8192 * 8193 // 2)),
    # DeepSeek-V3 at tp 8, absorbed MLA decode: 61 layers x 2 x 16 heads x (576 latent + rope, 512 summed) x 4,096
    ("deepseek-ai/DeepSeek-V3", 8, 4095, 1, True, 61 * 2 * 16 * (576 + 512) * 4096),
    # its prefill up-projected at DeepSeek's head shape: 128 nope + 64 rope scored, 128 values summed
    ("deepseek-ai/DeepSeek-V3", 8, 0, 4096, False, 61 * 2 * 16 * (128 + 64 + 128) * (4096 * 4097 // 2)),
    # Qwen3-Next at tp 2: 12 full layers (8 heads of 256 + 256, 101 keys) and 36 gated-DeltaNet layers, 4 FLOPs an
    # element of their state (16 value heads x 128 x 128) and window (4,096 channels x 3) per token
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", 2, 100, 1, True,
     12 * 2 * 8 * 512 * 101 + 36 * 4 * (16 * 128 * 128 + 4096 * 3)),
])
def test_attention_flops_by_hand(model, tp, start, count, decode, flops):
    from kvplan.plan.work import attention_counter, attention_flops

    spec = resolve(model, None)
    assert attention_flops(spec, tp, start, count, decode) == flops
    assert attention_counter(spec, tp, decode)(start, count) == flops


def _bundled_models():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "model_specs"
    return sorted(p.stem.replace("--", "/", 1) for p in root.glob("*.yaml"))


@pytest.mark.parametrize("model", _bundled_models())
def test_hoisted_chunk_figures_are_the_per_call_figures(model):
    """kv_reader (worked out once per prefill) gives, bit for bit, the layers' own reads plus the states, and an
    attention_counter asked many times what attention_flops gives, over every bundled model, TP degree, cache dtype
    and many random (start, count) pairs, decode and prefill."""
    from kvplan.model.precision import resolve_kv_dtype
    from kvplan.plan.capacity import layer_kinds, state_bytes
    from kvplan.plan.work import attention_counter, attention_flops, kv_reader, kv_read_bytes

    spec = resolve(model, None)
    kinds = layer_kinds(spec)
    rng = random.Random(model)
    for tp in (1, 2, 8):
        for dtype in ("auto", "fp8"):
            try:
                precision = resolve_kv_dtype(dtype, spec.dtype, spec.auto_kv_dtype)
            except Exception:
                continue
            read = kv_reader(spec, tp, precision, kinds)
            state = 2 * state_bytes(spec, tp, kinds)
            for decode in (False, True):
                count_flops = attention_counter(spec, tp, decode, kinds)
                for _ in range(40):
                    start, count = rng.choice((0, 1, rng.randrange(1, 1 << 21))), rng.choice((1, 16, 8192, 100_003))
                    once = count_flops(start, count)  # one counter asked many times: no state between calls
                    assert once == attention_flops(spec, tp, start, count, decode) == count_flops(start, count)
                    expected = sum(n * layer.read_bytes(start, tp, precision) for layer, n in kinds) + state
                    assert read(start) == kv_read_bytes(spec, tp, precision, start) == expected
