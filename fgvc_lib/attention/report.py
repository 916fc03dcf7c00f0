"""Attention measured against ground-truth boxes over a whole dataset.

One function serves every chapter: :func:`attention_report` feeds a dataset
with boxes through a trained model (inputs resized to a square without
cropping, so boxes map by a plain scale), gathers the requested maps --
the model's own attention maps (``ModelOutput.attention``) or Grad-CAM /
LayerCAM -- and returns, per map, attention precision, ACE and ACR against
the object box (CMAL-Net Sec. 4.5, Tables 5-6) plus the pointing game and
the energy inside the discriminative part boxes (synthetic data only).
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch

from fgvc_lib.attention.gradcam import CAM_METHODS, attention_from_output, compute_cam
from fgvc_lib.attention.metrics import (attention_capturing_error, attention_capturing_recall,
                                        attention_precision, box_to_input_coords,
                                        energy_in_boxes, pointing_game)
from fgvc_lib.data.transforms import DeviceNormalize, box_preserving_transform
from fgvc_lib.errors import FGVCError


def box_batches(dataset, image_size: int, batch_size: int = 32, max_images: int | None = None,
                ) -> Iterator[dict[str, Any]]:
    """Batches of ``uint8`` square inputs with their boxes in input pixels.

    Yields dicts with ``images`` ``(B, 3, S, S)`` uint8, ``targets`` ``(B,)``,
    ``object_boxes`` ``(B, 4)`` and, when the dataset has them, ``part_boxes``
    ``(B, P, 4)``.
    """
    if not getattr(dataset, "has_boxes", False):
        raise FGVCError(f"{type(dataset).__name__} has no bounding boxes",
                        "measure attention on a dataset with boxes (synthetic, cub, cars, ...)")
    transform = box_preserving_transform(image_size)
    n = len(dataset) if max_images is None else min(len(dataset), max_images)
    for start in range(0, n, batch_size):
        idx = range(start, min(n, start + batch_size))
        anns = [dataset.annotation(i) for i in idx]
        sizes = torch.tensor([a["size"] for a in anns], dtype=torch.float32)
        batch = {
            "indices": list(idx),
            "images": torch.stack([transform(dataset.load_image(i)) for i in idx]),
            "targets": torch.tensor([dataset.targets[i] for i in idx]),
            "object_boxes": box_to_input_coords(torch.tensor([a["object_box"] for a in anns]),
                                                sizes, image_size),
        }
        if anns[0].get("part_boxes"):
            parts = torch.tensor([a["part_boxes"] for a in anns], dtype=torch.float32)
            batch["part_boxes"] = box_to_input_coords(parts, sizes[:, None, :], image_size)
        yield batch


def named_map(model: torch.nn.Module, images: torch.Tensor, output, name: str,
              image_size: int, head: str | None = None) -> np.ndarray:
    """One attention map by name, ``(B, H, W)`` in [0, 1]: a CAM method run on ``model``
    (``"gradcam"``, or ``"layercam@stage3"`` to name the layer), else the map ``name`` of
    the model's own ``output.attention``."""
    method, _, layer = name.partition("@")
    if method in CAM_METHODS:
        return np.asarray(compute_cam(model, images, method=method, layer=layer or None,
                                      head=head))
    return np.asarray(attention_from_output(output, name, image_size))


def attention_report(model: torch.nn.Module, dataset, image_size: int,
                     maps: Sequence[str], normalizer: DeviceNormalize | None = None,
                     t: float = 0.5, batch_size: int = 32, max_images: int | None = None,
                     device: str | torch.device | None = None, head: str | None = None,
                     ) -> dict[str, dict[str, float]]:
    """Per map name: mean attention precision, ACE, ACR (object box), and, with
    part boxes, pointing-game accuracy and energy inside the part boxes (in %).

    ``maps`` mixes names of ``ModelOutput.attention`` and CAM methods
    (``"gradcam"``, ``"layercam"``, ...); a CAM method may name its layer as
    ``"layercam@stage3"``. Predictions for ACR come from ``head`` (default:
    the final prediction).
    """
    device = torch.device(device) if device else next(model.parameters()).device
    normalizer = (normalizer or DeviceNormalize()).to(device)
    collected: dict[str, list[np.ndarray]] = {m: [] for m in maps}
    preds, targets, objects, parts = [], [], [], []
    was_training = model.training
    model.eval()
    try:
        for batch in box_batches(dataset, image_size, batch_size, max_images):
            x = normalizer(batch["images"].to(device))
            with torch.no_grad():
                out = model(x)
            preds.append(out.head(head).argmax(1).cpu())
            targets.append(batch["targets"])
            objects.append(batch["object_boxes"])
            if "part_boxes" in batch:
                parts.append(batch["part_boxes"])
            for name in maps:
                collected[name].append(named_map(model, x, out, name, image_size, head))
    finally:
        model.train(was_training)
    pred_t, target_t, object_t = torch.cat(preds), torch.cat(targets), torch.cat(objects)
    part_t = torch.cat(parts) if parts else None
    report = {}
    for name, chunks in collected.items():
        m = torch.from_numpy(np.concatenate(chunks)).float()
        row = {
            "precision": 100 * attention_precision(m, object_t, t).mean().item(),
            "ACE": 100 * attention_capturing_error(m, object_t, t),
            "ACR": 100 * attention_capturing_recall(m, object_t, pred_t, target_t, t),
        }
        if part_t is not None:
            row["pointing_parts"] = 100 * pointing_game(m, part_t).float().mean().item()
            row["energy_in_parts"] = 100 * energy_in_boxes(m, part_t).mean().item()
        report[name] = row
    return report
