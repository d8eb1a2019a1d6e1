"""Operating-system calls the os module lacks (sync_file_range, fallocate, loaded with
ctypes) or that several kinds of files share (whose flock is held)."""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
from collections.abc import Callable, Sequence
from typing import Any


def libc_function(name: str, argtypes: Sequence[Any]) -> Callable[..., int] | None:
    """``name`` from the C library, returning an int and setting errno; None where this
    platform's libc has no such function (callers then do without)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    function.argtypes = tuple(argtypes)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def is_flocked(path: str) -> bool:
    """True when some open file (any process, this one included) holds an exclusive flock on
    ``path``: its writer is alive. False when nobody does or the file is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False
