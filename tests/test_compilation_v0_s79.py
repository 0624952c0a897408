"""A piecewise cudagraph_mode below compilation level 3 (0.10.1-0.11.x): V1 refuses it, V0 starts (session 79, v0cc).

vLLM's check sits in VllmConfig.__post_init__ under `if envs.VLLM_USE_V1 and current_platform.is_cuda_alike():`
(config/__init__.py 0.10.1:3627-3643, 0.10.2:3501-3517, 0.11.0:462-478; config/vllm.py 0.11.1:660-679 has no V1
condition, V0 being gone): `assert level == CompilationLevel.PIECEWISE, "Compilation level should be
CompilationLevel.PIECEWISE when cudagraph_mode piecewise cudagraphs is used"` for PIECEWISE and FULL_AND_PIECEWISE
(requires_piecewise_compilation). EngineArgs.create_engine_config picks the engine first and sets VLLM_USE_V1 to it
(engine/arg_utils.py 0.10.1:1064-1074, 0.11.0:1149-1159), then builds VllmConfig, so where the oracle falls back to
V0 vLLM starts with the pair, and V0's worker captures its own decode graphs (V0 reads no cudagraph_mode:
vllm_graphs_off.py). The fallbacks used here (engine/arg_utils.py 0.10.1 _is_v1_supported_oracle):
- --kv-cache-dtype fp8 on an A100 (capability 8.0): `not current_platform.is_kv_cache_dtype_supported(...)`
  (:1407-1414), True on CUDA only for capability 10.0 or an fp8 value where FlashAttention 3 runs (Hopper:
  platforms/cuda.py 0.10.1:498-508); 0.10.2 the same for a model without MLA (vllm_v1_oracle KV_DTYPE_RULES).
- a Mamba hybrid (Nemotron-H): `model_config.has_inner_state and _warn_or_fallback("Mamba")` (:1428-1431).
- compute capability below 8.0 (T4, 7.5): (:1400-1405), gone in 0.10.2.
On V1 the same flags stop start-up: kvplan refuses them (exit 2) for those plans alone.
"""

from __future__ import annotations

import json

import pytest
from conftest import deployments_file, estimate_plan, one_error_line, run_kvplan
from test_verify_engine_flags import no_gpu  # noqa: F401 (fixture)

from kvplan import api
from kvplan.errors import FieldError

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
SMALL = "meta-llama/Llama-3.2-1B-Instruct"
NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"  # Mamba hybrid: V0 on 0.9.2-0.10.1 (has_inner_state)
PAIR = '{"cudagraph_mode": "PIECEWISE", "level": 0}'
PAIR_1 = '{"cudagraph_mode": "FULL_AND_PIECEWISE", "level": 1}'
SAID = "Compilation level should be CompilationLevel.PIECEWISE when cudagraph_mode piecewise cudagraphs is used"

V0_PLANS = [  # (model, args): plans the release runs on V0
    (LLAMA, ("--gpu", "A100-80GB", "--kv-cache-dtype", "fp8", "--engine", "vllm==0.10.1")),
    (LLAMA, ("--gpu", "A100-80GB", "--kv-cache-dtype", "fp8", "--engine", "vllm==0.10.2")),
    (NEMOTRON_H, ("--gpu", "H100", "--engine", "vllm==0.10.1")),
    (SMALL, ("--gpu", "T4", "--engine", "vllm==0.10.1")),
]
V1_PLANS = [  # the same releases where they run V1
    (LLAMA, ("--gpu", "H100", "--kv-cache-dtype", "fp8", "--engine", "vllm==0.10.1")),  # FA 3 takes fp8 on Hopper
    (LLAMA, ("--gpu", "A100-80GB", "--engine", "vllm==0.10.1")),  # auto: no fallback
    (NEMOTRON_H, ("--gpu", "H100", "--engine", "vllm==0.10.2")),  # Mamba on V1 from 0.10.2
    (SMALL, ("--gpu", "T4", "--engine", "vllm==0.10.2")),  # capability fallback gone in 0.10.2
    (LLAMA, ("--gpu", "A100-80GB", "--kv-cache-dtype", "fp8", "--engine", "vllm==0.11.0")),  # no V0 from 0.11
]


@pytest.mark.parametrize("config", [PAIR, PAIR_1])
@pytest.mark.parametrize("model, args", V0_PLANS)
def test_v0_fallback_starts_with_a_piecewise_mode_below_level_3(model, args, config):
    plan = estimate_plan(model, "-c", "4096", *args, "--compilation-config", config)
    # V0's own start-up line ("# cuda blocks", worker/worker.py), and its graphs kept (V0 reads no cudagraph_mode)
    assert plan["engine"]["starts"] and plan["engine"]["log_lines"][0].startswith("# cuda blocks:")
    graphs = next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")
    assert "captures no graphs" not in graphs["source"]


@pytest.mark.parametrize("model, args", V1_PLANS)
def test_v1_refuses_a_piecewise_mode_below_level_3(model, args):
    line = one_error_line(run_kvplan("estimate", model, "-c", "4096", *args, "--compilation-config", PAIR))
    release = args[-1].split("==")[1]
    assert line.startswith("kvplan: error: --compilation-config cudagraph_mode PIECEWISE")
    assert f"vLLM {release}'s V1 engine" in line and "level 3" in line and SAID in line


