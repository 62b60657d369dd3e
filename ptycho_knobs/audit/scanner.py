"""Read one file into `FileFacts`: watched calls, dataclass fields, argparse flags, env reads.

The scanner never imports or executes what it reads: it parses with `ast` and evaluates
only literals (numbers, strings, bools, None, negatives and arithmetic on them).

Why `ast` and not LibCST: the audit only reads code, never rewrites it, so a lossless
tree buys nothing, and LibCST's parser plus QualifiedNameProvider cost ~0.23 s per large
file, which alone would put a cold audit far past 2x the plain `ast.parse` floor. Imports
are resolved by `callees.ImportMap` over the same tree; comments (suppressions) come from
`tokenize`.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import operator
import re
import tokenize
from dataclasses import dataclass
from typing import Any

from ptycho_knobs.audit.callees import ImportMap, WatchSet
from ptycho_knobs.audit.findings import (
    NOT_LITERAL,
    Arg,
    CallFact,
    FileFacts,
    Range,
    Span,
    Stmt,
    Suppression,
)
from ptycho_knobs.audit.statements import Extractor

_SUPPRESS = re.compile(r"ptycho-knobs:\s*ignore(?:\[([^\]]*)\])?")
_COMMENT = re.compile(r"#[^\n'\"]*$", re.MULTILINE)
_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_ENV_GETTERS = {"os.environ.get", "os.environ.setdefault", "os.getenv", "os.environ.pop"}


@dataclass(frozen=True)
class Needs:
    """What the registry asks the scanner to look for beyond watched calls: the config classes
    whose constructions state knob values."""

    config_classes: frozenset[str] = frozenset()
    # False for a tree with no config class to hold knobs (someone else's library): only watched
    # calls, flags, fields and environment reads are extracted, which is all the rules can use
    # there; reads, fallbacks, validations, branches and call sites are skipped (they are most
    # of the extraction's cost).
    full: bool = True


def literal(node: ast.AST | None) -> Any:
    """The value of a constant expression, or NOT_LITERAL."""
    if node is None:
        return NOT_LITERAL
    if isinstance(node, ast.Constant):
        return node.value if not isinstance(node.value, bytes) else NOT_LITERAL
    if isinstance(node, ast.UnaryOp):
        inner = literal(node.operand)
        if inner is NOT_LITERAL:
            return NOT_LITERAL
        if isinstance(node.op, ast.Not):
            return not inner
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            if isinstance(node.op, ast.USub):
                return -inner
            if isinstance(node.op, ast.UAdd):
                return inner
        return NOT_LITERAL
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = literal(node.left), literal(node.right)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
        if not numbers or (isinstance(node.op, ast.Pow) and abs(right) > 64):
            return NOT_LITERAL
        try:
            return _BINOPS[type(node.op)](left, right)
        except (ArithmeticError, ValueError):
            return NOT_LITERAL
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [literal(e) for e in node.elts]
        if any(i is NOT_LITERAL for i in items):
            return NOT_LITERAL
        return tuple(items) if isinstance(node, ast.Tuple) else items
    return NOT_LITERAL


class Scanner:
    """Scans one module's source. Build one per file."""

    def __init__(self, source: bytes, text: str, watch: WatchSet, needs: Needs) -> None:
        self.source = source
        self.text = text
        self.watch = watch
        self.needs = needs
        self._lines = source.split(b"\n")

    # -- positions ---------------------------------------------------------------------

    def col(self, line: int, byte_col: int) -> int:
        """1-based character column from ast's 0-based UTF-8 byte offset."""
        raw = self._lines[line - 1] if 0 < line <= len(self._lines) else b""
        return len(raw[:byte_col].decode("utf-8", "replace")) + 1

    def range(self, node: ast.AST) -> Range:
        line, end = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
        return Range(line, self.col(line, node.col_offset), end, self.col(end, node.end_col_offset or 0))  # type: ignore[attr-defined]

    def span(self, node: ast.AST) -> Span:
        line = node.lineno  # type: ignore[attr-defined]
        return Span(line, self.col(line, node.col_offset), node.end_lineno or line)  # type: ignore[attr-defined]

    def snippet(self, node: ast.AST) -> str:
        """Whitespace- and comment-free source of `node`: stable when code moves or reflows."""
        first, last = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
        raw = b"\n".join(self._lines[first - 1:last]).decode("utf-8", "replace")
        return re.sub(r"\s+", "", _COMMENT.sub("", raw))

    # -- what the extractor asks of the scanner --------------------------------------------

    def literal_of(self, node: ast.AST | None) -> Any:
        return literal(node)

    def snippet_line(self, node: ast.AST) -> str:
        """The first line of `node`, stripped: a short, stable text for a compound statement."""
        raw = self._lines[node.lineno - 1].decode("utf-8", "replace") if node.lineno <= len(self._lines) else ""  # type: ignore[attr-defined]
        return re.sub(r"\s+", "", _COMMENT.sub("", raw))

    @staticmethod
    def child_fields(kind: type) -> tuple[str, ...]:
        fields = _CHILD_FIELDS.get(kind)
        return fields if fields is not None else _child_fields(kind)

    # -- the scan ----------------------------------------------------------------------

    def scan(self, tree: ast.Module) -> FileFacts:
        # One depth-first walk (statements.Extractor) records the layers and keeps the calls and
        # subscripts; watched calls and environment reads are resolved once every import is known.
        self.imports = ImportMap()
        extractor = Extractor(self, self.needs.config_classes, self.needs.full)
        extractor.run(tree)
        imports = self.imports
        watched = self.watch.short_names
        aliases = {local for local, full in imports.names.items() if full.rsplit(".", 1)[-1] in watched}
        call_names = watched | aliases
        calls: list[CallFact] = []
        envs: list[Stmt] = []
        want_env = "environ" in self.text or "getenv" in self.text
        for node in extractor.kept:
            if id(node) in extractor.in_message:
                continue  # a value shown in a message (print, log, f-string) is not a default
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
                if name is None:
                    continue
                if name in call_names:
                    callee = self.watch.resolve(imports.qualify(func))
                    if callee is not None:
                        fact = self.call(node, callee, tree)
                        first = node.args[0] if node.args else next(
                            (k.value for k in node.keywords if k.arg in ("dataset", "monitor")), None)
                        hint = f"{ast.unparse(first)[:60] if first is not None else ''} {extractor.target_of.get(id(node), '')}"
                        calls.append(dataclasses.replace(fact, scope=extractor.scope_of.get(id(node), ""), hint=hint))
                elif want_env and name in ("get", "getenv", "setdefault", "pop"):
                    env = self.env_call(node, imports)
                    if env is not None:
                        envs.append(env)
            elif want_env and isinstance(node, ast.Subscript) and imports.qualify(node.value) == "os.environ":
                var = literal(node.slice)
                if isinstance(var, str):
                    envs.append(Stmt("env", var, "os.environ", NOT_LITERAL, self.span(node), text=self.snippet(node)))
        stmts = sorted([*extractor.stmts, *envs], key=lambda st: (st.at.line, st.at.col, st.kind))
        return FileFacts(
            calls=tuple(sorted(calls, key=lambda c: (c.at.line, c.at.col))),
            suppressions=self.suppressions(),
            lines=self.text.count("\n") + 1,
            stmts=tuple(stmts),
            defs=tuple(extractor.defs),
            sites=tuple(extractor.sites),
            loads=frozenset(extractor.loads),
            strings=frozenset(extractor.strings),
            imports=tuple(dict.fromkeys(imports.modules)),
            aliases=tuple(sorted(imports.names.items())),
            entry=extractor.entry,
        )

    # -- watched calls -----------------------------------------------------------------

    def call(self, node: ast.Call, callee: str, tree: ast.Module) -> CallFact:
        positional = self.watch.positional.get(callee, ())
        args: list[Arg] = []
        splats: list[Span] = []
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                splats.append(self.span(arg))
                break
            if i < len(positional):
                args.append(Arg(positional[i], literal(arg), self.span(arg), "positional", self.range(arg)))
        for kw in node.keywords:
            if kw.arg is not None:
                args.append(Arg(kw.arg, literal(kw.value), self.span(kw), "keyword", self.range(kw.value)))
                continue
            items = self.resolve_dict(kw.value, node, tree)
            if items is None:
                splats.append(self.span(kw))
            else:
                args.extend(items)
        shown = ast.unparse(node.func) if not isinstance(node.func, ast.Name) else node.func.id
        return CallFact(callee, shown, self.span(node), tuple(args), tuple(splats), self.snippet(node))

    def resolve_dict(self, value: ast.expr, call: ast.Call, tree: ast.Module) -> list[Arg] | None:
        """The keywords a `**value` splat supplies, when they are statically known."""
        direct = self.dict_items(value, call, tree)
        if direct is not None or not isinstance(value, ast.Name):
            return direct
        scope = _enclosing_scope(tree, call)
        name = value.id
        last: ast.expr | None = None
        extra: list[Arg] = []
        for node in ast.walk(scope):
            line = getattr(node, "lineno", 0)
            if line >= call.lineno:
                continue
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id == name and node.value is not None:
                        if last is None or node.lineno >= last.lineno:
                            last = node.value
                    elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                            and target.value.id == name and node.value is not None:
                        key = literal(target.slice)
                        if isinstance(key, str):
                            extra.append(Arg(key, literal(node.value), self.span(target), "dict", self.range(node.value)))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == name \
                    and node.func.attr in ("update", "setdefault", "pop", "clear"):
                return None
        if last is None:
            return None
        items = self.dict_items(last, call, tree)
        if items is None:
            return None
        return items + [a for a in extra if a.at.line > last.lineno]

    def dict_items(self, value: ast.expr, call: ast.Call, tree: ast.Module) -> list[Arg] | None:
        if isinstance(value, ast.Dict):
            out: list[Arg] = []
            for key, item in zip(value.keys, value.values, strict=False):
                if key is None:
                    nested = self.resolve_dict(item, call, tree)
                    if nested is None:
                        return None
                    out.extend(nested)
                    continue
                k = literal(key)
                if not isinstance(k, str):
                    return None
                out.append(Arg(k, literal(item), self.span(key), "dict", self.range(item)))
            return out
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict" \
                and not value.args:
            out = []
            for kw in value.keywords:
                if kw.arg is None:
                    nested = self.resolve_dict(kw.value, call, tree)
                    if nested is None:
                        return None
                    out.extend(nested)
                else:
                    out.append(Arg(kw.arg, literal(kw.value), self.span(kw), "dict", self.range(kw.value)))
            return out
        return None

    # -- environment reads ------------------------------------------------------------

    def env_call(self, node: ast.Call, imports: ImportMap) -> Stmt | None:
        if imports.qualify(node.func) not in _ENV_GETTERS or not node.args:
            return None
        var = literal(node.args[0])
        if not isinstance(var, str):
            return None
        default_node = node.args[1] if len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg == "default"), None)
        if default_node is None:
            return Stmt("env", var, "os.environ", NOT_LITERAL, self.span(node), form="required", text=self.snippet(node))
        return Stmt("env", var, "os.environ", literal(default_node), self.span(node), self.range(default_node),
                    text=self.snippet(node))

    # -- suppressions ------------------------------------------------------------------

    def suppressions(self) -> tuple[Suppression, ...]:
        if "ptycho-knobs" not in self.text:
            return ()
        out = []
        try:
            for tok in tokenize.generate_tokens(io.StringIO(self.text).readline):
                if tok.type != tokenize.COMMENT:
                    continue
                match = _SUPPRESS.search(tok.string)
                if match:
                    codes = tuple(c.strip() for c in (match.group(1) or "").split(",") if c.strip())
                    line, col = tok.start
                    out.append(Suppression(line, col + 1, codes))
        except (tokenize.TokenError, SyntaxError):
            pass
        return tuple(out)


