"""Provenance of recorded runs."""
from __future__ import annotations

import subprocess

from fgvc_lib.results import git_info


def test_git_info_reads_the_repository(tmp_path, monkeypatch):
    monkeypatch.delenv("FGVC_GIT_COMMIT", raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    run = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (repo / "f.txt").write_text("a")
    run("add", "f.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert git_info(repo) == {"commit": head, "dirty": False}
    (repo / "f.txt").write_text("b")
    assert git_info(repo)["dirty"] is True
    assert git_info(tmp_path)["commit"] == "unknown"  # not a repository


def test_an_explicit_commit_wins_over_a_stale_git_folder(tmp_path, monkeypatch):
    # A tree copied to a GPU machine may carry an older .git: the sender's word counts.
    monkeypatch.setenv("FGVC_GIT_COMMIT", "cc7f8a5")
    info = git_info()
    assert info["commit"] == "cc7f8a5" and info["source"] == "FGVC_GIT_COMMIT"


def test_find_runs_keeps_probes_apart_from_training_runs(tmp_path):
    import json

    from fgvc_lib.results import find_runs

    for name, extra in (("run", {}), ("probe", {"kind": "probe"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(
            {"status": "finished", "config": {"method": "baseline"}, **extra}))
    assert [r["path"].split("/")[-1] for r in find_runs(tmp_path, method="baseline")] == ["run"]
    assert [r["path"].split("/")[-1] for r in find_runs(tmp_path, "probe")] == ["probe"]
    assert len(find_runs(tmp_path, "any")) == 2
