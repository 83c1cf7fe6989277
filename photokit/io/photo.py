"""Loading photos: decode once, upright, in sRGB, with the metadata a series needs.

`load` is the only door through which pixels enter photokit. It accepts a path, a numpy
array or a `Photo`, so that every public function takes arrays and paths alike.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from ..errors import PhotokitError

#: Default upper bound on width*height, against decompression bombs (about 120 MP,
#: above any phone or medium-format camera). Override with ``max_pixels=`` or the
#: ``PHOTOKIT_MAX_PIXELS`` environment variable.
DEFAULT_MAX_PIXELS = 120_000_000

#: Smallest side photokit analyses; anything smaller carries no measurable skin.
MIN_SIDE = 32

#: The decode reductions `load` offers (JPEG DCT scaling supports exactly these).
REDUCTIONS = (1, 2, 4, 8)
#: OpenCV's JPEG DCT-scaling flag bits by reduction (the REDUCED_GRAYSCALE_k values;
#: ORed with IMREAD_COLOR_RGB they give reduced colour).
_JPEG_SCALING = {1: 0, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}
#: The cause given for a file no decoder recognises.
NOT_AN_IMAGE = "not a recognised image format (JPEG, PNG, TIFF, WebP, BMP, HEIC)"

#: File name extensions photokit reads.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".heic", ".heif")

_EXIF_IFD = 0x8769
_TAG_DATETIME = 0x0132
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_OFFSET_ORIGINAL = 0x9011
_TAG_SUBSEC_ORIGINAL = 0x9291
_TAG_ORIENTATION = 0x0112

#: HEIF ``nclx`` colour description codes (ITU-T H.273): SMPTE EG 432-1 primaries
#: (Display P3) and the sRGB transfer curve.
NCLX_P3 = 12
NCLX_SRGB = 13
#: Linear Display P3 to linear sRGB (D65, no adaptation needed).
P3_TO_SRGB = np.array([[1.2249401, -0.2249404, 0.0],
                       [-0.0420569, 1.0420571, 0.0],
                       [-0.0196376, -0.0786361, 1.0982735]])

# EXIF orientation -> (cv2.rotate code or None, flip horizontally first)
_ORIENT = {
    1: (None, False), 2: (None, True), 3: (cv2.ROTATE_180, False), 4: (cv2.ROTATE_180, True),
    5: (cv2.ROTATE_90_COUNTERCLOCKWISE, True), 6: (cv2.ROTATE_90_CLOCKWISE, False),
    7: (cv2.ROTATE_90_CLOCKWISE, True), 8: (cv2.ROTATE_90_COUNTERCLOCKWISE, False),
}


#: `Photo.has_colour`: channels at most this many 8-bit codes apart are grey (JPEG's chroma
#: rounding leaves a grey photo saved as RGB within 1-2; skin differs by tens)...
GREY_SPREAD = 3
#: ...and a photo with no more than this share of other pixels has no colour (a date
#: stamp or a coloured logo on a black-and-white photo).
GREY_SHARE = 0.002


#: `load` of a float array: values above this are not 0-1 data (0-255 floats, say),
#: values up to it are clipped to 1 (a bicubic resize overshoots a little).
FLOAT_TOP = 1.5


def grey_step(shape) -> int:
    """The stride `Photo.has_colour` reads pixels at: about a quarter megapixel of a large
    photo (1 ms on 12 MP; a 0.2 % share of it is still 500 pixels)."""
    return max(1, int(np.sqrt(shape[0] * shape[1] / 2.5e5)))


#: Guards `Photo._making` (the per-key locks of `Photo.memo`).
_MEMO_LOCK = threading.Lock()


@dataclass(eq=False)
class Photo:
    """Pixels plus what photokit knows about how they were taken.

    Attributes
    ----------
    pixels : ndarray
        ``(H, W, 3)`` RGB or ``(H, W)`` greyscale, ``uint8`` or ``uint16``, sRGB-encoded,
        upright (EXIF orientation applied).
    path : str or None
        Where the photo came from (None for arrays).
    capture_time : datetime or None
        EXIF ``DateTimeOriginal`` (or ``DateTime``), timezone-aware when the file says so.
    orientation : int
        The EXIF orientation that was applied (1 = none).
    colour_profile : str
        ``"sRGB"``, ``"sRGB (assumed)"`` or ``"<profile> -> sRGB"`` when converted.
    mm_per_px : float or None
        Physical scale when known (given by the caller).
    alpha : ndarray of bool or None
        Where the photo is opaque, when it had an alpha channel; transparent pixels are
        never analysed.
    format : str
        Decoder format name (``JPEG``, ``PNG``, ...; ``array`` for arrays).
    reduction : int
        The file's pixels per pixel of `pixels` along each side: 1, or 2, 4, 8 when the
        photo was decoded reduced (`load`'s ``reduce``).
    """

    pixels: np.ndarray
    path: str | None = None
    capture_time: datetime | None = None
    orientation: int = 1
    colour_profile: str = "sRGB (assumed)"
    mm_per_px: float | None = None
    alpha: np.ndarray | None = field(default=None, repr=False)
    format: str = "array"
    reduction: int = 1
    _memo: dict = field(default_factory=dict, repr=False, init=False)
    _making: dict = field(default_factory=dict, repr=False, init=False)

    def __post_init__(self):
        # the pixels are not changed after loading: held read-only, which also lets their
        # halvings be shared (`photokit.imaging.filters.halved`); `load` gives it pixels of
        # its own, already read-only; a Photo made directly holds a read-only view (the
        # caller's array keeps its flags, and must not be changed while the Photo is used)
        if self.pixels.flags.writeable:
            self.pixels = self.pixels.view()
            self.pixels.flags.writeable = False

    def memo(self, key, make=None):
        """``make()`` once per photo and `key`: work that several stages of one job need
        (the face pass of `photokit.faces.search.face_pass`) is done once and shared, also
        between threads (a second thread asking for a `key` being made waits for it).
        Without `make`, what is kept under `key`, or None.

        Keys must say everything the result depends on besides the pixels (e.g. the
        scale); the pixels of a `Photo` are not changed after loading.
        """
        if key in self._memo or make is None:
            return self._memo.get(key)
        with _MEMO_LOCK:
            lock = self._making.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                self._memo[key] = make()
        return self._memo[key]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_making"] = {}        # locks do not pickle; none is held by a copy
        return state

    @property
    def name(self) -> str:
        """A short label: the file name, or ``<array>``."""
        return Path(self.path).name if self.path else "<array>"

    @property
    def is_colour(self) -> bool:
        """True for RGB photos; greyscale ones can be aligned but have no colour metrics."""
        return self.pixels.ndim == 3

    @property
    def has_colour(self) -> bool:
        """Whether the photo shows any colour: False for greyscale photos and for RGB ones
        whose pixels are all grey (a black-and-white photo saved as RGB: no more than
        `GREY_SHARE` of the pixels, read one in `grey_step` along each side, has channels
        more than `GREY_SPREAD` 8-bit codes apart). Such a photo can be aligned and its
        faces found, but it has no colour to measure: its a* would read 0 and its ITA
        that of a pale grey."""
        if not self.is_colour:
            return False

        def make():
            px = self.pixels
            step = grey_step(px.shape)
            r, g, b = cv2.split(np.ascontiguousarray(px[::step, ::step]))
            spread = cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))
            limit = GREY_SPREAD * (257 if px.dtype == np.uint16 else 1)
            return cv2.countNonZero((spread > limit).view(np.uint8)) > GREY_SHARE * spread.size
        return self.memo("has_colour", make)

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def rgb8(self) -> np.ndarray:
        """The pixels as ``uint8`` RGB (greyscale replicated to three channels)."""
        px = self.pixels
        if px.dtype == np.uint16:
            px = (px >> 8).astype(np.uint8)
        if px.ndim == 2:
            px = np.repeat(px[:, :, None], 3, axis=2)
        return px

    def gray8(self) -> np.ndarray:
        """The pixels as ``uint8`` luma (Rec. 601 weights, as OpenCV); made once per
        photo and read-only (copy it to draw on it)."""
        def make():
            px = self.rgb8() if self.pixels.ndim == 3 else self.pixels
            if px.dtype == np.uint16:
                px = (px >> 8).astype(np.uint8)
            g = cv2.cvtColor(px, cv2.COLOR_RGB2GRAY) if px.ndim == 3 else px.copy()
            g.flags.writeable = False
            return g
        return self.memo("gray8", make)

    def float_rgb(self) -> np.ndarray:
        """sRGB-encoded ``float32`` in ``[0, 1]``; raises for greyscale photos."""
        if not self.is_colour:
            raise PhotokitError("photo is greyscale: it has no colour to measure", self.path)
        scale = 65535.0 if self.pixels.dtype == np.uint16 else 255.0
        return self.pixels.astype(np.float32) * np.float32(1.0 / scale)

    def to_dict(self) -> dict:
        return {
            "path": self.path, "width": self.width, "height": self.height,
            "channels": 3 if self.is_colour else 1, "bit_depth": self.bit_depth,
            "format": self.format, "orientation_applied": self.orientation,
            "colour_profile": self.colour_profile,
            "capture_time": self.capture_time.isoformat() if self.capture_time else None,
            "mm_per_px": self.mm_per_px, "has_alpha": self.alpha is not None,
            "reduction": self.reduction,
        }


def _max_pixels(max_pixels: int | None) -> int:
    if max_pixels is not None:
        return int(max_pixels)
    env = os.environ.get("PHOTOKIT_MAX_PIXELS")
    return int(env) if env else DEFAULT_MAX_PIXELS


def parse_exif_time(exif: Image.Exif) -> datetime | None:
    """The capture time in EXIF (DateTimeOriginal, else DateTime), or None."""
    sub = exif.get_ifd(_EXIF_IFD)
    raw = sub.get(_TAG_DATETIME_ORIGINAL) or exif.get(_TAG_DATETIME)
    if not raw:
        return None
    try:
        t = datetime.strptime(str(raw).strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    subsec = str(sub.get(_TAG_SUBSEC_ORIGINAL) or "").strip("\x00 ")
    if subsec.isdigit():
        t = t.replace(microsecond=int(subsec[:6].ljust(6, "0")))
    offset = str(sub.get(_TAG_OFFSET_ORIGINAL) or "").strip("\x00 ")
    if len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        t = t.replace(tzinfo=timezone(sign * delta))
    return t


def p3_to_srgb(pixels: np.ndarray) -> np.ndarray:
    """Display P3 (P3 primaries, D65, sRGB transfer curve) to sRGB, relative colorimetric.

    Notes
    -----
    Decode the sRGB transfer curve (IEC 61966-2-1), convert linear RGB with
    ``M = M_sRGB^-1 @ M_P3`` (both RGB-to-XYZ matrices for D65, SMPTE EG 432-1 and
    ITU-R BT.709 primaries), clip to the sRGB gamut and encode again.
    """
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    v = pixels.astype(np.float64) / scale
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    out = np.clip(lin @ P3_TO_SRGB.T, 0.0, 1.0)
    enc = np.where(out <= 0.0031308, out * 12.92, 1.055 * out ** (1 / 2.4) - 0.055)
    return np.clip(np.round(enc * scale), 0, scale).astype(pixels.dtype)


def _to_srgb(pixels: np.ndarray, icc: bytes | str | None, path) -> tuple[np.ndarray, str]:
    """Convert pixels tagged with an ICC profile to sRGB (8-bit exactly, 16-bit via a LUT)."""
    if not icc or pixels.ndim != 3:
        return pixels, "sRGB (assumed)"
    if isinstance(icc, str):  # a colour description without ICC (HEIF nclx): Display P3
        return p3_to_srgb(pixels), f"{icc} -> sRGB"
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        desc = (ImageCms.getProfileDescription(src) or "embedded profile").strip()
    except (OSError, ImageCms.PyCMSError) as exc:
        warnings.warn(f"{path}: unreadable ICC profile ignored ({exc})", stacklevel=3)
        return pixels, "sRGB (assumed)"
    if "srgb" in desc.lower().replace(" ", ""):
        return pixels, "sRGB"
    dst = ImageCms.createProfile("sRGB")
    transform = ImageCms.buildTransform(src, dst, "RGB", "RGB",
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    if pixels.dtype == np.uint8:
        out = np.asarray(ImageCms.applyTransform(Image.fromarray(pixels), transform))
        return out, f"{desc} -> sRGB"
    # 16-bit: lcms through Pillow is 8-bit only, so map a 33^3 lattice and interpolate.
    from scipy.interpolate import RegularGridInterpolator

    n = 33
    grid = np.round(np.linspace(0, 255, n)).astype(np.uint8)
    lattice = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(1, -1, 3)
    mapped = np.asarray(ImageCms.applyTransform(Image.fromarray(lattice), transform))
    lut = mapped.reshape(n, n, n, 3).astype(np.float32) * (65535.0 / 255.0)
    axes = (grid.astype(np.float32) * (65535.0 / 255.0),) * 3
    interp = RegularGridInterpolator(axes, lut)
    flat = interp(pixels.reshape(-1, 3).astype(np.float32))
    out = np.clip(np.round(flat), 0, 65535).astype(np.uint16).reshape(pixels.shape)
    return out, f"{desc} -> sRGB"


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    rot, flip = _ORIENT.get(orientation, (None, False))
    if flip:
        pixels = cv2.flip(pixels, 1)
    if rot is not None:
        pixels = cv2.rotate(pixels, rot)
    return pixels


def _from_array(source: np.ndarray, mm_per_px: float | None) -> Photo:
    arr = np.asarray(source)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise PhotokitError(f"array of shape {arr.shape} is not an image (H,W), (H,W,3) or (H,W,4)")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise PhotokitError("float image contains NaN or infinity")
        top = float(arr.max()) if arr.size else 0.0
        if top > FLOAT_TOP:   # (a resize's overshoot past 1 is clipped)
            raise PhotokitError(f"float image values reach {top:.4g}: floats must be in 0-1 "
                                "(divide by 255, or pass uint8)")
        arr = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    elif arr.dtype == np.bool_:
        raise PhotokitError("a bool array is a mask, not a photo (give it as roi=)")
    elif arr.dtype not in (np.uint8, np.uint16):
        raise PhotokitError(f"unsupported pixel type {arr.dtype} (use uint8, uint16 or float in 0-1)")
    alpha = None
    if arr.ndim == 3 and arr.shape[2] == 4:
        alpha = arr[:, :, 3] > 0
        arr = arr[:, :, :3]
    _check_size(arr.shape[1], arr.shape[0], None, None)
    # photokit's own copy: the caller may change their array after loading, a Photo's
    # pixels do not change (their halvings are shared: `photokit.imaging.filters.halved`)
    shared = np.may_share_memory(arr, source)
    own = np.array(arr, order="C", copy=True) if shared else np.ascontiguousarray(arr)
    own.flags.writeable = False
    return Photo(own, alpha=alpha, mm_per_px=mm_per_px)


def _check_size(w: int, h: int, path, max_pixels: int | None) -> None:
    if min(w, h) < MIN_SIDE:
        raise PhotokitError(f"image is only {w}x{h} pixels; photokit needs at least "
                            f"{MIN_SIDE}x{MIN_SIDE}", path)
    limit = _max_pixels(max_pixels)
    if w * h > limit:
        raise PhotokitError(f"image is {w}x{h} = {w * h / 1e6:.0f} MP, above the limit of "
                            f"{limit / 1e6:.0f} MP (decompression-bomb guard; raise it with "
                            f"--max-pixels or PHOTOKIT_MAX_PIXELS)", path)


def _register_heif() -> bool:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


_NATIVE_LOCK = threading.Lock()
_log = logging.getLogger(__name__)


class _Quiet:
    """The process-wide state of `quiet_native`: fd 2 redirected into one sink while at
    least one decode is inside the block (``depth``), restored by the last one out."""

    depth = 0
    saved_fd: int | None = None
    sink = None
    warn = None
    pil_level = logging.NOTSET
    paths: list = []


@contextlib.contextmanager
def quiet_native(path=None):
    """Capture what native decoders print on file descriptor 2 while decoding.

    libpng, libtiff, libjpeg and OpenCV write their own warnings and errors straight to
    the process's stderr (fd 2), beside photokit's one-line error. Inside this block fd 2
    points at a temporary file (and Python warnings of the decoders are ignored); what
    was captured goes to the debug log (``-v``), and so do Pillow's own log records.
    `path` only names the source in that log (a path, or a file object's type).
    Redirecting fd 2 affects the whole process, so decodes in threads share it: the
    first thread in redirects, the last one out restores fd 2 (and the warning filters
    and Pillow's log level) and logs what was captured under the paths decoded
    meanwhile. The decodes themselves run side by side (the decoders release the GIL).
    """
    pil_log = logging.getLogger("PIL")
    q = _Quiet
    label = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else (
        "image" if path is None else type(path).__name__)
    with _NATIVE_LOCK:
        if q.depth == 0:
            sys.stderr.flush()
            sink = tempfile.TemporaryFile()
            saved = os.dup(2)
            q.pil_level = pil_log.level
            q.warn = warnings.catch_warnings()
            q.warn.__enter__()
            # only the decoders' own warnings (and those Pillow, called here, attributes to
            # this module): another thread's (photokit's, a caller's) still show meanwhile
            warnings.filterwarnings("ignore", module=r"(PIL|pillow_heif|photokit\.io\.photo)(\.|$)")
            pil_log.setLevel(logging.CRITICAL + 1)
            os.dup2(sink.fileno(), 2)
            q.sink, q.saved_fd, q.paths = sink, saved, []
        q.depth += 1
        q.paths.append(label)
    try:
        yield
    finally:
        with _NATIVE_LOCK:
            q.depth -= 1
            if q.depth == 0:
                q.warn.__exit__(None, None, None)
                pil_log.setLevel(q.pil_level)
                os.dup2(q.saved_fd, 2)
                os.close(q.saved_fd)
                q.sink.seek(0)
                text = q.sink.read().decode("utf-8", "replace").strip()
                q.sink.close()
                if text:
                    _log.debug("%s: decoder said: %s", ", ".join(q.paths), " | ".join(text.splitlines()))


def load(source, *, max_pixels: int | None = None, mm_per_px: float | None = None,
         reduce: int = 1) -> Photo:
    """Load a photo from a path, an array or a `Photo`.

    Parameters
    ----------
    source : str, os.PathLike, ndarray or Photo
        A file (JPEG, PNG, TIFF, WebP, BMP, HEIC/HEIF), an RGB(A)
        or greyscale array (``uint8``, ``uint16`` or float in ``[0, 1]``), or a `Photo`
        (returned as it is, with `mm_per_px` filled in if given).
    max_pixels : int, optional
        Refuse images larger than this many pixels (default `DEFAULT_MAX_PIXELS`).
    mm_per_px : float, optional
        Known physical scale of the photo (of the file's pixels).
    reduce : {1, 2, 4, 8}
        Decode a file at 1/`reduce` of its size on each side: JPEG by DCT scaling (the
        decoder computes only the coarse frequencies, about 2x faster at 1/2), other
        formats by area averaging after the decode. `Photo.mm_per_px` is then the reduced
        pixels' scale and `Photo.reduction` says by how much. Arrays and photos are not
        reduced.

    Returns
    -------
    Photo

    Raises
    ------
    PhotokitError
        For anything that cannot be read as a photo, naming the file and the cause.

    Notes
    -----
    EXIF orientation is applied, and an embedded ICC profile other than sRGB (Display P3
    on many phones, Adobe RGB) is converted to sRGB with LittleCMS (relative colorimetric);
    so is a HEIF whose ``nclx`` box says Display P3 (`p3_to_srgb`). Native decoders'
    own messages are captured (`quiet_native`), so a refusal is one line.
    JPEG and WebP are decoded strictly, so a truncated file is an error, not a grey band.
    16-bit PNG and TIFF keep their depth.
    """
    if isinstance(source, Photo):
        if mm_per_px is not None:
            source.mm_per_px = mm_per_px
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source, mm_per_px)
    if not isinstance(source, (str, os.PathLike)):
        raise PhotokitError(f"cannot load a {type(source).__name__} as a photo")
    path = os.fspath(source)
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise PhotokitError("is a directory, not a photo", path) from None
    except OSError as exc:
        raise PhotokitError(f"cannot read file ({exc.strerror or exc})", path) from None
    if not data:
        raise PhotokitError("file is empty", path)
    if Path(path).suffix.lower() in (".heic", ".heif") and not _register_heif():
        raise PhotokitError("HEIC/HEIF needs pillow-heif: pip install pillow-heif", path)

    Image.MAX_IMAGE_PIXELS = None  # our own limit below applies, with a clearer message
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, not {reduce!r}")
    with quiet_native(path):
        px, meta = _decode(data, path, max_pixels, reduce)
    capture_time, orientation, icc, fmt = meta
    if px.dtype not in (np.uint8, np.uint16):
        if px.dtype == np.float32 or px.dtype == np.float64:
            px = np.clip(np.round(px * 65535.0), 0, 65535).astype(np.uint16)
        else:
            raise PhotokitError(f"unsupported pixel type {px.dtype}", path)
    alpha = None
    if px.ndim == 3 and px.shape[2] == 4:
        alpha = px[:, :, 3] > 0
        px = px[:, :, :3]
    elif px.ndim == 3 and px.shape[2] == 2:  # grey + alpha
        alpha = px[:, :, 1] > 0
        px = px[:, :, 0]
    px, profile = _to_srgb(np.ascontiguousarray(px), icc, path)
    if mm_per_px is not None and reduce > 1:
        mm_per_px = mm_per_px * reduce
    px.flags.writeable = False   # decoded here: nobody else holds it
    return Photo(px, path=path, capture_time=capture_time, orientation=orientation,
                 colour_profile=profile, mm_per_px=mm_per_px, alpha=alpha, format=fmt,
                 reduction=reduce)


def load_all(sources, **kwargs) -> list[Photo]:
    """`load` several photos side by side, one thread each (the decoders release the GIL,
    and `quiet_native` lets their decodes overlap): a pair of 12 MP JPEGs in about the
    time of one on two cores. `kwargs` go to each `load`.

    Returns
    -------
    list of Photo
        In the order of `sources`.

    Raises
    ------
    PhotokitError
        The first source's error in their order, when any cannot be loaded.
    """
    sources = list(sources)
    if sum(isinstance(s, (str, os.PathLike)) for s in sources) < 2:
        return [load(s, **kwargs) for s in sources]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(len(sources), os.cpu_count() or 1)) as pool:
        jobs = [pool.submit(load, s, **kwargs) for s in sources]
    return [j.result() for j in jobs]


def probe(path) -> tuple[int, int]:
    """``(width, height)`` of an image file as stored (before EXIF orientation), from its
    header alone; raises `PhotokitError` like `load` for what is not an image."""
    Image.MAX_IMAGE_PIXELS = None  # `load`'s own limit applies to the pixels, with a clearer message
    try:
        with quiet_native(path), Image.open(path) as im:
            return int(im.width), int(im.height)
    except UnidentifiedImageError:
        raise PhotokitError(NOT_AN_IMAGE, os.fspath(path)) from None
    except Exception as exc:  # Pillow raises many types for garbage
        raise PhotokitError(f"not a readable image ({_short(exc)})", os.fspath(path)) from None


def _decode(data: bytes, path: str, max_pixels: int | None, reduce: int = 1):
    """Decode file bytes at 1/`reduce`: pixels upright, and (capture time, orientation,
    ICC, format)."""
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise PhotokitError(NOT_AN_IMAGE, path) from None
    except Exception as exc:  # Pillow raises many types for garbage
        raise PhotokitError(f"not a readable image ({_short(exc)})", path) from None
    _check_size(im.width, im.height, path, max_pixels)
    try:
        exif = im.getexif()
    except Exception:  # a broken EXIF block should not stop the pixels
        exif = Image.Exif()
    orientation = int(exif.get(_TAG_ORIENTATION, 1) or 1)
    orientation = orientation if orientation in _ORIENT else 1
    icc = im.info.get("icc_profile")
    fmt = im.format or "unknown"
    capture_time = parse_exif_time(exif)
    if fmt == "HEIF":
        # pillow-heif applies the orientation itself (EXIF then says 1): report the original
        orientation = int(im.info.get("original_orientation") or orientation)
        orientation = orientation if orientation in _ORIENT else 1
        nclx = im.info.get("nclx_profile") or {}
        p3 = (nclx.get("color_primaries"), nclx.get("transfer_characteristics")) == (NCLX_P3, NCLX_SRGB)
        if not icc and p3:
            icc = "Display P3 (nclx)"

    try:
        if fmt in ("PNG", "TIFF"):
            if fmt == "PNG":
                # chunk lengths and CRCs first: OpenCV can spend many seconds on a PNG whose
                # IDAT length is corrupt, where this check takes microseconds
                Image.open(io.BytesIO(data)).verify()
            # OpenCV keeps 16 bits per channel, which Pillow cannot for RGB.
            buf = np.frombuffer(data, np.uint8)
            px = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
            if px is None:
                raise ValueError("decoder failed")
            if px.ndim == 3:
                px = cv2.cvtColor(px, cv2.COLOR_BGRA2RGBA if px.shape[2] == 4 else cv2.COLOR_BGR2RGB)
            px = _orient(px, orientation)
        elif fmt == "JPEG" and im.mode in ("RGB", "L"):
            # libjpeg-turbo through OpenCV writes straight into the array: about half
            # Pillow's time (no decoder-buffer copy, no EXIF-transpose copy); orientation
            # is applied below as for PNG, so OpenCV's own must be off
            colour = cv2.IMREAD_COLOR_RGB if im.mode == "RGB" else cv2.IMREAD_GRAYSCALE
            flag = colour | _JPEG_SCALING[reduce] | cv2.IMREAD_IGNORE_ORIENTATION
            px = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
            if px is None or px.shape[:2] != (-(-im.height // reduce), -(-im.width // reduce)):
                raise ValueError("decoder failed")
            px = _orient(px, orientation)
            reduce = 1
        else:
            im.load()
            im = ImageOps.exif_transpose(im)
            px = _pil_to_array(im)
    except PhotokitError:
        raise
    except Exception as exc:
        raise PhotokitError(f"image data is corrupt or truncated ({_short(exc)})", path) from None
    if reduce > 1:   # the size a JPEG decoder's DCT scaling gives (rounded up)
        h, w = px.shape[:2]
        px = cv2.resize(px, (-(-w // reduce), -(-h // reduce)), interpolation=cv2.INTER_AREA)

    return px, (capture_time, orientation, icc, fmt)


def _pil_to_array(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("RGB", "L", "RGBA", "LA"):
        return np.asarray(im)
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(im).astype(np.uint16)
    if mode == "P" or mode == "PA":
        return np.asarray(im.convert("RGBA" if "transparency" in im.info or mode == "PA" else "RGB"))
    if mode == "1":
        return np.asarray(im.convert("L"))
    if mode == "CMYK":
        return np.asarray(im.convert("RGB"))
    if mode == "I":
        return np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
    return np.asarray(im.convert("RGB"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
