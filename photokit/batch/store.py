"""The batch results store: one SQLite file, one row per photo, written by one process.

Layout (schema version 1)
-------------------------
``results``
    The table the batch writes. Fixed columns: ``path`` (primary key, absolute path of the
    input), ``sha256`` (of the file's bytes; NULL when the file could not be read),
    ``status`` (``ok`` | ``failed``), ``error`` (one line, NULL when ok), ``error_type``,
    ``photokit_version``, ``params`` (canonical JSON of the scoring parameters),
    ``metric_versions`` (JSON ``{metric: version}`` of the metrics the row holds, from
    `photokit.metrics.registry.signature`; NULL for other scoring functions), ``size_bytes``,
    ``seconds`` (scoring time), ``scored_at`` (UTC ISO time) and ``run_id``.
    Every metric (``redness.a_mean`` ...) and every extra field the scoring function returns
    (``scale_source`` ...) is a column of its own, added with ``ALTER TABLE`` the first time
    it appears, so a metric registered in a later photokit release simply becomes a new
    column of the same table.
``scores`` (view)
    The SPEC table: ``path, sha256, status, error``, the metric columns in registry order,
    the extra columns, then the provenance columns. Re-created whenever a column is added.
``columns``
    The dynamic columns: name, kind (``metric`` | ``extra``), SQL type, position.
``runs``
    One row per batch run: source, photokit version, parameters, engine, counts, status.
``meta``
    ``schema_version`` and creation time.

Durability
----------
The database is in WAL mode with ``synchronous=FULL``. A row is written in its own
``BEGIN IMMEDIATE ... COMMIT`` transaction (column additions included), or, between `begin`
and `commit`, in one transaction with the rows before it (a group commit: one ``fsync``
for many rows, what the batch does when rows arrive faster than it waits for them). A
crash, a ``kill -9`` or a power cut loses at most the rows not yet committed, never a
committed row, and never leaves half a row. Only the process that owns the `ResultStore`
writes (the batch parent or the Dask client); readers (``sqlite3``, pandas) may open the
file at any time and see the committed rows.

References
----------
SQLite, "Write-Ahead Logging", https://www.sqlite.org/wal.html ;
"Atomic Commit In SQLite", https://www.sqlite.org/atomiccommit.html .
"""

from __future__ import annotations

import csv
import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path

from ..errors import PhotokitError
from ..io.atomic import atomic_path

SCHEMA_VERSION = 1

#: Columns that lead the ``scores`` view (SPEC).
HEAD_COLUMNS = ("path", "sha256", "status", "error")
#: Provenance columns that close the ``scores`` view.
TAIL_COLUMNS = ("error_type", "photokit_version", "params", "metric_versions", "size_bytes",
                "seconds", "scored_at", "run_id")
_FIXED_DDL = {
    "path": "TEXT PRIMARY KEY NOT NULL",
    "sha256": "TEXT",
    "status": "TEXT NOT NULL CHECK (status IN ('ok', 'failed'))",
    "error": "TEXT",
    "error_type": "TEXT",
    "photokit_version": "TEXT NOT NULL",
    "params": "TEXT NOT NULL",
    "metric_versions": "TEXT",
    "size_bytes": "INTEGER",
    "seconds": "REAL",
    "scored_at": "TEXT",
    "run_id": "INTEGER",
}
_FIXED_TYPES = {
    "path": "TEXT", "sha256": "TEXT", "status": "TEXT", "error": "TEXT", "error_type": "TEXT",
    "photokit_version": "TEXT", "params": "TEXT", "metric_versions": "TEXT", "size_bytes": "INTEGER",
    "seconds": "REAL",
    "scored_at": "TEXT", "run_id": "INTEGER",
}
_FIXED_LOWER = {c.lower() for c in _FIXED_DDL}


def quote(name: str) -> str:
    """Quote an SQL identifier (metric names contain dots): ``redness.a_mean`` -> ``"redness.a_mean"``."""
    return '"' + name.replace('"', '""') + '"'


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _sql_value(v):
    """A value SQLite can store: numpy scalars unwrapped, non-finite floats as NULL,
    containers as JSON text."""
    if v is None or isinstance(v, (str, bytes)):
        return v
    if isinstance(v, bool):
        return int(v)
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 0) == 0:
        v = v.item()
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, default=str, allow_nan=False)
    return str(v)


