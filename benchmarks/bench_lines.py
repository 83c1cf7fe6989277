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
5. **Found again** (the noise model's calibration, ``texture.line_density_noise``):
   `--skins` synthetic skins (seeds 200-, 1200 x 900 at 0.07 mm/px, ``--ita``) x
   `--recaptures` captures (rotation +-2 deg, zoom +-3 %, shift +-20 px, exposure
   +-8 %, JPEG 88-95). For every ordered pair of captures, each line piece and near
   miss of the first is found again when more than half its pixels lie within `TOL_MM`
   of the second's centre lines, in the skin's own frame (the generator's homographies).
   Prints the share found again against the model (``line_found_p``) by mean evidence,
   the probits refitted by maximum likelihood (``--fit``), and the SD of the total line
   length over each skin's captures against the SD the model predicts (without the
   continuity term).

Run: ``python benchmarks/bench_lines.py [--skins N] [--recaptures N] [--sections 1,2,3,4,5]
[--wrinkle-depth D] [--size WxH] [--ita ITA] [--fit]``
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


def found_again(n_skins: int, n: int, ita: float | None = None) -> tuple[list[dict], dict]:
    """Section 5's data: one row per line piece or near miss and pair of captures
    (``kind``, ``skin``, ``a``, ``b``, ``length``, ``evidence``, ``found``: the share of
    its pixels found again), and each skin's total line length per capture."""
    from scipy.spatial import cKDTree

    from photokit.colour.convert import uint8_to_linear
    from photokit.metrics import texture as T
    from photokit.metrics.analysis import Analysis
    from photokit.synth import render_skin

    rng = np.random.default_rng(5)
    rows, totals = [], {}

    def canonical(im, ln, mask):
        ys, xs = np.nonzero(mask)
        fx, fy = ln.work.to_full(xs, ys)
        q = np.stack([fx, fy, np.ones_like(fx)], 1) @ np.asarray(im.truth.H).T
        return q[:, :2] / q[:, 2:], ys, xs

    for s in range(n_skins):
        caps = []
        for k in range(n):
            zoom = float(rng.uniform(0.97, 1.03))
            im = render_skin(seed=200 + s, width=1200, height=900, rotation_deg=float(rng.uniform(-2, 2)),
                             scale=zoom, shift_px=tuple(float(v) for v in rng.uniform(-20, 20, 2)),
                             jpeg_quality=int(rng.integers(88, 96)), noise_seed=k + 1,
                             exposure=float(rng.uniform(0.92, 1.08)), **({} if ita is None else {"ita": ita}))
            roi = cv2.erode(im.mask("skin").astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            caps.append((im, T.ridges(Analysis(uint8_to_linear(im.pixels), roi, im.truth.mm_per_px / zoom))))
        totals[s] = [ln.length_mm for _, ln in caps]
        tol = TOL_MM / caps[0][0].truth.mm_per_px
        for a, (ima, la) in enumerate(caps):
            for b, (imb, lb) in enumerate(caps):
                if a == b:
                    continue
                found_b = cKDTree(canonical(imb, lb, lb.centre)[0])
                skin_b = cKDTree(canonical(imb, lb, lb.valid)[0][::3])
                for kind, mask in (("found", la.centre), ("near", la.near)):
                    lengths, evidence = T.line_pieces(la, mask, la.evidence)
                    _, lab = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
                    pts, ys, xs = canonical(ima, la, mask)
                    ids = lab[ys, xs]
                    for i in range(1, lengths.size + 1):
                        q = pts[ids == i]
                        if np.mean(skin_b.query(q, distance_upper_bound=3)[0] < np.inf) < 0.9:
                            continue     # off the other capture's skin
                        again = found_b.query(q, distance_upper_bound=tol)[0] < np.inf
                        rows.append({"kind": kind, "skin": s, "a": a, "b": b, "length": float(lengths[i - 1]),
                                     "evidence": float(evidence[i - 1]), "found": float(np.mean(again))})
    return rows, totals


def fit_probit(rows: list[dict]) -> np.ndarray:
    """Maximum-likelihood ``(a, b, c)`` of ``P(found again) = Phi(a + b e + c ln(l / 3 mm))``."""
    from scipy import optimize, special

    from photokit.metrics import texture as T

    X = np.array([[1.0, r["evidence"], math.log(r["length"] / T.LINE_MIN_LENGTH_MM)] for r in rows])
    y = np.array([r["found"] > 0.5 for r in rows])

    def nll(th):
        p = np.clip(special.ndtr(X @ th), 1e-9, 1 - 1e-9)
        return -float(np.sum(np.where(y, np.log(p), np.log(1 - p))))

    return optimize.minimize(nll, np.zeros(3)).x


def section_found_again(n_skins: int, n: int, ita: float | None, fit: bool):
    from photokit.metrics import texture as T

    rows, totals = found_again(n_skins, n, ita)
    print(f"\n5. Found again, {n_skins} synthetic skins x {n} captures (ITA {ita or 'default'}), "
          "share of pieces found again (seen / model) by mean evidence (L*)")
    probits = {"found": T.LINE_FOUND_PROBIT, "near": T.LINE_NEAR_PROBIT}
    for kind, edges in (("found", (0, 0.9, 1.0, 1.1, 1.2, 1.3, 9)), ("near", (0, 0.8, 0.9, 1.0, 1.1, 9))):
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        e = np.array([r["evidence"] for r in rs])
        y = np.array([r["found"] > 0.5 for r in rs])
        p = T.line_found_p([r["length"] for r in rs], e, probits[kind])
        cells = [f"[{lo}, {hi}) {np.mean(y[m]):.2f} / {np.mean(p[m]):.2f} ({m.sum()})"
                 for lo, hi in zip(edges[:-1], edges[1:], strict=False) if (m := (e >= lo) & (e < hi)).any()]
        print(f"  {kind:5} {len(rs):6}: " + "; ".join(cells))
        if fit:
            print(f"        refitted probit (a, b, c): {np.round(fit_probit(rs), 2).tolist()} "
                  f"(in use: {list(probits[kind])})")
    # the model's variance of each capture's total (its pieces against the next capture)
    observed = predicted = 0.0
    for s, t in totals.items():
        var = []
        for a in range(n):
            b = (a + 1) % n
            rs = [r for r in rows if r["skin"] == s and r["a"] == a and r["b"] == b]
            p = np.array([T.line_found_p(r["length"], r["evidence"], probits[r["kind"]]) for r in rs])
            w = np.array([r["length"] for r in rs])
            var.append(float(np.sum(p * (1 - p) * w * w)))
        observed += float(np.var(t, ddof=1))
        predicted += float(np.mean(var))
        print(f"  skin {s}: total {np.mean(t):6.1f} mm, SD over captures {np.std(t, ddof=1):5.1f} "
              f"(CV {100 * np.std(t, ddof=1) / np.mean(t):4.1f} %), model {math.sqrt(np.mean(var)):5.1f}")
    print(f"  pooled SD observed / model: {math.sqrt(observed / predicted):.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skins", type=int, default=N_SKINS)
    ap.add_argument("--recaptures", type=int, default=N_RECAPTURES)
    ap.add_argument("--sections", default="1,2,3,4")
    ap.add_argument("--wrinkle-depth", type=float, default=1.0,
                    help="the generator's wrinkle_depth for sections 1 and 2 (1 = its default)")
    ap.add_argument("--size", default="1200x900", help="section 1's photo size WxH (default 1200x900)")
    ap.add_argument("--ita", type=float, default=None, help="section 5's skin tone (default the generator's)")
    ap.add_argument("--fit", action="store_true", help="section 5: refit the found-again probits")
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
    if "5" in which:
        section_found_again(args.skins, args.recaptures, args.ita, args.fit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
