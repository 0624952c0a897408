"""What vLLM 0.34.0's own start-up makes of --enable-prefix-caching / --no-enable-prefix-caching and --mamba-block-size
on two hybrids, frozen as tests/data/vllm_prefix_flag.json for tests/test_vllm_prefix_flag.py. Each case runs
make_figures.run_case (EngineArgs.create_engine_config on the emulated H100, the model's specs on the meta device,
EngineCore._initialize_kv_caches against a fixed KV budget, KVCacheManager's admissions), with the flags given as
`vllm serve` would pass them:

    cd /tmp/s52/sd/vllm-0.34.0 && VLLM_TARGET_DEVICE=cpu PYTHONPATH=. /tmp/v34/bin/python \\
        <repo>/benchmarks/vllm_reference/prefix_flag.py <repo>/tests/data/vllm_prefix_flag.json

Models: Qwen3-Next-80B-A3B (bundled spec; gated DeltaNet + full attention) at TP 2, Nemotron-H-8B (make_figures.py's
config; Mamba-2 + full attention) at TP 1; 10 GiB of KV budget a GPU; 8K and 32K (Nemotron-H-8B-Base-8K refuses 32K:
its max_position_embeddings is 8192); and two attention-free models (Falcon-Mamba-7B, Mamba2-780m) at 8K, with the flag
and without. Session 60 ran it with CPU torch
2.13.0 (/tmp/v34)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_figures as mf  # noqa: E402

GIB = 2**30
MODELS = (("Qwen/Qwen3-Next-80B-A3B-Thinking", "qwen3next-gdn-hybrid", 2),
          ("make_figures.py:NEMOTRON_H_8B", "nemotronh-mamba2-hybrid", 1))
# attention-free models, where vLLM's default is off (config/model.py is_prefix_caching_supported), at 8K
ATTENTION_FREE = (("make_figures.py:FALCON_MAMBA_7B", "falconmamba-attention-free", 1),
                  ("make_figures.py:MAMBA2_780M", "mamba2-attention-free", 1))
# (prefix caching as typed: None = not given, mamba_block_size)
FLAGS = ((None, None), (True, None), (False, None), (True, 1024), (False, 1024))
KEEP = ("inputs", "starts", "error", "refusal", "kv", "resident", "log_lines")


def cases() -> list:
    out = []
    for model, family, tp in MODELS:
        for length in (8192, 32768):
            for prefix, mamba_block in FLAGS:
                case = dict(model=model, family=family, tp=tp, kv_cache_dtype="auto", available_kv_cache_bytes=10 * GIB,
                            max_model_len=length, gpu=mf.DEFAULT_GPU, grid="prefix_flag")
                if prefix is not None:
                    case["enable_prefix_caching"] = prefix
                if mamba_block is not None:
                    case["mamba_block_size"] = mamba_block
                out.append(case)
    for model, family, tp in ATTENTION_FREE:
        for prefix in (None, True):
            case = dict(model=model, family=family, tp=tp, kv_cache_dtype="auto", available_kv_cache_bytes=10 * GIB,
                        max_model_len=8192, gpu=mf.DEFAULT_GPU, grid="prefix_flag")
            out.append(case if prefix is None else dict(case, enable_prefix_caching=prefix))
        out.append(dict(out[-1], mamba_block_size=1024))  # --mamba-block-size on an attention-free model
    return out


def main():
    import vllm

    mf.SPEC_CACHE_ENABLED = False
    mf.install_gpu_emulation()
    mf.attach_capture()
    records = []
    for case in cases():
        record = mf.run_case(case, 4096)
        records.append({key: record[key] for key in KEEP if key in record})
    header = {"vllm_version": vllm.__version__, "script": "benchmarks/vllm_reference/prefix_flag.py",
              "command": mf.run_command()}
    Path(sys.argv[1]).write_text(json.dumps({"header": header, "cases": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
