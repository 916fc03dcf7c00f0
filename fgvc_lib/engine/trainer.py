"""One training loop for every method.

A method decides how one batch trains (``model.training_step``); the
:class:`Trainer` owns the rest: devices, bf16 autocast and channels_last on
CUDA, optional ``torch.compile``, DDP through ``torchrun``, parameter groups,
schedules, seeds, validation on a split carved from the training set,
atomic checkpoints, exact resume and the ``results.json`` record. It holds
the output folder locked from construction to the end of :meth:`Trainer.fit`
(:mod:`fgvc_lib.engine.run_folder`), records the data folder as an absolute
path and the class names' hash with the dataset, and stops a run whose
training loss turns NaN or infinite before that epoch overwrites a checkpoint.

Resume is exact because all randomness is re-seeded at the start of every
epoch from ``(seed, epoch, rank)``: the shuffling, the augmentations and the
method's own random choices of epoch ``e`` do not depend on what ran before,
so a run resumed from the checkpoint of epoch ``e - 1`` replays epoch ``e``
bit for bit (on the CPU; cuDNN kernels may differ on a GPU unless
``deterministic`` is set).
"""
from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from fgvc_lib.config import TrainConfig, same_data_root, with_absolute_data_root
from fgvc_lib.data.transforms import DeviceNormalize, Normalization
from fgvc_lib.engine.checkpoint import (FORMAT_VERSION, atomic_torch_save, check_compatible,
                                        check_same_classes, load_checkpoint, unwrap)
from fgvc_lib.engine.distributed import (DistInfo, barrier, cleanup, init_distributed,
                                         params_checksum_consistent)
from fgvc_lib.engine.loaders import DataBundle, build_loaders
from fgvc_lib.engine.metrics import accuracy_metrics
from fgvc_lib.engine.run_folder import LOCK_FILE, RunFolder
from fgvc_lib.errors import FGVCError
from fgvc_lib.io import FileLock
from fgvc_lib.methods import build_model, get_spec, recorded_options
from fgvc_lib.models.backbones import weights_normalization
from fgvc_lib.models.step import StepContext
from fgvc_lib.results import RESULTS_FILE, load_results, provenance, utc_now, write_json_atomic

CHECKPOINT = "checkpoint.pt"
BEST_WEIGHTS = "best.pt"


#: Device types a run can use (``mps`` where PyTorch has it).
DEVICE_TYPES = ("cpu", "cuda", "mps")
#: Set to 1 to train in channels_last on a CPU too (see Trainer.__init__).
CPU_CHANNELS_LAST_ENV = "FGVC_CPU_CHANNELS_LAST"


def pick_device(name: str | torch.device | None = None) -> torch.device:
    """``name`` if given (``cpu``, ``cuda``, ``cuda:1``), else CUDA when available.

    A malformed or unusable name (``tpu9``, ``cuda:7`` on a machine with two GPUs) is a
    one-line :class:`FGVCError`, raised before a run creates anything.
    """
    if name:
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError, TypeError):
            dev = None
        if dev is None or dev.type not in DEVICE_TYPES:
            raise FGVCError(f"unknown device {str(name)!r}",
                            "use --device cpu, cuda or cuda:N (N = the GPU's index)")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise FGVCError(f"device {str(name)!r} requested but CUDA is not available",
                            "use --device cpu, or install a CUDA build of PyTorch")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise FGVCError(f"device {str(name)!r} requested but this machine has "
                            f"{torch.cuda.device_count()} GPU(s)",
                            f"use --device cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
        if dev.type == "mps" and not (hasattr(torch.backends, "mps")
                                      and torch.backends.mps.is_available()):
            raise FGVCError(f"device {str(name)!r} requested but MPS is not available",
                            "use --device cpu")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 1009 + rank * 7919) % 2**31


