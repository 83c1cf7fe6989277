"""Pores: known Gaussian dips, lines are not pores, synthetic monotonicity, no skin."""

from __future__ import annotations

import numpy as np
import pytest

from photokit.colour.convert import uint8_to_linear
from photokit.metrics import pores as P
from photokit.metrics.analysis import Analysis
from photokit.synth import render_skin


def grey_from_L(L):
    y = ((np.asarray(L, np.float64) + 16.0) / 116.0) ** 3
    return np.repeat(y.astype(np.float32)[..., None], 3, axis=2)


def dips(n, mmpp, centres, radius_mm, depth=6.0):
    """L* field with Gaussian dips of half-depth radius `radius_mm` (SD = r / 1.1774)."""
    L = np.full((n, n), 62.0, np.float32)
    s = radius_mm / np.sqrt(2 * np.log(2)) / mmpp
    h = int(np.ceil(5 * s))
    for cx, cy in centres:
        x0, y0 = max(0, int(cx) - h), max(0, int(cy) - h)
        yy, xx = np.mgrid[y0:min(n, int(cy) + h + 1), x0:min(n, int(cx) + h + 1)]
        L[yy, xx] -= depth * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    return L


@pytest.mark.parametrize("mmpp", [0.03, 0.06])
def test_gaussian_dips_are_counted_sized_and_placed(mmpp):
    n = int(30 / mmpp)
    rng = np.random.default_rng(0)
    pitch = 1.5 / mmpp  # 1.5 mm grid, jittered
    centres = [(x + rng.uniform(-0.2, 0.2) * pitch, y + rng.uniform(-0.2, 0.2) * pitch)
               for y in np.arange(2 * pitch, n - 2 * pitch, pitch)
               for x in np.arange(2 * pitch, n - 2 * pitch, pitch)]
    r = 0.15  # half-depth radius, mm: LoG diameter 2 sqrt(2) SD = 0.36 mm
    an = Analysis(grey_from_L(dips(n, mmpp, centres, r)), np.ones((n, n), bool), mmpp)
    found = P.find_pores(an)
    assert len(found) == pytest.approx(len(centres), rel=0.05)
    d_expected = 2 * np.sqrt(2) * r / np.sqrt(2 * np.log(2))
    assert P.mean_diameter_mm(an) == pytest.approx(d_expected, rel=0.15)
    xy = np.array([[p.x, p.y] for p in found])
    err = [np.hypot(*(xy - c).T).min() * mmpp for c in centres]
    assert np.median(err) < 0.05  # mm
    # density: pores per cm^2 of the analysed area
    inside = sum(1 for p in found)
    assert P.pore_density(an) == pytest.approx(inside / (P._pores(an).area_mm2 / 100))


def test_shallow_dips_and_lines_are_not_pores():
    n, mmpp = 500, 0.05
    an = Analysis(grey_from_L(dips(n, mmpp, [(100, 100), (300, 300)], 0.15, depth=1.5)),
                  np.ones((n, n), bool), mmpp)
    assert P.pore_density(an) == 0.0
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    L = 62 - 6 * np.exp(-((yy - 250 - 0.3 * (xx - 250)) * mmpp) ** 2 / (2 * 0.1 ** 2))
    assert P.pore_density(Analysis(grey_from_L(L), np.ones((n, n), bool), mmpp)) == 0.0


def test_pore_metrics_are_monotonic_in_synthetic_density_and_depth():
    def run(**kw):
        im = render_skin(seed=4, width=640, height=480, **kw)
        an = Analysis(uint8_to_linear(im.pixels), im.mask("skin"), im.truth.mm_per_px)
        return P.pore_density(an), P.area_pct(an)

    dens = [run(pore_density=d) for d in (10, 40, 90)]
    assert dens[0][0] < dens[1][0] < dens[2][0], dens
    assert dens[0][1] < dens[1][1] < dens[2][1], dens
    depth = [run(pore_depth=d)[0] for d in (0.4, 1.0, 1.6)]
    assert depth[0] < depth[1] <= depth[2] * 1.02, depth  # the count saturates ...

    def contrast(d):
        im = render_skin(seed=4, width=640, height=480, pore_depth=d)
        return P.mean_contrast(Analysis(uint8_to_linear(im.pixels), im.mask("skin"),
                                        im.truth.mm_per_px))

    c = [contrast(d) for d in (0.4, 1.0, 1.6)]
    assert c[0] < c[1] < c[2], c  # ... the contrast does not


def test_no_skin_gives_none():
    lin = np.full((300, 300, 3), 0.4, np.float32)
    an = Analysis(lin, np.zeros((300, 300), bool), 0.05)
    assert P.pore_density(an) is None
    assert P.mean_diameter_mm(an) is None
    assert P.area_pct(an) is None
    assert P.mean_contrast(an) is None
    assert P.find_pores(an) is None


