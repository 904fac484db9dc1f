"""Running a study's cells: every study goes through the sweep machinery, and stops on a failed run."""

from __future__ import annotations

from typing import Any

from inborn.errors import InbornError
from inborn.sweep import run_cells


def run_or_fail(cells: list[Any], *, executor: str = "local", max_parallel: int | None = 1,
                address: str | None = None, db: Any = None, progress: bool = True) -> None:
    """Run the cells not complete yet (resuming interrupted ones); a failed run ends the study with
    one line that names it, and the same command picks up from there."""

    results = run_cells(cells, executor=executor, max_parallel=max_parallel, address=address, db=db,
                        progress=progress)
    failed = [r.cell.name for r in results if r.status == "failed"]
    if failed:
        raise InbornError(f"{len(failed)} run(s) failed: {', '.join(failed)}; see their run directories, "
                          "then run the same command again to pick up where it stopped")
