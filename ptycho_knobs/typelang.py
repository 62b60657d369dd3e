"""The registry's closed type language.

A knob's `type` is one of `int`, `float`, `bool`, `str`, `path`, `Optional[T]` or
`Literal[v1, v2, ...]` (literal members are str, int or bool). It is parsed once at load
time into a `KType`, and every generator asks the `KType` rather than re-parsing the
string, so the dataclass annotation, the argparse type, the JSON Schema and the runtime
check can never disagree.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any

SCALARS = ("int", "float", "bool", "str", "path")

_FLOAT_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$")


class TypeParseError(ValueError):
    """The type expression is not in the closed language; `col` is 1-based."""

    def __init__(self, message: str, col: int = 1) -> None:
        super().__init__(message)
        self.col = col


@dataclass(frozen=True)
class Scalar:
    name: str  # one of SCALARS

    def check(self, value: Any) -> bool:
        if self.name == "bool":
            return isinstance(value, bool)
        if self.name == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        if self.name == "float":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        return isinstance(value, str)  # str and path

    def annotation(self) -> str:
        return "str" if self.name == "path" else self.name

    def json_schema(self) -> dict[str, Any]:
        kind = {"int": "integer", "float": "number", "bool": "boolean"}.get(self.name, "string")
        return {"type": kind}

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class OptionalOf:
    inner: Scalar | LiteralOf

    def check(self, value: Any) -> bool:
        return value is None or self.inner.check(value)

    def annotation(self) -> str:
        """PEP 604 spelling: generated code then needs no pyupgrade exemption (Python >= 3.10)."""
        return f"{self.inner.annotation()} | None"

    def json_schema(self) -> dict[str, Any]:
        return {"anyOf": [self.inner.json_schema(), {"type": "null"}]}

    def __str__(self) -> str:
        return f"Optional[{self.inner}]"


@dataclass(frozen=True)
class LiteralOf:
    values: tuple[str | int | bool, ...]

    def check(self, value: Any) -> bool:
        # `True == 1` in Python, so compare type as well as value.
        return any(type(value) is type(v) and value == v for v in self.values)

    def annotation(self) -> str:
        return "Literal[" + ", ".join(repr(v) for v in self.values) + "]"

    def json_schema(self) -> dict[str, Any]:
        return {"enum": list(self.values)}

    def __str__(self) -> str:
        return self.annotation()


KType = Scalar | OptionalOf | LiteralOf


def parse_type(text: str) -> KType:
    """Parse a type expression; raises `TypeParseError` with a column on failure."""
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    if stripped in SCALARS:
        return Scalar(stripped)
    m = re.fullmatch(r"Optional\[(.*)\]", stripped, re.S)
    if m:
        try:
            inner = parse_type(m.group(1))
        except TypeParseError as exc:  # report the column in the whole expression
            raise TypeParseError(str(exc), lead + len("Optional[") + exc.col) from None
        if isinstance(inner, OptionalOf):
            raise TypeParseError("Optional[Optional[T]] is redundant; write Optional[T]", lead + 10)
        return OptionalOf(inner)
    m = re.fullmatch(r"Literal\[(.*)\]", stripped, re.S)
    if m:
        return LiteralOf(_parse_literal_members(m.group(1), lead + 9))
    raise TypeParseError(
        f"unknown type {stripped!r}; expected one of {', '.join(SCALARS)}, "
        "Optional[T] or Literal[...]",
        lead + 1,
    )


def _parse_literal_members(body: str, col: int) -> tuple[str | int | bool, ...]:
    try:
        node = ast.parse(f"({body},)", mode="eval").body
    except SyntaxError as exc:
        raise TypeParseError(f"Literal members do not parse: {exc.msg}", col) from None
    assert isinstance(node, ast.Tuple)
    values: list[str | int | bool] = []
    for elt in node.elts:
        try:
            value = ast.literal_eval(elt)  # handles negative numbers (a UnaryOp node)
        except ValueError:
            raise TypeParseError("Literal members must be str, int or bool constants", col) from None
        if not isinstance(value, (str, int, bool)):
            raise TypeParseError("Literal members must be str, int or bool constants", col)
        if any(type(v) is type(value) and v == value for v in values):
            raise TypeParseError(f"Literal member {value!r} is repeated", col)
        values.append(value)
    if not values:
        raise TypeParseError("Literal[] needs at least one member", col)
    return tuple(values)


def base_scalar(ktype: KType) -> Scalar | LiteralOf:
    """The type without its Optional wrapper."""
    return ktype.inner if isinstance(ktype, OptionalOf) else ktype


def is_optional(ktype: KType) -> bool:
    return isinstance(ktype, OptionalOf)


def coerce_text(ktype: KType, text: str) -> Any:
    """Turn command-line or environment text into a value of `ktype`.

    Raises ValueError with a message fit for a user. `none`/`null` mean None for
    Optional types; bools accept true/false/1/0/yes/no/on/off.
    """
    if isinstance(ktype, OptionalOf):
        if text.strip().lower() in ("none", "null", "~", ""):
            return None
        return coerce_text(ktype.inner, text)
    if isinstance(ktype, LiteralOf):
        for v in ktype.values:
            if str(v) == text or (isinstance(v, bool) and text.lower() == str(v).lower()):
                return v
        choices = ", ".join(repr(v) for v in ktype.values)
        raise ValueError(f"{text!r} is not one of {choices}")
    name = ktype.name
    if name == "bool":
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{text!r} is not a bool (true/false)")
    if name == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an int") from None
    if name == "float":
        if not _FLOAT_TEXT.match(text.strip()):
            raise ValueError(f"{text!r} is not a float")
        return float(text)
    return text


def coerce_yaml(ktype: KType, value: Any) -> Any:
    """Accept a YAML-loaded value for `ktype`, or raise ValueError.

    The one leniency: YAML 1.1 reads `1e5` as a string, so a float (or Optional float)
    knob accepts a string that is plainly a float literal. Ints are widened to float.
    """
    base = base_scalar(ktype)
    if isinstance(base, Scalar) and base.name == "float":
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
            value = float(value)
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
    if not ktype.check(value):
        raise ValueError(f"{value!r} ({type(value).__name__}) does not fit type {ktype}")
    return value


def describe_mismatch(ktype: KType, value: Any) -> str:
    """A sentence explaining why `value` is not a `ktype`, with the YAML 1.1 hint."""
    msg = f"{value!r} ({type(value).__name__}) does not fit type {ktype}"
    base = base_scalar(ktype)
    if isinstance(value, str) and isinstance(base, Scalar) and base.name == "float":
        if _FLOAT_TEXT.match(value.strip()):
            msg += "; YAML 1.1 reads '1e5' as a string: write 1.0e+5 or 100000.0"
    return msg


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
