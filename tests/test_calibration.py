"""calibrate(): reference-skin gains, card mode requirements, describe_calibration."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from photokit import PhotokitError, synth
from photokit.colour.calibration import calibrate, describe_calibration
from photokit.colour.convert import linear_to_srgb, uint8_to_linear
from photokit.io.photo import load


def _flat(rgb_lin, shape=(120, 160)):
    lin = np.ones(shape + (3,), np.float32) * np.asarray(rgb_lin, np.float32)
    px = (linear_to_srgb(lin) * 255 + 0.5).astype(np.uint8)
    return px, uint8_to_linear(px)


def test_reference_gain_maps_reference_skin_onto_target():
    px, lin = _flat((0.30, 0.20, 0.15))
    ref = np.zeros(lin.shape[:2], bool)
    ref[10:60, 10:60] = True
    target = np.array([0.45, 0.25, 0.20])
    out, cal = calibrate(px, mode="none", reference_mask=ref, reference_target=target)
    out = out.full()
    assert cal.method == "reference"
    np.testing.assert_allclose(out[ref].mean(axis=0), target, rtol=0.01)
    np.testing.assert_allclose(cal.gains, target / lin[ref].mean(axis=0), rtol=1e-6)
    d = cal.to_dict()
    assert d["method"] == "reference" and len(d["gains"]) == 3


def test_reference_without_target_only_records():
    px, lin = _flat((0.30, 0.20, 0.15))
    ref = np.ones(lin.shape[:2], bool)
    out, cal = calibrate(px, mode="none", reference_mask=ref)
    out = out.full()
    assert cal.gains is None and np.array_equal(out, lin)
    np.testing.assert_allclose(cal.reference_rgb, lin.reshape(-1, 3).mean(axis=0), rtol=1e-5)


def test_none_says_uncalibrated_and_checker_mode_requires_a_card():
    px, lin = _flat((0.30, 0.20, 0.15))
    _, cal = calibrate(px, mode="auto")
    assert cal.method == "none" and not cal.calibrated and "uncalibrated" in cal.note
    with pytest.raises(PhotokitError, match="no colour card"):
        calibrate(px, mode="checker")


def test_tiny_reference_roi_is_refused():
    px, lin = _flat((0.30, 0.20, 0.15))
    ref = np.zeros(lin.shape[:2], bool)
    ref[0, :5] = True
    with pytest.raises(PhotokitError, match="reference ROI"):
        calibrate(px, reference_mask=ref)


def test_card_calibration_recovers_true_skin_colour_under_a_wrong_light():
    """Card in frame, exposure x0.75 and a WB error: corrected skin matches the truth."""
    im = synth.render_skin(seed=2, width=800, height=600, mm_per_px=0.1, card=True,
                           exposure=0.75, wb_gains=(1.1, 1.0, 0.9))
    lin = uint8_to_linear(im.pixels)
    out, cal = calibrate(im.pixels)
    out = out.full()
    assert cal.method == "checker" and cal.delta_e_mean < 3.0
    roi = im.mask("roi")
    got = out[roi].mean(axis=0)
    raw = lin[roi].mean(axis=0)
    ideal = synth.render_skin(seed=2, width=800, height=600, mm_per_px=0.1, card=True,
                              camera=synth.Camera.ideal())
    want = uint8_to_linear(ideal.pixels)[ideal.mask("roi")].mean(axis=0)
    # the correction brings the skin within 5% of the ideal camera (the raw photo is 15-30% off)
    assert np.max(np.abs(got / want - 1)) < 0.05 < np.max(np.abs(raw / want - 1))


def test_describe_calibration_for_check():
    assert describe_calibration(load(np.zeros((64, 64), np.uint8)))["method"] == "none"
    im = synth.render_skin(seed=2, width=800, height=600, mm_per_px=0.1, card=True)
    d = describe_calibration(load(im.pixels))
    assert d["method"] == "checker" and d["delta_e_mean"] < 3.0 and len(d["card_corners"]) == 4
    # the held-out error is reported beside the in-sample residual, and is not below it
    assert d["delta_e_mean"] <= d["delta_e_loo_mean"] < 3.0
    _, cal = calibrate(im.pixels)
    assert cal.to_dict()["delta_e_loo_mean"] == d["delta_e_loo_mean"]


def test_clipped_reference_pixels_do_not_bias_the_gain():
    px, lin = _flat((0.30, 0.20, 0.15))
    px[:20] = 255  # a glare band inside the reference ROI
    lin = uint8_to_linear(px)
    ref = np.zeros(lin.shape[:2], bool)
    ref[:60] = True
    _, cal = calibrate(px, mode="none", reference_mask=ref, reference_target=(0.3, 0.2, 0.15))
    np.testing.assert_allclose(cal.reference_rgb, (0.30, 0.20, 0.15), rtol=0.01)


def test_mostly_clipped_reference_is_flagged():
    px, lin = _flat((0.30, 0.20, 0.15))
    px[:30] = 255
    ref = np.zeros(lin.shape[:2], bool)
    ref[:60] = True
    _, cal = calibrate(px, mode="none", reference_mask=ref)
    assert cal.extra["reference_clipped_pct"] == pytest.approx(50.0, abs=0.1)
    assert "clipped" in cal.to_dict()["warning"]


def test_card_calibration_under_a_warm_dim_light_with_a_mixing_camera():
    """Tungsten-like light (3200 K), exposure x0.5 and a channel-mixing camera: the card
    correction brings the skin within 6% of the ideal camera (raw: 70-80% off); the
    residual and its held-out counterpart are reported."""
    mix = np.array([[0.85, 0.12, 0.03], [0.08, 0.84, 0.08], [0.02, 0.15, 0.83]])
    im = synth.render_skin(seed=2, width=800, height=600, mm_per_px=0.1, card=True,
                           exposure=0.5, cct_k=3200, colour_matrix=mix)
    lin = uint8_to_linear(im.pixels)
    out, cal = calibrate(im.pixels)
    out = out.full()
    assert cal.method == "checker" and cal.delta_e_mean < 2.0
    corr = cal.card.correction
    assert corr.delta_e_mean <= corr.delta_e_loo_mean < 3.0
    roi = im.mask("roi")
    ideal = synth.render_skin(seed=2, width=800, height=600, mm_per_px=0.1, card=True,
                              camera=synth.Camera.ideal())
    want = uint8_to_linear(ideal.pixels)[ideal.mask("roi")].mean(axis=0)
    got, raw = out[roi].mean(axis=0), lin[roi].mean(axis=0)
    assert np.max(np.abs(got / want - 1)) < 0.06 < 0.5 < np.max(np.abs(raw / want - 1))


def test_coded_linear_levels_and_regions_equal_the_converted_photo():
    """A CodedLinear's level is the area resize of its converted photo, its region the
    crop, whatever the conversion (sRGB, a card correction, reference gains)."""
    from photokit.colour.linear import CodedLinear
    from photokit.metrics.analysis import Analysis

    im = synth.render_skin(seed=2, width=803, height=601, mm_per_px=0.1, card=True)
    coded, cal = calibrate(im.pixels)
    assert cal.method == "checker"
    for c in (coded, CodedLinear(im.pixels), coded.scaled((1.2, 1.0, 0.8))):
        full = c.full()
        assert full.shape == (601, 803, 3) and full.dtype == np.float32
        for f in (2, 3, 5):
            want = cv2.resize(full[: 601 // f * f, : 803 // f * f], (803 // f, 601 // f),
                              interpolation=cv2.INTER_AREA)
            np.testing.assert_allclose(c.reduced(f), want, rtol=1e-5, atol=1e-6)
        rows = np.array([3, 4, 5, 90, 91])
        np.testing.assert_array_equal(c.region(rows, 10, 60), full[rows, 10:60])
    np.testing.assert_allclose(CodedLinear(im.pixels).full(), uint8_to_linear(im.pixels))
    # an Analysis on codes gives the same levels as one on the converted array, and
    # makes the full array only when asked for
    mask = np.ones((601, 803), bool)
    lazy, eager = Analysis(coded, mask, 0.1), Analysis(coded.full(), mask, 0.1)
    np.testing.assert_allclose(lazy.level(0.3).linear, eager.level(0.3).linear, rtol=1e-5, atol=1e-6)
    assert lazy._linear is None
    np.testing.assert_array_equal(lazy.linear, eager.linear)


def test_reduced_linear_is_made_where_read_and_zero_outside_its_box():
    """A level of codes converts only the rows read; any rows, any box: the same values
    as the area resize of the converted photo inside the box, zero outside."""
    from photokit.colour.linear import CodedLinear, ReducedLinear

    im = synth.render_skin(seed=3, width=403, height=301, mm_per_px=0.1)
    coded = CodedLinear(im.pixels)
    eager = cv2.resize(coded.full()[:300, :402], (134, 100), interpolation=cv2.INTER_AREA)
    box = ((10, 70), (20, 120))
    inside = np.zeros((100, 134), bool)
    inside[10:70, 20:120] = True
    for b in (None, box):
        lv = ReducedLinear(coded, 3, b)
        want = eager if b is None else np.where(inside[..., None], eager, 0)
        np.testing.assert_allclose(lv.full(), want, rtol=1e-6, atol=1e-7)
        rows = np.array([0, 1, 2, 9, 10, 11, 50, 69, 70, 99])     # runs, crossing the box
        np.testing.assert_allclose(lv.region(rows, 5, 130), want[rows, 5:130], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(lv.region(slice(40, 60)), want[40:60], rtol=1e-6, atol=1e-7)
        # a level of this level: the area resize of the level
        np.testing.assert_allclose(lv.reduced(2), cv2.resize(want, (67, 50), interpolation=cv2.INTER_AREA),
                                   rtol=1e-5, atol=1e-6)


def test_card_calibrated_measurement_has_the_card_floors():
    from photokit.comparison.sameskin import calibration_of
    from photokit.measurement.measure import measure
    from photokit.metrics import pigment, redness
    from photokit.metrics.noise import noise_floor

    im = synth.render_skin(seed=2, width=800, height=600, mm_per_px=0.1, card=True)
    names = ["redness.a_mean", "pigment.mi_mean"]
    floors = {}
    for how, ref in (("auto", None), ("none", im.mask("reference"))):
        m = measure(im.pixels, roi=im.mask("roi"), reference_roi=ref, mm_per_px=0.1, calibration=how,
                    metrics=names)
        floors[calibration_of(m)["method"]] = {n: noise_floor(m.standard_error[n], m.standard_error[n])
                                               for n in names}
    assert floors["checker"] == pytest.approx({"redness.a_mean": redness.A_MEAN_CARD_MDC,
                                               "pigment.mi_mean": pigment.MI_MEAN_CARD_MDC})
    assert floors["reference"] == pytest.approx({"redness.a_mean": redness.A_MEAN_MDC,
                                                 "pigment.mi_mean": pigment.MI_MEAN_MDC})
