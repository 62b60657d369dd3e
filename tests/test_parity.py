"""`ptycho-knobs parity` and `knobs show NAME --in PATH` end to end on a fixture project in tmp_path.

The project states `max_epochs` three ways that disagree (dataclass field 10, CLI flag 20, a
`Trainer(max_epochs=7)` literal) and `seed` three ways that agree (42 everywhere), so the
views have one knob to flag and one to leave alone. The last tests check that none of the
three read-only views imports torch or lightning, and that bad input is a clear error.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner
from project_helpers import enter_project

from ptycho_knobs.cli import main

REGISTRY = """\
schema_version: 1
callees:
  Trainer:
    qualified: [lightning.pytorch.Trainer, lightning.Trainer, pytorch_lightning.Trainer]
  DataLoader:
    qualified: [torch.utils.data.DataLoader]
    positional: [dataset, batch_size, shuffle]
knobs:
  - name: max_epochs
    aliases: [nepochs]
    beyond_catalog: true
    category: lightning_trainer
    home: training
    type: int
    default: 10
    purpose: Maximum number of training epochs.
    target: Trainer.max_epochs
  - name: seed
    beyond_catalog: true
    category: reproducibility
    home: training
    type: int
    default: 42
    purpose: Global random seed.
  - name: num_workers
    beyond_catalog: true
    category: data_loading
    home: execution
    type: int
    default: 4
    purpose: DataLoader worker processes.
    target: DataLoader.num_workers
"""

CONFIG_PY = """\
from dataclasses import dataclass


@dataclass
class TrainingConfig:
    max_epochs: int = 10
    seed: int = 42
    learning_rate: float = 1e-3
"""

CLI_PY = """\
import argparse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="train a model")
    parser.add_argument('--max_epochs', type=int, default=20)
    parser.add_argument('--seed', type=int, default=42)
    return parser
"""

TRAIN_PY = """\
import lightning
import torch


def train(model, ds):
    loader = torch.utils.data.DataLoader(ds, num_workers=4)
    trainer = lightning.Trainer(max_epochs=7, gradient_clip_val=0.5)
    trainer.fit(model, loader)
