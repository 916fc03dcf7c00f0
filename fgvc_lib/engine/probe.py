"""A linear probe on frozen features: the floor every fine-tuned baseline must reach.

The backbone is frozen as it came (pretrained weights, running BatchNorm
statistics untouched, eval mode); every image is seen once through the
evaluation transform; its last feature map is average-pooled; a multinomial
logistic regression is fitted on the training features. Its weight decay is
chosen on the validation split (the same seeded, stratified carve-out of the
training set a training run uses), never on the test set. A fine-tuned model
that ends below this number has made its pretrained features worse.

The record is written like a training run's (``results.json`` with config,
provenance and test metrics), with ``"kind": "probe"`` and the sweep.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.config import TrainConfig, with_absolute_data_root
from fgvc_lib.data.base import classes_sha256
from fgvc_lib.data.transforms import DeviceNormalize
from fgvc_lib.engine.loaders import FGVCDataLoader, build_datasets
from fgvc_lib.engine.metrics import accuracy_metrics
from fgvc_lib.engine.run_folder import RunFolder
from fgvc_lib.errors import FGVCError
from fgvc_lib.models.backbones import build_backbone
from fgvc_lib.results import RESULTS_FILE, provenance, utc_now, write_json_atomic

#: Weight decays tried (L2 on the weights of the standardised-feature classifier).
WEIGHT_DECAYS: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
PROBE_KIND = "probe"


@torch.no_grad()
def pooled_features(backbone: nn.Module, dataset, normalizer: DeviceNormalize,
                    device: torch.device, batch_size: int = 64,
                    num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, C)`` global-average-pooled last-stage features and ``(N,)`` labels."""
    loader = FGVCDataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    backbone.eval()
    feats, labels = [], []
    for images, targets in loader:
        x = normalizer(images.to(device))
        feats.append(backbone(x)[-1].float().mean(dim=(2, 3)).cpu())
        labels.append(torch.as_tensor(targets))
    return torch.cat(feats), torch.cat(labels)


def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor, num_classes: int,
                            weight_decay: float, max_iter: int = 200) -> nn.Linear:
    """Multinomial logistic regression by full-batch L-BFGS:
    ``min_W,b mean_i CE(W x_i + b, y_i) + weight_decay / 2 * ||W||^2``."""
    torch.manual_seed(0)
    clf = nn.Linear(x.shape[1], num_classes)
    nn.init.zeros_(clf.weight)
    nn.init.zeros_(clf.bias)
    opt = torch.optim.LBFGS(clf.parameters(), lr=1.0, max_iter=max_iter,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(clf(x), y) + 0.5 * weight_decay * clf.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return clf


def select_and_fit(train: tuple[torch.Tensor, torch.Tensor],
                   val: tuple[torch.Tensor, torch.Tensor], num_classes: int,
                   weight_decays: Sequence[float] = WEIGHT_DECAYS
                   ) -> tuple[nn.Linear, dict[str, Any]]:
    """Fit one classifier per weight decay on ``train``; keep the best on ``val``.

    Features are standardised with the training mean and std (the classifier
    below folds that back in, so it applies to raw features). Ties go to the
    stronger weight decay.
    """
    x_tr, y_tr = train
    x_va, y_va = val
    if len(x_va) == 0:
        raise FGVCError("the linear probe needs a validation split to choose its weight decay",
                        "use a val_fraction > 0 (e.g. 0.1)")
    mean, std = x_tr.mean(0), x_tr.std(0).clamp_min(1e-6)
    z_tr, z_va = (x_tr - mean) / std, (x_va - mean) / std
    sweep, best = [], None
    for wd in sorted(weight_decays, reverse=True):
        clf = fit_logistic_regression(z_tr, y_tr, num_classes, wd)
        with torch.no_grad():
            val_top1 = accuracy_metrics(clf(z_va), y_va, num_classes)["top1"]
        sweep.append({"weight_decay": wd, "val_top1": val_top1})
        if best is None or val_top1 > best[0]:
            best = (val_top1, wd, clf)
    assert best is not None
    _, wd, clf = best
    folded = nn.Linear(x_tr.shape[1], num_classes)
    with torch.no_grad():  # W (x - m) / s + b  ==  (W / s) x + (b - W m / s)
        folded.weight.copy_(clf.weight / std)
        folded.bias.copy_(clf.bias - (clf.weight * (mean / std)).sum(1))
    return folded, {"weight_decay": wd, "sweep": sorted(sweep, key=lambda r: r["weight_decay"])}


def run_probe(cfg: TrainConfig, out_dir: str | Path | None = None,
              device: str | torch.device = "cpu", progress: bool = True) -> dict[str, Any]:
    """Probe ``cfg.backbone`` (with ``cfg.pretrained`` / ``cfg.weights``) on ``cfg.dataset``
    at ``cfg.image_size``; returns the record (also written to ``out_dir/results.json``).

    Like a training run, the probe holds ``out_dir`` locked while it works (see
    :class:`~fgvc_lib.engine.run_folder.RunFolder`)."""
    device = torch.device(device)
    cfg = with_absolute_data_root(cfg)
    folder = RunFolder(out_dir, targets=(RESULTS_FILE,)).open() if out_dir is not None else None
    failed = True
    try:
        record = _probe(cfg, device, progress)
        if out_dir is not None:
            write_json_atomic(Path(out_dir) / RESULTS_FILE, record)
        failed = False
        return record
    finally:
        if folder is not None:
            folder.close(failed=failed)


def _probe(cfg: TrainConfig, device: torch.device, progress: bool) -> dict[str, Any]:
    started = utc_now()
    backbone = build_backbone(cfg.backbone or "resnet50", pretrained=cfg.pretrained,
                              weights=cfg.weights).to(device)
    normalizer = DeviceNormalize(*backbone.normalization).to(device)
    train_set, val_set, test_set, classes = build_datasets(cfg, augment=False)
    k = len(classes)
    splits = {}
    for name, ds in (("train", train_set), ("val", val_set), ("test", test_set)):
        if progress:
            print(f"probe: features of {name} ({len(ds) if ds is not None else 0} images)",
                  flush=True)
        splits[name] = (pooled_features(backbone, ds, normalizer, device,
                                        num_workers=cfg.num_workers)
                        if ds is not None else (torch.empty(0), torch.empty(0, dtype=torch.long)))
    clf, selection = select_and_fit(splits["train"], splits["val"], k)
    with torch.no_grad():
        metrics = {split: {"final": accuracy_metrics(clf(splits[split][0]), splits[split][1], k)}
                   for split in ("val", "test")}
    record = {
        "status": "finished", "kind": PROBE_KIND, "config": cfg.to_dict(),
        "probe": {**selection, "feature_dim": int(splits["train"][0].shape[1]),
                  "normalization": [list(v) for v in backbone.normalization]},
        "dataset": {"name": cfg.dataset, "root": cfg.data_root, "num_classes": k,
                    "classes_sha256": classes_sha256(classes),
                    "train_size": len(train_set), "val_size": len(val_set) if val_set else 0,
                    "test_size": len(test_set)},
        "classes": classes,
        "provenance": {**provenance(device), "started": started, "finished": utc_now(),
                       "profile": cfg.profile},
        "history": [], "metrics": metrics,
    }
    return record
