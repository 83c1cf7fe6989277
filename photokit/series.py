"""Treatment series: a course of photos analysed as one timeline.

A series is a manifest (SPEC: ``photo,date,kind`` plus optional ``subject,area,roi,note``),
a folder of photos ordered by EXIF capture time, or a list of ``(photo, date, kind)``.
`Series` validates it completely before any pixel is decoded (every problem in one
message), aligns every photo into the baseline frame, measures the same skin in each,
fits the recovery of redness after each treatment (`photokit.recovery.fit_recovery`) and
follows the improvement of texture, pores, lines and spots at visits outside the acute
window (`photokit.recovery.trend`).
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

from .errors import PhotokitError

KINDS = ("baseline", "treatment", "visit")
REQUIRED_COLUMNS = ("photo", "date", "kind")
OPTIONAL_COLUMNS = ("subject", "area", "roi", "note")

#: Days after a treatment during which swelling and redness make texture, pores, lines and
#: spots unreadable (DOMAIN: near-normal in 2-7 days, up to ~12 after aggressive work).
ACUTE_DAYS = 14.0

#: Metrics whose recovery is fitted after each treatment.
RECOVERY_METRICS = ("redness.a_mean", "redness.ei_mean")

#: Metric families followed for improvement (texture, pores, lines and spots).
TREND_FAMILIES = ("texture", "pores", "lines", "spots", "pigment")

#: Metric families watched for post-inflammatory hyperpigmentation (new pigment).
PIH_FAMILIES = ("pigment", "spots")

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
    """None when Pillow recognises the file as an image (header only), else the cause."""
    from PIL import Image

    if path.suffix.lower() in (".heic", ".heif"):
        return None  # decoded (or refused with a clear reason) by photokit.load
    try:
        with Image.open(path) as im:
            im.size  # noqa: B018 - header parse only
    except Exception as exc:  # Pillow raises many types for garbage
        return f"not a readable image ({type(exc).__name__})"
    return None


def _fail(problems: list[str], where) -> None:
    if problems:
        n = len(problems)
        raise PhotokitError(f"{n} problem{'s' if n > 1 else ''} in the series: "
                            + "; ".join(problems), where)


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
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PhotokitError(f"cannot read manifest ({exc.strerror or exc})", path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PhotokitError("manifest is not UTF-8 text (is it a CSV file?)", path) from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise PhotokitError(f"manifest is not valid CSV ({exc})", path) from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise PhotokitError("manifest is empty (expected a header photo,date,kind)", path)
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise PhotokitError(f"manifest header lacks column(s) {', '.join(missing)} "
                            f"(found {', '.join(header) or 'nothing'}; need photo,date,kind)", path)
    base = path.parent
    problems: list[str] = []
    entries: list[Entry] = []
    for lineno, row in enumerate(rows[1:], start=2):
        rec = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
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
            problems.append(f"{where}: unknown kind {rec.get('kind', '')!r} (use baseline, treatment or visit)")
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

    from .photo import _parse_exif_time

    try:
        with Image.open(path) as im:
            return _parse_exif_time(im.getexif())
    except Exception:
        return None


def read_folder(folder) -> list[Entry]:
    """A folder as a series: its manifest when it has one, else photos by EXIF time.

    Without a manifest, photos are ordered by EXIF ``DateTimeOriginal``; a file name
    containing ``baseline``/``before`` marks the baseline (else the earliest photo is
    it), and ``treatment``/``session``/``tx`` marks treatment photos; all others are
    visits. Photos without a capture time are listed in one error.
    """
    from .photo import IMAGE_EXTENSIONS

    folder = Path(folder)
    for name in MANIFEST_NAMES:
        if (folder / name).is_file():
            return read_manifest(folder / name)
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
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
    if problems:
        problems.append("write a manifest.csv (photo,date,kind) to give their dates")
    entries.sort(key=lambda e: e.date)
    if entries and not any(e.kind == "baseline" for e in entries):
        entries[0].kind = "baseline"
    entries = _validate(entries, problems)
    _fail(problems, folder)
    return entries


def entries_from_list(items: Iterable) -> list[Entry]:
    """Validate ``(photo, date, kind)`` tuples or dicts (photo: path, array or Photo)."""
    problems: list[str] = []
    entries = []
    for i, item in enumerate(items):
        rec = dict(item) if isinstance(item, dict) else dict(zip(("photo", "date", "kind", "note"), item))
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
