"""vLLM's two batch checks, refused where vLLM refuses them and in its words (vllm_settings.check_batch).

SchedulerConfig checks, in this order, in every release (read in the wheels 0.2.0-0.34.0):
1. max_num_batched_tokens < max_model_len and chunked prefill off: "max_num_batched_tokens (T) is smaller than
   max_model_len (L). ..." (config.py 0.2.7:385-391, 0.6.3:1024-1032, 0.8.5:2023-2031; config/scheduler.py
   0.32.0:316-325);
2. max_num_batched_tokens < max_num_seqs: "max_num_batched_tokens (T) must be greater than or equal to max_num_seqs
   (S)." (config.py 0.6.3:1034-1038, 0.8.5:2033-2037; config/scheduler.py 0.32.0:328-332).
Chunked prefill: V0 (<= 0.7) turns it on past 32K only, from 0.5.3 (engine/arg_utils.py 0.5.3:747-769,
0.6.3:936-960); V1 always (arg_utils.py 0.8.5:1568-1569). A max_num_seqs left to vLLM: V0's 256 (arg_utils.py
0.6.3:115) is never lowered; V1's 1,024 on a GPU of 70 GiB or more (arg_utils.py 0.8.5:1596-1602) is set as is up to
0.10.0 (0.8.5:1620-1621, 0.10.0:1652-1654) and lowered to the batched tokens from 0.10.1 (0.10.1:1709-1712,
0.32.0:3180).
"""

from __future__ import annotations

import pytest

from conftest import estimate_plan, one_error_line, run_kvplan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
NEMOTRON_H = "nvidia/Nemotron-H-8B-Base-8K"  # Mamba layers: V0 by default on 0.8-0.10.1 (vllm_mamba_v0.py)


def _error(version: str, *flags) -> str:
    return one_error_line(run_kvplan("estimate", LLAMA, "--gpu", "H100", "--engine", f"vllm=={version}", *flags))


def test_v0_0_6_3_refuses_a_batch_shorter_than_the_length_first():
    # 8,192 <= 32,768: chunked prefill stays off, so check 1 fires before check 2 (16 < 256 too)
    line = _error("0.6.3", "--max-num-batched-tokens", "16", "-c", "8192")
    assert '("max_num_batched_tokens (16) is smaller than max_model_len (8192)")' in line
    assert "must be greater than or equal" not in line  # vLLM raises the first check only
    # the remedy also passes check 2: max(8192, 256) = 8192 tokens; or a length of 16 with at most 16 sequences
    assert line.endswith("set --max-num-batched-tokens to 8192 or more, or --max-model-len to 16 or less and "
                         "--max-num-seqs to 16 or less.")


@pytest.mark.parametrize("version", ["0.2.7", "0.4.3", "0.5.5", "0.7.3"])
def test_every_v0_release_refuses_it(version):
    assert "is smaller than max_model_len (8192)" in _error(version, "--max-num-batched-tokens", "16", "-c", "8192")


def test_a_given_small_max_num_seqs_drops_the_sequences_part_of_the_remedy():
    line = _error("0.6.3", "--max-num-batched-tokens", "16", "--max-num-seqs", "8", "-c", "8192")
    assert line.endswith("set --max-num-batched-tokens to 8192 or more, or --max-model-len to 16 or less.")


def test_v0_past_32k_chunks_and_then_refuses_its_256_sequences():
    # 65,536 > 32,768: chunked prefill on (0.6.3), check 1 passes; V0's 256 sequences stay, 16 < 256
    line = _error("0.6.3", "--max-num-batched-tokens", "16", "-c", "65536")
    assert '("max_num_batched_tokens (16) must be greater than or equal to max_num_seqs (256)")' in line
    assert line.endswith("set --max-num-batched-tokens to 256 or more, or --max-num-seqs to 16 or less.")
    # 512 tokens pass both: 65,536 / 512 = 128 chunks of the prompt
    plan = estimate_plan(LLAMA, "--gpu", "H100", "--engine", "vllm==0.6.3", "-c", "65536",
                         "--max-num-batched-tokens", "512")
    assert plan["engine"]["max_num_seqs"] == 256 and plan["prefill"]["chunks"] == 128


def test_chunked_prefill_past_32k_starts_in_0_5_3():
    # up to 0.5.2 EngineArgs leaves chunked prefill off (enable_chunked_prefill = False, arg_utils.py 0.5.2:85):
    # SchedulerConfig takes max(65536, 2048) = 65,536; 0.5.3 turns it on and takes 512 (config.py 0.5.5:901)
    def tokens(version):
        return estimate_plan(LLAMA, "--gpu", "H100", "--engine", f"vllm=={version}", "-c", "65536")["engine"]

    assert tokens("0.5.2")["max_num_batched_tokens"] == 65536
    assert tokens("0.5.3")["max_num_batched_tokens"] == 512
    assert "is smaller than max_model_len (65536)" in _error("0.5.2", "--max-num-batched-tokens", "512", "-c", "65536")


@pytest.mark.parametrize("version", ["0.8.5", "0.10.0"])
def test_v1_before_0_10_1_refuses_its_own_1024_sequences(version):
    line = _error(version, "--max-num-batched-tokens", "16", "-c", "8192")
    assert '("max_num_batched_tokens (16) must be greater than or equal to max_num_seqs (1024)")' in line
    assert line.startswith("kvplan: error: --max-num-batched-tokens 16 is less than --max-num-seqs 1024, vLLM "
                           f"{version}'s default here")


@pytest.mark.parametrize("version", ["0.10.1", "0.11.0", "0.14.0", "0.32.0", "0.34.0"])
def test_v1_from_0_10_1_lowers_its_sequences_to_the_tokens(version):
    plan = estimate_plan(LLAMA, "--gpu", "H100", "--engine", f"vllm=={version}", "-c", "8192",
                         "--max-num-batched-tokens", "16")
    # min(1024, 16) = 16 sequences; chunked prefill: the prompt (8,192 tokens, or 8,191 where vLLM keeps one for the
    # output) in ceil(8192 / 16) = ceil(8191 / 16) = 512 chunks of at most 16
    assert plan["engine"]["max_num_seqs"] == 16 and plan["max_concurrency"] == 16
    assert plan["prefill"]["chunks"] == 512


def test_v0_fallback_of_a_mamba_model_refuses_both_ways():
    # 0.9.2 runs Nemotron-H on V0: chunked prefill off at 8,192 (<= 32K), V0's 256 sequences kept
    def error(*flags):
        return one_error_line(run_kvplan("estimate", NEMOTRON_H, "--gpu", "H100", "--engine", "vllm==0.9.2", *flags))

    assert "(\"max_num_batched_tokens (4096) is smaller than max_model_len (8192)\")" in \
        error("-c", "8192", "--max-num-batched-tokens", "4096")
    assert "must be greater than or equal to max_num_seqs (256)" in \
        error("-c", "65536", "--max-num-batched-tokens", "128")
