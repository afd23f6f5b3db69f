"""``python -m dma_bot.exchange_sim`` as a real process: it prints its URLs and keys, serves a moving
market, and exits 0 on SIGTERM; bad arguments exit 2."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest


@pytest.fixture
async def process() -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dma_bot.exchange_sim",
        "--port",
        "0",
        "--symbols",
        "BTCUSDT,LTCUSDT:HALT",
        "--quote-interval",
        "0.02",
        "--api-key",
        "cli-key",
        "--api-secret",
        "cli-secret",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        async with asyncio.timeout(10):
            await proc.communicate()


async def read_banner(proc: asyncio.subprocess.Process) -> dict[str, str]:
    assert proc.stdout is not None
    lines: dict[str, str] = {}
    async with asyncio.timeout(20):
        while "api secret" not in lines:
            line = (await proc.stdout.readline()).decode()
            assert line, "exchange_sim exited before printing its banner"
            name, _, value = line.rstrip("\n").partition("  ")
            lines[name] = value.strip()
    return lines


async def test_cli_prints_urls_serves_a_moving_market_and_exits_0_on_sigterm(
    process: asyncio.subprocess.Process,
) -> None:
    """The banner names REST, streams, WS API and the key pair; quotes move by themselves; SIGTERM exits 0."""
    banner = await read_banner(process)
    rest = banner["REST"].split()[0]
    streams = banner["streams"].split()[0]
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(5), http.get(f"{rest}/api/v3/exchangeInfo") as response:
            info = await response.json()
        async with http.ws_connect(f"{streams}/btcusdt@bookTicker") as ws, asyncio.timeout(5):
            first, second = await ws.receive_json(), await ws.receive_json()

    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(10):
        code = await process.wait()

    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", rest) and banner["WS API"].endswith("/ws-api/v3")
    assert (banner["api key"], banner["api secret"]) == ("cli-key", "cli-secret")
    assert {s["symbol"]: s["status"] for s in info["symbols"]} == {"BTCUSDT": "TRADING", "LTCUSDT": "HALT"}
    assert second["u"] > first["u"] and first["s"] == "BTCUSDT"
    assert code == 0


async def test_cli_bad_symbol_exits_2_with_one_line() -> None:
    """An unusable --symbols value exits 2 and says why on stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dma_bot.exchange_sim",
        "--symbols",
        "NOTASYMBOL",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        _, stderr = await proc.communicate()

    assert proc.returncode == 2 and b"symbol:" in stderr


async def _exchange_sim(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dma_bot.exchange_sim", *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_help_is_plain_text_and_every_option_says_what_it_is() -> None:
    """--help used to show raw Sphinx markup (:class:) and options without a word of help."""
    code, out, _ = await _exchange_sim("--help")

    assert code == 0
    assert ":class:" not in out and ":mod:" not in out and "``" not in out
    options = out.split("options:")[1]
    entries = re.split(r"\n  (?=-)", options.strip())
    undocumented = [entry.split()[0] for entry in entries if len(entry.split("  ")) < 2 and "\n" not in entry]
    assert undocumented == [], undocumented


async def test_cli_port_in_use_is_one_line_and_exit_2(process: asyncio.subprocess.Process) -> None:
    """A port another process listens on is a usage error like a bad argument: one line, exit 2 (it was 1)."""
    banner = await read_banner(process)
    port = banner["REST"].split()[0].rsplit(":", 1)[1]

    code, _, err = await _exchange_sim("--port", port)

    assert code == 2
    assert err.splitlines() == [err.strip()]
    assert err.startswith(f"exchange_sim: --host/--port: a free address to listen on, was 127.0.0.1:{port} (")
