"""What clears a configuration refusal of vLLM (vllm.configuration_refusal): a value of the refused field that passes
that check (Refusal.options, and the values past them where Refusal.onward says so) counts only if no other
configuration refusal then stops start-up. So each candidate is put back through the whole chain, and where the next
refusal is on another field, that field is changed in turn (each field at most once): DeepSeek-V3.2 on ROCm under
vLLM 0.10.2 is refused for its architecture (registered from 0.11.0), then 0.11.x refuses sparse attention on ROCm
(0.11.0 platforms/rocm.py:199-201), then 0.12.0-0.17.1 assert block size 1 (0.12.0 rocm.py:228-230 ... 0.17.0
:369-371), and 0.18.0 takes the default 16 (rocm.py:692-707): "0.18.0 or newer, or 0.12.0 or newer with
--block-size 1". Memory is not judged here: plan.plan plans each fix (Fix.fits). A refusal whose options are another
field's (Refusal.fix_field: a quantisation this GPU is refused, the first later release whose own check takes it) is
searched on that field.

Releases: a rule kvplan models changes only at the first release of one of its rows, so those releases (and the
pinned one) are the ones to try; "0.18.0 or newer" is claimed only when every later one of them passes with the
same other changes, "0.28.0 or older" only when every earlier one does; else the run of them next to it that pass
alike, as a closed run from its oldest release before the first newer one that refuses (Fix.span, release_span:
Kimi-Linear with --runner pooling --convert reward, "any release from 0.11.1 before 0.16.0": its class is
registered from 0.11.1, reward is a --convert choice up to 0.15.1, refused from 0.16.0 (vllm_runner_flag.
REWARD_UNTIL); a release between two of them acts as the older), or that release alone. A search that finds
nothing says what clears this refusal and what then stops start-up, or that nothing clears it (nothing_clears)."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Optional

from .figures import Fix, Refusal, release_span
from .vllm_releases import PUBLISHED, nearest_published, published, release_order_parts
from .vllm_versions import PINNED, parse_version, release_order

MAX_FIELDS = 3  # fields one fix may change (engine, kv_dtype, block_size: the longest chain kvplan models)
# the fields the search changes, as vLLM's flags name them (Refusal.remedy_flags: written as the caller spells them)
FIELD_FLAGS = (("engine", "--engine"), ("kv_dtype", "--kv-cache-dtype"), ("block_size", "--block-size"),
               ("context", "--max-model-len"))
NO_RELEASE = "no vLLM release kvplan models clears this"


def release_boundaries(firsts_elsewhere=()) -> tuple:
    """The first release of every row of the rules a configuration refusal reads (and `firsts_elsewhere`: the
    engine's flags), oldest first, as vLLM names them."""
    from . import (vllm_config_read, vllm_index_share, vllm_kv_dtype, vllm_nvfp4, vllm_quant, vllm_registry,
                   vllm_sparse, vllm_specs, vllm_v4_gpu, vllm_versions, vllm_window_list)

    firsts = {(0, 2), parse_version(PINNED)}
    for table in (vllm_specs.DENSE_MLA_BLOCK_RULES, vllm_specs.HYBRID_ALIGN_RULES,
                  vllm_sparse.CONFIG_REWRITE, vllm_sparse.HOPPER_ORDER, vllm_sparse.BLACKWELL_FLASHINFER_FIRST,
                  vllm_sparse.FLASHMLA_DTYPES, vllm_sparse.FLASHINFER_DTYPES, vllm_sparse.SM10X_AUTO,
                  vllm_sparse.ROCM_DTYPES, vllm_sparse.ROCM_BLOCK_RULES, vllm_sparse.SPARSE_MAJORS,
                  vllm_sparse.SM120_DTYPES, vllm_sparse.FLASHINFER_PINS, vllm_kv_dtype.SPARSE_MLA_AUTO,
                  vllm_kv_dtype.CHECKPOINT_KV, vllm_versions._FROM, vllm_versions.BLOCK_SIZE_CHOICES,
                  vllm_v4_gpu.V4_MAJORS, vllm_index_share.INDEXERS_BUILT):
        firsts.update(row[0] for row in table)
    firsts.add(vllm_sparse.ROCM_SPARSE_SINCE)
    firsts.update(vllm_quant.boundaries())  # the quantisation checks
    firsts.update(vllm_nvfp4.boundaries())  # an NVFP4 cache's backend
    firsts.update(vllm_versions.KV_DTYPE_SINCE.values())
    firsts.update(firsts_elsewhere)
    firsts.update(parse_version(v) for v in vllm_config_read.ADDED_ARCHITECTURES.values())
    firsts.update(vllm_window_list.boundaries())  # a list of per-layer windows, by release
    firsts.update(vllm_registry.retired_boundaries())  # where a dropped architecture is last served, then refused
    firsts.update(vllm_registry.unlisted_boundaries())  # a registry that drops an architecture, and one that lists it
    # the first release that builds a model encoder-only (a remedy skips it and those after: vllm_engine)
    firsts.update(parse_version(entry[0]) for entry in vllm_config_read.ENCODER_ONLY_FROM.values())
    # and the first that refuses to build
    firsts.update(parse_version(v) for v in vllm_config_read.BUILD_REFUSED_SINCE.values())
    named = {tuple(v) + (0,) * (3 - len(v)) for v in firsts if v >= (0, 2)}  # kvplan models 0.2 on
    return tuple(_published_name(".".join(map(str, v))) for v in sorted(named))


def _published_name(name: str) -> str:
    """The name PyPI publishes a release under: 0.2.1 only as 0.2.1.post1, a fix's four-part boundary 0.6.3.1 as
    0.6.3.post1 (vllm_releases.PUBLISHED)."""
    if name.count(".") == 3:
        return next((r for r in PUBLISHED if release_order_parts(r) == release_order_parts(name)), name)
    return name if published(name) else (nearest_published(name) or (name,))[0]


# (the configuration with one field changed) -> its first configuration refusal, None when vLLM gets past them all
Refused = Callable[[dict], Optional[Refusal]]


def release_of(engine: str) -> tuple:
    """The release an --engine value names, ordered as vllm_versions.release_order (a fix after its base)."""
    return release_order(engine.split("==", 1)[1]) if "==" in engine else release_order(PINNED)


def searched(refusal: Refusal) -> str:
    """The field whose values `refusal.options` are: its own, or Refusal.fix_field (a later release for a
    quantisation this GPU is refused)."""
    return refusal.fix_field or refusal.field


def _candidates(refusal: Refusal, releases: tuple) -> list:
    """The values of the refused field to try, nearest first: the releases from the one it names on in its
    direction, or its options as they are."""
    if searched(refusal) != "engine" or refusal.onward not in ("newer", "older"):
        return list(refusal.options)
    first = min(release_of(option) for option in refusal.options) if refusal.onward == "newer" else \
        max(release_of(option) for option in refusal.options)
    newer = refusal.onward == "newer"
    ordered = releases if newer else tuple(reversed(releases))
    return [f"vllm=={r}" for r in ordered if (release_order(r) >= first if newer else release_order(r) <= first)]


def _clearing(refused: Refused, asked: dict, refusal: Refusal, changed: tuple, releases: tuple) -> list:
    """Every way past `refusal` from `asked` (already changed in `changed`), as tuples of (field, value): the
    refused field's candidates, each alone where it clears the chain, else with the next refused field's first
    clearing change."""
    field = searched(refusal)
    if not field or field in dict(changed) or len(changed) >= MAX_FIELDS:
        return []
    found = []
    for value in _candidates(refusal, releases):
        trial = {**asked, field: value}
        after = refused(trial)
        if after is None:
            found.append(((field, value),))
        elif searched(after) != field:
            tails = _clearing(refused, trial, after, changed + ((field, value),), releases)
            found += [((field, value),) + tail for tail in tails[:1]]
        if found and changed:  # a later field's change: its caller takes the first way only
            break
    return found


def _passing_run(refused: Refused, asked: dict, changes: tuple, onward: str, releases: tuple) -> tuple:
    """The releases kvplan models past the fix's own, in its direction, that pass with the same other changes, nearest
    first, up to the first that does not; and whether that run reaches the last of them (the fix holds onward)."""
    release = release_of(changes[0][1])
    rest = dict(changes[1:])
    past = [r for r in releases if (release_order(r) > release if onward == "newer" else release_order(r) < release)]
    past.sort(key=release_order, reverse=onward == "older")
    run = []
    for r in past:
        # the run ends at the first modelled release that refuses: the ones past it are not claimed even where they
        # pass again
        if refused({**asked, **rest, "engine": f"vllm=={r}"}) is not None:
            return tuple(run), False
        run.append(r)
    return tuple(run), True


def configuration_fixes(refused: Refused, asked: dict, refusal: Refusal, releases: tuple) -> tuple:
    """What clears `refusal` of the configuration `asked` (field -> value: engine, kv_dtype, context, block_size),
    each fix checked with `refused`: the fixes that change the refused field alone, then, where the nearest value
    needs another change too, that one (the true minimum: "0.12.0 or newer with --block-size 1"); for a release,
    the nearest that passes onward ("or newer" / "or older") for each set of other changes; `releases`: those to
    try (release_boundaries)."""
    ways = _clearing(refused, asked, refusal, (), releases)
    if searched(refusal) == "engine" and refusal.onward in ("newer", "older"):
        ways = _nearest_releases(refused, asked, ways, refusal.onward, releases)
        # the refusal's note is on the release it names (vllm_config_read.BACKEND_MAY_SERVE), not on those past it
        fixes = [Fix(way, onward=onward, span=span, note=refusal.note if way[0][1] in refusal.options else "")
                 for way, onward, span in ways]
    else:
        onward = refusal.onward if refusal.onward == "less" else ""
        fixes = [Fix(way, onward=onward if way[0][1] in refusal.options else "", note=refusal.note) for way in ways]
    alone = [fix for fix in fixes if len(fix.changes) == 1]
    more = [fix for fix in fixes if len(fix.changes) > 1]
    if searched(refusal) != "engine" and alone:
        return tuple(alone)
    if not alone:
        return tuple(more[:1])
    earlier = [fix for fix in more if fixes.index(fix) < fixes.index(alone[0])]
    return tuple(alone[:1] + earlier[:1])


def _nearest_releases(refused: Refused, asked: dict, ways: list, onward: str, releases: tuple) -> list:
    """For each set of other changes, the nearest release that passes onward with them ((way, "newer" / "older",
    ())); where none does, the nearest that passes, with the closed run of releases past it that pass alike ((way,
    "", span), figures.release_span; () where the next modelled release refuses)."""
    out, seen, runs = [], set(), {}
    for way in ways:
        rest = way[1:]
        if rest in seen:
            continue
        runs[way] = _passing_run(refused, asked, way, onward, releases)
        if runs[way][1]:
            seen.add(rest)
            out.append((way, onward, ()))
    for way in ways:
        if way[1:] not in seen:
            seen.add(way[1:])
            run, _ = runs.get(way) or _passing_run(refused, asked, way, onward, releases)
            out.append((way, "", release_span((release_name(way[0][1]),) + run, releases) if run else ()))
    return sorted(out, key=lambda item: ways.index(item[0]))


def release_name(engine: str) -> str:
    """"0.11.1" of "vllm==0.11.1"."""
    return engine.split("==", 1)[1] if "==" in engine else PINNED


def nothing_clears(refusal: Refusal, refused: Optional[Refused] = None, asked: Optional[dict] = None,
                   releases: tuple = ()) -> Refusal:
    """`refusal` whose fix search (configuration_fixes, of `refused` from `asked`) found no fix, its remedy saying
    why in one clause (then `also`, what else clears it, where it has that): where a value of the refused field
    clears this refusal but a later one then stops start-up, that value and that refusal (first_stop: Falcon-7B with
    --enable-lora -c 4096 on 0.14.1, "--max-model-len 2048 or less (the model's own maximum; ...) clears this, but
    then: FalconForCausalLM does not support LoRA yet; leave --enable-lora out"); else that nothing kvplan tries
    clears it.
    Unchanged where the search changes no field of it (a GPU, a dtype: those refusals carry words of their own)."""
    flags = dict(FIELD_FLAGS)
    field = searched(refusal)
    if field not in flags:
        return refusal
    stop = first_stop(refused, asked, refusal, (), releases) if refused is not None else None
    written = refusal.remedy_flags + FIELD_FLAGS
    if stop is None:
        words = NO_RELEASE if field == "engine" else f"no {flags[field]} value kvplan tries clears this"
    else:
        changes, after = stop
        onward = refusal.onward if refusal.onward == "less" and changes[0][1] in refusal.options else ""
        fix = Fix(changes, onward=onward, note=refusal.note).words(lambda name: flags.get(name, name))
        # the later refusal's one-line summary, and its own remedy where it has one in kvplan's words
        words = (f"{fix} {'clears' if len(changes) == 1 else 'clear'} this, but then: {after.summary}"
                 + (f"; {after.remedy}" if after.remedy else ""))
        written += after.remedy_flags
    return replace(refusal, remedy=words + (f"; {refusal.also}" if refusal.also else ""), remedy_flags=written)


def first_stop(refused: Refused, asked: dict, refusal: Refusal, changed: tuple, releases: tuple) -> Optional[tuple]:
    """Where no way clears the chain (_clearing found none): the nearest value of the refused field that clears
    `refusal` itself, with the nearest such value of each other field refused next (as _clearing changes them), and
    the refusal that then stops start-up: (((field, value), ...), that refusal); None where no value clears
    `refusal` itself."""
    field = searched(refusal)
    if not field or field in dict(changed) or len(changed) >= MAX_FIELDS:
        return None
    for value in _candidates(refusal, releases):
        trial = {**asked, field: value}
        after = refused(trial)
        if after is None or after.summary == refusal.summary:  # a way the search found; this check again
            continue
        further = first_stop(refused, trial, after, changed + ((field, value),), releases) \
            if searched(after) != field else None
        return (((field, value),) + further[0], further[1]) if further else (((field, value),), after)
    return None
