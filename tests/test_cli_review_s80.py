"""Session 80's exploratory review of the command line, as a serving engineer uses it: each defect found, held to the
exit code and the key words of the one-sentence message it should have (no snapshot of whole outputs)."""

from __future__ import annotations

import pytest

from conftest import served_refusal

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
