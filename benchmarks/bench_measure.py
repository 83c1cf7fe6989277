"""Speed of measuring a 12 MP photo (all metrics, per zone too) against decoding that JPEG.

Targets (issue 21): ``photokit.measurement.measure`` of a 12 MP portrait within 4x one
``cv2.imread`` of the same file, of a 12 MP close-up (every pore, spot and line detected)
within 8x, measured in the same run. Two 12 MP JPEGs are made in a temporary folder:

- ``portrait``: the largest real portrait of ``$PHOTOKIT_BENCH_DATA/faces`` resized to
  3000 x 4000 (Lanczos), light sensor noise, JPEG quality 92; scale from the face;
- ``close-up``: synthetic skin (``photokit.synth``) 4000 x 3000 at 0.07 mm/px (given as
  ``mm_per_px``, as ``--mm-per-px`` would), where the skin fills most of the frame at
  the resolution texture is defined for (the worst case for the texture, pore and spot
  filters).

Baseline: one ``cv2.imread`` of the file (`speed.interleaved`: rounds of decode then
measure, the ratio per round; wall and CPU time). ``photokit.load`` (decode, orientation,
colour profile) is listed as a job of its own. The stage table times the stages of
``measure`` itself (its own functions, wrapped), wall seconds per call summed over a run:
stages run side by side on threads, so they do not add up to the total.

Run: ``python benchmarks/bench_measure.py [--rounds N] [--write-readme]``
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import imread, interleaved, write_section  # noqa: E402


def data_dir() -> Path:
    env = os.environ.get("PHOTOKIT_BENCH_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def make_inputs(folder: Path) -> list[tuple[str, Path, float | None]]:
    """(name, jpeg path, mm_per_px or None) of the two 12 MP photos."""
    out = []
    faces = sorted((data_dir() / "faces").glob("*.jpg"), key=lambda p: -p.stat().st_size)
    if faces:
        rgb = np.asarray(Image.open(faces[0]).convert("RGB"))
        size = (3000, 4000) if rgb.shape[0] >= rgb.shape[1] else (4000, 3000)
        big = cv2.resize(rgb, size, interpolation=cv2.INTER_LANCZOS4)
        rng = np.random.default_rng(0)
        big = np.clip(big + rng.normal(0, 1.5, big.shape), 0, 255).astype(np.uint8)
        p = folder / f"portrait_{faces[0].stem}_12mp.jpg"
        Image.fromarray(big).save(p, quality=92)
        out.append(("portrait", p, None))
    from photokit.synth import render_skin

    im = render_skin(seed=7, width=4000, height=3000)
    p = folder / "closeup_synth_12mp.jpg"
    Image.fromarray(im.pixels).save(p, quality=92)
    out.append(("close-up", p, im.truth.mm_per_px))
    return out


#: The stages of ``measure`` timed in the stage table: (module, function).
STAGES = tuple(("photokit.measurement.measure", f) for f in (
    "load", "face_pass", "face_skin_mask", "skin_mask", "calibrate", "assess", "compute_metrics",
    "zone_values", "standard_errors"))


def stage_times(path: Path, mm_per_px, runs: int = 3) -> dict[str, float]:
    """Median over `runs` of each stage's wall seconds within one ``measure`` (see module
    notes); ``compute_metrics`` counts the whole-skin call only (with the standard errors
    its jobs give, also listed as ``standard_errors``), the zones' own calls are inside
    ``zone_values``."""
    import importlib

    from photokit.measurement.measure import measure

    acc: dict[str, list[float]] = {}
    saved = []
    depth = {"zones": 0}
    for mod_name, fn_name in STAGES:
        mod = importlib.import_module(mod_name)
        fn = getattr(mod, fn_name, None)
        if fn is None:   # an older photokit (PYTHONPATH) without this stage
            continue
        saved.append((mod, fn_name, fn))

        @functools.wraps(fn)
        def timed_fn(*a, _fn=fn, _name=fn_name, **k):
            inner = _name == "compute_metrics" and depth["zones"]
            depth["zones"] += _name == "zone_values"
            t = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                depth["zones"] -= _name == "zone_values"
                if not inner:
                    acc.setdefault(_name, [0.0] * (runs + 1))[-1] += time.perf_counter() - t
        setattr(mod, fn_name, timed_fn)
    try:
        out = {}
        per_run = []
        for _ in range(runs):
            for v in acc.values():
                v.append(0.0)
            measure(path, mm_per_px=mm_per_px)
            per_run.append({k: v[-1] for k, v in acc.items()})
        for k in acc:
            out[k] = float(np.median([r.get(k, 0.0) for r in per_run]))
        return out
    finally:
        for mod, fn_name, fn in saved:
            setattr(mod, fn_name, fn)


TARGETS = {"portrait": 4.0, "close-up": 8.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--write-readme", action="store_true", help="update benchmarks/README.md")
    args = ap.parse_args(argv)
    from photokit.io.photo import load
    from photokit.measurement.measure import measure

    lines = ["| photo | job | x one cv2.imread (median, range) | CPU x | target |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, mmpp in make_inputs(Path(tmp)):
            print(f"\n{name}: {path.name}, {path.stat().st_size / 1e6:.1f} MB JPEG, {os.cpu_count()} CPUs")
            r_load, _ = interleaved(lambda path=path: load(path), imread(path), args.rounds)
            r_meas, res = interleaved(lambda path=path, mmpp=mmpp: measure(path, mm_per_px=mmpp),
                                      imread(path), args.rounds)
            print(f"  cv2.imread (baseline), median: {r_meas.decode_s:.3f} s")
            print(f"  photokit.load: {r_load.text()}")
            print(f"  measure ({len(res.metrics)} values): {r_meas.job_s:.3f} s = "
                  f"{r_meas.text(TARGETS[name])}")
            stages = stage_times(path, mmpp)
            print(f"  {'stage of measure':22s} {'s':>7s} {'x decode':>9s}")
            for label, t in stages.items():
                print(f"  {label:22s} {t:7.3f} {t / r_meas.decode_s:9.2f}")
            jobs = (("photokit.load", r_load, None),
                    (f"measure, {len(res.metrics)} values", r_meas, TARGETS[name]))
            for job, r, target in jobs:
                goal = "" if target is None else f"<= {target:g}"
                lines.append(f"| {name} 12 MP | {job} | {r.median:.2f} ({r.low:.2f}-{r.high:.2f}) | "
                             f"{r.cpu:.2f} | {goal} |")
    table = "\n".join(lines)
    print("\n" + table)
    if args.write_readme:
        write_section("bench_measure",
                      "### measure (`python benchmarks/bench_measure.py --write-readme`)\n\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
