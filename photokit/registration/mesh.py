"""Face pairs aligned through the face mesh: global model, mesh deformation, dense refinement.

``fit_faces(gray_b, gray_a, face_b, face_a)`` aligns AFTER onto BEFORE when both photos
show a meshed face (`photokit.faces.mesh.find_faces`) and gathers the evidence that the
caller (`photokit.registration.align.align`) turns into a verdict.

Pipeline (working grid: BEFORE's face box with a margin of `MARGIN` face widths, at most
`WORK_SIDE` px on its long side; AFTER is always sampled from a copy of about the same
resolution):

1. **Global model** from the 468 mesh correspondences on the vertices expression moves
   least (forehead, glabella, nose: `RIGID_ZONES`): similarity, affine or homography,
   least squares, the one of lowest BIC ``n log(RSS/n) + k log(n)`` (``n`` = 2 x points,
   ``k`` = 4, 6, 8). It maps AFTER pixels to BEFORE pixels (SPEC convention).
2. **Mesh deformation**: every mesh triangle of BEFORE is mapped affinely onto the same
   triangle of AFTER (seen through the global model): a piecewise-affine field (Goshtasby
   1986) that follows pose and perspective (a face photographed at 15 cm is not the same
   shape as at 60 cm) and expression. Outside the mesh the field decays smoothly to zero
   (normalised convolution of the inside values, `_extend`).
3. **Dense refinement**: DIS optical flow (Kroeger et al. 2016) between BEFORE and the
   mesh-warped AFTER on contrast-normalised high-passed log luma, then regularised by
   normalised convolution (Gaussian of `FLOW_SIGMA` x the inter-pupil distance, the pass
   on a half-resolution copy of the grid, `FIRST_LEVEL`; a second pass at half that sigma
   on AFTER resampled through the first) with weights on the surface both photos show:
   mesh zones seen in both photos (`shared_zones`) and the features between them (brows,
   lips, nostrils, the rim round the eyes: `_feature_triangles`), where the flow-warped
   images agree. The total field is ``f(x) = d(x) + m(x + d(x))`` (``m`` the mesh field,
   ``d`` the refinement).
   The global part is then re-fitted to the full mapping on the shared skin
   (`_refit_global`) and the field re-expressed relative to it.
4. **Residual check**: an independent dense flow (Farneback 2003) between BEFORE and the
   fully aligned AFTER, median magnitude on the shared skin (BEFORE pixels).
5. **Evidence** for the verdict: the pose change, the zones both photos show, the
   expression change (`expression`), and the identity evidence (`identity_evidence`):
   skin-detail matches (`detail_matches`, found on a second thread meanwhile) that the
   alignment explains.

References
----------
A. Goshtasby, "Piecewise linear mapping functions for image registration", Pattern
Recognition 19(6), 459-466 (1986). doi:10.1016/0031-3203(86)90044-0
T. Kroeger, R. Timofte, D. Dai, L. Van Gool, "Fast optical flow using dense inverse
search", ECCV 2016. doi:10.1007/978-3-319-46493-0_29
G. Farneback, "Two-frame motion estimation based on polynomial expansion", SCIA 2003.
doi:10.1007/3-540-45103-X_50
D. G. Lowe, "Distinctive image features from scale-invariant keypoints", IJCV 60(2),
91-110 (2004). doi:10.1023/B:VISI.0000029664.99615.94
Y. Kartynnik, A. Ablavatski, I. Grishchenko, M. Grundmann, "Real-time facial surface
geometry from monocular video on mobile GPUs", arXiv:1907.06724 (2019).
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..faces.mesh import TRIANGLES, ZONE_CODES, ZONE_NAMES, ZONES, FaceMesh, inter_pupil_px

#: Long side of the working grid (BEFORE's face crop).
WORK_SIDE = 720
#: Margin around BEFORE's face box, as a fraction of the box's long side.
MARGIN = 0.15
#: Zones whose vertices drive the global model (expression moves them least).
RIGID_ZONES = ("forehead", "glabella", "nose")
#: A zone is compared when at least this share of its skin faces the camera in both photos.
MIN_VISIBLE = 0.5
#: Sigma of the dense-refinement regulariser, as a fraction of the inter-pupil distance.
FLOW_SIGMA = 0.02
#: Pyramid level of the first dense-refinement pass (1: half the grid's resolution).
FIRST_LEVEL = 1
#: Inter-pupil distance (px) of the normalised crops the identity evidence is taken on.
IPD_NORM = 160.0
#: Ratio test for the identity matches (Lowe 2004).
RATIO = 0.8
#: A match is explained by the alignment when it lands within this share of the IPD.
MATCH_RADIUS = 0.03
#: Smile score read as an expression change (see `expression`).
EXPRESSION_CHANGE = 0.05
#: Change of the inner-lip opening (eye-corner distances) read as an expression change.
LIP_CHANGE = 0.08

# MediaPipe Face Mesh vertex indices (Kartynnik et al. 2019, canonical topology)
_MOUTH_CORNERS = (61, 291)
_LIPS_INNER = (13, 14)
_LIPS_OUTER = (0, 17)
_EYE_OUTER = (33, 263)
_LOWER_LIDS = (145, 374)

_MODELS = {"similarity": 4, "affine": 6, "homography": 8}
#: ``log(1 + v)`` of every uint8 value, float32: a table look-up per pixel instead of a logarithm
#: (the same values).
LOG1P = np.log1p(np.arange(256, dtype=np.float32))


@dataclass(eq=False)
class FaceFit:
    """What `fit_faces` found (full-resolution pixels unless said otherwise).

    Attributes
    ----------
    homography : ndarray
        3x3 global model, AFTER -> BEFORE.
    model : str
        ``similarity``, ``affine`` or ``homography``.
    flow : ndarray
        ``(h, w, 2)`` float32 total deformation on the grid, BEFORE pixels: BEFORE pixel
        ``x`` takes AFTER's pixel at ``H^-1 (x + flow(x))``.
    to_grid : ndarray
        3x3 scale-and-shift matrix, BEFORE full resolution -> grid.
    skin : ndarray of bool
        Shared skin on the grid (zones seen in both photos).
    face : ndarray of bool
        BEFORE's mesh on the grid (the region the alignment vouches for).
    zones : list of str
        Zones both photos show (`shared_zones`).
    residual_px : float
        Median independent (Farneback) flow left on the shared skin, BEFORE pixels.
    mesh_rms_px : float
        RMS distance of the rigid vertices under the global model, BEFORE pixels.
    ncc : float
        Correlation of the normalised high-pass on the shared skin after the full warp.
    matches : int
        Skin-detail feature matches explained by the alignment (`identity_evidence`).
    match_share : float
        Their share of all ratio-test matches on the face.
    before_highpass : ndarray
        BEFORE's contrast-normalised high-pass on the grid (`highpass`, uint8).
    after_sampler : object
        AFTER's luma around the face at about the grid's resolution, for resampling it
        without aliasing (made once per pair's grid; `skin_residual` reuses it).
    geometry : object
        The fit's starting point (the grid, the mesh deformation, the shared skin), which
        a later `fit_faces` of the same pair can start from (``start``).
    """

    homography: np.ndarray
    model: str
    flow: np.ndarray
    to_grid: np.ndarray
    skin: np.ndarray
    face: np.ndarray
    zones: list
    residual_px: float
    mesh_rms_px: float
    ncc: float
    matches: int
    match_share: float
    before_highpass: np.ndarray
    after_sampler: object
    geometry: object = field(default=None, repr=False)


@dataclass
class _Geometry:
    """Where `fit_faces` starts, before any refinement: the grid (``to_grid``, scale ``s``
    and BEFORE's high-pass ``nb``), the mesh deformation ``m_field`` (grid px) under the
    rigid-vertex model, BEFORE's mesh ``inside``, the shared ``skin``, the ``surface`` the
    flow is fitted on, the shared ``zones``, AFTER's ``sampler`` and the IPD in grid px."""

    to_grid: np.ndarray
    s: float
    nb: np.ndarray
    m_field: np.ndarray
    inside: np.ndarray
    skin: np.ndarray
    surface: np.ndarray
    zones: list
    sampler: _Sampler
    ipd_g: float


# ------------------------------------------------------------------------------ evidence
def shared_zones(visible_b: dict, visible_a: dict, threshold: float = MIN_VISIBLE) -> list[str]:
    """Zones that both photos show well enough to compare.

    Parameters
    ----------
    visible_b, visible_a : dict of str to float
        `FaceMesh.visible` of each photo: the share of a zone's skin (3D area) whose
        triangles face the camera and are foreshortened at most twofold.
    threshold : float
        Smallest share in both photos (default `MIN_VISIBLE` = 0.5: at least half the
        zone is seen within twofold foreshortening; on a real mesh turned about the
        vertical axis the far cheek reads 0.62 at 11 and 0.37 at 21 degrees of yaw
        (docs/FACE.md), so a cheek is compared up to roughly 15 degrees of turn away).

    Returns
    -------
    list of str
        In `ZONE_NAMES` order.
    """
    return [z for z in ZONE_NAMES if min(visible_b.get(z, 0.0), visible_a.get(z, 0.0)) >= threshold]


def pose_change(face_b: FaceMesh, face_a: FaceMesh) -> dict:
    """AFTER's head pose minus BEFORE's, degrees: ``{"yaw", "pitch", "roll"}`` (see
    `photokit.faces.mesh.pose` for the axes and signs)."""
    return {k: round(float(getattr(face_a, k) - getattr(face_b, k)), 2) for k in ("yaw", "pitch", "roll")}


def expression_ratios(landmarks: np.ndarray) -> dict:
    """Scale-free mouth and cheek measures of one mesh.

    With ``e`` the 3D distance between the outer eye corners (vertices 33 and 263),
    ``c`` the mouth corners (61, 291) and ``u`` the unit eye axis:

    - ``mouth_width = |c_l - c_r| / e``;
    - ``lip_opening = |p13 - p14| / e`` (inner lips);
    - ``cheek_raise = mean(|p61 - p145|, |p291 - p374|) / e`` (mouth corner to lower lid on
      each side: a smile raises the cheek and shortens it);
    - ``corner_lift = ((p0 + p17) / 2 - (c_l + c_r) / 2) . u_perp / e``: how far the mouth
      corners sit above the middle of the lips, across the eye axis (a smile curves the
      mouth up).
    """
    p = np.asarray(landmarks, np.float64)
    e = float(np.linalg.norm(p[_EYE_OUTER[0]] - p[_EYE_OUTER[1]]))
    u = (p[_EYE_OUTER[1], :2] - p[_EYE_OUTER[0], :2]) / max(e, 1e-9)
    perp = np.array([-u[1], u[0]]) / max(float(np.hypot(*u)), 1e-9)
    d = lambda i, j: float(np.linalg.norm(p[i] - p[j])) / e  # noqa: E731
    corners = (p[_MOUTH_CORNERS[0], :2] + p[_MOUTH_CORNERS[1], :2]) / 2
    middle = (p[_LIPS_OUTER[0], :2] + p[_LIPS_OUTER[1], :2]) / 2
    return {"mouth_width": d(*_MOUTH_CORNERS), "lip_opening": d(*_LIPS_INNER),
            "cheek_raise": (d(_MOUTH_CORNERS[0], _LOWER_LIDS[0]) + d(_MOUTH_CORNERS[1], _LOWER_LIDS[1])) / 2,
            "corner_lift": float(np.dot(middle - corners, perp)) / e}


def expression(face_b: FaceMesh, face_a: FaceMesh, *, threshold: float = EXPRESSION_CHANGE) -> dict:
    """Expression change between two meshes of one face (a smile, an open mouth).

    Smile score, from `expression_ratios` of BEFORE (``b``) and AFTER (``a``)::

        S = (w_a / w_b - 1) + (1 - k_a / k_b) + (l_a - l_b)

    with ``w`` the mouth width, ``k`` the corner-to-lid distance and ``l`` the corner
    lift: a smile widens the mouth, raises the cheeks and curves the corners up, so all
    three terms grow together. ``changed`` when ``|S| > threshold`` or the inner lips open
    or close by more than `LIP_CHANGE` eye-corner distances.

    The default threshold 0.05 separates the measured pairs (docs/ALIGN.md): one neutral
    face re-photographed at 15 to 60 cm (perspective changes the face's shape) gives
    ``|S|`` <= 0.040; the 12 London neutral/smiling pairs give ``S`` >= 0.056 (a
    closed-mouth half smile; the others >= 0.08). The margin is small and measured on
    these 18 pairs only.

    Returns
    -------
    dict
        ``{"changed": bool, "smile_score": S, "lip_opening": l_a - l_b (inner lips),
        "ratios": {"mouth_width": w_a / w_b, "cheek_raise": k_a / k_b}}``.
    """
    rb, ra = expression_ratios(face_b.landmarks), expression_ratios(face_a.landmarks)
    ratios = {k: round(ra[k] / rb[k], 4) for k in ("mouth_width", "cheek_raise")}
    score = ((ratios["mouth_width"] - 1.0) + (1.0 - ratios["cheek_raise"])
             + (ra["corner_lift"] - rb["corner_lift"]))
    lips = ra["lip_opening"] - rb["lip_opening"]
    changed = abs(score) > threshold or abs(lips) > LIP_CHANGE
    return {"changed": bool(changed), "smile_score": round(float(score), 4),
            "lip_opening": round(float(lips), 4), "ratios": ratios}


# ------------------------------------------------------------------------------ geometry
def _zone_of_triangle() -> np.ndarray:
    """Index into `ZONE_NAMES` of each mesh triangle's zone (-1: eyes, brows, lips, nostrils)."""
    return np.array([ZONE_NAMES.index(ZONE_CODES[c]) if c in ZONE_CODES else -1 for c in ZONES])


@functools.cache
def _feature_triangles() -> np.ndarray:
    """Mesh triangles of no skin zone (brows, lips, nostrils, the rim round the eyes) that
    do not touch the mesh's outline: the outline's zone-free triangles at the temples reach
    into hair and background, the others are the face's own features.

    The outline is the longest loop of boundary edges (edges of exactly one triangle; the
    shorter loops are the eye and mouth openings).
    """
    edges = np.sort(TRIANGLES[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    uniq, count = np.unique(edges, axis=0, return_counts=True)
    boundary = uniq[count == 1]
    parent = {int(v): int(v) for v in boundary.ravel()}

    def root(v):
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for a, b in boundary:
        parent[root(int(a))] = root(int(b))
    roots = np.array([root(int(v)) for v in boundary[:, 0]])
    loop_roots, sizes = np.unique(roots, return_counts=True)
    outline = boundary[roots == loop_roots[np.argmax(sizes)]].ravel()
    return (_zone_of_triangle() < 0) & ~np.isin(TRIANGLES, outline).any(axis=1)


def _zone_vertices(names) -> np.ndarray:
    codes = [ZONE_NAMES.index(z) for z in names]
    return np.unique(TRIANGLES[np.isin(_zone_of_triangle(), codes)])


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ h.T
    return p[:, :2] / p[:, 2:3]


def _fit(model: str, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    if model == "homography":
        h, _ = cv2.findHomography(src, dst, 0)
        return h / h[2, 2]
    n = len(src)
    x, y = src[:, 0], src[:, 1]
    one, zero = np.ones(n), np.zeros(n)
    if model == "similarity":
        a = np.r_[np.c_[x, -y, one, zero], np.c_[y, x, zero, one]]
        p = np.linalg.lstsq(a, np.r_[dst[:, 0], dst[:, 1]], rcond=None)[0]
        return np.array([[p[0], -p[1], p[2]], [p[1], p[0], p[3]], [0, 0, 1.0]])
    a = np.r_[np.c_[x, y, one, zero, zero, zero], np.c_[zero, zero, zero, x, y, one]]
    p = np.linalg.lstsq(a, np.r_[dst[:, 0], dst[:, 1]], rcond=None)[0]
    return np.array([[p[0], p[1], p[2]], [p[3], p[4], p[5]], [0, 0, 1.0]])


def global_model(face_b: FaceMesh, face_a: FaceMesh) -> tuple[str, np.ndarray, float]:
    """The global model AFTER -> BEFORE from the rigid mesh vertices, chosen by BIC.

    Returns ``(model, H, rms)``: ``rms`` the RMS residual of the rigid vertices (BEFORE px).
    """
    idx = _zone_vertices(RIGID_ZONES)
    return choose_model(face_a.landmarks[idx, :2], face_b.landmarks[idx, :2])


def rigid_deviation(face_b: FaceMesh, face_a: FaceMesh) -> float:
    """How far the face is from keeping its shape, from the two meshes alone (BEFORE px).

    ``median_i |b_i - H a_i|`` over all mesh vertices, ``H`` the rigid-vertex model
    (`global_model`), ``a_i`` and ``b_i`` the vertices in AFTER and BEFORE: zero when one
    global model maps every vertex (the camera moved, the face kept its shape); a smile
    or a change of perspective moves the vertices off it. It is the vertex-level analogue
    of the fitted field's median magnitude that `photokit.registration.align.align` tests,
    available before the fit. Measured against that field's median (BEFORE px): the
    12 MP pair of ``benchmarks/bench_compare.py`` (one similarity) 1.08 against 0.06; the
    six ``recaptures/zoom`` pairs 1.7-7.8 against 1.3-6.6; six London neutral/smiling
    pairs 0.9-8.8 against 2.6-6.5; two London strangers 4.3 and 6.2 against 6.3 and 8.2.
    """
    _, h, _ = global_model(face_b, face_a)
    return float(np.median(np.linalg.norm(face_b.landmarks[:, :2] - _apply(h, face_a.landmarks[:, :2]),
                                          axis=1)))


def choose_model(src: np.ndarray, dst: np.ndarray) -> tuple[str, np.ndarray, float]:
    """Least-squares similarity, affine and homography ``src -> dst``; the lowest BIC wins.

    ``BIC = n log(RSS / n) + k log(n)``, ``n`` = 2 x points, ``k`` = 4, 6, 8 parameters
    (Schwarz 1978). Returns ``(model, H, rms)``.
    """
    best = None
    n = 2 * len(src)
    for name, k in _MODELS.items():
        h = _fit(name, src, dst)
        rss = float(((_apply(h, src) - dst) ** 2).sum())
        bic = n * np.log(max(rss, 1e-9) / n) + k * np.log(n)
        if best is None or bic < best[0]:
            best = (bic, name, h, np.sqrt(rss / len(src)))
    return best[1], best[2], float(best[3])


def _triangle_ids(pts: np.ndarray, shape) -> np.ndarray:
    """Index of the mesh triangle covering each grid pixel (-1 outside), ``(h, w)`` int32."""
    ids = np.full(shape, -1, np.int32)
    fixed = np.round(pts * 16).astype(np.int32)
    for t, tri in enumerate(TRIANGLES):
        cv2.fillConvexPoly(ids, fixed[tri], int(t), lineType=cv2.LINE_8, shift=4)
    return ids


def _piecewise(pts_b: np.ndarray, pts_to: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Piecewise-affine displacement ``to(x) - x`` on the grid (NaN outside the mesh).

    Each triangle's affine map ``M_t`` sends BEFORE's vertices ``pts_b`` to ``pts_to``:
    ``[x, y, 1] M_t`` with ``M_t = V_b^-1 V_to`` (``V`` the 3x3 vertex matrices).
    """
    vb = np.concatenate([pts_b[TRIANGLES], np.ones(TRIANGLES.shape + (1,))], axis=2)
    vt = pts_to[TRIANGLES]
    ok = np.abs(np.linalg.det(vb)) > 1e-6
    m = np.zeros((len(TRIANGLES), 3, 2))
    m[ok] = np.linalg.solve(vb[ok], vt[ok])
    h, w = ids.shape
    out = np.full((h, w, 2), np.nan, np.float32)
    inside = ids >= 0
    yy, xx = np.nonzero(inside)
    mt = m[ids[inside]]
    out[yy, xx, 0] = xx * mt[:, 0, 0] + yy * mt[:, 1, 0] + mt[:, 2, 0] - xx
    out[yy, xx, 1] = xx * mt[:, 0, 1] + yy * mt[:, 1, 1] + mt[:, 2, 1] - yy
    return out


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; wide ones on a copy reduced by ``k = sigma // 4`` (area), then
    brought back bilinearly (the result is smooth at that scale)."""
    k = int(max(1, sigma // 4))
    if k == 1:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / k)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _smooth_field(f: np.ndarray, weight: np.ndarray, sigma: float, decay: float = 0.05) -> np.ndarray:
    """Normalised convolution ``G*(w f) / (G*w + c)`` (Knutsson & Westin 1993).

    ``c = decay`` times the peak of ``G*w`` lets the field fall to zero far from the weights.
    """
    w = weight.astype(np.float32)
    f = f.astype(np.float32, copy=False)
    num = _blur(f * w[..., None], sigma)
    den = _blur(w, sigma)
    return (num / (den + decay * float(den.max()) + 1e-6)[..., None]).astype(np.float32)


def _extend(f: np.ndarray, inside: np.ndarray, sigma: float) -> np.ndarray:
    """`f` inside the mesh, its smooth decaying continuation outside."""
    f = np.where(inside[..., None], f, np.float32(0))
    return np.where(inside[..., None], f, _smooth_field(f, inside, sigma)).astype(np.float32)


def highpass(gray: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    """Contrast-normalised high-pass of log luma, ``h / sqrt(G * h^2)``, as uint8.

    ``h = log(1 + I) - G_sigma * log(1 + I)``: exposure, white balance and smooth
    lighting changes drop out. The envelope ``G * h^2`` is blurred on a reduced copy
    (`_blur`: it is smooth at its scale, ``2.5 sigma``).
    """
    lg = LOG1P[gray]
    hp = lg - cv2.GaussianBlur(lg, (0, 0), sigma)
    n = hp / (np.sqrt(_blur(hp * hp, 2.5 * sigma)) + 0.01)
    return np.clip(128.0 + 40.0 * n, 0, 255).astype(np.uint8)


def _ncc(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    x, y = a[m].astype(np.float64), b[m].astype(np.float64)
    if x.size < 100:
        return 0.0
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (np.sqrt((x * x).sum() * (y * y).sum()) + 1e-12))


class _Sampler:
    """AFTER's luma around the face, reduced to about the grid's resolution, for
    resampling without aliasing.

    Parameters
    ----------
    gray_a : ndarray
        AFTER's luma, full resolution.
    scale : float
        AFTER pixels per grid pixel (reduced by it when above 1).
    box : tuple of int
        ``(x0, y0, x1, y1)``: the part of AFTER that is resampled (elsewhere its edge is
        repeated).
    """

    def __init__(self, gray_a: np.ndarray, scale: float, box: tuple):
        x0, y0, x1, y1 = box
        crop = gray_a[y0:y1, x0:x1]
        k = max(1.0, float(scale))
        h, w = crop.shape
        if k > 1.0:
            crop = cv2.resize(crop, (max(1, int(round(w / k))), max(1, int(round(h / k)))),
                              interpolation=cv2.INTER_AREA)
        self.img, self.x0, self.y0 = crop, x0, y0
        self.sx, self.sy = crop.shape[1] / w, crop.shape[0] / h

    def at(self, xa: np.ndarray, ya: np.ndarray) -> np.ndarray:
        mx = ((xa - self.x0 + 0.5) * self.sx - 0.5).astype(np.float32)
        my = ((ya - self.y0 + 0.5) * self.sy - 0.5).astype(np.float32)
        return cv2.remap(self.img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _padded_box(box, pad: float, shape) -> tuple[int, int, int, int]:
    """`box` ``(x0, y0, x1, y1)`` grown by `pad` x its long side, clipped to `shape`."""
    x0, y0, x1, y1 = box
    p = pad * max(x1 - x0, y1 - y0)
    return (int(max(0, x0 - p)), int(max(0, y0 - p)), int(min(shape[1], np.ceil(x1 + p))),
            int(min(shape[0], np.ceil(y1 + p))))


def _project(h: np.ndarray, x: np.ndarray, y: np.ndarray):
    """``h`` applied to coordinate arrays."""
    h = h.astype(np.float32)
    den = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    return (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / den, (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / den


def _to_after(h_inv: np.ndarray, to_full: np.ndarray, flow_grid: np.ndarray):
    """AFTER full-resolution coordinates of every grid pixel under ``H^-1 (x + flow)``."""
    gh, gw = flow_grid.shape[:2]
    s = np.float32(to_full[0, 0])
    xb = (s * np.arange(gw, dtype=np.float32) + np.float32(to_full[0, 2]))[None, :] + flow_grid[..., 0] * s
    yb = (s * np.arange(gh, dtype=np.float32) + np.float32(to_full[1, 2]))[:, None] + flow_grid[..., 1] * s
    return _project(h_inv, xb, yb)


def _refit_global(h: np.ndarray, flow: np.ndarray, to_full: np.ndarray, region: np.ndarray):
    """Re-express the mapping ``x -> H^-1 (x + flow(x))`` with the global model fitted to it
    on `region` (`choose_model` on a 6 px lattice), and the field relative to that model.

    Returns ``(H', model, flow')`` with ``flow'(x) = H' H^-1 (x + flow(x)) - x`` (grid px).
    """
    s = np.float32(1.0 / to_full[0, 0])
    h_inv = np.linalg.inv(h)
    xa, ya = _to_after(h_inv, to_full, flow)
    gh, gw = flow.shape[:2]
    xf = (to_full[0, 0] * np.arange(gw) + to_full[0, 2]).astype(np.float32)[None, :]
    yf = (to_full[1, 1] * np.arange(gh) + to_full[1, 2]).astype(np.float32)[:, None]
    sel = np.zeros_like(region)
    sel[::6, ::6] = region[::6, ::6]
    ys, xs = np.nonzero(sel)
    model, h2, _ = choose_model(np.c_[xa[sel], ya[sel]].astype(np.float64), np.c_[xf[0, xs], yf[ys, 0]])
    fx, fy = _project(h2, xa, ya)
    return h2, model, np.stack([(fx - xf) * s, (fy - yf) * s], axis=-1)


def _taper(flow: np.ndarray, inside: np.ndarray, width: float = 0.1) -> np.ndarray:
    """The field outside the mesh brought linearly to zero over the grid's outer `width`
    (share of its short side), so the full-resolution warp has no seam at the grid's edge."""
    gh, gw = inside.shape
    ramp = max(1.0, width * min(gh, gw))
    dy = np.minimum(np.arange(gh), np.arange(gh)[::-1])[:, None]
    dx = np.minimum(np.arange(gw), np.arange(gw)[::-1])[None, :]
    w = np.clip(np.minimum(dx, dy) / ramp, 0.0, 1.0).astype(np.float32)
    w = np.where(inside, 1.0, w).astype(np.float32)
    return (flow * w[..., None]).astype(np.float32)


def _compose(d: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``d(x) + m(x + d(x))`` on the grid."""
    gh, gw = d.shape[:2]
    gx, gy = np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32))
    mm = cv2.remap(m, gx + d[..., 0], gy + d[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return (d + mm).astype(np.float32)


# ------------------------------------------------------------------------------ identity
def _norm_crop(gray: np.ndarray, face: FaceMesh):
    """The face resampled so its inter-pupil distance is `IPD_NORM` px, with the matrix
    (full resolution -> crop; pixel centres: ``x_crop = s (x - x0 + 0.5) - 0.5``)."""
    ipd = inter_pupil_px(face)
    s = IPD_NORM / max(ipd, 1.0)
    x0, y0, x1, y1 = _padded_box(face.box, 0.1, gray.shape)
    size = (max(1, int(round((x1 - x0) * s))), max(1, int(round((y1 - y0) * s))))
    img = cv2.resize(gray[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    sx, sy = size[0] / (x1 - x0), size[1] / (y1 - y0)
    m = np.array([[sx, 0, sx * (0.5 - x0) - 0.5], [0, sy, sy * (0.5 - y0) - 0.5], [0, 0, 1.0]])
    return img, m


def detail_matches(gray_b: np.ndarray, gray_a: np.ndarray, face_b: FaceMesh,
                   face_a: FaceMesh, keep: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Skin-detail descriptor matches between two faces, without geometric guidance.

    Both faces are resampled to an inter-pupil distance of `IPD_NORM` px; SIFT (Lowe 2004)
    keypoints inside each mesh's outline, on CLAHE luma (`detail_features`), are matched
    by Lowe's ratio test (`RATIO`, `match_details`). With `keep`, the two faces'
    features and the matches are also left there (``"before"``, ``"after"``,
    ``"matches"``: `mirror_evidence` reads them).

    Returns
    -------
    (ndarray, ndarray)
        ``(N, 2)`` BEFORE and AFTER full-resolution points of the N matches.
    """
    feats = detail_features(gray_b, face_b), detail_features(gray_a, face_a)
    matches = match_details(*feats)
    if keep is not None:
        keep.update(before=feats[0], after=feats[1], matches=matches)
    return matches


def detail_features(gray: np.ndarray, face: FaceMesh) -> tuple[np.ndarray, np.ndarray | None]:
    """SIFT keypoints (full-resolution points) and descriptors of one face's skin detail
    (see `detail_matches`)."""
    img, m = _norm_crop(gray, face)
    mask = np.zeros(img.shape, np.uint8)
    hull = cv2.convexHull(_apply(m, face.landmarks[:, :2]).astype(np.float32))
    cv2.fillConvexPoly(mask, hull.astype(np.int32), 255)
    eq = cv2.createCLAHE(clipLimit=2.5, tileGridSize=(8, 8)).apply(img)
    kp, desc = cv2.SIFT_create(nfeatures=2000, contrastThreshold=0.02).detectAndCompute(eq, mask)
    pts = np.array([k.pt for k in kp], np.float64).reshape(-1, 2)
    return (_apply(np.linalg.inv(m), pts) if len(pts) else pts), desc


def match_details(feats_b, feats_a) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio-test matches (`RATIO`) of two faces' `detail_features`: their BEFORE
    and AFTER points."""
    (pb, db), (pa, da) = feats_b, feats_a
    none = np.zeros((0, 2))
    if db is None or da is None or len(db) < 2 or len(da) < 2:
        return none, none
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(db, da, k=2)
    good = [(p[0].queryIdx, p[0].trainIdx) for p in knn
            if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if not good:
        return none, none
    ib, ia = np.array(good).T
    return pb[ib], pa[ia]


def identity_evidence(matches: tuple[np.ndarray, np.ndarray], face_a: FaceMesh, mapping) -> tuple[int, float]:
    """Skin-detail matches between the two faces that the alignment explains.

    A match (`detail_matches`) counts when the alignment `mapping` (BEFORE full px ->
    AFTER full px) carries its BEFORE point within `MATCH_RADIUS` x IPD of its AFTER
    point. A mesh aligns any two faces, and after a dense warp strangers' skin correlates
    as well as one person's; but descriptor matches between strangers land at random
    places (their skin details differ), while one person's moles, freckles, pores and
    hairs match where the alignment puts them.

    Returns
    -------
    (int, float)
        The number of explained matches and their share of all ratio-test matches.
    """
    pb, pa = matches
    if not len(pb):
        return 0, 0.0
    ipd_a = inter_pupil_px(face_a)
    err = np.linalg.norm(mapping(pb) - pa, axis=1)
    n = int(np.sum(err < MATCH_RADIUS * ipd_a))
    return n, n / len(pb)


def mirror_evidence(feats_b, feats_a, face_a: FaceMesh, width_a: int, matches=None) -> tuple[int, int]:
    """Skin-detail matches one homography explains with AFTER as given, and mirrored.

    A face photographed by a selfie camera is often mirrored. The mesh cannot tell: it
    labels the eye on the image's left the subject's right eye either way, so a mirrored
    AFTER aligns onto BEFORE as well as the face's symmetry allows, and each cheek is
    compared with the other (QA, 2026-12-08: 12 of 18 such pairs were "ok" at confidence
    up to 0.99, a point carried 20 mm off). Skin detail is not symmetric. AFTER's
    `detail_features` are matched to BEFORE's as given and as the mirror image would give
    them: SIFT on a mirrored image finds the same keypoints mirrored (``x -> W - 1 - x``)
    with the same descriptors, their 4 x 4 cells' rows reversed and each cell's 8
    orientation bins ``o -> -o mod 8`` (`SIFT_MIRROR`; OpenCV's layout, checked exactly on
    a photo and its mirror image), so no second search is needed. Each orientation counts
    the matches one RANSAC homography explains within `MATCH_RADIUS` of AFTER's
    inter-pupil distance. `matches`: the features' matches as given, when made already.

    Returns
    -------
    (int, int)
        Matches explained as given and mirrored; `is_mirrored` reads them.
    """
    ipd = inter_pupil_px(face_a)
    pts, desc = feats_a
    if desc is None:
        return 0, 0
    flipped = pts.copy()
    flipped[:, 0] = width_a - 1 - flipped[:, 0]
    mirror = (flipped, np.ascontiguousarray(desc[:, SIFT_MIRROR]))
    given = match_details(feats_b, feats_a) if matches is None else matches
    return _homography_inliers(*given, ipd), _homography_inliers(*match_details(feats_b, mirror), ipd)


def _homography_inliers(pb: np.ndarray, pa: np.ndarray, ipd: float) -> int:
    """Matches one RANSAC homography BEFORE -> AFTER explains within `MATCH_RADIUS` x `ipd`."""
    if len(pb) < 8:
        return 0
    _, inl = cv2.findHomography(pb, pa, cv2.RANSAC, MATCH_RADIUS * ipd, maxIters=2000, confidence=0.999)
    return 0 if inl is None else int(inl.sum())


#: Where each element of an OpenCV SIFT descriptor (4 x 4 cells of 8 orientation bins, in
#: the keypoint's frame) goes when the image is mirrored left-right (`mirror_evidence`).
SIFT_MIRROR = np.array([((3 - r) * 4 + c) * 8 + (-o) % 8
                        for r in range(4) for c in range(4) for o in range(8)])
#: AFTER is read as mirrored when, mirrored, one homography explains at least this many
#: skin-detail matches (`mirror_evidence`)...
MIRROR_MIN = 30
#: ...and this many times those it explains as given. Measured (docs/ALIGN.md): 18 real
#: photos against their mirror images, as given 7-56, mirrored 616-985; 19 pairs of one
#: person's two photos (zoom re-captures, neutral/smiling, one Obama pair), AFTER
#: mirrored: 9-36 against 44-907 (ratio >= 2.9); not mirrored: 38-850 against 9-33
#: (ratio <= 0.3); pairs without shared skin detail (other days): 2-7 both ways.
MIRROR_RATIO = 2.0


def is_mirrored(given: int, mirrored: int) -> bool:
    """Whether `mirror_evidence` says AFTER is BEFORE's face mirrored (`MIRROR_MIN`,
    `MIRROR_RATIO`)."""
    return mirrored >= MIRROR_MIN and mirrored >= MIRROR_RATIO * given


def _refinement(dis, nb: np.ndarray, na: np.ndarray, skin: np.ndarray, surface: np.ndarray,
                sigma: float, level: int) -> np.ndarray:
    """One dense-refinement pass: DIS flow ``nb -> na`` (grid px), regularised by normalised
    convolution (Gaussian `sigma`, grid px) with weights on `surface` where the flow-warped
    AFTER agrees with BEFORE (blurred absolute difference under twice its median on `skin`:
    a new spot does not bend the field).

    ``level`` 1 computes the pass on a half-resolution copy (Gaussian pyramid): enough for
    a field regularised at ``sigma`` >= 4 grid px, a quarter of the cost.
    """
    gh, gw = nb.shape
    if level:
        nb, na = cv2.pyrDown(nb), cv2.pyrDown(na)
        size = (nb.shape[1], nb.shape[0])
        skin, surface = (cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
                         for m in (skin, surface))
        sigma /= 2
    d = dis.calc(nb, na, None)
    h, w = nb.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(na, gx + d[..., 0], gy + d[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = cv2.GaussianBlur(cv2.absdiff(nb, warped).astype(np.float32), (0, 0), 3 / 2 ** level)
    weight = surface & (err < 2.0 * np.median(err[skin])) if skin.any() else skin
    d = _smooth_field(d, weight, sigma)
    if level:
        d = cv2.resize(d, (gw, gh), interpolation=cv2.INTER_LINEAR) * 2 ** level
    return d


# ------------------------------------------------------------------------------ the fit
def fit_faces(gray_b: np.ndarray, gray_a: np.ndarray, face_b: FaceMesh, face_a: FaceMesh, *,
              refine: bool = True, details=None, start: FaceFit | None = None,
              stop: threading.Event | None = None) -> FaceFit | None:
    """Align AFTER's face onto BEFORE's through the mesh (see the module notes).

    Parameters
    ----------
    gray_b, gray_a : ndarray
        uint8 luma of BEFORE and AFTER, full resolution.
    face_b, face_a : FaceMesh
        The face meshed in each photo.
    refine : bool
        Dense refinement after the mesh deformation (default True).
    details : Future, optional
        `detail_matches` of these faces, already under way (a ``concurrent.futures.Future``).
    start : FaceFit, optional
        `face_grid` of these faces, already made: the fit starts from its geometry.
    stop : threading.Event, optional
        Checked between the fit's steps (each refinement pass, the residual check): once
        set, the fit stops there and returns None (a caller that started it on a spare
        core and no longer needs it).

    Returns
    -------
    FaceFit or None
        None only when stopped.

    Notes
    -----
    The descriptor matches of the identity evidence (`detail_matches`) do not depend on
    the alignment: they are found on a second thread while the alignment is computed.
    """
    if details is not None:
        made = _fit_geometry(gray_b, gray_a, face_b, face_a, refine,
                             geometry=None if start is None else start.geometry, stop=stop)
        if made is None:
            return None
        fit, mapping = made
        fit.matches, fit.match_share = identity_evidence(details.result(), face_a, mapping)
        return fit
    with ThreadPoolExecutor(max_workers=1) as pool:
        return fit_faces(gray_b, gray_a, face_b, face_a, refine=refine, start=start, stop=stop,
                         details=pool.submit(detail_matches, gray_b, gray_a, face_b, face_a))


def face_grid(gray_b: np.ndarray, gray_a: np.ndarray, face_b: FaceMesh, face_a: FaceMesh) -> FaceFit:
    """The grid of `fit_faces` (the face crop, its shared skin, BEFORE's high-pass, AFTER's
    sampler) under the global model and the mesh deformation alone: what `skin_residual`
    needs to judge ANOTHER alignment of the pair, at a small share of the fit's cost (no
    dense refinement, no residual of its own: ``residual_px`` and ``ncc`` are nan, no
    identity evidence: ``matches`` 0). A later `fit_faces` of the pair starts from it
    (``start``) instead of making the grid again.
    """
    return _fit_geometry(gray_b, gray_a, face_b, face_a, False, judge=False)[0]


def _start_geometry(gray_b, gray_a, face_b, face_a, h) -> _Geometry:
    """The `_Geometry` a fit of the pair starts from, under the rigid-vertex model `h`
    (AFTER -> BEFORE)."""
    bh, bw = gray_b.shape
    x0, y0, x1, y1 = face_b.box
    pad = MARGIN * max(x1 - x0, y1 - y0)
    x0, y0 = int(max(0, x0 - pad)), int(max(0, y0 - pad))
    x1, y1 = int(min(bw, x1 + pad)), int(min(bh, y1 + pad))
    s = min(1.0, WORK_SIDE / max(x1 - x0, y1 - y0))
    gw, gh = max(1, int(round((x1 - x0) * s))), max(1, int(round((y1 - y0) * s)))
    s = gw / (x1 - x0)
    # grid x = s (x_full - x0 + 0.5) - 0.5 (cv2.resize pixel-centre convention)
    to_grid = np.array([[s, 0, s * (0.5 - x0) - 0.5], [0, s, s * (0.5 - y0) - 0.5], [0, 0, 1.0]])
    crop = gray_b[y0:y1, x0:x1]
    gb = cv2.resize(crop, (gw, gh), interpolation=cv2.INTER_AREA) if s < 1 else crop.copy()
    gh, gw = gb.shape

    # mesh deformation, grid px: BEFORE vertex -> AFTER vertex seen through H
    lb = _apply(to_grid, face_b.landmarks[:, :2])
    la = _apply(to_grid, _apply(h, face_a.landmarks[:, :2]))
    ids = _triangle_ids(lb, (gh, gw))
    inside = ids >= 0
    ipd_g = s * inter_pupil_px(face_b)
    m_field = _extend(_piecewise(lb, la, ids), inside, 0.5 * ipd_g)

    zones = shared_zones(face_b.visible, face_a.visible)
    codes = np.array([ZONE_NAMES.index(z) for z in zones], int)
    zone_at = _zone_of_triangle()[np.maximum(ids, 0)]
    skin = inside & np.isin(zone_at, codes)
    skin = cv2.erode(skin.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    # the flow is fitted on the surface both photos show: the shared zones and the features
    # between them (brows, lips, eyes' surroundings, nostrils: not skin to measure, but they
    # carry the most texture; a feature that moved is caught by the agreement weight)
    surface = inside & (np.isin(zone_at, codes) | _feature_triangles()[np.maximum(ids, 0)])

    # AFTER's local resolution against the grid: area scale of H^-1 at the face
    jac = abs(np.linalg.det(np.linalg.inv(h)[:2, :2])) ** 0.5 / s
    after_box = _padded_box(face_a.box, 2 * MARGIN, gray_a.shape)
    return _Geometry(to_grid, s, highpass(gb), m_field, inside, skin, surface, zones,
                     _Sampler(gray_a, jac, after_box), ipd_g)


def _fit_geometry(gray_b, gray_a, face_b, face_a, refine, judge=True, geometry=None, stop=None):
    """`fit_faces` without the identity evidence (and without its own residual unless
    `judge`), from `geometry` (`_start_geometry`'s, made by an earlier fit of the pair) or
    afresh; returns the fit and its point mapping (BEFORE full px -> AFTER full px), or
    None when `stop` (a ``threading.Event``) is found set between the steps."""
    def stopped() -> bool:
        return stop is not None and stop.is_set()

    model, h, rms = global_model(face_b, face_a)
    geo = geometry if geometry is not None else _start_geometry(gray_b, gray_a, face_b, face_a, h)
    to_grid, s, nb, m_field, inside, skin, surface, zones, sampler, ipd_g = (
        geo.to_grid, geo.s, geo.nb, geo.m_field, geo.inside, geo.skin, geo.surface, geo.zones, geo.sampler,
        geo.ipd_g)
    to_full = np.linalg.inv(to_grid)
    h_inv = np.linalg.inv(h)
    flow = m_field
    if refine:
        # two passes: the second, on AFTER resampled through the first, catches what the
        # first one's regulariser left (strong perspective change: 15 against 60 cm)
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        for sigma, level in ((FLOW_SIGMA, FIRST_LEVEL), (FLOW_SIGMA / 2, 0)):
            if stopped():
                return None
            na = highpass(sampler.at(*_to_after(h_inv, to_full, flow)))
            d = _refinement(dis, nb, na, skin, surface, sigma * ipd_g, level)
            flow = _compose(d, flow)
    # the global part: the model that best explains the full mapping on the shared skin
    # (the rigid vertices alone carry the mesh's jitter to the face's corners)
    h, model, flow = _refit_global(h, flow, to_full, skin if skin.sum() > 500 else inside)
    flow = _taper(flow, inside)
    h_inv = np.linalg.inv(h)
    fit = FaceFit(h, model, (flow / s).astype(np.float32), to_grid, skin, inside, zones, 0.0, rms, 0.0,
                  0, 0.0, nb, sampler, geo)

    def dense(xb, yb):    # BEFORE full px (grids) -> AFTER full px, the full alignment
        return _project(h_inv, xb + flow[..., 0] / s, yb + flow[..., 1] / s)

    if stopped():
        return None
    fit.residual_px, fit.ncc = skin_residual(fit, dense) if judge else (float("nan"), float("nan"))

    def mapping(pts):     # BEFORE full px -> AFTER full px
        g = _apply(to_grid, pts).astype(np.float32)
        f = cv2.remap(flow, g[:, 0].reshape(-1, 1), g[:, 1].reshape(-1, 1), cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_CONSTANT, borderValue=0).reshape(-1, 2)
        return _apply(h_inv, pts + f / s)

    return fit, mapping


def skin_residual(fit: FaceFit, to_after) -> tuple[float, float]:
    """Misalignment left on the shared skin by an alignment, measured independently.

    AFTER is resampled onto the fit's grid through `to_after` (a function of BEFORE
    full-resolution coordinate arrays ``(x, y)`` returning AFTER's), and a Farneback flow
    (Farneback 2003; not the DIS flow the refinement uses) is computed between the
    contrast-normalised high-passes of BEFORE and resampled AFTER.

    Returns
    -------
    (float, float)
        The flow's median magnitude on `FaceFit.skin` (BEFORE pixels) and the
        correlation of the two high-passes there.
    """
    gh, gw = fit.before_highpass.shape
    to_full = np.linalg.inv(fit.to_grid)
    sc = np.float32(to_full[0, 0])
    xb, yb = np.meshgrid(sc * np.arange(gw, dtype=np.float32) + np.float32(to_full[0, 2]),
                         sc * np.arange(gh, dtype=np.float32) + np.float32(to_full[1, 2]))
    nb, na = fit.before_highpass, highpass(fit.after_sampler.at(*to_after(xb, yb)))
    skin = fit.skin
    ys, xs = np.nonzero(skin)
    if not len(ys):
        return float("inf"), 0.0
    box = (slice(max(0, ys.min() - 16), ys.max() + 17), slice(max(0, xs.min() - 16), xs.max() + 17))
    fb = cv2.calcOpticalFlowFarneback(nb[box], na[box], None, 0.5, 3, 15, 3, 5, 1.2, 0)
    mag = np.hypot(fb[..., 0], fb[..., 1])[skin[box]]
    return float(np.median(mag)) * float(sc), _ncc(nb, na, skin)
