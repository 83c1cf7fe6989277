"""Real re-captures of a person: photokit.registration.align against the previous code and OpenCV.

Run ``python benchmarks/bench_recapture.py [--old-tree PATH] [--quick]``. Data come from
``$PHOTOKIT_BENCH_DATA`` (default ``shared/data`` beside the repository). The previous
code is run from a git worktree of an older commit (``git worktree add /tmp/old <commit>``)
in a subprocess with that tree first on ``PYTHONPATH``; without ``--old-tree`` its column
is left out.

Datasets
--------
- ``recaptures/zoom``: one person at 15, 30, 45 and 60 cm, all 6 pairs (nearer photo as
  BEFORE); 83 hand-placed points per photo (``.tem``; 63 and 81 the pupils).
- ``london``: 12 people, neutral (``ID_03``) and smiling (``ID_08``): the 12
  neutral/smiling pairs and the 66 different-person neutral/neutral pairs (same studio,
  same light, same background).
- ``faces``: six portraits, each against itself under a random similarity (rotation up to
  8 degrees, scale 0.85-1.15) with white-balance change and JPEG q 85 (same-person pairs
  whose identity evidence is also printed).

Scores
------
- zoom: status; the BEFORE ``.tem`` points carried into AFTER (``map_points``; the
  previous code and the baseline through their homography and, for the previous code,
  its dense field) against AFTER's hand-placed points, in % of AFTER's inter-pupil
  distance (median over the 83 points, then median and max over the pairs; points
  mapped to null are counted apart); face residual: median magnitude of an independent
  dense flow (OpenCV Farneback on CLAHE luma, not the DIS flow align uses) between
  BEFORE and the aligned AFTER inside the hand-placed points' hull, BEFORE pixels. When
  AFTER's face is smaller than BEFORE's, both are first reduced by that ratio (AFTER has
  no detail finer than its own pixels) and the flow is scaled back to BEFORE pixels.
- zoom with a cheek ROI (``roi=``, two discs placed from the hand points: 0.75 IPD below
  each pupil, radius 0.22 IPD), as a clinician marks a treated area: the same scores.
  (Until 2026-12-07 such a ROI sent the pair down the feature path, whose fit followed
  the room behind the face.) And the same with the face detector made to miss AFTER's
  face, then BEFORE's (`face_missed`; photokit only: the baseline has no face detector),
  as for a face too close or cut by the frame.
- london: strangers refused, and the largest confidence any of them gets; the
  neutral/smiling pairs aligned with an expression warning, refused, or plain "ok".
- identity evidence (this code): skin-detail matches explained by the alignment on
  same-person and different-person pairs, the linear-discriminant fit of ``log(1 + n)``
  behind ``photokit.registration.align.identity_posterior`` and a leave-one-subject-out
  check of it (the fit without any pair of a London subject, applied to that subject's
  pairs).
- speed: two real 12 MP face pairs, each upscaled (grain of sigma 2 grey levels added,
  JPEG q 92) and aligned (photos already decoded), against one ``cv2.imread`` of the
  file: medians over 7 interleaved rounds (decode, align) after one warm-up alignment,
  same run. London 001 neutral/smiling (3464 x 3464: the smile moved the face, so only
  the mesh fit runs) and the zoom pair 30/45 cm (3000 x 4000: the face kept its shape,
  so the feature fit runs too, and is refused). ``--speed`` runs this section alone.

Baseline: SIFT on the whole full-resolution frame, FLANN, Lowe ratio 0.7,
``findHomography(RANSAC, 5.0)``, refused below 10 matches (the OpenCV tutorial).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from bench_align import baseline  # the OpenCV tutorial recipe, one copy for both benchmarks

DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ZOOM = ("15cm", "30cm", "45cm", "60cm")
LONDON = ("001", "003", "006", "012", "024", "025", "030", "037", "043", "064", "087", "099")


def read_tem(path) -> np.ndarray:
    """WebMorph template: first line the count, then ``x<TAB>y`` per point."""
    lines = Path(path).read_text().split("\n")
    n = int(lines[0])
    return np.array([[float(v) for v in ln.split()[:2]] for ln in lines[1:n + 1]])


def read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------------------ engines
class Result:
    """One engine's answer on a pair, in a form all three engines can give."""

    def __init__(self, ok, confidence, reason, warnings, identity, carry, warp):
        self.ok, self.confidence, self.reason = ok, confidence, reason
        self.warnings, self.identity, self.carry, self.warp = warnings, identity, carry, warp


