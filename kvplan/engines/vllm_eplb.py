"""vLLM's Expert-Parallel Load Balancer (--enable-eplb, --eplb-config; 0.32.0 read, modelled from 0.24 on):

- config/parallel.py EPLBConfig: num_redundant_experts (0 or more; EplbState.add_model asserts at most 1,023),
  window_size (1,000 steps), step_interval, communicator; ParallelConfig refuses EPLB without
  --enable-expert-parallel, without TP x DP > 1 (plan/sharding.py moe_layout, which needs the TP degree) and redundant
  experts without EPLB.
- fused_moe/layer.py FusedMoEFactory: E + R physical experts, (E + R) / ep a rank (plan/sharding.py moe_layout).
- R unset: 0 up to 0.33 (0.33.0 config/parallel.py:77 EPLBConfig.num_redundant_experts = 0); from 0.34 the fewest
  that split evenly, (ep - E % ep) % ep over ep = TP x PCP x DP (0.34.0 config/parallel.py:78 default None,
  :652-682 compute_eplb_num_redundant_experts, called by config/vllm.py:1492-1496 with the model's experts):
  Eplb.redundant_for.
- v1/worker/gpu_model_runner.py load_model builds EplbState inside the weights' DeviceMemoryProfiler, so what
  distributed/eplb/eplb_state.py EplbState.add_model allocates lands in the weights term ("Model loading took"):
  state_bytes.
- profile_run's dummy step (gpu_model_runner.py _dummy_run -> eplb_step(is_profile=True) -> EplbState.rearrange)
  reserves the transfer's communication memory after the forward: reservation_bytes, in the profile peak.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from ..errors import FieldError, quote
from ..model.tensors import NON_GATED_MLP
from ..units import whole_number
from .vllm_versions import PINNED, release_rule

MAX_REDUNDANT = 1023  # eplb_state.py add_model: MAX_EXPERT_REDUNDANCY
MAP_SLOTS = MAX_REDUNDANT + 1  # logical_to_physical_map's slots an expert, whatever R is
DEFAULT_WINDOW = 1000  # EPLBConfig.window_size
COMMUNICATORS = ("torch_nccl", "torch_gloo", "torch_xccl", "nixl", "pynccl")
NCCL_COMMUNICATORS = ("torch_nccl", "pynccl")  # EPLBConfig refuses them with use_async (the default)
RESERVES = ("torch_nccl", "torch_gloo", "pynccl")  # needs_profile_buffer_reservation (NIXL's and XCCL's do not)
CONFIG_KEYS = ("window_size", "step_interval", "num_redundant_experts", "log_balancedness",
               "log_balancedness_interval", "use_async", "policy", "communicator", "enable_migration_batching")
COUNT_KEYS = {"window_size": 1, "step_interval": 1, "num_redundant_experts": 0, "log_balancedness_interval": 1}
FLAG_KEYS = ("log_balancedness", "use_async", "enable_migration_batching")
INT64, INT32 = 8, 4
# An unset num_redundant_experts, by first release (newest first): "even", the fewest that make E + R split evenly
# over the EP ranks; else 0
UNSET_REDUNDANT = (
    ((0, 34), "even", "0.34.0 config/parallel.py:78 (None), :652-682 compute_eplb_num_redundant_experts"),
)


@dataclass(frozen=True)
class Eplb:
    """--enable-eplb with its EPLBConfig as kvplan reads it."""

    redundant: int = 0  # num_redundant_experts
    window_size: int = DEFAULT_WINDOW
    communicator: Optional[str] = None  # None: vLLM picks NIXL where installed, else torch_gloo
    spelling: str = "enable_eplb"  # the flag that set the redundant experts: eplb_config, num_redundant_experts
    named: bool = False  # the user set num_redundant_experts, 0 included (a count above 0 is named whatever this says)

    @property
    def reserves(self) -> bool:
        """Whether the profile run reserves the transfer memory: every communicator but NIXL's. kvplan takes
        torch_gloo, vLLM's pick without NIXL (pip's vllm), when none is named."""
        return (self.communicator or "torch_gloo") in RESERVES

    def redundant_for(self, experts: int, ep: int, version=None) -> int:
        """The redundant experts vLLM `version` (a release string or tuple; None: PINNED) runs for `experts` logical
        experts over `ep` EP ranks (TP x DP; kvplan has no prefill context parallelism): the count given, else 0 up
        to 0.33 and from 0.34 (ep - E % ep) % ep, the fewest that split evenly (UNSET_REDUNDANT)."""
        release = ".".join(map(str, version)) if isinstance(version, tuple) else version or PINNED
        if self.named or self.redundant or release_rule(UNSET_REDUNDANT, release) != "even":
            return self.redundant
        return (ep - experts % ep) % ep


def eplb_config(value) -> dict:
    """--eplb-config's JSON object (or a deployments file's mapping), checked as EPLBConfig checks it."""
    try:
        config = value if isinstance(value, dict) else json.loads(str(value))
    except (ValueError, RecursionError):
        config = None
    if not isinstance(config, dict) or set(config) - set(CONFIG_KEYS):
        raise FieldError("eplb_config", f"must be vLLM's EPLBConfig as a JSON object with keys among "
                                        f"{', '.join(CONFIG_KEYS)} ('{{\"num_redundant_experts\": 32}}'), got "
                                        f"{quote(value)}.")
    for key, least in COUNT_KEYS.items():
        number = config.get(key, least)
        if isinstance(number, bool) or not isinstance(number, int) or number < least:
            raise FieldError("eplb_config", f"{key} must be a whole number, {least} or more, got {_shown(number)}.")
    for key in FLAG_KEYS:
        if not isinstance(config.get(key, False), bool):
            raise FieldError("eplb_config", f"{key} must be true or false, got {_shown(config[key])}.")
    communicator = config.get("communicator")
    if communicator is not None and communicator not in COMMUNICATORS:
        raise FieldError("eplb_config", f"communicator must be one of {', '.join(COMMUNICATORS)}, got "
                                        f"{_shown(communicator)}.")
    if config.get("use_async", True) and communicator in NCCL_COMMUNICATORS:
        raise FieldError("eplb_config", f"communicator {communicator} needs use_async false: vLLM refuses it with "
                                        f"async EPLB (NCCL multi-stream conflicts).")
    if config.get("policy", "default") != "default":
        raise FieldError("eplb_config", f"policy must be default (vLLM's only one), got {_shown(config['policy'])}.")
    return config


def _shown(value) -> str:
    """A value of the user's JSON (or YAML) object as they wrote it: true, null, 8.0 (Python's repr would say True,
    None); anything else as quote() shows it."""
    return json.dumps(value) if value is None or isinstance(value, (bool, float)) else quote(value)


def redundant_count(value) -> Optional[int]:
    """--num-redundant-experts (vLLM 0.9.2 to 0.11.2): a whole number, 0 or more; None when not given."""
    if value is None:
        return None
    number = whole_number(value)  # '8' as 8; ASCII digits, counted before int() (units.MAX_INT_DIGITS)
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise FieldError("num_redundant_experts", f"must be a whole number of experts, 0 or more, got {quote(value)}.")
    return number


def spelled_off(enable, config=None, redundant=None) -> Optional[str]:
    """The redundant experts' flag given with EPLB off (eplb_config or num_redundant_experts; None where EPLB is on or
    neither is given): vLLM ignores its value then, but only a release whose argparse has the flag starts
    (vllm_engine._eplb_spelling). Read after eplb() has checked the values."""
    if enable:
        return None
    return "eplb_config" if config is not None else "num_redundant_experts" if redundant is not None else None


def eplb(enable, config=None, redundant=None) -> Optional[Eplb]:
    """--enable-eplb, --eplb-config and --num-redundant-experts as one Eplb; None when EPLB is off (ParallelConfig:
    redundant experts without EPLB are refused)."""
    if enable not in (True, False, None):
        raise FieldError("enable_eplb", f"must be true or false, got {quote(enable)}.")
    parsed = None if config is None else eplb_config(config)
    count = redundant_count(redundant)
    if parsed is not None and count is not None:
        raise FieldError("num_redundant_experts", "and eplb_config both name the redundant experts: vLLM 0.10.2 "
                                                  "and later take it in eplb_config; give one.", names=("eplb_config",))
    spelling = "eplb_config" if parsed is not None else "num_redundant_experts" if count is not None else "enable_eplb"
    parsed = parsed or {}
    named = count is not None or "num_redundant_experts" in parsed
    count = parsed.get("num_redundant_experts", 0) if count is None else count
    if not enable:
        if count:
            raise FieldError(spelling, f"sets {quote(count)} redundant experts without enable_eplb: vLLM refuses it "
                                       f"(\"Either enable EPLB or unset num_redundant_experts\").",
                             names=("enable_eplb",))
        return None
    if count > MAX_REDUNDANT:
        raise FieldError(spelling, f"sets {count} redundant experts; vLLM takes at most {MAX_REDUNDANT} "
                                   f"(eplb_state.py MAX_EXPERT_REDUNDANCY).")
    return Eplb(count, parsed.get("window_size", DEFAULT_WINDOW), parsed.get("communicator"), spelling, named)


def _moe_layers(spec, stage) -> int:
    """MoE layers on this pipeline stage (the stage's share of them: EplbState covers its own model's layers)."""
    if stage is None or stage.stages == 1:
        return spec.moe_layers
    return round(spec.moe_layers * stage.layers / spec.num_hidden_layers)


def expert_layer_bytes(spec, layout) -> int:
    """One MoE layer's local experts on this GPU, every tensor of them (weights and scales: routed_experts.py
    get_expert_weights)."""
    from ..plan.sharding import routed_expert_bytes

    return routed_expert_bytes(spec, layout) // max(spec.moe_layers, 1)


def state_bytes(spec, layout, config: Eplb, stage=None) -> int:
    """What EplbState.add_model allocates on the GPU at load (eplb_state.py, 0.32): the transfer buffer (one MoE
    layer's local expert tensors again, empty_like), int64 maps physical -> logical (L x P) and logical -> physical
    (L x E x 1,024 slots), int64 replica counts and last loads (L x E), the int32 load pass (L x P) and load window
    (window_size x L x P), and two scalars (one int32 a micro-batch, one bool): L the MoE layers, E the logical
    experts, P = E + R the physical ones."""
    layers, logical = _moe_layers(spec, stage), layout.experts
    physical = logical + layout.redundant  # the count the release runs (Eplb.redundant_for, in moe_layout)
    maps = layers * (physical * INT64 + logical * MAP_SLOTS * INT64 + 2 * logical * INT64)
    loads = layers * physical * INT32 * (1 + config.window_size)
    return expert_layer_bytes(spec, layout) + maps + loads + INT32 + 1


def reservation_bytes(spec, layout, config: Eplb, stage=None) -> int:
    """The profile run's EPLB step, held after the forward (rebalance_execute.py rearrange_expert_weights_inplace,
    is_profile): one layer's local experts again (profile_buffer) and, for the dummy all_gather of each tensor into
    ep copies of one buffer, torch's NCCL all-gather output of ep x that tensor (ProcessGroupNCCL::allgather flattens
    same-size outputs into one new tensor): the largest, the gate/up half (two thirds where gated, one half
    without a gate). Beside them rearrange's int32 logical load window (window_size x L x (E + 1)). 0 with NIXL."""
    if not config.reserves:
        return 0
    layer = expert_layer_bytes(spec, layout)
    gate_up = layer // 2 if spec.model_type in NON_GATED_MLP else layer * 2 // 3
    window = config.window_size * _moe_layers(spec, stage) * (layout.experts + 1) * INT32
    return layer + layout.ep * gate_up + window


def describe(config: Eplb, layout) -> str:
    """The budget lines' words for EPLB (the redundant experts the layout runs: Eplb.redundant_for)."""
    unset = " (unset: the fewest that split evenly, vLLM 0.34)" if layout.redundant != config.redundant else ""
    return (f"EPLB: {layout.experts} + {layout.redundant} redundant{unset} = {layout.experts + layout.redundant} "
            f"physical experts over EP {layout.ep}, window {config.window_size}, communicator "
            f"{config.communicator or 'torch_gloo (vLLM without NIXL)'}")
