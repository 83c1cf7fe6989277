"""photokit.registration.align: known transforms recovered, the subject followed, real change kept,
unrelated pairs refused, and the ``photokit align`` command."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner
from numpy.testing import assert_allclose

from photokit.cli.main import cli
from photokit.registration.align import Alignment, align
from photokit.registration.subject import find_subject


def _corners(h, box):
    x0, y0, x1, y1 = box
    c = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], float).T
    a = np.linalg.inv(h) @ c
    return (a[:2] / a[2]).T


def _similarity(deg, scale, tx, ty, w, h, persp=(0.0, 0.0)):
    a = np.deg2rad(deg)
    c = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1.0]])
    m = np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty],
                  [persp[0], persp[1], 1.0]])
    return c @ m @ np.linalg.inv(c)


def _warp(img, h):
    """AFTER(x) = BEFORE(H x): H maps AFTER pixels to BEFORE pixels (SPEC convention)."""
    return cv2.warpPerspective(img, h, img.shape[1::-1], flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)


def _relight(rgb, gain=(1.25, 1.1, 0.9), jpeg=88):
    """Exposure and white-balance change in linear light, then JPEG."""
    lin = (rgb.astype(np.float32) / 255) ** 2.2 * np.float32(gain)
    out = (np.clip(lin, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8)
    _, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def head(astronaut):
    sub = find_subject(cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY))
    assert sub.kind == "face"
    return sub


def test_known_homography_whole_frame(astronaut):
    h, w = astronaut.shape[:2]
    H = _similarity(6, 1.06, 9, -7, w, h, persp=(4e-5, -3e-5))
    after = _relight(_warp(astronaut, H))
    r = align(astronaut, after)
    assert r.status == "ok", r.reason
    # scikit-image style: the recovered homography, normalised, against the truth
    hn, tn = r.homography / r.homography[2, 2], H / H[2, 2]
    assert_allclose(hn[:2, :2], tn[:2, :2], atol=3e-3)
    assert_allclose(hn[2, :2], tn[2, :2], atol=1e-5)
    assert_allclose(_corners(r.homography, (0, 0, w, h)), _corners(H, (0, 0, w, h)), atol=0.5)
    assert r.model == "homography" and r.confidence > 0.9 and r.overlap > 0.85
    assert r.residual_px < 1.0


def test_similarity_model_chosen_for_a_similarity(astronaut):
    h, w = astronaut.shape[:2]
    H = _similarity(-4, 0.95, -6, 5, w, h)
    r = align(astronaut, _warp(astronaut, H), refine=False)
    assert r.ok and r.model == "similarity"
    assert_allclose(_corners(r.homography, (0, 0, w, h)), _corners(H, (0, 0, w, h)), atol=0.5)


def test_subject_only_motion_follows_the_patient(astronaut, head):
    """The head moves, the room does not: the face must be aligned, not the wall."""
    h, w = astronaut.shape[:2]
    (cx, cy), (ax, ay) = head.ellipse
    H = _similarity(5, 1.04, 14, -10, w, h)
    H = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]]) @ _similarity(5, 1.04, 14, -10, 0, 0) @ \
        np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    m = np.zeros((h, w), np.float32)
    cv2.ellipse(m, (int(cx), int(cy)), (int(1.3 * ax), int(1.3 * ay)), 0, 0, 360, 1.0, -1)
    m = cv2.GaussianBlur(m, (0, 0), 4)
    m_after = cv2.warpPerspective(m, H, (w, h), flags=cv2.WARP_INVERSE_MAP)[..., None]
    after = (m_after * _warp(astronaut, H) + (1 - m_after) * astronaut).astype(np.uint8)
    r = align(astronaut, _relight(after))
    assert r.ok, r.reason
    assert r.subject == "face"          # the still background was not taken as the subject
    box = head.box
    assert_allclose(_corners(r.homography, box), _corners(H, box), atol=1.0)
    # the whole-frame answer (identity, the wall) would be >= 10 px off on the face
    assert np.abs(_corners(np.eye(3), box) - _corners(H, box)).max() > 10


def _head_turn(img, ellipse, theta_deg):
    """AFTER(x) = BEFORE(x + D(x)): a head turn about a vertical cylinder (smooth field)."""
    (cx, cy), (ax, ay) = ellipse
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = np.clip((xx - cx) / (1.15 * ax), -1, 1)
    dx = 1.15 * ax * (np.sin(np.arcsin(u) + np.deg2rad(theta_deg)) - u)
    rho = np.sqrt(((xx - cx) / (1.15 * ax)) ** 2 + ((yy - cy) / (1.3 * ay)) ** 2)
    wgt = np.clip((1.35 - rho) / 0.35, 0, 1)
    dx = (dx * wgt * wgt * (3 - 2 * wgt)).astype(np.float32)
    out = cv2.remap(img, xx + dx, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return out, dx


def test_head_turn_dense_field_and_new_spot_survives(astronaut, head):
    """The dense field removes a head turn, but a new spot and a redness patch stay put."""
    h, w = astronaut.shape[:2]
    after, dx = _head_turn(astronaut, head.ellipse, 8.0)
    (cx, cy), (ax, ay) = head.ellipse
    # real change on AFTER only: a dark spot (r = 4 px) on the cheek, a redness patch
    spot = (int(cx - 0.35 * ax), int(cy + 0.25 * ay))
    after = after.copy()
    cv2.circle(after, spot, 4, (95, 60, 50), -1, lineType=cv2.LINE_AA)
    patch = (int(cx + 0.15 * ax), int(cy + 0.35 * ay), 18)
    px, py, ps = patch
    red = after[py:py + ps, px:px + ps].astype(np.int16)
    red[..., 0] += 35
    red[..., 1] -= 10
    after[py:py + ps, px:px + ps] = np.clip(red, 0, 255).astype(np.uint8)

    glob = align(astronaut, after, refine=False)
    r = align(astronaut, after)
    assert r.ok and r.flow is not None and r.flow_px > 0.2

    # displacement left in the inner face, against the known field (truth)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    inner = (((xx - cx) / (0.8 * ax)) ** 2 + ((yy - cy) / (0.8 * ay)) ** 2) < 1

    def residual(al):
        d = al.displacement() if al.flow is not None else np.zeros((h, w, 2), np.float32)
        hi = np.linalg.inv(al.homography)
        q = np.stack([xx + d[..., 0], yy + d[..., 1], np.ones_like(xx)], -1) @ hi.T
        qa, qb = (q[..., 0] / q[..., 2]).astype(np.float32), (q[..., 1] / q[..., 2]).astype(np.float32)
        return np.hypot(qa + cv2.remap(dx, qa, qb, cv2.INTER_LINEAR) - xx, qb - yy)[inner]

    assert np.median(residual(r)) < 0.5
    assert np.median(residual(r)) < 0.5 * np.median(residual(glob))

    aligned = r.warp(after).astype(np.float32)
    base = r.warp(_head_turn(astronaut, head.ellipse, 8.0)[0]).astype(np.float32)
    diff = np.abs(aligned - base).sum(axis=2)          # what changed, on BEFORE's grid
    # where the spot belongs: AFTER's spot centre carried to BEFORE by the true motion
    sx, sy = spot[0] + dx[spot[1], spot[0]], spot[1]
    lab, n, stats, cents = cv2.connectedComponentsWithStats((diff > 60).astype(np.uint8))
    k = 1 + int(np.argmin(np.hypot(cents[1:, 0] - sx, cents[1:, 1] - sy)))
    assert np.hypot(cents[k, 0] - sx, cents[k, 1] - sy) < 1.5
    assert 0.7 * np.pi * 16 < stats[k, cv2.CC_STAT_AREA] < 1.4 * np.pi * 16 * 1.3
    # the change did not bend the field: same alignment as without it, at the spot
    r0 = align(astronaut, _head_turn(astronaut, head.ellipse, 8.0)[0])
    box = (int(sx) - 6, int(sy) - 6, int(sx) + 7, int(sy) + 7)
    assert np.abs(_to_after(r, box) - _to_after(r0, box)).max() < 0.3

    # the redness patch keeps its size and strength (mean red gain inside, nothing outside)
    red_gain = aligned[..., 0] - base[..., 0]
    inside = red_gain[py + 3:py + ps - 3, int(px + 3 + dx[py, px]):int(px + ps - 3 + dx[py, px])]
    assert inside.mean() > 25
    ring = np.zeros((h, w), bool)
    ring[py - 10:py + ps + 10, px - 10:px + ps + 10] = True
    ring[py - 4:py + ps + 4, px - 4:px + ps + 4] = False
    assert np.abs(red_gain[ring]).mean() < 4


def _to_after(al, box):
    """AFTER positions that BEFORE pixels in `box` take under the full alignment."""
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    d = al.displacement(box) if al.flow is not None else np.zeros(xx.shape + (2,))
    q = np.stack([xx + d[..., 0], yy + d[..., 1], np.ones_like(xx)], -1) @ np.linalg.inv(al.homography).T
    return q[..., :2] / q[..., 2:]


def _oblique(w, h, k, deg, s):
    """AFTER -> BEFORE homography: BEFORE's frame seen as a trapezoid in AFTER (a plane
    turned about a vertical axis, right side `k` x as tall), rotated `deg` and scaled `s`."""
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    q = np.float64([[0, 0], [w * (0.5 + 0.5 * k), h * (1 - k) / 2], [w * (0.5 + 0.5 * k), h * (1 + k) / 2],
                    [0, h]])
    a = np.deg2rad(deg)
    r = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    q = ((q - q.mean(0)) @ r.T + [w / 2, h / 2]).astype(np.float32)
    return np.linalg.inv(cv2.getPerspectiveTransform(src, q))


@pytest.mark.parametrize("k, deg, s", [(1.0, 45, 0.38),    # zoomed out 2.6x and turned (boat 1->6)
                                        (0.5, 10, 0.9),     # strong viewpoint change (graf)
                                        (0.6, 30, 0.5)])    # both
def test_planar_scene_wide_baseline(k, deg, s):
    """Planar scene (no face) under zoom, rotation and viewpoint change: recovered exactly,
    with a full homography when there is perspective."""
    img = skimage.data.coffee()
    h, w = img.shape[:2]
    H = _oblique(w, h, k, deg, s)
    after = cv2.warpPerspective(img, H, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    r = align(img, _relight(after))
    assert r.ok, r.reason
    assert r.subject == "frame" and r.confidence > 0.9
    if k < 1:
        assert r.model == "homography"
    hn, tn = r.homography / r.homography[2, 2], H / H[2, 2]
    assert_allclose(hn[2, :2] * w, tn[2, :2] * w, atol=2e-3)
    # error in AFTER pixels at BEFORE's corners (the usual score), far below the 3 px tolerance
    assert_allclose(_corners(r.homography, (0, 0, w, h)), _corners(H, (0, 0, w, h)), atol=0.5)


def test_unrelated_pairs_refused(astronaut):
    for other in (skimage.data.coffee(), skimage.data.chelsea()):
        r = align(astronaut, other)
        assert r.status == "failed" and r.reason and r.confidence < 0.2
        assert r.to_dict()["status"] == "failed"


def test_same_room_other_face_refused(astronaut, head):
    """Background, hair and ears identical, the inner face another's: refused."""
    h, w = astronaut.shape[:2]
    (cx, cy), (ax, ay) = head.ellipse
    cat = cv2.resize(skimage.data.chelsea(), (w, h), interpolation=cv2.INTER_AREA)
    m = np.zeros((h, w), np.float32)
    cv2.ellipse(m, (int(cx), int(cy)), (int(0.65 * ax), int(0.65 * ay)), 0, 0, 360, 1.0, -1)
    m = cv2.GaussianBlur(m, (0, 0), 3)[..., None]
    other = (m * cat + (1 - m) * astronaut).astype(np.uint8)
    r = align(astronaut, other)
    # hair, ears and room match (enough consistent features): the identity check refuses
    assert r.status == "failed" and "does not match" in r.reason and r.ncc_core < 0.3


