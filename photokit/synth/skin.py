"""Skin rendered from chromophores: melanin and haemoglobin in optical density, plus surface.

The reflectance of every skin pixel is a Beer-Lambert sum in optical density (OD),
multiplied by a grey shading factor from the surface relief:

``R_rgb = exp(-(OD_0 + c_mel * v_mel + c_hb * v_hb)) * S``

with ``v_mel`` and ``v_hb`` the absorption directions of `ABSORPTION_MELANIN` and
`ABSORPTION_HAEMOGLOBIN` (per unit concentration, red channel of melanin = 1), ``OD_0``
the chromophore-free `BASELINE_OD`, and ``S`` the grey shading of the height field ``h``
(micro-relief furrows, wrinkles as grooves ``W``, pores as depressions ``P``):

``S = S_limb * e / mean(e)``, ``e = exp(k_d (grad h . l) + k_c (h - G_0.6mm * h) - k_p P - k_g W)``

(light from the top-left ``l``; unit mean, so relief redistributes light without changing
the mean tone; ``S_limb`` darkens the skin towards the edge of the skin region, as a
curved cheek does). Because the shading is the same in all channels it is a pure offset
along ``(1, 1, 1)`` in OD: the model photokit's chromophore separation inverts (Tsumura
et al. 1999, 2003), so that can be tested against it exactly. Pores also carry a little
melanin (keratin/sebum in the opening).

The random structure of one skin (tone fields, relief network, pore, wrinkle and spot
positions) depends only on the seed and the identity parameters (`SkinParams` fields not
in `STATE_FIELDS`); the state fields (tone levels, roughness, pore depth, spot contrast,
erythema dose, pinpoint marks) only scale it. The same seed with other state values is
therefore the same skin on another day.

References
----------
N. Tsumura, H. Haneishi, Y. Miyake, "Independent-component analysis of skin color image",
JOSA A 16(9):2169-2176 (1999), doi:10.1364/JOSAA.16.002169.
S. L. Jacques, "Optical properties of biological tissues: a review", Phys. Med. Biol.
58(11):R37 (2013), doi:10.1088/0031-9155/58/11/R37 (melanin ~ lambda^-3.3; haemoglobin
absorbs green/blue far more than red).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from . import card as _card

#: OD per unit melanin concentration in linear R, G, B: rises steadily towards blue
#: (camera-band average of a ``lambda^-3.3`` absorption spectrum, compressed by scattering).
ABSORPTION_MELANIN = np.array([1.00, 1.30, 1.70], dtype=np.float32)
#: OD per unit haemoglobin concentration: green (542/577 nm bands) and blue (Soret wing)
#: far above red.
ABSORPTION_HAEMOGLOBIN = np.array([0.12, 1.00, 0.72], dtype=np.float32)
#: OD of chromophore-free skin (scattering losses, carotene, bilirubin).
BASELINE_OD = np.array([0.10, 0.15, 0.30], dtype=np.float32)

#: Parameters that change with the state of the same skin (visit, treatment);
#: all other `SkinParams` fields define the skin's identity (its random structure).
STATE_FIELDS = frozenset({
    "melanin", "haemoglobin", "ita", "tone_variation", "roughness", "wrinkle_depth",
    "pore_depth", "spot_contrast", "erythema", "erythema_mottle", "bleeding", "scabs",
    "marks_seed", "pih",
})

# Shading constants (dimensionless; the height field h is in units of its own RMS).
_K_DIRECTIONAL = 0.11     # gain of the lit-slope term (grad h . l), per px of slope
_K_CAVITY = 0.04          # darkening per unit depth below the local mean
_K_PORE = 0.28            # extra darkening at the bottom of a pore (shadowed opening)
_WRINKLE_SCALE = 3.0      # groove depth in units of the relief RMS
_K_GROOVE = 0.10          # extra darkening at the bottom of a groove
_PORE_SCALE = 1.5         # pore depth in units of the relief RMS
_PORE_MELANIN = 0.12      # melanin OD at the centre of a pore of unit depth
_LIGHT_DIR = (-0.6, -0.8)  # light from the top-left (unit vector in image x, y)
_RELIEF_AMPLITUDE = 1.0
_FINE_GRAIN = 0.35
#: 3x3 derivative along -_LIGHT_DIR (Sobel, per px): positive where the surface faces the light
_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32) * np.float32(0.125)
_SLOPE_KERNEL = np.float32(-_LIGHT_DIR[0]) * _SOBEL_X + np.float32(-_LIGHT_DIR[1]) * _SOBEL_X.T


@dataclass
class SkinParams:
    """Everything that describes the skin in the scene (not the camera).

    Lengths are in millimetres, densities per cm^2, layout positions in fractions of the
    canonical frame (``x / width``, ``y / height``). Concentrations are optical densities
    along `ABSORPTION_MELANIN` / `ABSORPTION_HAEMOGLOBIN`.

    Attributes
    ----------
    width, height : int
        Canonical frame (and photo) size in pixels.
    mm_per_px : float
        Scale of the canonical frame.
    melanin, haemoglobin : float
        Mean concentrations of normal skin (0.45 / 0.38: light cheek skin, ITA ~ 45 deg,
        a* ~ 13).
    ita : float or None
        If set, `melanin` is replaced by the level giving this ITA (deg) on flat skin
        (see `melanin_for_ita`); covers very light (> 55) to dark (< -30).
    tone_variation : float
        Scale of the smooth mottling of both chromophores (1 = normal, 0 = flat).
    roughness : float
        Amplitude of the micro-relief (furrow network and fine grain); 1 = normal.
    relief_cell_mm : float
        Mean plateau size of the micro-relief network.
    wrinkles, wrinkle_length_mm, wrinkle_width_mm, wrinkle_angle_deg, wrinkle_angle_spread_deg
        Number of fine lines in the frame, length range, groove width (FWHM) range,
        mean orientation (deg, image x towards y) and spread.
    wrinkle_depth : float
        Depth scale of the grooves (1 = normal).
    pore_density : float
        Pores per cm^2 of skin.
    pore_radius_mm : tuple
        Range of pore radii (half-depth radius of the Gaussian depression).
    pore_depth : float
        Depth scale of the pores (1 = normal; visibility).
    brown_spots, brown_spot_radius_mm, brown_spot_contrast
        Number of pigmented spots (lentigines/freckles) inside the canonical frame, their
        radius range and melanin OD increment range at the centre.
    red_spots, red_spot_radius_mm, red_spot_contrast
        The same for red (haemoglobin) spots.
    spot_contrast : float
        Scale of all spot contrasts (treatment improvement: < 1).
    erythema : float
        Haemoglobin OD added over the treated region (post-treatment erythema dose).
    erythema_mottle : float
        Relative blotchiness of the erythema.
    erythema_edge_mm : float
        Width of the soft edge of the erythema patch, centred on the treated ellipse
        (at most 40 % of its smaller semi-axis).
    bleeding : float
        Pinpoint marks per cm^2 of treated region (0 = none).
    scabs : bool
        Render the marks as day-after scabs (brown-red) instead of fresh blood.
    marks_seed : int
        Which set of needle marks (one per session).
    pih : float
        Post-inflammatory hyperpigmentation: melanin OD added at the centre of
        `pih_patches` irregular blotches (radii `pih_radius_mm`) inside the treated region
        (a complication to flag: new brown areas). 0 = none.
    background : bool
        A backdrop around a skin region with a soft edge; False = skin fills the frame.
    card : bool
        A ColorChecker 24 card lying in the scene.
    card_width_mm : float or None
        Card width (None: a quarter of the frame width, 28 mm at the default size);
        height and patch layout follow `photokit.synth.card`.
    card_centre, card_angle_deg
        Card position (frame fractions) and rotation.
    skin_centre, skin_axes
        Centre and semi-axes (frame fractions) of the skin region when `background`.
    roi_centre, roi_axes
        The treated region (ellipse; frame fractions); the ROI in the truth is this
        ellipse shrunk by half the erythema edge, so it is uniformly treated.
    reference_centre, reference_axes
        Untreated reference skin (ellipse; frame fractions).
    """

    width: int = 1600
    height: int = 1200
    mm_per_px: float = 0.07
    melanin: float = 0.45
    haemoglobin: float = 0.38
    ita: float | None = None
    tone_variation: float = 1.0
    roughness: float = 1.0
    relief_cell_mm: float = 0.45
    wrinkles: int = 7
    wrinkle_length_mm: tuple[float, float] = (6.0, 22.0)
    wrinkle_width_mm: tuple[float, float] = (0.20, 0.40)
    wrinkle_angle_deg: float = 25.0
    wrinkle_angle_spread_deg: float = 18.0
    wrinkle_depth: float = 1.0
    pore_density: float = 50.0
    pore_radius_mm: tuple[float, float] = (0.08, 0.18)
    pore_depth: float = 1.0
    brown_spots: int = 12
    brown_spot_radius_mm: tuple[float, float] = (0.5, 2.0)
    brown_spot_contrast: tuple[float, float] = (0.20, 0.55)
    red_spots: int = 3
    red_spot_radius_mm: tuple[float, float] = (0.3, 0.8)
    red_spot_contrast: tuple[float, float] = (0.35, 0.8)
    spot_contrast: float = 1.0
    erythema: float = 0.0
    erythema_mottle: float = 0.15
    erythema_edge_mm: float = 6.0
    bleeding: float = 0.0
    scabs: bool = False
    marks_seed: int = 0
    pih: float = 0.0
    pih_patches: int = 3
    pih_radius_mm: tuple[float, float] = (2.0, 4.5)
    background: bool = True
    card: bool = False
    card_width_mm: float | None = None
    card_centre: tuple[float, float] = (0.80, 0.80)
    card_angle_deg: float = -4.0
    skin_centre: tuple[float, float] = (0.40, 0.46)
    skin_axes: tuple[float, float] = (0.52, 0.62)
    roi_centre: tuple[float, float] = (0.42, 0.56)
    roi_axes: tuple[float, float] = (0.20, 0.22)
    reference_centre: tuple[float, float] = (0.17, 0.16)
    reference_axes: tuple[float, float] = (0.075, 0.09)

    def replace(self, **changes) -> SkinParams:
        """A copy with some fields changed (unknown names raise TypeError)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @property
    def melanin_level(self) -> float:
        """The mean melanin OD actually used (`ita` solved when given)."""
        if self.ita is None:
            return float(self.melanin)
        return melanin_for_ita(float(self.ita), float(self.haemoglobin))

    def identity_key(self) -> tuple:
        return tuple((f.name, getattr(self, f.name)) for f in dataclasses.fields(self)
                     if f.name not in STATE_FIELDS)


