"""Face pairs aligned through the face mesh: points carried, pose, shared zones, expression,
identity (photokit.registration.mesh and the mesh path of photokit.registration.align).

Only the astronaut (skimage) and warps made here: no benchmark data."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner

from photokit.cli.main import cli
from photokit.faces.mesh import TRIANGLES, ZONE_CODES, ZONES, find_faces, visibility
from photokit.registration.align import FEATURE_VERTEX_MAX, align, identity_posterior, vertex_error
from photokit.registration.mesh import (
    RIGID_ZONES,
    expression,
    fit_faces,
    pose_change,
    rigid_deviation,
    shared_zones,
)


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def face(astronaut):
    return find_faces(astronaut)[0]


def _bumps(shape, centres, shifts, sigma):
    """Smooth displacement field: a Gaussian bump of `shift` at each centre (x, y)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.zeros((h, w, 2), np.float32)
    for (cx, cy), (sx, sy) in zip(centres, shifts, strict=True):
        g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2))
        d[..., 0] += sx * g
        d[..., 1] += sy * g
    return d


def _warp_known(img, m, d):
    """AFTER(a) = BEFORE(G(a)), ``G(a) = M a + d(a)`` (M 2x3 affine, d a smooth field).

    Returns AFTER and the truth BEFORE -> AFTER as a function (G inverted by fixed point).
    """
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    mx = m[0, 0] * xx + m[0, 1] * yy + m[0, 2] + d[..., 0]
    my = m[1, 0] * xx + m[1, 1] * yy + m[1, 2] + d[..., 1]
    after = cv2.remap(img, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_CUBIC,
                      borderMode=cv2.BORDER_REFLECT_101)
    a_inv = np.linalg.inv(np.r_[m, [[0, 0, 1]]])

    def truth(pts):
        pts = np.asarray(pts, np.float64)
        a = (np.c_[pts, np.ones(len(pts))] @ a_inv.T)[:, :2]
        for _ in range(30):
            ax, ay = (a[:, k].astype(np.float32).reshape(-1, 1) for k in (0, 1))
            dd = cv2.remap(d, ax, ay, cv2.INTER_LINEAR).reshape(-1, 2)
            a = (np.c_[pts - dd, np.ones(len(pts))] @ a_inv.T)[:, :2]
        return a

    return after, truth


def _rot(deg, s, tx, ty, c):
    m = cv2.getRotationMatrix2D(c, deg, s)
    m[:, 2] += (tx, ty)
    return m


def test_points_carried_through_a_known_nonrigid_warp(astronaut, face):
    lm = face.landmarks[:, :2]
    c = tuple(lm.mean(0))
    # a global similarity plus a smooth non-rigid bulge of the cheeks (the face is not a plane)
    d = _bumps(astronaut.shape[:2], [lm[50], lm[280]], [(-2.5, 1.5), (2.5, 1.0)], 14.0)
    after, truth = _warp_known(astronaut, _rot(4.0, 0.97, 6.0, -4.0, c), d)
    al = align(astronaut, after)
    assert al.ok, al.reason
    pts = lm[::7]
    got = al.map_points(pts)
    ok = [g is not None for g in got]
    assert sum(ok) >= 0.9 * len(pts)
    err = np.linalg.norm(np.array([g for g in got if g is not None]) - truth(pts)[ok], axis=1)
    assert np.median(err) < 0.8 and np.percentile(err, 90) < 1.5
    # and back
    back = al.map_points(truth(pts[:5]), inverse=True)
    assert np.max(np.linalg.norm(np.array(back) - pts[:5], axis=1)) < 1.5
    # outside both photos: null
    assert al.map_points([[-40.0, -40.0]]) == [None]


