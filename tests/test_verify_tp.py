"""`kvplan verify --tp N`'s process plumbing on the CPU: two processes (torch.multiprocessing spawn), one gloo
group, each rank building its shard of one seeded set of full weights with vLLM's sharding, the all-reduces of
the row-parallel layers and the vocabulary-parallel embedding, the gathered logits; the ranks' logits must be the
single-process float64 reference's. On GPUs the same launcher runs NCCL (kvplan/gpu/tp.py)."""

import os

import pytest

from tiny_models import TINY

torch = pytest.importorskip("torch")

from kvplan.errors import KvplanError  # noqa: E402
from kvplan.gpu.reference import Reference  # noqa: E402
from kvplan.gpu.tp import NCCL_ENV, forward_check, launch  # noqa: E402
from kvplan.gpu.weights import full_weights  # noqa: E402
from kvplan.model import parse_config  # noqa: E402
from kvplan.verify.arch import architecture  # noqa: E402

# MiniMax-M2's q/k norms are over the whole projection: each rank's mean square all-reduced; with one KV head (fewer
# than the ranks) both ranks hold it, and k's mean over the two copies is still the head's
# Session 49's families: ERNIE-4.5 (interleaved rotation on each rank's heads, the float32 router whole on both),
# GLM-4.x (q / k / v biases split with their heads, q / k norms whole), Kimi Linear (KDA heads split, f_a and g_a
# whole, experts zero-padded to 256 columns a rank), MiMo-V2 (the full layers' one KV head on both ranks, sinks split
# with the query heads, values 16 / 8 wide), DeepSeek-V3.2 / GLM-5.2 (MLA heads split, the indexer whole on each
# rank, so both pick the same latents: the 11-token prompt is past their top 8 / 6)
CONFIGS = {name: TINY[name] for name in ["llama", "llama_fp8", "gemma3", "gpt_oss", "deepseek_v2", "qwen3_next",
                                         "nemotron_h", "jamba", "granite4", "minimax_m2", "ernie4_5_moe", "glm4_moe",
                                         "kimi_linear", "mimo_v2", "deepseek_v32", "glm_dsa"]}
CONFIGS["minimax_m2, one KV head"] = {**TINY["minimax_m2"], "num_key_value_heads": 1}
MODELS = list(CONFIGS)
PROMPT = [3, 17, 5, 99, 42, 7, 1, 0, 64, 12, 100]


def assert_ranks_match(arch, seed: int, prompt: list, got0: list, got1: list, label) -> None:
    """Two ranks' logits (forward_check's: after `prompt`, then after each greedy step) against the single-process
    float64 reference of `arch` (tp 1) on the same seeded full weights: each rank within 1e-4 of it, the ranks within
    1e-5 of each other (every rank holds the whole logits)."""
    ref = Reference(arch, full_weights(arch, seed))
    for token in prompt:
        want = ref.step(token)
    for step, (a, b) in enumerate(zip(got0, got1)):
        a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
        scale = want.abs().max()
        assert float((a - want).abs().max() / scale) < 1e-4, (label, step)
        assert float((a - b).abs().max() / scale) < 1e-5, (label, step)
        if step < len(got0) - 1:
            want = ref.step(int(a.argmax()))


def test_two_gloo_ranks_match_the_reference():
    cases = [(CONFIGS[name], 7, PROMPT, 2) for name in MODELS]
    ranks = launch(forward_check, (cases,), 2, "gloo", timeout_s=300)
    for name, got0, got1 in zip(MODELS, ranks[0], ranks[1]):
        raw = CONFIGS[name]
        assert_ranks_match(architecture(raw, parse_config(raw, name), 1), 7, PROMPT, got0, got1, name)


def _fails_on_rank_one(rank, world, backend):
    from kvplan.gpu.tp import init_group

    init_group(rank, world, backend)
    assert all(os.environ.get(k) == v for k, v in NCCL_ENV.items())  # NVLink multicast off in every process
    if rank == 1:
        raise KvplanError("rank one could not build its shard")
    torch.distributed.barrier()  # rank 0 waits on a collective that never completes: the launcher ends it
    return "never"


def test_a_failing_rank_ends_the_group_with_its_message():
    with pytest.raises(KvplanError, match=r"^rank 1: rank one could not build its shard\.$"):
        launch(_fails_on_rank_one, (), 2, "gloo", timeout_s=120)
