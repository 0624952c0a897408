"""The cache a plan implies on one TP rank: the paged tensors each group of layers allocates (vLLM's layouts),
from the layer kinds' own page shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import FieldError, KvplanError
from ..model.kinds import IndexerKeys, LinearState, SharedKV, layer_bytes
from ..model.precision import DTYPE_BYTES, Precision, resolve_kv_dtype
from ..model.spec import ModelSpec
from ..plan.plan import Plan

# torch's CUDA caching allocator gives an allocation of 10 MiB or more (kMinLargeAlloc) a segment of its own rounded
# up to 2 MiB (kRoundLarge; c10/cuda/CUDACachingAllocator.cpp get_allocation_size): device memory NVML counts
ALLOCATOR_LARGE, ALLOCATOR_ROUND = 10 * 2**20, 2 * 2**20
# ...and splits the segment's unused tail off as a free block only when it is more than 1 MiB (kSmallSize;
# should_split): a tail of 1 MiB or less stays in the tensor's block, which memory_allocated counts. Every size is
# first rounded up to 512 bytes (kMinBlockSize; round_size).
ALLOCATOR_SPLIT_ABOVE, ALLOCATOR_MIN_BLOCK = 2**20, 512


def _segment(n: int) -> int:
    """The device memory a tensor of n bytes takes in a segment of its own (NVML's view)."""
    return -(-n // ALLOCATOR_ROUND) * ALLOCATOR_ROUND if n >= ALLOCATOR_LARGE else n


def _allocated(n: int) -> int:
    """What torch's memory_allocated counts for a tensor of n bytes in a segment of its own: its whole segment where
    the tail is too small to split off. Gemma-3-27B on an H100 (session 55): 104 window tensors of 72,417,280 bytes
    (69.06 MiB, segments of 70 MiB) counted 102,236,160 bytes over their sum (+0.54% on 17.6 GiB of pools)."""
    block = -(-n // ALLOCATOR_MIN_BLOCK) * ALLOCATOR_MIN_BLOCK
    segment = _segment(n)
    return segment if n >= ALLOCATOR_LARGE and segment - block <= ALLOCATOR_SPLIT_ABOVE else block
# KV precisions the bundled kernel reads (kernel.md); int8/int4 carry per-head scales it does not take.
KERNEL_KV_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp8_e4m3": "float8_e4m3fn"}
# those precisions as --kv-cache-dtype takes them (vLLM's names), for the refusals of the others
KERNEL_KV_FLAG_VALUES = "auto, bfloat16, float16 or fp8 (fp8_e4m3)"
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "fp8_e4m3": "float8_e4m3fn", "u8": "uint8"}


@dataclass(frozen=True)
class CacheGroup:
    """Layers that share one pool of blocks: same kind, window and shape. For linear-state layers a 'block'
    is one sequence's state slot."""

    name: str
    kind: str  # full | sliding | mla | indexer | linear
    layers: tuple  # indices into spec.layers
    window: Optional[int]
    num_blocks: int  # blocks in the pool (linear: state slots)
    blocks_per_sequence: int  # what one sequence of `context` tokens holds in each layer of the group
    block_tokens: int  # tokens per block (linear: 0, a slot holds no tokens)
    # the tensors one layer allocates: (K, V), (latent,), (indexer key bytes,), (state,) or KDA's (conv, state)
    tensor_shapes: tuple
    dtype: str  # kvplan precision name of the tensors (bf16, fp8_e4m3, ...)
    element_bytes: int
    heads: int = 0  # KV heads per GPU (full/sliding), query heads per GPU are in Layout
    head_dim: int = 0  # K head dim (full/sliding), latent width (mla)
    # each tensor's precision where they differ (KDA: the convolution window in `dtype`, the recurrent state
    # float32); empty: every tensor in `dtype`
    tensor_dtypes: tuple = ()

    @property
    def dtypes(self) -> tuple:
        return self.tensor_dtypes or (self.dtype,) * len(self.tensor_shapes)

    @property
    def dtype_label(self) -> str:
        return " + ".join(dict.fromkeys(self.dtypes))

    @property
    def tensor_bytes(self) -> tuple:
        """Bytes of each tensor one layer allocates."""
        sizes = [DTYPE_BYTES[d] for d in self.dtypes] if self.tensor_dtypes else [self.element_bytes] * len(self.dtypes)
        return tuple(layer_bytes((shape,), size) for shape, size in zip(self.tensor_shapes, sizes))

    @property
    def layer_bytes(self) -> int:
        return sum(self.tensor_bytes)

    @property
    def bytes(self) -> int:
        return len(self.layers) * self.layer_bytes

    @property
    def segment_bytes(self) -> int:
        """The device memory the group's tensors take as the caching allocator rounds them (ALLOCATOR_ROUND): GLM-5.2
        at tp 16 on an H200 (session 50), 78 latent tensors of 476,135,424 bytes and 21 indexer tensors of 54,557,184
        took 38,484,836,352 bytes in NVML's view, 0.52% over their sum and exactly their rounded sizes."""
        return len(self.layers) * sum(_segment(n) for n in self.tensor_bytes)

    @property
    def allocated_view_bytes(self) -> int:
        """The group's tensors as torch's memory_allocated counts them (_allocated)."""
        return len(self.layers) * sum(_allocated(n) for n in self.tensor_bytes)

    @property
    def block_bytes(self) -> int:
        """Bytes one block id holds across all layers of the group."""
        return self.bytes // self.num_blocks if self.num_blocks else 0

    @property
    def sequence_bytes(self) -> int:
        return self.blocks_per_sequence * self.block_bytes


@dataclass(frozen=True)
class Layout:
    groups: tuple
    context: int
    block_size: int
    max_concurrency: int
    uniform: bool  # one pool of plan.kv_blocks blocks (full attention or MLA, no windows, no state)
    predicted_bytes: int  # from the plan's own numbers, not from the shapes
    q_heads_per_gpu: int

    @property
    def allocated_bytes(self) -> int:
        return sum(g.bytes for g in self.groups)

    @property
    def rounding_bytes(self) -> int:
        """What the caching allocator's rounding adds to the pools in device memory (CacheGroup.segment_bytes)."""
        return sum(g.segment_bytes - g.bytes for g in self.groups)

    @property
    def torch_rounding_bytes(self) -> int:
        """What the caching allocator's unsplit segment tails add to the pools in torch's memory_allocated."""
        return sum(g.allocated_view_bytes - g.bytes for g in self.groups)

    @property
    def sequence_bytes(self) -> int:
        return sum(g.sequence_bytes for g in self.groups)


def _group_name(kind: str, window: Optional[int]) -> str:
    return {"full": "full attention", "mla": "MLA latent", "indexer": "indexer keys",
            "linear": "linear state"}.get(kind) or f"window {window}"


def cache_layout(spec: ModelSpec, plan: Plan) -> Layout:
    """The tensors one TP rank allocates for `plan`, vLLM's layouts: K and V [num_blocks, block_size,
    kv_heads_per_gpu, head_dim] per full-attention layer, [num_blocks, block_size, latent_dim] per MLA layer,
    [max_concurrency, state elements] per linear-state layer (KDA: its convolution window and float32 recurrent
    state as two tensors); none for a layer that reads another's cache (Gemma 4's KV-sharing layers).

    Uniform models (full attention or MLA everywhere) get one pool of plan.kv_blocks blocks per layer, as
    vLLM sizes it from the budget. Models with windows or linear state have no single token pool: each
    layer group holds exactly what max_concurrency sequences need (a window layer only the blocks its last
    `window` tokens touch), and the rest of the budget, less than one more sequence, stays unallocated."""
    if not plan.tp_valid:
        raise FieldError("tp", f"{plan.tp} cannot shard {spec.name}: {plan.tp_errors[0]}")
    if not plan.fits:
        raise KvplanError(f"{spec.name} plan has no room for one sequence; nothing to lay out.")
    precision = resolve_kv_dtype(plan.kv_dtype, spec.dtype, spec.auto_kv_dtype)
    if precision.scale_bytes_per_vector or precision.name not in TORCH_DTYPES:
        raise FieldError("kv_dtype", f"{plan.kv_dtype} is not laid out by verify (its per-head scales have no "
                                     f"tensor layout here); use {KERNEL_KV_FLAG_VALUES}.")
    tp, bs, context = plan.tp, plan.block_size, plan.context
    members: dict = {}
    for index, layer in enumerate(spec.layers):
        if isinstance(layer, SharedKV):  # reads an earlier layer's pages, allocates none (vLLM: no KV cache spec)
            continue
        members.setdefault(layer.group_key, []).append(index)
    groups = []
    for indices in members.values():
        layer = spec.layers[indices[0]]
        name = _group_name(layer.kind, layer.window)
        if any(g.name == name for g in groups):  # same kind and window, another head shape (Gemma 4's overrides)
            name += f" ({layer.heads_per_gpu(tp)} x {layer.head_dim})"
        if isinstance(layer, LinearState):  # one state slot per sequence
            slots = plan.max_concurrency
            dtypes = spec.state_dtypes or (spec.dtype,) * 2  # the engine's (conv, recurrent) state dtypes
            groups.append(_state_group(name, layer, tuple(indices), slots, tp, dtypes))
            continue
        per_sequence = layer.blocks_per_sequence(context, bs)
        blocks = plan.kv_blocks if spec.uniform else plan.max_concurrency * per_sequence
        shapes = layer.page_shapes(blocks, bs, tp)
        # indexer keys are raw bytes (fp8 values and float32 scales) whatever the cache dtype
        dtype, element = ("u8", 1) if isinstance(layer, IndexerKeys) else (precision.name, precision.bits // 8)
        groups.append(CacheGroup(name, layer.kind, tuple(indices), layer.window, blocks, per_sequence, bs, shapes,
                                 dtype, element, layer.heads_per_gpu(tp), shapes[0][-1]))
    if spec.uniform:
        predicted = plan.kv_blocks * bs * plan.kv_bytes_per_token_per_gpu
    else:
        predicted = plan.max_concurrency * (plan.kv_bytes_per_sequence_per_gpu + plan.state_bytes_per_sequence_per_gpu)
    return Layout(tuple(groups), context, bs, plan.max_concurrency, spec.uniform, predicted,
                  spec.num_attention_heads // tp)


STATE_DTYPES = {4: "fp32"}  # a layer's own recurrent-state precision by its bytes (LinearState.ssm_bytes)
# mixers whose forward here takes the two states as two tensors in two dtypes (gpu/mamba.py Mamba2._slots,
# gpu/deltanet.py: its torch step over two pools; its step kernel takes one)
SPLIT_FLAVORS = ("mamba2", "gated-deltanet")
KDA_FLAVOR = "kda"  # its forward here keeps the recurrent state in float32 only (gpu/caches.py, gpu/kda.py)


def state_tensor_dtypes(layer: LinearState, dtypes: tuple) -> tuple:
    """(convolution, recurrent) dtypes of `layer`'s states, from the engine's (`dtypes`) but where the layer fixes its
    recurrent precision (LinearState.ssm_bytes)."""
    return dtypes[0], STATE_DTYPES[layer.ssm_bytes] if layer.ssm_bytes else dtypes[1]


def splits(layer: LinearState, dtypes: tuple) -> bool:
    """Whether verify lays `layer`'s states out as the engine keeps them in `dtypes`: one dtype, a convolution state
    alone, or two dtypes on a mixer whose forward here takes two tensors (SPLIT_FLAVORS) or a layer that fixes its
    recurrent precision; a KDA layer only with a float32 recurrent state (KDA_FLAVOR) (commands/verify.py refuses
    the Mamba dtype flags before torch where it does not)."""
    conv, ssm = state_tensor_dtypes(layer, dtypes)
    if layer.flavor == KDA_FLAVOR:  # two tensors, the recurrent one float32 only (vLLM 0.30+ may keep it bfloat16)
        return ssm == "fp32"
    return conv == ssm or not layer.ssm_elements or bool(layer.ssm_bytes) or layer.flavor in SPLIT_FLAVORS


def _state_group(name: str, layer: LinearState, indices: tuple, slots: int, tp: int, dtypes: tuple) -> CacheGroup:
    """One state slot per sequence, in the (convolution, recurrent) dtypes the engine keeps (ModelSpec.state_dtypes):
    where they are one dtype, [slots, state elements] in it; where they differ (Nemotron-H's float32 SSM state beside
    a bfloat16 window, vLLM's NemotronH config handler) and where the layer fixes its recurrent state's precision (KDA:
    float32, vLLM mamba_utils.py kda_state_dtype), two tensors, [slots, convolution window] and [slots, recurrent
    state], as vLLM views one page as both. A KDA state the engine keeps in another dtype (vLLM 0.30+ with
    --mamba-ssm-cache-dtype bfloat16) is refused: verify's KDA runs a float32 recurrent state only."""
    conv, ssm = state_tensor_dtypes(layer, dtypes)
    if layer.flavor == KDA_FLAVOR and not splits(layer, dtypes):  # vLLM 0.30+ with --mamba-ssm-cache-dtype bfloat16
        raise FieldError("mamba_ssm_cache_dtype", f"verify's Kimi Delta Attention keeps its recurrent state in "
                                                  f"float32 only, but the engine keeps it in {ssm} here; `kvplan "
                                                  f"estimate` plans it.")
    # one dtype, or a convolution state alone (LFM2); KDA's forward takes two tensors whatever their dtypes (gpu/kda.py)
    if (conv == ssm and layer.flavor != KDA_FLAVOR) or not layer.ssm_elements:
        return CacheGroup(name, layer.kind, indices, None, slots, 1, 0, layer.page_shapes(slots, 0, tp), conv,
                          DTYPE_BYTES[conv])
    if not splits(layer, dtypes):
        raise FieldError("mamba_ssm_cache_dtype", f"verify keeps a {layer.flavor} layer's convolution and recurrent "
                                                  f"states in one dtype, but the engine keeps them in {conv} and "
                                                  f"{ssm}; `kvplan estimate` plans it.")
    shapes = ((slots, layer.conv_per_gpu(tp)), (slots, layer.ssm_elements // tp))
    return CacheGroup(name, layer.kind, indices, None, slots, 1, 0, shapes, conv, DTYPE_BYTES[conv],
                      tensor_dtypes=(conv, ssm))


def attention_read_bytes(spec: ModelSpec, plan: Plan) -> int:
    """KV bytes one sequence's decode step reads over all attention layers (a window reads at most its
    window): the attention part of plan.decode's kv_bytes_read_per_sequence, without the linear state."""
    precision = resolve_kv_dtype(plan.kv_dtype, spec.dtype, spec.auto_kv_dtype)
    return sum(layer.bytes_per_token(plan.tp, precision) * layer.tokens_read(plan.context)
               for layer in spec.attention_layers)


def served_spec(spec: ModelSpec, engine, gpu) -> ModelSpec:
    """`spec` as `engine` serves it on `gpu`, as the estimate plans it (plan.plan: the engine's on_gpu): what
    `--kv-cache-dtype auto` stores there (vLLM 0.32 turns GLM-5.x's auto into fp8_e4m3 on SM10x, engines/
    vllm_sparse.py SM10X_AUTO). Verify resolves auto with it, so its kernel check, its plan and its pools agree with
    the estimate for the detected GPU."""
    return engine.on_gpu(spec, gpu) if hasattr(engine, "on_gpu") else spec


def kernel_kv_dtype(kv_dtype: str, spec: ModelSpec) -> Precision:
    """The KV precision verify times: one the bundled kernel reads. `spec` as served on the GPU (served_spec) when
    it is known: `auto` is what it stores there."""
    precision = resolve_kv_dtype(kv_dtype, spec.dtype, spec.auto_kv_dtype)
    if any(getattr(layer, "sparse", False) for layer in spec.layers) and precision.name.startswith("fp8"):
        # vLLM's sparse MLA keeps fp8 as a 656-byte fp8_ds_mla entry (FLASHMLA_SPARSE) or a plain 576-byte latent
        # (FlashInfer's sparse backends: engines/vllm_sparse.py); verify's sparse MLA lays out neither
        asked = (f"auto (which vLLM serves as {precision.spelling} for {spec.name} on this GPU)"
                 if kv_dtype.strip().lower() == "auto" else kv_dtype)
        raise FieldError("kv_dtype", f"{asked} is not run by verify for {spec.name}'s sparse attention: vLLM keeps "
                                     f"its fp8 latents as 656-byte fp8_ds_mla entries (512 e4m3 values, 4 float32 "
                                     f"tile scales, 64 bf16 rope values) or plain 576-byte fp8 latents (FlashInfer's "
                                     f"sparse backends), which verify's sparse MLA does not lay out; use "
                                     f"{'bfloat16' if kv_dtype.strip().lower() == 'auto' else 'auto'} (16-bit "
                                     f"latents).")
    if precision.name not in KERNEL_KV_DTYPES:
        resolved = "" if precision.name == kv_dtype.strip().lower() else f" (here {precision.name})"
        raise FieldError("kv_dtype", f"{kv_dtype}{resolved} is a cache the bundled kernel does not read; verify "
                                     f"takes {KERNEL_KV_FLAG_VALUES}.")
    if spec.is_mla and precision.name.startswith("fp8"):
        raise FieldError("kv_dtype", "fp8 with an MLA model is not timed by verify: its torch MLA stand-in reads "
                                     "bf16/fp16 latents; use auto.")
    return precision
