"""`ptycho-knobs parity PATH`: every layer that states each knob, disagreements marked."""

from __future__ import annotations

from pathlib import Path

import click

EPILOG = """\b
Examples:
  ptycho-knobs parity ptycho_torch/                      every knob the tree states
  ptycho-knobs parity ptycho_torch/ --disagree           only knobs whose layers disagree
  ptycho-knobs parity ptycho_torch/ --knob num_workers   one knob (also: knobs show NAME --in PATH)
  ptycho-knobs parity ptycho_torch/ --format markdown    a pull-request comment

\b
Exit codes: 0 shown (whatever it shows), 2 usage or registry error. The audit (PK002 and
friends) is what fails a build; parity is the view behind it.
"""


@click.command(epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--knob", "knobs", multiple=True, metavar="NAME", help="Only this knob (name, catalog name or alias).")
@click.option("--disagree", is_flag=True, help="Only knobs whose layers disagree.")
@click.option("--all", "everything", is_flag=True, help="Also knobs no layer of the tree states.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table", show_default=True)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the audit cache.")
def parity(paths: tuple[str, ...], knobs: tuple[str, ...], disagree: bool, everything: bool, fmt: str,
           no_cache: bool) -> None:
    """Print, per knob, every layer of PATHS (and the registered files and spec outside them)
    that states it: the registry, dataclass fields, flags, fallbacks, constructions,
    signature defaults, validations, consumers, call sites, spec bullets and table rows. A
    layer marked with a "not equal" sign disagrees with the majority's default."""
    from ptycho_knobs.parity import render_json, render_markdown, render_table

    items = parity_items(paths, knobs, everything, no_cache)
    if disagree:
        items = [i for i in items if i.disagree]
    render = {"table": render_table, "json": render_json, "markdown": render_markdown}[fmt]
    click.echo(render(items).rstrip("\n"))
    click.echo(f"{len(items)} knob(s), {sum(1 for i in items if i.disagree)} with layers that disagree.", err=True)


def check_paths(paths: tuple[str, ...]) -> None:
    from ptycho_knobs.errors import UsageError

    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise UsageError(f"{missing[0]}: no such file or directory")


def parity_items(paths: tuple[str, ...], knobs: tuple[str, ...], everything: bool, no_cache: bool) -> list:
    """The parity of `knobs` (all, when empty) over PATHS; usage errors before any work."""
    from ptycho_knobs.audit.engine import Options, build_project
    from ptycho_knobs.cli_support import app_context
    from ptycho_knobs.errors import UsageError
    from ptycho_knobs.parity import parity as compute

    check_paths(paths)
    registry = app_context().registry()
    names = []
    for name in knobs:
        knob = registry.find(name)
        if knob is None:
            near = registry.suggest(name)
            raise UsageError(f"no knob named {name!r}" + (f"; did you mean {', '.join(near)}?" if near else ""))
        names.append(knob.name)
    project = build_project(list(paths), registry, Options(cache=not no_cache))[0]
    return compute(project.model, names or None, everything)
