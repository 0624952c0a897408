"""What vLLM 0.32.0's own Qwen-VL processing info makes of --mm-processor-kwargs for the profile run's dummy
items: the figures kvplan's VisionEncoder.with_processor_kwargs / profiled model. Runs, on the CPU, vLLM's
Qwen2VLProcessingInfo (Qwen2.5-VL-7B-Instruct's config) and Qwen3VLProcessingInfo with Qwen3VLDummyInputsBuilder
(Qwen3-VL-4B-Instruct's), over a context whose MultiModalConfig carries the kwargs: vLLM's own merge and routing
(config/multimodal.py merge_mm_processor_kwargs, multimodal/processing/context.py get_merged_mm_kwargs), size
resolution (qwen2_vl.py _get_vision_size), get_image_size_with_most_features, get_max_image_tokens,
get_num_frames_with_most_features, get_num_video_tokens / get_max_video_tokens and Qwen3-VL's get_dummy_mm_data.

Stated, not read from a checkpoint (kvplan assumes the same): the processors' published size limits
(Qwen2.5-VL preprocessor_config.json min_pixels 3,136, max_pixels 12,845,056; Qwen3-VL's image processor
shortest_edge 65,536, longest_edge 16,777,216, its video processor 4,096 / 25,165,824). The HF processor objects
are transformers' classes with those sizes; the wheel has no torchvision, so its module is stubbed before the
Qwen modules import (only their class attributes and valid_kwargs are used, never a torchvision function).

    HF_HUB_OFFLINE=1 /tmp/vllm-venv/bin/python benchmarks/vllm_reference/qwen_processor_kwargs.py \
        --out tests/data/vllm_qwen_processor_kwargs.json
"""

import argparse
import importlib.machinery
import json
import sys
import types
from types import SimpleNamespace

import transformers.image_processing_utils  # noqa: F401  (transformers decides torchvision is absent first)
import transformers.image_utils  # noqa: F401


class _Anything:
    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Anything()

    def __call__(self, *args, **kwargs):
        return _Anything()


for _name in ("torchvision", "torchvision.transforms", "torchvision.transforms.v2",
              "torchvision.transforms.v2.functional", "torchvision.io", "torchvision.transforms.functional",
              "torchvision.ops"):
    _module = types.ModuleType(_name)
    _module.__path__ = []
    _module.__getattr__ = _Anything().__getattr__
    _module.__spec__ = importlib.machinery.ModuleSpec(_name, None, is_package=True)
    sys.modules[_name] = _module

from transformers import Qwen2_5_VLConfig, Qwen3VLConfig  # noqa: E402
from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessorKwargs  # noqa: E402
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil  # noqa: E402
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor  # noqa: E402
from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessorKwargs  # noqa: E402
from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor  # noqa: E402

import vllm  # noqa: E402
from vllm.config.multimodal import ImageDummyOptions, MultiModalConfig, VideoDummyOptions  # noqa: E402
from vllm.model_executor.models.qwen2_vl import (Qwen2VLDummyInputsBuilder,  # noqa: E402
                                                 Qwen2VLProcessingInfo)
from vllm.model_executor.models.qwen3_vl import Qwen3VLDummyInputsBuilder, Qwen3VLProcessingInfo  # noqa: E402
from vllm.model_executor.models import qwen3_vl as vllm_qwen3_vl  # noqa: E402
from vllm.multimodal.processing.context import InputProcessingContext  # noqa: E402

QWEN2_5_VL_7B_VISION = {"depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420,
                        "num_heads": 16, "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14,
                        "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
                        "fullatt_block_indexes": [7, 15, 23, 31]}
QWEN3_VL_4B_VISION = {"deepstack_visual_indexes": [5, 11, 17], "depth": 24, "hidden_act": "gelu_pytorch_tanh",
                      "hidden_size": 1024, "in_channels": 3, "intermediate_size": 4096, "num_heads": 16,
                      "num_position_embeddings": 2304, "out_hidden_size": 2560, "patch_size": 16,
                      "spatial_merge_size": 2, "temporal_patch_size": 2}
