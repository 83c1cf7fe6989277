"""Ground-truth synthetic skin photos, before/after pairs and treatment series.

Every accuracy claim of photokit is tested against this generator: it renders skin from
chromophores (melanin and haemoglobin in optical density, Beer-Lambert), shades it with a
surface (micro-relief, fine lines, pores), places known spots, erythema and needle marks,
and photographs it with a known camera (pose, light, blur, noise, JPEG). The truth of
every photo is exact and comes with it.

Quick use
---------
>>> from photokit import synth
>>> im = synth.render_skin(seed=1)                          # light cheek skin, 1600x1200
>>> im.pixels                                               # uint8 RGB, as a JPEG decoder reads it
>>> im.truth.metrics["redness.a_mean"]                      # true mean a* of the ROI
>>> im.truth.to_dict()                                      # the ground-truth JSON
>>> synth.render_skin(seed=1, brown_spots=5, brown_spot_radius_mm=(1, 3))   # N spots of 1-3 mm
>>> synth.render_skin(seed=1, roughness=0.7)                # the same skin, texture x 0.7
>>> synth.render_skin(seed=1, ita=-20, card=True)           # brown skin, ColorChecker in frame
>>> pair = synth.make_pair(2, erythema=0.3, exposure=1.15, cct_k=5200)
>>> pair.homography, pair.delta["redness.a_mean"]           # AFTER->BEFORE, true change of a*
>>> synth.make_pair(2, delta_a=1.5).delta["redness.a_mean"]  # 1.5: a pair with a chosen true change
>>> synth.make_series("out/", seed=3, sessions=3, tau_days=2.5)   # a treatment course on disk

API
---
`render_skin(params=None, seed=0, *, camera=None, **changes) -> SynthImage`
    One photo. ``changes`` are any `SkinParams` or `Camera` fields. `SynthImage` has
    ``pixels`` (uint8 RGB), ``truth`` (`SynthTruth`), ``reflectance`` (canonical,
    noise-free linear RGB), ``linear`` (this photo before noise), ``melanin`` /
    ``haemoglobin`` (canonical OD maps), ``mask(region, frame)`` (``skin``, ``roi``,
    ``treated``, ``reference``; ``photo`` or ``canonical`` frame), ``undo_camera()``
    (linear RGB with the known gains divided out), ``save(path, date=...)`` (JPEG/PNG with
    EXIF DateTimeOriginal, plus ``<name>.json``).
`make_pair(seed=0, params=None, *, camera_before=None, camera_after=None, pose=True, delta_a=None,
**changes) -> SynthPair`
    ``before``, ``after`` (SynthImages), ``homography`` (AFTER pixel -> BEFORE pixel),
    ``delta`` (true after - before of every truth metric over the ROI), ``gain_ratio``.
    ``delta_a=2.0`` solves AFTER's erythema dose for that true change of mean a*
    (`erythema_for_a`).
`make_series(outdir=None, seed=0, *, plan=None, params=None, **plan_changes) -> SeriesResult`
    A microneedling course (`SeriesPlan`: sessions, interval, visit days, tau, dose,
    improvements, ``flat``); writes photos, truth JSON, ``manifest.csv``, ``series.json``,
    ``roi.json``, ``reference_roi.json``, ``contact_sheet.png``.
`render_capture(seed, index, *, plan=None, params=None, **plan_changes) -> (SynthImage, capture)`
    One photo of that series without rendering the others (identical pixels and truth).
`SkinParams`, `Camera`, `SeriesPlan`
    Dataclasses of the scene, the capture and the course (all lengths in mm).
`SynthTruth`
    The truth dataclass (``to_dict()``, ``save()``, ``load()``, ``to_photo()``,
    ``to_canonical()``).
`melanin_for_ita`, `cct_rgb`, `ABSORPTION_MELANIN`, `ABSORPTION_HAEMOGLOBIN`, `BASELINE_OD`
    The colour model, for chromophore tests.

Frames and conventions
----------------------
The *canonical frame* is the scene seen by a camera at the canonical pose (the baseline
photo of a series, the BEFORE photo of a pair by default), at ``mm_per_px``. Each truth's
``homography`` maps THIS photo's pixel to the canonical pixel, ``[xc, yc, 1] ~ H @ [x, y,
1]`` (SPEC: AFTER -> BEFORE). Pixel coordinates have the origin top-left, integer = pixel
centre. Colour truth (``stats``, ``metrics``) is computed on the noise-free, camera-free
canonical reflectance (unit gain, D65), over the ``roi`` (uniformly treated skin), the
``reference`` (untreated skin) and all ``skin``.

Truth of the same skin on other days is comparable because the skin's random structure
depends only on ``seed`` and its identity parameters; the state parameters (``melanin``,
``haemoglobin``, ``roughness``, ``pore_depth``, ``spot_contrast``, ``wrinkle_depth``,
``erythema``, ``bleeding``, ...) only scale it.

See `photokit.synth.skin` (colour and surface model, with references),
`photokit.synth.camera` (image formation), `photokit.synth.card`, `photokit.synth.series`.
"""

from .camera import Camera, cct_rgb
from .render import SynthImage, SynthPair, erythema_for_a, make_pair, render_skin
from .series import SeriesPlan, SeriesResult, contact_sheet_image, make_series, render_capture
from .skin import (
    ABSORPTION_HAEMOGLOBIN,
    ABSORPTION_MELANIN,
    BASELINE_OD,
    SkinParams,
    clear_cache,
    melanin_for_ita,
)
from .truth import SynthTruth

__all__ = [
    "ABSORPTION_HAEMOGLOBIN", "ABSORPTION_MELANIN", "BASELINE_OD", "Camera", "SeriesPlan", "clear_cache",
    "SeriesResult", "SkinParams", "SynthImage", "SynthPair", "SynthTruth", "cct_rgb",
    "contact_sheet_image", "erythema_for_a", "make_pair", "make_series", "melanin_for_ita",
    "render_capture", "render_skin",
]
