"""Run records: ``results.json`` with metrics and provenance, and readers for them.

The typed view of a record (accessors, the run table) is
:class:`fgvc_lib.reports.records.RunRecord`; this module writes and finds the files.

Every number the book shows comes from one of these files. A record holds
the full config, the git commit (and whether the tree was dirty), the
device, the dataset, the profile, start/finish timestamps, library
versions, the per-epoch history and the final metrics.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

# Re-exported (see __all__): records are written by the library's one atomic writer.
from fgvc_lib.io import write_json_atomic

RESULTS_FILE = "results.json"


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_info(path: str | Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the repository holding ``path`` (this library by default).

    ``$FGVC_GIT_COMMIT``, when set, wins: a copy of the tree sent to another
    machine may carry a stale ``.git`` (or none), and whoever sends it knows
    the commit it is.
    """
    if os.environ.get("FGVC_GIT_COMMIT"):
        return {"commit": os.environ["FGVC_GIT_COMMIT"], "dirty": None,
                "source": "FGVC_GIT_COMMIT"}
    path = Path(path or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return {"commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"type": device.type, "cpu": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        info.update(name=torch.cuda.get_device_name(idx), cuda=torch.version.cuda,
                    capability=".".join(map(str, torch.cuda.get_device_capability(idx))),
                    gpu_count=torch.cuda.device_count())
    else:
        info["name"] = f"CPU ({info['cpu']}, {info['cpu_count']} cores)"
    return info


def library_versions() -> dict[str, str]:
    import numpy
    import torchvision

    import fgvc_lib

    out = {"python": platform.python_version(), "torch": torch.__version__,
           "torchvision": torchvision.__version__, "numpy": numpy.__version__,
           "fgvc_lib": fgvc_lib.__version__}
    try:
        import timm

        out["timm"] = timm.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def provenance(device: torch.device) -> dict[str, Any]:
    return {"git": git_info(), "device": device_info(device), "versions": library_versions(),
            "platform": platform.platform()}


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a ``results.json`` (or the one inside a run folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    with open(path) as fh:
        return json.load(fh)


def _record_files(root: Path) -> list[Path]:
    """Every ``results.json`` under ``root``, sorted, following linked folders (a sweep may
    reuse another sweep's run through a symlink: the run is then listed under both
    paths); a link back into its own ancestors is not followed."""
    files = []
    for folder, dirs, names in os.walk(root, followlinks=True):
        here = Path(folder)
        ancestors = {os.path.realpath(p) for p in here.parents}
        dirs[:] = sorted(d for d in dirs if os.path.realpath(here / d) not in ancestors
                         and os.path.realpath(here / d) != os.path.realpath(here))
        if RESULTS_FILE in names:
            files.append(here / RESULTS_FILE)
    return sorted(files)


def find_runs(root: str | Path, kind: str = "run", **filters: Any) -> list[dict[str, Any]]:
    """All finished records of ``kind`` under ``root`` whose config matches ``filters``
    (e.g. ``method="cmal", profile="gpu"``); each record gets ``"path"``.

    ``kind`` is ``"run"`` (a training run: records without a ``"kind"``), ``"probe"``
    (:mod:`fgvc_lib.engine.probe`; its config names the baseline, but it trained nothing)
    or ``"any"``.
    """
    runs = []
    for path in _record_files(Path(root)):
        try:
            rec = load_results(path)
        except (OSError, json.JSONDecodeError):
            continue
        if rec.get("status") != "finished":
            continue
        if kind != "any" and rec.get("kind", "run") != kind:
            continue
        cfg = rec.get("config", {})
        if all(cfg.get(k) == v for k, v in filters.items()):
            rec["path"] = str(path.parent)
            runs.append(rec)
    return runs


__all__ = ["RESULTS_FILE", "device_info", "find_runs", "git_info", "library_versions",
           "load_results", "provenance", "utc_now", "write_json_atomic"]
