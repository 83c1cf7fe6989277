"""ColorChecker benchmark: detection, residual dE2000 on real photos, false positives, speed.

Run: ``python benchmarks/bench_colour.py``. Data: the folder in ``PHOTOKIT_BENCH_DATA``
(default ``../shared/data`` beside the repository): ``colorchecker/*.jpg`` (X-Rite
ColorChecker Classic under D65, TL84, CWF and at low exposure; linear sensor values,
strong green cast) with reference L*a*b* tables, and ``faces/*.jpg`` (portraits without
a card: every detection there is a false positive).

Tables
------
1. Per real photo: card found, patch side, fitted tone exponents, mean/max dE2000 of the
   24 corrected patches for 3x3 and root-polynomial fits, against each reference table
   (each fit is made to the reference it is scored against; the X-Rite 2014 values of
   `photokit.colorchecker` are the product's default), and the same photo cut through the
   card (must be refused).
2. False positives on photos without a card (portraits, scikit-image photos) and true
   positives / centre error on synthetic skin photos with a card (known truth).
3. Timing on a 12 MP version of a real photo (upscaled, sensor-like noise added so the
   JPEG decodes like a real photo): find_card + fit + apply (uint8 LUT path) and
   skin_mask against the same run's JPEG decode of that photo (ratio).
4. Skin mask IoU against the synthetic truth across skin tones (ITA 60 to -50).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from photokit import synth
from photokit.checker import find_card, fit_card
from photokit.colorchecker import _D50, _D65, bradford, lab_to_xyz
from photokit.colour import SRGB_TO_XYZ, linear_to_lab, srgb_to_linear

DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))
CC = DATA / "colorchecker"
PHOTOS = ("d65_colorchecker.jpg", "TL84_colorchecker.jpg", "CWF_colorchecker.jpg", "exposure30.jpg")


def _references() -> dict[str, np.ndarray]:
    """Reference linear sRGB (D65) of the 24 patches from each table in the data folder."""
    refs = {}
    to_rgb = np.linalg.inv(SRGB_TO_XYZ).T
    for name in ("real_lab_xrite.csv", "real_lab_imatest.csv", "babelcolor_lab_D50.csv"):
        p = CC / name
        if p.exists():  # L*a*b* D50 -> XYZ D50 -> Bradford D65 -> linear sRGB
            lab = np.loadtxt(p, delimiter=",")
            refs[name] = lab_to_xyz(lab, _D50) @ bradford(_D50, _D65).T @ to_rgb
    if (CC / "real_linearRGB_xrite.csv").exists():
        refs["real_linearRGB_xrite.csv"] = np.loadtxt(CC / "real_linearRGB_xrite.csv", delimiter=",")
    if (CC / "real_sRGB_imatest.csv").exists():
        s = np.loadtxt(CC / "real_sRGB_imatest.csv", delimiter=",")
        refs["real_sRGB_imatest.csv"] = srgb_to_linear(s.astype(np.float32)).astype(np.float64)
    refs["photokit X-Rite 2014 (default)"] = None
    return refs


def table_real() -> None:
    refs = _references()
    print("\n1. Real ColorChecker photos (mean/max dE2000 of 24 patches after correction)")
    print(f"{'photo':24s} {'found':5s} {'side px':>7s} {'gamma R/G/B':>16s}  "
          + "  ".join(f"{k[:22]:>22s}" for k in refs))
    for name in PHOTOS:
        p = CC / name
        if not p.exists():
            print(f"{name:24s} missing")
            continue
        rgb = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        card = find_card(rgb)
        if card is None:
            print(f"{name:24s} NO")
            continue
        cells = []
        for ref in refs.values():
            parts = []
            for model in ("linear", "rootpoly"):
                fit = fit_card(card.patch_codes, model=model, reference_linear=ref)
                parts.append(f"{fit.delta_e_mean:4.2f}/{fit.delta_e.max():4.1f}")
            cells.append(" ".join(parts))
        g = fit_card(card.patch_codes).gamma
        cut = int(card.patch_centres[:, 0].min() + 0.5 * np.ptp(card.patch_centres[:, 0]))
        refused = find_card(np.ascontiguousarray(rgb[:, :cut])) is None
        print(f"{name:24s} {'yes':5s} {card.patch_side:7.1f} {'/'.join(f'{v:.2f}' for v in g):>16s}  "
              + "  ".join(f"{c:>22s}" for c in cells) + f"   half-out refused: {refused}")
    print("   cells: 3x3 mean/max  root-polynomial mean/max")


def table_detection() -> None:
    print("\n2. Detection: photos without a card (false positives) and synthetic cards")
    negs = [(n, getattr(skimage.data, n)()) for n in ("astronaut", "coffee", "chelsea")]
    for p in sorted((DATA / "faces").glob("*.jpg")):
        negs.append((p.name, cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)))
    fp = 0
    for n, img in negs:
        t = time.perf_counter()
        found = find_card(img) is not None
        fp += found
        dt = time.perf_counter() - t
        print(f"   {n:20s} {img.shape[1]}x{img.shape[0]}  card found: {found}  ({dt:.2f} s)")
    print(f"   false positives: {fp}/{len(negs)}")
    tp, errs, des = 0, [], []
    cases = [dict(ita=ita, exposure=e, wb_gains=wb) for ita, e, wb in
             [(55, 1.0, (1, 1, 1)), (30, 0.7, (1.1, 1.0, 0.9)), (0, 1.35, (0.9, 1.0, 1.1)),
              (-30, 0.8, (1.1, 1.0, 1.0)), (-50, 1.2, (1.0, 0.9, 1.1))]]
    for i, kw in enumerate(cases):
        im = synth.render_skin(seed=10 + i, card=True, **kw)
        card = find_card(im.pixels)
        truth = im.truth.card
        if card is None or "patch_centres" not in truth:
            print(f"   synth {kw}: found {card is not None}")
            continue
        tp += 1
        e = np.linalg.norm(card.patch_centres - np.asarray(truth["patch_centres"]), axis=1)
        errs.append(float(np.median(e)))
        des.append(fit_card(card.patch_codes).delta_e_mean)
        print(f"   synth {kw}: found, median centre error {errs[-1]:.2f} px, dE2000 {des[-1]:.2f}")
    print(f"   true positives: {tp}/{len(cases)}")


def table_timing() -> None:
    p = CC / "d65_colorchecker.jpg"
    if not p.exists():
        return
    big = cv2.resize(cv2.imread(str(p)), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    # sensor-like noise so that the JPEG has the entropy (and decode cost) of a real photo
    noise = np.random.default_rng(0).normal(0, 3, big.shape).astype(np.float32)
    big = np.clip(big.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    t0 = time.perf_counter()
    rgb = cv2.cvtColor(cv2.imdecode(jpg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    t_dec = time.perf_counter() - t0
    t0 = time.perf_counter()
    card = find_card(rgb)
    t_find = time.perf_counter() - t0
    if card is None:
        print("\n3. Timing: card not found on the 12 MP photo")
        return
    t0 = time.perf_counter()
    fit = fit_card(card.patch_codes)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = fit.apply_codes(rgb)
    t_apply = time.perf_counter() - t0
    t0 = time.perf_counter()
    linear_to_lab(out)
    t_lab = time.perf_counter() - t0
    print(f"\n3. Timing on a 12 MP photo (4000x3000), JPEG decode = 1.00 ({t_dec:.3f} s)")
    from photokit.skin import skin_mask

    t0 = time.perf_counter()
    skin_mask(rgb)
    t_skin = time.perf_counter() - t0
    for k, v in (("find_card", t_find), ("fit_card", t_fit), ("apply_codes", t_apply),
                 ("linear_to_lab (for scale)", t_lab), ("find+fit+apply", t_find + t_fit + t_apply),
                 ("skin_mask", t_skin)):
        print(f"   {k:28s} {v / t_dec:6.2f} x decode")


def table_skin() -> None:
    from photokit.skin import skin_mask

    print("\n4. Skin mask on synthetic skin photos (1600x1200, IoU with the truth skin region)")
    for ita in (60, 40, 20, 0, -20, -35, -50):
        for card in (False, True):
            im = synth.render_skin(seed=20, ita=ita, card=card)
            truth = im.mask("skin")
            m = skin_mask(im.pixels)
            iou = np.count_nonzero(m & truth) / max(1, np.count_nonzero(m | truth))
            print(f"   ITA {ita:4d}  card {card!s:5s}  IoU {iou:.3f}")


def main() -> int:
    if not CC.exists():
        print(f"no benchmark data at {CC}", file=sys.stderr)
        return 1
    table_real()
    table_detection()
    table_timing()
    table_skin()
    return 0


if __name__ == "__main__":
    sys.exit(main())