def test_different_skin_textures_refused(rng):
    """Two skins with the same statistics but different structure (another patient)."""
    def skin(seed):
        g = np.random.default_rng(seed)
        base = np.array([200, 150, 130], np.float32)
        lo = cv2.GaussianBlur(g.normal(0, 1, (400, 500)).astype(np.float32), (0, 0), 12) * 60
        hi = cv2.GaussianBlur(g.normal(0, 1, (400, 500)).astype(np.float32), (0, 0), 1.5) * 25
        img = base + (lo + hi)[..., None] * np.float32([1.0, 0.9, 0.8])
        return np.clip(img, 0, 255).astype(np.uint8)
    same = align(skin(1), _relight(_warp(skin(1), _similarity(3, 1.02, 5, 4, 500, 400))))
    assert same.ok and same.subject == "frame"
    other = align(skin(1), skin(2))
    assert other.status == "failed"


def test_too_little_overlap_refused(astronaut):
    r = align(astronaut[:, :260], astronaut[:, 230:])
    assert r.status == "failed"


def test_roi_carried_and_valid_mask(astronaut):
    h, w = astronaut.shape[:2]
    H = _similarity(7, 1.05, 10, 6, w, h)
    after = _warp(astronaut, H)
    r = align(astronaut, after, refine=False)
    disc = np.zeros((h, w), bool)
    cv2.circle(disc.view(np.uint8), (300, 330), 40, 1, -1)
    on_after = r.roi_to_after(disc)
    ys, xs = np.nonzero(on_after)
    centre_after = np.linalg.inv(H) @ [300, 330, 1]
    assert_allclose([xs.mean(), ys.mean()], centre_after[:2] / centre_after[2], atol=1.0)
    assert abs(on_after.sum() - disc.sum() / 1.05 ** 2) < 0.05 * disc.sum()
    valid = r.valid_mask()
    assert valid.shape == (h, w) and 0.8 < valid.mean() < 1.0
    assert isinstance(r, Alignment)


