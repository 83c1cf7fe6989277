"""Repeatability of every registered metric on re-captures: real faces and synthetic skin.

Defines each metric's noise floor: the minimal detectable change ``MDC = 2.77 Sw``
(``Sw`` = within-subject SD pooled over subjects, ``sqrt(mean_i var_i)``; 2.77 =
1.96 sqrt(2), Bland and Altman 1996 / Weir 2005) that ``@metric(..., mdc=)`` declares.

Protocols
---------
``light-pose`` (the one the registered floors come from; see `light_pose_protocol`):
no-change synthetic pairs re-captured under a new light AND pose (exposure ratio
x0.7-1.35, white balance x0.9-1.1 per channel, 5000-6800 K, gradient <= 12 %, vignetting,
rotation +-3 deg, zoom +-4 %, noise, JPEG 85-95) at four skin tones (ITA 55, 35, 15, -20)
and three resolutions (720x540 at 0.1, 1200x900 at 0.07, 640x480 at 0.08 mm/px),
measured the way ``compare`` measures them
(``photokit.comparison.compare`` itself: its alignment carries the truth ROI), with the truth
reference-skin ROI (calibrated) and without (uncalibrated). Per metric: bias, Sw =
RMS(delta)/sqrt(2), MDC = 2.77 Sw, the 95th percentile and maximum of |delta|, the number
of pairs the registered MDC flags, and how many pairs have >= 1 metric flagged (the
family-wise false-positive count: with 26 metrics, per-metric 95 % floors flag most
no-change pairs somewhere; the registered floors use the Bonferroni z = 3.2, see the
comment above the metrics in each module). Pairs whose photos clip more than photokit's
quality check passes (1 % of the frame) are counted and left out.

``real-light``: the real portraits below re-captured with exposure x0.7-1.35 and white
balance +-10 % (linear RGB) besides the pose change, uncalibrated (colour metrics that
follow the gain are expected to move; the gain-free ones - spots, evenness, area
fractions - must not).

``real`` (pose only) and ``synthetic`` (pose only, 0.07 mm/px), as before:

Subjects: the real portraits in ``$PHOTOKIT_BENCH_DATA/faces`` plus
``skimage.data.astronaut()``. For each, `N_RECAPTURES` re-captures: a random similarity
(rotation +-2 deg, scale +-3%, shift +-1.5% of the size: a small pose change), Gaussian
sensor noise of SD 2 (8-bit levels), JPEG re-encoding at quality 88-95, decoded again.
The skin to analyse is found on the original photo as ``photokit.measurement.measure`` finds it
(``photokit.faces.skin.skin_mask`` seeded on the detected faces, eyes, brows and lips removed;
without the faces, red curtains and flags behind the portraits passed for skin and gave
most of the red "spots"; else cheek and forehead boxes placed from the detected face,
intersected with a YCrCb skin-colour rule) and carried onto each re-capture through the known
transform (as ``compare`` and ``series`` carry a region through the alignment); the scale is the original's
face-estimate, divided by the re-capture's zoom (as a card in frame would give it).

A second protocol does the same at clinical resolution on synthetic skin
(``photokit.synth``, 1200 x 900 px at 0.07 mm/px, `N_SYNTH` skins): re-captures with
the generator's camera (rotation +-2 deg, zoom +-3%, shift +-20 px, its sensor noise,
JPEG 88-95), the true skin region in each photo's frame and the true scale. The real
portraits here are web-sized (0.34-1.4 mm/px from the inter-ocular distance), too
coarse for the 0.2-2 mm texture band and pores, which then return None, and all but
one (biden2, 0.33 mm/px, a smile whose narrowed eyes only the face module's looser eye pass
finds) too coarse for spots; the synthetic protocol measures those at the resolution they are meant for.

Each metric is computed through ``photokit.measurement.measure`` when it exists, else directly from
an `Analysis` built here (calibration none). Output: a table of mean, within-subject
CV (mean over subjects of SD/|mean|), Sw and MDC per metric, with the registered MDC
beside it; ``--json FILE`` saves it. The baseline row ``decode+linear`` is not a metric:
it reports the CV of mean linear luminance, the floor set by noise and JPEG alone.

Run: ``python benchmarks/bench_repeatability.py [--protocols light-pose,real-light,real,synthetic]
[--pairs 16] [--recaptures 6] [--workers 2] [--json out.json]`` (light-pose at 16 pairs per
cell: about 8 min on 2 cores).
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


def recapture(rgb: np.ndarray, rng: np.random.Generator, light: bool = False):
    """A re-capture of `rgb` and the 2x3 map from original to re-capture pixels.

    ``light=True`` also changes the light: exposure x U(0.7, 1.35) and white balance
    x U(0.9, 1.1) per channel, applied in linear RGB (sRGB decode, gain, encode).
    """
    h, w = rgb.shape[:2]
    if light:
        from photokit.colour.convert import linear_to_srgb, uint8_to_linear

        gains = (rng.uniform(0.7, 1.35) * rng.uniform(0.9, 1.1, 3)).astype(np.float32)
        lin = np.clip(uint8_to_linear(rgb) * gains, 0, 1)
        rgb = np.clip(np.round(linear_to_srgb(lin) * 255), 0, 255).astype(np.uint8)
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
    """The skin `photokit.measurement.measure` analyses without an ROI: `photokit.faces.skin.skin_mask`
    seeded on the detected faces' cheeks, their eyes, brows and lips removed. (Without the
    faces the colour rule alone also takes red curtains, flags and gilt drapery behind the
    portraits for skin, and their folds for red spots.)"""
    try:
        from photokit.faces.skin import skin_mask as photokit_skin_mask
    except ImportError:
        return fallback_skin(rgb, faces[0])
    return np.asarray(photokit_skin_mask(rgb, faces=faces), bool)


def measurer():
    """A function (rgb, roi mask, mm_per_px) -> {metric: value}, and its name."""
    from photokit.measurement.measure import measure

    def run(rgb, roi, mmpp):
        return dict(measure(rgb, roi=roi, mm_per_px=mmpp, calibration="none").metrics)

    return run, "photokit.measure"


def real_protocol(run, n, rng, light=False):
    """{metric: [[values of subject i]]}, baseline luminance groups."""
    from photokit.colour.convert import uint8_to_linear
    from photokit.faces.haar import detect_faces
    from photokit.io.photo import load
    from photokit.metrics.scale import estimate_scale

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
            rc, M, zoom = recapture(rgb, rng, light)
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
    from photokit.colour.convert import uint8_to_linear
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


# --------------------------------------------------------------- light + pose, via compare
#: Skin tones (ITA, degrees: very light, light, intermediate, brown) and resolutions
#: (width, height, mm/px) of the light-and-pose protocol.
LP_ITAS = (55.0, 35.0, 15.0, -20.0)
LP_RESOLUTIONS = ((720, 540, 0.10), (1200, 900, 0.07), (640, 480, 0.08))
LP_PAIRS = 6
#: Largest light gradient (centre to frame end) and vignetting of a capture: those of
#: ``photokit.synth.Camera.random`` at full strength.
LP_GRADIENT, LP_VIGNETTING = 0.12, 0.10
#: Pairs where either photo has more of its frame clipped than `photokit.measurement.quality` passes
#: without a warning (1 %: an over-exposed very light skin at exposure x1.3-1.5) are left
#: out of the floors and counted: photokit warns about them, and clipping flattens texture.
CLIP_PASS_PCT = 1.0


def lp_camera(rng: np.random.Generator, exposure: float, gradient: float = LP_GRADIENT,
              vignetting: float = LP_VIGNETTING):
    """One capture of the light-and-pose protocol (see `light_pose_protocol`)."""
    from photokit.synth import Camera

    u = rng.uniform
    return Camera(rotation_deg=u(-3, 3), scale=1 + u(-0.04, 0.04), shift_px=(u(-30, 30), u(-30, 30)),
                  perspective=(u(-1e-5, 1e-5), u(-1e-5, 1e-5)), exposure=exposure,
                  cct_k=u(5000, 6800), wb_gains=tuple(1 + u(-0.1, 0.1, 3)), gradient=u(0, gradient),
                  gradient_angle_deg=u(0, 360), vignetting=u(0, vignetting),
                  jpeg_quality=int(rng.integers(85, 96)), noise_seed=int(rng.integers(1 << 30)))


def light_mi(im, cam, calibrator: np.ndarray) -> float:
    """The melanin index a calibration fitted on `calibrator` (a mask of photo pixels) leaves
    on the ROI of `im` from the light field alone: ``-100 log10(F_roi / F_calibrator)``,
    ``F`` the camera's illumination field (gradient and vignetting) averaged over each."""
    h, w = im.pixels.shape[:2]
    f = cam.illumination_field(w, h)
    return float(-100 * np.log10(f[im.mask("roi")].mean() / f[calibrator].mean()))


