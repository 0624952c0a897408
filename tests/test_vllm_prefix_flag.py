"""--enable-prefix-caching / --no-enable-prefix-caching and --mamba-block-size (engines/vllm_prefix_flag.py), end to
end: the flag, the Python API keyword, check's YAML key, --help, the notes, the refusals.

Independent sources:
- tests/data/vllm_prefix_flag.json: vLLM 0.34.0's own start-up (EngineArgs.create_engine_config, the hybrid block
  hook, EngineCore._initialize_kv_caches, KVCacheManager's admissions) on the emulated H100 with a 10 GiB budget,
  made by benchmarks/vllm_reference/prefix_flag.py (its docstring has the command);
- tests/data/vllm_0.32.0_kv_figures.json: vLLM 0.32.0's, whose "reserve" grid passes enable_prefix_caching=False;
- vLLM's source read by hand, cited at each test; hand arithmetic.
"""

import json
import sys
from pathlib import Path

import pytest

from kvplan import api
from kvplan.engines import EngineFlags, get_engine
from kvplan.engines.vllm import start
from kvplan.engines.vllm_settings import Settings, with_model_defaults
from kvplan.engines.vllm_prefix_flag import as_asked, asked_prefix_caching
from kvplan.errors import FieldError
from kvplan.model.precision import resolve_kv_dtype
from kvplan.plan.catalog import find_gpu
from tests.conftest import deployments_file, one_error_line, run_kvplan

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from engine_vllm_reference import measured_sizing, model_spec  # noqa: E402

FROZEN = json.loads((ROOT / "tests" / "data" / "vllm_prefix_flag.json").read_text())["cases"]
FIGURES_032 = json.loads((ROOT / "tests" / "data" / "vllm_0.32.0_kv_figures.json").read_text())["cases"]
QWEN3_NEXT = "Qwen/Qwen3-Next-80B-A3B-Thinking"
NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"
GIB = 2**30


def _through_the_flags(case: dict, version: str):
    """kvplan's start-up for a frozen case with its flags given as EngineFlags (the path --enable-prefix-caching and
    --mamba-block-size take), on the case's budget."""
    inputs = case["inputs"]
    spec = model_spec(inputs["model"])
    flags = EngineFlags(enable_prefix_caching=inputs.get("enable_prefix_caching"),
                        mamba_block_size=inputs.get("mamba_block_size"))
    engine = get_engine(f"vllm=={version}", flags)
    settings = engine.settings(inputs["max_model_len"], find_gpu("H100"), spec=spec)
    budget = inputs["available_kv_cache_bytes"]
    return start(spec, tp=inputs["tp"], precision=resolve_kv_dtype("auto", spec.dtype, spec.auto_kv_dtype),
                 settings=settings, available=[budget], version=version, measured=measured_sizing(budget, version))


@pytest.mark.parametrize("case", FROZEN, ids=lambda c: "{model}-{max_model_len}-{pc}-{mbs}".format(
    model=c["inputs"]["model"].split(":")[-1].split("/")[-1][:12], max_model_len=c["inputs"]["max_model_len"],
    pc=c["inputs"].get("enable_prefix_caching"), mbs=c["inputs"].get("mamba_block_size")))
def test_vllm_034_own_start_up(case):
    """Every frozen case: the start-up line and the admitted requests vLLM 0.34.0 gives, or its refusal of
    --mamba-block-size with prefix caching off (config/vllm.py 0.34.0:3583-3593), on the field kvplan names."""
    if "--mamba-block-size can only be set" in (case.get("error") or ""):
        with pytest.raises(FieldError) as refused:
            _through_the_flags(case, "0.34.0")
        assert refused.value.field == "mamba_block_size"
        return
    if not case.get("starts"):  # Nemotron-H-8B-Base-8K at 32K: past its own length, a ModelConfig refusal
        assert "max_model_len" in case["error"]
        return
    figures = _through_the_flags(case, "0.34.0").figures
    assert figures.log_lines[-1] == case["log_lines"][0]
    assert figures.resident_sequences == case["resident"]["requests"]
    assert figures.num_gpu_blocks == case["kv"]["num_gpu_blocks"]


