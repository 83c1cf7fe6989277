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

from .errors import PhotokitError
from .photo import Photo, load
from .quality import CheckResult, QualityReport, check


__all__ = ["CheckResult", "PhotokitError", "Photo", "QualityReport", "__version__", "check", "load"]
