"""Batch scoring: sources, one row per photo, failure isolation, resume, engines, crash safety.

The scoring functions here are simple and exactly known (channel means of the decoded
photo, computed independently with Pillow + numpy in the test), so every stored value has a
truth to compare with. The end-to-end test with photokit's own `measure` is at the end.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from photokit import PhotokitError
from photokit.batch import archive as batch_mod
from photokit.batch.archive import (
    BatchSummary,
    Task,
    _LocalEngine,
    iter_manifest,
    score_archive,
    sha256_file,
)
from photokit.cli.main import cli
from photokit.io.photo import load
from photokit.io.sources import image_files

HERE = Path(__file__).resolve().parent


# -- scoring functions (module level: picklable by reference) ---------------------------
def mean_score(path, **params):
    """Channel means of the decoded photo; echoes the parameters it was given."""
    px = load(path).rgb8().astype(np.float64)
    row = {"test.mean_r": float(px[..., 0].mean()), "test.mean_g": float(px[..., 1].mean()),
           "test.mean_b": float(px[..., 2].mean()), "width": int(px.shape[1])}
    if "mm_per_px" in params:
        row["mm_per_px"] = params["mm_per_px"]
    return row


def slow_score(path, **params):
    time.sleep(0.15)
    return mean_score(path, **params)


def buggy_score(path, **params):
    if "bug" in os.path.basename(path):
        raise ValueError("something unexpected")
    return mean_score(path, **params)


def crashing_score(path, **params):
    if "crash" in os.path.basename(path):
        os._exit(17)  # a segfault or an OOM kill, as the pool sees it
    return mean_score(path, **params)


def hanging_score(path, **params):
    if "hang" in os.path.basename(path):
        while True:  # a pathological photo that never finishes
            time.sleep(0.01)
    return mean_score(path, **params)


def invalid_row_score(path, **params):
    row = mean_score(path, **params)
    if "bad" in os.path.basename(path):
        row["\x00not a name"] = 1.0
    return row


def pid_score(path, **params):
    return {"pid": os.getpid()}


_LOADS: list[int] = []  # pids of the processes that loaded the "model", one entry per load


def _load_model():
    """Stands for a scoring function's models (face networks, cascades): counts its loads."""
    _LOADS.append(os.getpid())


def warm_score(path, **params):
    """Reports how many times its process loaded the model before this photo."""
    return {**mean_score(path, **params), "pid": os.getpid(), "loads": _LOADS.count(os.getpid())}


warm_score.warm = _load_model


def _broken_model():
    raise OSError("model file missing")


def cold_score(path, **params):
    return mean_score(path, **params)


cold_score.warm = _broken_model


def truth(path) -> tuple[float, float, float]:
    px = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    return tuple(float(px[..., c].mean()) for c in range(3))


