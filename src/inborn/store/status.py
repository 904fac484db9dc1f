"""Run status repair: a run whose process died without saying so (SIGKILL, power loss) is left
`running` in the database; whoever next looks at the database marks it `interrupted`.

A training process holds its run directory's `.lock` (flock) from before its row says `running`
until after the row says how it ended; the kernel drops the lock when the process dies. So a
`running` row whose lock can be taken belongs to a process that is gone.
"""

from __future__ import annotations

import os
from pathlib import Path

from inborn.errors import InbornError
from inborn.store.db import ResultsDB


def lock_is_held(run_dir: str | Path) -> bool:
    """Whether a live process holds the run directory's lock (False when there is no lock file)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: nothing to test, so trust the row
        return True
    path = Path(run_dir) / ".lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def repair_stale_runs(db: ResultsDB) -> list[str]:
    """Mark `interrupted` every `running` row whose process is gone; returns their paths (also
    when the database cannot be written, e.g. on read-only media: the caller shows them as
    interrupted all the same)."""
    if not db.path.exists():
        return []
    stale = [row["path"] for row in db.runs(status="running") if not lock_is_held(row["path"])]
    for path in stale:
        try:
            db.mark_run(path, "interrupted", only_if="running")
        except InbornError:  # read-only: nothing is written, the rows are shown repaired anyway
            break
    return stale
