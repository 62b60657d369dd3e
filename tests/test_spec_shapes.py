"""A small parser of the two shapes of PtychoPINN's spec, and what the repo's registry renders.

The shapes (of `specs/ptychodus_api_spec.md` in the real project):

- §4.9 field bullets: `1. **Lightning Trainer Knobs:**` category items, each with bullets
  ``- `name` (type, default `value`): purpose. MUST be in `{...}`. Exposed via `--flag`.``;
- §7.1/§7.2 flag tables: `| CLI Flag | Type | Default | Config Field | Description |`.

The other spec tests import `parse_bullets`, `parse_table` and `code_spans` from here. The
parser is checked against the real snapshot's original text (`PTYCHO_KNOBS_SNAPSHOT`, skipped
where it is absent), so the generated text is known to come back through a reader of the real
shapes.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ptycho_knobs.codegen.spec_context import (
    EXECUTION_CLASS,
    field_name,
    spec_context,
    spec_environment,
    type_text,
)
from ptycho_knobs.ktypes import Home, SpecSection
from ptycho_knobs.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]
# The PtychoPINN snapshot (GPL-3.0 test data): read in place, copied only to tmp, never edited.
REAL_PROJECT = Path(os.environ.get("PTYCHO_KNOBS_SNAPSHOT", "/work/shared/ptychopinn-aaa014e"))
REAL_SPEC = REAL_PROJECT / "specs" / "ptychodus_api_spec.md"
needs_real_spec = pytest.mark.skipif(
    not REAL_SPEC.is_file(),
    reason=f"the PtychoPINN snapshot's spec is absent ({REAL_SPEC}); set PTYCHO_KNOBS_SNAPSHOT to a checkout of it",
)

_CATEGORY = re.compile(r"^(\d+)\. \*\*(.+):\*\*$")
_BULLET_START = re.compile(r"^( *)- ")


def code_spans(text: str) -> list[tuple[int, int, str]]:
    """Every inline code span of `text`: (start, end, content), CommonMark's rules (enough of them)."""
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            i += 2
            continue
        if text[i] != "`":
            i += 1
            continue
        j = i
        while j < len(text) and text[j] == "`":
            j += 1
        fence = text[i:j]
        k = j
        close = -1
        while k < len(text):
            if text[k] == "`":
                m = k
                while m < len(text) and text[m] == "`":
                    m += 1
                if m - k == len(fence):
                    close = k
                    break
                k = m
            else:
                k += 1
        if close < 0:
            i = j
            continue
        content = text[j:close]
        if len(content) >= 2 and content.startswith(" ") and content.endswith(" ") and content.strip():
            content = content[1:-1]
        out.append((i, close + len(fence), content))
        i = close + len(fence)
    return out


def code_at(text: str, at: int) -> tuple[str, int]:
    """The code span that starts at `at`: (content, index after it)."""
    for start, end, content in code_spans(text[at:]):
        assert start == 0, f"no code span at {text[at:at + 30]!r}"
        return content, at + end
    raise AssertionError(f"no code span at {text[at:at + 30]!r}")


