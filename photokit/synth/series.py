"""A synthetic microneedling course: baseline, sessions, healing visits, slow improvement.

Model (times in days, from the photo's and the session's clock times):

- erythema (haemoglobin OD over the treated region) after sessions at ``t_k``:
  ``E(t) = dose * sum_k [t >= t_k] exp(-(t - t_k) / tau_days)``;
- pinpoint bleeding within 12 h of a session, scabs from 12 h to 36 h;
- improvement fraction ``f(t) = sum_k [t >= t_k] (1 - exp(-(t - t_k) / remodel_days)) / n``
  (collagen remodelling; 1 when all ``n`` sessions have fully acted), and
  ``roughness = 1 - texture_improvement * f``, ``pore_depth = 1 - pore_improvement * f``,
  ``spot_contrast = 1 - spot_improvement * f``, ``wrinkle_depth = 1 - wrinkle_improvement * f``;
- optional post-inflammatory hyperpigmentation (a complication): melanin OD
  ``pih * (1 - exp(-(t - t_s) / pih_onset_days))`` in a few blotches of the treated
  region from session ``pih_after_session`` on;
- every photo has a new mild pose and light (`Camera.random`), the baseline keeps the
  canonical pose, so each photo's homography maps it onto the baseline.

A ``flat`` series has no treatment effect at all (dose 0, no marks, no improvement): only
light and pose change, the null case for significance tests.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np

from ..io.atomic import write_image, write_text
from .camera import Camera
from .render import render_skin
from .skin import SkinParams, make_rng
from .truth import jsonable

MANIFEST_COLUMNS = ("photo", "date", "kind", "subject", "area", "roi", "note")


@dataclass
class SeriesPlan:
    """The treatment course and the capture schedule (see module notes)."""

    sessions: int = 4
    interval_days: float = 28.0
    visit_days: tuple[float, ...] = (0, 2, 5)
    final_visit_days: float = 30.0
    tau_days: float = 2.0
    dose: float = 0.35
    bleeding: float = 5.0
    texture_improvement: float = 0.25
    pore_improvement: float = 0.25
    spot_improvement: float = 0.30
    wrinkle_improvement: float = 0.20
    remodel_days: float = 30.0
    flat: bool = False
    pih: float = 0.0
    pih_after_session: int = 1
    pih_onset_days: float = 10.0
    start: date = date(2026, 1, 5)

    def session_times(self) -> list[datetime]:
        t0 = datetime.combine(self.start, time(10, 0))
        return [t0 + timedelta(days=k * self.interval_days) for k in range(self.sessions)]

    def captures(self) -> list[dict]:
        """Photos in time order: label, datetime, kind, session index, days since it."""
        sess = self.session_times()
        out = [{"label": "baseline", "time": sess[0] - timedelta(minutes=30), "kind": "baseline",
                "session": None}]
        for k, ts in enumerate(sess):
            nxt = sess[k + 1] if k + 1 < len(sess) else None
            for v in self.visit_days:
                v = float(v)
                if v == 0:      # right after the session
                    t = ts + timedelta(minutes=40)
                else:           # a morning visit, a little earlier or later each time
                    t = ts + timedelta(days=v, minutes=-30 + 11 * (k % 4))
                if nxt is not None and t >= nxt - timedelta(hours=1):
                    continue
                out.append({"label": f"s{k + 1}_day{v:g}", "time": t,
                            "kind": "treatment" if v == 0 else "visit", "session": k})
        last = sess[-1] + timedelta(days=self.final_visit_days, minutes=-20)
        out.append({"label": "followup", "time": last, "kind": "visit", "session": len(sess) - 1})
        return out

    def state(self, t: datetime) -> dict:
        """Skin state parameters at time `t` (the truth of the model)."""
        sess = self.session_times()
        since = [(t - s).total_seconds() / 86400 for s in sess if t >= s]
        dose = 0.0 if self.flat else self.dose * sum(np.exp(-d / self.tau_days) for d in since)
        f = sum(1 - np.exp(-d / self.remodel_days) for d in since) / max(self.sessions, 1)
        if self.flat:
            f = 0.0
        last = min(since) if since else None
        marks, scabs = 0.0, False
        if not self.flat and last is not None and last < 1.5:
            marks, scabs = self.bleeding, last >= 0.5
        pih = 0.0
        if self.pih and not self.flat and len(sess) >= self.pih_after_session >= 1:
            ts = sess[self.pih_after_session - 1]
            if t >= ts:
                pih = self.pih * (1 - np.exp(-((t - ts).total_seconds() / 86400) / self.pih_onset_days))
        return {"erythema": float(dose), "improvement_fraction": float(f), "pih": float(pih),
                "roughness": float(1 - self.texture_improvement * f),
                "pore_depth": float(1 - self.pore_improvement * f),
                "spot_contrast": float(1 - self.spot_improvement * f),
                "wrinkle_depth": float(1 - self.wrinkle_improvement * f),
                "bleeding": float(marks), "scabs": bool(scabs),
                "marks_seed": int(len(since) - 1) if since else 0,
                "days_since_treatment": None if last is None else float(last)}

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["start"] = self.start.isoformat()
        d["visit_days"] = list(self.visit_days)
        d["session_dates"] = [s.isoformat() for s in self.session_times()]
        return d


@dataclass
class SeriesResult:
    """What `make_series` made: one entry per photo, and the series truth."""

    outdir: Path | None
    photos: list
    truth: dict
    images: list = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return self.truth


def make_series(outdir=None, seed: int = 0, *, plan: SeriesPlan | None = None,
                params: SkinParams | None = None, camera_strength: float = 1.0,
                jpeg_quality: int = 90, subject: str = "synth-001", area: str = "cheek",
                contact_sheet: bool = True, keep_images: bool = False, **plan_changes) -> SeriesResult:
    """Render a treatment course and (with `outdir`) write it as a photokit series.

    Parameters
    ----------
    outdir : path, optional
        Folder to write: photos (JPEG, EXIF DateTimeOriginal = capture time), one truth
        JSON per photo, ``manifest.csv`` (SPEC: ``photo,date,kind,subject,area,roi,note``),
        ``roi.json`` / ``reference_roi.json`` (polygons in baseline pixels),
        ``series.json`` (the series truth) and ``contact_sheet.png``.
    seed : int
        The skin (and the random captures).
    plan : SeriesPlan, optional
        Course and schedule; ``plan_changes`` override its fields (``sessions=3``,
        ``tau_days=3``, ``flat=True``, ...).
    params : SkinParams, optional
        The skin (default: `SkinParams` with the colour card in frame).
    keep_images : bool
        Keep the `SynthImage` objects in ``result.images`` (memory: ~60 MB each).

    Returns
    -------
    SeriesResult
        ``photos`` (per-photo dicts: photo, date, kind, state, truth metrics) and
        ``truth`` (the series truth, as written to ``series.json``).
    """
    plan = _plan(plan, plan_changes)
    p = params or SkinParams(card=True)
    out = Path(outdir) if outdir is not None else None
    photos, images, thumbs = [], [], []
    base_metrics = None
    for i, cap in enumerate(plan.captures()):
        im, cap, st = _render(plan, p, seed, i, cap, camera_strength, jpeg_quality)
        name = f"{i:02d}_{cap['label']}.jpg"
        if out is not None:
            im.save(out / name, date=cap["time"])
        else:
            im.truth.image, im.truth.date = name, cap["time"].isoformat()
        m = im.truth.metrics
        if base_metrics is None:
            base_metrics = dict(m)
        ref = im.truth.stats["reference"]
        photos.append({
            "photo": name, "date": cap["time"].isoformat(timespec="minutes"), "kind": cap["kind"],
            "session": None if cap["session"] is None else cap["session"] + 1,
            "days_since_treatment": st["days_since_treatment"], "state": st,
            "homography_to_baseline": im.truth.homography,
            "metrics": m,
            "texture_highpass_rms": im.truth.texture["luminance_highpass_rms"],
            "brown_spot_delta_L_mean": _mean([sp.get("delta_L") for sp in im.truth.spots
                                              if sp["kind"] == "brown"]),
            "reference": {"a_mean": ref.get("a_mean"), "ei_mean": ref.get("ei_mean")},
            "delta_a_roi_minus_reference": m["redness.a_mean"] - ref["a_mean"],
            "delta_from_baseline": {k: (v - base_metrics[k]) for k, v in m.items()
                                    if v is not None and base_metrics.get(k) is not None},
        })
        if contact_sheet:
            thumbs.append((_thumb(im.pixels), f"{name[:-4]}  {cap['time']:%Y-%m-%d}  {cap['kind']}"))
        if keep_images:
            images.append(im)
    first, last = photos[0], photos[-1]
    truth = {
        "generator": "photokit.synth 1", "seed": seed, "subject": subject, "area": area,
        "plan": plan.to_dict(), "skin": p.to_dict(),
        "model": __doc__.split("Model (times in days")[1].split("A ``flat``")[0].strip(),
        "tau_days": None if plan.flat else plan.tau_days,
        "tau_note": "time constant of the erythema haemoglobin OD; redness.a_mean excess follows it "
                    "closely (a* is nearly linear in the OD at these doses)",
        "improvement_final": {
            "texture.roughness_param": last["state"]["roughness"] - 1,
            "pore_depth_param": last["state"]["pore_depth"] - 1,
            "spot_contrast_param": last["state"]["spot_contrast"] - 1,
            "fraction": last["state"]["improvement_fraction"],
        },
        "trend": {k: _trend(first["metrics"][k], last["metrics"][k])
                  for k in first["metrics"] if first["metrics"][k] is not None},
        "trend_texture": {
            "luminance_highpass_rms": _trend(first["texture_highpass_rms"], last["texture_highpass_rms"]),
            "brown_spot_delta_L_mean": _trend(first["brown_spot_delta_L_mean"],
                                              last["brown_spot_delta_L_mean"]),
            "note": "baseline vs follow-up on the canonical rendering (see SynthTruth.texture)",
        },
        "photos": photos,
    }
    if out is not None:
        _write_series_files(out, photos, truth, subject, area, im)
        if contact_sheet:
            write_image(out / "contact_sheet.png", contact_sheet_image([t[0] for t in thumbs],
                                                                        [t[1] for t in thumbs]))
    return SeriesResult(outdir=out, photos=photos, truth=truth, images=images)


def _plan(plan: SeriesPlan | None, changes: dict) -> SeriesPlan:
    plan = plan or SeriesPlan()
    if changes:
        plan = SeriesPlan(**{**plan.__dict__, **changes})
    if isinstance(plan.start, str):
        plan.start = date.fromisoformat(plan.start)
    plan.visit_days = tuple(plan.visit_days)
    if plan.sessions < 1:
        raise ValueError("a series needs at least one session")
    if plan.tau_days <= 0 or plan.remodel_days <= 0:
        raise ValueError("tau_days and remodel_days must be positive")
    return plan


def _render(plan: SeriesPlan, p: SkinParams, seed: int, i: int, cap: dict, camera_strength: float,
            jpeg_quality: int):
    st = plan.state(cap["time"])
    cam = Camera.random(make_rng(seed, 30_000 + i), camera_strength, pose=i > 0, jpeg_quality=jpeg_quality,
                        noise_seed=i)
    sp = p.replace(erythema=st["erythema"], roughness=st["roughness"], pore_depth=st["pore_depth"],
                   spot_contrast=st["spot_contrast"], wrinkle_depth=st["wrinkle_depth"],
                   bleeding=st["bleeding"], scabs=st["scabs"], marks_seed=st["marks_seed"], pih=st["pih"])
    im = render_skin(sp, seed, camera=cam)
    im.truth.kind = cap["kind"]
    im.truth.date = cap["time"].isoformat()
    im.truth.extra.update({"series_state": st, "session": cap["session"]})
    return im, cap, st


def render_capture(seed: int, index: int, *, plan: SeriesPlan | None = None, params: SkinParams | None = None,
                   camera_strength: float = 1.0, jpeg_quality: int = 90, **plan_changes):
    """Photo number `index` of the series `make_series` would make, alone.

    Returns ``(SynthImage, capture)`` with ``capture`` = ``{"label", "time", "kind",
    "session"}``; the image is identical to the one `make_series` writes (save it with
    ``image.save(path, date=capture["time"])``).
    """
    plan = _plan(plan, plan_changes)
    caps = plan.captures()
    if not 0 <= index < len(caps):
        raise IndexError(f"the series has {len(caps)} photos")
    im, cap, _ = _render(plan, params or SkinParams(card=True), seed, index, caps[index], camera_strength,
                         jpeg_quality)
    return im, cap


def _mean(values) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def _trend(first, last) -> dict:
    if first is None or last is None:
        return {"baseline": first, "final": last, "percent_change": None}
    pct = 100 * (last - first) / abs(first) if first else None
    return {"baseline": first, "final": last, "percent_change": pct}


def _write_series_files(out: Path, photos, truth, subject, area, last_image) -> None:
    regions = last_image.truth.regions
    write_text(out / "roi.json", json.dumps({"polygons": [np.round(regions["roi"]["polygon_canonical"], 2)
                                                          .tolist()], "frame": "baseline pixels"}))
    write_text(out / "reference_roi.json", json.dumps(
        {"polygons": [np.round(regions["reference"]["polygon_canonical"], 2).tolist()],
         "frame": "baseline pixels"}))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_COLUMNS)
    for ph in photos:
        st = ph["state"]
        note = (f"erythema_od={st['erythema']:.3f}; roughness={st['roughness']:.3f}; "
                f"marks={'scabs' if st['scabs'] else ('blood' if st['bleeding'] else 'none')}")
        w.writerow([ph["photo"], ph["date"], ph["kind"], subject, area, "roi.json", note])
    write_text(out / "manifest.csv", buf.getvalue())
    write_text(out / "series.json", json.dumps(jsonable(truth), indent=1, allow_nan=False))


def _thumb(pixels: np.ndarray, width: int = 320) -> np.ndarray:
    import cv2

    h, w = pixels.shape[:2]
    return cv2.resize(pixels, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def contact_sheet_image(thumbs: list, labels: list, cols: int = 4) -> np.ndarray:
    """Tile thumbnails (uint8 RGB, same size) with a caption under each."""
    import cv2

    th, tw = thumbs[0].shape[:2]
    cap = 26
    rows = -(-len(thumbs) // cols)
    sheet = np.full((rows * (th + cap) + 4, cols * (tw + 4) + 4, 3), 245, np.uint8)
    for k, (img, lab) in enumerate(zip(thumbs, labels, strict=True)):
        r, c = divmod(k, cols)
        y, x = 4 + r * (th + cap), 4 + c * (tw + 4)
        sheet[y:y + th, x:x + tw] = img
        cv2.putText(sheet, lab, (x + 2, y + th + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (30, 30, 30), 1,
                    cv2.LINE_AA)
    return sheet
