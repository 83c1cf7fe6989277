"""Metrics: the registry (`registry`), the per-photo working set they read (`analysis`),
the physical scale (`scale`) and the built-in families (`redness`, `pigment`, `texture`,
`pores`, `spots`).

The registry's public names are available here: ``from photokit import metrics;
metrics.registered()``.
"""

from .registry import (
    BUILTIN_MODULES,
    ENTRY_POINT_GROUP,
    Family,
    Metric,
    Panel,
    chosen,
    families,
    family,
    family_of,
    get,
    job,
    job_rank,
    load_plugins,
    markdown_table,
    metric,
    names,
    registered,
    signature,
    unmeasurable,
    why_not_measured,
)

__all__ = ["BUILTIN_MODULES", "ENTRY_POINT_GROUP", "Family", "Metric", "Panel", "chosen", "families",
           "family", "family_of", "get", "job", "job_rank", "load_plugins", "markdown_table", "metric",
           "names", "registered", "signature", "unmeasurable", "why_not_measured"]
