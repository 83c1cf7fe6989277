"""The one error type photokit raises for inputs it cannot analyse."""

from __future__ import annotations

import os


class PhotokitError(Exception):
    """An input could not be analysed.

    The message names the file (when there is one) and the cause in one line, so the
    CLI can print it as it is and exit 1.

    Parameters
    ----------
    message : str
        The cause, in plain words.
    path : str or os.PathLike, optional
        The file the cause belongs to.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.cause = message
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)
