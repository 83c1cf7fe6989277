"""The same skin in two photos: the one core that ``compare`` and ``series`` share.

- `followed_skin`: the skin to follow from the first photo (the ROI, else the skin
  ``measure`` analyses on its own: face-seeded, without eyes, brows, lips, backdrops beside
  the head, a colour card or the reference skin).
- `analysed_mask`: what a `~photokit.measurement.measure.Measurement` actually analysed,
  on its photo's full grid (ROI x skin x usable pixels), the region later photos follow.
- `carried_mm_per_px`: the first photo's physical scale carried through an alignment to
  the later photo's pixels. It is ``mm_per_px_after = mm_per_px_before * sqrt(|det J|)``,
  ``J`` the Jacobian of the AFTER -> BEFORE homography at the centroid of the followed
  skin on AFTER's grid: the local scale where the skin is, exact for an affine map and,
  for a perspective one, right at the skin's centre (``det H[:2, :2]``, used by ``series``
  before, ignores the perspective terms and is the scale at AFTER's origin). Across an
  expression change it is the ratio of the faces' inter-pupil distances instead.
- `changes` and `percent_change`: delta, percent change (``100 delta / |before|``),
  significance and noise floor of each metric, one definition for a pair and for a trend:
  the floor is the MDC of a difference of two measurements with standard errors
  ``se_b``, ``se_a`` (`photokit.metrics.noise`), ``1.96 sqrt(se_b^2 + se_a^2)``;
  `verdict`: its plain-language wording; `holm_changes`: which changes of a pair stand
  after Holm's control of the family-wise error over its metrics.
- `judge_pair`: all of that for two measurements of the same skin, with the pair's
  reasons to leave a change unjudged (an uncalibrated light change, colour calibrated in
  one photo only, another resolution, another expression): what a comparison reports
  and what a series reports for each visit against its baseline.
"""


from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import PhotokitError
from ..faces.mesh import inter_pupil_px
from ..metrics.noise import (
    beyond_expression,
    beyond_light_model,
    beyond_resolution,
    holm,
    is_light_dependent,
    mixed_calibration,
    noise_floor,
    p_value,
    without_scale,
)
from ..metrics.scale import Scale

#: ``|before|`` below this is zero for a percent change.
PERCENT_FLOOR = 1e-9


def finite(v) -> float | None:
    """`v` as a float, or None when missing, not a number or not finite."""
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def percent_change(before, after) -> float | None:
    """``100 * (after - before) / |before|``; None when either is missing or not finite,
    or ``|before|`` is below `PERCENT_FLOOR`."""
    b, a = finite(before), finite(after)
    if a is None or b is None or abs(b) < PERCENT_FLOOR:
        return None
    return 100.0 * (a - b) / abs(b)


@dataclass(frozen=True)
class Verdict:
    """Plain-language verdict on one change.

    Attributes
    ----------
    text : str
        What a patient can read: "No detectable change", "Decreased (better)", ...
    tone : str
        ``"none"`` (inside the noise), ``"better"``, ``"worse"``, ``"changed"``
        (significant, no preferred direction) or ``"na"`` (not measured).
    reason : str or None
        Why a measured change is not judged (the tail of ``"Not judged: ..."``).
    """

    text: str
    tone: str
    reason: str | None = None

    @property
    def label(self) -> str:
        """The verdict without its reason: what fits a pill or a heading."""
        return "Not judged" if self.reason else self.text


def verdict(delta: float | None, mdc: float | None, better: str = "neither",
            why: str | None = None) -> Verdict:
    """Wording of a change `delta` against the pair's minimal detectable change `mdc`.

    A change with ``|delta| <= mdc`` is "No detectable change": it is inside the
    measurement noise (MDC = 1.96 sqrt(se_b^2 + se_a^2), Weir 2005,
    doi:10.1519/15184.1), whatever its percentage. A measured change without a floor is
    "Not judged: <why>" (too little skin, too few features) rather than a verdict.
    """
    if delta is None or not math.isfinite(float(delta)):
        return Verdict("Not measured", "na")
    if mdc is None:
        reason = why or "no noise floor"
        return Verdict(f"Not judged: {reason}", "na", reason)
    if mdc is not None and abs(delta) <= mdc:
        return Verdict("No detectable change", "none")
    word = "Increased" if delta > 0 else "Decreased"
    if better == "neither":
        return Verdict(word, "changed")
    good = (delta < 0) == (better == "lower")
    return Verdict(f"{word} ({'better' if good else 'worse'})", "better" if good else "worse")


