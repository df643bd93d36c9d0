"""A bound on glibc's malloc arenas, which otherwise hold freed model buffers per thread.

glibc gives each thread that allocates while another holds the main arena an arena of its own,
up to eight per core, and memory freed into an arena mostly stays with the process. A server's
request, scheduler and CTranslate2 threads each allocate and free large buffers, so its
resident memory under load grows with the number of arenas, not with the work in flight.
``mallopt(M_ARENA_MAX, n)`` (glibc's ``MALLOC_ARENA_MAX``) caps the arenas created from then on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["limit_malloc_arenas"]

logger = logging.getLogger(__name__)

_M_ARENA_MAX = -8
"""``M_ARENA_MAX`` of glibc's ``malloc.h``."""


def limit_malloc_arenas(arenas: int) -> bool:
    """Let the process create at most ``arenas`` malloc arenas (0: leave glibc's limit).

    Call it early, before the threads that allocate start: arenas already made stay.

    Returns:
        True when the limit was set; False with ``arenas`` 0, or off glibc (nothing changes).
    """
    if arenas <= 0:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): no arenas to bound
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_ARENA_MAX, arenas))
    if not done:
        logger.debug("mallopt(M_ARENA_MAX, %d) was refused", arenas)
    return done