KWARGS = [{}, {"max_pixels": 1003520}, {"size": {"longest_edge": 1003520}},
          {"images_kwargs": {"max_pixels": 1003520}}, {"videos_kwargs": {"max_pixels": 1003520}},
          {"max_pixels": 602112, "min_pixels": 3136},
          {"size": {"longest_edge": 4194304, "shortest_edge": 65536}}, {"fps": 1, "num_frames": 8},
          {"max_pixels": 1003520, "videos_kwargs": {"max_pixels": 401408}},
          {"min_pixels": 200704, "max_pixels": 230000}]
SEQ_LENS = [128000, 32768, 8192]
# --limit-mm-per-prompt's dummy options (config/multimodal.py ImageDummyOptions, VideoDummyOptions), with kwargs
OPTIONS = [({}, {"image": {"count": 1, "width": 1024, "height": 768}}),
           ({}, {"video": {"count": 1, "num_frames": 4}}),
           ({}, {"video": {"count": 1, "width": 1280, "height": 720, "num_frames": 8}}),
           ({"max_pixels": 1003520}, {"image": {"count": 1, "width": 4000, "height": 300}}),
           ({"max_pixels": 1003520}, {"video": {"count": 1, "width": 640, "height": 4000, "num_frames": 3}})]


class _Context:
    """The parts of InputProcessingContext the Qwen processing info reads, over vLLM's own kwargs merge."""

    get_merged_mm_kwargs = InputProcessingContext.get_merged_mm_kwargs

    def __init__(self, hf_config, processor, kwargs):
        mm_config = MultiModalConfig(mm_processor_kwargs=kwargs or None)
        self.model_config = SimpleNamespace(get_multimodal_config=lambda: mm_config, max_model_len=128000)
        self.hf_config, self.processor = hf_config, processor

    def get_hf_config(self, typ=None):
        return self.hf_config

    def get_hf_processor(self, typ=None, **kwargs):
        return self.processor


def _video_processor(cls, size, patch, valid_kwargs=None):
    video = cls.__new__(cls)  # class attributes and valid_kwargs only; its __init__ needs torchvision
    if valid_kwargs is not None:  # the placeholder class transformers exports without torchvision has none
        video.valid_kwargs = valid_kwargs
    video.size, video.patch_size, video.temporal_patch_size, video.merge_size = dict(size), patch, 2, 2
    video.max_frames, video.min_frames, video.fps = 768, 4, 2
    return video


def _qwen2_5_info(kwargs):
    config = Qwen2_5_VLConfig(vision_config=QWEN2_5_VL_7B_VISION)
    image = Qwen2VLImageProcessorPil(min_pixels=3136, max_pixels=12845056)
    processor = SimpleNamespace(image_processor=image, valid_processor_kwargs=Qwen2_5_VLProcessorKwargs,
                                video_processor=_video_processor(Qwen2VLVideoProcessor, image.size, 14))
    return Qwen2VLProcessingInfo(_Context(config, processor, kwargs)), image, Qwen2VLDummyInputsBuilder


def qwen2_5(kwargs, seq_len):
    info, image, _ = _qwen2_5_info(kwargs)
    width, height = info.get_image_size_with_most_features()
    frames = info.get_num_frames_with_most_features(seq_len, {"video": 1})
    video_size, video_tokens = info._get_vision_info(image_width=width, image_height=height, num_frames=frames,
                                                     image_processor=image, mm_kwargs={}, modality="video")
    maxima = info.get_mm_max_tokens_per_item(seq_len, {"image": 1, "video": 1})
    return {"image": {"width": width, "height": height, "tokens": info.get_max_image_tokens()},
            "video": {"frames": frames, "width": video_size.width, "height": video_size.height,
                      "tokens": video_tokens},
            "max_tokens_per_item": dict(maxima)}


