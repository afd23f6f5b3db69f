"""Binance Spot wire <-> model types: market frames, user-data events, REST bodies and WS API envelopes.

Owns the translation between what Binance sends (JSON bytes, decimal strings, millisecond times) and the
engine's vocabulary (:class:`Tick`, :class:`ExecReport` in integer ticks/steps and nanoseconds), plus the
Binance-only result types (:class:`MarketControl`, :class:`AccountUpdate`, :class:`OrderState`,
:class:`WsResponse`, ...) that never leave ``dma_bot.binance`` and the ``*binance*`` I/O modules. Pure
functions, no I/O, no clock, no state: the feed, the gateway, the exchange simulator and replay share them.
Anything that breaks the documented shapes raises :class:`ProtocolError` naming the field; a status this
module does not know is an error, never a default. Filters and signing live next door.

The code lives in :mod:`.market`, :mod:`.user`, :mod:`.rest_codec`, :mod:`.account` and :mod:`.ws_api`
(shared helpers in :mod:`.wire`); this module is the one place callers import from.
"""

from __future__ import annotations

from dma_bot.binance.account import (
    ACCOUNT_PATH,
    OPEN_ORDERS_PATH,
    build_account_params,
    parse_account,
    parse_open_orders,
)
from dma_bot.binance.errors import parse_error
from dma_bot.binance.market import MarketControl, MarketControlKind, parse_market_frame
from dma_bot.binance.rest_codec import (
    OrderState,
    Trade,
    build_cancel_order_params,
    build_my_trades_params,
    build_new_order_params,
    build_query_order_params,
    parse_cancel_response,
    parse_my_trades,
    parse_order_response,
    parse_query_order,
)
from dma_bot.binance.user import (
    AccountUpdate,
    AccountUpdateKind,
    AssetBalance,
    Ignored,
    ServerShutdown,
    StreamTerminated,
    UserEvent,
    parse_user_event,
)
from dma_bot.binance.wire import CLIENT_ORDER_ID_PATTERN
from dma_bot.binance.ws_api import RateLimit, WsResponse, build_ws_request, parse_ws_message, parse_ws_response

__all__ = [
    "ACCOUNT_PATH",
    "CLIENT_ORDER_ID_PATTERN",
    "OPEN_ORDERS_PATH",
    "AccountUpdate",
    "AccountUpdateKind",
    "AssetBalance",
    "Ignored",
    "MarketControl",
    "MarketControlKind",
    "OrderState",
    "RateLimit",
    "ServerShutdown",
    "StreamTerminated",
    "Trade",
    "UserEvent",
    "WsResponse",
    "build_account_params",
    "build_cancel_order_params",
    "build_my_trades_params",
    "build_new_order_params",
    "build_query_order_params",
    "build_ws_request",
    "parse_account",
    "parse_cancel_response",
    "parse_error",
    "parse_market_frame",
    "parse_my_trades",
    "parse_open_orders",
    "parse_order_response",
    "parse_query_order",
    "parse_user_event",
    "parse_ws_message",
    "parse_ws_response",
]