# -- archives -----------------------------------------------------------------------------
def _jpeg(img: np.ndarray, quality=90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def make_archive(root: Path, astronaut: np.ndarray, n_good: int = 6) -> dict:
    """Nested folders of real-photo variants plus broken files and non-images."""
    rng = np.random.default_rng(7)
    good = []
    for i in range(n_good):
        sub = root / f"visit{i % 3}" / ("deep" if i % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        img = astronaut[: 400 - 16 * i, 16 * i:]
        name = sub / (f"p{i}.JPG" if i == 0 else f"p{i}.jpg" if i % 3 else f"p{i}.png")
        if name.suffix == ".png":
            Image.fromarray(img).save(name)
        else:
            name.write_bytes(_jpeg(img, 70 + 4 * i))
        good.append(str(name))
    data = _jpeg(astronaut)
    broken = {
        "empty.jpg": b"",
        "truncated.jpg": data[: len(data) // 3],
        "text.jpg": b"this is a text file, not a photo\n",
        "random.png": rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),
    }
    (root / "broken").mkdir()
    for name, content in broken.items():
        (root / "broken" / name).write_bytes(content)
    (root / "notes.txt").write_text("not an input")
    (root / "visit0" / "scores.csv").write_text("a,b\n1,2\n")
    (root / ".hidden.jpg").write_bytes(data)
    (root / ".cache").mkdir()
    (root / ".cache" / "x.jpg").write_bytes(data)
    return {"good": sorted(good), "broken": sorted(str(root / "broken" / n) for n in broken)}


@pytest.fixture
def archive(tmp_path, astronaut):
    root = tmp_path / "archive"
    root.mkdir()
    files = make_archive(root, astronaut)
    return root, files


def read_scores(db) -> dict[str, dict]:
    con = sqlite3.connect(db)
    cur = con.execute("SELECT * FROM scores")
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur]
    con.close()
    return {r["path"]: r for r in rows}


# -- sources ------------------------------------------------------------------------------
def test_folder_listing_recursive_images_only_sorted(archive):
    root, files = archive
    listed = list(image_files(root))
    assert sorted(listed) == sorted(files["good"] + files["broken"])
    assert list(image_files(root)) == listed  # stable order
    assert not any(".hidden" in p or ".cache" in p or p.endswith((".txt", ".csv")) for p in listed)


def test_manifest_relative_paths_and_parameters(tmp_path, astronaut):
    (tmp_path / "imgs").mkdir()
    Image.fromarray(astronaut).save(tmp_path / "imgs" / "a.png")
    man = tmp_path / "m.csv"
    man.write_text("photo,date,kind,mm_per_px\nimgs/a.png,2024-01-01,baseline,0.05\n\n"
                   f"{tmp_path / 'imgs' / 'a.png'},2024-01-02,visit,\n")
    tasks = list(iter_manifest(man))
    assert tasks == [Task(str(tmp_path / "imgs" / "a.png"), (("mm_per_px", 0.05),)),
                     Task(str(tmp_path / "imgs" / "a.png"), ())]


@pytest.mark.parametrize("text, msg", [("file,date\na.jpg,1\n", "'photo'"),
                                       ("photo,mm_per_px\na.jpg,abc\n", "line 2"),
                                       ("photo,mm_per_px\na.jpg,-1\n", "> 0"),
                                       ("photo,kind\n,visit\n", "line 2: empty")])
def test_manifest_errors_name_the_line(tmp_path, text, msg):
    man = tmp_path / "m.csv"
    man.write_text(text)
    with pytest.raises(PhotokitError, match=msg):
        list(iter_manifest(man))


def test_bad_sources_refused_before_any_work(tmp_path):
    with pytest.raises(PhotokitError, match="does not exist"):
        score_archive(tmp_path / "nope", tmp_path / "r.db", score_fn=mean_score, workers=0)
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(PhotokitError, match="folder or a CSV"):
        score_archive(tmp_path / "x.txt", tmp_path / "r.db", score_fn=mean_score, workers=0)
    with pytest.raises(PhotokitError, match="csv or .parquet"):
        score_archive(tmp_path, tmp_path / "r.db", export=tmp_path / "s.json", workers=0)
    assert not (tmp_path / "r.db").exists()


def test_sha256_matches_hashlib(tmp_path):
    import hashlib

    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(str(tmp_path / "f")) == (hashlib.sha256(data).hexdigest(), len(data))


# -- one row per photo, failures isolated ----------------------------------------------------
def test_archive_every_photo_one_row_failures_with_reasons(archive, tmp_path):
    root, files = archive
    db = tmp_path / "r.db"
    s = score_archive(root, db, workers=2, score_fn=mean_score, export=tmp_path / "s.csv")
    assert (s.n_total, s.n_scored, s.n_skipped, s.n_failed) == (10, 6, 0, 4)
    rows = read_scores(db)
    assert sorted(rows) == sorted(files["good"] + files["broken"])
    for p in files["good"]:
        r = rows[p]
        assert r["status"] == "ok" and r["error"] is None
        assert (r["test.mean_r"], r["test.mean_g"], r["test.mean_b"]) == pytest.approx(truth(p))
        assert r["sha256"] == sha256_file(p)[0] and r["size_bytes"] == os.path.getsize(p)
    reasons = {Path(p).name: rows[p]["error"] for p in files["broken"]}
    assert all(rows[p]["status"] == "failed" for p in files["broken"])
    assert "empty" in reasons["empty.jpg"]
    assert "truncated" in reasons["truncated.jpg"] or "corrupt" in reasons["truncated.jpg"]
    assert "not" in reasons["text.jpg"] and "not" in reasons["random.png"]
    assert {Path(p).name for p, _ in s.failures} == set(reasons)
    with open(tmp_path / "s.csv", newline="") as fh:
        header = next(csv.reader(fh))
        n = sum(1 for _ in fh)
    assert header[:4] == ["path", "sha256", "status", "error"] and n == 10
    assert {"test.mean_r", "test.mean_g", "test.mean_b", "photokit_version", "params"} <= set(header)


def test_exception_in_scoring_function_is_isolated(tmp_path, astronaut):
    for name in ("a.jpg", "bug.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(_jpeg(astronaut))
    s = score_archive(tmp_path, tmp_path / "r.db", workers=2, score_fn=buggy_score)
    assert (s.n_scored, s.n_failed) == (2, 1)
    r = read_scores(tmp_path / "r.db")[str(tmp_path / "bug.jpg")]
    assert r["error"] == "internal error: ValueError: something unexpected"
    assert r["error_type"] == "ValueError"


def test_worker_crash_fails_only_the_culprit(tmp_path, astronaut):
    names = [f"{i:02d}.jpg" for i in range(8)]
    names[3] = "03crash.jpg"
    for name in names:
        (tmp_path / name).write_bytes(_jpeg(astronaut[::2, ::2]))
    s = score_archive(tmp_path, tmp_path / "r.db", workers=2, score_fn=crashing_score)
    rows = read_scores(tmp_path / "r.db")
    assert len(rows) == 8 and (s.n_scored, s.n_failed) == (7, 1)
    bad = rows[str(tmp_path / "03crash.jpg")]
    assert bad["status"] == "failed" and bad["error_type"] == "WorkerDied"
    assert all(r["status"] == "ok" for p, r in rows.items() if "crash" not in p)


def test_unstorable_row_is_a_failure_not_a_crash(tmp_path, astronaut):
    for name in ("a.jpg", "bad.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(_jpeg(astronaut[::2, ::2]))
    s = score_archive(tmp_path, tmp_path / "r.db", workers=0, score_fn=invalid_row_score)
    rows = read_scores(tmp_path / "r.db")
    assert (s.n_scored, s.n_failed) == (2, 1)
    bad = rows[str(tmp_path / "bad.jpg")]
    assert bad["error_type"] == "InvalidRow" and "invalid column name" in bad["error"]
    assert bad["test.mean_r"] is None and bad["sha256"] == sha256_file(str(tmp_path / "bad.jpg"))[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_timeout_fails_the_hanging_photo_only(tmp_path, astronaut, workers):
    for name in ("a.jpg", "hang.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(_jpeg(astronaut[::2, ::2]))
    t = time.perf_counter()
    s = score_archive(tmp_path, tmp_path / "r.db", workers=workers, score_fn=hanging_score,
                      timeout=0.5)
    assert time.perf_counter() - t < 20
    rows = read_scores(tmp_path / "r.db")
    assert (s.n_scored, s.n_failed) == (2, 1)
    hang = rows[str(tmp_path / "hang.jpg")]
    assert hang["error_type"] == "Timeout" and "0.5 s timeout" in hang["error"]
    assert 0.5 <= hang["seconds"] < 5


def test_workers_are_recycled(tmp_path, astronaut):
    """Fresh worker processes every `recycle_after` photos each; nothing lost on the way."""
    (tmp_path / "a.jpg").write_bytes(_jpeg(astronaut[::4, ::4]))
    tasks = [Task(str(tmp_path / "a.jpg"), (("i", i),)) for i in range(13)]
    eng = _LocalEngine(pid_score, workers=2, recycle_after=2)
    try:
        out = list(eng.map_unordered(iter(tasks)))
    finally:
        eng.close()
    assert sorted(t.kwargs["i"] for t, _ in out) == list(range(13))
    assert all(r["status"] == "ok" for _, r in out)
    assert len({r["pid"] for _, r in out}) >= 4  # 13 photos, at most 4 per pool of 2 workers


def test_in_flight_work_is_bounded(tmp_path, astronaut):
    """The engine pulls at most max_in_flight tasks ahead of the results it has returned."""
    (tmp_path / "a.jpg").write_bytes(_jpeg(astronaut[::4, ::4]))
    pulled = []

    def tasks():
        for i in range(40):
            pulled.append(i)
            yield Task(str(tmp_path / "a.jpg"), (("i", i),))

    eng = _LocalEngine(mean_score, workers=2, max_in_flight=3)
    try:
        lead = []
        for n, _ in enumerate(eng.map_unordered(tasks()), start=1):
            lead.append(len(pulled) - n)
    finally:
        eng.close()
    assert len(pulled) == 40 and max(lead) <= 3


def test_workers_load_models_once_before_their_first_photo(tmp_path, astronaut):
    """The warm-up runs once per worker process, before its first photo, never per photo."""
    for i in range(10):
        (tmp_path / f"p{i}.jpg").write_bytes(_jpeg(astronaut[::4, ::4 + i % 2]))
    s = score_archive(tmp_path, tmp_path / "r.db", workers=2, score_fn=warm_score)
    rows = read_scores(tmp_path / "r.db").values()
    assert s.n_scored == 10 and {r["loads"] for r in rows} == {1}
    assert 1 <= len({r["pid"] for r in rows}) <= 2
    before = _LOADS.count(os.getpid())  # the inline engine warms this process, once per run
    score_archive(tmp_path, tmp_path / "inline.db", workers=0, score_fn=warm_score)
    assert {r["loads"] for r in read_scores(tmp_path / "inline.db").values()} == {before + 1}


def test_failing_warm_up_only_warns(tmp_path, astronaut):
    (tmp_path / "a.jpg").write_bytes(_jpeg(astronaut[::4, ::4]))
    with pytest.warns(RuntimeWarning, match="warm-up .*_broken_model failed .*model file missing"):
        s = score_archive(tmp_path, tmp_path / "r.db", workers=0, score_fn=cold_score)
    assert s.n_scored == 1
    s = score_archive(tmp_path, tmp_path / "l.db", workers=1, score_fn=cold_score)
    assert s.n_scored == 1  # the workers warned on their stderr and scored


def test_warm_measure_loads_without_error():
    """The default scorer's warm-up measures its synthetic skin patch (a failure would only
    warn in the workers: here it must not happen)."""
    assert batch_mod.score_photo.warm is batch_mod.warm_measure
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch_mod.warm_up(batch_mod.score_photo)


def _run_on_stdin(script: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python - <<EOF script EOF``: this checkout's photokit, the script from standard input."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=HERE.parent)


def test_workers_start_from_a_script_on_stdin_after_opencv_ran(tmp_path, astronaut):
    """A script piped to ``python -`` has no file a spawned worker could run again, so its
    workers are forked; once the script has run OpenCV on its thread pool they used to
    hang (the worker's ``cv2.setNumThreads`` waited for pool threads that were not forked)
    until the start timed out. The rows are those of a run from a script file."""
    for i in range(4):
        (tmp_path / "in" / f"p{i}.jpg").parent.mkdir(exist_ok=True)
        (tmp_path / "in" / f"p{i}.jpg").write_bytes(_jpeg(astronaut[::2 + i, ::2]))
    script = (
        "import time, cv2, numpy as np\n"
        "from photokit.batch.archive import decode_photo, score_archive\n"
        "if __name__ == '__main__':\n"
        "    cv2.setNumThreads(2)\n"  # a pool with threads, whatever the machine's cores
        "    a = np.random.default_rng(0).random((1500, 1500), dtype=np.float32)\n"
        "    for _ in range(3):\n"
        "        cv2.GaussianBlur(a, (31, 31), 5)\n"
        "    time.sleep(1)\n"  # its threads now wait for work (they spin a while after a job)
        f"    s = score_archive({str(tmp_path / 'in')!r}, {str(tmp_path / 'stdin.db')!r}, workers=2,\n"
        "                      score_fn=decode_photo, progress=False)\n"
        "    print(s.n_scored, s.n_failed, s.engine, s.workers, cv2.getNumThreads())\n")
    res = _run_on_stdin(script)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["4", "0", "local", "2", "2"]  # the script's OpenCV threads restored
    (tmp_path / "script.py").write_text(script.replace("stdin.db", "file.db"))
    subprocess.run([sys.executable, str(tmp_path / "script.py")], check=True, timeout=120,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    rows = {db: {os.path.basename(p): r for p, r in _comparable(tmp_path / db).items()}
            for db in ("stdin.db", "file.db")}
    assert rows["stdin.db"] == rows["file.db"] and len(rows["file.db"]) == 4


def test_spawned_workers_of_a_script_on_stdin_are_refused_with_the_reason(tmp_path, astronaut):
    """Workers started by spawn or a fork server would run ``<stdin>`` as a file and die:
    the run stops at once and says why, before any row is written."""
    (tmp_path / "a.jpg").write_bytes(_jpeg(astronaut[::4, ::4]))
    script = ("from photokit.errors import PhotokitError\n"
              "from photokit.batch.archive import decode_photo, score_archive\n"
              "try:\n"
              f"    score_archive({str(tmp_path)!r}, {str(tmp_path / 'r.db')!r}, workers=2,\n"
              "                  score_fn=decode_photo, mp_context='spawn')\n"
              "except PhotokitError as exc:\n"
              "    print(exc)\n")
    res = _run_on_stdin(script, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "no file (<stdin>: read from standard input)" in res.stdout
    assert "save it to a file" in res.stdout
    with sqlite3.connect(tmp_path / "r.db") as con:
        assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 0


def test_rows_are_group_committed_before_the_parent_waits(tmp_path, astronaut, monkeypatch):
    """Every row is committed by the end; rows that arrive while the parent is busy share a
    commit, never more than COMMIT_ROWS of them; a row is committed before the parent
    waits for the next one."""
    for i in range(12):
        (tmp_path / f"p{i:02d}.jpg").write_bytes(_jpeg(astronaut[::4, ::4]))
    monkeypatch.setattr(batch_mod, "COMMIT_ROWS", 3)
    groups, seen = [], [0]
    real_put, real_commit = batch_mod.ResultStore.put, batch_mod.ResultStore.commit

    def put(self, row, **kw):
        seen[0] += 1
        return real_put(self, row, **kw)

    def commit(self):
        groups.append(seen[0] - sum(groups))
        return real_commit(self)

    monkeypatch.setattr(batch_mod.ResultStore, "put", put)
    monkeypatch.setattr(batch_mod.ResultStore, "commit", commit)
    s = score_archive(tmp_path, tmp_path / "r.db", workers=2, score_fn=mean_score)
    assert s.n_scored == 12 and len(read_scores(tmp_path / "r.db")) == 12
    assert sum(groups) == 12 and max(groups) <= 3
    groups.clear()
    seen[0] = 0
    score_archive(tmp_path, tmp_path / "s.db", workers=0, score_fn=slow_score)
    assert groups == [1] * 12  # in-process scoring is the wait: each row is committed before it


# -- resume ---------------------------------------------------------------------------------------
def test_resume_skips_scored_retries_failed_and_rescores_changes(archive, tmp_path, monkeypatch):
    root, files = archive
    db = tmp_path / "r.db"
    first = score_archive(root, db, workers=0, score_fn=mean_score)
    before = read_scores(db)
    again = score_archive(root, db, workers=0, score_fn=mean_score)
    assert (again.n_skipped, again.n_scored, again.n_failed) == (6, 0, 4)  # failures retried
    after = read_scores(db)
    for p in files["good"]:
        assert after[p]["scored_at"] == before[p]["scored_at"]  # untouched
        assert after[p]["run_id"] == first.run_id
    # fix a broken file and change a good one: both re-scored, still one row each
    fixed, changed = files["broken"][0], files["good"][1]
    Image.open(files["good"][0]).convert("RGB").save(fixed, "PNG" if fixed.endswith(".png") else "JPEG")
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(changed, "JPEG")
    third = score_archive(root, db, workers=0, score_fn=mean_score)
    rows = read_scores(db)
    assert len(rows) == 10 and third.n_skipped == 5 and third.n_failed == 3
    assert rows[fixed]["status"] == "ok" and rows[fixed]["error"] is None
    assert rows[changed]["test.mean_r"] == pytest.approx(truth(changed)[0])
    assert rows[changed]["sha256"] == sha256_file(changed)[0]
    # another photokit version, or other parameters: everything re-scored
    monkeypatch.setattr(batch_mod, "__version__", "99.0")
    v = score_archive(root, db, workers=0, score_fn=mean_score)
    assert v.n_skipped == 0 and v.n_scored == 7
    assert {r["photokit_version"] for r in read_scores(db).values()} == {"99.0"}
    m = score_archive(root, db, workers=0, score_fn=mean_score, mm_per_px=0.1)
    assert m.n_skipped == 0 and len(read_scores(db)) == 10
    assert all(r["mm_per_px"] == 0.1 for r in read_scores(db).values() if r["status"] == "ok")
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM results").fetchone() == (10, 10)
    assert con.execute("SELECT COUNT(*) FROM runs WHERE status='finished'").fetchone()[0] == 5


def test_photos_gone_from_the_folder_are_counted_and_pruned_on_request(archive, tmp_path):
    """A deleted photo kept its row in the scores and the export, and nothing said so (QA,
    2026-12-08): a finished run counts such rows, and ``prune`` removes them."""
    root, files = archive
    db = tmp_path / "r.db"
    score_archive(root, db, workers=0, score_fn=mean_score)
    gone = files["good"][0]
    os.remove(gone)
    kept = score_archive(root, db, workers=0, score_fn=mean_score)
    assert kept.n_gone == 1 and not kept.pruned and gone in read_scores(db)
    assert "1 rows of photos no longer in the source kept (--prune removes them)" in kept.summary_line()
    # another folder's rows in the same database are not this folder's to judge
    other = tmp_path / "other"
    other.mkdir()
    Image.open(files["good"][1]).save(other / "x.png")
    assert score_archive(other, db, workers=0, score_fn=mean_score).n_gone == 0
    pruned = score_archive(root, db, workers=0, score_fn=mean_score, prune=True,
                           export=tmp_path / "s.csv")
    assert pruned.n_gone == 1 and pruned.pruned and "removed" in pruned.summary_line()
    rows = read_scores(db)
    assert gone not in rows and str(other / "x.png") in rows and len(rows) == 10
    assert gone not in (tmp_path / "s.csv").read_text()
    assert score_archive(root, db, workers=0, score_fn=mean_score).n_gone == 0
    res = CliRunner().invoke(cli, ["batch", str(root), "--db", str(db), "--workers", "0", "--prune",
                                   "--scorer", f"{mean_score.__module__}:mean_score"])
    assert res.exit_code == 3 and "no longer in the source" not in res.stderr


def test_manifest_duplicate_rows_give_one_row(tmp_path, astronaut):
    (tmp_path / "a.png").write_bytes(b"")
    Image.fromarray(astronaut[::2, ::2]).save(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("photo\na.png\na.png\nmissing.jpg\n")
    s = score_archive(tmp_path / "m.csv", tmp_path / "r.db", workers=0, score_fn=mean_score)
    rows = read_scores(tmp_path / "r.db")
    assert (s.n_total, s.n_scored, s.n_skipped, s.n_failed) == (3, 1, 1, 1)
    assert rows[str(tmp_path / "missing.jpg")]["error"] == "file not found"
    assert rows[str(tmp_path / "missing.jpg")]["sha256"] is None


# -- engines agree ----------------------------------------------------------------------------
def _comparable(db):
    drop = {"seconds", "scored_at", "run_id"}
    return {p: {k: v for k, v in r.items() if k not in drop} for p, r in read_scores(db).items()}


def test_dask_engine_equals_local_engine(archive, tmp_path):
    distributed = pytest.importorskip("distributed")
    root, _ = archive
    local = score_archive(root, tmp_path / "local.db", workers=2, score_fn=mean_score)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        dask = score_archive(root, tmp_path / "dask.db", engine="dask", scheduler=cluster,
                             score_fn=mean_score)
    assert dask.engine == "dask" and dask.workers == 2
    assert (dask.n_scored, dask.n_failed) == (local.n_scored, local.n_failed) == (6, 4)
    assert _comparable(tmp_path / "dask.db") == _comparable(tmp_path / "local.db")


def test_cli_dask_engine_with_scheduler_address(archive, tmp_path):
    distributed = pytest.importorskip("distributed")
    root, _ = archive
    score_archive(root, tmp_path / "local.db", workers=0, score_fn=mean_score)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        res = CliRunner().invoke(cli, ["batch", str(root), "--db", str(tmp_path / "dask.db"),
                                       "--engine", "dask", "--scheduler", cluster.scheduler_address,
                                       "--scorer", f"{mean_score.__module__}:mean_score"])
        assert cluster.scheduler.status.name == "running"  # the CLI does not close a cluster it joined
    assert res.exit_code == 3, res.output
    assert _comparable(tmp_path / "dask.db") == _comparable(tmp_path / "local.db")


def test_inline_engine_equals_local_engine(archive, tmp_path):
    root, _ = archive
    score_archive(root, tmp_path / "a.db", workers=0, score_fn=mean_score)
    score_archive(root, tmp_path / "b.db", workers=2, score_fn=mean_score)
    assert _comparable(tmp_path / "a.db") == _comparable(tmp_path / "b.db")


# -- summary, progress, CLI -------------------------------------------------------------------------
def test_summary_to_dict_and_frame(archive, tmp_path):
    pd = pytest.importorskip("pandas")
    root, _ = archive
    s = score_archive(root, tmp_path / "r.db", workers=0, score_fn=mean_score)
    d = s.to_dict()
    assert {k: d[k] for k in ("n_total", "n_scored", "n_skipped", "n_failed")} == \
        {"n_total": 10, "n_scored": 6, "n_skipped": 0, "n_failed": 4}
    assert d["db"] == str(tmp_path / "r.db") and d["elapsed"] > 0
    assert all(set(f) == {"path", "error"} for f in d["failures"])
    df = s.to_frame()
    assert isinstance(df, pd.DataFrame) and len(df) == 10 and "test.mean_r" in df.columns
    assert isinstance(BatchSummary(1, 1, 0, 0, "x", 1.0)._repr_html_(), str)


def test_progress_bar_on_stderr_only_when_asked(archive, tmp_path, capsys):
    root, _ = archive
    score_archive(root, tmp_path / "a.db", workers=0, score_fn=mean_score, progress=True)
    err = capsys.readouterr().err
    assert "photo/s" in err or "s/photo" in err
    assert "10/10" in err
    score_archive(root, tmp_path / "b.db", workers=0, score_fn=mean_score)  # stderr not a tty
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""


def test_cli_exit_codes_summary_and_export(archive, tmp_path):
    root, files = archive
    runner = CliRunner()
    args = ["batch", str(root), "--db", str(tmp_path / "r.db"), "--workers", "0",
            "--scorer", f"{mean_score.__module__}:mean_score", "--export", str(tmp_path / "s.parquet")]
    res = runner.invoke(cli, args)
    assert res.exit_code == 3, res.output
    assert "6 scored" in res.stderr and "4 failed" in res.stderr
    assert res.stderr.count("failed: ") == 4 and res.stdout == ""
    assert (tmp_path / "s.parquet").exists()
    # only good photos: exit 0
    good = tmp_path / "good"
    good.mkdir()
    for p in files["good"][:2]:
        (good / Path(p).name).write_bytes(Path(p).read_bytes())
    res = runner.invoke(cli, ["-q", "batch", str(good), "--db", str(tmp_path / "g.db"),
                              "--workers", "0", "--scorer", f"{mean_score.__module__}:mean_score"])
    assert res.exit_code == 0 and res.stderr == ""
    res = runner.invoke(cli, ["batch", str(good), "--db", str(tmp_path / "g.db"),
                              "--scorer", "nomodule"])
    assert res.exit_code == 2
    # an export format nobody writes is a usage error, found before a database is made
    res = runner.invoke(cli, ["batch", str(good), "--db", str(tmp_path / "x.db"),
                              "--export", str(tmp_path / "s.xlsx")])
    assert res.exit_code == 2 and "chosen by the extension" in res.stderr
    assert not (tmp_path / "x.db").exists()


# -- kill -9 in the middle of a run -----------------------------------------------------------
def test_kill_9_loses_nothing_committed_and_resumes(tmp_path, astronaut):
    src = tmp_path / "src"
    src.mkdir()
    n = 24
    for i in range(n):
        Image.fromarray(np.roll(astronaut[::2, ::2], 8 * i, axis=1)).save(src / f"{i:02d}.png")
    db = tmp_path / "r.db"
    cmd = [sys.executable, "-m", "photokit", "batch", str(src), "--db", str(db),
           "--workers", "2", "--scorer", f"{slow_score.__module__}:slow_score"]
    path = [str(HERE.parent), str(HERE), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        seen = 0
        while time.monotonic() < deadline and seen < 6:
            time.sleep(0.05)
            if db.exists():
                try:
                    with sqlite3.connect(db) as con:
                        seen = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
        with sqlite3.connect(db) as con:
            snapshot = {r[0]: r for r in con.execute("SELECT * FROM results")}
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run: parent and workers
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert 6 <= len(snapshot) < n
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    after_kill = {r[0]: r for r in con.execute("SELECT * FROM results")}
    con.close()
    for path, row in snapshot.items():  # nothing committed is lost or altered
        assert after_kill[path] == row
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"{len(after_kill)} skipped" in res.stderr
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM scores").fetchone() == (n, n)
    final = {r[0]: r for r in con.execute("SELECT * FROM results")}
    assert all(final[p] == row for p, row in after_kill.items())
    assert con.execute("SELECT status FROM runs ORDER BY id").fetchall() == [("running",), ("finished",)]
    con.close()


def _descendants(pid: int) -> list[int]:
    """Process ids under `pid` (Linux /proc; empty elsewhere)."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_promptly_and_keeps_committed_rows(tmp_path, astronaut, sig):
    """Ctrl-C, or SIGTERM (``kill``, a job scheduler), stops the run promptly: the rows
    received kept, the run recorded as interrupted, no worker left running."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(30):
        Image.fromarray(np.roll(astronaut[::2, ::2], 5 * i, axis=0)).save(src / f"{i:02d}.png")
    db = tmp_path / "r.db"
    cmd = [sys.executable, "-m", "photokit", "batch", str(src), "--db", str(db),
           "--workers", "2", "--scorer", f"{slow_score.__module__}:slow_score"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline, seen = time.monotonic() + 60, 0
    while time.monotonic() < deadline and seen < 4:
        time.sleep(0.05)
        try:
            with sqlite3.connect(db) as con:
                seen = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        except sqlite3.Error:
            pass
    workers = _descendants(proc.pid)
    assert workers or not Path("/proc").exists()
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
    assert time.monotonic() - t0 < 5  # does not wait for the whole archive
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)]
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n = con.execute("SELECT COUNT(*) FROM results WHERE status = 'ok'").fetchone()[0]
    assert 4 <= n < 30
    assert con.execute("SELECT status, n_scored FROM runs").fetchall() == [("interrupted", n)]


# -- end to end with photokit's own measure ----------------------------------------------------
def test_default_scorer_is_measure_end_to_end(tmp_path, astronaut):
    measure_mod = pytest.importorskip("photokit.measurement.measure")
    from photokit.metrics import names

    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "astronaut_q70.jpg").write_bytes(_jpeg(astronaut, 70))
    (tmp_path / "sub" / "broken.jpg").write_bytes(_jpeg(astronaut)[:3000])
    s = score_archive(tmp_path, tmp_path / "r.db", workers=2, export=tmp_path / "s.csv")
    rows = read_scores(tmp_path / "r.db")
    assert (s.n_total, s.n_failed) == (3, 1) and len(rows) == 3
    cols = next(iter(rows.values())).keys()
    assert set(names()) <= set(cols)
    header = (tmp_path / "s.csv").read_text().splitlines()[0].split(",")
    assert set(names()) <= set(header)
    for p in (tmp_path / "astronaut.png", tmp_path / "sub" / "astronaut_q70.jpg"):
        direct = measure_mod.measure(str(p)).metrics  # the batch row is measure's answer
        row = rows[str(p)]
        assert row["status"] == "ok", row["error"]
        for name in names():
            if direct.get(name) is None or not np.isfinite(direct[name]):
                assert row[name] is None
            else:
                assert row[name] == pytest.approx(direct[name], rel=1e-12, abs=1e-12)
    assert rows[str(tmp_path / "sub" / "broken.jpg")]["error"]


def test_score_photo_leaves_no_analysis_alive(tmp_path):
    """A worker's memory stays flat: the measurement's maps (held in reference cycles by
    cached results that name their analysis) are freed when its row is made, not at the
    next full collection (a worker grew to 2.9 GB in 24 photos of 12 MP without it)."""
    import gc

    from photokit.batch.archive import score_photo
    from photokit.metrics.analysis import Analysis
    from photokit.synth import render_skin

    p = tmp_path / "s.png"
    Image.fromarray(render_skin(seed=4, width=480, height=360).pixels).save(p)
    gc.collect()
    before = sum(isinstance(o, Analysis) for o in gc.get_objects())
    row = score_photo(str(p), mm_per_px=0.1)
    assert row["texture.roughness"] is not None
    assert sum(isinstance(o, Analysis) for o in gc.get_objects()) == before


def test_batch_of_chosen_metrics_scores_those_and_resumes(tmp_path):
    """--metrics: the rows hold the chosen metrics (and their zones) only, a large JPEG is
    decoded at the size they need, a re-run skips every photo, and an unknown name stops
    the run before it starts."""
    from photokit.batch.archive import score_archive
    from photokit.synth import render_skin

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(render_skin(seed=20 + i, width=3600, height=2700).pixels).save(
            photos / f"p{i}.jpg", quality=90)
    db = tmp_path / "c.db"
    chosen = ["redness.a_mean", "pigment.ita_mean"]
    first = score_archive(photos, db, workers=0, metrics=chosen, mm_per_px=0.07)
    assert (first.n_scored, first.n_failed) == (2, 0)
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        rows = con.execute("SELECT * FROM scores ORDER BY path").fetchall()
    for r in rows:
        assert r["redness.a_mean"] is not None and r["pigment.ita_mean"] is not None
        assert json.loads(r["metric_versions"]) == {"redness.a_mean": 1, "pigment.ita_mean": 1}
        assert "texture.roughness" not in r.keys() or r["texture.roughness"] is None
        assert r["decode_reduction"] == 2 and r["skin_pixels"] <= 1800 * 1350   # half size
    again = score_archive(photos, db, workers=0, metrics=chosen, mm_per_px=0.07)
    assert (again.n_scored, again.n_skipped) == (0, 2)
    with pytest.raises(PhotokitError, match="unknown metric"):
        score_archive(photos, db, workers=0, metrics=["redness.nonsense"])


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                    reason="glibc's mallopt")
def test_a_worker_keeps_freed_memory_for_the_next_photo():
    """Big blocks come from the heap and stay there when freed: a second 48 MB map (a 12 MP
    float map) reuses the pages of the first instead of faulting fresh ones in."""
    code = (
        "import resource, numpy as np\n"
        "from photokit.io.memory import keep_freed_memory\n"
        "assert keep_freed_memory()\n"
        "def faults():\n"
        "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "a = np.ones(12_000_000, np.float32); del a\n"
        "f0 = faults(); b = np.ones(12_000_000, np.float32); print(faults() - f0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) < 50        # hundreds when mapped afresh (500-1,000 here)


def test_the_run_puts_sigterm_back_as_it_found_it(tmp_path, astronaut):
    """The run's SIGTERM handler lives only as long as the run; a SIGTERM ignored on
    purpose (a host that wants it so) stays ignored."""
    from photokit.batch.archive import decode_photo

    Image.fromarray(astronaut[::4, ::4]).save(tmp_path / "a.png")
    before = signal.getsignal(signal.SIGTERM)
    score_archive(tmp_path, tmp_path / "r.db", workers=0, score_fn=decode_photo)
    assert signal.getsignal(signal.SIGTERM) == before
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        score_archive(tmp_path, tmp_path / "r2.db", workers=0, score_fn=decode_photo)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)
