"""Atomic checkpoints that refuse to load into the wrong model.

A checkpoint is written through :func:`fgvc_lib.io.atomic_write` (a
temporary file in the same folder, renamed over the old one), and synced to
disk before the rename, so a kill or a power cut at any moment leaves
either the previous checkpoint or the new one, never a torn file.
Checkpoints hold plain tensors and dicts only, so they load with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from fgvc_lib.data.base import classes_sha256
from fgvc_lib.errors import FGVCError
from fgvc_lib.io import atomic_write

FORMAT_VERSION = 1


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` through a temp file + rename, fsynced before the rename.

    The sync matters here more than for small records: a checkpoint is what
    a resumed run of many hours starts from.
    """

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())

    atomic_write(path, write)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`atomic_torch_save`, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FGVCError(f"checkpoint not found: {path}",
                        "train first, or pass the checkpoint.pt written by `fgvc train --out DIR`")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's refusal spans many lines (and suggests weights_only=False, which would
        # run whatever code the file carries): one line, naming what was refused.
        text = str(exc)
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if refused:
            raise FGVCError(f"refused to load checkpoint {path}: it holds a Python object of type "
                            f"{refused.group(1)}, not only tensors and plain containers",
                            "load only checkpoints written by `fgvc train`; this file is not one, "
                            "or was altered: delete it and retrain") from None
        reason = text.partition("WeightsUnpickler error:")[2].strip() or text
        reason = reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__
        raise FGVCError(f"cannot read checkpoint {path}: UnpicklingError: {reason}",
                        "the file is corrupt or not an fgvc checkpoint; delete it and retrain") from None
    except Exception as exc:
        raise FGVCError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}",
                        "the file is corrupt or not an fgvc checkpoint; delete it and retrain") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "spec" not in ckpt:
        raise FGVCError(f"{path} is not an fgvc checkpoint (no 'model'/'spec' entries)",
                        "pass a checkpoint.pt written by `fgvc train`")
    return ckpt


def check_compatible(ckpt_spec: dict[str, Any], method: str, num_classes: int,
                     path: str | Path = "checkpoint") -> None:
    """Refuse a checkpoint of another method or class count, naming both."""
    if ckpt_spec.get("method") != method:
        raise FGVCError(f"{path} was trained with method {ckpt_spec.get('method')!r}, "
                        f"not {method!r}",
                        f"use --method {ckpt_spec.get('method')} or another --out folder")
    if int(ckpt_spec.get("num_classes", -1)) != int(num_classes):
        raise FGVCError(f"{path} has {ckpt_spec.get('num_classes')} classes but the dataset has "
                        f"{num_classes}",
                        "use a checkpoint trained on this dataset, or another --out folder")


def check_same_classes(saved: dict[str, Any] | None, classes: list[str], root: str | None,
                       path: str | Path = "checkpoint") -> None:
    """Refuse data whose ordered class names differ from those the weights were trained on.

    ``saved`` is the dataset entry a checkpoint (or a run record) carries: its
    ``classes_sha256`` and, where recorded, ``classes`` and ``root``. Nothing is checked
    when neither hash nor names were recorded (checkpoints older than the check).
    """
    if not saved:
        return
    names = saved.get("classes")
    want = saved.get("classes_sha256") or (classes_sha256(names) if names else None)
    if want is None:
        return
    have = classes_sha256(classes)
    if have == want:
        return
    detail = ""
    if names:
        diff = next((i for i, (a, b) in enumerate(zip(names, classes)) if a != b), None)
        if diff is not None:
            detail = f"; class {diff} is {names[diff]!r} there but {classes[diff]!r} here"
    trained_on = saved.get("root") or "its data folder"
    raise FGVCError(f"{path} was trained on {len(names) if names else '?'} classes from "
                    f"{trained_on} (classes sha256 {want[:12]}), but {root or 'this data'} has "
                    f"other classes ({len(classes)}, sha256 {have[:12]}{detail})",
                    f"evaluate on the data the run was trained on (--data-root {trained_on}), "
                    "or train a run on this data")


def save_model_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of the underlying model (unwrapping DDP / torch.compile)."""
    return unwrap(model).state_dict()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model
