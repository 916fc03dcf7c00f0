"""Datasets: the synthetic fine-grained set (embedded default) and the real ones.

``build_dataset(name, root, split, transform, **options)`` builds any of
them; ``available_datasets()`` lists the names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from fgvc_lib.data.base import FGVCDataset
from fgvc_lib.errors import FGVCError, unknown_name_error

SYNTHETIC = "synthetic"


def _registry() -> dict[str, type[FGVCDataset]]:
    from fgvc_lib.data.real import REAL_DATASETS
    from fgvc_lib.data.synthetic import SyntheticFGVC

    return {SYNTHETIC: SyntheticFGVC, **REAL_DATASETS}


def available_datasets() -> list[str]:
    return sorted(_registry())


def build_dataset(name: str, root: str | Path | None, split: str,
                  transform: Callable | None = None, download: bool = False,
                  **options: Any) -> FGVCDataset:
    """Build dataset ``name``; real datasets need ``root`` (the extracted archive)."""
    registry = _registry()
    if name not in registry:
        raise unknown_name_error("dataset", name, list(registry))
    cls = registry[name]
    if name == SYNTHETIC:
        return cls(root=root, split=split, transform=transform, **options)
    if root is None:
        raise FGVCError(f"dataset {name!r} needs a data folder",
                        "pass --data-root PATH (the folder holding the extracted official archive)")
    return cls(root=root, split=split, transform=transform, download=download, **options)


__all__ = ["FGVCDataset", "available_datasets", "build_dataset"]
