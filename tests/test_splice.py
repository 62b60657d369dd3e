"""Splicing into a markdown spec: section 6 (no `spec:` block) and the registry's sections (markers around
a numbered or titled section's list, table or body). Every other byte stays where it was."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ptycho_knobs.cli import main
from ptycho_knobs.codegen.splice import (
    BEGIN,
    END,
    Part,
    SpliceError,
    begin_marker,
    end_marker,
    splice_parts,
    splice_text,
)

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
    from test_spec_shapes import registry_without_spec

    base = ["--registry", str(registry_without_spec(tmp_path)), "generate", "--out", str(tmp_path / "gen")]
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


def test_two_section_6_headings_are_refused_in_either_order() -> None:
    ours = read("spec_with_pytorch_section6.md")
    other = "## 6. Error handling\n\nRetries.\n\n"
    for text in (ours.replace("## 6. PyTorch", other + "## 6. PyTorch"),
                 ours.replace("## 7. Threading", other + "## 7. Threading")):
        second = [i for i, line in enumerate(text.split("\n")) if line.startswith("## 6.")][1]
        for insert in (False, True):
            with pytest.raises(SpliceError, match=rf"^spec\.md:{second + 1}:1: two section 6 headings"):
                splice_text(text, BODY, "spec.md", insert=insert)
    marked = splice_text(ours, BODY, "spec.md")  # ours inside the markers, and another one after it
    with pytest.raises(SpliceError, match="two section 6 headings"):
        splice_text(marked.replace("## 7. Threading", other + "## 7. Threading"), BODY, "spec.md")


def test_section_6_marker_errors_point_at_the_offending_line() -> None:
    old = "## 1. A\n\n" + BEGIN + "\nx\n" + END + "\n\n" + BEGIN + "\n"
    with pytest.raises(SpliceError, match=r"^spec\.md:7:1: the section 6 markers"):
        splice_text(old, BODY, "spec.md")
    with pytest.raises(SpliceError, match=r"^spec\.md:3:1: the section 6 markers"):
        splice_text("## 1. A\n\n" + BEGIN + "\nx\n", BODY, "spec.md")


# -- registry sections: splice_parts ------------------------------------------------------------

LIST_BODY = "1. **Generated:**\n   - `x` (int, default `1`): X.\n"
TABLE_BODY = "| a | b |\n|---|---|\n| 1 | 2 |\n"

DOC = """\
# Spec

## 4.8 Before

- a list in another section

## 4.9 Contract

Intro paragraph
2023. is not a list item here (a paragraph goes on).

- **MUST** first bullets, not the numbered list
- second bullet

```python
# 4.9 inside code is not a heading
1. nor is this a list
```

1. **Trainer:**
   - `a` (str): first.
     continued on an indented line
   - `b` (int): second,
lazily continued.

   ```text
   # a fence inside the item
   ```

2. **Loader:**
   - `c` (bool): third.

**After:** the paragraph that follows the list.

| CLI Flag | Type |
|----------|------|
| `--x` | int |
| `--y` | str |

Trailing prose.\x20\x20\x20

#### 4.9.1 Subsection

Subsection text.

## 5 Next