def _apply(h, pts):
    p = np.c_[pts, np.ones(len(pts))] @ np.asarray(h, float).T
    return p[:, :2] / p[:, 2:3]


def run_photokit(before_rgb, after_rgb, roi=None) -> Result:
    """photokit's align from whichever tree is first on the path."""
    from photokit.registration.align import align
    al = align(before_rgb, after_rgb, roi=roi)

    def carry(pts):
        if hasattr(al, "map_points"):
            return [None if p is None else p for p in al.map_points(pts)]
        # previous code: H^-1 (x + field(x))
        out = []
        for x, y in pts:
            d = al.displacement((int(round(x)), int(round(y)), int(round(x)) + 1, int(round(y)) + 1))
            dx, dy = (0.0, 0.0) if d is None or d.size == 0 else (float(d[0, 0, 0]), float(d[0, 0, 1]))
            out.append(_apply(np.linalg.inv(al.homography), np.array([[x + dx, y + dy]]))[0].tolist())
        return out

    d = al.to_dict()
    return Result(al.ok, float(al.confidence), al.reason, d.get("warnings", []), d.get("identity"), carry,
                  (lambda img: al.warp(img)) if al.ok else None)


def run_baseline(before_rgb, after_rgb, roi=None) -> Result:
    """The OpenCV recipe on the whole frame (it takes no region)."""
    h = baseline(before_rgb, after_rgb)
    if h is None:
        return Result(False, 0.0, "fewer than 10 matches", [], None, None, None)
    hb, wb = before_rgb.shape[:2]
    return Result(True, float("nan"), None, [], None,
                  lambda pts: _apply(np.linalg.inv(h), np.asarray(pts, float)).tolist(),
                  lambda img: cv2.warpPerspective(img, h, (wb, hb)))


# ------------------------------------------------------------------------------ scores
def face_residual(before_rgb, aligned_rgb, hull_pts, ratio) -> float:
    """Median Farneback flow (BEFORE px) inside the hull of `hull_pts`, at `ratio` resolution."""
    gb = cv2.cvtColor(before_rgb, cv2.COLOR_RGB2GRAY)
    ga = cv2.cvtColor(aligned_rgb, cv2.COLOR_RGB2GRAY)
    mask = np.zeros(gb.shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(hull_pts.astype(np.float32)).astype(np.int32), 1)
    mask = cv2.erode(mask, np.ones((15, 15), np.uint8))
    ratio = min(1.0, ratio)
    if ratio < 1.0:
        size = (max(1, int(gb.shape[1] * ratio)), max(1, int(gb.shape[0] * ratio)))
        gb, ga = (cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (gb, ga))
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    f = cv2.calcOpticalFlowFarneback(clahe.apply(gb), clahe.apply(ga), None, 0.5, 4, 21, 3, 5, 1.1, 0)
    mag = np.hypot(f[..., 0], f[..., 1])[mask > 0]
    return float(np.median(mag)) / ratio


def cheek_roi(shape, tem) -> np.ndarray:
    """Two cheek discs placed from the hand points alone (independent of photokit's face
    model): centred 0.75 IPD below each pupil, radius 0.22 IPD."""
    p1, p2 = tem[63], tem[81]
    ipd = float(np.linalg.norm(p1 - p2))
    m = np.zeros(shape[:2], np.uint8)
    for p in (p1, p2):
        cv2.circle(m, (int(round(p[0])), int(round(p[1] + 0.75 * ipd))), int(round(0.22 * ipd)), 1, -1)
    return m.astype(bool)


@contextlib.contextmanager
def face_missed(rgb):
    """The face detector of photokit's `align` finds no face in `rgb` (as for a face too
    close or cut by the frame); other photos as usual."""
    import photokit.registration.align as A
    from photokit.faces.search import FacePass

    found, sign = A.face_pass, rgb[::97, ::89].tobytes()

    def face_pass(photo):
        r = found(photo)
        return FacePass([], r.haar) if photo.pixels[::97, ::89].tobytes() == sign else r

    A.face_pass = face_pass
    try:
        yield
    finally:
        A.face_pass = found


