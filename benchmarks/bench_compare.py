"""Speed of ``compare`` on two 12 MP JPEGs, as a multiple of one JPEG decode.

Run ``python benchmarks/bench_compare.py [--rounds N] [--keep DIR] [--write-readme]``.
Real data come from ``$PHOTOKIT_BENCH_DATA`` (default ``shared/data`` beside the
repository).

Inputs: the real portrait ``faces/obama3.jpg`` cropped to 3:4 and enlarged to 3000 x 4000
(12 MP, portrait) is
BEFORE; AFTER is the same scene moved by a mild similarity (2 deg, x1.03, shift),
brighter by 8 %, with a redder cheek patch, and both are written as JPEG (q 92) to a
temporary folder. (Enlarging keeps the real image content and the 12 MP pixel count;
fine texture is smoother than a native 12 MP capture.)

Baseline, measured in the same run: one ``cv2.imread`` of the BEFORE JPEG, run beside
each job run (`speed.interleaved`: the ratio per round, its median and range; CPU too).
The jobs, each from the files (decoding included):

- ``align``: alignment alone (target, issue 18: <= 10x);
- ``measure`` x 2: all registered metrics on both photos (automatic skin mask);
- ``compare``: alignment, region transfer, both measurements, lighting check
  (target, issue 21: <= 10x);
- ``compare + report``: the whole ``photokit compare --report`` job.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from photokit.io.photo import load

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import imread, interleaved, write_section  # noqa: E402

DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))
SIZE = (3000, 4000)  # width, height


def make_inputs(folder: Path) -> tuple[Path, Path]:
    """BEFORE and AFTER 12 MP JPEGs from a real portrait (see module notes)."""
    src = DATA / "faces" / "obama3.jpg"
    if not src.exists():
        sys.exit(f"benchmark data not found: {src} (set PHOTOKIT_BENCH_DATA)")
    rgb = load(src).rgb8()
    h0, w0 = rgb.shape[:2]
    # crop to 3:4 (top-aligned: the face), then enlarge
    h = min(h0, int(w0 * 4 / 3))
    before = cv2.resize(rgb[:h], SIZE, interpolation=cv2.INTER_CUBIC)
    m = cv2.getRotationMatrix2D((SIZE[0] / 2, SIZE[1] / 2), 2.0, 1.03)
    m[:, 2] += (60, -40)
    after = cv2.warpAffine(before, m, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    after = after.astype(np.float32) * 1.08
    yy, xx = np.mgrid[:SIZE[1], :SIZE[0]].astype(np.float32)
    blob = np.exp(-((xx - 0.50 * SIZE[0]) ** 2 + (yy - 0.24 * SIZE[1]) ** 2) / (2 * 110.0 ** 2))
    after[..., 0] *= 1 + 0.12 * blob
    after[..., 1] *= 1 - 0.06 * blob
    after = np.clip(after, 0, 255).astype(np.uint8)
    pb, pa = folder / "before_12mp.jpg", folder / "after_12mp.jpg"
    for path, img in ((pb, before), (pa, after)):
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return pb, pa


TARGETS = {"align": 10.0, "compare": 10.0}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median; default 7)")
    ap.add_argument("--keep", type=Path, default=None, help="also write the report here")
    ap.add_argument("--write-readme", action="store_true", help="update benchmarks/README.md")
    args = ap.parse_args(argv)

    from photokit.comparison.compare import compare
    from photokit.measurement.measure import measure
    from photokit.registration.align import align

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pb, pa = make_inputs(tmp)
        print(f"inputs: 2 JPEGs {SIZE[0]}x{SIZE[1]} ({SIZE[0] * SIZE[1] / 1e6:.0f} MP), "
              f"{pb.stat().st_size / 1e6:.1f} + {pa.stat().st_size / 1e6:.1f} MB; "
              f"{os.cpu_count()} CPUs; {args.rounds} rounds")
        out = tmp / "report.html"
        base = imread(pb)
        results = {}
        results["photokit.load"], _ = interleaved(lambda: load(pb), base, args.rounds)
        results["align"], al = interleaved(lambda: align(pb, pa), base, args.rounds)
        results["measure, both photos"], _ = interleaved(lambda: (measure(pb), measure(pa)), base,
                                                         args.rounds)
        results["compare"], comp = interleaved(lambda: compare(pb, pa), base, args.rounds)
        results["compare + report"], _ = interleaved(lambda: compare(pb, pa).write_report(out), base,
                                                     max(1, args.rounds - 1))
        size = out.stat().st_size
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            (args.keep / "bench_compare_report.html").write_bytes(out.read_bytes())

    lines = ["| job (12 MP face pair) | x one cv2.imread (median, range) | CPU x | target |",
             "|---|---|---|---|"]
    for name, r in results.items():
        target = TARGETS.get(name)
        print(f"{name:<24} {r.job_s:7.2f} s  {r.text(target)}")
        lines.append(f"| {name} | {r.median:.1f} ({r.low:.1f}-{r.high:.1f}) | {r.cpu:.1f} | "
                     f"{'' if target is None else f'<= {target:g}'} |")
    print(f"\nalignment: {al.status} ({al.method}), confidence {al.confidence:.2f}; "
          f"report {size / 1e6:.2f} MB")
    print("significant changes:", {k: round(v, 2) for k, v in comp.delta.items()
                                   if comp.significant.get(k)})
    table = "\n".join(lines)
    print("\n" + table)
    if args.write_readme:
        write_section("bench_compare",
                      "### compare (`python benchmarks/bench_compare.py --write-readme`)\n\n" + table)


if __name__ == "__main__":
    main()
