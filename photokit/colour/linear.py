"""Linear RGB made from a photo's decoded codes where it is read.

`CodedLinear` holds the decoded 8/16-bit codes and the pixel-wise conversion to
calibrated linear RGB (sRGB decoding, a card's correction, reference gains), so a 12 MP
photo never needs a full float copy; `ReducedLinear` is an area-averaged level of it,
converted block by block where a reader asks.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .convert import pixels_to_linear

#: Rows converted at a time by `CodedLinear` (rounded to a multiple of the level factor):
#: a block of a 4000 px wide photo is then ~1.5 MB of float32, which stays in cache.
BLOCK_ROWS = 32


class CodedLinear:
    """Linear RGB given by code values and a pixel-wise conversion, made where needed.

    A 12 MP photo's linear RGB is 144 MB of float32. Where a fresh allocation's first
    touch is slow (0.1-0.3 s for 144 MB on the virtual machines photokit is benchmarked
    on; `benchmarks/bench_measure.py`), converting the whole photo costs more than all
    the metrics that read it, and most of them only read pyramid levels or a few strips.
    This holds the 8- or 16-bit codes (the decoded photo, not copied) and converts a
    block of rows at a time: a level is the area average of converted blocks (exactly
    what an area resize of the converted photo gives, since the blocks are whole rows of
    level pixels), a region is converted alone, and `full` is there for callers that
    need every pixel.

    Parameters
    ----------
    codes : ndarray, uint8 or uint16, (H, W, 3)
        Code values as decoded.
    convert : callable, optional
        Maps a ``(h, w, 3)`` block of `codes` to float32 linear RGB, pixel by pixel.
        Default: sRGB decoding (`photokit.colour.convert.pixels_to_linear`).
    """

    def __init__(self, codes: np.ndarray, convert: Callable[[np.ndarray], np.ndarray] | None = None):
        codes = np.asarray(codes)
        if codes.ndim != 3 or codes.shape[2] != 3 or codes.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"codes must be uint8/uint16 (H, W, 3), got {codes.dtype} {codes.shape}")
        self.codes = codes
        self.convert = pixels_to_linear if convert is None else convert

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape[:2]

    def scaled(self, gains) -> CodedLinear:
        """The same pixels times per-channel `gains` (a linear-RGB white balance)."""
        g = np.asarray(gains, np.float32).reshape(1, 1, 3)
        convert = self.convert
        return CodedLinear(self.codes, lambda block: convert(block) * g)

    def pixels(self, mask: np.ndarray) -> np.ndarray:
        """Linear RGB of the pixels where `mask` is set, ``(n, 3)`` float32."""
        return self.convert(np.ascontiguousarray(self.codes[mask])[:, None, :])[:, 0, :]

    def region(self, rows, x0: int = 0, x1: int | None = None) -> np.ndarray:
        """Linear RGB of ``codes[rows, x0:x1]`` (`rows` a slice or an index array)."""
        return self.convert(np.ascontiguousarray(self.codes[rows, x0:x1]))

    def full(self) -> np.ndarray:
        """Linear RGB of the whole photo, float32 (H, W, 3)."""
        h, w = self.shape
        out = np.empty((h, w, 3), np.float32)
        for y in range(0, h, BLOCK_ROWS):
            out[y: y + BLOCK_ROWS] = self.region(slice(y, y + BLOCK_ROWS))
        return out

    def reduced(self, factor: int, rows: tuple[int, int] | None = None,
                cols: tuple[int, int] | None = None) -> np.ndarray:
        """Area average over `factor` x `factor` blocks, float32.

        Level rows ``rows = (r0, r1)`` and columns ``cols = (c0, c1)`` (default: all
        whole blocks, ``H // factor`` x ``W // factor``); level pixel ``(r, c)`` is the
        mean of photo pixels ``[r f, (r + 1) f) x [c f, (c + 1) f)``.
        """
        h, w = self.shape
        r0, r1 = rows if rows is not None else (0, h // factor)
        c0, c1 = cols if cols is not None else (0, w // factor)
        out = np.empty((r1 - r0, c1 - c0, 3), np.float32)
        step = max(1, BLOCK_ROWS // factor)          # level rows per block
        for r in range(r0, r1, step):
            n = min(step, r1 - r)
            block = self.region(slice(r * factor, (r + n) * factor), c0 * factor, c1 * factor)
            # straight into the level's rows (whole rows of `out`: contiguous)
            cv2.resize(block, (c1 - c0, n), dst=out[r - r0: r - r0 + n], interpolation=cv2.INTER_AREA)
        return out


def _runs(rows, n: int) -> list[tuple[int, int]]:
    """Runs ``[(start, stop), ...]`` of consecutive indices of `rows` (a slice or an
    increasing index array) within ``range(n)``."""
    if isinstance(rows, slice):
        a, b, step = rows.indices(n)
        if step != 1:
            raise ValueError("only unit-step row slices")
        return [(a, b)] if b > a else []
    r = np.asarray(rows, np.intp)
    if r.size == 0:
        return []
    cut = np.flatnonzero(np.diff(r) != 1) + 1
    starts, stops = np.r_[r[0], r[cut]], np.r_[r[cut - 1] + 1, r[-1] + 1]
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


class ReducedLinear:
    """A level of a `CodedLinear` (area average by `factor`), made where it is read.

    A strip-sampled reader (texture's `work` on a level) then converts and reduces only
    its rows, not the whole photo. Within `box` (level ``((r0, r1), (c0, c1))``; None:
    everywhere) the values are those of the source; outside they are zero.
    """

    def __init__(self, source: CodedLinear, factor: int, box=None):
        self.source, self.factor, self.box = source, int(factor), box
        h, w = source.shape
        self.shape = (h // self.factor, w // self.factor)

    def _window(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        out_shape = (r1 - r0, c1 - c0, 3)
        if self.box is None:
            return self.source.reduced(self.factor, (r0, r1), (c0, c1))
        (br0, br1), (bc0, bc1) = self.box
        out = np.zeros(out_shape, np.float32)
        a, b, c, d = max(r0, br0), min(r1, br1), max(c0, bc0), min(c1, bc1)
        if b > a and d > c:
            out[a - r0: b - r0, c - c0: d - c0] = self.source.reduced(self.factor, (a, b), (c, d))
        return out

    def region(self, rows, x0: int = 0, x1: int | None = None) -> np.ndarray:
        """Level linear RGB of ``[rows, x0:x1]`` (`rows` a slice or an increasing index array)."""
        x1 = self.shape[1] if x1 is None else min(x1, self.shape[1])
        parts = [self._window(a, b, x0, x1) for a, b in _runs(rows, self.shape[0])]
        if not parts:
            return np.zeros((0, x1 - x0, 3), np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def full(self) -> np.ndarray:
        """The whole level, float32 ``(H // factor, W // factor, 3)``."""
        return self._window(0, self.shape[0], 0, self.shape[1])

    def reduced(self, factor: int, rows=None, cols=None) -> np.ndarray:
        """This level area-averaged again by `factor` (a level of a level)."""
        h, w = self.shape
        r0, r1 = rows if rows is not None else (0, h // factor)
        c0, c1 = cols if cols is not None else (0, w // factor)
        block = self._window(r0 * factor, r1 * factor, c0 * factor, c1 * factor)
        return cv2.resize(block, (c1 - c0, r1 - r0), interpolation=cv2.INTER_AREA)