def test_large_photos_list_every_pore_where_the_band_samples_strips(monkeypatch):
    """Pores are counted over all the skin: where the texture band samples strips, every
    pore is still found once, in full-resolution coordinates."""
    from photokit.metrics import texture

    monkeypatch.setattr(texture, "WORK_BUDGET_PX", 50_000)  # the band samples 700x700
    n, mmpp = 700, 0.05
    rng = np.random.default_rng(2)
    pitch = 1.2 / mmpp
    grid = np.arange(pitch, n - pitch, pitch)
    centres = np.array([(x + rng.uniform(-3, 3), y + rng.uniform(-3, 3)) for y in grid for x in grid])
    an = Analysis(grey_from_L(dips(n, mmpp, centres, 0.15)), np.ones((n, n), bool), mmpp)
    w = texture.work(an, texture.TEXTURE_MM_PER_PX)
    assert w.core is not None and w.L.size < w.level.shape[0] * w.level.shape[1]  # the band samples
    found = P.find_pores(an)
    xy = np.array([[p.x, p.y] for p in found])
    err = np.array([np.hypot(*(xy - c).T).min() for c in centres]) * mmpp
    assert len(found) == len(centres)
    assert np.median(err) < 0.05 and err.max() < 0.2  # mm: each centre found, full-resolution coordinates
    assert P.pore_density(an) == pytest.approx(100 / 1.2 ** 2, rel=0.1)  # one per 1.2 mm cell


def test_too_coarse_for_pores_gives_none_and_says_why():
    """The stated limit is where detection stops: just finer, pores are measured and no
    reason is given; just coarser, None with the reason."""
    L = dips(300, 0.1, [(60 + 45 * i, 60 + 45 * j) for i in range(5) for j in range(5)], 0.4)
    lin, mask = grey_from_L(L), np.ones((300, 300), bool)
    edge = P.PORE_DIAMETER_MM[1] / P._D_PER_S / P.MIN_LARGEST_SIGMA_PX
    finer, coarser = (Analysis(lin, mask, edge * f) for f in (0.98, 1.02))
    assert P.pore_density(finer) is not None and P._why_not(finer) is None
    assert P.pore_density(coarser) is None and P.find_pores(coarser) is None
    assert f"{edge:.2f} mm/px or finer" in P._why_not(coarser)


def test_dark_gaps_between_glints_are_not_pores(monkeypatch):
    """A specular patch (dense bright glints, no dips) next to even skin with real dips:
    the dips are found, the dark gaps between glints reach pore contrast but most do not
    stand out of the patch's texture (`PORE_TEXTURE_RATIO`); without that test they would
    all be counted."""
    n, mmpp = 600, 0.05
    half = n // 2
    rng = np.random.default_rng(5)
    pitch = 1.5 / mmpp
    pores = [(x + rng.uniform(-3, 3), y + rng.uniform(-3, 3))
             for y in np.arange(pitch, n - pitch, pitch) for x in np.arange(pitch, half - pitch, pitch)]
    L = dips(n, mmpp, pores, 0.15)
    glints = rng.uniform([half + 20, 20], [n - 20, n - 20], size=(int(0.006 * half * n), 2))
    L += dips(n, mmpp, glints, 0.1, depth=-12.0) - 62.0  # bright bumps: the glints
    an = Analysis(grey_from_L(L), np.ones((n, n), bool), mmpp)

    def split(found):
        xs = np.array([p.x for p in found])
        return int(np.sum(xs < half - 10)), int(np.sum(xs > half + 10))

    left, right = split(P.find_pores(an))
    assert left == pytest.approx(len(pores), rel=0.05)
    monkeypatch.setattr(P, "PORE_TEXTURE_RATIO", 0.0)
    left0, right0 = split(P.find_pores(Analysis(grey_from_L(L), np.ones((n, n), bool), mmpp)))
    assert left0 == left
    assert right0 > 50 and right < right0 / 3, (right, right0)  # 55 of 184 gaps are left


