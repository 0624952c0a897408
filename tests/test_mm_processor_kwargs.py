"""vLLM's --mm-processor-kwargs: the Qwen-VL processors' size limits size the profile run's dummy image and video
(vLLM 0.32 qwen2_vl.py Qwen2VLProcessingInfo.get_image_size_with_most_features / _get_vision_info /
get_num_frames_with_most_features, qwen3_vl.py get_dummy_mm_data, over the kwargs context.py get_merged_mm_kwargs
resolves); other keys reach only the HF processor. Figures by hand from the config numbers and the per-patch
bytes test_vllm_encoder_profile.py establishes (QWEN_PER_PATCH, held to vLLM's own towers)."""

import json

import pytest

from conftest import run_kvplan
from test_vllm_encoder_profile import QWEN_PER_PATCH, _peak, _qwen_config

# Qwen2.5-VL-7B: pixel values a patch (3 channels x 2 frames x 14 x 14, bf16) and its cached rotary cos / sin
QWEN2_5_PIXELS, QWEN2_5_ROTARY = 2 * 3 * 2 * 14 * 14, 2 * 80  # 2,352 and 160 bytes
QWEN2_5_PATCH = QWEN_PER_PATCH["qwen2_5_vl"] + QWEN2_5_PIXELS + QWEN2_5_ROTARY  # 35,996 bytes a patch
QWEN3_PATCH = QWEN_PER_PATCH["qwen3_vl"] + 2 * 3 * 2 * 16 * 16  # 28,544 + 3,072 pixel bytes


