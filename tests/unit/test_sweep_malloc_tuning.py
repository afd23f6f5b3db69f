"""dma_bot.sweep.malloc_tuning: in a process started with Dask's MALLOC_TRIM_THRESHOLD_, a 1 MiB block comes from
the heap while a task runs and is mmapped again after (glibc's own count of mmapped blocks, mallinfo); a process
whose thresholds are adaptive is left adaptive; which environments count as pinned, and what is restored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dma_bot.sweep.malloc_tuning import GLIBC_DEFAULT_THRESHOLD, MallocTuning, pinned_thresholds, startup_environ

ROOT = Path(__file__).resolve().parents[2]


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):
        return False


needs_glibc = pytest.mark.skipif(not (_glibc() and Path("/proc/self/environ").exists()),
                                 reason="glibc malloc and /proc (Linux)")

# Each line of output: is a fresh 1 MiB malloc a block of its own mapping (mallinfo's hblks grows)?
_PROBE = """
import ctypes, os, sys
from dma_bot.sweep.malloc_tuning import task_malloc

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                 "fsmblks", "uordblks", "fordblks", "keepcost")]

libc.mallinfo.restype = Info

def mmapped():
    before = libc.mallinfo().hblks
    block = libc.malloc(1 << 20)
    grew = libc.mallinfo().hblks > before
    libc.free(block)
    return grew

if sys.argv[1] == "nanny":  # what a nanny in this process does for the workers it spawns
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "65536"
print("outside", mmapped())
with task_malloc():
    with task_malloc():  # a second task in another thread of the same worker
        pass
    print("inside", mmapped())
print("after", mmapped())
"""


def _probe(environ: dict[str, str], mode: str = "") -> list[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_") and key != "GLIBC_TUNABLES"}
    env |= {"PYTHONPATH": str(ROOT / "src"), **environ}
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    return done.stdout.splitlines()


@needs_glibc
def test_a_task_under_dasks_trim_threshold_gets_big_blocks_from_the_heap_and_the_setting_back_after() -> None:
    assert _probe({"MALLOC_TRIM_THRESHOLD_": "65536"}) == ["outside True", "inside False", "after True"]


@needs_glibc
def test_an_adaptive_process_stays_adaptive_even_with_the_variable_put_in_os_environ_later() -> None:
    # glibc's own adaptation: after the first 1 MiB block is freed, the next one comes from the heap
    assert _probe({}) == ["outside True", "inside False", "after False"]
    assert _probe({}, "nanny") == ["outside True", "inside False", "after False"]


def test_pinned_thresholds_are_the_environments_values_else_glibcs_defaults() -> None:
    assert pinned_thresholds({}) is None
    assert pinned_thresholds({"PATH": "/bin", "OMP_NUM_THREADS": "1"}) is None
    assert pinned_thresholds({"MALLOC_TRIM_THRESHOLD_": "65536"}) == MallocTuning(65536, GLIBC_DEFAULT_THRESHOLD)
    assert pinned_thresholds({"MALLOC_MMAP_THRESHOLD_": "1048576", "MALLOC_TRIM_THRESHOLD_": "0"}) == \
        MallocTuning(0, 1048576)
    assert pinned_thresholds({"MALLOC_TOP_PAD_": "4096"}) == \
        MallocTuning(GLIBC_DEFAULT_THRESHOLD, GLIBC_DEFAULT_THRESHOLD)


def test_thresholds_that_cannot_be_known_exactly_leave_malloc_alone() -> None:
    assert pinned_thresholds({"MALLOC_TRIM_THRESHOLD_": "64k"}) is None
    assert pinned_thresholds({"MALLOC_TRIM_THRESHOLD_": "0x10000"}) is None
    assert pinned_thresholds({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=65536"}) is None
    assert pinned_thresholds({"MALLOC_TRIM_THRESHOLD_": "65536",
                              "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}) is None
    assert pinned_thresholds({"GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=4096",
                              "MALLOC_TRIM_THRESHOLD_": "65536"}) == MallocTuning(65536, GLIBC_DEFAULT_THRESHOLD)


def test_startup_environ_reads_nul_separated_entries_and_is_none_without_the_file(tmp_path: Path) -> None:
    path = tmp_path / "environ"
    path.write_bytes(b"MALLOC_TRIM_THRESHOLD_=65536\0EMPTY=\0WITH_EQUALS=a=b\0")
    assert startup_environ(str(path)) == {"MALLOC_TRIM_THRESHOLD_": "65536", "EMPTY": "", "WITH_EQUALS": "a=b"}
    assert startup_environ(str(tmp_path / "missing")) is None
