"""Why the Cross-X rows clip their gradients: the global gradient L2 norm of the first training
steps under the real-data recipe, for the baseline and for Cross-X (default data term), with no
clipping in effect.

Each model trains for one short epoch (``--steps`` batches of the CUB subset, the recipe of
``../recipe.sh``) in a throw-away folder; every optimiser step's norm (what
``torch.nn.utils.clip_grad_norm_`` measures before it would clip) is written to ``OUT``
(default ``results/cpu/cross_x-cub100-lr-diagnostics/grad_norms.json``). Run from the repository root:

    python results/cpu/cross_x-cub100-lr-diagnostics/grad_norms.py --steps 30
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path

import torch

from fgvc_lib.cli import main as fgvc
from fgvc_lib.results import git_info

SELECTED = ["--lr", "0.1", "--backbone-lr-mult", "0.1", "--bn-policy", "frozen"]
MODELS = {"baseline": ["--method", "baseline"],
          "cross_x": ["--method", "cross_x", "--opt", "data_loss=per_branch"]}


def first_step_norms(method_args: list[str], steps: int, data_root: str, seed: int) -> list[float]:
    norms: list[float] = []
    clip = torch.nn.utils.clip_grad_norm_

    def measuring_clip(params, max_norm, *args, **kwargs):
        total = clip(params, max_norm, *args, **kwargs)  # max_norm is huge: measures only
        norms.append(float(total))
        return total

    torch.nn.utils.clip_grad_norm_ = measuring_clip
    try:
        with tempfile.TemporaryDirectory() as out:
            fgvc(["train", "--dataset", "cub_list", "--data-root", data_root, "--profile",
                  "transfer", "--workers", "1", "--device", "cpu", "--quiet", "--epochs", "1",
                  "--seed", str(seed), "--max-train-samples", str(32 * steps),
                  "--max-test-samples", "32", "--grad-clip-norm", "1e30", *SELECTED,
                  *method_args, "--out", str(Path(out) / "run")])
    finally:
        torch.nn.utils.clip_grad_norm_ = clip
    return norms


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30, help="optimiser steps per model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=os.environ.get("CUB", "../shared/data/cub100-227px"))
    p.add_argument("--out", default="results/cpu/cross_x-cub100-lr-diagnostics/grad_norms.json")
    args = p.parse_args()
    os.environ.setdefault("FGVC_CPU_CHANNELS_LAST", "1")  # as recipe.sh trains
    record = {"what": "global gradient L2 norm per optimiser step, no clipping in effect",
              "recipe": SELECTED, "seed": args.seed, "steps": args.steps,
              "provenance": git_info(), "norms": {}}
    for name, method_args in MODELS.items():
        norms = first_step_norms(method_args, args.steps, str(Path(args.data_root).resolve()),
                                 args.seed)
        finite = [n for n in norms if math.isfinite(n)]
        record["norms"][name] = {"per_step": norms, "max_finite": max(finite, default=None),
                                 "first_non_finite_step": next(
                                     (i + 1 for i, n in enumerate(norms) if not math.isfinite(n)),
                                     None)}
        print(f"{name}: max finite norm {record['norms'][name]['max_finite']}, first non-finite "
              f"step {record['norms'][name]['first_non_finite_step']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
