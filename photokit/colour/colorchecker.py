"""ColorChecker Classic (24 patches): published reference colours and layout.

Reference values are X-Rite's CIELAB (D50, 2 degree observer) for cards made after
November 2014, as distributed with colour-science (``ColorChecker24 - After November
2014``). `REFERENCE_LINEAR_SRGB` adapts them to D65 with the Bradford transform and
expresses them in linear sRGB, the space photokit calibrates into.

References
----------
X-Rite, "ColorChecker Classic: new formulation" (2014); D. Pascale, "RGB coordinates of
the Macbeth ColorChecker", BabelColor (2006).
"""

from __future__ import annotations

import numpy as np

#: Patch names in reading order (row-major, dark skin top-left, black bottom-right).
PATCH_NAMES = (
    "dark skin", "light skin", "blue sky", "foliage", "blue flower", "bluish green",
    "orange", "purplish blue", "moderate red", "purple", "yellow green", "orange yellow",
    "blue", "green", "red", "yellow", "magenta", "cyan",
    "white 9.5", "neutral 8", "neutral 6.5", "neutral 5", "neutral 3.5", "black 2",
)

#: Rows x columns of the card in its normal (landscape) orientation.
LAYOUT = (4, 6)

#: Indices of the neutral (grey) row, white to black.
NEUTRAL_ROW = tuple(range(18, 24))

#: CIELAB D50 of each patch (X-Rite, after November 2014).
REFERENCE_LAB_D50 = np.array([
    [37.54, 14.37, 14.92], [64.66, 19.27, 17.50], [49.32, -3.82, -22.54],
    [43.46, -12.74, 22.72], [54.94, 9.61, -24.79], [70.48, -32.26, -0.37],
    [62.73, 35.83, 56.50], [39.43, 10.75, -45.17], [50.57, 48.64, 16.67],
    [30.10, 22.54, -20.87], [71.77, -24.13, 58.19], [71.51, 18.24, 67.37],
    [28.37, 15.42, -49.80], [54.38, -39.72, 32.27], [42.43, 51.05, 28.62],
    [81.80, 2.67, 80.41], [50.63, 51.28, -14.12], [49.57, -29.71, -28.32],
    [95.19, -1.03, 2.93], [81.29, -0.57, 0.44], [66.89, -0.75, -0.06],
    [50.76, -0.13, 0.14], [35.63, -0.46, -0.48], [20.64, 0.07, -0.46],
])

_D50 = np.array([0.96422, 1.0, 0.82521])
_D65 = np.array([0.95047, 1.0, 1.08883])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                      [-0.7502, 1.7135, 0.0367],
                      [0.0389, -0.0685, 1.0296]])


def lab_to_xyz(lab: np.ndarray, white: np.ndarray) -> np.ndarray:
    """CIE 1976 L*a*b* to XYZ (Y of the white = 1), CIE 15:2004."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    fx = fy + lab[..., 1] / 500
    fz = fy - lab[..., 2] / 200
    eps, kappa = 216 / 24389, 24389 / 27
    def finv(f):
        return np.where(f ** 3 > eps, f ** 3, (116 * f - 16) / kappa)
    return np.stack([finv(fx), finv(fy), finv(fz)], axis=-1) * white


def bradford(src_white: np.ndarray, dst_white: np.ndarray) -> np.ndarray:
    """3x3 Bradford chromatic adaptation matrix from one white point to another (XYZ)."""
    s = _BRADFORD @ src_white
    d = _BRADFORD @ dst_white
    return np.linalg.inv(_BRADFORD) @ np.diag(d / s) @ _BRADFORD


def _reference_linear_srgb() -> np.ndarray:
    from .convert import SRGB_TO_XYZ

    xyz65 = lab_to_xyz(REFERENCE_LAB_D50, _D50) @ bradford(_D50, _D65).T
    return xyz65 @ np.linalg.inv(SRGB_TO_XYZ).T


#: Linear sRGB (D65) of each patch (may fall slightly outside [0, 1] for cyan).
REFERENCE_LINEAR_SRGB = _reference_linear_srgb()

def _reference_lab_d65() -> np.ndarray:
    from .convert import linear_to_lab

    return linear_to_lab(REFERENCE_LINEAR_SRGB.astype(np.float32)[None])[0].astype(np.float64)


#: CIELAB D65 of each patch (the reference for dE2000 after calibration into sRGB).
REFERENCE_LAB_D65 = _reference_lab_d65()
