"""vLLM's --enable-eplb (engines/vllm_eplb.py; the layout in plan/sharding.py moe_layout): each rank's physical experts,
weights and EplbState bytes held to vLLM 0.32's own FusedMoE and EplbState.add_model built on the CPU
(benchmarks/vllm_reference/eplb.py -> tests/data/vllm_eplb.json, cases named model-tp-dp-R-rank below), to hand
arithmetic from the configs, and vLLM's refusals as one sentence, exit 2."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan
from kvplan.engines.vllm_eplb import Eplb, expert_layer_bytes, reservation_bytes, state_bytes
from kvplan.model.sources import resolve
from kvplan.plan.sharding import moe_layout, stage_weights

FROZEN = json.loads((Path(__file__).parent / "data" / "vllm_eplb.json").read_text())
BUILT = [c for c in FROZEN["cases"] if "error" not in c]
R1, V3, QWEN = "deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-V3", "Qwen/Qwen3-30B-A3B"
GiB = 2**30


def _id(case) -> str:
    return f"{case['model']}-tp{case['tp']}-dp{case['dp']}-R{case['num_redundant_experts']}-r{case['rank']}"


def _layout(case):
    return moe_layout(resolve(case["model"]), case["tp"], case["dp"], case["enable_expert_parallel"], eplb=True,
                      redundant=case["num_redundant_experts"])


def _close(ours: int, vllm: int, model: str) -> bool:
    """Exact for Qwen3 (its bundled size is vLLM's); DeepSeek-V3's bundled size is an estimate 0.0062% above vLLM's
    build (tests/test_expert_parallel.py)."""
    return ours == vllm if model == QWEN else abs(ours / vllm - 1) < 7e-5


@pytest.mark.parametrize("case", BUILT, ids=_id)
def test_each_rank_holds_the_physical_experts_vllm_gives_it(case):
    """(E + R) / ep physical experts a rank: 288 / 8 = 36 (DeepSeek-V3 DP 8 + R 32), 132 / 4 = 33, 136 / 4 = 34."""
    layout, vllm = _layout(case), case["fused_moe"]
    assert layout.experts + layout.redundant == vllm["global_num_experts"]
    assert layout.experts_on(case["rank"]) == layout.local_experts == vllm["local_num_experts"]


@pytest.mark.parametrize("case", BUILT, ids=_id)
def test_the_rank_weighs_what_vllm_builds(case):
    vllm = case["parameters"]["experts"]["bytes"] + case["parameters"]["rest"]["bytes"]
    assert _close(stage_weights(resolve(case["model"]), case["tp"], None, _layout(case)), vllm, case["model"])


@pytest.mark.parametrize("case", BUILT, ids=_id)
def test_eplb_state_is_what_add_model_allocates(case):
    """EplbState.add_model's tensors on the rank (the transfer buffer, maps, load window, scalars), summed."""
    spec, state = resolve(case["model"]), case["eplb_state"]
    config = Eplb(case["num_redundant_experts"], state["window_size"])
    assert spec.moe_layers == state["num_moe_layers"]
    assert _close(expert_layer_bytes(spec, _layout(case)), state["bytes"]["expert_buffer"], case["model"])
    assert _close(state_bytes(spec, _layout(case), config), sum(state["bytes"].values()), case["model"])


@pytest.mark.parametrize("case", BUILT, ids=_id)
def test_the_profile_step_gathers_ep_copies_of_the_gate_up_tensor(case):
    """The largest of one layer's local expert tensors is w13 (gate/up): two thirds of the layer's expert bytes
    (DeepSeek-V3's: 0.03% less, its fp8 scales and its estimated size)."""
    spec, state, layout = resolve(case["model"]), case["eplb_state"], _layout(case)
    config = Eplb(case["num_redundant_experts"], state["window_size"])
    window = state["window_size"] * state["num_moe_layers"] * (layout.experts + 1) * 4
    gathered = reservation_bytes(spec, layout, config) - expert_layer_bytes(spec, layout) - window
    assert abs(gathered / (layout.ep * state["largest_layer_expert_tensor"]) - 1) < 4e-4


def test_hand_arithmetic_qwen3_ep4_with_4_redundant():
    """Qwen3-30B-A3B (frozen case Qwen/Qwen3-30B-A3B-tp4-dp1-R4-r0): 48 MoE layers of 128 experts, gate/up 2 x 768 x
    2048 and down 2048 x 768 bf16 each. EP 4 + 4 redundant: 33 experts a rank."""
    spec = resolve(QWEN)
    layout = moe_layout(spec, 4, 1, True, eplb=True, redundant=4)
    expert = 3 * 2048 * 768 * 2
    assert expert_layer_bytes(spec, layout) == 33 * expert == 311_427_072
    maps = 48 * 132 * 8 + 48 * 128 * 1024 * 8 + 2 * 48 * 128 * 8  # p->l, l->p (1,024 slots), replicas, last loads
    loads = 48 * 132 * 4 + 1000 * 48 * 132 * 4  # this pass, the 1,000-step window
    assert state_bytes(spec, layout, Eplb(4)) == 33 * expert + maps + loads + 4 + 1 == 387_277_061
    gather = 4 * 33 * 2 * 2048 * 768 * 2 + 33 * expert + 1000 * 48 * 129 * 4  # 4 x w13, profile_buffer, load window
    assert reservation_bytes(spec, layout, Eplb(4)) == gather == 1_166_667_264
    assert reservation_bytes(spec, layout, Eplb(4, communicator="nixl")) == 0


def _budget(*args):
    run = run_kvplan("estimate", R1, "-tp", "1", "-dp", "8", "-ep", "--gpu", "H200", "--max-model-len", "32K",
                     "--format", "json", *args)
    assert run.returncode == 0, run.stderr
    (plan,) = json.loads(run.stdout)["plans"]
    return plan


def test_r1_dp8_weights_and_peak_with_32_redundant_experts():
    """DeepSeek-R1 (V3's shapes) DP 8 + EP + 32 redundant on H200: 4 more experts a layer on the busiest rank (58
    layers x 4 x 44,050,944 B = 9.52 GiB) and 1.65 GiB of EplbState in the weights; the profile step (9.41 GiB)
    stays under the forward's 16.6 GiB, so the peak does not move."""
    plain, eplb = _budget(), _budget("--enable-eplb", "--eplb-config", '{"num_redundant_experts": 32}')
    terms = {t["name"]: t["bytes"] for t in plain["budget"]["terms"]}
    with_eplb = {t["name"]: t["bytes"] for t in eplb["budget"]["terms"]}
    extra = with_eplb["weights"] - terms["weights"]
    # an fp8 expert by hand: 3 x 7,168 x 2,048 bytes + float32 128x128 block scales (2 x 16 x 56 + 56 x 16) x 4
    expert = 3 * 7168 * 2048 + (2 * 16 * 56 + 56 * 16) * 4
    assert expert == 44_050_944
    # EplbState as vLLM's own add_model allocates it on this layout (frozen case deepseek-ai/DeepSeek-V3-tp1-dp8-R32;
    # R1 has V3's shapes): 1,774,722,821 bytes. The margin: the bundled size, an estimate 0.0062% above vLLM's build.
    (vllm,) = {sum(c["eplb_state"]["bytes"].values()) for c in BUILT
               if (c["model"], c["tp"], c["dp"], c["num_redundant_experts"]) == (V3, 1, 8, 32)}
    assert abs(extra - (58 * 4 * expert + vllm)) < 2e-4 * extra
    assert with_eplb["profile_peak"] == terms["profile_peak"]
    laid_out = eplb["data_parallel"]
    assert laid_out["routed_experts_per_gpu"] == 36 and laid_out["num_redundant_experts"] == 32
    assert eplb["max_concurrency"] < plain["max_concurrency"]


def test_decode_reads_as_without_redundant_experts():
    """A token reads one replica of each expert it routes to: the decode figures do not move with R."""
    plain = _budget("--enable-eplb")
    more = _budget("--enable-eplb", "--eplb-config", '{"num_redundant_experts": 32}')
    assert plain["decode"]["points"][0]["roofline_itl_ms"] == more["decode"]["points"][0]["roofline_itl_ms"]


@pytest.mark.parametrize("args, text", [
    # frozen case Qwen/Qwen3-30B-A3B-tp4-dp1-R4 (EP off): vLLM's ParallelConfig refuses it
    ((QWEN, "-tp", "4", "--enable-eplb"), "--enable-eplb needs --enable-expert-parallel"),
    ((QWEN, "-tp", "4", "-ep", "--eplb-config", '{"num_redundant_experts": 4}'), "without --enable-eplb"),
    ((QWEN, "-tp", "4", "-ep", "--enable-eplb", "--eplb-config", '{"num_redundant_experts": 1024}'), "at most 1023"),
    ((QWEN, "-tp", "4", "-ep", "--enable-eplb", "--eplb-config", '{"redundant": 4}'), "--eplb-config must be"),
    ((QWEN, "-tp", "4", "-ep", "--enable-eplb", "--eplb-config", '{"communicator": "pynccl"}'), "use_async false"),
    # the user's JSON spelling, not Python's (True, None)
    ((QWEN, "-tp", "4", "-ep", "--enable-eplb", "--eplb-config", '{"num_redundant_experts": true}'),
     "num_redundant_experts must be a whole number, 0 or more, got true."),
    ((QWEN, "-tp", "4", "-ep", "--enable-eplb", "--eplb-config", '{"log_balancedness": null}'),
     "log_balancedness must be true or false, got null."),
    ((QWEN, "-tp", "4", "--enable-eplb", "--engine", "none"), "--enable-eplb is modelled with vLLM only"),
    ((QWEN, "-tp", "4", "-ep", "--enable-eplb", "--engine", "vllm==0.9.1"), "needs vLLM 0.9.2 or later"),
    ((QWEN, "-tp", "4", "-ep", "--enable-eplb", "--engine", "vllm==0.20.0"), "is modelled from vLLM 0.24 on"),
    ((QWEN, "-tp", "4", "-ep", "--enable-eplb", "--num-redundant-experts", "4", "--engine", "vllm==0.11.2"),
     "is modelled from vLLM 0.24 on"),
    ((QWEN, "-tp", "4", "-ep", "--enable-eplb", "--num-redundant-experts", "4"), "was removed in vLLM 0.12"),
    ((QWEN, "-tp", "4", "-ep", "--enable-eplb", "--eplb-config", "{}", "--engine", "vllm==0.10.1"),
     "--eplb-config needs vLLM 0.10.2"),
])
def test_refusals_are_one_sentence(args, text):
    run = run_kvplan("estimate", *args)
    assert run.returncode == 2 and run.stdout == "" and len(run.stderr.splitlines()) == 1, run.stderr
    assert text in run.stderr


@pytest.mark.parametrize("args, text", [
    # frozen case Qwen/Qwen3-30B-A3B-tp1-dp3-R0: vLLM's FusedMoE refuses 128 experts over 3 ranks
    (("-dp", "3"), "EPLB's 128 + 0 redundant = 128 physical experts do not split evenly over the 3 EP ranks"),
    (("-dp", "3", "--eplb-config", '{"num_redundant_experts": 2}'), "num_redundant_experts 1, 4, 7, ... would"),
    ((), "EPLB needs more than one GPU in the expert-parallel group (TP x DP > 1)"),
])
def test_a_layout_vllm_refuses_is_a_bad_row_as_a_bad_tp_degree_is(args, text):
    """EPLB's refusals that hang on the TP degree mark that plan invalid (tp_valid false, the sentence in
    tp_errors), as a degree that does not divide the heads does, rather than refusing the command."""
    run = run_kvplan("estimate", QWEN, "-ep", "--enable-eplb", *args, "--format", "json")
    assert run.returncode == 0, run.stderr
    (plan,) = json.loads(run.stdout)["plans"]
    assert not plan["tp_valid"] and plan["max_concurrency"] is None
    assert len(plan["tp_errors"]) == 1 and text in plan["tp_errors"][0]


def test_a_sweep_marks_only_the_degree_eplb_cannot_split():
    """DeepSeek-R1's 256 + 8 physical experts split over EP 4 and 8 (66, 33 a rank), not over 16: that row is bad,
    its footnote names the refusal, the other rows are planned and the command succeeds; check fails that one
    deployment (exit 1)."""
    flags = ("-tp", "4,8,16", "-ep", "--enable-eplb", "--eplb-config", '{"num_redundant_experts": 8}', "--gpu",
             "H200", "--max-model-len", "32K")
    run = run_kvplan("estimate", R1, *flags, "--format", "json")
    assert run.returncode == 0, run.stderr
    plans = {p["tp"]: p for p in json.loads(run.stdout)["plans"]}
    assert [plans[tp]["tp_valid"] for tp in (4, 8, 16)] == [True, True, False]
    assert plans[8]["data_parallel"]["routed_experts_per_gpu"] == 33 and plans[8]["max_concurrency"] > 0
    assert "264 physical experts do not split evenly over the 16 EP ranks" in plans[16]["tp_errors"][0]
    table = run_kvplan("estimate", R1, *flags)
    assert table.returncode == 0 and "tp 16: EPLB's 256 + 8 redundant" in " ".join(table.stdout.split())
    checked = run_kvplan("check", R1, *flags, "--format", "json")
    assert checked.returncode == 1, checked.stderr
    results = {r["tp"]: r for r in json.loads(checked.stdout)["results"]}
    assert results[8]["passed"] and not results[16]["passed"]
    assert "num_redundant_experts 0, 16, 32, ... would" in results[16]["errors"][0]


def test_deployments_file_and_api(tmp_path):
    """enable_eplb / eplb_config as deployment keys and API keywords, with the figures estimate gives."""
    import kvplan

    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: qwen\n    model: {QWEN}\n    tp: 4\n    enable_expert_parallel: true\n"
                    "    enable_eplb: true\n    eplb_config: {num_redundant_experts: 4}\n    gpu: H100\n")
    run = run_kvplan("check", "--file", path, "--format", "json")
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout)["results"]
    (plan,) = kvplan.estimate(QWEN, tensor_parallel_size=4, gpu="H100", enable_expert_parallel=True,
                              enable_eplb=True, eplb_config={"num_redundant_experts": 4})
    assert result["max_concurrency"] == plan.max_concurrency and plan.parallel.local_experts == 33
    (checked,) = kvplan.check(QWEN, tensor_parallel_size=4, gpu="H100", enable_expert_parallel=True,
                              enable_eplb=True, eplb_config='{"num_redundant_experts": 4}')
    assert checked["max_concurrency"] == plan.max_concurrency
    path.write_text(f"deployments:\n  - name: qwen\n    model: {QWEN}\n    tp: 4\n    enable_expert_parallel: true\n"
                    "    enable_eplb: true\n    eplb_config: {num_redundant_experts: 3}\n")
    run = run_kvplan("check", "--file", path, "--format", "json")
    assert run.returncode == 1, run.stderr
    (finding,) = json.loads(run.stdout)["results"][0]["findings"]
    assert finding["key"] == "eplb_config" and finding["line"] == 7 and "131 physical experts" in finding["message"]
