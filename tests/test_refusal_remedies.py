"""A configuration refusal's remedy names what really starts (review of session 51's configuration refusals).

vLLM stops at its first error, and a remedy that clears one may meet the next. By vLLM's source (paths under vllm/ of
the release named, read in /tmp/s42/src):
- model_executor/models/registry.py lists DeepseekV32ForCausalLM from 0.11.0 (:73; absent in 0.10.2) and
  GlmMoeDsaForCausalLM from 0.16.0 (:117); an unlisted architecture is refused while the config is read.
- platforms/rocm.py get_attn_backend_cls: 0.11.0 raises "Sparse Attention is not supported on ROCm." for any sparse
  layer (:199-201); 0.12.0 raises for an fp8* dtype (:223-227: "ROCMAiterMLASparseBackend doesn't support fp8
  kv_cache_dtype.") and then asserts block_size == 1 (:228-230), as 0.16.0 (:280-285) and 0.17.0 (:364-371) do;
  the block is 16 unless --block-size says otherwise (0.12.0 :386-387, 0.17.0 :658-673). 0.18.0 selects ROCm's
  backends without a block (rocm.py:441 _replace(block_size=None)) and keeps 16 (:692-707); its
  ROCM_AITER_MLA_SPARSE takes auto / bfloat16 only (rocm_aiter_mla_sparse.py 0.18.0 :83-87), fp8 from 0.21.0
  (:266-272).
So DeepSeek-V3.2 on an MI300X under 0.10.2 or 0.11.0 starts at 0.18.0 or newer as asked, or at 0.12.0 or newer with
--block-size 1 (not at "0.11.0 and later", nor "0.12 or later"); fp8 on 0.12-0.17 needs auto *and* block 1.

Hand arithmetic:
- MI300X: 192 GiB x 0.90 (vLLM 0.17's default utilisation) = 172.8 GiB usable. DeepSeek-V3.2: 685.4B fp8 parameters,
  ~642 GiB: at tp 2 over 300 GiB a GPU, more than usable (the weights alone do not fit). GLM-5.2: 743.38B bf16
  parameters x 2 bytes / 8 = 173.1 GiB a GPU at tp 8, more than 172.8 GiB.
- Llama-3.1-8B: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 bytes = 131,072 bytes a token; a 131,072-token request
  is 16 GiB of KV, far past an L4's few GiB of budget, so at its own maximum length it needs tp 2 or a shorter
  length (about budget / 131,072 tokens)."""

import json
import re
from pathlib import Path

import pytest

from conftest import deployments_file as deployments, line_of, run_kvplan

from kvplan.api import check as api_check, estimate

ROOT = Path(__file__).resolve().parent.parent
V32, GLM, LLAMA_8B, LLAMA_1B = ("deepseek-ai/DeepSeek-V3.2", "zai-org/GLM-5.2", "meta-llama/Llama-3.1-8B-Instruct",
                                "meta-llama/Llama-3.2-1B-Instruct")
GiB = 2**30
BUDGET = "40G"  # --kv-cache-memory-bytes: memory out of the way where the rule under test is not memory's


def flat(text: str) -> str:
    return " ".join(text.split())


def table(*args) -> str:
    """The table output, one footnote a line (wide enough not to wrap)."""
    r = run_kvplan(*args, env={"COLUMNS": "2000"})
    assert r.returncode in (0, 1), r.stderr
    return r.stdout


def refused_line(text: str) -> str:
    """The estimate's footnote for its (one) refused row, after "does not start: "."""
    (line,) = [line for line in text.splitlines() if " does not start: " in line]
    return line.split(" does not start: ", 1)[1]


def starts(model, release, **kw) -> bool:
    (p,) = estimate(model, gpu="MI300X", tensor_parallel_size=8, max_model_len=32768, engine=f"vllm=={release}",
                    kv_cache_memory_bytes=BUDGET, **kw)
    return p.engine.refusal is None and p.max_concurrency > 0


# -- 1. the remedy chain on ROCm ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("release", ["0.10.2", "0.11.0"])
def test_v32_before_rocm_sparse_names_releases_that_start(release):
    """Was "vLLM 0.11.0 and later serve it" (0.10.2) and "0.12 or later serves it on ROCm" (0.11.0): both refuse."""
    text = table("estimate", V32, "--gpu", "mi300x", "-tp", "8", "-c", "32K", "--engine", f"vllm=={release}")
    assert refused_line(text).endswith("; it starts with --engine vllm==0.18.0 or newer, or with --engine "
                                       "vllm==0.12.0 or newer and --block-size 1.")
    assert "0.11.0 and later" not in text and "0.12 or later" not in text


