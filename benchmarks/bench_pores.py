"""Pores on real skin: per-pore F1 and pixel Dice over the whole annotated region.

Data: ``$PHOTOKIT_BENCH_DATA/pores`` (default ``../shared/data/pores``): one real close-up
(``face_left.png``, 787x1801, about 0.084 mm/px), every pore outlined by hand
(``face_left_pores.png``) inside ``face_left_region.png`` (ZombaSY/Pore-Net-release;
"Facial Pore Segmentation Algorithm using Shallow CNN").

``measure`` runs with the region as ROI and the scale given; its pores
(`photokit.metrics.pores.find_pores`) are matched one-to-one to the hand-outlined pores
(connected components of the annotation inside the region): in order of contrast, a
detection matches the annotated pore whose outline (dilated by `MATCH_MM`) holds its
centre, unless that pore is matched already. Precision = matched / detections, recall =
matched / annotated pores, F1 their harmonic mean. Pixel Dice: the detections drawn as
discs of their diameter against the annotated pore pixels. Published anchors on this
kind of data: DoG ~0.44, a trained shallow CNN ~0.67 (pixel Dice).

Honest split: the detector's working level and thresholds were chosen on the top half
of the region (rows above its median row: the glabella, the upper nose and cheek) and
are scored on the bottom half too (held out), each annotated pore in the half holding
its centroid, each detection in the half holding its centre. The region's three areas
(glabella, cheek, nose) are scored the same way: the glabella holds the specular speckle
and, near the brow, pores nobody outlined.

``--old PATH`` runs the same on another checkout (e.g. ``git worktree add /tmp/old19
HEAD``) in a subprocess, for the before/after column.

``--errors PNG`` draws this checkout's matches, false hits and missed outlines, and
tabulates recall by pore size and dip and the false hits by distance to an outline.

``--found-again N`` (no real data): N synthetic skins (`photokit.synth.render_skin`, 50
pores per cm^2, 1200x900 at 0.07 mm/px, and a dark skin, ITA -20) each captured 5 times
with the light and pose of ``bench_noise.py``'s protocols (exposure x0.92-1.08, white
balance +-1.5 %, rotation +-2 deg, zoom +-3 %, shift +-20 px, the generator's noise,
JPEG 88-95). Every pore found and every near miss (`photokit.metrics.pores.PoreResult`)
of one capture is looked for among the pores found in each other capture (centres
within `AGAIN_MM` of each other in the skin's own coordinates, ``truth.H``): the share
found again by margin against `photokit.metrics.pores.pore_found_p`, the probits refitted
by maximum likelihood, and the SD of each skin's pore density over its captures against
the model's SE (`photokit.metrics.pores.PORE_COUNT_CAPTURE_CV` calibrated on it).

Run: ``python benchmarks/bench_pores.py [--old /tmp/old19] [--json out.json] [--errors e.png]
[--found-again 6]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA", REPO.parent / "shared" / "data"))
MM_PER_PX = 0.084
#: A detection's centre may lie this far outside a pore's outline and still match it (mm).
MATCH_MM = 0.1


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB photo, annotated region and hand-outlined pore pixels (inside the region)."""
    d = DATA / "pores"
    rgb = cv2.cvtColor(cv2.imread(str(d / "face_left.png")), cv2.COLOR_BGR2RGB)
    region = cv2.imread(str(d / "face_left_region.png"), cv2.IMREAD_GRAYSCALE) > 127
    truth = (cv2.imread(str(d / "face_left_pores.png"), cv2.IMREAD_GRAYSCALE) > 127) & region
    return rgb, region, truth


def detect(rgb: np.ndarray, region: np.ndarray) -> tuple[list, float | None, float]:
    """``measure``'s pores with the region as ROI: (pores, pores per cm^2, seconds)."""
    from photokit.measurement.measure import measure
    from photokit.metrics.pores import find_pores

    t0 = time.perf_counter()
    m = measure(rgb, roi=region, mm_per_px=MM_PER_PX, metrics=["texture.pore_density"])
    pores = find_pores(m.analysis) or []
    return pores, m.metrics.get("texture.pore_density"), time.perf_counter() - t0


