"""vLLM's --speculative-config in the engine model (engines/vllm_speculative.py): ngram adds nothing to memory; mtp
adds the model's MTP modules' weights (embedding and LM head the target's) and their attention layers to the KV
cache groups. Held to vLLM 0.32.0's own code run on the CPU with the drafter built beside the target
(tests/data/vllm_speculative_figures.json, made by benchmarks/vllm_reference/speculative_figures.py) and to hand
arithmetic from DeepSeek-V3's config."""

import json
from pathlib import Path

import pytest

from conftest import run_kvplan, vllm_reference

ROOT = Path(__file__).resolve().parents[1]
reference = vllm_reference()
DATA = json.loads((ROOT / "tests" / "data" / "vllm_speculative_figures.json").read_text())
CASES = DATA["cases"]
V3 = "deepseek-ai/DeepSeek-V3"
MTP = '{"method": "mtp", "num_speculative_tokens": 1}'


def _served(case: dict, tmp_path=None):
    """The target as kvplan serves it with the case's speculative config; a draft config the reference script
    carries (inputs.draft_config) is read from a local config.json, as a user's would be."""
    from kvplan.engines.vllm_speculative import speculative_config, with_drafter

    inputs = case["inputs"]
    spec = reference.model_spec(inputs["model"])
    raw = dict(inputs["speculative_config"] or {})
    if "draft_config" in inputs:
        path = tmp_path / "draft" / "config.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(inputs["draft_config"]))
        raw["model"] = str(path)
    config = speculative_config(raw or None)
    return spec if config is None else with_drafter(spec, config, "0.32.0")


def _id(case: dict) -> str:
    config = case["inputs"]["speculative_config"] or {}
    return f"{case['inputs']['model']}-{config.get('method')}-{config.get('num_speculative_tokens')}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_cache_as_vllm_builds_it_with_the_drafter(case, tmp_path):
    """vLLM's KV cache specs with the drafter's layers, num_gpu_blocks, its size line and the requests its
    KVCacheManager admits with num_lookahead_tokens slots (capped at max_model_len, so 1 or 3 draft tokens hold
    the same 18 DeepSeek-V3 requests of 32K); Qwen3-Next's linear-attention state widened for the draft tokens and
    its num_speculative_blocks (25 requests without, 23 with ngram's 4 tokens, 22 with MTP's 2 and its layer)."""
    from kvplan.engines.vllm import start
    from kvplan.model.precision import resolve_kv_dtype

    inputs = case["inputs"]
    spec = _served(case, tmp_path)
    _, settings = reference.kvplan_startup(case)
    result = start(spec, tp=inputs["tp"], precision=resolve_kv_dtype("auto", spec.dtype), settings=settings,
                   available=[inputs["available_kv_cache_bytes"]])
    fig = result.figures
    assert len(spec.layers) == case["num_kv_layers_per_rank"]
    assert fig.num_gpu_blocks == case["kv"]["num_gpu_blocks"]
    assert reference.sizing(fig.log_lines) == case["log_lines"]
    assert fig.block_size == case["kv"]["block_size"]
    assert fig.resident_sequences == case["resident"]["requests"]
    lookahead = spec.draft.config.lookahead if spec.draft is not None else 0
    assert lookahead == case["speculation"]["num_lookahead_tokens"]


def test_deepseek_v3_mtp_module_per_rank_is_vllms():
    """The drafter vLLM builds for DeepSeek-V3 at TP 8 (DeepSeekMultiTokenPredictorLayer), module by module, less
    what the proposer shares with the target (embed_tokens, shared_head.head): 1,661,047,968 bytes a rank."""
    from kvplan.engines.vllm_speculative import draft_weights

    case = next(c for c in DATA["cases"] if c["inputs"]["model"] == V3 and c["draft"])
    modules = case["draft"]["modules"]
    own = sum(m["bytes"] for m in modules.values() if not m["shared_with_target"])
    assert own == 1_661_047_968
    assert draft_weights(_served(case).draft, 8) == own


def test_qwen3_next_mtp_module_per_rank_is_vllms():
    """Qwen3NextMTP at TP 4 as vLLM builds it (fc split over the ranks, one whole KV head of the 2 a rank, 512
    experts split), less the embedding and LM head it shares: kvplan's count of the module is vLLM's, though
    serving it is refused (the model's linear-attention state, below)."""
    from kvplan.engines.vllm_speculative import Drafter, Speculative, draft_weights

    case = next(c for c in DATA["cases"] if c["inputs"]["model"].startswith("Qwen/Qwen3-Next") and c["draft"])
    own = sum(m["bytes"] for m in case["draft"]["modules"].values() if not m["shared_with_target"])
    spec = reference.model_spec(case["inputs"]["model"])
    assert draft_weights(Drafter(Speculative("mtp", 2), 1, spec.mtp_module, ()), 4) == own


