"""Speed of measuring a 12 MP photo (all metrics) against decoding that JPEG.

Target (issue 6): ``photokit.measurement.measure`` on a 12 MP photo within 6x the time to decode it,
measured in the same run. Two 12 MP JPEGs are made in a temporary folder:

- ``portrait``: the largest real portrait of ``$PHOTOKIT_BENCH_DATA/faces`` resized to
  3000 x 4000 (Lanczos), light sensor noise, JPEG quality 92; scale from the face;
- ``close-up``: synthetic skin (``photokit.synth``) 4000 x 3000 at 0.07 mm/px (given as
  ``mm_per_px``, as ``--mm-per-px`` would), where the skin fills most of the frame at
  the resolution texture is defined for (the worst case for the texture, pore and spot
  filters).

Baseline: ``photokit.load`` (JPEG decode, orientation, colour profile). Decode and
``photokit.measurement.measure`` are timed in interleaved rounds (decode, measure, decode, ...) and
the ratio is taken per round: its median and range are reported (a shared machine's
slow spells then hit both sides of each ratio). The per-step table then runs
``measure``'s steps one after another (``measure`` runs some side by side): decode,
calibration (card search), unusable pixels, faces, capture checks, skin mask, scale, and
each metric family on a fresh `Analysis`, medians of a few repeats.

Run: ``python benchmarks/bench_measure.py``
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def data_dir() -> Path:
    env = os.environ.get("PHOTOKIT_BENCH_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def timed(fn, repeat=1):
    ts, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def make_inputs(folder: Path) -> list[tuple[str, Path, float | None]]:
    """(name, jpeg path, mm_per_px or None) of the two 12 MP photos."""
    out = []
    faces = sorted((data_dir() / "faces").glob("*.jpg"), key=lambda p: -p.stat().st_size)
    if faces:
        rgb = np.asarray(Image.open(faces[0]).convert("RGB"))
        size = (3000, 4000) if rgb.shape[0] >= rgb.shape[1] else (4000, 3000)
        big = cv2.resize(rgb, size, interpolation=cv2.INTER_LANCZOS4)
        rng = np.random.default_rng(0)
        big = np.clip(big + rng.normal(0, 1.5, big.shape), 0, 255).astype(np.uint8)
        p = folder / f"portrait_{faces[0].stem}_12mp.jpg"
        Image.fromarray(big).save(p, quality=92)
        out.append(("portrait", p, None))
    from photokit.synth import render_skin

    im = render_skin(seed=7, width=4000, height=3000)
    p = folder / "closeup_synth_12mp.jpg"
    Image.fromarray(im.pixels).save(p, quality=92)
    out.append(("close-up", p, im.truth.mm_per_px))
    return out


#: Repeats of the step-by-step table (each step's median is listed).
STEP_REPEATS = 3


def steps(path: Path, mm_per_px) -> list[tuple[str, float, str]]:
    """The steps of ``measure`` one after another (``measure`` runs some of them side by
    side on threads), each the median of `STEP_REPEATS` runs; metric families run on a
    fresh `Analysis` per repeat, in ``measure``'s order, sharing its cache as
    ``measure`` does (a family's time is what it adds)."""
    import importlib

    from photokit import metrics
    from photokit.colour.calibration import calibrate
    from photokit.faces.haar import detect_faces
    from photokit.faces.skin import skin_mask
    from photokit.io.photo import load
    from photokit.measurement.quality import assess
    from photokit.metrics.analysis import Analysis
    from photokit.metrics.scale import estimate_scale

    mmod = importlib.import_module("photokit.measurement.measure")
    chosen = metrics.registered()
    groups: dict[str, list] = {}
    for m in chosen:   # (trees before metric jobs: by module, as their measure did)
        groups.setdefault(getattr(m, "job", m.compute.__module__), []).append(m)
    first = getattr(mmod, "JOB_ORDER", getattr(mmod, "HEAVY_MODULES", ()))
    order = sorted(groups, key=lambda job: first.index(job) if job in first else len(first))
    times: dict[str, list[float]] = {}
    notes: dict[str, str] = {}

    def step(label, fn, note=None):
        t = time.perf_counter()
        out = fn()
        times.setdefault(label, []).append(time.perf_counter() - t)
        if note is not None:
            notes[label] = note(out)
        return out

    def one_pass():  # every lambda below runs at once, inside `step`
        photo = step("decode (photokit.load)", lambda: load(path, mm_per_px=mm_per_px),
                     lambda p: f"{p.width}x{p.height}")
        rgb8 = photo.rgb8()
        linear, _ = step("calibration (card search)", lambda: calibrate(photo.pixels),
                           lambda r: r[1].method)
        bad = step("unusable pixels", lambda: mmod._unusable(rgb8, photo.alpha))
        gray = photo.gray8()
        faces = step("faces", lambda: detect_faces(gray, mm_per_px=mm_per_px),
                     lambda f: f"{len(f)} found")
        step("capture checks", lambda: assess(photo, gray=gray, faces=faces))
        mask = step("skin mask", lambda: skin_mask(rgb8, faces=faces, exclude=bad),
                    lambda m: f"{m.mean() * 100:.0f}% of frame")
        scale = step("scale", lambda: estimate_scale(photo, user_mm_per_px=mm_per_px, faces=faces),
                     lambda s: f"{s.mm_per_px and round(s.mm_per_px, 4)} mm/px ({s.source})")
        an = Analysis(linear, mask, scale.mm_per_px, scale_source=scale.source)
        for mod in order:
            step(f"metrics: {mod.removeprefix('photokit.')}",
                 lambda mod=mod: [m.compute(an) for m in groups[mod]])

    for _ in range(STEP_REPEATS):
        one_pass()
    return [(k, statistics.median(v), notes.get(k, "")) for k, v in times.items()]


#: Interleaved decode + measure rounds per photo.
ROUNDS = 7


def main() -> int:
    from photokit.io.photo import load
    from photokit.measurement.measure import measure

    with tempfile.TemporaryDirectory() as tmp:
        for name, path, mmpp in make_inputs(Path(tmp)):
            load(path)  # warm-up (imports, caches)
            print(f"\n{name}: {path.name}, {path.stat().st_size / 1e6:.1f} MB JPEG")
            measure(path, mm_per_px=mmpp)  # warm-up
            # interleaved: each measure run has its own decode run next to it, so a
            # slow spell of a shared machine hits both sides of a ratio alike
            decs, meas, ratios = [], [], []
            for _ in range(ROUNDS):
                t_d, _ = timed(lambda path=path: load(path))
                t_m, res = timed(lambda path=path, mmpp=mmpp: measure(path, mm_per_px=mmpp))
                decs.append(t_d)
                meas.append(t_m)
                ratios.append(t_m / t_d)
            t_dec = statistics.median(decs)
            print(f"  baseline decode (photokit.load), median of {ROUNDS}: {t_dec:.3f} s")
            print(f"  photokit.measurement.measure (all {len(res.metrics)} metrics), median of {ROUNDS}: "
                  f"{statistics.median(meas):.3f} s")
            print(f"  ratio measure / decode, per interleaved round: median "
                  f"{statistics.median(ratios):.2f} x (range {min(ratios):.2f}-{max(ratios):.2f}; "
                  f"target <= 6)")
            rows = steps(path, mmpp)
            total = sum(r[1] for r in rows)
            print(f"  {'step':34s} {'s':>7s} {'x decode':>9s}  note")
            for label, t, note in rows:
                print(f"  {label:34s} {t:7.3f} {t / t_dec:9.2f}  {note}")
            print(f"  {'total (steps, one after another)':34s} {total:7.3f} {total / t_dec:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
