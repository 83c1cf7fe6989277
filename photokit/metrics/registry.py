"""The metric registry: the one place that decides everything about a metric.

Each metric declares its dotted name (SPEC), unit, which direction is better, its noise
floor (minimal detectable change, MDC = 2.77 x within-subject SD of repeated captures,
from ``benchmarks/bench_repeatability.py``) and its roles: a headline (core) metric of
the reports, a map panel of the compare report, a per-zone map, a recovery metric of a
series, a sign of post-inflammatory hyperpigmentation, a rank in the series trend plot.
Each family (the name's first part) registers its title, report order and why it may be
blank on a photo. ``measure``, ``compare``, ``series``, ``batch``, the store and the
reports only loop over `registered()` and read these roles, so a metric registered here
appears in all of them at once.

A metric is a function of an `~photokit.metrics.analysis.Analysis` returning a float (or None
when it cannot be computed, e.g. no spots to size); it is registered with `metric`::

    @metric("redness.a_mean", unit="a*", mdc=0.6, description="mean CIELAB a*")
    def a_mean(an):
        return float(an.lab[..., 1][an.mask].mean())

Metrics from other packages
---------------------------
A package adds metrics without touching photokit by naming a module in the entry-point
group ``photokit.metrics.registry`` (``pyproject.toml``)::

    [project.entry-points."photokit.metrics"]
    my_family = "my_package.my_metrics"

The module is imported the first time the registry is read; its ``@metric`` (and
optionally `family`) calls register it. A plugin that fails to import is skipped with a
warning. Bump a metric's ``version`` when its computation changes: ``batch`` re-scores
exactly the metrics whose name or version a stored row does not have.
"""

from __future__ import annotations

import importlib
import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from .noise import MDC_PER_SW

#: The entry-point group through which other packages register metrics.
ENTRY_POINT_GROUP = "photokit.metrics"

#: photokit's own metric modules (each registers its family and metrics on import).
BUILTIN_MODULES = ("photokit.metrics.redness", "photokit.metrics.pigment", "photokit.metrics.texture",
                   "photokit.metrics.pores", "photokit.metrics.spots")

_REGISTRY: dict[str, Metric] = {}
_FAMILIES: dict[str, Family] = {}
_JOBS: dict[str, int] = {}
#: How a metric may be reported per face zone (`Metric.zone`).
ZONE_ROLES = ("mean", "restrict", "none")
_LOADED: set[str] = set()
_LOAD_LOCK = threading.RLock()


@dataclass(frozen=True)
class Family:
    """A metric family: the metrics whose names start with ``<name>.`` (or that name it
    as their `Metric.group`).

    Attributes
    ----------
    name : str
        The name's first part, e.g. ``"redness"``.
    title : str
        Heading of the family in reports.
    order : int
        Report and column order of families (lower first).
    why_not : callable or None
        ``why_not(analysis) -> str | None``: one line saying why metrics of this group are
        blank on a photo (e.g. too coarse for the texture band), read by `why_not_measured`.
    """

    name: str
    title: str
    order: int
    why_not: Callable | None = None


