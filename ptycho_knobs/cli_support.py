"""What every verb shares: the global options and how the registry is found and loaded once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # registry pulls in YAML; `--help` must not pay for it
    from ptycho_knobs.locate import Located
    from ptycho_knobs.registry import Registry


@dataclass
class AppContext:
    """Global options, plus the registry once a verb has asked for it."""

    registry_option: Path | None
    _registry: Registry | None = field(default=None, repr=False)
    _located: Located | None = field(default=None, repr=False)
    _announced: bool = field(default=False, repr=False)

    def located(self) -> Located:
        """Which registry this command uses, and whether it is the bundled one; says nothing."""
        if self._located is None:
            from ptycho_knobs.locate import locate_registry

            self._located = locate_registry(self.registry_option)
        return self._located

    def registry_path(self, *, announce: bool = True) -> Path:
        """The registry file. The first time, when it is the bundled fallback (no registry here
        or above), says so in one line on stderr; `announce=False`: the caller says it itself."""
        located = self.located()
        if not self._announced:
            self._announced = True
            from ptycho_knobs.locate import fallback_notice

            notice = fallback_notice(located) if announce else None
            if notice:
                click.echo(notice, err=True)
        return located.path

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
