"""`measure` on the face mesh (issue 17) against the Haar path it replaced, on real faces.

Run: ``python benchmarks/bench_face_measure.py [--old TREE] [--sheet PNG]``. Data from
``PHOTOKIT_BENCH_DATA`` (default ``../shared/data``), never copied into the repository.

The old column runs the previous commit's code: check it out with
``git worktree add /tmp/old17 <commit>`` and pass ``--old /tmp/old17`` (default); this
script then runs itself in a subprocess with that tree first on ``sys.path`` (``--worker``)
and reads back its scale sources, masks and timings.

Printed, per photo set (London neutral ``*_03``, London smiling ``*_08``, the four zoom
recaptures, ``faces/``, the astronaut):

1. faces found by the mesh; ``scale_source`` counts (iris / face / relative), new and old;
   zones reported (not blank) per photo, of 11;
2. where the automatic skin mask lies, new and old: share of its pixels inside the mesh's
   face oval, in the neck band below it (`photokit.faces.skin` notes), and outside both
   (background, hair, ears, clothes, hands: what the face mask must not take);
3. the inter-pupil distance in mm: hand-placed pupils (``.tem``: London points 0/1, zoom
   63/81) times measure's mm/px, new (iris or face scale) and old (63 mm / Haar eyes);
4. measure's time on a 12 MP portrait (a zoom photo upscaled to 4000 x 3000, written to
   /tmp) as a ratio to one ``cv2.imread`` of the same JPEG, new (with and without zones)
   and old;

and writes a contact sheet of measure's skin mask (white outline, the rest dimmed) and
the mesh, irises and zones (`Measurement.overlay`) on every photo to ``--sheet``
(default /tmp/skin_sheet.png).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA", ROOT.parent / "shared" / "data"))
SETS = {"london_03": "london/*_03.jpg", "london_08": "london/*_08.jpg", "zoom": "recaptures/zoom/*.jpg",
        "faces": "faces/*.jpg"}
BIG = "/tmp/bench_face_measure_12mp.jpg"


def photo_list() -> list[tuple[str, str]]:
    """``(set, path)`` of every photo; the astronaut written to /tmp as a PNG."""
    out = [(name, p) for name, pat in SETS.items() for p in sorted(glob.glob(str(DATA / pat)))]
    import skimage.data

    astro = "/tmp/bench_face_measure_astronaut.png"
    cv2.imwrite(astro, skimage.data.astronaut()[..., ::-1])
    return out + [("astronaut", astro)]


def pupils(path: str) -> np.ndarray | None:
    """Hand-placed pupils (2 x 2), or None without a ``.tem`` file."""
    tem = Path(path).with_suffix(".tem")
    if not tem.exists():
        return None
    lines = tem.read_text().split("\n")
    pts = np.array([[float(v) for v in ln.split()[:2]] for ln in lines[1:int(lines[0]) + 1]])
    return pts[[0, 1]] if "london" in path else pts[[63, 81]]


def imread_seconds(path: str, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        cv2.imread(path, cv2.IMREAD_COLOR)
        best = min(best, time.perf_counter() - t)
    return best


def measure_seconds(path: str, repeat: int = 2, **kw) -> float:
    from photokit.measurement.measure import measure

    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        measure(path, **kw)
        best = min(best, time.perf_counter() - t)
    return best


def worker(out: str, paths: list[str]) -> None:
    """Measure every photo with whichever photokit is first on sys.path; save what the
    parent needs (scale, packed mask) to `out` (npz) and the timing of `BIG`."""
    from photokit.measurement.measure import measure

    rec = {}
    for p in paths:
        m = measure(p)
        rec[p] = {"source": m.scale.source, "mm_per_px": m.scale.mm_per_px,
                  "mask": np.packbits(m.mask), "shape": m.mask.shape}
    t_read = imread_seconds(BIG)
    t_meas = measure_seconds(BIG)
    meta = {p: {"source": r["source"], "mm_per_px": r["mm_per_px"], "shape": list(r["shape"])}
            for p, r in rec.items()}
    np.savez(out, meta=json.dumps(meta),
             times=np.array([t_read, t_meas]), **{f"m{i}": rec[p]["mask"] for i, p in enumerate(paths)})


def run_old(tree: str, paths: list[str]) -> tuple[dict, dict, tuple[float, float]]:
    out = "/tmp/bench_face_measure_old.npz"
    env = dict(os.environ, PYTHONPATH=tree)
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", out, *paths], env=env,
                   cwd="/tmp", check=True)
    z = np.load(out)
    meta = json.loads(str(z["meta"]))
    masks = {p: np.unpackbits(z[f"m{i}"])[:np.prod(meta[p]["shape"])].reshape(meta[p]["shape"]).astype(bool)
             for i, p in enumerate(paths)}
    return meta, masks, tuple(z["times"])


def regions(face, shape) -> tuple[np.ndarray, np.ndarray]:
    """The face oval and the neck band below it (outside the oval), bool full resolution:
    below the jaw angles, within 0.4 face widths of the face's axis (the neck is about
    0.7 face widths wide, Farkas 1994)."""
    from photokit.faces.skin import face_outline

    oval = face_outline(face, shape)
    xy = face.landmarks[:, :2]
    down = xy[152] - xy[10]
    down /= np.hypot(*down)
    width = np.hypot(*(xy[454] - xy[234]))
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    v = (xs - xy[152, 0]) * down[0] + (ys - xy[152, 1]) * down[1]
    u = (xs - xy[152, 0]) * -down[1] + (ys - xy[152, 1]) * down[0]
    jaw = np.mean([(xy[j] - xy[152]) @ down for j in (172, 397)])
    return oval, (v > jaw) & (np.abs(u) < 0.4 * width) & ~oval


def shares(mask: np.ndarray, oval: np.ndarray, neck: np.ndarray) -> tuple[float, float, float]:
    n = max(1, int(np.count_nonzero(mask)))
    return (np.count_nonzero(mask & oval) / n, np.count_nonzero(mask & neck) / n,
            np.count_nonzero(mask & ~oval & ~neck) / n)


def tile(img: np.ndarray, label: str, side: int = 300) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / max(h, w)
    small = cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
    out = np.full((side + 18, side, 3), 255, np.uint8)
    out[18:18 + small.shape[0], :small.shape[1]] = small
    cv2.putText(out, label[:40], (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", default="/tmp/old17")
    ap.add_argument("--sheet", default="/tmp/skin_sheet.png")
    ap.add_argument("--worker", nargs="+")
    a = ap.parse_args()
    if a.worker:
        worker(a.worker[0], a.worker[1:])
        return
    from photokit.measurement.measure import measure

    zoom = sorted(glob.glob(str(DATA / "recaptures/zoom/*.jpg")))[1]
    im = cv2.imread(zoom)
    size = (4000, 3000) if im.shape[1] >= im.shape[0] else (3000, 4000)
    cv2.imwrite(BIG, cv2.resize(im, size, interpolation=cv2.INTER_CUBIC), [cv2.IMWRITE_JPEG_QUALITY, 92])
    items = photo_list()
    paths = [p for _, p in items]
    old_meta, old_masks, old_times = run_old(a.old, paths)

    rows, tiles, ipd = {}, [], []
    for name, p in items:
        m = measure(p)
        r = rows.setdefault(name, {"n": 0, "faces": 0, "new": {}, "old": {}, "zones": [],
                                   "sh_new": [], "sh_old": []})
        r["n"] += 1
        r["faces"] += bool(m.faces)
        r["new"][m.scale.source] = r["new"].get(m.scale.source, 0) + 1
        o = old_meta[p]["source"]
        r["old"][o] = r["old"].get(o, 0) + 1
        r["zones"].append(sum(z["reason"] is None for z in m.zones.values()))
        if m.faces:
            oval, neck = regions(m.faces[0], m.mask.shape)
            r["sh_new"].append(shares(m.mask, oval, neck))
            r["sh_old"].append(shares(old_masks[p], oval, neck))
        pp = pupils(p)
        if pp is not None and name in ("zoom", "london_03"):
            d = float(np.hypot(*(pp[1] - pp[0])))
            ipd.append((name, Path(p).name, m.scale.source, d * m.scale.mm_per_px,
                        d * old_meta[p]["mm_per_px"] if old_meta[p]["mm_per_px"] else None))
        pic = m.overlay()
        pic[~m.mask] //= 2
        tiles.append(tile(pic, f"{Path(p).name} {m.scale.source}"))

    print("\n== faces, scale sources (new vs old Haar path), zones reported ==")
    print(f"{'set':<10} {'photos':>6} {'faces':>6}  {'scale new':<28} {'scale old':<28} {'zones/11':>8}")
    for name, r in rows.items():
        fmt = lambda c: ", ".join(f"{k} {v}" for k, v in sorted(c.items()))  # noqa: E731
        print(f"{name:<10} {r['n']:>6} {r['faces']:>6}  {fmt(r['new']):<28} {fmt(r['old']):<28} "
              f"{np.mean(r['zones']):>8.1f}")
    print("\n== skin mask: share of its pixels in the face oval / the neck band / elsewhere (mean) ==")
    print(f"{'set':<10} {'new oval':>9} {'neck':>6} {'else':>6}   {'old oval':>9} {'neck':>6} {'else':>6}"
          f" {'old else max':>12}")
    for name, r in rows.items():
        if r["sh_new"]:
            n, o = np.mean(r["sh_new"], 0), np.mean(r["sh_old"], 0)
            print(f"{name:<10} {n[0]:>9.3f} {n[1]:>6.3f} {n[2]:>6.3f}   {o[0]:>9.3f} {o[1]:>6.3f} "
                  f"{o[2]:>6.3f} {max(s[2] for s in r['sh_old']):>12.3f}")
    print("\n== inter-pupil distance (hand-placed pupils x measure's mm/px), mm ==")
    print(f"{'photo':<18} {'source':<7} {'new':>6} {'old (63 mm / Haar eyes)':>24}")
    for name, f, src, new, old in ipd:
        print(f"{name + '/' + f:<18} {src:<7} {new:>6.1f} {'-' if old is None else f'{old:.1f}':>24}")
    for name in ("zoom", "london_03"):
        v = np.array([n for s, _, _, n, _ in ipd if s == name])
        if len(v):
            print(f"{name}: mean {v.mean():.1f} mm, range {v.min():.1f}-{v.max():.1f}, "
                  f"spread (max-min)/mean {100 * (v.max() - v.min()) / v.mean():.1f} %, "
                  f"SD/mean {100 * v.std(ddof=1) / v.mean():.1f} %")
    print("\n== time on a 12 MP portrait (best of 2) ==")
    t_read = imread_seconds(BIG)
    t_new = measure_seconds(BIG)
    t_nozones = measure_seconds(BIG, zones=False)
    print(f"cv2.imread {t_read:.3f} s; measure new {t_new:.2f} s (ratio {t_new / t_read:.1f}), "
          f"without zones {t_nozones:.2f} s (ratio {t_nozones / t_read:.1f}); old {old_times[1]:.2f} s "
          f"(ratio {old_times[1] / old_times[0]:.1f}, its own imread {old_times[0]:.3f} s)")

    cols = 6
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    sheet = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    cv2.imwrite(a.sheet, sheet[..., ::-1])
    print(f"\nwrote {a.sheet}")


if __name__ == "__main__":
    main()
