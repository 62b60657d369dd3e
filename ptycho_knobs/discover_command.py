"""`ptycho-knobs discover PATH`: propose registry entries for what a tree states and the registry lacks."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--sources", "sources_mode", is_flag=True,
              help="Instead of new knobs, list per registry knob the statements its sources do not point at yet.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the audit cache.")
def discover(paths: tuple[str, ...], sources_mode: bool, no_cache: bool) -> None:
    """Print, as registry YAML, the knobs PATHS state that the registry lacks.

    Every config-class field, argparse flag, literal keyword of a watched call and environment
    read that no registry knob claims becomes a proposed knob, with its type and default read
    from the code, every place it is stated as a source, a guessed category and home, and a
    purpose left for a human (TODO). Paste the output under `knobs:` after review.

    \b
    Examples:
      ptycho-knobs discover ptycho_torch/                 # knobs the registry lacks
      ptycho-knobs discover ptycho_torch/ --sources       # places the registry's knobs lack
    """
    from ptycho_knobs.audit.engine import Options, build_project
    from ptycho_knobs.cli_support import app_context
    from ptycho_knobs.discover import candidates, missing_sources, render, render_sources, source_counts
    from ptycho_knobs.errors import UsageError

    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise UsageError(f"{missing[0]}: no such file or directory")
    registry = app_context().registry()
    project, unread, _, _ = build_project(list(paths), registry, Options(cache=not no_cache))
    # a file that cannot be parsed or read states nothing discover can see: say so (audit: PK900, PK902)
    not_read = [f"{f.path}:{f.line}: {f.message}" for f in unread if f.code in ("PK900", "PK902")]
    command = "ptycho-knobs discover " + " ".join(paths) + (" --sources" if sources_mode else "")
    if sources_mode:
        found = missing_sources(project)
        click.echo(render_sources(found, command), nl=False)
        for line in not_read:
            click.echo(f"warning: {line}", err=True)
        sure, knobs, weak = source_counts(found)
        by_name = f"; {weak} more parameter(s) share a knob's name (commented out)" if weak else ""
        click.echo(f"{sure} source(s) missing in {knobs} knob(s){by_name}{unread_note(not_read)}.", err=True)
        return
    cands, skipped = candidates(project)
    click.echo(render(cands, [*not_read, *skipped], command), nl=False)
    click.echo(f"{len(cands)} knob(s) the registry lacks; {len(skipped)} declaration(s) skipped"
               f"{unread_note(not_read)} (see the comments).", err=True)


def unread_note(not_read: list[str]) -> str:
    return f"; {len(not_read)} file(s) could not be read" if not_read else ""
