"""Installed, not only cloned: build the wheel, install it into a fresh venv, use it from an
empty folder (no checkout, no knob_registry.yaml here or above).

The venv is a real fresh one (not --system-site-packages): the wheel plus its dependencies,
with the torch already installed here pinned (a local CPU wheel; an unpinned torch would pull
a CUDA build), from whatever index pip is configured with (offline here: a local one). About a
minute, most of it installing torch and lightning.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HARDCODED = """\
import lightning as L
from lightning.pytorch.callbacks import EarlyStopping

trainer = L.Trainer(max_epochs=7, callbacks=[EarlyStopping(monitor="val_loss", patience=3)])
"""
NOTICE = "ptycho-knobs: no knob_registry.yaml here or above; using the bundled PtychoPINN registry ("
#: Not copied into the build: local state of a checkout, never part of the wheel.
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                     ".hypothesis", ".ruff_cache", ".ptycho_knobs_cache", "ptycho_runs", "tests",
                                     "lightning_logs", "mlruns")


@dataclass
class Installed:
    bin: Path
    site: Path  # the installed package folder
    env: dict[str, str]
    work: Path  # tmp root for the empty folders


def _sh(argv: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("install")
    # Build from a copy, so that no build/ or egg-info is left in the checkout and no stale
    # build/lib from an earlier build leaks into the wheel.
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCE)
    wheels = tmp / "wheels"
    try:  # build with this environment's setuptools when it is new enough (pyproject: >=77): no index needed
        isolation = ["--no-build-isolation"] if int(metadata.version("setuptools").split(".")[0]) >= 77 else []
    except (metadata.PackageNotFoundError, ValueError):
        isolation = []
    _sh([sys.executable, "-m", "pip", "wheel", src, "--no-deps", *isolation, "-w", wheels, "--quiet"])
    [wheel] = wheels.glob("ptycho_knobs-*.whl")

    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    torch = metadata.version("torch").split("+")[0]
    _sh([python, "-m", "pip", "install", "--quiet", "--no-compile", wheel, f"torch=={torch}"],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    site = Path(_sh([python, "-c", "import ptycho_knobs, os; print(os.path.dirname(ptycho_knobs.__file__))"],
                    cwd=tmp).stdout.strip())
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PTYCHO_KNOBS_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join([str(bindir), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(env_dir)
    env["XDG_CACHE_HOME"] = str(tmp / "xdg-cache")
    return Installed(bindir, site, env, tmp)


def cli(inst: Installed, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(inst.bin / "ptycho-knobs"), *args], cwd=cwd, env={**inst.env, **env},
                          capture_output=True, text=True, timeout=300)


def empty_folder(inst: Installed, name: str) -> Path:
    folder = inst.work / name
    folder.mkdir()
    from ptycho_knobs.locate import find_registry

    if find_registry(folder) is not None:
        pytest.skip(f"a knob_registry.yaml above {folder} hides the fallback")
    return folder


def test_the_wheel_carries_the_registry_and_examples(installed: Installed) -> None:
    bundled = installed.site / "bundled"
    assert (bundled / "knob_registry.yaml").read_bytes() == (ROOT / "knob_registry.yaml").read_bytes()
    for example in (ROOT / "examples").iterdir():
        if example.suffix in (".yaml", ".py"):
            assert (bundled / "examples" / example.name).read_bytes() == example.read_bytes()
    assert (installed.site / "generated" / "execution_config.py").is_file()
    assert not installed.site.is_relative_to(ROOT)


def test_installed_verbs_from_an_empty_folder(installed: Installed) -> None:
    here = empty_folder(installed, "user")
    registry = installed.site / "bundled" / "knob_registry.yaml"
    (here / "ptycho_torch").mkdir()
    (here / "ptycho_torch" / "train.py").write_text(HARDCODED, encoding="utf-8")

    audit = cli(installed, here, "audit", "ptycho_torch/")
    assert audit.returncode == 1, audit.stderr
    assert "PK001 [epochs]" in audit.stdout and "PK003" not in audit.stdout and "PK004" not in audit.stdout
    notice = audit.stderr.splitlines()[0]
    assert notice.startswith(NOTICE) and f"({registry})" in notice and "leaving out PK003/PK004" in notice
    again = cli(installed, here, "audit", "ptycho_torch/", PTYCHO_KNOBS_DEBUG_FASTPATH="1")
    assert "ptycho-knobs fastpath: hit" in again.stderr  # the fast path keys the bundled registry too
    assert (again.stdout, again.returncode) == (audit.stdout, audit.returncode)
    assert again.stderr.replace(again.stderr.splitlines()[0] + "\n", "", 1) == audit.stderr

    listed = cli(installed, here, "knobs", "list")
    assert listed.returncode == 0, listed.stderr
    assert "early_stop_patience" in listed.stdout and listed.stderr.startswith(NOTICE)

    generate = cli(installed, here, "generate")
    assert generate.returncode == 2
    assert "ptycho-knobs init" in generate.stderr and "Traceback" not in generate.stderr
    assert not (registry.parent / "generated").exists()

    missing = cli(installed, here, "train", "--config", "examples/run.yaml", "--dry-run")
    assert missing.returncode == 2 and "ptycho-knobs init --examples" in missing.stderr

    examples = cli(installed, here, "init", "--examples")
    assert examples.returncode == 0, examples.stderr
    dry = cli(installed, here, "train", "--config", "examples/run.yaml", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stderr.startswith(NOTICE)
    rows = [line.split() for line in dry.stdout.splitlines()]
    assert ["epochs", "50", "run.yaml:7", "Trainer.max_epochs", "50", "ok"] in rows
    assert not any(r and r[-1] == "MISMATCH" for r in rows)
    assert sorted(p.name for p in here.iterdir()) == ["examples", "ptycho_torch"]


def test_installed_init_then_every_verb(installed: Installed) -> None:
    here = empty_folder(installed, "new-project")
    init = cli(installed, here, "init")
    assert init.returncode == 0, init.stderr
    assert "ptycho-knobs discover" in init.stdout
    assert cli(installed, here, "init").returncode == 2  # never overwrites

    listed = cli(installed, here, "knobs", "list")
    assert listed.returncode == 0 and "early_stop_patience" in listed.stdout and NOTICE not in listed.stderr
    generate = cli(installed, here, "generate")
    assert generate.returncode == 0, generate.stderr
    assert (here / "generated" / "execution_config.py").is_file()
    assert cli(installed, here, "generate", "--check").returncode == 0
    audit = cli(installed, here, "audit", ".")
    assert audit.returncode == 0, audit.stdout + audit.stderr
