"""Haar face detection: a real face is found; a known scale bounds the face size."""

import cv2
import numpy as np
import pytest
import skimage.data

from photokit.faces.haar import FACE_BOX_MM, detect_faces
from photokit.synth import render_skin


def _astronaut_gray():
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)


def test_astronaut_face_and_eyes_found():
    faces = detect_faces(_astronaut_gray())
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert 150 < x < 200 and 50 < y < 90 and 80 < w < 110
    (lx, ly), (rx, ry) = faces[0].eyes
    assert lx < rx and abs(ly - ry) < 10 and 35 < faces[0].interocular_px < 55


def test_known_scale_keeps_human_sized_faces_only():
    g = _astronaut_gray()
    plain = detect_faces(g)[0]
    # 1.4 mm/px (the astronaut's face-estimated scale): a 130 mm box, kept, unchanged
    assert detect_faces(g, mm_per_px=1.4) == [plain]
    # at 0.2 mm/px the same box would be 19 mm wide, at 8 mm/px 740 mm: no face
    assert FACE_BOX_MM[0] > plain.box[2] * 0.2 and FACE_BOX_MM[1] < plain.box[2] * 8
    assert detect_faces(g, mm_per_px=0.2) == [] and detect_faces(g, mm_per_px=8.0) == []


def test_no_phantom_face_on_a_skin_close_up_of_known_scale():
    im = render_skin(seed=7, width=1600, height=1200)
    g = cv2.cvtColor(np.ascontiguousarray(im.pixels), cv2.COLOR_RGB2GRAY)
    # a close-up at 0.07 mm/px is 112 mm wide: no human face fits, nothing is searched
    assert detect_faces(g, mm_per_px=im.truth.mm_per_px) == []


class _FakeEyeCascade:
    """Eye 'detections' per minNeighbors: lets the pair logic be checked exactly."""

    def __init__(self, by_neighbours):
        self.by_neighbours = by_neighbours

    def detectMultiScale(self, img, scaleFactor, minNeighbors, minSize):  # noqa: N802, N803
        return np.array(self.by_neighbours.get(minNeighbors, []), int).reshape(-1, 4)


def test_eyes_missed_by_the_strict_pass_are_taken_from_the_looser_one(monkeypatch):
    """A smile narrows the eyes: the strict pass finds one, the looser pass both. A pair
    of the looser pass whose distance is no plausible share of the face box is refused."""
    import photokit.faces.haar as F

    box = (0, 0, 240, 240)            # 240 px: the eye search runs at scale 1
    gray = np.zeros((240, 240), np.uint8)
    left, right = (50, 80, 20, 20), (150, 84, 20, 20)     # centres (60, 90), (160, 94)
    monkeypatch.setattr(F, "_cascade", lambda name: _FakeEyeCascade({5: [right], 3: [left, right]}))
    assert F._detect_eyes(gray, box) == ((60.0, 90.0), (160.0, 94.0))
    # the strict pass's pair wins when it has one
    strict = (40, 82, 20, 20)
    monkeypatch.setattr(F, "_cascade", lambda name: _FakeEyeCascade({5: [strict, right], 3: [left, right]}))
    assert F._detect_eyes(gray, box) == ((50.0, 92.0), (160.0, 94.0))
    # looser candidates 20 px apart (a share of 0.08 of the box: a nostril pair, a pore)
    close = [(105, 80, 20, 20), (125, 80, 20, 20)]
    monkeypatch.setattr(F, "_cascade", lambda name: _FakeEyeCascade({5: [], 3: close}))
    assert F._detect_eyes(gray, box) == ()
    # the strict pass is taken as it was, without the span test
    monkeypatch.setattr(F, "_cascade", lambda name: _FakeEyeCascade({5: close, 3: []}))
    assert F._detect_eyes(gray, box) == ((115.0, 90.0), (135.0, 90.0))


def test_face_is_the_python_api_of_the_face_command(tmp_path, astronaut):
    """SPEC's Python API lists `face`: the same document as ``photokit face --json``, an
    empty list where there is no face, one clear error for a greyscale photo."""
    import json

    from click.testing import CliRunner
    from PIL import Image

    import photokit
    from photokit.cli.main import cli

    p = tmp_path / "a.png"
    Image.fromarray(astronaut).save(p)
    found = photokit.face(p)
    assert len(found.faces) == 1 and found.scale.source in ("iris", "face")
    r = CliRunner().invoke(cli, ["face", str(p), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == json.loads(json.dumps(found.to_dict()))
    assert found.overlay().shape == astronaut.shape
    assert photokit.face(np.full((200, 300, 3), 128, np.uint8)).faces == []
    with pytest.raises(photokit.PhotokitError, match="greyscale"):
        photokit.face(astronaut[..., 0])
