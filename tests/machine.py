"""The machine the byte- and float-exact test files were recorded on.

Another processor or another build of OpenCV, NumPy or SciPy rounds floats differently
(vector units, summation order): a golden output then differs by rounding or, through a
thresholded detector, by a few % of a count (tests/test_golden.py), and a rendered
sample's JPEG in a few bytes (tests/test_synth.py). The golden outputs are compared
exactly on the recording machine (`recorded_here`, the one CI runs on) and within stated
tolerances elsewhere.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import cv2
import numpy as np

#: Written when the golden files are recorded (``PHOTOKIT_REGEN_GOLDEN=1``).
MACHINE_FILE = Path(__file__).resolve().parent / "golden" / "MACHINE.json"


def fingerprint() -> dict:
    """What sets the floats of a run: the processor, its vector units as OpenCV uses
    them, and the numeric libraries' versions."""
    import scipy
    import skimage

    model = ""
    try:
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "machine": platform.machine(),
            "opencv_cpu": cv2.getCPUFeaturesLine(), "opencv": cv2.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-image": skimage.__version__}


def record() -> None:
    """Write this machine's `fingerprint` as the recording machine's."""
    MACHINE_FILE.parent.mkdir(exist_ok=True)
    MACHINE_FILE.write_text(json.dumps(fingerprint(), indent=1, sort_keys=True) + "\n")


def recorded_here() -> bool:
    """Whether this is the machine (and library build) the files were recorded on."""
    return MACHINE_FILE.exists() and json.loads(MACHINE_FILE.read_text()) == fingerprint()
