"""The series report: figures and pages of a treatment course.

`timeline_plot`, `recovery_plot` and `trend_plot` draw a `~photokit.series.course.Series`
with matplotlib's object API (Figure + Agg canvas, never pyplot's global state, so plots
work headless, in threads and in notebooks); `render_report` writes the self-contained
HTML page and `notebook_html` the Jupyter rendering. The series itself only computes
numbers.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from ..metrics.registry import registered
from ..series.course import PIH_MIN_DAYS, THUMB_SIDE, Series
from .html import (
    NOTEBOOK_CSS,
    MetricRow,
    asset,
    escape,
    format_value,
    img_tag,
    key_value_table,
    metrics_table,
    notes_list,
    page,
    section,
)

# matplotlib's object API (Figure + Agg canvas), never pyplot's global state, so plots work
# headless, in threads and in notebooks (a Figure displays itself in Jupyter).

_SESSION_COLOURS = ("#c0392b", "#2c6e7f", "#8e44ad", "#d68910", "#1e8449", "#5d6d7e")


def _figure(w: float, h: float, ncols: int = 1, nrows: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
    return fig, axes


def _treatment_lines(ax, s: Series) -> None:
    for k, v in enumerate(v for v in s.visits if v.kind == "treatment"):
        ax.axvline(v.days_since_baseline, color=_SESSION_COLOURS[0], lw=0.9, alpha=0.55, zorder=0)
        ax.axvspan(v.days_since_baseline, v.days_since_baseline + s.acute_days, color="#c0392b",
                   alpha=0.05, lw=0, zorder=0)
        ax.annotate(f"S{k + 1}", (v.days_since_baseline, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(2, -2), textcoords="offset points", fontsize=7.5, color=_SESSION_COLOURS[0],
                    va="top")


def timeline_plot(s: Series, ax=None):
    """Timeline of the course: baseline, sessions (red, with their acute window), visits."""
    fig = None
    if ax is None:
        fig, axes = _figure(9.5, 1.7)
        ax = axes[0, 0]
    vis = s.visits
    _treatment_lines(ax, s)
    style = {"baseline": ("D", "#1d2430"), "treatment": ("v", "#c0392b"), "visit": ("o", "#2c6e7f")}
    for kind, (marker, colour) in style.items():
        pts = [v.days_since_baseline for v in vis if v.kind == kind and v.ok]
        ax.scatter(pts, [0] * len(pts), marker=marker, s=46, color=colour, label=kind, zorder=3)
    bad = [v.days_since_baseline for v in vis if not v.ok]
    if bad:
        ax.scatter(bad, [0] * len(bad), marker="x", s=60, color="#888", label="excluded", zorder=4)
    for v in vis:
        ax.annotate(f"{v.days_since_baseline:.0f}", (v.days_since_baseline, 0), xytext=(0, -13),
                    textcoords="offset points", ha="center", fontsize=6.5, color="#5d6675")
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_ylim(-1, 1)
    ax.set_xlabel(f"days since baseline ({s.baseline.iso_date()[:10]})", fontsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.05), fontsize=7, frameon=False)
    return fig if fig is not None else ax.figure


def recovery_plot(s: Series, metric: str = "redness.a_mean"):
    """Redness over the course with the fitted recovery after each session (left), and the
    excess over the pre-treatment level against days since each session (right), with the
    noise floor (± MDC) shaded."""
    fig, axes = _figure(10, 3.3, ncols=2)
    ax, ax2 = axes[0]
    m = s.metric(metric)
    unit = m.unit if m else ""
    ok = [v for v in s.visits if v.ok and v.metrics.get(metric) is not None]
    _treatment_lines(ax, s)
    ax.plot([v.days_since_baseline for v in ok], [v.metrics[metric] for v in ok], "o",
            color="#1d2430", ms=4, zorder=3)
    fits = [r for r in s.recovery if r.metric == metric]
    for r in fits:
        c = _SESSION_COLOURS[r.treatment_index % len(_SESSION_COLOURS)]
        t0 = next(v.days_since_baseline for v in s.visits if v.entry is r.treatment)
        f = r.fit
        if f.pre_level is not None and f.mdc:
            ax2.axhspan(-f.mdc, f.mdc, color="#9aa3ad", alpha=0.12, lw=0) if r is fits[0] else None
        if len(f.t):
            base = f.pre_level if f.pre_level is not None else (f.y_inf or 0.0)
            ax2.plot(f.t, f.y - base, "o", color=c, ms=4)
        if f.ok:
            tmax = max(float(f.t.max()) if len(f.t) else 0.0, 3 * f.tau_days)
            tt = np.linspace(0, tmax, 200)
            ax.plot(t0 + tt, f.predict(tt), "-", color=c, lw=1.3)
            base = f.pre_level if f.pre_level is not None else f.y_inf
            ci = ("" if f.tau_ci is None else f" [{f.tau_ci[0]:.1f}\u2013{f.tau_ci[1]:.1f}]")
            ax2.plot(tt, f.predict(tt) - base, "-", color=c, lw=1.3,
                     label=f"S{r.treatment_index + 1}: \u03c4 = {f.tau_days:.1f} d{ci}")
        else:
            ax2.plot([], [], "o", color=c, label=f"S{r.treatment_index + 1}: no fit")
    if fits and fits[0].fit.mdc:
        ax2.annotate("noise floor (\u00b1MDC)", (1.0, fits[0].fit.mdc), xycoords=("axes fraction", "data"),
                     ha="right", va="bottom", fontsize=7, color="#5d6675")
    ax.set_xlabel("days since baseline", fontsize=8)
    ax.set_ylabel(f"{metric} ({unit})", fontsize=8)
    ax2.set_xlabel("days since session", fontsize=8)
    ax2.set_ylabel(f"excess over pre-session level ({unit})", fontsize=8)
    ax2.axhline(0, color="#5d6675", lw=0.6)
    ax2.set_xlim(left=-0.3)
    if fits:
        ax2.legend(fontsize=7, frameon=False)
    return fig


def _plotted_recovery_metric() -> str | None:
    """The recovery metric the report plots: the first with `photokit.metrics.registry.Metric.recovery`."""

    return next((m.name for m in registered() if m.recovery), None)


def trend_metrics(s: Series, metrics=None) -> list[str]:
    """Metrics to plot as percent of baseline (at most 9). Left out by default: those
    whose baseline is within their own noise floor (``|baseline| <= floor``, the trend's
    per-pair floor, else the registered one: e.g. a spot count of 2 against a floor of 4),
    for which a percentage is meaningless, and those no eligible visit has a value of;
    the trend table still lists them."""
    if metrics is not None:
        return [m for m in metrics if m in s.trend]

    def plottable(k):
        tr = s.trend[k]
        return (tr.baseline is not None and abs(tr.baseline) > _floor(tr)
                and any(p.value is not None for p in tr.points))


    ranked = sorted((m.trend_rank, i, m.name) for i, m in enumerate(registered())
                    if m.trend_rank is not None and m.name in s.trend and plottable(m.name))
    return [name for _, _, name in ranked][:9]


def _floor(tr) -> float:
    """The noise floor a trend is judged with: its per-pair floor, else the registered one."""
    return tr.noise_floor if tr.noise_floor is not None else tr.mdc


def trend_plot(s: Series, metrics=None):
    """Percent change from baseline of each metric at every visit; the grey band is the
    trend's noise floor as a percentage of baseline (none, and "not judged" in the title,
    where its latest change has no floor); open circles are visits in the acute window
    after a session (not used for the trend)."""
    names = trend_metrics(s, metrics)
    n = max(1, len(names))
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = _figure(3.4 * ncols, 2.3 * nrows, ncols=ncols, nrows=nrows)
    flat = axes.ravel()
    for ax in flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(flat, names, strict=False):
        tr = s.trend[name]
        _treatment_lines(ax, s)
        unjudged = tr.delta is not None and tr.significant is None
        if tr.baseline and not unjudged:     # no noise band where the change has no floor
            band = 100.0 * _floor(tr) / abs(tr.baseline)
            ax.axhspan(-band, band, color="#9aa3ad", alpha=0.18, lw=0)
        ax.axhline(0, color="#5d6675", lw=0.6)
        acute = [v for v in s.visits if v.ok and v.acute and v.percent_change.get(name) is not None]
        ax.plot([v.days_since_baseline for v in acute], [v.percent_change[name] for v in acute], "o",
                mfc="none", color="#9aa3ad", ms=4)
        pts = [p for p in tr.points if p.percent_change is not None]
        xs = [0.0] + [p.days_since_baseline for p in pts]
        ys = [0.0] + [p.percent_change for p in pts]
        colours = ["#1d2430"] + ["#1f7a4d" if (p.significant and tr.better != "neither"
                                               and (p.delta < 0) == (tr.better == "lower"))
                                 else "#a4461c" if p.significant and tr.better != "neither"
                                 else "#2a5aa8" if p.significant else "#1d2430" for p in pts]
        ax.plot(xs, ys, "-", color="#1d2430", lw=0.9)
        ax.scatter(xs, ys, c=colours, s=18, zorder=3)
        arrow = {"lower": " (lower is better)", "higher": " (higher is better)"}.get(tr.better, "")
        # a long name and the "not judged" note wrap rather than run past the plot's edge
        # (clipped: "pores.mean_contrast (lower is better) \u2013 not judg": QA, 2026-12-08)
        ax.set_title(f"{name}{arrow}" + ("\nnot judged" if unjudged else ""), fontsize=8.5, loc="left")
        ax.set_ylabel("% vs baseline", fontsize=7.5)
    for ax in axes[-1]:
        ax.set_xlabel("days since baseline", fontsize=7.5)
    return fig


def figure_svg_uri(fig) -> str:
    """A matplotlib Figure as a ``data:image/svg+xml`` URI (text as paths: no fonts fetched)."""
    import base64

    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.BytesIO()
    FigureCanvasSVG(fig)
    with _mpl_rc():
        fig.savefig(buf, format="svg")
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _mpl_rc():
    import matplotlib

    return matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "photokit",
                                  "font.family": "DejaVu Sans"})


def _fig_html(fig, alt: str, caption: str = "") -> str:

    w, h = (fig.get_size_inches() * fig.dpi).astype(int)
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (f'<figure class="plot"><img src="{figure_svg_uri(fig)}" alt="{escape(alt)}" '
            f'width="{w}" height="{h}">{cap}</figure>')


# ----------------------------------------------------------------------------- report

SERIES_CSS = asset("series.css")


def _fmt(x, nd=1, signed=False) -> str:
    if x is None or not math.isfinite(float(x)):
        return "\u2013"
    return (f"{x:+.{nd}f}" if signed else f"{x:.{nd}f}").replace("-", "\u2212")


def _recovery_table(s: Series) -> str:

    rows = []
    for r in s.recovery:
        f = r.fit
        ci = "" if f.tau_ci is None else f" ({_fmt(f.tau_ci[0])}\u2013{_fmt(f.tau_ci[1])})"
        dci = ("" if f.days_to_baseline_ci is None
               else f" ({_fmt(f.days_to_baseline_ci[0])}\u2013{_fmt(f.days_to_baseline_ci[1])})")
        status = ("fitted" if f.ok else "no fit") + (" \u00b7 persistent" if f.persistent else "")
        rows.append(
            f"<tr><td>S{r.treatment_index + 1}</td><td>{escape(r.treatment.iso_date()[:16])}</td>"
            f"<td class=mkey>{escape(f.metric)}</td>"
            f"<td class=num>{_fmt(f.tau_days, 2)}{ci}</td>"
            f"<td class=num>{_fmt(f.days_to_baseline)}{dci}</td>"
            f"<td class=num>{_fmt(f.amplitude, 2, signed=True)}</td>"
            f"<td>{escape(f.model or '')}</td><td class=num>{len(f.t)}</td>"
            f"<td>{escape(status)}</td><td>{escape(f.reason or '')}</td></tr>")
    if not rows:
        return '<p class="muted">No treatment in this series: nothing to recover from.</p>'
    head = ("<thead><tr><th>Session</th><th>Date</th><th>Measure</th><th class=num>"
            "\u03c4 days (95% CI)</th><th class=num>Days to baseline (95% CI)</th>"
            "<th class=num>Peak excess</th><th>Model</th><th class=num>Photos</th><th>Status</th>"
            "<th>Note</th></tr></thead>")
    return f'<div class="scroll"><table class="recovery">{head}<tbody>{"".join(rows)}</tbody></table></div>'


def _trend_table(s: Series) -> str:

    elig = s.eligible_visits()
    if not elig:
        return ('<p class="muted">No usable visit outside the acute window '
                f"({s.acute_days:g} days after a session) yet: no improvement to judge.</p>")
    last = elig[-1]
    base = s.visits[0]
    by_photo = {v.photo: v for v in elig}
    rows = []
    for name, tr in s.trend.items():
        m = s.metric(name)
        # the visit the trend's change is taken at: its latest with a value
        valid = [p for p in tr.points if p.delta is not None]
        at = by_photo.get(valid[-1].photo, last) if valid else last
        rows.append(MetricRow(name, m.description if m else name, tr.unit, tr.baseline,
                              at.metrics.get(name), tr.delta, tr.percent_change,
                              tr.noise_floor if tr.points else tr.mdc, tr.better, bool(m and m.core),
                              at.not_judged.get(name)))
    return metrics_table(rows, before_label=f"Baseline {base.entry.iso_date()[:10]}",
                         after_label=f"{escape(last.photo)[:40]} (day {last.days_since_baseline:.0f})")


def _thumbs(s: Series) -> str:

    cards = []
    for v in s.visits:
        cls = "excluded" if not v.ok else v.kind
        dst = ("" if v.days_since_treatment is None
               else f" \u00b7 day {v.days_since_treatment:.1f} after S{v.treatment_index + 1}")
        if v.method == "baseline":
            al = "reference frame"
        elif v.ok:
            al = (f"aligned {v.method}" + (f" via {v.via}" if v.via else "")
                  + f", confidence {v.confidence:.2f}")
        else:
            al = v.reason or "excluded"
        img = (img_tag(v.thumbnail, f"{v.photo} aligned to baseline", max_side=THUMB_SIDE)
               if v.thumbnail is not None else '<div class="muted">no picture</div>')
        note = f'<div class="muted">{escape(v.entry.note)}</div>' if v.entry.note else ""
        tag = "excluded" if not v.ok else v.kind
        cards.append(f'<div class="thumb {escape(cls)}">{img}<div class="t">{escape(v.photo)}</div>'
                     f'<div><span class="kindtag {escape(tag)}">{escape(tag)}</span> '
                     f"{escape(v.entry.iso_date()[:16])}{escape(dst)}</div>"
                     f'<div class="muted">{escape(al)}</div>{note}</div>')
    return f'<div class="thumbs">{"".join(cards)}</div>'


def _visits_table(s: Series) -> str:

    names = s.metric_names()
    metrics = {n: s.metric(n) for n in names}
    head = ("<thead><tr><th>Photo</th><th>Date</th><th>Kind</th><th>Days since session</th>"
            "<th>Alignment</th><th>Conf.</th>"
            + "".join(f"<th title='{escape(n)}'>{escape(n)}</th>" for n in names) + "</tr></thead>")
    body = []
    for v in s.visits:
        cells = []
        for n in names:
            m = metrics[n]
            mdc = m.mdc if m else None
            val = format_value(v.metrics.get(n), "", mdc=mdc)
            d = v.delta.get(n)
            sig = v.significant.get(n)
            if v.method != "baseline" and d is not None:
                val += f' <span class="muted">({format_value(d, "", mdc=mdc, signed=True)})</span>'
            cells.append(f"<td class='num{' sig' if sig else ''}'>{val}</td>")
        # an excluded visit says what failed: loading, alignment or measuring (a photo that
        # could not be read was labelled "failed" alignment: QA, 2026-12-08)
        al = ("baseline" if v.method == "baseline" else v.method if v.ok
              else "not loaded" if (v.reason or "").startswith("cannot load")
              else "not measured" if (v.reason or "").startswith("cannot measure") else "failed")
        conf = "" if v.confidence is None else f"{v.confidence:.2f}"
        dst = "" if v.days_since_treatment is None else f"{v.days_since_treatment:.1f}"
        body.append(f"<tr class='{'excluded' if not v.ok else ''}'><td>{escape(v.photo)}</td>"
                    f"<td>{escape(v.entry.iso_date()[:16])}</td><td>{escape(v.kind)}</td>"
                    f"<td class=num>{escape(dst)}</td><td>{escape(al)}</td><td class=num>{conf}</td>"
                    + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="visits">{head}<tbody>{"".join(body)}</tbody></table></div>'
            '<p class="muted">Values over the series region; in brackets the change from baseline, '
            "in bold where it exceeds the measure's noise floor.</p>")


def _summary(s: Series) -> str:

    vis = s.visits
    ok = [v for v in vis if v.ok]
    span = vis[-1].days_since_baseline if vis else 0
    methods = {}
    for v in ok:
        if v.method != "baseline":
            methods[v.method] = methods.get(v.method, 0) + 1
    sub = next((e.subject for e in s.entries if e.subject), None)
    area = next((e.area for e in s.entries if e.area), None)
    facts = [("Baseline", f"{s.baseline.photo} ({s.baseline.iso_date()[:10]})"),
             ("Photos", f"{len(vis)} ({len(ok)} usable, {len(vis) - len(ok)} excluded)"),
             ("Sessions", str(len(s.treatments))), ("Span", f"{span:.0f} days")]
    if sub:
        facts.append(("Subject", sub))
    if area:
        facts.append(("Area", area))
    facts.append(("Alignment", ", ".join(f"{k}: {n}" for k, n in methods.items()) or "\u2013"))
    facts.append(("Region", f"{s.region_source}, {int(s.region.sum()) if s.region is not None else 0} px "
                            "seen in every usable photo"))
    tau = [f"S{r.treatment_index + 1}: \u03c4 {r.fit.tau_days:.1f} d, back to baseline in "
           f"{_fmt(r.fit.days_to_baseline)} d" if r.fit.ok else f"S{r.treatment_index + 1}: no fit"
           for r in s.recovery if r.metric == _plotted_recovery_metric()]
    improved = [k for k, t in s.trend.items() if t.improved]
    worse = [k for k, t in s.trend.items() if t.significant and t.improved is False and t.better != "neither"]
    unjudged = [k for k, t in s.trend.items() if t.delta is not None and t.significant is None]
    lines = []
    if tau:
        lines.append("Redness recovery (a*): " + "; ".join(tau) + ".")
    if s.trend:
        lines.append(f"At the latest visit outside the acute window: {len(improved)} measure(s) "
                     f"improved beyond their noise floor ({', '.join(improved) or 'none'}), "
                     f"{len(worse)} worsened ({', '.join(worse) or 'none'})"
                     + (f"; {len(unjudged)} could not be judged (the table says why)." if unjudged else "."))
    flags = notes_list([f["message"] for f in s.flags], kind="warn", title="Flags")
    if not s.flags:
        # say only what was checked: the recovery fits, and new pigment where visits far
        # enough after a session had a judged pigment change
        fitted = any(r.fit.ok for r in s.recovery)
        pigment = [m.name for m in registered() if m.pih_sign]
        checked = any(v.ok and v.days_since_treatment is not None and v.days_since_treatment >= PIH_MIN_DAYS
                      and any(v.noise_floor.get(n) is not None for n in pigment) for v in s.visits)
        said = ((["redness settled within 12 days after every fitted session"] if fitted else [])
                + (["no new pigment beyond the noise floor"] if checked else []))
        flags = (notes_list(["No complication sign: " + " and ".join(said) + "."], kind="ok") if said
                 else notes_list(["No treatment session in this series: recovery and complications are "
                                  "not assessed."], kind="info") if not s.treatments else "")
    warn = notes_list(s.warnings, kind="info", title="Notes")
    return (key_value_table(facts) + notes_list(lines, kind="info") + flags + warn)


def render_report(s: Series, *, title: str = "Treatment series") -> str:
    """The complete HTML of a ``photokit series`` report (built on `photokit.report.html`)."""

    s.analyse()
    parts = [section("Summary", _summary(s), sid="summary"),
             section("Timeline", _fig_html(timeline_plot(s), "timeline of the course"), sid="timeline",
                     intro="Baseline, sessions (red lines; the shaded band is the acute window) "
                           "and follow-up visits; numbers are days since baseline."),
             section("Recovery after each session",
                     (_fig_html(recovery_plot(s, _plotted_recovery_metric()), "redness recovery curves")
                      if s.treatments else "") + _recovery_table(s), sid="recovery",
                     intro="Redness after each session fitted with "
                           "y(t) = y\u221e + A\u00b7exp(\u2212t/\u03c4); "
                           "\u03c4 is the time constant, days to baseline the time until the excess "
                           "over the pre-session level falls below the noise floor."),
             section("Improvement over the course",
                     _fig_html(trend_plot(s), "metric trends with noise bands") + _trend_table(s),
                     sid="trend",
                     intro=f"Each measure against baseline at visits at least {s.acute_days:g} days "
                           "after a session; the grey band is the noise floor (minimal detectable "
                           "change): a point inside it is no detectable change."),
             section("Every visit, aligned to the baseline", _thumbs(s), sid="visits",
                     intro="Each photo resampled into the baseline frame (the white line is the "
                           "analysed region)."),
             section("Measurements", _visits_table(s), sid="table")]
    first, last = s.entries[0].iso_date()[:10], s.entries[-1].iso_date()[:10]
    subtitle = escape(f"{Path(s.source).name if s.source != '<list>' else 'series'} \u00b7 "
                      f"{first} to {last} \u00b7 {len(s.entries)} photos")
    params = dict(s.params(), photokit_series_seconds=None if s.seconds is None else round(s.seconds, 1))
    return page(title, "".join(parts), subtitle=subtitle, params=params, extra_css=SERIES_CSS)


def notebook_html(s: Series) -> str:
    """Compact HTML for Jupyter: summary, recovery and trend plots, thumbnails."""

    s.analyse()
    css = SERIES_CSS.replace("var(--line)", "#ddd").replace("var(--none-bg)", "#eef0f3")
    return (f'<div class="photokit-compare photokit-series"><style>{NOTEBOOK_CSS}{css}</style>'
            f"<p><b>{escape(repr(s))}</b></p>{_summary(s)}"
            f'{_fig_html(recovery_plot(s), "recovery")}{_fig_html(trend_plot(s), "trends")}'
            f"{_thumbs(s)}</div>")
