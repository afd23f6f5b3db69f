"""HMAC-SHA256 request signing for Binance Spot REST and the WebSocket API, as pure functions.

Owns the exact bytes that get signed: for REST, the url-encoded parameter string in the order it is sent
(non-ASCII percent-encoded before signing, ``recvWindow`` and ``timestamp`` appended, ``&signature=`` last);
for the WebSocket API, every parameter except ``signature`` sorted by name, ``k=v`` joined by ``&``, values
in raw UTF-8. It reads no clock (the caller passes ``timestamp_ms``), opens no socket, and never puts a
secret into a repr or an exception message. RSA and Ed25519 keys are not supported here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final
from urllib.parse import quote, urlencode

__all__ = [
    "API_KEY_HEADER",
    "MAX_RECV_WINDOW_MS",
    "HmacSigner",
    "hmac_signature",
    "signed_payload",
    "signed_ws_params",
    "ws_api_signature_payload",
]

API_KEY_HEADER: Final = "X-MBX-APIKEY"
MAX_RECV_WINDOW_MS: Final = 60_000
_RESERVED: Final = frozenset({"timestamp", "recvWindow", "signature"})


def hmac_signature(secret: str, payload: str) -> str:
    """Lower-case hex HMAC-SHA256 of the UTF-8 ``payload`` keyed by the UTF-8 ``secret``."""
    if not isinstance(secret, str) or not isinstance(payload, str):
        raise TypeError("hmac_signature: secret and payload must be str")
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _check_recv_window(recv_window_ms: int | None) -> None:
    if recv_window_ms is None:
        return
    if type(recv_window_ms) is not int or not 0 < recv_window_ms <= MAX_RECV_WINDOW_MS:
        raise ValueError(f"recvWindow: an int in 1..{MAX_RECV_WINDOW_MS} ms, was {recv_window_ms!r}")


def _check_timestamp(timestamp_ms: int) -> None:
    if type(timestamp_ms) is not int or timestamp_ms <= 0:
        raise ValueError(f"timestamp: a positive int of epoch milliseconds, was {timestamp_ms!r}")


def signed_payload(
    params: Sequence[tuple[str, str]], *, api_secret: str, timestamp_ms: int, recv_window_ms: int | None
) -> str:
    """The exact url-encoded string to send (query string or form body) for a SIGNED REST request.

    ``params`` keep their order; ``recvWindow`` (when given) and ``timestamp`` follow them, and
    ``signature`` is appended last, computed over everything before it. Example (rest-api.md)::

        symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000
        &timestamp=1499827319559&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71
    """
    _check_recv_window(recv_window_ms)
    _check_timestamp(timestamp_ms)
    pairs = list(params)
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], str)):
            raise TypeError(f"params: (str, str) pairs, was {pair!r}")
        if pair[0] in _RESERVED:
            raise ValueError(f"params: {pair[0]} is added by the signer, was given explicitly")
    if recv_window_ms is not None:
        pairs.append(("recvWindow", str(recv_window_ms)))
    pairs.append(("timestamp", str(timestamp_ms)))
    payload = urlencode(pairs, quote_via=quote)
    return f"{payload}&signature={hmac_signature(api_secret, payload)}"


def _ws_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    raise TypeError(f"params.{key}: str, int, bool or finite Decimal, was {type(value).__name__}")


def ws_api_signature_payload(params: Mapping[str, object]) -> str:
    """The WS API signature payload: all params except ``signature``, sorted by name, ``k=v`` joined by ``&``.

    Values are not percent-encoded (web-socket-api.md signs the raw UTF-8 text). Example::

        apiKey=vmPU...&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT
        &timeInForce=GTC&timestamp=1645423376532&type=LIMIT
    """
    return "&".join(f"{key}={_ws_value(key, params[key])}" for key in sorted(params) if key != "signature")


def signed_ws_params(
    params: Mapping[str, object], *, api_key: str, api_secret: str, timestamp_ms: int, recv_window_ms: int | None
) -> dict[str, object]:
    """``params`` plus ``apiKey``, ``timestamp``, ``recvWindow`` (when given) and their ``signature``."""
    _check_recv_window(recv_window_ms)
    _check_timestamp(timestamp_ms)
    clash = _RESERVED.union({"apiKey"}).intersection(params)
    if clash:
        raise ValueError(f"params: {', '.join(sorted(clash))} are added by the signer, were given explicitly")
    signed: dict[str, object] = dict(params)
    signed["apiKey"] = api_key
    if recv_window_ms is not None:
        signed["recvWindow"] = recv_window_ms
    signed["timestamp"] = timestamp_ms
    signed["signature"] = hmac_signature(api_secret, ws_api_signature_payload(signed))
    return signed


class HmacSigner:
    """An API key and its HMAC secret, bound once; ``repr`` shows neither in full.

    Holds the secret so that the gateway's call sites never touch it. The key is public-ish (it travels in
    the ``X-MBX-APIKEY`` header) but is still shortened in the repr.
    """

    __slots__ = ("_api_key", "_api_secret")

    def __init__(self, api_key: str, api_secret: str) -> None:
        if not isinstance(api_key, str) or not isinstance(api_secret, str) or not api_key or not api_secret:
            raise ValueError("HmacSigner: api_key and api_secret must be non-empty strings")
        self._api_key = api_key
        self._api_secret = api_secret

    @property
    def api_key(self) -> str:
        return self._api_key

    def headers(self) -> dict[str, str]:
        return {API_KEY_HEADER: self._api_key}

    def rest(self, params: Sequence[tuple[str, str]], *, timestamp_ms: int, recv_window_ms: int | None) -> str:
        return signed_payload(
            params, api_secret=self._api_secret, timestamp_ms=timestamp_ms, recv_window_ms=recv_window_ms
        )

    def ws(self, params: Mapping[str, object], *, timestamp_ms: int, recv_window_ms: int | None) -> dict[str, object]:
        return signed_ws_params(
            params,
            api_key=self._api_key,
            api_secret=self._api_secret,
            timestamp_ms=timestamp_ms,
            recv_window_ms=recv_window_ms,
        )

    def __repr__(self) -> str:
        return f"HmacSigner(api_key='{self._api_key[:4]}***', api_secret='***')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("HmacSigner cannot be pickled: it holds a secret")
