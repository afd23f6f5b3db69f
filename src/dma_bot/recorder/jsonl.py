"""The JSONL audit-trail format: every event as one JSON object per line, and back.

Owns the record layout (schema version ``v`` = 1) and the numbering of records: the encoder gives each
line ``seq`` 1, 2, 3... in the order it encodes them, which is file order, and counts the records of each
``type`` (``Md``, ``Sig``, ``Ord``, ``Route``, ``Exec``, ``Reject``, ``Note``, ``Account``, ``Start``,
``Stop``) so the ``Stop`` record can say how many came before it. ``Account`` is a venue's account read
(balances as exact decimal strings per asset, open order ids), written through orjson like the other rare
records. Prices and quantities are decimal strings of the symbol's grid (``Instrument.format_price``/
``format_qty``, memoised per grid size in a bounded cache shared by the symbols on that grid), fees
``str(Decimal)``, timestamps integer nanoseconds. It does no I/O and reads no clock: the writer owns the file, and
``Start``/``Stop`` carry only the fields they are handed (nothing is read from config, so no secret can
leak in). ``recorder.jsonl_decode`` reads the lines back: ``to_event(decode_record(encode(e))) == e``.

The per-tick records (``Md``, ``Sig``, ``Reject``) are spelled by f-string templates, byte for byte what
orjson writes for the same dict: every value is an exact int, a grid string (digits, '-', '.') or a string
that went through ``orjson.dumps`` (memoised: strategy names, sides, reasons and risk details repeat). A
``Sig`` or ``Reject`` whose timestamps are not exact ints goes through orjson like the rarer records; such
an ``Md`` is refused. A ``TickBatch``, ``SignalBatch`` or ``RejectBatch`` gives one line per row, the same bytes
(and ``seq`` numbers and counts) as its rows encoded one by one, built column-wise.

Sample (one line)::

    {"type":"Md","seq":2,"ts_ns":1700000000000100000,"v":1,"symbol":"BTCUSDT","bid":"65000.12",
     "ask":"65000.13","bid_qty":"1.23456","ask_qty":"0.98765","ts_event_ns":1700000000000000000}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, NoReturn, TypeVar

import orjson

from dma_bot.model.enums import Side
from dma_bot.model.events import (
    AccountSnapshot,
    ExecReport,
    Note,
    Order,
    RejectBatch,
    RiskReject,
    Route,
    Signal,
    SignalBatch,
    Tick,
    TickBatch,
)
from dma_bot.model.grid import format_units, power_of_ten_places
from dma_bot.model.instrument import Instrument

__all__ = [
    "EVENT_TYPES",
    "FORMAT_CACHE_LIMIT",
    "RECORD_TYPES",
    "SCHEMA_VERSION",
    "Event",
    "JsonlEncoder",
    "instrument_fields",
]

SCHEMA_VERSION: Final = 1
E = TypeVar("E")
EVENT_TYPES: Final = ("Md", "Sig", "Ord", "Route", "Exec", "Reject", "Note", "Account")
RECORD_TYPES: Final = (*EVENT_TYPES, "Start", "Stop")
FORMAT_CACHE_LIMIT: Final = 16384
"""Entries in each grid's string cache (and in the JSON string cache); a full cache is cleared."""

_RESERVED: Final = frozenset({"type", "seq", "ts_ns", "v"})
_APPEND_NEWLINE: Final = orjson.OPT_APPEND_NEWLINE

Event = (
    Tick | TickBatch | Signal | SignalBatch | Order | Route | ExecReport | RiskReject | RejectBatch | Note
    | AccountSnapshot
)


def instrument_fields(instruments: Mapping[str, Instrument]) -> dict[str, dict[str, str]]:
    """The ``instruments`` field of a Start record: each symbol's grid and assets as strings (what a reader
    turns the section's decimal strings back into ticks and steps with)."""
    return {
        symbol: {"tick_size": str(i.tick_size), "step_size": str(i.step_size), "base_asset": i.base_asset,
                 "quote_asset": i.quote_asset}
        for symbol, i in instruments.items()
    }


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"recorder: {type(value).__name__} is not JSON-able")


