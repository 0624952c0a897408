"""Make tests/data/vllm_indexer_logits.json: DeepSeek sparse attention's indexer scores as vLLM 0.32.0's own torch
reader computes them (v1/attention/ops/rocm_aiter_mla_sparse.py fp8_paged_mqa_logits_torch: paged uint8 key cache,
per block block_size x 128 e4m3 values then block_size float32 scales; score = sum over heads of weight x relu(q_h .
k) x the key's scale), for kvplan/gpu/sparse_mla.py. Run with vLLM installed (here vLLM 0.32.0 CPU) from the
repository root:

    PYTHONPATH=. /tmp/vllm-venv/bin/python tests/data/vllm_indexer_logits.py > tests/data/vllm_indexer_logits.json

The keys (e4m3 values and power-of-two scales, seeded) are written into the pages by kvplan's write_keys at the
slots each sequence's shuffled block table gives: vLLM's reader then finds them only if kvplan lays the pages out as
vLLM does. The CUDA writer (indexer_k_quant_and_cache) has no CPU build, so vLLM's half is the reader."""

import json
import random

import torch
from vllm import __version__
from vllm.v1.attention.ops.rocm_aiter_mla_sparse import fp8_paged_mqa_logits_torch

from kvplan.gpu.sparse_mla import write_keys

DIM, HEADS, BLOCK, BLOCKS = 128, 8, 16, 12
LENS = [37, 5, 64]  # tokens a sequence holds: past a block, inside one, whole blocks
WIDTH = 4  # blocks a sequence's table lists


def hexes(t):
    return [bytes(row.view(torch.uint8).tolist()).hex() for row in t]


def main():
    gen = torch.Generator().manual_seed(49)
    ids = list(range(BLOCKS))
    random.Random(49).shuffle(ids)
    table = torch.tensor([ids[i * WIDTH:(i + 1) * WIDTH] for i in range(len(LENS))], dtype=torch.int32)
    pages = torch.zeros(BLOCKS, BLOCK, DIM + 4, dtype=torch.uint8)
    keys = []
    for b, n in enumerate(LENS):
        values = torch.randn(n, DIM, generator=gen).mul(64).clamp(-448, 448).to(torch.float8_e4m3fn)
        scales = torch.exp2(torch.randint(-12, -4, (n,), generator=gen).float())
        pos = torch.arange(n)
        write_keys(pages, values, scales, table[b].long()[pos // BLOCK] * BLOCK + pos % BLOCK)
        keys.append({"values": hexes(values), "scales": scales.tolist()})
    q = torch.randn(len(LENS), HEADS, DIM, generator=gen).mul(64).clamp(-448, 448).to(torch.float8_e4m3fn)
    weights = torch.randn(len(LENS), HEADS, generator=gen) * 1e-3
    logits = fp8_paged_mqa_logits_torch(q[:, None], pages[:, :, None, :], weights, torch.tensor(LENS), table,
                                        WIDTH * BLOCK)
    json.dump({"vllm": __version__, "script": "tests/data/vllm_indexer_logits.py",
               "function": "vllm/v1/attention/ops/rocm_aiter_mla_sparse.py fp8_paged_mqa_logits_torch",
               "block_size": BLOCK, "blocks": BLOCKS, "dim": DIM, "table": table.tolist(), "lens": LENS,
               "keys": keys, "q": [hexes(row) for row in q], "weights": weights.tolist(),
               "logits": [row[:n].tolist() for row, n in zip(logits, LENS)]}, fp=__import__("sys").stdout)


if __name__ == "__main__":
    main()
