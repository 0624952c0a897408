"""Session 72 (dgprof): DiffusionGemma's profile sampler pass and its ModelState buffers, read in vLLM's wheels
0.24.0-0.34.0 (paths under vllm/ of the release named).

The sampler: DiffusionGemmaModelState.custom_sampler replaces the runner's Sampler with DiffusionSampler in
load_model (v1/worker/gpu/model_runner.py 0.24.0:334-337, 0.28.0:409-412, 0.34.0:527-533), so neither V2's Gumbel
pass nor 0.33's warmup-parameter pass runs for it. compute_logits is the LM head in the model dtype, then
_softcap_logits, one torch.compile'd kernel writing float32 (model_executor/models/diffusion_gemma.py 0.24.0:123-129,
0.28.0:129-135, 0.32.0:125-131, 0.34.0:126-132): 2 + 4 bytes a bf16 logit while it runs.
- 0.24-0.33: the runner's _dummy_sampler_run (0.28.0 :771-782, 0.32.0 :972-983, 0.33.0 :993-1014) computes the
  logits of the dummy requests' rows, min(max_num_seqs, tokens) = 8 here, and calls DiffusionSampler with
  InputBatch.make_dummy's num_draft_tokens 0 (input_batch.py 0.28.0:185): _handle_prefill, nothing a logit.
- 0.34: ModelState.dummy_sampler_run first (model_runner.py :1039-1042; diffusion_gemma.py :924-926 returns True
  after DiffusionSampler.profile_run, :1284-1300): one request, canvas_length rows of zero hidden states, a denoise
  step. Its tile's float32 logits, then sample_row_stats (diffusion_gemma_sampler.py :112-155) writes the softmax in
  the embedding's dtype (bf16) beside them: 4 + 2 bytes a logit, 256 rows.

The buffers, built by init_model_state / custom_sampler in load_model after the weights' profiler (0.28.0
model_runner.py:387-412, 0.34.0 :447-533), counted from 0.27 as V2's penalty counts are: _inputs_embeds_buf
[max_num_batched_tokens, hidden] in the model dtype (diffusion_gemma.py 0.28.0:818-823, 0.34.0:911-916) beside the
EncoderRunner's; self_conditioning_embeds float32 [max_num_seqs, canvas, hidden] (0.28.0:731-733, 0.34.0:747-749);
int64 canvas, argmax canvas, stability_threshold + 1 = 2 history rows (transformers' default 1), from 0.31 an int64
seed canvas and a bool pin mask; the sampler's int32 [max_num_seqs, canvas]. The structured-output bitmask is
max_num_seqs x decode_query_len rows (model_runner.py 0.28.0:424, 0.34.0:550), decode_query_len = canvas + 0
(DiffusionGemmaModelState.num_new_sampled_tokens_per_step 0: diffusion_gemma.py 0.28.0:1032, 0.34.0:1139).

Fixture: google/diffusiongemma-26B-A4B-it's config (tests/test_dgemma_drafter_s72.py): vocab 262,144, hidden 2,816,
canvas 256, bf16; vLLM's defaults for it: max_num_seqs 8 (DiffusionGemma's hook), max_num_batched_tokens 8,192.
"""

from types import SimpleNamespace

import pytest

from conftest import estimate_plan

from kvplan.engines.vllm_budget import diffusion_state
from kvplan.engines.vllm_profile import (diffusion_sampler_pass_bytes, moe_workspace, persistent_after_profile,
                                         sampler_pass)
from kvplan.engines.vllm_runner import model_runner
from kvplan.engines.vllm_versions import behaviour
from kvplan.model.sources import resolve
from kvplan.plan.catalog import find_gpu

from test_dgemma_drafter_s72 import CONFIG, _model

VOCAB, HIDDEN, CANVAS, SEQS, TOKENS = 262_144, 2_816, 256, 8, 8_192
SETTINGS = SimpleNamespace(max_num_seqs=SEQS, max_num_batched_tokens=TOKENS)


def _spec(write_config, **outer):
    return resolve(_model(write_config, **outer), None)


def _term(plan, name):
    return next(t for t in plan["budget"]["terms"] if t["name"] == name)


def _plan(model, version, *args):
    return estimate_plan(model, "--gpu", "h100", "--engine", f"vllm=={version}", *args)


@pytest.mark.parametrize("version, expected", [
    ("0.24.0", SEQS * VOCAB * (2 + 4)),  # 12,582,912: 8 rows of bf16 logits and their float32 softcap
    ("0.28.0", SEQS * VOCAB * (2 + 4)),
    ("0.33.0", SEQS * VOCAB * (2 + 4)),  # not the warmup pass's 8 x V x 14: DiffusionSampler takes a prefill
    ("0.34.0", CANVAS * VOCAB * (4 + 2) + CANVAS * HIDDEN * 2),  # 402,653,184 + 1,441,792 = 404,094,976
])
def test_the_sampler_pass_by_hand(write_config, version, expected):
    spec = _spec(write_config)
    runner = model_runner(spec, behaviour(version), find_gpu("h100"), version)
    assert runner.name == "V2" and runner.model_state_sampler is (version == "0.34.0")
    assert diffusion_sampler_pass_bytes(spec, SEQS, runner)[0] == expected
    # the profile's sampler pass is it, on top of what the forward leaves held: the same whatever the release
    held = (TOKENS + SEQS) * HIDDEN * 2 + moe_workspace(spec, 1, TOKENS, behaviour(version))
    got, how, _ = sampler_pass(spec, 1, TOKENS, SEQS, behaviour(version), runner, find_gpu("h100"), None, True)
    assert got == expected + held and ("one canvas of 256 rows" in how) is (version == "0.34.0")


