"""Where a model's parameters and multiply-accumulates go, per component.

:func:`cost_breakdown` works on any ``nn.Module`` (every registered method:
``backbone``, CMAL-Net's ``experts`` and ``classifiers``, Cross-X's OSME
blocks and ``merge``, ...), so the chapters and the comparison read the same
table.

Implementation notes
--------------------
* MACs come from :class:`torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2)
  on one evaluation forward at batch 1 on the model's device, attributed to the
  leaf module that ran each operation; operations outside any leaf module
  (pooling arithmetic, a loss's small matmul, a crop-and-resize) are summed
  under "other". The model is put back in the mode it was in.
* A component is a top-level child of the model (``model.named_children()``);
  the children named in ``split`` are broken down into their own children.
* :func:`training_step_flops` counts one whole training step instead: the
  method's own ``training_step`` (every optimiser step it takes on the batch,
  CMAL-Net's N + 2 included), forward and backward. The counter sees matrix
  products and convolutions (the operations that dominate a CNN); the
  optimiser's element-wise updates and the element-wise layers count 0, as in
  every published FLOP figure of these papers.
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager

import torch
import torch.nn as nn


def cost_breakdown(model: nn.Module, image_size: int, split: Sequence[str] = ()):
    """Parameters (M) and multiply-accumulates (G, one image at ``image_size``) per
    top-level child of ``model``, the children named in ``split`` broken down into
    their own children (e.g. Cross-X's ``merge``: ``merge.reduce`` = ``K_1``,
    ``merge.antialias`` = ``K_2``, ``merge.bn``), a "total" row and each
    component's share of the MACs in %."""
    import pandas as pd
    from torch.utils.flop_counter import FlopCounterMode

    root = type(model).__name__
    groups: list[str] = []
    for name, child in model.named_children():
        subs = [f"{name}.{sub}" for sub, _ in child.named_children()] if name in split else []
        groups += subs or [name]
    leaves = {name for name, m in model.named_modules() if name and not list(m.children())}

    def group_of(name: str) -> str:
        best = ""
        for g in groups:
            if (name == g or name.startswith(g + ".")) and len(g) > len(best):
                best = g
        return best or "other"

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    total_macs = sum(counts.get("Global", {}).values()) / 2
    macs: dict[str, float] = {}
    for key, ops in counts.items():
        name = key[len(root) + 1:] if key.startswith(root + ".") else None
        if name in leaves:
            g = group_of(name)
            macs[g] = macs.get(g, 0.0) + sum(ops.values()) / 2
    macs["other"] = total_macs - sum(macs.values())
    params: dict[str, float] = {}
    for name, p in model.named_parameters():
        g = group_of(name.rsplit(".", 1)[0])
        params[g] = params.get(g, 0.0) + p.numel()
    order = [g for g in [*groups, "other"] if params.get(g) or macs.get(g)]
    table = pd.DataFrame({
        "params (M)": [params.get(g, 0.0) / 1e6 for g in order],
        f"GMACs @ {image_size}px": [macs.get(g, 0.0) / 1e9 for g in order],
    }, index=order)
    table.loc["total"] = [sum(params.values()) / 1e6, total_macs / 1e9]
    table["MAC share (%)"] = 100 * table[f"GMACs @ {image_size}px"] / (total_macs / 1e9 or 1.0)
    return table.rename_axis("component")


@dataclass(frozen=True)
class StepFlops:
    """FLOPs of one training step (forward + backward of every optimiser step)."""

    total: float            # FLOPs of the step on the whole batch
    batch_size: int
    optimizer_steps: int    # optimiser steps the method took on the batch

    @property
    def per_image(self) -> float:
        return self.total / self.batch_size


