"""Read what a markdown spec states about knobs: field bullets, flag-table rows, code references.

The shapes are the ones real specs use, read generically (no field or flag names here):
- a field bullet: a list item that opens with a backticked identifier and a parenthesis
  holding a type and a default, ``- `accelerator` (str, default `'cpu'`): ... MUST be in
  `{'auto', 'cpu'}` ... MUST be > 0 ... Exposed via `--accelerator`.``
- a flag table: a pipe table whose header has a flag column ("Flag") and a "Default" column,
  and optionally "Type" and "Config Field"; one row per flag (`--a` / `--b` in one cell for a
  pair of spellings);
- a code reference: `path/to/file.py:120-180` (or a single line), with the backticked names
  written before it in the same sentence, so the audit can check the lines still hold them.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from ptycho_knobs.audit.findings import NOT_LITERAL
from ptycho_knobs.mdtable import table_cells

_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+\.)\s+`([A-Za-z_][A-Za-z0-9_]*)`\s*\(([^)]*)\)\s*:?\s*(.*)$")
_DEFAULT = re.compile(r"default\s+`([^`]*)`|default\s+([^,;`]+)")
_MUST_SET = re.compile(r"MUST\s+(?:be\s+)?(?:in|one of)\s+`([^`]*)`", re.I)
_MUST_PAIR = re.compile(r"MUST\s+be\s+`([^`]+)`(?:\s*\([^)]*\))?\s+or\s+`([^`]+)`", re.I)
_MUST_BOUND = re.compile(r"MUST\s+be\s*(>=|≥|>|<=|≤|<)\s*(-?[0-9][0-9_.eE+-]*)", re.I)
_EXPOSED = re.compile(r"(?:Exposed|Controlled)\s+via\s+((?:`--[A-Za-z0-9_-]+`(?:\s*(?:/|,|or|and)\s*)?)+)")
_FLAG = re.compile(r"`(--?[A-Za-z0-9][A-Za-z0-9_-]*)`")
_OFFER = re.compile(r"(?:[Ss]et (?:it )?to|[Uu]se|[Pp]ass)\s+`?(-?\d+(?:\.\d+)?)`?\s+to\b")
_REF = re.compile(r"`?((?:[A-Za-z0-9_.-]+/)*[A-Za-z0-9_.-]+\.py):(\d+)(?:-(\d+))?`?")
_TICKED = re.compile(r"`([^`]+)`")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class SpecStmt:
    """One statement of the spec. kind: field | flag | ref."""

    kind: str
    name: str  # field name, or the flag spelling(s) joined by ` / `, or the referenced path
    line: int
    col: int
    value: Any = NOT_LITERAL  # the default it states
    type: str = ""
    choices: tuple[Any, ...] | None = None  # `MUST be in {...}`
    bound: tuple[str, Any] | None = None  # `MUST be > 0` as (op, value): what is required
    offers: tuple[Any, ...] = ()  # numbers it tells the reader to use ("Set to -1 to ...")
    exposed: tuple[str, ...] = ()  # flags it says expose the field
    config_field: str = ""  # flag tables: the `Class.field` column
    names: tuple[str, ...] = ()  # refs: the backticked names written before the reference
    span: tuple[int, int] | None = None  # refs: the line range cited
    end_line: int = 0  # bullets: the last line of the item (continuation lines and nested items)
    section: str = ""  # the heading it sits under
    text: str = ""


def parse_value(text: str) -> Any:
    """A default as written in a spec cell or bullet: `'cpu'`, `1e-3`, `None`, `True`."""
    text = text.strip().strip("`").strip()
    if not text:
        return NOT_LITERAL
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", text):
        return text  # an unquoted word in a table cell: csv, val_loss
    return NOT_LITERAL


def _members(text: str) -> tuple[Any, ...] | None:
    value = parse_value(text)
    if isinstance(value, (set, frozenset, list, tuple)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
        return tuple(items)
    return None


def _norm_op(op: str) -> str:
    return {"≥": ">=", "≤": "<="}.get(op, op)


def parse_spec(text: str) -> list[SpecStmt]:
    """Every field bullet, flag-table row and code reference of a markdown document."""
    out: list[SpecStmt] = []
    lines = text.splitlines()
    section = ""
    fence = False
    header: list[str] | None = None
    for i, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            fence = not fence
            continue
        if fence:
            continue
        heading = _HEADING.match(line)
        if heading:
            section = heading.group(2)
            header = None
            continue
        if stripped.startswith("|"):
            cells = table_cells(stripped)
            if header is None:
                header = [c.lower() for c in cells]
                continue
            if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                continue
            out.extend(_row(header, cells, i, line, section))
        else:
            header = None
        bullet = _BULLET.match(line)
        if bullet:
            out.append(_bullet(bullet, i, line, section, _item_end(lines, i, len(bullet.group(1)))))
        for ref in _REF.finditer(line):
            before = line[:ref.start()]
            sentence = re.split(r"(?<=[.;:])\s", before)[-1] if before else ""
            names = tuple(n for n in (_ident(t) for t in _TICKED.findall(sentence)) if n)
            first, last = int(ref.group(2)), int(ref.group(3) or ref.group(2))
            after = line[ref.end():ref.end() + 60]
            desc = re.match(r"\s*\(([^)]*)\)", after)
            out.append(SpecStmt("ref", ref.group(1), i, ref.start() + 1, names=names, span=(first, last),
                                section=section, text=desc.group(1) if desc else ""))
    return out


def _ident(ticked: str) -> str:
    """The identifier a backticked name refers to: `mlflow.pytorch.autolog()` -> autolog."""
    name = ticked.strip().rstrip("()").strip()
    if "/" in name or " " in name or not name:
        return ""
    last = name.rsplit(".", 1)[-1]
    return last if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", last) else ""


def _item_end(lines: list[str], lineno: int, indent: int) -> int:
    """The last line of the list item opening at `lineno`: lines indented deeper than its
    marker belong to it (continuations and nested items); a blank line or a line at its
    indent or less ends it."""
    end = lineno
    for j in range(lineno, len(lines)):
        text = lines[j]
        if not text.strip():
            break
        if len(text) - len(text.lstrip()) <= indent:
            break
        end = j + 1
    return end


def _bullet(match: re.Match[str], lineno: int, line: str, section: str, end: int = 0) -> SpecStmt:
    name, inside, rest = match.group(2), match.group(3), match.group(4)
    parts = [p.strip() for p in inside.split(",", 1)]
    type_text = parts[0] if parts and not parts[0].lower().startswith("default") else ""
    default = _DEFAULT.search(inside)
    value: Any = NOT_LITERAL
    if default:
        value = parse_value(default.group(1) if default.group(1) is not None else default.group(2))
    choices = None
    must = _MUST_SET.search(rest)
    if must:
        choices = _members(must.group(1))
    pair = _MUST_PAIR.search(rest)
    if choices is None and pair:
        choices = tuple(parse_value(v) for v in pair.groups())
    bound = None
    b = _MUST_BOUND.search(rest)
    if b:
        number = parse_value(b.group(2).rstrip("."))
        if isinstance(number, (int, float)):
            bound = (_norm_op(b.group(1)), number)
    exposed: tuple[str, ...] = ()
    e = _EXPOSED.search(rest)
    if e:
        exposed = tuple(_FLAG.findall(e.group(1)))
    offers = tuple(parse_value(m) for m in _OFFER.findall(rest))
    return SpecStmt("field", name, lineno, match.start(2), value, type_text, choices, bound,
                    tuple(o for o in offers if isinstance(o, (int, float))), exposed, section=section,
                    text=line.strip(), end_line=end or lineno)


def _row(header: list[str], cells: list[str], lineno: int, line: str, section: str) -> list[SpecStmt]:
    def col(*names: str) -> int | None:
        for i, h in enumerate(header):
            if any(n in h for n in names):
                return i
        return None

    flag_i, default_i = col("flag"), col("default")
    if flag_i is None or default_i is None or flag_i >= len(cells):
        return []
    flags = tuple(_FLAG.findall(cells[flag_i]))
    if not flags:
        return []
    type_i, field_i, desc_i = col("type"), col("config field", "field"), col("description")
    cell = lambda i: cells[i] if i is not None and i < len(cells) else ""  # noqa: E731
    config_field = cell(field_i).strip().strip("`")
    desc = cell(desc_i)
    offers = tuple(o for o in (parse_value(m) for m in _OFFER.findall(desc)) if isinstance(o, (int, float)))
    choices = None
    must = _MUST_SET.search(desc)
    if must:
        choices = _members(must.group(1))
    return [SpecStmt("flag", " / ".join(flags), lineno, line.index(flags[0]) + 1,
                     parse_value(cell(default_i)), cell(type_i).strip("`"), choices, None, offers,
                     flags, config_field, section=section, text=line.strip())]
