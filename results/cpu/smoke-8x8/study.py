"""Would 8x8 attention maps in the `smoke` profile cost accuracy or time?

Trains every method's `smoke` run (synthetic data, 64 px, 3 epochs) twice per seed: as the
profile stands (ResNet-18, batch 32: 2x2 last-stage maps) and with the half-width,
output-stride-8 ResNet-18 at batch 8 (8x8 maps; batch 8 because at batch 32 that network
gets a quarter of the steps it needs in 3 epochs: see README.md). Then scores the
baseline's class-activation maps of both against the synthetic part boxes.

    python results/cpu/smoke-8x8/study.py            # train what is missing, then report
    python results/cpu/smoke-8x8/study.py --report   # only read the records

Finished runs are kept; the report (``summary.json``) is rebuilt from the records.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHODS = ("baseline", "cmal", "cross_x", "cnl", "cn_cnn", "coarse2fine")
CONFIGS = {
    "resnet18-b32": [],
    "resnet18_half_os8-b8": ["--backbone", "resnet18_half_os8", "--batch-size", "8"],
}
SEEDS = (0, 1, 2)
MAPS = ("cam", "gradcam")


def run_dir(method: str, config: str, seed: int) -> Path:
    return HERE / "runs" / f"{method}-{config}-seed{seed}"


def finished(path: Path) -> bool:
    rec = path / "results.json"
    return rec.exists() and json.loads(rec.read_text()).get("status") == "finished"


def train_missing(fgvc: str) -> None:
    for method in METHODS:
        for config, extra in CONFIGS.items():
            for seed in SEEDS:
                out = run_dir(method, config, seed)
                if finished(out):
                    continue
                cmd = [fgvc, "train", "--method", method, "--dataset", "synthetic",
                       "--profile", "smoke", "--device", "cpu", "--seed", str(seed),
                       "--quiet", "--out", str(out), *extra]
                if (out / "checkpoint.pt").exists():
                    cmd.append("--resume")
                print(" ".join(cmd[1:]), flush=True)
                subprocess.run(cmd, check=True)


def attention_scores(run) -> dict[str, dict[str, float]]:
    """``attention_report`` of a finished run (a ``RunRecord``), its best checkpoint."""
    from fgvc_lib.attention.report import attention_report
    from fgvc_lib.data.transforms import DeviceNormalize
    from fgvc_lib.engine.loaders import build_split
    from fgvc_lib.engine.trainer import load_trained_model
    from fgvc_lib.models.backbones import input_normalization

    model = load_trained_model(run.path, which="best")
    return attention_report(model, build_split(run.config, "test"), run.config.image_size,
                            maps=list(MAPS), normalizer=DeviceNormalize(*input_normalization(model)))


def report() -> dict:
    import statistics

    from fgvc_lib.reports import load_runs
    from fgvc_lib.reports.protocol import seed_stats

    runs = {r.name: r for r in load_runs(HERE / "runs")} if (HERE / "runs").exists() else {}
    rows = {}
    for method in METHODS:
        for config in CONFIGS:
            group = [runs[d.name] for d in (run_dir(method, config, s) for s in SEEDS)
                     if d.name in runs]
            stats = seed_stats(group) if group else None  # test top-1 at the selected epoch
            row = {"seeds": len(group), "top1": stats["values"] if stats else [],
                   "top1_mean": stats["mean"] if stats else None,
                   "top1_std": stats["std"] if stats and stats["n"] > 1 else None,
                   "train_s": [round(sum(h["time_s"] for h in r.history), 1) for r in group]}
            if method == "baseline" and group:
                per_seed = [attention_scores(r) for r in group]
                row["attention"] = {m: {k: statistics.mean(s[m][k] for s in per_seed)
                                        for k in per_seed[0][m]} for m in MAPS}
            rows[f"{method} / {config}"] = row
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--report", action="store_true", help="only read the records, train nothing")
    p.add_argument("--fgvc", default=str(Path(sys.executable).with_name("fgvc")),
                   help="the fgvc command (default: the one beside this Python)")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not args.report:
        train_missing(args.fgvc)
    rows = report()
    (HERE / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    for name, row in rows.items():
        mean = "-" if row["top1_mean"] is None else f"{row['top1_mean']:.1f}"
        std = "-" if row["top1_std"] is None else f"{row['top1_std']:.1f}"
        att = row.get("attention", {})
        extra = "  ".join(f"{m}: pointing {v['pointing_parts']:.1f} energy {v['energy_in_parts']:.1f}"
                          for m, v in att.items())
        print(f"{name:<36} seeds {row['seeds']}  top-1 {mean} +- {std}  {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
