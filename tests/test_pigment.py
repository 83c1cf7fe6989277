"""Pigment metrics and the chromophore separation against constructed optical densities."""

from __future__ import annotations

import numpy as np

from photokit.colour.chromophores import V_HAEMOGLOBIN, V_MELANIN, chromophore_maps
from photokit.metrics.analysis import Analysis
from photokit.metrics.pigment import evenness, ita_mean, mi_mean


def _od_skin(c_mel, c_hb, shading, shape=(100, 100)):
    od = (np.asarray(c_mel, np.float32)[..., None] * V_MELANIN
          + np.asarray(c_hb, np.float32)[..., None] * V_HAEMOGLOBIN
          + np.asarray(shading, np.float32)[..., None])
    return np.exp(-od).astype(np.float32) * np.ones(shape + (3,), np.float32)


def test_separation_recovers_chromophores_and_ignores_shading():
    rng = np.random.default_rng(0)
    c_mel = rng.uniform(0.3, 0.8, (100, 100))
    c_hb = rng.uniform(0.2, 0.6, (100, 100))
    shading = rng.uniform(0.0, 0.5, (100, 100))
    mel, hb = chromophore_maps(_od_skin(c_mel, c_hb, shading))
    k = 100 / np.log(10)
    # documented units: melanin as the MI change, haemoglobin as the EI change it alone causes
    np.testing.assert_allclose(mel - mel.mean(), k * V_MELANIN[0] * (c_mel - c_mel.mean()), atol=1e-2)
    np.testing.assert_allclose(hb - hb.mean(),
                               k * (V_HAEMOGLOBIN[1] - V_HAEMOGLOBIN[0]) * (c_hb - c_hb.mean()), atol=1e-2)


def test_mi_and_ita_means():
    lin = np.ones((80, 80, 3), np.float32) * np.array([0.40, 0.28, 0.22], np.float32)
    an = Analysis(lin, np.ones((80, 80), bool), 0.1)
    assert abs(mi_mean(an) - 100 * np.log10(1 / 0.40)) < 1e-3
    lab = an.lab[0, 0]
    assert abs(ita_mean(an) - np.degrees(np.arctan2(lab[0] - 50, lab[2]))) < 0.02  # cv2.phase: ~0.01 deg


def test_evenness_zero_on_even_skin_and_grows_with_mottling():
    shape = (300, 300)
    flat = _od_skin(np.full(shape, 0.5), np.full(shape, 0.4), 0.0, shape)
    mask = np.ones(shape, bool)
    assert evenness(Analysis(flat, mask, 0.1)) < 1e-3
    yy, xx = np.mgrid[:300, :300]
    values = []
    for amp in (0.05, 0.1, 0.2):  # 3 mm melanin mottling of growing amplitude
        c = 0.5 + amp * np.sin(2 * np.pi * xx * 0.1 / 3.0) * np.sin(2 * np.pi * yy * 0.1 / 3.0)
        values.append(evenness(Analysis(_od_skin(c, np.full(shape, 0.4), 0.0, shape), mask, 0.1)))
    # truth: MI amplitude k*v_m[0]*amp, SD of a product of two sines = amplitude / 2, times
    # the Gaussian (0.5 mm = 5 px) attenuation exp(-2 pi^2 s^2 (fx^2 + fy^2)) at 1/30 px^-1
    from photokit.metrics.pigment import EVENNESS_SIGMA_MM

    s = EVENNESS_SIGMA_MM / 0.1
    atten = np.exp(-2 * np.pi ** 2 * s ** 2 * 2 / 30.0 ** 2)
    for amp, got in zip((0.05, 0.1, 0.2), values, strict=True):
        want = 100 / np.log(10) * V_MELANIN[0] * amp * 0.5 * atten
        assert abs(got / want - 1) < 0.15
