"""benchmarks/bench_model.py: the command line works and a tiny CPU run reports every number.

Speed itself is never asserted here (see benchmarks/README.md); these tests
check that the script runs, prints its table and writes complete JSON.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_model.py"
TINY = ["--method", "baseline", "--backbone", "resnet18", "--image-size", "64", "--batch-size", "2",
        "--steps", "2", "--warmup", "0", "--repeats", "1", "--device", "cpu", "--num-classes", "5"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_lists_the_options():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    for flag in ("--method", "--backbone", "--image-size", "--batch-size", "--steps", "--warmup",
                 "--device", "--no-amp", "--channels-last", "--compile", "--mode", "--reference",
                 "--loader", "--json"):
        assert flag in out.stdout


def test_bad_arguments_are_refused(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["--batch-size", "0"])
    assert exc.value.code == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err


def test_tiny_cpu_run_prints_the_table_and_writes_json(bench, tmp_path, capsys):
    path = tmp_path / "bench.json"
    bench.main([*TINY, "--json", str(path)])
    table = capsys.readouterr().out
    for key in ("params_m", "macs_g", "train_img_s", "infer_bs1_ms", "infer_img_s"):
        assert key in table
    record = json.loads(path.read_text())
    measures = record["measures"]
    assert measures["params_m"] == pytest.approx(11.18, abs=0.01)  # ResNet-18 + a 5-class head
    # ResNet-18 is 1.82 GMACs at 224 px; at 64 px the cost scales by (64/224)^2.
    assert measures["macs_g"] == pytest.approx(1.82 * (64 / 224) ** 2, rel=0.05)
    assert measures["train_backbone_passes"] == 1 and measures["optimizer_steps_per_batch"] == 1
    # A training step's FLOPs: forward 2 x MACs, backward about twice that (the first
    # convolution needs no input gradient, so a little less): between 5 and 6 x MACs.
    assert 5 * measures["macs_g"] < measures["train_gflops_per_img"] <= 6 * measures["macs_g"]
    assert measures["train_tflops"] > 0 and measures["train_recompiles_timed"] == 0
    assert measures["train_window_min_s"] <= measures["train_window_median_s"]
    for key in ("train_img_s", "train_ms_per_batch", "infer_bs1_img_s", "infer_img_s",
                "infer_ms_per_img"):
        assert measures[key] > 0
    assert "train_peak_mem_gb" not in measures  # CPU: no GPU memory to report
    assert "reference_train_img_s" not in measures  # only with --reference
    prov = record["provenance"]
    for key in ("command", "commit", "device_name", "torch", "date"):
        assert prov[key]
    assert "--batch-size 2" in prov["command"]
    assert record["config"]["batch_size"] == 2 and record["config"]["amp"] is False


def test_reference_and_loader_paths(bench, tmp_path, capsys):
    """--reference times a plain ResNet-50 step beside the model; --loader (once the
    synthetic dataset exists) times training through a real DataLoader."""
    has_synthetic = importlib.util.find_spec("fgvc_lib.data.synthetic") is not None
    loader = ["--loader", "--num-workers", "0", "--data-root", str(tmp_path)] if has_synthetic else []
    record = bench.main([*TINY, "--mode", "train", "--steps", "1", "--reference", *loader])
    measures = record["measures"]
    assert measures["reference_train_img_s"] > 0
    assert measures["reference_pass_ratio"] == pytest.approx(
        measures["train_pass_img_s"] / measures["reference_train_img_s"])
    assert "infer_img_s" not in measures  # --mode train
    table = capsys.readouterr().out
    assert "reference_pass_ratio" in table
    if has_synthetic:
        assert measures["loader_train_img_s"] > 0 and measures["loader_only_img_s"] > 0
        assert "loader_train_img_s" in table


LOADER_SCRIPT = SCRIPT.with_name("bench_loader.py")


def test_loader_benchmark_reports_every_setting_and_whether_it_keeps_up(tmp_path):
    from tests.data.test_real_datasets import make_cub_list

    spec = importlib.util.spec_from_file_location("bench_loader", LOADER_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = make_cub_list(tmp_path / "cub")          # 3 training JPEGs of 10 x 10 px
    out = tmp_path / "loader.json"
    results = module.main(["--dataset", "cub_list", "--data-root", str(root), "--image-sizes", "16",
                           "24", "--workers", "0", "--batch-size", "2", "--batches", "2",
                           "--warmup", "0", "--train-img-s", "1e9", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [(r["image_size"], r["workers"]) for r in rows] == [(16, 0), (24, 0)]
    assert all(r["loader_img_s"] > 0 and r["keeps_up"] is False for r in rows)  # nobody does 1e9
    assert results["decode_img_s"] > 0


def test_loader_benchmark_bad_root_is_one_line_exit_2(tmp_path):
    out = subprocess.run([sys.executable, str(LOADER_SCRIPT), "--data-root", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "fix:" in out.stderr
