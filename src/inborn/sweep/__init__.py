"""Sweeps: a grid of train / search / finetune runs, each a subprocess, run here or on Ray.

`plan_cells` turns a base config and `--grid` specs into `Cell`s; `run_cells` runs the ones not
complete yet (resuming interrupted ones) and returns a `CellResult` per cell; `write_report`
writes OUT/sweep.csv and OUT/sweep.md. `inborn reproduce` and `inborn nas` build their own
`Cell`s and reuse `run_cells`.
"""

from inborn.sweep.cells import Cell, attempts, is_complete, plan_cells
from inborn.sweep.executors import CellResult, default_parallel, run_cell, run_cells
from inborn.sweep.grid import expand, parse_grid, safe_name
from inborn.sweep.report import result_rows, write_report

__all__ = [
    "Cell", "CellResult", "attempts", "default_parallel", "expand", "is_complete", "parse_grid", "plan_cells",
    "result_rows", "run_cell", "run_cells", "safe_name", "write_report",
]
