"""The MarketBoard: the newest Tick per symbol and its bid + ask, kept together by update()."""

from __future__ import annotations

import random

from dma_bot.model.events import Tick
from dma_bot.model.market import MarketBoard


def test_update_keeps_each_symbols_mid2_with_its_newest_tick() -> None:
    rng = random.Random(3)
    board = MarketBoard()
    assert board.mid2("BTCUSDT") is None and board.mid2s == {}
    for i in range(500):
        symbol = rng.choice(("BTCUSDT", "ETHUSDT", "SOLUSDT"))
        bid = rng.randrange(1, 10**7)
        board.update(Tick(symbol, bid, bid + rng.randrange(0, 5), 1, 1, i, i))
    assert set(board.mid2s) == set(board.last)
    for symbol, tick in board.last.items():
        assert board.mid2s[symbol] == board.mid2(symbol) == tick.bid + tick.ask
