"""Face detection: BlazeFace short-range on a letterboxed copy, with fallbacks.

References
----------
V. Bazarevsky, Y. Kartynnik, A. Vakunov, K. Raveendran, M. Grundmann, "BlazeFace:
Sub-millisecond Neural Face Detection on Mobile GPUs", CVPR Workshops 2019.
arXiv:1907.05047
W. Liu et al., "SSD: Single Shot MultiBox Detector", ECCV 2016. doi:10.1007/978-3-319-46448-0_2
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from . import _models
from ._crop import to_unit

#: Input side of the short-range detector.
SIDE = 128
#: Score threshold (sigmoid of the classifier logit), MediaPipe's ``min_score_thresh``.
MIN_SCORE = 0.5
#: IoU above which detections are merged by weighted NMS (MediaPipe's value).
NMS_IOU = 0.3
#: Side of the fallback detector's working copy (px, long side).
HAAR_SIDE = 640
#: Smallest face sought by the fallbacks, as a share of the photo's short side.
MIN_FACE_FRACTION = 0.08


@dataclass(frozen=True)
class Detection:
    """One detected face, in full-resolution pixel coordinates.

    Attributes
    ----------
    box : ndarray, (4,)
        ``x0, y0, x1, y1``.
    keypoints : ndarray, (6, 2)
        Subject's right eye, left eye, nose tip, mouth centre, right ear tragion,
        left ear tragion (MediaPipe order).
    score : float
        Detector confidence 0..1.
    source : str
        ``"whole"`` (letterboxed whole image), ``"haar"`` (Haar proposal, re-detected),
        ``"tile"`` (one of overlapping tiles).
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float
    source: str


