"""Recorder: the JSONL audit trail (pure encoder/decoder) and the stage that appends it to a file."""

from dma_bot.recorder.jsonl import (
    EVENT_TYPES,
    RECORD_TYPES,
    SCHEMA_VERSION,
    Event,
    JsonlEncoder,
)
from dma_bot.recorder.jsonl_decode import decode_record, to_event
from dma_bot.recorder.writer import DEFAULT_THREAD_THRESHOLD_BYTES, RecorderStage

__all__ = [
    "DEFAULT_THREAD_THRESHOLD_BYTES",
    "EVENT_TYPES",
    "RECORD_TYPES",
    "SCHEMA_VERSION",
    "Event",
    "JsonlEncoder",
    "RecorderStage",
    "decode_record",
    "to_event",
]