def lr_factor(cfg: TrainConfig, epoch: float) -> float:
    """Multiplier of the base learning rates at training position ``epoch`` (0-based; a
    fraction inside an epoch when ``cfg.schedule_unit == "step"``): linear warm-up over
    ``warmup_epochs``, then cosine annealing from 1 to 0 over the remaining epochs, a
    multi-step decay at the ``milestones``, or constant.

    Per step the cosine reaches 0 at the end of training however few the epochs (per
    epoch, 3 epochs end at a factor of 0.25 after warm-up-free cosine, 5 at 0.10).
    """
    if cfg.warmup_epochs and epoch < cfg.warmup_epochs:
        # From 1 / (w + 1) up to 1 at the end of warm-up (never 0: a step at lr 0 is wasted).
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    if cfg.scheduler == "cosine":
        span = max(1, cfg.epochs - cfg.warmup_epochs)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (epoch - cfg.warmup_epochs) / span)))
    if cfg.scheduler == "multistep":
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.scheduler == "constant":
        return 1.0
    raise FGVCError(f"unknown scheduler {cfg.scheduler!r}", "use cosine, multistep or constant")


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = unwrap(model).param_groups(cfg.lr, cfg.backbone_lr_mult, cfg.weight_decay)
    for g in groups:
        g["initial_lr"] = g["lr"]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise FGVCError(f"unknown optimizer {cfg.optimizer!r}", "use sgd or adamw")


def set_lr(optimizer: torch.optim.Optimizer, cfg: TrainConfig, epoch: float) -> float:
    """Set every group's lr for training position ``epoch``; returns the base lr."""
    factor = lr_factor(cfg, epoch)
    for g in optimizer.param_groups:
        g["lr"] = g["initial_lr"] * factor
    return cfg.lr * factor


#: ``FGVC_PROGRESS_BARS=0`` keeps the per-epoch lines but draws no tqdm bars
#: (:func:`fgvc_lib.notebook.setup` sets it in a kernel: a notebook bar is a
#: widget, and a closed one leaves blank rows in the static book).
PROGRESS_BARS_ENV = "FGVC_PROGRESS_BARS"


def _progress(iterable, enabled: bool, **kwargs):
    if not enabled:
        return iterable
    if os.environ.get(PROGRESS_BARS_ENV, "1") == "0":
        from tqdm import tqdm as text_tqdm

        return text_tqdm(iterable, disable=True, **kwargs)  # set_postfix stays a no-op
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


@torch.no_grad()
def evaluate(model: nn.Module, loader, normalizer: DeviceNormalize, device: torch.device,
             num_classes: int, amp: bool = True, progress: bool = False,
             desc: str = "eval") -> dict[str, dict[str, float]]:
    """Metrics of the final prediction (``"final"``) and of every named head."""
    was_training = model.training
    model.eval()
    logits: dict[str, list[torch.Tensor]] = {}
    targets: list[torch.Tensor] = []
    autocast = _autocast(device, amp)
    for images, target in _progress(loader, progress, desc=desc, leave=False):
        images = normalizer(images.to(device, non_blocking=True))
        with autocast():
            out = model(images)
        logits.setdefault("final", []).append(out.logits.float().cpu())
        for name, head in out.heads.items():
            logits.setdefault(name, []).append(head.float().cpu())
        targets.append(torch.as_tensor(target))
    model.train(was_training)
    all_targets = torch.cat(targets)
    return {name: accuracy_metrics(torch.cat(parts), all_targets, num_classes)
            for name, parts in logits.items()}


def _autocast(device: torch.device, amp: bool) -> Callable[[], contextlib.AbstractContextManager]:
    if amp and device.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext


def non_finite_error(epoch: int, epochs: int, losses: dict[str, float], out_dir: Path,
                     last_good_epoch: int | None) -> FGVCError:
    """The error that stops a run whose training loss became NaN or infinite."""
    bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not math.isfinite(v))
    kept = (f"the last good checkpoint (epoch {last_good_epoch}) is kept in {out_dir / CHECKPOINT}"
            if last_good_epoch else "no epoch had finished, so there is no checkpoint")
    return FGVCError(f"training loss became non-finite in epoch {epoch + 1} of {epochs} ({bad}); "
                     f"the run was stopped and {kept}",
                     "lower --lr (e.g. to a tenth), clip the gradients (--grad-clip-norm 5) or "
                     "check the data, then train again in another --out folder (a --resume would "
                     "repeat the same steps)")


