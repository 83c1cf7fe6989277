"""Pigment: melanin index, Individual Typology Angle, evenness of tone.

References
----------
B. L. Diffey, R. J. Oliver, P. M. Farr, Br. J. Dermatol. 111(6), 663-672 (1984).
doi:10.1111/j.1365-2133.1984.tb14149.x (melanin index ``100 log10(1/R)``)

A. Chardon, I. Cretois, C. Hourseau, "Skin colour typology and suntanning pathways",
Int. J. Cosmet. Sci. 13(4), 191-208 (1991). doi:10.1111/j.1467-2494.1991.tb00561.x
"""

from __future__ import annotations

import cv2
import numpy as np

from ..imaging.filters import gaussian
from .analysis import Analysis
from .noise import calibrated_light_only
from .redness import (
    COLOUR_DISTANCE_TOLERANCE,
    COLOUR_JOB,
    LOG_FLOOR,
    WORK_SIDE,
    colour_level,
    colour_noise,
    colour_skin,
    lab_of,
    skin_mean,
)
from .registry import Panel, family, metric

#: Smoothing (mm) of the melanin map for evenness: removes pores and noise, keeps the
#: mottling and patches (1-10 mm) that make tone uneven.
EVENNESS_SIGMA_MM = 0.5
#: Largest scale ratio at which an evenness change is judged (`COLOUR_DISTANCE_TOLERANCE`,
#: tighter: a spread over a map also follows what the resolution resolves of it). On the
#: zoom re-captures evenness moved by 1.65 MI (floor 1.3) at a ratio of 1.27.
EVENNESS_RESOLUTION_TOLERANCE = 1.2

family("pigment", title="Pigment and tone", order=1)


def melanin_index_Diffey1984(linear: np.ndarray) -> np.ndarray:
    """Melanin index ``MI = 100 * log10(1 / R)`` of linear, calibrated RGB (float32).

    In the red, haemoglobin absorbs little, so red reflectance falls mainly with melanin.
    """
    red = np.ascontiguousarray(np.asarray(linear, dtype=np.float32)[..., 0])
    return cv2.log(cv2.max(red, LOG_FLOOR)) * np.float32(-100.0 / np.log(10.0))  # OpenCV: ~5x NumPy


def ita_Chardon1991(lab: np.ndarray) -> np.ndarray:
    """Individual Typology Angle ``ITA = atan2(L* - 50, b*)`` in degrees (float32).

    > 55 very light, 41-55 light, 28-41 intermediate, 10-28 tan, -30-10 brown, < -30 dark.
    """
    lab = np.asarray(lab, np.float32)
    flat = lab.reshape(-1, 3)
    # cv2.phase: atan2 in degrees in [0, 360), within 0.01 deg of NumPy's, ~10x faster
    ita = cv2.phase(np.ascontiguousarray(flat[:, 2]), flat[:, 0] - np.float32(50), angleInDegrees=True)
    ita[ita > 180] -= 360
    return ita.reshape(lab.shape[:-1])


def ita_map(an: Analysis) -> np.ndarray:
    """ITA of the working copy (cached)."""
    lv = colour_level(an)
    return lv.pointwise("ita", ita_Chardon1991, lv.lab)


def melanin_map(an: Analysis) -> np.ndarray:
    """Melanin index of the working copy (cached)."""
    lv = colour_level(an)
    return lv.pointwise("melanin_index", melanin_index_Diffey1984)


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
# Colour floors are the CALIBRATED ones (reference skin): uncalibrated, MI and ITA follow
# the exposure (Sw 7.4 MI, 8.4 deg) and ``compare`` warns. Calibrated MI/ITA still move
# with the light gradient between the reference skin and the ROI (100 log10(1 + g) MI:
# 3.3 MI at g = 8 %): these floors hold for gradients <= 8 %; under 12 % (run B) MI
# moves up to 6.6 and ITA up to 7.6 deg, which a reference skin cannot correct.
# Card-calibrated photos have floors of their own, by the same rule on the same protocol
# (``bench_repeatability.py --protocols light-pose --card --gradient 0.08 --vignetting 0.05
# --resolutions 0,1 --pairs 4``, seeds 0 and 3: 64 pairs, a ColorChecker at (0.8, 0.8) of
# the frame, each pair compared by the reference skin and by the card). The card cancels
# exposure and white balance as the reference does and keeps the same light field: MI
# moves by 100 log10(F_roi / F_calibrator) between the photos, F the light field
# (gradient and vignetting), and the card lies about as far from the ROI (0.56 frame
# heights) as the reference skin (0.52). On the same pairs MI has Sw 0.79 by the card
# (the light field's share explains it with correlation 0.91, residual RMS 0.49 MI: the
# card fit's own error) and 0.85 by the reference (0.997, residual 0.09 MI): 3.2 sqrt(2)
# Sw = 3.56 -> 3.6 MI (max |delta| 2.25). Four real photos of one card (``colorchecker/``:
# D65, TL84, CWF, 30 % exposure; ``bench_colour.py`` table 7) moved its two skin patches,
# each corrected by a fit that left it out, by 2.77 Sw = 3.5 MI (max 3.0) between photos:
# inside 3.6. ITA has Sw 1.04 by the card (0.89 by the reference): 4.71 -> 4.8 deg; the
# real card photos moved it by up to 22 deg (light skin under the 30 % exposure), so its
# card floor, like a*'s and EI's, holds for daylight-like light only (docs/NOISE.md).
# A card placed beside the ROI would see less of the light field than this layout.
# evenness (a log-ratio, gain-free) is set by the real portraits re-captured under other
# light (exposure x0.7-1.35, WB +-10 %, uncalibrated): 2.77 Sw = 1.20 with biden2 among
# them (its eyes found and its painting out of the mask, 2026-11-22; 0.87 before biden2
# was measured, 1.07 with the painting in its mask).


