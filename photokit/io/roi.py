"""Regions of interest: reading, rasterising, validating, carrying through a homography.

A region is (SPEC) a mask image the size of the photo (PNG; non-zero = inside), a JSON
document ``{"polygons": [[[x, y], ...], ...]}`` in full-resolution pixel coordinates
(origin top-left, x to the right), or a boolean array. Several polygons are united.

Dense carrying of a BEFORE-grid mask onto AFTER (with the flow refinement) is
`photokit.registration.align.Alignment.roi_to_after`; `mask_to_after` here is its global-homography
form, for callers that only have ``H``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import PhotokitError

_SHIFT = 4  # sub-pixel bits for polygon rasterisation


def parse_polygons(doc, path=None) -> list[np.ndarray]:
    """Validate a polygon ROI document; returns float64 ``(N, 2)`` arrays of ``(x, y)``.

    Raises `PhotokitError` for a missing ``polygons`` key, polygons of fewer than three
    points, or non-finite coordinates.
    """
    if not isinstance(doc, dict) or "polygons" not in doc:
        raise PhotokitError('polygon ROI must be a JSON object {"polygons": [[[x, y], ...], ...]}', path)
    polys = []
    for k, p in enumerate(doc["polygons"]):
        try:
            arr = np.asarray(p, dtype=np.float64)
        except (TypeError, ValueError):
            raise PhotokitError(f"polygon {k} is not a list of [x, y] points", path) from None
        if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 3:
            raise PhotokitError(f"polygon {k} needs at least three [x, y] points", path)
        if not np.isfinite(arr).all():
            raise PhotokitError(f"polygon {k} has non-finite coordinates", path)
        polys.append(arr)
    if not polys:
        raise PhotokitError("polygon ROI has no polygons", path)
    return polys


def rasterise(polygons, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of `shape` inside the union of `polygons` (1/16 px vertex precision).

    Pixels touched by the outline are inside (OpenCV convention), so the area exceeds the
    exact polygon area by at most about half a pixel per pixel of perimeter.
    """
    h, w = shape[:2]
    out = np.zeros((h, w), np.uint8)
    pts = [np.round(np.asarray(p, np.float64) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
           for p in polygons]
    cv2.fillPoly(out, pts, 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return out.astype(bool)


def read_roi(roi, shape: tuple[int, int], *, min_pixels: int = 1) -> np.ndarray:
    """A boolean mask of `shape` from an array, a mask image path or a polygon JSON path.

    Raises
    ------
    PhotokitError
        Unreadable file, a mask of another size than the photo, a polygon document that
        does not follow SPEC, or a region with fewer than `min_pixels` pixels inside the
        photo (e.g. polygons entirely out of frame).
    """
    h, w = shape[:2]
    path = None
    if isinstance(roi, np.ndarray):
        mask = roi if roi.ndim == 2 else roi.max(axis=2)
    elif isinstance(roi, (str, os.PathLike)):
        path = Path(roi)
        if path.suffix.lower() == ".json":
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise PhotokitError(f"cannot read polygon ROI ({exc})", path) from None
            mask = rasterise(parse_polygons(doc, path), (h, w))
        else:
            from .photo import load

            px = load(path).pixels
            mask = px if px.ndim == 2 else px.max(axis=2)
    elif isinstance(roi, dict):
        mask = rasterise(parse_polygons(roi), (h, w))
    else:
        raise PhotokitError(f"cannot use a {type(roi).__name__} as an ROI")
    if mask.shape != (h, w):
        raise PhotokitError(f"ROI mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {w}x{h}", path)
    mask = mask.astype(bool)
    n = int(np.count_nonzero(mask))
    if n < min_pixels:
        raise PhotokitError(f"ROI covers {n} pixels of the photo (empty or out of frame)", path)
    return mask


def mask_to_after(mask_before: np.ndarray, H: np.ndarray, after_shape: tuple[int, int]) -> np.ndarray:
    """Carry a BEFORE-grid mask onto AFTER's grid through ``H`` (AFTER px -> BEFORE px).

    Each AFTER pixel ``a`` takes the mask value at ``H a`` (nearest after bilinear
    weighting, threshold 0.5), which is exactly `cv2.warpPerspective` with
    ``WARP_INVERSE_MAP``. Pixels that map outside BEFORE are outside the region.
    """
    h, w = after_shape[:2]
    m = np.asarray(mask_before, bool).astype(np.float32)
    out = cv2.warpPerspective(m, np.asarray(H, np.float64), (w, h),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out >= 0.5
