"""Visit-to-visit change: two photos, the same skin, every metric, and whether it is real.

``compare(before, after)`` aligns AFTER onto BEFORE (`photokit.registration.align`), decides which
skin to measure on BEFORE's grid (the ROI, else the automatic skin mask, always limited
to the part of BEFORE that AFTER covers), carries that region onto AFTER's own pixels
through the alignment, measures both photos there (`photokit.measurement.measure`) and reports, per
registered metric,

- ``delta = after - before``,
- ``percent_change = 100 * delta / |before|``,
- ``significant = |delta| > noise_floor``, the pair's minimal detectable change
  ``1.96 sqrt(se_b^2 + se_a^2)`` from each photo's standard error of the metric
  (`photokit.metrics.noise`: the features counted, the skin analysed, the calibration;
  Weir 2005). A change inside the noise is "no detectable change", whatever its
  percentage; a metric without a floor is "not judged" with the reason;
- ``holm``: the changes that stand when the family-wise error over all metrics of the
  pair is held at 5 % (Holm 1979), what the report's headline says changed.

AFTER is measured on its own pixels (not on a resampled copy), so interpolation does
not smooth its texture; its physical scale is BEFORE's scale carried through the
alignment (``mm_per_px_after = mm_per_px_before * sqrt(|det J|)``, ``J`` the Jacobian
of the AFTER -> BEFORE map at the centre of the region), so density metrics of both
visits use one ruler.

With a reference ROI (untreated skin in the same photo), BEFORE is normalised on its
reference skin and AFTER's reference skin (the same region, carried over) is
normalised to BEFORE's reference colour (``reference_target``), which cancels most of a
lighting change between visits.

References
----------
J. P. Weir, "Quantifying test-retest reliability using the intraclass correlation
coefficient and the SEM", J. Strength Cond. Res. 19(1), 231-240 (2005).
doi:10.1519/15184.1
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import PhotokitError
from ..imaging.filters import fit_within
from ..io.photo import Photo, load_all
from .sameskin import (
    analysed_mask,
    calibration_of,
    carried_mm_per_px,
    carried_scale,
    centroid,
    followed_skin,
    judge_pair,
    verdict,
    view_change,
)

#: Alignment confidence below which the comparison carries a warning.
LOW_CONFIDENCE = 0.6
#: Fraction of the ROI that must lie inside the overlap before a warning is given.
ROI_INSIDE_WARN = 0.98
#: Smallest fraction of the ROI inside the overlap that is still measured at all.
ROI_INSIDE_MIN = 0.25
#: Scale ratio between the visits beyond which the views are called different.
SCALE_RATIO_WARN = 1.5
#: Anisotropy of the AFTER -> BEFORE Jacobian (ratio of singular values) beyond which the
#: viewing angle differs (1.12 ~ a 27 degree turn of a plane).
ANISOTROPY_WARN = 1.12
#: In-plane rotation (degrees) beyond which the pose is called different.
ROTATION_WARN = 20.0
#: Overlap (fraction of BEFORE covered by AFTER) below which the views are called different.
OVERLAP_WARN = 0.5
#: Relative difference of measured skin area (in BEFORE pixels) that earns a warning.
AREA_MISMATCH_WARN = 0.2
#: Lighting differences (uncalibrated photos) that earn a warning: CIELAB L* and a*b*.
LIGHT_DL_WARN = 3.0
LIGHT_DAB_WARN = 2.0

#: Long side (px) of the grid the lighting check compares the photos on (medians of
#: tens of thousands of pixels: a finer grid changes them by far less than the warnings' limits).
LIGHT_SIDE = 400
#: Display size of report pictures.
VIEW_SIDE = 1000


@dataclass(eq=False)
class Comparison:
    """Two visits compared over the same skin.

    Attributes
    ----------
    alignment : Alignment
        AFTER onto BEFORE (status ``"ok"``; a failed alignment raises instead).
    before, after : Measurement
        Both photos measured over the same skin.
    delta : dict
        ``after - before`` per metric (None where either is missing).
    percent_change : dict
        ``100 * delta / |before|`` per metric (None where undefined).
    significant : dict
        ``|delta| > noise_floor`` per metric (None where either is None).
    noise_floor : dict
        The pair's minimal detectable change of each metric, in its unit,
        ``1.96 sqrt(se_b^2 + se_a^2)`` (SPEC "Noise floors per comparison").
    standard_error : dict
        ``{"before": {metric: se}, "after": {metric: se}}`` (`photokit.metrics.noise`).
    not_judged : dict
        metric -> why a measured change has no floor: a photo's own reason (too little
        skin, too few features; labelled BEFORE or AFTER) or the pair's (an uncalibrated
        light change, colour calibrated in one photo only, another resolution, another
        expression: `photokit.comparison.sameskin.judge_pair`).
    holm : dict
        metric -> whether its change stands under Holm's family-wise control over the
        pair's metrics (None: not tested).
    warnings : list of str
        Everything that limits how far the numbers can be trusted.
    notes : list of str
        The measurements' own remarks (scale source, calibration), once each.
    parameters : dict
        How the comparison was run (ROI files, scale, versions).
    """

    alignment: Any
    before: Any
    after: Any
    delta: dict
    percent_change: dict
    significant: dict
    noise_floor: dict
    warnings: list
    parameters: dict = field(default_factory=dict)
    metrics: list = field(default_factory=list, repr=False)
    before_photo: Photo | None = field(default=None, repr=False)
    after_photo: Photo | None = field(default=None, repr=False)
    mask_before: np.ndarray | None = field(default=None, repr=False)
    lighting: dict = field(default_factory=dict, repr=False)
    notes: list = field(default_factory=list)
    _aligned: np.ndarray | None = field(default=None, repr=False)
    standard_error: dict = field(default_factory=dict)
    not_judged: dict = field(default_factory=dict)
    holm: dict = field(default_factory=dict)
    _views: dict = field(default_factory=dict, repr=False)

    # -- results -----------------------------------------------------------------------
    def verdicts(self) -> dict:
        """Plain-language verdict per metric ("No detectable change", "Decreased (better)", ...)."""
        return {m.name: verdict(self.delta.get(m.name), self.noise_floor.get(m.name), m.better,
                                self.not_judged.get(m.name)).text for m in self.metrics}

    def to_dict(self) -> dict:
        """SPEC ``compare --json`` shape, plus ``noise_floor``, ``verdict``, ``warnings``."""
        return {
            "alignment": self.alignment.to_dict(),
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "delta": dict(self.delta),
            "percent_change": dict(self.percent_change),
            "significant": dict(self.significant),
            "noise_floor": dict(self.noise_floor),
            "standard_error": {k: dict(v) for k, v in self.standard_error.items()},
            "not_judged": dict(self.not_judged),
            "holm": dict(self.holm),
            "verdict": self.verdicts(),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "lighting": dict(self.lighting),
            "parameters": dict(self.parameters),
        }

    def to_frame(self):
        """One row per metric: unit, before, after, delta, percent_change, noise_floor, significant,
        verdict (pandas imported on use)."""
        import pandas as pd

        v = self.verdicts()
        rows = [{"metric": m.name, "unit": m.unit, "before": self.before.metrics.get(m.name),
                 "after": self.after.metrics.get(m.name), "delta": self.delta.get(m.name),
                 "percent_change": self.percent_change.get(m.name),
                 "noise_floor": self.noise_floor.get(m.name),
                 "significant": self.significant.get(m.name), "verdict": v[m.name]}
                for m in self.metrics]
        return pd.DataFrame(rows).set_index("metric")

    # -- pictures ------------------------------------------------------------------------
    @property
    def aligned_rgb(self) -> np.ndarray:
        """AFTER resampled onto BEFORE's full-resolution grid with the full alignment
        (`Alignment.warp`), made on first use: the numbers and the report's pictures do
        not need it (they resample AFTER onto their own smaller grids,
        `Alignment.warp_onto`)."""
        if self._aligned is None:
            self._aligned = self.alignment.warp(self.after_photo.rgb8())
        return self._aligned

    def view(self, *, max_side: int = VIEW_SIDE, hide_eyes: bool = False, notes=()):
        """Everything a report shows, as arrays on BEFORE's display grid
        (`photokit.report.compare_page.CompareView`)."""
        from ..report.compare_page import build_view

        key = (max_side, hide_eyes, tuple(notes))
        if key not in self._views:
            self._views[key] = build_view(self, max_side=max_side, hide_eyes=hide_eyes,
                                          notes=list(notes))
        return self._views[key]

    def report_html(self, *, hide_eyes: bool = False, notes=(), generated=None) -> str:
        """The self-contained HTML report as a string."""
        from ..report.compare_page import render_compare

        return render_compare(self.view(hide_eyes=hide_eyes, notes=notes), generated=generated)

    def write_report(self, path, *, hide_eyes: bool = False, notes=()) -> Path:
        """Write the self-contained HTML report to `path` atomically."""
        from ..io.atomic import write_text

        return write_text(path, self.report_html(hide_eyes=hide_eyes, notes=notes))

    def _repr_html_(self) -> str:
        from ..report.compare_page import render_compare_notebook

        return render_compare_notebook(self.view(max_side=640))


# ---------------------------------------------------------------------------------------
# the numbers


def lighting_difference(before_rgb8: np.ndarray, after_aligned_rgb8: np.ndarray, valid: np.ndarray,
                        roi: np.ndarray) -> dict:
    """How differently the two photos were lit, from the pixels both show.

    Compared on the overlap *outside* the measured region when there is enough of it
    (5 % of the frame; treatment changes the skin inside, not the room), else on the
    region itself (then only L* is meaningful). The medians of the surroundings are what
    a phone sets its exposure and white balance from; after a mesh alignment (the face
    followed, another distance) the room behind the head is not aligned pixel to pixel
    and its framing changed, so the figures mix the camera's rendering with what the
    frame shows. Measured on the face alone they would miss that rendering: on the real
    zoom re-captures the whites of the eyes moved from r/g 0.82 to 1.25 with the distance
    (docs/NOISE.md, "Distance and colour"), and from 30 to 45 cm the face's a* by +4.7,
    its median L* by -0.3. ``dL`` is the difference of median L*, ``dab`` the distance
    between the median a*b* (CIELAB D65, uncalibrated sRGB), ``gain`` the ratio of median
    linear luminance ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` (IEC 61966-2-1), AFTER over
    BEFORE.

    The photos are `before_rgb8` and AFTER on its grid, `after_aligned_rgb8`, both on one
    grid (BEFORE's, or a reduced one: `LIGHT_SIDE` px on the long side is plenty for
    medians; `compare` resamples AFTER there directly, `Alignment.warp_onto`); `valid`
    (what AFTER covers) and `roi` are on BEFORE's full-resolution grid.
    """
    from ..colour.convert import linear_to_lab, uint8_to_linear

    b, a = before_rgb8, after_aligned_rgb8
    v = cv2.resize(valid.astype(np.uint8), (b.shape[1], b.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    v = cv2.erode(v.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    r = cv2.resize(roi.astype(np.uint8), (b.shape[1], b.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    outside = v & ~cv2.dilate(r.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    where = "outside the region"
    if outside.mean() < 0.05:
        outside, where = v & r, "the region"
    if outside.sum() < 50:
        return {"dL": None, "dab": None, "gain": None, "where": where}
    lin_b, lin_a = uint8_to_linear(b), uint8_to_linear(a)
    lb = linear_to_lab(lin_b)[outside]
    la = linear_to_lab(lin_a)[outside]
    mb, ma = np.median(lb, axis=0), np.median(la, axis=0)
    y = np.array([0.2126, 0.7152, 0.0722], np.float32)
    gain = float(np.median(lin_a[outside] @ y) / max(1e-6, float(np.median(lin_b[outside] @ y))))
    dab = float(np.hypot(ma[1] - mb[1], ma[2] - mb[2])) if where != "the region" else None
    return {"dL": round(float(ma[0] - mb[0]), 2), "dab": None if dab is None else round(dab, 2),
            "gain": round(gain, 4), "where": where}


def _calibrated(m) -> bool:
    return calibration_of(m).get("method", "none") not in (None, "none")


def _quality(m):
    return getattr(m, "quality", None)


def assess_warnings(alignment, before, after, *, roi_inside: float, view: dict, lighting: dict,
                    area_ratio: float | None, mdc_a: float, mdc_mi: float) -> list[str]:
    """The warnings that matter to a clinician reading the comparison.

    Lighting (uncalibrated photos only) is flagged when the exposure gain alone would move
    the melanin index by more than its noise floor `mdc_mi`, when L* differs by more than
    `LIGHT_DL_WARN`, or when the colour of the light moves a*b* by more than
    ``max(LIGHT_DAB_WARN, mdc_a)``.
    """
    out: list[str] = []
    for label, m in (("BEFORE", before), ("AFTER", after)):
        q = _quality(m)
        if q is not None and not q.ok:
            fails = [p for p in q.problems if " fail " in f" {p} "]
            out.append(f"{label} photo failed capture-quality checks: {'; '.join(fails) or 'see quality'}")
    if not (_calibrated(before) and _calibrated(after)):
        dl, dab, gain = lighting.get("dL"), lighting.get("dab"), lighting.get("gain")
        bad = []
        # an exposure gain g alone moves the melanin index by -100 log10(g) (MI = 100 log10 1/R)
        mi_shift = None if not gain else -100.0 * math.log10(gain)
        if (mi_shift is not None and abs(mi_shift) > mdc_mi) or (dl is not None and abs(dl) > LIGHT_DL_WARN):
            if mi_shift is not None:
                bad.append(f"exposure differs by {100 * (gain - 1):+.0f} % ({dl:+.1f} L*), which alone "
                           f"moves the melanin index by {mi_shift:+.1f}")
            else:
                bad.append(f"brightness differs by {dl:+.1f} L*")
        if dab is not None and dab > max(LIGHT_DAB_WARN, mdc_a):
            bad.append(f"colour of the light differs by {dab:.1f} a*b*")
        if bad:
            out.append("Lighting differs between the photos (" + "; ".join(bad)
                       + f"; measured {lighting['where']}) and colour is not calibrated (no colour "
                       "card, no reference skin): colour changes may come from the light, not "
                       "the skin. Use --reference-roi or a colour card.")
    if alignment.confidence < LOW_CONFIDENCE:
        out.append(f"Alignment confidence is low ({alignment.confidence:.2f}): the same pixel may "
                   "not be the same skin in both photos.")
    # what the faces' meshes say (an expression change, zones hidden in one photo)
    out += [w[:1].upper() + w[1:] + "." for w in getattr(alignment, "warnings", None) or []]
    if roi_inside < ROI_INSIDE_WARN:
        out.append(f"Only {roi_inside:.0%} of the region lies in the part of BEFORE that AFTER shows; "
                   "both photos were measured over that part only.")
    reasons = []
    if view.get("scale") and not (1 / SCALE_RATIO_WARN <= view["scale"] <= SCALE_RATIO_WARN):
        reasons.append(f"distance or zoom differs (x{view['scale']:.2f} in scale)")
    if view.get("anisotropy", 1.0) > ANISOTROPY_WARN:
        reasons.append(f"viewing angle differs (foreshortening {view['anisotropy']:.2f})")
    if abs(view.get("rotation_deg", 0.0)) > ROTATION_WARN:
        reasons.append(f"head or camera rotated by {view['rotation_deg']:.0f} degrees")
    if alignment.overlap < OVERLAP_WARN:
        reasons.append(f"AFTER covers only {alignment.overlap:.0%} of BEFORE")
    if reasons:
        out.append("The photos show a different view: " + "; ".join(reasons)
                   + ". Texture, pores and spot measures depend on the view.")
    if area_ratio is not None and abs(area_ratio - 1) > AREA_MISMATCH_WARN:
        out.append(f"The measured skin area differs between the photos (AFTER/BEFORE = {area_ratio:.2f} "
                   "after alignment): part of the region is hidden or not skin in one of them, "
                   "or a different area was photographed.")
    return out


def measurement_notes(before, after) -> list[str]:
    """The two measurements' own remarks, once each: "Both photos: ..." when shared.

    Capture-quality remarks are left out (the report shows every check side by side, and
    a failed check is already a warning of the comparison), and so are the zones left
    blank (each measurement's ``zones`` says why).
    """
    def own(m) -> list[str]:   # per-zone details stay in each measurement's JSON
        return [w for w in getattr(m, "warnings", None) or []
                if not w.startswith(("capture quality", "zone "))]

    wb, wa = own(before), own(after)
    out = [f"Both photos: {w}" for w in wb if w in wa]
    out += [f"BEFORE: {w}" for w in wb if w not in wa]
    out += [f"AFTER: {w}" for w in wa if w not in wb]
    return out


# ---------------------------------------------------------------------------------------
# compare


def _read_roi(roi, shape) -> np.ndarray:
    from ..io.roi import read_roi

    return read_roi(roi, shape)


def _label(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    if isinstance(source, Photo):
        return source.name
    return "array mask" if isinstance(source, np.ndarray) and source.dtype == bool else "<array>"


def compare(before, after, *, roi=None, reference_roi=None, mm_per_px: float | None = None,
            calibration: str = "auto", metrics=None, max_pixels: int | None = None,
            alignment=None) -> Comparison:
    """Compare two visits over the same skin.

    Parameters
    ----------
    before, after : str, path, ndarray or Photo
        The earlier (baseline) and the later photo.
    roi : str, path or ndarray of bool, optional
        The skin to measure, in BEFORE's coordinates (mask PNG, polygon JSON or array).
        Default: the skin `measure` analyses in BEFORE on its own (its automatic, face-seeded skin mask).
    reference_roi : str, path or ndarray of bool, optional
        Untreated reference skin in BEFORE's coordinates, for colour normalisation.
    mm_per_px : float, optional
        BEFORE's physical scale; AFTER's follows through the alignment. Default: what
        `measure` finds in BEFORE (colour card, face) or unknown.
    calibration : str
        Passed to `measure` (``"auto"`` uses a colour card when one is found).
    metrics : list of str, optional
        Metric names to compute (default: all registered).
    max_pixels : int, optional
        Decompression-bomb limit passed to `load`.
    alignment : Alignment, optional
        A precomputed alignment of these two photos (skips `align`).

    Returns
    -------
    Comparison

    Raises
    ------
    PhotokitError
        When the alignment failed (with its reason) or the region is not in both photos.
    """
    from .. import metrics as registry
    from ..registration.align import align

    pb, pa = load_all((before, after), max_pixels=max_pixels)
    bshape = (pb.height, pb.width)
    roi_b = None if roi is None else _read_roi(roi, bshape)
    ref_b = None if reference_roi is None else _read_roi(reference_roi, bshape)
    if roi_b is not None and not roi_b.any():
        raise PhotokitError("the ROI is empty", roi if isinstance(roi, (str, os.PathLike)) else None)

    al = alignment if alignment is not None else align(pb, pa, roi=roi_b)
    if al.status != "ok":
        raise PhotokitError(f"cannot compare: alignment failed ({al.reason})", pa.path)
    # what AFTER covers, and AFTER on the lighting check's grid, do not depend on the skin
    # or the measurements: they are resampled on a second thread meanwhile
    pool = ThreadPoolExecutor(max_workers=1)
    covered = pool.submit(al.valid_mask)
    b_light, s_light = fit_within(pb.rgb8(), LIGHT_SIDE)
    a_light = pool.submit(al.warp_onto, pa.rgb8(), b_light.shape[:2], s_light, area=True)
    pool.shutdown(wait=False)

    # The skin to measure, on BEFORE's grid, inside the overlap.
    from ..measurement.measure import measure

    names = registry.chosen(metrics)
    whole, _, context = followed_skin(pb, roi=roi_b, reference=ref_b, mm_per_px=mm_per_px or pb.mm_per_px,
                                      calibration=calibration)
    valid = covered.result()
    region = whole & valid
    roi_inside = float(region.sum()) / max(1, int(whole.sum()))
    if roi_inside < ROI_INSIDE_MIN:
        raise PhotokitError(f"only {roi_inside:.0%} of the region to measure is visible in AFTER "
                            "after alignment: nothing comparable to measure", pa.path)
    ref_a = None
    if ref_b is not None:
        ref_b = ref_b & valid
        if not ref_b.any():
            raise PhotokitError("the reference ROI is not visible in AFTER after alignment", pa.path)
        ref_a = al.roi_to_after(ref_b)

    # per face zone too (SPEC: `<metric>.<zone>`), each photo's zones of its own mesh
    # within the followed skin
    m_b = measure(pb, roi=region, reference_roi=ref_b, mm_per_px=mm_per_px or pb.mm_per_px,
                  calibration=calibration, metrics=names, context=context,
                  zones="found")  # BEFORE analysed once
    # what BEFORE actually analysed (ROI x skin x validity), carried onto AFTER
    analysed_b = analysed_mask(m_b, bshape)
    if analysed_b is not None and analysed_b.any():
        region = analysed_b & valid
    region_a = al.roi_to_after(region)
    at_a = centroid(region_a)
    view = view_change(al.homography, at_a)
    mm_b = getattr(m_b, "mm_per_px", None)
    mm_a = carried_mm_per_px(al.homography, mm_b, None, at=at_a, alignment=al)
    m_a = measure(pa, roi=region_a, reference_roi=ref_a,
                  reference_target=getattr(m_b, "reference_rgb", None) if ref_b is not None else None,
                  mm_per_px=mm_a, calibration=calibration, metrics=names,
                  zones="found")
    if mm_a is not None:
        m_a.scale = carried_scale(m_b.scale, mm_a)

    mets = [m for m in registry.registered() if names is None or m.name in names]
    analysed_a = analysed_mask(m_a, (pa.height, pa.width))
    area_ratio = None
    if analysed_b is not None and analysed_a is not None and analysed_b.any():
        area_ratio = float(analysed_a.sum()) * view["scale"] ** 2 / float(region.sum())
    light = lighting_difference(b_light, a_light.result(), valid, region)
    # the lighting check judges the light's effect on a* and the melanin index against
    # their own noise floors
    warnings = assess_warnings(al, m_b, m_a, roi_inside=roi_inside, view=view, lighting=light,
                               area_ratio=area_ratio, mdc_a=registry.get("redness.a_mean").mdc,
                               mdc_mi=registry.get("pigment.mi_mean").mdc)
    from .._version import __version__

    params = {
        "before": _label(before), "after": _label(after),
        "roi": _label(roi) if roi is not None else "automatic skin mask",
        "reference_roi": _label(reference_roi) if reference_roi is not None else None,
        "mm_per_px_before": mm_b, "mm_per_px_after": mm_a,
        "scale_source": getattr(m_b, "scale_source", None),
        "calibration": calibration, "photokit": __version__,
        "view": {k: round(v, 4) for k, v in view.items()},
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    judged = judge_pair(mets, m_b, m_a, lighting=light, expression=getattr(al, "expression", None),
                        mm_per_px=(mm_b, mm_a))
    return Comparison(al, m_b, m_a, judged.delta, judged.percent_change, judged.significant,
                      judged.noise_floor, warnings, params, mets, pb, pa, region, light,
                      notes=measurement_notes(m_b, m_a),
                      standard_error={"before": m_b.standard_error, "after": m_a.standard_error},
                      not_judged=judged.not_judged, holm=judged.holm)


# ---------------------------------------------------------------------------------------
# pictures for the report