def test_brows_and_lips_followed_by_the_dense_refinement(astronaut):
    """Raised brows and a lowered lower lip (local bumps of 4 px, sigma 6 % IPD, on top of a
    similarity and cheek bulges): the mesh fit carries brow and lip points to within 0.3 px
    (median). With the refinement fitted on skin zones only (brows and lips unweighted,
    the field there interpolated from the skin around) the median was 0.53 px."""
    img = cv2.resize(astronaut, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    face = find_faces(img)[0]
    lm = face.landmarks[:, :2]
    ipd = float(np.hypot(*np.subtract(face.iris_left.center, face.iris_right.center)))
    d = _bumps(img.shape[:2], [lm[105], lm[334], lm[17], lm[50], lm[280]],
               [(0, -4.0), (0, -4.0), (0, 4.0), (-5.0, 3.0), (5.0, 2.0)], 0.06 * ipd)
    after, truth = _warp_known(img, _rot(3.0, 0.98, 4.0, -3.0, tuple(lm.mean(0))), d)
    gray = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)  # noqa: E731
    fit = fit_faces(gray(img), gray(after), face, find_faces(after)[0])
    idx = [70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 0, 17, 37, 267, 84, 314, 13, 14]
    pts = lm[idx]
    q = (np.c_[pts, np.ones(len(pts))] @ fit.to_grid.T).astype(np.float32)
    f = cv2.remap(fit.flow, q[:, 0].reshape(-1, 1), q[:, 1].reshape(-1, 1), cv2.INTER_LINEAR).reshape(-1, 2)
    p = np.c_[pts + f, np.ones(len(pts))] @ np.linalg.inv(fit.homography).T
    err = np.linalg.norm(p[:, :2] / p[:, 2:] - truth(pts), axis=1)
    assert np.median(err) < 0.3, np.round(err, 2)


def test_pose_change_sign_follows_the_turn(astronaut, face):
    """A yaw turn (a cylinder warp of the head) towards the image's right reads as positive
    yaw change, towards the left as negative; pose_change is AFTER minus BEFORE."""
    lm = face.landmarks[:, :2]
    cx, cy = lm.mean(0)
    ax = 0.5 * np.ptp(lm[:, 0])
    h, w = astronaut.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    deltas = {}
    for theta in (-20.0, 20.0):
        u = np.clip((xx - cx) / (1.2 * ax), -1, 1)
        # AFTER(x) = BEFORE(x + dx): a point at BEFORE angle asin(u) shows at asin(u) + theta
        dx = 1.2 * ax * (np.sin(np.arcsin(u) - np.deg2rad(theta)) - u)
        wgt = np.clip((1.5 - np.hypot((xx - cx) / (1.2 * ax), (yy - cy) / (1.6 * ax))) / 0.4, 0, 1)
        after = cv2.remap(astronaut, xx + (dx * wgt).astype(np.float32), yy, cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT_101)
        fa = find_faces(after)[0]
        deltas[theta] = pose_change(face, fa)["yaw"]
        assert deltas[theta] == pytest.approx(fa.yaw - face.yaw, abs=0.01)
    assert deltas[20.0] > 1.0 and deltas[-20.0] < -1.0


def test_shared_zones_threshold_on_a_turned_mesh(face):
    """A zone is compared when >= 0.5 of it is seen in both photos: the far cheek of the
    same mesh turned by 40 degrees about the vertical axis is not, the near one is."""
    xyz = face.landmarks - face.landmarks.mean(0)
    t = np.deg2rad(40.0)
    r = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    v0, v1 = visibility(xyz), visibility(xyz @ r.T)
    both = shared_zones(v0, v1)
    assert set(shared_zones(v0, v0)) >= {"forehead", "nose", "cheek_left", "cheek_right"}
    far = [z for z in ("cheek_left", "cheek_right") if v1[z] < 0.5]
    assert len(far) == 1 and far[0] not in both
    near = ({"cheek_left", "cheek_right"} - set(far)).pop()
    assert near in both
    assert shared_zones({"nose": 0.49}, {"nose": 1.0}) == []
    assert shared_zones({"nose": 0.5}, {"nose": 0.5}) == ["nose"]