def changes(metrics, before: dict, after: dict, se_before: dict | None = None,
            se_after: dict | None = None) -> tuple[dict, dict, dict, dict]:
    """Delta, percent change, significance and noise floor of each metric.

    Parameters
    ----------
    metrics : iterable of Metric
        Registry entries (name, mdc).
    before, after : dict
        Metric values by name (float or None).
    se_before, se_after : dict, optional
        Standard errors of the values on their photos
        (`photokit.metrics.noise.standard_errors`); None: the registered constant floors.

    Returns
    -------
    delta, percent_change, significant, noise_floor : dict
        ``delta = after - before``; ``percent_change`` by `percent_change`;
        ``noise_floor = 1.96 sqrt(se_b^2 + se_a^2)`` (`photokit.metrics.noise.noise_floor`;
        the registered ``mdc`` without standard errors; None where a measured metric has
        no SE); ``significant = |delta| > noise_floor`` (None where either is missing).
    """
    delta, pct, sig, floor = {}, {}, {}, {}
    for m in metrics:
        b, a = finite(before.get(m.name)), finite(after.get(m.name))
        d = None if a is None or b is None else a - b
        delta[m.name] = d
        pct[m.name] = percent_change(b, a)
        if se_before is None or se_after is None:
            f = m.mdc
        else:
            f = noise_floor(se_before.get(m.name), se_after.get(m.name))
        floor[m.name] = f
        sig[m.name] = None if d is None or f is None else abs(d) > f
    return delta, pct, sig, floor


def holm_changes(delta: dict, se_before: dict, se_after: dict, alpha: float = 0.05) -> dict:
    """Which changes of a pair stand when the family-wise error over its metrics is held
    at `alpha`: Holm's step-down test (`photokit.metrics.noise.holm`) on the two-sided
    p-values of ``delta / sqrt(se_b^2 + se_a^2)`` (`photokit.metrics.noise.p_value`).

    Returns name -> True (a change), False (none), None (not tested)."""
    p = {k: p_value(d, se_before.get(k), se_after.get(k)) for k, d in delta.items()}
    return holm(p, alpha)


def calibration_of(m) -> dict:
    """The calibration of a Measurement as a dict (``method: "none"`` without one; a
    `Calibration` or a plain dict)."""
    cal = getattr(m, "calibration", None)
    if cal is None:
        return {"method": "none", "delta_e_mean": None}
    return cal.to_dict() if hasattr(cal, "to_dict") else dict(cal)


@dataclass
class PairJudgement:
    """Each metric's change between two measurements of the same skin, judged.

    Attributes
    ----------
    delta, percent_change, significant, noise_floor : dict
        As `changes` returns them, with ``significant`` and ``noise_floor`` None where the
        change is not judged.
    not_judged : dict
        metric -> why its change has no floor (a photo's own reason, labelled with the
        photo, or the pair's).
    holm : dict
        metric -> whether its change stands under Holm's control over the judged ones
        (`holm_changes`; None: not tested).
    """

    delta: dict
    percent_change: dict
    significant: dict
    noise_floor: dict
    not_judged: dict
    holm: dict


