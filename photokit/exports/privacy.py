"""De-identification: an opaque mask over eyes and eyebrows, and no input names in outputs.

Two separate concerns, both pure:

- `mask_eyes`: RGB pixels and the face meshes in, the pixels with eyes and eyebrows
  covered by an opaque fill (not a blur: blur can be partly reversed) and the mask out.
- `Scrubber`: replaces every input path, folder and file name in text (HTML, JSON, CSV,
  SVG pictures embedded in HTML) with neutral labels ``photo 1``, ``photo 2``, ...

References
----------
ICMJE, "Protection of Research Participants" (Recommendations, 2024): a bar over the
eyes is not adequate de-identification.
Roberts EA, Troiano C, Spiegel JH. "Standardization of guidelines for patient photograph
deidentification." Ann Plast Surg 2016;76(6):611-614. doi:10.1097/SAP.0000000000000817
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

#: MediaPipe Face Mesh indices of each eye outline and eyebrow (the subject's own
#: right and left; from MediaPipe's ``face_mesh_connections.py``, Apache-2.0).
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
RIGHT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
LEFT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)

#: Growth of each eye-and-brow hull, as a share of the inter-ocular distance (between
#: the two eye-outline centroids, about 63 mm in adults): 0.15 is about 9-10 mm.
MARGIN = 0.15


def eye_brow_hulls(landmarks: np.ndarray) -> list[np.ndarray]:
    """The two convex hulls (right eye + brow, left eye + brow) of one face's mesh.

    Parameters
    ----------
    landmarks : ndarray, (468, 2 or 3)
        MediaPipe Face Mesh points in image pixels.

    Returns
    -------
    list of ndarray, (k, 2) float
        Hull vertices ``(x, y)``, the subject's right side first.
    """
    xy = np.asarray(landmarks, dtype=np.float64)[:, :2]
    hulls = []
    for eye, brow in ((RIGHT_EYE, RIGHT_BROW), (LEFT_EYE, LEFT_BROW)):
        pts = xy[list(eye) + list(brow)].astype(np.float32)
        hulls.append(cv2.convexHull(pts).reshape(-1, 2).astype(np.float64))
    return hulls


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance in pixels between the centroids of the two eye outlines."""
    xy = np.asarray(landmarks, dtype=np.float64)[:, :2]
    return float(np.linalg.norm(xy[list(RIGHT_EYE)].mean(0) - xy[list(LEFT_EYE)].mean(0)))


