"""Speed targets, checked once for every method that declares a released-code anchor.

A method's ``SPEC.released_loop`` (:class:`fgvc_lib.methods.ReleasedLoop`) gives the
training speed of the authors' released loop and the speed-up the project aims at;
a benchmark record (``benchmarks/bench_model.py --json``) says what we measured,
beside a plain ResNet-50 step timed in the same run (see ``benchmarks/README.md``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fgvc_lib.errors import FGVCError

#: Per backbone pass, every method reaches at least this share of a plain ResNet-50
#: timed in the same run.
PASS_RATIO_TARGET = 0.85
#: Achieved FLOP rate of a method's whole training step, as a share of a plain
#: ResNet-50 step's timed in the same run (eager against eager, compiled against
#: compiled): the measure that does not mix work and speed.
TFLOPS_RATIO_TARGET = 0.9


def speed_targets() -> dict[str, dict[str, Any]]:
    """``{method: {"released_img_s", "speedup_target", "target_img_s", "setting"}}`` for
    every registered method that declares a released loop."""
    from fgvc_lib.methods import available_methods, get_spec

    out = {}
    for name in available_methods():
        loop = get_spec(name).released_loop
        if loop is not None:
            out[name] = {"released_img_s": loop.img_per_s, "speedup_target": loop.speedup_target,
                         "target_img_s": loop.img_per_s * loop.speedup_target,
                         "setting": loop.setting}
    return out


def bench_measures(bench: Mapping[str, Any], needed: tuple[str, ...]) -> Mapping[str, Any]:
    """The ``measures`` of a benchmark record, refusing one that lacks ``needed``."""
    measures = bench.get("measures")
    if not isinstance(measures, Mapping):
        raise FGVCError("the benchmark record has no 'measures'",
                        "pass the JSON written by benchmarks/bench_model.py --json")
    missing = [k for k in needed if k not in measures]
    if missing:
        raise FGVCError(f"the benchmark record lacks {missing}",
                        "re-run benchmarks/bench_model.py with --mode both --reference")
    return measures


def bench_device(bench: Mapping[str, Any]) -> str:
    prov = bench.get("provenance", {})
    return prov.get("device", {}).get("name") or prov.get("device_name") or "unknown device"


def throughput_check(bench: Mapping[str, Any]):
    """A benchmark record against its method's speed targets: training images/s
    against the released loop (where the method declares one) and the per-pass
    ratio to a plain ResNet-50 timed in the same run."""
    import pandas as pd

    from fgvc_lib.methods import get_spec

    m = bench_measures(bench, ("train_img_s", "reference_pass_ratio", "train_backbone_passes"))
    cfg = bench.get("config", {})
    spec = get_spec(cfg.get("method", "baseline"))
    compiled_reference = bool(bench.get("raw", {}).get("reference_compiled", False))
    speed, ratio = float(m["train_img_s"]), float(m["reference_pass_ratio"])
    rows: dict[str, dict[str, Any]] = {}
    loop = spec.released_loop
    if loop is not None:
        target = loop.img_per_s * loop.speedup_target
        rows["training images/s"] = {
            "measured": speed,
            "target": f">= {target:.0f} ({loop.speedup_target:g} x the released loop's "
                      f"{loop.img_per_s:g})",
            "measured / released loop": speed / loop.img_per_s,
            "met": "yes" if speed >= target else "no"}
    if ratio < PASS_RATIO_TARGET:
        ratio_met = "no"
    else:
        ratio_met = "yes" if compiled_reference else "not shown (eager reference)"
    rows["per-pass ratio to plain ResNet-50"] = {
        "measured": ratio,
        "target": f">= {PASS_RATIO_TARGET:g} vs a compiled ResNet-50 "
                  f"(measured vs {'a compiled' if compiled_reference else 'an eager'} one)",
        "measured / released loop": float("nan"), "met": ratio_met}
    if "tflops_ratio" in m:   # records written before the FLOP count lack it
        flop_ratio = float(m["tflops_ratio"])
        kind = "compiled" if compiled_reference else "eager"
        rows["FLOP-rate ratio to plain ResNet-50"] = {
            "measured": flop_ratio,
            "target": f">= {TFLOPS_RATIO_TARGET:g} (both {kind})",
            "measured / released loop": float("nan"),
            "met": "yes" if flop_ratio >= TFLOPS_RATIO_TARGET else "no"}
    df = pd.DataFrame(rows).T.infer_objects()
    anchor = f"; released loop: {loop.setting}" if loop is not None else ""
    df.attrs["caption"] = (
        f"Training speed of {spec.title}: {bench_device(bench)}, {cfg.get('backbone', '?')}, "
        f"{cfg.get('image_size', '?')} px, batch {cfg.get('batch_size', '?')}, "
        f"{int(m['train_backbone_passes'])} backbone passes per batch{anchor}.")
    return df
