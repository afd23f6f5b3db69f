"""Compiled or pure cores: which of the two this process runs, decided once when ``dma_bot`` is imported.

The hot cores (``COMPILED_MODULES``) are plain typed Python that ``setup.py`` compiles with mypyc into one
extension group, installed beside the sources (an extension is imported before a ``.py`` of the same name). The
compiled group is used only when it is whole and was built from exactly the sources now on disk: the build writes
``_native.json`` (a SHA-256 per compiled source) and :func:`assess` compares. Otherwise - a source edited since
the build, a module without its extension, no manifest, or ``DMA_BOT_PURE=1`` - every listed module is imported
from its ``.py`` (a finder placed first on ``sys.meta_path``), never a mix: compiled modules of one group call
each other directly, so half a group would run two versions of a class. A stale or broken build says so in one
line on stderr, naming what changed; a pure install (no extensions at all) says nothing.

Standalone on purpose (no dma_bot import): ``setup.py`` reads the list and the digest from here, and the guard
must run before any core is imported. Not compiled itself.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Final

__all__ = ["COMPILED_MODULES", "CORES", "MANIFEST", "Cores", "assess", "install", "source_digest", "source_path"]

COMPILED_MODULES: Final = (
    "dma_bot.backtest",
    "dma_bot.equity",
    "dma_bot.strategy_books",
    "dma_bot.gateways.sim_venue",
    "dma_bot.positions.ledger",
    "dma_bot.risk.limits",
    "dma_bot.risk.loss",
    "dma_bot.router.scoring",
    "dma_bot.recorder.jsonl",
    "dma_bot.model.market",
    "dma_bot.model.grid",
)
"""The modules compiled by mypyc, as one extension group."""

MANIFEST: Final = "_native.json"
PURE_ENV: Final = "DMA_BOT_PURE"


@dataclass(frozen=True, slots=True)
class Cores:
    """``compiled``: the compiled group runs; else ``reason`` says why not ("" for a pure install), and
    ``extensions`` whether extension files are present (then they are bypassed)."""

    compiled: bool
    reason: str
    extensions: bool

    @property
    def kind(self) -> str:
        """"compiled" or "pure": what a report or a benchmark says ran."""
        return "compiled" if self.compiled else "pure"


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_path(package_root: Path, name: str) -> Path:
    """The ``.py`` of a module ``dma_bot.x.y``, under ``package_root`` (the directory holding ``dma_bot``)."""
    return package_root.joinpath(*name.split(".")).with_suffix(".py")


def _extension(source: Path) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def assess(package_root: Path, environ: Mapping[str, str], modules: Sequence[str] = COMPILED_MODULES) -> Cores:
    """Whether the compiled group under ``package_root`` may run (pure: no I/O beyond reading the files)."""
    sources = [source_path(package_root, name) for name in modules]
    present = [_extension(source) is not None for source in sources]
    if not any(present):
        return Cores(compiled=False, reason="", extensions=False)
    if environ.get(PURE_ENV) == "1":
        return Cores(compiled=False, reason=f"{PURE_ENV}=1", extensions=True)
    for source, here in zip(sources, present, strict=True):
        if not here:
            return Cores(compiled=False, reason=f"{source.name} has no compiled extension", extensions=True)
    manifest = package_root / "dma_bot" / MANIFEST
    try:
        digests = json.loads(manifest.read_text())["modules"]
    except (OSError, ValueError, KeyError, TypeError):
        return Cores(compiled=False, reason=f"{MANIFEST} is missing or unreadable", extensions=True)
    for name, source in zip(modules, sources, strict=True):
        if not isinstance(digests, dict) or digests.get(name) != source_digest(source):
            shown = source.relative_to(package_root.parent) if package_root.parent in source.parents else source
            return Cores(compiled=False, reason=f"{shown} changed since they were built", extensions=True)
    return Cores(compiled=True, reason="", extensions=True)


class _PureFinder:
    """Imports the listed modules from their ``.py`` even where an extension of the same name lies beside it."""

    def __init__(self, package_root: Path, modules: Sequence[str]) -> None:
        self._sources = {name: source_path(package_root, name) for name in modules}

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None,
                  ) -> importlib.machinery.ModuleSpec | None:
        source = self._sources.get(fullname)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def install(package_root: Path, modules: Sequence[str], environ: Mapping[str, str]) -> Cores:
    """:func:`assess`, and when the compiled group may not run but lies there, the finder that imports the
    sources instead, with the one line saying why (not for ``DMA_BOT_PURE=1``: asked for)."""
    cores = assess(package_root, environ, modules)
    if not cores.compiled and cores.extensions:
        sys.meta_path.insert(0, _PureFinder(package_root, modules))
        if cores.reason != f"{PURE_ENV}=1":
            print(f"dma_bot: running the pure-Python cores (slower): {cores.reason}; `make` rebuilds the compiled "
                  "ones", file=sys.stderr)
    return cores


_PACKAGE_ROOT: Final = Path(__file__).resolve().parent.parent

CORES: Final = (install(_PACKAGE_ROOT, COMPILED_MODULES, os.environ) if __name__ == "dma_bot._native"
                else Cores(compiled=False, reason="", extensions=False))
"""What this process runs: decided at the first import of ``dma_bot`` (setup.py's import decides nothing)."""

if __name__ == "__main__":  # `python src/dma_bot/_native.py`: the compiled sources, for the Makefile
    print(" ".join(str(source_path(_PACKAGE_ROOT, name).relative_to(_PACKAGE_ROOT.parent))
                   for name in COMPILED_MODULES))
