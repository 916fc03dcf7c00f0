"""pytest configuration for the notebooks (``pytest notebooks --nbmake``).

pytest calls a conftest's run-time hooks only for items below its folder, so
what concerns executing the chapters lives here, next to them (it applies
whether or not ``tests/`` is collected in the same run):

* the per-notebook time budget.

The nbclient stall fix is applied by the repository's root ``conftest.py``, which
pytest loads for every item under the repository, tests and notebooks alike.
"""
from __future__ import annotations

from pathlib import Path

import pytest



# Every notebook that `pytest --nbmake` executes must finish within its budget
# (NOTEBOOK_BUDGET_S per profile; 3 minutes in the smoke profile, the default).
# What is measured is the smaller of the cell's wall time and the CPU time
# the kernel process used (user + system, read from RUSAGE_CHILDREN once
# nbmake has shut the kernel down and reaped it). On a busy machine the wall
# time grows with the wait for a core but the CPU time does not; on a quiet
# machine with several threads the CPU time adds up the threads but the wall
# time does not: the minimum tracks the work in both cases. A notebook over
# budget fails its nbmake item after it ran (its own errors take precedence).
# FGVC_NOTEBOOK_BUDGET_S overrides the budget; FGVC_NOTEBOOK_TIMES=<file.json>
# writes every notebook's measured times.
NOTEBOOK_BUDGET_S = {"smoke": 180.0}
_NOTEBOOK_TIMES: dict[str, dict[str, float]] = {}


def notebook_work_seconds(wall_s: float, kernel_cpu_s: float) -> float:
    """What the budget is checked against (see the block comment): the minimum of
    wall and kernel CPU time, or the wall time when no CPU time was recorded."""
    return min(wall_s, kernel_cpu_s) if kernel_cpu_s > 0 else wall_s


def _notebook_budget() -> float | None:
    import os

    if os.environ.get("FGVC_NOTEBOOK_BUDGET_S"):
        return float(os.environ["FGVC_NOTEBOOK_BUDGET_S"])
    return NOTEBOOK_BUDGET_S.get(os.environ.get("FGVC_PROFILE") or "smoke")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if item.path.suffix != ".ipynb":
        return (yield)
    import resource
    import time

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    wall0, cpu0 = time.monotonic(), children_cpu()
    result = yield  # an error in the notebook propagates before any budget check
    wall, cpu = time.monotonic() - wall0, children_cpu() - cpu0
    work = notebook_work_seconds(wall, cpu)
    _NOTEBOOK_TIMES[item.nodeid] = {"wall_s": round(wall, 1), "kernel_cpu_s": round(cpu, 1),
                                    "work_s": round(work, 1)}
    budget = _notebook_budget()
    if budget is not None and work > budget:
        pytest.fail(f"{item.nodeid} took {work:.0f} s (wall {wall:.0f} s, kernel CPU {cpu:.0f} s), "
                    f"over its {budget:.0f} s budget: make the chapter lighter (fewer or "
                    "smaller runs in this profile)", pytrace=False)
    return result


def pytest_terminal_summary(terminalreporter):
    if not _NOTEBOOK_TIMES:
        return
    import json
    import os

    terminalreporter.section("notebook execution times (budget: min(wall, kernel CPU))")
    for nodeid, times in _NOTEBOOK_TIMES.items():
        terminalreporter.write_line(f"{nodeid}: wall {times['wall_s']:.0f} s, kernel CPU "
                                    f"{times['kernel_cpu_s']:.0f} s -> {times['work_s']:.0f} s")
    target = os.environ.get("FGVC_NOTEBOOK_TIMES")
    if target:
        Path(target).write_text(json.dumps(_NOTEBOOK_TIMES, indent=2) + "\n")
