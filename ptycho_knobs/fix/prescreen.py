"""A cheap `ast` look before libcst: can a config object be in scope here at all?

libcst's metadata passes cost about a second per thousand lines; most hard-coded knobs sit
in functions that never mention a config class. An object of a `configs` class is only ever
recognised (see `scope`) through the class's name (an annotation, a constructor, an import)
or one of its `vars` names, in the enclosing function's text or, for `self.<attr>`, its
class's. When neither appears there, no object can be found: the edit is left right away
("no config object in scope") and the file is not handed to libcst for it.
"""

from __future__ import annotations

import ast
import re


class AstView:
    """Functions and classes of one file, by line."""

    def __init__(self, data: bytes) -> None:
        tree = ast.parse(data)  # raises SyntaxError / ValueError
        self.lines = data.split(b"\n")
        self.data = data
        self.functions: list[tuple[ast.AST, ast.ClassDef | None]] = []
        stack: list[tuple[ast.AST, ast.ClassDef | None]] = [(tree, None)]
        while stack:
            node, _ = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions.append((child, node if isinstance(node, ast.ClassDef) else None))
                stack.append((child, None))

    def enclosing(self, line: int) -> tuple[ast.AST | None, ast.ClassDef | None]:
        """The innermost function whose body holds `line`, and its class when a method."""
        best: tuple[ast.AST | None, ast.ClassDef | None] = (None, None)
        for func, cls in self.functions:
            first = min([func.lineno, *(d.lineno for d in func.decorator_list)])  # type: ignore[attr-defined]
            if first <= line <= (func.end_lineno or func.lineno):  # type: ignore[attr-defined]
                if best[0] is None or func.lineno > best[0].lineno:  # type: ignore[attr-defined]
                    best = (func, cls)
        return best

    def _text(self, node: ast.AST) -> bytes:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])  # type: ignore[attr-defined]
        return b"\n".join(self.lines[first - 1:node.end_lineno])  # type: ignore[attr-defined]

    def may_hold(self, line: int, words: set[str]) -> bool:
        """Whether any of `words` appears where `scope` would look for an object at `line`."""
        if not words:
            return False
        pattern = re.compile(rb"\b(?:" + b"|".join(re.escape(w.encode()) for w in sorted(words)) + rb")\b")
        func, cls = self.enclosing(line)
        if func is None:
            return pattern.search(self.data) is not None
        if pattern.search(self._text(func)):
            return True
        return cls is not None and pattern.search(self._text(cls)) is not None

    def where(self, line: int) -> str:
        func, _ = self.enclosing(line)
        if func is None:
            return "module level"
        return f"{func.name}() (line {func.lineno})"  # type: ignore[attr-defined]
