"""Treatment series: a course of photos analysed as one timeline.

A series is a manifest (SPEC: ``photo,date,kind`` plus optional ``subject,area,roi,note``),
a folder of photos ordered by EXIF capture time, or a list of ``(photo, date, kind)``.
`Series` validates it completely before any pixel is decoded (every problem in one
message), aligns every photo into the baseline frame, measures the same skin in each,
fits the recovery of redness after each treatment (`photokit.series.recovery.fit_recovery`) and
follows the improvement of texture, pores, lines and spots at visits outside the acute
window (`photokit.series.recovery.trend`).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date as _date
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import PhotokitError
from ..io.photo import probe
from ..io.sources import csv_rows, image_files

KINDS = ("baseline", "treatment", "visit")
REQUIRED_COLUMNS = ("photo", "date", "kind")

#: Days after a treatment during which swelling and redness make texture, pores, lines and
#: spots unreadable (DOMAIN: near-normal in 2-7 days, up to ~12 after aggressive work).
ACUTE_DAYS = 14.0

#: Alignment confidence below which a chained alignment (through the previous visit) is
#: tried and kept when it is more confident.
CHAIN_BELOW = 0.6

MANIFEST_NAMES = ("manifest.csv", "series.csv")


@dataclass
class Entry:
    """One validated row of a series.

    Attributes
    ----------
    photo : str
        The photo as named in the manifest (file name relative to it), or a label.
    source : str or ndarray or Photo
        What `photokit.load` is given: the resolved path, or the array/Photo itself.
    date : datetime
        Capture date-time (naive; aware times are converted to UTC).
    kind : str
        ``baseline``, ``treatment`` or ``visit``.
    line : int or None
        Manifest line number (1 = header).
    """

    photo: str
    source: object
    date: datetime
    kind: str
    subject: str | None = None
    area: str | None = None
    roi: str | None = None
    note: str | None = None
    line: int | None = None
    date_only: bool = False

    @property
    def path(self) -> str | None:
        return self.source if isinstance(self.source, str) else getattr(self.source, "path", None)

    def iso_date(self) -> str:
        return self.date.date().isoformat() if self.date_only else self.date.isoformat()


# ----------------------------------------------------------------------------- parsing

def parse_date(value) -> tuple[datetime, bool]:
    """Parse an ISO 8601 date or date-time (or a date/datetime object).

    Returns the naive datetime (aware ones converted to UTC) and whether it was a date
    only. Raises ValueError for anything else.
    """
    if isinstance(value, datetime):
        dt, date_only = value, False
    elif isinstance(value, _date):
        dt, date_only = datetime(value.year, value.month, value.day), True
    else:
        text = str(value).strip()
        if not text:
            raise ValueError("empty date")
        if not re.match(r"^\d{4}-?\d{2}-?\d{2}", text):
            raise ValueError(f"{text!r} is not an ISO 8601 date (YYYY-MM-DD[THH:MM[:SS]])")
        try:
            dt = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ValueError(f"{text!r} is not a valid ISO 8601 date (YYYY-MM-DD[THH:MM[:SS]])") from None
        date_only = len(text) <= 10
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt, date_only


def _is_image_header(path: Path) -> str | None:
    """None when the file's header is an image's (`photokit.io.photo.probe`), else the
    cause, in `load`'s words."""
    if path.suffix.lower() in (".heic", ".heif"):
        return None  # decoded (or refused with a clear reason) by photokit.load
    try:
        probe(path)
    except PhotokitError as exc:
        return exc.cause
    return None


def _fail(problems: list[str], where, hint: str | None = None) -> None:
    if problems:
        n = len(problems)
        raise PhotokitError(f"{n} problem{'s' if n > 1 else ''} in the series: "
                            + "; ".join(problems) + (f" ({hint})" if hint else ""), where)


def _validate(entries: list[Entry], problems: list[str], *, check_files: bool = True) -> list[Entry]:
    """Whole-series checks (after each row was parsed); appends to `problems`."""
    def at(e):
        return f"line {e.line}" if e.line else repr(e.photo)

    seen: dict[str, Entry] = {}
    for e in entries:
        key = os.path.realpath(e.source) if isinstance(e.source, str) else None
        if key is None:
            continue
        if key in seen:
            problems.append(f"{at(e)}: duplicate photo {e.photo!r} (also {at(seen[key])})")
        else:
            seen[key] = e
            if check_files:
                p = Path(e.source)
                if not p.exists():
                    problems.append(f"{at(e)}: photo {e.photo!r} not found")
                elif p.is_dir():
                    problems.append(f"{at(e)}: photo {e.photo!r} is a directory")
                else:
                    cause = _is_image_header(p)
                    if cause:
                        problems.append(f"{at(e)}: photo {e.photo!r} is {cause}")
    baselines = [e for e in entries if e.kind == "baseline"]
    if not baselines:
        problems.append("no baseline: one row needs kind=baseline (the photo before any treatment)")
    elif len(baselines) > 1:
        problems.append("more than one baseline (" + ", ".join(at(e) for e in baselines)
                        + "): mark one as baseline and the others as visit")
    else:
        b = baselines[0]
        early = [e for e in entries if e is not b and e.date < b.date]
        if early:
            problems.append(f"{len(early)} photo(s) dated before the baseline ("
                            + ", ".join(at(e) for e in early[:5]) + ")")
        treated = [e for e in entries if e.kind == "treatment" and e.date < b.date]
        if treated:
            problems.append("a treatment before the baseline: the baseline must precede every treatment")
    for col in ("subject", "area"):
        vals = sorted({getattr(e, col) for e in entries if getattr(e, col)})
        if len(vals) > 1:
            problems.append(f"the series mixes {col}s ({', '.join(map(repr, vals))}): "
                            f"one series is one {col}; split the manifest")
    rois = sorted({e.roi for e in entries if e.roi})
    if len(rois) > 1:
        problems.append("rows give different ROIs: a series is measured over one region in "
                        "baseline coordinates; give it on the baseline row")
    elif rois and check_files and not Path(rois[0]).is_file():
        problems.append(f"ROI file {rois[0]!r} not found")
    order = sorted(range(len(entries)), key=lambda i: (entries[i].date, i))
    return [entries[i] for i in order]


