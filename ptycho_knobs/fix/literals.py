"""Literals rewritten in the old literal's style.

`set-literal`: the registry's value written the way the old literal was: quote character,
string prefix and triple quotes; int vs float as before (`4` stays an int, `4.` stays a
float); scientific notation (`1e-3` -> `1e-4`, with the old `E` and `+`), underscores
(`100_000` -> `50_000`), hex/octal/binary, a leading `.5`. A number in a string
(`default='1e-3'`) keeps its string. A list or tuple goes through `sequence`.

`set-choices`: a list/tuple/set literal with new items, keeping its brackets, its layout
(one item per line stays one item per line, a trailing comma stays), the quote style of its
strings, and the comment of every item that survives (it moves with the item).

Every function returns libcst nodes or raises `Unwritable` (the edit is then skipped).
"""

from __future__ import annotations

import ast
import math
import re
from decimal import Decimal
from typing import Any

import libcst as cst


class Unwritable(Exception):
    """The value cannot be written in place of this literal."""


# -- styles ----------------------------------------------------------------------------------


class NumberStyle:
    """How a number was written: `1e-3`, `1E+03`, `100_000`, `0x1F`, `4.`, `.5`."""

    def __init__(self, text: str = "") -> None:
        t = text.strip()
        low = t.lower()
        self.base = low[:2] if low[:2] in ("0x", "0o", "0b") else ""
        self.prefix = t[:2] if self.base else ""
        self.upper_digits = bool(self.base) and any(c in "ABCDEF" for c in t[2:])
        self.sci = not self.base and "e" in low
        self.upper_e = "E" in t
        self.plus = bool(re.search(r"[eE]\+", t))
        self.underscores = "_" in t
        mantissa = re.split(r"[eE]", t)[0] if self.sci else t
        # `1.0e-3` keeps its `.0`; `2.5e-3` had a point only because it needed one
        self.mantissa_point = "." in mantissa and set(mantissa.split(".", 1)[1]) <= {"0"}
        exponent = re.split(r"[eE][+-]?", t)[1] if self.sci else ""
        self.exp_width = len(exponent) if exponent.startswith("0") else 0
        self.trailing_point = mantissa.endswith(".")
        self.leading_point = mantissa.startswith(".")
        self.is_float = not self.base and ("." in t or self.sci)


def _group(digits: str, size: int = 3) -> str:
    head = len(digits) % size or size
    parts = [digits[:head]] + [digits[i:i + size] for i in range(head, len(digits), size)]
    return "_".join(parts)


def format_int(value: int, style: NumberStyle) -> str:
    sign = "-" if value < 0 else ""
    v = abs(value)
    if style.base:
        digits = format(v, {"0x": "x", "0o": "o", "0b": "b"}[style.base])
        if style.upper_digits:
            digits = digits.upper()
        if style.underscores:
            digits = _group(digits, 4)
        return f"{sign}{style.prefix}{digits}"
    digits = str(v)
    if style.sci and v:  # an int written as a float literal stays scientific: 1e9
        return sign + format_float(float(v), style)
    return sign + (_group(digits) if style.underscores else digits)


def format_float(value: float, style: NumberStyle) -> str:
    if math.isnan(value) or math.isinf(value):
        raise Unwritable(f"{value!r} has no literal")
    sign = "-" if value < 0 or (value == 0 and math.copysign(1, value) < 0) else ""
    v = abs(value)
    if style.sci and v:
        for digits in range(17):
            text = f"{v:.{digits}e}"
            if float(text) == v:
                break
        mantissa, exp = text.split("e")
        if style.mantissa_point and "." not in mantissa:
            mantissa += ".0"
        n = int(exp)
        e = "E" if style.upper_e else "e"
        digits = str(abs(n)).zfill(style.exp_width)
        exp_text = f"-{digits}" if n < 0 else (f"+{digits}" if style.plus else digits)
        return f"{sign}{mantissa}{e}{exp_text}"
    text = format(Decimal(repr(v)), "f")
    if "." not in text:
        text += "."
    whole, frac = text.split(".")
    if style.underscores:
        whole = _group(whole)
    if style.trailing_point and frac in ("", "0"):
        return f"{sign}{whole}."
    if not frac:
        frac = "0"
    if style.leading_point and whole == "0":
        return f"{sign}.{frac}"
    return f"{sign}{whole}.{frac}"


def format_number(value: int | float, style: NumberStyle, as_float: bool) -> str:
    if as_float:
        return format_float(float(value), style)
    if isinstance(value, float):
        if value.is_integer():
            return format_int(int(value), style)
        return format_float(value, style)
    return format_int(value, style)


