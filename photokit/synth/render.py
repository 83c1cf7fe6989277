"""`render_skin` and `make_pair`: a synthetic photo (or two) and its exact truth."""

from __future__ import annotations

import dataclasses
import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import PhotokitError
from ..io.atomic import write_bytes
from .camera import Camera, expose, glare_field, to_photo_frame
from .skin import SkinParams, build_fields, edge_mm, make_rng, render_fields
from .truth import METRIC_UNITS, FrameMaps, SynthTruth, apply_homography, polygon_mask

_SKIN_FIELDS = {f.name for f in dataclasses.fields(SkinParams)}
_CAMERA_FIELDS = {f.name for f in dataclasses.fields(Camera)}


def split_changes(changes: dict) -> tuple[dict, dict]:
    """Split keyword changes into `SkinParams` and `Camera` fields (unknown names raise)."""
    skin, cam = {}, {}
    for k, v in changes.items():
        if k in _SKIN_FIELDS:
            skin[k] = v
        elif k in _CAMERA_FIELDS:
            cam[k] = v
        else:
            raise TypeError(f"unknown synth parameter {k!r} (not a SkinParams or Camera field)")
    return skin, cam


@dataclass(eq=False)
class SynthImage:
    """A synthetic photo and what it shows.

    Attributes
    ----------
    pixels : ndarray, uint8, (H, W, 3)
        The photo, RGB, as a decoder reads it (JPEG-decoded when ``jpeg_quality`` is set).
    truth : SynthTruth
        Ground truth (JSON-ready with ``truth.to_dict()``).
    reflectance : ndarray, float32, (H, W, 3)
        Noise-free, camera-free linear reflectance in the canonical frame (the truth is
        computed on it).
    linear : ndarray, float32, (H, W, 3)
        This photo's linear RGB before noise, 8-bit quantisation and JPEG.
    melanin, haemoglobin : ndarray, float32, (H, W)
        Chromophore OD maps in the canonical frame.
    encoded : bytes or None
        The JPEG file content (without EXIF) when ``jpeg_quality`` is set.
    """

    pixels: np.ndarray
    truth: SynthTruth
    reflectance: np.ndarray
    linear: np.ndarray
    melanin: np.ndarray
    haemoglobin: np.ndarray
    skin_canonical: np.ndarray
    encoded: bytes | None = None

    @property
    def homography(self) -> np.ndarray:
        """3x3 map from this photo's pixels to the canonical frame."""
        return self.truth.H

    def to_dict(self) -> dict:
        """The ground truth (JSON-ready)."""
        return self.truth.to_dict()

    def _repr_png_(self) -> bytes:
        """A 640 px preview in Jupyter."""
        h, w = self.pixels.shape[:2]
        s = min(1.0, 640 / w)
        small = cv2.resize(self.pixels, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        buf = io.BytesIO()
        Image.fromarray(small).save(buf, "PNG")
        return buf.getvalue()

    def mask(self, region: str = "roi", frame: str = "photo") -> np.ndarray:
        """Bool mask of ``skin``, ``roi``, ``treated`` or ``reference`` in ``photo`` or
        ``canonical`` pixels (ROIs are always within skin)."""
        h, w = self.skin_canonical.shape
        if region == "skin":
            m = self.skin_canonical
        elif region in self.truth.regions and "polygon_canonical" in self.truth.regions[region]:
            m = polygon_mask(np.asarray(self.truth.regions[region]["polygon_canonical"]), (h, w))
            m &= self.skin_canonical
        else:
            raise KeyError(f"unknown region {region!r}")
        if frame == "canonical":
            return m
        if frame != "photo":
            raise ValueError("frame must be 'photo' or 'canonical'")
        out = cv2.warpPerspective(m.astype(np.uint8), self.homography, (w, h),
                                  flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return out.astype(bool)

    def undo_camera(self, pixels: np.ndarray | None = None) -> np.ndarray:
        """Linear RGB of the photo with the known colour matrix, gains and illumination
        field undone (still in this photo's frame; noise, JPEG and glare remain)."""
        from ..colour.convert import uint8_to_linear

        lin = uint8_to_linear(self.pixels if pixels is None else pixels)
        ill = self.truth.camera["illumination"]
        g = np.asarray(ill["channel_gains"], dtype=np.float32)
        cam = Camera(gradient=ill["gradient"], gradient_angle_deg=ill["gradient_angle_deg"],
                     vignetting=ill["vignetting"])
        F = cam.illumination_field(lin.shape[1], lin.shape[0])
        M = self.truth.camera.get("colour_matrix")
        if M is not None:
            lin = cv2.transform(lin, np.linalg.inv(np.asarray(M, dtype=np.float64)).astype(np.float32))
        return lin / (g * F[..., None])

    def save(self, path: str | os.PathLike, *, date: datetime | None = None,
             truth: bool = True) -> Path:
        """Write the photo (JPEG or PNG by extension; EXIF DateTimeOriginal = `date`) and,
        with `truth`, its ground truth beside it (``<name>.json``). Atomic."""
        path = Path(path)
        ext = path.suffix.lower()
        if ext in (".jpg", ".jpeg"):
            if self.encoded is None:
                raise PhotokitError("photo was rendered without JPEG (jpeg_quality=None); save as .png",
                                    path)
            data = insert_exif(self.encoded, date) if date else self.encoded
        elif ext == ".png":
            buf = io.BytesIO()
            kw = {"exif": _exif(date)} if date else {}
            Image.fromarray(self.pixels).save(buf, "PNG", **kw)
            data = buf.getvalue()
        else:
            raise PhotokitError(f"unsupported extension {ext!r} (use .jpg or .png)", path)
        write_bytes(path, data)
        if truth:
            self.truth.image = path.name
            if date:
                self.truth.date = date.isoformat()
            self.truth.save(path.with_suffix(".json"))
        return path


def _exif(date: datetime) -> Image.Exif:
    s = date.strftime("%Y:%m:%d %H:%M:%S")
    exif = Image.Exif()
    exif[0x010F] = "photokit"          # Make
    exif[0x0110] = "photokit.synth"    # Model
    exif[0x0132] = s                   # DateTime
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = s                    # DateTimeOriginal
    sub[0x9004] = s                    # DateTimeDigitized
    return exif


def insert_exif(jpeg: bytes, date: datetime) -> bytes:
    """Add an EXIF APP1 segment (DateTimeOriginal = `date`) to JPEG bytes without
    re-encoding, so the decoded pixels stay identical."""
    if jpeg[:2] != b"\xff\xd8":
        raise PhotokitError("not a JPEG stream")
    payload = _exif(date).tobytes()
    if not payload.startswith(b"Exif"):
        payload = b"Exif\x00\x00" + payload
    seg = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    # after SOI and a JFIF APP0 if there is one
    pos = 2
    if jpeg[2:4] == b"\xff\xe0":
        pos = 4 + int.from_bytes(jpeg[4:6], "big")
    return jpeg[:pos] + seg + jpeg[pos:]


def render_skin(params: SkinParams | None = None, seed: int = 0, *, camera: Camera | None = None,
                **changes) -> SynthImage:
    """Render one synthetic skin photo with its ground truth.

    Parameters
    ----------
    params : SkinParams, optional
        The skin (default `SkinParams()`: light cheek skin, 1600x1200 at 0.07 mm/px).
    seed : int
        Which skin (its random structure). The same seed with other state parameters
        (roughness, erythema, ...) is the same skin on another day.
    camera : Camera, optional
        Pose, light, noise, JPEG (default `Camera()`: canonical pose and light).
    **changes
        Any `SkinParams` or `Camera` field, applied on top (e.g. ``brown_spots=5``,
        ``roughness=0.7``, ``exposure=1.2``, ``rotation_deg=3``).

    Returns
    -------
    SynthImage
        ``pixels`` (uint8 RGB) and ``truth`` (`SynthTruth`), plus the canonical
        reflectance and chromophore maps.
    """
    p = params or SkinParams()
    cam = camera or Camera()
    skin_kw, cam_kw = split_changes(changes)
    if skin_kw:
        p = p.replace(**skin_kw)
    if cam_kw:
        cam = cam.replace(**cam_kw)
    if p.width < 64 or p.height < 64 or p.mm_per_px <= 0:
        raise ValueError("need width, height >= 64 and mm_per_px > 0")
    fields = build_fields(p, seed)
    r = render_fields(fields, p)
    grid = fields.grid
    m, W, Hh = grid.margin, grid.width, grid.height
    sl = (slice(m, m + Hh), slice(m, m + W))
    refl = r.reflectance[sl]
    mel = r.melanin[sl]
    hb = r.haemoglobin[sl]
    skin = (fields.skin_alpha[sl] > 0.5)
    # the truth needs only the noise-free canonical state: it is worked out on a second
    # thread while the camera takes (and encodes) the photo
    with ThreadPoolExecutor(max_workers=1) as pool:
        truth_job = pool.submit(_truth, fields, p, cam, r, refl, mel, hb, skin, seed)
        noise_rng = make_rng(seed, 10_000 + int(cam.noise_seed))
        sparkle = None
        if cam.glare > 0:   # highlights on the crests of the relief, on skin only
            crest = np.clip(r.shading / fields.limb, 0, None) ** 4
            crest *= np.float32(1.0 / max(float(crest[::3, ::3].mean()), 1e-6))
            sparkle = to_photo_frame(crest * fields.skin_alpha, m, W, Hh, cam)
        lin, srgb8 = expose(r.reflectance, m, W, Hh, cam, noise_rng, sparkle)
        encoded = None
        if cam.jpeg_quality is not None:
            buf = io.BytesIO()
            Image.fromarray(srgb8).save(buf, "JPEG", quality=int(cam.jpeg_quality))
            encoded = buf.getvalue()
            pixels = np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))
        else:
            pixels = srgb8
        truth = truth_job.result()
    return SynthImage(pixels=pixels, truth=truth, reflectance=refl, linear=lin, melanin=mel,
                      haemoglobin=hb, skin_canonical=skin, encoded=encoded)


