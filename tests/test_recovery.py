"""Recovery fits and trends against curves with a known time constant."""

from __future__ import annotations

import math

import numpy as np
import pytest

from photokit.comparison.sameskin import percent_change
from photokit.metrics import Metric
from photokit.series.recovery import MDC_PER_SW, days_below, fit_recovery, trend, worsening

DAYS = np.array([0.3, 1.0, 2.5, 4.0, 6.5, 27.0])


def curve(tau, *, pre=10.0, amp=6.0, offset=0.0, t=DAYS):
    return pre + offset + amp * np.exp(-t / tau)


@pytest.mark.parametrize("tau", [1.0, 2.0, 3.0, 4.0])
def test_noise_free_fit_is_exact(tau):
    y = curve(tau)
    fit = fit_recovery(DAYS, y, mdc=0.8, pre_level=10.0, metric="redness.a_mean")
    assert fit.ok and fit.model == "fixed"
    assert fit.tau_days == pytest.approx(tau, rel=1e-4)
    assert fit.amplitude == pytest.approx(6.0, rel=1e-4)
    assert fit.days_to_baseline == pytest.approx(tau * math.log(6.0 / 0.8), rel=1e-3)
    assert not fit.persistent
    assert np.allclose(fit.predict(DAYS), y, atol=1e-4)


def test_noisy_fits_within_20pct_at_low_noise():
    # ROI means of a* repeat to ~0.1 a* on well-calibrated photos: tau is then within 20%.
    rng = np.random.default_rng(7)
    t = np.array([0.5, 1.0, 3.0, 5.0, 7.0])
    for tau in (1.0, 2.0, 3.0, 4.0):
        errs = [abs(fit_recovery(t, curve(tau, t=t) + rng.normal(0, 0.1, t.size), mdc=0.8,
                                 pre_level=10.0).tau_days - tau) / tau for _ in range(40)]
        assert max(errs) < 0.20, (tau, max(errs))


def test_interval_covers_truth_at_the_noise_floor():
    # With capture noise at the metric's own floor (Sw = MDC/2.77) the error is larger, and
    # the 95% interval must say so: it covers the truth about 95% of the time.
    mdc = 0.8
    sw = mdc / MDC_PER_SW
    rng = np.random.default_rng(11)
    t = np.array([0.5, 1.0, 3.0, 5.0, 7.0])
    covered = n = 0
    for tau in (1.0, 2.0, 3.0, 4.0):
        for _ in range(60):
            fit = fit_recovery(t, curve(tau, t=t) + rng.normal(0, sw, t.size), mdc=mdc,
                               pre_level=10.0)
            assert fit.ok
            covered += fit.tau_ci[0] <= tau <= fit.tau_ci[1]
            n += 1
    assert 0.88 <= covered / n <= 0.99, covered / n


def test_free_asymptote_detects_unresolved_redness():
    t = np.array([0.5, 1.5, 3.0, 6.0, 10.0, 14.0, 20.0])
    y = curve(2.0, t=t, offset=3.0)  # settles 3 a* above where it started
    fit = fit_recovery(t, y, mdc=0.8, pre_level=10.0)
    assert fit.ok and fit.model == "free"
    assert fit.y_inf == pytest.approx(13.0, abs=0.05)
    assert fit.days_to_baseline is None and fit.persistent
    assert "not resolved" in fit.reason


def test_slow_recovery_is_flagged_persistent():
    t = np.array([0.5, 2.0, 6.0, 13.0, 16.0])
    fit = fit_recovery(t, curve(8.0, t=t), mdc=0.8, pre_level=10.0)
    assert fit.ok and fit.tau_days == pytest.approx(8.0, rel=1e-3)
    assert fit.days_to_baseline > 12 and fit.persistent
    quick = fit_recovery(t, curve(1.5, t=t), mdc=0.8, pre_level=10.0)
    assert not quick.persistent


@pytest.mark.parametrize("t,y,pre,why", [
    ([1.0], [15.0], 10.0, "at least two dates"),
    ([0.5, 2.0, 5.0], [10.2, 10.1, 9.9], 10.0, "no rise above the noise floor"),
    ([0.5, 2.0, 5.0], [15.0, 12.0, 10.5], None, "no pre-treatment level"),
    ([1.0, 1.0], [15.0, 14.0], 10.0, "at least two dates"),
    # the treatment day and a photo a month later: any tau fits both, and the "days to
    # settle" it would give is extrapolation (it raised a false flag: QA, 2026-12-08)
    ([0.1, 30.0], [15.0, 10.1], 10.0, "the decay is not sampled"),
    ([0.1, 25.0, 30.0], [15.0, 10.2, 10.1], 10.0, "1 photo(s) within 12 days"),
])
def test_unsupported_fits_are_null_with_reason(t, y, pre, why):
    fit = fit_recovery(t, y, mdc=0.8, pre_level=pre)
    assert fit.status == "none" and fit.tau_days is None and why in fit.reason
    d = fit.to_dict()
    assert d["tau_days"] is None and d["reason"]


def test_days_below():
    assert days_below(6.0, 2.0, 0.0, 0.8) == pytest.approx(2.0 * math.log(7.5))
    assert days_below(0.5, 2.0, 0.0, 0.8) == 0.0
    assert days_below(6.0, 2.0, 0.9, 0.8) is None


M = Metric("texture.roughness", "L*", "", mdc=0.3, better="lower", needs_colour=False,
           needs_scale=False, compute=lambda a: 0.0)


def test_trend_percent_and_significance():
    pts = [("v1.jpg", "2024-02-01", 31, 4.8), ("v2.jpg", "2024-03-01", 60, 4.0)]
    tr = trend(M, 5.0, pts)
    assert tr.percent_change == pytest.approx(-20.0)
    assert tr.delta == pytest.approx(-1.0) and tr.significant and tr.improved
    assert tr.points[0].significant is False  # -0.2 is inside the 0.3 noise floor
    flat = trend(M, 5.0, [("v.jpg", "d", 30, 5.1)])
    assert flat.significant is False and flat.improved is False
    worse = trend(M, 5.0, [("v.jpg", "d", 30, 6.0)])
    assert worse.significant and worse.improved is False
    assert trend(M, 5.0, []).reason and trend(M, 5.0, []).percent_change is None
    # each visit's own floor against baseline (its pair's judgement); None: not judged
    own = trend(M, 5.0, [("v1.jpg", "d", 30, 4.0, 1.5), ("v2.jpg", "d", 60, 4.0, None)])
    assert own.points[0].significant is False and own.points[0].noise_floor == 1.5
    assert own.significant is None and own.improved is None and own.delta == pytest.approx(-1.0)
    # an unjudged latest visit says why, in the pair's words (it said nothing: QA, 2026-12-08)
    assert own.reason == "not judged: no noise floor for this pair"
    why = trend(M, 5.0, [("v1.jpg", "d", 30, 4.0, 1.5, None), ("v2.jpg", "d", 60, 4.0, None, "no scale")])
    assert why.reason == "not judged: no scale"
    judged_last = [("v1.jpg", "d", 30, 4.0, None, "x"), ("v2.jpg", "d", 60, 4.0, 1.5, None)]
    assert trend(M, 5.0, judged_last).reason is None
    assert percent_change(0.0, 1.0) is None
    assert worsening(M, 5.0, 5.5) and not worsening(M, 5.0, 5.2) and not worsening(M, 5.0, 4.0)
