"""`ptycho-knobs train` and `ptycho-knobs drift`.

Only click and the standard library are imported at module level: `--help` (which lists
every knob flag, generated from the registry) never imports torch or lightning.

train exit codes: 0 trained or dry-run clean; 1 the run failed while training (loss became
NaN/inf); 2 usage or configuration error, a dry-run read-back disagreement, a checkpoint
that does not load, or a run folder in use; 130 interrupted by Ctrl-C and 143 stopped by
SIGTERM (a last checkpoint was saved if training had started; continue with --resume RUN_DIR).
drift exit codes: 0 clean, 1 drift found, 2 usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ptycho_knobs.cli_support import app_context

TRAIN_EPILOG = """\b
Precedence (fixed, whatever the argument order): registry default < run.yaml
< environment PTYCHO_KNOBS_<NAME> < command-line flag.
\b
Examples:
  ptycho-knobs train --config examples/run.yaml
  ptycho-knobs train --config examples/run.yaml --dry-run --format json
  ptycho-knobs train --config examples/run.yaml --epochs 3 --print-config --provenance
  ptycho-knobs train --resume ptycho_runs/RUN --epochs 20
  ptycho-knobs train --resume ptycho_runs/RUN --fallback-checkpoint
\b
Exit codes: 0 done, 1 training failed (non-finite loss), 2 usage/config error,
read-back disagreement, broken checkpoint or run folder in use, 130 interrupted by
Ctrl-C, 143 stopped by SIGTERM (both save last.ckpt once training has started).
"""

_OWN_FLAGS = ("--config", "--dry-run", "--format", "--print-config", "--provenance", "--resume", "--checkpoint",
              "--fallback-checkpoint", "--run-name", "--help")


class _TrainCommand(click.Command):
    """Appends the generated knob flags, grouped by category, to train's help."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help(ctx, formatter)
        from ptycho_knobs.runtime.flags import knob_help

        formatter.write("\nKnob flags (generated from the registry; bools also take --no-...):\n")
        formatter.write(knob_help())


