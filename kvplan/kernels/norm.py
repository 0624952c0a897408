"""The residual add and the RMS norm after it in one launch (norm.cu).

    plan = AddRmsNormPlan(hidden=4096, act_dtype="bfloat16")
    s, y = plan.run(x, h, w, eps=1e-5)         # s = x + h (the residual stream), y = RMSNorm(s) * w
    x, y = plan.run(x, None, w, eps=1e-5)      # y = RMSNorm(x) * w
    s, yq = plan.run(x, h, w, 1e-5, quant_inv=32.0)   # yq = e4m3(RMSNorm(s) * w * 32), for an fp8 linear
    s, y = plan.run(x, h, w, 1e-6, plus_one=True)   # Gemma: y = RMSNorm(s) * (1 + w)

x, h: contiguous [T, hidden] in the activations' dtype, 8-byte aligned; w: [hidden]. Returns new tensors."""

from __future__ import annotations

from .configs import E4M3_ARCHS, NormConfig, Q_DTYPES

THREADS = 256  # norm.cu KVP_NORM_THREADS
ITEMS = (1, 2, 4, 8, 16)  # norm.cu's entries: groups of 4 elements a thread holds
MAX_HIDDEN = ITEMS[-1] * 4 * THREADS


def items_for(hidden: int) -> int:
    """The entry of norm.cu a row takes: the fewest groups of 4 a thread that hold it (registers: CTAs an SM)."""
    return next(i for i in ITEMS if i * 4 * THREADS >= hidden)


def norm_unsupported(hidden: int, act_dtype: str):
    """Why the kernel does not take this row (one sentence), or None."""
    if act_dtype not in Q_DTYPES:
        return f"activations must be one of {', '.join(Q_DTYPES)}, got {act_dtype}"
    if isinstance(hidden, bool) or not isinstance(hidden, int) or not 4 <= hidden <= MAX_HIDDEN or hidden % 4:
        return f"hidden must be a multiple of 4 in 4..{MAX_HIDDEN}, got {hidden!r}"
    return None


class AddRmsNormPlan:
    def __init__(self, hidden: int, act_dtype: str, device=None):
        reason = norm_unsupported(hidden, act_dtype)
        if reason:
            raise ValueError(reason)
        import torch

        from . import _runtime as rt

        rt.require_kernel("the add + RMS norm kernel")
        self.hidden = hidden
        self.index = torch.cuda.current_device() if device is None else rt.device_index(device)
        ld = rt.load(NormConfig(act_dtype), rt.device_info(self.index))
        self._launch = rt.PreparedLaunch(ld, f"kvp_add_rms_norm_{items_for(hidden)}",
                                         ("u64",) * 5 + ("i32", "f32", "f32", "f32"), THREADS, 0, None, "driver")
        self.e4m3 = rt.device_info(self.index).arch in E4M3_ARCHS  # run(..., quant_inv=...) takes e4m3 y here
        self._rt, self._torch = rt, torch
        self._act = getattr(torch, act_dtype)

    def _rows(self, name, t, tokens=None):
        ok = (isinstance(t, self._torch.Tensor) and t.dim() == 2 and t.shape[1] == self.hidden
              and (tokens is None or t.shape[0] == tokens) and t.is_contiguous() and t.dtype == self._act
              and t.is_cuda and t.data_ptr() % 8 == 0)
        if not ok:
            raise ValueError(f"{name} must be a contiguous, 8-byte aligned CUDA {self._act} tensor "
                             f"[{tokens if tokens is not None else 'T'}, {self.hidden}]")

    def run(self, x, h, w, eps: float, plus_one: bool = False, quant_inv: float = 0.0):
        """quant_inv > 0: y in e4m3, y * quant_inv saturated (for an fp8 linear; plans with ``e4m3`` only)."""
        torch = self._torch
        if quant_inv and not self.e4m3:
            raise ValueError("quant_inv needs a GPU that converts to e4m3 (sm_89 or later)")
        self._rows("x", x)
        t = x.shape[0]
        if h is not None:
            self._rows("h", h, t)
        if w.shape != (self.hidden,) or not w.is_contiguous() or w.dtype != self._act or w.data_ptr() % 8:
            raise ValueError(f"w must be a contiguous [{self.hidden}] {self._act} vector")
        s = torch.empty_like(x) if h is not None else x
        y = torch.empty_like(x, dtype=torch.float8_e4m3fn if quant_inv else x.dtype)
        if t == 0:
            return s, y
        a = self._launch.args
        values = (x.data_ptr(), 0 if h is None else h.data_ptr(), w.data_ptr(), s.data_ptr(), y.data_ptr(),
                  self.hidden, float(eps), 1.0 if plus_one else 0.0, float(quant_inv))
        for i, val in enumerate(values):
            a[i].value = val
        self._launch.launch((t, 1, 1), self._rt.current_stream_handle(torch, self.index))
        return s, y
