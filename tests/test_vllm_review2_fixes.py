"""Review fixes to the vLLM 0.33 / 0.34 work. Every figure is hand arithmetic from vLLM's source read by hand (paths
under vllm/ of the release named) or from what vLLM's own code prints:

1. mlp_layer_types ("dense" / "sparse" per layer) builds the feed-forward blocks of the families whose model reads it
   (0.34.0 laguna.py:517-535, cohere2_moe.py:447-457, models/muse_spark/nvidia/model.py:1464-1499,
   models/beam/nvidia/model.py:101-115; 0.32.0 laguna.py:520-535, cohere2_moe.py:351-362): it changes the weights,
   not the cache. It was refused for any config with a "dense" entry; Laguna and Cohere2 MoE are in 0.32.0's registry
   (registry.py:148, :86), so those configs planned before. A dense layer is an MLP of intermediate_size (Cohere2 MoE:
   prefix_dense_intermediate_size, cohere2_moe.py 0.34.0:450-452; Muse Spark: intermediate_size, its
   intermediate_size_mlp being the drafter's, muse_spark/nvidia/model.py:1492-1498). GLM-5.x reads
   first_k_dense_replace (models/deepseek_v32 through deepseek_v2.py), the list transformers writes beside it.
2. Step 3.5 (Step3p5ForCausalLM) reads attention_other_setting for its sliding layers' query heads (0.34.0
   step3p5.py:71-84; 0.32.0 :412-425 also their KV groups and head size) and its KV heads from num_attention_groups
   (0.34.0 :443, 0.32.0 :434-436): refused for what it is, not as Step5's indexer and summary cache.
3. Below compute capability 8.0 CUDA supports float16 and float32 only (platforms/cuda.py 0.33.0:256-266), so
   dtype=auto serves a bfloat16 checkpoint in float16 (config/model.py 0.33.0:2423-2464 _resolve_auto_dtype: the
   first supported dtype; float32 for gemma2 / gemma3 / gemma3_text / glm4, :2398-2410), and 0.33's
   _reject_mismatched_float_kv_cache (config/vllm.py 0.33.0:1492-1508) compares against that.
4. Qwen3.5's GDN recurrent state in the config's mamba_ssm_dtype (model_executor/models/config.py
   Qwen3_5ForConditionalGenerationConfig, 0.17.0:625-651 ... 0.34.0:1293-1319): 0.34.0's own
   MambaSpec(block_size=64, shapes=MambaStateShapeCalculator.gated_delta_net_state_shape(1, 16, 32, 128, 128, 4),
   dtypes=(torch.bfloat16, torch.float32)).page_size_bytes printed 2146304 on the CPU import (1097728 with two
   bfloat16s). Qwen3-Next has no such hook (Qwen3NextForCausalLM is not in MODELS_CONFIG_MAP, 0.34.0:1603-1606).
5. DeepSeek-V4 on compute capability 8.x: models/deepseek_v4/nvidia/model.py _select_dsv4_attn_cls (0.34.0
   :539-569) builds the FlashMLA path on every CUDA GPU but 12.x, with no capability check; FlashMLA's sparse kernels
   run on majors 9 and 10 only (sparse_mla.py:95-96), FlashInfer's on 10 and 12 (flashinfer_sparse.py:139-141).
6. The text estimate says a refusal of the GPU once, and no cache claim for a GPU no backend runs on.
"""

import json

import pytest
from conftest import run_kvplan

from kvplan.api import estimate
from kvplan.engines.vllm_config_read import architecture_refusal
from kvplan.engines.vllm_model_dtype import float_kv_refusal, on_gpu, served_dtype
from kvplan.engines.vllm_v4_gpu import v4_gpu_refusal_line
from kvplan.model.precision import resolve_kv_dtype
from kvplan.model.sources import resolve

BASE = dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=8, num_attention_heads=16,
            num_key_value_heads=4, head_dim=128, vocab_size=32000, max_position_embeddings=32768,
            torch_dtype="bfloat16", rms_norm_eps=1e-6)
ONE_DENSE = ["dense"] + ["sparse"] * 7
LAGUNA = dict(BASE, architectures=["LagunaForCausalLM"], model_type="laguna", moe_intermediate_size=512,
              shared_expert_intermediate_size=512, num_experts=16, num_experts_per_tok=2)
COHERE2 = dict(BASE, architectures=["Cohere2MoeForCausalLM"], model_type="cohere2_moe", num_experts=16,
               num_experts_per_tok=2, num_shared_experts=1, prefix_dense_intermediate_size=4096)
