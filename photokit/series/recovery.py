"""Recovery after a treatment, and improvement over a course: the two clocks of a series.

Pure functions of plain arrays (days, values) and a metric's noise floor; `series.py` feeds
them with measurements. Two questions are answered here:

* **Recovery** ("is the skin recovering as expected after this session?"): the redness
  excess after a treatment is fitted with a single-exponential return towards its
  asymptote, ``y(t) = y_inf + A * exp(-t / tau)``, the first-order wound-healing model
  used for post-procedure erythema. `fit_recovery` gives ``tau`` with its uncertainty and
  the time until the excess over the pre-treatment level falls below the metric's minimal
  detectable change (MDC).
* **Improvement** ("is the course working?"): `trend` compares a metric at visits outside
  the acute window with baseline, as a percent change whose significance is judged
  against the MDC (a change smaller than the MDC is not a change).

References
----------
.. [1] Weir JP (2005). Quantifying test-retest reliability using the intraclass correlation
   coefficient and the SEM. J Strength Cond Res 19(1):231-240 (MDC = 1.96 * sqrt(2) * SEM
   = 2.77 * Sw). doi:10.1519/15184.1
.. [2] Press WH et al. (2007). Numerical Recipes, 3rd ed., sec. 15.5-15.6: non-linear
   least squares, the covariance matrix of fitted parameters and confidence limits.
.. [3] Alster TS, Graham PM (2018). Microneedling: a review and practical guide.
   Dermatol Surg 44(3):397-404 (erythema fades in 1-3 days; persisting redness is a
   complication). doi:10.1097/DSS.0000000000001248
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..comparison.sameskin import percent_change

#: MDC = 2.77 * Sw (Weir 2005), so the within-subject SD of one capture is MDC / 2.77.
MDC_PER_SW = 2.77

#: Redness still above the noise floor this many days after a session is a complication sign.
PERSISTENT_REDNESS_DAYS = 12.0

#: Bounds on the fitted time constant, in days (hours to two months).
TAU_BOUNDS = (0.05, 60.0)


@dataclass
class RecoveryFit:
    """The fitted return of a metric towards its asymptote after one treatment.

    Attributes
    ----------
    metric : str
        Metric name, e.g. ``redness.a_mean``.
    status : str
        ``"ok"`` (fitted) or ``"none"`` (no fit: see `reason`).
    reason : str or None
        Why there is no fit, or a caveat on an ok fit.
    model : str or None
        ``"fixed"`` (asymptote held at the pre-treatment level; two parameters) or
        ``"free"`` (asymptote fitted; three parameters).
    tau_days, tau_std : float or None
        Time constant and its standard error (days).
    tau_ci : tuple of float or None
        95% confidence interval of tau (log-normal, from the covariance).
    amplitude, amplitude_std : float or None
        Excess ``A`` at t = 0 above the asymptote, in metric units.
    y_inf, y_inf_std : float or None
        Asymptote (``y_inf_std`` is 0 for the fixed model).
    pre_level : float or None
        The level before the treatment: the latest usable photo before the session that
        is outside an earlier session's acute window, else the baseline.
    days_to_baseline : float or None
        Days from the treatment until the fitted excess over `pre_level` falls below the
        MDC; None when it never does (``reason`` says so).
    days_to_baseline_ci : tuple of float or None
        95% interval of `days_to_baseline` from parameter draws.
    chi2_red : float or None
        Reduced chi-square of the residuals against the metric's capture noise
        (about 1 when the model and the noise floor agree).
    persistent : bool
        Excess above the MDC observed (or fitted) beyond `PERSISTENT_REDNESS_DAYS`.
    t, y : ndarray
        The points used (days since the treatment, metric values).
    """

    metric: str
    status: str
    reason: str | None = None
    model: str | None = None
    tau_days: float | None = None
    tau_std: float | None = None
    tau_ci: tuple[float, float] | None = None
    amplitude: float | None = None
    amplitude_std: float | None = None
    y_inf: float | None = None
    y_inf_std: float | None = None
    pre_level: float | None = None
    mdc: float | None = None
    days_to_baseline: float | None = None
    days_to_baseline_ci: tuple[float, float] | None = None
    chi2_red: float | None = None
    persistent: bool = False
    t: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    y: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def predict(self, t) -> np.ndarray:
        """The fitted curve at days `t` (NaN when there is no fit)."""
        t = np.asarray(t, dtype=float)
        if not self.ok:
            return np.full_like(t, np.nan)
        return recovery_model(t, self.y_inf, self.amplitude, self.tau_days)

    def to_dict(self) -> dict:
        def r(x, nd=3):
            return None if x is None else round(float(x), nd)

        return {
            "metric": self.metric, "status": self.status, "reason": self.reason,
            "model": self.model, "tau_days": r(self.tau_days), "tau_std": r(self.tau_std),
            "tau_ci": None if self.tau_ci is None else [r(v) for v in self.tau_ci],
            "amplitude": r(self.amplitude), "amplitude_std": r(self.amplitude_std),
            "y_inf": r(self.y_inf), "y_inf_std": r(self.y_inf_std),
            "pre_level": r(self.pre_level), "mdc": r(self.mdc),
            "days_to_baseline": r(self.days_to_baseline),
            "days_to_baseline_ci": (None if self.days_to_baseline_ci is None
                                    else [r(v) for v in self.days_to_baseline_ci]),
            "chi2_red": r(self.chi2_red), "persistent": bool(self.persistent),
            "n_points": int(len(self.t)),
        }


def recovery_model(t, y_inf, amplitude, tau):
    r"""Single-exponential recovery :math:`y(t) = y_\infty + A\,e^{-t/\tau}`.

    Parameters
    ----------
    t : array_like
        Days since the treatment.
    y_inf, amplitude, tau : float
        Asymptote, excess at ``t = 0`` and time constant (days).
    """
    return y_inf + amplitude * np.exp(-np.asarray(t, dtype=float) / tau)


def days_below(amplitude: float, tau: float, offset: float, mdc: float) -> float | None:
    r"""Days until ``offset + A exp(-t/tau)`` falls to the noise floor `mdc`.

    :math:`t^* = \tau \ln(A / (\mathrm{MDC} - d))` where ``d = offset`` is the asymptote's
    excess over the pre-treatment level; 0 when the excess starts below the floor and
    None when the asymptote itself stays at or above it (never resolves).
    """
    room = mdc - offset
    if room <= 0:
        return None
    if amplitude <= room:
        return 0.0
    return float(tau * math.log(amplitude / room))


def fit_recovery(t, y, *, mdc: float, pre_level: float | None = None, metric: str = "",
                 persistent_after: float = PERSISTENT_REDNESS_DAYS, n_draws: int = 2000,
                 seed: int = 0) -> RecoveryFit:
    r"""Fit the return of a metric towards its pre-treatment level after one treatment.

    Model: :math:`y(t) = y_\infty + A\,e^{-t/\tau}` with ``t`` in days since the
    treatment. When the pre-treatment level :math:`y_0` is known, the asymptote is first
    held at it (two parameters, the question being "how fast does it come back?"); when
    there are at least four points the asymptote is also fitted freely, and that model is
    kept when its asymptote lies above :math:`y_0` by more than both the MDC and twice its
    standard error (redness that settles above where it started).

    Each point is weighted by the capture noise of the metric,
    :math:`\sigma = \mathrm{MDC}/2.77` (the within-subject SD of repeated captures [1]_),
    and the parameter covariance is taken with that absolute sigma [2]_, so the
    uncertainty holds even for three points. ``days_to_baseline`` is
    :math:`\tau\ln(A/(\mathrm{MDC} - (y_\infty - y_0)))`; its 95% interval comes from
    draws of the parameters from their covariance.

    Parameters
    ----------
    t, y : array_like
        Days since the treatment (>= 0) and the metric at those days; points before the
        next treatment only. NaNs are dropped.
    mdc : float
        The metric's minimal detectable change.
    pre_level : float, optional
        The level before the treatment. Without it the asymptote is always fitted
        (needs four points) and `days_to_baseline` is relative to the asymptote.
    metric : str
        Name carried into the result.
    persistent_after : float
        Days after which an excess above the MDC is flagged as persistent.
    n_draws, seed : int
        Parameter draws for the `days_to_baseline` interval.

    Returns
    -------
    RecoveryFit
        ``status="none"`` with a reason when the points cannot support a fit.

    References
    ----------
    .. [1] Weir JP (2005). J Strength Cond Res 19(1):231-240. doi:10.1519/15184.1
    .. [2] Press WH et al. (2007). Numerical Recipes, 3rd ed., sec. 15.6.
    """
    t = np.asarray(t, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    keep = np.isfinite(t) & np.isfinite(y) & (t >= 0)
    t, y = t[keep], y[keep]
    order = np.argsort(t, kind="stable")
    t, y = t[order], y[order]
    mdc = float(mdc)
    sw = mdc / MDC_PER_SW if mdc > 0 else max(float(np.std(y)), 1e-6)
    res = RecoveryFit(metric=metric, status="none", pre_level=pre_level, mdc=mdc, t=t, y=y)
    ref = pre_level

    def observed_persistent(level):
        late = t > persistent_after
        return bool(level is not None and np.any(y[late] - level > mdc))

    if len(t) < 2 or len(np.unique(np.round(t, 3))) < 2:
        res.reason = (f"{len(t)} photo(s) after this treatment: a recovery curve needs at least "
                      "two dates (e.g. day 0-1 and day 2-7)")
        res.persistent = observed_persistent(ref)
        return res
    early = t[t <= persistent_after]
    if len(np.unique(np.round(early, 3))) < 2:
        # a curve through the treatment day and a photo after the redness has settled fits
        # any tau (day 0 and day 30: tau 5.2 d, 95 % interval 0.4-64), and its "days to
        # settle" is extrapolation (it raised a false persistent-redness flag: QA, 2026-12-08)
        res.reason = (f"{len(early)} photo(s) within {persistent_after:g} days of this treatment: the "
                      "decay is not sampled (a recovery curve needs e.g. day 0-1 and day 2-7)")
        res.persistent = observed_persistent(ref)
        return res
    if ref is None and len(t) < 4:
        res.reason = ("no pre-treatment level and fewer than 4 photos after the treatment: "
                      "cannot fit a free asymptote")
        return res
    level = ref if ref is not None else float(y[-1])
    excess0 = float(np.max(y[t <= max(2.0, t[0])]) - level)
    if excess0 <= mdc:
        res.reason = (f"no rise above the noise floor after this treatment (largest early excess "
                      f"{excess0:+.2f} <= MDC {mdc:.2f})")
        res.persistent = observed_persistent(ref)
        return res

    tau0, a0 = _initial_guess(t, y, level, mdc, excess0)
    sigma = np.full_like(y, sw)
    try:
        candidates = []
        if ref is not None:
            candidates.append(("fixed", *_fit_model("fixed", t, y, sigma, level, a0, tau0)))
        if len(t) >= 4:
            candidates.append(("free", *_fit_model("free", t, y, sigma, level, a0, tau0)))
    except (RuntimeError, ValueError) as exc:
        res.reason = f"fit did not converge ({exc})"
        res.persistent = observed_persistent(ref)
        return res
    model, popt, pcov, chi2 = _choose_model(candidates, ref, mdc)
    y_inf, amp, tau = (float(v) for v in popt)
    var = np.diag(pcov) if np.all(np.isfinite(pcov)) else np.full(3, np.nan)
    res.status, res.model, res.chi2_red = "ok", model, chi2
    res.y_inf, res.amplitude, res.tau_days = y_inf, amp, tau
    res.y_inf_std = float(math.sqrt(var[0])) if np.isfinite(var[0]) else None
    res.amplitude_std = float(math.sqrt(var[1])) if np.isfinite(var[1]) else None
    res.tau_std = float(math.sqrt(var[2])) if np.isfinite(var[2]) else None
    if res.tau_std is not None:
        # log-normal interval: delta method on log(tau), keeps the interval positive
        s = res.tau_std / tau
        res.tau_ci = (tau * math.exp(-1.96 * s), tau * math.exp(1.96 * s))
    notes = []
    if min(TAU_BOUNDS) * 1.01 >= tau or tau >= max(TAU_BOUNDS) * 0.99:
        notes.append(f"tau at its bound ({tau:.2f} d): not determined by the photos")
    if t[-1] < tau:
        notes.append(f"last photo (day {t[-1]:.1f}) is earlier than tau: extrapolated")

    offset = y_inf - (ref if ref is not None else y_inf)
    res.days_to_baseline = days_below(amp, tau, offset, mdc)
    if res.days_to_baseline is None:
        notes.append(f"fitted level stays {offset:+.2f} above the pre-treatment level "
                     f"(MDC {mdc:.2f}): not resolved")
    elif np.all(np.isfinite(pcov)):
        res.days_to_baseline_ci = _days_to_baseline_ci(popt, pcov, ref, mdc, seed, n_draws)
    res.persistent = observed_persistent(ref) or (
        res.days_to_baseline is None or res.days_to_baseline > persistent_after)
    res.reason = "; ".join(notes) or None
    return res



def _initial_guess(t: np.ndarray, y: np.ndarray, level: float, mdc: float,
                   excess0: float) -> tuple[float, float]:
    """Starting ``(tau, amplitude)``: tau from the slope of ``log(y - level)`` where the
    excess is clearly positive (> MDC / 2), else 2 days; the amplitude back-extrapolated
    from the first excess to day 0."""
    ex = y - level
    good = ex > 0.5 * mdc
    if good.sum() >= 2 and np.ptp(t[good]) > 0:
        slope = np.polyfit(t[good], np.log(ex[good]), 1)[0]
        tau0 = float(np.clip(-1.0 / slope if slope < 0 else 3.0, 0.2, 20.0))
    else:
        tau0 = 2.0
    return tau0, max(excess0 * math.exp(t[0] / tau0), mdc)


def _fit_model(model: str, t: np.ndarray, y: np.ndarray, sigma: np.ndarray, level: float,
               a0: float, tau0: float):
    """Weighted least squares of `recovery_model`: ``"fixed"`` holds the asymptote at
    `level`, ``"free"`` fits it. Returns ``(y_inf, amplitude, tau)``, their 3 x 3 covariance
    (zero row and column for a fixed asymptote) and the reduced chi-square (None without
    degrees of freedom)."""
    from scipy.optimize import OptimizeWarning, curve_fit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        if model == "fixed":
            def f(tt, a, tau):
                return recovery_model(tt, level, a, tau)
            p0, lo, hi = [a0, tau0], [0.0, TAU_BOUNDS[0]], [np.inf, TAU_BOUNDS[1]]
        else:
            def f(tt, yi, a, tau):
                return recovery_model(tt, yi, a, tau)
            p0 = [level, a0, tau0]
            lo, hi = [-np.inf, 0.0, TAU_BOUNDS[0]], [np.inf, np.inf, TAU_BOUNDS[1]]
        popt, pcov = curve_fit(f, t, y, p0=p0, sigma=sigma, absolute_sigma=True,
                               bounds=(lo, hi), max_nfev=5000)
    resid = (y - f(t, *popt)) / sigma
    dof = len(t) - len(popt)
    chi2 = float(np.sum(resid ** 2) / dof) if dof > 0 else None
    if model == "fixed":
        popt = np.array([level, *popt])
        full = np.zeros((3, 3))
        full[1:, 1:] = pcov
        pcov = full
    return popt, pcov, chi2


def _choose_model(candidates: list, ref: float | None, mdc: float):
    """The fixed-asymptote fit, unless the free fit's asymptote lies above the pre-treatment
    level by more than max(MDC, 2 SE): then the skin has not returned, and the free fit
    says so."""
    chosen = candidates[0]
    if ref is not None and len(candidates) == 2:
        _, popt, pcov, _ = candidates[1]
        se = math.sqrt(max(pcov[0, 0], 0.0)) if np.all(np.isfinite(pcov)) else math.inf
        if popt[0] - ref > max(mdc, 2.0 * se):
            chosen = candidates[1]
    return chosen


def _days_to_baseline_ci(popt, pcov, ref: float | None, mdc: float, seed: int,
                         n_draws: int) -> tuple[float, float] | None:
    """95 % interval of the days to baseline: `days_below` of `n_draws` parameter draws
    from the fit's normal approximation (None when under half of them ever settle)."""
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(popt, pcov, size=n_draws, check_valid="ignore")
    vals = [days_below(a, max(tt, 1e-3), yi - (ref if ref is not None else yi), mdc)
            for yi, a, tt in draws]
    finite = np.array([v for v in vals if v is not None], dtype=float)
    if len(finite) < 0.5 * n_draws:
        return None
    return float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))


