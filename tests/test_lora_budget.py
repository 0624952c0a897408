"""vLLM's --enable-lora (engines/vllm_lora.py): the LoRA manager's adapter slots, held to hand arithmetic from the
shapes vLLM's LoRA layer classes allocate (each rule cited to the vLLM 0.32.0 file:line it comes from), to vLLM
0.34.0's own layer classes built on the CPU (benchmarks/vllm_reference/lora.py -> tests/data/vllm_lora_bytes.json),
vLLM's refusals carried by the plan (the deployment does not start), kvplan's own limits as one line, exit 2."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import estimate_plan, one_error_line, run_kvplan
from kvplan.engines.vllm_lora import LLAMA, NO_EMBEDDINGS, PHI3, Layout, layer_elements, lora_bytes, lora_config, \
    punica_bytes
from kvplan.model.sources import resolve

FROZEN = json.loads((Path(__file__).parent / "data" / "vllm_lora_bytes.json").read_text())
LLAMA_8B = "meta-llama/Llama-3.1-8B"
MiB, GiB = 2**20, 2**30
H100 = SimpleNamespace(max_num_batched_tokens=8192, max_num_seqs=1024)  # vLLM's defaults on an H100
FOUR_X_64 = lora_config(True, 4, 64)  # --enable-lora --max-loras 4 --max-lora-rank 64, lora_dtype auto = bf16


def _terms(plan) -> dict:
    return {t["name"]: t for t in plan["budget"]["terms"]}


# -- Llama-3.1-8B: hidden 4096, 32 query heads and 8 KV heads of 128, intermediate 14336, vocab 128256 ---------------
# Every slot tensor is max_loras x ... in bf16 (2 bytes), 4 slots of rank 64:
# qkv_proj (MergedQKVParallelLinearWithLoRA, column_parallel_linear.py:207-245): 3 A of [64, 4096] and B of
#   [4096 / tp, 64], [1024 / tp, 64], [1024 / tp, 64];
# o_proj (RowParallelLinearWithLoRA, row_parallel_linear.py:27-28, base_linear.py:126-153): A [64, 4096 / tp],
#   B [4096, 64];
# gate_up_proj (MergedColumnParallelLinearWithLoRA): 2 A of [64, 4096], 2 B of [14336 / tp, 64];
# down_proj (row): A [64, 14336 / tp], B [4096, 64];
# embed_tokens (vocab_parallel_embedding.py:31-48): A [128256, 64], B [4096, 64], whole on every rank;
# lm_head (LogitsProcessorWithLoRA, logits_processor.py:93-112): A [64, 4096], B [128256, 64], whole; at tp 2 also
#   the int64 logits map of the vocab padded to 64 (128,256 already is): 8 x 128,256 bytes.

def test_llama_8b_tp1_each_module_holds_what_its_lora_class_allocates():
    per_slot = layer_elements(resolve(LLAMA_8B), 1, FOUR_X_64, LLAMA)
    bytes_4 = {module: elements * 2 * 4 for module, elements in per_slot.items()}
    assert bytes_4["qkv_proj"] == 4 * 2 * (3 * 64 * 4096 + 64 * (4096 + 1024 + 1024)) == 9 * MiB
    assert bytes_4["o_proj"] == 4 * 2 * (64 * 4096 + 4096 * 64) == 4 * MiB
    assert bytes_4["gate_up_proj"] == 4 * 2 * (2 * 64 * 4096 + 2 * 14336 * 64) == 18 * MiB
    assert bytes_4["down_proj"] == 4 * 2 * (64 * 14336 + 4096 * 64) == 9 * MiB


def test_llama_8b_tp1_total_four_slots_of_rank_64():
    total, source = lora_bytes(resolve(LLAMA_8B), 1, None, H100, FOUR_X_64, "0.32.0")
    layers = 32 * 40 * MiB  # 1.25 GiB
    embedding = 4 * 2 * (128256 * 64 + 4096 * 64)  # 67,764,224 B, the same for lm_head at tp 1
    # punica: 4 int64 of 8192 tokens, 3 of 1024 sequences (punica_base.py:133-155); 2 LoRAKernelMeta of 2 int32 of
    # 8192 and int32 of 5, 5 and 6 (lora_kernel_metadata.py:54-77)
    punica = 8 * (4 * 8192 + 3 * 1024) + 2 * (4 * (2 * 8192 + 5 + 5 + 6))
    assert punica == 417_920 == punica_bytes(H100, FOUR_X_64)
    assert total == layers + 2 * embedding + punica == 1_478_123_648  # 1.38 GiB
    assert "40.0 MiB a layer x 32 layers" in source and "Model loading took" in source


def test_llama_8b_tp2_splits_the_projections_not_the_embeddings():
    per_layer = sum(layer_elements(resolve(LLAMA_8B), 2, FOUR_X_64, LLAMA).values()) * 2 * 4
    qkv = 3 * 64 * 4096 + 64 * (2048 + 512 + 512)
    o_proj = 64 * 2048 + 4096 * 64
    gate_up = 2 * 64 * 4096 + 2 * 7168 * 64
    down = 64 * 7168 + 4096 * 64
    assert per_layer == 4 * 2 * (qkv + o_proj + gate_up + down) == 28_311_552  # 27 MiB
    total, source = lora_bytes(resolve(LLAMA_8B), 2, None, H100, FOUR_X_64, "0.32.0")
    assert total == 32 * 28_311_552 + 2 * 67_764_224 + 8 * 128256 + 417_920 == 1_042_942_080
    assert "logits map 1.0 MiB" in source


def test_fully_sharded_loras_split_column_a_by_rank_and_row_b_by_output():
    """base_linear.py:118-132 (divide(rank, tp) for column layers' A, divide(output, tp) for row layers' B)."""
    sharded = lora_config(True, 4, 64, fully_sharded_loras=True)
    per_layer = sum(layer_elements(resolve(LLAMA_8B), 2, sharded, LLAMA).values()) * 2 * 4
    qkv = 3 * 32 * 4096 + 64 * (2048 + 512 + 512)
    o_proj = 64 * 2048 + 2048 * 64
    gate_up = 2 * 32 * 4096 + 2 * 7168 * 64
    down = 64 * 7168 + 2048 * 64
    assert per_layer == 4 * 2 * (qkv + o_proj + gate_up + down) == 20 * MiB
    assert layer_elements(resolve(LLAMA_8B), 1, sharded, LLAMA) == layer_elements(resolve(LLAMA_8B), 1, FOUR_X_64,
                                                                                  LLAMA)  # tp 1: nothing to split


def test_a_pipeline_stage_wraps_its_own_layers_and_ends():
    """PPMissingLayer is skipped (model_manager.py:479-480): the embedding's slots on the first stage, the LM head's
    on the last, the punica tensors on both."""
    from kvplan.plan.sharding import Stage

    spec = resolve(LLAMA_8B)
    first, _ = lora_bytes(spec, 1, Stage(0, 2, 0, 16), H100, FOUR_X_64, "0.32.0")
    last, source = lora_bytes(spec, 1, Stage(1, 2, 16, 32), H100, FOUR_X_64, "0.32.0")
    assert first == last == 16 * 40 * MiB + 67_764_224 + 417_920
    assert "lm_head" in source and "embed_tokens" not in source


# -- capacity: what the slots cost the KV cache --------------------------------------------------------------------

def test_the_slots_cost_the_kv_cache_their_bytes_exactly():
    args = (LLAMA_8B, "--gpu", "H100", "--max-model-len", "8192")
    plain = estimate_plan(*args)
    lora = estimate_plan(*args, "--enable-lora", "--max-loras", "4", "--max-lora-rank", "64")
    assert "lora" not in _terms(plain)
    assert _terms(lora)["lora"]["bytes"] == 1_478_123_648
    assert list(_terms(lora))[:3] == ["memory", "weights", "lora"]  # a line of its own, next to the weights
    assert plain["kv_budget_bytes_per_gpu"] - lora["kv_budget_bytes_per_gpu"] == 1_478_123_648
    # 1 GiB of KV a request at 8192 (512 blocks of 2 MiB): 59,345,660,151 B with vLLM's 0.705 GiB graph term is
    # 28,298 blocks, 28,297 past the null block // 512 = 55; less the slots' 1,478,123,648 B, 27,593 -> 53
    assert (plain["max_concurrency"], lora["max_concurrency"]) == (55, 53)


def test_the_extensible_kv_cache_counts_them_as_used_memory():
    """vLLM 0.34 sizes the cache from memory measured after warmup (vllm_budget.extensible_budget): the slots, built
    at load, are part of what is used."""
    args = (LLAMA_8B, "--gpu", "H100", "--max-model-len", "8192", "--engine", "vllm==0.34.0")
    plain = estimate_plan(*args)
    lora = estimate_plan(*args, "--enable-lora", "--max-loras", "4", "--max-lora-rank", "64")
    assert plain["kv_budget_bytes_per_gpu"] - lora["kv_budget_bytes_per_gpu"] == _terms(lora)["lora"]["bytes"]
    assert plain["budget"]["measured"]["profiled_bytes"] - lora["budget"]["measured"]["profiled_bytes"] == \
        _terms(lora)["lora"]["bytes"]


def test_the_table_shows_the_line():
    r = run_kvplan("estimate", LLAMA_8B, "--gpu", "H100", "-c", "8192", "--enable-lora", "--max-loras", "4",
                   "--max-lora-rank", "64")
    assert r.returncode == 0, r.stderr
    assert "- LoRA slots 1.38 GiB -" in " ".join(r.stdout.split())


def test_check_gates_on_the_smaller_capacity():
    ok = run_kvplan("check", LLAMA_8B, "-tp", "1", "--gpu", "H100", "-c", "8192", "--min-concurrency", "54")
    short = run_kvplan("check", LLAMA_8B, "-tp", "1", "--gpu", "H100", "-c", "8192", "--min-concurrency", "54",
                       "--enable-lora", "--max-loras", "4", "--max-lora-rank", "64")
    assert (ok.returncode, short.returncode) == (0, 1)
    assert "max_concurrency 53 < min_concurrency 54" in short.stdout


def test_deployments_file_and_api_take_the_same_settings(tmp_path):
    from kvplan import api

    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: chat\n    model: {LLAMA_8B}\n    tp: 1\n    gpu: H100\n"
                    f"    context: 8192\n    enable_lora: true\n    max_loras: 4\n    max_lora_rank: 64\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"][0]["max_concurrency"] == 53
    (plan,) = api.estimate(LLAMA_8B, gpu="H100", max_model_len=8192, enable_lora=True, max_loras=4, max_lora_rank=64)
    assert plan.max_concurrency == 53
    assert api.check(LLAMA_8B, tensor_parallel_size=1, gpu="H100", max_model_len=8192, enable_lora=True,
                     max_loras=4, max_lora_rank=64)[0]["max_concurrency"] == 53


# -- what vLLM 0.34's own layer classes allocate on the CPU --------------------------------------------------------

FROZEN_MODULES = {"qkv_proj/3": ("qkv_proj", Layout(3, 2, False)), "qkv_proj/1": ("qkv_proj", Layout(1, 1, False)),
                  "o_proj": ("o_proj", LLAMA), "gate_up_proj/2": ("gate_up_proj", Layout(3, 2, False)),
                  "gate_up_proj/1": ("gate_up_proj", Layout(1, 1, False)), "down_proj": ("down_proj", LLAMA)}


@pytest.mark.parametrize("case", FROZEN["cases"], ids=lambda c: f"{c['shape']['name']}-tp{c['tp']}"
                                                               f"{'-sharded' if c['fully_sharded_loras'] else ''}")
def test_each_module_is_what_vllms_own_class_allocated(case):
    s = case["shape"]
    spec = SimpleNamespace(hidden_size=s["hidden"], num_attention_heads=s["heads"], kv_heads=s["kv_heads"],
                           head_dim=s["head_dim"], intermediate_size=s["intermediate"], vocab_size=s["vocab"])
    config = lora_config(True, case["max_loras"], case["max_lora_rank"], "bfloat16", case["fully_sharded_loras"])
    for name, (module, shape) in FROZEN_MODULES.items():
        ours = layer_elements(spec, case["tp"], config, shape)[module] * 2 * case["max_loras"]
        assert ours == case["modules"][name]["bytes"], name


def _frozen_model(tmp_path, shape: dict, architecture: str, layers: int):
    """A model of the frozen case's shape, as kvplan resolves a config.json (bf16, untied)."""
    config = {"architectures": [architecture], "model_type": "phi3" if architecture.startswith("Phi3") else "llama",
              "hidden_size": shape["hidden"], "intermediate_size": shape["intermediate"], "num_hidden_layers": layers,
              "num_attention_heads": shape["heads"], "num_key_value_heads": shape["kv_heads"],
              "head_dim": shape["head_dim"], "vocab_size": shape["vocab"], "max_position_embeddings": 4096,
              "torch_dtype": "bfloat16", "tie_word_embeddings": False}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return resolve(str(path))