def _qwen3_info(kwargs):
    config = Qwen3VLConfig(vision_config=QWEN3_VL_4B_VISION)
    image = Qwen2VLImageProcessorPil(size={"shortest_edge": 65536, "longest_edge": 16777216}, patch_size=16)
    # the class vLLM's module checks against (isinstance in Qwen3VLProcessingInfo._get_vision_info)
    video = _video_processor(vllm_qwen3_vl.Qwen3VLVideoProcessor, {"shortest_edge": 4096, "longest_edge": 25165824},
                             16, Qwen3VLVideoProcessor.valid_kwargs)
    processor = SimpleNamespace(image_processor=image, video_processor=video,
                                valid_processor_kwargs=Qwen3VLProcessorKwargs)
    info = Qwen3VLProcessingInfo(_Context(config, processor, kwargs))
    return info, image, video


def qwen3(kwargs, seq_len):
    info, image, video = _qwen3_info(kwargs)
    width, height = info.get_image_size_with_most_features()
    dummy = Qwen3VLDummyInputsBuilder(info).get_dummy_mm_data(seq_len, {"video": 1}, {})
    item = dummy["video"][0]
    frames_array = item[0] if isinstance(item, tuple) else item
    frames, v_height, v_width = frames_array.shape[:3]
    _, video_tokens = info._get_vision_info(image_width=v_width, image_height=v_height, num_frames=frames,
                                            image_processor=video, mm_kwargs={}, modality="video")
    maxima = info.get_mm_max_tokens_per_item(seq_len, {"image": 1, "video": 1})
    return {"image": {"width": width, "height": height, "tokens": info.get_max_image_tokens()},
            "video": {"frames": int(frames), "width": int(v_width), "height": int(v_height), "tokens": video_tokens},
            "max_tokens_per_item": dict(maxima)}


def dummy_item(family, kwargs, limits, seq_len):
    """The dummy item get_dummy_mm_data builds under the dummy options, and the tokens the processor makes of it
    (_get_vision_info, the processor's own resize: vLLM's prediction of its grid)."""
    if family == "qwen2_5_vl":
        info, image, builder = _qwen2_5_info(kwargs)
        video = image  # Qwen2-VL sizes videos by the image processor's size
    else:
        info, image, video = _qwen3_info(kwargs)
        builder = Qwen3VLDummyInputsBuilder
    modality = next(iter(limits))
    options = {"image": ImageDummyOptions, "video": VideoDummyOptions}[modality](**limits[modality])
    data = builder(info).get_dummy_mm_data(seq_len, {modality: 1}, {modality: options})[modality][0]
    if modality == "image":
        width, height, frames = data.width, data.height, 1
    else:
        array = data[0] if isinstance(data, tuple) else data
        frames, height, width = array.shape[:3]
    size, tokens = info._get_vision_info(image_width=width, image_height=height, num_frames=int(frames),
                                         image_processor=image if modality == "image" else video, mm_kwargs={},
                                         modality=modality)
    return {"modality": modality, "dummy": {"frames": int(frames), "width": int(width), "height": int(height)},
            "processed": {"width": size.width, "height": size.height, "tokens": tokens}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    cases = []
    for family, run in (("qwen2_5_vl", qwen2_5), ("qwen3_vl", qwen3)):
        for kwargs in KWARGS:
            for seq_len in SEQ_LENS if family == "qwen2_5_vl" else SEQ_LENS[:1]:
                cases.append({"family": family, "mm_processor_kwargs": kwargs, "max_model_len": seq_len,
                              **run(kwargs, seq_len)})
                print(json.dumps(cases[-1]), flush=True)
    options = []
    for family in ("qwen2_5_vl", "qwen3_vl"):
        for kwargs, limits in OPTIONS:
            options.append({"family": family, "mm_processor_kwargs": kwargs, "limit_mm_per_prompt": limits,
                            "max_model_len": 128000, **dummy_item(family, kwargs, limits, 128000)})
            print(json.dumps(options[-1]), flush=True)
    out = {"vllm": vllm.__version__, "script": "benchmarks/vllm_reference/qwen_processor_kwargs.py",
           "processor_sizes": {"qwen2_5_vl": {"image": [3136, 12845056], "video": "the image processor's"},
                               "qwen3_vl": {"image": [65536, 16777216], "video": [4096, 25165824]}},
           "cases": cases, "dummy_options": options}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
