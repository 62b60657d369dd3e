"""Which files an audit reads, where its cache lives, and the fast path's hand-offs.

Standard library only (no dataclasses either: it costs ~25 ms to import), because the
warm fast path (`ptycho_knobs.fastpath`) walks exactly what the engine walks to key a
whole run, before anything heavy is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ptycho_knobs.errors import UsageError

MAX_BYTES = 5 * 1024 * 1024  # larger files are reported (PK902) and skipped
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


class Entry:
    """One file to audit: its path, how it is shown, and its bytes or why it has none."""

    __slots__ = ("path", "shown", "data", "problem")

    def __init__(self, path: Path, shown: str, data: bytes | None = None,
                 problem: tuple[str, str] | None = None) -> None:
        self.path = path  # absolute, not resolved (symlinks kept as the user sees them)
        self.shown = shown
        self.data = data
        self.problem = problem  # (code, message) when unreadable

    def __repr__(self) -> str:
        return f"Entry({self.shown!r}, problem={self.problem!r})"


def display_path(path: Path | str) -> str:
    """A file outside the typed paths as messages and diffs show it: relative to the working
    directory when it is below it, absolute otherwise (a chain of ../ says less)."""
    absolute = os.path.abspath(path)
    rel = os.path.relpath(absolute)
    return Path(absolute if rel.startswith("..") else rel).as_posix()


def _shown(typed: str, root: Path, path: Path) -> str:
    if path == root:
        return os.path.normpath(typed)
    return os.path.normpath(os.path.join(typed, os.path.relpath(path, root)))


def walk(paths: Iterable[str]) -> tuple[list[Entry], list[Path]]:
    """Every .py file under `paths`, with symlink loops and unreadable files as problems."""
    entries: list[Entry] = []
    roots: list[Path] = []
    for typed in paths:
        root = Path(os.path.abspath(typed))
        if not os.path.lexists(root):
            raise UsageError(f"{typed}: no such file or directory")
        roots.append(root)
        if not root.is_dir():
            entries.append(Entry(root, os.path.normpath(typed)))
            continue
        seen = {os.path.realpath(root)}
        for folder, dirs, files in os.walk(root, followlinks=True):
            keep = []
            for d in sorted(dirs):
                if d.startswith(".") or d in SKIP_DIRS:
                    continue
                full = os.path.join(folder, d)
                real = os.path.realpath(full)
                if os.path.islink(full) and (real in seen or _is_ancestor(real, folder)):
                    entries.append(Entry(Path(full), _shown(typed, root, Path(full)),
                                         problem=("PK902", f"symlink loop (points back to {real}); folder skipped")))
                    continue
                seen.add(real)
                keep.append(d)
            dirs[:] = keep
            for name in sorted(files):
                if name.endswith(".py"):
                    full = Path(folder, name)
                    entries.append(Entry(full, _shown(typed, root, full)))
    unique: dict[Path, Entry] = {}
    for e in entries:
        unique.setdefault(e.path, e)
    return list(unique.values()), roots


def _is_ancestor(real: str, folder: str) -> bool:
    here = os.path.realpath(folder)
    return here == real or here.startswith(real.rstrip(os.sep) + os.sep)


_overlay: dict[str, bytes] = {}


class overlay:  # noqa: N801 (used as a context manager: `with overlay({...}):`)
    """Audit as if these files held these bytes: `fix` without --write checks its edits against
    an audit of the edited tree, and writes nothing."""

    def __init__(self, contents: dict[Path, bytes]) -> None:
        self.contents = {os.path.realpath(p): data for p, data in contents.items()}

    def __enter__(self) -> None:
        _overlay.update(self.contents)

    def __exit__(self, *exc: object) -> None:
        _overlay.clear()


def read(entry: Entry) -> None:
    if entry.problem:
        return
    if _overlay:
        data = _overlay.get(os.path.realpath(entry.path))
        if data is not None:
            entry.data = data
            return
    try:
        size = os.stat(entry.path).st_size
        if size > MAX_BYTES:
            entry.problem = ("PK902", f"file is {size / 1e6:.1f} MB, over the {MAX_BYTES // (1024 * 1024)} MB limit; skipped")
            return
        entry.data = entry.path.read_bytes()
    except OSError as exc:
        reason = "symlink loop" if exc.errno == 40 else (exc.strerror or str(exc))
        entry.problem = ("PK902", f"cannot read: {reason}; skipped")


_prefetched: dict[tuple[str, ...], tuple[list[Entry], list[Path]]] = {}


def prefetch(paths: Iterable[str], entries: list[Entry], roots: list[Path]) -> None:
    """Hand the fast path's walk (already read and hashed) to the audit of the same paths."""
    _prefetched[tuple(paths)] = (entries, roots)


def prefetched(paths: Iterable[str]) -> bool:
    """Whether a prefetched walk of `paths` is still waiting (no audit has used it)."""
    return tuple(paths) in _prefetched


def walk_and_read(paths: Iterable[str]) -> tuple[list[Entry], list[Path]]:
    """`walk`, then `read` every entry; a prefetched walk of the same paths is used (once)
    instead, so the audit sees exactly the bytes the fast path keyed, and reads them once."""
    paths = tuple(paths)
    if paths in _prefetched:
        return _prefetched.pop(paths)
    entries, roots = walk(paths)
    for entry in entries:
        read(entry)
    return entries, roots


def default_cache_dir(roots: list[Path]) -> Path | None:
    """`$PTYCHO_KNOBS_CACHE_DIR`, else this project's folder in the user cache (keyed by the
    folder holding the first audited path), never inside the audited tree; None when there
    is no user cache folder."""
    from ptycho_knobs.cache import folder_for

    return folder_for(roots[0].parent)


def cache_folder(paths: Iterable[str], cache_dir: Path | None) -> Path | None:
    """The cache folder of `audit PATHS [--cache-dir DIR]` (the option wins)."""
    return cache_dir or default_cache_dir([Path(os.path.abspath(next(iter(paths))))])


_finished: list[Callable[[str, str, int], None]] = []


_inputs: dict[str, str] = {}  # files read beyond the audited paths (registered sources, spec) -> sha256


def note_input(path: Path, data: bytes) -> None:
    """Record a file the audit read beyond the walked paths (a registered source outside them,
    the spec), so a stored run is replayed only while those bytes are unchanged too."""
    import hashlib

    _inputs[os.path.abspath(path)] = hashlib.sha256(data).hexdigest()


def clear_inputs() -> None:
    _inputs.clear()


def noted_inputs() -> list[tuple[str, str]]:
    return sorted(_inputs.items())


def on_finished(hook: Callable[[str, str, int], None]) -> None:
    """Call `hook(stdout, stderr, exit code)` when the audit command has its output (the fast
    path stores the run this way; the audit command does not import the fast path)."""
    _finished.append(hook)


def finished(out: str, err: str, code: int) -> None:
    """The audit command's output is final: hand it to whoever asked (`on_finished`)."""
    for hook in _finished:
        hook(out, err, code)
