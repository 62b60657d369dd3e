"""Extract what one module states about settings: the layers the parity rules compare.

A depth-first walk with a scope stack (module, class, function) over the `ast` tree the
scanner already parsed. It records, generically and without knowing any knob:
dataclass fields, argparse flags, getattr/.get/`or` fallbacks, environment reads,
signature defaults, validations that raise, consumer branches (if/elif chains and dict
lookups on a setting), attribute assignments, constructions of the registry's config
classes, calls to plain names (possible in-tree callables), attribute reads, identifier-like
strings, imports and the `__main__` guard. Values are literals only; an expression built
from fallbacks (`not getattr(args, 'quiet', False)`) states the default it evaluates to.

The walk never imports or runs anything. Rules decide later which knob a statement is
about (by registry source, class field, name or alias), so this module stays knob-free.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from ptycho_knobs.audit.findings import NOT_LITERAL, Arg, CallSite, DefFact, Stmt

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WARN_CALLS = frozenset({"warning", "warn", "info", "debug", "error", "exception", "critical", "log", "print"})
_CMP = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
# Calls whose string arguments are messages or formatting, never settings.
_NOT_SITES = frozenset({
    "print", "getattr", "setattr", "hasattr", "isinstance", "issubclass", "len", "str", "int", "float",
    "bool", "repr", "format", "range", "enumerate", "zip", "sorted", "list", "tuple", "dict", "set",
    "min", "max", "sum", "abs", "open", "type", "super", "iter", "next", "round", "ValueError",
    "TypeError", "RuntimeError", "KeyError", "Exception", "NotImplementedError", "FileNotFoundError",
})
_SEQUENCES = (ast.List, ast.Tuple, ast.Set)
_CHILDREN: dict[type, tuple[str, ...]] = {}  # node class -> the fields that hold child nodes


class Unknown:
    """Marker: an expression whose default value the walk cannot state."""


UNKNOWN: Any = Unknown()


def _name_of(node: ast.AST) -> str:
    """`a.b.c` for a name/attribute chain, '' for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _last(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


class Extractor:
    """Walks one module; `scanner.Scanner` owns positions, literals and imports."""

    def __init__(self, scanner: Any, config_classes: frozenset[str], full: bool = True) -> None:
        self.s = scanner
        self.full = full
        self.literal = scanner.literal_of
        self.config_classes = config_classes
        self.stmts: list[Stmt] = []
        self.defs: list[DefFact] = []
        self.sites: list[CallSite] = []
        self.loads: set[tuple[str, str]] = set()
        self.strings: set[str] = set()
        self.entry = False
        self.scope: list[str] = []
        # per function: local name -> (receiver, attr) of the setting it was read from, its
        # stated default, and set/dict literals bound to names
        self.refs: list[dict[str, tuple[str, str]]] = [{}]
        self.values: list[dict[str, Any]] = [{}]
        self.consts: list[dict[str, ast.expr]] = [{}]
        self.handled: set[int] = set()  # ids of If nodes already read as part of a chain
        self.superseded: set[int] = set()  # ids of getattr calls whose default an `or` replaces
        self.kept: list[ast.AST] = []  # calls and subscripts, resolved once every import is known
        # per enclosing function: names of the callables whose result it returns, and
        # (local, callable, line) for each local assigned from a call
        self.frames: list[tuple[list[str], list[tuple[str, str, int]]]] = []
        self.in_message: set[int] = set()  # ids of nodes inside print/log calls and f-strings
        self.scope_of: dict[int, str] = {}  # id of a kept call -> the scope it is in
        self.in_dataclass = False  # inside a @dataclass class body (its methods included)
        self.target_of: dict[int, str] = {}  # id of a call -> the name its result is assigned to

    # -- helpers -------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return ".".join(self.scope)

    def add(self, kind: str, name: str, owner: str, value: Any, node: ast.AST, **extra: Any) -> None:
        if kind in ("fallback", "env") and id(node) in self.in_message:
            return
        self.stmts.append(Stmt(kind, name, owner, value, self.s.span(node), scope=self.where,
                               text=extra.pop("text", None) or self.s.snippet(node), **extra))

    def ref(self, node: ast.AST) -> tuple[str, str] | None:
        """(receiver, attr) when `node` reads a setting: `recv.attr`, `getattr(recv, 'attr', ...)`,
        `recv.get('attr', ...)`, or a local bound to one of those."""
        if isinstance(node, ast.Attribute):
            return _name_of(node.value), node.attr
        if isinstance(node, ast.Name):
            for frame in reversed(self.refs):
                if node.id in frame:
                    return frame[node.id]
            return None
        if isinstance(node, ast.Call):
            got = self.fallback_parts(node)
            if got is not None:
                return got[0], got[1]
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            return self.ref(node.values[0])
        return None

    def fallback_parts(self, node: ast.Call) -> tuple[str, str, ast.expr | None] | None:
        """(receiver, name, default node) of `getattr(r, 'n', d)` or `r.get('n', d)`."""
        func = node.func
        if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
            name = self.literal(node.args[1])
            if isinstance(name, str):
                return _name_of(node.args[0]), name, node.args[2] if len(node.args) > 2 else None
        if isinstance(func, ast.Attribute) and func.attr == "get" and node.args:
            name = self.literal(node.args[0])
            recv = _name_of(func.value)
            if isinstance(name, str) and recv not in ("os.environ", "environ"):
                default = node.args[1] if len(node.args) > 1 else next(
                    (k.value for k in node.keywords if k.arg == "default"), None)
                return recv, name, default
        return None

    def value_of(self, node: ast.AST | None) -> Any:
        """The value an expression states: a literal, a fallback's default, a local's value,
        `not`, `or` and `and` of those; UNKNOWN otherwise."""
        if node is None:
            return UNKNOWN
        value = self.literal(node)
        if value is not NOT_LITERAL:
            return value
        if isinstance(node, ast.Name):
            for frame in reversed(self.values):
                if node.id in frame:
                    return frame[node.id]
            return UNKNOWN
        if isinstance(node, ast.Call):
            got = self.fallback_parts(node)
            if got is not None and got[2] is not None:
                return self.value_of(got[2])
            return UNKNOWN
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.value_of(node.operand)
            return UNKNOWN if inner is UNKNOWN else not inner
        if isinstance(node, ast.BoolOp):
            values = [self.value_of(v) for v in node.values]
            if any(v is UNKNOWN for v in values):
                return UNKNOWN
            result = values[0]
            for v in values[1:]:
                result = (result or v) if isinstance(node.op, ast.Or) else (result and v)
            return result
        return UNKNOWN

    # -- the walk ------------------------------------------------------------------------

    def run(self, tree: ast.Module) -> None:
        self.body(tree.body)

    def body(self, stmts: list[ast.stmt]) -> None:
        for stmt in stmts:
            self.visit(stmt)

    def visit(self, root: ast.AST) -> None:
        """Pre-order walk of `root` (an explicit stack: a call per node costs more than the
        work most nodes need). Function and class bodies recurse, for their scopes."""
        stack = [root]
        pop, push, extend = stack.pop, stack.append, stack.extend
        children = _CHILDREN
        in_message = self.in_message
        loads_add, strings_add, kept_add = self.loads.add, self.strings.add, self.kept.append
        full = self.full
        while stack:
            node = pop()
            kind = type(node)
            if kind is ast.Name or kind is ast.Load or kind is ast.Store:
                continue
            if kind is ast.Constant:  # reads are recorded in light files too: PK011 needs them all
                value = node.value  # type: ignore[attr-defined]
                if type(value) is str and len(value) < 80 and _IDENT.match(value):
                    strings_add(value)
                continue
            if kind is ast.Attribute:
                if type(node.ctx) is ast.Load:  # type: ignore[attr-defined]
                    loads_add((node.attr, _name_of(node.value)))  # type: ignore[attr-defined]
            elif kind is ast.Call:
                kept_add(node)
                self.scope_of[id(node)] = self.where
                if id(node) not in in_message and _last(node.func) in _WARN_CALLS:  # type: ignore[attr-defined]
                    self._mark_message(node)
                self.call(node)  # type: ignore[arg-type]
            elif kind is ast.JoinedStr:
                self._mark_message(node)
            elif kind is ast.ClassDef:
                self.class_def(node)  # type: ignore[arg-type]
                continue
            elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
                self.function(node)  # type: ignore[arg-type]
                continue
            elif not full:
                if kind is ast.Subscript:
                    kept_add(node)
                elif kind is ast.Import or kind is ast.ImportFrom:
                    self.s.imports.add(node)
            elif kind is ast.If:
                self.if_stmt(node)  # type: ignore[arg-type]
            elif kind is ast.Assign or kind is ast.AnnAssign:
                self.assign(node)  # type: ignore[arg-type]
            elif kind is ast.Assert:
                self.assert_stmt(node)  # type: ignore[arg-type]
            elif kind is ast.Return:
                value = node.value  # type: ignore[attr-defined]
                if self.frames and isinstance(value, ast.Call) and _last(value.func):
                    self.frames[-1][0].append(_last(value.func))
            elif kind is ast.Subscript:
                kept_add(node)
            elif kind is ast.Import or kind is ast.ImportFrom:
                self.s.imports.add(node)
            elif kind is ast.BoolOp:
                self.or_fallback(node)  # type: ignore[arg-type]
            fields = children.get(kind)
            if fields is None:
                fields = children[kind] = self.s.child_fields(kind)
            mark = len(stack)
            for name in fields:
                value = getattr(node, name)
                if type(value) is list:
                    extend(value)
                elif value is not None:
                    push(value)
            stack[mark:] = stack[mark:][::-1]  # pop() takes the first child first

    def _mark_message(self, node: ast.AST) -> None:
        """Everything inside a print/log call or an f-string is a message, not a setting."""
        for child in ast.walk(node):
            self.in_message.add(id(child))

    # -- definitions ---------------------------------------------------------------------

    def class_def(self, node: ast.ClassDef) -> None:
        bases = tuple(_last(b) for b in node.bases if _last(b))
        decorators = tuple(_last(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list)
        self.scope.append(node.name)
        outer, self.in_dataclass = self.in_dataclass, "dataclass" in decorators
        self.defs.append(DefFact("class", self.where, self.s.span(node), bases=bases, decorators=decorators))
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                self.field(node.name, stmt)
        for base in node.bases:
            self.visit(base)
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                if stmt.value is not None:
                    self.visit(stmt.value)
                continue
            self.visit(stmt)
        self.in_dataclass = outer
        self.scope.pop()

    def field(self, cls: str, stmt: ast.AnnAssign) -> None:
        value: Any = NOT_LITERAL
        value_node: ast.expr | None = stmt.value
        if isinstance(value_node, ast.Call) and _last(value_node.func) == "field":
            given = {k.arg: k.value for k in value_node.keywords}
            value_node = given.get("default")
        if value_node is not None:
            value = self.literal(value_node)
        annot = ast.unparse(stmt.annotation)
        self.add("field", stmt.target.id, cls, value, stmt,  # type: ignore[union-attr]
                 value_at=self.s.range(value_node) if value_node is not None else None,
                 choices=_literal_members(stmt.annotation, self.literal), annot=annot,
                 form="" if stmt.value is not None else "required")

    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for d in node.decorator_list:
            self.visit(d)
        self.scope.append(node.name)
        qual = self.where
        a = node.args
        positional = [*a.posonlyargs, *a.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
        params: list[tuple[str, Any, str, bool]] = []
        for arg, default in [*zip(positional, defaults, strict=True), *zip(a.kwonlyargs, a.kw_defaults, strict=True)]:
            annot = ast.unparse(arg.annotation) if arg.annotation is not None else ""
            value = self.literal(default) if default is not None else NOT_LITERAL
            params.append((arg.arg, value, annot, default is not None))
            if self.full and default is not None and value is not NOT_LITERAL and arg.arg not in ("self", "cls"):
                self.stmts.append(Stmt("param", arg.arg, qual, value, self.s.span(arg), self.s.range(default),
                                       scope=qual, annot=annot, text=f"{node.name}({self.s.snippet(arg)}="
                                       f"{self.s.snippet(default)})"))
        for default in [*a.defaults, *(d for d in a.kw_defaults if d is not None)]:
            self.visit(default)
        self.refs.append({})
        self.values.append({})
        self.consts.append({})
        self.frames.append(([], []))
        before_defs = len(self.defs)
        before_sites = len(self.sites)
        self.defs.append(DefFact("def", qual, self.s.span(node), params=tuple(params)))
        self.body(node.body)
        returned, local_calls = self.frames.pop()
        names = {p[0] for p in params}
        flows = tuple(dict.fromkeys(
            (n, site.func, kw) for site in self.sites[before_sites:] if site.scope == qual
            for kw, n in site.names if n in names and kw != "#n"))
        me = self.defs[before_defs]
        self.defs[before_defs] = DefFact(me.kind, me.qualname, me.at, me.params, returns=tuple(dict.fromkeys(returned)),
                                         flows=flows, locals=tuple(local_calls),
                                         decorators=tuple(_last(d.func if isinstance(d, ast.Call) else d)
                                                          for d in node.decorator_list))
        self.refs.pop()
        self.values.pop()
        self.consts.pop()
        self.scope.pop()

    # -- assignments -----------------------------------------------------------------------

    def assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        value = node.value
        if value is None:
            return
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if isinstance(value, ast.Call):
            self.target_of[id(value)] = " ".join(_name_of(t) for t in targets)
            callee = _last(value.func)
            if self.frames and callee and isinstance(node, ast.Assign):
                self.frames[-1][1].extend((t.id, callee, node.lineno) for t in targets if isinstance(t, ast.Name))
        for target in targets:
            if isinstance(target, ast.Name):
                origin = self.ref(value)
                if origin is not None:
                    self.refs[-1][target.id] = origin
                elif target.id in self.refs[-1]:
                    del self.refs[-1][target.id]
                stated = self.value_of(value)
                if stated is not UNKNOWN:
                    self.values[-1][target.id] = stated
                elif target.id in self.values[-1]:
                    del self.values[-1][target.id]
                if isinstance(value, (ast.Dict, *_SEQUENCES)):
                    self.consts[-1][target.id] = value
            elif isinstance(target, ast.Attribute) and not isinstance(value, ast.Lambda):
                recv = _name_of(target.value)
                if not recv or recv in ("self", "cls") and not self.in_dataclass:
                    continue  # an object's own state (self.lr = ...) is not a setting; a dataclass's is
                invert = isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not)
                stated = self.value_of(value)
                self.add("assign", target.attr, recv, NOT_LITERAL if stated is UNKNOWN else stated, node,
                         value_at=self.s.range(value), invert=invert,
                         detail=ast.unparse(value.operand)[:120] if invert else "")  # type: ignore[attr-defined]

    def or_fallback(self, node: ast.BoolOp) -> None:
        """`recv.x or 42`, `getattr(recv, 'x', None) or 42`: the literal is the default."""
        if not isinstance(node.op, ast.Or) or len(node.values) != 2 or id(node) in self.superseded:
            return
        first, last = node.values
        lit = self.literal(last)
        if lit is NOT_LITERAL:
            return
        if isinstance(first, ast.Attribute):
            recv, name = _name_of(first.value), first.attr
        elif isinstance(first, ast.Call) and (parts := self.fallback_parts(first)) is not None:
            recv, name = parts[0], parts[1]
            self.superseded.add(id(first))
        else:
            return
        self.add("fallback", name, recv, lit, node, value_at=self.s.range(last), form="or")

    # -- calls ---------------------------------------------------------------------------

    def call(self, node: ast.Call) -> None:
        func = node.func
        name = _last(func)
        if not self.full:
            if name == "add_argument":
                self.flag(node)
            return
        parts = self.fallback_parts(node)
        if parts is not None:
            recv, key, default = parts
            if default is not None and id(node) not in self.superseded:
                value = self.literal(default)
                self.add("fallback", key, recv, value, node, value_at=self.s.range(default),
                         form="getattr" if name == "getattr" else "get")
            return
        if isinstance(func, ast.Attribute) and func.attr == "get" and node.args:
            default = node.args[1] if len(node.args) > 1 else None
            self.dict_lookup(node, func.value, node.args[0], default)
        if name == "add_argument":
            self.flag(node)
            return
        if name in self.config_classes:
            self.construct(node, name)
        if isinstance(func, ast.Name) or (isinstance(func, ast.Attribute) and _name_of(func.value)):
            if name and name not in _NOT_SITES and not (isinstance(func, ast.Attribute) and func.attr in _WARN_CALLS):
                self.site(node, name)

    def site(self, node: ast.Call, name: str) -> None:
        args: list[Arg] = []
        names: list[tuple[str, str]] = []
        splat = False
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                splat = True
                break
            value = self.literal(arg)
            if value is not NOT_LITERAL:
                args.append(Arg(f"#{i}", value, self.s.span(arg), "positional", self.s.range(arg)))
            elif isinstance(arg, ast.Name):
                names.append((f"#{i}", arg.id))
        npos = len(node.args)
        for kw in node.keywords:
            if kw.arg is None:
                splat = True
                continue
            value = self.literal(kw.value)
            if value is not NOT_LITERAL:
                args.append(Arg(kw.arg, value, self.s.span(kw), "keyword", self.s.range(kw.value)))
            elif isinstance(kw.value, ast.Name):
                names.append((kw.arg, kw.value.id))
            else:
                names.append((kw.arg, ""))
        names.append(("#n", str(npos)))
        qualified = self.s.imports.qualify(node.func) or name
        self.sites.append(CallSite(name, qualified, self.s.span(node), tuple(args), tuple(names), splat,
                                   self.where, self.s.snippet(node) if args else ""))  # text: for findings

    def construct(self, node: ast.Call, cls: str) -> None:
        for kw in node.keywords:
            if kw.arg is None:
                continue
            inner = kw.value.values[0] if isinstance(kw.value, ast.BoolOp) else kw.value
            if isinstance(inner, ast.Call) and self.fallback_parts(inner) is not None:
                self.superseded.add(id(inner))  # the construction states it, for the class's field
            if isinstance(kw.value, ast.BoolOp):
                self.superseded.add(id(kw.value))
            stated = self.value_of(kw.value)
            lit = self.literal(kw.value)
            form = "" if lit is not NOT_LITERAL else "derived"
            self.add("construct", kw.arg, cls, NOT_LITERAL if stated is UNKNOWN else stated, kw,
                     value_at=self.s.range(kw.value), form=form,
                     detail=ast.unparse(kw.value)[:120])

    def flag(self, node: ast.Call) -> None:
        names = [self.literal(a) for a in node.args]
        if not names or not all(isinstance(n, str) for n in names):
            return
        given = {k.arg: k.value for k in node.keywords if k.arg}
        dest = self.literal(given["dest"]) if "dest" in given else None
        if not isinstance(dest, str):
            long = [n for n in names if n.startswith("--")] or [n for n in names if not n.startswith("-")] or names
            dest = long[0].lstrip("-").replace("-", "_")
        action = self.literal(given["action"]) if "action" in given else None
        value: Any = NOT_LITERAL
        value_at = None
        if "default" in given:
            value = self.literal(given["default"])
            value_at = self.s.range(given["default"])
        elif action in ("store_true", "store_false"):
            value = action == "store_false"
        elif action is None:
            value = None  # argparse's own default
        choices = None
        choices_at = None
        if "choices" in given:
            node_c = given["choices"]
            if isinstance(node_c, ast.Name):
                node_c = self._const(node_c.id) or node_c
            lit = self.literal(node_c)
            if isinstance(lit, (list, tuple)):
                choices = tuple(lit)
                choices_at = self.s.range(given["choices"])
        kind = given.get("type")
        help_node = given.get("help")
        help_text = self.literal(help_node) if help_node is not None else ""
        self.add("flag", dest, ",".join(names), value, node, value_at=value_at, choices=choices,  # type: ignore[arg-type]
                 choices_at=choices_at, form=str(action or ""), annot=_last(kind) if kind is not None else "",
                 detail=help_text if isinstance(help_text, str) else "",
                 detail_at=self.s.range(help_node) if help_node is not None else None)

    def _const(self, name: str) -> ast.expr | None:
        for frame in reversed(self.consts):
            if name in frame:
                return frame[name]
        return None

    def dict_lookup(self, call: ast.Call, mapping: ast.expr, key: ast.expr, default: ast.expr | None) -> None:
        """`D.get(cfg.x, 'cpu')` with D a dict literal: a consumer that handles D's keys only."""
        ref = self.ref(key)
        if ref is None or not isinstance(mapping, ast.Name):
            return
        table = self._const(mapping.id)
        if not isinstance(table, ast.Dict):
            return
        keys = [self.literal(k) for k in table.keys if k is not None]
        if any(k is NOT_LITERAL for k in keys):
            return
        value = self.literal(default) if default is not None else NOT_LITERAL
        self.add("branch", ref[1], ref[0], value, call, choices=tuple(keys), form="dict",
                 detail=mapping.id)

    # -- control flow: validations and consumer branches -----------------------------------

    def if_stmt(self, node: ast.If) -> None:
        if _is_main_guard(node.test):
            self.entry = True
        if id(node) in self.handled:
            return
        if _raises(node.body):
            self.validation(node.test, node, "raise")
        self.chain(node)

    def assert_stmt(self, node: ast.Assert) -> None:
        self.validation(ast.UnaryOp(ast.Not(), node.test), node, "assert")

    def validation(self, test: ast.expr, node: ast.stmt, form: str, guard: str = "") -> None:
        """`if <test>: raise` rejects what `test` accepts: one check per setting it bounds."""
        if isinstance(test, ast.BoolOp):
            if isinstance(test.op, ast.Or):
                for value in test.values:
                    self.validation(value, node, form, guard)
            else:  # `a and b`: raises only when the other conditions hold too
                for i, value in enumerate(test.values):
                    mine = self.ref(value.left) if isinstance(value, ast.Compare) else None
                    others = [v for j, v in enumerate(test.values) if j != i and not (
                        mine is not None and _is_none_test(v) and self.ref(v.left) == mine)]  # type: ignore[attr-defined]
                    guard_text = " and ".join(ast.unparse(v) for v in others)
                    self.validation(value, node, "guard" if form == "raise" and others else form, guard_text)
            return
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = test.operand
            if isinstance(inner, ast.Compare) and len(inner.ops) == 1:
                op = type(inner.ops[0])
                negated = {ast.In: ast.NotIn(), ast.NotIn: ast.In()}.get(op)
                if negated is not None:
                    self.validation(ast.Compare(inner.left, [negated], inner.comparators), node, form, guard)
                    return
                if op in _CMP:
                    mirror = ast.Compare(inner.left, [_op(_NEGATE[_CMP[op]])], inner.comparators)
                    self.validation(mirror, node, form, guard)
                    return
            if isinstance(inner, ast.BoolOp) and isinstance(inner.op, ast.And):  # not (a and b) = not a or not b
                for value in inner.values:
                    self.validation(ast.UnaryOp(ast.Not(), value), node, form, guard)
            return
        if not isinstance(test, ast.Compare) or len(test.ops) != 1:
            return
        op, left, right = test.ops[0], test.left, test.comparators[0]
        ref = self.ref(left)
        other = right
        flipped = False
        if ref is None:
            ref, other, flipped = self.ref(right), left, True
        if ref is None:
            return
        recv, name = ref
        if isinstance(op, (ast.In, ast.NotIn)) and not flipped:
            members = other
            if isinstance(members, ast.Name):
                members = self._const(members.id) or members
            lit = self.literal(members) if not isinstance(members, ast.Set) else tuple(
                self.literal(e) for e in members.elts)
            if not isinstance(lit, (list, tuple)) or any(v is NOT_LITERAL for v in lit):
                return
            if isinstance(op, ast.NotIn):  # raises outside the set: accepts only these
                self.add("check", name, recv, NOT_LITERAL, node, choices=tuple(lit), form=form, detail=guard)
            else:
                self.add("check", name, recv, NOT_LITERAL, node, choices=tuple(lit), form=form, detail=guard,
                         bound=("in", tuple(lit)))
            return
        if type(op) not in _CMP:
            return
        lit = self.literal(other)
        if lit is NOT_LITERAL or isinstance(lit, (list, tuple)):
            return
        symbol = _CMP[type(op)]
        if flipped:
            symbol = _FLIP[symbol]
        self.add("check", name, recv, NOT_LITERAL, node, bound=(symbol, lit), form=form, detail=guard)

    def chain(self, node: ast.If) -> None:
        """An if/elif chain comparing one setting with literals: the values it handles."""
        handled: list[Any] = []
        weak: list[Any] = []
        ref: tuple[str, str] | None = None
        current: ast.stmt | None = node
        tail: list[ast.stmt] = []
        while isinstance(current, ast.If):
            got = self._tested(current.test)
            if got is None or (ref is not None and got[0] != ref):
                if ref is None:
                    return
                tail = [current]
                break
            ref = got[0]
            handled.extend(got[1])
            if _only_warns(current.body):
                weak.extend(got[1])
            self.handled.add(id(current))
            tail = current.orelse
            current = tail[0] if len(tail) == 1 and isinstance(tail[0], ast.If) else None
        if ref is None or len(handled) < 1:
            return
        if len(handled) == 1 and not tail:
            return  # a single `if x == 'a':` is a special case, not a dispatch
        form = "if"
        if tail:
            form = "if-raise" if _raises(tail) else "if-warn" if _only_warns(tail) else "if-else"
        self.add("branch", ref[1], ref[0], NOT_LITERAL, node, choices=tuple(handled), weak=tuple(weak), form=form,
                 text=self.s.snippet_line(node))
        # the bodies are walked normally afterwards; nested chains inside them are their own

    def _tested(self, test: ast.expr) -> tuple[tuple[str, str], list[Any]] | None:
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
            parts = [self._tested(v) for v in test.values]
            if any(p is None for p in parts) or len({p[0] for p in parts if p}) != 1:
                return None
            return parts[0][0], [v for p in parts if p for v in p[1]]  # type: ignore[index]
        if not isinstance(test, ast.Compare) or len(test.ops) != 1:
            return None
        op = test.ops[0]
        ref = self.ref(test.left)
        if ref is None:
            return None
        right = test.comparators[0]
        if isinstance(op, ast.Eq):
            lit = self.literal(right)
            return (ref, [lit]) if lit is not NOT_LITERAL and not isinstance(lit, (list, tuple)) else None
        if isinstance(op, ast.In):
            if isinstance(right, ast.Name):
                right = self._const(right.id) or right
            lit = self.literal(right) if not isinstance(right, ast.Set) else tuple(self.literal(e) for e in right.elts)
            if isinstance(lit, (list, tuple)) and all(v is not NOT_LITERAL for v in lit):
                return ref, list(lit)
        return None


def _op(symbol: str) -> ast.cmpop:
    return {"<": ast.Lt(), "<=": ast.LtE(), ">": ast.Gt(), ">=": ast.GtE(), "==": ast.Eq(), "!=": ast.NotEq()}[symbol]


def _is_none_test(node: ast.expr) -> bool:
    """`x is None` / `x is not None`: a test of presence, not of the value."""
    return (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Is, ast.IsNot))
            and isinstance(node.comparators[0], ast.Constant) and node.comparators[0].value is None)


def _literal_members(annotation: ast.expr, literal: Any) -> tuple[Any, ...] | None:
    """The members of a `Literal[...]` in an annotation (inside Optional/Union too)."""
    found: list[Any] = []
    for node in ast.walk(annotation):
        if isinstance(node, ast.Subscript) and _last(node.value) == "Literal":
            inner = node.slice
            items = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            for item in items:
                value = literal(item)
                if value is not NOT_LITERAL:
                    found.append(value)
    return tuple(found) if found else None


def _raises(body: list[ast.stmt]) -> bool:
    """A block that ends by raising (after optional logging)."""
    return bool(body) and isinstance(body[-1], ast.Raise) and all(
        isinstance(s, (ast.Raise, ast.Expr, ast.Pass, ast.Assign)) for s in body)


def _only_warns(body: list[ast.stmt]) -> bool:
    """A block that only logs, warns, prints or passes: the value is accepted but ignored."""
    if not body:
        return False
    for stmt in body:
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and _last(stmt.value.func) in _WARN_CALLS:
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        return False
    return True


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


__all__ = ["Extractor"]
