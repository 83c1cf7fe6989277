"""Face and eye detection with OpenCV's bundled Haar cascades (offline, no model download).

Used to find the subject (alignment), to judge exposure on the face (quality), to place
face zones and to estimate scale from the inter-ocular distance.

References
----------
P. Viola, M. Jones, "Rapid object detection using a boosted cascade of simple
features", CVPR 2001. doi:10.1109/CVPR.2001.990517
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from ..imaging.filters import shrink

_DETECT_SIDE = 640
#: Width range (mm) of a face box of the frontal-face cascade, used when the scale is known.
FACE_BOX_MM = (80.0, 320.0)


@dataclass(frozen=True)
class Face:
    """A detected face in full-resolution pixel coordinates.

    Attributes
    ----------
    box : tuple of int
        ``(x, y, w, h)``.
    eyes : tuple of (float, float)
        Eye centres ``(x, y)``, left-to-right in the image, when both were found.
    """

    box: tuple[int, int, int, int]
    eyes: tuple[tuple[float, float], ...] = ()

    @property
    def interocular_px(self) -> float | None:
        if len(self.eyes) != 2:
            return None
        (x1, y1), (x2, y2) = self.eyes
        return float(np.hypot(x2 - x1, y2 - y1))


#: A cascade is shared by the threads of a process and keeps per-image state while it
#: detects: one detection at a time.
_CASCADE_LOCK = threading.Lock()


@functools.cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    c = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if c.empty():  # pragma: no cover - broken OpenCV install
        raise RuntimeError(f"OpenCV Haar cascade {name} is missing")
    return c


def detect_faces(gray: np.ndarray, *, with_eyes: bool = True, min_size_frac: float = 0.08,
                 mm_per_px: float | None = None) -> list[Face]:
    """Frontal faces in a greyscale uint8 image, largest first.

    Detection runs on a copy area-averaged to 640 px on the long side (`filters.shrink`)
    and histogram-equalised; eyes are searched in the upper half of each face box at a
    finer scale, with a looser second pass when the strict one finds no pair
    (`_detect_eyes`).

    When the photo's scale is known (`mm_per_px`; `measure` passes the user's), only
    boxes of a human face's size are searched: `FACE_BOX_MM` (the cascade's box spans
    2.1-3.1 inter-ocular distances on the test portraits, 130-200 mm at 63 mm, with a
    margin for children and for error in the scale). This skips the scales where no face
    can be, and the "faces" Haar finds in skin texture on a close-up, a few mm wide.
    """
    h0, w0 = gray.shape[:2]
    s = min(1.0, _DETECT_SIDE / max(h0, w0))
    size = (int(round(w0 * s)), int(round(h0 * s))) if s < 1 else (w0, h0)
    sx, sy = size[0] / w0, size[1] / h0
    min_side = max(24, int(min_size_frac * min(size)))
    max_side = max(size)
    if mm_per_px:
        min_side = max(min_side, int(FACE_BOX_MM[0] / mm_per_px * sx))
        max_side = min(max_side, int(np.ceil(FACE_BOX_MM[1] / mm_per_px * sx)))
        if min_side > min(size) or max_side < min_side:
            return []  # no face of a human size fits in this photo
    # by halvings (OpenCV's fast path): 4 ms on 12 MP, against 26 ms in one step
    small = shrink(gray, size) if s < 1 else gray
    small = cv2.equalizeHist(small)
    with _CASCADE_LOCK:
        rects = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
            small, scaleFactor=1.1, minNeighbors=6, minSize=(min_side, min_side),
            maxSize=(max_side, max_side))
    faces = []
    for (x, y, w, h) in sorted((tuple(r) for r in rects), key=lambda r: -r[2] * r[3]):
        box = (int(round(x / sx)), int(round(y / sy)), int(round(w / sx)), int(round(h / sy)))
        eyes = _detect_eyes(gray, box) if with_eyes else ()
        faces.append(Face(box, eyes))
    return faces


#: Eye-cascade ``minNeighbors``: the strict value first, then a looser one for eyes the
#: strict pass misses (narrowed by a smile: biden2 of the benchmark portraits).
EYE_NEIGHBOURS = (5, 3)
#: Plausible inter-ocular distance as a share of the face box width for the looser pass
#: (the cascade's box spans 2.1-3.1 inter-ocular distances on the test portraits:
#: 0.32-0.48), with a margin.
EYE_SPAN = (0.28, 0.52)


def _detect_eyes(gray: np.ndarray, box) -> tuple:
    """Both eye centres in face `box`, or ``()``.

    The eye cascade runs on the upper half of the box; of the candidates left and right of
    the box's middle the pair most level and nearest the expected eye height (0.4 of the
    box) is taken, first with the strict `EYE_NEIGHBOURS`, then with the looser one,
    whose pairs must also span a plausible share of the box width (`EYE_SPAN`).
    """
    x, y, w, h = box
    roi = gray[y: y + h // 2 + h // 10, x: x + w]
    s = min(1.0, 240 / max(1, w))
    roi_s = cv2.resize(roi, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else roi
    min_e = max(8, int(0.12 * roi_s.shape[1]))
    for neighbours in EYE_NEIGHBOURS:
        with _CASCADE_LOCK:
            rects = _cascade("haarcascade_eye.xml").detectMultiScale(
                roi_s, scaleFactor=1.08, minNeighbors=neighbours, minSize=(min_e, min_e))
        cands = [((ex + ew / 2) / s + x, (ey + eh / 2) / s + y) for ex, ey, ew, eh in rects]
        pairs = [(a, b) for a in cands if a[0] < x + w / 2 for b in cands if b[0] >= x + w / 2]
        if neighbours != EYE_NEIGHBOURS[0]:   # looser: only a plausible span
            pairs = [(a, b) for a, b in pairs
                     if EYE_SPAN[0] * w <= np.hypot(b[0] - a[0], b[1] - a[1]) <= EYE_SPAN[1] * w]
        if pairs:
            best = min(pairs, key=lambda p: abs(p[0][1] - p[1][1])
                       + 0.5 * abs((p[0][1] + p[1][1]) / 2 - (y + 0.4 * h)))
            return tuple(sorted(best))
    return ()
