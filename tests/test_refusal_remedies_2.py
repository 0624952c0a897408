"""A remedy's words hold at every release they name (second review of the configuration refusals' remedies).

A rule kvplan models, memory's included, changes only at a boundary release (vllm_engine.releases), and the releases
between two boundaries act as the older one. So "it starts with --engine vllm==0.19.0 or newer" is true only where
every later boundary release holds a request, planned with its own memory rules (not a fixed budget); each test here
plans the releases the remedy names and the one just past them with kvplan's own estimate, one release at a time.

By vLLM's source (paths under vllm/ of the release named):
- Gemma 4 is in the registry from 0.19.0 (model_executor/models/registry.py); Falcon's RW architecture until 0.28.0.
- Sparse MLA on CUDA from 0.18.0: the backends take blocks of a multiple of 64 (v1/attention/backends/mla/
  flashmla_sparse.py get_supported_kernel_block_sizes; platforms/interface.py:427 update_block_size_for_backend and
  v1/attention/backend.py:170 supports_block_size), so --block-size 16 leaves no attention backend ("No valid
  attention backend found"); 0.11.0-0.17.x forced the block to 64 whatever --block-size said (platforms/cuda.py
  0.11.0 :181-185).
- engine/arg_utils.py's --kv-cache-dtype choices: ultraquant_4bit is not a choice of any release kvplan models, so
  no release fixes it alone; the releases list their own choices (vllm_versions.KV_DTYPE_SINCE)."""

import json
import re

import pytest

from conftest import run_kvplan

from kvplan.api import estimate


def flat(text: str) -> str:
    return " ".join(text.split())


def remedy(*args) -> str:
    """The estimate's footnote for its one refused row, after "does not start: "."""
    r = run_kvplan("estimate", *args, env={"COLUMNS": "2000"})
    assert r.returncode in (0, 1), r.stderr
    (line,) = [line for line in r.stdout.splitlines() if " does not start: " in line]
    return flat(line.split(" does not start: ", 1)[1])


def holds(model, release, **kw) -> bool:
    """kvplan's own plan of `model` at `release` (its memory rules, not a fixed budget) holds one request."""
    (p,) = estimate(model, engine=f"vllm=={release}", **kw)
    return p.engine.refusal is None and p.max_concurrency > 0


def weights_fit(model, release, **kw) -> bool:
    (p,) = estimate(model, engine=f"vllm=={release}", **kw)
    return not p.budget.weights_exceed


GEMMA = dict(gpu="h100", max_model_len=65536, kv_cache_dtype="fp8")
FALCON = dict(gpu="L4", tensor_parallel_size=4, max_model_len=2048)
GLM = dict(gpu="mi300x", tensor_parallel_size=8)


# -- 1. a release range is claimed only where every release in it holds a request --------------------------------------

def test_gemma4_names_the_closed_range_that_holds_a_request():
    """Was "it starts with --engine vllm==0.19.0 or newer": 0.33.0 holds no request at 64K fp8 on an H100. (0.21-0.32
    hold one since V1's sampler pass there is priced as the seeded native pass, 14 B a logit, not the 0.10 / 0.11
    fit of 37: tests/test_s54_fix6.py.) Session 76: 0.19.x starts and holds none either, its admission gate asking
    for every group's blocks at the whole prompt, sliding windows' too (vllm_admission_gate.py; vLLM issue #39734,
    gemma-4-31B-it on 0.19.1rc), so the range starts at 0.20.0, where the gate caps the windows."""
    text = remedy("google/gemma-4-31B-it", "--gpu", "h100", "-c", "64K", "--kv-cache-dtype", "fp8",
                  "--engine", "vllm==0.18.0")
    assert "or newer" not in text
    (named, low, before) = re.search(r"it starts with --engine vllm==(\S+) \(any release from (\S+) before "
                                     r"(\S+?)\)", text).groups()
    assert (named, low, before) == ("0.20.0", "0.20.0", "0.33.0")
    for release in ("0.20.0", "0.20.1", "0.21.0", "0.24.0", "0.32.0"):
        assert holds("google/gemma-4-31B-it", release, **GEMMA), release
    assert not holds("google/gemma-4-31B-it", "0.19.0", **GEMMA)  # starts, and lets no 64K prompt in
    assert not holds("google/gemma-4-31B-it", "0.33.0", **GEMMA)  # the next boundary


