"""Unit tests of the pure positions ledger (dma_bot.positions.ledger)."""

from __future__ import annotations

import logging
import random
from decimal import Context, Decimal
from fractions import Fraction
from itertools import count

import pytest

from dma_bot.model.enums import ExecStatus, NoteKind, Side
from dma_bot.model.events import ExecReport, Tick
from dma_bot.model.instrument import Instrument
from dma_bot.model.market import MarketBoard
from dma_bot.model.positions import PnlForm
from dma_bot.positions.ledger import Ledger

_EXACT = Context(prec=100)  # Decimal(int).scaleb without rounding
BTC = Instrument(symbol="BTCUSDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"), base_asset="BTC",
                 quote_asset="USDT")
ETH = Instrument(symbol="ETHUSDT", tick_size=Decimal("0.5"), step_size=Decimal("0.01"), base_asset="ETH",
                 quote_asset="USDT")
INSTRUMENTS = {"BTCUSDT": BTC, "ETHUSDT": ETH}

_trade_ids = count(1)


def _report(
    *,
    side: Side = Side.BUY,
    status: ExecStatus = ExecStatus.FILLED,
    last_qty: int = 0,
    last_price: int = 0,
    leaves_qty: int = 0,
    client_order_id: str = "c1",
    venue: str = "A",
    symbol: str = "BTCUSDT",
    trade_id: str | None = "auto",
    fee: Decimal = Decimal(0),
    fee_asset: str = "USDT",
    cum_qty: int | None = None,
    order_qty: int | None = None,
) -> ExecReport:
    if trade_id == "auto":
        trade_id = f"t{next(_trade_ids)}" if last_qty else None
    return ExecReport(
        venue=venue,
        symbol=symbol,
        client_order_id=client_order_id,
        venue_order_id=f"v-{client_order_id}",
        side=side,
        status=status,
        last_qty=last_qty,
        last_price=last_price,
        cum_qty=last_qty if cum_qty is None else cum_qty,
        order_qty=(last_qty if cum_qty is None else cum_qty) + leaves_qty if order_qty is None else order_qty,
        leaves_qty=leaves_qty,
        fee=fee,
        fee_asset=fee_asset,
        trade_id=trade_id,
        reason="",
        ts_event_ns=1,
        ts_ns=2,
    )


def _board(*ticks: tuple[str, int, int]) -> MarketBoard:
    board = MarketBoard()
    for symbol, bid, ask in ticks:
        board.update(Tick(symbol, bid, ask, 1, 1, 0, 0))
    return board


def test_ledger_two_partial_fills_sum_quantity_at_weighted_average() -> None:
    """Two fills of one order add their last_qty (not cum_qty); the average is weighted by quantity."""
    ledger = Ledger(INSTRUMENTS)

    ledger.apply(_report(status=ExecStatus.PARTIALLY_FILLED, last_qty=3, last_price=10_000, leaves_qty=1))
    ledger.apply(_report(status=ExecStatus.FILLED, last_qty=1, cum_qty=4, last_price=10_400))

    position = ledger.snapshot().positions[("BTCUSDT", "A")]
    assert position.quantity == 4
    assert position.average_price == Decimal("101.00")
    assert ledger.snapshot().net_steps["BTCUSDT"] == 4
    assert ledger.snapshot().fills == 2


def test_ledger_flip_long_to_short_realizes_closed_part_and_reopens_at_fill_price() -> None:
    """Selling more than held closes the long at a profit and opens the rest short at the fill price."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(side=Side.BUY, last_qty=2, last_price=10_000, client_order_id="b"))

    ledger.apply(_report(side=Side.SELL, last_qty=5, last_price=10_300, client_order_id="s"))

    position = ledger.snapshot().positions[("BTCUSDT", "A")]
    assert position.quantity == -3
    assert position.average_price == Decimal("103.00")
    assert position.realized_pnl == Decimal("0.006")  # (103.00 - 100.00) * 0.002
    assert ledger.snapshot().realized_pnl == Decimal("0.006")


def test_ledger_flip_short_to_long_realizes_short_loss() -> None:
    """A short bought back above its entry realizes a loss, and the remainder is long at the fill price."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(side=Side.SELL, last_qty=4, last_price=20_000, client_order_id="s"))

    ledger.apply(_report(side=Side.BUY, last_qty=6, last_price=20_050, client_order_id="b"))

    position = ledger.snapshot().positions[("BTCUSDT", "A")]
    assert position.quantity == 2
    assert position.average_price == Decimal("200.50")
    assert position.realized_pnl == Decimal("-0.002")  # (200.00 - 200.50) * 0.004