@pytest.mark.parametrize("case", FROZEN["cases"], ids=lambda c: f"{c['shape']['name']}-tp{c['tp']}"
                                                               f"{'-sharded' if c['fully_sharded_loras'] else ''}")
@pytest.mark.parametrize("architecture,qkv,gate_up", [("LlamaForCausalLM", "qkv_proj/3", "gate_up_proj/2"),
                                                      ("Phi3ForCausalLM", "qkv_proj/1", "gate_up_proj/1")])
def test_lora_bytes_add_up_what_vllms_own_classes_allocated(tmp_path, case, architecture, qkv, gate_up):
    """lora_bytes of a 3-layer model of the frozen shape, whole and by pipeline stage, against the bytes vLLM 0.34's
    own LoRA layer classes allocated (tests/data/vllm_lora_bytes.json): the first stage holds embed_tokens, the last
    lm_head (with its logits map from tp 2), every stage the punica tensors."""
    from kvplan.plan.sharding import Stage

    spec = _frozen_model(tmp_path, case["shape"], architecture, 3)
    config = lora_config(True, case["max_loras"], case["max_lora_rank"], "bfloat16", case["fully_sharded_loras"])
    modules = {name: entry["bytes"] for name, entry in case["modules"].items()}
    layer = modules[qkv] + modules["o_proj"] + modules[gate_up] + modules["down_proj"]
    punica = punica_bytes(H100, config)
    whole, _ = lora_bytes(spec, case["tp"], None, H100, config, "0.34.0")
    assert whole == 3 * layer + modules["embed_tokens"] + modules["lm_head"] + punica
    first, _ = lora_bytes(spec, case["tp"], Stage(0, 3, 0, 1), H100, config, "0.34.0")
    middle, _ = lora_bytes(spec, case["tp"], Stage(1, 3, 1, 2), H100, config, "0.34.0")
    last, _ = lora_bytes(spec, case["tp"], Stage(2, 3, 2, 3), H100, config, "0.34.0")
    assert (first, middle, last) == (layer + modules["embed_tokens"] + punica, layer + punica,
                                     layer + modules["lm_head"] + punica)


