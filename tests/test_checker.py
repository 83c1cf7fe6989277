"""ColorChecker detection and colour-correction fit, against synthetic cards with known
geometry and colours, and photos without a card."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from numpy.testing import assert_allclose

from photokit import check, measure, synth
from photokit.colour.checker import find_card, fit_card, leave_one_out
from photokit.colour.colorchecker import REFERENCE_LINEAR_SRGB
from photokit.colour.convert import linear_to_srgb


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


# --- the fit: perceptual objective, leave-one-out, tone weights (known cameras) -------

_MIX = np.array([[0.80, 0.15, 0.05], [0.10, 0.80, 0.10], [0.05, 0.25, 0.70]])


def _camera_codes(seed, *, light=(1.0, 1.0, 1.0), exposure=0.5, gamma=2.2, noise=0.3):
    """Patch means (0-1) of a known camera: channel mixing, light, exposure, a power-law
    encoding, Gaussian noise of `noise` codes, rounded to 8 bits."""
    rng = np.random.default_rng(seed)
    lin = np.clip(REFERENCE_LINEAR_SRGB, 0, None) @ _MIX.T * np.asarray(light) * exposure
    codes = lin ** (1 / gamma) * 255 + rng.normal(0, noise, lin.shape)
    return np.clip(np.round(codes), 0.5, 255) / 255


def test_local_de2000_model_matches_scikit_image():
    """The linearised CIEDE2000 the matrix refit minimises equals the exact formula
    (scikit-image) to first order at every reference colour."""
    from skimage.color import deltaE_ciede2000

    from photokit.colour.checker import _de2000_scales
    from photokit.colour.colorchecker import REFERENCE_LAB_D65

    d = np.random.default_rng(0).normal(0, 0.3, REFERENCE_LAB_D65.shape)
    approx = np.linalg.norm(np.einsum("nij,nj->ni", _de2000_scales(REFERENCE_LAB_D65), d), axis=1)
    exact = deltaE_ciede2000(REFERENCE_LAB_D65 + d, REFERENCE_LAB_D65)
    assert_allclose(approx, exact, rtol=0.03)


@pytest.mark.parametrize("objective", ["rgb", "de2000", "auto"])
def test_delta_e_is_the_exact_ciede2000_of_the_applied_correction(objective):
    """delta_e_mean (the residual reported to users) is recomputed independently: the
    correction applied to the patch codes, CIELAB, scikit-image's CIEDE2000."""
    from skimage.color import deltaE_ciede2000

    from photokit.colour.colorchecker import REFERENCE_LAB_D65
    from photokit.colour.convert import linear_to_lab

    codes = _camera_codes(1, light=(1.0, 0.9, 0.4), exposure=0.6, gamma=1.0)
    fit = fit_card(codes, objective=objective)
    lab = linear_to_lab(fit.apply_codes(codes.astype(np.float32))).astype(np.float64)
    expected = deltaE_ciede2000(lab, REFERENCE_LAB_D65)
    assert_allclose(fit.delta_e, expected, atol=2e-3)
    assert fit.delta_e_mean == pytest.approx(expected.mean(), abs=1e-3)


def test_de2000_objective_lowers_in_sample_and_held_out_error_on_a_known_camera():
    """gamma-2.2 camera with channel mixing, 0.3 code noise, 8-bit: refitting the matrix
    to the mean CIEDE2000 lowers the residual and the leave-one-out error (4 cards)."""
    cards = [_camera_codes(s) for s in range(4)]
    for model in ("linear", "rootpoly"):
        ins = {o: np.mean([fit_card(c, model=model, objective=o).delta_e_mean for c in cards])
               for o in ("rgb", "de2000")}
        loo = {o: np.mean([leave_one_out(c, model=model, objective=o).mean() for c in cards])
               for o in ("rgb", "de2000")}
        assert ins["de2000"] < ins["rgb"] - 0.03, (model, ins)
        assert loo["de2000"] < loo["rgb"], (model, loo)
        assert loo["de2000"] < 1.5


def test_auto_keeps_the_fit_with_the_lower_held_out_error():
    """The choice between the two objectives follows their leave-one-out errors, which are
    reported: a warm, dim light on a linear sensor (blue codes 1-40) with 0.6 code of
    noise, where the dE2000 fit chases the noise of the dark patches (RGB kept), and the
    mild gamma-2.2 camera (dE2000 kept)."""
    warm = dict(light=(1.0, 0.95, 0.25), exposure=0.7, gamma=1.0, noise=0.6)
    for codes, want in ((_camera_codes(0, **warm), "rgb"), (_camera_codes(2, **warm), "rgb"),
                        (_camera_codes(0), "de2000")):
        loo = {o: leave_one_out(codes, objective=o) for o in ("rgb", "de2000")}
        fit = fit_card(codes)
        best = min(loo, key=lambda o: loo[o].mean())
        assert fit.objective == best == want
        assert_allclose(fit.delta_e_loo, loo[best], atol=1e-6)
        assert fit.delta_e_loo_mean >= fit.delta_e_mean  # held out is never better here
        assert fit.to_dict()["delta_e_loo_mean"] == pytest.approx(fit.delta_e_loo_mean, abs=1e-3)


def test_leave_one_out_of_an_exact_camera_is_near_zero():
    """Noise-free, unquantised camera that the model can represent: held-out error ~0."""
    lin = np.clip(REFERENCE_LINEAR_SRGB, 0, None) @ _MIX.T * 0.8
    codes = lin ** (1 / 2.2)
    for model in ("linear", "rootpoly"):
        loo = leave_one_out(codes, model=model, objective="de2000")
        assert loo.mean() < 0.8, (model, loo.mean())


def test_tone_fit_recovers_gamma_from_dim_quantised_neutrals():
    """Dim exposure (white at code ~40, black at 1-2 for gamma 1, ~9 for gamma 2.2), 0.5
    code of noise, 8 bits: the precision-weighted fit of all six neutrals finds the
    encoding exponent (the unweighted fit of the five brightest missed it by 6-10%)."""
    from photokit.colour.checker import _fit_tone

    for gamma in (1.0, 2.2):
        lin = np.clip(REFERENCE_LINEAR_SRGB, 0, None) * 0.18 ** gamma
        codes = np.round(lin ** (1 / gamma) * 255 + np.random.default_rng(3).normal(0, 0.5, lin.shape))
        codes = np.maximum(codes, 0.5) / 255
        _, g = _fit_tone(codes, REFERENCE_LINEAR_SRGB, np.ones(24, bool))
        assert_allclose(g, gamma, rtol=0.04)


def test_fit_rejects_unknown_objective():
    with pytest.raises(ValueError, match="objective"):
        fit_card(np.full((24, 3), 0.5), objective="lab")
