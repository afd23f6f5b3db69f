"""The shipped prometheus.yml and Grafana dashboard, checked against a real Prometheus scraping a real daemon.

The daemon runs on the mock preset and a real ``prometheus`` server (a temporary config, scrape every 1 s)
scrapes it; every PromQL expression of grafana_dma_bot_dashboard.json, and of the Rust daemon's two
dashboards, is then evaluated through Prometheus' HTTP API and must return data. The structural tests need
no Prometheus: they read the dashboard JSON and build the daemon's registry the way ``dma_bot.main`` does.
Without the prometheus/promtool binaries the Prometheus tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from dma_bot.clock import ManualClock
from dma_bot.config import load_config, read_env_file
from dma_bot.main import build_engine
from dma_bot.model.enums import ExecStatus
from tests.conftest import ROOT, Daemon, eventually, start_daemon

DASHBOARD = ROOT / "grafana_dma_bot_dashboard.json"
PROMETHEUS_YML = ROOT / "prometheus.yml"
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
JOB = "dma_bot"
WINDOW = "30s"  # $rate_window while testing: holds many 1 s scrapes
VARIABLES = {"job": JOB, "rate_window": WINDOW, "symbol": ".*", "venue": ".*"}  # "All" is ".*" (allValue)
DAEMON_ENV = {
    "METRICS_HOST": "127.0.0.1",
    "METRICS_PORT": "0",
    "MOCK_RATE": "2000",
    "MAX_QPS": "200",
    "RISK_BURST": "200",
    "MOCK_REJECT_PCT": "5",  # so exec_reports_total{status="rejected"} exists
    "STATUS_INTERVAL_S": "0",
}
NEVER_ON_MOCK = ('status="canceled"',)  # the simulated venues never cancel an order

# The Rust daemon's dashboards (grafana/dma_bot_dashboard.json, grafana_pnl_dashboard_clean.json), verbatim.
ORIGINAL_EXPRESSIONS = (
    'sum(rate(exec_reports_total{job="$job"}[$rate_window]))',
    'sum(rate(exec_reports_total{job="$job",status="ack"}[$rate_window]))',
    'sum(rate(exec_reports_total{job="$job",status="filled"}[$rate_window]))',
    'inventory_total_qty{job="$job"}',
    *(
        f'histogram_quantile({q}, sum by (le) (rate(latency_signal_to_ack_ms_bucket{{job="$job"}}[$rate_window])))'
        for q in ("0.50", "0.90", "0.95", "0.99")
    ),
    'sum by (status) (rate(exec_reports_total{job="$job"}[$rate_window]))',
    'sum by (venue) (inventory_qty{job="$job", symbol=~"$symbol", venue=~"$venue"})',
    'inventory_qty{job="$job", symbol=~"$symbol", venue=~"$venue"}',
    'avg(up{job="$job"})',
    'avg(scrape_duration_seconds{job="$job"})',
    'avg(scrape_samples_post_metric_relabeling{job="$job"})',
    'config_feed_mode{job="$job"}',
    'config_venue_mode{job="$job"}',
    'config_strategy_active{job="$job"}',
    'config_symbol{job="$job"}',
    'sum without(instance, symbol, venue)(pnl_realized{job="$job"})',
    '(sum without(instance, symbol, venue)(pnl_unrealized{job="$job"})) or vector(0)',
    'sum without(instance, symbol, venue)(pnl_realized{job="$job"}) + '
    '((sum without(instance, symbol, venue)(pnl_unrealized{job="$job"})) or vector(0))',
)
ORIGINAL_VARIABLES = (("up", "job"), ('inventory_qty{job="$job"}', "venue"), ('inventory_qty{job="$job"}', "symbol"))

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_LABEL_VALUES = re.compile(r"^label_values\((?:(.+),\s*)?(\w+)\)$")


def _own(name: str) -> bool:
    """Series Prometheus itself writes for every target."""
    return name == "up" or name.startswith("scrape_")


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from _panels(node.get("panels", []))  # a collapsed row holds its panels


def _targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) for every target of every panel, nested rows included."""
    return [(p["title"], t["expr"]) for p in _panels(dashboard["panels"]) for t in p.get("targets", [])]


