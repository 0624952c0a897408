"""kvplan verify on a real CUDA GPU. Skips cleanly without torch or CUDA (CI has neither); run on a GPU machine
with `pytest tests/test_verify_gpu.py`. Small models and a low --gpu-util keep each run to seconds."""

import json
import random
import subprocess
import sys

import pytest

from conftest import ROOT, run_kvplan

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

from kvplan import verify as V  # noqa: E402
from kvplan.commands.verify import verify as run_verify  # noqa: E402
from kvplan.errors import KvplanError  # noqa: E402

SMALL = "meta-llama/Llama-3.2-1B-Instruct"


class Quiet(V.Progress):
    """Progress that prints nothing, and can interrupt the run at a named step (as Ctrl-C would)."""

    def __init__(self, interrupt_at=None):
        from rich.console import Console

        super().__init__(Console(quiet=True))
        self.interrupt_at = interrupt_at
        self.steps = []

    def step(self, text):
        self.steps.append(text)
        if self.interrupt_at and text.startswith(self.interrupt_at):
            raise KeyboardInterrupt
        return super().step(text)


def _memory():
    torch.cuda.synchronize()
    return torch.cuda.memory_allocated(), torch.cuda.memory_reserved()


def _assert_released(before):
    allocated, reserved = _memory()
    # <=: verify also hands back the cuBLAS workspaces that earlier tests left in torch's allocator
    assert allocated <= before[0], torch.cuda.memory_summary(abbreviated=True)
    assert reserved <= before[1], torch.cuda.memory_summary(abbreviated=True)


def test_small_model_end_to_end():
    before = _memory()
    result = run_verify(SMALL, context=4096, gpu_util=0.3, progress=Quiet()).result
    _assert_released(before)
    a = result["allocation"]
    assert abs(a["torch_error"]) <= V.ALLOCATION_TOLERANCE and abs(a["nvml_error"]) <= V.ALLOCATION_TOLERANCE
    assert a["predicted_bytes"] == a["layout_bytes"]
    b = result["boundary"]
    assert b["confirmed"] and b["served"] == result["plan"]["max_concurrency"] and b["refused_next"]
    d = result["decode"]
    assert {p["batch"] for p in d["points"]} >= {1, b["served"]}
    assert all(check["rel_l2"] < 2e-2 for check in d["attention_checks"].values())
    assert all("bundled CUDA kernel" in m for m in d["attention_methods"].values())
    for p in d["points"]:
        assert p["attention_ms"] > 0 and p["step_ms"] >= p["attention_ms"] * 0.5
        assert p["weights_bytes_streamed"] <= p["weights_bytes_read"]
    assert result["verdict"]["capacity_confirmed"]
    assert result["gpu"]["bandwidth_copy_bytes_per_s"] > 1e11


def test_windows_and_fp8_cache():
    result = run_verify("openai/gpt-oss-20b", context=4096, kv_dtype="fp8", gpu_util=0.3, progress=Quiet()).result
    kinds = {g["kind"] for g in result["layout"]}
    assert kinds == {"full", "sliding"}
    assert all(g["dtype"] == "fp8_e4m3" for g in result["layout"])
    assert result["verdict"]["capacity_confirmed"], result["verdict"]["capacity_reason"]
    assert all(check["rel_l2"] < 2e-2 for check in result["decode"]["attention_checks"].values())


@pytest.mark.parametrize("shuffle", [False, True])
def test_mla_stand_in_on_gpu(shuffle):
    from kvplan.gpu.mla_standin import MLAStandIn, mla_reference, pick_sdpa_backend, relative_l2

    bs, dim, v_dim, heads, width = 16, 576, 512, 16, 64
    ids = list(range(4 * width))
    if shuffle:
        random.Random(5).shuffle(ids)
    cache = torch.randn(4 * width + 3, bs, dim, device="cuda", dtype=torch.bfloat16)
    table = torch.tensor([ids[i * width:(i + 1) * width] for i in range(4)], dtype=torch.int32, device="cuda")
    lens = torch.tensor([1000, 1024, 17, 600] if shuffle else [1024] * 4, dtype=torch.int32, device="cuda")
    q = torch.randn(4, heads, dim, device="cuda", dtype=torch.bfloat16)
    backend = pick_sdpa_backend(torch, dim, v_dim, torch.bfloat16)
    ref = mla_reference(torch, q, cache, table, lens, v_dim, dim ** -0.5)
    for method in ("sdpa", "bmm"):
        stand_in = MLAStandIn(torch, cache, table, lens, v_dim, dim ** -0.5, method, backend)
        assert stand_in.how == ("gather" if shuffle else "views")
        assert relative_l2(torch, stand_in(q), ref) < 2e-2


def test_interrupt_releases_every_tensor():
    before = _memory()
    progress = Quiet(interrupt_at="decode, batch")
    with pytest.raises(KeyboardInterrupt):
        run_verify(SMALL, context=2048, gpu_util=0.3, progress=progress).result
    assert any(s.startswith("holding weights") for s in progress.steps)
    _assert_released(before)


def test_gpu_too_small_for_one_sequence():
    before = _memory()
    with pytest.raises(KvplanError, match="leaves no room for one 8,192-token sequence.*would fit with --tp"):
        run_verify("meta-llama/Llama-3.1-405B", progress=Quiet()).result
    with pytest.raises(KvplanError, match="leaves no room for one 4,000,000-token sequence"):
        run_verify(SMALL, context=4_000_000, progress=Quiet()).result
    _assert_released(before)


def test_cli_json_and_progress():
    r = run_kvplan("verify", SMALL, "--context", "2048", "--gpu-util", "0.25", "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    data = json.loads(r.stdout)
    assert data["boundary"]["confirmed"] and data["verdict"]["ok"] == (r.returncode == 0)
    assert "decode, batch 1" in r.stderr and "allocating the paged KV cache" in r.stderr


def test_cli_table():
    r = run_kvplan("verify", SMALL, "--context", "1024", "--gpu-util", "0.2")
    assert r.returncode in (0, 1), r.stderr
    text = " ".join(r.stdout.split())
    for needle in ("Allocation (one rank)", "NVML used-memory delta", "Boundary confirmed", "Verdict capacity",
                   "bundled CUDA kernel"):
        assert needle in text
    assert max(len(line) for line in r.stdout.splitlines()) <= 100


def test_reference_fallback_without_nvrtc():
    """With cuda.core unimportable the kernel is unavailable: verify times the torch reference and says so."""
    code = ("import sys; sys.modules['cuda.core'] = None; sys.modules['cuda.core.experimental'] = None; "
            f"sys.argv = ['kvplan', 'verify', {SMALL!r}, '--context', '1024', '--gpu-util', '0.08', "
            "'--format', 'json']; from kvplan.cli import entry; entry()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    assert r.returncode in (0, 1), r.stderr
    data = json.loads(r.stdout)
    methods = data["decode"]["attention_methods"]
    assert methods and all("torch reference kernel, NOT the CUDA kernel" in m for m in methods.values())
    assert "timing the torch reference instead" in r.stderr
    assert data["boundary"]["confirmed"]
