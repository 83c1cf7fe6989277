"""measure(): redness and pigment against the synthetic ground truth and reference code."""

from __future__ import annotations

import json

import numpy as np
import pytest
import skimage.color
from click.testing import CliRunner
from PIL import Image

from photokit import PhotokitError, measure, synth
from photokit import metrics as registry
from photokit.cli.main import cli
from photokit.colour.convert import linear_to_srgb
from photokit.metrics.pigment import ita_Chardon1991, melanin_index_Diffey1984
from photokit.metrics.redness import erythema_index_Diffey1984

SMALL = dict(width=800, height=600, mm_per_px=0.1)


@pytest.fixture(scope="module")
def skin():
    return synth.render_skin(seed=5, **SMALL)


@pytest.fixture(scope="module")
def pair_with_light_change():
    """A true +2.0 a* change while exposure and white balance change between visits."""
    return synth.make_pair(4, synth.SkinParams(**SMALL), delta_a=2.0, exposure=0.75,
                           wb_gains=(1.1, 1.0, 0.92))


def test_index_formulas_against_numpy(rng):
    lin = rng.uniform(0.05, 0.9, (50, 50, 3)).astype(np.float32)
    r, g = lin[..., 0].astype(np.float64), lin[..., 1].astype(np.float64)
    np.testing.assert_allclose(erythema_index_Diffey1984(lin), 100 * np.log10(r / g), atol=1e-3)
    np.testing.assert_allclose(melanin_index_Diffey1984(lin), 100 * np.log10(1 / r), atol=1e-3)


def test_ita_against_scikit_image(rng):
    lin = rng.uniform(0.05, 0.9, (50, 50, 3)).astype(np.float32)
    lab = skimage.color.rgb2lab(linear_to_srgb(lin).astype(np.float64))
    want = np.degrees(np.arctan2(lab[..., 0] - 50, lab[..., 2]))
    # cv2.phase is accurate to ~0.01 deg (the ITA noise floor is 4.6 deg)
    np.testing.assert_allclose(ita_Chardon1991(lab.astype(np.float32)), want, atol=0.02)
    assert ita_Chardon1991(np.array([50.0, 0.0, -5.0], np.float32)) == pytest.approx(180.0)
    assert ita_Chardon1991(np.array([40.0, 0.0, -5.0], np.float32)) == pytest.approx(-116.565, abs=0.02)


def test_absolute_colour_matches_truth(skin):
    m = measure(skin.pixels, roi=skin.mask("roi", "photo"), mm_per_px=0.1)
    t = skin.truth.metrics
    # the ideal-ish default camera: JPEG, noise and mild light field only
    assert m.metrics["redness.a_mean"] == pytest.approx(t["redness.a_mean"], abs=1.0)
    assert m.metrics["redness.ei_mean"] == pytest.approx(t["redness.ei_mean"], abs=1.5)
    assert m.metrics["pigment.mi_mean"] == pytest.approx(t["pigment.mi_mean"], abs=1.5)
    assert m.metrics["pigment.ita_mean"] == pytest.approx(t["pigment.ita_mean"], abs=3.0)


def test_delta_a_with_reference_skin_survives_light_change(pair_with_light_change):
    p = pair_with_light_change
    b, a = p.before, p.after
    mb = measure(b.pixels, roi=b.mask("roi", "photo"), reference_roi=b.mask("reference", "photo"))
    ma = measure(a.pixels, roi=a.mask("roi", "photo"), reference_roi=a.mask("reference", "photo"),
                 reference_target=mb.reference_rgb)
    assert mb.calibration.method == ma.calibration.method == "reference"
    truth = p.delta["redness.a_mean"]
    got = ma.metrics["redness.a_mean"] - mb.metrics["redness.a_mean"]
    assert abs(got - truth) <= max(1.0, 0.25 * abs(truth)), (got, truth)
    # without normalisation the light change biases the delta (what calibration is for)
    un_b = measure(b.pixels, roi=b.mask("roi", "photo"))
    un_a = measure(a.pixels, roi=a.mask("roi", "photo"))
    assert un_a.calibration.method == "none"
    assert abs((un_a.metrics["redness.a_mean"] - un_b.metrics["redness.a_mean"]) - truth) > abs(got - truth)


