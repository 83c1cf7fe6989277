"""Benchmark of the synthetic ground-truth generator: speed, truth accuracy, realism.

Run: ``python benchmarks/bench_synth.py``. Real data (for the realism rows) come from
``$PHOTOKIT_BENCH_DATA`` (default: ``shared/data`` beside the repository); rows that need
it are skipped when it is missing.

Tables
------
1. Speed: render time of one photo (new skin, and a new state of a known skin) against a
   baseline measured in the same run on the same size: one JPEG encode + decode (Pillow,
   quality 90), the least any photo pipeline pays.
2. Truth: |true a* - measured a*| and |true EI - measured EI| over the ROI of random
   captures (pose, light, noise, JPEG), measured with scikit-image after dividing out the
   camera's known gains; baseline: the same error without undoing the gains.
3. Alignability: SIFT + MAGSAC++ on synthetic before/after pairs (corner error against the
   true homography, inliers) next to a real pair with a known homography (Oxford boat
   1->2), the same pipeline.
4. Colour realism: cheek skin of real portrait photos (faces/, below the detected eyes,
   sRGB as stored) against rendered skin in L*, a*, b*, ITA.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage.color import rgb2lab

from photokit.synth import Camera, SkinParams, make_pair, render_skin
from photokit.synth.skin import _CACHE

DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def _best(fn, n=3):
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def bench_speed():
    print("\n## 1. Speed (best of 3, seconds; ratio = render / JPEG encode+decode)")
    print(f"{'size':>11} {'jpeg rt':>8} {'new skin':>9} {'ratio':>6} {'known skin':>11} {'ratio':>6}")
    for w, h in ((800, 600), (1600, 1200), (3200, 2400)):
        img = render_skin(SkinParams(width=w, height=h), 0).pixels
        p = SkinParams(width=w, height=h, card=True)
        base = _best(lambda img=img: _jpeg_round_trip(img))
        seeds = iter(range(100, 200))

        def new(p=p, seeds=seeds):
            _CACHE.clear()
            render_skin(p, next(seeds))

        t_new = _best(new)
        render_skin(p, 1)
        k = iter(range(10))
        cam = Camera(rotation_deg=2)
        t_known = _best(lambda p=p, k=k, cam=cam: render_skin(p, 1, erythema=0.1 * next(k), camera=cam))
        print(f"{w}x{h:<6} {base:8.3f} {t_new:9.3f} {t_new / base:6.1f} {t_known:11.3f} "
              f"{t_known / base:6.1f}")


def _jpeg_round_trip(img):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90)
    np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _srgb(lin):
    lin = np.clip(lin, 0, 1)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def bench_truth(n=12):
    print(f"\n## 2. Truth on camera photos ({n} random captures, 800x600, ROI; skimage after undoing gains)")
    ea, ee, ba = [], [], []
    p = SkinParams(width=800, height=600, card=True)
    for i in range(n):
        cam = Camera.random(np.random.default_rng(i), jpeg_quality=int(80 + i % 3 * 7), noise_seed=i)
        im = render_skin(p, i % 4, camera=cam, erythema=0.1 * (i % 4))
        m = cv2.erode(im.mask("roi", "photo").astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        lin = im.undo_camera().astype(np.float64)
        a = rgb2lab(_srgb(lin))[..., 1][m].mean()
        ei = (100 * np.log10(np.maximum(lin[..., 0], 1e-4) / np.maximum(lin[..., 1], 1e-4)))[m].mean()
        raw = rgb2lab(im.pixels / 255.0)[..., 1][m].mean()
        t = im.truth.stats["roi"]
        ea.append(abs(a - t["a_mean"]))
        ee.append(abs(ei - t["ei_mean"]))
        ba.append(abs(raw - t["a_mean"]))
    print(f"{'':24} {'mean':>6} {'max':>6}")
    print(f"{'|a* err|, gains undone':24} {np.mean(ea):6.2f} {np.max(ea):6.2f}")
    print(f"{'|EI err|, gains undone':24} {np.mean(ee):6.2f} {np.max(ee):6.2f}")
    print(f"{'|a* err|, raw (baseline)':24} {np.mean(ba):6.2f} {np.max(ba):6.2f}")


def _sift_h(g_before, g_after):
    s = cv2.SIFT_create(4000)
    k1, d1 = s.detectAndCompute(g_before, None)
    k2, d2 = s.detectAndCompute(g_after, None)
    m = cv2.BFMatcher().knnMatch(d2, d1, k=2)
    good = [a for a, b in m if a.distance < 0.75 * b.distance]
    src = np.float32([k2[a.queryIdx].pt for a in good])
    dst = np.float32([k1[a.trainIdx].pt for a in good])
    H, inl = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 2.0)
    return H, int(inl.sum()) if inl is not None else 0


def _corner_err(H_est, H_true, w, h):
    c = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float)

    def ap(H):
        q = np.c_[c, np.ones(4)] @ np.linalg.inv(H).T
        return q[:, :2] / q[:, 2:]

    return float(np.linalg.norm(ap(H_est) - ap(H_true), axis=1).mean())


def bench_align(n=4):
    print("\n## 3. Alignability (SIFT + MAGSAC++; corner error px vs the true homography)")
    print(f"{'pair':28} {'inliers':>8} {'corner err':>11}")
    for i in range(n):
        pair = make_pair(50 + i, SkinParams(card=True), exposure=1.1, cct_k=5000, erythema=0.3 * (i % 2))
        gb = cv2.cvtColor(pair.before.pixels, cv2.COLOR_RGB2GRAY)
        ga = cv2.cvtColor(pair.after.pixels, cv2.COLOR_RGB2GRAY)
        H, inl = _sift_h(gb, ga)
        err = _corner_err(H, pair.homography, 1600, 1200) if H is not None else float("nan")
        print(f"{'synth seed ' + str(50 + i):28} {inl:8d} {err:11.3f}")
    boat = DATA / "homography" / "oxford_boat"
    if (boat / "img1.pgm").exists():
        g1 = cv2.imread(str(boat / "img1.pgm"), cv2.IMREAD_GRAYSCALE)
        g2 = cv2.imread(str(boat / "img2.pgm"), cv2.IMREAD_GRAYSCALE)
        H_true = np.linalg.inv(np.loadtxt(boat / "H1to2p"))
        H, inl = _sift_h(g1, g2)
        print(f"{'real: Oxford boat 1->2':28} {inl:8d} {_corner_err(H, H_true, *g1.shape[::-1]):11.3f}")
    else:
        print("(real baseline skipped: no data)")


def bench_colour():
    print("\n## 4. Colour realism: real cheeks (faces/, uncalibrated sRGB) vs rendered skin (L*a*b*, ITA)")
    from photokit.faces.haar import detect_faces

    rows = []
    for f in sorted((DATA / "faces").glob("*.jpg")):
        rgb = np.asarray(Image.open(f).convert("RGB"))
        faces = detect_faces(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        if not faces:
            continue
        x, y, w, h = max(faces, key=lambda fc: fc.box[2] * fc.box[3]).box
        patches = [rgb[y + int(0.55 * h):y + int(0.70 * h), x + int(0.15 * w):x + int(0.30 * w)],
                   rgb[y + int(0.55 * h):y + int(0.70 * h), x + int(0.70 * w):x + int(0.85 * w)]]
        lab = np.concatenate([rgb2lab(p / 255.0).reshape(-1, 3) for p in patches])
        rows.append((f.name, lab.mean(axis=0)))
    for ita in (55, 30, 0, -30):
        im = render_skin(SkinParams(width=800, height=600), 3, ita=ita, camera=Camera.ideal())
        st = im.truth.stats["roi"]
        rows.append((f"synth ita={ita}", np.array([st["L_mean"], st["a_mean"], st["b_mean"]])))
    print(f"{'image':22} {'L*':>6} {'a*':>6} {'b*':>6} {'ITA':>6}")
    for name, (L, a, b) in rows:
        print(f"{name:22} {L:6.1f} {a:6.1f} {b:6.1f} {np.degrees(np.arctan2(L - 50, b)):6.1f}")


if __name__ == "__main__":
    print(f"photokit synth benchmark (data: {DATA})", file=sys.stderr)
    bench_speed()
    bench_truth()
    bench_align()
    if (DATA / "faces").exists():
        bench_colour()
