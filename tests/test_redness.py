"""Redness metrics against constructed skin with known indices (and scikit-image)."""

from __future__ import annotations

import numpy as np
import skimage.color

from photokit.metrics.analysis import Analysis
from photokit.metrics.redness import RED_EXCESS_EI, a_mean, area_pct, ei_mean, red_threshold


def _skin(red_fraction: float, excess_ei: float, shape=(200, 300)):
    lin = np.empty(shape + (3,), np.float32)
    lin[:] = (0.50, 0.30, 0.25)
    n_red = int(round(red_fraction * shape[0]))
    lin[:n_red, :, 1] *= 10 ** (-excess_ei / 100)  # G down: EI up by excess_ei exactly
    return lin


def test_area_pct_counts_skin_above_its_own_baseline():
    lin = _skin(0.30, 10.0)
    an = Analysis(lin, np.ones(lin.shape[:2], bool), 0.1)
    base = 100 * np.log10(0.5 / 0.3)
    assert abs(red_threshold(an) - (base + RED_EXCESS_EI)) < 1e-3
    assert abs(area_pct(an) - 30.0) < 0.5
    # below the excess nothing counts as red
    an2 = Analysis(_skin(0.30, RED_EXCESS_EI - 2), np.ones(lin.shape[:2], bool), 0.1)
    assert area_pct(an2) == 0.0


def test_ei_and_a_means_match_direct_computation():
    rng = np.random.default_rng(0)
    lin = (rng.uniform(0.1, 0.7, (120, 160, 3))).astype(np.float32)
    mask = rng.random((120, 160)) > 0.3
    an = Analysis(lin, mask, 0.1)
    want_ei = np.mean(100 * np.log10(lin[..., 0] / lin[..., 1])[mask])
    assert abs(ei_mean(an) - want_ei) < 1e-3
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    want_a = skimage.color.rgb2lab(srgb.astype(np.float64))[..., 1][mask].mean()
    assert abs(a_mean(an) - want_a) < 0.02


def test_metrics_use_a_reduced_level_without_changing_the_mean():
    rng = np.random.default_rng(1)
    lin = rng.uniform(0.2, 0.6, (2400, 3200, 3)).astype(np.float32)
    lin[..., 1] *= 0.7
    an = Analysis(lin, np.ones(lin.shape[:2], bool), 0.05)
    # a* of the work level (area-averaged) equals a* of the mean colour to < 0.3
    got = a_mean(an)
    direct = skimage.color.rgb2lab(
        np.where(lin[::8, ::8] <= 0.0031308, 12.92 * lin[::8, ::8],
                 1.055 * lin[::8, ::8] ** (1 / 2.4) - 0.055))[..., 1].mean()
    assert abs(got - direct) < 0.3