class Trainer:
    """Train ``cfg.method`` on ``cfg.dataset`` and record the run in ``out_dir``.

    >>> from fgvc_lib.config import resolve_config
    >>> cfg = resolve_config("baseline", "synthetic", "smoke")      # doctest: +SKIP
    >>> Trainer(cfg, "runs/baseline").fit()["metrics"]["test"]["final"]["top1"]  # doctest: +SKIP
    """

    #: Files a run writes atomically (their stale temporaries are removed on start).
    WRITTEN = (CHECKPOINT, BEST_WEIGHTS, RESULTS_FILE)

    def __init__(self, cfg: TrainConfig, out_dir: str | Path, resume: bool = False,
                 device: str | None = None, progress: bool = True) -> None:
        # The data folder is recorded as an absolute path: `fgvc eval --run` from another
        # working directory must read the same data.
        self.cfg = with_absolute_data_root(cfg)
        self.out_dir = Path(out_dir)
        self.resume = resume
        requested = pick_device(device) if device else None  # a bad name fails before anything
        self.dist: DistInfo = init_distributed(device_type=requested.type if requested else None)
        if self.dist.enabled and torch.cuda.is_available() and (device is None or device.startswith("cuda")):
            self.device = torch.device("cuda", self.dist.local_rank)
        else:
            self.device = requested or pick_device()
        self.progress = progress and self.dist.is_main
        self.run_folder: RunFolder | None = None
        self._open_run_folder()
        try:
            self._setup(resume)
        except BaseException:
            self.close(failed=True)
            raise

    def _open_run_folder(self) -> None:
        """Lock ``out_dir`` for this run (main process only; see :class:`RunFolder`)."""
        if self.dist.is_main and self.run_folder is None:
            self.run_folder = RunFolder(self.out_dir, targets=self.WRITTEN).open()

    def close(self, failed: bool = False) -> None:
        """Release the run folder (``fit`` does it at its end); after a failure, remove it
        again when this run created it and wrote nothing into it."""
        folder, self.run_folder = self.run_folder, None
        if folder is not None:
            folder.close(failed=failed)

    def _setup(self, resume: bool) -> None:
        cfg = self.cfg
        if self.dist.is_main and not resume and (self.out_dir / CHECKPOINT).exists():
            raise FGVCError(f"{self.out_dir} already holds a run ({CHECKPOINT})",
                            "pass --resume to continue it, or choose another --out folder")
        self._configure_determinism()
        seed_everything(cfg.seed)
        self.data: DataBundle = build_loaders(cfg, self.device, self.dist.world_size, self.dist.rank)
        self.model = build_model(cfg.method, self.data.num_classes, backbone=cfg.backbone,
                                 pretrained=cfg.pretrained, weights=cfg.weights,
                                 **cfg.method_options)
        self.model.set_bn_policy(cfg.resolved_bn_policy())
        cuda = self.device.type == "cuda"
        # channels_last is a GPU default; on a CPU it helps some networks (EfficientNet-Lite0
        # at 224 px trained ~1.6x faster on 2 cores) and slows others (ResNet-18 at 64 px),
        # so it is asked for there by the environment. It changes the memory layout, not
        # the computation, hence not the config (the record's provenance says which).
        self.channels_last = cfg.channels_last and (
            cuda or os.environ.get(CPU_CHANNELS_LAST_ENV, "") == "1")
        self.model.to(self.device, memory_format=torch.channels_last if self.channels_last
                      else torch.contiguous_format)
        mean, std = self.model.backbone.normalization  # what the backbone's weights expect
        self.normalizer = DeviceNormalize(mean, std, self.channels_last).to(self.device)
        self.optimizer = build_optimizer(self.model, cfg)
        self.forward = self._wrap_model()
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        self.best: dict[str, Any] = {"epoch": -1, "val_top1": -1.0}
        self.started = utc_now()
        # The code this process runs: read once, at the start, so that commits made while
        # the run trains do not relabel it.
        self.run_provenance = provenance(self.device)

    # -- setup -------------------------------------------------------------
    def _configure_determinism(self) -> None:
        if self.cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        else:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    def _wrap_model(self) -> nn.Module:
        wrapped: nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            wrapped = DDP(wrapped, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                          find_unused_parameters=getattr(self.model, "ddp_find_unused_parameters", False))
        if self.cfg.compile:
            wrapped = torch.compile(wrapped)
        return wrapped

    # -- checkpoint ----------------------------------------------------------
    def _spec(self) -> dict[str, Any]:
        # The input normalisation travels with the weights: a model rebuilt from them
        # (load_trained_model, `fgvc eval`) must normalise as this run did.
        return {**self.model.fgvc_spec, "normalization": self.model.backbone.normalization}

    def _dataset_entry(self) -> dict[str, Any]:
        # Which data the weights belong to: `fgvc eval` and --resume refuse other classes.
        return {**self.data.info, "classes": list(self.data.classes)}

    def save_checkpoint(self, epoch: int) -> None:
        state = {"format": FORMAT_VERSION, "spec": self._spec(), "config": self.cfg.to_dict(),
                 "dataset": self._dataset_entry(),
                 "epoch": epoch, "model": unwrap(self.model).state_dict(),
                 "optimizer": self.optimizer.state_dict(), "history": self.history,
                 "best": self.best, "started": self.started}
        atomic_torch_save(state, self.out_dir / CHECKPOINT)

    def _load_for_resume(self) -> None:
        path = self.out_dir / CHECKPOINT
        if not path.exists():
            return  # --resume on a fresh folder simply starts
        ckpt = load_checkpoint(path, map_location=self.device)
        check_compatible(ckpt["spec"], self.cfg.method, self.data.num_classes, path)
        check_same_classes(ckpt.get("dataset"), self.data.classes, self.data.info.get("root"), path)
        changed = changes_since(ckpt, self.cfg)
        if changed:
            raise FGVCError(f"{path} was trained with a different config ({', '.join(changed)})",
                            "resume with the same settings (name a changed default with --opt), "
                            "or choose another --out folder")
        unwrap(self.model).load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.history = list(ckpt.get("history", []))
        self.best = dict(ckpt.get("best", self.best))
        self.started = ckpt.get("started", self.started)
        self.start_epoch = int(ckpt["epoch"]) + 1

    # -- loop ------------------------------------------------------------------
    def fit(self, stop_after_epoch: int | None = None) -> dict[str, Any]:
        """Train to ``cfg.epochs`` (or stop after epoch ``stop_after_epoch``,
        0-based, as an interrupted run would) and return the run record."""
        cfg = self.cfg
        failed = True
        try:
            self._open_run_folder()  # again, if an earlier fit() of this Trainer closed it
            if self.resume:
                self._load_for_resume()
            for epoch in range(self.start_epoch, cfg.epochs):
                self._train_epoch(epoch)
                if stop_after_epoch is not None and epoch >= stop_after_epoch:
                    failed = False
                    return self.record(status="interrupted")
            barrier(self.dist)
            record = self._finish()
            failed = False
            return record
        finally:
            cleanup(self.dist)
            self.close(failed=failed)

    def _train_epoch(self, epoch: int) -> None:
        cfg = self.cfg
        seed = epoch_seed(cfg.seed, epoch, self.dist.rank)
        seed_everything(seed)
        if self.data.train.generator is not None:
            self.data.train.generator.manual_seed(seed)
        if self.data.train_sampler is not None:
            self.data.train_sampler.set_epoch(epoch)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        lr = set_lr(self.optimizer, cfg, epoch)
        per_step = cfg.schedule_unit == "step"
        batches = max(1, len(self.data.train))
        ctx = StepContext(forward=self.forward, optimizer=self.optimizer, generator=generator,
                          autocast=_autocast(self.device, cfg.amp),
                          grad_clip_norm=cfg.grad_clip_norm,
                          params=[p for p in self.model.parameters() if p.requires_grad])
        self.forward.train()
        sums: dict[str, torch.Tensor] = {}
        n_batches = n_images = 0
        t0 = time.perf_counter()
        bar = _progress(self.data.train, self.progress, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                        leave=False)
        for images, targets in bar:
            if per_step:
                set_lr(self.optimizer, cfg, epoch + n_batches / batches)
            images = self.normalizer(images.to(self.device, non_blocking=True))
            targets = targets.to(self.device, non_blocking=True)
            losses = unwrap(self.model).training_step(ctx, images, targets)
            for k, v in losses.items():
                # Accumulate on the device: no host sync per step.
                sums[k] = sums.get(k, 0.0) + v.detach().float()
            n_batches += 1
            n_images += images.shape[0]
            if self.progress and n_batches % 10 == 1 and "loss" in losses:
                bar.set_postfix(loss=f"{float(losses['loss']):.3f}")
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - t0
        # One host sync per epoch, here: a NaN/inf anywhere in the epoch reaches its sum.
        train_losses = {k: float(v) / max(1, n_batches) for k, v in sums.items()}
        if not all(math.isfinite(v) for v in train_losses.values()):
            self._stop_non_finite(epoch, train_losses)
        entry: dict[str, Any] = {
            "epoch": epoch + 1, "lr": lr, "train": train_losses, "time_s": round(seconds, 3),
            "train_images_per_s": round(n_images * self.dist.world_size / max(seconds, 1e-9), 2),
            "optimizer_steps_per_batch": ctx.optimizer_steps / max(1, n_batches),
        }
        if self.dist.is_main and self.data.val is not None:
            val = evaluate(self.model, self.data.val, self.normalizer, self.device,
                           self.data.num_classes, cfg.amp)
            entry["val"] = val["final"]
            entry["val_heads"] = {k: v["top1"] for k, v in val.items()}
            if val["final"]["top1"] > self.best["val_top1"]:
                self.best = {"epoch": epoch + 1, "val_top1": val["final"]["top1"]}
                atomic_torch_save({"spec": self._spec(), "epoch": epoch,
                                   "dataset": self._dataset_entry(),
                                   "model": unwrap(self.model).state_dict()},
                                  self.out_dir / BEST_WEIGHTS)
        self.history.append(entry)
        if self.dist.is_main:
            self.save_checkpoint(epoch)
            write_json_atomic(self.out_dir / RESULTS_FILE, self.record(status="running"))
            if self.progress:
                val_txt = f" val top1 {entry['val']['top1']:.1f}%" if "val" in entry else ""
                loss_txt = " ".join(f"{k} {v:.3f}" for k, v in train_losses.items())
                print(f"epoch {epoch + 1}/{cfg.epochs}: {loss_txt}{val_txt} "
                      f"({entry['train_images_per_s']:.0f} img/s)", flush=True)
        barrier(self.dist)

    def _stop_non_finite(self, epoch: int, losses: dict[str, float]) -> None:
        """Stop before this epoch's weights overwrite anything: ``checkpoint.pt`` and
        ``best.pt`` keep the last good epoch; the record says the run failed."""
        last_good = self.history[-1]["epoch"] if self.history else None
        error = non_finite_error(epoch, self.cfg.epochs, losses, self.out_dir, last_good)
        if self.dist.is_main and self.history:
            write_json_atomic(self.out_dir / RESULTS_FILE,
                              {**self.record(status="failed"), "error": str(error)})
        raise error

    def _finish(self) -> dict[str, Any]:
        consistent = params_checksum_consistent(self.model, self.dist)
        if not consistent:
            raise RuntimeError("DDP processes ended with different weights")
        if not self.dist.is_main:
            return {}
        metrics = {"test": evaluate(self.model, self.data.test, self.normalizer, self.device,
                                    self.data.num_classes, self.cfg.amp, self.progress, "test")}
        best_path = self.out_dir / BEST_WEIGHTS
        if best_path.exists() and self.best["epoch"] != len(self.history):
            # Model selection on the validation split, never on the test set.
            last_state = {k: v.clone() for k, v in unwrap(self.model).state_dict().items()}
            unwrap(self.model).load_state_dict(load_checkpoint(best_path, self.device)["model"])
            metrics["test_best_val"] = evaluate(self.model, self.data.test, self.normalizer,
                                                self.device, self.data.num_classes, self.cfg.amp)
            unwrap(self.model).load_state_dict(last_state)
        elif best_path.exists():
            metrics["test_best_val"] = metrics["test"]
        if self.data.val is not None:
            metrics["val"] = evaluate(self.model, self.data.val, self.normalizer, self.device,
                                      self.data.num_classes, self.cfg.amp)
        record = self.record(status="finished", metrics=metrics)
        write_json_atomic(self.out_dir / RESULTS_FILE, record)
        if self.progress:
            top1 = metrics["test"]["final"]["top1"]
            print(f"test top1 {top1:.2f}% -> {self.out_dir / RESULTS_FILE}", flush=True)
        return record

    def record(self, status: str, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "status": status, "config": self.cfg.to_dict(), "spec": self._spec(),
            "dataset": self.data.info, "classes": self.data.classes,
            "world_size": self.dist.world_size,
            "provenance": {**self.run_provenance, "started": self.started,
                           "channels_last": self.channels_last,
                           "finished": utc_now() if status == "finished" else None,
                           "profile": self.cfg.profile},
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "best": self.best, "history": self.history, "metrics": metrics or {},
        }


