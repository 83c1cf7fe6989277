"""ColorChecker detection and colour-correction fit, against synthetic cards with known
geometry and colours, and photos without a card."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from numpy.testing import assert_allclose

from photokit import check, measure, synth
from photokit.checker import find_card, fit_card
from photokit.colorchecker import REFERENCE_LINEAR_SRGB
from photokit.colour import linear_to_srgb


@pytest.fixture(scope="module")
def carded():
    """Skin with a card in frame under a dim, warm light (exposure x0.7, WB change)."""
    return synth.render_skin(seed=3, card=True, exposure=0.7, wb_gains=(1.1, 1.0, 0.9))


def _truth_centres(im):
    card = im.truth.card
    key = "patch_centres" if "patch_centres" in card else "patch_centres_canonical"
    return np.asarray(card[key], float)


def test_card_found_where_the_truth_says(carded):
    card = find_card(carded.pixels)
    assert card is not None
    # the camera of this render is at the canonical pose? compare in photo pixels
    truth = _truth_centres(carded)
    assert np.median(np.linalg.norm(card.patch_centres - truth, axis=1)) < 3.0
    assert card.mask(carded.pixels.shape[:2])[tuple(np.round(truth[0, ::-1]).astype(int))]


def test_fit_recovers_a_known_camera_exactly():
    # a camera with gamma 2.2 encoding and a channel-mixing matrix, noise-free
    mix = np.array([[0.9, 0.08, 0.02], [0.05, 0.85, 0.1], [0.0, 0.1, 0.9]])
    cam = np.clip(REFERENCE_LINEAR_SRGB, 0, None) @ mix.T * 0.8
    codes = cam ** (1 / 2.2)
    for model in ("linear", "rootpoly"):
        fit = fit_card(codes, model=model)
        assert fit.delta_e_mean < 0.8, (model, fit.delta_e_mean)
        assert_allclose(fit.gamma, 2.2, rtol=0.08)


def test_fit_is_independent_of_encoding():
    lin = np.clip(REFERENCE_LINEAR_SRGB, 0, None) * 0.6
    srgb_coded = linear_to_srgb(lin.astype(np.float32)).astype(np.float64)
    assert fit_card(lin).delta_e_mean < 1.5          # linear sensor values
    assert fit_card(srgb_coded).delta_e_mean < 1.5   # sRGB-encoded values


def test_card_calibration_cancels_light_change(carded):
    plain = synth.render_skin(seed=3, card=True)
    a = measure(carded.pixels, roi=carded.mask("roi", "photo"))
    b = measure(plain.pixels, roi=plain.mask("roi", "photo"))
    assert a.calibration.method == b.calibration.method == "checker"
    assert a.calibration.delta_e_mean < 2.0
    truth = carded.truth.metrics["redness.a_mean"]
    assert abs(a.metrics["redness.a_mean"] - truth) < 1.0
    assert abs(a.metrics["redness.a_mean"] - b.metrics["redness.a_mean"]) < 1.0


def test_card_half_out_of_frame_is_not_found(carded):
    truth = _truth_centres(carded)
    cut = int(np.round(truth[:, 0].min() + 0.5 * np.ptp(truth[:, 0])))  # through the card
    assert find_card(carded.pixels[:, :cut].copy()) is None


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_no_card_in_ordinary_photos(name):
    assert find_card(getattr(skimage.data, name)()) is None


def test_check_reports_the_card(carded):
    cal = check(carded.pixels).calibration
    assert cal["method"] == "checker" and cal["delta_e_mean"] < 2.0
    assert check(skimage.data.astronaut()).calibration["method"] == "none"


def test_card_found_among_many_pore_sized_blobs():
    """Skin texture gives more small square-ish blobs than the card has patches; the card's
    own size group must still be tried (regression: the most common size was pores)."""
    im = synth.render_skin(seed=11, width=800, height=600, mm_per_px=0.1, card=True,
                           card_centre=(0.82, 0.78))
    card = find_card(im.pixels)
    assert card is not None
    truth = np.asarray(im.truth.card["corners"], float)
    # same outline, whatever corner the detector starts from
    d = np.linalg.norm(card.corners[:, None] - truth[None], axis=2).min(axis=1)
    assert d.max() < 0.12 * np.ptp(truth[:, 0])
    assert card.correction.delta_e_mean < 3.0
