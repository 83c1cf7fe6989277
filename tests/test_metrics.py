"""The metric registry: SPEC names present, every metric declared completely, and the
README's metrics table in step with the registry."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from photokit.metrics import registry as metrics

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

    monkeypatch.setitem(metrics._FAMILIES, "spots", replace(metrics.family_of("spots"), why_not=reason))
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

    code = ("import photokit.metrics.spots, photokit.metrics.pores; from photokit import metrics; "
            "print(','.join(metrics.names()))")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert first.stdout.strip().split(",") == metrics.names()
    assert metrics.names()[0] == "redness.a_mean" and metrics.names()[-1].startswith("spots.")


def test_a_metric_gets_the_reason_of_the_detector_that_measures_it(monkeypatch):
    """texture.pore_density is measured by the pore detector: a blank value is explained
    by the pores' reason and counted with the pores, not with the texture band."""
    for fam in ("texture", "pores"):
        monkeypatch.setitem(metrics._FAMILIES, fam, replace(metrics.family_of(fam),
                                                            why_not=lambda an, f=fam: f"no {f}"))
    got = metrics.why_not_measured("an", {"texture.roughness": 1.0, "texture.ra": None,
                                          "texture.pore_density": None, "pores.area_pct": None})
    assert got == ["pores not measured: no pores", "texture (1 of 2 metrics) not measured: no texture"]


def test_roles_come_from_the_registry():
    """Headline, recovery, pigment-sign, zone, panel and trend roles are declared by the
    metrics themselves; families carry their titles and order."""
    reg = {m.name: m for m in metrics.registered()}
    assert [m.name for m in metrics.registered() if m.core] == SPEC_METRICS
    assert [n for n, m in reg.items() if m.recovery] == ["redness.a_mean", "redness.ei_mean"]
    assert {n: m.pih_sign for n, m in reg.items() if m.pih_sign} == {
        "pigment.mi_mean": 1.0, "pigment.ita_mean": -1.0, "pigment.evenness": 1.0, "spots.area_pct": 1.0}
    assert [n for n, m in reg.items() if m.panel] == ["redness.a_mean", "pigment.mi_mean"]
    assert [f.name for f in metrics.families()][:5] == ["redness", "pigment", "texture", "pores", "spots"]
    assert metrics.family_of("pigment").title == "Pigment and tone"
    # the pore detector changed twice (v2: whole skin, 0.14 mm/px, 2.75 L*; v3: scales from
    # 0.7 px, contrast at least twice the local texture RMS): its four metrics are version 3
    pores = {"texture.pore_density", "pores.mean_diameter_mm", "pores.area_pct", "pores.mean_contrast"}
    # ...the band's strip sample (at least 6 strips spread over the skin) and the lines
    # (searched over all the skin, no strip sample) changed once
    v2 = {"texture.roughness", "texture.ra", "texture.glcm_contrast", "texture.glcm_homogeneity",
          "texture.glcm_energy", "texture.lbp_uniformity", "texture.sels_dark_pct",
          "texture.sels_bright_pct", "texture.wrinkle_density", "texture.wrinkle_depth"}
    # ...and the spots' cross-talk boundary (haemoglobin over melanin contrast 2.5 -> 1)
    v2 |= {"spots.count", "spots.area_pct", "spots.density", "spots.brown_contrast",
           "spots.red_count", "spots.red_area_pct"}
    # ...and GLCM at 0.3 mm exactly (interpolated between whole pixel distances, not rounded)
    v3 = pores | {"texture.glcm_contrast", "texture.glcm_homogeneity", "texture.glcm_energy"}
    assert metrics.signature() == {n: 3 if n in v3 else 2 if n in v2 else 1 for n in reg}
