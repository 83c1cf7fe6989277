"""The synthetic ground truth is true: checked with independent implementations.

Colour truth is re-measured with scikit-image (``rgb2lab``) and plain numpy on the
canonical rendering and on the camera photo after undoing the known gains; spot, line and
pore positions on the pixels; the homography by warping one photo onto the other.
"""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from skimage.color import rgb2lab

from photokit.synth import (
    ABSORPTION_HAEMOGLOBIN,
    ABSORPTION_MELANIN,
    Camera,
    SkinParams,
    SynthTruth,
    make_pair,
    make_series,
    melanin_for_ita,
    render_skin,
)
from photokit.synth import skin as skin_mod

SMALL = SkinParams(width=480, height=360)


def _srgb_of_linear(lin):
    """IEC 61966-2-1 encoding in float64 (independent of photokit.colour.convert)."""
    lin = np.clip(lin, 0, 1)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def _lab_skimage(linear):
    return rgb2lab(_srgb_of_linear(np.asarray(linear, dtype=np.float64)), illuminant="D65")


def _erode(mask, px=6):
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)).astype(bool)


# ----------------------------------------------------------------------------- colour truth

def test_colour_truth_matches_skimage_on_canonical_rendering():
    im = render_skin(SMALL, 3, camera=Camera.ideal(), erythema=0.25, card=True)
    lab = _lab_skimage(im.reflectance)
    lin = im.reflectance.astype(np.float64)
    for region in ("roi", "reference", "skin"):
        m = im.mask(region, "canonical")
        st = im.truth.stats[region]
        assert st["pixels"] == m.sum() > 1000
        assert st["a_mean"] == pytest.approx(lab[..., 1][m].mean(), abs=0.01)
        assert st["L_mean"] == pytest.approx(lab[..., 0][m].mean(), abs=0.01)
        assert st["b_mean"] == pytest.approx(lab[..., 2][m].mean(), abs=0.01)
        ei = 100 * np.log10(lin[..., 0][m] / lin[..., 1][m])
        mi = 100 * np.log10(1 / lin[..., 0][m])
        assert st["ei_mean"] == pytest.approx(ei.mean(), abs=0.01)
        assert st["mi_mean"] == pytest.approx(mi.mean(), abs=0.01)
        ita = np.degrees(np.arctan2(lab[..., 0][m] - 50, lab[..., 2][m]))
        assert st["ita_mean"] == pytest.approx(ita.mean(), abs=0.02)
        assert st["melanin_mean"] == pytest.approx(im.melanin[m].mean(), rel=1e-4)
    assert im.truth.metrics["redness.a_mean"] == im.truth.stats["roi"]["a_mean"]
    # the chromophore model holds exactly where there is no shading: OD = base + c.v
    # (checked through the ratio of the OD differences between two pixels of the maps)
    od = -np.log(lin)
    m = im.mask("roi", "canonical")
    ys, xs = np.nonzero(m)
    i, j = 0, len(ys) // 2
    d_od = od[ys[i], xs[i]] - od[ys[j], xs[j]]
    d_mel = im.melanin[ys[i], xs[i]] - im.melanin[ys[j], xs[j]]
    d_hb = im.haemoglobin[ys[i], xs[i]] - im.haemoglobin[ys[j], xs[j]]
    chrom = d_mel * ABSORPTION_MELANIN + d_hb * ABSORPTION_HAEMOGLOBIN
    shade = d_od - chrom                          # grey: the same in all three channels
    assert np.ptp(shade) < 1e-3


def test_ideal_photo_is_the_srgb_encoding_of_the_reflectance():
    im = render_skin(SMALL, 4, camera=Camera.ideal())
    expected = np.round(_srgb_of_linear(im.reflectance.astype(np.float64)) * 255)
    assert np.abs(im.pixels.astype(int) - expected).max() <= 1
    m = im.mask("roi", "photo")
    lab = rgb2lab(im.pixels / 255.0)
    assert lab[..., 1][m].mean() == pytest.approx(im.truth.metrics["redness.a_mean"], abs=0.1)


