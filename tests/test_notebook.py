"""The chapters' set-up call: environment, folders found from the repository, one line."""
from __future__ import annotations

from pathlib import Path

import pytest

import fgvc_lib.engine as engine
from fgvc_lib.errors import FGVCError
from fgvc_lib.notebook import Session, repository_root, setup
from fgvc_lib.reports.records import RunRecord

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("FGVC_PROFILE", "FGVC_DATASET", "FGVC_DATA_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_and_one_printed_line(clean_env, capsys):
    clean_env.chdir(REPO / "notebooks")
    s = setup(device="cpu")
    assert isinstance(s, Session)
    assert (s.profile, s.dataset, s.data_root, s.device, s.seed) == ("smoke", "synthetic", None,
                                                                     "cpu", 0)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "profile=smoke dataset=synthetic device=cpu" in out and "results/smoke" in out


def test_result_folders_come_from_the_repository_not_the_working_directory(clean_env, tmp_path):
    clean_env.chdir(REPO / "notebooks")
    s = setup(verbose=False)
    assert s.root == REPO
    assert s.results == REPO / "results" / "smoke"
    assert s.gpu_results == REPO / "results" / "gpu" and s.results_root == REPO / "results"
    assert s.run_dir("cmal") == REPO / "results" / "smoke" / "cmal" / "synthetic"
    # From a folder outside any checkout: the checkout the library was imported from.
    clean_env.chdir(tmp_path)
    assert repository_root() == REPO
    assert repository_root(REPO / "fgvc_lib" / "methods") == REPO


def test_environment_and_config(clean_env, tmp_path):
    clean_env.setenv("FGVC_PROFILE", "gpu")
    clean_env.setenv("FGVC_DATASET", "cub")
    clean_env.setenv("FGVC_DATA_ROOT", str(tmp_path))
    s = setup(seed=3, verbose=False)
    assert (s.profile, s.dataset, s.data_root, s.seed) == ("gpu", "cub", str(tmp_path), 3)
    assert s.data_label == "cub"
    cfg = s.config("cmal", epochs=2)
    assert (cfg.method, cfg.dataset, cfg.profile, cfg.data_root, cfg.epochs) == (
        "cmal", "cub", "gpu", str(tmp_path), 2)
    clean_env.setenv("FGVC_PROFILE", "huge")
    with pytest.raises(FGVCError, match="unknown profile 'huge'"):
        setup(verbose=False)


def test_seeded(clean_env):
    import torch

    setup(seed=5, verbose=False)
    a = torch.rand(3)
    setup(seed=5, verbose=False)
    assert torch.equal(a, torch.rand(3))


def test_train_or_load_returns_a_run_record_under_the_profile(clean_env, monkeypatch):
    seen = {}

    def fake(cfg, out_dir, **kw):
        seen.update(out=out_dir, **kw)
        return {"status": "finished", "config": cfg.to_dict(), "path": str(out_dir)}

    monkeypatch.setattr(engine, "train_or_load", fake)
    s = setup(device="cpu", verbose=False)
    rec = s.train_or_load(s.config("baseline"), progress=False)
    assert isinstance(rec, RunRecord) and rec.method == "baseline"
    assert seen == {"out": s.run_dir("baseline"), "device": "cpu", "progress": False}


def test_the_normalizer_is_the_backbones(clean_env):
    from fgvc_lib.methods import build_model

    s = setup(device="cpu", verbose=False)
    model = build_model("baseline", 3, backbone="resnet18")
    norm = s.normalizer(model)
    mean = [v / 255.0 for v in norm.mean.flatten().tolist()]  # the buffer is in uint8 units
    assert mean == pytest.approx(list(model.backbone.normalization[0]))