def test_ledger_closing_to_flat_resets_average_to_zero() -> None:
    """A position closed exactly is flat with average price 0 and keeps its realized PnL."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(side=Side.BUY, last_qty=2, last_price=10_000, client_order_id="b"))

    ledger.apply(_report(side=Side.SELL, last_qty=2, last_price=9_900, client_order_id="s"))

    position = ledger.snapshot().positions[("BTCUSDT", "A")]
    assert (position.quantity, position.average_price) == (0, Decimal(0))
    assert position.realized_pnl == Decimal("-0.002")


def test_ledger_duplicate_trade_id_is_ignored_and_counted() -> None:
    """A fill replayed with the same (venue, trade_id) changes nothing and counts as a duplicate."""
    ledger = Ledger(INSTRUMENTS)
    fill = _report(status=ExecStatus.PARTIALLY_FILLED, last_qty=3, last_price=10_000, trade_id="T1")
    ledger.apply(fill)

    changed = ledger.apply(fill)

    assert changed is False
    assert ledger.snapshot().positions[("BTCUSDT", "A")].quantity == 3
    assert ledger.stats.duplicate_fills == 1
    assert ledger.stats.illegal_transitions == 0


def test_ledger_same_trade_id_on_another_venue_is_a_new_fill() -> None:
    """Trade ids are unique per venue only, so the same id at venue B is applied."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(last_qty=3, last_price=10_000, trade_id="T1", venue="A", client_order_id="a"))

    changed = ledger.apply(_report(last_qty=3, last_price=10_000, trade_id="T1", venue="B", client_order_id="b"))

    assert changed is True
    assert ledger.snapshot().net_steps["BTCUSDT"] == 6
    assert ledger.stats.duplicate_fills == 0


def test_ledger_side_comes_from_report_even_when_price_suggests_otherwise() -> None:
    """A buy filled far below the mid is still a buy (the PoC guessed the side from the price)."""
    ledger = Ledger(INSTRUMENTS)
    board = _board(("BTCUSDT", 10_000, 10_002))

    ledger.apply(_report(side=Side.BUY, last_qty=5, last_price=9_000))

    assert ledger.snapshot().positions[("BTCUSDT", "A")].quantity == 5
    assert ledger.unrealized_pnl(board) == Decimal("0.05005")  # (100.01 - 90.00) * 0.005