@pytest.mark.parametrize("frozen", FROZEN["punica"], ids=lambda f: f"{f['max_num_batched_tokens']}")
def test_punica_tensors_are_what_its_gpu_wrapper_allocated(frozen):
    settings = SimpleNamespace(max_num_batched_tokens=frozen["max_num_batched_tokens"],
                               max_num_seqs=frozen["max_num_seqs"])
    assert punica_bytes(settings, lora_config(True, frozen["max_loras"])) == frozen["bytes"]


# -- the modules each class lists, by release ------------------------------------------------------------------------

@pytest.mark.parametrize("model,release,embeddings", [
    ("Qwen/Qwen3-8B", "0.14.0", False),  # qwen3.py 0.12.0:254-262: packed_modules_mapping only
    ("Qwen/Qwen3-8B", "0.16.0", True),  # qwen3.py 0.16.0:274: embedding_modules embed_tokens, lm_head
    ("mistralai/Mistral-7B-v0.3", "0.14.0", True),  # registry.py 0.12.0:147: llama.LlamaForCausalLM
    ("mistralai/Mistral-7B-v0.3", "0.32.0", False),  # mistral.py 0.32.0:238: embedding_modules = {}
    ("Qwen/Qwen2.5-7B-Instruct", "0.32.0", False),  # qwen2.py: no embedding_modules
    ("google/gemma-2-9b", "0.32.0", False),
    ("microsoft/Phi-3-mini-4k-instruct", "0.32.0", True),  # phi3.py: Phi3ForCausalLM(LlamaForCausalLM)
])
def test_embedding_slots_follow_the_class(model, release, embeddings):
    """The whole model less a middle pipeline stage's layers scaled to all of them (lora_bytes, which the frozen
    figures hold per module) is the embedding tables: embed_tokens A [vocab, 64] + B [hidden, 64] and lm_head A
    [64, hidden] + B [vocab, 64], 4 slots of bf16 (vocab_parallel_embedding.py:31-48, logits_processor.py:93-112),
    where the class lists them."""
    from kvplan.plan.sharding import Stage

    spec = resolve(model)
    total, source = lora_bytes(spec, 1, None, H100, FOUR_X_64, release)
    n = spec.num_hidden_layers
    middle, _ = lora_bytes(spec, 1, Stage(1, n, 1, 2), H100, FOUR_X_64, release)  # one layer, no embeddings
    table = (spec.vocab_size + spec.hidden_size) * 64 * 2 * 4
    assert total - n * (middle - 417_920) - 417_920 == 2 * table * embeddings
    assert ("embed_tokens" in source) == embeddings


