"""Session 80's exploratory review of the command line, as a serving engineer uses it: each defect found, held to the
exit code and the key words of the one-sentence message it should have (no snapshot of whole outputs)."""

from __future__ import annotations

import csv
import io

import pytest

from conftest import run_kvplan, served_refusal

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.mark.parametrize("serve, said, not_said", [
    # a shell's environment assignment before the command (common in compose files and scripts): its words were read
    # as four MODEL arguments, "gives the model twice ('VLLM_ALLOW_LONG_MAX_MODEL_LEN=1', 'vllm', 'serve', ...)"
    (f"'VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vllm serve {LLAMA} -tp 2'",
     "sets 'VLLM_ALLOW_LONG_MAX_MODEL_LEN=1' in the command's environment, which kvplan does not read", "twice"),
    # a wrapper before `vllm serve`: named, not read as three more models
    (f"'docker exec box vllm serve {LLAMA} -tp 2'", "runs 'docker exec box' before `vllm serve`", "twice"),
    # a command of another launcher (the image's own entrypoint): its words counted, not called the same model twice
    (f"'docker run vllm/vllm-openai --model {LLAMA} -tp 2'",
     "holds 3 words where `vllm serve` takes one MODEL ('docker', 'run', 'vllm/vllm-openai')", "twice"),
])
def test_a_command_with_words_before_vllm_serve_says_what_they_are(tmp_path, serve, said, not_said):
    line = served_refusal(tmp_path, "H100", serve)
    assert line.startswith("kvplan: error: ") and "field 'serve'" in line and said in line, line
    assert "give the `vllm serve` command" in line and not_said not in line, line


def _csv_header(*args) -> list:
    r = run_kvplan("estimate", LLAMA, "--gpu", "H100", *args, "--format", "csv")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return next(csv.reader(io.StringIO(r.stdout)))


def test_estimate_csv_keeps_its_engine_columns_whatever_the_plan():
    # a script reads the same columns whether vLLM starts (8K), refuses (1M, past the model's 131,072) or no engine
    # is modelled: before, a run without a refusal had one `engine_refusal` column where a refused one had
    # engine_refusal_reason, ...; --engine none had no engine columns at all
    starts, refused, ideal = _csv_header("-c", "8K"), _csv_header("-c", "1M"), _csv_header("-c", "8K", "--engine",
                                                                                        "none")
    assert starts == refused == ideal
    assert "engine_refusal" not in starts and "engine_refusal_reason" in starts and "engine_num_gpu_blocks" in starts
    rows = list(csv.DictReader(io.StringIO(run_kvplan("estimate", LLAMA, "--gpu", "H100", "-c", "8K", "--format",
                                                      "csv").stdout)))
    assert rows[0]["engine_refusal_reason"] == "" and rows[0]["engine_version"] == "0.32.0"