def card_mask(im) -> np.ndarray:
    """The card's pixels in `im` (its true corners)."""
    m = np.zeros(im.pixels.shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(im.truth.card["corners"])).astype(np.int32)], 1)
    return m.astype(bool)


def lp_job(job):
    """Deltas of one no-change pair, with reference-skin calibration and without; with a
    colour card in the scene (``opts["card"]``) also card-calibrated (no reference)."""
    import importlib

    from photokit.synth import SkinParams, make_pair

    C = importlib.import_module("photokit.comparison.compare")
    ita, (w, h, mmpp), seed, opts = job
    rng = np.random.default_rng(seed)
    e0 = rng.uniform(0.9, 1.1)
    cams = [lp_camera(rng, e0, opts["gradient"], opts["vignetting"])]
    cams.append(lp_camera(rng, e0 * rng.uniform(0.7, 1.35), opts["gradient"], opts["vignetting"]))
    where = {"card_centre": opts["card_centre"]} if opts.get("card_centre") else {}
    p = make_pair(int(seed % 1000), SkinParams(width=w, height=h, mm_per_px=mmpp, ita=ita, card=opts["card"],
                                               **where),
                  camera_before=cams[0], camera_after=cams[1])
    assert all(abs(v) < 1e-9 for v in p.delta.values()), p.delta   # the skin did not change
    # % of the frame clipped (any channel >= 250), as photokit.measurement.quality grades it
    out = {"clipped_pct": max(float(np.mean(im.pixels.max(axis=-1) >= 250) * 100)
                              for im in (p.before, p.after))}
    methods = [("calibrated", p.before.mask("reference"), "none"), ("uncalibrated", None, "none")]
    if opts["card"]:
        methods.append(("card", None, "checker"))
    for label, ref, how in methods:
        try:
            c = C.compare(p.before.pixels, p.after.pixels, roi=p.before.mask("roi"), reference_roi=ref,
                          mm_per_px=mmpp, calibration=how)
        except Exception as exc:            # a card not found: counted, left out
            out.setdefault("errors", {})[label] = str(exc)
            continue
        out[label] = {k: float(v) for k, v in c.delta.items() if v is not None and math.isfinite(v)}
        if label == "calibrated":
            out["before"] = {k: float(v) for k, v in c.before.metrics.items()
                             if v is not None and math.isfinite(v)}
        if label == "card":
            out["card_delta_e"] = [importlib.import_module("photokit.comparison.sameskin").calibration_of(m)
                                   .get("delta_e_mean") for m in (c.before, c.after)]
    # the MI delta the light field alone leaves after each calibration (see `light_mi`)
    calibrators = {"calibrated": lambda im: im.mask("reference")}
    if opts["card"]:
        calibrators["card"] = card_mask
    out["light_mi"] = {label: light_mi(p.after, cams[1], where(p.after)) - light_mi(p.before, cams[0],
                                                                                     where(p.before))
                       for label, where in calibrators.items()}
    return (ita, w), out


