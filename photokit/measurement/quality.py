"""Capture quality: is this photo good enough to trust its numbers?

Five checks, each with its value, threshold and verdict (``pass``, ``warn``, ``fail``;
``n/a`` where a check cannot be assessed on this photo), so a clinician learns *why* a
photo is weak. ``ok`` is False when any check fails.

How the thresholds were chosen (``tests/test_quality.py`` degrades photos on purpose and
checks each verdict):

- **sharpness**: ratio of fine to medium detail, ``std(I - G1*I) / std(G1*I - G4*I)``
  on luma area-averaged to about 1024 px on the long side (``Gs`` = Gaussian of sigma s px). Natural
  images have near-1/f spectra, so the ratio is scene-independent: six real portraits
  measure 0.37-0.51; Gaussian blur of 1 px (at 1024 px) drops them to 0.19-0.22, 2 px to
  0.12-0.14. Pass >= 0.28, warn >= 0.18, else fail.
- **exposure**: % of pixels clipped in any channel (>= 250 of 255) and % crushed to black
  (luma <= 5), and the median luma, on the largest face (inside its mesh's outline
  for a `photokit.faces.mesh.FaceMesh`, the inscribed ellipse of a Haar box), else the
  whole frame. Up to 1% clipped passes (speculars), 5% fails;
  median luma outside 0.15-0.90 warns, outside 0.06-0.97 fails.
- **colour_cast**: chroma C* of the dominant near-neutral (a*, b*) cluster, found by
  iterative grey-pixel selection (Huo et al. 2006). Without a card, scene colour and
  illuminant cannot be told apart (warm interiors read as casts), so this check only
  warns (>= 6 C*; +-10% channel gains move real portraits by 8-12) and never fails: a
  colour card or reference-skin calibration removes a cast. ``n/a`` when under 2% of the
  photo is near-neutral (skin-only close-ups).
- **resolution**: the short side in pixels (and mm per pixel where known): fail below
  480 px, warn below 1000 px; warn when coarser than 0.25 mm/px.
- **noise**: Immerkaer's (1996) fast estimate of the noise standard deviation on luma,
  in 8-bit levels. Clean camera JPEGs measure 0.8-2.5, added Gaussian noise of 8 levels
  reads 6.4-8.5. Pass < 3.5, warn < 6, else fail.

References
----------
J. Immerkaer, "Fast noise variance estimation", Computer Vision and Image
Understanding 64(2), 300-302 (1996). doi:10.1006/cviu.1996.0060

J.-Y. Huo, Y.-L. Chang, J. Wang, X.-X. Wei, "Robust automatic white balance algorithm
using gray color points in images", IEEE Trans. Consumer Electronics 52(2), 541-546
(2006). doi:10.1109/TCE.2006.1649677
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..colour.convert import linear_to_lab, uint8_to_linear
from ..faces.haar import detect_faces
from ..faces.skin import face_outline
from ..imaging.filters import channel_max, gaussian, percentile_u8, shrink
from ..io.photo import Photo, load

_ANALYSIS_SIDE = 1024


@dataclass
class Check:
    """One capture-quality check."""

    value: float | None
    threshold: float
    verdict: str  # "pass" | "warn" | "fail" | "n/a"
    unit: str = ""
    note: str = ""

    def to_dict(self) -> dict:
        d = {"value": self.value, "threshold": self.threshold, "verdict": self.verdict}
        if self.unit:
            d["unit"] = self.unit
        if self.note:
            d["note"] = self.note
        return d


@dataclass
class QualityReport:
    """All checks of one photo; ``ok`` unless a check failed."""

    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.verdict != "fail" for c in self.checks.values())

    @property
    def problems(self) -> list[str]:
        """One phrase per check that did not pass (for warnings and reports)."""
        return [f"{name} {c.verdict} ({c.value if c.value is not None else '-'}"
                f"{' ' + c.unit if c.unit else ''}{'; ' + c.note if c.note else ''})"
                for name, c in self.checks.items() if c.verdict in ("warn", "fail")]

    def to_dict(self) -> dict:
        return {"ok": self.ok, "checks": {k: c.to_dict() for k, c in self.checks.items()}}


def _grade_high(value: float, pass_at: float, warn_at: float) -> str:
    """Verdict for a quantity where higher is better."""
    return "pass" if value >= pass_at else "warn" if value >= warn_at else "fail"


def _grade_low(value: float, pass_below: float, warn_below: float) -> str:
    """Verdict for a quantity where lower is better."""
    return "pass" if value < pass_below else "warn" if value < warn_below else "fail"


#: `_small` averages k x k blocks when that lands within this share of `_ANALYSIS_SIDE`
#: (the ratio depends on the analysed size: a 960 px copy of a 1080p frame reads 5 %
#: sharper than the 1024 px one).
BLOCK_SIDE_TOLERANCE = 0.03


def _small(img: np.ndarray) -> np.ndarray:
    """`img` reduced to about `_ANALYSIS_SIDE` px on the long side by ONE area average.

    The sharpness thresholds were set on one area resize (a cascade of two, such as an
    integer block average and then the rest, lowers the ratio by up to 14 %). When an
    integer factor k lands within `BLOCK_SIDE_TOLERANCE` of the side (4000 px: 1000 px;
    4032 px: 1008 px), the k x k block mean of the whole blocks is that one area average,
    on OpenCV's fast path (6.5 ms for 12 MP against 26 ms; sharpness +1.2 to +2.7 % on
    four 12 MP photos, sharp and blurred); otherwise one resize by the exact factor.
    """
    h, w = img.shape[:2]
    long = max(h, w)
    if long <= _ANALYSIS_SIDE:
        return img
    k = int(round(long / _ANALYSIS_SIDE))
    if k >= 2 and min(h, w) >= k and abs(long / k / _ANALYSIS_SIDE - 1) <= BLOCK_SIDE_TOLERANCE:
        # whole blocks only: sides that are multiples of k keep OpenCV on its fast path
        return cv2.resize(img[: h // k * k, : w // k * k], (w // k, h // k),
                          interpolation=cv2.INTER_AREA)
    s = _ANALYSIS_SIDE / long
    return cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)


def _exposure_copy(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The colour copy exposure and cast are judged on: `rgb` halved 2^k times (area
    average), k putting the long side nearest `_ANALYSIS_SIDE`; when that is no halving,
    `rgb` area-resized to `size` ``(w, h)`` (the sharpness luma's size)."""
    k = max(0, int(np.floor(np.log2(max(rgb.shape[:2]) / _ANALYSIS_SIDE) + 0.5)))
    if k:
        return shrink(rgb, (rgb.shape[1] >> k, rgb.shape[0] >> k))
    return shrink(rgb, size)


