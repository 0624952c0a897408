"""Session 73 (dgemma): DiffusionGemma's CUDA-graph query length, and verify's refusal of it. Read in
vLLM's wheels 0.24.0-0.34.0 (paths under vllm/ of the release named).

1. Two query lengths, one apart. The config's is 1 + the canvas: VllmConfig.num_speculative_tokens returns
   diffusion_config.canvas_length (config/vllm.py 0.24.0:508-518, 0.34.0:587-598) and _set_cudagraph_sizes takes
   1 + that (0.24.0:1689-1691; uniform_decode_query_len 0.29.0:624-642, 0.34.0:657-675): 257 sets the cap
   min(8 x 257 x 2, 512) = 512, the appended decode sizes n x 257 (0.29+) and, in 0.34, the decode request counts
   and the recorded largest size (0.34.0:2385-2447, :2662-2671, :2686-2732). The V2 runner's decode_query_len is
   num_speculative_steps (the canvas) + the ModelState's num_new_sampled_tokens_per_step, 0 for DiffusionGemma
   (v1/worker/gpu/model_runner.py 0.24.0:318-321, 0.32.0:435-438, 0.34.0:451-454; diffusion_gemma.py 0.24.0:1027,
   0.34.0:1139): 256. That one rounds the sizes in 0.24 (model_runner.py 0.24.0:458-462 passes it to
   resolve_cudagraph_mode_and_sizes, config/compilation.py 0.24.0:1426-1433 -> adjust_cudagraph_sizes_for_spec_decode
   :1462-1495; the manager again, cudagraph_utils.py 0.24.0:144-147), rounds and bounds the FULL decode graphs in
   0.25-0.33 (cudagraph_utils.py 0.25.0:188-254, 0.32.0:258-338: round_up(s, 256), within 8 x 256 and the largest
   size) and shapes 0.34's (the manager's decode_query_lens {256: 8}, model_runner.py 0.34.0:801-807 via
   config/vllm.py:677-693; decode_cudagraph_capture_shapes, config/compilation.py 0.34.0:54-68, called at
   cudagraph_utils.py 0.34.0:337-341 with the recorded largest size). kvplan took 257 for both until now.
   The graph term is one figure whatever the count (vllm_budget.graph_bytes), so the blocks and concurrency do not
   move; the counts do, and 0.24 no longer refuses a cap of 256 (257 rounds past it, 256 does not).

2. verify: run on an H100 (session 73, benchmarks/sessions/s73_device.sh), it stopped with an internal error at the full
   layers' K = V cache write: its generic forward does not run DiffusionGemma (Gemma 4's layers, the self-conditioning
   MLP, a 256-token canvas denoised a step). It is refused now in one line, before torch, as other architectures
   verify's forward does not run are.

Fixture: google/diffusiongemma-26B-A4B-it's config (tests/test_dgemma_drafter_s72.py): canvas 256, vocab 262,144,
hidden 2,816, bf16; vLLM's defaults for it on an H100: max_num_seqs 8 (its hook), max_num_batched_tokens 8,192.
"""

from types import SimpleNamespace

import pytest

from conftest import estimate_plan, run_kvplan

from kvplan.engines import EngineFlags
from kvplan.engines.vllm_budget import capture_counts, decode_query_len
from kvplan.engines.vllm_runner import model_runner
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

from test_dgemma_drafter_s72 import _model

SETTINGS = SimpleNamespace(max_num_seqs=8, max_num_batched_tokens=8192)
# the grid up to 512 (config/vllm.py 0.32.0 _set_cudagraph_sizes): 1, 2, 4 (3), 8..248 by 8 (31), 256..512 by 16 (17)
GRID_512 = 3 + 31 + 17


def _counts(write_config, version, **flags):
    spec = resolve(_model(write_config), None)
    gpu = find_gpu("h100")
    runner = model_runner(spec, behaviour(version), gpu, version)
    return capture_counts(spec, SETTINGS, gpu, version, EngineFlags(**flags), runner)