def test_falcon40b_names_the_closed_range_that_holds_a_request():
    """Was "it starts with --engine vllm==0.28.0 or older": 0.24.0 and older hold none on four L4s."""
    text = remedy("tiiuae/falcon-40b", "--gpu", "L4", "-tp", "4", "-c", "2048")
    assert text.endswith("it starts with --engine vllm==0.28.0 (any release from 0.25.0 before 0.29.0)."), text
    for release in ("0.25.0", "0.26.0", "0.27.0", "0.28.0"):
        assert holds("tiiuae/falcon-40b", release, **FALCON), release
    for release in ("0.24.0", "0.20.0"):
        assert not holds("tiiuae/falcon-40b", release, **FALCON), release


def test_glm5_says_the_weights_do_not_fit_only_where_they_do_not():
    """Was "vLLM accepts --engine vllm==0.18.0 or newer ..., but then the weights alone do not fit": from 0.20.0 the
    weights fit (the shortfall is KV memory). Since session 71 the bf16 checkpoint loads from 0.24.0 only (its shared
    indexers: tests/test_glm52_indexers_s71.py), where the weights fit: the remedy says KV memory is short."""
    text = remedy("zai-org/GLM-5.2", "--gpu", "mi300x", "-tp", "8", "--engine", "vllm==0.10.2")
    assert "or newer" not in text
    assert "vLLM accepts --engine vllm==0.24.0 (any release from 0.24.0 before 0.34.0), but then no KV memory is " \
           "left" in text
    assert "the weights alone do not fit" not in text
    for release in ("0.18.0", "0.19.0"):
        assert not weights_fit("zai-org/GLM-5.2", release, **GLM), release
    assert weights_fit("zai-org/GLM-5.2", "0.24.0", **GLM)
    # Session 72: 0.20-0.23 also build the 57 bf16 indexers the config shares (57 x 18,744,320 bytes a rank:
    # tests/test_indexer_s72.py), 0.08 GiB past MI300X's 176.62 GiB at 0.92; those releases refuse this checkpoint
    # at loading anyway (its missing indexers), and the remedy above names 0.24.0 all the same
    assert not weights_fit("zai-org/GLM-5.2", "0.20.0", **GLM)


def test_a_range_every_release_holds_is_still_claimed_onward():
    """The ROCm sparse chain (tests/test_refusal_remedies.py) with memory out of the way: every release from 0.18.0
    holds a request, so the range stays open."""
    text = remedy("deepseek-ai/DeepSeek-V3.2", "--gpu", "mi300x", "-tp", "8", "-c", "32K", "--engine", "vllm==0.10.2",
                  "--kv-cache-memory-bytes", "40G")
    assert "it starts with --engine vllm==0.18.0 or newer" in text


# -- 2. CUDA's sparse MLA block is a configuration refusal, as ROCm's is ----------------------------------------------

V32 = "deepseek-ai/DeepSeek-V3.2"


def test_check_finds_the_cuda_sparse_block_on_its_key(tmp_path):
    """Was exit 2 (bad input), aborting the whole file: now a finding on block_size, the next deployment still read."""
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n"
                    "  - name: small\n    model: deepseek-ai/DeepSeek-V3.2\n    gpu: h200\n    tp: 8\n"
                    "    context: 32768\n    block_size: 16\n"
                    "  - name: wide\n    model: deepseek-ai/DeepSeek-V3.2\n    gpu: h200\n    tp: 8\n"
                    "    context: 32768\n    block_size: 128\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1, r.stderr
    small, wide = json.loads(r.stdout)["results"]
    (finding,) = small["findings"]
    assert (finding["level"], finding["key"], finding["line"]) == ("error", "block_size", 7)
    assert finding["message"].startswith("vLLM 0.32.0 does not start: No valid attention backend found for sparse "
                                         "MLA at block size 16")
    assert finding["message"].endswith("; it starts with block_size 64, 128.")
    assert wide["passed"] and wide["block_size"] == 128


def test_estimate_sweeps_past_the_cuda_sparse_block():
    """Each length of the sweep is a row that does not start (was: the sweep aborted on the flag)."""
    r = run_kvplan("estimate", V32, "--gpu", "h200", "-tp", "8", "-c", "4K,32K", "--block-size", "16",
                   env={"COLUMNS": "2000"})
    assert r.returncode == 0 and r.stderr == ""
    rows = [line for line in r.stdout.splitlines() if " does not start: " in line]
    assert len(rows) == 2 and all("it starts with --block-size 64, 128." in row for row in rows)


