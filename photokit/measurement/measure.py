"""`measure`: every registered metric of one photo, over the skin that matters.

Pipeline: load -> capture quality -> linear RGB -> calibration (card / reference skin)
-> where to measure (ROI, else the automatic skin mask; never clipped or transparent
pixels, never the colour card) -> physical scale (user, card, face, else relative) ->
`Analysis` -> all metrics of the registry (`photokit.metrics.registry`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from .. import metrics as registry
from ..colour.calibration import Calibration, calibrate
from ..errors import PhotokitError
from ..faces.haar import detect_faces
from ..faces.skin import skin_mask
from ..imaging.filters import channel_max_within
from ..io.photo import Photo, load
from ..io.roi import read_roi
from ..metrics.analysis import Analysis
from ..metrics.scale import Scale, estimate_scale, relative_mm_per_px
from .quality import QualityReport, assess

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
        Per-face-zone colour values, ``"<metric>.<zone>"`` -> float (e.g.
        ``redness.a_mean.cheek_left``), when a face with both eyes was found and no ROI
        was given; zones with too little skin are left out. Serialised as ``zones``.
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
        units = {m.name: m.unit for m in registry.registered() if m.name in self.metrics}
        return {
            "image": self.image,
            "quality": self.quality.to_dict(),
            "calibration": self.calibration.to_dict(),
            "mm_per_px": self.mm_per_px,
            "scale": self.scale.to_dict(),
            "skin_pixels": None if self.analysis is None else self.analysis.skin_pixels,
            "metrics": dict(self.metrics),
            "units": units,
            "warnings": list(self.warnings),
            "zones": dict(self.zones),
        }

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
        from ..report import html as report

        rows = "".join(
            f"<tr><td>{report.escape(m.name)}</td><td>"
            f"{report.format_value(self.metrics.get(m.name), m.unit, mdc=m.mdc)}</td>"
            f"<td>{report.escape(report.pretty_unit(m.unit))}</td></tr>"
            for m in registry.registered() if m.name in self.metrics)
        pic = ""
        if self.photo is not None and self.photo.is_colour and self.analysis is not None:
            pic = report.img_tag(_outlined(self.photo.rgb8(), self.analysis.mask), "analysed skin",
                                 max_side=360)
        warn = "".join(f"<li>{report.escape(w)}</li>" for w in self.warnings)
        return (f"<div><b>{report.escape(self.image)}</b> &mdash; calibration "
                f"{report.escape(self.calibration.method)}, scale {report.escape(self.scale.source)}"
                f"<div style='display:flex;gap:1em'>{pic}<table>{rows}</table></div>"
                f"{'<ul>' + warn + '</ul>' if warn else ''}</div>")

    def save_maps(self, outdir) -> list:
        """Write the colour maps (a*, erythema, melanin index, analysed mask) as PNGs."""
        from ..report.maps import save_measurement_maps

        return save_measurement_maps(self, outdir)


def _outlined(rgb8: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import cv2

    out = rgb8.copy()
    m = mask.astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), max(2, rgb8.shape[1] // 400))
    return out


def _selected(names) -> list:
    allm = registry.registered()
    if names is None:
        return allm
    known = {m.name: m for m in allm}
    missing = [n for n in names if n not in known]
    if missing:
        raise PhotokitError(f"unknown metric(s): {', '.join(missing)}")
    return [known[n] for n in names]


def measure(image, *, roi=None, reference_roi=None, reference_target=None,
            mm_per_px: float | None = None, calibration: str = "auto", metrics=None,
            max_pixels: int | None = None) -> Measurement:
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

    Returns
    -------
    Measurement

    Raises
    ------
    PhotokitError
        Unreadable photo, greyscale photo (no colour to measure), no skin found, an ROI
        that does not fit the photo.
    """
    photo = load(image, max_pixels=max_pixels, mm_per_px=mm_per_px)
    chosen = _selected(metrics)
    if not photo.is_colour and any(m.needs_colour for m in chosen):
        raise PhotokitError("photo is greyscale: no colour to measure (redness and pigment "
                            "need an RGB photo)", photo.path)
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
    pool = ThreadPoolExecutor(max_workers=2)
    try:
        calibrated = pool.submit(calibrate, pixels, mode=calibration, reference_mask=ref_mask,
                                 reference_target=reference_target, path=photo.path)
        unusable = pool.submit(_unusable, rgb8, photo.alpha) if roi is not None else None
        gray = photo.gray8()
        faces = detect_faces(gray, mm_per_px=photo.mm_per_px)  # the user's scale bounds face size
        checked = pool.submit(assess, photo, gray=gray, faces=faces)
        if roi is not None:
            mask = read_roi(roi, shape)
            linear, cal = calibrated.result()
            bad = unusable.result()
            if cal.card is not None:
                bad |= cal.card.mask(shape)
            mask &= ~bad
            where = "the ROI"
        else:
            transparent = None if photo.alpha is None else ~photo.alpha
            mask = skin_mask(rgb8, faces=faces, exclude=transparent)
            linear, cal = calibrated.result()
            if cal.card is not None:
                off = cal.card.mask(shape)
                if transparent is not None:
                    off |= transparent
                mask = skin_mask(rgb8, faces=faces, exclude=off)
            where = "the photo"
        if ref_mask is not None and roi is None:
            mask &= ~ref_mask
        n = int(np.count_nonzero(mask))
        needed = MIN_ROI_PIXELS if roi is not None else max(MIN_SKIN_PIXELS, MIN_SKIN_FRACTION * mask.size)
        if n < needed:
            raise PhotokitError(f"no skin found in {where} ({n} usable skin pixels): nothing to measure",
                                photo.path)

        scale = estimate_scale(photo, user_mm_per_px=mm_per_px, faces=faces, card=cal.card)
        if not scale.known:
            scale = Scale(relative_mm_per_px(n), "relative", None,
                          "no physical scale known: sizes and densities are per relative unit "
                          "(the skin area taken as 100 x 100 units)")
            warnings.append("scale unknown: " + scale.note + "; give --mm-per-px to get millimetres")
        elif scale.is_estimate:
            warnings.append("scale estimated from the face: " + scale.note)
        if not cal.calibrated:
            warnings.append("colour uncalibrated: no colour card and no reference skin")
        if cal.extra.get("warning"):
            warnings.append("calibration: " + cal.extra["warning"])

        an = Analysis(linear, mask, scale.mm_per_px, scale_source=scale.source,
                      calibrated=cal.calibrated, name=photo.name)
        values = compute_metrics(an, chosen)
        warnings += registry.why_not_measured(an, values)
        # zones only on a face whose eyes were found: Haar also fires on plain skin
        # (a close-up's "face" has no eyes), and zones placed on it would be invented
        eyed = [f for f in faces if len(f.eyes) == 2]
        zones = zone_values(an, eyed[0], chosen) if (eyed and roi is None and photo.is_colour) else {}
        quality = checked.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    warnings = [f"capture quality: {p}" for p in quality.problems] + warnings
    return Measurement(photo.path or photo.name, quality, cal, scale, values, warnings, an, photo,
                       zones)


