"""`--kv-cache-dtype fp8` and `fp8_e4m3` for sparse MLA (DeepSeek-V3.2, GLM-5.2), which vLLM keeps apart
(engines/vllm_sparse.py). Expected values come from three places, none of them kvplan's formula:

- hand arithmetic from vLLM's source read by hand: on Hopper FLASHMLA_SPARSE lists `fp8` (flashmla_sparse.py:149-155),
  which it stores as the 656-byte fp8_ds_mla entry (mla_attention.py:358-375), and not `fp8_e4m3`, which goes on to
  FLASHINFER_MLA_SPARSE_SM90 (cuda.py:137-153, flashinfer_mla_sparse_sm90.py:148-153) and stays a plain 576-byte
  latent (512 + 64 fp8 values); on SM10x FLASHINFER_MLA_SPARSE takes both (flashinfer_mla_sparse.py:86-92);
- vLLM 0.32.0's own engine core started on the CPU (benchmarks/vllm_reference/sparse_fp8_spelling.py ->
  tests/data/vllm_sparse_fp8_spelling.json: blocks, log line, residents, the backend it chose);
- vLLM 0.32.0's own backend selection for every dtype, GPU and TP (tests/data/sparse_mla_backends.py ->
  tests/data/sparse_mla_backends_0.32.0.json: backend, cache dtype, page bytes, block alignment).

And release by release from each release's sources (vllm_sparse.py cites them): fp8* became fp8_ds_mla in
models/config.py up to 0.17; from 0.18 the backend decides, and Hopper had no backend for fp8_e4m3 before
FLASHINFER_MLA_SPARSE_SM90 (0.30): vLLM refuses to start there, a refused row like fp8_e5m2's.

V3.2: 61 layers, each a latent and a 132-byte indexer key (128 fp8 + one float32 scale); GLM-5.2 78 latents and 21
keys; block 64 tokens (the indexer's kernel block, indexer.py:283-285)."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan

from kvplan.api import estimate
from kvplan.engines import vllm_sparse as S
from kvplan.errors import FieldError
from kvplan.model.precision import PRECISIONS, resolve_kv_dtype
from kvplan.model.sources import resolve

V32, GLM = "deepseek-ai/DeepSeek-V3.2", "zai-org/GLM-5.2"
DATA = Path(__file__).parent / "data"
GiB = 2**30
BUDGET = 40 * GiB


def plan(model=V32, kv="fp8", gpu="H200", tp=8, engine=None, budget=BUDGET, length=131072, **flags):
    extra = {"engine": f"vllm=={engine}"} if engine else {}
    return estimate(model, kv_cache_dtype=kv, tensor_parallel_size=tp, gpu=gpu, kv_cache_memory_bytes=budget,
                    max_model_len=length, **extra, **flags)[0]


# -- hand arithmetic ---------------------------------------------------------------------------------------------------

def test_v32_tp8_blocks_by_hand_for_both_spellings_on_h200_and_on_b200():
    """40 GiB = 42,949,672,960 bytes a GPU. fp8 on H200: 61 x (656 + 132) = 48,068 bytes a token, 3,076,352 a
    64-token block, 13,961 blocks (893,504 tokens); fp8_e4m3 on H200 and fp8 on B200: 61 x (576 + 132) = 43,188,
    2,764,032 a block, 15,538 blocks (994,432 tokens), 11.3% more."""
    assert 61 * (656 + 132) == 48068 and 64 * 48068 == 3076352 and 42949672960 // 3076352 == 13961
    assert 61 * (576 + 132) == 43188 and 64 * 43188 == 2764032 and 42949672960 // 2764032 == 15538
    cases = [("H200", "fp8", 48068, 13961, "fp8_ds_mla"), ("H200", "fp8_e4m3", 43188, 15538, "fp8_e4m3"),
             ("B200", "fp8", 43188, 15538, "fp8_e4m3"), ("B200", "fp8_e4m3", 43188, 15538, "fp8_e4m3")]
    for gpu, kv, per_token, blocks, kept in cases:
        p = plan(kv=kv, gpu=gpu)
        assert (p.kv_bytes_per_token_per_gpu, p.engine.num_gpu_blocks, p.block_size) == (per_token, blocks, 64), kv
        assert p.engine.kv_cache_dtype == kept and p.kv_dtype == "fp8_e4m3"  # one precision name, two caches
        assert p.engine.gpu_kv_cache_tokens == blocks * 64


def test_v32_tp8_on_the_h200_budget_itself():
    """Without a forced budget both rows share the H200's budget; blocks = budget // (64 x bytes a token)."""
    fp8 = estimate(V32, kv_cache_dtype="fp8", tensor_parallel_size=8, gpu="H200", max_model_len=32768)[0]
    e4m3 = estimate(V32, kv_cache_dtype="fp8_e4m3", tensor_parallel_size=8, gpu="H200", max_model_len=32768)[0]
    budget = fp8.kv_budget_bytes_per_gpu
    assert e4m3.kv_budget_bytes_per_gpu == budget
    assert fp8.engine.num_gpu_blocks == budget // (64 * 48068)
    assert e4m3.engine.num_gpu_blocks == budget // (64 * 43188)
    assert e4m3.max_concurrency > fp8.max_concurrency