def _estimate(*args) -> dict:
    result = run_kvplan("estimate", *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["plans"]
    return row


def test_max_pixels_shrinks_qwen2_5_vl_dummy_video():
    """max_pixels 1,003,520 (flat: vLLM routes it to the images' and the videos' scopes) = 1,280 merged tokens of
    28 x 28 pixels; the closest factor pair of 1,280 is 32 x 40, so the largest image is 1120 x 896 (5,120
    patches). The dummy video: 14 frames (2 x (128,000 // 1,280) = 200 fit, 14 at most), 7 temporal steps: 8,960
    tokens, 35,840 patches, one video (budget max(8,192, 8,960) // 8,960). Peak: 35,840 x 35,996 (33,484 the
    tower, 2,352 pixel values, 160 the rotary table) = 1,290,096,640 bytes (1.20 GiB) against 16,513,236,992
    (15.38 GiB) at the processor's own 12,845,056; the H200 then holds 16 requests of 128,000 tokens, not 14: budgets
    of 118,193,939,990 and 102,970,799,638 B (with vLLM's 0.705 GiB graph term; they differ by the two peaks) are
    128,821 and 112,229 blocks of 16 tokens x 57,344 B (28 layers x 2 x 4 KV heads x 128 x 2 B), and a request
    holds 128,000 / 16 = 8,000 of them: 128,820 // 8,000 = 16, 112,228 // 8,000 = 14 (the null block never lent)."""
    config = _qwen_config("qwen2_5_vl")
    default = _estimate(config, "--gpu", "h200")
    small = _estimate(config, "--gpu", "h200", "--mm-processor-kwargs", '{"max_pixels": 1003520}')
    peak = {t["name"]: t for t in small["budget"]["terms"]}["profile_peak"]
    assert peak["bytes"] == 35_840 * QWEN2_5_PATCH == 1_290_096_640
    assert "vision tower over 1 videos x 35840 patches (14 frames of 1120 x 896 pixels: --mm-processor-kwargs " \
           '{"max_pixels": 1003520}) 1.2 GiB' in peak["source"]
    assert {t["name"]: t for t in default["budget"]["terms"]}["profile_peak"]["bytes"] == 16_513_236_992
    assert (default["max_concurrency"], small["max_concurrency"]) == (14, 16)
    gained = small["kv_budget_bytes_per_gpu"] - default["kv_budget_bytes_per_gpu"]
    assert gained == 16_513_236_992 - 1_290_096_640
    # the same limit as size.longest_edge, or under images_kwargs alone: vLLM's dummy video is frames of the
    # largest image, so the video shrinks with it
    for form in ('{"size": {"longest_edge": 1003520}}', '{"images_kwargs": {"max_pixels": 1003520}}'):
        assert _peak(config, "--gpu", "h200", "--mm-processor-kwargs", form)["bytes"] == 1_290_096_640, form


def test_a_smaller_video_limit_alone_leaves_the_image_profiled():
    """videos_kwargs max_pixels 1,003,520 alone: the image stays 3584 x 3584 (16,384 tokens); each video frame is
    resized by smart_resize (beta = sqrt(3584^2 / 1,003,520) = 3.578, floor(3584 / 3.578 / 28) = 35 units a side:
    980 x 980, 1,225 tokens), 7 steps of 14 frames = 8,575 tokens, fewer than the image's, so vLLM profiles the
    image (get_modality_with_max_tokens): 65,536 patches x 35,996 = 2,359,033,856 bytes."""
    peak = _peak(_qwen_config("qwen2_5_vl"), "--gpu", "h200", "--mm-processor-kwargs",
                 '{"videos_kwargs": {"max_pixels": 1003520}}')
    assert peak["bytes"] == 65_536 * QWEN2_5_PATCH == 2_359_033_856
    assert "vision tower over 1 images x 65536 patches (3584 x 3584 pixels" in peak["source"]


def test_qwen3_vl_profiles_its_dummy_video_without_images():
    """Qwen3-VL with image=0: its dummy video (qwen3_vl.py get_dummy_mm_data) is 2 frames of the largest image
    under half the video processor's longest_edge (25,165,824 / 2 = 12,582,912: 12,288 tokens of 32 x 32 pixels,
    96 x 128, so 4096 x 3072), one temporal step: 49,152 patches x 31,616 = 1,553,989,632 bytes."""
    peak = _peak(_qwen_config("qwen3_vl"), "--gpu", "h200", "--limit-mm-per-prompt", "image=0")
    assert peak["bytes"] == 49_152 * QWEN3_PATCH == 1_553_989_632
    assert "vision tower over 1 videos x 49152 patches (2 frames of 4096 x 3072 pixels: the video processor's " \
           "size.longest_edge 25165824 assumed)" in peak["source"]


def test_qwen3_vl_takes_size_longest_edge():
    """size.longest_edge 4,194,304 (routed to both processors): the image 4,096 tokens (64 x 64: 2048 x 2048,
    16,384 patches) against the video's 2 frames under 2,097,152 pixels (2,048 tokens); the image is profiled, 8,192
    // 4,096 = 2 of them: 32,768 patches x 31,616 = 1,035,993,088 bytes. With image=0 the video: 32 x 64 units,
    2048 x 1024, 8,192 patches, 8,192 // 2,048 = 4 of them: the same 32,768 patches."""
    config = _qwen_config("qwen3_vl")
    size = '{"size": {"longest_edge": 4194304, "shortest_edge": 65536}}'
    peak = _peak(config, "--gpu", "h200", "--mm-processor-kwargs", size)
    assert peak["bytes"] == 2 * 16_384 * QWEN3_PATCH == 1_035_993_088
    assert "2 images x 16384 patches (2048 x 2048 pixels: --mm-processor-kwargs" in peak["source"]
    video = _peak(config, "--gpu", "h200", "--mm-processor-kwargs", size, "--limit-mm-per-prompt", "image=0")
    assert video["bytes"] == 4 * 8_192 * QWEN3_PATCH
    assert "4 videos x 8192 patches (2 frames of 2048 x 1024 pixels" in video["source"]


def test_keys_the_dummy_items_do_not_read_change_nothing():
    """fps, num_frames, do_sample_frames... reach the HF processor, not the dummy items' size: the default figure;
    towers other than Qwen-VL's ignore the flag."""
    config = _qwen_config("qwen2_5_vl")
    default = _peak(config, "--gpu", "h200")["bytes"]
    for kwargs in ('{"fps": 1, "num_frames": 8}', '{"videos_kwargs": {"max_frames": 4, "fps": 2}}', "{}"):
        assert _peak(config, "--gpu", "h200", "--mm-processor-kwargs", kwargs)["bytes"] == default, kwargs
    gemma = ("google/gemma-3-27b-it", "--gpu", "h200", "--context", "8192")
    assert _peak(*gemma, "--mm-processor-kwargs", '{"max_pixels": 1003520}')["bytes"] == _peak(*gemma)["bytes"]


@pytest.mark.parametrize("bad", ['{"max_pixels": 0}', '{"max_pixels": -5}', '{"max_pixels": 1.5}', "{max",
                                 "[1]", '{"size": 4}', '{"images_kwargs": 3}', '{"min_pixels": true}'])
def test_a_bad_value_is_one_sentence_naming_the_flag(bad):
    result = run_kvplan("estimate", _qwen_config("qwen2_5_vl"), "--gpu", "h200", "--mm-processor-kwargs", bad)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--mm-processor-kwargs must be vLLM's form" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_limit_below_one_merged_token_leaves_no_image():
    result = run_kvplan("estimate", _qwen_config("qwen2_5_vl"), "--gpu", "h200", "--mm-processor-kwargs",
                        '{"max_pixels": 700}')
    assert result.returncode == 2 and "--mm-processor-kwargs leaves no image" in result.stderr
    assert "784 pixels" in result.stderr


def test_check_and_a_deployments_file_take_it(tmp_path):
    """check: the flag and the deployments key (a mapping or JSON text); the H200 holds 16 requests, not 14."""
    config = _qwen_config("qwen2_5_vl")
    path = tmp_path / "deployments.yaml"
    entry = f"deployments:\n  - name: q\n    model: {config}\n    tp: 1\n    gpu: h200\n"
    counts = []
    for extra in ("", "    mm_processor_kwargs: {max_pixels: 1003520}\n",
                  "    mm_processor_kwargs: '{\"max_pixels\": 1003520}'\n"):
        path.write_text(entry + extra)
        result = run_kvplan("check", "--file", path, "--format", "json")
        assert result.returncode == 0, result.stderr
        counts.append(json.loads(result.stdout)["results"][0]["max_concurrency"])
    assert counts == [14, 16, 16]
    flag = run_kvplan("check", config, "-tp", "1", "--gpu", "h200", "--mm-processor-kwargs",
                      '{"max_pixels": 1003520}', "--format", "json")
    assert flag.returncode == 0, flag.stderr
    assert json.loads(flag.stdout)["results"][0]["max_concurrency"] == 16
    path.write_text(entry + "    mm_processor_kwargs: {max_pixels: 0}\n")
    bad = run_kvplan("check", "--file", path)
    assert bad.returncode == 2 and "field 'mm_processor_kwargs' must be vLLM's form" in bad.stderr


def test_the_api_takes_it():
    from kvplan import api

    (plan,) = api.estimate(_qwen_config("qwen2_5_vl"), gpu="h200", mm_processor_kwargs={"max_pixels": 1003520})
    assert plan.max_concurrency == 16
    (result,) = api.check(_qwen_config("qwen2_5_vl"), tensor_parallel_size=1, gpu="h200",
                          mm_processor_kwargs='{"max_pixels": 1003520}')
    assert result["max_concurrency"] == 16


def test_the_dummy_items_are_what_vllms_own_processing_info_makes():
    """tests/data/vllm_qwen_processor_kwargs.json (benchmarks/vllm_reference/qwen_processor_kwargs.py): vLLM
    0.32.0's Qwen2VLProcessingInfo (Qwen2.5-VL-7B) and Qwen3VLProcessingInfo with Qwen3VLDummyInputsBuilder
    (Qwen3-VL-4B) under ten --mm-processor-kwargs, vLLM's own merge and routing: the largest image (size and
    tokens), the dummy video (frames, processed size, tokens), and the modality profiled (the most tokens an
    item, the video on a tie) at 128K, 32K and 8K tokens; kvplan's items match every one."""
    from pathlib import Path

    from kvplan.engines import mm_processor_kwargs
    from kvplan.model.parse import parse_config
    from test_vllm_encoder_profile import QWEN2_5_VL_7B, QWEN3_VL_4B

    frozen = json.loads((Path(__file__).parent / "data" / "vllm_qwen_processor_kwargs.json").read_text())
    assert frozen["vllm"] == "0.32.0" and len(frozen["cases"]) == 40
    specs = {"qwen2_5_vl": parse_config(QWEN2_5_VL_7B, "q25"), "qwen3_vl": parse_config(QWEN3_VL_4B, "q3")}
    for case in frozen["cases"]:
        kwargs, length = case["mm_processor_kwargs"], case["max_model_len"]
        enc = specs[case["family"]].vision_encoder.with_processor_kwargs(mm_processor_kwargs(kwargs))
        tokens, _, _, width, height = enc.processor.image_item()
        assert {"width": width, "height": height, "tokens": tokens} == case["image"], case
        tokens, _, _, frames, width, height = enc.processor.video_item(length)
        assert {"frames": frames, "width": width, "height": height, "tokens": tokens} == case["video"], case
        most = max(case["max_tokens_per_item"].items(), key=lambda item: (item[1], item[0]))
        item = enc.profiled(length)
        assert (item.item, item.tokens_per_item) == (most[0] + "s", most[1]), case


def test_limit_mm_per_prompt_dummy_options_shrink_the_item_as_vllm_does():
    """--limit-mm-per-prompt's richer form (vLLM 0.32 config/multimodal.py ImageDummyOptions width / height,
    VideoDummyOptions num_frames / width / height) caps the dummy item (dummy_inputs.py _get_dummy_images /
    _get_dummy_videos: the smaller of each and the model's own; Qwen3-VL keeps 2 frames and caps its sides after
    its own resize), which the processor then resizes: ten cases frozen from vLLM's own builders
    (tests/data/vllm_qwen_processor_kwargs.json dummy_options), kvplan's item matches each."""
    from pathlib import Path

    from kvplan.engines import media_limits, mm_processor_kwargs
    from kvplan.model.parse import parse_config
    from test_vllm_encoder_profile import QWEN2_5_VL_7B, QWEN3_VL_4B

    frozen = json.loads((Path(__file__).parent / "data" / "vllm_qwen_processor_kwargs.json").read_text())
    assert len(frozen["dummy_options"]) == 10
    specs = {"qwen2_5_vl": parse_config(QWEN2_5_VL_7B, "q25"), "qwen3_vl": parse_config(QWEN3_VL_4B, "q3")}
    for case in frozen["dummy_options"]:
        enc = specs[case["family"]].vision_encoder.with_processor_kwargs(
            mm_processor_kwargs(case["mm_processor_kwargs"]))
        limits = media_limits(case["limit_mm_per_prompt"])
        item = enc.profiled(case["max_model_len"], image=case["modality"] == "image",
                            video=case["modality"] == "video", limits=limits)
        assert item.tokens_per_item == case["processed"]["tokens"], case
        assert f"{case['processed']['width']} x {case['processed']['height']} pixels" in item.assumed, case
        assert item.patches_per_item == item.tokens_per_item * 4


def test_the_dummy_options_size_the_item_not_the_batch():
    """Qwen2.5-VL-7B at 128K with video width 1280, height 720, num_frames 8: the dummy video is 8 frames of 1280 x
    720, resized to 1288 x 728 (46 x 26 units of 28 pixels: 1,196 tokens a step), 4 steps: 4,784 tokens, 19,136
    patches; the batch is still sized by the largest video (114,688 tokens: one). 19,136 x 35,996 =
    688,819,456 bytes, below the text forward, so the profile peak is the forward plus the held embeddings
    (4,784 x 3,584 x 2 bytes). Bad options (an unknown key, 0 frames) are one sentence, exit 2."""
    config = _qwen_config("qwen2_5_vl")
    limits = '{"video": {"count": 1, "width": 1280, "height": 720, "num_frames": 8}}'
    peak = _peak(config, "--gpu", "h200", "--limit-mm-per-prompt", limits)
    assert "vision tower over 1 videos x 19136 patches (8 frames of 1288 x 728 pixels: --limit-mm-per-prompt's " \
           "video size" in peak["source"]
    assert "then its 1 x 4784 embeddings" in peak["source"]
    tower = 19_136 * QWEN2_5_PATCH
    assert tower == 688_819_456 and peak["bytes"] > tower
    for bad in ('{"video": {"count": 1, "fps": 2}}', '{"video": {"num_frames": 0}}', '{"image": {"width": -1}}'):
        result = run_kvplan("estimate", config, "--gpu", "h200", "--limit-mm-per-prompt", bad)
        assert result.returncode == 2 and "--limit-mm-per-prompt must be vLLM's form" in result.stderr, bad
    gemma = _peak("google/gemma-3-27b-it", "--gpu", "h200", "--context", "8192", "--limit-mm-per-prompt",
                  '{"image": {"count": 2, "width": 448, "height": 448}}')
    assert "image size not modelled for this tower: its largest image assumed" in gemma["source"]


def test_the_dummy_options_need_the_release_that_has_them():
    """ImageDummyOptions / VideoDummyOptions (config/multimodal.py) are first in vLLM 0.11.1's sources, not in
    0.11.0's: an older release takes a count a modality only, so the size options are refused there in one sentence,
    while counts alone still work."""
    config = _qwen_config("qwen2_5_vl")
    sized = '{"video": {"count": 1, "num_frames": 8}}'
    old = run_kvplan("estimate", config, "--gpu", "h200", "--limit-mm-per-prompt", sized, "--engine", "vllm==0.11.0")
    assert old.returncode == 2 and "need vLLM 0.11.1 or later" in old.stderr and old.stdout == ""
    assert run_kvplan("estimate", config, "--gpu", "h200", "--limit-mm-per-prompt", sized,
                      "--engine", "vllm==0.11.1").returncode == 0
    assert run_kvplan("estimate", config, "--gpu", "h200", "--limit-mm-per-prompt", "video=0",
                      "--engine", "vllm==0.11.0").returncode == 0