def _dumps(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=_APPEND_NEWLINE, default=_json_default)


class _GridStrings:
    """Memoised decimal strings of one grid size (prices and quantities on an equal grid spell alike), as
    ``Instrument.format_price``/``format_qty`` spell them (the same :func:`~dma_bot.model.grid.format_units`)."""

    __slots__ = ("_places", "_size", "strings")

    def __init__(self, size: Decimal) -> None:
        self.strings: dict[int, str] = {}
        self._size = size
        self._places = power_of_ten_places(size)

    def text(self, units: int) -> str:
        strings = self.strings
        text = strings.get(units)
        if text is None:
            if len(strings) >= FORMAT_CACHE_LIMIT:
                strings.clear()
            text = strings[units] = format_units(units, self._size, self._places)
        return text


class _SymbolFormat:
    """One symbol's JSON spelling and its grids' memoised strings (``price``/``qty`` fill the caches)."""

    __slots__ = ("json_symbol", "md_symbol", "price", "prices", "qty", "quantities")

    def __init__(self, instrument: Instrument, grids: dict[Decimal, _GridStrings]) -> None:
        self.json_symbol = orjson.dumps(instrument.symbol).decode()
        self.md_symbol = f',"v":1,"symbol":{self.json_symbol},"bid":"'
        price_grid = grids.get(instrument.tick_size)
        if price_grid is None:
            price_grid = grids[instrument.tick_size] = _GridStrings(instrument.tick_size)
        qty_grid = grids.get(instrument.step_size)
        if qty_grid is None:
            qty_grid = grids[instrument.step_size] = _GridStrings(instrument.step_size)
        self.prices = price_grid.strings
        self.quantities = qty_grid.strings
        self.price: Callable[[int], str] = price_grid.text
        self.qty: Callable[[int], str] = qty_grid.text


