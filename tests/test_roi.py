"""ROIs: polygon rasterisation against exact areas, validation, carrying through H."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from photokit import PhotokitError
from photokit.io.roi import mask_to_after, parse_polygons, rasterise, read_roi


def test_rectangle_polygon_area_and_union():
    m = rasterise([[[10, 20], [110, 20], [110, 70], [10, 70]]], (100, 200))
    assert abs(int(m.sum()) - 100 * 50) <= 151  # border pixels only
    two = rasterise([[[0, 0], [10, 0], [10, 10], [0, 10]], [[50, 50], [60, 50], [60, 60], [50, 60]]],
                    (100, 100))
    assert two[5, 5] and two[55, 55] and not two[30, 30]


def test_disc_polygon_matches_area():
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    poly = np.stack([100 + 40.3 * np.cos(t), 80 + 40.3 * np.sin(t)], 1)
    m = rasterise([poly], (160, 200))
    # OpenCV fills pixels whose centres touch the outline: the error is at most about
    # half a pixel along the perimeter (here 2.3% of the area), never more
    err = abs(int(m.sum()) - np.pi * 40.3 ** 2)
    assert err <= 0.5 * 2 * np.pi * 40.3 and m[80, 100] and not m[80, 142]


def test_read_roi_json_png_and_array(tmp_path):
    doc = {"polygons": [[[5, 5], [45, 5], [45, 25], [5, 25]]]}
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc))
    m = read_roi(p, (40, 60))
    png = tmp_path / "r.png"
    cv2.imwrite(str(png), m.astype(np.uint8) * 255)
    np.testing.assert_array_equal(read_roi(png, (40, 60)), m)
    np.testing.assert_array_equal(read_roi(m, (40, 60)), m)
    np.testing.assert_array_equal(read_roi(doc, (40, 60)), m)


@pytest.mark.parametrize("doc, msg", [
    ({"poly": []}, "polygons"),
    ({"polygons": [[[0, 0], [1, 1]]]}, "three"),
    ({"polygons": [[[0, 0], [1, float("nan")], [2, 2]]]}, "finite"),
    ({"polygons": []}, "no polygons"),
])
def test_bad_polygon_documents(doc, msg):
    with pytest.raises(PhotokitError, match=msg):
        parse_polygons(doc)


def test_wrong_size_and_out_of_frame_are_refused():
    with pytest.raises(PhotokitError, match="but the photo is"):
        read_roi(np.ones((10, 10), bool), (20, 20))
    with pytest.raises(PhotokitError, match="out of frame"):
        read_roi({"polygons": [[[500, 500], [600, 500], [600, 600]]]}, (100, 100))


def test_mask_to_after_follows_a_known_homography():
    before = np.zeros((200, 300), bool)
    before[50:100, 80:160] = True
    # AFTER is BEFORE shifted by (+20, +10): an AFTER pixel a maps to BEFORE a - (20, 10)
    H = np.array([[1, 0, -20], [0, 1, -10], [0, 0, 1]], float)
    after = mask_to_after(before, H, (200, 300))
    np.testing.assert_array_equal(after[60:110, 100:180], True)
    assert after.sum() == before.sum()