@pytest.mark.parametrize("release, block, refused", [("0.17.0", 16, False),  # forced to 64 (cuda.py 0.11.0 :181-185)
                                                     ("0.18.0", 16, True), ("0.18.0", 32, True),
                                                     ("0.18.0", 64, False), ("0.32.0", 128, False)])
def test_the_cuda_sparse_block_rule_by_release(release, block, refused):
    (p,) = estimate(V32, gpu="h200", tensor_parallel_size=8, max_model_len=32768, engine=f"vllm=={release}",
                    block_size=block)
    got = p.engine.refusal
    assert (got is not None and got.configuration and got.field == "block_size") == refused
    if refused:
        assert got.options == (64, 128) and p.max_concurrency == 0


# -- 3. a fix whose release lacks the dtype or a flag asked is kept ----------------------------------------------------

FALCON_7B = "tiiuae/falcon-7b"
NGRAM = '{"method":"ngram","num_speculative_tokens":2,"prompt_lookup_max":3}'


def test_a_release_without_the_dtype_is_paired_with_one_it_takes():
    """ultraquant_4bit is a choice from 0.32.0 only (KV_DTYPE_SINCE) and Falcon's RW architecture is served until
    0.28.0: no release takes both, so the remedy pairs the release with its own first choice (was: no remedy)."""
    text = remedy(FALCON_7B, "--gpu", "h100", "--kv-cache-dtype", "ultraquant_4bit")
    assert text.endswith("it starts with --engine vllm==0.28.0 or older and --kv-cache-dtype auto."), text
    for release in ("0.28.0", "0.20.0", "0.10.2"):
        assert holds(FALCON_7B, release, gpu="h100", kv_cache_dtype="auto"), release


def test_the_release_refusal_of_a_dtype_names_that_releases_choices():
    """The dtype check comes before the model is read (the spec is not needed for it)."""
    from kvplan.engines import get_engine

    asked = dict(engine="vllm==0.28.0", kv_dtype="ultraquant_4bit", context=2048, block_size=None)
    got = get_engine("vllm==0.32.0").configuration_refusal(None, asked, 1)
    assert got.configuration and got.field == "kv_dtype" and "ultraquant_4bit" not in got.options
    # engine/arg_utils.py's choices: the four every release kvplan models lists
    assert got.options[:4] == ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")


def test_an_unplanned_release_fix_is_kept_and_the_reason_whole():
    """--speculative-config is modelled under 0.32 only, so the 0.28.0 fix cannot be planned: it stays as what vLLM
    accepts (was dropped), after vLLM's whole reason; no "or older": older releases' flags were not checked
    (vLLM 0.2.0 had no speculative decoding)."""
    text = remedy(FALCON_7B, "--gpu", "h100", "--speculative-config", NGRAM)
    assert text == ("vllm 0.32.0 refuses the model: Model architecture RWForCausalLM was supported in vLLM until "
                    "v0.28.0, and is not supported anymore; vLLM accepts --engine vllm==0.28.0.")


# -- 4. a refused sweep asks each configuration refusal once -----------------------------------------------------------

def test_a_refused_sweep_asks_each_configuration_once(monkeypatch):
    """The remedy search and the sweep's rows ask the same (release, dtype, length, block, tp, GPU) again: the
    engine works each out once per run (the 128-row V3.2 sweep: ~9,000 asks, ~3,300 worked out)."""
    from kvplan.engines import vllm_engine

    monkeypatch.setattr(vllm_engine, "_REFUSALS", {})
    asked, worked = [], []
    outer, inner = vllm_engine.VllmEngine.configuration_refusal, vllm_engine.VllmEngine._configuration_refusal

    def counted_outer(self, spec, trial, tp, gpu=None):
        asked.append((id(spec), tuple(sorted(trial.items(), key=str)), tp, str(gpu)))
        return outer(self, spec, trial, tp, gpu)

    def counted_inner(self, spec, trial, tp, gpu=None):
        worked.append(1)
        return inner(self, spec, trial, tp, gpu)

    monkeypatch.setattr(vllm_engine.VllmEngine, "configuration_refusal", counted_outer)
    monkeypatch.setattr(vllm_engine.VllmEngine, "_configuration_refusal", counted_inner)
    plans = estimate(V32, gpu="mi300x", tensor_parallel_size=[4, 8], max_model_len=[4096, 8192],
                     engine="vllm==0.10.2")
    assert all(p.engine.refusal is not None for p in plans)
    assert len(worked) == len(set(asked)) < len(asked)