def _substitute(text: str) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: VARIABLES[m.group(1) or m.group(2)], text)


def _metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (not functions, aggregations, label names or keywords)."""
    bare = _GROUPING.sub(" ", _RANGE.sub(" ", _MATCHERS.sub(" ", _STRING.sub('""', expr))))
    return {name for name in _IDENTIFIER.findall(bare) if name not in _KEYWORDS}


@functools.cache
def _exposed_metric_names() -> frozenset[str]:
    """Sample names of the registry `dma_bot.main` builds, from its `# TYPE` lines (a histogram is 3 names)."""
    engine = build_engine(load_config(read_env_file(ROOT / ".env.mock"), {}), ManualClock(), asyncio.Event())
    assert engine.metrics is not None
    names: set[str] = set()
    for line in engine.metrics.exposition().decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            suffixes = ("_bucket", "_count", "_sum") if kind == "histogram" else ("",)
            names.update(name + suffix for suffix in suffixes)
    return frozenset(names)


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"`{name}` not on PATH (Debian: apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the Prometheus tests")
        pytest.skip(message)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Prometheus:
    process: asyncio.subprocess.Process
    url: str
    log: Path
    session: aiohttp.ClientSession

    async def get(self, path: str, **params: str | list[str]) -> Any:
        async with self.session.get(f"{self.url}{path}", params=params) as response:
            body = await response.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, expr: str, result_type: str = "vector", at: float | None = None) -> list[dict[str, Any]]:
        data = await self.get("/api/v1/query", query=expr, **({} if at is None else {"time": repr(at)}))
        assert data["resultType"] == result_type, (expr, data)
        return list(data["result"])

    def failed(self) -> str | None:
        if self.process.returncode is None:
            return None
        return f"prometheus exited {self.process.returncode}:\n{self.log.read_text(errors='replace')[-3000:]}"


@contextlib.asynccontextmanager
async def _prometheus(config: Path, workdir: Path) -> AsyncIterator[Prometheus]:
    """A real Prometheus server on a free port, answering /-/ready; terminated (then killed) on exit."""
    binary = _binary("prometheus")
    port = _free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            server = Prometheus(process, f"http://127.0.0.1:{port}", log, session)

            async def ready() -> bool:
                if (failure := server.failed()) is not None:
                    pytest.fail(failure)
                try:
                    async with session.get(f"{server.url}/-/ready") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, timeout=20, interval=0.05, what="prometheus answering /-/ready")
            yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


@dataclass
class Stack:
    prometheus: Prometheus
    daemon: Daemon


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """The daemon on the mock preset, and Prometheus holding >= 2 scrapes of every one of its series."""
    _binary("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    daemon = await start_daemon(
        {**DAEMON_ENV, "RECORD_FILE": str(workdir / "events.jsonl")}, "--env", str(ROOT / ".env.mock")
    )
    try:
        port = await daemon.wait_ready()
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            encoding="utf-8",
        )
        async with _prometheus(config, workdir) as prometheus:
            expected = _exposed_metric_names()
            statuses = {"ack", "partially_filled", "filled", "rejected"}

            async def scraped_enough() -> bool:
                if (failure := prometheus.failed()) is not None:
                    pytest.fail(failure)
                names = await prometheus.query(f'count by (__name__) ({{job="{JOB}"}})')
                seen_statuses = await prometheus.query(f'count by (status) (exec_reports_total{{job="{JOB}"}})')
                window = await prometheus.query(f'{{job="{JOB}"}}[{WINDOW}]', result_type="matrix")
                return (
                    expected <= {r["metric"]["__name__"] for r in names}
                    and statuses <= {r["metric"]["status"] for r in seen_statuses}
                    and all(len(s["values"]) >= 2 for s in window)  # rate() needs two samples in the window
                )

            await eventually(
                scraped_enough, timeout=45, interval=0.25, what="every daemon metric scraped twice by prometheus"
            )
            yield Stack(prometheus, daemon)
    finally:
        if daemon.process.returncode is None:
            daemon.process.kill()
        await daemon.finish(timeout=10)


def test_prometheus_yml_passes_promtool_check_config() -> None:
    """`promtool check config prometheus.yml` accepts the shipped config."""
    promtool = _binary("promtool")
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_YML)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


async def test_prometheus_yml_scrapes_daemon_every_5s_and_itself(tmp_path: Path) -> None:
    """Loaded by a real Prometheus, the shipped config has job dma_bot on localhost:9898 every 5s, and itself."""
    targets: list[dict[str, Any]] = []
    async with _prometheus(PROMETHEUS_YML, tmp_path) as prometheus:

        async def discovered() -> bool:
            targets[:] = (await prometheus.get("/api/v1/targets", state="active"))["activeTargets"]
            return len(targets) >= 2

        await eventually(discovered, timeout=20, what="both scrape targets of prometheus.yml discovered")
    by_job = {t["labels"]["job"]: t for t in targets}
    assert set(by_job) == {"dma_bot", "prometheus"}
    assert by_job["dma_bot"]["labels"]["instance"] == "localhost:9898"
    assert by_job["dma_bot"]["scrapeUrl"] == "http://localhost:9898/metrics"
    assert by_job["dma_bot"]["scrapeInterval"] == "5s"
    assert by_job["prometheus"]["labels"]["instance"] == "localhost:9090"


@pytest.mark.asyncio(loop_scope="module")
async def test_dashboard_expressions_all_return_data_from_prometheus(stack: Stack) -> None:
    """Every dashboard expression returns series (a `or vector(0)` fallback too, left side included)."""
    empty = []
    for title, expr in _targets(_dashboard()):
        queries = [expr]
        if expr.endswith(" or vector(0)") and not any(s in expr for s in NEVER_ON_MOCK):
            queries.append(expr.removesuffix(" or vector(0)"))  # the fallback must not hide a broken query
        for query in queries:
            if not await stack.prometheus.query(_substitute(query)):
                empty.append(f"{title}: {query}")
    assert empty == []


@pytest.mark.asyncio(loop_scope="module")
async def test_dashboard_latency_quantiles_are_finite(stack: Stack) -> None:
    """p50/p90/p95/p99 of latency_signal_to_ack_ms are finite positive milliseconds, in order."""
    quantiles = [(t, e) for t, e in _targets(_dashboard()) if e.startswith("histogram_quantile(")]
    at = time.time()  # one evaluation time for all four: the same data
    values = []
    for _, expr in quantiles:
        (sample,) = await stack.prometheus.query(_substitute(expr), at=at)
        values.append(float(sample["value"][1]))
    assert [e.split(",")[0] for _, e in quantiles] == [f"histogram_quantile(0.{q}" for q in ("50", "90", "95", "99")]
    assert all(math.isfinite(v) and v > 0 for v in values), values
    assert values == sorted(values)


@pytest.mark.asyncio(loop_scope="module")
async def test_dashboard_variables_list_values_from_prometheus(stack: Stack) -> None:
    """job, symbol and venue queries list the scraped job, the configured symbols and the venues."""
    found = {}
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES.match(variable["definition"])
            assert match is not None, variable["definition"]
            series = await stack.prometheus.get("/api/v1/series", **{"match[]": _substitute(match.group(1))})
            found[variable["name"]] = {s[match.group(2)] for s in series}
    assert JOB in found["job"]
    assert found["symbol"] == {"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT"}
    assert {"A", "B", "C", "MOCK"} <= found["venue"]


@pytest.mark.asyncio(loop_scope="module")
async def test_rust_dashboards_expressions_still_return_data(stack: Stack) -> None:
    """The Rust daemon's dashboards (expressions and variables, verbatim) work on this daemon's metrics."""
    empty = [expr for expr in ORIGINAL_EXPRESSIONS if not await stack.prometheus.query(_substitute(expr))]
    for selector, label in ORIGINAL_VARIABLES:
        series = await stack.prometheus.get("/api/v1/series", **{"match[]": _substitute(selector)})
        if not {s.get(label) for s in series} - {None}:
            empty.append(f"label_values({selector}, {label})")
    assert empty == []


@pytest.mark.asyncio(loop_scope="module")
async def test_dashboard_covers_live_metrics_and_filters_their_labels(stack: Stack) -> None:
    """The names Prometheus scraped are the dashboard's; a metric with symbol/venue is filtered by the variable."""
    scraped = await stack.prometheus.get("/api/v1/series", **{"match[]": f'{{job="{JOB}"}}'})
    labels: dict[str, set[str]] = {}
    for series in scraped:
        labels.setdefault(series["__name__"], set()).update(series)
    used = {name for _, expr in _targets(_dashboard()) for name in _metric_names(expr)}
    assert {n for n in labels if not _own(n)} == {n for n in used if not _own(n)}
    unfiltered = []
    for title, expr in _targets(_dashboard()):
        for name, matchers in _SELECTOR.findall(expr):
            for label in ("symbol", "venue"):
                if label in labels[name] and f'{label}=~"${label}"' not in matchers.replace(" ", ""):
                    unfiltered.append(f"{title}: {name} not filtered by ${label}")
    assert unfiltered == []


