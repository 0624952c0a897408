"""What vLLM 0.32 holds for its fused-MoE workspace in the profile run, beside kvplan's predicted profile peak
(benchmarks/RESULTS.md session 41; the engine rule since session 42: engines/vllm_budget.py mlp_per_token).
vLLM 0.32 allocates it through the process-wide workspace
manager (model_executor/layers/fused_moe/modular_kernel.py _allocate_buffers: one buffer for workspace13 and the
output, max of their sizes, and workspace2), with M the forward's tokens (max_num_batched_tokens; no M chunking in
0.32). The shapes are TritonExperts.workspace_shapes (experts/triton_moe.py): workspace13 M x topk x max(N_act, K),
workspace2 M x topk x max(N, K), output M x K, with N = 2 I / tp (gated), N_act = I / tp, K = hidden, in the
activations' dtype. Triton is what vLLM 0.32 picks for 16-bit experts on Hopper (fused_moe/oracle/unquantized.py
moves FlashInfer's kernels back on SM90); quantised experts pick other backends with other shapes (DeepGemm,
FlashInfer, OAI Triton for mxfp4), so their rows here are the Triton figure, not vLLM's.

    python3 benchmarks/probes/vllm_moe_workspace.py
"""
from __future__ import annotations

import json
import subprocess
import sys

from kvplan.model.sources import resolve

M = 8192
CASES = [("mistralai/Mixtral-8x7B-v0.1", 2), ("Qwen/Qwen3-Next-80B-A3B-Thinking", 2), ("Qwen/Qwen3-30B-A3B", 1),
         ("deepseek-ai/DeepSeek-V2-Lite", 1), ("deepseek-ai/DeepSeek-V3", 8), ("openai/gpt-oss-20b", 1)]


def triton_workspace_bytes(spec, tp: int, m: int = M) -> int:
    inter = spec.expert_intermediate_size // tp
    n, n_act, k, topk = 2 * inter, inter, spec.hidden_size, spec.experts_per_token
    ws13 = max(m * topk * max(n_act, k), m * k)
    return (ws13 + m * topk * max(n, k)) * 2


def predicted_peak(name: str, tp: int) -> int:
    out = subprocess.run([sys.executable, "-m", "kvplan", "estimate", name, "--gpu", "H200", "--tp", str(tp), "-c",
                          str(M), "-f", "json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["plans"][0]["budget"]["activation_bytes"]


def main() -> None:
    print("| model | tp | experts per token | vLLM 0.32 Triton MoE workspace GiB | kvplan's predicted profile peak "
          "GiB |")
    print("|---|---|---|---|---|")
    for name, tp in CASES:
        spec = resolve(name)
        print(f"| {name} | {tp} | {spec.experts_per_token} | {triton_workspace_bytes(spec, tp) / 2**30:.2f} | "
              f"{predicted_peak(name, tp) / 2**30:.2f} |")


if __name__ == "__main__":
    main()