def test_truth_holds_on_the_camera_photo_after_undoing_the_known_gains():
    cam = Camera(rotation_deg=2.5, scale=1.03, shift_px=(12, -9), perspective=(1e-5, -1e-5),
                 exposure=1.25, cct_k=4800, wb_gains=(1.04, 1.0, 0.97), gradient=0.1,
                 gradient_angle_deg=30, vignetting=0.05, jpeg_quality=92)
    im = render_skin(SMALL, 5, camera=cam, erythema=0.3)
    m = _erode(im.mask("roi", "photo"))
    lin = im.undo_camera().astype(np.float64)
    lab = _lab_skimage(lin)
    t = im.truth.stats["roi"]
    assert lab[..., 1][m].mean() == pytest.approx(t["a_mean"], abs=0.6)
    ei = 100 * np.log10(np.maximum(lin[..., 0], 1e-4) / np.maximum(lin[..., 1], 1e-4))
    assert ei[m].mean() == pytest.approx(t["ei_mean"], abs=1.0)
    # the known gains matter: without undoing them the photo's a* is clearly off
    raw = rgb2lab(im.pixels / 255.0)
    assert abs(raw[..., 1][m].mean() - t["a_mean"]) > 2.0
    g = np.asarray(im.truth.camera["illumination"]["channel_gains"])
    assert g[0] > g[1] > g[2]                     # warm light: red gain up, blue down


def test_colour_matrix_is_undone_and_glare_is_flagged():
    M = [[0.88, 0.10, 0.02], [0.06, 0.90, 0.04], [0.01, 0.12, 0.87]]
    im = render_skin(SMALL, 5, camera=Camera(colour_matrix=M, cct_k=5600, jpeg_quality=95), erythema=0.2)
    m = _erode(im.mask("roi", "photo"))
    assert _lab_skimage(im.undo_camera())[..., 1][m].mean() == pytest.approx(
        im.truth.stats["roi"]["a_mean"], abs=0.5)
    g = render_skin(SMALL, 5, camera=Camera(glare=0.4, glare_centre=(0.42, 0.56), glare_radius=0.1,
                                            jpeg_quality=95))
    box = g.truth.camera["glare_region"]["bbox"]
    cx, cy = np.mean(box[0::2]), np.mean(box[1::2])
    assert abs(cx - 0.42 * 479) < 3 and abs(cy - 0.56 * 359) < 3
    L = _lab_skimage(g.undo_camera())[..., 0]
    assert L[m].mean() > g.truth.stats["roi"]["L_mean"] + 3  # glare is not reflectance


def test_make_pair_delta_is_the_true_change():
    pair = make_pair(6, SMALL, erythema=0.3, exposure=1.2, cct_k=5200)
    d = pair.delta["redness.a_mean"]
    b, a = pair.before.truth, pair.after.truth
    assert d == pytest.approx(a.metrics["redness.a_mean"] - b.metrics["redness.a_mean"])
    assert d > 3
    # the reference skin is untreated: its a* does not move
    assert abs(a.stats["reference"]["a_mean"] - b.stats["reference"]["a_mean"]) < 0.05
    assert np.allclose(pair.gain_ratio, Camera(exposure=1.2, cct_k=5200).channel_gains())
    # measured independently on both photos after undoing each camera: the same change
    def a_star(im):
        return _lab_skimage(im.undo_camera())[..., 1][_erode(im.mask("roi", "photo"))].mean()
    assert a_star(pair.after) - a_star(pair.before) == pytest.approx(d, abs=0.6)


def test_make_pair_with_a_chosen_true_change_of_a_star():
    pair = make_pair(6, SMALL, delta_a=1.5, pose=False)
    assert pair.delta["redness.a_mean"] == pytest.approx(1.5, abs=0.005)
    assert pair.after.truth.params["erythema"] > 0
    # the same dose rendered directly gives the same truth
    again = render_skin(SMALL, 6, camera=Camera.ideal(), erythema=pair.after.truth.params["erythema"])
    assert again.truth.metrics["redness.a_mean"] == pytest.approx(pair.after.truth.metrics["redness.a_mean"])
    with pytest.raises(ValueError):
        make_pair(6, SMALL, delta_a=-5.0)


# ----------------------------------------------------------------------------- geometry

