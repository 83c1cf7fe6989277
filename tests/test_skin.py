"""Skin mask and face zones against synthetic truth and real portraits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from photokit import synth
from photokit.faces.haar import Face, detect_faces
from photokit.faces.skin import ZONES, face_zones, skin_mask


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b)))


@pytest.mark.parametrize("ita,card", [(60, False), (30, True), (0, True), (-30, False), (-50, True)])
def test_mask_matches_synthetic_skin_across_tones(ita, card):
    im = synth.render_skin(seed=4, ita=ita, card=card, width=640, height=480)
    truth = im.mask("skin")
    m = skin_mask(im.pixels)
    assert m.shape == truth.shape and m.dtype == bool
    assert _iou(m, truth) >= 0.9, (ita, _iou(m, truth))
    if card:  # no pixel of the card counts as skin
        corners = np.asarray(im.truth.to_dict()["card"]["corners"], np.float32)
        cm = np.zeros(truth.shape, np.uint8)
        cv2.fillConvexPoly(cm, np.round(corners).astype(np.int32), 1)
        cm = cv2.erode(cm, np.ones((5, 5), np.uint8)) > 0  # 2 px off the anti-aliased outline
        assert np.count_nonzero(m & cm) < 0.01 * np.count_nonzero(cm)


def test_a_small_face_in_a_large_photo_still_gives_its_skin():
    # the cheeks of a face 1/10 of the frame wide hold fewer working pixels than the
    # whole-photo minimum: the model falls back to all candidates instead of giving up
    im = synth.render_skin(seed=4, width=1600, height=1200)
    truth = im.mask("skin")
    m = skin_mask(im.pixels, faces=[Face((400, 300, 160, 160), ())])
    assert _iou(m, truth) >= 0.9


def test_exclude_is_respected():
    im = synth.render_skin(seed=4, width=480, height=360)
    ex = np.zeros(im.pixels.shape[:2], bool)
    ex[:, :200] = True
    m = skin_mask(im.pixels, exclude=ex)
    assert not m[:, :200].any() and m[:, 200:].mean() > 0.5


def test_astronaut_face_in_suit_and_background_out():
    img = skimage.data.astronaut()
    faces = detect_faces(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
    assert faces
    m = skin_mask(img, faces=faces)
    x, y, w, h = faces[0].box
    z = face_zones(img.shape, faces[0])
    cheeks = (z["cheek_left"] | z["cheek_right"])
    assert m[cheeks].mean() > 0.8
    assert m[z["nose"]].mean() > 0.8 and m[z["chin"]].mean() > 0.5
    # her fringe covers much of the forehead zone: hair is not skin
    assert 0.1 < m[z["forehead"]].mean() < 0.6
    # eyes, lips removed by geometry
    for ex, ey in faces[0].eyes:
        assert not m[int(ey), int(ex)]
    # the white suit / shuttle and the grey background on the right are not skin
    assert m[:, 330:].mean() < 0.03
    # the orange suit below the helmet ring
    assert m[400:, 100:330].mean() < 0.1


def test_no_skin_photos_give_an_empty_mask():
    grey = np.full((300, 400, 3), 128, np.uint8)
    grey += np.random.default_rng(0).integers(0, 6, grey.shape, dtype=np.uint8)
    assert skin_mask(grey).mean() < 0.01
    blue = np.zeros((300, 400, 3), np.uint8)
    blue[...] = (40, 90, 200)
    assert skin_mask(blue).mean() < 0.01
    g = cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2RGB)
    assert skin_mask(g).mean() < 0.01


def test_face_zones_geometry():
    f = Face((100, 100, 200, 200), ((160.0, 180.0), (240.0, 180.0)))
    z = face_zones((500, 400, 3), f)
    assert set(z) == set(ZONES)
    for name, m in z.items():
        assert m.shape == (500, 400) and m.any(), name
    ys, xs = np.nonzero(z["forehead"])
    assert ys.max() < 180 and abs(xs.mean() - 200) < 2
    # subject's left cheek is on the image right, symmetric with the other
    assert np.nonzero(z["cheek_left"])[1].mean() > 200 > np.nonzero(z["cheek_right"])[1].mean()
    assert z["cheek_left"].sum() == z["cheek_right"].sum()
    assert np.nonzero(z["chin"])[0].min() > np.nonzero(z["nose"])[0].max()
    # zones do not overlap (periorbital vs nose may touch only at the eye line)
    assert not (z["cheek_left"] & z["nose"]).any()
    assert not (z["forehead"] & z["periorbital"]).any()
    # rotation follows the eyes
    f2 = Face((100, 100, 200, 200), ((160.0, 160.0), (240.0, 200.0)))
    z2 = face_zones((500, 400, 3), f2)
    assert np.nonzero(z2["cheek_left"])[0].mean() > np.nonzero(z["cheek_left"])[0].mean()


def test_face_zones_without_eyes_use_the_box():
    f = Face((100, 100, 200, 200))
    z = face_zones((400, 400), f)
    assert all(m.any() for m in z.values())
    ys, xs = np.nonzero(z["nose"])
    assert abs(xs.mean() - 200) < 2 and 180 < ys.mean() < 260


def test_skin_toned_backdrop_beside_the_head_is_dropped_a_hand_below_is_kept():
    """With a face whose eyes were found, a skin-coloured patch beside the head (a
    painting, drapery) is not the person's skin; one below the face (a hand) is. Without
    eyes (Haar's phantom faces on plain skin) nothing is dropped."""
    rgb = skimage.data.astronaut().copy()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    faces = [f for f in detect_faces(gray) if len(f.eyes) == 2]
    assert faces
    x, y, w, h = faces[0].box
    cheek = rgb[y + int(0.55 * h): y + int(0.7 * h), x + int(0.25 * w): x + int(0.4 * w)]
    tone = np.median(cheek.reshape(-1, 3), axis=0).astype(np.uint8)
    beside = (slice(y + 5, y + 45), slice(x + w + 50, x + w + 100))   # at eye height, right
    below = (slice(y + 2 * h, y + 2 * h + 40), slice(60, 110))        # a hand below the face
    for sl in (beside, below):
        rgb[sl] = tone
    m = skin_mask(rgb, faces=faces)
    assert m[below].mean() > 0.9
    assert m[beside].mean() < 0.05
    # the same patches with a face whose eyes were not found: no anchoring
    eyeless = [Face(faces[0].box)]
    assert skin_mask(rgb, faces=eyeless)[beside].mean() > 0.9


def test_lips_beyond_the_fixed_ellipse_are_removed_by_colour(monkeypatch):
    """The astronaut smiles: lip pixels outside the fixed lip ellipse are found by their
    redness (LIP_Z SDs above the skin model) in the mouth window, and only there."""
    import photokit.faces.skin as S

    rgb = skimage.data.astronaut()
    faces = [f for f in detect_faces(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)) if len(f.eyes) == 2]
    assert faces
    with_rule = S.skin_mask(rgb, faces=faces)
    monkeypatch.setattr(S, "LIP_Z", np.inf)
    without = S.skin_mask(rgb, faces=faces)
    removed = without & ~with_rule
    assert not (with_rule & ~without).any()
    assert removed.sum() > 30
    fu, fv = S._face_coords(rgb.shape[:2], faces[0])
    assert ((np.abs(fu) < 0.7) & (fv > 0.7) & (fv < 1.8))[removed].all()   # the mouth only
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    ncr = 100 * (ycc[..., 1] - 128) / np.maximum(ycc[..., 0], 8)
    cheek = with_rule & (np.abs(fu) > 0.3) & (np.abs(fu) < 0.8) & (fv > 0.45) & (fv < 0.95)
    # redder than the skin: the lips themselves by LIP_Z SDs, their fringe less
    assert np.percentile(ncr[removed], 90) > np.median(ncr[cheek]) + 2.5 * ncr[cheek].std()
    assert np.median(ncr[removed]) > np.median(ncr[cheek]) + 5