# -- vLLM's own engine core (SM90) ---------------------------------------------------------------------------------

def test_held_to_vllm_engine_core_on_hopper():
    frozen = json.loads((DATA / "vllm_sparse_fp8_spelling.json").read_text())
    assert frozen["header"]["vllm_version"] == "0.32.0" and len(frozen["cases"]) == 4
    backends = {}
    for case in frozen["cases"]:
        inputs, kv = case["inputs"], case["kv"]
        p = plan(model=inputs["model"], kv=inputs["kv_cache_dtype"], gpu="H200", tp=inputs["tp"],
                 budget=inputs["available_kv_cache_bytes"], length=inputs["max_model_len"])
        assert p.engine.num_gpu_blocks == kv["num_gpu_blocks"], inputs
        assert list(p.engine.log_lines[-1:]) == case["log_lines"], inputs
        assert p.max_concurrency == case["resident"]["requests"], inputs
        backends[inputs["model"], inputs["kv_cache_dtype"]] = case["settings"]["attention_backends"][-1]
    assert backends == {(V32, "fp8"): "FLASHMLA_SPARSE", (V32, "fp8_e4m3"): "FLASHINFER_MLA_SPARSE_SM90",
                        (GLM, "fp8"): "FLASHMLA_SPARSE", (GLM, "fp8_e4m3"): "FLASHINFER_MLA_SPARSE_SM90"}
    blocks = {(c["inputs"]["model"], c["inputs"]["kv_cache_dtype"]): c["kv"]["num_gpu_blocks"] for c in frozen["cases"]}
    assert blocks[V32, "fp8"] == 13961 and blocks[V32, "fp8_e4m3"] == 15538  # the hand figures above
    assert blocks[GLM, "fp8"] == BUDGET // (64 * (78 * 656 + 21 * 132)) == 12441
    assert blocks[GLM, "fp8_e4m3"] == BUDGET // (64 * (78 * 576 + 21 * 132)) == 14068


# -- vLLM's own backend selection (every dtype, both GPUs, TP 4 and 8) -------------------------------------------------

SELECTION = json.loads((DATA / "sparse_mla_backends_0.32.0.json").read_text())
SHAPE = {"kv_lora_rank": 512, "qk_rope_head_dim": 64}
LATENT_BYTES = {"auto": 1152, "bfloat16": 1152, "fp8": 576, "fp8_e4m3": 576, "fp8_ds_mla": 656, "nvfp4_ds_mla": 352}


@pytest.mark.parametrize("row", SELECTION["rows"], ids=lambda r: f"{r['model'][:8]}-{r['gpu']}-tp{r['tp']}-"
                                                              f"{r['kv_cache_dtype']}")
