"""The noise model (photokit.metrics.noise): standard errors per photo, floors per pair."""

import math

import cv2
import numpy as np
import pytest

from photokit.comparison.sameskin import changes, holm_changes, verdict
from photokit.metrics import noise as N
from photokit.metrics import registry
from photokit.metrics.analysis import Analysis


def test_floor_is_the_mdc_of_a_difference():
    # equal SEs: 1.96 sqrt(2) Sw = 2.77 Sw (Weir 2005)
    assert N.noise_floor(1.0, 1.0) == pytest.approx(2.7718, abs=1e-4)
    assert N.noise_floor(3.0, 4.0) == pytest.approx(1.96 * 5.0, rel=1e-3)
    assert N.noise_floor(None, 1.0) is None


def test_default_standard_error_gives_back_the_registered_floor():
    m = registry.get("texture.roughness")
    se = m.standard_error(None, 1.0)
    assert N.noise_floor(se, se) == pytest.approx(m.mdc)
    # changes() without standard errors keeps the constant floors
    _, _, sig, floor = changes([m], {m.name: 1.0}, {m.name: 1.0 + 2 * m.mdc})
    assert floor[m.name] == m.mdc and sig[m.name] is True


def test_count_se_is_poisson_plus_capture():
    assert N.count_se([1.0] * 100, 1.0, 0.0) == pytest.approx(10.0)
    assert N.count_se([1.0] * 100, 1.0, 0.1) == pytest.approx(math.sqrt(100 + 100))
    # areas: compound Poisson, sqrt(sum a^2)
    assert N.count_se([2.0, 2.0, 2.0, 2.0], 0.5, 0.0) == pytest.approx(0.5 * 4.0)
    assert N.count_se([], 1.0, 0.06) == 0.0


def test_four_spots_gone_is_a_change_forty_of_four_hundred_is_not():
    se = N.count_se
    # 4 -> 0 spots: floor 1.96 sqrt(4 + 0.06^2 16) = 3.93 < 4
    assert N.noise_floor(se([1.0] * 4, 1, 0.06), se([], 1, 0.06)) < 4.0
    # 400 -> 360: floor 1.96 sqrt(400 + 576 + 360 + 467) = 83 > 40
    assert N.noise_floor(se([1.0] * 400, 1, 0.06), se([1.0] * 360, 1, 0.06)) > 40.0


def test_mean_se_needs_two_features():
    assert isinstance(N.mean_se([1.0], 0.05), str)
    x = np.random.default_rng(0).normal(10, 2, 400)
    assert N.mean_se(x, 0.0) == pytest.approx(x.std(ddof=1) / 20, rel=1e-6)


def test_tile_se_of_independent_tiles_and_too_little_skin():
    rng = np.random.default_rng(1)
    tiles = rng.normal(0, 1, (20, 20))
    values = np.kron(tiles, np.ones((8, 8)))      # 400 constant tiles of 8 px
    mask = np.ones_like(values, bool)
    assert N.tile_se(values, mask, 8) == pytest.approx(tiles.std(ddof=1) / 20, rel=1e-6)
    small = np.zeros_like(mask)
    small[:8, :16] = True
    assert "too little skin" in N.tile_se(values, small, 8)


def test_light_se_of_log_indices_is_exact():
    rgb = np.array([0.5, 0.3, 0.2])
    mi = N.light_se(lambda c: 100 * math.log10(1 / c[0]), rgb)
    ei = N.light_se(lambda c: 100 * math.log10(c[0] / c[1]), rgb)
    k = 100 / math.log(10)
    assert mi == pytest.approx(k * math.hypot(N.EXPOSURE_SD, N.WHITE_BALANCE_SD), rel=1e-4)
    # exposure cancels in a ratio: only the two channels' white balance is left
    assert ei == pytest.approx(k * math.sqrt(2) * N.WHITE_BALANCE_SD, rel=1e-4)


def test_holm_step_down():
    out = N.holm({"a": 0.001, "b": 0.03, "c": 0.04, "d": None})
    # 0.001 <= 0.05/3, 0.03 > 0.05/2: stops there (0.04 < 0.05 is not reached)
    assert out == {"a": True, "b": False, "c": False, "d": None}
    assert N.holm({"a": 0.01, "b": 0.02}) == {"a": True, "b": True}
    assert holm_changes({"x": 10.0, "y": 0.1}, {"x": 1.0, "y": 1.0}, {"x": 1.0, "y": 1.0}) == \
        {"x": True, "y": False}


