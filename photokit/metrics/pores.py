"""Pores: small dark blobs at pore scale, counted per cm^2, with their size distribution.

Method
------
Scale-normalised Laplacian of Gaussian approximated by differences of Gaussians
(Lowe 2004) on CIE L* at a working resolution of 0.14 mm/px (`PORE_MM_PER_PX`: finer
photos are area-averaged by the integer pyramid factor, then resampled to it after the
first blur), over the scales ``s_k = s_min 2^(k/3)`` that cover pore diameters 0.2-1.0
mm (a Gaussian dip of SD ``s`` is detected at ``s`` and is reported with diameter
``d = 2 sqrt(2) s``, the LoG's zero-crossing diameter, Lindeberg 1998). ``D_k =
(G_{s_{k+1}} - G_{s_k}) * L / (2^(1/3) - 1)`` approximates ``s^2 Laplacian(L)``; for a
dark Gaussian dip of depth ``A`` (L*) and SD ``s`` it peaks at ``A / 2`` at scale ``s``,
so the contrast estimate is ``2 D``. A pore is a local maximum of ``D`` in space and
scale (3 x 3 x 3) with contrast above 2.75 L* (the synthetic micro-relief alone yields
~7 false pores per cm^2 at 1.5 L*) and at least twice the RMS texture around it
(`_texture_rms`: L* about its mean within a 1 mm Gaussian window; speckle between glints
or on rough skin reaches 2.75 L* too), whose Hessian at its scale is blob-like (smaller
eigenvalue at least 0.35 of the larger: lines are wrinkles, not pores), whose centre
lies at least its own SD inside the skin mask (Euclidean distance to the nearest
non-skin pixel); of pores closer than the larger radius only the stronger is kept.
Candidates within `PORE_NEAR` of the contrast or texture threshold are kept apart as
near misses, for the pore count's noise model (`PoreResult`, `pore_found_p`). Its
centre is refined to a fraction of a pixel (the vertex of the parabola through ``D``
along each axis). Scales under 0.7 working pixels are not searched (at 0.14 mm/px,
pores under 0.28 mm are found at that scale and reported as 0.28 mm). As in SIFT, wide
scales are filtered on halved copies (the first two octaves at full resolution, then
one octave per halving, so a scale is never under 1.4 px where it is searched); the
halving is symmetric (odd lengths keep every other pixel, even lengths average pairs),
so a mirrored photo gives the mirrored pores. When even 1 mm pores are under 1.2 px of
SD (photos coarser than about 0.3 mm/px) the pore metrics are None. Every pore of the
skin is searched, on large photos too (no strip sampling), so `find_pores` lists them
all.

Real skin (``benchmarks/bench_pores.py``: a close-up at 0.084 mm/px with 1,361 pores
outlined by hand, 0.27-0.66 mm across, 5th-95th percentile): the working level and the
thresholds were chosen on the top half of the annotated region (0.06-0.16 mm/px give
F1 0.61-0.64 there, so the level is the coarsest that keeps it: a 12 MP photo at 0.07
mm/px is searched on 3 MP; then the smallest scale 0.7 px, the texture ratio 2 and its
1 mm window, from 0.6-1.0 px, 0-2.75 and 0.5-2 mm). Since the pore grid is sampled
bicubically (`_at_pore_level`, 2026-12-07): top half precision 0.64, recall 0.65, F1 0.65;
held-out bottom half precision 0.82, recall 0.73, F1 0.77; whole region precision 0.73,
recall 0.70, F1 0.71 (0.72 with the bilinear sampling these thresholds were chosen with;
a rescan of the contrast threshold 2.75-3.2 and the texture ratio 2-2.2 on the top half
found at most 0.657 there and 0.709-0.714 over the whole), pixel Dice 0.48 (published
anchors on such data: DoG 0.44, a trained CNN 0.67). The glabella (F1 0.60) holds most
of the tuning half's false hits: pores left unannotated near the brow, and dark gaps in
specular speckle.
Recall is what limits F1: the missed pores are faint and small, and lower thresholds
(or a finer working level) add false hits as fast as pores. The outlines bound it: 39 %
of them enclose a dip under 1 L* (below the skin's texture RMS, 1.2 L*; found at 0.2-0.43),
while the false hits are about as dark as the median outlined pore (error analysis and
the changes tried: docs/NOISE.md, ``bench_pores.py --errors``).

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
H. M. Finn, R. S. Johnson, "Adaptive detection mode with threshold control as a function
of spatially sampled clutter-level estimates", RCA Review 29, 414-464 (1968).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .analysis import Analysis, Grid
from .noise import found_se, mean_se
from .registry import family, job, metric, unmeasurable
from .texture import Searched, blur, enough_skin, physical_level_mm_per_px, work

#: Working resolution (mm/px) pores are searched at (see the module notes for the choice).
PORE_MM_PER_PX = 0.14
PORE_DIAMETER_MM = (0.2, 1.0)
PORE_CONTRAST = 2.75
PORE_BLOBNESS = 0.35
SCALES_PER_OCTAVE = 3
#: Scales searched at full resolution before the first halving (two octaves: a halved
#: copy then starts at a local SD of 2 s_min, at least 1.4 px).
OCTAVE0_SCALES = 6
#: Pores are counted over all the skin, never on sampled strips (`work`'s budget): the
#: working level is searched whole, so every pore is listed.
WHOLE_PX = 1 << 62
#: Smallest blob SD searched, in working pixels; finer pores are found at this scale.
MIN_SIGMA_PX = 0.7
#: When even the largest pore's SD is under this many pixels, pore metrics are None and
#: measure says why: the photo is too coarse (above about 0.29 mm/px).
MIN_LARGEST_SIGMA_PX = 1.2
#: A pore's contrast must be at least this multiple of the RMS texture around it
#: (`_texture_rms`): speckle in a glinting or rough patch is not a pore.
PORE_TEXTURE_RATIO = 2.0
#: SD (mm) of the Gaussian window the local texture RMS is taken over.
TEXTURE_WINDOW_MM = 1.0
#: Near misses are kept down to this share of a pore's thresholds (`PoreResult.near_margin`):
#: candidates whose contrast is at least this share of both `PORE_CONTRAST` and
#: `PORE_TEXTURE_RATIO` times the texture RMS; a re-capture may find them.
PORE_NEAR = 0.7

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
    """Every pore found, as arrays (full-resolution pixels, mm, L*), strongest first, and
    where they were searched.

    ``margin`` is each pore's log-margin over its thresholds, ``ln(C / max(PORE_CONTRAST,
    PORE_TEXTURE_RATIO E))`` (>= 0; `C` its contrast, `E` the texture RMS around it).
    ``near_x``, ``near_y``, ``near_diameter_mm`` and ``near_margin`` (< 0) are the near
    misses: candidates that passed every other test but fell short of a threshold by less
    than `PORE_NEAR`, away from any pore found; a re-capture of the same skin may find them
    (`found_again`).
    """

    x: np.ndarray
    y: np.ndarray
    diameter_mm: np.ndarray
    contrast: np.ndarray
    searched: Searched
    margin: np.ndarray
    near_x: np.ndarray
    near_y: np.ndarray
    near_diameter_mm: np.ndarray
    near_margin: np.ndarray

    @property
    def area_mm2(self) -> float:
        """The skin area searched."""
        return self.searched.area_mm2

    @property
    def count(self) -> int:
        return int(self.x.size)

    def found_again(self) -> tuple[np.ndarray, np.ndarray]:
        """Probability that a re-capture of the same skin finds each pore found and each
        near miss (`pore_found_p` of its margin)."""
        return (pore_found_p(self.margin, PORE_FOUND_PROBIT),
                pore_found_p(self.near_margin, PORE_NEAR_PROBIT))

    def pores(self) -> list[Pore]:
        return [Pore(*v) for v in zip(self.x.tolist(), self.y.tolist(), self.diameter_mm.tolist(),
                                      self.contrast.tolist(), strict=True)]

    def within(self, view: Analysis) -> PoreResult | None:
        """The pores whose centres lie on a view's skin (`Analysis.within`) and the skin
        searched there (None with too little skin)."""
        part = self.searched.within(view)
        if part is None:
            return None
        k, n = view.holds(self.x, self.y), view.holds(self.near_x, self.near_y)
        return PoreResult(self.x[k], self.y[k], self.diameter_mm[k], self.contrast[k], part,
                          self.margin[k], self.near_x[n], self.near_y[n], self.near_diameter_mm[n],
                          self.near_margin[n])


def find_pores(an: Analysis) -> list[Pore] | None:
    """Pores of an analysis (see module notes); None without enough skin."""
    r = _pores(an)
    return None if r is None else r.pores()


def _pores(an: Analysis) -> PoreResult | None:
    """The pores of the whole skin (memoised), narrowed to a view's skin."""
    return an.shared("pores.result", _detect, PoreResult.within)


