"""``photokit check IMAGE...``: capture quality and colour-card calibration."""

from __future__ import annotations

import click

from ..measurement import quality
from .options import emit_json, json_option, max_pixels_option


@click.command("check")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
@max_pixels_option
def command(images, as_json, max_pixels):
    """Capture quality of each photo (sharpness, exposure, cast, resolution, noise).

    Exits 1 at the first photo that cannot be read, before printing anything.
    """
    results = [quality.check(path, max_pixels=max_pixels) for path in images]
    if as_json:
        emit_json([r.to_dict() for r in results])
        return
    for r in results:
        q = r.quality
        click.echo(f"{r.image}: {'OK' if q.ok else 'NOT OK'}")
        for name, c in q.checks.items():
            val = "-" if c.value is None else c.value
            click.echo(f"  {name:<19} {c.verdict:<5} {val} {c.unit}".rstrip()
                       + (f"  ({c.note})" if c.note else ""))
        cal = r.calibration
        extra = f", mean dE2000 {cal['delta_e_mean']:.2f}" if cal.get("delta_e_mean") is not None else ""
        click.echo(f"  calibration         {cal['method']}{extra}")