def zoom_pairs(run, quick, roi=False, miss=None):
    rows = []
    pairs = list(itertools.combinations(ZOOM, 2))
    for b, a in pairs[:3] if quick else pairs:
        rb, ra = read_rgb(DATA / f"recaptures/zoom/{b}.jpg"), read_rgb(DATA / f"recaptures/zoom/{a}.jpg")
        tb, ta = read_tem(DATA / f"recaptures/zoom/{b}.tem"), read_tem(DATA / f"recaptures/zoom/{a}.tem")
        missed = {"before": rb, "after": ra}.get(miss)
        with face_missed(missed) if missed is not None else contextlib.nullcontext():
            r = run(rb, ra, roi=cheek_roi(rb.shape, tb) if roi else None)
        row = {"pair": f"{b}-{a}", "ok": r.ok, "reason": r.reason, "identity": r.identity}
        if r.ok:
            ipd_a = float(np.linalg.norm(ta[63] - ta[81]))
            ipd_b = float(np.linalg.norm(tb[63] - tb[81]))
            mapped = r.carry(tb)
            err = [float(np.linalg.norm(np.subtract(m, t))) / ipd_a * 100
                   for m, t in zip(mapped, ta, strict=True) if m is not None]
            row["points_pct"] = float(np.median(err)) if err else None
            row["points_null"] = sum(m is None for m in mapped)
            row["residual_px"] = face_residual(rb, r.warp(ra), tb, ipd_a / ipd_b)
        rows.append(row)
    return rows


def london_pairs(run, quick):
    ids = LONDON[:5] if quick else LONDON
    imgs = {}

    def img(name):
        if name not in imgs:
            imgs[name] = read_rgb(DATA / f"london/{name}.jpg")
        return imgs[name]

    rows = []
    for i in ids:
        r = run(img(f"{i}_03"), img(f"{i}_08"))
        rows.append({"kind": "smile", "pair": f"{i}_03-{i}_08", "ok": r.ok, "confidence": r.confidence,
                     "reason": r.reason, "expression_warning": any("expression" in w for w in r.warnings),
                     "identity": r.identity, "subjects": [i]})
    for b, a in itertools.combinations(ids, 2):
        r = run(img(f"{b}_03"), img(f"{a}_03"))
        rows.append({"kind": "stranger", "pair": f"{b}_03-{a}_03", "ok": r.ok, "confidence": r.confidence,
                     "reason": r.reason, "identity": r.identity, "subjects": [b, a]})
    return rows


def portrait_pairs(run, quick):
    rng = np.random.default_rng(7)
    rows = []
    for f in sorted((DATA / "faces").glob("*.jpg"))[: 2 if quick else None]:
        rgb = read_rgb(f)
        h, w = rgb.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), rng.uniform(0.85, 1.15))
        m[:, 2] += rng.uniform(-0.03, 0.03, 2) * (w, h)
        after = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        after = np.clip(after * np.array([1.1, 1.0, 0.9]), 0, 255).astype(np.uint8)
        ok, enc = cv2.imencode(".jpg", after, [cv2.IMWRITE_JPEG_QUALITY, 85])
        r = run(rgb, cv2.imdecode(enc, cv2.IMREAD_UNCHANGED))
        rows.append({"pair": f.stem, "ok": r.ok, "identity": r.identity, "confidence": r.confidence})
    return rows


#: The 12 MP pairs of the speed section: (name, BEFORE, AFTER, size).
SPEED_PAIRS = (("London 001 neutral/smiling", "london/001_03.jpg", "london/001_08.jpg", (3464, 3464)),
               ("zoom 30/45 cm", "recaptures/zoom/30cm.jpg", "recaptures/zoom/45cm.jpg", (3000, 4000)))


