"""`Analysis`: the working set of one photo that metrics read from.

It holds calibrated linear RGB, the mask of skin to analyse and the physical scale, and
memoises every derived map (CIELAB, indices, chromophores, ridge responses, spot lists)
so that metrics sharing a map compute it once. Metric modules add their maps through
`Analysis.cached` rather than attributes, so each concern stays in its own file.

The memo is thread-safe (one lock per key): metric families may run on several threads
(`photokit.measure` does), and a map two of them need is still computed once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from .colour import linear_to_lab


class Analysis:
    """Per-photo working set at one resolution.

    Parameters
    ----------
    linear : ndarray, float32, (H, W, 3)
        Calibrated linear RGB in ``[0, 1]`` (reflectance-like after calibration).
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
        linear = np.ascontiguousarray(linear, dtype=np.float32)
        if linear.ndim != 3 or linear.shape[2] != 3:
            raise ValueError(f"linear must be (H, W, 3), got {linear.shape}")
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != linear.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match image {linear.shape[:2]}")
        self.linear = linear
        self.mask = mask
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
        return self.linear.shape[:2]

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
        return self.cached("lab", lambda a: linear_to_lab(a.linear))

    @property
    def luminance(self) -> np.ndarray:
        """CIE L* (0-100), float32 (H, W)."""
        return self.lab[..., 0]

    def level(self, target_mm_per_px: float | None = None, *, max_side: int | None = None) -> Analysis:
        """A downsampled copy, no finer than `target_mm_per_px` (or no larger than `max_side`).

        Downsampling uses area averaging by an integer factor (the same factor for a given
        target, so results are reproducible); the mask is kept where at least half of
        each block is inside (exact halves round down). Returns ``self`` when no reduction
        is needed.
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
        """This analysis area-averaged by an integer `factor` (see `level`)."""
        h, w = self.shape
        size = (max(1, w // factor), max(1, h // factor))
        lin = cv2.resize(self.linear[: size[1] * factor, : size[0] * factor], size,
                         interpolation=cv2.INTER_AREA)
        # area-average of 0/1 bytes rounds to 1 where at least half the block is inside
        m = cv2.resize(self.mask[: size[1] * factor, : size[0] * factor].view(np.uint8),
                       size, interpolation=cv2.INTER_AREA) > 0
        return Analysis(lin, m, None if self.mm_per_px is None else self.mm_per_px * factor,
                        scale_source=self.scale_source, calibrated=self.calibrated, name=self.name)
