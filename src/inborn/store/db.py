"""The results database: one SQLite file indexing every run and every evaluation result.

WAL mode and a busy timeout let several processes write at once without losing rows;
each write is its own short IMMEDIATE transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from inborn.errors import InbornError
from inborn.io import strict_json
from inborn.store.guard import check_creatable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    path TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    data TEXT,
    arch TEXT,
    adv TEXT,
    eps REAL,
    seed INTEGER,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS results (
    run_path TEXT NOT NULL,
    split TEXT NOT NULL,
    attack TEXT NOT NULL,
    eps REAL NOT NULL,
    steps INTEGER NOT NULL DEFAULT 0,
    step_size REAL NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 1,
    eot_samples INTEGER NOT NULL DEFAULT 1,
    repeats INTEGER NOT NULL DEFAULT 1,
    n INTEGER NOT NULL,
    seed INTEGER NOT NULL DEFAULT 0,
    precision TEXT NOT NULL DEFAULT 'float32',
    fingerprint TEXT NOT NULL DEFAULT '',
    randomised INTEGER NOT NULL DEFAULT 0,
    clean_acc REAL NOT NULL,
    robust_acc REAL NOT NULL,
    hrs REAL NOT NULL,
    created REAL NOT NULL,
    extra TEXT,
    PRIMARY KEY (run_path, split, attack, eps, steps, step_size, restarts, eot_samples, repeats, n, seed,
                 precision, fingerprint)
);
"""

RUN_COLUMNS = ["path", "kind", "data", "arch", "adv", "eps", "seed", "status", "created", "updated"]
RESULT_COLUMNS = ["run_path", "split", "attack", "eps", "steps", "n", "clean_acc", "robust_acc", "hrs", "created"]
# Every setting that changes a result's number is part of its identity (the primary key): the same
# measurement again replaces its row, a different one adds a row. Empty values are stored as the
# defaults below, never NULL (SQLite treats NULLs in a key as all distinct).
IDENTITY_DEFAULTS: dict[str, Any] = {"steps": 0, "step_size": 0.0, "restarts": 1, "eot_samples": 1, "repeats": 1,
                                     "seed": 0, "precision": "float32", "fingerprint": ""}
SETTING_COLUMNS = ["step_size", "restarts", "eot_samples", "repeats", "seed", "precision", "fingerprint",
                   "randomised"]
ALL_RESULT_COLUMNS = [*RESULT_COLUMNS[:6], *SETTING_COLUMNS, *RESULT_COLUMNS[6:]]
_INSERT_COLUMNS = ["run_path", "split", "attack", "eps", "steps", "step_size", "restarts", "eot_samples", "repeats",
                   "n", "seed", "precision", "fingerprint", "randomised", "clean_acc", "robust_acc", "hrs", "created",
                   "extra"]
_SCHEMA_VERSION = 2  # 1: results keyed by (run_path, split, attack, eps, steps, n) only


def default_db_path() -> Path:
    return Path(os.environ.get("INBORN_DB", "runs/inborn.db"))


