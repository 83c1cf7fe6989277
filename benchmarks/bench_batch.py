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
speed     12 MP JPEGs (a real portrait upscaled): photos/s of the batch with 2 workers,
          next to a decode-only loop over the same files (1 process) and the batch with a
          decode-only scorer (2 workers) in the same run.
memory    peak RSS (parent, workers, total; sampled with psutil) for 100 and 1,000 small
          photos: flat means the 1,000-photo peak is about the 100-photo peak.

Run: ``python benchmarks/bench_batch.py [--sections archive,kill,dask,speed,memory]``.
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
from PIL import Image

from photokit.batch import archive as batch
from photokit.batch.archive import decode_photo, score_archive
from photokit.io.photo import load

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


def make_12mp(folder: Path, n: int) -> list[str]:
    src = Image.open(FACES / "obama3.jpg").convert("RGB")
    w, h = src.size
    scale = (12e6 / (w * h)) ** 0.5
    big = src.resize((round(w * scale), round(h * scale)), Image.BICUBIC)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = big.rotate(0.5 * i, resample=Image.BILINEAR) if i else big  # distinct photos
        p = folder / f"p{i:02d}.jpg"
        img.save(p, "JPEG", quality=92)
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


def section_speed(work: Path, n: int, results: list) -> None:
    files = make_12mp(work / "12mp", n)
    im = Image.open(files[0])
    mp = im.width * im.height / 1e6
    t = time.perf_counter()
    for f in files:
        load(f)
    dec = n / (time.perf_counter() - t)
    fn = scorer()
    t = time.perf_counter()
    for f in files:
        fn(f)
    loop = n / (time.perf_counter() - t)
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # what each batch worker runs with (cores // workers threads)
    t = time.perf_counter()
    for f in files:
        fn(f)
    loop1 = n / (time.perf_counter() - t)
    cv2.setNumThreads(threads)
    for name in ("dec.db", "meas.db"):
        for suffix in ("", "-wal", "-shm"):
            Path(str(work / name) + suffix).unlink(missing_ok=True)
    s_dec = score_archive(work / "12mp", work / "dec.db", workers=WORKERS, score_fn=decode_photo)
    s_meas = score_archive(work / "12mp", work / "meas.db", workers=WORKERS, score_fn=fn)
    fails = s_meas.n_failed
    r_dec2, r_meas = s_dec.photos_per_second, s_meas.photos_per_second
    st_dec2, st_meas = _steady_rate(work / "dec.db"), _steady_rate(work / "meas.db")
    print(f"\n[speed] {n} JPEGs of {im.width}x{im.height} ({mp:.1f} MP); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")
    print(f"  decode-only loop, 1 process:           {dec:6.2f} photos/s (baseline)")
    name = SCORER.split(":")[1]
    print(f"  {name} loop, 1 process:            {loop:6.2f} photos/s ({loop / dec:.3f} x baseline; "
          f"OpenCV {threads} threads)")
    print(f"  {name} loop, 1 process, 1 thread:  {loop1:6.2f} photos/s ({loop1 / dec:.3f} x baseline)")
    print(f"  batch, decode-only scorer, {WORKERS} workers:  {r_dec2:6.2f} photos/s wall "
          f"({r_dec2 / dec:.2f} x baseline); {st_dec2:.2f}/s between first and last row")
    print(f"  batch, {SCORER.split(':')[1]}, {WORKERS} workers:          {r_meas:6.2f} photos/s wall "
          f"({r_meas / dec:.3f} x baseline, {r_meas / loop:.2f} x the 1-process loop); "
          f"{st_meas:.2f}/s between first and last row{f'; {fails} failed' if fails else ''}")
    results.append((f"12 MP photos/s: batch {SCORER.split(':')[1]} ({WORKERS} workers)", f"{r_meas:.2f}",
                    f"decode loop {dec:.2f}/s (ratio {r_meas / dec:.3f}); 1-process loop {loop:.2f}/s "
                    f"(x{r_meas / loop:.2f}), 1-thread loop {loop1:.2f}/s (x{r_meas / loop1:.2f})"))
    results.append((f"12 MP photos/s: batch decode-only ({WORKERS} workers)", f"{r_dec2:.2f}",
                    f"ratio to 1-process decode loop {r_dec2 / dec:.2f} (steady {st_dec2:.2f}/s)"))


