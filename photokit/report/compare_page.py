"""The compare report: what a comparison shows, built from its numbers and photos.

`build_view` turns a `~photokit.comparison.compare.Comparison` into a `CompareView`
(every picture as an array on BEFORE's display grid: the aligned pair, map pairs of the
metrics with a `~photokit.metrics.registry.Panel`, matched spots, tables and notes);
`render_compare` writes the self-contained HTML page and `render_compare_notebook` the
Jupyter rendering. The comparison itself only computes numbers.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..comparison.sameskin import calibration_of
from ..faces.deidentify import mask_eyes
from ..faces.mesh import find_faces
from ..imaging.filters import fit_within
from ..io.photo import Photo
from .html import (
    NOTEBOOK_CSS,
    SLIDER_JS,
    MetricRow,
    change_range,
    colourize,
    crop_box,
    escape,
    family_title,
    fit,
    format_value,
    heatmap_figure,
    img_tag,
    key_value_table,
    legend,
    metric_rows,
    metrics_table,
    notes_list,
    page,
    quality_table,
    robust_range,
    section,
    slider,
)


@dataclass
class MapPair:
    """A quantity mapped on BEFORE's display grid, before and after, with its change.

    ``before``/``after`` are float32 maps (NaN where not measured), ``mask`` the skin
    both share; ``delta`` is ``after - before`` smoothed to the scale where it means
    something; ``mdc`` the noise floor of the matching mean metric.
    """

    title: str
    unit: str
    before: np.ndarray
    after: np.ndarray
    delta: np.ndarray
    mask: np.ndarray
    cmap: str
    diff_cmap: str
    low_text: str = ""
    high_text: str = ""
    less_text: str = ""
    more_text: str = ""
    mdc: float | None = None
    note: str = ""


@dataclass
class Spot:
    """A spot on BEFORE's display grid: centre ``(x, y)`` and radius in pixels."""

    x: float
    y: float
    r: float
    status: str  # "new" | "faded" | "kept"


@dataclass
class CompareView:
    """Everything the compare report shows, as arrays on BEFORE's display grid."""

    before_rgb: np.ndarray
    after_rgb: np.ndarray            # AFTER aligned onto BEFORE's grid
    mask: np.ndarray                 # analysed skin (shared), display grid
    valid: np.ndarray                # where AFTER covers BEFORE
    rows: list[MetricRow]
    before_label: str
    after_label: str
    maps: list[MapPair] = field(default_factory=list)
    spots: list[Spot] | None = None  # None: spots not available
    spots_unjudged: str | None = None  # why the spot count's change is not judged, if it is not
    spots_changed: bool | None = True  # a spot count changed beyond its floor (None: not measured)
    warnings: list[str] = field(default_factory=list)
    quality_headers: list[str] = field(default_factory=list)
    quality: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    calibration: list[tuple[str, str]] = field(default_factory=list)
    alignment: list[tuple[str, str]] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    subtitle: str = ""
    notes: list[str] = field(default_factory=list)
    deidentified: str = ""           # description of the masking applied, if any


