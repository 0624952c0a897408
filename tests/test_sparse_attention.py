"""DeepSeek-V3.2's sparse attention (DSA): the indexer key cache, sparse decode reads, the indexer's weights, vLLM
0.32.0's cache rules and top-k buffers, and the refusals. Expected values are hand arithmetic from the config and
vLLM's frozen figures (tests/data/vllm_0.32.0_kv_figures.json cases 790-801, made by vLLM's own code)."""

import json

from conftest import one_error_line, run_kvplan

from kvplan.engines.vllm_kv_dtype import cache_precision
from kvplan.engines.vllm_settings import resolve_settings
from kvplan.engines.vllm_budget import sparse_index_buffers
from kvplan.model.sources import resolve
from kvplan.model.kinds import IndexerKeys
from kvplan.model.precision import PRECISIONS
from kvplan.plan.capacity import read_bytes, token_bytes

V32, V3 = "deepseek-ai/DeepSeek-V3.2", "deepseek-ai/DeepSeek-V3"
GiB = 2**30


def test_every_layer_holds_a_latent_and_an_indexer_key():
    spec = resolve(V32)
    assert len(spec.layers) == 2 * 61 and sum(isinstance(layer, IndexerKeys) for layer in spec.layers) == 61
    key = spec.layers[1]
    assert key.bytes_per_token(8, PRECISIONS["bf16"]) == 128 + 4  # 128 fp8 values, one float32 scale
    # 61 x (576 x 2 + 132) bytes a token on every rank, replicated whatever the TP degree
    assert token_bytes(spec, 8, PRECISIONS["bf16"]) == token_bytes(spec, 1, PRECISIONS["bf16"]) == 61 * 1284


def test_a_decode_step_reads_topk_latents_and_every_key():
    spec, dense = resolve(V32), resolve(V3)
    bf16 = PRECISIONS["bf16"]
    assert read_bytes(spec, 8, bf16, 1000) == 61 * 1000 * (1152 + 132)
    assert read_bytes(spec, 8, bf16, 32768) == 61 * (2048 * 1152 + 32768 * 132)
    assert read_bytes(dense, 8, bf16, 32768) == 61 * 32768 * 1152  # V3: every latent


def test_the_indexer_weights_are_counted():
    """wq_b 8,192 x 1,536, wk + weights_proj (128 + 64) x 7,168, k_norm weight and bias 2 x 128, a layer."""
    per_layer = 8192 * 1536 + 192 * 7168 + 2 * 128
    assert resolve(V32).param_count("attention") - resolve(V3).param_count("attention") == 61 * per_layer


def test_vllm_fp8_is_the_656_byte_sparse_entry_and_bf16_stays():
    spec = resolve(V32)
    assert cache_precision(spec, PRECISIONS["fp8_e4m3"]).name == "fp8_ds_mla"
    assert cache_precision(spec, PRECISIONS["bf16"]).name == "bf16"
    assert cache_precision(resolve(V3), PRECISIONS["fp8_e4m3"]).name == "fp8_e4m3"


def _startup(*args):
    out = json.loads(run_kvplan("estimate", V32, "--gpu", "h100", "--tp", "8", "--format", "json", *args).stdout)
    (plan,) = out["plans"]
    return plan["engine"]


