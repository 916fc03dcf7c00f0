#!/usr/bin/env python
"""Input-pipeline throughput on real JPEGs: images/s of the training loader alone,
per image size and worker count, beside a training step's images/s.

If the loader delivers fewer images per second than the GPU trains on, the GPU
waits for data, and no speed-up of the model shows in a run. This script measures
the loader alone (JPEG decode, resize, random crop, flip, collate; no model), the
way the trainer builds it, so a user can pick ``--workers`` for their machine.

Examples::

    # the CUB subset, 224 and 448 px, 1-8 workers, against a recorded training step
    python benchmarks/bench_loader.py --dataset cub_list --data-root ../shared/data/cub100-227px \\
        --image-sizes 224 448 --workers 1 2 4 8 --against results/gpu/bench/cmal_r50_b16.json
    # the official CUB layout
    python benchmarks/bench_loader.py --dataset cub --data-root ~/data/CUB_200_2011 --workers 8

Implementation notes
--------------------
* Timing: ``--warmup`` batches untimed (workers start, the page cache fills),
  then ``--batches`` batches; images/s = images / seconds. ``decode_img_s`` is
  the JPEG decode alone in the main process (PIL open + RGB), the floor of the
  per-image cost.
* ``--against`` reads ``train_img_s`` from a ``bench_model.py --json`` record (or
  takes ``--train-img-s``) and reports, per setting, whether the loader keeps up
  (``keeps_up``: loader images/s >= training images/s).
* The loader is the trainer's: shuffled, ``drop_last``, pinned memory when CUDA
  is present, persistent workers, prefetch factor 4.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="cub_list", help="dataset name (see `fgvc datasets`)")
    p.add_argument("--data-root", required=True, help="folder holding the dataset's images")
    p.add_argument("--image-sizes", type=int, nargs="+", default=[224, 448],
                   help="training crop sizes to measure")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4],
                   help="DataLoader worker counts to measure")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=20, help="timed batches per setting")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches per setting")
    p.add_argument("--against", help="a bench_model.py --json record: its train_img_s")
    p.add_argument("--train-img-s", type=float, help="training images/s to compare with")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    for name in ("batch_size", "batches"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if any(w < 0 for w in args.workers):
        p.error("--workers must be >= 0")
    if any(s < 16 for s in args.image_sizes):
        p.error("--image-sizes must be >= 16")
    return args


def _import_library() -> None:
    try:
        import fgvc_lib  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO))


def decode_rate(paths: list[Path], limit: int = 64) -> float:
    """Images/s of PIL decode + RGB conversion alone, main process."""
    from PIL import Image

    sample = paths[:limit]
    start = time.perf_counter()
    for path in sample:
        with Image.open(path) as image:
            image.convert("RGB").load()
    return len(sample) / (time.perf_counter() - start)


def loader_rate(dataset, batch_size: int, workers: int, batches: int, warmup: int) -> float:
    """Images/s of ``batches`` batches from a trainer-style DataLoader after ``warmup``."""
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                        num_workers=workers, pin_memory=torch.cuda.is_available(),
                        persistent_workers=workers > 0,
                        prefetch_factor=4 if workers > 0 else None,
                        generator=torch.Generator().manual_seed(0))

    def stream():
        while True:
            yield from loader

    batches_iter = stream()
    for _ in range(warmup):
        next(batches_iter)
    start = time.perf_counter()
    for _ in range(batches):
        next(batches_iter)
    seconds = time.perf_counter() - start
    batches_iter.close()
    return batches * batch_size / seconds


def training_rate(args: argparse.Namespace) -> float | None:
    if args.train_img_s is not None:
        return args.train_img_s
    if args.against:
        record = json.loads(Path(args.against).read_text())
        return float(record["measures"]["train_img_s"])
    return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    _import_library()
    from fgvc_lib.data import build_dataset
    from fgvc_lib.data.transforms import train_transform

    probe = build_dataset(args.dataset, args.data_root, "train")
    paths = [Path(path) for path, _ in probe.samples[:64]]
    train_img_s = training_rate(args)
    rows = []
    for size in args.image_sizes:
        dataset = build_dataset(args.dataset, args.data_root, "train",
                                transform=train_transform(size))
        for workers in args.workers:
            img_s = loader_rate(dataset, args.batch_size, workers, args.batches, args.warmup)
            row = {"image_size": size, "workers": workers, "loader_img_s": img_s}
            if train_img_s is not None:
                row["train_img_s"] = train_img_s
                row["keeps_up"] = img_s >= train_img_s
            rows.append(row)
            print(f"[loader] {size} px, {workers} workers: {img_s:8.1f} img/s"
                  + (f"  (training {train_img_s:.1f} img/s: "
                     f"{'keeps up' if row['keeps_up'] else 'the GPU waits'})"
                     if train_img_s is not None else ""), flush=True)
    return {"rows": rows, "decode_img_s": decode_rate(paths) if paths else None,
            "config": vars(args),
            "provenance": {"command": shlex.join([sys.executable, *sys.argv]),
                           "cpu": platform.processor() or platform.machine(),
                           "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    _import_library()
    from fgvc_lib.errors import FGVCError

    try:
        results = run(args)
    except FGVCError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if results["decode_img_s"] is not None:
        print(f"[loader] JPEG decode alone (1 process): {results['decode_img_s']:.1f} img/s")
    if args.json:
        from fgvc_lib.io import write_json_atomic

        write_json_atomic(args.json, results)
    return results


if __name__ == "__main__":
    main()
