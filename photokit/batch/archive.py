"""Scoring photo archives: ``score_archive(source, db=...)`` and ``photokit batch``.

The pipeline streams; nothing grows with the archive::

    list source (folder walk | manifest rows)          parent, a generator
      -> sha256 of the file, look up (path) in the store  parent
      -> skip when scored with the same content, photokit version and parameters
      -> score_fn(path, **params) in a warm worker        local processes or Dask
      -> rows, group-committed                            parent (the only writer)

At most ``max_in_flight`` photos are submitted and not yet written (default: twice the
number of workers), so memory is flat however large the archive: reading, decoding and
scoring of the next photos go on in the workers while the parent writes the rows of the
last ones. Workers stay warm: each loads its models once, when it starts (the scoring
function's ``warm``, `warm_measure` for the default one), and runs OpenCV on its share of
the cores (``cv2.setNumThreads``), so that workers do not oversubscribe the machine. The
parent commits the rows it holds whenever it is about to wait for a worker, and at least
every `COMMIT_ROWS` rows (one ``fsync`` for a burst of rows, `photokit.batch.store`), so a
crash loses at most the photos in flight and the rows of the burst being written.

A photo whose scoring raises (a broken file is a `PhotokitError`; a bug anything else)
becomes a ``failed`` row with the reason; a worker process that dies
(segfault, out-of-memory kill) breaks the local pool, which is rebuilt and the photos
that were in flight are re-run one at a time, so the photo that kills a worker on its own
is the one recorded as failed and the others are scored normally. Local workers are
replaced by fresh processes every `RECYCLE_AFTER` photos each, so memory a scoring
function leaks or fragments cannot accumulate over a long archive.

Resume rule: a photo is skipped when its row has status ``ok`` and the same ``sha256``,
``photokit_version`` and ``params``, and (for the default scoring) holds every registered
metric at its version (``metric_versions``, `photokit.metrics.registry.signature`). A row that
lacks only some metrics (a plugin added one, or a metric's version was bumped) gets those
scored and added, the rest of it kept. Otherwise (new, changed, failed before, other
version or other parameters) the photo is scored again and its row replaced, so there is
always exactly one row per path.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field

from .._version import __version__
from ..errors import PhotokitError
from ..io.memory import keep_freed_memory
from ..io.sources import csv_rows, image_files
from .store import ResultStore, export_kind

#: Photos each local worker scores before the pool is replaced by fresh processes.
RECYCLE_AFTER = 100
#: Rows the parent holds at most before it commits them (it commits earlier whenever it
#: is about to wait for a worker).
COMMIT_ROWS = 64
#: Failures kept in the summary (all of them are in the database).
SUMMARY_FAILURES = 20
_HASH_CHUNK = 1 << 20


# ---------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------
@dataclass
class BatchSummary:
    """What a batch run did.

    Attributes
    ----------
    n_total : int
        Inputs listed by the source.
    n_scored : int
        Photos scored in this run with status ``ok``.
    n_skipped : int
        Photos already scored (same content, version and parameters): not touched.
    n_failed : int
        Photos that failed in this run (each has a ``failed`` row with its reason).
    db : str
        The results database.
    elapsed : float
        Wall time of the run in seconds.
    engine : str
        ``local``, ``dask`` or ``inline``.
    workers : int
        Worker processes (local) or worker threads (Dask).
    export : str or None
        The exported file, when one was asked for.
    run_id : int
        The run's id in the ``runs`` table (and in each row it wrote).
    failures : list of (path, reason)
        The first failures of this run (at most `SUMMARY_FAILURES`).
    n_updated : int
        Photos already scored whose row lacked metrics of this photokit (a metric added,
        by a plugin say, or its version bumped): only those metrics were scored and added
        to the row, the rest of it kept.
    n_gone : int
        Rows of photos under a folder source that this finished run no longer found there
        (deleted or moved since they were scored).
    pruned : bool
        Whether those rows were removed (``prune=True``); else they are kept, and said.
    """

    n_total: int
    n_scored: int
    n_skipped: int
    n_failed: int
    db: str
    elapsed: float
    engine: str = "local"
    workers: int = 1
    export: str | None = None
    run_id: int | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)
    n_updated: int = 0
    n_gone: int = 0
    pruned: bool = False

    @property
    def ok(self) -> bool:
        """True when no input failed."""
        return self.n_failed == 0

    @property
    def photos_per_second(self) -> float:
        done = self.n_scored + self.n_updated + self.n_failed
        return done / self.elapsed if self.elapsed > 0 else float("nan")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["failures"] = [{"path": p, "error": e} for p, e in self.failures]
        return d

    def to_frame(self):
        """The ``scores`` table of the database as a pandas DataFrame (needs pandas)."""
        with ResultStore(self.db) as store:
            return store.frame()

    def summary_line(self) -> str:
        updated = f", {self.n_updated} given new metrics" if self.n_updated else ""
        gone = ("" if not self.n_gone else
                f"; {self.n_gone} rows of photos no longer in the source "
                + ("removed" if self.pruned else "kept (--prune removes them)"))
        return (f"{self.n_total} photos: {self.n_scored} scored{updated}, {self.n_skipped} skipped "
                f"(already scored), {self.n_failed} failed in {self.elapsed:.1f} s; results in "
                f"{self.db}{gone}")

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td>{html.escape(p)}</td><td>{html.escape(str(e))}</td></tr>"
                       for p, e in self.failures)
        fail = (f"<table><tr><th>failed photo</th><th>reason</th></tr>{rows}</table>"
                if rows else "")
        return f"<p><b>photokit batch</b>: {html.escape(self.summary_line())}</p>{fail}"


# ---------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One input: absolute path, per-photo parameters (from a manifest row)."""

    path: str
    params: tuple = ()  # sorted (key, value) pairs, hashable and picklable

    @property
    def kwargs(self) -> dict:
        return dict(self.params)


