"""ColorChecker 24 in frame: find it, read its patches, fit a colour correction.

Detection (`find_card`)
-----------------------
1. On a copy of at most `DETECT_SIDE` px, the brightest channel is normalised to its
   99.5th percentile and square-rooted (cards photographed in linear sensor values are
   very dark), then adaptively thresholded at two block sizes and edge-mapped; the
   closed contours that are convex quadrilaterals, near-square (sides within 35%) and
   fill their rotated box are patch candidates.
2. Candidates of one size are kept (each peak of the log-size histogram is tried, most
   populated first, as skin pores can outnumber the patches); the patch pitch and
   the grid direction come from nearest neighbours. Candidates get integer lattice
   coordinates, and a RANSAC homography maps the lattice onto the image.
3. Every placement of a 6x4 (or 4x6) card window that covers the detected patches, in
   each of the four orientations, predicts the 24 patch centres. A placement is
   rejected if any patch falls outside the image (a card half out of frame is not
   "found"); the rest are scored by the colour correction they allow: the neutral row
   must fall monotonically in lightness, and the best placement must reach a mean
   residual dE2000 below `ACCEPT_DELTA_E`.

Fit (`fit_card`)
----------------
The fit works on the photo's code values (pixel / 255), and the card tells the tone
response: a power law ``t_c = a_c v_c^g_c`` per channel is fitted (log-log least
squares) from the six neutral patches to their reference linear values, so neither
linear sensor data (g ~ 1) nor sRGB-encoded data (g ~ 2.2) is assumed: on the real
ColorChecker photos of the benchmark, which hold linear sensor values, assuming sRGB
encoding costs about 1 dE2000. Each neutral is weighted by its precision: a patch mean
is known to about `PATCH_NOISE_CODE` in code value (8-bit quantisation and JPEG's
YCbCr rounding in flat, noiseless patches), so ``sd(log v) = sigma / v`` and the
log-log fit weights each point by ``v / sigma`` (the black patch counts, but little).

A root-polynomial regression of degree 2 (``r, g, b, sqrt(rg), sqrt(gb), sqrt(rb)``;
Finlayson et al. 2015, exposure-invariant) then maps the linearised patches to the
reference linear sRGB of `photokit.colour.colorchecker` (``model="linear"`` gives a plain
3x3). Its matrix ``M`` is first the linear least-squares solution, then refined
(``objective="de2000"``) to minimise the *mean* CIEDE2000 of the patches,
the figure that is reported: Gauss-Newton on the Lab residual mapped by the
CIEDE2000 formula linearised at each reference colour, ``e_i = ||W_i dLab_i||``, which
equals dE2000 to first order (``dL/S_L``, ``dC'/S_C``, ``dH'/S_H`` and the rotation
term ``R_T``; Sharma et al. 2005), inside iteratively reweighted least squares
with weights ``1 / max(e_i, 0.5)`` so that ``sum e_i`` (not ``sum e_i^2``) is
minimised. Least squares in linear RGB favours the bright patches, where a given RGB
error costs few dE, and the quadratic loss lets a few imprecise dark patches (blue
codes of 2-8 under a warm light) pull the whole matrix. But a perceptual fit also
listens to those patches more: on a simulated warm, dim camera with 0.6 code of noise
it lowered the in-sample error and raised the held-out one. So the default
(``objective="auto"``) fits both and keeps the one with the lower leave-one-out mean
dE2000 (`leave_one_out`: fit on 23 patches, score the held-out one), a cross-validated
choice; ``delta_e_loo`` reports that held-out error (on the benchmark's real photos the
refit is kept in 7 of 8 photo x model cases; it costs ~0.2 s per card). The residual
is the exact CIEDE2000 of the 24 corrected patches against the reference
(`delta_e_mean`), clipped patches included.

References
----------
G. D. Finlayson, M. Mackiewicz, A. Hurlbert, "Color correction using root-polynomial
regression", IEEE Trans. Image Process. 24(5), 1460-1470 (2015).
doi:10.1109/TIP.2015.2405336 (tone linearisation before a linear fit)
G. Sharma, W. Wu, E. N. Dalal, "The CIEDE2000 color-difference formula", Color Res.
Appl. 30(1), 21-30 (2005). doi:10.1002/col.20070
P. W. Holland, R. E. Welsch, "Robust regression using iteratively reweighted
least-squares", Commun. Stat. Theory Methods 6(9), 813-827 (1977).
doi:10.1080/03610927708827533
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000

from ..imaging.filters import channel_max, percentile_u8, shrink
from .colorchecker import LAYOUT, NEUTRAL_ROW, REFERENCE_LINEAR_SRGB
from .convert import SRGB_TO_XYZ, linear_to_lab

DETECT_SIDE = 1000
#: Mean residual dE2000 above which a grid is not accepted as a ColorChecker.
ACCEPT_DELTA_E = 8.0
#: Fewest detected patches on a consistent grid.
MIN_PATCHES = 8
#: Fraction of the patch side sampled around each centre.
SAMPLE_FRACTION = 0.45
#: Code value (0-1) from which a patch counts as clipped and is left out of the fit (it
#: stays in the reported residual).
CLIP_CODE = 0.975
#: Uncertainty (fraction of full scale) of a patch's mean code value: 8-bit quantisation
#: and JPEG's YCbCr rounding, which flat, noiseless patches do not average out (blue =
#: Y + 1.772 (Cb - 128) is off by up to 0.9 code). Sets the tone fit's weights.
PATCH_NOISE_CODE = 0.5 / 255
#: Objectives of the colour-matrix fit (see the module notes).
OBJECTIVES = ("auto", "de2000", "rgb")
_IRLS_ROUNDS = 6
_IRLS_FLOOR = 0.5  # dE below which a patch's IRLS weight stops growing


def _terms(t: np.ndarray, model: str) -> np.ndarray:
    """Regression terms of linearised RGB rows (N, 3): the values, plus root products."""
    if model == "linear":
        return t
    r, g, b = t[:, 0], t[:, 1], t[:, 2]
    return np.stack([r, g, b, np.sqrt(r * g), np.sqrt(g * b), np.sqrt(r * b)], axis=1)


@dataclass
class ColourCorrection:
    """Per-channel tone curve ``a v^g`` on code values, then a (root-)polynomial matrix."""

    gain: np.ndarray        # (3,)
    gamma: np.ndarray       # (3,)
    matrix: np.ndarray      # (k, 3): corrected = terms(toned) @ matrix
    model: str              # "rootpoly" | "linear"
    delta_e: np.ndarray     # (24,) residual CIEDE2000 of the card patches
    objective: str = "rgb"  # "de2000" | "rgb": how the matrix was fitted
    delta_e_loo: np.ndarray | None = None  # (24,) held-out CIEDE2000 (`leave_one_out`)
    linear_loo: np.ndarray | None = None   # (24, 3) each patch corrected by the fit without it

    @property
    def delta_e_loo_mean(self) -> float | None:
        """Mean leave-one-out CIEDE2000: the error to expect off the card (None if not run)."""
        return None if self.delta_e_loo is None else float(np.mean(self.delta_e_loo))

    @property
    def delta_e_mean(self) -> float:
        return float(np.mean(self.delta_e))

    def tone_lut(self) -> np.ndarray:
        """(1, 256, 3) float32 table: 8-bit code value -> linearised value per channel."""
        v = np.arange(256, dtype=np.float64) / 255.0
        lut = np.stack([self.gain[c] * np.power(np.maximum(v, 1e-6), self.gamma[c]) for c in range(3)], -1)
        lut[0] = 0.0
        return lut[None].astype(np.float32)

    def apply_codes(self, codes: np.ndarray, *, block_rows: int = 128) -> np.ndarray:
        """Correct code values: uint8 pixels, or float in [0, 1] (e.g. 16-bit / 65535).

        Works in blocks of `block_rows` rows (cache-sized: ~10x faster than one pass over
        a 12 MP photo); the root terms use ``sqrt(rg) = sqrt(r) sqrt(g)`` with a second
        look-up table on the 8-bit path.
        """
        arr = np.asarray(codes)
        shape = arr.shape[:-1] + (3,)
        img = arr.reshape(-1, 1, 3) if arr.ndim != 3 else arr
        h, w = img.shape[:2]
        m = self.matrix.astype(np.float32)
        m_lin = np.ascontiguousarray(m[:3].T)
        m_root = np.ascontiguousarray(m[3:].T) if self.model != "linear" else None
        gain, gamma = self.gain.astype(np.float32), self.gamma.astype(np.float32)
        lut = self.tone_lut() if img.dtype == np.uint8 else None
        slut = np.sqrt(lut) if lut is not None else None
        out = np.empty((h, w, 3), np.float32)
        for y in range(0, h, block_rows):
            a = np.ascontiguousarray(img[y: y + block_rows])
            if lut is not None:
                toned = cv2.LUT(a, lut)
                root = cv2.LUT(a, slut) if m_root is not None else None
            else:
                toned = gain * np.power(np.maximum(a.astype(np.float32), np.float32(1e-6)), gamma)
                root = np.sqrt(toned) if m_root is not None else None
            o = cv2.transform(toned, m_lin)
            if m_root is not None:  # terms sqrt(rg), sqrt(gb), sqrt(rb) = s * s[[g, b, r]]
                o += cv2.transform(root * root[..., [1, 2, 0]], m_root)
            out[y: y + block_rows] = o
        return np.maximum(out, 0, out=out).reshape(shape)

    def to_dict(self) -> dict:
        return {"model": self.model, "gain": self.gain.round(5).tolist(),
                "gamma": self.gamma.round(4).tolist(), "matrix": self.matrix.round(5).tolist(),
                "objective": self.objective,
                "delta_e_mean": round(self.delta_e_mean, 3),
                "delta_e_max": round(float(np.max(self.delta_e)), 3),
                "delta_e_loo_mean": (None if self.delta_e_loo is None
                                     else round(self.delta_e_loo_mean, 3))}


def _fit_tone(obs: np.ndarray, ref: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel power law ``t = a v^g`` from the neutral row, precision-weighted.

    Weighted least squares of ``log t_ref`` on ``log v`` with weights ``v / sigma``
    (``sd(log v) = sigma / v`` for a code-value noise `PATCH_NOISE_CODE`).
    """
    neutral = [i for i in NEUTRAL_ROW if ok[i]]
    if len(neutral) < 3:
        neutral = list(NEUTRAL_ROW)
    y = np.log(np.maximum(ref[neutral].mean(axis=1), 1e-6))[:, None]  # neutral: R = G = B
    v = obs[neutral]
    x, w2 = np.log(v), (v / PATCH_NOISE_CODE) ** 2  # inverse variances of log v
    xm = np.sum(w2 * x, axis=0) / np.sum(w2, axis=0)
    ym = np.sum(w2 * y, axis=0) / np.sum(w2, axis=0)
    sxx = np.sum(w2 * (x - xm) ** 2, axis=0)
    g = np.sum(w2 * (x - xm) * (y - ym), axis=0) / np.maximum(sxx, 1e-300)
    gamma = np.clip(np.where(np.ptp(x, axis=0) > 1e-3, g, 1.0), 0.3, 3.5)
    return np.exp(ym - gamma * xm), gamma


