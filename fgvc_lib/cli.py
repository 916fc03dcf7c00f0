"""The ``fgvc`` command line.

    fgvc train --method baseline --dataset synthetic --profile smoke --out runs/baseline
    fgvc train ... --resume            # continue an interrupted run
    fgvc eval --run runs/baseline      # re-evaluate a trained run
    fgvc models | datasets | profiles | backbones
    fgvc results results/              # table of recorded runs

Problems the user can fix (bad paths, unknown names, mismatched
checkpoints, unwritable folders) print one line and exit with code 2.
Multi-GPU: ``torchrun --nproc_per_node=G -m fgvc_lib.cli train ...``.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from fgvc_lib.errors import FGVCError

EXIT_USAGE = 2


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to train")
    g.add_argument("--method", default="baseline",
                   help="registered method (see `fgvc models`); default: baseline")
    g.add_argument("--dataset", default="synthetic",
                   help="dataset name (see `fgvc datasets`); default: synthetic (no download)")
    g.add_argument("--data-root", default=None,
                   help="folder holding the extracted official archive (real datasets)")
    g.add_argument("--profile", default=None,
                   help="scale: smoke (CPU, minutes), gpu (short GPU runs), full (paper settings); "
                        "default: $FGVC_PROFILE or smoke")
    g.add_argument("--backbone", default=None, help="backbone (see `fgvc backbones`)")
    g.add_argument("--pretrained", dest="pretrained", action="store_true", default=None,
                   help="start from ImageNet weights")
    g.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="random initialisation")
    g.add_argument("--weights", default=None, help="local backbone state-dict file")
    g.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="method option, repeatable (e.g. --opt t=0.5 --opt pooling=max); "
                        "`fgvc models` lists each method's options")
    h = p.add_argument_group("overrides of the profile")
    h.add_argument("--epochs", type=int)
    h.add_argument("--batch-size", type=int, help="global batch size (split across GPUs)")
    h.add_argument("--lr", type=float, help="base learning rate of the new layers")
    h.add_argument("--image-size", type=int, help="training/test crop size in pixels")
    h.add_argument("--resize-size", type=int,
                   help="resize the shorter side to this before cropping (default: image size "
                        "x 8/7; the synthetic data: the image size)")
    h.add_argument("--weight-decay", type=float, help="L2 weight decay (not on biases and norms)")
    h.add_argument("--warmup-epochs", type=int, help="linear learning-rate warm-up, in epochs")
    h.add_argument("--label-smoothing", type=float, help="label smoothing of the cross-entropy")
    h.add_argument("--grad-clip-norm", type=float,
                   help="clip the gradients' global L2 norm to this before each step (off by "
                        "default)")
    h.add_argument("--bn-policy", choices=["auto", "train", "source", "frozen"],
                   help="the backbone's BatchNorm statistics while training: updated as usual "
                        "(train), with the pretrained weights' own momentum (source), or kept "
                        "(frozen); auto: train from scratch, frozen for pretrained weights")
    h.add_argument("--backbone-lr-mult", type=float,
                   help="backbone learning rate = lr x this (e.g. 0.1 when fine-tuning)")
    h.add_argument("--workers", type=int, dest="num_workers", help="data loader workers")
    h.add_argument("--seed", type=int)
    h.add_argument("--max-train-samples", type=int, help="subsample the training set (0 = all)")
    h.add_argument("--max-test-samples", type=int, help="subsample the test set (0 = all)")
    h.add_argument("--compile", dest="compile", action="store_true", default=None,
                   help="torch.compile the model")
    h.add_argument("--no-compile", dest="compile", action="store_false")
    h.add_argument("--no-amp", dest="amp", action="store_false", default=None,
                   help="disable bf16 autocast on CUDA")
    h.add_argument("--deterministic", dest="deterministic", action="store_true", default=None)
    h.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fgvc", description="Fine-grained visual classification with cross-layer features: "
        "train, evaluate and inspect the methods of the book.",
        epilog="Examples:\n  fgvc train --method baseline --dataset synthetic --profile smoke --out runs/b\n"
               "  fgvc train --method cmal --dataset cub --data-root ~/data --profile full --out runs/c\n"
               "  fgvc results results/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a method and write DIR/results.json and a checkpoint",
                       description="Train a method. Writes DIR/results.json (metrics per epoch and "
                       "provenance), DIR/checkpoint.pt (last epoch, atomic) and DIR/best.pt "
                       "(best validation accuracy). Interrupted? Run the same command with --resume.")
    _add_run_arguments(p)
    p.add_argument("--out", required=True, help="output folder for this run")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    e = sub.add_parser("eval", help="evaluate a trained run on its test split",
                       description="Evaluate the weights of a finished or interrupted run "
                       "(its config says which data) and print top-1/top-5/mean-class accuracy "
                       "per head.")
    e.add_argument("--run", required=True, help="run folder written by `fgvc train --out`")
    e.add_argument("--which", choices=["last", "best"], default="last")
    e.add_argument("--data-root", default=None, help="override the data folder recorded in the run")
    e.add_argument("--device", default=None)
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")

    for name, text in [("models", "list registered methods"), ("datasets", "list datasets"),
                       ("profiles", "list profiles and their settings"),
                       ("backbones", "list backbones")]:
        sub.add_parser(name, help=text, description=text.capitalize() + ".")
    t = sub.add_parser("table", help="run the missing rows of a paper's ablation table and print it",
                       description="Train (or load) every row of a paper table (see `fgvc tables`) "
                       "under OUT/<table id>/<row>/ and print the paper's numbers beside ours.")
    t.add_argument("table_id", help="e.g. cmal.table3")
    t.add_argument("--out", required=True, help="root folder of the table's runs")
    t.add_argument("--rows", nargs="*", default=None, help="only these row labels")
    t.add_argument("--no-train", action="store_true", help="only print what is recorded")
    _add_run_arguments(t)
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    pr = sub.add_parser("probe", help="linear probe on frozen backbone features (the floor of a "
                        "fine-tune)", description="Fit a logistic regression on the frozen, "
                        "average-pooled last-stage features of --backbone (weight decay chosen "
                        "on the validation split) and write OUT/results.json like a run.")
    _add_run_arguments(pr)
    pr.add_argument("--out", required=True, help="output folder for the probe's record")
    pr.add_argument("--quiet", action="store_true", help="no progress lines")
    sw = sub.add_parser("sweep", help="train one run per grid point and pick the best on "
                        "validation", description="Train (or load) one run per combination of "
                        "--grid values under OUT/<setting=value,...>/ and print each run's best "
                        "validation top-1; the selection never reads the test set.")
    _add_run_arguments(sw)
    sw.add_argument("--grid", action="append", required=True, metavar="SETTING=V1,V2",
                    help="a TrainConfig setting and its values, repeatable "
                         "(e.g. --grid backbone_lr_mult=0.1,1.0 --grid weight_decay=5e-4,5e-5)")
    sw.add_argument("--out", required=True, help="root folder of the sweep's runs")
    sw.add_argument("--quiet", action="store_true", help="no progress bars")
    sub.add_parser("tables", help="list the paper tables the book reproduces",
                   description="List the paper tables the book reproduces.")
    r = sub.add_parser("results", help="table of recorded runs under a folder",
                       description="Find every finished results.json under PATH and print a table.")
    r.add_argument("path", nargs="?", default="results")
    r.add_argument("--metric", default="top1", choices=["top1", "top5", "mean_class"])
    return parser


#: TrainConfig settings that ``train`` / ``table`` / ``probe`` flags override.
RUN_SETTINGS = ("backbone", "pretrained", "weights", "epochs", "batch_size", "lr",
                "backbone_lr_mult", "image_size", "resize_size", "weight_decay", "warmup_epochs",
                "label_smoothing", "grad_clip_norm", "bn_policy", "num_workers", "seed", "max_train_samples",
                "max_test_samples", "compile", "amp", "deterministic")


def _config_from_args(args: argparse.Namespace):
    from fgvc_lib.config import resolve_config

    overrides = {k: getattr(args, k, None) for k in RUN_SETTINGS}
    overrides["data_root"] = args.data_root
    if args.opt:
        overrides["method_options"] = _method_options(args.opt)
    return resolve_config(args.method, args.dataset, args.profile, **overrides)


def _method_options(items: Sequence[str]) -> dict[str, Any]:
    """``--opt`` strings as a dict; types are checked by the method's Options when the
    config is resolved (a wrong key or type is a one-line error there)."""
    from fgvc_lib.io import parse_key_value

    return dict(parse_key_value(item) for item in items)


def cmd_train(args: argparse.Namespace) -> int:
    from fgvc_lib.engine.trainer import train

    cfg = _config_from_args(args)
    record = train(cfg, args.out, resume=args.resume, device=args.device, progress=not args.quiet)
    if record and args.quiet:
        print(f"test top1 {record['metrics']['test']['final']['top1']:.2f}%")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fgvc_lib.config import TrainConfig, absolute_data_root
    from fgvc_lib.data.transforms import DeviceNormalize
    from fgvc_lib.engine.checkpoint import check_compatible, check_same_classes, load_checkpoint
    from fgvc_lib.engine.loaders import build_loaders
    from fgvc_lib.engine.trainer import BEST_WEIGHTS, CHECKPOINT, evaluate, load_trained_model, pick_device

    run = Path(args.run)
    ckpt_path = run / (CHECKPOINT if args.which == "last" else BEST_WEIGHTS)
    ckpt = load_checkpoint(ckpt_path)
    last = ckpt if ckpt.get("config") else load_checkpoint(run / CHECKPOINT)
    cfg = TrainConfig.from_dict(last["config"])
    if args.data_root:
        cfg.data_root = absolute_data_root(args.data_root)
    device = pick_device(args.device)
    data = build_loaders(cfg, device)
    check_compatible(ckpt["spec"], cfg.method, data.num_classes, ckpt_path)
    # The same class count is not enough: the outputs must mean the same classes.
    check_same_classes(ckpt.get("dataset") or last.get("dataset") or _recorded_dataset(run),
                       data.classes, cfg.data_root, ckpt_path)
    model = load_trained_model(run, args.which, device)
    mean, std = model.backbone.normalization  # as the run trained (load_trained_model restores it)
    metrics = evaluate(model, data.test, DeviceNormalize(mean, std).to(device), device,
                       data.num_classes, cfg.amp, progress=True)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(f"{'head':<14}{'top1':>8}{'top5':>8}{'mean/class':>12}")
        for head, m in metrics.items():
            print(f"{head:<14}{m['top1']:>8.2f}{m['top5']:>8.2f}{m['mean_class']:>12.2f}")
    return 0


def _recorded_dataset(run) -> dict[str, Any] | None:
    """The dataset entry (with the class names) of a run's ``results.json``, for
    checkpoints written before they carried it."""
    from fgvc_lib.results import RESULTS_FILE, load_results

    try:
        rec = load_results(run / RESULTS_FILE)
    except (OSError, ValueError):
        return None
    return {**rec.get("dataset", {}), "classes": rec.get("classes")}


def cmd_list(what: str) -> int:
    if what == "models":
        from fgvc_lib.methods import available_methods, get_spec

        for name in available_methods():
            spec = get_spec(name)
            print(f"{name:<12} {spec.title:<12} default backbone: {spec.default_backbone}; "
                  f"options: {', '.join(spec.options.names())}")
    elif what == "datasets":
        from fgvc_lib.data import available_datasets

        try:
            from fgvc_lib.data.real import DATASET_INFO
        except ImportError:  # pragma: no cover
            DATASET_INFO = {}
        for name in available_datasets():
            info = "procedurally generated fine-grained data, no download" if name == "synthetic" \
                else DATASET_INFO.get(name, "")
            print(f"{name:<10} {info}")
    elif what == "profiles":
        from fgvc_lib.config import PROFILES

        for name, values in PROFILES.items():
            print(f"{name:<6} " + ", ".join(f"{k}={v}" for k, v in values.items()))
    elif what == "tables":
        from fgvc_lib.reports import available_tables, get_table

        for tid in available_tables():
            t = get_table(tid)
            print(f"{tid:<22} {t.paper} {t.source}: {t.caption}")
    elif what == "backbones":
        from fgvc_lib.models.backbones import BACKBONES

        for name, info in BACKBONES.items():
            print(f"{name:<20} {info.description}")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from fgvc_lib.reports import render_table, run_table

    if not args.no_train:
        overrides = {k: getattr(args, k, None) for k in RUN_SETTINGS}
        if args.opt:
            overrides["method_options"] = _method_options(args.opt)  # the rows' own options win
        run_table(args.table_id, args.out, dataset=args.dataset, profile=args.profile,
                  rows=args.rows, device=args.device, progress=not args.quiet,
                  data_root=args.data_root, **overrides)
    df = render_table(args.table_id, args.out)
    print(df.attrs["caption"])
    print(df.to_string())
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from fgvc_lib.engine.probe import run_probe
    from fgvc_lib.engine.trainer import pick_device

    cfg = _config_from_args(args)
    record = run_probe(cfg, args.out, device=pick_device(args.device), progress=not args.quiet)
    test = record["metrics"]["test"]["final"]
    print(f"linear probe, {cfg.backbone} at {cfg.image_size} px on {cfg.dataset}: test top1 "
          f"{test['top1']:.2f}% (weight decay {record['probe']['weight_decay']:g}, chosen on "
          f"validation)")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from fgvc_lib.engine.sweep import point_name, select_on_validation, sweep, validation_score
    from fgvc_lib.io import parse_key_value

    grid = {}
    for item in args.grid:
        key, raw = parse_key_value(item)
        values = raw if isinstance(raw, list) else [parse_key_value(f"{key}={v}")[1]
                                                     for v in str(raw).split(",")]
        grid[key] = values
    records = sweep(_config_from_args(args), grid, args.out, device=args.device,
                    progress=not args.quiet)
    best = select_on_validation(records)
    for rec in records:
        mark = "  <- selected on validation" if rec is best else ""
        print(f"{point_name(rec['sweep_point'])}: best val top1 {validation_score(rec):.2f}%{mark}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from fgvc_lib.reports.records import load_runs, runs_table

    runs = load_runs(args.path)
    if not runs:
        raise FGVCError(f"no finished runs (results.json) under {args.path}",
                        "train one with `fgvc train --out DIR` or point at another folder")
    table = runs_table(runs, columns=("run", "provenance", f"final {args.metric}"))
    print(table.to_string(index=False))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "results":
            return cmd_results(args)
        if args.command == "table":
            return cmd_table(args)
        if args.command == "probe":
            return cmd_probe(args)
        if args.command == "sweep":
            return cmd_sweep(args)
        return cmd_list(args.command)
    except FGVCError as exc:
        print(f"fgvc: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("fgvc: interrupted; continue with the same command plus --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
