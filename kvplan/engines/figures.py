"""What an engine reports at start-up, in its own units and words (the `engine` object of a plan's JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Callable, Optional

from ..errors import respelled

ONWARD = {"newer": "or newer", "older": "or older", "less": "or less"}  # Fix.onward, in words


@dataclass(frozen=True)
class Fix:
    """One way past a configuration refusal: the fields to change, each checked against every configuration refusal
    of the engine (the refused field first; a release as an engine name, "vllm==0.18.0"), and, once the planner has
    planned the changed configuration, whether it then holds a request."""

    changes: tuple  # ((field, value), ...)
    onward: str = ""  # the first change's values past it do as well: "newer" / "older" releases, a "less" length
    note: str = ""  # kvplan's words on the first change (a length past the model's own: the env var that allows it)
    fits: Optional[bool] = None  # None: not planned; True: it starts and holds a request; False: it does not
    shortfall: str = ""  # with fits False: what stops it then, in kvplan's words ("the weights alone do not fit")
    # a release fix that holds over a closed run of releases only (the modelled releases next to it that pass every
    # configuration refusal alike, vllm_remedy, or share its planned outcome, plan.ranged_fixes): (the run's oldest
    # release, the first newer one past it that does not pass alike), ("0.11.1", "0.16.0"); release_span
    span: tuple = ()

    def words(self, spell: Callable[[str], str] = str, onward: bool = True) -> str:
        """The changes as `spell` names the fields: "--engine vllm==0.12.0 or newer and --block-size 1", "--engine
        vllm==0.11.1 (any release from 0.11.1 before 0.16.0)"."""
        parts = [f"{spell(field)} {value}" for field, value in self.changes]
        if self.span:
            parts[0] += f" (any release from {self.span[0]} before {self.span[1]})"
        elif onward and self.onward:
            parts[0] += " " + ONWARD[self.onward]
        return " and ".join(parts) + (f" ({self.note})" if self.note else "")


def release_span(run, releases) -> tuple:
    """A closed run of `releases` (the releases at which a rule kvplan models changes) as (its oldest, the first of
    `releases` newer than its newest): a release between two of them acts as the older one, so every release from
    the first before the second (0.17.1 of a run of 0.11.0 ... 0.17.0 that 0.18.0 ends) acts as one of the run;
    () where none of `releases` is newer (the run is not closed)."""
    newest = max(run, key=_release)
    after = [r for r in releases if _release(r) > _release(newest)]
    return (min(run, key=_release), min(after, key=_release)) if after else ()


def _release(name: str) -> tuple:
    return release_number(name)


def release_number(name: str) -> tuple:
    """(0, 2, 1) of "vllm==0.2.1.post1" or "0.2.1.post1": a post-release is its base (vllm_releases.release_parts)."""
    from .vllm_releases import release_parts

    return release_parts(name.split("==")[-1])


def fixes_advice(fixes: tuple, spell: Callable[[str], str] = str) -> str:
    """kvplan's remedy from planned fixes: "it starts with A, or with B" where the changed configuration holds a
    request; "vLLM accepts A, but then ..." where memory then stops it ("but at --max-model-len N ..." for a length
    and the shorter ones); "vLLM accepts A" where it was not planned. Values of one field that stand alone are
    listed together ("--kv-cache-dtype auto, bfloat16")."""
    starts, accepted = [], {}  # what stops it (None: not planned) -> the fixes' words
    for fix in _merged(fixes):
        if fix.fits:
            starts.append(fix.words(spell))
        else:
            at = f"at {replace(fix, note='').words(spell, onward=False)}" if fix.onward == "less" else "then"
            accepted.setdefault(None if fix.fits is None else f"{at} {fix.shortfall}", []).append(fix.words(spell))
    clauses = ["it starts with " + ", or with ".join(starts)] if starts else []
    for stop, words in accepted.items():
        clauses.append("vLLM accepts " + ", or ".join(words) + (f", but {stop}" if stop else ""))
    return "; or ".join(clauses)


def first_named(fixes: tuple) -> Optional[Fix]:
    """The fix fixes_advice names first: the first that starts, else the first (None for no fixes)."""
    return next((fix for fix in fixes if fix.fits), fixes[0] if fixes else None)


def _merged(fixes: tuple) -> list:
    """Single-change fixes of one field with the same outcome, as one fix listing their values."""
    out: list = []
    for fix in fixes:
        last = out[-1] if out else None
        same_outcome = last is not None and (fix.fits, fix.shortfall) == (last.fits, last.shortfall)
        if (same_outcome and len(fix.changes) == len(last.changes) == 1 and not fix.onward and not last.onward
                and not fix.span and not last.span
                and fix.changes[0][0] == last.changes[0][0]):
            field, value = last.changes[0]
            out[-1] = replace(last, changes=((field, f"{value}, {fix.changes[0][1]}"),))
        else:
            out.append(fix)
    return out