def _unusable(rgb8: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Pixels with no colour to measure: clipped in any channel, black, or transparent."""
    # unusable: max over channels <= 3 (every channel) or >= 254 (any channel)
    bad = channel_max_within(rgb8, 4, 253)
    cv2.bitwise_xor(bad, 1, dst=bad)
    bad = bad.view(bool)
    if alpha is not None:
        bad |= ~alpha
    return bad


def compute_metrics(an: Analysis, chosen) -> dict:
    """``name -> value`` (None when not computable or not finite) of metrics `chosen`,
    in their order.

    The metrics of each job (`photokit.metrics.registry.Metric.job`) run one after another, the
    jobs on two threads in the order of their start rank (`photokit.metrics.registry.job`; OpenCV
    and NumPy release the GIL on image-sized work); maps two jobs share are computed once
    (`Analysis.cached` is thread-safe).
    """
    def run(ms):
        out = {}
        for m in ms:
            v = m.compute(an)
            out[m.name] = None if v is None or not np.isfinite(v) else float(v)
        return out

    groups: dict[str, list] = {}
    for m in chosen:
        groups.setdefault(m.job, []).append(m)
    order = sorted(groups, key=registry.job_rank)
    values: dict = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for job in [pool.submit(run, groups[j]) for j in order]:
            values.update(job.result())
    return {m.name: values[m.name] for m in chosen}


#: Fewest analysed pixels (at the colour working level) for a zone to be reported.
MIN_ZONE_PIXELS = 200


def zone_values(an: Analysis, face, chosen) -> dict:
    """``"<metric>.<zone>"`` -> mean over each face zone (`photokit.faces.skin.face_zones`) of
    every metric of `chosen` that has a zone map (`photokit.metrics.registry.Metric.zone_map`).

    Computed on the colour working level (`photokit.metrics.redness.colour_level`) with the same
    maps as the whole-skin metrics, so a zone value and the whole value agree in method.
    """
    from ..faces.haar import Face
    from ..faces.skin import face_zones
    from ..metrics.redness import colour_level

    lv = colour_level(an)
    f = lv.shape[0] / an.shape[0]
    small = Face(tuple(int(round(v * f)) for v in face.box),
                 tuple((x * f, y * f) for x, y in face.eyes))
    zoned = [m for m in chosen if m.zone_map is not None]
    out = {}
    for zone, zmask in face_zones(lv.shape, small).items():
        m = zmask & lv.mask
        if np.count_nonzero(m) < MIN_ZONE_PIXELS:
            continue
        for met in zoned:
            out[f"{met.name}.{zone}"] = float(met.zone_map(an)[m].mean())
    return out
