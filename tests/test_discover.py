"""`ptycho-knobs discover` end to end on small fixture projects written into tmp_path.

A fixture project is a package with a settings dataclass, an argparse parser and a training
module that calls `lightning.Trainer` and `torch.utils.data.DataLoader` with literals. Each test
runs the real CLI (click's CliRunner on `ptycho_knobs.cli.main`) from the project's folder, with
the registry next to the package, as a user would.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from project_helpers import enter_project

from ptycho_knobs.cli import main

SNAPSHOT = Path("/work/shared/ptychopinn-aaa014e")  # read-only test data, never copied
SHIPPED_REGISTRY = Path(__file__).resolve().parents[1] / "knob_registry.yaml"

# The watched classes the fixtures call; without `callees:` discover sees no call-site literals.
CALLEES = """\
schema_version: 1
callees:
  Trainer:
    qualified: [lightning.pytorch.Trainer, lightning.Trainer, pytorch_lightning.Trainer]
  DataLoader:
    qualified: [torch.utils.data.DataLoader]
    positional: [dataset, batch_size, shuffle]
"""
EMPTY_REGISTRY = CALLEES + "knobs: []\n"

CONFIG_PY = """\
from dataclasses import dataclass


@dataclass
class TrainingConfig:
    max_epochs: int = 10
    learning_rate: float = 1e-3
    batch_size: int = 16
    use_amp: bool = False
