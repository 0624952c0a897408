"""A multimodal model's profile run: vLLM runs the vision tower over a batch of dummy images before the text
forward (kvplan/engines/vllm_profile.py encoder_pass). Expected figures are hand arithmetic from the shapes in the
bundled google/gemma-3-27b-it spec (SigLIP: 896-pixel images of 14-pixel patches, hidden 1152, intermediate 4304;
256 embeddings an image; language model width 5376, bf16)."""

import json

import pytest

from conftest import run_kvplan

GiB = 2**30
GEMMA = "google/gemma-3-27b-it"


def _peak(*args) -> dict:
    result = run_kvplan("estimate", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["plans"]
    return {t["name"]: t for t in row["budget"]["terms"]}["profile_peak"]


def test_gemma3_profiles_32_images_on_an_h200():
    """H200 `vllm serve` defaults: 8,192 batched tokens, so 8,192 // 256 = 32 images of (896 / 14)^2 = 4,096
    patches, 131,072 patches through SigLIP at once. A layer's MLP holds 4 x 1152 + 2 x 4304 = 13,216 bf16 values a
    patch: 131,072 x 13,216 x 2 = 3,464,495,104 bytes; the bf16 pixels 32 x 3 x 896 x 896 x 2 = 154,140,672 beside
    them: 3,618,635,776 (3.37 GiB). The text forward's peak (1.27 GiB) plus the 32 x 256 x 5376 x 2 = 88,080,384
    bytes of cached embeddings is lower, so the vision tower sets the peak."""
    peak = _peak(GEMMA, "--gpu", "h200", "--context", "8192")
    assert peak["bytes"] == 3_618_635_776
    assert "vision tower over 32 images x 4096 patches" in peak["source"]
    assert "32 x 256 embeddings" in peak["source"]


def test_the_image_count_follows_the_batched_tokens():
    """images = max(1, min(max(max_num_batched_tokens, 256) // 256, max_num_seqs x 999)): 2,048 tokens give 8
    images (8 x 4,096 x 13,216 x 2 + 8 x 4,816,896 = 904,658,944 bytes); 100 tokens, less than one image's 256,
    still one (113,082,368); two sequences of 999 images each do not bind."""
    assert _peak(GEMMA, "--gpu", "h200", "--context", "8192", "--max-num-batched-tokens", "2048")["bytes"] == max(
        904_658_944, _text_peak("--max-num-batched-tokens", "2048"))
    one = _peak(GEMMA, "--gpu", "h200", "--context", "8192", "--max-num-batched-tokens", "100")
    assert "over 1 images" in one["source"]
    two_seqs = _peak(GEMMA, "--gpu", "h200", "--context", "8192", "--max-num-seqs", "2")
    assert "over 32 images" in two_seqs["source"]


def _text_peak(*args) -> int:
    """The profile peak without the vision tower (--skip-mm-profiling) plus the 8-image cache (8 x 256 x 5376 x
    2 = 22,020,096 bytes) it would hold through the text forward."""
    return _peak(GEMMA, "--gpu", "h200", "--context", "8192", "--skip-mm-profiling", *args)["bytes"] + 22_020_096


def test_tensor_parallel_splits_the_towers_mlp():
    """vLLM shards SigLIP's fc1 / fc2 over the TP ranks (mm_encoder_tp_mode "weights"): at tp 2 a patch holds
    4 x 1152 + 4304 values: 131,072 x 8,912 x 2 + 154,140,672 = 2,490,368,000 bytes."""
    assert _peak(GEMMA, "--gpu", "h200", "--context", "8192", "--tp", "2")["bytes"] == 2_490_368_000


def test_skip_mm_profiling_leaves_the_text_forward():
    peak = _peak(GEMMA, "--gpu", "h200", "--context", "8192", "--skip-mm-profiling")
    assert peak["bytes"] < 1.5 * GiB and "vision" not in peak["source"]


def test_skip_mm_profiling_needs_the_release_that_has_it():
    """vLLM 0.10.1 added --skip-mm-profiling (vllm#22950); 0.10.0 refuses it, one line, exit 2."""
    assert _peak(GEMMA, "--gpu", "h200", "--context", "8192", "--skip-mm-profiling", "--engine", "vllm==0.10.1")
    run = run_kvplan("estimate", GEMMA, "--gpu", "h200", "--skip-mm-profiling", "--engine", "vllm==0.10.0")
    assert run.returncode == 2 and run.stdout == ""
    assert "--skip-mm-profiling needs vLLM 0.10.1 or later" in run.stderr and len(run.stderr.splitlines()) == 1


@pytest.mark.parametrize("engine, profiled", [
    ("vllm==0.21.0", True),  # Model Runner V1 profiles the tower (gpu_model_runner.py profile_run)
    ("vllm==0.26.0", False),  # V2 for a dense model; its profile_run ran the text forward alone
    ("vllm==0.27.0", True),  # V2 with encoder_runner.profile_encoder_cache
    ("vllm", True),
])
def test_the_model_runner_decides_whether_the_tower_is_profiled(engine, profiled):
    peak = _peak(GEMMA, "--gpu", "h200", "--context", "8192", "--engine", engine)
    assert ("vision tower over 32 images" in peak["source"]) is profiled


def test_a_tower_kvplan_does_not_model_says_so():
    """Qwen3.5 (Qwen3_5ForConditionalGeneration; the bundled config copy names no vision_config): its tower's
    profile pass is not modelled: the peak is the text forward's, and the source says what was left out."""
    peak = _peak("Qwen/Qwen3.5-9B", "--gpu", "h200", "--context", "8192")
    assert "profile pass is not modelled" in peak["source"]


def test_llama4_profiles_three_images_of_seventeen_tiles():
    """Llama 4 Scout at tp 4 on H200s: the tallest image is 16 tiles and a global one, 17 x 144 = 2,448 embeddings,
    so 8,192 // 2,448 = 3 images of 17 x 577 = 9,809 patches (the class token each tile). At tp 4 a patch holds, in
    the rotary step, 3 x 1408 bf16 values whole, 5 x 1408 / 4 = 1,760 of this rank's q/k/v and q/k out, and
    16 x 1408 / 4 = 5,632 bytes of float32 and complex64 q and k: 2 x (4,224 + 1,760) + 5,632 = 17,600 bytes
    (its MLP: 2 x (5,632 + 2,816) = 16,896). 29,427 patches x 17,600 + 3 x 17 x 3 x 336 x 336 x 2 bf16 pixels
    (34,546,176) = 552,461,376 bytes. The text passes after it peak higher: the cached embeddings (3 x 2,448 x 5,120
    x 2 = 75,202,560) under the sampler over 1,024 x 202,048 bf16 logits (413,794,304), with the forward's (8,192 +
    1,024) x 5,120 x 2 hidden states (94,371,840) and the fused-MoE workspace, 8,192 x 1 x (5,120 + 5,120) x 2
    (167,772,160), still held."""
    from kvplan.engines import get_engine
    from kvplan.engines.vllm_profile import encoder_pass
    from kvplan.engines.vllm_runner import model_runner
    from kvplan.model.sources import resolve
    from kvplan.plan.catalog import find_gpu

    peak = _peak("meta-llama/Llama-4-Scout-17B-16E-Instruct", "--gpu", "h200", "--tp", "4", "--context", "8192")
    assert "vision tower over 3 images x 9809 patches" in peak["source"]
    assert "3 x 2448 embeddings" in peak["source"]
    assert peak["bytes"] == 75_202_560 + 413_794_304 + 94_371_840 + 167_772_160
    engine, spec, gpu = get_engine("vllm"), resolve("meta-llama/Llama-4-Scout-17B-16E-Instruct"), find_gpu("h200")
    tower, held, _ = encoder_pass(spec, 4, None, engine.settings(8192, gpu, spec=spec),
                                  model_runner(spec, engine.rules, gpu), False)
    assert (tower, held) == (552_461_376, 75_202_560)


def test_text_models_have_no_tower_pass():
    peak = _peak("meta-llama/Llama-3.1-8B", "--gpu", "h200", "--context", "8192")
    assert "vision" not in peak["source"]


def test_pipeline_stages_after_the_first_skip_the_tower_on_model_runner_v2():
    """V2 profiles the encoder on the first pipeline stage only (v1/worker/gpu/model_runner.py profile_run); V1
    (0.21) on every stage."""
    from types import SimpleNamespace

    from kvplan.engines import get_engine
    from kvplan.engines.vllm_profile import encoder_pass
    from kvplan.engines.vllm_runner import model_runner
    from kvplan.model.sources import resolve
    from kvplan.plan.catalog import find_gpu

    spec, gpu = resolve(GEMMA), find_gpu("h200")
    for engine, second_stage in (("vllm", False), ("vllm==0.21.0", True)):
        model = get_engine(engine)
        settings = model.settings(8192, gpu, 2, spec=spec)
        runner = model_runner(spec, model.rules, None)
        stages = [SimpleNamespace(index=i, is_last=i == 1) for i in (0, 1)]
        profiled = [encoder_pass(spec, 1, s, settings, runner, skip=False) is not None for s in stages]
        assert profiled == [True, second_stage], engine


def test_check_takes_skip_mm_profiling_from_a_deployment(tmp_path):
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: g\n    model: google/gemma-3-27b-it\n    tp: 1\n    gpu: h200\n"
                    "    context: 8192\n    skip_mm_profiling: true\n")
    with_flag = run_kvplan("check", "--file", path, "--format", "json")
    path.write_text(path.read_text().replace("skip_mm_profiling: true", "skip_mm_profiling: \"yes\""))
    quoted = run_kvplan("check", "--file", path)
    assert with_flag.returncode == 0, with_flag.stderr
    assert quoted.returncode == 2 and "'skip_mm_profiling' must be true or false" in quoted.stderr