_XYZN = np.asarray(SRGB_TO_XYZ, np.float64) / np.array([0.95047, 1.0, 1.08883])[:, None]
_D = 6.0 / 29.0
_LAB_K = np.array([[0.0, 116.0, 0.0], [500.0, -500.0, 0.0], [0.0, 200.0, -200.0]])


def _lab_and_jacobian(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CIELAB (D65) of linear sRGB rows (N, 3) and its Jacobian d Lab / d rgb (N, 3, 3).

    CIE 15:2004 with the linear segment below ``(6/29)^3`` (also used for negative
    values, so that the map is smooth where a fit passes through them).
    """
    xyz = rgb @ _XYZN.T
    low = xyz <= _D ** 3
    root = np.cbrt(np.maximum(xyz, _D ** 3))
    f = np.where(low, xyz / (3 * _D * _D) + 4.0 / 29.0, root)
    df = np.where(low, 1.0 / (3 * _D * _D), 1.0 / (3 * root * root))
    lab = f @ _LAB_K.T + np.array([-16.0, 0.0, 0.0])
    return lab, (_LAB_K[None] * df[:, None, :]) @ _XYZN[None]


def _de2000_scales(ref_lab: np.ndarray) -> np.ndarray:
    """(N, 3, 3) linear maps ``W`` with ``||W dLab|| = dE2000`` to first order at each
    reference colour (Sharma et al. 2005, eqs. 2-22, evaluated at the reference).

    ``a' = (1 + G) a``; ``dC' ~ (a' da' + b db) / C'``, ``dH' ~ (a' db - b da') / C'``;
    with ``u = dC'/S_C`` and ``v = dH'/S_H``, ``dE2000^2 = (dL/S_L)^2 + u^2 + v^2 +
    R_T u v = (dL/S_L)^2 + (u + R_T v / 2)^2 + (1 - R_T^2 / 4) v^2``.
    """
    L, a, b = ref_lab.T
    c7 = np.hypot(a, b) ** 7
    G = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0 ** 7)))
    a1 = (1 + G) * a
    C = np.hypot(a1, b)
    h = np.degrees(np.arctan2(b, a1)) % 360
    hr = np.radians(h)
    T = (1 - 0.17 * np.cos(hr - np.radians(30)) + 0.24 * np.cos(2 * hr)
         + 0.32 * np.cos(3 * hr + np.radians(6)) - 0.20 * np.cos(4 * hr - np.radians(63)))
    s_l = 1 + 0.015 * (L - 50) ** 2 / np.sqrt(20 + (L - 50) ** 2)
    s_c, s_h = 1 + 0.045 * C, 1 + 0.015 * C * T
    c7 = C ** 7
    r_t = -np.sin(np.radians(60 * np.exp(-(((h - 275) / 25) ** 2)))) * 2 * np.sqrt(c7 / (c7 + 25.0 ** 7))
    chromatic = C > 1e-6
    ca = np.where(chromatic, a1 / np.maximum(C, 1e-9), 1.0)  # hue direction (a grey: along a*)
    sa = np.where(chromatic, b / np.maximum(C, 1e-9), 0.0)
    u = np.stack([np.zeros_like(L), ca * (1 + G), sa], -1) / s_c[:, None]
    v = np.stack([np.zeros_like(L), -sa * (1 + G), ca], -1) / s_h[:, None]
    W = np.zeros((len(L), 3, 3))
    W[:, 0, 0] = 1 / s_l
    W[:, 1] = u + 0.5 * r_t[:, None] * v
    W[:, 2] = np.sqrt(np.maximum(1 - 0.25 * r_t ** 2, 0))[:, None] * v
    return W


def _weighted_lab_errors(terms, matrix, ref_lab, scales):
    lab, jac = _lab_and_jacobian(terms @ matrix)
    return np.einsum("nij,nj->ni", scales, lab - ref_lab), jac


def _refine_matrix(terms: np.ndarray, ref: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Matrix minimising the mean CIEDE2000-weighted Lab error (IRLS around Gauss-Newton)."""
    n, k = terms.shape
    ref_lab, _ = _lab_and_jacobian(ref)
    scales = _de2000_scales(ref_lab)
    w = np.ones(n)
    mean_e = np.inf
    for _ in range(_IRLS_ROUNDS):
        r, jac = _weighted_lab_errors(terms, matrix, ref_lab, scales)
        cost = float(np.sum(w[:, None] ** 2 * r * r))
        for _ in range(8):  # Gauss-Newton; the model is linear in the matrix
            g = np.einsum("nij,njk->nik", scales, jac) * w[:, None, None]  # d r_i / d pred_i
            a = np.einsum("npj,nq->npqj", g, terms).reshape(3 * n, 3 * k)
            step = np.linalg.lstsq(a, -(r * w[:, None]).ravel(), rcond=None)[0].reshape(k, 3)
            t = 1.0
            while t > 1e-3:  # step halving
                r_new, jac_new = _weighted_lab_errors(terms, matrix + t * step, ref_lab, scales)
                cost_new = float(np.sum(w[:, None] ** 2 * r_new * r_new))
                if cost_new <= cost:
                    break
                t /= 2
            if t <= 1e-3:
                break
            matrix, r, jac = matrix + t * step, r_new, jac_new
            done = cost - cost_new < 1e-5 * cost
            cost = cost_new
            if done:
                break
        e = np.linalg.norm(r, axis=1)
        if abs(mean_e - e.mean()) < 1e-3:
            break
        mean_e = e.mean()
        w = 1 / np.sqrt(np.maximum(e, _IRLS_FLOOR))  # sum w^2 e^2 = sum e: the mean dE
    return matrix


def _fit(obs, ref, rows, model, objective, init=None):
    """Tone (gain, gamma) and matrix fitted on the patches `rows` (bool, 24); the dE2000
    refinement starts from `init` when given (else from the least-squares matrix)."""
    gain, gamma = _fit_tone(obs, ref, rows)
    terms = _terms(gain * obs ** gamma, model)
    matrix, *_ = np.linalg.lstsq(terms[rows], ref[rows], rcond=None)
    if objective == "de2000":
        matrix = _refine_matrix(terms[rows], ref[rows], matrix if init is None else init)
    return gain, gamma, matrix, terms


def _loo(obs, ref, ok, model, objective, init=None) -> tuple[np.ndarray, np.ndarray]:
    """Each patch corrected by the fit on the others (linear RGB, (24, 3)) and its CIEDE2000."""
    held_out = np.empty((len(obs), 3))
    for i in range(len(obs)):
        rows = ok.copy() if ok.sum() >= 13 else np.ones(len(ok), bool)
        rows[i] = False
        gain, gamma, matrix, _ = _fit(obs, ref, rows, model, objective, init)
        held_out[i] = _terms(gain * obs[i:i + 1] ** gamma, model) @ matrix
    return held_out, _delta_e(held_out, ref)


def _check_args(patch_codes, model, objective, reference_linear):
    if model not in ("rootpoly", "linear"):
        raise ValueError(f"model must be rootpoly or linear, not {model!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    obs = np.maximum(np.asarray(patch_codes, np.float64), 1e-6)
    ref = REFERENCE_LINEAR_SRGB if reference_linear is None else np.asarray(reference_linear, np.float64)
    # clipped patches (any channel at the top code) carry no tone or colour information
    ok = np.asarray(patch_codes, np.float64).max(axis=1) < CLIP_CODE
    return obs, ref, ok


def _delta_e(corrected: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Exact CIEDE2000 (scikit-image) of corrected linear rows against reference rows."""
    lab = linear_to_lab(np.maximum(corrected, 0).astype(np.float32)[None])[0].astype(np.float64)
    ref_lab = linear_to_lab(ref.astype(np.float32)[None])[0].astype(np.float64)
    return deltaE_ciede2000(lab, ref_lab)


def fit_card(patch_codes: np.ndarray, *, model: str = "rootpoly",
             reference_linear: np.ndarray | None = None,
             objective: str = "auto") -> ColourCorrection:
    """Fit the tone curves (neutral row) and the colour matrix to the card's reference.

    Parameters
    ----------
    patch_codes : (24, 3) array
        Mean code values (0-1) of the patches in reading order, as stored in the file.
    model : {"rootpoly", "linear"}
        Root-polynomial of degree 2 (Finlayson 2015) or a plain 3x3 matrix.
    reference_linear : (24, 3) array, optional
        Target linear sRGB of the patches (default: X-Rite 2014 values,
        `photokit.colour.colorchecker.REFERENCE_LINEAR_SRGB`).
    objective : {"auto", "de2000", "rgb"}
        ``de2000`` minimises the mean CIEDE2000 of the patches (module notes); ``rgb``
        stops at linear least squares in linear RGB (fast: used to score the candidate
        placements during detection); ``auto`` fits both and keeps the one with the
        lower leave-one-out mean dE2000 (cross-validated choice: on cards whose dark
        patches are only a few codes deep the dE2000 fit can chase their noise).

    Returns
    -------
    ColourCorrection
        With ``delta_e`` the exact CIEDE2000 of all 24 corrected patches (the residual,
        in-sample) and, for ``auto``, ``delta_e_loo`` the held-out error of the kept fit
        (`leave_one_out`; slightly optimistic, as it also chose between two fits).
    """
    obs, ref, ok = _check_args(patch_codes, model, objective, reference_linear)
    rows = ok if ok.sum() >= 12 else np.ones(len(ok), bool)
    if objective != "auto":
        gain, gamma, matrix, terms = _fit(obs, ref, rows, model, objective)
        return ColourCorrection(gain, gamma, matrix, model, _delta_e(terms @ matrix, ref), objective)
    fits = []
    for obj in ("rgb", "de2000"):
        gain, gamma, matrix, terms = _fit(obs, ref, rows, model, obj)
        held_out, loo = _loo(obs, ref, ok, model, obj, init=matrix if obj == "de2000" else None)
        fits.append(ColourCorrection(gain, gamma, matrix, model, _delta_e(terms @ matrix, ref), obj, loo,
                                     held_out))
    return min(fits, key=lambda f: f.delta_e_loo_mean)


def leave_one_out(patch_codes: np.ndarray, *, model: str = "rootpoly",
                  reference_linear: np.ndarray | None = None,
                  objective: str = "auto") -> np.ndarray:
    """Held-out CIEDE2000 of each patch: tone and matrix fitted on the other 23.

    The cross-validated error of the correction, ``dE_i = dE2000(f_{-i}(v_i), ref_i)``
    where ``f_{-i}`` is `fit_card` without patch ``i`` (Stone 1974); its mean is the
    error to expect on colours that are not on the card, whereas `fit_card`'s
    ``delta_e_mean`` is the in-sample residual. Clipped patches are left out of every
    fit, as in `fit_card`, and still scored. With ``objective="auto"`` it is that of the
    objective `fit_card` keeps.

    References
    ----------
    M. Stone, "Cross-validatory choice and assessment of statistical predictions",
    J. R. Stat. Soc. B 36(2), 111-147 (1974).
    """
    if objective == "auto":
        return fit_card(patch_codes, model=model, reference_linear=reference_linear).delta_e_loo
    obs, ref, ok = _check_args(patch_codes, model, objective, reference_linear)
    init = None
    if objective == "de2000":  # each refit starts from the full fit, as in fit_card
        init = _fit(obs, ref, ok if ok.sum() >= 12 else np.ones(len(ok), bool), model, objective)[2]
    return _loo(obs, ref, ok, model, objective, init)[1]


@dataclass
class Card:
    """A ColorChecker found in a photo (full-resolution pixel coordinates).

    Attributes
    ----------
    corners : (4, 2) array
        Outline of the patch area, clockwise from the corner at the dark-skin patch.
    patch_centres : (24, 2) array
        Centres of the patches in reading order.
    patch_side : float
        Patch side in pixels (mean).
    patch_codes : (24, 3) array
        Mean code values (pixel / 255) of the centre of each patch.
    size_mm : tuple or None
        Physical size of `corners`' outline when known (cards come in several sizes, so
        none is assumed: a scale needs the user to say which card it is).
    """

    corners: np.ndarray
    patch_centres: np.ndarray
    patch_side: float
    patch_codes: np.ndarray
    size_mm: tuple | None = None
    correction: ColourCorrection | None = field(default=None, repr=False)

    def patch_codes_from(self, pixels: np.ndarray) -> np.ndarray:
        """Patch means of another rendering of the same photo (e.g. its 16-bit pixels)."""
        scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
        return _sample(pixels, self.patch_centres, self.patch_side) * (255.0 / scale)

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Boolean mask of the card (patch area grown by one patch side: the card body)."""
        c = self.corners.mean(axis=0)
        grown = c + (self.corners - c) * (1 + 1.6 * self.patch_side
                                          / np.linalg.norm(self.corners - c, axis=1).mean())
        out = np.zeros(shape[:2], np.uint8)
        cv2.fillConvexPoly(out, np.round(grown).astype(np.int32), 1)
        return out.astype(bool)

    def to_dict(self) -> dict:
        return {"corners": np.round(self.corners, 1).tolist(), "patch_side_px": round(self.patch_side, 1),
                "size_mm": self.size_mm}


def _candidates(g8: np.ndarray) -> np.ndarray:
    """(N, 4) rows ``x, y, side, angle`` of square-ish closed contours."""
    h, w = g8.shape
    min_side = max(6.0, 0.012 * min(h, w))
    max_side = 0.25 * min(h, w)
    binaries = []
    for block in (31, 71):
        binaries.append(cv2.adaptiveThreshold(g8, 255, cv2.ADAPTIVE_THRESH_MEAN_C,
                                              cv2.THRESH_BINARY, block, -3))
    edges = cv2.dilate(cv2.Canny(g8, 20, 60), np.ones((3, 3), np.uint8))
    binaries.append(cv2.bitwise_not(edges))
    found = []
    speck = np.ones((3, 3), np.uint8)
    for bw in binaries:
        # a 3 x 3 opening and closing removes the one-pixel specks (and pinholes) that skin
        # texture leaves in a binarisation, tens of thousands of contours on a close-up,
        # and leaves the patches (at least `min_side` >= 6 px) as they are
        bw = cv2.morphologyEx(cv2.morphologyEx(bw, cv2.MORPH_OPEN, speck), cv2.MORPH_CLOSE, speck)
        contours, _ = cv2.findContours(bw, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            area = cv2.contourArea(c)
            if area < min_side ** 2 or area > max_side ** 2:
                continue
            peri = cv2.arcLength(c, True)
            approx = cv2.approxPolyDP(c, 0.06 * peri, True)
            if len(approx) != 4 or not cv2.isContourConvex(approx):
                continue
            (cx, cy), (rw, rh), ang = cv2.minAreaRect(c)
            if min(rw, rh) <= 0 or max(rw, rh) / min(rw, rh) > 1.35 or area / (rw * rh) < 0.8:
                continue
            found.append((cx, cy, np.sqrt(area), ang % 90.0))
    if not found:
        return np.zeros((0, 4))
    arr = np.array(found)
    # de-duplicate (the same patch found by several binarisations)
    keep = []
    for i in np.argsort(-arr[:, 2]):
        if all(np.hypot(*(arr[i, :2] - arr[j, :2])) > 0.4 * arr[i, 2] for j in keep):
            keep.append(i)
    return arr[keep]


def _size_modes(cands: np.ndarray, n: int = 4) -> list[float]:
    """Up to `n` peaks of the log-size histogram of the candidates, most populated first.

    Skin texture (pores, spots) can give more small square-ish blobs than the card has
    patches, so the card's size is not always the most common one: each peak is tried.
    """
    logs = np.log(cands[:, 2])
    hist_centres = np.arange(logs.min(), logs.max() + 0.1, 0.05)
    counts = np.array([(np.abs(logs - c) < 0.15).sum() for c in hist_centres])
    modes: list[float] = []
    for i in np.argsort(-counts, kind="stable"):
        if counts[i] < MIN_PATCHES or len(modes) == n:
            break
        if all(abs(hist_centres[i] - m) > 0.3 for m in modes):
            modes.append(float(hist_centres[i]))
    return modes


def _lattice(cands: np.ndarray, mode: float):
    """Integer lattice coordinates and lattice->image homography of one size group."""
    logs = np.log(cands[:, 2])
    group = cands[np.abs(logs - mode) < 0.2]
    if len(group) < MIN_PATCHES:
        return None
    pts = group[:, :2]
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    np.fill_diagonal(d, np.inf)
    pitch = float(np.median(d.min(axis=1)))
    ang = np.deg2rad(float(np.median(group[:, 3])))
    rot = np.array([[np.cos(ang), np.sin(ang)], [-np.sin(ang), np.cos(ang)]])
    best = None
    for seed in range(len(pts)):  # lattice anchored at each candidate; keep the largest set
        uv = (pts - pts[seed]) @ rot.T / pitch
        ij = np.round(uv)
        ok = np.all(np.abs(uv - ij) < 0.25, axis=1)
        if best is None or ok.sum() > best[0].sum():
            best = (ok, ij)
    ok, ij = best
    if ok.sum() < MIN_PATCHES:
        return None
    src, dst = ij[ok].astype(np.float32), pts[ok].astype(np.float32)
    if len(np.unique(src[:, 0])) < 2 or len(np.unique(src[:, 1])) < 2:
        return None
    H, inl = cv2.findHomography(src, dst, cv2.RANSAC, 0.2 * pitch)
    if H is None or inl.sum() < MIN_PATCHES:
        return None
    inl = inl.ravel().astype(bool)
    return src[inl], H, float(np.median(group[:, 2]))


def _sample(rgb8: np.ndarray, centres: np.ndarray, side: float) -> np.ndarray:
    """Mean code values (0-1) in a square of `SAMPLE_FRACTION` x side around each centre."""
    r = max(1, int(side * SAMPLE_FRACTION / 2))
    out = np.empty((len(centres), 3))
    for k, (x, y) in enumerate(centres):
        xi, yi = int(round(x)), int(round(y))
        out[k] = rgb8[yi - r: yi + r + 1, xi - r: xi + r + 1].reshape(-1, 3).mean(axis=0) / 255.0
    return out


def _placements(lat: np.ndarray):
    """Every (patch lattice coords in reading order) of a 6x4 card covering `lat`."""
    imin, jmin = lat.min(axis=0)
    imax, jmax = lat.max(axis=0)
    rows, cols = LAYOUT
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    r, c = r.ravel().astype(float), c.ravel().astype(float)
    for ncol, nrow, orient in ((cols, rows, "landscape"), (rows, cols, "portrait")):
        for i0 in np.arange(imax - ncol + 1, imin + 1):
            for j0 in np.arange(jmax - nrow + 1, jmin + 1):
                for flip in (False, True):
                    if orient == "landscape":
                        ii, jj = (c, r) if not flip else (cols - 1 - c, rows - 1 - r)
                    else:
                        ii, jj = (r, cols - 1 - c) if not flip else (rows - 1 - r, c)
                    yield np.stack([i0 + ii, j0 + jj], axis=1)


def find_card(rgb8: np.ndarray) -> Card | None:
    """Find a ColorChecker 24 fully inside an RGB uint8 photo, or None (see module notes)."""
    rgb8 = np.asarray(rgb8)
    if rgb8.ndim != 3:
        return None
    h, w = rgb8.shape[:2]
    s = min(1.0, DETECT_SIDE / max(h, w))
    small = shrink(rgb8, (int(round(w * s)), int(round(h * s)))) if s < 1 else rgb8
    hi8 = channel_max(small)
    top = percentile_u8(hi8, 99.5)
    hi = hi8.astype(np.float32)
    if top < 8:
        return None
    g8 = (np.sqrt(np.clip(hi / top, 0, 1)) * 255).astype(np.uint8)
    cands = _candidates(g8)
    if len(cands) < MIN_PATCHES:
        return None
    for mode in _size_modes(cands):
        got = _lattice(cands, mode)
        if got is None:
            continue
        card = _place(rgb8, small, s, *got)
        if card is not None:
            return card
    return None


def _place(rgb8, small, s, lat, H, side_small) -> Card | None:
    """The best-fitting card placement on a lattice, or None (see module notes, step 3)."""
    best = None
    for cell in _placements(lat):
        centres = cv2.perspectiveTransform(cell.reshape(-1, 1, 2).astype(np.float32), H).reshape(-1, 2)
        margin = 0.5 * side_small
        if (centres.min() < margin or centres[:, 0].max() > small.shape[1] - margin
                or centres[:, 1].max() > small.shape[0] - margin):
            continue  # part of the card would be outside the photo
        rgb = _sample(small, centres, side_small)
        lum = rgb[list(NEUTRAL_ROW)].sum(axis=1)
        if not np.all(np.diff(lum[:5]) < 0):
            continue
        fit = fit_card(rgb, objective="rgb")
        if best is None or fit.delta_e_mean < best[0].delta_e_mean:
            best = (fit, centres, cell)
    if best is None or best[0].delta_e_mean > ACCEPT_DELTA_E:
        return None
    _, centres, cell = best
    centres_full = centres / s
    side = side_small / s
    # outline of the patch area: lattice cell corners of the first/last patches
    first, last = cell[0], cell[-1]
    step_i = np.sign(cell[1] - cell[0])  # along a row
    step_j = np.sign(cell[LAYOUT[1]] - cell[0])  # down a column
    half = 0.5 * (step_i + step_j)
    outline = np.array([first - half, first + step_i * (LAYOUT[1] - 1) + (step_i - step_j) / 2,
                        last + half, first + step_j * (LAYOUT[0] - 1) + (step_j - step_i) / 2])
    corners = cv2.perspectiveTransform(outline.reshape(-1, 1, 2).astype(np.float32), H).reshape(-1, 2) / s
    codes = _sample(rgb8, centres_full, side)
    return Card(corners.astype(np.float64), centres_full, float(side), codes,
                correction=fit_card(codes))
