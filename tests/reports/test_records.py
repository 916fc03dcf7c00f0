"""RunRecord reads back the numbers of a results.json; runs_table puts runs side by side."""
from __future__ import annotations

import json
import math

import pytest

from fgvc_lib.config import TrainConfig, resolve_config
from fgvc_lib.errors import FGVCError
from fgvc_lib.reports.records import RunRecord, load_runs, runs_table


def _record(method="cross_x", heads=None, status="finished", epochs=3, planned=3, steps=1.0,
            train_size=100, batch=32, spec_options=None, name="run", **config):
    heads = {"final": 81.0, "L": 70.0, "L-1": 12.5, "G": 60.0} if heads is None else heads
    cfg = resolve_config(method, "synthetic", "smoke", epochs=planned, batch_size=batch, **config)
    rec = {
        "status": status, "config": cfg.to_dict(), "path": f"/runs/{name}",
        "spec": {"method": method, "num_classes": 10, "backbone": cfg.backbone,
                 **(spec_options if spec_options is not None else {"options": {}})},
        "dataset": {"name": "synthetic", "num_classes": 10, "train_size": train_size,
                    "generator_version": 3},
        "parameters": 11_500_000,
        "provenance": {"device": {"name": "NVIDIA H100 80GB HBM3"},
                       "git": {"commit": "0123456789abcdef", "dirty": False}},
        "history": [{"epoch": e + 1, "train": {"loss": 2.0 / (e + 1)},
                     "val": {"top1": 10.0 * (e + 1)}, "optimizer_steps_per_batch": steps,
                     "train_images_per_s": 50.0 + e, "val_heads": {"final": 10.0 * (e + 1)}}
                    for e in range(epochs)],
    }
    if status == "finished":
        rec["metrics"] = {"test": {h: {"top1": v, "top5": 99.0, "mean_class": v - 1, "n": 200}
                                   for h, v in heads.items()},
                          "val": {"final": {"top1": 50.0}}}
    return rec


def test_the_accessors_return_the_numbers_in_the_dict():
    rec = RunRecord.from_dict(_record())
    assert rec.metric() == 81.0
    assert rec.metric("L-1") == 12.5 and rec.top1("G") == 60.0
    assert rec.metric(split="val") == 50.0
    assert rec.metric("L", name="mean_class") == 69.0
    assert rec.heads == ["final", "L", "L-1", "G"]
    assert rec.head_metrics() == {"final": 81.0, "L": 70.0, "L-1": 12.5, "G": 60.0}
    assert isinstance(rec.config, TrainConfig) and rec.config.epochs == 3
    assert rec.method == "cross_x" and rec.name == "run" and rec.finished
    assert rec.curve("val/top1") == [10.0, 20.0, 30.0]
    assert math.isnan(rec.curve("val/top5")[0])
    assert rec.epochs == [1, 2, 3] and len(rec.history) == 3
    assert rec.device_name == "NVIDIA H100 80GB HBM3" and rec.commit == "0123456789abcdef"
    assert rec.chance == 10.0 and rec.parameters == 11_500_000
    assert rec.provenance_caption() == ("profile smoke, synthetic data, resnet18, 64 px, "
                                        "3 epochs, NVIDIA H100 80GB HBM3")
    # Still a mapping over the file's dict, for code that reads records as dicts.
    assert rec["metrics"]["test"]["final"]["top1"] == 81.0 and rec.get("world_size") is None


def test_a_missing_head_is_one_line_naming_the_heads():
    rec = RunRecord.from_dict(_record())
    with pytest.raises(FGVCError, match="no head 'fc'") as err:
        rec.metric("fc")
    assert "final, L, L-1, G" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FGVCError, match="no 'train' metrics"):
        rec.metric(split="train")
    with pytest.raises(FGVCError, match="no 'top10'"):
        rec.metric(name="top10")
    with pytest.raises(FGVCError, match="no 'test' metrics"):
        RunRecord.from_dict(_record(status="running")).metric()
    with pytest.raises(FGVCError, match="not a run record"):
        RunRecord.from_dict({"history": []})


