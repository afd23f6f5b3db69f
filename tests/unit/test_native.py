"""dma_bot._native: the compiled cores run only when the whole group is there and built from the sources on disk."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dma_bot._native import COMPILED_MODULES, MANIFEST, assess, source_digest

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
MODULES = ("dma_bot.core_a", "dma_bot.sub.core_b")


def _package(root: Path, *, extensions: tuple[str, ...] = MODULES, manifest: bool = True) -> Path:
    """A package tree under ``root`` with the sources of MODULES, extension files for ``extensions`` and a
    manifest of the sources' digests."""
    for name in MODULES:
        source = root.joinpath(*name.split(".")).with_suffix(".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"WHO = {name!r}\n")
        if name in extensions:
            source.with_suffix(SUFFIX).write_bytes(b"not really an extension")
    if manifest:
        digests = {name: source_digest(root.joinpath(*name.split(".")).with_suffix(".py")) for name in MODULES}
        (root / "dma_bot" / MANIFEST).write_text(json.dumps({"modules": digests}))
    return root


def test_a_whole_group_built_from_these_sources_runs_compiled(tmp_path: Path) -> None:
    cores = assess(_package(tmp_path), {}, MODULES)
    assert (cores.compiled, cores.reason, cores.extensions, cores.kind) == (True, "", True, "compiled")


def test_a_pure_install_runs_pure_and_says_nothing(tmp_path: Path) -> None:
    cores = assess(_package(tmp_path, extensions=(), manifest=False), {}, MODULES)
    assert (cores.compiled, cores.reason, cores.extensions, cores.kind) == (False, "", False, "pure")


def test_a_source_edited_since_the_build_runs_everything_pure_naming_it(tmp_path: Path) -> None:
    root = _package(tmp_path)
    (root / "dma_bot" / "sub" / "core_b.py").write_text("WHO = 'edited'\n")
    cores = assess(root, {}, MODULES)
    assert not cores.compiled and cores.extensions
    assert cores.reason == f"{tmp_path.name}/dma_bot/sub/core_b.py changed since they were built"


def test_half_a_group_or_no_manifest_runs_pure(tmp_path: Path) -> None:
    half = assess(_package(tmp_path / "half", extensions=MODULES[:1]), {}, MODULES)
    assert not half.compiled and half.reason == "core_b.py has no compiled extension"
    unlisted = assess(_package(tmp_path / "bare", manifest=False), {}, MODULES)
    assert not unlisted.compiled and unlisted.reason == f"{MANIFEST} is missing or unreadable"


def test_dma_bot_pure_1_runs_pure_whatever_is_built(tmp_path: Path) -> None:
    cores = assess(_package(tmp_path), {"DMA_BOT_PURE": "1"}, MODULES)
    assert not cores.compiled and cores.reason == "DMA_BOT_PURE=1"
    assert assess(tmp_path, {"DMA_BOT_PURE": "0"}, MODULES).compiled


def test_the_finder_imports_the_sources_past_a_stale_extension(tmp_path: Path) -> None:
    """With a source edited, importing the package imports every listed module from its .py: the (bogus)
    extension files beside them are never loaded, and the one line on stderr names the edited file."""
    root = _package(tmp_path)
    (root / "dma_bot" / "__init__.py").write_text(
        "import sys\nfrom pathlib import Path\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2] / 'src' / 'dma_bot')!r})\n"
        "import _native\nsys.path.pop(0)\n"
        f"CORES = _native.install(Path(__file__).resolve().parent.parent, {MODULES!r}, {{}})\n")
    (root / "dma_bot" / "sub" / "__init__.py").write_text("")
    (root / "dma_bot" / "core_a.py").write_text("WHO = 'edited a'\n")
    code = "import dma_bot.core_a as a, dma_bot.sub.core_b as b; print(a.WHO, b.WHO, a.__file__.endswith('.py'))"
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["edited", "a", "dma_bot.sub.core_b", "True"]
    assert done.stderr.strip() == (f"dma_bot: running the pure-Python cores (slower): {tmp_path.name}/dma_bot/"
                                   "core_a.py changed since they were built; `make` rebuilds the compiled ones")


def test_the_listed_modules_exist_and_setup_compiles_exactly_them() -> None:
    root = Path(__file__).resolve().parents[2]
    for name in COMPILED_MODULES:
        assert root.joinpath("src", *name.split(".")).with_suffix(".py").is_file(), name
    listed = subprocess.run([sys.executable, str(root / "src" / "dma_bot" / "_native.py")], capture_output=True,
                            text=True, timeout=60, check=True).stdout.split()
    assert listed == [str(Path("src", *name.split(".")).with_suffix(".py")) for name in COMPILED_MODULES]


@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_compiled_modules_define_no_frozen_dataclass(name: str) -> None:
    """A frozen dataclass in a compiled module cannot be unpickled (the prefetch reader sends its results) and
    stores True given for an int as 1 before validation: parameters live in plain modules beside their core."""
    root = Path(__file__).resolve().parents[2]
    text = root.joinpath("src", *name.split(".")).with_suffix(".py").read_text()
    assert "frozen=True" not in text


def test_a_failed_compile_is_recorded_so_make_does_not_retry_and_stale_extensions_go(tmp_path: Path) -> None:
    """setup.py build_ext --inplace where mypyc cannot be imported: one line on stderr, exit 0, the group's old
    extensions removed, and a manifest newer than the sources that records why (``make`` then finds the cores
    up to date until a source changes) and validates nothing: the tree runs the pure cores, quietly."""
    root = Path(__file__).resolve().parents[2]
    tree = tmp_path / "repo"
    shutil.copytree(root / "src" / "dma_bot", tree / "src" / "dma_bot",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__", MANIFEST))
    shutil.copy(root / "setup.py", tree / "setup.py")
    shutil.copy(root / "pyproject.toml", tree / "pyproject.toml")
    shutil.copy(root / "README.md", tree / "README.md")
    stale = [tree.joinpath("src", *name.split(".")).with_suffix(SUFFIX) for name in COMPILED_MODULES[:2]]
    for path in stale:
        path.write_bytes(b"an extension of older sources")
    blocker = tmp_path / "no_mypyc" / "mypyc"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('mypyc is not here')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}
    env.pop("DMA_BOT_COMPILE", None)
    done = subprocess.run([sys.executable, "setup.py", "--quiet", "build_ext", "--inplace"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("dma_bot build:")] == [
        "dma_bot build: mypy is not installed, so the cores cannot be compiled (pip install 'mypy==2.4.1' "
        "compiles them); they stay pure Python"]
    assert not any(path.exists() for path in stale)
    manifest = tree / "src" / "dma_bot" / MANIFEST
    record = json.loads(manifest.read_text())
    assert record["failed"].startswith("mypy is not installed") and "modules" not in record
    assert set(record["sources"]) == set(COMPILED_MODULES)
    newest_source = max(tree.joinpath("src", *name.split(".")).with_suffix(".py").stat().st_mtime_ns
                        for name in COMPILED_MODULES)
    assert manifest.stat().st_mtime_ns >= newest_source
    cores = assess(tree / "src", {}, COMPILED_MODULES)
    assert (cores.compiled, cores.reason, cores.extensions) == (False, "", False)