def make_small(folder: Path, n: int) -> None:
    faces = [Image.open(f).convert("RGB") for f in sorted(FACES.glob("*.jpg"))]
    faces = [f.resize((480, round(480 * f.height / f.width)), Image.LANCZOS) for f in faces]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        f = faces[i % len(faces)]
        sub = folder / f"batch{i // 100:02d}"
        sub.mkdir(exist_ok=True)
        dx = (i // len(faces)) % 40
        f.crop((dx, 0, dx + 440, min(f.height, 560))).save(sub / f"s{i:05d}.jpg", quality=85)


def _tree_rss(pid: int):
    import psutil

    try:
        p = psutil.Process(pid)
        kids = p.children(recursive=True)
        parent = p.memory_info().rss
        workers = []
        for k in kids:
            try:
                workers.append(k.memory_info().rss)
            except psutil.Error:
                pass
        return parent, workers
    except psutil.Error:
        return None


def section_memory(work: Path, counts: list[int], scorer: str, results: list) -> None:
    try:
        import psutil  # noqa: F401
    except ImportError:
        print("\n[memory] skipped: psutil is not installed")
        return
    print(f"\n[memory] small photos (440x560 JPEG), {WORKERS} workers, scorer {scorer}; RSS sampled "
          "every 50 ms")
    peaks = {}
    for n in counts:
        folder = work / f"small{n}"
        make_small(folder, n)
        db = work / f"mem{n}.db"
        code = ("import sys; from photokit.batch.archive import score_archive, " + scorer.split(":")[1] +
                f" as fn; s = score_archive({str(folder)!r}, {str(db)!r}, workers={WORKERS}, "
                "score_fn=fn, progress=False); print(s.n_scored, s.n_failed, s.elapsed)")
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        peak = {"parent": 0, "worker": 0, "total": 0}
        stop = threading.Event()

        def sample(pid=proc.pid, peak=peak, stop=stop):
            while not stop.is_set():
                got = _tree_rss(pid)
                if got:
                    parent, workers = got
                    peak["parent"] = max(peak["parent"], parent)
                    peak["worker"] = max([peak["worker"], *workers])
                    peak["total"] = max(peak["total"], parent + sum(workers))
                time.sleep(0.05)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        out, _ = proc.communicate()
        stop.set()
        th.join()
        n_ok, n_fail, elapsed = out.split()
        peaks[n] = peak
        mb = {k: v / 2**20 for k, v in peak.items()}
        print(f"  {n:5d} photos: {n_ok} ok, {n_fail} failed in {float(elapsed):.1f} s; peak RSS parent "
              f"{mb['parent']:.0f} MB, largest worker {mb['worker']:.0f} MB, whole tree {mb['total']:.0f} MB "
              "(incl. the fork server)")
    if len(counts) >= 2:
        lo, hi = peaks[counts[0]]["total"], peaks[counts[-1]]["total"]
        print(f"  peak total {counts[-1]} / {counts[0]} photos: {hi / lo:.2f}")
        results.append((f"peak RSS, {counts[-1]} photos (tree)", f"{hi / 2**20:.0f} MB",
                        f"{counts[0]} photos: {lo / 2**20:.0f} MB; ratio {hi / lo:.2f}"))


def main() -> None:
    global SCORER
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="archive,kill,dask,speed,memory")
    ap.add_argument("--n12mp", type=int, default=8, help="12 MP photos for the speed section")
    ap.add_argument("--memory", default="100,1000", help="photo counts for the memory section")
    ap.add_argument("--memory-scorer", default=None, help="default: --scorer")
    ap.add_argument("--scorer", default="photokit.batch.archive:score_photo",
                    help="photokit.batch.archive:score_photo (measure) or ...:decode_photo (decode only)")
    ap.add_argument("--workdir", default=None, help="keep the generated files here")
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
            section_speed(work, args.n12mp, results)
        if "memory" in sections:
            counts = [int(c) for c in args.memory.split(",")]
            section_memory(work, counts, args.memory_scorer or SCORER, results)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print("\n| measure | value | baseline / note |\n|---|---|---|")
    for name, value, note in results:
        print(f"| {name} | {value} | {note} |")


if __name__ == "__main__":
    main()
