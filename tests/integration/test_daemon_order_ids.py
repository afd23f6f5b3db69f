"""Client order ids of real daemon processes: two runs started together on one account never share an id."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import Daemon, start_daemon
from tests.integration.test_daemon_mock import FAST, _read_jsonl


async def test_two_daemons_started_together_issue_disjoint_client_order_ids(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    """Two processes started in the same instant (the old prefix was the wall-clock second) issue no common id."""
    records = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    started = await asyncio.gather(
        *(start_daemon({**FAST, "RECORD_FILE": str(path)}, "--duration", "1.5") for path in records)
    )
    daemons.extend(started)

    codes = await asyncio.gather(*(daemon.finish() for daemon in started))

    assert codes == [0, 0], [daemon.stderr for daemon in started]
    ids = [{r["client_order_id"] for r in _read_jsonl(path) if r["type"] == "Ord"} for path in records]
    assert ids[0] and ids[1]
    assert ids[0].isdisjoint(ids[1])
