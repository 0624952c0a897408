"""Parameter groups against exact public counts and hand arithmetic.

Every count below is an equality. Expected numbers are either public figures (cited where they are used) or
worked out by hand from the tensor shapes the family's modeling code declares; none is produced by kvplan."""

import pytest

from conftest import load_yaml
from hub_configs import (DEEPSEEK_V2_LITE, DEEPSEEK_V3, GPT2, GPT_OSS_20B, JAMBA, LLAMA2_7B, LLAMA3_8B,
                         LLAMA4_SCOUT, NEMOTRON_H_8B, QWEN2_5_7B, QWEN3_NEXT_80B)
from kvplan.model import parse_config
from kvplan.model.config import Config
from kvplan.model.layers import ffn_kinds
from kvplan.model.sources import bundled_files


BUNDLED = {entry["id"]: entry for entry in (load_yaml(path.read_text()) for path in bundled_files())}


def spec_of(name):
    return BUNDLED[name]


def groups(config):
    spec = parse_config(config, "test")
    return {g.name: g.parameters for g in spec.params}


# ---- the checkpoint holds more than the config describes: what, by hand ----------------------------------------

def deepseek_v3_mtp_layer():
    """DeepSeek V3/R1 ship one multi-token-prediction layer (num_nextn_predict_layers 1) that vLLM does not load
    for the main model: a MoE decoder layer plus enorm, hnorm, eh_proj (2h -> h), shared_head.norm, and its own
    copies of embed_tokens and shared_head.head (vocab x h each)."""
    h, vocab = 7168, 129280
    attention = (1536 * h + 1536 + 128 * 192 * 1536  # q_a_proj, q_a_layernorm, q_b_proj (128 heads x 192)
                 + 576 * h + 512 + 128 * 256 * 512  # kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj
                 + h * 128 * 128)  # o_proj
    moe = 256 * 3 * 2048 * h + 3 * 2048 * h + 256 * h + 256  # experts, shared expert, gate, score correction
    return attention + moe + 2 * h + 3 * h + 2 * h * h + 2 * vocab * h


# 128x128-block float32 scales of every fp8 matrix in the checkpoint (61 layers + MTP), which safetensors.total
# counts as elements: the yaml's F32 total 41,555,600 less the 59 layers x 256 float32 score corrections.
DEEPSEEK_V3_SCALES = 41_555_600 - 59 * 256

QWEN3_NEXT_MTP = (  # Qwen3-Next's MTP block (vLLM qwen3_next.py drops the "mtp." weights): one full-attention MoE
    # layer (q_proj doubled for the output gate, q/k norms, 512 experts, shared expert + gate, router, 2 norms),
    # fc (2h -> h), pre_fc_norm_hidden, pre_fc_norm_embedding and its final norm; h = 2048.
    2048 * 8192 + 2 * 2048 * 512 + 4096 * 2048 + 2 * 256
    + 512 * 3 * 2048 * 512 + 3 * 2048 * 512 + 2048 + 512 * 2048 + 2 * 2048
    + 2 * 2048 * 2048 + 3 * 2048)

# DeepSeek-V3.2's lightning indexer, a layer (its MTP layer's included): wq_b 8,192 x 1,536, wk 128 x 7,168,
# weights_proj 64 x 7,168, k_norm weight and bias; the fp8 wq_b's and wk's 128x128 block scales (64 x 12, 1 x 56).
DSA_INDEXER, DSA_INDEXER_SCALES = 8192 * 1536 + 192 * 7168 + 2 * 128, 64 * 12 + 56

# Kimi-K2-Instruct's float32 128x128 block scales (its report's tensor list, by hand): per layer q_a 12 x 56, q_b
# 96 x 12, kv_a 5 x 56, kv_b 128 x 4, o 56 x 64; layer 0's dense MLP 3 x 144 x 56; 60 MoE layers of 384 routed and
# one shared expert, 3 x 16 x 56 each. No MTP layer (num_nextn_predict_layers 0).
KIMI_K2_SCALES = 61 * (672 + 1152 + 280 + 512 + 3584) + 3 * 144 * 56 + 60 * 385 * 3 * 16 * 56

# MiniMax-M2.7's float32 128x128 block scales (its report's tensor list, by hand): per layer q 48 x 24, k and v
# 8 x 24 each, o 24 x 48, and 256 routed experts of w1 / w3 12 x 24 and w2 24 x 12. No MTP layer ships.
MINIMAX_M2_7_SCALES = 62 * (2 * 1152 + 2 * 192 + 256 * 3 * 288)

