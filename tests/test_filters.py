"""`photokit.imaging.filters.gaussian` against OpenCV's GaussianBlur (the reference it replaces)."""

import cv2
import numpy as np
import pytest

from photokit.imaging.filters import channel_max, channel_max_within, gaussian, halved, percentile_u8, shrink


@pytest.mark.parametrize("sigma", [0.3, 0.62, 0.8, 1.0, 1.55, 2.46, 3.9, 7.5])
@pytest.mark.parametrize("shape", [(37, 53), (120, 90, 2)])
def test_gaussian_matches_opencv(sigma, shape):
    x = np.random.default_rng(1).normal(50, 10, shape).astype(np.float32)
    ref = cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(gaussian(x, sigma), ref, rtol=0, atol=1e-4)


def test_gaussian_anisotropic_and_border():
    x = np.random.default_rng(2).random((64, 80), dtype=np.float32)
    ref = cv2.GaussianBlur(x, (0, 0), sigmaX=1.3, sigmaY=2.1, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(gaussian(x, 1.3, 2.1, border=cv2.BORDER_REPLICATE), ref, atol=1e-5)


def test_gaussian_preserves_mean_and_rejects_bad_input():
    x = np.zeros((51, 51), np.float32)
    x[25, 25] = 1.0
    y = gaussian(x, 2.0)
    assert y.sum() == pytest.approx(1.0, abs=1e-5)
    assert y[25, 25] == pytest.approx(1 / (2 * np.pi * 4), rel=0.02)  # peak of a 2-D Gaussian
    with pytest.raises(TypeError):
        gaussian(x.astype(np.float64), 1.0)
    with pytest.raises(ValueError):
        gaussian(x, 0.0)


def test_shrink_is_an_area_average():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    # integer factor: the same block means as one area resize, up to a rounding per halving
    ref = cv2.resize(img, (160, 120), interpolation=cv2.INTER_AREA)
    out = shrink(img, (160, 120))
    assert out.shape == ref.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref).max() <= 2
    # non-integer factor: still the image mean, and a smooth image is unchanged
    f = shrink(img.astype(np.float32), (100, 75))
    assert f.shape == (75, 100, 3)
    np.testing.assert_allclose(f.mean(axis=(0, 1)), img.reshape(-1, 3).mean(axis=0), rtol=2e-3)
    ramp = np.tile(np.linspace(0, 1, 640, dtype=np.float32), (480, 1))
    np.testing.assert_allclose(shrink(ramp, (64, 48))[:, 1:-1],
                               cv2.resize(ramp, (64, 48), interpolation=cv2.INTER_AREA)[:, 1:-1], atol=1e-3)
    assert shrink(img, (640, 480)) is img


def test_halvings_of_a_read_only_array_are_made_once_and_equal_fresh_ones():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (403, 601, 3), dtype=np.uint8)
    fresh = [img]
    for _ in range(3):
        fresh.append(cv2.resize(fresh[-1], (fresh[-1].shape[1] // 2, fresh[-1].shape[0] // 2),
                                interpolation=cv2.INTER_AREA))
    # a writeable array: halved afresh each call (it may change between calls)
    assert halved(img, 2) is not halved(img, 2)
    np.testing.assert_array_equal(halved(img, 2), fresh[2])
    ro = img.view()
    ro.flags.writeable = False
    two = halved(ro, 2)
    assert halved(ro, 2) is two and halved(ro, 1) is halved(ro, 1) and halved(ro, 0) is ro
    assert not two.flags.writeable
    for k in range(4):
        np.testing.assert_array_equal(halved(ro, k), fresh[k])
    # shrink reads the shared halvings: the same pixels as on the writeable array
    for size in ((150, 100), (120, 90), (75, 50), (601, 403)):
        np.testing.assert_array_equal(shrink(ro, size), shrink(img, size))
    # the memo goes with the array
    from photokit.imaging import filters
    key = id(ro)
    assert key in filters._HALVINGS
    del ro, two
    import gc
    gc.collect()
    assert key not in filters._HALVINGS


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_channel_max_equals_numpy(dtype):
    rng = np.random.default_rng(5)
    img = (rng.random((37, 53, 3)) * 250).astype(dtype)
    np.testing.assert_array_equal(channel_max(img), img.max(axis=-1))
    assert channel_max(img).dtype == dtype
    # a pixel list (N, 1, 3), as a masked subset is passed, and a strided view
    sub = img[img[..., 0] > 100][:, None, :]
    np.testing.assert_array_equal(channel_max(sub), sub.max(axis=-1))
    np.testing.assert_array_equal(channel_max(img[::2, ::3]), img[::2, ::3].max(axis=-1))


def test_percentile_u8_equals_numpy():
    rng = np.random.default_rng(9)
    for n in (1, 2, 5, 999, 50_000):
        for v in (rng.integers(0, 256, n), np.clip(rng.normal(200, 2, n), 0, 255)):
            v = v.astype(np.uint8)
            for q in (0, 0.5, 20, 50, 99, 99.5, 100):
                assert percentile_u8(v, q) == pytest.approx(np.percentile(v, q), abs=1e-9)
    with pytest.raises(ValueError):
        percentile_u8(np.zeros(0, np.uint8), 50)


def test_channel_max_within_is_the_numpy_range_test():
    """Not clipped in any channel and not black in every channel: lo <= max <= hi, by
    row blocks that do not divide the height; ANDed into a given mask in place."""
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (301, 77, 3), dtype=np.uint8)
    img[:20] = rng.integers(0, 5, (20, 77, 3))            # near-black rows
    want = ((img.max(axis=-1) >= 4) & (img.max(axis=-1) <= 249)).astype(np.uint8)
    np.testing.assert_array_equal(channel_max_within(img, 4, 249, rows=64), want)
    prior = rng.integers(0, 2, (301, 77), dtype=np.uint8)
    out = prior.copy()
    assert channel_max_within(img, 4, 249, out=out, rows=50) is out
    np.testing.assert_array_equal(out, prior & want)