def read_manifest(path, *, check_files: bool = True) -> list[Entry]:
    """Read and fully validate a series manifest CSV.

    Every problem (unreadable file, missing columns, missing or non-image photos,
    unparseable dates, unknown kinds, duplicates, no or several baselines, photos before
    the baseline, mixed subjects or areas, inconsistent ROIs) is collected, and one
    `PhotokitError` lists them all.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV; ``photo`` and ``roi`` paths are relative to its folder.
    check_files : bool
        Check that photos exist and have an image header (default True).

    Returns
    -------
    list of Entry
        Sorted by date (manifest order breaks ties).
    """
    path = Path(path)
    header, rows = csv_rows(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise PhotokitError(f"manifest header lacks column(s) {', '.join(missing)} "
                            f"(found {', '.join(header) or 'nothing'}; need photo,date,kind)", path)
    base = path.parent
    problems: list[str] = []
    entries: list[Entry] = []
    for lineno, rec in rows:
        where = f"line {lineno}"
        photo = rec.get("photo", "")
        ok = True
        if not photo:
            problems.append(f"{where}: empty photo")
            ok = False
        try:
            dt, date_only = parse_date(rec.get("date", ""))
        except ValueError as exc:
            problems.append(f"{where}: bad date: {exc}")
            ok = False
        kind = rec.get("kind", "").lower()
        if kind not in KINDS:
            problems.append(f"{where}: unknown kind {rec.get('kind', '')!r} "
                            "(use baseline, treatment or visit)")
            ok = False
        if not ok:
            # still check the file, so a row with a bad date and a missing photo says both
            if photo and check_files and not (base / photo).exists():
                problems.append(f"{where}: photo {photo!r} not found")
            continue
        roi = rec.get("roi") or None
        entries.append(Entry(photo=photo, source=str(base / photo), date=dt, kind=kind,
                             subject=rec.get("subject") or None, area=rec.get("area") or None,
                             roi=str(base / roi) if roi else None, note=rec.get("note") or None,
                             line=lineno, date_only=date_only))
    if not entries and not problems:
        problems.append("no photos listed")
    entries = _validate(entries, problems, check_files=check_files)
    _fail(problems, path)
    return entries


_KIND_WORDS = (("baseline", ("baseline", "before", "pre")),
               ("treatment", ("treatment", "treat", "session", "tx")))


def _kind_from_name(name: str) -> str | None:
    tokens = re.split(r"[^a-z]+", Path(name).stem.lower())
    for kind, words in _KIND_WORDS:
        if any(t in words or any(t.startswith(w) for w in words if len(w) > 3) for t in tokens if t):
            return kind
    return None


def capture_time(path) -> datetime | None:
    """EXIF capture time of a photo without decoding its pixels (Pillow header + EXIF)."""
    from PIL import Image

    from ..io.photo import parse_exif_time

    try:
        with Image.open(path) as im:
            return parse_exif_time(im.getexif())
    except Exception:
        return None


def read_folder(folder) -> list[Entry]:
    """A folder as a series: its manifest when it has one, else photos by EXIF time.

    Without a manifest, photos are ordered by EXIF ``DateTimeOriginal``; a file name
    containing ``baseline``/``before`` marks the baseline (else the earliest photo is
    it), and ``treatment``/``session``/``tx`` marks treatment photos; all others are
    visits. Photos without a capture time are listed in one error.
    """
    folder = Path(folder)
    for name in MANIFEST_NAMES:
        if (folder / name).is_file():
            return read_manifest(folder / name)
    files = [Path(p) for p in image_files(folder, recursive=False)]
    if not files:
        raise PhotokitError("no photos in the folder (and no manifest.csv)", folder)
    problems: list[str] = []
    entries = []
    for p in files:
        t = capture_time(p)
        if t is None:
            problems.append(f"{p.name!r} has no EXIF capture time")
            continue
        t, _ = parse_date(t)
        entries.append(Entry(photo=p.name, source=str(p), date=t,
                             kind=_kind_from_name(p.name) or "visit"))
    entries.sort(key=lambda e: e.date)
    if entries and not any(e.kind == "baseline" for e in entries):
        entries[0].kind = "baseline"
    entries = _validate(entries, problems)
    _fail(problems, folder, "write a manifest.csv (photo,date,kind) to give their dates")
    return entries


def entries_from_list(items: Iterable) -> list[Entry]:
    """Validate ``(photo, date, kind)`` tuples or dicts (photo: path, array or Photo)."""
    problems: list[str] = []
    entries = []
    for i, item in enumerate(items):
        rec = (dict(item) if isinstance(item, dict)
               else dict(zip(("photo", "date", "kind", "note"), item, strict=False)))
        where = f"item {i}"
        src = rec.get("photo")
        if isinstance(src, os.PathLike):
            src = os.fspath(src)
        label = Path(src).name if isinstance(src, str) else (getattr(src, "name", None) or f"photo{i}")
        if isinstance(src, str):
            label = src
        ok = src is not None
        if not ok:
            problems.append(f"{where}: no photo")
        try:
            dt, date_only = parse_date(rec.get("date", ""))
        except ValueError as exc:
            problems.append(f"{where}: bad date: {exc}")
            ok = False
        kind = str(rec.get("kind", "")).lower()
        if kind not in KINDS:
            problems.append(f"{where}: unknown kind {rec.get('kind')!r} (use baseline, treatment or visit)")
            ok = False
        if ok:
            entries.append(Entry(photo=label, source=src, date=dt, kind=kind,
                                 note=rec.get("note"), subject=rec.get("subject"),
                                 area=rec.get("area"), roi=rec.get("roi"), date_only=date_only))
    entries = _validate(entries, problems)
    _fail(problems, None)
    return entries


def read_series(source) -> list[Entry]:
    """Entries of a manifest path, a folder or a list (dispatch on the type)."""
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            return read_folder(p)
        if not p.exists():
            raise PhotokitError("no such manifest or folder", p)
        return read_manifest(p)
    if isinstance(source, (list, tuple)):
        return entries_from_list(source)
    raise PhotokitError(f"a series is a manifest path, a folder or a list, not a {type(source).__name__}")


def timeline(entries: list[Entry]) -> list[dict]:
    """Days since baseline, since the last treatment and the treatment index of each entry.

    ``days_since_treatment`` counts from the date-time of the latest ``treatment`` row at or
    before the photo (0 for the treatment photo itself), None before the first treatment.
    """
    base = next(e for e in entries if e.kind == "baseline")
    treatments = [e for e in entries if e.kind == "treatment"]
    out = []
    for e in entries:
        prior = [k for k, tr in enumerate(treatments) if tr.date <= e.date]
        k = prior[-1] if prior else None
        dst = None if k is None else (e.date - treatments[k].date).total_seconds() / 86400.0
        out.append({"days_since_baseline": (e.date - base.date).total_seconds() / 86400.0,
                    "days_since_treatment": dst, "treatment_index": k})
    return out


def _finite(x) -> float | None:
    return None if x is None or not isinstance(x, (int, float)) or not math.isfinite(x) else float(x)


# ----------------------------------------------------------------------------- analysis

#: A visit is followed for new pigment (post-inflammatory hyperpigmentation) from this
#: many days after a treatment (before, fresh erythema and pinpoint bleeding dominate).
PIH_MIN_DAYS = 7.0

#: Photos kept decoded between the alignment and the measurement passes while their total
#: stays under this many pixels; beyond it they are decoded again.
KEEP_PIXELS = 80_000_000

#: Long side of the visit thumbnails, pixels.
THUMB_SIDE = 360


@dataclass(eq=False)
class Visit:
    """One photo of the series after analysis.

    Attributes
    ----------
    entry : Entry
        The manifest row.
    days_since_baseline, days_since_treatment : float or None
        Days from the baseline; from the latest treatment at or before this photo.
    treatment_index : int or None
        Index of that treatment (0 = first session).
    status : str
        ``"ok"`` or ``"excluded"`` (alignment failed or the photo could not be read;
        `reason` says why). Excluded photos have no metrics and take no part in deltas,
        recovery fits or trends.
    method : str
        How it reached the baseline frame: ``"baseline"``, ``"direct"`` or ``"chained"``
        (through the photo named in `via`).
    alignment : photokit.registration.align.Alignment or None
        The alignment onto the baseline (the composed one when chained).
    metrics, delta, percent_change, significant : dict
        Values over the series region, and the change against baseline
        (``significant = |delta| > noise_floor``).
    standard_error : dict
        Each metric's standard error on this photo (`photokit.metrics.noise`).
    noise_floor : dict
        The change against baseline this visit can detect, ``1.96 sqrt(se_0^2 + se^2)``
        (SPEC "Noise floors per comparison"); None where either SE is missing or the pair
        leaves the change unjudged (`not_judged` says why).
    not_judged : dict
        metric -> why its change against baseline is not judged: this photo's or the
        baseline's own reason (no standard error), or the pair's (an uncalibrated light
        change, another resolution, another expression: `photokit.comparison.sameskin.judge_pair`);
        the baseline's own reasons on the baseline.
    holm : dict
        metric -> whether its change against baseline stands under Holm's control over
        this visit's judged changes (None: not tested).
    lighting : dict or None
        How differently this photo and the baseline were lit, outside the region
        (`photokit.comparison.compare.lighting_difference`).
    acute : bool
        Inside the acute window after a treatment (excluded from improvement trends).
    """

    entry: Entry
    days_since_baseline: float
    days_since_treatment: float | None
    treatment_index: int | None
    status: str = "ok"
    reason: str | None = None
    method: str = "direct"
    via: str | None = None
    alignment: object | None = None
    metrics: dict = field(default_factory=dict)
    delta: dict = field(default_factory=dict)
    percent_change: dict = field(default_factory=dict)
    significant: dict = field(default_factory=dict)
    standard_error: dict = field(default_factory=dict)
    noise_floor: dict = field(default_factory=dict)
    not_judged: dict = field(default_factory=dict)
    holm: dict = field(default_factory=dict)
    lighting: dict | None = None
    acute: bool = False
    warnings: list = field(default_factory=list)
    quality_ok: bool | None = None
    calibration: dict | None = None
    mm_per_px: float | None = None
    thumbnail: np.ndarray | None = field(default=None, repr=False)
    measurement: object | None = field(default=None, repr=False)

    @property
    def photo(self) -> str:
        return self.entry.photo

    @property
    def kind(self) -> str:
        return self.entry.kind

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def confidence(self) -> float | None:
        if self.kind == "baseline" and self.method == "baseline":
            return 1.0
        return None if self.alignment is None else float(self.alignment.confidence)

    def to_dict(self) -> dict:
        if self.method == "baseline":
            align = {"status": "ok", "reason": None, "homography": np.eye(3).tolist(),
                     "confidence": 1.0, "method": "baseline", "via": None}
        elif self.alignment is not None:
            align = dict(self.alignment.to_dict(), method=self.method, via=self.via)
        else:
            align = {"status": "failed", "reason": self.reason, "method": self.method, "via": None}
        r = _round_dict
        return {
            "photo": self.photo, "date": self.entry.iso_date(), "kind": self.kind,
            "note": self.entry.note, "status": self.status, "reason": self.reason,
            "days_since_baseline": round(self.days_since_baseline, 4),
            "days_since_treatment": (None if self.days_since_treatment is None
                                     else round(self.days_since_treatment, 4)),
            "treatment_index": self.treatment_index, "acute": self.acute,
            "alignment": align, "metrics": r(self.metrics), "delta": r(self.delta),
            "percent_change": r(self.percent_change), "significant": dict(self.significant),
            "noise_floor": r(self.noise_floor), "standard_error": r(self.standard_error),
            "not_judged": dict(self.not_judged), "holm": dict(self.holm), "lighting": self.lighting,
            "quality_ok": self.quality_ok, "calibration": self.calibration,
            "mm_per_px": self.mm_per_px, "warnings": list(self.warnings),
        }


def _round_dict(d: dict, nd: int = 5) -> dict:
    return {k: (None if v is None else round(float(v), nd) if isinstance(v, (int, float)) else v)
            for k, v in d.items()}


@dataclass(eq=False)
class RecoveryResult:
    """The recovery fit of one metric after one treatment (SPEC ``recovery`` entry)."""

    treatment_index: int
    treatment: Entry
    fit: object  # photokit.series.recovery.RecoveryFit
    photos: list

    @property
    def metric(self) -> str:
        return self.fit.metric

    def to_dict(self) -> dict:
        d = self.fit.to_dict()
        return {"treatment_date": self.treatment.iso_date(), "treatment_photo": self.treatment.photo,
                "treatment_index": self.treatment_index, "metric": d.pop("metric"),
                "tau_days": d.pop("tau_days"), "days_to_baseline": d.pop("days_to_baseline"),
                **d, "photos": list(self.photos)}


def _chain(first, second, direct=None):
    """Compose ``first`` (P -> baseline) with ``second`` (visit -> P): visit -> baseline.

    The composed alignment is global only (homographies multiply; the dense residual
    fields are not composed) and its confidence is the product of the two, the
    probability that both links are within tolerance if their errors are independent.
    What the faces say about the visit against the baseline (the expression, the
    warnings) is the ``direct`` alignment's when it has it (its meshes are those two
    photos' even when it failed), else the link's that says the expression changed.
    """
    from ..registration.align import Alignment, overlap_share

    h = first.homography @ second.homography
    h = h / h[2, 2]
    return Alignment("ok", None, h, float(first.confidence) * float(second.confidence),
                     int(min(first.inliers, second.inliers)),
                     None if first.residual_px is None or second.residual_px is None
                     else float(math.hypot(first.residual_px, second.residual_px)),
                     float(overlap_share(h, first.before_shape, second.after_shape)),
                     tuple(first.before_shape), tuple(second.after_shape),
                     model="homography", subject=first.subject,
                     tolerance_px=float(first.tolerance_px), **_faces_said(first, second, direct))


def same_moment(entries) -> list[str]:
    """A warning for each date-time that more than one photo of a series carries: two
    visits' photos given one time by mistake are fitted as one moment (two photos 3 days
    apart, both dated day 2, gave a recovery time of 1.3 days instead of 2: QA,
    2026-12-08), and photokit cannot tell a mistake from two photos of one sitting. Photos
    dated without a time are not compared (a baseline and a treatment photo of one day)."""
    by_time: dict = {}
    for e in entries:
        if not e.date_only:   # a date alone is no moment (before and after a session: one day)
            by_time.setdefault(e.date, []).append(e.photo)
    return [f"{', '.join(photos)} are dated the same moment ({when:%Y-%m-%d %H:%M}): measured as one "
            "time point (give each photo its own date and time if they were taken apart)"
            for when, photos in by_time.items() if len(photos) > 1]


def _faces_said(first, second, direct) -> dict:
    """``expression``, ``warnings`` and ``faces`` (baseline's, the visit's) for `_chain`
    (see there)."""
    if direct is not None and getattr(direct, "expression", None):
        return {"expression": direct.expression, "warnings": list(direct.warnings), "faces": direct.faces}
    said = [a for a in (second, first) if getattr(a, "expression", None)]
    changed = [a for a in said if a.expression.get("changed")]
    if not said:
        return {}
    pick = (changed or said)[0]
    faces = ((first.faces[0], second.faces[1]) if first.faces is not None and second.faces is not None
             else None)
    return {"expression": pick.expression, "warnings": list(dict.fromkeys(first.warnings + second.warnings)),
            "faces": faces}


def _crop_box(mask: np.ndarray | None, shape, pad: float = 0.08) -> tuple[int, int, int, int]:
    h, w = shape
    if mask is None or not mask.any():
        return 0, 0, w, h
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    px, py = int(pad * (x1 - x0)), int(pad * (y1 - y0))
    return max(0, x0 - px), max(0, y0 - py), min(w, x1 + px), min(h, y1 + py)


def _thumbnail(rgb8: np.ndarray, h_to_base: np.ndarray, box, region: np.ndarray | None,
               side: int = THUMB_SIDE) -> np.ndarray:
    """The photo resampled into the baseline crop `box` (global model), region outlined."""
    import cv2

    x0, y0, x1, y1 = box
    s = side / max(x1 - x0, y1 - y0)
    out_w, out_h = max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))
    t = np.array([[s, 0, -x0 * s], [0, s, -y0 * s], [0, 0, 1.0]])
    # pre-shrink the source (area averaging) so the warp does not alias
    m = t @ h_to_base
    scale_src = math.sqrt(abs(np.linalg.det(m[:2, :2]))) or 1.0
    src = rgb8
    f = 1.0
    if scale_src < 0.5:
        f = min(1.0, 2.0 * scale_src)
        src = cv2.resize(rgb8, (max(1, round(rgb8.shape[1] * f)), max(1, round(rgb8.shape[0] * f))),
                         interpolation=cv2.INTER_AREA)
    m = m @ np.diag([1 / f, 1 / f, 1.0])
    thumb = cv2.warpPerspective(src, m, (out_w, out_h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(40, 40, 40))
    if region is not None and region.any():
        r = cv2.resize(region[y0:y1, x0:x1].astype(np.uint8), (out_w, out_h),
                       interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(r, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(thumb, contours, -1, (255, 255, 255), 1, cv2.LINE_AA)
    return thumb


class Series:
    """A treatment course: validated photos, their alignment, measurements, fits and trends.

    Parameters
    ----------
    source : str, os.PathLike or list
        A manifest CSV (SPEC columns ``photo,date,kind`` plus optional
        ``subject,area,roi,note``), a folder (its ``manifest.csv``, or its photos ordered
        by EXIF capture time), or a list of ``(photo, date, kind)`` tuples or dicts whose
        photo is a path, an array or a `photokit.Photo`.
    roi : str, path or ndarray of bool, optional
        The skin to follow, in BASELINE coordinates (mask or polygon JSON); default the
        manifest's ``roi`` column, else the baseline's automatic skin mask.
    reference_roi : str, path or ndarray of bool, optional
        Untreated reference skin in baseline coordinates: each visit's colour is
        normalised to the baseline's reference skin.
    mm_per_px : float, optional
        Scale of the BASELINE photo; carried to every visit through its alignment.
    acute_days : float
        Visits closer than this to their last treatment are left out of improvement
        trends (so day-1 swelling does not read as smoother skin).
    chain : bool
        Try chaining through the previous visit when the direct alignment fails or is
        less confident than `CHAIN_BELOW` (default True).
    max_pixels : int, optional
        Decompression-bomb limit passed to `photokit.load`.

    Raises
    ------
    PhotokitError
        When the series is invalid, with every problem listed in one message. Nothing is
        decoded before the whole series has been validated.

    Notes
    -----
    The analysis runs once, on first use of `visits`, `recovery`, `trend`, `flags` or an
    export (or explicitly with `analyse`). Every visit is aligned into the baseline
    frame; the analysed region is the ROI (or baseline skin) that every usable visit
    covers, carried onto each visit through its alignment, so all photos are measured
    over the same skin.
    """

    def __init__(self, source, *, roi=None, reference_roi=None, mm_per_px: float | None = None,
                 acute_days: float = ACUTE_DAYS, chain: bool = True, max_pixels: int | None = None,
                 progress=None, hide_eyes: bool = False):
        self.entries = read_series(source)
        self.source = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<list>"
        manifest_roi = next((e.roi for e in self.entries if e.roi), None)
        self.roi = roi if roi is not None else manifest_roi
        self.reference_roi = reference_roi
        self.mm_per_px = mm_per_px
        self.acute_days = float(acute_days)
        self.chain = bool(chain)
        self.max_pixels = max_pixels
        self._progress = progress
        self.hide_eyes = bool(hide_eyes)
        self._visits: list[Visit] | None = None
        self._recovery: list[RecoveryResult] = []
        self._trend: dict = {}
        self._flags: list[dict] = []
        self.warnings: list[str] = []
        self.region: np.ndarray | None = None
        self.region_source: str | None = None
        self.region_box: tuple | None = None
        self.seconds: float | None = None

    # -- basic facts ------------------------------------------------------------------
    @property
    def baseline(self) -> Entry:
        return next(e for e in self.entries if e.kind == "baseline")

    @property
    def treatments(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "treatment"]

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        state = "analysed" if self._visits is not None else "not analysed yet"
        return (f"<photokit.Series {self.source!r}: {len(self.entries)} photos, "
                f"{len(self.treatments)} treatment(s), {state}>")

    def _say(self, msg: str) -> None:
        if self._progress is not None:
            self._progress(msg)
        else:
            import logging

            logging.getLogger("photokit.series.course").info(msg)

    # -- results ------------------------------------------------------------------------
    @property
    def visits(self) -> list[Visit]:
        """Every photo (baseline first) with its alignment, metrics and deltas."""
        self.analyse()
        return self._visits

    @property
    def recovery(self) -> list[RecoveryResult]:
        """Recovery fits: one per treatment and per recovery metric
        (`photokit.metrics.registry.Metric.recovery`)."""
        self.analyse()
        return self._recovery

    @property
    def trend(self) -> dict:
        """``{metric: photokit.series.recovery.Trend}`` at visits outside the acute window."""
        self.analyse()
        return self._trend

    @property
    def flags(self) -> list[dict]:
        """Complication signs: persistent redness, new pigment, excluded photos."""
        self.analyse()
        return self._flags

    # -- the work -----------------------------------------------------------------------
    def analyse(self) -> Series:
        """Align, measure, fit and trend (once; later calls return at once)."""
        if self._visits is not None:
            return self
        import time

        t0 = time.perf_counter()
        visits, photos = self._align_all()
        self._measure_all(visits, photos)
        photos.clear()
        self._visits = visits
        self._fit_recovery()
        self._fit_trends()
        self._find_flags()
        self.seconds = time.perf_counter() - t0
        return self

    def _load(self, entry: Entry):
        from ..io.photo import load

        return load(entry.source, max_pixels=self.max_pixels)

    def _align_all(self):
        from ..io.roi import read_roi
        from ..registration.align import align

        tl = timeline(self.entries)
        base_entry = self.baseline
        self._say(f"series: {len(self.entries)} photos, baseline {base_entry.photo}")
        self.warnings += same_moment(self.entries)
        pb = self._load(base_entry)
        self._base_shape = (pb.height, pb.width)
        roi_b = None if self.roi is None else read_roi(self.roi, self._base_shape)
        if roi_b is not None and not roi_b.any():
            raise PhotokitError("the ROI is empty", self.roi if isinstance(self.roi, str) else None)
        self._roi_b = roi_b
        self._ref_b = (None if self.reference_roi is None
                       else read_roi(self.reference_roi, self._base_shape))
        photos = {id(base_entry): pb}
        kept = pb.width * pb.height
        visits = []
        prev = None  # (Visit, Photo) of the latest aligned non-baseline photo
        for e, t in zip(self.entries, tl, strict=True):
            acute = t["days_since_treatment"] is not None and t["days_since_treatment"] < self.acute_days
            v = Visit(e, t["days_since_baseline"], t["days_since_treatment"], t["treatment_index"],
                      acute=acute)
            visits.append(v)
            if e is base_entry:
                v.method = "baseline"
                continue
            try:
                pv = self._load(e)
            except PhotokitError as exc:
                v.status, v.reason, v.method = "excluded", f"cannot load: {exc.cause}", "none"
                self._say(f"  {e.photo}: excluded ({v.reason})")
                continue
            direct = align(pb, pv, roi=roi_b)
            best, method, via = direct, "direct", None
            if (self.chain and prev is not None
                    and (not direct.ok or direct.confidence < CHAIN_BELOW)):
                pv_prev, prev_visit = prev[1], prev[0]
                roi_p = None if roi_b is None else prev_visit.alignment.roi_to_after(roi_b)
                link = align(pv_prev, pv, roi=roi_p if roi_p is not None and roi_p.any() else None)
                if link.ok:
                    chained = _chain(prev_visit.alignment, link, direct)
                    if chained.confidence > (direct.confidence if direct.ok else 0.0):
                        best, method, via = chained, "chained", prev_visit.photo
            v.alignment, v.method, v.via = best, method, via
            if not best.ok:
                v.status = "excluded"
                v.reason = f"alignment failed: {best.reason}"
                self._say(f"  {e.photo}: excluded ({v.reason})")
                continue
            self._say(f"  {e.photo}: aligned ({method}{' via ' + via if via else ''}, "
                      f"confidence {best.confidence:.2f})")
            prev = (v, pv)
            if kept + pv.width * pv.height <= KEEP_PIXELS:
                photos[id(e)] = pv
                kept += pv.width * pv.height
        return visits, photos

    def _measure_all(self, visits: list[Visit], photos: dict) -> None:
        from ..comparison.compare import LIGHT_SIDE, lighting_difference
        from ..comparison.sameskin import (
            analysed_mask,
            carried_mm_per_px,
            carried_scale,
            followed_skin,
            judge_pair,
            percent_change,
        )
        from ..imaging.filters import fit_within
        from ..measurement.measure import measure
        from ..metrics.registry import registered

        base_v = visits[[v.entry.kind for v in visits].index("baseline")]
        pb = photos.get(id(base_v.entry)) or self._load(base_v.entry)
        ok = [v for v in visits if v.ok and v is not base_v]
        region, self.region_source, context = followed_skin(
            pb, roi=self._roi_b, reference=self._ref_b, mm_per_px=self.mm_per_px, label="the baseline photo")
        whole = int(region.sum())
        for v in ok:
            region &= v.alignment.valid_mask()
        if not region.any():
            raise PhotokitError("no part of the region is seen in every usable visit "
                                "(check the ROI and the alignments)", base_v.entry.path)
        share = region.sum() / max(whole, 1)
        if share < 0.5:
            self.warnings.append(f"only {100 * share:.0f}% of the {self.region_source} region is seen "
                                 "in every visit: the series is measured over that part")
        self.region = region
        self.region_box = _crop_box(region, self._base_shape)
        self._say(f"series: measuring {len(ok) + 1} photo{'s' if ok else ''} over the same "
                  f"{int(region.sum())} px of skin ({self.region_source})")
        # per face zone too (SPEC `<metric>.<zone>`): each photo's zones of its own mesh
        mb = measure(pb, roi=region, reference_roi=self._ref_b, mm_per_px=self.mm_per_px,
                     context=context, zones="found")  # the baseline analysed once
        # what the baseline measurement actually analysed (region x skin x validity) is the
        # skin every visit is measured over
        analysed = analysed_mask(mb, self._base_shape)
        if analysed is not None:
            analysed = analysed & region   # a new array: the measurement keeps its own mask
            if analysed.any():
                region = analysed
                self.region = region
        if mb.scale.source == "relative":
            self.warnings.append("no physical scale known: sizes and densities (pores, spots, lines) are "
                                 "per relative unit, not millimetres (the baseline's skin area taken as "
                                 "100 x 100 units); give --mm-per-px")
        base_v.standard_error, base_v.not_judged = dict(mb.standard_error), dict(mb.not_judged)
        self._fill(base_v, mb)
        base_v.thumbnail = _thumbnail(self._shown(pb), np.eye(3), self.region_box, region)
        # the baseline on the lighting check's grid: each visit is resampled onto it
        b_light, s_light = fit_within(pb.rgb8(), LIGHT_SIDE)
        mets = registered()
        # the baseline's scale (user, card or face) follows the skin into every visit through
        # its alignment, so millimetre filter sizes cover the same skin in every photo
        scale_b = self.mm_per_px if self.mm_per_px is not None else getattr(mb, "mm_per_px", None)
        base_vals = mb.metrics
        for v in visits:
            if v is base_v:
                continue
            if not v.ok:
                try:
                    pv = photos.get(id(v.entry)) or self._load(v.entry)
                    v.thumbnail = _thumbnail(self._shown(pv), _fit_into(pv, self._base_shape),
                                             self.region_box, None)
                except PhotokitError:
                    pass
                continue
            pv = photos.pop(id(v.entry), None) or self._load(v.entry)
            a = v.alignment
            roi_v = a.roi_to_after(region)
            ref_v = None if self._ref_b is None else a.roi_to_after(self._ref_b)
            mm = carried_mm_per_px(a.homography, scale_b, roi_v, alignment=a)
            v.thumbnail = _thumbnail(self._shown(pv), a.homography, self.region_box, region)
            try:
                mv = measure(pv, roi=roi_v, reference_roi=ref_v, mm_per_px=mm,
                             reference_target=(None if ref_v is None
                                               else getattr(mb, "reference_rgb", None)),
                             zones="found")
            except PhotokitError as exc:
                v.status, v.reason = "excluded", f"cannot measure: {exc.cause}"
                self._say(f"  {v.photo}: excluded ({v.reason})")
                continue
            if mm is not None:
                mv.scale = carried_scale(mb.scale, mm, "the baseline")
            # the change against baseline, judged as `compare` judges a pair: with the
            # pair's light, resolutions and expressions
            v.lighting = lighting_difference(b_light, a.warp_onto(pv.rgb8(), b_light.shape[:2], s_light,
                                                                  area=True), a.valid_mask(), region)
            judged = judge_pair(mets, mb, mv, lighting=v.lighting, expression=getattr(a, "expression", None),
                                mm_per_px=(scale_b, mm), labels=("baseline", "this photo"))
            v.standard_error, v.not_judged, v.holm = dict(mv.standard_error), judged.not_judged, judged.holm
            v.warnings.extend(getattr(a, "warnings", None) or [])
            self._fill(v, mv)
            for name, val in v.metrics.items():
                if name in judged.delta:
                    for mine, theirs in ((v.delta, judged.delta), (v.percent_change, judged.percent_change),
                                         (v.noise_floor, judged.noise_floor),
                                         (v.significant, judged.significant)):
                        mine[name] = theirs[name]
                    continue
                # a per-zone value: no standard error of its own; where its metric's change is
                # not judged, neither is the zone's, for the same reason
                b = base_vals.get(name)
                v.delta[name] = None if val is None or b is None else float(val) - float(b)
                v.percent_change[name] = percent_change(b, val)
                v.significant[name] = None
                parent = judged.not_judged.get(name.rsplit(".", 1)[0])
                if parent is not None and v.delta[name] is not None:
                    v.not_judged[name] = parent
            self._say(f"  {v.photo}: measured")
        base_v.delta = {k: 0.0 if val is not None else None for k, val in base_vals.items()}
        base_v.percent_change = {k: 0.0 if val else None for k, val in base_vals.items()}

    @staticmethod
    def _fill(v: Visit, m) -> None:
        # keep the Measurement but not its full-resolution working set (memory stays flat
        # however long the series)
        for heavy in ("analysis", "photo"):
            if getattr(m, heavy, None) is not None:
                try:
                    setattr(m, heavy, None)
                except AttributeError:
                    pass
        v.measurement = m
        v.metrics = {k: _finite(x) for k, x in m.metrics.items()}
        v.warnings.extend(w for w in getattr(m, "warnings", []) or []
                          if not w.startswith("zone "))   # per zone: in the measurement's zones
        q = getattr(m, "quality", None)
        v.quality_ok = None if q is None else bool(getattr(q, "ok", True))
        cal = getattr(m, "calibration", None)
        v.calibration = cal.to_dict() if hasattr(cal, "to_dict") else cal
        v.mm_per_px = getattr(m, "mm_per_px", None)

    def metric(self, name):
        """The registered `~photokit.metrics.registry.Metric` called `name`, or None."""
        from ..metrics.registry import get

        try:
            return get(name)
        except KeyError:
            return None

    def _fit_recovery(self) -> None:
        from ..metrics.registry import registered
        from .recovery import fit_recovery

        out = []
        visits = self._visits
        for k, tr in enumerate(self.treatments):
            seg = [v for v in visits if v.ok and v.treatment_index == k]
            # the pre-treatment level: the latest usable photo before this session that is
            # not itself inside an earlier session's acute window (else the baseline), so the
            # tail of the previous session's redness is not taken for the skin's own level
            before = [v for v in visits if v.ok and v.entry.date < tr.date and not v.acute]
            for m in (m for m in registered() if m.recovery):
                name = m.name

                def comparable(v, name=name) -> bool:
                    # a value whose change against baseline cannot be judged (an uncalibrated
                    # light change, another resolution: `judge_pair`) is not on the course's
                    # scale either: it stays out of the fit and the pre-treatment level
                    return v.metrics.get(name) is not None and (
                        v.method == "baseline" or v.noise_floor.get(name) is not None)

                pre = next((v.metrics.get(name) for v in reversed(before) if comparable(v)), None)
                pts = [(v.days_since_treatment, v.metrics.get(name), v.photo) for v in seg if comparable(v)]
                left_out = [v.photo for v in seg if v.metrics.get(name) is not None and not comparable(v)]
                fit = fit_recovery([p[0] for p in pts], [p[1] for p in pts], mdc=m.mdc,
                                   pre_level=pre, metric=name)
                excluded = [v.photo for v in visits if not v.ok and v.treatment_index == k]
                if (excluded or left_out) and not fit.ok:
                    # why photos are missing from the fit comes first (the fit's own reason
                    # counted only the photos left: "0 photo(s) after this treatment")
                    fit.reason = "; ".join(
                        ([f"photos excluded: {', '.join(excluded)}"] if excluded else [])
                        + ([f"{name} not comparable with the baseline in {', '.join(left_out)} "
                            "(not judged: see the visits)"] if left_out else [])
                        + ([f"of the photos left: {fit.reason}"] if fit.reason else []))
                out.append(RecoveryResult(k, tr, fit, [p[2] for p in pts]))
        self._recovery = out

    def eligible_visits(self) -> list[Visit]:
        """Usable visits outside the acute window (the ones improvement is judged on)."""
        return [v for v in self.visits if v.ok and v.kind != "baseline" and not v.acute]

    def _fit_trends(self) -> None:
        from ..metrics.registry import registered
        from .recovery import trend

        base = next(v for v in self._visits if v.method == "baseline")
        eligible = [v for v in self._visits if v.ok and v.kind != "baseline" and not v.acute]
        out = {}
        for m in registered():
            if m.name not in base.metrics:
                continue
            pts = [(v.photo, v.entry.iso_date(), v.days_since_baseline, v.metrics.get(m.name),
                    v.noise_floor.get(m.name), v.not_judged.get(m.name)) for v in eligible]
            out[m.name] = trend(m, base.metrics.get(m.name), pts)
        self._trend = out

    def _find_flags(self) -> None:
        from ..metrics.registry import registered

        flags = []
        for r in self._recovery:
            f = r.fit
            if not f.persistent or f.pre_level is None:
                continue
            late = [(t, y) for t, y in zip(f.t, f.y, strict=True) if t > 12.0 and y - f.pre_level > f.mdc]
            if late:
                t, y = late[-1]
                msg = (f"{f.metric} still {y - f.pre_level:+.2f} above its pre-treatment level "
                       f"{t:.0f} days after treatment {r.treatment_index + 1} (noise floor {f.mdc:.2f})")
            elif f.days_to_baseline is None:
                msg = (f"{f.metric} after treatment {r.treatment_index + 1} does not return to its "
                       "pre-treatment level in the fit")
            else:
                msg = (f"{f.metric} after treatment {r.treatment_index + 1} is predicted to take "
                       f"{f.days_to_baseline:.0f} days to settle (beyond 12)")
            flags.append({"kind": "persistent_redness", "treatment_index": r.treatment_index,
                          "metric": f.metric, "message": msg})
        pig = [(m, m.pih_sign) for m in registered() if m.pih_sign]
        for v in self._visits:
            if not v.ok or v.days_since_treatment is None or v.days_since_treatment < PIH_MIN_DAYS:
                continue
            worse = [m for m, sign in pig
                     if v.delta.get(m.name) is not None and v.noise_floor.get(m.name) is not None
                     and sign * v.delta[m.name] > v.noise_floor[m.name]]
            if worse:
                parts = ", ".join(f"{m.name} {v.delta.get(m.name):+.3g} {m.unit} "
                                  f"(floor {v.noise_floor[m.name]:.3g})" for m in worse)
                flags.append({"kind": "new_pigment", "photo": v.photo,
                              "metrics": [m.name for m in worse],
                              "message": f"{v.photo}: more pigment than at baseline, "
                                         f"{v.days_since_treatment:.0f} days after treatment "
                                         f"(possible post-inflammatory hyperpigmentation): {parts}"})
        for v in self._visits:
            if not v.ok:
                flags.append({"kind": "excluded", "photo": v.photo, "message": f"{v.photo}: {v.reason}"})
        self._flags = flags

    # -- exports ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The SPEC ``series --json`` document."""
        vis = self.visits
        return {
            "baseline": self.baseline.photo,
            "visits": [v.to_dict() for v in vis],
            "recovery": [r.to_dict() for r in self.recovery],
            "trend": {k: t.to_dict() for k, t in self.trend.items()},
            "flags": list(self.flags),
            "region": {"source": self.region_source,
                       "pixels": None if self.region is None else int(self.region.sum()),
                       "box": None if self.region_box is None else [int(x) for x in self.region_box]},
            "warnings": list(self.warnings),
            "params": self.params(),
        }

    def _shown(self, photo) -> np.ndarray:
        """The photo as reports show it: eyes and eyebrows under an opaque mask when
        `hide_eyes` (`photokit.faces.deidentify`)."""
        from ..faces.deidentify import mask_photo

        if not self.hide_eyes:
            return photo.rgb8()
        masked, found = mask_photo(photo.rgb8())
        if not found:
            self.warnings.append(f"{photo.name}: no face found: eyes and eyebrows were not covered")
        return masked

    def params(self) -> dict:
        """How the series was run, with file names only (folder names often hold patient
        names: no path of an input is shown)."""
        def name(x):
            return Path(x).name if isinstance(x, (str, os.PathLike)) else ("array" if x is not None else None)

        return {"source": name(self.source), "acute_days": self.acute_days, "chain": self.chain,
                "roi": name(self.roi), "reference_roi": name(self.reference_roi),
                "mm_per_px": self.mm_per_px}

    def metric_names(self) -> list[str]:
        names: list[str] = []
        for v in self.visits:
            names += [k for k in v.metrics if k not in names]
        return names

    def rows(self) -> list[dict]:
        """One flat row per photo: facts, then metric values, then ``delta.<metric>``."""
        names = self.metric_names()
        rows = []
        for v in self.visits:
            row = {"photo": v.photo, "date": v.entry.iso_date(), "kind": v.kind,
                   "days_since_baseline": round(v.days_since_baseline, 4),
                   "days_since_treatment": (None if v.days_since_treatment is None
                                            else round(v.days_since_treatment, 4)),
                   "status": v.status, "reason": v.reason, "alignment": v.method,
                   "via": v.via, "confidence": v.confidence, "acute": v.acute, "note": v.entry.note}
            row.update({n: v.metrics.get(n) for n in names})
            row.update({f"delta.{n}": v.delta.get(n) for n in names})
            rows.append(row)
        return rows

    def to_frame(self):
        """pandas DataFrame, one row per photo (index ``photo``), metrics as columns."""
        import pandas as pd

        return pd.DataFrame(self.rows()).set_index("photo")

    def to_csv(self, path) -> Path:
        """Write `rows` as CSV (atomically)."""
        from ..io.atomic import write_text

        rows = self.rows()
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        return write_text(path, buf.getvalue())

    # -- pictures -------------------------------------------------------------------------
    def plot_timeline(self, ax=None):
        """Timeline: baseline, treatments (red lines) and visits; excluded photos crossed."""
        from ..report.series_page import timeline_plot

        return timeline_plot(self, ax=ax)

    def plot_recovery(self, metric: str = "redness.a_mean"):
        """Recovery curves: `metric` against days since each treatment, with the fits."""
        from ..report.series_page import recovery_plot

        return recovery_plot(self, metric)

    def plot_trends(self, metrics=None):
        """Percent change from baseline per metric, with its noise band (± MDC)."""
        from ..report.series_page import trend_plot

        return trend_plot(self, metrics)

    def report_html(self) -> str:
        """The self-contained HTML series report as a string."""
        from ..report.series_page import render_report

        return render_report(self.analyse())

    def write_report(self, path) -> Path:
        """Write the self-contained HTML series report."""
        from ..io.atomic import write_text

        return write_text(path, self.report_html())

    def _repr_html_(self) -> str:
        from ..report.series_page import notebook_html

        return notebook_html(self)


def _fit_into(photo, shape) -> np.ndarray:
    """A scaling that fits an unaligned photo into the baseline frame (for thumbnails)."""
    s = min(shape[1] / photo.width, shape[0] / photo.height)
    return np.diag([s, s, 1.0])


def series(source, **kwargs) -> Series:
    """Build and analyse a `Series` (see its parameters)."""
    return Series(source, **kwargs).analyse()
