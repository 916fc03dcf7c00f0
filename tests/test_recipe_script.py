"""``results/cpu/recipe.sh``: the ``run`` every real-data script uses keeps a finished run
only when it has the epochs asked for, resumes an interrupted one and trains a missing one.

The trainer is replaced by a stand-in that writes down its arguments, so these tests check
the script's decisions, not training.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[1] / "results" / "cpu" / "recipe.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run_recipe(tmp_path: Path, out: str, epochs: int) -> subprocess.CompletedProcess:
    trainer = tmp_path / "fake-fgvc"
    trainer.write_text('#!/usr/bin/env bash\necho "$@" >> "$CALLS"\n')
    trainer.chmod(0o755)
    script = f'set -euo pipefail; R={tmp_path / "runs"}; source {RECIPE}; run {out} --seed 0'
    env = {"PATH": "/usr/bin:/bin", "CUB": "/data/cub", "FGVC": str(trainer), "SELECTED": "",
           "EPOCHS": str(epochs), "PYTHON": sys.executable, "CALLS": str(tmp_path / "calls")}
    return subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True)


def record(tmp_path: Path, out: str, status: str, epochs: int) -> Path:
    folder = tmp_path / "runs" / out
    folder.mkdir(parents=True)
    # written compactly on purpose: the script must read JSON, not the trainer's layout
    (folder / "results.json").write_text(json.dumps({"status": status, "config": {"epochs": epochs}}))
    return folder


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_a_missing_run_is_trained_with_the_recipe_and_its_own_folder(tmp_path):
    done = run_recipe(tmp_path, "baseline-seed0", epochs=10)
    assert done.returncode == 0, done.stderr
    [call] = calls(tmp_path)
    assert call.startswith("train --dataset cub_list --data-root /data/cub --profile transfer")
    assert call.endswith(f"--seed 0 --out {tmp_path}/runs/baseline-seed0")
    assert "--resume" not in call


def test_a_finished_run_of_the_same_epochs_is_kept(tmp_path):
    record(tmp_path, "baseline-seed0", "finished", epochs=10)
    done = run_recipe(tmp_path, "baseline-seed0", epochs=10)
    assert done.returncode == 0, done.stderr
    assert calls(tmp_path) == []


def test_a_finished_run_of_other_epochs_stops_the_script_with_one_line(tmp_path):
    record(tmp_path, "baseline-seed0", "finished", epochs=5)
    done = run_recipe(tmp_path, "baseline-seed0", epochs=10)
    assert done.returncode == 2 and calls(tmp_path) == []
    [line] = [line for line in done.stderr.splitlines() if line]
    assert "finished 5-epoch run, not 10" in line and "another output folder" in line


def test_an_interrupted_run_resumes(tmp_path):
    folder = record(tmp_path, "baseline-seed0", "running", epochs=10)
    (folder / "checkpoint.pt").write_bytes(b"")
    done = run_recipe(tmp_path, "baseline-seed0", epochs=10)
    assert done.returncode == 0, done.stderr
    [call] = calls(tmp_path)
    assert call.endswith("--resume --out " + str(folder))