def light_pose_protocol(n_pairs: int, seed: int, workers: int = 2, *, card: bool = False,
                        gradient: float = LP_GRADIENT, vignetting: float = LP_VIGNETTING,
                        resolutions=LP_RESOLUTIONS, card_centre: tuple[float, float] | None = None):
    """No-change pairs under a new light and pose, measured by ``photokit.comparison.compare``.

    Each pair is the same synthetic skin (`photokit.synth.make_pair`, no change of any
    truth metric) photographed twice with independent cameras: rotation +-3 deg, zoom
    +-4 %, shift +-30 px, slight perspective; exposure ratio AFTER/BEFORE U(0.7, 1.35);
    white balance x U(0.9, 1.1) per channel and CCT 5000-6800 K; a linear light gradient
    up to `LP_GRADIENT` and vignetting up to `LP_VIGNETTING`; the generator's sensor
    noise and blur; JPEG 85-95.
    Skin tones `LP_ITAS`, resolutions `LP_RESOLUTIONS`, `n_pairs` pairs per cell.
    ``compare`` aligns the pair itself and carries the truth ROI through its alignment,
    with the truth reference ROI (calibrated: reference-skin method) and without it.

    With `card`, a ColorChecker lies in every scene (`photokit.synth.SkinParams.card`, a
    quarter of the frame wide at (0.8, 0.8) of the frame; the ROI is centred at (0.42,
    0.56), the reference skin at (0.17, 0.16)) and each pair is also compared
    card-calibrated (``calibration="checker"``, no reference): the same pairs, three
    calibrations. `card_centre` (frame fractions) moves the card (e.g. (0.42, 0.88): just
    below the ROI). `gradient`, `vignetting`: the largest of each capture's light field.

    Pairs with a photo clipped beyond `CLIP_PASS_PCT` are left out of the pooled deltas.

    Returns {"calibrated"|"uncalibrated"|"card"|"before": {metric: [values]}} and the
    per-pair results.
    """
    from concurrent.futures import ProcessPoolExecutor

    opts = {"card": card, "gradient": gradient, "vignetting": vignetting, "card_centre": card_centre}
    jobs = [(ita, res, seed * 100003 + 1000 * i + k, opts)
            for i, (ita, res) in enumerate((a, r) for a in LP_ITAS for r in resolutions)
            for k in range(n_pairs)]
    with ProcessPoolExecutor(max_workers=workers) as ex:
        results = list(ex.map(lp_job, jobs))
    pooled: dict[str, dict[str, list[float]]] = {"calibrated": {}, "uncalibrated": {}, "before": {}}
    if card:
        pooled["card"] = {}
    for _, out in results:
        if out["clipped_pct"] > CLIP_PASS_PCT:
            continue
        for label in pooled:
            for k, v in out.get(label, {}).items():
                pooled[label].setdefault(k, []).append(v)
    return pooled, results


