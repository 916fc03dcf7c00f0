"""The fair protocol every chapter's real-data comparison follows, written once.

A method is compared with the baseline only when both ran

* on the same data (dataset, split, subsample) at the same input size;
* for the same number of epochs, and the table says how many optimiser steps
  each took (CMAL-Net takes N + 2 steps per batch, so equal epochs are not
  equal steps: both are reported);
* with the same seeds (three), each run selected on its validation split
  (``best.pt``; the test set never chooses), reported as mean and spread;
* beside the frozen-feature linear probe of the same backbone at the same
  input size (:mod:`fgvc_lib.engine.probe`): the floor a fine-tune must reach.

A claimed effect (the paper says method A beats B) is then read as

* **agrees**: our difference has the paper's sign and is larger than twice
  its standard error, ``|d| > 2 sqrt(s_a^2 / n_a + s_b^2 / n_b)``;
* **disagrees**: the same, with the opposite sign;
* **within the spread**: anything smaller;
* **one seed**: fewer than two seeds on a side, so there is no spread to read it against.

A method whose learning rate was selected on the validation split for itself (as the
baseline's was) names those settings in ``selected_on_validation``: they may then differ
between rows, and the table shows each row's values.
"""
from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fgvc_lib.errors import FGVCError
from fgvc_lib.reports.records import as_record, load_runs

#: Seeds every real-data comparison uses.
SEEDS: tuple[int, ...] = (0, 1, 2)
#: Settings two runs must share to be compared (TrainConfig keys).
SAME_RECIPE_KEYS: tuple[str, ...] = (
    "dataset", "image_size", "resize_size", "epochs", "batch_size", "lr", "backbone",
    "backbone_lr_mult", "weight_decay", "scheduler", "warmup_epochs", "pretrained",
    "max_train_samples", "max_test_samples", "val_fraction", "label_smoothing")


#: The test metrics of the epoch the validation split chose (``best.pt``), recorded by the
#: trainer beside those of the last epoch (``test``).
SELECTED_SPLIT = "test_best_val"


def _value(record: Mapping[str, Any], metric: str, head: str, split: str) -> float:
    if split == SELECTED_SPLIT and SELECTED_SPLIT not in record.get("metrics", {}):
        split = "test"  # no validation split (or a record from before it): the last epoch
    try:
        return float(record["metrics"][split][head][metric])
    except KeyError as exc:
        raise FGVCError(f"run {record.get('path', '?')} has no {split}/{head}/{metric}",
                        "pass finished run records (results.json)") from exc


def optimizer_steps(record: Mapping[str, Any]) -> float:
    """Optimiser steps a run took (:meth:`RunRecord.budget`: batches per epoch x steps per
    batch x epochs)."""
    return float(as_record(record).budget()["optimizer steps"])


def seed_stats(records: Sequence[Mapping[str, Any]], metric: str = "top1",
               head: str = "final", split: str = SELECTED_SPLIT) -> dict[str, Any]:
    """Mean, sample standard deviation, count and the per-seed values of ``metric``; by
    default on the test set at the epoch each run's validation split selected."""
    if not records:
        raise FGVCError("no runs to summarise", "train the rows first (three seeds each)")
    by_seed = sorted(((int(r["config"].get("seed", 0)), _value(r, metric, head, split))
                      for r in records))
    values = [v for _, v in by_seed]
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else float("nan"),
            "n": len(values), "seeds": [s for s, _ in by_seed], "values": values,
            "optimizer_steps": statistics.fmean(optimizer_steps(r) for r in records)}


def effect_verdict(ours: Mapping[str, Any], reference: Mapping[str, Any],
                   paper_says_better: bool = True) -> str:
    """"agrees" / "disagrees" / "within the spread" for the claim "ours beats reference"
    (or "ours is worse" when ``paper_says_better`` is False), "one seed" when either side has
    fewer than two seeds (no spread to judge by); inputs are :func:`seed_stats`."""
    if ours["n"] < 2 or reference["n"] < 2:
        return "one seed"
    diff = ours["mean"] - reference["mean"]
    se = math.sqrt(ours["std"] ** 2 / ours["n"] + reference["std"] ** 2 / reference["n"])
    if abs(diff) <= 2 * se:
        return "within the spread"
    return "agrees" if (diff > 0) == paper_says_better else "disagrees"


def recipe_differences(runs: Sequence[Mapping[str, Any]],
                       selected_on_validation: Sequence[str] = ()) -> dict[str, list[Any]]:
    """The :data:`SAME_RECIPE_KEYS` on which ``runs`` disagree (empty when fair), leaving out
    the settings each row selected on validation for itself."""
    diffs: dict[str, list[Any]] = {}
    for key in SAME_RECIPE_KEYS:
        if key in selected_on_validation:
            continue
        values = _distinct_values(runs, key)
        if len(values) > 1:
            diffs[key] = values
    return diffs


