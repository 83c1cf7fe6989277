"""``photokit series MANIFEST_OR_FOLDER [--report HTML] [--csv FILE] [--json]``."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from .options import (
    clinical_options,
    emit_json,
    info,
    json_option,
    max_pixels_option,
    mm_per_px_option,
    refuse_overwriting,
)


def summary_lines(s) -> list[str]:
    """Plain-text summary of an analysed series (for the terminal)."""
    lines = [f"{s.source}: {len(s.entries)} photos, {len(s.treatments)} session(s), "
             f"baseline {s.baseline.photo}"]
    for v in s.visits:
        if v.method == "baseline":
            continue
        dst = ("" if v.days_since_treatment is None
               else f" day {v.days_since_treatment:.1f} after S{v.treatment_index + 1}")
        if v.ok:
            via = f" via {v.via}" if v.via else ""
            lines.append(f"  {v.photo:<28} {v.kind:<9}{dst}  aligned {v.method}{via} ({v.confidence:.2f})")
        else:
            lines.append(f"  {v.photo:<28} {v.kind:<9}{dst}  EXCLUDED: {v.reason}")
    for r in s.recovery:
        f = r.fit
        if f.ok:
            ci = "" if f.tau_ci is None else f" (95% CI {f.tau_ci[0]:.1f}-{f.tau_ci[1]:.1f})"
            back = ("never (stays above)" if f.days_to_baseline is None
                    else f"{f.days_to_baseline:.1f} d")
            lines.append(f"recovery S{r.treatment_index + 1} {f.metric}: tau {f.tau_days:.2f} d{ci}, "
                         f"back to baseline {back}")
        else:
            lines.append(f"recovery S{r.treatment_index + 1} {f.metric}: no fit ({f.reason})")
    for name, t in s.trend.items():
        if t.percent_change is None:
            continue
        word = ("not judged" if t.significant is None else "no detectable change" if not t.significant
                else "improved" if t.improved else "changed" if t.better == "neither" else "worse")
        lines.append(f"trend {name}: {t.percent_change:+.1f}% ({word})")
    for f in s.flags:
        lines.append(f"FLAG {f['kind']}: {f['message']}")
    lines += [f"note: {w}" for w in s.warnings]
    return lines


@click.command("series")
@click.argument("source", type=click.Path(exists=True))
@click.option("--report", "report", type=click.Path(dir_okay=False), default=None,
              help="Write the self-contained HTML series report here.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Write one row per photo (metrics and deltas) as CSV.")
@click.option("--roi", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Skin to follow, in BASELINE coordinates (mask PNG or polygon JSON).")
@click.option("--reference-roi", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Untreated reference skin in BASELINE coordinates, for colour normalisation.")
@click.option("--acute-days", type=click.FloatRange(min=0), default=None,
              help="Days after a session left out of improvement trends (default 14).")
@clinical_options
@mm_per_px_option
@max_pixels_option
@json_option
def command(source, report, csv_path, roi, reference_roi, acute_days, pdf_path, fhir_path, dicom_dir,
            deidentify, subject, patient_name, mm_per_px, max_pixels, as_json):
    """Analyse a treatment series: alignment into the baseline frame, redness recovery after
    each session, and improvement at visits outside the acute window.

    SOURCE is a manifest CSV (photo,date,kind[,subject,area,roi,note]) or a folder of
    photos (its manifest.csv, or ordered by EXIF capture time).
    """
    from ..exports import clinical
    from ..series.course import ACUTE_DAYS, MANIFEST_NAMES, Series

    plan = clinical.Plan(report=report, pdf=pdf_path, fhir=fhir_path, dicom=dicom_dir,
                         deidentify=deidentify, subject=subject, patient_name=patient_name,
                         warn=lambda line: info(f"photokit: {line}"))
    plan.check()
    scrubbed = []       # de-identifying: progress lines name no photo either

    def say(line: str) -> None:
        info(scrubbed[0].text(line) if scrubbed else line)

    s = Series(source, roi=roi, reference_roi=reference_roi, mm_per_px=mm_per_px,
               acute_days=ACUTE_DAYS if acute_days is None else acute_days,
               max_pixels=max_pixels, progress=say, hide_eyes=deidentify)
    if deidentify:
        scrubbed.append(clinical.scrubber_of(s))
    manifests = [Path(source) / n for n in MANIFEST_NAMES] if Path(source).is_dir() else []
    refuse_overwriting([source, roi, reference_roi, s.roi, s.reference_roi, *manifests]
                       + [e.source for e in s.entries],
                       {"--report": report, "--csv": csv_path, "--pdf": pdf_path, "--fhir": fhir_path})
    s.analyse()
    page = s.report_html() if report or pdf_path or dicom_dir else None
    csv_text = None
    if csv_path:
        with tempfile.TemporaryDirectory(prefix="photokit-") as tmp:
            csv_text = s.to_csv(Path(tmp) / "series.csv").read_text(encoding="utf-8")
    for p in clinical.series(plan, s, page=page, csv_text=csv_text, csv_path=csv_path):
        info(f"wrote {p}")
    scrub = clinical.scrubber_of(s) if deidentify else None
    if as_json:
        doc = s.to_dict()
        emit_json(scrub.doc(doc) if scrub else doc)
        return
    for line in summary_lines(s):
        click.echo(scrub.text(line) if scrub else line)
