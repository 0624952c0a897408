"""Review 4 of session 74's merges (PCP speed, Gemma 2's soft-cap refusal, DCP prefill): the defects found.

Gemma 2 under --dtype float32 in vLLM 0.5.4-0.6.4: V0's CUDA selector leaves FlashAttention-2 for XFormers for a
model dtype other than float16 / bfloat16 (attention/selector.py 0.5.4:155-159, 0.6.4:265-269, before the fp8 and
block checks), and XFormersImpl.__init__ raises on the cap (xformers.py 0.5.4:416-418, 0.6.4:388-390). kvplan planned
it as started (52,656 tokens, 12 requests at 4,096 on an A100-80GB in 0.6.4). 0.6.5 only warns, whatever the dtype,
cache dtype or block, so its remedy clears the float32 refusal in every combination the selector falls back on.
"""

from __future__ import annotations

import pytest

from conftest import estimate_plan, run_kvplan

GEMMA2 = "google/gemma-2-9b-it"
A100 = ("--gpu", "A100-80GB", "-c", "4096")
REFUSAL = "XFormers does not support attention logits soft capping."  # xformers.py 0.6.4:390, verbatim


@pytest.mark.parametrize("version", ["0.5.4", "0.6.4"])
def test_float32_refused_where_xformers_raises(version):
    engine = estimate_plan(GEMMA2, *A100, "--engine", f"vllm=={version}", "--dtype", "float32")["engine"]
    assert not engine["starts"] and engine["refusal"]["reason"] == REFUSAL
    assert engine["refusal"]["field"] == "dtype" and "vllm==0.6.5" in engine["refusal"]["remedy"]


@pytest.mark.parametrize("version", ["0.5.3", "0.6.5"])
def test_float32_starts_outside_the_raising_releases(version):
    """0.5.3 builds no cap (gemma2.py); 0.6.5 only warns (xformers.py 0.6.5:386-388)."""
    assert estimate_plan(GEMMA2, *A100, "--engine", f"vllm=={version}", "--dtype", "float32")["engine"]["starts"]


@pytest.mark.parametrize("extra", [(), ("--kv-cache-dtype", "fp8"), ("--block-size", "8")])
def test_float32_remedy_starts_when_rerun(extra):
    """The remedy names a release; check with it passes (the fp8 or block-8 beside float32 included, where a
    --kv-cache-dtype or --block-size alone would leave the float32 refusal)."""
    args = ("check", GEMMA2, "-tp", "1", *A100, "--dtype", "float32", *extra)
    first = run_kvplan(*args, "--engine", "vllm==0.6.4")
    assert first.returncode == 1 and "--engine vllm==0.6.5" in " ".join(first.stderr.split() + first.stdout.split())
    assert run_kvplan(*args, "--engine", "vllm==0.6.5").returncode == 0