def test_ledger_fill_after_cancel_is_booked_and_counted_as_illegal(caplog: pytest.LogCaptureFixture) -> None:
    """A fill with new cum_qty for an order already CANCELED is money: applied, the state kept, the illegal
    transition logged once, counted and noted; the order's done steps stay its quantity (never twice)."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(status=ExecStatus.ACK, client_order_id="c9", order_qty=5))
    ledger.apply(_report(status=ExecStatus.CANCELED, client_order_id="c9", leaves_qty=5))
    ledger.take_notes()

    with caplog.at_level(logging.WARNING, logger="dma_bot.positions.ledger"):
        changed = ledger.apply(_report(last_qty=5, last_price=10_000, client_order_id="c9", trade_id="T7"))

    assert changed is True
    assert ledger.stats.illegal_transitions == 1
    assert ledger.snapshot().positions[("BTCUSDT", "A")].quantity == 5
    assert ledger.snapshot().done_steps[("BTCUSDT", Side.BUY)] == 5
    assert ledger.order_status("c9") is ExecStatus.CANCELED
    warnings = [r for r in caplog.records if "illegal order transition" in r.getMessage()]
    assert len(warnings) == 1
    assert "c9" in warnings[0].getMessage() and "T7" in warnings[0].getMessage()
    [note] = ledger.take_notes()
    assert (note.kind, note.client_order_id, note.venue) == (NoteKind.ILLEGAL_TRANSITION, "c9", "A")
    assert "canceled -> filled" in note.detail


def test_ledger_done_steps_count_fills_and_released_leaves_per_side() -> None:
    """done_steps grows by each fill and by the leaves of an order that ends CANCELED, REJECTED or EXPIRED."""
    ledger = Ledger(INSTRUMENTS)

    ledger.apply(_report(status=ExecStatus.ACK, client_order_id="b1"))
    ledger.apply(_report(status=ExecStatus.PARTIALLY_FILLED, last_qty=3, last_price=10_000,
                         leaves_qty=7, client_order_id="b1"))
    ledger.apply(_report(status=ExecStatus.CANCELED, leaves_qty=7, client_order_id="b1"))
    ledger.apply(_report(side=Side.SELL, status=ExecStatus.REJECTED, leaves_qty=4, client_order_id="s1"))
    ledger.apply(_report(side=Side.SELL, status=ExecStatus.ACK, client_order_id="s2"))
    ledger.apply(_report(side=Side.SELL, status=ExecStatus.EXPIRED, leaves_qty=2, client_order_id="s2"))

    done = ledger.snapshot().done_steps
    assert done[("BTCUSDT", Side.BUY)] == 10
    assert done[("BTCUSDT", Side.SELL)] == 6


def test_ledger_ack_changes_no_snapshot_state() -> None:
    """An ACK moves the order state but leaves the snapshot as it was (apply returns False)."""
    ledger = Ledger(INSTRUMENTS)
    before = ledger.snapshot()

    changed = ledger.apply(_report(status=ExecStatus.ACK, client_order_id="a1"))

    assert changed is False
    assert ledger.snapshot() is before
    assert ledger.order_status("a1") is ExecStatus.ACK
    assert ledger.open_orders == 1


def test_ledger_unrealized_pnl_marks_long_and_short_at_exact_mid() -> None:
    """Open positions are marked at (bid + ask) / 2 exactly, including half-tick mids."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(side=Side.BUY, last_qty=2_000, last_price=10_000, client_order_id="b"))
    ledger.apply(_report(side=Side.SELL, symbol="ETHUSDT", last_qty=100, last_price=4_000, client_order_id="s"))
    board = _board(("BTCUSDT", 10_100, 10_103), ("ETHUSDT", 3_990, 3_991))

    unrealized = ledger.unrealized_pnl(board)

    # BTC: (101.015 - 100.00) * 2.000 = 2.03; ETH short: (2000.00 - 1995.25) * 1.00 = 4.75
    assert unrealized == Decimal("6.78")


def test_ledger_unrealized_pnl_skips_symbol_without_market() -> None:
    """A symbol with no tick on the board contributes nothing to unrealized PnL."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(side=Side.BUY, last_qty=2_000, last_price=10_000))

    assert ledger.unrealized_pnl(MarketBoard()) == Decimal(0)


def test_ledger_positions_are_kept_per_venue_and_netted_per_symbol() -> None:
    """Fills on two venues make two positions; net_steps and realized PnL sum over venues."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(venue="A", side=Side.BUY, last_qty=5, last_price=10_000, client_order_id="a1"))
    ledger.apply(_report(venue="B", side=Side.SELL, last_qty=2, last_price=10_100, client_order_id="b1"))
    ledger.apply(_report(venue="A", side=Side.SELL, last_qty=1, last_price=10_200, client_order_id="a2",
                         fee=Decimal("0.0102")))

    snapshot = ledger.snapshot()
    assert snapshot.venue_steps("BTCUSDT", "A") == 4
    assert snapshot.venue_steps("BTCUSDT", "B") == -2
    assert snapshot.net_steps["BTCUSDT"] == 2
    assert snapshot.positions[("BTCUSDT", "A")].realized_pnl == Decimal("0.002")
    assert snapshot.positions[("BTCUSDT", "A")].fees == {"USDT": Decimal("0.0102")}
    assert snapshot.positions[("BTCUSDT", "A")].fee_value == Decimal("0.0102")
    assert snapshot.fee_value == Decimal("0.0102")
    assert snapshot.positions[("BTCUSDT", "B")].realized_pnl == 0
    assert snapshot.realized_pnl == Decimal("0.002")


