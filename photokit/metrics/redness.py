"""Redness: CIELAB a*, erythema index, and the area of red skin.

Maps are computed on calibrated linear RGB at a working resolution of at most
`WORK_SIDE` pixels on the long side: means over skin do not change with resolution
(area averaging preserves linear means), and a 12 MP photo stays fast.

References
----------
B. L. Diffey, R. J. Oliver, P. M. Farr, "A portable instrument for quantifying
erythema induced by ultraviolet radiation", Br. J. Dermatol. 111(6), 663-672 (1984).
doi:10.1111/j.1365-2133.1984.tb14149.x

J. B. Dawson et al., "A theoretical and experimental study of light absorption and
scattering by in vivo skin", Phys. Med. Biol. 25(4), 695-709 (1980).
doi:10.1088/0031-9155/25/4/008

T. Yamamoto et al., "Derivation of erythema index and melanin index from digital
camera images", Skin Res. Technol. 14(1), 26-34 (2008).
doi:10.1111/j.1600-0846.2007.00256.x
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..colour.convert import linear_to_lab
from .analysis import Analysis
from .noise import MDC_PER_SW, calibrated_light_only, light_dependent, light_se, tile_px, too_few_tiles
from .registry import Panel, family, job, metric

#: Long side (pixels) of the working copy for colour maps.
WORK_SIDE = 1600

#: Redness and pigment metrics read the same colour level and its CIELAB: one job in
#: `photokit.measurement.measure` (run side by side, they would wait on each other's maps).
#: Started fourth (after spots, lines and pores; before the texture band): on a 12 MP
#: close-up and portrait (``benchmarks/bench_measure.py``) the two threads then end within
#: ~10 % of each other.
COLOUR_JOB = job("colour", start=3)

#: Largest ratio of two photos' mm per pixel (for one camera: of their distances) at which
#: a mean colour metric's change is judged (`photokit.metrics.registry.Metric.
#: resolution_tolerance`). A phone sets exposure, white balance and local tone mapping from
#: what fills the frame, and a calibration (card, reference skin) corrects one gain per
#: channel, not how the face's parts are rendered against each other. On the real zoom
#: re-captures (``recaptures/zoom``: one person at 15-60 cm, the cheeks measured against
#: the forehead as reference skin) every mean colour metric agreed within its floor at
#: scale ratios 1.24 and 1.27, while at 1.36-2.17 the melanin index moved by 6.4-16.6 MI
#: (floor 4) and ITA by 5-15 deg (floor 4.6) (docs/NOISE.md "Distance and colour").
COLOUR_DISTANCE_TOLERANCE = 1.3

family("redness", title="Redness", order=0)

#: Floor on linear values before taking logarithms (1/10 of an 8-bit level of black).
LOG_FLOOR = 1e-4

#: Excess erythema index over the skin's own baseline that counts as "red" (EI units).
#: 6 EI units is about the change from normal skin to a just-perceptible erythema
#: (minimal erythema dose readings of Diffey et al. 1984 span 5-10 units).
RED_EXCESS_EI = 6.0


def erythema_index_Diffey1984(linear: np.ndarray) -> np.ndarray:
    """Erythema index ``EI = 100 * log10(R / G)`` of linear, calibrated RGB (float32).

    Haemoglobin absorbs green far more than red, so the red/green reflectance ratio
    rises with blood content (Dawson 1980, Diffey 1984; camera form after Yamamoto 2008).
    """
    r, g, _ = cv2.split(np.ascontiguousarray(linear, dtype=np.float32))
    ratio = cv2.divide(cv2.max(r, LOG_FLOOR), cv2.max(g, LOG_FLOOR))
    return cv2.log(ratio) * np.float32(100.0 / np.log(10.0))  # OpenCV: ~3x NumPy's log10


def colour_level(an: Analysis) -> Analysis:
    """The working copy used for colour maps (at most `WORK_SIDE` px on the long side)."""
    return an.level(max_side=WORK_SIDE)


def erythema_map(an: Analysis) -> np.ndarray:
    """Erythema index of the working copy (cached)."""
    lv = colour_level(an)
    return lv.pointwise("erythema_index", erythema_index_Diffey1984)


def a_star_map(an: Analysis) -> np.ndarray:
    """CIELAB a* (D65) of the working copy."""
    return colour_level(an).lab[..., 1]


def colour_skin(an: Analysis) -> np.ndarray | None:
    """The analysed skin on the colour level (None with fewer than 20 pixels)."""
    lv = colour_level(an)
    return lv.mask if lv.skin_pixels >= 20 else None


def skin_mean(an: Analysis, values: np.ndarray) -> float | None:
    """Mean of a working-level map over the analysed skin (None without enough skin)."""
    m = colour_skin(an)
    # cv2.mean: the masked mean without copying the skin's values out (double sums)
    return None if m is None else float(cv2.mean(values, mask=m.view(np.uint8))[0])


def red_threshold(an: Analysis) -> float | None:
    """EI above which skin counts as red: the skin's own 20th percentile + `RED_EXCESS_EI`.

    The 20th percentile of EI over the analysed skin stands for its non-inflamed level
    (robust to redness covering up to ~80% of the region), so the threshold follows each
    subject's own skin tone rather than a population constant.
    """
    m = colour_skin(an)
    if m is None:
        return None
    return float(np.percentile(erythema_map(an)[m], 20)) + RED_EXCESS_EI


def mean_rgb(an: Analysis) -> np.ndarray | None:
    """Mean linear RGB of the analysed skin on the colour level (cached; None without skin)."""
    def make(a: Analysis):
        m = colour_skin(a)
        if m is None:
            return None
        return np.array(cv2.mean(colour_level(a).linear, mask=m.view(np.uint8))[:3], np.float64)
    return an.cached("colour.mean_rgb", make)


def colour_noise(values: Callable[[Analysis], np.ndarray], of_rgb: Callable[[np.ndarray], float],
                 mdc: float, card_mdc: float | None = None) -> Callable[[Analysis, float], float | str]:
    r"""Noise function (``@metric(noise=)``) of a mean colour metric over the skin.

    :math:`se^2 = (\mathrm{mdc}_m/2.77)^2 + se_{light}^2`: the calibrated re-capture SD of
    the photo's calibration method ``m`` (`card_mdc` for a colour card, ``checker``;
    `mdc`, the registered floor, for reference skin and uncalibrated photos) and, when the
    photo is not calibrated (no card, no reference skin), the light's share
    (`photokit.metrics.noise.light_se` of `of_rgb` at the skin's mean linear colour). Both
    calibrations cancel the exposure and white balance and keep the light field between
    the calibrator and the skin (`benchmarks/bench_repeatability.py` ``--card``); a card
    adds its fit's colour error on a colour that is not on it. The skin must fill
    `photokit.metrics.noise.MIN_TILES` tiles of the colour
    level (`photokit.metrics.noise.too_few_tiles`), else the
    metric is not judged; the tiles' spread itself is not added: it is the skin's own
    patchiness, which a re-capture of the same skin does not resample (docs/NOISE.md).

    Parameters
    ----------
    values : callable
        ``values(analysis) -> map`` on the colour level (e.g. `erythema_map`).
    of_rgb : callable
        The metric of one linear RGB colour.
    mdc : float
        The metric's registered (calibrated: reference skin) floor.
    card_mdc : float, optional
        The floor of a card-calibrated photo (default `mdc`).
    """
    by_method = {"checker": mdc if card_mdc is None else card_mdc}

    @light_dependent
    def noise(an: Analysis, value: float) -> float | str:
        lv, m = colour_level(an), colour_skin(an)
        if m is None:
            return "too little skin for a noise floor"
        why = an.cached("colour.tiles", lambda _: too_few_tiles(m, tile_px(lv.mm_per_px)))
        if why:
            return why
        var = (by_method.get(an.calibration_method, mdc) / MDC_PER_SW) ** 2
        rgb = mean_rgb(an)
        if not an.calibrated and rgb is not None:
            var += light_se(of_rgb, rgb) ** 2
        return float(np.sqrt(var))
    return noise


def lab_of(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of one linear RGB colour."""
    return linear_to_lab(np.asarray(rgb, np.float32).reshape(1, 1, 3))[0, 0].astype(np.float64)


def ei_of(rgb: np.ndarray) -> float:
    """Erythema index of one linear RGB colour."""
    return float(100.0 * np.log10(max(rgb[0], LOG_FLOOR) / max(rgb[1], LOG_FLOOR)))


A_MEAN_MDC, EI_MEAN_MDC, AREA_PCT_MDC = 0.6, 1.4, 5.1
#: Floors of a card-calibrated photo (`colour_noise`'s ``card_mdc``; see the comment below).
A_MEAN_CARD_MDC, EI_MEAN_CARD_MDC = 1.2, 1.5

# Noise floors (``mdc`` of each metric below), from ``benchmarks/bench_repeatability.py``.
# Protocol "light + pose": no-change synthetic pairs (photokit.synth, skin tones ITA
# 55/35/15/-20) re-captured with exposure ratio x0.7-1.35, white balance x0.9-1.1 per
# channel, 5000-6800 K, rotation +-3 deg, zoom +-4 %, sensor noise, JPEG 85-95, measured
# by ``photokit.comparison.compare`` with the reference skin; run A (seed 0, 16 pairs per cell,
# 720x540 at 0.1 and 1200x900 at 0.07 mm/px, light gradient <= 8 %, vignetting <= 5 %:
# 125 pairs pass photokit's clipping check) and run B (seed 3, 10 pairs per cell, also
# 640x480 at 0.08 mm/px, gradient <= 12 %, vignetting <= 10 % as Camera.random: 118 pairs);
# gain-sensitive colour metrics (a*, EI, MI, ITA) from run A only, the rest from A + B.
# MDC = the largest of: 3.2 x sqrt(2) x Sw (Sw = RMS of
# the pair deltas / sqrt(2); z = 3.2 is the two-sided Bonferroni bound 0.05/26, so a
# no-change pair stays clear of ALL 26 floors with ~95 % probability, not only of each
# one), the largest |delta| of those pairs, and 2.77 x Sw on re-captured real portraits
# (``$PHOTOKIT_BENCH_DATA/faces`` + astronaut: pose only; and with exposure/WB changes,
# for the metrics that are gain-free); rounded up to two significant figures.
# Colour floors are the CALIBRATED ones (reference skin): without a reference or a card
# a* and EI follow the light (uncalibrated Sw 3.3 a*, 4.5 EI on the same pairs) and
# ``compare`` warns about the lighting difference. a* holds for gradients <= 8 % (run B,
# 12 %: max |delta| 0.87). redness.ei_mean is set by the real
# portraits (pose only, 1.33), area_pct by the largest synthetic pair delta.
# Card-calibrated photos (calibration method ``checker``) have floors of their own, by the
# same rule on the same protocol (``bench_repeatability.py --protocols light-pose --card
# --gradient 0.08 --vignetting 0.05 --resolutions 0,1 --pairs 4``, seeds 0 and 3: 64 pairs
# with a ColorChecker at (0.8, 0.8) of the frame, each compared three ways). On the same
# pairs a* has Sw 0.25 by the card against 0.13 by the reference skin, EI 0.33 against
# 0.10: reference and ROI are the same skin under the same light, so a per-channel gain
# cancels the light's colour exactly, while the card's fitted correction errs on a colour
# that is not on the card (its tone curves are also fitted across the card's own share of
# the light gradient). MDC = 3.2 sqrt(2) Sw: a* 1.15 -> 1.2, EI 1.49 -> 1.5 (max |delta|
# 0.86 and 1.13); with the reference floors 6/64 pairs were flagged at a*. These hold for
# daylight-like light: four real photos of one card (``colorchecker/``: D65, TL84, CWF,
# 30 % exposure; ``bench_colour.py`` table 7) moved its skin patches, corrected by fits
# that left them out, by up to 6.2 a* and 6.3 EI between photos (docs/NOISE.md).


@metric("redness.a_mean", unit="a*", mdc=A_MEAN_MDC, better="lower", job=COLOUR_JOB, core=True,
        working_side=WORK_SIDE, resolution_tolerance=COLOUR_DISTANCE_TOLERANCE,
        noise=colour_noise(a_star_map, lambda rgb: lab_of(rgb)[1], A_MEAN_MDC, A_MEAN_CARD_MDC),
        zone_map=a_star_map, recovery=True,
        panel=Panel("Redness", "Reds", "RdBu_r", "less red", "more red", "paler", "redder",
                    pixels=lambda lv: lv.lab[..., 1].astype(np.float32)),
        description="mean CIELAB a* (D65) over the analysed skin")
def a_mean(an: Analysis) -> float | None:
    return skin_mean(an, a_star_map(an))


@metric("redness.ei_mean", unit="EI", mdc=EI_MEAN_MDC, better="lower", job=COLOUR_JOB, core=True,
        working_side=WORK_SIDE, resolution_tolerance=COLOUR_DISTANCE_TOLERANCE,
        noise=colour_noise(erythema_map, ei_of, EI_MEAN_MDC, EI_MEAN_CARD_MDC),
        zone_map=erythema_map, recovery=True,
        description="mean erythema index 100*log10(R/G) on linear calibrated RGB")
def ei_mean(an: Analysis) -> float | None:
    return skin_mean(an, erythema_map(an))


@metric("redness.area_pct", unit="%", mdc=AREA_PCT_MDC, better="lower", job=COLOUR_JOB, core=True,
        working_side=WORK_SIDE, resolution_tolerance=COLOUR_DISTANCE_TOLERANCE,
        noise=calibrated_light_only(AREA_PCT_MDC),
        description=f"% of skin whose erythema index exceeds its own 20th percentile + {RED_EXCESS_EI:g}")
def area_pct(an: Analysis) -> float | None:
    m = colour_skin(an)
    if m is None:
        return None
    ei = erythema_map(an)[m]
    return float(np.mean(ei > red_threshold(an)) * 100.0)
