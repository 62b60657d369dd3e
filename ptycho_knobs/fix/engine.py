"""Turn findings' `Edit`s into source changes, file by file, or say why not.

Per file with something fixable: parse once with libcst (a file libcst cannot parse is never
edited), find each edit's expression by its exact range (PositionProvider), resolve every
edit to new text (`use-config` asks `scope` which config object is safe there), settle
overlaps, apply all changes in one transform (libcst round-trips every other byte), and
check the result still compiles. A finding counts as fixed only when every one of its edits
is applied; the rest are left, each with a `Reason`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from ptycho_knobs.audit.findings import Edit, Finding, Range
from ptycho_knobs.audit.index import matches
from ptycho_knobs.fix.carriers import Carrier, ConfigSources, attr_inverted
from ptycho_knobs.registry import Registry

KINDS = ("use-config", "set-choices", "set-literal")  # also the priority on one range


@dataclass(frozen=True)
class Reason:
    """Why a finding was not fixed: `kind` groups the summary, `detail` is specific."""

    kind: str
    detail: str
    where: str = ""  # "path:line" of the finding, or of where a config would be threaded in


@dataclass(frozen=True)
class Change:
    """One range of one file rewritten."""

    path: str  # as shown
    at: Range
    old: str
    new: str
    kind: str
    description: str


@dataclass
class FileResult:
    path: Path  # absolute
    shown: str
    old: bytes
    new: bytes | None = None  # None: unchanged
    encoding: str = "utf-8"
    changes: list[Change] = field(default_factory=list)


@dataclass
class Plan:
    files: dict[str, FileResult] = field(default_factory=dict)  # by shown path, changed files only
    fixed: list[tuple[Finding, list[Change]]] = field(default_factory=list)
    left: list[tuple[Finding, Reason]] = field(default_factory=list)
    # after --write, from the audit run again: findings resolved along (no edit of their own)
    # and findings the fixed tree has that the old one did not, by code
    also: Counter = field(default_factory=Counter)
    appeared: Counter = field(default_factory=Counter)
    verified: bool = False


def verify(plan: Plan, before: list[Finding], after: list[Finding]) -> None:
    """Hold the plan to what the audit of the written tree says. Per (code, knob), the count
    drop is what the edits resolved: a finding whose edits applied but that the audit still
    reports (a rule that compares places no edit covers) moves to `left`; the rest of the drop
    was resolved along. Findings whose exact place vanished count first."""
    def group(f: Finding) -> tuple[str, str | None]:
        return (f.code, f.knob)

    def place(f: Finding) -> tuple[Any, ...]:
        return (f.code, f.knob, f.path, f.line, f.col)

    was, now = Counter(map(group, before)), Counter(map(group, after))
    still = Counter(map(place, after))
    claimed: dict[tuple[str, str | None], list[tuple[Finding, list[Change]]]] = {}
    for item in plan.fixed:
        claimed.setdefault(group(item[0]), []).append(item)
    fixed: list[tuple[Finding, list[Change]]] = []
    for key in was:
        drop = max(0, was[key] - now[key])
        items = sorted(claimed.get(key, []), key=lambda fc: still[place(fc[0])] > 0)
        fixed.extend(items[:drop])
        for f, changes in items[drop:]:
            at = ", ".join(dict.fromkeys(f"{c.path}:{c.at.line}" for c in changes))
            plan.left.append((f, Reason("still-reported", f"its edits were applied (at {at}), but the audit still "
                                        "reports it: it compares places no edit covers", f"{f.path}:{f.line}")))
        if drop > len(items):
            plan.also[key[0]] += drop - len(items)
    for key in now:
        if now[key] > was[key]:
            plan.appeared[key[0]] += now[key] - was[key]
    plan.fixed = [fc for fc in plan.fixed if any(fc is x for x in fixed)]
    plan.verified = True


# -- resolution of one edit --------------------------------------------------------------


@dataclass(eq=False)
class _Resolved:
    edit: Edit
    node: Any  # the libcst node replaced
    new_node: Any
    text: str
    old_text: str
    description: str


def _carrier_key(e: Edit) -> tuple[str, str | None, str | None]:
    return (e.knob, e.config_class, e.attr)


def _range_key(r: Range) -> tuple[int, int, int, int]:
    return (r.line, r.col, r.end_line, r.end_col)


def _overlap(a: Range, b: Range) -> bool:
    return (a.line, a.col) < (b.end_line, b.end_col) and (b.line, b.col) < (a.end_line, a.end_col)


class FileFixer:
    """libcst view of one file and the edits asked of it."""

    def __init__(self, shown: str, path: Path, data: bytes, registry: Registry, sources: ConfigSources,
                 scope_lines: list[int] | None = None) -> None:
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider

        self.cst = cst
        self.shown = shown
        self.path = path
        self.data = data
        self.registry = registry
        self.sources = sources
        self.module = cst.parse_module(data)  # raises ParserSyntaxError
        self.wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
        self._nodes: dict[tuple[int, int, int, int], Any] | None = None
        self._scope: Any = None
        self._parents: Any = None
        self.positions = self.wrapper.resolve(PositionProvider)
        if scope_lines:
            from ptycho_knobs.fix.scope import ScopeIndex

            self._scope = ScopeIndex(MetadataWrapper(self._scope_module(scope_lines), unsafe_skip_copy=True),
                                     registry.configs, lambda cfg: matches(PurePath(path), cfg.file), self.positions)

    def _scope_module(self, lines: list[int]) -> Any:
        """The module the scope passes run on: without the top-level functions and classes that
        hold no edit (libcst's metadata passes cost per node). Imports, module-level statements
        and anything named like a config class or object stay, so names resolve as before;
        the kept subtrees are the very same nodes, so positions and edits still apply. An edit
        at module level gets the whole module."""
        cst = self.cst
        names = {c.name for c in self.registry.configs} | {v for c in self.registry.configs for v in c.vars}
        kept = []
        inside = set()
        for stmt in self.module.body:
            r = self.positions[stmt]
            holds = [ln for ln in lines if r.start.line <= ln <= r.end.line]
            if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                inside.update(holds)
                if not holds and stmt.name.value not in names:
                    continue
            kept.append(stmt)
        if set(lines) - inside:
            return self.module
        return self.module.with_changes(body=kept)

    @property
    def encoding(self) -> str:
        return self.module.encoding

    def node_at(self, at: Range) -> tuple[Any, bool]:
        """The expression at exactly `at`, and whether `at` includes its own parentheses (ast
        counts a tuple's parentheses, never a parenthesised name's or number's)."""
        if self._nodes is None:
            self._nodes = {}
            for node, r in self.positions.items():
                if not isinstance(node, self.cst.BaseExpression):
                    continue
                key = (r.start.line, r.start.column + 1, r.end.line, r.end.column + 1)
                self._nodes.setdefault(key, (node, False))  # the outermost expression of that range
                lpar, rpar = getattr(node, "lpar", None), getattr(node, "rpar", None)
                if lpar and rpar:
                    before = "".join(self.code(p) for p in lpar)
                    after = "".join(self.code(p) for p in rpar)
                    if "\n" not in before and "\n" not in after:
                        wide = (key[0], key[1] - len(before), key[2], key[3] + len(after))
                        self._nodes.setdefault(wide, (node, True))
        return self._nodes.get(_range_key(at), (None, False))

    @property
    def scope(self) -> Any:
        assert self._scope is not None, "built with the lines of its use-config edits"
        return self._scope

    def code(self, node: Any) -> str:
        return self.module.code_for_node(node)

    def resolve(self, edit: Edit, carriers: list[Carrier]) -> _Resolved | Reason:
        cst = self.cst
        node, wide = self.node_at(edit.at)
        where = f"{self.shown}:{edit.at.line}"
        if node is None:
            return Reason("range", f"no expression at {edit.at.line}:{edit.at.col}-{edit.at.end_line}:{edit.at.end_col} "
                          "(the file changed since the audit, or the range is off)", where)
        from ptycho_knobs.fix.literals import Unwritable, literal_node, sequence

        try:
            if edit.kind == "use-config":
                found = self._use_config(edit, node, carriers, where)
                if isinstance(found, Reason):
                    return found
                new, what = found
            elif edit.kind == "set-literal":
                value = edit.value
                if edit.invert and isinstance(value, bool):
                    value = not value
                if value is None and not self._admits_none(node):
                    return Reason("unwritable", "None would contradict the field's annotation "
                                  f"`{self.code(self.scope_parent(node).annotation.annotation)}`", where)
                new = literal_node(self._bare(node), value)
                what = f"{edit.knob}: set to the registry value {value!r}"
            elif edit.kind == "set-choices":
                if not isinstance(node, (cst.List, cst.Tuple, cst.Set)):
                    return Reason("unwritable", "choices= is not a list, tuple or set literal", where)
                values = edit.value if isinstance(edit.value, (list, tuple)) else (edit.value,)
                new = sequence(node, list(values))
                what = f"{edit.knob}: choices set to the registry's {tuple(values)!r}"
            else:
                return Reason("unknown-edit", f"edit kind {edit.kind!r} is not known to this version of fix", where)
        except Unwritable as exc:
            return Reason("unwritable", str(exc), where)
        if wide:  # the range holds the parentheses: the new node brings them (or the old ones)
            if not getattr(new, "lpar", None):
                new = new.with_changes(lpar=node.lpar, rpar=node.rpar)
            old_text, text, final = self.code(node), self.code(new), new
        else:  # the range is inside the node's parentheses, which stay
            old_text, text = self.code(self._bare(node)), self.code(self._bare(new) if getattr(node, "lpar", None) else new)
            final = new.with_changes(lpar=node.lpar, rpar=node.rpar) if getattr(node, "lpar", None) else new
        if text == old_text:
            return Reason("unchanged", f"{old_text} already reads as the registry value", where)
        return _Resolved(edit, node, final, text, old_text, what)

    def scope_parent(self, node: Any) -> Any:
        if self._parents is None:
            from libcst.metadata import ParentNodeProvider

            self._parents = self._scope.parents if self._scope is not None else self.wrapper.resolve(ParentNodeProvider)
        return self._parents.get(node)

    def _admits_none(self, node: Any) -> bool:
        """False when `node` is the default of an annotated field whose annotation rules None
        out (`device: str = 'cuda'`): None there needs the annotation changed too."""
        cst = self.cst
        parent = self.scope_parent(node)
        if not isinstance(parent, cst.AnnAssign) or parent.value is not node:
            return True
        text = self.code(parent.annotation.annotation)
        return bool(re.search(r"\b(Optional|None|Any|object)\b", text)) or text.strip("'\"") in ("", "typing.Any")

    def _bare(self, node: Any) -> Any:
        """`node` without its own parentheses."""
        return node.with_changes(lpar=[], rpar=[]) if getattr(node, "lpar", None) else node

    def _use_config(self, edit: Edit, node: Any, carriers: list[Carrier], where: str) -> tuple[Any, str] | Reason:
        cst = self.cst
        scope = self.scope
        found = scope.objects_at(node)
        by_config = {(c.config.name, c.config.file): c for c in carriers}
        options = [(o, by_config[(o.config.name, o.config.file)]) for o in found.safe
                   if (o.config.name, o.config.file) in by_config]
        if not options:
            unsafe = [u for u in found.unsafe if (u.config.name, u.config.file) in by_config]
            if unsafe:
                return Reason("maybe-none", unsafe[0].detail, where)
            return no_object(self.shown, found.where, carriers, self.registry, edit.at.line)
        used = self._objects_used_near(node)
        kind_order = {"param": 0, "local": 0, "self": 1}
        obj, carrier = min(options, key=lambda oc: (oc[0].expr not in used, oc[1].rank, kind_order[oc[0].kind],
                                                     carriers.index(oc[1]), oc[0].expr))
        ref = f"{obj.expr}.{carrier.attr}"
        # `edit.invert`: whether the literal's keyword holds the opposite of `<obj>.<edit.attr>`;
        # another attribute of the knob differs from that one by both attributes' senses
        knob = self.registry.find(edit.knob)
        base = attr_inverted(knob, edit.attr or edit.knob) if knob is not None else False
        negate = edit.invert != (base != carrier.inverted)
        text = f"not {ref}" if negate else ref
        if negate and not self._bare_context(node):
            text = f"({text})"
        sense = " (inverted)" if negate else ""
        return cst.parse_expression(text), f"{edit.knob}: take it from {carrier.config.name}.{carrier.attr}{sense}"

    def _bare_context(self, node: Any) -> bool:
        """Whether `not x` can stand where `node` is without parentheses."""
        cst = self.cst
        parent = self.scope.parent(node)
        return isinstance(parent, (cst.Arg, cst.Element, cst.DictElement, cst.Assign, cst.AnnAssign,
                                   cst.Return, cst.Param, cst.Index)) or bool(getattr(node, "lpar", None))

    def _objects_used_near(self, node: Any) -> set[str]:
        """`x` and `self.x` for every `x.attr` / `self.x.attr` read in the same statement."""
        cst = self.cst
        scope = self.scope
        stmt = scope.statement(node)
        if not isinstance(stmt, cst.BaseSmallStatement):
            stmt = next((a for a in scope.ancestors(node) if isinstance(a, cst.Call)), node)
        out: set[str] = set()

        class V(cst.CSTVisitor):
            def visit_Attribute(self, n: Any) -> None:
                if isinstance(n.value, cst.Name):
                    out.add(n.value.value)
                elif isinstance(n.value, cst.Attribute) and isinstance(n.value.value, cst.Name):
                    out.add(f"{n.value.value.value}.{n.value.attr.value}")

        stmt.visit(V())
        return out

    def apply(self, chosen: list[_Resolved]) -> bytes:
        cst = self.cst
        replace = {id(r.node): r.new_node for r in chosen}
        # Visit only the top-level statements that can hold a replaced node: the span from the
        # end of the statement before to the start of the one after holds it (decorators and
        # comments included). Positions below the top are not used: libcst's Param range, for
        # one, leaves out its default.
        body = list(self.module.body)
        top = {id(s) for s in body}
        lines = [self.positions[r.node].start.line for r in chosen]
        wanted: set[int] = set()
        for i, stmt in enumerate(body):
            lo = self.positions[body[i - 1]].end.line if i else 1
            hi = self.positions[body[i + 1]].start.line if i + 1 < len(body) else float("inf")
            if any(lo <= ln <= hi for ln in lines):
                wanted.add(id(stmt))

        class T(cst.CSTTransformer):
            def on_visit(self, node: Any) -> bool:
                return id(node) in wanted if id(node) in top else True

            def on_leave(self, original: Any, updated: Any) -> Any:
                return replace.get(id(original), updated)

        return self.module.visit(T()).bytes


# -- the plan --------------------------------------------------------------------------------


def plan_fixes(findings: list[Finding], registry: Registry, files: dict[str, tuple[Path, bytes]],
               roots: list[Path]) -> Plan:
    """Everything `fix` would change for `findings`, and why the others stay.

    `files` maps each shown path to (absolute path, the bytes the audit read)."""
    plan = Plan()
    sources = ConfigSources(registry, roots)
    carriers_of: dict[tuple[str, str | None, str | None], tuple[list[Carrier], Reason | None]] = {}
    per_file: dict[str, list[Finding]] = {}

    for f in findings:
        where = f"{f.path}:{f.line}"
        if not f.edits:
            if f.code == "PK003" and f.fix is not None:
                plan.left.append((f, Reason("no-edit", "PK003 (a registry line number: `audit --fix-locations`)", where)))
            else:
                plan.left.append((f, Reason("no-edit", f"{f.code} ({f.rule})", where)))
            continue
        problem = None
        for e in f.edits:
            if e.kind not in KINDS:
                problem = Reason("unknown-edit", f"edit kind {e.kind!r} is not known to this version of fix", where)
            elif e.path not in files:
                problem = Reason("unread", f"{e.path} was not read by the audit", where)
            elif e.kind == "use-config":
                key = _carrier_key(e)
                if key not in carriers_of:
                    knob = registry.find(e.knob)
                    if knob is None:
                        carriers_of[key] = ([], Reason("no-carrier", f"knob {e.knob} is not in the registry"))
                    else:
                        ok, why = sources.verify(registry, knob, e.config_class, e.attr)
                        carriers_of[key] = (ok, Reason(why.kind, why.detail) if why else None)
                ok, why = carriers_of[key]
                if why is not None:
                    problem = Reason(why.kind, why.detail, where)
            if problem:
                break
        if problem:
            plan.left.append((f, problem))
            continue
        for path in dict.fromkeys(e.path for e in f.edits):
            per_file.setdefault(path, []).append(f)

    # a finding whose edits span files is fixed only if every file takes its edits
    results: dict[int, list[_Resolved]] = {}
    failed: dict[int, Reason] = {}
    fixers: dict[str, FileFixer] = {}
    chosen_by_file: dict[str, list[_Resolved]] = {}
    for shown, group in per_file.items():
        path, data = files[shown]
        early = _prescreen(shown, data, group, carriers_of, registry)
        for f in group:
            reason = next((early[id(e)] for e in f.edits if id(e) in early), None)
            if reason is not None:
                failed.setdefault(id(f), reason)
        group = [f for f in group if id(f) not in failed]
        if not group:
            continue
        lines = sorted({e.at.line for f in group for e in f.edits if e.kind == "use-config" and e.path == shown})
        try:
            fixer = FileFixer(shown, path, data, registry, sources, scope_lines=lines)
        except Exception as exc:  # libcst ParserSyntaxError, or an encoding it cannot read
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            for f in group:
                failed.setdefault(id(f), Reason("parse", f"libcst cannot parse {shown} ({first}); not edited", shown))
            continue
        fixers[shown] = fixer
        claimed: dict[tuple[int, int, int, int], _Resolved] = {}
        order = sorted(group, key=lambda f: min(KINDS.index(e.kind) for e in f.edits if e.path == shown))
        for f in order:
            if id(f) in failed:
                continue
            mine: list[_Resolved] = []
            reason: Reason | None = None
            for e in f.edits:
                if e.path != shown:
                    continue
                key = _range_key(e.at)
                if key in claimed and claimed[key].edit.kind == "use-config" and e.kind != "use-config":
                    mine.append(claimed[key])  # the literal is gone: its drift with it
                    continue
                r = fixer.resolve(e, carriers_of.get(_carrier_key(e), ([], None))[0])
                if isinstance(r, Reason):
                    reason = r
                    break
                if key in claimed:
                    if claimed[key].text != r.text:
                        reason = Reason("conflict", f"another edit rewrites the same range as {claimed[key].text}",
                                        f"{shown}:{e.at.line}")
                        break
                    mine.append(claimed[key])
                    continue
                if any(_overlap(e.at, c.edit.at) for c in claimed.values()):
                    reason = Reason("conflict", "overlaps another edit", f"{shown}:{e.at.line}")
                    break
                mine.append(r)
            if reason is not None:
                failed[id(f)] = reason
                continue
            for r in mine:
                claimed.setdefault(_range_key(r.edit.at), r)
            results.setdefault(id(f), []).extend(mine)
        chosen_by_file[shown] = list(claimed.values())

    # apply, and check every edited file still compiles
    for shown, chosen in chosen_by_file.items():
        # only the changes of findings that are fixed in every file they touch
        live = [r for r in chosen if any(id(f) not in failed and any(r is x for x in results.get(id(f), []))
                                         for f in per_file[shown])]
        if not live:
            continue
        fixer = fixers[shown]
        new = fixer.apply(live)
        try:
            compile(new, str(fixer.path), "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            for f in per_file[shown]:
                failed.setdefault(id(f), Reason("compile", f"the fixed {shown} would not compile ({exc}); not edited", shown))
            continue
        changes = [Change(shown, r.edit.at, r.old_text, r.text, r.edit.kind, r.description)
                   for r in sorted(live, key=lambda r: _range_key(r.edit.at))]
        plan.files[shown] = FileResult(fixer.path, shown, fixer.data, new, fixer.encoding, changes)

    left = {id(f) for f, _ in plan.left}
    for f in findings:
        if not f.edits or id(f) in left:
            continue
        if id(f) in failed:
            plan.left.append((f, failed[id(f)]))
            continue
        mine = results.get(id(f), [])
        changes = [c for r in mine for c in plan.files[r.edit.path].changes if c.at == r.edit.at] \
            if all(r.edit.path in plan.files for r in mine) else []
        if not changes:
            plan.left.append((f, Reason("compile", "its file was not edited", f"{f.path}:{f.line}")))
            continue
        plan.fixed.append((f, changes))
    return plan


def _class_label(cfg: Any, registry: Registry) -> str:
    same = [c for c in registry.configs if c.name == cfg.name]
    return f"{cfg.name} ({cfg.file})" if len({c.file for c in same}) > 1 else cfg.name


def no_object(shown: str, where: str, carriers: list[Carrier], registry: Registry, line: int) -> Reason:
    classes = " or ".join(dict.fromkeys(_class_label(c.config, registry) for c in carriers))
    place = f"the module level of {shown}" if where == "module level" else f"{where.split(' (line ')[0]} at {shown}:" \
        f"{where.rsplit('line ', 1)[-1].rstrip(')')}"
    return Reason("no-object", f"{place} has no {classes}", f"{shown}:{line}")


def _prescreen(shown: str, data: bytes, group: list[Finding], carriers_of: dict, registry: Registry) -> dict[int, Reason]:
    """Edits that cannot be fixed, known from `ast` alone (see `prescreen`): by id(edit)."""
    from ptycho_knobs.fix.prescreen import AstView

    out: dict[int, Reason] = {}
    view: AstView | None = None
    for f in group:
        for e in f.edits:
            if e.kind != "use-config" or e.path != shown:
                continue
            carriers = carriers_of.get(_carrier_key(e), ([], None))[0]
            if view is None:
                try:
                    view = AstView(data)
                except (SyntaxError, ValueError):
                    return out  # libcst decides
            words = {c.config.name for c in carriers} | {v for c in carriers for v in c.config.vars}
            if not view.may_hold(e.at.line, words):
                out[id(e)] = no_object(shown, view.where(e.at.line), carriers, registry, e.at.line)
    return out


def drop_file(plan: Plan, shown: str, reason: Reason) -> None:
    """Take a file's changes out of the plan (its write was refused): its findings are left."""
    plan.files.pop(shown, None)
    keep = []
    for f, changes in plan.fixed:
        if any(e.path == shown for e in f.edits):
            plan.left.append((f, reason))
        else:
            keep.append((f, changes))
    plan.fixed = keep
