"""`generate` with the registry's `spec:` block, end to end, on a spec of our own in the real shapes.

tests/test_spec_real.py does the same against the real PtychoPINN spec where its snapshot is on
the machine; this runs everywhere.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_spec_shapes import ROOT, parse_bullets, parse_table, registry_with_spec, section_text

from ptycho_knobs.cli import main
from ptycho_knobs.codegen.spec_context import SPEC_TEMPLATES
from ptycho_knobs.codegen.splice import begin_marker, end_marker

FIXTURE = ROOT / "tests" / "fixtures" / "specs" / "spec_execution_contract.md"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "knob_registry.yaml").write_text(registry_with_spec(), encoding="utf-8")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "ptychodus_api_spec.md").write_bytes(FIXTURE.read_bytes())
    return tmp_path


def generate(folder: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--registry", str(folder / "knob_registry.yaml"), "generate", "--no-cache", *args])


def test_generate_fills_the_spec_and_then_leaves_it_alone(project: Path) -> None:
    spec = project / "specs" / "ptychodus_api_spec.md"
    result = generate(project)
    assert result.exit_code == 0, result.output
    old, new = FIXTURE.read_text(encoding="utf-8"), spec.read_text(encoding="utf-8")
    # outside the markers: the original, less the replaced list, tables and deprecated lists
    outside = re.sub(r"<!-- BEGIN ptycho-knobs: (\S+) -->\n.*?<!-- END ptycho-knobs: \1 -->\n", "@@\n", new, flags=re.S)
    start, end = old.index("1. **Trainer Knobs:**"), old.index("\n\n**CLI Integration:**") + 1
    expected = old[:start] + "@@\n" + old[end:]
    for table in re.findall(r"\| CLI Flag.*?\n(?=\n)", expected, flags=re.S):
        expected = expected.replace(table, "@@\n", 1)
    expected = expected.replace("- `--device` (str): Draft.\n", "@@\n")
    assert outside == expected
    assert "- **MUST** be validated when it is built." in new and "## 4.9. not a heading: inside a fence" in new
    assert "see §4.9 for the rules.\t\n" in new
    assert len(parse_bullets(section_text(new, "#### 4.9."))) > 30
    assert len(parse_table(section_text(new, "#### 7.1."))[1]) == 13
    for name in ("execution-config-fields", "training-cli-flags", "training-cli-deprecated-flags",
                 "inference-cli-flags", "inference-cli-deprecated-flags"):
        assert new.count(begin_marker(name)) == new.count(end_marker(name)) == 1
    mtime = spec.stat().st_mtime_ns
    again = generate(project)
    assert again.exit_code == 0 and "0 files written" in again.output and spec.stat().st_mtime_ns == mtime
    assert generate(project, "--check").exit_code == 0
    spec.write_text(new.replace("MUST be ≥ 0. Exposed via `--num-workers`.", "Exposed via `--num-workers`."),
                    encoding="utf-8")
    stale = generate(project, "--check")
    assert stale.exit_code == 1 and "specs/ptychodus_api_spec.md" in stale.output
    assert "+   - `num_workers` (int, default `4`): DataLoader worker processes" in stale.output


def test_registry_errors_in_the_spec_block_are_located(project: Path) -> None:
    registry = project / "knob_registry.yaml"
    text = registry.read_text(encoding="utf-8")
    cases = [
        ('section: "7.2", block: table, template: spec_flag_table.md.j2, cli: inference',
         'section: "7.3", block: table, template: spec_flag_table.md.j2, cli: inference',
         r"spec section 'inference-cli-flags': \S+ has no heading numbered '7\.3'"),
        ("template: spec_field_bullets.md.j2}", "template: nope.md.j2}",
         r"spec section 'execution-config-fields': no template 'nope\.md\.j2'"),
        ("template: spec_flag_table.md.j2, cli: train}", "template: spec_flag_table.md.j2}",
         r"spec section 'training-cli-flags': template spec_flag_table\.md\.j2 needs .*'cli' is undefined"),
        ('section: "4.9"', "section: 4.9",
         r"spec section execution-config-fields: section must be a number in quotes or a heading title, not 4\.9"),
    ]
    spec = project / "specs" / "ptychodus_api_spec.md"
    for old, new, pattern in cases:
        assert old in text
        registry.write_text(text.replace(old, new, 1), encoding="utf-8")
        result = generate(project)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        line = next(i for i, row in enumerate(registry.read_text(encoding="utf-8").splitlines(), 1) if new in row)
        assert re.search(rf"knob_registry\.yaml:{line}:\d+: {pattern}", result.output), result.output
        assert spec.read_bytes() == FIXTURE.read_bytes() and not (project / "generated").exists()


def test_every_spec_template_is_compiled_by_any_generate(tmp_path: Path) -> None:
    """A broken spec template fails the tool's own `generate --check` (the repo enables no spec).
    A real process: in this one jinja may hold the compiled templates in memory already."""
    cache = tmp_path / "cache"
    cli = str(Path(sys.executable).parent / "ptycho-knobs")
    result = subprocess.run([cli, "--registry", str(ROOT / "knob_registry.yaml"), "generate", "--check",
                             "--cache-dir", str(cache)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert len(list(cache.glob("jinja-*.pkc"))) == len(list((ROOT / "templates").glob("*.j2"))) >= 5 + len(SPEC_TEMPLATES)


_PROBE = """
import sys
from ptycho_knobs.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    print("exit", exit.code, "jinja2" in sys.modules, file=sys.stderr)
"""


def test_a_cached_check_renders_nothing_but_still_reads_the_spec(project: Path) -> None:
    """The rendered parts are cached with the generated files: a repeated `--check` imports no
    jinja2, and still compares the spec on disk (a hand edit is stale)."""
    args = [sys.executable, "-c", _PROBE, "--registry", str(project / "knob_registry.yaml"), "generate",
            "--cache-dir", str(project / "cache")]

    def run(*extra: str) -> str:
        return subprocess.run([*args, *extra], capture_output=True, text=True, timeout=120, check=False).stderr

    assert "exit 0 True" in run()
    assert "exit 0 False" in run("--check")
    spec = project / "specs" / "ptychodus_api_spec.md"
    spec.write_text(spec.read_text(encoding="utf-8").replace("`'auto'`", "`'cpu'`", 1), encoding="utf-8")
    stale = run("--check")
    assert "exit 1 False" in stale and "1 stale" in stale