# The fields of each node class that can hold child nodes, for `Scanner.scan`'s walk. Left out:
# names and other plain values, and the expression contexts and operators (`ctx`, `op`,
# `ops`) and import aliases, leaves that `ast.walk` visits but the scan never needs.
_LEAF_FIELDS = frozenset({
    "ctx", "op", "ops", "name", "names", "id", "attr", "arg", "asname", "module", "level", "kind",
    "type_comment", "is_async", "conversion", "simple", "tag", "lineno", "kwd_attrs", "rest",
})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(kind: type) -> tuple[str, ...]:
    if not issubclass(kind, ast.AST) or kind is ast.Constant:
        fields: tuple[str, ...] = ()  # a None key of a `{**d}` dict, a constant's value
    else:
        fields = tuple(f for f in kind._fields if f not in _LEAF_FIELDS)
    _CHILD_FIELDS[kind] = fields
    return fields


def _is_scope(node: ast.AST) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef))


def _enclosing_scope(tree: ast.Module, target: ast.AST) -> ast.AST:
    """The innermost function containing `target` (the module when none does)."""
    best: ast.AST = tree
    line = target.lineno  # type: ignore[attr-defined]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno <= line <= (node.end_lineno or 0):
            if best is tree or node.lineno >= best.lineno:  # type: ignore[attr-defined]
                best = node
    return best


