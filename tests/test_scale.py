"""Physical scale: user, colour card, face; unknown says so."""

from __future__ import annotations

import numpy as np
import pytest

from photokit.faces.haar import Face
from photokit.io.photo import load
from photokit.metrics.scale import (
    INTEROCULAR_MM,
    Scale,
    estimate_scale,
    relative_mm_per_px,
    scale_from_card,
    scale_from_faces,
)


def _rect(x0, y0, w, h, angle_deg=0.0):
    c = np.array([[0, 0], [w, 0], [w, h], [0, h]], float) - [w / 2, h / 2]
    a = np.deg2rad(angle_deg)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return c @ R.T + [x0 + w / 2, y0 + h / 2]


@pytest.mark.parametrize("angle", [0.0, 17.0, 90.0])
def test_card_scale_exact_for_a_fronto_parallel_card(angle):
    # a 140 x 100 mm card imaged at 0.25 mm/px is 560 x 400 px, whatever its rotation
    s = scale_from_card(_rect(100, 80, 560, 400, angle), size_mm=(140, 100))
    assert s.source == "card"
    assert s.mm_per_px == pytest.approx(0.25, rel=1e-9)
    assert s.uncertainty == pytest.approx(0.01)


def test_card_orientation_does_not_matter_for_portrait_cards():
    s = scale_from_card(_rect(0, 0, 400, 560), size_mm=(140, 100))
    assert s.mm_per_px == pytest.approx(0.25, rel=1e-9)


def test_card_in_perspective_reports_larger_uncertainty():
    # trapezoid: the far side is 20% shorter
    c = np.array([[0, 0], [400, 0], [360, 300], [40, 300]], float)
    s = scale_from_card(c, size_mm=(100, 75))
    assert s.uncertainty > 0.05
    # geometric mean over the area stays between the two side scales
    assert 100 / 400 < s.mm_per_px < 100 / 320


def test_degenerate_card_is_unknown():
    s = scale_from_card(np.zeros((4, 2)), size_mm=(100, 70))
    assert not s.known and s.source == "unknown"


def test_face_scale_from_interocular_distance():
    f = Face(box=(0, 0, 300, 300), eyes=((100.0, 120.0), (226.0, 120.0)))
    s = scale_from_faces([f])
    assert s.source == "face" and s.is_estimate
    assert s.mm_per_px == pytest.approx(INTEROCULAR_MM / 126.0)
    assert 0.06 < s.uncertainty < 0.1


def test_face_without_eyes_gives_unknown():
    assert scale_from_faces([Face(box=(0, 0, 100, 100))]).source == "unknown"


def test_priority_user_then_card_then_face():
    f = Face(box=(0, 0, 300, 300), eyes=((100.0, 120.0), (226.0, 120.0)))
    card = {"corners": _rect(0, 0, 400, 300), "size_mm": (100, 75)}
    assert estimate_scale(None, user_mm_per_px=0.1, faces=[f], card=card).source == "user"
    assert estimate_scale(None, faces=[f], card=card).mm_per_px == pytest.approx(0.25)
    assert estimate_scale(None, faces=[f], card=None).source == "face"
    # a card of unstated size gives no scale (sizes differ several-fold between cards)
    sizeless = {"corners": _rect(0, 0, 400, 300)}
    assert estimate_scale(None, faces=[f], card=sizeless).source == "face"
    s = estimate_scale(None, faces=[], card=sizeless, card_size_mm=(100, 75))
    assert s.source == "card" and s.mm_per_px == pytest.approx(0.25)
    unknown = estimate_scale(None, faces=[], card=None)
    assert unknown.mm_per_px is None and unknown.source == "unknown" and "mm-per-px" in unknown.note


def test_photo_scale_counts_as_user_and_bad_values_raise():
    photo = load(np.full((64, 64, 3), 128, np.uint8), mm_per_px=0.08)
    s = estimate_scale(photo, detect_faces=False)
    assert (s.mm_per_px, s.source, s.uncertainty) == (0.08, "user", 0.0)
    with pytest.raises(ValueError):
        estimate_scale(None, user_mm_per_px=-1.0)
    assert Scale(0.1, "user").to_dict()["source"] == "user"


def test_face_scale_on_a_real_portrait(astronaut):
    """The astronaut's irises are about 7 px: the inter-ocular fallback, with its reason."""
    s = estimate_scale(astronaut)
    assert s.source == "face" and s.reason.startswith("iris") and "px" in s.reason
    assert s.uncertainty == pytest.approx(3.5 / 63)
    # a head-and-shoulders portrait 512 px wide: a few tenths of a mm per pixel
    assert 0.15 < s.mm_per_px < 2.0
    assert estimate_scale(astronaut, faces=[]).source == "unknown"


def test_relative_scale_makes_skin_100_units_square():
    assert relative_mm_per_px(10_000) == pytest.approx(1.0)
    assert relative_mm_per_px(40_000) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        relative_mm_per_px(0)