def test_v1_refusal_names_the_flag_typed_and_spares_enforce_eager():
    # -O carries the config itself before 0.12 (one argument): its error is said of -O
    line = one_error_line(run_kvplan("estimate", LLAMA, "--gpu", "H100", "-c", "4096", "--engine", "vllm==0.10.2",
                                     "-O", PAIR))
    assert line.startswith("kvplan: error: -O cudagraph_mode PIECEWISE") and SAID in line
    # --enforce-eager sets cudagraph_mode NONE before the assert (config/__init__.py 0.10.1:3563-3566)
    r = run_kvplan("estimate", LLAMA, "--gpu", "H100", "-c", "4096", "--engine", "vllm==0.10.1", "--enforce-eager",
                   "--compilation-config", PAIR)
    assert r.returncode == 0, r.stderr


def test_a_sweep_refuses_where_one_plan_runs_v1():
    # A100 0.10.1: fp8 runs V0 (starts), auto V1 (stops): the sweep is one bad input, as vLLM would refuse one
    r = run_kvplan("estimate", LLAMA, "--gpu", "A100-80GB", "-c", "4096", "--engine", "vllm==0.10.1",
                   "--kv-cache-dtype", "fp8,auto", "--compilation-config", PAIR)
    assert SAID in one_error_line(r)


def test_check_keys_and_serve_line(tmp_path):
    v0 = deployments_file(tmp_path, f"""  - name: on-v0
    model: {LLAMA}
    tp: 1
    gpu: A100-80GB
    context: 4096
    kv_dtype: fp8
    engine: vllm==0.10.1
    compilation_config:
      cudagraph_mode: PIECEWISE
      level: 0
  - name: served-v0
    gpu: A100-80GB
    engine: vllm==0.10.2
    serve: >-
      vllm serve {LLAMA} --max-model-len 4096 --kv-cache-dtype fp8 --compilation-config '{PAIR}'
""")
    r = run_kvplan("check", "--file", v0)
    assert r.returncode == 0, r.stderr
    v1 = deployments_file(tmp_path, f"""  - name: served-v1
    gpu: H100
    engine: vllm==0.10.2
    serve: >-
      vllm serve {LLAMA} --max-model-len 4096 --kv-cache-dtype fp8 --compilation-config '{PAIR}'
""")
    r = run_kvplan("check", "--file", v1)
    assert r.returncode == 2 and r.stdout == ""
    said = " ".join(r.stderr.split())
    assert "deployment 'served-v1'" in said and "compilation_config" in said and SAID in said


def test_verify_before_the_probe(no_gpu):
    # every CUDA stand-in runs 0.10.2's V1 for Llama at auto: refused before the probe, in vLLM's words
    line = one_error_line(run_kvplan("verify", SMALL, "-c", "2048", "--engine", "vllm==0.10.2",
                                     "--compilation-config", PAIR))
    assert SAID in line and "needs a CUDA GPU" not in line
    # 0.10.1 runs a Mamba hybrid on V0 on every GPU: nothing to refuse, the GPU check follows
    r = run_kvplan("verify", NEMOTRON_H, "-c", "2048", "--engine", "vllm==0.10.1", "--compilation-config", PAIR)
    assert one_error_line(r) == "kvplan: error: kvplan verify needs a CUDA GPU (stand-in)."


def test_api():
    plans = api.estimate(LLAMA, max_model_len=4096, gpu="A100-80GB", kv_cache_dtype="fp8", engine="vllm==0.10.1",
                         compilation_config=json.loads(PAIR))
    assert plans[0].engine.starts
    with pytest.raises(FieldError) as raised:
        api.estimate(LLAMA, max_model_len=4096, gpu="H100", kv_cache_dtype="fp8", engine="vllm==0.10.1",
                     compilation_config=json.loads(PAIR))
    assert raised.value.field == "compilation_config" and SAID in str(raised.value)


def test_a_remedy_that_moves_the_plan_to_v1_is_refused():
    """A fix kvplan searches (another release, another cache dtype) is checked as the engine it runs on would start:
    A100 fp8 runs V0 on 0.10.1 and 0.10.2 (starts), V1 on 0.11.0 (no V0) or at auto (stops)."""
    from kvplan.engines import EngineFlags, get_engine
    from kvplan.model.sources import resolve as resolve_model
    from kvplan.plan.catalog import find_gpu

    spec, gpu = resolve_model(LLAMA), find_gpu("A100-80GB")
    engine = get_engine("vllm==0.10.1", EngineFlags(compilation_config=PAIR))

    def refused(release, kv_dtype):
        asked = dict(engine=release, kv_dtype=kv_dtype, context=4096, block_size=None)
        return engine.configuration_refusal(spec, asked, 1, gpu)

    assert refused("vllm==0.10.1", "fp8") is None and refused("vllm==0.10.2", "fp8") is None
    for release, kv_dtype in (("vllm==0.11.0", "fp8"), ("vllm==0.10.1", "auto")):
        refusal = refused(release, kv_dtype)
        assert refusal.field == "compilation_config" and SAID in refusal.reason