class JsonlEncoder:
    """Event -> one JSON line (bytes, ending in b"\\n"), numbering the lines it makes; a TickBatch,
    SignalBatch or RejectBatch gives one line per row (the same bytes as its rows encoded one by one)."""

    __slots__ = ("_encoders", "_formats", "_json_strings", "_seq", "counts")

    def __init__(self, instruments: Mapping[str, Instrument]) -> None:
        grids: dict[Decimal, _GridStrings] = {}
        self._formats = {symbol: _SymbolFormat(instrument, grids) for symbol, instrument in instruments.items()}
        self._json_strings: dict[str, str] = {}
        self._seq = 0
        self.counts: dict[str, int] = dict.fromkeys(RECORD_TYPES, 0)
        self._encoders: dict[type, Callable[[Any], bytes]] = {
            Tick: self._md,
            TickBatch: self._md_batch,
            Signal: self._sig,
            SignalBatch: self._sig_batch,
            Order: self._ord,
            Route: self._route,
            ExecReport: self._exec,
            RiskReject: self._reject,
            RejectBatch: self._reject_batch,
            Note: self._note,
            AccountSnapshot: self._account,
        }

    @property
    def seq(self) -> int:
        """The ``seq`` of the last record encoded (0 before the first)."""
        return self._seq

    def encode(self, event: Event) -> bytes:
        encoder = self._encoders.get(type(event))
        if encoder is None:
            _not_an_event(event)
        return encoder(event)

    def encoder_for(self, event_type: type[E]) -> Callable[[E], bytes]:
        """``encode`` for events of exactly ``event_type``, without the per-call dispatch on the type (a loop
        that knows what it encodes); TypeError for a type that is not an event."""
        encoder = self._encoders.get(event_type)
        if encoder is None:
            raise TypeError(f"recorder: no encoder for {event_type.__name__}, only {EVENT_TYPES} events")
        return encoder

    def encode_batch(self, events: Iterable[Event], lines: list[bytes]) -> None:
        """Append the line of each of ``events`` to ``lines``, in order (``encode`` without a call per event).

        If an event cannot be encoded, the lines of the events before it are already in ``lines`` (their
        ``seq`` numbers are used) and the error propagates."""
        encoders = self._encoders
        append = lines.append
        for event in events:
            encoder = encoders.get(type(event))
            if encoder is None:
                _not_an_event(event)
            append(encoder(event))

    def encode_control(self, type_: str, fields: Mapping[str, Any], *, ts_ns: int) -> bytes:
        """A ``Start`` or ``Stop`` record with ``fields`` (JSON-able; Decimal becomes a string).

        ``Stop`` also gets ``counts``: the records encoded so far per type, itself excluded."""
        if type_ not in ("Start", "Stop"):
            raise ValueError(f"recorder: control type must be Start or Stop, was {type_!r}")
        reserved = _RESERVED.union({"counts"}) if type_ == "Stop" else _RESERVED
        clashes = reserved.intersection(fields)
        if clashes:
            raise ValueError(f"recorder: {type_} fields must not set {sorted(clashes)}")
        seq = self._seq + 1
        record: dict[str, Any] = {"type": type_, "seq": seq, "ts_ns": ts_ns, "v": SCHEMA_VERSION}
        if type_ == "Stop":
            record["counts"] = {name: count for name, count in self.counts.items() if name != "Stop"}
        record.update(fields)
        line = _dumps(record)
        self._commit(type_, seq)
        return line

    def _commit(self, type_: str, seq: int) -> None:
        self._seq = seq
        self.counts[type_] += 1

    def _format(self, symbol: str) -> _SymbolFormat:
        fmt = self._formats.get(symbol)
        if fmt is None:
            _unknown_symbol(symbol)
        return fmt

    def _json(self, text: str) -> str:
        """``orjson.dumps(text)`` as str, memoised (strategy names, sides, reasons and details repeat)."""
        strings = self._json_strings
        spelled = strings.get(text)
        if spelled is None:
            if len(strings) >= FORMAT_CACHE_LIMIT:
                strings.clear()
            spelled = strings[text] = orjson.dumps(text).decode()
        return spelled

    def _md(self, tick: Tick) -> bytes:
        symbol, bid, ask, bid_qty, ask_qty, ts_event_ns, ts_ns = _loose(tick)
        fmt = self._formats.get(symbol)
        if fmt is None:
            _unknown_symbol(symbol)
        if type(ts_ns) is not int or type(ts_event_ns) is not int:
            raise ValueError(f"recorder: Md timestamps must be int, were {ts_ns!r} and {ts_event_ns!r}")
        prices = fmt.prices
        quantities = fmt.quantities
        bid_text = prices.get(bid) or fmt.price(bid)
        ask_text = prices.get(ask) or fmt.price(ask)
        bid_qty_text = quantities.get(bid_qty) or fmt.qty(bid_qty)
        ask_qty_text = quantities.get(ask_qty) or fmt.qty(ask_qty)
        seq = self._seq + 1
        ts_text = f"{ts_ns}"
        event_text = ts_text if ts_event_ns == ts_ns else f"{ts_event_ns}"  # the mock feed stamps both alike
        line = (
            f'{{"type":"Md","seq":{seq},"ts_ns":{ts_text}{fmt.md_symbol}{bid_text}","ask":"{ask_text}",'
            f'"bid_qty":"{bid_qty_text}","ask_qty":"{ask_qty_text}","ts_event_ns":{event_text}}}\n'
        ).encode()
        self._seq = seq
        self.counts["Md"] += 1
        return line

    def _md_batch(self, batch: TickBatch) -> bytes:
        """One Md line per row, byte for byte what ``_md`` writes for each row's Tick, built column-wise."""
        fmt = self._formats.get(batch.symbol)
        if fmt is None:
            _unknown_symbol(batch.symbol)
        loose = _loose(batch)
        ts_ns, ts_event_ns = loose.ts_ns, loose.ts_event_ns
        if type(ts_ns) is not int or type(ts_event_ns) is not int:
            raise ValueError(f"recorder: Md timestamps must be int, were {ts_ns!r} and {ts_event_ns!r}")
        bids = _grid_texts(fmt.prices, fmt.price, batch.bid.tolist())
        asks = _grid_texts(fmt.prices, fmt.price, batch.ask.tolist())
        bid_qtys = _grid_texts(fmt.quantities, fmt.qty, batch.bid_qty.tolist())
        ask_qtys = _grid_texts(fmt.quantities, fmt.qty, batch.ask_qty.tolist())
        seq = self._seq
        n = len(bids)
        head = '{"type":"Md","seq":'
        middle = f',"ts_ns":{ts_ns}{fmt.md_symbol}'
        tail = f'","ts_event_ns":{ts_event_ns}}}\n'
        lines = "".join([
            f'{head}{number}{middle}{b}","ask":"{a}","bid_qty":"{bq}","ask_qty":"{aq}{tail}'
            for number, b, a, bq, aq in zip(range(seq + 1, seq + n + 1), bids, asks, bid_qtys, ask_qtys, strict=True)
        ]).encode()
        self._seq = seq + n
        self.counts["Md"] += n
        return lines

    def _sig(self, signal: Signal) -> bytes:
        strategy, symbol, side, price, quantity, ts_event_ns, ts_ns = _loose(signal)
        fmt = self._formats.get(symbol)
        if fmt is None:
            _unknown_symbol(symbol)
        if type(ts_ns) is not int or type(ts_event_ns) is not int:
            return self._sig_dict(signal, fmt)
        strings = self._json_strings
        price_text = fmt.prices.get(price) or fmt.price(price)
        qty_text = fmt.quantities.get(quantity) or fmt.qty(quantity)
        strategy_json = strings.get(strategy) or self._json(strategy)
        side_json = strings.get(side) or self._json(side)
        seq = self._seq + 1
        line = (
            f'{{"type":"Sig","seq":{seq},"ts_ns":{ts_ns},"v":1,"strategy":{strategy_json},'
            f'"symbol":{fmt.json_symbol},"side":{side_json},"price":"{price_text}","quantity":"{qty_text}",'
            f'"ts_event_ns":{ts_event_ns}}}\n'
        ).encode()
        self._seq = seq
        self.counts["Sig"] += 1
        return line

    def _sig_batch(self, batch: SignalBatch) -> bytes:
        """One Sig line per row, byte for byte what ``_sig`` writes for each row's Signal, built column-wise:
        the shared fields are spelled once, per row only ``seq``, the side and the price."""
        fmt = self._formats.get(batch.symbol)
        if fmt is None:
            _unknown_symbol(batch.symbol)
        loose = _loose(batch)
        ts_ns, ts_event_ns = loose.ts_ns, loose.ts_event_ns
        if type(ts_ns) is not int or type(ts_event_ns) is not int:
            return b"".join([self._sig(signal) for signal in batch.rows()])
        prices = _grid_texts(fmt.prices, fmt.price, batch.price.tolist())
        buys = batch.buy.tolist()
        quantity = batch.quantity
        qty_text = fmt.quantities.get(quantity) or fmt.qty(quantity)
        buy, sell = self._side_heads(fmt, batch.strategy, ts_ns)
        tail = f'","quantity":"{qty_text}","ts_event_ns":{ts_event_ns}}}\n'
        seq = self._seq
        n = len(prices)
        lines = "".join([
            f'{{"type":"Sig","seq":{number}{buy if b else sell}{p}{tail}'
            for number, b, p in zip(range(seq + 1, seq + n + 1), buys, prices, strict=True)
        ]).encode()
        self._seq = seq + n
        self.counts["Sig"] += n
        return lines

    def _side_heads(self, fmt: _SymbolFormat, strategy: str, ts_ns: int) -> tuple[str, str]:
        """The middle of a Sig/Reject line from ``ts_ns`` through the side to the price's opening quote, for a
        buy and for a sell (a batch's rows share everything in it but the side)."""
        common = f',"ts_ns":{ts_ns},"v":1,"strategy":{self._json(strategy)},"symbol":{fmt.json_symbol},"side":'
        return f'{common}{self._json(Side.BUY)},"price":"', f'{common}{self._json(Side.SELL)},"price":"'

    def _sig_dict(self, signal: Any, fmt: _SymbolFormat) -> bytes:  # Any: see _loose
        """The Sig line through orjson, for timestamps that are not exact ints (the template prints ints)."""
        seq = self._seq + 1
        line = _dumps({
            "type": "Sig", "seq": seq, "ts_ns": signal.ts_ns, "v": SCHEMA_VERSION,
            "strategy": signal.strategy, "symbol": signal.symbol, "side": signal.side,
            "price": fmt.price(signal.price), "quantity": fmt.qty(signal.quantity),
            "ts_event_ns": signal.ts_event_ns,
        })
        self._commit("Sig", seq)
        return line

    def _reject(self, reject: RiskReject) -> bytes:
        strategy, symbol, side, price, quantity, reason, detail, ts_signal_ns, ts_ns = _loose(reject)
        fmt = self._formats.get(symbol)
        if fmt is None:
            _unknown_symbol(symbol)
        if type(ts_ns) is not int or type(ts_signal_ns) is not int:
            return self._reject_dict(reject, fmt)
        strings = self._json_strings
        price_text = fmt.prices.get(price) or fmt.price(price)
        qty_text = fmt.quantities.get(quantity) or fmt.qty(quantity)
        strategy_json = strings.get(strategy) or self._json(strategy)
        side_json = strings.get(side) or self._json(side)
        reason_json = strings.get(reason) or self._json(reason)
        detail_json = strings.get(detail) or self._json(detail)
        seq = self._seq + 1
        line = (
            f'{{"type":"Reject","seq":{seq},"ts_ns":{ts_ns},"v":1,"strategy":{strategy_json},'
            f'"symbol":{fmt.json_symbol},"side":{side_json},"price":"{price_text}","quantity":"{qty_text}",'
            f'"reason":{reason_json},"detail":{detail_json},"ts_signal_ns":{ts_signal_ns}}}\n'
        ).encode()
        self._seq = seq
        self.counts["Reject"] += 1
        return line

    def _reject_batch(self, batch: RejectBatch) -> bytes:
        """One Reject line per row, byte for byte what ``_reject`` writes for each row's RiskReject, built
        column-wise: per row only ``seq``, the side, the price and the (memoised) reason and detail."""
        fmt = self._formats.get(batch.symbol)
        if fmt is None:
            _unknown_symbol(batch.symbol)
        loose = _loose(batch)
        ts_ns, ts_signal_ns = loose.ts_ns, loose.ts_signal_ns
        if type(ts_ns) is not int or type(ts_signal_ns) is not int:
            return b"".join([self._reject(reject) for reject in batch.rows()])
        prices = _grid_texts(fmt.prices, fmt.price, batch.price.tolist())
        buys = batch.buy.tolist()
        reasons = _grid_texts(self._json_strings, self._json, batch.reasons)
        details = _grid_texts(self._json_strings, self._json, batch.details)
        quantity = batch.quantity
        qty_text = fmt.quantities.get(quantity) or fmt.qty(quantity)
        buy, sell = self._side_heads(fmt, batch.strategy, ts_ns)
        middle = f'","quantity":"{qty_text}","reason":'
        tail = f',"ts_signal_ns":{ts_signal_ns}}}\n'
        seq = self._seq
        n = len(prices)
        lines = "".join([
            f'{{"type":"Reject","seq":{number}{buy if b else sell}{p}{middle}{r},"detail":{d}{tail}'
            for number, b, p, r, d in zip(range(seq + 1, seq + n + 1), buys, prices, reasons, details, strict=True)
        ]).encode()
        self._seq = seq + n
        self.counts["Reject"] += n
        return lines

    def _reject_dict(self, reject: Any, fmt: _SymbolFormat) -> bytes:  # Any: see _loose
        """The Reject line through orjson, for timestamps that are not exact ints."""
        seq = self._seq + 1
        line = _dumps({
            "type": "Reject", "seq": seq, "ts_ns": reject.ts_ns, "v": SCHEMA_VERSION,
            "strategy": reject.strategy, "symbol": reject.symbol, "side": reject.side,
            "price": fmt.price(reject.price), "quantity": fmt.qty(reject.quantity),
            "reason": reject.reason, "detail": reject.detail, "ts_signal_ns": reject.ts_signal_ns,
        })
        self._commit("Reject", seq)
        return line

    def _ord(self, order: Order) -> bytes:
        client_order_id, strategy, symbol, side, price, quantity, ts_signal_ns, ts_ns = _loose(order)
        fmt = self._format(symbol)
        if type(ts_ns) is not int or type(ts_signal_ns) is not int:
            return self._ord_dict(order, fmt)
        seq = self._seq + 1
        line = (
            f'{{"type":"Ord","seq":{seq},"ts_ns":{ts_ns},"v":1,'
            f'"client_order_id":{_text(client_order_id)},"strategy":{self._json(strategy)},'
            f'"symbol":{fmt.json_symbol},"side":{self._json(side)},"price":"{fmt.price(price)}",'
            f'"quantity":"{fmt.qty(quantity)}","ts_signal_ns":{ts_signal_ns}}}\n'
        ).encode()
        self._commit("Ord", seq)
        return line

    def _ord_dict(self, order: Any, fmt: _SymbolFormat) -> bytes:  # Any: see _loose
        seq = self._seq + 1
        line = _dumps({
            "type": "Ord", "seq": seq, "ts_ns": order.ts_ns, "v": SCHEMA_VERSION,
            "client_order_id": order.client_order_id, "strategy": order.strategy, "symbol": order.symbol,
            "side": order.side, "price": fmt.price(order.price), "quantity": fmt.qty(order.quantity),
            "ts_signal_ns": order.ts_signal_ns,
        })
        self._commit("Ord", seq)
        return line

    def _route(self, route: Route) -> bytes:
        (venue, client_order_id, parent_order_id, strategy, symbol, side, price, quantity, ts_signal_ns,
         ts_ns) = _loose(route)
        fmt = self._format(symbol)
        if type(ts_ns) is not int or type(ts_signal_ns) is not int:
            return self._route_dict(route, fmt)
        seq = self._seq + 1
        line = (
            f'{{"type":"Route","seq":{seq},"ts_ns":{ts_ns},"v":1,"venue":{_text(venue)},'
            f'"client_order_id":{_text(client_order_id)},"parent_order_id":{_text(parent_order_id)},'
            f'"strategy":{self._json(strategy)},"symbol":{fmt.json_symbol},"side":{self._json(side)},'
            f'"price":"{fmt.price(price)}","quantity":"{fmt.qty(quantity)}",'
            f'"ts_signal_ns":{ts_signal_ns}}}\n'
        ).encode()
        self._commit("Route", seq)
        return line

    def _route_dict(self, route: Any, fmt: _SymbolFormat) -> bytes:  # Any: see _loose
        seq = self._seq + 1
        line = _dumps({
            "type": "Route", "seq": seq, "ts_ns": route.ts_ns, "v": SCHEMA_VERSION,
            "venue": route.venue, "client_order_id": route.client_order_id,
            "parent_order_id": route.parent_order_id, "strategy": route.strategy, "symbol": route.symbol,
            "side": route.side, "price": fmt.price(route.price), "quantity": fmt.qty(route.quantity),
            "ts_signal_ns": route.ts_signal_ns,
        })
        self._commit("Route", seq)
        return line

    def _exec(self, report: ExecReport) -> bytes:
        (venue, symbol, client_order_id, venue_order_id, side, status, order_qty, last_qty, last_price, cum_qty,
         leaves_qty, fee, fee_asset, trade_id, reason, ts_event_ns, ts_ns) = _loose(report)
        fmt = self._formats.get(symbol)
        if fmt is None:
            _unknown_symbol(symbol)
        if type(ts_ns) is not int or type(ts_event_ns) is not int:
            return self._exec_dict(report, fmt)
        strings = self._json_strings
        quantities = fmt.quantities
        qty = fmt.qty
        trade_json = "null" if trade_id is None else _text(trade_id)
        # a Decimal's str is digits, sign, point and exponent (never escaped, only quoted); anything else: _text
        fee_json = '"' + str(fee) + '"' if type(fee) is Decimal else _text(str(fee))
        seq = self._seq + 1
        line = (
            f'{{"type":"Exec","seq":{seq},"ts_ns":{ts_ns},"v":1,"venue":{strings.get(venue) or self._json(venue)},'
            f'"symbol":{fmt.json_symbol},"side":{strings.get(side) or self._json(side)},'
            f'"status":{strings.get(status) or self._json(status)},'
            f'"order_qty":"{quantities.get(order_qty) or qty(order_qty)}",'
            f'"last_qty":"{quantities.get(last_qty) or qty(last_qty)}",'
            f'"last_px":"{fmt.prices.get(last_price) or fmt.price(last_price)}",'
            f'"cum_qty":"{quantities.get(cum_qty) or qty(cum_qty)}",'
            f'"leaves_qty":"{quantities.get(leaves_qty) or qty(leaves_qty)}",'
            f'"client_order_id":{_text(client_order_id)},"venue_order_id":{_text(venue_order_id)},'
            f'"trade_id":{trade_json},"fee":{fee_json},'
            f'"fee_asset":{strings.get(fee_asset) or self._json(fee_asset)},'
            f'"reason":{strings.get(reason) or self._json(reason)},"ts_event_ns":{ts_event_ns}}}\n'
        ).encode()
        self._seq = seq
        self.counts["Exec"] += 1
        return line

    def _exec_dict(self, report: Any, fmt: _SymbolFormat) -> bytes:  # Any: see _loose
        seq = self._seq + 1
        line = _dumps({
            "type": "Exec", "seq": seq, "ts_ns": report.ts_ns, "v": SCHEMA_VERSION,
            "venue": report.venue, "symbol": report.symbol, "side": report.side, "status": report.status,
            "order_qty": fmt.qty(report.order_qty),
            "last_qty": fmt.qty(report.last_qty), "last_px": fmt.price(report.last_price),
            "cum_qty": fmt.qty(report.cum_qty), "leaves_qty": fmt.qty(report.leaves_qty),
            "client_order_id": report.client_order_id, "venue_order_id": report.venue_order_id,
            "trade_id": report.trade_id, "fee": str(report.fee), "fee_asset": report.fee_asset,
            "reason": report.reason, "ts_event_ns": report.ts_event_ns,
        })
        self._commit("Exec", seq)
        return line

    def _note(self, note: Note) -> bytes:
        seq = self._seq + 1
        line = _dumps({
            "type": "Note", "seq": seq, "ts_ns": note.ts_ns, "v": SCHEMA_VERSION, "kind": note.kind,
            "venue": note.venue, "symbol": note.symbol, "client_order_id": note.client_order_id,
            "detail": note.detail,
        })
        self._commit("Note", seq)
        return line

    def _account(self, account: AccountSnapshot) -> bytes:
        seq = self._seq + 1
        line = _dumps({
            "type": "Account", "seq": seq, "ts_ns": account.ts_ns, "v": SCHEMA_VERSION, "venue": account.venue,
            "balances": {asset: str(amount) for asset, amount in account.balances.items()},
            "open_order_ids": list(account.open_order_ids),
        })
        self._commit("Account", seq)
        return line