MUSE = dict(BASE, architectures=["MuseSparkForConditionalGeneration"], model_type="muse_spark_text",
            moe_intermediate_size=512, num_local_experts=16, num_experts_per_tok=2, intermediate_size_mlp=1024)
GATED_MLP = 3  # gate, up and down projections


def _spec(write_config, config, name="config.json"):
    return resolve(str(write_config(config, name)))


def _plan(model, *args):
    run = run_kvplan("estimate", model, "--format", "json", *args)
    assert run.returncode == 0, run.stderr
    (plan,) = json.loads(run.stdout)["plans"]
    return plan


# 1. mlp_layer_types -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config,release", [(LAGUNA, "0.32.0"), (LAGUNA, "0.34.0"), (COHERE2, "0.32.0"),
                                            (COHERE2, "0.33.0"), (MUSE, "0.33.0"), (MUSE, "0.34.0")])
def test_one_dense_layer_of_eight_plans_again(write_config, config, release):
    path = write_config(dict(config, mlp_layer_types=ONE_DENSE))
    plan = _plan(path, "--gpu", "h100", "-c", "32K", "--engine", f"vllm=={release}")
    assert plan["fits"] and plan["max_concurrency"] > 0 and plan["engine"]["refusal"] is None
    # the cache is the config's 8 GQA layers whatever the feed-forward blocks: 8 x 4 x 128 x 2 x 2 bytes
    assert plan["kv_bytes_per_token"] == 16384


def test_laguna_counts_its_dense_layer(write_config):
    """laguna.py:517-535: layer 0 an MLP of intermediate_size, 3 x 2,048 x 6,144 = 37,748,736; layers 1-7 MoE,
    7 x 16 experts x 3 x 2,048 x 512 = 352,321,536 (8 x 50,331,648 = 402,653,184 when every layer is MoE)."""
    spec = _spec(write_config, dict(LAGUNA, mlp_layer_types=ONE_DENSE))
    assert spec.moe_layers == 7
    assert spec.param_count("dense") == GATED_MLP * 2048 * 6144 == 37748736
    assert spec.param_count("experts") == 7 * 16 * GATED_MLP * 2048 * 512 == 352321536
    sparse = _spec(write_config, dict(LAGUNA, mlp_layer_types=["sparse"] * 8), "sparse.json")
    assert (sparse.param_count("dense"), sparse.param_count("experts")) == (0, 402653184)


def test_laguna_without_the_list_reads_its_config_class_default(write_config):
    """transformers 5.22 configuration_laguna.py:132-133 fills ["dense"] + ["sparse"] * (n - 1); vLLM's laguna.py:62-66
    wants the list, which that class supplies."""
    spec = _spec(write_config, LAGUNA)
    assert spec.moe_layers == 7 and spec.param_count("dense") == 37748736


def test_cohere2_moe_widths(write_config):
    """cohere2_moe.py 0.34.0: the dense layer prefix_dense_intermediate_size wide (:450-452), 3 x 2,048 x 4,096 =
    25,165,824; routed experts of intermediate_size (:355), 7 x 16 x 3 x 2,048 x 6,144 = 4,227,858,432; one shared
    expert of intermediate_size x num_shared_experts (:334) in each MoE layer, 7 x 3 x 2,048 x 6,144 = 264,241,152."""
    spec = _spec(write_config, dict(COHERE2, mlp_layer_types=ONE_DENSE))
    assert spec.param_count("dense") == GATED_MLP * 2048 * 4096 == 25165824
    assert spec.param_count("experts") == 7 * 16 * GATED_MLP * 2048 * 6144 == 4227858432
    assert spec.param_count("shared_experts") == 7 * GATED_MLP * 2048 * 6144 == 264241152


def test_muse_spark_dense_layer_is_intermediate_size_wide(write_config):
    """models/muse_spark/nvidia/model.py:1492-1498: intermediate_size (6,144) outside the drafter, not
    intermediate_size_mlp (1,024): 3 x 2,048 x 6,144 = 37,748,736."""
    spec = _spec(write_config, dict(MUSE, mlp_layer_types=ONE_DENSE))
    assert spec.moe_layers == 7 and spec.param_count("dense") == 37748736