def training_step_flops(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                        autocast: Callable[[], ContextManager] = contextlib.nullcontext,
                        lr: float = 0.01) -> StepFlops:
    """Count the FLOPs of ``model.training_step`` on one batch (see the notes above).

    The step runs on a copy of ``model`` (its weights and BatchNorm statistics stay
    as they are), uncompiled, with SGD (momentum 0.9) over the model's
    ``param_groups`` and a fixed generator, as the trainer would run it.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from fgvc_lib.models.step import StepContext

    work = copy.deepcopy(model).train()
    groups = work.param_groups(lr) if hasattr(work, "param_groups") else work.parameters()
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.9)
    ctx = StepContext(forward=work, optimizer=optimizer,
                      generator=torch.Generator(device=images.device).manual_seed(0),
                      autocast=autocast, params=[p for p in work.parameters() if p.requires_grad])
    with FlopCounterMode(display=False) as counter:
        work.training_step(ctx, images, targets)
    return StepFlops(total=float(counter.get_total_flops()), batch_size=int(images.shape[0]),
                     optimizer_steps=ctx.optimizer_steps)


#: Columns of :func:`training_flops_table`: a flop-count record's ``measures`` key -> header.
TRAINING_FLOPS_COLUMNS = {
    "params_m": "params (M)", "macs_g": "eval GMACs",
    "optimizer_steps_per_batch": "optimiser steps per batch",
    "train_gflops_per_img": "training GFLOPs per image",
    "flops_vs_reference": "x plain ResNet-50 step",
}


def training_flops_table(folder: str | Path):
    """The training-step FLOP counts recorded under ``folder`` (the JSON files of
    ``benchmarks/bench_model.py --mode flops --reference --json``, e.g.
    ``results/cpu/flops/``), one row per record: parameters, one evaluation forward's
    MACs, optimiser steps per batch, FLOPs of one whole training step per image and
    their ratio to a plain ResNet-50 step counted in the same run.

    A row is named by its method's title, followed by the options it was counted with
    (``--option``), so that a variant such as CMAL-Net's ``truncated_steps=false`` is a row
    of its own. ``table.attrs["caption"]`` names the setting the records share. A folder
    with no record gives an empty table; a record without these counts is refused with
    the command that writes them, and two records of the same row are refused by name.
    """
    import json

    import pandas as pd

    from fgvc_lib.errors import FGVCError
    from fgvc_lib.methods import get_spec
    from fgvc_lib.reports.speed import bench_device

    rows: dict[str, dict[str, float]] = {}
    sources: dict[str, Path] = {}
    settings: set[str] = set()
    devices: set[str] = set()
    for path in sorted(Path(folder).glob("*.json")):
        try:
            record = json.loads(path.read_text())
            measures, config = record["measures"], record["config"]
            row = {header: float(measures[key]) for key, header in TRAINING_FLOPS_COLUMNS.items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FGVCError(f"{path} is not a training-FLOP record ({type(exc).__name__}: {exc})",
                            "write it with benchmarks/bench_model.py --mode flops --reference "
                            "--json FILE") from None
        options = ", ".join(config.get("option") or [])
        name = get_spec(config["method"]).title + (f" ({options})" if options else "")
        if name in rows:  # one row per method and options; a second count would replace the first
            raise FGVCError(f"{sources[name]} and {path} both count {name!r}",
                            "delete the stale one, or count the second with different --option")
        rows[name], sources[name] = row, path
        settings.add(f"{config['backbone']}, {config['image_size']} px, "
                     f"{config['num_classes']} classes")
        devices.add(bench_device(record))
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(TRAINING_FLOPS_COLUMNS.values()))
    table = table.sort_values("x plain ResNet-50 step").rename_axis("method")
    table.attrs["caption"] = (
        f"FLOPs of one whole training step per image (forward and backward of every optimiser "
        f"step the method takes on a batch), counted by torch.utils.flop_counter on "
        f"{', '.join(sorted(devices)) or 'no device'}; {'; '.join(sorted(settings)) or 'no record'}; "
        f"'x plain ResNet-50 step': against a plain ResNet-50 step counted in the same run")
    return table


__all__ = ["StepFlops", "TRAINING_FLOPS_COLUMNS", "cost_breakdown", "training_flops_table",
           "training_step_flops"]
