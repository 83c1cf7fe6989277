"""`measure` on the face mesh (issue 17): scale, skin, zones, ``--zones``, ``--overlay``.

Made here from the astronaut (ships with scikit-image) and synthetic close-ups
(`photokit.synth`); nothing is read from ../shared.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from photokit import metrics as registry
from photokit.cli.main import cli
from photokit.faces.haar import detect_faces
from photokit.faces.mesh import ZONE_NAMES, find_faces
from photokit.faces.skin import face_outline, face_skin_mask, skin_mask
from photokit.measurement.measure import MIN_ZONE_VISIBLE, measure, zone_values
from photokit.synth import render_skin


@pytest.fixture(scope="module")
def astro_measured():
    import skimage.data

    return measure(skimage.data.astronaut(), calibration="none")


@pytest.fixture(scope="module")
def close_up():
    return render_skin(seed=5, width=480, height=360).pixels


def test_astronaut_scale_falls_back_to_the_face_with_its_reason(astro_measured):
    """Her irises are about 7 px (< 10 px): no iris ruler, the inter-ocular estimate."""
    s = astro_measured.scale
    d = astro_measured.faces[0].iris_left.diameter_px
    assert 5 < d < 10
    assert s.source == "face" and s.reason.startswith("iris") and "< 10 px" in s.reason
    assert s.uncertainty == pytest.approx(3.5 / 63)
    doc = astro_measured.to_dict()
    assert doc["scale"]["source"] == "face" and doc["scale"]["uncertainty"] == pytest.approx(3.5 / 63)
    assert doc["scale"]["reason"] == s.reason
    assert any("iris not used: iris" in w for w in astro_measured.warnings)


def test_iris_scale_when_the_irises_are_large_enough(astronaut):
    """The same face at 3x: irises of about 21 px give the iris ruler."""
    big = cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    m = measure(big, calibration="none", metrics=["redness.a_mean"])
    assert m.scale.source == "iris" and m.scale.reason == ""
    assert 0.5 / 11.7 <= m.scale.uncertainty < 0.15   # population spread, plus the eyes disagreeing
    # the same face: the iris scale and the inter-ocular one agree within their spreads
    assert m.scale.mm_per_px * 3 == pytest.approx(measure(astronaut, metrics=["redness.a_mean"],
                                                          calibration="none").scale.mm_per_px, rel=0.2)


def test_zone_keys_for_every_zone_able_metric(astro_measured):
    zoned = [m for m in registry.registered() if m.zone != "none"]
    assert {m.name for m in zoned} >= {"redness.a_mean", "pigment.ita_mean", "texture.roughness"}
    for m in zoned:
        for z in ZONE_NAMES:
            assert f"{m.name}.{z}" in astro_measured.metrics
    assert set(astro_measured.zones) == set(ZONE_NAMES)
    doc = astro_measured.to_dict()
    assert doc["metrics"]["redness.a_mean.cheek_left"] is not None
    assert doc["units"]["redness.a_mean.cheek_left"] == doc["units"]["redness.a_mean"]


def test_blank_zones_carry_a_reason(astro_measured):
    m = astro_measured
    blank = [z for z, d in m.zones.items() if d["reason"]]
    measured = [z for z, d in m.zones.items() if not d["reason"]]
    assert measured and {"cheek_left", "cheek_right", "forehead"} <= set(measured)
    for z in blank:
        assert all(v is None for k, v in m.metrics.items() if k.endswith("." + z))
        assert any(w.startswith(f"zone {z} left blank: ") for w in m.warnings)
    for z in measured:
        assert m.metrics[f"redness.a_mean.{z}"] is not None


def test_hidden_zone_is_blank_with_its_visibility(astro_measured):
    face = astro_measured.faces[0]
    turned = replace(face, visible={**face.visible, "cheek_right": 0.2})
    values, info = zone_values(astro_measured.analysis, turned, registry.registered())
    assert info["cheek_right"]["reason"] == f"hidden (visible 0.20 < {MIN_ZONE_VISIBLE})"
    assert values["redness.a_mean.cheek_right"] is None
    assert values["redness.a_mean.cheek_left"] == astro_measured.metrics["redness.a_mean.cheek_left"]


def test_zones_flag_without_a_face_exits_1_with_one_line(tmp_path, close_up):
    p = tmp_path / "closeup.png"
    cv2.imwrite(str(p), cv2.cvtColor(close_up, cv2.COLOR_RGB2BGR))
    res = CliRunner().invoke(cli, ["measure", str(p), "--zones", "--json"])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("no face found")
    assert res.stdout == ""


def test_overlay_and_zones_on_a_face(tmp_path, astronaut):
    p = tmp_path / "astro.png"
    cv2.imwrite(str(p), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    res = CliRunner().invoke(cli, ["measure", str(p), "--zones", "--overlay", str(tmp_path / "ov.png")])
    assert res.exit_code == 0, res.output
    ov = cv2.imread(str(tmp_path / "ov.png"))
    assert ov.shape == astronaut.shape and not np.array_equal(ov[..., ::-1], astronaut)
    assert "zone cheek_left" in res.stdout


def test_skin_coloured_backdrop_beside_the_face_is_not_skin(astronaut):
    """The astronaut pasted on a backdrop of her own cheek's colour: none of it is skin."""
    face = find_faces(astronaut)[0]
    cheek = face.zone_masks(astronaut.shape)["cheek_left"]
    colour = np.median(astronaut[cheek], axis=0)
    rng = np.random.default_rng(0)
    canvas = np.clip(colour + rng.normal(0, 3, (900, 1400, 3)), 0, 255).astype(np.uint8)
    y0, x0 = 300, 450
    canvas[y0:y0 + 512, x0:x0 + 512] = astronaut
    backdrop = np.ones(canvas.shape[:2], bool)
    backdrop[y0:y0 + 512, x0:x0 + 512] = False
    faces = find_faces(canvas)
    assert len(faces) == 1
    mask = face_skin_mask(canvas, faces)
    assert mask[backdrop].mean() < 0.001
    # the old colour mask, seeded on Haar's eyes, takes much of it
    haar = detect_faces(cv2.cvtColor(canvas, cv2.COLOR_RGB2GRAY))
    assert skin_mask(canvas, faces=haar)[backdrop].mean() > 0.05
    # measure uses the face mask: the face is in, the backdrop out
    m = measure(canvas, calibration="none", metrics=["redness.a_mean"])
    assert m.mask[backdrop].mean() < 0.001
    oval = face_outline(faces[0], canvas.shape)
    assert m.mask[oval].mean() > 0.4