def test_backend_and_cache_as_vllm_selects_them(row):
    capability = tuple(row["capability"])
    if row["kv_cache_dtype"] == "auto":  # what models/config.py makes of auto on this GPU
        architecture = "GlmMoeDsaForCausalLM" if "GLM" in row["model"] else "DeepseekV32ForCausalLM"
        assert S.auto_on_gpu(architecture, capability) == ("" if row["after_config"] == "auto" else row["after_config"])
    dtype = row["after_config"]
    if dtype in ("auto", "bfloat16"):  # 16 bits: a bf16 latent on whichever backend
        assert row["latent_bytes_per_token"] == 2 * 576
        return
    got = S.sparse_cache(dtype, capability, "0.32.0", row["heads_per_rank"], SHAPE)
    assert got.backend == row["backend"]
    if row["backend"] is None:
        assert got.why in sum(row["reasons"].values(), [])
        return
    assert got.cache == row["cache_dtype"]
    assert LATENT_BYTES[got.cache] == row["latent_bytes_per_token"]
    # the backend's block-stride alignment pads no 64-token page, and the block stays 64
    assert row["page_bytes"] % row["block_stride_alignment"] == 0 and row["preferred_block_size"] == 64


def test_the_selection_file_covers_what_the_rows_say():
    rows = SELECTION["rows"]
    assert SELECTION["vllm"] == "0.32.0" and len(rows) == 2 * 2 * 2 * 7
    assert not any("SPARSE" in name for name in SELECTION["unavailable_on_cpu"])
    pick = {(r["model"], r["gpu"], r["tp"], r["kv_cache_dtype"]): (r["backend"], r.get("latent_bytes_per_token"))
            for r in rows}
    assert pick[V32, "H200", 8, "fp8"] == ("FLASHMLA_SPARSE", 656)
    assert pick[V32, "H200", 8, "fp8_e4m3"] == ("FLASHINFER_MLA_SPARSE_SM90", 576)
    assert pick[V32, "B200", 8, "fp8"] == pick[V32, "B200", 8, "fp8_e4m3"] == ("FLASHINFER_MLA_SPARSE", 576)
    assert pick[GLM, "B200", 8, "auto"] == ("FLASHINFER_MLA_SPARSE", 576)  # auto -> fp8_e4m3 on SM10x


def test_estimate_rows_match_the_selection_file():
    """The whole estimate, not just the rule: bytes a token at TP 8 from the selection's latent bytes."""
    for r in SELECTION["rows"]:
        if r["tp"] != 8 or r["backend"] is None or r["kv_cache_dtype"] == "fp8_e5m2":
            continue
        latents, keys = (61, 61) if r["model"] == V32 else (78, 21)
        p = plan(model=r["model"], kv=r["kv_cache_dtype"], gpu=r["gpu"])
        assert p.kv_bytes_per_token_per_gpu == latents * r["latent_bytes_per_token"] + keys * 132, r


# -- release by release (each release's sources) ---------------------------------------------------------------------

# (release, GPU, TP, --kv-cache-dtype, latent bytes kept or None for a refused row)
RELEASES = [
    # up to 0.17 models/config.py turns every fp8* into fp8_ds_mla before any backend: 656 on both GPUs
    ("0.11.1", "H200", 8, "fp8_e4m3", 656), ("0.15.1", "H200", 8, "fp8", 656), ("0.17.0", "H200", 8, "fp8_e4m3", 656),
    ("0.17.0", "B200", 8, "fp8", 656), ("0.17.0", "B200", 8, "fp8_e4m3", 656),
    # 0.18-0.29 Hopper: FLASHMLA_SPARSE (and FLASH_ATTN_MLA_SPARSE, 16-bit only, from 0.25) take fp8, not fp8_e4m3
    ("0.18.0", "H200", 8, "fp8", 656), ("0.18.0", "H200", 8, "fp8_e4m3", None), ("0.24.0", "H200", 8, "fp8_e4m3", None),
    ("0.25.1", "H200", 8, "fp8_e4m3", None), ("0.29.0", "H200", 8, "fp8_e4m3", None),
    # 0.30 on: FLASHINFER_MLA_SPARSE_SM90 after them
    ("0.30.0", "H200", 8, "fp8_e4m3", 576), ("0.31.0", "H200", 8, "fp8_e4m3", 576), ("0.30.0", "H200", 8, "fp8", 656),
    # SM10x 0.18: FlashInfer first only at <= 16 heads a rank (TP 8: 16; TP 4: 32), FLASHMLA_SPARSE takes fp8 only
    ("0.18.0", "B200", 8, "fp8", 576), ("0.18.0", "B200", 4, "fp8", 656), ("0.18.0", "B200", 4, "fp8_e4m3", 576),
    # 0.19 (fp8*) and 0.20 on (any quantized dtype): FlashInfer first whatever the heads
    ("0.19.0", "B200", 4, "fp8", 576), ("0.24.0", "B200", 4, "fp8", 576), ("0.32.0", "B200", 4, "fp8", 576),
]