# What each cited count holds beyond the config's resident weights, and why.
BEYOND_CONFIG = {
    "deepseek-ai/DeepSeek-V3.2": deepseek_v3_mtp_layer() + DSA_INDEXER + DEEPSEEK_V3_SCALES + 62 * DSA_INDEXER_SCALES,
    "deepseek-ai/DeepSeek-V3": deepseek_v3_mtp_layer() + DEEPSEEK_V3_SCALES,
    # Kimi-K2-Instruct: its block scales and 61 rotary_emb.inv_freq buffers of 56 bf16 values, as its report lists
    "moonshotai/Kimi-K2-Instruct": KIMI_K2_SCALES + 61 * 56,
    "MiniMaxAI/MiniMax-M2.7": MINIMAX_M2_7_SCALES,
    "deepseek-ai/DeepSeek-R1": deepseek_v3_mtp_layer() + DEEPSEEK_V3_SCALES,
    "Qwen/Qwen3-Next-80B-A3B-Thinking": QWEN3_NEXT_MTP,
    # Llama 2's safetensors store rotary_emb.inv_freq buffers (head_dim / 2 = 64 floats per layer).
    "meta-llama/Llama-2-7b-hf": 32 * 64,
    "meta-llama/Llama-2-70b-hf": 80 * 64,
    # Falcon's counts are .bin total_size / 2, and those shards store the tied lm_head a second time.
    "tiiuae/falcon-7b": 65024 * 4544,
    "tiiuae/falcon-40b": 65024 * 8192,
}


def exact_counts():
    for name, entry in BUNDLED.items():
        exact = (entry.get("weights") or {}).get("parameters")
        if exact:
            yield pytest.param(entry, exact, id=name)


@pytest.mark.parametrize("entry,exact", list(exact_counts()))
def test_bundled_exact_parameter_counts(entry, exact):
    """Every bundled model with a cited exact count: equal, once what the checkpoint stores beyond the resident
    weights (BEYOND_CONFIG, by hand) is added. Gemma 3 and Llama 4 counts include the vision tower, modelled."""
    estimate = parse_config(entry["config"], entry["id"]).weights.parameters
    assert estimate + BEYOND_CONFIG.get(entry["id"], 0) == exact


def test_counts_without_checkpoint_extras():
    # Llama 2 without its inv_freq buffers: GGUF general.parameter_count 6738415616 (Ollama model_info, search
    # index id 2821639889; KerasHub llama_7b_en preset); 70B: 68976648192 (togethercomputer/llama-2-70b in a public
    # parameter table, search index id 4120541175).
    assert parse_config(LLAMA2_7B, "x").weights.parameters == 6_738_415_616
    assert parse_config(spec_of("meta-llama/Llama-2-70b-hf")["config"], "x").weights.parameters == 68_976_648_192
    # GPT-2: GPT2LMHeadModel "all params: 124439808" (search index id 58641530465); tied head, learned positions.
    assert parse_config(GPT2, "x").weights.parameters == 124_439_808


