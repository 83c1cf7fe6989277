"""``photokit face IMAGE [--overlay PNG] [--json]``: mesh, irises, pose, scale and zones."""

from __future__ import annotations

import click

from ..errors import PhotokitError
from ..faces.deidentify import mask_eyes
from ..faces.photo_faces import face
from ..io import atomic
from .options import deidentify_option, emit_json, info, json_option, max_pixels_option, refuse_overwriting


@click.command("face")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--overlay", "overlay_path", type=click.Path(dir_okay=False), default=None,
              help="Write the photo with mesh, irises, zones and pose drawn (PNG or JPEG).")
@deidentify_option
@json_option
@max_pixels_option
def command(image, overlay_path, deidentify, as_json, max_pixels):
    """Find every face in IMAGE: 468-point mesh, irises, head pose, skin zones, scale.

    Exits 1 with one line on stderr when there is no face.
    """
    refuse_overwriting([image], {"--overlay": overlay_path})
    name = "photo 1" if deidentify else str(image)
    try:
        found = face(image, max_pixels=max_pixels)
    except PhotokitError as exc:
        raise PhotokitError(exc.cause, name) from None
    faces, scale = found.faces, found.scale
    if not faces:
        raise PhotokitError("no face found", name)
    if overlay_path:
        pixels = mask_eyes(found.photo.pixels, faces)[0] if deidentify else None
        atomic.write_image(overlay_path, found.overlay(pixels))
        info(f"wrote {overlay_path}")
    if as_json:
        emit_json(dict(found.to_dict(), image=name))
        return
    click.echo(f"{len(faces)} face(s); scale {scale.mm_per_px:.4f} mm/px from {scale.source}"
               + (f" ({scale.reason})" if scale.reason else ""))
    for k, f in enumerate(faces):
        hidden = [z for z, v in f.visible.items() if v < 0.5]
        click.echo(f"face {k + 1}: box {[round(v) for v in f.box]}, score {f.score:.2f}, "
                   f"yaw {f.yaw:+.1f} pitch {f.pitch:+.1f} roll {f.roll:+.1f}, iris "
                   f"{f.iris_left.diameter_px:.1f}/{f.iris_right.diameter_px:.1f} px"
                   + (f", hidden zones: {', '.join(hidden)}" if hidden else ""))
