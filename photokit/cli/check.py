"""``photokit check IMAGE...``: capture quality and colour-card calibration."""

from __future__ import annotations

import sys
import traceback

import click

from ..errors import PhotokitError
from ..measurement import quality
from .options import emit_json, json_option, max_pixels_option


@click.command("check")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option
@max_pixels_option
def command(images, as_json, max_pixels):
    """Capture quality of each photo (sharpness, exposure, cast, resolution, noise).

    Every photo is checked: one that cannot be read is named on stderr with the cause (its
    JSON entry is ``{"image": ..., "quality": null, "calibration": null, "error": ...}``)
    and the others are reported; the exit code is then 1.
    """
    results, failed = [], []
    for path in images:
        try:
            results.append(quality.check(path, max_pixels=max_pixels))
        except PhotokitError as exc:
            results.append((path, exc))
            failed.append((path, exc))
    if as_json:
        emit_json([{"image": r[0], "quality": None, "calibration": None, "error": r[1].cause}
                   if isinstance(r, tuple) else r.to_dict() for r in results])
    else:
        for r in results:
            if isinstance(r, tuple):
                click.echo(f"{r[0]}: CANNOT BE READ ({r[1].cause})")
            else:
                _print(r)
    verbose = bool((click.get_current_context().find_root().obj or {}).get("verbose"))
    for path, exc in failed:
        if verbose:   # -v: the traceback too, as for any other command's error
            traceback.print_exception(exc)
        click.echo(f"photokit: {path}: {exc.cause}", err=True)
    if failed:
        sys.exit(1)


def _print(r) -> None:
    q = r.quality
    click.echo(f"{r.image}: {'OK' if q.ok else 'NOT OK'}")
    for name, c in q.checks.items():
        val = "-" if c.value is None else c.value
        click.echo(f"  {name:<19} {c.verdict:<5} {val} {c.unit}".rstrip()
                   + (f"  ({c.note})" if c.note else ""))
    cal = r.calibration
    extra = f", mean dE2000 {cal['delta_e_mean']:.2f}" if cal.get("delta_e_mean") is not None else ""
    click.echo(f"  calibration         {cal['method']}{extra}")
