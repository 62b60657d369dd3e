"""`ptycho-knobs fix` end to end: the diff applies with `git apply` and `patch -p1`, --write
is atomic, keeps modes and symlinks, refuses files changed since the audit, is idempotent;
exit codes; SARIF carries the same fixes; nothing heavy is imported where it must not be."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fix_helpers import EXAMPLE, make_tree

from ptycho_knobs.cli import main

SOURCE = (
    "import lightning as L\n"
    "from lightning.pytorch.callbacks import EarlyStopping\n"
    "from ptycho.config.config import PyTorchExecutionConfig\n"
    "\n"
    "\n"
    "def build(cfg: PyTorchExecutionConfig):\n"
    "    stop = EarlyStopping('val_loss', patience=100)  # é stays\n"
    "    return L.Trainer(\n"
    "        callbacks=[stop],\n"
    "        check_val_every_n_epoch=1,  # every epoch\n"
    "        enable_progress_bar=True,\n"
    "    )\n"
    "\n"
    "\n"
    "def orphan():\n"
    "    return EarlyStopping('val_loss', patience=100)\n"
)
FIXED = (SOURCE.replace("patience=100)  #", "patience=cfg.early_stop_patience)  #")
         .replace("check_val_every_n_epoch=1,", "check_val_every_n_epoch=cfg.check_val_every_n_epoch,")
         .replace("enable_progress_bar=True,", "enable_progress_bar=cfg.enable_progress_bar,"))
GIT = shutil.which("git")
PATCH = shutil.which("patch")


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture
def tree(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "repo", SOURCE)
    monkeypatch.chdir(root)
    monkeypatch.setenv("PTYCHO_KNOBS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PTYCHO_KNOBS_REGISTRY", raising=False)
    return root


def fix(*args: str):
    return CliRunner().invoke(main, ["fix", *args], catch_exceptions=False)


def committed(root: Path) -> Path:
    if GIT is None:
        pytest.skip("git is not installed")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "before")
    return root


def test_diff_then_write(tree):
    result = fix("ptycho_torch/", "--select", "PK001")
    assert result.exit_code == 1  # fixes shown
    out = result.stdout_bytes.decode()
    assert out.startswith(f"--- a/{EXAMPLE}\n+++ b/{EXAMPLE}\n@@ ")
    assert "+    stop = EarlyStopping('val_loss', patience=cfg.early_stop_patience)  # é stays\n" in out
    assert (tree / EXAMPLE).read_text() == SOURCE  # nothing written
    assert "Would fix 3 findings (PK001 x3) in 1 file (--write applies them); 1 left (PK001 x1)" in result.stderr
    assert f"orphan() at {EXAMPLE}:15 has no PyTorchExecutionConfig: {EXAMPLE}:16" in result.stderr

    result = fix("ptycho_torch/", "--select", "PK001", "--write")
    assert result.exit_code == 1  # applied, one finding left
    assert (tree / EXAMPLE).read_text() == FIXED
    assert result.stderr.startswith("Fixed 3 findings (PK001 x3) in 1 file; 1 left")


def test_second_run_changes_nothing_and_the_audit_agrees(tree):
    before = CliRunner().invoke(main, ["audit", "ptycho_torch/", "--select", "PK001", "--format", "json"])
    assert len(json.loads(before.stdout)) == 4
    assert fix("ptycho_torch/", "--select", "PK001", "--write").exit_code == 1
    first = (tree / EXAMPLE).read_bytes()
    again = fix("ptycho_torch/", "--select", "PK001", "--write")
    assert again.exit_code == 0 and again.stdout_bytes == b""
    assert again.stderr.startswith("Nothing to fix; 1 left")
    assert (tree / EXAMPLE).read_bytes() == first
    after = CliRunner().invoke(main, ["audit", "ptycho_torch/", "--select", "PK001", "--format", "json"])
    assert [f["line"] for f in json.loads(after.stdout)] == [16]


@pytest.mark.parametrize("tool", ["git", "patch"])
def test_the_diff_applies(tree, tool):
    if (GIT if tool == "git" else PATCH) is None:
        pytest.skip(f"{tool} is not installed")
    odd = "# -*- coding: utf-8 -*-\r\nimport lightning as L\r\ncfg = 1\r\n" \
          "def f(execution_config):\r\n    return L.Trainer(check_val_every_n_epoch=2)"  # CRLF, no final newline
    (tree / "ptycho_torch" / "odd.py").write_bytes(odd.encode())
    committed(tree)
    diff = fix("ptycho_torch/", "--select", "PK001").stdout_bytes
    assert b"\\ No newline at end of file\n" in diff
    fix("ptycho_torch/", "--select", "PK001", "--write")
    want = {p: (tree / p).read_bytes() for p in (EXAMPLE, "ptycho_torch/odd.py")}
    git(tree, "checkout", "--", ".")
    cmd = ["git", "apply", "-"] if tool == "git" else ["patch", "-p1", "--quiet"]
    subprocess.run(cmd, input=diff, cwd=tree, check=True)
    assert {p: (tree / p).read_bytes() for p in want} == want
    assert want["ptycho_torch/odd.py"].endswith(b"check_val_every_n_epoch=execution_config.check_val_every_n_epoch)")


def test_paths_in_the_diff_are_relative_to_where_it_ran(tree, monkeypatch):
    monkeypatch.chdir(tree / "ptycho_torch")
    out = fix(".", "--select", "PK001").stdout_bytes.decode()
    assert out.startswith("--- a/example.py\n+++ b/example.py\n")


def test_exit_codes_and_selection(tree):
    nothing = fix("ptycho_torch/", "--select", "PK005")  # a rule without edits
    assert (nothing.exit_code, nothing.stdout_bytes) == (0, b"")
    assert nothing.stderr.startswith("Nothing to fix")
    ignored = fix("ptycho_torch/", "--ignore", "PK001").stdout_bytes.decode()
    assert not [ln for ln in ignored.splitlines() if ln.startswith("+") and "cfg." in ln]
    assert fix("nowhere/").exit_code == 2
    (tree / EXAMPLE).write_text(SOURCE.split("\n\ndef orphan")[0] + "\n")
    result = fix("ptycho_torch/", "--select", "PK001", "--write")
    assert (result.exit_code, result.stderr) == (0, "Fixed 3 findings (PK001 x3) in 1 file; nothing left.\n")


def test_explain_lists_every_finding(tree):
    result = fix("ptycho_torch/", "--select", "PK001", "--explain")
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith(EXAMPLE)]
    assert lines[0] == (f"{EXAMPLE}:7:38: PK001 [early_stop_patience] would fix: "
                        "early_stop_patience: take it from PyTorchExecutionConfig.early_stop_patience")
    assert lines[-1].startswith(f"{EXAMPLE}:16:38: PK001 [early_stop_patience] not fixed: no config object in scope")


def test_a_file_changed_since_the_audit_is_not_written(tree, monkeypatch):
    import ptycho_knobs.fix.engine as engine

    real = engine.plan_fixes

    def racing(*args, **kwargs):
        plan = real(*args, **kwargs)
        (tree / EXAMPLE).write_text(SOURCE + "# edited meanwhile\n")
        return plan

    monkeypatch.setattr(engine, "plan_fixes", racing)
    result = fix("ptycho_torch/", "--select", "PK001", "--write")
    assert result.exit_code == 2
    assert f"error: {EXAMPLE}: it changed since the audit read it; not written (run fix again)" in result.stderr
    assert (tree / EXAMPLE).read_text() == SOURCE + "# edited meanwhile\n"
    assert not [p for p in (tree / "ptycho_torch").iterdir() if p.name.endswith(".tmp")]


def test_a_file_libcst_cannot_parse_is_never_edited(tree, monkeypatch):
    import libcst

    def broken(*args, **kwargs):
        raise libcst.ParserSyntaxError("unsupported syntax", lines=["x"], raw_line=1, raw_column=0)

    monkeypatch.setattr(libcst, "parse_module", broken)
    result = fix("ptycho_torch/", "--select", "PK001", "--write")
    assert result.exit_code == 0
    assert "libcst cannot parse" in result.stderr
    assert (tree / EXAMPLE).read_text() == SOURCE


def test_write_keeps_the_mode_and_writes_through_symlinks(tree):
    target = tree / EXAMPLE
    target.chmod(0o750)
    real = tree / "real_example.py"
    target.rename(real)
    target.symlink_to(real)
    fix("ptycho_torch/", "--select", "PK001", "--write")
    assert target.is_symlink() and real.read_text() == FIXED
    assert stat.S_IMODE(real.stat().st_mode) == 0o750


def test_sarif_fixes_are_the_same_edits(tree):
    result = CliRunner().invoke(main, ["audit", "ptycho_torch/", "--select", "PK001", "--format", "sarif"])
    sarif = json.loads(result.stdout)
    results = sarif["runs"][0]["results"]
    with_fix = [r for r in results if "fixes" in r]
    assert len(with_fix) == 3 and len(results) == 4
    lines = SOURCE.split("\n")
    reps = [rep for r in with_fix for change in r["fixes"][0]["artifactChanges"] for rep in change["replacements"]]
    assert {change["artifactLocation"]["uri"] for r in with_fix for change in r["fixes"][0]["artifactChanges"]} == {EXAMPLE}
    for rep in sorted(reps, key=lambda r: (r["deletedRegion"]["startLine"], r["deletedRegion"]["startColumn"]), reverse=True):
        region = rep["deletedRegion"]
        assert region["startLine"] == region["endLine"]
        line = lines[region["startLine"] - 1]
        lines[region["startLine"] - 1] = (line[:region["startColumn"] - 1] + rep["insertedContent"]["text"]
                                          + line[region["endColumn"] - 1:])
    assert "\n".join(lines) == FIXED
    assert with_fix[0]["fixes"][0]["description"]["text"].startswith("early_stop_patience: take it from")


def test_help_audit_and_generate_never_import_libcst_torch_or_lightning(tree):
    code = ("import sys\nfrom ptycho_knobs.cli import main\n"
            "for args in (['--help'], ['fix', '--help'], ['audit', 'ptycho_torch/', '--no-cache'],\n"
            "             ['audit', 'ptycho_torch/', '--no-cache', '--format', 'json']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'libcst'})\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tree)
    assert "HEAVY []" in proc.stderr, proc.stderr[-2000:]
    code = code.replace("['--help'], ['fix', '--help'], ", "").replace(
        "['audit', 'ptycho_torch/', '--no-cache', '--format', 'json']", "['fix', 'ptycho_torch/', '--no-cache']")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tree)
    assert "HEAVY ['libcst']" in proc.stderr, proc.stderr[-2000:]
