"""Session 60's second review of the new vLLM flags: --cudagraph-capture-sizes as vLLM spells it, gpt-oss's capture
cap, V1's spec-decode rounding, --disable-sliding-window's length label and RoPE factor, engine none. Every figure is
hand arithmetic from the vLLM source line cited, or vLLM 0.34.0's own code frozen in
tests/data/vllm_cudagraph_sizes_034.json (benchmarks/vllm_reference/cudagraph_sizes.py, its family_cases)."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvplan.cli.run import main  # noqa: E402
from kvplan.engines.vllm_graphs import (GraphCounts, capture_sizes_value, decode_sizes, graph_counts,  # noqa: E402
                                        spec_rounded)
from kvplan.errors import FieldError, KvplanError  # noqa: E402

REFERENCE = json.loads((ROOT / "tests" / "data" / "vllm_cudagraph_sizes_034.json").read_text())
GPT_OSS = "GptOssForCausalLM"
# 1, 2, 4 (3) + 8..248 step 8 (31) + 256..1024 step 16 (49) = 83 sizes: the 0.32 comment "from 67 to 83"
# (model_executor/models/config.py 0.32.0:472-474); 256..512 step 16 is 17, so 512's grid is 51
GRID_1024, GRID_512 = 83, 51


def _run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _graph_source(stdout: str) -> str:
    plan = json.loads(stdout)["plans"][0]
    return next(t for t in plan["budget"]["terms"] if t["name"] == "cuda_graphs")["source"]


# ---- 1. --cudagraph-capture-sizes: vLLM's list[int] with nargs="+" (engine/arg_utils.py 0.34.0:258, :1854-1855)

@pytest.mark.parametrize("value", ["1 2 4 8", "1,2,4,8", "1, 2, 4, 8", "  8 4 2 1 ", [1, 2, 4, 8], (8, "4", 2, 1)])
def test_sizes_take_spaces_commas_and_lists(value):
    assert capture_sizes_value(value) == (1, 2, 4, 8)  # never 1248


@pytest.mark.parametrize("value", ["1,,2", "", " ", "1 2x", "[1, 2]", [True], [0], "²", "1.5"])
def test_bad_sizes_are_refused_naming_the_field(value):
    with pytest.raises(FieldError, match="cudagraph_capture_sizes"):
        capture_sizes_value(value)


def test_unquoted_list_is_refused_in_one_line(capsys):
    code, out, err = _run(capsys, "estimate", "Qwen/Qwen3-8B", "--cudagraph-capture-sizes", "1", "2", "4", "8")
    assert code == 2 and not out and err.count("\n") == 1
    assert "--cudagraph-capture-sizes" in err and "quote" in err and "1,2,4,8" in err
    assert "unexpected extra" not in err
    code, _, err = _run(capsys, "check", "Qwen/Qwen3-8B", "--tp", "1", "--cudagraph-capture-sizes=8", "16")
    assert code == 2 and "quote" in err and "MODEL" not in err


def test_quoted_spaces_and_commas_give_the_same_graphs(capsys):
    counts = []
    for value in ("1 2 4 8", "1,2,4,8"):
        code, out, _ = _run(capsys, "estimate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100", "-f", "json",
                            "--cudagraph-capture-sizes", value)
        assert code == 0
        counts.append(_graph_source(out).split(" (vllm_graphs.py)")[0])
    assert counts[0] == counts[1] and "PIECEWISE=4 (largest=8)" in counts[0]


def test_check_yaml_takes_a_list_or_vllms_string(tmp_path, capsys):
    for value in ("[1, 2, 4, 8]", "'1 2 4 8'", "1,2,4,8"):
        file = tmp_path / "d.yaml"
        file.write_text(f"deployments:\n- name: a\n  model: meta-llama/Llama-3.1-8B-Instruct\n  tp: 1\n  gpu: H100\n"
                        f"  cudagraph_capture_sizes: {value}\n")
        code, _, err = _run(capsys, "check", "--file", str(file))
        assert code in (0, 1), err


def test_help_says_what_vllm_takes_and_its_defaults():
    from kvplan.cli.flags import CAPTURE_SIZES_HELP, MAX_CAPTURE_HELP

    assert "space-separated" in CAPTURE_SIZES_HELP and "'1 2 4 8'" in CAPTURE_SIZES_HELP
    # config/vllm.py 0.13.0:1074 (x decode_query_len), 0.28.0:1934-1940 (SM100 1024), gpt-oss's hook
    for words in ("2 x max_num_seqs x (1 + speculative tokens) (0.13+), 512", "B200-class GPUs from 0.28",
                  "gpt-oss 1024"):
        assert words in MAX_CAPTURE_HELP


# ---- 2. gpt-oss: GptOssForCausalLMConfig.verify_and_update_config -------------------------------------------------

@pytest.mark.parametrize("version", [(0, 11, 1), (0, 20, 0), (0, 32, 0), (0, 33, 0)])
def test_gpt_oss_raises_the_cap_to_1024(version):
    # models/config.py 0.32.0:471-483 (0.11.1:261-275, 0.33.0:549-561): max_cudagraph_capture_size = 1024 where
    # neither flag is given; 1024 requests of 1 token reach every size, so FULL = PIECEWISE
    assert graph_counts(version, 1024, 8192, architecture=GPT_OSS) == GraphCounts(GRID_1024, 1024, GRID_1024, 1024)
    assert graph_counts(version, 1024, 8192) == GraphCounts(GRID_512, 512, GRID_512, 512)  # any other model


def test_gpt_oss_keeps_a_given_cap():
    # the hook leaves max_cudagraph_capture_size alone once given (0.32.0:476-480): 1, 2, 4, 8..248, 256 = 35
    assert graph_counts((0, 32, 0), 1024, 8192, max_capture_size=256, architecture=GPT_OSS).piecewise == 35


def test_gpt_oss_0110_captures_up_to_992():
    # 0.11.0:256-273: cuda_graph_sizes = 1, 2, 4, 8..248, 256..992 step 16 (3 + 31 + 47 = 81, "from 67 to 81")
    assert len(decode_sizes((0, 11, 0), 1024, 8192, architecture=GPT_OSS)) == 81


@pytest.mark.parametrize("case", REFERENCE["family_cases"], ids=lambda c: c["name"])
def test_gpt_oss_034_matches_vllms_own_hook(case):
    # 0.34.0 models/config.py:850-881 run by vLLM itself, then _set_cudagraph_sizes (config/vllm.py:2322)
    got = graph_counts((0, 34, 0), case["max_num_seqs"], case["max_num_batched_tokens"],
                       1 + case["num_speculative_tokens"], case["sm100"],
                       max_capture_size=case["max_cudagraph_capture_size"],
                       capture_sizes=case["cudagraph_capture_sizes"], architecture=case["architecture"])
    assert got == GraphCounts(case["piecewise"], case["piecewise_largest"], case["full"], case["full_largest"])


def test_gpt_oss_estimate_and_verify_use_the_hook(capsys):
    code, out, _ = _run(capsys, "estimate", "openai/gpt-oss-20b", "-f", "json")
    assert code == 0 and f"PIECEWISE={GRID_1024} (largest=1024), FULL={GRID_1024} (largest=1024)" in \
        _graph_source(out)
    from kvplan.verify.terms import capture_sizes

    assert max(capture_sizes("0.32.0", 1024, 8192, architecture=GPT_OSS)) == 1024
    assert max(capture_sizes("0.32.0", 1024, 8192)) == 512


# ---- 3. speculative decoding: adjust_cudagraph_sizes_for_spec_decode on the V1 runner ------------------------------

def test_spec_rounding_by_hand():
    # config/compilation.py 0.32.0:1530-1557: round up to q, keep those within the largest size; q where none is
    assert spec_rounded([1, 2, 4, 8, 12], 4) == [4, 8, 12]
    assert spec_rounded([5], 4) == [4]
    with pytest.raises(KvplanError, match="num_speculative_tokens"):
        spec_rounded([1, 2], 4)


def test_suffix_on_v1_rounds_the_shared_sizes(capsys):
    # Qwen3-8B, suffix (V1 up to 0.33: vllm_runner.py), q = 4, 1024 seqs: cap min(1024 x 4 x 2, 512) = 512; the 51
    # sizes of 512's grid already hold every 4n decode size (0.32.0 config/vllm.py:2365-2442); rounded to 4, 1 and 2
    # become 4: 49 (compilation.py 0.32.0:1495-1501)
    code, out, _ = _run(capsys, "estimate", "Qwen/Qwen3-8B", "-f", "json", "--speculative-config",
                        '{"method":"suffix","num_speculative_tokens":3}')
    assert code == 0 and "PIECEWISE=49 (largest=512), FULL=49 (largest=512)" in _graph_source(out)


def test_rounding_by_release_and_runner():
    v1 = graph_counts((0, 32, 0), 1024, 8192, 4, v1_runner=True)
    v2 = graph_counts((0, 32, 0), 1024, 8192, 4, v1_runner=False)  # V2 sizes itself (compilation.py 0.32.0:1496)
    assert (v1.piecewise, v2.piecewise) == (GRID_512 - 2, GRID_512)
    # 0.20-0.24 round whatever the runner (compilation.py 0.20.0:1411-1418); 0.34 has no such step
    assert graph_counts((0, 24, 0), 1024, 8192, 4, v1_runner=False).piecewise == GRID_512 - 2
    assert graph_counts((0, 25, 0), 1024, 8192, 4, v1_runner=False).piecewise == GRID_512
    assert graph_counts((0, 32, 0), 1024, 8192, 1, v1_runner=True).piecewise == GRID_512  # q = 1: nothing to round


# ---- 4. --disable-sliding-window's length ----------------------------------------------------------------------

def test_capped_length_is_said_as_the_window(capsys):
    # config/model.py 0.32.0:2544-2550: derived max_model_len = sliding_window (4096) below max_position_embeddings
    code, out, _ = _run(capsys, "estimate", "google/gemma-2-9b", "--disable-sliding-window")
    text = " ".join(out.split())  # the notes wrap at the terminal's width
    assert ("max len 4,096 = the model's max_position_embeddings (8,192) capped to its sliding window by "
            "--disable-sliding-window, vLLM's default") in text
    assert "max len 4,096 = the model's own" not in text


@pytest.mark.parametrize("model, config_length, cap", [("google/gemma-2-9b", 8192, 4096),
                                                       ("microsoft/Phi-3-mini-4k-instruct", 4096, 2047)])
def test_json_keeps_the_configs_length_and_names_the_cap(capsys, model, config_length, cap):
    code, out, _ = _run(capsys, "estimate", model, "-f", "json", "--disable-sliding-window")
    data = json.loads(out)
    assert data["model"]["max_position_embeddings"] == config_length
    assert data["model"]["max_model_len_cap"] == {"max_model_len": cap, "key": "sliding_window",
                                                  "by": "disable_sliding_window"}
    assert data["plans"][0]["context"] == cap
    code, out, _ = _run(capsys, "estimate", model, "-f", "json")
    assert "max_model_len_cap" not in json.loads(out)["model"]


def _config(tmp_path, rope, model_type="mistral"):
    config = {"architectures": ["MistralForCausalLM"], "model_type": model_type, "hidden_size": 1024,
              "intermediate_size": 2048, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 8,
              "max_position_embeddings": 32768, "sliding_window": 4096, "vocab_size": 32000,
              "torch_dtype": "bfloat16", "rope_scaling": rope}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_a_linear_rope_factor_scales_the_capped_length(tmp_path, capsys):
    # config/model.py 0.34.0:2606-2612 caps to 4096, then :2657-2678 multiplies by 2 (8192): modelled since the RoPE
    # factor is (engines/vllm_rope_len.py; tests/test_vllm_rope_len.py checks it against vLLM 0.34.0's own code)
    path = _config(tmp_path, {"type": "linear", "factor": 2.0})
    code, out, _ = _run(capsys, "estimate", path, "-f", "json", "--disable-sliding-window")
    assert code == 0 and json.loads(out)["plans"][0]["context"] == 4096 * 2
    code, out, _ = _run(capsys, "estimate", path, "-f", "json")  # without the switch: 32768 x 2
    assert code == 0 and json.loads(out)["plans"][0]["context"] == 32768 * 2


def test_yarn_leaves_the_capped_length_alone(tmp_path, capsys):
    # 0.30+ skip the factor for YaRN (config/model.py 0.32.0:2595-2602): the window stands
    path = _config(tmp_path, {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8192})
    code, out, _ = _run(capsys, "estimate", path, "-f", "json", "--disable-sliding-window")
    assert code == 0 and json.loads(out)["plans"][0]["context"] == 4096


# ---- 5. engine none -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [("--max-cudagraph-capture-size", "64"), ("--cudagraph-capture-sizes", "1 2")])
def test_engine_none_refuses_the_capture_flags(capsys, args):
    code, _, err = _run(capsys, "estimate", "Qwen/Qwen3-8B", "--engine", "none", *args)
    assert code == 2 and args[0] in err and "vLLM only" in err


def test_engine_none_refuses_them_in_the_api_and_yaml(tmp_path, capsys):
    from kvplan import api

    with pytest.raises(FieldError, match="max_cudagraph_capture_size"):
        api.estimate("Qwen/Qwen3-8B", engine="none", max_cudagraph_capture_size=64)
    file = tmp_path / "d.yaml"
    file.write_text("deployments:\n- name: a\n  model: Qwen/Qwen3-8B\n  tp: 1\n  engine: none\n"
                    "  cudagraph_capture_sizes: [1, 2, 4]\n")
    code, _, err = _run(capsys, "check", "--file", str(file))
    assert code == 2 and "cudagraph_capture_sizes" in err and "vLLM only" in err
