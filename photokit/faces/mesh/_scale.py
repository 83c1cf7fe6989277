"""Physical scale from the iris (white-to-white diameter), or from the inter-ocular distance.

References
----------
M. Rüfer, S. Schröder, J. Erb, "White-to-white corneal diameter: normal values in
healthy humans obtained with the Orbscan II topography system", Cornea 24(3):259-261
(2005). doi:10.1097/01.ico.0000148312.01805.53 (11.71 +/- 0.42 mm, 457 eyes)
N. A. Dodgson, "Variation and extrema of human interpupillary distance", Proc. SPIE
5291:36-46 (2004). doi:10.1117/12.529999
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._result import inter_pupil_px

#: Adult horizontal visible iris diameter, mm, and its population SD.
IRIS_MM, IRIS_SD_MM = 11.7, 0.5
#: Adult mean inter-pupillary distance, mm, and its population SD (Dodgson 2004).
INTEROCULAR_MM, INTEROCULAR_SD_MM = 63.0, 3.5
#: The iris is not used below this diameter (px): a pixel of error is then > 10 %.
MIN_IRIS_PX = 10.0
#: ... nor beyond this yaw (degrees): the far iris is foreshortened.
MAX_YAW = 25.0
#: ... nor when an eye's opening (lid gap / corner distance) is below this.
MIN_EYE_OPENING = 0.12


@dataclass(frozen=True)
class FaceScale:
    """The scale of a face photo.

    Attributes
    ----------
    mm_per_px : float or None
        Millimetres per full-resolution pixel in the plane of the face.
    uncertainty : float or None
        Relative standard uncertainty (0.05 = 5 %).
    source : str
        ``"iris"``, ``"face"`` (inter-ocular estimate) or ``"relative"`` (no face).
    reason : str
        Why the iris was not used (empty when it was).
    """

    mm_per_px: float | None
    uncertainty: float | None
    source: str
    reason: str = ""

    def to_dict(self) -> dict:
        return {"mm_per_px": self.mm_per_px, "uncertainty": self.uncertainty,
                "source": self.source, "reason": self.reason}


def face_scale(faces) -> FaceScale:
    """Scale from the first (largest) face of `faces`.

    Iris: ``mm_per_px = 11.7 / d``, ``d`` the mean horizontal iris diameter of both
    eyes (px); relative uncertainty ``sqrt((0.5 / 11.7)^2 + (s_d / d)^2 / 2)`` with
    ``s_d`` the two eyes' SD (population spread and measurement spread).

    Used unless an eye is closed (opening below `MIN_EYE_OPENING`), the yaw exceeds
    `MAX_YAW` or an iris is under `MIN_IRIS_PX`; then the inter-ocular estimate
    ``mm_per_px = 63 / D`` (``D`` the iris-centre distance divided by ``cos(yaw)``),
    relative uncertainty ``3.5 / 63`` = 5.6 %, with the reason.
    """
    if not faces:
        return FaceScale(None, None, "relative", "no face found")
    f = faces[0]
    d = np.array([f.iris_left.diameter_px, f.iris_right.diameter_px])
    reason = ""
    if min(f.eye_opening) < MIN_EYE_OPENING:
        reason = f"eye closed (opening {min(f.eye_opening):.2f} < {MIN_EYE_OPENING})"
    elif abs(f.yaw) > MAX_YAW:
        reason = f"yaw {f.yaw:.0f} deg beyond {MAX_YAW:g}"
    elif d.min() < MIN_IRIS_PX:
        reason = f"iris {d.min():.1f} px < {MIN_IRIS_PX:g} px"
    if not reason:
        unc = float(np.hypot(IRIS_SD_MM / IRIS_MM, np.std(d, ddof=1) / d.mean() / np.sqrt(2)))
        return FaceScale(float(IRIS_MM / d.mean()), unc, "iris")
    dist = inter_pupil_px(f) / max(float(np.cos(np.radians(f.yaw))), 0.3)
    return FaceScale(float(INTEROCULAR_MM / dist), INTEROCULAR_SD_MM / INTEROCULAR_MM, "face", reason)
