"""The noise model: a standard error for each metric of THIS photo, and the noise floor of a pair.

A re-capture of unchanged skin moves a metric for two reasons: what the photo samples
(how many pores, spots or line segments were counted, how much skin was averaged) and how
it was captured (pose, light, white balance, focus, JPEG). Each metric's noise function
(``@metric(..., noise=)``, see `photokit.metrics.registry`) returns its standard error
``se`` in the metric's unit from the photo's own `Analysis`, built from the helpers here:

- `count_se`: counts, densities and covered areas of detected features (a compound
  Poisson sum: a value ``v = k * sum(w_i)`` over counted features of weight ``w_i``, 1 for
  a count, an area for a covered share, a length for a line density, has
  ``se^2 = k^2 (sum(w_i^2) + (c sum(w_i))^2)``, ``c`` the capture's relative SD);
- `mean_se`: means over detected features, ``se^2 = s^2 / n + (c mean)^2``;
- `found_se` and `found_mean_se`: the same for features found by a threshold on a
  statistic whose re-capture SD is known (spots): a re-capture of the same skin finds
  the same features, except those near the threshold (`detection_p`), so the sum's
  variance is their flicker, ``sum p_i (1 - p_i) w_i^2`` over the features found and the
  near misses, plus each feature's own jitter and the capture's common term;
- `tile_se`: means over the skin where no count formula fits: the between-tile spread of
  tile means (a block estimate of the mean's SE that keeps the spatial correlation
  within a tile), ``se^2 = n / (n - 1) sum(w_t^2 (x_t - x)^2) / (sum w_t)^2``
  (`ratio_se`, which also gives the sampling error of a metric measured on a sample of
  the skin: ``photokit.metrics.texture.band_noise``);
- `light_se`: the light's share for an UNCALIBRATED colour metric (no card, no reference
  skin): exposure and white balance propagated to the metric at the skin's mean colour.

A metric without a noise function keeps its registered constant: ``se = mdc / 2.77``, so
the pair's floor is the registered MDC. The floor of a pair is the minimal detectable
change of a difference of two independent measurements at 95 %,
``MDC = 1.96 sqrt(se_b^2 + se_a^2)`` (`noise_floor`; with ``se_b = se_a = Sw`` it is the
familiar ``2.77 Sw``, Weir 2005, doi:10.1519/15184.1). `p_value` and `holm` control the
family-wise error over the metrics of a pair (Holm 1979, Scand. J. Statist. 6:65-70).
The model per family and the data it was calibrated on: ``docs/NOISE.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import cv2
import numpy as np

#: z of a two-sided 95 % interval.
Z95 = 1.959963984540054
#: MDC of a difference per within-subject SD: ``1.96 sqrt(2)`` (the registered floors' 2.77).
MDC_PER_SW = Z95 * math.sqrt(2.0)
#: Relative SD of one exposure between captures under "ordinary" light: +-8 % spread
#: evenly (SD of a uniform on +-a is a / sqrt(3)).
EXPOSURE_SD = 0.08 / math.sqrt(3.0)
#: Relative SD of one white-balance gain per channel: +-3 % spread evenly.
WHITE_BALANCE_SD = 0.03 / math.sqrt(3.0)
#: The largest exposure ratio between two photos that `light_se` covers (each +-8 %).
PAIR_GAIN_MAX = 1.08 / 0.92
#: The largest shift of the light's colour between two photos it covers (CIELAB a*b* of
#: a grey under white balance +-3 % per channel, the worst pair of gains: 4.1).
PAIR_DAB_MAX = 4.0
#: Side of a skin tile for `tile_se` (mm; pixels of the working level when the scale is unknown).
TILE_MM = 4.0
TILE_PX = 24
#: Fewest tiles for a tile standard error; with less skin a metric is not judged.
MIN_TILES = 4


def noise_floor(se_before: float | None, se_after: float | None) -> float | None:
    r"""Minimal detectable change of a difference of two independent measurements.

    :math:`\mathrm{MDC} = z_{0.975}\sqrt{se_b^2 + se_a^2}` (95 %, two-sided); equal SEs give
    :math:`1.96\sqrt 2\,S_w = 2.77\,S_w` (Weir 2005, doi:10.1519/15184.1).

    Returns None when either SE is missing or not finite. Rounded to 12 significant
    digits, so that two registered constants (``se = mdc / 2.77``) give back exactly ``mdc``.
    """
    if se_before is None or se_after is None:
        return None
    v = float(se_before) ** 2 + float(se_after) ** 2
    return float(f"{Z95 * math.sqrt(v):.12g}") if math.isfinite(v) else None


def p_value(delta: float | None, se_before: float | None, se_after: float | None) -> float | None:
    r"""Two-sided p-value of a change under no change.

    :math:`p = 2\,(1 - \Phi(|\Delta| / \sqrt{se_b^2+se_a^2}))` (normal approximation).
    """
    if delta is None or se_before is None or se_after is None:
        return None
    s = math.sqrt(float(se_before) ** 2 + float(se_after) ** 2)
    if not math.isfinite(s) or not math.isfinite(delta):
        return None
    if s == 0.0:
        return 1.0 if delta == 0 else 0.0
    return math.erfc(abs(float(delta)) / s / math.sqrt(2.0))


def holm(pvalues: dict, alpha: float = 0.05) -> dict:
    """Holm's step-down test over a family of p-values (family-wise error <= `alpha`).

    Sorted ascending, ``p_(i)`` (i = 1..m) is rejected while ``p_(i) <= alpha / (m - i + 1)``;
    the first that is not stops the rejections (Holm 1979, Scand. J. Statist. 6:65-70).

    Parameters
    ----------
    pvalues : dict
        name -> p-value (None: not tested, left out of the family).
    alpha : float

    Returns
    -------
    dict
        name -> True (a change), False (none), None (not tested).
    """
    tested = sorted((p, k) for k, p in pvalues.items() if p is not None)
    out = {k: None for k in pvalues}
    m, going = len(tested), True
    for i, (p, k) in enumerate(tested):
        going = going and p <= alpha / (m - i)
        out[k] = going
    return out


def count_se(weights: Iterable[float], per_weight: float, capture_cv: float) -> float:
    r"""SE of ``v = per_weight * sum(w_i)`` over counted features (compound Poisson + capture).

    :math:`se = k\sqrt{\sum w_i^2 + (c \sum w_i)^2}`: the features present are a Poisson
    sample of the skin's (variance of a compound Poisson sum, :math:`\lambda E[w^2]`,
    estimated by :math:`\sum w_i^2`), and a re-capture detects them with relative SD `c`.

    Parameters
    ----------
    weights : iterable of float
        1 per feature for a count; its area or length for a covered share or a length.
    per_weight : float
        ``k``: the value one unit of weight adds (``1 / area`` for a density).
    capture_cv : float
        ``c``, relative SD of the sum between captures (``docs/NOISE.md``).
    """
    w = np.asarray(list(weights), float)
    return abs(per_weight) * math.sqrt(float(np.sum(w * w)) + (capture_cv * float(np.sum(w))) ** 2)


def mean_se(samples: Iterable[float], capture_cv: float) -> float | str:
    r"""SE of a mean over detected features: :math:`\sqrt{s^2/n + (c\,\bar x)^2}`.

    Returns a reason (str) instead when fewer than two features were found.
    """
    x = np.asarray(list(samples), float)
    if x.size < 2:
        return f"{x.size} feature(s) found: a mean over fewer than 2 has no standard error"
    return math.sqrt(float(np.var(x, ddof=1)) / x.size + (capture_cv * float(np.mean(x))) ** 2)


def detection_p(margin, sd):
    r"""Probability that a re-capture finds a feature whose statistic lies `margin` above
    its detection threshold (below: negative) in this photo, the statistic varying by SD
    `sd` between captures: :math:`p = \Phi(m / (\sqrt 2\,\sigma))`.

    The margin seen here is itself one capture's: a new capture differs from it by the
    difference of two draws, SD :math:`\sqrt 2\,\sigma` (the predictive distribution
    under a flat prior). With :math:`\sigma` alone, features just over the threshold (found
    because this capture's noise lifted them) looked surer than they are.
    """
    z = np.asarray(margin, np.float64) / (math.sqrt(2.0) * np.asarray(sd, np.float64))
    return 0.5 * _erfc(-z / math.sqrt(2.0))


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def found_se(found_w, found_p, missed_w, missed_p, *, per_weight: float = 1.0, jitter: float = 0.0,
             capture_cv: float = 0.0, step: float | None = None) -> float:
    r"""SE of ``v = k sum(w_i)`` over the features a threshold found, between re-captures
    of the same skin.

    :math:`se = k\,(\sqrt{V} + s / (2\sqrt 2\,z_{0.975}))` with
    :math:`V = \sum_{found + missed} p_i (1 - p_i) w_i^2 + j^2 \sum_{found} w_i^2
    + (c \sum_{found} w_i)^2`: each feature found (or narrowly missed) is found again with
    probability ``p_i`` (`detection_p`), a Bernoulli variance of ``p(1-p)``; a found
    feature's weight (its area) varies by relative SD ``j`` on its own; and the capture
    moves the whole sum by relative SD ``c``. Unlike `count_se`, the features present are
    not a random sample: tracking the same skin, the same spots are there again, and only
    detection varies (docs/NOISE.md).

    The sum moves in whole features, steps of about ``s`` (a feature's weight): the
    second term is the continuity correction of the normal approximation (Yates 1934,
    J. R. Statist. Soc. Suppl. 1:217-235), sized so that two photos of equal SE get a
    `noise_floor` half a step wider. Without it, a few spots at the threshold, found in
    one photo and not in the other, crossed the floor in 8 % of no-change pairs.

    Parameters
    ----------
    found_w, missed_w : array_like
        Weights of the features found and of the near misses (1 for a count, areas for a
        covered share).
    found_p, missed_p : array_like
        Their detection probabilities (`detection_p`).
    per_weight : float
        ``k`` (``1 / area`` for a density).
    jitter : float
        ``j``, relative SD of one feature's weight between captures.
    capture_cv : float
        ``c``, relative SD of the whole sum between captures.
    step : float, optional
        ``s``; default the size of the jump the sum makes when a feature flips, weighted
        by each feature's share of the flicker, :math:`\sum p_i(1-p_i) w_i^2 / \sum
        p_i(1-p_i) w_i` (1 for a count; the median weight when no feature flickers, 0 if
        none).
    """
    w = np.concatenate([np.asarray(found_w, float).ravel(), np.asarray(missed_w, float).ravel()])
    p = np.concatenate([np.asarray(found_p, float).ravel(), np.asarray(missed_p, float).ravel()])
    fw = np.asarray(found_w, float)
    var = (float(np.sum(p * (1 - p) * w * w)) + jitter ** 2 * float(np.sum(fw * fw))
           + (capture_cv * float(np.sum(fw))) ** 2)
    if step is None:
        flick = p * (1 - p) * w
        step = (float(np.sum(flick * w) / np.sum(flick)) if np.sum(flick) > 0
                else float(np.median(w)) if w.size else 0.0)
    return abs(per_weight) * (math.sqrt(var) + step / (2.0 * math.sqrt(2.0) * Z95))


def found_mean_se(found_x, found_p, missed_x, missed_p, found_sd, capture_cv: float = 0.0) -> float | str:
    r"""SE of the mean of ``x`` over the features a threshold found (`found_se`'s model).

    :math:`se^2 = [\sum_{found + missed} p_i (1 - p_i) (x_i - \bar x)^2
    + \sum_{found} \sigma_i^2] / n^2 + (c \bar x)^2`: a feature found or lost moves the
    mean by :math:`(x_i - \bar x) / n`; each found feature's value varies by its own SD
    :math:`\sigma_i`; the capture moves every value by relative SD ``c``.

    Returns a reason (str) instead when fewer than two features were found.
    """
    x = np.asarray(found_x, float)
    n = x.size
    if n < 2:
        return f"{n} feature(s) found: a mean over fewer than 2 has no standard error"
    mean = float(np.mean(x))
    allx = np.concatenate([x, np.asarray(missed_x, float).ravel()])
    p = np.concatenate([np.asarray(found_p, float).ravel(), np.asarray(missed_p, float).ravel()])
    flicker = float(np.sum(p * (1 - p) * (allx - mean) ** 2))
    var = (flicker + float(np.sum(np.asarray(found_sd, float) ** 2))) / n ** 2
    return math.sqrt(var + (capture_cv * mean) ** 2)


def skin_tiles(mask: np.ndarray, tile_px: int) -> tuple[np.ndarray, np.ndarray]:
    """The skin tiles of `tile_se`: ``(weights, index)``, the skin pixels ``w_t`` of each
    `tile_px` square at least a quarter skin, and where those squares are in the row-major
    list of all squares."""
    t = max(1, int(tile_px))
    h, w = mask.shape
    hh, ww = -(-h // t) * t, -(-w // t) * t
    m = np.zeros((hh, ww), np.float32)
    m[:h, :w] = mask
    # INTER_AREA with an integer factor is the exact tile mean
    wt = cv2.resize(m, (ww // t, hh // t), interpolation=cv2.INTER_AREA).ravel().astype(np.float64) * (t * t)
    index = np.flatnonzero(wt > 0.25 * t * t)
    return np.rint(wt[index]), index


def too_few_tiles(mask: np.ndarray, tile_px: int) -> str | None:
    """Why the skin is too small for `tile_se` (fewer than `MIN_TILES` tiles), or None."""
    n = skin_tiles(mask, tile_px)[0].size
    if n < MIN_TILES:
        return (f"too little skin for a noise floor ({n} tiles of {max(1, int(tile_px))} px, "
                f"at least {MIN_TILES})")
    return None


def tile_se(values: np.ndarray, mask: np.ndarray, tile_px: int) -> float | str:
    r"""SE of the mean of `values` over `mask` from tile means (`ratio_se` of the tiles).

    The skin is cut into `tile_px` squares; tile ``t`` has ``w_t`` skin pixels and mean
    ``x_t``. Neighbouring pixels are correlated; tiles larger than the correlation length
    make the tile means nearly independent.

    Returns a reason (str) when the skin fills fewer than `MIN_TILES` tiles.
    """
    why = too_few_tiles(mask, tile_px)
    if why:
        return why
    t = max(1, int(tile_px))
    h, w = mask.shape
    hh, ww = -(-h // t) * t, -(-w // t) * t
    v = np.zeros((hh, ww), np.float64)
    v[:h, :w] = np.where(mask, values, 0.0)
    wt, index = skin_tiles(mask, t)
    st = v.reshape(hh // t, t, ww // t, t).sum(axis=(1, 3)).ravel()[index]
    return ratio_se(st / wt, wt)


def ratio_se(values: Iterable[float], weights: Iterable[float], sampled_share: float = 0.0) -> float:
    r"""SE of the weighted mean ``x = sum(w_t x_t) / sum(w_t)`` of ``n`` units (tiles,
    blocks of a sample) of values ``x_t`` and weights ``w_t`` (ratio estimator):

    :math:`se^2 = (1 - f)\,rac{n}{n-1}\sum w_t^2 (x_t - x)^2 / (\sum w_t)^2`

    with ``f`` = `sampled_share`, the share of the population the units cover (the
    finite-population correction: a sample of all of it has no sampling error). Cochran
    1977, Sampling Techniques, 6.9 and 2.6. Needs ``n >= 2``.
    """
    x, w = np.asarray(values, np.float64), np.asarray(weights, np.float64)
    n = x.size
    if n < 2:
        raise ValueError("ratio_se needs at least two units")
    m = float(np.sum(w * x) / np.sum(w))
    return math.sqrt(max(0.0, 1.0 - float(sampled_share)) * n / (n - 1)
                     * float(np.sum(w * w * (x - m) ** 2)) / float(np.sum(w)) ** 2)


def tile_px(mm_per_px: float | None) -> int:
    """Tile side in pixels of a level: `TILE_MM` when the scale is known, else `TILE_PX`."""
    return max(4, round(TILE_MM / mm_per_px)) if mm_per_px else TILE_PX


def light_se(of_rgb: Callable[[np.ndarray], float], rgb: np.ndarray) -> float:
    r"""The light's share of an uncalibrated colour metric's SE.

    A capture scales linear RGB by an exposure ``e`` and per-channel white-balance gains
    ``g_c``; to first order
    :math:`se^2 = (\partial f/\partial \ln e)^2 \sigma_e^2
    + \sum_c (\partial f/\partial \ln g_c)^2 \sigma_{wb}^2`
    with :math:`\sigma_e` = `EXPOSURE_SD`, :math:`\sigma_{wb}` = `WHITE_BALANCE_SD`, the
    derivatives by central differences of `of_rgb` at the skin's mean linear colour
    (exact for log-ratio indices such as EI and MI, which shift uniformly under a gain).

    Parameters
    ----------
    of_rgb : callable
        ``of_rgb(rgb) -> float``: the metric of a linear RGB colour (shape ``(3,)``).
    rgb : ndarray
        Mean linear RGB of the analysed skin.
    """
    rgb = np.asarray(rgb, np.float64)
    eps = 0.01

    def d(gain: np.ndarray) -> float:
        up, down = np.exp(eps * gain), np.exp(-eps * gain)
        return (of_rgb(rgb * up) - of_rgb(rgb * down)) / (2 * eps)

    var = (d(np.ones(3)) * EXPOSURE_SD) ** 2
    var += sum((d(np.eye(3)[c]) * WHITE_BALANCE_SD) ** 2 for c in range(3))
    return math.sqrt(var)


def light_dependent(noise: Callable) -> Callable:
    """Mark a noise function whose SE carries the light's share (`light_se`) when the
    photo is uncalibrated: `beyond_light_model` then applies to its metric."""
    noise.light_dependent = True
    return noise


def calibrated_light_only(mdc: float) -> Callable:
    """Noise function of a colour metric that has no light term of its own (a ratio or a
    spread, e.g. `pigment.evenness`): the registered constant ``mdc / 2.77``, marked
    `light_dependent`, because that floor was calibrated on re-captures under light
    changes of ordinary size only; beyond the light model an uncalibrated pair is not
    judged."""
    @light_dependent
    def noise(an, value: float) -> float:
        return mdc / MDC_PER_SW
    return noise


def is_light_dependent(metric) -> bool:
    """Whether `metric`'s noise function is marked by `light_dependent`."""
    return bool(getattr(metric.noise, "light_dependent", False))


def beyond_light_model(lighting: dict) -> str | None:
    """Why an uncalibrated pair's light-dependent colour metrics cannot be judged, or None.

    `lighting` is the pair's measured light difference
    (`photokit.comparison.compare.lighting_difference`: ``gain`` of linear luminance and
    ``dab``, the a*b* shift, outside the region). Beyond `PAIR_GAIN_MAX` or `PAIR_DAB_MAX`
    the light moved more than `light_se` allows, so no floor would be honest. Measured
    on the region itself (too little else in frame) the light and the skin's own change
    cannot be told apart, and the model's floor stands.
    """
    if lighting.get("where") != "outside the region":    # on the skin, light and skin mix
        return None
    gain, dab = lighting.get("gain"), lighting.get("dab")
    parts = []
    if gain is not None and abs(math.log(max(gain, 1e-6))) > math.log(PAIR_GAIN_MAX):
        parts.append(f"exposure {100 * (gain - 1):+.0f} %")
    if dab is not None and dab > PAIR_DAB_MAX:
        parts.append(f"light colour {dab:.1f} a*b*")
    if not parts:
        return None
    return (f"no calibration, and the light changed ({', '.join(parts)}) beyond what the "
            "uncalibrated floor allows; give --reference-roi or a colour card")


def mixed_calibration(method_before: str, method_after: str) -> str | None:
    """Why a pair's light-dependent colour metrics cannot be judged when one photo's colour
    was calibrated (a card found) and the other's was not, or None.

    A card-calibrated colour is the card's reference colour space; an uncalibrated one is
    the camera's own rendering under its light. Their difference holds the camera's whole
    colour transform, which neither the card floors nor `light_se` model: on no-change
    synthetic pairs whose card was missed in one photo (3 of 36, ``bench_noise.py
    --protocols card``) EI moved by up to 3.1 and a* by 1.7.
    """
    methods = {method_before or "none", method_after or "none"}
    if "none" not in methods or len(methods) == 1:
        return None
    return (f"colour calibrated in one photo only (BEFORE: {method_before or 'none'}, AFTER: "
            f"{method_after or 'none'}); keep the colour card in both photos or give --reference-roi")


def beyond_expression(metric, expression: dict | None) -> str | None:
    """Why a change of `metric` between two photos of a face is not judged, or None: the
    expression changed between them (`expression` as an alignment reports it,
    `photokit.registration.mesh.expression`) and the metric is a statistic of the skin's
    spatial structure (lines, pores, spots, texture, evenness, the red share), not the mean
    of a per-pixel map (no `zone_map` in the registry: a*, EI, MI, ITA keep theirs).

    A smile bunches the cheeks, deepens the nasolabial folds and crow's feet and opens the
    mouth. On the 12 London neutral/smiling pairs, taken minutes apart, a change was
    called in all 12 (11 under Holm) before this rule: the spot count in 9 (it fell by
    40-55 %), the wrinkle depth in 9, the melanin evenness in 6, the red share in 5, pore
    metrics in 4; the colour means (a*, EI, MI, ITA) in none. With it: in none.
    """
    if not expression or not expression.get("changed") or getattr(metric, "zone_map", None) is not None:
        return None
    return (f"the expression changed (smile score {expression['smile_score']:+.2f}, lip opening "
            f"{expression['lip_opening']:+.2f}): lines, pores, spots and the skin's patterns follow "
            "the face's folds; photograph both visits with the same, relaxed expression")


def without_scale(metric, scale_source: str | None) -> str | None:
    """Why a change of `metric` is not judged when the pair has no physical scale
    (`scale_source` ``"relative"``: the first photo's skin area taken as 100 x 100 units),
    or None: a metric defined in millimetres (the registry's ``needs_scale``: texture
    band, lines, pores, spots) then filters and counts at sizes that are guesses, and
    finds other features than it defines. On the demo course (0.070 mm/px, relative unit
    0.080) the relative unit found wrinkles at 16 mm/cm^2 and a brown spot where none was
    placed, and called their fading an improvement.
    """
    if scale_source != "relative" or not getattr(metric, "needs_scale", False):
        return None
    return ("no physical scale: its millimetre sizes were set on a relative unit (the skin area "
            "taken as 100 x 100 units), so it may count other features than it defines; give "
            "--mm-per-px, a colour card of known size or a face")


def beyond_resolution(metric, mm_before: float | None, mm_after: float | None) -> str | None:
    """Why a change of `metric` between photos of these scales (mm per pixel) is not
    judged, or None: their ratio, or the ratio of the scales the metric works at in them
    (its ``working_level``), is beyond the metric's `resolution_tolerance` (the registry),
    so the change would be the resolution's as much as the skin's."""
    tol = getattr(metric, "resolution_tolerance", None)
    if tol is None or not mm_before or not mm_after:
        return None

    def ratio(b: float, a: float) -> float:
        return max(b, a) / min(b, a)

    why = None
    if ratio(mm_before, mm_after) > tol:
        why = (f"the photos' resolutions differ by {100 * (ratio(mm_before, mm_after) - 1):.0f} % "
               f"({mm_before:.3g} and {mm_after:.3g} mm/px)")
    level = getattr(metric, "working_level", None)
    if why is None and level is not None:
        lb, la = level(mm_before), level(mm_after)
        if ratio(lb, la) > tol:
            why = (f"it is computed at {lb:.3g} and {la:.3g} mm/px in these photos ({mm_before:.3g} and "
                   f"{mm_after:.3g} mm/px): {100 * (ratio(lb, la) - 1):.0f} % apart")
    if why is None:
        return None
    return (f"{why}, beyond the {100 * (tol - 1):.0f} % its floor holds for; "
            "photograph both visits at the same distance")


def standard_errors(an, values: dict, metrics) -> tuple[dict, dict]:
    """Each metric's standard error on this photo, and why a metric has none.

    Parameters
    ----------
    an : Analysis or None
        The photo's working set (None: the registered constants alone).
    values : dict
        name -> value as measured.
    metrics : iterable of Metric
        Registry entries (`Metric.standard_error`).

    Returns
    -------
    se : dict
        name -> SE in the metric's unit (None where it has none or no value).
    why : dict
        name -> one line saying why a measured metric has no SE ("not judged: ...").
    """
    se, why = {}, {}
    for m in metrics:
        v = values.get(m.name)
        if v is None or not math.isfinite(float(v)):
            se[m.name] = None
            continue
        s = m.standard_error(an, float(v))
        if isinstance(s, str):
            se[m.name], why[m.name] = None, s
        else:
            se[m.name] = float(s)
    return se, why