def flat_reflectance(melanin: float, haemoglobin: float) -> np.ndarray:
    """Linear RGB reflectance of flat skin (no relief) for the given concentrations."""
    od = BASELINE_OD + melanin * ABSORPTION_MELANIN + haemoglobin * ABSORPTION_HAEMOGLOBIN
    return np.exp(-od.astype(np.float64))


#: Mean darkening of rendered skin against flat skin, as seen by a per-pixel mean of L*
#: (relief shading varies pixel to pixel and L* is concave in luminance).
ITA_SHADING = 0.955


@functools.lru_cache(maxsize=256)
def melanin_for_ita(ita_deg: float, haemoglobin: float = 0.38, shading: float = ITA_SHADING) -> float:
    """Melanin OD giving skin of the given ITA (bisection; ITA falls with melanin).

    ``ITA = atan2(L* - 50, b*)`` in degrees (Chardon et al. 1991), solved for flat skin
    of reflectance ``shading * flat_reflectance(melanin, haemoglobin)``; the default
    `ITA_SHADING` makes the mean per-pixel ITA of rendered skin (away from the edge of
    the skin region, no spots) match within a few degrees. Reachable range with the
    default haemoglobin: about +80 (melanin 0) to -65 (melanin 3).
    """
    from ..colour.convert import linear_to_lab

    def ita(m):
        refl = shading * flat_reflectance(m, haemoglobin)
        lab = linear_to_lab(refl.astype(np.float32)[None, None])[0, 0]
        return math.degrees(math.atan2(float(lab[0]) - 50.0, float(lab[2])))

    lo, hi = 0.0, 3.5
    if not ita(hi) <= ita_deg <= ita(lo):
        raise ValueError(f"ITA {ita_deg} outside the renderable range [{ita(hi):.0f}, {ita(lo):.0f}]")
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if ita(mid) > ita_deg:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------- geometry

