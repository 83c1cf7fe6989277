"""Self-contained HTML reports: one file, every picture embedded, no network at all.

A report is meant to be e-mailed to a colleague or shown to a patient, so it must open
offline from a ``file://`` URL and must never fetch anything: every picture is a
``data:`` URI (JPEG for photographs, sized to about 1000 px), styles and scripts are
inline, fonts are the system's, and a Content-Security-Policy (``default-src 'none'``)
makes the browser refuse any request that might slip in. Every string that comes from
the user (file names, notes, ROI paths) goes through `escape`.

Building blocks shared by the compare and series reports:

- `page` : the page shell (CSS, CSP, header, footer with version, parameters and date);
- `image_data_uri`, `img_tag`, `fit` : embedding pictures;
- `colourize`, `legend`, `heatmap_figure` : heat maps with a legend in real units;
- `MetricRow`, `metric_rows`, `metrics_table`, `format_value` : the metrics table with
  deltas, noise floors and plain-language verdicts;
- `verdict` : the wording of a change against its noise floor;
- `notes_list`, `key_value_table`, `section` : notes, warnings and small tables;
- `slider` : the draggable before/after comparison with blink/flip toggles;

The pages themselves are in `photokit.report.compare_page` and
`photokit.report.series_page`; styles and scripts are asset files in
``photokit/report/assets/``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import cv2
import numpy as np

from ..comparison.sameskin import Verdict, verdict
from ..imaging.filters import fit_within
from ..io.atomic import encode_image
from ..metrics.registry import family_of

#: Long side, in pixels, of pictures embedded in reports (sharp on screen, light to e-mail).
REPORT_SIDE = 1000
#: JPEG quality of embedded photographs.
JPEG_QUALITY = 82

# --------------------------------------------------------------------------------------
# Escaping and formatting


@functools.cache
def asset(name: str) -> str:
    """The text of a style sheet or script in ``photokit/report/assets/`` (package data)."""
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def escape(value) -> str:
    """HTML-escape any value (``None`` becomes an empty string); quotes are escaped too."""
    return "" if value is None else html.escape(str(value), quote=True)


def _decimals_for(step: float | None) -> int:
    """Decimals that resolve a quantity of size `step` (the noise floor) to ~1/10."""
    if step is None or not math.isfinite(step) or step <= 0:
        return 2
    return int(min(3, max(0, 1 - math.floor(math.log10(step)))))


#: Units shown without a symbol (dimensionless or plain counts).
_BARE_UNITS = {"", "1", "count", "counts", "ratio"}

def pretty_unit(unit: str) -> str:
    """``1/cm^2`` -> ``/cm²``, ``mm^2`` -> ``mm²``; dimensionless and counts -> ``""``."""
    if unit is None or unit.strip() in _BARE_UNITS:
        return ""
    u = unit.replace("^2", "\u00b2").replace("^3", "\u00b3").replace("deg", "\u00b0")
    return u[1:] if u.startswith("1/") else u


def format_value(value, unit: str = "", *, mdc: float | None = None, signed: bool = False) -> str:
    """A number with as many decimals as its noise floor warrants, and its unit.

    Counts have no decimals. ``None`` and non-finite values become an en dash.
    """
    if value is None:
        return "\u2013"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return escape(value)
    if not math.isfinite(v):
        return "\u2013"
    d = 0 if (unit or "").strip() in ("count", "counts") else _decimals_for(mdc)
    text = f"{v:+.{d}f}" if signed else f"{v:.{d}f}"
    text = text.replace("-", "\u2212")
    unit = pretty_unit(unit)
    if unit:
        text += ("" if unit in ("%", "\u00b0") or unit.startswith("/") else "\u202f") + unit
    return escape(text)


# --------------------------------------------------------------------------------------
# Verdicts


# --------------------------------------------------------------------------------------
# Pictures


def fit(rgb: np.ndarray, max_side: int = REPORT_SIDE) -> np.ndarray:
    """Downscale (area averaging) so the long side is at most `max_side`; never upscale."""
    return fit_within(np.asarray(rgb), max_side)[0]


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)
    if arr.dtype.kind == "f":
        return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    return arr.astype(np.uint8, copy=False)


def image_data_uri(rgb: np.ndarray, *, max_side: int | None = REPORT_SIDE, fmt: str = "jpeg",
                   quality: int = JPEG_QUALITY) -> str:
    """Encode an RGB picture as a ``data:image/...;base64`` URI (JPEG or PNG)."""
    arr = _to_uint8(rgb)
    if max_side:
        arr = fit(arr, max_side)
    fmt = fmt.lower()
    ext = {"jpeg": ".jpg", "jpg": ".jpg", "png": ".png"}.get(fmt)
    if ext is None:
        raise ValueError(f"fmt must be jpeg or png, not {fmt!r}")
    data = encode_image(np.ascontiguousarray(arr), ext, quality=quality)
    mime = "image/jpeg" if ext == ".jpg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def img_tag(rgb: np.ndarray, alt: str, *, max_side: int | None = REPORT_SIDE, fmt: str = "jpeg",
            cls: str = "", attrs: str = "") -> str:
    """An ``<img>`` with the picture embedded, its size and an escaped ``alt`` text."""
    arr = fit(_to_uint8(rgb), max_side) if max_side else _to_uint8(rgb)
    uri = image_data_uri(arr, max_side=None, fmt=fmt)
    c = f' class="{escape(cls)}"' if cls else ""
    return (f'<img src="{uri}" alt="{escape(alt)}" width="{arr.shape[1]}" '
            f'height="{arr.shape[0]}"{c}{" " + attrs if attrs else ""}>')


def _cmap_lut(cmap: str) -> np.ndarray:
    """256x3 uint8 colour table of a matplotlib colormap (matplotlib imported lazily)."""
    from matplotlib import colormaps  # no pyplot, no GUI backend

    lut = colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3]
    return np.round(lut * 255).astype(np.uint8)


def colourize(values: np.ndarray, mask: np.ndarray | None, *, cmap: str, vmin: float, vmax: float,
              background: np.ndarray | None = None, dim: float = 0.55) -> np.ndarray:
    """Colour `values` with `cmap` over ``[vmin, vmax]`` inside `mask`.

    Outside the mask the picture shows `background` in grey, dimmed by `dim`, so the
    coloured skin stands out and the colours inside keep their legend meaning exactly
    (no transparency blending).
    """
    v = np.asarray(values, dtype=np.float32)
    span = float(vmax - vmin) or 1.0
    idx = np.clip((np.nan_to_num(v, nan=vmin) - vmin) / span * 255.0, 0, 255).astype(np.uint8)
    out = _cmap_lut(cmap)[idx]
    inside = np.isfinite(v) if mask is None else (np.asarray(mask, bool) & np.isfinite(v))
    if background is not None:
        bg = _to_uint8(background)
        if bg.shape[:2] != v.shape:
            bg = cv2.resize(bg, (v.shape[1], v.shape[0]), interpolation=cv2.INTER_AREA)
        grey = bg if bg.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(bg), cv2.COLOR_RGB2GRAY)
        grey = (grey.astype(np.float32) * dim + 255 * (1 - dim) * 0.35).astype(np.uint8)
        out = np.where(inside[..., None], out, np.repeat(grey[..., None], 3, axis=2))
    else:
        out = np.where(inside[..., None], out, np.uint8(235))
    return out


def _nice_ticks(vmin: float, vmax: float, n: int = 5) -> list[float]:
    span = vmax - vmin
    if not math.isfinite(span) or span <= 0:
        return [vmin]
    raw = span / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    start = math.ceil(vmin / step - 1e-9) * step
    ticks, t = [], start
    while t <= vmax + 1e-9 * span:
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return ticks


def legend(cmap: str, vmin: float, vmax: float, unit: str, *, label: str = "",
           low_text: str = "", high_text: str = "") -> str:
    """A horizontal colour bar (CSS gradient) with ticks in real units."""
    lut = _cmap_lut(cmap)
    stops = ", ".join(f"rgb({r},{g},{b}) {i / 15 * 100:.1f}%"
                      for i, (r, g, b) in enumerate(lut[np.linspace(0, 255, 16).astype(int)]))
    ticks = _nice_ticks(vmin, vmax)
    span = (vmax - vmin) or 1.0
    step = ticks[1] - ticks[0] if len(ticks) > 1 else span
    d = next((k for k in range(0, 6) if abs(round(step, k) - step) < 1e-9 * max(1.0, step)), 6)
    tick_html = "".join(
        f'<span class="tick" style="left:{(t - vmin) / span * 100:.2f}%">'
        f'{escape(f"{t:.{d}f}".replace("-", chr(0x2212)))}</span>' for t in ticks)
    ends = ""
    if low_text or high_text:
        ends = (f'<div class="legend-ends"><span>{escape(low_text)}</span>'
                f'<span>{escape(high_text)}</span></div>')
    return (f'<div class="legend"><div class="legend-label">{escape(label)}'
            f'{" (" + escape(unit) + ")" if unit else ""}</div>'
            f'<div class="legend-bar" style="background:linear-gradient(to right, {stops})"></div>'
            f'<div class="legend-ticks">{tick_html}</div>{ends}</div>')


def heatmap_figure(values: np.ndarray, mask: np.ndarray | None, *, cmap: str, vmin: float,
                   vmax: float, caption: str, background: np.ndarray | None = None,
                   max_side: int = 640) -> str:
    """One coloured map as an embedded picture with its caption (legend drawn separately)."""
    rgb = colourize(values, mask, cmap=cmap, vmin=vmin, vmax=vmax, background=background)
    return (f'<figure class="map">{img_tag(rgb, caption, max_side=max_side)}'
            f'<figcaption>{escape(caption)}</figcaption></figure>')


def _nice_ceil(x: float) -> float:
    """Smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k that is >= x."""
    if not math.isfinite(x) or x <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(x))
    return next(m * mag for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * mag >= x * (1 - 1e-9))


def change_range(delta: np.ndarray, mask: np.ndarray, mdc: float | None) -> float:
    """Symmetric colour range of a change map: the 98th percentile of ``|delta|`` (at least
    twice the noise floor, so noise never fills the scale), rounded up to a nice number."""
    d = np.abs(np.asarray(delta, np.float32)[np.asarray(mask, bool) & np.isfinite(delta)])
    top = float(np.percentile(d, 98)) if d.size else 0.0
    return _nice_ceil(max(top, 2 * (mdc or 0.0), 1e-3))


def crop_box(mask: np.ndarray, *, margin: float = 0.15, min_frac: float = 0.35) -> tuple[slice, slice]:
    """Slices framing the mask with a margin (at least `min_frac` of each side)."""
    m = np.asarray(mask, bool)
    h, w = m.shape
    ys, xs = np.nonzero(m)
    if ys.size == 0:
        return slice(0, h), slice(0, w)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    bh = max(y1 - y0, int(min_frac * h))
    bw = max(x1 - x0, int(min_frac * w))
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    bh, bw = bh * (1 + 2 * margin), bw * (1 + 2 * margin)
    ya, yb = int(max(0, cy - bh / 2)), int(min(h, cy + bh / 2))
    xa, xb = int(max(0, cx - bw / 2)), int(min(w, cx + bw / 2))
    return slice(ya, yb), slice(xa, xb)


def robust_range(*arrays_and_masks, lo: float = 2.0, hi: float = 98.0) -> tuple[float, float]:
    """Shared colour range: the `lo`-`hi` percentiles of the masked values of all maps.

    Call as ``robust_range((map1, mask1), (map2, mask2))``.
    """
    vals = [np.asarray(v, np.float32)[np.asarray(m, bool) & np.isfinite(v)]
            for v, m in arrays_and_masks]
    vals = [v for v in vals if v.size]
    if not vals:
        return 0.0, 1.0
    allv = np.concatenate(vals)
    a, b = np.percentile(allv, [lo, hi])
    if b - a < 1e-6:
        a, b = a - 0.5, b + 0.5
    return float(a), float(b)


# --------------------------------------------------------------------------------------
# Tables and notes


@dataclass
class MetricRow:
    """One line of a metrics table (before/after/change for one metric)."""

    name: str
    description: str
    unit: str
    before: float | None
    after: float | None
    delta: float | None
    percent: float | None
    mdc: float | None  # the pair's noise floor (`photokit.comparison.compare.Comparison.noise_floor`)
    better: str = "neither"
    core: bool = False  # a headline metric (`photokit.metrics.registry.Metric.core`): shown first
    why: str | None = None  # why a measured change is not judged (no floor)
    holm: bool | None = None  # the change stands under Holm's control over the pair's metrics

    @property
    def verdict(self) -> Verdict:
        return verdict(self.delta, self.mdc, self.better, self.why)


def metric_rows(metrics: Iterable, before: Mapping, after: Mapping, delta: Mapping,
                percent: Mapping, floors: Mapping | None = None, why: Mapping | None = None,
                holm: Mapping | None = None) -> list[MetricRow]:
    """Rows for `metrics_table` from registry `Metric` objects and the value dicts; `floors`
    the pair's noise floors (default: the registered ``mdc``), `why` the reasons a metric
    is not judged, `holm` which changes stand under Holm's family-wise control."""
    return [MetricRow(m.name, m.description, m.unit, before.get(m.name), after.get(m.name),
                      delta.get(m.name), percent.get(m.name),
                      m.mdc if floors is None else floors.get(m.name), m.better, m.core,
                      None if why is None else why.get(m.name),
                      None if holm is None else holm.get(m.name))
            for m in metrics]


