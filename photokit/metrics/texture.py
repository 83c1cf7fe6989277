"""Skin texture and lines in millimetres: roughness, GLCM, LBP, SELS-like fractions, wrinkles.

All filters are set in millimetres and run on a working resolution chosen from the
feature size (`photokit.metrics.analysis.Analysis.level`), cropped to the skin's bounding box,
with OpenCV's separable Gaussian filters (no scikit-image on the hot path).

Maps and settings
-----------------
- **Lightness** ``L*`` (CIE 1976) from linear RGB through ``Y`` only
  (``L* = 116 Y^(1/3) - 16``, ``903.3 Y`` below ``(6/29)^3``), computed on the working
  level: identical to the L* of `photokit.colour.convert.linear_to_lab`, a third of the cost.
- **Fine-texture band** (`band`): ``B = G_{s1} * L - Gn_{s2} * L`` with Gaussian ``G``
  and a mask-normalised Gaussian ``Gn`` (``G*(L m) / G*m``, so the background never
  leaks in). A Gaussian of SD ``s`` halves amplitude at wavelength ``pi s /
  sqrt(ln2 / 2) ~ 5.34 s``, so the band 0.2-2 mm uses ``s1 = 0.037 mm``,
  ``s2 = 0.37 mm``; it removes shading and tone (detrending) and keeps micro-relief,
  furrows and pores. Working resolution 0.1 mm/px (the band's Nyquist limit); ``s1`` is
  at least 0.7 px (pixel noise and JPEG otherwise dominate), and texture metrics are None
  when ``s2 < 2 s1`` (photos coarser than about 0.27 mm/px cannot resolve the band).
- ``texture.roughness`` = ``Rq`` = RMS of ``B`` over the (eroded) skin; ``texture.ra``
  = mean ``|B|`` (Ra), in L* units.
- **GLCM** (Haralick 1973) of ``B`` quantised into 16 levels over a fixed range
  ``[-6, 6]`` L* (fixed, so visits compare), at 0.3 mm, four directions, symmetric,
  pairs with both pixels on skin; contrast ``sum (i-j)^2 P``, homogeneity
  ``sum P / (1 + (i-j)^2)``, energy ``sqrt(sum P^2)`` (scikit-image's definitions),
  averaged over directions. 0.3 mm is ``d`` = 3.57 px at 0.084 mm/px: the matrix is
  interpolated between the two whole distances around it, ``P = (1 - t) P(floor d) +
  t P(floor d + 1)``, ``t = d - floor d`` (`glcm_at`); a distance rounded to whole
  pixels jumped from 4 to 3 between two re-captures 3 % apart in scale and moved the
  contrast by 26 % (docs/NOISE.md).
- **LBP** (Ojala et al. 2002), 8 neighbours on a 0.3 mm circle, bilinear: uniformity =
  fraction of skin pixels whose pattern has at most two 0/1 transitions.
- **SELS-like** (after the Visioscan Surface Evaluation of the Living Skin): percentage
  of skin whose band value is below ``-1.5`` L* (dark: furrows, pores) or above ``+1.5``
  (bright: scaling, crests).
- **Lines** (`ridges`), on photos of 0.2 mm/px or finer: an oriented, two-sided line
  evidence at scales ``s = 0.3, 0.6, 1.2 mm`` on a working level of about 0.15 mm/px
  (``s = 0.3 mm`` spans 2 px; coarser scales on reduced copies), over all the skin on
  every photo (never on sampled strips: every line counted is listed). For each of 16
  directions ``d`` (integer pixel steps, at most 7 deg from any line), with
  ``k = s^2 / 0.385`` and ``H`` the Hessian of ``G_s * L*``: the depth across ``d``,
  ``D_n = k n^T H n``, equals the depth ``A`` of a Gaussian valley at its centre (the
  scale-normalised curvature of a valley of width ``w`` peaks at ``s = sqrt(2) w``
  with value ``0.385 A``, Lindeberg 1998); the per-pixel evidence
  ``E = clip(D_n - |D_d|, +-1.5 L*)`` subtracts the curvature along ``d`` (zero on a
  line, all of ``D_n`` on a round pore) and caps what one pore, spot or crest can add;
  ``E`` is averaged over each half of a 3 mm segment through the pixel (doubling sums
  of shifted copies, `run_sum`), and the evidence is the smaller half, so it is high
  only where a valley continues on both sides, while micro-relief furrows and pores a
  few tenths of a millimetre long average out. Wider scales count
  ``(s / 0.3 mm)^-0.5`` as much (a wide valley must be deeper: tone mottling is wide
  and shallow). Centre lines: non-maximum suppression across the line, hysteresis
  (evidence >= 1.2 L* seeds, grown down to 0.6 L*), traced separately in four
  overlapping orientation groups (+-30 deg), so a line is not merged with the furrows
  that cross it; segments shorter than 3 mm, or shorter than 8 mm and curved
  (principal-axis span < 0.7 x length), are dropped. On photos coarser than 0.2 mm/px
  (the 0.3 mm scale under 1.5 px, where 16 directions cannot be resolved) only wide
  wrinkles are visible, and the local Hessian detector is used instead:
  ``depth = s^2 (lambda_1 - |lambda_2|) / 0.385`` (``lambda_1 >= lambda_2`` the
  eigenvalues, blobs rejected as by Frangi's ``R_B``), max over scales, hysteresis
  2 / 1 L*, the same length and shape tests in one group.
  Length = sum over centre-line pixels of ``1 / max(|cos t|, |sin t|)`` pixels (``t``
  the line direction). ``texture.wrinkle_density`` = length (mm) per analysed skin
  area (cm^2); ``texture.wrinkle_depth`` = mean ``D_n`` (L*) over the centre pixels.
  Against the generator's truth (`photokit.synth`, 0.07 mm/px, ``benchmarks/
  bench_lines.py``) the oriented evidence finds about half of the true line length at
  90 % precision for its default fine lines (about 3 L* deep, as deep as its own
  micro-relief furrows), three quarters at 93 % for lines 1.6 x deeper.
  Noise (`line_density_noise`): a re-capture finds the same lines again, except those
  near the thresholds; each line piece and each near miss (`Lines.near`) is found again
  with a probability of its mean evidence and length, fitted on re-captures
  (docs/NOISE.md "Lines: the same lines, found again").

Without a known scale, one relative unit replaces the millimetre (`photokit.metrics.scale.
relative_mm_per_px`); those metrics are flagged by ``needs_scale``.

References
----------
R. M. Haralick, K. Shanmugam, I. Dinstein, "Textural features for image
classification", IEEE Trans. SMC 3(6), 610-621 (1973). doi:10.1109/TSMC.1973.4309314
T. Ojala, M. Pietikainen, T. Maenpaa, "Multiresolution gray-scale and rotation
invariant texture classification with local binary patterns", IEEE TPAMI 24(7),
971-987 (2002). doi:10.1109/TPAMI.2002.1017623
A. F. Frangi et al., "Multiscale vessel enhancement filtering", MICCAI 1998, LNCS 1496,
130-137. doi:10.1007/BFb0056195
T. Lindeberg, "Edge detection and ridge detection with automatic scale selection",
IJCV 30(2), 117-156 (1998). doi:10.1023/A:1008097225773
H. Tronnier et al., "Surface evaluation of living skin", Adv. Exp. Med. Biol. 455,
507-516 (1999) (Visioscan SELS parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import sparse, special
from scipy.sparse import csgraph

from ..imaging.filters import gaussian
from .analysis import Analysis, Grid, level_factor
from .noise import MDC_PER_SW, count_se, found_se, mean_se, ratio_se
from .registry import family, get, job, metric, unmeasurable
from .scale import relative_mm_per_px

#: Smallest analysed skin area (mm^2, or relative units^2) for a texture number.
MIN_SKIN_MM2 = 20.0
#: Smallest number of working-level skin pixels for any number at all.
MIN_SKIN_PX = 400
#: Context kept around the skin's bounding box on working levels (mm).
CROP_MARGIN_MM = 4.0
#: Largest working image analysed whole (pixels); above it, strips are sampled.
WORK_BUDGET_PX = 750_000
#: A budget no crop exceeds: lines (and pores) are searched over all the skin, never on
#: sampled strips, so every feature counted is listed (the pores' budget is the same
#: number, so a level both work on shares one crop).
WHOLE_PX = 1 << 62
#: Height of each sampled strip (mm).
STRIP_MM = 12.0
#: The band's strips: margins (mm; 3 SD of its coarse edge, 1.1 mm, and the erosion of
#: its fine edge) and fewest strips, spread over the skin (`strips`, `sample_blocks`).
BAND_MARGIN_MM = 1.5
BAND_MIN_STRIPS = 6

TEXTURE_MM_PER_PX = 0.1
#: The band's fine edge never goes below this SD in pixels (wavelength ~3.7 px): on
#: coarse photos pixel noise and JPEG would dominate it. At the 0.1 mm/px working
#: resolution this moves the edge from 0.2 to 0.37 mm.
BAND_MIN_SIGMA_PX = 0.7
#: The band must span at least this ratio of SDs, else texture metrics are None (the
#: photo is too coarse: above about 0.27 mm/px).
BAND_MIN_OCTAVES = 2.0
BAND_MM = (0.2, 2.0)
GLCM_DISTANCE_MM = 0.3
GLCM_LEVELS = 16
GLCM_RANGE = 6.0
LBP_RADIUS_MM = 0.3
LBP_STRIDE = 2
SELS_THRESHOLD = 1.5

LINE_SCALES_MM = (0.3, 0.6, 1.2)
#: The finest line scale spans this many working pixels (sets the line working level).
LINE_PX_PER_SCALE = 2.0
#: Length of each half of the oriented integration along a line (mm).
LINE_HALF_MM = 1.5
#: Line directions (integer pixel steps ``(dx, dy)``): 16 orientations, at most 7 deg
#: from any line direction (a 1.5 mm half then strays < 0.19 mm from a straight line).
LINE_DIRECTIONS = ((1, 0), (4, 1), (2, 1), (4, 3), (1, 1), (3, 4), (1, 2), (1, 4),
                   (0, 1), (-1, 4), (-1, 2), (-3, 4), (-1, 1), (-4, 3), (-2, 1), (-4, 1))
#: Each half is at least this many scales long (wide valleys need longer support).
LINE_HALF_SCALES = 4.0
#: Line evidence per pixel is clipped to +-LINE_CLIP (L*).
LINE_CLIP = 1.5
#: Wider valleys must be deeper: evidence at scale s is scaled by (s / s_0)^-this.
LINE_WIDTH_EXPONENT = 0.5
#: Slope kept beyond the clip (breaks ties between saturated pixels).
LINE_CLIP_SLOPE = 0.02
#: Hysteresis on the averaged evidence (L*): seeds and growth.
LINE_DEPTH_HIGH = 1.2
LINE_DEPTH_LOW = 0.6
LINE_MIN_LENGTH_MM = 3.0
LINE_MIN_STRAIGHTNESS = 0.7
LINE_LONG_MM = 8.0
#: Components that failed a test but were at least this long (mm) are near misses
#: (`Lines.near`): a re-capture may find them as lines.
LINE_NEAR_MM = 1.5
#: Orientation groups for tracing, and their half width (radians; groups overlap).
LINE_GROUPS = 4
LINE_GROUP_HALF_WIDTH = np.pi / 6
#: Scales narrower than this many working pixels cannot be resolved and are skipped.
LINE_MIN_SIGMA_PX = 0.8
#: The oriented detector needs the finest scale to span this many working pixels
#: (photos up to 0.2 mm/px); coarser photos use the local Hessian detector below.
LINE_ORIENTED_MIN_PX = 1.5
#: Local Hessian detector (coarse photos): working level, hysteresis (L*), blob rejection
#: (``|l2| <= (1 - a) l1``); its settings are those before the oriented detector, unchanged.
HESSIAN_PX_PER_SCALE = 2.5
HESSIAN_DEPTH_HIGH = 2.0
HESSIAN_DEPTH_LOW = 1.0
HESSIAN_ANISOTROPY = 0.5

#: The line metrics share their own map (`ridges`), not the band's: a job of their own in
#: `photokit.measurement.measure` (they then run beside the band metrics).
LINES_JOB = job("lines", start=1)

#: The band metrics share the pores' working level: started last.
TEXTURE_JOB = job(__name__, start=4)

family("texture", title="Texture", order=2)

_SIGMA_PER_WAVELENGTH = float(np.sqrt(np.log(2) / 2) / np.pi)  # 0.1874
_PEAK_VALLEY = 2 / (3 * np.sqrt(3))  # 0.385


# --------------------------------------------------------------------------- helpers
def scaled(an: Analysis) -> Analysis | None:
    """`an` itself when its scale is known, else a twin on the relative scale (a view:
    its root's, narrowed); None without skin."""
    if an.skin_pixels < MIN_SKIN_PX:
        return None
    if an.mm_per_px:
        return an
    if an.root is not an:
        whole = scaled(an.root)
        if whole is None:
            return None
        r0, r1, c0, c1 = an.bbox
        return an.cached("scale.relative", lambda v: whole.within(v.mask[r0:r1, c0:c1], (r0, c0)))
    return an.cached("scale.relative",
                     lambda a: a.rescaled(relative_mm_per_px(a.skin_pixels), "relative"))


def lightness(linear: np.ndarray) -> np.ndarray:
    """CIE L* (D65) of linear sRGB, float32, via luminance Y only.

    ``Y = 0.2126729 R + 0.7151522 G + 0.0721750 B``; ``L* = 116 Y^(1/3) - 16`` for
    ``Y > (6/29)^3``, else ``(24389/27) Y`` (CIE 15:2004).
    """
    lin = np.ascontiguousarray(linear, dtype=np.float32)
    y = cv2.transform(lin, np.array([[0.2126729, 0.7151522, 0.0721750]], np.float32))
    y = np.maximum(y, 0, out=y)
    out = cv2.pow(y, 1.0 / 3.0)
    out *= np.float32(116)
    out -= np.float32(16)
    low = y <= np.float32(216 / 24389)
    if low.any():
        out[low] = y[low] * np.float32(24389 / 27)
    return out


@dataclass
class Work:
    """A cropped (and, on large photos, strip-sampled) working level.

    Attributes
    ----------
    level : Analysis
        The pyramid level.
    L : ndarray, float32
        CIE L* of the crop (or of the stacked sample strips).
    mask : ndarray of bool
        Skin in `L`'s pixels (true skin in the strips' margins too, so erosions and
        filters near a strip's edge see real data).
    core : ndarray of bool or None
        Rows whose statistics count (None: all rows). Margins around each strip, as wide
        as the largest filter support, are excluded so no filter mixes two strips.
    row_map : ndarray of int
        Level row of each row of `L`.
    x0 : int
        Level column of `L`'s first column.
    factor : float
        Level pixel size in pixels of the analysed image. A working pixel ``(x, y)`` is
        ``((x + x0 + 0.5) f - 0.5, (row_map[y] + 0.5) f - 0.5)`` at full resolution.
    origin : tuple of int
        Row and column of ``L[0, 0]`` in the arrays of the whole skin's work (a view's
        work, `within`, is a window of those; ``(0, 0)`` for the whole skin).
    share : float
        Share of the crop's rows that the strips count (1: no sample).
    """

    level: Analysis
    L: np.ndarray
    mask: np.ndarray
    core: np.ndarray | None
    row_map: np.ndarray
    mm_per_px: float
    x0: int
    factor: float
    origin: tuple[int, int] = (0, 0)
    share: float = 1.0

    @property
    def grid(self) -> Grid:
        """Where `L`'s pixels lie in the analysed image."""
        return Grid((self.row_map + 0.5) * self.factor - 0.5,
                    (np.arange(self.L.shape[1]) + self.x0 + 0.5) * self.factor - 0.5)

    def within(self, view: Analysis) -> Work | None:
        """This work narrowed to a view's skin (`Analysis.within`): the window of its
        arrays around that skin, the mask limited to it (None with too little skin)."""
        rs, cs, skin = view.on_grid(self.grid)
        mask = self.mask[rs, cs] & skin
        if cv2.countNonZero(mask.view(np.uint8)) < MIN_SKIN_PX // 4:
            return None
        return Work(self.level, self.L[rs, cs], mask, None if self.core is None else self.core[rs],
                    self.row_map[rs], self.mm_per_px, self.x0 + cs.start, self.factor,
                    (self.origin[0] + rs.start, self.origin[1] + cs.start), self.share)

    def window(self, whole: Work) -> tuple[slice, slice]:
        """Where this work's arrays lie in those of `whole` (the work it narrows)."""
        r, c = self.origin[0] - whole.origin[0], self.origin[1] - whole.origin[1]
        return slice(r, r + self.L.shape[0]), slice(c, c + self.L.shape[1])

    def to_full(self, x, y):
        y = np.asarray(y)
        yi = np.clip(np.floor(y).astype(np.int64), 0, len(self.row_map) - 1)
        yl = self.row_map[yi] + (y - yi)
        return ((np.asarray(x) + self.x0 + 0.5) * self.factor - 0.5, (yl + 0.5) * self.factor - 0.5)

    def restrict(self, valid: np.ndarray) -> np.ndarray:
        """`valid` limited to the counted rows."""
        return valid if self.core is None else valid & self.core[:, None]


def strips(h: int, w: int, budget: int, strip_px: int, pad: int, min_strips: int = 1):
    """Rows of a systematic sample of horizontal strips: (rows, core) or None.

    Strips of `strip_px` rows are kept every ``k``-th (``k`` the smallest step whose
    total, margins included, fits in `budget` pixels), each with `pad` margin rows on
    both sides (real data, not counted). When that leaves fewer than `min_strips`
    strips (a wide crop), `min_strips` thinner strips are spread evenly instead, each as
    high as the budget allows but at least `pad` rows (the budget then may be passed):
    a sample of one strip through the middle is no sample of the skin, and its error
    cannot be estimated (`sample_blocks`). Returns None when the whole crop fits, or
    when strips that far apart would overlap (then all of it is cheaper).
    """
    n = int(np.ceil(h / strip_px))
    if h * w <= budget or n < 2:   # one strip would be all of it
        return None
    for k in range(2, n + 1):
        chosen = list(range(k // 2, n, k))
        rows_total = sum(min(h, (i + 1) * strip_px + pad) - max(0, i * strip_px - pad) for i in chosen)
        if rows_total * w <= budget or k == n:
            break
    spans = [(i * strip_px, min(h, (i + 1) * strip_px)) for i in chosen]
    if len(spans) < min_strips:
        per = max(pad, budget // (w * min_strips) - 2 * pad)
        pitch = h / min_strips
        if per + 2 * pad >= pitch:
            return None
        spans = [(int(c - per / 2), int(c - per / 2) + per) for c in (np.arange(min_strips) + 0.5) * pitch]
    rows, core = [], []
    for s0, s1 in spans:
        r = np.arange(max(0, s0 - pad), min(h, s1 + pad))
        rows.append(r)
        core.append((r >= s0) & (r < s1))
    return np.concatenate(rows), np.concatenate(core)


def work(an: Analysis, target_mm_per_px: float, budget_px: int | None = None, *,
         pad_mm: float = CROP_MARGIN_MM, min_strips: int = 1) -> Work | None:
    """The working level for features resolved at `target_mm_per_px`, cropped to the skin.

    The crop is the skin's bounding box plus `CROP_MARGIN_MM`; L* is computed on the crop
    only, once per level, and shared by every metric working there. When the crop holds
    more than `WORK_BUDGET_PX` pixels, a systematic sample of horizontal strips
    (`STRIP_MM` high, with `CROP_MARGIN_MM` margins) is analysed instead: per-area
    statistics (roughness, GLCM, LBP, densities) stay unbiased, at a small sampling
    variance, and a 12 MP close-up costs what a 0.75 MP one does; the sample's own error
    is part of the band metrics' standard errors (`band_noise`). Features that are
    counted and listed do not use it: spots work on a coarse level, over all the skin;
    lines and pores pass `budget_px` = `WHOLE_PX`. `pad_mm` is the strips' margin (as
    wide as the reach of the caller's filters) and `min_strips` their fewest number
    (`strips`); the share of the crop's rows the strips count is `Work.share`. A view's
    work is the whole skin's, narrowed (`Work.within`).
    """
    budget = WORK_BUDGET_PX if budget_px is None else int(budget_px)
    key = f"texture.work:{budget}:{pad_mm}:{min_strips}"
    if an.root is not an:
        if an.skin_pixels < MIN_SKIN_PX:
            return None
        whole = work(an.root, target_mm_per_px, budget, pad_mm=pad_mm, min_strips=min_strips)
        return None if whole is None else an.cached(f"{key}:{target_mm_per_px}", lambda v: whole.within(v))
    base = scaled(an)
    if base is None:
        return None

    def make(lv: Analysis) -> Work | None:
        m8 = lv.mask.view(np.uint8)
        if cv2.countNonZero(m8) < MIN_SKIN_PX // 4:
            return None
        y, r1, x, c1 = lv.bbox
        w, h = c1 - x, r1 - y
        pad = int(np.ceil(CROP_MARGIN_MM / lv.mm_per_px))
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(lv.shape[1], x + w + pad), min(lv.shape[0], y + h + pad)
        factor = float(lv.mm_per_px / base.mm_per_px)
        sample = strips(y1 - y0, x1 - x0, budget, max(8, int(round(STRIP_MM / lv.mm_per_px))),
                        int(np.ceil(pad_mm / lv.mm_per_px)), min_strips)
        if sample is None:
            rows = np.arange(y0, y1)
            return Work(lv, lightness(lv.region(slice(y0, y1), x0, x1)), lv.mask[y0:y1, x0:x1], None,
                        rows, float(lv.mm_per_px), x0, factor)
        r, core = sample
        rows = r + y0
        L = lightness(lv.region(rows, x0, x1))
        return Work(lv, L, np.ascontiguousarray(lv.mask[rows, x0:x1]), core, rows,
                    float(lv.mm_per_px), x0, factor, share=float(np.count_nonzero(core)) / (y1 - y0))

    return base.level(target_mm_per_px).cached(key, make)


def blur(x: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur (separable, reflect-101 border), float32; identity below 0.3 px."""
    if sigma_px < 0.3:
        return x
    if sigma_px > 8.0:
        # wide kernels: blur a reduced copy (sigma 4 px there) and interpolate back;
        # the result is smooth on the scale of the reduction, so nothing is lost
        f = sigma_px / 4.0
        h, w = x.shape[:2]
        small = cv2.resize(x, (max(1, int(round(w / f))), max(1, int(round(h / f)))),
                           interpolation=cv2.INTER_AREA)
        fy, fx_ = small.shape[0] / h, small.shape[1] / w
        small = gaussian(small, float(sigma_px * fx_), float(sigma_px * fy))
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return gaussian(x, float(sigma_px))


def masked_blur(x: np.ndarray, mask: np.ndarray, sigma_px: float) -> np.ndarray:
    """Mask-normalised Gaussian ``G*(x m) / G*m`` (normalised convolution, Knutsson 1993).

    Wide kernels (above 8 px) run on a reduced two-channel copy and the ratio is
    interpolated back: one reduction and one expansion per call.
    """
    m = mask.astype(np.float32)
    if sigma_px <= 8.0:
        num = blur(x * m, sigma_px)
        den = blur(m, sigma_px)
        return num / np.maximum(den, np.float32(1e-3))
    h, w = x.shape[:2]
    f = sigma_px / 4.0
    size = (max(1, int(round(w / f))), max(1, int(round(h / f))))
    small = cv2.resize(cv2.merge([x * m, m]), size, interpolation=cv2.INTER_AREA)
    sx, sy = size[0] / w, size[1] / h
    small = gaussian(small, float(sigma_px * sx), float(sigma_px * sy))
    ratio = small[..., 0] / np.maximum(small[..., 1], np.float32(1e-3))
    return cv2.resize(ratio, (w, h), interpolation=cv2.INTER_LINEAR)


#: Largest radius `erode` applies as a structuring element (beyond, rectangles).
DISC_ERODE_MAX_PX = 12
#: Largest radius `erode` applies as rectangles (beyond, a distance transform).
RECT_ERODE_MAX_PX = 24
#: Rows of each band `erode` thresholds the distance on (radii beyond `RECT_ERODE_MAX_PX`).
ERODE_BAND_ROWS = 512


def erode(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """Binary erosion by a disc of `radius_px` (none below half a pixel).

    Radii up to 3 px use `cv2.erode` with OpenCV's elliptic element; up to
    `DISC_ERODE_MAX_PX` with the exact disc ``dx^2 + dy^2 <= r^2``, which equals
    thresholding the exact Euclidean distance to the nearest outside pixel and is 5-20x
    faster there (its cost grows with r^2); up to `RECT_ERODE_MAX_PX` with the same disc
    as a union of rectangles ``[-w_j, w_j] x [-h_j, h_j]``, one per distinct half-width
    ``w_j = floor(sqrt(r^2 - dy^2))`` with ``h_j`` the largest ``dy`` of that half-width or
    wider: the erosion by a union is the intersection of the erosions (Serra 1982), and
    OpenCV erodes by a rectangle separably, so its cost grows with r (the same pixels as
    the disc; 1.4-2x faster than the distance at 16-20 px on a 3 MP mask); larger radii
    threshold that distance (`cv2.distanceTransform`, linear time whatever the radius),
    in bands of `ERODE_BAND_ROWS` rows and, in each, on the column windows that hold skin
    only (`column_windows`, ``r + 1`` columns and rows of context): whether a skin pixel's
    distance exceeds ``r`` depends on the outside pixels within ``r`` of it alone, and the
    zeros a window adds at its edges lie more than ``r`` from the band's skin, so the
    result is the same as on the whole mask, at the cost of the skin's windows (a 12 MP
    portrait whose skin is strewn over the frame: 40 % of it).
    """
    r = int(round(radius_px))
    if r < 1:
        return mask
    m8 = np.ascontiguousarray(mask).view(np.uint8)
    if r <= DISC_ERODE_MAX_PX:
        if r <= 3:
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        else:
            yy, xx = np.mgrid[-r: r + 1, -r: r + 1]
            k = (xx * xx + yy * yy <= r * r).astype(np.uint8)
        return cv2.erode(m8, k, borderType=cv2.BORDER_CONSTANT, borderValue=0).view(bool)
    if r <= RECT_ERODE_MAX_PX:
        dy = np.arange(r + 1)
        half = np.floor(np.sqrt(r * r - dy * dy)).astype(int)   # exact on integers
        out = None
        for w in np.unique(half):
            h = int(dy[half >= w].max())
            k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * int(w) + 1, 2 * h + 1))
            e = cv2.erode(m8, k, borderType=cv2.BORDER_CONSTANT, borderValue=0)
            out = e if out is None else cv2.bitwise_and(out, e, dst=out)
        return out.view(bool)
    h = m8.shape[0]
    out = np.zeros(m8.shape, bool)
    ctx = r + 1
    for y0 in range(0, h, ERODE_BAND_ROWS):
        y1 = min(h, y0 + ERODE_BAND_ROWS)
        a, b = max(0, y0 - ctx), min(h, y1 + ctx)
        for x0, x1 in column_windows(m8[y0:y1], ctx):
            # zero beyond the window and the image: the image's own border, or pixels more
            # than r from the band's skin
            padded = cv2.copyMakeBorder(m8[a:b, x0:x1], 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
            d = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            out[y0:y1, x0:x1] = d[1 + y0 - a: 1 + y1 - a, 1:-1] > r
    return out


def enough_skin(mask: np.ndarray, mm_per_px: float) -> bool:
    """Whether `mask` holds enough skin for a texture, pore or spot number: at least
    `MIN_SKIN_PX` / 4 pixels and `MIN_SKIN_MM2` of skin."""
    n = int(np.count_nonzero(mask))
    return n >= MIN_SKIN_PX // 4 and n * mm_per_px ** 2 >= MIN_SKIN_MM2


@dataclass(frozen=True)
class Searched:
    """Where a detector looked: the `valid` pixels of its working array, placed by `grid`,
    each `mm_per_px` wide."""

    valid: np.ndarray
    grid: Grid
    mm_per_px: float

    @property
    def area_mm2(self) -> float:
        """The skin area searched."""
        return float(np.count_nonzero(self.valid)) * self.mm_per_px * self.mm_per_px

    def within(self, view: Analysis) -> Searched | None:
        """The part of it on a view's skin (`Analysis.within`); None with too little skin."""
        rs, cs, skin = view.on_grid(self.grid)
        valid = self.valid[rs, cs] & skin
        if not enough_skin(valid, self.mm_per_px):
            return None
        return Searched(valid, self.grid.crop(rs, cs), self.mm_per_px)


# --------------------------------------------------------------------------- band and roughness
@dataclass
class Band:
    """Fine-texture band of L* on a working level and the skin it is valid on."""

    values: np.ndarray
    mask: np.ndarray
    work: Work


def _band_sigmas(mm_per_px: float) -> tuple[float, float]:
    """Gaussian SDs (pixels) of the band's fine and coarse edges at `mm_per_px`."""
    return (max(BAND_MM[0] * _SIGMA_PER_WAVELENGTH / mm_per_px, BAND_MIN_SIGMA_PX),
            BAND_MM[1] * _SIGMA_PER_WAVELENGTH / mm_per_px)


#: Coarsest working resolution (mm/px) at which the band spans `BAND_MIN_OCTAVES` (0.27).
BAND_COARSEST_MM_PER_PX = BAND_MM[1] * _SIGMA_PER_WAVELENGTH / (BAND_MIN_OCTAVES * BAND_MIN_SIGMA_PX)


def physical_level_mm_per_px(an: Analysis, target_mm_per_px: float) -> float | None:
    """mm per pixel of the level `work` would use for `target_mm_per_px`, when the photo's
    scale is physical (None with a relative scale or too little skin): what the
    "too coarse" reasons of the texture and pore families are judged on."""
    base = scaled(an)
    if base is None or base.scale_source == "relative":
        return None
    return base.level(target_mm_per_px).mm_per_px


@unmeasurable("texture")
def _why_not(an: Analysis) -> str | None:
    """The photo too coarse for the texture band (the reason `band` gives None), else None."""
    p = physical_level_mm_per_px(an, TEXTURE_MM_PER_PX)
    if p is None:
        return None
    s1, s2 = _band_sigmas(p)
    if s2 >= BAND_MIN_OCTAVES * s1:
        return None
    return (f"at {p:.2g} mm/px the photo does not resolve the {BAND_MM[0]:g}-{BAND_MM[1]:g} mm "
            "texture band (roughness, Ra, GLCM, LBP, SELS need about "
            f"{BAND_COARSEST_MM_PER_PX:.2f} mm/px or finer)")


def band(an: Analysis) -> Band | None:
    """The 0.2-2 mm band of L* (see module notes), memoised on the analysis; a view's is
    the whole skin's band on the view's skin (the band is not filtered again)."""
    def narrow(b: Band, v: Analysis) -> Band | None:
        w = b.work.within(v)
        if w is None:
            return None
        rs, cs = w.window(b.work)
        valid = b.mask[rs, cs] & w.mask
        return Band(b.values[rs, cs], valid, w) if enough_skin(valid, w.mm_per_px) else None

    def make(a: Analysis) -> Band | None:
        w = work(a, TEXTURE_MM_PER_PX, pad_mm=BAND_MARGIN_MM, min_strips=BAND_MIN_STRIPS)
        if w is None:
            return None
        s1, s2 = _band_sigmas(w.mm_per_px)
        if s2 < BAND_MIN_OCTAVES * s1:  # the band is not resolved on this photo
            return None
        fine = blur(w.L, s1)
        coarse = masked_blur(w.L, w.mask, s2)
        valid = w.restrict(erode(w.mask, max(1.0, 1.5 * s1)))
        if not enough_skin(valid, w.mm_per_px):
            return None
        return Band(fine - coarse, valid, w)

    return an.shared("texture.band", make, narrow)


#: Largest ratio of two photos' mm per pixel at which a band metric's change is judged
#: (`photokit.metrics.registry.Metric.resolution_tolerance`): its floor was calibrated on
#: re-captures zoomed by at most +-4 % each (``bench_repeatability.py``). The band moves
#: with the resolution itself: the 12 MP synthetic close-up resized by 1.05 / 1.1 / 1.2 /
#: 1.5 moved roughness by 0.8 / 1.1 / 1.6 / 2.8 of its floor (docs/NOISE.md).
BAND_RESOLUTION_TOLERANCE = 1.08


def band_level_mm(mm_per_px: float) -> float:
    """mm per pixel the texture band is computed at on a photo of `mm_per_px` (the band
    metrics' registered ``working_level``): the photo reduced by the whole factor `work`
    uses for `TEXTURE_MM_PER_PX`. It jumps 2x at 0.05 mm/px (photos at 0.049 and 0.051
    mm/px: levels 0.098 and 0.051), beyond `BAND_RESOLUTION_TOLERANCE`, so a change
    between such photos is not judged (`photokit.metrics.noise.beyond_resolution`)."""
    return mm_per_px * level_factor(mm_per_px, TEXTURE_MM_PER_PX)

#: The skin a strip sample (`work`) analysed is cut into blocks about this wide (mm) along
#: each strip, at most `MAX_BLOCKS` of them, for the sample's sampling error (`band_noise`).
BLOCK_MM = STRIP_MM
MAX_BLOCKS = 32


def sample_blocks(an: Analysis) -> tuple[list[tuple[Analysis, int]], float] | None:
    """The skin the band's strip sample analysed, cut into blocks, and the sampled share.

    Returns ``(blocks, f)``: each block a view of `an` (`Analysis.within`) on one strip's
    counted rows and a run of columns about `BLOCK_MM` wide (wider when there would be
    more than `MAX_BLOCKS`), with its number of band pixels; ``f`` the share of the crop's
    rows the strips count (`Work.share`). None when the band is not sampled (every skin pixel analysed)
    or holds fewer than two blocks.
    """
    def make(a: Analysis):
        b = band(a)
        if b is None or b.work.core is None:
            return None
        w = b.work
        rows = np.flatnonzero(w.core)
        runs = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
        cols = np.flatnonzero(b.mask.any(axis=0))
        if cols.size == 0:
            return None
        width = max(int(round(BLOCK_MM / w.mm_per_px)), 1)
        n_cols = max(1, int(np.ceil((cols[-1] + 1 - cols[0]) / width)))
        while len(runs) * n_cols > MAX_BLOCKS and n_cols > 1:
            n_cols -= 1
        edges = np.linspace(cols[0], cols[-1] + 1, n_cols + 1).round().astype(int)
        f = int(round(w.factor))
        blocks = []
        for r in runs:
            for c0, c1 in zip(edges[:-1], edges[1:], strict=True):
                n = int(np.count_nonzero(b.mask[r[0]: r[-1] + 1, c0:c1]))
                if n == 0:
                    continue
                R0, R1 = int(w.row_map[r[0]]) * f, (int(w.row_map[r[-1]]) + 1) * f
                C0, C1 = (w.x0 + c0) * f, (w.x0 + c1) * f
                blocks.append((a.within(a.mask[R0:R1, C0:C1], (R0, C0)), n))
        return (blocks, w.share) if len(blocks) >= 2 else None

    return an.cached("texture.blocks", make)


def band_noise(name: str):
    r"""Noise function (``@metric(noise=)``) of a band metric `name` (roughness, Ra,
    GLCM, LBP, SELS).

    :math:`se^2 = (\mathrm{mdc}/2.77)^2 + se_s^2`: the registered re-capture SD and, when
    the band was measured on a strip sample of the skin (`work`: large photos), the
    sample's own error, `photokit.metrics.noise.ratio_se` of the metric over the sample's
    blocks (`sample_blocks`, weights their band pixels, finite-population share the rows
    the strips count). With every skin pixel analysed ``se_s = 0``.
    """
    def noise(an: Analysis, value: float) -> float | str:
        m = get(name)
        capture = m.mdc / MDC_PER_SW
        sample = sample_blocks(an)
        if sample is None:
            return capture
        blocks, share = sample
        vals, wts = [], []
        for v, n in blocks:
            x = m.compute(v)
            if x is not None and np.isfinite(x):
                vals.append(float(x))
                wts.append(n)
        if len(vals) < 2:
            return capture
        return float(np.hypot(capture, ratio_se(vals, wts, share)))
    return noise


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
# (``$PHOTOKIT_BENCH_DATA/faces`` + astronaut: pose only; and with exposure/WB changes,
# for the metrics that are gain-free); rounded up to two significant figures.
# Texture floors are the CALIBRATED ones (reference skin normalises the exposure):
# uncalibrated, the L* band contrast follows the exposure (L* ~ Y^(1/3)) and the floors
# would be ~3x wider (roughness Sw 0.061 vs 0.018 L*); ``compare`` warns about
# uncalibrated lighting differences. SELS bright fraction: no light-invariance change was
# needed once calibrated (CV 2.6 %); it takes the wide floor of its largest pair delta.


@metric("texture.roughness", noise=band_noise("texture.roughness"), version=2,
        resolution_tolerance=BAND_RESOLUTION_TOLERANCE, working_level=band_level_mm,
        unit="L*", mdc=0.094, better="lower", needs_colour=False,
        core=True, trend_rank=0, needs_scale=True,
        description="RMS of detrended L* in the 0.2-2 mm band (Rq)")
def roughness(an: Analysis) -> float | None:
    """``Rq = sqrt(mean(B^2))`` over skin, ``B`` the 0.2-2 mm band of L*."""
    b = band(an)
    if b is None:
        return None
    v = b.values[b.mask]
    return float(np.sqrt(np.mean(np.square(v, dtype=np.float32), dtype=np.float64)))


@metric("texture.ra", noise=band_noise("texture.ra"), version=2,
        resolution_tolerance=BAND_RESOLUTION_TOLERANCE, working_level=band_level_mm,
        unit="L*", mdc=0.067, better="lower", needs_colour=False, needs_scale=True,
        trend_rank=100, description="mean absolute detrended L* in the 0.2-2 mm band (Ra)")
def ra(an: Analysis) -> float | None:
    """``Ra = mean(|B|)`` over skin."""
    b = band(an)
    if b is None:
        return None
    return float(np.mean(np.abs(b.values[b.mask]), dtype=np.float64))


# --------------------------------------------------------------------------- GLCM
def quantise(values: np.ndarray, levels: int = GLCM_LEVELS, span: float = GLCM_RANGE) -> np.ndarray:
    """Map ``[-span, span]`` linearly onto ``0..levels-1`` (clipped), uint8."""
    q = (values + np.float32(span)) * np.float32(levels / (2 * span))
    return np.clip(q, 0, levels - 1).astype(np.uint8)


def glcm(q: np.ndarray, mask: np.ndarray, distance: int, angles=(0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4),
         levels: int = GLCM_LEVELS) -> np.ndarray:
    """Symmetric, normalised grey-level co-occurrence matrices, (levels, levels, n_angles).

    Offsets as scikit-image's ``graycomatrix``: ``(dr, dc) = (round(sin a * d),
    round(cos a * d))``, pairs ``(q[r, c], q[r + dr, c + dc])``; only pairs with both
    pixels inside `mask` count. The pairs are counted as the histogram of the pair code
    ``q[r, c] levels + q[r + dr, c + dc]`` (one byte for up to 16 levels) over the mask
    (``cv2.calcHist``: 2-3x faster than gathering the masked pairs; its float32 counts
    are exact below 2^24 pairs per cell, far above a working level's pixels).
    """
    if levels * levels > 256:
        raise ValueError(f"at most 16 levels (pair codes are bytes), got {levels}")
    h, w = q.shape
    m8 = np.ascontiguousarray(mask).view(np.uint8)
    out = np.zeros((levels, levels, len(angles)), np.float64)
    for k, a in enumerate(angles):
        dr = int(round(np.sin(a) * distance))
        dc = int(round(np.cos(a) * distance))
        r0, r1 = max(0, -dr), min(h, h - dr)
        c0, c1 = max(0, -dc), min(w, w - dc)
        if r1 <= r0 or c1 <= c0:
            continue
        code = cv2.scaleAdd(q[r0:r1, c0:c1], levels, q[r0 + dr:r1 + dr, c0 + dc:c1 + dc])
        ok = cv2.bitwise_and(m8[r0:r1, c0:c1], m8[r0 + dr:r1 + dr, c0 + dc:c1 + dc])
        hist = cv2.calcHist([code], [0], ok, [levels * levels], [0, levels * levels])
        P = hist.reshape(levels, levels).astype(np.float64)
        P = P + P.T
        s = P.sum()
        out[:, :, k] = P / s if s else P
    return out


def glcm_props(P: np.ndarray) -> dict[str, float]:
    """Contrast, homogeneity and energy of normalised GLCMs, averaged over angles."""
    n = P.shape[0]
    i, j = np.mgrid[0:n, 0:n]
    d2 = ((i - j) ** 2)[:, :, None]
    return {"contrast": float(np.mean(np.sum(P * d2, axis=(0, 1)))),
            "homogeneity": float(np.mean(np.sum(P / (1.0 + d2), axis=(0, 1)))),
            "energy": float(np.mean(np.sqrt(np.sum(P ** 2, axis=(0, 1)))))}


def glcm_at(q: np.ndarray, mask: np.ndarray, distance: float) -> np.ndarray:
    """`glcm` at a fractional pixel `distance` (at least 1): the matrices of the two whole
    distances around it, interpolated linearly, so that the co-occurrences, and every
    property linear in them, follow the photo's scale continuously."""
    distance = max(1.0, float(distance))
    d0 = int(np.floor(distance))
    t = distance - d0
    P = glcm(q, mask, d0)
    return P if t < 1e-9 else (1.0 - t) * P + t * glcm(q, mask, d0 + 1)


def _glcm_props(an: Analysis) -> dict[str, float] | None:
    def make(a):
        b = band(a)
        if b is None:
            return None
        return glcm_props(glcm_at(quantise(b.values), b.mask, GLCM_DISTANCE_MM / b.work.mm_per_px))

    return an.cached("texture.glcm", make)


@metric("texture.glcm_contrast", noise=band_noise("texture.glcm_contrast"), version=3,
        resolution_tolerance=BAND_RESOLUTION_TOLERANCE, working_level=band_level_mm,
        trend_rank=100, unit="levels^2", mdc=1.5, better="lower", needs_colour=False,
        needs_scale=True, description="GLCM contrast of the fine band at 0.3 mm (16 levels over +-6 L*)")
def glcm_contrast(an: Analysis) -> float | None:
    p = _glcm_props(an)
    return None if p is None else p["contrast"]


@metric("texture.glcm_homogeneity", noise=band_noise("texture.glcm_homogeneity"), version=3,
        resolution_tolerance=BAND_RESOLUTION_TOLERANCE, working_level=band_level_mm,
        trend_rank=100, unit="1", mdc=0.029, better="higher", needs_colour=False,
        needs_scale=True, description="GLCM homogeneity of the fine band at 0.3 mm")
def glcm_homogeneity(an: Analysis) -> float | None:
    p = _glcm_props(an)
    return None if p is None else p["homogeneity"]


@metric("texture.glcm_energy", noise=band_noise("texture.glcm_energy"), version=3,
        resolution_tolerance=BAND_RESOLUTION_TOLERANCE, working_level=band_level_mm,
        trend_rank=100, unit="1", mdc=0.017, better="higher", needs_colour=False,
        needs_scale=True, description="GLCM energy (sqrt of angular second moment) of the fine band")
def glcm_energy(an: Analysis) -> float | None:
    p = _glcm_props(an)
    return None if p is None else p["energy"]


# --------------------------------------------------------------------------- LBP
def lbp_uniform_mask(img: np.ndarray, radius_px: float, points: int = 8, stride: int = 1) -> np.ndarray:
    """Whether each pixel's LBP (P points on a circle of `radius_px`, bilinear) is uniform.

    Neighbour ``p`` sits at ``(r, c) = (-R sin(2 pi p / P), R cos(2 pi p / P))`` and is
    1 when ``I(neighbour) >= I(centre)``, as in scikit-image's ``local_binary_pattern``;
    a pattern is uniform when its circular sequence has at most two 0/1 transitions.
    Borders replicate the edge pixel. With ``stride > 1`` only the centres
    ``[::stride, ::stride]`` are evaluated (a systematic sample, for speed).
    """
    img = np.ascontiguousarray(img, dtype=np.float32)
    h, w = img.shape
    pad = int(np.ceil(radius_px)) + 1
    P = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    centre = img[::stride, ::stride]
    hs, ws = centre.shape

    def at(dr, dc):
        return P[pad + dr: pad + dr + h: stride, pad + dc: pad + dc + w: stride][:hs, :ws]

    first = prev = None
    trans = np.zeros((hs, ws), np.uint8)
    for p in range(points):
        rr = round(-radius_px * np.sin(2 * np.pi * p / points), 5)
        cc = round(radius_px * np.cos(2 * np.pi * p / points), 5)
        r0, c0 = int(np.floor(rr)), int(np.floor(cc))
        fr, fc = rr - r0, cc - c0
        if fr or fc:
            v = ((1 - fr) * (1 - fc) * at(r0, c0) + (1 - fr) * fc * at(r0, c0 + 1)
                 + fr * (1 - fc) * at(r0 + 1, c0) + fr * fc * at(r0 + 1, c0 + 1))
        else:
            v = at(r0, c0)
        bit = v >= centre
        if prev is None:
            first = bit
        else:
            trans += bit != prev
        prev = bit
    trans += prev != first
    return trans <= 2


@metric("texture.lbp_uniformity", noise=band_noise("texture.lbp_uniformity"), version=2,
        resolution_tolerance=BAND_RESOLUTION_TOLERANCE, working_level=band_level_mm,
        trend_rank=100, unit="%", mdc=2.2, better="neither", needs_colour=False,
        needs_scale=True, description="% of skin with uniform LBP patterns (8 points, 0.3 mm)")
def lbp_uniformity(an: Analysis) -> float | None:
    """% of the band's skin pixels (every `LBP_STRIDE`-th row and column of the whole
    skin's band) whose LBP is uniform."""
    b = band(an)
    if b is None:
        return None

    def make(a: Analysis) -> np.ndarray | None:   # on the whole skin's band
        whole = band(a)
        return None if whole is None else lbp_uniform_mask(
            whole.values, max(1.0, LBP_RADIUS_MM / whole.work.mm_per_px), stride=LBP_STRIDE)

    u = an.root.cached("texture.lbp", make)
    # the strided samples of the whole band that fall in this (view's) window
    r0, c0 = b.work.origin
    i0, j0 = -r0 % LBP_STRIDE, -c0 % LBP_STRIDE
    m = b.mask[i0::LBP_STRIDE, j0::LBP_STRIDE]
    u = u[(r0 + i0) // LBP_STRIDE:, (c0 + j0) // LBP_STRIDE:][: m.shape[0], : m.shape[1]]
    return float(100.0 * np.count_nonzero(u & m) / max(1, np.count_nonzero(m)))


# --------------------------------------------------------------------------- SELS-like
@metric("texture.sels_dark_pct", noise=band_noise("texture.sels_dark_pct"), version=2,
        resolution_tolerance=BAND_RESOLUTION_TOLERANCE, working_level=band_level_mm,
        trend_rank=100, unit="%", mdc=0.91, better="lower", needs_colour=False,
        needs_scale=True, description="% of skin darker than its 2 mm surround by > 1.5 L* (furrows, pores)")
def sels_dark_pct(an: Analysis) -> float | None:
    return _sels_share(an, -1.0)


@metric("texture.sels_bright_pct", noise=band_noise("texture.sels_bright_pct"), version=2,
        resolution_tolerance=BAND_RESOLUTION_TOLERANCE, working_level=band_level_mm,
        trend_rank=100, unit="%", mdc=1.3, better="lower", needs_colour=False,
        needs_scale=True, description="% of skin brighter than its 2 mm surround by > 1.5 L* (scaling)")
def sels_bright_pct(an: Analysis) -> float | None:
    return _sels_share(an, 1.0)


def _sels_share(an: Analysis, sign: float) -> float | None:
    """% of the band's skin beyond `SELS_THRESHOLD` L* from its surround, darker
    (``sign = -1``) or brighter (``+1``): ``100 |{p: sign b(p) > T}| / |skin|``."""
    b = band(an)
    if b is None:
        return None
    v = b.values[b.mask]
    return float(100.0 * np.count_nonzero(sign * v > SELS_THRESHOLD) / v.size)


# --------------------------------------------------------------------------- lines
@dataclass
class Lines:
    """Detected line centres on the finest line level.

    Attributes
    ----------
    centre : ndarray of bool
        Centre-line pixels kept (working level, cropped).
    depth : ndarray, float32
        Estimated line depth (L*) at the centre pixels (zero elsewhere): ``D_n`` across
        the line at the scale with the strongest evidence (see `oriented_response`).
    evidence : ndarray, float32
        Line evidence (L*, at most `LINE_CLIP`): the largest over scales and directions
        of the two-sided oriented average; made on `valid` and one pixel around it (all
        that is read of it), zero or partial elsewhere.
    theta : ndarray, float32
        Angle of the line normal in ``[0, pi)`` (x right, y down); the line runs at
        ``theta + pi/2``. Made where `evidence` is.
    length_mm : float
        Total centre-line length.
    area_mm2 : float
        Skin area the lines were searched on.
    work : Work
    valid : ndarray of bool
        The skin searched (`line_search_area`).
    near : ndarray of bool
        The near misses: centre pixels of the traced components that failed a test (the
        seed, the length or the straightness) but were at least `LINE_NEAR_MM` long,
        outside `centre`. A re-capture may find them (`line_density_noise`).
    oriented : bool
        Found by the oriented detector (`oriented_response`); False: the coarse photos'
        local Hessian detector.
    """

    centre: np.ndarray
    depth: np.ndarray
    evidence: np.ndarray
    theta: np.ndarray
    length_mm: float
    area_mm2: float
    work: Work
    valid: np.ndarray
    near: np.ndarray
    oriented: bool = True
    _components: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def components(self, mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """The 8-connected components of `mask` (a bool map of these lines' grid): their
        number (the background included) and the label, row and column of each of its
        pixels (row-major). Those of `centre` and `near` are labelled once and kept: the
        density's and the depth's noise and the features all read the centre lines'."""
        key = "centre" if mask is self.centre else "near" if mask is self.near else None
        got = self._components.get(key)
        if got is None:
            ys, xs = pixels(mask)
            got = (*point_components(ys, xs, mask.shape[1]), ys, xs)
            if key is not None:
                self._components[key] = got
        return got


def hessian(img: np.ndarray, sigma_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Second derivatives ``(Lxx, Lyy, Lxy)`` of ``G_sigma * img`` (central differences).

    Above 4 px the derivatives are taken on a copy reduced so that sigma is 4 px there
    and interpolated back (they are smooth on that scale): the cost stays that of a
    small kernel.
    """
    if sigma_px > 4.0:
        h, w = img.shape
        f = sigma_px / 4.0
        size = (max(8, int(round(w / f))), max(8, int(round(h / f))))
        small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        fx, fy = size[0] / w, size[1] / h
        out = hessian(small, 4.0 * 0.5 * (1 / (fx * f) + 1 / (fy * f)))
        return tuple(cv2.resize(d, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(sc)
                     for d, sc in zip(out, (fx * fx, fy * fy, fx * fy), strict=True))
    g = blur(img, sigma_px)
    kxx = np.array([[1, -2, 1]], np.float32)
    kd = np.array([[-0.5, 0, 0.5]], np.float32)
    one = np.array([[1]], np.float32)
    lxx = cv2.sepFilter2D(g, cv2.CV_32F, kxx, one, borderType=cv2.BORDER_REFLECT_101)
    lyy = cv2.sepFilter2D(g, cv2.CV_32F, one, kxx.T, borderType=cv2.BORDER_REFLECT_101)
    lxy = cv2.sepFilter2D(g, cv2.CV_32F, kd, kd.T, borderType=cv2.BORDER_REFLECT_101)
    return lxx, lyy, lxy


#: Rows of the line working level processed at a time by `oriented_response` (its
#: per-direction buffers then stay in the processor's cache).
LINE_TILE_ROWS = 96


def run_sum(a: np.ndarray, step: int, n: int, spare: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``S(x) = sum_{i=0}^{n-1} a[x + i step]`` of a flat array, by doubling.

    Partial sums of 1, 2, 4, ... terms are built by ``S_2k(x) = S_k(x) + S_k(x + k step)``
    and combined along the binary digits of `n`: about ``2 log2 n`` shifted additions.
    An image held row after row (``width`` values a row) moves ``step = dy width + dx``
    places per pixel step ``(dx, dy)``, so this sums along that direction (what lies
    beyond the image must be zero: `oriented_response` pads it). `a` and the two `spare`
    arrays (its shape) are overwritten; the result is one of the three, exact where
    ``x + (n - 1) step < a.size``.
    """
    free = [*spare]
    acc = None
    part, k, offset = a, 1, 0
    while True:
        if n & k:
            if acc is None:
                acc = part
            else:
                o = offset * step
                np.add(acc[:-o], part[o:], out=acc[:-o])
            offset += k
        if 2 * k > n:
            return acc
        nxt = free.pop()
        o = k * step
        np.add(part[:-o], part[o:], out=nxt[:-o])
        if part is not acc:
            free.append(part)
        part = nxt
        k *= 2


def line_normals() -> np.ndarray:
    """Normal angle (``[0, pi)``, x right, y down) of each of `LINE_DIRECTIONS`."""
    return np.array([np.arctan2(dx, -dy) % np.pi for dx, dy in LINE_DIRECTIONS], np.float32)


def per_direction(values: np.ndarray, which: np.ndarray) -> np.ndarray:
    """``values[which]`` for a uint8 image `which` of direction indices and float32
    `values` (one per direction), by table look-up (``cv2.LUT``: the same values, about
    1.7x faster than NumPy's indexing on a 0.7 MP map)."""
    table = np.zeros((1, 256), np.float32)
    table[0, : len(values)] = values
    return cv2.LUT(which, table)


def column_windows(mask8: np.ndarray, margin: int) -> list[tuple[int, int]]:
    """Column windows ``(x0, x1)`` of a uint8 image `mask8` holding all its nonzero columns,
    each widened by `margin` on both sides (within the image); windows less than `margin`
    apart are merged. Empty when it is all zero."""
    cols = np.flatnonzero(cv2.reduce(mask8, 0, cv2.REDUCE_MAX)[0])
    if cols.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(cols) > 3 * margin)
    starts = cols[np.concatenate(([0], breaks + 1))]
    ends = cols[np.concatenate((breaks, [cols.size - 1]))] + 1
    w = mask8.shape[1]
    return [(max(0, int(s0) - margin), min(w, int(s1) + margin)) for s0, s1 in zip(starts, ends, strict=True)]


def oriented_response(L: np.ndarray, skin: np.ndarray, sigma_px: float, half_px: float,
                      gain: float = 1.0, needed: np.ndarray | None = None):
    """Line evidence (L*) at scale `sigma_px` and the direction that gave it.

    For each direction ``d`` of `LINE_DIRECTIONS` (unit normal ``n``), with ``H`` the
    Hessian of ``G_s * L`` and ``k = s^2 / 0.385``:

    - the depth across ``d``, ``D_n = k n^T H n``, equals the depth ``A`` at the centre
      of a Gaussian valley of width ``s / sqrt(2)`` (Lindeberg 1998);
    - the per-pixel evidence is ``E = clip(g (D_n - |D_d|), -c, c) + 0.02 g (D_n -
      |D_d|)`` with ``D_d = k tr H - D_n`` the curvature along ``d`` (zero on a line,
      equal to ``D_n`` on a round pore, so pores and grain give none), ``c = LINE_CLIP``
      (a few deep pores or spots cannot outweigh a long stretch without a valley; the
      small slope beyond keeps saturated stretches peaked for the non-maximum
      suppression), ``g`` = `gain`, and zero off the skin. ``D_n - |D_d| = min(2 D_n -
      tr, tr)`` and ``2 D_n - tr = k ((Lxx - Lyy) cos 2phi + 2 Lxy sin 2phi)`` (``phi``
      the normal angle): two passes per direction;
    - ``E`` is averaged over the two halves of a segment through each pixel, each
      `half_px` long: ``E_+ = mean_{i=0..m} E(x + i d)``, ``E_- = mean_{i=0..m}
      E(x - i d)`` (`run_sum`), and the response is ``min(E_+, E_-)``: high only where
      the valley continues on BOTH sides (inside a line, not past its end), while the
      relief's furrows and pores, a few tenths of a millimetre long, average out.

    Computation: row tiles of `LINE_TILE_ROWS` rows, with the rows a response reads above
    and below, are held row after row with zero columns right of each row and zero rows
    below the image, so a sum along ``d`` is a sum of a flat array shifted by
    ``dy width + dx`` (`run_sum`); each tile goes through all directions while its
    buffers stay in the processor's cache. Of each tile only the column windows that can
    differ from zero go through it (`column_windows`: skin within twice the reach of a sum
    along ``d``; beyond, the response is exactly zero), each held as an image of its own
    (a window's edges are as far from its skin as zero columns would be). The result
    equals the direct computation (zero beyond the image) to float rounding. With
    `needed` (bool, `L`'s shape), the windows are those within one reach of a needed
    pixel instead: the result is the same there, and zero or partial elsewhere.

    Returns the largest response over directions (L*), the index of that direction
    (uint8) and the Hessian ``(Lxx, Lyy, Lxy)`` (for the depth of the lines found).
    """
    hes = hessian(L, sigma_px)
    lxx, lyy, lxy = hes
    m = skin.astype(np.float32)
    m *= np.float32(gain * sigma_px * sigma_px / _PEAK_VALLEY)
    h, w = L.shape
    steps = [max(1, int(round(half_px / float(np.hypot(dx, dy))))) for dx, dy in LINE_DIRECTIONS]
    # rows a response reads above and below a pixel, and zero columns right of each row
    # (so no sum along a direction wraps into the next row: see `run_sum`)
    reach = max(k * dy for k, (_, dy) in zip(steps, LINE_DIRECTIONS, strict=True))
    gutter = max(k * abs(dx) for k, (dx, _) in zip(steps, LINE_DIRECTIONS, strict=True))
    best = np.zeros(L.shape, np.float32)
    which = np.zeros(L.shape, np.uint8)
    c = float(LINE_CLIP)
    cos2, sin2 = np.cos(2 * line_normals()), np.sin(2 * line_normals())
    # row tiles with `reach` rows of context on each side (zero rows below the image),
    # each processed in all directions while its buffers stay in the processor's cache
    most = min(h, LINE_TILE_ROWS) + 2 * reach + 1
    a, b, tr, e, s1, s2 = (np.zeros(most * (w + gutter), np.float32) for _ in range(6))
    tile_best = np.zeros(min(h, LINE_TILE_ROWS) * (w + gutter), np.float32)
    tile_which, gt = (np.zeros(tile_best.size, np.uint8) for _ in range(2))
    skin8 = skin.view(np.uint8)
    need8 = None if needed is None else np.ascontiguousarray(needed).view(np.uint8)
    for y0 in range(0, h, LINE_TILE_ROWS):
        y1 = min(h, y0 + LINE_TILE_ROWS)
        t0, t1 = max(0, y0 - reach), min(h, y1 + reach)
        windows = (column_windows(skin8[t0:t1], 2 * gutter) if need8 is None
                   else column_windows(need8[y0:y1], gutter))
        for x0, x1 in windows:
            ww = x1 - x0
            width = ww + gutter
            rows = y1 - t0 + reach + 1
            size = rows * width
            mt = m[t0:t1, x0:x1]
            for buf, val in ((a, cv2.multiply(cv2.subtract(lxx[t0:t1, x0:x1], lyy[t0:t1, x0:x1]), mt)),
                             (b, cv2.multiply(lxy[t0:t1, x0:x1], mt, scale=2.0)),
                             (tr, cv2.multiply(cv2.add(lxx[t0:t1, x0:x1], lyy[t0:t1, x0:x1]), mt))):
                img = buf[:size].reshape(rows, width)
                img[: t1 - t0, :ww] = val
                img[: t1 - t0, ww:] = 0
                img[t1 - t0:] = 0
            core = slice((y0 - t0) * width, (y1 - t0) * width)   # the tile's own rows
            tb, tw, g = (x[: core.stop - core.start].reshape(-1, width)
                         for x in (tile_best, tile_which, gt))
            tb[:] = 0
            tw[:] = 0
            for k, (dx, dy) in enumerate(LINE_DIRECTIONS):
                n = steps[k] + 1
                ek, clipped = e[:size], s1[:size]
                cv2.addWeighted(a[:size], float(cos2[k]), b[:size], float(sin2[k]), 0.0, dst=ek)
                cv2.min(ek, tr[:size], dst=ek)
                np.clip(ek, -c, c, out=clipped)
                # the evidence divided by n: the sums below are means
                cv2.addWeighted(ek, LINE_CLIP_SLOPE / n, clipped, 1.0 / n, 0.0, dst=ek)
                step = dy * width + dx
                spare = (s1[:size], s2[:size])
                fwd = run_sum(ek, step, n, spare)
                # the smaller of the means ahead (from x) and behind (up to x) on the tile's
                # rows; zero where the half behind starts outside the image
                back = steps[k] * step
                lo = min(max(core.start, back), core.stop)
                rc = spare[fwd is spare[0]][: core.stop - core.start]   # a free buffer
                rc[: lo - core.start] = 0
                np.minimum(fwd[lo:core.stop], fwd[lo - back:core.stop - back], out=rc[lo - core.start:])
                rc = rc.reshape(-1, width)
                if dx > 0:
                    rc[:, : steps[k] * dx] = 0
                elif dx < 0:
                    rc[:, ww + steps[k] * dx: ww] = 0
                # directions come in increasing k: the last that beat the best is the largest
                cv2.compare(rc, tb, cv2.CMP_GT, dst=g)
                cv2.min(g, k, dst=g)
                cv2.max(tw, g, dst=tw)
                cv2.max(tb, rc, dst=tb)
            best[y0:y1, x0:x1] = tb[:, :ww]
            which[y0:y1, x0:x1] = tw[:, :ww]
    return best, which, hes


def line_response(lxx: np.ndarray, lyy: np.ndarray, lxy: np.ndarray, sigma_px: float):
    """Line depth estimate (L*) and normal angle of dark valleys from the Hessian alone.

    Eigenvalues ``l1,2 = (Lxx + Lyy)/2 +- sqrt(((Lxx - Lyy)/2)^2 + Lxy^2)``;
    ``depth = s^2 (l1 - |l2|) / 0.385`` where ``|l2| <= 0.5 l1`` (line-like), else 0;
    the normal (across the line, eigenvector of ``l1``) has angle
    ``theta = atan2(2 Lxy, Lxx - Lyy) / 2`` in ``[0, pi)`` (x right, y down).
    Used on coarse photos (see `ridges`).
    """
    a = cv2.subtract(lxx, lyy)
    b = cv2.add(lxy, lxy)
    half_d = cv2.magnitude(a, b)
    half_d *= np.float32(0.5)
    tr = cv2.add(lxx, lyy)
    tr *= np.float32(0.5)
    l1 = cv2.add(tr, half_d)
    l2 = cv2.subtract(tr, half_d)
    raw = cv2.subtract(l1, np.abs(l2))
    keep = cv2.compare(raw, l1 * np.float32(1 - HESSIAN_ANISOTROPY), cv2.CMP_GE)
    raw *= np.float32(sigma_px * sigma_px / _PEAK_VALLEY)
    raw[keep == 0] = 0
    depth = np.maximum(raw, np.float32(0), out=raw)
    theta = cv2.phase(a, b)
    theta *= np.float32(0.5)
    return depth, theta


def _hessian_ridges(an: Analysis) -> Lines | None:
    """Lines of coarse photos: local Hessian depth, max over scales (see module notes)."""
    finest = work(an, LINE_SCALES_MM[0] / HESSIAN_PX_PER_SCALE, WHOLE_PX)
    valid = None if finest is None else line_search_area(finest)
    if valid is None:
        return None
    best = theta = None
    for s_mm in LINE_SCALES_MM:
        s = s_mm / finest.mm_per_px
        if s < LINE_MIN_SIGMA_PX:
            continue
        depth, th = line_response(*hessian(finest.L, s), s)
        if best is None:
            best, theta = depth, th
        else:
            take = depth > best
            best = np.where(take, depth, best)
            theta = np.where(take, th, theta)
    if best is None:
        return None
    centre, length, area, near = trace_lines(finest, best, theta, valid, HESSIAN_DEPTH_HIGH,
                                             HESSIAN_DEPTH_LOW, groups=1)
    return Lines(centre, best, best, theta, length, area, finest, valid, near, oriented=False)


def oriented_level_mm(mm_per_px: float) -> float:
    """mm per pixel of the oriented detector's working level on a photo of `mm_per_px`:
    the photo reduced by the whole factor that keeps the finest line scale at least
    `LINE_PX_PER_SCALE` pixels (`photokit.metrics.analysis.level_factor`, as `work`)."""
    return mm_per_px * level_factor(mm_per_px, LINE_SCALES_MM[0] / LINE_PX_PER_SCALE)


def line_level_mm(mm_per_px: float) -> float:
    """mm per pixel the line detector works at on a photo of `mm_per_px` (the line
    metrics' ``working_level``): the oriented detector's level, or on photos too coarse for
    it (the finest scale under `LINE_ORIENTED_MIN_PX` pixels there) the Hessian detector's.

    Two photos a few % apart in scale can be worked on at levels 2x apart (0.0735 and
    0.0765 mm/px: 0.147 and 0.0765), and the line density moves with the level: four
    synthetic skins photographed so moved by -7 to -34 % (docs/NOISE.md), so a change
    between such photos is not judged (`photokit.metrics.noise.beyond_resolution`).
    """
    if _oriented(mm_per_px):
        return oriented_level_mm(mm_per_px)
    return mm_per_px * level_factor(mm_per_px, LINE_SCALES_MM[0] / HESSIAN_PX_PER_SCALE)


def _oriented(mm_per_px: float) -> bool:
    """Whether a photo of `mm_per_px` gets the oriented detector: its level holds the
    finest line scale over at least `LINE_ORIENTED_MIN_PX` pixels (else the Hessian's)."""
    return LINE_SCALES_MM[0] / oriented_level_mm(mm_per_px) >= LINE_ORIENTED_MIN_PX - 1e-9


def ridges(an: Analysis) -> Lines | None:
    """Dark line (wrinkle, furrow) centres, depth and length (see module notes); memoised.
    A view's lines are the whole skin's lines on the view's skin (`lines_within`)."""
    return an.shared("texture.lines", _ridges, lines_within)


def line_step(theta: np.ndarray) -> np.ndarray:
    """Centre-line length (pixels) of a centre pixel whose line normal is `theta`: one
    step along the dominant axis of the tangent, ``1 / max(|cos theta|, |sin theta|)``."""
    return 1.0 / np.maximum(np.abs(np.cos(theta)), np.abs(np.sin(theta)))


def centre_length(centre: np.ndarray, theta: np.ndarray, mm_per_px: float) -> float:
    """Length (mm) of the centre-line pixels `centre` whose line normals are `theta`."""
    return float(np.sum(line_step(theta[centre])) * mm_per_px)


def lines_within(ln: Lines, view: Analysis) -> Lines | None:
    """Lines `ln` of the whole skin on a view's skin: the centre pixels, depth and searched
    area inside it (None with too little skin). A line crossing the view's edge counts
    with the part inside."""
    w = ln.work.within(view)
    if w is None:
        return None
    rs, cs = w.window(ln.work)
    valid = ln.valid[rs, cs] & w.mask
    if not enough_skin(valid, w.mm_per_px):
        return None
    centre = ln.centre[rs, cs] & valid
    theta = ln.theta[rs, cs]
    return Lines(centre, ln.depth[rs, cs], ln.evidence[rs, cs], theta,
                 centre_length(centre, theta, w.mm_per_px),
                 float(np.count_nonzero(valid)) * w.mm_per_px ** 2, w, valid, ln.near[rs, cs] & valid,
                 ln.oriented)


def _ridges(an: Analysis) -> Lines | None:
    base = scaled(an)
    if base is None:
        return None
    if not _oriented(base.mm_per_px):
        return _hessian_ridges(an)
    finest = work(an, LINE_SCALES_MM[0] / LINE_PX_PER_SCALE, WHOLE_PX)
    valid = None if finest is None else line_search_area(finest)
    if valid is None:
        return None
    # the evidence and its angle are read on the searched skin and one pixel around it
    # (the non-maximum suppression): only there are they computed in full (`needed`)
    needed = cv2.dilate(valid.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    needed255 = None
    best = theta = scale = None
    hessians = []
    normals = line_normals()
    h, w = finest.L.shape
    mask32 = None
    # a coarser scale's full-size maps (response, cos and sin of the doubled angle, angle)
    # go into buffers the next coarser scale reuses (fresh megapixel arrays are slow to
    # touch), unless they became the best so far
    maps = None
    for s_mm in LINE_SCALES_MM:
        s = s_mm / finest.mm_per_px
        if s < LINE_MIN_SIGMA_PX:
            continue
        half = max(LINE_HALF_MM, LINE_HALF_SCALES * s_mm) / finest.mm_per_px
        gain = (s_mm / LINE_SCALES_MM[0]) ** -LINE_WIDTH_EXPONENT
        # coarser scales run on a copy reduced so the scale spans about LINE_PX_PER_SCALE
        # pixels there (the response is smooth on that grid) and are interpolated back
        r = max(1, int(np.floor(s / LINE_PX_PER_SCALE + 1e-9)))
        if r == 1:
            ev, which, hes = oriented_response(finest.L, finest.mask, s, half, gain, needed)
            th = per_direction(normals, which)
        else:
            size = (max(8, w // r), max(8, h // r))
            if mask32 is None:
                mask32, needed255 = finest.mask.astype(np.float32), needed.view(np.uint8) * np.uint8(255)
            Lr = cv2.resize(finest.L, size, interpolation=cv2.INTER_AREA)
            mr = cv2.resize(mask32, size, interpolation=cv2.INTER_AREA) >= 0.5
            # the reduced pixels a needed pixel's interpolation reads: the one its centre
            # lies in and its 8 neighbours, or more (`oriented_response` is exact on any
            # superset): every reduced pixel that a needed pixel overlaps by at least a
            # quarter of its own area (so by more than 1/510 of the reduced pixel: a
            # positive byte after the area average, for reductions up to 11) and two rings
            # around it, which hold the pixels it overlaps by less (they are next to one
            # such) and their neighbours; from bytes, 4x less to read than floats
            nr = cv2.dilate((cv2.resize(needed255, size, interpolation=cv2.INTER_AREA) > 0).view(np.uint8),
                            np.ones((5, 5), np.uint8)).view(bool)
            small, which, hes = oriented_response(Lr, mr, s / r, half / r, gain, nr)
            if maps is None or maps[0] is best:
                maps = [np.empty((h, w), np.float32) for _ in range(4)]
            ev, cs, sn, th = maps
            cv2.resize(small, (w, h), dst=ev, interpolation=cv2.INTER_LINEAR)
            # the angle is interpolated as the doubled-angle vector (symmetric, no wrap)
            for f, out in ((np.cos, cs), (np.sin, sn)):
                cv2.resize(per_direction(f(2 * normals), which), (w, h), dst=out,
                           interpolation=cv2.INTER_LINEAR)
            cv2.phase(cs, sn, angle=th)
            th *= np.float32(0.5)
        fx, fy = hes[0].shape[1] / w, hes[0].shape[0] / h
        hessians.append((hes, s / r, fx, fy))
        if best is None:
            best, theta, scale = ev, th, np.zeros((h, w), np.uint8)
        else:
            # scales come in increasing order: the last that beat the best is the largest
            take = cv2.compare(ev, best, cv2.CMP_GT)
            cv2.max(best, ev, dst=best)
            cv2.copyTo(th, take, theta)
            cv2.max(scale, cv2.min(take, len(hessians) - 1, dst=take), dst=scale)   # no fresh map
    if best is None:
        return None
    centre, length, area, near = trace_lines(finest, best, theta, valid, LINE_DEPTH_HIGH, LINE_DEPTH_LOW)
    # depth D_n across the line at its centre pixels, from the Hessian of the scale that
    # gave the evidence (sampled at the pixel centre on that scale's grid)
    depth = np.zeros((h, w), np.float32)
    ys, xs = pixels(centre)
    for j, ((lxx, lyy, lxy), s, fx, fy) in enumerate(hessians):
        sel = scale[ys, xs] == j
        if not sel.any():
            continue
        y, x = ys[sel], xs[sel]
        pts = np.stack([(x + 0.5) * fx - 0.5, (y + 0.5) * fy - 0.5], axis=1).astype(np.float32)[:, None, :]
        hxx, hyy, hxy = (cv2.remap(d, pts, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[:, 0]
                         for d in (lxx, lyy, lxy))
        t = theta[y, x]
        cs, sn = np.cos(t), np.sin(t)
        depth[y, x] = (cs * cs * hxx + 2 * cs * sn * hxy + sn * sn * hyy) * np.float32(s * s / _PEAK_VALLEY)
    return Lines(centre, depth, best, theta, length, area, finest, valid, near)


def pixels(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the nonzero pixels of a bool or uint8 image, in row-major order
    (`np.nonzero`'s result, by `cv2.findNonZero`: about twice as fast)."""
    p = cv2.findNonZero(np.ascontiguousarray(mask).view(np.uint8))
    if p is None:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return p[:, 0, 1].astype(np.intp), p[:, 0, 0].astype(np.intp)


def _good_components(li, ncomp, xs, ys, v, step, high, mm_per_px) -> tuple[np.ndarray, np.ndarray]:
    """Which labelled centre-line components are lines: a seed >= `high`, long enough,
    and straight enough (span along the principal axis, ``sqrt(12 var)`` for a segment,
    at least `LINE_MIN_STRAIGHTNESS` of the length) unless longer than `LINE_LONG_MM`.
    Returns that (bool per label) and each component's length (mm)."""
    comp_len = np.bincount(li, weights=step, minlength=ncomp) * mm_per_px
    comp_high = np.bincount(li[v >= high], minlength=ncomp) > 0
    cnt = np.maximum(np.bincount(li, minlength=ncomp), 1).astype(np.float64)
    xf, yf = xs.astype(np.float64), ys.astype(np.float64)
    mx, my = (np.bincount(li, weights=q, minlength=ncomp) / cnt for q in (xf, yf))
    cxx = np.bincount(li, weights=xf * xf, minlength=ncomp) / cnt - mx ** 2
    cyy = np.bincount(li, weights=yf * yf, minlength=ncomp) / cnt - my ** 2
    cxy = np.bincount(li, weights=xf * yf, minlength=ncomp) / cnt - mx * my
    lam = 0.5 * (cxx + cyy) + np.sqrt(np.maximum(0.25 * (cxx - cyy) ** 2 + cxy ** 2, 0))
    span = np.sqrt(12 * np.maximum(lam, 0)) * mm_per_px
    straight = (span >= LINE_MIN_STRAIGHTNESS * comp_len) | (comp_len >= LINE_LONG_MM)
    good = comp_high & straight & (comp_len >= LINE_MIN_LENGTH_MM)
    good[0] = False
    return good, comp_len


def line_search_area(finest: Work) -> np.ndarray | None:
    """The skin lines are searched on (`trace_lines`): the working level's skin eroded by
    twice the widest line scale; None when that is too little skin (`enough_skin`)."""
    valid = erode(finest.mask, 2.0 * LINE_SCALES_MM[-1] / finest.mm_per_px)
    return valid if enough_skin(valid, finest.mm_per_px) else None


def read_zero_beyond(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``img[ys, xs]``, zero where ``(xs, ys)`` lies outside `img`: what reading a copy
    padded with zeros gives, without copying a megapixel map for a few points."""
    h, w = img.shape
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    out = img[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)]
    out[~inside] = 0
    return out


def point_components(ys: np.ndarray, xs: np.ndarray, width: int) -> tuple[int, np.ndarray]:
    """8-connected components of the pixels ``(ys, xs)`` of an image `width` wide (distinct,
    in row-major order): the number of labels with the background's (0) and each pixel's
    label (1, 2, ...), the labels `cv2.connectedComponents` gives the image holding them.

    At the cost of the pixels rather than of the image (a few thousand line pixels on a
    12 MP map took 30-60 ms as an image): each pixel is joined to its right, lower-left,
    lower and lower-right neighbours found among them (by their linear index, sorted), the
    graph's components are found (`scipy.sparse.csgraph.connected_components`) and
    numbered as OpenCV's block-based labelling (Bolelli et al. 2019, "Spaghetti
    labeling", IEEE TIP 29:1999-2012, doi:10.1109/TIP.2019.2946979) numbers them: by the
    first 2 x 2 block holding one of their pixels, blocks in row-major order (a 2 x 2 block
    holds one component at most). `tests/test_texture.py` holds the two numberings equal.
    """
    n = ys.size
    idx = ys.astype(np.int64) * width + xs
    rows, cols = [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        nx = xs + dx
        nb = idx + (dy * width + dx)
        pos = np.minimum(np.searchsorted(idx, nb), n - 1)
        hit = (nx >= 0) & (nx < width) & (idx[pos] == nb)
        rows.append(np.flatnonzero(hit))
        cols.append(pos[hit])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = sparse.coo_matrix((np.ones(r.size, np.int8), (r, c)), shape=(n, n))
    k, labels = csgraph.connected_components(graph, directed=False)
    block = (ys // 2).astype(np.int64) * ((width + 1) // 2) + xs // 2
    first = np.full(k, np.iinfo(np.int64).max)
    np.minimum.at(first, labels, block)
    rank = np.empty(k, np.int64)
    rank[np.argsort(first)] = np.arange(1, k + 1)
    return k + 1, rank[labels]


def trace_lines(finest: Work, best: np.ndarray, theta: np.ndarray, valid: np.ndarray, high: float,
                low: float, groups: int = LINE_GROUPS):
    """Centre lines of the evidence map `best` on the searched skin `valid`
    (`line_search_area`): NMS, hysteresis, length and shape tests. `best` and `theta` are
    read on `valid` and one pixel around it only.

    Returns ``(centre, length_mm, area_mm2, near)``; ``near`` are the near misses
    (`Lines.near`).
    """
    H, W = best.shape
    # non-maximum suppression across the line, with the normal quantised to 45 degrees
    cand = cv2.bitwise_and(cv2.compare(best, float(low), cv2.CMP_GE), valid.view(np.uint8))
    ys, xs = pixels(cand)
    c = (np.rint(theta[ys, xs] * np.float32(4 / np.pi)).astype(np.uint8)) & 3
    dx = np.array([1, 1, 0, -1], np.int64)[c]
    dy = np.array([0, 1, 1, 1], np.int64)[c]
    v = best[ys, xs]
    ok = (v >= read_zero_beyond(best, ys + dy, xs + dx)) & (v > read_zero_beyond(best, ys - dy, xs - dx))
    ys, xs, v = ys[ok], xs[ok], v[ok]
    th = theta[ys, xs]
    step = line_step(th)
    keep = np.zeros(ys.size, bool)
    missed = np.zeros(ys.size, bool)
    # components are traced within overlapping orientation groups, so a line is not
    # merged with the furrows that cross it (and judged by their length and shape)
    for g in range(groups):
        if groups == 1:
            sel = np.arange(th.size)
        else:
            centre_angle = g * np.pi / groups
            dist = np.abs((th - centre_angle + np.pi / 2) % np.pi - np.pi / 2)
            sel = np.nonzero(dist <= LINE_GROUP_HALF_WIDTH)[0]
        if sel.size == 0:
            continue
        ncomp, li = point_components(ys[sel], xs[sel], W)
        good, comp_len = _good_components(li, ncomp, xs[sel], ys[sel], v[sel], step[sel], high,
                                          finest.mm_per_px)
        keep[sel] |= good[li]
        missed[sel] |= ~good[li] & (comp_len[li] >= LINE_NEAR_MM)
    centre = np.zeros((H, W), bool)
    centre[ys[keep], xs[keep]] = True
    near = np.zeros((H, W), bool)
    near[ys[missed & ~keep], xs[missed & ~keep]] = True
    length = float(np.sum(step[keep]) * finest.mm_per_px)
    area = float(np.count_nonzero(valid)) * finest.mm_per_px ** 2
    return centre, length, area, near


#: Largest ratio of two photos' mm per pixel at which a line metric's change is judged
#: (`photokit.metrics.registry.Metric.resolution_tolerance`). At 0.1 mm/px lines hardly
#: move with the resolution (a synthetic close-up resized by up to 2x: wrinkle density
#: within 0.04 of its floor), but on coarse photos the finest line scale is not resolved
#: and the detector changes path: the real zoom re-captures (0.18-0.40 mm/px, ratios
#: 1.25-2.3) flagged wrinkle density in 4 of 6 pairs of unchanged skin.
LINE_RESOLUTION_TOLERANCE = 1.2

#: Relative SD of line length and depth between captures of the same skin (VISIA
#: wrinkles ~6 %, docs/NOISE.md); the lines' own sampling comes on top. The line density
#: of the oriented detector has its own, fitted with `LINE_FOUND_PROBIT`.
LINE_CAPTURE_CV = 0.06
#: Probability that a re-capture of the same skin finds a line again (a piece of this
#: photo's centre lines, `line_found_p`): ``Phi(a + b e + c ln(l / LINE_MIN_LENGTH_MM))``
#: with ``e`` its mean evidence (L*) and ``l`` its length (mm), ``(a, b, c)`` fitted by
#: maximum likelihood on synthetic re-captures (``benchmarks/bench_lines.py --sections 5
#: --fit``; docs/NOISE.md "Lines: the same lines, found again"): 19 % of the pieces with
#: ``e`` under 0.9 L* were found again, 94 % of those over 1.3 L*.
LINE_FOUND_PROBIT = (-3.19, 2.84, 1.10)
#: The same for the near misses (`Lines.near`): the chance that a re-capture finds one as
#: (part of) a line.
LINE_NEAR_PROBIT = (-4.86, 3.09, -0.26)
#: Relative SD of the whole density between captures beyond the lines' flicker
#: (`line_density_noise`), fitted on the same re-captures.
LINE_DENSITY_CV = 0.0


def line_pieces(ln: Lines, mask: np.ndarray | None = None,
                values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Length (mm) and mean value of each 8-connected component of centre-line pixels.

    Parameters
    ----------
    ln : Lines
    mask : ndarray of bool, optional
        The centre-line pixels: `Lines.centre` (default: the connected centre lines, the
        pieces the noise model and ``measure --features`` count) or `Lines.near`.
    values : ndarray, optional
        The map averaged over each piece: `Lines.depth` (default) or `Lines.evidence`.

    Returns
    -------
    length, mean : ndarray
        Each piece's length, ``sum(line_step(theta))`` over its pixels times the pixel
        size (the pieces of `Lines.centre` sum to `Lines.length_mm`), and the mean of
        `values` over its pixels.
    """
    mask = ln.centre if mask is None else mask
    values = ln.depth if values is None else values
    n, ids, ys, xs = ln.components(mask)
    if n <= 1:
        return np.zeros(0), np.zeros(0)
    px = np.bincount(ids, minlength=n)[1:].astype(float)
    length = np.bincount(ids, weights=line_step(ln.theta[ys, xs]), minlength=n)[1:] * ln.work.mm_per_px
    mean = np.bincount(ids, weights=values[ys, xs].astype(float), minlength=n)[1:] / px
    return length, mean


def line_features(an: Analysis) -> list[dict] | None:
    """Every detected line as the SPEC's ``measure --features`` entry:
    ``{"points": [[x, y], ...], "length_mm": ...}`` in full-resolution pixels, one per
    connected centre line (the pieces `line_pieces` measures), its pixels ordered along
    the line's principal axis; None when lines were not searched."""
    ln = ridges(an)
    if ln is None:
        return None
    n, ids, ys, xs = ln.components(ln.centre)
    lengths = line_pieces(ln)[0]
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(1, n + 1))
    out = []
    for i in range(1, n):
        k = order[bounds[i - 1]:bounds[i]]
        c = np.stack([xs[k], ys[k]], 1).astype(np.float64)
        axis = np.linalg.svd(c - c.mean(0), full_matrices=False)[2][0]
        k = k[np.argsort((c - c.mean(0)) @ axis)]
        fx, fy = ln.work.to_full(xs[k], ys[k])
        out.append({"points": [[round(float(x), 1), round(float(y), 1)] for x, y in zip(fx, fy, strict=True)],
                    "length_mm": float(lengths[i - 1])})
    return out


def line_found_p(length_mm, evidence, probit=LINE_FOUND_PROBIT) -> np.ndarray:
    r"""Probability that a re-capture finds a line piece again (or a near miss as a line).

    :math:`p = \Phi(a + b\,e + c \ln(l / l_{min}))`, a probit model (Finney 1971, Probit
    Analysis, 3rd ed., Cambridge University Press) with ``l_min`` = `LINE_MIN_LENGTH_MM`.

    Parameters
    ----------
    length_mm, evidence : array_like
        Each piece's length ``l`` (mm) and mean evidence ``e`` (L*, `line_pieces`).
    probit : tuple of float
        ``(a, b, c)``: `LINE_FOUND_PROBIT` for the pieces found, `LINE_NEAR_PROBIT` for
        the near misses.
    """
    a, b, c = probit
    z = a + b * np.asarray(evidence, float) + c * np.log(np.asarray(length_mm, float) / LINE_MIN_LENGTH_MM)
    return special.ndtr(z)


def line_density_noise(ln: Lines) -> float:
    r"""SE of the line density (mm/cm^2) of `ln` between re-captures of the same skin.

    A re-capture finds the same lines again, except those near the detector's thresholds:
    `found_se` over the line pieces (connected centre lines, weight = length ``l_i``) and
    the near misses (`Lines.near`), each found again with probability ``p_i``
    (`line_found_p`),

    :math:`se = k (\sqrt{\sum p_i (1 - p_i) l_i^2 + (c \sum l_i)^2} + s / (2\sqrt 2\,z))`,

    ``k = 100 / area``, ``c`` = `LINE_DENSITY_CV`, ``s`` the continuity step. Fitted and
    tested on synthetic re-captures: docs/NOISE.md. The coarse photos' Hessian detector
    (other thresholds, not calibrated) keeps the compound Poisson SE (`count_se`: each
    line a new sample, conservative) with `LINE_CAPTURE_CV`.

    Parameters
    ----------
    ln : Lines
        The lines of a photo (or of a view, `lines_within`).

    Returns
    -------
    float
        SE in mm/cm^2.
    """
    k = 100.0 / ln.area_mm2
    if not ln.oriented:
        return count_se(line_pieces(ln)[0], k, LINE_CAPTURE_CV)
    fl, fe = line_pieces(ln, ln.centre, ln.evidence)
    nl, ne = line_pieces(ln, ln.near, ln.evidence)
    return found_se(fl, line_found_p(fl, fe), nl, line_found_p(nl, ne, LINE_NEAR_PROBIT),
                    per_weight=k, capture_cv=LINE_DENSITY_CV)


def _line_density_noise(an: Analysis, value: float) -> float | str:
    ln = ridges(an)
    return "no lines searched" if ln is None else line_density_noise(ln)


def _line_depth_noise(an: Analysis, value: float) -> float | str:
    ln = ridges(an)
    return "no lines searched" if ln is None else mean_se(line_pieces(ln)[1], LINE_CAPTURE_CV)


@metric("texture.wrinkle_density", resolution_tolerance=LINE_RESOLUTION_TOLERANCE,
        working_level=line_level_mm,
        unit="mm/cm^2", mdc=14.0, better="lower", needs_colour=False,
        noise=_line_density_noise, version=2,
        core=True, trend_rank=1, needs_scale=True, job=LINES_JOB,
        description="length of dark lines (0.3-1.2 mm scale, >= 3 mm long) per skin area")
def wrinkle_density(an: Analysis) -> float | None:
    """Line length (mm) per analysed skin area (cm^2)."""
    ln = ridges(an)
    if ln is None:
        return None
    return ln.length_mm / (ln.area_mm2 / 100.0)


@metric("texture.wrinkle_depth", resolution_tolerance=LINE_RESOLUTION_TOLERANCE,
        working_level=line_level_mm,
        trend_rank=100, unit="L*", mdc=3.0, better="lower", needs_colour=False,
        noise=_line_depth_noise, version=2,
        needs_scale=True, job=LINES_JOB,
        description="mean estimated depth (L* contrast) along detected lines")
def wrinkle_depth(an: Analysis) -> float | None:
    """Mean line depth estimate over centre-line pixels (None when no line)."""
    ln = ridges(an)
    if ln is None or not ln.centre.any():
        return None
    return float(np.mean(ln.depth[ln.centre], dtype=np.float64))
