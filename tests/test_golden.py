"""Golden outputs: what ``measure``, ``compare``, ``series`` and ``batch`` print stays the same.

Recorded from the CLI before the code was reshaped (issue 16), so a refactor that changes
any number fails here. The cases run on the shipped samples and on a real portrait that
ships with scikit-image; two more real portraits are read from ``../shared/data`` when it
is there (skipped otherwise). Paths in the outputs are made relative to the case's own
folder, and the provenance columns of the batch database (timing, time stamps, run ids)
are left out, so the files do not depend on where or when they were made.

To record the files again after an intended change of output:
``PHOTOKIT_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py`` (and say in the commit
which numbers changed and why).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner

from photokit.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
GOLDEN = Path(__file__).resolve().parent / "golden"
SHARED = Path(os.environ.get("PHOTOKIT_BENCH_DATA", ROOT.parent / "shared" / "data"))
REGEN = os.environ.get("PHOTOKIT_REGEN_GOLDEN") == "1"

#: Columns of the batch export that record when and how fast, not what.
PROVENANCE = {"seconds", "scored_at", "run_id", "path", "photokit_version"}


def _run(args: list[str], cwd: Path) -> tuple[int, str]:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        res = CliRunner().invoke(cli, args, catch_exceptions=False)
    finally:
        os.chdir(old)
    return res.exit_code, res.stdout


def _check(name: str, value) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(value, indent=1, sort_keys=True, allow_nan=True) + "\n"
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no golden file {path.name}: record it with PHOTOKIT_REGEN_GOLDEN=1"
    diffs = list(_differences(json.loads(path.read_text()), json.loads(text)))
    assert not diffs, f"{name} differs from tests/golden/{path.name}:\n" + "\n".join(diffs[:20])


def _differences(expected, got, where: str = ""):
    """``path: expected -> got`` for every leaf that differs."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for k in sorted(set(expected) | set(got)):
            if k not in got or k not in expected:
                yield f"{where}/{k}: {'missing' if k not in got else 'unexpected'}"
            else:
                yield from _differences(expected[k], got[k], f"{where}/{k}")
    elif isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            yield from _differences(e, g, f"{where}[{i}]")
    elif expected != got:
        yield f"{where}: {expected!r} -> {got!r}"


def _json_case(name: str, args: list[str], cwd: Path) -> None:
    code, out = _run(args + ["--json"], cwd)
    doc = json.loads(out) if out.strip() else None
    if isinstance(doc, dict):
        doc.get("parameters", {}).pop("date", None)  # when it was run
    _check(name, {"exit_code": code, "output": doc})


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    """A copy of the shipped samples (outputs are written beside them)."""
    d = tmp_path_factory.mktemp("golden") / "samples"
    shutil.copytree(SAMPLES, d)
    return d


@pytest.fixture(scope="module")
def portraits(tmp_path_factory) -> Path:
    """The astronaut, and the same portrait moved a little and made a little redder."""
    d = tmp_path_factory.mktemp("portraits")
    im = skimage.data.astronaut()
    cv2.imwrite(str(d / "astronaut.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    m = np.float32([[1.0, 0.01, 6.0], [-0.01, 1.0, -4.0]])
    moved = cv2.warpAffine(im, m, im.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    moved = np.clip(moved.astype(np.float32) * np.float32([1.04, 0.99, 0.99]), 0, 255).astype(np.uint8)
    cv2.imwrite(str(d / "astronaut_moved.png"), cv2.cvtColor(moved, cv2.COLOR_RGB2BGR))
    return d


def test_measure_samples(samples):
    _json_case("measure_baseline_roi", ["measure", "00_baseline.jpg", "--roi", "roi.json",
                                        "--reference-roi", "reference_roi.json"], samples)
    _json_case("measure_day5_auto", ["measure", "03_s1_day5.jpg"], samples)


def test_compare_samples(samples):
    _json_case("compare_baseline_s2day0", ["compare", "00_baseline.jpg", "04_s2_day0.jpg", "--roi",
                                           "roi.json", "--reference-roi", "reference_roi.json"], samples)


def test_series_samples(samples):
    _json_case("series_samples", ["series", "manifest.csv", "--csv", "series.csv"], samples)
    rows = list(csv.reader(io.StringIO((samples / "series.csv").read_text())))
    _check("series_samples_csv", rows)


def test_batch_samples(samples, tmp_path):
    code, _ = _run(["batch", ".", "--db", str(tmp_path / "s.db"), "--export", str(tmp_path / "s.csv"),
                    "--workers", "1"], samples)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    for r in rows:
        r["file"] = Path(r["path"]).name
        for k in PROVENANCE:
            r.pop(k, None)
    _check("batch_samples_csv", {"exit_code": code, "rows": sorted(rows, key=lambda r: r["file"])})


def test_astronaut(portraits):
    _json_case("measure_astronaut", ["measure", "astronaut.png"], portraits)
    _json_case("compare_astronaut", ["compare", "astronaut.png", "astronaut_moved.png"], portraits)


@pytest.mark.skipif(not (SHARED / "faces").is_dir(), reason="../shared/data not present")
def test_shared_portraits():
    _json_case("measure_biden2", ["measure", "biden2.jpg"], SHARED / "faces")
    _json_case("measure_obama", ["measure", "obama.jpg"], SHARED / "faces")
