"""The notebook rendering of one measurement: the analysed skin and every metric."""

from __future__ import annotations

from ..metrics.registry import registered
from .html import escape, format_value, img_tag


def notebook_html(m) -> str:
    """Compact HTML for Jupyter: the photo with its analysed skin outlined, the metrics
    with their units, and the warnings.

    Parameters
    ----------
    m : photokit.measurement.measure.Measurement
    """
    rows = "".join(   # format_value writes the unit with the value
        f"<tr><td>{escape(met.name)}</td><td>{format_value(m.metrics.get(met.name), met.unit, mdc=met.mdc)}"
        f"</td></tr>"
        for met in registered() if met.name in m.metrics)
    pic = ""
    if m.photo is not None and m.photo.is_colour and m.analysis is not None:
        pic = img_tag(m.outlined(), "analysed skin", max_side=360)
    warn = "".join(f"<li>{escape(w)}</li>" for w in m.warnings)
    return (f"<div><b>{escape(m.image)}</b> &mdash; calibration {escape(m.calibration.method)}, "
            f"scale {escape(m.scale.source)}"
            f"<div style='display:flex;gap:1em'>{pic}<table>{rows}</table></div>"
            f"{'<ul>' + warn + '</ul>' if warn else ''}</div>")
