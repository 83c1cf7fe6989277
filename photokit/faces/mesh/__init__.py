"""Faces with MediaPipe's networks run by OpenCV: detection, 468-point mesh, irises,
head pose, the iris as a ruler, skin zones built on the mesh's triangles, and where the
person is (selfie segmentation).

Pure core: RGB arrays in, frozen dataclasses out. The networks are vendored in
``models/`` (Apache-2.0, see ``models/NOTICE``). See docs/FACE.md.
"""

from ._detect import Detection, detect
from ._geometry import pose, visibility
from ._limbus import Limbus, fit_limbus
from ._overlay import draw_overlay
from ._person import person_probability
from ._pipeline import eye_opening, face_near, faces_document, find_faces
from ._result import FaceMesh, Iris, inter_pupil_px
from ._scale import IRIS_MM, FaceScale, face_scale
from ._topology import TRIANGLES, ZONE_CODES, ZONE_NAMES, ZONES

__all__ = ["Detection", "FaceMesh", "FaceScale", "IRIS_MM", "Iris", "Limbus", "TRIANGLES", "ZONES",
           "ZONE_CODES", "ZONE_NAMES", "detect", "draw_overlay", "eye_opening", "face_near", "face_scale",
           "faces_document", "find_faces", "fit_limbus", "inter_pupil_px", "person_probability", "pose",
           "visibility"]
