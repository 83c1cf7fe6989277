"""HTML report building blocks: escaping, embedding, legends, verdicts, page shell."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pytest

from photokit.report import compare_page as P
from photokit.report import html as R

XSS = "<img src=x onerror=alert(1)>.jpg"


def _decode_uri(uri: str) -> np.ndarray:
    head, data = uri.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64")
    buf = np.frombuffer(base64.b64decode(data), np.uint8)
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _gradient(h=120, w=200) -> np.ndarray:
    y, x = np.mgrid[:h, :w]
    return np.dstack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256]).astype(np.uint8)


def test_escape_neutralises_markup_and_quotes():
    assert R.escape(XSS) == "&lt;img src=x onerror=alert(1)&gt;.jpg"
    assert R.escape('a"b\'c&') == "a&quot;b&#x27;c&amp;"
    assert R.escape(None) == ""


def test_png_data_uri_round_trips_exactly():
    img = _gradient()
    back = _decode_uri(R.image_data_uri(img, fmt="png", max_side=None))
    np.testing.assert_array_equal(back, img)


def test_jpeg_data_uri_is_downscaled_and_close():
    img = cv2.resize(_gradient(), (2000, 1200), interpolation=cv2.INTER_LINEAR)
    uri = R.image_data_uri(img, max_side=1000)
    assert uri.startswith("data:image/jpeg;base64,")
    back = _decode_uri(uri)
    assert back.shape == (600, 1000, 3)
    ref = cv2.resize(img, (1000, 600), interpolation=cv2.INTER_AREA)
    assert np.abs(back.astype(int) - ref).mean() < 3.0


def test_fit_never_upscales():
    img = _gradient(50, 80)
    assert R.fit(img, 1000).shape == img.shape
    assert max(R.fit(img, 40).shape[:2]) == 40


@pytest.mark.parametrize("delta, mdc, better, text, tone", [
    (0.5, 0.8, "lower", "No detectable change", "none"),
    (-0.8, 0.8, "lower", "No detectable change", "none"),      # at the floor: not beyond it
    (-0.81, 0.8, "lower", "Decreased (better)", "better"),
    (2.0, 0.8, "lower", "Increased (worse)", "worse"),
    (2.0, 0.8, "higher", "Increased (better)", "better"),
    (-2.0, 0.8, "neither", "Decreased", "changed"),
    (None, 0.8, "lower", "Not measured", "na"),
    (float("nan"), 0.8, "lower", "Not measured", "na"),
])
def test_verdict_against_noise_floor(delta, mdc, better, text, tone):
    v = R.verdict(delta, mdc, better)
    assert (v.text, v.tone) == (text, tone)


def test_format_value_follows_noise_floor():
    assert R.format_value(14.2345, "a*", mdc=0.8) == "14.23\u202fa*"
    assert R.format_value(14.2345, "a*", mdc=3.0) == "14.2\u202fa*"
    assert R.format_value(-1.5, "%", mdc=0.1, signed=True) == "\u22121.50%"
    assert R.format_value(None, "a*") == "\u2013"
    assert R.format_value(float("inf")) == "\u2013"


def test_colourize_maps_range_ends_to_colormap_ends_and_greys_outside():
    lut = R._cmap_lut("viridis")
    v = np.array([[0.0, 10.0, 5.0, -3.0]], np.float32)
    mask = np.array([[True, True, True, False]])
    bg = np.full((1, 4, 3), 200, np.uint8)
    out = R.colourize(v, mask, cmap="viridis", vmin=0, vmax=10, background=bg)
    np.testing.assert_array_equal(out[0, 0], lut[0])
    np.testing.assert_array_equal(out[0, 1], lut[255])
    np.testing.assert_array_equal(out[0, 2], lut[127])
    assert out[0, 3, 0] == out[0, 3, 1] == out[0, 3, 2]        # grey outside the mask


def test_legend_ticks_are_in_range_and_positioned():
    html = R.legend("Reds", 2.0, 17.0, "a*", label="Redness")
    ticks = [(float(p), t) for p, t in re.findall(r'left:([\d.]+)%">([^<]+)<', html)]
    values = [float(t.replace("\u2212", "-")) for _, t in ticks]
    assert values == [5.0, 10.0, 15.0]
    for (pos, _), v in zip(ticks, values, strict=True):
        assert pos == pytest.approx((v - 2.0) / 15.0 * 100, abs=0.01)
    assert "Redness (a*)" in html and "linear-gradient" in html


def test_robust_range_ignores_outside_and_nan():
    a = np.arange(100, dtype=np.float32).reshape(10, 10)
    a[0, 0] = np.nan
    m = np.ones_like(a, bool)
    m[9] = False                                                  # 90..99 excluded
    lo, hi = R.robust_range((a, m), lo=0, hi=100)
    assert (lo, hi) == (1.0, 89.0)


def _rows():
    return [R.MetricRow("redness.a_mean", "mean CIELAB a*", "a*", 12.0, 12.3, 0.3, 2.5, 0.8, "lower"),
            R.MetricRow("redness.area_pct", "red area", "%", 10.0, 20.0, 10.0, 100.0, 2.0, "lower"),
            R.MetricRow("texture.roughness", "roughness", "L*", 2.0, 1.5, -0.5, -25.0, 0.1, "lower"),
            R.MetricRow("spots.count", "spots", "count", None, 3.0, None, None, 2.0, "lower")]


def test_metrics_table_hides_percentages_inside_the_noise():
    html = R.metrics_table(_rows())
    row = re.search(r'<tr class="tone-none" data-metric="redness.a_mean">.*?</tr>', html).group(0)
    assert "within noise" in row and "2.5" not in row.split("within noise")[0].split("delta")[-1]
    assert "+2.5" not in row and "No detectable change" in row
    worse = re.search(r'data-metric="redness.area_pct">.*?</tr>', html).group(0)
    assert "+100.0%" in worse and "Increased (worse)" in worse
    better = re.search(r'data-metric="texture.roughness">.*?</tr>', html).group(0)
    assert "\u221225.0%" in better and "Decreased (better)" in better
    assert "Not measured" in html


def test_a_not_judged_verdict_wraps_its_reason_under_the_pill():
    """A long 'not judged' reason goes in small print under a short pill (a pill does not
    wrap: the reason in it pushed the table 570 px past a 1280 px page)."""
    why = "the photos' resolutions differ by 25 % (0.245 and 0.305 mm/px); photograph both visits"
    row = R.MetricRow("spots.count", "spots", "count", 13.0, 16.0, 3.0, 23.0, None, "lower", why=why)
    html = R.metrics_table([row])
    cell = re.search(r'<td class="verdict">(.*?)</td>', html).group(1)
    assert re.search(r'<span class="pill na">Not judged</span>', cell)
    assert f'<div class="why">{R.escape(why)}</div>' in cell
    assert row.verdict.text == f"Not judged: {why}"       # the JSON's wording is unchanged


def test_headline_counts_changes_beyond_noise():
    assert P.headline(_rows()) == ("2 of 3 measures changed beyond their measurement noise "
                                   "(1 better, 1 worse); the others show no detectable change.")
    quiet = [r for r in _rows() if r.name in ("redness.a_mean", "spots.count")]
    assert P.headline(quiet).startswith("No detectable change: all 1 measures")
    # measured on both photos but without a floor that holds (other resolution, light)
    unjudged = R.MetricRow("texture.ra", "Ra", "L*", 1.0, 1.4, 0.4, 40.0, None, "lower")
    assert unjudged.verdict.tone == "na"
    assert P.headline(quiet + [unjudged]).endswith("1 more were measured but not judged (see each).")
    # under Holm the headline names fewer changes than the cards and the table count, and
    # says how many more moved beyond their own floors (it read "8 of 24" beside cards
    # adding up to 9: QA, 2026-12-08)
    import dataclasses
    holm = [dataclasses.replace(r, holm=r.name != "texture.roughness") for r in _rows()]
    text = P.headline(holm)
    assert text.startswith("1 of 3 measures changed beyond their measurement noise (Holm correction")
    assert "1 more moved beyond its own noise floor (counted in the cards and the table)" in text


def _view(**kw) -> P.CompareView:
    img = cv2.resize(_gradient(), (240, 160))
    mask = np.zeros(img.shape[:2], bool)
    mask[40:120, 60:180] = True
    a = np.where(mask, 10.0, np.nan).astype(np.float32)
    mp = P.MapPair("Redness", "a*", a, a + 1, np.where(mask, 1.0, np.nan).astype(np.float32), mask,
                   "Reds", "RdBu_r", mdc=0.8)
    base = dict(before_rgb=img, after_rgb=img[:, ::-1].copy(), mask=mask, valid=np.ones_like(mask),
                rows=_rows(), before_label=XSS, after_label="after.jpg", maps=[mp],
                spots=[P.Spot(30, 30, 5, "new"), P.Spot(100, 80, 4, "faded"), P.Spot(150, 50, 3, "kept")],
                warnings=[f"warning about {XSS}"], notes=["<script>alert(2)</script>"],
                quality_headers=["Before", "After"],
                quality=[("sharpness", [("pass", "0.5"), ("fail", "0.1")])],
                calibration=[("Colour, before", "not calibrated")], alignment=[("Status", "ok")],
                params=[("Before", XSS)], subtitle=f"{XSS} \u2192 after.jpg")
    base.update(kw)
    return P.CompareView(**base)


def test_summary_card_of_a_measured_but_unjudged_family_gives_its_change():
    unjudged = R.MetricRow("texture.ra", "Ra", "L*", 1.0, 1.4, 0.4, 40.0, None, "lower")
    html = P.render_compare(_view(rows=[unjudged]))
    card = re.search(r'<div class="card na">.*?</div></div>', html).group(0)
    assert "+0.4" in card and "not judged" in card and "could not be measured" not in card


def test_compare_page_escapes_every_user_string_and_fetches_nothing():
    html = P.render_compare(_view())
    assert "<img src=x" not in html and "<script>alert" not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;.jpg") >= 4
    # only embedded pictures; no URL that a browser could fetch
    srcs = re.findall(r'\ssrc="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html.replace("http-equiv", ""), re.I)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "<script>" in html          # the one inline script: the slider
    for sid in ("summary", "photos", "maps", "spots", "metrics", "quality"):
        assert f'id="{sid}"' in html
    assert "photokit" in html.split("<footer>")[1]


def test_compare_page_is_light_enough_to_email():
    big = cv2.resize(_gradient(), (4000, 3000))
    rng = np.random.default_rng(1)
    big = np.clip(big.astype(int) + rng.integers(-20, 20, big.shape), 0, 255).astype(np.uint8)
    mask = np.zeros(big.shape[:2], bool)
    mask[500:2500, 800:3200] = True
    small_mask = cv2.resize(mask.astype(np.uint8), (1000, 750), interpolation=cv2.INTER_NEAREST) > 0
    b = R.fit(big)
    v = _view(before_rgb=b, after_rgb=b, mask=small_mask, valid=np.ones_like(small_mask), maps=[], spots=None)
    html = P.render_compare(v)
    assert len(html.encode()) < 3_000_000
    imgs = re.findall(r'width="(\d+)" height="(\d+)"', html)
    assert imgs and max(max(int(w), int(h)) for w, h in imgs) <= 1000


def test_spots_overlay_draws_only_at_spots():
    img = np.full((100, 100, 3), 128, np.uint8)
    out = P.spots_overlay(img, [P.Spot(50, 50, 5, "new")])
    changed = np.any(out != img, axis=2)
    ys, xs = np.nonzero(changed)
    d = np.hypot(xs - 50, ys - 50)
    assert changed.any() and d.max() < 18 and d.min() > 6
    assert tuple(out[50, 50]) == (128, 128, 128)                  # circle, not a disc


def test_notebook_html_has_no_script():
    html = P.render_compare_notebook(_view())
    assert "<script" not in html and "&lt;img src=x" in html and "<table" in html


def test_change_range_is_nice_and_never_smaller_than_twice_the_noise():
    mask = np.ones((10, 10), bool)
    d = np.full((10, 10), 10.8, np.float32)
    assert R.change_range(d, mask, 0.8) == 15.0
    assert R.change_range(d * 0.01, mask, 0.8) == 2.0        # 2 x mdc = 1.6 -> 2
    assert R.change_range(d * 0.1, mask, None) == 1.5


def test_crop_box_frames_the_mask():
    m = np.zeros((400, 600), bool)
    m[100:200, 300:400] = True
    ys, xs = R.crop_box(m, margin=0.1, min_frac=0.0)
    assert (ys.start, ys.stop, xs.start, xs.stop) == (90, 210, 290, 410)
    full = R.crop_box(np.zeros((40, 60), bool))
    assert (full[0].stop, full[1].stop) == (40, 60)


def test_spots_panel_says_when_spot_changes_are_not_judged():
    """New and faded circles are no evidence of change when the spot count's change is not
    judged (another resolution, another expression): the panel says so, with the reason."""
    why = "the photos' resolutions differ by 25 % (0.0939 and 0.117 mm/px)"
    html = P.render_compare(_view(spots_unjudged=why))
    spots = html[html.index('id="spots"'):]
    assert "Spot changes are not judged for these photos" in spots and "resolutions differ by 25 %" in spots
    assert "in AFTER only (1)" in spots and "in BEFORE only (1)" in spots and "new (" not in spots
    judged = P.render_compare(_view())
    assert "Spot changes are not judged" not in judged and "new (1)" in judged and "faded (1)" in judged
    # judged, but no count changed beyond its floor: spots that come and go between two
    # photos of unchanged skin are not "new" or "faded" (a re-encoded copy showed 8 new
    # and 6 faded: QA, 2026-12-08)
    same = P.render_compare(_view(spots_changed=False))
    spots = same[same.index('id="spots"'):]
    assert "did not change beyond their noise floors" in spots and "new (" not in spots
    assert "in AFTER only (1)" in spots and "Spot changes are not judged" not in spots
    unmeasured = P.render_compare(_view(spots_changed=None))      # compare --metrics redness
    spots = unmeasured[unmeasured.index('id="spots"'):]
    assert "were not part of this comparison" in spots and "noise floors" not in spots
    assert "new (" not in spots


def test_summary_card_counts_judged_measures_and_shows_a_measured_one():
    """A family's card counts the changes among the measures it judged (not among all),
    says how many it could not judge, and shows a measured value before an unmeasured one."""
    unmeasured = R.MetricRow("texture.roughness", "roughness", "L*", None, None, None, None, None, "lower")
    measured = R.MetricRow("texture.wrinkle_density", "lines", "mm/cm^2", 5.0, 4.0, -1.0, -20.0, None,
                           "lower", why="the expression changed")
    judged = R.MetricRow("texture.ra", "Ra", "L*", 1.0, 1.02, 0.02, 2.0, 0.3, "lower")
    card = P._summary_cards([unmeasured, measured])
    assert "could not be measured" not in card and "1.00" in card and "1 not judged" in card
    card = P._summary_cards([judged, measured, unmeasured])
    assert "0 of 1 judged" not in card and "1 not judged" in card
    two = R.MetricRow("texture.glcm_energy", "energy", "1", 0.2, 0.2, 0.0, 0.0, 0.01, "higher")
    assert "0 of 2 judged measures changed" in P._summary_cards([judged, two, measured])
