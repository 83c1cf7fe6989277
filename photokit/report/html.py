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
- `blur_boxes` : de-identification (blur rectangles such as the eye region).

`render_compare` assembles the ``photokit compare`` report from a `CompareView` (plain
arrays, built by `photokit.comparison.compare.Comparison.view`), so the HTML can be tested on
arrays alone.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..io.atomic import encode_image
from ..metrics.registry import family_of

#: Long side, in pixels, of pictures embedded in reports (sharp on screen, light to e-mail).
REPORT_SIDE = 1000
#: JPEG quality of embedded photographs.
JPEG_QUALITY = 82

# --------------------------------------------------------------------------------------
# Escaping and formatting


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


@dataclass(frozen=True)
class Verdict:
    """Plain-language verdict on one change.

    Attributes
    ----------
    text : str
        What a patient can read: "No detectable change", "Decreased (better)", ...
    tone : str
        ``"none"`` (inside the noise), ``"better"``, ``"worse"``, ``"changed"``
        (significant, no preferred direction) or ``"na"`` (not measured).
    """

    text: str
    tone: str


def verdict(delta: float | None, mdc: float | None, better: str = "neither") -> Verdict:
    """Wording of a change `delta` against the metric's minimal detectable change.

    A change with ``|delta| <= mdc`` is "No detectable change": it is inside the
    measurement noise (MDC = 2.77 x within-subject SD, Weir 2005,
    doi:10.1519/15184.1), whatever its percentage.
    """
    if delta is None or not math.isfinite(float(delta)):
        return Verdict("Not measured", "na")
    if mdc is not None and abs(delta) <= mdc:
        return Verdict("No detectable change", "none")
    word = "Increased" if delta > 0 else "Decreased"
    if better == "neither":
        return Verdict(word, "changed")
    good = (delta < 0) == (better == "lower")
    return Verdict(f"{word} ({'better' if good else 'worse'})", "better" if good else "worse")


# --------------------------------------------------------------------------------------
# Pictures


def fit(rgb: np.ndarray, max_side: int = REPORT_SIDE) -> np.ndarray:
    """Downscale (area averaging) so the long side is at most `max_side`; never upscale."""
    arr = np.asarray(rgb)
    s = max_side / max(arr.shape[:2])
    if s >= 1:
        return arr
    size = (max(1, round(arr.shape[1] * s)), max(1, round(arr.shape[0] * s)))
    return cv2.resize(arr, size, interpolation=cv2.INTER_AREA)


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


