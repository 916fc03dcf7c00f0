"""The fair protocol: seed statistics, verdicts and refusal of unfair comparisons."""
from __future__ import annotations

import math

import pytest

from fgvc_lib.errors import FGVCError
from fgvc_lib.reports.protocol import (comparison_table, effect_verdict, optimizer_steps,
                                       seed_stats)


def _run(top1: float, seed: int, steps_per_batch: float = 1.0, lr: float = 0.01) -> dict:
    return {"config": {"seed": seed, "epochs": 2, "batch_size": 10, "lr": lr,
                       "dataset": "cub_list", "image_size": 224},
            "dataset": {"train_size": 100},
            "history": [{"optimizer_steps_per_batch": steps_per_batch}] * 2,
            "metrics": {"test": {"final": {"top1": top1}}}}


def test_seed_stats_are_mean_and_sample_std_by_hand():
    st = seed_stats([_run(80.0, 2), _run(82.0, 0), _run(84.0, 1)])
    assert st["mean"] == pytest.approx(82.0)
    assert st["std"] == pytest.approx(2.0)  # sqrt(((-2)^2 + 0 + 2^2) / 2)
    assert st["seeds"] == [0, 1, 2] and st["values"] == [82.0, 84.0, 80.0]
    assert st["optimizer_steps"] == 20  # 100 // 10 batches x 1 step x 2 epochs


def test_optimizer_steps_count_every_step_of_a_multi_step_method():
    assert optimizer_steps(_run(0.0, 0, steps_per_batch=5.0)) == 100


def test_verdicts_use_twice_the_standard_error():
    ref = seed_stats([_run(v, s) for s, v in enumerate((80.0, 81.0, 82.0))])
    # se = sqrt(1/3 + 1/3) = 0.816: a 1.5-point gain is within the spread, 2 points is not.
    close = seed_stats([_run(v + 1.5, s) for s, v in enumerate((80.0, 81.0, 82.0))])
    far = seed_stats([_run(v + 2.0, s) for s, v in enumerate((80.0, 81.0, 82.0))])
    assert effect_verdict(close, ref) == "within the spread"
    assert effect_verdict(far, ref) == "agrees"
    assert effect_verdict(ref, far) == "disagrees"
    assert effect_verdict(ref, far, paper_says_better=False) == "agrees"
    # One seed has no spread: the verdict says so instead of calling it a tie.
    assert effect_verdict(seed_stats([_run(99.0, 0)]), ref) == "one seed"
    assert effect_verdict(ref, seed_stats([_run(50.0, 0)])) == "one seed"


def test_the_table_puts_the_probe_first_and_refuses_an_unfair_recipe():
    probe = {"metrics": {"test": {"final": {"top1": 85.0}}}}
    groups = {"baseline": [_run(v, s) for s, v in enumerate((80.0, 81.0, 82.0))],
              "method": [_run(v + 3, s) for s, v in enumerate((80.0, 81.0, 82.0))]}
    table = comparison_table(groups, probe=probe, claims={"method": True})
    assert list(table.index) == ["linear probe (frozen features)", "baseline", "method"]
    assert table.loc["method", "vs baseline"] == pytest.approx(3.0)
    assert table.loc["method", "paper's claim"] == "agrees"
    assert math.isnan(table.loc["linear probe (frozen features)", "std"])
    groups["method"][0]["config"]["lr"] = 0.1
    with pytest.raises(FGVCError, match="lr"):
        comparison_table(groups)


def test_a_learning_rate_selected_on_validation_per_row_may_differ_and_is_shown():
    groups = {"baseline": [_run(v, s, lr=0.1) for s, v in enumerate((80.0, 81.0, 82.0))],
              "method": [_run(v, s, lr=0.01) for s, v in enumerate((80.0, 81.0, 82.0))]}
    with pytest.raises(FGVCError, match="lr"):
        comparison_table(groups)
    table = comparison_table(groups, selected_on_validation=("lr",))
    assert table.loc["baseline", "lr"] == "0.1" and table.loc["method", "lr"] == "0.01"
    # Only the named setting is freed: another difference is still refused.
    groups["method"][0]["config"]["image_size"] = 448
    with pytest.raises(FGVCError, match="image_size"):
        comparison_table(groups, selected_on_validation=("lr",))