def speed(run, rounds=7):
    """``{pair name: {decode_s, align_s, ratio, ok}}`` of the `SPEED_PAIRS` (module notes)."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(12)
        for name, before, after, size in SPEED_PAIRS:
            paths = []
            for tag, x in (("b", read_rgb(DATA / before)), ("a", read_rgb(DATA / after))):
                p = Path(tmp) / f"{len(out)}{tag}.jpg"
                big = cv2.resize(x, size, interpolation=cv2.INTER_CUBIC).astype(np.float32)
                # a camera's grain (sigma 2 grey levels): an upscaled photo without it is
                # smoother than any real 12 MP capture, and its JPEG decodes several times faster
                big = np.clip(big + rng.normal(0, 2.0, big.shape), 0, 255).astype(np.uint8)
                cv2.imwrite(str(p), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
                paths.append(p)
            b12, a12 = read_rgb(paths[0]), read_rgb(paths[1])
            r = run(b12, a12)                     # warm-up: networks loaded, caches filled
            dec, times = [], []
            for _ in range(rounds):               # interleaved: both see the same machine load
                t = time.perf_counter()
                cv2.imread(str(paths[0]))
                dec.append(time.perf_counter() - t)
                t = time.perf_counter()
                r = run(b12, a12)
                times.append(time.perf_counter() - t)
            out[name] = {"decode_s": float(np.median(dec)), "align_s": float(np.median(times)),
                         "ratio": float(np.median(np.array(times) / np.array(dec))), "ok": r.ok}
    return out


def evaluate(run, quick, only_speed=False):
    if only_speed:
        return {"speed": speed(run)}
    return {"zoom": zoom_pairs(run, quick), "zoom_roi": zoom_pairs(run, quick, roi=True),
            **{f"zoom_roi_missed_{m}": zoom_pairs(run, quick, roi=True,
                                                  miss=m if run is run_photokit else None)
               for m in ("after", "before")},
            "london": london_pairs(run, quick),
            "portraits": portrait_pairs(run, quick), "speed": speed(run)}


# ------------------------------------------------------------------------------ report
def summary(res) -> dict:
    z = res["zoom"]
    ok = [r for r in z if r["ok"]]
    pts = [r["points_pct"] for r in ok if r.get("points_pct") is not None]
    resid = [r["residual_px"] for r in ok]
    zr = res.get("zoom_roi", [])
    okr = [r for r in zr if r["ok"]]
    ptr = [r["points_pct"] for r in okr if r.get("points_pct") is not None]
    lon = res["london"]
    st = [r for r in lon if r["kind"] == "stranger"]
    sm = [r for r in lon if r["kind"] == "smile"]
    conf = [r["confidence"] for r in st if np.isfinite(r["confidence"])]
    return {
        "zoom ok": f"{len(ok)}/{len(z)}",
        "zoom points, median % IPD (median / max over ok pairs)":
            f"{np.median(pts):.2f} / {max(pts):.2f}" if pts else "-",
        "zoom points mapped to null": str(sum(r.get("points_null", 0) for r in ok)),
        "zoom face residual px (median / max)":
            f"{np.median(resid):.2f} / {max(resid):.2f}" if resid else "-",
        "zoom, cheek ROI: ok": f"{len(okr)}/{len(zr)}",
        "zoom, cheek ROI: points, median % IPD (median / max)":
            f"{np.median(ptr):.2f} / {max(ptr):.2f}" if ptr else "-",
        **missed(res.get("zoom_roi_missed_after", []), "AFTER"),
        **missed(res.get("zoom_roi_missed_before", []), "BEFORE"),
        "strangers refused": f"{sum(not r['ok'] for r in st)}/{len(st)}",
        "strangers with confidence >= 0.5": str(sum(c >= 0.5 for c in conf)) if conf else "n/a",
        "strangers max confidence": f"{max(conf):.3f}" if conf else "n/a",
        "smiles ok + expression warning":
            str(sum(r["ok"] and r.get("expression_warning", False) for r in sm)),
        "smiles refused": str(sum(not r["ok"] for r in sm)),
        "smiles plain ok (wrong)": str(sum(r["ok"] and not r.get("expression_warning", False) for r in sm)),
        "portraits (warped) ok": f"{sum(r['ok'] for r in res['portraits'])}/{len(res['portraits'])}",
        **{f"12 MP align s / decode s (ratio), {name}": f"{sp['align_s']:.2f} / {sp['decode_s']:.3f} "
           f"({sp['ratio']:.1f}x)" for name, sp in res["speed"].items()},
    }


def missed(rows, which: str) -> dict:
    """Summary lines of the zoom pairs with a cheek ROI and `which` photo's face not detected."""
    ok = [r for r in rows if r["ok"]]
    pts = [r["points_pct"] for r in ok if r.get("points_pct") is not None]
    return {f"zoom, cheek ROI, {which}'s face not detected: ok": f"{len(ok)}/{len(rows)}",
            f"zoom, cheek ROI, {which}'s face not detected: points % IPD (median / max)":
                f"{np.median(pts):.2f} / {max(pts):.2f}" if pts else "-"}


