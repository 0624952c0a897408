"""An MoE layer's router in one launch (router.cu): softmax (or sigmoid) scores, the top k, renormalised where the
model does so, times the routed scale; what kvplan/gpu/ffn.py MoE.route computes in torch.

    plan = RouterPlan(experts=32, top_k=4, logits_dtype="bfloat16", renormalize=True, scale=1.0)
    weights, ids = plan.run(logits)   # logits [T, experts] -> weights [T, top_k] float32, ids [T, top_k] int64
    (ids_dtype="int32": int32 ids, what the MoE pairs kernel takes)

    plan = RouterPlan(..., shared=2)  # a shared expert joined to the routed ones as 2 more experts
    weights, ids = plan.run(logits, gate)  # [T, top_k + 2]: then ids experts, experts + 1 at weight sigmoid(gate)
    #   (gate [T] or [T, 1] of the logits' dtype; None: weight 1)

    plan = RouterPlan(256, 8, "bfloat16", True, 2.5, scoring="sigmoid", groups=8, topk_groups=4, correction=True)
    weights, ids = plan.run(logits, correction=bias)  # DeepSeek-V3: sigmoid scores, chosen on scores + bias
    #   (float32 [experts]) from the 4 best of 8 groups, weighed by the scores (kvplan/model/routing.py)
    RouterPlan(..., logit_bias=True).run(logits, logit_bias=b)  # the router's own bias [experts] added first

Ties between equal logits go to the lower expert id; the order of a token's k experts is by weight."""

from __future__ import annotations

from .configs import RouterConfig

MAX_EXPERTS = 512  # router.cu: 16 logits per lane
MAX_GROUPS = 32  # a lane per group
MAX_TOP_K = 32  # one lane per chosen expert
WARPS = 4  # tokens per CTA (one warp each)


class RouterPlan:
    def __init__(self, experts: int, top_k: int, logits_dtype: str, renormalize: bool, scale: float = 1.0,
                 device=None, ids_dtype: str = "int64", shared: int = 0, scoring: str = "softmax", groups: int = 1,
                 topk_groups: int = 1, correction: bool = False, logit_bias: bool = False):
        for name, v, hi in (("experts", experts, MAX_EXPERTS), ("top_k", top_k, min(MAX_TOP_K, experts))):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= max(hi, 1):
                raise ValueError(f"{name} must be an int in 1..{hi}, got {v!r}")
        if isinstance(shared, bool) or not isinstance(shared, int) or not 0 <= shared <= MAX_TOP_K - top_k:
            raise ValueError(f"shared must be an int in 0..{MAX_TOP_K - top_k} (top_k + shared <= {MAX_TOP_K}), "
                             f"got {shared!r}")
        if scoring not in ("softmax", "sigmoid"):
            raise ValueError(f"scoring must be softmax or sigmoid, got {scoring!r}")
        for name, v, hi in (("groups", groups, MAX_GROUPS), ("topk_groups", topk_groups, groups)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                raise ValueError(f"{name} must be an int in 1..{hi}, got {v!r}")
        if experts % groups or (correction and groups > 1 and experts // groups < 2):
            raise ValueError(f"groups ({groups}) must split the {experts} experts evenly" +
                             (" into groups of two or more (a group's score sums its two best)" if correction else ""))
        if top_k > topk_groups * (experts // groups):
            raise ValueError(f"top_k ({top_k}) must be at most the {topk_groups * (experts // groups)} experts of the "
                             f"topk_groups ({topk_groups}) groups a token may choose from")
        if ids_dtype not in ("int32", "int64"):
            raise ValueError(f"ids_dtype must be int32 or int64, got {ids_dtype!r}")
        if logits_dtype not in RouterConfig.DTYPES:
            raise ValueError(f"logits must be one of {', '.join(RouterConfig.DTYPES)}, got {logits_dtype}")
        import torch

        from . import _runtime as rt

        rt.require_kernel("the MoE router kernel")
        self.experts, self.top_k, self.renormalize, self.scale = experts, top_k, bool(renormalize), float(scale)
        self.shared = shared
        self.scoring, self.groups, self.topk_groups = scoring, groups, topk_groups
        self.correction, self.logit_bias = bool(correction), bool(logit_bias)
        self._general = int(scoring != "softmax" or self.correction or self.logit_bias or topk_groups < groups)
        self.index = torch.cuda.current_device() if device is None else rt.device_index(device)
        ld = rt.load(RouterConfig(logits_dtype), rt.device_info(self.index))
        args = ("u64", "u64", "i32", "i32", "i32", "i32", "f32", "u64", "u64", "i32", "i32", "u64", "u64",
                "i32", "i32", "u64", "u64", "i32", "i32")
        self._launch = rt.PreparedLaunch(ld, "kvp_router", args, WARPS * 32, 0, None, "driver")
        self._rt, self._torch = rt, torch
        self._dtype = getattr(torch, logits_dtype)
        self._ids = getattr(torch, ids_dtype)

    def run(self, logits, gate=None, correction=None, logit_bias=None):
        torch = self._torch
        if not (isinstance(logits, torch.Tensor) and logits.dim() == 2 and logits.shape[1] == self.experts
                and logits.dtype == self._dtype and logits.is_cuda and logits.stride(1) == 1):
            raise ValueError(f"logits must be a CUDA {self._dtype} tensor [tokens, {self.experts}] with experts "
                             f"adjacent")
        t = logits.shape[0]
        if gate is not None and not (self.shared and isinstance(gate, torch.Tensor) and gate.dtype == self._dtype
                                     and gate.is_cuda and gate.numel() == t and (t == 0 or gate.shape[0] == t)):
            raise ValueError(f"gate must be a CUDA {self._dtype} tensor of {t} values ([{t}] or [{t}, 1]) on a plan "
                             f"with shared > 0")
        for name, value, wanted, dtype in (("correction", correction, self.correction, torch.float32),
                                           ("logit_bias", logit_bias, self.logit_bias, self._dtype)):
            if wanted != (value is not None) or value is not None and not (
                    isinstance(value, torch.Tensor) and value.is_cuda and value.dtype == dtype
                    and tuple(value.shape) == (self.experts,) and value.is_contiguous()):
                raise ValueError(f"{name} must be a contiguous CUDA {dtype} tensor [{self.experts}] exactly when the "
                                 f"plan was made with {name}=True")
        width = self.top_k + self.shared
        weights = torch.empty(t, width, dtype=torch.float32, device=logits.device)
        ids = torch.empty(t, width, dtype=self._ids, device=logits.device)
        if t == 0:
            return weights, ids
        a = self._launch.args
        values = (logits.data_ptr(), logits.stride(0), t, self.experts, self.top_k, int(self.renormalize),
                  self.scale, weights.data_ptr(), ids.data_ptr(), int(self._ids == torch.int32), self.shared,
                  0 if gate is None else gate.data_ptr(), 0 if gate is None else gate.stride(0), self._general,
                  int(self.scoring == "sigmoid"), 0 if logit_bias is None else logit_bias.data_ptr(),
                  0 if correction is None else correction.data_ptr(), self.groups, self.topk_groups)
        for i, val in enumerate(values):
            a[i].value = val
        self._launch.launch((-(-t // WARPS), 1, 1), self._rt.current_stream_handle(torch, self.index))
        return weights, ids
