from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ptycho_knobs.audit.findings import NOT_LITERAL, Finding, Span
from ptycho_knobs.audit.index import matches, same
from ptycho_knobs.audit.model import ClassInfo, Layer, Model
from ptycho_knobs.audit.rule import AuditRule, Invalid, ProjectContext, Valid
from ptycho_knobs.audit.spec import SpecStmt

_NOT_EXPOSED = re.compile(r"(?i)\b(?:not (?:yet )?exposed|CLI backlog|backlog)\b")

SPEC = """\
### PyTorchExecutionConfig fields

- `ddp_backend` (str, default `'gloo'`): DDP backend. MUST be in `{'nccl', 'gloo'}`.
"""


def _required_to_rejected(op: str, value: Any) -> tuple[str, Any]:
    """`MUST be > 0` is what `if x <= 0: raise` enforces."""
    return {">": ("<=", value), ">=": ("<", value), "<": (">=", value), "<=": (">", value)}[op]


def _same_bound(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    """Rejection bounds compared on integers too: `x <= 0` is `x < 1`."""
    def norm(bound: tuple[str, Any]) -> tuple[str, Any]:
        op, v = bound
        if isinstance(v, int) and not isinstance(v, bool):
            if op == "<=":
                return "<", v + 1
            if op == ">=":
                return ">", v - 1
        return op, v
    return norm(a) == norm(b)


class SpecDrift(AuditRule):
    """The spec contradicts the code it documents.

    **What.** The registry's `spec.file` is read (its field bullets, flag-table rows and
    `file.py:a-b` references; see `ptycho_knobs/audit/spec.py` for the shapes). For each field
    bullet, the documented class is the config class holding most of the section's bullets:
    the bullet's default must be the field's default; "MUST be in {...}" and "MUST be > 0" must
    match a validation that raises (or one must exist); "not yet exposed" / "CLI backlog" must not
    be said of a field a flag already sets; a field bulleted twice must say the same thing; a
    bullet must name a field the class has, and every field of the class needs a bullet. Each
    flag row must name a flag a parser defines, with that flag's default and an existing config
    field; a CLI's execution flags need rows in that CLI's table (registry `spec.sections` with
    `cli`). A reference `file.py:a-b` written after a backticked name must still cover that
    name's definition (or, for "flags", the file's flags).

    **Why.** Readers and integrators (ptychodus) trust the spec; a wrong default, a promised
    validation that does not exist, or a line reference into the wrong code sends them astray.

    **Example.** "`accelerator` (str, default `'cpu'`)" while the dataclass says `'auto'`.

    **Use instead.** Let `ptycho-knobs generate` render the spec's field bullets and flag tables
    from the registry, and fix the code or the prose it cannot render.
    """

    CODE = "PK016"
    NAME = "spec-drift"
    MESSAGE = "The spec contradicts the code it documents."
    PROJECT = True
    PRIORITY = 14
    VALID = [
        Valid("class PyTorchExecutionConfig:\n    ddp_backend: str = 'gloo'\n    def __post_init__(self):\n"
              "        if self.ddp_backend not in {'nccl', 'gloo'}:\n            raise ValueError('bad')\n", spec=SPEC),
    ]
    INVALID = [
        Invalid("class PyTorchExecutionConfig:\n    ddp_backend: str = 'nccl'\n    def __post_init__(self):\n"
                "        if self.ddp_backend not in {'nccl', 'gloo'}:\n            raise ValueError('bad')\n", 3, 3,
                "[ddp_backend] the spec says `ddp_backend` defaults to 'gloo'; PyTorchExecutionConfig.ddp_backend "
                "defaults to 'nccl' (ptycho_torch/example.py:2)", path="specs/spec.md", spec=SPEC),
        Invalid("class PyTorchExecutionConfig:\n    ddp_backend: str = 'gloo'\n", 3, 3,
                "[ddp_backend] the spec says `ddp_backend` MUST be in {'gloo', 'nccl'}, but nothing in the tree "
                "validates PyTorchExecutionConfig.ddp_backend (ptycho_torch/example.py:2)",
                path="specs/spec.md", spec=SPEC),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        if ctx.spec is None:
            return
        model = ctx.model
        shown, stmts = ctx.spec
        bullets = [s for s in stmts if s.kind == "field"]
        sections: dict[str, list[SpecStmt]] = {}
        for b in bullets:
            sections.setdefault(b.section, []).append(b)
        for items in sections.values():
            info = _documented(model, [b.name for b in items])
            if info is None:
                continue
            yield from self._bullets(model, shown, info, items)
            yield from self._omitted(model, shown, info, items)
        yield from self._rows(ctx, model, shown, [s for s in stmts if s.kind == "flag"])
        yield from self._refs(model, shown, [s for s in stmts if s.kind == "ref"])

    # -- field bullets -------------------------------------------------------------------------

    def _bullets(self, model: Model, shown: str, info: ClassInfo, items: list[SpecStmt]) -> Iterable[Finding]:
        registry = model.project.index.registry
        seen: dict[str, SpecStmt] = {}
        for b in items:
            knob_name = (registry.find_attr(b.name) or (None,))[0]
            knob = knob_name.name if knob_name is not None else None
            at = Span(b.line, b.col, max(b.line, b.end_line))
            field = info.fields.get(b.name)
            where = f"{info.file.shown}:{field.at.line}" if field is not None else ""
            if field is None:
                yield self.finding(shown, at, knob, f"the spec documents `{b.name}`, which {info.name} "
                                   f"({info.file.shown}:{info.defn.at.line}) does not have", text=f"spec|missing|{b.name}")
                continue
            first = seen.get(b.name)
            if first is not None:
                differ = _differences(first, b)
                if differ:
                    yield self.finding(shown, Span(first.line, first.col, first.line), knob,
                                       f"the spec documents `{b.name}` twice and the two disagree: {differ} "
                                       f"({shown}:{first.line} and {shown}:{b.line})", text=f"spec|twice|{b.name}",
                                       related=((shown, b.line, "second bullet"),))
                continue
            seen[b.name] = b
            if b.value is not NOT_LITERAL and field.value is not NOT_LITERAL and not same(b.value, field.value):
                yield self.finding(shown, at, knob, f"the spec says `{b.name}` defaults to {b.value!r}; "
                                   f"{info.name}.{b.name} defaults to {field.value!r} ({where})",
                                   text=f"spec|default|{b.name}", related=((info.file.shown, field.at.line, "field"),))
            checks = self._checks(model, info, b.name)
            if b.choices is not None:
                whitelist = [c for c in checks if c.stmt is not None and c.stmt.choices and c.stmt.bound is None]
                if not whitelist:
                    yield self.finding(shown, at, knob, f"the spec says `{b.name}` MUST be in "
                                       f"{_set(b.choices)}, but nothing in the tree validates {info.name}.{b.name} "
                                       f"({where})", text=f"spec|unchecked|{b.name}",
                                       related=((info.file.shown, field.at.line, "field"),))
                else:
                    accepted = whitelist[0].stmt.choices or ()  # type: ignore[union-attr]
                    extra = [c for c in b.choices if not any(same(c, a) for a in accepted)]
                    lacking = [a for a in accepted if not any(same(a, c) for c in b.choices)]
                    if extra or lacking:
                        diff = []
                        if extra:
                            diff.append(f"the validation rejects {', '.join(map(repr, extra))}")
                        if lacking:
                            diff.append(f"accepts {', '.join(map(repr, lacking))} too")
                        yield self.finding(shown, at, knob, f"the spec says `{b.name}` MUST be in {_set(b.choices)}; "
                                           f"{' and '.join(diff)} ({whitelist[0].where})", text=f"spec|choices|{b.name}",
                                           related=((whitelist[0].path, whitelist[0].line, "validation"),))
            if b.bound is not None:
                want = _required_to_rejected(*b.bound)
                bounds = [c for c in checks if c.stmt is not None and c.stmt.bound is not None and c.stmt.bound[0] != "in"]
                if not bounds:
                    yield self.finding(shown, at, knob, f"the spec says `{b.name}` MUST be {b.bound[0]} {b.bound[1]!r}, "
                                       f"but nothing in the tree checks {info.name}.{b.name} ({where})",
                                       text=f"spec|unbounded|{b.name}", related=((info.file.shown, field.at.line, "field"),))
                elif not any(_same_bound(want, c.stmt.bound) for c in bounds):  # type: ignore[union-attr, arg-type]
                    c = bounds[0]
                    yield self.finding(shown, at, knob, f"the spec says `{b.name}` MUST be {b.bound[0]} {b.bound[1]!r}; "
                                       f"the validation at {c.where} raises for {b.name} {c.stmt.bound[0]} "  # type: ignore[union-attr]
                                       f"{c.stmt.bound[1]!r}", text=f"spec|bound|{b.name}",  # type: ignore[union-attr]
                                       related=((c.path, c.line, "validation"),))
            if knob is not None and _NOT_EXPOSED.search(b.text):
                flags = [lay for lay in model.of(knob, "flag") if lay.file in model.project.all_files]
                if flags:
                    lay = flags[0]
                    yield self.finding(shown, at, knob, f"the spec says `{b.name}` is not exposed on the command line "
                                       f"yet, but {lay.label} ({lay.where}) sets it", text=f"spec|exposed|{b.name}",
                                       related=((lay.path, lay.line, lay.label),))

    def _checks(self, model: Model, info: ClassInfo, name: str) -> list[Layer]:
        registry = model.project.index.registry
        found = registry.find_attr(name)
        if found is None:
            return []
        return [lay for lay in model.of(found[0].name, "check")
                if lay.stmt is not None and lay.stmt.name == name and lay.stmt.form in ("raise", "assert")]

    def _omitted(self, model: Model, shown: str, info: ClassInfo, items: list[SpecStmt]) -> Iterable[Finding]:
        named = {b.name for b in items}
        first, last = min(b.line for b in items), max(b.line for b in items)
        for attr, st in info.fields.items():
            if attr in named:
                continue
            owner = model.knob_of(info.file, st)
            yield self.finding(info.file.shown, st.at, owner[0].name if owner else None,
                               f"{info.name}.{attr} is not documented in the spec ({shown}:{first}-{last} lists the "
                               f"class's other fields)", text=f"spec|omitted|{info.name}.{attr}",
                               related=((shown, first, "spec field list"),))

    # -- flag tables ---------------------------------------------------------------------------

    def _rows(self, ctx: ProjectContext, model: Model, shown: str, rows: list[SpecStmt]) -> Iterable[Finding]:
        flags: dict[str, list[tuple[Any, Any]]] = {}  # spelling -> [(file, stmt)]
        for f in ctx.all_files:
            for st in f.facts.stmts:
                if st.kind == "flag":
                    for spelling in st.owner.split(","):
                        flags.setdefault(spelling, []).append((f, st))
        for row in rows:
            knob = model.knob_for_flags(row.exposed)
            at = Span(row.line, row.col, row.line)
            defined = [(f, st) for spelling in row.exposed for f, st in flags.get(spelling, [])]
            if not defined:
                yield self.finding(shown, at, knob.name if knob else None,
                                   f"the spec's flag table lists {row.name}, which no parser in the tree defines",
                                   text=f"spec|row|{row.name}")
                continue
            f, st = defined[0]
            if row.value is not NOT_LITERAL and st.value is not NOT_LITERAL and not (
                    same(row.value, st.value) or st.form in ("store_true", "store_false") and same(row.value, st.value)):
                yield self.finding(shown, at, knob.name if knob else None,
                                   f"the spec's flag table says {row.exposed[0]} defaults to {row.value!r}; the parser "
                                   f"at {f.shown}:{st.at.line} defaults to {st.value!r}", text=f"spec|row-default|{row.name}",
                                   related=((f.shown, st.at.line, row.exposed[0]),))
            if row.config_field and "." in row.config_field:
                cls, attr = row.config_field.rsplit(".", 1)
                infos = [i for i in model.classes.get(cls, []) if i.config]
                if infos and all(attr not in i.fields for i in infos):
                    yield self.finding(shown, at, knob.name if knob else None,
                                       f"the spec's flag table maps {row.exposed[0]} to {row.config_field}, which "
                                       f"{cls} ({infos[0].file.shown}:{infos[0].defn.at.line}) does not have",
                                       text=f"spec|row-field|{row.name}")
        registry = ctx.index.registry
        if registry.spec is None:
            return
        for section in registry.spec.sections:
            if not section.cli or not section.section:
                continue
            cli = next((c for c in registry.clis if c.name == section.cli), None)
            if cli is None:
                continue
            mine = [r for r in rows if r.section.startswith(section.section + ".") or r.section.startswith(section.section + " ")
                    or r.section == section.section]
            if not mine:
                continue
            listed = {s for r in mine for s in r.exposed}
            for f in ctx.all_files:
                if not matches(f.pure, cli.file):
                    continue
                for st in f.facts.stmts:
                    if st.kind != "flag" or set(st.owner.split(",")) & listed:
                        continue
                    owner = model.knob_of(f, st)
                    if owner is None or owner[0].home.value != "execution" or owner[0].deprecated is not None:
                        continue
                    yield self.finding(f.shown, st.at, owner[0].name,
                                       f"{st.owner.split(',')[0]} is an execution flag of the {cli.name} CLI, but the "
                                       f"spec's table for it ({shown}:{mine[0].line}) has no row for it",
                                       text=f"spec|norow|{st.owner}", related=((shown, mine[0].line, "flag table"),))

    # -- code references -----------------------------------------------------------------------

    def _refs(self, model: Model, shown: str, refs: list[SpecStmt]) -> Iterable[Finding]:
        for ref in refs:
            files = [f for f in model.project.all_files if matches(f.pure, ref.name)]
            if not files or ref.span is None:
                continue
            f = files[0]
            first, last = ref.span
            places: list[tuple[str, int, int]] = []
            for name in ref.names:
                for d in f.facts.defs:
                    if d.qualname.rsplit(".", 1)[-1] == name:
                        places.append((name, d.at.line, d.at.end_line))
                for site in f.facts.sites:
                    if site.func == name:
                        places.append((name, site.at.line, site.at.end_line))
            if not places and "flag" in ref.text.lower():
                by_scope: dict[str, list[int]] = {}
                for st in f.facts.stmts:
                    if st.kind == "flag":
                        by_scope.setdefault(st.scope, []).append(st.at.line)
                if by_scope:
                    lines = max(by_scope.values(), key=len)  # the file's main parser
                    places.append(("the flags", min(lines), max(lines)))
            if not places:
                continue
            slack = 3  # a cited range may round to the blank lines around what it cites
            if any(first - slack <= a and b <= last + slack for _, a, b in places):
                continue
            name, a, b = places[0]
            actual = f"{a}-{b}" if b != a else str(a)
            yield self.finding(shown, Span(ref.line, ref.col, ref.line), None,
                               f"the spec cites {ref.name}:{first}-{last} for {name}, which is at {ref.name}:{actual} now",
                               text=f"spec|ref|{ref.name}|{name}", related=((f.shown, a, name),))


def _documented(model: Model, names: list[str]) -> ClassInfo | None:
    """The config class holding most of the names a spec section documents (at least half)."""
    best: tuple[int, ClassInfo] | None = None
    for infos in model.classes.values():
        for info in infos:
            if not info.config:
                continue
            hits = sum(1 for n in set(names) if n in info.fields)
            if hits and (best is None or hits > best[0]):
                best = (hits, info)
    if best is None or best[0] * 2 < len(set(names)):
        return None
    return best[1]


def _differences(a: SpecStmt, b: SpecStmt) -> str:
    out = []
    if not same(a.value, b.value):
        out.append(f"default {a.value!r} vs {b.value!r}")
    if a.bound != b.bound:
        out.append(f"MUST be {_bound(a.bound)} vs {_bound(b.bound)}")
    if a.choices != b.choices:
        out.append(f"choices {_set(a.choices)} vs {_set(b.choices)}")
    if set(a.exposed) != set(b.exposed):
        out.append(f"exposed via {', '.join(a.exposed) or 'no flag'} vs {', '.join(b.exposed) or 'no flag'}")
    if bool(_NOT_EXPOSED.search(a.text)) != bool(_NOT_EXPOSED.search(b.text)):
        out.append("one says it is not exposed on the command line")
    return "; ".join(out)


def _bound(bound: tuple[str, Any] | None) -> str:
    return "unbounded" if bound is None else f"{bound[0]} {bound[1]!r}"


def _set(values: Any) -> str:
    if values is None:
        return "anything"
    return "{" + ", ".join(repr(v) for v in sorted(values, key=repr)) + "}"