def family_title(name: str) -> str:
    """Heading of a metric family (`photokit.metrics.registry.Family.title`)."""
    return family_of(name).title


def metrics_table(rows: Sequence[MetricRow], *, before_label: str = "Before",
                  after_label: str = "After") -> str:
    """The metrics table: value before and after, change, % change, noise floor, verdict.

    A change inside the noise shows no percentage ("within noise" instead), so a
    meaningless percentage is never read as a result.
    """
    head = (f"<thead><tr><th>Measure</th><th class=num>{escape(before_label)}</th>"
            f"<th class=num>{escape(after_label)}</th><th class=num>Change</th>"
            "<th class=num>% change</th><th class=num title='Minimal detectable change: smaller "
            "changes are measurement noise'>Noise floor (\u00b1)</th><th>Verdict</th></tr></thead>")
    body, family = [], None
    for r in rows:
        fam = r.name.split(".", 1)[0]
        if fam != family:
            family = fam
            body.append(f'<tr class="family"><th colspan="7">'
                        f'{escape(family_title(fam))}</th></tr>')
        v = r.verdict
        if v.tone in ("none", "na"):
            pct = '<span class="muted">within noise</span>' if v.tone == "none" else "\u2013"
        else:
            pct = format_value(r.percent, "%", mdc=1.0, signed=True) if r.percent is not None else "\u2013"
        body.append(
            f'<tr class="tone-{v.tone}" data-metric="{escape(r.name)}">'
            f'<td><div class="mname">{escape(r.description or r.name)}</div>'
            f'<div class="mkey">{escape(r.name)}</div></td>'
            f"<td class=num>{format_value(r.before, r.unit, mdc=r.mdc)}</td>"
            f"<td class=num>{format_value(r.after, r.unit, mdc=r.mdc)}</td>"
            f'<td class="num delta">{format_value(r.delta, r.unit, mdc=r.mdc, signed=True)}</td>'
            f"<td class=num>{pct}</td>"
            f"<td class=num>{format_value(r.mdc, r.unit, mdc=r.mdc)}</td>"
            f'<td class="verdict"><span class="pill {v.tone}">{escape(v.label)}</span>'
            + (f'<div class="why">{escape(v.reason)}</div>' if v.reason else "") + "</td></tr>")
    return f'<table class="metrics">{head}<tbody>{"".join(body)}</tbody></table>'