def test_no_real_change_reads_as_no_change():
    p = synth.make_pair(6, synth.SkinParams(**SMALL), delta_a=0.0, exposure=1.3,
                        wb_gains=(0.92, 1.0, 1.08))
    b, a = p.before, p.after
    assert abs(p.delta["redness.a_mean"]) < 1e-3
    mb = measure(b.pixels, roi=b.mask("roi", "photo"), reference_roi=b.mask("reference", "photo"))
    ma = measure(a.pixels, roi=a.mask("roi", "photo"), reference_roi=a.mask("reference", "photo"),
                 reference_target=mb.reference_rgb)
    assert abs(ma.metrics["redness.a_mean"] - mb.metrics["redness.a_mean"]) < 1.0


def test_red_area_grows_with_erythema():
    calm = synth.render_skin(seed=7, **SMALL)
    red = synth.render_skin(seed=7, erythema=0.6, **SMALL)
    roi = calm.mask("skin", "photo")
    a = measure(calm.pixels, roi=roi).metrics["redness.area_pct"]
    b = measure(red.pixels, roi=roi).metrics["redness.area_pct"]
    assert b > a + 5


def test_measurement_shape_and_every_registered_metric(skin):
    m = measure(skin.pixels, mm_per_px=0.1)
    d = m.to_dict()
    assert {"image", "quality", "calibration", "mm_per_px", "metrics"} <= set(d)
    assert d["mm_per_px"] == 0.1 and d["calibration"]["method"] in ("checker", "none")
    assert set(d["metrics"]) == set(registry.names())
    json.dumps(d)  # serialisable
    html = m._repr_html_()
    assert "<table>" in html
    a = next(r for r in html.split("<tr>") if r.startswith("<td>redness.a_mean</td>"))
    assert a.count("a*") == 1                    # the unit once, with its value


def test_unknown_scale_is_flagged(skin):
    m = measure(skin.pixels)
    assert m.mm_per_px is None and m.scale_source == "relative"
    assert any("scale unknown" in w for w in m.warnings)


def test_greyscale_photo_has_no_colour(skin):
    g = skin.pixels.mean(axis=2).astype(np.uint8)
    with pytest.raises(PhotokitError, match="greyscale"):
        measure(g)


def test_a_black_and_white_photo_saved_as_rgb_has_no_colour_either(tmp_path, skin, astronaut):
    """A grey photo in RGB (or grey + alpha) read a* 0 and a pale ITA, and compare called
    the change from a colour visit an improvement (QA, 2026-12-08): refused like greyscale."""
    from photokit.io.photo import load

    g = skin.pixels.mean(axis=2).astype(np.uint8)
    rgb = np.repeat(g[:, :, None], 3, axis=2)
    rgb[:8, :40] = (255, 0, 0)                      # a red date stamp does not make it colour
    Image.fromarray(rgb).save(tmp_path / "bw.jpg", quality=90)
    Image.fromarray(g).convert("LA").save(tmp_path / "bw_alpha.png")
    for src in (rgb, tmp_path / "bw.jpg", tmp_path / "bw_alpha.png"):
        assert load(src).is_colour and not load(src).has_colour
        with pytest.raises(PhotokitError, match="no colour: every pixel is grey"):
            measure(src)
    # colour photos have colour, pale or dark skin alike
    assert load(skin.pixels).has_colour and load(astronaut).has_colour
    dark = synth.render_skin(seed=2, width=300, height=200, mm_per_px=0.1, ita=-30)
    assert load(dark.pixels).has_colour


def test_two_people_only_the_largest_face_is_measured(astronaut):
    """Both people's skin was pooled, with the scale and zones of one (QA, 2026-12-08)."""
    one = measure(astronaut)
    two = measure(np.hstack([astronaut, astronaut[::2, ::2].repeat(2, axis=0).repeat(2, axis=1)]))
    assert len(two.faces) == 1
    assert any(w.startswith("2 faces in the photo: only the largest") for w in two.warnings)
    assert 0.7 < two.analysis.skin_pixels / one.analysis.skin_pixels < 1.3   # not twice the skin
    assert not any("faces in the photo" in w for w in one.warnings)


def test_arrays_in_the_wrong_convention_are_named(astronaut):
    """A BGR array (cv2.imread's) read EI -22 and ITA 110 without a word; floats in 0-255
    and bool masks said "no skin found" (QA, 2026-12-08)."""
    warned = lambda m: any("BGR array" in w for w in m.warnings)  # noqa: E731
    assert warned(measure(astronaut[:, :, ::-1].copy())) and not warned(measure(astronaut))
    with pytest.raises(PhotokitError, match="floats must be in 0-1"):
        measure(astronaut.astype(np.float64))
    with pytest.raises(PhotokitError, match="bool array is a mask"):
        measure(astronaut[:, :, 0] > 100)
    assert measure(astronaut / 255.0).metrics["redness.a_mean"] == pytest.approx(
        measure(astronaut).metrics["redness.a_mean"], abs=0.05)


