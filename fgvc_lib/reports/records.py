"""Run records as typed objects, and the one table of them.

A run's ``results.json`` (see :mod:`fgvc_lib.results`) is a nested dict;
:class:`RunRecord` wraps it with the accessors the chapters need
(``rec.metric("L")`` instead of ``rec["metrics"]["test"]["L"]["top1"]``),
the config as a :class:`~fgvc_lib.config.TrainConfig` and every option the
run used. It stays a read-only mapping over the file's dict, so code that
reads records as dicts (``render_table``, ...) takes it unchanged.

:func:`runs_table` is the one "records -> table" builder: per-head metrics,
the options each run used, its training budget and its provenance, picked
by ``columns``.

Implementation notes
--------------------
* Optimiser steps per epoch follow the trainer's loader: the last partial
  batch is dropped when the training split holds at least two batches
  (``build_loaders``), per process (``world_size``).
* A value a run does not record (an unfinished run's test metric, a head
  another method has) is NaN in a table, and an option the run's method does
  not have is ``"-"``; :meth:`RunRecord.metric` instead raises, naming what
  the run has.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgvc_lib.config import TrainConfig
from fgvc_lib.errors import FGVCError
from fgvc_lib.results import RESULTS_FILE, find_runs, load_results

#: The metrics the trainer records per split and head.
METRIC_NAMES = ("top1", "top5", "mean_class", "n")


def _history_value(entry: Mapping[str, Any], key: str) -> float:
    value: Any = entry
    for part in key.split("/"):
        if not isinstance(value, Mapping) or part not in value:
            return float("nan")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return float("nan")
    return float(value)


def _batches_per_epoch(train_size: int, batch_size: int) -> int:
    # The trainer drops the last partial batch when there are at least two (module notes).
    if train_size >= 2 * batch_size:
        return train_size // batch_size
    return math.ceil(train_size / batch_size)


@dataclass(frozen=True, eq=False)
class RunRecord(Mapping):
    """One run's record: ``results.json`` with typed accessors.

    Build it with :meth:`load` (a run folder or its ``results.json``) or
    :meth:`from_dict` (a record already read, e.g. what ``train_or_load``
    returns). Indexing (``rec["config"]``) reads the underlying dict.
    """

    data: Mapping[str, Any] = field(repr=False)
    config: TrainConfig = field(repr=False)
    path: Path | None = None

    # -- building -------------------------------------------------------------
    @classmethod
    def from_dict(cls, record: Mapping[str, Any], path: str | Path | None = None) -> "RunRecord":
        """Wrap a record dict (copied). ``path``: the run folder, else the record's ``"path"``."""
        if isinstance(record, RunRecord):
            return record if path is None else cls(record.data, record.config, Path(path))
        if not isinstance(record, Mapping) or not isinstance(record.get("config"), Mapping):
            raise FGVCError("not a run record: it has no 'config'",
                            "pass the dict of a results.json (or RunRecord.load(run_folder))")
        data = copy.deepcopy(dict(record))
        if path is None and data.get("path"):
            path = data["path"]
        if path is not None:
            data["path"] = str(path)
        return cls(data, TrainConfig.from_dict(dict(data["config"])),
                   Path(path) if path is not None else None)

    @classmethod
    def load(cls, path: str | Path) -> "RunRecord":
        """Read a run folder's ``results.json`` (or that file itself), whatever its status."""
        path = Path(path)
        file = path / RESULTS_FILE if path.is_dir() else path
        if not file.exists():
            raise FGVCError(f"no run record at {file}",
                            "pass a run folder holding results.json (train one first)")
        return cls.from_dict(load_results(file), path=file.parent)

    # -- the mapping ----------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        top1 = self.metric() if self._has("test", "final", "top1") else float("nan")
        return (f"RunRecord({self.name or '?'}: {self.method} on {self.config.dataset}, "
                f"{self.status}, test top-1 {top1:.1f})")

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the record's dict."""
        return copy.deepcopy(dict(self.data))

    # -- what the run was -----------------------------------------------------
    @property
    def name(self) -> str:
        """The run folder's name (``""`` for a record without a path)."""
        return self.path.name if self.path is not None else ""

    @property
    def status(self) -> str:
        return str(self.data.get("status", "unknown"))

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def spec(self) -> dict[str, Any]:
        """The model spec the run recorded (method, classes, backbone, options)."""
        spec = self.data.get("spec")
        if isinstance(spec, Mapping):
            return dict(spec)
        return {"method": self.config.method, "options": dict(self.config.method_options)}

    @property
    def options(self) -> dict[str, Any]:
        """Every method option the run used, defaults of its time included
        (:func:`fgvc_lib.methods.recorded_options`)."""
        from fgvc_lib.methods import recorded_options

        return recorded_options(self.spec)

    @property
    def dataset_info(self) -> dict[str, Any]:
        """What the trainer recorded of the data (name, root, sizes, classes)."""
        return dict(self.data.get("dataset") or {})

    @property
    def num_classes(self) -> int | None:
        k = self.dataset_info.get("num_classes", self.spec.get("num_classes"))
        return int(k) if k is not None else None

    @property
    def chance(self) -> float:
        """Top-1 of a uniform guess, in %."""
        k = self.num_classes
        return 100.0 / k if k else float("nan")

    @property
    def parameters(self) -> int | None:
        p = self.data.get("parameters")
        return int(p) if p is not None else None

    # -- provenance -----------------------------------------------------------
    @property
    def provenance(self) -> dict[str, Any]:
        return dict(self.data.get("provenance") or {})

    @property
    def device_name(self) -> str:
        return (self.provenance.get("device") or {}).get("name") or "unknown device"

    @property
    def commit(self) -> str:
        return (self.provenance.get("git") or {}).get("commit") or "unknown"

    def provenance_caption(self) -> str:
        """``profile P, data, backbone, S px, E epochs, device``: what produced the numbers."""
        c = self.config
        data = "synthetic data" if c.dataset == "synthetic" else c.dataset
        return (f"profile {c.profile}, {data}, {c.backbone}, {c.image_size} px, "
                f"{c.epochs} epochs, {self.device_name}")

    # -- metrics --------------------------------------------------------------
    @property
    def splits(self) -> list[str]:
        return list(self.data.get("metrics") or {})

    def heads_of(self, split: str = "test") -> list[str]:
        """The heads recorded for ``split``, ``final`` first (empty if none)."""
        heads = list((self.data.get("metrics") or {}).get(split) or {})
        return (["final"] if "final" in heads else []) + [h for h in heads if h != "final"]

    @property
    def heads(self) -> list[str]:
        """The heads of the test metrics, ``final`` first."""
        return self.heads_of("test")

    def _has(self, split: str, head: str, name: str) -> bool:
        per_head = (self.data.get("metrics") or {}).get(split) or {}
        return isinstance(per_head.get(head), Mapping) and name in per_head[head]

    def metric(self, head: str = "final", split: str = "test", name: str = "top1") -> float:
        """One recorded number, e.g. ``metric("L-1")``: test top-1 (%) of head ``L-1``."""
        label = self.name or self.method
        metrics = self.data.get("metrics") or {}
        if split not in metrics:
            raise FGVCError(f"run {label!r} ({self.status}) has no {split!r} metrics; "
                            f"it has: {', '.join(metrics) or 'none'}",
                            "pick a recorded split, or finish the run")
        if head not in metrics[split]:
            raise FGVCError(f"run {label!r} has no head {head!r} in its {split} metrics",
                            f"use one of its heads: {', '.join(self.heads_of(split))}")
        values = metrics[split][head]
        if name not in values:
            raise FGVCError(f"run {label!r} records no {name!r} for head {head!r}",
                            f"use one of: {', '.join(values)}")
        return float(values[name])

    def top1(self, head: str = "final", split: str = "test") -> float:
        return self.metric(head, split, "top1")

    def head_metrics(self, split: str = "test", name: str = "top1") -> dict[str, float]:
        """``{head: value}`` of one metric over every head of ``split``, ``final`` first."""
        return {h: self.metric(h, split, name) for h in self.heads_of(split)
                if self._has(split, h, name)}

    # -- history --------------------------------------------------------------
    @property
    def history(self) -> list[dict[str, Any]]:
        """The per-epoch entries (train losses, val metrics, lr, speed)."""
        return list(self.data.get("history") or [])

    @property
    def epochs(self) -> list[int]:
        """The epoch number of each history entry."""
        return [int(e.get("epoch", i + 1)) for i, e in enumerate(self.history)]

    def curve(self, key: str) -> list[float]:
        """One value per epoch of ``key``, a ``/`` path into each history entry
        (``"val/top1"``, ``"train/loss"``, ``"val_heads/L"``); NaN where absent."""
        return [_history_value(e, key) for e in self.history]

    def budget(self) -> dict[str, Any]:
        """What the run trained for: epochs done, optimiser steps per batch and in
        total, backbone passes with gradients per image, last-epoch speed."""
        history = self.history
        steps_per_batch = (float(history[-1].get("optimizer_steps_per_batch", 1.0))
                           if history else float("nan"))
        train_size = self.dataset_info.get("train_size")
        world = int(self.data.get("world_size", 1) or 1)
        steps = float("nan")
        if history and train_size is not None:
            batches = _batches_per_epoch(int(train_size) // world,
                                         max(1, int(self.config.batch_size) // world))
            steps = int(round(len(history) * batches * steps_per_batch))
        return {
            "epochs done": len(history),
            "optimizer steps / batch": steps_per_batch,
            "optimizer steps": steps,
            "backbone passes / image": (int(round(len(history) * steps_per_batch))
                                        if history else float("nan")),
            "train img/s": (history[-1].get("train_images_per_s", float("nan"))
                            if history else float("nan")),
        }


def as_record(record: RunRecord | Mapping[str, Any]) -> RunRecord:
    """A :class:`RunRecord` from a record or a record dict."""
    return record if isinstance(record, RunRecord) else RunRecord.from_dict(record)


def load_runs(root: str | Path, kind: str = "run", **filters: Any) -> list[RunRecord]:
    """Every finished record of ``kind`` (``"run"``, ``"probe"``, ``"any"``) under ``root``
    whose config matches ``filters`` (``method=name``, ``profile="gpu"``, ...), as
    :class:`RunRecord` s."""
    return [RunRecord.from_dict(rec) for rec in find_runs(root, kind, **filters)]


# ---------------------------------------------------------------- the run table

#: ``columns=`` groups of :func:`runs_table` and what they expand to.
PROVENANCE_COLUMNS = ("method", "backbone", "dataset", "profile", "image_size", "epochs",
                      "device", "commit")
BUDGET_COLUMNS = ("status", "epochs done", "epochs", "batch_size", "optimizer steps / batch",
                  "optimizer steps", "backbone passes / image", "train img/s")
COLUMN_GROUPS: dict[str, tuple[str, ...]] = {"provenance": PROVENANCE_COLUMNS,
                                             "budget": BUDGET_COLUMNS}
DEFAULT_COLUMNS = ("run", "provenance", "heads")

_SINGLE = {
    "run": lambda r: r.name,
    "path": lambda r: str(r.path) if r.path is not None else "",
    "status": lambda r: r.status,
    "device": lambda r: r.device_name,
    "commit": lambda r: r.commit[:8],
    "params (M)": lambda r: r.parameters / 1e6 if r.parameters is not None else float("nan"),
    "generator": lambda r: (f"v{r.dataset_info.get('generator_version') or 2}"
                            if r.config.dataset == "synthetic" else "-"),
}
_BUDGET_KEYS = ("epochs done", "optimizer steps / batch", "optimizer steps",
                "backbone passes / image", "train img/s")


def _all_option_names() -> set[str]:
    from fgvc_lib.methods import available_methods, get_spec

    return {n for m in available_methods() for n in get_spec(m).options.names()}


def _column_value(rec: RunRecord, column: str, split: str, metric: str) -> Any:
    nan = float("nan")
    if column in _SINGLE:
        return _SINGLE[column](rec)
    if column in _BUDGET_KEYS:
        return rec.budget()[column]
    if column == "best head" or column == f"best {metric}":
        values = rec.head_metrics(split, metric)
        if not values:
            return "-" if column == "best head" else nan
        best = max(values, key=values.get)
        return best if column == "best head" else values[best]
    head, _, name = column.rpartition(" ")
    if head and name in METRIC_NAMES:
        return rec.metric(head, split, name) if rec._has(split, head, name) else nan
    if column in {f.name for f in dataclasses.fields(TrainConfig)}:
        return getattr(rec.config, column)
    return rec.options.get(column, "-")


def runs_table(records: Iterable[RunRecord | Mapping[str, Any]]
               | Mapping[str, RunRecord | Mapping[str, Any]],
               columns: Sequence[str] = DEFAULT_COLUMNS, split: str = "test",
               metric: str = "top1"):
    """One row per run, the columns asked for (a pandas DataFrame).

    ``records``: run records (or their dicts); a mapping ``{label: record}``
    makes the labels the index. ``columns``, in order, each one of:

    * ``"run"`` (folder name), ``"path"``, ``"status"``, ``"device"``, ``"commit"``,
      ``"params (M)"``, ``"generator"`` (synthetic data's version, ``-`` otherwise);
    * ``"provenance"``: :data:`PROVENANCE_COLUMNS`; any ``TrainConfig`` field
      (``"backbone_lr_mult"``, ``"seed"``, ...) on its own;
    * ``"heads"``: ``"<head> <metric>"`` for every head of any run (``final``
      first); ``"<head> <name>"`` on its own (``"final mean_class"``, ``"L-1 top1"``);
      ``"best head"`` and ``"best <metric>"``: the run's best head and its value;
    * ``"budget"``: :data:`BUDGET_COLUMNS` (epochs done and planned, batch size,
      optimiser steps, backbone passes per image, last-epoch images/s), each
      also on its own;
    * a method option (``"data_loss"``, ``"cv"``): as the run used it, defaults of
      its time included; ``"-"`` where the run's method has no such option.

    ``split`` and ``metric`` pick the numbers of ``"heads"`` and ``"best ..."``.
    """
    import pandas as pd

    if isinstance(records, Mapping) and "config" in records:
        records = [records]  # one record
    labelled = isinstance(records, Mapping)
    items = list(records.items()) if labelled else list(enumerate(records))
    recs = [(label, as_record(r)) for label, r in items]
    expanded: list[str] = []
    for column in columns:
        if column == "heads":
            heads = list(dict.fromkeys(h for _, r in recs for h in r.heads_of(split)))
            heads = (["final"] if "final" in heads else []) + [h for h in heads if h != "final"]
            expanded += [f"{h} {metric}" for h in heads]
        else:
            expanded += list(COLUMN_GROUPS.get(column, (column,)))
    expanded = list(dict.fromkeys(expanded))  # a column named twice (alone and in a group) once
    known_options = None
    for column in expanded:
        head, _, name = column.rpartition(" ")
        if (column in _SINGLE or column in _BUDGET_KEYS or column == "best head"
                or (head and name in METRIC_NAMES) or column == f"best {metric}"
                or column in {f.name for f in dataclasses.fields(TrainConfig)}):
            continue
        known_options = _all_option_names() if known_options is None else known_options
        if column not in known_options:
            raise FGVCError(f"runs_table has no column {column!r}",
                            f"use a group ({', '.join(['heads', *COLUMN_GROUPS])}), "
                            f"{', '.join(_SINGLE)}, '<head> <metric>', a TrainConfig field "
                            "or a method option")
    rows = [{c: _column_value(r, c, split, metric) for c in expanded} for _, r in recs]
    index = [label for label, _ in recs] if labelled else None
    return pd.DataFrame(rows, index=index, columns=expanded).infer_objects()


__all__ = ["BUDGET_COLUMNS", "COLUMN_GROUPS", "DEFAULT_COLUMNS", "METRIC_NAMES",
           "PROVENANCE_COLUMNS", "RunRecord", "as_record", "load_runs", "runs_table"]
