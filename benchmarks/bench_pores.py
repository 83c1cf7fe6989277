"""Pores on real skin: per-pore F1 and pixel Dice over the whole annotated region.

Data: ``$PHOTOKIT_BENCH_DATA/pores`` (default ``../shared/data/pores``): one real close-up
(``face_left.png``, 787x1801, about 0.084 mm/px), every pore outlined by hand
(``face_left_pores.png``) inside ``face_left_region.png`` (ZombaSY/Pore-Net-release;
"Facial Pore Segmentation Algorithm using Shallow CNN").

``measure`` runs with the region as ROI and the scale given; its pores
(`photokit.metrics.pores.find_pores`) are matched one-to-one to the hand-outlined pores
(connected components of the annotation inside the region): in order of contrast, a
detection matches the annotated pore whose outline (dilated by `MATCH_MM`) holds its
centre, unless that pore is matched already. Precision = matched / detections, recall =
matched / annotated pores, F1 their harmonic mean. Pixel Dice: the detections drawn as
discs of their diameter against the annotated pore pixels. Published anchors on this
kind of data: DoG ~0.44, a trained shallow CNN ~0.67 (pixel Dice).

Honest split: the detector's working level and thresholds were chosen on the top half
of the region (rows above its median row: the glabella, the upper nose and cheek) and
are scored on the bottom half too (held out), each annotated pore in the half holding
its centroid, each detection in the half holding its centre. The region's three areas
(glabella, cheek, nose) are scored the same way: the glabella holds the specular speckle
and, near the brow, pores nobody outlined.

``--old PATH`` runs the same on another checkout (e.g. ``git worktree add /tmp/old19
HEAD``) in a subprocess, for the before/after column.

Run: ``python benchmarks/bench_pores.py [--old /tmp/old19] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA", REPO.parent / "shared" / "data"))
MM_PER_PX = 0.084
#: A detection's centre may lie this far outside a pore's outline and still match it (mm).
MATCH_MM = 0.1


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB photo, annotated region and hand-outlined pore pixels (inside the region)."""
    d = DATA / "pores"
    rgb = cv2.cvtColor(cv2.imread(str(d / "face_left.png")), cv2.COLOR_BGR2RGB)
    region = cv2.imread(str(d / "face_left_region.png"), cv2.IMREAD_GRAYSCALE) > 127
    truth = (cv2.imread(str(d / "face_left_pores.png"), cv2.IMREAD_GRAYSCALE) > 127) & region
    return rgb, region, truth


def detect(rgb: np.ndarray, region: np.ndarray) -> tuple[list, float | None, float]:
    """``measure``'s pores with the region as ROI: (pores, pores per cm^2, seconds)."""
    from photokit.measurement.measure import measure
    from photokit.metrics.pores import find_pores

    t0 = time.perf_counter()
    m = measure(rgb, roi=region, mm_per_px=MM_PER_PX, metrics=["texture.pore_density"])
    pores = find_pores(m.analysis) or []
    return pores, m.metrics.get("texture.pore_density"), time.perf_counter() - t0


def parts(region: np.ndarray) -> dict[str, np.ndarray]:
    """The whole region and its two halves of equal area: rows above the region's median
    row (``tune``: the thresholds were chosen there) and below (``held-out``); then its
    three areas (connected pieces): the glabella (the highest), the cheek (the leftmost
    of the other two) and the nose."""
    mid = int(np.median(np.nonzero(region)[0]))
    top = region.copy()
    top[mid:] = False
    out = {"tune (top half)": top, "held-out (bottom half)": region & ~top, "whole region": region}
    n, lab, _, cen = cv2.connectedComponentsWithStats(region.view(np.uint8), connectivity=8)
    if n == 4:
        glabella = 1 + int(np.argmin(cen[1:, 1]))
        rest = [k for k in range(1, n) if k != glabella]
        cheek = min(rest, key=lambda k: cen[k, 0])
        nose = max(rest, key=lambda k: cen[k, 0])
        out.update({"glabella": lab == glabella, "cheek": lab == cheek, "nose": lab == nose})
    return out


def score(pores: list, part: np.ndarray, truth: np.ndarray) -> dict:
    """Per-pore matching and pixel Dice of `pores` against the hand outlines in `part`.

    An annotated pore belongs to the part holding most of its pixels (its centroid's
    row decides, as the halves are split by rows); a detection belongs to the part
    holding its centre.
    """
    n, lab, _, cen = cv2.connectedComponentsWithStats(truth.view(np.uint8), connectivity=8)
    h, w = lab.shape
    mine = np.zeros(n, bool)
    mine[1:] = part[np.clip(np.round(cen[1:, 1]).astype(int), 0, h - 1),
                    np.clip(np.round(cen[1:, 0]).astype(int), 0, w - 1)]
    r = max(1, round(MATCH_MM / MM_PER_PX))
    grown = cv2.dilate(lab.astype(np.float32), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    grown = np.where(lab > 0, lab, grown.astype(np.int32))
    inside = [q for q in pores
              if 0 <= round(q.y) < h and 0 <= round(q.x) < w and part[round(q.y), round(q.x)]]
    used, tp = set(), 0
    for q in sorted(inside, key=lambda q: -q.contrast):
        k = int(grown[round(q.y), round(q.x)])
        if k > 0 and mine[k] and k not in used:
            used.add(k)
            tp += 1
    pred = np.zeros((h, w), np.uint8)
    for q in inside:
        cv2.circle(pred, (round(q.x), round(q.y)), max(1, round(q.diameter_mm / 2 / MM_PER_PX)), 1, -1)
    pred = pred.astype(bool) & part
    t = truth & part
    annotated = int(mine.sum())
    prec = tp / max(len(inside), 1)
    rec = tp / max(annotated, 1)
    return {"annotated": annotated, "detected": len(inside), "matched": tp, "precision": prec, "recall": rec,
            "f1": 2 * prec * rec / max(prec + rec, 1e-9),
            "dice": 2 * float((pred & t).sum()) / max(float(pred.sum() + t.sum()), 1.0)}


def run() -> dict:
    rgb, region, truth = load()
    pores, density, seconds = detect(rgb, region)
    out = {name: score(pores, part, truth) for name, part in parts(region).items()}
    out["whole region"].update(pore_density=density, seconds=seconds, listed=len(pores))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", help="another checkout to score the same way (subprocess)")
    ap.add_argument("--json")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(run()))
        return
    rows = {"now": run()}
    if a.old:
        env = dict(os.environ, PYTHONPATH=a.old)
        out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True,
                             text=True, check=True, cwd=a.old)
        rows["old"] = json.loads(out.stdout.strip().splitlines()[-1])
    print("| run | part | annotated | detected | matched | precision | recall | F1 | pixel Dice |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, res in rows.items():
        for part, r in res.items():
            print(f"| {k} | {part} | {r['annotated']} | {r['detected']} | {r['matched']} "
                  f"| {r['precision']:.2f} "
                  f"| {r['recall']:.2f} | {r['f1']:.2f} | {r['dice']:.2f} |")
    print("| anchors | | | | | | | | DoG ~0.44, CNN ~0.67 |")
    for k, res in rows.items():
        r = res["whole region"]
        print(f"{k}: {r['listed']} pores listed ({r['detected']} in the region, "
              f"{r['annotated']} outlined by hand), "
              f"{r['pore_density']:.1f} pores/cm^2, measure {r['seconds']:.1f} s")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