def test_0_34_s_canvas_sets_the_profile_peak(write_config):
    """At 0.34 the canvas pass (0.73 GiB held + 0.38 GiB) exceeds the 1.02 GiB forward: a 512 canvas raises the peak by
    exactly 256 more rows, 256 x 262,144 x 6 + 256 x 2,816 x 2 = 404,094,976 bytes. 0.32's 8-row pass is under the
    forward whatever the canvas."""
    peaks = {(v, c): _term(_plan(_model(write_config, canvas_length=c), v, "--max-model-len", "8192"),
                           "profile_peak") for v in ("0.32.0", "0.34.0") for c in (256, 512)}
    assert peaks["0.34.0", 512]["bytes"] - peaks["0.34.0", 256]["bytes"] == 256 * VOCAB * 6 + 256 * HIDDEN * 2
    assert peaks["0.32.0", 512]["bytes"] == peaks["0.32.0", 256]["bytes"]
    assert "one canvas of 256 rows x 262144 logits x 6 B" in peaks["0.34.0", 256]["source"]
    assert "8 requests x 262144 logits x 6 B" in peaks["0.32.0", 256]["source"]


def test_no_triton_rows_stay_after_a_diffusion_profile(write_config):
    """On a GPU without FlashInfer's sampler (an MI300X), V2's own sampler would cache Triton top-k / top-p rows for
    the process; DiffusionSampler never calls it, so 0.34's measured sizing keeps only the MoE workspace."""
    spec, rules, gpu = _spec(write_config), behaviour("0.34.0"), find_gpu("mi300x")
    runner = model_runner(spec, rules, gpu, "0.34.0")
    assert persistent_after_profile(spec, 1, None, SETTINGS, rules, runner, gpu) == moe_workspace(spec, 1, TOKENS,
                                                                                                  rules)


@pytest.mark.parametrize("version, expected", [
    ("0.26.0", 0),  # built after the init snapshot, which 0.26 does not count (PENALTY_COUNTED_SINCE)
    # 8,192 x 2,816 x 2 = 46,137,344; 8 x 256 x 2,816 x 4 = 23,068,672; 8 x 256 x (8 x (2 + 2) + 4) = 73,728
    ("0.28.0", 46_137_344 + 23_068_672 + 73_728),
    ("0.30.0", 46_137_344 + 23_068_672 + 73_728),
    ("0.31.0", 46_137_344 + 23_068_672 + 73_728 + 8 * 256 * (8 + 1)),  # + the seed canvas and pin mask: 18,432
    ("0.34.0", 46_137_344 + 23_068_672 + 73_728 + 18_432),
])
def test_the_model_state_by_hand(write_config, version, expected):
    spec = _spec(write_config)
    runner = model_runner(spec, behaviour(version), find_gpu("h100"), version)
    assert diffusion_state(spec, SETTINGS, runner, version) == expected


def test_the_runner_state_term_by_hand(write_config):
    """0.28's runner buffers: penalty counts 8 x (262,144 + 8,192) x 4 = 8,650,752; sampler rows 8 x 17,924 =
    143,392; the bitmask 8 x 256 canvas rows x (8,192 + 1) x 4 = 67,117,056 (before: one row a request, 262,176);
    the EncoderRunner's embeddings 46,137,344; DiffusionGemma's state 69,279,744. 191,328,288 in all (before:
    55,193,664)."""
    term = _term(_plan(_model(write_config), "0.28.0"), "runner_state")
    assert term["bytes"] == 8_650_752 + 143_392 + 67_117_056 + 46_137_344 + 69_279_744
    assert "max_num_seqs x canvas 256 x vocab / 32" in term["source"] and "(diffusion_state)" in term["source"]


def test_an_autoregressive_gemma4_is_untouched(write_config):
    """Gemma 4 (no canvas): its bitmask keeps one row a request and no diffusion state is counted."""
    gemma4 = {key: value for key, value in CONFIG.items() if key != "canvas_length"}
    model = str(write_config({**gemma4, "architectures": ["Gemma4ForConditionalGeneration"], "model_type": "gemma4",
                              "text_config": {**CONFIG["text_config"], "model_type": "gemma4_text"}}, "g4.json"))
    term = _term(_plan(model, "0.34.0", "--max-num-seqs", "8"), "runner_state")
    assert "diffusion_state" not in term["source"] and "canvas" not in term["source"]