def _outline(rgb: np.ndarray, mask: np.ndarray, colour=(255, 255, 255)) -> np.ndarray:
    """Draw the outline of `mask` on a copy of `rgb` (the analysed skin)."""
    out = np.ascontiguousarray(rgb.copy())
    m = mask.astype(np.uint8)
    if m.shape != out.shape[:2]:
        m = cv2.resize(m, (out.shape[1], out.shape[0]), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    t = max(1, round(max(out.shape[:2]) / 500))
    cv2.drawContours(out, contours, -1, (0, 0, 0), t + 2, cv2.LINE_AA)
    cv2.drawContours(out, contours, -1, colour, t, cv2.LINE_AA)
    return out


#: The counts whose change the spot panel shows as spots that appeared or faded.
SPOT_COUNTS = ("spots.count", "spots.red_count")
SPOT_COLOURS = {"new": (230, 90, 40), "faded": (40, 170, 110), "kept": (240, 240, 240)}


def spots_overlay(rgb: np.ndarray, spots: Sequence[Spot]) -> np.ndarray:
    """Circles on a copy of `rgb`: new spots orange, faded green, unchanged white."""
    out = np.ascontiguousarray(rgb.copy())
    t = max(2, round(max(out.shape[:2]) / 350))
    for s in sorted(spots, key=lambda s: s.status == "kept", reverse=True):
        c = (int(round(s.x)), int(round(s.y)))
        r = max(3 * t, int(round(s.r * 1.6 + 2 * t)))
        cv2.circle(out, c, r, (0, 0, 0), t + 2, cv2.LINE_AA)
        cv2.circle(out, c, r, SPOT_COLOURS.get(s.status, (255, 255, 0)), t, cv2.LINE_AA)
    return out


def _summary_cards(rows: Sequence[MetricRow]) -> str:
    """One card per family: the most telling metric of each (the first significant, else
    the first judged, else the first measured), core (SPEC) measures before the others;
    the changes counted among the judged measures, and the measured-but-unjudged ones."""
    fams: dict[str, list[MetricRow]] = {}
    for r in sorted(rows, key=lambda r: not r.core):
        fams.setdefault(r.name.split(".", 1)[0], []).append(r)
    cards = []
    for fam, rs in fams.items():
        sig = [r for r in rs if r.verdict.tone in ("better", "worse", "changed")]
        judged = [r for r in rs if r.verdict.tone != "na"]
        unjudged = [r for r in rs if r.verdict.tone == "na" and r.delta is not None]
        # the most telling: a change, else a judged measure, else a measured one
        r = sig[0] if sig else judged[0] if judged else unjudged[0] if unjudged else rs[0]
        v = r.verdict
        head = v.text
        if v.tone != "na":
            detail = (f": {format_value(r.delta, r.unit, mdc=r.mdc, signed=True)} "
                      f"(noise \u00b1{format_value(r.mdc, r.unit, mdc=r.mdc)})")
        elif r.delta is not None:   # measured on both photos, but no floor holds for it
            # the card's heading says "Not judged"; why goes with the value, in small print
            head, why = v.label, v.reason
            detail = f": {format_value(r.delta, r.unit, signed=True)}, not judged"
            detail += f" ({why})" if why else ""
        else:
            detail = " could not be measured on these photos"
        more = (f" \u00b7 {len(sig)} of {len(judged)} judged measures changed" if len(judged) > 1 else "")
        more += f" \u00b7 {len(unjudged)} not judged" if unjudged and len(rs) > 1 else ""
        cards.append(f'<div class="card {v.tone}"><div class="k">'
                     f'{escape(family_title(fam))}</div>'
                     f'<div class="v">{escape(head)}</div><div class="d">'
                     f'{escape(r.description or r.name)}{escape(detail)}{escape(more)}</div></div>')
    return f'<div class="summary">{"".join(cards)}</div>'


def headline(rows: Sequence[MetricRow]) -> str:
    """One sentence: what changed, controlled for testing many measures at once.

    With the rows' Holm results (`photokit.comparison.sameskin.holm_changes`) a change is
    named only when it stands under Holm's step-down control of the family-wise error
    (5 %) over all measures judged on the pair, and the sentence says so; without them,
    how many measures moved beyond their own noise floor."""
    measured = [r for r in rows if r.verdict.tone != "na"]
    sig = [r for r in measured if r.verdict.tone in ("better", "worse", "changed")]
    if not measured:
        return "No measure could be judged on these photographs."
    tested = [r for r in measured if r.holm is not None]
    control = (f" (Holm correction for judging {len(tested)} measures at once, 5 % family-wise error)"
               if tested else "")
    if tested and sig and not any(r.holm for r in sig):
        return (f"No change stands once {len(tested)} measures are judged at once (Holm correction, "
                f"5 % family-wise error): {len(sig)} moved beyond its own noise floor, as chance "
                "alone does among that many.")
    beyond = len(sig)   # beyond their own floors: what the cards and the table count
    if tested:
        sig = [r for r in sig if r.holm]
    if not sig:
        unjudged = sum(r.delta is not None for r in rows if r.verdict.tone == "na")
        rest = f"; {unjudged} more were measured but not judged (see each)" if unjudged else ""
        return (f"No detectable change: all {len(measured)} measures judged stayed within their "
                f"measurement noise{control}{rest}.")
    better = sum(r.verdict.tone == "better" for r in sig)
    worse = sum(r.verdict.tone == "worse" for r in sig)
    parts = [f"{len(sig)} of {len(measured)} measures changed beyond their measurement noise{control}"]
    if better or worse:
        parts.append(f"({better} better, {worse} worse)")
    extra = beyond - len(sig)
    rest = (f"; {extra} more moved beyond its own noise floor (counted in the cards and the table), "
            "as chance alone can among that many" if extra else "")
    rest += "; the others show no detectable change." if beyond < len(measured) else "."
    return " ".join(parts) + rest


def render_compare(view: CompareView, *, title: str = "Skin comparison",
                   generated: _dt.datetime | None = None) -> str:
    """The complete HTML of a ``photokit compare`` report."""
    parts = []
    # Summary
    summary = (f'<p class="headline">{escape(headline(view.rows))}</p>{_summary_cards(view.rows)}')
    parts.append(section("Summary", summary, sid="summary"))
    warn = notes_list(view.warnings, kind="warn", title="Read these results with care")
    if warn or view.notes:
        parts.append(f'<div id="warnings">{warn}'
                     f'{notes_list(view.notes, kind="info", title="Notes")}</div>')

    # Aligned photos
    before_disp = _outline(view.before_rgb, view.mask)
    after_disp = _outline(view.after_rgb, view.mask)
    intro = ("After is aligned onto before, so the same point of skin sits under the same "
             "pixel. Drag across the picture to compare; Blink alternates the two photos, "
             "which makes small changes easiest to see. The white line outlines the skin "
             "that was measured.")
    if view.deidentified:
        intro += " " + view.deidentified
    parts.append(section("Before and after", slider(before_disp, after_disp,
                                                   before_label=view.before_label,
                                                   after_label=view.after_label),
                         sid="photos", intro=intro))

    # Maps
    if view.maps:
        rows_html = []
        for mp in view.maps:
            vmin, vmax = robust_range((mp.before, mp.mask), (mp.after, mp.mask))
            dmax = change_range(mp.delta, mp.mask, mp.mdc)
            sl = crop_box(mp.mask)
            bg_b, bg_a = view.before_rgb[sl], view.after_rgb[sl]
            figs = (heatmap_figure(mp.before[sl], mp.mask[sl], cmap=mp.cmap, vmin=vmin, vmax=vmax,
                                   caption=f"Before \u2013 {mp.title}", background=bg_b)
                    + heatmap_figure(mp.after[sl], mp.mask[sl], cmap=mp.cmap, vmin=vmin, vmax=vmax,
                                     caption=f"After \u2013 {mp.title}", background=bg_a)
                    + heatmap_figure(mp.delta[sl], mp.mask[sl], cmap=mp.diff_cmap, vmin=-dmax,
                                     vmax=dmax, caption=f"Change (after \u2212 before) \u2013 {mp.title}",
                                     background=bg_b))
            legends = (legend(mp.cmap, vmin, vmax, mp.unit, label=mp.title,
                              low_text=mp.low_text, high_text=mp.high_text)
                       + legend(mp.diff_cmap, -dmax, dmax, mp.unit, label="Change",
                                low_text=mp.less_text, high_text=mp.more_text))
            note = f'<p class="muted">{escape(mp.note)}</p>' if mp.note else ""
            rows_html.append(f'<div class="maprow"><h3>{escape(mp.title)}</h3>'
                             f'<div class="maps">{figs}</div><div class="legends">{legends}</div>'
                             f"{note}</div>")
        parts.append(section(
            "Maps", "".join(rows_html), sid="maps",
            intro="Colour shows each quantity over the measured skin (the pictures are cropped "
                  "to it); before and after share one colour scale. The change map is smoothed "
                  "over a few millimetres: single-pixel differences are noise."))

    # Spots
    if view.spots is not None:
        n_new = sum(s.status == "new" for s in view.spots)
        n_faded = sum(s.status == "faded" for s in view.spots)
        n_kept = sum(s.status == "kept" for s in view.spots)
        # without a spot change that is judged and beyond the noise floor the same circles
        # are only where each photo has spots: spots near the detection threshold come and go
        # between two photos of unchanged skin (a re-encoded copy: "8 new, 6 faded")
        judged = view.spots_unjudged is None and view.spots_changed is True
        words = ({"new": "new", "faded": "faded", "kept": "unchanged"} if judged else
                 {"new": "in AFTER only", "faded": "in BEFORE only", "kept": "in both"})
        key = " ".join(f'<span class="swatch" style="background:rgb{SPOT_COLOURS[k]};'
                       f'border:1px solid #888"></span>{escape(t)}&nbsp;&nbsp;'
                       for k, t in (("new", f"{words['new']} ({n_new})"),
                                    ("faded", f"{words['faded']} ({n_faded})"),
                                    ("kept", f"{words['kept']} ({n_kept})")))
        cap_b, cap_a = (("Before: spots that faded (green) or stayed (white)",
                         "After: new spots (orange) and those that stayed (white)") if judged else
                        ("Before: spots found in BEFORE only (green) or in both (white)",
                         "After: spots found in AFTER only (orange) or in both (white)"))
        figs = (f'<figure class="map">{img_tag(spots_overlay(fit(view.before_rgb), [s for s in view.spots if s.status != "new"]), "spots on before", max_side=640)}'  # noqa: E501
                f"<figcaption>{cap_b}</figcaption></figure>"
                f'<figure class="map">{img_tag(spots_overlay(fit(view.after_rgb), [s for s in view.spots if s.status != "faded"]), "spots on after", max_side=640)}'  # noqa: E501
                f"<figcaption>{cap_a}</figcaption></figure>")
        caveat = ("" if judged else
                  notes_list([f"Spot changes are not judged for these photos ({view.spots_unjudged}): the "
                              "circles show where each photo has spots, not spots that appeared or "
                              "faded."], kind="warn") if view.spots_unjudged is not None else
                  notes_list(["The spot counts did not change beyond their noise floors: spots near "
                              "the detection threshold are found in one photo and not in the other, so "
                              "the circles show where each photo has spots, not spots that appeared "
                              "or faded." if view.spots_changed is False else
                              "The spot counts were not part of this comparison: the circles show "
                              "where each photo has spots."], kind="info"))
        parts.append(section("Spots", f'{caveat}<div class="maps two">{figs}</div><p>{key}</p>', sid="spots",
                             intro="Brown and red spots found in each photo, matched through the "
                                   "alignment."))

    # Table: the SPEC's core measures first, the others folded away
    core = [r for r in view.rows if r.core]
    other = [r for r in view.rows if not r.core]
    if not core:
        core, other = other, []
    table = metrics_table(core)
    if other:
        n_sig = sum(r.verdict.tone in ("better", "worse", "changed") for r in other)
        table += (f'<details class="more"><summary>{len(other)} further measures '
                  f"({n_sig} changed beyond noise)</summary>{metrics_table(other)}</details>")
    parts.append(section(
        "Measurements", table,
        sid="metrics",
        intro="Change is after minus before over the same skin. The noise floor is the "
              "smallest change the method can tell apart from retaking the same photo "
              "(minimal detectable change); a smaller change is reported as no detectable "
              "change, whatever its percentage."))

    # Quality, calibration, alignment
    q_html = quality_table(view.quality_headers, view.quality) if view.quality else ""
    cal = key_value_table(view.calibration) if view.calibration else ""
    al = key_value_table(view.alignment) if view.alignment else ""
    parts.append(section(
        "Capture quality and calibration",
        f'<div class="cols"><div><h3>Capture quality</h3>{q_html}</div><div><h3>Colour and scale</h3>{cal}'
        f"<h3>Alignment</h3>{al}</div></div>", sid="quality"))
    return page(title, "".join(parts), subtitle=view.subtitle, params=view.params,
                script=SLIDER_JS, generated=generated)


def render_compare_notebook(view: CompareView, *, max_side: int = 420) -> str:
    """A compact, script-free HTML block for Jupyter: before, after, first change map, table."""
    b_img = img_tag(_outline(view.before_rgb, view.mask), "before", max_side=max_side)
    a_img = img_tag(_outline(view.after_rgb, view.mask), "after", max_side=max_side)
    figs = [f'<figure style="margin:0">{b_img}'
            f"<figcaption>Before \u2013 {escape(view.before_label)}</figcaption></figure>",
            f'<figure style="margin:0">{a_img}'
            f"<figcaption>After (aligned) \u2013 {escape(view.after_label)}</figcaption></figure>"]
    if view.maps:
        mp = view.maps[0]
        dmax = change_range(mp.delta, mp.mask, mp.mdc)
        figs.append(f'<figure style="margin:0">{img_tag(colourize(mp.delta, mp.mask, cmap=mp.diff_cmap, vmin=-dmax, vmax=dmax, background=view.before_rgb), "change map", max_side=max_side)}'  # noqa: E501
                    f"<figcaption>Change in {escape(mp.title)} "
                    f"(\u00b1{format_value(dmax, mp.unit, mdc=mp.mdc)} at full colour)</figcaption></figure>")
    warn = notes_list(view.warnings, kind="warn")
    return (f'<div class="photokit-compare"><style>{NOTEBOOK_CSS}</style>'
            f"<p><b>{escape(headline(view.rows))}</b></p>{warn}"
            f'<div style="display:flex;gap:10px;flex-wrap:wrap">{"".join(figs)}</div>'
            f"{metrics_table(view.rows)}</div>")


def _masked_smooth(v: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution ``G*(v m) / G*m`` inside `mask` (NaN outside)."""
    m = (mask & np.isfinite(v)).astype(np.float32)
    num = cv2.GaussianBlur(np.where(m > 0, v, 0).astype(np.float32), (0, 0), sigma)
    den = cv2.GaussianBlur(m, (0, 0), sigma)
    out = num / np.maximum(den, 1e-6)
    out[~mask] = np.nan
    return out.astype(np.float32)


def _maps_of(an, max_side: int, panels) -> tuple[dict, np.ndarray, float]:
    """The map of each metric of `panels` (`photokit.metrics.registry.Panel.pixels`) of an Analysis,
    at <= max_side, its mask and its scale."""
    lv = an.level(max_side=max_side)
    return {m.name: m.panel.pixels(lv) for m in panels}, lv.mask, lv.shape[1] / an.shape[1]


def build_view(c, *, max_side: int, hide_eyes: bool, notes: list) -> CompareView:
    """Everything the compare report shows, as arrays on BEFORE's display grid.

    Parameters
    ----------
    c : photokit.comparison.compare.Comparison
        The comparison (its photos, measurements, alignment and aligned AFTER).
    max_side : int
        Long side of the display grid (pixels).
    hide_eyes : bool
        Cover eyes and eyebrows with an opaque mask (`photokit.faces.deidentify`, from the
        face mesh) in every picture, and keep map colours off them.
    notes : list of str
        Extra notes for the report.
    """
    b_rgb, s_b = fit_within(c.before_photo.rgb8(), max_side)
    dshape = b_rgb.shape[:2]
    a_rgb = c.alignment.warp_onto(c.after_photo.rgb8(), dshape, s_b, area=True)
    valid = _on_display(c.alignment.valid_mask(), dshape)
    mask = _on_display(c.mask_before, dshape) & valid
    warnings = list(c.warnings)
    deid, hidden = "", False
    if hide_eyes:
        faces_b = getattr(c.before, "faces", None) or find_faces(c.before_photo.rgb8())
        aligned = c.aligned_rgb                     # the eyes are found at full resolution
        faces_a = find_faces(aligned)
        if faces_b or faces_a:
            full_b, cover_b = mask_eyes(c.before_photo.rgb8(), faces_b)
            full_a, cover_a = mask_eyes(aligned, faces_a)
            b_rgb = fit_within(full_b, max_side)[0]
            a_rgb = cv2.resize(full_a, (b_rgb.shape[1], b_rgb.shape[0]), interpolation=cv2.INTER_AREA)
            covered = cv2.resize((cover_b | cover_a).view(np.uint8), (dshape[1], dshape[0]),
                                 interpolation=cv2.INTER_AREA) > 0
            mask &= ~covered  # no map colour may trace the eyes either
            deid = "Eyes and eyebrows are covered by an opaque mask in every picture of this report."
            hidden = True
        else:
            warnings.append("De-identification requested but no face was found: nothing was "
                            "covered. Check the pictures before sharing.")
    return CompareView(
        before_rgb=b_rgb, after_rgb=a_rgb, mask=mask, valid=valid,
        rows=metric_rows(c.metrics, c.before.metrics, c.after.metrics, c.delta, c.percent_change,
                         c.noise_floor, c.not_judged, c.holm),
        before_label=_dated(c.before_photo), after_label=_dated(c.after_photo),
        maps=_map_pairs(c, mask, s_b, max_side), spots=_spot_changes(c, s_b),
        spots_unjudged=c.not_judged.get("spots.count"), warnings=warnings,
        spots_changed=(any(c.significant.get(n) for n in SPOT_COUNTS)
                       if any(n in c.significant for n in SPOT_COUNTS) else None),
        quality_headers=["Before", "After"], quality=_quality_rows(c), calibration=_calibration_rows(c),
        alignment=_alignment_rows(c.alignment), params=_parameter_rows(c, eyes_hidden=hidden),
        subtitle=_subtitle(c), notes=list(c.notes) + list(notes), deidentified=deid)


def _on_display(mask: np.ndarray, dshape) -> np.ndarray:
    """A full-resolution mask on the display grid (nearest neighbour)."""
    return cv2.resize(mask.astype(np.uint8), (dshape[1], dshape[0]),
                      interpolation=cv2.INTER_NEAREST).astype(bool)


def _map_pairs(c, mask: np.ndarray, s_b: float, max_side: int) -> list[MapPair]:
    """Before, after and change maps of each metric with a `~photokit.metrics.registry.Panel`,
    on BEFORE's display grid, over the skin both photos show (`mask`).

    The value maps are smoothed over about 0.3 mm (pores do not hide the pattern); the
    change over about 1.5 mm (clipped to 2-3 % of the picture), so noise does not paint it.
    """
    an_b, an_a = getattr(c.before, "analysis", None), getattr(c.after, "analysis", None)
    if an_b is None or an_a is None or not (c.before_photo.is_colour and c.after_photo.is_colour):
        return []
    dshape = mask.shape
    panels = [m for m in c.metrics if m.panel is not None]
    mb, mask_lb, sb_lvl = _maps_of(an_b, max_side, panels)
    ma, mask_la, sa_lvl = _maps_of(an_a, max_side, panels)
    # analysis grids relative to the full photos
    sb_full = sb_lvl * an_b.shape[1] / c.before_photo.width
    sa_full = sa_lvl * an_a.shape[1] / c.after_photo.width
    mm = c.parameters.get("mm_per_px_before")
    sigma = (1.5 / mm * s_b) if mm else 0.006 * max(dshape)
    sigma = float(np.clip(sigma, 2.0, 0.03 * max(dshape)))
    sigma_map = float(np.clip((0.3 / mm * s_b) if mm else 0.0015 * max(dshape), 0.7, 4.0))
    before_skin = _before_to_display(mask_lb.astype(np.float32), sb_full, dshape, s_b) > 0.5
    maps = []
    for met in panels:
        before_d = np.where(before_skin, _before_to_display(mb[met.name], sb_full, dshape, s_b), np.nan)
        after_src = np.where(mask_la, ma[met.name], np.nan).astype(np.float32)
        after_d = c.alignment.warp_onto(after_src, dshape, s_b, arr_scale=sa_full)
        shared = mask & np.isfinite(before_d) & np.isfinite(after_d)
        delta = _masked_smooth(after_d, shared, sigma) - _masked_smooth(before_d, shared, sigma)
        p = met.panel
        maps.append(MapPair(p.title, met.unit, _masked_smooth(before_d, shared, sigma_map),
                            _masked_smooth(after_d, shared, sigma_map), delta, shared, p.cmap,
                            p.diff_cmap, p.low_text, p.high_text, p.less_text, p.more_text,
                            c.noise_floor.get(met.name)))
    return maps


def _quality_rows(c) -> list:
    """The capture-quality table: per check, the verdict and value of BEFORE and AFTER."""
    qs = [getattr(c.before, "quality", None), getattr(c.after, "quality", None)]
    if any(q is None for q in qs):
        return []
    rows = []
    for name in dict.fromkeys([*qs[0].checks, *qs[1].checks]):
        cells = []
        for q in qs:
            ch = q.checks.get(name)
            if ch is None:
                cells.append(("n/a", ""))
                continue
            val = "" if ch.value is None else f"{ch.value:g} {ch.unit}".strip()
            note = f" ({ch.note})" if ch.note and ch.verdict != "pass" else ""
            cells.append((ch.verdict, val + note))
        rows.append((name, cells))
    return rows


def _calibration_rows(c) -> list[tuple[str, str]]:
    """Colour calibration, lighting difference and scale of both photos, in words."""
    def cal_text(m):
        cal = calibration_of(m)
        meth = cal.get("method", "none")
        de = cal.get("delta_e_mean")
        return {"checker": "colour card", "reference": "reference skin", "none": "not calibrated"}.get(
            meth, str(meth)) + (f" (mean \u0394E2000 {de:.2f})" if de is not None else "")

    def scale_text(m):
        mm, scale = getattr(m, "mm_per_px", None), getattr(m, "scale", None)
        src = (scale.note if getattr(scale, "source", None) == "carried"
               else getattr(m, "scale_source", None))
        return "unknown" if mm is None else f"{mm:.4f} mm/px ({src or 'given'})"

    light = c.lighting or {}
    lighting = ("not measurable" if light.get("dL") is None else
                f"{light['dL']:+.1f} L*" + (f", {light['dab']:.1f} a*b*" if light.get("dab") is not None
                                            else "") + f" ({light.get('where')})")
    return [("Colour, before", cal_text(c.before)), ("Colour, after", cal_text(c.after)),
            ("Lighting difference", lighting), ("Scale, before", scale_text(c.before)),
            ("Scale, after", scale_text(c.after))]


def _alignment_rows(al) -> list[tuple[str, str]]:
    """How the photos were aligned, in words."""
    return [("Status", al.status), ("Confidence", f"{al.confidence:.2f}"),
            ("Matched features", str(al.inliers)),
            ("Residual", "\u2013" if al.residual_px is None else f"{al.residual_px:.2f} px"),
            ("Overlap", f"{al.overlap:.0%}"), ("Model", str(getattr(al, "model", None))),
            ("Followed", str(getattr(al, "subject", "")))]


def _parameter_rows(c, *, eyes_hidden: bool) -> list[tuple[str, str]]:
    """The footer: how the comparison was run."""
    mm = c.parameters.get("mm_per_px_before")
    return [("Before", c.parameters.get("before")), ("After", c.parameters.get("after")),
            ("Region measured", c.parameters.get("roi")),
            ("Reference skin", c.parameters.get("reference_roi") or "none"),
            ("Scale (before)", "unknown" if mm is None else f"{mm:.4f} mm/px"),
            ("Calibration", c.parameters.get("calibration")),
            ("Eyes and brows covered", "yes" if eyes_hidden else "no"),
            ("photokit", c.parameters.get("photokit"))]


def _subtitle(c) -> str:
    """``before -> after · N days apart``."""
    days = _days_between(c.before_photo, c.after_photo)
    subtitle = f"{c.before_photo.name} \u2192 {c.after_photo.name}"
    if days is not None:
        subtitle += f" \u00b7 {days:.0f} days apart" if abs(days) >= 1 else " \u00b7 same day"
    return subtitle


def _before_to_display(arr: np.ndarray, arr_scale: float, dshape, s_b: float) -> np.ndarray:
    """Resample a BEFORE analysis-grid array onto BEFORE's display grid (pixel centres)."""
    h, w = dshape
    k = arr_scale / s_b
    xd = ((np.arange(w, dtype=np.float32) + 0.5) * k - 0.5).astype(np.float32)
    yd = ((np.arange(h, dtype=np.float32) + 0.5) * k - 0.5).astype(np.float32)
    mx = np.broadcast_to(xd[None, :], (h, w)).astype(np.float32)
    my = np.broadcast_to(yd[:, None], (h, w)).astype(np.float32)
    src = arr.astype(np.float32)
    if k > 1.5:  # display is coarser: average first
        src = cv2.resize(src, (w, h), interpolation=cv2.INTER_AREA)
        return src
    return cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _dated(p: Photo) -> str:
    return p.capture_time.strftime("%d %b %Y") if p.capture_time else p.name


def _days_between(pb: Photo, pa: Photo) -> float | None:
    if pb.capture_time is None or pa.capture_time is None:
        return None
    tb, ta = pb.capture_time, pa.capture_time
    if (tb.tzinfo is None) != (ta.tzinfo is None):
        tb, ta = tb.replace(tzinfo=None), ta.replace(tzinfo=None)
    return (ta - tb).total_seconds() / 86400.0


def _spot_changes(c, s_b: float):
    """New / faded / kept spots on BEFORE's display grid, or None without a spot list."""
    from ..metrics.spots import find_spots

    an_b, an_a = getattr(c.before, "analysis", None), getattr(c.after, "analysis", None)
    if an_b is None or an_a is None:
        return None
    sb, sa = find_spots(an_b), find_spots(an_a)   # the lists the spot metrics counted (cached)
    if sb is None or sa is None:
        return None
    xyr_b = _spot_xyr(sb, an_b, c.before_photo.width)
    xyr_a = _spot_xyr(sa, an_a, c.after_photo.width)
    return match_spots(xyr_b, xyr_a, c.alignment.after_to_before, s_b)


def _spot_xyr(spots, an, photo_width: int) -> np.ndarray:
    """(n, 3) array x, y, radius in the photo's full-resolution pixels.

    Spot centres are in pixels of the analysed image (``an``); its diameter in mm is
    turned into pixels with the analysis scale (radius 3 px when unknown).
    """
    k = photo_width / an.shape[1]
    mm = getattr(an, "mm_per_px", None)
    out = []
    for s in spots:
        d_mm = getattr(s, "diameter_mm", None)
        r = 0.5 * d_mm / mm if (d_mm and mm) else 3.0
        out.append((float(s.x) * k, float(s.y) * k, float(r) * k))
    return np.asarray(out, np.float64).reshape(-1, 3)


def match_spots(before_xyr: np.ndarray, after_xyr: np.ndarray, to_before, scale: float):
    """Match spots of both photos through the alignment (greedy nearest, within 1.5 radii).

    ``before_xyr`` in BEFORE full-res pixels, ``after_xyr`` in AFTER's; AFTER centres are
    carried to BEFORE by ``to_before`` (``(N, 2)`` AFTER px -> BEFORE px: the full
    alignment, `Alignment.after_to_before`; on a face re-captured from another distance
    its dense field moves spots by about their own radius), their radii by the local
    scale of that mapping (``sqrt |det J|``, from unit steps). Returns `report.Spot` on
    the display grid (``scale``): ``kept`` (matched), ``faded`` (BEFORE only), ``new``
    (AFTER only).
    """

    b = np.asarray(before_xyr, np.float64).reshape(-1, 3)
    a = np.asarray(after_xyr, np.float64).reshape(-1, 3)
    if len(a):
        a_b = to_before(a[:, :2])
        jx = to_before(a[:, :2] + (1.0, 0.0)) - a_b
        jy = to_before(a[:, :2] + (0.0, 1.0)) - a_b
        a_r = a[:, 2] * np.sqrt(np.abs(jx[:, 0] * jy[:, 1] - jx[:, 1] * jy[:, 0]))
    else:
        a_b, a_r = np.zeros((0, 2)), np.zeros(0)
    used_a = np.zeros(len(a), bool)
    out = []
    if len(a) and len(b):
        d = np.linalg.norm(b[:, None, :2] - a_b[None], axis=2)
        tol = 1.5 * np.maximum(b[:, 2][:, None], a_r[None]) + 2.0
        order = np.dstack(np.unravel_index(np.argsort(d, axis=None), d.shape))[0]
        used_b = np.zeros(len(b), bool)
        for i, j in order:
            if d[i, j] > tol[i, j]:
                break
            if used_b[i] or used_a[j]:
                continue
            used_b[i] = used_a[j] = True
            out.append(Spot(b[i, 0] * scale, b[i, 1] * scale, b[i, 2] * scale, "kept"))
    else:
        used_b = np.zeros(len(b), bool)
    out += [Spot(x * scale, y * scale, r * scale, "faded")
            for (x, y, r), u in zip(b, used_b, strict=True) if not u]
    out += [Spot(x * scale, y * scale, r * scale, "new")
            for (x, y), r, u in zip(a_b, a_r, used_a, strict=True) if not u]
    return out
