"""One reader for manifests and one rule for image files, shared by series and batch."""

from __future__ import annotations

import pytest

from photokit.batch.archive import iter_manifest
from photokit.errors import PhotokitError
from photokit.io.sources import csv_rows, image_files, is_image_name
from photokit.series.course import read_manifest


def test_rows_carry_the_file_own_line_numbers(tmp_path):
    m = tmp_path / "m.csv"
    m.write_text("\ufeffPhoto , Date,kind\n\na.jpg,2024-01-01,baseline\n  ,  ,  \nb.jpg,2024-02-01,visit\n")
    header, rows = csv_rows(m)
    assert header == ["photo", "date", "kind"]
    assert [(n, r["photo"]) for n, r in rows] == [(3, "a.jpg"), (5, "b.jpg")]


@pytest.mark.parametrize("content,cause", [(b"", "manifest is empty"), (b"\n \n", "manifest is empty"),
                                           (b"photo,date\n\xff\xfe\x00bad\n", "not UTF-8")])
def test_unreadable_manifests_say_why(tmp_path, content, cause):
    m = tmp_path / "m.csv"
    m.write_bytes(content)
    with pytest.raises(PhotokitError, match=cause):
        header, rows = csv_rows(m)
        list(rows)


def test_series_and_batch_name_the_same_line(tmp_path):
    """A blank line before a bad row: both readers name the file's own line (4)."""
    m = tmp_path / "m.csv"
    m.write_text("photo,date,kind,mm_per_px\na.jpg,2024-01-01,baseline,0.1\n\nb.jpg,notadate,visit,x\n")
    with pytest.raises(PhotokitError, match="line 4: bad date"):
        read_manifest(m, check_files=False)
    with pytest.raises(PhotokitError, match="line 4: mm_per_px='x' is not a number"):
        list(iter_manifest(m))


def test_image_files_one_rule(tmp_path):
    for name in ("a.JPG", "b.png", ".hidden.jpg", "._a.jpg", "notes.txt", "sub/c.tif", ".git/d.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.rsplit("/", 1)[-1] for p in image_files(tmp_path)] == ["a.JPG", "b.png", "c.tif"]
    assert [p.rsplit("/", 1)[-1] for p in image_files(tmp_path, recursive=False)] == ["a.JPG", "b.png"]
    assert is_image_name("x.heic") and not is_image_name(".x.heic")
