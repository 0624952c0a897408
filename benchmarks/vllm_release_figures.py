"""KV cache a GPU by vLLM release for a few bundled models: what the rules of each release (vllm_versions.py) make of
the same deployment. CPU only, no vLLM needed; the figures in benchmarks/RESULTS.md (session 52) are its output.

    python benchmarks/vllm_release_figures.py [--releases 0.32.0,0.33.0,0.34.0] [--context 32768]"""

import argparse

from kvplan import api

DEPLOYMENTS = (  # model, GPU, tensor parallel size, max_model_len (None: --context)
    ("meta-llama/Llama-3.1-8B-Instruct", "H100", 1, None),
    ("meta-llama/Llama-3.1-70B-Instruct", "H100", 4, None),
    ("Qwen/Qwen3-30B-A3B", "H100", 1, None),
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", "H200", 2, None),
    ("openai/gpt-oss-120b", "H100", 1, None),
    ("deepseek-ai/DeepSeek-V3", "H200", 8, None),
    ("meta-llama/Llama-3.1-8B-Instruct", "L4", 1, 8192),
)


def row(model: str, gpu: str, tp: int, release: str, context: int) -> str:
    (plan,) = api.estimate(model, gpu=gpu, tensor_parallel_size=tp, max_model_len=context,
                           engine=f"vllm=={release}")
    terms = {t.name: t.bytes for t in plan.budget.terms}
    engine = plan.engine
    if engine is None or engine.refusal is not None:
        figures = "refused"
    else:
        figures = (f"{plan.kv_budget_bytes_per_gpu / 2**30:6.2f} GiB  {engine.gpu_kv_cache_tokens:>10,} tokens  "
                   f"block {engine.block_size:>4}  {engine.max_concurrency:7.2f}x")
    return (f"| {model} | {gpu} | {tp} | {context:,} | {release} | util {plan.budget.gpu_util:.2f} | peak "
            f"{terms.get('profile_peak', 0) / 2**30:.2f} | {figures} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--releases", default="0.32.0,0.33.0,0.34.0")
    parser.add_argument("--context", type=int, default=32768)
    args = parser.parse_args()
    print("| model | GPU | tp | max len | vLLM | utilisation | profile peak GiB | KV a GPU, tokens, block, concurrency |")
    print("|---|---|---|---|---|---|---|---|")
    for model, gpu, tp, context in DEPLOYMENTS:
        for release in args.releases.split(","):
            print(row(model, gpu, tp, release, context or args.context))


if __name__ == "__main__":
    main()