@functools.cache
def anchors() -> np.ndarray:
    """The 896 SSD anchor centres of face_detection_short_range, in 0..1 units.

    MediaPipe's ``SsdAnchorsCalculator`` with strides 8, 16, 16, 16, one aspect ratio
    and ``interpolated_scale_aspect_ratio = 1`` (two anchors per layer and cell) and fixed
    anchor size: layers sharing a stride are merged, giving 2 anchors per cell on the
    16 x 16 grid and 6 per cell on the 8 x 8 grid; centre ``((j + 0.5) / W, (i + 0.5) / H)``.
    """
    out = []
    for grid, per_cell in ((SIDE // 8, 2), (SIDE // 16, 6)):
        c = (np.arange(grid) + 0.5) / grid
        yy, xx = np.meshgrid(c, c, indexing="ij")
        cells = np.stack([xx.ravel(), yy.ravel()], axis=1)
        out.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(out)


def decode(regressors: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, keypoints and scores of the anchors above `MIN_SCORE`.

    The regressors are offsets in input pixels: centre ``a + r[0:2] / 128``, size
    ``r[2:4] / 128``, keypoint ``k = a + r[4+2k : 6+2k] / 128``; score = sigmoid(logit)
    with the logit clipped to +/-100.

    Returns
    -------
    boxes : (M, 4) ``x0, y0, x1, y1`` in 0..1 units; keypoints : (M, 6, 2); scores : (M,)
    """
    r = regressors.reshape(-1, 16) / SIDE
    a = anchors()
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1).astype(np.float64), -100, 100)))
    keep = scores >= MIN_SCORE
    r, a, scores = r[keep], a[keep], scores[keep]
    c = a + r[:, 0:2]
    half = r[:, 2:4] / 2
    boxes = np.concatenate([c - half, c + half], axis=1)
    kps = a[:, None, :] + r[:, 4:16].reshape(-1, 6, 2)
    return boxes, kps, scores


def weighted_nms(boxes, kps, scores, iou_thresh: float = NMS_IOU):
    """MediaPipe's weighted non-maximum suppression.

    Detections are taken by decreasing score; those overlapping the best by IoU above
    `iou_thresh` are merged into it, boxes and keypoints averaged with the scores as
    weights; the merged detection keeps the best score.
    """
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    area = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    left = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not left[i]:
            continue
        lo = np.maximum(boxes[i, :2], boxes[:, :2])
        hi = np.minimum(boxes[i, 2:], boxes[:, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        iou = inter / np.maximum(area[i] + area - inter, 1e-12)
        grp = left & (iou > iou_thresh)
        grp[i] = True
        w = scores[grp] / scores[grp].sum()
        out.append(((w[:, None] * boxes[grp]).sum(0), (w[:, None, None] * kps[grp]).sum(0), scores[i]))
        left &= ~grp
    return out


def detect_in(rgb: np.ndarray, rect, source: str) -> list[Detection]:
    """Run the detector on the square region ``rect = (x0, y0, side)`` of `rgb`.

    The region may extend past the image (padded with black: a letterbox). It is
    sampled by a stride, then area-averaged to 128 x 128, so a 12 MP photo costs
    about a millisecond.
    """
    x0, y0, side = (int(round(v)) for v in rect)
    h, w = rgb.shape[:2]
    step = max(1, side // (4 * SIDE))
    xa, ya = max(0, x0), max(0, y0)
    xb, yb = min(w, x0 + side), min(h, y0 + side)
    if xb - xa < 8 or yb - ya < 8:
        return []
    sub = rgb[ya:yb:step, xa:xb:step]
    ss = -(-side // step)
    canvas = np.zeros((ss, ss, 3), rgb.dtype)
    oy, ox = (ya - y0) // step, (xa - x0) // step
    canvas[oy:oy + sub.shape[0], ox:ox + sub.shape[1]] = sub
    small = cv2.resize(canvas, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    out = _models.run(_models.DETECTOR, to_unit(small)[None])
    boxes, kps, scores = decode(out["regressors"][0], out["classificators"][0])
    dets = []
    for b, k, s in weighted_nms(boxes, kps, scores):
        dets.append(Detection(b * side + [x0, y0, x0, y0], k * side + [x0, y0], float(s), source))
    return dets


def _haar_proposals(rgb: np.ndarray) -> list[tuple[float, float, float]]:
    """Square regions around the frontal Haar cascade's faces (3 face widths)."""
    h, w = rgb.shape[:2]
    step = max(1, max(h, w) // (2 * HAAR_SIDE))
    sub = rgb[::step, ::step]
    s = min(1.0, HAAR_SIDE / max(sub.shape[:2]))
    small = cv2.resize(sub, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else sub
    small = small if small.dtype == np.uint8 else (small >> 8).astype(np.uint8)
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    least = max(20, int(MIN_FACE_FRACTION * min(gray.shape)))  # as photokit.faces.haar
    with _HAAR_LOCK:     # the cascade keeps per-image state: one detection at a time
        rects = _haar().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4,
                                         minSize=(least, least))
    f = step / s
    return [_around((x * f, y * f, bw * f, bh * f)) for x, y, bw, bh in rects]


def _around(box) -> tuple[float, float, float]:
    """The square of three face widths centred on a face box ``(x, y, w, h)``."""
    x, y, bw, bh = box
    return x + bw / 2 - 1.5 * bw, y + bh / 2 - 1.5 * bw, 3 * bw


_HAAR_LOCK = threading.Lock()


@functools.cache
def _haar() -> cv2.CascadeClassifier:
    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def _tiles(h: int, w: int) -> list[tuple[float, float, float]]:
    """Overlapping squares of half the short side (stride: half a tile): they find faces
    down to about 1/16 of the short side, the `MIN_FACE_FRACTION` the Haar proposals
    look for too (a smaller face is too coarse for any skin measure but colour)."""
    out = []
    for frac in (0.5,):
        side = frac * min(h, w)
        for y in np.arange(0, max(1, h - side) + 1, side / 2):
            for x in np.arange(0, max(1, w - side) + 1, side / 2):
                out.append((x, y, side))
    return out


def _merge(dets: list[Detection]) -> list[Detection]:
    """Drop detections whose box centre lies in a larger one's box."""
    dets = sorted(dets, key=lambda d: -np.prod(d.box[2:] - d.box[:2]))
    out: list[Detection] = []
    for d in dets:
        c = (d.box[:2] + d.box[2:]) / 2
        if not any(np.all(c >= o.box[:2]) and np.all(c <= o.box[2:]) for o in out):
            out.append(d)
    return out


def detect(rgb: np.ndarray, *, proposals=None, fallbacks: bool = True) -> list[Detection]:
    """All faces in `rgb`, largest first.

    1. The whole image, letterboxed to a square (faces larger than about 1/8 of the
       frame, the short-range model's domain).
    2. If nothing: squares of three face widths around the frontal Haar cascade's
       faces (`HAAR_SIDE` px copy), each re-detected by BlazeFace, which rejects the
       cascade's false positives.
    3. If still nothing: overlapping tiles of half the short side.

    `proposals` (``proposals() -> [(x, y, w, h), ...]``) replaces the cascade of step 2
    with the caller's face boxes; without `fallbacks` only step 1 runs (a caller that
    knows no face could be smaller than step 1 finds).
    """
    h, w = rgb.shape[:2]
    side = max(h, w)
    dets = detect_in(rgb, ((w - side) / 2, (h - side) / 2, side), "whole")
    haar = _haar_proposals if proposals is None else (lambda im: [_around(b) for b in proposals()])
    for source, rects in (("haar", haar), ("tile", lambda im: _tiles(h, w))) if fallbacks else ():
        if dets:
            break
        for r in rects(rgb):
            dets += detect_in(rgb, r, source)
    return _merge(dets)
