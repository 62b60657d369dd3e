"""`ptycho-knobs init`: start a registry in a new project, or copy the shipped examples.

The starter registry is cut, at run time, from the shipped PtychoPINN registry: its schema
comment, its `schema_version` and its `callees:` block (the watched Lightning/torch classes)
are copied verbatim, so the starter never drifts from the schema it documents. Only the two
example knobs are written here.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from ptycho_knobs.errors import UsageError

EPILOG = """\b
Examples:
  ptycho-knobs init                  write ./knob_registry.yaml, a starter registry
  ptycho-knobs init services/train   write services/train/knob_registry.yaml
  ptycho-knobs init --examples       copy the shipped examples into ./examples/ (run.yaml, ...)

\b
Exit codes: 0 written, 2 a file is already there (nothing is overwritten) or another error.
"""

INTRO = """\
# knob_registry.yaml: the single source of truth for this project's execution knobs.
#
# Started by `ptycho-knobs init`. Humans edit this file; `ptycho-knobs generate` derives the
# config dataclasses, CLI flags, bridge, spec tables and JSON Schema in generated/ from it, and
# `ptycho-knobs audit SRC/` checks real source against it. `ptycho-knobs discover SRC/` prints
# registry YAML for the knobs a tree states that this registry lacks.
#
# The schema below is copied from the PtychoPINN registry that ships with ptycho-knobs.
#
"""

CALLEES_NOTE = """\
# The classes audit watches and drift inspects (from the PtychoPINN registry): a literal passed
# to one of these where a knob should flow from config is a finding. Add your own the same way.
"""

STARTER_KNOBS = """\
knobs:

  # Two example knobs to grow from: rename them, change them, add yours. `sources:` records
  # where your code sets a knob today, so `audit` can check the place still holds it:
  #   sources:
  #     - {file: src/train.py, line: 42, callee: Trainer, keyword: max_epochs}

  - name: epochs
    catalog_name: max_epochs
    aliases: [nepochs]
    category: lightning_trainer
    home: training
    type: int
    default: 100
    constraints: {min: 1}
    purpose: Maximum number of training epochs.
    target: Trainer.max_epochs

  - name: early_stop_patience
    catalog_name: patience
    category: checkpointing
    home: execution
    type: int
    default: 10
    constraints: {min: 0}
    purpose: Epochs without improvement of the monitored metric before training stops.
    target: EarlyStopping.patience