def test_phi3_packs_qkv_and_gate_up_as_one_slice():
    """phi3.py 0.32.0:11-14: {"qkv_proj": ["qkv_proj"], "gate_up_proj": ["gate_up_proj"]} -> QKVParallelLinear-
    WithLoRA and ColumnParallelLinearWithLoRA, one A of [rank, hidden] each (Phi-3-mini: hidden 3072, 32 heads of 96,
    intermediate 8192)."""
    elements = layer_elements(resolve("microsoft/Phi-3-mini-4k-instruct"), 1, FOUR_X_64, PHI3)
    assert elements["qkv_proj"] == 64 * 3072 + 3 * 3072 * 64
    assert elements["gate_up_proj"] == 64 * 3072 + 2 * 8192 * 64


def test_gemma2_queries_are_heads_times_head_dim_not_hidden():
    """Gemma 2 9B: hidden 3584, 16 query heads and 8 KV heads of 256: q_proj is 4096 wide, o_proj's input 4096."""
    elements = layer_elements(resolve("google/gemma-2-9b"), 1, FOUR_X_64, NO_EMBEDDINGS)
    assert elements["qkv_proj"] == 3 * 64 * 3584 + 64 * (4096 + 2048 + 2048)
    assert elements["o_proj"] == 64 * 4096 + 3584 * 64


# -- settings vLLM ignores without --enable-lora ----------------------------------------------------------------------

@pytest.mark.parametrize("flag,value", [("--max-loras", "4"), ("--max-lora-rank", "64"), ("--lora-dtype", "float16"),
                                        ("--fully-sharded-loras", None)])
def test_a_lora_setting_without_enable_lora_is_noted_and_prices_nothing(flag, value):
    """vLLM builds no LoRAConfig without --enable-lora (engine/arg_utils.py 0.32.0:2650-2668: `if self.enable_lora
    else None`) and ignores the rest, so kvplan plans the deployment as vLLM runs it, and says so."""
    args = (LLAMA_8B, "--gpu", "H100", "-c", "8192")
    plain = estimate_plan(*args)
    ignored = estimate_plan(*args, flag, *([value] if value else []))
    assert "lora" not in _terms(ignored)
    assert ignored["kv_budget_bytes_per_gpu"] == plain["kv_budget_bytes_per_gpu"]
    r = run_kvplan("estimate", *args, flag, *([value] if value else []))
    assert r.returncode == 0, r.stderr
    assert f"{flag} changes nothing without --enable-lora: vLLM builds no LoRA config then and ignores it" in \
        " ".join(r.stdout.split())


