"""Which registry a command uses. Standard library only: the warm audit fast path
(`ptycho_knobs.fastpath`) must find exactly the file the CLI would, without loading YAML."""

from __future__ import annotations

from pathlib import Path

from ptycho_knobs.errors import UsageError

REGISTRY_FILENAME = "knob_registry.yaml"


def find_registry(start: Path | None = None) -> Path | None:
    """`knob_registry.yaml` in `start` or the nearest folder above it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / REGISTRY_FILENAME
        if candidate.is_file():
            return candidate
    return None


def registry_path(option: Path | None) -> Path:
    """The `--registry` option (or `$PTYCHO_KNOBS_REGISTRY`, which click folds into it) when
    given, else the nearest `knob_registry.yaml`; a `UsageError` when there is none."""
    if option is not None:
        if not option.is_file():
            raise UsageError(f"registry {option} does not exist (from --registry)")
        return option
    found = find_registry()
    if found is None:
        raise UsageError(
            "no knob_registry.yaml in this folder or any folder above it; "
            "pass --registry PATH or run from your repository"
        )
    return found
