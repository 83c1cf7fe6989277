"""De-identification: an opaque mask over eyes and eyebrows, and no input names in outputs.

Pictures: `photokit.faces.deidentify` (`mask_eyes`, `mask_photo`: an opaque fill over eyes
and eyebrows from the face mesh; the reports use it too). Text:

- `Scrubber`: replaces every input path, folder and file name in text (HTML, JSON, CSV,
  SVG pictures embedded in HTML) with neutral labels ``photo 1``, ``photo 2``, ...

References
----------
ICMJE, "Protection of Research Participants" (Recommendations, 2024): a bar over the
eyes is not adequate de-identification.
Roberts EA, Troiano C, Spiegel JH. "Standardization of guidelines for patient photograph
deidentification." Ann Plast Surg 2016;76(6):611-614. doi:10.1097/SAP.0000000000000817
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path


def labels(sources: Sequence) -> dict[str, str]:
    """Neutral labels for input photos in the order given: ``{name: "photo 1", ...}``."""
    out: dict[str, str] = {}
    for s in sources:
        name = Path(os.fspath(s)).name
        if name and name not in out:
            out[name] = f"photo {len(out) + 1}"
    return out


_SVG_URI = re.compile(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)")


class Scrubber:
    """Replaces input paths, folders and file names in outputs with neutral labels.

    Parameters
    ----------
    photos : sequence of str or os.PathLike
        The input photos, in the order whose labels ``photo 1``, ``photo 2``, ... they get.
    others : sequence of str or os.PathLike
        Other inputs (manifest, ROI files, source folder): replaced by ``input`` (files)
        or ``input folder`` (folders).

    Notes
    -----
    Replaced, longest first so that a folder never leaves a tail behind: each input's
    path as given, absolute and resolved; its folder (as given, absolute, resolved); its
    file name; each in plain, HTML-escaped and JSON-escaped spelling. SVG pictures
    embedded in HTML as base64 ``data:`` URIs are decoded, scrubbed and re-encoded.
    """

    def __init__(self, photos: Sequence, others: Sequence = ()):
        photos = [os.fspath(s) for s in photos if isinstance(s, (str, os.PathLike))]
        others = [os.fspath(s) for s in others if isinstance(s, (str, os.PathLike))]
        self.names = labels(photos)
        pairs: dict[str, str] = {}
        for s in photos + others:
            p = Path(s)
            label = "input folder" if os.path.isdir(s) else self.names.get(p.name, "input")
            for variant in _spellings(p):
                pairs[variant] = label
            for variant in _spellings(p.parent):
                if variant not in (".", "", os.sep):
                    pairs.setdefault(variant, "input folder")
        for name, label in self.names.items():
            pairs.setdefault(name, label)
        for s in others:
            if not os.path.isdir(s):  # a bare folder name may be an ordinary word
                pairs.setdefault(Path(s).name, "input")
        expanded: dict[str, str] = {}
        for k, v in pairs.items():
            for spelled in {k, html.escape(k), json.dumps(k)[1:-1]}:
                expanded.setdefault(spelled, v)
        self.pairs = dict(sorted(expanded.items(), key=lambda kv: -len(kv[0])))
        self._pattern = (re.compile("|".join(re.escape(k) for k in self.pairs))
                         if self.pairs else None)

    def label(self, source) -> str:
        """The neutral label of one input (``photo N``), or ``photo`` when unknown."""
        return self.names.get(Path(os.fspath(source)).name, "photo")

    def text(self, text: str) -> str:
        """`text` with every input path, folder and file name replaced."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self.pairs[m.group(0)], text)

    def html(self, page: str) -> str:
        """An HTML page scrubbed, including SVG pictures embedded as base64."""
        def svg(m):
            raw = base64.b64decode(m.group(1)).decode("utf-8", "replace")
            return "data:image/svg+xml;base64," + base64.b64encode(
                self.text(raw).encode("utf-8")).decode("ascii")

        return self.text(_SVG_URI.sub(svg, page))

    def doc(self, obj):
        """A JSON-like document (dicts, lists, strings) with every string scrubbed."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.text(str(k)) if isinstance(k, str) else k: self.doc(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.doc(v) for v in obj]
        return obj


def _spellings(p: Path) -> set[str]:
    out = {str(p), os.path.abspath(p)}
    try:
        out.add(str(p.resolve()))
    except OSError:
        pass
    return {s for s in out if s}
