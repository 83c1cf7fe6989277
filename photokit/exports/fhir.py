"""Measurements as a FHIR R4 ``Bundle`` (type ``collection``): Observations and Media.

One ``Observation`` per metric value, with ``valueQuantity`` in the metric's unit (UCUM
where the unit has a UCUM spelling, else a photokit unit code), ``effectiveDateTime`` the
photo's capture time when known, ``subject`` when a subject identifier is known, and
``derivedFrom`` the ``Media`` that carries the photo. A comparison adds, per metric, one
change Observation (``delta.<metric>``, after minus before) whose components are the
noise floor (minimal detectable change), the percent change and the significance, with
the HL7 interpretation ``U``/``D`` (significant change up/down) when significant.

The resources are built with the ``fhir.resources`` models (its ``R4B`` package, whose
Observation, Media and Bundle are those of R4), so a bundle that could not validate is
never written. See docs/EXPORTS.md for the code systems.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np

from .._version import __version__
from ..errors import PhotokitError
from ..io.atomic import encode_image, write_text

#: photokit's CodeSystem of metric names (codes are the SPEC metric names, and
#: ``delta.<metric>`` for a change) and of the change components.
METRIC_SYSTEM = "https://photokit.dev/fhir/CodeSystem/metric"
#: photokit's CodeSystem of units without a UCUM spelling (``a*``, ``EI``, ``MI``, ``L*``).
UNIT_SYSTEM = "https://photokit.dev/fhir/CodeSystem/unit"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
MEDIA_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/media-type"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"
#: Identifier system of subjects given on the command line or in a manifest.
SUBJECT_SYSTEM = "https://photokit.dev/fhir/NamingSystem/subject"
#: Long side of the photo embedded in each Media (JPEG), pixels.
MEDIA_SIDE = 2048

#: photokit unit -> UCUM code (units not listed go to `UNIT_SYSTEM`).
UCUM_UNITS = {"%": "%", "deg": "deg", "mm": "mm", "1/cm^2": "/cm2", "mm/cm^2": "mm/cm2",
              "count": "{count}", "1": "1", "px": "{pixel}"}

MISSING = "FHIR export needs the fhir extra: pip install 'photokit[fhir]'"


def require() -> None:
    """Raise `PhotokitError` naming the extra when ``fhir.resources`` is missing."""
    try:
        import fhir.resources.R4B.bundle  # noqa: F401
    except ImportError:
        raise PhotokitError(MISSING) from None


def quantity(value: float, unit: str, relative: bool = False) -> dict:
    """A FHIR ``Quantity``: UCUM when the unit has a UCUM code, else photokit's unit code;
    with `relative` (a value of a metric defined in millimetres, measured without a
    physical scale: the skin area taken as 100 x 100 units) photokit's ``relative:<unit>``
    code, never UCUM's, so no receiving system reads it as a physical quantity."""
    if relative:
        return {"value": float(value), "unit": f"{unit} (relative scale, not physical)",
                "system": UNIT_SYSTEM, "code": f"relative:{unit}"}
    code = UCUM_UNITS.get(unit)
    return {"value": float(value), "unit": unit, "system": UCUM if code else UNIT_SYSTEM,
            "code": code or unit}


def at_relative_scale(m) -> bool:
    """Whether a `Measurement` (the first photo of a pair or course, whose scale the others
    carry) had no physical scale: its values defined in millimetres are then relative."""
    return getattr(getattr(m, "scale", None), "source", None) == "relative"


def fhir_time(t) -> str | None:
    """A FHIR ``dateTime``: full when timezone-aware, the date alone when naive.

    FHIR requires a time zone whenever hours are given; a naive EXIF time (most cameras
    write no offset) therefore keeps only its date.
    """
    if t is None:
        return None
    if isinstance(t, str):
        try:
            t = datetime.fromisoformat(t)
        except ValueError:
            return None
    if t.tzinfo is None:
        return t.date().isoformat()
    return t.isoformat()


