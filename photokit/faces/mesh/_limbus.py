"""The iris's visible diameter measured on the photo: a sub-pixel fit of the limbus.

MediaPipe Iris's four edge points sit inside the visible limbus on some eyes (up to
15 % of the diameter on the zoom recaptures, docs/FACE.md), and their error changes
with the eye's size in pixels. The limbus itself is the sharpest long edge of the eye:
dark iris to bright sclera. It is found on radial intensity profiles from the iris
centre in the two sectors beside the iris, ``+/-35`` degrees around the eye's axis,
where the lids rarely cover it; the two sides' median radii give the diameter.

References
----------
J. Daugman, "How iris recognition works", IEEE Trans. Circuits Syst. Video Technol.
14(1):21-30 (2004). doi:10.1109/TCSVT.2003.818350 (the limbus as the maximum of the
radial derivative of the intensity)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Half-angle (degrees) of the two sectors beside the iris that are searched.
HALF_ANGLE = 35.0
#: Profiles per sector.
N_PROFILES = 15
#: The edge is searched between these multiples of the guessed radius.
SEARCH = (0.7, 1.4)
#: Radial sampling step (px).
STEP = 0.25
#: Fewest edge points kept per sector for a fit.
MIN_POINTS = 5


@dataclass(frozen=True)
class Limbus:
    """A measured limbus in image pixels.

    Attributes
    ----------
    center : (float, float)
        Iris centre ``(x, y)``, midway between the two limbus edges along the eye axis.
    diameter_px : float
        Horizontal visible iris diameter.
    sd_px : float
        Standard error of the diameter from the edge points' scatter (`fit_limbus`).
    points : ndarray, (n, 2)
        The edge points kept by the fit.
    """

    center: tuple[float, float]
    diameter_px: float
    sd_px: float
    points: np.ndarray


def edge_points(gray: np.ndarray, center, radius: float, axis) -> np.ndarray:
    """Limbus edge points (n, 2) on radial profiles around `center`.

    Profiles leave the centre at angles ``-HALF_ANGLE..HALF_ANGLE`` about `axis` (the
    eye's corner-to-corner direction) and about its opposite, sampled every `STEP` px
    (bilinear) out to ``1.6 radius``, smoothed along the ray with a Gaussian of
    ``max(0.75, 0.04 radius)`` px. On each, the edge is the largest rise of intensity
    (dark iris to bright sclera) between ``0.7`` and ``1.4 radius``, refined to sub-sample
    precision by a parabola through the derivative's three samples around it.
    """
    g = np.asarray(gray, np.float32)
    c = np.asarray(center, np.float64)
    ax = np.asarray(axis, np.float64)
    ax = ax / max(np.hypot(*ax), 1e-12)
    perp = np.array([-ax[1], ax[0]])
    r = np.arange(0.5 * radius, 1.6 * radius, STEP)
    inside = (r >= SEARCH[0] * radius) & (r <= SEARCH[1] * radius)
    sigma = max(0.75, 0.04 * radius) / STEP
    ang = np.radians(np.linspace(-HALF_ANGLE, HALF_ANGLE, N_PROFILES))
    dirs = np.concatenate([np.cos(ang)[:, None] * ax + np.sin(ang)[:, None] * perp,
                           -np.cos(ang)[:, None] * ax + np.sin(ang)[:, None] * perp])
    xy = c + r[None, :, None] * dirs[:, None, :]                      # (profiles, samples, 2)
    prof = cv2.remap(g, xy[..., 0].astype(np.float32), xy[..., 1].astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    prof = cv2.GaussianBlur(prof, (0, 0), sigmaX=sigma, sigmaY=1e-3)
    deriv = np.gradient(prof, axis=1)
    idx = np.flatnonzero(inside)
    best = idx[np.argmax(deriv[:, idx], axis=1)]
    rows = np.arange(len(dirs))
    lo, mid, hi = deriv[rows, best - 1], deriv[rows, best], deriv[rows, best + 1]
    den = lo - 2 * mid + hi
    off = np.where(den < 0, 0.5 * (lo - hi) / np.where(den < 0, den, -1.0), 0.0)
    rad = r[best] + np.clip(off, -1.0, 1.0) * STEP
    keep = mid > 0
    return (c + rad[:, None] * dirs)[keep]


def fit_limbus(rgb: np.ndarray, center, radius: float, axis) -> Limbus | None:
    """Fit the limbus of the iris near `center` (guessed `radius`, eye axis `axis`).

    With the edge points of `edge_points` (on the photo's luma, Rec. 601) at radii
    ``r_i`` from `center`, the horizontal visible diameter is
    ``d = median(r | axis side) + median(r | opposite side)``: a centre misplaced along
    the axis cancels in the sum, one misplaced across it changes each ``r_i`` by about
    ``-delta sin(theta_i)``, which cancels in the median of the symmetric fan; the
    medians ignore the few profiles ending on an eyelid or a reflection (a free circle
    fit on two +/-35 degree arcs does not: its curvature follows them). The centre is
    moved along the axis to the middle of the two edges and the search repeated once
    around the first estimate (so the result depends little on the guess).

    The standard error is ``sqrt(s_1^2 / n_1 + s_2^2 / n_2)`` (``s = 1.4826 MAD`` of
    each side's radii, ``n`` their counts), times ``pi / 2`` for the median.

    Returns
    -------
    Limbus or None
        None when fewer than `MIN_POINTS` edges are found on either side, or the
        diameter leaves the searched band (no limbus found).
    """
    ax = np.asarray(axis, np.float64)
    ax = ax / max(np.hypot(*ax), 1e-12)
    c, r = np.asarray(center, np.float64), float(radius)
    for _ in range(2):                       # the guess, then the search band re-centred
        found = _sides(rgb, c, r, ax)
        if found is None:
            return None
        med, halves, pts = found
        c, r = c + ax * (med[0] - med[1]) / 2, (med[0] + med[1]) / 2
    var = sum((1.4826 * np.median(np.abs(v - m))) ** 2 / len(v) for v, m in zip(halves, med, strict=True))
    return Limbus(center=(float(c[0]), float(c[1])), diameter_px=2 * r,
                  sd_px=float(np.pi / 2 * np.sqrt(var)), points=pts)


def _sides(rgb: np.ndarray, c: np.ndarray, radius: float, ax: np.ndarray):
    """The two sides' median edge radii about `c`, their radii and the edge points, or
    None (too few edges, or a diameter outside the searched band)."""
    half = int(np.ceil(1.7 * radius)) + 2
    h, w = rgb.shape[:2]
    x0, y0 = max(0, int(c[0]) - half), max(0, int(c[1]) - half)
    x1, y1 = min(w, int(c[0]) + half + 1), min(h, int(c[1]) + half + 1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    gray = rgb[y0:y1, x0:x1].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    pts = edge_points(gray, c - [x0, y0], radius, ax) + [x0, y0]
    rad = np.hypot(*(pts - c).T)
    side = (pts - c) @ ax > 0
    halves = [rad[side], rad[~side]]
    if min(len(v) for v in halves) < MIN_POINTS:
        return None
    med = [float(np.median(v)) for v in halves]
    if not 2 * SEARCH[0] * radius < med[0] + med[1] < 2 * SEARCH[1] * radius:
        return None
    return med, halves, pts