def blur_boxes(rgb: np.ndarray, boxes: Iterable[Sequence[float]]) -> np.ndarray:
    """Copy of `rgb` with each ``(x, y, w, h)`` box replaced by a heavy blur.

    The blur (Gaussian, sigma = a quarter of the box height, after pixelating to 6 px
    blocks) leaves no recognisable eye detail while keeping the picture readable.
    """
    out = np.array(rgb, copy=True)
    h_img, w_img = out.shape[:2]
    for (x, y, w, h) in boxes:
        x0, y0 = max(0, int(math.floor(x))), max(0, int(math.floor(y)))
        x1, y1 = min(w_img, int(math.ceil(x + w))), min(h_img, int(math.ceil(y + h)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        patch = out[y0:y1, x0:x1]
        small = cv2.resize(patch, (max(1, (x1 - x0) // 6), max(1, (y1 - y0) // 6)),
                           interpolation=cv2.INTER_AREA)
        patch = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        sigma = max(1.0, (y1 - y0) / 4)
        out[y0:y1, x0:x1] = cv2.GaussianBlur(patch, (0, 0), sigma)
    return out


# --------------------------------------------------------------------------------------
# Heat maps and legends


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
    mdc: float | None
    better: str = "neither"
    core: bool = False  # a headline metric (`photokit.metrics.registry.Metric.core`): shown first

    @property
    def verdict(self) -> Verdict:
        return verdict(self.delta, self.mdc, self.better)


def metric_rows(metrics: Iterable, before: Mapping, after: Mapping, delta: Mapping,
                percent: Mapping) -> list[MetricRow]:
    """Rows for `metrics_table` from registry `Metric` objects and the value dicts."""
    return [MetricRow(m.name, m.description, m.unit, before.get(m.name), after.get(m.name),
                      delta.get(m.name), percent.get(m.name), m.mdc, m.better, m.core)
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
            f'<td><span class="pill {v.tone}">{escape(v.text)}</span></td></tr>')
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


SLIDER_JS = r"""
(function () {
  var box = document.getElementById('cmp');
  if (!box) return;
  var top = document.getElementById('cmp-after');
  var handle = document.getElementById('cmp-handle');
  var range = document.getElementById('cmp-range');
  var flip = document.getElementById('btn-flip');
  var blink = document.getElementById('btn-blink');
  var state = document.getElementById('cmp-state');
  var timer = null, dragging = false, pos = 50;
  function set(p) {
    p = Math.max(0, Math.min(100, p));
    pos = p;
    top.style.clipPath = 'inset(0 0 0 ' + p.toFixed(2) + '%)';
    handle.style.left = p.toFixed(2) + '%';
    range.value = p;
    box.setAttribute('data-pos', p.toFixed(1));
  }
  function show(which) {  // 'before' | 'after' | 'slider'
    box.setAttribute('data-view', which);
    box.classList.toggle('flipping', which !== 'slider');
    if (which === 'before') top.style.clipPath = 'inset(0 0 0 100%)';
    else if (which === 'after') top.style.clipPath = 'inset(0 0 0 0)';
    else set(pos);
    state.textContent = which === 'slider' ? 'Drag to compare' :
      (which === 'before' ? 'Showing: before' : 'Showing: after');
  }
  function fromPointer(e) {
    var r = box.getBoundingClientRect();
    if (box.getAttribute('data-view') !== 'slider') { stopBlink(); show('slider'); }
    set((e.clientX - r.left) / r.width * 100);
  }
  box.addEventListener('pointerdown', function (e) {
    dragging = true;
    if (box.setPointerCapture) { try { box.setPointerCapture(e.pointerId); } catch (err) {} }
    fromPointer(e); e.preventDefault();
  });
  box.addEventListener('pointermove', function (e) { if (dragging) fromPointer(e); });
  box.addEventListener('pointerup', function () { dragging = false; });
  box.addEventListener('pointercancel', function () { dragging = false; });
  range.addEventListener('input', function () {
    var v = parseFloat(range.value);
    pos = v; stopBlink(); show('slider'); set(v);
  });
  function stopBlink() {
    if (timer) { clearInterval(timer); timer = null; }
    blink.setAttribute('aria-pressed', 'false');
    blink.textContent = 'Blink';
  }
  flip.addEventListener('click', function () {
    stopBlink();
    var v = box.getAttribute('data-view');
    show(v === 'after' ? 'before' : 'after');
    flip.textContent = v === 'after' ? 'Flip to after' : 'Flip to before';
  });
  blink.addEventListener('click', function () {
    if (timer) { stopBlink(); show('slider'); return; }
    blink.setAttribute('aria-pressed', 'true');
    blink.textContent = 'Stop blinking';
    show('before');
    timer = setInterval(function () {
      show(box.getAttribute('data-view') === 'before' ? 'after' : 'before');
    }, 700);
  });
  document.getElementById('btn-slider').addEventListener('click', function () {
    stopBlink(); show('slider'); flip.textContent = 'Flip to after';
  });
  set(50); show('slider');
})();
"""


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

CSS = """
:root{--ink:#1d2430;--muted:#5d6675;--line:#e3e6eb;--bg:#f6f7f9;--card:#fff;--accent:#2c6e7f;
--better:#1f7a4d;--better-bg:#e3f4ea;--worse:#a4461c;--worse-bg:#fbe9de;--none:#4d5562;
--none-bg:#eef0f3;--changed:#2a5aa8;--changed-bg:#e4ecfa;--warn-bg:#fff6e0;--warn-line:#e8c25a}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:28px 24px 8px}
header.top{border-bottom:3px solid var(--accent);padding-bottom:14px;margin-bottom:18px}
header.top .brand{font-size:12px;letter-spacing:.14em;text-transform:uppercase;color:var(--accent);
font-weight:600}
h1{font-size:28px;margin:4px 0 4px;font-weight:650;letter-spacing:-.01em}
h2{font-size:19px;margin:0 0 10px;font-weight:650}
h3{font-size:15px;margin:0 0 6px}
.subtitle{color:var(--muted);margin:0}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:20px 22px;
margin:0 0 18px}
p.intro{color:var(--muted);margin:-4px 0 14px;max-width:820px}
.muted{color:var(--muted)}
.summary{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 14px;background:#fbfcfd}
.card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.06em}
.card .v{font-size:17px;font-weight:600;margin-top:2px}
.card .d{font-size:13px;color:var(--muted)}
.card.better{border-left:4px solid var(--better)}.card.worse{border-left:4px solid var(--worse)}
.card.none{border-left:4px solid #b8bec8}.card.changed{border-left:4px solid var(--changed)}
.card.na{border-left:4px solid var(--line)}
.headline{font-size:16px;margin:0 0 14px}
.notes{border-radius:8px;padding:10px 14px 10px 14px;margin:0 0 14px;font-size:14px}
.notes ul{margin:0;padding-left:20px}.notes li{margin:2px 0}
.notes.warn{background:var(--warn-bg);border:1px solid var(--warn-line)}
.notes.info{background:#eef5f7;border:1px solid #c8dde3}
.notes.ok{background:var(--better-bg);border:1px solid #b9dec8}
.cmp-wrap{max-width:1000px;margin:0 auto}
.cmp{position:relative;width:100%;overflow:hidden;border-radius:8px;
background:#111;cursor:ew-resize;user-select:none;-webkit-user-select:none;touch-action:none}
.cmp .cmp-img{position:absolute;inset:0;width:100%;height:100%;display:block;pointer-events:none}
.cmp-after{position:absolute;inset:0}
.cmp-handle{position:absolute;top:0;bottom:0;width:3px;margin-left:-1.5px;background:#fff;
box-shadow:0 0 0 1px rgba(0,0,0,.25);pointer-events:none}
.cmp-handle span{position:absolute;top:50%;left:50%;width:34px;height:34px;margin:-17px 0 0 -17px;
border-radius:50%;background:#fff;box-shadow:0 1px 4px rgba(0,0,0,.35)}
.cmp-handle span:before{content:"\\2039\\00a0\\203A";position:absolute;inset:0;text-align:center;
line-height:33px;font-size:18px;color:var(--accent);font-weight:700}
.cmp.flipping .cmp-handle{display:none}
.cmp-tag{position:absolute;top:10px;padding:3px 10px;border-radius:14px;background:rgba(20,24,32,.62);
color:#fff;font-size:13px;font-weight:600;pointer-events:none;max-width:45%;overflow:hidden;
white-space:nowrap;text-overflow:ellipsis}
.cmp-tag small{font-weight:400;margin-left:6px;opacity:.85}
.cmp-tag.left{left:10px}.cmp-tag.right{right:10px}
.cmp[data-view=before] .cmp-tag.right,.cmp[data-view=after] .cmp-tag.left{display:none}
.cmp-controls{display:flex;align-items:center;gap:8px;margin:10px 0 0;flex-wrap:wrap}
.cmp-controls input[type=range]{flex:1 1 200px;accent-color:var(--accent)}
button{font:inherit;font-size:14px;padding:5px 14px;border-radius:6px;border:1px solid #c5cbd3;
background:#fff;color:var(--ink);cursor:pointer}
button:hover{border-color:var(--accent);color:var(--accent)}
button[aria-pressed=true]{background:var(--accent);color:#fff;border-color:var(--accent)}
.maps{display:grid;grid-template-columns:repeat(3,1fr);gap:12px;align-items:start}
.maps.two{grid-template-columns:repeat(2,1fr)}
figure{margin:0}
figure img{width:100%;height:auto;display:block;border-radius:6px;border:1px solid var(--line)}
figcaption{font-size:13px;color:var(--muted);margin-top:4px}
.maprow{margin:0 0 18px}.maprow h3{margin-bottom:8px}
.legends{display:grid;grid-template-columns:2fr 1fr;gap:12px;margin-top:8px}
.legend{font-size:12px;color:var(--muted);max-width:520px}
.legend-label{margin-bottom:3px;color:var(--ink);font-weight:500}
.legend-bar{height:12px;border-radius:3px;border:1px solid rgba(0,0,0,.12)}
.legend-ticks{position:relative;height:16px}
.legend-ticks .tick{position:absolute;transform:translateX(-50%);top:1px;white-space:nowrap}
.legend-ticks .tick:before{content:"";position:absolute;left:50%;top:-4px;height:4px;
border-left:1px solid #8a919c}
.legend-ends{display:flex;justify-content:space-between;margin-top:2px;font-style:italic}
table{border-collapse:collapse;width:100%}
table.metrics{font-size:14px}
table.metrics th,table.metrics td{padding:7px 8px;border-bottom:1px solid var(--line);text-align:left;
vertical-align:middle}
table.metrics thead th{font-size:12px;color:var(--muted);font-weight:600;text-transform:uppercase;
letter-spacing:.04em;border-bottom:2px solid var(--line)}
table.metrics tr.family th{background:#f3f5f8;font-size:13px;color:var(--accent);padding-top:6px}
.num{text-align:right!important;font-variant-numeric:tabular-nums;white-space:nowrap}
.mname{font-weight:500}.mkey{font-size:11.5px;color:var(--muted);font-family:ui-monospace,Menlo,Consolas,monospace}
tr.tone-none .delta,tr.tone-na .delta{color:var(--muted)}
.pill{display:inline-block;padding:2px 10px;border-radius:12px;font-size:12.5px;font-weight:600;
white-space:nowrap}
.pill.none{background:var(--none-bg);color:var(--none)}.pill.na{background:#f4f5f7;color:#8a919c}
.pill.better{background:var(--better-bg);color:var(--better)}
.pill.worse{background:var(--worse-bg);color:var(--worse)}
.pill.changed{background:var(--changed-bg);color:var(--changed)}
.pill.caution{background:#fff1cc;color:#7a5800}
details.more{margin-top:12px}details.more summary{cursor:pointer;color:var(--accent);font-weight:500;
padding:6px 0}
table.kv{font-size:13.5px;margin-bottom:8px}
table.kv th{text-align:left;font-weight:500;color:var(--muted);padding:3px 12px 3px 0;width:42%;
vertical-align:top}
table.kv td{padding:3px 0;word-break:break-word}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:22px}
.swatch{display:inline-block;width:11px;height:11px;border-radius:50%;vertical-align:-1px;margin-right:4px}
footer{max-width:1120px;margin:0 auto;padding:6px 24px 30px;color:var(--muted);font-size:12.5px}
footer table.kv{width:auto;font-size:12.5px}footer table.kv th{width:auto;padding-right:18px}
table.quality{font-size:13px}table.quality th,table.quality td{padding:4px 8px 4px 0;
border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
table.quality thead th{font-size:12px;color:var(--muted);font-weight:600}
table.quality tbody th{font-weight:500;white-space:nowrap}
table.quality .pill{font-size:11.5px;padding:1px 8px;min-width:40px;text-align:center}
@media (max-width:760px){.maps,.cols,.legends{grid-template-columns:1fr}
.maps.two{grid-template-columns:1fr 1fr}}
@media print{body{background:#fff}section{break-inside:avoid;border:none;padding:8px 0}
.cmp-controls{display:none}}
"""

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


# --------------------------------------------------------------------------------------
# The compare report


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
    """One card per family: the most telling metric of each (first significant, else first),
    core (SPEC) measures before the others."""
    fams: dict[str, list[MetricRow]] = {}
    for r in sorted(rows, key=lambda r: not r.core):
        fams.setdefault(r.name.split(".", 1)[0], []).append(r)
    cards = []
    for fam, rs in fams.items():
        sig = [r for r in rs if r.verdict.tone in ("better", "worse", "changed")]
        r = sig[0] if sig else next((r for r in rs if r.verdict.tone != "na"), rs[0])
        v = r.verdict
        detail = (f": {format_value(r.delta, r.unit, mdc=r.mdc, signed=True)} "
                  f"(noise \u00b1{format_value(r.mdc, r.unit, mdc=r.mdc)})"
                  if v.tone != "na" else " could not be measured on these photos")
        more = f" \u00b7 {len(sig)} of {len(rs)} measures changed" if len(rs) > 1 else ""
        cards.append(f'<div class="card {v.tone}"><div class="k">'
                     f'{escape(family_title(fam))}</div>'
                     f'<div class="v">{escape(v.text)}</div><div class="d">'
                     f'{escape(r.description or r.name)}{detail}{escape(more)}</div></div>')
    return f'<div class="summary">{"".join(cards)}</div>'


def headline(rows: Sequence[MetricRow]) -> str:
    """One sentence: how many measures changed beyond their noise floor."""
    measured = [r for r in rows if r.verdict.tone != "na"]
    sig = [r for r in measured if r.verdict.tone in ("better", "worse", "changed")]
    if not measured:
        return "No measure could be computed on these photographs."
    if not sig:
        return (f"No detectable change: all {len(measured)} measures stayed within their "
                "measurement noise.")
    better = sum(r.verdict.tone == "better" for r in sig)
    worse = sum(r.verdict.tone == "worse" for r in sig)
    parts = [f"{len(sig)} of {len(measured)} measures changed beyond their measurement noise"]
    if better or worse:
        parts.append(f"({better} better, {worse} worse)")
    rest = "; the others show no detectable change." if len(sig) < len(measured) else "."
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
        key = " ".join(f'<span class="swatch" style="background:rgb{SPOT_COLOURS[k]};'
                       f'border:1px solid #888"></span>{escape(t)}&nbsp;&nbsp;'
                       for k, t in (("new", f"new ({n_new})"), ("faded", f"faded ({n_faded})"),
                                    ("kept", f"unchanged ({n_kept})")))
        figs = (f'<figure class="map">{img_tag(spots_overlay(fit(view.before_rgb), [s for s in view.spots if s.status != "new"]), "spots on before", max_side=640)}'  # noqa: E501
                f"<figcaption>Before: spots that faded (green) or stayed (white)</figcaption></figure>"
                f'<figure class="map">{img_tag(spots_overlay(fit(view.after_rgb), [s for s in view.spots if s.status != "faded"]), "spots on after", max_side=640)}'  # noqa: E501
                f"<figcaption>After: new spots (orange) and those that stayed (white)</figcaption></figure>")
        parts.append(section("Spots", f'<div class="maps two">{figs}</div><p>{key}</p>', sid="spots",
                             intro="Pigmented spots found in each photo, matched through the "
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


#: Style of the notebook (Jupyter) renderings of results.
NOTEBOOK_CSS = """
.photokit-compare table.metrics{border-collapse:collapse;font-size:13px;margin-top:10px}
.photokit-compare table.metrics td,.photokit-compare table.metrics th{padding:4px 8px;
border-bottom:1px solid #ddd;text-align:left}
.photokit-compare .num{text-align:right}.photokit-compare .mkey{font-size:11px;color:#777}
.photokit-compare .pill{padding:1px 8px;border-radius:10px;font-size:12px}
.photokit-compare .pill.better{background:#e3f4ea;color:#1f7a4d}
.photokit-compare .pill.worse{background:#fbe9de;color:#a4461c}
.photokit-compare .pill.none{background:#eef0f3;color:#4d5562}
.photokit-compare .pill.changed{background:#e4ecfa;color:#2a5aa8}
.photokit-compare .notes.warn{background:#fff6e0;border:1px solid #e8c25a;padding:6px 10px}
.photokit-compare figure img{max-width:100%;height:auto}
.photokit-compare figcaption{font-size:12px;color:#666}
"""
