"""The warm audit fast path (`ptycho_knobs.fastpath`): a repeated audit is replayed byte for
byte, anything that could change the result misses, and the path stays light."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from project_helpers import enter_project

from ptycho_knobs import fastpath

HERE = Path(__file__).parent
ROOT = HERE.parent
FIXTURE = HERE / "fixtures" / "audit_project"


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    return enter_project(monkeypatch, root, tmp_path / "cache")


def run(*args: str, debug: bool = False, **env: str) -> subprocess.CompletedProcess[bytes]:
    """`python -m ptycho_knobs ARGS` in the current folder, as a user would run it."""
    full = {k: v for k, v in os.environ.items() if k != "PTYCHO_KNOBS_DEBUG_FASTPATH"}
    full.update(env)
    if debug:
        full["PTYCHO_KNOBS_DEBUG_FASTPATH"] = "1"
    return subprocess.run([sys.executable, "-m", "ptycho_knobs", *args], capture_output=True, env=full)


def verdict(*args: str, **env: str) -> str:
    """'hit', 'miss' or 'skip', as the fast path reports it."""
    line = run(*args, debug=True, **env).stderr.decode().splitlines()[0]
    assert line.startswith("ptycho-knobs fastpath: "), line
    return line.split()[2]


def stored_runs(project: Path) -> list[str]:
    cache = Path(os.environ["PTYCHO_KNOBS_CACHE_DIR"])
    return sorted(p.name for p in cache.glob("run-*")) if cache.is_dir() else []


CASES = [
    (["ptycho_torch/"], 1),
    (["ptycho_torch/dataloader.py", "--select", "PK001,PK002"], 0),
]


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(("args", "code"), CASES)
def test_warm_hit_replays_the_cold_run_exactly(project, fmt, args, code):
    cold = run("audit", *args, "--format", fmt)
    warm = run("audit", *args, "--format", fmt)
    assert cold.returncode == code, cold.stderr
    assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)
    assert verdict("audit", *args, "--format", fmt) == "hit"


def test_any_change_to_the_inputs_misses(project):
    args = ("audit", "ptycho_torch/", "--format", "json")
    first = run(*args)
    assert verdict(*args) == "hit"

    # A scanned file: same size, same mtime, different bytes (mtimes are not trusted).
    utils = project / "ptycho_torch" / "train_utils.py"
    stat, data = utils.stat(), utils.read_bytes()
    utils.write_bytes(data.replace(b"import math", b"import mat_", 1))
    os.utime(utils, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert utils.stat().st_mtime_ns == stat.st_mtime_ns and utils.read_bytes() != data
    assert verdict(*args) == "miss"
    utils.write_bytes(data)

    # A new file, the registry, the arguments, the registry found some other way.
    (project / "ptycho_torch" / "extra.py").write_text("x = 1\n")
    assert verdict(*args) == "miss"
    registry = project / "knob_registry.yaml"
    registry.write_text(registry.read_text() + "\n# a comment\n")
    assert verdict(*args) == "miss"
    assert verdict(*args, "--exit-zero") == "miss"
    other = project / "other.yaml"
    shutil.copy(registry, other)
    assert verdict(*args, PTYCHO_KNOBS_REGISTRY=str(other)) == "miss"
    assert verdict("--registry", str(other), *args) == "miss"
    assert verdict(*args) == "hit"
    assert run(*args).stdout == first.stdout  # the edits above did not change any finding


def test_cwd_and_tool_version_are_in_the_key(project, monkeypatch):
    request = fastpath.parse(["audit", str(project / "ptycho_torch")])
    assert request is not None
    key = fastpath._key(request)
    assert key is not None and fastpath._key(request)[0] == key[0]
    monkeypatch.chdir(project / "ptycho_torch")  # same registry (found upwards), same files
    assert fastpath._key(request)[0] != key[0]
    monkeypatch.chdir(project)
    monkeypatch.setattr(fastpath, "__version__", "9.9.9")
    assert fastpath._key(request)[0] != key[0]


def test_no_cache_and_writing_options_never_use_it(project):
    run("audit", "ptycho_torch/")
    assert verdict("audit", "ptycho_torch/", "--no-cache") == "skip"
    assert verdict("audit", "ptycho_torch/", "--write-baseline", "b.json") == "skip"
    assert verdict("audit", "ptycho_torch/", "--baseline", "b.json") == "skip"
    assert verdict("audit", "ptycho_torch/", "--fix-locations", "--diff") == "skip"
    before = stored_runs(project)
    run("audit", "ptycho_torch/", "--no-cache", "--select", "PK001")
    assert stored_runs(project) == before


def test_exit_2_is_never_stored(project):
    (project / "knob_registry.yaml").write_text("schema_version: 1\nknobs: [\n")
    for _ in range(2):
        result = run("audit", "ptycho_torch/", debug=True)
        assert result.returncode == 2 and b"fastpath: miss" in result.stderr
    assert stored_runs(project) == []
    assert verdict("audit", "no_such_dir/") == "skip"


def test_remember_stores_only_exit_0_and_1(project, monkeypatch):
    request = fastpath.parse(["audit", "ptycho_torch/"])
    key, side, folder, _ = fastpath._key(request)
    monkeypatch.setattr(fastpath, "_pending", (request, key, side, folder))
    from ptycho_knobs.audit import files

    files.clear_inputs()  # no audit ran here: no files read beyond the walk
    fastpath.remember("out", "err\n", 2)
    assert stored_runs(project) == []
    fastpath.remember("out", "err\n", 1)
    assert fastpath._load(folder / f"run-{key}.marshal") == ("out", "err\n", 1)


def test_a_change_during_the_run_is_not_stored(project, monkeypatch):
    from ptycho_knobs.audit import files

    request = fastpath.parse(["audit", "ptycho_torch/"])
    key, side, folder, walked = fastpath._key(request)
    monkeypatch.setattr(fastpath, "_pending", (request, key, side, folder))
    files.prefetch(["ptycho_torch/"], *walked)
    assert files.walk_and_read(("ptycho_torch/",)) == walked  # the audit takes the keyed walk once
    assert not files.prefetched(["ptycho_torch/"])
    registry = project / "knob_registry.yaml"
    registry.write_text(registry.read_text() + "\n# edited during the run\n")
    fastpath.remember("out", "err\n", 1)
    assert stored_runs(project) == []

    key, side, folder, walked = fastpath._key(request)
    monkeypatch.setattr(fastpath, "_pending", (request, key, side, folder))
    files.prefetch(["ptycho_torch/"], *walked)  # not taken: remember keys the whole run again
    (project / "ptycho_torch" / "extra.py").write_text("x = 1\n")
    fastpath.remember("out", "err\n", 1)
    assert stored_runs(project) == []
    files.walk_and_read(["ptycho_torch/"])


def test_parse_accepts_only_what_it_understands():
    plain = fastpath.parse(["--registry=r.yaml", "audit", "a", "--format=json", "-j2", "b", "--cache-dir", "c"])
    assert plain is not None
    assert (plain["registry"], plain["paths"], plain["cache_dir"]) == ("r.yaml", ["a", "b"], "c")
    for argv in (["audit"], ["knobs", "list"], ["--version"], ["audit", "a", "--help"], ["audit", "a", "--no-cache"],
                 ["audit", "a", "--", "b"], ["audit", "a", "--format"], ["audit", "a", "--exit-zero=1"],
                 ["audit", "a", "--registry", "r"], ["audit", "a", "--diff"]):
        assert fastpath.parse(argv) is None, argv


def test_fast_path_imports_neither_click_nor_yaml(project):
    run("audit", "ptycho_torch/")
    code = ("import sys\nfrom ptycho_knobs import fastpath\n"
            "sys.argv = ['ptycho-knobs', 'audit', 'ptycho_torch/']\n"
            "try:\n    fastpath.main()\nexcept SystemExit as exc:\n    print('EXIT', exc.code, file=sys.stderr)\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'yaml', 'dataclasses'))\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "EXIT 1" in proc.stderr and "HEAVY []" in proc.stderr, proc.stderr[-2000:]


def test_entry_point_and_spelled_out_choices():
    assert 'ptycho-knobs = "ptycho_knobs.fastpath:main"' in (ROOT / "pyproject.toml").read_text()
    from ptycho_knobs.audit.command import FORMATS
    from ptycho_knobs.audit.findings import OutputFormat
    from ptycho_knobs.knobs_command import CATEGORIES
    from ptycho_knobs.ktypes import Category

    assert FORMATS == tuple(f.value for f in OutputFormat)
    assert CATEGORIES == tuple(c.value for c in Category)