def test_ledger_snapshot_is_read_only_and_unaffected_by_later_fills() -> None:
    """A published snapshot cannot be written and does not change when the ledger moves on."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(last_qty=1, last_price=10_000, status=ExecStatus.PARTIALLY_FILLED))
    snapshot = ledger.snapshot()

    ledger.apply(_report(last_qty=1, last_price=10_000, status=ExecStatus.FILLED))

    assert snapshot.net_steps["BTCUSDT"] == 1
    assert ledger.snapshot().net_steps["BTCUSDT"] == 2
    with pytest.raises(TypeError):
        snapshot.net_steps["BTCUSDT"] = 0  # type: ignore[index]


def test_ledger_non_terminating_average_stays_exact_in_realized_pnl() -> None:
    """Buys at 1, 2 and 2 average 5/3 (rounded only in the view); selling all at 2 realizes exactly."""
    ledger = Ledger(INSTRUMENTS)
    for i, price in enumerate((100, 200, 200)):
        ledger.apply(_report(side=Side.BUY, last_qty=1, last_price=price, client_order_id=f"b{i}"))
    average = ledger.snapshot().positions[("BTCUSDT", "A")].average_price

    ledger.apply(_report(side=Side.SELL, last_qty=3, last_price=200, client_order_id="s"))

    assert abs(Fraction(average) - Fraction(5, 3)) < Fraction(1, 10**35)
    assert ledger.snapshot().realized_pnl == Decimal("0.001")  # 3 * 2.00 * 0.001 - (1 + 2 + 2) * 0.001


def test_ledger_unknown_symbol_is_skipped_and_counted() -> None:
    """A report for a symbol without an instrument changes nothing and is counted."""
    ledger = Ledger(INSTRUMENTS)

    changed = ledger.apply(_report(symbol="DOGEUSDT", last_qty=1, last_price=1))

    assert changed is False
    assert ledger.stats.unknown_symbols == 1
    assert ledger.snapshot().positions == {}


def test_ledger_bounds_forget_oldest_trade_ids_and_terminal_orders() -> None:
    """Past its bounds the ledger forgets the oldest trade id and the oldest terminal order."""
    ledger = Ledger(INSTRUMENTS, max_terminal_orders=1, max_trade_ids=1)
    ledger.apply(_report(last_qty=1, last_price=100, trade_id="T1", client_order_id="o1"))
    ledger.apply(_report(last_qty=1, last_price=100, trade_id="T2", client_order_id="o2"))

    replay_changed = ledger.apply(_report(last_qty=1, last_price=100, trade_id="T1", client_order_id="o3"))

    assert replay_changed is True
    assert ledger.order_status("o1") is None
    assert ledger.stats.forgotten_orders == 2
    assert ledger.stats.duplicate_fills == 0


def test_ledger_rejects_non_positive_bounds() -> None:
    """Bounds must be positive."""
    with pytest.raises(ValueError, match="must be positive"):
        Ledger(INSTRUMENTS, max_trade_ids=0)


def _average_cost_realized(fills: list[tuple[int, int]]) -> Fraction:
    """Reference realized PnL of an average-cost book, in exact Fractions of tick*step."""
    quantity, average, realized = 0, Fraction(0), Fraction(0)
    for signed, ticks in fills:
        if quantity == 0 or (quantity > 0) == (signed > 0):
            average = (average * abs(quantity) + ticks * abs(signed)) / abs(quantity + signed)
        else:
            closed = min(abs(signed), abs(quantity))
            realized += (ticks - average) * closed * (1 if quantity > 0 else -1)
            if abs(signed) >= abs(quantity):
                average = Fraction(ticks)
        quantity += signed
    return realized


def test_ledger_random_fills_match_brute_force_quantity_and_cash() -> None:
    """Over seeded random fills: quantity is the signed sum, realized + unrealized equals the cash PnL
    exactly, and realized is within the documented rounding of the exact average-cost value."""
    rng = random.Random(20240521)
    for _ in range(60):
        ledger = Ledger(INSTRUMENTS)
        fills: dict[tuple[str, str], list[tuple[int, int]]] = {}
        cash = Fraction(0)
        for i in range(rng.randrange(1, 60)):
            symbol = rng.choice(("BTCUSDT", "ETHUSDT"))
            instrument = INSTRUMENTS[symbol]
            venue = rng.choice(("A", "B"))
            side = rng.choice((Side.BUY, Side.SELL))
            steps = rng.randrange(1, 50)
            ticks = rng.randrange(9_000, 11_000)
            ledger.apply(_report(symbol=symbol, venue=venue, side=side, last_qty=steps, last_price=ticks,
                                 client_order_id=f"o{i}"))
            fills.setdefault((symbol, venue), []).append((side.sign * steps, ticks))
            cash -= side.sign * steps * ticks * Fraction(instrument.tick_size) * Fraction(instrument.step_size)
        mids = {"BTCUSDT": (10_000, 10_001), "ETHUSDT": (9_999, 10_003)}
        board = _board(*((symbol, bid, ask) for symbol, (bid, ask) in mids.items()))
        unit = {s: Fraction(i.tick_size) * Fraction(i.step_size) for s, i in INSTRUMENTS.items()}
        signed = {key: sum(q for q, _ in sequence) for key, sequence in fills.items()}
        equity = cash + sum(
            (q * Fraction(sum(mids[symbol]), 2) * unit[symbol] for (symbol, _), q in signed.items()),
            Fraction(0),
        )
        reference = sum(
            (_average_cost_realized(sequence) * unit[symbol] for (symbol, _), sequence in fills.items()),
            Fraction(0),
        )

        snapshot = ledger.snapshot()
        total = snapshot.realized_pnl + ledger.unrealized_pnl(board)

        assert {key: snapshot.venue_steps(*key) for key in signed} == signed
        assert Fraction(total) == equity
        closes = sum(len(sequence) for sequence in fills.values())
        assert abs(Fraction(snapshot.realized_pnl) - reference) <= closes * max(unit.values()) / 10**9


def test_ledger_partial_close_of_non_terminating_average_keeps_total_exact() -> None:
    """Selling 1 of 3 bought at an average of 5/3 realizes a rounded third of a cent-step, yet
    realized + unrealized stays the exact cash PnL."""
    ledger = Ledger(INSTRUMENTS)
    for i, price in enumerate((100, 200, 200)):
        ledger.apply(_report(side=Side.BUY, last_qty=1, last_price=price, client_order_id=f"b{i}"))

    ledger.apply(_report(side=Side.SELL, last_qty=1, last_price=200, client_order_id="s"))

    realized = ledger.snapshot().realized_pnl
    # (2.00 - 5/3) * 0.001 = 0.000333..., kept in units of 1e-9 * tick*step = 1e-14
    assert realized == Decimal("0.00033333333333")
    board = _board(("BTCUSDT", 150, 150))
    # cash: -(1 + 2 + 2) + 2 = -3.00 * 0.001; 2 held at 1.50 -> +3.00 * 0.001: total 0
    assert realized + ledger.unrealized_pnl(board) == 0
    assert ledger.snapshot().positions[("BTCUSDT", "A")].quantity == 2


def test_ledger_terminal_order_releases_its_unfilled_rest_from_order_qty() -> None:
    """A rejected or cancelled order reports leaves 0 (it is terminal); the ledger releases order_qty - cum_qty."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(status=ExecStatus.REJECTED, order_qty=4, leaves_qty=0, client_order_id="r1"))
    ledger.apply(_report(status=ExecStatus.ACK, order_qty=10, leaves_qty=10, client_order_id="p1"))
    ledger.apply(_report(status=ExecStatus.PARTIALLY_FILLED, last_qty=3, last_price=10_000, order_qty=10,
                         leaves_qty=7, client_order_id="p1"))
    ledger.apply(_report(status=ExecStatus.CANCELED, cum_qty=3, order_qty=10, leaves_qty=0, client_order_id="p1"))
    assert ledger.snapshot().done_steps[("BTCUSDT", Side.BUY)] == 4 + 3 + 7