def unescape_text(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def choices_after(text: str) -> list[Any] | None:
    """The values of the first `MUST be in `{...}`` / `MUST be one of `[...]`` in `text`."""
    m = re.search(r"MUST be (?:in|one of) (?=`)", text)
    if not m:
        return None
    content, _ = code_at(text, m.end())
    return list(ast.literal_eval("[" + content.strip()[1:-1] + "]"))


@dataclass
class Bullet:
    category: str
    name: str
    type: str
    default: Any
    rest: str  # the text after "): "

    @property
    def choices(self) -> list[Any] | None:
        return choices_after(self.rest)

    @property
    def flags(self) -> list[str]:
        m = re.search(r"Exposed via ", self.rest)
        if not m:
            return []
        return [c for _, _, c in code_spans(self.rest[m.end():]) if c.startswith("--")]


def parse_bullets(text: str) -> list[Bullet]:
    """The field bullets of a §4.9-shaped numbered list (nested sub-bullets are skipped)."""
    out: list[Bullet] = []
    category = ""
    for line in text.splitlines():
        m = _CATEGORY.match(line)
        if m:
            category = m.group(2)
            continue
        b = _BULLET_START.match(line)
        if not b or len(b.group(1)) != 3 or not category:
            continue
        at = b.end()
        name, at = code_at(line, at)
        assert line[at:at + 2] == " (", line
        close = line.index(", default ", at)
        type_text_ = line[at + 2:close]
        default, at = code_at(line, close + len(", default "))
        assert line[at:at + 3] == "): ", line
        out.append(Bullet(category, name, unescape_text(type_text_), ast.literal_eval(default), line[at + 3:]))
    return out


@dataclass
class Row:
    flags: list[str]
    type: str
    default: Any
    config_field: str
    description: str

    @property
    def choices(self) -> list[Any] | None:
        return choices_after(self.description)


def split_row(line: str) -> list[str]:
    """Cells of a GFM table row: split at unescaped pipes; `\\|` reads as `|` inside the cells."""
    text = line.strip()
    assert text.startswith("|") and text.endswith("|") and not text.endswith("\\|"), line
    cells = re.split(r"(?<!\\)\|", text[1:-1])
    return [c.strip().replace("\\|", "|") for c in cells]


def parse_table(text: str) -> tuple[list[str], list[Row]]:
    """(header cells, rows) of the first pipe table of `text` in the §7 flag-table shape."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| CLI Flag"))
    header = split_row(lines[start])
    assert all(re.fullmatch(r":?-+:?", c) for c in split_row(lines[start + 1]))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = split_row(line)
        assert len(cells) == len(header), line
        flags = [c for _, _, c in code_spans(cells[0])]
        default, _ = code_at(cells[2], 0)
        field, _ = code_at(cells[3], 0)
        rows.append(Row(flags, cells[1], ast.literal_eval(default), field, cells[4]))
    return header, rows


def registry_with_spec(file: str | None = None) -> str:
    """The repo's registry with its spec: block required (not optional), `file` optionally replaced."""
    text = (ROOT / "knob_registry.yaml").read_text(encoding="utf-8")
    assert "\nspec:\n  file: specs/ptychodus_api_spec.md\n  optional: true\n" in text
    text = text.replace("\n  optional: true\n", "\n", 1)
    if file is not None:
        text = text.replace("\nspec:\n  file: specs/ptychodus_api_spec.md\n", f"\nspec:\n  file: {file}\n", 1)
    return text


def registry_without_spec(folder: Path) -> Path:
    """A copy of the repo's registry with no spec: block (section-6 mode), written into `folder`."""
    text = re.sub(r"\nspec:\n(?:  .*\n)+", "\n", (ROOT / "knob_registry.yaml").read_text(encoding="utf-8"), count=1)
    path = folder / "knob_registry.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def section_text(text: str, heading: str) -> str:
    """The lines of `text` from the heading that starts with `heading` to the next heading."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"#{1,6} ", lines[i])), len(lines))
    return "\n".join(lines[start:end])


# -- the parser reads the real spec's own text --------------------------------------------------


@needs_real_spec
def test_parser_reads_the_real_field_bullets() -> None:
    bullets = parse_bullets(section_text(REAL_SPEC.read_text(encoding="utf-8"), "#### 4.9."))
    by_name = {b.name: b for b in bullets}
    assert [b.category for b in bullets][0] == "Lightning Trainer Knobs"
    assert by_name["accelerator"].type == "str" and by_name["accelerator"].default == "cpu"
    assert by_name["accelerator"].choices == ["auto", "cpu", "gpu", "cuda", "tpu", "mps"]
    assert by_name["gradient_clip_val"].type == "float|None" and by_name["gradient_clip_val"].default is None
    assert by_name["scheduler"].choices == ["Default", "Exponential", "MultiStage", "Adaptive"]
    assert by_name["learning_rate"].default == 0.001
    assert "--num-workers" in by_name["num_workers"].flags
    assert len(bullets) == 22  # accum_steps twice; the nested logger sub-bullets are not fields


@needs_real_spec
def test_parser_reads_the_real_flag_tables() -> None:
    text = REAL_SPEC.read_text(encoding="utf-8")
    header, rows = parse_table(section_text(text, "#### 7.1."))
    assert header == ["CLI Flag", "Type", "Default", "Config Field", "Description"]
    by_flag = {r.flags[0]: r for r in rows}
    assert by_flag["--enable-checkpointing"].flags == ["--enable-checkpointing", "--disable-checkpointing"]
    assert by_flag["--quiet"].type == "flag" and by_flag["--quiet"].default is False
    assert by_flag["--accumulate-grad-batches"].config_field == "PyTorchExecutionConfig.accum_steps"
    _, inference = parse_table(section_text(text, "#### 7.2."))
    assert [r.flags[0] for r in inference] == ["--accelerator", "--num-workers", "--inference-batch-size", "--quiet"]


def test_code_spans_follow_commonmark() -> None:
    assert [c for _, _, c in code_spans("a `x` b ``y`z`` c ` `` ` d")] == ["x", "y`z", "``"]
    assert [c for _, _, c in code_spans(r"\`not `yes`")] == ["yes"]


# -- what the repo's registry renders, read back ------------------------------------------------


def _render(template: str, cli: str | None = None) -> str:
    registry = load_registry(ROOT / "knob_registry.yaml")
    section = SpecSection("x", template, "1", "list", cli)
    return spec_environment().get_template(template).render(**spec_context(registry, section))


def test_rendered_field_bullets_read_back_for_every_execution_field() -> None:
    registry = load_registry(ROOT / "knob_registry.yaml")
    bullets = parse_bullets(_render("spec_field_bullets.md.j2"))
    knobs = registry.by_home(Home.EXECUTION)
    assert sorted(b.name for b in bullets) == sorted(field_name(k)[0] for k in knobs)
    for bullet in bullets:
        knob = next(k for k in knobs if field_name(k)[0] == bullet.name)
        inverted = field_name(knob)[1]
        assert bullet.type == type_text(knob)
        spelled = knob.field_aliases[0].to_alias(knob.default) if knob.field_aliases else knob.default  # 'Default'
        assert bullet.default == (not knob.default if inverted else spelled)
    by_name = {b.name: b for b in bullets}
    # the real class's field names, from the knobs' field aliases
    assert {"enable_progress_bar", "accum_steps", "scheduler"} <= set(by_name)
    assert by_name["enable_progress_bar"].default is True and "`--quiet` (inverted)" in by_name["enable_progress_bar"].rest
    assert by_name["accelerator"].choices == ["auto", "cpu", "gpu", "cuda", "tpu", "mps"]
    assert by_name["scheduler"].choices == ["Default", "Exponential", "MultiStage", "Adaptive"]  # its `values`
    assert by_name["logger_backend"].choices == ["tensorboard", "csv", "mlflow", None]
    assert "MUST be ≥ 0." in by_name["num_workers"].rest and "MUST be > 0.0." in by_name["learning_rate"].rest
    assert by_name["enable_checkpointing"].flags == ["--enable-checkpointing", "--disable-checkpointing"]
    assert "When `persistent_workers`, requires `num_workers > 0`." in by_name["persistent_workers"].rest
    assert "**Deprecated:**" in by_name["disable_mlflow"].rest


def test_rendered_flag_tables_read_back() -> None:
    registry = load_registry(ROOT / "knob_registry.yaml")
    header, rows = parse_table(_render("spec_flag_table.md.j2", "train"))
    assert header == ["CLI Flag", "Type", "Default", "Config Field", "Description"]
    by_flag = {r.flags[0]: r for r in rows}
    offered = {k.name for k in registry.knobs if "train" in dict(k.clis) and k.home is Home.EXECUTION
               and k.deprecated is None}
    assert len(rows) == len(offered) == 13
    assert all(r.config_field.startswith(EXECUTION_CLASS + ".") for r in rows)
    assert by_flag["--enable-checkpointing"].flags == ["--enable-checkpointing", "--disable-checkpointing"]
    assert by_flag["--enable-checkpointing"].type == "bool"
    assert by_flag["--quiet"].type == "flag" and by_flag["--quiet"].default is False
    assert by_flag["--quiet"].config_field == "PyTorchExecutionConfig.enable_progress_bar"
    assert by_flag["--accumulate-grad-batches"].config_field == "PyTorchExecutionConfig.accum_steps"
    # the spelling and values the real CLI takes (the cli alias's values)
    assert by_flag["--scheduler"].default == "Default"
    assert by_flag["--scheduler"].choices == ["Default", "Exponential", "MultiStage", "Adaptive"]
    assert by_flag["--logger"].choices == ["tensorboard", "csv", "mlflow", "none"]
    assert "--device" not in by_flag and "--disable_mlflow" not in by_flag  # deprecated: listed apart
    _, inference = parse_table(_render("spec_flag_table.md.j2", "inference"))
    assert [r.flags[0] for r in inference] == ["--accelerator", "--quiet", "--num-workers", "--inference-batch-size"]


def test_rendered_deprecated_flags() -> None:
    text = _render("spec_deprecated_flags.md.j2", "train")
    lines = [line for line in text.splitlines() if line.strip()]
    assert [code_spans(line)[0][2] for line in lines] == ["--device", "--disable_mlflow"]
    assert lines[0].startswith("- `--device` (str): --device is deprecated; use --accelerator.")
    assert "`'cuda'` → `'gpu'`" in lines[0]
    assert "Sets `logger_backend` to `None`." in lines[1] and "Sets `enable_progress_bar` to `False`." in lines[1]
