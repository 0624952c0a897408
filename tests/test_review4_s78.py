"""Review of the s78 serve-flag merges: flags said to change nothing that send vLLM 0.8-0.10 from its V1 engine to
V0 (EngineArgs._is_v1_supported_oracle's _raise_or_fallback, VLLM_USE_V1 unset), whose budget, blocks and admission
kvplan plans otherwise (vllm_v1_oracle.py), and --long-prefill-token-threshold, which V1 applies to a lone request's
prefill chunks up to 0.30 (v1/core/sched/scheduler.py 0.10.1:209-212; 0.30.0:661-662; from 0.31.0:611-619 a lone
request is exempt), where kvplan's time to first token runs chunks of --max-num-batched-tokens (plan/prefill.py)."""

from __future__ import annotations

import pytest

from conftest import one_error_line, run_kvplan

QWEN3_8B = "Qwen/Qwen3-8B"


@pytest.mark.parametrize("args", [
    ("--scheduling-policy", "priority"),  # engine/arg_utils.py 0.8.5:1323, 0.9.1:1275
    ("--preemption-mode", "swap"),  # 0.8.5:1312, 0.10.2:1450
    ("--scheduler-delay-factor", "0.5"),  # 0.8.5:1333, 0.10.2:1461
    ("--logits-processor-pattern", "x"),  # 0.8.5:1307, 0.10.2:1445
    ("--guided-decoding-backend", "outlines"),  # 0.8.5:1342, 0.10.0:1335-1339
    ("--max-num-partial-prefills", "2"),  # 0.8.5:1409-1413, 0.10.2:1490
    ("--max-long-partial-prefills", "2"),
    ("--otlp-traces-endpoint", "http://localhost:4317"),  # 0.8.5:1419, 0.10.1:1444
    ("--load-format", "sharded_state"),  # 0.8.5:1301, 0.10.2:1439
    ("--load-format", "tensorizer"),  # 0.8.4:1360-1361 (tensorizer too up to 0.8.5)
    # -pp > 1: 0.8.5:1479 V1 only with ray; 0.9.0:1378-1380 with ray, mp, external_launcher; kvplan plans the default
    ("--distributed-executor-backend", "ray"),
])
def test_a_flag_that_sends_vllm_0_8_to_0_10_to_v0_is_not_said_to_change_nothing(args):
    line = one_error_line(run_kvplan("estimate", QWEN3_8B, "--engine", "vllm==0.8.5", "-pp", "2", *args))
    assert "changes nothing" not in line and "V0" in line and "kvplan does not model it" in line, line


def test_the_long_prefill_threshold_caps_a_lone_request_before_0_31():
    line = one_error_line(run_kvplan("estimate", QWEN3_8B, "--long-prefill-token-threshold", "512"))
    assert "changes nothing" not in line and "time to first token" in line and "0.30" in line, line


def test_a_flag_that_changes_nothing_still_says_so():
    line = one_error_line(run_kvplan("estimate", QWEN3_8B, "--distributed-executor-backend", "uni"))
    assert "changes nothing kvplan plans" in line, line
    line = one_error_line(run_kvplan("estimate", QWEN3_8B, "--load-format", "dummy"))
    assert "changes nothing kvplan plans" in line, line