def test_the_flag_changes_what_0_34_logs():
    """The frozen figures themselves: off raises the logged tokens (one state block a request, not one a block):
    Qwen3-Next TP 2 at 8K 516,778 -> 689,038, Nemotron-H-8B 189,676 -> 352,256 (vLLM 0.34.0's own lines)."""
    lines = {(c["inputs"]["model"], c["inputs"]["max_model_len"], c["inputs"].get("enable_prefix_caching"),
              c["inputs"].get("mamba_block_size")): c.get("log_lines") for c in FROZEN}
    assert "516,778 tokens" in lines[(QWEN3_NEXT, 8192, True, None)][0]
    assert "689,038 tokens" in lines[(QWEN3_NEXT, 8192, False, None)][0]
    assert "352,256 tokens" in lines[("make_figures.py:NEMOTRON_H_8B", 8192, False, None)][0]


@pytest.mark.parametrize("model", [QWEN3_NEXT, "tests/hub_configs.py:JAMBA", "make_figures.py:NEMOTRON_H_8B"])
def test_vllm_032_no_enable_prefix_caching(model):
    """vLLM 0.32.0's own --no-enable-prefix-caching cases (reserve grid), through the flag."""
    case = next(c for c in FIGURES_032 if c["inputs"]["model"] == model
                and c["inputs"].get("enable_prefix_caching") is False)
    figures = _through_the_flags(case, "0.32.0").figures
    assert figures.log_lines[-1] == case["log_lines"][-1]
    assert figures.num_gpu_blocks == case["kv"]["num_gpu_blocks"]


# ---- what vLLM does with an explicit setting, by release (read by hand) -------------------------------------------

@pytest.mark.parametrize("version, qwen3_next, nemotron_h", [
    ("0.11.0", False, False),  # models/config.py 0.11.0:296: off for every Mamba model whatever the flag
    ("0.13.0", False, True),   # 0.12.0:292-309: kept for SupportsMambaPrefixCaching classes (nemotron_h.py) only
    ("0.14.1", False, True),   # 0.14.1:332-349, the same
    ("0.15.1", True, True),    # 0.15.0:332-351: kept, "align" or "all"
    ("0.25.1", True, True),
    ("0.32.0", True, True),
])
def test_enable_prefix_caching_on_a_hybrid(version, qwen3_next, nemotron_h):
    assert asked_prefix_caching(model_spec(QWEN3_NEXT), version, True)[0] is qwen3_next
    assert asked_prefix_caching(model_spec("make_figures.py:NEMOTRON_H_8B"), version, True)[0] is nemotron_h
    for model in (QWEN3_NEXT, "make_figures.py:NEMOTRON_H_8B"):  # off is always kept
        assert asked_prefix_caching(model_spec(model), version, False) == (False, "")


def test_the_default_stays_where_no_flag_is_given():
    """A hybrid before 0.28 starts with prefix caching off (arg_utils.py 0.26.0:2518-2522), the flag turns it on."""
    spec = model_spec(QWEN3_NEXT)
    base = Settings(8192, 8192, 1024, 2)
    assert with_model_defaults(spec, base, "0.20.0").prefix_caching is False
    assert with_model_defaults(spec, Settings(8192, 8192, 1024, 2, prefix_caching_asked=True), "0.20.0").prefix_caching
    assert with_model_defaults(spec, base, "0.32.0").prefix_caching is True
    off = Settings(8192, 8192, 1024, 2, prefix_caching_asked=False)
    assert with_model_defaults(spec, off, "0.32.0").prefix_caching is False
    dense = model_spec("meta-llama/Llama-3.1-8B")
    assert with_model_defaults(dense, off, "0.32.0").prefix_caching is False


def test_attention_free_all_mode_is_refused_and_0_34_is_priced():
    """0.11.1-0.27.x keep an attention-free Mamba model's states in "all" mode (mamba.py / mamba2.py implement
    SupportsMambaPrefixCaching, 0.25.1), which kvplan does not price; 0.34.0's figures are frozen above."""
    spec = model_spec("make_figures.py:MAMBA2_780M")
    with pytest.raises(FieldError) as refused:
        as_asked(spec, Settings(8192, 8192, 1024, 2, prefix_caching=False, prefix_caching_asked=True), "0.20.0")
    assert refused.value.field == "enable_prefix_caching" and "0.28" in str(refused.value)
    assert as_asked(spec, Settings(8192, 8192, 1024, 2, prefix_caching_asked=True), "0.34.0").prefix_caching


