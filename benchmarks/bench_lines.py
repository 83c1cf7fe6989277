"""Line (wrinkle) detection against synthetic ground truth: recall, precision, CV, speed.

Sections (each prints a table; the baselines are measured in the same run):

1. **Line length found** on synthetic close-ups (``photokit.synth``, 1200 x 900 at
   0.07 mm/px, or ``--size``, canonical pose, sensor noise, JPEG 92), `N_SKINS` skins:
   the truth is the generator's wrinkle centre lines (``SynthImage.truth.wrinkles``),
   drawn on the line working level. Recall = fraction of true centre-line pixels (inside
   the analysed skin) within `TOL_MM` of a detected centre pixel; precision = fraction of
   detected centre pixels within `TOL_MM` of a true centre line. Also the false length
   (mm) per skin, the analysed skin area, and the density found against the true one
   (true centre-line length in the analysed skin per cm^2).
2. **Re-capture CV** of ``texture.wrinkle_density`` and ``texture.wrinkle_depth`` on
   synthetic close-ups (the protocol of ``bench_repeatability.py``'s synthetic section:
   the same skin re-rendered with rotation +-2 deg, zoom +-3 %, shift +-20 px, new sensor
   noise, JPEG 88-95), per skin SD / mean; RMS and largest over skins.
3. **Real portraits**: the same CVs on re-captured real faces
   (``$PHOTOKIT_BENCH_DATA/faces`` and skimage's astronaut; pose, noise and JPEG via
   ``bench_repeatability.recapture``, face-derived skin masks and scale).
4. **Speed**: ``texture.wrinkle_density`` on a 12 MP synthetic close-up (4000 x 3000 at
   0.07 mm/px), against ``cv2.imread`` of the same JPEG.

Run: ``python benchmarks/bench_lines.py [--skins N] [--recaptures N] [--sections 1,2,3,4]
[--wrinkle-depth D] [--size WxH]``
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

N_SKINS = 6
N_RECAPTURES = 6
TOL_MM = 0.3
METRICS = ("texture.wrinkle_density", "texture.wrinkle_depth")


def line_metrics(an) -> dict[str, float | None]:
    from photokit.metrics import texture as T

    return {"texture.wrinkle_density": T.wrinkle_density(an),
            "texture.wrinkle_depth": T.wrinkle_depth(an)}


def truth_on_work(im, ln) -> np.ndarray:
    """The true centre lines drawn (1 px wide) on the lines' working crop."""
    wk = ln.work
    f = wk.factor
    lh, lw = wk.level.shape
    m = np.zeros((lh, lw), np.uint8)
    for w in im.truth.wrinkles:
        p = np.asarray(w["points"], np.float64)
        q = np.round(((p + 0.5) / f - 0.5) * 16).astype(np.int32)
        cv2.polylines(m, [q], False, 1, 1, cv2.LINE_8, 4)
    H, W = ln.centre.shape
    return m[wk.row_map][:, wk.x0:wk.x0 + W] > 0


def recall_precision(im, ln) -> tuple[float, float, float, float]:
    """(recall, precision, true length mm, false length mm) of centre-line pixels."""
    truth = truth_on_work(im, ln)
    r = max(1, int(round(TOL_MM / ln.work.mm_per_px)))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    near_truth = cv2.dilate(truth.view(np.uint8), k) > 0
    near_det = cv2.dilate(ln.centre.view(np.uint8), k) > 0
    t = truth & ln.valid
    det = ln.centre
    rec = np.count_nonzero(t & near_det) / max(1, np.count_nonzero(t))
    prec = np.count_nonzero(det & near_truth) / max(1, np.count_nonzero(det))
    mm = ln.work.mm_per_px
    return rec, prec, np.count_nonzero(t) * mm, np.count_nonzero(det & ~near_truth) * mm


def section_recall(n_skins: int, depth: float = 1.0, size: tuple[int, int] = (1200, 900)):
    from photokit.colour.convert import uint8_to_linear
    from photokit.metrics import texture as T
    from photokit.metrics.analysis import Analysis
    from photokit.synth import render_skin

    print(f"\n1. Line length found, {n_skins} synthetic close-ups {size[0]}x{size[1]} at 0.07 mm/px, "
          f"tolerance {TOL_MM} mm, generator wrinkle_depth {depth}")
    print(f"{'seed':>5} {'truth mm':>9} {'recall':>7} {'precision':>9} {'false mm':>9} "
          f"{'area cm2':>8} {'density':>8} {'true':>6} {'depth':>6}")
    rs, ps, fs = [], [], []
    for seed in range(100, 100 + n_skins):
        im = render_skin(seed=seed, width=size[0], height=size[1], noise_seed=1, jpeg_quality=92,
                         wrinkle_depth=depth)
        an = Analysis(uint8_to_linear(im.pixels), im.mask("skin"), im.truth.mm_per_px)
        ln = T.ridges(an)
        rec, prec, tl, fl = recall_precision(im, ln)
        rs.append(rec)
        ps.append(prec)
        fs.append(fl)
        dep = T.wrinkle_depth(an)
        area = ln.area_mm2 / 100
        print(f"{seed:>5} {tl:9.1f} {rec:7.2f} {prec:9.2f} {fl:9.1f} {area:8.1f} "
              f"{T.wrinkle_density(an):8.2f} {tl / area:6.2f} {dep if dep is None else round(dep, 2)!s:>6}")
    print(f"{'mean':>5} {'':>9} {np.mean(rs):7.2f} {np.mean(ps):9.2f} {np.mean(fs):9.1f}")


