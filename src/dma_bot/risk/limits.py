"""Pre-trade risk: the pure core that turns a Signal into an Order or a RiskReject.

Owns the limits (:class:`RiskParams`), the order-rate token bucket, the kill switch and the quantity this
engine has sent per symbol and side. It reads the current mids from the MarketBoard and positions from the
``Latest`` the positions stage publishes snapshots to (a :class:`~dma_bot.model.positions.PositionsView`; the
backtest's is the ledger read in place); it never writes either, never sizes a signal
and never routes. Every decision is driven by the ``now_ns`` argument: no clock reads, no asyncio. Limits
are converted once per symbol into integer ticks and steps at construction, so the hot path compares ints.

``check_batch`` decides a whole SignalBatch column-wise with exactly the results (orders, rejects, counters,
state) of ``check`` over its rows. The loss limit is :class:`~dma_bot.risk.loss.LossLimit`; the engine asks it
before each decision and trips the kill switch, as it does when the positions snapshot says the ledger
drifted from a venue's account beyond ``RISK_MAX_DRIFT`` (``PositionSnapshot.drift_breached``, decided by
the ledger). Reject details that repeat (position limits) are memoised.

A replayed engine (``replayed=True``, FEED_MODE=replay) decides as the backtest does: the token bucket runs on
the recorded clock (each signal's ``ts_event_ns``; ``now_ns`` only stamps the results), and the relative band is
checked against the quote the signal was made on, handed over with :meth:`RiskEngine.check_replayed` (the shared
board runs ahead of risk under replay), kept on a board of the engine's own. Live engines are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Final

import numpy as np
import numpy.typing as npt

from dma_bot.bus import Latest
from dma_bot.model.enums import KillSwitchState, RejectReason, Side
from dma_bot.model.events import Order, RejectBatch, RiskReject, Signal, SignalBatch, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import PositionsView
from dma_bot.risk.loss import LossLimit
from dma_bot.risk.order_ids import ClientOrderIds
from dma_bot.risk.risk_params import RiskParams, require_int

__all__ = ["KillSwitch", "RiskEngine", "RiskParams", "RiskStats", "TokenBucket"]

_SCALE: Final = 1_000_000_000
_DETAIL_CACHE_LIMIT: Final = 4096
_new_tuple: Final = tuple.__new__  # a NamedTuple without its Python-level __new__ (~0.3 us less per reject)
_ACTIVE: Final = KillSwitchState.ACTIVE
_HALTED: Final = KillSwitchState.HALTED
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_BATCH_MIN: Final = 8  # rows from which check_batch works column-wise
_INT64_SAFE: Final = 2**62
# check_batch's row codes, in check order (0 = passed the price checks / accepted)
_BAND, _DEVIATION, _NOTIONAL, _POSITION, _RATE, _CODES = 1, 2, 3, 4, 5, 6
_REASON_OF_CODE: Final = {
    _BAND: RejectReason.PRICE_BAND,
    _DEVIATION: RejectReason.PRICE_DEVIATION,
    _NOTIONAL: RejectReason.MAX_NOTIONAL,
    _POSITION: RejectReason.MAX_POSITION,
    _RATE: RejectReason.RATE_LIMIT,
}


class TokenBucket:
    """Order-rate limiter in integer arithmetic: one token is ``10**9`` units, ``rate`` units per ns.

    Starts full. A clock that steps back counts as no time passing and re-anchors there, so a wall-clock
    step never blocks trading; the most it can over-credit is what real time would have refilled.
    """

    __slots__ = ("_capacity", "_last_ns", "_tokens", "burst", "rate_per_s")

    def __init__(self, rate_per_s: int, burst: int) -> None:
        require_int("rate_per_s", rate_per_s, 1)
        require_int("burst", burst, 1)
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._capacity = burst * _SCALE
        self._tokens = self._capacity
        self._last_ns: int | None = None

    def _refill(self, now_ns: int) -> None:
        last = self._last_ns
        self._last_ns = now_ns
        if last is not None and now_ns > last:
            tokens = self._tokens + (now_ns - last) * self.rate_per_s
            self._tokens = tokens if tokens < self._capacity else self._capacity

    def try_take(self, now_ns: int) -> bool:
        """Take one token if there is one; a refusal takes nothing."""
        last = self._last_ns
        self._last_ns = now_ns
        tokens = self._tokens
        if last is not None and now_ns > last:
            tokens += (now_ns - last) * self.rate_per_s
            if tokens > self._capacity:
                tokens = self._capacity
        if tokens >= _SCALE:
            self._tokens = tokens - _SCALE
            return True
        self._tokens = tokens
        return False

    def available(self, now_ns: int) -> int:
        """Whole tokens available at ``now_ns``."""
        self._refill(now_ns)
        return self._tokens // _SCALE


class KillSwitch:
    """ACTIVE trades, REDUCING lets only position-shrinking orders through, HALTED lets nothing through.

    The operator moves it anywhere with :meth:`set`; the engine only ever escalates ACTIVE -> REDUCING.
    """

    __slots__ = ("reason", "state")

    def __init__(self) -> None:
        self.state = KillSwitchState.ACTIVE
        self.reason = ""

    def set(self, state: KillSwitchState, reason: str) -> None:
        self.state = KillSwitchState(state)
        self.reason = reason

    def trip(self, reason: str) -> bool:
        """Automatic escalation to REDUCING; True when it changed the state."""
        if self.state is not _ACTIVE:
            return False
        self.state = KillSwitchState.REDUCING
        self.reason = reason
        return True


class RiskStats:
    """Counters read by metrics: accepted orders, and refusals by reason (every reason present, from 0)."""

    __slots__ = ("orders_total", "rejects_by_reason")

    def __init__(self) -> None:
        self.orders_total = 0
        self.rejects_by_reason: dict[str, int] = {str(reason): 0 for reason in RejectReason}


class _SymbolLimits:
    """One symbol's limits in its own ticks and steps, and the steps this engine sent per side."""

    __slots__ = (
        "buy_key",
        "instrument",
        "notional_max",
        "position_details",
        "position_max",
        "position_text",
        "sell_key",
        "sent_buy",
        "sent_sell",
        "symbol",
        "tick_max",
        "tick_min",
    )

    def __init__(self, instrument: Instrument, params: RiskParams) -> None:
        tick = Fraction(instrument.tick_size)
        step = Fraction(instrument.step_size)
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.tick_min = math.ceil(Fraction(params.px_min) / tick)
        self.tick_max = math.floor(Fraction(params.px_max) / tick)
        self.notional_max = math.floor(Fraction(params.max_notional) / (tick * step))
        self.position_max = math.floor(Fraction(params.max_position) / step)
        self.position_text = ""  # set when a per-symbol limit replaces params.max_position
        self.buy_key = (self.symbol, Side.BUY)
        self.sell_key = (self.symbol, Side.SELL)
        self.sent_buy = 0
        self.sent_sell = 0
        self.position_details: dict[int, str] = {}

    def open_steps(self, done: Mapping[tuple[str, Side], int], buy: bool) -> int:
        """Steps this engine sent on one side that may still fill: sent minus what can no longer fill."""
        if buy:
            open_steps = self.sent_buy - done.get(self.buy_key, 0) if done else self.sent_buy
        else:
            open_steps = self.sent_sell - done.get(self.sell_key, 0) if done else self.sent_sell
        return open_steps if open_steps > 0 else 0

    def beyond_position(self, worst: int) -> bool:
        """True when a worst-case position of ``worst`` steps breaks the max position either way."""
        return worst > self.position_max or -worst > self.position_max


