"""Session 64's cold-start work on the slowest estimate (tiiuae/falcon-40b -pp 16, whose release remedy plans every
boundary release up to 0.28.0 at 16 stages) keeps every answer: the new pure functions against hand-worked cases,
the memos against recorded outputs of the code before them and against fresh computation."""

from dataclasses import replace

import pytest

from kvplan.engines import EngineFlags, get_engine
from kvplan.engines import vllm as vllm_module
from kvplan.engines import vllm_budget as vb
from kvplan.engines.figures import Fix
from kvplan.engines.vllm_engine import VllmEngine
from kvplan.engines.vllm_specs import Group
from kvplan.model.precision import resolve_kv_dtype
from kvplan.model.sources import resolve
from kvplan.plan import plan as plan_module
from kvplan.plan.catalog import DEFAULT_GPU, device_name, find_gpu
from kvplan.plan.sharding import pp_stages, stage_cache_layers

FITS = (True, "")


# --- plan.settled: when ranged_fixes may stop planning releases ---

def test_settled_waits_while_every_release_is_alike():
    assert not plan_module.settled([("0.28.0", FITS), ("0.27.1", FITS), ("0.27.0", FITS)])
    short = (False, "the weights alone do not fit")
    assert not plan_module.settled([("0.28.0", short), ("0.27.1", short)])


def test_settled_at_the_first_release_unlike_a_fix_that_fits():
    assert plan_module.settled([("0.28.0", FITS), ("0.27.1", FITS), ("0.27.0", (False, "no KV memory is left"))])
    assert plan_module.settled([("0.28.0", FITS), ("0.27.1", None)])  # one that cannot be planned ends the run too


def test_settled_needs_a_whole_fitting_run_past_a_fix_that_does_not_fit():
    short, other = (False, "the weights alone do not fit"), (False, "no KV memory is left")
    assert not plan_module.settled([("0.28.0", short), ("0.27.1", other)])  # no release holds a request yet
    assert not plan_module.settled([("0.28.0", short), ("0.27.1", FITS), ("0.27.0", FITS)])  # the run goes on
    assert plan_module.settled([("0.28.0", short), ("0.27.1", FITS), ("0.27.0", FITS), ("0.26.0", other)])
    assert plan_module.settled([("0.28.0", short), ("0.27.1", other), ("0.27.0", FITS), ("0.26.0", None)])


def _ranged(monkeypatch, farther):
    """ranged_fixes of "vllm==0.28.0 or older" over five boundaries, the planned outcomes stubbed: 0.28.0 (the fix's
    own) and 0.27.0 hold a request, 0.26.0 is short of memory, 0.25.0 holds `farther`."""
    table = {"0.27.0": FITS, "0.26.0": (False, "no KV memory is left"), "0.25.0": farther}
    planned = []

    def outcome(asked, changes):
        release = changes[0][1].split("==")[1]
        planned.append(release)
        return table[release]

    monkeypatch.setattr(plan_module, "_outcome", outcome)
    fix = Fix((("engine", "vllm==0.28.0"),), onward="older")
    boundaries = ("0.25.0", "0.26.0", "0.27.0", "0.28.0", "0.29.0")
    return plan_module.ranged_fixes(None, fix, FITS, boundaries), planned


def test_ranged_fixes_stop_once_the_run_is_known(monkeypatch):
    """The fitting run 0.28.0, 0.27.0 ends at 0.26.0: "any release from 0.27.0 before 0.29.0" (release_span: its
    oldest, the first boundary newer than its newest), whatever 0.25.0 holds, which is not planned."""
    for farther in (FITS, (False, "the weights alone do not fit"), None):
        found, planned = _ranged(monkeypatch, farther)
        assert planned == ["0.27.0", "0.26.0"]
        assert found == [Fix((("engine", "vllm==0.28.0"),), onward="", fits=True, span=("0.27.0", "0.29.0"))]


# --- vllm_budget.stage_kind and the stage budgets it shares ---

