"""`ptycho-knobs audit PATHS...`: check real source against the registry."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ptycho_knobs.locate import Located

# The values of `findings.OutputFormat`, spelled out so that importing this module (which
# every CLI start does) does not import the findings module; a test keeps them in step.
FORMATS = ("text", "json", "sarif", "github")

EPILOG = """\b
Examples:
  ptycho-knobs audit ptycho_torch/
  ptycho-knobs audit ptycho_torch/ --format sarif > audit.sarif
  ptycho-knobs audit ptycho_torch/ --select PK001,PK002 --format github
  ptycho-knobs audit ptycho_torch/ --tf-config ptycho/config/config.py
  ptycho-knobs audit ptycho_torch/ --write-baseline .ptycho-knobs-baseline.json
  ptycho-knobs audit ptycho_torch/ --baseline .ptycho-knobs-baseline.json
  ptycho-knobs audit ptycho_torch/ --fix-locations --diff

\b
Rules: PK001 hardcoded-knob, PK002 default-drift, PK003 stale-location,
PK004 missing-source, PK005 unregistered-knob, PK006 tf-parity (needs --tf-config),
PK007 unverifiable, PK010 offered-rejected, PK011 unused-setting, PK012 signature-drift,
PK014 divergent-literals, PK015 hardcoded-seed, PK016 spec-drift, PK017 dropped-config,
PK900 parse-error, PK901 unused-suppression, PK902 unreadable-file, PK903 empty-file,
PK999 internal-error. Full reference: generated/rules.md.
Suppress inline with `# ptycho-knobs: ignore[PK001] reason`.

\b
Exit codes: 0 clean, 1 findings, 2 usage error, unreadable registry/path or internal error.
"""


#: Left out with the bundled registry (unless --select names them): they report on the
#: registry's own `sources:`, which are PtychoPINN's files, not the audited tree's.
BUNDLED_LEAVES_OUT = ("PK003", "PK004")


def _codes(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c.strip().upper() for v in values for c in v.split(",") if c.strip())


def _bundled_notice(located: Located, left_out: tuple[str, ...]) -> str | None:
    """The one stderr line (before the summary) when the bundled registry is in use."""
    from ptycho_knobs.locate import fallback_notice

    extra = f", leaving out {'/'.join(left_out)} (findings about PtychoPINN's own sources)" if left_out else ""
    if located.fallback:
        return fallback_notice(located, extra)
    if located.bundled and left_out:
        return f"ptycho-knobs: {located.path} is the bundled PtychoPINN registry{extra}"
    return None


@click.command(epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              show_default=True, help="Output format of the findings (stdout).")
@click.option("--select", multiple=True, metavar="CODES", help="Only these codes or prefixes (PK001,PK002 or PK00).")
@click.option("--ignore", multiple=True, metavar="CODES", help="Skip these codes or prefixes.")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path),
              help="Report only findings not in this baseline file.")
@click.option("--write-baseline", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every current finding to this baseline file and exit 0.")
@click.option("--fix-locations", is_flag=True, help="Rewrite stale `line:` numbers in the registry (PK003).")
@click.option("--diff", is_flag=True, help="With --fix-locations: print the change, write nothing.")
@click.option("--tf-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The TF canonical config module (read statically) for PK006 tf-parity.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes; 0 means one per core.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Cache folder (gets a .gitignore of `*`). Default: $PTYCHO_KNOBS_CACHE_DIR, else this "
                   "project's folder under $XDG_CACHE_HOME/ptycho-knobs or ~/.cache/ptycho-knobs "
                   "(never inside the audited tree).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even with findings (errors still exit 2).")
def audit(paths: tuple[str, ...], fmt: str, select: tuple[str, ...], ignore: tuple[str, ...],
          baseline: Path | None, write_baseline: Path | None, fix_locations: bool, diff: bool,
          tf_config: Path | None, jobs: int, no_cache: bool, cache_dir: Path | None, exit_zero: bool) -> None:
    """Find hard-coded and drifting knob values in Python source.

    Scans PATHS (files or folders; .py files, hidden folders skipped) for literals passed to
    watched Lightning/torch calls, defaults that differ from the registry, registry
    locations that went stale, and more. Never imports or runs the scanned code.
    """
    from ptycho_knobs.audit import report
    from ptycho_knobs.audit.engine import Options, cached_registry, run_audit
    from ptycho_knobs.audit.files import cache_folder as audit_cache_folder
    from ptycho_knobs.audit.findings import OutputFormat
    from ptycho_knobs.cli_support import app_context
    from ptycho_knobs.errors import UsageError

    if diff and not fix_locations:
        raise UsageError("--diff only goes with --fix-locations")
    if baseline and write_baseline:
        raise UsageError("--baseline and --write-baseline do not go together")

    ctx = app_context()
    missing = [p for p in paths if not Path(p).exists() and not Path(p).is_symlink()]
    if missing:
        raise UsageError(f"{missing[0]}: no such file or directory")
    located = ctx.located()
    if located.bundled and fix_locations:
        raise UsageError(f"--fix-locations rewrites the registry, and {located.path} is the bundled "
                         "PtychoPINN one; run 'ptycho-knobs init' to start your own")
    # PK003/PK004 check the registry's own sources (PtychoPINN's): noise on anyone else's tree.
    left_out = tuple(c for c in BUNDLED_LEAVES_OUT if c not in _codes(select)) if located.bundled else ()
    notice = _bundled_notice(located, left_out)
    cache_folder = None if no_cache else audit_cache_folder(paths, cache_dir)
    registry = cached_registry(ctx.registry_path(announce=False), cache_folder)
    options = Options(select=_codes(select), ignore=_codes(ignore) + left_out, tf_config=tf_config, jobs=jobs,
                      cache=not no_cache, cache_dir=cache_dir)
    result = run_audit(list(paths), registry, options)
    findings = result.findings

    if fix_locations:
        from ptycho_knobs.audit.files import display_path
        from ptycho_knobs.audit.fix_locations import fix_locations as apply_fixes

        shown = display_path(registry.path)
        text, count = apply_fixes(registry.path, findings, diff, shown)
        if diff:
            click.echo(text, nl=False)
            click.echo(f"{count} stale location(s) would be fixed in {shown} (--diff: nothing written).", err=True)
            sys.exit(0)
        click.echo(f"Fixed {count} stale location(s) in {shown}.", err=True)
        findings = [f for f in findings if not (f.code == "PK003" and f.fix)]

    if write_baseline:
        from ptycho_knobs.audit.baseline import write

        n = write(write_baseline, findings)
        click.echo(f"Wrote {n} finding(s) to baseline {write_baseline}.", err=True)
        sys.exit(2 if result.internal_error else 0)
    if baseline:
        from ptycho_knobs.audit.baseline import load, subtract

        known = load(baseline)
        before = len(findings)
        findings = subtract(findings, known)
        result.stats.baselined = before - len(findings)

    out = report.render(findings, OutputFormat(fmt), result.rules)
    err = (notice + "\n" if notice else "") + report.summary(findings, result.stats) + "\n"
    code = 2 if result.internal_error else 1 if findings and not exit_zero else 0
    click.echo(out, nl=False)
    click.echo(err, nl=False, err=True)
    if not (fix_locations or baseline):
        from ptycho_knobs.audit.files import finished

        finished(out, err, code)  # the fast path stores the run, if it keyed it
    sys.exit(code)