def test_backdrop_joined_to_the_head_is_cut_and_eyeless_phantoms_cut_no_holes():
    """A skin-toned backdrop beside the head that touches the face (through hair or an
    ear) is one component with it, so anchoring keeps it: the person's region
    (`HEAD_HALF_WIDTH_D` around the face above the chin line) cuts it off. An eyeless
    detection beside a face with eyes (Haar on a chin or collar) adds no eye, brow or lip
    holes."""
    import photokit.faces.skin as S

    rgb = skimage.data.astronaut().copy()
    faces = [f for f in detect_faces(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)) if len(f.eyes) == 2]
    assert faces
    f = faces[0]
    x, y, w, h = f.box
    cheek = rgb[y + int(0.55 * h): y + int(0.7 * h), x + int(0.25 * w): x + int(0.4 * w)]
    tone = np.median(cheek.reshape(-1, 3), axis=0).astype(np.uint8)
    # a backdrop right of the head at eye height, joined to the cheek by a skin-toned strip
    rgb[y + 20: y + 60, x + w + 40: x + w + 120] = tone
    rgb[y + 50: y + 58, x + int(0.6 * w): x + w + 40] = tone
    m = skin_mask(rgb, faces=faces)
    fu, fv = S._face_coords(rgb.shape[:2], f)
    backdrop = np.zeros(m.shape, bool)
    backdrop[y + 20: y + 60, x + w + 40: x + w + 120] = True
    assert (np.abs(fu[backdrop]) > S.HEAD_HALF_WIDTH_D).all()
    assert m[backdrop].mean() == 0
    # without the person's region it is kept: the test can fail
    wide = pytest.MonkeyPatch.context()
    with wide as mp:
        mp.setattr(S, "HEAD_HALF_WIDTH_D", 100.0)
        assert S.skin_mask(rgb, faces=faces)[backdrop].mean() > 0.9
    # an eyeless box on the chin beside the real face changes nothing
    phantom = Face((x + w // 4, y + int(0.8 * h), w // 2, w // 2))
    assert np.array_equal(skin_mask(rgb, faces=[f, phantom]), m)


def test_person_region_follows_a_tilted_head_and_keeps_all_below_the_chin():
    """Below the chin point every image row is kept, whatever the head's roll (a shoulder
    beside a tilted head); beside the head, above the chin, nothing is."""
    import photokit.faces.skin as S

    d, roll = 60.0, np.deg2rad(25.0)
    mid = np.array([300.0, 200.0])
    u = np.array([np.cos(roll), np.sin(roll)])
    eyes = tuple(map(tuple, (mid - d / 2 * u, mid + d / 2 * u)))
    face = Face((230, 120, 140, 160), eyes)
    region = S._person([face], (600, 600), 1.0)
    shoulder = (int(mid[1] + 2.6 * d), int(mid[0] + 2.5 * d))     # (row, col): v = 1.3 there
    beside = (int(mid[1]), int(mid[0] + 2.2 * d))
    assert region[shoulder] and not region[beside]
    v = np.array([-u[1], u[0]])
    chin_row = mid[1] + S.CHIN_D * d * v[1]
    assert region[int(np.ceil(chin_row)) + 1:].all() and not region[: int(mid[1]), 590].any()


def test_neck_skin_is_bounded_by_the_person_not_by_a_band(astronaut):
    """Below the jaw, skin colour counts on the person only: the astronaut's head, cut just
    below the chin and pasted on a backdrop of her own cheek's colour, keeps none of the
    backdrop, though it touches her jaw (a band below the jaw took 8 % of what lies
    below the chin)."""
    from photokit.faces.mesh import find_faces
    from photokit.faces.skin import face_outline, face_skin_mask
    face = find_faces(astronaut)[0]
    colour = np.median(astronaut[face.zone_masks(astronaut.shape)["cheek_left"]], axis=0)
    rng = np.random.default_rng(1)
    canvas = np.clip(colour + rng.normal(0, 3, (1100, 900, 3)), 0, 255).astype(np.uint8)
    y0, x0 = 100, 200
    # only the head of the photo (rows down to 4 px below the chin), on the backdrop
    chin_y = int(face.landmarks[152, 1]) + 4
    canvas[y0:y0 + chin_y, x0:x0 + 512] = astronaut[:chin_y]
    faces = find_faces(canvas)
    assert len(faces) == 1
    mask = face_skin_mask(canvas, faces)
    backdrop = np.ones(canvas.shape[:2], bool)
    backdrop[y0:y0 + chin_y, x0:x0 + 512] = False
    assert mask[backdrop].mean() < 0.002 and mask[y0 + chin_y:].mean() < 0.002
    assert mask[face_outline(faces[0], canvas.shape)].mean() > 0.4
