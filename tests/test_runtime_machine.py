"""What the machine can run, checked before anything starts, and what `train` prints unasked.

`n_devices: 9999` with gloo on CPU used to pass `--dry-run` and then start hundreds of
processes; it is now a located run.yaml error in the dry run too. The dry run prints its
table and nothing of Lightning's; the examples produce no warning of their own making.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from runtime_helpers import ROOT, TINY, cli, cli_run, write_yaml

from ptycho_knobs.runtime.machine import usable_cores

TOO_MANY = TINY + "strategy: ddp\nn_devices: 9999\nddp_backend: gloo\nepochs: 1\n"


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real-run"])
def test_more_cpu_processes_than_cores_is_a_located_error(tmp_path: Path, dry_run: bool) -> None:
    config = write_yaml(tmp_path, TOO_MANY)
    result = cli("train", "--config", str(config), "--output-dir", str(tmp_path / "runs"), *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 2, result.output
    line = TOO_MANY.splitlines().index("n_devices: 9999") + 1
    cores = usable_cores()
    assert f"run.yaml:{line}:12: n_devices 9999 asks for 9999 CPU processes, but this process may use {cores} core" in result.stderr
    assert f"set n_devices to at most {cores}" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_device_count_from_a_flag_names_the_flag(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, TINY + "strategy: ddp\nddp_backend: gloo\n")
    result = cli("train", "--config", str(config), "--dry-run", "--n-devices", str(usable_cores() + 1))
    assert result.exit_code == 2
    assert "(n_devices from --n-devices)" in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU to count")
@pytest.mark.gpu
def test_more_gpus_than_present_is_a_located_error(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, TINY.replace("accelerator: cpu", "accelerator: gpu") + "strategy: ddp\nn_devices: 64\n")
    result = cli("train", "--config", str(config), "--dry-run")
    assert result.exit_code == 2
    assert f"n_devices 64 asks for 64 GPUs, but torch sees {torch.cuda.device_count()} here" in result.stderr


# ---------------------------------------------------------------------------- output


BANNERS = ("GPU available", "TPU available", "Tip:", "litlogger", "litmodels", "💡")


def test_dry_run_prints_the_table_and_nothing_of_lightnings(tmp_path: Path) -> None:
    config = write_yaml(tmp_path, TINY)
    result = cli_run("train", "--config", str(config), "--dry-run", "--output-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:3] == ["knob", "value", "source"]
    assert result.stderr == ""
    assert not any(b in result.stdout for b in BANNERS)


def _example(name: str, tmp_path: Path, *extra: str) -> str:
    """Run examples/NAME from the repository root, as the README does (output in tmp_path); every line printed."""
    env = {"PYTHONPATH": ""}  # as a user has it: nothing pointing into examples/
    result = cli_run("train", "--config", f"examples/{name}", "--output-dir", str(tmp_path / "runs"), *extra, cwd=ROOT, env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    return out


def _own_warnings(out: str) -> list[str]:
    """Warnings a config causes: Lightning's about the run's settings (not library deprecations)."""
    return [line for line in out.splitlines() if "log_every_n_steps" in line or "does not have many workers" in line
            or "UserWarning" in line or "PossibleUserWarning" in line]


def test_custom_model_example_runs_from_the_repository_root_as_the_readme_says(tmp_path: Path) -> None:
    out = _example("custom_model.yaml", tmp_path)
    assert _own_warnings(out) == [], out
    assert not any(b in out for b in ("Tip:", "litlogger", "💡"))
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_readme_example_has_no_warning_of_its_own_making(tmp_path: Path) -> None:
    """One epoch of examples/run.yaml: the logging interval fits its 16 batches per epoch."""
    out = _example("run.yaml", tmp_path, "--epochs", "1")
    assert _own_warnings(out) == [], out
    assert "LeafSpec" not in out  # Lightning's own use of a deprecated torch API (lightning 2.6, torch >= 2.10)
    assert "reconstruction: amplitude_mae=" in out


def test_usable_cores_follows_the_affinity_mask() -> None:
    if hasattr(os, "sched_getaffinity"):
        assert usable_cores() == len(os.sched_getaffinity(0))
    assert usable_cores() >= 1


def test_only_lightnings_own_leafspec_deprecation_is_dropped() -> None:
    """The filter names the message and Lightning's modules: the same warning elsewhere still shows."""
    import warnings

    from ptycho_knobs.runtime import chatter

    message = "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)` instead."
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        chatter.drop_tips()
        for module in ("lightning.pytorch.utilities._pytree", "users_own_code", "lightning_extras"):
            warnings.warn_explicit(message, FutureWarning, f"{module}.py", 1, module=module)
        warnings.warn_explicit("another deprecation", FutureWarning, "x.py", 1, module="lightning.pytorch.core")
    assert [w.filename for w in seen] == ["users_own_code.py", "lightning_extras.py", "x.py"]
