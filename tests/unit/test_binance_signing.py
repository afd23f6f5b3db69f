"""binance.signing: the official REST and WS API vectors, exact send strings, and secrets kept out of sight."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from dma_bot.binance.signing import (
    API_KEY_HEADER,
    HmacSigner,
    hmac_signature,
    signed_payload,
    signed_ws_params,
    ws_api_signature_payload,
)

# rest-api.md / web-socket-api.md "SIGNED request example (HMAC)": published example keys, not real ones.
API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
REST_PARAMS = [("side", "BUY"), ("type", "LIMIT"), ("timeInForce", "GTC"), ("quantity", "1"), ("price", "0.1")]
REST_TAIL = "side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
REST_ASCII_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
REST_NON_ASCII_SIGNATURE = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
WS_PARAMS: dict[str, object] = {
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01000000",
    "price": "52000.00",
}
NON_ASCII_SYMBOL = "\uff11\uff12\uff13\uff14\uff15\uff16"  # fullwidth digits 1-6
WS_SIGNATURE = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


def test_hmac_signature_rest_ascii_vector_matches() -> None:
    """The documented payload signs to the documented hex signature."""
    assert hmac_signature(SECRET, f"symbol=LTCBTC&{REST_TAIL}") == REST_ASCII_SIGNATURE


def test_signed_payload_rest_ascii_vector_is_the_exact_send_string() -> None:
    """Params keep their order, recvWindow then timestamp follow, and the signature comes last."""
    sent = signed_payload(
        [("symbol", "LTCBTC"), *REST_PARAMS], api_secret=SECRET, timestamp_ms=1499827319559, recv_window_ms=5000
    )

    assert sent == f"symbol=LTCBTC&{REST_TAIL}&signature={REST_ASCII_SIGNATURE}"


def test_signed_payload_non_ascii_symbol_is_percent_encoded_before_signing() -> None:
    """The non-ASCII vector: the symbol is percent-encoded and the encoded text is what gets signed."""
    sent = signed_payload(
        [("symbol", NON_ASCII_SYMBOL), *REST_PARAMS], api_secret=SECRET, timestamp_ms=1499827319559, recv_window_ms=5000
    )

    encoded = "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"
    assert sent == f"{encoded}&{REST_TAIL}&signature={REST_NON_ASCII_SIGNATURE}"


def test_signed_payload_signature_covers_everything_before_it() -> None:
    """Whatever is sent before '&signature=' is exactly what was signed (a server-side re-check passes)."""
    sent = signed_payload(
        [("symbol", "BTCUSDT"), ("newClientOrderId", "a-b_c")], api_secret=SECRET, timestamp_ms=1, recv_window_ms=None
    )

    body, _, signature = sent.rpartition("&signature=")
    assert body == "symbol=BTCUSDT&newClientOrderId=a-b_c&timestamp=1"
    assert signature == hmac_signature(SECRET, body)


@pytest.mark.parametrize("reserved", ["timestamp", "recvWindow", "signature"])
def test_signed_payload_reserved_param_given_is_rejected(reserved: str) -> None:
    """The signer owns timestamp, recvWindow and signature: a duplicate would be -1101 at the venue."""
    with pytest.raises(ValueError, match=f"{reserved} is added by the signer"):
        signed_payload([(reserved, "1")], api_secret=SECRET, timestamp_ms=1, recv_window_ms=None)


@pytest.mark.parametrize("recv_window", [0, 60_001, -5, 5000.0])
def test_signed_payload_recv_window_out_of_range_is_rejected(recv_window: object) -> None:
    with pytest.raises(ValueError, match=r"recvWindow: an int in 1\.\.60000 ms"):
        signed_payload([], api_secret=SECRET, timestamp_ms=1, recv_window_ms=recv_window)  # type: ignore[arg-type]


def test_ws_api_signature_payload_official_vector_sorted_and_signed() -> None:
    """All params but signature, sorted by name, k=v&...: the documented payload and signature."""
    params = {**WS_PARAMS, "recvWindow": 100, "timestamp": 1645423376532, "apiKey": API_KEY, "signature": "x"}

    payload = ws_api_signature_payload(params)

    assert payload == (
        f"apiKey={API_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT"
        "&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
    )
    assert hmac_signature(SECRET, payload) == WS_SIGNATURE


def test_ws_api_signature_payload_non_ascii_values_are_signed_raw() -> None:
    """WS API signs raw UTF-8 (no percent-encoding): the documented non-ASCII vector."""
    params = {**WS_PARAMS, "symbol": NON_ASCII_SYMBOL, "side": "BUY", "quantity": "1.00000000", "price": "0.10000000"}
    params |= {"recvWindow": 5000, "timestamp": 1645423376532, "apiKey": API_KEY}

    payload = ws_api_signature_payload(params)

    assert f"symbol={NON_ASCII_SYMBOL}&" in payload
    assert hmac_signature(SECRET, payload) == "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"


def test_signed_ws_params_adds_key_time_window_and_the_vector_signature() -> None:
    timestamp = 1645423376532

    signed = signed_ws_params(WS_PARAMS, api_key=API_KEY, api_secret=SECRET, timestamp_ms=timestamp, recv_window_ms=100)

    added = {"apiKey": API_KEY, "recvWindow": 100, "timestamp": timestamp, "signature": WS_SIGNATURE}
    assert signed == {**WS_PARAMS, **added}
    assert "signature" not in WS_PARAMS


def test_ws_api_signature_payload_value_spellings() -> None:
    """Booleans are JSON spellings, Decimals plain (no exponent); floats are refused (money is never float)."""
    assert ws_api_signature_payload({"b": True, "a": Decimal("1E-7"), "c": False}) == "a=0.0000001&b=true&c=false"
    with pytest.raises(TypeError, match=r"params\.price: str, int, bool or finite Decimal, was float"):
        ws_api_signature_payload({"price": 0.1})


def test_signed_ws_params_explicit_api_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="apiKey are added by the signer"):
        signed_ws_params({"apiKey": "k"}, api_key=API_KEY, api_secret=SECRET, timestamp_ms=1, recv_window_ms=None)


def test_hmac_signer_signs_like_the_functions_and_sets_the_header() -> None:
    signer = HmacSigner(API_KEY, SECRET)

    sent = signer.rest([("symbol", "LTCBTC"), *REST_PARAMS], timestamp_ms=1499827319559, recv_window_ms=5000)
    ws = signer.ws(WS_PARAMS, timestamp_ms=1645423376532, recv_window_ms=100)

    assert sent.endswith(f"&signature={REST_ASCII_SIGNATURE}")
    assert ws["signature"] == WS_SIGNATURE
    assert signer.headers() == {API_KEY_HEADER: API_KEY}
    assert API_KEY_HEADER == "X-MBX-APIKEY"


def test_hmac_signer_never_shows_the_secret() -> None:
    """Neither repr, str, errors from bad input nor pickling reveal the secret."""
    signer = HmacSigner(API_KEY, SECRET)

    with pytest.raises(ValueError) as bad_window:
        signer.rest([], timestamp_ms=1, recv_window_ms=0)
    with pytest.raises(TypeError) as bad_pair:
        signer.rest([("symbol", 1)], timestamp_ms=1, recv_window_ms=None)  # type: ignore[list-item]
    with pytest.raises(TypeError) as pickled:
        pickle.dumps(signer)

    texts = [repr(signer), str(signer), str(bad_window.value), str(bad_pair.value), str(pickled.value)]
    assert all(SECRET not in text and API_KEY not in text for text in texts)
    assert repr(signer) == "HmacSigner(api_key='vmPU***', api_secret='***')"


def test_hmac_signer_empty_secret_is_rejected_without_echo() -> None:
    with pytest.raises(ValueError, match="must be non-empty strings"):
        HmacSigner(API_KEY, "")
