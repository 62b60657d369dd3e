"""Put generated parts into an existing markdown spec, leaving every other byte alone.

Two modes.

**Registry sections** (`splice_parts`, the registry's `spec:` block). Each part names a
section, by number (`4.9`) or heading title, and the block of it that is generated:

- `section`: the whole body below the heading (up to the next heading at its level or above);
- `list`: the first list of the section of the kind the template renders (numbered or
  bulleted; a top-level list with its nested items, indented continuation lines and lazy
  continuation lines, ending before the trailing blank lines);
- `table`: the first pipe table of the section (header, delimiter row, rows).

The first run wraps that block in `<!-- BEGIN ptycho-knobs: NAME -->` /
`<!-- END ptycho-knobs: NAME -->` lines; later runs replace what is between them. Nothing
outside the markers changes: no renumbering, no line-ending or whitespace changes.

**Section 6** (`splice_text`, `--spec-file` without a `spec:` block). Where the section goes,
in order of preference:
1. between `<!-- BEGIN ptycho-knobs section 6 -->` and `<!-- END ptycho-knobs section 6 -->`;
2. in place of the spec's top-level section 6, if that is the PyTorch execution
   configuration section (the markers are added, so the next run takes path 1);
3. as a new section 6 after section 5 (before 7 if the numbering jumps), when there is none.
A section 6 about something else is never overwritten: that is an error, unless
`insert=True`, which inserts ours as 6 and renumbers the later top-level section headings
(and their `6.1`-style subsection headings; references in the prose are not rewritten).

Either way an ambiguous spec is refused at its line, before anything is written: two headings
that could both be the target (two section 6s, two `4.9`s), a marker that appears twice, a
BEGIN without its END (or the reverse), overlapping or unknown markers.

Headings are ATX lines (`#` .. `######`) outside fenced code blocks. Generated text is
written with the spec's line endings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ptycho_knobs.errors import LocatedError
from ptycho_knobs.mdtable import table_cells

BEGIN = "<!-- BEGIN ptycho-knobs section 6 -->"
END = "<!-- END ptycho-knobs section 6 -->"
TITLE = "pytorch execution configuration"

_LINE = re.compile(r"[^\n]*\n|[^\n]+$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_NUMBER = re.compile(r"^(\d+)(\.?)(?=\s|$)")
_SUBNUMBER = re.compile(r"^(\d+)((?:\.\d+)+)(\.?)(?=\s|$)")


class SpliceError(LocatedError):
    """The spec cannot take section 6 without losing content."""


@dataclass(frozen=True)
class Heading:
    index: int  # 0-based line index
    level: int
    text: str

    @property
    def number(self) -> int | None:
        m = _NUMBER.match(self.text)
        return int(m.group(1)) if m else None


def _content(line: str) -> str:
    return line.rstrip("\r\n")


def _ending(line: str) -> str:
    return line[len(_content(line)):]


def scan(lines: list[str]) -> tuple[list[Heading], set[int]]:
    """ATX headings outside fenced code, and the indexes of lines inside fences."""
    headings: list[Heading] = []
    fenced: set[int] = set()
    fence: str | None = None
    for i, line in enumerate(lines):
        text = _content(line)
        m = _FENCE.match(text)
        if fence is not None:
            fenced.add(i)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2).strip():
                fence = None
            continue
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            fence = m.group(1)
            fenced.add(i)
            continue
        h = _HEADING.match(text)
        if h:
            title = re.sub(r"[ \t]+#+$", "", h.group(2) or "").strip()
            headings.append(Heading(i, len(h.group(1)), title))
    return headings, fenced


def _is_ours(title: str) -> bool:
    rest = _NUMBER.sub("", title, count=1)
    return re.sub(r"[^a-z0-9]+", " ", rest.lower()).strip().startswith(TITLE.rsplit(" ", 1)[0])


def _section_end(headings: list[Heading], start: Heading, total: int) -> int:
    """Index of the first line after `start`'s section (next heading at its level or above)."""
    return next((h.index for h in headings if h.index > start.index and h.level <= start.level), total)


def _block(body: str, level: int, eol: str) -> list[str]:
    """The marker-wrapped section, headings shifted to `level`, in the spec's line endings."""
    shift = level - 2
    out = [BEGIN + eol]
    for line in body.splitlines():
        h = _HEADING.match(line)
        if h and shift:
            depth = min(max(len(h.group(1)) + shift, 1), 6)
            line = "#" * depth + line[len(h.group(1)):]
        out.append(line + eol)
    out.append(END + eol)
    return out


