"""Prometheus metrics: the only package that imports prometheus_client."""

from dma_bot.metrics.executions import LATENCY_BUCKETS_MS, ExecutionMetrics
from dma_bot.metrics.http import MetricsServer
from dma_bot.metrics.observer import ExecutionObserver
from dma_bot.metrics.registry import Metrics, MetricsSources, StreamHealth

__all__ = [
    "LATENCY_BUCKETS_MS",
    "ExecutionMetrics",
    "ExecutionObserver",
    "Metrics",
    "MetricsServer",
    "MetricsSources",
    "StreamHealth",
]