def test_ledger_same_trade_id_on_two_symbols_is_two_fills() -> None:
    """Binance trade ids are unique per symbol only: the same id on another symbol is a different fill."""
    ledger = Ledger(INSTRUMENTS)
    assert ledger.apply(_report(status=ExecStatus.FILLED, last_qty=2, last_price=10_000, trade_id="7"))
    assert ledger.apply(
        _report(status=ExecStatus.FILLED, last_qty=3, last_price=200, trade_id="7", symbol="ETHUSDT",
                client_order_id="c2")
    )
    assert ledger.snapshot().net_steps == {"BTCUSDT": 2, "ETHUSDT": 3}


def test_ledger_mark_equals_net_pnl_and_values_the_exposure_at_mid() -> None:
    """mark() is net PnL's exact value (realized + unrealized - priced fees) with the traded quantities'
    value at mid, over random fills on two symbols and venues; a symbol without a mid counts 0 in both."""
    rng = random.Random(5)
    ledger = Ledger(INSTRUMENTS)
    for n in range(300):
        symbol = rng.choice(["BTCUSDT", "ETHUSDT"])
        ledger.apply(_report(side=rng.choice([Side.BUY, Side.SELL]), symbol=symbol, venue=rng.choice("AB"),
                             last_qty=rng.randint(1, 900), last_price=rng.randint(9_000, 11_000),
                             client_order_id=f"m{n}", fee=Decimal(rng.randint(0, 999)) / 10_000))
        board = _board(("BTCUSDT", rng.randint(9_000, 11_000), rng.randint(11_001, 11_003)),
                       *([("ETHUSDT", 4_000, 4_001)] if n % 3 else []))
        net, exposure = ledger.mark(board)
        assert net == ledger.realized_pnl() + ledger.unrealized_pnl(board) - ledger.fee_value()
        assert ledger.net_pnl(board) == net
        held = {s: sum(p.traded_quantity for p in ledger.snapshot().positions.values() if p.symbol == s)
                for s in ("BTCUSDT", "ETHUSDT")}
        expected = sum((INSTRUMENTS[s].steps_to_qty(q) * INSTRUMENTS[s].ticks_to_price(board.mid2(s)) / 2
                        for s, q in held.items() if board.mid2(s) is not None), Decimal(0))
        assert exposure == expected
        books = ledger.book_pnl(board)  # per book, not from the per-symbol sums mark() keeps
        assert sum((unrealized for _, unrealized in books.values()), Decimal(0)) == ledger.unrealized_pnl(board)
        assert sum((realized for realized, _ in books.values()), Decimal(0)) == ledger.realized_pnl()