@dataclass(frozen=True)
class Panel:
    """How the compare report draws a metric as a before / after / change map.

    Attributes
    ----------
    title : str
        Caption of the map pair.
    cmap, diff_cmap : str
        Matplotlib colour maps of the values and of the change.
    low_text, high_text : str
        Legend ends of the value map (e.g. ``"less red"``, ``"more red"``).
    less_text, more_text : str
        Legend ends of the change map (e.g. ``"paler"``, ``"redder"``).
    pixels : callable
        ``pixels(level) -> float32 array``: the per-pixel map on a working level of an
        `~photokit.metrics.analysis.Analysis` (``level.lab``, ``level.linear``).
    """

    title: str
    cmap: str
    diff_cmap: str
    low_text: str
    high_text: str
    less_text: str
    more_text: str
    pixels: Callable


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    Attributes
    ----------
    name : str
        Flat dotted name, e.g. ``redness.a_mean`` (also the CSV/database column).
    unit : str
        Unit of the value, e.g. ``"a*"``, ``"%"``, ``"1/cm^2"``.
    description : str
        One line for tables and reports.
    mdc : float
        Minimal detectable change in `unit`: a smaller |delta| is not a change.
    better : str
        ``"lower"``, ``"higher"`` or ``"neither"``: which direction is improvement.
    needs_colour : bool
        False for metrics that work on greyscale photos.
    needs_scale : bool
        True for metrics whose unit involves millimetres.
    compute : callable
        ``compute(analysis) -> float | None``.
    job : str
        Metrics of one job run one after another on one thread of ``measure`` (they
        share maps); jobs run side by side, started in the order `job` gave them.
        Default: the defining module.
    group : str
        The `Family` whose report order and why-not reason apply (default: the name's
        first part; ``texture.pore_density`` is measured by the pore detector, so its
        group is ``pores``).
    version : int
        Bumped when the computation changes, so stored batch results are re-scored.
    core : bool
        A headline metric: listed first in reports (the SPEC's required metrics).
    zone_map : callable or None
        ``zone_map(analysis) -> array`` on the colour working level whose mean over a face
        zone is this metric in that zone (``<name>.<zone>``).
    zone : str
        How ``measure`` reports the metric per face zone (``<name>.<zone>``, `ZONE_ROLES`):
        ``"mean"``, the mean of `zone_map` over the zone's analysed pixels (cheap: one map
        for all zones); ``"restrict"``, `compute` run again on the analysis restricted to
        the zone's skin (any metric of an analysis is defined on any skin; it costs a
        metric run per zone, on a crop of the zone); ``"none"``, not per zone (a metric
        of the whole face). `metric` defaults to ``"mean"`` with a `zone_map`, else
        ``"restrict"``.
    panel : Panel or None
        Drawn as a map pair in the compare report.
    recovery : bool
        Fitted as a recovery curve after each treatment of a series (the first such metric
        is the one the series report plots).
    pih_sign : float
        Sign of a change that means more pigment (post-inflammatory hyperpigmentation is
        flagged when a visit moves beyond the noise floor that way); 0: not watched.
    trend_rank : float or None
        Rank in the series report's trend plot (lower first); None: not plotted.
    noise : callable or None
        ``noise(analysis, value) -> float | str``: the metric's standard error on this
        photo in its unit (`photokit.metrics.noise`), or one line saying why it has none
        (too little skin, too few features). None: the constant ``mdc / 2.77``.
    working_side : int or None
        The metric is computed on an area-averaged copy of the photo at most this many
        pixels on the long side (the colour level): a photo decoded reduced to no less
        than that changes it only through that averaging, far inside its noise floor
        (``measure`` then decodes at the coarsest such size when every requested metric
        has one; tests/test_measure.py); None: it needs the photo's full resolution.
    resolution_tolerance : float or None
        The largest ratio of two photos' millimetres per pixel at which a change of this
        metric between them is judged against its floor: the floors were calibrated on
        re-captures at nearly one resolution, and a metric of fine detail (the texture
        band, pores) moves with the resolution itself (`photokit.metrics.noise.beyond_resolution`).
        None: any ratio.
    working_level : callable or None
        ``working_level(mm_per_px) -> mm_per_px``: the scale the metric is computed at on a
        photo of that scale, when it is not the photo's own (a level reduced by a whole
        factor, which can jump 2x between photos a few % apart); the tolerance then also
        holds for the two photos' working levels. None: the photo's scale.
    """

    name: str
    unit: str
    description: str
    mdc: float
    better: str
    needs_colour: bool
    needs_scale: bool
    compute: Callable
    job: str = ""
    group: str = ""
    version: int = 1
    core: bool = False
    zone_map: Callable | None = None
    panel: Panel | None = None
    recovery: bool = False
    pih_sign: float = 0.0
    trend_rank: float | None = None
    zone: str = "none"
    noise: Callable | None = None
    working_side: int | None = None
    resolution_tolerance: float | None = None
    working_level: Callable | None = None

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    def is_significant(self, delta: float | None) -> bool | None:
        """Whether a change exceeds this metric's minimal detectable change."""
        if delta is None or not math.isfinite(delta):
            return None
        return abs(delta) > self.mdc

    def standard_error(self, an, value: float) -> float | str:
        """Standard error of `value` on the photo of `an` (see `noise`); the registered
        constant ``mdc / 2.77`` without a noise function or without an analysis."""
        if self.noise is None or an is None:
            return self.mdc / MDC_PER_SW
        return self.noise(an, value)


