"""Rotated square crops taken straight from the full-resolution photo."""

from __future__ import annotations

import cv2
import numpy as np


def to_unit(rgb: np.ndarray) -> np.ndarray:
    """uint8 or uint16 RGB as float32 in 0..1 (the networks' input range)."""
    return rgb.astype(np.float32) * np.float32(1 / 65535 if rgb.dtype == np.uint16 else 1 / 255)


def crop_transform(center, side: float, angle: float, out: int) -> np.ndarray:
    """2 x 3 affine map from crop pixels to image pixels.

    ``p = c + (side / out) R(angle) (q - (out - 1) / 2)``: the crop is a square of
    `side` image pixels centred on `center`, its x axis along the direction `angle`
    (radians, image axes: x right, y down), sampled on `out` x `out` pixels.
    """
    k = side / out
    cs, sn = np.cos(angle) * k, np.sin(angle) * k
    m = np.array([[cs, -sn, 0.0], [sn, cs, 0.0]])
    h = (out - 1) / 2
    m[:, 2] = np.asarray(center, float) - m[:, :2] @ [h, h]
    return m


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2 x 3 affine map to (N, 2) points."""
    return pts @ m[:, :2].T + m[:, 2]


def crop(rgb: np.ndarray, center, side: float, angle: float, out: int, *,
         flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """An `out` x `out` RGB crop in 0..1 and its crop-to-image map.

    Only the crop's bounding box is read. When the crop shrinks the photo more than
    twofold, that box is first taken with a stride of ``floor(k / 2)`` and
    area-averaged to the crop's scale (``k = side / out``), so the final bilinear warp
    does not alias; a 12 MP photo is never touched as a whole. With `flip` the crop is
    mirrored left-right (the map accounts for it).

    Returns
    -------
    crop : (out, out, 3) float32
    m : (2, 3) affine map, crop pixel -> image pixel
    """
    m = crop_transform(center, side, angle, out)
    if flip:
        m = m @ np.array([[-1.0, 0, out - 1], [0, 1, 0], [0, 0, 1]])
    h, w = rgb.shape[:2]
    corners = apply(m, np.array([[0, 0], [out - 1, 0], [0, out - 1], [out - 1, out - 1]], float))
    x0, y0 = np.floor(corners.min(0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    k = side / out
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((out, out, 3), np.float32), m
    region = rgb[y0:y1, x0:x1]
    # region pixel r -> image pixel x0 + f r (stride f); after the area resize by
    # (fx, fy), region pixel r2 covers r in [fx r2, fx (r2 + 1)): r2 = (r + 0.5) / fx - 0.5
    f = fx = fy = 1.0
    if k > 2:
        f = float(int(k // 2))
        region = region[::int(f), ::int(f)]
        shrink = k / f
        if shrink > 1.25:
            size = (max(2, round(region.shape[1] / shrink)), max(2, round(region.shape[0] / shrink)))
            fx, fy = region.shape[1] / size[0], region.shape[0] / size[1]
            region = cv2.resize(np.ascontiguousarray(region), size, interpolation=cv2.INTER_AREA)
    to_region = np.array([[1 / (f * fx), 0, -x0 / (f * fx) + 0.5 / fx - 0.5],
                          [0, 1 / (f * fy), -y0 / (f * fy) + 0.5 / fy - 0.5]])
    m3 = np.vstack([m, [0, 0, 1]])
    warp = to_region @ m3   # crop pixel -> region pixel
    out_img = cv2.warpAffine(np.ascontiguousarray(region), warp, (out, out),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
    return to_unit(out_img), m