def test_stage_kinds_of_falcon_40b_at_pp_16():
    """60 layers over 16 stages, as get_pp_indices deals them: 3 each, the remainder (12) one more each on the stages
    before the last counting back, so stages 3-14 hold 4. Four kinds: the first (3 layers), two middle ones of 3, twelve
    of 4, the last (3)."""
    spec = resolve("tiiuae/falcon-40b", None)
    kinds = [vb.stage_kind(spec, stage) for stage in pp_stages(60, 16)]
    assert kinds[0] == (16, 3, True, False, ())
    assert kinds[1] == kinds[2] == (16, 3, False, False, ())
    assert kinds[3:15] == [(16, 4, False, False, ())] * 12
    assert kinds[15] == (16, 3, False, True, ())
    assert len(set(kinds)) == 4


def test_stage_kind_of_sparse_attention_reads_the_index_group_leaders():
    """GLM-5.2 (78 layers) runs an indexer in layers 0-2 and every fourth from 6 (index_group_leaders); the others
    reuse the last top-k. At pp 13 (6 layers a stage) the middle stages alternate two windows, each of 2 index
    groups (index_groups: its leaders, and one more for a first layer that reuses): "100010" (stages 1, 3, ...: 2 +
    0) and "001000" (stages 2, 4, ...: 1 + 1). Alike in place and size, they are two kinds, each stage's budget the
    one worked out for it alone."""
    spec, gpu = resolve("zai-org/GLM-5.2", None), find_gpu(DEFAULT_GPU)
    stages = pp_stages(78, 13)
    kinds = [vb.stage_kind(spec, stage) for stage in stages]
    assert kinds[1] == (13, 6, False, False, (True, False, False, False, True, False)) == kinds[3] == kinds[11]
    assert kinds[2] == (13, 6, False, False, (False, False, True, False, False, False)) == kinds[4] == kinds[10]
    assert [vb.index_groups(spec, stage) for stage in stages[1:3]] == [2, 2]
    assert len(set(kinds)) == 4  # the first, two middle kinds, the last
    vb._STAGE_FREE.clear()
    engine = get_engine("vllm==0.32.0")
    warm = [engine.budget(spec, 1, gpu, None, stage=stage, context=8192) for stage in stages]
    for stage in (stages[3], stages[4], stages[12]):
        vb._STAGE_FREE.clear()
        alone = VllmEngine("0.32.0", EngineFlags()).budget(spec, 1, gpu, None, stage=stage, context=8192)
        assert warm[stage.index] == alone


# kv_budget_bytes_per_gpu of each stage of tiiuae/falcon-40b -pp 16 at 2,048 tokens on the default GPU, recorded
# with the code before stage kinds (main at 4ffaab2a): a middle stage of 3 layers has one layer's weights
# (1,376,547,473 bytes) more KV memory than one of 4
RECORDED = {
    "0.28.0": [70440444791, 71385319831, 71385319831] + [70008772358] * 12 + [70004884343],
    # 0.9.0 at pp > 1 falls back to V0 (engines/vllm_v0_pp.py, session 74): V0's budget, recorded then
    "0.9.0": [68877500320, 69956593088, 69956593088] + [68580045615] * 12 + [68714708896],
    "0.5.0": [68469478426, 69548571194, 69548571194] + [68172023721] * 12 + [68469478426],
}


@pytest.mark.parametrize("release", sorted(RECORDED))
def test_stage_budgets_are_the_recorded_ones(release):
    spec, gpu = resolve("tiiuae/falcon-40b", None), find_gpu(DEFAULT_GPU)
    vb._STAGE_FREE.clear()
    engine = get_engine(f"vllm=={release}")
    budgets = [engine.budget(spec, 1, gpu, None, stage=stage, context=2048) for stage in pp_stages(60, 16)]
    assert [b.kv_budget_bytes_per_gpu for b in budgets] == RECORDED[release]
    assert [b.stage for b in budgets] == list(range(16))
    assert budgets[1].kv_budget_bytes_per_gpu - budgets[3].kv_budget_bytes_per_gpu == 1376547473  # at every release
    # a stage of a kind met before is that budget with its own index, equal to the stage worked out alone
    vb._STAGE_FREE.clear()
    alone = VllmEngine(release, EngineFlags()).budget(spec, 1, gpu, None, stage=pp_stages(60, 16)[9], context=2048)
    assert budgets[9] == alone and budgets[9] is not budgets[8]


