"""``photokit measure IMAGE``: every registered metric of one photo."""

from __future__ import annotations

import click

from .. import metrics as registry
from ..measurement.measure import measure
from .options import (
    emit_json,
    info,
    json_option,
    max_pixels_option,
    mm_per_px_option,
    reference_roi_option,
    roi_option,
)


@click.command("measure")
@click.argument("image", type=click.Path(dir_okay=False))
@roi_option
@reference_roi_option
@mm_per_px_option
@click.option("--calibration", type=click.Choice(["auto", "checker", "none"]), default="auto",
              show_default=True, help="Colour-card use: auto uses a card when one is found.")
@click.option("--maps", "maps_dir", type=click.Path(file_okay=False), default=None,
              help="Write colour maps (PNG, with colour bars in real units) to this folder.")
@json_option
@max_pixels_option
def command(image, roi, reference_roi, mm_per_px, calibration, maps_dir, as_json, max_pixels):
    """Redness, pigment, texture, pores and spots of one photo, in physical units."""
    m = measure(image, roi=roi, reference_roi=reference_roi, mm_per_px=mm_per_px,
                            calibration=calibration, max_pixels=max_pixels)
    if maps_dir:
        for p in m.save_maps(maps_dir):
            info(f"wrote {p}")
    for w in m.warnings:
        info(f"warning: {w}")
    if as_json:
        emit_json(m.to_dict())
        return
    click.echo(f"{m.image}: calibration {m.calibration.method}, scale {m.scale.source}"
               + (f" ({m.scale.mm_per_px:.4f} mm/px)" if m.scale.mm_per_px else ""))
    for met in registry.registered():
        if met.name in m.metrics:
            v = m.metrics[met.name]
            click.echo(f"  {met.name:<28} {'-' if v is None else f'{v:.3f}':>10} {met.unit}")