def test_the_named_releases_are_the_true_boundaries():
    """By rocm.py: 0.11.0 refuses sparse attention, 0.12.0-0.17.0 the default block, 0.18.0 starts; 0.12.0 starts
    at block 1; and every release kvplan models after each named one starts the same way ("or newer")."""
    from kvplan.engines.vllm_engine import releases
    from kvplan.engines.vllm_releases import release_parts  # 0.2.1.post1 is named as published

    assert not starts(V32, "0.11.0") and not starts(V32, "0.11.0", block_size=1)
    assert not starts(V32, "0.12.0") and not starts(V32, "0.17.0")
    assert starts(V32, "0.12.0", block_size=1) and starts(V32, "0.18.0")
    later = [r for r in releases() if release_parts(r) >= (0, 12)]
    assert {"0.12.0", "0.18.0", "0.21.0", "0.32.0"} <= set(releases())
    assert all(starts(V32, r, block_size=1) for r in later)
    assert all(starts(V32, r) for r in later if release_parts(r) >= (0, 18))


def test_glm5_before_its_registry_entry_names_releases_that_start():
    """Was "serves them from v0.16.0" (0.16.0 asserts block 1 on ROCm): the reason says what the registry does,
    the remedy what starts. With fp8 weights (the bf16 checkpoint does not load before 0.24: session 71,
    tests/test_glm52_indexers_s71.py), 0.16 starts at block 1 and 0.18 at its default block."""
    text = table("estimate", GLM, "--gpu", "mi300x", "-tp", "8", "-c", "32K", "--engine", "vllm==0.15.0",
                 "--kv-cache-memory-bytes", BUDGET, "--quantization", "fp8")
    line = refused_line(text)
    assert "(vLLM's registry lists them from v0.16.0 on; vllm==0.15.0 is older)" in line
    assert line.endswith("; it starts with --engine vllm==0.18.0 or newer, or with --engine vllm==0.16.0 or newer "
                         "and --block-size 1.")
    fp8 = dict(quantization="fp8")
    assert not starts(GLM, "0.16.0", **fp8) and starts(GLM, "0.16.0", block_size=1, **fp8)
    assert starts(GLM, "0.18.0", **fp8)
    bf16 = refused_line(table("estimate", GLM, "--gpu", "mi300x", "-tp", "8", "-c", "32K", "--engine", "vllm==0.15.0",
                              "--kv-cache-memory-bytes", BUDGET))
    assert bf16.endswith("; it starts with --engine vllm==0.24.0 or newer.")
    assert not starts(GLM, "0.18.0") and not starts(GLM, "0.16.0", block_size=1) and starts(GLM, "0.24.0")


def test_a_fix_is_planned_under_the_release_it_names():
    """The fix's release is planned with its own budget (0.18.0's, not 0.10.2's): the JSON's remedy says it starts,
    and the row's fits_with names that release."""
    (p,) = estimate(V32, gpu="MI300X", tensor_parallel_size=8, max_model_len=32768, engine="vllm==0.10.2")
    assert p.fits_with == (("engine", "vllm==0.18.0"),)
    assert [f.fits for f in p.engine.refusal.fixes] == [True, True]
    assert p.engine.refusal.fixes[1].changes == (("engine", "vllm==0.12.0"), ("block_size", 1))


# -- 2. fp8 on ROCm 0.12-0.17 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("release", ["0.12.0", "0.17.0"])
def test_fp8_on_rocm_0_12_to_0_17_names_the_block_too(release):
    """Was "it starts with --kv-cache-dtype auto, bfloat16", which then fails the block-1 assert at the default 16."""
    text = table("estimate", V32, "--gpu", "mi300x", "-tp", "8", "-c", "32K", "--engine", f"vllm=={release}",
                 "--kv-cache-dtype", "fp8")
    assert refused_line(text).endswith("; it starts with --kv-cache-dtype auto and --block-size 1.")
    assert not starts(V32, release, kv_cache_dtype="auto") and starts(V32, release, kv_cache_dtype="auto",
                                                                      block_size=1)


