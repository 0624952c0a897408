"""How an MoE layer chooses its experts and weighs their outputs, per model family, as vLLM 0.32's model code
configures its router (the one place these rules live; verify's forward pass and the float64 reference follow them,
and the parameter count takes the router's extra tensors from here).

The selection, vLLM's grouped_topk (model_executor/layers/fused_moe/router/grouped_topk_router.py), which reduces
to plain top-k with one group:
- scores = softmax or sigmoid of the router's logits (float32);
- with a correction bias, the experts are chosen on scores + bias and weighed by the scores without it;
- with groups, the experts form `groups` equal runs; a group's score is its best chosen-on value (the sum of its two
  best with a correction bias), and only the `topk_groups` best groups' experts may be chosen;
- the top k of what may be chosen; their weights renormalised to sum 1 where the model says so, times the scale.

Llama 4 (models/llama4.py Llama4MoE.custom_routing_function) takes the top k logits and weighs by their sigmoid,
never renormalised, and applies the weight to the expert's input (apply_router_weight_on_input, top 1 only)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import json_value, KvplanError
from .config import EXPERT_KEYS, EXPERTS_PER_TOKEN_KEYS, Config

SCORING = ("softmax", "sigmoid")

# Routing fields a config leaves out (n_group, topk_group, norm_topk_prob, routed_scaling_factor) reach here as its
# family's transformers config class fills them (config.Config, class_defaults.CLASS_DEFAULTS); the getters' own
# defaults below serve families with no such class field. DeepseekV3Config has no scoring_func / topk_method: every
# published V3 / R1 config names them.
# Families whose router vLLM builds with use_grouped_topk and the config's n_group / topk_group, and whether the
# sigmoid scores and correction bias are fixed by the model code (else read from scoring_func / topk_method).
GROUPED = {"deepseek_v2": False, "deepseek_v3": False, "deepseek_v32": False, "glm_moe_dsa": False,
           "kimi_k2": False, "glm4_moe": True, "glm4_moe_lite": True, "nemotron_h": True, "lfm2_moe": True,
           "mimo_v2_flash": True, "mimo_v2": True}
# Families whose MoE block passes no routed_scaling_factor to FusedMoE, whatever the config says (mimo_v2.py MiMoV2MoE)
UNSCALED = ("mimo_v2_flash", "mimo_v2")
# Families whose router linear has a bias (gpt_oss.py: ReplicatedLinear(..., bias=True)).
LOGIT_BIAS = ("gpt_oss",)


@dataclass(frozen=True)
class Routing:
    scoring: str = "softmax"  # softmax | sigmoid: what turns the router's logits into scores
    renormalize: bool = True  # the chosen scores divided by their sum
    scale: float = 1.0  # routed_scaling_factor
    groups: int = 1  # n_group: the experts as this many equal runs
    topk_groups: int = 1  # topk_group: the best groups whose experts may be chosen
    correction_bias: bool = False  # e_score_correction_bias (float32 [experts]): chooses, does not weigh
    logit_bias: bool = False  # the router linear's own bias, added to the logits
    on_input: bool = False  # the weight scales the expert's input instead of its output (Llama 4)

    @property
    def grouped(self) -> bool:
        return self.topk_groups < self.groups

    def describe(self) -> str:
        """The rule in the words verify reports."""
        if self.on_input:
            return "the top logit's sigmoid, applied to the expert's input (Llama 4)"
        words = (["the router's bias added"] if self.logit_bias else []) + [f"{self.scoring} scores"]
        if self.correction_bias:
            words.append("chosen with a correction bias")
        if self.grouped:
            words.append(f"from the best {self.topk_groups} of {self.groups} expert groups")
        words.append("top-k renormalised" if self.renormalize else "top-k")
        if self.scale != 1.0:
            words.append(f"times {self.scale:g}")
        return ", ".join(words)


def routing(cfg: Config) -> Routing:
    """The router of `cfg`'s MoE layers (a dense model gets the default, unused)."""
    family = cfg.model_type
    experts = cfg.optional_int(EXPERT_KEYS)
    if not experts:  # no router (a family's class may still fill num_experts_per_tok, n_group...: DeepseekV3Config)
        return Routing()
    top_k = cfg.optional_int(EXPERTS_PER_TOKEN_KEYS)
    if family.startswith("llama4"):
        if top_k > 1:
            raise KvplanError(f"{cfg.name}: num_experts_per_tok is {top_k}; Llama 4 weighs the expert's input, "
                              f"which vLLM does for one expert per token only.")
        return Routing(scoring="sigmoid", renormalize=False, on_input=True)
    if family == "kimi_linear":
        return _kimi_routing(cfg, experts, top_k)
    if family == "minimax_m2":
        return _minimax_routing(cfg)
    if family == "ernie4_5_moe":
        # ernie45_moe.py:164-197 Ernie4_5_MoeMoE: a float32 e_score_correction_bias on every MoE layer (loaded from
        # moe_statics, :496-500), FusedMoE's default softmax, renormalize=True, no groups or scale: chosen on
        # scores + bias, weighed by the scores (router_factory.py:228 FusedTopKBiasRouter)
        return Routing(renormalize=True, correction_bias=True)
    renormalize = cfg.flag("norm_topk_prob", True)
    if family == "mixtral" or family in LOGIT_BIAS:  # mixtral.py, gpt_oss.py: renormalize=True
        renormalize = True
    if family == "jamba":  # jamba.py JambaMoE: FusedMoE(..., renormalize=False)
        renormalize = False
    if family not in GROUPED:
        return Routing(renormalize=renormalize, logit_bias=family in LOGIT_BIAS)
    fixed = GROUPED[family]
    scoring = "sigmoid" if fixed else cfg.get("scoring_func", "softmax")
    if scoring not in SCORING:
        raise KvplanError(f"config field 'scoring_func' must be one of {', '.join(SCORING)}, got "
                          f"{json_value(scoring)}.")
    groups = cfg.int("n_group", default=1)
    topk_groups = cfg.int("topk_group", default=1)
    _check_groups(experts, top_k, groups, topk_groups)
    correction = fixed or cfg.get("topk_method") == "noaux_tc"
    if family == "lfm2_moe":  # lfm2_moe.py: the gate's e_score_correction_bias only with use_expert_bias
        correction = cfg.flag("use_expert_bias", True)
    scale = 1.0 if family in UNSCALED else _scale(cfg)
    return Routing(scoring=scoring, renormalize=renormalize, scale=scale, groups=groups,
                   topk_groups=topk_groups, correction_bias=correction)


