"""Colour calibration, three ways, reported in every result (``calibration.method``).

- ``checker``: a ColorChecker 24 in frame is found (`photokit.colour.checker.find_card`), a
  colour correction is fitted to its published values (tone response from the neutral
  row, then a matrix in linear RGB) and applied; the residual mean dE2000 of the card is
  reported as ``delta_e_mean``.
- ``reference``: untreated reference skin in the same photo (``--reference-roi``) is
  brought to a target colour, the BEFORE photo's reference skin, by a per-channel gain
  in linear RGB, ``g_c = target_c / mean_c(reference skin)``. This cancels exposure and
  white-balance changes between visits (the delta-a*-against-untreated-skin design of
  clinical studies). On the BEFORE photo itself (no target yet) the reference is only
  recorded.
- ``none``: nothing to calibrate against; numbers are flagged as uncalibrated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import PhotokitError
from ..imaging.filters import channel_max
from .checker import find_card, fit_card
from .convert import linear_to_lab, srgb_to_linear
from .linear import CodedLinear

#: Calibration modes accepted by `calibrate` (and ``measure(calibration=...)``).
MODES = ("auto", "checker", "none")

#: Share (%) of clipped or black reference-skin pixels above which the gain is flagged:
#: on real portraits over-exposed by x1.35, a forehead 10-20% clipped biased delta a* by
#: up to 1.7 (benchmarks/bench_colour.py, table 6).
MAX_REFERENCE_CLIPPED_PCT = 5.0


@dataclass
class Calibration:
    """How a photo's colour was made comparable.

    Attributes
    ----------
    method : str
        ``checker``, ``reference`` or ``none``.
    delta_e_mean : float or None
        Mean residual CIEDE2000 of the card patches after correction (checker only).
        ``to_dict`` adds ``delta_e_loo_mean`` beside it when a card was fitted: the
        leave-one-out error (each patch corrected by a fit on the other 23), the error
        to expect on colours that are not on the card.
    card : object or None
        The card found (`photokit.colour.checker.Card`), also when the reference method won.
    gains : ndarray or None
        Per-channel linear gains applied for the reference method.
    reference_rgb : ndarray or None
        Mean linear RGB of the reference skin *before* the gains (the target for later
        visits when this photo is the baseline).
    note : str
        Plain-language remark for reports.
    """

    method: str = "none"
    delta_e_mean: float | None = None
    card: object = None
    gains: np.ndarray | None = None
    reference_rgb: np.ndarray | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        return self.method != "none"

    def to_dict(self) -> dict:
        d = {"method": self.method,
             "delta_e_mean": None if self.delta_e_mean is None else round(float(self.delta_e_mean), 3)}
        if self.card is not None:
            d["card_found"] = True
            d["card_corners"] = np.round(np.asarray(self.card.corners, float), 1).tolist()
            loo = getattr(getattr(self.card, "correction", None), "delta_e_loo_mean", None)
            if loo is not None:   # the error to expect on colours that are not on the card
                d["delta_e_loo_mean"] = round(float(loo), 3)
            if self.method != "checker" and self.delta_e_mean is None:
                d["card_delta_e_mean"] = self.extra.get("card_delta_e_mean")
        if self.gains is not None:
            d["gains"] = [round(float(g), 4) for g in self.gains]
        if self.reference_rgb is not None:
            d["reference_rgb"] = [round(float(v), 5) for v in self.reference_rgb]
        if self.note:
            d["note"] = self.note
        d.update(self.extra)
        return d


def _card_correction(pixels: np.ndarray):
    """The card in a photo and its fitted correction, or (None, None)."""
    rgb8 = pixels if pixels.dtype == np.uint8 else (pixels >> 8).astype(np.uint8)
    card = find_card(rgb8)
    if card is None:
        return None, None
    if pixels.dtype != np.uint8:  # refit on the full 16-bit code values
        card.patch_codes = card.patch_codes_from(pixels)
        card.correction = fit_card(card.patch_codes)
    return card, card.correction


def calibrate(pixels: np.ndarray, *, mode: str = "auto",
              reference_mask: np.ndarray | None = None,
              reference_target: np.ndarray | None = None,
              path: str | None = None) -> tuple[CodedLinear, Calibration]:
    """Calibrate a photo's colour; returns its calibrated linear RGB and what was done.

    Parameters
    ----------
    pixels : ndarray, uint8 or uint16 (H, W, 3)
        The photo's code values as decoded.
    mode : {"auto", "checker", "none"}
        ``auto`` uses a card when one is found; ``checker`` requires one; ``none`` skips
        the card. The reference method applies whenever `reference_mask` is given.
    reference_mask : ndarray of bool, optional
        Untreated reference skin.
    reference_target : array_like of 3 floats, optional
        Linear RGB the reference skin should have (the BEFORE photo's reference).
    path : str, optional
        Named in errors.

    Returns
    -------
    linear : CodedLinear
        The calibrated linear RGB, converted from `pixels` where it is read (sRGB
        decoding, or the card's correction; times the reference gains).
    calibration : Calibration
    """
    if mode not in MODES:
        raise ValueError(f"calibration must be one of {MODES}, not {mode!r}")
    cal = Calibration()
    linear = CodedLinear(pixels)
    if mode != "none":
        card, corr = _card_correction(pixels)
        if card is None and mode == "checker":
            raise PhotokitError("no colour card found in the photo (calibration='checker')", path)
        if card is not None:
            linear = CodedLinear(pixels, corr.apply_codes if pixels.dtype == np.uint8 else
                                 lambda block: corr.apply_codes(block.astype(np.float32) / 65535.0))
            cal = Calibration("checker", float(corr.delta_e_mean), card,
                              note=f"ColorChecker in frame, residual mean dE2000 {corr.delta_e_mean:.2f}")
    if reference_mask is not None:
        ref = np.asarray(reference_mask, bool)
        # clipped (or black) pixels do not scale with the light: leave them out of the gain
        top = 65535 if pixels.dtype == np.uint16 else 255
        hi = channel_max(pixels)   # pixels are (H, W, 3): CodedLinear requires it
        n_given = max(1, int(np.count_nonzero(ref)))
        ref = ref & (hi < top * 254 / 255) & (hi > top * 3 / 255)
        clipped_pct = 100.0 * (1 - np.count_nonzero(ref) / n_given)
        if np.count_nonzero(ref) < 50:
            raise PhotokitError("the reference ROI covers almost no usable pixels", path)
        ref_rgb = linear.pixels(ref).mean(axis=0).astype(np.float64)
        if not np.all(ref_rgb > 1e-4):
            raise PhotokitError("the reference ROI is black in at least one channel", path)
        card_de = cal.delta_e_mean
        cal = Calibration("reference", None, cal.card, reference_rgb=ref_rgb,
                          extra={"card_delta_e_mean": card_de} if cal.card is not None else {})
        cal.extra["reference_clipped_pct"] = round(clipped_pct, 2)
        if clipped_pct > MAX_REFERENCE_CLIPPED_PCT:
            cal.extra["warning"] = (f"{clipped_pct:.0f}% of the reference skin is clipped or black: "
                                    "the remaining pixels are a biased sample, the gain is unreliable")
        if reference_target is not None:
            gains = np.asarray(reference_target, np.float64) / ref_rgb
            linear = linear.scaled(gains)
            cal.gains = gains
            cal.note = "colour normalised to the baseline's reference skin (per-channel gain)"
        else:
            cal.note = "reference skin recorded as the anchor for later visits"
    if not cal.calibrated:
        cal.note = "no colour card and no reference skin: colour is uncalibrated"
    return linear, cal


def describe_calibration(photo) -> dict:
    """Calibration summary for ``check``: whether a card is in frame and how well it fits."""
    if not photo.is_colour:
        return {"method": "none", "delta_e_mean": None, "note": "greyscale photo"}
    card, corr = _card_correction(photo.pixels)
    if card is None:
        return {"method": "none", "delta_e_mean": None}
    out = {"method": "checker", "delta_e_mean": round(float(corr.delta_e_mean), 3),
           "card_corners": np.round(np.asarray(card.corners, float), 1).tolist()}
    chroma = neutral_chroma(card.patch_codes)
    if chroma is not None:
        out["neutral_chroma"] = round(chroma, 2)
    if corr.delta_e_loo_mean is not None:
        out["delta_e_loo_mean"] = round(float(corr.delta_e_loo_mean), 3)
    return out


#: The ColorChecker's four middle greys (neutral 8, 6.5, 5, 3.5), in reading order.
NEUTRAL_PATCHES = slice(19, 23)


def neutral_chroma(patch_codes: np.ndarray) -> float | None:
    """How tinted the card's greys look before any correction: ``C* = hypot(a*, b*)`` of
    the mean CIELAB of its four middle grey patches (`NEUTRAL_PATCHES`; codes 0-1, sRGB),
    the photo's colour cast measured on a surface known to be neutral (their own chroma
    is under 1); None when a grey is clipped, nearly black or unreadable (a clipped grey
    reads neutral whatever the cast)."""
    greys = np.asarray(patch_codes, np.float32)[NEUTRAL_PATCHES]
    if not np.isfinite(greys).all() or greys.max() >= 0.98 or greys.max(axis=1).min() <= 0.02:
        return None
    lab = linear_to_lab(srgb_to_linear(greys[None]))[0]
    return float(np.hypot(*lab[:, 1:].mean(axis=0)))
