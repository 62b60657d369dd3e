"""Which field of which real config class carries a knob, verified in that class's source.

A `use-config` edit names the registry's generated home class and knob
(`PyTorchExecutionConfig.early_stop_patience`); the tree has its own classes (the registry's
`configs`). A knob's carriers are, in this order of preference:

1. each `field: Class.attr` source whose Class is listed under `configs` (the registry says
   the real tree holds the knob there, e.g. `TrainingConfig.accum_steps`);
2. a `configs` class with the generated home class's name (the tree's own
   `PyTorchExecutionConfig`), under whichever of the knob's attribute names
   (`Knob.attr_names`: name, aliases, field aliases, some inverted) that class has.

A field alias with `values` (`scheduler`, spelling 'Default' for 'default') never carries the
knob: reading it gives the alias's spelling, not the value a call site needs.

A carrier counts only once its attribute is found in the class body (a dataclass field, a
class attribute or a property, also through base classes of the same file), read with
`ast` and never imported.
"""

from __future__ import annotations

import ast
import keyword
import os
from dataclasses import dataclass
from pathlib import Path

from ptycho_knobs.ktypes import ConfigClass, Knob
from ptycho_knobs.registry import Registry


@dataclass(frozen=True)
class Carrier:
    """`config.attr` holds the knob (its opposite when `inverted`)."""

    config: ConfigClass
    attr: str
    inverted: bool
    rank: int  # 0: the edit names it; 1: a field source does; 2: a configs class named like the home class


@dataclass(frozen=True)
class NoCarrier:
    """Why no carrier could be verified: kind (for grouping) and the detail."""

    kind: str  # "no-carrier" | "no-field" | "config-missing"
    detail: str


def _identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def attr_inverted(knob: Knob, attr: str) -> bool:
    """Whether attribute `attr` holds the knob's opposite (a field source or field alias says so)."""
    for src in knob.sources:
        if src.field and src.field.split(".", 1)[-1] == attr and src.invert:
            return True
    return knob.attr_names.get(attr, False)


def candidates(registry: Registry, knob: Knob, edit_class: str | None, edit_attr: str | None) -> list[Carrier]:
    """Every (class, attribute) that may carry `knob`, unverified, best first: the edit's own
    (the audit may already name the real field), the `field:` sources, then the `configs`
    classes named like the edit's class or the generated home class, under each attribute
    name of the knob."""
    out: list[Carrier] = []
    names = knob.attr_names
    if edit_class and edit_attr and _identifier(edit_attr):
        for cfg in registry.configs:
            if cfg.name == edit_class:
                out.append(Carrier(cfg, edit_attr, attr_inverted(knob, edit_attr), 0))
    for src in knob.sources:
        if not src.field or "." not in src.field:
            continue
        cls, attr = src.field.split(".", 1)
        for cfg in registry.configs:
            if cfg.name == cls and _identifier(attr):
                out.append(Carrier(cfg, attr, bool(src.invert or names.get(attr, False)), 1))
    homes = [c for c in dict.fromkeys((edit_class, knob.home.class_name)) if c]
    # the knob's own name first, then the names that hold the same sense, then inverted ones;
    # a name the registry gives both senses (a catalog name that is also an inverted target,
    # like enable_progress_bar for quiet without a field alias) is not guessed at
    inverted_targets = {t.attr for t in knob.targets if t.invert}
    ordered = sorted(names.items(), key=lambda kv: (kv[1], kv[0] != knob.name))
    for home in homes:
        for cfg in registry.configs:
            if cfg.name != home:
                continue
            for attr, inverted in ordered:
                if _identifier(attr) and (inverted or attr not in inverted_targets):
                    out.append(Carrier(cfg, attr, inverted, 2))
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for c in out:
        key = (c.config.name, c.config.file, c.attr)
        if knob.value_alias(c.attr) is not None:
            continue  # it spells the values its own way (scheduler 'Default'): `config.attr` is not the knob's value
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return unique