def test_mtp_blocks_are_counted_apart_and_never_resident():
    """The multi-token-prediction blocks, counted from the config, equal the hand counts above; the bundled
    checkpoint size holds them, what serving loads does not (vLLM 0.32: deepseek_v2.py load_weights skips spec
    layers, qwen3_next.py maps "mtp." to None)."""
    from kvplan.model.sources import resolve

    next_spec = resolve("Qwen/Qwen3-Next-80B-A3B-Thinking")
    assert next_spec.mtp == (QWEN3_NEXT_MTP, 2 * QWEN3_NEXT_MTP)  # bf16
    assert next_spec.resident_weight_bytes == next_spec.weights.bytes - 2 * QWEN3_NEXT_MTP
    v3 = resolve("deepseek-ai/DeepSeek-V3")
    assert v3.mtp[0] == deepseek_v3_mtp_layer()
    # the checkpoint's stored bytes from the cited per-dtype parameter counts (BF16, F8_E4M3, F32), by hand
    stored = 3_918_786_560 * 2 + 680_571_043_840 + 41_555_600 * 4
    assert abs(v3.weights.bytes / stored - 1) < 1e-4
    assert v3.resident_weight_bytes == v3.weights.bytes - v3.mtp[1]
    # the vLLM 0.32 budget loads the resident weights: Qwen3-Next over 2 GPUs, one half each
    from conftest import run_kvplan
    import json

    r = run_kvplan("estimate", "Qwen/Qwen3-Next-80B-A3B-Thinking", "--gpu", "h200", "-tp", "2", "--format", "json")
    plan = json.loads(r.stdout)["plans"][0]
    weights = next(t for t in plan["budget"]["terms"] if t["name"] == "weights")
    # ... but for what each rank holds whole (vLLM's ReplicatedLinear and norms), by hand, bf16: routers 48 x 512 x
    # 2,048, shared-expert gates 48 x 2,048, norms 48 x 2 x 2,048 + 2,048 + q/k norms 12 x 2 x 256 = 50,634,752
    # parameters, 101,269,504 bytes: each rank holds the other half too
    assert weights["bytes"] == -(-next_spec.resident_weight_bytes // 2) + 101_269_504 // 2
    # an estimate from the config never held them: nothing to take off
    bare = parse_config(spec_of("Qwen/Qwen3-Next-80B-A3B-Thinking")["config"], "x")
    assert bare.mtp[0] == QWEN3_NEXT_MTP and bare.resident_weight_bytes == bare.weights.bytes


# ---- hybrid families --------------------------------------------------------------------------------------------

def test_jamba_v0_1():
    """ai21labs/Jamba-v0.1: 51,570,323,328 parameters, reproduced exactly by a public model builder (search index
    id 69433612685). A public test's ground truth from the checkpoint's index total_size / 2 reads 51.574B (search
    index id 71352361367): the 3.67M difference is A_log (28 x 8192 x 16) stored in float32. The test config
    leaves expert_layer_period/offset, mamba_dt_rank and the bias flags to JambaConfig's defaults (2, 1,
    ceil(4096/16) = 256, conv bias on, projection bias off), which are Jamba-v0.1's values."""
    g = groups(JAMBA)
    assert sum(g.values()) == 51_570_323_328
    # 4 attention layers (offset 4, period 8) of GQA 32/8, head_dim 128.
    assert g["attention"] == 4 * (2 * 4096 * 4096 + 2 * 1024 * 4096)
    # 28 Mamba-1 layers, inner 8192, state 16, dt_rank 256, conv 4: in_proj, conv + bias, x_proj, dt_proj + bias,
    # A_log, D, out_proj, and Jamba's dt/B/C layernorms.
    mamba = (2 * 8192 * 4096 + 8192 * 4 + 8192 + (256 + 32) * 8192 + 8192 * 256 + 8192 + 8192 * 16 + 8192
             + 4096 * 8192 + 256 + 16 + 16)
    assert g["linear"] == 28 * mamba
    # Odd layers (period 2, offset 1) are MoE: 16 experts of 3 x 4096 x 14336 and a 16 x 4096 router.
    assert g["experts"] == 16 * 16 * 3 * 4096 * 14336
    assert g["router"] == 16 * 16 * 4096
    assert g["dense"] == 16 * 3 * 4096 * 14336
    assert g["norms"] == 32 * 2 * 4096 + 4096


def test_nemotron_h_8b():
    """nvidia/Nemotron-H-8B-Base-8K: 8,100,852,736 parameters, in a public architecture analysis of the Hugging
    Face model (search index id 1020265066) and a public parameter table ("nemotron_h_8b.json | 8,100,852,736 |
    Authoritative Base-8K architecture", search index id 69403597461)."""
    g = groups(NEMOTRON_H_8B)
    assert sum(g.values()) == 8_100_852_736
    # 24 Mamba-2 blocks: 128 heads x 64, 8 groups, state 128: in_proj yields z, x, B, C, dt; conv over x, B, C.
    inner, conv = 128 * 64, 128 * 64 + 2 * 8 * 128
    mamba2 = (4096 * (2 * inner + 2 * 8 * 128 + 128) + conv * 4 + conv + 3 * 128 + inner + 4096 * inner)
    assert g["linear"] == 24 * mamba2
    assert g["attention"] == 4 * (2 * 4096 * 4096 + 2 * 1024 * 4096)  # 4 '*' blocks, no MLP in them
    assert g["dense"] == 24 * 2 * 4096 * 21504  # 24 '-' blocks: relu2 up and down, no gate
    assert g["norms"] == 52 * 4096 + 4096  # one norm per block
    assert g["experts"] == g["router"] == 0


def _script_config(name):
    """A config the vLLM reference figures use (benchmarks/vllm_reference/make_figures.py), read from the script's
    source (parsed once per process: engine_vllm_reference.script_config)."""
    from conftest import vllm_reference

    return vllm_reference().script_config(name)


def test_falcon_h1_layers_hold_attention_and_mamba_2_side_by_side():
    """falcon_h1.py FalconH1ParallelHybrid: every layer runs attention and a Mamba-2 mixer on the same input, then a
    gated MLP; the Mamba-2 norm has a weight only with mamba_rms_norm (off by default). 1,554,789,760 parameters by
    hand for the 1.5B's shapes (Falcon-H1-1.5B is published as 1.55B)."""
    cfg = _script_config("FALCON_H1")
    spec = parse_config(cfg, "falcon-h1")
    kinds = [type(layer).__name__ for layer in spec.layers]
    assert kinds == ["FullAttention", "LinearState"] * 24  # a KV cache and a state slot in every layer
    g = groups(cfg)
    assert g["attention"] == 24 * (2048 * 1024 + 2 * 2048 * 256 + 1024 * 2048)
    conv = 3072 + 2 * 256
    assert g["linear"] == 24 * (2048 * (2 * 3072 + 2 * 256 + 48) + conv * 4 + conv + 3 * 48 + 2048 * 3072)
    assert g["dense"] == 24 * 3 * 4608 * 2048
    assert sum(g.values()) == 1_554_789_760  # + embedding and LM head 65537 x 2048, 2 norms a layer, final norm


def test_granite_4_hybrid_names_its_mamba_2_heads_its_own_way():
    """granitemoehybrid (vLLM granitemoehybrid.py): MambaMixer2 of mamba_n_heads x mamba_d_head, mamba_n_groups,
    mamba_d_state; 8 experts of intermediate_size and a shared MLP of shared_intermediate_size in every layer. Read
    as Mamba-1 (mamba_d_state alone), kvplan's vLLM figures were 8.6% off vLLM's own (338.6x concurrency against
    311.9x)."""
    cfg = _script_config("GRANITE_4_TINY")
    spec = parse_config(cfg, "granite-tiny")
    state = spec.linear_layers[0]
    assert (state.flavor, state.conv_elements, state.ssm_elements) == ("mamba2", 3 * (8 * 128 + 2 * 128),
                                                                        8 * 128 * 128)
    g = groups(cfg)
    inner, conv = 8 * 128, 8 * 128 + 2 * 128
    mamba2 = 512 * (2 * inner + 2 * 128 + 8) + conv * 4 + conv + 3 * 8 + inner + 512 * inner
    assert g["linear"] == 6 * mamba2 == 6 * 1_715_480
    assert g["attention"] == 2 * 4 * 512 * 512  # 8 heads x 64, 8 KV heads, no RoPE, no bias
    assert g["experts"] == 8 * 8 * 3 * 512 * 1024
    assert g["shared_experts"] == 8 * 3 * 512 * 512
    assert g["router"] == 8 * 8 * 512
    assert sum(g.values()) == 144_552_080  # + tied embedding 49152 x 512, 2 norms a layer and the final one
    dense = parse_config({**cfg, "num_local_experts": 0, "num_experts_per_tok": 0}, "granite-dense")
    assert {p.name: p.parameters for p in dense.params}["dense"] == 8 * 3 * 512 * 512  # shared_mlp alone


def test_lfm2_short_convolution_blocks():
    """lfm2.py: ten short-convolution blocks (in_proj -> B, C, x; a depthwise conv of conv_L_cache taps; out_proj)
    and six attention blocks with q/k norms, each with Lfm2MLP, whose block_ff_dim 12288 becomes int(2 x 12288 / 3)
    = 8192 (a multiple of 256 already); tied embeddings. LFM2-1.2B's geometry (LiquidAI publishes 1.2B)."""
    cfg = _script_config("LFM2_1_2B")
    spec = parse_config(cfg, "lfm2")
    state = spec.linear_layers[0]
    assert (state.flavor, state.conv_elements, state.ssm_elements, len(spec.linear_layers)) == ("shortconv", 2 * 2048,
                                                                                                0, 10)
    g = groups(cfg)
    assert g["linear"] == 10 * (3 * 2048 * 2048 + 2048 * 3 + 2048 * 2048)
    assert g["attention"] == 6 * (2 * 2048 * 2048 + 2 * 512 * 2048 + 2 * 64)
    assert g["dense"] == 16 * 3 * 8192 * 2048
    assert sum(g.values()) == 1_170_340_608  # + the tied embedding 65536 x 2048, 2 norms a layer, the final norm


def test_lfm2_moe_dense_layers_then_experts():
    """lfm2_moe.py: the first num_dense_layers (2) layers run Lfm2MoeMlp of intermediate_size (7168, no adjusting),
    the other 22 route to 32 experts of 1792 by sigmoid scores with a float32 correction bias (use_expert_bias).
    8,339,930,560 by hand (LFM2-8B-A1B is published as 8.3B)."""
    cfg = _script_config("LFM2_8B_A1B")
    g = groups(cfg)
    assert g["dense"] == 2 * 3 * 7168 * 2048
    assert g["experts"] == 22 * 32 * 3 * 1792 * 2048
    assert g["router"] == 22 * (32 * 2048 + 32)  # the gate and its correction bias
    assert g["linear"] == 18 * (3 * 2048 * 2048 + 2048 * 3 + 2048 * 2048)
    assert sum(g.values()) == 8_339_930_560
    from kvplan.model.routing import routing

    r = routing(Config(cfg, "lfm2-moe"))
    assert (r.scoring, r.correction_bias, r.renormalize) == ("sigmoid", True, True)


def test_qwen3_next_layers():
    g = groups(QWEN3_NEXT_80B)
    # 12 gated-attention layers: q_proj doubled (16 heads x 256 x 2), k/v 2 x 256, o_proj, q/k norms.
    assert g["attention"] == 12 * (2048 * 8192 + 2 * 2048 * 512 + 4096 * 2048 + 2 * 256)
    # 36 gated-DeltaNet layers: key dim 16 x 128, value dim 32 x 128: in_proj_qkvz, in_proj_ba, conv1d over q,k,v,
    # dt_bias, A_log, per-head norm, out_proj.
    key, value = 2048, 4096
    deltanet = (2048 * (2 * key + 2 * value) + 2048 * 64 + (2 * key + value) * 4 + 32 + 32 + 128
                + 2048 * value)
    assert g["linear"] == 36 * deltanet
    assert g["shared_experts"] == 48 * (3 * 2048 * 512 + 2048)  # shared expert + its sigmoid gate
    assert g["experts"] == 48 * 512 * 3 * 2048 * 512
    assert g["router"] == 48 * 512 * 2048


def test_llama4_scout_vision_tower():
    """meta-llama/Llama-4-Scout-17B-16E-Instruct's 108,641,793,536 (its spec) includes the vision tower; the
    test config's vision_config names no intermediate_size, so its tower is left out, not guessed."""
    bundled = parse_config(spec_of("meta-llama/Llama-4-Scout-17B-16E-Instruct")["config"], "x")
    # 34 layers of 1408 (biased q/k/v/o, two LayerNorms, fc1/fc2 to 5632), class + 577 positions, 14x14x3 patch
    # projection, pre/post LayerNorms, pixel-shuffle MLP 5632 -> 4096 -> 4096, projector 4096 -> 5120.
    layer = 4 * (1408 * 1408 + 1408) + 4 * 1408 + 2 * 1408 * 5632 + 5632 + 1408
    vision = 1408 + 577 * 1408 + 1408 * 588 + 4 * 1408 + 34 * layer + 5632 * 4096 + 4096 * 4096 + 4096 * 5120
    assert bundled.param_count("vision") == vision
    trimmed = parse_config(LLAMA4_SCOUT, "x")
    assert trimmed.param_count("vision") == 0
    assert trimmed.weights.parameters + vision == 108_641_793_536


def test_gemma3_siglip_tower():
    g = parse_config(spec_of("google/gemma-3-4b-it")["config"], "x")
    # SigLIP without its pooling head (vision_use_head false): 27 layers of 1152, fc to 4304, 64 x 64 patches.
    layer = 4 * (1152 * 1152 + 1152) + 4 * 1152 + 2 * 1152 * 4304 + 4304 + 1152
    tower = 1152 * 3 * 14 * 14 + 1152 + 4096 * 1152 + 27 * layer + 2 * 1152
    assert g.param_count("vision") == tower + 1152 * 2560 + 1152  # projector to 2560 and its soft norm


# ---- one layer of each kind, by hand -----------------------------------------------------------------------------

def test_llama3_8b_by_hand():
    # embed + untied head: 2 x 128256 x 4096; per layer: q,o 4096x4096, k,v 4096x1024, MLP 3 x 4096 x 14336,
    # two norms; final norm.
    layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    expected = 2 * 128256 * 4096 + 32 * layer + 4096
    weights = parse_config(LLAMA3_8B, "x").weights
    assert weights.parameters == expected == 8_030_261_248
    assert weights.bytes == 2 * expected


def test_qwen2_attention_carries_qkv_biases():
    g = groups(QWEN2_5_7B)  # 28 heads x 128, 4 KV heads: biases on q, k, v, none on o
    assert g["attention"] == 28 * (2 * 3584 * 3584 + 2 * 512 * 3584 + 3584 + 2 * 512)


def test_mla_attention():
    g = groups(DEEPSEEK_V2_LITE)  # no q_lora_rank: q_proj straight from hidden; kv latent 512 + rope 64
    layer = 2048 * 16 * 192 + 2048 * 576 + 512 + 512 * 16 * 256 + 16 * 128 * 2048
    assert g["attention"] == 27 * layer
    assert g["dense"] == 3 * 2048 * 10944  # first_k_dense_replace 1: layer 0 dense
    assert g["experts"] == 26 * 64 * 3 * 2048 * 1408
    assert g["shared_experts"] == 26 * 3 * 2048 * 2 * 1408
    assert g["router"] == 26 * 64 * 2048


def test_gpt_oss_attention_and_experts():
    g = groups(GPT_OSS_20B)  # 64 heads x 64, 8 KV heads: biased q/k/v/o, one sink per head
    assert g["attention"] == 24 * (2 * 2880 * 4096 + 2 * 2880 * 512 + 4096 + 2 * 512 + 2880 + 64)
    # 32 experts: fused gate_up 2880 -> 5760 and down 2880 -> 2880, each with its bias; biased router.
    assert g["experts"] == 24 * 32 * (2880 * 5760 + 5760 + 2880 * 2880 + 2880)
    assert g["router"] == 24 * (32 * 2880 + 32)


def test_expert_fraction_is_routed_experts_without_router():
    spec = parse_config(GPT_OSS_20B, "oss")
    experts = 24 * 32 * (2880 * 5760 + 5760 + 2880 * 2880 + 2880)
    assert spec.expert_fraction == experts / 20_914_757_184
    assert parse_config(LLAMA3_8B, "x").expert_fraction == 0


# ---- which layers are MoE --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields,moe_layers", [
    ({"model_type": "deepseek_v3", "n_routed_experts": 8, "first_k_dense_replace": 3}, [3, 4, 5, 6, 7]),
    ({"model_type": "deepseek_v2", "n_routed_experts": 8, "first_k_dense_replace": 1, "moe_layer_freq": 2,
      "num_experts_per_tok": 2, "n_group": 1, "topk_group": 1},
     [2, 4, 6]),
    ({"model_type": "qwen2_moe", "num_experts": 8, "decoder_sparse_step": 2, "mlp_only_layers": [3]}, [1, 5, 7]),
    ({"model_type": "llama4_text", "num_local_experts": 8, "interleave_moe_layer_step": 2}, [1, 3, 5, 7]),
    ({"model_type": "llama4_text", "num_local_experts": 8, "moe_layers": [0, 7]}, [0, 7]),
    ({"model_type": "jamba", "num_experts": 16}, [1, 3, 5, 7]),
    ({"model_type": "jamba", "num_experts": 16, "expert_layer_period": 4, "expert_layer_offset": 0}, [0, 4]),
    ({"model_type": "mixtral", "num_local_experts": 8}, list(range(8))),
    ({"model_type": "llama"}, []),
    ({"model_type": "nemotron_h", "hybrid_override_pattern": "ME*EM-E-"}, [1, 3, 6]),
])
def test_moe_layer_rules(fields, moe_layers):
    kinds, _ = ffn_kinds(Config(fields, "x"), 8)
    assert [i for i, k in enumerate(kinds) if k == "moe"] == moe_layers


