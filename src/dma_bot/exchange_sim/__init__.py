"""A local Binance-Spot-compatible exchange, shipped with the daemon: ``python -m dma_bot.exchange_sim``.

Pure cores (``market``: listed symbols and the seeded quote walk; ``book``: matching; ``accounts``:
balances and commission; ``validation``, ``auth``, ``limits``: Binance's request checks; ``engine``: the
order lifecycle; ``wire``/``views``: the JSON shapes; ``fault_specs``/``faults``: fault injection) under
thin aiohttp shells (``rest``, ``ws``, ``ws_api``, and ``admin`` for ``sim.faults`` and the ``/_sim``
routes), wired by ``server.ExchangeSim``. Independent clients (ccxt, the official binance-sdk-spot)
accept it; it never imports the daemon's own Binance codec, feed or gateways.
"""

from dma_bot.exchange_sim.accounts import FeeAsset
from dma_bot.exchange_sim.engine import Exchange
from dma_bot.exchange_sim.faults import FaultSpecError, parse_fault, parse_script
from dma_bot.exchange_sim.limits import RateLimits
from dma_bot.exchange_sim.market import DEFAULT_SYMBOLS, SymbolConfig, parse_symbols, symbol_config
from dma_bot.exchange_sim.server import DEFAULT_API_KEY, DEFAULT_API_SECRET, ExchangeSim

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "DEFAULT_SYMBOLS",
    "Exchange",
    "ExchangeSim",
    "FaultSpecError",
    "FeeAsset",
    "RateLimits",
    "SymbolConfig",
    "parse_fault",
    "parse_script",
    "parse_symbols",
    "symbol_config",
]
