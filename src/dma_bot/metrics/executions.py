"""ExecutionMetrics: the pure core behind exec_reports_total and latency_signal_to_ack_ms.

It sees every Route and every ExecReport (copies, in flow order) and keeps plain integers: reports per
(status, venue), and a histogram of the time from the signal that caused a child order to the venue's
first ACK of it, both taken from event timestamps (never from timers in the stages).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from dma_bot.model.enums import ExecStatus
from dma_bot.model.events import ExecReport, Route

__all__ = ["LATENCY_BUCKETS_MS", "ExecutionMetrics"]

LATENCY_BUCKETS_MS: Final[tuple[float, ...]] = (
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
)
_BUCKET_BOUNDS_NS: Final = tuple(int(bound * 1_000_000) for bound in LATENCY_BUCKETS_MS)
_MAX_PENDING: Final = 100_000


class ExecutionMetrics:
    __slots__ = ("_pending", "bucket_counts", "latency_count", "latency_sum_ns", "reports", "routes_by_venue")

    def __init__(self) -> None:
        self.reports: dict[tuple[str, str], int] = {}
        self.routes_by_venue: dict[str, int] = {}
        self.bucket_counts = [0] * (len(_BUCKET_BOUNDS_NS) + 1)  # last one is +Inf only
        self.latency_count = 0
        self.latency_sum_ns = 0
        self._pending: dict[str, int] = {}  # child client order id -> signal ts

    def on_route(self, route: Route) -> None:
        self.routes_by_venue[route.venue] = self.routes_by_venue.get(route.venue, 0) + 1
        if len(self._pending) >= _MAX_PENDING:
            self._pending.pop(next(iter(self._pending)))  # never-acked ids cannot grow memory without bound
        self._pending[route.client_order_id] = route.ts_signal_ns

    def on_exec(self, report: ExecReport) -> None:
        key = (report.status.value, report.venue)
        self.reports[key] = self.reports.get(key, 0) + 1
        signal_ns = self._pending.pop(report.client_order_id, None)
        if signal_ns is not None and report.status is ExecStatus.ACK:
            latency = max(report.ts_ns - signal_ns, 0)
            self.bucket_counts[bisect_left(_BUCKET_BOUNDS_NS, latency)] += 1
            self.latency_count += 1
            self.latency_sum_ns += latency

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """(le, cumulative count) pairs for a Prometheus histogram, +Inf last."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip(LATENCY_BUCKETS_MS, self.bucket_counts, strict=False):
            running += count
            out.append((repr(bound), running))
        out.append(("+Inf", self.latency_count))
        return out