def key_value_table(items: Mapping | Iterable[tuple], *, cls: str = "kv") -> str:
    """A two-column table of escaped labels and values."""
    pairs = items.items() if isinstance(items, Mapping) else items
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)
    return f'<table class="{escape(cls)}">{rows}</table>'


_CHECK_NAMES = {"sharpness": "Sharpness", "highlights_clipped": "Clipped highlights",
                "shadows_crushed": "Crushed shadows", "brightness": "Brightness",
                "colour_cast": "Colour cast", "resolution": "Resolution", "noise": "Noise"}


def quality_table(headers: Sequence[str], rows: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> str:
    """Capture-quality checks side by side: one row per check, one column per photo.

    `rows` holds ``(check name, [(verdict, text) per photo])``; verdicts ``pass``,
    ``warn``, ``fail`` or ``n/a`` are shown as coloured pills.
    """
    tone = {"pass": "better", "warn": "caution", "fail": "worse"}
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for name, cells in rows:
        tds = "".join(f'<td><span class="pill {tone.get(v, "na")}">{escape(v)}</span> '
                      f'<span class="muted">{escape(t)}</span></td>' for v, t in cells)
        body.append(f"<tr><th>{escape(_CHECK_NAMES.get(name, name))}</th>{tds}</tr>")
    return (f'<table class="quality"><thead><tr><th>Check</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def notes_list(notes: Iterable[str], *, kind: str = "warn", title: str | None = None) -> str:
    """A box of notes (``kind``: ``warn``, ``info`` or ``ok``); empty string if no notes."""
    notes = [n for n in notes if n]
    if not notes:
        return ""
    t = f"<h3>{escape(title)}</h3>" if title else ""
    items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    return f'<div class="notes {escape(kind)}">{t}<ul>{items}</ul></div>'


def section(title: str, body: str, *, sid: str = "", intro: str = "") -> str:
    """A titled report section; `body` is trusted HTML, `title`/`intro` are escaped."""
    i = f' id="{escape(sid)}"' if sid else ""
    p = f'<p class="intro">{escape(intro)}</p>' if intro else ""
    return f"<section{i}><h2>{escape(title)}</h2>{p}{body}</section>"


# --------------------------------------------------------------------------------------
# The before/after slider


SLIDER_JS = asset("slider.js")


def slider(before_rgb: np.ndarray, after_rgb: np.ndarray, *, before_label: str = "Before",
           after_label: str = "After", max_side: int = REPORT_SIDE) -> str:
    """Before/after comparison: drag (or use the range input) to move the divide; buttons
    flip between the two photos or blink them, which shows small changes best.

    Both pictures must be on the same pixel grid (AFTER already aligned onto BEFORE).
    Needs `SLIDER_JS` in the page.
    """
    b, a = fit(_to_uint8(before_rgb), max_side), fit(_to_uint8(after_rgb), max_side)
    if a.shape[:2] != b.shape[:2]:
        a = cv2.resize(a, (b.shape[1], b.shape[0]), interpolation=cv2.INTER_AREA)
    h, w = b.shape[:2]
    return (
        f'<div class="cmp-wrap" style="width:max(min(100%, 620px), min(100%, calc(78vh * {w / h:.4f})))">'
        f'<div class="cmp" id="cmp" data-view="slider" data-pos="50" style="aspect-ratio:{w}/{h}">'
        f'{img_tag(b, "before: " + before_label, max_side=None, cls="cmp-img", attrs="draggable=false")}'
        f'<div class="cmp-after" id="cmp-after" style="clip-path:inset(0 0 0 50%)">'
        f'{img_tag(a, "after: " + after_label, max_side=None, cls="cmp-img", attrs="draggable=false")}'
        f'</div><div class="cmp-handle" id="cmp-handle" style="left:50%"><span></span></div>'
        f'<div class="cmp-tag left">Before<small>{escape(before_label)}</small></div>'
        f'<div class="cmp-tag right">After<small>{escape(after_label)}</small></div></div>'
        f'<div class="cmp-controls"><input type="range" id="cmp-range" min="0" max="100" '
        f'step="0.1" value="50" aria-label="Position of the before/after divide">'
        f'<button type="button" id="btn-slider">Slider</button>'
        f'<button type="button" id="btn-flip">Flip to after</button>'
        f'<button type="button" id="btn-blink" aria-pressed="false">Blink</button>'
        f'<span id="cmp-state" class="muted" aria-live="polite">Drag to compare</span></div></div>')


# --------------------------------------------------------------------------------------
# Page shell

CSS = asset("report.css")

#: Forbids every fetch: only inline styles/scripts and data: pictures may load.
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "font-src 'none'; connect-src 'none'; media-src 'none'; object-src 'none'; frame-src 'none'; "
       "base-uri 'none'; form-action 'none'")


def footer(params: Mapping | Iterable[tuple], *, generated: _dt.datetime | None = None,
           tool: str = "photokit") -> str:
    """Footer: photokit version, the parameters of the run and the date of the report."""
    from .._version import __version__

    when = (generated or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    pairs = list(params.items() if isinstance(params, Mapping) else params)
    return (f'<footer><p>Made with {escape(tool)} {escape(__version__)} on {escape(when)}. '
            "Measurements describe these photographs; they are not a diagnosis. Changes "
            "smaller than each measure's noise floor are reported as no detectable change."
            f"</p>{key_value_table(pairs)}</footer>")


def page(title: str, body: str, *, subtitle: str = "", params: Mapping | Iterable[tuple] = (),
         script: str = "", generated: _dt.datetime | None = None, extra_css: str = "") -> str:
    """A complete, self-contained HTML document.

    Parameters
    ----------
    title, subtitle : str
        Plain text (escaped).
    body : str
        Trusted HTML made with the builders of this module.
    params : mapping or iterable of pairs
        Shown in the footer (escaped).
    script : str
        Inline JavaScript (trusted, e.g. `SLIDER_JS`).
    """
    sub = f'<p class="subtitle">{escape(subtitle)}</p>' if subtitle else ""
    js = f"<script>{script}</script>" if script else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="referrer" content="no-referrer">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            '<meta name="robots" content="noindex,nofollow">'
            f"<title>{escape(title)}</title><style>{CSS}{extra_css}</style></head><body><main>"
            f'<header class="top"><div class="brand">photokit</div><h1>{escape(title)}</h1>{sub}'
            f"</header>{body}</main>{footer(params, generated=generated)}{js}</body></html>\n")


#: Style of the notebook (Jupyter) renderings of results.
NOTEBOOK_CSS = asset("notebook.css")
