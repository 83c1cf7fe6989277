"""Skin mask and face zones: where on the photo skin colour is measured.

Skin mask (`skin_mask`)
-----------------------
Works on a copy of at most `WORK_SIDE` px; the mask is upsampled at the end.

1. *Candidates*: a broad YCrCb chromaticity box around the human skin locus (Chai and
   Ngan 1999, widened for very light and very dark skin), minus clipped pixels (any
   channel >= 250), very dark pixels (max < 18) and near-grey pixels (chroma
   ``hypot(Cr-128, Cb-128) < 6``). The final full-resolution mask also leaves out every
   clipped pixel (any channel >= 250) and black one (all <= 3).
2. *Adaptive colour model*: a Gaussian in (Cr, Cb) is fitted to seed pixels: the
   central cheek region of each face when faces are given (below the eyes, beside the
   nose), else the candidates, re-weighted twice towards their dominant cluster
   (robust mean/covariance of the pixels within Mahalanobis distance 3). A pixel is
   skin when it is a candidate, its Mahalanobis distance is below `MAHALANOBIS` and its
   normalised chroma is at least half the model's (near-white warm walls are not skin).
   Chroma in YCrCb is normalised by luma (``(Cr-128)/Y``, ``(Cb-128)/Y``) so that the
   model does not depend on shading; this is what lets one Gaussian cover the whole
   tone range of one subject's skin, from highlight to shadow.
3. *Specular glare*: pixels much brighter than the skin (luma above the 99th
   percentile of the seeds + 12) with less than half the skin's chroma are removed.
4. *Clean-up*: morphological opening/closing, then connected components smaller than
   2% of the largest one (e.g. the skin-coloured patches of a ColorChecker, separated
   by its black gaps) or 0.1% of the image are dropped. When faces with both eyes are
   given, a component must also belong to a face's person: at least a quarter of it
   inside a face box, or all of it below that box (neck, chest, hands, arms); and only
   the person's region is kept: the head (``|u| < 1.6 d`` and from ``2.2 d`` above the
   eye line, in the face frame of step 5) and every image row from the chin point
   (``2.0 d`` below the eye midpoint on the face's axis) down. Skin-toned backdrops
   beside or above the head (a painting, gilt drapery) are dropped, also where they
   touch the face through hair or an ear (biden2's painting), and so is a person beside
   the head whose eyes were not found, or a hand raised there. When some face has eyes,
   faces without (Haar firing on a chin or a collar) are ignored for seeds and features.
5. *Face geometry*: eyes, brows and lips are removed by ellipses placed from the eye
   positions (inter-ocular distance ``d``): eyes ``0.32 d x 0.17 d`` half-axes, brows a
   band ``0.22-0.50 d`` above the eye line, lips an ellipse ``0.50 d x 0.25 d`` centred
   ``1.3 d`` below it (anthropometric proportions, Farkas 1994). A smile widens and
   lifts the lips past that ellipse: where the eyes were found, pixels of the mouth
   window (``|u| < 0.7``, ``0.8 < v < 1.7``) whose normalised Cr is `LIP_Z` (2.5) SDs
   above the skin model's, in regions that cross the mouth's middle ``|u| < 0.25`` (a
   reddened nasolabial fold does not), are removed too, with a fringe of ``0.03 d`` (about 2 mm).

Skin of a meshed face (`face_skin_mask`)
----------------------------------------
With faces from `photokit.faces.mesh.find_faces`, the mesh says where the face's skin is:

1. *Face*: the union of the eleven mesh zones (their triangles; eyes, brows, lips and
   nostrils belong to no zone, so they are never skin), rasterised at full resolution.
   Within it, only pixels of the face's own skin colour count: a Gaussian in normalised
   chroma fitted to the cheek zones (step 2's robust fit, without step 1's generic
   candidate box, which pale skin under cool light fails), Mahalanobis distance below
   `FACE_MAHALANOBIS`, luma above `FACE_DARK` times the cheeks' median, not clipped:
   this removes hair over the forehead, a beard, glasses' frames.
2. *Neck and below*: outside the mesh's outline (its convex hull, the face oval), skin
   colour (the generic model of steps 1-3, seeded on the cheeks' candidates) counts
   only below the jaw angles (``v`` along the face's axis past the jaw angles' level),
   on the person (MediaPipe selfie segmentation, `photokit.faces.mesh.person_probability`
   at least `PERSON_MIN`), and in connected regions that touch the face oval: the neck,
   the throat and the skin of the chest and shoulders joined to them. Skin-coloured
   backgrounds never enter (not the person, or not connected to the face); ears and
   scalp (beside or above the jaw line) and hands held away from the neck are left out
   (body areas want a user ROI).

Face zones (`face_zones`)
-------------------------
Polygons in a face frame with origin at the eye midpoint, ``u`` along the eye line and
``v`` perpendicular (downwards), both in units of ``d``: forehead ``|u| < 0.9,
-1.05 < v < -0.5``; periorbital ``0.15 < |u| < 0.85, -0.15 < v < 0.45`` minus the eye
itself; nose ``|u| < 0.22, 0.15 < v < 0.95``; cheeks ``0.3 < |u| < 0.95, 0.45 < v <
1.05``; chin ``|u| < 0.45, 1.6 < v < 1.95``. ``cheek_left`` is the subject's left
cheek, i.e. on the image's right side for a non-mirrored photo (clinical convention).
Without detected eyes the eyes are placed at ``(x + 0.5 w -/+ 0.21 w, y + 0.40 h)`` of
the face box.

Limitations
-----------
Without a face, the model is the photo's dominant skin-coloured cluster: skin-coloured
materials (wood, cat fur: ``skimage.data.coffee()`` and ``chelsea()``) are taken as
skin, since neither colour nor fine texture separates them from real skin reliably.
Body-area photos should carry a user ROI; a grey or blue/green photo gives an empty
mask.

References
----------
D. Chai, K. N. Ngan, "Face segmentation using skin-color map in videophone
applications", IEEE TCSVT 9(4), 551-564 (1999). doi:10.1109/76.767122
M.-H. Yang, N. Ahuja, "Gaussian mixture model for human skin color and its
applications in image and video databases", Proc. SPIE 3656 (1999).
L. G. Farkas, "Anthropometry of the Head and Face", 2nd ed., Raven Press (1994).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..imaging.filters import channel_max, channel_max_within, percentile_u8, shrink
from .mesh import TRIANGLES, person_probability
from .mesh import ZONES as MESH_ZONES

#: Side (px) of the working copy.
WORK_SIDE = 640
#: Mahalanobis distance (in the normalised chroma plane) below which a pixel is skin.
MAHALANOBIS = 3.5
#: Lips: in the mouth window, normalised Cr this many SDs above the skin model's mean.
LIP_Z = 2.5
#: ...and their fringe, this fraction of the inter-ocular distance wide (about 2 mm).
LIP_FRINGE_D = 0.03
#: Share of a skin component that must lie inside a face box (when faces are given) for
#: it to count, unless it lies wholly below the face (module notes, step 4).
FACE_SHARE = 0.25
#: The person's region around a face whose eyes were found, in inter-ocular distances d
#: from the eye midpoint: the head ``|u| < HEAD_HALF_WIDTH_D`` from ``HEAD_TOP_D`` above
#: the eye line, and every image row from the chin point ``CHIN_D`` below it (`_person`).
HEAD_HALF_WIDTH_D = 1.6
HEAD_TOP_D = -2.2
CHIN_D = 2.0

#: Below a meshed face, a pixel is the person's when the selfie segmentation's person
#: probability reaches this.
PERSON_MIN = 0.5
#: Inside a meshed face a pixel is skin when its normalised chroma is within this
#: Mahalanobis distance of the face's own model (fitted on the cheek zones; looser than
#: `MAHALANOBIS`: the mesh already says this is face) and its luma is above `FACE_DARK`
#: times the cheeks' median (hair, a beard and glasses' frames are darker).
FACE_MAHALANOBIS = 4.0
FACE_DARK = 0.6
#: Mesh landmarks: the chin, the mid-forehead, and the jaw angles.
CHIN, FOREHEAD, JAW_ANGLES = 152, 10, (172, 397)
#: Triangles of the mesh that belong to some zone (the rest: eyes' rims, brows, lips, nostrils).
_ZONED = TRIANGLES[MESH_ZONES != "-"]

ZONES = ("forehead", "cheek_left", "cheek_right", "nose", "chin", "periorbital")


def _eye_frame(face) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Eye midpoint, inter-ocular distance d, unit vectors u (along eyes), v (down)."""
    x, y, w, h = face.box
    if len(getattr(face, "eyes", ())) == 2:
        e1, e2 = (np.asarray(e, np.float64) for e in face.eyes)
        if e1[0] > e2[0]:
            e1, e2 = e2, e1
    else:
        e1 = np.array([x + 0.29 * w, y + 0.40 * h])
        e2 = np.array([x + 0.71 * w, y + 0.40 * h])
    mid = (e1 + e2) / 2
    d = float(np.hypot(*(e2 - e1)))
    u = (e2 - e1) / max(d, 1e-6)
    v = np.array([-u[1], u[0]])
    return mid, max(d, 1.0), u, v