def test_roi_to_after_over_its_reach_equals_the_whole_grid():
    """`roi_to_after` works only over AFTER's pixels that can land on the mask; the result
    is the same as carrying every AFTER pixel back (x = H a - flow(H a), nearest)."""
    rng = np.random.default_rng(5)
    hb, wb, ha, wa = 300, 400, 320, 380
    hom = np.array([[1.03, 0.02, -12.0], [-0.015, 0.98, 9.0], [2e-5, -1e-5, 1.0]])
    flow = cv2.GaussianBlur(rng.normal(0, 1, (60, 80, 2)).astype(np.float32), (0, 0), 5)
    flow = 3.0 * flow / np.abs(flow).max() + np.float32([6.0, -5.0])   # 6, -5 px +- 3, smooth
    grid = np.array([[0.2, 0, 0.0], [0, 0.2, 0.0], [0, 0, 1.0]])
    al = Alignment("ok", None, hom, 1.0, 100, 0.1, 1.0, (hb, wb), (ha, wa), flow=flow, flow_grid=grid)
    for box in ((150, 120, 40, 30), (0, 0, 25, 300), (370, 280, 30, 20)):
        mask = np.zeros((hb, wb), bool)
        x, y, w, h = box
        mask[y:y + h, x:x + w] = True
        mask &= rng.random((hb, wb)) < 0.7
        xa, ya = np.meshgrid(np.arange(wa, dtype=np.float32), np.arange(ha, dtype=np.float32))
        den = hom[2, 0] * xa + hom[2, 1] * ya + hom[2, 2]
        yx = ((hom[0, 0] * xa + hom[0, 1] * ya + hom[0, 2]) / den).astype(np.float32)
        yy = ((hom[1, 0] * xa + hom[1, 1] * ya + hom[1, 2]) / den).astype(np.float32)
        f = cv2.remap(flow, yx * 0.2, yy * 0.2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        whole = cv2.remap(mask.astype(np.uint8), yx - f[..., 0], yy - f[..., 1], cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT).astype(bool)
        got = al.roi_to_after(mask)
        assert whole.any() and np.array_equal(got, whole)


def test_user_roi_mask(astronaut, head):
    h, w = astronaut.shape[:2]
    mask = np.zeros((h, w), bool)
    x0, y0, x1, y1 = head.box
    mask[y0:y1, x0:x1] = True
    H = _similarity(3, 1.0, 8, 3, w, h)
    r = align(astronaut, _warp(astronaut, H), roi=mask)
    assert r.ok and r.subject.startswith("roi")
    assert_allclose(_corners(r.homography, head.box), _corners(H, head.box), atol=0.5)


def test_cli_align(tmp_path, astronaut):
    h, w = astronaut.shape[:2]
    H = _similarity(4, 1.03, 6, -5, w, h)
    b, a, c = tmp_path / "b.png", tmp_path / "a.jpg", tmp_path / "c.png"
    cv2.imwrite(str(b), astronaut[..., ::-1])
    cv2.imwrite(str(a), _warp(astronaut, H)[..., ::-1])
    cv2.imwrite(str(c), skimage.data.coffee()[..., ::-1])
    runner = CliRunner()
    res = runner.invoke(cli, ["align", str(b), str(a), "-o", str(tmp_path / "al.png"),
                              "--overlay", str(tmp_path / "ov.png"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    for key in ("status", "reason", "homography", "confidence", "inliers", "residual_px", "overlap"):
        assert key in doc
    assert doc["status"] == "ok" and doc["reason"] is None
    assert_allclose(_corners(np.array(doc["homography"]), (0, 0, w, h)), _corners(H, (0, 0, w, h)), atol=0.5)
    out = cv2.imread(str(tmp_path / "al.png"))[..., ::-1]
    assert out.shape == astronaut.shape
    inner = (slice(60, h - 60), slice(60, w - 60))
    assert np.abs(out[inner].astype(int) - astronaut[inner]).mean() < 6
    assert (tmp_path / "ov.png").exists()

    res = runner.invoke(cli, ["align", str(b), str(c), "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["status"] == "failed" and doc["reason"] and doc["homography"] is None
    assert len(res.stderr.strip().splitlines()) == 1 and "alignment failed" in res.stderr


def test_cli_roi_polygon(tmp_path, astronaut, head):
    """``--roi`` takes a polygon JSON in BEFORE's coordinates; the alignment follows it."""
    h, w = astronaut.shape[:2]
    H = _similarity(-3, 1.02, -7, 4, w, h)
    b, a = tmp_path / "b.png", tmp_path / "a.png"
    cv2.imwrite(str(b), astronaut[..., ::-1])
    cv2.imwrite(str(a), _warp(astronaut, H)[..., ::-1])
    x0, y0, x1, y1 = head.box
    roi = tmp_path / "roi.json"
    roi.write_text(json.dumps({"polygons": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]}))
    res = CliRunner().invoke(cli, ["align", str(b), str(a), "--roi", str(roi), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["subject"].startswith("roi")
    assert_allclose(_corners(np.array(doc["homography"]), head.box), _corners(H, head.box), atol=0.5)


def test_small_roi_anchored_by_its_face(astronaut, head):
    """A 16x16 px treated patch on the cheek has too few features alone: the face anchors it."""
    h, w = astronaut.shape[:2]
    (cx, cy), (ax, ay) = head.ellipse
    patch = np.zeros((h, w), bool)
    patch[int(cy + 0.2 * ay):int(cy + 0.2 * ay) + 16, int(cx - 0.4 * ax):int(cx - 0.4 * ax) + 16] = True
    H = _similarity(4, 1.03, 9, -6, w, h)
    r = align(astronaut, _relight(_warp(astronaut, H)), roi=patch)
    assert r.ok, r.reason
    ys, xs = np.nonzero(patch)
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert_allclose(_corners(r.homography, box), _corners(H, box), atol=0.5)


def test_a_known_head_anchors_a_small_roi_not_a_haar_search(monkeypatch):
    """BEFORE's head from its face mesh (`mesh_subject`) anchors a small ROI on it, exactly
    its ellipse; with no head given, a photo without a Haar face grows the ROI to a square
    instead; a ROI off the head is grown to a square either way."""
    from photokit.registration.subject import mesh_subject

    rng = np.random.default_rng(3)
    gray = rng.integers(0, 255, (400, 300), dtype=np.uint8)     # no face for the cascade
    verts = np.array([[100.0, 120.0], [200.0, 120.0], [150.0, 260.0]])
    head = mesh_subject(verts, gray.shape)
    (cx, cy), (ax, ay) = head.ellipse
    roi = np.zeros(gray.shape, bool)
    roi[int(cy) - 4:int(cy) + 4, int(cx) - 4:int(cx) + 4] = True
    with_head = find_subject(gray, roi, head=head).mask
    expected = np.zeros(gray.shape, np.uint8)
    cv2.ellipse(expected, (int(cx), int(cy)), (int(ax), int(ay)), 0, 0, 360, 1, -1)
    assert np.array_equal(with_head, expected.astype(bool) | roi)
    grown = find_subject(gray, roi).mask                        # no head, no Haar face
    ys, xs = np.nonzero(grown)
    side = 0.35 * 300                                           # 35 % of the short side
    assert abs(np.ptp(xs) + 1 - side) <= 2 and abs(np.ptp(ys) + 1 - side) <= 2
    assert grown.sum() == (np.ptp(xs) + 1) * (np.ptp(ys) + 1)   # a square, not the ellipse
    off = np.zeros(gray.shape, bool)
    off[380:388, 5:13] = True                                   # outside the ellipse
    assert not find_subject(gray, off, head=head).mask[int(cy), int(cx)]
    # a ROI on another person's face (a Haar face, not the meshed head): that face's ellipse
    from photokit.faces.haar import Face
    from photokit.registration import subject as sj

    monkeypatch.setattr(sj, "detect_faces", lambda g, with_eyes=False: [Face((200, 300, 60, 70), ())])
    second = np.zeros(gray.shape, bool)
    second[330:338, 226:234] = True
    dy, sx, sy = sj.HEAD_ELLIPSE                                # the head ellipse of that box
    ox, oy, oax, oay = 200 + 30, 300 + 35 + dy * 70, sx * 60, sy * 70
    expected = np.zeros(gray.shape, np.uint8)
    cv2.ellipse(expected, (int(ox), int(oy)), (int(oax), int(oay)), 0, 0, 360, 1, -1)
    assert np.array_equal(find_subject(gray, second, head=head).mask, expected.astype(bool) | second)


# -- independent point estimate, jackknife, units of the confidence ---------------------
def _point_setup(after, h_start, img):
    """BEFORE/AFTER as align sees them: working grids, normalised high-pass, overlap."""
    from photokit.registration.align import _grid, _normalised_highpass, _prewarp, _valid_on_grid
    gb, ga = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.cvtColor(after, cv2.COLOR_RGB2GRAY)
    grid_b, grid_a = _grid(gb), _grid(ga)
    nb = _normalised_highpass(grid_b.gray)
    na = _normalised_highpass(_prewarp(grid_a, h_start, grid_b))
    return nb, na, _valid_on_grid(ga.shape, h_start, grid_b), grid_b


def test_point_estimate_recovers_a_known_homography():
    """Tracked points refit the model from a start 2 px off: the truth within 0.1 px at the
    corners, and a tiny jackknife variance for an exactly planar scene."""
    from photokit.registration.align import _point_estimate
    img = skimage.data.coffee()
    h, w = img.shape[:2]
    H = _oblique(w, h, 0.8, 8, 0.95)
    after = cv2.warpPerspective(img, H, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    start = np.array([[1, 0, 2.0], [0, 1, -1.5], [0, 0, 1]]) @ H @ _similarity(0.3, 1.0, 0, 0, w, h)
    nb, na, area, g = _point_setup(after, start, img)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    hp, var = _point_estimate(nb, na, area, "homography", g, start, corners)
    assert np.abs(_corners(start, (0, 0, w, h)) - _corners(H, (0, 0, w, h))).max() > 1.5
    assert_allclose(_corners(hp, (0, 0, w, h)), _corners(H, (0, 0, w, h)), atol=0.1)
    assert 0 <= var < 0.01


def test_jackknife_sees_a_scene_that_is_not_one_plane():
    """Barrel distortion (3 px at the corners; not one homography) raises the
    block-jackknife variance of the corners by orders of magnitude over the planar scene."""
    from photokit.registration.align import _point_estimate
    img = skimage.data.coffee()
    h, w = img.shape[:2]
    H = _oblique(w, h, 0.8, 8, 0.95)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    var = {}
    for name, k in (("planar", 0.0), ("distorted", 3.0)):
        q = np.stack([xx + k * r2 * (xx - w / 2) / (w / 2), yy + k * r2 * (yy - h / 2) / (h / 2),
                      np.ones_like(xx)], -1) @ H.T
        mx, my = (q[..., 0] / q[..., 2]).astype(np.float32), (q[..., 1] / q[..., 2]).astype(np.float32)
        after = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        nb, na, area, g = _point_setup(after, H, img)
        var[name] = _point_estimate(nb, na, area, "homography", g, H, corners)[1]
    assert var["planar"] < 0.005
    assert var["distorted"] > 0.03 and var["distorted"] > 30 * var["planar"]


def test_area_scale_is_the_jacobian_determinant():
    from photokit.registration.align import _apply, _area_scale
    hm = np.array([[1.2, 0.1, 5], [0.05, 0.9, 3], [1e-4, 2e-4, 1]])
    p = np.array([[100.0, 200.0], [400.0, 30.0]])
    dets = []
    for x in p:
        e = 1e-4
        jx = (_apply(hm, x[None] + [e, 0]) - _apply(hm, x[None] - [e, 0])) / (2 * e)
        jy = (_apply(hm, x[None] + [0, e]) - _apply(hm, x[None] - [0, e])) / (2 * e)
        dets.append(abs(np.linalg.det(np.c_[jx.T, jy.T])))
    assert_allclose(_area_scale(hm, p), np.mean(dets), rtol=1e-6)


def test_confidence_in_after_pixels_zoomed_out_pair():
    """AFTER zoomed out 2.6x: the corner error is scored in AFTER px, where the same
    BEFORE-px uncertainty is 2.6x smaller; confidence stays high and the error small."""
    img = skimage.data.coffee()
    h, w = img.shape[:2]
    H = _oblique(w, h, 1.0, 20, 0.38)
    after = cv2.warpPerspective(img, H, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    r = align(img, after)
    assert r.ok and r.confidence > 0.9
    assert_allclose(_corners(r.homography, (0, 0, w, h)), _corners(H, (0, 0, w, h)), atol=0.5)


# -- a face that is not the subject ------------------------------------------------------
def _fake_face(monkeypatch, ellipse, shape):
    import sys

    from photokit.registration.subject import Subject
    pa = sys.modules["photokit.registration.align"]
    (cx, cy), (ax, ay) = ellipse
    sub = Subject("face", (int(cx - ax), int(cy - ay), int(cx + ax), int(cy + ay)), shape,
                  ellipse=ellipse)
    monkeypatch.setattr(pa, "find_subject", lambda gray, roi=None, faces=True, head=None: sub)


def test_face_without_matches_falls_back_to_the_frame(monkeypatch):
    """A 'face' in BEFORE that AFTER does not show (a magazine cover out of the new view):
    the frame is aligned instead, exactly, and the subject says so."""
    img = skimage.data.coffee()
    h, w = img.shape[:2]
    _fake_face(monkeypatch, ((60.0, 60.0), (40.0, 50.0)), (h, w))
    H = _similarity(2, 1.0, 150, 130, w, h)          # AFTER starts 150 px right, 130 px down
    after = _relight(_warp(img, H))
    r = align(img, after)
    assert r.ok, r.reason
    assert r.subject == "frame"
    box = (150, 130, w, h)
    assert_allclose(_corners(r.homography, box), _corners(H, box), atol=0.5)


def test_face_fallback_keeps_the_identity_check(monkeypatch, astronaut):
    """The room matches, the face region holds something else: the frame fallback aligns
    the room but the identity check on the face refuses."""
    h, w = astronaut.shape[:2]
    ell = ((256.0, 150.0), (70.0, 90.0))
    _fake_face(monkeypatch, ell, (h, w))
    cat = cv2.resize(skimage.data.chelsea(), (w, h), interpolation=cv2.INTER_AREA)
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (256, 150), (85, 105), 0, 0, 360, 1, -1)
    other = np.where(m[..., None] > 0, cat, astronaut).astype(np.uint8)
    r = align(astronaut, other)
    # no match on the face -> frame tried (subject "frame") -> the face check refuses
    assert r.status == "failed" and r.subject == "frame" and "face does not match" in r.reason
    assert r.ncc_core < 0.3


# -- strong viewpoint change: tilt simulation fallback ------------------------------------
def _tilted(w, h, t, k, deg=0.0):
    """AFTER -> BEFORE homography: BEFORE's frame seen at a grazing angle, squeezed `t`
    times across (a plane turned by ``arccos(1 / t)`` about a vertical axis), its right
    side `k` x as tall (perspective), rotated `deg`."""
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    q = np.float64([[0, 0], [w / t, h * (1 - k) / 2], [w / t, h * (1 + k) / 2], [0, h]])
    a = np.deg2rad(deg)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    q = ((q - q.mean(0)) @ r.T + [w / 2, h / 2]).astype(np.float32)
    return np.linalg.inv(cv2.getPerspectiveTransform(src, q))


def _spy_tilt(monkeypatch, disable=False):
    """Record the fallback's results (or switch it off)."""
    import sys
    pa = sys.modules["photokit.registration.align"]
    orig, calls = pa._tilt_matches, []

    def spy(*args, **kw):
        out = None if disable else orig(*args, **kw)
        calls.append(out)
        return out
    monkeypatch.setattr(pa, "_tilt_matches", spy)
    return calls


@pytest.mark.parametrize("t, k, deg", [(3.0, 0.8, 0.0), (3.0, 0.7, 20.0)])
def test_grazing_view_of_a_plane_solved_by_the_tilt_fallback(monkeypatch, t, k, deg):
    """A plane seen 3x squeezed (turned ~70 degrees): SIFT alone finds too few consistent
    matches and the pair is refused; with simulated tilts and guided matching the
    homography is recovered to a fraction of a pixel at BEFORE's corners."""
    img = skimage.data.coffee()
    h, w = img.shape[:2]
    H = _tilted(w, h, t, k, deg)
    after = _relight(cv2.warpPerspective(img, H, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR))
    off = _spy_tilt(monkeypatch, disable=True)
    r0 = align(img, after)
    assert off and r0.status == "failed" and "too few consistent matches" in r0.reason
    monkeypatch.undo()
    calls = _spy_tilt(monkeypatch)
    r = align(img, after)
    assert calls and calls[0] is not None
    assert r.ok and r.tilted and r.subject == "frame" and r.model == "homography", r.reason
    assert r.confidence > 0.9
    assert_allclose(_corners(r.homography, (0, 0, w, h)), _corners(H, (0, 0, w, h)), atol=0.5)


def test_tilt_fallback_refuses_unrelated_scenes(monkeypatch):
    """The fallback runs on unrelated scenes (too few matches) and finds no model: a cup
    against a cat, also when the cat is seen at a grazing angle."""
    img = skimage.data.coffee()
    h, w = img.shape[:2]
    cat = cv2.resize(skimage.data.chelsea(), (w, h), interpolation=cv2.INTER_AREA)
    cat_tilted = cv2.warpPerspective(cat, _tilted(w, h, 3.0, 0.8), (w, h),
                                     flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    for other in (cat, cat_tilted):
        calls = _spy_tilt(monkeypatch)
        r = align(img, other)
        assert calls == [None]
        assert r.status == "failed" and not r.tilted and r.confidence == 0.0
        assert "too few consistent matches" in r.reason or "too few matching" in r.reason
        monkeypatch.undo()