def test_ledger_mark_units_are_net_pnl_and_exposure_exactly_with_the_fees_places() -> None:
    """mark_units() and net_units() are net PnL (realized + unrealized - priced fees) and the exposure at mid
    exactly, as integers of 10**-digits, the net with the finer of the marks' and the fees' decimal places (so
    mark()'s Decimals spell it as subtracting the fees does), also when a fee is finer than the marks."""
    rng = random.Random(11)
    ledger = Ledger(INSTRUMENTS)
    finest = 0  # the most decimal places of any fee booked
    for n in range(300):
        symbol = rng.choice(["BTCUSDT", "ETHUSDT"])
        places = rng.choice([0, 4, 12, 20])  # 20: finer than the marks' integers
        finest = max(finest, places)
        ledger.apply(_report(side=rng.choice([Side.BUY, Side.SELL]), symbol=symbol, venue=rng.choice("AB"),
                             last_qty=rng.randint(1, 900), last_price=rng.randint(9_000, 11_000),
                             client_order_id=f"u{n}", fee=Decimal(rng.randint(0, 999)).scaleb(-places)))
        board = _board(("BTCUSDT", rng.randint(9_000, 11_000), rng.randint(11_001, 11_003)),
                       *([("ETHUSDT", 4_000, 4_001)] if n % 3 else []))
        units, digits, exposure_units, exposure_digits = ledger.mark_units(board)
        expected = (Fraction(ledger.realized_pnl()) + Fraction(ledger.unrealized_pnl(board))
                    - Fraction(ledger.fee_value()))
        assert Fraction(units, 10**digits) == expected
        assert digits == max(exposure_digits, finest)
        held = {s: sum(p.traded_quantity for p in ledger.snapshot().positions.values() if p.symbol == s)
                for s in ("BTCUSDT", "ETHUSDT")}
        exposure = sum((Fraction(INSTRUMENTS[s].steps_to_qty(q) * INSTRUMENTS[s].ticks_to_price(board.mid2(s)))
                        / 2 for s, q in held.items() if board.mid2(s) is not None), Fraction(0))
        assert Fraction(exposure_units, 10**exposure_digits) == exposure
        assert ledger.net_units(board) == (units, digits)
        net, net_exposure = ledger.mark(board)
        assert str(net) == str(Decimal(units).scaleb(-digits, _EXACT))
        assert net_exposure == Decimal(exposure_units).scaleb(-exposure_digits, _EXACT)
    assert finest > exposure_digits  # the finest fees set the net's digits


