"""check gates vLLM's --max-model-len auto (context: auto / -1) as vLLM would start it: at the length its auto-fit
picks (commands/estimate.py auto_fitted, the code estimate fits it with), with min_concurrency and the new
min_model_len held there; refused, naming 0.14.0, on a release without auto-fit (engines/vllm_auto_fit.py).

vLLM's sources read (wheels unzipped, not installed):
- auto and -1 first in 0.14.0: arg_utils.py 0.14.0:300-302 gives --max-model-len human_readable_int_or_auto
  (:2121-2137: "-1" or "auto" -> -1); config/model.py 0.14.0:175 max_model_len Field(ge=-1). 0.13.0: plain
  human_readable_int (arg_utils.py 0.13.0:300-307, :2026-2068, int('auto') fails) and Field(gt=0) (config/model.py
  0.13.0:167). 0.32.0 has the parser in utils/argparse_utils.py:76-93.
- the fit: v1/core/kv_cache_utils.py 0.32.0:2414-2483 _auto_fit_max_model_len over _estimate_max_model_len_from_groups
  (:2369-2411, a binary search of 1..max_model_len against the memory), run at :2635-2636 on `check_memory`, each
  worker's memory less one block (:2627-2633: "Reserve the null block BlockPool permanently holds back"). 0.14.0
  (:1505-1509) fits on the whole memory, no block held back; kvplan's rule: vllm_versions.py null_block_in_check
  from 0.29. 0.34.0 moved it to v1/core/kv_cache_planning.py:1381-1516 (blocks of 64 tokens by default there).
- not one token: "Cannot auto-fit max_model_len: not enough GPU memory available to serve even a single token. Try
  increasing `gpu_memory_utilization`." (kv_cache_utils.py 0.14.0:1425-1429, 0.32.0:2453-2457), raised before the
  one-request check's "No available memory for the cache blocks" (:2638-2647, :1009-1016).

Llama-3.1-8B: 8 KV heads x 128 dims x 2 (K, V) x 2 bytes (bf16) x 32 layers = 131,072 bytes a token, a 16-token
block 2 MiB; the model's own length 131,072 tokens. At tp 4 a GPU keeps 2 KV heads (32 KiB a token, 512 KiB a
block), at tp 8 one (16 KiB, 256 KiB); fp8 halves the bytes. --kv-cache-memory-bytes is the cache's size as given
(vLLM skips its profile, README), so the blocks are budget // block bytes."""

from __future__ import annotations

import json

import pytest

import kvplan
from conftest import deployments_file, estimate_plan, line_of, one_error_line, run_kvplan
from kvplan.errors import FieldError

LLAMA = "meta-llama/Llama-3.1-8B"
GIB = 2**30
AUTO_FIT_REFUSAL = ("Cannot auto-fit max_model_len: not enough GPU memory available to serve even a single token. "
                    "Try increasing `gpu_memory_utilization`.")
NO_RELEASE = ("takes auto or -1 (vLLM's auto-fit: the longest length that fits) from vLLM 0.14.0, the first release "
              "with auto-fit (vllm=={}'s parser refuses auto, and -1 is no auto-fit there); give a fixed length or "
              "pick a later release.")


def _check(*args):
    run = run_kvplan("check", LLAMA, *args, "--format", "json")
    assert run.returncode in (0, 1), run.stderr
    (row,) = json.loads(run.stdout)["results"]
    return run.returncode, row


@pytest.mark.parametrize("spelling", ["auto", "-1", "AUTO"])
def test_a_gib_fits_8176_tokens_and_passes(spelling):
    """1 GiB // 2 MiB = 512 blocks; 0.32.0 holds the null block back before the fit: 511 blocks, the longest length
    with cdiv(L, 16) <= 511 is 511 x 16 = 8,176. vLLM allocates all 512 (GPU KV cache size 512 x 16 = 8,192 tokens),
    one request of 8,176 tokens takes 511 of them: it starts and holds one."""
    code, row = _check("-tp", "1", "-c", spelling, "--kv-cache-memory-bytes", "1GiB")
    assert code == 0 and row["passed"]
    assert row["context"] == 8176 and row["auto_fit"] == {"from": 131072, "to": 8176}
    assert row["max_concurrency"] == 1 and row["engine"]["num_gpu_blocks"] == 512
    assert row["engine"]["gpu_kv_cache_tokens"] == 8192
    (notice,) = [f for f in row["findings"] if f["level"] == "notice" and f["key"] == "context"]
    assert notice["message"] == ("--max-model-len auto: vLLM's auto-fit reduces max_model_len from 131072 to 8176 "
                                 "to fit the available KV cache memory; checked at that length.")