def test_blocks_tokens_and_concurrency_match_vllm():
    """Cases 793 and 799: 40 GiB at 32K. One block is 64 tokens of every layer's latent and key: 61 x 64 x
    (1,152 + 132) = 5,012,736 bytes (bf16), 61 x 64 x (656 + 132) = 3,076,352 (fp8)."""
    bf16 = _startup("--max-model-len", "32768", "--kv-cache-memory-bytes", str(40 * GiB))
    assert (bf16["num_gpu_blocks"], bf16["gpu_kv_cache_tokens"]) == (40 * GiB // 5012736, 548352) == (8568, 548352)
    fp8 = _startup("--max-model-len", "32768", "--kv-cache-memory-bytes", str(40 * GiB), "--kv-cache-dtype", "fp8")
    assert (fp8["num_gpu_blocks"], fp8["gpu_kv_cache_tokens"]) == (40 * GiB // 3076352, 893504) == (13961, 893504)


def test_the_topk_index_buffers_are_counted_with_the_weights():
    """8,192 x 2,048 int32 shared, and per layer (1,024 + 1) rows of 2,048 indices and one count: 512,454,900
    bytes over 61 layers, what vLLM's own model holds (61 SparseMLAIndexGroups, counted on the meta device)."""
    settings = resolve_settings(32768, "NVIDIA H200", 141 * 10**9)
    assert sparse_index_buffers(resolve(V32), settings) == 8192 * 2048 * 4 + 512454900
    assert sparse_index_buffers(resolve(V3), settings) == 0



def test_verify_builds_sparse_attention_and_goes_on_to_the_gpu(monkeypatch):
    """verify used to refuse DSA; now its architecture builds (tests/test_verify_sparse_mla.py runs it) and verify
    goes on to the GPU (stopped here where it would load torch)."""
    from kvplan.errors import KvplanError
    from kvplan.gpu import nvml

    def stop():
        raise KvplanError("stopped before torch")

    monkeypatch.setattr(nvml, "import_stack", stop)
    assert one_error_line(run_kvplan("verify", V32, "--tp", "8")) == "kvplan: error: stopped before torch"


def test_a_sparse_config_kvplan_cannot_size_is_refused(tmp_path):
    """DeepSeek-V4's compressed caches (compress_ratios) and sparse attention on another architecture are not
    sized as dense MLA."""
    config = {"architectures": ["DeepseekV32ForCausalLM"], "model_type": "deepseek_v32", "hidden_size": 7168,
              "num_hidden_layers": 61, "num_attention_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512,
              "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "index_head_dim": 128,
              "index_n_heads": 64, "index_topk": 2048, "vocab_size": 129280, "compress_ratios": [4] * 61}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    line = one_error_line(run_kvplan("estimate", str(path), "--gpu", "h200"))
    assert "compress_ratios" in line
    del config["compress_ratios"]
    path.write_text(json.dumps({**config, "architectures": ["SomeDsaForCausalLM"]}))
    line = one_error_line(run_kvplan("estimate", str(path), "--gpu", "h200"))
    assert "is SomeDsaForCausalLM" in line and "GlmMoeDsaForCausalLM" in line


def test_the_rules_line_says_what_the_indexer_adds():
    out = run_kvplan("estimate", V32, "--gpu", "h200", "--tp", "8", "-c", "32768").stdout
    assert "indexer key of 132 bytes per token" in " ".join(out.split())


def test_a_release_before_v32_refuses_it_and_0_11_serves_it():
    """registry.py lists DeepseekV32ForCausalLM from vLLM 0.11.0 (not in 0.10.2's): an older release does not start
    it, rather than answering with 0.32's sparse rules."""
    from kvplan import api

    old = api.estimate(V32, tensor_parallel_size=8, gpu="h200", max_model_len=32768, engine="vllm==0.10.2")[0]
    assert not old.engine.starts and old.max_concurrency == 0
    assert "['DeepseekV32ForCausalLM'] are not supported for now" in old.engine.refusal.reason
    assert "v0.11.0" in old.engine.refusal.reason
    first = api.estimate(V32, tensor_parallel_size=8, gpu="h200", max_model_len=32768, engine="vllm==0.11.0")[0]
    assert first.engine.starts and first.engine.refusal is None and first.max_concurrency > 0


def test_a_block_size_the_sparse_backends_cannot_page_is_refused():
    """vLLM 0.32's sparse MLA backends take MultipleOf(64) blocks: --block-size 16 leaves no backend (a configuration
    refusal whose remedy names the blocks they take; was exit 2), 128 is served."""
    run = run_kvplan("estimate", V32, "--gpu", "h200", "--tp", "8", "-c", "32768", "--block-size", "16",
                     env={"COLUMNS": "2000"})
    assert run.returncode == 0 and run.stderr == ""
    assert ("does not start: vllm 0.32.0 refuses the configuration: No valid attention backend found for sparse MLA "
            "at block size 16; it starts with --block-size 64, 128.") in run.stdout
    plan = json.loads(run_kvplan("estimate", V32, "--gpu", "h200", "--tp", "8", "-c", "32768", "--block-size", "128",
                                 "--format", "json").stdout)["plans"][0]
    assert plan["block_size"] == plan["engine"]["block_size"] == 128


def test_the_html_page_says_what_the_text_says_of_the_engine():
    """--format html named the fp8 row fp8_e4m3 with no word that vLLM stores fp8_ds_mla, and showed a refused
    start as 0 requests without the refusal; the page now carries both lines the text output prints."""
    import html

    page = html.unescape(run_kvplan("estimate", V32, "--gpu", "h200", "--tp", "8", "-c", "32768", "--kv-cache-dtype",
                                    "fp8", "--format", "html").stdout)
    assert "keeps an fp8_ds_mla cache in vllm where the KV dtype asks fp8 (" in page  # as asked: fp8, not fp8_e4m3
    old = html.unescape(run_kvplan("estimate", V32, "--gpu", "h200", "--tp", "8", "-c", "32768", "--engine",
                                   "vllm==0.10.2", "--format", "html").stdout)
    assert "refuses to start: Model architectures ['DeepseekV32ForCausalLM'] are not supported for now" in old


def test_an_mtp_module_caches_a_latent_and_a_key_and_builds_its_own_index_buffer():
    """vLLM 0.32's V3.2 MTP module (models/deepseek_v32/nvidia/mtp.py) is a sparse decoder layer: an MLA latent
    (576 x 2 bytes) and an indexer key (132) a token, not the key alone, and its own 8,192 x 2,048 int32 top-k
    buffer beside its layer's copy; with one draft token every layer's copy holds min(8,192, 1,024 x 2) + 1 rows."""
    from kvplan.engines.vllm_speculative import speculative_config, with_drafter

    spec = resolve(V32)
    drafted = with_drafter(spec, speculative_config({"method": "mtp", "num_speculative_tokens": 1}), "0.32.0")
    bf16 = PRECISIONS["bf16"]
    assert token_bytes(drafted, 8, bf16) - token_bytes(spec, 8, bf16) == 1152 + 132
    settings = resolve_settings(32768, "NVIDIA H200", 141 * 10**9)
    assert sparse_index_buffers(drafted, settings) == 4 * (2 * 8192 * 2048 + 62 * 2049 * 2049)


def test_fp8_plans_the_656_byte_entry_vllm_keeps_not_a_576_byte_one():
    """vLLM turns --kv-cache-dtype fp8 into fp8_ds_mla for sparse MLA, so the row's bytes a token and a request,
    and its decode reads, are those of the 656-byte entry (61 x (656 + 132) a token), as with fp8_ds_mla asked; the
    dtype column keeps the word asked and its footnote says what vLLM keeps. --engine none keeps per-tensor fp8."""
    def row(*args):
        result = run_kvplan("estimate", V32, "--gpu", "h200", "-tp", "8", "-c", "32K", "--format", "json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["plans"][0]

    fp8, entry, none = row("--kv-cache-dtype", "fp8"), row("--kv-cache-dtype", "fp8_ds_mla"), \
        row("--kv-cache-dtype", "fp8", "--engine", "none")
    assert fp8["kv_dtype"] == "fp8_e4m3" and fp8["kv_dtype_scheme"].startswith("vllm keeps fp8_ds_mla: ")
    assert fp8["kv_bytes_per_token_per_gpu"] == entry["kv_bytes_per_token_per_gpu"] == 61 * (656 + 132)
    for key in ("kv_bytes_per_sequence_per_gpu", "max_concurrency", "decode"):
        assert fp8[key] == entry[key], key
    assert fp8["decode"]["kv_bytes_read_per_sequence"] == 61 * (2048 * 656 + 32768 * 132)
    assert none["kv_bytes_per_token_per_gpu"] == 61 * (576 + 132)


def test_a18_log_lines_from_its_block_count():
    """Ground truth A18 (vLLM issue #31903: DeepSeek-V3.2, TP 8 x PP 4, max_model_len 163,840; GPU and budget not
    in the log): its 1,214,464 tokens are a whole number of the 64-token blocks V3.2 is paged in, and with that
    many blocks kvplan prints the log's two lines (7.41x = 1,214,464 / 163,840, one uniform group)."""
    assert 1_214_464 % 64 == 0
    out = json.loads(run_kvplan("estimate", V32, "--gpu", "h200", "--tp", "8", "--pipeline-parallel-size", "4",
                                "--max-model-len", "163840", "--num-gpu-blocks-override", str(1_214_464 // 64),
                                "--format", "json").stdout)
    engine = out["plans"][0]["engine"]
    assert out["plans"][0]["block_size"] == 64
    assert "GPU KV cache size: 1,214,464 tokens" in engine["log_lines"][-1]
    assert "Maximum concurrency for 163,840 tokens per request: 7.41x" in engine["log_lines"][-1]
