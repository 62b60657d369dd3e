"""Control flow over libcst statements, for `scope`: which statements bind a name on every
path, which test is about None, which statements guard a name against None, and the names a
function declares global or deletes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import libcst as cst


def is_none(node: cst.CSTNode | None) -> bool:
    return isinstance(node, cst.Name) and node.value == "None"


def global_names(func: cst.CSTNode) -> set[str]:
    """Names a function declares global or nonlocal, or deletes: never used as config objects."""
    out: set[str] = set()

    class V(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is func

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            return False

        def visit_Global(self, node: cst.Global) -> None:
            out.update(n.name.value for n in node.names)

        def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
            out.update(n.name.value for n in node.names)

        def visit_Del(self, node: cst.Del) -> None:  # `del x` unbinds it
            targets = node.target.elements if isinstance(node.target, (cst.Tuple, cst.List)) else [node.target]
            for t in targets:
                t = t.value if isinstance(t, cst.Element) else t
                if isinstance(t, cst.Name):
                    out.add(t.value)

    func.visit(V())
    return out


def self_assignments(method: cst.FunctionDef, me: str) -> Iterator[tuple[str, cst.BaseExpression | None, cst.CSTNode]]:
    found: list[tuple[str, cst.BaseExpression | None, cst.CSTNode]] = []

    def is_self_attr(t: cst.BaseExpression) -> str | None:
        if isinstance(t, cst.Attribute) and isinstance(t.value, cst.Name) and t.value.value == me:
            return t.attr.value
        return None

    class V(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is method

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            return False

        def visit_Assign(self, node: cst.Assign) -> None:
            for t in node.targets:
                name = is_self_attr(t.target)
                if name:
                    found.append((name, node.value if len(node.targets) == 1 else None, node))
                elif isinstance(t.target, (cst.Tuple, cst.List)):
                    for el in t.target.elements:
                        inner = is_self_attr(el.value)
                        if inner:
                            found.append((inner, None, node))

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            name = is_self_attr(node.target)
            if name and node.value is not None:
                found.append((name, node.value, node))

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            name = is_self_attr(node.target)
            if name:
                found.append((name, None, node))

    method.visit(V())
    return iter(found)


def tested_name(test: cst.BaseExpression) -> str | None:
    """The name a None test is about: `x`, `not x`, `x is None`, `x is not None`."""
    if isinstance(test, cst.Name):
        return test.value
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return tested_name(test.expression)
    if isinstance(test, cst.Comparison) and isinstance(test.left, cst.Name):
        return test.left.value
    return None


def true_when_none(test: cst.BaseExpression, name: str) -> bool | None:
    """Whether `test` is true when `name` is None (`x is None`, `not x`: True; `x is not None`,
    `x`: False); None when the test is about something else."""
    if isinstance(test, cst.Name) and test.value == name:
        return False
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = true_when_none(test.expression, name)
        return None if inner is None else not inner
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1 \
            and isinstance(test.left, cst.Name) and test.left.value == name \
            and is_none(test.comparisons[0].comparator):
        op = test.comparisons[0].operator
        if isinstance(op, (cst.Is, cst.Equal)):
            return True
        if isinstance(op, (cst.IsNot, cst.NotEqual)):
            return False
    return None


def exits(item: cst.CSTNode) -> bool:
    if isinstance(item, cst.SimpleStatementLine):
        return any(isinstance(s, (cst.Raise, cst.Return, cst.Continue, cst.Break)) for s in item.body)
    return isinstance(item, (cst.Raise, cst.Return, cst.Continue, cst.Break))


def suite_items(suite: cst.BaseSuite) -> list[cst.CSTNode]:
    return list(suite.body)


def suite_binds(suite: cst.BaseSuite, name: str, is_binding: Callable[[cst.CSTNode], bool], or_exits: bool = False) -> bool:
    for item in suite_items(suite):
        if binds(item, name, is_binding) or (or_exits and exits(item)):
            return True
    return False


def binds(item: cst.CSTNode, name: str, is_binding: Callable[[cst.CSTNode], bool]) -> bool:
    """Whether running `item` always leaves `name` bound to a config object (or leaves)."""
    if is_binding(item):
        return True
    if isinstance(item, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
        return any(binds(s, name, is_binding) for s in item.body)
    if isinstance(item, cst.If):
        if item.orelse is None:
            return False
        other = item.orelse.body if isinstance(item.orelse, cst.Else) else None
        if isinstance(item.orelse, cst.If):
            return suite_binds(item.body, name, is_binding, True) and binds(item.orelse, name, is_binding)
        return suite_binds(item.body, name, is_binding, True) and other is not None \
            and suite_binds(other, name, is_binding, True)
    if isinstance(item, cst.With):
        return suite_binds(item.body, name, is_binding)
    if isinstance(item, cst.Try):
        return suite_binds(item.body, name, is_binding) and all(
            suite_binds(h.body, name, is_binding, True) for h in item.handlers)
    return False


def binder(name: str, stmts: list) -> Callable[[cst.CSTNode], bool]:
    """A predicate: does a statement always run one of `stmts` (assignments to `name`)?"""
    return lambda item: binds(item, name, lambda s: any(s is t for t in stmts))


def none_guard(item: cst.CSTNode, name: str, bound: Callable[[cst.CSTNode], bool]) -> bool:
    """`if x is None: <bind x or leave>` (no else needed), `assert x is not None`, `assert x`;
    `bound` says whether a statement binds x to a config object."""
    if isinstance(item, cst.If) and true_when_none(item.test, name) is True:
        return suite_binds(item.body, name, bound, or_exits=True)
    if isinstance(item, cst.SimpleStatementLine):
        for s in item.body:
            if isinstance(s, cst.Assert) and true_when_none(s.test, name) is False:
                return True
    return False
