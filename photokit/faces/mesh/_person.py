"""Where the person is: MediaPipe Selfie Segmentation run by OpenCV.

References
----------
MediaPipe Selfie Segmentation model card (Google, 2021): a 256 x 256 general model
segmenting the people in a photo from the background; Apache-2.0 (``models/NOTICE``).
"""

from __future__ import annotations

import cv2
import numpy as np

from . import _models
from ._crop import to_unit

#: Input side of the segmentation model.
PERSON_SIDE = 256


def person_probability(rgb: np.ndarray, shape) -> np.ndarray:
    """Probability (0..1, float32) that each pixel shows a person, on a `shape` grid.

    The whole photo is squeezed to 256 x 256 (strided when more than twice as large,
    then area-averaged: a 12 MP photo is read at one pixel in 7 and never touched as a
    whole), segmented, and the model's 256 x 256 map is resized bilinearly to
    `shape[:2]` (the photo's own grid or any smaller copy of it).
    """
    rgb = np.asarray(rgb)
    h, w = rgb.shape[:2]
    k = max(1, min(h, w) // (2 * PERSON_SIDE))
    small = cv2.resize(np.ascontiguousarray(rgb[::k, ::k]), (PERSON_SIDE, PERSON_SIDE),
                       interpolation=cv2.INTER_AREA)
    out = _models.run(_models.SELFIE, to_unit(small)[None])["activation_10"]
    prob = out.reshape(PERSON_SIDE, PERSON_SIDE).astype(np.float32)
    return cv2.resize(prob, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)
