"""Paper tables as data, ablations as lists of runs, and the tables the book shows.

Each paper's tables live in its method package, ``fgvc_lib/methods/<name>/tables.json``
(the spec's ``tables_file``)::

    {"paper": "CMAL-Net", "tables": [{
        "id": "cmal.table3", "caption": "...", "source": "Table 3",
        "dataset": "FGVC-Aircraft", "backbone": "ResNet-50",
        "columns": {"Accuracy": "final"},          # column -> head of our runs
        "rows": [{"label": "t = 0.1",
                  "paper": {"Accuracy": 93.2},     # copied from the paper's text
                  "method": "cmal", "options": {"t": 0.1}, "config": {}}]}]}

A paper value that exists only in a figure is the string ``"figure only"``,
never an estimate. ``run_table`` trains every row that has no finished run
yet (train-or-load), and ``render_table`` puts the paper's numbers beside
ours, naming the profile, dataset and device that produced ours.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from fgvc_lib.errors import FGVCError, unknown_name_error
from fgvc_lib.reports.records import RunRecord

FIGURE_ONLY = "figure only"


@dataclass
class TableRow:
    label: str
    paper: dict[str, Any]
    method: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    #: Read "ours" from another row's run (e.g. the A_oval test-input row of a training row).
    run_of: str | None = None
    #: Column -> head overrides for this row.
    heads: dict[str, str | None] = field(default_factory=dict)
    note: str = ""
    #: ``"<table id>:<row label>"``: this row's configuration is that row's, so
    #: one run (kept under that row's folder) serves both tables.
    same_run_as: str | None = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.label.lower()).strip("-") or "row"


@dataclass
class PaperTable:
    id: str
    paper: str
    caption: str
    source: str
    columns: dict[str, str | None]  # column -> head of our runs (None: paper-only column)
    rows: list[TableRow]
    dataset: str = ""
    backbone: str = ""
    metric: str = "top1"
    split: str = "test"
    notes: str = ""

    def runnable_rows(self) -> list[TableRow]:
        return [r for r in self.rows if r.method]


@lru_cache(maxsize=None)
def _load_all() -> dict[str, PaperTable]:
    from fgvc_lib.methods import available_methods, get_spec

    tables: dict[str, PaperTable] = {}
    paths = [get_spec(name).tables_file for name in available_methods()]
    for path in (p for p in paths if p is not None):
        data = json.loads(Path(path).read_text())
        for t in data["tables"]:
            rows = [TableRow(**r) for r in t.pop("rows")]
            table = PaperTable(paper=data["paper"], rows=rows, **t)
            if table.id in tables:
                raise RuntimeError(f"table id {table.id} defined twice")
            tables[table.id] = table
    return tables


def available_tables() -> list[str]:
    return sorted(_load_all())


def get_table(table_id: str) -> PaperTable:
    tables = _load_all()
    if table_id not in tables:
        raise unknown_name_error("table", table_id, list(tables))
    return tables[table_id]


def row_config(table: PaperTable, row: TableRow, dataset: str, profile: str | None,
               **overrides: Any):
    """The :class:`~fgvc_lib.config.TrainConfig` of one table row."""
    from fgvc_lib.config import resolve_config

    values = {**row.config, **{k: v for k, v in overrides.items() if v is not None}}
    if row.options:
        values["method_options"] = {**values.get("method_options", {}), **row.options}
    return resolve_config(row.method or "baseline", dataset, profile, **values)


def run_dir(out_root: str | Path, table: PaperTable, row: TableRow) -> Path:
    """Where ``row``'s run lives: ``OUT/<table id>/<row slug>``, or the folder of
    the row it shares a run with (``same_run_as``)."""
    if row.same_run_as:
        table, row = shared_row(row)
    return Path(out_root) / table.id / row.slug


def shared_row(row: TableRow) -> tuple[PaperTable, TableRow]:
    """The table and row named by ``row.same_run_as``."""
    ref_table_id, sep, ref_label = (row.same_run_as or "").partition(":")
    if not sep:
        raise FGVCError(f"row {row.label!r}: same_run_as must read '<table id>:<row label>', "
                        f"got {row.same_run_as!r}", "fix the table's JSON file")
    ref_table = get_table(ref_table_id)
    for candidate in ref_table.rows:
        if candidate.label == ref_label:
            if candidate.same_run_as or not candidate.method:
                raise FGVCError(f"row {row.label!r} shares the run of {row.same_run_as!r}, "
                                "which has no run of its own", "point same_run_as at a training row")
            return ref_table, candidate
    raise FGVCError(f"row {row.label!r}: {ref_table_id} has no row {ref_label!r}",
                    f"use one of: {', '.join(r.label for r in ref_table.rows)}")


def run_table(table_id: str, out_root: str | Path, dataset: str = "synthetic",
              profile: str | None = None, rows: list[str] | None = None,
              device: str | None = None, progress: bool = True,
              **overrides: Any) -> dict[str, RunRecord]:
    """Train (or load) every runnable row of a table; returns ``{row label: RunRecord}``.

    ``overrides`` apply to every row (e.g. ``data_root``, ``epochs``,
    ``backbone``, ``pretrained``); ``rows`` restricts to some labels.
    """
    from fgvc_lib.engine.trainer import train_or_load

    table = get_table(table_id)
    records = {}
    for row in table.runnable_rows():
        if rows is not None and row.label not in rows:
            continue
        cfg = row_config(table, row, dataset, profile, **overrides)
        if row.same_run_as:
            ref_table, ref_row = shared_row(row)
            ref_cfg = row_config(ref_table, ref_row, dataset, profile, **overrides)
            if ref_cfg != cfg:
                ours, theirs = cfg.to_dict(), ref_cfg.to_dict()
                diff = {k: (v, theirs[k]) for k, v in ours.items() if theirs[k] != v}
                raise FGVCError(f"{table.id} row {row.label!r} says it is the same run as "
                                f"{row.same_run_as!r}, but their configs differ: {diff}",
                                "make the two rows' options equal in the table's JSON file, "
                                "or drop same_run_as")
        if progress:
            print(f"[{table.id}] {row.label}", flush=True)
        records[row.label] = RunRecord.from_dict(train_or_load(
            cfg, run_dir(out_root, table, row), device=device, progress=progress))
    return records


def collect_runs(table_id: str, out_root: str | Path) -> dict[str, RunRecord]:
    """Finished runs of a table under ``out_root`` (missing rows are absent)."""
    from fgvc_lib.results import RESULTS_FILE

    table = get_table(table_id)
    found = {}
    for row in table.runnable_rows():
        path = run_dir(out_root, table, row) / RESULTS_FILE
        if path.exists():
            rec = RunRecord.load(path)
            if rec.finished:
                found[row.label] = rec
    return found


def _fmt(value: Any) -> str:
    """One of our numbers, to the paper tables' usual one decimal."""
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:.1f}"
    return str(value)


