"""Repeatability of every registered metric on re-captures of the same real faces.

Defines each metric's noise floor: the minimal detectable change ``MDC = 2.77 Sw``
(``Sw`` = within-subject SD pooled over subjects, ``sqrt(mean_i var_i)``; 2.77 =
1.96 sqrt(2), Bland and Altman 1996 / Weir 2005) that ``@metric(..., mdc=)`` declares.

Protocol
--------
Subjects: the real portraits in ``$PHOTOKIT_BENCH_DATA/faces`` plus
``skimage.data.astronaut()``. For each, `N_RECAPTURES` re-captures: a random similarity
(rotation +-2 deg, scale +-3%, shift +-1.5% of the size: a small pose change), Gaussian
sensor noise of SD 2 (8-bit levels), JPEG re-encoding at quality 88-95, decoded again.
The skin to analyse is found on the original photo (``photokit.skin.skin_mask`` when
available, else cheek and forehead boxes placed from the detected face, intersected
with a YCrCb skin-colour rule) and carried onto each re-capture through the known
transform (as ``compare`` and ``series`` carry a region through the alignment); the scale is the original's
face-estimate, divided by the re-capture's zoom (as a card in frame would give it).

A second protocol does the same at clinical resolution on synthetic skin
(``photokit.synth``, 1200 x 900 px at 0.07 mm/px, `N_SYNTH` skins): re-captures with
the generator's camera (rotation +-2 deg, zoom +-3%, shift +-20 px, its sensor noise,
JPEG 88-95), the true skin region in each photo's frame and the true scale. The real
portraits here are web-sized (0.5-1.4 mm/px from the inter-ocular distance), too coarse
for the 0.2-2 mm texture band, pores and small spots, which then return None; the
synthetic protocol measures those at the resolution they are meant for.

Each metric is computed through ``photokit.measure`` when it exists, else directly from
an `Analysis` built here (calibration none). Output: a table of mean, within-subject
CV (mean over subjects of SD/|mean|), Sw and MDC per metric, with the registered MDC
beside it; ``--json FILE`` saves it. The baseline row ``decode+linear`` is not a metric:
it reports the CV of mean linear luminance, the floor set by noise and JPEG alone.

Run: ``python benchmarks/bench_repeatability.py [--recaptures 6] [--json out.json]``
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

N_RECAPTURES = 6
N_SYNTH = 4


def data_dir() -> Path:
    env = os.environ.get("PHOTOKIT_BENCH_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def subjects() -> list[tuple[str, np.ndarray]]:
    out = []
    faces = data_dir() / "faces"
    for p in sorted(faces.glob("*.jpg")):
        out.append((p.stem, np.asarray(Image.open(p).convert("RGB"))))
    import skimage.data

    out.append(("astronaut", skimage.data.astronaut()))
    return out


def recapture(rgb: np.ndarray, rng: np.random.Generator):
    """A re-capture of `rgb` and the 2x3 map from original to re-capture pixels."""
    h, w = rgb.shape[:2]
    ang = rng.uniform(-2, 2)
    zoom = rng.uniform(0.97, 1.03)
    M = cv2.getRotationMatrix2D((w / 2, h / 2), ang, zoom)
    M[:, 2] += rng.uniform(-0.015, 0.015, 2) * (w, h)
    warped = cv2.warpAffine(rgb, M, (w, h), flags=cv2.INTER_LANCZOS4,
                            borderMode=cv2.BORDER_REFLECT_101)
    noisy = np.clip(warped + rng.normal(0, 2.0, warped.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "JPEG", quality=int(rng.integers(88, 96)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")), M, zoom


def fallback_skin(rgb: np.ndarray, face) -> np.ndarray:
    """Both cheeks and the forehead of `face` (boxes in face-box units, away from eyes,
    nose, mouth and hairline), on skin-coloured pixels (YCrCb rule)."""
    h, w = rgb.shape[:2]
    x, y, fw, fh = face.box
    m = np.zeros((h, w), bool)
    for (x0, x1, y0, y1) in ((0.14, 0.36, 0.50, 0.68), (0.64, 0.86, 0.50, 0.68),
                             (0.28, 0.72, 0.08, 0.24)):
        m[int(y + y0 * fh): int(y + y1 * fh), int(x + x0 * fw): int(x + x1 * fw)] = True
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    skin = (ycc[..., 1] > 135) & (ycc[..., 1] < 175) & (ycc[..., 2] > 80) & (ycc[..., 2] < 130)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    skin = cv2.morphologyEx(skin.astype(np.uint8), cv2.MORPH_OPEN, k).astype(bool)
    return m & skin


def skin_mask(rgb: np.ndarray, faces) -> np.ndarray:
    try:  # the colour helper's skin mask, when it exists
        from photokit import skin as skin_mod

        for name in ("skin_mask", "detect_skin", "mask"):
            fn = getattr(skin_mod, name, None)
            if callable(fn):
                m = fn(rgb)
                m = getattr(m, "mask", m)
                return np.asarray(m, bool)
    except ImportError:
        pass
    return fallback_skin(rgb, faces[0])


def measurer():
    """A function (rgb, roi mask, mm_per_px) -> {metric: value}."""
    try:
        from photokit.measure import measure

        def run(rgb, roi, mmpp):
            return dict(measure(rgb, roi=roi, mm_per_px=mmpp, calibration="none").metrics)

        return run, "photokit.measure"
    except ImportError:
        pass
    from photokit import metrics
    from photokit.analysis import Analysis
    from photokit.colour import uint8_to_linear

    for mod in metrics._BUILTIN_MODULES:
        try:
            __import__(mod)
        except ImportError:
            pass

    def run(rgb, roi, mmpp):
        an = Analysis(uint8_to_linear(rgb), roi, mmpp)
        return {m.name: m.compute(an) for m in metrics._REGISTRY.values()}

    return run, "Analysis (photokit.measure not available)"


def real_protocol(run, n, rng):
    """{metric: [[values of subject i]]}, baseline luminance groups."""
    from photokit.colour import uint8_to_linear
    from photokit.face import detect_faces
    from photokit.photo import load
    from photokit.scale import estimate_scale

    per_metric: dict[str, list[list[float]]] = {}
    base_lum: list[list[float]] = []
    for name, rgb in subjects():
        faces = [f for f in detect_faces(load(rgb).gray8()) if f.interocular_px]
        if not faces:
            print(f"{name}: no face with both eyes, skipped", file=sys.stderr)
            continue
        scale = estimate_scale(rgb, faces=faces)
        roi0 = skin_mask(rgb, faces)
        vals: dict[str, list[float]] = {}
        lum = []
        for _ in range(n):
            rc, M, zoom = recapture(rgb, rng)
            roi = cv2.warpAffine(roi0.astype(np.uint8), M, (rgb.shape[1], rgb.shape[0]),
                                 flags=cv2.INTER_NEAREST) > 0
            roi = cv2.erode(roi.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            res = run(rc, roi, scale.mm_per_px / zoom)
            for k, v in res.items():
                if v is not None and math.isfinite(v):
                    vals.setdefault(k, []).append(float(v))
            lum.append(float(uint8_to_linear(rc)[roi].mean()))
        base_lum.append(lum)
        for k, v in vals.items():
            if len(v) == n:
                per_metric.setdefault(k, []).append(v)
        print(f"{name}: {rgb.shape[1]}x{rgb.shape[0]}, {scale.mm_per_px:.3f} mm/px "
              f"({scale.source}), skin {roi0.mean() * 100:.1f}% of frame", file=sys.stderr)
    return per_metric, base_lum


def synthetic_protocol(run, n, n_skins, rng):
    from photokit.colour import uint8_to_linear
    from photokit.synth import render_skin

    per_metric: dict[str, list[list[float]]] = {}
    base_lum: list[list[float]] = []
    for seed in range(n_skins):
        vals: dict[str, list[float]] = {}
        lum = []
        for k in range(n):
            zoom = float(rng.uniform(0.97, 1.03))
            im = render_skin(seed=100 + seed, width=1200, height=900,
                             rotation_deg=float(rng.uniform(-2, 2)), scale=zoom,
                             shift_px=tuple(float(v) for v in rng.uniform(-20, 20, 2)),
                             jpeg_quality=int(rng.integers(88, 96)), noise_seed=k + 1)
            roi = cv2.erode(im.mask("skin").astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            res = run(im.pixels, roi, im.truth.mm_per_px / zoom)
            for key, v in res.items():
                if v is not None and math.isfinite(v):
                    vals.setdefault(key, []).append(float(v))
            lum.append(float(uint8_to_linear(im.pixels)[roi].mean()))
        base_lum.append(lum)
        for key, v in vals.items():
            if len(v) == n:
                per_metric.setdefault(key, []).append(v)
    return per_metric, base_lum


def table(per_metric, base_lum, registered):
    rows = []

    def row(name, groups, unit="", reg=None):
        g = [np.asarray(v) for v in groups]
        sw = math.sqrt(np.mean([x.var(ddof=1) for x in g]))
        cvs = [x.std(ddof=1) / abs(x.mean()) for x in g if abs(x.mean()) > 1e-9]
        rows.append({"metric": name, "unit": unit, "subjects": len(g),
                     "mean": float(np.mean([x.mean() for x in g])),
                     "cv_pct": float(100 * np.mean(cvs)) if cvs else None,
                     "cv_max_pct": float(100 * np.max(cvs)) if cvs else None,
                     "sw": sw, "mdc": 2.77 * sw, "registered_mdc": reg})

    row("decode+linear (baseline: mean linear Y)", base_lum)
    order = list(registered)
    for k in sorted(per_metric, key=lambda n: order.index(n) if n in order else 999):
        m = registered.get(k)
        row(k, per_metric[k], m.unit if m else "", m.mdc if m else None)
    return rows


def show(title, rows):
    print(f"\n{title}")
    print(f"{'metric':42s} {'unit':9s} {'n':>2s} {'mean':>9s} {'CV%':>6s} {'CVmax%':>7s} "
          f"{'Sw':>8s} {'MDC':>8s} {'reg.MDC':>8s}")

    def f(v, fmt):
        return format(v, fmt) if v is not None else "-"

    for r in rows:
        print(f"{r['metric']:42s} {r['unit']:9s} {r['subjects']:2d} {f(r['mean'], '9.3f')} "
              f"{f(r['cv_pct'], '6.2f')} {f(r['cv_max_pct'], '7.2f')} {r['sw']:8.4f} "
              f"{r['mdc']:8.4f} {f(r['registered_mdc'], '8.3f')}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recaptures", type=int, default=N_RECAPTURES)
    ap.add_argument("--synthetic-skins", type=int, default=N_SYNTH)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from photokit import metrics

    run, how = measurer()
    rng = np.random.default_rng(args.seed)
    try:
        registered = {m.name: m for m in metrics.registered()}
    except ImportError:  # a metric module of another family is missing in this tree
        registered = {m.name: m for m in metrics._REGISTRY.values()}
    t0 = time.perf_counter()
    real = table(*real_protocol(run, args.recaptures, rng), registered)
    t1 = time.perf_counter()
    syn = table(*synthetic_protocol(run, args.recaptures, args.synthetic_skins, rng), registered)
    t2 = time.perf_counter()
    show(f"Real portraits, {args.recaptures} re-captures each, via {how} ({t1 - t0:.0f} s)", real)
    show(f"Synthetic skin at 0.07 mm/px, {args.synthetic_skins} skins x {args.recaptures} "
         f"re-captures ({t2 - t1:.0f} s)", syn)
    if args.json:
        from photokit.atomic import write_text

        write_text(args.json, json.dumps({"real": real, "synthetic": syn}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