def test_estimate_fits_the_same_length():
    """One code path: estimate's --max-model-len auto plans 8,176 too."""
    assert estimate_plan(LLAMA, "-c", "auto", "--kv-cache-memory-bytes", "1GiB")["context"] == 8176


def test_the_table_marks_the_fitted_length():
    run = run_kvplan("check", LLAMA, "-tp", "1", "-c", "auto", "--kv-cache-memory-bytes", "1GiB")
    assert run.returncode == 0 and "8,176 (auto)" in run.stdout


def test_min_model_len_fails_one_block_short_and_names_what_reaches_it():
    """tp 4: 1 GiB // 512 KiB = 2,048 blocks, 2,047 after the null block: 2,047 x 16 = 32,752 < 32,768 (32K). tp 8:
    1 GiB // 256 KiB = 4,096, 4,095 x 16 = 65,520; fp8 at tp 4 the same: both reach 32K under auto-fit."""
    code, row = _check("-tp", "4", "-c", "auto", "--kv-cache-memory-bytes", "1GiB", "--min-model-len", "32K")
    assert code == 1 and row["context"] == 32752 and row["min_model_len"] == 32768
    (error,) = [f for f in row["findings"] if f["level"] == "error"]
    assert error["key"] == "min_model_len"
    assert error["message"] == ("max_model_len 32752 < min_model_len 32768: vLLM's auto-fit reduces max_model_len "
                                "from 131072 to 32752 to fit the available KV cache memory; would fit with "
                                "--tensor-parallel-size 8 or --kv-cache-dtype fp8.")
    code, row = _check("-tp", "8", "-c", "auto", "--kv-cache-memory-bytes", "1GiB", "--min-model-len", "32K")
    assert code == 0 and row["context"] == 65520
    code, row = _check("-tp", "4", "-c", "auto", "--kv-cache-memory-bytes", "1GiB", "--min-model-len", "32K",
                       "--kv-cache-dtype", "fp8")
    assert code == 0 and row["context"] == 65520


def test_min_concurrency_is_held_at_the_fitted_length():
    """8,176 tokens hold one request (511 of 511 blocks): min_concurrency 2 fails. 40 GiB: 20,480 blocks, 20,479
    after the null block; the whole 131,072 tokens (8,192 blocks) fits, auto-fit keeps it, 20,479 // 8,192 = 2
    requests: min_concurrency 2 passes."""
    code, row = _check("-tp", "1", "-c", "auto", "--kv-cache-memory-bytes", "1GiB", "--min-concurrency", "2")
    assert code == 1 and [f["key"] for f in row["findings"] if f["level"] == "error"] == ["min_concurrency"]
    assert "vLLM keeps 1 sequences of 8176 tokens (vLLM's auto-fit, from the model's 131072) resident" in \
        row["errors"][0]
    code, row = _check("-tp", "1", "-c", "auto", "--kv-cache-memory-bytes", "40GiB", "--min-concurrency", "2")
    assert code == 0 and row["context"] == 131072 and row["max_concurrency"] == 2
    assert row["auto_fit"] == {"from": 131072, "to": 131072}
    assert "--max-model-len auto: the model's full length 131072 fits (vLLM's auto-fit keeps it)." in \
        [f["message"] for f in row["findings"]]


def test_not_one_token_is_vllms_auto_fit_refusal():
    """3 MiB // 2 MiB = 1 block, 0 after the null block: not one token fits, exit 1 with vLLM's words; estimate says
    the same."""
    code, row = _check("-tp", "1", "-c", "auto", "--kv-cache-memory-bytes", "3MiB")
    assert code == 1 and not row["passed"]
    assert row["engine"]["refusal"]["reason"] == AUTO_FIT_REFUSAL
    assert row["auto_fit"] == {"from": 131072, "to": None}
    assert "vLLM would refuse to start, saying \"Cannot auto-fit max_model_len: not enough GPU memory available to " \
           "serve even a single token\";" in row["errors"][0]  # vLLM's words quoted (test_wording_s80.py)
    plan = estimate_plan(LLAMA, "-c", "auto", "--kv-cache-memory-bytes", "3MiB")
    assert plan["engine"]["refusal"]["reason"] == AUTO_FIT_REFUSAL