def format_gib(value: int) -> str:
    """GiB as vLLM words them in its log lines and refusals (vllm/utils/mem_utils.py format_gib): str(round(bytes /
    2**30, 2)), so 6.5 not 6.50."""
    return f"{round(value / 2**30, 2)}"


# how vLLM's memory check begins its estimate of the longest max_model_len that fits (kv_cache_utils.py
# 0.32.0:1025-1027; 0.34.0 kv_cache_planning.py:120)
ESTIMATE_SAID = "Based on the available memory, the estimated maximum model length is"


@dataclass(frozen=True)
class Refusal:
    """Why the engine would not start: its own message, and the longest max_model_len it says would fit."""

    reason: str
    estimated_max_model_len: Optional[int]
    # not one of the engine's own checks: start-up would crash allocating the cache (--num-gpu-blocks-override past
    # the budget); in the JSON only when true
    allocation_fails: bool = False
    # the engine refuses the configuration itself (a cache dtype no attention backend takes, a max_model_len past
    # the model's own, an architecture the release does not serve, a block size), whatever the memory; in the JSON
    # only when true
    configuration: bool = False
    # kvplan's words: what would start instead (fixes_advice of `fixes`, the fields named as the caller of the plan
    # spells them); in the JSON only when set
    remedy: str = ""
    # the field at fault for a configuration refusal, as deployments files name it: kv_dtype, context (the max
    # model length), engine (the release), block_size; in the JSON only when set
    field: str = ""
    # the closed run of releases of the fix the remedy names first, where that fix has one (Fix.span), for scripts:
    # ("0.11.1", "0.16.0") of "--engine vllm==0.11.1 (any release from 0.11.1 before 0.16.0)"; set with the remedy
    # (plan.plan), in the JSON only when set, as {"from": "0.11.1", "before": "0.16.0"}
    remedy_range: tuple = ()
    # the values of `field` that pass this check (a release as an engine name), and whether the values past them
    # do as well (Fix.onward); kvplan's note on them. Not in the JSON: the engine's search starts from them
    options: tuple = ()
    onward: str = ""
    note: str = ""
    # what clears it, checked against every configuration refusal and planned (plan.plan); not in the JSON: the
    # remedy says it
    fixes: tuple = ()
    # a remedy in kvplan's words that names fields by vLLM's flags: ((field, flag as written), ...), which advice()
    # writes as the caller spells the fields (a deployments file's keys); not in the JSON
    remedy_flags: tuple = ()
    # the field `options` are values of where it is not `field` (the fix search's: a later release, "engine", for a
    # quantisation this GPU is refused); not in the JSON
    fix_field: str = ""
    # kvplan's words on what else clears it, outside the fields the fix search changes (a GPU, the model without its
    # quantisation), each checked against every configuration refusal: said after the fixes; not in the JSON
    also: str = ""
    # the engine's message as a one-line summary says it where `summary`'s cut at ": " would drop the value at fault
    # ("Unknown quantization method: marlin", "Unsupported quantization config: bits=3, sym=True"); not in the JSON
    headline: str = ""
    # vLLM's price of one max_model_len request in its memory check (vllm.memory_refusal: bytes a block x the blocks
    # its groups reserve), where that check refused; 0 otherwise. Not in the JSON: the reason quotes it
    needed_bytes: int = 0
    # the advice vLLM 0.34's memory checks append (vllm.more_memory_hint), which its auto-fit's refusal gives too
    # (vllm_auto_fit.no_fit_refusal); "" otherwise. Not in the JSON: the reason quotes it
    hint: str = ""

    @property
    def first_sentence(self) -> str:
        """The engine's message up to its first full stop (its advice after that is the remedy's job)."""
        return self.reason.split(". ")[0].rstrip(".")

    @property
    def statement(self) -> str:
        """The engine's message as it states the problem, its advice left out (what to try, a hint, a link: kvplan's
        remedy says what would start): its first sentence and, where it gives one, its estimate of the longest length
        that fits (vllm.refusal_message), for a sentence of kvplan's to quote."""
        rest = self.reason.split(". ")[1:]
        return ". ".join([self.first_sentence, *(s.rstrip(".") for s in rest if s.startswith(ESTIMATE_SAID))])

    @property
    def summary(self) -> str:
        """The engine's message in a one-line summary: `headline`, else its first sentence up to a ": " (what
        follows is a list or an explanation)."""
        return self.headline or self.first_sentence.split(": ")[0]

    def advice(self, spell: Callable[[str], str] = str) -> str:
        """The remedy, naming the fields as `spell` writes them (a flag, a deployments file's key, an API keyword)."""
        if not self.fixes:  # kvplan's own words (a search that found none says so: vllm_remedy.nothing_clears)
            return self.spelled(self.remedy, spell)
        # the fixes' notes are kvplan's words too ("the sliding window --disable-sliding-window caps it to")
        return self.spelled(fixes_advice(self.fixes, spell) + (f"; or {self.also}" if self.also else ""), spell)

    def spelled(self, text: str, spell: Callable[[str], str]) -> str:
        """kvplan's words with the flags of remedy_flags written as `spell` names their fields."""
        return respelled(text, self.remedy_flags, spell)


