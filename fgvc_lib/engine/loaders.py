"""From a :class:`~fgvc_lib.config.TrainConfig` to train / val / test loaders.

The validation split is carved from the training set (seeded, stratified):
model selection never looks at the test set.

This module lives in the engine, not in :mod:`fgvc_lib.data`, because it
reads a run's config: the data layer knows datasets and transforms only and
imports nothing above itself (see :mod:`fgvc_lib.methods` for the layering).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

from fgvc_lib.config import TrainConfig
from fgvc_lib.data import SYNTHETIC, build_dataset
from fgvc_lib.data.base import classes_sha256
from fgvc_lib.data.transforms import SmallImageCheck, eval_transform, train_transform
from fgvc_lib.errors import FGVCError


def stratified_split(targets: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split indices per class: ``round(val_fraction * n_c)`` of each class go to
    validation (at least one when a class has two or more items)."""
    if not 0.0 <= val_fraction < 1.0:
        raise FGVCError(f"val_fraction must be in [0, 1), got {val_fraction}",
                        "use e.g. 0.1 (10% of each class for validation)")
    rng = np.random.default_rng(seed)
    targets_arr = np.asarray(targets)
    train_idx: list[int] = []
    val_idx: list[int] = []
    for c in np.unique(targets_arr):
        idx = np.flatnonzero(targets_arr == c)
        rng.shuffle(idx)
        n_val = int(round(val_fraction * len(idx)))
        if val_fraction > 0 and n_val == 0 and len(idx) >= 2:
            n_val = 1
        val_idx.extend(idx[:n_val].tolist())
        train_idx.extend(idx[n_val:].tolist())
    return sorted(train_idx), sorted(val_idx)


def _subsample(ds: Dataset, n: int, seed: int) -> Dataset:
    if n <= 0 or n >= len(ds):
        return ds
    # Deal the samples out class by class (each class shuffled), so that any n keeps
    # the classes balanced; per-class rounding would keep nothing when n < classes x 2.
    targets = ds.targets  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    targets_arr = np.asarray(targets)
    per_class = [rng.permutation(np.flatnonzero(targets_arr == c)) for c in np.unique(targets_arr)]
    dealt = [idx[rank] for rank in range(max(len(i) for i in per_class))
             for idx in per_class if rank < len(idx)]
    keep = sorted(int(i) for i in dealt[:n])
    sub = Subset(ds, keep)
    sub.targets = [targets[i] for i in keep]  # type: ignore[attr-defined]
    return sub


@dataclass
class DataBundle:
    train: DataLoader
    val: DataLoader | None
    test: DataLoader
    num_classes: int
    classes: list[str]
    info: dict[str, Any]
    train_sampler: Any = None


def dataset_options(cfg: TrainConfig) -> dict[str, Any]:
    if cfg.dataset == SYNTHETIC:
        return {"num_classes": cfg.synthetic_classes, "image_size": max(cfg.image_size, 32),
                "seed": cfg.seed}
    return {}


def build_split(cfg: TrainConfig, split: str, transform=None) -> Dataset:
    """The whole ``split`` of the config's dataset (no validation carve-out), e.g.
    the test set with its boxes for attention measurements."""
    opts = dataset_options(cfg)
    if cfg.dataset == SYNTHETIC:
        opts["per_class"] = (cfg.synthetic_train_per_class if split == "train"
                             else cfg.synthetic_test_per_class)
    return build_dataset(cfg.dataset, cfg.data_root, split, transform, **opts)


def build_datasets(cfg: TrainConfig, augment: bool = True
                   ) -> tuple[Dataset, Dataset | None, Dataset, list[str]]:
    """Train (minus validation), validation and test datasets with their transforms.

    ``augment=False`` gives the training images the evaluation transform (a frozen-feature
    probe wants each image once, as the test set sees it); the split is the same.
    """
    # One check for the dataset's images (train, val and test): a warning, once, about an
    # image smaller than the crop instead of silently up-sampling it.
    check = SmallImageCheck(cfg.image_size, f"dataset {cfg.dataset!r}"
                            + (f" at {cfg.data_root}" if cfg.data_root else ""))
    t_eval = v2.Compose([check, eval_transform(cfg.image_size, cfg.resize_size)])
    t_train = (v2.Compose([check, train_transform(cfg.image_size, cfg.resize_size)]) if augment
               else t_eval)
    train_full = build_split(cfg, "train")
    test = build_split(cfg, "test", t_eval)
    classes = list(train_full.classes)
    if len(test.classes) != len(classes):
        raise FGVCError(f"train and test splits disagree on the class count "
                        f"({len(classes)} vs {len(test.classes)})",
                        "check the dataset folder is complete and unmodified")
    if len(train_full) == 0 or len(test) == 0:
        raise FGVCError(f"dataset {cfg.dataset!r} has an empty split "
                        f"(train {len(train_full)}, test {len(test)})",
                        "check --data-root points at the extracted dataset")
    train_idx, val_idx = stratified_split(train_full.targets, cfg.val_fraction, cfg.seed)
    train = _TransformedSubset(train_full, train_idx, t_train)
    val = _TransformedSubset(train_full, val_idx, t_eval) if val_idx else None
    train = _subsample(train, cfg.max_train_samples, cfg.seed)
    test = _subsample(test, cfg.max_test_samples, cfg.seed)
    return train, val, test, classes


