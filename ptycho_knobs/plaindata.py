"""Typed value objects to plain `marshal` data and back, for the cache; never pickle.

A `Codec` knows the frozen dataclasses and enums defined in the modules it is given (found
by name, so new classes and fields need no change here) and nothing else. Encoding:

- None, bool, int, float (inf and nan too), complex, str, bytes, Ellipsis: as they are;
- tuple and list stay tuple and list; dict keeps its order; set and frozenset keep their type;
- a frozen dataclass instance: its class name and its fields' values (an object met again,
  such as a knob in the registry's name index, is a reference to the first one);
- an enum member: its class name and value; a `pathlib` path: its text;
- a module-level singleton of those modules that pickles by name (`NOT_LITERAL`): its name.

Tagged values are tuples that start with `StopIteration` (which marshal can write and no
scanned literal or YAML value can be). Anything else is refused with `ValueError`; decoding
refuses any tag, class or type it does not know, so even a well-formed entry can only
ever build the allowed value objects. `stamp` hashes every class's name and field names
(and enum values): put it in the cache key, so a changed class is a miss, not an error.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import marshal
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from types import ModuleType
from typing import Any

MARK = StopIteration
_DATACLASS, _REF, _ENUM, _PATH, _GLOBAL, _SET, _FROZENSET = range(7)
_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes, type(Ellipsis)})
_PATHS = {"posix": PurePosixPath, "windows": PureWindowsPath}


class Codec:
    def __init__(self, modules: tuple[ModuleType, ...]) -> None:
        self.classes: dict[type, tuple[str, tuple[str, ...], bool]] = {}  # class -> (tag name, fields, slotted)
        self.by_name: dict[str, tuple[type, tuple[str, ...], bool]] = {}
        self.enums: dict[str, type[enum.Enum]] = {}
        self.globals: dict[str, object] = {}
        shape = []
        for module in modules:
            short = module.__name__.rpartition(".")[2]
            for name, value in sorted(vars(module).items()):
                tag = f"{short}.{name}"
                if isinstance(value, type) and value.__module__ == module.__name__:
                    if tag in self.by_name or tag in self.enums:
                        continue  # two modules of the same short name: not cached, never wrong
                    if dataclasses.is_dataclass(value) and value.__dataclass_params__.frozen:  # type: ignore[attr-defined]
                        fields = tuple(f.name for f in dataclasses.fields(value))
                        slotted = any("__slots__" in vars(c) for c in value.__mro__[:-1])
                        self.classes[value] = (tag, fields, slotted)
                        self.by_name[tag] = (value, fields, slotted)
                        shape.append(f"D {tag}({','.join(fields)})")
                    elif issubclass(value, enum.Enum):
                        self.enums[tag] = value
                        shape.append(f"E {tag}({','.join(repr(m.value) for m in value)})")
                elif type(value).__module__ == module.__name__ and _reduces_to(value, name):
                    self.globals[tag] = value
                    shape.append(f"G {tag}")
        self.stamp = hashlib.sha256("\n".join(shape).encode()).hexdigest()
        self._global_ids = {id(v): k for k, v in self.globals.items()}
        self._enum_names = {cls: tag for tag, cls in self.enums.items()}

    # -- encoding ---------------------------------------------------------------------------

    def dumps(self, value: Any) -> bytes:
        try:
            return marshal.dumps(self.encode(value))
        except (RecursionError, ValueError) as exc:
            raise ValueError(f"cannot cache this value: {exc}") from None

    def encode(self, value: Any) -> Any:
        memo: dict[int, int] = {}
        keep: list[Any] = []  # holds every memoised object, so no id is reused meanwhile
        classes, enums, globals_ = self.classes, self._enum_names, self._global_ids

        def enc(v: Any) -> Any:
            t = type(v)
            if t in _SCALARS:
                return v
            if t is tuple:
                return tuple([enc(x) for x in v])
            if t is list:
                return [enc(x) for x in v]
            if t is dict:
                return {enc(k): enc(x) for k, x in v.items()}
            if id(v) in globals_:
                return (MARK, _GLOBAL, globals_[id(v)])
            known = classes.get(t)
            if known is not None:
                ref = memo.get(id(v))
                if ref is not None:
                    return (MARK, _REF, ref)
                memo[id(v)] = ref = len(memo)
                keep.append(v)
                return (MARK, _DATACLASS, known[0], ref, tuple([enc(getattr(v, f)) for f in known[1]]))
            if t in enums:
                return (MARK, _ENUM, enums[t], v.value)
            if t is set or t is frozenset:
                return (MARK, _SET if t is set else _FROZENSET, tuple([enc(x) for x in v]))
            if isinstance(v, PurePath):
                return (MARK, _PATH, "windows" if isinstance(v, PureWindowsPath) else "posix", str(v))
            raise ValueError(f"{t.__module__}.{t.__qualname__} values are not plain data")

        return enc(value)

    # -- decoding ---------------------------------------------------------------------------

    def loads(self, payload: bytes) -> Any:
        """Decode; `ValueError` for anything that is not exactly what `dumps` writes."""
        try:
            return self.decode(marshal.loads(payload))
        except (EOFError, TypeError, KeyError, IndexError, RecursionError, AttributeError) as exc:
            raise ValueError(f"not a cache entry: {type(exc).__name__}") from None

    def decode(self, data: Any) -> Any:
        objects: list[Any] = []
        classes, enums, globals_ = self.by_name, self.enums, self.globals
        from pathlib import Path

        def dec(v: Any) -> Any:
            t = type(v)
            if t in _SCALARS:
                return v
            if t is tuple:
                if v and v[0] is MARK:
                    return tagged(v)
                return tuple([dec(x) for x in v])
            if t is list:
                return [dec(x) for x in v]
            if t is dict:
                return {dec(k): dec(x) for k, x in v.items()}
            raise ValueError(f"unexpected {t.__name__} in a cache entry")

        def tagged(v: tuple) -> Any:
            tag = v[1]
            if tag == _DATACLASS:
                _, _, name, ref, values = v
                cls, fields, slotted = classes[name]
                if ref != len(objects) or type(values) is not tuple or len(values) != len(fields):
                    raise ValueError(f"malformed {name} in a cache entry")
                obj = object.__new__(cls)
                objects.append(obj)
                decoded = [dec(x) for x in values]
                if slotted:
                    for f, x in zip(fields, decoded, strict=True):
                        object.__setattr__(obj, f, x)
                else:
                    obj.__dict__.update(zip(fields, decoded, strict=True))
                return obj
            if tag == _REF:
                return objects[v[2]]
            if tag == _ENUM:
                return enums[v[2]](v[3])
            if tag == _PATH:
                if type(v[3]) is not str:
                    raise ValueError("malformed path in a cache entry")
                kind = _PATHS[v[2]]
                return Path(v[3]) if isinstance(Path(), kind) else kind(v[3])
            if tag == _GLOBAL:
                return globals_[v[2]]
            if tag in (_SET, _FROZENSET):
                items = [dec(x) for x in v[2]]
                return set(items) if tag == _SET else frozenset(items)
            raise ValueError(f"unknown tag {tag!r} in a cache entry")

        return dec(data)


def _reduces_to(value: object, name: str) -> bool:
    """Whether `value` is a singleton that pickles as the global `name` (like NOT_LITERAL)."""
    reduce = getattr(type(value), "__reduce__", None)
    if reduce is None or reduce is object.__reduce__:
        return False
    try:
        return value.__reduce__() == name  # type: ignore[no-any-return]
    except Exception:
        return False
