"""vLLM's --enable-lora: the GPU memory its LoRA model manager takes for the adapter slots, before any adapter is loaded
(vLLM 0.32.0 read; 0.12.0, 0.15.0, 0.16.0, 0.20.0 and 0.34.0 checked for differences: the layer classes' shapes are the
same in every release from 0.12).

The flags (engine/arg_utils.py 0.32.0:1572-1590; config/lora.py LoRAConfig):
- --max-loras: adapters a batch may use at once, the GPU slots (default 1, at least 1: Field(ge=1), :35);
- --max-lora-rank: the slots' rank, one of MaxLoRARanks (default 16; 1, 8, 16, 32, 64, 128, 256, 320, 512 in every
  release kvplan models LoRA for, 0.12 on: config/lora.py 0.12.0:26, 0.32.0:26);
- --lora-dtype: auto (the model's dtype: verify_with_model_config, :138-139), float16 or bfloat16 (LoRADType, :25);
- --fully-sharded-loras: the S-LoRA split (column layers' A over the TP ranks by rank, row layers' B by output).
Without --enable-lora vLLM builds no LoRAConfig (arg_utils.py 0.32.0:2650-2668: `if self.enable_lora else None`)
and ignores the others; so does kvplan, pricing no adapters, and says so (ignored_note: a note in estimate, a
warning in check), as it says of the multimodal flags vLLM ignores.

What the slots take, per GPU (LoRAModelManager._create_lora_modules, lora/model_manager.py 0.32.0:467-611): every
module the model class lists (its linear layers, get_supported_lora_modules in lora/utils.py, and the class's
embedding_modules) is wrapped by the first LoRA layer class that takes it (lora/utils.py from_layer), whose
create_lora_weights allocates zeros of max_loras x ... in lora_dtype on the layer's device:
- column-parallel, one slice (ColumnParallelLinearWithLoRA, a 1-entry packed list: Phi-3's gate_up_proj;
  QKVParallelLinearWithLoRA: Phi-3's qkv_proj): A [rank, input], B [output / tp, rank] (base_linear.py:104-153);
- merged column, a slice per packed entry (MergedColumnParallelLinearWithLoRA, column_parallel_linear.py:207-245:
  gate_up_proj, 2 of [rank, hidden] and [I / tp, rank]; MergedQKVParallelLinearWithLoRA, :453-497: qkv_proj, 3
  slices of B [q / tp | kv per rank | kv per rank, rank], a KV slice one whole head where tp exceeds the KV heads);
- row-parallel (RowParallelLinearWithLoRA, row_parallel_linear.py:22-30: o_proj, down_proj): A [rank, input / tp],
  B [output, rank];
- --fully-sharded-loras, tp > 1: the column layers' A take rank / tp rows (base_linear.py:118-124, column_parallel_
  linear.py:218-222; vLLM's divide() asserts that tp divides the rank), the row layers' B output / tp (:126-132);
- embed_tokens (VocabParallelEmbeddingWithLoRA, vocab_parallel_embedding.py:25-50): A [vocab, rank] and B
  [hidden, rank], whole on every rank;
- lm_head (LogitsProcessorWithLoRA, logits_processor.py:84-120): A [rank, hidden], B [vocab, rank], whole on every
  rank, and from tp 2 the int64 logits reindexing map of the padded vocab (get_sharded_to_full_mapping,
  model_executor/layers/vocab_parallel_embedding.py:416-428, padded to 64: :95-97); vLLM refuses a vocab above
  258,048 (257,024 up to 0.16) here.
A pipeline stage wraps its own layers, the embedding on the first and the LM head on the last (PPMissingLayer is
skipped, model_manager.py:479-480); a model with tied embeddings builds embed_tokens on the last stage too (llama.py
0.34.0:377-381, 0.32.0:377-381; qwen2.py 0.34.0:363-367), so its slots are there as well. One punica wrapper a
model (model_manager.py:185-205) holds its index tensors: 4 int64 of max_num_batched_tokens and 3 of max_num_seqs
(punica_wrapper/punica_base.py:125-155), and PunicaWrapperGPU two LoRAKernelMeta of 2 int32 x max_num_batched_tokens
and 3 of max_loras + 1 or 2 (punica_gpu.py:39-72, ops/triton_ops/lora_kernel_metadata.py:48-84). The dummy
adapters of the profile run live on the CPU (model_manager.py create_dummy_lora: "cpu"), so nothing more stays on the
GPU.

Where vLLM counts it: the runner builds the manager in load_model, inside the weights' DeviceMemoryProfiler
(v1/worker/gpu_model_runner.py 0.32.0:5050-5069, 0.12.0:3481-3548; Model Runner V2: v1/worker/gpu/model_runner.py
0.32.0:390-403, 0.34.0:410-440), so its
"Model loading took" figure holds it and the KV budget loses it once. kvplan shows it as a budget line of its own
("lora"), next to the weights. Not modelled: the punica kernels' float32 shrink buffers in the profile run (tokens x
rank a slice, freed before a dense MLP's activation, which sets its peak); the CUDA graphs LoRA captures twice, every
size without and with adapters (cudagraph_specialize_lora, default True: config/compilation.py 0.32.0:663,
v1/cudagraph_dispatcher.py 0.32.0:110-128; Model Runner V2 v1/worker/gpu/lora_utils.py), which 0.32's V2 runner
measures before sizing the cache (kvplan's graph reserve is one assumed constant: GRAPHS_NOTE); and, in decode
times, LoRA's extra kernels and adapter reads (ITL_NOTE).

Which models: vLLM refuses a class without LoRA support (v1/worker/lora_model_runner_mixin.py 0.32.0:46-48, "<class>
does not support LoRA yet."; vllm_lora_classes.WITHOUT_LORA, by release), a vocabulary past LoRA's limit (VOCAB_RULES)
and, with a speculative config, a batch too small for every sequence's drafts: each a refusal the plan carries
(lora_refusal, speculative_refusal; VllmEngine), as vLLM fails to start that one deployment. kvplan prices the dense
decoders of PRICED, whose modules it knows release by release; any other architecture vLLM serves with LoRA (MoE
experts, multimodal towers, hybrid mixers) is refused as kvplan's limit (FieldError, exit 2), as is a release before
0.12 (0.11's extra-vocabulary slots, config/lora.py 0.11.0:47, are not modelled: vllm_engine.MODELLED_SINCE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import FieldError, quote
from ..model.choices import refuse_spaces
from ..model.kinds import kv_heads_per_gpu
from ..model.precision import DTYPE_BYTES
from ..units import whole_number
from .vllm_versions import parse_version, release_rule

FLAGS = ("max_loras", "max_lora_rank", "lora_dtype", "fully_sharded_loras")  # the ones --enable-lora switches on
LORA_DTYPES = ("auto", "float16", "bfloat16")  # config/lora.py LoRADType (0.11.0:25, 0.32.0:25, 0.34.0:25)
LORA_DTYPE_NAMES = {"float16": "fp16", "bfloat16": "bf16"}  # as kvplan names the model dtypes (precision.py)
# MaxLoRARanks (config/lora.py 0.12.0:26, 0.32.0:26, 0.34.0:26), the same list in every release from 0.12
MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
MAX_SLOTS = 2**20  # a bound on the numbers, not vLLM's (config/lora.py 0.32.0:35, 0.34.0:35: Field(ge=1) only)
# LogitsProcessorWithLoRA.create_lora_weights' vocab limit (logits_processor.py), newest first
# (vLLM's words, verbatim: no full stop)
VOCAB_RULES = (
    ((0, 17), 258048, "When using LoRA, vocab size must be <= 258048", "0.17.0:91-92"),
    ((0, 0), 257024, "When using LoRA, vocab size must be 32000 >= vocab_size <= 257024",
     "0.12.0:92-95, `if 32000 < vocab_size > 257024`"),
)
PUNICA_TOKEN_INDICES, PUNICA_SEQ_INDICES = 4, 3  # punica_base.py: int64 tensors of max_num_batched_tokens / max_seqs
KERNEL_METAS = 2  # PunicaWrapperGPU: token_mapping_meta and prompt_mapping_meta
VOCAB_PADDING = 64  # vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE (0.32.0:36), the LM head's


@dataclass(frozen=True)
class LoraConfig:
    """--enable-lora with its settings (vLLM's defaults)."""

    max_loras: int = 1
    max_lora_rank: int = 16
    lora_dtype: str = "auto"
    fully_sharded_loras: bool = False

    def describe(self) -> str:
        sharded = ", fully sharded" if self.fully_sharded_loras else ""
        return f"max_loras {self.max_loras} x rank {self.max_lora_rank}{sharded}"


@dataclass(frozen=True)
class Layout:
    """The LoRA modules one decoder layer of an architecture has, as its vLLM class lists them."""

    qkv_slices: int  # packed_modules_mapping["qkv_proj"]: 3 (q, k, v) or 1 (one qkv_proj)
    gate_up_slices: int  # packed_modules_mapping["gate_up_proj"]: 2 (gate, up) or 1
    embeddings: bool  # embedding_modules names embed_tokens and lm_head


LLAMA, NO_EMBEDDINGS, PHI3 = Layout(3, 2, True), Layout(3, 2, False), Layout(1, 1, True)
# architecture -> ((first release, layout, where vLLM says so), ...), newest first. 0.15.0 and 0.15.1 (no source
# release on PyPI) read in their wheels: Mistral's own module from 0.15.0, Qwen3's embedding_modules from 0.16.0.
PRICED = {
    "LlamaForCausalLM": (((0, 12), LLAMA, "llama.py LlamaForCausalLM packed_modules_mapping / embedding_modules "
                                          "(0.12.0:521-530, 0.32.0:475-482, 0.34.0:475-482)"),),
    "MistralForCausalLM": (
        ((0, 15), NO_EMBEDDINGS, "mistral.py MistralForCausalLM(LlamaForCausalLM): embedding_modules {} (0.15.0 "
                                 "and 0.15.1 :238-240, registry.py 0.15.0:156; 0.16.0:232, 0.32.0:238, 0.34.0:238)"),
        ((0, 12), LLAMA, "registry.py 0.12.0:147 (0.14.1 :155) serves it as llama.LlamaForCausalLM"),
    ),
    "Qwen2ForCausalLM": (((0, 12), NO_EMBEDDINGS, "qwen2.py Qwen2ForCausalLM packed_modules_mapping, no "
                                                  "embedding_modules (0.12.0:492, 0.32.0:462, 0.34.0:459)"),),
    "Qwen3ForCausalLM": (
        ((0, 16), LLAMA, "qwen3.py Qwen3ForCausalLM embedding_modules (0.16.0:274, 0.32.0:288, 0.34.0:288)"),
        ((0, 12), NO_EMBEDDINGS, "qwen3.py 0.12.0:255, no embedding_modules (nor in 0.15.0 or 0.15.1)"),
    ),
    "Gemma2ForCausalLM": (((0, 12), NO_EMBEDDINGS, "gemma2.py Gemma2ForCausalLM packed_modules_mapping, no "
                                                   "embedding_modules (0.12.0:378, 0.32.0:327, 0.34.0:327)"),),
    "Phi3ForCausalLM": (((0, 12), PHI3, "phi3.py Phi3ForCausalLM(LlamaForCausalLM): qkv_proj and gate_up_proj "
                                        "packed as themselves (0.12.0:11-14, 0.32.0:11-14, 0.34.0:11-14)"),),
}


def _count(value, field: str, valid: str) -> int:
    number = whole_number(value)  # '8' as 8; ASCII digits, counted before int() (units.MAX_INT_DIGITS)
    if isinstance(number, bool) or not isinstance(number, int):
        raise FieldError(field, f"must be a whole number, {valid}, got {quote(value)}.")
    return number


def lora_config(enable, max_loras=None, max_lora_rank=None, lora_dtype=None,
                fully_sharded_loras=None) -> Optional[LoraConfig]:
    """vLLM's --enable-lora and its settings as LoraConfig; None without --enable-lora, where vLLM ignores the
    settings (no LoRAConfig is built) and so does kvplan (ignored_flags / ignored_note say so). The rank and dtype
    are checked either way (vLLM's argparse takes them from MaxLoRARanks' and LoRADType's choices); max_loras' range
    only with --enable-lora, its Field(ge=1) being LoRAConfig's, which is built only then."""
    slots = 1 if max_loras is None else _count(max_loras, "max_loras", "1 or more (vLLM's --max-loras)")
    if enable and not 1 <= slots <= MAX_SLOTS:
        shown = f"{slots:,}" if slots < 2**64 else quote(slots)  # quote(): an integer of hundreds of digits
        raise FieldError("max_loras", f"must be 1 to {MAX_SLOTS:,} (vLLM's --max-loras takes 1 or more, Field(ge=1); "
                                      f"kvplan's bound is 2**20), got {shown}.")
    ranks = MAX_LORA_RANKS
    rank = 16 if max_lora_rank is None else _count(max_lora_rank, "max_lora_rank", "one of vLLM's ranks")
    if rank not in ranks:
        raise FieldError("max_lora_rank", f"must be one of {', '.join(map(str, ranks))} (vLLM's MaxLoRARanks), got "
                                          f"{rank}.")
    # as typed: argparse takes LoRADType's choices exactly (config/lora.py 0.32.0:25, :45; engine/arg_utils.py
    # 0.32.0:214-228 literal_to_kwargs), so " auto" and FLOAT16 stop `vllm serve` (model/choices.py)
    dtype = "auto" if lora_dtype is None else lora_dtype
    if dtype not in LORA_DTYPES:
        refuse_spaces("lora_dtype", dtype, LORA_DTYPES)
        raise FieldError("lora_dtype", f"must be one of {', '.join(LORA_DTYPES)} (vLLM's LoRADType), got "
                                       f"{quote(lora_dtype)}.")
    return LoraConfig(slots, rank, dtype, bool(fully_sharded_loras)) if enable else None


def ignored_flags(enable, max_loras=None, max_lora_rank=None, lora_dtype=None, fully_sharded_loras=None) -> tuple:
    """The LoRA settings given without --enable-lora, which vLLM ignores (FLAGS' order); () with it or none given."""
    given = {"max_loras": max_loras, "max_lora_rank": max_lora_rank, "lora_dtype": lora_dtype,
             "fully_sharded_loras": fully_sharded_loras or None}
    return () if enable else tuple(field for field in FLAGS if given[field] is not None)


def ignored_note(fields: tuple, spell=str) -> str:
    """A sentence (no full stop) naming, as `spell` writes them, the LoRA settings vLLM ignores without
    --enable-lora; '' when none."""
    if not fields:
        return ""
    verb = "changes" if len(fields) == 1 else "change"
    return (f"{', '.join(spell(f) for f in fields)} {verb} nothing without {spell('enable_lora')}: vLLM builds no LoRA "
            f"config then and ignores {'it' if len(fields) == 1 else 'them'} (engine/arg_utils.py 0.32.0:2650-2668), "
            f"so no adapter slots are planned")


# what LoRA costs that is not modelled: GRAPHS_NOTE in the graph term's source (vllm_budget._lora_graphs), ITL_NOTE
# among estimate's notes
GRAPHS_NOTE = ("LoRA captures every CUDA graph size twice, without and with adapters (cudagraph_specialize_lora: "
               "v1/cudagraph_dispatcher.py 0.32.0:110-128); not modelled, kvplan's graph reserve is its one constant")
ITL_NOTE = "decode ITL ignores LoRA's extra kernels (punica shrink / expand) and its adapter reads"


def lora_notes(flags, spell=str, spec=None, version: str = "") -> tuple:
    """What estimate notes of LoRA under `flags` (engines.EngineFlags): the settings vLLM ignores without
    --enable-lora (ignored_note), or, with it, LoRA's decode cost that kvplan does not model (ITL_NOTE), unless
    vLLM `version` refuses LoRA for `spec` (lora_refusal: nothing is built, nothing decodes). Its graphs are noted
    in the graph term's source, where they are captured (vllm_budget._lora_graphs)."""
    if flags.enable_lora:
        refused = spec is not None and version and lora_refusal(spec, version, flags.enable_lora) is not None
        return () if refused else (ITL_NOTE,)
    ignored = ignored_note(flags.lora_ignored, spell)
    return (ignored,) if ignored else ()


def class_refusal(spec, version: str) -> str:
    """vLLM `version`'s words refusing LoRA for `spec`'s class (vllm_lora_classes.WITHOUT_LORA), or ''."""
    from .vllm_registry import served_architecture
    from .vllm_lora_classes import WITHOUT_LORA

    first, name = WITHOUT_LORA.get(served_architecture(spec, version), ("", ""))
    if not name or (first is not None and parse_version(version) >= parse_version(first)):
        return ""
    return f"{name} does not support LoRA yet."


def lora_refusal(spec, version: str, config: LoraConfig):
    """vLLM `version`'s refusal (figures.Refusal) of LoRA for `spec` whatever the memory, or None: a class without
    LoRA support (v1/worker/lora_model_runner_mixin.py 0.32.0:46-48, load_lora_model), then a vocabulary above
    LogitsProcessorWithLoRA's limit where the class wraps lm_head (vocab_refusal). Both are met building the model,
    so the deployment fails to start; for a class the remedy is LoRA left out (a later release that supports the
    class is never a dense decoder kvplan prices)."""
    from .figures import Refusal

    said = class_refusal(spec, version)
    if said:
        return Refusal(said, None, configuration=True, field="enable_lora", remedy=LEAVE_OUT, remedy_flags=LORA_FLAG)
    return vocab_refusal(spec, version) if priced(spec, version) else None


LEAVE_OUT, LORA_FLAG = "leave --enable-lora out", (("enable_lora", "--enable-lora"),)


def vocab_refusal(spec, version: str):
    """LogitsProcessorWithLoRA's refusal of `spec`'s vocabulary under vLLM `version` (VOCAB_RULES), where the class
    wraps lm_head, or None. A vocabulary the newest limit takes is refused on the release, a later one (the first
    VOCAB_RULES row that takes it, and those after) being the remedy besides LoRA left out; one past every limit
    on enable_lora."""
    from .figures import Refusal

    vocab = spec.vocab_size
    _, limit, words, where = next(row for row in VOCAB_RULES if parse_version(version) >= row[0])
    if not release_rule(PRICED[_architecture(spec, version)], version).embeddings or vocab <= limit:
        return None
    reason = f"{words} ({spec.name}'s is {vocab:,}, above {limit:,}: logits_processor.py {where})"
    later = [row[0] for row in VOCAB_RULES if vocab <= row[1] and row[0] > parse_version(version)]
    if not later:
        return Refusal(reason, None, configuration=True, field="enable_lora", remedy=LEAVE_OUT,
                       remedy_flags=LORA_FLAG, headline=words)
    first = ".".join(map(str, min(later) + (0,)))
    return Refusal(reason, None, configuration=True, field="engine", options=(f"vllm=={first}",), onward="newer",
                   remedy=f"--engine vllm=={first} or newer, or {LEAVE_OUT}", also=LEAVE_OUT, remedy_flags=LORA_FLAG,
                   headline=words)


def speculative_refusal(settings, config: LoraConfig, speculative, default_seqs: Optional[int] = None):
    """vLLM's refusal of LoRA with a speculative config whose drafts do not fit a batch: max_num_batched_tokens below
    max_num_seqs x (num_speculative_tokens + 1) (engine/arg_utils.py 0.32.0:2671-2683, 0.12.0:1666, 0.34.0:2750,
    create_engine_config: before the engine core starts), or None. `default_seqs`: vLLM's uncapped default
    max_num_seqs where --max-num-seqs is not given, which the remedy's batched tokens are reckoned from (below)."""
    from .figures import Refusal

    if speculative is None:
        return None
    seqs, batched, drafts = settings.max_num_seqs, settings.max_num_batched_tokens, speculative.num_speculative_tokens
    needed = seqs * (drafts + 1)
    if batched >= needed:
        return None
    return Refusal(f"Consider increasing max_num_batched_tokens or decreasing num_speculative_tokens (with LoRA, "
                   f"max_num_batched_tokens {batched:,} < max_num_seqs {seqs:,} x (num_speculative_tokens + 1) = "
                   f"{needed:,}).", None, configuration=True, field="max_num_batched_tokens",
                   headline="LoRA with a speculative config needs max_num_batched_tokens >= max_num_seqs x "
                            "(num_speculative_tokens + 1)",
                   remedy=f"raise --max-num-batched-tokens to {batched_tokens_needed(seqs, drafts, default_seqs)} or "
                          f"more (or lower --max-num-seqs or num_speculative_tokens)",
                   remedy_flags=(("max_num_batched_tokens", "--max-num-batched-tokens"),
                                 ("max_num_seqs", "--max-num-seqs")))


def batched_tokens_needed(seqs: int, drafts: int, default_seqs: Optional[int]) -> int:
    """The batched tokens that clear speculative_refusal when given. Without --max-num-seqs vLLM caps its default
    max_num_seqs at the batched tokens (engine/arg_utils.py 0.32.0:3178-3180, 0.12.0:2016, 0.34.0:3271), so a
    value below the default makes max_num_seqs that value and is always refused; the need is then the uncapped
    default's (1,024 x 9 = 9,216 on an H100 with 8 drafts), not the capped one's."""
    return max(seqs, default_seqs or 0) * (drafts + 1)


def _architecture(spec, version: Optional[str]) -> str:
    from .vllm_registry import served_architecture

    return served_architecture(spec, version)


def priced(spec, version: Optional[str] = None) -> bool:
    """Whether kvplan prices LoRA's slots for `spec` under vLLM `version` (None: PINNED): a dense text decoder of
    PRICED."""
    return _architecture(spec, version) in PRICED and not spec.experts and not spec.multimodal


def layout(spec, version: str) -> Layout:
    """The LoRA modules vLLM `version` wraps in `spec`'s decoder layers, or FieldError (exit 2) where kvplan does not
    price them (PRICED: dense text decoders); a class vLLM refuses is lora_refusal's."""
    if not priced(spec, version):
        what = "MoE experts" if spec.experts else "a multimodal model" if spec.multimodal else \
            _architecture(spec, version)
        raise FieldError("enable_lora", f"is not priced by kvplan for {spec.name} ({what}): kvplan models LoRA's "
                                        f"adapter memory for the dense decoders {', '.join(PRICED)} only (vLLM "
                                        f"serves LoRA here; kvplan's limit).")
    return release_rule(PRICED[_architecture(spec, version)], version)


def _linear(rank: int, a_rows: int, inputs: int, outputs: tuple) -> int:
    """Elements of one adapter slot of a linear wrapper: an A [a_rows, inputs] and a B [output, rank] a slice."""
    return sum(a_rows * inputs + out * rank for out in outputs)


def layer_elements(spec, tp: int, config: LoraConfig, shape: Layout) -> dict:
    """module -> elements of one adapter slot in one decoder layer on one TP rank."""
    r, fully = config.max_lora_rank, config.fully_sharded_loras and tp > 1
    hidden, inter = spec.hidden_size, spec.intermediate_size
    q, kv = spec.num_attention_heads // tp * spec.head_dim, kv_heads_per_gpu(spec.kv_heads, tp) * spec.head_dim
    column_a = r // tp if fully else r  # column layers' A rows (S-LoRA: split by rank)
    row_b = hidden // tp if fully else hidden  # row layers' B rows (split by output)
    qkv = (q, kv, kv) if shape.qkv_slices == 3 else (q + 2 * kv,)
    gate_up = (inter // tp,) * 2 if shape.gate_up_slices == 2 else (2 * inter // tp,)
    return {"qkv_proj": _linear(r, column_a, hidden, qkv),
            "o_proj": r * spec.num_attention_heads * spec.head_dim // tp + row_b * r,
            "gate_up_proj": _linear(r, column_a, hidden, gate_up),
            "down_proj": r * inter // tp + row_b * r}


def punica_bytes(settings, config: LoraConfig) -> int:
    """The punica wrapper's index tensors (PunicaWrapperBase and PunicaWrapperGPU's two LoRAKernelMeta)."""
    tokens, seqs, slots = settings.max_num_batched_tokens, settings.max_num_seqs, config.max_loras
    meta = 2 * tokens * 4 + 2 * (slots + 1) * 4 + (slots + 2) * 4
    return 8 * (PUNICA_TOKEN_INDICES * tokens + PUNICA_SEQ_INDICES * seqs) + KERNEL_METAS * meta


def lora_bytes(spec, tp: int, stage, settings, config: LoraConfig, version: str) -> tuple:
    """(bytes, source) of the LoRA slots and punica tensors on one GPU of `stage` (None: the whole model)."""
    shape = layout(spec, version)
    if config.fully_sharded_loras and tp > 1 and config.max_lora_rank % tp:
        raise FieldError("max_lora_rank", f"{config.max_lora_rank} does not split over tp {tp}: with "
                                          f"fully_sharded_loras vLLM divides the rank over the TP ranks and asserts "
                                          f"it divides (distributed/utils.py divide).", names=("fully_sharded_loras",))
    dtype = spec.dtype if config.lora_dtype == "auto" else LORA_DTYPE_NAMES[config.lora_dtype]
    width, slots, r = DTYPE_BYTES[dtype], config.max_loras, config.max_lora_rank
    first, last = stage is None or stage.is_first, stage is None or stage.is_last
    layers = spec.num_hidden_layers if stage is None else stage.layers
    per_layer = sum(layer_elements(spec, tp, config, shape).values()) * width * slots
    parts = [(per_layer * layers, f"{_mib(per_layer)} a layer x {layers} layers (qkv_proj "
                                  f"{_slices(shape.qkv_slices)}, o_proj, gate_up_proj {_slices(shape.gate_up_slices)},"
                                  f" down_proj)")]
    if shape.embeddings:
        vocab = spec.vocab_size
        table = (vocab * r + spec.hidden_size * r) * width * slots
        mapping = 8 * -(-vocab // VOCAB_PADDING) * VOCAB_PADDING if tp > 1 else 0
        if first or (last and tied_embeddings(spec)):  # a tied model builds embed_tokens on the last stage too
            parts.append((table, f"embed_tokens {_mib(table)}" + ("" if first else " (tied: built on the last "
                                                                               "stage too)")))
        if last:
            parts.append((table + mapping, f"lm_head {_mib(table)}" + (
                f" + its logits map {_mib(mapping)}" if mapping else "")))
    punica = punica_bytes(settings, config)
    parts.append((punica, f"punica metadata {_mib(punica)}"))
    name = "auto = " + dtype if config.lora_dtype == "auto" else config.lora_dtype
    source = (f"--enable-lora {config.describe()}, {name}: LoRAModelManager's stacked A/B slots, "
              + ", ".join(text for _, text in parts) + f" ({shape_source(spec, version)}); allocated in load_model, "
              "so vLLM's \"Model loading took\" holds them")
    return sum(size for size, _ in parts), source


def tied_embeddings(spec) -> bool:
    """Whether `spec` ties its LM head to its embedding (its lm_head parameters 0 bytes, as plan/sharding.py
    stage_weights reads them)."""
    groups = {g.name: g.bytes for g in spec.params}
    return bool(groups.get("embed")) and not groups.get("lm_head")


def shape_source(spec, version: str) -> str:
    from .vllm_registry import served_architecture

    return next(row[2] for row in PRICED[served_architecture(spec, version)] if parse_version(version) >= row[0])


def _slices(count: int) -> str:
    return f"{count} slices" if count > 1 else "1 slice"


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB" if size < 2**30 else f"{size / 2**30:,.2f} GiB"
