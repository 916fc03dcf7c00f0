"""The command line under misuse: two runs on one folder, another working directory,
worker errors, bad devices and profiles, refused pickles: one line and exit code 2."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest
import torch

from fgvc_lib.cli import main

TINY = ["--backbone", "resnet18", "--image-size", "32", "--batch-size", "8", "--quiet",
        "--max-train-samples", "32", "--max-test-samples", "16", "--epochs", "1"]
FOLDER = ["--dataset", "folder", "--backbone", "resnet18", "--image-size", "32",
          "--batch-size", "4", "--epochs", "1", "--quiet"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FGVC_CACHE", str(tmp_path_factory.getbasetemp() / "fgvc_cache"))
    monkeypatch.delenv("FGVC_PROFILE", raising=False)


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one clear line, no traceback
    assert err[0].startswith("fgvc: error: "), err[0]
    return err[0]


@pytest.mark.slow
def test_two_runs_started_together_on_one_folder(tmp_path):
    """Two real `fgvc train` processes on the same --out: one runs, the other stops at once."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FGVC_CACHE": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "fgvc_lib.cli", "train", *TINY, "--epochs", "2", "--out", str(out)]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p, *p.communicate(timeout=600)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [(p.returncode, err[-2000:]) for p, _, err in results]
    winner = next(p for p, _, _ in results if p.returncode == 0)
    loser_err = next(err for p, _, err in results if p.returncode == 2).strip().splitlines()
    assert len(loser_err) == 1, loser_err
    assert loser_err[0].startswith(f"fgvc: error: run folder {out} is in use by another process "
                                   f"(pid {winner.pid} on host ")
    assert "fix: wait for that run to end (or stop it), or choose another --out folder" in loser_err[0]
    rec = json.loads((out / "results.json").read_text())
    assert rec["status"] == "finished" and len(rec["history"]) == 2


def test_eval_from_another_directory_reads_the_runs_own_data(tmp_path, monkeypatch, capsys,
                                                             folder_dataset):
    a, b = tmp_path / "A", tmp_path / "B"
    folder_dataset(a / "data", ["finch", "sparrow"])
    folder_dataset(b / "data", ["oak", "pine"])  # same count, other classes, same relative name
    monkeypatch.chdir(a)
    assert main(["train", *FOLDER, "--data-root", "data", "--out", "run"]) == 0
    rec = json.loads((a / "run" / "results.json").read_text())
    assert rec["config"]["data_root"] == str(a / "data")  # recorded absolute
    from fgvc_lib.data.base import classes_sha256

    assert rec["dataset"]["classes_sha256"] == classes_sha256(["finch", "sparrow"])

    monkeypatch.chdir(b)
    capsys.readouterr()
    assert main(["eval", "--run", str(a / "run"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["final"]["top1"] == pytest.approx(rec["metrics"]["test"]["final"]["top1"])
    # B's data has other classes: refused, naming both folders and a differing class
    assert main(["eval", "--run", str(a / "run"), "--data-root", "data"]) == 2
    line = _err_line(capsys)
    assert f"trained on 2 classes from {a / 'data'}" in line and f"but {b / 'data'} has other" in line
    assert "'finch' there but 'oak' here" in line and f"--data-root {a / 'data'}" in line

    # --resume naming the same data folder absolutely (or from elsewhere) is not refused
    assert main(["train", *FOLDER, "--epochs", "2", "--data-root", str(a / "data"),
                 "--out", str(a / "run"), "--resume"]) == 0
    # ... but resuming on data with other classes is
    capsys.readouterr()
    assert main(["train", *FOLDER, "--epochs", "3", "--data-root", "data",
                 "--out", str(a / "run"), "--resume"]) == 2
    assert "other classes" in _err_line(capsys)


def test_an_error_inside_a_dataloader_worker_is_one_line(tmp_path, capsys, folder_dataset):
    root = folder_dataset(tmp_path / "data", ["a", "b"], per_class=6)
    bad = root / "train" / "a" / "3.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "runs" / "r"
    code = main(["train", *FOLDER, "--data-root", str(root), "--workers", "2", "--out", str(out)])
    assert code == 2
    line = _err_line(capsys)
    assert f"corrupt or truncated image: {bad}" in line and "fix:" in line
    assert "Traceback" not in line and "DataLoader worker" not in line
    assert not (tmp_path / "runs").exists()  # the failed run removed the folder it made


def test_an_unknown_device_is_one_line_and_creates_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--device", "tpu9", "--out", str(out)]) == 2
    assert "unknown device 'tpu9' -> fix: use --device cpu, cuda or cuda:N" in _err_line(capsys)
    assert not out.exists()
    assert main(["eval", "--run", str(out), "--device", "tpu9"]) == 2  # no run there either
    _err_line(capsys)


def test_a_bad_profile_from_the_environment_says_where_it_came_from(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FGVC_PROFILE", "bogus")
    assert main(["train", *TINY, "--out", str(tmp_path / "run")]) == 2
    line = _err_line(capsys)
    assert "unknown profile 'bogus' (from the environment variable FGVC_PROFILE)" in line
    assert "unset it" in line
    assert main(["train", *TINY, "--profile", "nope", "--out", str(tmp_path / "run")]) == 2
    assert "environment" not in _err_line(capsys)  # a flag is not the environment


def test_a_checkpoint_holding_pickled_objects_is_refused_in_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model": argparse.Namespace(evil=True), "spec": {}, "config": {}},
               run / "checkpoint.pt")
    assert main(["eval", "--run", str(run)]) == 2
    line = _err_line(capsys)
    assert f"refused to load checkpoint {run / 'checkpoint.pt'}" in line
    assert "argparse.Namespace" in line


def test_a_stale_lock_of_a_killed_run_is_reported_once(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(json.dumps({"pid": 999999, "host": "somewhere",
                                           "command": "fgvc train (killed)"}))
    assert main(["train", *TINY, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("fgvc: note:") == 1 and "pid 999999 on host somewhere" in err
    assert "ended without releasing it" in err