def delta_table(deltas: dict[str, list[float]], registered, levels=None) -> list[dict]:
    """Paired-difference repeatability: ``Sw = RMS(delta) / sqrt 2`` (the RMS keeps any
    light-driven bias in the floor), ``MDC = 2.77 Sw = 1.96 RMS(delta)``; the 95th
    percentile and the maximum of ``|delta|`` beside it, how many no-change pairs the
    registered MDC calls significant, and ``CV = Sw / mean level`` (`levels`: BEFORE values)."""
    rows = []
    order = list(registered)
    for k in sorted(deltas, key=lambda n: order.index(n) if n in order else 999):
        d = np.asarray(deltas[k])
        m = registered.get(k)
        rms = float(np.sqrt(np.mean(d ** 2)))
        lev = np.mean(np.abs(levels[k])) if levels and levels.get(k) else float("nan")
        rows.append({"metric": k, "unit": m.unit if m else "", "pairs": int(d.size),
                     "level": float(lev),
                     "cv_pct": float(100 * rms / math.sqrt(2) / lev) if lev > 0 else None,
                     "bias": float(d.mean()), "sw": rms / math.sqrt(2), "mdc": 1.96 * rms,
                     "p95": float(np.percentile(np.abs(d), 95)), "max": float(np.abs(d).max()),
                     "registered_mdc": m.mdc if m else None,
                     "flagged": int((np.abs(d) > m.mdc).sum()) if m else None})
    return rows


