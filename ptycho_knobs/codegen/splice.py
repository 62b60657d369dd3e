"""Put the generated section 6 into an existing markdown spec, leaving every other byte alone.

Where the section goes, in order of preference:
1. between `<!-- BEGIN ptycho-knobs section 6 -->` and `<!-- END ptycho-knobs section 6 -->`;
2. in place of the spec's top-level section 6, if that is the PyTorch execution
   configuration section (the markers are added, so the next run takes path 1);
3. as a new section 6 after section 5 (before 7 if the numbering jumps), when there is none.
A section 6 about something else is never overwritten: that is an error, unless
`insert=True`, which inserts ours as 6 and renumbers the later top-level section headings
(and their `6.1`-style subsection headings; references in the prose are not rewritten).

Headings are ATX lines (`#` .. `######`) outside fenced code blocks. The section is
written at the spec's top section level and with the spec's line endings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ptycho_knobs.errors import LocatedError

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
    if begins or ends:
        if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
            at = (begins or ends)[0]
            raise SpliceError(path, at + 1, 1, "the section 6 markers must appear once each, BEGIN before END",
                              f"keep exactly one `{BEGIN}` and one `{END}` line")
        return _join(lines[:begins[0]], _block(body, level, eol), lines[ends[0] + 1:], lines[ends[0]])

    six = next((h for h in top if h.number == 6), None)
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