def test_budget_at_stage_is_replace():
    spec, gpu = resolve("tiiuae/falcon-40b", None), find_gpu(DEFAULT_GPU)
    budget = get_engine("vllm==0.28.0").budget(spec, 1, gpu, None, stage=pp_stages(60, 16)[4], context=2048)
    moved = budget.at_stage(11)
    assert moved == replace(budget, stage=11) and moved.stage == 11
    assert budget.stage == 4 and moved.terms is budget.terms  # the original untouched, the terms shared


# --- Group.bytes_per_block over a stage's few layers ---

def test_bytes_per_block_of_a_stage():
    group = Group(spec=None, layers=(0, 1, 2, 3), page_bytes_of_layers=(10, 20, 30, 40))
    assert group.bytes_per_block() == 100
    assert group.bytes_per_block({1, 3}) == 60  # 20 + 40
    assert group.bytes_per_block({1, 3, 7}) == 60  # layer 7 is another group's
    assert group.bytes_per_block({5, 6}) == 0
    assert group.bytes_per_block(set(range(10))) == 100


# --- sharding.pp_stages, dealt once ---

def test_pp_stages_are_kept_and_a_listed_partition_dealt_afresh():
    stages = pp_stages(60, 16)
    assert pp_stages(60, 16) is stages
    assert [(s.first_layer, s.end_layer) for s in stages[:4]] == [(0, 3), (3, 6), (6, 9), (9, 13)]
    listed = pp_stages(10, 2, [4, 6])  # a list is no cache key
    assert listed == pp_stages(10, 2, (4, 6)) and [(s.first_layer, s.end_layer) for s in listed] == [(0, 4), (4, 10)]


# --- sharding.stage_cache_layers: one cache layer a decoder layer ---

def test_stage_cache_layers_of_falcon_40b_at_pp_16():
    spec = resolve("tiiuae/falcon-40b", None)
    held = stage_cache_layers(spec, pp_stages(60, 16))
    assert held[0] == {0, 1, 2} and held[2] == {6, 7, 8} and held[3] == {9, 10, 11, 12}
    assert held[14] == {53, 54, 55, 56} and held[15] == {57, 58, 59}
    assert sorted(i for stage in held for i in stage) == list(range(60))


def test_stage_cache_layers_of_sparse_attention_deal_indexer_keys_with_their_latent():
    """DeepSeek-V3.2 keeps two cache layers a decoder layer (the latent, then its indexer's keys): pp 4 deals its 61
    decoder layers 15, 15, 16, 15, so the stages hold 30, 30, 32 and 30 cache layers, each indexer with the latent
    before it."""
    spec = resolve("deepseek-ai/DeepSeek-V3.2", None)
    assert len(spec.layers) == 2 * spec.num_hidden_layers == 122
    held = stage_cache_layers(spec, pp_stages(spec.num_hidden_layers, 4))
    assert [len(s) for s in held] == [30, 30, 32, 30]
    assert held[0] == set(range(30)) and held[2] == set(range(60, 92)) and held[3] == set(range(92, 122))


# --- the engine's settings and configuration refusals, worked out once ---

def test_settings_are_kept_per_engine():
    spec, gpu = resolve("tiiuae/falcon-40b", None), find_gpu(DEFAULT_GPU)
    engine = get_engine("vllm==0.20.0")
    first = engine.settings(2048, gpu, 16, None, None, spec)
    assert engine.settings(2048, gpu, 16, None, None, spec) is first
    assert first == get_engine("vllm==0.20.0")._settings(2048, gpu, 16, None, None, spec)
    assert (first.max_model_len, first.max_num_seqs, first.max_num_batched_tokens) == (2048, 1024, 8192)


