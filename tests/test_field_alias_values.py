"""Field aliases with a `values` map (`scheduler: 'Default'` is `scheduler_type: 'default'`),
end to end: the registry, the generated dataclass, the spec bullet, the audit and `fix`."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fix_helpers import REGISTRY as FIX_REGISTRY
from fix_helpers import make_tree

from ptycho_knobs.cli import main
from ptycho_knobs.errors import RegistryError
from ptycho_knobs.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]

SCHEDULER = """\
  - name: scheduler_type
    catalog_name: scheduler
    category: optimization
    home: execution
    type: Literal['default', 'exponential', 'multistage', 'adaptive']
    default: default
    purpose: Learning-rate schedule.
    field_aliases:
      - {name: scheduler, values: {Default: default, Exponential: exponential, MultiStage: multistage, Adaptive: adaptive}}
"""

# For `generate`: Adaptive has no spelling of its own (it is taken and read as itself), and an
# open-typed knob whose alias passes any other value through.
GENERATE_REGISTRY = """\
schema_version: 1
knobs:
  - name: scheduler_type
    catalog_name: scheduler
    category: optimization
    home: execution
    type: Literal['default', 'exponential', 'multistage', 'adaptive']
    default: default
    purpose: Learning-rate schedule.
    field_aliases:
      - {name: scheduler, values: {Default: default, Exponential: exponential, MultiStage: multistage}}
  - name: logger_backend
    catalog_name: logger
    category: mlflow
    home: execution
    type: Optional[str]
    default: tensorboard
    purpose: Where metrics go.
    field_aliases:
      - {name: logger_name, values: {TB: tensorboard, none: null}}
  - name: quiet
    catalog_name: enable_progress_bar
    category: lightning_trainer
    home: execution
    type: bool
    default: false
    purpose: Hide the progress bar.
    field_aliases: [{name: enable_progress_bar, invert: true}]