def _evaluate(form: PnlForm, board: MarketBoard) -> Fraction:
    total = form.realized
    for symbol, (coefficient, constant) in zip(form.symbols, form.terms, strict=True):
        mid2 = board.mid2(symbol)
        if mid2 is not None:
            total += coefficient * mid2 + constant
    return Fraction(total, 10**form.digits) - Fraction(form.fee_value)


def test_ledger_pnl_form_is_net_pnl_exactly_at_any_board() -> None:
    """The snapshot's PnlForm, evaluated at random boards (a symbol's mid sometimes missing), is net_pnl exactly
    after every one of random fills on two grids and venues (flips, round trips, quote and base fees); its
    realized and fee value are the snapshot's."""
    rng = random.Random(11)
    ledger = Ledger(INSTRUMENTS)
    for n in range(300):
        symbol = rng.choice(["BTCUSDT", "ETHUSDT"])
        fee_asset = rng.choice(["USDT", INSTRUMENTS[symbol].base_asset])
        ledger.apply(_report(side=rng.choice([Side.BUY, Side.SELL]), symbol=symbol, venue=rng.choice("ABC"),
                             last_qty=rng.randint(1, 900), last_price=rng.randint(1, 20_000),
                             client_order_id=f"f{n}", fee=Decimal(rng.randint(0, 999)).scaleb(-rng.randint(0, 9)),
                             fee_asset=fee_asset))
        snapshot = ledger.snapshot()
        form = snapshot.pnl_form
        assert form is ledger.pnl_form()
        assert Fraction(form.realized, 10**form.digits) == snapshot.realized_pnl
        assert form.fee_value == snapshot.fee_value
        for _ in range(3):
            board = _board(*((s, rng.randint(1, 20_000), rng.randint(1, 20_000))
                             for s in ("BTCUSDT", "ETHUSDT") if rng.random() < 0.7))
            assert _evaluate(form, board) == ledger.net_pnl(board), n


