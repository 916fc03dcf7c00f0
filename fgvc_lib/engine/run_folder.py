"""The output folder of a run: created, checked, locked for the run's lifetime, tidied.

:class:`RunFolder` is what the :class:`~fgvc_lib.engine.trainer.Trainer` (and the
linear probe) hold from construction to the end of the run:

* the folder is created if needed (and remembered as created by this run) and
  must be writable;
* ``OUT/.lock`` is locked (:class:`fgvc_lib.io.FileLock`): a second run on the
  same folder fails at once with one line naming the holder, instead of both
  writing the same files; a lock left by a killed run is free (the kernel drops
  an ``flock`` with its process) and is reported as such, once;
* temporary files a killed run left (``.checkpoint.pt.*.tmp``, ...) are
  deleted: with the lock held, no other writer can own them;
* on failure, a folder this run created and that holds nothing of value (only
  the lock file) is removed again, with the parents it created.
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path

from fgvc_lib.errors import FGVCError
from fgvc_lib.io import FileLock, describe_holder, remove_stale_temporaries

LOCK_FILE = ".lock"
_PROBE_FILE = ".write_probe"


class RunFolder:
    """The locked output folder ``path`` of one run (see the module docstring).

    ``targets`` are the file names the run writes atomically, whose stale
    temporaries are removed on :meth:`open`.
    """

    def __init__(self, path: str | Path, targets: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.targets = targets
        self.lock = FileLock(self.path / LOCK_FILE)
        self.created: list[Path] = []  # folders this run created, outermost first
        self.removed_temporaries: list[Path] = []

    def open(self, report=None) -> "RunFolder":
        """Create, check, lock and tidy the folder. ``report(line)`` receives the note
        about a stale lock (default: stderr)."""
        missing = []
        for folder in (self.path, *self.path.parents):
            if folder.exists():
                break
            missing.append(folder)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / _PROBE_FILE
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise FGVCError(f"cannot write to output folder {self.path} ({exc.strerror or exc})",
                            "choose a writable --out folder") from exc
        self.created = list(reversed(missing))
        try:
            self.lock.acquire(
                blocking=False, what=f"run folder {self.path}",
                fix="wait for that run to end (or stop it), or choose another --out folder")
        except BaseException:
            # Held by another run (which may even have made the folder in the same
            # instant): the folder is theirs now, nothing here is removed.
            self.created = []
            raise
        stale = self.lock.stale_holder
        if stale:
            ours = stale.get("pid") == os.getpid() and stale.get("host") == socket.gethostname()
            who = ("an earlier run in this process that was never finished or closed" if ours
                   else "a run that ended without releasing it, e.g. killed; that process is gone "
                        "(its lock was free)")
            (report or _stderr)(
                f"fgvc: note: {self.lock.path} was left by {who} "
                f"({describe_holder(stale)}); this run takes the folder over")
        self.removed_temporaries = remove_stale_temporaries(self.path,
                                                            (*self.targets, _PROBE_FILE))
        return self

    def close(self, failed: bool = False) -> None:
        """Release the lock; after a failure, remove the folder again if this run created
        it and it holds nothing but the lock file."""
        if failed:
            self._remove_created()  # while still locked: nobody can take the folder meanwhile
        self.lock.release()

    def _remove_created(self) -> None:
        if not self.created:
            return
        with contextlib.suppress(OSError):
            leftovers = [p for p in self.path.iterdir() if p.name != LOCK_FILE]
            if leftovers:
                return  # something of value (a checkpoint, a record): keep the folder
            (self.path / LOCK_FILE).unlink(missing_ok=True)
            for folder in reversed(self.created):  # innermost first
                folder.rmdir()
        self.created = []


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
