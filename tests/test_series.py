"""Series manifests, timelines, and the full series analysis on synthetic courses."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from PIL import Image

from photokit.errors import PhotokitError
from photokit.series import parse_date, read_folder, read_manifest, read_series, timeline


def _img(path, seed=0, exif_time=None):
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    if exif_time is None:
        im.save(path)
    else:
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = exif_time
        exif[0x0132] = exif_time
        im.save(path, exif=exif)


def _manifest(tmp_path, text):
    p = tmp_path / "manifest.csv"
    p.write_text(text)
    return p


def test_parse_date_forms():
    assert parse_date("2024-03-05") == (datetime(2024, 3, 5), True)
    assert parse_date("2024-03-05T14:30") == (datetime(2024, 3, 5, 14, 30), False)
    assert parse_date("2024-03-05T14:30:00+02:00")[0] == datetime(2024, 3, 5, 12, 30)
    for bad in ("05/03/2024", "2024-13-01", "yesterday", ""):
        with pytest.raises(ValueError):
            parse_date(bad)


def test_valid_manifest_sorted_with_timeline(tmp_path):
    for n in "abcd":
        _img(tmp_path / f"{n}.jpg")
    m = _manifest(tmp_path, "photo,date,kind,note\n"
                  "c.jpg,2024-01-03T12:00,visit,day 2\n"
                  "a.jpg,2024-01-01,baseline,\n"
                  "b.jpg,2024-01-01T12:00,treatment,session 1\n"
                  "d.jpg,2024-02-01,visit,<b>x</b>\n")
    entries = read_manifest(m)
    assert [e.photo for e in entries] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert entries[1].note == "session 1" and entries[3].note == "<b>x</b>"
    tl = timeline(entries)
    assert tl[0]["days_since_treatment"] is None
    assert tl[1]["days_since_treatment"] == 0.0
    assert tl[2]["days_since_treatment"] == pytest.approx(2.0)
    assert tl[3]["days_since_baseline"] == pytest.approx(31.0)


def test_broken_manifest_lists_every_problem(tmp_path):
    _img(tmp_path / "a.jpg")
    _img(tmp_path / "b.jpg")
    (tmp_path / "notimage.jpg").write_text("hello")
    m = _manifest(tmp_path, "photo,date,kind\n"
                  "a.jpg,2024-01-01,visit\n"
                  "missing.jpg,2024-01-02,visit\n"
                  "b.jpg,01/02/2024,visit\n"
                  "a.jpg,2024-01-05,visit\n"
                  "notimage.jpg,2024-01-06,visit\n"
                  "b.jpg,2024-01-07,sessionx\n")
    with pytest.raises(PhotokitError) as ei:
        read_manifest(m)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(m))
    for part in ("line 3: photo 'missing.jpg' not found", "line 4: bad date",
                 "line 5: duplicate photo 'a.jpg'", "line 6: photo 'notimage.jpg' is not a readable image",
                 "line 7: unknown kind 'sessionx'", "no baseline"):
        assert part in msg, part


@pytest.mark.parametrize("text,needle", [
    ("photo,when,kind\na.jpg,2024-01-01,baseline\n", "lacks column(s) date"),
    ("", "manifest is empty"),
    ("photo,date,kind\na.jpg,2024-01-01,baseline\nb.jpg,2024-01-02,baseline\n", "more than one baseline"),
    ("photo,date,kind\na.jpg,2024-01-05,baseline\nb.jpg,2024-01-02,treatment\n", "dated before the baseline"),
    ("photo,date,kind,subject\na.jpg,2024-01-01,baseline,p1\nb.jpg,2024-01-02,visit,p2\n", "mixes subjects"),
])
def test_manifest_level_problems(tmp_path, text, needle):
    _img(tmp_path / "a.jpg")
    _img(tmp_path / "b.jpg")
    with pytest.raises(PhotokitError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        read_manifest(_manifest(tmp_path, text))


def test_folder_ordered_by_exif_time(tmp_path):
    _img(tmp_path / "zz.jpg", exif_time="2024:01:01 09:00:00")
    _img(tmp_path / "aa_session1.jpg", exif_time="2024:01:02 10:00:00")
    _img(tmp_path / "mm.jpg", exif_time="2024:01:09 10:00:00")
    entries = read_folder(tmp_path)
    assert [(e.photo, e.kind) for e in entries] == [
        ("zz.jpg", "baseline"), ("aa_session1.jpg", "treatment"), ("mm.jpg", "visit")]
    _img(tmp_path / "noexif.jpg")
    with pytest.raises(PhotokitError, match="'noexif.jpg' has no EXIF capture time"):
        read_folder(tmp_path)


def test_list_input_and_errors(tmp_path):
    a = np.zeros((40, 40, 3), np.uint8)
    entries = read_series([(a, "2024-01-01", "baseline"), (a.copy(), "2024-01-03", "visit")])
    assert [e.kind for e in entries] == ["baseline", "visit"]
    with pytest.raises(PhotokitError, match="item 1: bad date.*item 2: unknown kind"):
        read_series([(a, "2024-01-01", "baseline"), (a, "nope", "visit"), (a, "2024-01-02", "x")])


def _warped(base, ang, sc, tx, ty):
    import cv2

    h, w = base.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, sc)
    m[:, 2] += (tx, ty)
    out = cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    H = np.vstack([m, [0, 0, 1]])  # maps base pixels -> warped pixels
    return out, H


def test_chained_alignment_composes_to_the_true_transform():
    from skimage import data

    from photokit.align import align
    from photokit.series import _chain

    base = data.astronaut()
    b, hb = _warped(base, 4.0, 1.04, 9, -6)
    c, hc = _warped(base, -5.0, 0.95, -12, 8)
    ab, bc = align(base, b), align(b, c)
    assert ab.ok and bc.ok
    chained = _chain(ab, bc)
    truth = np.linalg.inv(hc)  # c pixels -> base pixels
    corners = np.array([[0, 0, 1], [511, 0, 1], [0, 511, 1], [511, 511, 1]], float).T
    got = chained.homography @ corners
    want = truth @ corners
    err = np.abs(got[:2] / got[2] - want[:2] / want[2]).max()
    assert err < 2.0, err
    assert chained.ok and chained.confidence <= min(ab.confidence, bc.confidence) + 1e-9
