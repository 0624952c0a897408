"""verify's weight stream shape by shape (kvplan/verify/weight_stream.py, its table and csv rows), on verify results
recorded on an NVIDIA H100 80GB HBM3 (session 63, `bash benchmarks/sessions/s63_device.sh list`): figures checked by
hand from the recorded per-shape bandwidths, and the shapes' bytes against the stream's byte count the GPU run summed
itself."""

import csv
import io
import json
from pathlib import Path

import pytest

from kvplan.commands.verify import VerifyResult
from kvplan.render import emit
from kvplan.verify import weight_stream

RUNS = Path(__file__).resolve().parent.parent / "benchmarks" / "device_runs" / "s63_h100_2026-12-06_call2"


def _result(name: str) -> dict:
    return json.loads((RUNS / f"v_{name}.json").read_text())


def test_mixtral_shapes_by_hand():
    """Mixtral-8x7B at tp 2: qkv 3072x4096 bf16 is 25,165,824 bytes; at the recorded 2.656 TB/s a launch takes
    9.47 us, at the measured read 3.093 TB/s it would take 8.14 us: 86% of read, 1.34 us over. The router, 8x4096
    (65,536 bytes) at 0.0187 TB/s: 3.50 us a launch, 0.6% of read."""
    shapes = {tuple(s["shape"]): s for s in weight_stream.by_shape(_result("mixtral_tp2"))}
    qkv, router = shapes[(3072, 4096)], shapes[(8, 4096)]
    assert qkv["bytes"] == 25_165_824 and qkv["layers"] == 32
    assert qkv["batches"][1]["fraction"] == pytest.approx(0.8587, abs=5e-4)
    assert qkv["batches"][1]["extra_us"] == pytest.approx(1.339, abs=5e-3)
    assert router["bytes"] == 65_536
    assert router["batches"][1]["fraction"] == pytest.approx(0.00605, abs=5e-5)
    assert router["batches"][1]["extra_us"] == pytest.approx(3.48, abs=0.01)


def test_shape_bytes_sum_to_the_stream_the_gpu_summed():
    """32 layers x (qkv 25,165,824 + o 16,777,216 + router 65,536) + the LM head 131,072,000 = 1,475,346,432 bytes,
    the byte count the GPU run recorded for its shape-by-shape stream."""
    r = _result("mixtral_tp2")
    total = sum(s["layers"] * s["bytes"] for s in weight_stream.by_shape(r))
    assert total == 1_475_346_432 == r["gemm"]["stream"]["1"]["bytes"]


def test_share_of_time_by_hand():
    """Two shapes of equal bytes and layers, one at 50% of read and one at 100%: the slow one takes 2 of 3 parts."""
    def shape(fraction):
        return {"shape": [1, 1], "kind": "16-bit", "layers": 4, "bytes": 1000,
                "batches": {1: {"fraction": fraction, "extra_us": 0.0}}}

    assert weight_stream.share_of_time([shape(0.5), shape(1.0)], 1) == pytest.approx(2 / 3)
    assert weight_stream.under_bar([shape(0.5), shape(1.0)])[0]["batches"][1]["fraction"] == 0.5


def test_table_names_the_shapes_under_the_bar_and_none_when_all_pass():
    mixtral = " ".join(emit(VerifyResult(_result("mixtral_tp2")), "table").split())
    assert "under 90% of read: 4 of 4 shapes (100% of the stream's time at batch 1)" in mixtral
    assert "Weight stream by shape" in mixtral and "3072x4096 32 25.2 86% 86% 86% 86% 1.3-1.4" in mixtral
    llama = " ".join(emit(VerifyResult(_result("llama8b")), "table").split())
    assert "every shape at or above 90% of read" in llama and "Weight stream by shape" not in llama


def test_csv_rows_carry_the_stream_against_the_read_bandwidth():
    """The batch-1 row's measured / predicted is the run's own fraction_of_read (71% for Mixtral at tp 2 on the
    H100, as its log printed), and each shape has a row per batch."""
    rows = [row for row in csv.DictReader(io.StringIO(emit(VerifyResult(_result("mixtral_tp2")), "csv")))
            if row["section"] == "weight stream"]
    first = next(row for row in rows if row["item"] == "batch 1")
    assert float(first["measured"]) / float(first["predicted"]) == pytest.approx(0.7065, abs=5e-4)
    assert {row["item"] for row in rows if row["item"].startswith("8x4096 x 32")} == {
        f"8x4096 x 32 batch {b}" for b in (1, 2, 4, 8)}
    assert len(rows) == 8 + 4 * 4  # the stream and decode order per batch, then 4 shapes x 4 batches


def test_forms_refused_a_shape_under_the_bar_are_named_under_the_table():
    """gpt-oss-20b's qkv (5120 x 2880) read 75% of read at batch 1 in session 63: its k of 2,880 was not a multiple of
    256, which the row-owned GEMV forms needed then (session 64 reads the box past k as zeros), so it ran the rotated
    in-order form. A result carrying
    forms_refused (gpu/gemm.py, from session 63 on) names that under the table; one recorded before names only the
    skinny kernel's and the in-order GEMV's refusals (none here)."""
    r = _result("gptoss")
    assert "refused (" not in " ".join(emit(VerifyResult(r), "table").split())
    reason = "k must be a multiple of 256 for own=True, got 2880"
    r["gemm"]["forms_refused"] = {"kvplan streaming GEMV, rows owned": {"5120x2880": reason, "32x2880": reason}}
    text = " ".join(emit(VerifyResult(r), "table").split())
    assert f"32x2880, 5120x2880: kvplan streaming GEMV, rows owned refused ({reason})" in text
    qkv = next(s for s in weight_stream.by_shape(r) if s["shape"] == [5120, 2880])
    assert qkv["batches"][1]["fraction"] == pytest.approx(2.3175 / 3.0932, abs=1e-3)
