"""The CLI contract: one JSON document on stdout, one error line on stderr, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from photokit import __version__
from photokit.cli.main import cli
from tests.test_photo import EXPECTED_CAUSE, broken_inputs


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def photos(tmp_path, astronaut):
    a = tmp_path / "a.jpg"
    Image.fromarray(astronaut).save(a, quality=92)
    b = tmp_path / "b.png"
    Image.fromarray(astronaut[::-1].copy()).save(b)
    return [a, b]


def test_version(runner):
    r = runner.invoke(cli, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output


def test_the_command_keeps_freed_memory_for_its_next_photo(monkeypatch, capsys):
    """The installed ``photokit`` script and ``python -m photokit`` run `main`, which sets
    the process's memory policy before the command runs."""
    import runpy
    from importlib.metadata import entry_points

    import photokit.cli.main as m

    assert entry_points(group="console_scripts")["photokit"].value == "photokit.cli.main:main"
    order = []
    monkeypatch.setattr(m, "keep_freed_memory", lambda: order.append("memory") or True)
    command = m.cli.main
    monkeypatch.setattr(m.cli, "main", lambda *a, **k: (order.append("command"), command(*a, **k)))
    monkeypatch.setattr(sys, "argv", ["photokit", "--version"])
    with pytest.raises(SystemExit) as e:
        runpy.run_module("photokit", run_name="__main__")
    assert e.value.code == 0 and order == ["memory", "command"] and __version__ in capsys.readouterr().out


def test_help_lists_commands(runner):
    r = runner.invoke(cli, ["--help"])
    assert r.exit_code == 0 and "check" in r.output


def test_check_json_is_one_document_in_order(runner, photos):
    r = runner.invoke(cli, ["check", "--json", *map(str, photos)])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [d["image"] for d in doc] == [str(p) for p in photos]
    for d in doc:
        assert isinstance(d["quality"]["ok"], bool)
        assert d["quality"]["checks"]["sharpness"]["verdict"] in ("pass", "warn", "fail")
        assert "method" in d["calibration"]


def test_check_reports_every_photo_and_names_the_unreadable(runner, photos, tmp_path):
    """One unreadable photo among several lost every result (QA, 2026-12-08)."""
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    r = runner.invoke(cli, ["check", "--json", str(photos[0]), str(empty), str(photos[1])])
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert [d["image"] for d in doc] == [str(photos[0]), str(empty), str(photos[1])]
    assert doc[1] == {"image": str(empty), "quality": None, "calibration": None, "error": "file is empty"}
    assert doc[2]["quality"]["ok"] in (True, False)
    assert r.stderr.strip().splitlines() == [f"photokit: {empty}: file is empty"]
    r = runner.invoke(cli, ["check", str(empty), str(photos[0])])
    assert r.exit_code == 1 and "CANNOT BE READ (file is empty)" in r.stdout and "sharpness" in r.stdout


def test_check_text_output(runner, photos):
    r = runner.invoke(cli, ["check", str(photos[0])])
    assert r.exit_code == 0 and "sharpness" in r.stdout


@pytest.mark.parametrize("name", list(EXPECTED_CAUSE))
def test_broken_input_exit_1_one_line(runner, tmp_path, astronaut, name):
    path = broken_inputs(tmp_path, astronaut)[name]
    size = path.stat().st_size
    r = runner.invoke(cli, ["check", "--json", str(path)])
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in r.stderr
    assert EXPECTED_CAUSE[name] in lines[0]
    assert path.stat().st_size == size
    # the photo's entry says why (check reports every photo it is given)
    assert json.loads(r.stdout) == [{"image": str(path), "quality": None, "calibration": None,
                                     "error": lines[0].split(": ", 2)[2]}]


def test_verbose_shows_traceback(runner, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    r = runner.invoke(cli, ["-v", "check", str(bad)])
    assert r.exit_code == 1 and "Traceback" in r.stderr


def test_usage_error_is_exit_2(runner):
    assert runner.invoke(cli, ["check"]).exit_code == 2
    assert runner.invoke(cli, ["no-such-command"]).exit_code == 2


def test_console_script_runs(photos):
    """The installed entry point, in a real process."""
    p = subprocess.run([sys.executable, "-m", "photokit", "check", "--json", str(photos[0])],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]["image"] == str(photos[0])


def test_measure_metrics_option_selects_names_and_families(tmp_path):
    """--metrics takes metric names and families; the JSON holds exactly those (and their
    zones); an unknown name is a usage error naming the families."""
    from photokit import synth

    im = synth.render_skin(seed=2, width=400, height=300)
    p = tmp_path / "s.png"
    Image.fromarray(im.pixels).save(p)
    res = CliRunner().invoke(cli, ["measure", str(p), "--metrics", "redness,pigment.ita_mean", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc["metrics"]) == {"redness.a_mean", "redness.ei_mean", "redness.area_pct",
                                   "pigment.ita_mean"}
    assert doc["decode"] == {"reduction": 1, "width": 400, "height": 300}
    bad = CliRunner().invoke(cli, ["measure", str(p), "--metrics", "redness,nonsense"])
    assert bad.exit_code == 2 and "'nonsense' is neither a metric nor a family" in bad.output


@pytest.mark.parametrize("args", [
    ["align", "{a}", "{b}", "-o", "{b}"],
    ["align", "{a}", "{b}", "--overlay", "{dir}/../{dirname}/a.jpg"],     # another spelling
    ["align", "{a}", "{b}", "-o", "{link}"],                               # a hard link to b
    ["compare", "{a}", "{b}", "--report", "{b}"],
    ["compare", "{a}", "{b}", "--pdf", "{a}"],
    ["compare", "{a}", "{b}", "--fhir", "{a}"],
    ["compare", "{a}", "{b}", "--roi", "{roi}", "--report", "{roi}"],
    ["face", "{a}", "--overlay", "{a}"],
    ["measure", "{a}", "--overlay", "{a}"],
    ["measure", "{a}", "--fhir", "{a}"],
    ["series", "{manifest}", "--csv", "{manifest}"],
    ["series", "{dir}", "--csv", "{manifest}"],                           # the folder's manifest
    ["series", "{manifest}", "--report", "{a}"],
])
def test_an_output_never_lands_on_an_input(runner, tmp_path, photos, args):
    """SPEC: nothing ever writes over an input. An output naming an input (also through
    '..' or a hard link) is a usage error, before any work, and every input is untouched."""
    import hashlib
    import os

    a, b = photos
    roi = tmp_path / "roi.json"
    roi.write_text(json.dumps({"polygons": [[[100, 100], [400, 100], [400, 400], [100, 400]]]}))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"photo,date,kind\n{a.name},2024-01-01,baseline\n{b.name},2024-02-01,visit\n")
    link = tmp_path / "link_to_b.png"
    os.link(b, link)
    files = [a, b, roi, manifest]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    argv = [x.format(a=a, b=b, roi=roi, manifest=manifest, link=link, dir=tmp_path, dirname=tmp_path.name)
            for x in args]
    r = runner.invoke(cli, argv)
    assert r.exit_code == 2, r.output
    assert "is an input of this command" in r.output and "never writes over its inputs" in r.output
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files + [link])


