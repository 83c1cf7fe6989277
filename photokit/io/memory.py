"""How a photokit process's ``malloc`` (glibc) treats the big blocks a photo needs.

A 12 MP photo's maps are tens of MB each. By default glibc maps every block over 32 MB
afresh and unmaps it when freed, so each map of the next job (the next photo of a batch,
AFTER after BEFORE in a `compare`) page-faults and is zeroed by the kernel again, which on
the virtual machines photokit is benchmarked on costs as much as the work on it.
`keep_freed_memory` keeps freed blocks for reuse: the batch's worker processes and the
command line set it for their own process; the library does not set it on a caller's
process (a notebook's memory would then stay at its largest job's).
"""

from __future__ import annotations

#: glibc ``mallopt`` parameters (``<malloc.h>``) and the trim threshold set by
#: `keep_freed_memory`: the largest ``int``, never trim.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
TRIM_NEVER = 2**31 - 1


def keep_freed_memory() -> bool:
    """Have this process's ``malloc`` (glibc) serve every block from its heap and keep the
    memory freed for the next blocks: ``mallopt(M_MMAP_MAX, 0)``, ``mallopt(M_TRIM_THRESHOLD,
    2^31 - 1)`` (glibc manual, "Malloc Tunable Parameters").

    By default a block over 32 MB (a 12 MP float map is 48 MB) is mapped afresh and
    unmapped when freed, so every map of the next photo page-faults and is zeroed by the
    kernel again (40,000 page faults per 12 MP portrait without a face, 30 with this): CPU
    per photo of a batch worker (medians of 4 runs, 1 thread) 2.67 -> 1.77 s on 4 such
    portraits of `benchmarks/bench_batch.py`, 0.86 -> 0.82 s on 10 with a face;
    ``compare`` of the 12 MP face pair of `benchmarks/bench_compare.py` in a fresh
    process, this setting alone, 2.3-3.5 -> 1.8-2.1 s (3 alternated runs); the same
    results. The process's memory then stays at its largest job's, and blocks freed by
    one thread's heap do not serve another's: peak RSS unchanged for the batch
    benchmark's workers (2.0 GB for 2, one thread each), 0.88 -> 1.06 GB for
    ``photokit demo`` (several threads; 22.7 -> 21.4 s).

    Returns
    -------
    bool
        Whether it was set (False without glibc).
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_NEVER))