def _sql_type(v) -> str:
    v = _sql_value(v)
    if isinstance(v, int):
        return "INTEGER"
    if isinstance(v, float):
        return "REAL"
    if isinstance(v, str):
        return "TEXT"
    return ""  # no value yet: no affinity


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or not name.isprintable() or len(name) > 200:
        raise ValueError(f"invalid column name {name!r}")
    if name.lower() in _FIXED_LOWER:
        raise ValueError(f"column name {name!r} is reserved by the results store")
    return name


class ResultStore:
    """The SQLite results store of `photokit.batch.archive`.

    Parameters
    ----------
    path : str or os.PathLike
        The database file; created (with its folder) when missing.
    metric_names : iterable of str, optional
        Metric columns to create up front, in report order (default: none yet; the batch
        passes `photokit.metrics.names()`).

    Raises
    ------
    PhotokitError
        When the file is not an SQLite database or has a newer schema.

    Notes
    -----
    Use as a context manager, or call `close`. One `ResultStore` per writing process.
    """

    def __init__(self, path: str | os.PathLike, metric_names: Iterable[str] = ()):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = sqlite3.connect(self.path, isolation_level=None, timeout=60.0)
            self._con.execute("PRAGMA busy_timeout = 60000")
            mode = self._con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self.journal_mode = str(mode).lower()
            self._con.execute("PRAGMA synchronous = FULL")
            self._create()
        except sqlite3.DatabaseError as exc:
            raise PhotokitError(f"not a usable results database ({exc})", self.path) from None
        self._columns = self._load_columns()
        names = [n for n in metric_names if n.lower() not in {c.lower() for c in self._columns}]
        if names:
            with self._transaction():
                self._add_columns([(n, "metric", "REAL") for n in names])

    # -- schema -------------------------------------------------------------------------
    def _create(self) -> None:
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise PhotokitError(f"results database has schema version {row[0]}; this photokit "
                                    f"reads up to {SCHEMA_VERSION} (upgrade photokit)", self.path)
            if row is None:
                con.execute("INSERT INTO meta VALUES ('schema_version', ?), ('created', ?)",
                            (str(SCHEMA_VERSION), _utcnow()))
            cols = ", ".join(f"{quote(c)} {ddl}" for c, ddl in _FIXED_DDL.items())
            con.execute(f"CREATE TABLE IF NOT EXISTS results ({cols})")
            con.execute("CREATE TABLE IF NOT EXISTS columns (name TEXT PRIMARY KEY, "
                        "kind TEXT NOT NULL CHECK (kind IN ('metric', 'extra')), "
                        "sqltype TEXT NOT NULL, position INTEGER NOT NULL)")
            con.execute("CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                        "started TEXT, finished TEXT, source TEXT, photokit_version TEXT, "
                        "params TEXT, engine TEXT, workers INTEGER, n_total INTEGER, "
                        "n_scored INTEGER, n_skipped INTEGER, n_failed INTEGER, status TEXT)")
            con.execute("CREATE INDEX IF NOT EXISTS results_status ON results (status)")
            # a database written before a fixed column existed gets it (NULL in old rows)
            have = {r[1].lower() for r in con.execute("PRAGMA table_info(results)")}
            for c, ddl in _FIXED_DDL.items():
                if c not in have:
                    con.execute(f"ALTER TABLE results ADD COLUMN {quote(c)} {ddl}")
            view = [r[1] for r in con.execute("PRAGMA table_info(scores)")]
            if not view or view[-len(TAIL_COLUMNS):] != list(TAIL_COLUMNS):
                self._columns = self._load_columns()
                self._create_view()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _load_columns(self) -> dict[str, tuple[str, str]]:
        rows = self._con.execute("SELECT name, kind, sqltype FROM columns ORDER BY position")
        return {name: (kind, sqltype) for name, kind, sqltype in rows}

    def _create_view(self) -> None:
        metrics = [c for c, (k, _) in self._columns.items() if k == "metric"]
        extras = [c for c, (k, _) in self._columns.items() if k == "extra"]
        cols = ", ".join(quote(c) for c in (*HEAD_COLUMNS, *metrics, *extras, *TAIL_COLUMNS))
        self._con.execute("DROP VIEW IF EXISTS scores")
        self._con.execute(f"CREATE VIEW scores AS SELECT {cols} FROM results")

    def _add_columns(self, new: list[tuple[str, str, str]]) -> None:
        """Add dynamic columns (inside the caller's transaction) and re-create the view."""
        pos = self._con.execute("SELECT COALESCE(MAX(position), -1) FROM columns").fetchone()[0]
        for name, kind, sqltype in new:
            pos += 1
            self._con.execute(f"ALTER TABLE results ADD COLUMN {quote(name)} {sqltype}".rstrip())
            self._con.execute("INSERT INTO columns VALUES (?, ?, ?, ?)", (name, kind, sqltype, pos))
            self._columns[name] = (kind, sqltype)
        self._create_view()

    def _transaction(self):
        """A transaction of its own, or a part of the group `begin` opened (which `commit`
        ends: a failure inside it leaves the group's earlier rows to that commit)."""
        store = self

        class _Tx:
            def __enter__(self):
                self.own = not store._con.in_transaction
                if self.own:
                    store._con.execute("BEGIN IMMEDIATE")

            def __exit__(self, et, ev, tb):
                if not self.own:
                    return False
                if et is None:
                    store._con.execute("COMMIT")
                else:
                    store._con.execute("ROLLBACK")
                    store._columns = store._load_columns()
                return False

        return _Tx()

    def begin(self) -> None:
        """Group the following writes into one transaction, until `commit`.

        Readers see none of the group's rows before `commit`; a crash before it loses
        them all (and nothing committed). Does nothing when a group is already open.
        """
        if not self._con.in_transaction:
            self._con.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        """Commit the group `begin` opened (one ``fsync``); nothing when none is open."""
        if self._con.in_transaction:
            self._con.execute("COMMIT")

    # -- rows ---------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """The columns of the ``scores`` view, in order."""
        return [r[1] for r in self._con.execute("PRAGMA table_info(scores)")]

    @property
    def metric_columns(self) -> list[str]:
        return [c for c, (k, _) in self._columns.items() if k == "metric"]

    def get(self, path: str) -> dict | None:
        """The bookkeeping of `path`'s row (sha256, status, photokit_version, params,
        metric_versions as a dict or None), or None."""
        keys = ("sha256", "status", "photokit_version", "params", "metric_versions")
        row = self._con.execute(f"SELECT {', '.join(keys)} FROM results WHERE path = ?",
                                (path,)).fetchone()
        if row is None:
            return None
        out = dict(zip(keys, row, strict=True))
        out["metric_versions"] = json.loads(row[-1]) if row[-1] else None
        return out

    def put(self, row: Mapping, *, metric_names: Iterable[str] = (), merge: bool = False) -> None:
        """Insert or replace one photo's row, in its own transaction or the open group.

        Parameters
        ----------
        row : mapping
            Must hold ``path``, ``status``, ``photokit_version`` and ``params``; any other
            key is a metric or extra column (created on first sight). Columns the row does
            not mention are NULL: a re-scored photo keeps nothing of its old row, unless
            `merge`.
        metric_names : iterable of str
            Names to treat as metrics (REAL) even without a dot; a key with a dot is a
            metric too, every other new key an extra column typed by its first value.
        merge : bool
            Update only the columns `row` mentions of an existing row (the metrics a
            re-run adds), keeping the others.
        """
        known_metrics = set(metric_names)
        for key in ("path", "status", "photokit_version", "params"):
            if row.get(key) is None:
                raise ValueError(f"row is missing {key!r}")
        if row["status"] not in ("ok", "failed"):
            raise ValueError(f"status must be ok or failed, not {row['status']!r}")
        lower = {c.lower(): c for c in self._columns}
        values: dict[str, object] = {}
        new: list[tuple[str, str, str]] = []
        for key, value in row.items():
            if key.lower() in _FIXED_LOWER:
                values[key.lower()] = _sql_value(value)
                continue
            _check_name(key)
            name = lower.get(key.lower())
            if name is None:
                is_metric = key in known_metrics or "." in key
                new.append((key, "metric" if is_metric else "extra",
                            "REAL" if is_metric else _sql_type(value)))
                name = lower[key.lower()] = key
            values[name] = _sql_value(value)
        values.setdefault("scored_at", _utcnow())
        cols = list(values)
        sql = (f"INSERT {'' if merge else 'OR REPLACE '}INTO results "
               f"({', '.join(quote(c) for c in cols)}) VALUES ({', '.join('?' * len(cols))})")
        if merge:
            sql += (" ON CONFLICT (path) DO UPDATE SET "
                    + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in cols if c != "path"))
        with self._transaction():
            if new:
                self._add_columns(new)
            self._con.execute(sql, [values[c] for c in cols])

    def paths_under(self, folder: str) -> set[str]:
        """The stored paths that lie under `folder` (an absolute folder path)."""
        prefix = folder.rstrip(os.sep) + os.sep
        rows = self._con.execute("SELECT path FROM results WHERE substr(path, 1, ?) = ?",
                                 (len(prefix), prefix))
        return {r[0] for r in rows}

    def delete(self, paths: Iterable[str]) -> None:
        """Remove the rows of `paths` (one transaction)."""
        with self._transaction():
            self._con.executemany("DELETE FROM results WHERE path = ?", [(p,) for p in paths])

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self._con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        return self._con.execute("SELECT COUNT(*) FROM results WHERE status = ?",
                                 (status,)).fetchone()[0]

    def rows(self, where: str = "", params: tuple = ()) -> Iterator[tuple]:
        """Stream the rows of ``scores`` (a cursor: constant memory), ordered by path."""
        sql = f"SELECT * FROM scores {where} ORDER BY path"
        yield from self._con.execute(sql, params)

    def failures(self, limit: int | None = None) -> list[tuple[str, str]]:
        sql = "SELECT path, error FROM results WHERE status = 'failed' ORDER BY path"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return list(self._con.execute(sql))

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a sound database."""
        return "; ".join(r[0] for r in self._con.execute("PRAGMA integrity_check"))

    # -- runs ---------------------------------------------------------------------------
    def begin_run(self, *, source: str, version: str, params: str, engine: str, workers: int) -> int:
        with self._transaction():
            cur = self._con.execute(
                "INSERT INTO runs (started, source, photokit_version, params, engine, workers, "
                "status) VALUES (?, ?, ?, ?, ?, ?, 'running')",
                (_utcnow(), source, version, params, engine, workers))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, *, status: str, n_total: int, n_scored: int,
                   n_skipped: int, n_failed: int) -> None:
        with self._transaction():
            self._con.execute("UPDATE runs SET finished = ?, status = ?, n_total = ?, n_scored = ?, "
                              "n_skipped = ?, n_failed = ? WHERE id = ?",
                              (_utcnow(), status, n_total, n_scored, n_skipped, n_failed, run_id))

    # -- export -------------------------------------------------------------------------
    def _types(self) -> dict[str, str]:
        types = dict(_FIXED_TYPES)
        types.update({c: t for c, (_, t) in self._columns.items()})
        return types

    def export(self, target: str | os.PathLike, *, batch_rows: int = 10_000) -> Path:
        """Write the ``scores`` view to CSV or Parquet (by extension), atomically.

        Rows are streamed (``batch_rows`` at a time for Parquet), so memory does not grow
        with the archive. NULL is an empty CSV field / a Parquet null.
        """
        target = Path(target)
        kind = export_kind(target)
        cols = self.columns
        with atomic_path(target, keep_suffix=False) as tmp:
            if kind == "csv":
                with open(tmp, "w", newline="", encoding="utf-8") as fh:
                    w = csv.writer(fh)
                    w.writerow(cols)
                    for r in self.rows():
                        w.writerow(["" if v is None else repr(v) if isinstance(v, float) else v
                                    for v in r])
            else:
                self._write_parquet(tmp, cols, batch_rows)
        return target

    def _write_parquet(self, tmp: Path, cols: list[str], batch_rows: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = self._types()
        pa_type = {"REAL": pa.float64(), "INTEGER": pa.int64(), "TEXT": pa.string()}
        schema = pa.schema([(c, pa_type.get(types.get(c, ""), pa.string())) for c in cols])
        text_cols = [i for i, c in enumerate(cols) if types.get(c, "") not in pa_type]
        with pq.ParquetWriter(tmp, schema) as writer:
            cur = self._con.execute("SELECT * FROM scores ORDER BY path")
            while True:
                chunk = cur.fetchmany(batch_rows)
                if not chunk:
                    break
                data = list(zip(*chunk, strict=True))
                arrays = []
                for i, f in enumerate(schema):
                    col = data[i]
                    if i in text_cols:
                        col = [None if v is None else str(v) for v in col]
                    arrays.append(pa.array(col, type=f.type))
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))

    def frame(self):
        """The ``scores`` view as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM scores ORDER BY path", self._con)

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Close the database; a group `begin` opened and no `commit` ended is rolled back."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: Export file extensions and the format each chooses.
EXPORT_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def export_kind(target: str | os.PathLike) -> str:
    """``csv`` or ``parquet`` from the file extension (`EXPORT_SUFFIXES`); PhotokitError
    otherwise or when Parquet is asked for without pyarrow."""
    kind = EXPORT_SUFFIXES.get(Path(target).suffix.lower())
    if kind == "csv":
        return "csv"
    if kind == "parquet":
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise PhotokitError("Parquet export needs pyarrow: pip install 'photokit[parquet]'",
                                target) from None
        return "parquet"
    raise PhotokitError("export format is chosen by extension: .csv or .parquet", target)
