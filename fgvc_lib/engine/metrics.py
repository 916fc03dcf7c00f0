"""Classification metrics: top-1, top-5 and mean per-class accuracy."""
from __future__ import annotations

import torch


def accuracy_metrics(logits: torch.Tensor, targets: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Top-1 / top-5 accuracy and mean per-class accuracy, in percent.

    Mean per-class accuracy is what FGVC-Aircraft reports ("average
    class-prediction accuracy", Cross-X Sec. 4.4); classes absent from
    ``targets`` are skipped, not counted as zero.
    """
    if logits.ndim != 2 or logits.shape[0] != targets.shape[0]:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} disagree")
    n = targets.numel()
    if n == 0:
        return {"top1": float("nan"), "top5": float("nan"), "mean_class": float("nan"), "n": 0}
    k = min(5, logits.shape[1])
    topk = logits.topk(k, dim=1).indices
    correct1 = topk[:, 0] == targets
    correct5 = (topk == targets[:, None]).any(1)
    counts = torch.bincount(targets, minlength=num_classes).double()
    hits = torch.bincount(targets, weights=correct1.double(), minlength=num_classes)
    present = counts > 0
    mean_class = (hits[present] / counts[present]).mean().item()
    return {"top1": 100.0 * correct1.double().mean().item(),
            "top5": 100.0 * correct5.double().mean().item(),
            "mean_class": 100.0 * mean_class, "n": int(n)}
