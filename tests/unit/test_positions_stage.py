"""Tests of the positions stage shell (dma_bot.positions.stage) over real bus channels."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from dma_bot.bus import Channel, Latest
from dma_bot.model.enums import ExecStatus, Side
from dma_bot.model.events import ExecReport
from dma_bot.model.instrument import Instrument
from dma_bot.model.positions import EMPTY_SNAPSHOT, PositionSnapshot
from dma_bot.positions.ledger import Ledger
from dma_bot.positions.stage import PositionsStage

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"))


def _report(client_order_id: str, status: ExecStatus, last_qty: int = 0, trade_id: str | None = None) -> ExecReport:
    return ExecReport(
        venue="A", symbol="BTCUSDT", client_order_id=client_order_id, venue_order_id="v1", side=Side.BUY,
        status=status, last_qty=last_qty, last_price=10_000 if last_qty else 0, cum_qty=last_qty, order_qty=last_qty,
        leaves_qty=0, fee=Decimal(0), fee_asset="USDT", trade_id=trade_id, reason="", ts_event_ns=1, ts_ns=2,
    )


def _stage() -> tuple[PositionsStage, Channel[ExecReport], Latest[PositionSnapshot]]:
    inbox: Channel[ExecReport] = Channel("exec_reports", maxsize=64)
    latest = Latest(EMPTY_SNAPSHOT)
    return PositionsStage(Ledger({"BTCUSDT": BTC}), inbox, latest), inbox, latest


async def test_positions_stage_batch_with_fills_publishes_one_snapshot() -> None:
    """Reports queued together are applied as one batch and published as one snapshot."""
    stage, inbox, latest = _stage()
    await inbox.put(_report("c1", ExecStatus.ACK))
    await inbox.put(_report("c1", ExecStatus.PARTIALLY_FILLED, last_qty=2, trade_id="t1"))
    await inbox.put(_report("c1", ExecStatus.FILLED, last_qty=3, trade_id="t2"))
    await inbox.close()

    async with asyncio.timeout(5):
        await stage.run()

    assert latest.version == 1
    assert latest.value.net_steps["BTCUSDT"] == 5
    assert latest.value.fills == 2


async def test_positions_stage_batch_without_changes_publishes_nothing() -> None:
    """A batch of ACKs changes no position, so nothing is published."""
    stage, inbox, latest = _stage()
    await inbox.put(_report("c1", ExecStatus.ACK))
    await inbox.put(_report("c2", ExecStatus.ACK))
    await inbox.close()

    async with asyncio.timeout(5):
        await stage.run()

    assert latest.version == 0
    assert latest.value is EMPTY_SNAPSHOT
    assert stage.ledger.open_orders == 2


async def test_positions_stage_publishes_after_each_changing_batch_and_ends_with_inbox() -> None:
    """Each batch that changes state publishes once; the stage returns when its inbox ends."""
    inbox: Channel[ExecReport] = Channel("exec_reports", maxsize=1)
    latest = Latest(EMPTY_SNAPSHOT)
    stage = PositionsStage(Ledger({"BTCUSDT": BTC}), inbox, latest)

    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        task = group.create_task(stage.run())
        await inbox.put(_report("c1", ExecStatus.FILLED, last_qty=1, trade_id="t1"))
        await inbox.put(_report("c2", ExecStatus.FILLED, last_qty=4, trade_id="t2"))
        await inbox.put(_report("c2", ExecStatus.FILLED, last_qty=4, trade_id="t2"))
        await inbox.close()

    assert task.done() and task.exception() is None
    assert latest.version == 2
    assert latest.value.net_steps["BTCUSDT"] == 5
    assert stage.snapshots_published == 2
    assert stage.ledger.stats.duplicate_fills == 1
