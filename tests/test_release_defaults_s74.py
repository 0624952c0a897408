"""Session 74: every reader of a model planned under a vLLM release fills the config's omitted fields with the
transformers that release installed (class_defaults.TRANSFORMERS_SINCE, through one helper:
engines/vllm_versions.py release_transformers), not only estimate and check:

R1  `kvplan verify --engine vllm==X`: its spec, its plan and the forward's shapes (verify/arch.py reads the raw
    config with the spec's table: ModelSpec.transformers). verify takes every published release (0.2.0-0.34.0), so
    the oldest table applies: before, a Gemma-2 config without its widths was verified under 0.6.4 with 5.22's 4 KV
    heads and 9,216-wide MLP, where 0.6.4's transformers 4.45.2 fills 16 and 24,576 (estimate read 16 already).
R2  a --speculative-config draft model: vLLM 0.32.0 config/speculative.py:1289 builds the draft's ModelConfig,
    which reads its config through get_config (config/model.py:669) in the one transformers installed, as the
    target's. kvplan models drafters from 0.32 on only (vllm_speculative.SINCE), and every release from 0.26 reads
    the newest table, so today no modelled release reads a draft otherwise: the test moves the table cut to 0.33 to
    show the draft follows the release's table, and checks the real release's figures too.

Figures by hand below."""

from __future__ import annotations

import ast
import json

import pytest
from conftest import ROOT

from kvplan.engines.vllm_versions import parse_version, release_transformers
from kvplan.model import class_defaults
from kvplan.model.class_defaults import transformers_for
from kvplan.model.parse import parse_config
from kvplan.plan.catalog import find_gpu

# Gemma-2-9B's shape without intermediate_size and num_key_value_heads (test_transformers_4x_defaults_s73.py's):
# transformers 4.45.2 Gemma2Config fills 24,576 and 16 (Gemma 1's), 4.47 on 9,216 and 4
GEMMA2 = {"model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"], "hidden_size": 3584, "num_hidden_layers": 42,
          "num_attention_heads": 16, "head_dim": 256, "vocab_size": 256000, "torch_dtype": "bfloat16",
          "sliding_window": 4096, "max_position_embeddings": 8192}


def _layer_parameters(kv_heads: int, width: int) -> int:
    """One Gemma-2-9B decoder layer: q and o 2 x 3584 x 4096 = 29,360,128, k and v 2 x 3584 x (kv_heads x 256),
    MLP 3 x 3584 x width, four norms 4 x 3,584 = 14,336."""
    return 29_360_128 + 2 * 3584 * kv_heads * 256 + 3 * 3584 * width + 14_336


def test_one_helper_gives_the_release_table():
    """release_transformers is transformers_for of the parsed release (None for --engine none), and no other module
    spells that conversion again."""
    for version in ("0.6.4", "0.6.5", "0.19.1", "0.23.0", "0.26.0", "0.34.0"):
        assert release_transformers(version) == transformers_for(parse_version(version))
    assert [release_transformers(v) for v in ("0.6.4", "0.6.5", "0.22.1", "0.25.1", "0.26.0", None)] == \
        ["4.45.2", "4.57.6", "5.5.4", "5.12.0", None, None]
    callers = []
    for path in sorted((ROOT / "kvplan").rglob("*.py")):
        tree = ast.parse(path.read_text())
        callers += [path.relative_to(ROOT).as_posix() for node in ast.walk(tree) if isinstance(node, ast.Call)
                    and getattr(node.func, "id", getattr(node.func, "attr", None)) == "transformers_for"]
    # class_defaults reads it for filled_since (releases as tuples); the helper, for every command
    assert sorted(set(callers)) == ["kvplan/engines/vllm_versions.py", "kvplan/model/class_defaults.py"]


# ---- R1: verify ---------------------------------------------------------------------------------------------------

@pytest.fixture
def handed(monkeypatch) -> list:
    """verify's (spec, raw config, options) as it hands them to the GPU stage, which is not run: no CUDA needed."""
    from kvplan.gpu import nvml, verify_run

    seen = []
    monkeypatch.setattr(nvml, "import_stack", lambda: (None, None))
    monkeypatch.setattr(verify_run, "verify_rank", lambda spec, raw, opts, progress: seen.append((spec, raw, opts))
                        or {})
    return seen


@pytest.mark.parametrize("release, kv_heads, width", [("0.6.4", 16, 24576), ("0.6.5", 4, 9216), ("0.34.0", 4, 9216)])
def test_verify_reads_the_release_transformers(write_config, handed, release, kv_heads, width):
    """The spec verify plans, the plan it judges (gpu/verify_run.py: resolve_options, then predicted_plan, on the
    catalog's H100) and the forward it would build (verify/arch.py) all read 4.45.2's widths under 0.6.4 and 4.47's
    on from 0.6.5. Parameters: 42 layers (_layer_parameters), the tied embedding 256,000 x 3,584 = 917,504,000 and
    the final norm 3,584: 14,482,488,832 (16 KV heads, 24,576) or 6,621,314,560 (4, 9,216); bf16, twice that in
    bytes. KV a token, every layer: 2 (K, V) x kv_heads x 256 x 2 bytes x 42 = 688,128 or 172,032."""
    from kvplan.commands.verify import verify
    from kvplan.gpu import rank as R
    from kvplan.verify.arch import architecture
    from kvplan.verify.shards import weight_bytes

    verify(str(write_config(GEMMA2)), engine=f"vllm=={release}", context=4096)
    (spec, raw, opts), = handed
    parameters = 42 * _layer_parameters(kv_heads, width) + 917_504_000 + 3584
    assert parameters == {16: 14_482_488_832, 4: 6_621_314_560}[kv_heads]
    assert (spec.kv_heads, spec.intermediate_size, spec.weights.parameters) == (kv_heads, width, parameters)
    arch = architecture(raw, spec, 1)
    assert (arch.kv_heads, arch.intermediate) == (kv_heads, width)
    assert weight_bytes(arch) == 2 * parameters
    gpu = find_gpu("H100")
    plan = R.predicted_plan(spec, R.resolve_options(spec, opts, gpu, gpu.memory_bytes), gpu, gpu.memory_bytes)
    assert plan.kv_bytes_per_token == 2 * kv_heads * 256 * 2 * 42 == {16: 688_128, 4: 172_032}[kv_heads]
    assert plan.budget.weights_bytes_per_gpu == 2 * parameters


