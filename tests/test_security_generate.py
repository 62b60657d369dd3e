"""`generate` never writes where it should not: output_dir is confined to the registry's
folder tree, a file without the DO-NOT-EDIT header is never replaced (whatever the folder),
a refused run leaves no cache behind, and what a killed run leaves is reported and removed.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent
REGISTRY = ROOT / "knob_registry.yaml"
OUTPUTS = ("cli.py", "config_bridge.py", "execution_config.py", "rules.md", "run.schema.json",
           "spec_execution_config.md")
LEFTOVER = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.bak)?$")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PTYCHO_KNOBS_")}
    clean["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return clean


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REGISTRY, root / "knob_registry.yaml")
    return root


def run(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "ptycho_knobs", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    return proc


def set_output_dir(registry: Path, value: str) -> int:
    """Point the registry's output_dir at `value`; returns its line number."""
    lines = registry.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("output_dir:"))
    lines[at] = f"output_dir: {value!r}\n"
    registry.write_text("".join(lines))
    return at + 1


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


# -- output_dir ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["/tmp/pk-escape", "../escape", ".", "./", "a/../..", "generated/../../x"])
def test_output_dir_outside_the_registry_folder_is_a_located_error(repo: Path, env: dict[str, str],
                                                                   value: str) -> None:
    line = set_output_dir(repo / "knob_registry.yaml", value)
    before = snapshot(repo.parent)
    for args in (("generate",), ("generate", "--check"), ("generate", "--dry-run"), ("knobs", "list")):
        result = run(repo, *args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert re.search(rf"knob_registry\.yaml:{line}:\d+: output_dir ", result.stderr), result.stderr
    assert snapshot(repo.parent) == before  # nothing written anywhere (no cache either)
    assert not Path("/tmp/pk-escape").exists()


def test_output_dir_through_a_symbolic_link_out_of_the_tree_is_refused(repo: Path, tmp_path: Path,
                                                                        env: dict[str, str]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "generated").symlink_to(outside, target_is_directory=True)
    line = set_output_dir(repo / "knob_registry.yaml", "generated")
    result = run(repo, "generate", env=env)
    assert result.returncode == 2 and f"knob_registry.yaml:{line}:" in result.stderr
    assert list(outside.iterdir()) == []
    # A link added after a run cached the registry is still caught.
    (repo / "generated").unlink()
    assert run(repo, "generate", env=env).returncode == 0
    shutil.rmtree(repo / "generated")
    (repo / "generated").symlink_to(outside, target_is_directory=True)
    assert run(repo, "generate", env=env).returncode == 2
    assert list(outside.iterdir()) == []


def test_the_tool_s_own_hand_written_files_are_never_replaced(tmp_path: Path, env: dict[str, str]) -> None:
    """The reported case: output_dir: ptycho_knobs replaced the tool's own cli.py."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "ptycho_knobs", repo / "ptycho_knobs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REGISTRY, repo / "knob_registry.yaml")
    set_output_dir(repo / "knob_registry.yaml", "ptycho_knobs")
    before = snapshot(repo)
    for args in (("generate",), ("generate", "--check"), ("generate", "--dry-run")):
        result = run(repo, *args, env=env)
        assert result.returncode == 2 and "refusing to replace ptycho_knobs/cli.py" in result.stderr, result.stderr
        assert "DO-NOT-EDIT header" in result.stderr
    assert snapshot(repo) == before  # all or nothing: not even the files that did not exist yet
    assert not (tmp_path / "xdg").exists()  # a refused generate leaves no cache behind


def test_out_follows_the_same_rule(repo: Path, tmp_path: Path, env: dict[str, str]) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "execution_config.py").write_text("# my own code\nVALUE = 1\n")
    before = snapshot(other)
    result = run(repo, "generate", "--out", str(other), env=env)
    assert result.returncode == 2 and "refusing to replace" in result.stderr
    assert snapshot(other) == before
    (other / "execution_config.py").unlink()
    assert run(repo, "generate", "--out", str(other), env=env).returncode == 0
    text = (other / "cli.py").read_text()
    (other / "cli.py").write_text(text.replace("def ", "def  ", 1))  # a hand edit under the header: ours
    assert run(repo, "generate", "--out", str(other), env=env).returncode == 0
    assert (other / "cli.py").read_text() == text


@pytest.mark.parametrize("how", ["hand-written file", "registry error", "broken YAML"])
def test_a_refused_generate_leaves_no_cache(repo: Path, tmp_path: Path, env: dict[str, str], how: str) -> None:
    registry = repo / "knob_registry.yaml"
    if how == "hand-written file":
        (repo / "generated").mkdir()
        (repo / "generated" / "cli.py").write_text("print('mine')\n")
    elif how == "registry error":
        registry.write_text(registry.read_text().replace("schema_version: 1", "schema_version: 7"))
    else:
        registry.write_text(registry.read_text() + "\n  - [unclosed\n")
    in_tree = repo / "cache"
    for args in ((), ("--check",), ("--cache-dir", str(in_tree)), ("--check", "--cache-dir", str(in_tree))):
        assert run(repo, "generate", *args, env=env).returncode == 2
    assert not (tmp_path / "xdg").exists() and not in_tree.exists()


# -- interrupted runs ------------------------------------------------------------------------


def _generated(repo: Path, env: dict[str, str]) -> Path:
    assert run(repo, "generate", env=env).returncode == 0
    return repo / "generated"


def test_planted_leftovers_of_a_killed_run_are_reported_and_removed(repo: Path, env: dict[str, str]) -> None:
    """Exactly what `write_outputs` leaves when killed between its steps: the new text in
    `.NAME.XXXXXXXX.tmp` (maybe cut short) and the hard-link backup `.tmp.bak` of the old file."""
    out = _generated(repo, env)
    os.link(out / "cli.py", out / ".cli.py.k3j_9x0a.tmp.bak")
    (out / ".execution_config.py.0abcdefg.tmp").write_bytes((out / "execution_config.py").read_bytes()[:100])
    (out / ".rules.md.zzzzzzzz.tmp").write_bytes(b"")
    (out / ".gitignore").write_text("*.pyc\n")  # hidden files of the user's: not ours
    (out / ".notes.py.abcdefgh.tmp").write_text("not a leftover of ours\n")
    check = run(repo, "generate", "--check", env=env)
    assert check.returncode == 1
    for name in (".cli.py.k3j_9x0a.tmp.bak", ".execution_config.py.0abcdefg.tmp", ".rules.md.zzzzzzzz.tmp"):
        assert name in check.stdout, check.stdout
    assert ".gitignore" not in check.stdout and ".notes.py" not in check.stdout
    dry = run(repo, "generate", "--dry-run", env=env)
    assert dry.returncode == 0 and ".cli.py.k3j_9x0a.tmp.bak" in dry.stderr
    assert (out / ".cli.py.k3j_9x0a.tmp.bak").exists()
    fix = run(repo, "generate", env=env)
    assert fix.returncode == 0 and "removed" in fix.stderr
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".gitignore", ".notes.py.abcdefgh.tmp"]
    assert run(repo, "generate", "--check", env=env).returncode == 0
    assert (out / "cli.py").stat().st_nlink == 1


SLOW_WRITES = """\
import os, sys, time
real_replace, real_link = os.replace, os.link
def slow_replace(a, b):
    time.sleep(0.03)
    real_replace(a, b)
def slow_link(a, b):
    time.sleep(0.03)
    real_link(a, b)
os.replace, os.link = slow_replace, slow_link
sys.argv = ["ptycho-knobs", *sys.argv[1:]]
from ptycho_knobs.fastpath import main
main()
"""


@pytest.mark.slow
def test_a_generate_killed_at_random_moments_loses_nothing_and_leaves_nothing(repo: Path, tmp_path: Path,
                                                                             env: dict[str, str]) -> None:
    """Real SIGKILLs of real `generate` processes (their renames slowed down, so kills land
    while files are being written). After every kill each output is whole (the old text or
    the new one), and `--check` never passes while anything is left over; a later
    `generate` removes it all."""
    registry = repo / "knob_registry.yaml"
    variants = [registry.read_text(), registry.read_text() + "\n# variant b\n"]
    texts: dict[str, set[bytes]] = {name: set() for name in OUTPUTS}
    for i, text in enumerate(variants):
        registry.write_text(text)
        assert run(repo, "generate", "--out", str(tmp_path / f"v{i}"), env=env).returncode == 0
        for name in OUTPUTS:
            texts[name].add((tmp_path / f"v{i}" / name).read_bytes())
    registry.write_text(variants[0])
    out = _generated(repo, env)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    start = time.perf_counter()
    run(repo, "generate", env=env)
    duration = max(time.perf_counter() - start, 0.3) + 0.4  # about how long a slowed run takes
    killed_with_leftovers = 0
    for attempt in range(14):
        registry.write_text(variants[(attempt + 1) % 2])
        proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITES, "generate"], cwd=repo, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, duration))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for name in OUTPUTS:
            assert (out / name).read_bytes() in texts[name], f"{name} is partial (seed {seed}, attempt {attempt})"
        leftovers = sorted(p.name for p in out.iterdir() if LEFTOVER.match(p.name))
        if leftovers:
            killed_with_leftovers += 1
            check = run(repo, "generate", "--check", env=env)
            assert check.returncode == 1, f"seed {seed}: --check passed with {leftovers}"
            assert all(name in check.stdout for name in leftovers), (seed, leftovers, check.stdout)
    final = run(repo, "generate", env=env)
    assert final.returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS), f"seed {seed}"
    assert run(repo, "generate", "--check", env=env).returncode == 0
    assert all(p.stat().st_nlink == 1 for p in out.iterdir())
    print(f"seed {seed}: {killed_with_leftovers} of 14 kills left files behind")