def test_an_output_beside_the_inputs_is_written(runner, tmp_path, photos):
    """The guard refuses only what names an input: a new file next to them is fine."""
    a, b = photos
    out = tmp_path / "a_overlay.png"
    r = runner.invoke(cli, ["face", str(a), "--overlay", str(out)])
    assert r.exit_code == 0, r.output
    assert out.exists()


def test_face_on_a_greyscale_photo_says_so(runner, tmp_path, astronaut):
    """One line naming the file and the cause (the face models need colour), exit 1."""
    grey = tmp_path / "grey.png"
    Image.fromarray(astronaut).convert("L").save(grey)
    r = runner.invoke(cli, ["face", str(grey)])
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [f"photokit: {grey}: photo is greyscale: the face models need an "
                                             "RGB photo"]


def test_align_warns_when_an_accepted_alignment_is_uncertain(runner, photos, monkeypatch):
    """An alignment accepted with a low confidence (above the refusal bar, below the
    comparison's warning bar) says so on stderr, with what the meshes found."""
    import numpy as np

    import photokit.cli.align as cli_align
    from photokit.registration.align import Alignment

    def uncertain(before, after, **kw):
        return Alignment("ok", None, np.eye(3), 0.32, 40, 0.8, 0.95, (512, 512), (512, 512),
                         warnings=["the expression changed (smile score +0.30, lip opening +0.05): lines "
                                   "and texture around the mouth and eyes are not comparable"])

    monkeypatch.setattr(cli_align, "align", uncertain)
    r = runner.invoke(cli, ["align", str(photos[0]), str(photos[1])])
    assert r.exit_code == 0
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("photokit: warning: alignment confidence is low (0.32)")
    assert lines[1].startswith("photokit: warning: the expression changed")
    monkeypatch.setattr(cli_align, "align", lambda b, a, **kw: Alignment(
        "ok", None, np.eye(3), 0.97, 400, 0.3, 0.95, (512, 512), (512, 512)))
    assert runner.invoke(cli, ["align", str(photos[0]), str(photos[1])]).stderr == ""


def test_face_on_a_fully_transparent_photo_says_so(runner, tmp_path, astronaut):
    """A face hidden under alpha 0 is not shown by the photo: no mesh from behind it."""
    rgba = np.dstack([astronaut, np.zeros(astronaut.shape[:2], np.uint8)])
    p = tmp_path / "clear.png"
    Image.fromarray(rgba, "RGBA").save(p)
    r = runner.invoke(cli, ["face", str(p)])
    assert r.exit_code == 1
    assert r.stderr.strip() == f"photokit: {p}: photo is fully transparent: nothing to see"


def test_sigterm_ends_a_command_as_ctrl_c_and_leaves_no_partial_output(tmp_path):
    """SIGTERM killed the process where it stood: a DICOM file being written stayed beside
    the others, half-written and named *.dcm (QA, 2026-12-08). Now it ends as Ctrl-C does
    (exit 130, one line), and an output's temporary file is removed when interrupted."""
    import os
    import signal
    import time
    from pathlib import Path

    from photokit.io.atomic import atomic_path, write_bytes

    target = tmp_path / "x.dcm"
    with pytest.raises(KeyboardInterrupt), atomic_path(target, keep_suffix=False) as tmp:
        tmp.write_bytes(b"half")
        assert tmp.name.endswith(".part") and not tmp.name.endswith(".dcm.part.dcm")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    write_bytes(target, b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["x.dcm"]
    samples = Path(__file__).resolve().parents[1] / "samples"
    proc = subprocess.Popen([sys.executable, "-m", "photokit", "series", str(samples / "manifest.csv"),
                             "--csv", str(tmp_path / "s.csv")], stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()       # the series has started: aligning the course's photos
    assert first.startswith("series:"), first
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGTERM)
    err = first + proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "photokit: interrupted"
    assert not (tmp_path / "s.csv").exists() and not list(tmp_path.glob(".*part*"))