def test_verify_s_forward_follows_the_spec_table():
    """architecture() reads the raw config as its spec was read: the same raw, parsed under 4.45.2 and the newest,
    builds 16 KV heads of a 24,576-wide MLP and 4 of 9,216."""
    from kvplan.verify.arch import architecture

    shapes = [(a.kv_heads, a.intermediate) for a in (architecture(GEMMA2, parse_config(GEMMA2, "g", transformers=t), 2)
                                                    for t in ("4.45.2", None))]
    assert shapes == [(16, 24576), (4, 9216)]


# ---- R2: a speculative draft --------------------------------------------------------------------------------------

# a Gemma-2-2B-like draft without its widths (16 heads so that 4.45.2's 16 KV heads are valid), the target's
# vocabulary; and the target with both widths given, whichever table reads it
DRAFT = {**GEMMA2, "hidden_size": 2304, "num_hidden_layers": 26}
TARGET = {**GEMMA2, "intermediate_size": 14336, "num_key_value_heads": 8}


def _drafted(write_config):
    """The target planned by estimate (kvplan.api, vLLM 0.32.0, 4,096 tokens on an H100) with the draft model
    drafting 2 tokens, and without it."""
    import kvplan.api as api

    target, draft = write_config(TARGET), write_config(DRAFT, "draft.json")
    asked = dict(max_model_len=4096, gpu="H100", engine="vllm==0.32.0")
    (drafted,), (plain,) = (api.estimate(str(target), **asked, speculative_config=spec) for spec in (
        {"model": str(draft), "num_speculative_tokens": 2}, None))
    return drafted, plain


def _draft_parameters(kv_heads: int, width: int) -> int:
    """The draft: 26 layers of q and o 2 x 2304 x 4096 = 18,874,368, k and v 2 x 2304 x kv_heads x 256 (4,718,592
    or 18,874,368), MLP 3 x 2304 x width (63,700,992 or 169,869,312), four norms 4 x 2,304 = 9,216; the tied
    embedding 256,000 x 2,304 = 589,824,000 and the final norm 2,304: 26 x 87,303,168 + 589,826,304 =
    2,859,708,672, or 26 x 207,627,264 + 589,826,304 = 5,988,135,168."""
    return 26 * (18_874_368 + 2 * 2304 * kv_heads * 256 + 3 * 2304 * width + 9216) + 589_824_000 + 2304


def test_a_draft_reads_the_newest_table_under_a_modelled_release(write_config):
    """vLLM 0.32.0 (transformers 5.19.0, read as 5.22.2's table): the draft's 4 KV heads and 9,216-wide MLP. KV a
    token: the target's 42 x 2 x 8 x 256 x 2 = 344,064 and the draft's 26 x 2 x 4 x 256 x 2 = 106,496; weights
    grow by the draft's bf16 parameters, 2 x 2,859,708,672."""
    drafted, plain = _drafted(write_config)
    assert plain.kv_bytes_per_token == 344_064
    assert drafted.kv_bytes_per_token == 344_064 + 106_496
    assert _draft_parameters(4, 9216) == 2_859_708_672
    assert drafted.budget.weights_bytes_per_gpu - plain.budget.weights_bytes_per_gpu == 2 * 2_859_708_672


def test_a_draft_follows_the_release_table(write_config, monkeypatch):
    """With the table cut moved so that 0.32.0 installs 4.45.2 (as 0.6.4 does), the draft is read with Gemma2Config
    4.45.2's 16 KV heads and 24,576-wide MLP: KV a token 26 x 2 x 16 x 256 x 2 = 425,984 beside the target's
    344,064 (its widths given: unchanged); weights grow by 2 x 5,988,135,168 (_draft_parameters)."""
    monkeypatch.setattr(class_defaults, "TRANSFORMERS_SINCE", (((0, 33, 0), "5.22.2"), ((0, 0), "4.45.2")))
    assert release_transformers("0.32.0") == "4.45.2"
    drafted, plain = _drafted(write_config)
    assert plain.kv_bytes_per_token == 344_064
    assert drafted.kv_bytes_per_token == 344_064 + 425_984
    assert _draft_parameters(16, 24576) == 5_988_135_168
    assert drafted.budget.weights_bytes_per_gpu - plain.budget.weights_bytes_per_gpu == 2 * 5_988_135_168
