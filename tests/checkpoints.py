"""Checkpoint folders for the tests that read a config.json beside ModelOpt's hf_quant_config.json
(test_hf_quant_config.py, test_kv_auto_release.py)."""

import json

# hf_quant_config.json as ModelOpt 0.29 writes it (nvidia/*-FP4), with an FP8 KV cache, and with an NVFP4 one
NVFP4_FILE = {"producer": {"name": "modelopt", "version": "0.29.0"},
              "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": "FP8", "group_size": 16,
                               "exclude_modules": ["lm_head"]}}
NVFP4_KV_FILE = {**NVFP4_FILE, "quantization": {**NVFP4_FILE["quantization"], "kv_cache_quant_algo": "NVFP4"}}


def checkpoint_folder(tmp_path, config: dict, side=None, name: str = "ckpt"):
    """tmp_path/name holding config.json and, where `side` is given (an object or the file's text),
    hf_quant_config.json."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    if side is not None:
        (folder / "hf_quant_config.json").write_text(side if isinstance(side, str) else json.dumps(side))
    return folder