def _window(face, shape, scale: float, u_max: float, v_range: tuple[float, float]):
    """Pixel box ``(x0, y0, x1, y1)`` (clipped to `shape`, one pixel of slack) of the
    face-frame region ``|u| < u_max``, ``v`` in `v_range`, on a grid at 1/`scale`."""
    mid, d, u, v = _eye_frame(face)
    corners = np.array([mid + d * (a * u + b * v) for a in (-u_max, u_max) for b in v_range]) * scale
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2
    return max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])


def _face_coords(shape, face, scale: float = 1.0, origin: tuple[int, int] = (0, 0)):
    """Per-pixel (u, v) face coordinates (units of d) on a grid of `shape` whose first
    pixel is `origin` ``(x0, y0)`` (pixels are at full-resolution coordinates / `scale`)."""
    mid, d, u, v = _eye_frame(face)
    h, w = shape
    x0, y0 = origin
    ys, xs = np.mgrid[y0:y0 + h, x0:x0 + w].astype(np.float32)
    xs = (xs + 0.5) / scale - 0.5 - mid[0]
    ys = (ys + 0.5) / scale - 0.5 - mid[1]
    fu = (xs * u[0] + ys * u[1]) / d
    fv = (xs * v[0] + ys * v[1]) / d
    return fu, fv


