"""`Analysis`: the working set of one photo that metrics read from.

It holds calibrated linear RGB, the mask of skin to analyse and the physical scale, and
memoises every derived map (CIELAB, indices, chromophores, ridge responses, spot lists)
so that metrics sharing a map compute it once. Metric modules add their maps through
`Analysis.cached` rather than attributes, so each concern stays in its own file.

The memo is thread-safe (one lock per key): metric families may run on several threads
(`photokit.measurement.measure` does), and a map two of them need is still computed once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
    """

    def __init__(self, linear: np.ndarray, mask: np.ndarray, mm_per_px: float | None,
                 *, scale_source: str = "unknown", calibrated: bool = False,
                 name: str = "<array>"):
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
        self.mask = mask
        #: where this array holds data, ``(rows, cols)`` slices; None: everywhere. A level
        #: is made only around the skin (`LEVEL_MARGIN_MM`) and is zero elsewhere.
        self.box: tuple[slice, slice] | None = None
        self.mm_per_px = mm_per_px
        self.scale_source = scale_source
        self.calibrated = calibrated
        self.name = name
        self._cache: dict[str, Any] = {}
        self._levels: dict[int, Analysis] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    @property
    def shape(self) -> tuple[int, int]:
        return self._source.shape if self._linear is None else self._linear.shape[:2]

    @property
    def linear(self) -> np.ndarray:
        """Linear RGB, float32 (H, W, 3); made in full on first use when given as codes."""
        if self._linear is None:
            with self._lock("linear"):
                if self._linear is None:
                    self._linear = self._source.full()
        return self._linear

    def region(self, rows, x0: int = 0, x1: int | None = None) -> np.ndarray:
        """Linear RGB of ``[rows, x0:x1]`` (`rows` a slice or an index array), float32,
        without making the whole image when it is held as codes."""
        if self._linear is None:
            return self._source.region(rows, x0, x1)
        return np.ascontiguousarray(self._linear[rows, x0:x1])

    def rescaled(self, mm_per_px: float | None, scale_source: str) -> Analysis:
        """A twin sharing these pixels and mask at another stated scale."""
        twin = Analysis(self._source if self._linear is None else self._linear, self.mask, mm_per_px,
                        scale_source=scale_source, calibrated=self.calibrated, name=self.name)
        twin.box = self.box
        return twin

    def pointwise(self, key: str, fn: Callable[[np.ndarray], np.ndarray],
                  of: np.ndarray | None = None) -> np.ndarray:
        """``fn(of)`` for a pixel-by-pixel `fn` (default `of`: `linear`), made within `box`
        only (zero elsewhere) and cached under `key`."""
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
        return int(np.count_nonzero(self.mask))

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
        reduction is needed.
        """
        factor = 1
        if target_mm_per_px is not None and self.mm_per_px:
            factor = max(1, int(np.floor(target_mm_per_px / self.mm_per_px + 1e-9)))
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
        # area-average of 0/1 bytes rounds to 1 where at least half the block is inside
        m = cv2.resize(self.mask[: size[1] * factor, : size[0] * factor].view(np.uint8),
                       size, interpolation=cv2.INTER_AREA) > 0
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
                      scale_source=self.scale_source, calibrated=self.calibrated, name=self.name)
        if box is not None:
            lv.box = (slice(*box[0]), slice(*box[1]))
        return lv

    def _level_box(self, factor: int, size: tuple[int, int]):
        """Level rows and columns ``((r0, r1), (c0, c1))`` within `LEVEL_MARGIN_MM` of the
        skin's bounding box, or None when all of the level is to be made (no scale, no
        skin, a box over `LEVEL_FULL_SHARE`, or this array itself holds data only in a box)."""
        if not self.mm_per_px or self.box is not None:
            return None
        x, y, bw, bh = self.cached("mask.bbox", lambda a: cv2.boundingRect(a.mask.view(np.uint8)))
        if bw == 0 or bh == 0:
            return None
        pad = LEVEL_MARGIN_MM / self.mm_per_px
        wo, ho = size
        c0, c1 = max(0, int((x - pad) // factor)), min(wo, int(np.ceil((x + bw + pad) / factor)))
        r0, r1 = max(0, int((y - pad) // factor)), min(ho, int(np.ceil((y + bh + pad) / factor)))
        if (c1 - c0) * (r1 - r0) > LEVEL_FULL_SHARE * wo * ho:
            return None
        return (r0, r1), (c0, c1)
