"""Head pose, zone outlines and zone visibility from the 3D mesh.

References
----------
S. Umeyama, "Least-squares estimation of transformation parameters between two point
patterns", IEEE TPAMI 13(4):376-380 (1991). doi:10.1109/34.88573
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ._topology import CANONICAL_INDEX, CANONICAL_XYZ, TRIANGLES, ZONE_CODES, ZONE_NAMES, ZONES

#: A triangle counts as seen when its projected area is at least this share of what a
#: frontal view of the same face shows (foreshortened at most twofold by the pose).
MIN_AREA_RATIO = 0.5


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Umeyama's least-squares similarity ``dst ~ s R src + t`` (R a proper rotation).

    With ``S = (dst - mean)^T (src - mean) / n = U D V^T``: ``R = U diag(1, 1, det(U V^T)) V^T``,
    ``s = tr(D diag(...)) / var(src)``, ``t = mean(dst) - s R mean(src)``.
    """
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, d, vt = np.linalg.svd(b.T @ a / len(src))
    e = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ e @ vt
    s = float(np.trace(np.diag(d) @ e) / (a ** 2).sum(1).mean())
    return s, r, md - s * r @ ms


def head_rotation(xyz: np.ndarray) -> np.ndarray:
    """Rotation (3 x 3) taking the canonical frontal face to the mesh (`similarity_fit`
    of the canonical points, which expression moves least, onto the mesh's)."""
    return similarity_fit(CANONICAL_XYZ, xyz[CANONICAL_INDEX])[1]


