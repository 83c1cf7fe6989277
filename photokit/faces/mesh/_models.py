"""The vendored MediaPipe networks: where they are, how they load, how they run.

The four TFLite files in ``models/`` come unchanged from the ``mediapipe==0.10.21``
wheel (Apache-2.0, see ``models/LICENSE`` and ``models/NOTICE``); OpenCV's DNN module
runs them, so no inference runtime beyond OpenCV is needed.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import cv2
import numpy as np

from ...errors import PhotokitError

#: Folder holding the vendored ``.tflite`` files (package data).
MODEL_DIR = Path(__file__).resolve().parent / "models"
DETECTOR = "face_detection_short_range.tflite"
MESH = "face_landmark.tflite"
IRIS = "iris_landmark.tflite"
SELFIE = "selfie_segmentation.tflite"
#: One lock per network: a loaded `cv2.dnn.Net` is shared by the threads of a process
#: (two photos' face passes run side by side in `align`), and ``setInput`` then
#: ``forward`` on one net is not safe from two threads at once.
_RUN_LOCKS = {name: threading.Lock() for name in (DETECTOR, MESH, IRIS, SELFIE)}
#: Networks load one at a time: OpenCV's TFLite importer fills its table of operators on
#: first use without a lock (``TFLiteImporter::buildDispatchMap``, a function-local
#: static map), so two threads loading their first networks at once can read it half
#: filled and refuse a valid file ("Unsupported operator type RELU": seen once in
#: ``photokit demo``, whose photos are meshed side by side).
_LOAD_LOCK = threading.Lock()


def model_path(name: str) -> Path:
    """Full path of the vendored model file `name`."""
    return MODEL_DIR / name


def load_net(path: str) -> cv2.dnn.Net:
    """Load a TFLite network once per process, one network at a time (`_LOAD_LOCK`).

    Raises
    ------
    PhotokitError
        When the file is missing or OpenCV cannot parse it, naming the file.
    """
    with _LOAD_LOCK:
        return _read_net(path)


@functools.cache
def _read_net(path: str) -> cv2.dnn.Net:
    """`load_net` without the lock (cached: a path is read once)."""
    p = Path(path)
    if not p.is_file():
        raise PhotokitError("face model file is missing (reinstall photokit)", p)
    try:
        net = cv2.dnn.readNetFromTFLite(str(p))
    except cv2.error as exc:
        raise PhotokitError(f"face model file is unreadable or corrupt ({exc.err or 'OpenCV error'})",
                            p) from None
    if net.empty():
        raise PhotokitError("face model file is unreadable or corrupt", p)
    return net


def run(name: str, crops: np.ndarray) -> dict[str, np.ndarray]:
    """Run the model `name` on a batch of square RGB crops.

    Parameters
    ----------
    name : str
        One of `DETECTOR`, `MESH`, `IRIS`, `SELFIE`.
    crops : ndarray, (N, S, S, 3) float32
        RGB crops scaled to 0..1 (the models' input range).

    Returns
    -------
    dict
        Output layer name -> array with the batch as first axis.
    """
    net = load_net(str(model_path(name)))
    blob = cv2.dnn.blobFromImages(list(crops), 1.0, swapRB=False)   # NCHW, as the models want
    outs = []
    with _RUN_LOCKS[name]:
        names = net.getUnconnectedOutLayersNames()
        for i in range(len(crops)):   # the TFLite importer fixes the batch at 1
            net.setInput(blob[i:i + 1])
            outs.append(net.forward(names))
    return {n: np.concatenate([o[k].reshape(1, -1) for o in outs]) for k, n in enumerate(names)}