def judge_pair(metrics, before, after, *, lighting: dict, expression: dict | None,
               mm_per_px: tuple[float | None, float | None], labels=("BEFORE", "AFTER")) -> PairJudgement:
    """Changes of `metrics` between two `~photokit.measurement.measure.Measurement` of
    the same skin, each judged against the pair's noise floor (`changes`, with the
    photos' standard errors), or left unjudged with the reason.

    A change is not judged when either photo has no standard error for it (its own reason,
    labelled with `labels`), or for the pair (`photokit.metrics.noise`): colour
    calibrated in one photo only (`mixed_calibration`) or, uncalibrated, a light change
    beyond the noise model (`beyond_light_model` of `lighting`, the pair's
    `photokit.comparison.compare.lighting_difference`), for the light-dependent metrics;
    resolutions too far apart for the metric's floor (`beyond_resolution` of
    `mm_per_px`, both photos' scales); an expression change (`beyond_expression` of the
    alignment's `expression`) for the skin's structure; no physical scale in the first
    photo (`without_scale`) for the metrics defined in millimetres. Holm's control then runs over the
    judged changes (`holm_changes`).

    Parameters
    ----------
    metrics : list of Metric
        The registered metrics to judge.
    before, after : Measurement
        The two measurements (their ``metrics``, ``standard_error``, ``not_judged`` and
        ``calibration``).
    lighting : dict
        The pair's light difference (``gain``, ``dab``, ``where``).
    expression : dict or None
        The alignment's ``expression`` (None: not a face pair).
    mm_per_px : (float or None, float or None)
        Both photos' scales (the later one as carried).
    labels : (str, str)
        How a photo's own reasons are labelled in `PairJudgement.not_judged`.

    Returns
    -------
    PairJudgement
    """
    se_b, se_a = before.standard_error, after.standard_error
    delta, pct, sig, floor = changes(metrics, before.metrics, after.metrics, se_b, se_a)
    not_judged = {k: f"{why} ({labels[0]})" for k, why in before.not_judged.items()}
    not_judged.update({k: f"{why} ({labels[1]})" for k, why in after.not_judged.items()
                       if k not in not_judged})
    methods = [calibration_of(m).get("method") or "none" for m in (before, after)]
    calibrated = "none" not in methods
    why_light = None if calibrated else (mixed_calibration(*methods) or beyond_light_model(lighting))
    # the later photo's scale is the first one's carried: the first says whether it is physical
    source = getattr(getattr(before, "scale", None), "source", None)
    for m in metrics:
        if delta.get(m.name) is None:
            continue
        why = ((why_light if why_light and is_light_dependent(m) else None) or without_scale(m, source)
               or beyond_resolution(m, *mm_per_px) or beyond_expression(m, expression))
        if why:
            floor[m.name], sig[m.name], not_judged[m.name] = None, None, why
    judged = {k: d for k, d in delta.items() if floor.get(k) is not None}
    return PairJudgement(delta, pct, sig, floor, not_judged,
                         {k: None for k in delta} | holm_changes(judged, se_b, se_a))


def jacobian(h: np.ndarray, x: float, y: float) -> np.ndarray:
    """2x2 Jacobian of the homography `h` at AFTER pixel ``(x, y)``.

    For ``u = (h0 . p) / (h2 . p)``: ``du/dx_j = (h0j - u h2j) / (h2 . p)``.
    """
    p = np.array([x, y, 1.0])
    w = float(h[2] @ p)
    u = h[:2] @ p / w
    return (h[:2, :2] - np.outer(u, h[2, :2])) / w


def view_change(h: np.ndarray, centre_after: tuple[float, float]) -> dict:
    """Scale, rotation and anisotropy of the AFTER -> BEFORE map at a point.

    ``scale = sqrt(|det J|)`` (BEFORE pixels per AFTER pixel), ``rotation`` the angle of
    the closest rotation (polar decomposition), ``anisotropy`` the ratio of the singular
    values of ``J`` (1 for a frontal view of the same plane; a plane turned by ``theta``
    gives about ``1 / cos theta``).
    """
    j = jacobian(h, *centre_after)
    u, s, vt = np.linalg.svd(j)
    r = u @ vt
    return {"scale": float(np.sqrt(abs(np.linalg.det(j)))),
            "rotation_deg": float(np.degrees(np.arctan2(r[1, 0], r[0, 0]))),
            "anisotropy": float(s[0] / s[1]) if s[1] > 0 else float("inf")}


def centroid(mask: np.ndarray) -> tuple[float, float]:
    """Centroid ``(x, y)`` of a mask (the image centre for an empty one).

    ``x = sum_j j c_j / n`` with ``c_j`` the mask pixels of column ``j`` and ``n`` all of
    them (``y`` likewise over rows): the first image moments in exact integer sums.
    """
    n = np.count_nonzero(mask)
    if n == 0:
        return mask.shape[1] / 2, mask.shape[0] / 2
    cols, rows = np.count_nonzero(mask, axis=0), np.count_nonzero(mask, axis=1)
    return float(cols @ np.arange(len(cols))) / n, float(rows @ np.arange(len(rows))) / n


