"""photokit: measure skin change from ordinary before/after photographs.

The public API (SPEC): `load`, `check`, `measure`, `align`, `compare`, `Series`,
`score_archive` and the `synth` module. Results are dataclasses with ``to_dict()``;
tabular ones also offer ``to_frame()`` and render in Jupyter.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("photokit")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

from . import metrics, synth
from .align import Alignment, align
from .batch import BatchSummary, score_archive
from .compare import Comparison, compare
from .errors import PhotokitError
from .measure import Measurement, measure
from .photo import Photo, load
from .quality import CheckResult, QualityReport, check
from .series import Series

__all__ = [
    "Alignment", "BatchSummary", "CheckResult", "Comparison", "Measurement", "Photo",
    "PhotokitError", "QualityReport", "Series", "__version__", "align", "check", "compare",
    "load", "measure", "metrics", "score_archive", "synth",
]
