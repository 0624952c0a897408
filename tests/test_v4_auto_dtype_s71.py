"""Two start-up facts read from vLLM's source by hand (paths under vllm/ of the release named).

DeepSeek-V4 (DeepseekV4ForCausalLM) with --kv-cache-dtype auto, vLLM's default:
- 0.20-0.29 build the attention layer with cache_config.cache_dtype as it came from the command line. Nothing
  rewrites `auto` first: engine/arg_utils.py builds the CacheConfig from resolve_kv_cache_dtype_string (0.20.0
  :1643-1645, 0.29.0 :2070), which reads a ModelOpt checkpoint's kv_cache_quant_algo only (utils/torch_utils.py
  0.20.0 :288-289, 0.29.0 :451-452; the bundled V4 configs say quant_method fp8 and name no KV cache); the
  DeepseekV4ForCausalLM config handler renames that method to deepseek_v4_fp8 and nothing else
  (model_executor/models/config.py 0.20.0 :110-132, 0.27.0 :317-339); DeepseekV32ForCausalLM's handler, the one that
  rewrites a cache dtype (bfloat16 -> auto), is keyed by V3.2's name only (0.20.0 :663-664, 0.29.0 :1004-1005);
  platforms/cuda.py and config/vllm.py assign no cache_dtype in any of them. The layer then asserts an fp8 dtype:
  0.20.0 model_executor/layers/deepseek_v4_attention.py:597-600 "DeepseekV4 only supports fp8 kv-cache format for
  now, got {dtype}" (0.20.1/0.20.2 :671-674, 0.21.0 :697-700, 0.22.x models/deepseek_v4/attention.py:671-674);
  0.23.0 models/deepseek_v4/attention.py:80-83 "DeepseekV4 FlashMLA fp8 layout only supports fp8 kv-cache, got
  {dtype}"; 0.24.0 :79-82 ... 0.29.0 :105-108 "DeepseekV4 fp8_ds_mla layout only supports fp8 kv-cache, got
  {dtype}", for every class vLLM picks without --attention-backend (use_fp8_ds_mla_layout True: FlashMLA's, the
  SM120 FlashInfer class, ROCm's which inherits it). So `auto` stops start-up as the model is built. fp8 is a
  --kv-cache-dtype value in all of them (config/cache.py CacheDType 0.20.0 :18-34, 0.29.0 :39-57) and is turned
  into fp8_ds_mla there.
- 0.30.0 turns `auto` into fp8 first (models/deepseek_v4/attention.py:109-110; 0.34.0 :110-111), then fp8_ds_mla.

DeepSeek-V3.2 / GLM-5.x on SM12x in 0.24-0.25 (their pinned FlashInfer lacks kv_scale_format): the failure comes in
start-up's kernel warm-up, --enforce-eager or not. gpu_worker.py compile_or_warm_up_model runs kernel_warmup (0.24.0
:654, 0.25.1 :758) before the graph capture it skips under --enforce-eager (:657-658, :761-762);
flashinfer_sparse_mla_decode_autotune_warmup (kernel_warmup.py 0.24.0 :55, 0.25.1 :72) runs a 16-token mixed
prefill + decode _dummy_run with force_attention=True for FLASHINFER_MLA_SPARSE_SM120 on a 12.x GPU when
kernel_config.enable_flashinfer_autotune is True (flashinfer_sparse_mla_warmup.py :92-97, :115-121, :145, :157),
and forward_mqa sends every token through the FlashInfer call (flashinfer_mla_sparse_sm120.py :103-156). Autotune
is True at -O1, -O2 (the default) and -O3, False at -O0 only (config/vllm.py 0.24.0 :214, :235, :256, :277, :364);
--enforce-eager sets the compile and cudagraph modes to NONE and leaves the level (0.24.0 :1061-1067, 0.25.1
:1095-1101).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import deployments_file, estimate_plan, run_kvplan

FLASH, PRO, V32 = "deepseek-ai/DeepSeek-V4-Flash", "deepseek-ai/DeepSeek-V4-Pro", "deepseek-ai/DeepSeek-V3.2"
# vLLM's words for `auto` by release (the module docstring's lines), each a kvplan reason ending in a full stop
WORDS_0_20 = "DeepseekV4 only supports fp8 kv-cache format for now, got {}."
WORDS_0_23 = "DeepseekV4 FlashMLA fp8 layout only supports fp8 kv-cache, got {}."
WORDS_0_24 = "DeepseekV4 fp8_ds_mla layout only supports fp8 kv-cache, got {}."
REFUSED = {"0.20.0": WORDS_0_20, "0.20.2": WORDS_0_20, "0.21.0": WORDS_0_20, "0.22.0": WORDS_0_20,
           "0.22.1": WORDS_0_20, "0.23.0": WORDS_0_23, "0.24.0": WORDS_0_24, "0.25.0": WORDS_0_24,
           "0.25.1": WORDS_0_24, "0.26.0": WORDS_0_24, "0.27.0": WORDS_0_24, "0.28.0": WORDS_0_24,
           "0.29.0": WORDS_0_24}
STORED = ["0.30.0", "0.31.0", "0.32.0", "0.33.0", "0.34.0"]
REMEDY = "it starts with --kv-cache-dtype fp8; or --engine vllm==0.30.0 or newer, where auto is fp8_ds_mla"


def v4(release: str, *flags: str, gpu: str = "H200", model: str = FLASH) -> dict:
    return estimate_plan(model, "--gpu", gpu, "-tp", "8", "--engine", f"vllm=={release}", "--max-model-len", "65536",
                         *flags)


def refusal(plan: dict) -> dict:
    return plan["engine"]["refusal"] or {}


@pytest.mark.parametrize("release,words", sorted(REFUSED.items()))
def test_auto_is_refused_before_0_30(release, words):
    plan = v4(release)
    why = refusal(plan)
    assert not plan["engine"]["starts"] and why["configuration"] and why["field"] == "kv_dtype"
    assert why["reason"] == words.format("auto")
    assert why["remedy"] == REMEDY


@pytest.mark.parametrize("release", ["0.20.0", "0.24.0", "0.29.0"])
def test_fp8_starts_there_as_fp8_ds_mla(release):
    plan = v4(release, "--kv-cache-dtype", "fp8")
    assert plan["engine"]["starts"] and plan["engine"]["kv_cache_dtype"] == "fp8_ds_mla"


@pytest.mark.parametrize("release", STORED)
def test_auto_is_fp8_ds_mla_from_0_30(release):
    auto, fp8 = v4(release), v4(release, "--kv-cache-dtype", "fp8")
    assert auto["engine"]["starts"] and auto["engine"]["kv_cache_dtype"] == "fp8_ds_mla"
    assert auto["kv_bytes_per_token_per_gpu"] == fp8["kv_bytes_per_token_per_gpu"]
    assert auto["engine"]["gpu_kv_cache_tokens"] == fp8["engine"]["gpu_kv_cache_tokens"]


def test_pro_alike():
    assert refusal(v4("0.27.0", model=PRO))["reason"] == WORDS_0_24.format("auto")
    assert not refusal(v4("0.30.0", model=PRO)).get("configuration")


def test_bfloat16_gets_each_release_s_words_and_fp8_as_remedy():
    old, new = refusal(v4("0.24.0", "--kv-cache-dtype", "bfloat16")), refusal(v4("0.32.0", "--kv-cache-dtype",
                                                                                  "bfloat16"))
    assert old["reason"] == WORDS_0_24.format("bfloat16") and old["remedy"] == "it starts with --kv-cache-dtype fp8"
    assert new["reason"] == ("DeepseekV4 fp8_ds_mla layout only supports fp8 kv-cache, got bfloat16. Please set "
                             "`--kv-cache-dtype fp8` or select a backend that supports bfloat16 KV cache.")
    assert new["remedy"] == "it starts with --kv-cache-dtype auto, fp8"  # 0.32.0 :108-109 reads auto as fp8
    assert refusal(v4("0.21.0", "--kv-cache-dtype", "float16"))["reason"] == WORDS_0_20.format("float16")


def test_rocm_builds_the_same_layout():
    """DeepseekV4ROCMAiterMLAAttention (0.24.0 models/deepseek_v4/amd/rocm.py:581) keeps the base class's
    use_fp8_ds_mla_layout = True (attention.py 0.24.0 :115)."""
    why = refusal(v4("0.27.0", gpu="MI300X"))
    assert why["reason"] == WORDS_0_24.format("auto") and why["remedy"] == REMEDY


def test_the_release_remedy_is_not_offered_where_v4_does_not_run():
    """On an A100 fp8 clears the dtype check and the GPU then stops it (vllm_v4_gpu.V4_MAJORS); 0.30 would too."""
    why = refusal(v4("0.24.0", gpu="A100-80GB"))
    assert why["reason"] == WORDS_0_24.format("auto")
    assert why["remedy"].startswith("--kv-cache-dtype fp8 clears this, but then: FlashMLA's sparse kernels do not run "
                                    "on compute capability 8.0")
    assert "0.30.0" not in why["remedy"]


def test_on_sm12x_the_dtype_is_refused_before_the_warm_up():
    """0.24's SM120 class resolves the dtype in its constructor (attention.py 0.24.0 :286-287), long before the
    kernel warm-up's FlashInfer call: `auto` is what stops it, and fp8 alone then meets the pin (0.26.0 the first
    that starts there)."""
    why = refusal(v4("0.24.0", gpu="RTX-PRO-6000-Server"))
    assert why["field"] == "kv_dtype" and why["reason"] == WORDS_0_24.format("auto")
    assert why["remedy"].startswith("it starts with --kv-cache-dtype fp8 and --engine vllm==0.26.0")
    assert why["remedy"].endswith("; or --engine vllm==0.30.0 or newer, where auto is fp8_ds_mla")


def test_the_rule_by_release():
    from kvplan.engines.vllm_kv_dtype import auto_kv_dtype, release_view, unviewed
    from kvplan.model.sources import resolve

    spec = resolve(FLASH)
    assert spec.auto_kv_dtype == "fp8_ds_mla"  # the parser's, the pinned release's reading
    assert [auto_kv_dtype(spec, r) for r in ("0.20.0", "0.29.0", "0.30.0", "0.34.0")] == ["", "", "fp8_ds_mla",
                                                                                           "fp8_ds_mla"]
    old = release_view(spec, "0.29.0")
    assert old.auto_kv_dtype == "" and unviewed(old).auto_kv_dtype == "fp8_ds_mla"
    assert release_view(unviewed(old), "0.30.0").auto_kv_dtype == "fp8_ds_mla"


def test_a_deployments_file_names_the_fields_its_way(tmp_path):
    body = "".join(f"""  - name: v{release}
    model: {FLASH}
    tp: 8
    gpu: H200
    context: 65536
    engine: vllm=={release}