def show_deltas(title, rows, n_pairs_total, any_flagged):
    print(f"\n{title}")
    print(f"{'metric':32s} {'unit':9s} {'n':>3s} {'level':>9s} {'CV%':>6s} {'bias':>9s} "
          f"{'Sw':>9s} {'MDC':>9s} {'p95|d|':>9s} "
          f"{'max|d|':>9s} {'reg.MDC':>8s} {'flagged':>7s}")
    for r in rows:
        reg = "-" if r["registered_mdc"] is None else f"{r['registered_mdc']:8.4g}"
        cv = "-" if r["cv_pct"] is None else f"{r['cv_pct']:6.2f}"
        print(f"{r['metric']:32s} {r['unit']:9s} {r['pairs']:3d} {r['level']:9.4g} {cv:>6s} "
              f"{r['bias']:9.4f} {r['sw']:9.4f} "
              f"{r['mdc']:9.4f} {r['p95']:9.4f} {r['max']:9.4f} {reg:>8s} {r['flagged'] or 0:7d}")
    print(f"no-change pairs with >= 1 metric flagged by the registered MDCs: {any_flagged}/{n_pairs_total} "
          f"(pairs passing the clipping check)")


def family_flags(results, label, registered) -> int:
    n = 0
    for _, out in results:
        if out["clipped_pct"] > CLIP_PASS_PCT:
            continue
        d = out.get(label, {})
        n += any(abs(v) > registered[k].mdc for k, v in d.items() if k in registered)
    return n