def test_metrics_are_chosen_by_name_or_family_in_the_api_as_on_the_command_line(skin):
    """``metrics=["redness"]`` was "unknown metric(s): redness" and ``metrics="redness"``
    listed its letters (QA, 2026-12-08)."""
    red = {m.name for m in registry.registered() if m.family == "redness"}
    for choice in (["redness", "pigment.ita_mean"], "redness,pigment.ita_mean",
                   ("redness", "pigment.ita_mean")):
        assert set(measure(skin.pixels, metrics=choice).metrics) == red | {"pigment.ita_mean"}
    with pytest.raises(PhotokitError, match="'pigmnt' is neither a metric nor a family"):
        measure(skin.pixels, metrics="redness,pigmnt")
    assert measure(skin.pixels, metrics=[]).metrics == {}


def test_no_skin_is_an_error_not_zeros(rng):
    blue = np.zeros((400, 600, 3), np.uint8)
    blue[...] = (40, 90, 200)
    blue = np.clip(blue + rng.normal(0, 4, blue.shape), 0, 255).astype(np.uint8)
    with pytest.raises(PhotokitError, match="no skin") as err:
        measure(blue)
    # without a face either the way out is named (a face too small to find: QA, 2026-12-08)
    assert "no face found either" in str(err.value) and "--roi" in str(err.value)


def test_cli_measure_json_and_maps(tmp_path, skin):
    p = tmp_path / "skin.png"
    Image.fromarray(skin.pixels).save(p)
    maps = tmp_path / "maps"
    r = CliRunner().invoke(cli, ["measure", str(p), "--mm-per-px", "0.1", "--json", "--maps", str(maps)])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["image"] == str(p) and doc["metrics"]["redness.a_mean"] is not None
    assert (maps / "skin_a_star.png").exists() and (maps / "skin_mask.png").exists()


def test_face_zones_report_where_redness_was_added():
    """Haemoglobin OD added on the subject's left cheek raises that zone's a* only."""
    import skimage.data

    from photokit.colour.chromophores import V_HAEMOGLOBIN
    from photokit.colour.convert import uint8_to_linear

    rgb = skimage.data.astronaut()
    before = measure(rgb, calibration="none")
    for z in ("forehead", "cheek_left", "cheek_right"):
        assert before.metrics[f"redness.a_mean.{z}"] is not None
    cheek = before.faces[0].zone_masks(rgb.shape)["cheek_left"].astype(np.float32)[..., None]
    lin = uint8_to_linear(rgb) * np.exp(-0.3 * cheek * V_HAEMOGLOBIN)
    after = measure((linear_to_srgb(lin) * 255 + 0.5).astype(np.uint8), calibration="none")
    d = {k: after.metrics[k] - before.metrics[k] for k in before.metrics
         if k.startswith("redness.a_mean.") and None not in (before.metrics[k], after.metrics.get(k))}
    assert d["redness.a_mean.cheek_left"] > 2.0
    # untouched zones stay below the metric's noise floor (the adaptive skin mask itself
    # shifts a little when part of the face reddens)
    mdc = registry.get("redness.a_mean").mdc
    assert abs(d["redness.a_mean.forehead"]) < mdc and abs(d["redness.a_mean.cheek_right"]) < mdc
    assert set(after.to_dict()["zones"]) == set(after.zones)


def test_no_face_zones_or_face_scale_from_haar_alone(monkeypatch):
    """Haar fires on plain skin close-ups: without a meshed face there are no zones and
    no face scale, whatever Haar found (its faces only seed the colour mask, as before)."""
    import importlib

    from photokit.faces.haar import Face

    measure_mod = importlib.import_module("photokit.measurement.measure")
    search_mod = importlib.import_module("photokit.faces.search")
    from photokit.synth import render_skin

    im = render_skin(seed=3, width=480, height=360)
    eyes = ((160.0, 140.0), (240.0, 140.0))
    for found in ([Face((100, 60, 200, 200), ())], [Face((100, 60, 200, 200), eyes)]):
        monkeypatch.setattr(search_mod, "detect_faces", lambda gray, found=found, **kw: found)
        m = measure_mod.measure(im.pixels)
        assert m.zones == {} and m.metrics["redness.a_mean"] is not None
        assert m.scale.source == "relative" and not any(k.count(".") > 1 for k in m.metrics)