"""


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# -- the registry ------------------------------------------------------------------------------


def write_registry(tmp_path: Path, alias: str, type_: str = "Literal['default', 'exponential']") -> Path:
    path = tmp_path / "knob_registry.yaml"
    path.write_text(
        "schema_version: 1\nknobs:\n"
        "  - name: scheduler_type\n    catalog_name: scheduler\n    category: optimization\n"
        f"    home: execution\n    type: {type_}\n    default: default\n    purpose: Schedule.\n"
        f"    field_aliases:\n      - {alias}\n", encoding="utf-8")
    return path


def test_the_registry_reads_the_values_map(tmp_path: Path) -> None:
    path = write_registry(tmp_path, "{name: scheduler, values: {Default: default, Exponential: exponential}}")
    knob = load_registry(path).get("scheduler_type")
    (alias,) = knob.field_aliases
    assert alias.values == (("Default", "default"), ("Exponential", "exponential")) and not alias.invert
    assert alias.to_knob("Default") == "default" and alias.to_knob("Bogus") == "Bogus"
    assert alias.to_alias("exponential") == "Exponential" and alias.to_alias("other") == "other"
    assert knob.value_alias("scheduler") is alias and knob.value_alias("scheduler_type") is None
    # the real registry's scheduler_type spells its values the way PtychoPINN does
    real = load_registry(ROOT / "knob_registry.yaml").get("scheduler_type").value_alias("scheduler")
    assert real is not None and real.to_knob("MultiStage") == "multistage"


@pytest.mark.parametrize(("alias", "line", "col", "message"), [
    ("{name: scheduler, values: {Default: defualt}}", 11, 45,
     "knob 'scheduler_type': field alias 'scheduler': values.Default: 'defualt' (str) does not fit type "
     "Literal['default', 'exponential']"),
    ("{name: scheduler, invert: true, values: {Default: default}}", 11, 41,
     "knob 'scheduler_type': field alias 'scheduler' has both invert and values"),
    ("{name: scheduler, values: [Default, default]}", 11, 35,
     "knob 'scheduler_type': field alias 'scheduler': values must be a non-empty mapping"),
    ("{name: scheduler, values: {}}", 11, 35,
     "knob 'scheduler_type': field alias 'scheduler': values must be a non-empty mapping"),
    ("{name: scheduler, value: {Default: default}}", 11, 27, "unknown field 'value' in a field alias"),
])
def test_bad_values_maps_are_registry_errors_at_their_line(tmp_path: Path, alias: str, line: int, col: int,
                                                           message: str) -> None:
    path = write_registry(tmp_path, alias)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert (info.value.path, info.value.line, info.value.col) == (str(path), line, col)
    assert info.value.message.startswith(message), info.value.message
    assert str(info.value).startswith(f"{path}:{line}:{col}: ")


def test_a_values_map_is_checked_against_the_knobs_type(tmp_path: Path) -> None:
    path = write_registry(tmp_path, "{name: patience_epochs, values: {forever: -1, ten: 10}}", type_="int")
    with pytest.raises(RegistryError, match="default 'default'"):
        load_registry(path)  # (the default does not fit int: the map is read after it)
    path.write_text(path.read_text().replace("default: default", "default: 3"))
    alias = load_registry(path).get("scheduler_type").field_aliases[0]
    assert alias.values == (("forever", -1), ("ten", 10))
    path.write_text(path.read_text().replace("ten: 10", "ten: ten"))
    with pytest.raises(RegistryError, match=r"values\.ten: 'ten' \(str\) does not fit type int"):
        load_registry(path)


# -- the generated dataclass -------------------------------------------------------------------


def _import(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolves string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("alias_values")
    registry = folder / "knob_registry.yaml"
    registry.write_text(GENERATE_REGISTRY, encoding="utf-8")
    assert invoke("--registry", str(registry), "generate", "--no-cache").exit_code == 0
    check = invoke("--registry", str(registry), "generate", "--check", "--no-cache")
    assert check.exit_code == 0, check.output
    ruff = Path(sys.executable).with_name("ruff")
    lint = subprocess.run([str(ruff), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"),
                           str(folder / "generated")], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    return _import(folder / "generated" / "execution_config.py", f"alias_values_{folder.name}")


def test_the_constructor_maps_an_alias_through_its_values(generated: Any) -> None:
    cls = generated.PyTorchExecutionConfig
    config = cls(scheduler="Default")
    assert config == cls() and config.scheduler_type == "default" and config.scheduler == "Default"
    assert cls(scheduler="MultiStage").scheduler_type == "multistage"
    assert cls(scheduler_type="exponential").scheduler == "Exponential"
    assert dataclasses.asdict(cls(scheduler="Exponential"))["scheduler_type"] == "exponential"
    assert "scheduler" not in {f.name for f in dataclasses.fields(cls)}
    # a knob value without a spelling of its own is taken, and read, as itself
    assert cls(scheduler="adaptive").scheduler_type == "adaptive" == cls(scheduler_type="adaptive").scheduler
    # the other kinds of alias are untouched
    assert cls(enable_progress_bar=False).quiet is True and cls().enable_progress_bar is True


@pytest.mark.parametrize("value", ["default", "Bogus", "DEFAULT", 1, None])
def test_an_unknown_spelling_is_a_value_error_naming_the_alias(generated: Any, value: Any) -> None:
    cls = generated.PyTorchExecutionConfig
    with pytest.raises(ValueError) as info:
        cls(scheduler=value)
    assert str(info.value) == ("PyTorchExecutionConfig.scheduler: must be one of 'Default', 'Exponential', "
                               f"'MultiStage', 'adaptive', got {value!r}")
    with pytest.raises(ValueError, match=r"^PyTorchExecutionConfig\.scheduler: must be one of"):
        generated.replace(cls(), scheduler=value)


def test_replace_takes_the_alias_and_both_names_together_are_a_type_error(generated: Any) -> None:
    cls = generated.PyTorchExecutionConfig
    config = cls(scheduler="Exponential")
    changed = generated.replace(config, scheduler="MultiStage")
    assert changed.scheduler_type == "multistage" and changed.scheduler == "MultiStage"
    assert config.__replace__(scheduler="Default") == cls()
    with pytest.raises(TypeError, match="got both 'scheduler_type' and its alias 'scheduler'"):
        cls(scheduler="Default", scheduler_type="default")
    with pytest.raises(TypeError, match=r"replace\(\)"):
        dataclasses.replace(config, scheduler="Default")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.scheduler = "Default"  # type: ignore[misc]


def test_help_shows_the_alias_in_its_own_spellings(generated: Any) -> None:
    cls = generated.PyTorchExecutionConfig
    param = inspect.signature(cls).parameters["scheduler"]
    assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default == "Default"
    assert param.annotation == "Literal['Default', 'Exponential', 'MultiStage', 'adaptive']"
    assert cls.FIELD_ALIASES["scheduler"] == ("scheduler_type", False)
    assert "'Default' = 'default'" in (cls.__doc__ or "")


def test_an_open_typed_alias_passes_other_values_through(generated: Any) -> None:
    cls = generated.PyTorchExecutionConfig
    assert cls(logger_name="TB").logger_backend == "tensorboard"
    assert cls(logger_name="csv").logger_backend == "csv"  # not in the map: the same under both names
    assert cls(logger_name="none").logger_backend is None and cls(logger_backend=None).logger_name == "none"
    assert cls().logger_name == "TB"
    assert inspect.signature(cls).parameters["logger_name"].default == "TB"


def test_the_spec_bullet_names_the_real_field_in_its_spellings() -> None:
    from ptycho_knobs.codegen.spec_context import field_bullet

    bullet = field_bullet(load_registry(ROOT / "knob_registry.yaml").get("scheduler_type"))
    assert (bullet.name, bullet.type, bullet.default) == ("scheduler", "str", "'Default'")
    assert bullet.choices == "{'Default', 'Exponential', 'MultiStage', 'Adaptive'}"


# -- the audit and fix -------------------------------------------------------------------------

AUDIT_REGISTRY = FIX_REGISTRY + SCHEDULER


def training_config(default: str, annotation: str = "str") -> str:
    return ("from dataclasses import dataclass\n\n\n@dataclass\nclass TrainingConfig:\n"
            f"    num_workers: int = 4\n    scheduler: {annotation} = {default!r}\n")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def build(files: dict[str, str]) -> Path:
        root = make_tree(tmp_path / "repo", files=files, registry=AUDIT_REGISTRY)
        monkeypatch.chdir(root)
        return root

    monkeypatch.setenv("PTYCHO_KNOBS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PTYCHO_KNOBS_REGISTRY", raising=False)
    return build


def audit(*args: str) -> list[dict[str, Any]]:
    """The audit's findings about scheduler_type (the shared fixture has a quiet drift of its own)."""
    result = invoke("audit", "ptycho_torch/", "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    return [f for f in json.loads(result.stdout) if f["knob"] == "scheduler_type"]


def test_a_field_in_the_alias_spelling_agrees_with_the_registry(project: Any) -> None:
    project({"ptycho_torch/config_params.py": training_config("Default"),
             "ptycho_torch/helpers.py": "def schedule(args):\n    return getattr(args, 'scheduler', 'Default')\n"})
    assert audit("--select", "PK002") == []
    table = invoke("parity", "ptycho_torch/", "--knob", "scheduler_type").stdout
    assert "agree" in table and "'default'  (scheduler='Default')" in table


def test_a_spelling_outside_the_table_disagrees(project: Any) -> None:
    project({"ptycho_torch/config_params.py": training_config("Bogus")})
    (finding,) = audit("--select", "PK002")
    assert finding["knob"] == "scheduler_type" and finding["line"] == 7
    assert finding["message"] == ("[scheduler_type] defaults disagree: 'Bogus' at ptycho_torch/config_params.py:7 "
                                  "(TrainingConfig.scheduler); 'default' in the registry")


def test_another_spelling_disagrees_in_the_knobs_sense_and_says_how_it_is_written(project: Any) -> None:
    project({"ptycho_torch/config_params.py": training_config("Exponential")})
    (finding,) = audit("--select", "PK002")
    assert finding["message"] == ("[scheduler_type] defaults disagree: 'exponential' at ptycho_torch/config_params.py:7 "
                                  "(TrainingConfig.scheduler, which spells it scheduler='Exponential'); 'default' in "
                                  "the registry")


def test_offered_spellings_are_compared_with_validations_in_the_knobs_sense(project: Any) -> None:
    project({"ptycho_torch/config_params.py": training_config(
        "Default", "Literal['Default', 'Exponential', 'MultiStage']")
        + "\n    def __post_init__(self):\n        if self.scheduler not in {'Default', 'Exponential'}:\n"
          "            raise ValueError('unknown scheduler')\n"})
    (finding,) = audit("--select", "PK010")
    assert finding["message"].startswith("[scheduler_type] 'MultiStage' is offered by TrainingConfig.scheduler's "
                                         "Literal type (ptycho_torch/config_params.py:7) but rejected by the "
                                         "validation at ptycho_torch/config_params.py:10")


def test_fix_writes_the_alias_spelling_never_the_knobs(project: Any) -> None:
    parser = ("import argparse\n\n\ndef parser():\n    p = argparse.ArgumentParser()\n"
              "    p.add_argument('--scheduler', default='Bogus', choices=['Default', 'Exponential', 'Bogus'])\n"
              "    return p\n")
    root = project({"ptycho_torch/config_params.py": training_config("Bogus"), "ptycho_torch/cli.py": parser})
    result = invoke("fix", "ptycho_torch/", "--select", "PK002", "--write")
    assert result.exit_code in (0, 1), result.output
    assert "scheduler: str = 'Default'\n" in (root / "ptycho_torch" / "config_params.py").read_text()
    assert "default='Default', choices=" in (root / "ptycho_torch" / "cli.py").read_text()
    assert audit("--select", "PK002") == []


# -- run.yaml: a field alias means what the real field means ---------------------------------

def _resolve_yaml(tmp_path, text):
    from ptycho_knobs.registry import load_registry
    from ptycho_knobs.runtime.resolve import resolve

    run = tmp_path / "run.yaml"
    run.write_text(text, encoding="utf-8")
    registry = load_registry(Path(__file__).resolve().parents[1] / "knob_registry.yaml")
    return resolve(registry, run, {}, {})


def test_run_yaml_alias_keys_are_read_in_the_real_fields_sense(tmp_path):
    run = _resolve_yaml(tmp_path, "enable_progress_bar: true\nscheduler: MultiStage\n")
    assert run.values["quiet"].value is False  # enable_progress_bar holds the opposite of quiet
    assert run.values["scheduler_type"].value == "multistage"
    assert run.values["scheduler_type"].source == "run.yaml:2"


def test_run_yaml_alias_key_with_an_unknown_spelling_names_the_accepted_ones(tmp_path):
    from ptycho_knobs.errors import RunConfigError

    with pytest.raises(RunConfigError) as info:
        _resolve_yaml(tmp_path, "scheduler: Bogus\n")
    text = str(info.value) + str(getattr(info.value, "hint", ""))
    assert "run.yaml" in text and "'Default', 'Exponential', 'MultiStage', 'Adaptive'" in text
    with pytest.raises(RunConfigError, match="must be true or false"):
        _resolve_yaml(tmp_path, "enable_progress_bar: maybe\n")
