"""What vLLM 0.34.0's own profile pooler pass returns, per task, for a Qwen3Model (Qwen3-8B's config): its
_dummy_pooler_run_task (v1/worker/gpu/pool/pooling_runner.py:163-205) called over DispatchPooler.for_embedding
(layers/pooler/special.py) with a stand-in runner, on the CPU; tests/test_pooling_budget.py
test_the_pooler_pass_against_vllms_own_pooler holds kvplan's pooler_pass_bytes to the token_embed outputs' bytes.

    cd /tmp/s52/sd/vllm-0.34.0 && PYTHONPATH=. HF_HUB_OFFLINE=1 /tmp/v34/bin/python \
<repo>/benchmarks/vllm_reference/pooler_outputs.py 8192 1024

Stand-ins (no GPU, no engine): the pooler's get_current_vllm_config answers the ModelConfig and a pooling model's
scheduler settings (chunked prefill on, async scheduling off: config/vllm.py 0.34.0:1610-1620), and pinned memory
is off. Session 57 printed "embed 1 16777216 {'torch.float32'} {(1024, 4096)}" and "token_embed 1024 134217728
{'torch.float32'} {(8, 4096)}"."""

import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import yaml

REPO = Path(__file__).resolve().parents[2]


def main(tokens: int, requests: int) -> None:
    import torch
    import vllm.model_executor.layers.pooler.seqwise.poolers as seqwise
    import vllm.model_executor.layers.pooler.tokwise.methods as methods
    import vllm.model_executor.layers.pooler.tokwise.poolers as tokwise
    import vllm.v1.pool.metadata as metadata
    from vllm.config import ModelConfig
    from vllm.model_executor.layers.pooler import DispatchPooler
    from vllm.v1.worker.gpu.pool.pooling_runner import PoolingRunner

    metadata.PIN_MEMORY = False
    base = dict(yaml.safe_load((REPO / "model_specs" / "Qwen--Qwen3-8B.yaml").read_text())["config"])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(dict(base, architectures=["Qwen3Model"])))
        model_config = ModelConfig(model=tmp, skip_tokenizer_init=True, max_model_len=32_768)
        current = SimpleNamespace(model_config=model_config, scheduler_config=SimpleNamespace(
            enable_chunked_prefill=True, async_scheduling=False))
        seqwise.get_current_vllm_config = tokwise.get_current_vllm_config = lambda: current
        methods.get_current_vllm_config = lambda: current
        pooler = DispatchPooler.for_embedding(model_config.pooler_config)
        runner = SimpleNamespace(model=SimpleNamespace(pooler=pooler), max_num_reqs=requests,
                                 model_config=model_config)
        hidden = torch.zeros(tokens, base["hidden_size"], dtype=torch.bfloat16)
        for task in sorted(pooler.get_supported_tasks()):
            out = PoolingRunner._dummy_pooler_run_task(runner, hidden, task)
            tensors = [t for t in (out if isinstance(out, list) else [out]) if isinstance(t, torch.Tensor)]
            print(task, len(tensors), sum(t.numel() * t.element_size() for t in tensors),
                  {str(t.dtype) for t in tensors}, {tuple(t.shape) for t in tensors})


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
