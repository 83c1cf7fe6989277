"""The SQLite results store: schema, one row per path, dynamic metric columns, export."""

from __future__ import annotations

import csv
import math
import sqlite3

import numpy as np
import pytest

from photokit import PhotokitError
from photokit.batch.store import HEAD_COLUMNS, TAIL_COLUMNS, ResultStore, quote

METRICS = ["redness.a_mean", "pigment.ita_mean", "spots.count"]


def _row(path, status="ok", **values):
    return {"path": path, "sha256": "ab" * 32, "status": status,
            "error": None if status == "ok" else "broken", "photokit_version": "1.0",
            "params": "{}", **values}


def test_new_database_schema_wal_and_columns(tmp_path):
    db = tmp_path / "sub" / "r.db"
    with ResultStore(db, METRICS) as st:
        assert st.journal_mode == "wal"
        assert st.columns == [*HEAD_COLUMNS, *METRICS, *TAIL_COLUMNS]
        assert st._con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    assert con.execute("SELECT type FROM sqlite_master WHERE name='scores'").fetchone()[0] == "view"


def test_put_get_and_quoted_metric_columns(tmp_path):
    db = tmp_path / "r.db"
    with ResultStore(db, METRICS) as st:
        st.put(_row("/a.jpg", **{"redness.a_mean": 12.5, "spots.count": np.int64(3),
                                 "pigment.ita_mean": np.float32(40.25)}))
        assert st.get("/a.jpg") == {"sha256": "ab" * 32, "status": "ok", "photokit_version": "1.0",
                                    "params": "{}", "metric_versions": None}
        assert st.get("/missing.jpg") is None
    con = sqlite3.connect(db)
    got = con.execute(f'SELECT {quote("redness.a_mean")}, "spots.count", "pigment.ita_mean" '
                      "FROM scores WHERE path='/a.jpg'").fetchone()
    assert got == (12.5, 3.0, 40.25)  # numpy scalars unwrapped; metric columns are REAL


def test_one_row_per_path_and_replace_clears_old_values(tmp_path):
    with ResultStore(tmp_path / "r.db", METRICS) as st:
        st.put(_row("/a.jpg", **{"redness.a_mean": 10.0}))
        st.put(_row("/a.jpg", status="failed"))
        st.put(_row("/b.jpg", **{"redness.a_mean": 11.0}))
        assert st.count() == 2 and st.count("failed") == 1
        rows = {r[0]: r for r in st.rows()}
        cols = st.columns
        a = dict(zip(cols, rows["/a.jpg"], strict=True))
        assert a["status"] == "failed" and a["error"] == "broken"
        assert a["redness.a_mean"] is None  # nothing of the replaced row survives
        assert st.failures() == [("/a.jpg", "broken")]


def test_new_metric_becomes_a_column_and_old_rows_read_null(tmp_path):
    db = tmp_path / "r.db"
    with ResultStore(db, METRICS) as st:
        st.put(_row("/a.jpg", **{"redness.a_mean": 1.0}))
        st.put(_row("/b.jpg", **{"redness.a_mean": 2.0, "texture.roughness": 0.5,
                                 "scale_source": "user", "width": 640}))
        cols = st.columns
        # metrics stay together, before the extras and the provenance columns
        assert cols.index("texture.roughness") < cols.index("scale_source") < cols.index("error_type")
    with ResultStore(db, METRICS) as st:  # reopening keeps the columns and their kinds
        assert "texture.roughness" in st.metric_columns
        rows = {r[0]: dict(zip(st.columns, r, strict=True)) for r in st.rows()}
    assert rows["/a.jpg"]["texture.roughness"] is None
    assert rows["/b.jpg"]["texture.roughness"] == 0.5 and rows["/b.jpg"]["width"] == 640


def test_values_cleaned(tmp_path):
    with ResultStore(tmp_path / "r.db", METRICS) as st:
        st.put(_row("/a.jpg", **{"redness.a_mean": float("nan"), "spots.count": math.inf,
                                 "quality_ok": True, "tags": ["x", "y"]}))
        r = dict(zip(st.columns, next(st.rows()), strict=True))
    assert r["redness.a_mean"] is None and r["spots.count"] is None
    assert r["quality_ok"] == 1 and r["tags"] == '["x", "y"]'


@pytest.mark.parametrize("bad", [{"status": "maybe"}, {"photokit_version": None}, {"path": None}])
def test_invalid_rows_refused(tmp_path, bad):
    with ResultStore(tmp_path / "r.db") as st:
        with pytest.raises(ValueError):
            st.put({**_row("/a.jpg"), **bad})
        assert st.count() == 0


