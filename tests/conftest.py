"""Shared fixtures: small images made here, never downloaded, never from ../shared."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real colour portrait (public domain, ships with scikit-image), 512x512 RGB uint8."""
    return skimage.data.astronaut()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
