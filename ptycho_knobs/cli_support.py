"""What every verb shares: the global options and how the registry is found and loaded once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ptycho_knobs.errors import UsageError

if TYPE_CHECKING:  # registry pulls in YAML; `--help` must not pay for it
    from ptycho_knobs.registry import Registry


@dataclass
class AppContext:
    """Global options, plus the registry once a verb has asked for it."""

    registry_option: Path | None
    _registry: Registry | None = field(default=None, repr=False)

    def registry_path(self) -> Path:
        from ptycho_knobs.registry import find_registry

        if self.registry_option is not None:
            if not self.registry_option.is_file():
                raise UsageError(f"registry {self.registry_option} does not exist (from --registry)")
            return self.registry_option
        found = find_registry()
        if found is None:
            raise UsageError(
                "no knob_registry.yaml in this folder or any folder above it; "
                "pass --registry PATH or run from your repository"
            )
        return found

    def registry(self) -> Registry:
        if self._registry is None:
            from ptycho_knobs.registry import load_registry

            self._registry = load_registry(self.registry_path())
        return self._registry


def app_context() -> AppContext:
    """The `AppContext` of the running command (works in any verb)."""
    ctx = click.get_current_context()
    obj = ctx.find_object(AppContext)
    if obj is None:  # a verb invoked on its own, e.g. from a test
        obj = AppContext(registry_option=None)
        ctx.obj = obj
    return obj