def _smile(img, face, k=0.12):
    """Mouth corners pulled outwards and up by `k` eye-corner distances (a synthetic smile)."""
    lm = face.landmarks[:, :2]
    e = float(np.linalg.norm(lm[33] - lm[263]))
    left, right = lm[61], lm[291]
    out = np.sign(right[0] - left[0])
    # AFTER(a) = BEFORE(a + d(a)): the skin at a corner is shown k e further out and up
    d = _bumps(img.shape[:2], [left - (out * k * e, k * e / 2), right + (out * k * e, -k * e / 2)],
               [(out * k * e, k * e / 2), (-out * k * e, k * e / 2)], 0.18 * e)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(img, xx + d[..., 0], yy + d[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def test_synthetic_smile_gives_an_expression_warning(astronaut, face):
    smiled = _smile(astronaut, face)
    fs = find_faces(smiled)[0]
    e = expression(face, fs)
    assert e["changed"] and e["ratios"]["mouth_width"] > 1.05 and e["smile_score"] > 0.05
    assert not expression(face, face)["changed"]
    al = align(astronaut, smiled)
    d = al.to_dict()
    assert d["expression"]["changed"]
    assert any("expression" in w and "mouth" in w for w in d["warnings"])
    assert al.ok, al.reason          # the same face: aligned, with the warning
    assert d["method"] in ("mesh", "features")


def test_mirrored_face_is_refused_as_mirrored(astronaut, face):
    """A mirrored face has the same shape but other skin details at each place: the mesh
    aligns it (12 of 18 real photos against their mirror images were "ok" at confidence
    up to 0.99: QA, 2026-12-08), the skin detail of its mirror image says what it is."""
    from photokit.registration.mesh import SIFT_MIRROR, detail_features, is_mirrored, mirror_evidence

    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    al = align(astronaut, mirrored)
    assert not al.ok and al.confidence == 0.0
    assert al.reason.startswith("AFTER looks mirrored left-right against BEFORE")
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    mface = find_faces(mirrored, max_faces=1)[0]
    own, other = detail_features(gray, face), detail_features(np.ascontiguousarray(gray[:, ::-1]), mface)
    given, back = mirror_evidence(own, other, mface, gray.shape[1])
    assert is_mirrored(given, back) and back > 10 * max(given, 1)
    given, back = mirror_evidence(own, own, face, gray.shape[1])        # the same face as given
    assert not is_mirrored(given, back) and given > 10 * max(back, 1)
    assert not is_mirrored(5, 29) and not is_mirrored(30, 59) and is_mirrored(15, 30)
    # SIFT on a mirrored image: the same keypoints mirrored, the descriptors permuted
    sift = cv2.SIFT_create(nfeatures=300)
    k1, d1 = sift.detectAndCompute(gray, None)
    k2, d2 = sift.detectAndCompute(np.ascontiguousarray(gray[:, ::-1]), None)
    p1 = np.array([(k.pt[0], k.pt[1], k.angle) for k in k1])
    p2 = np.array([(gray.shape[1] - 1 - k.pt[0], k.pt[1], (180 - k.angle) % 360) for k in k2])
    d_xy = np.hypot(p1[:, None, 0] - p2[None, :, 0], p1[:, None, 1] - p2[None, :, 1])
    d_angle = np.abs((p1[:, None, 2] - p2[None, :, 2] + 180) % 360 - 180)
    i, j = np.nonzero((d_xy < 0.6) & (d_angle < 0.5))   # (OpenCV puts them half a pixel apart)
    assert len(i) > 100
    rel = lambda a, b: np.median(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1))  # noqa: E731
    assert rel(d1[i][:, SIFT_MIRROR], d2[j]) < 0.03 and rel(d1[i], d2[j]) > 0.5


def test_identity_posterior_is_monotonic():
    p = [identity_posterior(n) for n in (0, 5, 15, 30, 60, 200)]
    assert all(a < b for a, b in zip(p, p[1:], strict=False))
    assert p[1] < 0.05 and p[4] > 0.95


def test_json_has_the_mesh_fields(astronaut, face):
    lm = face.landmarks[:, :2]
    after, _ = _warp_known(astronaut, _rot(-3.0, 1.02, -5.0, 3.0, tuple(lm.mean(0))),
                           np.zeros(astronaut.shape[:2] + (2,), np.float32))
    d = align(astronaut, after).to_dict()
    assert d["status"] == "ok", d["reason"]
    assert set(d["pose_change"]) == {"yaw", "pitch", "roll"}
    assert d["method"] in ("mesh", "features") and isinstance(d["warnings"], list)
    assert "nose" in d["zones"] and d["identity"]["p_same"] > 0.5
    json.dumps(d)


def test_cli_points(tmp_path, astronaut, face):
    lm = face.landmarks[:, :2]
    after, truth = _warp_known(astronaut, _rot(3.0, 1.0, 4.0, 2.0, tuple(lm.mean(0))),
                               np.zeros(astronaut.shape[:2] + (2,), np.float32))
    b, a, p = tmp_path / "b.png", tmp_path / "a.png", tmp_path / "p.json"
    cv2.imwrite(str(b), astronaut[..., ::-1])
    cv2.imwrite(str(a), after[..., ::-1])
    pts = [lm[1].tolist(), lm[50].tolist(), [-30.0, -30.0]]
    p.write_text(json.dumps({"points": pts}))
    res = CliRunner().invoke(cli, ["align", str(b), str(a), "--points", str(p), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert len(doc["points"]) == 3 and doc["points"][2] is None
    for got, want in zip(doc["points"][:2], truth(pts[:2]), strict=True):
        assert len(got) == 2 and np.hypot(*(np.array(got) - want)) < 1.5
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    res = CliRunner().invoke(cli, ["align", str(b), str(a), "--points", str(bad), "--json"])
    assert res.exit_code != 0


def test_rigid_deviation_is_the_median_shift_off_the_rigid_model(face):
    """Truth: AFTER's vertices are BEFORE's under a known similarity, except a chosen set
    moved a further 4 px; the rigid zones stay exact, so the rigid-vertex model is the
    similarity and the median distance is 4 px when the moved set is most of the mesh,
    0 when it is a minority."""
    rigid = np.unique(TRIANGLES[[ZONE_CODES.get(c) in RIGID_ZONES for c in ZONES]])
    others = np.setdiff1d(np.arange(len(face.landmarks)), rigid)
    m = _rot(3.0, 1.05, 12.0, -7.0, (256.0, 256.0))
    inv = cv2.invertAffineTransform(m)              # AFTER -> BEFORE is m, so AFTER = m^-1 BEFORE
    rng = np.random.default_rng(5)
    for moved, expected in ((others, 4.0), (others[: len(face.landmarks) // 2 - len(rigid) // 2], 0.0)):
        b = face.landmarks[:, :2].copy()
        ang = rng.uniform(0, 2 * np.pi, len(moved))
        b[moved] += 4.0 * np.c_[np.cos(ang), np.sin(ang)]
        a = face.landmarks.copy()
        a[:, :2] = face.landmarks[:, :2] @ inv[:, :2].T + inv[:, 2]
        before = dataclasses.replace(face, landmarks=np.c_[b, face.landmarks[:, 2]])
        after = dataclasses.replace(face, landmarks=a)
        assert rigid_deviation(before, after) == pytest.approx(expected, abs=1e-6)


def test_early_feature_path_returns_what_the_sequential_one_does(astronaut, monkeypatch):
    """The feature path started on a second thread before the mesh fit (rigid evidence)
    gives the very alignment it gives after the fit (same seeds, same inputs)."""
    h, w = astronaut.shape[:2]
    after = cv2.warpAffine(astronaut, _rot(2.0, 1.02, 6.0, -4.0, (w / 2, h / 2)), (w, h),
                           borderMode=cv2.BORDER_REFLECT)
    out = {}
    for name, dev in (("early", 0.0), ("after the fit", np.inf)):
        monkeypatch.setattr("photokit.registration.align.rigid_deviation", lambda fb, fa, d=dev: d)
        a = align(astronaut, after)
        out[name] = (json.dumps(a.to_dict(), sort_keys=True), None if a.flow is None else a.flow.tobytes())
    assert json.loads(out["early"][0])["method"] == "features"
    assert out["early"] == out["after the fit"]


def _mesh_meanwhile(monkeypatch, kept: bool):
    """Hold the rigid pair's feature fit until the mesh refinement has started beside it,
    as on a real re-capture whose feature fit is the longer job; with `kept`, the
    refinement's first pass then waits until the feature fit has been judged and kept (the
    event `_align_faces` sets), so the stop is seen after it. Returns the log of what the
    refinement did."""
    import threading
    import types

    import photokit.registration.align as al_mod
    import photokit.registration.mesh as mesh_mod

    started = threading.Event()
    events: list = []
    log = {"passes": 0, "fits": []}
    on, refinement, fit = al_mod._align_on, mesh_mod._refinement, al_mod.fit_faces

    class Recorded(threading.Event):     # the events align makes, to wait on them here
        def __init__(self):
            super().__init__()
            events.append(self)

    def slow_features(*args, **kwargs):
        out = on(*args, **kwargs)
        assert started.wait(10), "the mesh refinement did not start beside the feature fit"
        return out

    def held_refinement(*args, **kwargs):
        started.set()
        if kept and log["passes"] == 0:
            assert events and events[-1].wait(10), "the feature fit was not kept"
        log["passes"] += 1
        return refinement(*args, **kwargs)

    def logged_fit(*args, **kwargs):
        out = fit(*args, **kwargs)
        log["fits"].append(out)
        return out

    monkeypatch.setattr(al_mod, "threading", types.SimpleNamespace(Event=Recorded))
    monkeypatch.setattr(al_mod, "_align_on", slow_features)
    monkeypatch.setattr(mesh_mod, "_refinement", held_refinement)
    monkeypatch.setattr(al_mod, "fit_faces", logged_fit)
    return log


def test_a_kept_feature_fit_stops_the_mesh_refinement_started_beside_it(astronaut, monkeypatch):
    """A rigid pair whose feature fit leaves under a third of the tolerance on the shared
    skin is returned without waiting for the mesh refinement (which could not change the
    choice): a refinement started on the spare core while the fit ran stops at its next
    step. The result still carries the meshes' evidence, its identity counted on its own
    mapping: the same as when the mesh is fitted first."""
    h, w = astronaut.shape[:2]
    after = cv2.warpAffine(astronaut, _rot(2.0, 1.02, 6.0, -4.0, (w / 2, h / 2)), (w, h),
                           borderMode=cv2.BORDER_REFLECT)
    with monkeypatch.context() as m:          # not known rigid: the mesh is fitted first
        m.setattr("photokit.registration.align.rigid_deviation", lambda fb, fa: np.inf)
        full = align(astronaut, after)

    log = _mesh_meanwhile(monkeypatch, kept=True)
    quick = align(astronaut, after)
    assert quick.method == "features" and quick.residual_px <= quick.tolerance_px / 3
    assert quick.identity["p_same"] > 0.9 and quick.identity["matches"] >= 15
    assert quick.to_dict() == full.to_dict()
    # started beside the feature fit, stopped after its first pass, never finished
    assert log["passes"] == 1 and log["fits"] == [None]


def test_a_mesh_refined_beside_a_refused_feature_fit_is_the_one_returned(astronaut, monkeypatch):
    """When the feature fit is not kept, the mesh refinement that ran beside it is the
    alignment returned (not made a second time), the same as when the mesh runs first."""
    h, w = astronaut.shape[:2]
    after = cv2.warpAffine(astronaut, _rot(2.0, 1.02, 6.0, -4.0, (w / 2, h / 2)), (w, h),
                           borderMode=cv2.BORDER_REFLECT)
    # a feature fit that leaves too much on the skin (the residual judge says so)
    monkeypatch.setattr("photokit.registration.align.skin_residual", lambda fit, to_after: (99.0, 0.0))
    with monkeypatch.context() as m:
        m.setattr("photokit.registration.align.rigid_deviation", lambda fb, fa: np.inf)
        sequential = align(astronaut, after)
    log = _mesh_meanwhile(monkeypatch, kept=False)
    meanwhile = align(astronaut, after)
    assert meanwhile.method == "mesh" and meanwhile.ok
    assert log["passes"] == 2 and len(log["fits"]) == 1 and log["fits"][0] is not None
    assert json.dumps(meanwhile.to_dict(), sort_keys=True) == json.dumps(sequential.to_dict(), sort_keys=True)
    assert meanwhile.flow.tobytes() == sequential.flow.tobytes()


def test_the_mesh_field_still_gates_the_kept_feature_fit(astronaut, monkeypatch):
    """When the mesh's own field says the face did not keep its shape (median over the
    tolerance), the mesh alignment is returned, early feature fit or not."""
    h, w = astronaut.shape[:2]
    after = cv2.warpAffine(astronaut, _rot(2.0, 1.02, 6.0, -4.0, (w / 2, h / 2)), (w, h),
                           borderMode=cv2.BORDER_REFLECT)
    monkeypatch.setattr("photokit.registration.align._field_px", lambda fit: 100.0)
    al = align(astronaut, after)
    assert al.method == "mesh" and al.flow_px == 100.0


def test_a_cheek_roi_follows_the_face_not_the_room(astronaut, face, monkeypatch):
    """The face moves in front of a room that does not (a patient re-seated before the
    same wall). With a cheek ROI the face is still aligned through the mesh: the ROI lies
    on the face, though the head ellipse grown around it to anchor a feature fit takes in
    the room (as it does around a face photographed at 15 cm: enlarged here), and a
    feature alignment that followed the room is told apart by the meshes."""
    monkeypatch.setattr("photokit.registration.subject.HEAD_ELLIPSE", (-0.08, 1.6, 1.6))
    lm = face.landmarks[:, :2]
    # the whole head shifted by ~(7, -5) px, the room around it still
    d = _bumps(astronaut.shape[:2], [lm.mean(0)], [(7.0, -5.0)], 70.0)
    after, truth = _warp_known(astronaut, np.array([[1.0, 0, 0], [0, 1.0, 0]]), d)
    cheek = np.zeros(astronaut.shape[:2], np.uint8)
    cv2.fillPoly(cheek, [np.asarray(face.zone_polygons()["cheek_left"], np.int32).reshape(-1, 2)], 1)
    al = align(astronaut, after, roi=cheek.astype(bool))
    # decided with the meshes (a feature result is kept only when the meshes agree)
    assert al.ok and al.identity is not None and al.pose_change is not None, (al.method, al.reason)
    ys, xs = np.nonzero(cheek)
    pts = np.c_[xs, ys][:: max(1, len(xs) // 40)].astype(np.float64)
    got = np.array(al.map_points(pts), dtype=float)
    assert np.nanmedian(np.linalg.norm(got - truth(pts), axis=1)) < 0.8
    fa = find_faces(after)[0]
    ipd = float(np.hypot(*np.subtract(fa.iris_left.center, fa.iris_right.center)))
    assert vertex_error(al, face, fa) < 0.03
    # the room's alignment (the whole frame, no face): near identity, the face ~8.6 px off
    room = align(astronaut, after, faces=False)
    assert room.ok
    assert vertex_error(room, face, fa) > min(FEATURE_VERTEX_MAX, 0.7 * 8.6 / ipd)


@pytest.mark.parametrize("missed", ["after", "before"])
def test_a_face_the_detector_misses_is_meshed_where_the_other_s_mesh_lands(astronaut, face, missed,
                                                                            monkeypatch):
    """One photo's face is meshed, the other's is not found by the detector (too close,
    cut by the frame). The missed face is meshed where the feature alignment carries the
    other's mesh, and the pair goes through the mesh path with its evidence (identity,
    pose change)."""
    import photokit.registration.align as A
    from photokit.faces.search import FacePass

    lm = face.landmarks[:, :2]
    d = _bumps(astronaut.shape[:2], [lm[50], lm[280]], [(-2.5, 1.5), (2.5, 1.0)], 14.0)
    after, truth = _warp_known(astronaut, _rot(4.0, 0.97, 6.0, -4.0, tuple(lm.mean(0))), d)
    sign = (after if missed == "after" else astronaut)[::37, ::41].tobytes()
    found = A.face_pass

    def missing(photo):
        r = found(photo)
        return FacePass([], r.haar) if photo.pixels[::37, ::41].tobytes() == sign else r

    monkeypatch.setattr(A, "face_pass", missing)
    al = align(astronaut, after)
    assert al.ok and al.identity is not None and al.pose_change is not None, (al.method, al.reason)
    pts = lm[::7]
    got = al.map_points(pts)
    ok = [g is not None for g in got]
    err = np.linalg.norm(np.array([g for g in got if g is not None]) - truth(pts)[ok], axis=1)
    assert sum(ok) >= 0.9 * len(pts) and np.median(err) < 0.8
    # no face where the other's mesh lands (a blank photo): the feature path's answer stands
    blank = np.full_like(astronaut, 128)
    assert A.face_near(blank, lm) is None


def test_a_mesh_carried_off_the_photo_is_not_meshed(astronaut, face):
    """A refused alignment may carry the found mesh anywhere: off the photo (or not
    finite) there is nothing to mesh, and the feature path's answer stands."""
    from photokit.io.photo import load
    from photokit.registration.align import _face_carried

    photo = load(astronaut)
    far = np.array([[1.0, 0, 5000.0], [0, 1.0, 0], [0, 0, 1.0]])
    assert _face_carried(photo, far, face) is None
    assert _face_carried(photo, np.full((3, 3), np.nan), face) is None
    assert _face_carried(photo, np.eye(3), face) is not None