# EngineFigures' own readings, which the notes take
NOT_IN_JSON = ("fewest_blocks", "admission_blocks")
# V0's readings, in the JSON only where the plan runs on V0 (`core` "v0"), after `core`; v0_reason only where a
# release from 0.8 falls back to V0 (before 0.8 V0 is the only engine)
V0_KEYS = ("v0_reason", "virtual_engines", "watermark_blocks")
REFUSAL_NOT_IN_JSON = ("options", "onward", "note", "fixes", "remedy_flags", "fix_field", "also", "headline",
                       "needed_bytes", "hint")


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
    runner: str = "generate"  # the runner vLLM serves the model with: generate | pooling (vllm_pooling.pooling_runner)
    # V0's schedulers sharing the blocks, one a pipeline stage (vllm_v0_pp.virtual_engines); in the JSON on V0 only
    virtual_engines: int = 1
    # the blocks each V0 scheduler keeps free when it admits a request (vllm_v0_admission.watermark_blocks); 0 on
    # V1; in the JSON on V0 only
    watermark_blocks: int = 0
    # the fewest blocks with which the engine admits one request of max len (V1: the request's at its start-up check
    # or its admission, and the null block from 0.8.3; V0: each virtual engine's share past its watermark,
    # vllm_v0_admission.fewest_share), for the fix of a --num-gpu-blocks-override too small; kvplan's reading, not
    # in the JSON
    fewest_blocks: Optional[int] = None
    # V1: the free blocks one request of max len needs to be let in and prefilled (the release's admission gate or
    # the prefill's peak, whichever is more: vllm_admission_gate.py); kvplan's reading, not in the JSON
    admission_blocks: Optional[int] = None
    # why a release from 0.8 serves the deployment on V0 (vllm_v1_oracle.v0_fallback's words), "" on V1 and before
    # 0.8; in the JSON only when set
    v0_reason: str = ""
    # which of vLLM's engines serves the plan: "v0" (every release up to 0.7, and 0.8-0.10.2 where
    # EngineArgs._is_v1_supported_oracle falls back: v0_reason) or "v1" (vllm_engine.VllmEngine.capacity)
    core: str = ""

    def to_dict(self, spell: Callable[[str], str] = str) -> dict:
        """`spell`: how the refusal's remedy names the field at fault (Refusal.advice)."""
        data = asdict(self)
        for key in NOT_IN_JSON:
            del data[key]
        v0 = {key: data.pop(key) for key in V0_KEYS}
        data["core"] = data.pop("core")  # after the older keys: a CSV's earlier columns keep their places
        if self.core == "v0":
            data.update({key: value for key, value in v0.items() if key != "v0_reason" or value})
        data["log_lines"] = list(self.log_lines)
        for key in ("num_gpu_blocks_override", "override_kv_cache_bytes"):
            if data[key] is None:
                del data[key]
        if self.refusal is not None:
            data["refusal"]["remedy"] = self.refusal.advice(spell)
        if data["refusal"] is not None:
            for key in REFUSAL_NOT_IN_JSON:
                del data["refusal"][key]
            if self.refusal.remedy_range:
                data["refusal"]["remedy_range"] = dict(zip(("from", "before"), self.refusal.remedy_range))
        for key in ("allocation_fails", "configuration", "remedy", "field", "remedy_range"):
            if data["refusal"] is not None and not data["refusal"][key]:
                del data["refusal"][key]
        return data


# refusal keys added after check's CSV columns were set (commands/check/results.py CHECK_COLUMNS), as a CSV flattens
# them (remedy_range's from and before): written after all the others, so that a script reading a column by position
# finds the older ones where they were
LATER_REFUSAL_KEYS = ("remedy_range",)
LATER_REFUSAL_COLUMNS = ("remedy_range_from", "remedy_range_before")


# engine keys added after check's CSV columns were set, written after the later refusal keys
LATER_ENGINE_KEYS = ("core",) + V0_KEYS


def figure_columns() -> tuple:
    """Every key EngineFigures.to_dict can write, its refusal's as refusal_<key>: a CSV's columns whatever the row;
    those of LATER_REFUSAL_KEYS and LATER_ENGINE_KEYS are later_figure_columns'."""
    refusal = [f"refusal_{f.name}" for f in fields(Refusal)
               if f.name not in REFUSAL_NOT_IN_JSON + LATER_REFUSAL_KEYS]
    return tuple(key for f in fields(EngineFigures) if f.name not in NOT_IN_JSON + LATER_ENGINE_KEYS
                 for key in (refusal if f.name == "refusal" else [f.name]))


def later_figure_columns() -> tuple:
    """The columns a CSV writes after all its other columns: the refusal's (LATER_REFUSAL_COLUMNS), then the engine's
    (LATER_ENGINE_KEYS)."""
    return tuple(f"refusal_{key}" for key in LATER_REFUSAL_COLUMNS) + LATER_ENGINE_KEYS
