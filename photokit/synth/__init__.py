"""Ground-truth synthetic skin photos (placeholder docstring, see below)."""

from .camera import Camera, cct_rgb
from .render import SynthImage, SynthPair, make_pair, render_skin
from .skin import ABSORPTION_HAEMOGLOBIN, ABSORPTION_MELANIN, BASELINE_OD, SkinParams, melanin_for_ita
from .truth import SynthTruth

__all__ = ["ABSORPTION_HAEMOGLOBIN", "ABSORPTION_MELANIN", "BASELINE_OD", "Camera", "SkinParams",
           "SynthImage", "SynthPair", "SynthTruth", "cct_rgb", "make_pair", "melanin_for_ita", "render_skin"]
