"""Build of dma_bot: the package (pyproject.toml) plus its hot cores compiled to C extensions by mypyc.

The cores listed in ``dma_bot._native.COMPILED_MODULES`` (the backtest loop, risk, loss limit, router scoring,
simulated venue, ledger, equity, strategy books, JSONL encoder, market board, grid spelling) are plain, fully typed
Python; mypyc compiles them, unchanged, into one extension group, which runs the same code 1.6-2x faster
(bench/backtest.py B on 2026-12-08: 235,545 against 144,091 quotes/s in the morning, 306,801 against 156,938 later).
The Python sources stay the reference and are installed beside the extensions: ``dma_bot._native`` runs them instead
whenever the extensions are missing, were built from other sources (a file edited since the build) or
``DMA_BOT_PURE=1`` is set, and says so in one line. Compiling needs mypy (pinned: its code generator is part of the
build) and a C compiler; without either the build says so in one line, installs the pure package and records why in
the manifest (so ``make`` does not try again until a compiled source changes). ``DMA_BOT_COMPILE=0`` skips compiling
(``make`` installs so, then compiles in place).

``python setup.py build_ext --inplace`` (what ``make`` runs when a compiled source changes) builds them in src/.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src" / "dma_bot"))  # _native.py alone, not the package
from _native import COMPILED_MODULES, MANIFEST, source_digest, source_path  # noqa: E402  (one home)

sys.path.pop(0)


_FAILED: list[str] = []  # why the cores could not be compiled, when they could not


def _say(text: str) -> None:
    print(f"dma_bot build: {text}", file=sys.stderr)


def _failed(why: str) -> None:
    _FAILED.append(why)
    _say(f"{why}; they stay pure Python")


def _sources() -> list[Path]:
    return [source_path(ROOT / "src", name) for name in COMPILED_MODULES]


def _extensions() -> list:  # type: ignore[type-arg]
    if os.environ.get("DMA_BOT_COMPILE") == "0":  # `make` installs this way, then compiles in place
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _failed("mypy is not installed, so the cores cannot be compiled (pip install 'mypy==2.4.1' compiles them)")
        return []
    paths = [str(path.relative_to(ROOT)) for path in _sources()]
    try:  # only the compiled modules are type-checked; the rest of the package is read for its types
        return mypycify(["--follow-imports=silent", "--ignore-missing-imports", *paths], opt_level="3")
    except (Exception, SystemExit) as e:  # mypyc refused a source (it printed why): the pure package still works
        _failed(f"mypyc could not compile the cores ({type(e).__name__}: {e})")
        return []


class _BuildWithManifest(build_ext):
    """build_ext that also writes the manifest beside the extensions: the digest of each compiled source, which
    ``dma_bot._native`` compares with the sources at import. A failed compile leaves the pure package: the
    group's extensions there are removed (they were built from other sources) and the manifest records why,
    under ``failed`` (no ``modules``, so nothing validates), which keeps ``make`` from retrying the compile on
    every run until a compiled source changes."""

    def run(self) -> None:
        if self.extensions:
            try:
                super().run()
            except Exception as e:  # a missing compiler or headers: the pure package still works
                _failed(f"compiling the cores failed ({type(e).__name__}: {e})")
        if not _FAILED and not self.extensions:
            return  # DMA_BOT_COMPILE=0: nothing asked for, nothing to record
        target = Path(self.get_ext_fullpath("dma_bot.backtest")).parent  # src/dma_bot, or the wheel's dma_bot
        digests = {name: source_digest(path) for name, path in zip(COMPILED_MODULES, _sources(), strict=True)}
        if _FAILED:
            for name in COMPILED_MODULES:
                for suffix in EXTENSION_SUFFIXES:
                    source_path(target.parent, name).with_suffix(suffix).unlink(missing_ok=True)
            record = {"failed": _FAILED[0], "sources": digests}
        else:
            record = {"modules": digests}
        (target / MANIFEST).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


setup(ext_modules=_extensions(), cmdclass={"build_ext": _BuildWithManifest})
