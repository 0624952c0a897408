"""What `kvplan check` returns: one finding per rule a deployment meets, the result of a whole check (its rows
in CHECK_COLUMNS for CSV / HTML) and the TP degrees --suggest lists. render/check.py draws them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...engines.figures import figure_columns, later_figure_columns
from ..deployments import Deployment, one_line


@dataclass(frozen=True)
class Finding:
    level: str  # "error", "warning" or "notice" (what estimate explains of the same plan; never fails or warns)
    key: Optional[str]  # the deployment field at fault (tp, pp, min_concurrency, context), None: the entry
    message: str
    line: Optional[int]


@dataclass(frozen=True)
class CheckResult:
    results: list  # one dict per deployment
    # the pp and block size each result's plan used (row.planned_shape), in the results' order: the CSV's, where the
    # JSON keeps what the deployment set. By position, not by id(): a pickled or deep-copied result keeps its order,
    # where ids change and a freed dict's id comes back on another (api.Checks maps a slice or sort onto it)
    shapes: tuple = ()
    view = "check"

    @property
    def ok(self) -> bool:
        return all(r["passed"] for r in self.results)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "results": self.results}

    def rows(self) -> list:
        """The same columns in the same order whatever the deployments (a refused, unsharded or data-parallel
        one included): CHECK_COLUMNS, then anything else a row carries, sorted. `pp` and `block_size` are the ones
        the plan used, as estimate's CSV writes them (1 and the engine's block where the deployment sets none)."""
        from ...render.formats import flatten

        shapes = self.shapes + ({},) * (len(self.results) - len(self.shapes))  # none: the row's own values
        flat = [flatten({k: v for k, v in r.items() if k not in ("findings", "engine")} | shape)
                for r, shape in zip(self.results, shapes)]
        engines = [{k: v for k, v in (r["engine"] or {}).items() if v is not None} for r in self.results]
        flat = [{**row, **flatten(engine, "engine_")} for row, engine in zip(flat, engines)]
        extra = sorted({key for row in flat for key in row} - set(CHECK_COLUMNS))
        return [{column: row.get(column) for column in CHECK_COLUMNS + tuple(extra)} for row in flat]


# check's CSV / HTML columns: a deployment's fields and numbers, then the engine's figures, each present on every
# row so that a script reads a column by position whatever the deployments (refused, unsharded, data-parallel);
# `runner` (generate | pooling), then the engine's later keys (the remedy's release range), last, where a new column
# leaves the others' places alone
CHECK_COLUMNS = ("name", "model", "model_id", "file", "line", "tp", "pp", "pp_partition", "passed", "errors",
                 "warnings", "num_attention_heads", "num_key_value_heads", "mla", "kv_heads_per_gpu",
                 "kv_heads_replicated", "context", "kv_dtype", "gpu", "node_gpus", "node_gpus_source",
                 "kv_budget_bytes_per_gpu", "kv_bytes_per_token",
                 "kv_bytes_per_token_per_gpu", "kv_bytes_per_sequence_per_gpu", "max_concurrency",
                 "max_concurrency_limited_by", "data_parallel_size", "max_concurrency_total", "min_concurrency",
                 "block_size", "quantization", "dtype", "max_num_seqs", "max_num_batched_tokens", "pp_layer_partition",
                 "gpu_memory") + tuple(f"engine_{key}" for key in figure_columns()) + ("runner",) \
    + tuple(f"engine_{key}" for key in later_figure_columns())


@dataclass(frozen=True)
class SuggestResult:
    report: dict
    view = "suggest"

    def to_dict(self) -> dict:
        return self.report

    def rows(self) -> list:
        return self.report["valid_tp"]



class Findings:
    """One deployment's findings in the order the rules said them, each on the line of the key it speaks of."""

    def __init__(self, dep: Deployment):
        self.dep, self.found = dep, []

    def add(self, level: str, key: Optional[str], message: str) -> None:
        self.found.append(Finding(level, key, one_line(message), self.dep.line_of(key)))

    def drop_warnings_on(self, key: str) -> None:
        """An error that says it in vLLM's words replaces the warnings on the same key."""
        self.found[:] = [f for f in self.found if not (f.level == "warning" and f.key == key)]

    def messages(self, level: str) -> list:
        return [f.message for f in self.found if f.level == level]
