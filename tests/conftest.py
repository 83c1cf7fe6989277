"""Shared fixtures: small images made here, never downloaded, never from ../shared."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real colour portrait (public domain, ships with scikit-image), 512x512 RGB uint8."""
    return skimage.data.astronaut()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


#: MediaPipe Face Mesh indices outlining the eyes and the lips (face_mesh_connections.py
#: of the mediapipe wheel, Apache-2.0): features that are never skin.
MESH_EYE_LEFT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
MESH_EYE_RIGHT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
MESH_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)


def mesh_features(rgb: np.ndarray) -> np.ndarray:
    """The eyes and lips of the largest face in `rgb`, filled from its mesh and eroded by
    2 px (rasterisations of one outline differ by a pixel at its edge)."""
    import cv2

    from photokit.faces.mesh import find_faces

    face = find_faces(rgb)[0]
    out = np.zeros(rgb.shape[:2], np.uint8)
    for idx in (MESH_EYE_LEFT, MESH_EYE_RIGHT, MESH_LIPS):
        cv2.fillPoly(out, [np.round(face.landmarks[list(idx), :2]).astype(np.int32)], 1)
    return cv2.erode(out, np.ones((5, 5), np.uint8)).astype(bool)
