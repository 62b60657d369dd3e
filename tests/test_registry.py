"""The shipped registry against the user's seed catalog (a copy lives in tests/fixtures)."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ptycho_knobs.cli import main
from ptycho_knobs.ktypes import Home
from ptycho_knobs.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]
CATALOG = Path(__file__).parent / "fixtures" / "seed_catalog.md"
REGISTRY = load_registry(ROOT / "knob_registry.yaml")

# Rows the registry deliberately merges (recorded in the registry header).
MERGED = {frozenset({"devices", "n_devices"})}


def catalog_rows() -> list[tuple[int, list[str], str | None]]:
    """(line, backticked names, qualifier) for every row of the Knob Catalog table."""
    text = CATALOG.read_text(encoding="utf-8").splitlines()
    start = text.index("## Knob Catalog")
    rows = []
    for lineno, line in enumerate(text[start:], start + 1):
        if line.startswith("## ") and lineno > start + 1:
            break
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        names = re.findall(r"`([^`]+)`", first)
        qualifier = re.search(r"\(([a-z ]+)\)\s*$", first.strip())
        rows.append((lineno, names, qualifier.group(1) if qualifier else None))
    return rows


ROWS = catalog_rows()


def test_catalog_has_the_rows_we_expect() -> None:
    names = [n for _, ns, _ in ROWS for n in ns]
    assert len(ROWS) == 69 and len(names) == 71


@pytest.mark.parametrize("lineno,names,qualifier", ROWS, ids=[f"L{r[0]}-{r[1][0]}" for r in ROWS])
def test_every_catalog_row_is_found_by_its_catalog_name(lineno: int, names: list[str], qualifier: str | None) -> None:
    for name in names:
        key = f"{name} ({qualifier})" if qualifier and REGISTRY.find(f"{name} ({qualifier})") else name
        knob = REGISTRY.find(key)
        assert knob is not None, f"catalog line {lineno}: {name!r} is not a registry name, catalog name or alias"
        result = CliRunner().invoke(main, ["--registry", str(ROOT / "knob_registry.yaml"), "knobs", "show", key])
        assert result.exit_code == 0 and f"name: {knob.name}" in result.output


def test_distinct_rows_are_distinct_knobs_except_documented_merges() -> None:
    owners: dict[str, set[str]] = {}
    for _, names, qualifier in ROWS:
        for name in names:
            knob = (REGISTRY.find(f"{name} ({qualifier})") if qualifier else None) or REGISTRY.find(name)
            owners.setdefault(knob.name, set()).add(f"{name} ({qualifier})" if qualifier else name)
    shared = {k: v for k, v in owners.items() if len(v) > 1}
    # checkpoint_monitor appears twice with the same name, so it needs no entry here.
    assert {frozenset(v) for v in shared.values()} == MERGED


def test_beyond_catalog_knobs_are_exactly_those_no_catalog_row_names() -> None:
    in_catalog = set()
    for _, names, qualifier in ROWS:
        for name in names:
            knob = (REGISTRY.find(f"{name} ({qualifier})") if qualifier else None) or REGISTRY.find(name)
            in_catalog.add(knob.name)
    beyond = {k.name for k in REGISTRY.knobs if k.beyond_catalog}
    assert not beyond & in_catalog
    assert beyond | in_catalog == {k.name for k in REGISTRY.knobs}


def seed_dataclass() -> dict[str, object]:
    """Field -> default of the seed's proposed PyTorchExecutionConfig, read statically."""
    text = CATALOG.read_text(encoding="utf-8")
    block = re.search(r"```python\n(@dataclass\nclass PyTorchExecutionConfig.*?)```", text, re.S).group(1)
    cls = ast.parse(block).body[0]
    return {
        stmt.target.id: ast.literal_eval(stmt.value)
        for stmt in cls.body
        if isinstance(stmt, ast.AnnAssign) and stmt.value is not None
    }


def test_generated_dataclass_has_every_seed_field_with_the_seed_default() -> None:
    from ptycho_knobs.generated.execution_config import PyTorchExecutionConfig

    fields = {f.name: f.default for f in dataclasses.fields(PyTorchExecutionConfig)}
    seed = seed_dataclass()
    assert len(seed) == 32
    for name, default in seed.items():
        assert name in fields, f"seed field {name} missing from PyTorchExecutionConfig"
        assert fields[name] == default and type(fields[name]) is type(default), name


def test_extra_execution_fields_are_the_documented_ones() -> None:
    extra = {k.name for k in REGISTRY.by_home(Home.EXECUTION)} - set(seed_dataclass())
    documented = {k.name for k in REGISTRY.knobs if k.home_note or k.beyond_catalog}
    assert extra <= documented, f"undocumented additions to the seed dataclass: {sorted(extra - documented)}"


def test_every_settable_knob_has_a_target_or_sets_others() -> None:
    """A settable knob lands somewhere, or is a deprecated spelling that sets other knobs."""
    missing = [k.name for k in REGISTRY.settable() if not k.targets and not (k.deprecated and k.deprecated.sets)]
    assert missing == []