def _eol(lines: list[str]) -> str:
    crlf = sum(1 for line in lines if line.endswith("\r\n"))
    lf = sum(1 for line in lines if line.endswith("\n")) - crlf
    return "\r\n" if crlf > lf else "\n"


def _blank(line: str) -> bool:
    return not line.strip()


def splice_text(text: str, body: str, path: Path | str, *, insert: bool = False) -> str:
    """`text` with section 6 replaced by `body` (a `## 6.` section); see the module docstring."""
    lines = _LINE.findall(text)
    eol = _eol(lines)
    headings, fenced = scan(lines)
    numbered = [h for h in headings if h.number is not None]
    level = min((h.level for h in numbered), default=2)
    top = [h for h in numbered if h.level == level]

    begins = [i for i, line in enumerate(lines) if _content(line).strip() == BEGIN and i not in fenced]
    ends = [i for i, line in enumerate(lines) if _content(line).strip() == END and i not in fenced]
    sixes = [h for h in top if h.number == 6]
    if len(sixes) > 1:  # whichever is ours, the spec has two section 6s: refuse to guess
        raise SpliceError(
            path, sixes[1].index + 1, 1,
            f"two section 6 headings ({sixes[0].text!r} at line {sixes[0].index + 1} and {sixes[1].text!r} "
            f"at line {sixes[1].index + 1}); refusing to guess which one to replace",
            "renumber or remove one of them, then run generate again",
        )
    if begins or ends:
        if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
            at = (begins[1] if len(begins) > 1 else ends[1] if len(ends) > 1
                  else begins[0] if not ends else ends[0])
            raise SpliceError(path, at + 1, 1, "the section 6 markers must appear once each, BEGIN before END",
                              f"keep exactly one `{BEGIN}` and one `{END}` line")
        return _join(lines[:begins[0]], _block(body, level, eol), lines[ends[0] + 1:], lines[ends[0]])

    six = sixes[0] if sixes else None
    if six is not None and _is_ours(six.text):
        end = _section_end(headings, six, len(lines))
        while end > six.index + 1 and _blank(lines[end - 1]):
            end -= 1  # keep the blank lines that separate it from the next section
        return _join(lines[:six.index], _block(body, level, eol), lines[end:], lines[end - 1])
    if six is not None:
        if not insert:
            raise SpliceError(
                path, six.index + 1, 1,
                f"section 6 of this spec is {six.text!r}, not the PyTorch execution configuration; "
                "refusing to overwrite it",
                "rerun with --insert-section to insert it as section 6 and renumber the later top-level "
                f"sections (6 -> 7, ...), or put `{BEGIN}` and `{END}` lines where it belongs",
            )
        lines = _renumber(lines, headings, [h for h in top if h.number is not None and h.number >= 6])
        return _insert(lines, six.index, _block(body, level, eol), eol)

    later = [h for h in top if h.number is not None and h.number > 6]
    if later:
        return _insert(lines, later[0].index, _block(body, level, eol), eol)
    earlier = [h for h in top if h.number is not None and h.number < 6]
    at = _section_end(headings, earlier[-1], len(lines)) if earlier else len(lines)
    return _insert(lines, at, _block(body, level, eol), eol)


def _renumber(lines: list[str], headings: list[Heading], sections: list[Heading]) -> list[str]:
    """Add one to each top-level section number in `sections` and to its subsection numbers."""
    lines = list(lines)
    for section in sections:
        old = section.number
        assert old is not None
        end = _section_end(headings, section, len(lines))
        for h in headings:
            if not section.index <= h.index < end:
                continue
            text = _content(lines[h.index])
            hashes = text.index("#")
            prefix_len = hashes + h.level
            title_start = prefix_len + (len(text[prefix_len:]) - len(text[prefix_len:].lstrip(" \t")))
            title = text[title_start:]
            if h is section:
                top = _NUMBER.match(title)
                assert top is not None
                new_title = f"{old + 1}{top.group(2)}" + title[top.end():]
            else:
                m = _SUBNUMBER.match(title)
                if not m or int(m.group(1)) != old:
                    continue
                new_title = f"{old + 1}{m.group(2)}{m.group(3)}" + title[m.end():]
            lines[h.index] = text[:title_start] + new_title + _ending(lines[h.index])
    return lines


