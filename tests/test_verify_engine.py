"""`kvplan verify --engine vllm==X.Y.Z` without a GPU: the flag's parsing and refusals, the measured KV budget each
release's rules rebuild from verify's measured terms (hand arithmetic, vLLM's source cited file:line), vLLM 0.34's
sizing after warmup against vLLM 0.34.0's own numbers (tests/data/vllm_extensible_sizing.json), the engine's view of
the measured budget in 2 MiB granules, and the table / JSON of a fabricated 0.34 result."""

import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT, one_error_line, run_kvplan
from hub_configs import DEEPSEEK_V2_LITE, LLAMA3_8B
from kvplan import verify as V
from kvplan.engines import get_engine
from kvplan.errors import FieldError
from kvplan.model import parse_config
from kvplan.plan.catalog import find_gpu
from kvplan.plan.plan import plan
from kvplan.verify.terms import (TERMS, cublas_before_snapshot, extensible_baseline, extensible_subtracted,
                                 measured_extensible_budget, plan_sized_after_warmup, predicted_kv_init,
                                 predicted_persistent)

GiB, MiB = 2**30, 2**20
REFERENCE = json.loads((Path(__file__).parent / "data" / "vllm_extensible_sizing.json").read_text())



def _plan(release: str, tp: int = 1, gpu_util=None, gpu_name: str = "H100"):
    spec = parse_config(LLAMA3_8B, "m")
    gpu, engine = find_gpu(gpu_name), get_engine(f"vllm=={release}")
    return plan(spec, context=8192, kv_dtype="auto", tp=tp, gpu=gpu, engine=engine,
                budget_for=lambda t, stage=None, kv_dtype="auto": engine.budget(spec, t, gpu, gpu_util, stage=stage,
                                                                                context=8192, kv_dtype=kv_dtype))


