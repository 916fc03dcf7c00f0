"""The run folder: locked for a run's lifetime, tidied after a kill, removed after an early failure."""
from __future__ import annotations

import json
import os
import socket
import stat

import pytest

from fgvc_lib.config import resolve_config
from fgvc_lib.engine.trainer import Trainer
from fgvc_lib.errors import FGVCError
from fgvc_lib.io import write_json_atomic

LOCK_FILE = ".lock"  # fgvc_lib.engine.run_folder.LOCK_FILE


def RunFolder(*args, **kwargs):
    from fgvc_lib.engine.run_folder import RunFolder as cls

    return cls(*args, **kwargs)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_second_holder_is_refused_at_once_naming_the_first(tmp_path):
    from fgvc_lib.engine import run_folder

    assert run_folder.LOCK_FILE == LOCK_FILE
    first = RunFolder(tmp_path / "run").open()
    try:
        with pytest.raises(FGVCError) as info:
            RunFolder(tmp_path / "run").open()
        text = str(info.value)
        assert "\n" not in text
        assert f"run folder {tmp_path / 'run'} is in use by another process" in text
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in text
        assert "fix: wait for that run to end" in text
    finally:
        first.close()
    RunFolder(tmp_path / "run").open().close()  # free again once released


def test_a_second_trainer_on_the_same_folder_is_refused(tmp_path, tiny_cfg):
    trainer = Trainer(tiny_cfg(epochs=1), tmp_path / "run", progress=False)
    with pytest.raises(FGVCError, match="is in use by another process"):
        Trainer(tiny_cfg(epochs=1), tmp_path / "run", progress=False)
    trainer.fit()
    assert (tmp_path / "run" / LOCK_FILE).read_text() == ""  # released: the record is emptied
    Trainer(tiny_cfg(epochs=1), tmp_path / "run", resume=True, progress=False).close()


def test_a_lock_left_by_a_dead_process_is_reported_and_taken_over(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    dead = {"pid": 999999, "host": socket.gethostname(), "started": "2025-01-01T00:00:00+00:00",
            "command": "fgvc train --out run"}
    (folder / LOCK_FILE).write_text(json.dumps(dead))
    notes = []
    run = RunFolder(folder).open(report=notes.append)
    run.close()
    assert len(notes) == 1
    assert "was left by a run that ended without releasing it" in notes[0]
    assert "pid 999999" in notes[0] and "fgvc train --out run" in notes[0]
    notes.clear()
    RunFolder(folder).open(report=notes.append).close()
    assert notes == []  # a clean release leaves no record behind


def test_the_lock_file_records_its_holder(tmp_path):
    from fgvc_lib.io import FileLock

    lock = FileLock(tmp_path / "x.lock").acquire()
    try:
        holder = json.loads((tmp_path / "x.lock").read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    finally:
        lock.release()


def test_temporaries_left_by_a_killed_run_are_removed_and_files_follow_the_umask(tmp_path, tiny_cfg):
    out = tmp_path / "run"
    out.mkdir()
    stale = [out / ".checkpoint.pt.k1ll3d.tmp", out / ".results.json.abc.tmp",
             out / ".best.pt.q.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    keep = out / "notes.txt"
    keep.write_text("mine")
    old = os.umask(0o022)
    try:
        Trainer(tiny_cfg(epochs=1), out, progress=False).fit()
    finally:
        os.umask(old)
    assert not any(p.exists() for p in stale)
    assert keep.read_text() == "mine"
    for name in ("results.json", "checkpoint.pt", LOCK_FILE):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_records_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        write_json_atomic(tmp_path / "results.json", {"status": "finished"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == mode


def test_a_run_that_fails_early_leaves_no_folder_it_created(tmp_path, tiny_cfg):
    cfg = resolve_config("baseline", "folder", "smoke", data_root=str(tmp_path / "nowhere"),
                         backbone="resnet18", image_size=32, epochs=1)
    with pytest.raises(FGVCError, match="dataset root not found"):
        Trainer(cfg, tmp_path / "runs" / "a" / "run", progress=False)
    assert not (tmp_path / "runs").exists()
    # a folder that existed before is kept (empty or not)
    (tmp_path / "mine").mkdir()
    with pytest.raises(FGVCError):
        Trainer(cfg, tmp_path / "mine", progress=False)
    assert (tmp_path / "mine").is_dir()


def test_a_run_that_fails_in_its_first_epoch_leaves_no_folder(tmp_path, tiny_cfg):
    trainer = Trainer(tiny_cfg(epochs=1), tmp_path / "run", progress=False)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    trainer.model.training_step = broken
    with pytest.raises(RuntimeError, match="boom"):
        trainer.fit()
    assert not (tmp_path / "run").exists()