def test_axk1_reads_the_first_num_hidden_layers_entries(write_config):
    """AXK1.py:98-100 (0.34.0): mlp_layer_types[: num_hidden_layers]; a ninth (MTP) entry is ignored."""
    config = dict(BASE, architectures=["AXK1ForCausalLM"], model_type="axk1", moe_intermediate_size=512,
                  n_routed_experts=16, num_experts_per_tok=2, mlp_layer_types=ONE_DENSE + ["sparse"])
    assert _spec(write_config, config).moe_layers == 7


def test_glm5_keeps_first_k_dense_replace_beside_the_list(write_config):
    """zai-org/GLM-5.2's config.json carries mlp_layer_types (3 dense, 75 sparse; the bundled copy drops it):
    GLM-5.x is built from first_k_dense_replace (3), so the list changes nothing, and it is not refused."""
    raw = []
    bundled = resolve("zai-org/GLM-5.2", raw_out=raw)
    config = dict(raw[0], mlp_layer_types=["dense"] * 3 + ["sparse"] * 75)
    spec = _spec(write_config, config)
    assert spec.moe_layers == bundled.moe_layers == 75
    assert spec.params == bundled.params


# 2. Step 3.5 --------------------------------------------------------------------------------------------------

STEP3P5 = dict(BASE, architectures=["Step3p5ForCausalLM"], model_type="step3p5", num_attention_groups=4,
               layer_types=["full_attention", "sliding_attention"] * 4, sliding_window=512,
               attention_other_setting={"attention_type": "sliding_attention", "num_attention_heads": 24,
                                        "num_attention_groups": 4, "head_dim": 128},
               moe_layers_enum="1,2,3,4,5,6,7", moe_num_experts=8, moe_top_k=2, moe_intermediate_size=512)


@pytest.mark.parametrize("release", ["0.32.0", "0.34.0"])
def test_step3p5_is_refused_for_its_own_layout(write_config, release):
    path = write_config(STEP3P5)
    r = run_kvplan("estimate", path, "--gpu", "h100", "--engine", f"vllm=={release}")
    assert r.returncode == 2
    assert "architecture Step3p5ForCausalLM has KV heads named 'num_attention_groups'" in r.stderr
    assert "summary cache" not in r.stderr and "step5" not in r.stderr


def test_step5_keeps_its_reason_and_a_derivative_gets_step3p5s(write_config):
    step5 = write_config(dict(STEP3P5, architectures=["Step5ForCausalLM"]), "step5.json")
    r = run_kvplan("estimate", step5, "--gpu", "h100", "--engine", "vllm==0.34.0")
    assert r.returncode == 2 and "sparse attention with an indexer and a summary cache" in r.stderr
    other = write_config(dict(STEP3P5, architectures=["MyStepForCausalLM"], model_type="my_step"), "other.json")
    r = run_kvplan("estimate", other, "--gpu", "h100", "--engine", "vllm==0.34.0")
    assert r.returncode == 2 and "config field 'attention_other_setting' marks KV heads named" in r.stderr


# 3. the dtype a T4 serves ---------------------------------------------------------------------------------------

T4, H100 = (7, 5), (9, 0)
LLAMA_1B, GEMMA2 = "meta-llama/Llama-3.2-1B-Instruct", "google/gemma-2-9b"


def _float_refusal(model, asked, capability, release="0.33.0"):
    spec = on_gpu(resolve(model), capability, release)
    return float_kv_refusal(spec, resolve_kv_dtype(asked, spec.dtype, spec.auto_kv_dtype), release, capability)


def test_a_t4_serves_bfloat16_checkpoints_in_float16():
    assert served_dtype(resolve(LLAMA_1B), T4, "0.33.0") == "fp16"
    assert served_dtype(resolve(LLAMA_1B), H100, "0.33.0") == "bf16"
    assert served_dtype(resolve(GEMMA2), T4, "0.33.0") == "fp32"  # gemma2: no float16
    assert on_gpu(resolve(LLAMA_1B), T4, "0.33.0").dtype == "fp16"
    served = on_gpu(resolve(GEMMA2), T4, "0.33.0")  # float32: the weights re-priced at 4 bytes an element
    assert served.dtype == "fp32" and served.weights.bytes > 1.9 * resolve(GEMMA2).weights.bytes