def _declared_encoding(source: bytes) -> str:
    """The file's source encoding: UTF-8 unless a BOM or PEP 263 cookie says otherwise."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    return "utf-8" if encoding in ("utf-8", "utf-8-sig") else encoding


def scan_source(source: bytes, watch: WatchSet, needs: Needs) -> FileFacts:
    """Facts of one file's bytes; a decode or syntax problem becomes `FileFacts.problem`."""

    def not_valid(what: str, start: int) -> FileFacts:
        line = source[:start].count(b"\n") + 1
        col = start - (source.rfind(b"\n", 0, start) + 1) + 1
        byte = f" (byte 0x{source[start]:02x})" if start < len(source) else ""
        return FileFacts(problem=("PK900", f"not valid {what}{byte}; file skipped", line, col))

    try:
        encoding = _declared_encoding(source)
        if encoding != "utf-8" and "# coding\n".encode(encoding) != b"# coding\n":
            # utf-16, utf-32, EBCDIC...: Python itself refuses such a cookie ("encoding problem").
            cookie = 1 if b"coding" in source.split(b"\n", 1)[0] else 2
            return FileFacts(problem=("PK900", f"coding declaration {encoding!r} cannot be used for Python source "
                                      "(it is not ASCII-compatible); file skipped", cookie, 1))
        text = source.decode(encoding)
        if encoding != "utf-8":
            # PEP 263: a `# -*- coding: latin-1 -*-` file is valid Python. Work on its UTF-8
            # form so positions mean the same thing as for every other file; ast reads a
            # str and ignores the cookie.
            source = text.encode("utf-8")
    except (SyntaxError, LookupError):
        try:  # no usable cookie: tokenize also says so when the first lines are not UTF-8
            source.decode("utf-8")
        except UnicodeDecodeError as exc:
            return not_valid("UTF-8", exc.start)
        return FileFacts(problem=("PK900", "unknown or malformed coding declaration; file skipped", 1, 1))
    except UnicodeError as exc:
        what = "UTF-8" if encoding == "utf-8" else f"{encoding} text (the encoding its coding declaration names)"
        return not_valid(what, getattr(exc, "start", 0))
    if text.startswith("\ufeff"):
        text = text[1:]
        source = source[3:]
    try:
        tree = ast.parse(source if encoding == "utf-8" else text)
    except SyntaxError as exc:
        msg = exc.msg or "invalid syntax"
        return FileFacts(problem=("PK900", f"syntax error: {msg}; file skipped", exc.lineno or 1, exc.offset or 1))
    except (ValueError, RecursionError, MemoryError) as exc:
        return FileFacts(problem=("PK900", f"cannot parse: {exc}; file skipped", 1, 1))
    return Scanner(source, text, watch, needs).scan(tree)