class StringStyle:
    """Quote character, triple quotes and prefix of a string literal."""

    def __init__(self, node: cst.SimpleString | None = None, default_quote: str = "'") -> None:
        if node is None:
            self.prefix, self.quote = "", default_quote
            return
        text = node.value
        i = 0
        while text[i] not in "'\"":
            i += 1
        self.prefix = text[:i]
        self.quote = text[i:i + 3] if text[i:i + 3] in ("'''", '"""') else text[i]

    def write(self, value: str) -> str:
        prefix = "".join(c for c in self.prefix if c.lower() in "ru")
        quote = self.quote
        q = quote[0]
        triple = len(quote) == 3
        if "r" in prefix.lower():
            plain = value.replace("\n", " ") if triple else value  # a raw triple string may span lines
            printable = all(ch == "\t" or (" " <= ch and ch != "\x7f") for ch in plain)
            fits = printable and "\\" not in value[-1:] and (
                (triple and quote not in value and not value.endswith(q))
                or (not triple and q not in value and "\n" not in value and "\r" not in value))
            if fits:
                return f"{prefix}{quote}{value}{quote}"
            prefix = "".join(c for c in prefix if c.lower() != "r")
        out = []
        for ch in value:
            if ch == "\\":
                out.append("\\\\")
            elif ch == q:
                out.append("\\" + q)
            elif ch == "\n" and not triple:
                out.append("\\n")
            elif ch == "\r":
                out.append("\\r")
            elif ch == "\t":
                out.append("\\t")
            elif ord(ch) < 32 and ch != "\n" or ord(ch) == 127:
                out.append(f"\\x{ord(ch):02x}")
            else:
                out.append(ch)
        return f"{prefix}{quote}{''.join(out)}{quote}"


# -- literals ----------------------------------------------------------------------------------


def _number_text(node: cst.BaseExpression) -> tuple[str, bool] | None:
    """(text, negative) of an int/float literal (with a sign), else None."""
    if isinstance(node, (cst.Integer, cst.Float)):
        return node.value, False
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)) \
            and isinstance(node.expression, (cst.Integer, cst.Float)):
        return node.expression.value, isinstance(node.operator, cst.Minus)
    return None


def _string_value(node: cst.SimpleString) -> str | None:
    try:
        value = ast.literal_eval(node.value)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


def literal_text(old: cst.BaseExpression, value: Any) -> str:
    """`value` written as a literal in `old`'s style (`old` being the literal it replaces)."""
    if isinstance(value, (list, tuple)):
        raise Unwritable("a sequence goes through `sequence`")
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        number = _number_text(old)
        if number is not None:
            style = NumberStyle(number[0])
            return format_number(value, style, style.is_float)
        if isinstance(old, cst.SimpleString):
            inner = _string_value(old)
            if inner is not None:
                try:
                    float(inner.replace("_", ""))
                except ValueError:
                    inner = ""
                style = NumberStyle(inner)
                text = format_number(value, style, style.is_float) if inner else repr(value)
                return StringStyle(old).write(text)
        return repr(value)
    if isinstance(value, str):
        if isinstance(old, cst.SimpleString):
            return StringStyle(old).write(value)
        if isinstance(old, cst.ConcatenatedString):
            first = old.left
            while isinstance(first, cst.ConcatenatedString):
                first = first.left
            if isinstance(first, cst.SimpleString):
                return StringStyle(first).write(value)
        return repr(value)
    raise Unwritable(f"{type(value).__name__} values have no literal form here")


def literal_node(old: cst.BaseExpression, value: Any) -> cst.BaseExpression:
    if isinstance(value, (list, tuple)) and isinstance(old, (cst.List, cst.Tuple, cst.Set)):
        return sequence(old, value)
    if isinstance(value, (list, tuple)):
        return cst.parse_expression(repr(list(value)) if isinstance(value, list) else repr(tuple(value)))
    return cst.parse_expression(literal_text(old, value))


# -- sequences -------------------------------------------------------------------------------


def _open_close(node: cst.List | cst.Tuple | cst.Set) -> tuple[Any, Any]:
    """The whitespace after the opening bracket and before the closing one."""
    if isinstance(node, cst.List):
        return node.lbracket.whitespace_after, node.rbracket.whitespace_before
    if isinstance(node, cst.Set):
        return node.lbrace.whitespace_after, node.rbrace.whitespace_before
    if node.lpar and node.rpar:
        return node.lpar[0].whitespace_after, node.rpar[-1].whitespace_before
    return None, None