@dataclass
class TrendPoint:
    """A metric at one visit outside the acute window, against baseline."""

    photo: str
    date: str
    days_since_baseline: float
    value: float | None
    delta: float | None
    percent_change: float | None
    significant: bool | None
    noise_floor: float | None = None

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class Trend:
    """Improvement of one metric over a course: every eligible visit against baseline.

    The headline (`delta`, `percent_change`, `significant`, `improved`) is the latest
    eligible visit, the best estimate of where the course has got to.
    """

    metric: str
    unit: str
    mdc: float
    better: str
    baseline: float | None
    points: list[TrendPoint]
    delta: float | None = None
    percent_change: float | None = None
    significant: bool | None = None
    improved: bool | None = None
    reason: str | None = None
    noise_floor: float | None = None

    def to_dict(self) -> dict:
        def r(v):
            return None if v is None else round(float(v), 4)

        return {"percent_change": r(self.percent_change), "significant": self.significant,
                "delta": r(self.delta), "improved": self.improved, "baseline": r(self.baseline),
                "unit": self.unit, "mdc": self.mdc, "noise_floor": r(self.noise_floor),
                "better": self.better,
                "reason": self.reason, "visits": [p.to_dict() for p in self.points]}


def trend(metric, baseline: float | None, points) -> Trend:
    r"""Improvement of `metric` at visits outside the acute window, against baseline.

    For each visit :math:`\Delta = y - y_0` and percent change
    :math:`100\,\Delta/|y_0|`; a change is significant when :math:`|\Delta| >` the
    visit's noise floor against baseline (its pair's, `photokit.comparison.sameskin.
    judge_pair`: :math:`1.96\sqrt{se_0^2 + se^2}`, the MDC of a difference of two
    measurements, Weir 2005; None when the pair leaves the change unjudged), and an
    improvement when it is significant and in the metric's `better` direction.

    Parameters
    ----------
    metric : photokit.metrics.registry.Metric
        Gives name, unit, mdc and better.
    baseline : float or None
        The metric at baseline.
    points : iterable of (photo, date, days_since_baseline, value[, noise_floor[, why]])
        Eligible visits (outside the acute window, alignment ok), in date order. Points
        without a floor are judged against the registered ``mdc``; a floor of None leaves
        the point unjudged, and `why` (the pair's reason) is then the trend's `reason`
        when that point is the latest.

    Returns
    -------
    Trend
    """
    out, why = [], []
    for photo, date, days, value, *judged in points:
        v = None if value is None or not math.isfinite(value) else float(value)
        d = None if (v is None or baseline is None) else v - baseline
        f = metric.mdc if not judged else judged[0]
        sig = None if d is None or f is None else abs(d) > f
        out.append(TrendPoint(photo, date, float(days), v, d, percent_change(baseline, v), sig, f))
        why.append(judged[1] if len(judged) > 1 and f is None else None)
    tr = Trend(metric.name, metric.unit, metric.mdc, metric.better, baseline, out)
    valid = [i for i, p in enumerate(out) if p.delta is not None]
    if baseline is None:
        tr.reason = "no baseline value"
    elif not valid:
        tr.reason = "no visit outside the acute window with a value"
    else:
        last = out[valid[-1]]
        tr.delta, tr.percent_change, tr.significant = last.delta, last.percent_change, last.significant
        tr.noise_floor = last.noise_floor
        if tr.significant is None:
            tr.reason = "not judged: " + (why[valid[-1]] or "no noise floor for this pair")
        if metric.better in ("lower", "higher") and tr.significant is not None:
            sign = -1.0 if metric.better == "lower" else 1.0
            tr.improved = bool(tr.significant and sign * last.delta > 0)
    return tr


def worsening(metric, reference: float | None, value: float | None) -> bool:
    """True when `value` moved from `reference` in the metric's worse direction by more than its MDC."""
    if reference is None or value is None or metric.better not in ("lower", "higher"):
        return False
    d = value - reference
    sign = 1.0 if metric.better == "lower" else -1.0
    return bool(sign * d > metric.mdc)