def test_eyes_brows_lips_are_never_skin(astronaut):
    faces = find_faces(astronaut)
    mask = face_skin_mask(astronaut, faces)
    f = faces[0]
    for ir in (f.iris_left, f.iris_right):
        x, y = (int(round(v)) for v in ir.center)
        assert not mask[y - 2:y + 3, x - 2:x + 3].any()
    # the middle of each lip: halfway between its outer (0, 17) and inner (13, 14) midpoints
    lips = np.round((f.landmarks[[0, 17], :2] + f.landmarks[[13, 14], :2]) / 2).astype(int)
    assert not mask[lips[:, 1], lips[:, 0]].any()


def test_faceless_close_up_gives_the_same_mask_as_before(close_up):
    """No face: the colour mask seeded as before (Haar's faces, none here), unchanged."""
    assert find_faces(close_up) == []
    m = measure(close_up, calibration="none", metrics=["redness.a_mean"])
    before = skin_mask(close_up, faces=detect_faces(cv2.cvtColor(close_up, cv2.COLOR_RGB2GRAY)))
    assert np.array_equal(m.mask, before)
    assert m.zones == {} and m.scale.source == "relative" and m.faces == []
    assert "reason" not in m.to_dict()["scale"]


def test_exposure_is_judged_on_the_face_mesh(astro_measured):
    checks = astro_measured.quality.checks
    assert all(checks[k].note.endswith("on face") for k in ("highlights_clipped", "shadows_crushed"))