@click.command(
    cls=_TrainCommand,
    epilog=TRAIN_EPILOG,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["-h", "--help"]},
)
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), help="run.yaml: knob values by name, plus model:/data: import paths.")
@click.option("--dry-run", is_flag=True, help="Build everything, train nothing; print where every knob landed (read back).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="Output of --dry-run and --print-config.")
@click.option("--print-config", is_flag=True, help="Print the resolved config as YAML and stop.")
@click.option("--provenance", is_flag=True, help="With --print-config: the source of each value as a comment.")
@click.option("--resume", metavar="[RUN_DIR]", is_flag=False, flag_value="", default=None,
              help="Continue RUN_DIR (default: the latest run under output_dir) from its newest checkpoints/last*.ckpt with its saved config; only --epochs may be raised.")
@click.option("--checkpoint", "checkpoint", metavar="FILE",
              help="With --resume: continue from this checkpoint (a name in RUN_DIR/checkpoints/ or a path) instead of the newest last*.ckpt.")
@click.option("--fallback-checkpoint", is_flag=True,
              help="With --resume: if the checkpoint does not load, continue from the newest one of the run that does.")
@click.option("--run-name", help="Run folder name under output_dir (default: timestamp + short id).")
@click.pass_context
def train(ctx: click.Context, config: Path | None, dry_run: bool, fmt: str, print_config: bool,
          provenance: bool, resume: str | None, checkpoint: str | None, fallback_checkpoint: bool,
          run_name: str | None) -> None:
    """Train with Lightning from run.yaml + env + flags; every knob flag is listed below."""
    from ptycho_knobs.runtime import signals
    from ptycho_knobs.runtime.faults import Interrupted
    from ptycho_knobs.runtime.harness import Harness, Options

    if config is not None and not config.is_file():
        _no_config(config)
    registry = app_context().registry()
    _check_knobs(registry)
    options = Options(config=config, args=list(ctx.args), run_name=run_name, resume=resume,
                      checkpoint=checkpoint, fallback_checkpoint=fallback_checkpoint)
    harness = Harness(registry, options)
    run = harness.resolve()
    if print_config:
        _print_config(run, fmt, provenance)
        return
    with signals.handling():
        try:
            _build_and_go(harness, dry_run, fmt)
        except KeyboardInterrupt:
            raise Interrupted("interrupted (Ctrl-C) before training started; nothing was saved") from None
        except signals.Terminated as stop:
            raise Interrupted("stopped by SIGTERM before training started; nothing was saved", stop.signum) from None
        finally:
            harness.release()


def _no_config(config: Path) -> None:
    """A missing run.yaml that is one of the shipped examples: say how to get them (an
    installed user has no checkout); anything else is left to the harness's own message."""
    from ptycho_knobs.errors import UsageError
    from ptycho_knobs.locate import bundled_examples

    shipped = bundled_examples()
    if shipped is not None and (shipped / config.name).is_file():
        raise UsageError(f"run config {config} does not exist; the examples ship with ptycho-knobs: "
                         "'ptycho-knobs init --examples' copies them into ./examples/")


def _check_knobs(registry: Any) -> None:
    """The harness routes the knobs of the shipped generated config; a registry without them
    (a starter from `ptycho-knobs init`) is a usage error, not a KeyError deep in the harness."""
    from ptycho_knobs.errors import UsageError
    from ptycho_knobs.generated.execution_config import KNOB_HOMES
    from ptycho_knobs.locate import bundled_registry

    missing = [name for name in KNOB_HOMES if registry.find(name) is None]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UsageError(f"train routes the PtychoPINN knobs, and {registry.path} lacks {len(missing)} of them "
                         f"({shown}); train with the bundled registry: "
                         f"ptycho-knobs --registry {bundled_registry()} train ...")


def _print_config(run: Any, fmt: str, provenance: bool) -> None:
    if fmt == "json":
        click.echo(run.to_json())
        return
    from ptycho_knobs.runtime.snapshot import config_yaml

    click.echo(config_yaml(run, provenance=provenance), nl=False)


def _build_and_go(harness: Any, dry_run: bool, fmt: str) -> None:
    from ptycho_knobs.runtime import chatter

    harness.claim(dry_run=dry_run)
    if harness.resume_note and harness.ctx.is_rank_zero:
        click.echo(f"warning: {harness.resume_note}", err=True)
    harness.check_machine(harness.run)
    harness.seed()
    with chatter.lightning_info(shown=not dry_run):  # a dry run prints its table, not Lightning's banners
        harness.instantiate()
    if dry_run:
        from ptycho_knobs.runtime import readback
        from ptycho_knobs.runtime.faults import ReadbackMismatch

        harness.materialize()
        rows = readback.rows(harness)
        click.echo(readback.to_json(rows) if fmt == "json" else readback.to_table(rows), nl=False)
        bad = readback.mismatches(rows)
        if bad:
            listed = "\n".join(f"  {r.knob} -> {r.target}: resolved {r.value!r}, read back {r.readback!r}" for r in bad)
            raise ReadbackMismatch(f"{len(bad)} knob(s) did not land where the registry routes them:\n{listed}")
        return
    result = harness.fit()
    if harness.built.trainer.is_global_zero:
        click.echo(f"run folder: {result.run_dir}")
        if result.best_checkpoint:
            click.echo(f"best checkpoint: {result.best_checkpoint}")
        if result.summary:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in result.summary.items() if isinstance(v, float))
            click.echo(f"reconstruction: {shown}")


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict-defaults", "check_defaults", is_flag=True,
              help="Also fail (exit 1) when a library default differs from the registry default.")
def drift(fmt: str, check_defaults: bool) -> None:
    """Compare registry targets with the installed Lightning/torch signatures.

    A target whose argument no longer exists is drift (exit 1): a saved config would break.
    A library default that differs from the registry default is reported but, unless
    --strict-defaults, is not drift: the harness always passes every routed knob explicitly.
    """
    import sys

    from ptycho_knobs.runtime.drift import check, render_json, render_text

    report = check(app_context().registry(), check_defaults=check_defaults)
    click.echo(render_json(report) if fmt == "json" else render_text(report), nl=False)
    sys.exit(1 if report.drifted else 0)
