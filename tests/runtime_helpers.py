"""Shared helpers for the runtime tests: the CLI in-process and as a subprocess, tiny run.yaml files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "knob_registry.yaml"
CLI = Path(sys.executable).parent / "ptycho-knobs"

#: Execution settings that keep a run in-process on CPU, quiet, and tiny.
TINY = """\
accelerator: cpu
quiet: true
num_workers: 0
persistent_workers: false
prefetch_factor: null
pin_memory: false
objects_per_probe: 2
diff_per_object: 16
batch_size: 8
data_args: {N: 16}
"""


def write_yaml(folder: Path, text: str, name: str = "run.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """`ptycho-knobs --registry REGISTRY ARGS` in this process."""
    from ptycho_knobs.cli import main

    return CliRunner().invoke(main, ["--registry", str(REGISTRY), *args], env=env, catch_exceptions=False)


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTYCHO_KNOBS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "examples"), env.get("PYTHONPATH", "")])
    env.update(extra or {})
    return env


def cli_process(*args: str, cwd: Path, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([str(CLI), "--registry", str(REGISTRY), *args], cwd=cwd, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)  # type: ignore[call-overload]
