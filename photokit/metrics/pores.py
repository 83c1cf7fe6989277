"""Pores: small dark blobs at pore scale, counted per cm^2, with their size distribution.

Method
------
Scale-normalised Laplacian of Gaussian approximated by differences of Gaussians
(Lowe 2004) on CIE L* at a working resolution of 0.06 mm/px, over the scales
``s_k = s_min 2^(k/3)`` that cover pore diameters 0.2-1.0 mm (a Gaussian dip of SD
``s`` is detected at ``s`` and is reported with diameter ``d = 2 sqrt(2) s``, the LoG's
zero-crossing diameter, Lindeberg 1998). ``D_k = (G_{s_{k+1}} - G_{s_k}) * L /
(2^(1/3) - 1)`` approximates ``s^2 Laplacian(L)``; for a dark Gaussian dip of depth
``A`` (L*) and SD ``s`` it peaks at ``A / 2`` at scale ``s``, so the contrast estimate
is ``2 D``. A pore is a local maximum of ``D`` in space and scale (3 x 3 x 3) with
contrast >= 3 L* (the synthetic micro-relief alone yields ~7 false pores per cm^2 at
1.5 L*), whose Hessian at its scale is blob-like (smaller eigenvalue at least 0.35 of
the larger: lines are wrinkles, not pores), on the skin mask eroded by the largest
scale; of pores closer than the larger radius only the stronger is kept. Scales under
0.8 working pixels are not searched. As in SIFT, wide scales are filtered on halved
copies (the first two octaves at full resolution, then one octave per halving, so a
scale is never under 1.6 px where it is searched), at a fraction of the cost of
full-resolution filtering; the halving is symmetric (odd lengths keep every other
pixel, even lengths average pairs), so a mirrored photo gives the mirrored pores. When
even 1 mm pores are under 1.2 px of SD (photos coarser than about 0.3 mm/px) the pore
metrics are None. Large photos are analysed on sampled strips (`photokit.metrics.texture.work`):
the density stays unbiased and `find_pores` then lists the pores of the sampled strips
only.

``texture.pore_density`` = pores per cm^2 of analysed skin; ``pores.mean_diameter_mm``,
``pores.area_pct`` (sum of pore disc areas over skin area), ``pores.mean_contrast``
(mean pore depth in L*: the count saturates once pores clear the threshold, their
contrast keeps tracking visibility) and the pore list (`find_pores`) for overlays and
size histograms.

References
----------
D. G. Lowe, "Distinctive image features from scale-invariant keypoints", IJCV 60(2),
91-110 (2004). doi:10.1023/B:VISI.0000029664.99615.94
T. Lindeberg, "Feature detection with automatic scale selection", IJCV 30(2), 79-116
(1998). doi:10.1023/A:1008045108935
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .analysis import Analysis
from .noise import count_se, mean_se
from .registry import family, job, metric, unmeasurable
from .texture import blur, enough_skin, erode, physical_level_mm_per_px, work

PORE_MM_PER_PX = 0.06
PORE_DIAMETER_MM = (0.2, 1.0)
PORE_CONTRAST = 3.0
PORE_BLOBNESS = 0.35
SCALES_PER_OCTAVE = 3
#: Scales searched at full resolution before the first halving (two octaves: a halved
#: copy then starts at a local SD of 2 s_min, at least 1.6 px).
OCTAVE0_SCALES = 6
#: Smallest resolvable blob SD in working pixels; finer pores are not counted.
MIN_SIGMA_PX = 0.8
#: When even the largest pore's SD is under this multiple of the smallest one's, pore
#: metrics are None and measure says why: the photo is too coarse (above about 0.29 mm/px).
PORE_MIN_SPAN = 1.5

_K = 2.0 ** (1.0 / SCALES_PER_OCTAVE)
_D_PER_S = 2.0 * np.sqrt(2.0)


@dataclass(frozen=True)
class Pore:
    """A detected pore: centre in full-resolution pixels of the analysed image."""

    x: float
    y: float
    diameter_mm: float
    contrast: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PoreResult:
    pores: list[Pore]
    area_mm2: float


def find_pores(an: Analysis) -> list[Pore] | None:
    """Pores of an analysis (see module notes); None without enough skin."""
    r = _pores(an)
    return None if r is None else r.pores


def _pores(an: Analysis) -> PoreResult | None:
    return an.cached("pores.result", _detect)


def _pore_sigmas(mm_per_px: float) -> tuple[float, float]:
    """DoG SDs (pixels) of the smallest and largest pore at `mm_per_px`."""
    return (max(PORE_DIAMETER_MM[0] / _D_PER_S / mm_per_px, MIN_SIGMA_PX),
            PORE_DIAMETER_MM[1] / _D_PER_S / mm_per_px)


#: Pores share the texture band's working level; started third.
job(__name__, start=2)
family("pores", title="Pores", order=3)

@unmeasurable("pores")
def _why_not(an: Analysis) -> str | None:
    """The photo too coarse for pores (the reason `_detect` gives None), else None."""
    p = physical_level_mm_per_px(an, PORE_MM_PER_PX)
    if p is None:
        return None
    s_lo, s_hi = _pore_sigmas(p)
    if s_hi >= PORE_MIN_SPAN * s_lo:
        return None
    coarsest = PORE_DIAMETER_MM[1] / _D_PER_S / (PORE_MIN_SPAN * MIN_SIGMA_PX)
    return (f"at {p:.2g} mm/px the photo does not resolve {PORE_DIAMETER_MM[0]:g}-"
            f"{PORE_DIAMETER_MM[1]:g} mm pores (pores.* and texture.pore_density need about "
            f"{coarsest:.2f} mm/px or finer)")


def _detect(an: Analysis) -> PoreResult | None:
    w = work(an, PORE_MM_PER_PX)
    if w is None:
        return None
    p = w.mm_per_px
    s_lo, s_hi = _pore_sigmas(p)
    if s_hi < PORE_MIN_SPAN * s_lo:  # pores cannot be resolved at this scale
        return None
    n = max(1, int(np.ceil(np.log(s_hi / s_lo) / np.log(_K))) + 1)
    # scales s_0/k ... s_n*k so that every detection scale has a neighbour either side
    sig = [s_lo * _K ** (k - 1) for k in range(n + 2)]
    # (the erosion by the largest scale is known before any filtering)
    valid = w.restrict(erode(w.mask, sig[-1]))
    if not enough_skin(valid, p):
        return None
    pores: list[Pore] = []
    thr = np.float32(PORE_CONTRAST / 2.0)
    valid8 = valid.view(np.uint8)
    # Octaves (Lowe 2004): the scales are searched in groups; group o on a copy halved o
    # times (`_half`). Group 0 (full resolution) holds the first OCTAVE0_SCALES scales, each
    # later group three (one octave), so a halved copy is only used from a local SD of
    # 2 sig[0] (>= 1.6 px) up: finer sampling costs pore sizes their precision. In a group
    # starting at local SD s0, G_i (SD s0 K^i) is built incrementally, G_i = G_{i-1} *
    # G(s0 K^(i-1) sqrt(K^2 - 1)), D_i = (G_{i+1} - G_i) / (K - 1) is the DoG of SD s0 K^i,
    # and scale i = 1..m of the group is searched; the next group starts from G_m halved.
    # The wide scales thus cost a fraction of full-resolution filtering.
    img, v8 = blur(w.L, sig[0]), valid8
    s0 = sig[0]
    sx = sy = 1.0          # working pixel = s * group pixel + t
    tx = ty = 0.0
    k0 = 0                 # scales searched so far
    while k0 < n:
        m = min(OCTAVE0_SCALES if k0 == 0 else 3, n - k0)
        # streamed: scale j is searched once D_{j+1} exists; three D and three G are kept
        # (fewer fresh arrays: they are slow to first touch)
        G, D, last = [img], [], img
        for i in range(1, m + 3):
            g = blur(G[-1], float(s0 * _K ** (i - 1) * np.sqrt(_K * _K - 1)))
            D.append(cv2.addWeighted(g, 1.0 / (_K - 1.0), G[-1], -1.0 / (_K - 1.0), 0.0))
            G.append(g)
            if i == m:
                last = g                     # G_m starts the next group
            if len(D) == 3:                  # D_{j-1}, D_j, D_{j+1} and G[-3] = G_j, j = i - 2
                pores += _pores_at(D, G[-3], sig[k0 + i - 2], w, thr, v8, p, (sx, tx, sy, ty))
                D.pop(0)
                G.pop(0)
        k0 += m
        if k0 >= n:
            break
        img, (oy, ox) = _half(last)
        v8, _ = _half(v8, mask=True)
        s0 = s0 * _K ** m / 2
        tx, ty = tx + sx * ox, ty + sy * oy
        sx, sy = 2 * sx, 2 * sy
    pores = _suppress_overlaps(pores, w.mm_per_px / w.factor)
    area = float(np.count_nonzero(valid)) * p * p
    return PoreResult(pores, area)


def _half(a: np.ndarray, mask: bool = False):
    """`a` halved along both axes, symmetrically (so a mirrored photo gives the mirrored
    result): an odd length keeps pixels 0, 2, ..., n - 1 (offset 0), an even length
    averages pairs (0, 1), (2, 3), ... (offset 0.5; for a mask, both must be set).
    Returns the halved array and the offsets ``(oy, ox)``: its pixel ``(x, y)`` is at
    ``(2 x + ox, 2 y + oy)`` of `a`."""
    offs = []
    for axis in (0, 1):
        first = [slice(None)] * 2
        second = [slice(None)] * 2
        first[axis], second[axis] = slice(0, None, 2), slice(1, None, 2)
        if a.shape[axis] % 2:
            a = a[tuple(first)]
            offs.append(0.0)
        else:
            x, y = a[tuple(first)], a[tuple(second)]
            a = (x & y) if mask else (x + y) * np.float32(0.5)
            offs.append(0.5)
    return np.ascontiguousarray(a), tuple(offs)


def _pores_at(D: list, g: np.ndarray, sigma: float, w, thr: np.float32, valid8: np.ndarray,
              p: float, to_work=(1.0, 0.0, 1.0, 0.0)) -> list[Pore]:
    """Pores at the middle scale of ``D = [D_below, D_here, D_above]`` (on a copy of the
    working level whose pixel ``(x, y)`` is working pixel ``(sx x + tx, sy y + ty)``,
    ``to_work = (sx, tx, sy, ty)``): scale-space maxima (`_scale_space_maxima`) that pass
    the blob test on the Hessian of `g` (the Gaussian there) and whose diameter
    ``2 sqrt(2) sigma`` (`sigma` in working pixels) is in `PORE_DIAMETER_MM`."""
    ys, xs = _scale_space_maxima(D, 1, thr, valid8)
    if xs.size == 0:
        return []
    # the 3 x 3 neighbourhood of each point, reflected at the border (reflect-101, as a
    # bordered copy would give, without copying the image for a sparse set of points)
    h, w_ = g.shape
    ym, yp = np.minimum(np.abs(ys - 1), h - 1), np.maximum(h - 1 - np.abs(h - 2 - ys), 0)
    xm, xp = np.minimum(np.abs(xs - 1), w_ - 1), np.maximum(w_ - 1 - np.abs(w_ - 2 - xs), 0)
    c = g[ys, xs]
    lxx = g[ys, xp] - 2 * c + g[ys, xm]
    lyy = g[yp, xs] - 2 * c + g[ym, xs]
    lxy = 0.25 * (g[yp, xp] - g[yp, xm] - g[ym, xp] + g[ym, xm])
    ht = 0.5 * (lxx + lyy)
    dd = np.sqrt(0.25 * (lxx - lyy) ** 2 + lxy ** 2)
    l1, l2 = ht + dd, ht - dd
    ok = (l1 > 0) & (l2 >= PORE_BLOBNESS * l1)
    diam = sigma * _D_PER_S * p
    ok &= (diam >= PORE_DIAMETER_MM[0] * 0.99) & (diam <= PORE_DIAMETER_MM[1] * 1.01)
    sx, tx, sy, ty = to_work
    fx, fy = w.to_full(xs[ok] * sx + tx, ys[ok] * sy + ty)
    return [Pore(float(x), float(y), float(diam), float(con))
            for x, y, con in zip(fx, fy, 2.0 * D[1][ys[ok], xs[ok]], strict=True)]


def _scale_space_maxima(D: list, k: int, thr: np.float32, valid8: np.ndarray):
    """Rows and columns where ``D[k] >= thr`` on valid pixels and ``D[k]`` is a 3 x 3 x 3
    maximum: not below any neighbour at its scale, above every pixel of the 3 x 3 blocks
    at scales ``k - 1`` and ``k + 1``.

    The threshold leaves a sparse set, so the 26 neighbours are gathered there only
    (neighbours beyond the border are ignored: clipping an index lands on a pixel already
    compared, or on the point itself).
    """
    d = D[k]
    above = cv2.bitwise_and(cv2.compare(d, float(thr), cv2.CMP_GE), valid8)
    pts = cv2.findNonZero(above)
    if pts is None:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    xs, ys = pts[:, 0, 0].astype(np.intp), pts[:, 0, 1].astype(np.intp)
    h, w = d.shape
    # flat indices of the 3 x 3 neighbourhood (clipped at the border); the same-scale test
    # first, which leaves few points for the two neighbouring scales
    for level, strict in ((k, False), (k - 1, True), (k + 1, True)):
        flat = D[level].ravel()
        centre = d.ravel().take(ys * w + xs)
        ok = np.ones(xs.size, bool)
        rows = {dy: np.clip(ys + dy, 0, h - 1) * w for dy in (-1, 0, 1)}
        cols = {dx: np.clip(xs + dx, 0, w - 1) for dx in (-1, 0, 1)}
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if level == k and dy == 0 and dx == 0:
                    continue
                nb = flat.take(rows[dy] + cols[dx])
                ok &= (centre > nb) if strict else (centre >= nb)
        ys, xs = ys[ok], xs[ok]
        if xs.size == 0:
            break
    return ys, xs


def _suppress_overlaps(pores: list[Pore], mm_per_full_px: float) -> list[Pore]:
    """Keep the strongest of pores whose centres lie within the larger one's radius.

    Greedy in order of contrast; only pores with a clash (pairs from a k-d tree query at
    the largest radius) are looked at one by one.
    """
    if len(pores) < 2:
        return pores
    from scipy.spatial import cKDTree

    pores = sorted(pores, key=lambda q: -q.contrast)
    xy_mm = np.array([[q.x, q.y] for q in pores]) * mm_per_full_px
    r = np.array([q.diameter_mm / 2 for q in pores])
    pairs = cKDTree(xy_mm).query_pairs(float(r.max()), output_type="ndarray")
    if len(pairs):
        i, j = pairs.min(axis=1), pairs.max(axis=1)  # j comes after i in contrast order
        dist = np.hypot(*(xy_mm[i] - xy_mm[j]).T)
        clash = dist < np.maximum(r[i], r[j])
        i, j = i[clash], j[clash]
    else:
        i = j = np.zeros(0, np.intp)
    stronger: dict[int, list[int]] = {}
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        stronger.setdefault(b, []).append(a)
    kept = np.ones(len(pores), bool)
    for b in sorted(stronger):
        kept[b] = not any(kept[a] for a in stronger[b])
    return [q for q, k in zip(pores, kept, strict=True) if k]


# Noise floors (``mdc`` of each metric below), from ``benchmarks/bench_repeatability.py``.
# Protocol "light + pose": no-change synthetic pairs (photokit.synth, skin tones ITA
# 55/35/15/-20) re-captured with exposure ratio x0.7-1.35, white balance x0.9-1.1 per
# channel, 5000-6800 K, rotation +-3 deg, zoom +-4 %, sensor noise, JPEG 85-95, measured
# by ``photokit.comparison.compare`` with the reference skin; run A (seed 0, 16 pairs per cell,
# 720x540 at 0.1 and 1200x900 at 0.07 mm/px, light gradient <= 8 %, vignetting <= 5 %:
# 125 pairs pass photokit's clipping check) and run B (seed 3, 10 pairs per cell, also
# 640x480 at 0.08 mm/px, gradient <= 12 %, vignetting <= 10 % as Camera.random: 118 pairs);
# gain-sensitive colour metrics (a*, EI, MI, ITA) from run A only, the rest from A + B.
# MDC = the largest of: 3.2 x sqrt(2) x Sw (Sw = RMS of
# the pair deltas / sqrt(2); z = 3.2 is the two-sided Bonferroni bound 0.05/26, so a
# no-change pair stays clear of ALL 26 floors with ~95 % probability, not only of each
# one), the largest |delta| of those pairs, and 2.77 x Sw on re-captured real portraits
# (``$PHOTOKIT_BENCH_DATA/faces`` + astronaut, pose-only); rounded up to two
# significant figures.
# Pore floors are the CALIBRATED ones (reference skin normalises the exposure):
# uncalibrated, pore contrast follows the exposure (mean_contrast Sw 0.20 vs 0.09 L*).


#: Relative SD of the pore count, sizes and contrasts between captures of the same skin
#: (VISIA pores repeat within 2-4 %, docs/NOISE.md); the count's Poisson share comes on top.
PORE_CAPTURE_CV = 0.04


def pore_features(an: Analysis) -> list[dict] | None:
    """Every pore the pore metrics counted, as the SPEC's ``measure --features`` entry
    ``{"x", "y", "diameter_mm"}`` (full-resolution pixels); None when not searched."""
    r = _pores(an)
    return None if r is None else [{"x": q.x, "y": q.y, "diameter_mm": q.diameter_mm} for q in r.pores]


def _count_noise(an: Analysis, value: float) -> float | str:
    r = _pores(an)
    return "no pores searched" if r is None else count_se([1.0] * len(r.pores), 100.0 / r.area_mm2,
                                                            PORE_CAPTURE_CV)


def _area_noise(an: Analysis, value: float) -> float | str:
    r = _pores(an)
    if r is None:
        return "no pores searched"
    return count_se([np.pi * (q.diameter_mm / 2) ** 2 for q in r.pores], 100.0 / r.area_mm2,
                    PORE_CAPTURE_CV)


def _mean_noise(attr: str):
    def noise(an: Analysis, value: float) -> float | str:
        r = _pores(an)
        return "no pores searched" if r is None else mean_se([getattr(q, attr) for q in r.pores],
                                                             PORE_CAPTURE_CV)
    return noise


@metric("texture.pore_density", unit="1/cm^2", mdc=9.5, better="lower", needs_colour=False,
        noise=_count_noise,
        group="pores", core=True, trend_rank=2, needs_scale=True,
        description="dark pore-scale blobs (0.2-1.0 mm, >= 1.5 L*) per cm^2 of skin")
def pore_density(an: Analysis) -> float | None:
    """Pores per cm^2 of analysed skin."""
    r = _pores(an)
    if r is None:
        return None
    return len(r.pores) / (r.area_mm2 / 100.0)


@metric("pores.mean_diameter_mm", trend_rank=100, unit="mm", mdc=0.022, better="lower", needs_colour=False,
        noise=_mean_noise("diameter_mm"),
        needs_scale=True, description="mean diameter of detected pores")
def mean_diameter_mm(an: Analysis) -> float | None:
    r = _pores(an)
    if r is None or not r.pores:
        return None
    return float(np.mean([q.diameter_mm for q in r.pores]))


@metric("pores.area_pct", unit="%", mdc=1.1, better="lower", needs_colour=False, needs_scale=True,
        noise=_area_noise,
        trend_rank=4, description="% of skin covered by detected pores (discs of their diameter)")
def area_pct(an: Analysis) -> float | None:
    r = _pores(an)
    if r is None:
        return None
    return float(100.0 * sum(np.pi * (q.diameter_mm / 2) ** 2 for q in r.pores) / r.area_mm2)


@metric("pores.mean_contrast", trend_rank=3, unit="L*", mdc=0.41, better="lower", needs_colour=False,
        noise=_mean_noise("contrast"),
        needs_scale=True, description="mean depth (L* contrast, 2x the DoG peak) of detected pores")
def mean_contrast(an: Analysis) -> float | None:
    """Mean pore contrast: how visible the pores are (saturating counts miss depth)."""
    r = _pores(an)
    if r is None or not r.pores:
        return None
    return float(np.mean([q.contrast for q in r.pores]))
