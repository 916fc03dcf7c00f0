"""The `fgvc` command line: help, the smoke run, resume after a kill, clear errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from fgvc_lib.cli import main

TINY = ["--backbone", "resnet18", "--image-size", "32", "--batch-size", "8", "--quiet",
        "--max-train-samples", "64", "--max-test-samples", "40"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FGVC_CACHE", str(tmp_path_factory.getbasetemp() / "fgvc_cache"))


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one clear line, no traceback
    return err[0]


@pytest.mark.parametrize("sub", [None, "train", "eval", "models", "datasets", "profiles",
                                 "backbones", "results"])
def test_help_is_useful(sub, capsys):
    with pytest.raises(SystemExit) as exc:
        main(([sub] if sub else []) + ["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: fgvc" in out
    if sub == "train":
        for flag in ("--method", "--dataset", "--profile", "--resume", "--out", "--data-root"):
            assert flag in out


def test_listing_commands(capsys):
    assert main(["models"]) == 0
    assert "baseline" in capsys.readouterr().out
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    assert "smoke" in out and "full" in out


@pytest.mark.parametrize("args,needle", [
    (["--method", "nope"], "unknown method 'nope'"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--backbone", "nope"], "unknown backbone 'nope'"),
    (["--profile", "nope"], "unknown profile 'nope'"),
    (["--dataset", "cub"], "needs a data folder"),
])
def test_bad_names_exit_2_with_one_line(tmp_path, capsys, args, needle):
    code = main(["train", "--out", str(tmp_path / "run"), *TINY, *args])
    assert code == 2
    line = _err_line(capsys)
    assert needle in line and "fix:" in line


def test_missing_dataset_folder(tmp_path, capsys):
    code = main(["train", "--dataset", "cub", "--data-root", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "run"), *TINY])
    assert code == 2
    assert "fix:" in _err_line(capsys)


def test_smoke_profile_trains_and_beats_chance(tmp_path, capsys):
    """The README's first training command, as a user runs it."""
    out = tmp_path / "run"
    code = main(["train", "--method", "baseline", "--dataset", "synthetic", "--profile", "smoke",
                 "--out", str(out), "--quiet"])
    assert code == 0
    rec = json.loads((out / "results.json").read_text())
    assert rec["status"] == "finished" and rec["config"]["profile"] == "smoke"
    chance = 100.0 / rec["dataset"]["num_classes"]
    assert rec["metrics"]["test"]["final"]["top1"] >= 2.5 * chance
    assert (out / "checkpoint.pt").exists()
    capsys.readouterr()
    # eval re-computes the same test accuracy from the checkpoint
    assert main(["eval", "--run", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["final"]["top1"] == pytest.approx(rec["metrics"]["test"]["final"]["top1"])


def test_eval_refuses_checkpoint_of_other_class_count(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *TINY, "--epochs", "1", "--opt", "unused=1"]) == 2
    assert "no option" in _err_line(capsys)
    assert main(["train", "--out", str(out), *TINY, "--epochs", "1"]) == 0
    cfg = json.loads((out / "results.json").read_text())["config"]
    assert cfg["synthetic_classes"] == 10
    # Tamper with the recorded config so the data now has 7 classes.
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    ckpt["config"]["synthetic_classes"] = 7
    torch.save(ckpt, out / "checkpoint.pt")
    assert main(["eval", "--run", str(out)]) == 2
    assert "has 10 classes but the dataset has 7" in _err_line(capsys)


def test_resume_with_other_method_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *TINY, "--epochs", "1"]) == 0
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    ckpt["spec"]["method"] = "cmal"
    torch.save(ckpt, out / "checkpoint.pt")
    capsys.readouterr()
    assert main(["train", "--out", str(out), *TINY, "--epochs", "2", "--resume"]) == 2
    assert "trained with method 'cmal'" in _err_line(capsys)


def test_kill_then_resume_matches_uninterrupted(tmp_path):
    """SIGKILL a real `fgvc train` process mid-run; --resume ends with the same weights."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "fgvc_lib.cli", "train", *TINY, "--epochs", "3"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run([*args, "--out", str(full)], check=True, env=env, timeout=600,
                   capture_output=True)
    proc = subprocess.Popen([*args, "--out", str(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (killed / "checkpoint.pt").exists()
    subprocess.run([*args, "--out", str(killed), "--resume"], check=True, env=env, timeout=600,
                   capture_output=True)
    a = torch.load(full / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(killed / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    ra = json.loads((full / "results.json").read_text())["metrics"]["test"]
    rb = json.loads((killed / "results.json").read_text())["metrics"]["test"]
    assert ra == rb


def test_results_table(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r" / "one"), *TINY, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["results", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "synthetic" in out and "smoke" in out
    assert main(["results", str(tmp_path / "empty")]) == 2


def test_table_passes_method_options_under_the_rows_own(tmp_path, monkeypatch, capsys):
    import fgvc_lib.reports as reports

    seen = {}
    monkeypatch.setattr(reports, "run_table", lambda table_id, out, **kw: seen.update(kw))
    assert main(["table", "cmal.table3", "--out", str(tmp_path), "--opt", "cv=256",
                 "--image-size", "96"]) == 0
    assert seen["method_options"] == {"cv": 256} and seen["image_size"] == 96
    cfg = reports.row_config(reports.get_table("cmal.table3"), reports.get_table("cmal.table3").rows[0],
                             "synthetic", "smoke", method_options=seen["method_options"])
    assert cfg.method_options == {"cv": 256, "augmentation": "mda", "pooling": "max", "t": 0.1}
    assert "t = 0.1" in capsys.readouterr().out


def test_every_flag_a_diverged_run_is_told_to_use_exists_and_reaches_the_config(tmp_path):
    import argparse
    import re

    from fgvc_lib.cli import _config_from_args, build_parser
    from fgvc_lib.engine.trainer import non_finite_error

    advice = str(non_finite_error(0, 3, {"loss": float("nan")}, tmp_path, None))
    flags = re.findall(r"--[a-z][a-z-]+", advice)
    assert "--grad-clip-norm" in flags and "--lr" in flags
    parser = build_parser()
    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    known = {s for a in train._actions for s in a.option_strings}
    assert set(flags) <= known, set(flags) - known
    args = parser.parse_args(["train", "--grad-clip-norm", "5", "--out", str(tmp_path)])
    assert _config_from_args(args).grad_clip_norm == 5.0