def sharpness_ratio(gray: np.ndarray) -> float:
    """Fine-to-medium detail ratio ``std(I - G1*I) / std(G1*I - G4*I)`` (see module notes)."""
    g = _small(gray).astype(np.float32)  # no-op resize when already small
    g1 = gaussian(g, 1.0)
    g4 = gaussian(g, 4.0)
    medium = float((g1 - g4).std())
    return float((g - g1).std() / medium) if medium > 1e-6 else 0.0


def noise_sigma_Immerkaer1996(gray: np.ndarray) -> float:
    """Noise standard deviation by Immerkaer's Laplacian-difference estimator.

    ``sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|`` with
    ``N = [[1,-2,1],[-2,4,-2],[1,-2,1]]``.
    """
    # N = v v^T with v = (1, -2, 1): a separable filter; on uint8 the result is an exact
    # integer (|I * N| <= 16 x 255), so int16 output halves the memory traffic. Blocks of
    # rows (each with its two neighbour rows) keep the filtered copy small.
    v = np.array([1, -2, 1], np.float32)
    g = gray if gray.dtype in (np.uint8, np.float32) else gray.astype(np.float32)
    depth = cv2.CV_16S if g.dtype == np.uint8 else cv2.CV_32F
    h, w = g.shape
    total = 0.0
    for y in range(1, h - 1, 256):
        block = g[y - 1: min(h, y + 257)]
        total += cv2.norm(cv2.sepFilter2D(block, depth, v, v)[1:-1, 1:-1], cv2.NORM_L1)
    return float(np.sqrt(np.pi / 2) * total / (6.0 * (h - 2) * (w - 2)))