def test_homography_maps_after_onto_before():
    pair = make_pair(7, SMALL)
    H = pair.homography
    assert not np.allclose(H, np.eye(3), atol=1e-3)          # there is a pose change
    def detail(px):   # the fine texture (pores, relief): sensitive to pixel-level errors
        g = cv2.cvtColor(px, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return g - cv2.GaussianBlur(g, (0, 0), 3)

    before, after = detail(pair.before.pixels), detail(pair.after.pixels)
    h, w = before.shape

    def ncc(Hm):
        warped = cv2.warpPerspective(after, Hm, (w, h), flags=cv2.INTER_LINEAR)
        valid = cv2.warpPerspective(np.ones_like(after), Hm, (w, h)) > 0.99
        valid = _erode(valid, 4)
        x, y = before[valid], warped[valid]
        x, y = x - x.mean(), y - y.mean()
        return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))

    good = ncc(H)
    shifted = np.array([[1, 0, 2.0], [0, 1, 0], [0, 0, 1]]) @ H
    assert good > 0.8
    assert ncc(shifted) < good - 0.3                         # 2 px off is clearly worse
    # truth points follow the same map
    for s in pair.after.truth.spots:
        pb = pair.before.truth.to_photo([s["centre_canonical"]])[0]
        q = H @ np.r_[s["centre"], 1.0]
        assert np.allclose(q[:2] / q[2], pb, atol=0.01)


def test_brown_spots_are_where_the_truth_says():
    cam = Camera(rotation_deg=-3, shift_px=(8, 5), jpeg_quality=95)
    im = render_skin(SMALL, 8, camera=cam, brown_spots=5, brown_spot_radius_mm=(1.0, 3.0), red_spots=0)
    spots = [s for s in im.truth.spots if s["kind"] == "brown"]
    assert len(spots) == 5
    L = rgb2lab(im.pixels / 255.0)[..., 0]
    yy, xx = np.mgrid[0:L.shape[0], 0:L.shape[1]]
    for s in spots:
        assert 1.0 <= s["radius_mm"] <= 3.0
        cx, cy = s["centre"]
        R = s["radius_px"]
        d = np.hypot(xx - cx, yy - cy)
        core, ring = L[d < 0.5 * R], L[(d > 2 * R) & (d < 3 * R)]
        assert core.mean() < np.median(ring) - 3             # darker than its surround
        # darkness-weighted centroid lies at the listed centre
        near = d < 1.3 * R
        wgt = np.clip(np.median(ring) - L[near], 0, None)
        c = np.array([(xx[near] * wgt).sum(), (yy[near] * wgt).sum()]) / wgt.sum()
        assert np.hypot(c[0] - cx, c[1] - cy) < 0.2 * R + 1
        assert s["delta_L"] < -3
        # and in the canonical melanin map, the spot adds its contrast at the centre
        ccx, ccy = s["centre_canonical"]
        dc = np.hypot(xx - ccx, yy - ccy)
        core_m = im.melanin[dc < 0.5 * R].mean()
        ring_m = np.median(im.melanin[(dc > 2 * R) & (dc < 3 * R)])
        assert core_m - ring_m == pytest.approx(s["contrast_od"], rel=0.25)


def test_red_spots_raise_haemoglobin_and_a_star():
    im = render_skin(SMALL, 9, camera=Camera.ideal(), brown_spots=0, red_spots=4,
                     red_spot_radius_mm=(0.6, 1.0))
    reds = [s for s in im.truth.spots if s["kind"] == "red"]
    assert len(reds) == 4
    for s in reds:
        assert s["delta_a"] > 2


def test_wrinkles_and_pores_are_darker_than_their_surroundings():
    p = SMALL.replace(wrinkles=6, wrinkle_width_mm=(0.3, 0.4), brown_spots=0, red_spots=0)
    im = render_skin(p, 10, camera=Camera.ideal())
    L = rgb2lab(im.pixels / 255.0)[..., 0]
    h, w = L.shape
    assert len(im.truth.wrinkles) == 6
    on, off = [], []
    for wr in im.truth.wrinkles:
        pts = np.asarray(wr["points_canonical"])[3:-3]       # away from the tapered ends
        seg = np.diff(pts, axis=0)
        nrm = np.c_[-seg[:, 1], seg[:, 0]] / np.hypot(seg[:, 0], seg[:, 1])[:, None]
        mid = 0.5 * (pts[1:] + pts[:-1])
        off_px = 4 * wr["width_mm"] / p.mm_per_px
        for q, sample in ((mid, on), (mid + off_px * nrm, off), (mid - off_px * nrm, off)):
            ij = np.round(q).astype(int)
            ok = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
            sample.extend(L[ij[ok, 1], ij[ok, 0]])
    assert np.mean(on) < np.mean(off) - 1.0
    # pores: density as declared, and each is a small dark dot
    pr = im.truth.pores
    area_cm2 = im.truth.stats["roi"]["area_mm2"] / 100
    assert pr["count_in_roi"] == pytest.approx(p.pore_density * area_cm2, abs=4 * np.sqrt(p.pore_density
                                                                                            * area_cm2))
    f = skin_mod.build_fields(p, 10)
    xy = f.pore_xy[(f.pore_xy[:, 0] > 5) & (f.pore_xy[:, 0] < w - 5)
                   & (f.pore_xy[:, 1] > 5) & (f.pore_xy[:, 1] < h - 5)].astype(int)
    centre = L[xy[:, 1], xy[:, 0]]
    ring = np.mean([L[xy[:, 1] + dy, xy[:, 0] + dx] for dx, dy in ((4, 0), (-4, 0), (0, 4), (0, -4))], axis=0)
    assert np.mean(centre - ring) < -1.0