def metric(name: str, *, unit: str, description: str, mdc: float, better: str = "lower",
           needs_colour: bool = True, needs_scale: bool = False, job: str | None = None,
           group: str | None = None, version: int = 1, core: bool = False,
           zone_map: Callable | None = None, panel: Panel | None = None, recovery: bool = False,
           pih_sign: float = 0.0, trend_rank: float | None = None, zone: str | None = None,
           noise: Callable | None = None, working_side: int | None = None,
           resolution_tolerance: float | None = None, working_level: Callable | None = None):
    """Decorator that registers ``compute(analysis) -> float | None`` under `name`.

    The keyword arguments are the `Metric` attributes (`job` defaults to the function's
    module, `group` to the name's first part, `zone` to ``"mean"`` when a `zone_map` is
    given, else ``"restrict"``).
    """
    if better not in ("lower", "higher", "neither"):
        raise ValueError(f"better must be lower, higher or neither, not {better!r}")
    zone = zone or ("mean" if zone_map is not None else "restrict")
    if zone not in ZONE_ROLES or (zone == "mean" and zone_map is None):
        raise ValueError(f"zone must be one of {ZONE_ROLES} (mean needs a zone_map), not {zone!r}")
    if "." not in name:
        raise ValueError(f"metric name {name!r} must be dotted: <family>.<metric>")

    def register(fn: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name].compute.__qualname__ != fn.__qualname__:
            raise ValueError(f"metric {name!r} is registered twice")
        _REGISTRY[name] = Metric(name, unit, description, float(mdc), better, needs_colour,
                                 needs_scale, fn, job or fn.__module__,
                                 group or name.split(".", 1)[0], int(version), core, zone_map,
                                 panel, recovery, float(pih_sign), trend_rank, zone, noise,
                                 working_side, resolution_tolerance, working_level)
        return fn

    return register


def family(name: str, *, title: str, order: int) -> Family:
    """Register a metric family's report title and order (see `Family`)."""
    prev = _FAMILIES.get(name)
    _FAMILIES[name] = Family(name, title, int(order), prev.why_not if prev else None)
    return _FAMILIES[name]


def unmeasurable(family_name: str) -> Callable:
    """Register why a metric family (group) cannot be measured on a photo.

    The decorated function takes the `Analysis` and returns a one-line reason (e.g. the
    photo is too coarse for that family) or None; `why_not_measured` asks it when metrics
    of the group came out None, so the user reads the cause, not only a blank.
    """
    def register(fn: Callable) -> Callable:
        prev = _FAMILIES.get(family_name)
        _FAMILIES[family_name] = Family(family_name, prev.title if prev else family_name.capitalize(),
                                        prev.order if prev else 1_000, fn)
        return fn
    return register


def job(name: str, *, start: int) -> str:
    """Register a metric job and its start rank in ``measure`` (lower starts first)."""
    _JOBS[name] = int(start)
    return name


def job_rank(name: str) -> int:
    """Start rank of a job (`job`); unregistered jobs start last."""
    return _JOBS.get(name, 1_000_000)