""" for release in ("0.29.0", "0.30.0", "0.24.0"))
    r = run_kvplan("check", "--file", deployments_file(tmp_path, body), "--format", "json")
    assert r.returncode == 1, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)["results"]}
    errors = {name: [f["message"] for f in row["findings"] if f["level"] == "error"] for name, row in rows.items()}
    assert errors["v0.30.0"] == []
    for name in ("v0.29.0", "v0.24.0"):
        (message,) = errors[name]
        assert "got auto; it starts with kv_dtype fp8; or engine vllm==0.30.0 or newer" in message


@pytest.mark.parametrize("release", ["0.24.0", "0.25.1"])
@pytest.mark.parametrize("eager", [(), ("--enforce-eager",)])
def test_sparse_mla_on_sm12x_fails_at_the_kernel_warm_up_eager_or_not(release, eager):
    plan = estimate_plan(V32, "--gpu", "RTX-PRO-6000-Server", "-tp", "8", "--engine", f"vllm=={release}",
                         "--max-model-len", "8192", *eager)
    why = refusal(plan)
    assert not plan["engine"]["starts"] and why["field"] == "engine"
    assert "as start-up's kernel warm-up, after sizing the KV cache, runs a mixed prefill + decode" in why["reason"]
    assert "so --enforce-eager does not skip it" in why["reason"]
    assert "captures the decode CUDA graphs (with --enforce-eager, at the first request)" not in why["reason"]