def test_marks_only_on_treatment_day_and_inside_treated_region():
    im = render_skin(SMALL, 11, camera=Camera.ideal(), erythema=0.35, bleeding=8.0)
    mk = im.truth.marks
    assert mk["count"] > 5 and mk["kind"] == "blood"
    treated = im.mask("treated", "canonical")
    for m in mk["marks"]:
        x, y = np.round(m["centre_canonical"]).astype(int)
        assert treated[y, x]
        assert im.haemoglobin[y, x] > 1.0
    assert render_skin(SMALL, 11, camera=Camera.ideal()).truth.marks["count"] == 0


def test_post_inflammatory_hyperpigmentation_is_where_the_truth_says():
    a = render_skin(SMALL, 22, camera=Camera.ideal())
    b = render_skin(SMALL, 22, camera=Camera.ideal(), pih=0.6)
    assert a.truth.pih["patches"] == [] and len(b.truth.pih["patches"]) == SMALL.pih_patches
    La = rgb2lab(a.pixels / 255.0)[..., 0]
    Lb = rgb2lab(b.pixels / 255.0)[..., 0]
    for q in b.truth.pih["patches"]:
        x, y = np.round(q["centre"]).astype(int)
        assert Lb[y - 2:y + 3, x - 2:x + 3].mean() < La[y - 2:y + 3, x - 2:x + 3].mean() - 4
    assert b.truth.metrics["pigment.mi_mean"] > a.truth.metrics["pigment.mi_mean"] + 1
    assert b.truth.stats["reference"]["mi_mean"] == pytest.approx(a.truth.stats["reference"]["mi_mean"])
    res = make_series(None, 22, params=SMALL, sessions=2, visit_days=(0, 5), pih=0.5, contact_sheet=False)
    pih = [p["state"]["pih"] for p in res.photos]
    assert pih[0] == 0 and pih[2] > 0 and pih[-1] > pih[2]


# ----------------------------------------------------------------------------- same skin

def test_same_seed_is_the_same_skin_and_roughness_scales_texture():
    p = SMALL.replace(brown_spots=0, red_spots=0)
    a = render_skin(p, 12, camera=Camera.ideal())
    b = render_skin(p, 12, camera=Camera.ideal(), roughness=0.5, pore_depth=0.5, wrinkle_depth=0.5)
    assert [s["centre"] for s in a.truth.spots] == [s["centre"] for s in b.truth.spots]
    ra = a.truth.texture["luminance_highpass_rms"]
    rb = b.truth.texture["luminance_highpass_rms"]
    assert rb < 0.65 * ra
    # the band RMS of the truth scales with the relief amplitude
    assert b.truth.metrics["texture.roughness"] == pytest.approx(0.5 * a.truth.metrics["texture.roughness"],
                                                                 rel=0.1)
    # only the texture changed: mean colour stays
    assert b.truth.metrics["redness.a_mean"] == pytest.approx(a.truth.metrics["redness.a_mean"], abs=0.3)
    assert b.truth.metrics["pigment.L_mean"] == pytest.approx(a.truth.metrics["pigment.L_mean"], abs=0.5)
    c = render_skin(p, 13, camera=Camera.ideal())
    def lines(im):
        return [w["points_canonical"] for w in im.truth.wrinkles]

    assert lines(a) == lines(b) != lines(c)


def test_skin_tones_follow_ita():
    for target in (60, 30, 0, -35):
        m = melanin_for_ita(target, 0.30, 1.0)
        lab = _lab_skimage(skin_mod.flat_reflectance(m, 0.30)[None, None])[0, 0]
        assert np.degrees(np.arctan2(lab[0] - 50, lab[2])) == pytest.approx(target, abs=0.05)
    p = SMALL.replace(brown_spots=0, red_spots=0, background=False, tone_variation=0.0)
    itas = [render_skin(p, 14, camera=Camera.ideal(), ita=t).truth.stats["roi"]["ita_mean"]
            for t in (55, 20, -30)]
    assert itas[0] > itas[1] > itas[2]
    assert itas == pytest.approx([55, 20, -30], abs=3)
    # the absorption directions have the shape of the real chromophores
    assert ABSORPTION_MELANIN[0] < ABSORPTION_MELANIN[1] < ABSORPTION_MELANIN[2]
    assert ABSORPTION_HAEMOGLOBIN[1] > 5 * ABSORPTION_HAEMOGLOBIN[0]
    assert ABSORPTION_HAEMOGLOBIN[2] > 3 * ABSORPTION_HAEMOGLOBIN[0]