def test_align_mode_refuses_a_speculative_config_in_0_15_and_0_16():
    """models/config.py 0.15.0:357-359 and 0.16.0:357-359 assert no speculative config in "align" mode; 0.17.0
    has no such assert; Nemotron-H runs "all" mode there (not asserted)."""
    on = Settings(8192, 8192, 1024, 2, prefix_caching_asked=True, speculative=True)
    for version in ("0.15.1", "0.16.0"):
        with pytest.raises(FieldError, match="not compatible with speculative decoding"):
            as_asked(model_spec(QWEN3_NEXT), on, version)
    assert as_asked(model_spec(QWEN3_NEXT), on, "0.17.0").prefix_caching
    assert as_asked(model_spec("make_figures.py:NEMOTRON_H_8B"), on, "0.15.1").prefix_caching


# ---- --mamba-block-size -------------------------------------------------------------------------------------------

def _nemotron_block(version: str, mamba_block=None) -> int:
    flags = EngineFlags(enable_prefix_caching=True, mamba_block_size=mamba_block)
    plan = api.estimate(NEMOTRON_H, max_model_len=8192, gpu="H100", engine=f"vllm=={version}",
                        enable_prefix_caching=True, mamba_block_size=mamba_block)[0]
    assert flags.mamba_block_size == mamba_block
    return plan.engine.block_size


def test_mamba_block_size_is_the_all_mode_base():
    """"all" mode (Nemotron-H, 0.20.0): block = lcm(base, 16) x cdiv(T, lcm), T the tokens one Mamba state's page
    holds (models/config.py 0.15.0:483-486; platforms/interface.py 0.20.0:590-595). The Mamba chunk (128) gives
    1152 = 128 x 9 and 0.20's "align" rule 16 x 65 = 1040 (the same model with the flag off), so 1024 < T <= 1040;
    base 100: lcm 400, 400 x cdiv(T, 400) = 1200; base 2048: 2048; base 4096: 4096."""
    assert _nemotron_block("0.20.0") == 1152
    assert _nemotron_block("0.20.0", 100) == 1200
    assert _nemotron_block("0.20.0", 2048) == 2048
    assert _nemotron_block("0.20.0", 4096) == 4096


def test_mamba_block_size_changes_nothing_in_align_mode():
    """"align" mode sets the Mamba block to the attention block (platforms/interface.py 0.34.0:1126-1127; the
    frozen 0.34.0 cases with 1024 match those without)."""
    kwargs = dict(tensor_parallel_size=2, quantization="fp8", max_model_len=8192, gpu="H100",
                  enable_prefix_caching=True)
    plain = api.estimate(QWEN3_NEXT, **kwargs)[0]
    assert api.estimate(QWEN3_NEXT, mamba_block_size=1024, **kwargs)[0].engine == plain.engine


def test_mamba_block_size_refusals_one_line():
    off = one_error_line(run_kvplan("estimate", NEMOTRON_H, "-c", "8K", "--gpu", "H100", "--no-enable-prefix-caching",
                                    "--mamba-block-size", "1024"))
    assert "--mamba-block-size can only be set with --enable-prefix-caching" in off and "config/vllm.py" in off
    default_off = one_error_line(run_kvplan("estimate", NEMOTRON_H, "-c", "8K", "--gpu", "H100", "--engine",
                                            "vllm==0.20.0", "--mamba-block-size", "1024"))
    assert "add --enable-prefix-caching" in default_off
    old = one_error_line(run_kvplan("estimate", NEMOTRON_H, "-c", "8K", "--engine", "vllm==0.11.0",
                                    "--enable-prefix-caching", "--mamba-block-size", "1024"))
    assert "needs vLLM 0.11.1 or later" in old  # arg_utils.py 0.11.1:933, absent from 0.11.0
    for bad in ("0", "-16", "x", "1.5"):
        line = one_error_line(run_kvplan("estimate", NEMOTRON_H, "--mamba-block-size", bad))
        assert line.startswith("kvplan: error: --mamba-block-size must be a whole number of tokens above 0")
    # equal to max_model_len passes vLLM's validator (config/vllm.py 0.34.0:3586-3589)
    assert api.estimate(NEMOTRON_H, max_model_len=8192, gpu="H100", enable_prefix_caching=False,
                        mamba_block_size=8192)


# ---- the surfaces ----------------------------------------------------------------------------------------------

