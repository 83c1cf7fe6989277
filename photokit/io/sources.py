"""Where inputs are listed: the image files of a folder and the rows of a CSV manifest.

One reader for both kinds of manifest (a series' ``photo,date,kind`` and a batch's
``photo[,mm_per_px,roi]``) and one rule for what counts as an image file, so that
``series`` and ``batch`` read the same file the same way.
"""

from __future__ import annotations

import csv
import os
import weakref
from collections.abc import Iterator
from pathlib import Path

from ..errors import PhotokitError
from .photo import IMAGE_EXTENSIONS


def is_image_name(name: str) -> bool:
    """Whether a file name has one of photokit's image extensions (case-insensitive) and
    is not hidden (``.name``; this also skips macOS ``._name.jpg`` resource forks)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def image_files(root: str | os.PathLike, *, recursive: bool = True) -> Iterator[str]:
    """Image files under `root` in a stable (sorted) order, streamed.

    Hidden files and folders are skipped; symbolic links to files are listed, links to
    folders are not followed (no cycles). Without `recursive`, only `root`'s own files.
    """
    root = os.path.abspath(root)
    for dirpath, dirnames, filenames in os.walk(root, onerror=None):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        for name in sorted(filenames):
            if is_image_name(name):
                yield os.path.join(dirpath, name)


def csv_rows(path: str | os.PathLike) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header and the rows of a UTF-8 CSV manifest.

    Returns
    -------
    header : list of str
        Column names, stripped and lower-cased.
    rows : iterator of (int, dict)
        ``(line number, {column: stripped text})`` for every row with some text, streamed
        (blank rows are skipped; line numbers are the file's own).

    Raises
    ------
    PhotokitError
        When the file cannot be read, is not UTF-8 text or not valid CSV (naming the line),
        or is empty.
    """
    path = Path(path)
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise PhotokitError(f"cannot read manifest ({exc.strerror or exc})", path) from None
    reader = csv.reader(fh)
    try:
        header = next(r for r in reader if any(c.strip() for c in r))
    except StopIteration:
        fh.close()
        raise PhotokitError("manifest is empty", path) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        fh.close()
        raise _unreadable(exc, path, reader.line_num) from None
    header = [h.strip().lower() for h in header]

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with fh:
            try:
                for row in reader:
                    if any(c.strip() for c in row):
                        yield reader.line_num, {h: (row[i].strip() if i < len(row) else "")
                                                for i, h in enumerate(header)}
            except (UnicodeDecodeError, csv.Error) as exc:
                raise _unreadable(exc, path, reader.line_num) from None

    stream = rows()
    # the file is closed when the rows are read out, and also when a caller drops them
    # unread (a header it refuses): an open file left to the collector warns on stderr
    weakref.finalize(stream, fh.close)
    return header, stream


def _unreadable(exc: Exception, path: Path, line: int) -> PhotokitError:
    if isinstance(exc, UnicodeDecodeError):
        return PhotokitError("manifest is not UTF-8 text (is it a CSV file?)", path)
    return PhotokitError(f"manifest is not valid CSV (line {line}: {exc})", path)