def eye_brow_mask(shape: Sequence[int], faces: Iterable, *, margin: float = MARGIN) -> np.ndarray:
    """Boolean mask of both eyes and eyebrows of every face, grown by a margin.

    Parameters
    ----------
    shape : (int, int, ...)
        Image shape; only height and width are used.
    faces : iterable of FaceMesh or ndarray
        Meshed faces (anything with ``.landmarks``) or landmark arrays ``(468, 2|3)``.
    margin : float
        Growth of each hull as a share of that face's inter-ocular distance ``d``.

    Returns
    -------
    ndarray of bool, (H, W)

    Notes
    -----
    Each hull is grown by the Minkowski sum with a disc of radius ``r = margin * d``
    (a dilation by an elliptical structuring element of diameter ``2r + 1``), so the
    mask reaches ``r`` beyond the outermost eye and brow landmarks in every direction.
    """
    h, w = int(shape[0]), int(shape[1])
    mask = np.zeros((h, w), np.uint8)
    for face in faces:
        lm = np.asarray(getattr(face, "landmarks", face), dtype=np.float64)
        one = np.zeros((h, w), np.uint8)
        for hull in eye_brow_hulls(lm):
            cv2.fillConvexPoly(one, np.round(hull).astype(np.int32), 1)
        r = int(round(margin * inter_ocular(lm)))
        if r > 0:
            one = cv2.dilate(one, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        mask |= one
    return mask.astype(bool)


def mask_eyes(rgb: np.ndarray, faces: Iterable, *, margin: float = MARGIN,
              fill: Sequence[int] = (0, 0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """Cover eyes and eyebrows of every face with an opaque fill.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3) or (H, W)
        The picture (not modified).
    faces : iterable of FaceMesh or ndarray
        The faces of `rgb` (`photokit.faces.mesh.find_faces`), in its pixel coordinates.
    margin : float
        Growth of the eye-and-brow hulls, share of the inter-ocular distance.
    fill : sequence of int
        The fill colour (black by default), in `rgb`'s value range.

    Returns
    -------
    masked : ndarray
        A copy of `rgb` with every masked pixel set to `fill`.
    mask : ndarray of bool, (H, W)
        Where it was covered (empty when there is no face).
    """
    mask = eye_brow_mask(rgb.shape, faces, margin=margin)
    out = np.array(rgb, copy=True)
    out[mask] = fill if out.ndim == 3 else fill[0]
    return out, mask


def mask_photo(pixels: np.ndarray, *, margin: float = MARGIN) -> tuple[np.ndarray, int]:
    """Find the faces of a photo and cover their eyes and eyebrows (`mask_eyes`).

    Returns the masked copy and the number of faces found (0: nothing was covered, which
    the caller must report: a de-identification that found no face is no protection).
    Greyscale photos are meshed on their grey replicated to RGB.
    """
    from ..faces.mesh import find_faces

    px = np.asarray(pixels)
    rgb = np.repeat(px[..., None], 3, axis=2) if px.ndim == 2 else px[..., :3]
    faces = find_faces(np.ascontiguousarray(rgb))
    masked, _ = mask_eyes(px, faces, margin=margin)
    return masked, len(faces)


def labels(sources: Sequence) -> dict[str, str]:
    """Neutral labels for input photos in the order given: ``{name: "photo 1", ...}``."""
    out: dict[str, str] = {}
    for s in sources:
        name = Path(os.fspath(s)).name
        if name and name not in out:
            out[name] = f"photo {len(out) + 1}"
    return out


_SVG_URI = re.compile(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)")


class Scrubber:
    """Replaces input paths, folders and file names in outputs with neutral labels.

    Parameters
    ----------
    photos : sequence of str or os.PathLike
        The input photos, in the order whose labels ``photo 1``, ``photo 2``, ... they get.
    others : sequence of str or os.PathLike
        Other inputs (manifest, ROI files, source folder): replaced by ``input`` (files)
        or ``input folder`` (folders).

    Notes
    -----
    Replaced, longest first so that a folder never leaves a tail behind: each input's
    path as given, absolute and resolved; its folder (as given, absolute, resolved); its
    file name; each in plain, HTML-escaped and JSON-escaped spelling. SVG pictures
    embedded in HTML as base64 ``data:`` URIs are decoded, scrubbed and re-encoded.
    """

    def __init__(self, photos: Sequence, others: Sequence = ()):
        photos = [os.fspath(s) for s in photos if isinstance(s, (str, os.PathLike))]
        others = [os.fspath(s) for s in others if isinstance(s, (str, os.PathLike))]
        self.names = labels(photos)
        pairs: dict[str, str] = {}
        for s in photos + others:
            p = Path(s)
            label = "input folder" if os.path.isdir(s) else self.names.get(p.name, "input")
            for variant in _spellings(p):
                pairs[variant] = label
            for variant in _spellings(p.parent):
                if variant not in (".", "", os.sep):
                    pairs.setdefault(variant, "input folder")
        for name, label in self.names.items():
            pairs.setdefault(name, label)
        for s in others:
            if not os.path.isdir(s):  # a bare folder name may be an ordinary word
                pairs.setdefault(Path(s).name, "input")
        expanded: dict[str, str] = {}
        for k, v in pairs.items():
            for spelled in {k, html.escape(k), json.dumps(k)[1:-1]}:
                expanded.setdefault(spelled, v)
        self.pairs = dict(sorted(expanded.items(), key=lambda kv: -len(kv[0])))
        self._pattern = (re.compile("|".join(re.escape(k) for k in self.pairs))
                         if self.pairs else None)

    def label(self, source) -> str:
        """The neutral label of one input (``photo N``), or ``photo`` when unknown."""
        return self.names.get(Path(os.fspath(source)).name, "photo")

    def text(self, text: str) -> str:
        """`text` with every input path, folder and file name replaced."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self.pairs[m.group(0)], text)

    def html(self, page: str) -> str:
        """An HTML page scrubbed, including SVG pictures embedded as base64."""
        def svg(m):
            raw = base64.b64decode(m.group(1)).decode("utf-8", "replace")
            return "data:image/svg+xml;base64," + base64.b64encode(
                self.text(raw).encode("utf-8")).decode("ascii")

        return self.text(_SVG_URI.sub(svg, page))

    def doc(self, obj):
        """A JSON-like document (dicts, lists, strings) with every string scrubbed."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.text(str(k)) if isinstance(k, str) else k: self.doc(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.doc(v) for v in obj]
        return obj


def _spellings(p: Path) -> set[str]:
    out = {str(p), os.path.abspath(p)}
    try:
        out.add(str(p.resolve()))
    except OSError:
        pass
    return {s for s in out if s}
