"""Per-pair noise floors (photokit.metrics.noise) on no-change and known-change pairs.

Every pair is compared by ``photokit.comparison.compare`` itself; each metric's verdict
is taken twice from the same deltas: NEW, ``|delta| > noise_floor`` (this pair's floor,
``1.96 sqrt(se_b^2 + se_a^2)``) and the headline's Holm control over the pair's metrics;
OLD, ``|delta| > mdc`` (the registered constant: exactly what ``changes()`` did before
issue 19) and the old headline (any metric beyond its constant).

Protocols
---------
``synthetic`` (no change): `photokit.synth.make_pair` skins at four skin tones (ITA 55,
35, 15, -20) and three resolutions (720x540 at 0.10, 1200x900 at 0.07, 640x480 at
0.08 mm/px), re-captured with an ordinary light change (exposure ratio U(0.92, 1.08),
white balance x U(0.97, 1.03) per channel, CCT 6000-6800 K), pose (rotation +-2 deg, zoom
+-3 %, shift +-20 px), the generator's noise and JPEG 88-95; compared uncalibrated (no
card, no reference) and with the truth reference skin.
``real`` (no change): the real photos in ``$PHOTOKIT_BENCH_DATA/faces`` and the pores
close-up (``pores/face_left.png`` at 0.084 mm/px) re-captured by a small similarity warp
(rotation +-2 deg, zoom +-3 %, shift +-1.5 %), the same light change (exposure +-8 %, WB
+-3 % per channel in linear RGB), Gaussian noise SD 2 and JPEG 88-95; uncalibrated.
``zoom`` (no change of the skin): the four real phone photos of one person at 15-60 cm
(``recaptures/zoom``), every pair, colour metrics: over the whole face uncalibrated, and
over the cheeks with the forehead as reference skin (BEFORE's face-mesh zones).
``card`` (no change): the ``synthetic`` pairs with a colour card in the scene, compared
card-calibrated (no reference) over all the skin but the reference patch: the matched
no-change control of the melanin change pairs below.
``change``: synthetic pairs at 0.07 mm/px with a known 10 % and 20 % decrease of
roughness, pore density (50/cm^2), brown-spot count (40), spot contrast, wrinkle count
(20) and melanin, measured over all the skin but the reference patch (the generator's
default light skin, the same light and pose as ``synthetic``, calibrated by the reference
skin; the melanin pairs, whose change covers the reference too, by a colour card): the
measured change and the floor as a % of the metric's value, and the share of pairs
that call a significant decrease. ``--area K`` makes them on K times that skin (sides x
sqrt K) with K times as many lines and brown spots: the same densities over more of a
face (a 1200 x 900 patch is 53 cm^2; a face close-up shows 200-300 cm^2 of skin).

Run: ``python benchmarks/bench_noise.py [--protocols synthetic,real,zoom,card,change]
[--pairs 2] [--workers 2] [--json out.json] [--changes texture.wrinkle_density,...]
[--steps 1,2] [--area K]`` (``--changes``/``--steps``: only those known changes, seeds unchanged).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA", REPO.parent / "shared" / "data"))
ITAS = (55.0, 35.0, 15.0, -20.0)
RESOLUTIONS = ((720, 540, 0.10), (1200, 900, 0.07), (640, 480, 0.08))
COLOUR = ("redness.a_mean", "redness.ei_mean", "redness.area_pct", "pigment.mi_mean", "pigment.ita_mean",
          "pigment.evenness")
#: metric -> (SkinParams field, base value, value per 10 % step, sign of the metric's change)
CHANGES = {
    "texture.roughness": ("roughness", 1.0, -0.1),
    "texture.pore_density": ("pore_density", 50.0, -5.0),
    "spots.count": ("brown_spots", 40, -4),
    "spots.brown_contrast": ("spot_contrast", 1.0, -0.1),
    "texture.wrinkle_density": ("wrinkles", 20, -2),
    "pigment.mi_mean": ("melanin", 0.45, -0.045),
}
#: the changes whose SkinParams field is a number of features in the frame (scaled with
#: the area by ``--area``); pore density is per cm^2 already
COUNTED = ("brown_spots", "wrinkles")
#: VISIA repeatability yardsticks (docs: DOMAIN.md), % of the value
VISIA = {"texture.roughness": "<2", "texture.pore_density": "2-4", "spots.count": "~6",
         "spots.brown_contrast": "<2", "texture.wrinkle_density": "~6", "pigment.mi_mean": "<2"}


def camera(rng, exposure=1.0):
    from photokit.synth import Camera

    u = rng.uniform
    return Camera(rotation_deg=u(-2, 2), scale=1 + u(-0.03, 0.03), shift_px=(u(-20, 20), u(-20, 20)),
                  exposure=exposure * u(0.96, 1.04), cct_k=u(6000, 6800),
                  wb_gains=tuple(1 + u(-0.015, 0.015, 3)), jpeg_quality=int(rng.integers(88, 96)),
                  noise_seed=int(rng.integers(1 << 30)))


def verdicts(c) -> dict:
    """Per metric (delta, floor, new significant, old significant) and the two headlines."""
    from photokit.metrics import registry

    rows = {}
    for m in c.metrics:
        d = c.delta.get(m.name)
        if d is None or not math.isfinite(d):
            continue
        rows[m.name] = {"delta": d, "before": c.before.metrics.get(m.name),
                        "floor": c.noise_floor.get(m.name),
                        "new": c.significant.get(m.name), "old": bool(abs(d) > registry.get(m.name).mdc),
                        "holm": c.holm.get(m.name), "why": c.not_judged.get(m.name)}
    return {"metrics": rows, "headline_new": any(r["holm"] for r in rows.values()),
            "headline_old": any(r["old"] for r in rows.values())}


def synth_job(job):
    from photokit.comparison.compare import compare
    from photokit.errors import PhotokitError
    from photokit.synth import SkinParams, make_pair

    ita, (w, h, mmpp), seed, changes = job
    rng = np.random.default_rng(seed)
    p = make_pair(int(seed % 1000), SkinParams(width=w, height=h, mm_per_px=mmpp, ita=ita,
                                               **{k: v for k, v in changes.get("base", {}).items()}),
                  camera_before=camera(rng), camera_after=camera(rng), **changes.get("after", {}))
    out = {"truth": {k: float(v) for k, v in p.delta.items()}}
    if changes:
        out["true_line_change"] = true_line_change(p)
    # a melanin change covers the reference skin too (the reference would cancel it): it
    # is calibrated by the colour card in the scene instead
    by_card = bool(changes.get("base", {}).get("card"))
    ref_b = None if by_card else p.before.mask("reference")
    # known changes are measured over all the skin but the reference (the change covers it)
    roi = (p.before.mask("skin") & ~p.before.mask("reference")) if changes else p.before.mask("roi")
    for label, ref in (("calibrated", ref_b), ("uncalibrated", None)):
        if changes and label == "uncalibrated":
            continue
        try:
            c = compare(p.before.pixels, p.after.pixels, roi=roi, reference_roi=ref,
                        mm_per_px=mmpp, calibration="auto" if by_card else "none")
        except PhotokitError as exc:       # counted as a pair that could not be compared
            out["error"] = str(exc)
            continue
        out[label] = verdicts(c)
    return out


def true_line_change(p) -> float | None:
    """Relative change of the true wrinkle length over the region a known change is
    measured on (all the skin but the reference patch), in the skin's own frame: the
    generator's wrinkles (polylines densified 8x), each segment counted where its
    midpoint lies in the region. None without wrinkles."""
    roi = p.before.mask("skin", frame="canonical") & ~p.before.mask("reference", frame="canonical")
    h, w = roi.shape

    def length(img):
        total = 0.0
        for wr in img.truth.wrinkles:
            pts = np.asarray(wr["points_canonical"], float)
            dense = np.concatenate([np.linspace(pts[i], pts[i + 1], 9)[:-1] for i in range(len(pts) - 1)]
                                   + [pts[-1:]])
            mid = np.clip(np.round(0.5 * (dense[1:] + dense[:-1])).astype(int), 0, [w - 1, h - 1])
            seg = np.diff(dense, axis=0)
            total += float(np.hypot(seg[:, 0], seg[:, 1])[roi[mid[:, 1], mid[:, 0]]].sum())
        return total

    before = length(p.before)
    return length(p.after) / before - 1 if before else None


def recapture(rgb8, rng):
    """A small warp, light change (exposure +-8 %, WB +-3 %), noise SD 2 and JPEG 88-95."""
    import cv2
    from PIL import Image

    from photokit.colour.convert import linear_to_srgb, srgb_to_linear

    h, w = rgb8.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-2, 2), 1 + rng.uniform(-0.03, 0.03))
    m[:, 2] += rng.uniform(-0.015, 0.015, 2) * (w, h)
    warped = cv2.warpAffine(rgb8, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lin = srgb_to_linear(warped.astype(np.float32) / 255.0)
    lin = lin * rng.uniform(0.92, 1.08) * (1 + rng.uniform(-0.03, 0.03, 3)).astype(np.float32)
    out = np.clip(linear_to_srgb(np.clip(lin, 0, 1)) * 255 + rng.normal(0, 2, lin.shape), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(out.astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(88, 96)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def real_job(job):
    from PIL import Image

    from photokit.comparison.compare import compare
    from photokit.errors import PhotokitError

    path, seed, mmpp, roi = job
    rgb = np.asarray(Image.open(path).convert("RGB"))
    region = None if roi is None else np.asarray(Image.open(roi).convert("L")) > 127
    rng = np.random.default_rng(seed)
    a, b = recapture(rgb, rng), recapture(rgb, rng)
    try:
        c = compare(a, b, roi=region, mm_per_px=mmpp)
    except PhotokitError as exc:
        return {"photo": Path(path).name, "error": str(exc)}
    return {"photo": Path(path).name, **verdicts(c)}


def zoom_job(job):
    """A zoom pair compared over the whole face, uncalibrated; and over the cheeks with the
    forehead as reference skin (BEFORE's face-mesh zones), as a clinician would."""
    import cv2

    from photokit.comparison.compare import compare
    from photokit.errors import PhotokitError
    from photokit.faces.search import face_pass
    from photokit.io.photo import load

    a, b, cheeks = job
    roi = ref = None
    if cheeks:
        pb = load(str(a))
        zones = face_pass(pb).meshes[0].zone_polygons()

        def fill(names):
            m = np.zeros((pb.height, pb.width), np.uint8)
            for n in names:
                cv2.fillPoly(m, [np.asarray(zones[n], np.int32).reshape(-1, 2)], 1)
            return m.astype(bool)

        roi, ref = fill(("cheek_left", "cheek_right")), fill(("forehead",))
    try:
        c = compare(str(a), str(b), roi=roi, reference_roi=ref)
    except PhotokitError as exc:
        return {"pair": f"{a.name}-{b.name}", "error": str(exc)}
    return {"pair": f"{a.name}-{b.name}", **verdicts(c)}


def false_alarms(results, label=None, only=None):
    """Per metric: pairs, flagged NEW, flagged OLD; and the headlines."""
    per, heads = {}, {"pairs": 0, "new": 0, "old": 0}
    for r in results:
        v = r.get(label) if label else r
        if not v or "metrics" not in v:
            continue
        heads["pairs"] += 1
        rows = {k: x for k, x in v["metrics"].items() if only is None or k in only}
        heads["new"] += any(x["holm"] for x in rows.values())
        heads["old"] += any(x["old"] for x in rows.values())
        for k, x in rows.items():
            s = per.setdefault(k, {"n": 0, "new": 0, "old": 0, "unjudged": 0})
            s["n"] += 1
            s["new"] += bool(x["new"])
            s["old"] += bool(x["old"])
            s["unjudged"] += x["floor"] is None
    return per, heads


def show_false_alarms(title, per, heads):
    print(f"\n{title}")
    print("| metric | pairs | flagged today (constant mdc) | flagged now (pair floor) | not judged |")
    print("|---|---|---|---|---|")
    from photokit.metrics import registry

    order = [m.name for m in registry.registered()]
    for k in sorted(per, key=order.index):
        s = per[k]
        print(f"| `{k}` | {s['n']} | {s['old']} ({100 * s['old'] / s['n']:.0f} %) | "
              f"{s['new']} ({100 * s['new'] / s['n']:.0f} %) | {s['unjudged']} |")
    n = max(heads["pairs"], 1)
    print(f"| **headline: any change** | {heads['pairs']} | "
          f"{heads['old']} ({100 * heads['old'] / n:.0f} %) | "
          f"{heads['new']} ({100 * heads['new'] / n:.0f} %, Holm) | |")


def change_table(results):
    """Known decreases: the measured change, today's and the pair's floor as % of the
    BEFORE value, and how many pairs call a significant decrease."""
    print("\n| metric | step | pairs | true change % (lines: in the region) | measured change % "
          "| floor today % | floor now % (median) | VISIA % | called today | called now |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    from photokit.metrics import registry

    for (name, step), rs in results.items():
        x = [r["calibrated"]["metrics"][name] for r in rs
             if "calibrated" in r and name in r["calibrated"]["metrics"]
             and r["calibrated"]["metrics"][name]["before"]]
        if not x:
            print(f"| `{name}` | {step * 10} % | 0 | | | | | {VISIA[name]} | | |")
            continue
        true = [100 * r["true_line_change"] for r in rs if r.get("true_line_change") is not None]
        true = f"{np.median(true):+.1f}" if name == "texture.wrinkle_density" and true else ""
        x_all = [100 * v["delta"] / abs(v["before"]) for v in x]
        spread = f" (SD {np.std(x_all, ddof=1):.1f})" if len(x_all) > 2 else ""
        lev = np.array([abs(v["before"]) for v in x])
        meas = np.median([100 * v["delta"] / b for v, b in zip(x, lev, strict=True)])
        floors = [100 * v["floor"] / b for v, b in zip(x, lev, strict=True) if v["floor"] is not None]
        fl_new = f"{np.median(floors):.1f}" if floors else "not judged"
        fl_old = np.median(100 * registry.get(name).mdc / lev)
        new = sum(bool(v["new"]) and v["delta"] < 0 for v in x)
        old = sum(bool(v["old"]) and v["delta"] < 0 for v in x)
        print(f"| `{name}` | -{step * 10} % | {len(x)} | {true} | {meas:+.1f}{spread} | {fl_old:.1f} "
              f"| {fl_new} | {VISIA[name]} | {old}/{len(x)} | {new}/{len(x)} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocols", default="synthetic,real,zoom,card,change")
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--changes", default=",".join(CHANGES),
                    help="the known changes to make (metric names, comma separated; default all)")
    ap.add_argument("--steps", default="1,2", help="the steps of 10 %% to make (default 1,2)")
    ap.add_argument("--area", type=float, default=1.0,
                    help="known changes on K times the 1200x900 patch's skin (sides x sqrt K), "
                         "with K times its lines and spots (the same density; default 1)")
    a = ap.parse_args()
    todo = a.protocols.split(",")
    saved = {}
    with ProcessPoolExecutor(max_workers=a.workers) as ex:
        if "synthetic" in todo:
            jobs = [(ita, res, 7919 * i + k, {}) for i, (ita, res) in
                    enumerate(itertools.product(ITAS, RESOLUTIONS)) for k in range(a.pairs)]
            res = list(ex.map(synth_job, jobs))
            saved["synthetic"] = res
            for label in ("uncalibrated", "calibrated"):
                show_false_alarms(f"(a) synthetic no-change pairs, {label} ({len(res)} pairs)",
                                  *false_alarms(res, label))
        if "real" in todo:
            faces = sorted((DATA / "faces").glob("*.jpg"))
            jobs = [(str(f), 11 * k + i, None, None) for i, f in enumerate(faces) for k in range(a.pairs)]
            pores = DATA / "pores"
            jobs += [(str(pores / "face_left.png"), 101 + k, 0.084, str(pores / "face_left_region.png"))
                     for k in range(a.pairs + 1)]
            res = list(ex.map(real_job, jobs))
            saved["real"] = res
            for r in res:
                if "error" in r:
                    print(f"  {r['photo']}: {r['error']}")
            show_false_alarms(f"(b) real photos re-captured, uncalibrated ({len(res)} pairs)",
                              *false_alarms(res))
        if "zoom" in todo:
            z = sorted((DATA / "recaptures" / "zoom").glob("*.jpg"))
            for cheeks in (False, True):
                res = list(ex.map(zoom_job, [(x, y, cheeks) for x, y in itertools.combinations(z, 2)]))
                saved["zoom_reference" if cheeks else "zoom"] = res
                for r in res:
                    if "error" in r:
                        print(f"  {r['pair']}: {r['error']}")
                how = ("cheeks, forehead as reference skin" if cheeks else "whole face, uncalibrated")
                show_false_alarms(f"(c) real zoom pairs, colour metrics, {how} ({len(res)} pairs)",
                                  *false_alarms(res, only=COLOUR))
        if "card" in todo:
            jobs = [(ita, res, 7919 * i + k, {"base": {"card": True}}) for i, (ita, res) in
                    enumerate(itertools.product(ITAS, RESOLUTIONS)) for k in range(a.pairs)]
            res = list(ex.map(synth_job, jobs))
            saved["card"] = res
            show_false_alarms(f"(d) synthetic no-change pairs with a colour card, card-calibrated "
                              f"({len(res)} pairs)", *false_alarms(res, "calibrated"))
        if "change" in todo:
            jobs, keys = [], []
            side = math.sqrt(a.area)
            size = (int(round(1200 * side)), int(round(900 * side)), 0.07)
            print(f"\nknown changes on {size[0]}x{size[1]} px at {size[2]} mm/px")
            for j, (name, (field, base, step)) in enumerate(CHANGES.items()):
                if name not in a.changes.split(","):
                    continue
                # `--area K`: K times the skin, the same density of counted features
                if field in COUNTED:
                    base, step = round(base * a.area), round(step * a.area)
                for k_step in (int(x) for x in a.steps.split(",")):
                    for k in range(a.pairs + 1):
                        jobs.append((None, size, 31 * k + 7 * k_step + 97 * j,
                                     {"base": {field: base, **({"card": True} if field == "melanin" else {})},
                                      "after": {field: base + k_step * step}}))
                        keys.append((name, k_step))
            res = list(ex.map(synth_job, jobs))
            grouped = {}
            for key, r in zip(keys, res, strict=True):
                grouped.setdefault(key, []).append(r)
            saved["change"] = {f"{n}@{s}": v for (n, s), v in grouped.items()}
            change_table(grouped)
    if a.json:
        Path(a.json).write_text(json.dumps(saved, default=float, indent=1))


if __name__ == "__main__":
    main()
