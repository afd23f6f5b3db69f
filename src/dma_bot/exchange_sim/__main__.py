"""Command line: ``python -m dma_bot.exchange_sim [--host H] [--port P] [--symbols A,B] [--api-key K
--api-secret S] [--seed N] [--quote-interval SECONDS] [--balance ASSET=AMOUNT ...] [--faults FILE]``.

It starts :class:`ExchangeSim`, prints its REST base URL, market-stream URLs, WebSocket API URL, the
admin URL and the accepted key pair on stdout, and runs until SIGINT or SIGTERM, then exits 0 (a second
signal kills it at once). ``--faults FILE`` plays a fault script (JSON lines ``{"at_s": 5, "fault":
{...}}``, see :mod:`dma_bot.exchange_sim.faults`) from start. Bad arguments or a bad fault script exit 2
with a one-line error.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from dma_bot.exchange_sim.faults import ScheduledFault, parse_script
from dma_bot.exchange_sim.market import parse_symbols
from dma_bot.exchange_sim.server import DEFAULT_API_KEY, DEFAULT_API_SECRET, ExchangeSim

__all__ = ["main"]


def _balance(text: str) -> tuple[str, Decimal]:
    asset, _, amount = text.partition("=")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        value = Decimal(-1)
    if not asset or not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"--balance: ASSET=AMOUNT with AMOUNT >= 0, was {text!r}")
    return asset.upper(), value


_DESCRIPTION = """A local Binance-Spot-compatible exchange for dma_bot and any Binance client.

It prints its REST base URL, market-stream URLs, WebSocket API URL, admin URL and the accepted key pair on
stdout, then serves until SIGINT or SIGTERM and exits 0 (a second signal kills it at once). --faults FILE
plays a fault script (JSON lines {"at_s": 5, "fault": {...}}; README "exchange_sim fault injection").
Bad arguments, a bad fault script or a port in use exit 2 with a one-line error."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dma_bot.exchange_sim", description=_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one (default 8765)")
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT",
                        help="comma list of symbols; NAME:STATUS lists one that does not trade "
                             "(default BTCUSDT,ETHUSDT)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY,
                        help="the API key it accepts (default: Binance's published signing-example key)")
    parser.add_argument("--api-secret", default=DEFAULT_API_SECRET,
                        help="the HMAC secret of --api-key (default: the example's secret)")
    parser.add_argument("--ed25519-api-key", help="a second API key, verified with --ed25519-public-key")
    parser.add_argument("--ed25519-public-key", help="path of the Ed25519 public key (PEM) for session.logon")
    parser.add_argument("--seed", type=int, default=0, help="seed of the quote random walk (default 0)")
    parser.add_argument("--quote-interval", type=float, default=0.1,
                        help="seconds between quote moves; 0: the market moves only when told (default 0.1)")
    parser.add_argument("--ping-interval", type=float, default=20.0,
                        help="seconds between WebSocket pings to clients (default 20)")
    parser.add_argument("--balance", type=_balance, action="append", default=[], metavar="ASSET=AMOUNT",
                        help="the account's starting balance of ASSET (repeat per asset)")
    parser.add_argument("--faults", metavar="FILE", help='fault script: JSON lines {"at_s": S, "fault": {...}}')
    return parser


async def _serve(sim: ExchangeSim) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        stop.set()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)  # a second signal takes the default action: exit at once

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    async with sim:
        print(f"REST        {sim.rest_url}   (ccxt urls: {sim.api_url})", flush=True)
        print(f"streams     {sim.ws_url}/<stream>   combined: {sim.stream_url}?streams=<a>/<b>", flush=True)
        print(f"WS API      {sim.ws_api_url}", flush=True)
        print(f"admin       {sim.rest_url}/_sim/faults", flush=True)
        script = sim.fault_script
        if script:
            print(f"faults      {len(script)} scheduled, the last at {script[-1].at_ns / 1e9} s", flush=True)
        print(f"api key     {sim.api_key}", flush=True)
        print(f"api secret  {sim.api_secret}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        public_key = None
        if args.ed25519_public_key:
            with open(args.ed25519_public_key, encoding="ascii") as handle:
                public_key = handle.read()
        symbols = parse_symbols(args.symbols)
        script: list[ScheduledFault] = []
        if args.faults:
            with open(args.faults, encoding="utf-8") as handle:
                script = parse_script(handle.read(), args.faults, symbols={s.symbol for s in symbols})
        sim = ExchangeSim(
            symbols,
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            api_secret=args.api_secret,
            ed25519_api_key=args.ed25519_api_key,
            ed25519_public_key=public_key,
            seed=args.seed,
            balances=dict(args.balance) or None,
            quote_interval=args.quote_interval or None,
            ping_interval=args.ping_interval,
            fault_script=script,
        )
    except (ValueError, OSError) as error:
        print(f"exchange_sim: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(sim))
    except OSError as error:  # the port is taken, or the address is not ours: a usage error like a bad argument
        print(f"exchange_sim: --host/--port: a free address to listen on, was {args.host}:{args.port} "
              f"({error.strerror or error})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
