"""Capture-quality checks against photos degraded on purpose."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from photokit import check, load
from photokit.quality import assess, noise_sigma_Immerkaer1996, sharpness_ratio


def _verdicts(img):
    return {k: c.verdict for k, c in assess(load(img)).checks.items()}


def test_clean_portrait_passes(astronaut):
    rep = assess(load(astronaut))
    assert rep.ok
    v = {k: c.verdict for k, c in rep.checks.items()}
    assert v["sharpness"] == v["noise"] == v["highlights_clipped"] == v["brightness"] == "pass"
    assert v["colour_cast"] == "pass"
    assert v["resolution"] == "warn"  # 512 px short side: usable, not ideal


@pytest.mark.parametrize("sigma,expected", [(0.0, "pass"), (2.0, "fail")])
def test_blur_lowers_sharpness(astronaut, sigma, expected):
    img = cv2.GaussianBlur(astronaut, (0, 0), sigma) if sigma else astronaut
    assert _verdicts(img)["sharpness"] == expected


def test_sharpness_monotonic_in_blur(astronaut):
    g = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    values = [sharpness_ratio(cv2.GaussianBlur(g, (0, 0), s) if s else g) for s in (0, 0.7, 1.4, 2.8)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_under_and_over_exposure(astronaut):
    dark = (astronaut.astype(np.float32) * 0.12).astype(np.uint8)
    v = assess(load(dark)).checks["brightness"]
    assert v.verdict in ("warn", "fail") and "dark" in v.note
    bright = np.clip(astronaut.astype(np.float32) * 3.0, 0, 255).astype(np.uint8)
    rep = assess(load(bright))
    assert rep.checks["highlights_clipped"].verdict == "fail" and not rep.ok


def test_colour_cast_detected(astronaut):
    cast = np.clip(astronaut.astype(np.float32) * [1.1, 1.0, 0.9], 0, 255).astype(np.uint8)
    assert _verdicts(cast)["colour_cast"] == "warn"
    before = assess(load(astronaut)).checks["colour_cast"].value
    assert assess(load(cast)).checks["colour_cast"].value > before + 4


def test_noise_estimate_tracks_added_noise(rng):
    flat = np.full((400, 400), 128, np.float32)
    for sigma in (2.0, 5.0, 10.0):
        noisy = np.clip(flat + rng.normal(0, sigma, flat.shape), 0, 255)
        assert noise_sigma_Immerkaer1996(noisy) == pytest.approx(sigma, rel=0.1)


def test_noisy_photo_fails(astronaut, rng):
    noisy = np.clip(astronaut + rng.normal(0, 12, astronaut.shape), 0, 255).astype(np.uint8)
    assert _verdicts(noisy)["noise"] == "fail"


def test_small_photo_fails_resolution(astronaut):
    small = cv2.resize(astronaut, (300, 300), interpolation=cv2.INTER_AREA)
    assert _verdicts(small)["resolution"] == "fail"


def test_greyscale_cast_not_applicable(astronaut):
    g = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    assert _verdicts(g)["colour_cast"] == "n/a"


def test_check_result_shape(astronaut):
    d = check(astronaut).to_dict()
    assert set(d) >= {"image", "quality", "calibration"}
    assert set(d["quality"]) == {"ok", "checks"}
    assert {"value", "threshold", "verdict"} <= set(d["quality"]["checks"]["sharpness"])
    assert d["calibration"]["method"] in ("checker", "none")
