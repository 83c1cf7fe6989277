"""``find_faces``: detection, mesh, iris, pose and zone visibility on one photo."""

from __future__ import annotations

import numpy as np

from ._detect import detect
from ._geometry import pose, visibility
from ._landmarks import iris, mesh, mesh_near
from ._result import FaceMesh, Iris
from ._scale import FaceScale, face_scale

#: Eye lids (upper, lower) and corners (outer, inner) on the mesh: subject's left, right.
EYE_LIDS = (((386, 374), (263, 362)), ((159, 145), (33, 133)))


def eye_opening(xyz: np.ndarray) -> tuple[float, float]:
    """Lid gap over corner distance, subject's left eye then right (about 0.3 open, < 0.1 shut)."""
    out = []
    for (up, lo), (a, b) in EYE_LIDS:
        gap = np.hypot(*(xyz[up, :2] - xyz[lo, :2]))
        out.append(float(gap / max(np.hypot(*(xyz[a, :2] - xyz[b, :2])), 1e-9)))
    return out[0], out[1]


def find_faces(rgb: np.ndarray, *, max_faces: int | None = None, proposals=None,
               fallbacks: bool = True) -> list[FaceMesh]:
    """Every face in an RGB photo, meshed, largest first.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3) uint8 or uint16
        The photo, RGB.
    max_faces : int, optional
        Stop after this many faces.
    proposals : callable, optional
        ``proposals() -> [(x, y, w, h), ...]``: face boxes to re-detect around when the
        whole-photo pass finds none (default: the frontal Haar cascade's faces); a caller
        that runs the cascade anyway passes its faces, so it runs once.
    fallbacks : bool
        Search for faces smaller than about 1/8 of the frame (proposals, then tiles) when
        the whole-photo pass finds none; a caller whose known scale rules such faces out
        passes False.

    Returns
    -------
    list of FaceMesh
        Empty when there is no face.

    Notes
    -----
    Detection (BlazeFace short range, `detect`) runs on a 128 px copy; each face is then
    meshed on 192 px crops warped straight from the full-resolution photo (a crop from
    the detection, levelled on its eye keypoints, then one from the mesh itself), its
    irises on 64 px eye crops (each iris's horizontal diameter then measured on the
    photo's limbus, `photokit.faces.mesh.fit_limbus`), and its pose and zone visibility
    from the 3D mesh.
    """
    rgb = _rgb(rgb, "find_faces")
    faces: list[FaceMesh] = []
    for det in detect(rgb, proposals=proposals, fallbacks=fallbacks):
        if max_faces is not None and len(faces) >= max_faces:
            break
        xyz, score = mesh(rgb, det.keypoints, det.box)
        if xyz is None:
            continue
        centre = (xyz[:, :2].min(0) + xyz[:, :2].max(0)) / 2
        if any(np.all(centre >= f.box[:2]) and np.all(centre <= f.box[2:]) for f in faces):
            continue                                 # the same face found twice
        faces.append(_face(rgb, xyz, score, det.source))
    faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return faces


def face_near(rgb: np.ndarray, guess: np.ndarray) -> FaceMesh | None:
    """The face meshed where the mesh points `guess` (``(468, 2+)`` image pixels) put
    one, without a detection (`photokit.faces.mesh._landmarks.mesh_near`; ``detector``
    ``"carried"``): e.g. another photo's mesh carried over by an alignment, where the
    detector missed the face. None when the mesh's presence score says there is none.
    """
    rgb = _rgb(rgb, "face_near")
    xyz, score = mesh_near(rgb, guess)
    return None if xyz is None else _face(rgb, xyz, score, "carried")


def _rgb(rgb, caller: str) -> np.ndarray:
    """`rgb` as an array, checked to be an RGB uint8/uint16 (H, W, 3) photo."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{caller} wants an RGB uint8/uint16 (H, W, 3) array, not {rgb.dtype} {rgb.shape}")
    return rgb


def _face(rgb: np.ndarray, xyz: np.ndarray, score: float, source: str) -> FaceMesh:
    """A `FaceMesh` from a mesh: its box, irises, pose, zone visibility and eyes."""
    lo, hi = xyz[:, :2].min(0), xyz[:, :2].max(0)
    right, left = iris(rgb, xyz)
    yaw, pitch, roll = pose(xyz)
    return FaceMesh(
        box=(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), score=score, landmarks=xyz,
        iris_left=Iris(tuple(float(v) for v in left["center"]), left["diameter_px"],
                       left["model_diameter_px"]),
        iris_right=Iris(tuple(float(v) for v in right["center"]), right["diameter_px"],
                        right["model_diameter_px"]),
        yaw=yaw, pitch=pitch, roll=roll, visible=visibility(xyz), eye_opening=eye_opening(xyz),
        detector=source)


def faces_document(faces: list[FaceMesh], *, image: str | None = None,
                   scale: FaceScale | None = None) -> dict:
    """The SPEC "Faces" JSON document of a photo (``face --json``)."""
    scale = face_scale(faces) if scale is None else scale
    return {"image": image, "mm_per_px": scale.mm_per_px, "scale_source": scale.source,
            "faces": [f.to_dict() for f in faces]}
