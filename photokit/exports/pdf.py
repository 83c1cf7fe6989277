"""Reports as A4 PDF: the HTML report, with print rules added, printed by headless Chromium.

The PDF has the same content as the HTML report (SPEC "Clinical exports and privacy"):
the page is printed as it is, with `assets/print.css` injected before ``</head>`` so
rows, figures, map pairs and summary cards are never split across pages and table
headers repeat on every page.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from ..errors import PhotokitError
from ..io.atomic import write_bytes

#: Executables tried, in order, when ``PHOTOKIT_CHROMIUM`` is not set.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Longest a single print may take, seconds.
TIMEOUT = 120.0
MISSING = ("PDF export needs headless Chromium: install it (Debian/Ubuntu: apt-get install "
           "chromium) or set PHOTOKIT_CHROMIUM to its path")


def print_css() -> str:
    """The print style sheet injected into reports before printing."""
    return resources.files("photokit.exports").joinpath("assets/print.css").read_text("utf-8")


def printable(page: str) -> str:
    """`page` with the print style sheet added at the end of its ``<head>``, and every
    folded ``<details>`` opened: paper cannot be unfolded, and Chromium prints a closed
    one's summary alone whatever the style sheet says (the compare report's "further
    measures", seven changes among them, were missing from its PDF)."""
    style = f"<style media=\"print\">{print_css()}</style>"
    page = re.sub(r"<details(?=[\s>])(?![^>]*\sopen(?=[\s=/>]))", "<details open", page, flags=re.IGNORECASE)
    i = page.lower().find("</head>")
    return page[:i] + style + page[i:] if i >= 0 else style + page


def find_browser() -> str:
    """Path of the Chromium executable; raises `PhotokitError` naming what to install."""
    env = os.environ.get("PHOTOKIT_CHROMIUM")
    if env:
        found = shutil.which(env)
        if found:
            return found
        raise PhotokitError(f"PHOTOKIT_CHROMIUM={env} is not an executable; {MISSING}")
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise PhotokitError(MISSING)


def html_to_pdf(page: str) -> bytes:
    """Print an HTML page to A4 PDF bytes with headless Chromium.

    Parameters
    ----------
    page : str
        A self-contained HTML document (pictures embedded).

    Returns
    -------
    bytes
        The PDF.

    Raises
    ------
    PhotokitError
        When Chromium is missing, fails, or takes longer than `TIMEOUT`.

    Notes
    -----
    Chromium runs without network, sync, component updates or GPU, with a throw-away
    profile, and without its own header and footer (which would print the temporary
    file's path).
    """
    browser = find_browser()
    with tempfile.TemporaryDirectory(prefix="photokit-pdf-") as tmp:
        src, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(printable(page), encoding="utf-8")
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={Path(tmp) / 'profile'}", "--no-pdf-header-footer",
               f"--print-to-pdf={out}", src.as_uri()]
        try:
            run = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise PhotokitError(f"Chromium took longer than {TIMEOUT:.0f} s to print the report") from None
        except OSError as exc:
            raise PhotokitError(f"could not run {browser} ({exc.strerror or exc}); {MISSING}") from None
        if run.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            last = (run.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
            raise PhotokitError(f"Chromium could not print the report (exit {run.returncode}: "
                                f"{last[:160]})")
        return out.read_bytes()


def write_pdf(path, page: str) -> Path:
    """Print `page` to an A4 PDF at `path`, atomically (nothing written on failure)."""
    return write_bytes(path, html_to_pdf(page))