def test_levels_made_around_the_skin_only_give_the_same_metrics(monkeypatch):
    """Skin in a small part of a large frame: the levels hold data only within
    LEVEL_MARGIN_MM of it (zero beyond), and every metric equals the one computed on
    levels made over the whole frame."""
    from photokit.colour.linear import CodedLinear
    from photokit.metrics import analysis
    from photokit.metrics.analysis import Analysis

    im = synth.render_skin(seed=4, width=500, height=400, mm_per_px=0.1, brown_spots=4,
                           brown_spot_radius_mm=(1.0, 2.0))
    frame = np.full((1500, 1800, 3), 90, np.uint8)       # a grey room around the skin
    frame[900:1300, 1100:1600] = im.pixels
    mask = np.zeros(frame.shape[:2], bool)
    mask[900:1300, 1100:1600] = im.mask("skin")
    values = {}
    for share in (1.0, 0.0):                             # box / always the whole frame
        monkeypatch.setattr(analysis, "LEVEL_FULL_SHARE", share)
        an = Analysis(CodedLinear(frame), mask, 0.1)
        lv = an.level(0.3)
        if share:
            rows, cols = lv.box
            # the box: the skin's bounding box + 12 mm (120 photo px), in level pixels (/3)
            ys, xs = np.nonzero(mask)
            want = ((ys.min() - 120) // 3, -(-(ys.max() + 1 + 120) // 3),
                    (xs.min() - 120) // 3, -(-(xs.max() + 1 + 120) // 3))
            assert (rows.start, rows.stop, cols.start, cols.stop) == want
            whole = Analysis(CodedLinear(frame), mask, 0.1)
            monkeypatch.setattr(analysis, "LEVEL_FULL_SHARE", 0.0)
            ref = whole.level(0.3).linear
            np.testing.assert_allclose(lv.linear[lv.box], ref[lv.box], rtol=1e-6, atol=1e-7)
            outside = np.ones(lv.shape, bool)
            outside[lv.box] = False
            assert not lv.linear[outside].any()
            monkeypatch.setattr(analysis, "LEVEL_FULL_SHARE", share)
        else:
            assert lv.box is None
        values[share] = {m.name: m.compute(an) for m in registry.registered()}
    assert values[1.0].keys() == values[0.0].keys()
    for name, v in values[1.0].items():
        w = values[0.0][name]
        assert (v is None) == (w is None), name
        if v is not None:
            assert v == pytest.approx(w, rel=1e-5, abs=1e-6), name
    assert values[1.0]["spots.count"] >= 1 and values[1.0]["redness.a_mean"] > 5


def test_a_second_measurement_of_a_photo_reuses_its_faces_quality_and_calibration(monkeypatch):
    """compare and series measure their first photo twice (to find the skin to follow,
    then over it): with the first measurement's context the second finds no face and no
    card again, and gives the same result."""
    import photokit.measurement.measure as M
    from photokit import load
    from photokit.synth import render_skin

    photo = load(render_skin(seed=3).pixels)
    first = M.measure(photo, metrics=[])
    region = first.analysis.mask.copy()
    region[: region.shape[0] // 2] = False
    plain = M.measure(photo, roi=region)

    def refuse(*a, **k):
        raise AssertionError("searched again")

    import photokit.faces.search as S

    monkeypatch.setattr(S, "find_faces", refuse)
    monkeypatch.setattr(S, "detect_faces", refuse)
    monkeypatch.setattr(M, "calibrate", refuse)
    monkeypatch.setattr(M, "assess", refuse)
    again = M.measure(photo, roi=region, context=first.context)
    assert again.to_dict() == plain.to_dict()
    # another calibration setting does not fit the context: it is computed again
    with pytest.raises(AssertionError, match="searched again"):
        M.measure(photo, roi=region, calibration="none", context=first.context)


def test_features_list_what_the_metrics_counted(tmp_path):
    """measure --features: every counted spot and pore is listed, so overlays and counts agree."""
    from photokit.synth import render_skin

    im = render_skin(seed=5, brown_spots=12)
    path = tmp_path / "skin.png"
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(im.pixels, cv2.COLOR_RGB2BGR))
    res = CliRunner().invoke(cli, ["measure", str(path), "--mm-per-px", str(im.truth.mm_per_px),
                                   "--json", "--features"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    f, m = doc["features"], doc["metrics"]
    brown = [s for s in f["spots"] if s["kind"] == "brown"]
    assert len(brown) == m["spots.count"] and len(f["spots"]) - len(brown) == m["spots.red_count"]
    assert len(f["pores"]) > 0 and m["texture.pore_density"] > 0
    assert all(0 <= p["x"] < im.pixels.shape[1] and 0 <= p["y"] < im.pixels.shape[0] for p in f["pores"])
    assert all(ln["length_mm"] > 0 and len(ln["points"]) >= 2 for ln in f["lines"])


def test_compare_searches_each_photo_for_faces_once(monkeypatch, astronaut):
    """One face pass per photo and job (`photokit.faces.search.face_pass`): compare aligns
    on the faces and measures both photos (BEFORE twice), yet meshes each photo once."""
    import photokit.faces.search as S
    from photokit.comparison.compare import compare

    calls = []
    real = S.find_faces
    monkeypatch.setattr(S, "find_faces", lambda rgb, **kw: calls.append(rgb.shape) or real(rgb, **kw))
    shifted = np.roll(astronaut, (6, -4), axis=(0, 1))
    c = compare(astronaut, shifted)
    assert c.before.faces and c.after.faces
    assert len(calls) == 2


def test_colour_metrics_decode_at_the_size_they_need(tmp_path):
    """Resolution from the need: colour metrics work on a copy of at most `working_side`
    px, so a large JPEG is decoded reduced (DCT scaling) for them, and their values move
    far less than their standard errors; any metric that needs full resolution, an ROI or
    ``resolution="full"`` decodes it all."""
    from photokit.measurement.measure import decode_reduction
    from photokit.metrics.redness import WORK_SIDE

    im = synth.render_skin(seed=11, width=3600, height=2700)
    path = tmp_path / "large.jpg"
    Image.fromarray(im.pixels).save(path, quality=92)
    colour = [m.name for m in registry.registered() if m.working_side]
    assert colour and all(m.working_side == WORK_SIDE for m in registry.registered() if m.working_side)
    reduced = measure(path, metrics=colour, mm_per_px=im.truth.mm_per_px)
    full = measure(path, metrics=colour, mm_per_px=im.truth.mm_per_px, resolution="full")
    # 3600 / 2 = 1800 >= 1600 > 3600 / 4
    assert reduced.decode() == {"reduction": 2, "width": 1800, "height": 1350}
    assert full.decode()["reduction"] == 1 and reduced.mm_per_px == pytest.approx(2 * full.mm_per_px)
    for name in colour:
        # within 15 % of a pair's noise floor 1.96 sqrt(2) se (evenness moves most: 0.31 se)
        floor = 1.96 * np.sqrt(2) * full.standard_error[name]
        assert abs(reduced.metrics[name] - full.metrics[name]) < 0.15 * floor, name
    assert decode_reduction(path, registry.registered()) == 1          # texture needs every pixel
    assert decode_reduction(path, [registry.get(n) for n in colour], roi="x.png") == 1
    assert decode_reduction(im.pixels, [registry.get(n) for n in colour]) == 1


def test_one_thread_measures_what_two_threads_measure(astronaut):
    """`set_threads(1)` (a batch worker: every step inline, the zones right after each
    job) gives exactly the measurement of the default two threads, zones included."""
    from photokit.measurement import measure as M

    two = measure(astronaut).to_dict()
    M.set_threads(1)
    try:
        one = measure(astronaut).to_dict()
    finally:
        M.set_threads(2)
    assert any("." in k and k.split(".")[-1] in two["zones"] for k in two["metrics"])
    assert one == two


def test_zones_found_never_raises_and_follows_the_measurements_own_faces(astronaut, tmp_path):
    """``zones="found"`` (what compare and series ask) zones an ROI where this
    measurement's own face pass finds a face, and gives no zones, without an error, where
    it does not (a face a scale-less search found by a fallback can be lost once the
    scale is known: then zones=True would fail the whole comparison)."""
    roi = np.zeros(astronaut.shape[:2], bool)
    roi[60:300, 150:360] = True
    m = measure(astronaut, roi=roi, zones="found")
    assert "redness.a_mean.forehead" in m.metrics and m.zones
    flat = np.full((400, 600, 3), (200, 150, 130), np.uint8)
    flat += np.random.default_rng(0).integers(0, 6, flat.shape, dtype=np.uint8)
    box = np.zeros(flat.shape[:2], bool)
    box[100:300, 100:500] = True
    m = measure(flat, roi=box, zones="found", mm_per_px=0.1)
    assert not m.zones and not any(k.count(".") > 1 for k in m.metrics)
    with pytest.raises(PhotokitError, match="no face found"):
        measure(flat, roi=box, zones=True, mm_per_px=0.1)
