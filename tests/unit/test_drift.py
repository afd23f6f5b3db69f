"""Reconciliation of the ledger against a venue's account (dma_bot.positions.drift, through Ledger.apply_account):
the baseline, exact expectations with base-, quote- and third-asset commissions, one step of tolerance, the
Notes, the breach against the quote-value bound (only what two reads in a row show), and open orders compared
both ways."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import MappingProxyType

import pytest

from dma_bot.bus import Channel, Fanout, Latest
from dma_bot.model.enums import ExecStatus, NoteKind, Side
from dma_bot.model.events import AccountSnapshot, ExecReport, Note, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import EMPTY_SNAPSHOT
from dma_bot.positions.drift import BALANCE_PRECISION, Reconciler
from dma_bot.positions.ledger import Ledger
from dma_bot.positions.stage import PositionsStage

BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.00001"), base_asset="BTC",
                 quote_asset="USDT")
ETH = Instrument(symbol="ETHUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.0001"), base_asset="ETH",
                 quote_asset="USDT")
INSTRUMENTS = {"BTCUSDT": BTC, "ETHUSDT": ETH}
S = ExecStatus
V = "BINANCE"
START = {"BTC": Decimal("2"), "ETH": Decimal("10"), "USDT": Decimal("100000"), "XRP": Decimal("5")}


def _report(
    cid: str,
    status: ExecStatus,
    *,
    side: Side = Side.BUY,
    last_qty: int = 0,
    cum_qty: int = 0,
    order_qty: int = 1000,
    price: int = 5_000_000,
    fee: str = "0",
    fee_asset: str = "",
    trade_id: str | None = None,
    symbol: str = "BTCUSDT",
    venue: str = V,
) -> ExecReport:
    return ExecReport(
        venue=venue, symbol=symbol, client_order_id=cid, venue_order_id=f"v-{cid}", side=side, status=status,
        order_qty=order_qty, last_qty=last_qty, last_price=price if last_qty else 0, cum_qty=cum_qty,
        leaves_qty=0 if status.is_terminal else order_qty - cum_qty, fee=Decimal(fee), fee_asset=fee_asset,
        trade_id=trade_id, reason="", ts_event_ns=1, ts_ns=2,
    )


def _account(balances: dict[str, Decimal], *open_ids: str, venue: str = V, ts_ns: int = 100) -> AccountSnapshot:
    return AccountSnapshot(venue=venue, balances=MappingProxyType(dict(balances)), open_order_ids=tuple(open_ids),
                           ts_ns=ts_ns)


def _board(btc_mid2: int = 10_000_000) -> MarketBoard:
    """BTC at mid 50000.00 (bid + ask = 10,000,000 ticks of 0.01)."""
    board = MarketBoard()
    board.update(Tick("BTCUSDT", btc_mid2 // 2, btc_mid2 - btc_mid2 // 2, 1, 1, 0, 0))
    return board


def _traded(ledger: Ledger) -> None:
    """Buy 0.01 BTC at 50000.00 paying 0.00001 BTC, sell 0.004 at 50010.00 paying 0.2 USDT: both filled."""
    ledger.apply(_report("b1", S.ACK))
    ledger.apply(_report("b1", S.FILLED, last_qty=1000, cum_qty=1000, fee="0.00001", fee_asset="BTC",
                         trade_id="1"))
    ledger.apply(_report("s1", S.ACK, side=Side.SELL, order_qty=400))
    ledger.apply(_report("s1", S.FILLED, side=Side.SELL, order_qty=400, last_qty=400, cum_qty=400,
                         price=5_001_000, fee="0.2", fee_asset="USDT", trade_id="2"))


def _after_trades(**changes: Decimal) -> dict[str, Decimal]:
    """START moved by exactly what _traded did: +0.01 - 0.00001 - 0.004 BTC, -500 + 200.04 - 0.2 USDT."""
    balances = {**START, "BTC": Decimal("2.00599"), "USDT": Decimal("99699.84")}
    for asset, delta in changes.items():
        balances[asset] += delta
    return balances


def _kinds(notes: list[Note]) -> list[NoteKind]:
    return [note.kind for note in notes]


def test_first_account_read_is_the_baseline_with_zero_drift_for_every_tracked_asset() -> None:
    """The first read defines the baseline: drift 0 for BTC, ETH and USDT; an asset no instrument or fee
    names (XRP) is not tracked; nothing noted or breached."""
    ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("10"))

    assert ledger.apply_account(_account(START)) is True
    snapshot = ledger.snapshot()

    assert dict(snapshot.drift) == {(V, "BTC"): 0, (V, "ETH"): 0, (V, "USDT"): 0}
    assert list(snapshot.drift) == [(V, "BTC"), (V, "ETH"), (V, "USDT")]
    assert not snapshot.drift_breached and snapshot.drift_reason == ""
    assert ledger.take_notes() == []


def test_asset_flows_are_exact_with_base_and_quote_commissions() -> None:
    """What the fills moved: base traded net of the base fee, quote paid and received net of the quote fee."""
    ledger = Ledger(INSTRUMENTS)
    _traded(ledger)

    assert ledger.asset_flows(V) == {"BTC": Decimal("0.00599"), "USDT": Decimal("-299.96") - Decimal("0.2")}
    assert ledger.asset_flows("OTHER") == {}


def test_fills_after_the_baseline_are_expected_exactly_so_the_next_read_shows_no_drift() -> None:
    """Fills with a base-asset and a quote-asset commission between two reads: the account moved by exactly what
    the ledger expects, so every drift is 0 and nothing is noted."""
    ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("1"))
    ledger.apply_account(_account(START))
    _traded(ledger)

    ledger.apply_account(_account(_after_trades()))

    assert set(ledger.snapshot().drift.values()) == {0}
    assert ledger.take_notes() == []
    assert not ledger.snapshot().drift_breached


def test_baseline_taken_after_fills_compares_only_what_moved_since() -> None:
    """A first read that comes after fills (a failed start-up read): those fills are in its balances already."""
    ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("1"))
    _traded(ledger)
    ledger.apply_account(_account(_after_trades()))
    ledger.apply(_report("b2", S.FILLED, last_qty=100, cum_qty=100, order_qty=100, fee="0.000001",
                         fee_asset="BTC", trade_id="3"))

    ledger.apply_account(_account(_after_trades(BTC=Decimal("0.000999"), USDT=Decimal("-50"))))

    assert set(ledger.snapshot().drift.values()) == {0}
    assert ledger.take_notes() == []


def test_drift_of_one_step_is_kept_but_neither_noted_nor_breached() -> None:
    """0.00001 BTC more than expected is one step of BTCUSDT: shown, not a Note, not a breach even with a
    bound it exceeds in value (0.5 USDT at 50000 > 0.1)."""
    ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("0.1"))
    ledger.apply_account(_account(START))
    _traded(ledger)

    ledger.apply_account(_account(_after_trades(BTC=Decimal("0.00001"), USDT=Decimal("-0.0000001"))))

    snapshot = ledger.snapshot()
    assert snapshot.drift[(V, "BTC")] == Decimal("0.00001")
    assert snapshot.drift[(V, "USDT")] == Decimal("-0.0000001")  # under one tick x step of USDT: within too
    assert ledger.take_notes() == [] and not snapshot.drift_breached


def test_drift_beyond_one_step_is_a_note_and_breaches_the_bound_in_quote_value_when_two_reads_show_it() -> None:
    """0.00002 BTC missing is two steps, worth 1 USDT at mid 50000: a position_drift Note naming the numbers.
    Beyond a 0.5 USDT bound it is judged again at the next read (it could be a fill whose report is in flight);
    the recheck shows it again, so it breaches, and the reason says which asset at which venue."""
    ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("0.5"))
    ledger.apply_account(_account(START))
    _traded(ledger)
    drifted = _after_trades(BTC=Decimal("-0.00002"))
    numbers = ("BTC: account 2.00597, expected 2.00599 (baseline 2, ledger +0.00599): drift -0.00002, "
               "beyond one step 0.00001, worth 1; beyond the bound 0.5")

    ledger.apply_account(_account(drifted, ts_ns=123))

    snapshot = ledger.snapshot()
    assert snapshot.drift[(V, "BTC")] == Decimal("-0.00002")
    (note,) = ledger.take_notes()
    assert (note.kind, note.venue, note.symbol, note.client_order_id, note.ts_ns) == (
        NoteKind.POSITION_DRIFT, V, "", "", 123)
    assert note.detail == f"{numbers}, not in the read before: judged at the next read"
    assert not snapshot.drift_breached and snapshot.drift_reason == ""

    ledger.apply_account(_account(drifted, ts_ns=124))

    snapshot = ledger.snapshot()
    (note,) = ledger.take_notes()
    assert note.detail == f"{numbers} in two reads: breached"
    assert snapshot.drift_breached
    assert snapshot.drift_reason == "BINANCE BTC drift -0.00002 worth 1 in two reads, beyond max 0.5"
    assert ledger.stats.anomalies()[NoteKind.POSITION_DRIFT] == 2


def test_a_fill_in_flight_at_one_read_never_breaches() -> None:
    """The account has a fill whose report is still on its way: 0.002 BTC more and 100 USDT less than the books,
    far beyond a bound of 10. The recheck comes after the report: no drift there, so nothing breached."""
    ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("10"))
    ledger.apply_account(_account(START))
    in_flight = {**START, "BTC": START["BTC"] + Decimal("0.002"), "USDT": START["USDT"] - Decimal("100")}

    ledger.apply_account(_account(in_flight))
    assert not ledger.snapshot().drift_breached
    assert ledger.snapshot().drift[(V, "USDT")] == Decimal("-100")
    ledger.apply(_report("late", S.FILLED, last_qty=200, cum_qty=200, order_qty=200, price=5_000_000,
                         trade_id="9"))  # 0.002 at 50000.00
    ledger.apply_account(_account(in_flight))

    snapshot = ledger.snapshot()
    assert set(snapshot.drift.values()) == {0} and not snapshot.drift_breached
    notes = ledger.take_notes()
    assert len(notes) == 2 and all("judged at the next read" in note.detail for note in notes)


def test_only_what_two_reads_in_a_row_both_show_counts() -> None:
    """Against a bound of 100 USDT: -300 then -50 (the smaller is within), then -150 (what -50 and -150 share is
    50), then +500 (opposite sign: nothing in common), then +120 twice: breached at the last read only."""
    ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("100"))
    ledger.apply_account(_account(START))
    seen = []
    judged = []
    for delta in ("-300", "-50", "-150", "500", "120", "120"):
        ledger.apply_account(_account({**START, "USDT": START["USDT"] + Decimal(delta)}))
        seen.append(ledger.snapshot().drift_breached)
        judged.append(ledger.take_notes()[0].detail.partition("; ")[2])

    assert seen == [False, False, False, False, True, True]
    assert judged == [
        "beyond the bound 100, not in the read before: judged at the next read",
        "",  # -50: within the bound
        "beyond the bound 100, the read before showed -50 of it: judged at the next read",
        "beyond the bound 100, not in the read before: judged at the next read",  # the opposite sign
        "beyond the bound 100 in two reads: breached",  # +120 after +500: they share 120
        "beyond the bound 100 in two reads: breached",
    ]
    assert ledger.snapshot().drift_reason == "BINANCE USDT drift +120 worth 120 in two reads, beyond max 100"
    ledger.apply_account(_account({**START, "USDT": START["USDT"] + Decimal("101")}))
    assert ledger.snapshot().drift_reason == "BINANCE USDT drift +101 worth 101 in two reads, beyond max 100"


def test_drift_beyond_one_step_but_within_the_bound_is_noted_only() -> None:
    ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("2"))
    ledger.apply_account(_account(START))

    ledger.apply_account(_account({**START, "BTC": START["BTC"] + Decimal("0.00002")}))

    assert _kinds(ledger.take_notes()) == [NoteKind.POSITION_DRIFT]
    assert not ledger.snapshot().drift_breached


def test_quote_asset_drift_is_valued_at_face_and_zero_bound_never_breaches() -> None:
    """12.5 USDT gone: worth 12.5, beyond a bound of 10; with the bound 0 (off) it is noted, never breached."""
    for bound, breached in ((Decimal("10"), True), (Decimal("0"), False)):
        ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=bound)
        ledger.apply_account(_account(START))
        for _ in range(2):  # the read and its recheck
            ledger.apply_account(_account({**START, "USDT": START["USDT"] - Decimal("12.5")}))
        assert ledger.snapshot().drift[(V, "USDT")] == Decimal("-12.5")
        notes = ledger.take_notes()
        assert len(notes) == 2 and all("worth 12.5" in note.detail for note in notes)
        assert ledger.snapshot().drift_breached is breached


def test_base_asset_drift_without_a_price_breaches_rather_than_passing_unvalued() -> None:
    """No ETH quote on the board: a drift beyond one step cannot be valued, so it breaches (fail safe)."""
    ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("1000000"))
    ledger.apply_account(_account(START))

    for _ in range(2):  # the read and its recheck
        ledger.apply_account(_account({**START, "ETH": START["ETH"] + Decimal("0.0002")}))

    assert ledger.snapshot().drift_breached
    assert ledger.snapshot().drift_reason == ("BINANCE ETH drift +0.0002 has no price to value it in two reads, "
                                              "beyond max 1000000")


def test_a_commission_in_a_third_asset_is_expected_out_of_that_asset() -> None:
    """A BNB commission (no BNB instrument): BNB becomes tracked, expected down by the fee, tolerance 10**-8."""
    ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("1"))
    start = {**START, "BNB": Decimal("1")}
    ledger.apply_account(_account(start))
    ledger.apply(_report("b1", S.FILLED, last_qty=1000, cum_qty=1000, fee="0.0075", fee_asset="BNB", trade_id="1"))
    moved = {"BTC": start["BTC"] + Decimal("0.01"), "USDT": start["USDT"] - Decimal("500")}

    ledger.apply_account(_account({**start, **moved, "BNB": Decimal("0.9925")}))
    exact = dict(ledger.snapshot().drift)
    ledger.apply_account(_account({**start, **moved, "BNB": Decimal("0.99250002")}))

    assert exact[(V, "BNB")] == 0
    assert ledger.snapshot().drift[(V, "BNB")] == Decimal("0.00000002")
    (note,) = ledger.take_notes()
    assert note.detail.startswith("BNB:") and f"beyond one step {BALANCE_PRECISION:f}" in note.detail


def test_newest_read_of_each_venue_decides_the_breach() -> None:
    """A drift that a later read no longer shows clears ``drift_breached``; another venue's breach is kept."""
    ledger = Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("1"))
    for venue in ("BINANCE", "OTHER"):
        ledger.apply_account(_account(START, venue=venue))
    for _ in range(2):
        ledger.apply_account(_account({**START, "USDT": START["USDT"] + 5}, venue="OTHER"))
        ledger.apply_account(_account({**START, "USDT": START["USDT"] + 5}))
    assert ledger.snapshot().drift_reason == ("BINANCE USDT drift +5 worth 5 in two reads, beyond max 1; "
                                              "OTHER USDT drift +5 worth 5 in two reads, beyond max 1")

    ledger.apply_account(_account(START))  # the BINANCE difference went away: the next read agrees again

    snapshot = ledger.snapshot()
    assert snapshot.drift[(V, "USDT")] == 0 and snapshot.drift[("OTHER", "USDT")] == 5
    assert snapshot.drift_breached
    assert snapshot.drift_reason == "OTHER USDT drift +5 worth 5 in two reads, beyond max 1"


