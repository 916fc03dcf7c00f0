"""Multi-process data parallel training through torchrun, on the CPU with gloo."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.timeout(600)
def test_torchrun_two_processes_gloo(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FGVC_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "fgvc_lib.cli", "train", "--device", "cpu", "--backbone", "resnet18",
           "--image-size", "32", "--batch-size", "8", "--epochs", "2", "--quiet",
           "--max-train-samples", "48", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = json.loads((out / "results.json").read_text())
    assert rec["status"] == "finished"
    assert rec["world_size"] == 2
    assert rec["history"][-1]["optimizer_steps_per_batch"] == 1.0
    assert len(rec["history"]) == 2
    # The trainer checks at the end that both processes hold identical weights
    # (it raises otherwise, which would have made the return code non-zero).
    assert "test" in rec["metrics"]