# ---- the flag ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,needle", [
    ("vllm==0.99", "--engine vllm==0.99 is outside the releases kvplan models: give a release published on PyPI from "
                   "0.2.0 to 0.34.0"),
    ("vllm==abc", "--engine version 'abc' is not a vLLM release"),
    ("none", "--engine 'none' has no engine budget to judge"),
    ("sglang", "--engine 'sglang' is not an engine kvplan models; verify takes vllm (vLLM 0.32.0) or vllm==<release>"),
])
def test_a_bad_engine_is_one_line_before_torch(value, needle):
    # torch made unimportable: the engine's refusal comes first, not the missing GPU stack's
    code = ("import sys; sys.modules['torch'] = None; "
            f"sys.argv = ['kvplan', 'verify', 'meta-llama/Llama-3.1-8B-Instruct', '--engine', {value!r}]; "
            "from kvplan.__main__ import entry; entry()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert needle in one_error_line(result)


def test_the_releases_kv_dtypes_are_checked():
    # bfloat16 joined --kv-cache-dtype's choices in 0.11.0 (engines/vllm_versions.py KV_DTYPE_SINCE)
    line = one_error_line(run_kvplan("verify", "meta-llama/Llama-3.1-8B-Instruct", "--engine", "vllm==0.10",
                                      "--kv-dtype", "bfloat16"))
    assert "bfloat16 is not a choice of vLLM 0.10 (first listed in 0.11.0)" in line


def test_help_names_the_engine_flag():
    text = " ".join(run_kvplan("verify", "--help").stdout.split())
    assert "--engine" in text and "vllm==<release>" in text


def test_verify_engine_spells_the_release():
    from kvplan.commands.verify import verify_engine

    assert verify_engine("vllm") == "vllm==0.32.0"
    assert verify_engine(" VLLM==0.34.0 ") == "vllm==0.34.0" and verify_engine("vllm==0.20.1") == "vllm==0.20.1"
    with pytest.raises(FieldError, match="has no engine budget"):
        verify_engine("none")


def test_the_engine_reaches_the_rank_options(monkeypatch):
    """commands.verify.verify hands --engine to rank.Options (the GPU half stubbed: no CUDA here)."""
    import kvplan.gpu.nvml as nvml
    import kvplan.gpu.verify_run as run
    from kvplan.commands.verify import verify

    engines = []
    monkeypatch.setattr(nvml, "import_stack", lambda: (None, None))
    monkeypatch.setattr(run, "verify_rank", lambda spec, raw, opts, progress: engines.append(opts.engine) or {})
    verify("meta-llama/Llama-3.1-8B-Instruct", engine="vllm==0.34.0")
    verify("meta-llama/Llama-3.1-8B-Instruct")
    assert engines == ["vllm==0.34.0", "vllm==0.32.0"]


def test_rank_options_take_the_releases_defaults():
    """gpu_memory_utilization: 0.92 from 0.20 (config/cache.py), 1.0 where 0.34 sizes after warmup (0.34.0
    config/cache.py:216-227); the block: 64 from 0.34 (config/cache.py:185), 16 before."""
    from kvplan.gpu import rank as R

    spec, gpu = parse_config(LLAMA3_8B, "m"), find_gpu("H100")
    options = {r: R.resolve_options(spec, R.Options(1, 8192, "auto", None, None, None, None, f"vllm=={r}"), gpu,
                                    gpu.memory_bytes) for r in ("0.19.0", "0.32.0", "0.34.0")}
    assert [options[r].gpu_util for r in options] == [0.9, 0.92, 1.0]
    assert R.predicted_plan(spec, options["0.34.0"], gpu, gpu.memory_bytes).block_size == 64
    assert R.predicted_plan(spec, options["0.32.0"], gpu, gpu.memory_bytes).block_size == 16


# ---- releases that subtract their terms from the requested memory (to 0.33) -------------------------------------

def test_before_020_graphs_are_not_subtracted():
    """0.19.0 envs.py:1654-1655: VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS defaults to "0" (0.20.0 :1724-1725: "1"),
    so the graphs verify measures stay out of 0.19's budget and come off 0.20's."""
    measured = {"weights": 16 * GiB, "activation_peak": GiB, "non_torch": 600 * MiB, "cuda_graphs": 400 * MiB,
                "nccl": None, "runner_state": 0}
    old, new = _plan("0.19.0"), _plan("0.20.0")
    assert V.subtracted_terms(old) == ("weights", "activation_peak", "non_torch")
    assert V.subtracted_terms(new) == ("weights", "activation_peak", "non_torch", "cuda_graphs")
    usable = 70 * GiB
    assert V.measured_kv_budget(usable, measured, V.subtracted_terms(old)) == 70 * GiB - 17 * GiB - 600 * MiB
    assert V.measured_kv_budget(usable, measured, V.subtracted_terms(new)) == 70 * GiB - 17 * GiB - 1000 * MiB


def test_runner_state_counts_from_027():
    """Model Runner V2's penalty counts, int32 max_num_seqs x (vocab + vocab / 32): no term of 0.26 sees them;
    0.27.0 utils/mem_utils.py:317-326 counts total_consumed (free memory since the init snapshot), which does.
    Llama-3-8B, 1,024 sequences, vocab 128,256: 1,024 x (128,256 + 4,008) x 4 = 541,753,344 bytes, with V2's sampler
    rows 1,024 x 17,924 = 18,354,176 and the grammar bitmask 1,024 x (4,008 + 1) x 4 = 16,420,864
    (tests/test_vllm_runner_buffers.py: vLLM's own classes)."""
    assert V.predicted_terms(_plan("0.26.0"))["runner_state"] == 0
    assert "runner_state" not in V.subtracted_terms(_plan("0.26.0"))
    state = V.predicted_terms(_plan("0.27.0"))["runner_state"]
    assert state == 541_753_344 + 18_354_176 + 16_420_864
    assert "runner_state" in V.subtracted_terms(_plan("0.27.0"))


def test_an_unmeasured_nccl_counts_at_its_prediction():
    """V0 (0.6) subtracted NCCL (vllm_budget CONSTANTS v0_nccl); one simulated rank of tp 2 starts no NCCL, so its
    prediction stands in; 0.32 predicts none (V1 starts NCCL before its baseline), so nothing is added."""
    v0 = _plan("0.6.0", tp=2)
    predicted = V.predicted_terms(v0)
    assert "nccl" in V.subtracted_terms(v0) and predicted["nccl"] == 2_340_757_176
    measured = {"weights": 8 * GiB, "activation_peak": GiB, "non_torch": 2 * GiB, "nccl": None}
    assert V.measured_kv_budget(70 * GiB, measured, V.subtracted_terms(v0), predicted) == \
        70 * GiB - 11 * GiB - 2_340_757_176
    assert V.measured_kv_budget(70 * GiB, {**measured, "nccl": GiB}, V.subtracted_terms(v0), predicted) == 58 * GiB
    v1 = _plan("0.32.0", tp=2)
    measured.update(cuda_graphs=GiB // 2, runner_state=GiB // 2)
    assert V.measured_kv_budget(70 * GiB, measured, V.subtracted_terms(v1), V.predicted_terms(v1)) == 58 * GiB


@pytest.mark.parametrize("release", ["0.6.0", "0.10.0", "0.19.0", "0.20.0", "0.26.0", "0.27.0", "0.32.0", "0.33.0"])
@pytest.mark.parametrize("tp", [1, 2])
def test_every_releases_terms_rebuild_its_budget(release, tp):
    """Fed its own predictions, the measured budget of every release up to 0.33 is that release's plan: every term
    name its budget carries is read (predicted_terms) and only those it subtracts come off (subtracted_terms)."""
    p = _plan(release, tp)
    names = {t.name for t in p.budget.terms}
    assert names <= {"memory", "weights", "profile_peak", "non_torch", "runner_state", "cuda_graphs", "nccl"}
    assert not plan_sized_after_warmup(p)
    terms = V.predicted_terms(p)
    assert set(terms) == set(TERMS)
    assert V.measured_kv_budget(p.budget.usable_bytes, terms, V.subtracted_terms(p), terms) == \
        p.kv_budget_bytes_per_gpu


# ---- the engine's init snapshot: cuBLAS's handles first from 0.33 ----------------------------------------------

def test_cublas_handles_precede_the_snapshot_from_033():
    """0.33.0 v1/worker/gpu_worker.py:527-528 and 0.34.0 :534-535 run torch.mm and a biased F.linear before the init
    snapshot (0.34.0 :549); 0.32.0's gpu_worker.py has neither, so its first matmul comes after the snapshot."""
    assert [cublas_before_snapshot(v) for v in ("0.6.0", "0.32.0", "0.33.0", "0.34.0")] == [False, False, True, True]


class _FakeDevice:
    """torch and NVML as _gpu_info sees them: the CUDA context takes 500 MiB; torch.mm makes cuBLAS's handle (8 MiB
    of driver memory) and its 32 MiB workspace in torch's pool; the biased linear makes cuBLASLt's (4 MiB)."""

    def __init__(self):
        self.used, self.reserved, self.calls = 0, 0, []
        cuda = dict(synchronize=lambda: None, memory_reserved=lambda: self.reserved, current_device=lambda: 0,
                    mem_get_info=self._mem_get_info, empty_cache=lambda: self.calls.append("empty_cache"),
                    get_device_properties=lambda i: SimpleNamespace(multi_processor_count=132, major=9, minor=0))
        self.torch = SimpleNamespace(cuda=SimpleNamespace(**cuda), zeros=self._zeros, ones=lambda *a, **k: [0],
                                     mm=self._mm, nn=SimpleNamespace(functional=SimpleNamespace(linear=self._linear)),
                                     bfloat16="bf16", __version__="fake", version=SimpleNamespace(cuda="12.8"))
        self.nvml = SimpleNamespace(used=lambda: self.used, describe=lambda: {"name": "NVIDIA H100 80GB HBM3"})

    def _zeros(self, *args, **kwargs):
        self.used += 500 * MiB
        self.calls.append("context")

    def _mm(self, *args):
        self.used, self.reserved = self.used + 40 * MiB, self.reserved + 32 * MiB
        self.calls.append("mm")

    def _linear(self, *args):
        self.used += 4 * MiB
        self.calls.append("linear")

    def _mem_get_info(self):
        self.calls.append("snapshot")
        return 80 * GiB - self.used, 80 * GiB


@pytest.mark.parametrize("release", ["0.32.0", "0.34.0"])
def test_the_snapshot_follows_the_releases_warmup(monkeypatch, release):
    """From 0.33 verify's baseline is taken after the same warm-up (gpu_worker.py:533-540: mm, biased linear, gc,
    empty_cache), so cuBLAS's 44 MiB sit in the baseline (0.34's baseline row) and not in the non-torch growth
    measured from it; for 0.32 the baseline stays right after the CUDA context, as before."""
    import kvplan.gpu.verify_run as run

    device = _FakeDevice()
    monkeypatch.setattr(run, "torch", device.torch)
    info, baseline, total = run._gpu_info(device.nvml, {}, None, cublas_before_snapshot(release))
    assert info["cuda_context_bytes_nvml"] == 500 * MiB and total == 80 * GiB
    if release == "0.34.0":
        # the cache emptied first too, so that blocks an earlier run left cached are not read as negative growth
        assert device.calls == ["context", "empty_cache", "mm", "linear", "empty_cache", "snapshot"]
        assert info["cublas_warmup_bytes_nvml"] == 44 * MiB and baseline == (544 * MiB, 32 * MiB)
        assert info["memory_total_bytes"] - info["memory_free_bytes"] == 544 * MiB  # 0.34's baseline, NCCL aside
    else:
        assert device.calls == ["context", "snapshot"] and "cublas_warmup_bytes_nvml" not in info
        assert baseline == (500 * MiB, 0) and info["memory_total_bytes"] - info["memory_free_bytes"] == 500 * MiB


# ---- vLLM 0.34: sized from the memory measured after warmup ------------------------------------------------------

def test_034_by_hand():
    """0.34.0 v1/worker/extensible_kv_cache.py:611-618 measure_kv_cache_bytes on an H100 (85,028,224,204 bytes):
    used 17,940,000,000 (weights 16 GiB + non-torch 600 MiB + graphs 400 MiB + 1,134,874,112 more weights, nothing
    left by the profile), transient 939,524,096: margin max(1 GiB, int(0.75 x 939,524,096) = 704,643,072) = 1 GiB;
    headroom 85,028,224,204 - 647,600,537 - 17,940,000,000 = 66,440,623,667; min(85,028,224,204 - 17,940,000,000,
    66,440,623,667 - 1,073,741,824) - 939,524,096 = 64,427,357,747 (the reference's "h100 8b tp1 default")."""
    weights = 17_940_000_000 - 16 * GiB - 1000 * MiB + 16 * GiB
    measured = {"weights": weights, "non_torch": 600 * MiB, "cuda_graphs": 400 * MiB, "runner_state": 0,
                "activation_peak": 939_524_096}
    s = measured_extensible_budget(85_028_224_204, 85_028_224_204, measured, 647_600_537, 0)
    assert (s.used, s.transient, s.margin) == (17_940_000_000, 939_524_096, GiB)
    assert s.available == 64_427_357_747 and s.device_binds
    # the profile's own figure (gpu/model_runner.py:1121-1128): requested - consumption, no graph estimate
    assert s.profiled == 85_028_224_204 - (17_940_000_000 - 400 * MiB) - 939_524_096
    assert extensible_subtracted(s) == ("weights", "activation_peak", "non_torch", "runner_state", "cuda_graphs",
                                        "baseline", "margin")


def test_034_what_the_profile_leaves_allocated_is_used_not_transient():
    """64 MiB of a 2 GiB peak left allocated (cuBLAS workspaces in torch's pool): used grows by it, the transient
    shrinks by it (utils/mem_utils.py:333-335 transient_peak_headroom = peak - allocated), so the budget is the
    same while the margin stays at its floor, and larger once 0.75 x transient is above the floor."""
    base = {"weights": 20 * GiB, "non_torch": GiB // 2, "cuda_graphs": GiB, "runner_state": 0}
    floor = measured_extensible_budget(80 * GiB, 80 * GiB, {**base, "activation_peak": GiB}, GiB // 2, 64 * MiB)
    assert (floor.used, floor.transient, floor.margin) == (21.5 * GiB + 64 * MiB, GiB - 64 * MiB, GiB)
    assert floor.available == 80 * GiB - GiB // 2 - 21.5 * GiB - 64 * MiB - GiB - (GiB - 64 * MiB)
    big = measured_extensible_budget(80 * GiB, 80 * GiB, {**base, "activation_peak": 4 * GiB}, GiB // 2, 64 * MiB)
    transient = 4 * GiB - 64 * MiB
    assert big.margin == int(0.75 * transient) == 3 * GiB - 48 * MiB
    assert big.available == 80 * GiB - GiB // 2 - (21.5 * GiB + 64 * MiB) - (3 * GiB - 48 * MiB) - transient


def test_034_rocm_floor_and_a_requested_memory_that_binds():
    """ROCm keeps 3 GiB (extensible_kv_cache.py:64); an explicit 0.5 leaves more than the margin free, so the
    requested memory binds (:615, "the margin never reduces an explicit budget that already leaves that much free")."""
    measured = {"weights": 10 * GiB, "activation_peak": GiB}
    rocm = measured_extensible_budget(192 * GiB, 192 * GiB, measured, GiB, 0, rocm=True)
    assert rocm.margin == 3 * GiB and rocm.available == 192 * GiB - GiB - 10 * GiB - 3 * GiB - GiB
    half = measured_extensible_budget(80 * GiB, 40 * GiB, measured, GiB, 0)
    assert not half.device_binds and half.available == 40 * GiB - 10 * GiB - GiB
    assert extensible_subtracted(half) == ("weights", "activation_peak", "non_torch", "runner_state", "cuda_graphs")
    nothing = measured_extensible_budget(24 * GiB, 24 * GiB, {"weights": 23 * GiB, "activation_peak": GiB}, GiB, 0)
    assert nothing.available == 0


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=[c["name"] for c in REFERENCE["cases"]])
def test_034_is_vllms_own_figure(case):
    """vLLM 0.34.0's measure_kv_cache_bytes run on the same device states (benchmarks/vllm_reference/
    extensible_sizing.py): its resident memory is verify's used (all of it in the weights here, nothing persistent
    from the profile), its transient the profile peak; then committed_blocks is blocks_within (:313-318)."""
    from kvplan.engines.vllm import committed_blocks

    measured = {"weights": case["resident"], "activation_peak": case["transient"]}
    s = measured_extensible_budget(case["memory"], math.ceil(case["memory"] * case["utilization"]), measured,
                                   case["baseline"], 0, rocm=case["margin_floor"] == 3 * GiB)
    assert s.available == case["available"]
    strides = tuple(stride for stride, count in case["strides"] for _ in range(count))
    assert committed_blocks(s.available, strides, REFERENCE["granule"]) == case["blocks"]


def test_034_baseline_of_a_simulated_rank_adds_nccl():
    """NCCL's 1.75 GiB (plan/budget.py NCCL_BYTES: int(1.75 x 2**30) = 1,879,048,192) on one simulated rank at tp > 1;
    a real group's NCCL is inside its snapshot; tp 1 has none."""
    assert extensible_baseline(600 * MiB, None, 2) == 600 * MiB + 1_879_048_192
    assert extensible_baseline(2400 * MiB, 1800 * MiB, 2) == 2400 * MiB  # a real group: inside it
    assert extensible_baseline(600 * MiB, None, 1) == 600 * MiB


def _rank(config, tp: int = 1, gpu_util=None):
    """(plan, resolved options, GPU) of one rank under 0.34 on the catalog's H100 (85,017,493,504 bytes)."""
    from kvplan.gpu import rank as R

    spec, gpu = parse_config(config, "m"), find_gpu("H100")
    opts = R.resolve_options(spec, R.Options(tp, 8192, "auto", gpu_util, None, None, None, "vllm==0.34.0"), gpu,
                             gpu.memory_bytes)
    return R.predicted_plan(spec, opts, gpu, gpu.memory_bytes), opts, gpu


H100 = 85_017_493_504
SNAPSHOT = {"memory_total_bytes": H100, "memory_free_bytes": H100 - 700 * MiB}  # 734,003,200 used at the snapshot


def test_034_sizing_takes_the_engines_persistent_part():
    """DeepSeek-V2-Lite, tp 1, 8,192 batched tokens: vLLM 0.34 keeps its fused-MoE workspace after the profile run
    (0.33 v1/worker/workspace.py:209-266: grown, never freed): 8,192 tokens x 6 experts x (max(I 1,408, H 2,048) +
    max(2 x 1,408, 2,048)) x 2 bytes = 478,150,656. Verify has no such workspace (its own run left 16 MiB): the sizing
    counts the engine's. Measured: weights 30 GiB, non-torch 512 MiB, graphs 1 GiB, peak 2 GiB:
    used = 32,212,254,720 + 536,870,912 + 1,073,741,824 + 478,150,656 = 34,301,018,112;
    transient = 2,147,483,648 - 478,150,656 = 1,669,332,992; margin = int(0.75 x it) = 1,251,999,744;
    85,017,493,504 - 734,003,200 - used - margin = 48,730,472,448 (< requested - used: the device binds);
    available = 48,730,472,448 - 1,669,332,992 = 47,061,139,456 (with verify's 16 MiB instead: 46,715,109,376)."""
    import kvplan.gpu.verify_run as run

    plan_, opts, gpu = _rank(DEEPSEEK_V2_LITE)
    assert predicted_persistent(plan_) == plan_.budget.measured.persistent_bytes == 8192 * 6 * (2048 + 2816) * 2
    measured = {"weights": 30 * GiB, "activation_peak": 2 * GiB, "non_torch": 512 * MiB, "cuda_graphs": GiB,
                "runner_state": 0, "nccl": None}
    s = run._extensible_sizing(plan_, opts, SNAPSHOT, measured, gpu)
    assert (s.persistent, s.used, s.transient, s.margin) == (478_150_656, 34_301_018_112, 1_669_332_992,
                                                             1_251_999_744)
    assert s.baseline == 734_003_200 and s.device_binds and s.available == 47_061_139_456
    assert measured_extensible_budget(H100, H100, measured, 734_003_200, 16 * MiB).available == 46_715_109_376
    record = run.extensible_record(s, {"persistent_bytes": 16 * MiB})
    assert record["persistent"] == 478_150_656 and record["persistent_measured"] == 16 * MiB
    assert record["persistent_from"].startswith("predicted") and record["available"] == s.available


def test_034_plan_rebuilt_with_its_persistent_part():
    """Fed its own predicted terms and baseline, the sizing with the predicted persistent part is DeepSeek-V2-Lite's
    planned budget (engines/vllm_budget.py extensible_budget counts the same workspace as used)."""
    plan_, _, _ = _rank(DEEPSEEK_V2_LITE)
    terms = V.predicted_terms(plan_)
    s = measured_extensible_budget(H100, H100, terms, terms["baseline"], predicted_persistent(plan_))
    assert s.available == plan_.kv_budget_bytes_per_gpu and s.persistent == 478_150_656


def test_034_a_simulated_rank_keeps_nccl_where_its_plan_does_not():
    """Llama-3-8B, tp 2 on one H100, --gpu-util 0.95: the plan's requested memory binds, so its budget keeps no
    NCCL (engines/vllm_budget.py extensible_budget), yet the engine's snapshot holds NCCL (0.34.0 gpu_worker.py:506-512
    init_worker_distributed_environment before the :549 snapshot). Measured: weights 8 GiB, non-torch 512 MiB, graphs
    1 GiB, runner state 541,753,344, peak 3 GiB: used 10,742,300,672, margin int(0.75 x 3 GiB) = 2,415,919,104;
    requested ceil(0.95 x 85,017,493,504) = 80,766,618,829, less used: 70,024,318,157; the device: 85,017,493,504 -
    (734,003,200 + 1,879,048,192) - used - margin = 69,246,222,336, which binds: available 69,246,222,336 -
    3,221,225,472 = 66,024,996,864 (without NCCL the requested memory would bind: 66,803,092,685)."""
    import kvplan.gpu.verify_run as run

    plan_, opts, gpu = _rank(LLAMA3_8B, tp=2, gpu_util=0.95)
    assert V.predicted_terms(plan_)["nccl"] == 0 and V.predicted_terms(plan_)["baseline"] is None
    measured = {"weights": 8 * GiB, "activation_peak": 3 * GiB, "non_torch": 512 * MiB, "cuda_graphs": GiB,
                "runner_state": 541_753_344, "nccl": None}
    s = run._extensible_sizing(plan_, opts, SNAPSHOT, measured, gpu)
    assert s.baseline == 734_003_200 + 1_879_048_192 and s.requested == 80_766_618_829
    assert s.device_binds and s.available == 66_024_996_864
    alone = measured_extensible_budget(H100, 80_766_618_829, measured, 734_003_200, 0)
    assert not alone.device_binds and alone.available == 66_803_092_685


@pytest.mark.parametrize("tp", [1, 2])
def test_034_plan_rebuilt_from_its_own_terms(tp):
    """Llama-3-8B on an H100 under 0.34 (85,017,493,504 bytes, utilisation 1.0): fed the plan's predictions
    (baseline = CUDA context 647,600,537 + NCCL 1,879,048,192 at tp 2; nothing persistent: FlashInfer's sampler),
    the measured sizing is the plan's budget; at tp 1 by hand: 85,017,493,504 - 647,600,537 - (16,060,522,496 +
    536,870,912 + 577,642,496 + 756,987,985) - int(0.75 x 1,914,175,488) - 1,914,175,488 = 63,088,061,974, the
    runner state being penalty counts 541,753,344 + sampler rows 18,354,176 + grammar bitmask 16,420,864 + 0.34's
    block tables 2 x 1,024 x 128 x 4 + an int64 slot mapping of 8,192 tokens = 1,114,112
    (tests/test_vllm_runner_buffers.py holds each to vLLM's own classes) and the graph term int(0.705 GiB)."""
    p = _plan("0.34.0", tp)
    assert plan_sized_after_warmup(p)
    terms = V.predicted_terms(p)
    assert terms["baseline"] == 647_600_537 + (1_879_048_192 if tp > 1 else 0)
    assert terms["margin"] == int(0.75 * terms["activation_peak"]) == 1_435_631_616
    s = measured_extensible_budget(p.budget.gpu_memory_bytes, p.budget.gpu_memory_bytes, terms, terms["baseline"], 0,
                                   kv_init=predicted_kv_init(p))
    assert s.available == p.kv_budget_bytes_per_gpu and s.profiled == p.budget.measured.profiled_bytes
    if tp == 1:
        assert s.available == 63_088_061_974  # 62,502,872,679 with the 1.25 GiB graph term before session 67
    rows = {r["term"]: r for r in V.term_rows(terms, {**terms, "baseline": terms["baseline"] + MiB})}
    assert rows["baseline"]["difference_bytes"] == MiB and rows["margin"]["error"] == 0


def test_034_an_explicit_utilisation_predicts_no_baseline_or_margin_rows():
    terms = V.predicted_terms(_plan("0.34.0", gpu_util=0.5))
    assert terms["baseline"] is None and terms["margin"] is None
    rows = {r["term"]: r for r in V.term_rows(terms, {"baseline": GiB, "margin": GiB})}
    assert rows["baseline"]["predicted_bytes"] is None and rows["baseline"]["error"] is None
    assert "baseline" not in {r["term"] for r in V.term_rows(V.predicted_terms(_plan("0.32.0")), {})}


def test_034_engine_view_commits_granules():
    """Llama-3-8B, 0.34's 64-token blocks: a page is 64 x 8 heads x 128 x 2 (K, V) x 2 bytes = 262,144 bytes a layer,
    8 MiB a block over 32 layers; a 2 MiB granule a layer holds 8 blocks (extensible_kv_cache.py:305-318), so a budget
    of 1,000 x 64 MiB + 40 MiB commits 8,000 blocks (not 8,005 = budget // 8 MiB); and never more than the profile
    run's own figure allows (vllm.start: min with profiled_bytes // per block)."""
    from kvplan.gpu import rank as R
    from kvplan.plan.budget import MeasuredSizing

    spec, gpu = parse_config(LLAMA3_8B, "m"), find_gpu("H100")
    opts = R.resolve_options(spec, R.Options(1, 8192, "auto", None, None, None, None, "vllm==0.34.0"), gpu,
                             gpu.memory_bytes)
    budget = 1000 * 64 * MiB + 40 * MiB
    view = R.predicted_plan(spec, opts, gpu, gpu.memory_bytes, budget=budget)
    assert view.kv_blocks == 8005
    sized = R.predicted_plan(spec, opts, gpu, gpu.memory_bytes, budget=budget,
                             measured=MeasuredSizing(10**12, 2 * MiB, 1.0))
    assert sized.kv_blocks == 8000 and sized.block_size == 64
    short = R.predicted_plan(spec, opts, gpu, gpu.memory_bytes, budget=budget,
                             measured=MeasuredSizing(500 * 8 * MiB + 5, 2 * MiB, 1.0))
    assert short.kv_blocks == 500


# ---- the result ------------------------------------------------------------------------------------------------

def _recorded_032():
    with open(ROOT / "benchmarks" / "device_runs" / "early" / "verify_h200_2026-12-04_s41_call1.jsonl") as handle:
        return next(r["result"] for r in map(json.loads, handle) if r["result"])


def _fabricated_034():
    """A 0.32 result recorded on an H200 as 0.34 would report it (its numbers made up, not measured)."""
    r = copy.deepcopy(_recorded_032())
    memory = r["gpu"]["memory_total_bytes"]
    measured = {row["term"]: row["measured_bytes"] for row in r["terms"]}
    s = measured_extensible_budget(memory, memory, measured, 700 * MiB, 32 * MiB)
    r["options"]["engine"], r["options"]["gpu_util"] = "vllm==0.34.0", 1.0
    extra = V.term_rows({"baseline": 647_600_537, "margin": GiB}, {"baseline": s.baseline, "margin": s.margin})
    r["terms"] += extra[-2:]
    r["budget"].update(engine="vllm 0.34.0", sizing="extensible", measured_kv_budget_bytes=s.available,
                       extensible=s.__dict__, subtracted_terms=list(extensible_subtracted(s)), usable_bytes=memory)
    return r, s


def test_a_034_result_renders_its_sizing():
    from kvplan.commands.verify import VerifyResult
    from kvplan.render import emit

    r, s = _fabricated_034()
    text = emit(VerifyResult(r), "table")
    flat = " ".join(text.split())
    assert "Options: engine vllm 0.34.0, context" in flat
    assert "KV budget, sized after warmup as vLLM 0.34 does = min(requested" in flat and "the device binds" in flat
    assert "in the baseline, which vLLM 0.34 keeps out of the device's memory" in flat
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert "700 MiB" in lines["baseline"] and "618 MiB" in lines["baseline"] and "margin" in lines
    assert max(len(line) for line in text.splitlines()) <= 100
    data = json.loads(emit(VerifyResult(r), "json"))
    assert data["options"]["engine"] == "vllm==0.34.0" and data["budget"]["engine"] == "vllm 0.34.0"
    assert data["budget"]["extensible"]["available"] == s.available == data["budget"]["measured_kv_budget_bytes"]
    assert "0.34" in emit(VerifyResult(r), "yaml")


def test_a_032_result_keeps_its_line():
    from kvplan.commands.verify import VerifyResult
    from kvplan.render import emit

    flat = " ".join(emit(VerifyResult(_recorded_032()), "table").split())
    assert "Options: engine vllm 0.32.0, context" in flat
    assert "usable - weights - activation peak - non torch - cuda graphs (as measured)" in flat
    assert "sized after warmup" not in flat and "the engine's baseline is taken after it" in flat


def _flat_table(r) -> str:
    from kvplan.commands.verify import VerifyResult
    from kvplan.render import emit

    return " ".join(emit(VerifyResult(r), "table").split())


def test_a_034_rank_of_a_group_prints_its_own_budget_and_the_groups():
    """Rank 1 of a real TP group: its own sizing's figure is the line's result; the group sized every rank by its
    smallest budget (3 GiB less here), said beside it, and each rank's own figure is in its summary line."""
    from kvplan.render.text import size

    r, s = _fabricated_034()
    smallest = s.available - 3 * GiB
    r["budget"].update(measured_kv_budget_bytes=smallest, rank_kv_budget_bytes=s.available)
    r["ranks"] = [{"rank": k, "nccl_init_bytes": GiB, "nccl_bytes": 2 * GiB, "measured_kv_budget_bytes": smallest,
                   "rank_kv_budget_bytes": own, "allocation": {"torch_error": 0.0}, "boundary_confirmed": True,
                   "served": 9} for k, own in ((0, smallest), (1, s.available))]
    flat = _flat_table(r)
    assert f"- transient {size(s.transient)} = {size(s.available)} (the device binds;" in flat
    assert f"; the TP group sizes every rank's cache by its smallest budget, {size(smallest)}, and commits" in flat
    assert f"Rank 0: NCCL 1.00 GiB after init, 2.00 GiB after the first collectives; own KV budget {size(smallest)}" \
        in flat and f"own KV budget {size(s.available)}" in flat


def test_a_034_result_says_the_persistent_part_it_used():
    from kvplan.render.text import size

    r, s = _fabricated_034()
    r["budget"]["extensible"].update(persistent=478_150_656, persistent_measured=16 * MiB)
    flat = _flat_table(r)
    assert (f"graphs and the {size(478_150_656)} the engine keeps from the profile run, as predicted, where verify's "
            f"own run kept 16.0 MiB)") in flat
    assert "smallest budget" not in flat


def test_a_032_rank_of_a_group_prints_its_own_budget():
    from kvplan.render.text import size

    r = _recorded_032()
    own = r["budget"]["measured_kv_budget_bytes"]
    r["budget"].update(rank_kv_budget_bytes=own + GiB)
    flat = _flat_table(r)
    assert (f"(as measured) = {size(own + GiB)}; the TP group sizes every rank's cache by its smallest budget, "
            f"{size(own)}: ") in flat


def _rejudge_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("verify_rejudge", ROOT / "benchmarks" / "verify_rejudge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rejudge_refuses_a_034_record(capsys):
    """A record sized after warmup is not requested memory less its terms: refused in one line, nothing rebuilt."""
    r, _ = _fabricated_034()
    module = _rejudge_module()
    assert module.rejudged([{"args": ["deepseek-ai/DeepSeek-V3", "--tp", "8"], "result": r}]) == []
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["verify_rejudge: `deepseek-ai/DeepSeek-V3 --tp 8`: not rejudged: sized after warmup (vllm 0.34.0's "
                   "extensible KV cache), which this script does not rebuild"]


@pytest.mark.parametrize("engine,expected", [(None, "vllm 0.32.0"), ("vllm==0.33.0", "vllm 0.33.0")])
def test_rejudge_plans_with_the_records_engine(engine, expected):
    """The s41 record (DeepSeek-V3, one simulated rank of tp 8 on an H200, recorded with the 0.32 engine model): the
    plan rejudged is the release the record names (0.32 where it names none); its non-torch term is taken as recorded
    (only records from before the engine model counted it from before the CUDA context)."""
    r = _recorded_032()
    if engine:
        r["options"]["engine"] = engine
    j = _rejudge_module().rejudge({"args": ["deepseek-ai/DeepSeek-V3", "--tp", "8"], "result": r})
    assert j["plan"].budget.engine == expected
    recorded = next(t["measured_bytes"] for t in r["terms"] if t["term"] == "non_torch")
    assert next(row["measured_bytes"] for row in j["rows"] if row["term"] == "non_torch") == recorded


# ---- on a GPU (next session's device run: benchmarks/sessions/s53_device.sh) -----------------------------------------

def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("gpu_util", [None, 0.3])
def test_034_verify_on_the_gpu(gpu_util):
    """Llama-3.2-1B under 0.34: at its default utilisation 1.0 the device binds (baseline and margin kept free), at
    0.3 the requested memory does; the budget is the sizing's, the engine's blocks a whole number of granules."""
    from rich.console import Console

    from kvplan.commands.verify import verify
    from kvplan.verify.progress import Progress

    r = verify("meta-llama/Llama-3.2-1B-Instruct", context=4096, gpu_util=gpu_util, engine="vllm==0.34.0",
               max_num_seqs=8, max_num_batched_tokens=2048, progress=Progress(Console(quiet=True))).result
    b, x = r["budget"], r["budget"]["extensible"]
    assert r["options"]["engine"] == "vllm==0.34.0" and b["engine"].startswith("vllm 0.34")
    assert b["sizing"] == "extensible"
    assert x["device_binds"] == (gpu_util is None) and b["measured_kv_budget_bytes"] == x["available"] > 0
    # the engine's persistent part, as its plan predicts it, is what the sizing used; verify's own is beside it
    assert x["persistent"] == r["plan"]["budget"]["measured"]["persistent_bytes"]
    assert x["transient"] == max(r["profile"]["peak_bytes"] - x["persistent"], 0)
    assert x["persistent_measured"] == r["profile"]["persistent_bytes"] >= 0
    assert r["gpu"]["cublas_warmup_bytes_nvml"] >= 0 and b["rank_kv_budget_bytes"] == x["available"]
    rows = {row["term"]: row for row in r["terms"]}
    assert rows["baseline"]["measured_bytes"] == x["baseline"] > 0 and rows["margin"]["measured_bytes"] >= GiB
    # Llama-3.2-1B: a block is 64 x 8 heads x 64 x 2 x 2 bytes = 128 KiB a layer, so 16 blocks fill a 2 MiB granule
    assert r["measured_plan"]["kv_blocks"] % 16 == 0
    assert r["verdict"]["capacity_confirmed"]


def test_verifys_plan_gives_a_block_size_remedy_the_budget_at_that_block_size():
    """verify's own plan (gpu/rank.py predicted_plan) plans a remedy's block size on the budget there, as estimate
    does (0.34's V2 block tables scale with the blocks a request needs): DeepSeek-V3.2 at tp 8 on 103 GiB under 0.34
    is refused at --block-size 1, and the remedy says it starts at 64, where it holds one request."""
    pytest.importorskip("torch")
    from kvplan.gpu import rank as R
    from kvplan.model.sources import resolve

    spec, gpu = resolve("deepseek-ai/DeepSeek-V3.2", None), find_gpu("H200")
    total = 103 * 2**30
    opts = R.Options(8, 163_840, "auto", None, 1, None, None, "vllm==0.34.0")
    opts = R.resolve_options(spec, opts, gpu, total)
    refused = R.predicted_plan(spec, opts, gpu, total)
    assert refused.engine.refusal.remedy.startswith("it starts with block_size 64, 128")
    at_64 = R.predicted_plan(spec, R.resolve_options(spec, R.Options(8, 163_840, "auto", None, 64, None, None,
                                                                    "vllm==0.34.0"), gpu, total), gpu, total)
    assert at_64.max_concurrency == 1
