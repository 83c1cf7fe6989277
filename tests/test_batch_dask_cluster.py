"""The Dask engine against a real command-line cluster: a ``dask scheduler`` and two
``dask worker`` processes started from the shell, and ``photokit batch --engine dask
--scheduler ADDR`` run against them, give the same rows as the local engine."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DASK = shutil.which("dask") or os.path.join(os.path.dirname(sys.executable), "dask")
PROVENANCE = {"seconds", "scored_at", "run_id"}


def _rows(db: Path) -> dict:
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        return {r["path"]: {k: r[k] for k in r.keys() if k not in PROVENANCE}
                for r in con.execute("SELECT * FROM scores")}


@pytest.fixture()
def cluster(tmp_path):
    """A scheduler and two single-threaded workers, each its own process, on loopback."""
    if not os.path.exists(DASK):
        pytest.skip("the dask command is not installed")
    info = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(info)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert info.exists(), "the dask scheduler did not start"
        for _ in range(2):
            procs.append(subprocess.Popen([DASK, "worker", "--scheduler-file", str(info), "--nthreads", "1",
                                           "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        address = json.loads(info.read_text())["address"]
        from distributed import Client

        with Client(address, timeout="60s") as c:
            c.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_cli_batch_on_a_command_line_dask_cluster(cluster, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("00_baseline.jpg", "01_s1_day0.jpg", "03_s1_day5.jpg"):
        shutil.copy(SAMPLES / name, photos / name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    cmd = [sys.executable, "-m", "photokit", "batch", str(photos)]
    local = subprocess.run(cmd + ["--db", str(tmp_path / "local.db"), "--workers", "1"],
                           capture_output=True, text=True, timeout=600)
    dask = subprocess.run(cmd + ["--db", str(tmp_path / "dask.db"), "--engine", "dask",
                                 "--scheduler", cluster], capture_output=True, text=True, timeout=600)
    assert local.returncode == dask.returncode == 3, (local.stderr, dask.stderr)  # the broken photo
    rows_local, rows_dask = _rows(tmp_path / "local.db"), _rows(tmp_path / "dask.db")
    assert len(rows_dask) == 4 and sum(r["status"] == "ok" for r in rows_dask.values()) == 3
    assert rows_dask == rows_local
    with sqlite3.connect(tmp_path / "dask.db") as con:
        engine, workers = con.execute("SELECT engine, workers FROM runs").fetchone()
    assert (engine, workers) == ("dask", 2)