def parts(region: np.ndarray) -> dict[str, np.ndarray]:
    """The whole region and its two halves of equal area: rows above the region's median
    row (``tune``: the thresholds were chosen there) and below (``held-out``); then its
    three areas (connected pieces): the glabella (the highest), the cheek (the leftmost
    of the other two) and the nose."""
    mid = int(np.median(np.nonzero(region)[0]))
    top = region.copy()
    top[mid:] = False
    out = {"tune (top half)": top, "held-out (bottom half)": region & ~top, "whole region": region}
    n, lab, _, cen = cv2.connectedComponentsWithStats(region.view(np.uint8), connectivity=8)
    if n == 4:
        glabella = 1 + int(np.argmin(cen[1:, 1]))
        rest = [k for k in range(1, n) if k != glabella]
        cheek = min(rest, key=lambda k: cen[k, 0])
        nose = max(rest, key=lambda k: cen[k, 0])
        out.update({"glabella": lab == glabella, "cheek": lab == cheek, "nose": lab == nose})
    return out


def match(pores: list, part: np.ndarray, truth: np.ndarray):
    """One-to-one matching of `pores` to the hand outlines in `part`.

    An annotated pore belongs to the part holding most of its pixels (its centroid's
    row decides, as the halves are split by rows); a detection belongs to the part
    holding its centre. Returns the outlines' labels (`cv2.connectedComponentsWithStats`:
    count, label image, stats, centroids), which labels are in the part, the detections
    in the part and, for each of them, the label it matched (0: a false hit).
    """
    n, lab, stats, cen = cv2.connectedComponentsWithStats(truth.view(np.uint8), connectivity=8)
    h, w = lab.shape
    mine = np.zeros(n, bool)
    mine[1:] = part[np.clip(np.round(cen[1:, 1]).astype(int), 0, h - 1),
                    np.clip(np.round(cen[1:, 0]).astype(int), 0, w - 1)]
    r = max(1, round(MATCH_MM / MM_PER_PX))
    grown = cv2.dilate(lab.astype(np.float32), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    grown = np.where(lab > 0, lab, grown.astype(np.int32))
    inside = [q for q in pores
              if 0 <= round(q.y) < h and 0 <= round(q.x) < w and part[round(q.y), round(q.x)]]
    inside.sort(key=lambda q: -q.contrast)
    used, hit = set(), []
    for q in inside:
        k = int(grown[round(q.y), round(q.x)])
        ok = k > 0 and mine[k] and k not in used
        if ok:
            used.add(k)
        hit.append(k if ok else 0)
    return (n, lab, stats, cen), mine, inside, np.array(hit, int)


def score(pores: list, part: np.ndarray, truth: np.ndarray) -> dict:
    """Per-pore matching (`match`) and pixel Dice of `pores` against the hand outlines in
    `part`."""
    (_, lab, _, _), mine, inside, hit = match(pores, part, truth)
    h, w = lab.shape
    tp = int(np.count_nonzero(hit))
    pred = np.zeros((h, w), np.uint8)
    for q in inside:
        cv2.circle(pred, (round(q.x), round(q.y)), max(1, round(q.diameter_mm / 2 / MM_PER_PX)), 1, -1)
    pred = pred.astype(bool) & part
    t = truth & part
    annotated = int(mine.sum())
    prec = tp / max(len(inside), 1)
    rec = tp / max(annotated, 1)
    return {"annotated": annotated, "detected": len(inside), "matched": tp, "precision": prec, "recall": rec,
            "f1": 2 * prec * rec / max(prec + rec, 1e-9),
            "dice": 2 * float((pred & t).sum()) / max(float(pred.sum() + t.sum()), 1.0)}


def errors(rgb: np.ndarray, region: np.ndarray, truth: np.ndarray, pores: list, png: str) -> None:
    """Where the detector errs, over the whole region: `png` shows the photo with the hand
    outlines (green; filled magenta when missed), matched detections (cyan) and false hits
    (red), each drawn as a circle of its diameter; printed: recall by the outlined pore's
    size and by its dip (mean L* of a 0.1-0.3 mm ring outside the outline minus the mean
    inside: how dark the pore is at all), and the false hits by their distance to the
    nearest outline and by their dip (the same ring outside their disc)."""
    (n, lab, stats, _), mine, inside, hit = match(pores, region, truth)
    found = np.zeros(n, bool)
    found[hit[hit > 0]] = True
    L = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 0]

    def ring_mean(r_out: int, r_in: int) -> np.ndarray:
        """Mean L* per outline over the pixels between r_in and r_out px outside it."""
        def grow(r):
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)
            return cv2.dilate(lab.astype(np.float32), k).astype(np.int32)
        band = np.where((grow(r_in) == 0) | (lab > 0), 0, grow(r_out)) if r_in else grow(r_out)
        band = np.where(truth, 0, band)
        return np.bincount(band.ravel(), L.ravel(), n) / np.maximum(np.bincount(band.ravel(), None, n), 1)

    inner = np.bincount(lab.ravel(), L.ravel(), n) / np.maximum(np.bincount(lab.ravel(), None, n), 1)
    ring = ring_mean(max(2, round(0.3 / MM_PER_PX)), max(1, round(0.1 / MM_PER_PX)))
    dip = (ring - inner)[1:][mine[1:]]
    size = 2 * np.sqrt(stats[1:, cv2.CC_STAT_AREA] / np.pi)[mine[1:]] * MM_PER_PX
    got = found[1:][mine[1:]]
    print("\n| outlined pores | n | recall |\n|---|---|---|")
    for name, v, edges in (("diameter (mm)", size, (0, 0.3, 0.4, 0.5, 0.6, 9)),
                           ("dip (L*)", dip, (-99, 0, 1, 2, 3, 99))):
        for a, b in zip(edges[:-1], edges[1:], strict=False):
            k = (v >= a) & (v < b)
            span = f"< {b:g}" if a == edges[0] else f">= {a:g}" if b == edges[-1] else f"{a:g}-{b:g}"
            print(f"| {name} {span} | {int(k.sum())} | {got[k].mean() if k.any() else float('nan'):.2f} |")
    far = cv2.distanceTransform((~truth).view(np.uint8), cv2.DIST_L2, 5) * MM_PER_PX
    d = np.array([far[round(q.y), round(q.x)] for q, k in zip(inside, hit, strict=True) if k == 0])
    print("\n| false hits | n |\n|---|---|")
    for lo, hi in ((0, 0.1), (0.1, 0.5), (0.5, 1.0), (1.0, np.inf)):
        print(f"| {lo:g}-{hi:g} mm from the nearest outline | {int(((d >= lo) & (d < hi)).sum())} |")
    # every detection's dip, measured as the outlines' are: its disc against the ring
    # 0.1-0.3 mm outside it
    yy, xx = np.mgrid[-12:13, -12:13]
    dips = []
    for q in inside:
        x, y = round(q.x), round(q.y)
        win = np.pad(L, 12, mode="edge")[y:y + 25, x:x + 25]
        rr = np.hypot(xx + x - q.x, yy + y - q.y) * MM_PER_PX
        r0 = max(q.diameter_mm / 2, MM_PER_PX)
        dips.append(win[(rr > r0 + 0.1) & (rr <= r0 + 0.3)].mean() - win[rr <= r0].mean())
    dips = np.array(dips)
    print("\n| detections' dip (L*) | matched | false hits |\n|---|---|---|")
    for lo, hi in ((-np.inf, 1), (1, 2), (2, 3), (3, np.inf)):
        k = (dips >= lo) & (dips < hi)
        print(f"| {lo:g}-{hi:g} | {int((k & (hit > 0)).sum())} | {int((k & (hit == 0)).sum())} |")
    vis = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    missed = mine & ~found
    missed[0] = False
    vis[missed[lab]] = (vis[missed[lab]] // 2 + np.array([127, 0, 127], np.uint8))
    for m, colour in ((truth.view(np.uint8), (0, 255, 0)), (region.view(np.uint8), (255, 255, 255))):
        cs, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(vis, cs, -1, colour, 1)
    for q, k in zip(inside, hit, strict=True):
        cv2.circle(vis, (round(q.x), round(q.y)), max(1, round(q.diameter_mm / 2 / MM_PER_PX)),
                   (255, 200, 0) if k else (0, 0, 255), 1)
    cv2.imwrite(png, vis)


#: Two captures' pores are the same pore when their centres are this close (mm).
AGAIN_MM = 0.15


def found_again(n_skins: int, n: int = 5, ita: float | None = None) -> tuple[list[dict], dict]:
    """Rows ``(kind, skin, a, b, margin, found)`` (one per pore found or near miss of
    capture `a`, looked for in capture `b`) and each skin's ``(density, se_parts)`` per capture."""
    from scipy.spatial import cKDTree

    from photokit.colour.convert import uint8_to_linear
    from photokit.metrics import pores as P
    from photokit.metrics.analysis import Analysis
    from photokit.synth import render_skin

    rng = np.random.default_rng(11)
    rows, caps_of = [], {}

    def canonical(im, x, y):
        q = np.stack([x, y, np.ones_like(x)], 1) @ np.asarray(im.truth.H).T
        return q[:, :2] / q[:, 2:]

    for s in range(n_skins):
        caps = []
        for _ in range(n):
            u = rng.uniform
            zoom = float(u(0.97, 1.03))
            im = render_skin(seed=300 + s, width=1200, height=900, pore_density=50.0,
                             rotation_deg=float(u(-2, 2)), scale=zoom,
                             shift_px=tuple(float(v) for v in u(-20, 20, 2)), exposure=float(u(0.92, 1.08)),
                             wb_gains=tuple(float(v) for v in 1 + u(-0.015, 0.015, 3)),
                             jpeg_quality=int(rng.integers(88, 96)), noise_seed=int(rng.integers(1 << 30)),
                             **({} if ita is None else {"ita": ita}))
            roi = cv2.erode(im.mask("skin").astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            an = Analysis(uint8_to_linear(im.pixels), roi, im.truth.mm_per_px / zoom)
            caps.append((im, roi, P._pores(an)))
        caps_of[s] = [r for _, _, r in caps]
        tol = AGAIN_MM / caps[0][0].truth.mm_per_px
        for a, (ima, _, ra) in enumerate(caps):
            for b, (imb, roib, rb) in enumerate(caps):
                if a == b:
                    continue
                found_b = cKDTree(canonical(imb, rb.x, rb.y))
                inv = np.linalg.inv(np.asarray(imb.truth.H))
                edge = cv2.erode(roib.astype(np.uint8), np.ones((31, 31), np.uint8)) > 0
                for kind, (x, y, m, d) in (("found", (ra.x, ra.y, ra.margin, ra.diameter_mm)),
                                           ("near", (ra.near_x, ra.near_y, ra.near_margin,
                                                     np.full(ra.near_x.size, np.nan)))):
                    q = canonical(ima, x, y)
                    qb = np.c_[q, np.ones(len(q))] @ inv.T
                    xb, yb = (qb[:, :2] / qb[:, 2:]).T
                    inside = ((xb >= 0) & (yb >= 0) & (xb < roib.shape[1] - 0.5) & (yb < roib.shape[0] - 0.5))
                    inside[inside] = edge[np.round(yb[inside]).astype(int), np.round(xb[inside]).astype(int)]
                    dist, idx = found_b.query(q[inside], distance_upper_bound=tol)
                    again = dist < np.inf
                    d_b = np.where(again, rb.diameter_mm[np.minimum(idx, rb.count - 1)], np.nan)
                    rows += [{"kind": kind, "skin": s, "a": a, "b": b, "margin": float(mi), "found": bool(f),
                              "d": float(da), "d_again": float(db)}
                             for mi, f, da, db in zip(m[inside], again, d[inside], d_b, strict=True)]
    return rows, caps_of


def fit_probit(rows: list[dict]) -> np.ndarray:
    """Maximum-likelihood ``(a, b)`` of ``P(found again) = Phi(a + b margin)``."""
    from scipy import optimize, special

    X = np.array([[1.0, r["margin"]] for r in rows])
    y = np.array([r["found"] for r in rows])

    def nll(th):
        p = np.clip(special.ndtr(X @ th), 1e-9, 1 - 1e-9)
        return -float(np.sum(np.where(y, np.log(p), np.log(1 - p))))

    return optimize.minimize(nll, np.zeros(2)).x


def section_found_again(n_skins: int) -> None:
    from photokit.metrics import pores as P
    from photokit.metrics.noise import found_se

    for ita in (None, -20.0):
        rows, caps_of = found_again(n_skins, ita=ita)
        print(f"\nFound again: {n_skins} synthetic skins x 5 captures (ITA {ita or 'default'}); "
              "share found again seen / model (n) by log-margin")
        probits = {"found": P.PORE_FOUND_PROBIT, "near": P.PORE_NEAR_PROBIT}
        for kind, edges in (("found", (0, 0.1, 0.2, 0.3, 0.5, 0.8, 9)),
                            ("near", (-1, -0.3, -0.2, -0.1, 0))):
            rs = [r for r in rows if r["kind"] == kind]
            m = np.array([r["margin"] for r in rs])
            y = np.array([r["found"] for r in rs])
            p = P.pore_found_p(m, probits[kind])
            cells = [f"[{lo}, {hi}) {np.mean(y[k]):.2f} / {np.mean(p[k]):.2f} ({k.sum()})"
                     for lo, hi in zip(edges[:-1], edges[1:], strict=False)
                     if (k := (m >= lo) & (m < hi)).any()]
            print(f"  {kind:5} {len(rs):6}: " + "; ".join(cells))
            print(f"        refitted probit (a, b): {np.round(fit_probit(rs), 2).tolist()} "
                  f"(in use: {list(probits[kind])})")
        both = [r for r in rows if r["kind"] == "found" and r["found"]]
        lr = np.log(np.array([r["d_again"] / r["d"] for r in both]) ** 2)
        print(f"  a pore's disc area found again: SD of ln(area ratio) {np.std(lr):.3f}, "
              f"i.e. each capture's own {np.std(lr) / math.sqrt(2):.3f}")
        obs = flick = cap = 0.0
        for s, rs in caps_of.items():
            d = np.array([r.count / r.area_mm2 * 100 for r in rs])
            parts = []    # (flicker, capture) variances per capture, (/cm^2)^2: `found_se`'s
            for r in rs:  # model without its continuity correction
                pf, pn = r.found_again()
                args = (np.ones(r.count), pf, np.ones(r.near_margin.size), pn)
                alone = found_se(*args, per_weight=100.0 / r.area_mm2, step=0.0) ** 2
                total = found_se(*args, per_weight=100.0 / r.area_mm2, step=0.0,
                                 capture_cv=P.pore_capture_cv(r.searched.mm_per_px)) ** 2
                parts.append((alone, total - alone))
            obs += float(np.var(d, ddof=1))
            flick += float(np.mean([f for f, _ in parts]))
            cap += float(np.mean([c for _, c in parts]))
            model = math.sqrt(np.mean([f + c for f, c in parts]))
            alone = math.sqrt(np.mean([f for f, _ in parts]))
            print(f"  skin {s}: density {np.mean(d):6.1f} /cm^2, SD over captures {np.std(d, ddof=1):5.2f} "
                  f"(CV {100 * np.std(d, ddof=1) / np.mean(d):4.1f} %), model SD {model:5.2f} "
                  f"(flicker alone {alone:5.2f})")
        k = len(caps_of)
        print(f"  pooled SD observed {math.sqrt(obs / k):.2f}, model {math.sqrt((flick + cap) / k):.2f} "
              f"(flicker alone {math.sqrt(flick / k):.2f}); "
              f"observed / model {math.sqrt(obs / (flick + cap)):.2f}")
        # the covered share (pores.area_pct): flicker, each pore's area jitter, capture
        obs = model = mean = 0.0
        for rs in caps_of.values():
            share = [100 * np.sum(np.pi * (r.diameter_mm / 2) ** 2) / r.area_mm2 for r in rs]
            var = []
            for r in rs:
                pf, pn = r.found_again()
                w, wn = np.pi * (r.diameter_mm / 2) ** 2, np.pi * (r.near_diameter_mm / 2) ** 2
                var.append(found_se(w, pf, wn, pn, per_weight=100.0 / r.area_mm2, jitter=P.PORE_AREA_JITTER,
                                    step=0.0, capture_cv=P.PORE_AREA_CAPTURE_RATIO
                                    * P.pore_capture_cv(r.searched.mm_per_px)) ** 2)
            obs += float(np.var(share, ddof=1))
            model += float(np.mean(var))
            mean += float(np.mean(share)) / k
        print(f"  covered share {mean:.2f} %: pooled SD observed {math.sqrt(obs / k):.3f} %, model "
              f"{math.sqrt(model / k):.3f} %; observed / model {math.sqrt(obs / model):.2f}")


def run() -> dict:
    rgb, region, truth = load()
    pores, density, seconds = detect(rgb, region)
    out = {name: score(pores, part, truth) for name, part in parts(region).items()}
    out["whole region"].update(pore_density=density, seconds=seconds, listed=len(pores))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", help="another checkout to score the same way (subprocess)")
    ap.add_argument("--json")
    ap.add_argument("--errors", metavar="PNG", help="draw and tabulate this checkout's errors (`errors`)")
    ap.add_argument("--found-again", type=int, metavar="N", help="N synthetic skins: the found-again model")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.found_again:
        section_found_again(a.found_again)
        return
    if a.child:
        print(json.dumps(run()))
        return
    rows = {"now": run()}
    if a.old:
        env = dict(os.environ, PYTHONPATH=a.old)
        out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True,
                             text=True, check=True, cwd=a.old)
        rows["old"] = json.loads(out.stdout.strip().splitlines()[-1])
    print("| run | part | annotated | detected | matched | precision | recall | F1 | pixel Dice |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, res in rows.items():
        for part, r in res.items():
            print(f"| {k} | {part} | {r['annotated']} | {r['detected']} | {r['matched']} "
                  f"| {r['precision']:.2f} "
                  f"| {r['recall']:.2f} | {r['f1']:.2f} | {r['dice']:.2f} |")
    print("| anchors | | | | | | | | DoG ~0.44, CNN ~0.67 |")
    for k, res in rows.items():
        r = res["whole region"]
        print(f"{k}: {r['listed']} pores listed ({r['detected']} in the region, "
              f"{r['annotated']} outlined by hand), "
              f"{r['pore_density']:.1f} pores/cm^2, measure {r['seconds']:.1f} s")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    if a.errors:
        rgb, region, truth = load()
        errors(rgb, region, truth, detect(rgb, region)[0], a.errors)


if __name__ == "__main__":
    main()
