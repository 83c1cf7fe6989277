"""Where the subject is: the region an alignment must follow (the patient, not the room).

Between visits the patient moves and the room does not, so matching the whole frame
aligns the wallpaper. `find_subject` returns the region whose features drive the
alignment, in this order of preference:

1. a user ROI or mask (in this photo's pixel coordinates); a small one (under 10 % of the
   photo) is anchored by the face it lies on, else grown to 35 % of the short side;
2. the largest detected frontal face with two eyes found (else the largest face; OpenCV
   Haar cascades, `photokit.faces.haar`), grown to an
   ellipse covering the head: centre 8% of the box height above the box centre, semi-axes
   0.62 x box width and 0.78 x box height (the Haar box spans roughly brows to chin and
   cheek to cheek; the ellipse adds forehead and jaw, little background);
3. the whole frame (skin close-ups and body areas, where the subject fills the photo).

References
----------
P. Viola, M. Jones, "Rapid object detection using a boosted cascade of simple
features", CVPR 2001. doi:10.1109/CVPR.2001.990517
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import PhotokitError
from ..faces.haar import detect_faces
from ..io.roi import read_roi

#: Ellipse around a Haar face box: (centre dy, semi-axis x, semi-axis y) in box units.
HEAD_ELLIPSE = (-0.08, 0.62, 0.78)
#: The same head ellipse around a face mesh's vertex box (`mesh_subject`), in that box's
#: units: the medians over eight real portraits and two re-captures of the Haar ellipse
#: above measured against the mesh box (centre -0.12 to -0.20, semi-axes 0.67-0.84 and
#: 0.72-0.87).
MESH_HEAD_ELLIPSE = (-0.17, 0.76, 0.78)


@dataclass
class Subject:
    """The region of a photo that an alignment follows.

    Attributes
    ----------
    kind : str
        ``"roi"``, ``"face"`` or ``"frame"``.
    box : tuple of int
        ``(x0, y0, x1, y1)`` bounding box of the region, full-resolution pixels, clipped
        to the image.
    shape : tuple of int
        ``(height, width)`` of the photo.
    ellipse : tuple or None
        ``((cx, cy), (ax, ay))`` head ellipse (centre and semi-axes, pixels) for faces.
    mask : ndarray of bool or None
        The user's mask (full resolution) for ``"roi"``.
    """

    kind: str
    box: tuple[int, int, int, int]
    shape: tuple[int, int]
    ellipse: tuple | None = None
    mask: np.ndarray | None = None

    def mask_on(self, to_grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The region as a ``uint8`` mask (255 inside) on a working grid.

        Parameters
        ----------
        to_grid : ndarray
            3x3 affine matrix mapping full-resolution pixels to the grid (scale + shift).
        size : (width, height)
            Size of the grid.
        """
        w, h = size
        if self.kind == "frame":
            return np.full((h, w), 255, np.uint8)
        if self.kind == "face":
            (cx, cy), (ax, ay) = self.ellipse
            s = float(to_grid[0, 0])
            c = to_grid @ np.array([cx, cy, 1.0])
            out = np.zeros((h, w), np.uint8)
            cv2.ellipse(out, (int(round(c[0])), int(round(c[1]))),
                        (max(1, int(round(ax * s))), max(1, int(round(ay * s)))), 0, 0, 360, 255, -1)
            return out
        m = self.mask.astype(np.uint8) * 255
        return cv2.warpAffine(m, to_grid[:2], (w, h), flags=cv2.INTER_AREA if to_grid[0, 0] < 1
                              else cv2.INTER_NEAREST)

    def grown_box(self, margin: float) -> tuple[int, int, int, int]:
        """The bounding box grown by `margin` x its size on each side, clipped."""
        x0, y0, x1, y1 = self.box
        mx, my = margin * (x1 - x0), margin * (y1 - y0)
        h, w = self.shape
        return (max(0, int(x0 - mx)), max(0, int(y0 - my)),
                min(w, int(np.ceil(x1 + mx))), min(h, int(np.ceil(y1 + my))))


