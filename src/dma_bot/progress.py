"""A progress bar for a long backtest, on tqdm: how much of the input is read, records done, records/s, ETA.

Owns drawing the bar, nothing else: the loop calls :meth:`Progress.advance` every few thousand records with the
bytes of the input read so far (``ReadStats.input_bytes``) and the records done. The bar's position is bytes
against ``total_bytes``, the sum of the files' sizes as stored; for ``.gz`` and ``.zst`` files that is the
compressed file, and the bytes read are the compressed bytes read so far (a few hundred KiB ahead of the last
record given, which is fine for a bar). tqdm gives the ETA from that position; records and records/s are the
postfix. Disabled (the usual case off a terminal, see :func:`progress_enabled`), every method returns at once
and nothing is written. tqdm's monitor thread is off: the bar is drawn only from ``advance``.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import IO, Final

from tqdm import tqdm

__all__ = ["Progress", "progress_enabled"]

_REFRESH_S: Final = 0.5  # at most this often the bar is redrawn


class _Bar(tqdm):  # type: ignore[type-arg]
    monitor_interval = 0  # no TMonitor thread: a bar only advances when the loop says so


def progress_enabled(stream: IO[str]) -> bool:
    """Whether a bar belongs on ``stream``: a terminal, not a file or a pipe."""
    return stream.isatty()


class Progress:
    """``Progress(total_bytes, enabled=...)``: a bar by bytes read (no total: a byte counter, no ETA), and the
    records done with their rate. A context manager; :meth:`close` ends the bar's line."""

    __slots__ = ("_bar",)

    def __init__(self, total_bytes: int | None, *, enabled: bool, stream: IO[str] = sys.stderr) -> None:
        self._bar: _Bar | None = None
        if enabled:
            self._bar = _Bar(total=total_bytes, file=stream, unit="B", unit_scale=True, unit_divisor=1024,
                             mininterval=_REFRESH_S, smoothing=0.1, dynamic_ncols=True, leave=True)

    def advance(self, done_bytes: int, records: int) -> None:
        """Move the bar to ``done_bytes`` of the input read, with ``records`` done so far."""
        bar = self._bar
        if bar is None:
            return
        elapsed = bar.format_dict["elapsed"]
        rate = f"{records / elapsed:,.0f}" if elapsed > 0 else "?"
        bar.set_postfix_str(f"{records:,} records, {rate} records/s", refresh=False)
        bar.update(done_bytes - bar.n)

    def close(self) -> None:
        """Draw the bar a last time and end its line; later calls do nothing."""
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