def test_the_note_is_in_the_json_too():
    r = run_kvplan("estimate", LLAMA_8B, "--gpu", "H100", "-c", "8192", "--max-loras", "4", "--max-lora-rank", "64",
                   "--format", "json")
    assert r.returncode == 0, r.stderr
    assert any(note.startswith("--max-loras, --max-lora-rank change nothing without --enable-lora")
               for note in json.loads(r.stdout)["model"]["rules"])


def test_a_deployment_key_without_enable_lora_is_a_warning_at_its_line(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: chat\n    model: {LLAMA_8B}\n    tp: 1\n    max_loras: 4\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 0, r.stderr
    assert ":5): max_loras changes nothing without enable_lora" in " ".join(r.stdout.split())


def test_the_api_plans_without_the_ignored_setting():
    from kvplan import api

    (plain,) = api.estimate(LLAMA_8B, gpu="H100", max_model_len=8192)
    (ignored,) = api.estimate(LLAMA_8B, gpu="H100", max_model_len=8192, max_lora_rank=64)
    assert ignored.kv_budget_bytes_per_gpu == plain.kv_budget_bytes_per_gpu
    (result,) = api.check(LLAMA_8B, tensor_parallel_size=1, gpu="H100", max_model_len=8192, max_lora_rank=64)
    assert result["passed"] and any("max_lora_rank changes nothing without enable_lora" in w
                                    for w in result["warnings"])


# -- bad settings and kvplan's limits: one line, exit 2 ----------------------------------------------------------------

@pytest.mark.parametrize("args,words", [
    (("--max-lora-rank", "7"), "--max-lora-rank must be one of 1, 8, 16, 32, 64, 128, 256, 320, 512"),
    (("--max-loras", "0"), "--max-loras must be 1 to 1,048,576"),
    (("--lora-dtype", "fp8"), "--lora-dtype must be one of auto, float16, bfloat16"),
    (("--engine", "vllm==0.11.0"), "--enable-lora is modelled from vLLM 0.12 on"),
    (("--engine", "none"), "--enable-lora is modelled with vLLM only"),
    (("-tp", "2", "--fully-sharded-loras", "--max-lora-rank", "1"), "--max-lora-rank 1 does not split over tp 2"),
])
def test_bad_lora_settings_are_one_line(args, words):
    line = one_error_line(run_kvplan("estimate", LLAMA_8B, "--gpu", "H100", "-c", "8192", "--enable-lora", *args))
    assert words in line


def test_moe_experts_are_refused_as_kvplans_limit():
    """vLLM wraps routed experts (FusedMoEWithLoRA, lora/layers/fused_moe.py) for Qwen3-MoE; kvplan does not price
    them yet, and says so rather than leave them out."""
    line = one_error_line(run_kvplan("estimate", "Qwen/Qwen3-30B-A3B", "--gpu", "H100", "-c", "4096",
                                     "--enable-lora"))
    assert "(MoE experts)" in line and "kvplan's limit" in line


# -- vLLM's refusals: the deployment does not start, the plan says so ----------------------------------------------

def _refusal(*args) -> dict:
    return estimate_plan(*args)["engine"]["refusal"]


@pytest.mark.parametrize("extra", [(), ("--kv-cache-memory-bytes", "10G")])
def test_a_class_without_lora_support_does_not_start(extra):
    """Falcon (RWForCausalLM -> FalconForCausalLM) has no SupportsLoRA in any release read (falcon.py 0.27.0
    FalconForCausalLM(nn.Module, SupportsPP)); vLLM's worker refuses it whatever the memory
    (v1/worker/lora_model_runner_mixin.py 0.32.0:46-48), so a given KV budget is refused too. 0.27 still registers
    RWForCausalLM (0.32 refuses the architecture first)."""
    refusal = _refusal("tiiuae/falcon-7b", "--gpu", "H100", "-c", "2048", "--enable-lora", "--engine",
                       "vllm==0.27.0", *extra)
    assert refusal["reason"] == "FalconForCausalLM does not support LoRA yet."
    assert refusal["field"] == "enable_lora" and refusal["remedy"] == "leave --enable-lora out"


def test_check_fails_that_deployment_and_reports_the_others(tmp_path):
    """The review's file: plain Llama, Falcon with LoRA, Gemma 4 on 0.12 (not yet registered): every row reported,
    exit 1, not 2."""
    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: plain\n    model: {LLAMA_8B}\n    tp: 1\n    gpu: H100\n"
                    f"  - name: falcon\n    model: tiiuae/falcon-7b\n    tp: 1\n    gpu: H100\n    context: 2048\n"
                    f"    engine: vllm==0.27.0\n    enable_lora: true\n"
                    f"  - name: gemma4\n    model: google/gemma-4-31B-it\n    tp: 1\n    gpu: H200\n"
                    f"    context: 8192\n    engine: vllm==0.12.0\n")
    r = run_kvplan("check", "--file", path, "--format", "json")
    assert r.returncode == 1, r.stderr
    results = {row["name"]: row for row in json.loads(r.stdout)["results"]}
    assert results["plain"]["passed"] and not results["gemma4"]["passed"]
    (error,) = results["falcon"]["errors"]
    assert "FalconForCausalLM does not support LoRA yet; leave enable_lora out" in error


