"""`generate` against the real PtychoPINN spec (the snapshot named by PTYCHO_KNOBS_SNAPSHOT, copied to tmp).

A project folder that mirrors PtychoPINN's layout: `knob_registry.yaml` (the repo's, with its
`spec:` block enabled) beside `specs/ptychodus_api_spec.md`. Skipped where the snapshot is absent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_spec_shapes import (
    REAL_SPEC,
    needs_real_spec,
    parse_bullets,
    parse_table,
    registry_with_spec,
    registry_without_spec,
    section_text,
)

from ptycho_knobs.cli import main
from ptycho_knobs.codegen.splice import begin_marker, end_marker, scan

pytestmark = needs_real_spec

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("execution-config-fields", "training-cli-flags", "training-cli-deprecated-flags",
         "inference-cli-flags", "inference-cli-deprecated-flags")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "knob_registry.yaml").write_text(registry_with_spec(), encoding="utf-8")
    (tmp_path / "specs").mkdir()
    spec = tmp_path / "specs" / "ptychodus_api_spec.md"
    spec.write_bytes(REAL_SPEC.read_bytes())
    return tmp_path


def generate(folder: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--registry", str(folder / "knob_registry.yaml"), "generate", "--no-cache", *args])


def spec_of(folder: Path) -> Path:
    return folder / "specs" / "ptychodus_api_spec.md"


# -- the replaced blocks, found independently of the splicer --------------------------------


def _run(lines: list[str], start: int, keep: Any) -> tuple[int, int]:
    end = start
    while end < len(lines) and keep(lines[end]):
        end += 1
    return start, end


def original_blocks(text: str) -> dict[str, tuple[int, int]]:
    """name -> (first line, line after the last) of each block the first run replaces."""
    lines = text.splitlines(keepends=True)

    def after(prefix: str, start: int = 0) -> int:
        return next(i for i in range(start, len(lines)) if lines[i].startswith(prefix))

    s49, s71, s72 = after("#### 4.9."), after("#### 7.1."), after("#### 7.2.")
    fields_start = after("1. **Lightning Trainer Knobs:**", s49)
    fields_end = after("**CLI Integration:**", s49)
    while not lines[fields_end - 1].strip():
        fields_end -= 1
    table = lambda line: line.startswith("|")  # noqa: E731
    bullet = lambda line: line.startswith("- ")  # noqa: E731
    return {
        "execution-config-fields": (fields_start, fields_end),
        "training-cli-flags": _run(lines, after("| CLI Flag", s71), table),
        "training-cli-deprecated-flags": _run(lines, after("- `--device`", s71), bullet),
        "inference-cli-flags": _run(lines, after("| CLI Flag", s72), table),
        "inference-cli-deprecated-flags": _run(lines, after("- `--device`", s72), bullet),
    }


def without_blocks(text: str, blocks: dict[str, tuple[int, int]]) -> str:
    lines = text.splitlines(keepends=True)
    for name, (start, end) in sorted(blocks.items(), key=lambda item: -item[1][0]):
        eol = "\r\n" if lines[start].endswith("\r\n") else "\n"
        lines[start:end] = [f"@@{name}@@{eol}"]
    return "".join(lines)


def marker_blocks(text: str) -> dict[str, tuple[int, int]]:
    lines = text.splitlines(keepends=True)
    out = {}
    for name in NAMES:
        begins = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == begin_marker(name)]
        ends = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == end_marker(name)]
        assert len(begins) == len(ends) == 1, name
        out[name] = (begins[0], ends[0] + 1)
    return out


def headings(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    return [lines[h.index] for h in scan(lines)[0]]


# -- first run, second run, check -------------------------------------------------------------


def test_first_run_marks_and_replaces_only_the_two_shapes(project: Path) -> None:
    spec = spec_of(project)
    old = spec.read_text(encoding="utf-8")
    result = generate(project)
    assert result.exit_code == 0, result.output
    assert "wrote specs/ptychodus_api_spec.md" in result.output or "ptychodus_api_spec.md" in result.output
    new = spec.read_text(encoding="utf-8")
    # every byte outside the markers is the original's, outside the five replaced blocks
    assert without_blocks(new, marker_blocks(new)) == without_blocks(old, original_blocks(old))
    # headings, their numbering and the prose references are untouched
    assert headings(new) == headings(old)
    for ref in ("§4.9", "§4.8", "§5", "see §4.9 for validation rules"):
        assert new.count(ref) == old.count(ref) > 0
    # what is inside the markers reads back in the real shapes
    bullets = parse_bullets(section_text(new, "#### 4.9."))
    assert {"accelerator", "enable_progress_bar", "accum_steps", "scheduler"} <= {b.name for b in bullets}
    assert len({b.category for b in bullets}) >= 5
    _, train = parse_table(section_text(new, "#### 7.1."))
    _, inference = parse_table(section_text(new, "#### 7.2."))
    assert len(train) == 13 and len(inference) == 4
    assert {r.flags[0] for r in inference} == {"--accelerator", "--quiet", "--num-workers", "--inference-batch-size"}
    assert "- `--disable_mlflow` (flag)" in section_text(new, "#### 7.1.")
    assert "--disable_mlflow" not in section_text(new, "#### 7.2.")
    # the first list of §4.9 (the MUST NOT / SHALL / IS bullets) is not the generated one
    assert "- **MUST NOT** populate `params.cfg`" in new
    assert spec.read_bytes().count(b"\r") == 0


def test_second_run_is_a_no_op_and_check_passes(project: Path) -> None:
    assert generate(project).exit_code == 0
    spec = spec_of(project)
    first, mtime = spec.read_bytes(), spec.stat().st_mtime_ns
    again = generate(project)
    assert again.exit_code == 0 and "0 files written" in again.output
    assert spec.read_bytes() == first and spec.stat().st_mtime_ns == mtime
    assert generate(project, "--check").exit_code == 0


def test_check_reports_a_hand_edit_inside_the_markers(project: Path) -> None:
    assert generate(project).exit_code == 0
    spec = spec_of(project)
    fresh = spec.read_bytes()
    edited = fresh.replace(b"| `--num-workers` | int | `4` |", b"| `--num-workers` | int | `0` |", 1)
    assert edited != fresh
    spec.write_bytes(edited)
    result = generate(project, "--check")
    assert result.exit_code == 1
    assert re.search(r"^--- a/\S*specs/ptychodus_api_spec\.md$", result.output, re.M)
    assert "-| `--num-workers` | int | `0` |" in result.output and "+| `--num-workers` | int | `4` |" in result.output
    assert "1 stale" in result.output
    assert spec.read_bytes() == edited  # --check writes nothing
    assert generate(project).exit_code == 0 and spec.read_bytes() == fresh


def test_check_before_the_first_run_reports_the_spec(project: Path) -> None:
    old = spec_of(project).read_bytes()
    result = generate(project, "--check")
    assert result.exit_code == 1 and "+" + begin_marker("training-cli-flags") in result.output
    assert spec_of(project).read_bytes() == old


def test_crlf_trailing_blanks_and_no_final_newline_survive(project: Path) -> None:
    spec = spec_of(project)
    text = REAL_SPEC.read_text(encoding="utf-8")
    text = text.replace("Terminology note\n", "Terminology note   \n").replace("\n### 8.", "\t\n### 8.")
    text = text.rstrip("\n").replace("\n", "\r\n")
    spec.write_bytes(text.encode("utf-8"))
    assert generate(project).exit_code == 0
    new = spec.read_bytes().decode("utf-8")
    assert "\n" not in new.replace("\r\n", "") and not new.endswith("\n")
    assert without_blocks(new, marker_blocks(new)) == without_blocks(text, original_blocks(text))
    assert "Terminology note   \r\n" in new and "\t\r\n### 8." in new
    first = spec.read_bytes()
    assert generate(project).exit_code == 0 and spec.read_bytes() == first


def test_a_section_named_by_its_title_works_too(project: Path) -> None:
    registry = project / "knob_registry.yaml"
    text = registry.read_text(encoding="utf-8").replace('section: "7.2"', 'section: "Inference CLI Execution Flags"')
    registry.write_text(text, encoding="utf-8")
    assert generate(project).exit_code == 0
    assert begin_marker("inference-cli-flags") in section_text(spec_of(project).read_text(encoding="utf-8"), "#### 7.2.")


# -- which spec: the registry's, --spec-file, --no-spec -------------------------------------


def test_missing_spec_file_is_an_error_at_the_registry_line(tmp_path: Path) -> None:
    registry = tmp_path / "knob_registry.yaml"
    registry.write_text(registry_with_spec(), encoding="utf-8")
    line = registry.read_text(encoding="utf-8").splitlines().index("  file: specs/ptychodus_api_spec.md") + 1
    result = generate(tmp_path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert re.search(rf"knob_registry\.yaml:{line}:9: spec\.file 'specs/ptychodus_api_spec\.md': .* does not exist",
                     result.output)
    assert "--no-spec" in result.output
    assert not (tmp_path / "generated").exists()  # nothing written
    skipped = generate(tmp_path, "--no-spec")
    assert skipped.exit_code == 0 and "ptychodus_api_spec" not in skipped.output
    assert (tmp_path / "generated" / "execution_config.py").is_file()


def test_spec_file_option_overrides_the_registry_file(tmp_path: Path) -> None:
    (tmp_path / "knob_registry.yaml").write_text(registry_with_spec("docs/missing.md"), encoding="utf-8")
    spec = tmp_path / "elsewhere.md"
    spec.write_bytes(REAL_SPEC.read_bytes())
    result = generate(tmp_path, "--spec-file", str(spec))
    assert result.exit_code == 0, result.output
    assert spec.read_text(encoding="utf-8").count("<!-- BEGIN ptycho-knobs: ") == 5
    assert generate(tmp_path, "--check", "--spec-file", str(spec)).exit_code == 0


def test_insert_section_and_no_spec_do_not_mix_with_a_spec_block(project: Path) -> None:
    old = spec_of(project).read_bytes()
    result = generate(project, "--spec-file", str(spec_of(project)), "--insert-section")
    assert result.exit_code == 2 and "--insert-section is for the section-6 splice" in result.output
    assert generate(project, "--no-spec", "--spec-file", str(spec_of(project))).exit_code == 2
    assert spec_of(project).read_bytes() == old


def test_spec_and_generated_files_are_written_all_or_nothing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = spec_of(project).read_bytes()
    real_replace = os.replace

    def failing_on_the_spec(src: Any, dst: Any) -> None:
        if str(dst).endswith("ptychodus_api_spec.md"):
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_on_the_spec)
    result = generate(project)
    assert result.exit_code == 2 and "nothing was changed" in result.output
    assert spec_of(project).read_bytes() == old
    assert not any((project / "generated").iterdir())  # the generated files written first were taken back
    assert sorted(p.name for p in spec_of(project).parent.iterdir()) == ["ptychodus_api_spec.md"]


# -- an ambiguous spec is refused, located, and left as it was -------------------------------


def refused(folder: Path, spec: Path, pattern: str, *args: str) -> re.Match[str]:
    before = spec.read_bytes()
    out = folder / "generated"
    generated = {p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else {}
    result = generate(folder, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    m = re.search(rf"error: \S*{re.escape(spec.name)}:(\d+):(\d+): {pattern}", result.output)
    assert m, result.output
    assert spec.read_bytes() == before
    assert ({p.name: p.read_bytes() for p in out.iterdir()} if out.exists() else {}) == generated
    return m


def line_of(spec: Path, prefix: str, nth: int = 0) -> int:
    lines = spec.read_text(encoding="utf-8").splitlines()
    return [i for i, line in enumerate(lines) if line.startswith(prefix)][nth] + 1


@pytest.mark.parametrize("where", ["before", "after"])
def test_two_4_9_headings_are_refused(project: Path, where: str) -> None:
    spec = spec_of(project)
    text = spec.read_text(encoding="utf-8")
    anchor = "#### 4.1. Entry Points" if where == "before" else "### 5. Configuration Field Reference"
    spec.write_text(text.replace(anchor, "#### 4.9. Another execution contract\n\nDraft.\n\n" + anchor, 1),
                    encoding="utf-8")
    m = refused(project, spec, r"two headings match section '4\.9' of 'execution-config-fields'")
    assert int(m.group(1)) == line_of(spec, "#### 4.9.", 1) and m.group(2) == "1"


@pytest.mark.parametrize("damage", ["duplicate BEGIN", "duplicate END", "BEGIN without END", "END without BEGIN"])
def test_broken_markers_are_refused(project: Path, damage: str) -> None:
    assert generate(project).exit_code == 0
    spec = spec_of(project)
    name = "training-cli-flags"
    lines = spec.read_text(encoding="utf-8").splitlines(keepends=True)
    begin = lines.index(begin_marker(name) + "\n")
    end = lines.index(end_marker(name) + "\n")
    if damage == "duplicate BEGIN":
        lines.insert(begin + 3, lines[begin])
        pattern, at = "BEGIN marker of 'training-cli-flags' appears twice", begin + 3
    elif damage == "duplicate END":
        lines.insert(end + 2, lines[end])
        pattern, at = "END marker of 'training-cli-flags' appears twice", end + 2
    elif damage == "BEGIN without END":
        del lines[end]
        pattern, at = "BEGIN marker of 'training-cli-flags' has no END marker", begin
    else:
        del lines[begin]
        pattern, at = "END marker of 'training-cli-flags' has no BEGIN marker", end - 1
    spec.write_text("".join(lines), encoding="utf-8")
    m = refused(project, spec, pattern)
    assert int(m.group(1)) == at + 1


def test_markers_moved_out_of_their_section_are_refused(project: Path) -> None:
    assert generate(project).exit_code == 0
    spec = spec_of(project)
    text = spec.read_text(encoding="utf-8")
    block = text[text.index(begin_marker("inference-cli-flags")):text.index(end_marker("inference-cli-flags"))]
    block += end_marker("inference-cli-flags") + "\n"
    text = text.replace(block, "").replace("### 9. Architectural", block + "\n### 9. Architectural")
    spec.write_text(text, encoding="utf-8")
    refused(project, spec, r"the markers of 'inference-cli-flags' are outside section '7\.2'")


def test_markers_of_a_section_the_registry_does_not_name_are_refused(project: Path) -> None:
    spec = spec_of(project)
    text = spec.read_text(encoding="utf-8")
    spec.write_text(text.replace("### 9. Architectural Rationale\n",
                                 "### 9. Architectural Rationale\n\n<!-- BEGIN ptycho-knobs: old-name -->\nx\n"
                                 "<!-- END ptycho-knobs: old-name -->\n", 1), encoding="utf-8")
    refused(project, spec, "markers of 'old-name', which the registry's spec: block does not name")


# -- without a spec: block: section 6, as before ---------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_two_section_6_headings_are_refused_in_section_6_mode(tmp_path: Path, where: str) -> None:
    """The real §6 is KEY_MAPPINGS; a second `### 6.` (ours, in either order) makes it ambiguous."""
    spec = tmp_path / "ptychodus_api_spec.md"
    text = REAL_SPEC.read_text(encoding="utf-8")
    ours = "### 6. PyTorch execution configuration\n\nDraft.\n\n"
    anchor = "### 6. `KEY_MAPPINGS`" if where == "before" else "### 7. CLI Reference"
    spec.write_text(text.replace(anchor, ours + anchor, 1), encoding="utf-8")
    before = spec.read_bytes()
    for extra in ([], ["--insert-section"]):
        result = CliRunner().invoke(main, ["--registry", str(registry_without_spec(tmp_path)), "generate", "--no-cache",
                                           "--out", str(tmp_path / "gen"), "--spec-file", str(spec), *extra])
        assert result.exit_code == 2
        m = re.search(r"ptychodus_api_spec\.md:(\d+):1: two section 6 headings", result.output)
        assert m and int(m.group(1)) == line_of(spec, "### 6.", 1), result.output
        assert spec.read_bytes() == before and not (tmp_path / "gen").exists()


def test_section_6_mode_still_refuses_the_real_key_mappings_section(tmp_path: Path) -> None:
    spec = tmp_path / "ptychodus_api_spec.md"
    spec.write_bytes(REAL_SPEC.read_bytes())
    result = CliRunner().invoke(main, ["--registry", str(registry_without_spec(tmp_path)), "generate", "--no-cache",
                                       "--out", str(tmp_path / "gen"), "--spec-file", str(spec)])
    assert result.exit_code == 2 and "section 6 of this spec is '6. `KEY_MAPPINGS` Specification'" in result.output
    assert spec.read_bytes() == REAL_SPEC.read_bytes()