def test_open_orders_are_compared_both_ways_by_the_ids_the_ledger_has_seen() -> None:
    """Open in our books but not listed, and listed but ended in our books: one Note each. A listed order we
    never saw, and another venue's order, are not judged."""
    ledger = Ledger(INSTRUMENTS, max_drift=Decimal("1"))
    ledger.apply(_report("open-here", S.ACK))
    ledger.apply(_report("open-lost", S.ACK))
    ledger.apply(_report("ended", S.ACK))
    ledger.apply(_report("ended", S.CANCELED))
    ledger.apply(_report("elsewhere", S.ACK, venue="OTHER"))

    ledger.apply_account(_account(START, "ended", "foreign", "open-here", ts_ns=77))

    notes = ledger.take_notes()
    assert [(n.kind, n.client_order_id, n.symbol, n.venue, n.ts_ns) for n in notes] == [
        (NoteKind.OPEN_ORDER_MISMATCH, "open-lost", "BTCUSDT", V, 77),
        (NoteKind.OPEN_ORDER_MISMATCH, "ended", "BTCUSDT", V, 77),
    ]
    assert notes[0].detail == "open in our books (ack) but not among the venue's 3 open orders"
    assert notes[1].detail == "open at the venue but canceled in our books"
    assert ledger.stats.anomalies()[NoteKind.OPEN_ORDER_MISMATCH] == 2
    assert not ledger.snapshot().drift_breached  # order mismatches are Notes, never a breach