def _insert(lines: list[str], at: int, block: list[str], eol: str) -> str:
    before = list(lines[:at])
    after = list(lines[at:])
    if before and not before[-1].endswith("\n"):
        before[-1] += eol  # the file ended without a newline; the block goes after it
        block = block[:-1] + [END]  # keep "no trailing newline" true of the file
    if before and not _blank(before[-1]):
        block = [eol] + block
    if after and not _blank(after[0]):
        block = block + [eol]
    return "".join(before + block + after)


def _join(before: list[str], block: list[str], after: list[str], replaced_last: str) -> str:
    """Concatenate; when the replaced lines ended the file without a newline, so does the block."""
    if not after and not replaced_last.endswith("\n"):
        block = block[:-1] + [_content(block[-1])]
    return "".join(before + block + after)


def splice_spec(old: bytes, body: str, path: Path | str, *, insert: bool = False) -> bytes:
    """Bytes in, bytes out; the spec must be UTF-8."""
    try:
        text = old.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpliceError(path, 1, 1, f"the spec is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return splice_text(text, body, path, insert=insert).encode("utf-8")


# -- registry sections: markers around the generated part of a numbered or titled section ----

MARKER = re.compile(r"^ {0,3}<!--[ \t]*(BEGIN|END)[ \t]+ptycho-knobs:[ \t]*(.*?)[ \t]*-->[ \t]*$")
BLOCKS = ("section", "list", "table")

_SECTION_NUMBER = re.compile(r"^§?[ \t]*(\d+(?:\.\d+)*)\.?(?=[ \t]|$)")
_ITEM = re.compile(r"^( *)([-+*]|\d{1,9}[.)])(?:([ \t]+)(.*))?$")
_THEMATIC = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_DELIMITER_CELL = re.compile(r"^:?-+:?$")  # a stripped cell of the row under the header


def begin_marker(name: str) -> str:
    return f"<!-- BEGIN ptycho-knobs: {name} -->"


def end_marker(name: str) -> str:
    return f"<!-- END ptycho-knobs: {name} -->"


@dataclass(frozen=True)
class Part:
    """One generated part of the spec: which section, which block of it, and its text."""

    name: str  # marker name
    section: str | None  # "4.9", or a heading title; None: the markers must already be there
    block: str  # section | list | table
    body: str  # the rendered markdown ("\n" line endings)
    origin: tuple[str, int, int] | None = None  # (registry path, line, col) for configuration errors


@dataclass(frozen=True)
class _Doc:
    lines: list[str]
    headings: list[Heading]
    fenced: set[int]
    fences: dict[int, int]  # opening line -> closing line (the last line if never closed)


def _scan_doc(lines: list[str]) -> _Doc:
    headings, fenced = scan(lines)
    fences: dict[int, int] = {}
    start: int | None = None
    for i in range(len(lines)):
        if i in fenced and start is None:
            start = i
        if start is not None and (i + 1 not in fenced or _closes(lines, start, i)):
            fences[start] = i
            start = None
    return _Doc(lines, headings, fenced, fences)


def _closes(lines: list[str], start: int, i: int) -> bool:
    """Whether line `i` closes the fence opened at `start` (so `i + 1` may open another)."""
    if i == start:
        return False
    opener = _FENCE.match(_content(lines[start]))
    m = _FENCE.match(_content(lines[i]))
    assert opener is not None
    fence = opener.group(1)
    return bool(m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2).strip())


def _indent(text: str) -> int:
    return len(text.expandtabs(4)) - len(text.expandtabs(4).lstrip(" "))


def _item(text: str) -> tuple[tuple[str, str], int, int] | None:
    """(kind, indent, content indent) of a list item line, or None. Kind: ("ol", ".") / ("ul", "-")."""
    expanded = text.expandtabs(4)
    if _THEMATIC.match(expanded):
        return None
    m = _ITEM.match(expanded)
    if not m:
        return None
    indent, marker, spaces = len(m.group(1)), m.group(2), m.group(3) or ""
    kind = ("ol", marker[-1]) if marker[0].isdigit() else ("ul", marker)
    gap = len(spaces) if 1 <= len(spaces) <= 4 and m.group(4) else 1
    return kind, indent, indent + len(marker) + gap


def _starts_block(text: str) -> bool:
    """Whether a line starts a block of its own (so it cannot be a lazy continuation line)."""
    stripped = text.strip()
    return bool(_HEADING.match(text) or _FENCE.match(text) or _THEMATIC.match(text) or _item(text)
                or stripped.startswith(("<", "|", ">")))