def test_float16_starts_and_bfloat16_is_refused_on_a_t4():
    assert _float_refusal(LLAMA_1B, "float16", T4) is None
    refusal = _float_refusal(LLAMA_1B, "bfloat16", T4)
    assert refusal.reason == ('kv_cache_dtype="bfloat16" is incompatible with dtype="float16". Please set '
                              '`--kv-cache-dtype` to `auto` or `float16`.')
    assert _float_refusal(LLAMA_1B, "bfloat16", H100) is None  # the H100 keeps the checkpoint's bfloat16
    assert _float_refusal(GEMMA2, "float16", T4).reason.endswith('dtype="float32". Please set `--kv-cache-dtype` to '
                                                                 '`auto`.')
    assert _float_refusal(LLAMA_1B, "bfloat16", T4, "0.32.0") is None  # no such check before 0.33


@pytest.mark.parametrize("asked", ["auto", "float16"])
def test_a_t4_estimate_names_float16(asked):
    plan = _plan(LLAMA_1B, "--gpu", "t4", "-c", "4K", "--engine", "vllm==0.33.0", "--kv-cache-dtype", asked)
    assert plan["engine"]["refusal"] is None and plan["fits"]
    assert (plan["kv_dtype"], plan["engine"]["kv_cache_dtype"]) == ("fp16", "fp16")


# 4. Qwen3.5's float32 GDN state ---------------------------------------------------------------------------------

QWEN35_9B, QWEN3_NEXT = "Qwen/Qwen3.5-9B", "Qwen/Qwen3-Next-80B-A3B-Thinking"
# 3 x (2 x 16 x 128 + 32 x 128) conv elements in bf16 + 32 x 128 x 128 recurrent ones in float32 (or bf16)
QWEN35_STATE = 3 * (2 * 16 * 128 + 32 * 128) * 2 + 32 * 128 * 128 * 4
NEXT_STATE = (3 * (2 * 16 * 128 + 32 * 128) + 32 * 128 * 128) * 2


def test_qwen35_state_page_is_vllms_own():
    from kvplan.engines.vllm_mamba_state import mamba_state_bytes
    from kvplan.engines.vllm_specs import mamba_page

    assert QWEN35_STATE == 2146304 and NEXT_STATE == 1097728
    qwen35_spec, next_spec = resolve(QWEN35_9B), resolve(QWEN3_NEXT)
    (qwen35,), (next_,) = set(qwen35_spec.linear_layers), set(next_spec.linear_layers)
    assert mamba_state_bytes(qwen35_spec) == (2, 4)  # the config's float32, by Qwen3.5's config handler
    assert mamba_page(qwen35, 1, *mamba_state_bytes(qwen35_spec)) == QWEN35_STATE
    assert mamba_state_bytes(next_spec) == (2, 2)  # Qwen3-Next: 'auto', the model dtype
    assert mamba_page(next_, 1, *mamba_state_bytes(next_spec)) == NEXT_STATE


def test_qwen35_9b_state_and_block_by_release():
    """24 GDN layers x 2,146,304 = 51,511,296 state bytes a request; 2,146,304 / 4,096 B a token = 524 tokens: 528
    (16 x 33) in 0.32, 576 (64 x 9) from 0.33 on an H100; the reviewer's figures (H100 0.32 528, 0.33 576, 0.34 576;
    A100 0.33 528, 0.34 576)."""
    for gpu, release, block in (("H100", "0.32.0", 528), ("H100", "0.33.0", 576), ("H100", "0.34.0", 576),
                                ("A100-80GB", "0.33.0", 528), ("A100-80GB", "0.34.0", 576)):
        plan = _plan(QWEN35_9B, "--gpu", gpu, "-c", "32K", "--engine", f"vllm=={release}")
        assert plan["engine"]["block_size"] == block, (gpu, release)
        assert plan["state_bytes_per_sequence_per_gpu"] == 24 * QWEN35_STATE == 51511296


def test_qwen35_before_its_first_release_is_refused():
    """registry.py: Qwen3_5ForConditionalGeneration first in 0.17.0 (:496-499), absent from 0.16.0."""
    assert architecture_refusal("Qwen3_5ForConditionalGeneration", "0.17.0") is None
    assert architecture_refusal("Qwen3_5ForConditionalGeneration", "0.16.0").reason.startswith(
        "Model architectures ['Qwen3_5ForConditionalGeneration'] are not supported for now")
    assert architecture_refusal("Qwen3_5ForCausalLM", "0.26.0") is not None  # registry.py 0.27.0:201
    assert architecture_refusal("Qwen3_5ForCausalLM", "0.27.0") is None


# 5. DeepSeek-V4 on compute capability 8.x ----------------------------------------------------------------------

V4 = "deepseek-ai/DeepSeek-V4-Flash"