def test_reconciler_refuses_a_bound_that_is_not_a_non_negative_decimal() -> None:
    for bad in (Decimal(-1), Decimal("NaN"), 5):
        with pytest.raises(ValueError, match=r"^max_drift: a finite Decimal >= 0"):
            Reconciler(INSTRUMENTS, max_drift=bad)  # type: ignore[arg-type]
    # USDT: the largest tick x step of its symbols (ETHUSDT 0.01 x 0.0001); ETH: its step
    assert Reconciler(INSTRUMENTS, max_drift=Decimal(0)).tolerance("USDT") == Decimal("0.000001")
    assert Reconciler(INSTRUMENTS, max_drift=Decimal(0)).tolerance("ETH") == Decimal("0.0001")


async def test_positions_stage_reconciles_an_account_read_in_flow_order_and_records_its_notes() -> None:
    """Reports and an account read on one inbox: the read is compared after the reports queued before it, the
    published snapshot carries the drift, and the Note goes to the recorder's channel."""
    inbox: Channel[ExecReport | AccountSnapshot] = Channel("exec.positions", 64)
    notes: Channel[Note] = Channel("record", 64)
    latest = Latest(EMPTY_SNAPSHOT)
    stage = PositionsStage(Ledger(INSTRUMENTS, board=_board(), max_drift=Decimal("1")), inbox, latest,
                           Fanout([notes]))
    await inbox.put(_account(START))
    for report in (_report("b1", S.ACK), _report("b1", S.FILLED, last_qty=1000, cum_qty=1000, trade_id="1")):
        await inbox.put(report)
    for _ in range(2):  # a read and its recheck
        await inbox.put(_account({**START, "BTC": Decimal("2.01"), "USDT": Decimal("99400")}))  # 100 USDT too few
    await inbox.close()

    async with asyncio.timeout(5):
        await stage.run()

    assert latest.value.drift == {(V, "BTC"): 0, (V, "ETH"): 0, (V, "USDT"): Decimal("-100")}
    assert latest.value.drift_breached
    await notes.close()
    recorded = await notes.get_batch()
    assert recorded is not None and [note.kind for note in recorded] == [NoteKind.POSITION_DRIFT] * 2
