"""Alignment of an AFTER photo onto its BEFORE photo, locked onto the subject.

``align(before, after)`` returns an `Alignment`: a global model ``H`` (3x3, maps AFTER
pixels to BEFORE pixels, SPEC convention), a smooth dense residual field on the subject
(the face is not a plane), and an honest verdict (``status``, ``reason``, calibrated
``confidence``).

**Faces through the mesh** (``method="mesh"``): when both photos show a face that
`photokit.faces.search.face_pass` meshes (and a user ROI, if any, lies on it), the face is
aligned by `photokit.registration.mesh.fit_faces`: a global model from the mesh's rigid
vertices, a piecewise-affine deformation on the mesh triangles, dense DIS refinement on
the skin both photos show, the global part re-fitted to the full mapping, and an
independent residual check. The verdict (`_align_mesh`) rests on the identity evidence
(skin-detail matches the alignment explains, `identity_posterior`), the overlap, the
residual and the confidence; pose change, shared zones and an expression change are
reported (``warnings``). When one global model nearly explains the face (the mesh
field's median under the tolerance: the camera moved, the face kept its shape), the
feature path below is also run and kept if it leaves at most a third of the tolerance
(or less than the mesh) on the shared skin (``method="features"``, with the mesh's
evidence; when the skin detail was too weak for the mesh's identity evidence, the
feature path's own identity checks vouch, with a warning). The feature path does not
depend on the mesh fit: when the meshes alone already say the face kept its shape
(`photokit.registration.mesh.rigid_deviation` under the tolerance) it runs first (both
photos' features on two threads, then the fit beside the mesh's grid, the identity's
descriptor matches and, if the fit is still running, the mesh's refinement, stopped if the
feature fit is kept), which changes when things run, not what is returned. A pair's working
grids and SIFT features are made once (`_Frames`) for every path it takes. When the
detector finds the face in one photo only (too close, cut by the frame), the other's face
is meshed where the feature alignment below carries the found mesh
(`photokit.faces.mesh.face_near`), and the pair goes through the mesh after all.
Otherwise:

Pipeline (on a working grid of at most `WORK_SIDE` px, features at `FEATURE_SIDE` px;
never on the full 12 MP image; the only full-resolution step is `Alignment.warp`):

1. **Subject** (`photokit.registration.subject`): user ROI, else the face (head ellipse), else the
   whole frame. The model is estimated from matches on the subject only, so when the
   patient moves and the room does not, the patient is aligned. The rest of the frame
   is then tested: if it moves with the subject (the camera moved), its matches join
   the fit (better conditioned over the frame; ``subject`` reads ``face+scene``), but
   only when they leave the fit on the subject as good as before (median residual
   within 10 % + 0.05 px).
2. **Features**: SIFT (Lowe 2004) on CLAHE-equalised luma (illumination-normalised),
   Lowe's ratio test (0.8), then MAGSAC++ (``cv2.USAC_MAGSAC``; Barath et al. 2020)
   and iterated 3-sigma trimming. When the subject is the frame and fewer than
   `MIN_INLIERS` matches are consistent, the change of viewpoint may be too strong for
   SIFT (a plane seen at a grazing angle): tilted views are simulated (ASIFT, Morel & Yu
   2009; `TILT_VIEWS` at `TILT_SIDE` px) for a first model, AFTER is rectified by it and
   matched again with plain SIFT (`_tilt_matches`; ``tilted`` says so). Everything after
   (refinement, checks, confidence) is the same, but "ok" needs a confidence of at least
   `MIN_CONFIDENCE_TILTED`. Unrelated pairs find no model there either (at most 5
   distinct consistent matches on the benchmark's 46 negatives).
3. **Model choice by evidence**: similarity, affine and homography are least-squares
   fitted on the inliers and the one of lowest BIC, ``n log(RSS/n) + k log(n)`` with
   ``n`` = 2 x inliers and ``k`` = 4, 6, 8 parameters, is kept.
4. **Sub-pixel refinement**: ECC (Evangelidis & Psarakis 2008) between BEFORE and the
   pre-warped AFTER on contrast-normalised high-passed log-luminance, ``n = h / sqrt(G *
   h^2)`` with ``h = log I - G_sigma * log I``, which removes exposure, white balance and
   smooth lighting changes; pixels whose local residual is unusual (changed skin,
   occlusions) are left out, judged in two passes: gross change only (residual >
   `ECC_GROSS` x its median) around the feature estimate at half the ECC resolution,
   then > 2 x its median at full ECC resolution around
   the pass-1 result (judged at the feature estimate alone, the mask drops the misaligned
   edges that carry the correction and biases ECC towards that estimate); accepted only
   if it raises the correlation.
5. **Dense residual** (face not planar): DIS optical flow (Kroeger et al. 2016) between
   BEFORE and the globally aligned AFTER, confined to the subject, then heavily
   regularised by robust normalised convolution (Gaussian of sigma `FLOW_SIGMA` x the
   subject size, Cauchy reweighting against the smooth field). Vectors where BEFORE and
   the flow-warped AFTER still disagree (what no motion explains: a new spot, a scab,
   redness edges) are dropped with a margin, so real change does not bend the field
   (``tests/test_align.py`` adds a spot and a redness patch to AFTER and checks both
   stay in place, at their size, and that the field is the same as without them).
6. **Verdict**: ``failed`` when there are too few consistent matches, the transform is
   implausible, AFTER covers too little of BEFORE, the aligned subjects do not look
   alike (correlation of the normalised high-pass below `MIN_NCC` on the subject, or
   below `MIN_NCC_CORE` on the inner face after the dense field: the identity check,
   since hair, ears and the room can match while the face is another person's; measured
   >= 0.77 for the same face under blur, noise and JPEG q 60, <= 0.28 for another face
   pasted into the same photo) or the predicted error is too large.
   ``confidence`` is the probability that the corner error (BEFORE's corners mapped into
   AFTER through the inverse model, AFTER pixels: the usual score) is below the tolerance
   ``max(3 px, 0.1 % of the diagonal)``, assuming a Rayleigh-distributed error:
   ``P = 1 - exp(-t^2 / (2 v))``, ``v`` the mean per-axis corner variance. ``v`` is the
   larger of two estimates of the random error: the covariance of the least-squares
   model, ``Cov = s^2 (J^T J)^-1`` propagated to the corners (Hartley & Zisserman 2004,
   section 5.2; ``s`` the robust (MAD) inlier residual; converted to AFTER pixels by the
   local area scale of ``H^-1``), and a delete-a-block jackknife (Kuensch 1989) of a
   spatially balanced fit to tracked points (`_point_estimate`), which sees the spatially
   correlated error of a scene that is not quite one plane (a curled print, lens
   distortion) that the covariance of independent residuals understates. Plus ``d^2 / 2``
   where ``d`` is the largest corner distance between three independent estimators of
   the same model (features, ECC, tracked points), whose disagreement measures
   systematic error. All scaled by how much the aligned subjects look alike
   (``clip((ncc - MIN_NCC) / 0.2, 0, 1)``, times the same on the inner face with
   `MIN_NCC_CORE`). The corners are those of the subject's box (of the image when the
   subject is the frame or the scene moved with it).
7. **A face that is not the subject**: when the face found in BEFORE has no consistent
   matches in AFTER (different people, or a face printed on a poster or a magazine in a
   scene), the whole frame is tried, with that face kept as the identity check; the
   reason of a refusal then says what failed on the face and on the frame.

References
----------
D. G. Lowe, "Distinctive image features from scale-invariant keypoints", IJCV 60(2),
91-110 (2004). doi:10.1023/B:VISI.0000029664.99615.94
J.-M. Morel, G. Yu, "ASIFT: A new framework for fully affine invariant image
comparison", SIAM J. Imaging Sciences 2(2), 438-469 (2009). doi:10.1137/080732730
D. Barath, J. Noskova, M. Ivashechkin, J. Matas, "MAGSAC++, a fast, reliable and
accurate robust estimator", CVPR 2020. doi:10.1109/CVPR42600.2020.00138
G. D. Evangelidis, E. Z. Psarakis, "Parametric image alignment using enhanced
correlation coefficient maximization", IEEE TPAMI 30(10), 1858-1865 (2008).
doi:10.1109/TPAMI.2008.113
T. Kroeger, R. Timofte, D. Dai, L. Van Gool, "Fast optical flow using dense inverse
search", ECCV 2016. doi:10.1007/978-3-319-46493-0_29
R. Hartley, A. Zisserman, "Multiple View Geometry in Computer Vision", 2nd ed.,
Cambridge University Press (2004).
J. Shi, C. Tomasi, "Good features to track", CVPR 1994. doi:10.1109/CVPR.1994.323794
J.-Y. Bouguet, "Pyramidal implementation of the Lucas Kanade feature tracker", Intel
Corporation, Microprocessor Research Labs (2000).
H. R. Kuensch, "The jackknife and the bootstrap for general stationary observations",
Annals of Statistics 17(3), 1217-1241 (1989). doi:10.1214/aos/1176347265
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from ..faces.mesh import face_near, inter_pupil_px
from ..faces.search import face_pass
from ..io.photo import Photo, load
from ..io.roi import read_roi
from .mesh import (
    LOG1P,
    FaceFit,
    detail_matches,
    expression,
    face_grid,
    fit_faces,
    identity_evidence,
    is_mirrored,
    mirror_evidence,
    pose_change,
    rigid_deviation,
    shared_zones,
    skin_residual,
)
from .subject import Subject, find_subject, mesh_subject

#: Long side of the working grid (the whole frame, reduced) for features, ECC and flow.
WORK_SIDE = 1000
#: Long side of the image SIFT runs on (SIFT doubles it internally).
FEATURE_SIDE = 640
#: Long side of the region ECC runs on.
ECC_SIDE = 640
#: Lowe's ratio test.
RATIO = 0.8
#: MAGSAC++ inlier threshold, working-grid pixels.
MAGSAC_THRESHOLD = 3.0
#: Fewest consistent matches accepted.
MIN_INLIERS = 20
#: Smallest normalised high-pass correlation between BEFORE and aligned AFTER.
MIN_NCC = 0.12
#: Smallest normalised high-pass correlation on the inner face (identity check).
MIN_NCC_CORE = 0.45
#: Smallest fraction of BEFORE covered by AFTER.
MIN_OVERLAP = 0.2
#: Smallest confidence reported as "ok".
MIN_CONFIDENCE = 0.2
#: Smallest confidence reported as "ok" for a model found only through simulated tilts.
MIN_CONFIDENCE_TILTED = 0.5
#: Sigma of the dense-field regulariser as a fraction of the subject's long side.
FLOW_SIGMA = 0.05
#: Largest dense correction, as a fraction of the subject's long side.
FLOW_MAX = 0.05
#: Dense fields whose median magnitude is below this (working px) are dropped.
FLOW_MIN = 0.15
#: ECC pass 1 leaves out only pixels whose local residual exceeds this many times its median.
ECC_GROSS = 20.0
#: High-pass sigma (working px) for ECC / flow images.
HP_SIGMA = 6.0
#: Views ``(tilt, roll in degrees)`` simulated when a scene has too few consistent matches.
TILT_VIEWS = ((1.0, 0.0), (2.0, 0.0), (2.0, 45.0), (2.0, 90.0), (2.0, 135.0))
#: Long side of the images the tilted views are simulated on.
TILT_SIDE = 500
#: SIFT features kept per simulated view.
TILT_FEATURES = 1500

#: Smallest confidence reported as "ok" for a face aligned through the mesh.
MIN_CONFIDENCE_MESH = 0.5
#: Identity posterior ``P(same | n) = 1 / (1 + exp(-ID_SLOPE (log(1 + n) - ID_MIDPOINT)))``,
#: ``n`` the skin-detail matches the mesh alignment explains: linear discriminant of
#: ``log(1 + n)`` between the measured same-person and different-person pairs (equal
#: priors; docs/ALIGN.md, ``benchmarks/bench_recapture.py`` prints the fit).
ID_SLOPE = 6.13
#: See `ID_SLOPE`.
ID_MIDPOINT = 3.23
#: A user ROI is followed through the mesh when at least this share of it lies on the face.
MESH_ROI_SHARE = 0.5
#: Largest median distance (share of AFTER's inter-pupil distance) between BEFORE's mesh
#: vertices carried by a feature alignment and AFTER's own vertices for that alignment
#: to replace the mesh's. Right alignments of the zoom re-captures leave 1.2-2.9 % (mesh
#: jitter, and the silhouette sliding with perspective); a homography that followed the
#: wall behind a cheek ROI left 13-61 % with a residual of 1.1-1.6 px on the frame.
FEATURE_VERTEX_MAX = 0.05

_MODELS = {"similarity": 4, "affine": 6, "homography": 8}


@dataclass(eq=False)
class Alignment:
    """The alignment of AFTER onto BEFORE.

    Attributes
    ----------
    status : str
        ``"ok"`` or ``"failed"``.
    reason : str or None
        Why it failed (None when ok).
    homography : ndarray
        3x3, maps AFTER pixels to BEFORE pixels (``[xb, yb, 1] ~ H @ [xa, ya, 1]``); the
        global part of the alignment. Identity when failed before any model was found.
    confidence : float
        Probability (0-1) that the error at the image corners is below `tolerance_px`.
    inliers : int
        Feature matches consistent with the model.
    residual_px : float or None
        Median distance (BEFORE pixels) between the matched features after the full
        alignment (global model and dense field).
    overlap : float
        Fraction of BEFORE's pixels that AFTER covers.
    flow : ndarray or None
        Dense residual field ``(h, w, 2)`` float32 in BEFORE pixels, sampled on the
        working grid given by `flow_grid`: BEFORE pixel ``x`` takes AFTER's pixel at
        ``H^-1 (x + flow(x))``. None when no dense correction was needed.
    flow_grid : ndarray or None
        3x3 matrix mapping BEFORE full-resolution pixels to `flow` grid indices.
    before_shape, after_shape : tuple
        ``(height, width)`` of the photos.
    model : str or None
        ``similarity``, ``affine`` or ``homography`` (chosen by BIC).
    subject : str
        ``roi``, ``face`` or ``frame``: what the alignment followed.
    ncc : float or None
        Correlation of the normalised high-pass of BEFORE and aligned AFTER on the subject.
    ncc_core : float or None
        The same after the dense field, on the inner face: the identity check (faces only).
    flow_px : float or None
        Median magnitude of the dense correction on the subject (BEFORE pixels).
    tolerance_px : float
        The corner error that `confidence` refers to.
    tilted : bool
        The matches came from the strong-viewpoint fallback (simulated tilts, then
        guided matching; see `_tilt_matches`).
    method : str
        ``"mesh"`` (through the face mesh, `photokit.registration.mesh`) or
        ``"features"`` (feature matches on the subject).
    pose_change : dict or None
        AFTER's head pose minus BEFORE's, ``{"yaw", "pitch", "roll"}`` degrees (mesh only).
    zones : list of str or None
        Face zones both photos show (`photokit.registration.mesh.shared_zones`; mesh only).
    expression : dict or None
        `photokit.registration.mesh.expression` of the pair (mesh only).
    identity : dict or None
        Same-person evidence: ``matches`` (skin-detail matches the alignment explains),
        ``share`` (of all ratio-test matches) and ``p_same`` (mesh only).
    warnings : list of str
        What the alignment cannot make comparable (an expression change, hidden zones).
    faces : tuple of FaceMesh or None
        BEFORE's and AFTER's meshes the pair was judged on (mesh evidence only).
    vouched : ndarray of bool or None
        Where the alignment vouches for the mapping, on the `flow_grid` (the face mesh of
        BEFORE); None: wherever AFTER covers BEFORE.
    """

    status: str
    reason: str | None
    homography: np.ndarray
    confidence: float
    inliers: int
    residual_px: float | None
    overlap: float
    before_shape: tuple[int, int]
    after_shape: tuple[int, int]
    flow: np.ndarray | None = field(default=None, repr=False)
    flow_grid: np.ndarray | None = field(default=None, repr=False)
    model: str | None = None
    subject: str = "frame"
    ncc: float | None = None
    ncc_core: float | None = None
    flow_px: float | None = None
    tolerance_px: float = 3.0
    tilted: bool = False
    method: str = "features"
    pose_change: dict | None = None
    zones: list | None = None
    expression: dict | None = None
    identity: dict | None = None
    warnings: list = field(default_factory=list)
    faces: tuple | None = field(default=None, repr=False)
    vouched: np.ndarray | None = field(default=None, repr=False)
    _valid: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        """SPEC ``align --json`` keys, plus ``model``, ``subject``, ``ncc``, ``flow_px``,
        ``method``, ``pose_change``, ``zones``, ``expression``, ``identity``, ``warnings``.

        ``homography`` is null when the alignment failed before any model was found.
        """
        return {
            "status": self.status, "reason": self.reason,
            "homography": None if (self.status != "ok" and self.model is None)
            else [[float(v) for v in row] for row in self.homography],
            "confidence": round(float(self.confidence), 4), "inliers": int(self.inliers),
            "residual_px": None if self.residual_px is None else round(float(self.residual_px), 3),
            "overlap": round(float(self.overlap), 4),
            "model": self.model, "subject": self.subject,
            "ncc": None if self.ncc is None else round(float(self.ncc), 4),
            "ncc_core": None if self.ncc_core is None else round(float(self.ncc_core), 4),
            "flow_px": None if self.flow_px is None else round(float(self.flow_px), 3),
            "tolerance_px": round(float(self.tolerance_px), 2),
            "method": self.method, "pose_change": self.pose_change, "zones": self.zones,
            "expression": self.expression, "identity": self.identity, "warnings": list(self.warnings),
        }

    # -- using the alignment -------------------------------------------------------------
    def displacement(self, box: tuple[int, int, int, int] | None = None) -> np.ndarray | None:
        """The dense field at full resolution over `box` ``(x0, y0, x1, y1)`` of BEFORE.

        Returns ``(y1-y0, x1-x0, 2)`` float32 BEFORE pixels, or None without a field.
        """
        if self.flow is None:
            return None
        h, w = self.before_shape
        x0, y0, x1, y1 = box or (0, 0, w, h)
        s, tx, ty = self.flow_grid[0, 0], self.flow_grid[0, 2], self.flow_grid[1, 2]
        # full pixel x -> grid index s*x + t; remap samples the small field directly
        gx = (np.arange(x0, x1, dtype=np.float32) * s + tx).astype(np.float32)
        gy = (np.arange(y0, y1, dtype=np.float32) * s + ty).astype(np.float32)
        mx = np.broadcast_to(gx[None, :], (y1 - y0, x1 - x0))
        my = np.broadcast_to(gy[:, None], (y1 - y0, x1 - x0))
        return cv2.remap(self.flow, np.ascontiguousarray(mx), np.ascontiguousarray(my),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def _flow_box(self) -> tuple[int, int, int, int] | None:
        if self.flow is None:
            return None
        h, w = self.before_shape
        inv = np.linalg.inv(self.flow_grid)
        fh, fw = self.flow.shape[:2]
        a = inv @ np.array([0.0, 0.0, 1.0])
        b = inv @ np.array([fw, fh, 1.0])
        return (max(0, int(a[0])), max(0, int(a[1])), min(w, int(np.ceil(b[0])) + 1),
                min(h, int(np.ceil(b[1])) + 1))

    def warp(self, after_pixels, *, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """AFTER resampled onto BEFORE's pixel grid with the full alignment.

        Parameters
        ----------
        after_pixels : ndarray, path or Photo
            AFTER's pixels (any dtype/channels OpenCV can remap), or anything `load` takes.
        interpolation : int
            OpenCV interpolation flag (``INTER_NEAREST`` for masks).

        Returns
        -------
        ndarray
            Same size as BEFORE, AFTER's own values; zero where AFTER does not reach.
        """
        px = after_pixels if isinstance(after_pixels, np.ndarray) else load(after_pixels).pixels
        if px.shape[:2] != tuple(self.after_shape):
            raise ValueError(f"AFTER has shape {px.shape[:2]}, alignment expects {self.after_shape}")
        if px.dtype == np.bool_:
            px = px.astype(np.uint8)
        h, w = self.before_shape
        out = cv2.warpPerspective(px, self.homography, (w, h), flags=interpolation,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        box = self._flow_box()
        if box is None:
            return out
        x0, y0, x1, y1 = box
        disp = self.displacement(box)
        xs = np.arange(x0, x1, dtype=np.float32)[None, :] + disp[..., 0]
        ys = np.arange(y0, y1, dtype=np.float32)[:, None] + disp[..., 1]
        hi = np.linalg.inv(self.homography).astype(np.float64)
        den = hi[2, 0] * xs + hi[2, 1] * ys + hi[2, 2]
        mx = ((hi[0, 0] * xs + hi[0, 1] * ys + hi[0, 2]) / den).astype(np.float32)
        my = ((hi[1, 0] * xs + hi[1, 1] * ys + hi[1, 2]) / den).astype(np.float32)
        out[y0:y1, x0:x1] = cv2.remap(px, mx, my, interpolation, borderMode=cv2.BORDER_CONSTANT,
                                      borderValue=0)
        return out

    def warp_onto(self, arr: np.ndarray, out_shape: tuple[int, int], out_scale: float, *,
                  arr_scale: float = 1.0, area: bool = False,
                  interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """An AFTER-grid array resampled onto a reduced BEFORE grid (a report's display
        grid, the lighting check's): what `warp` followed by an area reduction shows, at a
        small share of its cost.

        `arr` is AFTER at `arr_scale` of full resolution, the output (`out_shape`) BEFORE at
        `out_scale`. An output pixel ``d`` sits at full-resolution BEFORE ``x = (d + 0.5) /
        out_scale - 0.5``; it takes AFTER's value at ``H^-1 (x + flow(x))`` (`dense_map`),
        at `arr` index ``(a + 0.5) arr_scale - 0.5``. With `area`, `arr` is first area-
        averaged down by ``r = sqrt|det J| arr_scale / out_scale`` (when above 1), the
        number of its pixels an output pixel spans at BEFORE's centre (``J`` the Jacobian
        of ``H^-1``), so each output pixel averages about what an area reduction of
        `warp` does (a point sample would alias the skin's texture).

        Parameters
        ----------
        arr : ndarray
            AFTER's pixels (or a map on AFTER's grid) at `arr_scale`.
        out_shape : (int, int)
            Rows and columns of the output grid.
        out_scale : float
            The output grid's pixels per full-resolution BEFORE pixel.
        arr_scale : float
            `arr`'s pixels per full-resolution AFTER pixel.
        area : bool
            Area-average `arr` down first (for photos; not for maps with NaN).
        interpolation : int
            OpenCV interpolation flag of the resampling.

        Returns
        -------
        ndarray
            `out_shape` (plus `arr`'s channels); NaN where AFTER does not reach for float
            arrays, zero for others.
        """
        sx = sy = float(arr_scale)
        if area:
            hb, wb = self.before_shape
            centre = np.array([[wb / 2.0, hb / 2.0]])
            r = np.sqrt(_area_scale(np.linalg.inv(self.homography), centre)) * arr_scale / out_scale
            if r > 1.0:
                ha, wa = arr.shape[:2]
                size = (max(1, int(round(wa / r))), max(1, int(round(ha / r))))
                arr = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
                sx, sy = sx * size[0] / wa, sy * size[1] / ha
        h, w = out_shape
        xd = (np.arange(w, dtype=np.float32) + np.float32(0.5)) / np.float32(out_scale) - np.float32(0.5)
        yd = (np.arange(h, dtype=np.float32) + np.float32(0.5)) / np.float32(out_scale) - np.float32(0.5)
        xa, ya = self.dense_map(*np.meshgrid(xd, yd))
        mx = (xa + np.float32(0.5)) * np.float32(sx) - np.float32(0.5)
        my = (ya + np.float32(0.5)) * np.float32(sy) - np.float32(0.5)
        border = float("nan") if arr.dtype.kind == "f" else 0
        return cv2.remap(arr, mx, my, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=border)

    def _field_at(self, pts: np.ndarray) -> np.ndarray:
        """The dense field at BEFORE points (N x 2), bilinear; zero without a field."""
        if self.flow is None or not len(pts):
            return np.zeros((len(pts), 2))
        g = _apply(self.flow_grid, pts).astype(np.float32)
        f = cv2.remap(self.flow, g[:, 0].reshape(-1, 1), g[:, 1].reshape(-1, 1), cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return f.reshape(-1, 2).astype(np.float64)

    def dense_map(self, xb: np.ndarray, yb: np.ndarray):
        """AFTER coordinates ``H^-1 (x + f(x))`` of BEFORE coordinate arrays (full px)."""
        xb, yb = np.asarray(xb, np.float32), np.asarray(yb, np.float32)
        if self.flow is not None:
            s, tx, ty = self.flow_grid[0, 0], self.flow_grid[0, 2], self.flow_grid[1, 2]
            f = cv2.remap(self.flow, (xb * s + tx).astype(np.float32), (yb * s + ty).astype(np.float32),
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            xb, yb = xb + f[..., 0], yb + f[..., 1]
        hi = np.linalg.inv(self.homography)
        den = hi[2, 0] * xb + hi[2, 1] * yb + hi[2, 2]
        return ((hi[0, 0] * xb + hi[0, 1] * yb + hi[0, 2]) / den).astype(np.float32), \
            ((hi[1, 0] * xb + hi[1, 1] * yb + hi[1, 2]) / den).astype(np.float32)

    def _vouched_at(self, pts: np.ndarray) -> np.ndarray:
        if self.vouched is None:
            return np.ones(len(pts), bool)
        g = np.round(_apply(self.flow_grid, pts)).astype(int)
        gh, gw = self.vouched.shape
        inside = (g[:, 0] >= 0) & (g[:, 0] < gw) & (g[:, 1] >= 0) & (g[:, 1] < gh)
        out = np.zeros(len(pts), bool)
        out[inside] = self.vouched[g[inside, 1], g[inside, 0]]
        return out

    def map_points(self, points, inverse: bool = False) -> list:
        """Carry points through the full alignment (global model and dense field).

        Parameters
        ----------
        points : array_like, (N, 2)
            ``(x, y)`` pixels of BEFORE (of AFTER with `inverse`); None entries (what an
            earlier call returned for a point it could not carry) stay None.
        inverse : bool
            Map AFTER -> BEFORE instead of BEFORE -> AFTER.

        Returns
        -------
        list
            Per point ``[x, y]`` in the other photo, or None where the point or its
            image falls outside either photo, or outside the region the alignment vouches
            for (`vouched`, the face for a mesh alignment), or the alignment failed.

        Notes
        -----
        BEFORE -> AFTER is ``a = H^-1 (x + f(x))`` (``f`` the dense field). The inverse
        solves ``x + f(x) = y``, ``y = H a``, by the fixed-point iteration
        ``x_{k+1} = y - f(x_k)`` (a contraction: the field is smooth, its gradient far
        below 1), 10 steps.
        """
        if not isinstance(points, np.ndarray) and any(p is None for p in points):
            given = [p is not None for p in points]
            known = iter(self.map_points([p for p in points if p is not None], inverse))
            return [next(known) if g else None for g in given]
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        if not self.ok or not len(pts):
            return [None] * len(pts)
        if inverse:
            b, a = self.after_to_before(pts), pts
        else:
            b = pts
            a = _apply(np.linalg.inv(self.homography), pts + self._field_at(pts))
        hb, wb = self.before_shape
        ha, wa = self.after_shape
        ok = (np.isfinite(a).all(1) & np.isfinite(b).all(1) & (b[:, 0] >= 0) & (b[:, 0] <= wb - 1)
              & (b[:, 1] >= 0) & (b[:, 1] <= hb - 1) & (a[:, 0] >= 0) & (a[:, 0] <= wa - 1)
              & (a[:, 1] >= 0) & (a[:, 1] <= ha - 1))
        ok &= self._vouched_at(np.where(np.isfinite(b), b, 0.0))
        out = b if inverse else a
        return [[round(float(p[0]), 3), round(float(p[1]), 3)] if k else None
                for p, k in zip(out, ok, strict=True)]

    def after_to_before(self, points) -> np.ndarray:
        """AFTER pixels ``(N, 2)`` carried to BEFORE by the full alignment, as arrays and
        wherever they fall (`map_points` with `inverse` checks the photos' frames and the
        region the alignment vouches for): ``x`` solving ``x + f(x) = H a`` by the
        fixed-point iteration ``x_{k+1} = H a - f(x_k)``, 10 steps (see `map_points`)."""
        y = _apply(self.homography, np.asarray(points, np.float64).reshape(-1, 2))
        x = y.copy()
        for _ in range(10):
            x = y - self._field_at(x)
        return x

    def valid_mask(self) -> np.ndarray:
        """Boolean mask on BEFORE's grid: pixels that AFTER covers (1 px eroded).

        Made once per alignment (a warp of AFTER's whole frame: ``compare`` and its report
        both need it) and returned read-only.
        """
        if self._valid is None:
            ones = np.ones(self.after_shape, np.uint8)
            m = self.warp(ones, interpolation=cv2.INTER_NEAREST)
            self._valid = cv2.erode(m, np.ones((3, 3), np.uint8)).astype(bool)
            self._valid.flags.writeable = False
        return self._valid

    def roi_to_after(self, mask_before: np.ndarray) -> np.ndarray:
        """Carry a BEFORE-grid boolean mask onto AFTER's grid.

        AFTER pixel ``a`` maps to BEFORE at ``y = H a``; the dense field is inverted by
        one fixed-point step, ``x = y - flow(y)`` (the field is smooth and small).
        """
        mask_before = np.asarray(mask_before)
        if mask_before.shape[:2] != tuple(self.before_shape):
            raise ValueError(f"mask has shape {mask_before.shape[:2]}, BEFORE is {self.before_shape}")
        src = mask_before.astype(np.uint8)
        ha, wa = self.after_shape
        if self.flow is None:
            out = cv2.warpPerspective(src, np.linalg.inv(self.homography), (wa, ha),
                                      flags=cv2.INTER_NEAREST, borderValue=0)
            return out.astype(bool)
        # only AFTER's pixels that H takes within the field's reach of the mask can land on
        # it: the mask's box widened by the largest displacement (and 2 px for the rounding),
        # carried into AFTER by H^-1 (the same result as over all of AFTER, a fraction of
        # the work for a face on a 12 MP photo)
        out = np.zeros((ha, wa), bool)
        bx, by, bw, bh = cv2.boundingRect(src)
        if bw == 0:
            return out
        h = self.homography
        reach = float(np.abs(self.flow).max()) + 2.0
        corners = np.array([[bx - reach, by - reach], [bx + bw + reach, by - reach],
                            [bx - reach, by + bh + reach], [bx + bw + reach, by + bh + reach]])
        hi = np.linalg.inv(h)
        den = corners @ hi[2, :2] + hi[2, 2]
        x0, y0, x1, y1 = 0, 0, wa, ha
        if np.all(den > 0) or np.all(den < 0):   # no horizon inside: the box's image is convex
            c = _apply(hi, corners)
            x0, y0 = max(0, int(np.floor(c[:, 0].min())) - 1), max(0, int(np.floor(c[:, 1].min())) - 1)
            x1, y1 = min(wa, int(np.ceil(c[:, 0].max())) + 2), min(ha, int(np.ceil(c[:, 1].max())) + 2)
            if x1 <= x0 or y1 <= y0:
                return out
        # grid of AFTER pixels -> BEFORE positions, then subtract the field there
        xa = np.arange(x0, x1, dtype=np.float32)[None, :]
        ya = np.arange(y0, y1, dtype=np.float32)[:, None]
        den = h[2, 0] * xa + h[2, 1] * ya + h[2, 2]
        yx = ((h[0, 0] * xa + h[0, 1] * ya + h[0, 2]) / den).astype(np.float32)
        yy = ((h[1, 0] * xa + h[1, 1] * ya + h[1, 2]) / den).astype(np.float32)
        s, tx, ty = self.flow_grid[0, 0], self.flow_grid[0, 2], self.flow_grid[1, 2]
        f = cv2.remap(self.flow, (yx * s + tx).astype(np.float32), (yy * s + ty).astype(np.float32),
                      cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out[y0:y1, x0:x1] = cv2.remap(src, yx - f[..., 0], yy - f[..., 1], cv2.INTER_NEAREST,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
        return out


# ---------------------------------------------------------------------------------------
# working grids


@dataclass
class _Grid:
    """A photo reduced to at most WORK_SIDE: image, subject mask, full->grid matrix."""

    gray: np.ndarray      # uint8 luma on the grid
    mask: np.ndarray      # uint8 subject mask on the grid
    to_grid: np.ndarray   # 3x3 full-resolution -> grid

    @property
    def scale(self) -> float:
        return float(self.to_grid[0, 0])

    def on(self, subject: Subject) -> _Grid:
        """This grid with `subject` (full-resolution) as its mask."""
        gh, gw = self.gray.shape
        return replace(self, mask=subject.mask_on(self.to_grid, (gw, gh)))


def _grid(gray: np.ndarray, side: int = WORK_SIDE) -> _Grid:
    """`gray` area-reduced to at most `side` px on its long side, the whole frame its subject."""
    small, sx, sy = _resize(gray, min(1.0, side / max(gray.shape)))
    # pixel centres: x_grid = s (x + 0.5) - 0.5 (cv2.resize convention)
    m = np.array([[sx, 0, sx * 0.5 - 0.5], [0, sy, sy * 0.5 - 0.5], [0, 0, 1]], np.float64)
    return _Grid(np.ascontiguousarray(small), None, m).on(_frame(gray.shape))


def _frame(shape) -> Subject:
    """The whole frame of a photo of `shape` as the subject."""
    return Subject("frame", (0, 0, shape[1], shape[0]), shape[:2])


@dataclass
class _Frames:
    """Both photos on their working grids (whole frame) with their SIFT features
    (`_features`): none of it depends on the subject, so every `_align_on` of a pair
    shares one."""

    grid_b: _Grid
    grid_a: _Grid
    features_b: tuple
    features_a: tuple


def _frames(gb: np.ndarray, ga: np.ndarray) -> _Frames:
    """`_Frames` of a pair, the two photos' features side by side on two threads."""
    grid_b, grid_a = _grid(gb), _grid(ga)
    with ThreadPoolExecutor(max_workers=1) as pool:
        after = pool.submit(_features, grid_a)
        return _Frames(grid_b, grid_a, _features(grid_b), after.result())


def _resize(img: np.ndarray, s: float):
    """Area-downscale by `s` to a whole size; returns the image and the exact x/y scales."""
    if s >= 1.0:
        return img, 1.0, 1.0
    h, w = img.shape[:2]
    dw, dh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    return cv2.resize(img, (dw, dh), interpolation=cv2.INTER_AREA), dw / w, dh / h


def _smooth(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of `sigma` px; wide ones on a copy reduced by ``k = sigma // 2``
    (area), then brought back bilinearly (the result is smooth at that scale anyway)."""
    k = int(min(4, sigma // 2))
    if k < 2:
        return cv2.GaussianBlur(img, (0, 0), sigma)
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / k)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _normalised_highpass(gray: np.ndarray, sigma: float = HP_SIGMA) -> np.ndarray:
    """Contrast-normalised high-pass of log luma: ``h / sqrt(G * h^2)`` (float32; `gray` uint8)."""
    lg = LOG1P[gray]
    hp = lg - _smooth(lg, sigma)
    energy = _smooth(hp * hp, 2.5 * sigma)
    return hp / (np.sqrt(energy) + 0.01)


def _to_u8(n: np.ndarray) -> np.ndarray:
    return np.clip(128.0 + 40.0 * n, 0, 255).astype(np.uint8)


def _features(g: _Grid):
    """SIFT keypoints (grid coordinates) and descriptors on CLAHE luma at FEATURE_SIDE."""
    # created per call: OpenCV feature objects are not safe to share between threads
    small, fx, fy = _resize(g.gray, min(1.0, FEATURE_SIDE / max(g.gray.shape)))
    eq = cv2.createCLAHE(clipLimit=2.5, tileGridSize=(8, 8)).apply(small)
    kp, desc = cv2.SIFT_create(nfeatures=3000, contrastThreshold=0.02).detectAndCompute(eq, None)
    pts = np.array([k.pt for k in kp], np.float64).reshape(-1, 2)
    pts = (pts + 0.5) / np.array([fx, fy]) - 0.5
    return pts, desc


def _match(da, db, mutual: bool = False) -> np.ndarray:
    """Ratio-test matches ``(i_after, i_before)``; one-to-one on the BEFORE side.

    With `mutual`, a match is also kept only if the AFTER descriptor is the nearest
    neighbour of its BEFORE partner (mutual nearest neighbours).
    """
    if da is None or db is None or len(da) < 2 or len(db) < 2:
        return np.empty((0, 2), int)
    flann = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 64})
    knn = flann.knnMatch(da, db, k=2)
    best = {}
    for pair in knn:
        if len(pair) < 2:
            continue
        m, n = pair
        if m.distance < RATIO * n.distance:
            if m.trainIdx not in best or best[m.trainIdx][1] > m.distance:
                best[m.trainIdx] = (m.queryIdx, m.distance)
    out = np.array([(q, t) for t, (q, _) in best.items()], int).reshape(-1, 2)
    if mutual and len(out):
        back = {p[0].queryIdx: p[0].trainIdx for p in flann.knnMatch(db, da, k=1) if p}
        out = out[np.array([back.get(t) == q for q, t in out])]
    return out


def _consistent(src_all: np.ndarray, dst_all: np.ndarray, mask: np.ndarray):
    """The matches on the subject (`mask`, BEFORE grid) and their MAGSAC++ homography.

    Returns ``(on_subject, inliers, n_inliers, h)``: `on_subject` a boolean per match,
    `inliers` a boolean per match on the subject, `h` grid AFTER -> grid BEFORE or None.
    """
    ib = np.round(dst_all).astype(int) if len(dst_all) else np.zeros((0, 2), int)
    gh, gw = mask.shape
    on_subject = mask[np.clip(ib[:, 1], 0, gh - 1), np.clip(ib[:, 0], 0, gw - 1)] > 0
    if on_subject.sum() < MIN_INLIERS:
        return on_subject, np.zeros(int(on_subject.sum()), bool), 0, None
    hg, inl = cv2.findHomography(src_all[on_subject], dst_all[on_subject], cv2.USAC_MAGSAC,
                                 MAGSAC_THRESHOLD, maxIters=5000, confidence=0.9999)
    inl = np.zeros(int(on_subject.sum()), bool) if inl is None else inl.ravel().astype(bool)
    return on_subject, inl, int(inl.sum()), hg


def _tilt_matches(grid_b: _Grid, grid_a: _Grid, pts_b: np.ndarray, desc_b: np.ndarray,
                  bshape: tuple, ashape: tuple):
    """Matches for a strong change of viewpoint: tilt simulation, then guided matching.

    SIFT is invariant to similarity, not to the anisotropic squeeze of a plane seen at a
    grazing angle (a tilt ``t = 1 / cos(theta)`` > ~2). ASIFT (Morel & Yu 2009) simulates
    the views: each image is also described after a squeeze by ``t`` along directions
    ``phi`` (`TILT_VIEWS`, via ``cv2.AffineFeature``) at `TILT_SIDE` px. Mutual nearest
    neighbours passing Lowe's ratio give a first homography by MAGSAC++, accepted with at
    least `MIN_INLIERS` *distinct* inliers (a point found in several views counts once).
    Tilted-view keypoints are poorly localised, so AFTER is then rectified onto BEFORE's
    grid by that model and matched again with ordinary SIFT (`_features`, `_match`); the
    points found on the rectified AFTER are mapped back through the model's inverse.

    Returns
    -------
    tuple of ndarray or None
        ``(src, dst)``: AFTER grid and BEFORE grid points of the guided matches, or None
        when no model was found.
    """
    feats = []
    tilts = [float(t) for t, _ in TILT_VIEWS]
    rolls = [float(r) for _, r in TILT_VIEWS]
    for g in (grid_b, grid_a):
        small, fx, fy = _resize(g.gray, min(1.0, TILT_SIDE / max(g.gray.shape)))
        eq = cv2.createCLAHE(clipLimit=2.5, tileGridSize=(8, 8)).apply(small)
        af = cv2.AffineFeature_create(cv2.SIFT_create(nfeatures=TILT_FEATURES, contrastThreshold=0.02))
        af.setViewParams(tilts, rolls)
        kp, desc = af.detectAndCompute(eq, None)
        if desc is None or len(kp) < MIN_INLIERS:
            return None
        pts = (np.array([k.pt for k in kp], np.float64).reshape(-1, 2) + 0.5) / np.array([fx, fy]) - 0.5
        feats.append((pts, desc))
    (tb, db), (ta, da) = feats
    pairs = _match(da, db, mutual=True)
    if len(pairs) < MIN_INLIERS:
        return None
    src, dst = ta[pairs[:, 0]], tb[pairs[:, 1]]
    h0, inl = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, MAGSAC_THRESHOLD, maxIters=5000,
                                 confidence=0.9999)
    if h0 is None or inl is None:
        return None
    inl = inl.ravel().astype(bool)
    distinct = min(len(np.unique(np.round(p[inl] / 2.0), axis=0)) for p in (src, dst))
    if distinct < MIN_INLIERS:
        return None
    # guided matching on AFTER rectified onto BEFORE's grid (full-resolution model for _prewarp)
    h_full0 = np.linalg.inv(grid_b.to_grid) @ h0 @ grid_a.to_grid
    if _plausible(h_full0, bshape, ashape) is not None:
        return None
    rect = _Grid(_prewarp(grid_a, h_full0, grid_b), grid_b.mask, grid_b.to_grid)
    pts_r, desc_r = _features(rect)
    pairs = _match(desc_r, desc_b)
    if len(pairs) < MIN_INLIERS:
        return None
    return _apply(np.linalg.inv(h0), pts_r[pairs[:, 0]]), pts_b[pairs[:, 1]]


# ---------------------------------------------------------------------------------------
# models


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ h.T
    return p[:, :2] / p[:, 2:3]


def _params_to_h(model: str, p: np.ndarray) -> np.ndarray:
    if model == "similarity":
        a, b, tx, ty = p
        return np.array([[a, -b, tx], [b, a, ty], [0, 0, 1.0]])
    if model == "affine":
        return np.array([[p[0], p[1], p[2]], [p[3], p[4], p[5]], [0, 0, 1.0]])
    return np.append(p, 1.0).reshape(3, 3)


def _h_to_params(model: str, h: np.ndarray) -> np.ndarray:
    h = h / h[2, 2]
    if model == "similarity":
        return np.array([h[0, 0], h[1, 0], h[0, 2], h[1, 2]])
    if model == "affine":
        return h[:2].ravel().copy()
    return h.ravel()[:8].copy()


def _fit(model: str, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares model mapping src -> dst (Hartley-normalised DLT + LM for homography)."""
    n = len(src)
    if model == "homography":
        h, _ = cv2.findHomography(src, dst, 0)
        return h / h[2, 2]
    x, y = src[:, 0], src[:, 1]
    one, zero = np.ones(n), np.zeros(n)
    if model == "similarity":
        a = np.r_[np.c_[x, -y, one, zero], np.c_[y, x, zero, one]]
    else:
        a = np.r_[np.c_[x, y, one, zero, zero, zero], np.c_[zero, zero, zero, x, y, one]]
    b = np.r_[dst[:, 0], dst[:, 1]]
    p = np.linalg.lstsq(a, b, rcond=None)[0]
    return _params_to_h(model, p)


def _trim(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Inliers kept by iterated trimming of the homography fit: distance < 3 sigma.

    ``sigma`` is the robust per-axis noise, median distance / 1.177 (the median of a
    2-D isotropic Gaussian's radius is 1.177 sigma); at least 0.3 px is allowed.
    """
    keep = np.ones(len(src), bool)
    for _ in range(3):
        if keep.sum() < 8:
            break
        h = _fit("homography", src[keep], dst[keep])
        r = np.linalg.norm(_apply(h, src) - dst, axis=1)
        sigma = np.median(r[keep]) / 1.177
        new = r < max(3.0 * sigma, 0.3)
        if new.sum() < 8 or np.array_equal(new, keep):
            break
        keep = new
    return keep


def _choose_model(src, dst) -> tuple[str, np.ndarray]:
    """Lowest BIC among similarity, affine, homography (least squares on the inliers)."""
    n = 2 * len(src)
    best = None
    for model, k in _MODELS.items():
        h = _fit(model, src, dst)
        rss = float(np.sum((_apply(h, src) - dst) ** 2)) + 1e-9
        bic = n * np.log(rss / n) + k * np.log(n)
        if best is None or bic < best[0]:
            best = (bic, model, h)
    return best[1], best[2]


def _corner_variance(model: str, h: np.ndarray, src: np.ndarray, sigma: float,
                     corners_src: np.ndarray) -> float:
    """Mean per-axis variance of the mapped corners, ``J_c (s^2 (J^T J)^-1) J_c^T``."""
    p0 = _h_to_params(model, h)

    def jac(pts):
        cols = []
        for i in range(len(p0)):
            step = 1e-6 * max(1.0, abs(p0[i]))
            p = p0.copy()
            p[i] += step
            cols.append(((_apply(_params_to_h(model, p), pts) - _apply(h, pts)) / step).ravel())
        return np.stack(cols, axis=1)

    j = jac(src)
    try:
        cov = sigma ** 2 * np.linalg.inv(j.T @ j)
    except np.linalg.LinAlgError:
        return float("inf")
    jc = jac(corners_src)
    var = np.einsum("ij,jk,ik->i", jc, cov, jc)  # per coordinate
    return float(np.mean(var))


def _area_scale(h: np.ndarray, pts: np.ndarray) -> float:
    """Mean local area scale ``|det J|`` of the homography `h` at `pts`.

    For ``x' = (A x + t) / (c.x + 1)`` the Jacobian determinant is ``det H / w^3``
    with ``w = c.x + 1`` (Hartley & Zisserman 2004, eq. of the local affine approximation).
    """
    h = h / h[2, 2]
    w = np.c_[pts, np.ones(len(pts))] @ h[2]
    return float(np.mean(np.abs(np.linalg.det(h) / w ** 3)))


def _plausible(h: np.ndarray, before_shape, after_shape) -> str | None:
    """Reject degenerate models: folds, extreme scale, strong perspective."""
    ha, wa = after_shape
    c = np.array([[0, 0], [wa, 0], [wa, ha], [0, ha]], np.float64)
    p = np.c_[c, np.ones(4)] @ h.T
    if np.any(p[:, 2] <= 0):
        return "the transform folds the image (horizon inside the frame)"
    q = p[:, :2] / p[:, 2:3]
    if not cv2.isContourConvex(q.astype(np.float32).reshape(-1, 1, 2)):
        return "the transform folds the image (non-convex)"
    area_a = wa * ha
    area_q = cv2.contourArea(q.astype(np.float32))
    scale = np.sqrt(area_q / area_a)
    if not 1 / 8 < scale < 8:
        return f"implausible scale change ({scale:.2f}x)"
    return None


def overlap_share(h: np.ndarray, before_shape, after_shape) -> float:
    """Share of BEFORE's frame that AFTER covers through the homography `h` (AFTER -> BEFORE)."""
    hb, wb = before_shape
    ha, wa = after_shape
    c = np.array([[0, 0], [wa, 0], [wa, ha], [0, ha]], np.float64)
    q = _apply(h, c).astype(np.float32)
    rect = np.array([[0, 0], [wb, 0], [wb, hb], [0, hb]], np.float32)
    area, _ = cv2.intersectConvexConvex(q, rect)
    return float(max(0.0, area) / (wb * hb))


def _prewarp(ga: _Grid, h_full: np.ndarray, g: _Grid) -> np.ndarray:
    """AFTER's working-grid luma resampled onto BEFORE's working grid through ``h_full``."""
    gh, gw = g.gray.shape
    m = ga.to_grid @ np.linalg.inv(h_full) @ np.linalg.inv(g.to_grid)   # B grid -> A grid
    src = ga.gray
    # AFTER pixels per BEFORE-grid pixel at the grid centre; reduce AFTER first when it is
    # much finer (a zoomed-in AFTER), so that resampling does not alias
    c = m @ np.array([gw / 2, gh / 2, 1.0])
    p = c[:2] / c[2]
    jac = (m[:2, :2] - np.outer(p, m[2, :2])) / c[2]      # d(projected)/d(grid) at the centre
    k = float(np.sqrt(abs(np.linalg.det(jac))))
    if k > 1.3:
        src, sx, sy = _resize(src, 1.0 / k)
        m = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]]) @ m
    return cv2.warpPerspective(src, m, (gw, gh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)


def _bbox(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """Rows and columns of the bounding box of a (non-empty) mask, grown by `margin`."""
    x, y, bw, bh = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    h, w = mask.shape
    return (slice(max(0, y - margin), min(h, y + bh + margin)),
            slice(max(0, x - margin), min(w, x + bw + margin)))


def _ncc(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    w = w.astype(np.float32)
    sw = float(w.sum())
    if sw < 100:
        return 0.0
    ma, mb = float((a * w).sum() / sw), float((b * w).sum() / sw)
    da, db = a - ma, b - mb
    num = float((da * db * w).sum())
    den = np.sqrt(float((da * da * w).sum()) * float((db * db * w).sum()))
    return num / den if den > 0 else 0.0


def _valid_on_grid(after_shape, h_full, g: _Grid) -> np.ndarray:
    gh, gw = g.gray.shape
    to_after = np.linalg.inv(h_full) @ np.linalg.inv(g.to_grid)
    ha, wa = after_shape
    ones = np.full((max(2, ha // 8), max(2, wa // 8)), 255, np.uint8)
    m = np.diag([ones.shape[1] / wa, ones.shape[0] / ha, 1.0]) @ to_after
    v = cv2.warpPerspective(ones, m, (gw, gh), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                            borderValue=0)
    k = int(2 * HP_SIGMA) | 1
    return cv2.erode(v, np.ones((k, k), np.uint8)) > 0


def _agrees(nb: np.ndarray, na: np.ndarray, area: np.ndarray, k: float = 2.0) -> np.ndarray:
    """Pixels whose local high-pass residual is ordinary (below `k` x its median on `area`).

    Keeps ECC, a least-squares method, off regions that changed or do not correspond
    (occlusions, new lesions, image borders).
    """
    r = cv2.GaussianBlur((nb - na) ** 2, (0, 0), 4.0)
    med = float(np.median(r[area])) if area.any() else 0.0
    return r < k * med + 1e-6


def _core_mask(sub: Subject, g: _Grid) -> np.ndarray:
    """The part of a face that identifies it: the inner face (head ellipse x 0.7)."""
    if sub.kind != "face":
        return g.mask > 0
    (cx, cy), (ax, ay) = sub.ellipse
    inner = Subject("face", sub.box, sub.shape, ellipse=((cx, cy), (0.7 * ax, 0.7 * ay)))
    gh, gw = g.gray.shape
    return inner.mask_on(g.to_grid, (gw, gh)) > 0


def _ecc(nb: np.ndarray, na: np.ndarray, mask: np.ndarray, model: str) -> np.ndarray | None:
    """ECC correction ``W`` (grid -> pre-warped grid), or None if it does not converge."""
    motion = cv2.MOTION_HOMOGRAPHY if model == "homography" else cv2.MOTION_AFFINE
    w = np.eye(3, dtype=np.float32) if motion == cv2.MOTION_HOMOGRAPHY else np.eye(2, 3, dtype=np.float32)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 15, 1e-5)
    try:
        _, w = cv2.findTransformECC(nb, na, w, motion, crit, mask.astype(np.uint8), 3)
    except cv2.error:
        return None
    return np.vstack([w, [0, 0, 1]]).astype(np.float64) if w.shape[0] == 2 else w.astype(np.float64)


def _ecc_pass(nb: np.ndarray, na: np.ndarray, area: np.ndarray, mask: np.ndarray | None, model: str,
              g: _Grid, h_full: np.ndarray, side: int = ECC_SIDE) -> np.ndarray | None:
    """One ECC refinement of ``h_full`` (full-resolution AFTER -> BEFORE) on the bounding box
    of `area`, at most `side` px, over `mask` (default `area`); None if no convergence."""
    ys, xs = _bbox(area, 16)
    m_ecc = (area if mask is None else mask)[ys, xs].astype(np.uint8)
    tb, ta = nb[ys, xs], na[ys, xs]
    e = min(1.0, side / max(tb.shape))             # ECC on at most `side` px
    if e < 1.0:
        tb, ex, ey = _resize(tb, e)
        ta = _resize(ta, e)[0]
        m_ecc = _resize(m_ecc, e)[0]
    w = _ecc(tb, ta, m_ecc > 0, model)
    if w is None:
        return None
    t = np.array([[1, 0, -xs.start], [0, 1, -ys.start], [0, 0, 1.0]])   # grid -> ECC image
    if e < 1.0:
        t = np.array([[ex, 0, 0.5 * ex - 0.5], [0, ey, 0.5 * ey - 0.5], [0, 0, 1.0]]) @ t
    w = np.linalg.inv(t) @ w @ t
    h_new = np.linalg.inv(g.to_grid) @ np.linalg.inv(w) @ g.to_grid @ h_full
    return h_new / h_new[2, 2]


def _point_estimate(nb: np.ndarray, na: np.ndarray, area: np.ndarray, model: str, g: _Grid,
                    h_full: np.ndarray, corners: np.ndarray):
    """An independent, spatially balanced estimate of the model from tracked points.

    Shi-Tomasi corners of BEFORE's normalised high-pass (Shi & Tomasi 1994) are tracked
    into the AFTER pre-warped by ``h_full`` with pyramidal Lucas-Kanade (Bouguet 2000),
    kept when the backward track returns within 0.3 px, and the model is refitted by
    iteratively reweighted least squares, ``min sum w_i |W p_i - q_i|^2`` with Cauchy
    weights ``1 / (1 + (r / 2.5 s)^2)`` (``s`` the MAD residual) times ``1 / n_cell``,
    ``n_cell`` the points in the same cell of an 8 x 8 grid over the overlap. ECC weighs
    pixels by their gradient energy, so a few textured areas dominate it; this estimate
    weighs every part of the overlap alike, as hand-placed control points do. Where the
    scene is not one plane (parallax, lens distortion, a non-rigid subject) the two
    disagree at the corners, and that disagreement enters `confidence`.

    Returns
    -------
    h : ndarray or None
        The full-resolution AFTER -> BEFORE model (None: too few tracked points).
    var : float
        Delete-a-block jackknife variance (Kuensch 1989) of `corners` (BEFORE full px)
        mapped into AFTER through ``h^-1``, per axis, averaged over the corners:
        ``(n-1)/n sum_i (c_i - mean c)^2`` over the n fits that each leave out one of
        4 x 4 blocks of the overlap (NaN when fewer than 4 blocks hold points).
    """
    ys, xs = _bbox(area, 0)
    b8, a8 = _to_u8(nb), _to_u8(na)
    m = np.zeros(area.shape, np.uint8)
    m[ys, xs] = area[ys, xs]
    p0 = cv2.goodFeaturesToTrack(b8, 800, 0.01, 8, mask=m, blockSize=7)
    if p0 is None or len(p0) < 4 * MIN_INLIERS:
        return None, np.nan
    p0 = p0.reshape(-1, 2).astype(np.float32)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01)
    p1, st, _ = cv2.calcOpticalFlowPyrLK(b8, a8, p0, None, winSize=(21, 21), maxLevel=2, criteria=crit)
    pb, st2, _ = cv2.calcOpticalFlowPyrLK(a8, b8, p1, None, winSize=(21, 21), maxLevel=2, criteria=crit)
    ok = (st.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm(pb - p0, axis=1) < 0.3)
    if ok.sum() < 4 * MIN_INLIERS:
        return None, np.nan
    dst, src = p0[ok].astype(np.float64), p1[ok].astype(np.float64)
    x0, x1, y0, y1 = xs.start, xs.stop, ys.start, ys.stop
    cx = np.clip(((dst[:, 0] - x0) * 8 / max(1, x1 - x0)).astype(int), 0, 7)
    cy = np.clip(((dst[:, 1] - y0) * 8 / max(1, y1 - y0)).astype(int), 0, 7)
    cell = cy * 8 + cx
    w_cell = 1.0 / np.bincount(cell, minlength=64)[cell]
    w = np.eye(3)
    for _ in range(6):
        r = np.linalg.norm(_apply(w, src) - dst, axis=1)
        s = max(0.05, 1.4826 * float(np.median(r)))
        wt = w_cell / (1.0 + (r / (2.5 * s)) ** 2)
        w = _wfit(model, src, dst, wt, w)
    to_full = np.linalg.inv(g.to_grid)
    h = to_full @ w @ g.to_grid @ h_full
    # delete-a-block jackknife over the 4 x 4 blocks of cells: model inadequacy is
    # spatially correlated, so the points are not independent and the covariance of
    # the least-squares fit understates the corner error; leaving out whole regions
    # measures how much the extrapolation to the corners depends on each of them
    block = (cy // 2) * 4 + cx // 2
    pred = []
    for b in np.unique(block):
        keep = block != b
        if keep.sum() < 2 * MIN_INLIERS:
            continue
        wb = _wfit(model, src[keep], dst[keep], wt[keep], w, iters=2)
        pred.append(_apply(np.linalg.inv(to_full @ wb @ g.to_grid @ h_full), corners))
    var = np.nan
    if len(pred) >= 4:
        pred = np.array(pred)
        nb_ = len(pred)
        # (n-1)/n sum_i (c_i - mean)^2 per axis, averaged over the corners and axes
        var = float((nb_ - 1) * np.mean((pred - pred.mean(0)) ** 2))
    return h / h[2, 2], var


def _wfit(model: str, src: np.ndarray, dst: np.ndarray, wt: np.ndarray, h0: np.ndarray,
          iters: int = 3) -> np.ndarray:
    """Weighted least-squares `model` (src -> dst): linear for similarity and affine,
    Gauss-Newton from ``h0`` with the analytic Jacobian for a homography."""
    x, y = src[:, 0], src[:, 1]
    sw = np.sqrt(wt)
    if model != "homography":
        one, zero = np.ones(len(x)), np.zeros(len(x))
        if model == "similarity":
            a = np.r_[np.c_[x, -y, one, zero], np.c_[y, x, zero, one]]
        else:
            a = np.r_[np.c_[x, y, one, zero, zero, zero], np.c_[zero, zero, zero, x, y, one]]
        a = a * np.r_[sw, sw][:, None]
        b = np.r_[dst[:, 0], dst[:, 1]] * np.r_[sw, sw]
        try:
            return _params_to_h(model, np.linalg.solve(a.T @ a, a.T @ b))
        except np.linalg.LinAlgError:
            return h0
    p = _h_to_params(model, h0)
    for _ in range(iters):
        w = p[6] * x + p[7] * y + 1.0
        u = (p[0] * x + p[1] * y + p[2]) / w
        v = (p[3] * x + p[4] * y + p[5]) / w
        n, a, b = len(x), x * sw / w, y * sw / w
        jac = np.zeros((2 * n, 8))
        jac[:n, 0], jac[:n, 1], jac[:n, 2] = a, b, sw / w
        jac[n:, 3], jac[n:, 4], jac[n:, 5] = a, b, sw / w
        jac[:n, 6], jac[:n, 7], jac[n:, 6], jac[n:, 7] = -a * u, -b * u, -a * v, -b * v
        r = np.concatenate([(u - dst[:, 0]) * sw, (v - dst[:, 1]) * sw])
        jtj = jac.T @ jac
        try:                              # normal equations, 8 x 8 (lstsq on 3000 x 8 is slow)
            p = p + np.linalg.solve(jtj + 1e-12 * np.trace(jtj) * np.eye(8), -jac.T @ r)
        except np.linalg.LinAlgError:
            break
    return _params_to_h(model, p)


def _dense_field(nb: np.ndarray, na: np.ndarray, weight: np.ndarray, size_px: float):
    """Smooth residual flow (grid px) confined to `weight` (float 0-1), or None.

    The regulariser is a robust normalised convolution (Knutsson & Westin 1993): three
    passes of ``G * (w f) / G * w`` with Cauchy weights ``w = m / (1 + |f - f_s|^2)``
    (1 px scale), computed on a 4x coarser grid (the field is smooth at that scale).
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    f = dis.calc(_to_u8(nb), _to_u8(na), None)
    h, w0 = f.shape[:2]
    # real change (a new spot, a scab, redness edges) is what the raw flow cannot explain:
    # drop vectors where BEFORE and the flow-warped AFTER still disagree, and around them
    # (the DIS patch size), so that change never bends the field
    yy, xx = np.mgrid[0:h, 0:w0].astype(np.float32)
    na_w = cv2.remap(na, xx + f[..., 0], yy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    m = weight > 0
    changed = ~_agrees(nb, na_w, m, 6.0)
    changed = cv2.dilate(changed.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    weight = weight * (~changed)
    k = 4
    hs, ws = max(2, h // k), max(2, w0 // k)
    fs = cv2.resize(f, (ws, hs), interpolation=cv2.INTER_AREA)
    ms = cv2.resize(weight.astype(np.float32), (ws, hs), interpolation=cv2.INTER_AREA)
    sigma = max(1.0, FLOW_SIGMA * size_px / k)
    w = ms.copy()
    smooth = np.zeros_like(fs)
    for _ in range(3):
        norm = cv2.GaussianBlur(w, (0, 0), sigma) + 1e-6
        smooth = np.dstack([cv2.GaussianBlur(fs[..., i] * w, (0, 0), sigma) / norm for i in range(2)])
        dev2 = np.sum((fs - smooth) ** 2, axis=2)
        w = ms / (1.0 + dev2)
    support = np.clip(cv2.GaussianBlur(ms, (0, 0), sigma) * 2.0, 0, 1)
    smooth *= support[..., None]
    smooth = cv2.resize(smooth, (w0, h), interpolation=cv2.INTER_LINEAR)
    mag = np.hypot(smooth[..., 0], smooth[..., 1])
    cap = FLOW_MAX * size_px
    over = mag > cap
    if over.any():
        smooth[over] *= (cap / mag[over])[:, None]
    return smooth.astype(np.float32)


# ---------------------------------------------------------------------------------------


def _failed(reason, before_shape, after_shape, *, h=None, inliers=0, overlap=0.0, model=None,
            subject="frame", ncc=None, tol=3.0) -> Alignment:
    return Alignment("failed", reason, np.eye(3) if h is None else h, 0.0, int(inliers), None,
                     float(overlap), tuple(before_shape), tuple(after_shape), model=model,
                     subject=subject, ncc=ncc, tolerance_px=tol)


def align(before, after, *, roi=None, refine: bool = True, faces: bool = True) -> Alignment:
    """Align AFTER onto BEFORE, following the subject, and judge the result.

    Parameters
    ----------
    before, after : str, path, ndarray or Photo
        The two photos (anything `photokit.load` takes).
    roi : ndarray of bool, str or path, optional
        The subject in BEFORE's coordinates (mask array, mask PNG or polygon JSON).
        Default: the face when one is found, else the whole frame.
    refine : bool
        Sub-pixel ECC refinement and the dense residual field (default True).
    faces : bool
        Look for a face to lock onto (default True).

    Returns
    -------
    Alignment
        ``status="failed"`` with a reason when it cannot be trusted (never raised).

    Notes
    -----
    When both photos show a meshed face (`photokit.faces.search.face_pass`) and the ROI,
    if any, lies on BEFORE's face (at least `MESH_ROI_SHARE` of it), the face is aligned
    through the mesh (`_align_mesh`, ``method="mesh"``); otherwise by features on the
    subject (``method="features"``): skin close-ups, body areas, a face the mesh misses.
    When the detector found the face in one photo only, the other's is meshed where that
    feature alignment carries the found mesh (`photokit.faces.mesh.face_near`), and the
    pair is aligned through the mesh after all.
    """
    def prepared(source):   # each photo decoded, its luma and its face, on its own thread
        p = load(source)
        return p, _gray(p), face_pass(p).meshes[:1] if faces else []

    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(prepared, s) for s in (before, after)]
    (pb, gb, fb), (pa, ga, fa) = (j.result() for j in jobs)
    roi_b = None if roi is None else read_roi(roi, gb.shape[:2])
    head = mesh_subject(fb[0].landmarks, gb.shape) if fb else None   # BEFORE's head, by its mesh
    sub_b = None if fb and fa and roi is None else find_subject(gb, roi, faces=faces, head=head)
    # the user's ROI itself decides, not the subject grown around it to anchor a feature
    # alignment (a head ellipse that takes in the wall behind a close face)
    def roi_on(face) -> bool:
        return roi_b is None or _mesh_covers(face, roi_b)

    on_face = bool(fb) and roi_on(fb[0])
    if fb and fa and on_face:
        return _align_faces(gb, ga, fb[0], fa[0], sub_b or head, refine)
    sub_b = sub_b or find_subject(gb, roi, faces=faces, head=head)
    frames = _frames(gb, ga)
    a = _align_on(gb, ga, sub_b, sub_b, refine, frames)
    h = a.homography
    if h is not None and bool(fb) != bool(fa):
        # one photo's face is meshed, the other's was not found (a face the detector
        # misses: too close, cut by the frame). One global model cannot follow a face's
        # perspective when the distance changed, and its residual does not show it; so the
        # missed face is meshed where this alignment, even a refused one, carries the
        # other's mesh, and the pair goes through the mesh with its checks (docs/ALIGN.md)
        if fb and on_face and pa.is_colour:
            carried = _face_carried(pa, h, fb[0], inverse=True)
            if carried is not None:
                return _align_faces(gb, ga, fb[0], carried, head if roi is None else sub_b, refine, frames)
        if fa and pb.is_colour:
            carried = _face_carried(pb, h, fa[0])
            if carried is not None and roi_on(carried):
                head = mesh_subject(carried.landmarks, gb.shape)
                sub = head if roi is None else find_subject(gb, roi, faces=faces, head=head)
                return _align_faces(gb, ga, carried, fa[0], sub, refine, frames)
    if a.ok or sub_b.kind != "face" or a.model is not None:
        return a
    # the face found in BEFORE has no consistent matches in AFTER. Either the photos show
    # different people (or scenes), or the detection is not the subject (a face printed on
    # a poster or a magazine in a scene). Try the whole frame, keeping the face as the
    # identity check: a frame alignment under which that face does not match is refused
    b = _align_on(gb, ga, _frame(gb.shape), sub_b, refine, frames)
    if b.ok or b.model is not None:
        return b
    a.reason = f"{a.reason[:a.reason.index(')') + 1]}; on the whole frame: {b.reason}"
    return a


def _unless_mirrored(al: Alignment, given: int, mirrored: int) -> Alignment:
    """`al`, refused when AFTER is BEFORE's face mirrored left-right (`is_mirrored`)."""
    if not is_mirrored(given, mirrored):
        return al
    return replace(al, status="failed", confidence=0.0, residual_px=None,
                   reason=(f"AFTER looks mirrored left-right against BEFORE (a selfie camera?): its "
                           f"mirror image matches {mirrored} skin details, AFTER as given {given}; "
                           "flip it and try again"))


def _face_carried(photo: Photo, h: np.ndarray, face, inverse: bool = False):
    """The face of `photo` meshed where the homography `h` (the other photo's pixels ->
    `photo`'s; with `inverse`, its inverse) carries `face`'s mesh
    (`photokit.faces.mesh.face_near`); None when no face is there, when `h` is not a
    finite invertible homography, or when the carried mesh lies outside the photo."""
    if not np.all(np.isfinite(h)) or abs(np.linalg.det(h)) <= 1e-12:
        return None
    pts = _apply(np.linalg.inv(h) if inverse else h, face.landmarks[:, :2])
    size = np.array([photo.width, photo.height], np.float64)
    if not np.all(np.isfinite(pts)) or np.any(pts.max(0) < 0) or np.any(pts.min(0) > size):
        return None
    return face_near(photo.pixels, pts)


def _align_faces(gb: np.ndarray, ga: np.ndarray, face_b, face_a, sub: Subject, refine: bool,
                 frames: _Frames | None = None) -> Alignment:
    """`align` of two meshed faces (`_face_pair`), refused when AFTER is BEFORE's face
    mirrored (a selfie camera), which the alignment cannot tell: read from the skin-detail
    features its identity evidence found (`photokit.registration.mesh.mirror_evidence`)."""
    feats: dict = {}
    al = _face_pair(gb, ga, face_b, face_a, sub, refine, frames, feats)
    if "after" not in feats:
        return al
    return _unless_mirrored(al, *mirror_evidence(feats["before"], feats["after"], face_a, ga.shape[1],
                                                 feats["matches"]))


def _face_pair(gb: np.ndarray, ga: np.ndarray, face_b, face_a, sub: Subject, refine: bool,
               frames: _Frames | None = None, keep: dict | None = None) -> Alignment:
    """Two meshed faces aligned through the mesh (`_align_mesh`), or by features on the
    subject `sub` when one global model nearly explains the face (below); `frames`: the
    pair's, when already made; `keep`: as in `detail_matches`."""
    # one global model nearly explains the face (the camera moved, the face kept its
    # shape): the feature path, conditioned over the whole frame and refined by ECC,
    # gives the more precise global part. It is kept when it leaves at most a third of
    # the tolerance (or less than the mesh) on the shared skin; it also vouches for a
    # face whose skin detail is too weak for the mesh's identity evidence (blur,
    # noise, a small face) through its own (consistent matches, inner-face correlation).
    # It does not depend on the mesh fit: when the meshes already say the face kept its
    # shape (`rigid_deviation` under the tolerance, on the vertices), it runs first,
    # beside the identity's descriptor matches. Kept then with at most a third of the
    # tolerance, the mesh's field is judged before its dense refinement (the refinement
    # could not change the choice); otherwise the mesh is refined and judged as when it
    # runs first. The feature path is the longest chain of work, so its features are
    # found first, on both cores, then the rest fills the other core beside it: the
    # mesh's grid, the descriptor matches, then, if the feature fit is still running,
    # the mesh's refinement, which stops between its steps once the feature fit is kept
    # (on real re-captures the mesh is kept: its refinement is then ready when the
    # feature fit ends). All of this changes when things run, not what is returned
    def features() -> Alignment:
        return _align_on(gb, ga, sub, sub, refine, frames or _frames(gb, ga))

    rigid = rigid_deviation(face_b, face_a) < _tolerance(gb.shape)
    if rigid and frames is None:
        frames = _frames(gb, ga)
    with ThreadPoolExecutor(max_workers=2) as pool:
        early = pool.submit(features) if rigid else None
        r_feat = grid = made = None
        if early is None:
            details = pool.submit(detail_matches, gb, ga, face_b, face_a, keep)
        else:
            # a feature fit that leaves at most a third of the tolerance on the shared
            # skin is kept whatever the mesh's residual: judge it on the fit's grid
            # alone, and refine the mesh only when it is not kept. The mesh's own field
            # must say the face kept its shape, as below (here the field of the global
            # model and the mesh deformation, not refined)
            grid = face_grid(gb, ga, face_b, face_a)
            details = pool.submit(detail_matches, gb, ga, face_b, face_a, keep)
            kept = threading.Event()

            def mesh_meanwhile():   # on the core the descriptor matches free, if the feature fit runs on
                return None if early.done() else _align_mesh(gb, ga, face_b, face_a, refine, details, grid,
                                                             stop=kept)

            meanwhile = pool.submit(mesh_meanwhile)
            f = early.result()
            field = _field_px(grid)
            if (field is not None and field <= f.tolerance_px and f.ok
                    and vertex_error(f, face_b, face_a) <= FEATURE_VERTEX_MAX):
                r_feat, _ = skin_residual(grid, f.dense_map)
                if r_feat <= f.tolerance_px / 3:
                    kept.set()
                    return _with_mesh_evidence(f, r_feat, face_b, face_a, grid.zones, details.result())
            made = meanwhile.result()
        m, fit = made or _align_mesh(gb, ga, face_b, face_a, refine, details, grid)
        if m.flow_px is None or m.flow_px > m.tolerance_px:
            return m
        f = early.result() if early is not None else features()
    if not f.ok or vertex_error(f, face_b, face_a) > FEATURE_VERTEX_MAX:
        return m
    if r_feat is None:
        r_feat, _ = skin_residual(fit, f.dense_map)
    if r_feat > max(m.residual_px if m.ok else -1.0, f.tolerance_px / 3):
        return m
    return _with_mesh_evidence(f, r_feat, face_b, face_a, fit.zones, details.result())


def _tolerance(shape) -> float:
    """The corner error a confidence refers to: ``max(3 px, 0.1 % of the diagonal)``."""
    return max(3.0, 0.001 * float(np.hypot(*shape[:2])))


def _mesh_covers(face, roi: np.ndarray) -> bool:
    """Does BEFORE's face mesh hold the user's ROI (at least `MESH_ROI_SHARE` of it)?"""
    hull = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(face.landmarks[:, :2].astype(np.float32)).astype(np.int32), 1)
    return float(hull[roi > 0].mean()) >= MESH_ROI_SHARE


def vertex_error(al: Alignment, face_b, face_a) -> float:
    """How far an alignment carries BEFORE's face from AFTER's, by the meshes.

    ``median_i |al(b_i) - a_i| / IPD_a`` over the mesh vertices ``b_i`` (BEFORE) and
    ``a_i`` (AFTER) that `Alignment.map_points` carries, ``IPD_a`` AFTER's inter-pupil
    distance; ``inf`` when none is carried. An independent check of a feature alignment
    of a face: its residual and correlation are judged where its matches were, which can
    be the room behind the patient (`FEATURE_VERTEX_MAX`).
    """
    mapped = np.array([[np.nan, np.nan] if p is None else p
                       for p in al.map_points(face_b.landmarks[:, :2])], np.float64)
    err = np.linalg.norm(mapped - face_a.landmarks[:, :2], axis=1)
    err = err[np.isfinite(err)]
    ipd = inter_pupil_px(face_a)
    return float(np.median(err)) / ipd if len(err) and ipd > 0 else float("inf")


def identity_posterior(matches: int) -> float:
    """``P(same person | n)`` from the skin-detail matches a mesh alignment explains.

    ``P = 1 / (1 + exp(-ID_SLOPE (log(1 + n) - ID_MIDPOINT)))``: the posterior of a linear
    discriminant (equal variances, equal priors; Hastie, Tibshirani & Friedman 2009,
    section 4.3) of ``log(1 + n)`` between same-person and different-person pairs,
    fitted in ``benchmarks/bench_recapture.py`` (docs/ALIGN.md).
    """
    return float(1.0 / (1.0 + np.exp(-ID_SLOPE * (np.log1p(matches) - ID_MIDPOINT))))


def _mesh_evidence(face_b, face_a, zones, matches: int, share: float) -> dict:
    """What the meshes say about a face pair, whichever path aligned it: ``pose_change``,
    ``zones`` both photos show, ``expression``, ``identity`` (the explained skin-detail
    ``matches``, their ``share`` and ``p_same``, `identity_posterior`), ``warnings``
    (an expression change; zones hidden in one photo) and the two ``faces``."""
    expr = expression(face_b, face_a)
    warnings = []
    if expr["changed"]:
        warnings.append(f"the expression changed (smile score {expr['smile_score']:+.2f}, lip opening "
                        f"{expr['lip_opening']:+.2f}): lines and texture around the mouth and eyes are "
                        "not comparable")
    hidden = [z for z in shared_zones(face_b.visible, face_b.visible) if z not in zones]
    if hidden:
        warnings.append(f"zones hidden in one photo, not comparable: {', '.join(hidden)}")
    identity = {"matches": int(matches), "share": round(float(share), 3),
                "p_same": round(identity_posterior(matches), 4)}
    return {"pose_change": pose_change(face_b, face_a), "zones": list(zones), "expression": expr,
            "identity": identity, "warnings": warnings, "faces": (face_b, face_a)}


def _with_mesh_evidence(f: Alignment, residual: float, face_b, face_a, zones, details) -> Alignment:
    """The feature alignment `f` of a face pair, kept: its residual on the shared skin and
    the meshes' evidence (`_mesh_evidence`), the identity counted on `f`'s own mapping (the
    skin-detail matches `details` that the alignment returned explains). Its confidence
    is multiplied by ``P(same person)`` when that reaches `MIN_CONFIDENCE_MESH`; below, a
    warning says the identity rests on the feature matches and the inner-face correlation.
    """
    n, share = identity_evidence(details, face_a,
                                 lambda pts: np.column_stack(f.dense_map(pts[:, :1], pts[:, 1:])))
    ev = _mesh_evidence(face_b, face_a, zones, n, share)
    f.residual_px = residual
    for k, v in ev.items():
        setattr(f, k, v)
    p_same = ev["identity"]["p_same"]
    if p_same >= MIN_CONFIDENCE_MESH:
        f.confidence *= p_same
    else:
        f.warnings = f.warnings + [
            f"skin detail too weak to confirm the identity ({n} matches): "
            "vouched for by the feature matches and the inner-face correlation only"]
    return f


def _align_mesh(gb: np.ndarray, ga: np.ndarray, face_b, face_a, refine: bool,
                details=None, start: FaceFit | None = None,
                stop: threading.Event | None = None) -> tuple[Alignment, FaceFit] | None:
    """Align a face pair through the mesh (`photokit.registration.mesh.fit_faces`) and judge it.

    Verdict, one reason, in this order: the faces are not shown to be one person's
    (`identity_posterior` < `MIN_CONFIDENCE_MESH`); AFTER covers too little of BEFORE;
    the residual left by the full alignment (independent dense flow on the shared skin)
    exceeds the tolerance; the confidence is below `MIN_CONFIDENCE_MESH`.

    ``confidence = P(same | n) x P(e < t)`` with ``P(e < t) = 1 - exp(-t^2 / (2 s^2))``
    the Rayleigh probability that the error is below the tolerance ``t``, its scale
    ``s = r / sqrt(2 ln 2)`` from the median residual ``r`` (the Rayleigh median).
    `details`: the pair's `detail_matches`, already under way (a Future), if any;
    `start`: the pair's `face_grid`, if already made (the fit starts from it); `stop`: as
    in `photokit.registration.mesh.fit_faces` (None is returned when it stopped the fit).
    """
    bshape, ashape = gb.shape[:2], ga.shape[:2]
    tol = _tolerance(bshape)
    fit = fit_faces(gb, ga, face_b, face_a, refine=refine, details=details, start=start, stop=stop)
    if fit is None:
        return None
    ev = _mesh_evidence(face_b, face_a, fit.zones, fit.matches, fit.match_share)
    p_same = identity_posterior(fit.matches)
    sigma = max(fit.residual_px, 1e-3) / np.sqrt(2 * np.log(2))
    p_geom = float(1.0 - np.exp(-tol ** 2 / (2 * sigma ** 2)))
    confidence = p_same * p_geom
    overlap = overlap_share(fit.homography, bshape, ashape)
    reason = None
    if p_same < MIN_CONFIDENCE_MESH:
        reason = (f"the faces do not match: {fit.matches} skin-detail matches explained by the alignment "
                  f"({fit.match_share:.0%} of the matches; P(same person) {p_same:.2f}): a different person?")
    elif overlap < MIN_OVERLAP:
        reason = f"too little overlap ({overlap:.0%} of BEFORE covered by AFTER)"
    elif fit.residual_px > tol:
        reason = f"the face is not aligned (residual {fit.residual_px:.1f} px > {tol:.1f} px)"
    elif confidence < MIN_CONFIDENCE_MESH:
        reason = f"alignment too uncertain (confidence {confidence:.2f} < {MIN_CONFIDENCE_MESH})"
    vouched = cv2.dilate(fit.face.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return Alignment("failed" if reason else "ok", reason, fit.homography, confidence, int(fit.matches),
                     None if reason else fit.residual_px, overlap, tuple(bshape), tuple(ashape),
                     flow=fit.flow, flow_grid=fit.to_grid.copy(), model=fit.model, subject="face",
                     ncc=fit.ncc, flow_px=_field_px(fit), tolerance_px=tol, method="mesh", vouched=vouched,
                     **ev), fit


def _field_px(fit: FaceFit) -> float | None:
    """Median magnitude of a mesh fit's non-rigid field over BEFORE's face (BEFORE px);
    None without a face on the grid."""
    return float(np.median(np.hypot(*fit.flow[fit.face].T))) if fit.face.any() else None


def _align_on(gb: np.ndarray, ga: np.ndarray, sub_b: Subject, ident: Subject, refine: bool,
              frames: _Frames) -> Alignment:
    """`align` with the subject `sub_b` and the identity check on `ident` (a face or else),
    from the pair's `frames`."""
    cv2.setRNGSeed(20241)            # MAGSAC++ and FLANN are randomised: same input, same answer
    bshape, ashape = gb.shape[:2], ga.shape[:2]
    tol = _tolerance(bshape)
    kind = sub_b.kind
    grid_b, grid_a = frames.grid_b.on(sub_b), frames.grid_a
    (pts_b, desc_b), (pts_a, desc_a) = frames.features_b, frames.features_a
    if len(pts_b) < MIN_INLIERS or len(pts_a) < MIN_INLIERS:
        return _failed(f"too few features ({min(len(pts_a), len(pts_b))}; need {MIN_INLIERS})",
                       bshape, ashape, subject=kind, tol=tol)
    pairs = _match(desc_a, desc_b)
    src_all, dst_all = pts_a[pairs[:, 0]], pts_b[pairs[:, 1]]
    found = _consistent(src_all, dst_all, grid_b.mask)
    tilted = False
    if found[2] < MIN_INLIERS and sub_b.kind == "frame":
        # too few consistent matches on a scene: perhaps a strong change of viewpoint (a
        # plane seen at a grazing angle), which SIFT does not survive. Simulate tilts to
        # find a first model, then match again against AFTER rectified by it
        guided = _tilt_matches(grid_b, grid_a, pts_b, desc_b, bshape, ashape)
        if guided is not None:
            g_found = _consistent(guided[0], guided[1], grid_b.mask)
            if g_found[2] >= MIN_INLIERS:
                src_all, dst_all, found, tilted = guided[0], guided[1], g_found, True
    on_subject, inl, n_in, hg = found
    if on_subject.sum() < MIN_INLIERS:
        return _failed(f"too few matching features on the {kind} ({int(on_subject.sum())}; need "
                       f"{MIN_INLIERS}): different subjects or scenes?", bshape, ashape, subject=kind,
                       tol=tol)
    src, dst = src_all[on_subject], dst_all[on_subject]
    if hg is None or n_in < MIN_INLIERS:
        return _failed(f"too few consistent matches on the {kind} ({n_in} of {len(src)}; need "
                       f"{MIN_INLIERS}): different subjects or scenes?", bshape, ashape, inliers=n_in,
                       subject=kind, tol=tol)
    src, dst = src[inl], dst[inl]
    keep = _trim(src, dst)
    src, dst = src[keep], dst[keep]
    model, hg = _choose_model(src, dst)
    region = grid_b.mask > 0
    if kind != "frame":
        scene = _scene_confirms(src, dst, src_all[~on_subject], dst_all[~on_subject], hg)
        if scene is not None:
            model, hg, src, dst = scene
            n_in = len(src)
            region = np.ones_like(region)
            kind = kind + "+scene"
    to_full_b = np.linalg.inv(grid_b.to_grid)
    h_full = to_full_b @ hg @ grid_a.to_grid
    h_full /= h_full[2, 2]
    why = _plausible(h_full, bshape, ashape)
    if why:
        return _failed(why, bshape, ashape, h=h_full, inliers=n_in, model=model, subject=kind, tol=tol)

    # photometric check and refinement on BEFORE's grid
    h_feat = h_full.copy()
    nb = _normalised_highpass(grid_b.gray)
    na = _normalised_highpass(_prewarp(grid_a, h_full, grid_b))
    valid = _valid_on_grid(ashape, h_full, grid_b)
    area = valid & region
    ncc = _ncc(nb, na, area)
    h_photo = None        # the photometric (ECC) estimate, kept even when not adopted
    if refine and area.sum() > 400:
        h_photo = _ecc_estimate(nb, na, area, region, model, grid_a, grid_b, h_full, bshape, ashape)
        if h_photo is not None:
            na2 = _normalised_highpass(_prewarp(grid_a, h_photo, grid_b))
            valid2 = _valid_on_grid(ashape, h_photo, grid_b)
            area2 = valid2 & region
            ncc2 = _ncc(nb, na2, area2)
            if ncc2 > ncc + 1e-4:
                h_full, na, ncc, area, valid = h_photo, na2, ncc2, area2, valid2
    # residuals of the matched features under the final global model (grid px)
    hg_final = grid_b.to_grid @ h_full @ np.linalg.inv(grid_a.to_grid)
    res = np.linalg.norm(_apply(hg_final, src) - dst, axis=1)

    overlap = overlap_share(h_full, bshape, ashape)
    if ncc < MIN_NCC:
        return _failed(f"the aligned photos do not look alike (correlation {ncc:.2f} < {MIN_NCC}): "
                       "different subjects or scenes?", bshape, ashape, h=h_full, inliers=n_in,
                       overlap=overlap, model=model, subject=kind, ncc=ncc, tol=tol)
    if overlap < MIN_OVERLAP:
        return _failed(f"too little overlap ({overlap:.0%} of BEFORE covered by AFTER)", bshape,
                       ashape, h=h_full, inliers=n_in, overlap=overlap, model=model, subject=kind,
                       ncc=ncc, tol=tol)

    # dense residual field on the subject
    flow = flow_px = f = None
    if refine:
        f, flow_px = _residual_field(nb, na, area, grid_b, whole=sub_b.kind == "frame")
        if f is not None:
            flow = f / np.float32(grid_b.scale)                       # BEFORE full px
            fx = cv2.remap(f, dst[:, 0].astype(np.float32).reshape(-1, 1),
                           dst[:, 1].astype(np.float32).reshape(-1, 1), cv2.INTER_LINEAR)
            res = np.linalg.norm(_apply(hg_final, src) - dst - fx.reshape(-1, 2), axis=1)

    # identity check on the subject itself (the inner face, or the ROI / frame): the
    # scene or the hair may match while the face is another person's
    core = _core_mask(ident, grid_b) & valid
    ncc_core = None
    if ident.kind == "face" and core.sum() > 400:
        na_f = na
        if flow is not None:
            gh, gw = nb.shape
            yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float32)
            na_f = cv2.remap(na, xx + f[..., 0], yy + f[..., 1], cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
        ncc_core = _ncc(nb, na_f, core)
        if ncc_core < MIN_NCC_CORE:
            a = _failed(f"the face does not match (correlation {ncc_core:.2f} < {MIN_NCC_CORE} "
                        "on the inner face): a different person?", bshape, ashape, h=h_full,
                        inliers=n_in, overlap=overlap, model=model, subject=kind, ncc=ncc, tol=tol)
            a.ncc_core = ncc_core
            return a

    confidence, var = _confidence(src, dst, hg_final, h_full, model, sigma_region=region.all(),
                                  sub_b=sub_b, bshape=bshape, grid_b=grid_b,
                                  estimates=(h_feat, h_photo, h_full),
                                  points=(nb, na, area) if refine else None,
                                  tol=tol, ncc=ncc, ncc_core=ncc_core)
    residual_px = float(np.median(res)) / grid_b.scale
    # a model that only the tilt fallback found is reported only when clearly good: its
    # confidence is validated on synthetic views alone (real grazing views are rarely one
    # plane: a magazine that bends, a city seen from a plane)
    bar = MIN_CONFIDENCE_TILTED if tilted else MIN_CONFIDENCE
    if confidence < bar:
        a = _failed(f"alignment too uncertain (confidence {confidence:.2f}"
                    + (f" < {bar} for a model found through simulated tilts" if tilted else "")
                    + f"; predicted corner error {np.sqrt(2 * var):.1f} px, correlation {ncc:.2f})",
                    bshape, ashape, h=h_full, inliers=n_in, overlap=overlap, model=model, subject=kind,
                    ncc=ncc, tol=tol)
        a.confidence = confidence
        a.tilted = tilted
        return a
    return Alignment("ok", None, h_full, confidence, n_in, residual_px, overlap, tuple(bshape),
                     tuple(ashape), flow=flow, flow_grid=grid_b.to_grid.copy() if flow is not None
                     else None, model=model, subject=kind, ncc=ncc, ncc_core=ncc_core, flow_px=flow_px,
                     tolerance_px=tol, tilted=tilted)



def _scene_confirms(src, dst, bg_src, bg_dst, hg):
    """The model refitted with the background's matches when the camera moved (the room
    moves with the patient), or None.

    The background confirms the subject's model and conditions it over the whole frame:
    the joint fit is kept if it does not disturb the fit on the subject (its median
    residual there grows by < 10 % + 0.05 px). Returns ``(model, hg, src, dst)``.
    """
    if len(bg_src) < MIN_INLIERS:
        return None
    _, inb = cv2.findHomography(bg_src, bg_dst, cv2.USAC_MAGSAC, MAGSAC_THRESHOLD,
                                maxIters=2000, confidence=0.999)
    inb = np.zeros(len(bg_src), bool) if inb is None else inb.ravel().astype(bool)
    if inb.sum() < MIN_INLIERS:
        return None
    u_src, u_dst = np.r_[src, bg_src[inb]], np.r_[dst, bg_dst[inb]]
    keep = _trim(u_src, u_dst)
    u_src, u_dst = u_src[keep], u_dst[keep]
    m2, h2 = _choose_model(u_src, u_dst)
    r_sub_old = np.median(np.linalg.norm(_apply(hg, src) - dst, axis=1))
    r_sub_new = np.median(np.linalg.norm(_apply(h2, src) - dst, axis=1))
    return (m2, h2, u_src, u_dst) if r_sub_new < 1.1 * r_sub_old + 0.05 else None


def _ecc_estimate(nb, na, area, region, model, grid_a, grid_b, h_full, bshape, ashape):
    """The photometric (ECC) estimate of the global model, or None when implausible.

    Two passes: the outlier mask (changed skin, occlusions) is decided where the
    alignment is best known. Decided at the feature estimate alone, it drops the
    misaligned edges, i.e. the pixels that carry the correction, and biases ECC towards
    that estimate (real planar pairs, bench_align (c): up to 5 px at the corners from the
    full-resolution photometric optimum). Pass 1 leaves out gross change only (local
    residual > ECC_GROSS x its median: a new spot), pass 2 the usual outliers (> 2 x) at
    the pass-1 result.
    """
    h_1 = _ecc_pass(nb, na, area, area & _agrees(nb, na, area, ECC_GROSS), model, grid_b, h_full,
                    side=ECC_SIDE // 2)
    if h_1 is not None and _plausible(h_1, bshape, ashape) is None:
        na_1 = _normalised_highpass(_prewarp(grid_a, h_1, grid_b))
        area_1 = _valid_on_grid(ashape, h_1, grid_b) & region
        h_new = _ecc_pass(nb, na_1, area_1, area_1 & _agrees(nb, na_1, area_1), model, grid_b, h_1)
    else:
        h_new = _ecc_pass(nb, na, area, area & _agrees(nb, na, area), model, grid_b, h_full)
    return h_new if h_new is not None and _plausible(h_new, bshape, ashape) is None else None


def _residual_field(nb, na, area, grid_b, *, whole: bool):
    """The dense residual field on the subject (grid px) and its median magnitude in
    BEFORE full px, or ``(None, None)`` when it is below `FLOW_MIN` (nothing to add)."""
    ys, xs = _bbox(grid_b.mask, 0)
    size_px = float(max(grid_b.gray.shape)) if whole else float(
        max(ys.stop - ys.start, xs.stop - xs.start) - 1)
    weight = (area & (grid_b.mask > 0)).astype(np.float32)
    ys, xs = _bbox(weight > 0, 24)
    f = np.zeros(nb.shape + (2,), np.float32)
    f[ys, xs] = _dense_field(nb[ys, xs], na[ys, xs], weight[ys, xs], size_px)
    mag = np.hypot(f[..., 0], f[..., 1])[weight > 0]
    if not mag.size or float(np.median(mag)) < FLOW_MIN:
        return None, None
    return f, float(np.median(mag)) / grid_b.scale


def _confidence(src, dst, hg_final, h_full, model, *, sigma_region: bool, sub_b, bshape, grid_b,
                estimates, points, tol, ncc, ncc_core):
    """The calibrated confidence (probability that the corner error is under `tol`) and
    the corners' variance (AFTER px^2).

    ``p = (1 - exp(-tol^2 / (2 var))) * clip((ncc - MIN_NCC) / 0.2) [* the inner face's]``,
    ``var`` the corner covariance of the fit, the block jackknife of tracked points when
    larger, plus half the squared spread of the independent estimates (features, ECC,
    tracked points).
    """
    # calibrated confidence from the corner covariance (grid px)
    mad = np.median(np.abs(_apply(hg_final, src) - dst - np.median(_apply(hg_final, src) - dst, 0)))
    sigma = max(0.15, 1.4826 * float(mad))
    if sigma_region:
        hb, wb = bshape
        x0, y0, x1, y1 = 0, 0, wb, hb
    else:
        x0, y0, x1, y1 = sub_b.box
    corners_b = grid_b.to_grid @ np.array([[x0, x1, x1, x0], [y0, y0, y1, y1], [1, 1, 1, 1]], np.float64)
    corners_a = _apply(np.linalg.inv(hg_final), (corners_b[:2] / corners_b[2]).T)
    # the score is the usual corner error: BEFORE's corners mapped into AFTER through the
    # inverse models, in AFTER pixels. The covariance gives the corners' variance in BEFORE
    # px; near each corner, d(AFTER)/d(BEFORE) = J of H^-1, whose area scale |det J|
    # converts a per-axis variance (isotropic to first order)
    cb = (np.linalg.inv(grid_b.to_grid) @ corners_b)
    cb = (cb[:2] / cb[2]).T
    var = (_corner_variance(model, hg_final, src, sigma, corners_a) / grid_b.scale ** 2
           * _area_scale(np.linalg.inv(h_full), cb))
    # systematic error (model inadequacy, parallax, lens distortion, non-rigid motion)
    # shows as disagreement between independent estimates of the same model: features
    # (geometric), ECC (photometric, weighted by gradient energy) and tracked points
    # (photometric, spatially balanced over the overlap). Their largest pairwise distance
    # d at the corners (AFTER px) adds d^2 / 2 per axis. An estimate counts even when it
    # was not adopted: a refinement that goes elsewhere is evidence of trouble. The
    # tracked points also give a block-jackknife variance that sees spatially correlated
    # error (a scene not quite one plane); the larger of it and the covariance is used
    h_pts, var_jk = (None, np.nan) if points is None else _point_estimate(*points, model, grid_b, h_full, cb)
    h_feat, h_photo, _ = estimates
    ests = [_apply(np.linalg.inv(e), cb) for e in (h_feat, h_photo, h_pts, h_full) if e is not None]
    d = max(float(np.mean(np.linalg.norm(p - q, axis=1))) for p in ests for q in ests)
    if np.isfinite(var_jk):
        var = max(var, var_jk)
    var = var + d * d / 2.0
    p_geom = 1.0 - np.exp(-tol ** 2 / (2 * var)) if np.isfinite(var) and var > 0 else 0.0
    p_photo = float(np.clip((ncc - MIN_NCC) / 0.2, 0, 1))
    if ncc_core is not None:
        p_photo *= float(np.clip((ncc_core - MIN_NCC_CORE) / 0.2, 0, 1))
    confidence = float(p_geom * p_photo)
    return confidence, var

def _gray(p: Photo) -> np.ndarray:
    g = p.gray8()
    if p.alpha is not None:
        g = np.where(p.alpha, g, 0).astype(np.uint8)
    return g
