"""glibc malloc's thresholds while sweep tasks run, in a process whose environment pinned them (Dask's workers).

Owns one thing: :func:`task_malloc`, the context a task runs in. glibc adapts two thresholds to the program
(the mmap threshold rises from 128 KiB to the size of the largest block freed so far, up to 32 MiB, and the
trim threshold follows at twice that), unless a process sets either (or the top pad, or the mmap maximum),
by ``mallopt`` or by its ``MALLOC_*_`` environment variable at start-up: then both stay fixed for the process's
life, and nothing turns the adaptation back on. Dask's nanny starts every worker with
``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``), so the mmap threshold stays at
128 KiB: every column block of a backtest is mmapped, touched page by page and unmapped when freed (~190,000
page faults per bench task instead of ~3,000; 0.9 s -> 1.3-1.5 s per task).

While the first of this process's tasks runs (counted, so that concurrent tasks in a threaded worker share
one setting), the mmap threshold is 32 MiB and the trim threshold 64 MiB: the values glibc's own adaptation
reaches at most. When the last one ends, both go back to what the environment asked for (the environment's
values, else glibc's defaults of 128 KiB) and ``malloc_trim(0)`` hands the freed memory back to the system,
which is what the worker's setting was for. Nothing is touched when the thresholds are still adaptive (no such
variable: a pool worker, a shell), when they come from ``GLIBC_TUNABLES`` (their exact values are not read here),
when a variable is not a plain number, or off glibc (macOS, musl): there the context does nothing. The variables
are read from the environment the process started with (``/proc/self/environ``), the one glibc read, not from
``os.environ``: a nanny running in this process (a ``LocalCluster``) puts ``MALLOC_TRIM_THRESHOLD_`` into
``os.environ`` for the workers it spawns, while this process's own malloc stays adaptive.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["TASK_MMAP_THRESHOLD", "TASK_TRIM_THRESHOLD", "MallocTuning", "pinned_thresholds", "startup_environ",
           "task_malloc"]

M_TRIM_THRESHOLD: Final = -1  # <malloc.h>
M_MMAP_THRESHOLD: Final = -3
GLIBC_DEFAULT_THRESHOLD: Final = 128 * 1024  # DEFAULT_MMAP_THRESHOLD_MIN and DEFAULT_TRIM_THRESHOLD
TASK_MMAP_THRESHOLD: Final = 32 * 1024 * 1024  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: the dynamic threshold's top
TASK_TRIM_THRESHOLD: Final = 2 * TASK_MMAP_THRESHOLD  # the dynamic rule: trim threshold = 2 x mmap threshold
PINNING_VARIABLES: Final = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_TUNABLES: Final = ("glibc.malloc.trim_threshold", "glibc.malloc.mmap_threshold", "glibc.malloc.top_pad",
                    "glibc.malloc.mmap_max")


@dataclass(frozen=True, slots=True)
class MallocTuning:
    """The static thresholds an environment pinned: what they go back to when no task runs."""

    restore_trim: int
    restore_mmap: int


def pinned_thresholds(environ: Mapping[str, str]) -> MallocTuning | None:
    """The thresholds an environment pinned glibc's malloc to at start-up, or None when they are adaptive or
    cannot be known exactly (``GLIBC_TUNABLES`` naming one, a value that is not a plain number)."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    if any(name in tunables for name in _TUNABLES):
        return None
    if not any(name in environ for name in PINNING_VARIABLES):
        return None
    values: dict[str, int] = {}
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        raw = environ.get(name)
        if raw is None:
            continue
        if not raw.strip().isdigit():
            return None
        values[name] = int(raw)
    return MallocTuning(restore_trim=values.get("MALLOC_TRIM_THRESHOLD_", GLIBC_DEFAULT_THRESHOLD),
                        restore_mmap=values.get("MALLOC_MMAP_THRESHOLD_", GLIBC_DEFAULT_THRESHOLD))


def startup_environ(path: str = "/proc/self/environ") -> dict[str, str] | None:
    """The environment this process started with (Linux), or None where it cannot be read."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError:
        return None
    pairs = (os.fsdecode(entry).partition("=") for entry in raw.split(b"\0") if entry)
    return {name: value for name, _, value in pairs}


def _glibc() -> Any | None:
    """This process's C library when it is glibc with ``mallopt`` and ``malloc_trim``, else None."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
        libc = ctypes.CDLL(None)
    except (ValueError, OSError, AttributeError):  # no such confstr name (macOS), no dlopen
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    libc.malloc_trim.restype = ctypes.c_int
    return libc


class _Tuner:
    """The process-wide count of running tasks and the setting they share."""

    __slots__ = ("_libc", "_lock", "_running", "_tuning")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._libc: Any | None = None
        self._tuning: MallocTuning | None = None

    def enter(self) -> None:
        with self._lock:
            self._running += 1
            if self._running > 1:
                return
            environ = startup_environ()
            tuning = None if environ is None else pinned_thresholds(environ)
            libc = _glibc() if tuning is not None else None
            if libc is None or tuning is None:
                return
            if not libc.mallopt(M_MMAP_THRESHOLD, TASK_MMAP_THRESHOLD):
                return
            if not libc.mallopt(M_TRIM_THRESHOLD, TASK_TRIM_THRESHOLD):
                libc.mallopt(M_MMAP_THRESHOLD, tuning.restore_mmap)
                return
            self._libc, self._tuning = libc, tuning

    def exit(self) -> None:
        with self._lock:
            self._running -= 1
            libc, tuning = self._libc, self._tuning
            if self._running > 0 or libc is None or tuning is None:
                return
            self._libc = self._tuning = None
            libc.mallopt(M_MMAP_THRESHOLD, tuning.restore_mmap)
            libc.mallopt(M_TRIM_THRESHOLD, tuning.restore_trim)
            libc.malloc_trim(0)


_TUNER: Final = _Tuner()


@contextmanager
def task_malloc() -> Iterator[None]:
    """Run the body with glibc's roomy thresholds when this process's environment pinned small ones (see the
    module); otherwise, and off glibc, a context that does nothing."""
    _TUNER.enter()
    try:
        yield
    finally:
        _TUNER.exit()
