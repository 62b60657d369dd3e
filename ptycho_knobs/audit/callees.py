"""Which calls the audit watches, and how a call in source resolves to one of them.

Watched classes come from the registry (`callees:` with their import paths, plus every
`Callee.keyword` named by a source or target). A call resolves through the module's imports,
the way LibCST's QualifiedNameProvider names it: `import lightning as L; L.Trainer` is
`lightning.Trainer`, `from lightning.pytorch.strategies import DDPStrategy` is
`lightning.pytorch.strategies.DDPStrategy`. Classes defined in the scanned tree that derive
from a watched class (`class TensorDictDataLoader(DataLoader)`) are watched too, found by a
cheap text pass over every file before any parsing.

We resolve imports ourselves over Python's `ast` rather than with LibCST's
QualifiedNameProvider: the provider costs about 0.2 s per large file, which alone would
be ten times the benchmark's budget on the Lightning tree, while the cases the audit needs
(module and function-level imports, aliases, attribute chains) are a few lines over `ast`.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field

from ptycho_knobs.registry import Registry

_CLASS_DEF = re.compile(rb"class[ \t]+(\w+)[ \t]*\(([^)]*)\)")


def _class_defs(text: bytes) -> list[tuple[bytes, bytes]]:
    """(name, bases) of each `class Name(bases)` that starts a line (after spaces or tabs):
    what `re.finditer(rb"^[ \\t]*class...", re.MULTILINE)` finds, seven times faster, since a
    pattern that starts with a literal is searched for quickly and one that starts with `^`
    is tried at every line."""
    out: list[tuple[bytes, bytes]] = []
    at = end = 0
    while True:
        match = _CLASS_DEF.search(text, at)
        if match is None:
            return out
        start = match.start()
        line = text.rfind(b"\n", 0, start) + 1
        if line >= end and not text[line:start].strip(b" \t"):
            out.append((match.group(1), match.group(2)))
            at = end = match.end()
        else:
            at = start + 1


@dataclass(frozen=True)
class WatchSet:
    """Qualified import paths -> callee name, plus in-tree subclasses -> callee name."""

    qualified: dict[str, str]
    positional: dict[str, tuple[str, ...]]
    subclasses: dict[str, str] = field(default_factory=dict)

    @property
    def short_names(self) -> frozenset[str]:
        return frozenset(set(self.positional) | set(self.subclasses))

    def digest(self) -> str:
        text = repr((sorted(self.qualified.items()), sorted(self.positional.items()), sorted(self.subclasses.items())))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def resolve(self, qualified: str | None) -> str | None:
        """The callee a fully qualified name stands for, or None."""
        if qualified is None:
            return None
        hit = self.qualified.get(qualified)
        if hit is not None:
            return hit
        last = qualified.rsplit(".", 1)[-1]
        return self.subclasses.get(last)

    def with_subclasses(self, sources: list[bytes]) -> WatchSet:
        """Add classes defined in `sources` that derive (transitively) from a watched class.

        Only files that mention a watched name are searched (a fast substring test first):
        a subclass definition names its base."""
        found: dict[str, str] = {}
        names = set(self.positional)
        searched: set[int] = set()
        while True:
            needles = [n.encode() for n in names]
            bases: dict[str, set[str]] = {}
            for i, text in enumerate(sources):
                if i in searched or not any(n in text for n in needles):
                    continue
                searched.add(i)
                for cls, listed in _class_defs(text):
                    parts = {b.strip().rsplit(b".", 1)[-1].decode("ascii", "replace") for b in listed.split(b",")}
                    bases.setdefault(cls.decode("ascii", "replace"), set()).update(parts)
            new: dict[str, str] = {}
            changed = True
            while changed:
                changed = False
                for cls, parts in bases.items():
                    if cls in found or cls in new or cls in self.positional:
                        continue
                    for base in parts:
                        callee = base if base in self.positional else found.get(base) or new.get(base)
                        if callee:
                            new[cls] = callee
                            changed = True
                            break
            if not new:
                return WatchSet(self.qualified, self.positional, found)
            found.update(new)
            names = set(new)
            searched = set()

def watch_set(registry: Registry) -> WatchSet:
    qualified: dict[str, str] = {}
    positional: dict[str, tuple[str, ...]] = {}
    for callee in registry.callees:
        positional[callee.name] = callee.positional
        for q in callee.qualified:
            qualified[q] = callee.name
    return WatchSet(qualified, positional)


class ImportMap:
    """Local names bound by imports anywhere in a module -> the dotted name they stand for.

    Function-level imports count as if they were at module level: a name imported in one
    function and used in another is rare enough, and it only widens what we watch.
    """

    def __init__(self, tree: ast.Module | None = None, package: str = "") -> None:
        self.names: dict[str, str] = {}
        self.star: str | None = None  # the module of the last `from M import *`
        self.modules: list[str] = []  # every module (or module.name) imported, relative ones with dots
        if tree is not None:
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    self.add(node)

    def add(self, node: ast.Import | ast.ImportFrom) -> None:
        """Bind the names one import statement binds (a later import of a name wins).

        The scanner calls this from its own single walk, in `ast.walk` order."""
        if isinstance(node, ast.Import):
            self.modules.extend(alias.name for alias in node.names)
            for alias in node.names:
                if alias.asname:
                    self.names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".", 1)[0]
                    self.names[top] = top
        else:
            module = node.module or ""
            if node.level:
                module = ("." * node.level) + module
            self.modules.append(module)
            self.modules.extend(f"{module}.{a.name}" if module and not module.endswith(".") else f"{module}{a.name}"
                                for a in node.names if a.name != "*")
            for alias in node.names:
                if alias.name == "*":
                    self.star = module
                    continue
                self.names[alias.asname or alias.name] = f"{module}.{alias.name}" if module else alias.name

    def qualify(self, expr: ast.expr) -> str | None:
        """`L.pytorch.Trainer` -> `lightning.pytorch.Trainer`; a bare local name stays itself."""
        parts: list[str] = []
        while isinstance(expr, ast.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        if not isinstance(expr, ast.Name):
            return None
        head = self.names.get(expr.id)
        if head is None:
            # After `from lightning.pytorch.callbacks import *`, a bare `EarlyStopping` is
            # most likely that module's; if it is not watched there, nothing matches anyway.
            head = f"{self.star}.{expr.id}" if self.star and not parts else expr.id
        return ".".join([head, *reversed(parts)])