def colour_cast(rgb8: np.ndarray, *, radius: float = 15.0, iterations: int = 6) -> float | None:
    """Chroma C* of the dominant near-neutral cluster, or None when there is none.

    Starting at (a*, b*) = (0, 0), the estimate moves to the mean (a*, b*) of pixels
    (L* 25-95) within `radius` of it, a few times (iterative grey-pixel selection after
    Huo et al. 2006), so that a cast that tints every neutral surface is followed.
    """
    step = max(1, int(np.ceil(np.sqrt(rgb8.shape[0] * rgb8.shape[1] / 50_000))))
    lab = linear_to_lab(uint8_to_linear(rgb8[::step, ::step]))  # a regular subsample is
    lum = lab[..., 0]                                           # plenty for a mean
    ab = lab[..., 1:][(lum > 25) & (lum < 95)]
    if len(ab) < 0.02 * lum.size:
        return None
    centre = np.zeros(2, np.float32)
    for _ in range(iterations):
        d = ab - centre
        near = np.einsum("ij,ij->i", d, d) < np.float32(radius * radius)
        if near.mean() < 0.02:
            return None
        centre = ab[near].mean(axis=0)
    return float(np.hypot(*centre))


def assess(photo: Photo, *, gray: np.ndarray | None = None, faces=None) -> QualityReport:
    """Run every capture-quality check on a photo.

    `gray` (the photo's ``gray8()``) and `faces` (`photokit.faces.mesh.find_faces` or
    `photokit.faces.haar.detect_faces` of it) may be passed when the caller has them
    already; without, the Haar cascade is run.
    """
    gray = photo.gray8() if gray is None else gray
    rep = QualityReport()

    # sharpness on one area average of the luma (`_small`), as its thresholds were set
    # (a resize by halvings first lowers the ratio by up to 14 %); the exposure and colour
    # statistics on a colour copy made by exact halvings (`_exposure_copy`: ~3 ms on 12 MP,
    # against ~22 ms for a resize to the luma's size), with its own luma
    luma_small = _small(gray)
    s = sharpness_ratio(luma_small)
    rep.checks["sharpness"] = Check(round(s, 3), 0.28, _grade_high(s, 0.28, 0.18))

    # Exposure is judged on the subject: the largest face when one is found (a dark suit
    # or a black backdrop is not an exposure fault), else the whole frame.
    if photo.is_colour:
        small_rgb = small = _exposure_copy(photo.rgb8(), (luma_small.shape[1], luma_small.shape[0]))
        luma = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    else:
        small_rgb, luma = None, luma_small
        small = cv2.cvtColor(luma_small, cv2.COLOR_GRAY2RGB)
    where = "whole frame"
    faces = detect_faces(gray, with_eyes=False) if faces is None else faces
    if faces:
        sc = small.shape[1] / photo.width
        if hasattr(faces[0], "landmarks"):   # a mesh: its outline is the face
            inside = face_outline(faces[0], luma.shape, sc)
        else:
            x, y, w, h = (int(round(v * sc)) for v in faces[0].box)
            # the inscribed ellipse, shrunk: the box corners are background and hair
            inside = np.zeros(luma.shape, np.uint8)
            cv2.ellipse(inside, (x + w // 2, y + h // 2 + h // 20), (int(w * 0.36), int(h * 0.45)),
                        0, 0, 360, 1, -1)
            inside = inside.astype(bool)
        if np.count_nonzero(inside) >= 400:
            small, luma, where = small[inside][:, None, :], luma[inside][:, None], "face"
    clipped = float(np.mean(channel_max(small) >= 250) * 100)
    crushed = float(np.mean(luma <= 5) * 100)
    median = percentile_u8(luma, 50) / 255.0
    rep.checks["highlights_clipped"] = Check(round(clipped, 2), 1.0, _grade_low(clipped, 1.0, 5.0),
                                             "%", f"on {where}")
    rep.checks["shadows_crushed"] = Check(round(crushed, 2), 1.0, _grade_low(crushed, 1.0, 5.0),
                                          "%", f"on {where}")
    dist = max(0.15 - median, median - 0.90, 0.0)
    verdict = "pass" if dist == 0 else "warn" if 0.06 <= median <= 0.97 else "fail"
    rep.checks["brightness"] = Check(round(median, 3), 0.15, verdict, "median luma 0-1",
                                     f"on {where}" if verdict == "pass" else
                                     f"too {'dark' if median < 0.15 else 'bright'} on {where}")

    if photo.is_colour:
        cast = colour_cast(small_rgb)
        if cast is None:
            rep.checks["colour_cast"] = Check(None, 6.0, "n/a", "C*",
                                              "too few near-neutral surfaces to judge")
        else:
            rep.checks["colour_cast"] = Check(round(cast, 2), 6.0, "pass" if cast < 6.0 else "warn",
                                              "C*", "" if cast < 6.0 else
                                              "neutral surfaces look tinted: calibrate colour")
    else:
        rep.checks["colour_cast"] = Check(None, 6.0, "n/a", "C*", "greyscale photo")

    rep.checks["resolution"] = resolution_check(min(photo.width, photo.height), photo.mm_per_px)

    n = noise_sigma_Immerkaer1996(gray)
    rep.checks["noise"] = Check(round(n, 2), 3.5, _grade_low(n, 3.5, 6.0), "8-bit levels")
    return rep


#: Millimetres per pixel beyond which pores and fine lines are not resolved.
COARSE_MM_PER_PX = 0.25


def resolution_check(short_side: int, mm_per_px: float | None) -> Check:
    """The resolution check: the short side (pass from 1000 px, fail under 480), and a
    warning when the photo's physical scale, where known, is coarser than
    `COARSE_MM_PER_PX` (``measure`` checks again with the scale it finds: the iris, a
    card)."""
    verdict, note = _grade_high(short_side, 1000, 480), ""
    if mm_per_px is not None and mm_per_px > COARSE_MM_PER_PX and verdict == "pass":
        verdict, note = "warn", f"{mm_per_px:.3f} mm/px is coarse for pores and fine lines"
    return Check(float(short_side), 1000.0, verdict, "px (short side)", note)


@dataclass
class CheckResult:
    """What ``photokit check`` reports for one photo."""

    image: str
    quality: QualityReport
    calibration: dict

    def to_dict(self) -> dict:
        return {"image": self.image, "quality": self.quality.to_dict(),
                "calibration": self.calibration}


def check(image, *, max_pixels: int | None = None) -> CheckResult:
    """Capture quality and colour-card calibration of one photo (path or array).

    Needs no skin in the photo. Raises `PhotokitError` for unreadable input.
    """
    from ..colour.calibration import describe_calibration

    photo = load(image, max_pixels=max_pixels)
    rep, cal = assess(photo), describe_calibration(photo)
    if cal.get("neutral_chroma") is not None:
        rep.checks["colour_cast"] = card_cast_check(cal["neutral_chroma"])
    return CheckResult(photo.path or photo.name, rep, cal)


def card_cast_check(chroma: float) -> Check:
    """The colour-cast check read on a colour card's greys (`photokit.colour.calibration.
    neutral_chroma`): a surface known to be neutral, which the photo's own grey search
    cannot find on skin; ``check`` and ``measure`` use it whenever a card is in frame."""
    return Check(round(chroma, 2), 6.0, "pass" if chroma < 6.0 else "warn", "C*",
                 "on the colour card's greys" if chroma < 6.0 else
                 "the colour card's greys look tinted: calibrate colour")