def test_colour_card_patches_under_the_photo_light():
    cam = Camera(exposure=0.9, cct_k=5000, rotation_deg=2, noise_read=0.001, jpeg_quality=95)
    im = render_skin(SMALL, 15, camera=cam, card=True)
    card = im.truth.card
    assert card["fully_visible"]
    lin = im.undo_camera()
    for centre, ref in zip(card["patch_centres"], card["patch_linear"], strict=True):
        x, y = np.round(centre).astype(int)
        got = lin[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).mean(axis=0)
        assert np.allclose(got, ref, rtol=0.06, atol=0.006)
    skin = im.mask("skin", "photo")
    cx, cy = np.round(card["patch_centres"][7]).astype(int)
    assert not skin[cy, cx]                                  # the card is not skin
    # the skin outline in the JSON rasterises to the skin mask
    poly = np.zeros(skin.shape, np.uint8)
    outline = im.truth.regions["skin"]["polygons"]
    cv2.fillPoly(poly, [np.round(np.asarray(q)).astype(np.int32) for q in outline], 1)
    assert (poly.astype(bool) & skin).sum() / (poly.astype(bool) | skin).sum() > 0.98


# ----------------------------------------------------------------------------- determinism, speed

def test_deterministic_for_a_seed_and_independent_of_the_cache():
    a = render_skin(SMALL, 16, camera=Camera(rotation_deg=1), erythema=0.2)
    skin_mod._CACHE.clear()
    b = render_skin(SMALL, 16, camera=Camera(rotation_deg=1), erythema=0.2)
    assert np.array_equal(a.pixels, b.pixels)
    assert json.dumps(a.truth.to_dict()) == json.dumps(b.truth.to_dict())
    c = render_skin(SMALL, 16, camera=Camera(rotation_deg=1, noise_seed=1), erythema=0.2)
    assert not np.array_equal(a.pixels, c.pixels)          # another noise draw
    assert c.truth.metrics == a.truth.metrics               # same truth


# ----------------------------------------------------------------------------- series, files, CLI

def test_series_files_manifest_exif_and_recovery(tmp_path):
    import photokit

    res = make_series(tmp_path, 19, params=SkinParams(width=320, height=240, card=True), sessions=2,
                      visit_days=(0, 1, 3), tau_days=2.0, dose=0.3)
    rows = list(csv.DictReader((tmp_path / "manifest.csv").open()))
    assert list(rows[0].keys())[:3] == ["photo", "date", "kind"]
    assert [r["kind"] for r in rows] == ["baseline", "treatment", "visit", "visit",
                                         "treatment", "visit", "visit", "visit"]
    for r in rows:
        ph = photokit.load(tmp_path / r["photo"])
        assert ph.capture_time.isoformat(timespec="minutes") == r["date"]
        truth = SynthTruth.load(tmp_path / r["photo"].replace(".jpg", ".json"))
        assert truth.kind == r["kind"]
    # redness: up after each session, fading with tau towards the baseline
    by = {p["photo"]: p for p in res.photos}
    a = [p["metrics"]["redness.a_mean"] for p in res.photos]
    assert a[1] > a[0] + 3 and a[1] > a[2] > a[3] > a[0]
    st = [p["state"] for p in res.photos]
    d1, d3 = st[2]["days_since_treatment"], st[3]["days_since_treatment"]
    assert st[3]["erythema"] / st[2]["erythema"] == pytest.approx(np.exp(-(d3 - d1) / 2.0), rel=1e-6)
    assert st[1]["bleeding"] > 0 and st[2]["scabs"] and st[3]["bleeding"] == 0
    # improvement: texture parameter falls over the course
    assert st[-1]["roughness"] < st[0]["roughness"] == 1.0
    series = json.loads((tmp_path / "series.json").read_text())
    assert series["tau_days"] == 2.0 and len(series["photos"]) == len(rows)
    assert (tmp_path / "contact_sheet.png").stat().st_size > 1000
    roi = json.loads((tmp_path / "roi.json").read_text())
    assert len(roi["polygons"][0]) > 10
    assert by["00_baseline.jpg"]["homography_to_baseline"] == np.eye(3).tolist()


