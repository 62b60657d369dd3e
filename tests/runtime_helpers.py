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
    """The real console script, running: stdout and stderr interleaved in `.stdout`."""
    return subprocess.Popen([str(CLI), "--registry", str(REGISTRY), *args], cwd=cwd, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)  # type: ignore[call-overload]


#: TINY, but long enough (400 patterns per object, 1000 epochs) that a signal always lands mid-training.
LONG = TINY.replace("diff_per_object: 16", "diff_per_object: 400") + "epochs: 1000\nlogger_backend: csv\n"


def cli_run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real console script to completion: its exit code and everything it printed (stderr after stdout)."""
    return subprocess.run([str(CLI), "--registry", str(REGISTRY), *args], cwd=cwd, env=subprocess_env(env),
                          capture_output=True, text=True, timeout=timeout)


def wait_for_state(path: Path, state: str, proc: subprocess.Popen[str], timeout: float = 240) -> dict:
    """Block until status.json says `state` (training has started: a marker, not a sleep)."""
    import json
    import time

    import pytest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            body = {}
        if body.get("state") == state:
            return body
        if proc.poll() is not None:
            pytest.fail(f"train exited early ({proc.returncode}):\n{proc.stdout.read() if proc.stdout else ''}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"{path} never reached {state!r}")


def tree_state(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `folder` with its mtime and bytes: equal before and after means nothing changed."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}
