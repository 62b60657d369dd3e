"""Which config objects are in scope at a node, and surely bound and not None there.

An object counts as one of a `configs` class when it is
- a parameter annotated with the class (`Optional[...]`, `X | None` and string annotations
  are read too; a union with any other type is not the class), or unannotated and named in
  the class's `vars`;
- a local assigned from the class's constructor (`cfg = PyTorchExecutionConfig(...)`,
  `cfg = cfg or PyTorchExecutionConfig()`), or from anything when its name is in `vars`
  (`execution_config = build(args)`, `a, training_config = configs`);
- `self.<attr>` (in a method) when every assignment to it in the class is one of the above,
  or the class declares `attr: TheClass` in its body.

Classes are recognised by qualified name (libcst's QualifiedNameProvider, through imports,
aliases and relative imports): `ptycho_torch.config_params.TrainingConfig` is the `configs`
entry whose file is `ptycho_torch/config_params.py`.

Safe means bound and not None on every path to the node. Every binding of the name in the
scope must be of the same class (anything else: not a candidate). A parameter that defaults
to None (or is annotated Optional) is in scope only below a guard that dominates the node:
`if x is None: x = TheClass(...)` (or `raise`/`return`), `x = x or TheClass()`,
`assert x is not None`, or inside `if x is not None:` / `if x:`. A local must be bound by a
statement that dominates the node (before it in the same block or an enclosing one, or an
if/else whose every branch binds it). An explicit `x = None` anywhere disqualifies `x`.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import libcst as cst
from libcst.metadata import (
    ClassScope,
    ComprehensionScope,
    FunctionScope,
    GlobalScope,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    Scope,
    ScopeProvider,
)

from ptycho_knobs.fix.flow import (
    binder,
    binds,
    global_names,
    is_none,
    none_guard,
    self_assignments,
    tested_name,
    true_when_none,
)
from ptycho_knobs.ktypes import ConfigClass


@dataclass(frozen=True)
class ConfigObject:
    """An expression that holds a config object at the node: `execution_config`, `self.cfg`."""

    expr: str
    config: ConfigClass
    kind: str  # "param" | "local" | "self"


@dataclass(frozen=True)
class Unsafe:
    """A config object that is not safe at the node, and why (with lines)."""

    expr: str
    config: ConfigClass
    detail: str


@dataclass
class InScope:
    safe: list[ConfigObject]
    unsafe: list[Unsafe]
    where: str  # "setup_trainer() (line 12)" or "module level": where a config would be threaded in


# -- what a binding holds ------------------------------------------------------------------

_CONFIG, _NONE, _OTHER = "config", "none", "other"


@dataclass(frozen=True)
class Binding:
    kind: str  # _CONFIG | _NONE | _OTHER
    config: ConfigClass | None = None
    line: int = 0
    stmt: cst.CSTNode | None = None  # the statement that binds (None for parameters)
    maybe_none: bool = False  # a parameter defaulting to None or annotated Optional
    param: bool = False


def module_of(file: str) -> str:
    parts = file[:-3].split("/") if file.endswith(".py") else file.split("/")
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(p for p in parts if p)


def _dotted(node: cst.CSTNode) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None



class ScopeIndex:
    """libcst metadata of one module, and the questions `fix` asks of it."""

    def __init__(self, wrapper: MetadataWrapper, configs: tuple[ConfigClass, ...],
                 is_this_file: Callable[[ConfigClass], bool], positions: Any = None) -> None:
        """`positions`: PositionProvider's map of the full module, when `wrapper` holds a reduced
        one (the same nodes, fewer of them)."""
        self.module = wrapper.module
        wanted = [ParentNodeProvider, ScopeProvider, QualifiedNameProvider] + ([] if positions else [PositionProvider])
        meta = wrapper.resolve_many(wanted)  # one batched pass per dependency level
        self.parents = meta[ParentNodeProvider]
        self.scopes = meta[ScopeProvider]
        self.qnames = meta[QualifiedNameProvider]
        self.positions = positions if positions is not None else meta[PositionProvider]
        self.configs = configs
        self.is_this_file = is_this_file
        self._class_attrs: dict[cst.ClassDef, dict[str, list[Binding]]] = {}
        self._declared: dict[cst.CSTNode, set[str]] = {}
        self._bindings: dict[tuple[int, str], list[Binding]] = {}
        self._resolving: set[tuple[int, str]] = set()

    # -- positions and structure ---------------------------------------------------------

    def line(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        node = self.parents.get(node)
        while node is not None:
            yield node
            node = self.parents.get(node)

    def enclosing_function(self, node: cst.CSTNode) -> cst.FunctionDef | cst.Module:
        for a in self.ancestors(node):
            if isinstance(a, (cst.FunctionDef, cst.Module)):
                return a
        return self.module

    # -- which config class an expression names --------------------------------------------

    def config_for_qname(self, qname: str) -> ConfigClass | None:
        mod, _, cls = qname.rpartition(".")
        mod = mod.lstrip(".")
        hits = []
        for cfg in self.configs:
            if cfg.name != cls:
                continue
            cmod = module_of(cfg.file)
            if (not mod and self.is_this_file(cfg)) or (mod and (cmod == mod or cmod.endswith("." + mod))):
                hits.append(cfg)
        unique = {(c.name, c.file): c for c in hits}
        return next(iter(unique.values())) if len(unique) == 1 else None

    def _names_of(self, node: cst.CSTNode, scope: Scope | None, parsed: bool) -> set[str]:
        if parsed:  # a node of a parsed string annotation: resolve its text in the scope
            text = _dotted(node)
            if not text or scope is None:
                return set()
            return {q.name for q in scope.get_qualified_names_for(text)}
        value = self.qnames.get(node)
        if value is None:
            return set()
        if callable(value):  # QualifiedNameProvider's values are computed lazily
            value = value()
        return {q.name for q in value}

    def class_named(self, node: cst.CSTNode, scope: Scope | None, parsed: bool = False) -> ConfigClass | None:
        for q in sorted(self._names_of(node, scope, parsed)):
            cfg = self.config_for_qname(q)
            if cfg is not None:
                return cfg
        return None

    def annotation(self, expr: cst.BaseExpression, scope: Scope | None) -> tuple[ConfigClass | None, bool, bool]:
        """(config class, optional, names something else) of an annotation."""
        members: list[tuple[cst.BaseExpression, bool]] = []
        optional = False

        def walk(e: cst.BaseExpression, parsed: bool) -> None:
            nonlocal optional
            if isinstance(e, cst.SimpleString):
                try:
                    inner = cst.parse_expression(ast.literal_eval(e.value))
                except Exception:
                    members.append((e, parsed))
                    return
                walk(inner, True)
                return
            if is_none(e):
                optional = True
                return
            if isinstance(e, cst.BinaryOperation) and isinstance(e.operator, cst.BitOr):
                walk(e.left, parsed)
                walk(e.right, parsed)
                return
            if isinstance(e, cst.Subscript):
                head = self._names_of(e.value, scope, parsed) | ({_dotted(e.value) or ""} if parsed else set())
                short = {h.rpartition(".")[2] for h in head}
                if "Optional" in short or "Union" in short:
                    if "Optional" in short:
                        optional = True
                    for el in e.slice:
                        if isinstance(el.slice, cst.Index):
                            walk(el.slice.value, parsed)
                    return
            members.append((e, parsed))

        walk(expr, False)
        found = [self.class_named(m, scope, parsed) for m, parsed in members]
        classes = {(c.name, c.file): c for c in found if c is not None}
        other = len(members) != 1 or len(classes) != 1
        cfg = next(iter(classes.values())) if len(classes) == 1 and len(members) == 1 else None
        return cfg, optional, other

    def constructs(self, expr: cst.BaseExpression | None, scope: Scope | None) -> ConfigClass | None:
        """The config class `expr` constructs (`PyTorchExecutionConfig(...)`), if any."""
        if isinstance(expr, cst.Call):
            return self.class_named(expr.func, scope)
        return None

    # -- bindings --------------------------------------------------------------------------

    def _by_vars(self, name: str) -> ConfigClass | None:
        hits = [c for c in self.configs if name in c.vars]
        return hits[0] if len(hits) == 1 else None

    def param_binding(self, param: cst.Param, scope: Scope | None) -> Binding:
        name = param.name.value
        line = self.line(param)
        if param.star in ("*", "**"):
            return Binding(_OTHER, line=line, param=True)
        maybe_none = False
        if param.annotation is not None:
            cfg, optional, other = self.annotation(param.annotation.annotation, scope)
            if cfg is None or other:
                return Binding(_OTHER, line=line, param=True)
            maybe_none = optional
        else:
            cfg = self._by_vars(name)
            if cfg is None:
                return Binding(_OTHER, line=line, param=True)
        if param.default is not None:
            if is_none(param.default):
                maybe_none = True
            elif self.constructs(param.default, scope) != cfg:
                return Binding(_OTHER, line=line, param=True)
        return Binding(_CONFIG, cfg, line, None, maybe_none, True)

    def value_binding(self, name: str, value: cst.BaseExpression | None, scope: Scope | None,
                      line: int, stmt: cst.CSTNode, declared: ConfigClass | None = None,
                      vars_name: str | None = None) -> Binding:
        """What `name = value` binds (`declared`: the class an annotation gives; `vars_name`: the
        name to look up in `vars` when it is not `name`, as for `self.attr`)."""
        if is_none(value):
            return Binding(_NONE, line=line, stmt=stmt)
        cfg = self.constructs(value, scope)
        if cfg is None and isinstance(value, cst.BooleanOperation) and isinstance(value.operator, cst.Or) \
                and isinstance(value.left, cst.Name):
            built = self.constructs(value.right, scope)  # x = y or TheClass()
            if built is not None and self._config_or_none(value.left.value, name, scope, built):
                cfg = built
        if cfg is None and isinstance(value, cst.IfExp):
            cfg = self._default_ifexp(name, value, scope)
        if cfg is None:
            cfg = declared or self._by_vars(vars_name or name)
        elif declared is not None and declared != cfg:
            return Binding(_OTHER, line=line, stmt=stmt)
        if cfg is None:
            return Binding(_OTHER, line=line, stmt=stmt)
        return Binding(_CONFIG, cfg, line, stmt)

    def _default_ifexp(self, name: str, e: cst.IfExp, scope: Scope | None) -> ConfigClass | None:
        """`TheClass() if y is None else y` and its mirror images."""
        tested = tested_name(e.test)
        when_none = true_when_none(e.test, tested) if tested else None
        if when_none is None or tested is None:
            return None
        built, kept = (e.body, e.orelse) if when_none else (e.orelse, e.body)
        cfg = self.constructs(built, scope)
        if cfg is None:
            return None
        if isinstance(kept, cst.Name) and kept.value == tested and self._config_or_none(tested, name, scope, cfg):
            return cfg
        return cfg if self.constructs(kept, scope) == cfg else None

    def _config_or_none(self, other: str, name: str, scope: Scope | None, cfg: ConfigClass) -> bool:
        """Whether `other` (read while binding `name`) only ever holds a `cfg` object or None."""
        if other == name:
            return True  # x = x or TheClass(): x's other bindings are judged on their own
        if scope is None or other not in scope.assignments:
            return False
        found = self.name_bindings(scope, other)
        return bool(found) and all(b.kind in (_CONFIG, _NONE) and (b.config is None or b.config == cfg) for b in found)

    def name_bindings(self, scope: Scope, name: str) -> list[Binding]:
        key = (id(scope), name)
        if key not in self._bindings:
            if key in self._resolving:  # a cycle (a = b or C(); b = a or C()): not judged
                return [Binding(_OTHER)]
            self._resolving.add(key)
            try:
                self._bindings[key] = self._name_bindings(scope, name)
            finally:
                self._resolving.discard(key)
        return self._bindings[key]

    def _name_bindings(self, scope: Scope, name: str) -> list[Binding]:
        out = []
        for assignment in scope.assignments[name]:
            node = getattr(assignment, "node", None)
            if isinstance(node, cst.Param):
                out.append(self.param_binding(node, scope))
            elif isinstance(node, cst.Name):
                out.append(self._target_binding(node, name, scope))
            else:  # imports, defs, classes
                out.append(Binding(_OTHER, line=self.line(node) if node is not None else 0))
        return out

    def _target_binding(self, target: cst.Name, name: str, scope: Scope) -> Binding:
        line = self.line(target)
        child: cst.CSTNode = target
        for node in self.ancestors(target):
            if isinstance(node, cst.Assign):
                stmt = self.statement(node)
                if child is node.value:
                    break
                simple = all(isinstance(t.target, cst.Name) for t in node.targets)
                if simple:
                    return self.value_binding(name, node.value, scope, line, stmt)
                cfg = self._by_vars(name)  # unpacking: trust the conventional name
                return Binding(_CONFIG, cfg, line, stmt) if cfg else Binding(_OTHER, line=line, stmt=stmt)
            if isinstance(node, cst.AnnAssign):
                stmt = self.statement(node)
                declared, optional, other = self.annotation(node.annotation.annotation, scope)
                if node.value is None:
                    return Binding(_OTHER, line=line, stmt=stmt)  # a declaration, not a binding
                if declared is None or other:
                    if is_none(node.value):
                        return Binding(_NONE, line=line, stmt=stmt)
                    return Binding(_OTHER, line=line, stmt=stmt)
                return self.value_binding(name, node.value, scope, line, stmt, declared)
            if isinstance(node, cst.NamedExpr):
                return self.value_binding(name, node.value, scope, line, self.statement(node))
            if isinstance(node, (cst.AssignTarget, cst.Tuple, cst.List, cst.Element, cst.StarredElement)):
                child = node
                continue
            break
        return Binding(_OTHER, line=line)

    def statement(self, node: cst.CSTNode) -> cst.CSTNode:
        """The statement (or small statement) holding `node`, as found in a block."""
        prev = node
        for a in (node, *self.ancestors(node)):
            if isinstance(a, (cst.IndentedBlock, cst.Module, cst.SimpleStatementLine, cst.SimpleStatementSuite)) \
                    and a is not node:
                return prev
            prev = a
        return prev

    # -- dominance -------------------------------------------------------------------------

    def _blocks_above(self, node: cst.CSTNode, stop: cst.CSTNode) -> Iterator[tuple[cst.CSTNode, int, cst.CSTNode]]:
        """(container, index of the item holding `node`, that item) for every statement
        sequence between `node` and `stop` (innermost first)."""
        child = node
        for a in self.ancestors(node):
            if a is stop and not isinstance(a, cst.Module):
                return
            if isinstance(a, (cst.IndentedBlock, cst.Module, cst.SimpleStatementLine, cst.SimpleStatementSuite)):
                for i, item in enumerate(a.body):
                    if item is child:
                        yield a, i, item
                        break
            if a is stop:
                return
            child = a

    def _guards_from_tests(self, node: cst.CSTNode, stop: cst.CSTNode, name: str) -> bool:
        """Inside `if x is not None:` / `if x:` (or the else of `if x is None:`)."""
        child = node
        for a in self.ancestors(node):
            if a is stop:
                return False
            if isinstance(a, cst.If):
                when_none = true_when_none(a.test, name)
                if when_none is False and child is a.body:
                    return True
                if when_none is True and child is a.orelse:
                    return True
            if isinstance(a, cst.IfExp):
                when_none = true_when_none(a.test, name)
                if (when_none is False and child is a.body) or (when_none is True and child is a.orelse):
                    return True
            child = a
        return False

    def dominated(self, node: cst.CSTNode, stop: cst.CSTNode, pred: Callable[[cst.CSTNode], bool]) -> cst.CSTNode | None:
        """The first earlier statement satisfying `pred` that runs on every path to `node`."""
        for container, index, _ in self._blocks_above(node, stop):
            for item in container.body[:index]:
                if pred(item):
                    return item
        return None

    # -- the question ----------------------------------------------------------------------

    def objects_at(self, node: cst.CSTNode) -> InScope:
        func = self.enclosing_function(node)
        where = "module level" if isinstance(func, cst.Module) else f"{func.name.value}() (line {self.line(func.name)})"
        safe: list[ConfigObject] = []
        unsafe: list[Unsafe] = []
        scope = self.scopes.get(node)
        shadowed: set[str] = set()
        # comprehensions and lambdas see the function's names, unless they rebind them
        while isinstance(scope, ComprehensionScope) or (
                isinstance(scope, FunctionScope) and isinstance(getattr(scope, "node", None), cst.Lambda)):
            shadowed.update(a.name for a in scope.assignments)
            scope = scope.parent
        if isinstance(scope, ClassScope) or scope is None:
            return InScope([], [], where)  # a class body: keep out
        if isinstance(func, cst.Module) != isinstance(scope, GlobalScope) or (
                isinstance(scope, FunctionScope) and getattr(scope, "node", func) is not func):
            return InScope([], [], where)
        if func not in self._declared:
            self._declared[func] = global_names(func)
        declared = self._declared[func]
        for name in sorted({a.name for a in scope.assignments}):
            if name in shadowed or name in declared:
                continue
            result = self._name_at(node, func, scope, name)
            if isinstance(result, ConfigObject):
                safe.append(result)
            elif isinstance(result, Unsafe):
                unsafe.append(result)
        if isinstance(func, cst.FunctionDef):
            s, u = self._self_attrs_at(node, func, shadowed)
            safe.extend(s)
            unsafe.extend(u)
        return InScope(safe, unsafe, where)

    def _name_at(self, node: cst.CSTNode, func: cst.CSTNode, scope: Scope, name: str) -> ConfigObject | Unsafe | None:
        bindings = self.name_bindings(scope, name)
        if not bindings or any(b.kind == _OTHER for b in bindings):
            return None
        classes = {(b.config.name, b.config.file): b.config for b in bindings if b.config is not None}
        if len(classes) != 1:
            return None
        cfg = next(iter(classes.values()))
        nones = [b for b in bindings if b.kind == _NONE]
        if nones:
            return Unsafe(name, cfg, f"{name} is set to None at line {nones[0].line}")
        param = next((b for b in bindings if b.param), None)
        locals_ = [b for b in bindings if not b.param and b.stmt is not None]
        kind = "param" if param else "local"

        def bound(item: cst.CSTNode) -> bool:
            return binds(item, name, lambda s: any(b.stmt is s for b in locals_))

        if param is not None and not param.maybe_none:
            return ConfigObject(name, cfg, kind)
        if param is None:
            if self.dominated(node, func, bound) is not None:
                return ConfigObject(name, cfg, kind)
            lines = ", ".join(str(b.line) for b in locals_)
            return Unsafe(name, cfg, f"{name} is not bound on every path here (bound at line {lines})")
        # a parameter that may be None: a guard must dominate the node
        if self._guards_from_tests(node, func, name):
            return ConfigObject(name, cfg, kind)

        def guard(item: cst.CSTNode) -> bool:
            return bound(item) or none_guard(item, name, bound)

        if self.dominated(node, func, guard) is not None:
            return ConfigObject(name, cfg, kind)
        late = [b.line for b in locals_]
        default = f"defaults to None at line {param.line}" if param.maybe_none else "may be None"
        built = f" and is built only at line {', '.join(map(str, late))}" if late else " and nothing builds it before this line"
        return Unsafe(name, cfg, f"{name} {default}{built}")

    # -- self.<attr> ----------------------------------------------------------------------

    def _method_of(self, func: cst.FunctionDef) -> tuple[cst.ClassDef, str] | None:
        block = self.parent(func)
        cls = self.parent(block) if block is not None else None
        if not isinstance(cls, cst.ClassDef):
            return None
        for d in func.decorators:
            if _dotted(d.decorator) in ("staticmethod", "classmethod"):
                return None
        params = func.params.posonly_params or func.params.params
        if not params:
            return None
        return cls, params[0].name.value

    def _self_attrs_at(self, node: cst.CSTNode, func: cst.FunctionDef, shadowed: set[str]) -> tuple[list[ConfigObject], list[Unsafe]]:
        method = self._method_of(func)
        if method is None:
            return [], []
        cls, me = method
        if me in shadowed:
            return [], []
        scope = self.scopes.get(func.body)
        if isinstance(scope, FunctionScope) and len(scope.assignments[me]) != 1:
            return [], []  # `self` rebound
        safe: list[ConfigObject] = []
        unsafe: list[Unsafe] = []
        for attr, bindings in sorted(self.class_attrs(cls).items()):
            if any(b.kind == _OTHER for b in bindings):
                continue
            classes = {(b.config.name, b.config.file): b.config for b in bindings if b.config is not None}
            if len(classes) != 1:
                continue
            cfg = next(iter(classes.values()))
            expr = f"{me}.{attr}"
            bad = next((b for b in bindings if b.kind == _NONE or b.maybe_none), None)
            if bad is not None:
                unsafe.append(Unsafe(expr, cfg, f"{expr} may be None (line {bad.line})"))
                continue
            in_init = [b for b in bindings if b.stmt is not None and self._function_of(b.stmt) is func]
            if in_init or func.name.value == "__init__":
                # assigned in this very method: it must come first
                if self.dominated(node, func, binder(attr, [b.stmt for b in in_init])) is None:
                    unsafe.append(Unsafe(expr, cfg, f"{expr} is assigned only later (line {bindings[0].line})"))
                    continue
            elif not any(b.stmt is None or self._function_name(b.stmt) == "__init__" for b in bindings):
                unsafe.append(Unsafe(expr, cfg, f"{expr} is not set in __init__ (line {bindings[0].line})"))
                continue
            safe.append(ConfigObject(expr, cfg, "self"))
        return safe, unsafe

    def _function_of(self, node: cst.CSTNode) -> cst.CSTNode | None:
        for a in self.ancestors(node):
            if isinstance(a, (cst.FunctionDef, cst.ClassDef, cst.Module)):
                return a
        return None

    def _function_name(self, node: cst.CSTNode) -> str | None:
        f = self._function_of(node)
        return f.name.value if isinstance(f, cst.FunctionDef) else None

    def class_attrs(self, cls: cst.ClassDef) -> dict[str, list[Binding]]:
        """attr -> what every `self.attr = ...` in the class (and `attr: T` in its body) binds."""
        if cls in self._class_attrs:
            return self._class_attrs[cls]
        out: dict[str, list[Binding]] = {}
        body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else ()
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                        cfg, optional, other = self.annotation(small.annotation.annotation, self.scopes.get(small))
                        name = small.target.value
                        if cfg is None or other:
                            out.setdefault(name, []).append(Binding(_OTHER, line=self.line(small)))
                        else:
                            none = optional or is_none(small.value)
                            out.setdefault(name, []).append(Binding(_CONFIG, cfg, self.line(small), None, none))
            if isinstance(stmt, cst.FunctionDef):
                method = self._method_of(stmt)
                if method is None:
                    continue
                me = method[1]
                fscope = self.scopes.get(stmt.body)
                for target, value, small in self_assignments(stmt, me):
                    out.setdefault(target, []).append(self._self_binding(stmt, me, fscope, target, value, small))
        self._class_attrs[cls] = out
        return out

    def _self_binding(self, method: cst.FunctionDef, me: str, scope: Scope | None, attr: str,
                      value: cst.BaseExpression | None, small: cst.CSTNode) -> Binding:
        line = self.line(small)
        if value is None:
            return Binding(_OTHER, line=line, stmt=small)
        if isinstance(value, cst.Name) and isinstance(scope, FunctionScope) and value.value in scope.assignments:
            found = self._name_at(small, method, scope, value.value)
            if isinstance(found, ConfigObject):
                return Binding(_CONFIG, found.config, line, small)
            if isinstance(found, Unsafe):
                return Binding(_CONFIG, found.config, line, small, maybe_none=True)
            return Binding(_OTHER, line=line, stmt=small)
        b = self.value_binding(f"{me}.{attr}", value, scope, line, small, vars_name=attr)
        return Binding(b.kind, b.config, line, small)
