"""Fixes for the s61 fuzzer's finds (/tmp/s61/fuzz): the footprint's period jump for blocks as long as the request
(1), flags and values old releases never parsed (2), bad input refused before check judges sharding (3), a capture
list emptied by the token budget (4), --max-loras validated in one place (5), rope_scaling fields named (6)."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conftest import run_hub  # noqa: E402
from kvplan.engines import vllm_admission as admission  # noqa: E402
from test_s60_fuzz_fixes import LONG_WALKS, _group, _long_walk, _random_groups, _stepped  # noqa: E402  (the walk)


def _kvplan(*args):
    """`python -m kvplan ARGS` run in this process (conftest.run_hub: exit code, stdout, and stderr with the warnings
    a fresh interpreter would print); none of these tests is about the process itself."""
    return run_hub(*args)


# 1 ---------------------------------------------------------------------------------------------------------------
def _counting_jumps(monkeypatch):
    calls, jumped, jump = [], [], admission._Period.jump

    def counted(self, *a):
        calls.append(1)
        jumped.append(jump(self, *a))
        return jumped[-1]

    monkeypatch.setattr(admission._Period, "jump", counted)
    return calls, jumped


def test_blocks_as_long_as_the_request_jump_with_the_stepped_result(monkeypatch):
    """Random layouts where some group's block spans the whole request or more (vLLM before 0.28 sets a Mamba
    group's block to max_model_len without prefix caching: 0.15.0 model_executor/models/config.py:379-380
    `cache_config.mamba_block_size = model_config.max_model_len`), Mamba in every mode, align included: the
    jumping footprint equals the chunk-by-chunk walk field for field, and jumps."""
    rng = random.Random(61)
    calls, jumped = _counting_jumps(monkeypatch)
    cases = long_walks = long_jumps = 0
    while cases < 400:
        length = rng.choice([17, 1000, 4096, 8191, 20000, rng.randint(1, 30000)])
        groups = _random_groups(rng)
        for _ in range(rng.randint(1, 3)):
            big = rng.choice([length, length, length + 1, 4 * length])
            groups.append(_group("mamba", big, 0, rng.choice(["", "all", "keeps"]), rng.choice([0, 2]),
                                 rng.choice([0, 1])))
        rng.shuffle(groups)
        chunk = rng.choice([1, 2, 3, 7, 16, 512, length + 5])
        args = (groups, length, chunk, rng.choice([1, 2]), rng.choice([True, False]), 64)
        long = _long_walk(length, chunk)  # a bounded share of them (test_s60_fuzz_fixes.LONG_WALKS)
        if long and long_walks == LONG_WALKS:
            continue
        first = len(jumped)
        assert admission.footprint(*args) == _stepped(*args), args
        cases, long_walks, long_jumps = cases + 1, long_walks + long, long_jumps + (long and any(jumped[first:]))
    assert long_walks == LONG_WALKS and long_jumps > LONG_WALKS // 2
    assert sum(1 for j in jumped if j) > 100


@pytest.mark.parametrize("attention_block", [528, 784, 960])
def test_pre_028_hybrid_layout_at_one_token_a_chunk_jumps(monkeypatch, attention_block):
    """The layouts the fuzzer timed (Qwen3.5-9B/-397B at 0.15.0: three gated-deltanet groups with one block of
    262,144 tokens + full attention in blocks of 528; Qwen3.5-27B at 0.11.1: 784; Kimi-Linear: MLA in 960): at one
    token a chunk every step was walked (262,144 steps, ~1.7 s a call, 22 calls in one estimate). Now a few periods
    of the attention block; the result equals the walk, and by hand: three state blocks + ceil(262,144 / block)."""
    length = 262_144
    groups = [_group("mamba", length) for _ in range(3)] + [_group("full", attention_block)]
    calls, _ = _counting_jumps(monkeypatch)
    one = admission.footprint(groups, length, 1, 1, False, 1)
    assert len(calls) < 5 * attention_block
    monkeypatch.undo()
    assert one.held == 3 + -(-length // attention_block)  # 528: 3 + 497 = 500
    assert one == _stepped(groups, length, 1, 1, False, 1)


@pytest.mark.parametrize("args", [
    ("Qwen/Qwen3.5-9B", "--engine", "vllm==0.15.0", "--max-num-batched-tokens", "1", "--input-len", "16"),
    ("Qwen/Qwen3.5-27B", "--engine", "vllm==0.11.1", "--max-num-batched-tokens", "1", "--input-len", "16"),
    ("moonshotai/Kimi-Linear-48B-A3B-Instruct", "--engine", "vllm==0.11.1", "--max-num-batched-tokens", "1",
     "--input-len", "16"),
    ("Qwen/Qwen3.5-9B", "--engine", "vllm==0.11.1", "--max-num-batched-tokens", "8", "--max-model-len", "256K"),
])
def test_fuzzed_hybrid_estimates_spend_little_in_the_footprint(monkeypatch, args):
    """The fuzzer's commands (2.6-15.7 s before, the footprint's walk all of it): the footprint's share now under
    0.5 s (measured in-process around every call, so the import and the rest of the plan do not count)."""
    from kvplan.engines import vllm_resident as engine  # where start() asks the footprint
    from kvplan.cli import main

    spent, simulate = [], admission.footprint

    def timed(*a):
        start = time.process_time()
        try:
            return simulate(*a)
        finally:
            spent.append(time.process_time() - start)

    monkeypatch.setattr(engine, "footprint", timed)
    admission._REMEMBERED.clear()
    monkeypatch.setattr(sys, "argv", ["kvplan", "estimate", *args])
    try:
        main()
    except SystemExit as stop:
        assert stop.code in (0, None, 1)
    assert spent and sum(spent) < 0.5, sum(spent)


# 2 ---------------------------------------------------------------------------------------------------------------
# Each case: what the release's engine/arg_utils.py (read by hand, wheels / sdists) has, and the line it is refused on.
@pytest.mark.parametrize("args, said", [
    # 0.2.0 arg_utils.py: the options at :44-209, no --kv-cache-dtype (first: 0.3.0:127, choices auto, fp8_e5m2)
    (("--engine", "vllm==0.2.0", "--kv-cache-dtype", "fp8"), "--kv-cache-dtype fp8 needs vLLM 0.3.0 or later"),
    # 0.3.3 :136-138 choices=['auto', 'fp8_e5m2']; fp8 first in 0.4.1 :176-178 choices=['auto', 'fp8']
    (("--engine", "vllm==0.3.3", "--kv-cache-dtype", "fp8"),
     "fp8 is not a choice of vLLM 0.3.3 (first listed in 0.4.1)"),
    # 0.4.1 and 0.4.2 dropped fp8_e5m2 (choices=['auto', 'fp8']); 0.4.3 :193-196 lists it again
    (("--engine", "vllm==0.4.2", "--kv-cache-dtype", "fp8_e5m2"), "(first listed in 0.4.3); it takes auto, fp8."),
    # --enforce-eager: absent from 0.2.5's, 0.2.6 :192
    (("--engine", "vllm==0.2.0", "--enforce-eager"), "--enforce-eager needs vLLM 0.2.6 or later"),
    # --enable-prefix-caching: absent from 0.3.3's, 0.4.0 :199 (store_true); --no-: 0.6.5 :431-434 BooleanOptionalAction
    (("--engine", "vllm==0.3.3", "--enable-prefix-caching"), "--enable-prefix-caching needs vLLM 0.4 or later"),
    (("--engine", "vllm==0.3.3", "--no-enable-prefix-caching"), "needs vLLM 0.6.5 or later (vllm==0.3.3 has no"),
    (("--engine", "vllm==0.6.4", "--no-enable-prefix-caching"), "needs vLLM 0.6.5 or later (vllm==0.6.4 takes"),
    # -q: 0.2.0 :155-158 choices=['awq', None]; 0.3.3 :208-211 ['awq', 'gptq', 'squeezellm', None]; from 0.4.1
    # QUANTIZATION_METHODS (fp8 at quantization/__init__.py 0.4.1:15), mxfp4 first in 0.10.1's (:39)
    (("--engine", "vllm==0.2.0", "-q", "fp8"), "fp8 is not a choice of vLLM 0.2.0 (first listed in 0.4.1)"),
    (("--engine", "vllm==0.2.0", "-q", "gptq"), "it takes awq."),
    (("--engine", "vllm==0.3.3", "-q", "fp8"), "it takes awq, gptq."),
    (("--engine", "vllm==0.3.3", "-q", "mxfp4"), "mxfp4 is not a choice of vLLM 0.3.3 (first listed in 0.10.1)"),
    (("--engine", "vllm==0.10.0", "-q", "mxfp4"), "(first listed in 0.10.1)"),
])
def test_old_releases_refuse_flags_their_argparse_never_had(args, said):
    done = _kvplan("estimate", "meta-llama/Llama-2-7b-hf", *args)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [
    ("--engine", "vllm==0.3.0", "--kv-cache-dtype", "fp8_e5m2"),  # 0.3.0 :127-129
    ("--engine", "vllm==0.4.1", "--kv-cache-dtype", "fp8"),  # 0.4.1 :176-178
    ("--engine", "vllm==0.2.6", "--enforce-eager"),  # 0.2.6 :192
    ("--engine", "vllm==0.4.0", "--enable-prefix-caching"),  # 0.4.0 :199
    ("--engine", "vllm==0.6.5", "--no-enable-prefix-caching"),  # 0.6.5 :431
    ("--engine", "vllm==0.2.0", "-q", "awq"),  # 0.2.0 :158 (refused later, as a checkpoint-only method, not here)
    ("--engine", "vllm==0.2.6", "-q", "gptq"),  # 0.2.6 :184
    ("--engine", "vllm==0.4.1", "-q", "fp8"),  # quantization/__init__.py 0.4.1:15
    ("--engine", "vllm==0.10.1", "-q", "mxfp4"),  # quantization/__init__.py 0.10.1:39
])
def test_first_releases_with_the_flag_take_it(args):
    done = _kvplan("estimate", "meta-llama/Llama-2-7b-hf", *args)
    assert "is not a choice of vLLM" not in done.stderr and "or later" not in done.stderr, done.stderr


def test_api_and_check_refuse_the_same_values():
    from kvplan import api
    from kvplan.errors import FieldError

    with pytest.raises(FieldError, match="first listed in 0.4.1"):
        api.estimate("meta-llama/Llama-2-7b-hf", engine="vllm==0.3.3", quantization="fp8")
    with pytest.raises(FieldError, match="needs vLLM 0.6.5 or later"):
        api.estimate("meta-llama/Llama-2-7b-hf", engine="vllm==0.3.3", enable_prefix_caching=False)
    done = _kvplan("check", "meta-llama/Llama-2-7b-hf", "-tp", "1", "--engine", "vllm==0.2.0",
                   "--kv-cache-dtype", "fp8")
    assert done.returncode == 2 and "needs vLLM 0.3.0 or later" in done.stderr


# 3 ---------------------------------------------------------------------------------------------------------------
def test_check_refuses_a_capture_pair_before_a_sharding_failure(tmp_path):
    """Qwen2.5-7B's 28 query heads do not split over 8 GPUs (a failed rule, exit 1), but 992 is none of the capture
    sizes (16): vLLM holds the max size to the largest size kept (config/vllm.py 0.32.0:2503-2518), so no TP degree
    makes the pair start. Bad input: exit 2 at every TP degree, in the CLI, the YAML and the API."""
    from kvplan import api
    from kvplan.errors import FieldError

    for tp in ("4", "8"):
        done = _kvplan("check", "Qwen/Qwen2.5-7B-Instruct", "-tp", tp, "--max-cudagraph-capture-size", "992",
                       "--cudagraph-capture-sizes", "16")
        assert done.returncode == 2 and "--max-cudagraph-capture-size 992" in done.stderr, done
    file = tmp_path / "d.yaml"
    file.write_text("deployments:\n  - name: a\n    model: Qwen/Qwen2.5-7B-Instruct\n    tp: 8\n"
                    "    max_cudagraph_capture_size: 992\n    cudagraph_capture_sizes: [16]\n")
    done = _kvplan("check", "--file", str(file))
    assert done.returncode == 2 and "d.yaml:5:" in done.stderr and "max_cudagraph_capture_size" in done.stderr
    with pytest.raises(FieldError, match="992"):
        api.check("Qwen/Qwen2.5-7B-Instruct", tensor_parallel_size=8, max_cudagraph_capture_size=992,
                  cudagraph_capture_sizes=[16])


# 4 ---------------------------------------------------------------------------------------------------------------
def test_capture_sizes_all_past_the_token_budget_leave_a_largest_of_zero():
    """vLLM 0.32.0 config/vllm.py:2460-2465 keeps the given sizes within max_num_batched_tokens ([4096] at 2048:
    none), :2503-2505 takes the largest kept or 0, and :2506-2518 raises where a max size given differs (4096 != 0;
    the same lines at 0.11.1:900-913 and 0.34.0:2508-2521). Eager skips the whole function (estimate exits 0)."""
    base = ("estimate", "Qwen/Qwen3-8B", "--cudagraph-capture-sizes", "4096", "--max-cudagraph-capture-size", "4096",
            "--max-num-batched-tokens", "2048")
    done = _kvplan(*base)
    assert done.returncode == 2, done
    assert "within --max-num-batched-tokens 2048, which keeps none of them, so the largest is 0" in done.stderr
    assert _kvplan(*base, "--enforce-eager").returncode == 0
    assert _kvplan(*base[:-1], "4096").returncode == 0  # 4096 kept: the largest, equal


# 5 ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("count", ["-1", "0", str(10 ** 30)])
def test_max_loras_out_of_range_is_judged_alike_by_estimate_and_check(tmp_path, count):
    """vLLM checks max_loras only in LoRAConfig (config/lora.py 0.32.0:35 Field(ge=1)), which it builds only with
    --enable-lora (engine/arg_utils.py 0.32.0:2650-2668); argparse takes any int. So estimate, check (CLI and YAML)
    all accept it without --enable-lora (a warning that it changes nothing) and refuse it with (exit 2)."""
    model = "meta-llama/Llama-3.1-8B"
    for command in (("estimate", model), ("check", model, "-tp", "1")):
        off = _kvplan(*command, "--max-loras", count)
        assert off.returncode == 0 and "--max-loras changes nothing" in " ".join(off.stdout.split()), off
        on = _kvplan(*command, "--max-loras", count, "--enable-lora")
        assert on.returncode == 2 and "--max-loras must be 1 to" in on.stderr, on
    file = tmp_path / "d.yaml"
    file.write_text(f"deployments:\n  - name: a\n    model: {model}\n    tp: 1\n    max_loras: {count}\n")
    assert _kvplan("check", "--file", str(file)).returncode == 0
    file.write_text(f"deployments:\n  - name: a\n    model: {model}\n    tp: 1\n    max_loras: {count}\n"
                    f"    enable_lora: true\n")
    on = _kvplan("check", "--file", str(file))
    assert on.returncode == 2 and "d.yaml:5:" in on.stderr, on


# 6 ---------------------------------------------------------------------------------------------------------------
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
                "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
                "num_hidden_layers": 32,
                "vocab_size": 128256, "max_position_embeddings": 131072, "torch_dtype": "bfloat16",
                "rms_norm_eps": 1e-5, "rope_theta": 500000.0}


def _config(tmp_path, **fields):
    import json

    folder = tmp_path / "m"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({**LLAMA_CONFIG, **fields}))
    return str(folder / "config.json")


@pytest.mark.parametrize("key", ["rope_scaling", "rope_parameters"])
def test_a_rope_factor_past_the_token_bound_is_blamed_on_the_config(tmp_path, key):
    """A linear factor of 1e7 over 131,072 positions: vLLM's default length 131,072 x 1e7 = 1,310,720,000,000
    (config/model.py 0.29.0:2469 multiplies), past kvplan's 2**40 = 1,099,511,627,776. The config's field is named,
    not --max-model-len the user never gave; a --max-model-len given still plans."""
    path = _config(tmp_path, **{key: {"rope_type": "linear", "factor": 1e7}})
    done = _kvplan("estimate", path)
    assert done.returncode == 2 and f"config field '{key}.factor'" in done.stderr, done
    assert "1,310,720,000,000 tokens" in done.stderr and "--max-model-len must" not in done.stderr
    assert _kvplan("estimate", path, "--max-model-len", "8192").returncode == 0


@pytest.mark.parametrize("value, shown", [(0, "0"), ("8192", '"8192"'), (True, "true")])
def test_an_original_length_that_is_no_token_count_is_refused(tmp_path, value, shown):
    """vLLM takes original_max_position_embeddings as a token count (0.29.0 config/model.py:2458 as YaRN's length,
    then x factor at :2469; 0.34.0 rotary_embedding/__init__.py:245 as YaRN's original length): 0, text and true
    were read past (the config's own length used instead). Refused on the field, in the entry and at the top."""
    path = _config(tmp_path, rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                           "original_max_position_embeddings": value})
    done = _kvplan("estimate", path)
    assert done.returncode == 2, done
    assert done.stderr.strip().endswith(f"'rope_scaling.original_max_position_embeddings' must be a whole number of "
                                        f"tokens, 1 to 2**40, got {shown}."), done.stderr
    path = _config(tmp_path, original_max_position_embeddings=value)
    done = _kvplan("estimate", path)
    assert done.returncode == 2 and "field 'original_max_position_embeddings'" in done.stderr, done


def test_verify_refuses_a_capture_pair_no_default_batch_starts():
    """--max-cudagraph-capture-size 4 beside --cudagraph-capture-sizes 1,2,4,8 without --max-num-batched-tokens:
    vLLM keeps every size within its max_num_batched_tokens, at least 2048 on a CUDA GPU (engine/arg_utils.py
    0.32.0:2923-2951), so 8 stays, and it refuses a max size other than the largest kept (config/vllm.py
    0.32.0:2501-2518): refused before torch, as estimate refuses it (review, session 61)."""
    from kvplan.engines import EngineFlags
    from kvplan.engines.vllm_graphs import refuse_capture_flags
    from kvplan.errors import FieldError

    with pytest.raises(FieldError, match="keeps 8"):
        refuse_capture_flags(EngineFlags(max_cudagraph_capture_size=4, cudagraph_capture_sizes=(1, 2, 4, 8)),
                             "0.32.0", None)
    # sizes past 2048 may fall away with a small default: not refused before the GPU says which default
    refuse_capture_flags(EngineFlags(max_cudagraph_capture_size=2048, cudagraph_capture_sizes=(1, 2048, 4096)),
                         "0.32.0", None)
    from conftest import one_error_line, run_kvplan

    line = one_error_line(run_kvplan("estimate", "meta-llama/Llama-3.2-1B-Instruct", "--gpu", "H100",
                                     "--max-cudagraph-capture-size", "4", "--cudagraph-capture-sizes", "1,2,4,8"))
    assert "max-cudagraph-capture-size" in line


# ---- fuzz round 2 (session 61, the merged tree) -------------------------------------------------------------------

def test_an_infinite_rope_factor_is_refused_on_its_field(tmp_path):
    """rope_scaling.factor Infinity (JSON's extension, which Python's reader takes) scaled no length: refused in one
    sentence naming the field, as NaN is, instead of an OverflowError (exit 3)."""
    import json

    from conftest import one_error_line, run_kvplan
    from hub_configs import LLAMA3_8B

    config = {**LLAMA3_8B, "rope_scaling": {"rope_type": "dynamic", "factor": float("inf")}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    line = one_error_line(run_kvplan("estimate", str(tmp_path)))
    assert "'rope_scaling.factor' must be a positive number or null, got Infinity" in line


def test_verify_refuses_more_sequences_than_batched_tokens_before_torch():
    """vLLM refuses max_num_batched_tokens below max_num_seqs (config/scheduler.py 0.32.0:328-333); estimate says
    so, and verify now says the same before torch loads."""
    from kvplan.commands.verify import check_options
    from kvplan.errors import FieldError

    with pytest.raises(FieldError, match=r"64 is more than max_num_batched_tokens 16, which vLLM refuses"):
        check_options(1, 8192, None, None, max_num_seqs=64, max_num_batched_tokens=16)
    check_options(1, 8192, None, None, max_num_seqs=16, max_num_batched_tokens=16)


def test_check_notices_name_the_yaml_key(tmp_path):
    """A deployments file's enforce_eager: the no-graph-reserve notice names the key as the file writes it, as
    every other finding does; on the command line it stays --enforce-eager."""
    from conftest import run_kvplan

    (tmp_path / "d.yaml").write_text("deployments:\n  - name: eager\n    model: meta-llama/Llama-3.1-8B-Instruct\n"
                                     "    gpu: H100\n    tp: 1\n    context: 8192\n    enforce_eager: true\n")
    out = run_kvplan("check", "--file", str(tmp_path / "d.yaml"), "--format", "json")
    assert "enforce_eager sets cudagraph_mode NONE" in out.stdout and "--enforce-eager" not in out.stdout
    flags = run_kvplan("check", "meta-llama/Llama-3.1-8B-Instruct", "-tp", "1", "--gpu", "H100", "--enforce-eager",
                       "--format", "json")
    assert "--enforce-eager sets cudagraph_mode NONE" in flags.stdout
