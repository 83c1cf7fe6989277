"""``photokit measure IMAGE``: every registered metric of one photo."""

from __future__ import annotations

import click

from .. import metrics as registry
from ..exports import clinical
from ..io import atomic
from ..measurement.measure import measure
from .options import (
    deidentify_option,
    emit_json,
    fhir_option,
    info,
    json_option,
    max_pixels_option,
    metrics_option,
    mm_per_px_option,
    patient_name_option,
    reference_roi_option,
    refuse_overwriting,
    roi_option,
    subject_option,
)


@click.command("measure")
@click.argument("image", type=click.Path(dir_okay=False))
@roi_option
@reference_roi_option
@mm_per_px_option
@metrics_option
@click.option("--calibration", type=click.Choice(["auto", "checker", "none"]), default="auto",
              show_default=True, help="Colour-card use: auto uses a card when one is found.")
@click.option("--maps", "maps_dir", type=click.Path(file_okay=False), default=None,
              help="Write colour maps (PNG, with colour bars in real units) to this folder.")
@click.option("--zones/--no-zones", "zones", default=None,
              help="Per face zone values (<metric>.<zone>): --zones requires a face (exit 1 "
                   "without one); default: when a face is found.")
@click.option("--features", "with_features", is_flag=True,
              help="With --json: list every pore, spot and line that was counted (full-resolution pixels).")
@click.option("--overlay", "overlay_path", type=click.Path(dir_okay=False), default=None,
              help="Write the photo with the face mesh, irises, zones (hidden ones hatched) and "
                   "the analysed skin's outline drawn (PNG or JPEG).")
@fhir_option
@deidentify_option
@subject_option
@patient_name_option
@json_option
@max_pixels_option
def command(image, roi, reference_roi, mm_per_px, metric_names, calibration, maps_dir, zones, with_features,
            overlay_path, fhir_path, deidentify, subject, patient_name, as_json, max_pixels):
    """Redness, pigment, texture, pores and spots of one photo, in physical units."""
    refuse_overwriting([image, roi, reference_roi], {"--overlay": overlay_path, "--fhir": fhir_path})
    plan = clinical.Plan(fhir=fhir_path, deidentify=deidentify, subject=subject,
                         patient_name=patient_name, warn=lambda line: info(f"photokit: {line}"))
    plan.check()
    m = measure(image, roi=roi, reference_roi=reference_roi, mm_per_px=mm_per_px,
                calibration=calibration, metrics=metric_names, max_pixels=max_pixels, zones=zones)
    shown = clinical.deidentified_measurement(m) if deidentify else m
    if overlay_path:
        atomic.write_image(overlay_path, clinical.overlay(plan, m))
        info(f"wrote {overlay_path}")
    if maps_dir:
        for p in shown.save_maps(maps_dir):
            info(f"wrote {p}")
    for p in clinical.measurement(plan, m, image=image):
        info(f"wrote {p}")
    for w in m.warnings:
        info(f"warning: {w}")
    if as_json:
        doc = shown.to_dict()
        if with_features:
            doc["features"] = m.features()
        emit_json(doc)
        return
    click.echo(f"{shown.image}: calibration {m.calibration.method}, scale {m.scale.source}"
               + (f" ({m.scale.mm_per_px:.4f} mm/px)" if m.scale.mm_per_px else ""))
    for met in registry.registered():
        if met.name in m.metrics:
            v = m.metrics[met.name]
            click.echo(f"  {met.name:<28} {'-' if v is None else f'{v:.3f}':>10} {met.unit}")
    for zone, z in m.zones.items():
        shown = [f"{met.name.split('.', 1)[1]} {m.metrics[f'{met.name}.{zone}']:.2f}"
                 for met in registry.registered()
                 if met.zone == "mean" and m.metrics.get(f"{met.name}.{zone}") is not None]
        text = ", ".join(shown) if z["reason"] is None else f"blank: {z['reason']}"
        click.echo(f"  zone {zone:<18} {text}")
