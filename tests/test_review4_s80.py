"""Review of session 80's graph-mode order (ff90ec32: vllm_full_downgrade.py, vllm_stock_compile.py): the graph view
a plan reads, one object per (spec, GPU).

The budget's memos (vllm_budget.stage_free: the served spec, the runner, the capture counts, a pipeline stage's
budget) key on the flags object by identity. VllmEngine.graph_flags made a new EngineFlags each call for a pooling
model from 0.11.1 (the PIECEWISE downgrade, new in ff90ec32) and for a model with breakable CUDA graphs (Qwen3.5 on
0.34), so every stage of a pipeline missed them: a pp 4 plan worked out 4 stage budgets where its stages are 3
kinds. Now the view is kept per engine for each (spec, GPU), as the engine's settings are.

By hand: Qwen3-8B's shapes have 36 layers, pp 4 lays out 9 a stage (vLLM's even split); Qwen3.5-9B 32, 8 a stage.
The stages differ only in first (embeddings) and last (LM head / pooler): stage 0 first, stages 1 and 2 alike (9 or
8 layers, neither), stage 3 last: 3 kinds (vllm_budget.stage_kind), so 3 budgets worked out for one plan.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import estimate_plan, load_yaml
from kvplan.engines import EngineFlags, get_engine
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp_path, bundled: str, **changes) -> str:
    """A bundled spec's config.json in a folder of its own (a spec object no other test shares)."""
    config = dict(load_yaml((ROOT / "model_specs" / bundled).read_text())["config"], **changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


# (bundled config, its changes, the flags): a pooling architecture (e5-mistral's MistralModel on Qwen3-8B's shapes),
# Qwen3-8B on the pooling runner, and Qwen3.5-9B, whose breakable CUDA graphs 0.34 turns on
CASES = {
    "MistralModel": ("Qwen--Qwen3-8B.yaml", {"architectures": ["MistralModel"], "model_type": "mistral"}, ()),
    "runner pooling": ("Qwen--Qwen3-8B.yaml", {}, ("--runner", "pooling")),
    "breakable": ("Qwen--Qwen3.5-9B.yaml", {}, ()),
}


@pytest.mark.parametrize("case", CASES)
def test_the_graph_view_is_one_object_per_spec_and_gpu(tmp_path, case):
    bundled, changes, args = CASES[case]
    flags = EngineFlags(runner=args[1] if args else "auto")
    spec, gpu = flags.with_runner(resolve(_config(tmp_path, bundled, **changes))), find_gpu("H100")
    engine = get_engine("vllm==0.34.0", flags)
    viewed = engine.graph_flags(spec, gpu)
    assert viewed is not engine.flags  # the view differs from the flags given (PIECEWISE, or breakable)
    assert engine.graph_flags(spec, gpu) is viewed


@pytest.mark.parametrize("case", CASES)
def test_a_pp_4_plan_works_out_each_kind_of_stage_once(tmp_path, monkeypatch, case):
    import kvplan.engines.vllm_budget as budget

    bundled, changes, args = CASES[case]
    worked, real = [], budget._budget
    monkeypatch.setattr(budget, "_budget", lambda *a, **k: worked.append(a[8].index) or real(*a, **k))
    plan = estimate_plan(_config(tmp_path, bundled, **changes), *args, "--gpu", "H100", "-pp", "4", "-c", "8192",
                         "--engine", "vllm==0.34.0")
    assert plan["pp"] == 4 and sorted(worked) == [0, 1, 3]  # stage 2 is stage 1's kind


@pytest.mark.parametrize("config", [None, '{"mode": 0}', '{"splitting_ops": []}', '{"mode": 1}',
                                    '{"cudagraph_mode": "FULL"}'])
def test_breakable_graphs_keep_a_pooling_model_piecewise(config):
    """Qwen3.5-9B on the pooling runner, 0.34 (config/vllm.py 0.34.0): on an H100 breakable graphs set the
    compilation mode NONE (:831-833) and skip both compile-mode rules (:1050-1058, :1842, :1995), the pooler
    config's downgrade makes any full mode PIECEWISE (:1863-1873), and neither the stock-compile rule (mode NONE,
    :3444) nor splitting_ops (VLLM_COMPILE alone, compilation.py :1326) runs after: PIECEWISE whatever the config.
    On an MI300X (no Qwen3.5 in ROCm's breakable set, :138-158) mode 0 goes FULL_AND_PIECEWISE -> FULL_DECODE_ONLY
    -> PIECEWISE -> NONE, mode 1 the same, [] PIECEWISE -> NONE; none given and FULL (mode 3) stay PIECEWISE."""
    flags = EngineFlags(compilation_config=config, runner="pooling")
    spec, engine = flags.with_runner(resolve("Qwen/Qwen3.5-9B")), get_engine("vllm==0.34.0", flags)
    assert engine.graph_flags(spec, find_gpu("H100")).cudagraph_mode == "PIECEWISE"
    rocm = "PIECEWISE" if config in (None, '{"cudagraph_mode": "FULL"}') else "NONE"
    assert engine.graph_flags(spec, find_gpu("MI300X")).cudagraph_mode == rocm
