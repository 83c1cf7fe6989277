"""Colour conversions against scikit-image and colour-science (reference implementations)."""

from __future__ import annotations

import colour
import numpy as np
import pytest
import skimage.color

from photokit.colour.convert import (
    lab_to_linear,
    linear_to_lab,
    linear_to_srgb,
    srgb_to_linear,
    uint8_to_linear,
)


@pytest.fixture
def linear_pixels():
    rng = np.random.default_rng(11)
    x = rng.random((64, 80, 3)).astype(np.float32) ** 2          # dense in the shadows
    x[0, :8] = [[0, 0, 0], [1, 1, 1], [1e-4, 2e-4, 5e-5], [0.008, 0.008, 0.008],
                [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.4, 0.3]]
    return x


def test_srgb_transfer_matches_colour_science():
    v = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(srgb_to_linear(v), colour.cctf_decoding(v.astype(np.float64), "sRGB"),
                               atol=2e-6)
    np.testing.assert_allclose(linear_to_srgb(v), colour.cctf_encoding(v.astype(np.float64), "sRGB"),
                               atol=2e-6)
    codes = np.arange(256, dtype=np.uint8).reshape(1, 256, 1).repeat(3, axis=2)
    np.testing.assert_allclose(uint8_to_linear(codes)[0, :, 0], srgb_to_linear(np.arange(256) / 255.0),
                               atol=1e-7)


def test_lab_matches_scikit_image_and_colour_science(linear_pixels):
    """In [0, 1] (OpenCV's path) and with one value above 1 (the formula's path)."""
    ref_sk = skimage.color.rgb2lab(linear_to_srgb(linear_pixels).astype(np.float64))
    xyz = colour.RGB_to_XYZ(linear_pixels.astype(np.float64), colour.RGB_COLOURSPACES["sRGB"],
                            illuminant=colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"])
    ref_cs = colour.XYZ_to_Lab(xyz, colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"])
    lifted = linear_pixels.copy()
    lifted[-1, -1] = [1.2, 1.1, 1.3]
    opencv, formula = linear_to_lab(linear_pixels), linear_to_lab(lifted)
    for lab, tol in ((opencv, 0.02), (formula, 0.005)):
        assert lab.dtype == np.float32 and lab.shape == linear_pixels.shape
        np.testing.assert_allclose(lab[:-1], ref_sk[:-1], atol=tol)
        # colour-science takes D65 from its chromaticity: 0.025 from scikit-image's white
        np.testing.assert_allclose(lab[:-1], ref_cs[:-1], atol=tol + 0.025)
    # above 1 nothing is clipped (L* > 100 for a lifted highlight)
    assert formula[-1, -1, 0] > 100.5
    # on skin tones the two paths agree closely
    rng = np.random.default_rng(2)
    skin = np.clip(rng.normal([0.35, 0.22, 0.15], [0.12, 0.08, 0.06], (5000, 3)), 0.005, 1)
    skin = skin.astype(np.float32)
    both = linear_to_lab(np.vstack([skin, [[1.2, 1.0, 1.0]]]))[:-1]
    np.testing.assert_allclose(linear_to_lab(skin), both, atol=0.002)
    # NaN stays NaN (OpenCV's path would turn it into a colour)
    holed = linear_pixels.copy()
    holed[3, 3, 1] = np.nan
    assert np.isnan(linear_to_lab(holed)[3, 3]).any()
    np.testing.assert_allclose(linear_to_lab(holed)[4:-1], formula[4:-1], atol=1e-5)
    # any (..., 3) shape
    np.testing.assert_allclose(linear_to_lab(linear_pixels[0]), linear_to_lab(linear_pixels)[0], atol=1e-6)


def test_lab_round_trip(linear_pixels):
    x = np.clip(linear_pixels, 0.01, 0.95)
    np.testing.assert_allclose(lab_to_linear(linear_to_lab(x)), x, atol=2e-3)
