"""The C allocator tuned for a process that moves large instances (glibc only).

Each received instance passes through buffers of its own size (the PDUs it arrives in,
the bytes it is assembled into). glibc's malloc serves blocks over its mmap threshold
(128 KiB at start) with fresh pages and gives the top of the heap back to the kernel once
more than its trim threshold is free; it raises both thresholds itself only after a large
block has been freed. Until then a retrieve of 512 KiB instances touches new memory for
every instance — page faults and zeroing that, measured on a 1 GB C-GET, made the
command's own retrieve take about 1.5 times as long as the same call in a process that
had once freed a large block (docs/start-up.md).

:func:`keep_freed_memory` sets the thresholds to what glibc's own rule reaches at most
(an mmap threshold of 32 MiB, trim at twice that), from the start. The command line
calls it for the commands that move data; a library user's application can call it too.
"""

from __future__ import annotations

import sys

MMAP_THRESHOLD = 32 << 20
"""glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems: the most its dynamic rule sets."""
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
"""Twice the mmap threshold, as glibc's dynamic rule sets it."""
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep up to :data:`TRIM_THRESHOLD` of freed memory for reuse
    and serve blocks up to :data:`MMAP_THRESHOLD` from the heap (``mallopt(3)``);
    whether it did (False where the C library is not glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