def normalize_section(section: str) -> tuple[str, str]:
    """("number", "4.9") or ("title", "pytorch execution configuration contract")."""
    text = section.strip()
    m = re.fullmatch(r"§?[ \t]*(\d+(?:\.\d+)*)\.?", text)
    if m:
        return "number", m.group(1)
    return "title", _norm_title(text)


def _norm_title(text: str) -> str:
    text = _SECTION_NUMBER.sub("", text.strip(), count=1)
    text = re.sub(r"[`*]", "", text)
    return " ".join(text.lower().split()).rstrip(":.").strip()


def _heading_matches(heading: Heading, kind: str, want: str) -> bool:
    if kind == "number":
        m = _SECTION_NUMBER.match(heading.text)
        return bool(m and m.group(1) == want)
    return _norm_title(heading.text) == want


def _body_kind(body: str) -> str | None:
    """"ol" or "ul" when the rendered body starts with a list item, else None (any list)."""
    for line in body.split("\n"):
        if line.strip():
            found = _item(line)
            return found[0][0] if found else None
    return None


class _Splicer:
    def __init__(self, text: str, path: Path | str) -> None:
        self.path = path
        self.lines = _LINE.findall(text)
        self.eol = _eol(self.lines)
        self.doc = _scan_doc(self.lines)
        self.opaque: set[int] = set()  # lines inside existing markers: never searched for a first-run block

    def fail(self, index: int, message: str, hint: str | None = None) -> SpliceError:
        return SpliceError(self.path, index + 1, 1, message, hint)

    # -- markers -------------------------------------------------------------------------

    def markers(self, names: set[str]) -> dict[str, tuple[int, int]]:
        """name -> (BEGIN index, END index), refusing duplicates, strays, overlaps, unknowns."""
        found: dict[str, dict[str, list[int]]] = {}
        for i, line in enumerate(self.lines):
            if i in self.doc.fenced:
                continue
            m = MARKER.match(_content(line))
            if m:
                found.setdefault(m.group(2), {"BEGIN": [], "END": []})[m.group(1)].append(i)
        pairs: dict[str, tuple[int, int]] = {}
        for name, where in found.items():
            begins, ends = where["BEGIN"], where["END"]
            for kind, marks in (("BEGIN", begins), ("END", ends)):
                if len(marks) > 1:
                    raise self.fail(marks[1], f"{kind} marker of {name!r} appears twice (first at line {marks[0] + 1}); "
                                    "refusing to guess which block is generated",
                                    f"keep one `{begin_marker(name)}` and one `{end_marker(name)}` line")
            if not ends:
                raise self.fail(begins[0], f"BEGIN marker of {name!r} has no END marker",
                                f"add `{end_marker(name)}` after the generated block")
            if not begins:
                raise self.fail(ends[0], f"END marker of {name!r} has no BEGIN marker",
                                f"add `{begin_marker(name)}` before the generated block")
            if ends[0] < begins[0]:
                raise self.fail(ends[0], f"END marker of {name!r} comes before its BEGIN marker (line {begins[0] + 1})")
            if name not in names:
                raise self.fail(begins[0], f"markers of {name!r}, which the registry's spec: block does not name",
                                "remove the two marker lines, or add a section with this name to spec.sections: "
                                f"({', '.join(sorted(names)) or 'none'})")
            pairs[name] = (begins[0], ends[0])
        ordered = sorted(pairs.items(), key=lambda item: item[1][0])
        for (outer, (_, outer_end)), (inner, (inner_begin, _)) in zip(ordered, ordered[1:], strict=False):
            if inner_begin < outer_end:
                raise self.fail(inner_begin, f"markers of {inner!r} are inside the markers of {outer!r} "
                                f"(lines {pairs[outer][0] + 1}-{outer_end + 1})")
        return pairs

    # -- sections and blocks -------------------------------------------------------------

    def heading(self, part: Part) -> Heading | None:
        """The one heading that matches `part.section`; None when there is none."""
        assert part.section is not None
        kind, want = normalize_section(part.section)
        matches = [h for h in self.doc.headings if _heading_matches(h, kind, want)]
        if len(matches) > 1:
            first, second = matches[0], matches[1]
            raise self.fail(
                second.index,
                f"two headings match section {part.section!r} of {part.name!r} ({first.text!r} at line "
                f"{first.index + 1} and {second.text!r} at line {second.index + 1}); refusing to guess",
                "renumber or retitle one of them, or name the section by a heading title that is unique",
            )
        return matches[0] if matches else None

    def section_range(self, h: Heading) -> tuple[int, int]:
        return h.index + 1, _section_end(self.doc.headings, h, len(self.lines))

    def blank(self, i: int) -> bool:
        return _blank(self.lines[i])

    def find_section_body(self, start: int, end: int) -> tuple[int, int]:
        first, last = start, end
        while first < last and self.blank(first):
            first += 1
        while last > first and self.blank(last - 1):
            last -= 1
        return first, last

    def list_end(self, start: int, end: int) -> int:
        """Index after the last line of the list whose first item is at `start`."""
        found = _item(_content(self.lines[start]))
        assert found is not None
        kind, _, content = found
        last = start
        i = start + 1
        pending_blank = False
        while i < end and i not in self.opaque:
            text = _content(self.lines[i])
            if i in self.doc.fenced:
                if i in self.doc.fences and _indent(text) >= content:
                    last = i = self.doc.fences[i]
                    i += 1
                    pending_blank = False
                    continue
                break  # a fence at the list's own level ends it
            if not text.strip():
                pending_blank = True
                i += 1
                continue
            item = _item(text)
            if _indent(text) >= content:
                pass  # continuation or nested block of the current item
            elif item is not None and item[0] == kind:
                content = item[2]  # the next item of this list
            elif not pending_blank and not _starts_block(text):
                pass  # lazy continuation of the item's paragraph
            else:
                break
            last = i
            pending_blank = False
            i += 1
        return last + 1

    def find_list(self, start: int, end: int, want: str | None) -> tuple[int, int] | None:
        """The first top-level list in [start, end) of kind `want` ("ol", "ul" or None: any)."""
        i = start
        paragraph = False  # the previous line is paragraph text, which only bullets and `1.` can interrupt
        while i < end:
            text = _content(self.lines[i])
            if i in self.opaque or i in self.doc.fenced:
                i = (self.doc.fences.get(i, i) if i in self.doc.fenced else i) + 1
                paragraph = False
                continue
            found = _item(text)
            if found is not None and found[1] <= 3:
                kind = found[0]
                first = re.match(r"\s*(\d+)", text)
                empty = not _ITEM.match(text.expandtabs(4)).group(4)  # type: ignore[union-attr]
                interrupts = not empty and (kind[0] == "ul" or (first is not None and int(first.group(1)) == 1))
                if not paragraph or interrupts:
                    stop = self.list_end(i, end)
                    if want is None or kind[0] == want:
                        return i, stop
                    i, paragraph = stop, False
                    continue
            if not text.strip() or _starts_block(text) or (not paragraph and _indent(text) >= 4):
                paragraph = False  # a blank line, another block, or indented code
            else:
                paragraph = True
            i += 1
        return None

    def find_table(self, start: int, end: int) -> tuple[int, int] | None:
        for i in range(start, end - 1):
            if {i, i + 1} & (self.doc.fenced | self.opaque):
                continue
            head, delim = _content(self.lines[i]), _content(self.lines[i + 1])
            if "|" not in head or _indent(head) > 3 or _indent(delim) > 3:
                continue
            cells = table_cells(delim)
            if not cells or not all(_DELIMITER_CELL.match(c) for c in cells) or len(table_cells(head)) != len(cells):
                continue
            if "|" not in delim and len(cells) == 1:
                continue  # a setext underline, not a table
            stop = i + 2
            while stop < end and stop not in self.doc.fenced and stop not in self.opaque:
                row = _content(self.lines[stop])
                if not row.strip() or "|" not in row or _HEADING.match(row) or MARKER.match(row) \
                        or row.lstrip().startswith(("<", ">")):
                    break
                stop += 1
            return i, stop
        return None

    # -- the splice ----------------------------------------------------------------------

    def config_error(self, part: Part, message: str, hint: str | None = None) -> SpliceError:
        if part.origin is not None:
            return SpliceError(part.origin[0], part.origin[1], part.origin[2], message, hint)
        return SpliceError(self.path, 1, 1, message, hint)

    def splice(self, parts: list[Part]) -> str:
        names = [p.name for p in parts]
        if len(set(names)) != len(names):
            raise ValueError("spec part names must be unique")
        pairs = self.markers(set(names))
        self.opaque = {i for begin, end in pairs.values() for i in range(begin, end + 1)}
        edits: list[tuple[int, int, list[str], str]] = []  # (start, stop, new lines, part name)
        for part in parts:
            if part.block not in BLOCKS:
                raise self.config_error(part, f"spec section {part.name!r}: block must be section, list or table")
            heading = self.heading(part) if part.section is not None else None
            if part.name in pairs:
                begin, end = pairs[part.name]
                if heading is not None:
                    lo, hi = self.section_range(heading)
                    if not (lo <= begin and end < hi):
                        raise self.fail(begin, f"the markers of {part.name!r} are outside section {part.section!r} "
                                        f"({heading.text!r}, lines {heading.index + 1}-{hi})",
                                        "move the markers into that section, or change the section in the registry")
                indent = " " * _indent(_content(self.lines[begin]))
                edits.append((begin + 1, end, self.render(part.body, indent), part.name))
                continue
            if part.section is None:
                raise self.config_error(part, f"spec section {part.name!r} names no section and {display_path(self.path)} "
                                        "has no markers for it",
                                        f"set section: (a number such as \"4.9\" or a heading title), or add "
                                        f"`{begin_marker(part.name)}` / `{end_marker(part.name)}` lines to the spec")
            if heading is None:
                kind, _ = normalize_section(part.section)
                what = "numbered" if kind == "number" else "titled"
                raise self.config_error(part, f"spec section {part.name!r}: {display_path(self.path)} has no heading "
                                        f"{what} {part.section!r}",
                                        "fix section: in the registry (a number such as \"4.9\" or a heading title), "
                                        "or pass --spec-file for another spec")
            edits.append(self.first_run(part, heading))
        edits.sort(key=lambda e: (e[0], e[1]))
        for (a_start, a_stop, _, a_name), (b_start, _, _, b_name) in zip(edits, edits[1:], strict=False):
            if b_start < a_stop or (b_start == a_start):
                raise self.fail(b_start, f"spec sections {a_name!r} and {b_name!r} both want lines "
                                f"{b_start + 1}-{a_stop}; refusing to guess",
                                "give each a different section or block, or place markers for each")
        out = list(self.lines)
        for start, stop, new, _ in reversed(edits):
            if stop == len(out) and out and not out[-1].endswith("\n") and new:
                new = new[:-1] + [_content(new[-1])]  # the block ended the file without a newline; so does ours
            out[start:stop] = new
        return "".join(out)

    def first_run(self, part: Part, heading: Heading) -> tuple[int, int, list[str], str]:
        """The block to wrap in markers on the first run: (start, stop, marker-wrapped lines, name)."""
        lo, hi = self.section_range(heading)
        where = f"section {part.section!r} ({heading.text!r})"
        if part.block == "section":
            start, stop = self.find_section_body(lo, hi)
            wrapped = self.wrap(part, "")
            if start == stop:  # an empty section: the block goes below the heading, set off by blank lines
                lead = [self.eol]
                if not self.lines[heading.index].endswith("\n"):
                    lead = [self.eol, self.eol]  # the heading ended the file without a newline
                return lo, lo, [*lead, *wrapped] + ([self.eol] if lo < len(self.lines) else []), part.name
            return start, stop, wrapped, part.name
        if part.block == "list":
            want = _body_kind(part.body)
            found = self.find_list(lo, hi, want)
            noun = {"ol": "numbered list", "ul": "bulleted list"}.get(want or "", "list")
        else:
            found = self.find_table(lo, hi)
            noun = "pipe table"
        if found is None:
            raise self.fail(heading.index, f"{where} has no {noun} for {part.name!r} to replace",
                            f"put `{begin_marker(part.name)}` and `{end_marker(part.name)}` lines where it belongs")
        start, stop = found
        indent = " " * _indent(_content(self.lines[start]))
        return start, stop, self.wrap(part, indent), part.name

    def wrap(self, part: Part, indent: str) -> list[str]:
        return [indent + begin_marker(part.name) + self.eol, *self.render(part.body, indent),
                indent + end_marker(part.name) + self.eol]

    def render(self, body: str, indent: str) -> list[str]:
        lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        return [(indent + line).rstrip() + self.eol if line.strip() else self.eol for line in lines]


def display_path(path: Path | str) -> str:
    return str(path)


def splice_parts(text: str, parts: list[Part], path: Path | str) -> str:
    """`text` with each part's block replaced (and wrapped in markers on the first run)."""
    return _Splicer(text, path).splice(parts)


def splice_spec_parts(old: bytes, parts: list[Part], path: Path | str) -> bytes:
    """Bytes in, bytes out; the spec must be UTF-8."""
    try:
        text = old.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpliceError(path, 1, 1, f"the spec is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return splice_parts(text, parts, path).encode("utf-8")
