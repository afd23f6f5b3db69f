"""RiskEngine.check_batch: exactly ``check`` over the rows, decisions, counters and state alike."""

from __future__ import annotations

import dataclasses
import itertools
import random
from decimal import Decimal

import numpy as np
import pytest

from dma_bot.bus import Latest
from dma_bot.model.enums import ExecStatus, KillSwitchState, RejectReason, Side
from dma_bot.model.events import ExecReport, Order, RejectBatch, RiskReject, SignalBatch, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import EMPTY_SNAPSHOT, PositionSnapshot
from dma_bot.positions.ledger import Ledger
from dma_bot.risk.limits import RiskEngine, RiskParams
from dma_bot.risk.order_ids import ClientOrderIds

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"))
NOW = 1_700_000_000_000_000_000


class Twin:
    """One RiskEngine over its own board and positions cell, fed the same quotes and snapshots as its twin."""

    def __init__(self, params: RiskParams) -> None:
        self.board = MarketBoard()
        self.positions = Latest(EMPTY_SNAPSHOT)
        self.engine = RiskEngine(params, {BTC.symbol: BTC}, self.board, self.positions, ClientOrderIds("t"))

    def state(self) -> tuple[object, ...]:
        engine = self.engine
        limits = engine._symbols[BTC.symbol]
        bucket = engine._bucket
        return (
            engine.stats.orders_total, dict(engine.stats.rejects_by_reason), limits.sent_buy, limits.sent_sell,
            bucket._tokens, bucket._last_ns, engine.kill_switch.state, engine.kill_switch.reason,
        )


def _flat(decisions: list[Order | RiskReject | RejectBatch]) -> list[Order | RiskReject]:
    rows: list[Order | RiskReject] = []
    for decision in decisions:
        rows += decision.rows() if type(decision) is RejectBatch else [decision]
    return rows