def _with_close(node: cst.List | cst.Tuple | cst.Set, ws: Any) -> cst.BaseExpression:
    if isinstance(node, cst.List):
        return node.with_changes(rbracket=node.rbracket.with_changes(whitespace_before=ws))
    if isinstance(node, cst.Set):
        return node.with_changes(rbrace=node.rbrace.with_changes(whitespace_before=ws))
    rpar = list(node.rpar)
    rpar[-1] = rpar[-1].with_changes(whitespace_before=ws)
    return node.with_changes(rpar=rpar)


def _comment(ws: Any) -> cst.Comment | None:
    return ws.first_line.comment if isinstance(ws, cst.ParenthesizedWhitespace) else None


def _set_comment(ws: Any, comment: cst.Comment | None) -> Any:
    if not isinstance(ws, cst.ParenthesizedWhitespace):
        return ws
    first = ws.first_line
    spacing = first.whitespace
    if comment is not None and not spacing.value:
        spacing = cst.SimpleWhitespace("  ")
    if comment is None and first.comment is not None:
        spacing = cst.SimpleWhitespace("")
    return ws.with_changes(first_line=first.with_changes(comment=comment, whitespace=spacing))


def _value_of(node: cst.BaseExpression) -> Any:
    try:
        return ast.literal_eval(cst.Module([]).code_for_node(node))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _Unknown


class _Unknown:
    pass


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def sequence(old: cst.List | cst.Tuple | cst.Set, values: list | tuple) -> cst.BaseExpression:
    """`old` holding `values` instead, in its own layout and style."""
    if isinstance(old, cst.Tuple) and not old.lpar and not values:
        raise Unwritable("an empty tuple needs parentheses")
    elements = list(old.elements)
    if any(isinstance(e, cst.StarredElement) for e in elements):
        raise Unwritable("the sequence unpacks another one")
    opening, closing = _open_close(old)
    n_old, n_new = len(elements), len(values)
    trailing = bool(elements) and isinstance(elements[-1].comma, cst.Comma)
    # where each old item's comment lives: its comma, or (the last item without a trailing
    # comma) the whitespace before the closing bracket
    comments = [
        _comment(e.comma.whitespace_after) if _comments_after(e.comma)
        else (_comment(closing) if i == n_old - 1 else None) for i, e in enumerate(elements)
    ]
    olds = [_value_of(e.value) for e in elements]
    first_string = next((e.value for e in elements if isinstance(e.value, cst.SimpleString)), None)
    numbers = [e.value for e in elements if _number_text(e.value) is not None]

    # separators: between items, and after the last one
    if n_old >= 2:
        inner = elements[0].comma
    elif opening is not None and isinstance(opening, cst.ParenthesizedWhitespace):
        inner = cst.Comma(whitespace_after=opening)
    else:
        inner = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    inner = inner.with_changes(whitespace_after=_set_comment(inner.whitespace_after, None))
    singleton_tuple = isinstance(old, cst.Tuple) and n_new == 1
    if trailing and not (isinstance(old, cst.Tuple) and n_old == 1 and n_new > 1):
        last_comma: Any = elements[-1].comma
        last_comma = last_comma.with_changes(whitespace_after=_set_comment(last_comma.whitespace_after, None))
    elif singleton_tuple:
        last_comma = cst.Comma()
    else:
        last_comma = cst.MaybeSentinel.DEFAULT

    used: set[int] = set()
    new_elements = []
    new_comments: list[cst.Comment | None] = []
    for j, value in enumerate(values):
        match = next((i for i, o in enumerate(olds) if i not in used and _same(o, value)), None)
        if match is not None:
            used.add(match)
            node = elements[match].value
            comment = comments[match]
        else:
            template = elements[j].value if j < n_old else None
            if isinstance(value, str):
                style_node = template if isinstance(template, cst.SimpleString) else first_string
                node = cst.parse_expression(StringStyle(style_node).write(value) if style_node is not None else repr(value))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                number = template if template is not None and _number_text(template) else (numbers[0] if numbers else None)
                node = literal_node(number, value) if number is not None else cst.parse_expression(repr(value))
            elif value is None or isinstance(value, bool):
                node = cst.parse_expression(repr(value))
            else:
                raise Unwritable(f"cannot write {value!r} as a literal item")
            comment = None
        comma = inner if j < n_new - 1 else last_comma
        if _comments_after(comma):
            comma = comma.with_changes(whitespace_after=_set_comment(comma.whitespace_after, comment))
            comment = None
        new_elements.append(cst.Element(value=node, comma=comma))
        new_comments.append(comment)
    out = old.with_changes(elements=new_elements)
    if closing is not None:
        # the last item's comment sits before the closing bracket unless its comma ends the line
        out = _with_close(out, _set_comment(closing, new_comments[-1] if new_comments else None))
    return out


def _comments_after(comma: Any) -> bool:
    return isinstance(comma, cst.Comma) and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace)
