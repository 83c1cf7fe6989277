"""Capture-quality checks against photos degraded on purpose."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from photokit import check, load
from photokit.measurement.quality import assess, noise_sigma_Immerkaer1996, sharpness_ratio


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


def test_sharpness_copy_is_one_area_average(astronaut):
    """A 12 MP-like frame whose side is near k x 1024 is reduced by the k x k block mean
    (exactly, up to rounding), and its sharpness agrees with the one-step area resize the
    thresholds were set on; other sizes keep that resize."""
    import photokit.measurement.quality as Q

    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    big = cv2.resize(gray, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    small = Q._small(big)
    assert small.shape == (750, 1000)
    blocks = big.reshape(750, 4, 1000, 4).mean(axis=(1, 3))
    assert np.abs(small.astype(float) - blocks).max() <= 0.5 + 1e-9
    for img in (big, cv2.GaussianBlur(big, (0, 0), 4.0)):
        a, b = sharpness_ratio(Q._small(img)), sharpness_ratio(
            cv2.resize(img, None, fx=1024 / 4000, fy=1024 / 4000, interpolation=cv2.INTER_AREA))
        assert abs(a / b - 1) < 0.04
    # sides that are no multiple of k: the whole blocks
    ragged = cv2.resize(gray, (4003, 3002), interpolation=cv2.INTER_CUBIC)
    blocks = ragged[:3000, :4000].reshape(750, 4, 1000, 4).mean(axis=(1, 3))
    assert np.abs(Q._small(ragged).astype(float) - blocks).max() <= 0.5 + 1e-9
    # a 1080p frame would be 960 px (6 % off): one resize by the exact factor
    assert Q._small(cv2.resize(gray, (1920, 1080))).shape == (576, 1024)
    # 3300 px: 3 x 1100 is 7.4 % off 1024, so one resize by the exact factor too
    odd = cv2.resize(gray, (3300, 2475), interpolation=cv2.INTER_CUBIC)
    assert Q._small(odd).shape == (768, 1024)


def test_colour_cast_is_read_on_a_colour_cards_greys():
    """With a card in frame the cast is measured on its greys, a surface known to be
    neutral: a skin close-up has no neutral surface of its own (the grey-pixel search
    finds none), and a strong cast (every neutral far from grey) escapes that search."""
    from photokit import synth
    from photokit.colour.convert import linear_to_srgb, uint8_to_linear

    im = synth.render_skin(seed=2, width=800, height=600, mm_per_px=0.1, card=True)
    plain = check(im.pixels)
    assert plain.calibration["method"] == "checker"
    cast = plain.quality.checks["colour_cast"]
    assert cast.verdict == "pass" and cast.value < 3.0 and cast.note == "on the colour card's greys"
    green = np.round(linear_to_srgb(uint8_to_linear(im.pixels) * np.float32([0.6, 1.0, 0.6])) * 255)
    tinted = check(green.astype(np.uint8)).quality.checks["colour_cast"]
    assert tinted.verdict == "warn" and tinted.value > 15 and "card's greys look tinted" in tinted.note
    # measure reads it on the card too: check and measure agree on one photo
    from photokit import measure

    warm = np.round(linear_to_srgb(uint8_to_linear(im.pixels) * np.float32([1.0, 0.8, 0.65])) * 255)
    warm = warm.astype(np.uint8)
    read = check(warm).quality.checks["colour_cast"]
    assert read.value > 6 and measure(warm, mm_per_px=0.1).quality.checks["colour_cast"] == read


def test_resolution_is_judged_at_the_scale_measure_finds():
    """A photo's resolution warns when its physical scale is coarse for pores and fine
    lines, whether the scale was given or found (the iris): before, only a given scale
    counted, so of two photos at 0.30 mm/px the one with a carried scale warned alone."""
    from photokit.measurement.quality import resolution_check

    assert resolution_check(1350, None).verdict == "pass"
    assert resolution_check(1350, 0.2).verdict == "pass"
    coarse = resolution_check(1350, 0.305)
    assert coarse.verdict == "warn" and coarse.note == "0.305 mm/px is coarse for pores and fine lines"
    assert resolution_check(400, 0.1).verdict == "fail"


def test_a_clipped_or_unreadable_card_grey_gives_no_cast():
    """A clipped grey reads neutral whatever the cast, and an unreadable one gives no
    number: neither decides the colour cast (the photo's own grey search does)."""
    from photokit.colour.calibration import neutral_chroma

    codes = np.full((24, 3), 0.5, np.float32)
    assert neutral_chroma(codes) == pytest.approx(0.0, abs=1e-3)
    tinted = codes.copy()
    tinted[19:23] = (0.4, 0.5, 0.4)
    assert neutral_chroma(tinted) > 5
    clipped = tinted.copy()
    clipped[19] = (1.0, 1.0, 1.0)
    assert neutral_chroma(clipped) is None
    assert neutral_chroma(np.full((24, 3), np.nan, np.float32)) is None