def test_dashboard_declares_prometheus_input_and_no_fixed_datasource() -> None:
    """Import asks for a Prometheus data source; every panel and target uses it; no datasource uid is fixed."""
    dashboard = _dashboard()
    assert [(i["name"], i["type"], i["pluginId"]) for i in dashboard["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")
    ]

    def datasources(node: Any) -> Iterator[Any]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "datasource":
                    yield value
                yield from datasources(value)
        elif isinstance(node, list):
            for item in node:
                yield from datasources(item)

    assert all(ds == DS for ds in datasources(dashboard))
    panels = list(_panels(dashboard["panels"]))
    assert all(p["datasource"] == DS for p in panels)
    assert all(t["datasource"] == DS for p in panels for t in p.get("targets", []))
    assert any(p["type"] == "row" and p["collapsed"] and p["panels"] for p in panels)


def test_dashboard_has_job_symbol_venue_and_rate_window_variables() -> None:
    """job from up, symbol and venue (multi, All = .*) from our metrics, rate_window 30s/1m/5m/15m."""
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert list(variables) == ["job", "symbol", "venue", "rate_window"]
    assert variables["job"]["definition"] == "label_values(up, job)"
    for name in ("symbol", "venue"):
        assert variables[name]["multi"] and variables[name]["includeAll"]
        assert variables[name]["allValue"] == ".*"
        match = _LABEL_VALUES.match(variables[name]["definition"])
        assert match is not None and match.group(2) == name
        assert 'job="$job"' in match.group(1)
        assert _metric_names(match.group(1)) <= _exposed_metric_names()
    assert variables["rate_window"]["type"] == "custom"
    assert [o["value"] for o in variables["rate_window"]["options"]] == ["30s", "1m", "5m", "15m"]


