"""Loading: formats, bit depths, alpha, EXIF orientation, ICC conversion, broken inputs."""

from __future__ import annotations

import io
import os
import struct
import zlib
from datetime import datetime

import cv2
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from PIL import Image, ImageCms, ImageOps

from photokit import PhotokitError, load


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_jpeg_rgb_roundtrip(tmp_path, astronaut):
    p = _save(Image.fromarray(astronaut), tmp_path / "a.jpg", quality=95)
    ph = load(p)
    assert ph.pixels.shape == astronaut.shape and ph.pixels.dtype == np.uint8
    assert ph.is_colour and ph.format == "JPEG" and ph.path == str(p)
    assert np.abs(ph.pixels.astype(int) - astronaut).mean() < 3  # JPEG loss only


@pytest.mark.parametrize("ext", [".png", ".tif", ".webp", ".bmp"])
def test_lossless_formats_exact(tmp_path, astronaut, ext):
    kw = {"lossless": True} if ext == ".webp" else {}
    p = _save(Image.fromarray(astronaut), tmp_path / f"a{ext}", **kw)
    ph = load(p)
    assert_array_equal(ph.pixels, astronaut)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_kept(tmp_path, astronaut, ext):
    arr16 = astronaut.astype(np.uint16) * 257
    p = tmp_path / f"a16{ext}"
    assert cv2.imwrite(str(p), cv2.cvtColor(arr16, cv2.COLOR_RGB2BGR))
    ph = load(p)
    assert ph.pixels.dtype == np.uint16 and ph.bit_depth == 16
    assert_array_equal(ph.pixels, arr16)
    assert_array_equal(ph.rgb8(), astronaut)


def test_rgba_alpha_becomes_mask(tmp_path, astronaut):
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    rgba[:100, :, 3] = 0
    p = _save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png")
    ph = load(p)
    assert ph.pixels.shape == astronaut.shape
    assert ph.alpha is not None and not ph.alpha[:100].any() and ph.alpha[100:].all()


def test_greyscale_is_loaded_but_has_no_colour(tmp_path, astronaut):
    g = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    ph = load(_save(Image.fromarray(g), tmp_path / "g.png"))
    assert not ph.is_colour and ph.pixels.ndim == 2
    with pytest.raises(PhotokitError, match="greyscale"):
        ph.float_rgb()


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_applied(tmp_path, orientation):
    # an upright image with a marker top-left, stored rotated with the EXIF tag telling so
    up = np.zeros((120, 80, 3), np.uint8)
    up[:20, :20] = (255, 0, 0)
    stored = {3: np.rot90(up, 2), 6: np.rot90(up, 1), 8: np.rot90(up, -1)}[orientation]
    im = Image.fromarray(np.ascontiguousarray(stored))
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = _save(im, tmp_path / "r.jpg", exif=exif, quality=98)
    ph = load(p)
    assert ph.pixels.shape[:2] == (120, 80) and ph.orientation == orientation
    assert ph.pixels[5:15, 5:15, 0].mean() > 200 and ph.pixels[-15:-5, -15:-5, 0].mean() < 50


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_jpeg_orientation_matches_pillow(tmp_path, astronaut, orientation, mode):
    # JPEG is decoded by OpenCV and turned upright by photokit: every EXIF orientation
    # (mirrored ones too) must give what Pillow's reference exif_transpose gives
    im = Image.fromarray(np.ascontiguousarray(astronaut[:200, 40:340])).convert(mode)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = _save(im, tmp_path / "o.jpg", exif=exif, quality=95)
    ref = np.asarray(ImageOps.exif_transpose(Image.open(p)))
    ph = load(p)
    assert ph.pixels.shape == ref.shape and ph.orientation == orientation
    assert np.abs(ph.pixels.astype(int) - ref).mean() < 1.0   # two libjpeg builds: IDCT rounding only


