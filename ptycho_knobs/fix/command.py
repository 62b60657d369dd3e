"""`ptycho-knobs fix PATHS...`: rewrite the drifts the audit finds, losslessly."""

from __future__ import annotations

import sys
from pathlib import Path

import click

EPILOG = """\b
Examples:
  ptycho-knobs fix ptycho_torch/                    # print the fixes as a unified diff
  ptycho-knobs fix ptycho_torch/ | git apply        # (or: patch -p1)
  ptycho-knobs fix ptycho_torch/ --write            # apply them
  ptycho-knobs fix ptycho_torch/ --select PK001 --explain

\b
Fixes, each only where it is safe:
  use-config   a hard-coded knob at a call site becomes the config field that carries it,
               from a config object in scope there (`not ...` for an inverted knob)
  set-literal  a drifting default becomes the registry's, in the old literal's style
  set-choices  argparse choices= become the registry's, in the old sequence's style
Everything else in the file stays byte for byte; a file changed since the audit read it
is not written.

\b
Exit codes: 0 nothing to fix (or everything fixed), 1 fixes shown, or fixes applied with
findings left, 2 usage error, unreadable registry/path or internal error.
"""


def _codes(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c.strip().upper() for v in values for c in v.split(",") if c.strip())


@click.command(epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--write", is_flag=True, help="Apply the fixes (atomically) instead of printing a diff.")
@click.option("--select", multiple=True, metavar="CODES", help="Only these codes or prefixes (PK001,PK002 or PK00).")
@click.option("--ignore", multiple=True, metavar="CODES", help="Skip these codes or prefixes.")
@click.option("--explain", is_flag=True, help="List every finding, fixed (how) or left (why), on stderr.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, show_default=True,
              help="Audit worker processes; 0 means one per core.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the audit cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Audit cache folder (as for audit).")
def fix(paths: tuple[str, ...], write: bool, select: tuple[str, ...], ignore: tuple[str, ...], explain: bool,
        jobs: int, no_cache: bool, cache_dir: Path | None) -> None:
    """Rewrite the hard-coded and drifting knob values the audit finds.

    Audits PATHS as `audit` does, then computes an edit for every finding that has a safe fix
    and prints them as a unified diff (paths relative to here, a/ and b/ prefixes), or applies
    them with --write. The summary (stderr) says how many findings were fixed, how many were
    left and why.
    """
    from ptycho_knobs.audit.engine import Options, cached_registry, run_audit
    from ptycho_knobs.audit.files import cache_folder as audit_cache_folder
    from ptycho_knobs.audit.files import prefetch, walk_and_read
    from ptycho_knobs.cli_support import app_context
    from ptycho_knobs.errors import UsageError

    ctx = app_context()
    missing = [p for p in paths if not Path(p).exists() and not Path(p).is_symlink()]
    if missing:
        raise UsageError(f"{missing[0]}: no such file or directory")
    folder = None if no_cache else audit_cache_folder(paths, cache_dir)
    registry = cached_registry(ctx.registry_path(), folder)

    # Read the tree once and hand exactly these bytes to the audit: the edits' ranges are
    # ranges in these bytes, and a file is written only if it still holds them.
    entries, roots = walk_and_read(paths)
    prefetch(paths, entries, roots)
    files = {e.shown: (e.path, e.data) for e in entries if e.data is not None}
    options = Options(select=_codes(select), ignore=_codes(ignore), jobs=jobs, cache=not no_cache, cache_dir=cache_dir)
    result = run_audit(list(paths), registry, options)

    from ptycho_knobs.fix.engine import Reason, drop_file, plan_fixes
    from ptycho_knobs.fix.output import explain_lines, summary, unified_diff
    from ptycho_knobs.fix.output import write as write_file

    # A finding may edit a file outside PATHS (a config class's field that the audit compared):
    # read those now; the write still refuses them if they change after this read.
    for f in result.findings:
        for e in f.edits:
            if e.path not in files and Path(e.path).is_file():
                try:
                    files[e.path] = (Path(e.path).absolute(), Path(e.path).read_bytes())
                except OSError:
                    pass
    plan = plan_fixes(result.findings, registry, files, roots)  # type: ignore[arg-type]
    refused = []
    if write:
        for shown, file_result in list(plan.files.items()):
            error = write_file(file_result)
            if error:
                refused.append(f"error: {shown}: {error}")
                drop_file(plan, shown, Reason("changed", error, shown))
    if plan.files:
        # What is fixed is what the audit of the fixed tree no longer reports (a rule may compare
        # more places than its edits cover): audit again and hold the plan to it. Without
        # --write the edited bytes are overlaid on the tree for that audit; nothing is written.
        from ptycho_knobs.audit.files import overlay
        from ptycho_knobs.fix.engine import verify

        edited = {} if write else {r.path: r.new for r in plan.files.values() if r.new is not None}
        with overlay(edited):
            verify(plan, result.findings, run_audit(list(paths), registry, options).findings)
    if not write:
        out = b"".join(unified_diff(plan.files[shown]) for shown in sorted(plan.files))
        if out:
            click.echo(out, nl=False)  # bytes: each file's hunks in that file's own encoding
    text = summary(plan, write, explain)
    if explain:
        text = explain_lines(plan, write) + text
    click.echo(text, nl=False, err=True)
    for line in refused:
        click.echo(line, err=True)
    if result.internal_error or refused:
        sys.exit(2)
    if not plan.files:  # nothing to show or to write
        sys.exit(0)
    sys.exit(1 if (not write or plan.left) else 0)
