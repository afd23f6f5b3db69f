"""PositionsStage: the thin asyncio shell around the :class:`Ledger`.

Owns nothing but the loop: it takes execution reports (and the venues' account reads,
:class:`AccountSnapshot`, which the ledger reconciles against) from its inbox in batches, folds each into
the ledger and, after a batch that changed anything, publishes one :class:`PositionSnapshot` in its
``Latest`` cell for risk and the router; the ledger's Notes (duplicate, late or illegal reports, fill
gaps, drift against a venue's account) go to ``notes`` (the recorder) after each batch. It closes no
output: the wiring closes the recorder's channel after :meth:`run` returns. Every decision lives in the
ledger; this module reads no clock and sees no ticks.
"""

from __future__ import annotations

from dma_bot.bus import Channel, Fanout, Latest
from dma_bot.model.events import AccountSnapshot, ExecReport, Note
from dma_bot.model.positions import PositionSnapshot
from dma_bot.positions.ledger import Ledger

__all__ = ["PositionsStage"]


class PositionsStage:
    __slots__ = ("_inbox", "_latest", "_notes", "ledger", "snapshots_published")

    def __init__(
        self,
        ledger: Ledger,
        inbox: Channel[ExecReport | AccountSnapshot],
        latest: Latest[PositionSnapshot],
        notes: Fanout[Note] | None = None,
    ) -> None:
        self.ledger = ledger
        self._inbox = inbox
        self._latest = latest
        self._notes = notes
        self.snapshots_published = 0

    async def run(self) -> None:
        ledger = self.ledger
        apply, apply_account = ledger.apply, ledger.apply_account
        while (batch := await self._inbox.get_batch()) is not None:
            changed = False
            for event in batch:
                if type(event) is ExecReport:
                    if apply(event):
                        changed = True
                elif apply_account(event):
                    changed = True
            if changed:
                self._latest.publish(ledger.snapshot())
                self.snapshots_published += 1
            notes = ledger.take_notes()
            if notes and self._notes is not None:
                await self._notes.put_many(notes)