@pytest.mark.parametrize("version, piecewise, full", [
    # 0.24: the sizes rounded to multiples of 256 within 512: 256 (sizes 1-256) and 512 (272-512); FULL at both,
    # 256 <= s <= 8 x 256 (cudagraph_utils.py 0.24.0:205-214). Before: 257 alone for both modes.
    ("0.24.0", (2, 512), (2, 512)),
    # 0.25-0.28: the 51 grid sizes stay; FULL rounds each to 256 or 512, both within 512 and 8 requests
    ("0.28.0", (GRID_512, 512), (2, 512)),
    # 0.29-0.33: the decode size 1 x 257 appended (2 x 257 = 514 is past 512): 52; FULL as above (257 -> 512)
    ("0.29.0", (GRID_512 + 1, 512), (2, 512)),
    ("0.33.0", (GRID_512 + 1, 512), (2, 512)),
    # 0.34: decode request counts by 257: ceil(s / 257) x 257 <= 512 only for s <= 257, so {1}; the runner's shapes
    # by 256 within the recorded 512: min(8, 512 // 256) = 2 requests at most, so (1 request, 256 tokens)
    ("0.34.0", (GRID_512 + 1, 512), (1, 256)),
])
def test_graphs_at_the_runners_query_length(write_config, version, piecewise, full):
    counts = _counts(write_config, version)
    assert (counts.piecewise, counts.piecewise_largest) == piecewise
    assert (counts.full, counts.full_largest) == full


def test_the_runner_decodes_the_canvas_alone(write_config):
    spec = resolve(_model(write_config), None)
    runner = model_runner(spec, behaviour("0.32.0"), find_gpu("h100"), "0.32.0")
    assert runner.name == "V2" and decode_query_len(spec, runner, 257) == 256
    # V1 (no diffusion model runs there) and V2 without a canvas keep the config's 1 + n
    assert decode_query_len(spec, SimpleNamespace(name="V1"), 4) == 4
    assert decode_query_len(SimpleNamespace(canvas_length=0, draft=None), runner, 4) == 4


def test_0_24_starts_with_a_cap_of_256(write_config):
    """--max-cudagraph-capture-size 256: vLLM 0.24 rounds the 35 sizes up to 256 (1..256 -> 256), one graph a mode;
    kvplan refused before, rounding to 257 (> 256)."""
    model = _model(write_config)
    counts = _counts(write_config, "0.24.0", max_cudagraph_capture_size=256)
    assert (counts.piecewise, counts.piecewise_largest, counts.full, counts.full_largest) == (1, 256, 1, 256)
    r = run_kvplan("estimate", str(model), "--gpu", "h100", "--engine", "vllm==0.24.0",
                   "--max-cudagraph-capture-size", "256", "--format", "json")
    assert r.returncode == 0, r.stderr


def test_the_plan_names_the_graphs_and_keeps_its_figures(write_config):
    """0.34 on an H100: the graph term is still the one figure (0.705 GiB), so the cache is what it was
    (11,040 blocks, concurrency 3.23 before and after); its source now names FULL=1 (largest=256)."""
    plan = estimate_plan(_model(write_config), "--gpu", "h100", "--engine", "vllm==0.34.0")
    graphs = next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")
    assert "PIECEWISE=52 (largest=512), FULL=1 (largest=256)" in graphs["source"]
    assert graphs["bytes"] == 756_987_985
    assert plan["engine"]["num_gpu_blocks"] == 11_040
    assert plan["engine"]["max_concurrency"] == pytest.approx(3.2347, abs=1e-4)



def test_verify_refuses_diffusion_gemma_in_one_line(write_config):
    result = run_kvplan("verify", _model(write_config), "--engine", "vllm==0.34.0", "-c", "4096")
    assert result.returncode == 2 and not result.stdout
    assert result.stderr.count("\n") == 1 and "is DiffusionGemma, which denoises a 256-token canvas" in result.stderr
    assert "so use estimate." in result.stderr
