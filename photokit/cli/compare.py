"""``photokit compare BEFORE AFTER``: what changed between two visits, and is it real."""

from __future__ import annotations

import click

from .options import (
    emit_json,
    info,
    json_option,
    max_pixels_option,
    mm_per_px_option,
    reference_roi_option,
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
              help="Blur the eye region in every picture of the report (de-identification).")
@click.option("--note", "notes", multiple=True,
              help="A note to print in the report (repeatable).")
@json_option
@max_pixels_option
def command(before, after, roi, reference_roi, mm_per_px, report_path, blur_eyes, notes, as_json,
            max_pixels):
    """Compare BEFORE and AFTER over the same skin.

    AFTER is aligned onto BEFORE; the ROI (in BEFORE's coordinates; default: the skin
    BEFORE shows) is carried onto AFTER, both are measured, and each change is judged
    against the metric's noise floor. Exits 1, writing nothing, when the photos cannot
    be aligned with confidence.
    """
    from ..comparison.compare import compare

    result = compare(before, after, roi=roi, reference_roi=reference_roi, mm_per_px=mm_per_px,
                     max_pixels=max_pixels)
    if report_path:
        result.write_report(report_path, blur_eyes=blur_eyes, notes=notes)
    for w in result.warnings:
        info(f"photokit: warning: {w}")
    if report_path and blur_eyes and not result.view(blur_eyes=True, notes=notes).deidentified:
        info("photokit: warning: --blur-eyes found no face or eyes: nothing was blurred")
    if report_path:
        info(f"photokit: report written to {report_path}")
    if as_json:
        doc = result.to_dict()
        if report_path:
            doc["report"] = report_path
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
        click.echo(f"  {m.name:<{width}}  {b:10.3f} -> {a:10.3f}  change {d:+9.3f} {m.unit:<7} "
                   f"(noise +/-{m.mdc:g})  {verdicts[m.name]}")