def test_support_follows_the_release():
    """Gemma 4's multimodal class gains SupportsLoRA in 0.20.0 (gemma4_mm.py 0.19.1:882-887 lacks it, 0.20.0:881-887
    has it): 0.19 does not start, as vLLM refuses it; 0.32 is kvplan's limit (a multimodal model's slots are not
    priced), exit 2."""
    args = ("estimate", "google/gemma-4-31B-it", "--gpu", "H200", "-c", "8192", "--enable-lora")
    assert _refusal(*args[1:], "--engine", "vllm==0.19.0")["reason"] == \
        "Gemma4ForConditionalGeneration does not support LoRA yet."
    line = one_error_line(run_kvplan(*args))
    assert "not priced by kvplan" in line and "kvplan's limit" in line


@pytest.mark.parametrize("vocab,release,words", [
    (260000, "0.32.0", "When using LoRA, vocab size must be <= 258048"),
    (260000, "0.16.0", "When using LoRA, vocab size must be 32000 >= vocab_size <= 257024"),
    (257500, "0.16.0", "When using LoRA, vocab size must be 32000 >= vocab_size <= 257024"),
    (257500, "0.17.0", None), (128256, "0.12.0", None)])
def test_vllms_lora_vocab_limit(tmp_path, vocab, release, words):
    """LogitsProcessorWithLoRA: vocab above 257,024 refused up to 0.16 (logits_processor.py 0.16.0:91-94), above
    258,048 from 0.17 (0.17.0:91-92)."""
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
              "intermediate_size": 8192, "num_hidden_layers": 4, "num_attention_heads": 16, "num_key_value_heads": 8,
              "vocab_size": vocab, "max_position_embeddings": 8192, "torch_dtype": "bfloat16"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    refusal = _refusal(path, "--gpu", "H100", "-c", "4096", "--enable-lora", "--engine", f"vllm=={release}")
    if words:
        assert refusal["reason"].startswith(words + " (")  # vLLM's words verbatim: no full stop of kvplan's
        if vocab <= 258048:  # 0.17.0 takes it: the release is the remedy, or LoRA left out
            assert refusal["field"] == "engine"
            assert refusal["remedy"] == "it starts with --engine vllm==0.17.0 or newer; or leave --enable-lora out"
        else:
            assert refusal["field"] == "enable_lora" and refusal["remedy"] == "leave --enable-lora out"
    else:
        assert refusal is None


@pytest.mark.parametrize("tokens,refused", [(7, False), (8, True)])
def test_lora_with_drafts_needs_a_batch_for_every_sequences_drafts(tokens, refused):
    """engine/arg_utils.py 0.32.0:2671-2683: with LoRA and a speculative config, vLLM refuses max_num_batched_tokens
    below max_num_seqs x (num_speculative_tokens + 1): on an H100 8,192 < 1,024 x 9 refuses, 1,024 x 8 does not.
    The fix: 9,216 batched tokens."""
    spec = json.dumps({"method": "ngram", "num_speculative_tokens": tokens, "prompt_lookup_max": 3})
    args = ("Qwen/Qwen3-8B", "--gpu", "H100", "-c", "8192", "--enable-lora", "--speculative-config", spec)
    refusal = _refusal(*args)
    if not refused:
        assert refusal is None
        return
    assert refusal["field"] == "max_num_batched_tokens"
    assert "max_num_batched_tokens 8,192 < max_num_seqs 1,024 x (num_speculative_tokens + 1) = 9,216" in \
        refusal["reason"]
    assert refusal["remedy"].startswith("raise --max-num-batched-tokens to 9216 or more")
    assert _refusal(*args, "--max-num-batched-tokens", "9216") is None


