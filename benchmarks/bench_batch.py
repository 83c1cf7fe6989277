"""Benchmark and acceptance run of ``photokit batch`` on real photos.

Sections (all on photos made from the real portraits in ``$PHOTOKIT_BENCH_DATA/faces``,
default ``../shared/data`` beside the repository; nothing is copied into the repository):

archive   nested folders of copies, rescaled and re-encoded variants, with broken files
          (empty, truncated JPEG, text named .jpg, random bytes named .png) and non-images
          mixed in: every input has exactly one row, failures carry reasons, the CSV and
          Parquet exports have the metric columns; a second run on the finished database,
          timed against the first (resume ratio).
kill      ``photokit batch`` in a subprocess, SIGKILL (parent and workers) once some rows
          exist, then run again: nothing committed lost or altered, nothing duplicated,
          ``PRAGMA integrity_check`` ok, results equal to an uninterrupted run.
dask      the same archive on a Dask ``LocalCluster`` (2 worker processes): rows identical
          to the local engine's.
speed     200 distinct 12 MP portraits (the real faces upscaled to 3000 x 4000 JPEG, each
          crop centred on the face, `make_12mp`): the decode-only loop over them (1
          process: the baseline every figure is a ratio to), a serial run (inline
          engine, 1 OpenCV thread) on the first 16, 8 of them just before and 8 just
          after the batch with 2 workers on all 200 (photos/s;
          pipeline efficiency = its rate over 2 x the serial rate; CPU efficiency = the
          serial CPU per photo over the CPU of the whole process tree per photo; rows of
          the 16 identical to the serial run's), and the batch with the decode-only
          scorer.
memory    peak RSS of the whole process tree (batch parent, fork server, workers; psutil
          every 50 ms) for 500 and 5,000 small photos (hard links of 40 distinct JPEGs)
          with the decode-only scorer through the real pipeline: flat means the
          5,000-photo peak is about the 500-photo peak.

Run: ``python benchmarks/bench_batch.py [--sections archive,kill,dask,speed,memory]
[--write-readme]`` (the table then also goes into benchmarks/README.md, between the
``bench_batch`` markers).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from photokit.batch import archive as batch
from photokit.batch.archive import score_archive
from photokit.io.photo import load

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import write_section  # noqa: E402

DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))
FACES = DATA / "faces"
WORKERS = 2
SCORER = "photokit.batch.archive:score_photo"  # --scorer


def scorer():
    module, name = SCORER.split(":")
    assert module == "photokit.batch.archive", "the benchmark scorers live in photokit.batch.archive"
    return getattr(batch, name)


def _rows(db) -> dict[str, dict]:
    con = sqlite3.connect(db)
    cur = con.execute("SELECT * FROM scores")
    cols = [d[0] for d in cur.description]
    out = {r[0]: dict(zip(cols, r, strict=True)) for r in cur}
    con.close()
    return out


def _comparable(rows: dict, root_from: str = "", root_to: str = "") -> dict:
    drop = {"seconds", "scored_at", "run_id"}
    return {p.replace(root_from, root_to, 1): {k: v for k, v in r.items() if k not in drop}
            for p, r in rows.items()}


def _same_row(a: dict, b: dict) -> bool:
    """Rows equal on their common columns, and blank in the columns only one has."""
    return (all(a[k] == b[k] for k in a.keys() & b.keys())
            and all(r[k] is None for r, other in ((a, b), (b, a)) for k in r.keys() - other.keys()))


def _jpeg(img: Image.Image, q: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------
def make_archive(root: Path) -> dict:
    faces = sorted(FACES.glob("*.jpg"))
    if not faces:
        sys.exit(f"no photos in {FACES} (set PHOTOKIT_BENCH_DATA)")
    good = []
    for f in faces:
        subj = root / f"subject_{f.stem}"
        im = Image.open(f).convert("RGB")
        w, h = im.size
        variants = {
            subj / "visit0" / f.name: f.read_bytes(),  # byte copy
            subj / "visit1" / "half.jpg": _jpeg(im.resize((w // 2, h // 2), Image.LANCZOS), 85),
            subj / "visit2" / "deep" / "three_quarter.png": None,
            subj / "visit3" / "q60.JPEG": _jpeg(im, 60),
        }
        for path, data in variants.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            if data is None:
                im.resize((w * 3 // 4, h * 3 // 4), Image.LANCZOS).save(path)
            else:
                path.write_bytes(data)
            good.append(str(path))
    src = faces[0].read_bytes()
    rng = np.random.default_rng(0)
    broken = {
        root / "broken" / "empty.jpg": b"",
        root / "broken" / "truncated.jpg": src[: len(src) // 2],
        root / "broken" / "notes_not_a_photo.jpg": b"patient notes, not a photo\n" * 20,
        root / "broken" / "random.png": rng.integers(0, 256, 20000, dtype=np.uint8).tobytes(),
    }
    for path, data in broken.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "README.txt").write_text("archive index, not an input")
    (root / "broken" / "Thumbs.db").write_bytes(b"\0" * 100)
    return {"good": sorted(good), "broken": sorted(map(str, broken))}


def section_archive(work: Path, results: list) -> dict:
    root = work / "archive"
    files = make_archive(root)
    n_in = len(files["good"]) + len(files["broken"])
    db = work / "archive.db"
    t = time.perf_counter()
    s1 = score_archive(root, db, workers=WORKERS, export=work / "scores.csv", score_fn=scorer())
    t1 = time.perf_counter() - t
    rows = _rows(db)
    from photokit.metrics import names

    try:
        metric_names = names()
    except ImportError as exc:  # a metric module missing: report it, do not hide it
        print(f"  (metric registry incomplete: {exc})")
        metric_names = []
    header = (work / "scores.csv").read_text().splitlines()[0].split(",")
    score_archive(root, db, workers=WORKERS, export=work / "scores.parquet", score_fn=scorer())
    import pyarrow.parquet as pq

    pq_cols = pq.read_schema(work / "scores.parquet").names
    t = time.perf_counter()
    s2 = score_archive(root, db, workers=WORKERS, score_fn=scorer())
    t2 = time.perf_counter() - t
    con = sqlite3.connect(db)
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    n_rows, n_distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM scores").fetchone()
    con.close()
    print(f"\n[archive] {n_in} inputs ({len(files['good'])} real-photo variants, "
          f"{len(files['broken'])} broken) + 2 non-image files under {root}")
    print(f"  rows {n_rows} (distinct paths {n_distinct}); ok {s1.n_scored}, failed {s1.n_failed}; "
          f"integrity {integrity}")
    for p, r in sorted(rows.items()):
        if r["status"] == "failed":
            print(f"  failed  {os.path.relpath(p, root)}: {r['error']}")
    missing_csv = [m for m in metric_names if m not in header]
    missing_pq = [m for m in metric_names if m not in pq_cols]
    print(f"  export: CSV {len(header)} columns, Parquet {len(pq_cols)} columns; metric columns "
          f"{len(metric_names)}, missing from CSV {missing_csv}, from Parquet {missing_pq}")
    print(f"  first run {t1:.2f} s ({s1.n_scored + s1.n_failed} scored), second run on the finished "
          f"DB {t2:.2f} s ({s2.n_skipped} skipped, {s2.n_failed} failures retried): "
          f"ratio {t2 / t1:.3f}")
    results.append(("archive rows / inputs", f"{n_rows} / {n_in}", "one row per input"))
    results.append(("archive failed rows (all with reason)", f"{s1.n_failed}",
                    f"{len(files['broken'])} broken files planted"))
    results.append(("resume: second run / first run", f"{t2 / t1:.3f}", f"{t2:.2f} s / {t1:.2f} s"))
    return {"root": root, "db": db, "n": n_in, "rows": rows}


def section_kill(work: Path, arch: dict, results: list) -> None:
    root, n = arch["root"], arch["n"]
    db = work / "killed.db"
    cmd = [sys.executable, "-m", "photokit", "batch", str(root), "--db", str(db),
           "--workers", str(WORKERS), "--scorer", SCORER]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    target = max(3, n // 3)
    seen, t0 = 0, time.monotonic()
    while seen < target and time.monotonic() - t0 < 600 and proc.poll() is None:
        time.sleep(0.05)
        try:
            with sqlite3.connect(db) as con:
                seen = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        except sqlite3.Error:
            pass
    with sqlite3.connect(db) as con:
        snapshot = {r[0]: r for r in con.execute("SELECT * FROM results")}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    con = sqlite3.connect(db)
    integ1 = con.execute("PRAGMA integrity_check").fetchone()[0]
    after = {r[0]: r for r in con.execute("SELECT * FROM results")}
    con.close()
    lost = [p for p in snapshot if after.get(p) != snapshot[p]]
    res = subprocess.run(cmd, capture_output=True, text=True)
    con = sqlite3.connect(db)
    integ2 = con.execute("PRAGMA integrity_check").fetchone()[0]
    n_rows, n_distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM scores").fetchone()
    final = {r[0]: r for r in con.execute("SELECT * FROM results")}
    con.close()
    altered = [p for p in after if final[p] != after[p] and after[p][2] == "ok"]
    same = _comparable(_rows(db)) == _comparable(arch["rows"])
    print(f"\n[kill -9] killed with {len(snapshot)} rows seen ({len(after)} committed at the kill, "
          f"of {n}); exit {proc.returncode}")
    print(f"  after kill: integrity {integ1}, committed rows lost or altered {len(lost)}")
    summary = next((ln for ln in res.stderr.splitlines() if " photos: " in ln), res.stderr[-300:])
    print(f"  re-run: exit {res.returncode}; {summary.strip()}")
    print(f"  final: rows {n_rows}, distinct {n_distinct}, integrity {integ2}, ok rows from before "
          f"the kill re-written {len(altered)}, equal to the uninterrupted run: {same}")
    results.append(("kill -9 then resume: rows / distinct / lost", f"{n_rows} / {n_distinct} / "
                    f"{len(lost)}", f"integrity {integ2}; equal to clean run: {same}"))


def section_dask(work: Path, arch: dict, results: list) -> None:
    from distributed import LocalCluster

    db = work / "dask.db"
    t = time.perf_counter()
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        s = score_archive(arch["root"], db, engine="dask", scheduler=cluster, score_fn=scorer())
    td = time.perf_counter() - t
    a, b = _comparable(_rows(db)), _comparable(arch["rows"])
    diff = [p for p in a if a[p] != b.get(p)]
    print(f"\n[dask] LocalCluster {WORKERS} processes: {s.n_scored} ok, {s.n_failed} failed in "
          f"{td:.1f} s (cluster start included); rows identical to local: {not diff and a.keys() == b.keys()}"
          f" ({len(diff)} differ)")
    results.append(("dask rows == local rows", str(not diff and a.keys() == b.keys()),
                    f"{len(a)} rows compared, all columns but timing"))


#: The environment this script started with. The dask section's LocalCluster sets
#: variables in this process's environment for its workers (MALLOC_TRIM_THRESHOLD_=65536
#: among them); a batch started after it with that environment scored 40 portraits at
#: 0.80 photos/s instead of 1.32 (its workers' 12 MP arrays trimmed and faulted back on
#: every photo), so the timed batches run in the environment of the start.
START_ENV = dict(os.environ)


def make_12mp(folder: Path, n: int) -> list[str]:
    """`n` distinct 12 MP portraits (3000 x 4000 JPEG, quality 90): the real faces upscaled,
    each with its own crop, centred on the face (a few % off, varied) and, every other one,
    mirrored. Kept when already made.

    Until 2026-12-08 the crops were centred at 45 % of the height whatever the face: on
    the tallest source (biden.jpg, 970 x 2204) that cut the face off, so 34 of the 200
    "portraits" were torsos without a face, measured at a relative scale over a
    skin-coloured curtain (about 3 s of CPU each against 0.7-0.9 s with the face).
    """
    from photokit.faces.mesh import find_faces

    faces = sorted(FACES.glob("*.jpg"))
    folder.mkdir(parents=True, exist_ok=True)
    centres: dict = {}
    out = []
    for i in range(n):
        p = folder / f"portrait_{i:03d}.jpg"
        if not p.exists():
            src = Image.open(faces[i % len(faces)]).convert("RGB")
            if i % len(faces) not in centres:   # the face's centre, as a share of the source
                found = find_faces(np.asarray(src), max_faces=1)
                x0, y0, x1, y1 = found[0].box if found else (0, 0, src.width, src.height)
                centres[i % len(faces)] = ((x0 + x1) / 2 / src.width, (y0 + y1) / 2 / src.height)
            cx, cy = centres[i % len(faces)]
            k = i // len(faces)
            img = ImageOps.fit(src, (3000, 4000), Image.BICUBIC,
                               centering=(min(1.0, max(0.0, cx + 0.01 * (k % 5 - 2))),
                                          min(1.0, max(0.0, cy + 0.01 * (k % 7 - 3)))))
            if k % 2:
                img = ImageOps.mirror(img)
            img.save(p, "JPEG", quality=90)
        out.append(str(p))
    return out


def _steady_rate(db) -> float:
    """Photos/s between the first and the last committed row (pool start-up excluded)."""
    from datetime import datetime

    con = sqlite3.connect(db)
    stamps = sorted(datetime.fromisoformat(r[0]) for r in con.execute("SELECT scored_at FROM results"))
    con.close()
    span = (stamps[-1] - stamps[0]).total_seconds()
    return (len(stamps) - 1) / span if span > 0 else float("nan")


def _fresh(db: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    return db


def run_tree(code: str) -> tuple[str, dict]:
    """Run ``python -c code`` and sample its whole process tree (the batch parent, the fork
    server, the workers) every 50 ms with psutil.

    Returns its stdout and ``{"parent", "worker", "total"}`` peak RSS in bytes (``total``:
    the largest sum over the tree at one instant) and ``cpu``: user + system CPU seconds of
    every process of the tree (each process's last sample; a worker's last < 50 ms are lost).
    """
    import psutil

    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=START_ENV)
    peak = {"parent": 0, "worker": 0, "total": 0}
    cpu: dict[int, float] = {}
    stop = threading.Event()

    def sample():
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            total = 0
            for p in procs:
                try:
                    with p.oneshot():
                        rss = p.memory_info().rss
                        t = p.cpu_times()
                except psutil.Error:
                    continue
                cpu[p.pid] = t.user + t.system
                total += rss
                key = "parent" if p.pid == proc.pid else "worker"
                peak[key] = max(peak[key], rss)
            peak["total"] = max(peak["total"], total)
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, _ = proc.communicate()
    stop.set()
    th.join()
    if proc.returncode:
        sys.exit(f"batch subprocess failed with exit code {proc.returncode}")
    return out, {**peak, "cpu": sum(cpu.values())}


def _batch_code(source, db, scorer_name: str) -> str:
    return ("from photokit.batch.archive import score_archive, " + scorer_name + " as fn; "
            f"s = score_archive({str(source)!r}, {str(db)!r}, workers={WORKERS}, score_fn=fn, "
            "progress=False); print(s.n_scored, s.n_failed, s.elapsed)")


def _serial(work: Path, files: list[str], tag: str) -> tuple[dict, float, float, float]:
    """The serial reference on `files`: the inline engine in this process, OpenCV on 1
    thread as in each worker. Returns its rows, CPU seconds per photo of this process
    (every thread), the mean ``seconds`` per photo (scoring only, no warm-up) and the
    cores it had (CPU seconds over wall seconds of the run)."""
    import cv2

    manifest = work / f"serial_{tag}.csv"
    manifest.write_text("photo\n" + "".join(f"{f}\n" for f in files))
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    c0, t0 = time.process_time(), time.perf_counter()
    score_archive(manifest, _fresh(work / f"serial_{tag}.db"), workers=0, score_fn=scorer(),
                  progress=False)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    cv2.setNumThreads(threads)
    rows = _rows(work / f"serial_{tag}.db")
    return rows, cpu / len(files), float(np.mean([r["seconds"] for r in rows.values()])), cpu / wall


def section_speed(work: Path, n: int, n_serial: int, results: list) -> None:
    """12 MP portraits: the decode-only loop (the baseline), the serial reference (the
    inline engine, 1 OpenCV thread as each worker has) on the first `n_serial`, half of
    them just before and half just after the batch with `WORKERS` workers on all `n` (the
    machine is shared: its load drifts, and the two halves bracket the batch), and the
    batch with the decode-only scorer.

    Pipeline efficiency is the batch's rate over `WORKERS` times the serial rate, with the
    batch's rate over the whole run (pool start and warm-up included) and between its
    first and last row (steady); CPU efficiency is the serial CPU per photo over the CPU
    of the batch's whole process tree per photo (parent, fork server, workers; their start
    and warm-up included): it does not depend on how many cores other jobs leave free.
    The pipeline efficiency does: Linux shares the cores between sessions (autogroups),
    not processes, so while other sessions are busy the batch's workers together get
    about the cores the serial run got; it is then about the CPU efficiency times the
    batch's cores over `WORKERS` times the serial run's cores (CPU seconds over wall
    seconds, both printed).
    """
    t = time.perf_counter()
    files = make_12mp(work / "12mp", n)
    made = time.perf_counter() - t
    im = Image.open(files[0])
    t = time.perf_counter()
    for f in files:
        load(f)
    dec = n / (time.perf_counter() - t)
    name = SCORER.split(":")[1]
    half = max(1, n_serial // 2)
    rows_a, cpu_a, t_a, cores_a = _serial(work, files[:half], "before")
    out, tree = run_tree(_batch_code(work / "12mp", _fresh(work / "batch.db"), name))
    rows_b, cpu_b, t_b, cores_b = _serial(work, files[half:n_serial] or files[:1], "after")
    n_ok, n_fail, elapsed = out.split()
    rate = n / float(elapsed)
    steady = _steady_rate(work / "batch.db")
    ser_rows = {**rows_a, **rows_b}
    t_ser, cpu_ser = (t_a + t_b) / 2, (cpu_a + cpu_b) / 2
    batch_rows = _rows(work / "batch.db")
    a, b = _comparable(ser_rows), _comparable({p: batch_rows[p] for p in ser_rows})
    # a database has a column for every zone any of its photos has: a photo without a
    # face has no zone columns in a small serial database and blank ones in the batch's
    same = sum(_same_row(a[p], b[p]) for p in a)
    worker_s = float(np.mean([r["seconds"] for r in batch_rows.values()]))
    out, tree_dec = run_tree(_batch_code(work / "12mp", _fresh(work / "dec.db"), "decode_photo"))
    rate_dec = n / float(out.split()[2])
    ideal = WORKERS / t_ser
    cpu_eff = cpu_ser / (tree["cpu"] / n)
    cores = tree["cpu"] / float(elapsed)
    print(f"\n[speed] {n} portraits of {im.width}x{im.height} ({im.width * im.height / 1e6:.1f} MP "
          f"JPEG, made in {made:.0f} s); {WORKERS} workers; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores (shared machine)")
    print(f"  decode-only loop, 1 process:          {dec:6.2f} photos/s (the baseline)")
    print(f"  serial {name} (inline, 1 OpenCV thread), {len(ser_rows)} photos: {1 / t_ser:6.2f} photos/s "
          f"({t_ser:.2f} s per photo = {dec * t_ser:.1f} decodes; CPU {cpu_ser:.2f} s per photo); "
          f"before the batch {1 / t_a:.2f}/s (CPU {cpu_a:.2f} s), after it {1 / t_b:.2f}/s "
          f"(CPU {cpu_b:.2f} s)")
    print(f"  batch {name}, {WORKERS} workers:      {rate:6.2f} photos/s wall ({rate / dec:.3f} x "
          f"the decode loop), {steady:.2f}/s between first and last row; {n_ok} ok, {n_fail} failed")
    print(f"    pipeline efficiency: {rate:.2f} / ({WORKERS} x {1 / t_ser:.2f}) = {rate / ideal:.2f} "
          f"(steady {steady / ideal:.2f}); per photo in a worker {worker_s:.2f} s vs serial {t_ser:.2f} s")
    print(f"    CPU efficiency: serial {cpu_ser:.2f} s per photo / whole tree {tree['cpu'] / n:.2f} s per "
          f"photo = {cpu_eff:.2f}; cores had (CPU / wall): batch {cores:.2f}, serial {cores_a:.2f} "
          f"before and {cores_b:.2f} after (other jobs' share of the {os.cpu_count()} cores: the "
          f"scheduler shares cores between sessions, not processes)")
    print(f"    rows identical to the serial run: {same} of {len(a)}; peak RSS tree "
          f"{tree['total'] / 2**20:.0f} MB (largest worker {tree['worker'] / 2**20:.0f} MB)")
    print(f"  batch decode-only, {WORKERS} workers:  {rate_dec:6.2f} photos/s ({rate_dec / dec:.2f} x the "
          f"decode loop; CPU of the tree {tree_dec['cpu'] / n * 1e3:.0f} ms per photo vs "
          f"{1e3 / dec:.0f} ms wall per decode)")
    results.append(("decode-only loop, 12 MP (baseline)", f"{dec:.2f} photos/s", "1 process"))
    results.append((f"serial {name}, 12 MP, 1 OpenCV thread", f"{1 / t_ser:.2f} photos/s",
                    f"{dec * t_ser:.1f} decodes per photo; {len(ser_rows)} photos, half before and "
                    f"half after the batch ({1 / t_a:.2f} and {1 / t_b:.2f}/s)"))
    results.append((f"batch {name}, {n} x 12 MP, {WORKERS} workers (target >= 4)", f"{rate:.2f} photos/s",
                    f"{rate / dec:.3f} x decode loop; steady {steady:.2f}/s"))
    results.append(("pipeline efficiency (batch / workers x serial)", f"{rate / ideal:.2f}",
                    f"steady {steady / ideal:.2f}"))
    results.append(("CPU efficiency (serial CPU / tree CPU per photo)", f"{cpu_eff:.2f}",
                    f"{cpu_ser:.2f} s / {tree['cpu'] / n:.2f} s; cores had: batch {cores:.2f}, "
                    f"serial {(cores_a + cores_b) / 2:.2f}"))
    results.append(("rows identical to serial run", f"{same} / {len(a)}", "all columns but timing"))
    results.append((f"batch decode-only, 12 MP, {WORKERS} workers", f"{rate_dec:.2f} photos/s",
                    f"{rate_dec / dec:.2f} x decode loop"))


def make_small(folder: Path, n: int) -> None:
    """`n` inputs in folders of 100: 40 distinct small JPEGs (440 x 560 crops of the real
    faces), hard-linked under distinct names (no disk cost beyond the 40)."""
    folder.mkdir(parents=True, exist_ok=True)
    faces = [Image.open(f).convert("RGB") for f in sorted(FACES.glob("*.jpg"))]
    faces = [f.resize((480, round(480 * f.height / f.width)), Image.LANCZOS) for f in faces]
    distinct = []
    for i in range(40):
        f = faces[i % len(faces)]
        dx = i // len(faces)
        p = folder / f"distinct_{i:02d}.jpeg"
        f.crop((dx, 0, dx + 440, min(f.height, 560))).save(p, "JPEG", quality=85)
        distinct.append(p)
    for i in range(n):
        sub = folder / f"batch{i // 100:03d}"
        sub.mkdir(exist_ok=True)
        os.link(distinct[i % len(distinct)], sub / f"s{i:05d}.jpg")
    for p in distinct:  # not inputs themselves
        p.unlink()


def section_memory(work: Path, counts: list[int], scorer_name: str, results: list) -> None:
    try:
        import psutil  # noqa: F401
    except ImportError:
        print("\n[memory] skipped: psutil is not installed")
        return
    print(f"\n[memory] small photos (440x560 JPEG, hard links), {WORKERS} workers, scorer "
          f"{scorer_name}; RSS of the whole process tree sampled every 50 ms")
    peaks = {}
    for n in counts:
        folder = work / f"small{n}"
        if not folder.exists():
            make_small(folder, n)
        files = [str(p) for p in sorted(folder.rglob("*.jpg"))[:500]]
        t = time.perf_counter()
        for f in files:
            load(f)
        dec = len(files) / (time.perf_counter() - t)
        out, peak = run_tree(_batch_code(folder, _fresh(work / f"mem{n}.db"), scorer_name))
        n_ok, n_fail, elapsed = out.split()
        peaks[n] = peak
        mb = {k: v / 2**20 for k, v in peak.items() if k != "cpu"}
        rate = n / float(elapsed)
        print(f"  {n:5d} photos: {n_ok} ok, {n_fail} failed in {float(elapsed):.1f} s ({rate:.0f} "
              f"photos/s = {rate / dec:.2f} x the decode-only loop's {dec:.0f}/s); peak RSS parent "
              f"{mb['parent']:.0f} MB, largest worker {mb['worker']:.0f} MB, whole tree {mb['total']:.0f} MB")
    if len(counts) >= 2:
        lo, hi = peaks[counts[0]]["total"], peaks[counts[-1]]["total"]
        print(f"  peak tree RSS {counts[-1]} / {counts[0]} photos: {hi / lo:.2f}")
        results.append((f"peak RSS of the tree, {counts[-1]} vs {counts[0]} photos",
                        f"{hi / 2**20:.0f} / {lo / 2**20:.0f} MB", f"ratio {hi / lo:.2f} ({scorer_name})"))


def write_readme(table: str, command: str) -> None:
    """The bench_batch section of benchmarks/README.md (`speed.write_section`)."""
    write_section("bench_batch", f"### batch (`{command}`, {time.strftime('%Y-%m-%d')}; "
                                 f"{os.cpu_count()} cores shared with other jobs: ratios are within "
                                 f"one run)\n\n{table}")


def main() -> None:
    global SCORER
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="archive,kill,dask,speed,memory")
    ap.add_argument("--n12mp", type=int, default=200, help="12 MP portraits for the speed section")
    ap.add_argument("--serial", type=int, default=16, help="of them, scored by the serial run")
    ap.add_argument("--memory", default="500,5000", help="photo counts for the memory section")
    ap.add_argument("--memory-scorer", default="decode_photo",
                    help="scorer of the memory section (a photokit.batch.archive function)")
    ap.add_argument("--scorer", default="photokit.batch.archive:score_photo",
                    help="photokit.batch.archive:score_photo (measure) or ...:decode_photo (decode only)")
    ap.add_argument("--workdir", default=None, help="keep the generated files here")
    ap.add_argument("--write-readme", action="store_true",
                    help="write the table into benchmarks/README.md (between its bench_batch markers)")
    args = ap.parse_args()
    SCORER = args.scorer
    sections = set(args.sections.split(","))
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_batch_"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, str, str]] = []
    print(f"photokit batch benchmark; data {DATA}; work {work}; {os.cpu_count()} cores, "
          f"{WORKERS} workers; scorer {SCORER}")
    try:
        arch = None
        if sections & {"archive", "kill", "dask"}:
            arch = section_archive(work, results)
        if "kill" in sections:
            section_kill(work, arch, results)
        if "dask" in sections:
            section_dask(work, arch, results)
        if "speed" in sections:
            section_speed(work, args.n12mp, min(args.serial, args.n12mp), results)
        if "memory" in sections:
            counts = [int(c) for c in args.memory.split(",")]
            section_memory(work, counts, args.memory_scorer.split(":")[-1], results)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    table = "| measure | value | baseline / note |\n|---|---|---|\n" + "".join(
        f"| {name} | {value} | {note} |\n" for name, value, note in results)
    print("\n" + table)
    if args.write_readme:
        command = "python benchmarks/bench_batch.py " + " ".join(
            a for a in sys.argv[1:] if a != "--write-readme")
        write_readme(table, command.strip())
        print("written to benchmarks/README.md")


if __name__ == "__main__":
    main()