def test_dashboard_metrics_are_exactly_the_daemon_metrics() -> None:
    """Every metric the daemon exposes is in some panel, and nothing else is used but Prometheus' up/scrape_*."""
    used = {name for _, expr in _targets(_dashboard()) for name in _metric_names(expr)}
    assert {n for n in used if not _own(n)} == _exposed_metric_names()
    assert {n for n in used if _own(n)} == {"up", "scrape_duration_seconds", "scrape_samples_post_metric_relabeling"}


def test_dashboard_selectors_use_job_rate_window_and_real_statuses() -> None:
    """Each metric is selected with job="$job", each range is [$rate_window], each status filter is a real status."""
    problems = []
    statuses = {s.value for s in ExecStatus}
    for title, expr in _targets(_dashboard()):
        selectors = _SELECTOR.findall(expr)
        if {name for name, _ in selectors} != _metric_names(expr):
            problems.append(f"{title}: a metric without a selector in {expr}")
        problems += [f"{title}: {name} without job" for name, m in selectors if 'job="$job"' not in m]
        problems += [f"{title}: range {r}" for r in _RANGE.findall(expr) if r != "[$rate_window]"]
        problems += [f"{title}: status {s}" for s in re.findall(r'status="(\w+)"', expr) if s not in statuses]
    assert problems == []