@pytest.mark.parametrize("release,gpu,tp,kv,latent", RELEASES)
def test_release_by_release(release, gpu, tp, kv, latent):
    p = plan(kv=kv, gpu=gpu, tp=tp, engine=release, length=32768)
    if latent is None:  # no backend takes it: vLLM does not start (platforms/cuda.py "No valid attention backend")
        assert not p.engine.starts and not p.engine.num_gpu_blocks and p.max_concurrency == 0
        assert p.engine.refusal.reason.startswith(f"No valid attention backend found for cuda (compute capability 9.0) "
                                                  f"with kv_cache_dtype {kv}")
        return
    assert p.engine.starts and p.kv_bytes_per_token_per_gpu == 61 * (latent + 132), (release, gpu, kv)
    assert p.engine.num_gpu_blocks == BUDGET // (64 * 61 * (latent + 132))


def test_fp8_e4m3_without_a_backend_is_a_refused_row_like_fp8_e5m2():
    """0.29.0 on Hopper: FLASHMLA_SPARSE lists fp8 but neither fp8_e4m3 nor fp8_e5m2, and no other sparse backend
    takes a quantized cache there: both rows say vLLM's refusal, the command exits 0, and the fp8 row stays."""
    r = run_kvplan("estimate", V32, "--gpu", "h200", "-tp", "8", "--engine", "vllm==0.29.0", "--kv-cache-dtype",
                   "fp8,fp8_e4m3,fp8_e5m2", "-c", "32K")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    for kv in ("fp8_e4m3", "fp8_e5m2"):
        assert (f"refuses to start: No valid attention backend found for cuda (compute capability 9.0) with "
                f"kv_cache_dtype {kv}") in " ".join(r.stdout.split())
    assert r.stdout.count("keeps an fp8_ds_mla cache") == 1  # the fp8 row only: a refused row keeps no cache
    rows = [line.split() for line in r.stdout.splitlines() if line.strip().startswith("32,768")]
    assert [row[1] for row in rows] == ["fp8", "fp8_e4m3", "fp8_e5m2"] and [row[3] for row in rows][1:] == ["0", "0"]


def test_glm_auto_is_fp8_on_sm10x_from_0_32_only():
    """models/config.py:43-55 (0.32.0); 0.31.0's GlmMoeDsaForCausalLM sets DCP defaults only."""
    assert plan(model=GLM, kv="auto", gpu="B200").kv_dtype == "fp8_e4m3"
    assert plan(model=GLM, kv="auto", gpu="B200", engine="0.31.0").kv_dtype == "bf16"
    assert plan(model=GLM, kv="auto", gpu="H200").kv_dtype == "bf16"


# -- the spelling rides along --------------------------------------------------------------------------------------

def test_precision_keeps_the_spelling_and_names_it_alike():
    fp8, e4m3 = resolve_kv_dtype("fp8", "bf16"), resolve_kv_dtype("FP8_E4M3", "bf16")
    assert fp8.name == e4m3.name == "fp8_e4m3" and (fp8.spelling, e4m3.spelling) == ("fp8", "fp8_e4m3")
    assert PRECISIONS["fp8_e4m3"].vllm_dtype == "fp8"  # unspelled: kvplan's reading before it kept them apart
    assert resolve_kv_dtype("auto", "bf16").spelling == "" and resolve_kv_dtype("bf16", "bf16").vllm_dtype == "bfloat16"


