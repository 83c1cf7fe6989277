"""Skin mask: which pixels are skin (first version; refined by the colour work).

A fixed YCrCb chromaticity box (Chai and Ngan 1999) at 640 px, minus clipped pixels,
cleaned with a morphological opening and closing, then upsampled.

References
----------
D. Chai, K. N. Ngan, "Face segmentation using skin-color map in videophone
applications", IEEE TCSVT 9(4), 551-564 (1999). doi:10.1109/76.767122
"""

from __future__ import annotations

import cv2
import numpy as np

_WORK_SIDE = 640


def skin_mask(rgb8: np.ndarray, *, faces=None, exclude: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of skin pixels, full resolution.

    Parameters
    ----------
    rgb8 : ndarray, uint8, (H, W, 3)
    faces : list of photokit.face.Face, optional
        Unused by this first version.
    exclude : ndarray of bool, optional
        Pixels never to count as skin (a colour card, transparent pixels).
    """
    h, w = rgb8.shape[:2]
    s = min(1.0, _WORK_SIDE / max(h, w))
    small = cv2.resize(rgb8, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else rgb8
    ycc = cv2.cvtColor(small, cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    m = (cr >= 133) & (cr <= 180) & (cb >= 77) & (cb <= 127)
    m &= (small < 250).all(axis=2) & (small.max(axis=2) > 20)
    k = np.ones((5, 5), np.uint8)
    m8 = cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_OPEN, k)
    m8 = cv2.morphologyEx(m8, cv2.MORPH_CLOSE, k)
    out = cv2.resize(m8, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    if exclude is not None:
        out &= ~exclude
    return out