def find_subject(gray: np.ndarray, roi=None, *, faces: bool = True, head: Subject | None = None) -> Subject:
    """Find the subject region of a greyscale photo.

    Parameters
    ----------
    gray : ndarray
        ``uint8`` luma, full resolution.
    roi : ndarray of bool, str or path, optional
        A mask the size of the photo (non-zero inside), a mask PNG or a polygon JSON
        ``{"polygons": [[[x, y], ...], ...]}``. Overrides detection.
    faces : bool
        Look for a face when no ROI is given.
    head : Subject, optional
        The head already found (`mesh_subject` of a face mesh): what anchors a small ROI
        on the face, instead of a Haar search (whose ellipse around a close face takes in
        the wall behind it). Without a ROI the subject stays the Haar head: its inner
        face is the identity check's core (`photokit.registration.align`), which the
        mesh's larger ellipse would dilute with hair and ears.

    Returns
    -------
    Subject
    """
    h, w = gray.shape[:2]
    if roi is not None:
        mask = read_roi(roi, (h, w))
        ys, xs = np.nonzero(mask)
        if len(xs) < 64:
            raise PhotokitError("the ROI is empty or smaller than 64 pixels",
                                roi if isinstance(roi, (str, os.PathLike)) else None)
        mask = _anchor(gray, mask, faces=faces, head=head)
        ys, xs = np.nonzero(mask)
        return Subject("roi", (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1),
                       (h, w), mask=mask)
    if faces:
        found = detect_faces(gray, with_eyes=False)
        if len(found) > 1:
            found = detect_faces(gray, with_eyes=True)
        if found:
            # a detection with both eyes beats a larger one without (false positives on
            # clothing or background are rarely given two eyes)
            best = max(found, key=lambda f: (len(f.eyes) == 2, f.box[2] * f.box[3]))
            return _head(best.box, HEAD_ELLIPSE, (h, w))
    return Subject("frame", (0, 0, w, h), (h, w))


def _head(box, units: tuple[float, float, float], shape: tuple[int, int]) -> Subject:
    """The head ellipse around a face box ``(x, y, width, height)``: centre ``dy`` box
    heights below the box centre, semi-axes ``sx`` widths and ``sy`` heights
    (``units = (dy, sx, sy)``), and its bounding box clipped to the photo."""
    h, w = shape
    x, y, bw, bh = box
    dy, sx, sy = units
    cx, cy = x + bw / 2.0, y + bh / 2.0 + dy * bh
    ax, ay = sx * bw, sy * bh
    clipped = (max(0, int(cx - ax)), max(0, int(cy - ay)),
               min(w, int(np.ceil(cx + ax))), min(h, int(np.ceil(cy + ay))))
    return Subject("face", clipped, (h, w), ellipse=((cx, cy), (ax, ay)))


def mesh_subject(landmarks: np.ndarray, shape: tuple[int, int]) -> Subject:
    """The face subject of `find_subject` (the head ellipse) from a face mesh already
    found, instead of a second face search.

    Parameters
    ----------
    landmarks : ndarray, (N, 2) or (N, 3)
        The mesh vertices, image pixels.
    shape : (int, int)
        ``(height, width)`` of the photo.
    """
    (x0, y0), (x1, y1) = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    box = tuple(float(v) for v in (x0, y0, x1 - x0, y1 - y0))
    return _head(box, MESH_HEAD_ELLIPSE, tuple(shape[:2]))


def _anchor(gray: np.ndarray, mask: np.ndarray, *, faces: bool, head: Subject | None = None) -> np.ndarray:
    """Enough of the subject around a ROI to anchor an alignment.

    A small treated area (a cheek patch) has too few features of its own: when its centre
    lies on the head (`head`, else one of the Haar faces' head ellipses: another person
    in the photo), that head ellipse is added (the face carries the patch); otherwise the
    ROI is grown to a square of at least 35 % of the short side around its centre (the
    surrounding skin moves with it).
    """
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if len(xs) >= 0.1 * h * w:
        return mask
    cx, cy = float(xs.mean()), float(ys.mean())
    out = mask.astype(np.uint8)

    def holds(sub: Subject) -> bool:
        (ex, ey), (ax, ay) = sub.ellipse
        return ((cx - ex) / ax) ** 2 + ((cy - ey) / ay) ** 2 <= 1

    found = head if head is not None and holds(head) else None
    if found is None and faces:          # the Haar search only when the head given does not hold it
        haar = (_head(f.box, HEAD_ELLIPSE, (h, w)) for f in detect_faces(gray, with_eyes=False))
        found = next((sub for sub in haar if holds(sub)), None)
    if found is not None:
        (ex, ey), (ax, ay) = found.ellipse
        cv2.ellipse(out, (int(ex), int(ey)), (int(ax), int(ay)), 0, 0, 360, 1, -1)
        return out.astype(bool)
    half = max(xs.max() - xs.min(), ys.max() - ys.min(), 0.35 * min(h, w)) / 2
    out[max(0, int(cy - half)):int(cy + half) + 1, max(0, int(cx - half)):int(cx + half) + 1] = 1
    return out.astype(bool)