def test_ledger_pnl_form_is_one_object_until_the_next_fill() -> None:
    """A report that moves no money (an ack, a cancel's released leaves) keeps the form; a fill replaces it,
    and a flat symbol (long at one venue, short as much at another, same price) drops out of it."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(status=ExecStatus.PARTIALLY_FILLED, last_qty=2, last_price=10_000, leaves_qty=3))
    form = ledger.snapshot().pnl_form
    assert form.symbols == ("BTCUSDT",)

    ledger.apply(_report(status=ExecStatus.CANCELED, cum_qty=2, order_qty=5, leaves_qty=0))
    cancelled = ledger.snapshot()
    ledger.apply(_report(side=Side.SELL, last_qty=2, last_price=10_000, venue="B", client_order_id="c2"))

    assert cancelled.done_steps[("BTCUSDT", Side.BUY)] == 5 and cancelled.pnl_form is form
    flat = ledger.snapshot().pnl_form
    assert flat is not form and flat.symbols == () and flat.realized == 0


def test_snapshot_positions_built_when_read_show_the_books_as_they_were_at_the_snapshot() -> None:
    """A snapshot's VenuePositions are built on first read, from what the books held when it was taken: fills,
    fees and a close after it do not show in it, read before or after them; an unchanged book's view is shared."""
    ledger = Ledger(INSTRUMENTS)
    ledger.apply(_report(last_qty=2_000, last_price=6_500_000, fee=Decimal("0.13"), client_order_id="c1"))
    ledger.apply(_report(symbol="ETHUSDT", last_qty=100, last_price=4_000, client_order_id="c2"))
    first = ledger.snapshot()
    eth_first = first.positions[("ETHUSDT", "A")]  # read now; BTC left unread
    ledger.apply(_report(side=Side.SELL, last_qty=500, last_price=6_600_000, fee=Decimal("0.05"),
                         fee_asset="BNB", client_order_id="c3"))
    second = ledger.snapshot()

    btc_then = first.positions[("BTCUSDT", "A")]
    btc_now = second.positions[("BTCUSDT", "A")]
    assert (btc_then.traded_quantity, btc_then.average_price, btc_then.realized_pnl) == (2_000, Decimal("65000"), 0)
    assert dict(btc_then.fees) == {"USDT": Decimal("0.13")}
    assert (btc_now.traded_quantity, btc_now.realized_pnl) == (1_500, Decimal("500"))
    assert dict(btc_now.fees) == {"USDT": Decimal("0.13"), "BNB": Decimal("0.05")}
    assert second.positions[("ETHUSDT", "A")] is eth_first
    assert ("ETHUSDT", "A") in first.positions and len(first.positions) == 2
    assert first.positions.get(("ETHUSDT", "B")) is None
    assert dict(first.positions) == {("BTCUSDT", "A"): btc_then, ("ETHUSDT", "A"): eth_first}


def test_ledger_view_reads_what_a_snapshot_taken_then_shows() -> None:
    """The backtest's LedgerView: after every report (fills on two venues, a base-asset fee, a close, a cancel)
    its net, held and done steps, PnL form and drift equal a snapshot's taken at the same moment."""
    ledger = Ledger(INSTRUMENTS)
    view = ledger.view()
    reports = [
        _report(last_qty=2_000, last_price=6_500_000, fee=Decimal("0.0015"), fee_asset="BTC", client_order_id="c1"),
        _report(venue="B", last_qty=700, last_price=6_510_000, client_order_id="c2"),
        _report(side=Side.SELL, last_qty=900, last_price=6_600_000, fee=Decimal("0.4"), client_order_id="c3"),
        _report(symbol="ETHUSDT", status=ExecStatus.CANCELED, last_qty=0, leaves_qty=0, cum_qty=30,
                order_qty=100, client_order_id="c4", trade_id=None),
    ]
    for report in reports:
        ledger.apply(report)
        snapshot = ledger.snapshot()
        assert dict(view.net_steps) == dict(snapshot.net_steps)
        assert dict(view.held_steps) == dict(snapshot.held_steps)
        assert dict(view.done_steps) == dict(snapshot.done_steps)
        assert view.pnl_form is snapshot.pnl_form
        assert (view.drift_breached, view.drift_reason) == (snapshot.drift_breached, snapshot.drift_reason)
    assert view.held_steps[("BTCUSDT", "A")] == 2_000 - 900 - 2  # 0.0015 BTC fee: 2 steps (rounded up) less
    assert view.net_steps["BTCUSDT"] == 1_098 + 700
    ledger.apply(_report(venue="B", last_qty=300, last_price=6_520_000, client_order_id="c5"))
    assert view.net_steps["BTCUSDT"] == 1_098 + 1_000  # read in place: no new snapshot needed
