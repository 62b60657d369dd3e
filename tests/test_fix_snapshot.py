"""`fix --write` on a copy of the real PtychoPINN snapshot (GPL test data: copied to a temp
folder, never into the repository): it edits only what it reports, every edited file still
compiles, the audit's counts drop by exactly the fixes, a second run is a no-op, and
`git diff` shows nothing but those edits."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from ptycho_knobs.cli import main

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(os.environ.get("PTYCHO_KNOBS_SNAPSHOT", "/work/shared/ptychopinn-aaa014e"))
REGISTRY = REPO / "knob_registry.yaml"

pytestmark = pytest.mark.slow


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    if not (SNAPSHOT / "ptycho_torch").is_dir():
        pytest.skip(f"the PtychoPINN snapshot is not at {SNAPSHOT} (set PTYCHO_KNOBS_SNAPSHOT)")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path_factory.mktemp("ptychopinn") / "tree"
    shutil.copytree(SNAPSHOT, root, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "snapshot")
    return root


def cli(root: Path, *args: str):
    here = os.getcwd()
    os.chdir(root)
    try:
        env = {"PTYCHO_KNOBS_CACHE_DIR": str(root.parent / "cache")}
        return CliRunner(env=env).invoke(main, ["--registry", str(REGISTRY), *args], catch_exceptions=False)
    finally:
        os.chdir(here)


def counts(root: Path) -> tuple[Counter, set]:
    result = cli(root, "audit", "ptycho_torch/", "--format", "json")
    findings = json.loads(result.stdout)
    return Counter(f["code"] for f in findings), {(f["code"], f["path"], f["line"], f["col"], f["knob"]) for f in findings}


def changed_lines(diff: str) -> dict[str, set[int]]:
    """file -> old line numbers removed or changed, from a unified diff with -U0."""
    out: dict[str, set[int]] = {}
    path = None
    for line in diff.splitlines():
        if line.startswith("--- a/"):
            path = line[6:]
        m = re.match(r"@@ -(\d+)(?:,(\d+))? ", line)
        if m and path:
            start, n = int(m.group(1)), int(m.group(2) or 1)
            out.setdefault(path, set()).update(range(start, start + n))
    return out


def test_fix_write_on_the_snapshot(copy):
    before, _ = counts(copy)
    shown = cli(copy, "fix", "ptycho_torch/", "--explain")
    assert shown.exit_code == 1
    patch = shown.stdout_bytes.decode()

    assert git(copy, "status", "--porcelain") == ""  # the dry run wrote nothing

    result = cli(copy, "fix", "ptycho_torch/", "--write", "--explain")
    assert result.exit_code == 1, result.stderr  # fixes applied, findings left
    # the dry run promised what --write did (both hold their edits to an audit of the fixed tree)
    promised = next(ln for ln in shown.stderr.splitlines() if ln.startswith("Would fix "))
    assert promised.replace("Would fix ", "Fixed ").replace(" (--write applies them)", "") == \
        next(ln for ln in result.stderr.splitlines() if ln.startswith("Fixed "))
    fixed = [ln for ln in result.stderr.splitlines() if re.search(r": PK\d+ (\[\w+\] )?fixed: ", ln)]
    summary = next(ln for ln in result.stderr.splitlines() if ln.startswith("Fixed "))
    head = re.match(r"Fixed (\d+) findings? \(([^)]*)\) in (\d+) files?", summary)
    assert head, result.stderr
    n_fixed = int(head.group(1))
    assert n_fixed == len(fixed) >= 2
    by_code = Counter(dict((c, int(n)) for c, n in re.findall(r"(PK\d+) x(\d+)", head.group(2))))

    # every edited file compiles, and the diff shows exactly the reported lines
    diff = git(copy, "diff", "-U0")
    edited = changed_lines(diff)
    assert len(edited) == int(head.group(3))
    for path in edited:
        compile((copy / path).read_bytes(), path, "exec")
    reported: dict[str, set[int]] = {}
    edited_but_reported = [ln for ln in result.stderr.splitlines() if "its edits were applied (at " in ln
                           and " not fixed: " in ln]
    for ln in fixed + edited_but_reported:
        at = re.search(r" \(at ([^()]+)\)", ln)
        places = at.group(1).split(", ") if at else [":".join(ln.split(":", 2)[:2])]
        for place in places:
            path, line = place.rsplit(":", 1)
            reported.setdefault(path, set()).add(int(line))
    assert edited == reported
    # what `fix` printed is what it wrote
    assert [ln for ln in git(copy, "diff").splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")] == \
        [ln for ln in patch.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert git(copy, "status", "--porcelain", "--untracked-files=all").splitlines() == \
        [f" M {p}" for p in sorted(edited)]

    # the audit's counts drop by exactly the fixes (and what they resolved along)
    after, _ = counts(copy)
    along = re.search(r"and \d+ more resolved along \(([^)]*)\)", summary)
    also = Counter(dict((c, int(n)) for c, n in re.findall(r"(PK\d+) x(\d+)", along.group(1)))) if along else Counter()
    # and what the fixed tree reports anew (a spec that still states the old default) is said
    new = re.search(r"reports \d+ findings? the old one did not \(([^)]*)\)", result.stderr)
    appeared = Counter(dict((c, int(n)) for c, n in re.findall(r"(PK\d+) x(\d+)", new.group(1)))) if new else Counter()
    for code in set(before) | set(after):
        assert after[code] == before[code] - by_code[code] - also[code] + appeared[code], \
            (code, before[code], after[code], by_code[code], also[code], appeared[code])

    # a second run changes nothing
    again = cli(copy, "fix", "ptycho_torch/", "--write")
    assert again.exit_code == 0 and again.stderr.startswith("Nothing to fix")
    assert git(copy, "diff", "-U0") == diff


def test_the_snapshot_edits_are_the_expected_ones(copy):
    """Spot checks of what the snapshot gets: a field source class through `self.`, a config
    after its late construction, and no edit before it (with both lines in the summary)."""
    diff = git(copy, "diff")
    if not diff:
        cli(copy, "fix", "ptycho_torch/", "--write")
        diff = git(copy, "diff")
    assert "+            accumulate_grad_batches=self.training_config.accum_steps,\n" in diff
    assert "+        enable_checkpointing=execution_config.enable_checkpointing,  # Enable checkpointing for early stopping\n" in diff
    assert "patience=execution_config" not in diff
    git(copy, "checkout", "--", ".")
    result = cli(copy, "fix", "ptycho_torch/", "--select", "PK001")
    assert re.search(r"execution_config defaults to None at line \d+ and is built only at line \d+: "
                     r"ptycho_torch/train\.py:\d+", result.stderr), result.stderr