def _loose(event: object) -> Any:
    """``event`` untyped, so its fields are read as plain objects: what the templates check before printing them.
    Compiled code reads a typed field as its declared type and refuses another (a float timestamp) with a
    TypeError; the checks here send such an event to orjson instead, as the pure code does."""
    return event


def _text(value: str) -> str:
    """``value`` as a JSON string, as orjson spells it: ids and names that need no escaping are only quoted."""
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return orjson.dumps(value).decode()


def _unknown_symbol(symbol: str) -> NoReturn:
    raise ValueError(f"recorder: symbol {symbol!r} has no instrument")


def _grid_texts(cache: dict[Any, str], text: Callable[[Any], str], units: list[Any]) -> list[str]:
    """The grid strings of ``units``, from ``cache`` where present (``text`` fills and bounds the cache); also
    the memoised JSON strings of texts (``JsonlEncoder._json_strings`` filled by ``_json``)."""
    texts = list(map(cache.get, units))
    if None in texts:
        texts = [spelled if spelled is not None else text(unit) for spelled, unit in zip(texts, units, strict=True)]
    return texts  # type: ignore[return-value]


def _not_an_event(value: object) -> NoReturn:
    raise TypeError(f"recorder: cannot encode {type(value).__name__}, only {EVENT_TYPES} events")
