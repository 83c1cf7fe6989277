"""`measure`: every registered metric of one photo, over the skin that matters.

Pipeline: load -> one face pass per photo (`photokit.faces.search.face_pass`) -> capture quality
(exposure judged on the face) -> linear RGB -> calibration (card / reference skin) ->
where to measure (ROI, else the automatic skin mask: the mesh zones and the neck for a
face, `photokit.faces.skin.face_skin_mask`; without one, the colour mask of
`photokit.faces.skin.skin_mask`; never clipped or transparent pixels, never the colour
card) -> physical scale (user, card, iris, face, else relative) -> `Analysis` -> all
metrics of the registry (`photokit.metrics.registry`) -> per face zone, every zone-able
metric (`zone_values`).

Without a meshed face (a forearm, a close-up of a cheek) the Haar cascade's faces
(`photokit.faces.haar.detect_faces`) seed the colour mask and place the exposure window
as before the mesh existed, so face-less photos measure as they did; they give no scale
(a Haar "face" on a close-up is skin texture) and no zones.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from .. import metrics as registry
from ..colour.calibration import Calibration, calibrate, neutral_chroma
from ..errors import PhotokitError
from ..faces.mesh import draw_overlay, person_probability
from ..faces.search import face_pass
from ..faces.skin import face_skin_mask, skin_mask, working_copy, working_grid
from ..imaging.filters import channel_max_within
from ..io.photo import REDUCTIONS, Photo, load, probe
from ..io.roi import read_roi
from ..metrics.analysis import Analysis
from ..metrics.noise import standard_errors
from ..metrics.redness import colour_level
from ..metrics.scale import Scale, estimate_scale, relative_mm_per_px
from .quality import QualityReport, assess, card_cast_check, resolution_check

#: Fewest pixels worth measuring in a user ROI, and (automatic mask) in a photo, also as
#: a fraction of the photo: fewer means the skin mask found no real skin.
MIN_ROI_PIXELS = 500
MIN_SKIN_PIXELS = 2000
MIN_SKIN_FRACTION = 0.002


@dataclass
class Measurement:
    """All metrics of one photo, with how they were obtained.

    Attributes
    ----------
    image : str
        File name (or ``<array>``).
    quality : QualityReport
    calibration : Calibration
    scale : Scale
        Physical scale actually used (``source`` ``relative`` when none was known).
    metrics : dict
        Metric name -> value (None where a metric cannot be computed on this photo).
    warnings : list of str
    analysis : Analysis
        The working set (calibrated linear RGB, mask, maps); not serialised.
    photo : Photo
        The loaded photo; not serialised.
    zones : dict
        Per face zone (SPEC names), when a face was found and no ROI was given:
        ``{"visible": share facing the camera, "skin_pixels": analysed pixels,
        "area_mm2": or None, "reason": why its values are blank, or None}``. The values
        themselves are in `metrics` as ``"<metric>.<zone>"`` (see `zone_values`).
    faces : list
        The meshed faces (`photokit.faces.mesh.FaceMesh`), largest first; not serialised.
    context : PhotoContext
        Faces, quality and calibration, for a second measurement of this photo.
    standard_error : dict
        Metric name -> standard error on this photo in its unit
        (`photokit.metrics.noise.standard_errors`; None without a value).
    not_judged : dict
        Metric name -> why a measured metric has no standard error.
    """

    image: str
    quality: QualityReport
    calibration: Calibration
    scale: Scale
    metrics: dict
    warnings: list = field(default_factory=list)
    analysis: Analysis | None = field(default=None, repr=False)
    photo: Photo | None = field(default=None, repr=False)
    zones: dict = field(default_factory=dict)
    faces: list = field(default_factory=list, repr=False)
    context: PhotoContext | None = field(default=None, repr=False)
    standard_error: dict = field(default_factory=dict)
    not_judged: dict = field(default_factory=dict)

    @property
    def mm_per_px(self) -> float | None:
        """The known physical scale (None when only a relative scale was used)."""
        return self.scale.mm_per_px if self.scale.source != "relative" else None

    @property
    def scale_source(self) -> str:
        return self.scale.source

    @property
    def reference_rgb(self) -> np.ndarray | None:
        """Mean linear RGB of the reference skin (target for later visits)."""
        return self.calibration.reference_rgb

    @property
    def mask(self) -> np.ndarray | None:
        """The analysed pixels (full resolution)."""
        return None if self.analysis is None else self.analysis.mask

    def to_dict(self) -> dict:
        units = {k: m.unit for m in registry.registered() for k in self.metrics
                 if k == m.name or (k.startswith(m.name + ".") and k[len(m.name) + 1:] in self.zones)}
        return {
            "image": self.image,
            "quality": self.quality.to_dict(),
            "calibration": self.calibration.to_dict(),
            "mm_per_px": self.mm_per_px,
            "scale": self.scale.to_dict(),
            "skin_pixels": None if self.analysis is None else self.analysis.skin_pixels,
            "metrics": dict(self.metrics),
            "standard_error": dict(self.standard_error),
            "not_judged": dict(self.not_judged),
            "units": units,
            "warnings": list(self.warnings),
            "zones": dict(self.zones),
            "decode": self.decode(),
        }

    def decode(self) -> dict:
        """How the photo was decoded: ``reduction`` (file pixels per analysed pixel along
        a side), the decoded ``width`` and ``height``; all pixel figures of the measurement
        (skin pixels, zones, features, masks) are in those decoded pixels."""
        if self.photo is None:
            return {"reduction": 1, "width": None, "height": None}
        return {"reduction": self.photo.reduction, "width": self.photo.width, "height": self.photo.height}

    def features(self) -> dict:
        """Every pore, spot and line the metrics counted (SPEC ``measure --features``), in
        the photo's decoded pixels (`decode`; full resolution whenever any of these
        families is measured): ``{"pores": [...], "spots": [...], "lines": [...]}``
        (empty lists where a family was not searched)."""
        from ..metrics.pores import pore_features
        from ..metrics.spots import spot_features
        from ..metrics.texture import line_features

        an = self.analysis
        if an is None:
            return {"pores": [], "spots": [], "lines": []}
        return {"pores": pore_features(an) or [], "spots": spot_features(an) or [],
                "lines": line_features(an) or []}

    def to_frame(self):
        """One row per metric: value, unit, noise floor (pandas)."""
        import pandas as pd

        rows = []
        for m in registry.registered():
            if m.name in self.metrics:
                rows.append({"metric": m.name, "value": self.metrics[m.name], "unit": m.unit,
                             "mdc": m.mdc, "description": m.description})
        return pd.DataFrame(rows).set_index("metric")

    def _repr_html_(self) -> str:
        from ..report.measure_page import notebook_html

        return notebook_html(self)

    def outlined(self) -> np.ndarray:
        """The photo (uint8 RGB) with the analysed skin outlined in white."""
        return _outlined(self.photo.rgb8(), self.analysis.mask)

    def overlay(self) -> np.ndarray:
        """The photo (uint8 RGB) with each face's mesh, irises and zones (hidden ones
        hatched; `photokit.faces.mesh.draw_overlay`) and the analysed skin outlined in white."""
        rgb8 = self.photo.rgb8()
        base = draw_overlay(rgb8, self.faces) if self.faces else rgb8
        return _outlined(base, self.analysis.mask)

    def save_maps(self, outdir) -> list:
        """Write the colour maps (a*, erythema, melanin index, analysed mask) as PNGs."""
        from ..report.maps import save_measurement_maps

        return save_measurement_maps(self, outdir)


def _outlined(rgb8: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = rgb8.copy()
    m = mask.astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), max(2, rgb8.shape[1] // 400))
    return out


def _selected(metrics) -> list:
    """The `Metric` objects of a choice (`photokit.metrics.registry.chosen`; all for None)."""
    names = registry.chosen(metrics)
    return registry.registered() if names is None else [registry.get(n) for n in names]


@dataclass(frozen=True, eq=False)
class PhotoContext:
    """What `measure` learns about a photo before it measures any skin: its faces, capture
    quality and colour calibration.

    ``measure(photo, ..., context=m.context)`` on the same photo, at the same scale and
    with the same calibration settings, reuses it instead of searching faces and colour
    card again (compare and series measure their first photo twice: once to find the
    skin to follow, once over that skin). A context that does not match is ignored.
    """

    pixels: np.ndarray
    mm_per_px: float | None
    faces: list
    haar: list
    quality: QualityReport
    linear: Any
    calibration: Calibration
    mode: str
    reference_mask: np.ndarray | None
    reference_target: tuple | None

    def fits(self, photo: Photo, mode: str, reference_mask, reference_target) -> bool:
        """Whether this context describes `photo` measured with these settings."""
        same_ref = (reference_mask is None and self.reference_mask is None) or (
            reference_mask is not None and self.reference_mask is not None
            and np.array_equal(reference_mask, self.reference_mask))
        return (self.pixels is photo.pixels and self.mm_per_px == photo.mm_per_px and self.mode == mode
                and same_ref and self.reference_target == _target(reference_target))


def _target(reference_target) -> tuple | None:
    return None if reference_target is None else tuple(float(v) for v in reference_target)


def decode_reduction(image, chosen, *, roi=None, reference_roi=None) -> int:
    """The decode reduction (`photokit.io.photo.REDUCTIONS`) a measurement of `image`
    with metrics `chosen` needs: the coarsest that keeps the long side at least every
    metric's `Metric.working_side`; 1 (full resolution) when any metric has none, for
    arrays and loaded photos, and with an ROI or reference ROI (drawn on the file's pixels).

    ``k = max{k in (1, 2, 4, 8) : ceil(S / k) >= max_m working_side(m)}``, S the long side.
    """
    sides = [m.working_side for m in chosen]
    if (not isinstance(image, (str, os.PathLike)) or not sides or None in sides
            or roi is not None or reference_roi is not None):
        return 1
    try:
        long_side = max(probe(image))
    except PhotokitError:
        return 1   # `load` says what is wrong with the file
    need = max(sides)
    return max(k for k in REDUCTIONS if k == 1 or -(-long_side // k) >= need)


def measure(image, *, roi=None, reference_roi=None, reference_target=None,
            mm_per_px: float | None = None, calibration: str = "auto", metrics=None,
            max_pixels: int | None = None, zones: bool | str | None = None,
            context: PhotoContext | None = None, resolution: str = "need") -> Measurement:
    """Measure every registered metric of a photo.

    Parameters
    ----------
    image : str, path, ndarray or Photo
        The photo (RGB).
    roi : path, ndarray of bool, optional
        Region to analyse (mask PNG, polygon JSON, or a boolean array the size of the
        photo). Default: the automatic skin mask.
    reference_roi : path or ndarray of bool, optional
        Untreated reference skin for colour normalisation.
    reference_target : array_like of 3 floats, optional
        Linear RGB the reference skin is normalised to (the BEFORE photo's
        `Measurement.reference_rgb`).
    mm_per_px : float, optional
        Physical scale; otherwise taken from a colour card or a face, else relative.
    calibration : {"auto", "checker", "none"}
        Colour-card use (see `photokit.colour.calibration.calibrate`).
    metrics : list of str, optional
        Only these metrics (default: all registered).
    max_pixels : int, optional
        Decompression-bomb limit for `load`.
    zones : bool, optional
        Per-zone values (`zone_values`): None (default) when a face is found and no ROI
        is given; True requires a face (else `PhotokitError` "no face found") and, with an
        ROI, gives each zone's part of it; ``"found"`` as True where this measurement's own
        face pass finds a face, and none (no error) where it does not; False none.
    context : PhotoContext, optional
        A previous measurement's `Measurement.context` of this photo: its faces, quality
        and calibration are reused when they fit (see `PhotoContext`).
    resolution : {"need", "full"}
        ``"need"`` (default): a file is decoded at the coarsest size the requested
        metrics need (`decode_reduction`; e.g. 1/2 of a 12 MP JPEG for colour metrics
        only, by DCT scaling); ``"full"``: always at full resolution. The JSON's
        ``decode`` says which.

    Returns
    -------
    Measurement

    Raises
    ------
    PhotokitError
        Unreadable photo, greyscale photo (no colour to measure), no skin found, an ROI
        that does not fit the photo, no face when `zones` is True.
    """
    if resolution not in ("need", "full"):
        raise ValueError(f"resolution must be 'need' or 'full', not {resolution!r}")
    chosen = _selected(metrics)
    reduce = 1 if resolution == "full" else decode_reduction(image, chosen, roi=roi,
                                                             reference_roi=reference_roi)
    photo = load(image, max_pixels=max_pixels, mm_per_px=mm_per_px, reduce=reduce)
    if mm_per_px is not None:
        mm_per_px = photo.mm_per_px   # of the decoded pixels
    if not photo.has_colour and any(m.needs_colour for m in chosen):
        raise PhotokitError("photo is greyscale: no colour to measure (redness and pigment "
                            "need an RGB photo)" if not photo.is_colour else
                            "photo has no colour: every pixel is grey (a black-and-white photo "
                            "saved as RGB?), so redness and pigment cannot be measured", photo.path)
    rgb8 = photo.rgb8()
    shape = rgb8.shape[:2]
    warnings: list[str] = []
    ref_mask = None if reference_roi is None else read_roi(reference_roi, shape)
    pixels = photo.pixels if photo.is_colour else rgb8
    # steps that do not wait for each other run on two more threads: colour calibration
    # (card search) and, for an ROI, the unusable-pixel map need no faces, and nothing
    # after the capture checks waits for them. The skin mask does not wait for the card
    # search: it leaves out clipped and black pixels itself, and is made again without
    # the card when one is found (its skin-toned patches must not inform the colour model)
    known = context if context is not None and context.fits(photo, calibration, ref_mask,
                                                            reference_target) else None
    pool = _pool()
    try:
        calibrated = (pool.submit(calibrate, pixels, mode=calibration, reference_mask=ref_mask,
                                  reference_target=reference_target, path=photo.path)
                      if known is None else _done((known.linear, known.calibration)))
        unusable = pool.submit(_unusable, rgb8, photo.alpha) if roi is not None else None
        # the skin mask's working copy needs no faces: made beside the face pass too
        transparent = None if photo.alpha is None else ~photo.alpha
        copy = pool.submit(working_copy, rgb8, transparent) if roi is None else None
        # one face pass per photo (`face_pass`): the mesh, which falls back to the Haar
        # faces and then to tiles; face-less photos keep the Haar faces the colour mask was
        # always seeded on (module notes); the user's scale bounds their size
        if known is None:
            found = face_pass(photo)
            faces, haar = found.meshes, found.haar
        else:
            faces, haar = known.faces, known.haar
        if zones is True and not faces:
            raise PhotokitError("no face found", photo.path)
        if roi is None and max(len(faces), len(haar)) > 1:
            # the subject is the largest face: a second person's skin (or a face on a
            # poster behind) pooled in moved a* by 1.4 on a photo of two (QA, 2026-12-08)
            n = max(len(faces), len(haar))
            faces, haar = faces[:1], sorted(haar, key=lambda f: -f.box[2] * f.box[3])[:1]
            warnings.append(f"{n} faces in the photo: only the largest is measured "
                            "(give --roi to measure another)")
        # the person segmentation (the neck step of a face's skin mask) runs beside the
        # mask's colour model
        person = (pool.submit(person_probability, rgb8, working_grid(shape)[1]).result
                  if roi is None and faces else None)
        # the checks make the photo's luma (`Photo.gray8`) on their thread unless the face
        # pass needed it (the Haar cascade: no meshed face)
        checked = (pool.submit(assess, photo, faces=faces or haar) if known is None
                   else _done(known.quality))
        if roi is not None:
            mask = read_roi(roi, shape)
            linear, cal = calibrated.result()
            bad = unusable.result()
            if cal.card is not None:
                bad |= cal.card.mask(shape)
            mask &= ~bad
            where = "the ROI"
        else:
            def auto_mask(off, made=None):
                if faces:
                    return face_skin_mask(rgb8, faces, exclude=off, copy=made, person=person)
                return skin_mask(rgb8, faces=haar, exclude=off, copy=made)

            mask = auto_mask(transparent, copy.result())
            linear, cal = calibrated.result()
            if cal.card is not None:
                off = cal.card.mask(shape)
                if transparent is not None:
                    off |= transparent
                mask = auto_mask(off)
            where = "the photo"
        if ref_mask is not None and roi is None:
            mask &= ~ref_mask
        n = int(np.count_nonzero(mask))
        needed = MIN_ROI_PIXELS if roi is not None else max(MIN_SKIN_PIXELS, MIN_SKIN_FRACTION * mask.size)
        if n < needed:
            hint = ("" if roi is not None or faces or haar else
                    "; no face found either (a face a few percent of the frame wide is too small "
                    "to find or to measure): give --roi to measure a region")
            raise PhotokitError(f"no skin found in {where} ({n} usable skin pixels): nothing to measure"
                                + hint, photo.path)

        scale = estimate_scale(photo, user_mm_per_px=mm_per_px, faces=faces, card=cal.card,
                               detect_faces=False)
        if not scale.known:
            scale = Scale(relative_mm_per_px(n), "relative", None,
                          "no physical scale known: sizes and densities are per relative unit "
                          "(the skin area taken as 100 x 100 units)")
            warnings.append("scale unknown: " + scale.note + "; give --mm-per-px to get millimetres")
        elif scale.source == "iris":
            warnings.append(f"scale from the iris: {scale.note} (+/- {100 * scale.uncertainty:.1f} %)")
        elif scale.source == "face":
            why = f"; iris not used: {scale.reason}" if scale.reason else ""
            warnings.append(f"scale estimated from the face: {scale.note} "
                            f"(+/- {100 * scale.uncertainty:.1f} %){why}")
        if not cal.calibrated:
            warnings.append("colour uncalibrated: no colour card and no reference skin")
        if cal.extra.get("warning"):
            warnings.append("calibration: " + cal.extra["warning"])

        an = Analysis(linear, mask, scale.mm_per_px, scale_source=scale.source,
                      calibrated=cal.calibrated, calibration_method=cal.method, name=photo.name)
        # where the face zones lie is found beside the metric jobs (it needs no metric)
        zoning = bool(faces) and zones is not False and (roi is None or zones in (True, "found"))
        layout = pool.submit(zone_layout, an, faces[0], chosen) if zoning else None
        # each job's zone runs follow its whole-skin run on its thread, beside the other
        # jobs, not after all of them (`zone_runs`)
        runs: list = []   # one `zone_runs` per job
        then = (lambda ms, whole: runs.append(zone_runs(layout.result(), ms, whole))) if zoning else None
        values, se, not_judged = compute_metrics(an, chosen, then=then)
        warnings += registry.why_not_measured(an, values)
        if bluer_than_red(an):
            warnings.append("the skin reads bluer than red, as no skin under daylight does: is this "
                            "a BGR array (OpenCV's channel order)? photokit takes RGB")
        info: dict = {}
        if zoning:
            restricted: dict = {}
            for run in runs:
                for zone, vals in run.items():
                    restricted.setdefault(zone, {}).update(vals)
            zoned, info = zone_values(an, faces[0], chosen, whole=values, layout=layout.result(),
                                      restricted=restricted)
            values.update(zoned)
            warnings += [f"zone {z} left blank: {d['reason']}" for z, d in info.items() if d["reason"]]
        quality = checked.result()
        chroma = None if cal.card is None else neutral_chroma(cal.card.patch_codes)
        if chroma is not None:   # a card in frame: the cast read on its greys, as `check` does
            quality.checks["colour_cast"] = card_cast_check(chroma)
        if scale.source != "relative":   # judged again at the scale found (iris, card), not only a given one
            res = quality.checks.get("resolution")
            if res is not None:
                quality.checks["resolution"] = resolution_check(int(res.value), scale.mm_per_px)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    warnings = [f"capture quality: {p}" for p in quality.problems] + warnings
    context = PhotoContext(photo.pixels, photo.mm_per_px, faces, haar, quality, linear, cal, calibration,
                           ref_mask, _target(reference_target))
    return Measurement(photo.path or photo.name, quality, cal, scale, values, warnings, an, photo,
                       info, faces, context, se, not_judged)


#: Threads `measure` runs its side steps and its metric jobs on (`set_threads`).
_THREADS = 2


def set_threads(n: int) -> None:
    """Run `measure`'s side steps (calibration, capture checks) and its metric jobs on
    `n` threads (default 2, one per core of a small machine); with 1, each runs in the
    calling thread when it is submitted (`Inline`), one after another. A batch worker that
    shares the cores with other workers sets 1: two workers each running two threads on
    two cores spent 1.5x the CPU per photo of one serial run (`benchmarks/bench_batch.py`),
    and a side thread of one thread beside the caller's still ran two threads at times."""
    global _THREADS
    _THREADS = max(1, int(n))


def _pool():
    """The executor of `measure`'s side steps and of `compute_many`: `_THREADS` threads,
    or `Inline` with one."""
    return ThreadPoolExecutor(max_workers=_THREADS) if _THREADS > 1 else Inline()


class Inline:
    """An executor that runs each function when it is submitted, in the calling thread:
    ``submit`` returns a finished future holding its value, and raises what the function
    raises (nothing is held back unseen, a batch's timeout alarm included): `measure` on
    one thread (`set_threads`)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return _done(fn(*args, **kwargs))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to stop."""

    def __enter__(self) -> Inline:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


def _done(value) -> Future:
    """A future that already holds `value` (a step a `PhotoContext` has done)."""
    f: Future = Future()
    f.set_result(value)
    return f


def _unusable(rgb8: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Pixels with no colour to measure: clipped in any channel, black, or transparent."""
    # unusable: max over channels <= 3 (every channel) or >= 254 (any channel)
    bad = channel_max_within(rgb8, 4, 253)
    cv2.bitwise_xor(bad, 1, dst=bad)
    bad = bad.view(bool)
    if alpha is not None:
        bad |= ~alpha
    return bad


def bluer_than_red(an: Analysis) -> bool:
    """Whether the analysed skin's mean linear blue exceeds its mean red (on the colour
    level): skin reflects red most under any daylight-like light (its a* and erythema
    index are positive), so this is a photo handed over in BGR order (``cv2.imread``) or
    under a strong blue light, whose colour numbers mean nothing."""
    lv = colour_level(an)
    if lv.skin_pixels < 20:
        return False
    r, _, b, _ = cv2.mean(lv.linear, mask=lv.mask.view(np.uint8))
    return b > r


def compute_metrics(an: Analysis, chosen, *, then=None) -> tuple[dict, dict, dict]:
    """``(values, se, why)`` of metrics `chosen` on one analysis (`compute_many` with
    errors): ``name -> value`` (None when not computable or not finite), in their order,
    their standard errors and why a measured metric has none
    (`photokit.metrics.noise.standard_errors`). `then` as in `compute_many`."""
    return compute_many([(an, chosen)], errors=True, then=then)[0]


def values_of(an: Analysis, ms) -> dict:
    """``name -> value`` of metrics `ms` on `an`, one after another (None when not
    computable or not finite)."""
    out = {}
    for m in ms:
        v = m.compute(an)
        out[m.name] = None if v is None or not np.isfinite(v) else float(v)
    return out


def compute_many(tasks, *, errors: bool = False, then=None) -> list:
    """The values (``name -> value``, None when not computable or not finite, in the
    metrics' order) of several ``(analysis, metrics)`` pairs (the zones of a face), on
    one pool.

    The metrics of each job (`photokit.metrics.registry.Metric.job`) run one after another
    on one analysis; the (analysis, job) tasks run on two threads, all analyses' jobs in
    the order of their start rank (`photokit.metrics.registry.job`: the longest first, so
    the two threads finish together; OpenCV and NumPy release the GIL on image-sized
    work); maps two jobs share are computed once (`Analysis.cached` is thread-safe).

    With `errors`, each job then gives its metrics' standard errors on their analysis
    (`photokit.metrics.noise.standard_errors`) on the same thread, side by side with the
    other jobs rather than after all of them, and each pair's result is
    ``(values, se, why)`` instead of ``values``. `then` (optional) is called on the job's
    thread after that, with the job's metrics and their values (``then(ms, values)``):
    `measure` runs the job's face zones there.
    """
    def run(an, ms):
        out = values_of(an, ms)
        done = out, (standard_errors(an, out, ms) if errors else ({}, {}))
        if then is not None:
            then(ms, out)
        return done

    work = []
    for i, (an, chosen) in enumerate(tasks):
        groups: dict[str, list] = {}
        for m in chosen:
            groups.setdefault(m.job, []).append(m)
        work += [(registry.job_rank(j), i, an, ms) for j, ms in groups.items()]
    work.sort(key=lambda t: (t[0], t[1]))
    values: list[dict] = [{} for _ in tasks]
    se: list[dict] = [{} for _ in tasks]
    why: list[dict] = [{} for _ in tasks]
    with _pool() as pool:
        for i, job in [(i, pool.submit(run, an, ms)) for _, i, an, ms in work]:
            out, (s, w) = job.result()
            values[i].update(out)
            se[i].update(s)
            why[i].update(w)
    out = []
    for i, (_, chosen) in enumerate(tasks):
        names = [m.name for m in chosen]
        vals = {n: values[i][n] for n in names}
        out.append((vals, {n: se[i][n] for n in names}, {n: why[i][n] for n in names if n in why[i]})
                   if errors else vals)
    return out


#: A zone is measured only when at least this share of its skin faces the camera
#: (`photokit.faces.mesh.FaceMesh.visible`): below it more than half of the zone is turned
#: away or foreshortened more than twofold, so its colour is seen at grazing angles
#: (darker, more specular) and its texture squashed; the face overlay hatches the same zones.
MIN_ZONE_VISIBLE = 0.5
#: ...and has at least this many analysed full-resolution pixels (a 20 x 20 patch: fewer
#: and a mean rests on a handful of colour-level pixels)...
MIN_ZONE_PIXELS = 400
#: ...and, with a physical scale, at least this skin area (1 cm^2; a spot or pore count
#: over less is mostly counting noise).
MIN_ZONE_MM2 = 100.0


@dataclass
class ZoneLayout:
    """Where a face's zones lie on a photo's analysis (`zone_layout`): what `zone_values`
    needs before any metric is known.

    Attributes
    ----------
    info : dict
        Per zone, as `zone_values` returns it.
    views : dict
        Zone -> view of the analysis on the zone's analysed skin
        (`photokit.metrics.analysis.Analysis.within`), for the measured zones (reason
        None), when a chosen metric is a ``restrict`` one.
    level_pixels : dict
        Zone -> ``(rows, cols)`` of its analysed pixels on the colour level, for the
        measured zones, when a chosen metric is a ``mean`` one.
    """

    info: dict
    views: dict
    level_pixels: dict


def zone_layout(an: Analysis, face, chosen) -> ZoneLayout:
    """The zones of `face` on `an` for the metrics `chosen` (see `ZoneLayout`; the
    parameters as `zone_values`): made by `measure` beside the metric jobs."""
    from ..metrics.redness import colour_level

    zoned = [m for m in chosen if m.zone != "none"]
    means = any(m.zone == "mean" for m in zoned)
    restricts = any(m.zone == "restrict" for m in zoned)
    h, w = an.shape
    lm = face.landmarks   # every zone lies within the landmarks' bounding box
    x0, y0 = (max(0, int(np.floor(v))) for v in lm[:, :2].min(0))
    x1, y1 = (min(lim, int(np.ceil(v)) + 1) for v, lim in zip(lm[:, :2].max(0), (w, h), strict=True))
    # each zone within its own bounding box (`FaceMesh.zone_windows`): it costs its area
    full = replace(face, landmarks=lm - np.array([x0, y0, 0.0])).zone_windows((y1 - y0, x1 - x0))
    lv = colour_level(an) if means else None
    if lv is not None:
        k = an.shape[1] / lv.shape[1]
        small = replace(face, landmarks=np.column_stack([(lm[:, :2] + 0.5) / k - 0.5, lm[:, 2] / k]))
        level_zones = small.zone_windows(lv.shape)
    mm2 = an.mm_per_px ** 2 if an.mm_per_px and an.scale_source != "relative" else None
    layout = ZoneLayout({}, {}, {})
    for zone, (zmask, r0, c0) in full.items():
        r0, c0 = r0 + y0, c0 + x0
        here = zmask & an.mask[r0:r0 + zmask.shape[0], c0:c0 + zmask.shape[1]]
        n = int(np.count_nonzero(here))
        area = None if mm2 is None else n * mm2
        vis = float(face.visible[zone])
        reason = None
        if vis < MIN_ZONE_VISIBLE:
            reason = f"hidden (visible {vis:.2f} < {MIN_ZONE_VISIBLE})"
        elif n < MIN_ZONE_PIXELS:
            reason = f"too small ({n} analysed pixels < {MIN_ZONE_PIXELS})"
        elif area is not None and area < MIN_ZONE_MM2:
            reason = f"too small ({area:.0f} mm^2 < {MIN_ZONE_MM2:g} mm^2)"
        layout.info[zone] = {"visible": round(vis, 3), "skin_pixels": n,
                             "area_mm2": None if area is None else round(area, 1), "reason": reason}
        if reason is None:
            if lv is not None:
                # the zone's level pixels found once, read from every map (the same
                # values, in the same order, as a boolean index of each map)
                lz, lr, lc = level_zones[zone]
                ys, xs = np.divmod(np.flatnonzero(lz & lv.mask[lr:lr + lz.shape[0], lc:lc + lz.shape[1]]),
                                   lz.shape[1])
                layout.level_pixels[zone] = (ys + lr, xs + lc)
            if restricts:
                layout.views[zone] = an.within(here, (r0, c0))
    return layout


def zone_runs(layout: ZoneLayout, ms, whole: dict) -> dict:
    """The ``restrict`` metrics of `ms` on each measured zone of `layout` (its views),
    one after another: ``zone -> {name: value}`` (`zone_values`' ``restricted``); a
    metric blank on the whole skin (`whole`: name -> value) is not run (blank in every
    zone)."""
    run = [m for m in ms if m.zone == "restrict" and whole.get(m.name) is not None]
    if not run:
        return {}
    return {zone: values_of(view, run) for zone, view in layout.views.items()}


def zone_values(an: Analysis, face, chosen, *, whole: dict | None = None,
                layout: ZoneLayout | None = None, restricted: dict | None = None) -> tuple[dict, dict]:
    """Every zone-able metric of `chosen` over each face zone of `face`.

    Parameters
    ----------
    an : Analysis
        The whole photo's analysis (its mask is the analysed skin).
    face : photokit.faces.mesh.FaceMesh
        The face whose zones (mesh triangles, SPEC names) are measured.
    chosen : list of photokit.metrics.registry.Metric
        The metrics; each is reported per zone as its `Metric.zone` role says.
    whole : dict, optional
        The whole-skin values: a ``restrict`` metric blank on the whole skin (the photo too
        coarse for it, nothing to count) is blank in every zone, without re-running it.
    layout : ZoneLayout, optional
        `zone_layout` of these arguments, when made already.
    restricted : dict, optional
        ``zone -> {name: value}`` of the ``restrict`` metrics, when run already (`zone_runs`
        of each job of `chosen` with `layout`: `measure` runs them on each job's thread
        after its whole-skin run); metrics it lacks are blank in the zones.

    Returns
    -------
    values : dict
        ``"<metric>.<zone>"`` -> float or None, for every zone and zone-able metric.
    info : dict
        Per zone: ``visible``, ``skin_pixels`` (analysed full-resolution pixels of the
        zone), ``area_mm2`` (None without a physical scale) and ``reason`` (why its values
        are blank: hidden below `MIN_ZONE_VISIBLE`, fewer than `MIN_ZONE_PIXELS` pixels or
        less than `MIN_ZONE_MM2`; None when measured).

    Notes
    -----
    ``mean`` metrics average their colour-level map (`Metric.zone_map`, the same map as
    the whole-skin value) over the zone rasterised on that level:
    ``v_z = sum_{p in Z and S} map(p) / |Z and S|``. ``restrict`` metrics run their
    `Metric.compute` on a view of the whole analysis limited to the zone's analysed skin
    ``Z and S`` (`photokit.metrics.analysis.Analysis.within`): what the whole skin's run
    found (pores, spots, lines, the texture band) is narrowed to the zone, not searched
    again, so a zone's pore count is the number of the face's pores inside it; all
    zones' runs share one pool (`compute_many`).
    """
    zoned = [m for m in chosen if m.zone != "none"]
    mean_ms = [m for m in zoned if m.zone == "mean"]
    restrict_ms = [m for m in zoned if m.zone == "restrict"
                   and (whole is None or whole.get(m.name) is not None)]
    layout = zone_layout(an, face, chosen) if layout is None else layout
    values: dict = {}
    views = []   # (zone, view of its skin): run together below
    for zone, zinfo in layout.info.items():
        out = dict.fromkeys((f"{m.name}.{zone}" for m in zoned), None)
        if zinfo["reason"] is None:
            if mean_ms:
                ys, xs = layout.level_pixels[zone]
                if ys.size:
                    for m in mean_ms:
                        out[f"{m.name}.{zone}"] = float(m.zone_map(an)[ys, xs].mean())
            if restrict_ms and restricted is None:
                views.append((zone, layout.views[zone]))
        values.update(out)
    if restricted is None:
        done = compute_many([(sub, restrict_ms) for _, sub in views])
        restricted = {zone: vals for (zone, _), vals in zip(views, done, strict=True)}
    for zone, vals in restricted.items():
        values.update({f"{k}.{zone}": v for k, v in vals.items()})
    return values, layout.info