class FGVCDataLoader(DataLoader):
    """A :class:`~torch.utils.data.DataLoader` whose workers' errors surface as one line.

    A worker process re-raises its exception in the main process with the whole
    traceback as the message (``Caught FGVCError in DataLoader worker process 0.
    Original Traceback ...``); :func:`worker_error` turns that back into the
    :class:`FGVCError` the worker raised (naming the file), or into a new one for an
    ``OSError`` and other failures, so the CLI prints one line.
    """

    def __iter__(self):
        iterator = super().__iter__()
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except Exception as exc:
                converted = worker_error(exc)
                if converted is exc:
                    raise
                raise converted from None
            yield batch


_WORKER_FIX = ("replace or delete the file named above (re-extract the dataset archive); "
               "--workers 0 shows the full error")


def worker_error(exc: BaseException) -> BaseException:
    """The one-line :class:`FGVCError` behind an exception re-raised from a DataLoader
    worker; ``exc`` itself when it did not come from a worker."""
    text = str(exc)
    head = text[:300]
    if "DataLoader worker" not in head:
        return exc
    if "is killed by signal" in head or "exited unexpectedly" in head:
        return FGVCError(f"a DataLoader worker died ({text.strip().splitlines()[0]})",
                         "lower --workers or --batch-size (the machine may be out of memory)")
    if isinstance(exc, FGVCError):
        # The worker's traceback, already on one line: its last entry is the original error.
        message = text.rpartition("FGVCError: ")[2]
        problem, _, fix = message.partition(" -> fix: ")
        return FGVCError(problem, fix or _WORKER_FIX)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else type(exc).__name__
    return FGVCError(f"a DataLoader worker failed to load data: {last}", _WORKER_FIX)


class _TransformedSubset(Dataset):
    """A subset of a dataset with its own transform (train and val share files)."""

    def __init__(self, base, indices: list[int], transform) -> None:
        self.base = base
        self.indices = list(indices)
        self.transform = transform
        self.targets = [base.targets[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image = self.base.load_image(self.indices[i])
        return self.transform(image), self.targets[i]


def build_loaders(cfg: TrainConfig, device: torch.device, world_size: int = 1,
                  rank: int = 0) -> DataBundle:
    """Loaders with pinned memory and persistent workers on CUDA.

    ``cfg.batch_size`` is the global batch; each of ``world_size`` processes
    gets ``batch_size // world_size``.
    """
    train, val, test, classes = build_datasets(cfg)
    if cfg.batch_size % world_size:
        raise FGVCError(f"batch size {cfg.batch_size} is not divisible by {world_size} processes",
                        "choose --batch-size as a multiple of the number of GPUs")
    per_rank = cfg.batch_size // world_size
    pin = device.type == "cuda"
    common: dict[str, Any] = {"num_workers": cfg.num_workers, "pin_memory": pin}
    if cfg.num_workers > 0:
        common.update(persistent_workers=True, prefetch_factor=4)
    sampler = None
    generator = torch.Generator()
    generator.manual_seed(cfg.seed)
    if world_size > 1:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(train, num_replicas=world_size, rank=rank, shuffle=True,
                                     seed=cfg.seed, drop_last=True)
    drop_last = len(train) >= 2 * per_rank * world_size
    train_loader = FGVCDataLoader(train, batch_size=per_rank, shuffle=sampler is None,
                                  sampler=sampler, drop_last=drop_last, generator=generator,
                                  **common)
    eval_bs = cfg.eval_batch_size or per_rank * 2
    val_loader = FGVCDataLoader(val, batch_size=eval_bs, shuffle=False, **common) if val else None
    test_loader = FGVCDataLoader(test, batch_size=eval_bs, shuffle=False, **common)
    info = {"name": cfg.dataset, "root": cfg.data_root, "num_classes": len(classes),
            "classes_sha256": classes_sha256(classes),
            "train_size": len(train), "val_size": len(val) if val else 0, "test_size": len(test),
            "synthetic": cfg.dataset == SYNTHETIC}
    if cfg.dataset == SYNTHETIC:
        from fgvc_lib.data.synthetic import GENERATOR_VERSION

        info["generator_version"] = GENERATOR_VERSION
    return DataBundle(train_loader, val_loader, test_loader, len(classes), classes, info, sampler)
