"""``photokit demo``: samples when present, else a regenerated course; writes the series report."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from photokit.cli import demo
from photokit.cli.main import cli


def _small_course(target, seed=7):
    from photokit import synth
    from photokit.synth import SkinParams

    synth.make_series(target, seed=seed, sessions=1, visit_days=(0, 2, 5), final_visit_days=30,
                      params=SkinParams(card=True, width=640, height=480, mm_per_px=0.175),
                      contact_sheet=False)
    return target / "manifest.csv"


def test_demo_regenerates_without_samples(tmp_path, monkeypatch):
    calls = []

    def small_regenerate(outdir):
        calls.append(outdir)
        return _small_course(outdir / "samples")

    monkeypatch.chdir(tmp_path)  # no ./samples here, as after a plain pip install
    monkeypatch.setattr(demo, "regenerate", small_regenerate)
    r = CliRunner().invoke(cli, ["demo", "out"])
    assert r.exit_code == 0, r.output
    assert calls and (tmp_path / "out" / "samples" / "manifest.csv").exists()
    report = tmp_path / "out" / "series-report.html"
    assert f"Series report: {report.resolve()}" in r.stdout
    html = report.read_text()
    assert "Recovery after each session" in html and "data:image/svg+xml" in html
    doc = json.loads((tmp_path / "out" / "series.json").read_text())
    assert doc["recovery"][0]["tau_days"] is not None
    assert (tmp_path / "out" / "series.csv").exists()


def test_demo_uses_samples_when_present(tmp_path, monkeypatch):
    _small_course(tmp_path / "samples", seed=8)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo, "regenerate", lambda outdir: pytest.fail("must not regenerate"))
    res = demo.run_demo(tmp_path / "o")
    assert res["origin"] == "samples" and res["manifest"] == tmp_path / "samples" / "manifest.csv"
    assert res["report"].exists()


def test_regenerate_recipe_matches_the_shipped_samples(tmp_path):
    """The regenerated course is the samples' recipe (same manifest), without rendering it all."""
    from pathlib import Path

    from photokit.synth import SeriesPlan

    shipped = Path(__file__).resolve().parents[1] / "samples" / "manifest.csv"
    if not shipped.exists():
        pytest.skip("no samples/ in this checkout")
    plan = SeriesPlan(**demo.SAMPLE_PLAN)
    rows = shipped.read_text().strip().splitlines()[1:]
    caps = plan.captures()
    assert len(caps) == len(rows)
    for cap, row in zip(caps, rows, strict=True):
        photo, date, kind = row.split(",")[:3]
        assert kind == cap["kind"] and date == cap["time"].isoformat(timespec="minutes")


@pytest.mark.slow
def test_demo_full_size_regeneration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = demo.run_demo(tmp_path / "d")
    assert res["origin"] == "regenerated" and res["report"].exists()
    fits = [r.fit for r in res["series"].recovery if r.metric == "redness.a_mean"]
    assert all(f.ok for f in fits)


def test_the_demo_measures_the_course_at_its_recorded_scale(tmp_path):
    """The generator records each photo's scale beside it; the demo gives the baseline's
    to the series as a user gives --mm-per-px (None for a course without a record)."""
    manifest = _small_course(tmp_path / "samples", seed=9)
    assert demo.sample_scale(manifest) == pytest.approx(0.175)
    res = demo.run_demo(tmp_path / "o", cwd=tmp_path)               # and the series is given it
    assert res["series"].mm_per_px == pytest.approx(0.175)
    for f in manifest.parent.glob("*.json"):
        if f.stem != "reference_roi" and f.stem != "roi":
            f.unlink()
    assert demo.sample_scale(manifest) is None