_MANIFEST_PATH = ("photo", "path")
_MANIFEST_PARAMS = {"mm_per_px": float, "roi": str}


def iter_manifest(manifest: str | os.PathLike) -> Iterator[Task]:
    """Tasks from a CSV manifest, streamed.

    The manifest has a header row with a ``photo`` (or ``path``) column, relative to the
    manifest's folder or absolute, and optionally ``mm_per_px`` and ``roi`` (relative like
    ``photo``) per photo; other columns (``date``, ``kind``, ``note`` ...) are ignored.

    Raises
    ------
    PhotokitError
        Unreadable manifest, no photo column, an empty photo cell or a bad value, naming
        the line.
    """
    manifest = os.path.abspath(manifest)
    base = os.path.dirname(manifest)
    header, rows = csv_rows(manifest)
    col = next((c for c in _MANIFEST_PATH if c in header), None)
    if col is None:
        raise PhotokitError("manifest needs a header row with a 'photo' (or 'path') column", manifest)
    for line, row in rows:
        if not row.get(col):
            raise PhotokitError(f"line {line}: empty {col!r} cell", manifest)
        params = {}
        for key, conv in _MANIFEST_PARAMS.items():
            if row.get(key):
                try:
                    value = conv(row[key])
                except ValueError:
                    raise PhotokitError(f"line {line}: {key}={row[key]!r} is not a number",
                                        manifest) from None
                if key == "mm_per_px" and not value > 0:
                    raise PhotokitError(f"line {line}: mm_per_px must be > 0", manifest)
                if key == "roi":
                    value = os.path.join(base, value)
                params[key] = value
        yield Task(os.path.join(base, row[col]), tuple(sorted(params.items())))


def iter_source(source: str | os.PathLike) -> Iterator[Task]:
    """Tasks of a source: a folder (recursive, images only) or a CSV manifest."""
    path = os.fspath(source)
    if os.path.isdir(path):
        return (Task(p) for p in image_files(path))
    if os.path.isfile(path) and path.lower().endswith(".csv"):
        return iter_manifest(path)
    if os.path.exists(path):
        raise PhotokitError("batch source must be a folder or a CSV manifest", path)
    raise PhotokitError("batch source does not exist", path)


def count_source(source) -> int:
    """How many inputs `source` lists (one streaming pass; also validates a manifest)."""
    return sum(1 for _ in iter_source(source))


def sha256_file(path: str) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in 1 MiB chunks (constant memory)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


# ---------------------------------------------------------------------------------------
# scoring (runs in the workers)
# ---------------------------------------------------------------------------------------
def score_photo(path: str, *, mm_per_px: float | None = None, roi: str | None = None,
                metrics: tuple | None = None) -> dict:
    """The default per-photo scoring: `photokit.measurement.measure.measure` flattened to one row.

    `metrics` limits it to those metrics (a re-run that adds metrics to stored rows).

    Returns
    -------
    dict
        One key per registered metric (``redness.a_mean`` ... float or None), plus
        ``mm_per_px`` (None when only a relative scale was used), ``scale_source``,
        ``calibration_method``, ``delta_e_mean``, ``skin_pixels`` (in decoded pixels),
        ``decode_reduction`` (file pixels per decoded pixel along a side: 2 when only colour
        metrics were asked of a large JPEG; `photokit.measurement.measure.decode_reduction`),
        ``quality_ok`` and ``warnings`` (``"; "``-joined, None when there are none).
    """
    from ..measurement.measure import measure
    from ..metrics.registry import names

    m = measure(path, roi=roi, mm_per_px=mm_per_px, metrics=None if metrics is None else list(metrics))
    row: dict = {name: m.metrics.get(name) for name in (names() if metrics is None else metrics)}
    row.update({k: v for k, v in m.metrics.items() if k not in row})
    cal = m.calibration
    row.update({
        "mm_per_px": m.mm_per_px,
        "scale_source": m.scale_source,
        "calibration_method": getattr(cal, "method", None),
        "delta_e_mean": getattr(cal, "delta_e_mean", None),
        "skin_pixels": None if m.analysis is None else m.analysis.skin_pixels,
        "decode_reduction": m.decode()["reduction"],
        "quality_ok": bool(m.quality.ok),
        "warnings": "; ".join(m.warnings) or None,
    })
    # A measurement's maps sit in reference cycles (cached results that name their own
    # analysis), which only a full collection frees: without one a worker grew to 2.9 GB
    # in 24 portraits of 12 MP, with it it stays at about 0.5 GB (bench_batch).
    del m
    gc.collect()
    return row