def test_fp8_on_rocm_0_18_needs_the_dtype_only():
    """0.18.0 takes the default block but not fp8 (rocm_aiter_mla_sparse.py 0.18.0 :83-87): the dtypes alone."""
    text = table("estimate", V32, "--gpu", "mi300x", "-tp", "8", "-c", "32K", "--engine", "vllm==0.18.0",
                 "--kv-cache-dtype", "fp8")
    assert refused_line(text).endswith("; it starts with --kv-cache-dtype auto, bfloat16.")
    assert starts(V32, "0.21.0", kv_cache_dtype="fp8")  # rocm_aiter_mla_sparse.py 0.21.0 :266-272


# -- 3. check takes block_size -----------------------------------------------------------------------------------------


ENTRY = """  - name: {name}
    model: deepseek-ai/DeepSeek-V3.2
    tp: 8
    gpu: mi300x
    engine: vllm==0.14.0
    context: 32768
"""


def test_check_applies_the_block_size_remedy(tmp_path):
    """Was exit 2 "unknown key 'block_size'": a ROCm 0.12-0.17 sparse deployment could never pass."""
    path = deployments(tmp_path, ENTRY.format(name="default") + ENTRY.format(name="wide") + "    block_size: 64\n"
                       + ENTRY.format(name="one") + "    block_size: 1\n    min_concurrency: 4\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1, r.stderr
    default, wide, one = json.loads(r.stdout)["results"]
    for result, line in ((default, line_of(path, "- name: default", "name: default")),
                         (wide, line_of(path, "block_size: 64", "name: wide"))):
        (finding,) = [f for f in result["findings"] if f["level"] != "notice"]  # the RoPE note besides
        assert (finding["level"], finding["key"], finding["line"]) == ("error", "block_size", line)
        assert finding["message"] == ("vLLM 0.14.0 does not start: Sparse MLA backend on ROCm only supports block "
                                      "size 1 for now; it starts with block_size 1.")
    assert one["passed"] and not [f for f in one["findings"] if f["level"] != "notice"] and one["max_concurrency"] >= 4
    # design.md's JSON contract: the key only where the deployment sets it
    assert "block_size" not in default and (wide["block_size"], one["block_size"]) == (64, 1)


def test_check_model_takes_block_size():
    args = ("check", V32, "-tp", "8", "--gpu", "mi300x", "--engine", "vllm==0.14.0", "-c", "32K")
    r = run_kvplan(*args)
    assert r.returncode == 1 and "it starts with --block-size 1." in flat(r.stdout)
    assert run_kvplan(*args, "--block-size", "1").returncode == 0
    (result,) = api_check(V32, tensor_parallel_size=8, gpu="mi300x", engine="vllm==0.14.0", max_model_len=32768,
                          block_size=1)
    assert result["passed"] and result["block_size"] == 1


@pytest.mark.parametrize("value, problem", [("24", "24 is not a choice of vLLM 0.14.0"),
                                            ('"16"', "must be a whole number of tokens, unquoted"),
                                            ("0", "must be a positive integer")])
def test_check_refuses_a_bad_block_size(tmp_path, value, problem):
    path = deployments(tmp_path, ENTRY.format(name="bad") + f"    block_size: {value}\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 2 and r.stdout == ""
    assert f"deployments.yaml:{line_of(path, 'block_size', 'name: bad')}: deployment 'bad' field 'block_size' " \
           f"{problem}" in r.stderr


def test_check_plans_an_engine_remedy_under_its_release(tmp_path):
    """The engine fix of a file's deployment, in its keys' words, planned at the releases it names."""
    path = deployments(tmp_path, ENTRY.replace("vllm==0.14.0", "vllm==0.10.2").format(name="old")
                       + "    kv_budget: 40G\n")
    (result,) = json.loads(run_kvplan("check", "--file", path, "--format", "json").stdout)["results"]
    (finding,) = [f for f in result["findings"] if f["level"] != "notice"]
    assert (finding["key"], finding["line"]) == ("engine", line_of(path, "engine:", "name: old"))
    assert finding["message"].endswith("; it starts with engine vllm==0.18.0 or newer, or with engine vllm==0.12.0 "
                                       "or newer and block_size 1.")


# -- 4. a refusal beside weights that do not fit -----------------------------------------------------------------------

def test_a_refusal_keeps_the_weights_line_and_never_says_starts():
    """Was only "it starts with --kv-cache-dtype auto, bfloat16": at tp 2 no dtype starts (the weights)."""
    text = table("estimate", V32, "--gpu", "mi300x", "-tp", "2", "-c", "32K", "--engine", "vllm==0.17.0",
                 "--kv-cache-dtype", "fp8")
    line = refused_line(text)
    assert line.startswith("vllm 0.17.0 refuses the configuration: ROCMAiterMLASparseBackend doesn't support fp8 "
                           "kv_cache_dtype; vLLM accepts --kv-cache-dtype auto and --block-size 1, but then the "
                           "weights alone do not fit; at --kv-cache-dtype auto and --block-size 1 it would fit with "
                           "--tensor-parallel-size ")
    assert "it starts" not in text
    assert "the weights alone do not fit at tp 2:" in text and "--pipeline-parallel-size 2 or more" in text
    (p,) = estimate(V32, gpu="MI300X", tensor_parallel_size=2, max_model_len=32768, engine="vllm==0.17.0",
                    kv_cache_dtype="fp8")
    assert p.budget.weights_bytes_per_gpu > 300 * GiB > 0.90 * 192 * GiB  # hand figures (module docstring)
    tp = int(line.rsplit(" ", 1)[1].rstrip("."))
    assert estimate(V32, gpu="MI300X", tensor_parallel_size=tp, max_model_len=32768, engine="vllm==0.17.0",
                    block_size=1)[0].max_concurrency > 0


def test_glm5_block_remedy_does_not_start_at_tp_8():
    """Was "it starts with --block-size 1" while --block-size 1 leaves no KV memory (the weights, 173.1 GiB a GPU by
    hand, exceed 172.8 GiB usable)."""
    text = table("estimate", GLM, "--gpu", "mi300x", "-tp", "8", "-c", "32K", "--engine", "vllm==0.17.0")
    # block 1 then meets the bf16 checkpoint's missing indexers, which 0.24 loads (tests/test_glm52_indexers_s71.py)
    assert refused_line(text).startswith("vllm 0.17.0 refuses the configuration: Sparse MLA backend on ROCm only "
                                         "supports block size 1 for now; vLLM accepts --block-size 1 and --engine "
                                         "vllm==0.24.0, but then no KV memory is left; at --block-size 1 and "
                                         "--engine vllm==0.24.0 it would fit with")
    assert "it starts with" not in text and "the weights alone do not fit at tp 8:" in text
    assert 743.38e9 * 2 / 8 > 0.90 * 192 * GiB
    (held,) = estimate(GLM, gpu="MI300X", tensor_parallel_size=8, max_model_len=32768, engine="vllm==0.17.0",
                       block_size=1)
    assert held.kv_budget_bytes_per_gpu <= 0 and held.max_concurrency == 0
    (later,) = estimate(GLM, gpu="MI300X", tensor_parallel_size=8, max_model_len=32768, engine="vllm==0.24.0",
                        block_size=1)
    assert later.engine.starts is False and later.max_concurrency == 0  # no KV memory left, as the remedy says


# -- 5. a length past the model's own that does not fit at the model's own ---------------------------------------------

def test_the_length_alternative_stands_alone():
    """Was "at --max-model-len 131072 it would fit with --tensor-parallel-size 2 or --max-model-len 27504"."""
    text = table("estimate", LLAMA_8B, "-c", "1M", "--gpu", "L4")
    found = re.search(r"; would fit with --max-model-len (\d+), or at --max-model-len 131072 with "
                      r"--tensor-parallel-size 2\.", refused_line(text))
    assert found, refused_line(text)
    shorter = int(found.group(1))
    held = estimate(LLAMA_8B, max_model_len=[shorter, shorter + 16, 131072], gpu="L4")
    assert [p.max_concurrency > 0 for p in held] == [True, False, False]
    assert estimate(LLAMA_8B, max_model_len=131072, gpu="L4", tensor_parallel_size=2)[0].max_concurrency > 0
    per_token = 32 * 8 * 128 * 2 * 2
    assert per_token == 131072 and abs(held[0].kv_budget_bytes_per_gpu // per_token - shorter) < 64  # a few blocks


# -- 6. the docs -------------------------------------------------------------------------------------------------------

def test_docs_say_a_length_past_the_models_own_fails():
    ci = flat((ROOT / "docs" / "ci.md").read_text())
    assert "a `context` beyond the model's `max_position_embeddings`. Without" not in ci  # the old "never fail" list
    assert "A `context` beyond the model's `max_position_embeddings` fails" in ci


def test_docs_list_every_deployment_key_and_refusal_field():
    from kvplan.commands.deployments import VALID_KEYS

    ci = flat((ROOT / "docs" / "ci.md").read_text())
    listed = ci[ci.index("Valid keys in an entry:"):ci.index("The release matters")]
    assert all(f"`{key}`" in listed for key in VALID_KEYS)
    readme = flat((ROOT / "README.md").read_text())
    fields = readme[readme.index("the `field` at fault"):readme.index("`log_lines` (verbatim)")]
    assert all(f"`{field}`" in fields for field in ("context", "kv_dtype", "engine", "block_size"))
    assert "`block_size`" in ci[ci.index("A configuration vLLM refuses"):]


# -- 7. the Python API speaks its own keywords -------------------------------------------------------------------------

def test_the_api_fills_remedies_with_its_keywords():
    """Was "{field} 131072 or less ..." in engine.refusal.remedy and "context 131072" / "--block-size 1" in
    suggestions."""
    (long,) = estimate(LLAMA_8B, max_model_len=2**20, gpu="L4")
    remedy = long.engine.refusal.remedy
    assert "{" not in remedy and "--" not in remedy and remedy.startswith("vLLM accepts max_model_len 131072 or less")
    assert long.suggestion().endswith(", or at max_model_len 131072 with tensor_parallel_size 2")
    assert long.to_dict()["suggestion"] == long.suggestion()
    (block,) = estimate(V32, gpu="MI300X", tensor_parallel_size=8, max_model_len=32768, engine="vllm==0.14.0")
    assert block.engine.refusal.remedy == "it starts with block_size 1" and "--" not in block.suggestion()
    # the command line keeps vLLM's flags
    (row,) = json.loads(run_kvplan("estimate", V32, "--gpu", "mi300x", "-tp", "8", "-c", "32K", "--engine",
                                   "vllm==0.14.0", "--format", "json").stdout)["plans"]
    assert row["engine"]["refusal"]["remedy"] == "it starts with --block-size 1"
    assert "spell" not in row and not {"options", "onward", "note", "fixes"} & set(row["engine"]["refusal"])


# -- 8. no time to first token where no request is held ----------------------------------------------------------------

def test_no_ttft_line_for_a_row_that_holds_no_request():
    """A memory refusal (4 GiB of KV for one 131,072-token request on a 1 GiB budget) runs no prompt either."""
    text = table("estimate", LLAMA_1B, "-c", "131072", "--kv-cache-memory-bytes", "1GiB", "--gpu", "h100")
    assert "does not fit: one request needs 4.00 GiB" in text and "Time to first token" not in text
    text = table("estimate", LLAMA_1B, "-c", "131072,8192", "--kv-cache-memory-bytes", "1GiB", "--gpu", "h100")
    # vLLM 0.32.0 keeps room for one output token (input_processor.py:593-602): the default prompt is 8,191
    assert "Time to first token, 8,191-token prompt" in text and "131,071-token prompt" not in text
    (row,) = json.loads(run_kvplan("estimate", LLAMA_1B, "-c", "131072", "--kv-cache-memory-bytes", "1GiB", "--gpu",
                                   "h100", "--format", "json").stdout)["plans"]
    assert row["prefill"]["ttft_ms"] > 0  # the JSON keeps its keys (design.md)


# -- the search itself (engines/vllm_remedy.py), on a made-up chain ----------------------------------------------------

def test_or_newer_is_claimed_only_where_every_later_release_passes():
    """A release that passes while a later one refuses again is named alone, never "or newer"; a fix of two fields
    is offered beside the nearest single one only where it reaches an earlier release."""
    from kvplan.engines.figures import Refusal
    from kvplan.engines.vllm_remedy import configuration_fixes

    releases = ("0.10.0", "0.12.0", "0.18.0", "0.20.0", "0.30.0")
    engine = Refusal("old", None, configuration=True, field="engine", options=("vllm==0.12.0",), onward="newer")
    block = Refusal("block", None, configuration=True, field="block_size", options=(1,))

    def refused(asked):  # 0.12-0.17 need block 1; 0.20.0 refuses everything; the rest pass
        release = asked["engine"].split("==")[1]
        if release in ("0.10.0", "0.20.0"):
            return engine
        return block if release == "0.12.0" and asked["block_size"] != 1 else None

    asked = dict(engine="vllm==0.10.0", kv_dtype="auto", context=1024, block_size=None)
    fixes = configuration_fixes(refused, asked, engine, releases)
    assert [(f.changes, f.onward) for f in fixes] == [((("engine", "vllm==0.30.0"),), "newer"),
                                                      ((("engine", "vllm==0.12.0"), ("block_size", 1)), "")]
