"""The metric registry: SPEC names present, every metric declared completely, and the
README's metrics table in step with the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from photokit import metrics

SPEC_METRICS = [
    "redness.a_mean", "redness.ei_mean", "redness.area_pct", "pigment.mi_mean",
    "pigment.ita_mean", "pigment.evenness", "texture.roughness", "texture.wrinkle_density",
    "texture.pore_density", "spots.count", "spots.area_pct",
]


def test_spec_metrics_registered():
    names = metrics.names()
    assert all(n in names for n in SPEC_METRICS)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("m", metrics.registered(), ids=lambda m: m.name)
def test_metric_declared_completely(m):
    assert m.name.count(".") >= 1 and m.name == m.name.lower()
    assert m.unit and m.description
    assert m.mdc > 0 and m.better in ("lower", "higher", "neither")
    assert m.is_significant(m.mdc * 1.01) and not m.is_significant(m.mdc * 0.99)


def test_unknown_metric_named():
    with pytest.raises(KeyError, match="redness.a_mean"):
        metrics.get("redness.nope")


def test_readme_metrics_table_is_the_registry():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start, end = "<!-- metrics table: generated from the registry -->\n", "\n<!-- end metrics table -->"
    block = readme[readme.index(start) + len(start): readme.index(end)]
    assert block == metrics.markdown_table(), (
        "README metrics table out of date: paste photokit.metrics.markdown_table() between the markers")


def test_registering_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        @metrics.metric("redness.a_mean", unit="a*", description="dup", mdc=1.0)
        def other(an):  # pragma: no cover - never computed
            return 0.0


def test_why_not_measured_asks_only_families_with_blanks(monkeypatch):
    asked = []

    def reason(an):
        asked.append(an)
        return "too coarse"

    monkeypatch.setitem(metrics._WHY_NOT, "spots", reason)
    assert metrics.why_not_measured("an", {"spots.count": None, "redness.a_mean": 1.0}) == [
        "spots not measured: too coarse"]
    assert metrics.why_not_measured("an", {"spots.count": 3.0, "redness.a_mean": None}) == []
    assert asked == ["an"]
    # when others of the family were measured, the warning says how many are blank
    assert metrics.why_not_measured("an", {"spots.count": None, "spots.red_count": 2.0,
                                           "spots.density": None}) == [
        "spots (2 of 3 metrics) not measured: too coarse"]


def test_order_does_not_depend_on_import_order():
    """Export columns follow the built-in module order, whichever module loaded first."""
    import subprocess
    import sys

    code = ("import photokit.spots, photokit.pores; from photokit import metrics; "
            "print(','.join(metrics.names()))")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert first.stdout.strip().split(",") == metrics.names()
    assert metrics.names()[0] == "redness.a_mean" and metrics.names()[-1].startswith("spots.")
