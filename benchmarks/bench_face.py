"""Face mesh, irises, pose, iris ruler, zones and speed of photokit.faces.mesh on real photos.

Run ``python benchmarks/bench_face.py``. Real data come from ``$PHOTOKIT_BENCH_DATA``
(default ``shared/data`` beside the repository); nothing is copied into the repository.
The contact sheet of overlays is written to ``/tmp/face_sheet.png``.

Sections
--------
1. Found and meshed: London neutral (``*_03``) and smiling (``*_08``), the four zoom
   recaptures (15-60 cm), the six portraits of ``faces/``, the astronaut; the old Haar
   path (`photokit.faces.haar.detect_faces` on grey) in the same run: faces with both eyes.
   1b. The same photos shrunk so the face spans 25-6 % of a 4000 px wide grey frame:
   found, by which detector stage (whole image, Haar proposal, tiles), time.
2. Synthetic yaw: a frontal London face's mesh texture-mapped and turned about the
   vertical axis by 0-50 degrees (each triangle warped by its affine map, drawn far to
   near), re-meshed: largest yaw meshed, yaw error against the truth (relative to the
   pose measured at 0), also with the frontal surroundings blacked out ("err face"),
   visibility of the two cheeks; and, as a check of the pose and
   visibility geometry alone, both computed on the turned mesh itself.
3. Iris centres against hand-placed pupils (London ``.tem`` points 0/1, zoom 63/81):
   error as % of the inter-pupil distance (IPD); the Haar eye centres likewise.
4. The ruler: hand IPD (px) x mm_per_px (the limbus diameter), beside the previous ruler
   (MediaPipe Iris's own diameter, ``Iris.model_diameter_px``). Zoom photos: spread across
   15-60 cm, as photographed (near fixation) and corrected to far fixation for the eyes'
   convergence on the lens at the stated distance (`far_ipd`); London: range against
   54-74 mm; the 63 mm rule gives 63 by definition; the Haar rule (63 mm / Haar eye
   distance) shows its detector's error as the IPD it implies.
5. Time: find_faces + face_scale + zone outlines on a 12 MP JPEG (a zoom photo upscaled
   to 3000 x 4000) against one ``cv2.imread`` of that file, median of interleaved rounds.
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from photokit.faces.haar import detect_faces
from photokit.faces.mesh import IRIS_MM, TRIANGLES, draw_overlay, face_scale, find_faces, pose, visibility

DATA = Path(os.environ.get("PHOTOKIT_BENCH_DATA",
                           Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
SHEET = "/tmp/face_sheet.png"


def read_rgb(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].copy()


def pupils(path: Path) -> np.ndarray | None:
    """Hand-placed pupils, image-left first, or None without a ``.tem`` file."""
    tem = path.with_suffix(".tem")
    if not tem.exists():
        return None
    lines = tem.read_text().split("\n")
    n = int(lines[0])
    pts = np.array([[float(v) for v in ln.split()[:2]] for ln in lines[1:n + 1]])
    p = pts[[0, 1]] if "london" in str(path) else pts[[63, 81]]
    return p[np.argsort(p[:, 0])]


def photos() -> list[tuple[str, np.ndarray, Path | None]]:
    out = []
    for pat in ("london/*_03.jpg", "london/*_08.jpg", "recaptures/zoom/*.jpg", "faces/*.jpg"):
        for p in sorted(glob.glob(str(DATA / pat))):
            out.append((str(Path(p).relative_to(DATA)), read_rgb(p), Path(p)))
    out.append(("astronaut", skimage.data.astronaut(), None))
    return out


def crop_face(img: np.ndarray, box, size=(300, 360)) -> np.ndarray:
    x0, y0, x1, y1 = box
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.65 * max(x1 - x0, (y1 - y0) / 1.2)
    m = np.array([[size[0] / (2 * half), 0, size[0] / 2 - cx * size[0] / (2 * half)],
                  [0, size[0] / (2 * half), size[1] / 2 - cy * size[0] / (2 * half)]])
    return cv2.warpAffine(img, m, size, flags=cv2.INTER_AREA, borderValue=(40, 40, 40))


def section_found(items):
    print("\n== 1. Faces found and meshed (facemesh) vs Haar faces with both eyes ==")
    groups: dict[str, list] = {}
    results = {}
    tiles = []
    for name, img, _ in items:
        faces = find_faces(img)
        results[name] = faces
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        haar = detect_faces(gray)
        g = ("london neutral" if name.endswith("_03.jpg") else "london smiling" if name.endswith("_08.jpg")
             else name.split("/")[0] if "/" in name else name)
        groups.setdefault(g, []).append((len(faces) > 0, bool(haar) and len(haar[0].eyes) == 2,
                                         faces[0].detector if faces else "-"))
        if faces:
            ov = draw_overlay(img, faces[:1])
            tile = crop_face(ov, faces[0].box)
            cv2.putText(tile, name.split("/")[-1], (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
            tiles.append(tile)
    print(f"{'set':16s} {'n':>3s} {'meshed':>7s} {'haar 2 eyes':>12s}  detector")
    for g, rows in groups.items():
        srcs = {}
        for r in rows:
            srcs[r[2]] = srcs.get(r[2], 0) + 1
        print(f"{g:16s} {len(rows):3d} {sum(r[0] for r in rows):7d} {sum(r[1] for r in rows):12d}  {srcs}")
    cols = 8
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i:i + cols]) for i in range(0, len(tiles), cols)])
    cv2.imwrite(SHEET, sheet[..., ::-1])
    print(f"contact sheet: {SHEET}")
    return results


def turn(xyz: np.ndarray, deg: float) -> np.ndarray:
    """The mesh turned by `deg` about the vertical axis through its centroid (positive: the
    nose to the image's right, the subject turning to their own left)."""
    c = xyz.mean(0)
    t = np.radians(deg)
    p = xyz - c
    return np.stack([p[:, 0] * np.cos(t) - p[:, 2] * np.sin(t), p[:, 1],
                     p[:, 0] * np.sin(t) + p[:, 2] * np.cos(t)], axis=1) + c


def section_small(items):
    print("\n== 1b. Small faces in a large frame (the detector's fallbacks) ==")
    rng = np.random.default_rng(0)
    print(f"{'face width':>10s} {'found':>6s} {'by':>24s} {'ms':>5s}")
    for frac in (0.25, 0.15, 0.10, 0.06):
        found, by, ms = 0, {}, []
        for name in ("london/001_03.jpg", "london/043_03.jpg", "faces/obama.jpg", "recaptures/zoom/45cm.jpg"):
            img = next(i for n, i, _ in items if n == name)
            f0 = find_faces(img)[0]
            w0 = f0.box[2] - f0.box[0]
            s = frac * 4000 / w0
            small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            canvas = np.full((3000, 4000, 3), 120, np.uint8)
            h, w = small.shape[:2]
            y, x = rng.integers(0, max(1, 3000 - h)), rng.integers(0, max(1, 4000 - w))
            part = small[:3000 - y, :4000 - x]
            canvas[y:y + part.shape[0], x:x + part.shape[1]] = part
            t = time.perf_counter()
            faces = find_faces(canvas)
            ms.append((time.perf_counter() - t) * 1000)
            if faces:
                found += 1
                by[faces[0].detector] = by.get(faces[0].detector, 0) + 1
        print(f"{frac:10.2f} {found:4d}/4 {str(by):>24s} {np.median(ms):5.0f}")


def render_yaw(img: np.ndarray, xyz: np.ndarray, deg: float, *, face_only: bool = False) -> np.ndarray:
    """The face texture-mapped on its mesh turned by `deg` (`turn`), projected orthographically.

    The rest of the photo (hair, ears, neck) stays frontal, a cue the mesh model weighs;
    with `face_only` everything outside the turned face is black instead.
    """
    q = turn(xyz, deg)
    out = img.copy()
    covered = np.zeros(img.shape[:2], np.uint8)
    order = np.argsort(-q[TRIANGLES].mean(1)[:, 2])   # far to near
    for tri in TRIANGLES[order]:
        src, dst = xyz[tri, :2].astype(np.float32), q[tri, :2].astype(np.float32)
        x0, y0 = np.floor(dst.min(0)).astype(int)
        x1, y1 = np.ceil(dst.max(0)).astype(int) + 1
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        m = cv2.getAffineTransform(src, (dst - [x0, y0]).astype(np.float32))
        patch = cv2.warpAffine(img, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, np.round((dst - [x0, y0]) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
        roi = out[y0:y1, x0:x1]
        mk = mask[:roi.shape[0], :roi.shape[1]].astype(bool)
        roi[mk] = patch[:roi.shape[0], :roi.shape[1]][mk]
        covered[y0:y1, x0:x1][mk] = 1
    # where the turned face no longer covers the original one, paint in its surroundings
    # (hair, background) so the old face does not show through
    hole = np.zeros_like(covered)
    cv2.fillConvexPoly(hole, cv2.convexHull(np.round(xyz[:, :2]).astype(np.int32)), 1)
    hole = cv2.dilate(hole & (1 - covered), np.ones((9, 9), np.uint8))
    k = 4
    small = cv2.inpaint(out[::k, ::k].copy(), hole[::k, ::k].copy(), 5, cv2.INPAINT_TELEA)
    filled = cv2.resize(small, img.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    out[hole > 0] = filled[hole > 0]
    if face_only:
        keep = np.zeros_like(covered)
        cv2.fillConvexPoly(keep, cv2.convexHull(np.round(q[:, :2]).astype(np.int32)), 1)
        out *= keep[..., None]
    return out


def section_yaw(items):
    print("\n== 2. Synthetic yaw (texture-mapped mesh turned about the vertical axis) ==")
    for name in ("london/001_03.jpg", "london/043_03.jpg"):
        img = next(i for n, i, _ in items if n == name)
        f0 = find_faces(img)[0]
        print(f"{name}: yaw at 0 = {f0.yaw:+.1f}")
        print(f"  {'truth':>6s} {'meshed':>6s} {'yaw':>7s} {'error':>6s} {'err face':>9s} "
              f"{'vis cheek_L':>11s} {'vis cheek_R':>11s} | true mesh: {'yaw':>6s} {'cheek_L':>7s} "
              f"{'cheek_R':>7s} {'jaw_L':>5s} {'jaw_R':>5s}")
        largest = 0
        for deg in range(-50, 51, 10):
            q = turn(f0.landmarks, deg)
            vq = visibility(q)
            truth = (f" | {pose(q)[0]:+15.1f} {vq['cheek_left']:7.2f} {vq['cheek_right']:7.2f} "
                     f"{vq['jaw_left']:5.2f} {vq['jaw_right']:5.2f}")
            faces = find_faces(render_yaw(img, f0.landmarks, deg))
            if not faces:
                print(f"  {deg:6d} {'no':>6s}{truth}")
                continue
            f = faces[0]
            largest = max(largest, abs(deg))
            err = (f.yaw - f0.yaw) - deg
            fo = find_faces(render_yaw(img, f0.landmarks, deg, face_only=True))
            only = f"{(fo[0].yaw - f0.yaw) - deg:+9.1f}" if fo else f"{'none':>9s}"
            print(f"  {deg:6d} {'yes':>6s} {f.yaw:+7.1f} {err:+6.1f} {only} {f.visible['cheek_left']:11.2f} "
                  f"{f.visible['cheek_right']:11.2f}{truth}")
        print(f"  largest |yaw| meshed: {largest} deg")
        if name.endswith("001_03.jpg"):
            turned = render_yaw(img, f0.landmarks, 40)
            cv2.imwrite("/tmp/face_yaw40.png", draw_overlay(turned, find_faces(turned))[..., ::-1])


#: Centre of rotation of the eye behind the corneal apex (Fry & Hill 1962, Am. J. Optom.
#: 39:581-595) and entrance pupil behind it (Gullstrand's schematic eye, 3.05 mm), mm.
ROTATION_MM, PUPIL_MM = 13.5, 3.0


def far_ipd(near_mm: float, distance_mm: float) -> float:
    """The inter-pupil distance at far fixation from the one measured on a photo whose
    subject looks into the lens at `distance_mm` (lens to cornea).

    Each eye turns inward by ``theta = atan((P / 2) / (D + 13.5))`` about its centre of
    rotation, so its entrance pupil, ``r = 13.5 - 3.0 = 10.5`` mm in front of that centre,
    moves ``r sin(theta)`` towards the nose: ``P = P_near + 2 r sin(theta)``, solved for
    ``P`` by fixed-point iteration. The iris turns to face the lens, so its visible
    diameter, hence the iris scale, does not change.
    """
    r = ROTATION_MM - PUPIL_MM
    p = near_mm
    for _ in range(5):
        p = near_mm + 2 * r * np.sin(np.arctan(p / 2 / (distance_mm + ROTATION_MM)))
    return float(p)


#: Mesh landmarks of the eye corners: (subject's right outer, right inner, left inner, left outer).
CANTHI = (33, 133, 362, 263)


def hand_points(path: Path) -> np.ndarray:
    """All hand-placed points of a ``.tem`` file, (N, 2)."""
    lines = path.with_suffix(".tem").read_text().split("\n")
    n = int(lines[0])
    return np.array([[float(v) for v in ln.split()[:2]] for ln in lines[1:n + 1]])


def canthal_ruler(items, results, zoom_rows):
    """The ruler on rigid distances that do not move with the eyes: the hand-placed inner
    and outer eye corners (the template points nearest the mesh's corners on the 30 cm
    photo, the same indices on all four), in mm from each photo's iris scale. The inner
    corners lie at about the iris's depth, so perspective scales them as it scales the
    iris; the outer corners lie 10-15 mm further back (at 15 cm they shrink by ~8 %
    relative to the iris)."""
    zoom = {name: (img, path) for name, img, path in items if "zoom" in name}
    if len(zoom) < 2:
        return
    ref = next(n for n in zoom if n.endswith("30cm.jpg"))
    pts, lm = hand_points(zoom[ref][1]), results[ref][0].landmarks[:, :2]
    idx = [int(np.hypot(*(pts - lm[k]).T).argmin()) for k in CANTHI]
    inner, outer, inner_old = [], [], []
    for name, _e, ipd, sc, _mm, _h, old in zoom_rows:
        p = hand_points(zoom[name][1])
        icd_px = np.hypot(*(p[idx[1]] - p[idx[2]]))
        inner.append(icd_px * sc.mm_per_px)
        outer.append(np.hypot(*(p[idx[0]] - p[idx[3]])) * sc.mm_per_px)
        inner_old.append(icd_px * old / ipd)     # the previous ruler's mm/px: old / ipd
    print("Rigid distances from the hand-placed eye corners x the iris scale (no convergence):")
    for name, a, b, c in zip([r[0] for r in zoom_rows], inner, outer, inner_old, strict=True):
        print(f"  {Path(name).stem:>8s} inner canthi {a:5.1f} mm (previous ruler {c:5.1f}), "
              f"outer canthi {b:5.1f} mm")
    for label, v in (("inner canthal distance", inner), ("same, previous ruler", inner_old),
                     ("outer canthal distance", outer)):
        v = np.asarray(v)
        print(f"  {label}: spread (max-min)/mean {(v.max() - v.min()) / v.mean() * 100:.1f} %")


def section_iris_ruler(items, results):
    print("\n== 3. Iris centres vs hand-placed pupils; 4. the iris ruler ==")
    errs, herrs, rows = [], [], []
    for name, img, path in items:
        truth = pupils(path) if path else None
        faces = results[name]
        if truth is None or not faces:
            continue
        f = faces[0]
        est = np.array([f.iris_right.center, f.iris_left.center])   # image-left first
        ipd = float(np.hypot(*(truth[1] - truth[0])))
        e = np.hypot(*(est - truth).T) / ipd * 100
        errs += list(e)
        haar = detect_faces(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
        haar_ipd_mm = None
        if haar and len(haar[0].eyes) == 2:
            he = np.array(haar[0].eyes)
            herrs += list(np.hypot(*(he - truth).T) / ipd * 100)
            haar_ipd_mm = 63.0 * ipd / haar[0].interocular_px
        sc = face_scale(faces)
        d_model = np.mean([f.iris_left.model_diameter_px, f.iris_right.model_diameter_px])
        rows.append((name, e, ipd, sc, ipd * sc.mm_per_px, haar_ipd_mm, ipd * IRIS_MM / d_model))
    print(f"{'photo':24s} {'err L/R %IPD':>13s} {'IPD px':>7s} {'source':>6s} {'mm/px':>7s} {'unc':>5s} "
          f"{'IPD mm iris':>11s} {'(model d)':>9s} {'IPD mm Haar':>11s} {'63 mm rule mm/px':>16s}")
    for name, e, ipd, sc, mm, hmm, old in rows:
        print(f"{name:24s} {e[0]:6.2f}/{e[1]:5.2f} {ipd:7.1f} {sc.source:>6s} {sc.mm_per_px:7.4f} "
              f"{sc.uncertainty:5.3f} {mm:11.1f} {old:9.1f} {hmm if hmm is None else round(hmm, 1)!s:>11s} "
              f"{63.0 / ipd:16.4f}")
    print(f"iris centre error: median {np.median(errs):.2f} % IPD, 90th pct {np.percentile(errs, 90):.2f} %, "
          f"max {np.max(errs):.2f} % (n={len(errs)}); Haar eye centres: median "
          f"{np.median(herrs) if herrs else float('nan'):.2f} % (n={len(herrs)})")

    def spread(v):
        v = np.asarray(v)
        return f"spread (max-min)/mean {(v.max() - v.min()) / v.mean() * 100:.1f} %, SD/mean " \
               f"{v.std(ddof=1) / v.mean() * 100:.1f} %"

    zoom = [r for r in rows if "zoom" in r[0]]
    dist = [10.0 * float(Path(r[0]).stem.removesuffix("cm")) for r in zoom]
    print("Zoom recaptures, IPD (mm) = hand pupils (px) x mm/px; 'far' corrects the near-fixation IPD "
          "for convergence on the lens at the stated distance (far_ipd):")
    print(f"  {'distance':>8s} {'limbus':>7s} {'far':>6s} {'model d':>8s} {'far':>6s} {'Haar':>6s} "
          f"{'63 mm rule':>10s}")
    for r, dmm in zip(zoom, dist, strict=True):
        print(f"  {dmm / 10:6.0f}cm {r[4]:7.1f} {far_ipd(r[4], dmm):6.1f} {r[6]:8.1f} "
              f"{far_ipd(r[6], dmm):6.1f} {r[5] if r[5] is None else round(r[5], 1)!s:>6s} {63.0:10.1f}")
    for label, k in (("limbus (this ruler)", 4), ("model d (previous ruler)", 6)):
        near = [r[k] for r in zoom]
        far = [far_ipd(v, dmm) for v, dmm in zip(near, dist, strict=True)]
        print(f"  {label}: near {spread(near)}; far {spread(far)}")
    canthal_ruler(items, results, zoom)
    for label, k in (("limbus (this ruler)", 4), ("model d (previous ruler)", 6)):
        lon = np.array([r[k] for r in rows if "london" in r[0]])
        inside = np.sum((lon >= 54) & (lon <= 74))
        print(f"London IPD, {label}: {lon.min():.1f}-{lon.max():.1f} mm, mean {lon.mean():.1f}, SD/mean "
              f"{lon.std(ddof=1) / lon.mean() * 100:.1f} %, in 54-74 mm: {inside}/{len(lon)}")
    print("the 63 mm rule gives 63.0 mm on every photo by construction")


def section_time():
    print("\n== 5. Time on a 12 MP JPEG ==")
    src = read_rgb(DATA / "recaptures/zoom/30cm.jpg")
    big = cv2.resize(src, (3000, 4000), interpolation=cv2.INTER_CUBIC)
    path = "/tmp/face_12mp.jpg"
    cv2.imwrite(path, big[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    rgb = read_rgb(path)
    find_faces(rgb)   # load the networks
    t_read, t_face = [], []
    for _ in range(7):
        t = time.perf_counter()
        cv2.imread(path)
        t_read.append(time.perf_counter() - t)
        t = time.perf_counter()
        faces = find_faces(rgb)
        face_scale(faces)
        faces[0].zone_polygons()
        t_face.append(time.perf_counter() - t)
    r, f = np.median(t_read), np.median(t_face)
    print(f"cv2.imread {r * 1000:.0f} ms; find_faces + scale + zones {f * 1000:.0f} ms; ratio {f / r:.2f} "
          f"(target <= 1.5); meshed by '{faces[0].detector}'")


def main():
    items = photos()
    results = section_found(items)
    section_small(items)
    section_iris_ruler(items, results)
    section_yaw(items)
    section_time()


if __name__ == "__main__":
    main()
