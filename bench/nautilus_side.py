"""NautilusTrader's side of ``bench/backtest.py``: the same recording through a NautilusTrader BacktestEngine.

A standalone script, run by the NautilusTrader venv's Python (``bench/backtest.py --nautilus-python PATH``);
NautilusTrader is never a dependency of dma_bot, and this file imports nothing of dma_bot (it reads our JSONL with
orjson, or the standard json module where that venv has no orjson). It reads the ``Md`` lines of one symbol of a
recording (decimal strings -> NautilusTrader's fixed-point raw integers, exactly: no float on the way), builds
``QuoteTick`` objects for a ``CurrencyPair`` on a SIM venue whose price and size precision are the recording's grid
(its Start record), loads them into a ``BacktestEngine`` (cash account, NETTING, L1 book) with a strategy that
subscribes to the quote ticks and submits a market order every ``--every`` quotes, alternating buy and sell. Only
``engine.run()`` is timed for quotes/s; reading, building and loading the data are reported separately. The last
stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from decimal import Decimal
from typing import Any

try:  # orjson is what the brief asks for; the NautilusTrader venv may not have it, and json reads the same lines
    import orjson

    _loads: Any = orjson.loads
    _PARSER = "orjson"
except ImportError:
    import json

    _loads = json.loads
    _PARSER = "json"


def _places(size: str) -> int:
    exponent = Decimal(size).normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _raw(text: str, places: int, scale: int) -> int:
    """A decimal string with at most ``places`` decimals -> the fixed-point raw integer (value * 10**fixed)."""
    whole, _, fraction = text.partition(".")
    if len(fraction) > places:
        raise ValueError(f"{text!r} has more than {places} decimals")
    return int(whole + fraction.ljust(places, "0")) * scale


def _read(path: str, symbol: str, fixed: int) -> tuple[int, int, dict[str, list[int]]]:
    """The recording's quotes of ``symbol`` as raw columns, and the grid's price and size precision."""
    price_places = size_places = None
    bids: list[int] = []
    asks: list[int] = []
    bid_sizes: list[int] = []
    ask_sizes: list[int] = []
    stamps: list[int] = []
    price_scale = size_scale = 1
    with open(path, "rb") as file:
        for line in file:
            record = _loads(line)
            kind = record.get("type")
            if kind == "Md":
                if record["symbol"] != symbol:
                    continue
                bids.append(_raw(record["bid"], price_places, price_scale))  # type: ignore[arg-type]
                asks.append(_raw(record["ask"], price_places, price_scale))  # type: ignore[arg-type]
                bid_sizes.append(_raw(record["bid_qty"], size_places, size_scale))  # type: ignore[arg-type]
                ask_sizes.append(_raw(record["ask_qty"], size_places, size_scale))  # type: ignore[arg-type]
                stamps.append(record["ts_event_ns"])
            elif kind == "Start" and price_places is None:
                grid = record["instruments"][symbol]
                price_places, size_places = _places(grid["tick_size"]), _places(grid["step_size"])
                price_scale, size_scale = 10 ** (fixed - price_places), 10 ** (fixed - size_places)
    if price_places is None or size_places is None:
        raise SystemExit(f"nautilus_side: {path}: a recording with a Start record naming {symbol}, was none")
    if not stamps:
        raise SystemExit(f"nautilus_side: {path}: quotes of {symbol}, was none")
    columns = {"bid": bids, "ask": asks, "bid_size": bid_sizes, "ask_size": ask_sizes, "ts": stamps}
    return price_places, size_places, columns


def json_line(result: dict[str, Any]) -> str:
    import json

    return json.dumps(result, separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recording", help="one of our JSONL recordings")
    parser.add_argument("--symbol", default="BTCUSDT", help="the symbol to replay (default BTCUSDT)")
    parser.add_argument("--every", type=int, default=1000, help="quotes between market orders (default 1000)")
    parser.add_argument("--qty", default="10", help="order quantity in base units (default 10)")
    args = parser.parse_args(argv)

    import nautilus_trader
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.data import QuoteTick
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import FIXED_PRECISION, Currency, Money, Price, Quantity
    from nautilus_trader.trading.strategy import Strategy

    class EveryNConfig(StrategyConfig, frozen=True):
        instrument_id: InstrumentId
        every: int
        quantity: str

    class EveryN(Strategy):
        """A market order every ``every`` quotes, alternating buy and sell."""

        def __init__(self, config: EveryNConfig) -> None:
            super().__init__(config)
            self.quotes = 0
            self.orders = 0
            self.fills = 0
            self.quantity: Any = None

        def on_start(self) -> None:
            instrument = self.cache.instrument(self.config.instrument_id)
            self.quantity = instrument.make_qty(Decimal(self.config.quantity))
            self.subscribe_quote_ticks(self.config.instrument_id)

        def on_quote_tick(self, tick: Any) -> None:
            self.quotes += 1
            if self.quotes % self.config.every:
                return
            side = OrderSide.BUY if self.orders % 2 == 0 else OrderSide.SELL
            self.orders += 1
            order = self.order_factory.market(self.config.instrument_id, side, self.quantity)
            self.submit_order(order)

        def on_order_filled(self, event: Any) -> None:
            self.fills += 1

    started = time.perf_counter()
    price_prec, size_prec, columns = _read(args.recording, args.symbol, FIXED_PRECISION)
    read_s = time.perf_counter() - started

    symbol = args.symbol
    base_code = symbol[:-4] if symbol.endswith("USDT") else symbol
    base = Currency.from_str(base_code)
    venue = Venue("SIM")
    instrument_id = InstrumentId(Symbol(symbol), venue)
    tick_size = f"{Decimal(1).scaleb(-price_prec):f}"
    step_size = f"{Decimal(1).scaleb(-size_prec):f}"
    instrument = CurrencyPair(
        instrument_id=instrument_id, raw_symbol=Symbol(symbol), base_currency=base, quote_currency=USDT,
        price_precision=price_prec, size_precision=size_prec, price_increment=Price.from_str(tick_size),
        size_increment=Quantity.from_str(step_size), ts_event=0, ts_init=0,
        maker_fee=Decimal("0.0005"), taker_fee=Decimal("0.0005"),
    )

    started = time.perf_counter()
    # Exact: from the raw fixed-point integers (from_raw_arrays_to_list would go through doubles).
    from_raw = QuoteTick.from_raw
    ticks = [
        from_raw(instrument_id, bid, ask, price_prec, price_prec, bid_size, ask_size, size_prec, size_prec, ts, ts)
        for bid, ask, bid_size, ask_size, ts in zip(columns["bid"], columns["ask"], columns["bid_size"],
                                                    columns["ask_size"], columns["ts"], strict=True)
    ]
    build_s = time.perf_counter() - started
    del columns

    engine = BacktestEngine(BacktestEngineConfig(trader_id=TraderId("BENCH-001"),
                                                 logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(venue=venue, oms_type=OmsType.NETTING, account_type=AccountType.CASH,
                     starting_balances=[Money(1_000_000_000, USDT), Money(1_000_000, base)])
    engine.add_instrument(instrument)
    started = time.perf_counter()
    engine.add_data(ticks)
    load_s = time.perf_counter() - started
    quotes = len(ticks)
    del ticks
    strategy = EveryN(EveryNConfig(instrument_id=instrument_id, every=args.every, quantity=args.qty))
    engine.add_strategy(strategy)

    started = time.perf_counter()
    engine.run()
    run_s = time.perf_counter() - started
    fills = len(engine.cache.orders_closed())  # filled market orders (each fills at once on an L1 book)
    engine.dispose()

    result = {
        "engine": "nautilus",
        "version": nautilus_trader.__version__,
        "python": sys.version.split()[0],
        "quotes": quotes,
        "strategy_quotes": strategy.quotes,
        "orders": strategy.orders,
        "fill_events": strategy.fills,
        "orders_closed": fills,
        "read_s": round(read_s, 3),
        "build_s": round(build_s, 3),
        "load_s": round(load_s, 3),
        "run_s": round(run_s, 3),
        "quotes_per_s": round(quotes / run_s) if run_s > 0 else None,
        "parser": _PARSER,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(f"nautilus {result['version']}: {quotes:,} quotes in {result['run_s']} s (engine.run): "
          f"{result['quotes_per_s']:,} quotes/s; orders {strategy.orders:,}, fill events {strategy.fills:,}; "
          f"read {result['read_s']} s, build {result['build_s']} s, load {result['load_s']} s")
    print(json_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
