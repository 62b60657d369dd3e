"""The parity view: per knob, every layer of the tree that states it, with its value.

It prints the audit's model itself (`audit/model.py`), so what `parity` shows is exactly what
the rules compare: a layer marked `≠` states a default that disagrees with the majority (the
PK002 comparison) or is a call-site literal that overrides it with another value (PK001 and
PK014 report those), and the knob's header says so. Three renderings: a terminal table, JSON
for tools, and markdown for a pull-request comment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ptycho_knobs.audit.findings import NOT_LITERAL
from ptycho_knobs.audit.index import same
from ptycho_knobs.audit.model import Layer, Model
from ptycho_knobs.audit.rules.default_drift import compared, groups_of, spelled_otherwise, written
from ptycho_knobs.ktypes import Knob

_ORDER = {"registry": 0, "field": 1, "flag": 2, "construct": 3, "fallback": 4, "env": 5, "param": 6,
          "check": 7, "branch": 8, "assign": 9, "call": 10, "spec-field": 11, "spec-flag": 12}


@dataclass(frozen=True)
class Row:
    layer: Layer
    value: str  # as shown
    agrees: bool | None  # None: not compared (a check, a branch, a value computed in code)


@dataclass(frozen=True)
class KnobParity:
    knob: Knob
    rows: tuple[Row, ...]
    values: tuple[Any, ...]  # the distinct compared values, the majority first
    overrides: tuple[Any, ...] = ()  # call-site literals other than the majority default

    @property
    def disagree(self) -> bool:
        return len(self.values) > 1 or bool(self.overrides)

    def state(self, show: Callable[[Any], str] = repr) -> str:
        """`10 vs 20; calls pass 7`, or `agree`."""
        parts = []
        if len(self.values) > 1:
            parts.append(" vs ".join(show(v) for v in self.values))
        if self.overrides:
            parts.append("calls pass " + ", ".join(show(v) for v in self.overrides))
        return "; ".join(parts) if parts else "agree"


def parity(model: Model, names: list[str] | None = None, everything: bool = False) -> list[KnobParity]:
    """Every knob (or those named) with at least one layer in the tree, unless `everything`."""
    registry = model.project.index.registry
    knobs = [registry.get(n) for n in names] if names else list(registry.knobs)
    out = []
    for knob in knobs:
        layers = sorted(model.of(knob.name), key=lambda lay: (_ORDER.get(lay.kind, 99), lay.path, lay.line))
        if not everything and not names and all(lay.kind == "registry" for lay in layers):
            continue
        groups = groups_of([lay for lay in layers if compared(lay)])
        groups.sort(key=lambda g: (-len(g), not any(lay.kind == "registry" for lay in g)))
        majority = groups[0] if groups else []
        default = majority[0].value if majority else knob.default
        rows, overrides = [], []
        for lay in layers:
            agrees = None
            if compared(lay):
                agrees = lay in majority
            elif lay.kind == "call" and lay.value is not NOT_LITERAL:
                agrees = same(lay.value, default)
                if not agrees and not any(same(lay.value, v) for v in overrides):
                    overrides.append(lay.value)
            rows.append(Row(lay, shown(lay), agrees))
        out.append(KnobParity(knob, tuple(rows), tuple(g[0].value for g in groups), tuple(overrides)))
    return out


def shown(lay: Layer) -> str:
    """A layer's value as the reader wants it: a default, what a check rejects, what a branch handles."""
    st = lay.stmt
    if lay.kind == "check" and st is not None:
        if st.bound is not None:
            op, limit = st.bound
            text = f"rejects {st.name} {op} {limit!r}" if op != "in" else f"rejects {limit!r}"
        else:
            text = f"accepts only {', '.join(repr(c) for c in st.choices or ())}"
        return text + (f" when {st.detail}" if st.form == "guard" and st.detail else "")
    if lay.kind == "branch" and st is not None:
        handled = ", ".join(repr(c) for c in st.choices or ())
        if st.form == "dict":
            fallback = f", else {st.value!r}" if st.value is not NOT_LITERAL else ""
            return f"looks up {handled}{fallback}"
        weak = f" (only warns for {', '.join(repr(w) for w in st.weak)})" if st.weak else ""
        return f"handles {handled}{weak}"
    if lay.value is NOT_LITERAL:
        return "(from code)"
    text = repr(lay.value)
    if lay.invert and st is not None and isinstance(lay.value, bool):
        text += f"  ({st.name}={not lay.value!r})"
    elif spelled_otherwise(lay):
        assert lay.alias is not None
        text += f"  ({lay.alias.name}={written(lay)!r})"
    if lay.kind == "flag" and lay.choices:
        text += f"  choices {list(lay.choices)!r}"
    if lay.kind == "field" and lay.choices:
        text += f"  Literal{list(lay.choices)!r}"
    return text


def _kind(lay: Layer) -> str:
    return {"spec-field": "spec", "spec-flag": "spec"}.get(lay.kind, lay.kind)


def render_table(items: list[KnobParity]) -> str:
    lines = []
    for item in items:
        k = item.knob
        lines.append(f"{k.name}  [{k.category.value}, {k.type}, registry default {k.default!r}]  "
                     f"{'DISAGREE: ' if item.disagree else ''}{item.state()}")
        rows = [(("≠" if r.agrees is False else " "), _kind(r.layer), r.layer.where if r.layer.kind != "registry" else
                 "knob_registry", r.layer.label, r.value) for r in item.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for mark, kind, where, label, value in rows:
            lines.append(f"  {mark} {kind.ljust(widths[1])}  {where.ljust(min(widths[2], 52))}  "
                         f"{label.ljust(min(widths[3], 46))}  {value}".rstrip())
        lines.append("")
    return "\n".join(lines)


def render_markdown(items: list[KnobParity]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["## Knob parity", ""]
    disagree = [i for i in items if i.disagree]
    lines.append(f"{len(items)} knobs, {len(disagree)} with layers that disagree.")
    lines.append("")
    for item in items:
        k = item.knob
        flag = f" ⚠️ {item.state(lambda v: f'`{v!r}`')}" if item.disagree else ""
        lines += [f"### `{k.name}`{flag}", "", f"{k.category.value}, `{k.type}`, registry default `{k.default!r}`", "",
                  "| | layer | where | what | value |", "|---|---|---|---|---|"]
        for r in item.rows:
            where = "registry" if r.layer.kind == "registry" else f"`{r.layer.where}`"
            lines.append(f"| {'≠' if r.agrees is False else ''} | {_kind(r.layer)} | {where} | {cell(r.layer.label)} | "
                         f"`{cell(r.value)}` |")
        lines.append("")
    return "\n".join(lines)


def render_json(items: list[KnobParity]) -> str:
    def plain(value: Any) -> Any:
        if value is NOT_LITERAL:
            return None
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else repr(value)

    data = [{
        "knob": i.knob.name, "category": i.knob.category.value, "type": str(i.knob.type),
        "default": plain(i.knob.default), "disagree": i.disagree, "values": [plain(v) for v in i.values],
        "overrides": [plain(v) for v in i.overrides],
        "layers": [{"kind": r.layer.kind, "path": r.layer.path, "line": r.layer.line, "what": r.layer.label,
                    "value": plain(r.layer.value), "shown": r.value, "agrees": r.agrees, "inverted": r.layer.invert,
                    "registered": r.layer.registered} for r in i.rows],
    } for i in items]
    return json.dumps(data, indent=2, ensure_ascii=False, default=repr)
