"""`Analysis`: the working set of one photo that metrics read from.

It holds calibrated linear RGB, the mask of skin to analyse and the physical scale, and
memoises every derived map (CIELAB, indices, chromophores, ridge responses, spot lists)
so that metrics sharing a map compute it once. Metric modules add their maps through
`Analysis.cached` rather than attributes, so each concern stays in its own file.

A *view* (`Analysis.within`) is the same photo with less skin: a face zone. It shares
its root's pixels, levels and per-pixel maps, and what the root found (features, bands,
counts) is narrowed to the view's skin (`Analysis.shared`) instead of being searched
again on a crop: a zone's pores are the face's pores whose centres lie in the zone, and
the face overlay and the zone counts agree. Every working array places its pixels in
the analysed image through a `Grid`, on which a view samples its skin (`Analysis.on_grid`).

The memo is thread-safe (one lock per key): metric families may run on several threads
(`photokit.measurement.measure` does), and a map two of them need is still computed once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..colour.convert import linear_to_lab
from ..colour.linear import CodedLinear, ReducedLinear

#: A level holds data within this distance (mm) of the skin's bounding box, zeros beyond:
#: more than any reader's margin around the skin (texture 4 mm, spots 8 mm, smoothing
#: kernels <= 4 mm). On a portrait whose skin is a few % of the frame this makes levels
#: and colour maps several times cheaper.
LEVEL_MARGIN_MM = 12.0
#: ...unless that box covers more than this share of the level: then it is all made.
LEVEL_FULL_SHARE = 0.5
#: A region of a level covering at least this share of it is cut out of the whole level,
#: converted once (`Analysis.linear`), so a level read as a region (spots) and whole
#: (colour maps) is converted and reduced once, not twice.
LEVEL_REGION_SHARE = 0.5


def level_factor(mm_per_px: float, target_mm_per_px: float) -> int:
    """The whole factor `Analysis.level` reduces a photo of `mm_per_px` by for features
    resolved at `target_mm_per_px`: ``max(1, floor(target / mm_per_px))`` (no coarser than
    the target; 1e-9 absorbs rounding at exact multiples)."""
    return max(1, int(np.floor(target_mm_per_px / mm_per_px + 1e-9)))


@dataclass(frozen=True)
class Grid:
    """Where the pixels of a working array lie in the analysed image.

    Attributes
    ----------
    rows, cols : ndarray of float
        Full-resolution y of each row and x of each column (increasing): array pixel
        ``(i, j)`` is image point ``(cols[j], rows[i])``.
    """

    rows: np.ndarray
    cols: np.ndarray

    @classmethod
    def scaled(cls, shape: tuple[int, int], factor: float, y0: float = 0, x0: float = 0) -> Grid:
        """The grid of an array of `shape` whose pixel ``(i, j)`` covers image pixels
        ``[(y0 + i) f, (y0 + i + 1) f)`` (an area reduction by `factor`): centres at
        ``(y0 + i + 0.5) f - 0.5``."""
        return cls((y0 + np.arange(shape[0]) + 0.5) * factor - 0.5,
                   (x0 + np.arange(shape[1]) + 0.5) * factor - 0.5)

    def crop(self, rows: slice, cols: slice) -> Grid:
        """The grid of ``array[rows, cols]``."""
        return Grid(self.rows[rows], self.cols[cols])


class Analysis:
    """Per-photo working set at one resolution.

    Parameters
    ----------
    linear : ndarray, float32, (H, W, 3), CodedLinear or ReducedLinear
        Calibrated linear RGB in ``[0, 1]`` (reflectance-like after calibration), as an
        array or as a source made where read (`CodedLinear`: codes converted; the levels
        of one are `ReducedLinear`): `linear` is then made in full only when asked for;
        `level` and `region` do not need it.
    mask : ndarray of bool, (H, W)
        The skin to analyse (ROI, skin mask, overlap and validity combined).
    mm_per_px : float or None
        Physical scale of this array; None when unknown.
    scale_source : str
        Where the scale came from: ``user``, ``checker``, ``face-estimate``,
        ``relative`` (none known) ...
    calibrated : bool
        Whether colour was calibrated (card or reference skin).
    calibration_method : str or None
        How (`photokit.colour.calibration.Calibration.method`: ``checker`` or
        ``reference``); None when not calibrated or not said. The colour metrics' noise
        floors depend on it (`photokit.metrics.redness.colour_noise`).
    """

    def __init__(self, linear: np.ndarray, mask: np.ndarray, mm_per_px: float | None,
                 *, scale_source: str = "unknown", calibrated: bool = False,
                 calibration_method: str | None = None, name: str = "<array>"):
        if isinstance(linear, (CodedLinear, ReducedLinear)):
            self._source, self._linear = linear, None
        else:
            arr = np.ascontiguousarray(linear, dtype=np.float32)
            if arr.ndim != 3 or arr.shape[2] != 3:
                raise ValueError(f"linear must be (H, W, 3), got {arr.shape}")
            self._source, self._linear = None, arr
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.shape:
            raise ValueError(f"mask shape {mask.shape} does not match image {self.shape}")
        self._start(mask, mm_per_px, scale_source, calibrated, calibration_method, name)

    def _start(self, mask: np.ndarray | None, mm_per_px: float | None, scale_source: str,
               calibrated: bool, calibration_method: str | None, name: str) -> None:
        """Set the attributes other than the pixels (`__init__`, `within`)."""
        self._mask: np.ndarray | None = mask
        #: a view's skin as ``(window, r0, c0)``: the window's first pixel is ``(r0, c0)``
        self._window: tuple[np.ndarray, int, int] | None = None
        #: where this array holds data, ``(rows, cols)`` slices; None: everywhere. A level
        #: is made only around the skin (`LEVEL_MARGIN_MM`) and is zero elsewhere.
        self.box: tuple[slice, slice] | None = None
        self.mm_per_px = mm_per_px
        self.scale_source = scale_source
        self.calibrated = calibrated
        self.calibration_method = calibration_method if calibrated else None
        self.name = name
        #: pixels of the photo's analysed image per pixel of this array (1: the image itself)
        self.factor = 1
        #: the analysis a view (`within`) narrows; None for the whole skin
        self._root: Analysis | None = None
        #: ``(r0, r1, c0, c1)`` holding every skin pixel (made on first use)
        self._bbox: tuple[int, int, int, int] | None = None
        self._count: int | None = None
        self._cache: dict[str, Any] = {}
        self._levels: dict[int, Analysis] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    @property
    def mask(self) -> np.ndarray:
        """The skin to analyse, bool (H, W) (a view's is made from its window on first use)."""
        if self._mask is None:
            with self._lock("mask"):
                if self._mask is None:
                    part, r0, c0 = self._window
                    full = np.zeros(self.shape, bool)
                    full[r0:r0 + part.shape[0], c0:c0 + part.shape[1]] = part
                    self._mask = full
        return self._mask

    @property
    def shape(self) -> tuple[int, int]:
        return self._source.shape if self._linear is None else self._linear.shape[:2]

    @property
    def linear(self) -> np.ndarray:
        """Linear RGB, float32 (H, W, 3); made in full on first use when given as codes."""
        if self._root is not None:
            return self._root.linear
        if self._linear is None:
            with self._lock("linear"):
                if self._linear is None:
                    self._linear = self._source.full()
        return self._linear

    def region(self, rows, x0: int = 0, x1: int | None = None) -> np.ndarray:
        """Linear RGB of ``[rows, x0:x1]`` (`rows` a slice or an index array), float32,
        without making the whole image when it is held as codes."""
        if self._root is not None:
            return self._root.region(rows, x0, x1)
        if self._linear is None and not self._most_of_level(rows, x0, x1):
            return self._source.region(rows, x0, x1)
        return np.ascontiguousarray(self.linear[rows, x0:x1])

    def _most_of_level(self, rows, x0: int, x1: int | None) -> bool:
        """Whether ``[rows, x0:x1]`` is a block of at least `LEVEL_REGION_SHARE` of a level
        held as a `ReducedLinear` (then the whole level is made once and cut)."""
        if not isinstance(self._source, ReducedLinear) or not isinstance(rows, slice):
            return False
        h, w = self.shape
        r0, r1, _ = rows.indices(h)
        c0, c1, _ = slice(x0, x1).indices(w)
        return max(0, r1 - r0) * max(0, c1 - c0) >= LEVEL_REGION_SHARE * h * w

    def rescaled(self, mm_per_px: float | None, scale_source: str) -> Analysis:
        """A twin sharing these pixels and mask at another stated scale."""
        twin = Analysis(self._source if self._linear is None else self._linear, self.mask, mm_per_px,
                        scale_source=scale_source, calibrated=self.calibrated,
                        calibration_method=self.calibration_method, name=self.name)
        twin.box = self.box
        twin._bbox, twin._count = self._bbox, self._count   # the same mask
        return twin

    def pointwise(self, key: str, fn: Callable[[np.ndarray], np.ndarray],
                  of: np.ndarray | None = None) -> np.ndarray:
        """``fn(of)`` for a pixel-by-pixel `fn` (default `of`: `linear`), made within `box`
        only (zero elsewhere) and cached under `key`; a view's are its root's."""
        if self._root is not None:
            return self._root.pointwise(key, fn, of)

        def make(a: Analysis) -> np.ndarray:
            x = a.linear if of is None else of
            if a.box is None:
                return fn(x)
            part = fn(np.ascontiguousarray(x[a.box]))
            out = np.zeros(a.shape + part.shape[2:], part.dtype)
            out[a.box] = part
            return out
        return self.cached(key, make)

    @property
    def skin_pixels(self) -> int:
        """Number of analysed (mask) pixels."""
        if self._count is None:
            r0, r1, c0, c1 = self.bbox
            self._count = int(np.count_nonzero(self.mask[r0:r1, c0:c1]))
        return self._count

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """``(r0, r1, c0, c1)``: the rows and columns that hold every skin pixel."""
        if self._bbox is None:
            x, y, w, h = cv2.boundingRect(self.mask.view(np.uint8))
            self._bbox = (y, y + h, x, x + w)
        return self._bbox

    @property
    def root(self) -> Analysis:
        """The analysis of the whole skin this one narrows (itself when not a view)."""
        return self if self._root is None else self._root

    def within(self, mask: np.ndarray, at: tuple[int, int] | None = None) -> Analysis:
        """A view of this analysis limited to the skin in ``mask & self.mask``.

        The view shares the root's pixels, levels and maps (`pointwise`, `shared`);
        `cached` values of its own are made on its skin. With `at` ``(r0, c0)``, `mask` is
        a window of the image whose first pixel is ``(r0, c0)`` (nothing outside it is
        skin): the view then costs what the window does.
        """
        root = self.root
        if at is None:
            at, mask = (0, 0), mask & self.mask
        else:
            (r0, c0), (h, w) = at, mask.shape
            mask = mask & self.mask[r0:r0 + h, c0:c0 + w]
        x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
        r0, c0 = at[0] + y, at[1] + x
        view = Analysis.__new__(Analysis)
        view._source, view._linear = root._source, root._linear
        view._start(None, self.mm_per_px, self.scale_source, self.calibrated, self.calibration_method,
                    self.name)
        view._window = (mask[y:y + h, x:x + w], r0, c0)
        view._root, view.box, view.factor = root, root.box, root.factor
        view._bbox = (r0, r0 + h, c0, c0 + w)
        view._count = int(cv2.countNonZero(view._window[0].view(np.uint8)))
        return view

    def shared(self, key: str, make: Callable[[Analysis], Any],
               narrow: Callable[[Any, Analysis], Any]) -> Any:
        """``make(root)`` on the whole skin, once; a view gets ``narrow(result, view)``
        (cached; None stays None): what the root found, limited to the view's skin."""
        if self._root is None:
            return self.cached(key, make)
        whole = self._root.cached(key, make)
        return self.cached(key, lambda v: None if whole is None else narrow(whole, v))

    def on_grid(self, grid: Grid) -> tuple[slice, slice, np.ndarray]:
        """The window of `grid` around this analysis's skin and the skin sampled there.

        Returns ``(rows, cols, skin)``: slices of the grid's array that hold every grid
        pixel whose nearest image pixel is skin, and ``skin`` on ``[rows, cols]`` (nearest
        image pixel; bool).
        """
        r0, r1, c0, c1 = self.bbox
        rs = slice(int(np.searchsorted(grid.rows, r0 - 1.0)), int(np.searchsorted(grid.rows, r1)))
        cs = slice(int(np.searchsorted(grid.cols, c0 - 1.0)), int(np.searchsorted(grid.cols, c1)))
        part, w0, v0 = self._window or (self._mask, 0, 0)
        ri = np.rint(grid.rows[rs]).astype(np.intp) - w0
        ci = np.rint(grid.cols[cs]).astype(np.intp) - v0
        # rows and columns are increasing: those inside the window are runs
        a, b = np.searchsorted(ri, 0), np.searchsorted(ri, part.shape[0])
        c, d = np.searchsorted(ci, 0), np.searchsorted(ci, part.shape[1])
        skin = np.zeros((ri.size, ci.size), bool)
        # two takes, one per axis: the same pixels as ``part[np.ix_(rows, cols)]``, about
        # 7x faster on a zone's window
        skin[a:b, c:d] = part.take(ri[a:b], axis=0).take(ci[c:d], axis=1)
        return rs, cs, skin

    def holds(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether the image points ``(x, y)`` (full-resolution pixels) lie on this
        analysis's skin (nearest pixel; False outside the image)."""
        part, r0, c0 = self._window or (self._mask, 0, 0)
        yi = np.rint(np.asarray(y)).astype(np.intp) - r0
        xi = np.rint(np.asarray(x)).astype(np.intp) - c0
        inside = (yi >= 0) & (yi < part.shape[0]) & (xi >= 0) & (xi < part.shape[1])
        out = np.zeros(yi.shape, bool)
        out[inside] = part[yi[inside], xi[inside]]
        return out

    @property
    def skin_area_mm2(self) -> float | None:
        """Analysed skin area in mm^2 (None when the scale is unknown)."""
        if self.mm_per_px is None:
            return None
        return self.skin_pixels * self.mm_per_px ** 2

    def cached(self, key: str, fn: Callable[[Analysis], Any]) -> Any:
        """Return ``fn(self)``, computed once per key."""
        if key not in self._cache:
            with self._lock(key):
                if key not in self._cache:
                    self._cache[key] = fn(self)
        return self._cache[key]

    @property
    def lab(self) -> np.ndarray:
        """CIELAB (D65) of the calibrated pixels, float32 (H, W, 3)."""
        return self.pointwise("lab", linear_to_lab)

    @property
    def luminance(self) -> np.ndarray:
        """CIE L* (0-100), float32 (H, W)."""
        return self.lab[..., 0]

    def level(self, target_mm_per_px: float | None = None, *, max_side: int | None = None) -> Analysis:
        """A downsampled copy, no finer than `target_mm_per_px` (or no larger than `max_side`).

        Downsampling uses area averaging by an integer factor (the same factor for a given
        target, so results are reproducible); the mask is kept where at least half of
        each block is inside (exact halves round down). When the skin fills a small part
        of the frame, the level holds data only within `LEVEL_MARGIN_MM` of it (its `box`;
        zero elsewhere, where every reader is masked anyway). Returns ``self`` when no
        reduction is needed. A view's level is its root's level with the view's skin
        sampled on it (`on_grid`).
        """
        if self._root is not None:
            lv = self._root.level(target_mm_per_px, max_side=max_side)
            if lv is self._root:
                return self
            with self._lock(f"level:{lv.factor}"):
                if lv.factor not in self._levels:
                    rs, cs, skin = self.on_grid(Grid.scaled(lv.shape, lv.factor / self.factor))
                    self._levels[lv.factor] = lv.within(skin, (rs.start, cs.start))
            return self._levels[lv.factor]
        factor = 1
        if target_mm_per_px is not None and self.mm_per_px:
            factor = level_factor(self.mm_per_px, target_mm_per_px)
        if max_side is not None:
            factor = max(factor, int(np.ceil(max(self.shape) / max_side)))
        if factor == 1:
            return self
        with self._lock(f"level:{factor}"):
            if factor not in self._levels:
                self._levels[factor] = self._reduced(factor)
        return self._levels[factor]

    def _reduced(self, factor: int) -> Analysis:
        """This analysis area-averaged by an integer `factor` (see `level`); made only
        within `LEVEL_MARGIN_MM` of the skin when that is at most `LEVEL_FULL_SHARE` of it."""
        h, w = self.shape
        size = (max(1, w // factor), max(1, h // factor))
        # area-average of 0/1 bytes rounds to 1 where at least half the block is inside;
        # averaged over the blocks that meet the skin's bounding box only (the others are
        # all zero): the same blocks, a fraction of a 12 MP mask to read
        m = np.zeros((size[1], size[0]), bool)
        y, y1, x, x1 = self.bbox
        r0, c0 = y // factor, x // factor
        r1, c1 = min(size[1], -(-y1 // factor)), min(size[0], -(-x1 // factor))
        if r1 > r0 and c1 > c0:
            m[r0:r1, c0:c1] = cv2.resize(
                self.mask[r0 * factor: r1 * factor, c0 * factor: c1 * factor].view(np.uint8),
                (c1 - c0, r1 - r0), interpolation=cv2.INTER_AREA) > 0
        box = self._level_box(factor, size)
        if self._linear is None and h >= factor and w >= factor:
            lin = ReducedLinear(self._source, factor, box)     # made where it is read
        elif box is None:
            lin = cv2.resize(self.linear[: size[1] * factor, : size[0] * factor], size,
                             interpolation=cv2.INTER_AREA)
        else:
            (r0, r1), (c0, c1) = box
            lin = np.zeros((size[1], size[0], 3), np.float32)
            lin[r0:r1, c0:c1] = cv2.resize(
                self._linear[r0 * factor: r1 * factor, c0 * factor: c1 * factor],
                (c1 - c0, r1 - r0), interpolation=cv2.INTER_AREA)
        lv = Analysis(lin, m, None if self.mm_per_px is None else self.mm_per_px * factor,
                      scale_source=self.scale_source, calibrated=self.calibrated,
                      calibration_method=self.calibration_method, name=self.name)
        lv.factor = self.factor * factor
        if box is not None:
            lv.box = (slice(*box[0]), slice(*box[1]))
        return lv

    def _level_box(self, factor: int, size: tuple[int, int]):
        """Level rows and columns ``((r0, r1), (c0, c1))`` within `LEVEL_MARGIN_MM` of the
        skin's bounding box, or None when all of the level is to be made (no scale, no
        skin, a box over `LEVEL_FULL_SHARE`, or this array itself holds data only in a box)."""
        if not self.mm_per_px or self.box is not None:
            return None
        y, y1, x, x1 = self.bbox
        bw, bh = x1 - x, y1 - y
        if bw == 0 or bh == 0:
            return None
        pad = LEVEL_MARGIN_MM / self.mm_per_px
        wo, ho = size
        c0, c1 = max(0, int((x - pad) // factor)), min(wo, int(np.ceil((x + bw + pad) / factor)))
        r0, r1 = max(0, int((y - pad) // factor)), min(ho, int(np.ceil((y + bh + pad) / factor)))
        if (c1 - c0) * (r1 - r0) > LEVEL_FULL_SHARE * wo * ho:
            return None
        return (r0, r1), (c0, c1)