def _places(size: Decimal) -> int:
    exponent = size.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


class RiskEngine:
    """``check(signal, now_ns)`` -> Order or RiskReject. Checks run in this order, first failure wins:
    loss limit and account drift (either may trip the kill switch), kill switch, quantity, absolute band,
    relative band, notional, position (filled net + still-open steps on the signal's side + this order), and
    the rate limit last, so a refused signal never spends a token. A replayed engine decides replayed signals with
    ``check_replayed`` (see the module docstring)."""

    def __init__(
        self,
        params: RiskParams,
        instruments: Mapping[str, Instrument],
        board: MarketBoard,
        positions: Latest[PositionsView],
        order_ids: ClientOrderIds,
        max_positions: Mapping[str, int] | None = None,
        *,
        replayed: bool = False,
    ) -> None:
        """``max_positions`` (steps per symbol, from RISK_MAX_POSITION_NOTIONAL) replaces
        ``params.max_position`` for the symbols it names. ``replayed``: decide on the recorded clock and on the
        quotes given to :meth:`check_replayed` (see the module docstring); the loss limit still marks at
        ``board``."""
        self.params = params
        self.replayed = replayed
        self._quotes = MarketBoard() if replayed else board  # what the relative band reads
        self.kill_switch = KillSwitch()
        self.stats = RiskStats()
        self._board = board
        self._positions = positions
        self._order_ids = order_ids
        self._bucket = TokenBucket(params.max_orders_per_second, params.burst)
        self._deviation_bps = params.max_deviation_bps
        self._band_text = f"[{params.px_min}, {params.px_max}]"
        self._rate_text = f"over {params.max_orders_per_second}/s, burst {params.burst}"
        self._max_position_text = str(params.max_position)
        self._symbols = {symbol: _SymbolLimits(inst, params) for symbol, inst in instruments.items()}
        for symbol, steps in (max_positions or {}).items():
            limits = self._symbols[symbol]
            limits.position_max = steps
            limits.position_text = limits.instrument.format_qty(steps)
        self._loss = LossLimit(params.max_loss, board) if params.max_loss > 0 else None

    # -- hot path -----------------------------------------------------------------------------------------
    def check(self, signal: Signal, now_ns: int) -> Order | RiskReject:
        limits, snapshot = self._before_deciding(signal.symbol)
        kill = self.kill_switch
        side = signal.side
        quantity = signal.quantity
        price = signal.price
        symbol = limits.symbol
        buy = side == _BUY
        done = snapshot.done_steps
        open_steps = limits.open_steps(done, buy)
        net = snapshot.net_steps.get(symbol, 0)

        if kill.state is not _ACTIVE:
            if kill.state is _HALTED:
                return self._reject(signal, RejectReason.KILL_SWITCH_HALTED, f"halted: {kill.reason}", now_ns)
            reducible = -net if buy else net
            if reducible <= 0 or open_steps + quantity > reducible:
                position = limits.instrument.format_qty(net)
                detail = f"reducing ({kill.reason}): order does not shrink position {position}"
                return self._reject(signal, RejectReason.KILL_SWITCH_REDUCING, detail, now_ns)
        if quantity <= 0:
            return self._reject(signal, RejectReason.QUANTITY, f"quantity {quantity} steps", now_ns)
        if price < limits.tick_min or price > limits.tick_max:
            detail = f"price {limits.instrument.format_price(price)} outside {self._band_text}"
            return self._reject(signal, RejectReason.PRICE_BAND, detail, now_ns)
        bps = self._deviation_bps
        if bps:
            mid2 = self._quotes.mid2s.get(symbol, 0)  # MarketBoard.mid2 without the call
            if mid2 <= 0:
                return self._reject(signal, RejectReason.NO_MARKET, f"no mid for {symbol}", now_ns)
            if abs(2 * price - mid2) * 10_000 > mid2 * bps:
                detail = self._deviation_detail(limits, price, mid2)
                return self._reject(signal, RejectReason.PRICE_DEVIATION, detail, now_ns)
        if price * quantity > limits.notional_max:
            detail = self._notional_detail(limits, price, quantity)
            return self._reject(signal, RejectReason.MAX_NOTIONAL, detail, now_ns)
        worst = net + open_steps + quantity if buy else net - open_steps - quantity
        if limits.beyond_position(worst):
            detail = limits.position_details.get(worst) or self._position_detail(limits, worst)
            return self._reject(signal, RejectReason.MAX_POSITION, detail, now_ns)
        if not self._bucket.try_take(signal.ts_event_ns if self.replayed else now_ns):
            return self._reject(signal, RejectReason.RATE_LIMIT, self._rate_text, now_ns)

        if buy:
            limits.sent_buy += quantity
        else:
            limits.sent_sell += quantity
        self.stats.orders_total += 1
        return Order(
            client_order_id=self._order_ids.next(),
            strategy=signal.strategy,
            symbol=symbol,
            side=side,
            price=price,
            quantity=quantity,
            ts_signal_ns=signal.ts_ns,
            ts_ns=now_ns,
        )

    def check_batch(self, batch: SignalBatch, now_ns: int) -> list[Order | RiskReject | RejectBatch]:
        """``check`` of every row of ``batch`` at ``now_ns``, in order, computed column-wise: the same orders,
        rejects (consecutive ones as RejectBatch runs, or RiskRejects), counters and state as
        ``[self.check(signal, now_ns) for signal in batch.rows()]``.

        The rows share symbol, quantity and time, so everything but the price and side is one scalar test:
        the price checks run on the price column, and the position and rate tests only change at an accepted
        row, so they are evaluated once per run of rows between accepts. Small batches, and anything unusual
        (kill switch not active, no market, values near int64) go through ``check`` row by row."""
        limits, snapshot = self._before_deciding(batch.symbol)
        kill = self.kill_switch
        n = len(batch)
        quantity = batch.quantity
        price = batch.price
        bps = self._deviation_bps
        mid2 = 0
        if bps:
            mid2 = self._quotes.mid2s.get(batch.symbol, 0)
        biggest = max(abs(int(price.max())), abs(int(price.min())), abs(mid2)) if n else 0
        if (
            n < _BATCH_MIN
            or kill.state is not _ACTIVE
            or quantity <= 0
            or (bps and mid2 <= 0)
            or (4 * biggest + 1) * max(10_000, bps, quantity) >= _INT64_SAFE
        ):
            check = self.check
            return [check(signal, now_ns) for signal in batch.rows()]
        codes = np.zeros(n, dtype=np.int8)  # 0: passes the price checks; else the first that failed
        # Limits are clamped into int64 (every value compared is below 2**62, so the outcome is the same).
        codes[price * quantity > min(limits.notional_max, _INT64_SAFE)] = _NOTIONAL
        if bps:
            codes[np.abs(2 * price - mid2) * 10_000 > mid2 * bps] = _DEVIATION
        tick_min = max(min(limits.tick_min, _INT64_SAFE), -_INT64_SAFE)
        tick_max = max(min(limits.tick_max, _INT64_SAFE), -_INT64_SAFE)
        codes[(price < tick_min) | (price > tick_max)] = _BAND
        return self._decide_rows(batch, limits, snapshot, codes, mid2, now_ns)

    def check_replayed(self, signal: Signal, quote: Tick, now_ns: int) -> Order | RiskReject:
        """``check(signal, now_ns)`` of a replayed engine, with ``quote`` (the quote ``signal`` was made on) as
        its symbol's quote for the relative band: the backtest's board when it decides ``signal``. Call it in
        the backtest's order (:class:`~dma_bot.risk.replay_order.ReplayOrder`). RuntimeError on a live engine."""
        if not self.replayed:
            raise RuntimeError("check_replayed: an engine built with replayed=True (FEED_MODE=replay)")
        self._quotes.update(quote)
        return self.check(signal, now_ns)

    def _decide_rows(
        self,
        batch: SignalBatch,
        limits: _SymbolLimits,
        snapshot: PositionsView,
        codes: npt.NDArray[np.int8],
        mid2: int,
        now_ns: int,
    ) -> list[Order | RiskReject | RejectBatch]:
        """Position and rate tests over the rows that passed the price checks, run by run between accepts."""
        n = len(codes)
        buy = batch.buy
        quantity = batch.quantity
        done = snapshot.done_steps
        net = snapshot.net_steps.get(limits.symbol, 0)
        candidates = codes == 0
        worst_at: dict[int, int] = {}  # position-rejected row -> its worst-case position
        accepted: list[int] = []
        rate_limited = False
        start = 0
        while start < n:
            worst_buy = net + limits.open_steps(done, True) + quantity
            worst_sell = net - limits.open_steps(done, False) - quantity
            buy_bad = limits.beyond_position(worst_buy)
            sell_bad = limits.beyond_position(worst_sell)
            rest = candidates[start:]
            end = n
            if not rate_limited and not (buy_bad and sell_bad):
                side_ok = rest if not (buy_bad or sell_bad) else rest & (buy[start:] if sell_bad else ~buy[start:])
                hits = np.flatnonzero(side_ok)
                if hits.size:
                    end = start + int(hits[0])
            if buy_bad or sell_bad:
                bad = rest[: end - start]
                if not (buy_bad and sell_bad):
                    bad = bad & (buy[start:end] if buy_bad else ~buy[start:end])
                for row in (np.flatnonzero(bad) + start).tolist():
                    worst_at[row] = worst_buy if buy[row] else worst_sell
                    codes[row] = _POSITION
            if rate_limited:
                codes[start:end][rest[: end - start] & (codes[start:end] == 0)] = _RATE
            if end == n:
                break
            if self._bucket.try_take(batch.ts_event_ns if self.replayed else now_ns):
                if buy[end]:
                    limits.sent_buy += quantity
                else:
                    limits.sent_sell += quantity
                self.stats.orders_total += 1
                accepted.append(end)
                start = end + 1
            else:
                rate_limited = True
                start = end
        return self._assemble(batch, limits, codes, accepted, worst_at, mid2, now_ns)

    def _assemble(
        self,
        batch: SignalBatch,
        limits: _SymbolLimits,
        codes: npt.NDArray[np.int8],
        accepted: list[int],
        worst_at: dict[int, int],
        mid2: int,
        now_ns: int,
    ) -> list[Order | RiskReject | RejectBatch]:
        """The decisions in row order: an Order per accepted row, a RejectBatch per run of refused rows."""
        n = len(codes)
        price = batch.price
        reasons = [RejectReason.RATE_LIMIT] * n
        details = [self._rate_text] * n
        rejects_by_reason = self.stats.rejects_by_reason
        counts = np.bincount(codes, minlength=_CODES).tolist()
        for code, reason in _REASON_OF_CODE.items():
            rejects_by_reason[reason] += counts[code]
        unusual = np.flatnonzero((codes != _RATE) & (codes != 0)).tolist()
        if unusual:
            instrument = limits.instrument
            prices = price.tolist()
            for row in unusual:
                code = int(codes[row])
                reasons[row] = _REASON_OF_CODE[code]
                if code == _POSITION:
                    worst = worst_at[row]
                    details[row] = limits.position_details.get(worst) or self._position_detail(limits, worst)
                elif code == _BAND:
                    details[row] = f"price {instrument.format_price(prices[row])} outside {self._band_text}"
                elif code == _DEVIATION:
                    details[row] = self._deviation_detail(limits, prices[row], mid2)
                else:
                    details[row] = self._notional_detail(limits, prices[row], batch.quantity)
        decisions: list[Order | RiskReject | RejectBatch] = []
        start = 0
        for row in [*accepted, n]:
            if row > start:
                decisions.append(
                    RejectBatch(
                        batch.strategy, batch.symbol, batch.buy[start:row], price[start:row], batch.quantity,
                        reasons[start:row], details[start:row], batch.ts_ns, now_ns,
                    )
                )
            if row < n:
                decisions.append(
                    Order(
                        client_order_id=self._order_ids.next(),
                        strategy=batch.strategy,
                        symbol=batch.symbol,
                        side=_BUY if batch.buy[row] else _SELL,
                        price=int(price[row]),
                        quantity=batch.quantity,
                        ts_signal_ns=batch.ts_ns,
                        ts_ns=now_ns,
                    )
                )
            start = row + 1
        return decisions

    def _before_deciding(self, symbol: str) -> tuple[_SymbolLimits, PositionsView]:
        """The symbol's limits and the positions to decide with; the loss limit may trip the kill switch.
        An unknown symbol is a wiring error (ValueError)."""
        limits = self._symbols.get(symbol)
        if limits is None:
            raise ValueError(f"signal.symbol: one of {sorted(self._symbols)}, was {symbol!r}")
        snapshot = self._positions.value
        loss = self._loss
        kill = self.kill_switch
        if kill.state is _ACTIVE:
            if loss is not None and loss.breached(snapshot):
                kill.trip(f"loss limit: pnl {loss.pnl():.2f} <= -{self.params.max_loss}")
            elif snapshot.drift_breached:
                kill.trip(f"position drift: {snapshot.drift_reason}")
        return limits, snapshot

    def _reject(self, signal: Signal, reason: RejectReason, detail: str, now_ns: int) -> RiskReject:
        self.stats.rejects_by_reason[reason] += 1
        strategy, symbol, side, price, quantity, _ts_event_ns, ts_signal_ns = signal
        fields = (strategy, symbol, side, price, quantity, reason, detail, ts_signal_ns, now_ns)
        return _new_tuple(RiskReject, fields)

    def _position_detail(self, limits: _SymbolLimits, worst: int) -> str:
        """The MAX_POSITION detail for ``worst`` steps, memoised per symbol (a few values repeat)."""
        details = limits.position_details
        if len(details) >= _DETAIL_CACHE_LIMIT:
            details.clear()
        limit = limits.position_text or self._max_position_text
        detail = f"worst-case position {limits.instrument.format_qty(worst)} beyond max {limit}"
        details[worst] = detail
        return detail

    def _notional_detail(self, limits: _SymbolLimits, price: int, quantity: int) -> str:
        notional = limits.instrument.notional(price, quantity)
        places = _places(limits.instrument.tick_size)
        return f"notional {notional:.{places}f} > max {self.params.max_notional}"

    def _deviation_detail(self, limits: _SymbolLimits, price: int, mid2: int) -> str:
        mid = limits.instrument.tick_size * mid2 / 2
        deviation = Decimal(abs(2 * price - mid2) * 10_000) / mid2
        return (
            f"price {limits.instrument.format_price(price)} is {deviation:.2f} bps from mid {mid} "
            f"> max {self._deviation_bps}"
        )
