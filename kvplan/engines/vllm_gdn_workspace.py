"""The prefill-checkpoint buffer Qwen's gated DeltaNet reserves in vLLM's profile run (0.33 on).

Where the layer exports prefill checkpoints (vllm_specs.prefill_checkpoint_alignment: "align" mode, FlashInfer's GDN
prefill), its first forward without attention metadata, the profile run's, sizes the process-wide workspace for
them before the workspace is locked (model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py _warmup_prefill_kernels,
0.33.0:1336-1338, 0.34.0:1545-1547; called when attn_metadata is None, 0.33.0:1522-1524): float32 states of shape
(cdiv(max_num_batched_tokens, grid), num_v_heads / tp, head_v_dim, head_k_dim) (_checkpoint_buffer_spec, 0.33.0
:762-776, 0.34.0 :924-938), the grid being the Mamba block, which "align" mode sets to the attention block
(abstract.py get_mamba_prefill_checkpoint_grid, 0.33.0:116-129; platforms/interface.py 0.33.0:1114-1115; with no
--prefix-match-unit, which kvplan does not take). The workspace is one buffer grown to the largest request and never
freed (v1/worker/workspace.py 0.33.0:181-207 get_simultaneous, each view rounded up to 256 bytes), which the fused-MoE
kernels share (vllm_profile.moe_workspace): what the checkpoints add is what they need beyond the MoE's.
"""

from __future__ import annotations

from ..model.kinds import LinearState
from .vllm_specs import GDN_FLAVOR

CHECKPOINT_STATE_BYTES = 4  # torch.float32, whatever the model's or the cache's dtype
VIEW_ALIGNMENT = 256  # workspace.py get_simultaneous: round_up(actual, 256)


def gdn_checkpoint_workspace(spec, tp: int, tokens: int, groups: tuple) -> int:
    """Bytes of the gated DeltaNet's checkpoint buffer for `tokens` (max_num_batched_tokens) on one GPU at TP `tp`,
    given the KV-cache `groups` (vllm_specs.CacheSpec) start-up builds: 0 unless a Mamba group exports checkpoints
    (CacheSpec.checkpoint_blocks, set only where vLLM's layers do), its block the grid."""
    grid = next((g.block_size for g in groups if g.kind == "mamba" and g.checkpoint_blocks), 0)
    layers = [layer for layer in spec.linear_layers if isinstance(layer, LinearState) and layer.flavor == GDN_FLAVOR]
    if not grid or not layers:
        return 0
    per_state = max(layer.ssm_elements // tp for layer in layers) * CHECKPOINT_STATE_BYTES
    raw = -(-tokens // grid) * per_state
    return -(-raw // VIEW_ALIGNMENT) * VIEW_ALIGNMENT
