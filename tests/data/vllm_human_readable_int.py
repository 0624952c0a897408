"""Make tests/data/vllm_human_readable_int.json: what vLLM's own argument parser makes of number strings
(vllm/utils/argparse_utils.py human_readable_int, used for --max-model-len, --max-num-batched-tokens and
--kv-cache-memory-bytes). Run with vLLM installed (here 0.32.0):

    /work/vllm-venv/bin/python tests/data/vllm_human_readable_int.py > tests/data/vllm_human_readable_int.json
"""

import json

from vllm import __version__
from vllm.utils.argparse_utils import human_readable_int, human_readable_int_or_auto

CASES = ["8192", "1k", "1K", "32k", "32K", "25.6k", "1m", "1M", "1g", "1G", "10G", "10g", "2t", "1T", "1.5K", "0.5m",
         " 4096 ", "1_000", "1e9", "10GiB", "abc", "auto", "-1"]


def main():
    out = {"vllm": __version__, "human_readable_int": {}, "max_model_len": {}}
    for text in CASES:
        for key, fn in (("human_readable_int", human_readable_int), ("max_model_len", human_readable_int_or_auto)):
            try:
                out[key][text] = fn(text)
            except Exception as exc:  # noqa: BLE001 - record the rejection
                out[key][text] = f"error: {type(exc).__name__}"
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
