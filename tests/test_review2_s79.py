"""Session 79's second review of the lead's commits (the prefix-caching notice, serve:'s refusal of kvplan's own
flags, the left-out-columns sentence): each defect as the input that showed it.

1. V0's CacheConfig refuses prefix caching where it holds a sliding window: `CacheConfig._verify_prefix_caching`
   raises NotImplementedError("Prefix caching is not supported with sliding window. Run with --disable-sliding-
   window to use prefix caching.") (config.py 0.5.5:579-586, 0.6.3:644-651, 0.7.3:1104-1111; from 0.8 only `and
   not envs.VLLM_USE_V1`: 0.8.0:1175-1177, 0.9.2:1605-1607), its window being ModelConfig.get_sliding_window()
   (engine/arg_utils.py 0.6.3:917, 0.7.3:1143, 0.8.5:1133). Mistral-7B-v0.1 (sliding_window 4096 in every layer)
   on vllm==0.6.3 with --enable-prefix-caching never starts; kvplan passed it with the notice "prefix caching on
   as asked".
2. 0.7.1-0.7.3 turn prefix caching off for MLA (VllmConfig.__post_init__: "MLA is enabled; forcing chunked prefill
   and prefix caching to be disabled.", config.py 0.7.3:3327-3335); kvplan said "prefix caching on as asked", a notice.
3. A serve: line's `--gpu-memory 0.85` (or `--gpu 0.85`) is read by every release's argparse (allow_abbrev, the
   default) as --gpu-memory-utilization 0.85, the one vLLM flag beginning so (tests/data/vllm_serve_flags.json,
   0.5.5-0.34.0): vLLM runs it. kvplan said "vLLM stops on it; give it as the entry's `gpu_memory:` key".
4. The refusal named kvplan's flag dashed (--gpu-memory, --hub-timeout, --format) where the line typed --gpu_memory,
   --hub_timeout, -f: errors name the flag as typed (flags.typed).
5. `kvplan gpus` at 80 columns left out the `also` column (the other names --gpu takes) without a word: its own
   sentence named the device names only.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import deployments_file, run_kvplan, served_refusal

MISTRAL = "mistralai/Mistral-7B-v0.1"  # model_specs: sliding_window 4096, every layer


# 1 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine, pp", [("vllm==0.6.3", "1"), ("vllm==0.7.3", "1"), ("vllm==0.8.5", "2")])
def test_v0_refuses_prefix_caching_on_a_sliding_window_model(engine, pp):
    """0.6.3 and 0.7.3 run V0 only; 0.8.5 falls back to V0 for -pp 2 (vllm_v0_pp.PP_FALLBACK)."""
    r = run_kvplan("estimate", MISTRAL, "--gpu", "H100", "-c", "8192", "--engine", engine, "-pp", pp,
                   "--enable-prefix-caching")
    assert r.returncode == 2 and r.stdout == "", r.stdout
    said = " ".join(r.stderr.split())
    assert "--enable-prefix-caching" in said and "Prefix caching is not supported with sliding window." in said
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    (MISTRAL, "--engine", "vllm==0.8.5"),  # V1 at one stage: the check is V0's only (`not envs.VLLM_USE_V1`)
    ("meta-llama/Llama-3.1-8B-Instruct", "--engine", "vllm==0.6.3"),  # no window
])
def test_prefix_caching_where_vllm_takes_it(args):
    r = run_kvplan("estimate", *args, "--gpu", "H100", "-c", "8192", "--enable-prefix-caching")
    assert r.returncode == 0, r.stderr


def test_a_v0_deployment_with_prefix_caching_on_a_window_is_refused_at_its_line(tmp_path):
    """As check refuses V0's other refusals of a flag (Jamba's chunked prefill): exit 2, the entry's line named."""
    path = deployments_file(tmp_path, f"""  - name: served
    gpu: H100
    engine: vllm==0.6.3
    serve: vllm serve {MISTRAL} --max-model-len 8192 --enable-prefix-caching
""")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 2 and r.stdout == ""
    said = " ".join(r.stderr.split())
    assert "deployment 'served' field 'enable_prefix_caching' is refused by vLLM 0.6.3's V0 engine" in said
    assert "Prefix caching is not supported with sliding window." in said


