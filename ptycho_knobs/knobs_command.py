"""`ptycho-knobs knobs list|show`: browse the registry by name, catalog name or alias."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ptycho_knobs.cli_support import app_context
from ptycho_knobs.errors import UsageError

if TYPE_CHECKING:  # ktypes pulls in the type language; `--help` and `audit` need neither here
    from ptycho_knobs.ktypes import Knob

# The values of `ktypes.Category`, in catalog order, spelled out so that starting the CLI does
# not import ktypes; a test keeps them in step.
CATEGORIES = ("lightning_trainer", "distributed", "mlflow", "optimization", "data_loading", "checkpointing",
              "datagen", "inference", "reproducibility", "architecture", "workflow")


def knob_summary(knob: Knob) -> dict[str, Any]:
    """A knob as plain JSON-able data (the `--format json` shape of list and show)."""
    return {
        "name": knob.name,
        "catalog_name": knob.catalog_name,
        "aliases": list(knob.aliases),
        "category": knob.category.value,
        "home": knob.home.value,
        "class": knob.home.class_name,
        "type": str(knob.type),
        "default": knob.default,
        "cli": knob.cli_flag if knob.settable else None,
        "env": knob.env_var if knob.settable else None,
        "purpose": knob.purpose,
        "tf": None if knob.tf is None else {
            "field": knob.tf.field, "mapping": knob.tf.mapping.value,
            "default": knob.tf.default, "divergence": knob.tf.divergence,
        },
        "targets": [("not " if t.invert else "") + t.path for t in knob.targets],
        "constraints": knob.constraints.describe() or None,
        "rules": [f"when {r.when.text}: {r.require.text}" for r in knob.rules],
        "sources": [
            {"file": s.file, "line": s.line, **({"at": s.callee + "(" + (s.keyword or "") + "=...)"} if s.callee else {}),
             **({"field": s.field} if s.field else {}), **({"env": s.env} if s.env else {})}
            for s in knob.sources
        ],
        "home_note": knob.home_note or None,
        "parity_notes": knob.parity_notes or None,
        "beyond_catalog": knob.beyond_catalog,
    }


@click.group()
def knobs() -> None:
    """Browse the registry.

    \b
    Examples:
      ptycho-knobs knobs list --category distributed
      ptycho-knobs knobs list --format json
      ptycho-knobs knobs show find_unused_parameters
    """


@knobs.command("list")
@click.option("--category", type=click.Choice(CATEGORIES), help="Only this category.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_knobs(category: str | None, fmt: str) -> None:
    """List knobs: name, category, type, default, home."""
    registry = app_context().registry()
    selected = [k for k in registry.knobs if category is None or k.category.value == category]
    if fmt == "json":
        click.echo(json.dumps([knob_summary(k) for k in selected], indent=2))
        return
    rows = [("NAME", "CATEGORY", "TYPE", "DEFAULT", "HOME")]
    rows += [(k.name, k.category.value, str(k.type), repr(k.default), k.home.value) for k in selected]
    widths = [min(max(len(r[i]) for r in rows), 48) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    click.echo(f"{len(selected)} knobs", err=True)


@knobs.command("show")
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--in", "where", multiple=True, metavar="PATH", type=click.Path(path_type=str),
              help="Also print every layer of PATH that states the knob (the parity view).")
def show_knob(name: str, fmt: str, where: tuple[str, ...]) -> None:
    """Show one knob, found by its name, its catalog name or an alias."""
    registry = app_context().registry()
    knob = registry.find(name)
    if knob is None:
        near = registry.suggest(name)
        hint = f"; did you mean {', '.join(near)}?" if near else "; see `ptycho-knobs knobs list`"
        raise UsageError(f"no knob named {name!r}{hint}")
    data = knob_summary(knob)
    if not where:
        if fmt == "json":
            click.echo(json.dumps(data, indent=2))
        else:
            print_knob(name, knob.name, data)
        return
    from ptycho_knobs.parity import render_json, render_table
    from ptycho_knobs.parity_command import parity_items

    items = parity_items(where, (knob.name,), True, False)  # errors before anything is printed
    if fmt == "json":  # one document: the knob and its parity
        click.echo(json.dumps({"knob": data, "parity": json.loads(render_json(items))[0]}, indent=2, ensure_ascii=False))
        return
    print_knob(name, knob.name, data)
    click.echo()
    click.echo(render_table(items).rstrip("\n"))


def print_knob(name: str, knob_name: str, data: dict) -> None:
    if name != knob_name:
        click.echo(f"({name!r} is the catalog name or an alias of {knob_name!r})")
    for key, value in data.items():
        if value in (None, [], False) and key != "default":
            continue
        if key == "sources":
            click.echo("sources:")
            for s in value:
                extra = "  ".join(f"{k}={v}" for k, v in s.items() if k not in ("file", "line"))
                click.echo(f"  {s['file']}:{s['line']}  {extra}".rstrip())
        elif key == "tf":
            click.echo(f"tf: {value['field']} ({value['mapping']}, TF default {value['default']!r})")
            if value["divergence"]:
                click.echo(f"  divergence: {value['divergence']}")
        elif isinstance(value, list):
            click.echo(f"{key}: {', '.join(value)}")
        else:
            click.echo(f"{key}: {value if isinstance(value, str) and key != 'default' else repr(value)}")