def _batch(rng: random.Random, mid: int, size: int, quantity: int, ts_ns: int) -> SignalBatch:
    prices = []
    for _ in range(size):
        roll = rng.random()
        if roll < 0.05:
            prices.append(rng.choice([500, 250_000, mid * 3]))  # outside the absolute band or far from mid
        elif roll < 0.1:
            prices.append(mid + rng.randrange(-3 * mid // 100, 3 * mid // 100))  # around the deviation limit
        else:
            prices.append(mid + rng.randrange(-20, 21))
    buy = np.array([rng.random() < 0.5 for _ in range(size)], dtype=np.bool_)
    return SignalBatch("mr", BTC.symbol, buy, np.array(prices, dtype=np.int64), quantity, ts_ns - 5, ts_ns)


def _fill(ledger: Ledger, steps: int, price: int) -> None:
    fills = ledger.stats.fills
    quantity = abs(steps)
    ledger.apply(ExecReport(
        venue="A", symbol=BTC.symbol, client_order_id=f"o{fills}", venue_order_id=f"v{fills}",
        side=Side.BUY if steps > 0 else Side.SELL, status=ExecStatus.FILLED, last_qty=quantity, last_price=price,
        order_qty=quantity, cum_qty=quantity, leaves_qty=0, fee=Decimal(0), fee_asset="USDT",
        trade_id=f"t{fills}", reason="", ts_event_ns=NOW, ts_ns=NOW,
    ))


def _snapshot(rng: random.Random, fills: int) -> PositionSnapshot:
    """A ledger's snapshot (its PnL form is what the loss limit reads): a 1 BTC round trip realizing a random
    whole PnL, then a random position at a random average; random done steps."""
    ledger = Ledger({BTC.symbol: BTC})
    _fill(ledger, 1000, 10_000)
    _fill(ledger, -1000, 10_000 + 100 * rng.randrange(-300, 300))
    net = rng.randrange(-6_000, 6_001)
    if net:
        _fill(ledger, net, rng.randrange(9_000, 11_000))
    done = {(BTC.symbol, Side.BUY): rng.randrange(0, 4_000), (BTC.symbol, Side.SELL): rng.randrange(0, 4_000)}
    return dataclasses.replace(ledger.snapshot(), done_steps=done, fills=fills)


@pytest.mark.parametrize("seed", range(6))
def test_check_batch_matches_check_over_the_rows(seed: int) -> None:
    rng = random.Random(seed)
    params = RiskParams(
        px_min=Decimal(10), px_max=Decimal(2000), max_deviation_bps=rng.choice([0, 100]),
        max_notional=Decimal(rng.choice([200, 20_000])), max_position=Decimal(rng.choice([1, 5, 100])),
        max_orders_per_second=rng.choice([5, 50, 1000]), burst=rng.choice([1, 3, 50]),
        max_loss=Decimal(rng.choice([0, 50, 10_000])),
    )
    batched, reference = Twin(params), Twin(params)
    now = NOW
    kinds: set[str] = set()
    for step in range(300):
        if rng.random() < 0.3:
            mid = rng.randrange(9_000, 11_000)
            for twin in (batched, reference):
                twin.board.update(Tick(BTC.symbol, mid - 1, mid + 1, 1, 1, now, now))
        if rng.random() < 0.1:
            snapshot = _snapshot(rng, step)
            batched.positions.publish(snapshot)
            reference.positions.publish(snapshot)
        if rng.random() < 0.03:
            state = rng.choice(list(KillSwitchState))
            batched.engine.kill_switch.set(state, "operator")
            reference.engine.kill_switch.set(state, "operator")
        now += rng.choice([0, 0, 1_000, 20_000_000, 300_000_000])
        tick = batched.board.last.get(BTC.symbol)
        mid = 10_000 if tick is None else (tick.bid + tick.ask) // 2
        batch = _batch(rng, mid, rng.randrange(1, 60), rng.choice([1, 1_000, 3_000]), now - 7)
        expected = [reference.engine.check(signal, now) for signal in batch.rows()]
        got = batched.engine.check_batch(batch, now)
        assert _flat(got) == expected, f"step {step}"
        assert batched.state() == reference.state(), f"step {step}"
        for decision in got:
            kinds.add(type(decision).__name__)
        if any(type(decision) is RejectBatch for decision in got):  # column-wise: runs of rejects between orders
            assert all(type(a) is Order or type(b) is Order for a, b in itertools.pairwise(got))
        kinds.update(str(r.reason) for r in expected if type(r) is RiskReject)
    assert {"Order", "RejectBatch"} <= kinds
    assert len(kinds) >= 5  # several reasons were exercised


def test_check_batch_large_active_batch_is_decided_column_wise() -> None:
    """With the kill switch active and a market, a large batch never goes through check row by row."""
    params = RiskParams(max_position=Decimal(100), max_orders_per_second=10, burst=3)
    batched, reference = Twin(params), Twin(params)
    for twin in (batched, reference):
        twin.board.update(Tick(BTC.symbol, 99_999, 100_001, 1, 1, NOW, NOW))
    rng = random.Random(3)
    batch = _batch(rng, 100_000, 200, 1_000, NOW)
    expected = [reference.engine.check(signal, NOW) for signal in batch.rows()]

    got = batched.engine.check_batch(batch, NOW)
    # row by row, check_batch would return a RiskReject per refused row; column-wise, runs of them
    assert all(type(d) in (Order, RejectBatch) for d in got)
    assert _flat(got) == expected
    assert sum(type(d) is Order for d in got) == 3
    assert batched.state() == reference.state()
    assert batched.engine.stats.rejects_by_reason[RejectReason.RATE_LIMIT] > 0


def test_check_batch_unknown_symbol_is_a_wiring_error() -> None:
    twin = Twin(RiskParams())
    batch = SignalBatch("mr", "NOPE", np.ones(10, dtype=np.bool_), np.full(10, 100, dtype=np.int64), 1, 1, 2)
    with pytest.raises(ValueError, match="NOPE"):
        twin.engine.check_batch(batch, NOW)
