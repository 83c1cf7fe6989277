"""The de-identification mask against hand-placed eye and brow points on real faces.

Run ``python benchmarks/bench_privacy.py``. Real data come from ``$PHOTOKIT_BENCH_DATA``
(default ``shared/data`` beside the repository); nothing is copied into the repository.
A contact sheet of the masked faces is written to ``/tmp/privacy_sheet.png``.

For each London neutral photo (``*_03.jpg``, 1350 x 1350, ``*_03.tem``: 189 points placed
by hand): the faces are meshed (`photokit.faces.mesh.find_faces`) and masked
(`photokit.faces.deidentify.mask_eyes`). Reported per photo:

- pupils covered: template points 0 and 1 (left and right pupil centres) inside the mask;
- brows covered: template points 71-76, 83, 84 (one brow) and 77-82, 85, 86 (the other),
  identified on the template drawn over ``001_03.jpg``, inside the mask (count of 16);
- clearance: the smallest distance from any of those 18 hand points to the mask's edge,
  as a share of the hand inter-pupil distance (IPD): how much the mesh could be off
  before a hand point falls outside;
- mask area as % of the photo, and the time of meshing plus masking.
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

import cv2
import numpy as np

from photokit.faces.deidentify import mask_eyes
from photokit.faces.mesh import find_faces
from photokit.io.photo import load

DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
PUPILS = (0, 1)
BROWS = (71, 72, 73, 74, 75, 76, 83, 84, 77, 78, 79, 80, 81, 82, 85, 86)


def read_tem(path: Path) -> np.ndarray:
    """The points of a webmorph ``.tem`` file, ``(n, 2)`` pixels."""
    lines = path.read_text().split("\n")
    n = int(lines[0])
    return np.array([[float(v) for v in ln.split()[:2]] for ln in lines[1:1 + n]])


def main() -> None:
    tems = sorted(glob.glob(str(DATA / "london" / "*_03.tem")))
    if not tems:
        raise SystemExit(f"no London data under {DATA}")
    print(f"{'photo':<10} {'faces':>5} {'pupils':>7} {'brows':>6} {'clearance %IPD':>15} "
          f"{'area %':>7} {'ms':>6}")
    sheet, clearances, pupils_ok, brows_ok, n_brow = [], [], 0, 0, 0
    for tem in tems:
        pts = read_tem(Path(tem))
        photo = load(tem.replace(".tem", ".jpg"))
        t0 = time.perf_counter()
        faces = find_faces(photo.pixels)
        masked, mask = mask_eyes(photo.pixels, faces)
        ms = 1000 * (time.perf_counter() - t0)
        ipd = float(np.linalg.norm(pts[0] - pts[1]))
        inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
        hand = pts[list(PUPILS + BROWS)]
        xy = np.clip(np.round(hand).astype(int), 0, [mask.shape[1] - 1, mask.shape[0] - 1])
        covered = mask[xy[:, 1], xy[:, 0]]
        clear = float(inside[xy[:, 1], xy[:, 0]].min()) / ipd
        n_p, n_b = int(covered[:2].sum()), int(covered[2:].sum())
        pupils_ok += n_p == 2
        brows_ok += n_b
        n_brow += len(BROWS)
        clearances.append(clear)
        print(f"{Path(tem).stem:<10} {len(faces):>5} {n_p:>5}/2 {n_b:>3}/16 {100 * clear:>15.1f} "
              f"{100 * mask.mean():>7.2f} {ms:>6.0f}")
        small = cv2.resize(masked, (270, 270), interpolation=cv2.INTER_AREA)
        for x, y in hand * 270 / photo.width:
            cv2.circle(small, (int(x), int(y)), 2, (0, 255, 0), -1)
        sheet.append(small)
    print(f"pupils covered in {pupils_ok}/{len(tems)} photos; brow points covered {brows_ok}/{n_brow}; "
          f"clearance min {100 * min(clearances):.1f} % IPD, median {100 * np.median(clearances):.1f} %")
    rows = [np.hstack(sheet[k:k + 6]) for k in range(0, len(sheet), 6)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    cv2.imwrite("/tmp/privacy_sheet.png", cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    print("contact sheet: /tmp/privacy_sheet.png (green: hand pupils and brow points)")


if __name__ == "__main__":
    main()
