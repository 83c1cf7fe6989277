"""``photokit demo [OUTDIR]``: the series analysis on the sample course, in one command.

Uses ``./samples`` when it holds a series (``manifest.csv``); otherwise (a plain
``pip install``) it regenerates the sample course with `photokit.synth` into
``OUTDIR/samples``, analyses it, and writes the series report, CSV and JSON to OUTDIR.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from .options import info

DEFAULT_OUTDIR = "photokit-demo"

#: The recipe of the shipped samples (``samples/README.md`` gives the same command), used
#: to regenerate them when ``./samples`` is absent: a two-session course, photos on the
#: day of each session and 2 and 5 days after, and a follow-up a month after the last.
SAMPLE_SEED = 7
SAMPLE_PLAN = {"sessions": 2, "visit_days": (0, 2, 5), "tau_days": 2.0, "final_visit_days": 30.0}


def find_samples(cwd: Path | None = None) -> Path | None:
    """``./samples/manifest.csv`` when present."""
    m = (cwd or Path.cwd()) / "samples" / "manifest.csv"
    return m if m.is_file() else None


def regenerate(outdir: Path) -> Path:
    """Render the sample course into ``outdir/samples``; returns its manifest."""
    from .. import synth

    target = outdir / "samples"
    synth.make_series(target, seed=SAMPLE_SEED, **SAMPLE_PLAN)
    return target / "manifest.csv"


def sample_scale(manifest: Path) -> float | None:
    """The scale `photokit.synth` recorded beside the course's baseline photo
    (``<photo>.json``, ``mm_per_px``): given to the series as a user gives
    ``--mm-per-px``, so the demo measures in millimetres; None for a course without one."""
    from ..series.course import read_series

    base = next((e for e in read_series(manifest) if e.kind == "baseline"), None)
    sidecar = None if base is None else Path(base.source).with_suffix(".json")
    try:
        mm = json.loads(sidecar.read_text())["mm_per_px"] if sidecar is not None else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(mm) if isinstance(mm, (int, float)) and mm > 0 else None


def run_demo(outdir, *, cwd: Path | None = None, progress=None) -> dict:
    """Analyse the samples (or a regenerated course) and write the report into `outdir`.

    Returns a dict with the paths written, where the photos came from and the seconds
    taken.
    """
    from ..series.course import Series

    say = progress or (lambda m: None)
    t0 = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    manifest = find_samples(cwd)
    origin = "samples"
    if manifest is None:
        say(f"no ./samples here: generating the sample course into {outdir / 'samples'}")
        manifest = regenerate(outdir)
        origin = "regenerated"
    ref = manifest.parent / "reference_roi.json"
    s = Series(manifest, reference_roi=str(ref) if ref.is_file() else None, progress=say,
               mm_per_px=sample_scale(manifest))
    s.analyse()
    report = s.write_report(outdir / "series-report.html")
    csv_path = s.to_csv(outdir / "series.csv")
    from ..io.atomic import write_text
    from .options import json_clean

    json_path = write_text(outdir / "series.json",
                           json.dumps(json_clean(s.to_dict()), indent=1, allow_nan=False))
    return {"report": report, "csv": csv_path, "json": json_path, "manifest": manifest,
            "origin": origin, "seconds": time.perf_counter() - t0, "series": s}


@click.command("demo")
@click.argument("outdir", required=False, type=click.Path(file_okay=False), default=DEFAULT_OUTDIR)
def command(outdir):
    """Run the series analysis on the sample course and write its report.

    Uses ./samples when present, else regenerates the sample course with photokit.synth
    into OUTDIR/samples (default OUTDIR: ./photokit-demo).
    """
    from .series import summary_lines

    res = run_demo(outdir, progress=info)
    for line in summary_lines(res["series"]):
        info(line)
    info(f"analysed {res['manifest']} ({res['origin']}) in {res['seconds']:.0f} s")
    click.echo(f"Series report: {Path(res['report']).resolve()}")
    click.echo(f"Table (CSV):   {Path(res['csv']).resolve()}")