"""

FILES = {"mypkg/__init__.py": "", "mypkg/config.py": CONFIG_PY, "mypkg/cli.py": CLI_PY, "mypkg/train.py": TRAIN_PY}


def line_of(rel: str, needle: str) -> int:
    """The 1-based line of the only line of fixture file `rel` that contains `needle`."""
    hits = [i for i, line in enumerate(FILES[rel].splitlines(), 1) if needle in line]
    assert len(hits) == 1, (rel, needle, hits)
    return hits[0]


def line_of_registry(needle: str) -> int:
    return next(i for i, line in enumerate(REGISTRY.splitlines(), 1) if needle in line)


FIELD = ("mypkg/config.py", line_of("mypkg/config.py", "max_epochs"))
FLAG = ("mypkg/cli.py", line_of("mypkg/cli.py", "--max_epochs"))
CALL = ("mypkg/train.py", line_of("mypkg/train.py", "Trainer("))


@pytest.fixture
def project(tmp_path, monkeypatch):
    return enter_project(monkeypatch, tmp_path, tmp_path / "cache", FILES, REGISTRY)


def cli(*args: str, registry: str = "knob_registry.yaml"):
    # catch_exceptions=False: a traceback fails the test instead of becoming an exit code
    return CliRunner().invoke(main, ["--registry", registry, *args], catch_exceptions=False)


def parity_json(*args: str) -> dict[str, dict]:
    result = cli("parity", "mypkg/", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return {item["knob"]: item for item in json.loads(result.stdout)}


# -- 4. parity --------------------------------------------------------------------------


def test_parity_json_shows_every_layer_with_value_and_place(project):
    items = parity_json()
    assert set(items) == {"max_epochs", "seed", "num_workers"}
    epochs = items["max_epochs"]
    assert (epochs["disagree"], epochs["default"], epochs["type"]) == (True, 10, "int")
    layers = [(lay["kind"], lay["path"], lay["line"], lay["what"], lay["value"]) for lay in epochs["layers"]]
    assert layers == [
        ("registry", "knob_registry.yaml", line_of_registry("name: max_epochs"), "the registry", 10),
        ("field", *FIELD, "TrainingConfig.max_epochs", 10),
        ("flag", *FLAG, "--max_epochs", 20),
        ("call", *CALL, "Trainer(max_epochs=)", 7),
    ]
    assert epochs["values"][0] == 10 and 20 in epochs["values"]  # the majority first
    by_kind = {lay["kind"]: lay for lay in epochs["layers"]}
    assert (by_kind["field"]["agrees"], by_kind["flag"]["agrees"]) == (True, False)
    seed = items["seed"]
    assert seed["disagree"] is False and seed["values"] == [42]
    assert [(lay["kind"], lay["value"], lay["agrees"]) for lay in seed["layers"]] == [
        ("registry", 42, True), ("field", 42, True), ("flag", 42, True)]


def test_parity_table_marks_the_odd_layer_with_file_and_line(project):
    result = cli("parity", "mypkg/")
    assert result.exit_code == 0, result.output
    blocks = {block.split()[0]: block for block in result.stdout.split("\n\n")}
    epochs = blocks["max_epochs"]
    assert "DISAGREE: 10 vs 20" in epochs.splitlines()[0]
    flag_row = next(line for line in epochs.splitlines() if "--max_epochs" in line)
    assert flag_row.lstrip().startswith("≠ flag") and f"{FLAG[0]}:{FLAG[1]}" in flag_row and flag_row.endswith("20")
    assert f"{FIELD[0]}:{FIELD[1]}" in epochs and f"{CALL[0]}:{CALL[1]}" in epochs
    assert blocks["seed"].splitlines()[0].endswith("agree") and "≠" not in blocks["seed"]
    assert result.stderr == "3 knob(s), 1 with layers that disagree.\n"


def test_parity_disagree_keeps_only_the_disagreeing_knob(project):
    assert list(parity_json("--disagree")) == ["max_epochs"]
    table = cli("parity", "mypkg/", "--disagree")
    assert table.exit_code == 0
    assert table.stdout.startswith("max_epochs ") and "seed" not in table.stdout and "num_workers" not in table.stdout
    assert table.stderr == "1 knob(s), 1 with layers that disagree.\n"


def test_parity_markdown_is_a_table(project):
    result = cli("parity", "mypkg/", "--format", "markdown", "--disagree")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "## Knob parity"
    assert "1 knobs, 1 with layers that disagree." in lines
    assert any(line.startswith("### `max_epochs`") and "`10` vs `20`; calls pass `7`" in line for line in lines)
    header = lines.index("| | layer | where | what | value |")
    assert lines[header + 1] == "|---|---|---|---|---|"
    rows = lines[header + 2:header + 6]
    assert all(row.startswith("|") and row.endswith("|") and row.count(" | ") == 4 for row in rows), rows
    assert rows[2] == f"| ≠ | flag | `{FLAG[0]}:{FLAG[1]}` | --max_epochs | `20` |"
    assert rows[3] == f"| ≠ | call | `{CALL[0]}:{CALL[1]}` | Trainer(max_epochs=) | `7` |"  # a literal overriding 10


def test_parity_knob_restricts_output_by_name_or_alias(project):
    assert list(parity_json("--knob", "seed")) == ["seed"]
    assert list(parity_json("--knob", "nepochs")) == ["max_epochs"]  # an alias finds the knob
    assert sorted(parity_json("--knob", "seed", "--knob", "num_workers")) == ["num_workers", "seed"]
    assert parity_json("--knob", "seed", "--disagree") == {}
    table = cli("parity", "mypkg/", "--knob", "num_workers")
    assert table.stdout.startswith("num_workers ") and "max_epochs" not in table.stdout


def test_parity_all_includes_knobs_no_layer_states(project):
    (project / "knob_registry.yaml").write_text(REGISTRY + """\
  - name: precision
    beyond_catalog: true
    category: lightning_trainer
    home: execution
    type: str
    default: "32"
    purpose: Numeric precision.
