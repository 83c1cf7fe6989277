"""Ground truth of a synthetic photo: what is in it, exactly, and where.

Every colour figure is computed on the noise-free, camera-free rendering (the linear
reflectance in the canonical frame, i.e. under canonical D65 illumination with unit gain):

- CIELAB D65 per pixel (`photokit.colour.convert.linear_to_lab`, CIE 15:2004), then averaged;
- erythema index ``EI = 100 log10(R / G)`` and melanin index ``MI = 100 log10(1 / R)`` on
  linear RGB per pixel, then averaged (Dawson et al. 1980; Diffey et al. 1984);
- ``ITA = atan2(L* - 50, b*)`` in degrees per pixel, then averaged (Chardon et al. 1991).

References
----------
J. B. Dawson et al., "A theoretical and experimental study of light absorption and
scattering by in vivo skin", Phys. Med. Biol. 25(4):695 (1980).
B. L. Diffey, R. J. Oliver, P. M. Farr, "A portable instrument for quantifying erythema
induced by ultraviolet radiation", Br. J. Dermatol. 111(6):663-672 (1984).
A. Chardon, I. Cretois, C. Hourseau, "Skin colour typology and suntanning pathways",
Int. J. Cosmet. Sci. 13(4):191-208 (1991).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..colour.convert import linear_to_lab

#: Units of the truth metrics (SPEC metric names), all over the ROI.
METRIC_UNITS = {
    "redness.a_mean": "CIELAB a*",
    "redness.ei_mean": "EI (100 log10 R/G)",
    "pigment.mi_mean": "MI (100 log10 1/R)",
    "pigment.ita_mean": "deg",
    "pigment.L_mean": "CIELAB L*",
    "pigment.b_mean": "CIELAB b*",
    "spots.count": "brown spots with centre in the ROI",
    "spots.area_pct": "% of ROI inside the nominal disc (radius_mm) of a brown spot",
    "texture.roughness": "L* RMS of the 0.2-2 mm band (texture.band_rq)",
    "texture.pore_density": "pores per cm^2 of ROI",
    "texture.wrinkle_density": "mm of line per cm^2 of ROI",
    "chromophores.melanin_mean": "OD along ABSORPTION_MELANIN",
    "chromophores.haemoglobin_mean": "OD along ABSORPTION_HAEMOGLOBIN",
}


class FrameMaps:
    """Per-pixel CIELAB, ITA, EI, MI (and chromophores) of a linear image, computed once."""

    def __init__(self, linear: np.ndarray, melanin: np.ndarray | None = None,
                 haemoglobin: np.ndarray | None = None):
        lin = np.ascontiguousarray(linear, dtype=np.float32)
        self.lab = linear_to_lab(lin)
        L, a, b = cv2.split(self.lab)
        ita = cv2.phase(b, L - np.float32(50), angleInDegrees=True)   # atan2(L-50, b) in [0, 360)
        ita[ita > 180] -= 360
        r, g, _ = cv2.split(np.maximum(lin, np.float32(1e-6)))
        k = np.float32(100 / np.log(10))
        log_r = cv2.log(r)
        self.maps = {"L_mean": L, "a_mean": a, "b_mean": b, "ita_mean": ita,
                     "ei_mean": k * (log_r - cv2.log(g)), "mi_mean": -k * log_r}
        if melanin is not None:
            self.maps["melanin_mean"] = np.ascontiguousarray(melanin, dtype=np.float32)
        if haemoglobin is not None:
            self.maps["haemoglobin_mean"] = np.ascontiguousarray(haemoglobin, dtype=np.float32)
        self.linear = lin

    def stats(self, mask: np.ndarray, mm_per_px: float | None = None) -> dict:
        m8 = np.ascontiguousarray(mask, dtype=np.uint8)
        n = int(cv2.countNonZero(m8))
        out = {"pixels": n}
        if mm_per_px:
            out["area_mm2"] = float(n * mm_per_px ** 2)
        if n == 0:
            return out
        for name, arr in self.maps.items():
            out[name] = float(cv2.mean(arr, m8)[0])
        out["linear_rgb_mean"] = [round(v, 6) for v in cv2.mean(self.linear, m8)[:3]]
        return out


def apply_homography(H: np.ndarray, pts) -> np.ndarray:
    """Map (N, 2) points through a 3x3 homography."""
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    q = np.c_[p, np.ones(len(p))] @ np.asarray(H, dtype=np.float64).T
    return q[:, :2] / q[:, 2:3]


def polygon_mask(poly: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise a polygon (pixel-centre convention) to a bool mask."""
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(poly) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return m.astype(bool)


