"""Shared test helpers: awaiting conditions instead of sleeping, and a real daemon process."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 20.0, interval: float = 0.02, what: str = ""
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds saying ``what`` did not happen."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():  # noqa: ASYNC110 - polls another process: no event to await
                await asyncio.sleep(interval)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout}s waiting for: {what or condition}")


@dataclass
class Daemon:
    """A real `python -m dma_bot` process; stderr is collected line by line."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    port: int | None = None
    _reader: asyncio.Task[None] | None = None
    _port_seen: asyncio.Event = field(default_factory=asyncio.Event)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            text = line.decode(errors="replace").rstrip("\n")
            self.lines.append(text)
            match = re.search(r"metrics on http://[^:]+:(\d+)/metrics", text)
            if match and self.port is None:
                self.port = int(match.group(1))
                self._port_seen.set()

    async def wait_ready(self, timeout: float = 30.0) -> int:
        waiter = asyncio.ensure_future(self._port_seen.wait())
        exited = asyncio.ensure_future(self.process.wait())
        try:
            await asyncio.wait({waiter, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, exited):
                task.cancel()
            await asyncio.gather(waiter, exited, return_exceptions=True)
        if self.port is None:
            await self.finish(timeout=5)
            pytest.fail("daemon did not report its metrics port; stderr:\n" + "\n".join(self.lines))
        return self.port

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    async def finish(self, timeout: float = 30.0) -> int:
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            if self._reader is not None:
                await self._reader
        return code

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)


async def start_daemon(
    env: Mapping[str, str], *args: str, cwd: Path | None = None, file_size_limit: int | None = None
) -> Daemon:
    """``python -m dma_bot *args`` with ``env``; ``file_size_limit`` caps the bytes any file it writes may hold
    (RLIMIT_FSIZE: a write past it fails with EFBIG, as a full disk fails with ENOSPC)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DMA_", "MOCK_", "RECORD_", "METRICS_"))}
    full_env.update(env)

    def limit_file_size() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dma_bot",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=full_env,
        cwd=str(cwd or ROOT),
        preexec_fn=limit_file_size if file_size_limit is not None else None,
    )
    daemon = Daemon(process)
    daemon._reader = asyncio.ensure_future(daemon._read())
    return daemon


@pytest.fixture
async def daemons() -> AsyncIterator[list[Daemon]]:
    """Daemons a test starts; any still running at the end are killed (a failing test leaks nothing)."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.returncode is None:
            daemon.process.kill()
        await daemon.finish(timeout=10)
