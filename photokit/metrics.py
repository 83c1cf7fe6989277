"""The metric registry: one place that every command iterates.

Each metric declares its dotted name (SPEC), unit, what it needs and its noise floor
(minimal detectable change, MDC = 2.77 x within-subject SD of repeated captures, from
``benchmarks/bench_repeatability.py``). ``measure``, ``compare``, ``series``, ``batch``
and the reports all loop over `registered()`, so a metric registered here appears in all
of them at once.

A metric is a function of an `~photokit.analysis.Analysis` returning a float (or None
when it cannot be computed, e.g. no spots to size); it is registered with `metric`::

    @metric("redness.a_mean", unit="a*", mdc=0.8, description="mean CIELAB a*")
    def a_mean(an):
        return float(an.lab[..., 1][an.mask].mean())
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

_REGISTRY: dict[str, Metric] = {}
#: family -> function of an Analysis giving why that family cannot be measured (or None)
_WHY_NOT: dict[str, Callable] = {}

#: Modules that register the built-in metrics, in report order.
_BUILTIN_MODULES = ("photokit.redness", "photokit.pigment", "photokit.texture",
                    "photokit.pores", "photokit.spots")


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
        share maps); jobs run side by side. Default: the defining module.
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

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    def is_significant(self, delta: float | None) -> bool | None:
        """Whether a change exceeds this metric's minimal detectable change."""
        if delta is None or not math.isfinite(delta):
            return None
        return abs(delta) > self.mdc


def metric(name: str, *, unit: str, description: str, mdc: float, better: str = "lower",
           needs_colour: bool = True, needs_scale: bool = False, job: str | None = None):
    """Decorator that registers ``compute(analysis) -> float | None`` under `name`
    (`job`: see `Metric`; default the function's module)."""
    if better not in ("lower", "higher", "neither"):
        raise ValueError(f"better must be lower, higher or neither, not {better!r}")

    def register(fn: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name].compute.__qualname__ != fn.__qualname__:
            raise ValueError(f"metric {name!r} is registered twice")
        _REGISTRY[name] = Metric(name, unit, description, float(mdc), better,
                                 needs_colour, needs_scale, fn, job or fn.__module__)
        return fn

    return register


def _load_builtin() -> None:
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def registered() -> list[Metric]:
    """All registered metrics: built-ins first, in the order of `_BUILTIN_MODULES` and
    of registration within each module, then others in registration order.

    The order is the column order of exports and reports, so it must not depend on
    which module happened to be imported first.
    """
    _load_builtin()
    order = {mod: i for i, mod in enumerate(_BUILTIN_MODULES)}
    ranked = sorted(enumerate(_REGISTRY.values()),
                    key=lambda im: (order.get(im[1].compute.__module__, len(order)), im[0]))
    return [m for _, m in ranked]


def get(name: str) -> Metric:
    """The metric called `name` (KeyError naming the known ones otherwise)."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(_REGISTRY)}") from None


def names() -> list[str]:
    """The registered metric names (the column names of exports)."""
    return [m.name for m in registered()]


def markdown_table() -> str:
    """The README's metrics table (name, unit, better, noise floor, meaning), from the registry."""
    rows = ["| metric | unit | better | noise floor (MDC) | meaning |", "|---|---|---|---|---|"]
    rows += [f"| `{m.name}` | {m.unit} | {m.better} | {m.mdc:g} | {m.description} |" for m in registered()]
    return "\n".join(rows)


def unmeasurable(family: str) -> Callable:
    """Register why a metric family cannot be measured on a photo.

    The decorated function takes the `Analysis` and returns a one-line reason (e.g. the
    photo is too coarse for that family) or None; `why_not_measured` asks it when metrics
    of the family came out None, so the user reads the cause, not only a blank.
    """
    def register(fn: Callable) -> Callable:
        _WHY_NOT[family] = fn
        return fn
    return register


def why_not_measured(an, values: dict) -> list[str]:
    """``"<family> not measured: <reason>"`` for each family with None metrics and a reason;
    ``"<family> (k of n metrics) not measured: ..."`` when others of it were measured."""
    out = []
    for family in sorted({n.split(".", 1)[0] for n, v in values.items() if v is None}):
        fn = _WHY_NOT.get(family)
        reason = fn(an) if fn is not None else None
        if reason:
            mine = [v for n, v in values.items() if n.split(".", 1)[0] == family]
            blank = sum(v is None for v in mine)
            part = "" if blank == len(mine) else f" ({blank} of {len(mine)} metrics)"
            out.append(f"{family}{part} not measured: {reason}")
    return out
