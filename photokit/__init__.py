"""photokit: measure skin change from ordinary before/after photographs.

The public API (SPEC): `load`, `check`, `face`, `measure`, `align`, `compare`, `Series`,
`score_archive` and the `synth` module. Results are dataclasses with ``to_dict()``;
tabular ones also offer ``to_frame()`` and render in Jupyter.
"""

from ._version import __version__  # noqa: I001 (first: every layer records it)
from . import metrics, synth
from .registration.align import Alignment, align
from .batch.archive import BatchSummary, score_archive
from .comparison.compare import Comparison, compare
from .errors import PhotokitError
from .faces.photo_faces import Faces, face
from .measurement.measure import Measurement, measure
from .io.photo import Photo, load
from .measurement.quality import CheckResult, QualityReport, check
from .series.course import Series

__all__ = [
    "Alignment", "BatchSummary", "CheckResult", "Comparison", "Faces", "Measurement", "Photo",
    "PhotokitError", "QualityReport", "Series", "__version__", "align", "check", "compare",
    "face", "load", "measure", "metrics", "score_archive", "synth",
]