def _features(fu, fv):
    """Eyes, brows and lips (bool) in face coordinates."""
    eyes = (((np.abs(fu) - 0.5) / 0.32) ** 2 + (fv / 0.17) ** 2) < 1
    brows = (np.abs(fu) > 0.12) & (np.abs(fu) < 0.9) & (fv > -0.50) & (fv < -0.22)
    lips = ((fu / 0.50) ** 2 + ((fv - 1.3) / 0.25) ** 2) < 1
    return eyes | brows | lips


def face_zones(shape: tuple[int, ...], face) -> dict[str, np.ndarray]:
    """Boolean masks of the face zones of one face (full resolution).

    Parameters
    ----------
    shape : tuple
        Image shape ``(H, W[, 3])``.
    face : photokit.faces.haar.Face
        Box and (ideally) both eyes.

    Returns
    -------
    dict
        ``forehead``, ``cheek_left`` (subject's left = image right), ``cheek_right``,
        ``nose``, ``chin``, ``periorbital``; combine with `skin_mask` before measuring.
    """
    h, w = shape[:2]
    # every zone lies within |u| < 0.95, -1.05 < v < 1.95: the face frame is evaluated on
    # that region's bounding box only, the rest of each mask stays False
    x0, y0, x1, y1 = _window(face, (h, w), 1.0, 0.95, (-1.05, 1.95))
    out = {z: np.zeros((h, w), bool) for z in ZONES}
    if x1 <= x0 or y1 <= y0:
        return out
    fu, fv = _face_coords((y1 - y0, x1 - x0), face, origin=(x0, y0))
    au = np.abs(fu)
    eyes = (((au - 0.5) / 0.32) ** 2 + (fv / 0.17) ** 2) < 1
    inside = {
        "forehead": (au < 0.9) & (fv > -1.05) & (fv < -0.5),
        "cheek_left": (fu > 0.3) & (fu < 0.95) & (fv > 0.45) & (fv < 1.05),
        "cheek_right": (fu < -0.3) & (fu > -0.95) & (fv > 0.45) & (fv < 1.05),
        "nose": (au < 0.22) & (fv > 0.15) & (fv < 0.95),
        "chin": (au < 0.45) & (fv > 1.6) & (fv < 1.95),
        "periorbital": (au > 0.15) & (au < 0.85) & (fv > -0.15) & (fv < 0.45) & ~eyes,
    }
    for z, m in inside.items():
        out[z][y0:y1, x0:x1] = m
    return out


