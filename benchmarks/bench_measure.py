"""Speed of measuring a 12 MP photo (all metrics) against decoding that JPEG.

Target (issue 6): ``photokit.measure`` on a 12 MP photo within 6x the time to decode it,
measured in the same run. Two 12 MP JPEGs are made in a temporary folder:

- ``portrait``: the largest real portrait of ``$PHOTOKIT_BENCH_DATA/faces`` resized to
  3000 x 4000 (Lanczos), light sensor noise, JPEG quality 92; scale from the face;
- ``close-up``: synthetic skin (``photokit.synth``) 4000 x 3000 at 0.07 mm/px (given as
  ``mm_per_px``, as ``--mm-per-px`` would), where the skin fills most of the frame at
  the resolution texture is defined for (the worst case for the texture, pore and spot
  filters).

Baseline: ``photokit.load`` (JPEG decode, orientation, colour profile). Decode and
``photokit.measure`` are timed in interleaved rounds (decode, measure, decode, ...) and
the ratio is taken per round: its median and range are reported (a shared machine's
slow spells then hit both sides of each ratio). The per-step table runs the
same work step by step on an `Analysis` built here: linear RGB, face detection and
scale, skin mask (``photokit.skin`` when present, else the synthetic truth / a face
box), then each metric family in registration order, sharing the cache as ``measure``
does (so a step's time is what it adds).

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


def make_inputs(folder: Path) -> list[tuple[str, Path, np.ndarray | None, float | None]]:
    """(name, jpeg path, skin mask or None, mm_per_px or None) of the two 12 MP photos."""
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
        out.append(("portrait", p, None, None))
    from photokit.synth import render_skin

    im = render_skin(seed=7, width=4000, height=3000)
    p = folder / "closeup_synth_12mp.jpg"
    Image.fromarray(im.pixels).save(p, quality=92)
    out.append(("close-up", p, im.mask("skin"), im.truth.mm_per_px))
    return out


def skin_for(photo, faces, truth_mask):
    try:
        from photokit import skin as skin_mod

        for name in ("skin_mask", "detect_skin", "mask"):
            fn = getattr(skin_mod, name, None)
            if callable(fn):
                # seeded on the faces, as measure does (without them red curtains count)
                m = fn(photo.pixels, faces=faces) if name == "skin_mask" else fn(photo.pixels)
                return np.asarray(getattr(m, "mask", m), bool), f"photokit.skin.{name}"
    except ImportError:
        pass
    if truth_mask is not None:
        return truth_mask, "synthetic truth"
    m = np.zeros(photo.pixels.shape[:2], bool)
    if faces:
        x, y, w, h = faces[0].box
        m[y + h // 10: y + h, x + w // 10: x + w - w // 10] = True
    return m, "face box"


def steps(path: Path, truth_mask, mm_per_px) -> list[tuple[str, float, str]]:
    from photokit import metrics
    from photokit.analysis import Analysis
    from photokit.colour import uint8_to_linear
    from photokit.face import detect_faces
    from photokit.photo import load
    from photokit.scale import estimate_scale

    rows = []
    t, photo = timed(lambda: load(path, mm_per_px=mm_per_px))
    rows.append(("decode (photokit.load)", t, f"{photo.width}x{photo.height}"))
    t, lin = timed(lambda: uint8_to_linear(photo.pixels))
    rows.append(("linear RGB", t, ""))
    t, faces = timed(lambda: detect_faces(photo.gray8(), mm_per_px=mm_per_px))
    rows.append(("faces", t, f"{len(faces)} found"))
    t, scale = timed(lambda: estimate_scale(photo, faces=faces))
    rows.append(("scale", t, f"{scale.mm_per_px and round(scale.mm_per_px, 4)} mm/px ({scale.source})"))
    t, (mask, how) = timed(lambda: skin_for(photo, faces, truth_mask))
    rows.append(("skin mask", t, f"{how}, {mask.mean() * 100:.0f}% of frame"))
    an = Analysis(lin, mask, scale.mm_per_px, scale_source=scale.source)
    for mod in metrics._BUILTIN_MODULES:
        try:
            __import__(mod)
        except ImportError:
            pass
    fam: dict[str, float] = {}
    for m in metrics._REGISTRY.values():
        t, v = timed(lambda m=m: m.compute(an))
        mod = m.compute.__module__
        fam[mod] = fam.get(mod, 0.0) + t
    for k, v in fam.items():
        rows.append((f"metrics: {k.removeprefix('photokit.')}", v, ""))
    return rows


#: Interleaved decode + measure rounds per photo.
ROUNDS = 7


def main() -> int:
    from photokit.photo import load

    try:
        from photokit.measure import measure
    except ImportError:
        measure = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, truth_mask, mmpp in make_inputs(Path(tmp)):
            load(path)  # warm-up (imports, caches)
            print(f"\n{name}: {path.name}, {path.stat().st_size / 1e6:.1f} MB JPEG")
            if measure is None:
                print("  photokit.measure: not available in this tree; step-by-step only")
                t_dec, _ = timed(lambda path=path: load(path), repeat=5)
            else:
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
                n = len(getattr(res, "metrics", {}) or {})
                print(f"  baseline decode (photokit.load), median of {ROUNDS}: {t_dec:.3f} s")
                print(f"  photokit.measure (all {n} metrics), median of {ROUNDS}: "
                      f"{statistics.median(meas):.3f} s")
                print(f"  ratio measure / decode, per interleaved round: median "
                      f"{statistics.median(ratios):.2f} x (range {min(ratios):.2f}-{max(ratios):.2f}; "
                      f"target <= 6)")
            rows = steps(path, truth_mask, mmpp)
            total = sum(r[1] for r in rows)
            print(f"  {'step':34s} {'s':>7s} {'x decode':>9s}  note")
            for label, t, note in rows:
                print(f"  {label:34s} {t:7.3f} {t / t_dec:9.2f}  {note}")
            print(f"  {'total (steps)':34s} {total:7.3f} {total / t_dec:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