def recorded_db(run: str | Path, *, _member: bool = False) -> Path | None:
    """The results database a run recorded in its config.yaml when it was made (`results_db`),
    if it still exists; None for an older run, a damaged config or a database since moved."""
    try:
        doc = yaml.safe_load((Path(run) / "config.yaml").read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(doc, dict):
        return None
    recorded = doc.get("results_db")
    if isinstance(recorded, str) and Path(recorded).is_file():
        return Path(recorded)
    # A family or an ensemble: the database its members recorded.
    members = doc.get("config", {}).get("members") if isinstance(doc.get("config"), dict) else None
    for member in members if isinstance(members, list) and not _member else []:
        if isinstance(member, str) and (found := recorded_db(member, _member=True)) is not None:
            return found
    return None


class ResultsDB:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._initialised = False

    @classmethod
    def for_runs(cls, explicit: str | Path | None, runs: list[str | Path]) -> ResultsDB:
        """The database of a command about existing runs: --db, else $INBORN_DB, else the one the
        first run recorded (so it is found from any working directory), else runs/inborn.db."""
        if explicit is not None or os.environ.get("INBORN_DB"):
            return cls(explicit)
        for run in runs:
            if (found := recorded_db(run)) is not None:
                return cls(found)
        return cls()

    @contextmanager
    def connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not write and not self.path.exists():
            raise InbornError(f"no results database at {str(self.path)!r} (run `inborn train` first or pass --db)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        except sqlite3.Error as e:
            raise InbornError(f"cannot open results database {str(self.path)!r}: {e}") from e
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            if not self._initialised:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if write or (version < _SCHEMA_VERSION and _has_table(conn, "results")):
                    _wal(conn)
                    _migrate(conn)
                    self._initialised = True
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise InbornError(f"results database {str(self.path)!r}: {e}") from e
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def upsert_run(self, path: str | Path, *, kind: str, status: str, config: dict[str, Any],
                   summary: dict[str, Any] | None = None) -> None:
        now = time.time()
        path = str(Path(path).resolve())
        with self.connect(write=True) as c:
            c.execute(
                """INSERT INTO runs (path, kind, data, arch, adv, eps, seed, status, created, updated, summary)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(path) DO UPDATE SET kind=excluded.kind, data=excluded.data,
                     arch=excluded.arch, adv=excluded.adv, eps=excluded.eps, seed=excluded.seed,
                     status=excluded.status, updated=excluded.updated,
                     summary=COALESCE(excluded.summary, runs.summary)""",
                (path, kind, config.get("data"), config.get("arch"), config.get("adv"), config.get("eps"),
                 config.get("seed"), status, now, now, strict_json(summary) if summary is not None else None),
            )

    def mark_run(self, path: str | Path, status: str, *, only_if: str | None = None) -> bool:
        """Set a run's status (e.g. `failed`); with `only_if`, only when it is that now. Returns
        whether a row changed."""
        if not self.path.exists():
            return False
        path = str(Path(path).resolve())
        sql, args = "UPDATE runs SET status = ?, updated = ? WHERE path = ?", [status, time.time(), path]
        if only_if is not None:
            sql += " AND status = ?"
            args.append(only_if)
        with self.connect(write=True) as c:
            return c.execute(sql, args).rowcount > 0

    def check(self, write: bool = True) -> None:
        """The database can be used, checked before any work: a SQLite file (or none yet) at a
        path whose directory exists or can be made (`write`: and that can be written). A one-line
        InbornError otherwise."""
        path = self.path
        if path.exists() or path.is_symlink():
            if not path.is_file():
                raise InbornError(f"results database {str(path)!r} is not a file (--db names the database file)")
            try:
                with open(path, "rb") as f:
                    head = f.read(16)
            except OSError as e:
                raise InbornError(f"cannot read results database {str(path)!r}: {e.strerror}") from e
            if head and head != b"SQLite format 3\x00":
                raise InbornError(f"{str(path)!r} is not a SQLite database; pass another --db")
            if write and not os.access(path, os.W_OK):
                raise InbornError(f"results database {str(path)!r} is not writable")
            _check_wal(path)
            foreign = _foreign_tables(path) if head else []
            if foreign:
                raise InbornError(f"{str(path)!r} is another application's SQLite database (it holds "
                                  f"{', '.join(foreign[:3])}); pass another --db")
            return
        check_creatable(path)

    def add_results(self, rows: list[dict[str, Any]]) -> None:
        """Rows as `evaluation.results.result_row` builds them; a row with the identity of one
        already stored (every setting equal) replaces it."""
        now = time.time()
        values = []
        for r in rows:
            r = {**IDENTITY_DEFAULTS, **{k: v for k, v in r.items() if v is not None}}
            values.append((str(Path(r["run_path"]).resolve()), r["split"], r["attack"], float(r["eps"]),
                           int(r["steps"]), float(r["step_size"]), int(r["restarts"]), int(r["eot_samples"]),
                           int(r["repeats"]), int(r["n"]), int(r["seed"]), str(r["precision"]),
                           str(r["fingerprint"]), int(bool(r.get("randomised", False))), float(r["clean_acc"]),
                           float(r["robust_acc"]), float(r["hrs"]), now, strict_json(r.get("extra") or {})))
        with self.connect(write=True) as c:
            c.executemany(f"INSERT OR REPLACE INTO results ({', '.join(_INSERT_COLUMNS)}) "
                          f"VALUES ({', '.join('?' * len(_INSERT_COLUMNS))})", values)

    def runs(self, **filters: Any) -> list[dict[str, Any]]:
        return self._select("runs", RUN_COLUMNS, filters, "created")

    def results(self, **filters: Any) -> list[dict[str, Any]]:
        return self._select("results", ALL_RESULT_COLUMNS, filters, "created")

    def _select(self, table: str, columns: list[str], filters: dict[str, Any], order: str) -> list[dict[str, Any]]:
        where, args = [], []
        for key, value in filters.items():
            if value is None:
                continue
            if key not in columns:
                raise InbornError(f"cannot filter {table} on {key!r}; columns: {', '.join(columns)}")
            if isinstance(value, str) and any(ch in value for ch in "*?"):
                where.append(f"{key} GLOB ?")
            else:
                where.append(f"{key} = ?")
            args.append(value)
        sql = f"SELECT {', '.join(columns)} FROM {table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order}"
        try:
            with self.connect() as c:
                return [dict(zip(columns, row, strict=True)) for row in c.execute(sql, args)]
        except InbornError as e:
            if "no such table" in str(e):
                return []
            raise


def _wal(conn: sqlite3.Connection) -> None:
    """WAL mode. Turning a new database to WAL takes an exclusive lock, and SQLite does not wait
    for it (the busy timeout does not apply): processes that open one new database at once
    (a sweep's first runs) retry instead of failing."""
    for attempt in range(200):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            time.sleep(min(0.05 * (attempt + 1), 1.0))
    conn.execute("PRAGMA journal_mode = WAL")


def ensure(db: ResultsDB) -> None:
    """Create (or migrate) the database now, before several processes would race to."""
    with db.connect(write=True):
        pass


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


_OWN_TABLES = {"runs", "results", "results_v1"}
_WAL_MAGIC = (0x377F0682, 0x377F0683)  # a write-ahead log's first 4 bytes (big-endian), per SQLite's format


def _check_wal(path: Path) -> None:
    """A write-ahead log beside the database that SQLite would not recognise is refused: writing
    would discard what it was meant to hold."""
    wal = Path(f"{path}-wal")
    try:
        with open(wal, "rb") as f:
            head = f.read(32)
    except FileNotFoundError:
        return
    except OSError as e:
        raise InbornError(f"cannot read the results database's log {str(wal)!r}: {e.strerror}") from e
    if head and (len(head) < 32 or int.from_bytes(head[:4], "big") not in _WAL_MAGIC):
        raise InbornError(f"the results database's write-ahead log {str(wal)!r} is damaged; move it away (the "
                          "database without it holds every result written before its last checkpoint)")


def _foreign_tables(path: Path) -> list[str]:
    """Tables of the database at `path` that inborn does not make (a read-only look that creates no
    file: without a write-ahead log beside it, the database file holds everything)."""
    query = "?mode=ro" if Path(f"{path}-wal").exists() else "?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(Path(path).absolute().as_uri() + query, uri=True, timeout=60.0)
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise InbornError(f"results database {str(path)!r}: {e}") from e
    return sorted(n for n in names if n not in _OWN_TABLES and not n.startswith("sqlite_"))


def _migrate(conn: sqlite3.Connection) -> None:
    """Create the tables, or bring a database of an earlier version up to date keeping every
    row; in one transaction, so concurrent openers migrate once."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _has_table(conn, "results"):
            old = [row[1] for row in conn.execute("PRAGMA table_info(results)")]
            if "fingerprint" not in old:
                conn.execute("ALTER TABLE results RENAME TO results_v1")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        if _has_table(conn, "results_v1"):
            kept = [c for c in old if c in _INSERT_COLUMNS]
            conn.execute(f"INSERT OR IGNORE INTO results ({', '.join(kept)}) SELECT {', '.join(kept)} FROM results_v1")
            conn.execute("DROP TABLE results_v1")
        conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