def _fmt_paper(value: Any) -> str:
    """A paper's number as it stands in the table's data: a count stays a count, and
    two printed decimals stay two (JSON keeps 80.84 exactly; only a printed trailing
    zero, 83.50, reads 83.5)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _fmt(value)
    return str(value) if isinstance(value, int) else repr(float(value))


def render_table(table_id: str, out_root: str | Path | None = None,
                 records: dict[str, dict] | None = None):
    """A DataFrame with the paper's numbers beside ours, and a caption that
    names where ours come from (profile, dataset, backbone, image size,
    epochs, device). Rows we did not run show "-"."""
    import pandas as pd

    table = get_table(table_id)
    if records is None:
        records = collect_runs(table_id, out_root) if out_root is not None else {}
    rows = []
    sources = set()
    for row in table.rows:
        entry: dict[str, Any] = {"": row.label}
        rec = records.get(row.run_of or row.label)
        for col, default_head in table.columns.items():
            head = row.heads.get(col, default_head)
            entry[f"{col} (paper)"] = _fmt_paper(row.paper.get(col))
            if default_head is None and col not in row.heads:
                continue  # a paper-only column (another dataset)
            ours = None
            if rec is not None and head is not None:
                ours = rec.get("metrics", {}).get(table.split, {}).get(head, {}).get(table.metric)
            entry[f"{col} (ours)"] = _fmt(ours)
        if rec is not None:
            cfg = rec["config"]
            sources.add((cfg["profile"], cfg["dataset"], cfg["backbone"], cfg["image_size"],
                         cfg["epochs"], rec["provenance"]["device"].get("name")))
        rows.append(entry)
    df = pd.DataFrame(rows).set_index("")
    # A column the paper never reports (ours only) shows no empty paper twin.
    df = df[[c for c in df.columns if not (c.endswith("(paper)") and (df[c] == "-").all())]]
    paper_src = f"{table.paper} {table.source} ({table.dataset}, {table.backbone})"
    if sources:
        ours = "; ".join(f"profile {p}, {'synthetic data' if d == 'synthetic' else d}, {b}, "
                         f"{s} px, {e} epochs, {dev}" for p, d, b, s, e, dev in sorted(sources))
    else:
        ours = "no runs recorded yet"
    df.attrs["caption"] = (f"{table.caption}. Paper: {paper_src}, {table.metric} %. "
                           f"Ours: {ours}.")
    return df


def styled(df):
    """The table with its caption, for display in a notebook."""
    return df.style.set_caption(df.attrs.get("caption", ""))