def _pore_sigmas(mm_per_px: float) -> tuple[float, float]:
    """DoG SDs (pixels) of the smallest and largest pore at `mm_per_px`."""
    return (max(PORE_DIAMETER_MM[0] / _D_PER_S / mm_per_px, MIN_SIGMA_PX),
            PORE_DIAMETER_MM[1] / _D_PER_S / mm_per_px)


#: The pore job (its own working level, `PORE_MM_PER_PX`); started third.
job(__name__, start=2)
family("pores", title="Pores", order=3)

@unmeasurable("pores")
def _why_not(an: Analysis) -> str | None:
    """The photo too coarse for pores (the reason `_detect` gives None), else None."""
    p = physical_level_mm_per_px(an, PORE_MM_PER_PX)
    if p is None:
        return None
    if _pore_sigmas(p)[1] >= MIN_LARGEST_SIGMA_PX:
        return None
    coarsest = PORE_DIAMETER_MM[1] / _D_PER_S / MIN_LARGEST_SIGMA_PX
    return (f"at {p:.2g} mm/px the photo does not resolve {PORE_DIAMETER_MM[0]:g}-"
            f"{PORE_DIAMETER_MM[1]:g} mm pores (pores.* and texture.pore_density need about "
            f"{coarsest:.2f} mm/px or finer)")


