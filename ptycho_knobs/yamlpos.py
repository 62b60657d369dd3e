"""YAML loading that keeps positions, so every error can name file:line:col.

PyYAML's composed node tree has marks; plain `safe_load` throws them away and silently
keeps the last of two duplicate keys. We compose with the safe loader (no object tags),
reject duplicates, and hand back `Node`s that carry value and position together.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ptycho_knobs.errors import LocatedError


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
    return loads(text, path, error)


# libyaml's parser is ~4x faster on big registries; the safe constructor is the same.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def loads(text: str, path: Path | str, error: type[LocatedError]) -> Node | None:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        return _convert(loader, root, path, error)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise error(path, line, col, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise error(path, 1, 1, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _convert(loader: Any, node: yaml.Node, path: Path | str, error: type[LocatedError]) -> Node:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        # Scalars with such tags already fail in the safe constructor; collections would
        # otherwise be read as plain lists and maps with the tag silently dropped.
        raise error(path, line, col, f"YAML tag {node.tag!r} is not allowed (run files are loaded safely)")
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        items: dict[str, Entry] = {}
        for key_node, value_node in node.value:
            kline, kcol = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise error(path, kline, kcol, f"keys must be strings, got {key!r}")
            if key in items:
                first = items[key]
                raise error(
                    path, kline, kcol,
                    f"duplicate key {key!r} (first defined on line {first.key_line})",
                    "remove one of the two; YAML would otherwise silently keep the last",
                )
            items[key] = Entry(kline, kcol, _convert(loader, value_node, path, error))
        return Node(items, line, col)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(loader, n, path, error) for n in node.value], line, col)
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        raise error(path, line, col, f"unsupported YAML value: {exc.problem}") from None
    return Node(value, line, col)


def iter_map(node: Node) -> Iterator[tuple[str, Entry]]:
    yield from node.value.items()