def test_deepseek_v3_mtp_module_by_hand():
    """The same figure from the config's numbers (h 7168, 128 heads, q_lora 1536, kv_lora 512, rope 64, nope 128,
    v 128, 256 experts of 2048, one shared expert, fp8 in 128 x 128 blocks with float32 scales): what every rank
    holds whole (MLA's q_a / kv_a and their norms, the router, the layer norms; enorm, hnorm, shared_head.norm,
    eh_proj in bf16) plus an eighth of the rest."""
    h = 7168
    fp8_whole = 1536 * h + 576 * h  # q_a_proj, kv_a_proj_with_mqa
    fp8_split = 128 * 192 * 1536 + 128 * 256 * 512 + h * 128 * 128 + 256 * 3 * 2048 * h + 3 * 2048 * h
    scales_whole = (12 + 5) * 56  # 128 x 128 blocks of q_a (1536 x h) and kv_a (576 x h)
    scales_split = (192 * 12 + 256 * 4 + 56 * 128 + 257 * (32 * 56 + 56 * 16))  # q_b, kv_b, o_proj, experts + shared
    # q_a / kv_a norms, layer norms, router; enorm, hnorm, shared_head.norm; eh_proj
    bf16_whole = 1536 + 512 + 2 * h + 256 * h + 3 * h + 2 * h * h
    per_rank = (fp8_whole + 4 * scales_whole + 2 * bf16_whole + 4 * 256  # + the float32 score-correction bias
                + (fp8_split + 4 * scales_split) // 8)
    assert per_rank == 1_661_047_968
    run = run_kvplan("estimate", V3, "-tp", "8", "--gpu", "h200", "-c", "32K", "--format", "json")
    drafted = run_kvplan("estimate", V3, "-tp", "8", "--gpu", "h200", "-c", "32K", "--format", "json",
                         "--speculative-config", MTP)
    (plain,), (plan,) = json.loads(run.stdout)["plans"], json.loads(drafted.stdout)["plans"]
    assert plan["budget"]["weights_bytes_per_gpu"] - plain["budget"]["weights_bytes_per_gpu"] == per_rank
    # one more MLA layer a token: 62 (not 61) x (512 + 64) x 2 bytes, on every rank
    assert (plain["kv_bytes_per_token_per_gpu"], plan["kv_bytes_per_token_per_gpu"]) == (61 * 576 * 2, 62 * 576 * 2)
    peak = next(t for t in plan["budget"]["terms"] if t["name"] == "profile_peak")
    plain_peak = next(t for t in plain["budget"]["terms"] if t["name"] == "profile_peak")
    assert peak["bytes"] - plain_peak["bytes"] == 3 * 8192 * h * 2  # the drafter's pass: hidden states + 2h input
    assert plan["max_concurrency"] < plain["max_concurrency"]


@pytest.mark.parametrize("tp", [1, 2])
def test_a_draft_model_weighs_what_vllm_builds(tp):
    """Llama-3.2-1B drafting for Llama-3.1-8B (DraftModelProposer: the whole draft, its own tied embedding, at the
    target's TP): vLLM's module count a rank, and by hand 1,235,814,400 bf16 parameters, of which at TP 2 the
    16 x 2 + 1 norms of 2,048 stay whole and the rest halves. The budget's weights grow by that."""
    case = next(c for c in DATA["cases"] if c["draft"] and c["draft"]["architecture"] == "LlamaForCausalLM"
                and c["inputs"]["tp"] == tp)
    vllm = sum(m["bytes"] for m in case["draft"]["modules"].values())
    norms = (16 * 2 + 1) * 2048 * 2
    assert vllm == (2 * 1_235_814_400 if tp == 1 else (2 * 1_235_814_400 - norms) // 2 + norms)
    args = ("estimate", "meta-llama/Llama-3.1-8B-Instruct", "-tp", str(tp), "-c", "32K", "--format", "json")
    config = '{"model": "meta-llama/Llama-3.2-1B-Instruct", "num_speculative_tokens": 4}'
    (plain,) = json.loads(run_kvplan(*args).stdout)["plans"]
    (drafted,) = json.loads(run_kvplan(*args, "--speculative-config", config).stdout)["plans"]
    assert drafted["budget"]["weights_bytes_per_gpu"] - plain["budget"]["weights_bytes_per_gpu"] == vllm
    # 32 target layers of 8 x 128 and 16 draft layers of 8 x 64 KV values, K and V, bf16, over tp
    assert drafted["kv_bytes_per_token_per_gpu"] == (32 * 8 * 128 + 16 * 8 * 64) * 2 * 2 // tp


@pytest.mark.parametrize("method", ["eagle", "eagle3"])
def test_an_eagle_head_weighs_what_vllm_builds(method, tmp_path):
    """vLLM's EAGLE head for Llama-3.1-8B (TP 1) and EAGLE-3 head (TP 2), module by module, less the target's
    embedding: by hand from the head config (h 4,096, 32 heads, 8 KV heads of 128, MLP 14,336, bf16):
    EAGLE: attention (4,096 + 2 x 1,024 + 4,096) x 4,096, MLP 3 x 14,336 x 4,096, one norm (layer 0 has no
    input_layernorm), fc 8,192 x 4,096 whole; EAGLE-3 at TP 2: the same layer with q / k / v reading 8,192, over 2,
    four norms and fc 12,288 x 4,096 whole, a 32,000-row LM head over 2, and the int64 draft -> target map whole."""
    from kvplan.engines.vllm_speculative import draft_weights

    case = next(c for c in DATA["cases"] if (c["inputs"]["speculative_config"] or {}).get("method") == method)
    vllm = sum(m["bytes"] for m in case["draft"]["modules"].values() if not m["shared_with_target"])
    h, kv, mlp = 4096, 1024, 3 * 14336 * 4096
    attention = (h + 2 * kv + h) * h
    if method == "eagle":
        by_hand = 2 * (attention + mlp + h + 2 * h * h)
    else:
        by_hand = 2 * ((attention + (h + 2 * kv) * h + mlp + 32000 * h) // 2 + 4 * h + 3 * h * h) + 8 * 32000
    assert vllm == by_hand
    assert draft_weights(_served(case, tmp_path).draft, case["inputs"]["tp"]) == vllm


def test_ngram_adds_no_weights_or_kv_layers_but_its_token_history():
    """No drafter weights or KV layers; V2 keeps every request's tokens dense on the GPU for it (0.32.0
    v1/worker/gpu/model_runner.py:275-277, states.py:37-41): int32 1024 x 131,072 = 536,870,912 B less cache,
    four draft tokens' rows of the structured-output bitmask (gpu/structured_outputs.py:22-27: max_num_seqs x
    decode_query_len logits, int32 cdiv(128,256, 32) + 1 each) and the n-gram scan's int64 partial results
    (spec_decode/ngram/speculator.py:185-199: 1,024 x cdiv(131,072, 256))."""
    base = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--format", "json")
    ngram = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--format", "json", "--speculative-config",
                       '{"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4}')
    (a,), (b,) = json.loads(base.stdout)["plans"], json.loads(ngram.stdout)["plans"]
    assert a["budget"]["weights_bytes_per_gpu"] == b["budget"]["weights_bytes_per_gpu"]
    assert a["kv_bytes_per_token_per_gpu"] == b["kv_bytes_per_token_per_gpu"]
    assert a["kv_budget_bytes_per_gpu"] - b["kv_budget_bytes_per_gpu"] == (1024 * 131_072 * 4 + 4 * 1024 * 4_009 * 4
                                                                       + 1024 * 512 * 8)


def test_suffix_decoding_runs_on_the_v1_runner():
    """V2 has no suffix decoding (VllmConfig._get_v2_model_runner_unsupported_features): Llama-3.1-8B, a V2 model
    in 0.32, falls back to V1, whose graph profile kvplan counts the same; the source names why."""
    run = run_kvplan("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--format", "json", "--speculative-config",
                     '{"method": "suffix", "num_speculative_tokens": 8}')
    graphs = next(t for t in json.loads(run.stdout)["plans"][0]["budget"]["terms"] if t["name"] == "cuda_graphs")
    assert graphs["source"].startswith("V1's profiled capture")


def test_hybrid_state_widens_for_the_draft_tokens():
    """Qwen3-Next's gated DeltaNet keeps conv_kernel - 1 + k inputs (mamba_utils.py gated_delta_net_state_shape,
    num_spec) and k more state blocks a request (MambaSpec.num_speculative_blocks), even for ngram: at TP 4 the
    conv state is (2 x 16 x 128 + 32 x 128) / 4 = 2,048 channels x (3 + 4) bf16 and the temporal state
    32 / 4 x 128 x 128 bf16, so a page grows from 2,048 x 3 x 2 + 131,072 x 2 = 274,432 to 290,816 bytes and a
    request holds 2 + 4 state blocks a group instead of 2, as vLLM's figures say (6 blocks, pages of 294,912 after
    the block size rises to 288 tokens)."""
    from kvplan.engines.vllm_speculative import speculative_config, with_drafter
    from kvplan.model.kinds import LinearState

    spec = reference.model_spec("Qwen/Qwen3-Next-80B-A3B-Thinking")
    served = with_drafter(spec, speculative_config('{"method": "ngram", "num_speculative_tokens": 4}'), "0.32.0")
    before, after = (next(x for x in s.layers if isinstance(x, LinearState)) for s in (spec, served))
    assert (before.state_bytes(4, 2), after.state_bytes(4, 2)) == (2048 * 3 * 2 + 131072 * 2, 2048 * 7 * 2 + 131072 * 2)
    case = next(c for c in DATA["cases"] if (c["inputs"]["speculative_config"] or {}).get("method") == "ngram"
                and c["inputs"]["model"].startswith("Qwen/Qwen3-Next"))
    assert {g["blocks_per_request"] for g in case["kv"]["groups"] if g["kind"] == "mamba"} == {6}


@pytest.mark.parametrize("value, words", [
    ('{"method": "eagle", "num_speculative_tokens": 2}', "method eagle needs \"model\""),
    ('{"method": "medusa", "model": "x", "num_speculative_tokens": 2}', "'medusa' is not modelled yet"),
    ('{"method": "eagle3", "model": "Qwen/Qwen3-8B", "num_speculative_tokens": 2}', "is not a Llama head"),
    ('{"method": "draft_model", "num_speculative_tokens": 2}', "method draft_model needs \"model\""),
    ('{"model": "nowhere/no-such-draft", "num_speculative_tokens": 2}',
     "draft model 'nowhere/no-such-draft' cannot be read"),
    ('{"model": "Qwen/Qwen3-8B", "num_speculative_tokens": 2}', "has vocab_size 151936, the target 129280"),
    ('{"method": "lookahead", "num_speculative_tokens": 2}', "is not one of vLLM's speculative methods"),
    ('{"method": "mtp"}', "num_speculative_tokens is missing"),
    ('{"method": "mtp", "num_speculative_tokens": 0}', "must be a whole number, 1 or more"),
    ('{"method": "mtp", "num_speculative_tokens": true}', "must be a whole number, 1 or more"),
    ('{"method": "mtp", "num_speculative_tokens": 3,', "must be a JSON object"),
    ('[1, 2]', "must be a JSON object"),
    ('{"num_speculative_tokens": 2}', "names neither a method nor a model"),
])
def test_bad_configs_are_one_line(value, words):
    run = run_kvplan("estimate", V3, "-tp", "8", "--speculative-config", value)
    assert run.returncode == 2 and run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert run.stderr.count("--speculative-config") >= 1 and words in run.stderr


def test_models_without_mtp_layers_releases_and_pipelines():
    for args, words in ((("meta-llama/Llama-3.1-8B-Instruct",), "needs the model's own MTP layers"),
                        ((V3, "-tp", "8", "--engine", "vllm==0.30.0"), "is modelled as vLLM 0.32 treats it"),
                        ((V3, "-tp", "8", "-pp", "2"), "not modelled with pipeline parallelism")):
        run = run_kvplan("estimate", *args, "--speculative-config", MTP)
        assert run.returncode == 2 and words in run.stderr and len(run.stderr.splitlines()) == 1


def test_the_estimate_says_what_is_counted_and_check_takes_the_key(tmp_path):
    run = run_kvplan("estimate", V3, "-tp", "8", "--gpu", "h200", "-c", "32K", "--speculative-config", MTP)
    text = " ".join(run.stdout.split())
    assert "its memory is counted (draft weights, KV layers), not its speed-up" in text
    assert "1 of 62 cache layers are the drafter's MTP modules'" in text
    path = tmp_path / "d.yaml"
    path.write_text(f"deployments:\n  - name: v3\n    model: {V3}\n    tp: 8\n    gpu: h200\n    context: 32768\n"
                    "    speculative_config: {method: mtp, num_speculative_tokens: 1}\n")
    result = run_kvplan("check", "--file", path, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["kv_bytes_per_token_per_gpu"] == 62 * 576 * 2
    path.write_text(f"deployments:\n  - name: v3\n    model: {V3}\n    tp: 8\n"
                    "    speculative_config: {method: eagle3}\n")
    bad = run_kvplan("check", "--file", path)
    assert bad.returncode == 2 and "speculative_config" in bad.stderr and len(bad.stderr.splitlines()) == 1


def test_the_data_is_vllms_own():
    assert DATA["header"]["vllm_version"] == "0.32.0"
    assert {c["draft"]["architecture"] for c in DATA["cases"] if c["draft"]} == {
        "DeepSeekMTPModel", "Qwen3NextMTP", "LlamaForCausalLM", "EagleLlamaForCausalLM", "LlamaForCausalLMEagle3"}