# 2 -------------------------------------------------------------------------------------------------------------
def test_v0_mla_release_turning_prefix_caching_off_is_a_warning(tmp_path):
    path = deployments_file(tmp_path, """  - name: v073
    model: deepseek-ai/DeepSeek-V2-Lite
    tp: 1
    gpu: H100
    context: 8192
    engine: vllm==0.7.3
    enable_prefix_caching: true
  - name: v080
    model: deepseek-ai/DeepSeek-V2-Lite
    tp: 1
    gpu: H100
    context: 8192
    engine: vllm==0.8.5
    enable_prefix_caching: true
""")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)["results"]}
    (said,) = [f for f in rows["v073"]["findings"] if f["key"] == "enable_prefix_caching"]
    assert said["level"] == "warning"
    assert "MLA is enabled; forcing chunked prefill and prefix caching to be disabled." in said["message"]
    (kept,) = [f for f in rows["v080"]["findings"] if f["key"] == "enable_prefix_caching"]
    assert (kept["level"], kept["message"]) == ("notice", "prefix caching on as asked.")


# 3, 4 ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("typed, said", [
    ("--gpu-memory 0.85", "holds --gpu-memory, a flag of kvplan's that `vllm serve` reads as the beginning of "
                          "--gpu-memory-utilization (argparse's abbreviation); write --gpu-memory-utilization, or "
                          "give kvplan's --gpu-memory as the entry's `gpu_memory:` key."),
    ("--gpu=0.85", "holds --gpu, a flag of kvplan's that `vllm serve` reads as the beginning of "
                   "--gpu-memory-utilization (argparse's abbreviation); write --gpu-memory-utilization, or give "
                   "kvplan's --gpu as the entry's `gpu:` key."),
    ("--gpu_memory 80GB", "holds --gpu_memory, a flag of kvplan's that `vllm serve` reads as the beginning of "
                          "--gpu-memory-utilization (argparse's abbreviation); write --gpu-memory-utilization, or "
                          "give kvplan's --gpu-memory as the entry's `gpu_memory:` key."),
    ("--min_model_len 4096", "holds --min_model_len, a flag of kvplan's that `vllm serve` does not take (vLLM stops "
                             "on it); give it as the entry's `min_model_len:` key."),
    ("--kv_dtype fp8", "holds --kv_dtype, kvplan's name for vLLM's --kv-cache-dtype, which `vllm serve` does not "
                       "take (vLLM stops on it); write --kv-cache-dtype."),
    ("--dcp 2", "holds --dcp, kvplan's name for vLLM's --decode-context-parallel-size, which `vllm serve` does not "
                "take (vLLM stops on it); write --decode-context-parallel-size."),  # ambiguous in 0.32: stops
    ("--engine vllm==0.32.0", "holds --engine, a flag of kvplan's that `vllm serve` does not take (vLLM stops on "
                              "it); give it as the entry's `engine:` key."),  # begins 0.5.5's --engine-use-ray only
    ("--hub_timeout 3", "holds --hub_timeout, a flag of kvplan check's run, not of a deployment; drop it."),
    ("-f json", "holds -f, a flag of kvplan check's run, not of a deployment; drop it."),
])
def test_a_served_kvplan_flag_is_said_as_typed_and_as_vllm_reads_it(tmp_path, typed, said):
    refused = served_refusal(tmp_path, "H100", f"vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192 "
                                               f"{typed}")
    assert refused.endswith(said), refused


def test_gpu_memory_utilization_is_the_only_vllm_flag_kvplans_gpu_flags_begin():
    """The frozen flag lists of every release: --gpu and --gpu-memory begin --gpu-memory-utilization alone (so
    argparse takes the abbreviation), --dcp several in 0.32.0 (ambiguous: vLLM stops)."""
    from pathlib import Path

    frozen = json.loads((Path(__file__).parent / "data" / "vllm_serve_flags.json").read_text())
    for release in frozen["releases"]:
        names = {n for flag in release["flags"].values() for n in flag["names"] + [flag["negative"] or ""]}
        for own in ("--gpu", "--gpu-memory"):
            assert [n for n in names if n.startswith(own)] == ["--gpu-memory-utilization"], release["version"]
    latest = next(r for r in frozen["releases"] if r["version"] == "0.32.0")
    assert len([n for n in latest["flags"] if n.startswith("--dcp")]) == 3


# 5 -------------------------------------------------------------------------------------------------------------
def test_gpus_names_every_column_a_narrow_terminal_leaves_out():
    narrow = run_kvplan("gpus", env={"COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    header = next(line for line in narrow.stdout.splitlines() if line.startswith("name"))
    assert "also" not in header.split() and "device" not in header.split()
    said = " ".join(narrow.stdout.split())
    assert "not shown at this width: device name (nvidia-smi, ROCm), also; a wider terminal or --format json has " \
           "them." in said
    wide = run_kvplan("gpus", env={"COLUMNS": "250"})
    assert "not shown" not in wide.stdout and "wider terminal" not in wide.stdout
