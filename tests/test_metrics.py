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