def _distinct_values(runs: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    """The distinct values of config ``key`` among ``runs``, in order of first appearance."""
    values: list[Any] = []
    for r in runs:
        v = r.get("config", {}).get(key)
        if v not in values:
            values.append(v)
    return values


#: Where the real-data recipe's probe and fine-tuned baseline live, under ``results/``.
RECIPE_FOLDER = ("cpu", "real-recipe")
#: The same baseline at other epoch counts (the probe trains no backbone, so it has one).
RECIPE_BASELINE_FOLDERS = {5: RECIPE_FOLDER, 10: ("cpu", "real-recipe-10ep")}


def recipe_baseline(results_root: str | Path, epochs: int = 5) -> tuple[Any, list[Any]]:
    """The linear probe (or None) and the fine-tuned baseline's seed runs of the real-data
    recipe at ``epochs`` (``results/cpu/real-recipe`` for 5, ``real-recipe-10ep`` for 10,
    their sweeps left out): the reference rows of every chapter's real-data table."""
    if epochs not in RECIPE_BASELINE_FOLDERS:
        raise FGVCError(f"no recorded recipe baseline at {epochs} epochs",
                        f"use one of {sorted(RECIPE_BASELINE_FOLDERS)}")
    root = Path(results_root)
    folder = root.joinpath(*RECIPE_FOLDER)
    probe = next(iter(load_runs(folder, kind="probe")), None) if folder.exists() else None
    base_folder = root.joinpath(*RECIPE_BASELINE_FOLDERS[epochs])
    return probe, seed_groups(base_folder, {"baseline": "baseline"})["baseline"]


def recipe_comparison(results_root: str | Path, folder: str, rows: Mapping[str, str],
                      epochs: int = 5, claims: Mapping[str, bool] | None = None,
                      reference: str = "baseline", selected_on_validation: Sequence[str] = ()):
    """A chapter's real-data table at ``epochs``: the recipe's probe and fine-tuned baseline
    (:func:`recipe_baseline`, its row labelled ``reference``) beside the seed runs of
    ``results/cpu/<folder>`` named by ``rows`` (:func:`seed_groups`), read by
    :func:`comparison_table` with the paper's ``claims`` (and ``selected_on_validation``)."""
    probe, baseline_runs = recipe_baseline(results_root, epochs=epochs)
    groups = {reference: baseline_runs, **seed_groups(Path(results_root) / "cpu" / folder, rows)}
    return comparison_table(groups, reference=reference, probe=probe, claims=claims,
                            selected_on_validation=selected_on_validation)


def seed_groups(folder: str | Path, rows: Mapping[str, str]) -> dict[str, list[Any]]:
    """``label -> runs`` for ``rows`` (run-name prefix -> label): the finished runs under
    ``folder`` named ``<prefix>-seed<N>``, as the run scripts name them; a missing folder
    gives empty rows."""
    runs = load_runs(folder) if Path(folder).exists() else []
    return {label: [r for r in runs if re.fullmatch(rf"{re.escape(key)}-seed\d+", r.name)]
            for key, label in rows.items()}


def comparison_table(groups: Mapping[str, Sequence[Mapping[str, Any]]],
                     reference: str = "baseline", probe: Mapping[str, Any] | None = None,
                     claims: Mapping[str, bool] | None = None, metric: str = "top1",
                     head: str = "final", check_recipe: bool = True,
                     selected_on_validation: Sequence[str] = ()):
    """One row per label of ``groups`` (label -> that row's seed runs): mean +- std of the
    test ``metric`` at the epoch each run's validation split selected, seeds, epochs, optimiser steps, the difference to ``reference`` and,
    where ``claims`` gives the paper's direction for a label, the verdict. The probe record
    (:func:`fgvc_lib.engine.probe.run_probe`) becomes the first row.

    A label with no runs becomes a row that says "none recorded".

    With ``check_recipe`` a comparison whose runs differ in a :data:`SAME_RECIPE_KEYS`
    setting other than the method options is refused, naming the setting; the settings in
    ``selected_on_validation`` (each row's own, selected on its validation split) may differ
    and get a column each, with the row's values.
    """
    import pandas as pd

    claims = dict(claims or {})
    if check_recipe:
        diffs = recipe_differences([r for runs in groups.values() for r in runs],
                                   selected_on_validation)
        if diffs:
            raise FGVCError(f"the runs differ in {diffs}: not a fair comparison",
                            "train every row with the same recipe (only method options differ)")
    stats = {label: seed_stats(runs, metric, head) for label, runs in groups.items() if runs}
    ref = stats.get(reference)
    rows = []
    if probe is not None:
        rows.append({"": "linear probe (frozen features)",
                     "test top-1 (%)": _value(probe, metric, head, "test"), "std": float("nan"),
                     "seeds": "-", "epochs": "-", "optimizer steps": "-",
                     **{key: "-" for key in selected_on_validation},
                     "vs " + reference: float("nan"), "paper's claim": ""})
    for label, runs in groups.items():
        if not runs:  # a row whose runs are not recorded: say so instead of leaving it out
            rows.append({"": label, "test top-1 (%)": float("nan"), "std": float("nan"),
                         "seeds": "none recorded", "epochs": "-", "optimizer steps": "-",
                         **{key: "-" for key in selected_on_validation},
                         "vs " + reference: float("nan"), "paper's claim": ""})
            continue
        st = stats[label]
        verdict = ""
        if label in claims and ref is not None and label != reference:
            verdict = effect_verdict(st, ref, claims[label])
        rows.append({"": label, "test top-1 (%)": st["mean"], "std": st["std"],
                     "seeds": ",".join(map(str, st["seeds"])),
                     "epochs": runs[0]["config"].get("epochs"),
                     "optimizer steps": round(st["optimizer_steps"]),
                     **{key: ",".join(map(str, _distinct_values(runs, key)))
                        for key in selected_on_validation},
                     "vs " + reference: (st["mean"] - ref["mean"]) if ref else float("nan"),
                     "paper's claim": verdict})
    return pd.DataFrame(rows).set_index("")
