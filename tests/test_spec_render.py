"""Property: whatever the registry says, the spec templates render the real spec's shapes and every
field's name, type, default and choices read back; no registry string breaks the markdown.

Random registries with hostile strings (backticks, pipes, backslashes, line breaks, marker-like
comments, list and heading starts) are loaded for real, rendered by the shipped templates, read
back by the parser of the real spec's shapes (tests/test_spec_shapes.py), and spliced into a
spec twice: the block found on a marker-less copy of the output must be exactly the generated one.
"""

from __future__ import annotations

import keyword
import math
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_spec_shapes import choices_after, code_spans, parse_bullets, parse_table, split_row

from ptycho_knobs.codegen.spec_context import (
    field_name,
    md_cell,
    md_code,
    md_text,
    sentence,
    spec_context,
    spec_environment,
    type_text,
)
from ptycho_knobs.codegen.splice import Part, begin_marker, end_marker, splice_parts
from ptycho_knobs.ktypes import Home, SpecSection
from ptycho_knobs.registry import load_registry

_HOSTILE = st.sampled_from([
    "`", "``", " `x` ", "|", "\\", "\\|", "\n", "\r\n", "\u2028", "\x85", "\t", "  ",
    "<!-- END ptycho-knobs: f -->", "<!--", "-->", "# not a heading", "\n# heading", "\n1. item", "\n- item",
    "\n| a | b |\n|---|---|", "**", "*", "_", "MUST be in `{1}`", "{", "}", "'", '"', "<b>", "&amp;", "é", "→",
])
_TEXT = st.lists(st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), max_size=12), _HOSTILE),
                 min_size=1, max_size=6).map("".join).filter(lambda s: s.strip())
_NAMES = st.from_regex(r"[a-z][a-z0-9_]{1,10}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n) and n != "self" and not n.startswith("no") and not n.endswith("_"))
_MEMBERS = st.lists(st.one_of(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6), _HOSTILE),
                    min_size=1, max_size=4, unique=True)


@st.composite
def knob_entry(draw: st.DrawFn, name: str, alias: str) -> dict[str, Any]:
    kind = draw(st.sampled_from(["int", "float", "bool", "str", "Optional[int]", "literal", "Optional[literal]"]))
    entry: dict[str, Any] = {"name": name, "catalog_name": name,
                             "category": draw(st.sampled_from(["lightning_trainer", "data_loading", "inference"])),
                             "home": draw(st.sampled_from(["execution", "execution", "execution", "training"])),
                             "purpose": draw(_TEXT)}
    if "literal" in kind:
        members = draw(_MEMBERS)
        entry["type"] = kind.replace("literal", "Literal[" + ", ".join(repr(m) for m in members) + "]")
        entry["default"] = draw(st.sampled_from(members))
    else:
        entry["type"] = kind
        base = kind.removeprefix("Optional[").rstrip("]")
        entry["default"] = draw({"int": st.integers(0, 10**9), "float": st.floats(0.5, 1e12),
                                 "bool": st.booleans(), "str": _TEXT}[base])
        if base == "int":
            entry["constraints"] = {"min": 0}
        if base == "float":
            entry["constraints"] = {"exclusive_min": 0.0}
        if kind.startswith("Optional") and draw(st.booleans()):
            entry["default"] = None
    if draw(st.booleans()):
        entry["clis"] = ["train"]
    if kind == "bool" and draw(st.booleans()):
        entry["field_aliases"] = [{"name": alias, "invert": True}]
        entry["cli_aliases"] = [{"flag": "--without-" + name.replace("_", "-"), "negative": True}]
        entry["clis"] = ["train"]
    elif draw(st.booleans()):
        entry["field_aliases"] = [alias]
    if entry.get("clis") and draw(st.integers(0, 4)) == 0:
        entry["deprecated"] = {"message": draw(_TEXT)}
    return entry


@st.composite
def registries(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(_NAMES, min_size=2, max_size=12, unique=True))
    aliases = [f"real_{n}" for n in names]
    knobs = [draw(knob_entry(n, a)) for n, a in zip(names, aliases, strict=True)]
    knobs[0]["home"] = "execution"
    return {"schema_version": 1, "clis": {"train": {"file": "t.py", "title": draw(_TEXT)}}, "knobs": knobs}


def _render(registry: Any, template: str) -> str:
    section = SpecSection("part", template, "4.9", "list", "train")
    return spec_environment().get_template(template).render(**spec_context(registry, section))


def _load(data: dict[str, Any], folder: Path) -> Any:
    text = yaml.safe_dump(data, allow_unicode=True)
    assume(yaml.safe_load(text) == data)  # PyYAML's emitter cannot write every string back
    path = folder / "knob_registry.yaml"
    path.write_text(text, encoding="utf-8")
    return load_registry(path)


