"""CN-CNN's first optimiser steps on the CUB subset: loss, activations, masks, gradients.

Trains the `transfer`-profile CN-CNN (EfficientNet-Lite0, ImageNet weights, 224 px, batch 32,
`width=128 align=s4`, backbone lr multiplier 0.1, frozen pretrained BatchNorm statistics) for
``--steps`` optimiser steps at each ``--lr`` and configuration, and records per step: the
loss (sum of three cross-entropies; chance is 3 ln 100 = 13.8), the mean |value| of the
aligned levels, of the HL outputs and of the LH outputs (S3, S4, S5), the mean spatial and
channel masks, the gradient L2 norm of each part, and how many distinct classes the batch is
predicted as. Run from the repository root::

    python results/cpu/cn_cnn-cub100-lr-diagnostics/first_steps.py --steps 12 \
        --out results/cpu/cn_cnn-cub100-lr-diagnostics/first_steps.json
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from fgvc_lib.config import resolve_config
from fgvc_lib.engine.trainer import Trainer, set_lr
from fgvc_lib.results import provenance

RUNS = (  # (lr of the new layers, method options)
    (0.1, {"hl": "convlstm", "lh": "on"}),
    (0.1, {"hl": "convlstm", "lh": "off"}),
    (0.01, {"hl": "convlstm", "lh": "on"}),
)


def grad_norm(module: torch.nn.Module | None) -> float:
    if module is None:
        return 0.0
    grads = [p.grad.norm() ** 2 for p in module.parameters() if p.grad is not None]
    return float(torch.stack(grads).sum().sqrt()) if grads else 0.0


def level_means(maps: dict[str, torch.Tensor], absolute: bool = True) -> list[float]:
    return [float((m.abs() if absolute else m).mean()) for m in maps.values()]


def first_steps(data_root: str, lr: float, options: dict[str, str], steps: int) -> list[dict]:
    cfg = resolve_config("cn_cnn", "cub_list", "transfer", data_root=data_root, lr=lr,
                         backbone_lr_mult=0.1, bn_policy="frozen", num_workers=1, seed=0,
                         method_options={"width": 128, "align": "s4", **options})
    trainer = Trainer(cfg, tempfile.mkdtemp(prefix="cn_cnn-steps-"), device="cpu",
                      progress=False)
    model, optimizer = trainer.model, trainer.optimizer
    set_lr(optimizer, cfg, 0.0)  # the first steps of the schedule: the full lr
    model.train()
    parts = {"backbone": model.backbone, "align": model.align, "hl": model.hl,
             "lh": model.lh, "classifiers": model.classifiers}
    rows, batches = [], iter(trainer.data.train)
    for step in range(steps):
        images, targets = next(batches)[:2]
        out = model(trainer.normalizer(images))
        loss = model.losses(out, targets)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        e = out.extras
        row = {"step": step, "loss": float(loss),
               "aligned_abs": level_means(e["aligned"]), "hl_abs": level_means(e["hl"]),
               "lh_abs": level_means(e["lh"]),
               "grad_norm": {k: grad_norm(m) for k, m in parts.items()},
               "distinct_predictions": len(set(out.logits.argmax(1).tolist()))}
        if "spatial_masks" in e:
            row["spatial_mask_mean"] = level_means(e["spatial_masks"], absolute=False)
            row["channel_mask_mean"] = level_means(e["channel_masks"], absolute=False)
        rows.append(row)
        print(lr, options, json.dumps({k: row[k] for k in ("step", "loss")}), flush=True)
        optimizer.step()
    trainer.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="optimiser steps per run")
    parser.add_argument("--data-root", default="../shared/data/cub100-227px")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    torch.set_num_threads(2)
    record = {"provenance": provenance(torch.device("cpu")), "steps": args.steps, "runs": []}
    for lr, options in RUNS:
        record["runs"].append({"lr": lr, "backbone_lr_mult": 0.1, "options": options,
                               "per_step": first_steps(args.data_root, lr, options, args.steps)})
    args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
