"""Face Mesh (468 points) and MediaPipe Iris on rotated crops of the full photo.

References
----------
Y. Kartynnik, A. Ablavatski, I. Grishchenko, M. Grundmann, "Real-time Facial Surface
Geometry from Monocular Video on Mobile GPUs", CVPR Workshops 2019. arXiv:1907.06724
A. Ablavatski, A. Vakunov, I. Grishchenko, K. Raveendran, M. Zhdanovich, "Real-time
Pupil Tracking from Monocular Video for Digital Puppetry", 2020. arXiv:2006.11341
"""

from __future__ import annotations

import numpy as np

from . import _models
from ._crop import apply, crop
from ._limbus import fit_limbus

#: Input side of the mesh model and of the iris model.
MESH_SIDE, IRIS_SIDE = 192, 64
#: Crop side as a multiple of the face's extent (MediaPipe's 1.5: a 25 % margin each side).
MESH_MARGIN = 1.5
#: Eye crop side as a multiple of the eye-corner distance (MediaPipe's 2.3).
IRIS_MARGIN = 2.3
#: Outer eye corners of the mesh: subject's right (image left), subject's left.
EYE_OUTER = (33, 263)
#: Eye corners (outer, inner) per eye, subject's right then left.
EYE_CORNERS = ((33, 133), (263, 362))
#: Faces whose mesh presence score is below this are dropped.
MIN_PRESENCE = 0.5


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -100, 100)))


def mesh_from_roi(rgb: np.ndarray, center, side: float, angle: float) -> tuple[np.ndarray, float]:
    """468 mesh points ``(x, y, z)`` in image pixels and the face-presence score.

    The crop is `side` px square around `center`, rotated by `angle` (radians) so the
    eyes are level; the model's crop-pixel outputs are mapped back through the crop's
    affine map, z scaled like x (``side / 192``). The models' outputs use pixel-edge
    coordinates (a point at x lies in input pixel ``floor(x)``), hence the half-pixel
    shift before the map.
    """
    c, m = crop(rgb, center, side, angle, MESH_SIDE)
    out = _models.run(_models.MESH, c[None])
    pts = out["conv2d_21"][0].reshape(468, 3).astype(np.float64)
    xyz = np.empty_like(pts)
    xyz[:, :2] = apply(m, pts[:, :2] - 0.5)
    xyz[:, 2] = pts[:, 2] * side / MESH_SIDE
    return xyz, float(_sigmoid(out["conv2d_31"][0, 0]))


def roi_from_mesh(xyz: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Centre, side and roll angle of the next crop, from the mesh itself.

    The angle levels the outer eye corners (`EYE_OUTER`); the side is `MESH_MARGIN`
    times the larger extent of the points in that levelled frame, centred on them.
    """
    a, b = xyz[EYE_OUTER[0], :2], xyz[EYE_OUTER[1], :2]
    angle = float(np.arctan2(b[1] - a[1], b[0] - a[0]))
    cs, sn = np.cos(angle), np.sin(angle)
    rot = np.array([[cs, sn], [-sn, cs]])          # image -> levelled frame
    p = xyz[:, :2] @ rot.T
    lo, hi = p.min(0), p.max(0)
    center = ((lo + hi) / 2) @ rot                 # back to image
    return center, float(MESH_MARGIN * max(hi - lo)), angle


def mesh(rgb: np.ndarray, keypoints: np.ndarray, box: np.ndarray, *, passes: int = 2):
    """Mesh a detected face: a crop from the detection, then `passes - 1` crops on the mesh.

    Returns
    -------
    xyz : (468, 3) ndarray or None
        None when the presence score falls below `MIN_PRESENCE`.
    score : float
    """
    right, left = keypoints[0], keypoints[1]
    angle = float(np.arctan2(left[1] - right[1], left[0] - right[0]))
    center = (box[:2] + box[2:]) / 2
    side = MESH_MARGIN * float(max(box[2:] - box[:2]))
    return _passes(rgb, mesh_from_roi(rgb, center, side, angle), passes)


def mesh_near(rgb: np.ndarray, guess: np.ndarray, *, passes: int = 2):
    """Mesh the face that lies about where the mesh points `guess` (``(468, 2+)``, image
    pixels: e.g. another photo's mesh carried over by an alignment) say: the first crop
    is the one `roi_from_mesh` takes from `guess`, then as `mesh`.

    Returns ``(xyz, score)`` as `mesh`.
    """
    return _passes(rgb, mesh_from_roi(rgb, *roi_from_mesh(np.asarray(guess, np.float64))), passes)


def _passes(rgb: np.ndarray, first: tuple[np.ndarray, float], passes: int):
    """`passes - 1` crops on the mesh after the `first` one, and the presence test."""
    xyz, score = first
    for _ in range(passes - 1):
        if score < MIN_PRESENCE:
            break
        xyz, score = mesh_from_roi(rgb, *roi_from_mesh(xyz))
    return (xyz if score >= MIN_PRESENCE else None), score


def iris(rgb: np.ndarray, xyz: np.ndarray) -> list[dict]:
    """Iris centre, edge points and eye contour per eye (subject's right, then left).

    Each eye is cropped square, `IRIS_MARGIN` times its corner distance, levelled on
    its corners, 64 x 64 px; the model expects a left eye, so the right eye's crop is
    mirrored (and its outputs mapped back through the mirrored map).

    Returns
    -------
    list of dict
        ``center`` (2,) iris centre (the model's, moved along the eye axis to the middle
        of the two limbus edges when they were found), ``edge`` (4, 2) iris edge points,
        ``contour`` (71, 2) eye and brow contour, ``model_diameter_px`` the distance
        between the pair of opposite edge points more parallel to the eye-corner line,
        ``diameter_px`` the horizontal visible iris diameter: the limbus measured on the
        photo (`fit_limbus`, started from the model's centre and radius), else (no limbus
        found) the model's.
    """
    crops, maps, axes = [], [], []
    for k, (outer, inner) in enumerate(EYE_CORNERS):
        a, b = xyz[outer, :2], xyz[inner, :2]
        if k == 1:
            a, b = b, a                             # left-to-right in the image
        axis = (b - a) / max(np.hypot(*(b - a)), 1e-9)
        angle = float(np.arctan2(axis[1], axis[0]))
        side = IRIS_MARGIN * float(np.hypot(*(b - a)))
        c, m = crop(rgb, (a + b) / 2, side, angle, IRIS_SIDE, flip=(k == 0))
        crops.append(c)
        maps.append(m)
        axes.append(axis)
    out = _models.run(_models.IRIS, np.stack(crops))
    eyes = []
    for k in range(2):
        ir = apply(maps[k], out["output_iris"][k].reshape(5, 3)[:, :2].astype(np.float64) - 0.5)
        contour = apply(maps[k], out["output_eyes_contours_and_brows"][k].reshape(71, 3)[:, :2]
                        .astype(np.float64) - 0.5)
        edge = ir[1:]
        pairs = ((edge[0], edge[2]), (edge[1], edge[3]))
        horiz = max(pairs, key=lambda p: abs(np.dot(p[1] - p[0], axes[k])))
        model_d = float(np.hypot(*(horiz[1] - horiz[0])))
        limbus = fit_limbus(rgb, ir[0], model_d / 2, axes[k])
        eyes.append({"center": np.array(limbus.center) if limbus else ir[0], "edge": edge,
                     "contour": contour, "model_diameter_px": model_d,
                     "diameter_px": limbus.diameter_px if limbus else model_d})
    return eyes