Untouched.
"""


def part(name: str, section: str | None, block: str, body: str) -> Part:
    return Part(name, section, block, body, ("knob_registry.yaml", 7, 5))


def between(text: str, name: str) -> str:
    return text.split(begin_marker(name) + "\n", 1)[1].split(end_marker(name) + "\n", 1)[0]


def test_numbered_list_block_is_the_first_numbered_list_with_its_nested_and_lazy_lines() -> None:
    new = splice_parts(DOC, [part("fields", "4.9", "list", LIST_BODY)], "spec.md")
    start = DOC.index("1. **Trainer:**")
    end = DOC.index("\n\n**After:**") + 1
    assert new == DOC[:start] + begin_marker("fields") + "\n" + LIST_BODY + end_marker("fields") + "\n" + DOC[end:]
    assert splice_parts(new, [part("fields", "4.9", "list", LIST_BODY)], "spec.md") == new


def test_bulleted_list_block_is_the_first_bulleted_list() -> None:
    new = splice_parts(DOC, [part("dep", "4.9", "list", "- one\n- two\n")], "spec.md")
    assert between(new, "dep") == "- one\n- two\n"
    assert "second bullet" not in new and "1. **Trainer:**" in new and "- a list in another section" in new


def test_table_block_section_block_and_title_lookup() -> None:
    parts = [part("table", "4.9", "table", TABLE_BODY), part("next", "Next", "section", "Generated next.\n")]
    new = splice_parts(DOC, parts, "spec.md")
    assert between(new, "table") == TABLE_BODY and "`--y`" not in new
    assert "\n" + end_marker("table") + "\n\nTrailing prose.   \n" in new  # trailing blanks kept
    assert new.endswith("## 5 Next\n\n" + begin_marker("next") + "\nGenerated next.\n" + end_marker("next") + "\n")
    assert splice_parts(new, parts, "spec.md") == new


def test_empty_section_gets_the_block_below_its_heading() -> None:
    old = "## 1 A\n## 2 B\n\ntext\n"
    new = splice_parts(old, [part("a", "1", "section", "Body.\n")], "spec.md")
    assert new == "## 1 A\n\n" + begin_marker("a") + "\nBody.\n" + end_marker("a") + "\n\n## 2 B\n\ntext\n"
    assert splice_parts(new, [part("a", "1", "section", "Body.\n")], "spec.md") == new
    last = splice_parts("## 1 A", [part("a", "1 A", "section", "Body.\n")], "spec.md")
    assert last == "## 1 A\n\n" + begin_marker("a") + "\nBody.\n" + end_marker("a")


def test_crlf_indented_list_and_missing_final_newline() -> None:
    old = "## 4.9 C\r\n\r\n- item\r\n\r\n  1. nested numbered\r\n  2. list\r\n\r\ntext\r\n\r\n## 7.1 T\r\n\r\n| a |\r\n|---|\r\n| b |"
    parts = [part("t", "7.1", "table", TABLE_BODY)]
    new = splice_parts(old, parts, "spec.md")
    assert new.endswith("\r\n" + begin_marker("t") + "\r\n| a | b |\r\n|---|---|\r\n| 1 | 2 |\r\n" + end_marker("t"))
    assert "\n" not in new.replace("\r\n", "") and splice_parts(new, parts, "spec.md") == new
    with pytest.raises(SpliceError, match=r"^spec\.md:1:1: section '4\.9' \('4\.9 C'\) has no numbered list"):
        splice_parts(old, [part("n", "4.9", "list", "1. x\n")], "spec.md")  # the numbered list is nested
    bullets = splice_parts(old, [part("n", "4.9", "list", "- x\n")], "spec.md")
    assert between(bullets.replace("\r\n", "\n"), "n") == "- x\n" and "nested numbered" not in bullets


def test_markers_in_code_fences_are_examples_not_markers() -> None:
    example = "```\n" + begin_marker("t") + "\n" + end_marker("t") + "\n" + begin_marker("t") + "\n```\n"
    old = "## 7.1 T\n\n" + example + "\n| a |\n|---|\n"
    new = splice_parts(old, [part("t", "7.1", "table", TABLE_BODY)], "spec.md")
    assert new.startswith("## 7.1 T\n\n" + example + "\n" + begin_marker("t") + "\n")


def test_configuration_errors_point_at_the_registry() -> None:
    with pytest.raises(SpliceError, match=r"^knob_registry\.yaml:7:5: spec section 'x': spec\.md has no heading numbered '9\.9'"):
        splice_parts(DOC, [part("x", "9.9", "list", LIST_BODY)], "spec.md")
    with pytest.raises(SpliceError, match=r"^knob_registry\.yaml:7:5: .* names no section"):
        splice_parts(DOC, [part("x", None, "list", LIST_BODY)], "spec.md")
    with pytest.raises(SpliceError, match=r"^spec\.md:46:1: section '5' \('5 Next'\) has no pipe table"):
        splice_parts(DOC, [part("x", "5", "table", TABLE_BODY)], "spec.md")


def test_two_parts_wanting_the_same_block_are_refused() -> None:
    with pytest.raises(SpliceError, match="spec sections 'a' and 'b' both want lines"):
        splice_parts(DOC, [part("a", "4.9", "list", LIST_BODY), part("b", "Contract", "list", LIST_BODY)], "spec.md")
    with pytest.raises(SpliceError, match="both want"):
        splice_parts(DOC, [part("a", "4.9", "section", "x\n"), part("b", "4.9", "table", TABLE_BODY)], "spec.md")


def test_ambiguous_sections_and_markers_are_refused_at_their_line() -> None:
    twice = DOC.replace("## 5 Next", "## 4.9. Again\n\n## 5 Next")
    line = twice.split("\n").index("## 4.9. Again") + 1
    with pytest.raises(SpliceError, match=rf"^spec\.md:{line}:1: two headings match section '4\.9'"):
        splice_parts(twice, [part("t", "4.9", "table", TABLE_BODY)], "spec.md")
    marked = splice_parts(DOC, [part("t", "4.9", "table", TABLE_BODY)], "spec.md")
    nested = marked.replace("| 1 | 2 |\n", "| 1 | 2 |\n" + begin_marker("u") + "\n" + end_marker("u") + "\n")
    with pytest.raises(SpliceError, match="markers of 'u' are inside the markers of 't'"):
        splice_parts(nested, [part("t", "4.9", "table", TABLE_BODY), part("u", "5", "section", "x\n")], "spec.md")
    backwards = marked.replace(begin_marker("t"), "@@").replace(end_marker("t"), begin_marker("t")).replace("@@", end_marker("t"))
    with pytest.raises(SpliceError, match="END marker of 't' comes before its BEGIN marker"):
        splice_parts(backwards, [part("t", "4.9", "table", TABLE_BODY)], "spec.md")


_WORDS = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters=" `*#|-"), min_size=1,
                 max_size=12).map(lambda s: "w" + s.strip())
_BLOCKS = st.one_of(
    _WORDS.map(lambda w: ("para", f"{w}\n")),
    st.lists(_WORDS, min_size=1, max_size=3).map(lambda ws: ("ul", "".join(f"- {w}\n  more {w}\n" for w in ws))),
    st.lists(_WORDS, min_size=1, max_size=3).map(lambda ws: ("ol", "".join(
        f"{i + 1}. {w}\n   - nested {w}\n" for i, w in enumerate(ws)))),
    _WORDS.map(lambda w: ("table", f"| a | b |\n|---|---|\n| {w.replace('|', '')} | x |\n")),
    _WORDS.map(lambda w: ("fence", f"```\n# {w}\n1. {w}\n| a |\n|---|\n```\n")),
)


@settings(max_examples=80, deadline=None)
@given(before=st.lists(_BLOCKS, max_size=4), target=st.lists(_BLOCKS, max_size=6), block=st.sampled_from(["ol", "ul", "table"]),
       crlf=st.booleans())
def test_random_sections_replace_exactly_the_first_block_of_its_kind(
        before: list[tuple[str, str]], target: list[tuple[str, str]], block: str, crlf: bool) -> None:
    eol = "\r\n" if crlf else "\n"
    chunks = ["# Title\n\n## 1 Before\n\n", *(b + "\n" for _, b in before), "## 2 Target\n\n"]
    index = len(chunks)
    chunks += [b + "\n" for _, b in target]
    chunks.append("## 3 After\n\ntext\n")
    kinds = [k for k, _ in target]
    body = {"ol": "1. generated\n", "ul": "- generated\n", "table": TABLE_BODY}[block]
    the_part = part("p", "2", "list" if block != "table" else "table", body)
    old = "".join(chunks).replace("\n", eol)
    if block not in kinds:
        with pytest.raises(SpliceError, match="has no"):
            splice_parts(old, [the_part], "spec.md")
        return
    first = kinds.index(block)
    last = first + 1
    while block != "table" and last < len(kinds) and kinds[last] == block:
        last += 1  # same-kind lists with only a blank line between are one (loose) list in CommonMark
    at, stop = index + first, index + last
    expected = chunks[:at] + [begin_marker("p") + "\n" + body + end_marker("p") + "\n\n"] + chunks[stop:]
    new = splice_parts(old, [the_part], "spec.md")
    assert new == "".join(expected).replace("\n", eol)
    assert splice_parts(new, [the_part], "spec.md") == new
