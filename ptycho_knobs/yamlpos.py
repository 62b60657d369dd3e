"""YAML loading that keeps positions, so every error can name file:line:col.

PyYAML's composed node tree has marks; plain `safe_load` throws them away and silently
keeps the last of two duplicate keys. We compose with the safe loader (no object tags),
reject duplicates, and hand back `Node`s that carry value and position together.

Hostile input is bounded before it is expanded: composing keeps aliases as shared nodes
(linear in the text), so the size that aliases would expand to is counted on the composed
graph first; an alias bomb (a 1 KB file that expands to billions of nodes), an alias that
refers to the value containing it, and nesting deeper than `MAX_DEPTH` are located errors,
found in milliseconds. So are values the safe constructor cannot build (a 5,000-digit
integer, a 13th month).

`yaml` itself is imported on the first load, not with this module (a cached registry
needs no YAML).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptycho_knobs.errors import LocatedError

MAX_DEPTH = 100  # nesting levels of maps and lists (a registry needs 5)
MAX_ALIAS_NODES = 50_000  # nodes that aliases may add beyond the document's own (or as many as it has)


@dataclass(frozen=True)
class Node:
    """A YAML value with its 1-based position. Mappings hold `dict[str, Entry]`."""

    value: Any  # scalar, dict[str, Entry] or list[Node]
    line: int
    col: int

    @property
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)

    def plain(self) -> Any:
        """The value with positions stripped, recursively."""
        if self.is_map:
            return {k: e.node.plain() for k, e in self.value.items()}
        if self.is_list:
            return [n.plain() for n in self.value]
        return self.value


@dataclass(frozen=True)
class Entry:
    """One mapping entry: where its key is, and its value node."""

    key_line: int
    key_col: int
    node: Node


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building a big acyclic tree.

    A big registry is hundreds of thousands of small objects that hold no cycles; the GC
    would rescan them again and again as they accumulate (load time grew ~20x for 10x the
    knobs). They are freed by reference counting either way.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def load(path: Path, error: type[LocatedError]) -> Node | None:
    """Load one YAML document from `path`; None when the file is empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(path, 1, 1, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise error(path, 1, 1, f"cannot read: {exc.strerror or exc}") from None
    return loads(text, path, error)


_loader_class: Any = None
yaml: Any = None  # the module, once the first load imported it


def _safe_loader() -> Any:
    """libyaml's parser is ~4x faster on big registries; the safe constructor is the same."""
    global _loader_class, yaml
    if _loader_class is None:
        import yaml as module

        yaml = module
        _loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return _loader_class


def loads(text: str, path: Path | str, error: type[LocatedError]) -> Node | None:
    loader = _safe_loader()(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        if "&" in text:  # no anchor, no alias: nothing to expand
            _check_aliases(root, path, error)
        return _convert(loader, root, path, error, 1)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise error(path, line, col, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise error(path, 1, 1, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _at(node: Any) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _check_aliases(root: Any, path: Path | str, error: type[LocatedError]) -> None:
    """Refuse a document whose aliases expand it past the budget, or that contains itself.

    One pass over the composed graph (each distinct node once): the expanded size of each
    node is 1 + the sizes of its children, counted with Python's big integers, so a bomb is
    measured without being expanded.
    """
    in_progress = -1
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children = _children(node)
        if done:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            continue
        known = sizes.get(id(node))
        if known == in_progress:
            line, col = _at(node)
            raise error(path, line, col, "a YAML alias refers to the value that contains it (a recursive structure)",
                        "remove the alias; registries and run files are trees")
        if known is not None:
            continue
        if not children:
            sizes[id(node)] = 1
            continue
        sizes[id(node)] = in_progress
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(children))
    limit = len(sizes) + max(MAX_ALIAS_NODES, len(sizes))
    if sizes[id(root)] <= limit:
        return
    node = root
    while True:  # the innermost value still over the limit: the line that blows up
        bigger = next((c for c in _children(node) if sizes[id(c)] > limit), None)
        if bigger is None:
            break
        node = bigger
    line, col = _at(node)
    raise error(path, line, col,
                f"YAML aliases expand this value to {sizes[id(node)]:,} nodes, more than the {limit:,} "
                "allowed (an alias bomb?)", "write the values out, or use fewer aliases")


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _construct(loader: Any, node: Any, path: Path | str, error: type[LocatedError]) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        line, col = _at(node)
        raise error(path, line, col, f"unsupported YAML value: {exc.problem}") from None
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. a 5,000-digit int, month 13
        line, col = _at(node)
        raise error(path, line, col, f"unsupported YAML value: {exc}") from None


def _convert(loader: Any, node: Any, path: Path | str, error: type[LocatedError], depth: int) -> Node:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if depth > MAX_DEPTH:
        raise error(path, line, col, f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, yaml.ScalarNode):
        return Node(_construct(loader, node, path, error), line, col)
    if node.tag not in _PLAIN_TAGS:
        # Scalars with such tags already fail in the safe constructor; collections would
        # otherwise be read as plain lists and maps with the tag silently dropped.
        raise error(path, line, col,
                    f"YAML tag {node.tag!r} is not allowed ({error.document} are loaded safely: plain YAML only)")
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        items: dict[str, Entry] = {}
        for key_node, value_node in node.value:
            kline, kcol = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            key = _construct(loader, key_node, path, error)
            if not isinstance(key, str):
                raise error(path, kline, kcol, f"keys must be strings, got {key!r}")
            if key in items:
                first = items[key]
                raise error(
                    path, kline, kcol,
                    f"duplicate key {key!r} (first defined on line {first.key_line})",
                    "remove one of the two; YAML would otherwise silently keep the last",
                )
            items[key] = Entry(kline, kcol, _convert(loader, value_node, path, error, depth + 1))
        return Node(items, line, col)
    return Node([_convert(loader, n, path, error, depth + 1) for n in node.value], line, col)


def iter_map(node: Node) -> Iterator[tuple[str, Entry]]:
    yield from node.value.items()
