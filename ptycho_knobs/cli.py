"""The `ptycho-knobs` command: a click group whose verbs live in their own modules.

Only click is imported here. Each verb's module is imported when the verb is used, and
imports what it needs inside its function, so `--help`, `knobs`, `generate` and `audit`
never pay for torch or lightning.

Exit codes, for every verb: 0 clean, 1 findings or stale output, 2 usage, configuration
or internal error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ptycho_knobs import __version__
from ptycho_knobs.cli_support import AppContext
from ptycho_knobs.errors import KnobsError

EPILOG = """\b
Examples:
  ptycho-knobs knobs show patience
  ptycho-knobs generate --check
  ptycho-knobs audit ptycho_torch/ --format sarif > audit.sarif
  ptycho-knobs train --config examples/run.yaml --dry-run

\b
Exit codes: 0 clean, 1 findings or stale files, 2 usage or configuration error.
"""


# Each verb's module, imported only when that verb runs (or `--help` lists them all), so
# `generate --check` does not compile the audit, knobs and train commands too.
VERBS = {
    "generate": "ptycho_knobs.codegen.command",
    "audit": "ptycho_knobs.audit.command",
    "train": "ptycho_knobs.runtime.command",
    "drift": "ptycho_knobs.runtime.command",
    "knobs": "ptycho_knobs.knobs_command",
    "init": "ptycho_knobs.init_command",
    "discover": "ptycho_knobs.discover_command",
    "fix": "ptycho_knobs.fix.command",
    "parity": "ptycho_knobs.parity_command",
}


class KnobsGroup(click.Group):
    """Loads verbs on demand, and turns a `KnobsError` from any verb into its message on
    stderr and exit code 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(VERBS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in VERBS:
            import importlib

            self.add_command(getattr(importlib.import_module(VERBS[cmd_name]), cmd_name))
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KnobsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=KnobsGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ptycho-knobs")
@click.option(
    "--registry",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PTYCHO_KNOBS_REGISTRY",
    help="Registry to use. Default: knob_registry.yaml in this folder or the nearest one above it, "
         "else the bundled PtychoPINN registry (read-only).",
)
@click.pass_context
def main(ctx: click.Context, registry: Path | None) -> None:
    """One registry for PtychoPINN's PyTorch execution knobs: generate, audit, train."""
    ctx.obj = AppContext(registry_option=registry)
