"""Pure vocabulary of the engine: enums, instruments, ids and events. No asyncio, no I/O, no prometheus."""

from dma_bot.model.enums import (
    ORDER_TRANSITIONS,
    ExecStatus,
    KillSwitchState,
    NoteKind,
    RejectReason,
    Side,
    is_legal_transition,
)
from dma_bot.model.events import ExecReport, Note, Order, RiskReject, Route, Signal, Tick, TickBatch, tick_batch
from dma_bot.model.instrument import Instrument

__all__ = [
    "ORDER_TRANSITIONS",
    "ExecReport",
    "ExecStatus",
    "Instrument",
    "KillSwitchState",
    "Note",
    "NoteKind",
    "Order",
    "RejectReason",
    "RiskReject",
    "Route",
    "Side",
    "Signal",
    "Tick",
    "TickBatch",
    "is_legal_transition",
    "tick_batch",
]