def test_not_judged_verdict():
    assert verdict(1.0, None, "lower", "too little skin").text == "Not judged: too little skin"
    assert verdict(1.0, None, "lower").tone == "na"


def _skin(mm_per_px=0.1, size=200, calibrated=False, seed=0, method=None):
    rng = np.random.default_rng(seed)
    lin = np.clip(np.array([0.45, 0.3, 0.22], np.float32) + rng.normal(0, 0.01, (size, size, 3)),
                  0, 1).astype(np.float32)
    return Analysis(lin, np.ones((size, size), bool), mm_per_px, scale_source="user",
                    calibrated=calibrated, calibration_method=method)


def test_uncalibrated_colour_floor_carries_the_light():
    names = ["redness.a_mean", "redness.ei_mean", "pigment.mi_mean", "pigment.ita_mean"]
    mets = [registry.get(n) for n in names]
    cal, unc = _skin(calibrated=True), _skin(calibrated=False)
    vals = {m.name: m.compute(cal) for m in mets}
    se_c, why_c = N.standard_errors(cal, vals, mets)
    se_u, _ = N.standard_errors(unc, vals, mets)
    assert not why_c
    for m in mets:
        assert N.noise_floor(se_c[m.name], se_c[m.name]) == pytest.approx(m.mdc)
        assert se_u[m.name] > se_c[m.name]
    # MI follows the exposure: +-8 % between photos is up to 7 MI
    assert N.noise_floor(se_u["pigment.mi_mean"], se_u["pigment.mi_mean"]) > 5.0


def test_colour_floor_follows_the_calibration_method():
    from photokit.metrics import pigment, redness

    card_mdc = {"redness.a_mean": redness.A_MEAN_CARD_MDC, "redness.ei_mean": redness.EI_MEAN_CARD_MDC,
                "pigment.mi_mean": pigment.MI_MEAN_CARD_MDC, "pigment.ita_mean": pigment.ITA_MEAN_CARD_MDC}
    mets = [registry.get(n) for n in card_mdc]
    card, ref = _skin(calibrated=True, method="checker"), _skin(calibrated=True, method="reference")
    assert card.level(max_side=100).calibration_method == "checker"      # levels keep the method
    vals = {m.name: m.compute(card) for m in mets}
    se_card, _ = N.standard_errors(card, vals, mets)
    se_ref, _ = N.standard_errors(ref, vals, mets)
    for m in mets:
        # the reference skin keeps the registered floor; a card has the floor measured with one
        assert N.noise_floor(se_ref[m.name], se_ref[m.name]) == pytest.approx(m.mdc)
        assert N.noise_floor(se_card[m.name], se_card[m.name]) == pytest.approx(card_mdc[m.name])
    # a card corrects the light's colour less well than skin beside the ROI, its MI as well
    assert se_card["redness.a_mean"] > se_ref["redness.a_mean"]
    assert se_card["pigment.mi_mean"] < se_ref["pigment.mi_mean"]
    # not calibrated: no method, whatever is passed
    assert _skin(calibrated=False, method="checker").calibration_method is None


def test_colour_calibrated_in_one_photo_only_is_not_judged():
    why = N.mixed_calibration("checker", "none")
    assert "one photo only" in why and "BEFORE: checker" in why
    assert N.mixed_calibration("none", None) is None                 # both uncalibrated: the light model
    assert N.mixed_calibration("checker", "checker") is None
    assert N.mixed_calibration("reference", "reference") is None


def test_too_little_skin_is_not_judged():
    an = _skin(size=40)     # 4 x 4 mm: one tile
    m = registry.get("redness.a_mean")
    se, why = N.standard_errors(an, {m.name: m.compute(an)}, [m])
    assert se[m.name] is None and "too little skin" in why[m.name]



def test_light_beyond_the_model_is_not_judged():
    out = {"where": "outside the region"}
    assert N.beyond_light_model(dict(out, gain=1.05, dab=2.0)) is None
    why = N.beyond_light_model(dict(out, gain=0.62, dab=7.5))
    assert "exposure -38 %" in why and "--reference-roi" in why
    assert N.beyond_light_model({"where": "the region", "gain": 0.5, "dab": None}) is None
    assert N.is_light_dependent(registry.get("pigment.mi_mean"))
    assert not N.is_light_dependent(registry.get("texture.wrinkle_density"))