"""

_TOP_KEY = re.compile(r"^[A-Za-z_]")


@click.command(epilog=EPILOG)
@click.argument("folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--examples", is_flag=True,
              help="Instead: copy the shipped examples (run.yaml, ddp_cpu.yaml, mlflow.yaml, custom_model.*) "
                   "into FOLDER/examples/, for `ptycho-knobs train --config examples/run.yaml`.")
def init(folder: Path, examples: bool) -> None:
    """Write a starter knob_registry.yaml into FOLDER (default: this folder).

    The starter holds the registry schema (as comments), the watched Lightning/torch classes
    and two example knobs; `knobs list`, `generate` and `audit` work on it at once. An existing
    file is never overwritten.
    """
    if examples:
        _write_examples(folder)
    else:
        _write_registry(folder)


def starter_registry(shipped_text: str) -> str:
    """The starter registry's text, cut from the shipped registry's text."""
    lines = shipped_text.splitlines()
    body = next((i for i, line in enumerate(lines) if _TOP_KEY.match(line)), len(lines))
    version = next((line for line in lines[body:] if line.startswith("schema_version:")), None)
    callees = _top_level_block(lines, "callees")
    if version is None or callees is None:
        raise UsageError("the bundled registry has no schema_version or callees: block; reinstall ptycho-knobs")
    return (INTRO + schema_comment(lines[:body]) + "\n" + version + "\n"
            + "output_dir: generated   # relative to this file\n\n"
            + CALLEES_NOTE + callees + "\n" + STARTER_KNOBS)


def schema_comment(header: list[str]) -> str:
    """The schema paragraphs of the shipped header comment: from the one that opens with
    `# Schema` up to the registry's own decisions (`# Decisions ...`); paragraphs are
    separated by a bare `#` line."""
    paragraphs: list[list[str]] = [[]]
    for line in header:
        if line.strip() in ("#", ""):
            if paragraphs[-1]:
                paragraphs.append([])
        elif line.startswith("#"):
            paragraphs[-1].append(line.rstrip())
    paragraphs = [p for p in paragraphs if p]
    start = next((i for i, p in enumerate(paragraphs) if p[0].startswith("# Schema")), 0)
    end = next((i for i, p in enumerate(paragraphs) if i > start and p[0].startswith("# Decisions")), len(paragraphs))
    return "#\n".join("\n".join(p) + "\n" for p in paragraphs[start:end])


def _top_level_block(lines: list[str], key: str) -> str | None:
    """`key:` and everything indented under it, verbatim (trailing blank lines dropped)."""
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{key}:")), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    block = lines[start:end]
    while block and not block[-1].strip():
        block.pop()
    return "\n".join(block) + "\n"


def _write_registry(folder: Path) -> None:
    import tempfile

    from ptycho_knobs.atomic import write_text
    from ptycho_knobs.locate import REGISTRY_FILENAME, bundled_registry, find_registry
    from ptycho_knobs.registry import load_registry

    target = folder / REGISTRY_FILENAME
    if target.exists() or target.is_symlink():
        raise UsageError(f"{target} already exists; init never overwrites it (edit it, or move it away first)")
    shipped = bundled_registry()
    if shipped is None:
        raise UsageError("the bundled PtychoPINN registry is missing from this install; reinstall ptycho-knobs")
    text = starter_registry(shipped.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:  # a starter that does not load is a bug: never write one
        probe = Path(tmp) / REGISTRY_FILENAME
        probe.write_text(text, encoding="utf-8")
        count = len(load_registry(probe).knobs)
    above = find_registry(folder) if folder.exists() else find_registry(_existing_parent(folder))
    write_text(target, text)

    click.echo(f"wrote {target}: a starter registry (the schema as comments, the watched Lightning/torch "
               f"classes, {count} example knobs)")
    if above is not None:
        click.echo(f"note: it takes precedence over {above} in {folder} and below")
    where = "" if folder.resolve() == Path.cwd().resolve() else f"cd {folder} && "
    click.echo("next:")
    click.echo(f"  {where}ptycho-knobs discover SRC/   print registry YAML for the knobs SRC/ states that "
               "the registry lacks; paste the ones you keep under knobs:")
    click.echo(f"  {where}ptycho-knobs knobs list      what the registry holds")
    click.echo(f"  {where}ptycho-knobs generate        write generated/ (dataclasses, CLI flags, bridge, "
               "spec, JSON Schema)")
    click.echo(f"  {where}ptycho-knobs audit SRC/      hard-coded and drifting knob values (CI snippets: "
               "README, section audit)")


def _existing_parent(folder: Path) -> Path:
    folder = folder.resolve()
    while not folder.exists():
        folder = folder.parent
    return folder


def _write_examples(folder: Path) -> None:
    from ptycho_knobs.atomic import write_text
    from ptycho_knobs.locate import (
        EXAMPLES_DIRNAME,
        bundled_examples,
        bundled_registry,
        find_registry,
        is_installed_copy,
    )

    shipped = bundled_examples()
    if shipped is None:
        raise UsageError("the bundled examples are missing from this install; reinstall ptycho-knobs")
    files = sorted(p for p in shipped.iterdir() if p.is_file() and p.suffix in (".yaml", ".py"))
    target = folder / EXAMPLES_DIRNAME
    there = [target / p.name for p in files if (target / p.name).exists() or (target / p.name).is_symlink()]
    if there:
        raise UsageError(f"{there[0]} already exists; init --examples never overwrites (nothing was written)")
    for p in files:
        write_text(target / p.name, p.read_text(encoding="utf-8"))

    click.echo(f"wrote {target}/: {', '.join(p.name for p in files)}")
    where = "" if folder.resolve() == Path.cwd().resolve() else f"cd {folder} && "
    click.echo("try:")
    click.echo(f"  {where}ptycho-knobs train --config examples/run.yaml --dry-run   where every knob lands")
    click.echo(f"  {where}ptycho-knobs train --config examples/run.yaml             the built-in workload "
               "(about 2 minutes on 2 CPU cores)")
    found = find_registry(_existing_parent(folder))
    if found is not None and not is_installed_copy(found):
        click.echo(f"note: train there uses {found}; these examples need the PtychoPINN knobs: "
                   f"ptycho-knobs --registry {bundled_registry()} train --config examples/run.yaml")
    else:
        click.echo("they use the PtychoPINN knobs, which train takes from the bundled registry when there is "
                   "no knob_registry.yaml here or above")