def test_check_suggests_the_batched_tokens_in_the_files_words(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("deployments:\n  - name: drafts\n    model: Qwen/Qwen3-8B\n    tp: 1\n    gpu: H100\n"
                    "    context: 8192\n    enable_lora: true\n    speculative_config:\n      method: ngram\n"
                    "      num_speculative_tokens: 8\n      prompt_lookup_max: 3\n")
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 1, r.stderr
    assert "raise max_num_batched_tokens to 9216 or more" in " ".join(r.stdout.split())


# -- tied embeddings under pipeline parallelism ---------------------------------------------------------------------

def test_a_tied_model_wraps_embed_tokens_on_the_last_stage_too():
    """Llama-3.2-1B ties its LM head (tie_word_embeddings: true); vLLM builds embed_tokens on the last pipeline rank
    too for a tied model (llama.py 0.34.0:377-381, 0.32.0:379), and LoRAModelManager wraps every module it finds
    there (model_manager.py 0.32.0:478-480 skips PPMissingLayer only). embed_tokens: A [128256, 64] + B [2048, 64],
    4 slots of bf16 = 66,715,648 bytes (63.6 MiB); Llama-3.1-8B (untied) has none on its last stage."""
    from kvplan.plan.sharding import Stage

    tied = resolve("meta-llama/Llama-3.2-1B-Instruct")  # 16 layers, hidden 2048
    first, _ = lora_bytes(tied, 1, Stage(0, 2, 0, 8), H100, FOUR_X_64, "0.32.0")
    last, source = lora_bytes(tied, 1, Stage(1, 2, 8, 16), H100, FOUR_X_64, "0.32.0")
    embed_tokens = 4 * 2 * (128256 * 64 + 2048 * 64)
    assert embed_tokens == 66_715_648
    assert last - first == embed_tokens  # the same layers; lm_head's table equals embed_tokens' at tp 1
    assert "embed_tokens 63.6 MiB (tied: built on the last stage too)" in source
    untied = resolve(LLAMA_8B)
    first, _ = lora_bytes(untied, 1, Stage(0, 2, 0, 16), H100, FOUR_X_64, "0.32.0")
    last, source = lora_bytes(untied, 1, Stage(1, 2, 16, 32), H100, FOUR_X_64, "0.32.0")
    assert first == last and "embed_tokens" not in source


def test_the_tied_stage_is_the_one_planned():
    plan = estimate_plan("meta-llama/Llama-3.2-1B-Instruct", "--pp", "2", "--enable-lora", "--max-loras", "4",
                         "--max-lora-rank", "64")
    assert plan["budget"]["stage"] == 1 and "tied: built on the last stage too" in _terms(plan)["lora"]["source"]


# -- what LoRA costs that kvplan does not model: said ---------------------------------------------------------------

def test_the_graphs_and_itl_notes():
    """cudagraph_specialize_lora (config/compilation.py 0.32.0:663, default True) captures every size without and
    with LoRA (v1/cudagraph_dispatcher.py 0.32.0:110-128): not in kvplan's graph constant, and said once, in the
    graph term's source (the text's budget line), not again among the rules."""
    args = (LLAMA_8B, "--gpu", "H100", "-c", "8192", "--enable-lora")
    plan = estimate_plan(*args)
    assert "LoRA captures every CUDA graph size twice" in _terms(plan)["cuda_graphs"]["source"]
    r = run_kvplan("estimate", *args, "--format", "json")
    notes = json.loads(r.stdout)["model"]["rules"]
    assert not any("LoRA captures every CUDA graph" in n for n in notes)
    assert any(n.startswith("decode ITL ignores LoRA's extra kernels") for n in notes)
    text = " ".join(run_kvplan("estimate", *args).stdout.split())
    assert text.count("LoRA captures every CUDA graph size twice") == 1
    assert "(cudagraph_specialize_lora: v1/cudagraph_dispatcher.py 0.32.0:110-128); not modelled" in text
    assert "decode ITL ignores LoRA's extra kernels" in text
    assert "LoRA captures" not in _terms(estimate_plan(LLAMA_8B, "--gpu", "H100", "-c", "8192"))["cuda_graphs"][
        "source"]


@pytest.mark.parametrize("release", ["0.32.0", "0.34.0"])
def test_no_graph_note_under_enforce_eager(release):
    """--enforce-eager sets cudagraph_mode NONE: no graph is captured, with or without adapters."""
    args = (LLAMA_8B, "--gpu", "H100", "-c", "8192", "--enable-lora", "--enforce-eager", "--engine",
            f"vllm=={release}")
    assert "LoRA captures" not in _terms(estimate_plan(*args))["cuda_graphs"]["source"]
    assert "LoRA captures" not in " ".join(run_kvplan("estimate", *args).stdout.split())


def test_no_lora_notes_where_vllm_refuses_lora():
    """Falcon on 0.27.0 (no SupportsLoRA): nothing is built and nothing decodes, so neither note applies."""
    args = ("estimate", "tiiuae/falcon-7b", "--gpu", "H100", "-c", "2048", "--enable-lora", "--engine",
            "vllm==0.27.0")
    text = " ".join(run_kvplan(*args).stdout.split())
    assert "does not support LoRA yet" in text
    assert "LoRA captures" not in text and "decode ITL ignores LoRA" not in text


# -- the speculative remedy holds when re-run ---------------------------------------------------------------------

SPEC_8 = json.dumps({"method": "ngram", "num_speculative_tokens": 8, "prompt_lookup_max": 3})


@pytest.mark.parametrize("batched", ["512", "4608", "9215"])
def test_the_suggested_batched_tokens_pass_when_rerun(batched):
    """Without --max-num-seqs vLLM caps its default max_num_seqs (1,024 on an H100) at the batched tokens
    (engine/arg_utils.py 0.32.0:3178-3180): 512 batched tokens make max_num_seqs 512 and need 512 x 9 = 4,608, but
    4,608 lifts max_num_seqs back to 1,024 and needs 9,216. So every value below 9,216 is refused and the remedy
    names 1,024 x 9 = 9,216, which passes."""
    args = ("Qwen/Qwen3-8B", "--gpu", "H100", "-c", "8192", "--enable-lora", "--speculative-config", SPEC_8)
    refusal = _refusal(*args, "--max-num-batched-tokens", batched)
    assert refusal["remedy"].startswith("raise --max-num-batched-tokens to 9216 or more")
    assert _refusal(*args, "--max-num-batched-tokens", "9216") is None


def test_with_max_num_seqs_given_the_need_is_its_own():
    """--max-num-seqs 256 given: vLLM keeps it (no cap), so 512 < 256 x 9 = 2,304 asks 2,304, which passes."""
    args = ("Qwen/Qwen3-8B", "--gpu", "H100", "-c", "8192", "--enable-lora", "--speculative-config", SPEC_8,
            "--max-num-seqs", "256")
    refusal = _refusal(*args, "--max-num-batched-tokens", "512")
    assert refusal["remedy"].startswith("raise --max-num-batched-tokens to 2304 or more")
    assert _refusal(*args, "--max-num-batched-tokens", "2304") is None


def test_check_file_suggests_the_value_that_passes(tmp_path):
    row = ("deployments:\n  - name: drafts\n    model: Qwen/Qwen3-8B\n    tp: 1\n    gpu: H100\n    context: 8192\n"
           "    enable_lora: true\n    max_num_batched_tokens: {}\n    speculative_config:\n      method: ngram\n"
           "      num_speculative_tokens: 8\n      prompt_lookup_max: 3\n")
    path = tmp_path / "d.yaml"
    path.write_text(row.format(512))
    r = run_kvplan("check", "--file", path)
    assert r.returncode == 1 and "raise max_num_batched_tokens to 9216 or more" in " ".join(r.stdout.split())
    path.write_text(row.format(9216))
    assert run_kvplan("check", "--file", path).returncode == 0


# -- --max-loras' range is LoRAConfig's, built only with --enable-lora ------------------------------------------------

def test_max_loras_zero_without_enable_lora_is_ignored_not_refused():
    """LoRAConfig.max_loras Field(ge=1) (config/lora.py 0.32.0:35) runs only where the config is built, with
    --enable-lora (engine/arg_utils.py 0.32.0:2650-2668); argparse takes any int. With --enable-lora: refused."""
    args = ("estimate", LLAMA_8B, "--gpu", "H100", "-c", "8192", "--max-loras", "0")
    r = run_kvplan(*args)
    assert r.returncode == 0, r.stderr
    assert "--max-loras changes nothing without --enable-lora" in " ".join(r.stdout.split())
    assert "--max-loras must be 1 to 1,048,576" in one_error_line(run_kvplan(*args, "--enable-lora"))


def test_the_vocab_refusals_summary_is_vllms_sentence(tmp_path):
    """logits_processor.py 0.17.0:92 raises "When using LoRA, vocab size must be <= 258048" (no full stop): the
    one-line summary is that sentence whole."""
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
              "intermediate_size": 8192, "num_hidden_layers": 4, "num_attention_heads": 16, "num_key_value_heads": 8,
              "vocab_size": 260000, "max_position_embeddings": 8192, "torch_dtype": "bfloat16"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    text = " ".join(run_kvplan("estimate", path, "--gpu", "H100", "-c", "4096", "--enable-lora").stdout.split())
    assert "refuses the configuration: When using LoRA, vocab size must be <= 258048; leave --enable-lora out" in text


# -- a release that serves the architecture but not with LoRA -------------------------------------------------------

def test_an_older_release_without_lora_is_the_remedy(tmp_path):
    """Falcon: vLLM 0.32 no longer registers RWForCausalLM (served until 0.28.0), and every release that serves it
    refuses LoRA (falcon.py: no SupportsLoRA), so "use an older version" alone is wrong with --enable-lora."""
    r = run_kvplan("check", "tiiuae/falcon-7b", "-tp", "1", "--gpu", "H100", "-c", "2048", "--enable-lora")
    assert r.returncode == 1
    text = " ".join(r.stdout.split())
    assert "vLLM accepts --engine vllm==0.28.0 or older without --enable-lora" in text
    assert "Please use an older version" not in text
    path = tmp_path / "d.yaml"
    path.write_text("deployments:\n  - name: f\n    model: tiiuae/falcon-7b\n    tp: 1\n    gpu: H100\n"
                    "    context: 2048\n    enable_lora: true\n")
    text = " ".join(run_kvplan("check", "--file", path).stdout.split())
    assert "vLLM accepts engine vllm==0.28.0 or older without enable_lora" in text
    assert "Please use an older version" not in text
