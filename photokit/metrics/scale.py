"""Physical scale (mm per pixel): from the user, a colour card of known size, or the face.

Every texture, line, pore and spot parameter in photokit is in millimetres, so each
photo needs a scale. Four sources, in order of trust:

1. ``user``: given by the caller (``--mm-per-px``, ``load(..., mm_per_px=)``);
2. ``card``: a colour card of known physical size in the frame, whose corners the
   calibration step found: ``mm_per_px = sqrt((W_mm * H_mm) / area_px)`` of the
   card quadrilateral (perspective makes opposite sides differ; the spread of the four
   side ratios is the uncertainty);
3. ``iris``: the horizontal visible iris diameter of the face mesh's irises
   (`photokit.faces.mesh.face_scale`), taken as the adult 11.7 mm (Rüfer et al. 2005:
   11.71 +/- 0.42 mm): ``mm_per_px = 11.7 / d_px``, relative uncertainty
   ``sqrt((0.5 / 11.7)^2 + (s_d / d)^2 / 2)`` (population spread, the two eyes'
   disagreement), about 4-5 %;
4. ``face``: the inter-ocular distance, taken as the adult population mean of 63 mm
   (Dodgson 2004: mean interpupillary distance 63.4 mm, SD 3.8 mm), so
   ``mm_per_px = 63 / d_px``: from the mesh's iris centres (corrected for yaw, 5.6 %)
   when the iris cannot be used (an eye closed, |yaw| > 25 degrees, an iris under
   10 px: `Scale.reason` says which), or from Haar eye boxes (`scale_from_faces`, 8 %).
   Both are estimates, valid in the plane of the face.

When none is available the scale is ``unknown``: `Scale.mm_per_px` is None, and the
metric modules fall back to a *relative* unit (see `relative_mm_per_px`) and the
metrics that need millimetres are flagged through their ``needs_scale`` attribute.
Nothing is ever silently reported per raw pixel.

References
----------
N. A. Dodgson, "Variation and extrema of human interpupillary distance", Proc. SPIE
5291, Stereoscopic Displays and Virtual Reality Systems XI, 36-46 (2004).
doi:10.1117/12.529999
M. Rüfer, S. Schröder, J. Erb, "White-to-white corneal diameter: normal values in
healthy humans obtained with the Orbscan II topography system", Cornea 24(3):259-261
(2005). doi:10.1097/01.ico.0000148312.01805.53
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Adult population mean inter-ocular (interpupillary) distance, mm (Dodgson 2004).
INTEROCULAR_MM = 63.0
#: Relative SD of the inter-ocular distance in adults (3.8 / 63.4, Dodgson 2004).
INTEROCULAR_REL_SD = 0.06
#: Relative uncertainty added for the Haar eye detector's centre jitter (box centres).
EYE_DETECTOR_REL_SD = 0.05
#: Outline of the ColorChecker Classic card, mm (11 x 8.25 in; McCamy et al. 1976).
#: Passport, Mini and clones differ: pass the size of the card actually used.
COLORCHECKER_CLASSIC_MM = (279.4, 209.55)
#: Relative uncertainty floor of a card-derived scale (corner localisation).
CARD_REL_SD_FLOOR = 0.01

#: Side (in relative units) of the square whose area equals the analysed skin area,
#: when no physical scale is known. 100 makes one relative unit about 1 mm on a
#: typical full-face skin mask (about 100 cm^2), so millimetre filter settings stay
#: sensible; values are comparable only between photos of the same region.
RELATIVE_SIDE_UNITS = 100.0


@dataclass(frozen=True)
class Scale:
    """A physical scale and where it came from.

    Attributes
    ----------
    mm_per_px : float or None
        Millimetres per full-resolution pixel; None when unknown.
    source : str
        ``user``, ``card``, ``iris``, ``face`` (inter-ocular estimate), ``relative``
        (set by ``measure`` when none is known), ``unknown``, or ``carried`` (a later
        photo of ``compare`` or ``series`` measured at the first photo's scale carried
        through the alignment, `photokit.comparison.sameskin.carried_scale`).
    uncertainty : float or None
        Relative standard uncertainty (0.06 = 6%); 0 for a user value taken as exact,
        None when unknown.
    note : str
        How it was obtained, in words (for warnings and reports).
    reason : str
        Why a better face source was not used (``face`` from a mesh: why not the iris,
        e.g. ``eye closed (opening 0.08 < 0.12)``); empty otherwise.
    """

    mm_per_px: float | None
    source: str
    uncertainty: float | None = None
    note: str = ""
    reason: str = ""

    @property
    def known(self) -> bool:
        return self.mm_per_px is not None

    @property
    def is_estimate(self) -> bool:
        """Taken from the face (iris or inter-ocular distance), not measured on a ruler."""
        return self.source in ("iris", "face")

    def to_dict(self) -> dict:
        """``mm_per_px``, ``source``, ``uncertainty``, ``note``, and ``reason`` when there is one."""
        d = {"mm_per_px": self.mm_per_px, "source": self.source, "uncertainty": self.uncertainty,
             "note": self.note}
        if self.reason:
            d["reason"] = self.reason
        return d


def _valid_scale(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"mm_per_px must be a positive number, not {v!r}")
    return v


def scale_from_card(corners_px, size_mm: Sequence[float]) -> Scale:
    """Scale from the four corners of a card of known size.

    Parameters
    ----------
    corners_px : array-like, (4, 2)
        Corners ``(x, y)`` in full-resolution pixels, in order around the card
        (e.g. top-left, top-right, bottom-right, bottom-left).
    size_mm : (float, float)
        Physical width and height of the outline the corners trace (the longer image
        side pair is matched to the longer size), e.g. `COLORCHECKER_CLASSIC_MM`.

    Returns
    -------
    Scale
        ``mm_per_px = sqrt(W*H / A_px)`` with ``A_px`` the quadrilateral's area
        (shoelace formula); uncertainty = half the relative spread of the four
        per-side ratios (perspective, corner error), at least 1%.
    """
    c = np.asarray(corners_px, dtype=np.float64).reshape(4, 2)
    w_mm, h_mm = (float(s) for s in size_mm)
    if w_mm <= 0 or h_mm <= 0:
        raise ValueError(f"card size must be positive, got {size_mm}")
    x, y = c[:, 0], c[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    if not np.isfinite(area) or area < 1.0:
        return Scale(None, "unknown", None, "card corners enclose no area")
    # which physical side each image side is: match the longer pair to the longer size
    sides = np.linalg.norm(c - np.roll(c, -1, axis=0), axis=1)
    pair_a, pair_b = sides[[0, 2]], sides[[1, 3]]
    long_mm, short_mm = max(w_mm, h_mm), min(w_mm, h_mm)
    if pair_a.mean() >= pair_b.mean():
        ratios = np.concatenate([long_mm / pair_a, short_mm / pair_b])
    else:
        ratios = np.concatenate([short_mm / pair_a, long_mm / pair_b])
    mmpp = float(np.sqrt(w_mm * h_mm / area))
    unc = max(CARD_REL_SD_FLOOR, float((ratios.max() - ratios.min()) / (2 * ratios.mean())))
    return Scale(mmpp, "card", unc, f"card of {w_mm:g} x {h_mm:g} mm, {area:.0f} px^2")


def scale_from_mesh(faces) -> Scale:
    """Scale from the first (largest) meshed face: the iris, else the inter-ocular distance.

    Wraps `photokit.faces.mesh.face_scale` (formulas in the module notes): ``iris`` with
    its relative uncertainty, else ``face`` with the reason the iris was not used (an eye
    closed, strong yaw, an iris too small) in `Scale.reason`; ``unknown`` without a face.
    """
    from ..faces.mesh import face_scale

    fs = face_scale(faces)
    if fs.mm_per_px is None:
        return Scale(None, "unknown", None, fs.reason)
    if fs.source == "iris":
        d = np.mean([faces[0].iris_left.diameter_px, faces[0].iris_right.diameter_px])
        return Scale(fs.mm_per_px, "iris", fs.uncertainty,
                     f"iris diameter {d:.1f} px taken as 11.7 mm (adult white-to-white)")
    return Scale(fs.mm_per_px, "face", fs.uncertainty,
                 "inter-pupil distance taken as 63 mm (population mean): an estimate", fs.reason)


def scale_from_faces(faces) -> Scale:
    """Scale from the inter-ocular distance of the largest Haar face with both eyes found.

    ``mm_per_px = 63 mm / d_px`` (`INTEROCULAR_MM`); relative uncertainty
    ``sqrt(0.06^2 + 0.05^2)`` = 8% (population spread and eye-detector jitter).
    Returns an ``unknown`` scale when no face has two eyes.
    """
    for f in faces or ():
        d = getattr(f, "interocular_px", None)
        if d is not None and d > 4:
            unc = float(np.hypot(INTEROCULAR_REL_SD, EYE_DETECTOR_REL_SD))
            return Scale(INTEROCULAR_MM / d, "face", unc,
                         f"inter-ocular distance {d:.0f} px taken as {INTEROCULAR_MM:g} mm "
                         "(population mean): an estimate")
    return Scale(None, "unknown", None, "no face with both eyes detected")


def _card_corners(card, size_mm=None):
    """Corners and physical size from a card description (dict or object).

    Returns ``(corners, size)``; either is None when unknown. Cards come in several
    sizes (Classic, Passport, Mini, clones), so a card without a stated size gives no
    scale rather than a guessed one.
    """
    if card is None:
        return None, None
    get = card.get if isinstance(card, dict) else (lambda k, d=None: getattr(card, k, d))
    corners = None
    for key in ("corners", "corners_px", "card_corners"):
        corners = get(key, None)
        if corners is not None:
            break
    size = size_mm if size_mm is not None else get("size_mm", None)
    return corners, size


def estimate_scale(photo=None, *, user_mm_per_px: float | None = None, faces=None, card=None,
                   card_size_mm: tuple[float, float] | None = None,
                   detect_faces: bool = True) -> Scale:
    """The best available scale of a photo: user, then card, then iris, then face, else unknown.

    Parameters
    ----------
    photo : Photo, ndarray, path or None
        The photo (used for its own ``mm_per_px`` and, when `faces` is None and
        `detect_faces` is true, to find faces with `photokit.faces.mesh.find_faces`).
    user_mm_per_px : float, optional
        A scale given by the user; wins over everything else.
    faces : list of `photokit.faces.mesh.FaceMesh` or of `photokit.faces.haar.Face`, optional
        Faces already found (saves a detection). Meshed faces give ``iris`` or ``face``
        (`scale_from_mesh`); Haar faces only ``face`` (`scale_from_faces`).
    card : dict or object, optional
        A colour card found in the frame: ``corners`` (4 x 2, full-resolution pixels,
        around the card) and ``size_mm`` (width, height of the outline the corners trace),
        or the size given as `card_size_mm`. Without a size the card gives no scale
        (cards come in several sizes: a guess could be off several-fold).
    card_size_mm : (float, float), optional
        Physical size of the card's outline, e.g. `COLORCHECKER_CLASSIC_MM`.
    detect_faces : bool
        Detect faces when none are given and no better source exists.

    Returns
    -------
    Scale
    """
    v = _valid_scale(user_mm_per_px)
    if v is None and photo is not None and getattr(photo, "mm_per_px", None) is not None:
        v = _valid_scale(photo.mm_per_px)
    if v is not None:
        return Scale(v, "user", 0.0, "given by the user")
    corners, size = _card_corners(card, card_size_mm)
    if corners is not None and size is not None:
        s = scale_from_card(corners, size)
        if s.known:
            return s
    if faces is None and detect_faces and photo is not None:
        from ..faces.search import face_pass
        from ..io.photo import load

        faces = face_pass(load(photo)).meshes
    if faces:
        s = scale_from_mesh(faces) if hasattr(faces[0], "iris_left") else scale_from_faces(faces)
        if s.known:
            return s
    return Scale(None, "unknown", None,
                 "no scale known: give --mm-per-px, or put a colour card or a frontal face in frame")


def relative_mm_per_px(skin_pixels: int) -> float:
    """Pseudo scale used when none is known: the skin area becomes 100 x 100 units.

    ``u_per_px = RELATIVE_SIDE_UNITS / sqrt(skin_pixels)``. Metrics computed with it are
    per relative unit (about a millimetre on a full face) and are flagged by the caller
    (``scale_source`` ``relative``); they compare between photos of the same region only.
    """
    if skin_pixels <= 0:
        raise ValueError("no skin pixels to define a relative scale on")
    return RELATIVE_SIDE_UNITS / float(np.sqrt(skin_pixels))