def test_configuration_refusals_are_kept_and_fresh_ones_equal():
    spec, gpu = resolve("tiiuae/falcon-40b", None), find_gpu(DEFAULT_GPU)
    precision = resolve_kv_dtype("auto", spec.dtype, spec.auto_kv_dtype)
    asked = dict(tp=1, length=2048, block_size=None, capability=gpu.compute_capability, gpu_name=device_name(gpu))
    refused = vllm_module.configuration_refusal(spec, precision, version="0.32.0", **asked)
    assert refused.reason.startswith("Model architecture RWForCausalLM was supported in vLLM until v0.28.0")
    assert vllm_module.configuration_refusal(spec, precision, version="0.32.0", **asked) is refused
    assert vllm_module.configuration_refusal(spec, precision, version="0.28.0", **asked) is None
    fresh = vllm_module._configuration_refusal(spec, precision, version="0.32.0", checked=True,
                                               allow_deprecated=False, **asked)
    assert fresh == refused
    listed = dict(asked, capability=list(gpu.compute_capability))  # unhashable: asked afresh, not kept
    assert vllm_module.configuration_refusal(spec, precision, version="0.28.0", **listed) is None


# --- the whole estimate: recorded output ---

def test_falcon_40b_pp_16_remedy_as_recorded():
    """The remedy planned at every release up to 0.28.0 (each holds a request) that takes its 16 stages."""
    from kvplan.commands.estimate import estimate

    plan = estimate("tiiuae/falcon-40b", pp=16).plans[0]
    refusal = plan.engine.refusal
    # the API's names; from session 74 the run stops at 0.6.3: 0.6.2 and older refuse pp > 1 for FalconForCausalLM,
    # on none of their _PP_SUPPORTED_MODELS (plan/sharding.py EARLY_PIPELINE; falcon.py 0.6.3 takes SupportsPP)
    assert refusal.remedy == "it starts with engine vllm==0.28.0 (any release from 0.6.3 before 0.29.0)"
    assert [(f.changes, f.onward, f.fits, f.span) for f in refusal.fixes] == [
        ((("engine", "vllm==0.28.0"),), "", True, ("0.6.3", "0.29.0"))]
    # recorded 68,662,707,063 with vLLM's graph term at 1.25 GiB; at 0.705 GiB (session 67) 585,189,295 B more
    assert plan.engine.available_kv_cache_bytes == 68662707063 + 585189295 == 69247896358


def test_falcon_40b_on_an_rtx_4090_stops_at_the_first_release_short_of_memory(monkeypatch):
    """At pp 4 on 24 GB cards falcon-40b's stages fit from 0.25.0 to 0.28.0 only (older releases leave no request
    room): the remedy is that closed run, as main wrote it before, planned up to the first release that does not hold
    one, and the same as the walk over every boundary release (settled never true)."""
    from kvplan.commands.estimate import estimate

    asked = dict(contexts=[2048], gpu="RTX-4090", pp=4)
    planned = []
    outcome = plan_module._outcome

    def counted(replan, changes):
        planned.append(changes[0][1])
        return outcome(replan, changes)

    monkeypatch.setattr(plan_module, "_outcome", counted)
    stopped = estimate("tiiuae/falcon-40b", **asked).plans[0].engine.refusal
    assert stopped.remedy == "it starts with engine vllm==0.28.0 (any release from 0.25.0 before 0.29.0)"
    assert planned == ["vllm==0.28.0", "vllm==0.27.1", "vllm==0.27.0", "vllm==0.26.0", "vllm==0.25.1",
                       "vllm==0.25.0", "vllm==0.24.0"]
    monkeypatch.setattr(plan_module, "settled", lambda outcomes: False)
    monkeypatch.setattr(plan_module, "_REPLANS", {})
    planned.clear()
    walked = estimate("tiiuae/falcon-40b", **asked).plans[0].engine.refusal
    # 0.28.0 and the 67 boundary releases before it (0.6.3.post1 among them: vllm_window_list.CRASHES_BEFORE)
    assert walked == stopped and len(planned) == 68
