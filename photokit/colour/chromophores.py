"""Chromophore separation: shading-free melanin and haemoglobin maps in optical density.

Skin colour in optical density ``OD = -ln(linear RGB)`` is close to a sum of a melanin
vector, a haemoglobin vector and grey shading (Tsumura et al. 1999, 2003). Removing the
shading component and solving for the two chromophores gives maps of haemoglobin
(redness) and melanin (pigment) that are unaffected by surface shading (furrows, pores,
lighting gradients), which plain indices are not.

References
----------
N. Tsumura, H. Haneishi, Y. Miyake, "Independent-component analysis of skin color
image", J. Opt. Soc. Am. A 16(9), 2169-2176 (1999). doi:10.1364/JOSAA.16.002169
N. Tsumura et al., "Image-based skin color and texture analysis/synthesis by extracting
hemoglobin and melanin information in the skin", ACM Trans. Graph. 22(3), 770-779
(2003). doi:10.1145/882262.882344
S. L. Jacques, "Optical properties of biological tissues: a review", Phys. Med. Biol.
58(11), R37-R61 (2013). doi:10.1088/0031-9155/58/11/R37
"""

from __future__ import annotations

import cv2
import numpy as np

#: Absorption directions in OD (linear R, G, B): melanin rises towards blue
#: (lambda^-3.3 band averages), haemoglobin absorbs green and blue far above red
#: (Jacques 2013).
V_MELANIN = np.array([1.00, 1.30, 1.70], np.float32)
V_HAEMOGLOBIN = np.array([0.12, 1.00, 0.72], np.float32)


def unmixing_matrix(v_mel=V_MELANIN, v_hb=V_HAEMOGLOBIN) -> np.ndarray:
    """2 x 3 matrix from OD ``-ln(RGB)`` to shading-free melanin and haemoglobin maps.

    Solves ``OD = c_m v_m + c_h v_h + s (1, 1, 1)`` per pixel (grey shading ``s``
    removed, as Tsumura et al. 2003) and scales the result to index units: melanin as
    the MI change ``100 log10(1/R)`` that ``c_m`` alone would cause, haemoglobin as the
    EI change ``100 log10(R/G)`` that ``c_h`` alone would cause. Constant offsets (the
    chromophore-free baseline) remain; they cancel against the local background.
    """
    v_mel = np.asarray(v_mel, np.float64)
    v_hb = np.asarray(v_hb, np.float64)
    A = np.stack([v_mel, v_hb, np.ones(3)], axis=1)
    inv = np.linalg.inv(A)[:2]
    k = 100.0 / np.log(10.0)
    scale = np.array([[k * v_mel[0]], [k * (v_hb[1] - v_hb[0])]])
    return (inv * scale).astype(np.float32)


def chromophore_maps(linear: np.ndarray, matrix: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(melanin, haemoglobin) maps in MI / EI units of linear RGB (see `unmixing_matrix`)."""
    lin = np.maximum(np.ascontiguousarray(linear, dtype=np.float32), np.float32(1e-4))
    shape = lin.shape[:-1]
    od = cv2.log(lin.reshape(-1, 1, 3))
    M = -(unmixing_matrix() if matrix is None else np.asarray(matrix, np.float32))
    out = cv2.transform(od, M)
    return out[..., 0].reshape(shape), out[..., 1].reshape(shape)