def mi_of(rgb: np.ndarray) -> float:
    """Melanin index of one linear RGB colour."""
    return float(100.0 * np.log10(1.0 / max(float(rgb[0]), LOG_FLOOR)))


def ita_of(rgb: np.ndarray) -> float:
    """ITA (degrees) of one linear RGB colour."""
    lab = lab_of(rgb)
    return float(np.degrees(np.arctan2(lab[0] - 50.0, lab[2])))


MI_MEAN_MDC, ITA_MEAN_MDC, EVENNESS_MDC = 4.0, 4.6, 1.3
#: Floors of a card-calibrated photo (`photokit.metrics.redness.colour_noise`'s
#: ``card_mdc``; see the comment above).
MI_MEAN_CARD_MDC, ITA_MEAN_CARD_MDC = 3.6, 4.8


@metric("pigment.mi_mean", unit="MI", mdc=MI_MEAN_MDC, better="neither", job=COLOUR_JOB, core=True,
        working_side=WORK_SIDE, resolution_tolerance=COLOUR_DISTANCE_TOLERANCE,
        noise=colour_noise(melanin_map, mi_of, MI_MEAN_MDC, MI_MEAN_CARD_MDC),
        zone_map=melanin_map, pih_sign=1.0,
        panel=Panel("Pigment (melanin index)", "YlOrBr", "BrBG_r", "lighter", "darker", "lighter",
                    "darker", pixels=lambda lv: melanin_index_Diffey1984(lv.linear)),
        description="mean melanin index 100*log10(1/R) on linear calibrated RGB")
def mi_mean(an: Analysis) -> float | None:
    return skin_mean(an, melanin_map(an))


@metric("pigment.ita_mean", unit="deg", mdc=ITA_MEAN_MDC, better="neither", job=COLOUR_JOB, core=True,
        working_side=WORK_SIDE, resolution_tolerance=COLOUR_DISTANCE_TOLERANCE,
        noise=colour_noise(ita_map, ita_of, ITA_MEAN_MDC, ITA_MEAN_CARD_MDC),
        zone_map=ita_map, pih_sign=-1.0,
        description="mean Individual Typology Angle atan2(L*-50, b*)")
def ita_mean(an: Analysis) -> float | None:
    return skin_mean(an, ita_map(an))


@metric("pigment.evenness", unit="MI", mdc=EVENNESS_MDC, better="lower", job=COLOUR_JOB, core=True,
        working_side=WORK_SIDE, resolution_tolerance=EVENNESS_RESOLUTION_TOLERANCE,
        pih_sign=1.0, noise=calibrated_light_only(EVENNESS_MDC),
        description=f"SD of the melanin index over skin, smoothed at {EVENNESS_SIGMA_MM:g} mm "
                    "(lower = more even)")
def evenness(an: Analysis) -> float | None:
    lv = colour_level(an)
    m = colour_skin(an)
    if m is None:
        return None
    # within the level's data box (its margin is wider than the smoothing kernel)
    box = lv.box or (slice(None), slice(None))
    mi, m = melanin_map(an)[box], m[box]
    # smoothing scale in pixels: from mm when the scale is known, else 1/400 of the long side
    sigma = (EVENNESS_SIGMA_MM / lv.mm_per_px) if lv.mm_per_px else max(lv.shape) / 400.0
    w = m.astype(np.float32)
    den = gaussian(w, sigma)
    smooth = cv2.divide(gaussian(cv2.multiply(mi, w), sigma), cv2.max(den, 1e-6))
    inner = cv2.bitwise_and(cv2.compare(den, 0.5, cv2.CMP_GT), m.view(np.uint8))
    if cv2.countNonZero(inner) < 20:
        return None
    return float(cv2.meanStdDev(smooth, mask=inner)[1][0, 0])   # population SD