def subject_ref(subject: str | None, name: str | None = None) -> dict | None:
    """A logical reference to the patient by identifier (no Patient resource), by name
    alone when only a name is given (it was dropped: QA, 2026-12-08), or None.

    A DICOM-style name (``Family^Given^Middle^Prefix^Suffix``, as ``--patient-name``
    takes for DICOM) is shown as it is spoken: ``Prefix Given Middle Family Suffix``.
    """
    if not subject and not name:
        return None
    ref: dict = {} if not subject else {"identifier": {"system": SUBJECT_SYSTEM, "value": str(subject)}}
    if name:
        # the first component group of a DICOM name (``=`` separates ideographic and
        # phonetic ones), its components in spoken order
        parts = (str(name).split("=")[0].split("^") + [""] * 5)[:5]
        family, given, middle, prefix, suffix = (x.strip() for x in parts)
        spoken = " ".join(x for x in (prefix, given, middle, family, suffix) if x)
        if spoken:
            ref["display"] = spoken
    return ref or None


class BundleBuilder:
    """Collects Observations and Media and returns a validated R4 ``Bundle``.

    Parameters
    ----------
    subject, patient_name : str, optional
        Who the photos show; absent from every resource when not given.
    units : dict, optional
        Metric name -> unit (default: the metric registry's).
    """

    def __init__(self, *, subject: str | None = None, patient_name: str | None = None,
                 units: dict | None = None):
        from ..metrics import registry

        require()
        self.units = {m.name: m.unit for m in registry.registered()} if units is None else units
        self.subject = subject
        self.patient_name = patient_name
        self.entries: list[dict] = []
        #: The bundle's values come from photos without a physical scale: those defined
        #: in millimetres are exported in relative units (`quantity`).
        self.relative = False
        self._scaled = {m.name for m in registry.registered() if m.needs_scale}

    def _metric(self, name: str) -> str:
        """The registered metric a value belongs to: itself, or a per-zone value's metric."""
        return name if name in self.units else name.rsplit(".", 1)[0]

    def _unit(self, name: str) -> str:
        return self.units.get(self._metric(name), "1")

    def _relative(self, name: str) -> bool:
        return self.relative and self._metric(name) in self._scaled

    def _add(self, resource) -> str:
        url = f"urn:uuid:{uuid.uuid4()}"
        self.entries.append({"fullUrl": url, "resource": resource})
        return url

    def media(self, *, label: str, rgb: np.ndarray | None = None, when=None,
              subject: str | None = None, raw_sha1: bytes | None = None) -> str:
        """Add the photo as ``Media`` (JPEG embedded, long side at most `MEDIA_SIDE`).

        Returns the entry's ``fullUrl`` for references.
        """
        from fhir.resources.R4B.media import Media

        content = {"contentType": "image/jpeg", "title": label}
        doc = {"status": "completed",
               "type": {"coding": [{"system": MEDIA_TYPE_SYSTEM, "code": "image", "display": "Image"}]},
               "modality": {"coding": [{"system": DICOM_DCM, "code": "XC",
                                        "display": "External-camera Photography"}]},
               "content": content}
        if rgb is not None:
            small = _downscale(rgb, MEDIA_SIDE)
            data = encode_image(small, ".jpg", quality=90)
            content.update(data=base64.b64encode(data).decode("ascii"), size=len(data),
                           hash=base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"))
            doc.update(height=int(small.shape[0]), width=int(small.shape[1]))
        elif raw_sha1 is not None:
            content["hash"] = base64.b64encode(raw_sha1).decode("ascii")
        self._stamp(doc, "createdDateTime", when, subject)
        return self._add(Media.model_validate(doc))

    def _stamp(self, doc: dict, time_key: str, when, subject) -> None:
        """Put the capture time (when known) and the subject (when given) into `doc`."""
        t = fhir_time(when)
        if t:
            doc[time_key] = t
        ref = subject_ref(subject or self.subject, self.patient_name)
        if ref:
            doc["subject"] = ref

    def observation(self, name: str, value, *, when=None, media: str | None = None,
                    subject: str | None = None, derived: list[str] = (), code: str | None = None,
                    unit: str | None = None, components: list[dict] = (),
                    interpretation: str | None = None, note: str | None = None) -> str | None:
        """Add one metric value as ``Observation``; None values are skipped (returns None)."""
        from fhir.resources.R4B.observation import Observation

        if value is None or not np.isfinite(float(value)):
            return None
        code = code or name
        doc = {"status": "final",
               "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "imaging",
                                         "display": "Imaging"}]}],
               "code": {"coding": [{"system": METRIC_SYSTEM, "code": code}], "text": code},
               "valueQuantity": quantity(value, unit or self._unit(name), self._relative(name)),
               "method": {"text": f"photokit {__version__} photographic image analysis"}}
        self._stamp(doc, "effectiveDateTime", when, subject)
        refs = ([media] if media else []) + list(derived)
        if refs:
            doc["derivedFrom"] = [{"reference": r} for r in refs]
        if components:
            doc["component"] = list(components)
        if interpretation:
            doc["interpretation"] = [{"coding": [{"system": INTERPRETATION_SYSTEM, "code": interpretation}]}]
        if note:
            doc["note"] = [{"text": note}]
        return self._add(Observation.model_validate(doc))

    def change(self, name: str, delta, *, noise_floor=None, percent_change=None, significant=None,
               when=None, derived: list[str] = (), subject: str | None = None,
               not_judged: str | None = None) -> str | None:
        """Add ``delta.<name>`` with noise floor, percent change and significance; a change
        that is not judged says why in the Observation's ``note``."""
        if delta is None:
            return None
        unit = self._unit(name)
        comps = []
        if noise_floor is not None:
            comps.append({"code": _code("noise-floor", "Minimal detectable change (noise floor)"),
                          "valueQuantity": quantity(noise_floor, unit, self._relative(name))})
        if percent_change is not None and np.isfinite(float(percent_change)):
            comps.append({"code": _code("percent-change", "Percent change from before"),
                          "valueQuantity": quantity(percent_change, "%")})
        if significant is not None:
            comps.append({"code": _code("significant", "Change exceeds the noise floor"),
                          "valueBoolean": bool(significant)})
        interp = None
        if significant:
            interp = "U" if float(delta) > 0 else "D"
        return self.observation(name, delta, code=f"delta.{name}", unit=unit, when=when,
                                derived=derived, subject=subject, components=comps,
                                interpretation=interp,
                                note=f"not judged: {not_judged}" if not_judged else None)

    def bundle(self):
        """The validated ``Bundle`` (type ``collection``)."""
        from fhir.resources.R4B.bundle import Bundle

        return Bundle.model_validate({
            "resourceType": "Bundle", "type": "collection",
            "timestamp": datetime.now().astimezone().isoformat(timespec="seconds"),
            "entry": [{"fullUrl": e["fullUrl"], "resource": e["resource"].model_dump(exclude_none=True)}
                      for e in self.entries]})

    def json(self) -> str:
        """The bundle as FHIR JSON text."""
        return json.dumps(json.loads(self.bundle().model_dump_json(exclude_none=True)), indent=1) + "\n"

    def write(self, path) -> Path:
        """Write the bundle atomically."""
        return write_text(path, self.json())