def test_options_say_what_the_run_used_defaults_of_its_time_included():
    old = RunRecord.from_dict(_record(spec_options={"options": {}}))
    new = RunRecord.from_dict(_record(spec_options={"options": {},
                                                    "resolved_options": {"data_loss": "per_branch"}}))
    assert old.options["data_loss"] == "mixture"      # the default before records kept it
    assert new.options["data_loss"] == "per_branch"   # what the record resolved wins
    # an option the record does not name was added after it: read as what the code did then
    assert new.options["merge_order"] == "eq5"


def test_load_and_load_runs_read_run_folders(tmp_path):
    for name, status, method in (("a", "finished", "cmal"), ("b", "finished", "baseline"),
                                 ("c", "running", "cmal")):
        (tmp_path / name).mkdir()
        rec = _record(method, heads={"final": 50.0}, status=status, name=name)
        (tmp_path / name / "results.json").write_text(json.dumps(rec))
    rec = RunRecord.load(tmp_path / "c")
    assert rec.status == "running" and rec.path == tmp_path / "c"
    assert rec["path"] == str(tmp_path / "c")
    assert [r.name for r in load_runs(tmp_path)] == ["a", "b"]       # finished only
    assert [r.name for r in load_runs(tmp_path, method="cmal")] == ["a"]
    with pytest.raises(FGVCError, match="no run record"):
        RunRecord.load(tmp_path / "missing")


def test_runs_table_heads_final_first_and_missing_heads_empty():
    table = runs_table([_record("cross_x", {"L": 90.0, "final": 98.5, "G": 99.0}, name="x"),
                        _record("baseline", {"final": 91.3, "fc": 91.3}, name="b")])
    assert list(table.columns[:9]) == ["run", "method", "backbone", "dataset", "profile",
                                       "image_size", "epochs", "device", "commit"]
    heads = [c for c in table.columns if c.endswith("top1")]
    assert heads == ["final top1", "L top1", "G top1", "fc top1"]
    assert table.loc[0, "L top1"] == 90.0 and math.isnan(table.loc[1, "L top1"])
    assert table["run"].tolist() == ["x", "b"] and table.loc[0, "commit"] == "01234567"


def test_runs_table_options_config_fields_and_best_head():
    table = runs_table({
        "old": _record("cross_x", spec_options={"options": {}}),
        "new": _record("cross_x", spec_options={"options": {},
                                                "resolved_options": {"data_loss": "per_branch"}}),
        "plain": _record("baseline", {"final": 40.0, "fc": 41.0})},
        columns=("seed", "data_loss", "best head", "best top1", "final mean_class",
                 "params (M)", "generator"))
    assert list(table.index) == ["old", "new", "plain"]
    assert table["data_loss"].tolist() == ["mixture", "per_branch", "-"]
    assert table.loc["plain", "best head"] == "fc" and table.loc["plain", "best top1"] == 41.0
    assert table.loc["old", "final mean_class"] == 80.0
    assert table.loc["old", "params (M)"] == 11.5 and table.loc["old", "generator"] == "v3"
    assert table["seed"].tolist() == [0, 0, 0]
    with pytest.raises(FGVCError, match="no column 'nope'"):
        runs_table([_record()], columns=("nope",))


def test_runs_table_budget_counts_optimizer_steps_like_the_loader():
    table = runs_table({
        "cmal": _record("cmal", epochs=2, planned=2, steps=5.0, train_size=100),  # 3 batches
        "small": _record("baseline", epochs=1, planned=1, steps=1.0, train_size=40),  # 2 (kept)
        "cut": _record("cmal", status="running", epochs=2, planned=4, steps=5.0, train_size=64),
    }, columns=("budget", "final top1"))
    assert table.loc["cmal", "optimizer steps"] == 2 * 3 * 5
    assert table.loc["small", "optimizer steps"] == 2
    assert table.loc["cmal", "backbone passes / image"] == 10
    assert table.loc["cut", "epochs done"] == 2 and table.loc["cut", "epochs"] == 4
    assert table.loc["cut", "status"] == "running"
    assert math.isnan(table.loc["cut", "final top1"])
    assert table.loc["cmal", "train img/s"] == 51.0
