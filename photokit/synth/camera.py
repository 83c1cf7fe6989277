"""The camera of a synthetic photo: pose, illumination, optics, sensor noise, JPEG.

A photo is formed from the scene's linear reflectance ``rho`` (canonical frame) as

``I_c(p) = clip(g_c * F(p) * (PSF * rho_c)(H p) + n_c(p))``, then sRGB-encoded to 8 bits
and JPEG-compressed,

with ``H`` the homography from photo pixels to the canonical frame (SPEC convention: it
maps THIS photo's pixel onto the baseline pixel), ``g_c`` the per-channel gains
(`Camera.channel_gains`: exposure x illuminant colour relative to D65 x white-balance
error), ``F`` the spatial illumination field (`Camera.illumination_field`: a linear
gradient and radial vignetting, 1 at the image centre), the PSF a Gaussian of
``blur_px`` and ``n_c`` signal-dependent Gaussian noise with variance
``noise_read**2 + noise_shot * I``.

Undo the camera on a photo (to compare with the truth): decode sRGB to linear, divide by
``g_c * F(p)``; resample through ``H`` onto the canonical grid if needed.

References
----------
B. Kang, O. Moon, C. Hong, H. Lee, B. Cho, Y. Kim, "Design of advanced color temperature
control system for HDTV applications", J. Korean Phys. Soc. 41(6):865-871 (2002)
(Planckian locus chromaticity used for `cct_rgb`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..colour.convert import SRGB_TO_XYZ


def planck_xy(cct_k: float) -> tuple[float, float]:
    """CIE 1931 chromaticity of a Planckian radiator, Kang et al. (2002), 1667-25000 K."""
    T = float(np.clip(cct_k, 1667.0, 25000.0))
    if T <= 4000:
        x = -0.2661239e9 / T**3 - 0.2343589e6 / T**2 + 0.8776956e3 / T + 0.179910
    else:
        x = -3.0258469e9 / T**3 + 2.1070379e6 / T**2 + 0.2226347e3 / T + 0.240390
    if T <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif T <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def cct_rgb(cct_k: float) -> np.ndarray:
    """Linear-sRGB colour of a Planckian illuminant relative to 6504 K (green = 1).

    A camera white-balanced for daylight sees a warmer light as these channel gains
    (von Kries: a diagonal change in linear RGB).
    """
    def rgb(T):
        x, y = planck_xy(T)
        xyz = np.array([x / y, 1.0, (1 - x - y) / y])
        return np.linalg.solve(SRGB_TO_XYZ, xyz)

    g = rgb(cct_k) / rgb(6504.0)
    return g / g[1]


@dataclass
class Camera:
    """How one photo is taken. `Camera()` is an ideal camera at the canonical pose
    except for mild sensor noise, a slight blur and JPEG quality 92; `Camera.ideal()`
    has none of those (the photo then equals the sRGB encoding of the reflectance).

    Attributes
    ----------
    rotation_deg, scale, shift_px, perspective
        Pose of the canonical scene in this photo: rotation (deg, about the frame centre,
        image x towards y), magnification (> 1: closer), translation (px) and the two
        projective terms of the canonical->photo homography (per px, ~1e-5 is mild).
    homography : array or None
        Overrides the pose: the 3x3 map from THIS photo's pixels to the canonical frame.
    exposure : float
        Global gain on linear values.
    cct_k : float
        Colour temperature of the light (camera balanced for 6504 K).
    wb_gains : (float, float, float)
        Extra per-channel white-balance error.
    gradient, gradient_angle_deg
        Linear illumination gradient: relative change from the centre to the end of the
        half-diagonal, and its direction.
    vignetting : float
        Relative fall-off at the corners (radial, quadratic).
    blur_px : float
        Gaussian optical blur, sigma in pixels (0 = none).
    noise_read, noise_shot : float
        Noise variance ``noise_read**2 + noise_shot * I`` on linear values (0 = none).
    jpeg_quality : int or None
        JPEG quality; None keeps the 8-bit sRGB pixels unchanged.
    noise_seed : int
        Which noise realisation (combined with the skin seed).
    colour_matrix : 3x3 or None
        A camera colour error mixing the channels, applied to linear RGB after the gains
        (``rgb' = M @ rgb``); None = identity. Tests colour-correction-matrix fitting.
    glare, glare_centre, glare_radius
        Specular glare on oily skin: ``glare * exp(-r^2 / (2 s^2))`` added to all channels
        (times the illuminant colour) at ``glare_centre`` (frame fractions) with ``s =
        glare_radius * width``, modulated by the skin micro-relief; 0 = none. It is not
        part of the reflectance truth (it biases colour measurement, as real glare does);
        ``truth.camera["glare_region"]`` says where it exceeds 0.02.
    """

    rotation_deg: float = 0.0
    scale: float = 1.0
    shift_px: tuple[float, float] = (0.0, 0.0)
    perspective: tuple[float, float] = (0.0, 0.0)
    homography: np.ndarray | None = None
    exposure: float = 1.0
    cct_k: float = 6504.0
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gradient: float = 0.0
    gradient_angle_deg: float = 0.0
    vignetting: float = 0.0
    blur_px: float = 0.6
    noise_read: float = 0.0015
    noise_shot: float = 0.00015
    jpeg_quality: int | None = 92
    noise_seed: int = 0
    colour_matrix: tuple | None = None
    glare: float = 0.0
    glare_centre: tuple[float, float] = (0.55, 0.35)
    glare_radius: float = 0.12

    @classmethod
    def ideal(cls, **changes) -> Camera:
        """No blur, no noise, no JPEG: the photo is the sRGB-encoded scene."""
        return cls(blur_px=0.0, noise_read=0.0, noise_shot=0.0, jpeg_quality=None).replace(**changes)

    @classmethod
    def random(cls, rng: np.random.Generator | int, strength: float = 1.0, *, pose: bool = True,
               light: bool = True, **changes) -> Camera:
        """A plausible repeat capture: small pose change and a different light.

        At ``strength=1``: rotation +/-3 deg, scale 0.96-1.04, shift +/-40 px, perspective
        up to 1.5e-5/px, exposure 0.85-1.15, 4800-6800 K, white-balance error +/-3 %,
        gradient up to 0.12, vignetting up to 0.1.
        """
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        s = float(strength)
        u = rng.uniform
        kw = {}
        if pose:
            kw.update(rotation_deg=u(-3, 3) * s, scale=1 + u(-0.04, 0.04) * s,
                      shift_px=(u(-40, 40) * s, u(-40, 40) * s),
                      perspective=(u(-1.5e-5, 1.5e-5) * s, u(-1.5e-5, 1.5e-5) * s))
        if light:
            kw.update(exposure=1 + u(-0.15, 0.15) * s, cct_k=6504 + u(-1700, 300) * s,
                      wb_gains=tuple(1 + u(-0.03, 0.03, 3) * s), gradient=u(0, 0.12) * s,
                      gradient_angle_deg=u(0, 360), vignetting=u(0, 0.1) * s)
        kw.update(changes)
        return cls(**kw)

    def replace(self, **changes) -> Camera:
        return dataclasses.replace(self, **changes)

    # ----------------------------------------------------------------- geometry
    def photo_to_canonical(self, width: int, height: int) -> np.ndarray:
        """3x3 homography mapping THIS photo's pixels to canonical pixels (``H[2,2] = 1``)."""
        if self.homography is not None:
            H = np.asarray(self.homography, dtype=np.float64)
            return H / H[2, 2]
        return _normalise(np.linalg.inv(self.canonical_to_photo(width, height)))

    def canonical_to_photo(self, width: int, height: int) -> np.ndarray:
        """The inverse map: canonical pixel -> this photo's pixel."""
        if self.homography is not None:
            return _normalise(np.linalg.inv(np.asarray(self.homography, dtype=np.float64)))
        cx, cy = (width - 1) / 2, (height - 1) / 2
        a = math.radians(self.rotation_deg)
        s = self.scale
        to_origin = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
        rs = np.array([[s * math.cos(a), -s * math.sin(a), 0],
                       [s * math.sin(a), s * math.cos(a), 0], [0, 0, 1]])
        persp = np.array([[1, 0, 0], [0, 1, 0], [self.perspective[0], self.perspective[1], 1]])
        back = np.array([[1, 0, cx + self.shift_px[0]], [0, 1, cy + self.shift_px[1]], [0, 0, 1]])
        return _normalise(back @ persp @ rs @ to_origin)

    # ----------------------------------------------------------------- light
    def channel_gains(self) -> np.ndarray:
        """Per-channel linear gains ``exposure * cct_rgb(cct_k) * wb_gains`` (R, G, B)."""
        return (self.exposure * cct_rgb(self.cct_k) * np.asarray(self.wb_gains, dtype=np.float64))

    def illumination_field(self, width: int, height: int) -> np.ndarray:
        """Spatial illumination factor ``F(x, y)`` (float32, 1 at the image centre).

        ``F = (1 + gradient * d) * (1 - vignetting * r^2)`` with ``d`` the signed distance
        from the centre along ``gradient_angle_deg`` and ``r`` the distance from the centre,
        both divided by the half-diagonal.
        """
        cx, cy = (width - 1) / 2, (height - 1) / 2
        half = math.hypot(cx, cy)
        y, x = np.ogrid[0:height, 0:width]
        xn = (x.astype(np.float32) - cx) / half
        yn = (y.astype(np.float32) - cy) / half
        a = math.radians(self.gradient_angle_deg)
        d = xn * math.cos(a) + yn * math.sin(a)
        return ((1 + self.gradient * d) * (1 - self.vignetting * (xn * xn + yn * yn))).astype(np.float32)

    def to_dict(self, width: int, height: int) -> dict:
        return {
            "pose": {"rotation_deg": self.rotation_deg, "scale": self.scale,
                     "shift_px": list(self.shift_px), "perspective": list(self.perspective),
                     "given_homography": self.homography is not None},
            "illumination": {
                "exposure": self.exposure, "cct_k": self.cct_k, "wb_gains": list(self.wb_gains),
                "channel_gains": self.channel_gains().round(6).tolist(),
                "gradient": self.gradient, "gradient_angle_deg": self.gradient_angle_deg,
                "vignetting": self.vignetting,
                "formula": ("linear_photo(x,y) = channel_gains * F(x,y) * reflectance(H @ [x,y,1]); "
                            "F = (1 + gradient*d) * (1 - vignetting*r^2), d, r from the image centre "
                            "/ half-diagonal, d along gradient_angle_deg"),
            },
            "blur_px": self.blur_px, "noise_read": self.noise_read, "noise_shot": self.noise_shot,
            "jpeg_quality": self.jpeg_quality, "noise_seed": self.noise_seed,
            "colour_matrix": None if self.colour_matrix is None
            else np.asarray(self.colour_matrix, dtype=float).reshape(3, 3).tolist(),
            "glare": {"peak": self.glare, "centre": [self.glare_centre[0] * (width - 1),
                                                     self.glare_centre[1] * (height - 1)],
                      "sigma_px": self.glare_radius * width},
        }


def _normalise(H: np.ndarray) -> np.ndarray:
    return H / H[2, 2]


_ENCODE_LUT = None


def linear_to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear ``[0, 1]`` float32 -> 8-bit sRGB by a 16-bit look-up table (IEC 61966-2-1)."""
    global _ENCODE_LUT
    if _ENCODE_LUT is None:
        from ..colour.convert import linear_to_srgb

        v = np.arange(65536, dtype=np.float32) / 65535.0
        _ENCODE_LUT = np.round(linear_to_srgb(v) * 255.0).astype(np.uint8)
    idx = (np.clip(linear, 0.0, 1.0) * np.float32(65535.0) + np.float32(0.5)).astype(np.uint16)
    return _ENCODE_LUT[idx]


def to_photo_frame(world: np.ndarray, margin: int, width: int, height: int, camera: Camera) -> np.ndarray:
    """Resample a world-canvas image into this photo's frame (bilinear, through ``H``)."""
    H = camera.photo_to_canonical(width, height)
    T = np.array([[1, 0, margin], [0, 1, margin], [0, 0, 1]], dtype=np.float64)
    M = T @ H
    if np.allclose(M, T) and world.shape[:2] == (height + 2 * margin, width + 2 * margin):
        return world[margin:margin + height, margin:margin + width].copy()
    return cv2.warpPerspective(world, M, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)


def glare_field(camera: Camera, width: int, height: int, sparkle: np.ndarray | None = None) -> np.ndarray:
    """Added specular intensity (float32, photo frame): a Gaussian highlight, broken up by
    the surface micro-relief when `sparkle` (unit-mean, photo frame) is given."""
    cx, cy = camera.glare_centre[0] * (width - 1), camera.glare_centre[1] * (height - 1)
    s = camera.glare_radius * width
    y, x = np.ogrid[0:height, 0:width]
    gl = np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))).astype(np.float32)
    gl *= np.float32(camera.glare)
    if sparkle is not None:
        gl *= sparkle
    return gl