#: Settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = frozenset({"epochs", "num_workers", "compile", "eval_batch_size"})


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names of settings that differ between two configs, ignoring those a resume may change.

    ``data_root`` is compared as a folder (resolved), not as text: ``data/cub`` and
    ``/home/me/data/cub`` are the same data when the first is read from ``/home/me``.
    """
    keys = (set(old) | set(new)) - RESUMABLE_CHANGES
    return sorted(k for k in keys if not _same_setting(k, old.get(k), new.get(k)))


def _same_setting(key: str, old: Any, new: Any) -> bool:
    if key == "data_root":
        return same_data_root(old, new)
    return old == new


def same_config(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two recorded configs describe the same run (``data_root`` as a folder)."""
    return all(_same_setting(k, old.get(k), new.get(k)) for k in set(old) | set(new))


def default_changes(old_spec: dict[str, Any] | None, cfg: TrainConfig) -> list[str]:
    """Method options a run (its record's or checkpoint's spec) used that ``cfg`` would not.

    Equal configs can still train different models when a library default changed in
    between (Cross-X's data term did); each entry says ``option: old -> new``.
    """
    if not old_spec or old_spec.get("method") != cfg.method:
        return []  # no spec to compare, or another method: config_changes says so
    old = recorded_options(old_spec)
    new = get_spec(cfg.method).make_options(cfg.method_options).to_dict()
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)]


