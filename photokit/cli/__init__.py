"""The ``photokit`` command line: a thin click layer over the Python API."""
