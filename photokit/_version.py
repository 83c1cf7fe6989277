"""The installed photokit version (one place; every module that records it imports it
from here, not from the package ``__init__``)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("photokit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