def changes_since(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """What ``cfg`` would do differently from the run behind ``saved`` (a record or a
    checkpoint): its settings (:func:`config_changes`), then its method options whose
    library default changed (:func:`default_changes`, prefixed ``default``)."""
    return (config_changes(saved.get("config", {}), cfg.to_dict())
            + [f"default {c}" for c in default_changes(saved.get("spec"), cfg)])


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, device: str | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Train and return the run record (also written to ``out_dir/results.json``)."""
    return Trainer(cfg, out_dir, resume=resume, device=device, progress=progress).fit()


def train_or_load(cfg: TrainConfig, out_dir: str | Path, device: str | None = None,
                  progress: bool = True, retrain: bool = False) -> dict[str, Any]:
    """The notebooks' pattern: reuse a finished run with the same config, else
    train (resuming an interrupted one)."""
    out_dir = Path(out_dir)
    cfg = with_absolute_data_root(cfg)
    path = out_dir / RESULTS_FILE
    if path.exists() and not retrain:
        rec = load_results(path)
        changed = changes_since(rec, cfg)
        if rec.get("status") == "finished" and same_config(rec.get("config") or {}, cfg.to_dict()) \
                and not changed:
            rec["path"] = str(out_dir)
            return rec
        if changed:
            # A notebook whose settings (or whose library defaults) changed: the old run
            # answers another question, so it is replaced rather than resumed.
            if progress:
                print(f"{out_dir}: config changed ({', '.join(changed)}); training afresh", flush=True)
            retrain = True
    if retrain and out_dir.is_symlink():
        # A link to another folder's run (a sweep reusing a run of another sweep): drop the
        # link, never the run it points to.
        out_dir.unlink()
    elif retrain and out_dir.exists():
        # Never delete a folder another process is training in: take its lock first (a
        # held lock is a one-line error naming the holder).
        lock = FileLock(out_dir / LOCK_FILE).acquire(
            what=f"run folder {out_dir}",
            fix="wait for that run to end (or stop it), or choose another folder")
        try:
            shutil.rmtree(out_dir)
        finally:
            lock.release()
    rec = train(cfg, out_dir, resume=True, device=device, progress=progress)
    rec["path"] = str(out_dir)
    return rec


def load_trained_model(run_dir: str | Path, which: str = "last",
                       device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model of a finished run and load its weights (``last`` or ``best``)."""
    run_dir = Path(run_dir)
    ckpt = load_checkpoint(run_dir / (CHECKPOINT if which == "last" else BEST_WEIGHTS), device)
    spec = ckpt["spec"]
    # Rebuild with every option the run used, so a default changed since then does not
    # change the model.
    options = recorded_options(spec)
    model = build_model(spec["method"], spec["num_classes"], backbone=spec["backbone"],
                        pretrained=False, **options)
    model.load_state_dict(ckpt["model"])
    # Built without pretrained weights, the backbone says "random init"; these weights
    # expect what the run normalised with.
    model.backbone.normalization = _trained_normalization(run_dir, ckpt)
    return model.to(device).eval()


def _trained_normalization(run_dir: Path, ckpt: dict[str, Any]) -> Normalization:
    """The normalisation a run trained with: from its checkpoint's spec, or, for checkpoints
    written before the spec recorded it, decided again from the run's config."""
    if "normalization" in ckpt["spec"]:
        mean, std = ckpt["spec"]["normalization"]
        return tuple(float(m) for m in mean), tuple(float(s) for s in std)
    cfg = ckpt.get("config")
    if cfg is None and (run_dir / CHECKPOINT).exists():
        cfg = load_checkpoint(run_dir / CHECKPOINT).get("config")
    # No config anywhere (a bare weights file): the weights' origin is unknown, so the
    # library's from-scratch convention applies.
    cfg = cfg or {}
    return weights_normalization(ckpt["spec"]["backbone"],
                                 bool(cfg.get("pretrained") or cfg.get("weights")))