def _anchored(lab: np.ndarray, stats: np.ndarray, faces, scale: float) -> np.ndarray:
    """Components (of `connectedComponentsWithStats`) that belong to a face's person: at
    least `FACE_SHARE` of the component inside a face box, or all of it below the face
    box's bottom (neck, chest, hands, arms). See module notes, step 4."""
    n = len(stats)
    ok = np.zeros(n, bool)
    h, w = lab.shape
    for f in faces:
        x, y, bw, bh = (int(round(v * scale)) for v in f.box)
        x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
        if x1 > x0 and y1 > y0:
            inside = np.bincount(lab[y0:y1, x0:x1].ravel(), minlength=n)
            ok |= inside >= FACE_SHARE * stats[:, cv2.CC_STAT_AREA]
        ok |= stats[:, cv2.CC_STAT_TOP] >= y1
    return ok


def _person(faces, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Pixels (on a grid at 1/`scale`) that may be the skin of the persons of `faces`
    (eyes found): each head, ``|u| < HEAD_HALF_WIDTH_D`` and ``v > HEAD_TOP_D`` in the
    face frame, and every image row from the chin point (``v = CHIN_D`` on the face's
    axis) down: neck, chest, hands, arms, also under a tilted head. A skin-toned
    backdrop joined to the face through hair or an ear is cut off here, where component
    anchoring cannot drop it."""
    out = np.zeros(shape, bool)
    rows = (np.arange(shape[0], dtype=np.float64) + 0.5) / scale - 0.5
    for f in faces:
        fu, fv = _face_coords(shape, f, scale)
        mid, d, _, v = _eye_frame(f)
        out |= (np.abs(fu) < HEAD_HALF_WIDTH_D) & (fv > HEAD_TOP_D)
        out[rows >= mid[1] + CHIN_D * d * v[1]] = True
    return out


def _chroma(small: np.ndarray):
    """Luma Y and luma-normalised chroma ((Cr-128)/Y, (Cb-128)/Y) * 100, float32."""
    ycc = cv2.cvtColor(small, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    y = ycc[..., 0]
    yy = np.maximum(y, 8.0)
    return y, ycc[..., 1] - 128, ycc[..., 2] - 128, 100 * (ycc[..., 1] - 128) / yy, \
        100 * (ycc[..., 2] - 128) / yy


def _gauss(x: np.ndarray):
    """Robust mean and covariance of (N, 2) samples (two trimming passes)."""
    mu = np.median(x, axis=0)
    cov = np.cov(x.T) + np.eye(2) * 1e-3
    for _ in range(3):
        ic = np.linalg.inv(cov)
        dx = x - mu
        d2 = np.einsum("ni,ij,nj->n", dx, ic, dx)
        keep = x[d2 < 9.0]
        if len(keep) < 20:
            break
        mu = keep.mean(axis=0)
        cov = np.cov(keep.T) + np.eye(2) * 4.0
    return mu, cov


def skin_mask(rgb8: np.ndarray, *, faces=None, exclude: np.ndarray | None = None,
              copy: tuple | None = None) -> np.ndarray:
    """Boolean mask of skin pixels, full resolution.

    Parameters
    ----------
    rgb8 : ndarray, uint8, (H, W, 3)
        The photo as decoded (sRGB code values).
    faces : list of photokit.faces.haar.Face, optional
        Detected faces: the colour model is seeded on their cheeks and their eyes,
        brows and lips are removed.
    exclude : ndarray of bool, optional
        Pixels never to count as skin (a colour card, transparent pixels).
    copy : tuple, optional
        `working_copy` of `rgb8` and `exclude`, when made already.

    Returns
    -------
    ndarray of bool, (H, W)
        Empty when the photo holds no skin-coloured region.
    """
    rgb8 = np.asarray(rgb8)
    if rgb8.ndim != 3 or rgb8.shape[2] != 3:
        return np.zeros(rgb8.shape[:2], bool)
    h, w = rgb8.shape[:2]
    s, small, y, chroma, ncr, ncb, cand, ex8, ex = copy or working_copy(rgb8, exclude)
    sh, sw = small.shape[:2]
    # faces whose eyes were found are trusted; beside one, an eyeless detection is most
    # likely Haar firing on skin or clothing (a chin, a collar) and would cut false holes
    eyed = [f for f in faces or () if len(f.eyes) == 2]
    faces = eyed or list(faces or ())
    feats = np.zeros((sh, sw), bool)
    seeds = np.zeros((sh, sw), bool)
    for f in faces:
        # features and cheeks lie within |u| < 0.9, -0.5 < v < 1.55: that box only
        x0, y0, x1, y1 = _window(f, (sh, sw), s, 0.9, (-0.5, 1.55))
        if x1 <= x0 or y1 <= y0:
            continue
        fu, fv = _face_coords((y1 - y0, x1 - x0), f, s, origin=(x0, y0))
        feats[y0:y1, x0:x1] |= _features(fu, fv)
        seeds[y0:y1, x0:x1] |= (np.abs(fu) > 0.3) & (np.abs(fu) < 0.8) & (fv > 0.45) & (fv < 0.95)
    seeds &= cand
    if np.count_nonzero(seeds) < 50:   # no usable cheek (or no face): the candidates
        seeds = cand
    if np.count_nonzero(cand) < max(50, 0.002 * sh * sw):
        return np.zeros((h, w), bool)
    m, mu, cov = _colour_model(y, chroma, ncr, ncb, cand, seeds)
    if np.count_nonzero(m) < 0.002 * sh * sw:
        return np.zeros((h, w), bool)
    # lips the fixed ellipse misses (a smile widens and lifts them): in the mouth window of
    # a face whose eyes were found, pixels redder than the skin model by LIP_Z SDs
    red_cut = mu[0] + LIP_Z * float(np.sqrt(cov[0, 0]))
    for f in eyed:
        x0, y0, x1, y1 = _window(f, (sh, sw), s, 0.7, (0.8, 1.7))
        if x1 <= x0 or y1 <= y0:
            continue
        fu, fv = _face_coords((y1 - y0, x1 - x0), f, s, origin=(x0, y0))
        mouth = (np.abs(fu) < 0.7) & (fv > 0.8) & (fv < 1.7)
        red = (mouth & (ncr[y0:y1, x0:x1] > red_cut)).view(np.uint8)
        # only what crosses the mouth's middle (lips do; a reddened nasolabial fold,
        # beside the nose and mouth, does not)
        n, lab = cv2.connectedComponents(red, connectivity=8)
        middle = np.abs(fu) < 0.25
        touch = np.zeros(n, bool)
        touch[np.unique(lab[middle & (red > 0)])] = True
        touch[0] = False
        lips = touch[lab].view(np.uint8)
        # with their fringe: the lip colour fades into the skin over a few pixels
        r = max(1, int(round(LIP_FRINGE_D * f.interocular_px * s)))
        ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        feats[y0:y1, x0:x1] |= cv2.dilate(lips, ker).view(bool)
    k = max(3, int(round(sw / 160)) | 1)
    ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    m8 = cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_OPEN, ker)
    m8 = cv2.morphologyEx(m8, cv2.MORPH_CLOSE, ker)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m8, connectivity=8)
    if n > 1:
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = np.zeros(n, bool)
        keep[1:] = (areas >= 0.02 * areas.max()) & (areas >= 0.001 * sh * sw)
        # only faces whose eyes were found anchor (Haar also fires on plain skin), and
        # only when some component is theirs
        anchored = _anchored(lab, stats, eyed, s) if eyed else None
        theirs = anchored is not None and bool((keep & anchored).any())
        if theirs:
            keep &= anchored
        m8 = keep[lab].astype(np.uint8)
        if theirs:
            m8[~_person(eyed, (sh, sw), s)] = 0
    m8[feats] = 0
    if exclude is not None:
        m8[ex] = 0
    return _to_full(m8, rgb8, s, ex8)


def working_grid(shape) -> tuple[float, tuple[int, int]]:
    """``(s, (rows, cols))``: the scale and shape of the working copy (`working_copy`) of
    a photo of `shape`, ``s = min(1, WORK_SIDE / long side)``, each side ``round(side s)``."""
    h, w = shape[:2]
    s = min(1.0, WORK_SIDE / max(h, w))
    return s, ((int(round(h * s)), int(round(w * s))) if s < 1 else (h, w))


def working_copy(rgb8: np.ndarray, exclude: np.ndarray | None = None) -> tuple:
    """The working copy (at most `WORK_SIDE` px) and its skin candidates (step 1): what
    `skin_mask` and `face_skin_mask` compute before they look at any face (``copy=``:
    `photokit.measurement.measure.measure` makes it beside the face pass).

    Returns ``(s, small, Y, chroma, ncr, ncb, cand, ex8, ex)``: the scale of the copy,
    the copy, its luma, chroma ``hypot(Cr-128, Cb-128)``, normalised chroma, candidates,
    and `exclude` as 0/1 bytes (full resolution) and as bool on the copy (None without).
    """
    s, (sh, sw) = working_grid(rgb8.shape)
    small = shrink(rgb8, (sw, sh)) if s < 1 else rgb8
    y, cr, cb, ncr, ncb = _chroma(small)
    chroma = np.hypot(cr, cb)
    cand = (cr >= 3) & (cr <= 57) & (cb >= -58) & (cb <= 2)
    top = channel_max(small)
    cand &= (top < 250) & (top >= 18) & (chroma >= 6)
    cand &= (cr > -0.6 * cb)  # hue towards red/orange, not yellow-green
    ex8 = ex = None
    if exclude is not None:
        ex8 = np.ascontiguousarray(exclude, dtype=bool).view(np.uint8)   # no copy
        ex = cv2.resize(ex8, (sw, sh), interpolation=cv2.INTER_NEAREST) > 0
        cand &= ~ex
    return s, small, y, chroma, ncr, ncb, cand, ex8, ex


def _colour_model(y, chroma, ncr, ncb, cand, seeds):
    """Skin by colour (steps 2 and 3): the Gaussian fitted to `seeds`, less glare.

    Returns ``(mask, mu, cov)``: candidates within `MAHALANOBIS` of the model with at
    least half its normalised chroma, and not specular glare (luma above the seeds' 99th
    percentile + 12 with under half their median chroma); the model's mean and covariance.
    """
    x = np.stack([ncr[seeds], ncb[seeds]], axis=1)
    if len(x) > 20000:   # a systematic sample (a random one without replacement costs a
        x = x[:: len(x) // 20000][:20000]   # permutation of all seeds: ~9 ms on a close-up)
    mu, cov = _gauss(x)
    ic = np.linalg.inv(cov)
    d0, d1 = ncr - mu[0], ncb - mu[1]
    d2 = ic[0, 0] * d0 * d0 + 2 * ic[0, 1] * d0 * d1 + ic[1, 1] * d1 * d1
    nc = np.hypot(ncr, ncb)
    m = cand & (d2 < MAHALANOBIS ** 2) & (nc >= 0.5 * float(np.hypot(*mu)))
    # specular glare: much brighter and much less saturated than the skin
    ys = y[seeds]
    # (Y is 8-bit luma held as float: its percentile from the histogram, exactly)
    glare = (y > percentile_u8(ys.astype(np.uint8), 99) + 12) & (chroma < 0.5 * np.median(chroma[seeds]))
    m &= ~glare
    return m, mu, cov


def _to_full(m8: np.ndarray, rgb8: np.ndarray, s: float, ex8: np.ndarray | None,
             within: tuple[np.ndarray, int, int] | None = None) -> np.ndarray:
    """The working-copy mask `m8` (0/1 uint8) at full resolution, without clipped (any
    channel >= 250), black (all <= 3) and excluded pixels, and, when `within` ``(window,
    r0, c0)`` is given, only where the window (0/1 uint8, full resolution, its first pixel
    at ``(r0, c0)``) is 1 (beyond the window: everywhere)."""
    h, w = rgb8.shape[:2]
    # in place where possible (fresh 12 MP arrays are slow to touch)
    out = cv2.resize(m8 * 255, (w, h), interpolation=cv2.INTER_LINEAR)
    cv2.threshold(out, 127, 1, cv2.THRESH_BINARY, dst=out)   # 0/1, a valid bool view
    if s < 1:
        # within the box of the mask only: beyond it there is nothing to clear
        x, y, bw, bh = cv2.boundingRect(out)
        part = out[y:y + bh, x:x + bw]
        cv2.bitwise_and(part, channel_max_within(rgb8[y:y + bh, x:x + bw], 4, 249), dst=part)
    if within is not None:
        win, r0, c0 = within
        part = out[r0:r0 + win.shape[0], c0:c0 + win.shape[1]]
        cv2.bitwise_and(part, win, dst=part)
    if ex8 is not None:
        cv2.subtract(out, ex8, dst=out)   # 0/1 minus 0/1, saturated: out and not exclude
    return out.view(bool)


def _mesh_fill(landmarks: np.ndarray, shape, scale: float, triangles: np.ndarray | None) -> np.ndarray:
    """0/1 uint8 mask on a grid of `shape` at 1/`scale` of the photo: the given mesh
    `triangles`, or (None) the mesh's convex hull (the face oval)."""
    out = np.zeros(shape[:2], np.uint8)
    pts = np.round(((landmarks[:, :2] + 0.5) * scale - 0.5) * 16).astype(np.int32)   # 4 fraction bits
    if triangles is None:
        cv2.fillConvexPoly(out, cv2.convexHull(pts), 1, lineType=cv2.LINE_8, shift=4)
    else:
        for t in triangles:
            cv2.fillConvexPoly(out, pts[t], 1, lineType=cv2.LINE_8, shift=4)
    return out


def face_outline(face, shape, scale: float = 1.0) -> np.ndarray:
    """The face oval (convex hull of the mesh) of a `photokit.faces.mesh.FaceMesh`, bool
    on a grid of `shape` at 1/`scale` of the photo."""
    return _mesh_fill(face.landmarks, shape, scale, None).view(bool)


def _below_jaw(face, shape, scale: float) -> np.ndarray:
    """Bool on the grid of `shape` (at 1/`scale`): below the jaw angles' level along the
    face's axis (chin minus forehead)."""
    xy = (face.landmarks[:, :2] + 0.5) * scale - 0.5
    down = xy[CHIN] - xy[FOREHEAD]
    down /= max(float(np.hypot(*down)), 1e-6)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    v = (xs - xy[CHIN, 0]) * down[0] + (ys - xy[CHIN, 1]) * down[1]
    jaw = float(np.mean([(xy[j] - xy[CHIN]) @ down for j in JAW_ANGLES]))
    return v > jaw


def face_skin_mask(rgb8: np.ndarray, faces, *, exclude: np.ndarray | None = None,
                   copy: tuple | None = None, person=None) -> np.ndarray:
    """Boolean mask of the skin of meshed faces and their necks, full resolution.

    Parameters
    ----------
    rgb8 : ndarray, uint8, (H, W, 3)
        The photo as decoded (sRGB code values).
    faces : list of photokit.faces.mesh.FaceMesh
        Faces from `photokit.faces.mesh.find_faces` (at least one).
    exclude : ndarray of bool, optional
        Pixels never to count as skin (a colour card, transparent pixels).
    copy : tuple, optional
        `working_copy` of `rgb8` and `exclude`, when made already.
    person : callable, optional
        Returns `photokit.faces.mesh.person_probability` of `rgb8` on the working copy's
        grid (``(sh, sw)``, `working_copy`), called when the neck step needs it (made
        elsewhere meanwhile, e.g. a future's ``result``); default: made here.

    Returns
    -------
    ndarray of bool, (H, W)
        The mesh zones' skin-coloured pixels and the neck's (module notes, "Skin of a
        meshed face"); clipped (any channel >= 250) and black (all <= 3) pixels left out.
    """
    rgb8 = np.asarray(rgb8)
    h, w = rgb8.shape[:2]
    if not faces:
        raise ValueError("face_skin_mask needs at least one meshed face")
    s, small, y, chroma, ncr, ncb, cand, ex8, ex = copy or working_copy(rgb8, exclude)
    sh, sw = small.shape[:2]
    zones = np.zeros((sh, sw), np.uint8)
    oval = np.zeros((sh, sw), np.uint8)
    seeds = np.zeros((sh, sw), bool)
    cheeks = TRIANGLES[np.isin(MESH_ZONES, ["K", "k"])]
    for f in faces:
        zones |= _mesh_fill(f.landmarks, (sh, sw), s, _ZONED)
        oval |= _mesh_fill(f.landmarks, (sh, sw), s, None)
        seeds |= _mesh_fill(f.landmarks, (sh, sw), s, cheeks).view(bool)
    usable = (channel_max(small) < 250) & (y >= 18)
    if np.count_nonzero(seeds & usable) < 20:
        return np.zeros((h, w), bool)
    # the face: its own skin colour, seeded on all of the cheeks, without the generic
    # candidate box (pale skin under cool light falls outside it)
    x = np.stack([ncr[seeds & usable], ncb[seeds & usable]], axis=1)
    mu, cov = _gauss(x[:: max(1, len(x) // 20000)])
    ic = np.linalg.inv(cov)
    d0, d1 = ncr - mu[0], ncb - mu[1]
    d2 = ic[0, 0] * d0 * d0 + 2 * ic[0, 1] * d0 * d1 + ic[1, 1] * d1 * d1
    face = usable & (d2 < FACE_MAHALANOBIS ** 2) & (y > FACE_DARK * np.median(y[seeds & usable]))
    # the neck: the generic model (candidates), seeded on the cheeks' candidates
    neck_seeds = seeds & cand if np.count_nonzero(seeds & cand) >= 50 else cand & zones.view(bool)
    if np.count_nonzero(neck_seeds) < 20:
        neck_seeds = face & zones.view(bool)
    m, _, _ = _colour_model(y, chroma, ncr, ncb, cand, neck_seeds)
    k = max(3, int(round(sw / 160)) | 1)
    ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    # neck and below: skin colour on the person below each face's jaw, in regions
    # touching the face oval
    band = np.zeros((sh, sw), bool)
    for f in faces:
        band |= _below_jaw(f, (sh, sw), s)
    band &= (person_probability(rgb8, (sh, sw)) if person is None else person()) >= PERSON_MIN
    neck = cv2.morphologyEx((m & band & ~oval.view(bool)).view(np.uint8), cv2.MORPH_OPEN, ker)
    rim = cv2.dilate(oval, ker).view(bool)
    n, lab = cv2.connectedComponents(neck, connectivity=8)
    touch = np.zeros(n, bool)
    touch[np.unique(lab[rim & (neck > 0)])] = True
    touch[0] = False
    keep = (face & oval.view(bool)) | touch[lab]
    # inside the oval: only the zones, rasterised at full resolution (sharp eye and lip
    # edges), in a window around the faces (beyond it nothing is inside an oval)
    pad = int(np.ceil(1.0 / s)) + 2
    lo = np.min([f.landmarks[:, :2].min(0) for f in faces], axis=0)
    hi = np.max([f.landmarks[:, :2].max(0) for f in faces], axis=0)
    c0, r0 = (max(0, int(np.floor(v)) - pad) for v in lo)
    c1, r1 = (min(n, int(np.ceil(v)) + pad + 1) for v, n in zip(hi, (w, h), strict=True))
    within = np.zeros((r1 - r0, c1 - c0), np.uint8)
    for f in faces:
        within |= _mesh_fill(f.landmarks - np.array([c0, r0, 0.0]), within.shape, 1.0, _ZONED)
    # the oval as cv2.resize(oval, (w, h), INTER_NEAREST) has it: pixel (x, y) takes the
    # copy's pixel (floor(x sw / w), floor(y sh / h))
    ys = np.floor(np.arange(r0, r1) * (sh / h)).astype(np.intp)
    xs = np.floor(np.arange(c0, c1) * (sw / w)).astype(np.intp)
    within |= 1 - oval.take(ys, axis=0).take(xs, axis=1)   # oval[np.ix_(ys, xs)], faster
    return _to_full(keep.view(np.uint8), rgb8, s, ex8, (within, r0, c0))