"""

CLI_PY = """\
import argparse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="train a model")
    parser.add_argument('--max_epochs', type=int, default=10)
    parser.add_argument('--seed', type=int, default=42)
    parser.add_argument('--output_dir', type=str, default='runs')
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


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the only line of `text` that contains `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """The fixture project as the working directory, with an empty registry next to it."""
    return enter_project(monkeypatch, tmp_path, tmp_path / "cache", FILES, EMPTY_REGISTRY)


def cli(*args: str, registry: str | Path = "knob_registry.yaml"):
    # catch_exceptions=False: a traceback fails the test instead of becoming an exit code
    return CliRunner().invoke(main, ["--registry", str(registry), *args], catch_exceptions=False)


def proposed(stdout: str) -> dict[str, dict]:
    """The knobs discover printed, by name (its output is registry YAML)."""
    return {k["name"]: k for k in yaml.safe_load(stdout)["knobs"] or []}


def generated_defaults(folder: Path) -> dict[str, object]:
    """Field -> default over every dataclass of the generated execution_config.py."""
    spec = importlib.util.spec_from_file_location("_discovered_execution_config", folder / "execution_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    out = {}
    for value in vars(module).values():
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == spec.name:
            out.update({f.name: f.default for f in dataclasses.fields(value)})
    return out


# -- 1. an empty registry: everything is proposed, and the proposal round-trips -------------


def test_discover_empty_registry_proposes_fields_flags_and_call_literals(project):
    result = cli("discover", "mypkg/")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("8 knob(s) the registry lacks")
    knobs = proposed(result.stdout)
    assert set(knobs) == {"max_epochs", "learning_rate", "batch_size", "use_amp",  # dataclass fields
                          "seed", "output_dir",  # argparse flags
                          "num_workers", "gradient_clip_val"}  # call-site literals

    def src(rel: str, needle: str, **kind: str) -> dict:
        return {"file": rel, "line": line_of(FILES[rel], needle), **kind}

    # one knob per name: the field, its flag and the Trainer keyword are all its sources
    assert knobs["max_epochs"]["sources"] == [
        src("mypkg/config.py", "max_epochs", field="TrainingConfig.max_epochs"),
        src("mypkg/cli.py", "--max_epochs", flag="--max_epochs"),
        src("mypkg/train.py", "Trainer(", callee="Trainer", keyword="max_epochs"),
    ]
    assert (knobs["max_epochs"]["type"], knobs["max_epochs"]["default"]) == ("int", 10)  # the field's default
    assert knobs["max_epochs"]["target"] == "Trainer.max_epochs"
    assert (knobs["learning_rate"]["type"], knobs["learning_rate"]["default"]) == ("float", 0.001)
    assert (knobs["use_amp"]["type"], knobs["use_amp"]["default"]) == ("bool", False)
    assert knobs["use_amp"]["home"] == "training"  # guessed from TrainingConfig
    assert (knobs["output_dir"]["type"], knobs["output_dir"]["default"]) == ("str", "runs")
    assert knobs["seed"]["sources"] == [src("mypkg/cli.py", "--seed", flag="--seed")]
    assert knobs["num_workers"] | {"purpose": None} == {
        "name": "num_workers", "beyond_catalog": True, "category": "data_loading", "home": "execution",
        "type": "int", "default": 4, "purpose": None, "target": "DataLoader.num_workers",
        "sources": [src("mypkg/train.py", "num_workers", callee="DataLoader", keyword="num_workers")]}
    assert knobs["gradient_clip_val"]["default"] == 0.5
    assert knobs["gradient_clip_val"]["category"] == "lightning_trainer"
    for knob in knobs.values():
        assert knob["purpose"].startswith("TODO(human)"), knob


def test_discover_output_pasted_into_the_registry_loads_generates_and_leaves_nothing_new(project, tmp_path):
    from ptycho_knobs.registry import load_registry

    output = cli("discover", "mypkg/").stdout
    registry = project / "knob_registry.yaml"
    registry.write_text(EMPTY_REGISTRY.replace("knobs: []\n", output))  # paste over `knobs: []`

    loaded = load_registry(registry)
    assert sorted(k.name for k in loaded.knobs) == sorted(proposed(output))
    listed = cli("knobs", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    assert {k["name"]: k["default"] for k in json.loads(listed.stdout)}["learning_rate"] == 0.001

    out = tmp_path / "gen"
    gen = cli("generate", "--out", str(out), "--no-cache")
    assert gen.exit_code == 0, gen.output
    assert {"execution_config.py", "cli.py", "config_bridge.py", "run.schema.json"} <= set(os.listdir(out))
    assert not (project / "generated").exists()  # --out, not the registry's output_dir
    defaults = generated_defaults(out)
    assert {n: defaults[n] for n in ("max_epochs", "learning_rate", "use_amp", "output_dir", "num_workers")} == {
        "max_epochs": 10, "learning_rate": 0.001, "use_amp": False, "output_dir": "runs", "num_workers": 4}

    again = cli("discover", "mypkg/")
    assert again.exit_code == 0, again.output
    assert proposed(again.stdout) == {}
    assert again.stderr.startswith("0 knob(s) the registry lacks")
    sources = cli("discover", "mypkg/", "--sources")  # every place is a registered source already
    assert (sources.exit_code, sources.stderr) == (0, "0 source(s) missing in 0 knob(s).\n")


def test_discover_types_optional_literal_floats_and_quotes_round_trip(project):
    """Values YAML could misread (1e-05, None, quotes, backslashes) load back as the code states them."""
    (project / "mypkg" / "extra.py").write_text(
        "from dataclasses import dataclass\nfrom typing import Literal, Optional\n\n\n@dataclass\n"
        "class OptimizerSettings:\n    weight_decay: float = 1e-5\n    schedule: Literal['cosine', 'step'] = 'cosine'\n"
        "    resume_from: Optional[str] = None\n    tag: str = 'a \"quoted\" \\\\ tag'\n")
    output = cli("discover", "mypkg/extra.py").stdout
    registry = project / "knob_registry.yaml"
    registry.write_text(EMPTY_REGISTRY.replace("knobs: []\n", output))
    listed = cli("knobs", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    got = {k["name"]: (k["type"], k["default"]) for k in json.loads(listed.stdout)}
    assert got == {"weight_decay": ("float", 1e-05), "schedule": ("Literal['cosine', 'step']", "cosine"),
                   "resume_from": ("Optional[str]", None), "tag": ("str", 'a "quoted" \\ tag')}


def test_same_field_in_two_config_classes_gets_two_knobs(project):
    (project / "mypkg" / "infer.py").write_text(
        "from dataclasses import dataclass\n\n\n@dataclass\nclass InferenceConfig:\n    batch_size: int = 64\n")
    knobs = proposed(cli("discover", "mypkg/").stdout)
    assert knobs["batch_size"]["default"] == 16
    assert knobs["inference_config_batch_size"]["default"] == 64
    assert knobs["inference_config_batch_size"]["sources"] == [
        {"file": "mypkg/infer.py", "line": 6, "field": "InferenceConfig.batch_size"}]


# -- 2. the shipped registry on the real snapshot proposes nothing it already has ------------


def test_discover_on_snapshot_proposes_no_registered_name(monkeypatch, tmp_path):
    if not SNAPSHOT.is_dir():
        pytest.skip(f"{SNAPSHOT} (the PtychoPINN snapshot) is not present")
    from ptycho_knobs.registry import load_registry

    enter_project(monkeypatch, tmp_path, tmp_path / "cache")
    result = cli("discover", str(SNAPSHOT), "--no-cache", registry=SHIPPED_REGISTRY)
    assert result.exit_code == 0, result.output
    names = list(proposed(result.stdout))
    assert names, "the snapshot states knobs the registry lacks (e.g. gridsize)"
    assert len(names) == len(set(names))
    registry = load_registry(SHIPPED_REGISTRY)
    taken = {n for k in registry.knobs for n in (*k.names, *k.attr_names)}
    assert not set(names) & taken
    assert [n for n in names if registry.find(n) is not None] == []


# -- 3. --sources: places of registered knobs that their sources do not point at yet ---------

SOURCES_REGISTRY = CALLEES + """\
knobs:
  - name: num_workers
    beyond_catalog: true
    category: data_loading
    home: execution
    type: int
    default: 4
    purpose: DataLoader worker processes.
    target: DataLoader.num_workers
  - name: gradient_clip_val
    beyond_catalog: true
    category: lightning_trainer
    home: execution
    type: float
    default: 0.5
    purpose: Clip gradients above this norm.
    sources:
      - {file: mypkg/train.py, line: 7, callee: Trainer, keyword: gradient_clip_val}
    target: Trainer.gradient_clip_val
  - name: max_epochs
    beyond_catalog: true
    category: lightning_trainer
    home: training
    type: int
    default: 10
    purpose: Maximum number of training epochs.
    sources:
      - {file: mypkg/config.py, line: 6, field: TrainingConfig.max_epochs}
    target: Trainer.max_epochs
"""


def test_discover_sources_lists_unregistered_call_site_until_it_is_added(project):
    registry = project / "knob_registry.yaml"
    registry.write_text(SOURCES_REGISTRY)
    dl_line = line_of(TRAIN_PY, "num_workers")
    result = cli("discover", "mypkg/", "--sources")
    assert result.exit_code == 0, result.output
    found = yaml.safe_load("\n".join(line for line in result.stdout.splitlines() if not line.startswith("#")))
    assert found == {
        "num_workers": [{"file": "mypkg/train.py", "line": dl_line, "callee": "DataLoader", "keyword": "num_workers"}],
        "max_epochs": [{"file": "mypkg/cli.py", "line": line_of(CLI_PY, "--max_epochs"), "flag": "--max_epochs"},
                       {"file": "mypkg/train.py", "line": line_of(TRAIN_PY, "Trainer("), "callee": "Trainer",
                        "keyword": "max_epochs"}],
    }  # gradient_clip_val's call site is registered already
    assert result.stderr == "3 source(s) missing in 2 knob(s).\n"
    # without --sources, the registered knobs are not proposed again
    assert not {"num_workers", "gradient_clip_val", "max_epochs"} & set(proposed(cli("discover", "mypkg/").stdout))

    # paste the printed line under num_workers' (new) `sources:`
    printed = next(line for line in result.stdout.splitlines() if "DataLoader" in line).strip()[2:]
    text = SOURCES_REGISTRY.replace("    target: DataLoader.num_workers\n",
                                    f"    sources:\n      - {printed}\n    target: DataLoader.num_workers\n")
    registry.write_text(text)
    again = cli("discover", "mypkg/", "--sources")
    assert again.exit_code == 0, again.output
    assert "num_workers" not in again.stdout and "DataLoader" not in again.stdout
    assert "max_epochs:" in again.stdout
    assert again.stderr == "2 source(s) missing in 1 knob(s).\n"


def test_discover_sources_comments_out_parameters_that_only_share_a_knobs_name(project):
    """`def load(num_workers=2)` may or may not take the knob: proposed, commented out, not counted."""
    (project / "knob_registry.yaml").write_text(SOURCES_REGISTRY)
    (project / "mypkg" / "io.py").write_text(
        "from mypkg.config import TrainingConfig\n\n\ndef load(path, num_workers=2):\n    return TrainingConfig, path\n")
    result = cli("discover", "mypkg/", "--sources")
    assert result.exit_code == 0, result.output
    assert '  # - {file: "mypkg/io.py", line: 4, param: "load.num_workers"}' in result.stdout.splitlines()
    assert result.stderr == ("3 source(s) missing in 2 knob(s); 1 more parameter(s) share a knob's name "
                             "(commented out).\n")


# -- 7. bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("discover", "no_such_dir/"), ("discover", "no_such_dir/", "--sources"),
                                  ("discover", "mypkg/", "no_such_dir/")])
def test_discover_missing_path_is_a_clear_error(project, args):
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr == "error: no_such_dir/: no such file or directory\n"
    assert result.stdout == "" and "Traceback" not in result.output


@pytest.mark.parametrize(("text", "needle"), [
    (EMPTY_REGISTRY.replace("knobs: []", "knobs: [\n  - {name: x"), "{name: x"),  # unclosed flow mapping
    (EMPTY_REGISTRY + "\tstray: 1\n", "stray"),  # a tab cannot start a token
])
@pytest.mark.parametrize("sources", [False, True])
def test_discover_registry_yaml_error_names_file_and_line(project, text, needle, sources):
    line = line_of(text, needle)
    (project / "knob_registry.yaml").write_text(text)
    result = cli("discover", "mypkg/", *(["--sources"] if sources else []))
    assert result.exit_code == 2
    assert re.match(rf"error: knob_registry\.yaml:{line}:\d+: invalid YAML", result.stderr), result.stderr
    assert result.stdout == "" and "Traceback" not in result.output


def test_discover_registry_schema_error_names_file_and_line(project):
    bad = EMPTY_REGISTRY.replace("knobs: []", "knobs:\n  - name: workers\n    category: data_loading\n"
                                              "    home: execution\n    type: int\n    default: 2\n    purpose: x.")
    (project / "knob_registry.yaml").write_text(bad)
    result = cli("discover", "mypkg/")
    assert result.exit_code == 2
    line = line_of(bad, "name: workers")
    assert result.stderr.startswith(f"error: knob_registry.yaml:{line}:5: knob 'workers' needs catalog_name")
    assert result.stdout == "" and "Traceback" not in result.output


def test_discover_subprocess_bad_registry_has_no_traceback(project):
    import subprocess

    (project / "bad.yaml").write_text("knobs: [\n")
    proc = subprocess.run([sys.executable, "-m", "ptycho_knobs", "--registry", "bad.yaml", "discover", "mypkg/"],
                          capture_output=True, text=True, cwd=project, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: bad.yaml:2:1: invalid YAML"), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_discover_says_when_it_skips_an_unparseable_file(project):
    (project / "mypkg" / "broken.py").write_text(
        "from dataclasses import dataclass\n\n\n@dataclass\nclass RunConfig:\n    epochs: int = 3\n    def f(:\n")
    result = cli("discover", "mypkg/broken.py")
    assert result.exit_code == 0
    said = result.output.replace("# ptycho-knobs discover mypkg/broken.py", "")  # the echoed command line
    assert "broken.py" in said