def load_plugins() -> None:
    """Import photokit's metric modules and every ``photokit.metrics.registry`` entry point not yet
    imported (a plugin that fails to import is skipped with a warning)."""
    with _LOAD_LOCK:
        for mod in BUILTIN_MODULES:
            if mod not in _LOADED:
                importlib.import_module(mod)
                _LOADED.add(mod)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            key = f"{ep.name}={ep.value}"
            if key in _LOADED:
                continue
            _LOADED.add(key)
            try:
                ep.load()
            except Exception as exc:  # a third party's bug must not stop photokit
                warnings.warn(f"metric plugin {ep.name!r} ({ep.value}) was not loaded: "
                              f"{type(exc).__name__}: {exc}", stacklevel=2)


def _ensure_loaded() -> None:
    if not _LOADED:
        load_plugins()


def families() -> list[Family]:
    """The registered families in report order."""
    _ensure_loaded()
    return sorted(_FAMILIES.values(), key=lambda f: (f.order, f.name))


def family_of(name: str) -> Family:
    """The `Family` registered as `name` (or a plain one titled after it)."""
    _ensure_loaded()
    return _FAMILIES.get(name) or Family(name, name.capitalize(), 1_000)


def registered() -> list[Metric]:
    """All registered metrics, by family order (`family`, of each metric's `Metric.group`)
    and registration order within a family.

    The order is the column order of exports and reports, so it must not depend on
    which module happened to be imported first.
    """
    _ensure_loaded()
    ranked = sorted(enumerate(_REGISTRY.values()),
                    key=lambda im: (family_of(im[1].group).order, im[0]))
    return [m for _, m in ranked]


def get(name: str) -> Metric:
    """The metric called `name` (KeyError naming the known ones otherwise)."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(_REGISTRY)}") from None


def names() -> list[str]:
    """The registered metric names (the column names of exports)."""
    return [m.name for m in registered()]


def chosen(metrics) -> list[str] | None:
    """The metric names a user's choice stands for, in the order chosen.

    `metrics` is None (every metric: None is returned), a string of comma-separated tokens
    or an iterable of tokens; each token is a metric name (``pigment.ita_mean``) or a
    family (``redness``: all of its metrics), as ``--metrics`` takes them (an empty choice
    is an empty list: measure then finds the skin only). Raises
    `~photokit.errors.PhotokitError` naming the tokens that are neither, and the families.
    """
    if metrics is None:
        return None
    from ..errors import PhotokitError

    tokens = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    allm = registered()
    out: list[str] = []
    unknown = []
    for token in (str(t).strip() for t in tokens):
        got = [m.name for m in allm if m.name == token or m.family == token]
        if not got:
            unknown.append(repr(token))
        out += [n for n in got if n not in out]
    if unknown:
        fams = sorted({m.family for m in allm})
        raise PhotokitError(f"unknown metric(s): {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} "
                            f"neither a metric nor a family (families: {', '.join(fams)})")
    return out


def signature() -> dict[str, int]:
    """``name -> version`` of every registered metric: what a stored result was scored with."""
    return {m.name: m.version for m in registered()}


def markdown_table() -> str:
    """The README's metrics table (name, unit, better, noise floor, meaning), from the registry."""
    rows = ["| metric | unit | better | noise floor (MDC) | meaning |", "|---|---|---|---|---|"]
    rows += [f"| `{m.name}` | {m.unit} | {m.better} | {m.mdc:g} | {m.description} |" for m in registered()]
    return "\n".join(rows)


def why_not_measured(an, values: dict) -> list[str]:
    """``"<group> not measured: <reason>"`` for each group (`Metric.group`) with None
    metrics and a reason; ``"<group> (k of n metrics) not measured: ..."`` when others of
    it were measured."""
    groups: dict[str, list] = {}
    for name, v in values.items():
        m = _REGISTRY.get(name)
        groups.setdefault(m.group if m else name.split(".", 1)[0], []).append(v)
    out = []
    for group in sorted(g for g, vs in groups.items() if any(v is None for v in vs)):
        fn = family_of(group).why_not
        reason = fn(an) if fn is not None else None
        if reason:
            mine = groups[group]
            blank = sum(v is None for v in mine)
            part = "" if blank == len(mine) else f" ({blank} of {len(mine)} metrics)"
            out.append(f"{group}{part} not measured: {reason}")
    return out
