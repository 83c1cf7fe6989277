"""Redness change on real portraits: known erythema added in optical density, light changed.

Run: ``python benchmarks/bench_redness.py``. Data: ``faces/*.jpg`` from the folder in
``PHOTOKIT_BENCH_DATA`` (default ``../shared/data`` beside the repository), plus
``skimage.data.astronaut()``.

For each portrait, BEFORE is the photo; AFTER is the same photo with haemoglobin added
in optical density over one cheek (``OD += dose * v_hb``, a smooth-edged ellipse), then
re-photographed under another light (exposure x0.7-1.35, white balance +-10% per
channel), JPEG q92. The true change of mean a* over the cheek is computed on the linear
images before the light change. photokit measures both photos over the cheek ROI:

- ``uncalibrated``: no normalisation (the baseline any tool without calibration has);
- ``reference``: the other cheek and forehead as untreated reference skin
  (``--reference-roi``), AFTER normalised to BEFORE's reference colour.

The pose is not changed, so the numbers isolate colour (alignment has its own
benchmark). Target (issue 5): |measured - true| <= max(1.0, 25% of true); with no
added erythema |delta a*| < 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from photokit import PhotokitError, load
from photokit.colour.convert import linear_to_lab, linear_to_srgb, uint8_to_linear
from photokit.faces.haar import detect_faces
from photokit.measurement.measure import measure
from photokit.synth import ABSORPTION_HAEMOGLOBIN

DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LIGHTS = [(1.0, (1.0, 1.0, 1.0)), (0.7, (1.1, 1.0, 0.9)), (1.35, (0.92, 1.0, 1.08)),
          (0.85, (0.9, 1.0, 1.1))]
DOSES = [0.0, 0.15, 0.3]


def _regions(rgb8: np.ndarray):
    faces = detect_faces(cv2.cvtColor(rgb8, cv2.COLOR_RGB2GRAY))
    face = next((f for f in faces if len(f.eyes) == 2), None)
    if face is None:
        return None
    x, y, w, h = face.box
    (lx, ly), (rx, ry) = face.eyes
    shape = rgb8.shape[:2]
    cheek = np.zeros(shape, np.uint8)
    cv2.ellipse(cheek, (int(lx), int(ly + 0.32 * h)), (int(0.13 * w), int(0.1 * h)), 0, 0, 360, 1, -1)
    ref = np.zeros(shape, np.uint8)
    cv2.ellipse(ref, (int(rx), int(ry + 0.32 * h)), (int(0.13 * w), int(0.1 * h)), 0, 0, 360, 1, -1)
    return cheek.astype(bool), ref.astype(bool)


def _after(lin: np.ndarray, cheek: np.ndarray, dose: float, exposure: float, wb) -> tuple:
    soft = cv2.GaussianBlur(cheek.astype(np.float32), (0, 0), max(2.0, 0.02 * np.sqrt(cheek.sum())))
    od = -np.log(np.maximum(lin, 1e-4)) + dose * soft[..., None] * ABSORPTION_HAEMOGLOBIN
    red = np.exp(-od).astype(np.float32)
    true = float(linear_to_lab(red)[..., 1][cheek].mean() - linear_to_lab(lin)[..., 1][cheek].mean())
    shot = np.clip(red * exposure * np.asarray(wb, np.float32), 0, 1)
    rgb = np.round(linear_to_srgb(shot) * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), true


def main() -> int:
    photos = {p.name: load(p).rgb8() for p in sorted((DATA / "faces").glob("*.jpg"))}
    photos["astronaut"] = skimage.data.astronaut()
    rows = []
    for name, rgb in photos.items():
        reg = _regions(rgb)
        if reg is None:
            print(f"{name}: no face with both eyes, skipped")
            continue
        cheek, ref = reg
        lin = uint8_to_linear(rgb)
        try:
            mb = measure(rgb, roi=cheek, reference_roi=ref, calibration="none")
        except PhotokitError as exc:
            print(f"{name}: {exc}, skipped")
            continue
        ub = measure(rgb, roi=cheek, calibration="none")
        for dose in DOSES:
            for exposure, wb in LIGHTS:
                after, true = _after(lin, cheek, dose, exposure, wb)
                ma = measure(after, roi=cheek, reference_roi=ref, reference_target=mb.reference_rgb,
                             calibration="none")
                ua = measure(after, roi=cheek, calibration="none")
                d_ref = ma.metrics["redness.a_mean"] - mb.metrics["redness.a_mean"]
                d_unc = ua.metrics["redness.a_mean"] - ub.metrics["redness.a_mean"]
                rows.append((name, dose, exposure, true, d_ref, d_unc))
    print(f"{'photo':<16} {'dose':>5} {'expo':>5} {'true da*':>9} {'reference':>10} {'uncal.':>8}")
    for name, dose, expo, true, d_ref, d_unc in rows:
        print(f"{name:<16} {dose:5.2f} {expo:5.2f} {true:9.2f} {d_ref:10.2f} {d_unc:8.2f}")

    def ok(true, got):
        return abs(got - true) <= max(1.0, 0.25 * abs(true)) if abs(true) > 1e-6 else abs(got) < 1.0

    for label, k in (("reference", 4), ("uncalibrated", 5)):
        hits = [ok(r[3], r[k]) for r in rows]
        err = np.array([abs(r[k] - r[3]) for r in rows])
        print(f"{label:<13} within tolerance {sum(hits)}/{len(hits)} "
              f"({100 * np.mean(hits):.0f}%), median |error| {np.median(err):.2f}, max {err.max():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