def identity_fit(res) -> None:
    """Distributions of the identity evidence, the LDA fit and a leave-one-subject-out check."""
    same = [(r["identity"]["matches"], r.get("subjects", [])) for r in
            res["zoom"] + [x for x in res["london"] if x["kind"] == "smile"] + res["portraits"]
            if r.get("identity")]
    diff = [(r["identity"]["matches"], r["subjects"]) for r in res["london"]
            if r["kind"] == "stranger" and r.get("identity")]
    if not same or not diff:
        return

    def lda(s, d):
        zs, zd = np.log1p([v for v, _ in s]), np.log1p([v for v, _ in d])
        var = (((zs - zs.mean()) ** 2).sum() + ((zd - zd.mean()) ** 2).sum()) / (len(zs) + len(zd) - 2)
        slope = (zs.mean() - zd.mean()) / var
        return slope, (zs.mean() + zd.mean()) / 2

    def post(n, slope, mid):
        return 1 / (1 + np.exp(-slope * (np.log1p(n) - mid)))

    print("\nidentity evidence (skin-detail matches the alignment explains)")
    print(f"  same person      (n={len(same)}): {sorted(v for v, _ in same)}")
    print(f"  different people (n={len(diff)}): {sorted(v for v, _ in diff)}")
    slope, mid = lda(same, diff)
    print(f"  LDA on log(1+n), all pairs: slope {slope:.2f}, midpoint {mid:.2f} (n = {np.expm1(mid):.1f})")
    worst_d, worst_s = 0.0, 1.0
    for subj in LONDON:
        s = [x for x in same if subj not in x[1]]
        d = [x for x in diff if subj not in x[1]]
        sl, md = lda(s, d)
        for v, who in diff:
            if subj in who:
                worst_d = max(worst_d, post(v, sl, md))
        for v, who in same:
            if subj in who:
                worst_s = min(worst_s, post(v, sl, md))
    print(f"  leave-one-subject-out: largest P(same) of a stranger pair {worst_d:.3f}, smallest of a "
          f"London same-person pair {worst_s:.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-tree", default=None, help="worktree of the previous code")
    ap.add_argument("--quick", action="store_true", help="fewer pairs")
    ap.add_argument("--speed", action="store_true", help="only the 12 MP speed section")
    ap.add_argument("--engine", choices=("photokit", "baseline"), default=None,
                    help="(internal) run one engine and print its results as JSON")
    args = ap.parse_args(argv)
    if args.engine:
        run = run_photokit if args.engine == "photokit" else run_baseline
        print(json.dumps(evaluate(run, args.quick, args.speed)))
        return 0
    cols = {}
    t = time.time()
    cols["this code"] = evaluate(run_photokit, args.quick, args.speed)
    print(f"this code: {time.time() - t:.0f} s", file=sys.stderr)
    if args.old_tree:
        env = dict(os.environ, PYTHONPATH=str(Path(args.old_tree).resolve()))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--engine", "photokit"]
        cmd += (["--quick"] if args.quick else []) + (["--speed"] if args.speed else [])
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=args.old_tree)
        cols["previous code"] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"previous code: {time.time() - t:.0f} s", file=sys.stderr)
    if args.speed:
        for k, v in cols.items():
            for name, sp in v["speed"].items():
                print(f"{k}, {name}: 12 MP align {sp['align_s']:.3f} s / decode {sp['decode_s']:.3f} s"
                      f" = {sp['ratio']:.2f}x ({'ok' if sp['ok'] else 'refused'})")
        return 0
    cols["OpenCV baseline"] = evaluate(run_baseline, args.quick)
    sums = {k: summary(v) for k, v in cols.items()}
    names = list(next(iter(sums.values())))
    w = max(map(len, names))
    print(f"{'':{w}}  " + "  ".join(f"{k:>18}" for k in sums))
    for n in names:
        print(f"{n:{w}}  " + "  ".join(f"{s[n]:>18}" for s in sums.values()))
    for key in ("zoom", "zoom_roi"):
        print(f"\n{key} pairs (this code):")
        for r in cols["this code"][key]:
            print("  ", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    identity_fit(cols["this code"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