def warm_measure() -> None:
    """Load, in this process, what `score_photo` would otherwise load on its first photo.

    Measures a small synthetic skin-toned image (sRGB (205, 150, 125) with Gaussian noise of
    sigma 6, 480 x 360 px at 0.2 mm/px): the metric registry and its plugins, the
    colour-card search, the Haar cascades and the face detector network are then loaded
    and cached for the process, so no photo's ``seconds`` (or ``timeout``) pays for them.
    The face mesh and iris networks, which run only on a face, load with the first face.
    Only photokit's own metrics are computed: a plugin is imported with the registry, but
    its metric runs on photos only (it may count or log its calls).
    """
    import numpy as np

    from ..measurement.measure import measure
    from ..metrics.registry import registered

    rng = np.random.default_rng(0)
    skin = np.clip(rng.normal((205.0, 150.0, 125.0), 6.0, (480, 360, 3)), 0, 255).astype(np.uint8)
    own = [m.name for m in registered() if m.compute.__module__.startswith("photokit.")]
    measure(skin, mm_per_px=0.2, metrics=own)


score_photo.warm = warm_measure


def decode_photo(path: str, **_params) -> dict:
    """A scoring function that only decodes: an archive readability audit.

    ``photokit batch ARCHIVE --db audit.db --scorer photokit.batch.archive:decode_photo`` records,
    per photo, whether photokit can load it (and why not) with its size, format, bit depth
    and colour profile, at the cost of decoding alone.
    """
    from ..io.photo import load

    ph = load(path)
    return {"width": ph.width, "height": ph.height, "format": ph.format,
            "bit_depth": ph.bit_depth, "colour_profile": ph.colour_profile,
            "orientation": ph.orientation}


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text[:limit]


class PhotoTimeout(Exception):
    """Scoring one photo took longer than the batch's ``timeout``."""


def _alarm(signum, frame):
    raise PhotoTimeout()


def score_task(score_fn: Callable, task: Task, timeout: float | None = None) -> dict:
    """Run `score_fn` on one task and never raise: a failure is a ``failed`` row.

    Returns the row fields the worker knows: ``status``, ``error``, ``error_type``,
    ``seconds`` and the scoring function's own keys. With `timeout` (seconds; POSIX, in
    a process's main thread, i.e. the local engine), a photo still being scored after
    that long is abandoned as ``failed``; the alarm fires when control returns to Python,
    so a single long native call overruns it by that call's length.
    """
    t0 = time.perf_counter()
    armed = (timeout is not None and hasattr(signal, "setitimer")
             and threading.current_thread() is threading.main_thread())
    try:
        if armed:
            previous = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, float(timeout))
        try:
            values = score_fn(task.path, **task.kwargs)
        finally:
            if armed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        if not isinstance(values, dict):
            raise TypeError(f"scoring function returned {type(values).__name__}, not a dict")
        row = {**values, "status": "ok", "error": None, "error_type": None}
    except PhotoTimeout:
        row = {"status": "failed", "error": f"scoring took longer than the {timeout:g} s timeout",
               "error_type": "Timeout"}
    except PhotokitError as exc:
        row = {"status": "failed", "error": _one_line(exc.cause), "error_type": "PhotokitError"}
    except Exception as exc:  # a bug or an unexpected file: isolate it, record it
        row = {"status": "failed", "error": _one_line(f"internal error: {type(exc).__name__}: {exc}"),
               "error_type": type(exc).__name__}
    row["seconds"] = time.perf_counter() - t0
    return row


def warm_up(score_fn: Callable) -> None:
    """Run the scoring function's ``warm`` (no arguments: load its models into this
    process), when it has one. A failing warm-up only warns: each photo then loads what
    it needs itself."""
    warm = getattr(score_fn, "warm", None)
    if warm is None:
        return
    try:
        warm()
    except Exception as exc:
        warnings.warn(f"photokit batch: warm-up {_fn_name(warm)} failed ({type(exc).__name__}: "
                      f"{exc}); photos load their models themselves", RuntimeWarning, stacklevel=2)