def test_near_misses_and_found_again():
    """Dips well over the contrast threshold are pores, with their log-margin over it
    (on even skin the contrast threshold binds, not the texture); dips found at about 0.9
    of it are near misses, not counted. A re-capture of the same skin finds the deep pores
    again, so the density's SE is far under the Poisson SE of a random sample of pores
    (docs/NOISE.md), and it grows when the pores lie near the threshold."""
    n, mmpp = 600, 0.05
    pitch = 1.5 / mmpp
    grid = [(x, y) for y in np.arange(pitch, n - pitch, pitch) for x in np.arange(pitch, n - pitch, pitch)]
    deep = [c for c in grid if c[0] < n / 2 - pitch]       # apart: each half's texture is its own
    shallow = [c for c in grid if c[0] > n / 2 + pitch]
    L = dips(n, mmpp, deep, 0.15, depth=6.0) + dips(n, mmpp, shallow, 0.15, depth=P.PORE_CONTRAST) - 62.0
    an = Analysis(grey_from_L(L), np.ones((n, n), bool), mmpp)
    r = P._pores(an)
    assert r.count == pytest.approx(len(deep), rel=0.05)
    assert r.near_margin.size == pytest.approx(len(shallow), rel=0.1)
    np.testing.assert_allclose(r.margin, np.log(r.contrast / P.PORE_CONTRAST), rtol=1e-6)
    assert np.all(r.margin > 0.4)
    assert np.all(r.near_margin < 0) and np.all(r.near_margin >= np.log(P.PORE_NEAR))
    near_xy = np.c_[r.near_x, r.near_y]
    on_dip = [np.hypot(*(near_xy - c).T).min() < 3 for c in shallow]   # placed on the shallow dips
    assert np.mean(on_dip) > 0.9
    left = np.zeros((n, n), bool)
    left[:, : n // 2] = True
    deep_only = an.within(left)
    rd = P._pores(deep_only)
    poisson = 100.0 / rd.area_mm2 * np.sqrt(rd.count)
    se = P._count_noise(deep_only, P.pore_density(deep_only))
    assert se < 0.35 * poisson, (se, poisson)
    # the covered share too: under the compound Poisson SE of its disc areas
    w = np.pi * (rd.diameter_mm / 2) ** 2
    poisson_area = 100.0 / rd.area_mm2 * np.sqrt(np.sum(w * w))
    assert P._area_noise(deep_only, P.area_pct(deep_only)) < 0.5 * poisson_area
    assert rd.near_diameter_mm.size == rd.near_x.size
    # the same skin with every pore about at the threshold flickers more than with every
    # pore deep: its relative SE is over twice as large
    rel = {}
    for depth in (6.0, 1.1 * P.PORE_CONTRAST):
        a = Analysis(grey_from_L(dips(n, mmpp, grid, 0.15, depth=depth)), np.ones((n, n), bool), mmpp)
        rel[depth] = P._count_noise(a, P.pore_density(a)) / P.pore_density(a)
    r2 = P._pores(a)
    assert 0 < r2.count < len(grid) / 2 and r2.near_margin.size > len(grid) / 2
    pf, pn = r2.found_again()
    assert 0.2 < np.median(pf) < 0.8 and np.median(pn) < np.median(pf)
    assert rel[1.1 * P.PORE_CONTRAST] > 2 * rel[6.0], rel


def test_zone_views_keep_their_near_misses():
    n, mmpp = 600, 0.05
    pitch = 1.5 / mmpp
    grid = [(x, y) for y in np.arange(pitch, n - pitch, pitch) for x in np.arange(pitch, n - pitch, pitch)]
    L = dips(n, mmpp, grid, 0.15, depth=P.PORE_CONTRAST)
    mask = np.ones((n, n), bool)
    an = Analysis(grey_from_L(L), mask, mmpp)
    half = mask.copy()
    half[:, n // 2:] = False
    r = P._pores(an)
    part = P._pores(an.within(half))
    assert P._pores(an) is r
    assert part is not None and 0 < part.near_x.size < r.near_x.size
    assert np.all(part.near_x < n // 2)


def test_contrast_is_continuous_across_the_resampling_switch():
    """The pore grid is resampled only when the working level is over 5 % finer than
    `PORE_MM_PER_PX`; the same photo declared 3 % finer or coarser than that switch gives
    the same pores at the same depth (bilinear sampling made them ~12 % shallower on the
    resampled side, and the count jumped)."""
    n, mmpp = 700, 0.0675
    pitch = 1.5 / mmpp
    rng = np.random.default_rng(3)
    centres = [(x + rng.uniform(-3, 3), y + rng.uniform(-3, 3))
               for y in np.arange(pitch, n - pitch, pitch) for x in np.arange(pitch, n - pitch, pitch)]
    rgb = grey_from_L(dips(n, mmpp, centres, 0.15, depth=4.0))
    switch = P.PORE_MM_PER_PX / 2 / 1.05          # level factor 2, resampled below this mm/px
    res = {}
    for mm in (switch * 0.985, switch * 1.015):
        r = P._pores(Analysis(rgb, np.ones((n, n), bool), mm))
        res[mm] = (r.count, float(np.median(r.contrast)))
    (n_fine, c_fine), (n_coarse, c_coarse) = res.values()
    assert c_fine == pytest.approx(c_coarse, rel=0.04), res
    assert n_fine == pytest.approx(n_coarse, rel=0.03), res


def test_capture_term_rises_where_pores_reach_the_resolution_limit():
    assert P.pore_capture_cv(P.PORE_MM_PER_PX) == P.PORE_COUNT_CAPTURE_CV
    assert P.pore_capture_cv(0.1) == P.PORE_COUNT_CAPTURE_CV
    assert P.pore_capture_cv(0.29) == P.PORE_COUNT_CAPTURE_CV_COARSE
    mid = (P.PORE_MM_PER_PX + P.PORE_COARSE_MM_PER_PX) / 2
    both = (P.PORE_COUNT_CAPTURE_CV, P.PORE_COUNT_CAPTURE_CV_COARSE)
    assert P.pore_capture_cv(mid) == pytest.approx(sum(both) / 2)