def _truth(fields, p: SkinParams, cam: Camera, r, refl, mel, hb, skin, seed) -> SynthTruth:
    grid = fields.grid
    W, Hh, mm = grid.width, grid.height, grid.mm_per_px
    H = cam.photo_to_canonical(W, Hh)
    Hinv = np.linalg.inv(H)

    def to_photo(pts):
        return apply_homography(Hinv, pts)

    regions, masks = {}, {"skin": skin}
    for name, poly in fields.regions.items():
        regions[name] = {"polygon_canonical": poly.round(3).tolist(),
                         "polygon": to_photo(poly).round(3).tolist()}
        masks[name] = polygon_mask(poly, (Hh, W)) & skin
    # the skin outline (outer contours; the card, when it lies inside the skin, is a hole:
    # subtract card.corners)
    cs, _ = cv2.findContours(skin.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = [cv2.approxPolyDP(c, 1.0, True)[:, 0, :].astype(np.float64) for c in cs if len(c) >= 3]
    regions["skin"] = {"polygons_canonical": [q.round(2).tolist() for q in polys],
                       "polygons": [to_photo(q).round(2).tolist() for q in polys],
                       "note": "outer outline of the skin mask; the card (if inside) is excluded"}
    # whether each region is fully inside this photo
    for name in fields.regions:
        ph = np.asarray(regions[name]["polygon"])
        regions[name]["fully_visible"] = bool((ph.min(axis=0) >= 0).all() and ph[:, 0].max() <= W - 1
                                              and ph[:, 1].max() <= Hh - 1)
    maps = FrameMaps(refl, mel, hb)
    stats = {k: maps.stats(masks[k], mm) for k in ("skin", "roi", "reference")}
    L = maps.lab[..., 0]
    A = maps.lab[..., 1]
    roi = masks["roi"]
    roi_cm2 = roi.sum() * mm * mm / 100
    spots, spot_disc = _spot_truth(fields, p, L, A, roi, skin, to_photo)
    wr, wr_len_roi = _wrinkle_truth(fields, p, roi, mm, to_photo)
    # pores: count in ROI
    pxy = fields.pore_xy
    inside = ((pxy[:, 0] >= 0) & (pxy[:, 0] < W) & (pxy[:, 1] >= 0) & (pxy[:, 1] < Hh))
    pin = pxy[inside].astype(int)
    in_roi = roi[pin[:, 1], pin[:, 0]]
    in_skin = skin[pin[:, 1], pin[:, 0]]
    skin_cm2 = skin.sum() * mm * mm / 100
    pores = {"density_per_cm2": p.pore_density,
             "count_in_roi": int(in_roi.sum()), "count_in_skin": int(in_skin.sum()),
             "density_in_roi_per_cm2": float(in_roi.sum() / roi_cm2) if roi_cm2 else None,
             "radius_mm_range": list(p.pore_radius_mm),
             "radius_mm_mean": float(fields.pore_r_mm.mean()) if len(fields.pore_r_mm) else None,
             "depth": p.pore_depth,
             "profile": "Gaussian depression, radius = half-depth radius"}
    texture = _texture_truth(L, roi, mm, p)
    erythema = {"dose_od": p.erythema, "mottle": p.erythema_mottle, "edge_mm": edge_mm(fields.grid, p),
                "region": "treated",
                "haemoglobin_excess_roi": stats["roi"].get("haemoglobin_mean", 0.0)
                - stats["reference"].get("haemoglobin_mean", 0.0)}
    pih = {"dose_od": p.pih,
           "patches": [{"centre_canonical": [round(q["centre"][0], 2), round(q["centre"][1], 2)],
                        "centre": to_photo([q["centre"]])[0].round(2).tolist(),
                        "radius_mm": q["radius_mm"]} for q in fields.pih_patches] if p.pih else []}
    marks = {"density_per_cm2": p.bleeding, "kind": "scab" if p.scabs else "blood",
             "count": len(r.marks), "session": p.marks_seed,
             "marks": [{"centre_canonical": mk["centre"],
                        "centre": to_photo([mk["centre"]])[0].round(2).tolist(),
                        "radius_mm": mk["radius_mm"]} for mk in r.marks]}
    roi_s = stats["roi"]
    disc_in_roi = (spot_disc.astype(bool) & roi).sum()
    metrics = {
        "redness.a_mean": roi_s.get("a_mean"), "redness.ei_mean": roi_s.get("ei_mean"),
        "pigment.mi_mean": roi_s.get("mi_mean"), "pigment.ita_mean": roi_s.get("ita_mean"),
        "pigment.L_mean": roi_s.get("L_mean"), "pigment.b_mean": roi_s.get("b_mean"),
        "spots.count": sum(1 for s in spots if s["kind"] == "brown" and s["in_roi"]),
        "spots.area_pct": float(100 * disc_in_roi / max(roi.sum(), 1)),
        "texture.roughness": texture["band_rq"],
        "texture.pore_density": pores["density_in_roi_per_cm2"],
        "texture.wrinkle_density": float(wr_len_roi / roi_cm2) if roi_cm2 else None,
        "chromophores.melanin_mean": roi_s.get("melanin_mean"),
        "chromophores.haemoglobin_mean": roi_s.get("haemoglobin_mean"),
    }
    assert set(metrics) == set(METRIC_UNITS)
    card = None
    if fields.card is not None:
        card = fields.card.to_dict(to_photo)
        c = np.asarray(card["corners"])
        card["fully_visible"] = bool((c.min(axis=0) >= 0).all() and c[:, 0].max() <= W - 1
                                     and c[:, 1].max() <= Hh - 1)
        card["mm_per_px_photo"] = float(mm * math.sqrt(abs(np.linalg.det(H[:2, :2]))))
    pp = p.to_dict()
    pp["melanin_level"] = p.melanin_level
    camd = cam.to_dict(W, Hh)
    if cam.glare > 0:
        gl = glare_field(cam, W, Hh) > 0.02
        camd["glare_region"] = {"pixels": int(gl.sum()),
                                "bbox": _bbox(gl),
                                "note": "photo pixels where the smooth glare envelope exceeds 0.02 "
                                        "(linear); colour there is not the reflectance truth"}
    return SynthTruth(seed=int(seed), width=W, height=Hh, mm_per_px=mm, homography=H.tolist(),
                      regions=regions, stats=stats, metrics=metrics, spots=spots, wrinkles=wr,
                      pores=pores, texture=texture, erythema=erythema, marks=marks,
                      camera=camd, card=card, params=pp,
                      pih=pih, extra={"skin_area_cm2": float(skin_cm2)})



def _spot_truth(fields, p: SkinParams, L, A, roi, skin, to_photo):
    """Each rendered spot (centre, size, contrast in OD, and its measured L*/a* contrast
    between a core of half its radius and a ring at 2-3 radii) and a disc mask of the brown
    ones (for the covered area)."""
    Hh, W = skin.shape
    spots = []
    spot_disc = np.zeros((Hh, W), np.uint8)
    for s in fields.spots:
        cx, cy = s["centre"]
        R = s["radius_px"]
        ring_in, ring_out = 2.0 * R, 3.0 * R
        x0, x1 = int(max(cx - ring_out - 1, 0)), int(min(cx + ring_out + 2, W))
        y0, y1 = int(max(cy - ring_out - 1, 0)), int(min(cy + ring_out + 2, Hh))
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d = np.hypot(xx - cx, yy - cy)
        core = (d <= 0.5 * R) & skin[y0:y1, x0:x1]
        ring = (d >= ring_in) & (d <= ring_out) & skin[y0:y1, x0:x1]
        entry = {"kind": s["kind"], "centre_canonical": [round(cx, 3), round(cy, 3)],
                 "centre": to_photo([[cx, cy]])[0].round(3).tolist(),
                 "radius_mm": s["radius_mm"], "radius_px": R,
                 "contrast_od": s["contrast_od"] * p.spot_contrast,
                 "in_roi": bool(roi[int(round(cy)), int(round(cx))])}
        if core.any() and ring.any():
            entry["delta_L"] = float(L[y0:y1, x0:x1][core].mean() - np.median(L[y0:y1, x0:x1][ring]))
            a = A[y0:y1, x0:x1]
            entry["delta_a"] = float(a[core].mean() - np.median(a[ring]))
        spots.append(entry)
        if s["kind"] == "brown":
            cv2.circle(spot_disc, (int(round(cx * 16)), int(round(cy * 16))), int(round(R * 16)), 1, -1,
                       cv2.LINE_8, 4)
    return spots, spot_disc


def _wrinkle_truth(fields, p: SkinParams, roi, mm: float, to_photo):
    """Each rendered wrinkle and their total length inside the ROI (mm), each polyline
    densified 8x and its segments counted where their midpoints lie in the ROI."""
    Hh, W = roi.shape
    wr, wr_len_roi = [], 0.0
    for w in fields.wrinkles:
        pts = np.asarray(w["points"])
        dense = np.concatenate([np.linspace(pts[i], pts[i + 1], 9)[:-1] for i in range(len(pts) - 1)]
                               + [pts[-1:]])
        seg = np.diff(dense, axis=0)
        mid = 0.5 * (dense[1:] + dense[:-1])
        ix = np.clip(np.round(mid).astype(int), 0, [W - 1, Hh - 1])
        inside = roi[ix[:, 1], ix[:, 0]]
        wr_len_roi += float(np.hypot(seg[inside, 0], seg[inside, 1]).sum() * mm)
        wr.append({"points_canonical": w["points"], "points": to_photo(pts).round(2).tolist(),
                   "length_mm": w["length_mm"], "width_mm": w["width_mm"], "angle_deg": w["angle_deg"],
                   "depth": w["depth"] * p.wrinkle_depth})
    return wr, wr_len_roi


def _texture_truth(L, roi, mm: float, p: SkinParams) -> dict:
    """The texture truth over the ROI's bounding box (padded for the filters): the RMS of
    the L* high-pass at 0.5 mm and of the 0.2-2 mm band photokit measures."""
    Hh, W = roi.shape
    ys, xs = np.nonzero(roi[::4, ::4])
    pad = int(4 * 0.5 / mm) + 1
    y0, y1 = max(ys.min() * 4 - pad, 0), min(ys.max() * 4 + pad + 4, Hh)
    x0, x1 = max(xs.min() * 4 - pad, 0), min(xs.max() * 4 + pad + 4, W)
    Lr = np.ascontiguousarray(L[y0:y1, x0:x1])
    roi_r = roi[y0:y1, x0:x1]

    def rms_in_roi(band):
        return float(np.sqrt(np.mean(band[roi_r].astype(np.float64) ** 2)))

    def g(img, s_mm):
        return cv2.GaussianBlur(img, (0, 0), s_mm / mm, borderType=cv2.BORDER_REFLECT)

    texture = {"roughness": p.roughness, "relief_cell_mm": p.relief_cell_mm,
               "wrinkle_depth": p.wrinkle_depth, "pore_depth": p.pore_depth,
               "spot_contrast": p.spot_contrast,
               "luminance_highpass_rms": rms_in_roi(Lr - g(Lr, 0.5)),
               "luminance_highpass_definition": "RMS over the ROI of L* - GaussianBlur(L*, sigma=0.5 mm), "
                                                "canonical rendering",
               "band_rq": rms_in_roi(g(Lr, 0.037) - g(Lr, 0.37)),
               "band_rq_definition": "RMS over the ROI of G(0.037 mm)*L* - G(0.37 mm)*L* (the 0.2-2 mm "
                                     "band of photokit.metrics.texture), canonical rendering at native scale"}
    return texture

def _bbox(m: np.ndarray):
    ys, xs = np.nonzero(m)
    return None if len(xs) == 0 else [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]


@dataclass(eq=False)
class SynthPair:
    """Two photos of the same skin: `before`, `after`, and what changed.

    Attributes
    ----------
    homography : ndarray
        3x3 map from AFTER pixels to BEFORE pixels (SPEC convention).
    delta : dict
        True ``after - before`` of every truth metric over the ROI.
    gain_ratio : ndarray
        Per-channel ratio of the AFTER to the BEFORE camera gains (at the image centre).
    """

    before: SynthImage
    after: SynthImage
    homography: np.ndarray
    delta: dict
    gain_ratio: np.ndarray

    def to_dict(self) -> dict:
        return {"homography": self.homography.tolist(), "delta": self.delta,
                "gain_ratio": self.gain_ratio.tolist(),
                "before": self.before.truth.to_dict(), "after": self.after.truth.to_dict()}


def erythema_for_a(params: SkinParams, seed: int, target_a: float) -> float:
    """Erythema dose (haemoglobin OD) at which the ROI's true mean a* equals `target_a`.

    The other state parameters of `params` are kept. Within the ROI the reflectance is
    ``R0 * exp(-dose * E * v_hb)`` with ``R0`` the skin without erythema and ``E`` the
    mottled erythema pattern, so the dose is found by bisection on the ROI pixels alone
    (a* rises monotonically with the dose over the searched range, 0-2.5 OD).
    """
    from ..colour.convert import linear_to_lab
    from .skin import ABSORPTION_HAEMOGLOBIN

    p0 = params.replace(erythema=0.0)
    f = build_fields(p0, seed)
    r = render_fields(f, p0)
    g = f.grid
    sl = (slice(g.margin, g.margin + g.height), slice(g.margin, g.margin + g.width))
    roi = polygon_mask(f.regions["roi"], (g.height, g.width)) & (f.skin_alpha[sl] > 0.5)
    R0 = r.reflectance[sl][roi]
    E = (f.treated[sl] * (1 + np.float32(p0.erythema_mottle) * f.ery_noise[sl]))[roi]
    k = (E[:, None] * ABSORPTION_HAEMOGLOBIN[None, :]).astype(np.float32)

    def a_mean(dose):
        lin = R0 * np.exp(-np.float32(dose) * k)
        return float(linear_to_lab(lin[:, None, :])[:, 0, 1].astype(np.float64).mean())

    lo, hi = 0.0, 2.5
    a_lo, a_hi = a_mean(lo), a_mean(hi)
    if not a_lo <= target_a <= a_hi:
        raise ValueError(f"a* {target_a:.2f} is outside what erythema can give this skin "
                         f"({a_lo:.2f} .. {a_hi:.2f})")
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if a_mean(mid) < target_a:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def make_pair(seed: int = 0, params: SkinParams | None = None, *, camera_before: Camera | None = None,
              camera_after: Camera | None = None, pose: bool = True, delta_a: float | None = None,
              **changes) -> SynthPair:
    """Before/after photos of one skin with a known change.

    ``changes`` name `SkinParams` fields (applied to AFTER only: ``erythema=0.3``,
    ``roughness=0.8``...) and `Camera` fields (AFTER's camera: ``exposure=1.2``,
    ``cct_k=5000``, ``rotation_deg=2``...). BEFORE uses ``camera_before`` (default
    `Camera()`, canonical pose). AFTER's camera defaults to the BEFORE camera moved by a
    random mild pose (`Camera.random` with ``light=False``; ``pose=False`` keeps the
    pose), so only the light changes you ask for happen.

    ``delta_a`` asks for a true change of the ROI's mean a* instead of an erythema dose:
    AFTER's erythema is solved (`erythema_for_a`) so that ``delta["redness.a_mean"]``
    equals it (to ~1e-3).

    Example: ``make_pair(3, erythema=0.3, exposure=1.15, cct_k=5200)`` gives a pair whose
    ``delta["redness.a_mean"]`` is the true change and whose ``homography`` is exact;
    ``make_pair(3, delta_a=2.0)`` a pair whose true a* change is 2.0.
    """
    p = params or SkinParams()
    cb = camera_before or Camera()
    skin_kw, cam_kw = split_changes(changes)
    if camera_after is None:
        ca = cb.replace(noise_seed=cb.noise_seed + 1)
        if pose and not ({"rotation_deg", "scale", "shift_px", "perspective", "homography"} & cam_kw.keys()):
            rnd = Camera.random(make_rng(seed, 20_000), light=False)
            ca = ca.replace(rotation_deg=rnd.rotation_deg, scale=rnd.scale, shift_px=rnd.shift_px,
                            perspective=rnd.perspective)
    else:
        ca = camera_after
    if cam_kw:
        ca = ca.replace(**cam_kw)
    before = render_skin(p, seed, camera=cb)
    pa = p.replace(**skin_kw) if skin_kw else p
    if delta_a is not None:
        if "erythema" in skin_kw:
            raise TypeError("give either erythema or delta_a, not both")
        pa = pa.replace(erythema=erythema_for_a(pa, seed, before.truth.metrics["redness.a_mean"] + delta_a))
    after = render_skin(pa, seed, camera=ca)
    Hab = np.linalg.inv(before.truth.H) @ after.truth.H
    Hab /= Hab[2, 2]
    delta = {k: (after.truth.metrics[k] - before.truth.metrics[k])
             for k in before.truth.metrics
             if before.truth.metrics[k] is not None and after.truth.metrics[k] is not None}
    ratio = ca.channel_gains() / cb.channel_gains()
    return SynthPair(before=before, after=after, homography=Hab, delta=delta, gain_ratio=ratio)