def _code(code: str, display: str) -> dict:
    return {"coding": [{"system": METRIC_SYSTEM, "code": code, "display": display}], "text": display}


def _downscale(rgb: np.ndarray, side: int) -> np.ndarray:
    import cv2

    px = np.asarray(rgb)
    if px.dtype == np.uint16:
        px = (px >> 8).astype(np.uint8)
    h, w = px.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return px
    return cv2.resize(px, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------ one bundle per command

def measurement_bundle(m, *, label: str, rgb=None, subject=None, patient_name=None) -> BundleBuilder:
    """A bundle of one `Measurement`: its photo as Media and each metric value.

    `rgb` is the picture to embed (the masked one when de-identifying); default the
    measured photo.
    """
    b = BundleBuilder(subject=subject, patient_name=patient_name)
    b.relative = at_relative_scale(m)
    photo = m.photo
    when = photo.capture_time if photo is not None else None
    if rgb is None and photo is not None:
        rgb = photo.rgb8()
    media = b.media(label=label, rgb=rgb, when=when)
    for name, value in m.metrics.items():
        b.observation(name, value, when=when, media=media)
    return b


def comparison_bundle(c, *, labels: tuple[str, str], pictures=(None, None), subject=None,
                      patient_name=None) -> BundleBuilder:
    """A bundle of a `Comparison`: both photos, both measurements and each change."""
    b = BundleBuilder(subject=subject, patient_name=patient_name)
    b.relative = at_relative_scale(c.before)       # AFTER's scale is BEFORE's, carried
    refs = {}
    times = []
    for side, m, photo, label, rgb in (("before", c.before, c.before_photo, labels[0], pictures[0]),
                                        ("after", c.after, c.after_photo, labels[1], pictures[1])):
        when = photo.capture_time if photo is not None else None
        times.append(when)
        media = b.media(label=label, rgb=rgb if rgb is not None else (photo.rgb8() if photo else None),
                        when=when)
        refs[side] = {n: b.observation(n, v, when=when, media=media) for n, v in m.metrics.items()}
    for name, d in c.delta.items():
        derived = [r for r in (refs["before"].get(name), refs["after"].get(name)) if r]
        b.change(name, d, noise_floor=c.noise_floor.get(name), percent_change=c.percent_change.get(name),
                 significant=c.significant.get(name), when=times[1], derived=derived,
                 not_judged=c.not_judged.get(name))
    return b


def series_bundle(s, *, labels: dict, pictures: dict | None = None, subject=None,
                  patient_name=None) -> BundleBuilder:
    """A bundle of an analysed `Series`: each usable visit's photo, values and change.

    Parameters
    ----------
    labels : dict
        Manifest photo name -> label to show (the name itself, or ``photo N``).
    pictures : dict, optional
        Manifest photo name -> RGB picture to embed (e.g. masked); default none embedded.
    subject : str, optional
        Overrides the manifest's ``subject`` column.
    """
    b = BundleBuilder(subject=subject, patient_name=patient_name)
    base = next((v for v in s.visits if v.method == "baseline"), None)
    b.relative = base is not None and at_relative_scale(base.measurement)
    pictures = pictures or {}
    base_refs: dict = {}
    for v in s.visits:
        if not v.ok:
            continue
        photo = getattr(v.measurement, "photo", None)
        when = (photo.capture_time if photo is not None and photo.capture_time is not None
                else v.entry.date if not v.entry.date_only else v.entry.date.date().isoformat())
        who = subject or v.entry.subject
        media = b.media(label=labels.get(v.photo, v.photo), rgb=pictures.get(v.photo), when=when,
                        subject=who)
        refs = {n: b.observation(n, val, when=when, media=media, subject=who)
                for n, val in v.metrics.items()}
        if v.method == "baseline":
            base_refs = refs
            continue
        for name, d in v.delta.items():
            derived = [r for r in (base_refs.get(name), refs.get(name)) if r]
            b.change(name, d, percent_change=v.percent_change.get(name),
                     significant=v.significant.get(name), when=when, derived=derived, subject=who,
                     not_judged=v.not_judged.get(name))
    return b


def manifest_subjects(source) -> dict[str, str]:
    """Absolute photo path -> ``subject`` from a CSV manifest (empty for folders)."""
    src = os.fspath(source)
    if not (os.path.isfile(src) and src.lower().endswith(".csv")):
        return {}
    base = os.path.dirname(os.path.abspath(src))
    out = {}
    with open(src, newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            photo = (row.get("photo") or row.get("path") or "").strip()
            subj = (row.get("subject") or "").strip()
            if photo and subj:
                out[os.path.abspath(os.path.join(base, photo))] = subj
    return out


def batch_bundle(db, *, source=None, subject=None, patient_name=None) -> BundleBuilder:
    """A bundle of the ``scores`` of a batch database: per scored photo a Media (no pixels:
    its file name and the file's SHA-1) and its values; the subject from `subject`, else
    the manifest's ``subject`` column when `source` is a manifest.
    """
    import sqlite3

    from ..metrics import registry

    names = [m.name for m in registry.registered()]
    subjects = manifest_subjects(source) if source is not None else {}
    b = BundleBuilder(subject=subject, patient_name=patient_name)
    con = sqlite3.connect(os.fspath(db))
    try:
        con.row_factory = sqlite3.Row
        rows = con.execute("SELECT * FROM scores WHERE status = 'ok' ORDER BY path").fetchall()
    finally:
        con.close()
    from ..series.course import capture_time

    for row in rows:
        path = row["path"]
        when = capture_time(path) if os.path.exists(path) else None
        who = subject or subjects.get(os.path.abspath(path))
        sha1 = None
        if os.path.exists(path):
            sha1 = hashlib.sha1(Path(path).read_bytes()).digest()
        media = b.media(label=Path(path).name, when=when, subject=who, raw_sha1=sha1)
        # each row at its own scale (the store keeps the scale's source when it was scored)
        b.relative = "scale_source" in row.keys() and row["scale_source"] == "relative"
        for n in names:
            if n in row.keys():
                b.observation(n, row[n], when=when, media=media, subject=who)
    return b
