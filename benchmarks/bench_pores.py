"""Pores on real skin: per-pore F1 and pixel Dice over the whole annotated region.

Data: ``$PHOTOKIT_BENCH_DATA/pores`` (default ``../shared/data/pores``): one real close-up
(``face_left.png``, 787x1801, about 0.084 mm/px), every pore outlined by hand
(``face_left_pores.png``) inside ``face_left_region.png`` (ZombaSY/Pore-Net-release;
"Facial Pore Segmentation Algorithm using Shallow CNN").

``measure`` runs with the region as ROI and the scale given; its pores
(`photokit.metrics.pores.find_pores`) are matched one-to-one to the hand-outlined pores
(connected components of the annotation inside the region): a detection matches the
nearest unmatched annotated pore whose outline (dilated by `MATCH_MM`) holds its centre.
Precision = matched / detections, recall = matched / annotated pores, F1 their harmonic
mean. Pixel Dice: the detections drawn as discs of their diameter against the annotated
pore pixels, both inside the region. Published anchors on this kind of data: DoG ~0.44,
a trained shallow CNN ~0.67 (pixel Dice).

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


def score() -> dict:
    from photokit.measurement.measure import measure
    from photokit.metrics.pores import find_pores

    d = DATA / "pores"
    rgb = cv2.cvtColor(cv2.imread(str(d / "face_left.png")), cv2.COLOR_BGR2RGB)
    region = cv2.imread(str(d / "face_left_region.png"), cv2.IMREAD_GRAYSCALE) > 127
    truth = (cv2.imread(str(d / "face_left_pores.png"), cv2.IMREAD_GRAYSCALE) > 127) & region
    t0 = time.perf_counter()
    m = measure(rgb, roi=region, mm_per_px=MM_PER_PX, metrics=["texture.pore_density"])
    pores = find_pores(m.analysis) or []
    seconds = time.perf_counter() - t0
    n, lab = cv2.connectedComponents(truth.view(np.uint8), connectivity=8)
    r = max(1, round(MATCH_MM / MM_PER_PX))
    grown = cv2.dilate(lab.astype(np.float32), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    grown = np.where(lab > 0, lab, grown.astype(np.int32))
    h, w = lab.shape
    used, tp = set(), 0
    for q in sorted(pores, key=lambda q: -q.contrast):
        x, y = int(round(q.x)), int(round(q.y))
        if 0 <= x < w and 0 <= y < h and grown[y, x] > 0 and int(grown[y, x]) not in used:
            used.add(int(grown[y, x]))
            tp += 1
    inside = [q for q in pores if 0 <= int(q.y) < h and 0 <= int(q.x) < w and region[int(q.y), int(q.x)]]
    pred = np.zeros((h, w), np.uint8)
    for q in pores:
        cv2.circle(pred, (int(round(q.x)), int(round(q.y))),
                   max(1, int(round(q.diameter_mm / 2 / MM_PER_PX))), 1, -1)
    pred = pred.astype(bool) & region
    prec = tp / max(len(inside), 1)
    rec = tp / max(n - 1, 1)
    return {"annotated": n - 1, "detected": len(pores), "detected_in_region": len(inside), "matched": tp,
            "precision": prec, "recall": rec, "f1": 2 * prec * rec / max(prec + rec, 1e-9),
            "dice": 2 * float((pred & truth).sum()) / max(float(pred.sum() + truth.sum()), 1.0),
            "pore_density": m.metrics.get("texture.pore_density"), "seconds": seconds}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", help="another checkout to score the same way (subprocess)")
    ap.add_argument("--json")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(score()))
        return
    rows = {"now": score()}
    if a.old:
        env = dict(os.environ, PYTHONPATH=a.old)
        out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True,
                             text=True, check=True, cwd=a.old)
        rows["old"] = json.loads(out.stdout.strip().splitlines()[-1])
    print("| run | annotated | detected (region) | matched | precision | recall | F1 | pixel Dice "
          "| pores/cm^2 | measure s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k, r in rows.items():
        print(f"| {k} | {r['annotated']} | {r['detected_in_region']} | {r['matched']} | {r['precision']:.2f} "
              f"| {r['recall']:.2f} | {r['f1']:.2f} | {r['dice']:.2f} | {r['pore_density']:.1f} "
              f"| {r['seconds']:.1f} |")
    print("| anchors | | | | | | | DoG ~0.44, CNN ~0.67 | | |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
