"""The one exception tree of dma_bot."""

from __future__ import annotations

__all__ = ["ConfigError", "DmaBotError", "OrderRejected", "ProtocolError", "RetryableVenueError", "StartupError"]


class DmaBotError(Exception):
    """Root of every error dma_bot raises on purpose."""


class ConfigError(DmaBotError):
    """Bad configuration: one line, '<KEY>: <what is allowed>, was <value>'. Exit status 2."""


class StartupError(DmaBotError):
    """Something the daemon needs at start-up is not there (port taken, file not writable). Exit status 2."""


class ProtocolError(DmaBotError):
    """A peer sent something that does not follow its protocol."""


class RetryableVenueError(DmaBotError):
    """The venue failed in a way that may be retried safely."""


class OrderRejected(DmaBotError):
    """The venue refused an order; final."""