@dataclass
class SynthTruth:
    """Everything known about one synthetic photo. JSON via `to_dict` / `save`.

    Coordinates are pixels ``(x, y)``, origin top-left, integer = pixel centre. Keys
    ending in ``_canonical`` are in the canonical (baseline) frame; the others in THIS
    photo's pixels.

    Attributes
    ----------
    homography : list
        3x3, maps THIS photo's pixels to the canonical frame, ``[xc, yc, 1] ~ H @ [x, y, 1]``
        (SPEC's AFTER -> BEFORE when the canonical frame is the baseline photo).
    regions : dict
        ``skin`` (``polygons`` / ``polygons_canonical``: its outline; the exact mask is
        `SynthImage.mask`), ``roi`` (uniformly treated skin),
        ``treated`` (the erythema ellipse), ``reference`` (untreated skin): each with
        ``polygon_canonical`` and ``polygon``.
    stats : dict
        Per region (``skin``, ``roi``, ``reference``): ``L_mean``, ``a_mean``, ``b_mean``,
        ``ita_mean``, ``ei_mean``, ``mi_mean``, ``melanin_mean``, ``haemoglobin_mean``,
        ``linear_rgb_mean``, ``pixels``, ``area_mm2``; on the canonical reflectance.
    metrics : dict
        SPEC metric names over the ROI (`METRIC_UNITS`).
    spots, wrinkles, marks : list of dict
        Spot ``kind`` (brown/red), ``centre`` and ``centre_canonical``, ``radius_mm``,
        ``contrast_od`` (chromophore OD added at the centre, after ``spot_contrast``),
        ``delta_L`` / ``delta_a`` (spot core minus the ring 2-3 radii out, canonical
        rendering), ``in_roi``. Wrinkles: ``points_canonical``, ``length_mm``,
        ``width_mm`` (FWHM), ``angle_deg``, ``depth``. Marks: pinpoint bleeding/scabs.
    pores, texture, erythema : dict
        Pore density (per cm^2) and radii (mm); relief parameters (relative to the
        seed's skin), ``band_rq`` (RMS of the 0.2-2 mm L* band, also
        ``metrics["texture.roughness"]``) and ``luminance_highpass_rms``; erythema dose
        (OD) and extent.
    pih : dict
        Post-inflammatory hyperpigmentation: ``dose_od`` and the blotches (centres,
        radii in mm); empty patches when there is none.
    camera : dict
        Pose, illumination (``channel_gains``, field formula), blur, noise, JPEG.
    card : dict or None
        ColorChecker corners/patch centres (both frames) and rendered patch reflectances.
    """

    seed: int
    width: int
    height: int
    mm_per_px: float
    homography: list
    regions: dict
    stats: dict
    metrics: dict
    spots: list
    wrinkles: list
    pores: dict
    texture: dict
    erythema: dict
    marks: dict
    camera: dict
    card: dict | None
    params: dict
    pih: dict = field(default_factory=dict)
    image: str | None = None
    date: str | None = None
    kind: str | None = None
    extra: dict = field(default_factory=dict)
    generator: str = "photokit.synth 1"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["metric_units"] = METRIC_UNITS
        d["conventions"] = {
            "homography": "[xc, yc, 1] ~ H @ [x, y, 1]: THIS photo's pixel -> canonical (baseline) pixel",
            "coordinates": "pixels (x, y), origin top-left, integer = pixel centre",
            "colour_truth": "noise-free, camera-free linear reflectance (canonical D65, unit gain)",
        }
        return d

    @property
    def H(self) -> np.ndarray:
        """The homography as a 3x3 float64 array (photo -> canonical)."""
        return np.asarray(self.homography, dtype=np.float64)

    def to_photo(self, pts) -> np.ndarray:
        """Canonical points -> this photo's pixels."""
        return apply_homography(np.linalg.inv(self.H), pts)

    def to_canonical(self, pts) -> np.ndarray:
        """This photo's pixels -> canonical points."""
        return apply_homography(self.H, pts)

    def save(self, path: str | os.PathLike) -> Path:
        from ..io.atomic import write_text

        return write_text(path, json.dumps(jsonable(self.to_dict()), indent=1, allow_nan=False))

    @classmethod
    def from_dict(cls, d: dict) -> SynthTruth:
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def load(cls, path: str | os.PathLike) -> SynthTruth:
        """Read a truth JSON written by `save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def jsonable(x):
    """`x` as JSON-ready Python (numpy arrays and scalars unwrapped, keys as strings)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x