""")
    assert "precision" not in parity_json()
    assert [lay["kind"] for lay in parity_json("--all")["precision"]["layers"]] == ["registry"]


@pytest.mark.parametrize(("fmt", "name", "hint"), [("table", "max_epoch", "; did you mean max_epochs?"),
                                                   ("json", "learning_rate", "")])
def test_parity_unknown_knob_is_a_clear_error(project, fmt, name, hint):
    result = cli("parity", "mypkg/", "--knob", name, "--format", fmt)
    assert result.exit_code == 2
    assert result.stderr == f"error: no knob named {name!r}{hint}\n"
    assert result.stdout == "" and "Traceback" not in result.output


# -- 5. knobs show NAME --in PATH ---------------------------------------------------------


def test_knobs_show_in_lists_appearances_with_file_and_line(project):
    result = cli("knobs", "show", "max_epochs", "--in", "mypkg/")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("name: max_epochs\n") and "default: 10" in out and "purpose: Maximum number" in out
    for (path, line), label in ((FIELD, "TrainingConfig.max_epochs"), (FLAG, "--max_epochs"),
                                (CALL, "Trainer(max_epochs=)")):
        row = next((r for r in out.splitlines() if f"{path}:{line} " in r), None)
        assert row is not None and label in row, (path, line, out)
    assert "seed" not in out.split("\n\n", 1)[1]  # only the knob asked for
    by_alias = cli("knobs", "show", "nepochs", "--in", "mypkg/train.py")
    assert by_alias.exit_code == 0
    assert by_alias.stdout.startswith("('nepochs' is the catalog name or an alias of 'max_epochs')")
    assert f"{CALL[0]}:{CALL[1]}" in by_alias.stdout and FLAG[0] not in by_alias.stdout


def test_knobs_show_in_errors(project):
    unknown = cli("knobs", "show", "max_epoch", "--in", "mypkg/")
    assert unknown.exit_code == 2
    assert unknown.stderr == "error: no knob named 'max_epoch'; did you mean max_epochs?\n"
    assert unknown.stdout == ""
    missing = cli("knobs", "show", "max_epochs", "--in", "no_such_dir/")
    assert missing.exit_code == 2
    assert missing.stderr == "error: no_such_dir/: no such file or directory\n"
    assert "Traceback" not in missing.output


def test_knobs_show_in_json_is_one_json_document(project):
    result = cli("knobs", "show", "max_epochs", "--in", "mypkg/", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["knob"]["name"] == "max_epochs" and data["parity"]["knob"] == "max_epochs"
    assert {layer["kind"] for layer in data["parity"]["layers"]} >= {"registry", "field", "flag", "call"}


# -- 6. the read-only views import neither torch nor lightning ----------------------------

NO_HEAVY = """\
import sys
from ptycho_knobs.cli import main
for args in {runs!r}:
    try:
        main(['--registry', 'knob_registry.yaml', *args])
    except SystemExit as exc:
        assert exc.code in (0, None), (args, exc.code)
print('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & {{'torch', 'lightning', 'pytorch_lightning'}}))
"""


def test_discover_parity_and_show_do_not_import_torch_or_lightning(project):
    runs = [["discover", "mypkg/", "--no-cache"], ["discover", "mypkg/", "--sources", "--no-cache"],
            ["parity", "mypkg/", "--no-cache", "--format", "json"], ["parity", "mypkg/", "--knob", "max_epochs"],
            ["knobs", "show", "max_epochs", "--in", "mypkg/"]]
    proc = subprocess.run([sys.executable, "-c", NO_HEAVY.format(runs=runs)], capture_output=True, text=True,
                          cwd=project, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "TrainingConfig.max_epochs" in proc.stdout  # the views did run
    assert proc.stdout.rstrip().endswith("HEAVY []"), proc.stdout[-500:]


# -- 7. bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("parity", "no_such_dir/"), ("parity", "mypkg/", "no_such_dir/"),
                                  ("parity", "no_such_dir/", "--format", "json")])
def test_parity_missing_path_is_a_clear_error(project, args):
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr == "error: no_such_dir/: no such file or directory\n"
    assert result.stdout == "" and "Traceback" not in result.output


@pytest.mark.parametrize("args", [("parity", "mypkg/"), ("parity", "mypkg/", "--knob", "seed"),
                                  ("knobs", "show", "seed", "--in", "mypkg/")])
def test_registry_yaml_error_names_file_and_line(project, args):
    bad = REGISTRY.replace("    default: 42\n", "    default: [42\n")
    (project / "broken.yaml").write_text(bad)
    result = cli(*args, registry="broken.yaml")
    assert result.exit_code == 2
    assert re.match(r"error: broken\.yaml:\d+:\d+: invalid YAML", result.stderr), result.stderr
    assert result.stdout == "" and "Traceback" not in result.output


def test_parity_subprocess_bad_registry_has_no_traceback(project):
    (project / "broken.yaml").write_text("schema_version: 1\nknobs:\n\t- name: x\n")
    proc = subprocess.run([sys.executable, "-m", "ptycho_knobs", "--registry", "broken.yaml", "parity", "mypkg/"],
                          capture_output=True, text=True, cwd=project, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: broken.yaml:3:1: invalid YAML"), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
