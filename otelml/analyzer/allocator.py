"""Keep the analyzer's resident memory near what it holds.

Requests are decoded on many threads (the HTTP loop, the gRPC workers) and their bodies run to tens of MiB. glibc's
malloc gives threads arenas of their own and, after a large block is freed, raises the size above which it maps
blocks directly, so freed request buffers stay resident. Under ``bench/fuzz.py`` that was about a quarter of the
analyzer's RSS. :func:`limit_retention` sets, where the allocator is glibc's, two arenas and fixed mapping and trim
thresholds of 128 KiB (large blocks go back to the system when freed); elsewhere it does nothing. A setting given in
the environment (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``) is left as it is.
"""

from __future__ import annotations

import ctypes
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # glibc's mallopt options (malloc.h)
SETTINGS = (
    (_M_ARENA_MAX, 2, "MALLOC_ARENA_MAX"),
    (_M_MMAP_THRESHOLD, 128 * 1024, "MALLOC_MMAP_THRESHOLD_"),
    (_M_TRIM_THRESHOLD, 128 * 1024, "MALLOC_TRIM_THRESHOLD_"),
)


def limit_retention() -> int:
    """Apply the settings not given in the environment; returns how many the allocator took (0 where it is not
    glibc's)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return 0
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return sum(mallopt(option, value) == 1 for option, value, env in SETTINGS if env not in os.environ)