def test_cli_spellings_notes_and_help():
    def plan(*args):
        r = run_kvplan("estimate", QWEN3_NEXT, "-tp", "2", "-q", "fp8", "-c", "8K", "--gpu", "H100", "--format",
                       "json", *args)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)
    default, on, off = plan(), plan("--enable-prefix-caching"), plan("--no-enable-prefix-caching")
    assert default["plans"][0]["engine"] == on["plans"][0]["engine"]  # 0.32.0: on by default for a hybrid
    assert off["plans"][0]["engine"]["gpu_kv_cache_tokens"] > on["plans"][0]["engine"]["gpu_kv_cache_tokens"]
    said = json.dumps(off)
    assert "prefix caching off as asked" in said
    assert "prefix caching on as asked" in json.dumps(on) and "as asked" not in json.dumps(default)
    old = run_kvplan("estimate", QWEN3_NEXT, "-tp", "2", "-q", "fp8", "-c", "8K", "--gpu", "H100", "--engine",
                     "vllm==0.13.0", "--enable-prefix-caching")
    assert old.returncode == 0 and "without support for prefix caching: disabling." in " ".join(old.stdout.split())
    helped = " ".join(run_kvplan("estimate", "--help").stdout.split())
    assert "--enable-prefix-caching" in helped and "--no-enable-prefix-caching" in helped
    assert "--mamba-block-size" in helped
    assert "--no-enable-prefix-caching" in " ".join(run_kvplan("check", "--help").stdout.split())


def test_api_check_and_yaml_agree_with_estimate(tmp_path):
    """Nemotron-H-8B at 8K holds 252 requests with caching off and 251 with it on (0.32.0's default for a hybrid),
    so the flag shows in the count. A block of every group is 4 layers x 1,040 tokens x 2 x 8 KV heads x 128 x 2 B
    = 17,039,360 B (4 attention layers, 24 Mamba in 6 groups of 4); a request keeps cdiv(8,192, 1,040) = 8 attention
    blocks and 1 a Mamba group, 14, and its admission takes 14 off, 20 on (2 a Mamba group: vllm_admission.py
    footprint). An A100-80GB's 60,222,004,315 B (with vLLM's 0.705 GiB graph term) is 3,534 blocks, 3,533 past the
    null block: (3,533 - 14) // 14 + 1 = 252, (3,533 - 20) // 14 + 1 = 251. The GPU was an H100 until the graph term
    went from 1.25 to 0.705 GiB (session 67): its 3,453 blocks now hold 246 either way (3,452 - 20 = 3,432 = 245 x
    14 + 2)."""
    kwargs = dict(max_model_len=8192, gpu="A100-80GB", enable_prefix_caching=False)
    plan = api.estimate(NEMOTRON_H, **kwargs)[0]
    checked = api.check(NEMOTRON_H, tensor_parallel_size=1, **kwargs)
    assert checked[0]["max_concurrency"] == plan.max_concurrency == 252
    assert api.estimate(NEMOTRON_H, max_model_len=8192, gpu="A100-80GB")[0].max_concurrency == 251
    file = deployments_file(tmp_path, f"  - name: h\n    model: {NEMOTRON_H}\n    tp: 1\n    gpu: A100-80GB\n"
                                      f"    context: 8192\n    enable_prefix_caching: false\n")
    result = run_kvplan("check", "--file", file, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert f'"max_concurrency": {plan.max_concurrency}' in result.stdout
    file.write_text(file.read_text() + "    mamba_block_size: 1024\n")
    refused = run_kvplan("check", "--file", file, "--format", "json")
    assert refused.returncode != 0 and "--mamba-block-size can only be set" in refused.stdout + refused.stderr
    file.write_text(file.read_text().replace("enable_prefix_caching: false", "enable_prefix_caching: 'no'"))
    assert "must be true or false" in one_error_line(run_kvplan("check", "--file", file))
    with pytest.raises(FieldError, match="enable_prefix_caching"):
        api.estimate(NEMOTRON_H, enable_prefix_caching="yes")


def test_engine_none_refuses_them():
    line = one_error_line(run_kvplan("estimate", NEMOTRON_H, "--engine", "none", "--enable-prefix-caching"))
    assert "modelled with vLLM only" in line


def test_both_spellings_the_last_wins():
    """argparse.BooleanOptionalAction sets the value at each occurrence, so the last one typed is kept."""
    def tokens(*args):
        r = run_kvplan("estimate", NEMOTRON_H, "-c", "8K", "--gpu", "H100", "--format", "json", *args)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["plans"][0]["engine"]["gpu_kv_cache_tokens"]
    on, off = tokens("--enable-prefix-caching"), tokens("--no-enable-prefix-caching")
    assert on != off
    assert tokens("--enable-prefix-caching", "--no-enable-prefix-caching") == off
    assert tokens("--no-enable-prefix-caching", "--enable-prefix-caching") == on
