"""Client order ids: uniqueness, Binance's id rule after the router's venue suffix, prefix validation."""

from __future__ import annotations

import random
import re

import pytest

from dma_bot.risk.order_ids import MAX_PARENT_ID_LENGTH, ClientOrderIds, run_prefix

BINANCE_CLIENT_ORDER_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
LONGEST_VENUE = "V" * 12


def test_client_order_ids_sequence_counts_from_one() -> None:
    """Ids are the prefix followed by 1, 2, 3."""
    ids = ClientOrderIds("run7")

    issued = [ids.next() for _ in range(3)]

    assert issued == ["run71", "run72", "run73"]
    assert ids.issued == 3


def test_client_order_ids_many_ids_are_unique() -> None:
    """Ten thousand ids from one generator never repeat."""
    ids = ClientOrderIds("d1a2b3c")

    issued = [ids.next() for _ in range(10_000)]

    assert len(set(issued)) == len(issued)


def test_client_order_ids_longest_child_id_matches_binance_rule() -> None:
    """The longest parent (12-char prefix, largest number) plus '-' and a 12-char venue is 36 valid chars."""
    prefix = "P" * 12
    ids = ClientOrderIds(prefix, first=10 ** (MAX_PARENT_ID_LENGTH - 12) - 1)

    parent = ids.next()
    child = f"{parent}-{LONGEST_VENUE}"

    assert len(parent) == MAX_PARENT_ID_LENGTH
    assert len(child) == 36
    assert BINANCE_CLIENT_ORDER_ID.fullmatch(child)


def test_client_order_ids_past_the_cap_raise_instead_of_growing() -> None:
    """Once the number would make the parent id longer than 23 chars, next() raises."""
    ids = ClientOrderIds("P" * 12, first=10**11 - 1)
    ids.next()

    with pytest.raises(OverflowError, match="allows numbers up to 99999999999"):
        ids.next()
    assert ids.issued == 10**11 - 1


def test_client_order_ids_child_of_run_prefix_matches_binance_rule() -> None:
    """A real run prefix with its first ids and each venue suffix stays within Binance's rule."""
    ids = ClientOrderIds(run_prefix(1_763_000_000_123_456_789, b"\xff" * 8))

    children = [f"{ids.next()}-{venue}" for venue in ("A", "binance_spot", LONGEST_VENUE)]

    assert all(BINANCE_CLIENT_ORDER_ID.fullmatch(child) for child in children)


@pytest.mark.parametrize("prefix", ["", "P" * 13, "a-b", "run 1", "été", "x.y"])
def test_client_order_ids_bad_prefix_raises(prefix: str) -> None:
    """Prefixes outside ^[A-Za-z0-9_]{1,12}$ are refused with the field named."""
    with pytest.raises(ValueError, match="prefix: 1 to 12 characters"):
        ClientOrderIds(prefix)


@pytest.mark.parametrize("first", [0, -1, 10**22])
def test_client_order_ids_bad_first_raises(first: int) -> None:
    """A starting number outside 1..cap is refused."""
    with pytest.raises(ValueError, match="first:"):
        ClientOrderIds("ab", first=first)


def test_run_prefix_is_wall_milliseconds_then_four_random_characters() -> None:
    """12 characters: 8 of base36 wall milliseconds (sub-millisecond ns do not count), 4 from the entropy."""
    wall_ns = 1_700_000_000_123_999_999

    prefix = run_prefix(wall_ns, bytes([0, 0, 0, 37]))

    assert re.fullmatch(r"[a-z0-9]{12}", prefix)
    assert int(prefix[:8], 36) == 1_700_000_000_123
    assert prefix[8:] == "0011"  # 37 in base36, four digits
    assert run_prefix(0, bytes(4)) == "0" * 12


def test_run_prefix_differs_between_restarts_and_between_daemons_started_in_the_same_millisecond() -> None:
    """A restart one millisecond later differs; 2,000 daemons started in one millisecond almost never collide
    (seeded entropy: 4 base36 characters give 1.7 million prefixes per millisecond)."""
    rng = random.Random(5)
    same_ms = {run_prefix(1_765_000_000_000_000_000, rng.randbytes(8)) for _ in range(2_000)}
    entropy = rng.randbytes(8)

    assert run_prefix(1_765_000_000_000_000_000, entropy) != run_prefix(1_765_000_000_001_000_000, entropy)
    assert len(same_ms) >= 1_998


@pytest.mark.parametrize(("wall_ns", "entropy", "field"), [(-1, bytes(8), "wall_ns"), (0, b"abc", "entropy")])
def test_run_prefix_bad_input_raises(wall_ns: int, entropy: bytes, field: str) -> None:
    """A negative wall time or fewer than 4 bytes of entropy is refused, naming the argument."""
    with pytest.raises(ValueError, match=field):
        run_prefix(wall_ns, entropy)