def test_ratio_se_finite_population():
    x = np.random.default_rng(2).normal(5, 1, 30)
    w = np.ones(30)
    assert N.ratio_se(x, w) == pytest.approx(x.std(ddof=1) / math.sqrt(30), rel=1e-9)
    assert N.ratio_se(x, w, 0.75) == pytest.approx(x.std(ddof=1) / math.sqrt(30) / 2, rel=1e-9)
    assert N.ratio_se(x, w, 1.0) == 0.0                 # the whole population: no sampling error
    with pytest.raises(ValueError):
        N.ratio_se([1.0], [1.0])


def _uneven_band(seed, n=800, mmpp=0.1, top=0.5):
    """Grey skin whose fine-band roughness grows from top to bottom (x6 with `top` 0.5;
    even with 3.0): a strip sample of it is a noisy estimate of the whole."""
    rng = np.random.default_rng(seed)
    amp = np.linspace(top, 3.0, n)[:, None]
    L = 60 + amp * cv2.GaussianBlur(rng.normal(0, 1, (n, n)).astype(np.float32), (0, 0), 2.0) * 4
    y = ((L + 16) / 116) ** 3
    return Analysis(np.repeat(y.astype(np.float32)[..., None], 3, axis=2), np.ones((n, n), bool), mmpp)


def test_band_noise_carries_the_strip_samples_error(monkeypatch):
    from photokit.metrics import texture as T

    rough = registry.get("texture.roughness")
    capture = rough.mdc / N.MDC_PER_SW
    budget = T.WORK_BUDGET_PX
    errors, ses = [], []
    for seed in range(5):
        monkeypatch.setattr(T, "WORK_BUDGET_PX", budget)
        whole = _uneven_band(seed)
        assert T.band(whole).work.core is None               # 0.64 MP: every pixel
        truth = rough.compute(whole)
        assert rough.standard_error(whole, truth) == pytest.approx(capture, rel=1e-12)
        monkeypatch.setattr(T, "WORK_BUDGET_PX", 200_000)     # now a strip sample
        an = _uneven_band(seed)
        assert T.band(an).work.core is not None
        blocks, share = T.sample_blocks(an)
        assert len(blocks) >= 4 and 0 < share < 1
        est = rough.compute(an)
        s_sample = math.sqrt(rough.standard_error(an, est) ** 2 - capture ** 2)
        errors.append(est - truth)
        ses.append(s_sample)
    # the sample misses the whole skin's value by less than its SE says (the SE treats the
    # systematic strips as a random sample: conservative on a smooth trend), and the SE
    # is several times smaller on even skin, where strips are good samples
    ses = np.array(ses)
    assert np.all(ses > 0) and np.max(np.abs(errors) / ses) < 2.0 and ses.max() < 0.1 * truth
    even = _uneven_band(0, top=3.0)
    s_even = math.sqrt(rough.standard_error(even, rough.compute(even)) ** 2 - capture ** 2)
    assert s_even < ses.min() / 3


def test_ratio_and_spread_colour_metrics_are_not_judged_beyond_the_light_model():
    # their floors were calibrated under ordinary light changes only (docs/NOISE.md)
    for name in ("pigment.evenness", "redness.area_pct"):
        m = registry.get(name)
        assert N.is_light_dependent(m)
        assert m.standard_error(object(), 1.0) == pytest.approx(m.mdc / N.MDC_PER_SW)
    assert not N.is_light_dependent(registry.get("texture.roughness"))


def _recaptured_counts(stat, sd, threshold, weights, n, rng):
    """Sums of `weights` over the features whose statistic, re-drawn with SD `sd`, passes."""
    draws = stat + rng.normal(0.0, 1.0, (n, stat.size)) * sd
    return (draws >= threshold) @ weights


def test_found_se_is_continuity_corrected():
    # a count moves in whole steps: equal SEs give a floor half a step wider (Yates)
    se = N.found_se(np.ones(10), np.full(10, 0.5), [], [])
    assert se == pytest.approx(math.sqrt(2.5) + 1 / (2 * math.sqrt(2) * N.Z95))
    assert N.noise_floor(se, se) == pytest.approx(N.noise_floor(math.sqrt(2.5), math.sqrt(2.5)) + 0.5)
    # the step of a covered area is the weight of the features that flicker, scaled with k
    se_a = N.found_se([2.0, 4.0, 6.0], [1.0, 0.5, 1.0], [], [], per_weight=0.5)
    assert se_a == pytest.approx(0.5 * (math.sqrt(0.25 * 16) + 4.0 / (2 * math.sqrt(2) * N.Z95)))
    # no feature flickers: the median weight
    se_c = N.found_se([2.0, 4.0, 6.0], [1.0, 1.0, 1.0], [], [], per_weight=0.5)
    assert se_c == pytest.approx(0.5 * 4.0 / (2 * math.sqrt(2) * N.Z95))
    assert N.found_se([], [], [], []) == 0.0


