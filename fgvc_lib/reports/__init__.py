"""Generic reports: the paper's tables beside ours, run records, plots and checks.

* :mod:`.tables` -- paper tables as data, ablations as lists of runs, rendered
  paper beside ours (re-exported here).
* :mod:`.records` -- :class:`RunRecord` (a ``results.json`` with accessors),
  :func:`load_runs` and :func:`runs_table`, the one table of recorded runs.
* :mod:`.plots` -- :func:`plot_curves`, the one plotter of learning curves.
* :mod:`.cost` -- :func:`cost_breakdown`: parameters and MACs per component;
  :func:`training_flops_table`: the recorded FLOPs of one training step per method.
* :mod:`.speed` -- speed targets and the throughput check of a benchmark record.
"""
from fgvc_lib.reports.cost import cost_breakdown, training_flops_table
from fgvc_lib.reports.plots import plot_curves
from fgvc_lib.reports.records import RunRecord, load_runs, runs_table
from fgvc_lib.reports.tables import (FIGURE_ONLY, PaperTable, TableRow, available_tables,
                                     collect_runs, get_table, render_table, row_config, run_dir,
                                     run_table, shared_row, styled)

__all__ = ["FIGURE_ONLY", "PaperTable", "RunRecord", "TableRow", "available_tables",
           "collect_runs", "cost_breakdown", "get_table", "load_runs", "plot_curves",
           "render_table", "row_config", "run_dir", "run_table", "runs_table", "shared_row",
           "styled", "training_flops_table"]