def _detect(an: Analysis) -> PoreResult | None:
    w = work(an, PORE_MM_PER_PX, budget_px=WHOLE_PX)
    if w is None:
        return None
    _, (fx, fy) = _pore_grid(w)
    p = w.mm_per_px * float(np.sqrt(fx * fy))
    s_lo, s_hi = _pore_sigmas(p)
    if s_hi < MIN_LARGEST_SIGMA_PX:  # pores cannot be resolved at this scale
        return None
    n = max(1, int(np.ceil(np.log(s_hi / s_lo) / np.log(_K))) + 1)
    # scales s_0/k ... s_n*k so that every detection scale has a neighbour either side
    sig = [s_lo * _K ** (k - 1) for k in range(n + 2)]
    G0, mask = _at_pore_level(w, sig[0])
    # a pore's support must be skin: its centre at least its own SD inside the mask (the
    # distance to the nearest non-skin pixel, known before any filtering); maxima are
    # searched where that holds for the smallest scale
    inside = cv2.distanceTransform(np.pad(mask.view(np.uint8), 1), cv2.DIST_L2, cv2.DIST_MASK_5)[1:-1, 1:-1]
    valid = inside > sig[0]
    if not enough_skin(valid, p):
        return None
    found: list[np.ndarray] = []
    thr = float(PORE_NEAR * PORE_CONTRAST / 2.0)      # near misses are searched too
    valid8 = valid.view(np.uint8)
    # Octaves (Lowe 2004): the scales are searched in groups; group o on a copy halved o
    # times (`_half`). Group 0 (full resolution) holds the first OCTAVE0_SCALES scales, each
    # later group three (one octave), so a halved copy is only used from a local SD of
    # 2 sig[0] (>= 1.4 px) up: finer sampling costs pore sizes their precision. In a group
    # starting at local SD s0, G_i (SD s0 K^i) is built incrementally, G_i = G_{i-1} *
    # G(s0 K^(i-1) sqrt(K^2 - 1)), D_i = (G_{i+1} - G_i) / (K - 1) is the DoG of SD s0 K^i,
    # and scale i = 1..m of the group is searched; the next group starts from G_m halved.
    # The wide scales thus cost a fraction of full-resolution filtering.
    img, v8 = G0, valid8
    s0 = sig[0]
    sx = sy = 1.0          # working pixel = s * group pixel + t
    tx = ty = 0.0
    k0 = 0                 # scales searched so far
    while k0 < n:
        m = min(OCTAVE0_SCALES if k0 == 0 else 3, n - k0)
        # streamed: scale j is searched once D_{j+1} exists; three D and three G are kept
        # (fewer fresh arrays: they are slow to first touch)
        G, D, last = [img], [], img
        spare = None                         # the D searched last: the next D's buffer
        for i in range(1, m + 3):
            g = blur(G[-1], float(s0 * _K ** (i - 1) * np.sqrt(_K * _K - 1)))
            d = cv2.addWeighted(g, 1.0 / (_K - 1.0), G[-1], -1.0 / (_K - 1.0), 0.0, dst=spare)
            D.append(d)
            G.append(g)
            if i == m:
                last = g                     # G_m starts the next group
            if len(D) == 3:                  # D_{j-1}, D_j, D_{j+1} and G[-3] = G_j, j = i - 2
                found.append(_pores_at(D, G[-3], sig[k0 + i - 2], thr, v8, p, (sx, tx, sy, ty)))
                spare = D.pop(0)
                G.pop(0)
        k0 += m
        if k0 >= n:
            break
        img, (oy, ox) = _half(last)
        v8, _ = _half(v8, mask=True)
        s0 = s0 * _K ** m / 2
        tx, ty = tx + sx * ox, ty + sy * oy
        sx, sy = 2 * sx, 2 * sy
    found = np.concatenate(found, axis=1)
    deep = inside[np.round(found[1]).astype(np.intp), np.round(found[0]).astype(np.intp)]
    found = found[:, deep > found[2] / _D_PER_S / p]
    # the log-margin over the binding threshold: the contrast, or the texture around it
    texture = _texture_rms(found, G0, mask, p)
    margin = np.log(found[3] / np.maximum(PORE_CONTRAST, PORE_TEXTURE_RATIO * texture))
    found = np.vstack([found, margin])
    pores = _suppress_overlaps(found[:, margin >= 0], p)
    near = _suppress_overlaps(found[:, (margin < 0) & (margin >= np.log(PORE_NEAR))], p)
    near = near[:, ~_overlaps(near, pores, p)]

    def full(xy):
        return w.to_full((xy[0] + 0.5) * fx - 0.5, (xy[1] + 0.5) * fy - 0.5)
    h, wd = valid.shape
    grid = Grid(w.to_full(0, (np.arange(h) + 0.5) * fy - 0.5)[1],
                w.to_full((np.arange(wd) + 0.5) * fx - 0.5, 0)[0])
    return PoreResult(*full(pores), pores[2], pores[3], Searched(valid, grid, p), pores[4],
                      *full(near), near[2], near[4])


