"""DeepSeek-V3.2 and GLM-5.2 on Hopper with `--kv-cache-dtype fp8` and `fp8_e4m3`, started by vLLM 0.32.0's own
engine-core code on the CPU: make_figures.py's cases (SM90 emulation: sparse layers take the first of
FLASH_ATTN_MLA_SPARSE, FLASHMLA_SPARSE, FLASHINFER_MLA_SPARSE_SM90 whose own validate_configuration accepts them;
the budget handed to vLLM as the worker's determine_available_memory), with one more emulation step:
FLASHINFER_MLA_SPARSE_SM90's FlashInfer check (utils/flashinfer.py:414-437 has_flashinfer_sm90_nope_mla, the
keyword-only ckv_scale_arr of BatchMLAPagedAttentionWrapper.run) answers True, as it does with the flashinfer-python
0.7.0.post1 vLLM 0.32.0's CUDA wheel pins (flashinfer/mla/_batch_mla/_wrapper.py:780); without it (no FlashInfer on
a CPU) that backend refuses and fp8_e4m3 finds no sparse backend.

    HF_HUB_OFFLINE=1 /tmp/vllm-venv/bin/python benchmarks/vllm_reference/sparse_fp8_spelling.py \\
        --out tests/data/vllm_sparse_fp8_spelling.json
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import make_figures as mf  # noqa: E402

GIB = 1 << 30
BUDGET = 40 * GIB  # tests/test_blackwell.py's --kv-cache-memory-bytes
# (model, tp, --kv-cache-dtype, max_model_len)
CASES = [(mf.DSA_MODEL, 8, kv, 131072) for kv in ("fp8", "fp8_e4m3")] + \
    [(mf.SHARED_INDEXER_MODEL, 8, kv, 131072) for kv in ("fp8", "fp8_e4m3")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()
    mf.install_gpu_emulation()
    from vllm.v1.attention.backends.mla import flashinfer_mla_sparse_sm90

    flashinfer_mla_sparse_sm90.has_flashinfer_sm90_nope_mla = lambda: True
    mf.attach_capture()
    records = []
    for model, tp, kv, length in CASES:
        case = dict(model=model, family="sparse-fp8-spelling", tp=tp, kv_cache_dtype=kv,
                    available_kv_cache_bytes=BUDGET, max_model_len=length, gpu=mf.DEFAULT_GPU, grid="fp8-spelling")
        rec = mf.run_case(case, 4096)
        kv_figures = rec.get("kv", {})
        print(json.dumps({"model": model, "kv": kv, "backends": rec.get("settings", {}).get("attention_backends"),
                          "blocks": kv_figures.get("num_gpu_blocks"), "bytes_per_block": kv_figures.get(
                              "bytes_per_block"), "log": rec.get("log_lines"), "error": rec.get("error")}), flush=True)
        records.append(rec)
    if args.out:
        mf.write_frozen(args.out, "benchmarks/vllm_reference/sparse_fp8_spelling.py",
                        "make_figures.py run_case (SM90) with has_flashinfer_sm90_nope_mla True (FlashInfer "
                        "0.7.0.post1, the release's pin)", records)


if __name__ == "__main__":
    main()
