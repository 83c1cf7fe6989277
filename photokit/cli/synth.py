"""``photokit synth``: ground-truth synthetic skin photos, pairs and treatment series."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import emit_json, info

_ext_ok = (".jpg", ".jpeg", ".png")


def _parse_set(items) -> dict:
    """``KEY=VALUE`` pairs (VALUE as JSON when it parses, else a string; lists -> tuples)."""
    out = {}
    for it in items:
        if "=" not in it:
            raise click.BadParameter(f"expected KEY=VALUE, got {it!r}", param_hint="--set")
        k, v = it.split("=", 1)
        try:
            val = json.loads(v)
        except json.JSONDecodeError:
            val = v
        out[k.strip().replace("-", "_")] = tuple(val) if isinstance(val, list) else val
    return out


set_option = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                          help="Any SkinParams or Camera field, e.g. --set brown_spots=5 "
                               "--set 'brown_spot_radius_mm=[1,3]' (repeatable).")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Which skin.")
size_option = click.option("--size", default="1600x1200", show_default=True, metavar="WxH",
                           help="Photo size in pixels.")
mm_option = click.option("--mm-per-px", type=click.FloatRange(min=0.005, max=1.0), default=0.07,
                         show_default=True, help="Scale of the canonical frame.")
card_option = click.option("--card/--no-card", default=None,
                           help="ColorChecker 24 in frame (default: on for series, off for photo/pair).")
quality_option = click.option("--quality", type=click.IntRange(1, 100), default=None,
                              help="JPEG quality (default 92 for photos, 90 for series).")


def _size(s: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WxH, got {s!r}", param_hint="--size") from None
    if w < 64 or h < 64:
        raise click.BadParameter("width and height must be at least 64", param_hint="--size")
    return w, h


def _skin_kwargs(size, mm_per_px, card, ita, erythema, roughness, brown_spots, bleeding) -> dict:
    w, h = _size(size)
    kw = {"width": w, "height": h, "mm_per_px": mm_per_px}
    for k, v in (("card", card), ("ita", ita), ("erythema", erythema), ("roughness", roughness),
                 ("brown_spots", brown_spots), ("bleeding", bleeding)):
        if v is not None:
            kw[k] = v
    return kw


@click.group("synth")
def command():
    """Ground-truth synthetic skin photos, before/after pairs and treatment series.

    Every photo is written with its truth beside it (NAME.json): the homography to the
    baseline frame, true a*, erythema and melanin indices of the regions, spots, lines,
    pores, the illumination and the card corners.
    """


@command.command("photo")
@click.argument("out", type=click.Path(dir_okay=False))
@seed_option
@size_option
@mm_option
@card_option
@click.option("--ita", type=float, default=None, help="Skin tone as ITA, deg (60 very light .. -40 dark).")
@click.option("--erythema", type=float, default=None, help="Haemoglobin OD added over the treated region.")
@click.option("--roughness", type=float, default=None, help="Micro-relief amplitude (1 = normal).")
@click.option("--brown-spots", type=int, default=None, help="Number of pigmented spots.")
@click.option("--bleeding", type=float, default=None, help="Pinpoint marks per cm^2 (treatment day).")
@click.option("--rotation", type=float, default=0.0, show_default=True, help="Camera rotation, degrees.")
@click.option("--scale", type=float, default=1.0, show_default=True, help="Magnification.")
@click.option("--exposure", type=float, default=1.0, show_default=True, help="Exposure gain.")
@click.option("--cct", type=float, default=6504.0, show_default=True, help="Light colour temperature, K.")
@click.option("--random-camera", is_flag=True, help="A random mild pose and light (seeded).")
@click.option("--ideal", is_flag=True, help="No blur, noise or JPEG (write .png).")
@quality_option
@set_option
def photo_cmd(out, seed, size, mm_per_px, card, ita, erythema, roughness, brown_spots, bleeding,
              rotation, scale, exposure, cct, random_camera, ideal, quality, sets):
    """Render one photo to OUT (.jpg or .png) and its truth to OUT.json."""
    from ..synth import Camera, render_skin
    from ..synth.skin import make_rng

    out = Path(out)
    if out.suffix.lower() not in _ext_ok:
        raise click.BadParameter("OUT must end in .jpg, .jpeg or .png", param_hint="OUT")
    if ideal and out.suffix.lower() != ".png":
        raise click.BadParameter("--ideal writes lossless pixels: use a .png OUT", param_hint="OUT")
    # the truth is OUT.json: when OUT is new and a photo of its name in another format has
    # that truth, it is that photo's (a photo made again keeps its own)
    others = [out.with_suffix(x) for x in _ext_ok if x != out.suffix.lower()]
    sibling = None if out.exists() or not out.with_suffix(".json").exists() else next(
        (o for o in others if o.exists()), None)
    if sibling is not None:
        raise click.BadParameter(f"{out.with_suffix('.json')} is the truth of {sibling}: writing {out} "
                                 "would replace it; choose another name", param_hint="OUT")
    kw = _skin_kwargs(size, mm_per_px, card, ita, erythema, roughness, brown_spots, bleeding)
    cam = Camera.random(make_rng(seed, 40_000)) if random_camera else Camera(
        rotation_deg=rotation, scale=scale, exposure=exposure, cct_k=cct)
    if ideal:
        cam = cam.replace(blur_px=0.0, noise_read=0.0, noise_shot=0.0)
    if ideal or out.suffix.lower() == ".png":
        cam = cam.replace(jpeg_quality=None)
    elif quality is not None:
        cam = cam.replace(jpeg_quality=quality)
    try:
        im = render_skin(None, seed, camera=cam, **kw, **_parse_set(sets))
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    im.save(out)
    info(f"wrote {out} and {out.with_suffix('.json')}")


@command.command("pair")
@click.argument("outdir", type=click.Path(file_okay=False))
@seed_option
@size_option
@mm_option
@card_option
@click.option("--erythema", type=float, default=None, help="AFTER: haemoglobin OD over the treated region.")
@click.option("--roughness", type=float, default=None, help="AFTER: micro-relief amplitude.")
@click.option("--exposure", type=float, default=None, help="AFTER: exposure gain.")
@click.option("--cct", type=float, default=None, help="AFTER: light colour temperature, K.")
@click.option("--no-pose", is_flag=True, help="AFTER keeps BEFORE's pose.")
@quality_option
@set_option
@click.option("--json", "as_json", is_flag=True, help="Print the pair truth (homography, delta) as JSON.")
def pair_cmd(outdir, seed, size, mm_per_px, card, erythema, roughness, exposure, cct, no_pose, quality,
             sets, as_json):
    """Write before.jpg, after.jpg (+ truth JSON) and pair.json (AFTER->BEFORE homography, true deltas).

    --set applies to AFTER only (SkinParams or Camera fields).
    """
    from ..io.atomic import write_text
    from ..synth import Camera, SkinParams, make_pair
    from ..synth.truth import jsonable

    w, h = _size(size)
    p = SkinParams(width=w, height=h, mm_per_px=mm_per_px, card=bool(card))
    changes = _parse_set(sets)
    for k, v in (("erythema", erythema), ("roughness", roughness), ("exposure", exposure), ("cct_k", cct)):
        if v is not None:
            changes[k] = v
    cb = Camera() if quality is None else Camera(jpeg_quality=quality)
    try:
        pair = make_pair(seed, p, camera_before=cb, pose=not no_pose, **changes)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    out = Path(outdir)
    pair.before.save(out / "before.jpg")
    pair.after.save(out / "after.jpg")
    doc = {"before": "before.jpg", "after": "after.jpg",
           "homography": pair.homography.tolist(),
           "homography_convention": "[xb, yb, 1] ~ H @ [xa, ya, 1] (AFTER pixel -> BEFORE pixel)",
           "delta": pair.delta, "gain_ratio": pair.gain_ratio.tolist()}
    write_text(out / "pair.json", json.dumps(jsonable(doc), indent=1))
    info(f"wrote {out}/before.jpg, after.jpg, their truth JSON and pair.json")
    if as_json:
        emit_json(jsonable(doc))


@command.command("series")
@click.argument("outdir", type=click.Path(file_okay=False))
@seed_option
@size_option
@mm_option
@card_option
@click.option("--sessions", type=click.IntRange(1, 20), default=4, show_default=True)
@click.option("--interval", "interval_days", type=click.FloatRange(min=1), default=28, show_default=True,
              help="Days between sessions.")
@click.option("--visit-days", default="0,2,5", show_default=True,
              help="Photo days after each session (0 = right after it).")
@click.option("--final-visit", "final_visit_days", type=click.FloatRange(min=1), default=30,
              show_default=True, help="Follow-up photo this many days after the last session.")
@click.option("--tau", "tau_days", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
              help="Time constant of the redness fading, days.")
@click.option("--dose", type=click.FloatRange(min=0), default=0.35, show_default=True,
              help="Haemoglobin OD of the erythema right after a session.")
@click.option("--bleeding", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Pinpoint marks per cm^2 on the treatment day.")
@click.option("--improvement", type=click.FloatRange(0, 0.9), default=None,
              help="Set texture, pore, spot and wrinkle improvement at once (fraction).")
@click.option("--texture-improvement", type=click.FloatRange(0, 0.9), default=None,
              help="Final fall of roughness when fully remodelled (default 0.25).")
@click.option("--pore-improvement", type=click.FloatRange(0, 0.9), default=None,
              help="Final fall of pore depth (default 0.25).")
@click.option("--spot-improvement", type=click.FloatRange(0, 0.9), default=None,
              help="Final fall of spot contrast (default 0.30).")
@click.option("--remodel-days", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Time constant of the improvement after each session.")
@click.option("--flat", is_flag=True, help="No treatment effect: only light and pose change.")
@click.option("--pih", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Complication: melanin OD of post-inflammatory hyperpigmentation after session 1.")
@click.option("--start", default="2026-01-05", show_default=True, help="Date of the first session.")
@click.option("--camera-strength", type=click.FloatRange(0, 2), default=1.0, show_default=True,
              help="Scale of the pose and light changes between photos.")
@click.option("--subject", default="synth-001", show_default=True)
@click.option("--area", default="cheek", show_default=True)
@click.option("--contact-sheet/--no-contact-sheet", default=True, show_default=True)
@quality_option
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Any SkinParams field, e.g. --set ita=-20 --set brown_spots=20 (repeatable).")
def series_cmd(outdir, seed, size, mm_per_px, card, sessions, interval_days, visit_days, final_visit_days,
               tau_days, dose, bleeding, improvement, texture_improvement, pore_improvement, spot_improvement,
               remodel_days, flat, pih, start, camera_strength, subject, area, contact_sheet, quality, sets):
    """Write a microneedling course to OUTDIR: photos, truth JSON, manifest.csv, series.json."""
    from datetime import date

    from ..synth import SkinParams, make_series

    try:
        days = tuple(float(v) for v in visit_days.split(",") if v.strip())
        start_d = date.fromisoformat(start)
    except ValueError as exc:
        raise click.UsageError(f"--visit-days / --start: {exc}") from None
    w, h = _size(size)
    skin_kw = _parse_set(sets)
    try:
        p = SkinParams(width=w, height=h, mm_per_px=mm_per_px, card=True if card is None else card, **skin_kw)
    except TypeError as exc:
        raise click.UsageError(str(exc)) from None
    plan = {"sessions": sessions, "interval_days": interval_days, "visit_days": days,
            "final_visit_days": final_visit_days, "tau_days": tau_days, "dose": dose, "bleeding": bleeding,
            "remodel_days": remodel_days, "flat": flat, "pih": pih, "start": start_d}
    for k, v in (("texture_improvement", texture_improvement), ("pore_improvement", pore_improvement),
                 ("spot_improvement", spot_improvement), ("wrinkle_improvement", None)):
        v = improvement if v is None else v
        if v is not None:
            plan[k] = v
    res = make_series(outdir, seed, params=p, jpeg_quality=90 if quality is None else quality,
                      subject=subject, area=area, contact_sheet=contact_sheet, **plan)
    info(f"wrote {len(res.photos)} photos, manifest.csv and series.json to {outdir}")