def show_light_share(results) -> None:
    """How much of each calibration's melanin-index spread the light field explains: the
    measured MI delta against `light_mi`'s prediction (pairs passing the clipping check)."""
    print("\nMelanin index deltas against the light field's share (`light_mi`: gradient and "
          "vignetting between the calibrator and the ROI)")
    print(f"{'calibration':12s} {'pairs':>5s} {'RMS delta':>9s} {'RMS light':>9s} {'corr':>6s} "
          f"{'RMS delta - light':>17s} {'failed':>6s}")
    for label in ("calibrated", "card"):
        rows = [(out[label]["pigment.mi_mean"], out["light_mi"][label]) for _, out in results
                if out["clipped_pct"] <= CLIP_PASS_PCT and "pigment.mi_mean" in out.get(label, {})
                and label in out["light_mi"]]
        failed = sum(label in out.get("errors", {}) for _, out in results)
        if len(rows) < 3:
            continue
        d, g = np.asarray(rows).T
        print(f"{label:12s} {d.size:5d} {np.sqrt(np.mean(d ** 2)):9.3f} {np.sqrt(np.mean(g ** 2)):9.3f} "
              f"{np.corrcoef(d, g)[0, 1]:6.2f} {np.sqrt(np.mean((d - g) ** 2)):17.3f} {failed:6d}")


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
    ap.add_argument("--pairs", type=int, default=LP_PAIRS,
                    help="no-change pairs per skin tone and resolution (light-and-pose protocol)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--card", action="store_true",
                    help="light-pose: a colour card in every scene, each pair also card-calibrated")
    ap.add_argument("--card-centre", default=None,
                    help="light-pose with --card: the card's centre as x,y frame fractions (default 0.8,0.8)")
    ap.add_argument("--gradient", type=float, default=LP_GRADIENT,
                    help="light-pose: largest light gradient of a capture (the registered floors: 0.08)")
    ap.add_argument("--vignetting", type=float, default=LP_VIGNETTING,
                    help="light-pose: largest vignetting of a capture (the registered floors: 0.05)")
    ap.add_argument("--resolutions", default=None,
                    help="light-pose: indices into LP_RESOLUTIONS, comma separated (default all; "
                         "the registered floors: 0,1)")
    ap.add_argument("--protocols", default="light-pose,real-light,real,synthetic",
                    help="comma-separated subset of light-pose, real-light, real, synthetic")
    args = ap.parse_args(argv)
    which = set(args.protocols.split(","))

    from photokit import metrics

    run, how = measurer()
    rng = np.random.default_rng(args.seed)
    registered = {m.name: m for m in metrics.registered()}
    doc = {}
    if "light-pose" in which:
        t0 = time.perf_counter()
        res = (LP_RESOLUTIONS if args.resolutions is None
               else tuple(LP_RESOLUTIONS[int(i)] for i in args.resolutions.split(",")))
        pooled, results = light_pose_protocol(args.pairs, args.seed, args.workers, card=args.card,
                                              gradient=args.gradient, vignetting=args.vignetting,
                                              resolutions=res, card_centre=None if args.card_centre is None
                                              else tuple(float(v) for v in args.card_centre.split(",")))
        dt = time.perf_counter() - t0
        n_ok = sum(out["clipped_pct"] <= CLIP_PASS_PCT for _, out in results)
        doc["light_pose_pairs"] = [{"ita": c[0], "width": c[1], **out} for c, out in results]
        how = {"calibrated": "reference skin", "uncalibrated": "no reference, no card",
               "card": "colour card, no reference"}
        for label in pooled:
            if label == "before":
                continue
            rows = delta_table(pooled[label], registered, pooled["before"])
            doc[f"light_pose_{label}"] = rows
            show_deltas(f"Light + pose, no-change synthetic pairs via photokit.comparison.compare, {label} "
                        f"({how[label]}); gradient <= {args.gradient:g}, vignetting <= {args.vignetting:g}; "
                        f"ITA {LP_ITAS}, {[f'{w}x{h}@{m}mm' for w, h, m in res]}, "
                        f"{args.pairs} pairs each, {n_ok} pass the clipping check ({dt:.0f} s)",
                        rows, n_ok,
                        family_flags(results, label, registered))
        show_light_share(results)
    if "real-light" in which:
        t0 = time.perf_counter()
        rows = table(*real_protocol(run, args.recaptures, rng, light=True), registered)
        doc["real_light"] = rows
        show(f"Real portraits, light + pose re-captures (exposure x0.7-1.35, WB +-10 %), "
             f"{args.recaptures} each, uncalibrated, via {how} ({time.perf_counter() - t0:.0f} s)", rows)
    if "real" in which:
        t0 = time.perf_counter()
        rows = table(*real_protocol(run, args.recaptures, rng), registered)
        doc["real"] = rows
        show(f"Real portraits, pose-only re-captures, {args.recaptures} each, via {how} "
             f"({time.perf_counter() - t0:.0f} s)", rows)
    if "synthetic" in which:
        t0 = time.perf_counter()
        rows = table(*synthetic_protocol(run, args.recaptures, args.synthetic_skins, rng), registered)
        doc["synthetic"] = rows
        show(f"Synthetic skin at 0.07 mm/px, pose only, {args.synthetic_skins} skins x "
             f"{args.recaptures} re-captures ({time.perf_counter() - t0:.0f} s)", rows)
    if args.json:
        from photokit.io.atomic import write_text

        write_text(args.json, json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
