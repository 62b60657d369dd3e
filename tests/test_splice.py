"""Splicing section 6 into a long, realistic spec: every other byte stays where it was."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ptycho_knobs.cli import main
from ptycho_knobs.codegen.splice import BEGIN, END, SpliceError, splice_text

SPECS = Path(__file__).parent / "fixtures" / "specs"
REGISTRY = Path(__file__).resolve().parents[1] / "knob_registry.yaml"
BODY = "## 6. PyTorch execution configuration\n\nGenerated text.\n\n### 6.1 Trainer\n\n| a | b |\n|---|---|\n"


def read(name: str) -> str:
    return (SPECS / name).read_bytes().decode("utf-8")


def test_other_section_6_is_refused_with_its_location() -> None:
    with pytest.raises(SpliceError) as info:
        splice_text(read("ptychodus_api_spec.md"), BODY, "spec.md")
    first = str(info.value).splitlines()[0]
    assert first.startswith("spec.md:93:1: section 6 of this spec is '6. Error handling'")
    assert "--insert-section" in str(info.value) and BEGIN in str(info.value)


def test_insert_renumbers_later_headings_only() -> None:
    old = read("ptychodus_api_spec.md")
    new = splice_text(old, BODY, "spec.md", insert=True)
    at = old.index("## 6. Error handling")
    assert new[:at] == old[:at]
    rest = new[at:]
    assert rest.startswith(BEGIN + "\n" + BODY + END + "\n\n## 7. Error handling")
    renumbered = old[at:]
    for a, b in [("## 11. Change log", "## 12. Change log"), ("## 10. Security", "## 11. Security"),
                 ("## 9. Perf", "## 10. Perf"), ("## 8. Output", "## 9. Output"), ("### 8.1 Stitch", "### 9.1 Stitch"),
                 ("## 7. Thread", "## 8. Thread"), ("### 7.1 Progress", "### 8.1 Progress"),
                 ("## 6. Error", "## 7. Error"), ("### 6.1 Retries", "### 7.1 Retries"), ("### 6.2 Logging", "### 7.2 Logging")]:
        assert renumbered.count(a) == 1
        renumbered = renumbered.replace(a, b)
    assert rest.endswith(renumbered)
    assert "(see section 6.2 for logging)" in new  # prose is not rewritten
    assert "# Appendix A. Glossary" in new
    assert splice_text(new, BODY, "spec.md") == new  # idempotent (markers now)


def test_our_section_6_is_replaced_in_place() -> None:
    old = read("spec_with_pytorch_section6.md")
    new = splice_text(old, BODY, "spec.md")
    start, end = old.index("## 6. PyTorch"), old.index("## 7. Threading")
    assert new.startswith(old[:start] + BEGIN + "\n" + BODY + END + "\n\n")
    assert new.endswith(old[end:])
    assert "Hand-written draft" not in new and "# 6.1 not a heading" not in new
    assert splice_text(new, BODY, "spec.md") == new
    assert splice_text(new, BODY.replace("Generated", "Regenerated"), "spec.md") == new.replace("Generated", "Regenerated")


def test_no_section_6_appends_after_5_and_keeps_missing_final_newline() -> None:
    old = read("spec_five_sections.md")
    assert not old.endswith("\n")
    new = splice_text(old, BODY, "spec.md")
    assert new.startswith(old + "\n\n" + BEGIN + "\n")
    assert new.endswith(END)
    assert splice_text(new, BODY, "spec.md") == new


def test_numbering_gap_inserts_before_7() -> None:
    old = read("ptychodus_api_spec.md")
    start, end = old.index("## 6. Error handling"), old.index("## 7. Threading")
    gap = old[:start] + old[end:]
    new = splice_text(gap, BODY, "spec.md")
    assert new == gap[:start] + BEGIN + "\n" + BODY + END + "\n\n" + gap[start:]


def test_markers_win_and_only_the_inside_changes() -> None:
    old = "# Spec\n\n## 1. A\n\ntext\n\n" + BEGIN + "\nold stuff\n" + END + "\n\n## 2. B\n"
    new = splice_text(old, BODY, "spec.md")
    assert new == "# Spec\n\n## 1. A\n\ntext\n\n" + BEGIN + "\n" + BODY + END + "\n\n## 2. B\n"
    with pytest.raises(SpliceError, match="must appear once each"):
        splice_text(old + END + "\n", BODY, "spec.md")


def test_markers_and_headings_inside_fences_are_ignored() -> None:
    old = "## 1. A\n\n```\n" + BEGIN + "\n## 6. fake\n" + END + "\n```\n\n## 2. B\n"
    new = splice_text(old, BODY, "spec.md")
    assert new.startswith(old) and new.endswith(END + "\n")


def test_crlf_spec_keeps_crlf_everywhere() -> None:
    old = read("ptychodus_api_spec.md").replace("\n", "\r\n")
    new = splice_text(old, BODY, "spec.md", insert=True)
    assert "\n" not in new.replace("\r\n", "")
    at = old.index("## 6. Error handling")
    assert new[:at] == old[:at]
    assert new.endswith(old[old.index("## 11. Change log") + len("## 11. Change log"):])
    assert splice_text(new, BODY, "spec.md") == new


def test_top_level_hash_spec_gets_shifted_headings() -> None:
    old = "# 1. Intro\n\nx\n\n# 2. More\n\ny\n"
    new = splice_text(old, BODY, "spec.md")
    assert "\n# 6. PyTorch execution configuration\n" in new and "\n## 6.1 Trainer\n" in new
    assert new.startswith(old)


def test_cli_splices_checks_and_refuses(tmp_path: Path) -> None:
    spec = tmp_path / "api.md"
    spec.write_bytes((SPECS / "ptychodus_api_spec.md").read_bytes())
    runner = CliRunner()
    base = ["--registry", str(REGISTRY), "generate", "--out", str(tmp_path / "gen")]
    refused = runner.invoke(main, [*base, "--spec-file", str(spec)])
    assert refused.exit_code == 2 and "--insert-section" in refused.output and "Traceback" not in refused.output
    assert spec.read_bytes() == (SPECS / "ptychodus_api_spec.md").read_bytes()
    stale = runner.invoke(main, [*base, "--check", "--spec-file", str(spec), "--insert-section"])
    assert stale.exit_code == 1 and "+## 7. Error handling" in stale.output
    assert runner.invoke(main, [*base, "--spec-file", str(spec), "--insert-section"]).exit_code == 0
    text = spec.read_text()
    generated = (tmp_path / "gen" / "spec_execution_config.md").read_text()
    assert generated.split("-->\n", 1)[1] in text
    mtime = spec.stat().st_mtime_ns
    assert runner.invoke(main, [*base, "--check", "--spec-file", str(spec)]).exit_code == 0
    assert runner.invoke(main, [*base, "--spec-file", str(spec)]).exit_code == 0
    assert spec.stat().st_mtime_ns == mtime


_TITLE = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters=" |`#"), max_size=15)


@settings(max_examples=80, deadline=None)
@given(numbers=st.lists(st.integers(1, 12).filter(lambda n: n != 6), unique=True, max_size=8).map(sorted),
       bodies=st.lists(_TITLE, min_size=8, max_size=8), crlf=st.booleans())
def test_random_specs_keep_every_other_line(numbers: list[int], bodies: list[str], crlf: bool) -> None:
    eol = "\r\n" if crlf else "\n"
    parts = ["# Title" + eol, eol]
    for n, body in zip(numbers, bodies, strict=False):
        parts += [f"## {n}. Section {n}{eol}", eol, f"text {body}{eol}", "```" + eol, f"# {n}.1 code{eol}", "```" + eol, eol]
    old = "".join(parts)
    new = splice_text(old, BODY, "spec.md")
    assert splice_text(new, BODY, "spec.md") == new
    inner = re.escape(BEGIN) + r".*?" + re.escape(END) + "(" + eol + ")?"
    assert re.sub(inner, "", new, flags=re.S).replace(eol + eol + eol, eol + eol) in (old, old + eol, old.rstrip(eol) + eol)
