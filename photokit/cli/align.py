"""``photokit align BEFORE AFTER [-o ALIGNED] [--overlay PNG] [--roi R] [--points P.json] [--json]``."""

from __future__ import annotations

import json
import sys

import click
import numpy as np

from ..comparison.compare import LOW_CONFIDENCE
from ..errors import PhotokitError
from ..faces.deidentify import mask_photo
from ..io import atomic
from ..io.photo import load
from ..registration.align import align
from .options import (
    deidentify_option,
    emit_json,
    info,
    json_option,
    max_pixels_option,
    refuse_overwriting,
    roi_option,
)


def overlay(before_rgb: np.ndarray, aligned_rgb: np.ndarray, valid: np.ndarray, *,
            tiles: int = 8) -> np.ndarray:
    """A visual check: checkerboard of BEFORE and aligned AFTER (uint8 RGB).

    Squares alternate between the two photos, so any misalignment shows as broken edges
    at the square borders; where AFTER does not reach, BEFORE is shown darkened.
    """
    h, w = before_rgb.shape[:2]
    side = max(8, max(h, w) // tiles)
    yy, xx = np.mgrid[0:h, 0:w]
    checker = ((yy // side + xx // side) % 2).astype(bool) & valid
    out = np.where(checker[..., None], aligned_rgb, before_rgb)
    out[~valid] = (out[~valid] * 0.4).astype(out.dtype)
    return out


@click.command("align")
@click.argument("before", type=click.Path(dir_okay=False))
@click.argument("after", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "aligned", type=click.Path(dir_okay=False), default=None,
              help="Write AFTER resampled onto BEFORE's pixel grid (full alignment).")
@click.option("--overlay", "overlay_path", type=click.Path(dir_okay=False), default=None,
              help="Write a checkerboard of BEFORE and aligned AFTER for a visual check.")
@roi_option
@click.option("--no-refine", is_flag=True, help="Global model only (no ECC, no dense field).")
@click.option("--points", "points_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help='JSON {"points": [[x, y], ...]} in BEFORE pixels: carried into AFTER ("points" '
                   "in the --json output, null outside the region the alignment vouches for).")
@deidentify_option
@json_option
@max_pixels_option
def command(before, after, aligned, overlay_path, roi, no_refine, points_path, deidentify, as_json,
            max_pixels):
    """Align AFTER onto BEFORE, following the subject (face, ROI), not the room.

    Exits 1 with one line on stderr when the alignment cannot be trusted (with --json
    the document is still printed, with status "failed").
    """
    refuse_overwriting([before, after, roi, points_path], {"--output": aligned, "--overlay": overlay_path})
    points = _read_points(points_path) if points_path else None
    pb = load(before, max_pixels=max_pixels)
    pa = load(after, max_pixels=max_pixels)
    result = align(pb, pa, roi=roi, refine=not no_refine)
    if result.ok and (aligned or overlay_path):
        warped = result.warp(pa.pixels)
        if deidentify:
            warped, n = mask_photo(warped)
            if n == 0:
                info("photokit: warning: --deidentify found no face in the aligned photo: nothing "
                     "was masked; check the pictures before sharing")
        if aligned:
            atomic.write_image(aligned, warped, quality=95)
            info(f"wrote {aligned}")
        if overlay_path:
            valid = result.valid_mask()
            base = pb.rgb8()
            if deidentify:
                base, n = mask_photo(base)
                if n == 0:
                    info("photokit: warning: --deidentify found no face in the before photo: "
                         "nothing was masked; check the pictures before sharing")
            img = overlay(base, _rgb8(warped), valid)
            atomic.write_image(overlay_path, img)
            info(f"wrote {overlay_path}")
    if result.ok:
        low = ([f"alignment confidence is low ({result.confidence:.2f}): the same pixel may not be the "
                "same point in both photos; check the overlay"] if result.confidence < LOW_CONFIDENCE else [])
        for w in low + list(result.warnings):
            info(f"photokit: warning: {w}")
    doc = result.to_dict()
    if points is not None:
        doc["points"] = result.map_points(points)
    if as_json:
        emit_json(doc)
    else:
        d = doc
        if result.ok:
            click.echo(f"ok: {d['model']} on {d['subject']}, confidence {d['confidence']:.2f}, "
                       f"{d['inliers']} inliers, residual {d['residual_px']} px, "
                       f"overlap {d['overlap']:.0%}")
    if not result.ok:
        name = "photo 2" if deidentify else after
        click.echo(f"photokit: {name}: alignment failed: {result.reason}", err=True)
        sys.exit(1)


def _read_points(path) -> np.ndarray:
    """``{"points": [[x, y], ...]}`` from a JSON file, as an (N, 2) array."""
    try:
        with open(path, encoding="utf-8") as fh:
            pts = np.asarray(json.load(fh)["points"], np.float64).reshape(-1, 2)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PhotokitError(f'cannot read points: expected {{"points": [[x, y], ...]}} ({exc})',
                            path) from exc
    return pts


def _rgb8(px: np.ndarray) -> np.ndarray:
    if px.dtype == np.uint16:
        px = (px >> 8).astype(np.uint8)
    if px.ndim == 2:
        px = np.repeat(px[..., None], 3, axis=2)
    return px
