"""What every verb shares: the global options and how the registry is found and loaded once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # registry pulls in YAML; `--help` must not pay for it
    from ptycho_knobs.registry import Registry


@dataclass
class AppContext:
    """Global options, plus the registry once a verb has asked for it."""

    registry_option: Path | None
    _registry: Registry | None = field(default=None, repr=False)

    def registry_path(self) -> Path:
        from ptycho_knobs.locate import registry_path

        return registry_path(self.registry_option)

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
