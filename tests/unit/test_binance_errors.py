"""binance.errors: every row of the disposition table, HTTP status classes, and error bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from dma_bot.binance.errors import (
    CODE_DISPOSITIONS,
    Disposition,
    LocalFilterReject,
    VenueError,
    classify,
    parse_error,
)
from dma_bot.errors import DmaBotError, OrderRejected

PAYLOADS = Path(__file__).resolve().parents[1] / "payloads" / "binance"
D = Disposition

# Written out independently of the module: the table is the contract, so the test restates it.
EXPECTED: dict[int, Disposition] = {
    -1000: D.UNKNOWN_OUTCOME,
    -1001: D.UNKNOWN_OUTCOME,
    -1006: D.UNKNOWN_OUTCOME,
    -1007: D.UNKNOWN_OUTCOME,
    -1008: D.RETRYABLE,
    -1016: D.RETRYABLE,
    -1003: D.RATE_LIMITED,
    -1015: D.RATE_LIMITED,
    -1034: D.RATE_LIMITED,
    -1021: D.CLOCK,
    **dict.fromkeys(
        (-1002, -1013, -1014, -1020, -1022, -1100, -1101, -1102, -1103, -1104, -1105, -1106, -1108, -1111, -1112,
         -1114, -1115, -1116, -1117, -1118, -1119, -1121, -1122, -1125, -1128, -1130, -1145, -2010, -2011, -2013,
         -2014, -2015, -2016, -2026, -2035, -2036, -2039, -2042, -2043),
        D.FINAL,
    ),
}  # fmt: skip


def test_code_table_holds_exactly_the_expected_rows() -> None:
    """No row silently added, dropped or changed."""
    assert dict(CODE_DISPOSITIONS) == EXPECTED


@pytest.mark.parametrize(("code", "disposition"), sorted(EXPECTED.items()))
def test_classify_every_code_on_http_400(code: int, disposition: Disposition) -> None:
    """On a 4xx, the code decides."""
    assert classify(400, code) is disposition


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
@pytest.mark.parametrize("code", [None, -1000, -1007, -1008, -2010])
def test_classify_5xx_is_unknown_outcome_whatever_the_code(status: int, code: int | None) -> None:
    """rest-api.md: a 5xx may have succeeded; never resend blindly, query by client id."""
    assert classify(status, code) is D.UNKNOWN_OUTCOME


def test_classify_no_http_answer_is_unknown_outcome() -> None:
    """A read timeout after sending is as unknown as a 5xx."""
    assert classify(None, None) is D.UNKNOWN_OUTCOME


@pytest.mark.parametrize("status", [429, 418])
@pytest.mark.parametrize("code", [None, -1003, -1015, -2010])
def test_classify_429_and_418_are_rate_limited_whatever_the_code(status: int, code: int | None) -> None:
    assert classify(status, code) is D.RATE_LIMITED


@pytest.mark.parametrize(("status", "code"), [(400, -9999), (400, None), (403, None), (401, -2015), (409, -2021)])
def test_classify_other_4xx_is_final(status: int, code: int | None) -> None:
    """403 (WAF), 409 (cancelReplace partial) and unknown codes: the request was at fault; do not resend."""
    assert classify(status, code) is D.FINAL


@pytest.mark.parametrize(
    ("name", "http_status", "code", "disposition"),
    [
        ("error_filter_failure", 400, -1013, D.FINAL),
        ("error_insufficient_balance", 400, -2010, D.FINAL),
        ("error_unknown_order", 400, -2011, D.FINAL),
        ("error_timestamp", 400, -1021, D.CLOCK),
        ("error_too_many_requests", 429, -1003, D.RATE_LIMITED),
        ("error_timeout", 503, -1007, D.UNKNOWN_OUTCOME),
    ],
)
def test_parse_error_payloads(name: str, http_status: int, code: int, disposition: Disposition) -> None:
    body = (PAYLOADS / f"{name}.json").read_bytes()

    error = parse_error(http_status, body)

    assert (error.code, error.http_status, error.disposition) == (code, http_status, disposition)
    assert error.msg and error.msg in str(error)


def test_parse_error_keeps_retry_after_seconds() -> None:
    body = (PAYLOADS / "error_too_many_requests.json").read_bytes()

    assert parse_error(429, body, retry_after="37").retry_after_s == 37
    assert parse_error(429, body, retry_after="soon").retry_after_s is None


def test_parse_error_non_json_body_keeps_text_and_status() -> None:
    """A proxy's HTML 502 is still a VenueError: no code, the body's start as msg, UNKNOWN_OUTCOME."""
    error = parse_error(502, b"<html><body>502 Bad Gateway</body></html>")

    assert error.code is None
    assert error.msg.startswith("<html>")
    assert error.disposition is D.UNKNOWN_OUTCOME


def test_parse_error_json_without_code_is_not_a_binance_error() -> None:
    assert parse_error(400, b'{"error":"nope"}').code is None


def test_venue_error_is_in_the_error_tree() -> None:
    error = VenueError(-2010, "Duplicate order sent.", 400)

    assert isinstance(error, DmaBotError)
    assert repr(error) == "VenueError(code=-2010, msg='Duplicate order sent.', http_status=400)"


def test_local_filter_reject_is_an_order_rejected_with_the_filter_name() -> None:
    reject = LocalFilterReject("LOT_SIZE", "quantity 0 is below minQty 0.001")

    assert isinstance(reject, OrderRejected)
    assert (reject.filter_name, str(reject)) == ("LOT_SIZE", "LOT_SIZE: quantity 0 is below minQty 0.001")


def test_venue_error_text_never_shows_none_for_a_missing_code_or_status() -> None:
    """A transport failure has neither code nor HTTP status: 'Binance error None (HTTP None)' never reaches a user."""
    texts = [
        str(VenueError(None, "GET /api/v3/time: ClientConnectorError: refused", None)),
        str(VenueError(None, "<html>bad gateway</html>", 502)),
        str(VenueError(-1021, "Timestamp outside recvWindow.", None)),
        str(VenueError(-2010, "Account has insufficient balance.", 400)),
    ]

    assert texts == [
        "no answer from the venue: GET /api/v3/time: ClientConnectorError: refused",
        "venue answered HTTP 502 without a Binance error code: <html>bad gateway</html>",
        "Binance error -1021: Timestamp outside recvWindow.",
        "Binance error -2010 (HTTP 400): Account has insufficient balance.",
    ]
    assert all("None" not in text for text in texts)