def test_a_sweep_of_both_spellings_gives_two_rows_two_curves_and_says_which_is_which():
    r = run_kvplan("estimate", V32, "--gpu", "h200", "-tp", "8", "-c", "32K", "--kv-cache-dtype", "fp8,fp8_e4m3")
    assert r.returncode == 0, r.stderr
    assert "--kv-cache-dtype fp8, " in r.stdout and "--kv-cache-dtype fp8_e4m3, " in r.stdout
    assert "where the KV dtype asks fp8 (" in r.stdout
    rows = [line.split() for line in r.stdout.splitlines() if line.strip().startswith("32,768")]
    assert [row[1] for row in rows] == ["fp8", "fp8_e4m3"] and rows[0][3] != rows[1][3]
    data = json.loads(run_kvplan("estimate", V32, "--gpu", "h200", "-tp", "8", "-c", "32K", "--kv-cache-dtype",
                                 "fp8,fp8_e4m3", "--chart", "--format", "json").stdout)
    assert [c["kv_dtype"] for c in data["curves"]] == ["fp8_e4m3 (fp8)", "fp8_e4m3 (fp8_e4m3)"]
    assert [p["kv_dtype"] for p in data["plans"]] == ["fp8_e4m3", "fp8_e4m3"]  # the JSON's names stay
    assert [p["engine"]["kv_cache_dtype"] for p in data["plans"]] == ["fp8_ds_mla", "fp8_e4m3"]


def test_auto_fit_replans_with_the_spelling_asked():
    """--max-model-len auto re-plans a refused row at vLLM's estimate: fp8_e4m3 must stay fp8_e4m3 (576 bytes)."""
    r = run_kvplan("estimate", V32, "--gpu", "h200", "-tp", "8", "--kv-cache-dtype", "fp8_e4m3", "--max-model-len",
                   "auto", "--kv-cache-memory-bytes", str(GiB), "--format", "json")
    assert r.returncode == 0, r.stderr
    (p,) = json.loads(r.stdout)["plans"]
    assert p["kv_bytes_per_token_per_gpu"] == 61 * (576 + 132) and p["engine"]["kv_cache_dtype"] == "fp8_e4m3"


# -- verify resolves `auto` on the detected GPU as the estimate does ------------------------------------------------

def test_verify_resolves_auto_on_a_blackwell_gpu_as_the_estimate_does():
    """GLM-5.2 with auto on a B200: the estimate plans fp8_e4m3 (vLLM 0.32 on SM10x); verify's kernel check used the
    spec without the GPU (bf16) while its own plan, built through plan(), got fp8_e4m3. Now both resolve auto on the
    detected GPU, which verify's sparse MLA refuses in one line; on an H200 auto stays bf16."""
    torch = pytest.importorskip("torch")  # noqa: F841 (kvplan.gpu imports it)
    from kvplan.engines import get_engine
    from kvplan.gpu.verify_run import device_gpu
    from kvplan.verify.layout import kernel_kv_dtype, served_spec

    spec, engine = resolve(GLM), get_engine("vllm")
    b200, source = device_gpu({"name": "NVIDIA B200", "compute_capability": [10, 0]}, 180 * GiB)
    assert source == "catalog B200" and b200.compute_capability == (10, 0)
    served = served_spec(spec, engine, b200)
    assert served.auto_kv_dtype == "fp8_e4m3"
    assert plan(model=GLM, kv="auto", gpu="B200").kv_dtype == "fp8_e4m3"  # what the estimate plans there
    with pytest.raises(FieldError, match=r"auto \(which vLLM serves as fp8_e4m3 for zai-org/GLM-5.2 on this GPU\).*"
                                         r"use bfloat16"):
        kernel_kv_dtype("auto", served)
    assert kernel_kv_dtype("bfloat16", served).name == "bf16"
    h200, _ = device_gpu({"name": "NVIDIA H200", "compute_capability": [9, 0]}, 140 * GiB)
    assert kernel_kv_dtype("auto", served_spec(spec, engine, h200)).name == "bf16"
    # a GPU outside the catalog: its own capability (torch's, on CUDA) decides
    unknown, source = device_gpu({"name": "NVIDIA Future GPU", "compute_capability": [10, 0],
                                  "bandwidth_nvml_bytes_per_s": 8e12}, 180 * GiB)
    assert source.startswith("NVML") and served_spec(spec, engine, unknown).auto_kv_dtype == "fp8_e4m3"
    assert served_spec(spec, get_engine("none"), b200) is spec  # no engine rule: the model dtype
