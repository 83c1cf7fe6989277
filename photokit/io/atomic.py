"""Atomic output: write a temporary file beside the target, then rename it.

An interrupted run therefore never leaves a half-written output, and an input photo is
never opened for writing.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ..errors import PhotokitError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, keep_suffix: bool = True):
    """Yield a temporary path beside `target`; rename it onto `target` on success.

    With `keep_suffix` the temporary file keeps the target's suffix so that encoders
    choosing the format by extension (OpenCV, matplotlib) behave as they would on the
    target; without it, it ends in ``.part`` (no importer picks up a ``.dcm`` of it).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.",
                               suffix=f".part{target.suffix}" if keep_suffix else ".part",
                               dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual mode
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `target` atomically (its temporary file ends in ``.part``)."""
    with atomic_path(target, keep_suffix=False) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 `text` to `target` atomically."""
    return write_bytes(target, text.encode("utf-8"))


def encode_image(rgb: np.ndarray, ext: str = ".png", *, quality: int = 90) -> bytes:
    """Encode an RGB (or greyscale) uint8/uint16 array to image bytes by extension."""
    arr = np.asarray(rgb)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, arr, params)
    if not ok:
        raise PhotokitError(f"could not encode image as {ext}")
    return buf.tobytes()


def write_image(target: str | os.PathLike, rgb: np.ndarray, *, quality: int = 90) -> Path:
    """Write an RGB array to `target` atomically; the format follows the extension."""
    return write_bytes(target, encode_image(rgb, Path(target).suffix or ".png", quality=quality))
