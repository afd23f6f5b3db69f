"""MetricsServer: serves the exposition at / and /metrics, and /healthz, from the daemon's own event loop.

``start()`` binds the port before trading starts, so a taken port is a start-up error (exit 2), not a
surprise later. Port 0 picks a free port (tests); ``port`` tells which.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from dma_bot.errors import StartupError
from dma_bot.metrics.registry import CONTENT_TYPE, Metrics

__all__ = ["MetricsServer"]


class MetricsServer:
    def __init__(
        self,
        metrics: Metrics,
        host: str,
        port: int,
        health: Callable[[], tuple[bool, dict[str, Any]]] | None = None,
    ) -> None:
        self._metrics = metrics
        self._health = health
        self._host = host
        self._requested_port = port
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def _handle_health(self, request: web.Request) -> web.Response:
        assert self._health is not None
        healthy, body = self._health()
        return web.Response(
            body=orjson.dumps(body), status=200 if healthy else 503, content_type="application/json"
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._handle_metrics)
        app.router.add_get("/metrics", self._handle_metrics)
        if self._health is not None:
            app.router.add_get("/healthz", self._handle_health)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            reason = "port already in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
            raise StartupError(
                f"METRICS_PORT: a free port on {self._host}, was {self._requested_port} ({reason})"
            ) from e
        self._runner = runner
        sockets = [s for s in (runner.addresses or [])]
        if sockets:
            self.port = sockets[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