def test_0_14_fits_without_the_null_block():
    """0.14.0 fits on the whole 512 blocks: 8,192 tokens, which start (512 <= 512) yet hold no request, the pool
    keeping the null block back (a warning, as any such deployment); a fixed 8,176 is the remedy."""
    code, row = _check("-tp", "1", "-c", "auto", "--kv-cache-memory-bytes", "1GiB", "--engine", "vllm==0.14.0")
    assert code == 0 and row["context"] == 8192 and row["max_concurrency"] == 0
    (warning,) = row["warnings"]
    assert "it starts but holds no request" in warning and "would fit with --max-model-len 8176" in warning


@pytest.mark.parametrize("release", ["0.13.0", "0.10.2", "0.6.3"])
@pytest.mark.parametrize("spelling", ["auto", "-1"])
def test_a_release_without_auto_fit_is_refused(release, spelling):
    line = one_error_line(run_kvplan("check", LLAMA, "-tp", "1", "-c", spelling, "--engine", f"vllm=={release}"))
    assert line == f"kvplan: error: -c {NO_RELEASE.format(release)}"
    line = one_error_line(run_kvplan("estimate", LLAMA, "--max-model-len", spelling, "--engine", f"vllm=={release}"))
    assert line == f"kvplan: error: --max-model-len {NO_RELEASE.format(release)}"


def test_engine_none_has_no_auto_fit():
    line = one_error_line(run_kvplan("check", LLAMA, "-tp", "1", "-c", "auto", "--engine", "none"))
    assert line == ("kvplan: error: -c takes auto or -1 (vLLM's auto-fit: the longest length that fits) only with "
                    "vLLM: --engine none plans an ideal paged pool, with no start-up to fit a length in; give a fixed "
                    "length.")


def test_a_deployments_file(tmp_path):
    path = deployments_file(tmp_path, f"  - name: chat\n    model: {LLAMA}\n    tp: 4\n    context: auto\n"
                                      f"    kv_budget: 1GiB\n    min_model_len: 32K\n"
                                      f"  - name: old\n    model: {LLAMA}\n    tp: 1\n    context: -1\n"
                                      f"    engine: vllm==0.14.0\n    kv_budget: 1GiB\n")
    run = run_kvplan("check", "--file", path, "--format", "json")
    chat, old = json.loads(run.stdout)["results"]
    assert run.returncode == 1 and not chat["passed"] and old["passed"]
    (error,) = [f for f in chat["findings"] if f["level"] == "error"]
    assert error["line"] == line_of(path, "min_model_len", "chat")
    assert error["message"].endswith("would fit with tp 8 or kv_dtype fp8.")
    assert old["context"] == 8192
    path.write_text(path.read_text().replace("vllm==0.14.0", "vllm==0.13.0"))
    line = one_error_line(run_kvplan("check", "--file", path))
    assert line == (f"kvplan: error: {path}:{line_of(path, 'context: -1', 'old')}: deployment 'old' field 'context' "
                    f"{NO_RELEASE.format('0.13.0')}")


def test_min_model_len_holds_a_fixed_length_too():
    """A fixed 8,192 below min_model_len 32K fails (the length the deployment serves); 32,768 tokens on 40 GiB:
    2,048 blocks a request of 20,479, so context 32K holds one, and the error names it as every remedy is named."""
    code, row = _check("-tp", "1", "-c", "8192", "--kv-cache-memory-bytes", "40GiB", "--min-model-len", "32K")
    assert code == 1 and row["errors"] == ["max_model_len 8192 < min_model_len 32768: --max-model-len 8192 as set; "
                                           "would fit with --max-model-len 32768."]


def test_the_api():
    (row,) = kvplan.check(LLAMA, tensor_parallel_size=8, max_model_len="auto", kv_cache_memory_bytes="1GiB",
                          min_model_len="32K")
    assert row["passed"] and row["context"] == 65520 and row["min_model_len"] == 32768
    with pytest.raises(FieldError) as caught:
        kvplan.check(LLAMA, tensor_parallel_size=1, max_model_len=-1, engine="vllm==0.13.0")
    assert str(caught.value) == f"max_model_len {NO_RELEASE.format('0.13.0')}"
    with pytest.raises(FieldError, match="^min_model_len must be a positive number of tokens"):
        kvplan.check(LLAMA, tensor_parallel_size=1, min_model_len=0)