def _kimi_routing(cfg: Config, experts: int, top_k: int) -> Routing:
    """Kimi Linear (vllm/models/kimi_k3/nvidia/model.py KimiMoE): FusedMoE with the config's own names for the
    scoring function, renormalisation and groups, and an e_score_correction_bias always (KimiLinearConfig
    defaults: sigmoid, renormalised, grouped top-k over one group)."""
    scoring = cfg.get("moe_router_activation_func", "sigmoid")
    if scoring not in SCORING:
        raise KvplanError(f"config field 'moe_router_activation_func' must be one of {', '.join(SCORING)}, got "
                          f"{json_value(scoring)}.")
    grouped = cfg.flag("use_grouped_topk", True)
    groups = cfg.int("num_expert_group", default=1) if grouped else 1
    topk_groups = cfg.int("topk_group", default=1) if grouped else 1
    _check_groups(experts, top_k, groups, topk_groups)
    return Routing(scoring=scoring, renormalize=cfg.flag("moe_renormalize", True), scale=_scale(cfg),
                   groups=groups, topk_groups=topk_groups, correction_bias=True)


def _minimax_routing(cfg: Config) -> Routing:
    """MiniMax-M2 (vLLM 0.32.0 models/minimax_m2.py:85-108 MiniMaxM2MoE): FusedMoE with the config's scoring_func
    (read with no default: a config without it does not load), renormalize=True, no use_grouped_topk and no
    routed_scaling_factor; a float32 e_score_correction_bias when use_routing_bias (default false). Without groups
    the bias takes it to FusedTopKBiasRouter (fused_moe/router/router_factory.py:228): chosen on scores + bias,
    weighed by the scores, renormalised (fused_topk_bias_router.py fused_topk_bias)."""
    scoring = cfg.get("scoring_func")
    if scoring is None:
        raise KvplanError(f"config field 'scoring_func' is missing: a MiniMax-M2 config must name it "
                          f"({' or '.join(SCORING)}), as vLLM reads it with no default.")
    if scoring not in SCORING:
        raise KvplanError(f"config field 'scoring_func' must be one of {', '.join(SCORING)}, got "
                          f"{json_value(scoring)}.")
    return Routing(scoring=scoring, correction_bias=cfg.flag("use_routing_bias", False))


def _check_groups(experts: int, top_k: int, groups: int, topk_groups: int) -> None:
    if topk_groups > groups:
        raise KvplanError(f"config field 'topk_group' ({topk_groups}) must be at most n_group ({groups}).")
    if experts % groups:
        raise KvplanError(f"config field 'n_group' ({groups}) must divide the {experts} routed experts into equal "
                          f"groups.")
    if top_k > topk_groups * (experts // groups):
        allowed = topk_groups * (experts // groups)
        raise KvplanError(f"config field 'num_experts_per_tok' ({top_k}) must be at most the {allowed} experts of "
                          f"the topk_group ({topk_groups}) groups a token may choose from.")


def _scale(cfg: Config) -> float:
    value = cfg.get("routed_scaling_factor", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise KvplanError(f"config field 'routed_scaling_factor' must be a positive number, got {json_value(value)}.")
    return float(value)
