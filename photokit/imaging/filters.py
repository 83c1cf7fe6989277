"""Image filters shared by the metric modules.

`gaussian` gives exactly what ``cv2.GaussianBlur(x, (0, 0), sigma)`` gives on float32
images (the same kernel: ``ksize = round(8 sigma + 1) | 1`` taps of
``cv2.getGaussianKernel``, the same separable filter, the same border), but calls
``cv2.sepFilter2D`` directly. On float32 OpenCV 4's ``GaussianBlur`` takes a path that
is several times slower for the small kernels (sigma of 0.5-1.5 px) that scale spaces
are built from: 9 ms against 1.5 ms for sigma 0.8 on a 1.1 MP image here
(``benchmarks/bench_measure.py`` lists the metric steps that use it).
"""

from __future__ import annotations

import threading
import weakref

import cv2
import numpy as np


def gaussian(x: np.ndarray, sigma: float, sigma_y: float | None = None,
             border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
    """Gaussian blur of a float32 image, identical to ``cv2.GaussianBlur(x, (0, 0), sigma)``.

    Parameters
    ----------
    x : ndarray, float32, (H, W) or (H, W, C)
    sigma : float
        Standard deviation along x (pixels), > 0.
    sigma_y : float, optional
        Along y (default: `sigma`).
    border : int
        OpenCV border mode (default reflect-101, as ``GaussianBlur``).

    Notes
    -----
    ``G(t) = exp(-t^2 / (2 sigma^2)) / sum``, truncated at 4 sigma, applied along rows then
    columns (OpenCV's float kernel-size rule).
    """
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"gaussian expects float32, got {x.dtype}")
    sy = sigma if sigma_y is None else sigma_y
    return cv2.sepFilter2D(x, -1, _kernel(float(sigma)), _kernel(float(sy)), borderType=border)


def _kernel(sigma: float) -> np.ndarray:
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    return cv2.getGaussianKernel(int(round(sigma * 8 + 1)) | 1, sigma, cv2.CV_32F)


def fit_within(img: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """`img` downscaled (area averaging) so its long side is at most `side`, and the scale
    factor (1.0, and `img` itself, when it already fits; never upscaled)."""
    s = min(1.0, side / max(img.shape[:2]))
    if s >= 1:
        return img, 1.0
    return cv2.resize(img, (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))),
                      interpolation=cv2.INTER_AREA), s


def shrink(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average `img` down to ``size = (width, height)``.

    Halves first (``cv2.INTER_AREA`` by exactly 2 takes OpenCV's fast path: ~4 ms for a
    12 MP RGB photo, against 25-30 ms for one area resize by 2.5-4) while the result
    is still at least `size`, then one area resize by the remaining factor (below 2).
    Each output pixel is still an average over its footprint, up to one rounding per
    halving on uint8; results differ from a single area resize by about a code value,
    more at sharp edges for non-integer factors. The halvings of a read-only array are
    made once and shared (`halved`).
    """
    w, h = size
    k = 0
    while img.shape[1] >> (k + 1) >= w and img.shape[0] >> (k + 1) >= h:
        k += 1
    img = halved(img, k)
    if (img.shape[1], img.shape[0]) == (w, h):
        return img
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


#: id of a read-only array -> (weak reference to it, its halvings so far (1, 2, ...), their lock).
_HALVINGS: dict[int, tuple] = {}
_HALVINGS_LOCK = threading.Lock()


def halved(img: np.ndarray, k: int) -> np.ndarray:
    """`img` area-halved `k` times (each side ``side // 2`` per halving, ``cv2.INTER_AREA``).

    For a read-only array (a `photokit.io.photo.Photo`'s pixels) each halving is made
    once and kept while the array lives, shared by every caller and thread: a 12 MP
    photo's colour-card search, skin working copy and capture checks all start from the
    same 1/4-size copy (three halvings of 12 MP cost 14 ms, one 5 ms). The copies are
    read-only too. A writeable array is halved afresh each call (it may change).
    """
    if k <= 0:
        return img
    if img.flags.writeable:
        for _ in range(k):
            img = _halve(img)
        return img
    key = id(img)
    with _HALVINGS_LOCK:
        entry = _HALVINGS.get(key)
        if entry is None or entry[0]() is not img:
            # the halvings only: holding `img` itself would keep it alive for ever
            entry = (weakref.ref(img, lambda _, key=key: _HALVINGS.pop(key, None)), [],
                     threading.Lock())
            _HALVINGS[key] = entry
    _, levels, lock = entry
    with lock:
        while len(levels) < k:
            nxt = _halve(levels[-1] if levels else img)
            nxt.flags.writeable = False
            levels.append(nxt)
        return levels[k - 1]


def _halve(img: np.ndarray) -> np.ndarray:
    return cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)


def channel_max(img: np.ndarray) -> np.ndarray:
    """Per-pixel maximum over the channels of a (..., 3) image, in its dtype.

    Equal to ``img.max(axis=-1)``; OpenCV's element-wise maximum of the split channels
    is 10-20x faster than NumPy's reduction over a 3-long last axis. A window of a larger
    image (rows apart, pixels packed) is read where it is, not copied first (OpenCV copies
    what it cannot read in place itself).
    """
    r, g, b = cv2.split(img)
    return cv2.max(cv2.max(r, g), b).reshape(img.shape[:-1])


def channel_max_within(img: np.ndarray, lo: int, hi: int, out: np.ndarray | None = None,
                       rows: int = 256) -> np.ndarray:
    """``1`` where ``lo <= max over channels <= hi``, else ``0`` (uint8, (H, W)).

    The test of "not clipped in any channel (all <= hi) and not black (some > lo - 1)"
    on an 8-bit photo, by blocks of `rows` rows (`channel_max`, then one single-channel
    ``cv2.inRange``: 13 ms on 12 MP, against 25 ms for two three-channel ranges). With
    `out` (uint8 0/1, (H, W)) the result is ANDed into it in place, so a caller holding a
    mask makes no other full-size array.
    """
    h = img.shape[0]
    if out is None:
        out = np.ones(img.shape[:2], np.uint8)
    elif not out.flags.c_contiguous or out.dtype != np.uint8:
        raise ValueError("out must be a C-contiguous uint8 array (it is written in place)")
    for y in range(0, h, rows):
        o = out[y: y + rows]
        within = cv2.inRange(channel_max(img[y: y + rows]), int(lo), int(hi))  # 0 / 255
        cv2.bitwise_and(o, within, dst=o)
    return out


def percentile_u8(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear interpolation) of uint8 values, exactly, from
    their histogram: no sort or partition of the values (~15x faster on a megapixel).

    The order statistic of rank ``r = q / 100 (n - 1)`` is read off the cumulative
    histogram at ``floor(r)`` and ``floor(r) + 1`` and interpolated linearly, as NumPy does.
    """
    v = np.ascontiguousarray(values, dtype=np.uint8).reshape(1, -1)
    n = v.size
    if n == 0:
        raise ValueError("percentile of no values")
    cum = np.cumsum(cv2.calcHist([v], [0], None, [256], [0, 256]).ravel().astype(np.int64))
    r = q / 100.0 * (n - 1)
    lo = int(np.floor(r))
    a = int(np.searchsorted(cum, lo + 1))              # value of order statistic `lo`
    b = int(np.searchsorted(cum, min(lo + 1, n - 1) + 1))
    return float(a + (r - lo) * (b - a))
