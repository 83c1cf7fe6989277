"""A ColorChecker 24 card lying in the synthetic scene, with its published colours.

The patches are painted with `photokit.colour.colorchecker.REFERENCE_LINEAR_SRGB` (X-Rite's
post-2014 CIELAB D50 values, Bradford-adapted to D65, in linear sRGB) as reflectances,
clipped to ``[0.002, 1]`` (the cyan patch is slightly outside the sRGB gamut); the values
actually rendered are in the truth (`CardRender.patch_linear`). Under the camera's
illumination they change exactly as the skin does, so a calibration fitted to the card
can be tested against the known gains.

Geometry (fractions of the card width ``w``): border ``0.05 w``, gap ``0.02 w``, six
square patches per row, four rows, card height ``2*0.05 w + 4 s + 3*0.02 w`` with
``s = (w - 2*0.05 w - 5*0.02 w) / 6``. Patches are in `photokit.colour.colorchecker.LAYOUT`
reading order (dark skin top-left, black bottom-right) when the card is upright.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..colour.colorchecker import LAYOUT, REFERENCE_LINEAR_SRGB

#: Reflectance of the black card body.
BODY_REFLECTANCE = np.array([0.028, 0.028, 0.030], dtype=np.float32)
_BORDER = 0.05
_GAP = 0.02
_SUB = 4  # sub-pixel bits for anti-aliased polygons


def card_geometry(width_px: float) -> tuple[float, float, float, float]:
    """``(card_height, patch_side, border, gap)`` in pixels for a card `width_px` wide."""
    rows, cols = LAYOUT
    border, gap = _BORDER * width_px, _GAP * width_px
    side = (width_px - 2 * border - (cols - 1) * gap) / cols
    return 2 * border + rows * side + (rows - 1) * gap, side, border, gap


@dataclass
class CardRender:
    """The card on the world canvas: where it is, what it looks like."""

    corners: np.ndarray          # (4, 2) canonical px: TL, TR, BR, BL of the upright card
    patch_polygons: np.ndarray   # (24, 4, 2) canonical px
    patch_linear: np.ndarray     # (24, 3) rendered linear reflectance
    width_mm: float
    height_mm: float
    alpha: np.ndarray            # world (H, W) float32 coverage of the card
    distance_mm: np.ndarray | None  # world signed distance to the card edge (< 0 inside); freed after use
    _bbox: tuple                 # world bbox (x0, y0, x1, y1)
    _rgb: np.ndarray             # (y1-y0, x1-x0, 3) card colours inside the bbox
    margin: int

    @property
    def patch_centres(self) -> np.ndarray:
        """(24, 2) canonical centres of the patches."""
        return self.patch_polygons.mean(axis=1)

    def near(self, x: float, y: float, r: float) -> bool:
        """Whether a disc at canonical ``(x, y)`` of radius `r` px comes near the card."""
        c = self.corners.mean(axis=0)
        half = 0.5 * np.hypot(*(self.corners[2] - self.corners[0]))
        return math.hypot(x - c[0], y - c[1]) < half + r

    def composite(self, refl: np.ndarray) -> None:
        """Paint the card over a world-canvas reflectance image in place."""
        x0, y0, x1, y1 = self._bbox
        a = self.alpha[y0:y1, x0:x1, None]
        refl[y0:y1, x0:x1] = refl[y0:y1, x0:x1] * (1 - a) + self._rgb * a

    def to_dict(self, to_photo=None) -> dict:
        d = {
            "width_mm": self.width_mm, "height_mm": self.height_mm,
            "layout": list(LAYOUT),
            "corners_canonical": self.corners.round(3).tolist(),
            "patch_centres_canonical": self.patch_centres.round(3).tolist(),
            "patch_linear": self.patch_linear.round(6).tolist(),
            "reference": "photokit.colour.colorchecker.REFERENCE_LINEAR_SRGB (clipped to [0.002, 1])",
        }
        if to_photo is not None:
            d["corners"] = to_photo(self.corners).round(3).tolist()
            d["patch_centres"] = to_photo(self.patch_centres).round(3).tolist()
        return d


def render_card(grid, width_mm: float, centre: tuple[float, float], angle_deg: float) -> CardRender:
    """Rasterise the card (anti-aliased) on the world canvas of `grid`.

    Parameters
    ----------
    grid : photokit.synth.skin.Grid
        Canonical frame, scale and world margin.
    width_mm : float
        Card width (its long side).
    centre : (float, float)
        Card centre, canonical pixels.
    angle_deg : float
        Rotation of the card (image x towards y).
    """
    hh, ww = grid.world_shape
    m = grid.margin
    w = width_mm / grid.mm_per_px
    h, side, border, gap = card_geometry(w)
    a = math.radians(angle_deg)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    c = np.asarray(centre, dtype=np.float64)

    def place(pts):  # card-local (origin at the card's top-left) -> canonical
        return (np.asarray(pts, dtype=np.float64) - [w / 2, h / 2]) @ R.T + c

    corners = place([[0, 0], [w, 0], [w, h], [0, h]])
    rows, cols = LAYOUT
    polys = []
    for i in range(rows):
        for j in range(cols):
            x0 = border + j * (side + gap)
            y0 = border + i * (side + gap)
            polys.append(place([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]]))
    polys = np.array(polys)
    patch = np.clip(REFERENCE_LINEAR_SRGB, 0.002, 1.0).astype(np.float32)

    wc = corners + m
    bx0, by0 = np.floor(wc.min(axis=0)).astype(int) - 2
    bx1, by1 = np.ceil(wc.max(axis=0)).astype(int) + 3
    bx0, by0, bx1, by1 = max(bx0, 0), max(by0, 0), min(bx1, ww), min(by1, hh)
    off = np.array([bx0, by0], dtype=np.float64)

    def raster(poly):
        img = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
        q = np.round((poly + m - off) * (1 << _SUB)).astype(np.int32)
        cv2.fillConvexPoly(img, q, 255, cv2.LINE_AA, _SUB)
        return img.astype(np.float32) / 255.0

    body = raster(corners)
    rgb = np.empty((by1 - by0, bx1 - bx0, 3), np.float32)
    rgb[:] = BODY_REFLECTANCE
    for k in range(len(polys)):
        # each patch only touches its own bounding box
        q = polys[k] + m - off
        x0, y0 = np.maximum(np.floor(q.min(axis=0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(q.max(axis=0)).astype(int) + 2, [bx1 - bx0, by1 - by0])
        sub = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = np.round((q - [x0, y0]) * (1 << _SUB)).astype(np.int32)
        cv2.fillConvexPoly(sub, pts, 255, cv2.LINE_AA, _SUB)
        pa = (sub.astype(np.float32) / 255.0)[..., None]
        rgb[y0:y1, x0:x1] = rgb[y0:y1, x0:x1] * (1 - pa) + patch[k] * pa
    alpha = np.zeros((hh, ww), np.float32)
    alpha[by0:by1, bx0:bx1] = body
    # signed distance to the card outline (mm, < 0 inside), for spacing skin from it;
    # computed at 1/4 resolution (a distance field is smooth) and upsampled
    f = 4
    sh, sw = -(-hh // f), -(-ww // f)
    inside = np.zeros((sh, sw), np.uint8)
    cv2.fillConvexPoly(inside, np.round(wc / f * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    dist = ((d_out - d_in) * (f * grid.mm_per_px)).astype(np.float32)
    dist = cv2.resize(dist, (sw * f, sh * f), interpolation=cv2.INTER_LINEAR)[:hh, :ww]
    dist = np.ascontiguousarray(dist)
    return CardRender(corners=corners, patch_polygons=polys, patch_linear=patch,
                      width_mm=float(width_mm), height_mm=float(h * grid.mm_per_px), alpha=alpha,
                      distance_mm=dist, _bbox=(bx0, by0, bx1, by1), _rgb=rgb, margin=m)
