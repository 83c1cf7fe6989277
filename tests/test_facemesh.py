"""photokit.faces.mesh on the astronaut: mesh, roll, mirror, scale, zones, CLI, model errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from photokit.cli.main import cli
from photokit.errors import PhotokitError
from photokit.faces.mesh import ZONE_NAMES, face_scale, find_faces


@pytest.fixture(scope="module")
def astro_faces(astronaut):
    return find_faces(astronaut)


def _rotate(img, deg, centre):
    m = cv2.getRotationMatrix2D(centre, deg, 1.0)
    return cv2.warpAffine(img, m, img.shape[1::-1], borderMode=cv2.BORDER_REFLECT), m


def test_mesh_on_astronaut(astro_faces):
    assert len(astro_faces) == 1
    f = astro_faces[0]
    assert f.landmarks.shape == (468, 3) and f.score > 0.9
    x0, y0, x1, y1 = f.box
    assert 160 < x0 < 200 and 60 < y0 < 90 and 250 < x1 < 290 and 160 < y1 < 190
    # subject's left eye is on the image's right in a frontal photo
    assert f.iris_left.center[0] > f.iris_right.center[0]
    assert abs(f.yaw) < 10 and abs(f.pitch) < 15 and abs(f.roll) < 8
    assert all(f.visible[z] > 0.8 for z in ("forehead", "nose", "cheek_left", "cheek_right", "chin"))


def test_roll_follows_image_rotation(astronaut, astro_faces):
    f0 = astro_faces[0]
    centre = tuple(float(v) for v in np.mean([f0.iris_left.center, f0.iris_right.center], axis=0))
    img, m = _rotate(astronaut, 30, centre)
    f = find_faces(img)[0]
    assert f.roll - f0.roll == pytest.approx(30, abs=3)
    for before, after in ((f0.iris_left, f.iris_left), (f0.iris_right, f.iris_right)):
        expected = m @ [*before.center, 1]
        assert np.hypot(*(np.array(after.center) - expected)) < 1.5


def test_mirror_flips_yaw_and_swaps_eyes(astronaut, astro_faces):
    f0 = astro_faces[0]
    w = astronaut.shape[1]
    f = find_faces(astronaut[:, ::-1].copy())[0]
    assert f.yaw == pytest.approx(-f0.yaw, abs=2.5)
    assert f.roll == pytest.approx(-f0.roll, abs=2.5)
    for a, b in ((f.iris_left, f0.iris_right), (f.iris_right, f0.iris_left)):
        assert np.hypot(a.center[0] - (w - 1 - b.center[0]), a.center[1] - b.center[1]) < 1.5
    assert f.visible["cheek_left"] == pytest.approx(f0.visible["cheek_right"], abs=0.1)


def test_yawed_face_hides_the_far_cheek(astronaut, astro_faces):
    """A horizontal squeeze of one half fakes a turn; at least the sign must follow."""
    f0 = astro_faces[0]
    cx = int(f0.landmarks[1, 0])
    img = astronaut.copy()
    left = cv2.resize(astronaut[:, :cx], (int(cx * 0.9), 512), interpolation=cv2.INTER_AREA)
    img[:, :cx] = 0
    img[:, cx - left.shape[1]:cx] = left
    f = find_faces(img)[0]
    assert f.yaw < f0.yaw   # the image-left half narrower: turned to the subject's right


def test_scale_invariant_under_resize(astronaut):
    sizes, products = (1024, 1536), []
    for s in sizes:
        img = cv2.resize(astronaut, (s, s), interpolation=cv2.INTER_CUBIC)
        sc = face_scale(find_faces(img))
        assert sc.source == "iris" and 0 < sc.uncertainty < 0.2
        products.append(sc.mm_per_px * s)
    assert products[1] == pytest.approx(products[0], rel=0.04)


def test_small_iris_falls_back_to_face(astro_faces):
    sc = face_scale(astro_faces)       # irises of about 7 px on the 512 px astronaut
    assert sc.source == "face" and "iris" in sc.reason and sc.mm_per_px > 0


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_no_face(kind):
    rng = np.random.default_rng(0)
    img = (np.full((300, 400, 3), 128, np.uint8) if kind == "blank"
           else rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    assert find_faces(img) == []
    assert face_scale([]).source == "relative"


def test_uint16_input(astronaut, astro_faces):
    f = find_faces(astronaut.astype(np.uint16) * 257)[0]
    assert np.abs(f.landmarks[:, :2] - astro_faces[0].landmarks[:, :2]).max() < 1.0


def test_zone_masks_and_polygons(astronaut, astro_faces):
    f = astro_faces[0]
    masks = f.zone_masks(astronaut.shape)
    polys = f.zone_polygons()
    assert set(masks) == set(ZONE_NAMES) == set(polys)
    assert all(m.any() for m in masks.values())
    # zones meet only along their borders (each mesh triangle has one zone); eyes are not skin
    count = np.sum([m.astype(int) for m in masks.values()], axis=0)
    assert (count > 1).sum() < 0.1 * (count > 0).sum()
    ex, ey = (int(round(v)) for v in f.iris_left.center)
    assert not any(m[ey, ex] for m in masks.values())


def test_cli_json_per_spec(tmp_path, astronaut):
    p = tmp_path / "astro.png"
    Image.fromarray(astronaut).save(p)
    ov = tmp_path / "ov.png"
    r = CliRunner().invoke(cli, ["face", str(p), "--json", "--overlay", str(ov)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"image", "mm_per_px", "scale_source", "faces"}
    assert doc["scale_source"] in ("iris", "face") and doc["mm_per_px"] > 0
    f = doc["faces"][0]
    assert set(f) == {"box", "score", "landmarks", "iris", "pose", "zones"}
    assert len(f["box"]) == 4 and len(f["landmarks"]) == 468 and len(f["landmarks"][0]) == 3
    assert set(f["iris"]) == {"left", "right"} and set(f["iris"]["left"]) == {"center", "diameter_px"}
    assert set(f["pose"]) == {"yaw", "pitch", "roll"}
    assert set(f["zones"]) == set(ZONE_NAMES)
    assert all(set(z) == {"visible", "polygon"} and 0 <= z["visible"] <= 1 for z in f["zones"].values())
    assert cv2.imread(str(ov)).shape == astronaut.shape


def test_cli_no_face_exit_1_one_line(tmp_path):
    p = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(p)
    r = CliRunner().invoke(cli, ["face", str(p), "--json"])
    assert r.exit_code == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no face found" in lines[0] and str(p) in lines[0]


@pytest.mark.parametrize("content", [None, b"not a tflite model"])
def test_bad_model_file_is_named(tmp_path, monkeypatch, astronaut, content):
    if content is not None:
        (tmp_path / "face_detection_short_range.tflite").write_bytes(content)
    monkeypatch.setattr("photokit.faces.mesh._models.MODEL_DIR", tmp_path)
    with pytest.raises(PhotokitError, match="face_detection_short_range.tflite"):
        find_faces(astronaut)