def test_runs_are_read_at_the_epoch_their_validation_split_chose():
    """The test accuracy of ``best.pt`` (``test_best_val``), not the last epoch's; a record
    without a validation split falls back to the last epoch."""
    selected = _run(80.0, 0)
    selected["metrics"]["test_best_val"] = {"final": {"top1": 83.0}}
    assert seed_stats([selected])["values"] == [83.0]
    assert seed_stats([selected], split="test")["values"] == [80.0]
    assert seed_stats([_run(80.0, 1)])["values"] == [80.0]


def _record_on_disk(folder, name, top1, seed, method="baseline"):
    import json

    run = folder / name
    run.mkdir(parents=True)
    rec = {**_run(top1, seed), "status": "finished"}
    rec["config"]["method"] = method
    (run / "results.json").write_text(json.dumps(rec))


def test_seed_groups_and_the_recipe_baseline_read_the_run_scripts_names(tmp_path):
    from fgvc_lib.reports.protocol import recipe_baseline, seed_groups

    recipe = tmp_path / "cpu" / "real-recipe"
    for seed, top1 in ((0, 80.0), (1, 82.0)):
        _record_on_disk(recipe, f"baseline-seed{seed}", top1, seed)
    _record_on_disk(recipe / "sweep-lr", "lr=0.1", 70.0, 0)          # a sweep run: not a row
    _record_on_disk(recipe, "baseline-seed1-old", 10.0, 1)           # not a seed name
    probe, base = recipe_baseline(tmp_path)
    assert probe is None and sorted(r.name for r in base) == ["baseline-seed0", "baseline-seed1"]
    groups = seed_groups(tmp_path / "cpu" / "nowhere", {"cnl": "+5CNL"})
    assert groups == {"+5CNL": []}
    assert recipe_baseline(tmp_path / "empty") == (None, [])


def test_the_10_epoch_recipe_baseline_has_its_own_folder_and_other_epochs_are_refused(tmp_path):
    from fgvc_lib.reports.protocol import recipe_baseline

    _record_on_disk(tmp_path / "cpu" / "real-recipe", "baseline-seed0", 80.0, 0)
    _record_on_disk(tmp_path / "cpu" / "real-recipe-10ep", "baseline-seed0", 85.0, 0)
    _record_on_disk(tmp_path / "cpu" / "real-recipe-10ep", "baseline-seed1", 86.0, 1)
    _, five = recipe_baseline(tmp_path)
    _, ten = recipe_baseline(tmp_path, epochs=10)
    assert [r.name for r in five] == ["baseline-seed0"]
    assert sorted(r.name for r in ten) == ["baseline-seed0", "baseline-seed1"]
    with pytest.raises(FGVCError, match="no recorded recipe baseline at 7 epochs"):
        recipe_baseline(tmp_path, epochs=7)


def test_a_row_without_runs_says_none_recorded():
    table = comparison_table({"baseline": [_run(80.0, 0), _run(82.0, 1)], "method": []})
    assert table.loc["method", "seeds"] == "none recorded"
    assert math.isnan(table.loc["method", "test top-1 (%)"])
    assert table.loc["baseline", "test top-1 (%)"] == pytest.approx(81.0)


def test_a_chapters_recipe_comparison_puts_its_rows_beside_the_baseline_of_the_same_epochs(tmp_path):
    from fgvc_lib.reports.protocol import recipe_comparison

    for seed, top1 in ((0, 84.0), (1, 86.0)):
        _record_on_disk(tmp_path / "cpu" / "real-recipe-10ep", f"baseline-seed{seed}", top1, seed)
    for seed, top1 in ((0, 88.0), (1, 90.0)):
        _record_on_disk(tmp_path / "cpu" / "m-10ep", f"m-seed{seed}", top1, seed, method="m")
    table = recipe_comparison(tmp_path, "m-10ep", {"m": "M", "other": "Other"}, epochs=10,
                              claims={"M": True}, reference="plain")
    assert list(table.index) == ["plain", "M", "Other"]
    # by hand: means 85 and 89; difference 4 against 2 SE = 2 * sqrt(2/2 + 2/2) = 2.83
    assert table.loc["M", "vs plain"] == pytest.approx(4.0)
    assert table.loc["M", "paper's claim"] == "agrees"
    assert table.loc["Other", "seeds"] == "none recorded"
