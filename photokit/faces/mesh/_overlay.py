"""A visual check of a face result: mesh, irises, zones (hidden ones hatched), pose."""

from __future__ import annotations

import cv2
import numpy as np

from ._geometry import zone_polygons
from ._topology import TRIANGLES, ZONE_NAMES

#: Zone colours (RGB), in `ZONE_NAMES` order.
ZONE_COLOURS = ((230, 60, 60), (240, 150, 40), (60, 200, 60), (30, 140, 30), (220, 60, 220),
                (150, 40, 150), (240, 230, 60), (60, 220, 230), (60, 130, 240), (40, 40, 230),
                (30, 30, 150))
#: Zones less visible than this are drawn hatched instead of filled.
HIDDEN_BELOW = 0.5


def _rgb8(rgb: np.ndarray) -> np.ndarray:
    return (rgb >> 8).astype(np.uint8) if rgb.dtype == np.uint16 else rgb.astype(np.uint8, copy=True)


def draw_overlay(rgb: np.ndarray, faces) -> np.ndarray:
    """The photo (uint8 RGB copy) with each face's zones, mesh, irises and pose drawn.

    Zones are filled half-transparent, those less than `HIDDEN_BELOW` visible are only
    hatched; the mesh in thin light lines (also at 40 %), irises as circles of their diameter,
    the pose as text above the face.
    """
    out = _rgb8(np.asarray(rgb))
    for f in faces:
        size = max(f.box[2] - f.box[0], f.box[3] - f.box[1])
        lw = max(1, int(round(size / 400)))
        fill = out.copy()
        hatch = np.zeros(out.shape[:2], np.uint8)
        polys = zone_polygons(f.landmarks)
        for name, col in zip(ZONE_NAMES, ZONE_COLOURS, strict=True):
            p = np.round(polys[name] * 16).astype(np.int32)
            if f.visible[name] >= HIDDEN_BELOW:
                cv2.fillPoly(fill, [p], col, lineType=cv2.LINE_AA, shift=4)
            else:
                cv2.fillPoly(hatch, [p], 1, shift=4)
            cv2.polylines(out, [p], True, col, lw, cv2.LINE_AA, shift=4)
        pts = np.round(f.landmarks[:, :2] * 16).astype(np.int32)
        edges = np.concatenate([TRIANGLES[:, [0, 1]], TRIANGLES[:, [1, 2]], TRIANGLES[:, [2, 0]]])
        cv2.polylines(fill, list(pts[edges]), False, (235, 235, 235), 1, cv2.LINE_AA, shift=4)
        out = cv2.addWeighted(fill, 0.4, out, 0.6, 0)
        if hatch.any():
            yy, xx = np.indices(hatch.shape)
            stripes = ((xx + yy) // max(2, 3 * lw)) % 3 == 0
            out[(hatch > 0) & stripes] = (255, 255, 255)
        for ir, col in ((f.iris_left, (0, 255, 0)), (f.iris_right, (0, 160, 255))):
            c = tuple(int(round(v * 16)) for v in ir.center)
            cv2.circle(out, c, int(round(ir.diameter_px * 8)), col, lw, cv2.LINE_AA, shift=4)
        text = f"yaw {f.yaw:+.0f} pitch {f.pitch:+.0f} roll {f.roll:+.0f}"
        scale = max(0.4, size / 600)
        org = (int(f.box[0]), max(int(12 * scale), int(f.box[1]) - int(8 * scale)))
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3 * lw, cv2.LINE_AA)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 0), lw, cv2.LINE_AA)
    return out
