"""Which checkpoint `--resume` continues from, and whether it loads, decided before anything starts.

Lightning finds out that a checkpoint is broken deep inside `Trainer.fit`, after the run's
status, loggers and resume snapshot have been touched, and reports it with torch's
traceback (whose advice for a file that does not unpickle is to load it with
`weights_only=False`, i.e. to run whatever code it contains). Here every candidate is
checked first, read-only: it must be a zip archive whose members pass their CRC (torch
itself does not check them, so bit rot would load silently), load with
`torch.load(weights_only=True)` as Lightning will, and hold the state a resume needs.
A problem is one line naming the file; the newest checkpoint of the run that does load
is offered (`--fallback-checkpoint` takes it).
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptycho_knobs.runtime.faults import CheckpointError

#: What Lightning restores on a resume; a weights-only checkpoint lacks most of it.
RESUME_KEYS = ("state_dict", "optimizer_states", "loops", "epoch", "global_step")
_ZIP_MAGIC = b"PK\x03\x04"
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


@dataclass(frozen=True)
class Checked:
    """One checkpoint file and the verdict on it."""

    path: Path
    problem: str | None  # None: it loads and can be resumed from
    epoch: int | None = None
    global_step: int | None = None

    def describe(self) -> str:
        return f"{self.path.name} (epoch {self.epoch}, global step {self.global_step})"


def check(path: Path) -> Checked:
    """Load `path` the way a resume will and say what, if anything, is wrong with it."""
    if not path.exists():
        return Checked(path, "does not exist")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(len(_ZIP_MAGIC))
    except OSError as exc:
        return Checked(path, f"cannot be read: {exc.strerror or exc}")
    if size == 0:
        return Checked(path, "is empty (0 bytes)")
    if head != _ZIP_MAGIC:
        return Checked(path, "is not a checkpoint: torch.save writes a zip archive, and this file is not one")
    problem = _zip_problem(path, size)
    if problem is not None:
        return Checked(path, problem)
    body, problem = _load(path)
    if problem is not None:
        return Checked(path, problem)
    if not isinstance(body, dict):
        return Checked(path, f"is not a Lightning checkpoint: it holds a {type(body).__name__}, not a dict")
    missing = [k for k in RESUME_KEYS if k not in body]
    if missing:
        return Checked(path, f"cannot be resumed from: it has no {', '.join(missing)} "
                             "(a weights-only or foreign checkpoint)")
    return Checked(path, None, int(body["epoch"]), int(body["global_step"]))


def _zip_problem(path: Path, size: int) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError):
        return f"is truncated or damaged: its zip archive has no readable end ({size:,} bytes; an interrupted copy or write?)"
    if bad is not None:
        return f"is corrupt: archive member {bad!r} fails its CRC check"
    return None


def _load(path: Path) -> tuple[Any, str | None]:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's pickle-protocol notes are not the user's concern
            return torch.load(path, map_location="cpu", weights_only=True), None
    except pickle.UnpicklingError as exc:
        found = _UNSUPPORTED_GLOBAL.search(str(exc))
        what = f" ({found.group(1)})" if found else ""
        return None, f"holds objects that a safe load refuses{what}; it was not written by this harness"
    except Exception as exc:  # noqa: BLE001 - any failure to load is a damaged file, said in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"does not load: {type(exc).__name__}{': ' + first.split('. ')[0] if first else ''}"


def newest_first(folder: Path, pattern: str = "*.ckpt") -> list[Path]:
    """Checkpoint files in `folder`, newest first (by modification time, then name)."""
    found = [p for p in folder.glob(pattern) if p.is_file()]
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


def default_for(folder: Path) -> Path | None:
    """What a resume continues from: the newest `last*.ckpt` (Lightning's own `ckpt_path="last"` rule)."""
    lasts = newest_first(folder, "last*.ckpt")
    return lasts[0] if lasts else None


def newest_loadable(folder: Path, skip: Path) -> Checked | None:
    """The newest checkpoint in `folder` other than `skip` that loads and can be resumed from."""
    for path in newest_first(folder):
        if skip.exists() and os.path.samefile(path, skip):
            continue
        checked = check(path)
        if checked.problem is None:
            return checked
    return None


def choose(folder: Path, given: str | None, fallback: bool) -> tuple[Checked, str | None]:
    """The checkpoint to resume from, checked; with a note when `fallback` replaced a broken one.

    `given` is `--checkpoint` (a file name in `folder`, or a path); otherwise the newest
    last*.ckpt. A missing or broken choice raises `CheckpointError` naming the newest
    checkpoint that loads, unless `fallback` is set, in which case that one is taken.
    """
    if given:
        path = Path(given) if ("/" in given or given.startswith(".")) else folder / given
    else:
        path = default_for(folder) or folder / "last.ckpt"
    checked = check(path)
    if checked.problem is None:
        return checked, None
    message = f"{path} {checked.problem}"
    alternative = newest_loadable(folder, path)
    if alternative is None:
        raise CheckpointError(f"{message}\n  no checkpoint in {folder} can be resumed from")
    if fallback:
        return alternative, f"{message}; resuming from {alternative.describe()}, the newest checkpoint that loads"
    raise CheckpointError(
        f"{message}\n  the newest checkpoint that loads is {alternative.describe()}: add --fallback-checkpoint "
        f"to resume from it (nothing has been changed)")
