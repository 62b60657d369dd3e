"""`ptycho-knobs generate`: render generated/ from the registry, or check it is fresh."""

from __future__ import annotations

from pathlib import Path

import click

EPILOG = """\b
Examples:
  ptycho-knobs generate                      write the files that changed
  ptycho-knobs generate --check              CI: exit 1 with a diff if anything is stale
  ptycho-knobs generate --dry-run            say what would be written
  ptycho-knobs generate --out /tmp/gen       render somewhere else
  ptycho-knobs generate --no-spec            leave the registry's spec: file alone
  ptycho-knobs generate --spec-file SPEC     the registry's spec: sections into SPEC instead;
                                             without a spec: block, section 6 of SPEC
  ptycho-knobs generate --spec-file SPEC --insert-section
                                             (no spec: block) insert section 6, renumbering 6.. to 7..

\b
Outputs (in the registry's output_dir, default generated/ next to the registry):
  execution_config.py  cli.py  config_bridge.py  spec_execution_config.md
  run.schema.json  rules.md
  and, with a spec: block in the registry, the generated parts of its spec file

\b
Exit codes: 0 up to date or written, 1 stale (--check), 2 error.
"""


@click.command(epilog=EPILOG)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a unified diff if any file is stale or orphaned.")
@click.option("--dry-run", is_flag=True, help="Write nothing; list the files that would be written.")
@click.option("--diff", "show_diff", is_flag=True, help="Also print the unified diff of each file written (or that would be).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: the registry's output_dir).")
@click.option("--spec-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Markdown spec to update in place, atomically: the registry's spec: sections, "
                   "or section 6 when the registry has no spec: block.")
@click.option("--insert-section", is_flag=True,
              help="With --spec-file and no spec: block: if section 6 is about something else, insert ours "
                   "as 6 and renumber the rest.")
@click.option("--no-spec", is_flag=True, help="Leave the spec alone (e.g. a checkout without the registry's spec: file).")
@click.option("--no-cache", is_flag=True, help="Load, compile and render afresh; neither read nor write the cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Cache folder (gets a .gitignore of `*`). Default: $PTYCHO_KNOBS_CACHE_DIR, else this "
                   "project's folder under $XDG_CACHE_HOME/ptycho-knobs or ~/.cache/ptycho-knobs.")
def generate(check: bool, dry_run: bool, show_diff: bool, out_dir: Path | None,
             spec_file: Path | None, insert_section: bool, no_spec: bool, no_cache: bool,
             cache_dir: Path | None) -> None:
    """Render the generated files from the knob registry.

    Files are rendered in memory and compared with disk; only changed files are written,
    each atomically, and never outside the output folder. Orphans (files in the output
    folder that no target produces) are reported, and removed when they carry the
    do-not-edit header.
    """
    from ptycho_knobs.cache import Store, cached_registry, folder_for
    from ptycho_knobs.cli_support import app_context
    from ptycho_knobs.codegen.environment import use_cache
    from ptycho_knobs.codegen.run import run_generate
    from ptycho_knobs.errors import UsageError

    located = app_context().located()
    if located.bundled:  # never write into the installed package (or someone else's checkout)
        where = "no knob_registry.yaml here or above, and " if located.fallback else ""
        raise UsageError(
            f"{where}generate does not write from the bundled PtychoPINN registry ({located.path}); "
            "its generated code ships as ptycho_knobs.generated. Run 'ptycho-knobs init' to start "
            "your own registry here, or pass --registry PATH")
    path = app_context().registry_path()
    # The registry, the rendered files and the compiled templates are cached out of the tree
    # (see ptycho_knobs.cache); writes wait until the run has succeeded, so a generate that
    # refuses leaves no cache behind.
    store = Store(None if no_cache else folder_for(path.parent, cache_dir), defer=True)
    registry = cached_registry(path, store)
    use_cache(store)
    try:
        code = run_generate(registry, out_dir=out_dir, check=check, dry_run=dry_run, show_diff=show_diff,
                            spec_file=spec_file, insert_section=insert_section, no_spec=no_spec)
    finally:
        use_cache(None)
    store.flush()
    raise SystemExit(code)
