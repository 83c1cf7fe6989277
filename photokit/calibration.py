"""Colour calibration (placeholder until the colour issue lands: reports no card)."""

from __future__ import annotations


def describe_calibration(photo) -> dict:
    """Calibration summary for ``check``: which card was found and how well it fits."""
    return {"method": "none", "delta_e_mean": None}
