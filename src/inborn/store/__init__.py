"""The run store: run directories on disk and the SQLite results database that indexes them."""

from inborn.store.db import ResultsDB, default_db_path
from inborn.store.run_dir import RunDir

__all__ = ["ResultsDB", "RunDir", "default_db_path"]
