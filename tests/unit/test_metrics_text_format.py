"""metrics.text_format.render: byte for byte prometheus_client.generate_latest, for what the daemon exposes."""

from __future__ import annotations

import math
import random

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from dma_bot.metrics import ExecutionMetrics, Metrics
from dma_bot.metrics.text_format import render
from dma_bot.model import ExecStatus
from tests.unit.test_metrics_registry import _report, _route, _sources


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:  # type: ignore[override]
        return self._families


def _reference(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def test_render_equals_generate_latest_on_the_daemon_metrics() -> None:
    executions = ExecutionMetrics()
    executions.on_route(_route("c1", 1_000_000))
    executions.on_exec(_report("c1", ExecStatus.ACK, 3_500_000))
    metrics = Metrics(_sources(executions))
    assert metrics.exposition() == generate_latest(metrics.registry)
    assert b"latency_signal_to_ack_ms_bucket{le=\"+Inf\"} 1.0\n" in metrics.exposition()


def test_render_equals_generate_latest_on_awkward_labels_help_and_values() -> None:
    """Label values and help texts needing escapes or not ASCII, every float shape Go spells its own way."""
    rng = random.Random(11)
    alphabet = 'aZ9_ "\\\n\té€😀{}=,'
    values = [0.0, -0.0, 1.0, -2.5, 1e-9, 123456.0, 1234567.0, 1e20, 3.3e300, math.inf, -math.inf, math.nan, 7]
    families = []
    for index, kind in enumerate(["gauge", "counter", "unknown", "histogram"] * 5):
        help_text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 15)))
        family = Metric(f"family_{index}" + ("_total" if kind == "counter" and index % 2 else ""), help_text, kind)
        name = family.name + ("_total" if kind == "counter" else "")
        for _ in range(rng.randrange(0, 6)):
            labels = {
                key: "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 8)))
                for key in rng.sample(["venue", "symbol", "le", "a_b", "status"], rng.randrange(0, 4))
            }
            family.add_sample(name, labels, rng.choice(values))
        families.append(family)
    assert render(families) == _reference(families)


@pytest.mark.parametrize("kind", ["info", "stateset", "gaugehistogram"])
def test_render_refuses_family_types_it_does_not_write(kind: str) -> None:
    with pytest.raises(ValueError, match=kind):
        render([Metric("x", "doc", kind)])


def test_render_refuses_timestamps() -> None:
    family = Metric("x", "doc", "gauge")
    family.add_sample("x", {}, 1.0, timestamp=5)
    with pytest.raises(ValueError, match="timestamp"):
        render([family])
