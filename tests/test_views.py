"""Views of an analysis (`Analysis.within`): a zone's values are the whole skin's
findings narrowed to the zone, so values over a partition of the skin add up exactly to
the whole skin's (counts, lengths, areas, sums of squares)."""

from __future__ import annotations

import numpy as np
import pytest

from photokit.colour.convert import uint8_to_linear
from photokit.metrics import pores, redness, spots, texture
from photokit.metrics.analysis import Analysis, Grid
from photokit.synth import render_skin


@pytest.fixture(scope="module")
def skin():
    im = render_skin(seed=3, width=900, height=700)
    an = Analysis(uint8_to_linear(im.pixels), im.mask("skin"), im.truth.mm_per_px)
    h, w = an.shape
    yy, xx = np.mgrid[0:h, 0:w]
    # three parts: a diagonal cut and a disc, as unlike the strip grid as possible
    disc = (xx - 0.6 * w) ** 2 + (yy - 0.45 * h) ** 2 < (0.22 * h) ** 2
    left = (yy * w < xx * h * 1.3) & ~disc
    parts = [disc, left, ~disc & ~left]
    return an, parts


def _window(part):
    """`part` cut to its bounding box: (window, (r0, c0))."""
    rows, cols = np.nonzero(part)
    r0, c0 = rows.min(), cols.min()
    return part[r0: rows.max() + 1, c0: cols.max() + 1], (int(r0), int(c0))


def test_a_view_holds_only_its_skin_and_shares_the_maps(skin):
    an, parts = skin
    win, at = _window(parts[0])
    v = an.within(win, at)
    assert v.root is an and np.array_equal(v.mask, parts[0] & an.mask)
    assert v.skin_pixels == int(np.count_nonzero(parts[0] & an.mask))
    assert v.lab is an.lab                                  # per-pixel maps are the root's
    ys, xs = np.nonzero(parts[0])
    assert v.holds(xs[:50], ys[:50]).all()
    assert not v.holds(np.array([-3.0, an.shape[1] + 2.0]), np.array([5.0, 5.0])).any()
    rs, cs, m = v.on_grid(Grid.scaled((an.shape[0] // 3, an.shape[1] // 3), 3))
    assert m.shape == (rs.stop - rs.start, cs.stop - cs.start) and m.any()


def test_counts_lengths_and_squares_add_up_over_a_partition(skin):
    an, parts = skin
    views = [an.within(*_window(p)) for p in parts]
    whole_pores = pores.find_pores(an)
    assert whole_pores and len(whole_pores) > 30
    # every pore falls in exactly one part; areas add up
    counts = [len(pores.find_pores(v)) for v in views]
    assert sum(counts) == len(whole_pores) and min(counts) > 0
    area = [pores.pore_density(v) and len(pores.find_pores(v)) / pores.pore_density(v) for v in views]
    assert sum(area) == pytest.approx(len(whole_pores) / pores.pore_density(an), rel=1e-9)
    # the band's sum of squares (Rq^2 x pixels) adds up: the band is not filtered again
    b = texture.band(an)
    n = [np.count_nonzero(texture.band(v).mask) for v in views]
    assert sum(n) == np.count_nonzero(b.mask)
    sq = sum(k * texture.roughness(v) ** 2 for k, v in zip(n, views, strict=True))
    assert sq == pytest.approx(np.count_nonzero(b.mask) * texture.roughness(an) ** 2, rel=1e-6)
    # line length adds up, and the whole skin's length is the centre pixels' steps
    ln = texture.ridges(an)
    steps = texture.centre_length(ln.centre, ln.theta, ln.work.mm_per_px)
    assert ln.length_mm > 10 and steps == pytest.approx(ln.length_mm, rel=1e-6)
    parts_len = [texture.ridges(v).length_mm for v in views]
    assert sum(parts_len) == pytest.approx(ln.length_mm, rel=1e-6)
    # spots: counted once, in the part holding their centre
    s_all = spots.find_spots(an)
    assert sum(len(spots.find_spots(v)) for v in views) == len(s_all)


def test_a_view_of_a_view_and_its_colour_level(skin):
    an, parts = skin
    v = an.within(*_window(parts[0] | parts[1]))
    vv = v.within(*_window(parts[0]))
    assert vv.root is an and np.array_equal(vv.mask, parts[0] & an.mask)
    lv = redness.colour_level(an.within(*_window(parts[0])))
    whole_lv = redness.colour_level(an)
    assert lv.root is whole_lv.root and lv.shape == whole_lv.shape
    assert np.all(lv.mask <= whole_lv.mask) and lv.mask.any()
