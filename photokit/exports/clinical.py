"""Everything `compare`, `series` and `measure` write beside their numbers, in one place.

Each command builds a `Plan` (what to write, whether to de-identify), checks the tools and
extras it needs *before* any analysis runs, then hands it its result: every output is
rendered in memory first and only then written (each file atomically), so a failure
leaves no half-finished set of exports.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..faces.deidentify import mask_photo
from ..io.atomic import write_bytes, write_text
from . import pdf as pdfmod
from .privacy import Scrubber


@dataclass
class Plan:
    """What to write. Paths are None when not asked for.

    Attributes
    ----------
    report, pdf, fhir : str or None
        HTML report, A4 PDF report, FHIR bundle.
    dicom : str or None
        Folder for the DICOM study.
    deidentify : bool
        No input names or paths; eyes and brows masked in every picture photokit renders
        here (FHIR Media, DICOM); see docs/EXPORTS.md for the report pictures.
    subject, patient_name : str or None
        Identify the patient in FHIR and DICOM only when given.
    warn : callable
        Where warnings go (one line each).
    """

    report: str | None = None
    pdf: str | None = None
    fhir: str | None = None
    dicom: str | None = None
    deidentify: bool = False
    subject: str | None = None
    patient_name: str | None = None
    warn: Callable[[str], None] = print

    def check(self) -> None:
        """Fail now, in one line naming what to install, when a requested export cannot run."""
        if self.pdf:
            pdfmod.find_browser()
        if self.fhir:
            from .fhir import require

            require()
        if self.dicom:
            from .dicom import require

            require()

    def pdf_for_dicom(self, page: str | None) -> bytes | None:
        """The PDF report for a DICOM study without ``--pdf`` (None, with a warning, when
        Chromium is missing)."""
        if page is None:
            return None
        try:
            pdfmod.find_browser()
        except Exception:  # the DICOM study is still useful without its report
            self.warn("warning: no PDF report in the DICOM study (headless Chromium not found)")
            return None
        return pdfmod.html_to_pdf(page)

    def masked(self, name: str, pixels):
        """`pixels` with eyes and brows covered; warns when no face was found in them."""
        masked, n = mask_photo(pixels)
        if n == 0:
            self.warn(f"warning: --deidentify found no face in {name}: nothing was masked; "
                      "check the pictures before sharing")
        return masked


def _write(files: list[tuple[str, bytes]], study, dicom_dir) -> list[Path]:
    out = [write_bytes(p, data) for p, data in files]
    if study is not None:
        out += study.write(dicom_dir)
    return out


def comparison(plan: Plan, c, *, before, after, others=(), page: str | None = None) -> list[Path]:
    """Write the exports of a `Comparison`.

    Parameters
    ----------
    before, after : str
        The input photos as given (for labels and scrubbing).
    others : sequence
        Other inputs (ROI files) whose names must not appear when de-identifying.
    page : str, optional
        The HTML report (rendered by the caller); needed for ``report``, ``pdf``, ``dicom``.
    """
    scrub = Scrubber([before, after], others) if plan.deidentify else None
    if scrub is not None and page is not None:
        page = scrub.html(page)
    labels = ((scrub.label(before), scrub.label(after)) if scrub
              else (Path(os.fspath(before)).name, Path(os.fspath(after)).name))
    files: list[tuple[str, bytes]] = []
    if plan.report:
        files.append((plan.report, page.encode("utf-8")))
    pdf_bytes = pdfmod.html_to_pdf(page) if plan.pdf else None
    if plan.pdf:
        files.append((plan.pdf, pdf_bytes))
    pictures = (None, None)
    if plan.deidentify and (plan.fhir or plan.dicom):
        pictures = (plan.masked(labels[0], c.before_photo.pixels),
                    plan.masked(labels[1], c.after_photo.pixels))
    if plan.fhir:
        from .fhir import comparison_bundle

        b = comparison_bundle(c, labels=labels, pictures=pictures, subject=plan.subject,
                              patient_name=plan.patient_name)
        files.append((plan.fhir, b.json().encode("utf-8")))
    study = None
    if plan.dicom:
        from .dicom import comparison_study

        study = comparison_study(c, pdf=pdf_bytes if pdf_bytes is not None else plan.pdf_for_dicom(page),
                                 pictures=pictures, patient_id=plan.subject,
                                 patient_name=plan.patient_name)
    return _write(files, study, plan.dicom)


def scrubber_of(s) -> Scrubber:
    """The `Scrubber` of a series: its photos, manifest or folder, and ROI files."""
    photos = [e.path for e in s.entries if e.path]
    others = [s.source] + [r for r in (s.roi, s.reference_roi) if isinstance(r, str)]
    return Scrubber(photos, others)


def series(plan: Plan, s, *, page: str | None = None, csv_text: str | None = None,
           csv_path: str | None = None) -> list[Path]:
    """Write the exports of an analysed `Series` (and its CSV, scrubbed when de-identifying)."""
    scrub = scrubber_of(s) if plan.deidentify else None
    if scrub is not None:
        page = None if page is None else scrub.html(page)
        csv_text = None if csv_text is None else scrub.text(csv_text)
    names = {e.photo: (scrub.label(e.path or e.photo) if scrub else e.photo) for e in s.entries}
    files: list[tuple[str, bytes]] = []
    if plan.report:
        files.append((plan.report, page.encode("utf-8")))
    if csv_path:
        files.append((csv_path, csv_text.encode("utf-8")))
    pdf_bytes = pdfmod.html_to_pdf(page) if plan.pdf else None
    if plan.pdf:
        files.append((plan.pdf, pdf_bytes))

    def picture(v, pixels):
        return plan.masked(names[v.photo], pixels) if plan.deidentify else pixels

    if plan.fhir:
        from ..io.photo import load
        from .fhir import series_bundle

        pictures = {v.photo: picture(v, load(v.entry.source, max_pixels=s.max_pixels).pixels)
                    for v in s.visits if v.ok}
        b = series_bundle(s, labels=names, pictures=pictures, subject=plan.subject,
                          patient_name=plan.patient_name)
        files.append((plan.fhir, b.json().encode("utf-8")))
    study = None
    if plan.dicom:
        from .dicom import series_study

        study = series_study(s, pdf=pdf_bytes if pdf_bytes is not None else plan.pdf_for_dicom(page),
                             picture=picture, patient_id=plan.subject, patient_name=plan.patient_name)
    return _write(files, study, plan.dicom)


def measurement(plan: Plan, m, *, image) -> list[Path]:
    """Write the FHIR bundle of one `Measurement` (the only export `measure` has)."""
    if not plan.fhir:
        return []
    from .fhir import measurement_bundle

    label = "photo 1" if plan.deidentify else Path(os.fspath(image)).name
    rgb = None
    if plan.deidentify and m.photo is not None:
        rgb = plan.masked(label, m.photo.rgb8())
    b = measurement_bundle(m, label=label, rgb=rgb, subject=plan.subject, patient_name=plan.patient_name)
    return [write_text(plan.fhir, b.json())]


def deidentified_measurement(m):
    """A `Measurement` named ``photo_1`` (maps, titles and JSON then carry no input name)."""
    import dataclasses

    return dataclasses.replace(m, image="photo_1")


def overlay(plan: Plan, m):
    """`m.overlay()`, with eyes and brows masked (faces of the photo) when de-identifying."""
    from ..faces.deidentify import mask_eyes
    from ..faces.search import face_pass

    img = m.overlay()
    if not plan.deidentify:
        return img
    faces = face_pass(m.photo).meshes
    if not faces:
        plan.warn("warning: --deidentify found no face in photo 1: nothing was masked; "
                  "check the pictures before sharing")
    return mask_eyes(img, faces)[0]
