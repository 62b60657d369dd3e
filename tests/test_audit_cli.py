"""`ptycho-knobs audit` end to end on the fixture tree: snapshots of every format and exit
code, --fix-locations, baselines, robustness, the cache, and that nothing heavy is imported.

Update the snapshots with:  PTYCHO_KNOBS_UPDATE_SNAPSHOTS=1 pytest tests/test_audit_cli.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from project_helpers import enter_project

from ptycho_knobs.cli import main

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "audit_project"
EXPECTED = HERE / "fixtures" / "audit_expected"
UPDATE = "PTYCHO_KNOBS_UPDATE_SNAPSHOTS=1 pytest tests/test_audit_cli.py"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A private copy of the fixture tree as the working directory, with its own cache."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    return enter_project(monkeypatch, root, tmp_path / "cache")


def audit(*args: str):
    return CliRunner().invoke(main, ["audit", *args], catch_exceptions=False)


def snapshot(name: str, actual: str) -> None:
    path = EXPECTED / name
    if os.environ.get("PTYCHO_KNOBS_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.is_file(), f"missing snapshot {path}; create it with: {UPDATE}"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"snapshot {name} differs; if the change is intended, run: {UPDATE}"


FORMATS = ["text", "json", "sarif", "github"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_fixture_snapshot(project, fmt):
    result = audit("ptycho_torch/", "--tf-config", "ptycho/config/config.py", "--format", fmt)
    snapshot(f"{fmt}.out", f"exit code: {result.exit_code}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}")
    assert result.exit_code == 1
    if fmt == "json":
        data = json.loads(result.stdout)
        assert set(data[0]) == {"path", "line", "col", "end_line", "code", "rule", "knob", "message", "related"}
        drift = next(d for d in data if d["code"] == "PK002" and d["knob"] == "num_workers")
        assert drift["related"] == [{"path": "ptycho_torch/train.py", "line": 56, "message": "--num-workers"}]
    if fmt == "sarif":
        sarif = json.loads(result.stdout)
        assert sarif["version"] == "2.1.0"
        results = sarif["runs"][0]["results"]
        assert any("fixes" in r for r in results if r["ruleId"] == "PK003")
        divergent = next(r for r in results if r["ruleId"] == "PK014")
        assert divergent["relatedLocations"] == [{
            "id": 1, "physicalLocation": {"artifactLocation": {"uri": "ptycho_torch/train_utils.py"},
                                          "region": {"startLine": 37}},
            "message": {"text": "DataLoader(prefetch_factor=4)"}}]


def test_clean_selection_exits_zero(project):
    # file-local rules: the project-wide ones also read every file the registry points at
    result = audit("ptycho_torch/dataloader.py", "--select", "PK001,PK005")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr.startswith("All clean.")


def test_exit_zero_and_select_ignore(project):
    assert audit("ptycho_torch/", "--exit-zero").exit_code == 0
    result = audit("ptycho_torch/", "--select", "PK00", "--ignore", "PK001,PK002,PK003,PK004,PK005,PK006", "--format", "json")
    assert {f["code"] for f in json.loads(result.stdout)} == {"PK007"}


def test_fix_locations_round_trip(project):
    registry = project / "knob_registry.yaml"
    before = registry.read_text()
    diff = audit("ptycho_torch/", "--fix-locations", "--diff")
    assert diff.exit_code == 0 and registry.read_text() == before  # --diff writes nothing
    assert "-      - {file: ptycho_torch/train.py, line: 26, callee: EarlyStopping" in diff.stdout
    assert "+      - {file: ptycho_torch/train.py, line: 28, callee: EarlyStopping" in diff.stdout
    fixed = audit("ptycho_torch/", "--fix-locations")
    assert "Fixed 2 stale location(s)" in fixed.stderr
    after = registry.read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=False) if a != b]
    assert len(changed) == 2 and len(before.splitlines()) == len(after.splitlines())
    for a, b in changed:  # only the digits differ; comments and layout are untouched
        assert [x for x in a.split() if not x.rstrip(",").isdigit()] == [x for x in b.split() if not x.rstrip(",").isdigit()]
    assert [ln for ln in before.splitlines() if "#" in ln] == [ln for ln in after.splitlines() if "#" in ln]
    again = audit("ptycho_torch/", "--select", "PK003")
    assert (again.exit_code, again.stdout) == (0, "")


def test_baseline_survives_moves_and_catches_new(project):
    base = project / "baseline.json"
    assert audit("ptycho_torch/", "--write-baseline", str(base)).exit_code == 0
    assert audit("ptycho_torch/", "--baseline", str(base)).exit_code == 0
    utils = project / "ptycho_torch" / "train_utils.py"
    text = utils.read_text()
    utils.write_text(text.replace("import math\n", "import math\n\n\n# moved down\n\n"))
    moved = audit("ptycho_torch/", "--baseline", str(base), "--ignore", "PK003")
    assert (moved.exit_code, moved.stdout) == (0, ""), moved.stdout
    utils.write_text(utils.read_text() + "\n\ndef extra(ds):\n    return TensorDictDataLoader(ds, pin_memory=False)\n")
    new = audit("ptycho_torch/", "--baseline", str(base), "--ignore", "PK003", "--format", "json")
    found = [(f["code"], f["knob"]) for f in json.loads(new.stdout)]
    assert new.exit_code == 1 and found == [("PK014", "pin_memory")]  # False here, True elsewhere


def test_bad_baseline_is_usage_error(project):
    result = audit("ptycho_torch/", "--baseline", "nope.json")
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_robust_to_odd_files(project):
    odd = project / "ptycho_torch" / "odd"
    odd.mkdir()
    (odd / "latin1.py").write_bytes(b"# caf\xe9\nimport lightning as L\nL.Trainer(max_epochs=1)\n")
    (odd / "empty.py").write_text("")
    (odd / "huge.py").write_bytes(b"x = 1\n" * (1024 * 1024))  # 6 MB
    (odd / "loop").symlink_to(odd)
    (odd / "self.py").symlink_to(odd / "self.py")
    result = audit("ptycho_torch/odd", "--format", "json")
    got = sorted((f["path"], f["code"]) for f in json.loads(result.stdout))
    assert got == [
        ("ptycho_torch/odd/empty.py", "PK903"),
        ("ptycho_torch/odd/huge.py", "PK902"),
        ("ptycho_torch/odd/latin1.py", "PK900"),
        ("ptycho_torch/odd/loop", "PK902"),
        ("ptycho_torch/odd/self.py", "PK902"),
    ]
    assert result.exit_code == 1
    whole = audit("ptycho_torch/", "--format", "json")  # the rest of the tree is still audited
    assert {"PK001", "PK900", "PK902"} <= {f["code"] for f in json.loads(whole.stdout)}


def test_missing_path_and_bad_registry_exit_2(project):
    result = audit("no_such_dir/")
    assert result.exit_code == 2 and "no_such_dir/: no such file or directory" in result.stderr
    (project / "knob_registry.yaml").write_text("schema_version: 1\nknobs: [\n")
    result = audit("ptycho_torch/")
    assert result.exit_code == 2 and "knob_registry.yaml" in result.stderr
    result = CliRunner().invoke(main, ["--registry", "missing.yaml", "audit", "ptycho_torch/"])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_cache_hits_and_registry_change_invalidates(project):
    first = audit("ptycho_torch/", "--format", "json")
    assert "0 from cache" in first.stderr
    second = audit("ptycho_torch/", "--format", "json")
    assert "7 from cache" in second.stderr and "0 parsed" in second.stderr
    assert second.stdout == first.stdout
    registry = project / "knob_registry.yaml"
    registry.write_text(registry.read_text().replace("purpose: Hide the progress bar.", "purpose: Hide the bar."))
    third = audit("ptycho_torch/", "--format", "json")
    assert "0 from cache" in third.stderr
    assert "0 from cache" in audit("ptycho_torch/", "--no-cache").stderr


def test_jobs_give_the_same_result(project):
    one = audit("ptycho_torch/", "--no-cache", "--jobs", "1", "--format", "json")
    two = audit("ptycho_torch/", "--no-cache", "--jobs", "2", "--format", "json")
    assert one.stdout == two.stdout


def test_audit_never_imports_torch_or_lightning(project):
    code = ("import sys\nfrom ptycho_knobs.cli import main\n"
            "try:\n    main(['audit', 'ptycho_torch/', '--no-cache', '--tf-config', 'ptycho/config/config.py'])\n"
            "except SystemExit:\n    pass\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'pytorch_lightning', 'tensorflow'))\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project)
    assert "HEAVY []" in proc.stderr, proc.stderr[-2000:]


def test_self_audit_of_audit_package_is_clean(monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    result = audit("ptycho_knobs/audit/", "--no-cache")
    assert (result.exit_code, result.stdout) == (0, "")


def test_help_names_every_rule():
    """The help text is static (so --help loads no rule module); it must not fall behind."""
    from ptycho_knobs.audit.rule import all_rules

    text = " ".join(CliRunner().invoke(main, ["audit", "--help"]).stdout.split())
    missing = [f"{r.CODE} {r.NAME}" for r in all_rules() if f"{r.CODE} {r.NAME}" not in text]
    assert not missing, f"audit --help does not list {missing}"