@dataclass(frozen=True)
class Grid:
    """The canonical frame and the larger 'world' canvas the scene is rendered on.

    World pixel ``(u, v) = (x + margin, y + margin)`` for canonical pixel ``(x, y)``; the
    margin lets a moved camera see skin beyond the canonical frame.
    """

    width: int
    height: int
    mm_per_px: float
    margin: int

    @property
    def world_shape(self) -> tuple[int, int]:
        return self.height + 2 * self.margin, self.width + 2 * self.margin

    def px(self, mm: float) -> float:
        return mm / self.mm_per_px

    def frac(self, fx: float, fy: float) -> tuple[float, float]:
        """Canonical pixel of a frame fraction."""
        return fx * self.width, fy * self.height


def ellipse_polygon(centre, axes, n: int = 72) -> np.ndarray:
    """Vertices (n, 2) of an axis-aligned ellipse, canonical pixels."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([centre[0] + axes[0] * np.cos(t), centre[1] + axes[1] * np.sin(t)], axis=1)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Gaussian-filtered white noise with unit standard deviation, float32.

    Generated at a reduced resolution (factor ~ sigma/4) and upsampled, so that large
    correlation lengths stay cheap.
    """
    h, w = shape
    f = max(1, int(sigma_px / 4))
    sh, sw = -(-h // f) + 1, -(-w // f) + 1
    need = int(8 * sigma_px / f) + 1     # a field much smaller than sigma has no variance to
    if sh < need or sw < need:           # normalise: draw a larger one, normalise, crop
        big = rng.standard_normal((max(sh, need), max(sw, need)), dtype=np.float32)
        big = cv2.GaussianBlur(big, (0, 0), sigma_px / f, borderType=cv2.BORDER_REFLECT)
        n = big[:sh, :sw] / np.float32(max(float(big.std()), 1e-12))
        if f > 1:
            n = cv2.resize(n, (sw * f, sh * f), interpolation=cv2.INTER_CUBIC)
        return np.ascontiguousarray(n[:h, :w], dtype=np.float32)
    n = rng.standard_normal((sh, sw), dtype=np.float32)
    n = cv2.GaussianBlur(n, (0, 0), sigma_px / f, borderType=cv2.BORDER_REFLECT)
    if f > 1:
        n = cv2.resize(n, (sw * f, sh * f), interpolation=cv2.INTER_CUBIC)
    n = n[:h, :w]
    sd = float(n[::4, ::4].std())
    return np.ascontiguousarray(n / max(sd, 1e-12), dtype=np.float32)


def _white(rng: np.random.Generator, shape) -> np.ndarray:
    """Zero-mean white noise, float32 (uniform: about twice as fast as normal draws, and
    Gaussian after any blur by the central limit theorem)."""
    n = rng.random(shape, dtype=np.float32)
    n -= np.float32(0.5)
    return n


def make_rng(seed: int, stream: int) -> np.random.Generator:
    """Independent random stream per component, so changing one leaves the others alone."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stream])


# --------------------------------------------------------------------------- skin fields

@dataclass
class SkinFields:
    """The random structure of one skin on the world canvas (unit amplitudes)."""

    grid: Grid
    params: SkinParams
    seed: int
    mel_noise: np.ndarray
    hb_noise: np.ndarray
    ery_noise: np.ndarray
    relief: np.ndarray
    grooves: np.ndarray
    pores: np.ndarray
    spots_mel: np.ndarray
    spots_hb: np.ndarray
    skin_alpha: np.ndarray
    limb: np.ndarray
    treated: np.ndarray
    pih_map: np.ndarray | None
    background_rgb: np.ndarray | None
    card: _card.CardRender | None
    spots: list = field(default_factory=list)
    pih_patches: list = field(default_factory=list)
    wrinkles: list = field(default_factory=list)
    pore_xy: np.ndarray | None = None
    pore_r_mm: np.ndarray | None = None
    regions: dict = field(default_factory=dict)


def _skin_shape(grid: Grid, p: SkinParams, rng: np.random.Generator):
    """Soft skin alpha and signed inside-distance (mm) of a perturbed super-ellipse."""
    hh, ww = grid.world_shape
    if not p.background:
        ones = np.ones((hh, ww), np.float32)
        return ones, np.full((hh, ww), 1e3, np.float32)
    cx, cy = grid.frac(*p.skin_centre)
    ax, ay = p.skin_axes[0] * grid.width, p.skin_axes[1] * grid.height
    # distance field at 1/4 resolution (smooth shape), upsampled
    f = 4
    ys = (np.arange(0, hh, f, dtype=np.float32) - grid.margin - cy) / ay
    xs = (np.arange(0, ww, f, dtype=np.float32) - grid.margin - cx) / ax
    X, Y = np.meshgrid(xs, ys)
    r = (np.abs(X) ** 2.4 + np.abs(Y) ** 2.4) ** (1 / 2.4)
    theta = np.arctan2(Y, X)
    k = rng.uniform(0, 2 * np.pi, 3)
    r = r * (1 + 0.035 * np.cos(2 * theta + k[0]) + 0.025 * np.cos(3 * theta + k[1])
             + 0.015 * np.cos(5 * theta + k[2]))
    d_mm = (1.0 - r) * min(ax, ay) * grid.mm_per_px
    d_mm = cv2.resize(d_mm.astype(np.float32), (ww, hh), interpolation=cv2.INTER_LINEAR)
    # small irregularity of the outline (0.3 mm) so the edge is not a perfect curve
    d_mm += 0.25 * smooth_noise(rng, (hh, ww), grid.px(4.0))
    alpha = _smoothstep(-0.4, 0.4, d_mm).astype(np.float32)
    return alpha, d_mm.astype(np.float32)


def _relief(grid: Grid, p: SkinParams, rng: np.random.Generator) -> np.ndarray:
    """Micro-relief height (unit RMS): a cross-hatched furrow network plus fine grain.

    Furrows are the zero-crossings of band-limited noise (``|n|`` is creased there,
    'ridged noise'): two families elongated along two crossing directions and one
    isotropic family, combined by their minimum, give the rhomboid plateaus of skin
    micro-relief with a mean plateau size of about ``relief_cell_mm``.
    """
    hh, ww = grid.world_shape
    cell = grid.px(p.relief_cell_mm)
    long_, short = cell * 0.9, cell / 3.2
    angle = rng.uniform(0, 180)
    # the furrow bands are drawn axis-aligned on the rotated frame's bounding box, at half
    # resolution when they are smooth enough (short sigma >= 1 px there: nothing aliases)
    f = 2 if short >= 2.0 else 1
    ca, sa = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    bw = int(math.ceil((ww * ca + hh * sa) / f)) + 8
    bh = int(math.ceil((ww * sa + hh * ca) / f)) + 8
    rot = cv2.getRotationMatrix2D((bw / 2, bh / 2), angle, float(f))
    rot[:, 2] += [(ww - bw) / 2, (hh - bh) / 2]

    def band(sx, sy):
        n = _white(rng, (bh, bw))
        n = cv2.GaussianBlur(n, (0, 0), sigmaX=sx / f, sigmaY=sy / f)
        n /= max(float(n[::4, ::4].std()), 1e-9)
        return np.abs(cv2.warpAffine(n, rot, (ww, hh), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))

    cross = np.minimum(band(long_, short), band(short * 1.3, long_ * 0.8))
    iso = cv2.GaussianBlur(_white(rng, (hh, ww)), (0, 0), cell / 2.6)
    iso = np.abs(iso / max(float(iso[::4, ::4].std()), 1e-9))
    h = np.minimum(cross, 1.2 * iso)
    h = cv2.GaussianBlur(h, (0, 0), 0.9)
    grain = cv2.GaussianBlur(_white(rng, (hh, ww)), (0, 0), 0.8)
    h = h - float(h[::4, ::4].mean())
    h /= max(float(h[::4, ::4].std()), 1e-9)
    h += np.float32(_FINE_GRAIN / max(float(grain[::4, ::4].std()), 1e-9)) * grain
    h /= max(float(h[::4, ::4].std()), 1e-9)
    return h.astype(np.float32)


def _wrinkles(grid: Grid, p: SkinParams, rng: np.random.Generator, skin_d_mm: np.ndarray):
    """Grooves (unit depth at the deepest point) along gently curved lines."""
    hh, ww = grid.world_shape
    grooves = np.zeros((hh, ww), np.float32)
    out = []
    tries = 0
    while len(out) < p.wrinkles and tries < 50 * max(1, p.wrinkles):
        tries += 1
        length_mm = rng.uniform(*p.wrinkle_length_mm)
        width_mm = rng.uniform(*p.wrinkle_width_mm)          # FWHM
        angle = p.wrinkle_angle_deg + rng.uniform(-1, 1) * p.wrinkle_angle_spread_deg
        depth = rng.uniform(0.6, 1.0)
        bend = rng.uniform(-0.12, 0.12)                      # sagitta / length
        cx, cy = rng.uniform(0.05, 0.95) * grid.width, rng.uniform(0.05, 0.95) * grid.height
        L = grid.px(length_mm)
        t = np.linspace(-0.5, 0.5, 25)
        a = math.radians(angle)
        ux, uy = math.cos(a), math.sin(a)
        off = bend * L * (1 - 4 * t ** 2)
        pts = np.stack([cx + t * L * ux - off * uy, cy + t * L * uy + off * ux], axis=1)
        wu = pts + grid.margin
        if wu.min() < 0 or wu[:, 0].max() >= ww or wu[:, 1].max() >= hh:
            continue
        iu = np.clip(wu.round().astype(int), 0, [ww - 1, hh - 1])
        if skin_d_mm[iu[:, 1], iu[:, 0]].min() < 2.0:        # keep lines on skin
            continue
        sigma = grid.px(width_mm) / 2.3548
        pad = int(4 * sigma + 3)
        x0, y0 = int(wu[:, 0].min()) - pad, int(wu[:, 1].min()) - pad
        x1, y1 = int(wu[:, 0].max()) + pad + 1, int(wu[:, 1].max()) + pad + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, ww), min(y1, hh)
        patch = np.zeros((y1 - y0, x1 - x0), np.float32)
        taper = np.sin(np.pi * (t + 0.5)) ** 0.6
        shift = 4
        q = np.round((wu - [x0, y0]) * (1 << shift)).astype(np.int32)
        for i in range(len(t) - 1):
            cv2.line(patch, tuple(q[i]), tuple(q[i + 1]), float(0.5 * (taper[i] + taper[i + 1])),
                     1, cv2.LINE_8, shift)
        patch = cv2.GaussianBlur(patch, (0, 0), max(sigma, 0.5))
        # normalise so the deepest point of the groove is `depth`
        patch *= depth / max(float(patch.max()), 1e-9)
        np.maximum(grooves[y0:y1, x0:x1], patch, out=grooves[y0:y1, x0:x1])
        seg = np.diff(pts, axis=0)
        out.append({
            "points": pts.round(2).tolist(),
            "length_mm": float(np.hypot(seg[:, 0], seg[:, 1]).sum() * grid.mm_per_px),
            "width_mm": float(width_mm),
            "angle_deg": float(angle),
            "depth": float(depth),
        })
    return grooves, out


def _pores(grid: Grid, p: SkinParams, rng: np.random.Generator):
    """Pores: Gaussian depressions (unit depth) at Poisson positions, radii in mm."""
    hh, ww = grid.world_shape
    area_cm2 = hh * ww * grid.mm_per_px ** 2 / 100.0
    n = rng.poisson(p.pore_density * area_cm2)
    xy = np.stack([rng.uniform(0, ww, n), rng.uniform(0, hh, n)], axis=1).astype(np.float32)
    r_mm = rng.uniform(*p.pore_radius_mm, n).astype(np.float32)
    depth = rng.uniform(0.6, 1.0, n).astype(np.float32)
    pores = np.zeros((hh, ww), np.float32)
    if n:
        edges = np.linspace(p.pore_radius_mm[0], p.pore_radius_mm[1], 4)
        which = np.clip(np.searchsorted(edges, r_mm, side="right") - 1, 0, 2)
        ix = np.clip(xy[:, 0].astype(int), 0, ww - 1)
        iy = np.clip(xy[:, 1].astype(int), 0, hh - 1)
        for b in range(3):
            sel = which == b
            if not sel.any():
                continue
            r_px = grid.px(0.5 * (edges[b] + edges[b + 1]))
            sigma = max(r_px / 1.1774, 0.5)         # radius = half-depth radius
            imp = np.zeros((hh, ww), np.float32)
            np.add.at(imp, (iy[sel], ix[sel]), depth[sel])
            k = int(4 * sigma) * 2 + 1
            pores += cv2.GaussianBlur(imp, (k, k), sigma) * np.float32(2 * np.pi * sigma ** 2)
        # pixel centres of the impulses are the exact pore centres
        xy = np.stack([ix, iy], axis=1).astype(np.float32)
    canon = xy - grid.margin
    return pores, canon, r_mm


def _spots(grid: Grid, p: SkinParams, rng: np.random.Generator, skin_d_mm: np.ndarray,
           exclude: list):
    """Brown (melanin) and red (haemoglobin) spots with irregular soft outlines."""
    hh, ww = grid.world_shape
    mel = np.zeros((hh, ww), np.float32)
    hb = np.zeros((hh, ww), np.float32)
    spots = []
    for kind, count, rr, cc in (("brown", p.brown_spots, p.brown_spot_radius_mm, p.brown_spot_contrast),
                                ("red", p.red_spots, p.red_spot_radius_mm, p.red_spot_contrast)):
        made, tries = 0, 0
        while made < count and tries < 200 * max(1, count):
            tries += 1
            r_mm = float(rng.uniform(*rr))
            R = grid.px(r_mm)
            if 2 * R + 10 >= min(grid.width, grid.height):
                continue
            cx = float(rng.uniform(R + 4, grid.width - R - 4))
            cy = float(rng.uniform(R + 4, grid.height - R - 4))
            u, v = int(round(cx + grid.margin)), int(round(cy + grid.margin))
            if skin_d_mm[v, u] < r_mm + 1.5:
                continue
            if any(math.hypot(cx - s["centre"][0], cy - s["centre"][1]) < R + s["radius_px"] + 4
                   for s in spots):
                continue
            if any(ex(cx, cy, R) for ex in exclude):
                continue
            contrast = float(rng.uniform(*cc))
            pad = int(1.6 * R) + 3
            x0, x1 = u - pad, u + pad + 1
            y0, y1 = v - pad, v + pad + 1
            yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            dx, dy = xx - grid.margin - cx, yy - grid.margin - cy
            r = np.hypot(dx, dy)
            th = np.arctan2(dy, dx)
            if kind == "brown":
                ph = rng.uniform(0, 2 * np.pi, 3)
                amp = rng.uniform(0.04, 0.12, 3)
                Rt = R * (1 + amp[0] * np.cos(2 * th + ph[0]) + amp[1] * np.cos(3 * th + ph[1])
                          + amp[2] * np.cos(5 * th + ph[2]))
                soft = float(rng.uniform(0.15, 0.35))
                prof = 1 - _smoothstep(1 - soft, 1 + soft, r / Rt)
                prof *= 1 + 0.12 * smooth_noise(rng, prof.shape, grid.px(0.25))   # mottled
                mel[y0:y1, x0:x1] += contrast * prof
            else:
                prof = np.exp(-0.5 * (r / (R / 1.1774)) ** 2 * 1.0)  # half-height at R
                prof = np.where(r < 1.6 * R, prof, 0.0)
                hb[y0:y1, x0:x1] += contrast * prof
            spots.append({"kind": kind, "centre": [cx, cy], "radius_mm": r_mm,
                          "radius_px": R, "contrast_od": contrast})
            made += 1
    return mel, hb, spots


def _background(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """A dark neutral cloth backdrop: woven threads, fuzz and soft folds (linear RGB).

    Computed at half resolution (the weave period is ~13 px) and upsampled.
    """
    hh, ww = grid.world_shape
    h2, w2 = (hh + 1) // 2, (ww + 1) // 2
    period = grid.px(0.9) / 2
    y, x = np.ogrid[0:h2, 0:w2]
    x = x.astype(np.float32)
    y = y.astype(np.float32)
    a = math.radians(rng.uniform(-20, 20))
    k = np.float32(2 * np.pi / period)
    u = (x * np.float32(math.cos(a)) + y * np.float32(math.sin(a))) * k
    v = (y * np.float32(math.cos(a)) - x * np.float32(math.sin(a))) * k
    su, cu, sv, cv = np.sin(u), np.cos(u), np.sin(v), np.cos(v)
    weave = 0.5 + 0.25 * np.sign(su) * cv + 0.25 * np.sign(sv) * cu
    weave = cv2.GaussianBlur(weave.astype(np.float32), (0, 0), 0.5)
    fuzz = smooth_noise(rng, (h2, w2), 0.8)
    folds = smooth_noise(rng, (h2, w2), grid.px(12.0) / 2)
    lum = np.float32(0.055) * (0.8 + 0.35 * weave) * (1 + 0.06 * fuzz) * (1 + 0.18 * folds)
    lum = cv2.resize(lum.astype(np.float32), (ww, hh), interpolation=cv2.INTER_LINEAR)
    tint = np.array([0.92, 1.0, 1.12], np.float32)
    return cv2.merge([lum * tint[0], lum * tint[1], lum * tint[2]])


_CACHE: dict = {}
_CACHE_SIZE = 1   # one skin at a time: ~190 MB at 1600x1200 (a series or a pair reuses it)


def build_fields(p: SkinParams, seed: int) -> SkinFields:
    """The random structure of skin `seed` under the identity part of `p`.

    The last skin built is cached (a series or a pair renders the same skin many
    times); `clear_cache` frees it.
    """
    key = (int(seed), p.identity_key())
    if key in _CACHE:
        _CACHE[key] = _CACHE.pop(key)          # most recent last
        return _CACHE[key]
    fields = _build_fields(p, int(seed))
    _CACHE[key] = fields
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    return fields


def clear_cache() -> None:
    """Free the cached skin fields."""
    _CACHE.clear()


def _noise_fields(grid: Grid, seed: int):
    """Tone mottling of melanin, haemoglobin and erythema (unit amplitudes), one stream."""
    r = make_rng(seed, 2)
    shape = grid.world_shape
    mel = 0.8 * smooth_noise(r, shape, grid.px(12.0)) + 0.6 * smooth_noise(r, shape, grid.px(2.5))
    hb = 0.8 * smooth_noise(r, shape, grid.px(6.0)) + 0.45 * smooth_noise(r, shape, grid.px(1.2))
    ery = 0.2 * smooth_noise(r, shape, grid.px(7.0)) + 0.8 * smooth_noise(r, shape, grid.px(1.5))
    return mel, hb, ery


def _outline(grid: Grid, p: SkinParams, seed: int):
    """Skin alpha, inside distance (mm), limb darkening and the card on top of the skin."""
    alpha, d_mm = _skin_shape(grid, p, make_rng(seed, 1))
    card = None
    if p.card:
        cw = p.card_width_mm or 0.25 * grid.width * grid.mm_per_px
        card = _card.render_card(grid, cw, grid.frac(*p.card_centre), p.card_angle_deg)
        # the card lies on top: no skin under it
        alpha = alpha * (1 - card.alpha)
        d_mm = np.minimum(d_mm, card.distance_mm)
        card.distance_mm = None           # only needed here: free it
    limb = (1 - 0.42 * np.exp(-np.maximum(d_mm, 0) / 5.0)).astype(np.float32)
    return alpha, d_mm, card, limb


def _treated(grid: Grid, p: SkinParams, alpha: np.ndarray) -> np.ndarray:
    """Soft ellipse of the erythema patch (1 inside, edge `edge_mm`), on skin only."""
    hh, ww = grid.world_shape
    cx, cy = grid.frac(*p.roi_centre)
    ax, ay = p.roi_axes[0] * grid.width, p.roi_axes[1] * grid.height
    y = ((np.arange(hh, dtype=np.float32) - np.float32(grid.margin + cy)) / np.float32(ay))[:, None]
    x = ((np.arange(ww, dtype=np.float32) - np.float32(grid.margin + cx)) / np.float32(ax))[None, :]
    rr = cv2.sqrt(x * x + y * y)
    d_ell_mm = (1 - rr) * np.float32(min(ax, ay) * grid.mm_per_px)
    e = edge_mm(grid, p) / 2
    return (_smoothstep(-e, e, d_ell_mm) * alpha).astype(np.float32)


def _build_fields(p: SkinParams, seed: int) -> SkinFields:
    """Every random component on its own stream, the independent ones on two threads
    (OpenCV and NumPy release the GIL on whole-image work); the result does not depend
    on the scheduling."""
    margin = int(round(0.08 * max(p.width, p.height)))
    grid = Grid(p.width, p.height, p.mm_per_px, margin)
    with ThreadPoolExecutor(max_workers=2) as pool:
        outline = pool.submit(_outline, grid, p, seed)
        relief = pool.submit(_relief, grid, p, make_rng(seed, 3))
        noise = pool.submit(_noise_fields, grid, seed)
        pores = pool.submit(_pores, grid, p, make_rng(seed, 5))
        bg = pool.submit(_background, grid, make_rng(seed, 7)) if p.background or p.card else None
        alpha, d_mm, card, limb = outline.result()
        excl = []
        if card is not None:
            excl.append(lambda x, y, R: card.near(x, y, R + grid.px(2)))
        spots = pool.submit(_spots, grid, p, make_rng(seed, 6), d_mm, excl)
        grooves, wrinkles = _wrinkles(grid, p, make_rng(seed, 4), d_mm)
        treated = _treated(grid, p, alpha)
        cx, cy = grid.frac(*p.roi_centre)
        axes = (p.roi_axes[0] * grid.width, p.roi_axes[1] * grid.height)
        pih_map, pih_patches = _pih(grid, p, make_rng(seed, 8), (cx, cy), axes, alpha)
        background = bg.result() if bg is not None else None
        if background is not None:  # soft shadow of the skin on the backdrop
            shadow = 1 - 0.55 * np.exp(-np.maximum(-d_mm, 0) / 4.0)
            background *= shadow[..., None].astype(np.float32)
        mel_noise, hb_noise, ery_noise = noise.result()
        spots_mel, spots_hb, spot_list = spots.result()
        pores_map, pore_xy, pore_r = pores.result()
        relief_map = relief.result()
    return SkinFields(grid=grid, params=p, seed=seed, mel_noise=mel_noise, hb_noise=hb_noise,
                      ery_noise=ery_noise, relief=relief_map, grooves=grooves, pores=pores_map,
                      spots_mel=spots_mel, spots_hb=spots_hb, skin_alpha=alpha, limb=limb,
                      treated=treated, pih_map=pih_map, pih_patches=pih_patches,
                      background_rgb=background, card=card, spots=spot_list,
                      wrinkles=wrinkles, pore_xy=pore_xy, pore_r_mm=pore_r, regions=_regions(grid, p))


def _pih(grid: Grid, p: SkinParams, rng: np.random.Generator, centre, axes, alpha):
    """Unit-contrast blotches of post-inflammatory hyperpigmentation in the treated ellipse."""
    if p.pih_patches <= 0:
        return None, []
    hh, ww = grid.world_shape
    out = np.zeros((hh, ww), np.float32)
    patches = []
    for _ in range(p.pih_patches):
        r_mm = float(rng.uniform(*p.pih_radius_mm))
        R = grid.px(r_mm)
        t, s = rng.uniform(0, 2 * np.pi), math.sqrt(rng.uniform(0, 1)) * 0.6
        cx = centre[0] + axes[0] * s * math.cos(t)
        cy = centre[1] + axes[1] * s * math.sin(t)
        pad = int(1.5 * R) + 3
        u, v = int(round(cx + grid.margin)), int(round(cy + grid.margin))
        x0, x1 = max(u - pad, 0), min(u + pad + 1, ww)
        y0, y1 = max(v - pad, 0), min(v + pad + 1, hh)
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = xx - grid.margin - cx, yy - grid.margin - cy
        th = np.arctan2(dy, dx)
        ph = rng.uniform(0, 2 * np.pi, 3)
        Rt = R * (1 + 0.15 * np.cos(2 * th + ph[0]) + 0.1 * np.cos(3 * th + ph[1])
                  + 0.06 * np.cos(5 * th + ph[2]))
        prof = 1 - _smoothstep(0.15, 1.3, np.hypot(dx, dy) / Rt)   # diffuse edge
        np.maximum(out[y0:y1, x0:x1], prof, out=out[y0:y1, x0:x1])
        patches.append({"centre": [cx, cy], "radius_mm": r_mm})
    out *= alpha
    return out, patches


def edge_mm(grid: Grid, p: SkinParams) -> float:
    """Width of the erythema edge actually used: `erythema_edge_mm`, but at most 40 % of
    the treated ellipse's smaller semi-axis (small fields of view)."""
    semi = min(p.roi_axes[0] * grid.width, p.roi_axes[1] * grid.height) * grid.mm_per_px
    return float(min(p.erythema_edge_mm, 0.4 * semi))


def _regions(grid: Grid, p: SkinParams) -> dict:
    """Analysis regions (canonical polygons): the uniformly treated ROI and reference skin."""
    cx, cy = grid.frac(*p.roi_centre)
    inset = grid.px(edge_mm(grid, p) / 2)
    ax = p.roi_axes[0] * grid.width - inset
    ay = p.roi_axes[1] * grid.height - inset
    rx, ry = grid.frac(*p.reference_centre)
    return {
        "roi": ellipse_polygon((cx, cy), (ax, ay)),
        "reference": ellipse_polygon((rx, ry), (p.reference_axes[0] * grid.width,
                                                p.reference_axes[1] * grid.height)),
        "treated": ellipse_polygon((cx, cy), (p.roi_axes[0] * grid.width, p.roi_axes[1] * grid.height)),
    }


# --------------------------------------------------------------------------- rendering

@dataclass
class SkinRender:
    """One state of a skin on the world canvas (noise-free reflectance)."""

    fields: SkinFields
    reflectance: np.ndarray      # world (H, W, 3) float32, linear reflectance
    melanin: np.ndarray          # world (H, W) float32, OD
    haemoglobin: np.ndarray      # world (H, W) float32, OD
    shading: np.ndarray          # world (H, W) float32
    marks: list


def _marks(f: SkinFields, p: SkinParams):
    """Pinpoint bleeding (or scabs) in the treated region: tiny dark-red dots."""
    grid = f.grid
    hh, ww = grid.world_shape
    rng = make_rng(f.seed, 1000 + int(p.marks_seed))
    cx, cy = grid.frac(*p.roi_centre)
    ax, ay = p.roi_axes[0] * grid.width, p.roi_axes[1] * grid.height
    area_cm2 = math.pi * ax * ay * grid.mm_per_px ** 2 / 100
    n = rng.poisson(p.bleeding * area_cm2) if p.bleeding > 0 else 0
    t = rng.uniform(0, 2 * np.pi, n)
    s = np.sqrt(rng.uniform(0, 1, n)) * 0.95
    x = cx + ax * s * np.cos(t)
    y = cy + ay * s * np.sin(t)
    r_mm = rng.uniform(0.07, 0.14, n)
    strength = rng.uniform(0.6, 1.0, n)
    ix = np.clip(np.round(x + grid.margin).astype(int), 0, ww - 1)
    iy = np.clip(np.round(y + grid.margin).astype(int), 0, hh - 1)
    keep = f.skin_alpha[iy, ix] > 0.99
    if p.scabs:
        keep &= rng.uniform(0, 1, n) < 0.6
    ix, iy, r_mm, strength = ix[keep], iy[keep], r_mm[keep], strength[keep]
    mel = hb = None
    if len(ix):
        sigma = max(grid.px(float(r_mm.mean())) / 1.1774, 0.6)
        imp = np.zeros((hh, ww), np.float32)
        np.add.at(imp, (iy, ix), strength.astype(np.float32))
        k = int(4 * sigma) * 2 + 1
        prof = cv2.GaussianBlur(imp, (k, k), sigma) * np.float32(2 * np.pi * sigma ** 2)
        if p.scabs:
            hb, mel = 1.1 * prof, 0.9 * prof
        else:
            hb, mel = 2.6 * prof, 0.15 * prof
    marks = [{"centre": [float(a - grid.margin), float(b - grid.margin)], "radius_mm": float(r)}
             for a, b, r in zip(ix, iy, r_mm, strict=True)]
    return mel, hb, marks


def _local_mean(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian local mean, computed at half resolution (smooth, so nothing is lost)."""
    h, w = img.shape
    small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / 2)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def render_fields(f: SkinFields, p: SkinParams) -> SkinRender:
    """Reflectance of skin `f` in state `p` (state fields of `p` only) on the world canvas."""
    m0 = np.float32(p.melanin_level)
    h0 = np.float32(p.haemoglobin)
    tv = np.float32(p.tone_variation)
    sc = np.float32(p.spot_contrast)
    # tone mottling: partly independent of the level, so dark skin is not blotchy
    c_mel = m0 + np.float32(0.03 + 0.045 * m0) * tv * f.mel_noise + sc * f.spots_mel
    if p.pih and f.pih_map is not None:
        c_mel += np.float32(p.pih) * f.pih_map
    if p.pore_depth:   # keratin/sebum in the pore opening: slightly brownish
        c_mel += np.float32(_PORE_MELANIN * p.pore_depth) * f.pores
    c_hb = h0 * (1 + np.float32(0.16) * tv * f.hb_noise) + sc * f.spots_hb
    if p.erythema:
        c_hb += np.float32(p.erythema) * f.treated * (1 + np.float32(p.erythema_mottle) * f.ery_noise)
    mel_m, hb_m, marks = _marks(f, p)
    if hb_m is not None:
        c_hb += hb_m
        c_mel += mel_m
    np.maximum(c_mel, 0, out=c_mel)
    np.maximum(c_hb, 0, out=c_hb)
    h = np.float32(p.roughness * _RELIEF_AMPLITUDE) * f.relief
    if p.wrinkle_depth:
        h -= np.float32(_WRINKLE_SCALE * p.wrinkle_depth) * f.grooves
    if p.pore_depth:
        h -= np.float32(_PORE_SCALE * p.pore_depth) * f.pores
    # lit slope (grad h . l) in one 3x3 pass, cavity term against a 0.6 mm local mean
    slope = cv2.filter2D(h, -1, _SLOPE_KERNEL, borderType=cv2.BORDER_REFLECT)
    local = _local_mean(h, f.grid.px(0.6))
    expo = np.float32(_K_DIRECTIONAL) * slope + np.float32(_K_CAVITY) * (h - local)
    if p.pore_depth:
        expo -= np.float32(_K_PORE * p.pore_depth) * f.pores
    if p.wrinkle_depth:   # grooves are shadowed, like pores
        expo -= np.float32(_K_GROOVE * p.wrinkle_depth) * f.grooves
    shade = cv2.exp(expo)
    # relief only redistributes light: unit mean shading, so tone levels (ITA) and the
    # mean colour do not depend on roughness
    shade *= np.float32(1.0 / float(shade[::3, ::3].mean()))
    shade *= f.limb
    chans = []
    for c in range(3):
        od = cv2.addWeighted(c_mel, float(-ABSORPTION_MELANIN[c]), c_hb, float(-ABSORPTION_HAEMOGLOBIN[c]),
                             float(-BASELINE_OD[c]))
        chans.append(cv2.multiply(cv2.exp(od), shade))
    refl = cv2.merge(chans)
    if f.background_rgb is not None:
        a = f.skin_alpha[..., None]
        refl *= a
        refl += f.background_rgb * (1 - a)
    if f.card is not None:
        f.card.composite(refl)
    np.clip(refl, 0.0, 1.0, out=refl)
    return SkinRender(fields=f, reflectance=refl, melanin=c_mel, haemoglobin=c_hb,
                      shading=shade, marks=marks)
