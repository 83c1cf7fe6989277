"""Result types of the face pipeline and their JSON form (SPEC "Faces")."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._geometry import zone_masks, zone_polygons, zone_windows
from ._topology import ZONE_NAMES


def _r(x, nd: int = 2):
    return np.round(np.asarray(x, dtype=np.float64), nd).tolist()


@dataclass(frozen=True)
class Iris:
    """One iris in full-resolution pixels.

    Attributes
    ----------
    center : (float, float)
        Iris centre ``(x, y)``.
    diameter_px : float
        Horizontal visible iris diameter: the limbus measured on the photo (see
        `photokit.faces.mesh.find_faces`), or the model's when no limbus was found.
    model_diameter_px : float or None
        MediaPipe Iris's own estimate (between its two edge points along the eye's axis),
        kept for comparison.
    """

    center: tuple[float, float]
    diameter_px: float
    model_diameter_px: float | None = None

    def to_dict(self) -> dict:
        return {"center": _r(self.center), "diameter_px": round(float(self.diameter_px), 2)}


def inter_pupil_px(face) -> float:
    """Distance between a face's two iris centres, in the photo's pixels (the projected
    inter-pupil distance: a turned head shortens it by about cos(yaw))."""
    return float(np.hypot(*np.subtract(face.iris_left.center, face.iris_right.center)))


@dataclass(frozen=True, eq=False)
class FaceMesh:
    """A meshed face.

    Attributes
    ----------
    box : (float, float, float, float)
        ``x0, y0, x1, y1``: the mesh's extent in image pixels.
    score : float
        Face-presence probability from the mesh model (0..1).
    landmarks : ndarray, (468, 3)
        MediaPipe Face Mesh points ``(x, y, z)`` in image pixels; z is relative depth
        (smaller = nearer the camera) on the same scale as x.
    iris_left, iris_right : Iris
        The subject's own left and right irises.
    yaw, pitch, roll : float
        Head pose in degrees (see `pose`): yaw positive when the subject turns to their
        own left, pitch positive looking up, roll positive counter-clockwise in the image.
    visible : dict of str to float
        Per zone, the share of its skin that faces the camera (0..1).
    eye_opening : (float, float)
        Lid gap over corner distance, subject's left then right eye.
    detector : str
        How the face was found: ``whole``, ``haar`` or ``tile`` (`find_faces`), ``carried``
        (`face_near`: where another photo's mesh, carried over, put it).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    iris_left: Iris
    iris_right: Iris
    yaw: float
    pitch: float
    roll: float
    visible: dict = field(default_factory=dict)
    eye_opening: tuple[float, float] = (1.0, 1.0)
    detector: str = "whole"

    def zone_polygons(self) -> dict[str, np.ndarray]:
        """Zone outlines, ``name -> (N, 2)`` image pixels (holes joined by a bridge)."""
        return zone_polygons(self.landmarks)

    def zone_masks(self, shape) -> dict[str, np.ndarray]:
        """Zones rasterised from their mesh triangles, ``name -> bool (H, W)``."""
        return zone_masks(self.landmarks, shape)

    def zone_windows(self, shape) -> dict[str, tuple[np.ndarray, int, int]]:
        """Zones rasterised within their own bounding boxes, ``name -> (bool window, r0,
        c0)`` (`photokit.faces.mesh._geometry.zone_windows`: the pixels of `zone_masks`)."""
        return zone_windows(self.landmarks, shape)

    def to_dict(self) -> dict:
        """The face's entry of SPEC's ``faces`` list."""
        polys = self.zone_polygons()
        return {"box": _r(self.box, 1), "score": round(float(self.score), 4),
                "landmarks": _r(self.landmarks),
                "iris": {"left": self.iris_left.to_dict(), "right": self.iris_right.to_dict()},
                "pose": {"yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2),
                         "roll": round(self.roll, 2)},
                "zones": {z: {"visible": round(self.visible[z], 3), "polygon": _r(polys[z], 1)}
                          for z in ZONE_NAMES}}