class ConfigSources:
    """Finds each config class's file and reads its fields statically, once per file.

    `configs[].file` is relative to the registry's folder; when the registry lives elsewhere
    (`--registry` from another checkout), the file is looked for above each audited root and
    the working directory, the way the audit matches source files by their path's tail.
    """

    def __init__(self, registry: Registry, roots: list[Path]) -> None:
        self.bases: list[Path] = [registry.path.parent.absolute()]
        for start in [*roots, Path.cwd()]:
            start = Path(os.path.abspath(start))
            for folder in (start, *start.parents):
                if folder not in self.bases:
                    self.bases.append(folder)
        self._files: dict[str, Path | None] = {}
        self._trees: dict[Path, ast.Module | None] = {}
        self._fields: dict[tuple[str, str], frozenset[str] | None] = {}

    def locate(self, cfg: ConfigClass) -> Path | None:
        if cfg.file not in self._files:
            found = None
            for base in self.bases:
                candidate = base / cfg.file
                if candidate.is_file():
                    found = candidate
                    break
            self._files[cfg.file] = found
        return self._files[cfg.file]

    def _tree(self, path: Path) -> ast.Module | None:
        if path not in self._trees:
            try:
                self._trees[path] = ast.parse(path.read_bytes())
            except (OSError, SyntaxError, ValueError):
                self._trees[path] = None
        return self._trees[path]

    def fields(self, cfg: ConfigClass) -> frozenset[str] | None:
        """The attribute names `cfg`'s class defines; None when its file or class is not found."""
        key = (cfg.name, cfg.file)
        if key not in self._fields:
            path = self.locate(cfg)
            tree = self._tree(path) if path else None
            self._fields[key] = _class_fields(tree, cfg.name) if tree else None
        return self._fields[key]

    def verify(self, registry: Registry, knob: Knob, edit_class: str | None,
               edit_attr: str | None) -> tuple[list[Carrier], NoCarrier | None]:
        """The carriers whose attribute is really in their class; or why there is none."""
        found = candidates(registry, knob, edit_class, edit_attr)
        if not found:
            return [], NoCarrier("no-carrier", f"no class listed under `configs` carries {knob.name}")
        ok: list[Carrier] = []
        missing: list[str] = []
        absent: dict[str, list[str]] = {}
        taken: set[tuple[str, str]] = set()
        for c in found:
            names = self.fields(c.config)
            if names is None:
                missing.append(f"{c.config.name} ({c.config.file})")
                continue
            key = (c.config.name, c.config.file)
            if c.attr in names:
                if key not in taken:  # one attribute per class: the best-ranked name it has
                    ok.append(c)
                    taken.add(key)
            else:
                absent.setdefault(f"{c.config.name} ({c.config.file})", []).append(c.attr)
        if ok:
            return ok, None
        if absent:
            unsure = {t.attr for t in knob.targets if t.invert and not knob.attr_names.get(t.attr, True)}
            parts = []
            for c in dict.fromkeys(c.config for c in found):
                label = f"{c.name} ({c.file})"
                if label not in absent:
                    continue
                text = f"{label} has no {' / '.join(absent[label])}"
                both = sorted(a for a in unsure if a in (self.fields(c) or ()))
                if both:
                    text += (f" ({', '.join(both)} is there, but the registry gives it both senses: "
                             "declare it under field_aliases, with invert if it holds the opposite)")
                parts.append(text)
            return [], NoCarrier("no-field", "; ".join(parts))
        return [], NoCarrier("config-missing", "not found: " + ", ".join(dict.fromkeys(missing)))


def _class_fields(tree: ast.Module, name: str, seen: frozenset[str] = frozenset()) -> frozenset[str] | None:
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name]
    if not classes:
        return None
    out: set[str] = set()
    for cls in classes:
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                out.add(stmt.target.id)
            elif isinstance(stmt, ast.Assign):
                out.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                    isinstance(d, ast.Name) and d.id in ("property", "cached_property")
                    or isinstance(d, ast.Attribute) and d.attr == "cached_property"
                    for d in stmt.decorator_list):
                out.add(stmt.name)
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id != name and base.id not in seen:
                inherited = _class_fields(tree, base.id, seen | {name})
                if inherited:
                    out.update(inherited)
    return frozenset(out)