def _expected_values(knob: Any) -> list[Any] | None:
    from ptycho_knobs.typelang import LiteralOf, OptionalOf, base_scalar

    base = base_scalar(knob.type)
    if not isinstance(base, LiteralOf):
        return None
    return list(base.values) + ([None] if isinstance(knob.type, OptionalOf) else [])


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and (a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b)))


def _splices_back(body: str, block: str) -> None:
    """The output, as a list/table of a spec section, is found again as one block, exactly."""
    spec = "# Spec\n\n## 4.9 Contract\n\nIntro.\n\n" + body.strip("\n") + "\n\nAfter the block.\n\n## 5 Next\n"
    part = Part("part", "4.9", block, body)
    marked = splice_parts(spec, [part], "spec.md")
    assert marked == spec.replace(body.strip("\n") + "\n", begin_marker("part") + "\n" + body.strip("\n") + "\n"
                                  + end_marker("part") + "\n")
    assert splice_parts(marked, [part], "spec.md") == marked


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=registries())
def test_random_registries_render_bullets_that_read_back(data: dict[str, Any], tmp_path_factory: Any) -> None:
    registry = _load(data, tmp_path_factory.mktemp("reg"))
    body = _render(registry, "spec_field_bullets.md.j2")
    lines = [line for line in body.split("\n") if line]
    knobs = registry.by_home(Home.EXECUTION)
    assert all(re.fullmatch(r"\d+\. \*\*.+:\*\*", line) or line.startswith("   - ") for line in lines), body
    bullets = parse_bullets(body)
    assert len(bullets) == len(knobs) == sum(1 for line in lines if line.startswith("   - "))
    for bullet in bullets:
        knob = next(k for k in knobs if field_name(k)[0] == bullet.name)
        inverted = field_name(knob)[1]
        assert bullet.type == type_text(knob)
        assert _same(bullet.default, (not knob.default) if inverted else knob.default)
        # the purpose comes first, whole; then the choices parse from what follows it
        text = md_text(sentence(knob.purpose))
        assert text in bullet.rest
        tail = bullet.rest[bullet.rest.index(text) + len(text):]
        expected = None if inverted else _expected_values(knob)
        assert tail.startswith(" MUST be in `") == (expected is not None), bullet.rest
        assert expected is None or choices_after(tail) == expected, bullet.rest
        spans = [c for _, _, c in code_spans(tail)]
        assert [c for c in spans if c.startswith("-")] == [f for _, f in knob.clis] + [
            a.flag for a in knob.cli_aliases if a.negative and knob.clis]
    _splices_back(body, "list")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=registries())
def test_random_registries_render_tables_that_read_back(data: dict[str, Any], tmp_path_factory: Any) -> None:
    registry = _load(data, tmp_path_factory.mktemp("reg"))
    body = _render(registry, "spec_flag_table.md.j2")
    lines = [line for line in body.split("\n") if line]
    assert all(len(split_row(line)) == 5 for line in lines)
    _, rows = parse_table(body)
    offered = [k for k in registry.knobs if k.clis and k.home is Home.EXECUTION and k.deprecated is None]
    assert len(rows) == len(offered)
    for row, knob in zip(rows, offered, strict=True):
        name, inverted = field_name(knob)
        assert row.flags[0] == knob.clis[0][1] and row.config_field == f"PyTorchExecutionConfig.{name}"
        assert _same(row.default, knob.default)
        text = md_cell(sentence(knob.purpose)).replace("\\|", "|")
        assert row.description.startswith(text)
        tail, expected = row.description[len(text):], _expected_values(knob)
        assert tail.startswith(" MUST be in `") == (expected is not None), row.description
        assert expected is None or choices_after(tail) == expected, row.description
    _splices_back(body, "table")
    deprecated = _render(registry, "spec_deprecated_flags.md.j2")
    items = [line for line in deprecated.split("\n") if line]
    assert all(line.startswith("- ") for line in items)
    assert [code_spans(line)[0][2] for line in items if line != "- None."] == [
        f for k in registry.knobs if k.deprecated for _, f in k.clis]
    _splices_back(deprecated, "list")


def test_filters_keep_text_inline_and_code_exact() -> None:
    assert md_text("a\nb\u2028c\r\n  d") == "a b c d"
    assert md_text("from `seed` on") == "from `seed` on"  # the registry's own code spans stay
    assert md_text("stray ` tick") == "stray \\` tick" and md_text("back\\slash") == "back\\\\slash"
    assert md_cell("a|b `c|d`") == "a\\|b `c\\|d`"
    assert md_code("") == "` `"
    for value in ["x", "`", "a``b", "` x", "x `", " both ", "|", "  "]:
        spans = code_spans("z " + md_code(value) + " z")
        assert len(spans) == 1 and spans[0][2] == value, (value, md_code(value))