def pose(xyz: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch and roll (degrees) of a mesh against the canonical frontal face.

    With ``R`` the `head_rotation`, the face's forward axis is ``f = R (0, 0, -1)``
    (towards the camera when frontal) and its left-right axis ``l = R (1, 0, 0)``, in
    image axes (x right, y down, z away from the camera):

    - ``yaw = atan2(f_x, -f_z)``: positive when the subject turns to their own left
      (the nose moves to the image's right);
    - ``pitch = atan2(-f_y, hypot(f_x, f_z))``: positive when the subject looks up;
    - ``roll = atan2(-l_y, l_x)``: positive when the head tilts counter-clockwise as
      seen in the image (the subject's left eye higher).

    Zero is the London set's mean studio pose (camera at eye level).
    """
    r = head_rotation(xyz)
    f = -r[:, 2]
    lr = r[:, 0]
    yaw = np.degrees(np.arctan2(f[0], -f[2]))
    pitch = np.degrees(np.arctan2(-f[1], np.hypot(f[0], f[2])))
    roll = np.degrees(np.arctan2(-lr[1], lr[0]))
    return float(yaw), float(pitch), float(roll)


def triangle_normals(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outward unit normals (852, 3) and 3D areas (852,) of the mesh triangles."""
    a, b, c = (xyz[TRIANGLES[:, k]] for k in range(3))
    n = np.cross(b - a, c - a)
    norm = np.linalg.norm(n, axis=1)
    return n / np.maximum(norm, 1e-12)[:, None], norm / 2


def visibility(xyz: np.ndarray) -> dict[str, float]:
    """Share of each zone's skin that the camera sees well, 0..1.

    A triangle is seen when it faces the camera and the pose foreshortens it at most
    twofold against a frontal view of the same face: with ``n`` its outward unit normal,
    ``c = -n_z`` (its projected area over its 3D area, > 0 when it faces the camera) and
    ``c0 = -(R^T n)_z`` the same in the frontal pose (``R`` = `head_rotation`), seen
    means ``c > 0`` and ``c >= MIN_AREA_RATIO * c0``. Then
    ``visible = sum_t A_t [seen_t] / sum_t A_t`` over the zone's triangles, ``A_t`` the
    triangle's 3D area. A frontal face gives about 1 everywhere; a face turned 45
    degrees to its left gives its left cheek about 0.1, its left jaw 0 (measured on a
    rotated real mesh, docs/FACE.md). Occlusion by the nose is not modelled.
    """
    n, area = triangle_normals(xyz)
    now = -n[:, 2]
    frontal = -(n @ head_rotation(xyz))[:, 2]
    seen = (now > 0) & (now >= MIN_AREA_RATIO * np.maximum(frontal, 0))
    out = {}
    for code, name in ZONE_CODES.items():
        sel = ZONES == code
        out[name] = float((area[sel] * seen[sel]).sum() / max(area[sel].sum(), 1e-12))
    return out


@functools.cache
def zone_outline(name: str) -> tuple[int, ...]:
    """Mesh indices tracing zone `name`'s outline as one closed polygon.

    The zone's boundary edges (edges of exactly one of its triangles, directed as in
    their consistently oriented triangle) are chained into loops; the longest is the
    outline and any other loop (a hole: the eye inside a periorbital zone) is joined to
    it by a zero-width bridge between their vertices fewest mesh edges apart, so
    filling the polygon leaves the hole out.
    """
    code = next(c for c, n in ZONE_CODES.items() if n == name)
    tris = TRIANGLES[ZONES == code]
    directed = {}
    for a, b, c in tris:
        for e in ((a, b), (b, c), (c, a)):
            directed[e] = True
    nxt: dict[int, list[int]] = {}
    for a, b in directed:
        if (b, a) not in directed:
            nxt.setdefault(int(a), []).append(int(b))
    loops = []
    while nxt:
        start = next(iter(nxt))
        loop, cur = [start], start
        while True:
            nb = nxt[cur].pop()
            if not nxt[cur]:
                del nxt[cur]
            if nb == start or nb not in nxt:
                break
            loop.append(nb)
            cur = nb
        loops.append(loop)
    loops.sort(key=len, reverse=True)
    outline = loops[0]
    for hole in loops[1:]:
        if len(hole) < 3:
            continue
        i, j = _nearest_by_hops(outline, hole)
        outline = outline[:i + 1] + hole[j:] + hole[:j + 1] + outline[i:]
    return tuple(outline)


def _nearest_by_hops(outline: list[int], hole: list[int]) -> tuple[int, int]:
    """Positions in `outline` and `hole` of the vertex pair fewest mesh edges apart
    (breadth-first search from all of the hole's vertices at once)."""
    nbr: dict[int, set[int]] = {}
    for a, b, c in TRIANGLES.tolist():
        for p, q in ((a, b), (b, c), (c, a)):
            nbr.setdefault(p, set()).add(q)
            nbr.setdefault(q, set()).add(p)
    on_outline = {v: k for k, v in enumerate(outline)}
    origin = {v: v for v in hole}
    frontier = list(hole)
    while frontier:
        nxt = []
        for v in frontier:
            if v in on_outline:
                return on_outline[v], hole.index(origin[v])
            for q in sorted(nbr[v]):
                if q not in origin:
                    origin[q] = origin[v]
                    nxt.append(q)
        frontier = nxt
    return 0, 0


def zone_polygons(xyz: np.ndarray) -> dict[str, np.ndarray]:
    """Each zone's outline in image pixels, (N, 2) per zone (see `zone_outline`)."""
    return {name: xyz[list(zone_outline(name)), :2] for name in ZONE_NAMES}


def zone_windows(xyz: np.ndarray, shape) -> dict[str, tuple[np.ndarray, int, int]]:
    """Each zone rasterised from its triangles in image pixels, within its own bounding box:
    ``name -> (window, r0, c0)``, the window (bool) holding the zone's pixels of an image of
    `shape[:2]` (its pixel ``(i, j)`` is the image's ``(r0 + i, c0 + j)``; nothing of the
    zone lies outside it). The vertices carry 4 fractional bits and are moved by whole
    pixels, so each window holds exactly the pixels the whole image would: a zone costs
    its own area, not the image's."""
    h, w = shape[:2]
    out = {}
    pts = np.round(xyz[:, :2] * 16).astype(np.int32)   # 4 fractional bits
    for code, name in ZONE_CODES.items():
        tris = TRIANGLES[ZONES == code]
        p = pts[tris.ravel()]
        # whole pixels around every vertex (a polygon fills no pixel beyond them)
        c0, r0 = (max(0, int(v) // 16 - 2) for v in p.min(0))
        c1, r1 = (min(n, int(v) // 16 + 3) for v, n in zip(p.max(0), (w, h), strict=True))
        m = np.zeros((max(0, r1 - r0), max(0, c1 - c0)), np.uint8)
        if m.size:
            shift = np.array([c0 * 16, r0 * 16], np.int32)
            for t in tris:
                cv2.fillConvexPoly(m, pts[t] - shift, 1, lineType=cv2.LINE_8, shift=4)
        out[name] = (m.view(bool), r0, c0)
    return out


def zone_masks(xyz: np.ndarray, shape) -> dict[str, np.ndarray]:
    """Each zone rasterised (bool, `shape[:2]`) from its triangles in image pixels
    (`zone_windows`, placed in the image)."""
    h, w = shape[:2]
    out = {}
    for name, (win, r0, c0) in zone_windows(xyz, shape).items():
        m = np.zeros((h, w), bool)
        m[r0:r0 + win.shape[0], c0:c0 + win.shape[1]] = win
        out[name] = m
    return out