def test_the_towers_peak_is_what_vllms_own_towers_hold():
    """tests/data/vllm_vision_profile_peak.json: vLLM 0.32.0's SiglipVisionModel (Gemma 3's shapes, all 27 layers)
    and Llama4VisionModel with its projector (Scout's shapes, all 34 layers), bf16, run on the CPU over 1, 2 and 4
    images / tiles, the pixel values and every operator output's storage counted until freed
    (benchmarks/vllm_reference/vision_profile_peak.py). kvplan's tower peak is the same to the byte: 27,608 bytes a
    SigLIP patch; 45,056 a Llama 4 patch (577 a tile) at tp 1, its rotary step's float32 q and k."""
    from pathlib import Path

    from kvplan.engines import get_engine
    from kvplan.engines.vllm_profile import encoder_pass
    from kvplan.engines.vllm_runner import model_runner
    from kvplan.model.sources import resolve
    from kvplan.plan.catalog import find_gpu

    frozen = json.loads((Path(__file__).parent / "data" / "vllm_vision_profile_peak.json").read_text())
    assert frozen["vllm"] == "0.32.0"
    gpu, model = find_gpu("h200"), get_engine("vllm")
    for tower, name in (("siglip", GEMMA), ("llama4", "meta-llama/Llama-4-Scout-17B-16E-Instruct")):
        spec = resolve(name)
        enc, runner = spec.vision_encoder, model_runner(spec, model.rules, None)
        for case in frozen["towers"][tower]["cases"]:
            # the reference runs images of one tile; a Llama 4 image of 17 tiles holds 17 tiles' share
            tiles = 17 if tower == "llama4" else 1
            images = max(1, case["items"] // tiles)
            settings = model.settings(8192, gpu, max_num_batched_tokens=enc.tokens_per_item * images, spec=spec)
            peak, _, source = encoder_pass(spec, 1, None, settings, runner, skip=False)
            assert f"over {images} images" in source
            assert peak * case["items"] == case["peak_bytes"] * tiles * images, (tower, case, peak)


def test_gemma3_on_an_mi300x_profiles_64_images_as_a_public_log_shows():
    """vllm#44952 (2026-06, a ROCm CI run of Gemma 3 with max_num_seqs=256 on an MI300): "profiled 64 image items
    of the maximum feature size". kvplan: the 160 GiB tier of `vllm serve`'s batch defaults (16,384 batched tokens
    from 0.28) over 256 embeddings an image."""
    peak = _peak("google/gemma-3-4b-it", "--gpu", "mi300x", "--context", "8192", "--max-num-seqs", "256")
    assert "vision tower over 64 images" in peak["source"]


def test_verify_plans_a_multimodal_model_without_its_tower():
    """verify builds the language model alone, so it plans as vLLM with --skip-mm-profiling: the peak it compares
    with its measured text forward has no vision pass in it."""
    pytest.importorskip("torch")
    from kvplan.gpu.rank import Options, plan_engine
    from kvplan.model.sources import resolve

    opts = Options(1, 8192, "auto", None, None, None, None)
    assert plan_engine(resolve(GEMMA), opts).flags.skip_mm_profiling
    assert not plan_engine(resolve("meta-llama/Llama-3.1-8B"), opts).flags.skip_mm_profiling


def test_the_budget_line_says_the_tower_is_in_the_peak():
    result = run_kvplan("estimate", GEMMA, "--gpu", "h200", "--context", "8192")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "the profile peak holds the vision tower's pass over 32 dummy images" in text
    skipped = " ".join(run_kvplan("estimate", GEMMA, "--gpu", "h200", "--context", "8192",
                                  "--skip-mm-profiling").stdout.split())
    assert "vision tower" not in skipped


def _terms(*args) -> dict:
    result = run_kvplan("estimate", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["plans"]
    return {t["name"]: t for t in row["budget"]["terms"]}


def test_language_model_only_loads_and_profiles_no_tower():
    """vLLM's --language-model-only (0.17+; every modality's limit 0) builds no tower components
    (interfaces.py _mark_tower_model): Gemma 3's SigLIP and projector, by hand from the shapes: patch embedding
    1152 x 588 + 1152, positions 4096 x 1152, 27 layers of q/k/v/o 4 x (1152^2 + 1152), two LayerNorms 4 x 1152 and
    the MLP 2 x 1152 x 4304 + 4304 + 1152, the post LayerNorm 2 x 1152, the projector 1152 x 5376 and its norm 1152:
    423,060,336 parameters, 846,120,672 bf16 bytes fewer; and no tower pass in the profile peak."""
    args = (GEMMA, "--gpu", "h200", "--context", "8192")
    full, text = _terms(*args), _terms(*args, "--language-model-only")
    assert full["weights"]["bytes"] - text["weights"]["bytes"] == 846_120_672
    assert text["profile_peak"]["bytes"] == _terms(*args, "--skip-mm-profiling")["profile_peak"]["bytes"]
    assert "vision" not in text["profile_peak"]["source"]


def test_language_model_only_needs_the_release_that_has_it():
    run = run_kvplan("estimate", GEMMA, "--gpu", "h200", "--language-model-only", "--engine", "vllm==0.16.0")
    assert run.returncode == 2 and "--language-model-only needs vLLM 0.17 or later" in run.stderr
    assert len(run.stderr.splitlines()) == 1


def test_check_takes_language_model_only_from_a_deployment(tmp_path):
    """The deployment key holds three more Gemma 3 sequences at 8K on an H200: 65 with the tower neither loaded nor
    profiled, 62 with both (test_gemma3_profiles_32_images_on_an_h200). By hand: a pool block is 10 layers x 16
    tokens x 16 KV heads x 128 x 2 x 2 B = 1,310,720 B (7 groups of 10, 8 padding layers); a request needs 7 x 512
    = 3,584 blocks while its 8,192-token prompt is prefilled in one chunk and then keeps 512 full + 6 x 64 sliding
    (the last 1,023 tokens, 7,169-8,191) = 896. Budgets with the 0.705 GiB graph term (the 1.25 GiB term's
    + 585,189,295 B): 77,076,214,070 B = 58,804 blocks, (58,803 - 3,584) // 896 + 1 = 62 with the tower;
    80,261,707,798 B = 61,234 blocks, (61,233 - 3,584) // 896 + 1 = 65 without (the null block never handed out)."""
    entry = "deployments:\n  - name: g\n    model: google/gemma-3-27b-it\n    tp: 1\n    gpu: h200\n    context: 8192\n"
    assert _deployment_counts(tmp_path / "deployments.yaml", entry, "    language_model_only: true\n") == [62, 65]


def _deployment_counts(path, entry: str, extra: str) -> list:
    """max_concurrency of a one-entry deployments file without and with `extra` keys."""
    counts = []
    for text in (entry, entry + extra):
        path.write_text(text)
        result = run_kvplan("check", "--file", path, "--format", "json")
        assert result.returncode == 0, result.stderr
        counts.append(json.loads(result.stdout)["results"][0]["max_concurrency"])
    return counts


def test_a_bad_pixel_shuffle_ratio_is_one_line(write_config):
    from hub_configs import LLAMA4_SCOUT

    vision = {**LLAMA4_SCOUT["vision_config"], "intermediate_size": 5632, "pixel_shuffle_ratio": "half"}
    path = write_config({**LLAMA4_SCOUT, "vision_config": vision})
    run = run_kvplan("estimate", path, "--gpu", "h200", "--tp", "8", "--context", "8192")
    assert run.returncode == 2 and run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert "vision_config.pixel_shuffle_ratio" in run.stderr and "(0, 1]" in run.stderr


def test_short_requests_hold_fewer_images_a_prompt():
    """0.10.2 on a prompt holds max(1, min(999, max_model_len // 256)) images: at --max-model-len 300 one, so with
    --max-num-seqs 16 the decoder budget is 16 images, fewer than the encoder budget's 4,800 // 256 = 18 (vLLM caps
    the batched tokens at max_num_seqs x max_model_len = 4,800)."""
    peak = _peak(GEMMA, "--gpu", "h200", "--context", "300", "--max-num-seqs", "16")
    assert "vision tower over 16 images" in peak["source"]


def test_check_names_a_text_only_deployment_among_the_changes_that_fit():
    """62 Gemma-3-27B sequences at 8K on an H200 and 65 without the tower (the test above): a min_concurrency of 64
    fails, and the changes that would hold it include --language-model-only; a text model's never does."""
    result = run_kvplan("check", GEMMA, "--tp", "1", "--gpu", "h200", "--context", "8192", "--min-concurrency", "64")
    assert result.returncode == 1
    assert "--language-model-only (text only: no vision tower)" in " ".join(result.stdout.split())
    text = run_kvplan("check", "meta-llama/Llama-3.1-8B", "--tp", "1", "--gpu", "l4", "--context", "8192",
                      "--min-concurrency", "64")
    assert text.returncode == 1 and "language-model-only" not in text.stdout


def test_check_says_why_fewer_fit_than_the_bytes_would_hold():
    """Gemma-3-27B at 32K on an H100: 2 resident, and 4 x 2.91 GiB would fit the 16.0 GiB budget as bytes; vLLM's
    seven block groups (one a layer pattern position, equal pages) are what hold only 2, and the error says so."""
    result = run_kvplan("check", GEMMA, "--tp", "1", "--gpu", "h100", "--context", "32768", "--min-concurrency", "4")
    text = " ".join(result.stdout.split())
    assert result.returncode == 1
    assert ("4 need about 11.7 GiB per GPU as bytes, but vLLM's 7 KV-cache block groups (equal pages, padded) hold "
            "only 2") in text


def test_limit_mm_per_prompt_as_vllm_takes_it(tmp_path):
    """An image limit of 0 ('{"image": 0}', image=0, or a deployment's mapping) leaves the tower out as
    --language-model-only does (0.15+: not built; weights and pass); a limit of 1 at --max-num-seqs 16 bounds the
    dummy images at 16 x 1 (below the budget's 8,192 // 256 = 32); bad forms are one line, exit 2."""
    args = (GEMMA, "--gpu", "h200", "--context", "8192")
    text = _terms(*args, "--language-model-only")
    for form in ('{"image": 0}', "image=0", '{"image": {"count": 0}}'):
        zero = _terms(*args, "--limit-mm-per-prompt", form)
        assert zero["weights"]["bytes"] == text["weights"]["bytes"]
        assert zero["profile_peak"]["bytes"] == text["profile_peak"]["bytes"]
    one = _peak(*args, "--max-num-seqs", "16", "--limit-mm-per-prompt", "image=1")
    assert "vision tower over 16 images" in one["source"]
    older = _terms(*args, "--limit-mm-per-prompt", "image=0", "--engine", "vllm==0.14.0")  # tower built, not profiled
    assert older["weights"]["bytes"] == _terms(*args, "--engine", "vllm==0.14.0")["weights"]["bytes"]
    assert "vision tower" not in older["profile_peak"]["source"]
    bad = run_kvplan("estimate", *args, "--limit-mm-per-prompt", "image=-1")
    assert bad.returncode == 2 and "--limit-mm-per-prompt must be vLLM's form" in bad.stderr
    path = tmp_path / "deployments.yaml"
    path.write_text("deployments:\n  - name: g\n    model: google/gemma-3-27b-it\n    tp: 1\n    gpu: h200\n"
                    "    context: 8192\n    limit_mm_per_prompt: {image: 0}\n")
    result = run_kvplan("check", "--file", path, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["max_concurrency"] == 65  # as --language-model-only


def test_every_pipeline_stage_holds_the_tower():
    """vLLM builds a multimodal model's tower and projector on every pipeline rank and loads their weights there
    (gemma3_mm.py and mllama4.py __init__: no get_pp_group() check; 0.8.5 to 0.32.0 read): at pp 2 each of Gemma
    3's two stages holds the 846,120,672 tower bytes counted by hand above, so the stages together hold the model,
    one tower more (kvplan had put it on the first stage only) and the tied embedding again as the last stage's LM
    head (262,208 x 5,376 bf16: 2,819,260,416 bytes); --language-model-only takes the tower off each."""
    from kvplan.engines.vllm_budget import without_towers
    from kvplan.model.sources import resolve
    from kvplan.plan.sharding import pp_stages, stage_weights

    spec = resolve(GEMMA)
    stages = pp_stages(spec.num_hidden_layers, 2)
    held = [stage_weights(spec, 1, s) for s in stages]
    assert sum(held) - stage_weights(spec, 1) == pytest.approx(846_120_672 + 2_819_260_416, abs=2)
    for weights in held:
        assert weights - without_towers(spec, 1, weights, "", "")[0] == 846_120_672


DEVSTRAL = "mistralai/Devstral-Small-2-24B-Instruct-2512"


def _frozen_towers() -> dict:
    from pathlib import Path

    return json.loads((Path(__file__).parent / "data" / "vllm_vision_profile_peak.json").read_text())["towers"]


def test_the_towers_parameters_are_what_vllm_builds():
    """The vision weights kvplan counts against the parameters of vLLM 0.32.0's own modules (frozen by
    benchmarks/vllm_reference/vision_profile_peak.py). Mistral 3's (Devstral-Small-2) by hand: the patch convolution
    1024 x 3 x 14 x 14, ln_pre 1024, 24 layers of q/k/v/o 4 x 1024^2, gate/up/down 3 x 1024 x 4096 and two RMSNorms
    2 x 1024, the projector's RMSNorm 1024, patch merger 4096 x 1024, linears 1024 x 5120 and 5120 x 5120:
    438,958,080, all bf16 (the checkpoint's fp8 skips the tower and projector). kvplan had counted none of them
    (0.82 GiB more weights a GPU at tp 1). Gemma 3's reference builds the SigLIP tower alone: kvplan's count less
    its projector (1152 x 5376) and the projector's norm (1152)."""
    from kvplan.model.sources import resolve

    towers = _frozen_towers()

    def vision(name):
        return next(g.bytes for g in resolve(name).params if g.name == "vision") // 2  # bf16

    hand = (1024 * 3 * 14 * 14 + 1024 + 24 * (4 * 1024 ** 2 + 3 * 1024 * 4096 + 2 * 1024) + 1024 + 4096 * 1024
            + 1024 * 5120 + 5120 * 5120)
    assert hand == 438_958_080 == vision(DEVSTRAL) == towers["pixtral"]["parameters"]
    assert vision("meta-llama/Llama-4-Scout-17B-16E-Instruct") == towers["llama4"]["parameters"]
    assert vision(GEMMA) - 1152 * 5376 - 1152 == towers["siglip"]["parameters"]


def test_devstral_small_2_profiles_two_1540_pixel_images():
    """Mistral 3's dummy image is the processor's longest edge, 1540 pixels: 110 x 110 patches of 14, one embedding
    a 2 x 2 block (55 x 55 = 3,025); 8,192 batched tokens hold two. vLLM's own Pixtral tower and projector on the
    CPU (frozen) hold 38,312 bytes a patch with its pixel values at 280, 560 and 1,540 pixels and 1, 2 and 4 images,
    plus the packed-sequence lengths (int32, images + 2 of them) kvplan leaves out; kvplan: 37,136 a patch (the MLP:
    6 x 1024 + 3 x 4096 values, the rotary cos / sin 2 x 64, the positions 16 bytes) and 3 x 14 x 14 pixel values."""
    from kvplan.model.sources import resolve

    enc = resolve(DEVSTRAL).vision_encoder
    assert (enc.family, enc.tokens_per_item, enc.patches_per_item) == ("pixtral", 3025, 12100)
    per_patch = enc.peak_bytes_per_patch(2, 1)
    assert per_patch == 2 * (6 * 1024 + 3 * 4096 + 2 * 64) + 16 == 37_136
    for case in _frozen_towers()["pixtral"]["cases"]:
        patches = (case["pixels"] // 14) ** 2 * case["items"]
        assert case["peak_bytes"] - 4 * (case["items"] + 2) == patches * (per_patch + 3 * 14 * 14 * 2), case
    peak = _peak(DEVSTRAL, "--gpu", "h200", "--context", "8192")
    assert "vision tower over 2 images x 12100 patches" in peak["source"]


def test_a_multimodal_size_without_its_tower_says_so():
    """Qwen3.5 (Qwen3_5ForConditionalGeneration) is sized from a config copy that names no vision_config: vLLM
    loads a tower kvplan cannot count, and the weights term and the table's weights line say so; the towers kvplan
    counts (Gemma 3, Devstral-Small-2's Pixtral) say nothing of the kind."""
    for name, uncounted in (("Qwen/Qwen3.5-9B", True), (GEMMA, False), (DEVSTRAL, False)):
        terms = _terms(name, "--gpu", "h200", "--context", "8192")
        assert ("no vision tower counted" in terms["weights"]["source"]) is uncounted, name
    table = " ".join(run_kvplan("estimate", "Qwen/Qwen3.5-9B", "--gpu", "h200").stdout.split())
    assert "estimated from config; no vision tower counted (the config names none kvplan sizes; vLLM loads one)" \
        in table


# Qwen/Qwen3-VL-4B-Instruct's config.json as published (the fields kvplan reads)
QWEN3_VL_4B = {
    "architectures": ["Qwen3VLForConditionalGeneration"], "model_type": "qwen3_vl", "tie_word_embeddings": True,
    "text_config": {"head_dim": 128, "hidden_act": "silu", "hidden_size": 2560, "intermediate_size": 9728,
                    "max_position_embeddings": 262144, "model_type": "qwen3_vl_text", "num_attention_heads": 32,
                    "num_hidden_layers": 36, "num_key_value_heads": 8, "rms_norm_eps": 1e-6, "rope_theta": 5000000,
                    "tie_word_embeddings": True, "vocab_size": 151936, "dtype": "bfloat16"},
    "vision_config": {"deepstack_visual_indexes": [5, 11, 17], "depth": 24, "hidden_act": "gelu_pytorch_tanh",
                      "hidden_size": 1024, "in_channels": 3, "intermediate_size": 4096, "model_type": "qwen3_vl",
                      "num_heads": 16, "num_position_embeddings": 2304, "out_hidden_size": 2560, "patch_size": 16,
                      "spatial_merge_size": 2, "temporal_patch_size": 2},
}


# Qwen/Qwen2.5-VL-7B-Instruct's config.json as published (the fields kvplan reads)
QWEN2_5_VL_7B = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl", "hidden_size": 3584,
    "intermediate_size": 18944, "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
    "max_position_embeddings": 128000, "vocab_size": 152064, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
    "torch_dtype": "bfloat16", "tie_word_embeddings": False, "hidden_act": "silu",
    "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
                      "num_heads": 16, "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14,
                      "spatial_merge_size": 2, "spatial_patch_size": 14, "temporal_patch_size": 2,
                      "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2}}
# Qwen2-VL-7B's vision_config (as published) on the Qwen3-VL-4B fixture's language model
QWEN2_VL_7B = {**QWEN3_VL_4B, "architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl",
               "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_chans": 3,
                                 "hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2,
                                 "temporal_patch_size": 2}}


def test_qwen3_vl_counts_vllms_vision_transformer():
    """Qwen3-VL (and Qwen3.5, which builds the same Qwen3_VisionTransformer in vLLM) names its tower by depth and a
    position table: kvplan counted none of it. By hand for Qwen3-VL-4B: the patch Conv3d 1024 x 3 x 2 x 16 x 16 and
    its bias, positions 2304 x 1024, 24 layers of two LayerNorms (4 x 1024), qkv 3072 x 1025, proj 1024 x 1025, fc1
    4096 x 1025, fc2 1024 x 4097, the merger (LayerNorm 2 x 1024, 4096 x 4097, 2560 x 4097) and three deepstack
    mergers (LayerNorm 2 x 4096 each): 415,347,712, as vLLM 0.32.0's module holds (frozen,
    vision_profile_peak.py)."""
    from kvplan.model.parse import parse_config

    spec = parse_config(QWEN3_VL_4B, "qwen3-vl-4b")
    hand = (1024 * 1536 + 1024 + 2304 * 1024 + 24 * (4 * 1024 + 3072 * 1025 + 1024 * 1025 + 4096 * 1025 + 1024 * 4097)
            + 2 * 1024 + 4096 * 4097 + 2560 * 4097 + 3 * (2 * 4096 + 4096 * 4097 + 2560 * 4097))
    vision = next(g.parameters for g in spec.params if g.name == "vision")
    assert hand == vision == _frozen_towers()["qwen3_vl"]["parameters"] == 415_347_712
    assert spec.multimodal and spec.vision_encoder.family == "qwen3_vl" and not spec.tower_uncounted
    from kvplan.errors import KvplanError

    bad = {**QWEN3_VL_4B, "vision_config": {**QWEN3_VL_4B["vision_config"], "deepstack_visual_indexes": "x"}}
    with pytest.raises(KvplanError, match="'vision_config.deepstack_visual_indexes' must be a list"):
        parse_config(bad, "qwen3-vl-bad")


def test_qwen2_5_vl_counts_vllms_vision_transformer():
    """Qwen2.5-VL-7B's vision_config (as published: depth 32, hidden 1280, intermediate 3420, 16 heads, 14-pixel
    patches over 2 frames, window 112, out 3584): vLLM's Qwen2_5_VisionTransformer holds the Conv3d 1280 x 1176
    without bias, 32 layers of two RMSNorms (2 x 1280), qkv 3840 x 1281, proj 1280 x 1281, gate_up 6840 x 1281 and
    down 1280 x 3421, the merger's RMSNorm 1280, 5120 x 5121 and 3584 x 5121: 676,550,144 (frozen, vLLM 0.32.0's
    module)."""
    from kvplan.model.parse import parse_config

    spec = parse_config(QWEN2_5_VL_7B, "qwen2.5-vl-7b")
    hand = (1280 * 1176 + 32 * (2 * 1280 + 3840 * 1281 + 1280 * 1281 + 6840 * 1281 + 1280 * 3421) + 1280
            + 5120 * 5121 + 3584 * 5121)
    vision = next(g.parameters for g in spec.params if g.name == "vision")
    assert hand == vision == _frozen_towers()["qwen2_5_vl"]["parameters"] == 676_550_144
    assert spec.vision_encoder.family == "qwen2_5_vl" and not spec.tower_uncounted


def test_qwen2_vl_counts_vllms_vision_transformer():
    """Qwen2-VL-7B's vision_config (as published: depth 32, embed_dim 1280, mlp_ratio 4, 16 heads, hidden_size
    3584 the language model's width): vLLM's Qwen2VisionTransformer holds the Conv3d 1280 x 1176 without bias, 32
    layers of two LayerNorms (4 x 1280), qkv 3840 x 1281, proj 1280 x 1281, fc1 5120 x 1281 and fc2 1280 x 5121, the
    merger's LayerNorm 2 x 1280, 5120 x 5121 and 3584 x 5121: 675,759,104 (frozen, vLLM 0.32.0's module)."""
    from kvplan.model.parse import parse_config

    spec = parse_config(QWEN2_VL_7B, "qwen2-vl-7b-tower")
    hand = (1280 * 1176 + 32 * (4 * 1280 + 3840 * 1281 + 1280 * 1281 + 5120 * 1281 + 1280 * 5121) + 2 * 1280
            + 5120 * 5121 + 3584 * 5121)
    vision = next(g.parameters for g in spec.params if g.name == "vision")
    assert hand == vision == _frozen_towers()["qwen2_vl"]["parameters"] == 675_759_104


SCOUT = "meta-llama/Llama-4-Scout-17B-16E-Instruct"


def test_encoder_tp_data_holds_the_whole_tower_and_shares_the_tiles():
    """--mm-encoder-tp-mode data (vLLM 0.10.2+; Llama 4's class sets supports_encoder_tp_data): every TP rank builds
    the whole tower and projector (disable_tp) and runs its share of the tiles (vision.py run_dp_sharded_vision_model).
    Llama 4 Scout at tp 4 on H200s: 871,932,416 tower parameters in bf16, 1,743,864,832 bytes whole on each rank
    instead of a quarter (435,966,208): 1,307,898,624 bytes more weights a GPU. Its profile pass: 3 images of 17
    tiles = 51 tiles, 13 a rank, through the whole tower (45,056 bytes a patch at tp 1, 577 patches a tile), beside
    the 51 tiles' pixel values and their copy padded to 52 (3 x 336 x 336 bf16 each):
    13 x 577 x 45,056 + 103 x 677,376 = 407,734,784 bytes."""
    from kvplan.engines import get_engine
    from kvplan.engines.vllm_profile import encoder_pass
    from kvplan.engines.vllm_runner import model_runner
    from kvplan.model.sources import resolve
    from kvplan.plan.catalog import find_gpu

    args = (SCOUT, "--gpu", "h200", "-tp", "4", "--context", "8192")
    weights, data = _terms(*args)["weights"], _terms(*args, "--mm-encoder-tp-mode", "data")["weights"]
    assert data["bytes"] - weights["bytes"] == 1_743_864_832 - 435_966_208 == 1_307_898_624
    assert "the vision tower whole on every rank" in data["source"]
    spec, engine = resolve(SCOUT), get_engine("vllm")
    settings = engine.settings(8192, find_gpu("h200"), spec=spec)
    runner = model_runner(spec, engine.rules, None)
    peak, _, source = encoder_pass(spec, 4, None, settings, runner, False, None, True)
    assert peak == 13 * 577 * 45_056 + 103 * 3 * 336 * 336 * 2 == 407_734_784
    assert "13 of their 51 tiles on this rank (data-parallel)" in source


def test_encoder_tp_data_where_vllm_falls_back_and_where_it_has_no_such_flag():
    """Gemma 3's class does not support data mode: vLLM warns and keeps weights mode, so do kvplan's figures (and
    the weights term says so); a release before 0.10.2 has no such flag; a value other than weights or data is
    refused in one line; a deployments file takes the key."""
    args = (GEMMA, "--gpu", "h200", "-tp", "2", "--context", "8192")
    plain, data = _terms(*args), _terms(*args, "--mm-encoder-tp-mode", "data")
    assert data["weights"]["bytes"] == plain["weights"]["bytes"]
    assert data["profile_peak"]["bytes"] == plain["profile_peak"]["bytes"]
    assert "--mm-encoder-tp-mode data falls back to weights" in data["weights"]["source"]
    old = run_kvplan("estimate", GEMMA, "--mm-encoder-tp-mode", "data", "--engine", "vllm==0.10.1")
    assert old.returncode == 2 and "--mm-encoder-tp-mode needs vLLM 0.10.2 or later" in old.stderr
    bad = run_kvplan("estimate", GEMMA, "--mm-encoder-tp-mode", "both")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "kvplan: error: --mm-encoder-tp-mode must be one of weights, data (vLLM's values), got 'both'.")


def test_a_deployment_takes_mm_encoder_tp_mode(tmp_path):
    path = tmp_path / "deployments.yaml"
    entry = f"deployments:\n  - name: s\n    model: {SCOUT}\n    tp: 4\n    gpu: h200\n    context: 8192\n"
    counts = _deployment_counts(path, entry, "    mm_encoder_tp_mode: data\n")
    assert counts[1] < counts[0]  # 1.2 GiB more weights a GPU
    path.write_text(entry + "    mm_encoder_tp_mode: yes\n")
    result = run_kvplan("check", "--file", path)
    assert result.returncode == 2 and "mm_encoder_tp_mode" in result.stderr and "weights, data" in result.stderr


# kvplan's Qwen tower peak a patch at tp 1 (bf16), by hand from the shapes: the peak layer's values, the rotary cos /
# sin (head_dim), Qwen3-VL's interpolated positions (hidden) and deepstack outputs (3 x 2560 a merged token of 4
# patches), Qwen2.5-VL's window index and its inverse (2 x 8 bytes a merged token)
QWEN_PER_PATCH = {
    # QuickGELU's three 5120-wide tensors beside three 1280-wide (the attention holds 11 x 1280 = 14,080)
    "qwen2_vl": 2 * (3 * 1280 + 3 * 5120 + 80),  # 38,560
    # down_proj beside gate_up (2 x 3420), SiluAndMul's 3420 and five 1280-wide tensors
    "qwen2_5_vl": 2 * (5 * 1280 + 3 * 3420 + 80) + 16 // 4,  # 33,484
    # GELU beside fc1 (2 x 4096) and three 1024-wide, the attention's 11 x 1024 alike
    "qwen3_vl": 2 * (3 * 1024 + 2 * 4096 + 1024 + 64 + 3 * 2560 // 4),  # 28,544
}
QWEN_PIXELS = {"qwen2_vl": 2 * 3 * 2 * 14 * 14, "qwen2_5_vl": 2 * 3 * 2 * 14 * 14, "qwen3_vl": 2 * 3 * 2 * 16 * 16}
QWEN_CONFIGS = {"qwen2_vl": QWEN2_VL_7B, "qwen2_5_vl": QWEN2_5_VL_7B, "qwen3_vl": QWEN3_VL_4B}


def test_the_qwen_towers_peak_is_what_vllms_own_towers_hold():
    """tests/data/vllm_vision_profile_peak.json: vLLM 0.32.0's Qwen2VisionTransformer (Qwen2-VL-7B's shapes),
    Qwen2_5_VisionTransformer (Qwen2.5-VL-7B's) and Qwen3_VisionTransformer (Qwen3-VL-4B's), all their layers, bf16,
    run on the CPU over 1, 2 and 4 items of 16 x 16, 32 x 32 and 64 x 64 patches and 2-frame-step videos of 32 x 32.
    Each case is the hand count a patch (QWEN_PER_PATCH) and its pixel values, plus what the pass holds once for
    the items' one shape: Qwen2.5-VL's cached rotary cos / sin (80 x 2 bytes a patch of one item); and what a GPU
    keeps in host memory where the CPU reference counts it: Qwen2.5-VL's cached window index (8 bytes a merged
    token of one item), Qwen3-VL's cached position ids (16 bytes a patch of one frame). What is left is the grids'
    int32 / int64 bookkeeping (grid_thw, cu_seqlens, Qwen2.5-VL's window bounds): under 64 bytes an item and 64
    more, and 16 a window of 8 x 8 patches; 0.002% of the peak at most."""
    from kvplan.model.parse import parse_config

    towers = _frozen_towers()
    for family, cfg in QWEN_CONFIGS.items():
        enc = parse_config(cfg, family).vision_encoder
        assert enc.peak_bytes_per_patch(2, 1) == QWEN_PER_PATCH[family], family
        assert enc.pixels_per_item == enc.patches_per_item * QWEN_PIXELS[family] // 2
        assert enc.once_bytes(2) == (160 * enc.patches_per_item if family == "qwen2_5_vl" else 0)
        assert towers[family]["cases"], family
        for case in towers[family]["cases"]:
            t, h, w = case["grid_thw"]
            item = t * h * w
            once = {"qwen2_5_vl": 160 * item + 2 * item, "qwen3_vl": 16 * h * w}.get(family, 0)
            hand = case["items"] * item * (QWEN_PER_PATCH[family] + QWEN_PIXELS[family]) + once
            windows = case["items"] * t * (h // 8 + 1) * (w // 8 + 1) if family == "qwen2_5_vl" else 0
            assert 0 <= case["peak_bytes"] - hand < 64 * (case["items"] + 1) + 16 * windows, (family, case, hand)
            assert (case["peak_bytes"] - hand) / case["peak_bytes"] < 2e-5


def test_qwen3_vl_profiles_one_4096_pixel_image():
    """Qwen3-VL's dummy image is the processor's largest (Qwen3-VL's and Qwen3.5's preprocessor_config.json:
    size.longest_edge 16,777,216 pixels): 16,384 merged tokens of 2 x 2 patches of 16 pixels, 4096 x 4096, 65,536
    patches; its dummy video (longest_edge 25,165,824 over 2 frames: 12,288 tokens) has fewer tokens, so the image is
    profiled, one of them (budget max(8,192, 16,384) // 16,384). 65,536 x (28,544 + 3,072 pixel bytes) =
    2,071,986,176 bytes (1.93 GiB), above the text forward (0.62 GiB) with the image's embeddings held beside it,
    the merger's and three deepstack mergers' (16,384 x 2,560 x 4 x 2 = 335,544,320)."""
    peak = _peak(_qwen_config("qwen3_vl"), "--gpu", "h200")
    assert peak["bytes"] == 65_536 * (28_544 + 3_072) == 2_071_986_176
    assert "vision tower over 1 images x 65536 patches (4096 x 4096 pixels: the processor's size.longest_edge " \
           "16777216 assumed)" in peak["source"]
    assert "then its 1 x 16384 x 4 embeddings 0.31 GiB held" in peak["source"]


def _qwen_config(family: str) -> str:
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "config.json"
    path.write_text(json.dumps(QWEN_CONFIGS[family]))
    return str(path)


def test_qwen2_5_vl_profiles_its_dummy_video():
    """Qwen2-VL's and Qwen2.5-VL's dummy video (qwen2_vl.py get_num_frames_with_most_features) is frames of the
    largest image (max_pixels 12,845,056: 3584 x 3584, 16,384 tokens) a step of 2 frames, as many as max_model_len
    holds up to 14; a video's tokens are never fewer than an image's, and vLLM profiles the video on the tie
    (encoder_budget.py get_modality_with_max_tokens). Qwen2.5-VL-7B at its 128,000 tokens: 14 frames, 7 x 65,536 =
    458,752 patches, one video; x (33,484 + 2,352) and its cached rotary cos / sin (160 a patch): 16,513,236,992
    bytes (15.38 GiB), above the text forward. At 32,768 tokens 4 frames (131,072 patches), at 8,192 one frame (a
    step of it repeated, 65,536)."""
    config = _qwen_config("qwen2_5_vl")
    peak = _peak(config, "--gpu", "h200")
    assert peak["bytes"] == 458_752 * (33_484 + 2_352 + 160) == 16_513_236_992
    assert "vision tower over 1 videos x 458752 patches (14 frames of 3584 x 3584 pixels: the processor's " \
           "max_pixels 12845056 assumed)" in peak["source"]
    assert "then its 1 x 114688 embeddings" in peak["source"]
    for length, frames, patches in ((32768, 4, 131_072), (8192, 1, 65_536)):
        peak = _peak(config, "--gpu", "h200", "--max-model-len", str(length))
        assert f"1 videos x {patches} patches ({frames} frames of" in peak["source"]
        assert peak["bytes"] >= patches * (33_484 + 2_352 + 160)


def test_qwen_towers_at_tp_2_by_weights_and_by_data():
    """Weights mode shards the MLP and q/k/v: Qwen2.5-VL's MLP holds 5 x 1280 + 3 x 3420 / 2 = 11,530 values a
    patch (the attention 3 x 1280 + 8 x 1280 / 2 = 8,960), with the rotary table 2 x (11,530 + 80) + 4 = 23,224
    bytes; 131,072 patches at 32,768 tokens: 131,072 x (23,224 + 2,352 + 160) = 3,373,268,992. Data mode
    (qwen2_5_vl.py run_dp_sharded_mrope_vision_model) gives each rank whole items: the one video runs whole on one
    rank through the unsharded tower (33,484 a patch) beside the pixel values and that rank's copy of them:
    131,072 x (33,484 + 2 x 2,352 + 160) = 5,026,349,056."""
    args = (_qwen_config("qwen2_5_vl"), "--gpu", "h200", "-tp", "2", "--max-model-len", "32768")
    weights, data = _terms(*args)["profile_peak"], _terms(*args, "--mm-encoder-tp-mode", "data")["profile_peak"]
    assert weights["bytes"] == 131_072 * (23_224 + 2_352 + 160) == 3_373_268_992
    assert data["bytes"] == 131_072 * (33_484 + 2 * 2_352 + 160) == 5_026_349_056
    assert "1 of them on this rank (data-parallel)" in data["source"]


def test_qwen_vl_towers_serve_video_too():
    """The Qwen-VL classes mark their tower for image and video (qwen2_5_vl.py, qwen3_vl.py: _mark_tower_model(...,
    {"image", "video"})), so vLLM builds it unless both limits are 0, and profiles the modality of the most tokens
    among those not limited to 0 (encoder_budget.py get_modality_with_max_tokens). Qwen2.5-VL-7B at 32,768 tokens:
    image=0 keeps the tower and its dummy video (4 frames, 131,072 patches); video=0 profiles its largest image
    instead, 16,384 tokens of 4 patches: 65,536 x (33,484 + 2,352 + 160) = 2,359,033,856 bytes; both 0 load no
    tower (676,550,144 bf16 parameters fewer, the count vLLM's own module gives) and profile none. Qwen3-VL with
    image=0 is profiled on its dummy video (test_qwen3_vl_profiles_its_dummy_video_without_images)."""
    config = _qwen_config("qwen2_5_vl")
    args = (config, "--gpu", "h200", "--max-model-len", "32768")
    full = _terms(*args)
    no_image = _terms(*args, "--limit-mm-per-prompt", '{"image": 0}')
    assert no_image["weights"]["bytes"] == full["weights"]["bytes"]
    assert no_image["profile_peak"]["bytes"] == full["profile_peak"]["bytes"]
    assert "1 videos x 131072 patches (4 frames of" in no_image["profile_peak"]["source"]
    no_video = _peak(*args, "--limit-mm-per-prompt", "video=0")
    assert no_video["bytes"] == 65_536 * (33_484 + 2_352 + 160) == 2_359_033_856
    assert "vision tower over 1 images x 65536 patches (3584 x 3584 pixels" in no_video["source"]
    neither = _terms(*args, "--limit-mm-per-prompt", "image=0,video=0")
    assert full["weights"]["bytes"] - neither["weights"]["bytes"] == 2 * 676_550_144
    assert "--limit-mm-per-prompt image and video 0" in neither["weights"]["source"]
    assert "vision tower" not in neither["profile_peak"]["source"]
    assert neither["profile_peak"]["bytes"] == _terms(*args, "--language-model-only")["profile_peak"]["bytes"]
    qwen3 = _peak(_qwen_config("qwen3_vl"), "--gpu", "h200", "--limit-mm-per-prompt", '{"image": 0, "video": 1}')
    assert "vision tower over 1 videos x 49152 patches (2 frames of 4096 x 3072 pixels" in qwen3["source"]


def test_media_limits_read_every_form():
    """vLLM's --limit-mm-per-prompt forms: JSON with counts or {"count": n} mappings, the older key=value list, a
    deployments file's mapping; modalities it does not name stay None (vLLM's 999)."""
    from kvplan.engines import MediaLimits, media_limits
    from kvplan.errors import FieldError

    assert media_limits(None) is None
    assert media_limits('{"image": 2, "video": 0}') == MediaLimits(2, 0)
    assert media_limits('{"video": {"count": 1}}') == MediaLimits(None, 1)
    assert media_limits("image=0, video=3") == MediaLimits(0, 3)
    assert media_limits({"image": 0}) == MediaLimits(0, None)
    assert MediaLimits(0, None).shut(("image",)) and not MediaLimits(0, None).shut(("image", "video"))
    assert MediaLimits(0, 0).shut(("image", "video"))
    for bad in ("video=-1", '{"image": true}', "[1]", "image"):
        with pytest.raises(FieldError, match="limit_mm_per_prompt"):
            media_limits(bad)
