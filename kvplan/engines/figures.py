"""What an engine reports at start-up, in its own units and words (the `engine` object of a plan's JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional

FIELD = "{field}"  # in a Refusal's remedy: where the field at fault is named (Refusal.advice)


@dataclass(frozen=True)
class Refusal:
    """Why the engine would not start: its own message, and the longest max_model_len it says would fit."""

    reason: str
    estimated_max_model_len: Optional[int]
    # not one of the engine's own checks: start-up would crash allocating the cache (--num-gpu-blocks-override past
    # the budget); in the JSON only when true
    allocation_fails: bool = False
    # the engine refuses the configuration itself (a cache dtype no attention backend takes, a max_model_len past
    # the model's own, an architecture the release does not serve), whatever the memory; in the JSON only when true
    configuration: bool = False
    # kvplan's words: what would start instead, FIELD standing for the faulty field as the caller spells it
    # (`advice`); in the JSON only when set
    remedy: str = ""
    # the field at fault for a configuration refusal, as deployments files name it: kv_dtype, context (the max
    # model length), engine (the release); in the JSON only when set
    field: str = ""

    @property
    def first_sentence(self) -> str:
        """The engine's message up to its first full stop (its advice after that is the remedy's job)."""
        return self.reason.split(". ")[0].rstrip(".")

    def advice(self, spell: Callable[[str], str] = str) -> str:
        """The remedy, naming the field at fault as `spell` writes it (a flag, or a deployments file's key)."""
        return self.remedy.replace(FIELD, spell(self.field)) if self.field else self.remedy


@dataclass(frozen=True)
class EngineFigures:
    name: str
    version: str
    available_kv_cache_bytes: int  # per GPU; the smallest pipeline stage's when stages differ
    num_gpu_blocks: Optional[int]  # the engine's unit (vLLM: blocks of every layer of one cache group)
    gpu_kv_cache_tokens: Optional[int]  # as the engine logs "GPU KV cache size"
    max_concurrency: Optional[float]  # the float the engine logs
    starts: bool
    refusal: Optional[Refusal]
    log_lines: tuple  # verbatim, in the order the engine prints them
    kv_cache_dtype: str  # the precision the attention cache really has (a family quirk may keep the model dtype)
    block_size: int  # tokens per block after the engine's own adjustments (hybrid Mamba models raise it)
    num_kv_cache_groups: int
    blocks_per_request: Optional[int]  # blocks one max_model_len request reserves over all groups
    resident_sequences: Optional[int]  # before the max_num_seqs cap
    max_num_seqs: int
    max_num_batched_tokens: int
    # --num-gpu-blocks-override: the blocks asked for and the bytes a GPU's pool of them takes (keys only with it)
    num_gpu_blocks_override: Optional[int] = None
    override_kv_cache_bytes: Optional[int] = None

    def to_dict(self, spell: Callable[[str], str] = str) -> dict:
        """`spell`: how the refusal's remedy names the field at fault (Refusal.advice)."""
        data = asdict(self)
        data["log_lines"] = list(self.log_lines)
        for key in ("num_gpu_blocks_override", "override_kv_cache_bytes"):
            if data[key] is None:
                del data[key]
        if self.refusal is not None:
            data["refusal"]["remedy"] = self.refusal.advice(spell)
        for key in ("allocation_fails", "configuration", "remedy", "field"):
            if data["refusal"] is not None and not data["refusal"][key]:
                del data["refusal"][key]
        return data