def _texture_rms(found: np.ndarray, g: np.ndarray, mask: np.ndarray, p: float) -> np.ndarray:
    """The texture RMS ``E`` around pores ``found = (x, y, ...)`` (pixels of `g`, one
    column each): a pore stands out of the texture around it when its contrast
    ``C >= PORE_TEXTURE_RATIO * E``.

    ``E = sqrt(<(g - <g>)^2>)`` is the local RMS of `g` (L* on the pore grid, `p` mm/px)
    about its local mean (shading gradients drop out), ``<.>`` the skin-normalised
    Gaussian mean of SD `TEXTURE_WINDOW_MM` over `mask` (normalised convolution, Knutsson
    1993). A threshold proportional to the local clutter level keeps false hits rare where
    the texture is strong (the constant false-alarm-rate principle, Finn & Johnson 1968):
    between the glints of a specular patch, or on rough skin, dark gaps reach pore
    contrast; on even skin faint pores stay in. The means are smooth on the window's
    scale, so they are taken on copies area-averaged by half the window's SD
    (``g m``, ``(g - <g>)^2 m`` and ``m`` are averaged, so the fine texture is kept) and
    read at the pores by bilinear interpolation.
    """
    if found.shape[1] == 0:
        return np.zeros(0)
    s = TEXTURE_WINDOW_MM / p
    h, w = g.shape
    f = max(1, int(s / 2))
    size = (max(1, w // f), max(1, h // f))
    fx, fy = size[0] / w, size[1] / h

    def reduced(x):  # block means on the reduced grid
        return cv2.resize(x, size, interpolation=cv2.INTER_AREA)

    def smooth(x):  # the Gaussian on the reduced grid
        return cv2.GaussianBlur(x, (0, 0), sigmaX=float(s * fx), sigmaY=float(s * fy),
                                borderType=cv2.BORDER_REFLECT_101)

    m = mask.astype(np.float32)
    weight = np.maximum(smooth(reduced(m)), np.float32(1e-3))
    local = smooth(reduced(cv2.multiply(g, m))) / weight
    dev = cv2.subtract(g, cv2.resize(local, (w, h), interpolation=cv2.INTER_LINEAR))
    var = smooth(reduced(cv2.multiply(cv2.multiply(dev, dev), m))) / weight
    # bilinear read at the pores' positions on the reduced grid (pixel centres map to
    # pixel centres; clamped at the border)
    u = np.clip((found[0] + 0.5) * fx - 0.5, 0, size[0] - 1)
    v = np.clip((found[1] + 0.5) * fy - 0.5, 0, size[1] - 1)
    u0 = np.minimum(u.astype(np.intp), max(size[0] - 2, 0))
    v0 = np.minimum(v.astype(np.intp), max(size[1] - 2, 0))
    a, b = u - u0, v - v0
    u1, v1 = np.minimum(u0 + 1, size[0] - 1), np.minimum(v0 + 1, size[1] - 1)
    var = ((var[v0, u0] * (1 - a) + var[v0, u1] * a) * (1 - b)
           + (var[v1, u0] * (1 - a) + var[v1, u1] * a) * b)
    return np.sqrt(np.maximum(var, 1e-12))


def _pore_grid(w) -> tuple[tuple[int, int], tuple[float, float]]:
    """Size ``(width, height)`` of the working level `w` resampled to `PORE_MM_PER_PX`
    when finer (its integer pyramid factor leaves up to 2x finer), and ``(fx, fy)``: a
    pixel ``(x, y)`` there covers working pixels ``((x + 0.5) fx - 0.5, (y + 0.5) fy - 0.5)``."""
    h, wd = w.L.shape
    f = PORE_MM_PER_PX / w.mm_per_px
    size = (max(1, round(wd / f)), max(1, round(h / f))) if f >= 1.05 else (wd, h)
    return size, (wd / size[0], h / size[1])


def _at_pore_level(w, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """L* of the working level `w` blurred by `sigma` (pixels of the pore grid,
    `_pore_grid`) and sampled on that grid, and the skin there (pixels at least half skin).

    The sampling is bicubic (Keys 1981): the blur band-limits the image, so it is nearly
    exact, and the result has the blur `sigma` whether or not the level is resampled.
    Bilinear sampling added the interpolation's own blur, on average a variance of
    ``1 / (6 f^2)`` pore-grid px^2 at a resampling factor `f` (0.15 px^2 at ``f = 1.05``,
    against ``0.7^2`` for the smallest scale): pores were about 12 % shallower on a level
    resampled by 1.05 than on one left as it was, and two captures of the same skin 6 %
    apart in scale, either side of that switch, differed by 16 % in pore count (a
    no-change pair of ``benchmarks/bench_noise.py``, 2026-12-07). R. Keys, "Cubic
    convolution interpolation for digital image processing", IEEE Trans. ASSP 29(6),
    1153-1160 (1981). doi:10.1109/TASSP.1981.1163711
    """
    size, (fx, fy) = _pore_grid(w)
    if size == w.L.shape[::-1]:
        return blur(w.L, sigma), w.mask
    g = cv2.resize(blur(w.L, sigma * float(np.sqrt(fx * fy))), size, interpolation=cv2.INTER_CUBIC)
    m = cv2.resize(w.mask.view(np.uint8) * np.uint8(255), size, interpolation=cv2.INTER_LINEAR) >= 128
    return g, m


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


def _pores_at(D: list, g: np.ndarray, sigma: float, thr: float, valid8: np.ndarray,
              p: float, to_work=(1.0, 0.0, 1.0, 0.0)) -> np.ndarray:
    """Pores at the middle scale of ``D = [D_below, D_here, D_above]`` on a copy of the
    working level whose pixel ``(x, y)`` is working pixel ``(sx x + tx, sy y + ty)``,
    ``to_work = (sx, tx, sy, ty)``: scale-space maxima (`_scale_space_maxima`) that pass
    the blob test on the Hessian of `g` (the Gaussian there) and whose diameter
    ``2 sqrt(2) sigma`` (`sigma` in working pixels) is in `PORE_DIAMETER_MM`. Returns rows
    ``(x, y, diameter_mm, contrast)`` (working pixels, mm, L*), one column per pore."""
    ys, xs = _scale_space_maxima(D, thr, valid8)
    diam = sigma * _D_PER_S * p
    if xs.size == 0 or not PORE_DIAMETER_MM[0] * 0.99 <= diam <= PORE_DIAMETER_MM[1] * 1.01:
        return np.zeros((4, 0))
    # the 3 x 3 neighbourhood of each point (maxima lie off the border)
    ym, yp, xm, xp = ys - 1, ys + 1, xs - 1, xs + 1
    c = g[ys, xs]
    lxx = g[ys, xp] - 2 * c + g[ys, xm]
    lyy = g[yp, xs] - 2 * c + g[ym, xs]
    lxy = 0.25 * (g[yp, xp] - g[yp, xm] - g[ym, xp] + g[ym, xm])
    ht = 0.5 * (lxx + lyy)
    dd = np.sqrt(0.25 * (lxx - lyy) ** 2 + lxy ** 2)
    l1, l2 = ht + dd, ht - dd
    ok = (l1 > 0) & (l2 >= PORE_BLOBNESS * l1)
    sx, tx, sy, ty = to_work
    xs, ys = xs[ok], ys[ok]
    # sub-pixel centre: the vertex of the parabola through D at the maximum and its two
    # neighbours along each axis (maxima lie off the border, `_scale_space_maxima`)
    d = D[1]
    c = d[ys, xs].astype(np.float64)
    offs = []
    for lo, hi in ((d[ys, xs - 1], d[ys, xs + 1]), (d[ys - 1, xs], d[ys + 1, xs])):
        curv = lo - 2 * c + hi
        offs.append(np.clip(0.5 * (lo - hi) / np.minimum(curv, -1e-9), -0.5, 0.5))
    return np.stack([(xs + offs[0]) * sx + tx, (ys + offs[1]) * sy + ty, np.full(xs.size, diam), 2.0 * c])


def _scale_space_maxima(D: list, thr: float, valid8: np.ndarray):
    """Rows and columns where ``D[1]`` (of ``D = [D_below, D_here, D_above]``) is above
    `thr` on valid pixels off the border and a 3 x 3 x 3 maximum: not below any neighbour
    at its scale, above every pixel of the 3 x 3 blocks at the scales below and above.

    The same-scale test is one comparison with the 3 x 3 maximum (``cv2.dilate``: not
    below any neighbour is ``D >= max_3x3 D``), together with the threshold; it leaves a
    sparse set (2-25 % of the pixels above the threshold on the 12 MP close-up), where
    the 18 neighbours at the two other scales are gathered (strictly below the centre).
    """
    d = D[1]
    ok = cv2.bitwise_and(cv2.compare(d, thr, cv2.CMP_GT), valid8)
    cv2.bitwise_and(ok, cv2.compare(d, cv2.dilate(d, _NEIGHBOURS), cv2.CMP_GE), dst=ok)
    ok[[0, -1], :] = 0
    ok[:, [0, -1]] = 0
    pts = cv2.findNonZero(ok)
    if pts is None:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    w = d.shape[1]
    idx = pts[:, 0, 1].astype(np.intp) * w + pts[:, 0, 0]
    for level in (0, 2):
        flat, centre = D[level].ravel(), d.ravel().take(idx)
        for off in (-w - 1, -w, -w + 1, -1, 0, 1, w - 1, w, w + 1):
            nb = flat.take(idx + off)
            keep = centre > nb
            idx, centre = idx[keep], centre[keep]
    return np.divmod(idx, w)


def _overlaps(a: np.ndarray, b: np.ndarray, mm_per_px: float) -> np.ndarray:
    """For each column of `a` (rows ``x, y, diameter_mm, ...``, `mm_per_px` working
    pixels), whether its centre lies within the larger radius of it and a column of `b`."""
    if a.shape[1] == 0 or b.shape[1] == 0:
        return np.zeros(a.shape[1], bool)
    from scipy.spatial import cKDTree

    r_a, r_b = a[2] / 2 / mm_per_px, b[2] / 2 / mm_per_px
    pairs = cKDTree(a[:2].T).sparse_distance_matrix(cKDTree(b[:2].T), float(max(r_a.max(), r_b.max())),
                                                     output_type="ndarray")
    hit = pairs["v"] < np.maximum(r_a[pairs["i"]], r_b[pairs["j"]])
    out = np.zeros(a.shape[1], bool)
    out[pairs["i"][hit]] = True
    return out


#: The 3 x 3 neighbourhood (`_scale_space_maxima`).
_NEIGHBOURS = np.ones((3, 3), np.uint8)


def _suppress_overlaps(found: np.ndarray, mm_per_px: float) -> np.ndarray:
    """Of pores ``found = (x, y, diameter_mm, contrast)`` (one column each, `mm_per_px`
    working pixels), keep the strongest of those whose centres lie within the larger
    one's radius.

    Greedy in order of contrast; only pores with a clash (pairs from a k-d tree query at
    the largest radius) are looked at one by one. Returns the kept columns, strongest first.
    """
    found = found[:, np.argsort(-found[3], kind="stable")]
    if found.shape[1] < 2:
        return found
    from scipy.spatial import cKDTree

    xy = found[:2].T
    r = found[2] / 2 / mm_per_px
    pairs = cKDTree(xy).query_pairs(float(r.max()), output_type="ndarray")
    if len(pairs):
        i, j = pairs.min(axis=1), pairs.max(axis=1)  # j comes after i in contrast order
        clash = np.hypot(*(xy[i] - xy[j]).T) < np.maximum(r[i], r[j])
        i, j = i[clash], j[clash]
    else:
        i = j = np.zeros(0, np.intp)
    stronger: dict[int, list[int]] = {}
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        stronger.setdefault(b, []).append(a)
    kept = np.ones(found.shape[1], bool)
    for b in sorted(stronger):
        kept[b] = not any(kept[a] for a in stronger[b])
    return found[:, kept]


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


#: Largest ratio of two photos' mm per pixel at which a pore metric's change is judged
#: (`photokit.metrics.registry.Metric.resolution_tolerance`): the same close-up resized by
#: 1.05-1.2 moved the pore metrics by 0.4-0.6 of their floors, by 1.5 up to 1.0 (docs/NOISE.md).
PORE_RESOLUTION_TOLERANCE = 1.2

#: Relative SD of the pores' mean size and contrast between captures of the same skin
#: (VISIA pores repeat within 2-4 %, docs/NOISE.md). The count and the covered share have
#: their own model (`PORE_COUNT_CAPTURE_CV`, `PORE_AREA_JITTER`).
PORE_CAPTURE_CV = 0.04

#: Probit ``(a, b)`` of the chance that a re-capture finds a pore found here again,
#: ``Phi(a + b m)`` of its log-margin `m` (`pore_found_p`); and of a near miss
#: (`PORE_NEAR_PROBIT`). Fitted by maximum likelihood on synthetic re-captures
#: (``benchmarks/bench_pores.py --found-again 6``: 6 skins x 5 captures, light and pose as
#: ``bench_noise.py``, 0.07 mm/px; ~500,000 pores and ~250,000 near misses looked for in
#: the other captures): found (-0.24, 3.17) on light skin, (0.09, 3.24) on dark (ITA -20);
#: near (-0.65, 5.75) and (-0.61, 5.82). A pore just over its thresholds is found again
#: about half the time, one 35 % over them (m = 0.3) nine times in ten.
PORE_FOUND_PROBIT = (-0.05, 3.2)
PORE_NEAR_PROBIT = (-0.6, 6.0)
#: Relative SD of the pore count between captures beyond each pore's own flicker
#: (`found_se`): exposure, focus and JPEG move every pore's contrast at once. On the same
#: re-captures the density's SD over captures was 0.61 /cm^2 (light skin, 49 /cm^2) and
#: 0.46 (dark, 44 /cm^2), flicker alone 0.31 and 0.28: 1.1 % and 0.8 % on top; on the
#: real close-up re-captured 5 times (``bench_noise.py`` "real") about 1.2 %. (VISIA's
#: pores repeat within 2-4 %.) That holds where pores are searched at `PORE_MM_PER_PX`
#: (photos of 0.14 mm/px or finer); coarser photos, whose pores lie near the resolution
#: limit, move more: a 12 MP portrait at 0.24 mm/px re-captured 6 times (warp +-2 deg,
#: +-3 %, exposure +-8 %, white balance +-3 %, noise, JPEG) gave z-scores of RMS 1.38
#: under 2.5 %. The term rises linearly to `PORE_COUNT_CAPTURE_CV_COARSE` (VISIA's upper
#: 4 %) at `PORE_COARSE_MM_PER_PX` (`pore_capture_cv`).
PORE_COUNT_CAPTURE_CV = 0.015
PORE_COUNT_CAPTURE_CV_COARSE = 0.04
#: Relative SD of a found pore's disc area between captures (its scale is one of three
#: per octave): on the re-captures above, the log area ratio of a pore found in two
#: captures had an SD of 0.179 (light skin) and 0.190 (dark), 0.13 per capture.
PORE_AREA_JITTER = 0.13
#: The covered share's capture term over the count's (`pore_capture_cv`): exposure and
#: focus shift the scale pores are found at, too. On the same re-captures (covered share
#: 5.1 % and 4.5 %, SD over captures 0.101 and 0.089 points) the share needs 1.8 % where
#: the count needs 1.1 % and 0.8 %; on the 0.24 mm/px portrait re-captures (12 pairs) the
#: share's z-scores had an RMS of 1.2 under the count's term plus 1 %.
PORE_AREA_CAPTURE_RATIO = 1.5
PORE_COARSE_MM_PER_PX = 0.25


def pore_features(an: Analysis) -> list[dict] | None:
    """Every pore the pore metrics counted, as the SPEC's ``measure --features`` entry
    ``{"x", "y", "diameter_mm"}`` (full-resolution pixels); None when not searched."""
    r = _pores(an)
    return None if r is None else [{"x": x, "y": y, "diameter_mm": d} for x, y, d in
                                   zip(r.x.tolist(), r.y.tolist(), r.diameter_mm.tolist(), strict=True)]


def pore_found_p(margin, probit) -> np.ndarray:
    r"""Probability that a re-capture of the same skin finds a pore (or a near miss) again:
    :math:`\Phi(a + b\,m)`, `m` its log-margin over its thresholds (`PoreResult.margin`),
    ``probit = (a, b)``: `PORE_FOUND_PROBIT` for pores found, `PORE_NEAR_PROBIT` for near
    misses (fitted by ``benchmarks/bench_pores.py --found-again``)."""
    from scipy.special import ndtr

    a, b = probit
    return ndtr(a + b * np.asarray(margin, np.float64))


def pore_capture_cv(mm_per_px: float) -> float:
    """The pore count's capture term at the resolution pores were searched at:
    `PORE_COUNT_CAPTURE_CV` up to `PORE_MM_PER_PX`, rising linearly to
    `PORE_COUNT_CAPTURE_CV_COARSE` at `PORE_COARSE_MM_PER_PX` and beyond."""
    t = np.clip((mm_per_px - PORE_MM_PER_PX) / (PORE_COARSE_MM_PER_PX - PORE_MM_PER_PX), 0.0, 1.0)
    return float(PORE_COUNT_CAPTURE_CV + t * (PORE_COUNT_CAPTURE_CV_COARSE - PORE_COUNT_CAPTURE_CV))


def _count_noise(an: Analysis, value: float) -> float | str:
    """`found_se` of the pore count per cm^2: a re-capture of the same skin finds the same
    pores but those near a threshold (docs/NOISE.md, "Pores: the same pores, found again"),
    and the capture moves them all (`pore_capture_cv`)."""
    r = _pores(an)
    if r is None:
        return "no pores searched"
    pf, pn = r.found_again()
    return found_se(np.ones(r.count), pf, np.ones(r.near_margin.size), pn, per_weight=100.0 / r.area_mm2,
                    capture_cv=pore_capture_cv(r.searched.mm_per_px))


def _area_noise(an: Analysis, value: float) -> float | str:
    """`found_se` of the pores' covered share: each pore found or narrowly missed is found
    again with its `found_again` probability, a found pore's disc area varies by
    `PORE_AREA_JITTER`, and the capture moves them all (`PORE_AREA_CAPTURE_RATIO` times
    `pore_capture_cv`)."""
    r = _pores(an)
    if r is None:
        return "no pores searched"
    pf, pn = r.found_again()
    return found_se(np.pi * (r.diameter_mm / 2) ** 2, pf, np.pi * (r.near_diameter_mm / 2) ** 2, pn,
                    per_weight=100.0 / r.area_mm2, jitter=PORE_AREA_JITTER,
                    capture_cv=PORE_AREA_CAPTURE_RATIO * pore_capture_cv(r.searched.mm_per_px))


def _mean_noise(attr: str):
    def noise(an: Analysis, value: float) -> float | str:
        r = _pores(an)
        return "no pores searched" if r is None else mean_se(getattr(r, attr),
                                                             PORE_CAPTURE_CV)
    return noise


@metric("texture.pore_density", resolution_tolerance=PORE_RESOLUTION_TOLERANCE,
        unit="1/cm^2", mdc=9.5, better="lower", needs_colour=False,
        noise=_count_noise,
        group="pores", core=True, trend_rank=2, needs_scale=True, version=3,
        description=f"dark pore-scale blobs (0.2-1.0 mm, >= {PORE_CONTRAST:g} L*) per cm^2 of skin")
def pore_density(an: Analysis) -> float | None:
    """Pores per cm^2 of analysed skin."""
    r = _pores(an)
    if r is None:
        return None
    return r.count / (r.area_mm2 / 100.0)


@metric("pores.mean_diameter_mm", resolution_tolerance=PORE_RESOLUTION_TOLERANCE,
        trend_rank=100, unit="mm", mdc=0.022, better="lower", needs_colour=False,
        noise=_mean_noise("diameter_mm"), version=3,
        needs_scale=True, description="mean diameter of detected pores")
def mean_diameter_mm(an: Analysis) -> float | None:
    r = _pores(an)
    if r is None or not r.count:
        return None
    return float(np.mean(r.diameter_mm))


@metric("pores.area_pct", resolution_tolerance=PORE_RESOLUTION_TOLERANCE,
        unit="%", mdc=1.1, better="lower", needs_colour=False, needs_scale=True,
        noise=_area_noise, version=3,
        trend_rank=4, description="% of skin covered by detected pores (discs of their diameter)")
def area_pct(an: Analysis) -> float | None:
    r = _pores(an)
    if r is None:
        return None
    return float(100.0 * np.sum(np.pi * (r.diameter_mm / 2) ** 2) / r.area_mm2)


@metric("pores.mean_contrast", resolution_tolerance=PORE_RESOLUTION_TOLERANCE,
        trend_rank=3, unit="L*", mdc=0.41, better="lower", needs_colour=False,
        noise=_mean_noise("contrast"), version=3,
        needs_scale=True, description="mean depth (L* contrast, 2x the DoG peak) of detected pores")
def mean_contrast(an: Analysis) -> float | None:
    """Mean pore contrast: how visible the pores are (saturating counts miss depth)."""
    r = _pores(an)
    if r is None or not r.count:
        return None
    return float(np.mean(r.contrast))