def _worker_init(threads: int, score_fn: Callable) -> None:
    """Local worker start: the parent alone handles Ctrl-C; OpenCV and `measure` on
    `threads` threads (no oversubscription); the scoring function's models loaded once
    for the worker's life, then every object alive (modules, models, caches) moved out of
    the garbage collector's reach (``gc.freeze``): the full collection `score_photo` runs
    after each photo then looks only at what that photo made (4 ms instead of 28 ms per
    12 MP portrait, the same memory freed; these objects live as long as the worker,
    which `RECYCLE_AFTER` bounds); freed memory kept for the next photo's maps
    (`keep_freed_memory`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)   # a forked worker must not inherit the run's
    keep_freed_memory()
    try:
        import cv2

        cv2.setNumThreads(max(1, threads))
    except ImportError:  # pragma: no cover - OpenCV is a dependency
        pass
    from ..measurement.measure import set_threads

    set_threads(threads)
    warm_up(score_fn)
    gc.collect()
    gc.freeze()


def _fn_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


# ---------------------------------------------------------------------------------------
# engines: map tasks to (task, row) in completion order, at most max_in_flight at a time
# ---------------------------------------------------------------------------------------
class _InlineEngine:
    """Scores in the calling process (``workers=0``): for debugging and tiny jobs."""

    name = "inline"

    def __init__(self, score_fn: Callable, timeout: float | None = None):
        self.score_fn = score_fn
        self.timeout = timeout
        self.workers = 1

    def map_unordered(self, tasks: Iterable[Task], idle: Callable[[], None] | None = None
                      ) -> Iterator[tuple[Task, dict]]:
        for i, task in enumerate(tasks):
            if i == 0:
                warm_up(self.score_fn)
            if idle is not None:  # scoring is this process's wait
                idle()
            yield task, score_task(self.score_fn, task, self.timeout)

    def close(self, cancel: bool = False) -> None:
        pass


class _LocalEngine:
    """A `ProcessPoolExecutor` with bounded in-flight work and crash isolation."""

    name = "local"

    def __init__(self, score_fn: Callable, workers: int, max_in_flight: int | None = None,
                 mp_context=None, timeout: float | None = None,
                 recycle_after: int | None = RECYCLE_AFTER):
        self.score_fn = score_fn
        self.timeout = timeout
        self.recycle_after = recycle_after
        self._budget = 0
        self.workers = workers
        self.max_in_flight = max_in_flight or 2 * workers
        if isinstance(mp_context, str):
            mp_context = multiprocessing.get_context(mp_context)
        self.mp_context = mp_context or _default_mp_context(score_fn)
        method, nameless = self.mp_context.get_start_method(), _fileless_main()
        if method != "fork" and nameless is not None:
            raise PhotokitError(f"local workers started by {method!r} run the main script again, "
                                f"and this one has no file ({nameless}: read from standard input); "
                                "save it to a file, or use mp_context='fork' or workers=0")
        self.threads = max(1, (os.cpu_count() or 1) // workers)
        self.pool = None  # started on the first photo to score: a fully resumed run needs none

    def _new_pool(self) -> ProcessPoolExecutor:
        """A pool whose workers are known to start: a crash after this is the photo's doing.

        Workers forked from this process get OpenCV's thread pool already at their size
        (`_opencv_threads`): resizing it in the child waits forever for threads that were
        not forked."""
        forked = self.mp_context.get_start_method() == "fork"
        with _opencv_threads(self.threads) if forked else contextlib.nullcontext():
            pool = ProcessPoolExecutor(self.workers, mp_context=self.mp_context,
                                       initializer=_worker_init, initargs=(self.threads, self.score_fn))
            started = pool.submit(os.getpid)  # a fork context forks every worker here
        try:
            started.result(timeout=300)
        except Exception as exc:
            pool.shutdown(wait=False, cancel_futures=True)
            raise PhotokitError(f"local worker processes cannot start ({type(exc).__name__}: "
                                f"{exc})") from None
        self._budget = (self.recycle_after or sys.maxsize) * self.workers
        return pool

    def map_unordered(self, tasks: Iterable[Task], idle: Callable[[], None] | None = None
                      ) -> Iterator[tuple[Task, dict]]:
        """(task, row) pairs in completion order; `idle()` is called whenever no row is
        ready and the engine is about to wait for a worker."""
        it = iter(tasks)
        inflight: dict = {}
        suspects: list[Task] = []  # in flight when a worker died: re-run one at a time
        exhausted = False
        solo = None  # the suspect now running alone
        while True:
            broken = False
            if self.pool is None:
                try:
                    first = next(it)
                except StopIteration:
                    return
                it = itertools.chain([first], it)
                self.pool = self._new_pool()
            try:
                if suspects:
                    if not inflight:
                        solo = suspects.pop(0)
                        self._budget -= 1
                        inflight[self.pool.submit(score_task, self.score_fn, solo, self.timeout)] = solo
                else:
                    solo = None
                    while (not exhausted and len(inflight) < self.max_in_flight
                           and self._budget > 0):
                        try:
                            task = next(it)
                        except StopIteration:
                            exhausted = True
                            break
                        self._budget -= 1
                        inflight[self.pool.submit(score_task, self.score_fn, task, self.timeout)] = task
            except BrokenProcessPool:  # a worker died since the last wait
                suspects.append(solo if solo is not None and solo not in inflight.values() else task)
                broken = True
            if not inflight and not broken:
                if exhausted:
                    return
                # recycle: fresh workers every `recycle_after` photos each, so whatever a
                # scoring function leaks or fragments cannot grow with the archive
                self.pool.shutdown(wait=True)
                self.pool = None
                continue
            if not broken:
                if idle is not None and not any(f.done() for f in inflight):
                    idle()
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
                    task = inflight.pop(fut)
                    exc = fut.exception()
                    if exc is None:
                        yield task, fut.result()
                    elif isinstance(exc, BrokenProcessPool):
                        broken = True
                        if task is solo:  # it broke the pool on its own: the culprit
                            yield task, {"status": "failed", "error_type": "WorkerDied",
                                         "error": "the worker process died while scoring this "
                                                  "photo (crash or out-of-memory kill)"}
                        else:
                            suspects.append(task)
                    else:  # e.g. the row could not be pickled back
                        yield task, {"status": "failed", "error_type": type(exc).__name__,
                                     "error": _one_line(f"internal error: {type(exc).__name__}: "
                                                        f"{exc}")}
            if broken:
                suspects.extend(inflight.values())  # lost with the pool
                inflight.clear()
                self.pool.shutdown(wait=True, cancel_futures=True)
                self.pool = self._new_pool()

    def close(self, cancel: bool = False) -> None:
        if self.pool is None:
            return
        procs = list((getattr(self.pool, "_processes", None) or {}).values())
        self.pool.shutdown(wait=not cancel, cancel_futures=True)
        if cancel:  # Ctrl-C: do not wait for photos in flight
            for p in procs:
                if p.is_alive():
                    p.terminate()
        self.pool = None


def _fileless_main() -> str | None:
    """The file name ``__main__`` gives when no file holds it (``<stdin>`` for a script
    piped to ``python -``), else None (a script file, ``python -m``, ``python -c``, a
    notebook)."""
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is None and main_file is not None and not os.path.isfile(main_file):
        return main_file
    return None


def _default_mp_context(score_fn: Callable):
    """forkserver where possible, fork otherwise.

    Forking a process that runs threads (a progress bar, a Dask client, a previous pool's
    feeder thread, OpenCV's pool) can deadlock the child on a lock held at fork time, so
    workers come from a clean fork server, which preloads photokit once. A scoring
    function defined in ``__main__`` (a notebook, a piped script) can only be found by a
    forked child, and a child of the fork server runs a main script that has a file name
    again, which fails for one read from standard input (``python - <<EOF``): both get
    the platform default (fork on Linux; `_LocalEngine` sizes OpenCV's pool before it
    forks, and says why a spawning default cannot run a piped script).
    """
    fn_module = getattr(score_fn, "__module__", None) or "__main__"
    if ("forkserver" not in multiprocessing.get_all_start_methods() or fn_module == "__main__"
            or _fileless_main() is not None):
        return multiprocessing.get_context()
    ctx = multiprocessing.get_context("forkserver")
    preload = ["photokit.batch.archive"]
    if not fn_module.startswith("photokit"):
        preload.append(fn_module)
    ctx.set_forkserver_preload(preload)
    return ctx


@contextlib.contextmanager
def _opencv_threads(n: int) -> Iterator[None]:
    """OpenCV runs on `n` threads in this process inside the block, as before after it.

    Before a fork: a forked child inherits OpenCV's thread pool without its threads, and
    resizing that pool in the child (a worker's ``cv2.setNumThreads``) waits forever on
    the threads that were not forked; a pool that already has the child's size is left as
    it is.
    """
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


class _DaskEngine:
    """The same work on ``dask.distributed``; the client (this process) writes the rows."""

    name = "dask"

    def __init__(self, score_fn: Callable, workers: int | None, scheduler=None,
                 max_in_flight: int | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise PhotokitError("the dask engine needs dask.distributed: "
                                "pip install 'photokit[dask]'") from None
        self.score_fn = score_fn
        self._own: list = []
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            self.client = Client(cluster)
            self._own = [self.client, cluster]
        elif isinstance(scheduler, Client):
            self.client = scheduler
        else:  # an address "tcp://host:8786" or a cluster object
            try:
                self.client = Client(scheduler, timeout="30s")
            except OSError as exc:
                raise PhotokitError(f"cannot reach the Dask scheduler {scheduler} ({exc})") from None
            self._own = [self.client]
        if getattr(score_fn, "warm", None) is not None:  # each worker loads the models once
            self.client.run(warm_up, score_fn)
        threads = sum(self.client.nthreads().values()) or 1
        self.workers = threads
        self.max_in_flight = max_in_flight or 2 * threads
        self._futures: dict = {}

    def map_unordered(self, tasks: Iterable[Task], idle: Callable[[], None] | None = None
                      ) -> Iterator[tuple[Task, dict]]:
        from distributed import as_completed

        it = iter(tasks)
        ac = as_completed()
        inflight = self._futures
        exhausted = False

        def fill():
            nonlocal exhausted
            while not exhausted and len(inflight) < self.max_in_flight:
                try:
                    task = next(it)
                except StopIteration:
                    exhausted = True
                    return
                fut = self.client.submit(score_task, self.score_fn, task, pure=False)
                inflight[fut.key] = (fut, task)
                ac.add(fut)

        fill()
        while inflight:
            if idle is not None and not ac.has_ready():
                idle()
            fut = next(ac)
            _, task = inflight.pop(fut.key)
            try:
                row = fut.result()
            except Exception as exc:  # the task never returned: worker lost, cancelled ...
                kind = type(exc).__name__
                reason = ("a Dask worker died while scoring this photo (crash or out-of-memory)"
                          if kind == "KilledWorker" else f"internal error: {kind}: {exc}")
                row = {"status": "failed", "error_type": kind, "error": _one_line(reason)}
            fut.release()
            yield task, row
            fill()

    def close(self, cancel: bool = False) -> None:
        if cancel and self._futures:
            self.client.cancel([f for f, _ in self._futures.values()])
        self._futures.clear()
        for obj in self._own:
            obj.close()


# ---------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------
def _progress_bar(enabled: bool | None, total: int | None):
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, disable=not enabled, file=sys.stderr, unit="photo",
                desc="photokit batch", dynamic_ncols=True, mininterval=0.5, smoothing=0.05)


def _canonical(params: dict) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def score_archive(source: str | os.PathLike, db: str | os.PathLike, *,
                  export: str | os.PathLike | None = None, workers: int | None = None,
                  engine: str = "local", scheduler=None, progress: bool | None = None,
                  score_fn: Callable | None = None, mm_per_px: float | None = None,
                  max_in_flight: int | None = None, mp_context=None,
                  timeout: float | None = None, metrics=None, prune: bool = False) -> BatchSummary:
    """Score every photo of an archive into an SQLite results store, resumably.

    Parameters
    ----------
    source : str or os.PathLike
        A folder (searched recursively by `photokit.io.sources.image_files`; files with an
        extension of `photokit.io.photo.IMAGE_EXTENSIONS` are inputs, everything else is
        ignored) or a CSV
        manifest with a ``photo`` (or ``path``) column and optional ``mm_per_px`` and
        ``roi`` columns (see `iter_manifest`).
    db : str or os.PathLike
        The SQLite results database (created when missing). Its ``scores`` view has one
        row per input photo: ``path``, ``sha256``, ``status``, ``error``, one column per
        metric, provenance (`photokit.batch.store`).
    export : str or os.PathLike, optional
        Also write the ``scores`` view to this ``.csv`` or ``.parquet`` file at the end.
    workers : int, optional
        Local worker processes (default: all cores; 0 scores in this process). With the
        Dask engine, the size of the local cluster started when no `scheduler` is given.
    engine : {"local", "dask"}
        Local processes, or ``dask.distributed`` (the ``dask`` extra).
    scheduler : str, distributed.Client or cluster, optional
        Dask only: an existing scheduler (``"tcp://host:8786"``), client or cluster; by
        default a ``LocalCluster`` is started for the run and closed after it. Workers
        must see the input paths (shared file system).
    progress : bool, optional
        Progress bar with rate and ETA on stderr; default: only when stderr is a terminal.
    score_fn : callable, optional
        ``score_fn(path, **params) -> dict`` of column -> value, run in the workers (so it
        must be picklable: a module-level function). Default `score_photo` (measure).
        Keys with a dot are metric columns. Its ``module:qualname`` is part of the
        parameters, so changing it re-scores. It may carry a ``warm`` attribute, a
        callable without arguments that loads its models: each worker runs it once, when it
        starts (`warm_up`), so that no photo pays for the loading (`score_photo` has
        `warm_measure`).
    mm_per_px : float, optional
        Physical scale for every photo (a manifest's ``mm_per_px`` column wins per photo).
    max_in_flight : int, optional
        Photos submitted but not yet written (default: twice the workers). Bounds memory
        and what a crash can lose.
    mp_context : multiprocessing context or str, optional
        Start method of local workers (default: forkserver, or the platform's own for a
        scoring function defined in ``__main__`` or a script read from standard input; see
        `_default_mp_context`). A script read from standard input (``python - <<EOF``)
        cannot have spawned workers (they run the main script from its file): it is refused
        with a `PhotokitError` saying so.
    timeout : float, optional
        Seconds after which a photo still being scored is recorded as failed and the run
        moves on (local and in-process engines; see `score_task`).
    metrics : list of str, optional
        `score_photo` only: score just these registered metrics (and their zones). They
        are part of the parameters (a run with another choice scores afresh), and
        `measure` decodes each photo at the size they need (colour metrics alone: a
        12 MP JPEG at half size).
    prune : bool
        A folder source only, after a run that finished: remove the rows of photos under
        the folder that it no longer holds (deleted or moved since they were scored). By
        default they are kept and counted (`BatchSummary.n_gone`).

    Returns
    -------
    BatchSummary
        Counts; ``n_failed > 0`` means some inputs could not be scored (CLI exit code 3).

    Raises
    ------
    PhotokitError
        When the source, the database, the export target or the engine cannot be used
        (before any photo is scored); a single photo never raises.
    """
    t0 = time.perf_counter()
    if engine not in ("local", "dask"):
        raise PhotokitError(f"engine must be 'local' or 'dask', not {engine!r}")
    if export is not None:
        export_kind(export)  # fail before the run, not after it
    if workers is not None and workers < 0:
        raise PhotokitError("workers must be >= 0")
    if timeout is not None and not timeout > 0:
        raise PhotokitError("timeout must be > 0 seconds")
    fn = score_fn or score_photo
    if metrics is not None and fn is not score_photo:
        raise PhotokitError("metrics= chooses photokit's own metrics: not with a custom scorer")
    run_kwargs = {} if mm_per_px is None else {"mm_per_px": float(mm_per_px)}
    versions: dict[str, int] = {}  # what a row scored by score_photo holds (resume key)
    if fn is score_photo:
        from ..metrics.registry import chosen, signature

        versions = signature()
        if metrics is not None:
            metrics = chosen(metrics)
            if not metrics:
                raise PhotokitError("unknown metric(s): none chosen")
            versions = {n: v for n, v in versions.items() if n in metrics}
            run_kwargs["metrics"] = tuple(versions)
    total = count_source(source) if (progress or (progress is None and sys.stderr.isatty())
                                      or not os.path.isdir(os.fspath(source))) else None
    store = ResultStore(db, list(versions))  # a bad database stops us before any engine starts
    try:
        eng = _engine(fn, engine, workers, scheduler, max_in_flight, mp_context, timeout)
    except BaseException:
        store.close()
        raise
    run = _Run(store, source, _fn_name(fn), run_kwargs, versions, eng, _progress_bar(progress, total))
    status = "aborted"
    armed, previous = _interrupt_on_sigterm()
    gone: set = set()
    try:
        for task, row in eng.map_unordered(run.pending(), idle=run.commit):
            run.record(task, row, *run.in_flight.pop(task))
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if armed:   # a second SIGTERM must not cut the cleanup short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            run.bar.close()
            eng.close(cancel=status != "finished")
            run.commit()  # the rows received are whole: keep them, however the run ends
            if status == "finished" and os.path.isdir(os.fspath(source)):
                # a file the walk did not list but that is there (a folder it could not
                # read) is not gone
                gone = {path for path in store.paths_under(os.path.abspath(os.fspath(source))) - run.listed
                        if not os.path.lexists(path)}
                if gone and prune:
                    store.delete(gone)
            c = run.counts
            store.finish_run(run.run_id, status=status, n_total=c["total"],
                             n_scored=c["scored"] + c["updated"], n_skipped=c["skipped"],
                             n_failed=c["failed"])
            if status == "finished" and export is not None:
                store.export(export)
            store.close()
        finally:
            if armed:
                signal.signal(signal.SIGTERM, previous)
    c = run.counts
    return BatchSummary(n_total=c["total"], n_scored=c["scored"], n_skipped=c["skipped"],
                        n_failed=c["failed"], n_updated=c["updated"], db=os.fspath(db),
                        elapsed=time.perf_counter() - t0, engine=eng.name, workers=eng.workers,
                        export=None if export is None else os.fspath(export), run_id=run.run_id,
                        failures=run.failures, n_gone=len(gone), pruned=bool(gone) and prune)


def _interrupt_on_sigterm():
    """Make SIGTERM (``kill``, a job scheduler's stop) end the run as Ctrl-C does: the
    workers stopped, the rows received kept, the run recorded as interrupted (the default
    action would kill this process alone, leaving its workers running and the run
    "running"). Returns ``(armed, previous)``: whether it did, and the handler to put back
    (the default one when the previous was not Python's). Not armed off the main thread
    (signals cannot be handled there), nor where SIGTERM is ignored on purpose."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) == signal.SIG_IGN):
        return False, None

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    return True, signal.SIG_DFL if previous is None else previous


def _engine(fn: Callable, engine: str, workers: int | None, scheduler, max_in_flight: int | None,
            mp_context, timeout: float | None):
    """The engine that maps tasks to rows: Dask, in this process (``workers=0``), or local
    worker processes (default: one per core)."""
    if engine == "dask":
        return _DaskEngine(fn, workers, scheduler, max_in_flight)
    if workers == 0:
        return _InlineEngine(fn, timeout)
    return _LocalEngine(fn, workers or os.cpu_count() or 1, max_in_flight, mp_context, timeout)


class _Run:
    """One batch run: what is listed, skipped, handed to the engine and written back.

    `pending` hashes and looks up each listed photo (lazily, inside the engine's loop) and
    yields those to score, with only the missing metrics of a row that has the others;
    `record` writes each finished row into the open group of rows and counts it; `commit`
    commits that group (the engine calls it when it is about to wait; `record` every
    `COMMIT_ROWS` rows).
    """

    def __init__(self, store: ResultStore, source, fn_name: str, run_kwargs: dict,
                 versions: dict[str, int], eng, bar):
        self.store, self.source, self.fn_name = store, source, fn_name
        self.run_kwargs, self.versions, self.bar = run_kwargs, versions, bar
        self.counts = {"scored": 0, "updated": 0, "skipped": 0, "failed": 0, "total": 0}
        self.listed: set[str] = set()   # every path the source listed (rows of others are gone)
        self.failures: list[tuple[str, str]] = []
        self.uncommitted = 0
        #: task -> (sha256, size, params, metric versions its row already holds or None)
        self.in_flight: dict[Task, tuple[str | None, int | None, str, dict | None]] = {}
        self.run_id = store.begin_run(source=os.path.abspath(os.fspath(source)), version=__version__,
                                      params=_canonical({"scorer": fn_name, **run_kwargs}),
                                      engine=eng.name, workers=eng.workers)

    def pending(self) -> Iterator[Task]:
        """Hash, look up, skip or hand over each listed photo."""
        for listed in iter_source(self.source):
            self.counts["total"] += 1
            self.listed.add(listed.path)
            kwargs = {**self.run_kwargs, **listed.kwargs}  # a manifest's column wins per photo
            task = Task(listed.path, tuple(sorted(kwargs.items())))
            params = _canonical({"scorer": self.fn_name, **kwargs})
            try:
                sha, size = sha256_file(task.path)
            except OSError as exc:
                reason = ("file not found" if isinstance(exc, FileNotFoundError)
                          else f"cannot read file ({exc.strerror or exc})")
                self.record(task, {"status": "failed", "error": reason, "error_type": "OSError"},
                            None, None, params)
                continue
            held = self._held(task.path, sha, params)
            missing = tuple(n for n in self.versions if n not in (held or {}))
            if held is not None and not missing:
                self._skip()
                continue
            if held:  # score only the metrics the row lacks
                task = Task(task.path, tuple(sorted({**kwargs, "metrics": missing}.items())))
            if any(t.path == task.path for t in self.in_flight):  # listed twice, the first in flight
                self._skip()
                continue
            self.in_flight[task] = (sha, size, params, held or None)
            yield task

    def _held(self, path: str, sha: str, params: str) -> dict | None:
        """The metric versions the stored row of `path` holds at this registry's versions,
        when that row is ok and of the same content, version and parameters; else None."""
        prev = self.store.get(path)
        if (prev is None or prev["status"] != "ok" or prev["sha256"] != sha
                or prev["photokit_version"] != __version__ or prev["params"] != params):
            return None
        return {k: v for k, v in (prev["metric_versions"] or {}).items() if self.versions.get(k) == v}

    def _skip(self) -> None:
        self.counts["skipped"] += 1
        self.bar.update(1)

    def record(self, task: Task, row: dict, sha: str | None, size: int | None, params: str,
               held: dict | None = None) -> None:
        """Write a photo's row; `held`: the metric versions its stored row already has
        (the task scored only the others: they are added to that row)."""
        partial = held is not None and row["status"] == "ok"
        if partial:
            added = task.kwargs["metrics"]
            row = {k: v for k, v in row.items()
                   if k in added or k.rsplit(".", 1)[0] in added or k in ("status", "seconds")}
        full = {**row, "path": task.path, "sha256": sha, "size_bytes": size,
                "photokit_version": __version__, "params": params, "run_id": self.run_id}
        if self.versions and row["status"] == "ok":
            full["metric_versions"] = {**(held or {}), **self.versions}
        self.store.begin()
        self.uncommitted += 1
        try:
            self.store.put(full, metric_names=list(self.versions), merge=partial)
        except ValueError as exc:  # the scoring function's row cannot be stored: this photo only
            row = {"status": "failed", "error_type": "InvalidRow",
                   "error": _one_line(f"scoring function returned an invalid row ({exc})")}
            self.store.put({**row, **{k: full[k] for k in ("path", "sha256", "size_bytes",
                                                           "photokit_version", "params", "run_id")}})
        if row["status"] == "ok":
            self.counts["updated" if partial else "scored"] += 1
        else:
            self.counts["failed"] += 1
            if len(self.failures) < SUMMARY_FAILURES:
                self.failures.append((task.path, row.get("error") or "unknown error"))
            self.bar.set_postfix(failed=self.counts["failed"], refresh=False)
        self.bar.update(1)
        if self.uncommitted >= COMMIT_ROWS:
            self.commit()

    def commit(self) -> None:
        """Commit the rows written since the last commit (one transaction)."""
        if self.uncommitted:
            self.store.commit()
            self.uncommitted = 0

__all__ = ["COMMIT_ROWS", "BatchSummary", "Task", "count_source", "decode_photo", "iter_manifest",
           "iter_source", "score_archive", "score_photo", "score_task", "sha256_file", "warm_measure",
           "warm_up"]