def test_found_se_predicts_the_flicker_of_recaptures():
    """Truth by simulation: features whose detection statistic varies between captures
    with a known SD. The SE `found_se` computes from ONE capture (the features found, the
    near misses, their margins) matches the SD of the count over many re-captures."""
    rng = np.random.default_rng(3)
    true_stat = np.r_[rng.uniform(8.5, 40, 60), rng.normal(8.0, 1.5, 25)]    # 25 near the threshold
    sd = np.full(true_stat.size, 1.2)
    truth = _recaptured_counts(true_stat, sd, 8.0, np.ones(true_stat.size), 4000, rng).std()
    predicted = []
    for _ in range(200):
        seen = true_stat + rng.normal(0, 1.2, true_stat.size)   # one capture
        found, near = seen >= 8.0, (seen < 8.0) & (seen >= 8.0 - 3 * 1.2)
        p = N.detection_p(seen - 8.0, sd)
        predicted.append(N.found_se(np.ones(found.sum()), p[found], np.ones(near.sum()), p[near],
                                    step=0.0))
    # the predictive detection probability (sqrt 2 SD) is slightly conservative: +12 % here
    assert truth <= np.mean(predicted) <= 1.25 * truth
    # the Poisson SE of the same count is several times larger: it resamples the features
    assert N.count_se(np.ones(70), 1.0, 0.0) > 2.5 * truth


def test_found_se_terms():
    # certain features: only the capture term and each weight's jitter remain
    assert N.found_se([1.0] * 50, [1.0] * 50, [], [], capture_cv=0.02, step=0.0) == pytest.approx(1.0)
    assert N.found_se([2.0, 2.0], [1.0, 1.0], [], [], jitter=0.5, per_weight=0.5, step=0.0) == pytest.approx(
        0.5 * math.sqrt(2 * 1.0))
    # one coin flip, found or missed alike: SD 0.5
    assert N.found_se([1.0], [0.5], [], [], step=0.0) == pytest.approx(0.5)
    assert N.found_se([], [], [1.0], [0.5], step=0.0) == pytest.approx(0.5)
    assert N.detection_p(0.0, 1.0) == pytest.approx(0.5)
    # predictive: the margin seen is one draw, a new capture differs by sqrt(2) SD
    p = N.detection_p(np.array([1.96 * math.sqrt(2)]), np.array([1.0]))
    assert p[0] == pytest.approx(0.975, abs=1e-3)


def test_found_mean_se_predicts_recaptured_means():
    """Truth by simulation: the mean value of the features found, re-captured."""
    rng = np.random.default_rng(5)
    stat = np.r_[rng.uniform(9, 30, 40), rng.normal(8.0, 1.0, 15)]
    value, sd = stat * 0.8, np.full(stat.size, 1.0)
    draws = stat + rng.normal(0, 1.0, (4000, stat.size))
    vals = value + rng.normal(0, 1.0, (4000, stat.size)) * 0.8   # each value's own jitter
    found = draws >= 8.0
    truth = ((vals * found).sum(1) / found.sum(1)).std()
    seen = stat + rng.normal(0, 1.0, stat.size)
    f, m = seen >= 8.0, (seen < 8.0) & (seen >= 5.0)
    p = N.detection_p(seen - 8.0, sd)
    se = N.found_mean_se(value[f], p[f], value[m], p[m], np.full(f.sum(), 0.8))
    assert se == pytest.approx(truth, rel=0.35)
    assert isinstance(N.found_mean_se([1.0], [1.0], [], [], [0.1]), str)


def test_an_expression_change_leaves_the_skins_structure_unjudged():
    """A smile moves lines, pores, spots and the skin's patterns, not the colour means:
    structure metrics (no per-pixel `zone_map`) are not judged across it, means are; an
    unchanged expression or none known (not a face pair) judges everything."""
    smile = {"changed": True, "smile_score": 0.54, "lip_opening": 0.13}
    judged = {m.name for m in registry.registered() if N.beyond_expression(m, smile) is None}
    assert judged == {"redness.a_mean", "redness.ei_mean", "pigment.mi_mean", "pigment.ita_mean"}
    why = N.beyond_expression(registry.get("spots.count"), smile)
    assert "expression changed (smile score +0.54" in why and "same, relaxed expression" in why
    for expression in (None, {}, {"changed": False, "smile_score": 0.01, "lip_opening": 0.0}):
        assert all(N.beyond_expression(m, expression) is None for m in registry.registered())
