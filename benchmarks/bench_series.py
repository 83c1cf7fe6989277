"""Accuracy of ``photokit series`` on synthetic courses with known truth.

Run ``python benchmarks/bench_series.py [--taus 1,2,3,4] [--size 800x600] [--keep DIR]``.

There are no real treatment courses with measured truth, so this benchmark uses
`photokit.synth.make_series`: a microneedling course (sessions 28 days apart, photos on
the session day and 1, 3 and 6 days after, a follow-up 30 days after the last), every
photo with a new mild pose and light and a ColorChecker in frame. For each time constant
tau (days) it reports:

- ``tau`` fitted from ``redness.a_mean`` (and ``redness.ei_mean``) after each session
  against the truth, as a relative error (target: within 20 %);
- the improvement of texture, pores and spots at the follow-up: the series' percent change
  against the generator's truth (the metric on the noise-free canonical skin, first and
  last state);
- a *flat* course (no treatment effect, only light and pose change): the number of
  metrics whose trend the series calls significant (target: 0).

Baseline, measured in the same run: the fit on the *truth* a* values (noise-free, so its
error is the model error alone), and the time of one ``align`` of two photos of the
course, to which the series time is given as a ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from photokit import synth
from photokit.series.course import Series
from photokit.series.recovery import fit_recovery
from photokit.synth import Camera, SkinParams

TREND_METRICS = ("texture.roughness", "texture.wrinkle_density", "texture.pore_density",
                 "spots.area_pct", "spots.count")


MM_PER_PX = 0.08  # fine enough for the 0.2-2 mm texture band at any frame size


def params_for(size: tuple[int, int]) -> SkinParams:
    w, h = size
    return SkinParams(card=True, width=w, height=h, mm_per_px=MM_PER_PX)


def posed_baseline(out: Path, res, params: SkinParams, seed: int, strength: float = 1.0) -> None:
    """Re-take the baseline with a small pose change like every later photo (make_series keeps
    it at the canonical pose, the one photo the renderer does not resample, so its fine
    texture is a few percent sharper); the ROIs are rewritten in its pixels."""
    from datetime import datetime

    im = synth.render_skin(params, seed, camera=Camera.random(np.random.default_rng(99), strength,
                                                              light=False))
    im.save(out / res.photos[0]["photo"], date=datetime.fromisoformat(res.photos[0]["date"]))
    for region, name in (("roi", "roi.json"), ("reference", "reference_roi.json")):
        poly = np.asarray(im.truth.regions[region]["polygon"]).tolist()
        (out / name).write_text(json.dumps({"polygons": [poly]}))


def analyse(out: Path) -> Series:
    return Series(out / "manifest.csv", reference_roi=str(out / "reference_roi.json"),
                  mm_per_px=MM_PER_PX).analyse()


def truth_tau(res, metric: str) -> list[float | None]:
    """The fit on the truth values (model error only), per session."""
    ph = res.photos
    base = ph[0]["metrics"][metric]
    out = []
    for k in sorted({p["session"] for p in ph if p["session"]}):
        seg = [p for p in ph if p["session"] == k and p["kind"] != "baseline"]
        f = fit_recovery([p["days_since_treatment"] for p in seg], [p["metrics"][metric] for p in seg],
                         mdc=0.8, pre_level=base)
        out.append(f.tau_days)
    return out


def run(taus, size, keep: Path | None, seed: int = 11) -> None:
    tmp = keep or Path(tempfile.mkdtemp(prefix="bench_series_"))
    params = params_for(size)
    print(f"synthetic courses {size[0]}x{size[1]}, 2 sessions, visits day 0/1/3/6, follow-up day 30\n")
    rows, imp_rows, times = [], [], []
    for tau in taus:
        out = tmp / f"tau{tau:g}"
        res = synth.make_series(out, seed=seed, sessions=2, tau_days=tau, visit_days=(0, 1, 3, 6),
                                params=params, contact_sheet=False)
        posed_baseline(out, res, params, seed)
        t0 = time.perf_counter()
        s = analyse(out)
        times.append(time.perf_counter() - t0)
        tt = truth_tau(res, "redness.a_mean")
        for r in s.recovery:
            f = r.fit
            err = None if f.tau_days is None else 100 * (f.tau_days - tau) / tau
            base_err = tt[r.treatment_index]
            rows.append((tau, r.treatment_index + 1, f.metric, f.tau_days, f.tau_ci, err,
                         None if base_err is None else 100 * (base_err - tau) / tau, f.days_to_baseline))
        for m in TREND_METRICS:
            t = s.trend.get(m)
            if t is None:
                continue
            truth = res.truth["trend"].get(m, {}).get("percent_change")
            imp_rows.append((tau, m, t.percent_change, truth, t.significant))
        excluded = [v.photo for v in s.visits if not v.ok]
        if excluded:
            print(f"tau {tau}: excluded photos {excluded}")
    print(f"{'tau':>4} {'S':>2} {'metric':<16} {'fit':>6} {'95% CI':>13} {'err %':>7} "
          f"{'truth-fit err %':>15} {'days->base':>10}")
    for tau, k, m, fit, ci, err, berr, d2b in rows:
        cis = "-" if ci is None else f"{ci[0]:.2f}-{ci[1]:.2f}"
        print(f"{tau:>4g} {k:>2} {m:<16} {_f(fit, 2):>6} {cis:>13} {_f(err, 1):>7} {_f(berr, 1):>15} "
              f"{_f(d2b, 1):>10}")
    errs = [abs(r[5]) for r in rows if r[5] is not None]
    if errs:
        print(f"\n|tau error|: median {np.median(errs):.1f} %, max {max(errs):.1f} %, "
              f"within 20 %: {sum(e <= 20 for e in errs)}/{len(errs)}")
    print(f"\n{'tau':>4} {'metric':<24} {'series %':>9} {'truth %':>8} {'diff (pts)':>10} sig")
    for tau, m, pct, truth, sig in imp_rows:
        d = None if pct is None or truth is None else pct - truth
        print(f"{tau:>4g} {m:<24} {_f(pct, 1):>9} {_f(truth, 1):>8} {_f(d, 1):>10} {sig}")

    core = ("redness.a_mean", "redness.ei_mean", "redness.area_pct", "pigment.mi_mean", "pigment.ita_mean",
            "pigment.evenness", "texture.roughness", "texture.wrinkle_density", "texture.pore_density",
            "spots.count", "spots.area_pct")
    print("\nflat courses (no treatment effect; light and pose change at the given camera strength):")
    for strength in (0.5, 1.0):
        for fs in (seed + 1, seed + 2, seed + 3):
            out = tmp / f"flat{strength:g}_{fs}"
            res = synth.make_series(out, seed=fs, sessions=1, visit_days=(0, 2, 5), final_visit_days=40,
                                    params=params, flat=True, contact_sheet=False, camera_strength=strength)
            posed_baseline(out, res, params, fs, strength)
            s = analyse(out)
            sig = {k: None if t.percent_change is None else round(t.percent_change, 1)
                   for k, t in s.trend.items() if t.significant}
            sig_core = [k for k in sig if k in core]
            rec = [r.fit.status for r in s.recovery]
            print(f"  strength {strength:g} seed {fs}: significant {len(sig)}/{len(s.trend)} metrics, "
                  f"{len(sig_core)}/{len(core)} SPEC metrics {sig_core}; recovery fits {rec}; "
                  f"flags {[f['kind'] for f in s.flags]}")
            print(f"      all significant: {json.dumps(sig)}")

    from photokit.registration.align import align

    a = sorted((tmp / f"tau{taus[0]:g}").glob("*.jpg"))
    t0 = time.perf_counter()
    align(str(a[0]), str(a[3]))
    t_align = time.perf_counter() - t0
    n = len(a)
    print(f"\ntime per series ({n} photos): {np.median(times):.1f} s = {np.median(times) / t_align:.1f} x "
          f"one align ({t_align:.2f} s), {np.median(times) / n:.2f} s per photo")
    print(f"(courses in {tmp})")


def _f(x, nd):
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{nd}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--taus", default="1,2,3,4")
    ap.add_argument("--size", default="800x600")
    ap.add_argument("--keep", type=Path, default=None)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.lower().split("x"))
    run([float(t) for t in a.taus.split(",")], (w, h), a.keep)


if __name__ == "__main__":
    main()