@pytest.mark.parametrize("release", ["0.20.0", "0.23.0", "0.32.0", "0.34.0"])
def test_v4_on_an_a100_fails_at_the_first_kernel(release):
    # fp8: 0.20-0.29 refuse `auto` as the layers are built, before any kernel runs (test_v4_auto_dtype_s71)
    (plan,) = estimate(V4, gpu="a100-80gb", max_model_len=8192, tensor_parallel_size=8, engine=f"vllm=={release}",
                       kv_cache_dtype="fp8")
    refusal = plan.to_dict()["engine"]["refusal"]
    assert refusal["reason"].startswith("FlashMLA's sparse kernels do not run on compute capability 8.0")
    assert "fails at the first sparse kernel call" in refusal["reason"]
    assert refusal["field"] == "gpu" and refusal["configuration"] is True and plan.max_concurrency == 0
    assert refusal["remedy"] == "it starts on a Hopper or Blackwell GPU (H100, H200, B200, ...)"


def test_v4_gpu_rule_by_release():
    assert v4_gpu_refusal_line((9, 0), "0.34.0") == v4_gpu_refusal_line((10, 0), "0.20.0") == ""
    assert v4_gpu_refusal_line((12, 0), "0.24.0") == ""  # FlashInfer's SM120 path (model.py 0.24.0:767)
    assert "on every CUDA GPU," in v4_gpu_refusal_line((12, 0), "0.23.0")  # FlashMLA's only (0.23.0 :716-727)
    assert "every CUDA GPU but 12.x" in v4_gpu_refusal_line((8, 9), "0.34.0")
    assert v4_gpu_refusal_line(("rocm",), "0.34.0") == v4_gpu_refusal_line((), "0.34.0") == ""
    (hopper,) = estimate(V4, gpu="h100", max_model_len=8192, tensor_parallel_size=8, engine="vllm==0.34.0")
    assert hopper.to_dict()["engine"]["refusal"] is None


# 6. a refusal of the GPU said once --------------------------------------------------------------------------------

V32 = "deepseek-ai/DeepSeek-V3.2"
SPARSE_LINE = "with a sparse MLA layer"


def _text(*args):
    run = run_kvplan("estimate", *args, env={"COLUMNS": "300"})
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_sparse_gpu_refusal_is_said_once():
    sweep = _text(V32, "--gpu", "A100-80GB", "--tp", "8", "--pp", "2", "-c", "8K,32K", "--kv-cache-dtype", "auto,fp8")
    assert sweep.count(SPARSE_LINE) == 1
    assert ("vllm 0.32.0 does not start on A100-80GB: No valid attention backend found for cuda (compute capability "
            "8.0) with a sparse MLA layer") in sweep
    single = _text(V32, "--gpu", "A100-80GB", "--tp", "8", "--pp", "2")
    assert single.count(SPARSE_LINE) == 1


def test_no_fp8_ds_mla_claim_on_a_refused_gpu():
    text = _text(V32, "--gpu", "A100-80GB", "--tp", "8", "--pp", "2", "-c", "8K", "--kv-cache-dtype", "fp8")
    assert "keeps fp8_ds_mla" not in text and "keeps an fp8_ds_mla cache" not in text
    assert "fp8_e4m3 = fp8 e4m3" in text
    hopper = _text(V32, "--gpu", "H100", "--tp", "8", "--pp", "2", "-c", "8K", "--kv-cache-dtype", "fp8")
    assert "fp8_e4m3 = vllm keeps fp8_ds_mla" in hopper


def test_the_json_keeps_every_rows_refusal():
    run = run_kvplan("estimate", V32, "--gpu", "A100-80GB", "--tp", "8", "--pp", "2", "-c", "8K,32K",
                     "--format", "json")
    plans = json.loads(run.stdout)["plans"]
    assert len(plans) == 2 and all(p["engine"]["refusal"]["field"] == "gpu" for p in plans)


def test_the_html_page_names_a_gpu_refusal_once_for_every_plan():
    """A refusal of the GPU is the same for every plan: one heading naming the release and GPU, with what would
    start, not the first plan's heading."""
    page = run_kvplan("estimate", "deepseek-ai/DeepSeek-V3.2", "--gpu", "A100-80GB", "--tp", "8", "--pp", "2",
                      "-c", "8K,32K", "--kv-cache-dtype", "auto,fp8", "--format", "html").stdout
    assert page.count("(every plan)</h3>") == 1
    assert "vllm 0.32.0 on A100-80GB (every plan)" in page and "it starts on a Hopper or Blackwell GPU" in page
