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


def test_find_runs_follows_a_linked_run_folder_but_not_a_loop(tmp_path):
    """A sweep that reuses another sweep's run through a symlink lists it under both
    paths; a link back to an ancestor does not make the search loop."""
    import json
    from pathlib import Path

    from fgvc_lib.results import find_runs

    run = tmp_path / "sweep-lr" / "lr=0.1"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(
        {"status": "finished", "config": {"method": "baseline"}}))
    (tmp_path / "sweep-bn").mkdir()
    (tmp_path / "sweep-bn" / "bn_policy=frozen").symlink_to(run, target_is_directory=True)
    (run / "back").symlink_to(tmp_path, target_is_directory=True)
    paths = [Path(r["path"]).relative_to(tmp_path).as_posix() for r in find_runs(tmp_path)]
    assert paths == ["sweep-bn/bn_policy=frozen", "sweep-lr/lr=0.1"]
