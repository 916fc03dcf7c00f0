#!/usr/bin/env python
"""Cost and speed of one registered model: parameters, MACs, training and
inference throughput, peak GPU memory; optionally beside a plain ResNet-50
training step timed in the same run, and through a real DataLoader.

A training step is the model's own ``training_step`` with a
:class:`fgvc_lib.models.step.StepContext` and SGD, exactly as the trainer
runs it: CMAL-Net's N+2 optimiser steps on one batch count as one batch.
Speed is measured here, never in timed tests. See ``benchmarks/README.md``.

Examples::

    python benchmarks/bench_model.py --method cmal --image-size 448 --batch-size 16 \\
        --channels-last --compile --reference --json results/bench/cmal.json
    python benchmarks/bench_model.py --method baseline --backbone resnet18 \\
        --image-size 64 --batch-size 2 --steps 2 --device cpu      # tiny CPU check

Implementation notes
--------------------
* Timing: ``--warmup`` untimed steps (this is where ``torch.compile``
  compiles), then ``--repeats`` windows of ``--steps`` steps, each closed by
  ``torch.cuda.synchronize()``; the median window gives the rate.
* MACs = FLOPs / 2 counted by ``torch.utils.flop_counter.FlopCounterMode``
  on one eval-mode float32 forward at batch 1 (ops it does not know, such
  as ``roi_align``, count 0). A model whose evaluation runs the backbone
  more than once (CMAL-Net: raw image, then the ``A_oval`` crop) also gets
  the raw-only forward counted, when it offers one (``test_on_oval``).
* Backbone passes: hooks on ``model.backbone`` count its calls in one
  (uncompiled) training step, split into passes with gradients (forward +
  backward) and without. ``train_pass_img_s`` = training images/s x
  passes with gradients: the throughput per backbone pass compared with a
  plain ResNet-50 step (one pass) by ``--reference``.
* Synthetic tensors are used unless ``--loader``: then batches come from a
  ``DataLoader`` over :class:`fgvc_lib.data.synthetic.SyntheticFGVC` with the
  training transform, pinned memory, ``--num-workers`` workers and
  ``non_blocking`` copies, normalised on the device as the trainer does.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parents[1]

#: (key, unit, description) of every measure, in table order.
MEASURES: list[tuple[str, str, str]] = [
    ("params_m", "M", "parameters"),
    ("macs_g", "GMAC", "MACs of one eval forward, batch 1"),
    ("macs_g_raw", "GMAC", "MACs of the raw-only eval forward, batch 1"),
    ("eval_backbone_passes", "", "backbone passes in one eval forward"),
    ("train_backbone_passes", "", "backbone passes with gradients in one training step"),
    ("train_backbone_passes_nograd", "", "backbone passes without gradients in one training step"),
    ("optimizer_steps_per_batch", "", "optimiser steps in one training step"),
    ("train_img_s", "img/s", "training throughput (synthetic tensors on the device)"),
    ("train_ms_per_batch", "ms", "time of one training step"),
    ("train_pass_img_s", "img/s", "training img/s x backbone passes with gradients"),
    ("train_gflops_per_img", "GFLOP", "FLOPs of one whole training step per image (fwd + bwd)"),
    ("train_tflops", "TFLOP/s", "achieved: train_gflops_per_img x train_img_s"),
    ("train_window_min_s", "s", "fastest timing window"),
    ("train_window_median_s", "s", "median timing window (gives the rates)"),
    ("train_graphs_after_warmup", "", "graphs torch.compile built during the warm-up"),
    ("train_recompiles_timed", "", "graphs compiled inside the timed windows (should be 0)"),
    ("train_sync_free", "", "CUDA: one step ran under set_sync_debug_mode('error')"),
    ("train_peak_mem_gb", "GB", "peak GPU memory while training"),
    ("infer_bs1_img_s", "img/s", "inference throughput at batch 1"),
    ("infer_bs1_ms", "ms/img", "inference latency at batch 1"),
    ("infer_img_s", "img/s", "inference throughput at --batch-size"),
    ("infer_ms_per_img", "ms/img", "inference time per image at --batch-size"),
    ("infer_raw_img_s", "img/s", "raw-only inference throughput at --batch-size"),
    ("infer_peak_mem_gb", "GB", "peak GPU memory during inference"),
    ("loader_train_img_s", "img/s", "training throughput through the DataLoader"),
    ("loader_only_img_s", "img/s", "DataLoader alone: batches copied to the device"),
    ("reference_train_img_s", "img/s", "plain baseline ResNet-50 training, same run and settings"),
    ("reference_pass_ratio", "x", "train_pass_img_s / reference_train_img_s"),
    ("reference_tflops", "TFLOP/s", "achieved by the plain ResNet-50 step, same run"),
    ("reference_recompiles_timed", "", "the reference's graphs compiled inside its windows"),
    ("tflops_ratio", "x", "train_tflops / reference_tflops (target >= 0.9)"),
    ("reference_gflops_per_img", "GFLOP", "--mode flops: the plain ResNet-50 step's FLOPs per image"),
    ("flops_vs_reference", "x", "--mode flops: work of the method's step / the plain step's"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench_model.py",
        description="Parameters, MACs, training / inference throughput and peak GPU memory "
                    "of a registered fgvc_lib model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--method", default="baseline", help="registered model name (fgvc_lib.available_models())")
    p.add_argument("--backbone", default=None, help="backbone name; default: the method's default")
    p.add_argument("--num-classes", type=int, default=200, help="classifier size K")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="method option passed to build_model (JSON value), repeatable")
    p.add_argument("--image-size", type=int, default=448)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=20, help="timed steps per window")
    p.add_argument("--repeats", type=int, default=3, help="timed windows; the median counts")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation happens here)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cuda, cuda:1, cpu")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: on for CUDA, off for CPU)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=False,
                   help="channels_last memory format for model and inputs")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                   help="torch.compile the forward (as the trainer does)")
    p.add_argument("--mode", choices=("train", "infer", "both", "flops"), default="both",
                   help="flops: count parameters, MACs and a training step's FLOPs only "
                        "(no timing; what a CPU can record)")
    p.add_argument("--reference", action="store_true",
                   help="also time a plain baseline ResNet-50 training step with the same settings")
    p.add_argument("--reference-compile", action=argparse.BooleanOptionalAction, default=None,
                   help="compile the reference (default: same as --compile)")
    p.add_argument("--loader", action="store_true",
                   help="also time training through a DataLoader over the synthetic dataset")
    p.add_argument("--num-workers", type=int, default=8, help="DataLoader workers for --loader")
    p.add_argument("--data-root", default=None,
                   help="cache folder for the synthetic images (--loader); default: a temporary one")
    p.add_argument("--lr", type=float, default=1e-3, help="SGD learning rate of the timed steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="PATH", help="write all numbers and provenance here")
    args = p.parse_args(argv)
    for name in ("image_size", "batch_size", "steps", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0 or args.num_workers < 0:
        p.error("--warmup and --num-workers must be >= 0")
    return args


# -- helpers -----------------------------------------------------------------------------
def _import_library() -> None:
    """Make ``fgvc_lib`` importable from a plain checkout (no ``pip install``)."""
    try:
        import fgvc_lib  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO))


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _options(pairs: list[str]) -> dict[str, Any]:
    from fgvc_lib.io import parse_key_value

    return dict(parse_key_value(pair) for pair in pairs)


def timed_windows(step: Callable[[], Any], warmup: int, steps: int, repeats: int,
                  sync: Callable[[], None],
                  on_warm: Callable[[], None] | None = None) -> list[float]:
    """Seconds of each of ``repeats`` windows of ``steps`` calls, after ``warmup`` calls
    (``on_warm`` runs between the warm-up and the first window)."""
    for _ in range(warmup):
        step()
    sync()
    if on_warm is not None:
        on_warm()
    windows = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        windows.append(time.perf_counter() - start)
    return windows


def rate(windows: list[float], steps: int, images_per_step: int) -> tuple[float, float]:
    """(images per second, milliseconds per step) from the median window."""
    per_step = statistics.median(windows) / steps
    return images_per_step / per_step, 1000.0 * per_step


@contextlib.contextmanager
def count_backbone_passes(model) -> Iterator[dict[str, int]]:
    """Count backbone passes with and without gradients.

    The hook sits on the backbone's first returned stage, which every pass
    runs once, even in a model that walks the backbone's stages itself
    (Cross-X) instead of calling ``model.backbone``.
    """
    counts = {"grad": 0, "nograd": 0}
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        yield counts
        return
    import torch

    def hook(module, inputs, output):
        counts["grad" if torch.is_grad_enabled() else "nograd"] += 1

    tap = backbone.stage_module(0) if hasattr(backbone, "stage_module") else backbone
    handle = tap.register_forward_hook(hook)
    try:
        yield counts
    finally:
        handle.remove()


@contextlib.contextmanager
def raw_only(model) -> Iterator[bool]:
    """Switch a multi-pass evaluation (CMAL-Net's raw + A_oval) to the raw pass;
    yields whether the model offers that switch."""
    if getattr(model, "test_on_oval", False):
        model.test_on_oval = False
        try:
            yield True
        finally:
            model.test_on_oval = True
    else:
        yield False


def compiled_graphs() -> int:
    """Graphs ``torch.compile`` has compiled so far in this process (0 without it)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def training_step_flops(model, images, targets, autocast):
    from fgvc_lib.reports.cost import training_step_flops as count

    return count(model, images, targets, autocast=autocast)


def count_macs(model, images) -> float:
    """GMACs of one forward of ``images`` (FLOPs / 2)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images)
    return counter.get_total_flops() / 2 / 1e9


def provenance(device, argv: list[str] | None) -> dict[str, Any]:
    import torch

    from fgvc_lib.results import provenance as library_provenance

    command = argv if argv is not None else sys.argv[1:]
    info = library_provenance(device)
    info.update(command=" ".join(["python benchmarks/bench_model.py", *map(shlex.quote, command)]),
                date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                torch=torch.__version__, device_name=info["device"].get("name"),
                commit=info["git"].get("commit"))
    return info


# -- the measurements -------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        self.args = args
        if args.device == "auto":
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            self.device = torch.device(args.device)
        self.cuda = self.device.type == "cuda"
        self.amp = self.cuda if args.amp is None else args.amp
        self.memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
        if self.cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.results: dict[str, Any] = {}

    # plumbing
    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)

    def autocast(self):
        import torch

        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def reset_memory(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory_gb(self) -> float | None:
        if not self.cuda:
            return None
        import torch

        return torch.cuda.max_memory_allocated(self.device) / 1e9

    def batch(self, size: int):
        import torch

        g = torch.Generator().manual_seed(self.args.seed)
        images = torch.randn(size, 3, self.args.image_size, self.args.image_size, generator=g)
        targets = torch.randint(0, self.args.num_classes, (size,), generator=g)
        images = images.to(self.device).contiguous(memory_format=self.memory_format)
        return images, targets.to(self.device)

    def build(self, method: str, backbone: str | None, options: dict[str, Any]):
        import torch

        from fgvc_lib import build_model

        torch.manual_seed(self.args.seed)
        model = build_model(method, num_classes=self.args.num_classes, backbone=backbone, **options)
        return model.to(self.device, memory_format=self.memory_format)

    def context(self, model, forward):
        import torch

        from fgvc_lib.models.step import StepContext

        optimizer = torch.optim.SGD(model.param_groups(self.args.lr, weight_decay=5e-4),
                                    lr=self.args.lr, momentum=0.9)
        generator = torch.Generator(device=self.device).manual_seed(self.args.seed)
        return StepContext(forward=forward, optimizer=optimizer, generator=generator,
                           autocast=self.autocast,
                           params=[p for p in model.parameters() if p.requires_grad])

    def forward_of(self, model, compile_it: bool):
        import torch

        return torch.compile(model) if compile_it else model

    # measures
    def measure_cost(self, model) -> None:
        import torch

        r = self.results
        r["params_m"] = sum(p.numel() for p in model.parameters()) / 1e6
        model.eval()
        one, _ = self.batch(1)
        with count_backbone_passes(model) as passes:
            r["macs_g"] = count_macs(model, one)
        r["eval_backbone_passes"] = passes["grad"] + passes["nograd"] if hasattr(model, "backbone") else None
        with raw_only(model) as offered:
            if offered:
                r["macs_g_raw"] = count_macs(model, one)
        model.train()
        del one
        if self.cuda:
            torch.cuda.empty_cache()

    def measure_train(self, model, forward, prefix: str = "train") -> None:
        import torch

        a, r = self.args, self.results
        images, targets = self.batch(a.batch_size)
        model.train()
        ctx = self.context(model, forward)
        warmup = a.warmup
        self.reset_memory()
        # The FLOPs of one whole step (every optimiser step, forward and backward),
        # counted on an uncompiled copy: the work a step does, whatever its speed.
        flops = training_step_flops(model, images, targets, autocast=self.autocast)
        r[f"{prefix}_gflops_per_img"] = flops.per_image / 1e9
        if prefix == "train":
            # One uncompiled step counts the passes (a compiled graph runs no Python
            # hooks); without compilation it is also the first warm-up step.
            probe = ctx if forward is model else self.context(model, model)
            with count_backbone_passes(model) as passes:
                model.training_step(probe, images, targets)
            if hasattr(model, "backbone"):
                r["train_backbone_passes"] = passes["grad"]
                r["train_backbone_passes_nograd"] = passes["nograd"]
            r["optimizer_steps_per_batch"] = probe.optimizer_steps
            if probe is ctx:
                warmup = max(warmup - 1, 0)
            del probe
        if self.cuda and prefix == "train":
            # A step that copies to the host makes the CPU wait for the GPU; the debug
            # mode turns the first such copy into an error that names it.
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
            try:
                model.training_step(ctx, images, targets)
                r["train_sync_free"] = True
            except RuntimeError as exc:
                r["train_sync_free"] = False
                r["train_sync_error"] = str(exc).splitlines()[0]
            finally:
                torch.cuda.set_sync_debug_mode("default")
        graphs = compiled_graphs()
        windows = timed_windows(lambda: model.training_step(ctx, images, targets),
                                warmup, a.steps, a.repeats, self.sync,
                                on_warm=lambda: r.__setitem__(f"{prefix}_graphs_after_warmup",
                                                              compiled_graphs() - graphs))
        # Graphs compiled inside the timed windows are recompilations: they spoil the timing.
        r[f"{prefix}_recompiles_timed"] = compiled_graphs() - graphs - r[f"{prefix}_graphs_after_warmup"]
        r[f"{prefix}_window_min_s"], r[f"{prefix}_window_median_s"] = min(windows), statistics.median(windows)
        img_s, ms = rate(windows, a.steps, a.batch_size)
        r[f"{prefix}_tflops"] = flops.per_image * img_s / 1e12
        if prefix == "train":
            r["train_img_s"], r["train_ms_per_batch"] = img_s, ms
            r["train_windows_s"] = windows
            passes_with_grad = r.get("train_backbone_passes") or 1
            r["train_pass_img_s"] = img_s * passes_with_grad
            r["train_peak_mem_gb"] = self.peak_memory_gb()
        else:
            r[f"{prefix}_train_img_s"] = img_s
            r[f"{prefix}_train_windows_s"] = windows
            r[f"{prefix}_train_peak_mem_gb"] = self.peak_memory_gb()

    def measure_infer(self, model, forward) -> None:
        import torch

        a, r = self.args, self.results
        model.eval()
        self.reset_memory()

        def runner(images):
            def run():
                with torch.no_grad(), self.autocast():
                    return forward(images).logits
            return run

        one, _ = self.batch(1)
        windows = timed_windows(runner(one), a.warmup, a.steps, a.repeats, self.sync)
        r["infer_bs1_img_s"], r["infer_bs1_ms"] = rate(windows, a.steps, 1)
        images, _ = self.batch(a.batch_size)
        windows = timed_windows(runner(images), a.warmup, a.steps, a.repeats, self.sync)
        img_s, ms = rate(windows, a.steps, a.batch_size)
        r["infer_img_s"], r["infer_ms_per_img"] = img_s, ms / a.batch_size
        r["infer_peak_mem_gb"] = self.peak_memory_gb()
        with raw_only(model) as offered:
            if offered:
                windows = timed_windows(runner(images), a.warmup, a.steps, a.repeats, self.sync)
                r["infer_raw_img_s"], _ = rate(windows, a.steps, a.batch_size)
        model.train()

    def measure_loader(self, model, forward) -> None:
        import torch
        from torch.utils.data import DataLoader

        from fgvc_lib.errors import FGVCError

        try:
            from fgvc_lib.data import synthetic
        except ImportError as exc:
            raise FGVCError("--loader needs fgvc_lib.data.synthetic, which is not importable",
                            "update the checkout, or run without --loader") from exc
        from fgvc_lib.data.transforms import DeviceNormalize, train_transform
        from fgvc_lib.models.backbones import input_normalization

        a, r = self.args, self.results
        classes = max(2, min(a.num_classes, getattr(synthetic, "MAX_CLASSES", 10), 10))
        per_class = max(1, math.ceil(4 * a.batch_size / classes))  # >= 4 batches per epoch
        with contextlib.ExitStack() as stack:
            root = a.data_root or stack.enter_context(tempfile.TemporaryDirectory(prefix="fgvc-bench-"))
            _log(f"loader: synthetic set, {classes} classes x {per_class} images at {a.image_size} px")
            dataset = synthetic.SyntheticFGVC(root, "train", train_transform(a.image_size),
                                              num_classes=classes, per_class=per_class,
                                              image_size=max(a.image_size, 32), seed=a.seed)
            workers = a.num_workers
            loader = DataLoader(dataset, batch_size=a.batch_size, shuffle=True, drop_last=True,
                                num_workers=workers, pin_memory=self.cuda,
                                persistent_workers=workers > 0,
                                prefetch_factor=4 if workers > 0 else None,
                                generator=torch.Generator().manual_seed(a.seed))
            normalizer = DeviceNormalize(*input_normalization(model),
                                         channels_last=a.channels_last).to(self.device)

            def batches():
                while True:
                    yield from loader

            stream = batches()

            def next_batch():
                images, targets = next(stream)
                return (normalizer(images.to(self.device, non_blocking=True)),
                        targets.to(self.device, non_blocking=True))

            model.train()
            ctx = self.context(model, forward)
            windows = timed_windows(lambda: model.training_step(ctx, *next_batch()),
                                    a.warmup, a.steps, a.repeats, self.sync)
            r["loader_train_img_s"], _ = rate(windows, a.steps, a.batch_size)
            windows = timed_windows(next_batch, a.warmup, a.steps, a.repeats, self.sync)
            r["loader_only_img_s"], _ = rate(windows, a.steps, a.batch_size)
            r["loader_num_workers"] = workers
            stream.close()
            del loader, stream

    def run(self) -> dict[str, Any]:
        import torch

        a, r = self.args, self.results
        _log(f"{a.method} on {self.device}: image {a.image_size}, batch {a.batch_size}, "
             f"amp={self.amp}, channels_last={a.channels_last}, compile={a.compile}")
        model = self.build(a.method, a.backbone, _options(a.option))
        r["backbone"] = model.fgvc_spec["backbone"]
        self.measure_cost(model)
        if a.mode == "flops":
            images, targets = self.batch(a.batch_size)
            flops = training_step_flops(model, images, targets, autocast=self.autocast)
            r["train_gflops_per_img"] = flops.per_image / 1e9
            r["optimizer_steps_per_batch"] = flops.optimizer_steps
            if a.reference:
                reference = self.build("baseline", "resnet50", {})
                ref = training_step_flops(reference, images, targets, autocast=self.autocast)
                r["reference_gflops_per_img"] = ref.per_image / 1e9
                r["flops_vs_reference"] = flops.per_image / ref.per_image
            return r
        forward = self.forward_of(model, a.compile)
        if a.mode in ("train", "both"):
            _log("timing training steps")
            self.measure_train(model, forward)
        if a.mode in ("infer", "both"):
            _log("timing inference")
            self.measure_infer(model, forward)
        if a.loader:
            _log("timing training through the DataLoader")
            self.measure_loader(model, forward)
        del model, forward
        if self.cuda:
            torch.cuda.empty_cache()
        if a.reference:
            _log("timing the reference: plain baseline ResNet-50 training step")
            ref_compile = a.compile if a.reference_compile is None else a.reference_compile
            reference = self.build("baseline", "resnet50", {})
            self.measure_train(reference, self.forward_of(reference, ref_compile), prefix="reference")
            r["reference_compiled"] = ref_compile
            if "train_pass_img_s" in r:
                r["reference_pass_ratio"] = r["train_pass_img_s"] / r["reference_train_img_s"]
            if "train_tflops" in r:
                # Work done per second against the plain network's: 1.0 means the
                # method's step keeps the GPU as busy as a ResNet-50 step does.
                r["tflops_ratio"] = r["train_tflops"] / r["reference_tflops"]
        return r


def format_table(results: dict[str, Any]) -> str:
    """One line per measure: name, value, unit, description."""
    lines = [f"{'measure':<30} {'value':>12}  {'unit':<7} description"]
    for key, unit, description in MEASURES:
        value = results.get(key)
        if value is None:
            continue
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<30} {text:>12}  {unit:<7} {description}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    _import_library()
    from fgvc_lib.errors import FGVCError

    try:
        bench = Bench(args)
        results = bench.run()
    except FGVCError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    print(format_table(results))
    record = {
        "measures": {k: results[k] for k, _, _ in MEASURES if results.get(k) is not None},
        "units": {k: unit for k, unit, _ in MEASURES},
        "raw": results,
        "config": {**vars(args), "amp": bench.amp, "device": str(bench.device)},
        "provenance": provenance(bench.device, argv),
    }
    if args.json:
        from fgvc_lib.results import write_json_atomic

        write_json_atomic(args.json, record)
        _log(f"wrote {args.json}")
    return record


if __name__ == "__main__":
    main()
