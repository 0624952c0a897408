"""What vLLM 0.32.0 makes of --num-gpu-blocks-override (config/cache.py CacheConfig.num_gpu_blocks_override), run by
its own engine-core code on the CPU: make_figures.py's cases (Hopper emulation, the budget handed to vLLM as the
worker's determine_available_memory) with the override set on the cache config, through EngineCore.
_initialize_kv_caches (v1/core/kv_cache_utils.py get_kv_cache_configs: the override replaces each worker's memory
by N x bytes per block before the one-request check) and the KVCacheManager admission of make_figures.py.

    HF_HUB_OFFLINE=1 /tmp/vllm-venv/bin/python benchmarks/vllm_reference/gpu_blocks_override.py \
        --out tests/data/vllm_gpu_blocks_override.json
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import make_figures as mf  # noqa: E402

GIB = 1 << 30
# (model, max_model_len, budget, override): enough blocks for some requests, fewer than one request, more than the
# budget holds (vLLM starts: nothing compares the pool with the memory), and the sliding-window hybrid gpt-oss
CASES = [
    ("meta-llama/Llama-3.1-8B", 8192, 10 * GIB, 2000),
    ("meta-llama/Llama-3.1-8B", 8192, 10 * GIB, 300),
    ("meta-llama/Llama-3.1-8B", 8192, 10 * GIB, 100000),
    ("openai/gpt-oss-20b", 32768, 10 * GIB, 3000),
    ("openai/gpt-oss-20b", 32768, 10 * GIB, 8000),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()

    made = mf.make_vllm_config

    def with_override(case, drop_quant):
        vc = made(case, drop_quant)
        vc.cache_config.num_gpu_blocks_override = case["num_gpu_blocks_override"]
        return vc

    mf.make_vllm_config = with_override
    mf.install_gpu_emulation()
    mf.attach_capture()
    records = []
    for model, length, budget, override in CASES:
        case = dict(model=model, family=model, tp=1, kv_cache_dtype="auto", available_kv_cache_bytes=budget,
                    max_model_len=length, gpu=mf.DEFAULT_GPU, grid="override", num_gpu_blocks_override=override)
        rec = mf.run_case(case, 4096)
        rec["override_log_lines"] = [line for line in mf.CAPTURE.lines if "Overriding" in line]
        print(json.dumps({k: rec.get(k) for k in ("inputs", "starts", "refusal", "override_log_lines")}), flush=True)
        print(json.dumps(rec.get("kv", {}).get("num_gpu_blocks")), rec.get("log_lines"),
              rec.get("resident", {}).get("requests"), flush=True)
        records.append(rec)
    if args.out:
        mf.write_frozen(args.out, "benchmarks/vllm_reference/gpu_blocks_override.py",
                        "make_figures.py run_case with cache_config.num_gpu_blocks_override set", records)


if __name__ == "__main__":
    main()