def cv_table(per_metric: dict[str, list[list[float]]], label: str) -> None:
    for k in METRICS:
        groups = per_metric.get(k, [])
        cvs = [statistics.pstdev(g) / abs(statistics.mean(g)) * 100 for g in groups
               if len(g) > 1 and statistics.mean(g)]
        var = [statistics.variance(g) for g in groups if len(g) > 1]
        sw = math.sqrt(np.mean(var)) if var else float("nan")
        if not cvs:
            print(f"  {label:10} {k:26} no values")
            continue
        print(f"  {label:10} {k:26} subjects {len(cvs):2}  CV rms {math.sqrt(np.mean(np.square(cvs))):5.1f} %"
              f"  max {max(cvs):5.1f} %  Sw {sw:.3f}  2.77 Sw {2.77 * sw:.2f}"
              f"  mean {np.mean([np.mean(g) for g in groups]):.2f}")


def section_synthetic_cv(n_skins: int, n: int, depth: float = 1.0):
    from photokit.colour.convert import uint8_to_linear
    from photokit.metrics.analysis import Analysis
    from photokit.synth import render_skin

    rng = np.random.default_rng(0)
    per: dict[str, list[list[float]]] = {}
    for seed in range(n_skins):
        vals: dict[str, list[float]] = {}
        for k in range(n):
            zoom = float(rng.uniform(0.97, 1.03))
            im = render_skin(seed=100 + seed, width=1200, height=900,
                             rotation_deg=float(rng.uniform(-2, 2)), scale=zoom,
                             shift_px=tuple(float(v) for v in rng.uniform(-20, 20, 2)),
                             jpeg_quality=int(rng.integers(88, 96)), noise_seed=k + 1,
                             wrinkle_depth=depth)
            roi = cv2.erode(im.mask("skin").astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            an = Analysis(uint8_to_linear(im.pixels), roi, im.truth.mm_per_px / zoom)
            for key, v in line_metrics(an).items():
                if v is not None:
                    vals.setdefault(key, []).append(float(v))
        for key, v in vals.items():
            if len(v) == n:
                per.setdefault(key, []).append(v)
    print(f"\n2. Re-capture CV, synthetic close-ups (0.07 mm/px), {n_skins} skins x {n} captures, "
          f"generator wrinkle_depth {depth}")
    cv_table(per, "synthetic")


def section_real_cv(n: int):
    import bench_repeatability as R

    from photokit.colour.convert import uint8_to_linear
    from photokit.metrics.analysis import Analysis

    def run(rgb, roi, mmpp):
        return line_metrics(Analysis(uint8_to_linear(rgb), roi, mmpp))

    per, _ = R.real_protocol(run, n, np.random.default_rng(1))
    print(f"\n3. Re-capture CV, real portraits (pose, noise, JPEG), {n} captures each")
    cv_table(per, "real")


def section_speed():
    import tempfile

    from PIL import Image

    from photokit.colour.convert import uint8_to_linear
    from photokit.io.photo import load
    from photokit.metrics import texture as T
    from photokit.metrics.analysis import Analysis
    from photokit.synth import render_skin

    print("\n4. Speed of texture.wrinkle_density on a 12 MP close-up (median of 3, fresh Analysis each)")
    im = render_skin(seed=7, width=4000, height=3000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "closeup_synth_12mp.jpg"
        Image.fromarray(im.pixels).save(path, quality=92)
        t_dec = []
        for _ in range(3):
            t = time.perf_counter()
            cv2.imread(str(path))
            t_dec.append(time.perf_counter() - t)
        photo = load(path, mm_per_px=im.truth.mm_per_px)
    lin = uint8_to_linear(photo.pixels)
    ts = []
    for _ in range(3):
        an = Analysis(lin, im.mask("skin"), im.truth.mm_per_px)
        an.level(T.TEXTURE_MM_PER_PX)   # the shared pyramid level, built by earlier steps
        t = time.perf_counter()
        d = T.wrinkle_density(an)
        ts.append(time.perf_counter() - t)
    dec, t = statistics.median(t_dec), statistics.median(ts)
    ln = T.ridges(an)
    print(f"  close-up 4000x3000 {im.truth.mm_per_px:.3f} mm/px: cv2.imread {dec:.3f} s, "
          f"wrinkle_density {t:.3f} s = {t / dec:.2f} x decode, value {d:.3f} mm/cm^2 "
          f"over {ln.area_mm2 / 100:.0f} cm^2 of skin")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skins", type=int, default=N_SKINS)
    ap.add_argument("--recaptures", type=int, default=N_RECAPTURES)
    ap.add_argument("--sections", default="1,2,3,4")
    ap.add_argument("--wrinkle-depth", type=float, default=1.0,
                    help="the generator's wrinkle_depth for sections 1 and 2 (1 = its default)")
    ap.add_argument("--size", default="1200x900", help="section 1's photo size WxH (default 1200x900)")
    args = ap.parse_args(argv)
    which = set(args.sections.split(","))
    if "1" in which:
        section_recall(args.skins, args.wrinkle_depth, tuple(int(v) for v in args.size.split("x")))
    if "2" in which:
        section_synthetic_cv(args.skins, args.recaptures, args.wrinkle_depth)
    if "3" in which:
        section_real_cv(args.recaptures)
    if "4" in which:
        section_speed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