#: `carried_mm_per_px`: largest yaw (degrees) of either face for the inter-pupil ratio
#: (cos 10 deg = 0.985: at most 1.5 % from a turn).
IPD_YAW_MAX = 10.0


def carried_mm_per_px(h: np.ndarray, mm_per_px_before: float | None,
                      region_after: np.ndarray | None, *, at: tuple[float, float] | None = None,
                      alignment=None) -> float | None:
    """BEFORE's scale carried to AFTER's pixels at the followed skin (module notes): at
    the centroid of `region_after`, or at the AFTER point `at` when given (its centroid,
    already known).

    Across an expression change (the `alignment`'s ``expression["changed"]``) of two faces
    that look at the camera (yaw within `IPD_YAW_MAX` degrees each) the scale is carried by
    their inter-pupil distances instead, ``mm_b IPD_b / IPD_a``: a smile moves the mesh
    vertices the homography was fitted on, not the pupils. On four London neutral/smiling
    pairs (one studio, one distance: the true ratio is about 1) the homography's scale read
    0.94-0.99 of AFTER's own iris scale, the pupils' 1.00-1.02. A turned head shortens the
    pupils' distance by cos(yaw), more than the skin's area scale (about its square root):
    there the homography stays.
    """
    if mm_per_px_before is None:
        return None
    faces = getattr(alignment, "faces", None)
    if (faces is not None and (getattr(alignment, "expression", None) or {}).get("changed")
            and all(f is not None and abs(f.yaw) <= IPD_YAW_MAX for f in faces)):
        ipd_b, ipd_a = (inter_pupil_px(f) for f in faces)
        if ipd_b > 0 and ipd_a > 0:
            return mm_per_px_before * ipd_b / ipd_a
    return mm_per_px_before * view_change(h, centroid(region_after) if at is None else at)["scale"]


def carried_scale(scale_before, mm_per_px_after: float, label: str = "BEFORE") -> Scale:
    """The `~photokit.metrics.scale.Scale` of a later photo measured at `carried_mm_per_px`:
    source ``"carried"``, the first photo's uncertainty, and a note naming where that
    scale came from (not ``"user"``, which a measurement given a scale reports)."""
    return Scale(mm_per_px_after, "carried", scale_before.uncertainty,
                 f"{label}'s scale ({scale_before.source}) carried through the alignment")


def analysed_mask(m, shape) -> np.ndarray | None:
    """The mask a Measurement actually analysed, on the photo's full grid ``shape``."""
    an = getattr(m, "analysis", None)
    if an is None:
        return None
    mask = np.asarray(an.mask, bool)
    if mask.shape != tuple(shape):
        mask = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]),
                          interpolation=cv2.INTER_NEAREST).astype(bool)
    return mask


def followed_skin(photo, *, roi: np.ndarray | None = None, reference: np.ndarray | None = None,
                  mm_per_px: float | None = None, calibration: str = "auto",
                  label: str = "BEFORE") -> tuple[np.ndarray, str]:
    """The skin to follow from `photo` into later photos, on its full grid.

    Parameters
    ----------
    photo : Photo
        The first (baseline) photo.
    roi : ndarray of bool, optional
        The user's region; it is the answer when given.
    reference : ndarray of bool, optional
        Untreated reference skin: never part of the followed skin.
    mm_per_px, calibration
        As for ``measure``.
    label : str
        How errors name the photo.

    Returns
    -------
    mask : ndarray of bool
    source : {"roi", "skin"}
    context : photokit.measurement.measure.PhotoContext or None
        What finding the skin learnt about the photo (faces, quality, calibration), for
        the measurement over that skin (None with an ROI: nothing was measured).

    Raises
    ------
    PhotokitError
        When no skin is found (and no ROI was given).
    """
    from ..measurement.measure import measure

    if roi is not None:
        return roi.copy(), "roi", None
    first = measure(photo, reference_roi=reference, mm_per_px=mm_per_px, calibration=calibration,
                    metrics=[])
    mask = analysed_mask(first, (photo.height, photo.width))
    if mask is None or not mask.any():
        raise PhotokitError(f"no skin found in {label}; give an ROI", photo.path)
    return mask, "skin", first.context
