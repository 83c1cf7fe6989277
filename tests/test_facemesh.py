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


def test_networks_load_one_at_a_time(monkeypatch):
    """OpenCV's TFLite importer fills its operator table on first use without a lock, so
    two threads loading their first networks at once can refuse a valid file: photokit
    loads one network at a time, each once."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from photokit.faces.mesh import _models as M

    class Net:            # what the fake reader returns: a loaded (non-empty) network
        def empty(self):
            return False

    busy, most, reads, guard = [0], [0], [], threading.Lock()

    def read(path):
        with guard:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
            reads.append(path)
        time.sleep(0.02)
        with guard:
            busy[0] -= 1
        return Net()

    M._read_net.cache_clear()
    monkeypatch.setattr(M.cv2.dnn, "readNetFromTFLite", read)
    paths = [str(M.model_path(n)) for n in (M.DETECTOR, M.MESH, M.IRIS, M.SELFIE)] * 3
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            nets = list(pool.map(M.load_net, paths))
    finally:
        M._read_net.cache_clear()       # the real networks again for the other tests
    assert most[0] == 1 and sorted(reads) == sorted(set(paths))
    assert all(isinstance(n, Net) for n in nets)


def _eye(diameter: float, *, blur: float = 0.0, ss: int = 8, catchlight: bool = True) -> np.ndarray:
    """A rendered eye of known horizontal visible iris diameter (px): a brown iris with a
    dark pupil on a white sclera, lids covering the iris's top and bottom, a catchlight;
    drawn `ss` times larger and area-averaged (anti-aliased), then blurred by `blur` px."""
    side = int(4 * diameter) + 8
    big = np.zeros((side * ss, side * ss, 3), np.uint8)
    big[:] = (205, 150, 125)                                   # skin
    c = (side * ss / 2, side * ss / 2)
    s = 16 * ss
    cv2.ellipse(big, (int(c[0] * 16), int(c[1] * 16)), (int(1.3 * diameter * s), int(0.45 * diameter * s)),
                0, 0, 360, (235, 230, 225), -1, cv2.LINE_AA, 4)   # sclera, lid gap 0.9 d
    iris_mask = np.zeros(big.shape[:2], np.uint8)
    cv2.circle(iris_mask, (int(c[0] * 16), int(c[1] * 16)), int(diameter / 2 * s), 1, -1, cv2.LINE_AA, 4)
    lids = np.zeros_like(iris_mask)
    cv2.ellipse(lids, (int(c[0] * 16), int(c[1] * 16)), (int(1.3 * diameter * s), int(0.45 * diameter * s)),
                0, 0, 360, 1, -1, cv2.LINE_AA, 4)
    big[(iris_mask > 0) & (lids > 0)] = (90, 55, 35)
    cv2.circle(big, (int(c[0] * 16), int(c[1] * 16)), int(diameter / 6 * s), (15, 10, 10), -1, cv2.LINE_AA, 4)
    if catchlight:
        cv2.circle(big, (int((c[0] + 0.3 * diameter * ss) * 16), int((c[1] - 0.2 * diameter * ss) * 16)),
                   int(0.08 * diameter * s), (255, 255, 255), -1, cv2.LINE_AA, 4)
    img = cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(img, (0, 0), blur) if blur > 0 else img


@pytest.mark.parametrize(("diameter", "blur"), [(12.0, 0.0), (12.0, 1.0), (20.0, 0.0), (20.0, 1.0),
                                               (20.0, 2.0), (33.3, 0.0), (33.3, 2.0), (60.0, 0.0),
                                               (60.0, 2.0)])
def test_limbus_fit_recovers_a_rendered_iris(diameter, blur):
    from photokit.faces.mesh import fit_limbus
    img = _eye(diameter, blur=blur)
    c = (img.shape[1] - 1) / 2                                 # the pixel-centre convention
    # a start as poor as the iris model's (its diameter off by -15..+15 %, centre by 5 %)
    for guess, shift in ((0.85, (0.05, -0.04)), (1.15, (-0.05, 0.04))):
        start = (c + shift[0] * diameter, c + shift[1] * diameter)
        lim = fit_limbus(img, start, guess * diameter / 2, (1.0, 0.0))
        assert lim is not None
        # optical blur moves a curved edge inwards by sigma^2 / (2 R) a side: 2 blur^2 / d
        tol = 0.25 + 0.01 * diameter + 2 * blur ** 2 / diameter
        assert abs(lim.diameter_px - diameter) <= tol, (lim.diameter_px, diameter)
        assert abs(lim.center[0] - c) <= 0.3 + 0.01 * diameter
        assert 0 < lim.sd_px < 0.05 * diameter


def test_limbus_fit_follows_a_tilted_eye_axis():
    from photokit.faces.mesh import fit_limbus
    img = _eye(30.0, blur=1.0)
    c = (img.shape[1] - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), 20, 1.0)               # eye and lids tilted by 20 degrees
    tilted = cv2.warpAffine(img, m, img.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    axis = (np.cos(np.radians(-20)), np.sin(np.radians(-20)))
    lim = fit_limbus(tilted, (c, c), 14.0, axis)
    assert lim is not None and abs(lim.diameter_px - 30.0) < 0.5


def test_limbus_fit_gives_up_without_an_edge():
    from photokit.faces.mesh import fit_limbus
    flat = np.full((80, 80, 3), 128, np.uint8)
    assert fit_limbus(flat, (40, 40), 12.0, (1.0, 0.0)) is None


def test_person_probability_marks_the_person_not_the_scene(astronaut, astro_faces):
    from photokit.faces.mesh import person_probability
    p = person_probability(astronaut, astronaut.shape)
    assert p.shape == astronaut.shape[:2] and p.dtype == np.float32
    f = astro_faces[0]
    x, y = (int(v) for v in np.mean([f.iris_left.center, f.iris_right.center], axis=0))
    assert p[y + 20, x] > 0.9                               # the face
    assert p[400:500, 150:350].mean() > 0.9                 # the suit
    assert p[100:300, 420:500].mean() < 0.1                 # the shuttle beside her
    assert p[:40, :40].mean() < 0.1 and p[:40, -40:].mean() < 0.1
    grey = np.full((300, 400, 3), 128, np.uint8)
    assert person_probability(grey, (30, 40)).max() < 0.5   # nobody; any output grid