def test_nemotron_blocks_hold_a_mixer_or_a_feed_forward():
    kinds, _ = ffn_kinds(Config({"hybrid_override_pattern": "M-*E"}, "x"), 4)
    assert kinds == ["none", "dense", "none", "moe"]


# ---- stored size ------------------------------------------------------------------------------------------------

def test_mxfp4_at_checkpoint_size():
    # model.safetensors.index.json total_size of openai/gpt-oss-20b: 13761264768 (public copies, search index ids
    # 31112482743, 66618953322); gpt-oss-120b tensor bytes 65248815744 (search index id 59724567210).
    assert parse_config(GPT_OSS_20B, "oss").weights.bytes == 13_761_264_768
    oss_120b = parse_config(spec_of("openai/gpt-oss-120b")["config"], "x").weights
    assert (oss_120b.bytes, oss_120b.dtype) == (65_248_815_744, "mxfp4")


def test_fp8_blocks_at_checkpoint_size():
    """DeepSeek V3's safetensors by dtype (cited in its spec): BF16 3918786560, F8_E4M3 680571043840, F32 41555600,
    MTP layer included. kvplan's bytes plus the MTP layer's bytes (by hand: fp8 matrices with one float32 scale per
    128 x 128 block; norms, router, eh_proj, embedding and head in bf16; score correction float32) match."""
    h, vocab = 7168, 129280

    def fp8(rows, cols):
        return rows * cols + 4 * (-(-rows // 128)) * (-(-cols // 128))

    attention = fp8(1536, h) + fp8(24576, 1536) + fp8(576, h) + fp8(32768, 512) + fp8(h, 16384)
    experts = 257 * (2 * fp8(2048, h) + fp8(h, 2048))  # 256 routed + 1 shared
    bf16 = 1536 + 512 + 256 * h + 2 * h + 3 * h + 2 * h * h + 2 * vocab * h
    mtp = attention + experts + 2 * bf16 + 4 * 256
    assert parse_config(DEEPSEEK_V3, "v3").weights.bytes + mtp == 2 * 3918786560 + 680571043840 + 4 * 41555600


def test_awq_and_per_tensor_fp8_by_hand():
    linear = [(4096, 4096), (1024, 4096), (1024, 4096), (4096, 4096), (14336, 4096), (14336, 4096), (4096, 14336)]
    rest = 2 * 128256 * 4096 + 32 * 2 * 4096 + 4096  # embeddings, head and norms stay bf16
    awq = parse_config({**LLAMA3_8B, "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}},
                       "awq").weights
    # 4-bit weights + per row and 128 inputs one fp16 scale and one 4-bit zero
    assert awq.bytes == 32 * sum(r * c // 2 + r * (c // 128) * 5 // 2 for r, c in linear) + 2 * rest
    assert awq.dtype == "int4-awq"
    fp8 = parse_config({**LLAMA3_8B, "quantization_config": {"quant_method": "fp8"}}, "fp8").weights
    assert fp8.bytes == 32 * sum(r * c + 4 for r, c in linear) + 2 * rest  # one float32 scale per matrix


@pytest.mark.parametrize("name, tps", [("deepseek-ai/DeepSeek-V3", (1, 2, 8, 16)), ("zai-org/GLM-4.7-Flash", (1, 2, 4)),
                                       ("deepseek-ai/DeepSeek-V2-Lite", (2, 4)),
                                       ("mistralai/Mixtral-8x7B-v0.1", (2, 8)),
                                       ("Qwen/Qwen3-Next-80B-A3B-Thinking", (2, 4, 8)),
                                       ("meta-llama/Llama-3.1-70B-Instruct", (2, 8, 16)),
                                       ("MiniMaxAI/MiniMax-M2.7", (1, 2, 4))])
def test_a_gpus_weights_are_what_verify_allocates_on_one_rank(name, tps):
    """The estimate's weights per GPU (plan/sharding.py stage_weights: a 1/tp share but for the replicated tensors of
    model/tensors.py) against the bytes verify allocates on one rank, tensor by tensor as vLLM shards them
    (verify/shards.py, written apart): equal to 0.01% (DeepSeek-V3's checkpoint is 0.006% above its config's count).
    Before the replicated tensors were counted, DeepSeek-V3 at tp 8 was 0.9 GiB (1.1%) short; before one KV head a
    rank, Qwen3-Next at tp 4 (2 KV heads) 12 MiB and Llama-3.1-70B at tp 16 (8) 168 MiB. MiniMax-M2.7's float32
    router (48.8M elements, on every rank) is 4 bytes an element in both: as 2 in verify it was 0.04% short at tp 1.
    (Its fp8 experts' 1,536 rows split into whole 128-row blocks up to tp 4 only.)"""
    from kvplan.model.sources import resolve
    from kvplan.plan.sharding import stage_weights
    from kvplan.verify import architecture, weight_bytes

    raw: list = []
    spec = resolve(name, raw_out=raw)
    for tp in tps:
        rank = weight_bytes(architecture(raw[0], spec, tp))
        assert abs(stage_weights(spec, tp) / rank - 1) < 1e-4, (tp, stage_weights(spec, tp), rank)


def test_falcon_mamba_is_attention_free_mamba_1_blocks():
    """falcon_mamba.py (vLLM's IsAttentionFree): 64 Mamba-1 blocks, no attention and no MLP, one norm a block. By
    hand per block: in_proj 2 x 8192 x 4096, the depthwise conv 8192 x 4 and its bias, x_proj (256 + 2 x 16) x 8192,
    dt_proj 8192 x 256 and its bias, A_log 8192 x 16, D 8192, out_proj 4096 x 8192 (no B / C / dt norm weights:
    Falcon-Mamba's mixer norms have none); untied embedding and LM head 65,024 x 4,096. Falcon-Mamba-7B is published
    as 7.27B. Its state per sequence (vLLM's MambaSpec page in the reference figures: 311,296 bytes in bf16 a layer):
    a 3 x 8192 convolution window and an 8192 x 16 SSM state."""
    cfg = _script_config("FALCON_MAMBA_7B")
    spec = parse_config(cfg, "falcon-mamba")
    state = spec.linear_layers[0]
    assert (state.flavor, state.conv_elements, state.ssm_elements, len(spec.layers)) == ("mamba", 3 * 8192,
                                                                                         8192 * 16, 64)
    assert 2 * (state.conv_elements + state.ssm_elements) == 311_296
    assert spec.num_attention_heads == 0 and spec.kv_heads is None and spec.max_position_embeddings is None
    g = groups(cfg)
    block = (2 * 8192 * 4096 + 8192 * 4 + 8192 + (256 + 32) * 8192 + 8192 * 256 + 8192 + 8192 * 16 + 8192
             + 4096 * 8192)
    assert g["linear"] == 64 * block and g["attention"] == g["dense"] == g["experts"] == 0
    assert g["norms"] == 64 * 4096 + 4096
    assert sum(g.values()) == 7_272_665_088


def test_mamba2_only_is_attention_free_with_one_replicated_group():
    """mamba2.py (vLLM's IsAttentionFree): 48 Mamba-2 blocks, one norm each, no MLP, tied embedding. By hand per
    block: in_proj (2 x 3072 + 2 x 1 x 128 + 48) x 1536, the conv over x, B and C (3,328 channels) x 4 and its bias,
    dt_bias / D / A_log per head, the gated norm 3072, out_proj 1536 x 3072; 780,161,280 in all (state-spaces
    mamba2-780m's name). Its one B / C group is replicated on every rank (mamba_mixer2.py
    extra_groups_for_head_shards): at tp 2 a rank's conv window is 3 x (3072 / 2 + 2 x 128), not half of 3 x 3328."""
    cfg = _script_config("MAMBA2_780M")
    spec = parse_config(cfg, "mamba2")
    state = spec.linear_layers[0]
    assert (state.flavor, state.heads, len(spec.layers), spec.num_attention_heads) == ("mamba2", 48, 48, 0)
    assert state.conv_per_gpu(2) == 3 * (1536 + 256)
    assert state.state_elements_per_sequence(2) == 3 * 1792 + 24 * 64 * 128
    assert state.tp_errors(4) == () and state.tp_errors(5)
    g = groups(cfg)
    block = 6448 * 1536 + 3328 * 4 + 3328 + 3 * 48 + 3072 + 1536 * 3072
    assert g["linear"] == 48 * block and g["norms"] == 48 * 1536 + 1536 and g["lm_head"] == 0
    assert sum(g.values()) == 780_161_280
    # ... and its weights: B and C's rows of in_proj (2 x 128 x 1536) and conv channels (256 x 4 + 256) whole on each
    # rank, 48 layers in bf16: 38,141,952 bytes, half of which a tp-2 rank holds beyond its half share
    from kvplan.plan.sharding import stage_weights

    assert sum(p.replicated for p in spec.params if p.name == "linear") == 48 * 2 * (256 * 1536 + 256 * 4 + 256)
    assert stage_weights(spec, 2) - -(-spec.resident_weight_bytes // 2) == pytest.approx(
        48 * (256 * 1536 + 256 * 4 + 256) + (48 * 1536 + 1536), abs=2)  # + the norms, whole too
    # the same rule for a hybrid of one group: Granite 4.0 tiny at tp 2 is a valid split (vLLM runs it; the
    # reference figures hold its tp 2, 4 and 8 start-ups), not "bad TP"
    from kvplan.plan.sharding import shard

    granite = parse_config(_script_config("GRANITE_4_TINY"), "granite")
    assert all(shard(granite, tp).valid for tp in (2, 4, 8))