def expose(world_reflectance: np.ndarray, margin: int, width: int, height: int, camera: Camera,
           rng: np.random.Generator | None,
           sparkle: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Take the photo of the world canvas: returns ``(linear_noise_free, srgb8)``.

    ``linear_noise_free`` is the photo's linear RGB before noise and quantisation (float32);
    ``srgb8`` the 8-bit sRGB image before JPEG.
    """
    lin = to_photo_frame(world_reflectance, margin, width, height, camera)
    if camera.blur_px > 0:
        lin = cv2.GaussianBlur(lin, (0, 0), camera.blur_px)
    g = camera.channel_gains().astype(np.float32)
    F = camera.illumination_field(width, height)
    lin *= g
    if camera.gradient or camera.vignetting:
        lin *= F[..., None]
    if camera.colour_matrix is not None:
        M = np.asarray(camera.colour_matrix, dtype=np.float32).reshape(3, 3)
        lin = cv2.transform(lin, M)
    if camera.glare > 0:
        lin += glare_field(camera, width, height, sparkle)[..., None] * (g / g[1])
    noisy = lin
    if rng is not None and (camera.noise_read > 0 or camera.noise_shot > 0):
        sd = np.sqrt(np.float32(camera.noise_read ** 2) + np.float32(camera.noise_shot) * np.maximum(lin, 0))
        noisy = lin + sd * rng.standard_normal(lin.shape, dtype=np.float32)
    return lin, linear_to_srgb8(noisy)
