"""A metric from another package, registered through the ``photokit.metrics`` entry point,
appears in every output: measure, compare (with its noise floor and verdict), series,
the batch database and CSV, and both HTML reports; a batch re-run after it was added
scores only it."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from photokit.batch.archive import score_archive
from photokit.cli.main import cli
from photokit.metrics import registry as metrics

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
NAME = "dummy.green_mean"

PLUGIN = textwrap.dedent('''
    """A third-party metric family for photokit's tests."""
    from photokit.metrics import family, metric

    CALLS = []

    family("dummy", title="Dummy family", order=50)


    @metric("dummy.green_mean", unit="G", mdc=0.5, better="neither", core=True,
            description="mean linear green (x100) of the analysed skin (test plugin)")
    def green_mean(an):
        CALLS.append(an.name)
        lv = an.level(max_side=256)
        return float(lv.linear[..., 1][lv.mask].mean() * 100.0)
''')


def _install_plugin(root: Path) -> None:
    """A package ``pk_dummy`` with an installed distribution's metadata (dist-info with an
    ``entry_points.txt``), importable from `root`: what ``pip install`` would leave."""
    (root / "pk_dummy").mkdir()
    (root / "pk_dummy" / "__init__.py").write_text(PLUGIN)
    info = root / "pk_dummy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pk-dummy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[photokit.metrics]\ndummy = pk_dummy\n")


def _isolate_registry(monkeypatch) -> None:
    """Work on copies of the registry (photokit's own metrics loaded), restored afterwards."""
    metrics.load_plugins()
    monkeypatch.setattr(metrics, "_REGISTRY", dict(metrics._REGISTRY))
    monkeypatch.setattr(metrics, "_FAMILIES", dict(metrics._FAMILIES))
    monkeypatch.setattr(metrics, "_LOADED", set(metrics._LOADED))


def _load_plugin(tmp_path, monkeypatch):
    """Install the plugin under `tmp_path`, load it into a copy of the registry, return it."""
    root = tmp_path / "site"
    root.mkdir()
    _install_plugin(root)
    _isolate_registry(monkeypatch)
    monkeypatch.syspath_prepend(str(root))
    metrics.load_plugins()
    return sys.modules["pk_dummy"]


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    """The plugin on sys.path and loaded; the registry restored afterwards."""
    yield _load_plugin(tmp_path, monkeypatch)
    sys.modules.pop("pk_dummy", None)


@pytest.fixture()
def samples(tmp_path) -> Path:
    d = tmp_path / "samples"
    shutil.copytree(SAMPLES, d)
    return d


def _run(args):
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def test_plugin_metric_is_registered_through_the_entry_point(plugin):
    m = metrics.get(NAME)
    assert m.compute.__module__ == "pk_dummy" and m.family == "dummy"
    assert metrics.names()[-1] == NAME            # family order 50: after photokit's own
    assert metrics.family_of("dummy").title == "Dummy family"
    assert metrics.signature()[NAME] == 1


def test_plugin_metric_in_measure_and_compare(plugin, samples, tmp_path):
    out = json.loads(_run(["measure", str(samples / "00_baseline.jpg"), "--json"]).stdout)
    assert out["metrics"][NAME] > 0

    report = tmp_path / "c.html"
    res = _run(["compare", str(samples / "00_baseline.jpg"), str(samples / "04_s2_day0.jpg"),
                "--roi", str(samples / "roi.json"), "--report", str(report), "--json"])
    c = json.loads(res.stdout)
    for key in ("before", "after"):
        assert c[key]["metrics"][NAME] > 0
    assert c["delta"][NAME] == pytest.approx(c["after"]["metrics"][NAME] - c["before"]["metrics"][NAME])
    assert c["noise_floor"][NAME] == 0.5
    assert c["significant"][NAME] == (abs(c["delta"][NAME]) > 0.5)
    page = report.read_text()
    assert f'data-metric="{NAME}"' in page and "Dummy family" in page


def test_plugin_metric_in_series(plugin, samples, tmp_path):
    report, table = tmp_path / "s.html", tmp_path / "s.csv"
    res = _run(["series", str(samples / "manifest.csv"), "--report", str(report), "--csv", str(table),
                "--json"])
    s = json.loads(res.stdout)
    assert all(NAME in v["metrics"] for v in s["visits"] if v["metrics"])
    assert NAME in s["trend"]
    assert NAME in next(csv.reader(table.read_text().splitlines()))
    assert NAME in report.read_text()


def test_plugin_metric_in_batch_and_a_rerun_scores_only_it(samples, tmp_path, monkeypatch):
    db, export = tmp_path / "b.db", tmp_path / "b.csv"
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("00_baseline.jpg", "03_s1_day5.jpg"):
        shutil.copy(samples / name, photos / name)
    first = score_archive(photos, db, workers=0)
    assert first.n_scored == 2
    with sqlite3.connect(db) as con:
        before = con.execute('SELECT path, "redness.a_mean", scored_at FROM scores ORDER BY path').fetchall()

    # now the plugin is installed: the re-run scores the new metric and nothing else
    plugin = _load_plugin(tmp_path, monkeypatch)
    others = []
    a_mean = metrics.get("redness.a_mean")
    monkeypatch.setitem(metrics._REGISTRY, "redness.a_mean",
                        type(a_mean)(**{**a_mean.__dict__,
                                        "compute": lambda an: others.append(an.name) or a_mean.compute(an)}))
    try:
        second = score_archive(photos, db, workers=0, export=export)
        assert (second.n_scored, second.n_updated, second.n_skipped) == (0, 2, 0)
        assert len(plugin.CALLS) == 2 and others == []       # only the new metric was computed
        with sqlite3.connect(db) as con:
            rows = con.execute(f'SELECT path, "redness.a_mean", "{NAME}", metric_versions FROM scores '
                               "ORDER BY path").fetchall()
        assert [(p, a) for p, a, *_ in rows] == [(p, a) for p, a, _ in before]
        assert all(v > 0 and json.loads(mv)[NAME] == 1 for _, _, v, mv in rows)
        header = next(csv.reader(export.read_text().splitlines()))
        assert NAME in header and "redness.a_mean" in header

        third = score_archive(photos, db, workers=0)
        assert (third.n_scored, third.n_updated, third.n_skipped) == (0, 0, 2)
    finally:
        sys.modules.pop("pk_dummy", None)


def test_a_broken_plugin_is_skipped_with_a_warning(tmp_path, monkeypatch):
    root = tmp_path / "site"
    (root / "pk_broken").mkdir(parents=True)
    (root / "pk_broken" / "__init__.py").write_text("raise RuntimeError('oops')\n")
    info = root / "pk_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pk-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[photokit.metrics]\nbroken = pk_broken\n")
    _isolate_registry(monkeypatch)
    monkeypatch.syspath_prepend(str(root))
    with pytest.warns(UserWarning, match="'broken'.*not loaded: RuntimeError: oops"):
        metrics.load_plugins()
    assert "redness.a_mean" in metrics.names()
