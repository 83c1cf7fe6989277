"""``photokit compare BEFORE AFTER``: what changed between two visits, and is it real."""

from __future__ import annotations

import os

import click

from .options import (
    clinical_options,
    emit_json,
    info,
    json_option,
    max_pixels_option,
    mm_per_px_option,
    reference_roi_option,
    refuse_overwriting,
    roi_option,
)


@click.command("compare")
@click.argument("before", type=click.Path(dir_okay=False))
@click.argument("after", type=click.Path(dir_okay=False))
@roi_option
@reference_roi_option
@mm_per_px_option
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Write a self-contained HTML report (pictures embedded; opens offline).")
@click.option("--blur-eyes", is_flag=True,
              help="Cover eyes and eyebrows in every picture of the report with an opaque mask "
                   "(kept for old scripts; --deidentify does this and more).")
@click.option("--note", "notes", multiple=True,
              help="A note to print in the report (repeatable).")
@clinical_options
@json_option
@max_pixels_option
def command(before, after, roi, reference_roi, mm_per_px, report_path, blur_eyes, notes, pdf_path,
            fhir_path, dicom_dir, deidentify, subject, patient_name, as_json, max_pixels):
    """Compare BEFORE and AFTER over the same skin.

    AFTER is aligned onto BEFORE; the ROI (in BEFORE's coordinates; default: the skin
    BEFORE shows) is carried onto AFTER, both are measured, and each change is judged
    against the metric's noise floor. Exits 1, writing nothing, when the photos cannot
    be aligned with confidence.
    """
    from ..comparison.compare import compare
    from ..exports import clinical

    refuse_overwriting([before, after, roi, reference_roi],
                       {"--report": report_path, "--pdf": pdf_path, "--fhir": fhir_path})
    plan = clinical.Plan(report=report_path, pdf=pdf_path, fhir=fhir_path, dicom=dicom_dir,
                         deidentify=deidentify, subject=subject, patient_name=patient_name,
                         warn=lambda line: info(f"photokit: {line}"))
    plan.check()
    hide_eyes = blur_eyes or deidentify
    result = compare(before, after, roi=roi, reference_roi=reference_roi, mm_per_px=mm_per_px,
                     max_pixels=max_pixels)
    page = (result.report_html(hide_eyes=hide_eyes, notes=notes)
            if report_path or pdf_path or dicom_dir else None)
    for p in clinical.comparison(plan, result, before=before, after=after,
                                 others=[r for r in (roi, reference_roi) if r], page=page):
        if os.fspath(p) != report_path:
            info(f"photokit: wrote {p}")
    for w in result.warnings:
        info(f"photokit: warning: {w}")
    if report_path and hide_eyes and not result.view(hide_eyes=True, notes=notes).deidentified:
        info("photokit: warning: no face found: eyes and eyebrows were not covered")
    if report_path:
        info(f"photokit: report written to {report_path}")
    if as_json:
        doc = result.to_dict()
        if report_path:
            doc["report"] = report_path
        if deidentify:
            from ..exports.privacy import Scrubber

            doc = Scrubber([before, after], [r for r in (roi, reference_roi) if r]).doc(doc)
        emit_json(doc)
        return
    al = result.alignment
    click.echo(f"alignment: {al.status}, confidence {al.confidence:.2f}, overlap {al.overlap:.0%}")
    verdicts = result.verdicts()
    width = max((len(m.name) for m in result.metrics), default=10)
    for m in result.metrics:
        b, a, d = (result.before.metrics.get(m.name), result.after.metrics.get(m.name),
                   result.delta.get(m.name))
        if d is None:
            click.echo(f"  {m.name:<{width}}  not measured")
            continue
        floor = result.noise_floor.get(m.name)
        # without a floor the verdict itself says why ("Not judged: ...")
        noise = f" (noise +/-{floor:.3g})" if floor is not None else ""
        click.echo(f"  {m.name:<{width}}  {b:10.3f} -> {a:10.3f}  change {d:+9.3f} {m.unit:<7}{noise}  "
                   f"{verdicts[m.name]}")