def test_render_capture_equals_the_written_series_and_the_samples(tmp_path):
    from pathlib import Path

    from photokit.synth import render_capture
    from photokit.synth.render import insert_exif

    p = SkinParams(width=320, height=240, card=True)
    make_series(tmp_path, 21, params=p, sessions=2, visit_days=(0, 2), contact_sheet=False)
    im, cap = render_capture(21, 3, params=p, sessions=2, visit_days=(0, 2))
    assert cap["label"] == "s2_day0"
    assert insert_exif(im.encoded, cap["time"]) == (tmp_path / "03_s2_day0.jpg").read_bytes()
    # the committed samples are what their README command makes (seed 7, two sessions,
    # visits on days 0, 2, 5): regenerate them if this fails after a generator change
    samples = Path(__file__).resolve().parents[1] / "samples"
    if not (samples / "manifest.csv").exists():
        pytest.skip("no samples/ folder")
    im, cap = render_capture(7, 1, sessions=2, visit_days=(0, 2, 5), tau_days=2.0)
    # the same photo up to the rounding of the machine it was made on (tests.machine): made
    # here (AMD EPYC, AVX-512, 2026-12-08) it differs from the shipped file in 8e-5 of its
    # pixels, by at most 2 levels; a change of the generator moves far more
    made = insert_exif(im.encoded, cap["time"])
    a, b = (cv2.imdecode(np.frombuffer(x, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)
            for x in (made, (samples / "01_s1_day0.jpg").read_bytes()))
    assert a.shape == b.shape
    d = np.abs(a - b)
    assert d.max() <= 2 and np.mean(d > 0) < 1e-3


def test_flat_series_has_no_treatment_effect(tmp_path):
    res = make_series(None, 20, params=SkinParams(width=320, height=240), sessions=2, visit_days=(0, 2),
                      flat=True, contact_sheet=False)
    a = [p["metrics"]["redness.a_mean"] for p in res.photos]
    assert np.ptp(a) < 1e-9
    assert all(p["state"]["bleeding"] == 0 and p["state"]["roughness"] == 1 for p in res.photos)


def test_cli_photo_pair_series(tmp_path):
    from photokit.cli.main import cli

    r = CliRunner()
    out = tmp_path / "one.png"
    res = r.invoke(cli, ["synth", "photo", str(out), "--ideal", "--size", "200x150", "--seed", "3",
                         "--set", "brown_spots=2", "--set", "brown_spot_radius_mm=[1,2]"])
    assert res.exit_code == 0, res.output
    truth = json.loads(out.with_suffix(".json").read_text())
    assert sum(s["kind"] == "brown" for s in truth["spots"]) == 2
    res = r.invoke(cli, ["synth", "pair", str(tmp_path / "pair"), "--size", "240x180", "--erythema", "0.3",
                         "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["delta"]["redness.a_mean"] > 3
    res = r.invoke(cli, ["synth", "series", str(tmp_path / "s"), "--seed", "2", "--size", "240x180",
                         "--sessions", "1", "--visit-days", "0,2", "--no-contact-sheet"])
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "s" / "manifest.csv").read_text().splitlines()) == 1 + 4
    res = r.invoke(cli, ["synth", "photo", str(tmp_path / "x.jpg"), "--set", "no_such_field=1"])
    assert res.exit_code == 2


def test_synth_photo_never_replaces_another_photos_truth(tmp_path):
    """The truth is written beside the photo as <name>.json: a second photo of the same
    name in another format would replace the first one's truth, so it is refused."""
    from click.testing import CliRunner

    from photokit.cli.main import cli

    r = CliRunner().invoke(cli, ["synth", "photo", str(tmp_path / "x.png"), "--size", "200x150"])
    assert r.exit_code == 0, r.output
    truth = (tmp_path / "x.json").read_text()
    r = CliRunner().invoke(cli, ["synth", "photo", str(tmp_path / "x.jpg"), "--size", "200x150"])
    assert r.exit_code == 2 and "is the truth of" in r.output
    assert (tmp_path / "x.json").read_text() == truth and not (tmp_path / "x.jpg").exists()
    assert CliRunner().invoke(cli, ["synth", "photo", str(tmp_path / "x.png"), "--size", "200x150",
                                    "--seed", "3"]).exit_code == 0     # the same photo, made again