def test_reserved_and_invalid_column_names(tmp_path):
    with ResultStore(tmp_path / "r.db") as st:
        with pytest.raises(ValueError):
            st.put({**_row("/a.jpg"), "": 1.0})
        st.put({**_row("/a.jpg"), "STATUS": "failed", "Error": "x"})  # fixed columns, any case
        assert st.get("/a.jpg")["status"] == "failed"


def test_export_csv_roundtrip_exact(tmp_path):
    vals = [0.1 + 0.2, 1e-17, 123456.789]
    with ResultStore(tmp_path / "r.db", METRICS) as st:
        for i, v in enumerate(vals):
            st.put(_row(f"/p{i}.jpg", **{"redness.a_mean": v, "scale_source": "user, \"q\""}))
        st.put(_row("/z.jpg", status="failed"))
        out = st.export(tmp_path / "out" / "s.csv")
        cols = st.columns
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == cols
    body = [dict(zip(cols, r, strict=True)) for r in rows[1:]]
    assert [float(r["redness.a_mean"]) for r in body[:3]] == vals  # repr: exact floats
    assert body[0]["scale_source"] == 'user, "q"'
    assert body[3]["status"] == "failed" and body[3]["redness.a_mean"] == ""
    assert not list(tmp_path.glob("out/.*part*"))  # atomic: no temporary left


def test_export_parquet_types(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    with ResultStore(tmp_path / "r.db", METRICS) as st:
        st.put(_row("/a.jpg", **{"redness.a_mean": 3.5, "width": 10}))
        st.put(_row("/b.jpg", status="failed"))
        st.export(tmp_path / "s.parquet", batch_rows=1)  # several row groups
        cols = st.columns
    t = pq.read_table(tmp_path / "s.parquet")
    assert t.column_names == cols and t.num_rows == 2
    assert str(t.schema.field("redness.a_mean").type) == "double"
    assert str(t.schema.field("width").type) == "int64"
    assert t.column("redness.a_mean").to_pylist() == [3.5, None]


def test_export_refuses_unknown_extension(tmp_path):
    with ResultStore(tmp_path / "r.db") as st, pytest.raises(PhotokitError, match="csv or .parquet"):
        st.export(tmp_path / "s.xlsx")


def test_not_a_database(tmp_path):
    bad = tmp_path / "x.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PhotokitError, match="not a usable results database"):
        ResultStore(bad)


def test_newer_schema_refused(tmp_path):
    db = tmp_path / "r.db"
    ResultStore(db).close()
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(PhotokitError, match="schema version 99"):
        ResultStore(db)


def test_readers_see_committed_rows_while_writer_is_open(tmp_path):
    db = tmp_path / "r.db"
    with ResultStore(db, METRICS) as st:
        st.put(_row("/a.jpg", **{"redness.a_mean": 1.0}))
        reader = sqlite3.connect(db)
        assert reader.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 1
        st.put(_row("/b.jpg", **{"redness.a_mean": 2.0}))
        assert reader.execute("SELECT COUNT(*) FROM scores").fetchone()[0] == 2
        reader.close()
        assert st.integrity_check() == "ok"


def test_runs_table(tmp_path):
    with ResultStore(tmp_path / "r.db") as st:
        rid = st.begin_run(source="/src", version="1.0", params="{}", engine="local", workers=2)
        st.finish_run(rid, status="finished", n_total=3, n_scored=2, n_skipped=0, n_failed=1)
        row = st._con.execute("SELECT status, n_total, n_failed, finished IS NOT NULL FROM runs "
                              "WHERE id=?", (rid,)).fetchone()
    assert row == ("finished", 3, 1, 1)


def test_group_commit_is_one_transaction(tmp_path):
    """Rows between begin and commit become visible together; a refused row inside the group
    costs nothing else; closing before commit rolls the group back (a crash)."""
    db = tmp_path / "r.db"
    reader = sqlite3.connect(db)
    with ResultStore(db, METRICS) as st:
        st.put(_row("/a.jpg", **{"redness.a_mean": 1.0}))
        st.begin()
        st.put(_row("/b.jpg", **{"redness.a_mean": 2.0, "new.metric": 5.0}))
        with pytest.raises(ValueError):
            st.put({**_row("/bad.jpg"), "\x00": 1.0})
        st.put(_row("/c.jpg", **{"redness.a_mean": 3.0}))
        assert reader.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1
        assert st.count() == 3  # the writer sees its own group
        st.commit()
        assert reader.execute("SELECT path, \"new.metric\" FROM scores ORDER BY path").fetchall() == [
            ("/a.jpg", None), ("/b.jpg", 5.0), ("/c.jpg", None)]
        st.begin()
        st.put(_row("/d.jpg", **{"redness.a_mean": 4.0}))
    reader.close()
    with ResultStore(db) as st:
        assert st.count() == 3 and st.get("/d.jpg") is None
        assert st.integrity_check() == "ok"
