"""Shared by the speed benchmarks: ratios against a decode measured in the same run, and
the table of ``benchmarks/README.md`` that the scripts regenerate.

Machines here are shared and noisy, so no absolute time is a figure: each job run is
paired with a run of the baseline (one ``cv2.imread`` of the same JPEG) right beside it,
and the ratio is taken per pair (a slow spell hits both sides alike); the median and the
range over the rounds are reported. CPU time (all threads of the process) is reported
beside wall time: it is what a batch worker pays per photo.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2

README = Path(__file__).resolve().parent / "README.md"


@dataclass
class Ratio:
    """A job's time as a multiple of the baseline decode, over interleaved rounds."""

    job_s: float          # median wall seconds of the job
    decode_s: float       # median wall seconds of the baseline
    median: float         # median of the per-round wall ratios
    low: float
    high: float
    cpu: float            # median job CPU seconds / median baseline CPU seconds

    def text(self, target: float | None = None) -> str:
        met = target is not None and self.median <= target
        goal = "" if target is None else f"; target <= {target:g}x: {'met' if met else 'MISSED'}"
        return (f"{self.median:.2f}x decode (range {self.low:.2f}-{self.high:.2f}; "
                f"CPU {self.cpu:.2f}x){goal}")


def imread(path) -> Callable[[], object]:
    """The baseline: one ``cv2.imread`` of `path` (libjpeg-turbo decode, BGR)."""
    return lambda: cv2.imread(str(path), cv2.IMREAD_COLOR)


def interleaved(job: Callable[[], object], baseline: Callable[[], object],
                rounds: int) -> tuple[Ratio, object]:
    """Run `baseline` and `job` alternately `rounds` times (after one warm-up of each).

    The baseline runs twice per round and the faster run counts: a decode into memory the
    process has not touched before pays the first-touch page faults, which on this
    machine's VM cost up to 6x the decode itself (a 12 MP JPEG: 0.07 s into recycled
    memory, 0.35-0.6 s into fresh), so one decode right after a job measured what the job
    had left behind as much as the decode (the close-up's baseline read 0.17-0.21 s after
    one version of `measure` and 0.06 s after another, 2026-12-07).
    """
    baseline()
    out = job()
    walls, cpus, bwalls, bcpus, ratios = [], [], [], [], []
    for _ in range(rounds):
        bw = bc = float("inf")
        for _ in range(2):
            t, c = time.perf_counter(), time.process_time()
            baseline()
            bw, bc = min(bw, time.perf_counter() - t), min(bc, time.process_time() - c)
        t, c = time.perf_counter(), time.process_time()
        out = job()
        jw, jc = time.perf_counter() - t, time.process_time() - c
        walls.append(jw)
        cpus.append(jc)
        bwalls.append(bw)
        bcpus.append(bc)
        ratios.append(jw / bw)
    med = statistics.median
    return Ratio(med(walls), med(bwalls), med(ratios), min(ratios), max(ratios),
                 med(cpus) / max(med(bcpus), 1e-9)), out


def write_section(name: str, text: str, path: Path = README) -> None:
    """Put `text` between ``<!-- name:start -->`` and ``<!-- name:end -->`` in the
    benchmarks README (appended as a new section when the markers are missing)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.strip()}\n{end}"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    doc = pattern.sub(lambda _: block, doc) if pattern.search(doc) else doc.rstrip() + "\n\n" + block + "\n"
    path.write_text(doc)
