"""Haar face detection: a real face is found; a known scale bounds the face size."""

import cv2
import numpy as np
import skimage.data

from photokit.face import FACE_BOX_MM, detect_faces
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
