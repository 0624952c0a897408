"""mxfp4 experts -> bf16 in one launch (mxfp4.cu), for the grouped GEMMs of MoE layers at large batches.

    plan = Mxfp4DequantPlan()
    plan.run(blocks, scales, out)   # blocks uint8 [..., cols / 2], scales uint8 [..., cols / 32], out bf16 [..., cols]

Every tensor contiguous on the plan's GPU; ``out`` may be a view of a larger scratch. Exact (see mxfp4.cu)."""

from __future__ import annotations

from .configs import Mxfp4Config

THREADS = 256  # mxfp4.cu KVP_MX_THREADS
GROUP = 32  # values per E8M0 scale


class Mxfp4DequantPlan:
    def __init__(self, device=None):
        import torch

        from . import _runtime as rt

        rt.require_kernel("the mxfp4 dequantisation kernel")
        self.index = torch.cuda.current_device() if device is None else rt.device_index(device)
        ld = rt.load(Mxfp4Config(), rt.device_info(self.index))
        self._launch = rt.PreparedLaunch(ld, "kvp_mxfp4_to_bf16", ("u64",) * 4, THREADS, 0, None,
                                         "driver")
        self._rt, self._torch = rt, torch

    def run(self, blocks, scales, out):
        torch = self._torch
        groups = scales.numel()
        ok = (blocks.dtype == scales.dtype == torch.uint8 and out.dtype == torch.bfloat16
              and blocks.shape[:-1] == scales.shape[:-1] == out.shape[:-1]
              and blocks.shape[-1] == scales.shape[-1] * GROUP // 2 and out.shape[-1] == blocks.shape[-1] * 2
              and all(t.is_contiguous() and t.is_cuda and t.device.index == self.index for t in (blocks, scales, out))
              and blocks.data_ptr() % 16 == 0 and out.data_ptr() % 16 == 0)
        if not ok:
            raise ValueError("mxfp4 dequantisation needs contiguous uint8 blocks [..., cols/2] "
                             "and scales [..., cols/32] "
                             "and a bf16 out [..., cols] on the plan's GPU, blocks and out 16-byte aligned")
        if groups == 0:
            return out
        a = self._launch.args
        for i, val in enumerate((blocks.data_ptr(), scales.data_ptr(), out.data_ptr(), groups)):
            a[i].value = val
        self._launch.launch(((groups + THREADS - 1) // THREADS, 1, 1),
                            self._rt.current_stream_handle(torch, self.index))
        return out
