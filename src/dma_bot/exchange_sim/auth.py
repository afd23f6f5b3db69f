"""Who may trade: API keys, request signatures and the timestamp window, as Binance checks them. Pure.

REST: the HMAC-SHA256 (hex, case-insensitive) covers the raw query string followed by the raw form
body exactly as received, with only the ``signature`` pair cut out: never re-sorted or re-encoded, so
ccxt's form-body POST and the official SDK's everything-in-the-query style both verify. WebSocket API:
the payload is every parameter but ``signature``, sorted by name, as ``k=v&...``. An Ed25519 key (needed
by ``session.logon``) is verified by a small pure-Python RFC 8032 implementation, because the
``cryptography`` package is not a runtime dependency. Timestamps: -1021 when ``timestamp`` is 1000 ms or
more ahead of the server, or older than ``recvWindow`` (default 5000, at most 60000).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from dma_bot.exchange_sim.validation import ApiError

__all__ = [
    "Credentials",
    "check_timestamp",
    "ed25519_public_key_from_pem",
    "ed25519_verify",
    "hmac_hex",
    "split_signature",
    "ws_payload",
]

_MAX_RECV_WINDOW: Final = Decimal(60000)
_DEFAULT_RECV_WINDOW: Final = Decimal(5000)
_ED25519_SPKI_PREFIX: Final = bytes.fromhex("302a300506032b6570032100")


def hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Credentials:
    """The account's keys: one HMAC pair, and optionally an Ed25519 key (api key + 32-byte public key)."""

    api_key: str
    api_secret: str
    ed25519_api_key: str | None = None
    ed25519_public_key: bytes | None = None

    def knows(self, api_key: str) -> bool:
        return api_key == self.api_key or (self.ed25519_api_key is not None and api_key == self.ed25519_api_key)

    def is_ed25519(self, api_key: str) -> bool:
        return self.ed25519_api_key is not None and api_key == self.ed25519_api_key

    def verify(self, api_key: str, payload: str, signature: str) -> bool:
        """HMAC hex for the HMAC key, base64 Ed25519 for the Ed25519 key."""
        if api_key == self.api_key:
            return hmac.compare_digest(hmac_hex(self.api_secret, payload), signature.lower())
        if self.is_ed25519(api_key) and self.ed25519_public_key is not None:
            try:
                raw = base64.b64decode(signature, validate=True)
            except (binascii.Error, ValueError):
                return False
            return ed25519_verify(self.ed25519_public_key, payload.encode(), raw)
        return False


def split_signature(raw: str) -> tuple[str, str | None]:
    """``raw`` without its ``signature=`` pair, and that pair's raw value (None when absent)."""
    if "signature=" not in raw:
        return raw, None
    kept: list[str] = []
    signature: str | None = None
    for pair in raw.split("&"):
        if pair.startswith("signature="):
            signature = pair[len("signature=") :]
        else:
            kept.append(pair)
    return "&".join(kept), signature


def ws_payload(params: Mapping[str, object]) -> str:
    """WebSocket API signature payload: all parameters but ``signature``, sorted, ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={_ws_value(v)}" for k, v in sorted(params.items()) if k != "signature")


def _ws_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decimal_param(params: Mapping[str, object], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def check_timestamp(params: Mapping[str, object], now_ms: int) -> None:
    """-1102 for a missing or malformed ``timestamp``/``recvWindow``; -1021 outside the window."""
    timestamp = _decimal_param(params, "timestamp")
    if timestamp is None:
        raise ApiError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
    if timestamp >= 10**14:
        timestamp /= 1000
    recv_window = _decimal_param(params, "recvWindow")
    if recv_window is None:
        recv_window = _DEFAULT_RECV_WINDOW
    elif recv_window > _MAX_RECV_WINDOW:
        raise ApiError(-1102, "'recvWindow' contains unexpected value. Cannot be greater than 60000.")
    if timestamp >= now_ms + 1000:
        raise ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now_ms - timestamp > recv_window:
        raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")


def ed25519_public_key_from_pem(pem: str | bytes) -> bytes:
    """The 32 raw key bytes of an Ed25519 ``-----BEGIN PUBLIC KEY-----`` (SubjectPublicKeyInfo) PEM."""
    text = pem.decode() if isinstance(pem, bytes) else pem
    body = "".join(line for line in text.strip().splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    if len(der) != 44 or not der.startswith(_ED25519_SPKI_PREFIX):
        raise ValueError("ed25519 public key: a PEM SubjectPublicKeyInfo of an Ed25519 key, was something else")
    return der[12:]


# -- Ed25519 verification (RFC 8032, section 5.1.7), on extended twisted Edwards coordinates ----------------
_P: Final = 2**255 - 19
_L: Final = 2**252 + 27742317777372353535851937790883648493
_D: Final = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1: Final = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    if x2 % _P == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if (x & 1) != sign else x


def _add(a: _Point, b: _Point) -> _Point:
    p = _P
    e1 = (a[1] - a[0]) * (b[1] - b[0]) % p
    e2 = (a[1] + a[0]) * (b[1] + b[0]) % p
    c = 2 * a[3] * b[3] * _D % p
    d = 2 * a[2] * b[2] % p
    e, f, g, h = e2 - e1, d - c, d + c, e2 + e1
    return e * f % p, g * h % p, f * g % p, e * h % p


def _multiply(scalar: int, point: _Point) -> _Point:
    result: _Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _decompress(data: bytes) -> _Point | None:
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_BASE_Y: Final = 4 * pow(5, _P - 2, _P) % _P
_BASE_X: Final = _recover_x(_BASE_Y, 0) or 0
_BASE: Final[_Point] = (_BASE_X, _BASE_Y, 1, _BASE_X * _BASE_Y % _P)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decompress(public_key)
    r = _decompress(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % _L
    left = _multiply(s, _BASE)
    right = _add(r, _multiply(h, a))
    return (left[0] * right[2] - right[0] * left[2]) % _P == 0 and (left[1] * right[2] - right[1] * left[2]) % _P == 0
