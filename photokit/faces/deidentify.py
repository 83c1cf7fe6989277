"""An opaque mask over eyes and eyebrows, from the face mesh (de-identification of pictures).

Not a blur: a blur can be partly reversed, and journal guidance asks for an opaque mask
over eyes AND eyebrows (a bar over the eyes alone is inadequate).

References
----------
ICMJE, "Protection of Research Participants" (Recommendations, 2024).
Roberts EA, Troiano C, Spiegel JH. "Standardization of guidelines for patient photograph
deidentification." Ann Plast Surg 2016;76(6):611-614. doi:10.1097/SAP.0000000000000817
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
    from .mesh import find_faces

    px = np.asarray(pixels)
    rgb = np.repeat(px[..., None], 3, axis=2) if px.ndim == 2 else px[..., :3]
    faces = find_faces(np.ascontiguousarray(rgb))
    masked, _ = mask_eyes(px, faces, margin=margin)
    return masked, len(faces)