def test_exif_capture_time(tmp_path, astronaut):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2026:03:14 09:26:53"
    exif.get_ifd(0x8769)[0x9011] = "+02:00"
    p = _save(Image.fromarray(astronaut), tmp_path / "t.jpg", exif=exif)
    t = load(p).capture_time
    assert t.replace(tzinfo=None) == datetime(2026, 3, 14, 9, 26, 53)
    assert t.utcoffset().total_seconds() == 7200


def _xy_to_matrix(primaries, white_xy):
    """RGB -> XYZ matrix for chromaticities (x, y) of R, G, B and the white point."""
    def xyz(x, y):
        return np.array([x / y, 1.0, (1 - x - y) / y])
    m = np.stack([xyz(*p) for p in primaries], axis=1)
    return m * np.linalg.solve(m, xyz(*white_xy))


P3_PRIMARIES = [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)]
D65_XY = (0.3127, 0.3290)
D50_XYZ = np.array([0.96422, 1.0, 0.82521])
GAMMA = 2.2


def _icc_matrix_trc(name: str, rgb_to_xyz_d50: np.ndarray, gamma: float) -> bytes:
    """A minimal ICC v2 RGB matrix/TRC display profile, written by hand."""
    import struct as st

    def s15(v):
        return st.pack(">i", int(round(v * 65536)))

    def xyz_tag(v):
        return b"XYZ " + b"\0" * 4 + b"".join(s15(c) for c in v)

    def desc_tag(text):
        a = text.encode() + b"\0"
        return b"desc" + b"\0" * 4 + st.pack(">I", len(a)) + a + b"\0" * 8 + b"\0" * 3 + b"\0" * 67

    curv = b"curv" + b"\0" * 4 + st.pack(">I", 1) + st.pack(">H", int(round(gamma * 256))) + b"\0\0"
    tags = [(b"desc", desc_tag(name)), (b"wtpt", xyz_tag(D50_XYZ)),
            (b"rXYZ", xyz_tag(rgb_to_xyz_d50[:, 0])), (b"gXYZ", xyz_tag(rgb_to_xyz_d50[:, 1])),
            (b"bXYZ", xyz_tag(rgb_to_xyz_d50[:, 2])), (b"rTRC", curv), (b"gTRC", curv),
            (b"bTRC", curv), (b"cprt", b"text" + b"\0" * 4 + b"none\0\0\0\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + st.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (st.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
              + b"\0" * 12 + b"acsp" + b"\0" * 24 + st.pack(">I", 0)
              + b"".join(s15(c) for c in D50_XYZ) + b"\0" * 48)
    assert len(header) == 128
    return header + st.pack(">I", len(tags)) + table + data


def _p3_profile() -> tuple[bytes, np.ndarray]:
    from photokit.colour.colorchecker import bradford

    d65 = np.array([0.95047, 1.0, 1.08883])
    m_p3 = bradford(d65, D50_XYZ) @ _xy_to_matrix(P3_PRIMARIES, D65_XY)
    return _icc_matrix_trc("Display P3 (test)", m_p3, GAMMA), m_p3


def _expected_srgb(p3_pixel: np.ndarray, m_p3: np.ndarray) -> np.ndarray:
    from photokit.colour.colorchecker import bradford
    from photokit.colour.convert import SRGB_TO_XYZ, linear_to_srgb

    d65 = np.array([0.95047, 1.0, 1.08883])
    m_srgb = bradford(d65, D50_XYZ) @ SRGB_TO_XYZ
    lin = np.linalg.solve(m_srgb, m_p3 @ ((p3_pixel / 255.0) ** GAMMA))
    return linear_to_srgb(lin.astype(np.float32)) * 255


@pytest.mark.parametrize("depth", [8, 16])
def test_wide_gamut_profile_converted_to_srgb(tmp_path, depth):
    icc, m_p3 = _p3_profile()
    colour = np.array([180.0, 120.0, 60.0])  # an in-gamut skin-like tone
    if depth == 8:
        arr = np.tile(colour.astype(np.uint8), (64, 64, 1))
        p = _save(Image.fromarray(arr), tmp_path / "p3.png", icc_profile=icc)
        ph = load(p)
        got = ph.pixels[0, 0].astype(float)
    else:
        arr = np.tile((colour * 257).astype(np.uint16), (64, 64, 1))
        p = tmp_path / "p3_16.png"
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(p, icc_profile=icc)  # carrier
        # write 16-bit pixels with OpenCV, then splice the ICC chunk from the carrier
        ok, buf = cv2.imencode(".png", cv2.cvtColor(arr, cv2.COLOR_RGB2BGR))
        assert ok
        carrier = p.read_bytes()
        i = carrier.find(b"iCCP") - 4
        n = int.from_bytes(carrier[i:i + 4], "big") + 12
        png = buf.tobytes()
        p.write_bytes(png[:33] + carrier[i:i + n] + png[33:])  # after IHDR
        ph = load(p)
        assert ph.pixels.dtype == np.uint16
        got = ph.pixels[0, 0].astype(float) / 257
    assert "Display P3 (test) -> sRGB" == ph.colour_profile
    want = _expected_srgb(colour, m_p3)
    assert np.abs(got - want).max() <= 2.5, (got, want)
    assert np.abs(got - colour).max() > 8  # the conversion did something


def test_srgb_profile_left_alone(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    arr = np.full((64, 64, 3), (200, 60, 40), np.uint8)
    ph = load(_save(Image.fromarray(arr), tmp_path / "s.png", icc_profile=icc))
    assert ph.colour_profile == "sRGB"
    assert_array_equal(ph.pixels, arr)


def test_array_inputs(astronaut):
    assert_array_equal(load(astronaut).pixels, astronaut)
    f = astronaut.astype(np.float32) / 255
    assert np.abs(load(f).pixels.astype(int) - astronaut).max() <= 1
    ph = load(astronaut)
    assert load(ph) is ph
    # a photo's pixels are read-only and its own: the caller's array is left writeable, and
    # changing it later does not change the photo
    assert not ph.pixels.flags.writeable and astronaut.flags.writeable
    with pytest.raises(ValueError):
        ph.pixels[0, 0] = 0
    mine = astronaut.copy()
    ph = load(mine)
    mine[:] = 0
    assert_array_equal(ph.pixels, astronaut)
    # floats a little past 1 (a resize's overshoot) are clipped; 0-255 floats are refused
    assert load(np.clip(astronaut / 255.0 * 1.01, 0, 1.01)).pixels.max() == 255
    with pytest.raises(PhotokitError, match="floats must be in 0-1"):
        load(astronaut.astype(np.float32))


# ---------------------------------------------------------------- broken inputs

def _bomb_png(path, w=24000, h=24000):
    """A valid 1-bit greyscale PNG of w x h pixels (small on disk, huge decoded)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + b"\x00" * ((w + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
           + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    path.write_bytes(png)
    return path


def broken_inputs(tmp_path, astronaut):
    good = io.BytesIO()
    Image.fromarray(astronaut).save(good, "JPEG", quality=90)
    cases = {
        "empty.jpg": b"",
        "truncated.jpg": good.getvalue()[: len(good.getvalue()) // 2],
        "text.jpg": b"this is not a photo\n" * 20,
        "random.png": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    }
    paths = {}
    for name, data in cases.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
    paths["tiny.png"] = tiny
    paths["bomb.png"] = _bomb_png(tmp_path / "bomb.png")
    return paths


EXPECTED_CAUSE = {
    "empty.jpg": "empty",
    "truncated.jpg": "truncated",
    "text.jpg": "not a recognised image",
    "random.png": "not a recognised image",
    "tiny.png": "1x1",
    "bomb.png": "limit",
}


@pytest.mark.parametrize("name", list(EXPECTED_CAUSE))
def test_broken_inputs_raise_one_clear_error(tmp_path, astronaut, name):
    paths = broken_inputs(tmp_path, astronaut)
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in paths.values()}
    with pytest.raises(PhotokitError) as exc:
        load(paths[name])
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(paths[name]))
    assert EXPECTED_CAUSE[name] in msg
    assert before == {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in paths.values()}


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(PhotokitError, match="cannot read"):
        load(tmp_path / "nope.jpg")
    with pytest.raises(PhotokitError, match="directory"):
        load(tmp_path)


def test_pixel_limit_is_configurable(tmp_path, astronaut, monkeypatch):
    p = _save(Image.fromarray(astronaut), tmp_path / "a.png")
    with pytest.raises(PhotokitError, match="limit"):
        load(p, max_pixels=1000)
    monkeypatch.setenv("PHOTOKIT_MAX_PIXELS", "1000")
    with pytest.raises(PhotokitError, match="limit"):
        load(p)
    monkeypatch.delenv("PHOTOKIT_MAX_PIXELS")
    assert load(p).width == 512
    assert os.path.exists(p)


def test_heic_without_extra(tmp_path, astronaut):
    """pillow-heif is a regular dependency: HEIC loads with no extra and no registration."""
    p = tmp_path / "a.heic"
    import pillow_heif

    pillow_heif.from_pillow(Image.fromarray(astronaut)).save(p, quality=90)
    ph = load(p)
    assert ph.format == "HEIF" and ph.pixels.shape == astronaut.shape
    assert np.abs(ph.pixels.astype(int) - astronaut).mean() < 4


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_heic_orientation_and_capture_time(tmp_path, orientation):
    import pillow_heif

    pillow_heif.register_heif_opener()
    arr = np.zeros((64, 96, 3), np.uint8)
    arr[:, :48] = (220, 40, 40)  # left half red, right half blue
    arr[:, 48:] = (40, 40, 220)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x0132] = "2024:05:06 07:08:09"
    p = tmp_path / f"o{orientation}.heic"
    Image.fromarray(arr).save(p, exif=exif.tobytes(), quality=95)
    ph = load(p)
    want = {3: cv2.rotate(arr, cv2.ROTATE_180), 6: cv2.rotate(arr, cv2.ROTATE_90_CLOCKWISE),
            8: cv2.rotate(arr, cv2.ROTATE_90_COUNTERCLOCKWISE)}[orientation]
    assert ph.pixels.shape == want.shape
    assert np.abs(ph.pixels.astype(int) - want).mean() < 6
    assert ph.orientation == orientation
    assert ph.capture_time == datetime(2024, 5, 6, 7, 8, 9)


def test_heic_display_p3_converted(tmp_path):
    import pillow_heif

    pillow_heif.register_heif_opener()
    icc, m_p3 = _p3_profile()
    colour = np.array([180.0, 120.0, 60.0])
    p = tmp_path / "p3.heic"
    Image.fromarray(np.tile(colour.astype(np.uint8), (64, 64, 1))).save(p, icc_profile=icc, quality=100)
    ph = load(p)
    assert ph.colour_profile == "Display P3 (test) -> sRGB"
    want = _expected_srgb(colour, m_p3)
    assert np.abs(ph.pixels[32, 32].astype(float) - want).max() <= 4


def test_p3_to_srgb_matches_colour_science():
    colour = pytest.importorskip("colour")
    from photokit.io.photo import p3_to_srgb

    x = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    ref = colour.RGB_to_RGB(x / 255.0, "Display P3", "sRGB", apply_cctf_decoding=True,
                            apply_cctf_encoding=True)
    ref = np.round(np.clip(ref, 0, 1) * 255)
    assert np.abs(p3_to_srgb(x).astype(int) - ref).max() <= 1


def _corrupt(tmp_path, ext: str) -> list:
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, img)
    good = bytearray(buf.tobytes())
    crc = bytearray(good)
    crc[100:110] = b"\0" * 10  # an IDAT CRC error for PNG, strip garbage for TIFF
    paths = []
    for k, data in enumerate([crc, good[: len(good) // 2], good[: len(good) // 3]]):
        p = tmp_path / f"bad{k}{ext}"
        p.write_bytes(bytes(data))
        paths.append(p)
    return paths


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_native_decoder_noise_is_captured(tmp_path, capfd, ext):
    """libpng/libtiff/OpenCV print on fd 2: nothing of theirs reaches stderr."""
    for p in _corrupt(tmp_path, ext):
        try:
            load(p)
        except PhotokitError as exc:
            assert "\n" not in str(exc)
    out, err = capfd.readouterr()
    assert err == "" and out == ""


def test_native_noise_capture_restores_stderr(capfd):
    from photokit.io.photo import quiet_native

    with quiet_native():
        os.write(2, b"libpng error: hidden\n")
    os.write(2, b"visible\n")
    assert capfd.readouterr().err == "visible\n"


def test_native_capture_of_a_file_object_restores_stderr(capfd):
    """`probe` of an open file (no path to name): fd 2, warnings and Pillow's log level
    come back as they were."""
    import io
    import logging
    import warnings

    from photokit.io.photo import probe

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, "PNG")
    buf.seek(0)
    level = logging.getLogger("PIL").level
    assert probe(buf) == (8, 8)
    os.write(2, b"visible\n")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        warnings.warn("after the probe", stacklevel=1)
    assert capfd.readouterr().err == "visible\n" and len(seen) == 1
    assert logging.getLogger("PIL").level == level


def test_warnings_of_other_code_show_during_a_decode():
    """While a decode holds the capture (another thread's, in `load_all`), only the
    decoders' own warnings are ignored: photokit's and the caller's still show."""
    import warnings

    from photokit.io.photo import quiet_native

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_native("another.jpg"):
            warnings.warn("unreadable ICC profile ignored", stacklevel=1)
            warnings.warn_explicit("decoder noise", UserWarning, "Image.py", 1, module="PIL.Image")
    assert [str(w.message) for w in seen] == ["unreadable ICC profile ignored"]


def test_cli_refusal_of_corrupt_png_is_one_line(tmp_path, capfd):
    from click.testing import CliRunner

    from photokit.cli.main import cli

    p = _corrupt(tmp_path, ".png")[0]
    r = CliRunner().invoke(cli, ["check", str(p)])
    out, err = capfd.readouterr()
    lines = [ln for ln in (r.stderr + err).splitlines() if ln.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("photokit: ")


def test_memo_makes_once_across_threads_and_pickles():
    """Stages on several threads asking for the same work of one photo (measure's jobs run
    on a pool) get one computation; a pickled photo keeps its results and none of its
    locks."""
    import pickle
    import threading
    import time

    p = load(np.zeros((40, 40, 3), np.uint8))
    calls = []

    def make():
        calls.append(1)
        time.sleep(0.1)
        return 42

    threads = [threading.Thread(target=p.memo, args=("k", make)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and p.memo("k") == 42 and p.memo("other") is None
    q = pickle.loads(pickle.dumps(p))
    assert q.memo("k") == 42 and q.memo("k", make) == 42 and calls == [1]


def test_probe_reads_the_size_of_a_photo_beyond_pillows_own_limit(tmp_path):
    """A header of 576 MP (beyond Pillow's 179 MP bomb guard) is a size, not an error:
    `load`'s own limit decides on the pixels (a series validates its photos by probe)."""
    from PIL import Image as PILImage

    from photokit.io.photo import probe

    p = _bomb_png(tmp_path / "big.png")
    old = PILImage.MAX_IMAGE_PIXELS
    PILImage.MAX_IMAGE_PIXELS = 89_478_485         # Pillow's default, as a fresh process has it
    try:
        assert probe(p) == (24000, 24000)
    finally:
        PILImage.MAX_IMAGE_PIXELS = old
