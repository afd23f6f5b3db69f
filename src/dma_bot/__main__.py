"""``python -m dma_bot``: parse the command line, load the preset, run the daemon, map errors to exit codes.

Exit status: 0 after a clean drain, 1 when a stage crashed, 2 for a configuration or start-up error (one
line on stderr naming the key), 130 when a second signal forced the stop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from dma_bot import __version__
from dma_bot.config import help_table, load_config, preset_values
from dma_bot.errors import ConfigError, StartupError

__all__ = ["main"]

EXIT_USAGE = 2


def _duration(raw: str) -> float:
    try:
        value = float(raw)  # a time span, not money
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of seconds >= 0, was {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"a number of seconds >= 0, was {raw!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dma_bot",
        description="dma_bot trading daemon. Reads .env from the working directory (or --env FILE); with "
        "neither it runs the mock preset. Process environment variables override the file.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="configuration keys (preset file or environment):\n" + help_table(),
    )
    parser.add_argument("--env", metavar="FILE", help="preset file to load instead of ./.env")
    parser.add_argument(
        "--duration",
        metavar="SECONDS",
        type=_duration,
        default=0.0,
        help="stop cleanly after this many seconds (0 = run until SIGINT/SIGTERM; default 0)",
    )
    parser.add_argument("--version", action="version", version=f"dma_bot {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["backtest"]:
        from dma_bot.backtest_cli import main as backtest

        return backtest(arguments[1:])
    if arguments[:1] == ["sweep"]:
        from dma_bot.sweep.cli import main as sweep

        return sweep(arguments[1:])
    if arguments[:1] == ["record"]:
        from dma_bot.record_cli import main as record

        return record(arguments[1:])
    args = _parser().parse_args(arguments)
    try:
        config = load_config(preset_values(args.env), os.environ)
    except ConfigError as e:
        print(f"dma_bot: configuration error: {e}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=config["LOG_LEVEL"],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from dma_bot.main import run_daemon  # imported after config so a bad preset fails fast

    try:
        return asyncio.run(run_daemon(config, duration=args.duration))
    except (ConfigError, StartupError) as e:
        print(f"dma_bot: start-up error: {e}", file=sys.stderr)
        return EXIT_USAGE


def _run() -> int:
    """``main()``, with stdout closed early by its reader (``... | head``) ending the command quietly, as a
    pipe's writer should, instead of a traceback (what was to be written to files is written by then)."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 1
    return code


if __name__ == "__main__":
    sys.exit(_run())
