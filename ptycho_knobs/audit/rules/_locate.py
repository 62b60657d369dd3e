"""Where each registry source's knob is in the scanned tree: shared by stale-location and
missing-source, so the two never disagree about what "found" means.

A source is "still there" when its `line:` is the line of the keyword argument (any line
of it, for a multi-line value) or the first line of the call; for a field, flag or env
read, any line of the statement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ptycho_knobs.audit.index import matches
from ptycho_knobs.audit.rule import FileContext, ProjectContext
from ptycho_knobs.ktypes import Knob, Source


@dataclass(frozen=True)
class Occurrence:
    accept: frozenset[int]  # lines at which the registry may point
    line: int  # the line to point at when it does not


@dataclass(frozen=True)
class Located:
    knob: Knob
    source: Source
    file: FileContext | None  # None: the file is not in the scanned tree
    occurrences: tuple[Occurrence, ...]
    now: int | None  # for a stale source, the line it should say


def describe(src: Source) -> str:
    if src.callee:
        return f"{src.callee}({src.keyword}=...)"
    if src.field:
        return f"field {src.field}"
    if src.env:
        return f"environment variable {src.env}"
    if src.flag:
        return f"flag {src.flag}"
    return "the source"


def occurrences(ctx: FileContext, src: Source) -> list[Occurrence]:
    out: list[Occurrence] = []
    facts = ctx.facts
    if src.callee and src.keyword:
        for call in facts.calls:
            if call.callee != src.callee:
                continue
            for arg in call.args:
                if arg.keyword == src.keyword:
                    lines = set(range(arg.at.line, arg.at.end_line + 1)) | {call.at.line}
                    out.append(Occurrence(frozenset(lines), arg.at.line))
    elif src.field:
        cls, attr = src.field.split(".", 1)
        defs = [f for f in facts.fields if not f.ref and f.cls == cls and f.attr == attr]
        refs = [f for f in facts.fields if f.ref and f.attr == attr]
        for f in defs or refs:
            out.append(Occurrence(frozenset(range(f.at.line, f.at.end_line + 1)), f.at.line))
    elif src.env:
        for e in facts.envs:
            if e.var == src.env:
                out.append(Occurrence(frozenset(range(e.at.line, e.at.end_line + 1)), e.at.line))
    elif src.flag:
        for f in facts.flags:
            if src.flag in f.flags:
                out.append(Occurrence(frozenset(range(f.at.line, f.at.end_line + 1)), f.at.line))
    return out


def in_scope(ctx: ProjectContext, src: Source) -> bool:
    """Whether a source file falls under an audited path (anchored at the root's parent,
    the registry's folder, or the working directory)."""
    anchors = {root.parent for root in ctx.roots} | {ctx.index.registry.path.resolve().parent, Path.cwd()}
    for root in ctx.roots:
        for anchor in anchors:
            candidate = os.path.normpath(anchor / src.file)
            if candidate == str(root) or candidate.startswith(str(root).rstrip(os.sep) + os.sep):
                return True
    return False


def locate(ctx: ProjectContext) -> list[Located]:
    """Every verifiable source under the audited paths, with where its knob is now."""
    out: list[Located] = []
    claimed: dict[tuple[str, str], set[int]] = {}
    pending: list[tuple[Knob, Source, FileContext, list[Occurrence]]] = []
    by_name: dict[str, list[FileContext]] = {}
    for f in ctx.files:
        by_name.setdefault(f.path.name, []).append(f)
    for knob in ctx.index.registry.knobs:
        for src in knob.sources:
            files = [f for f in by_name.get(src.file.rsplit('/', 1)[-1], []) if matches(f.pure, src.file)]
            if not files:
                if in_scope(ctx, src) and not _problem_file(ctx, src):
                    out.append(Located(knob, src, None, (), None))
                continue
            if src.kind == "other":
                continue  # a note-only source names no code the audit can look for
            file = files[0]
            occ = occurrences(file, src)
            key = (str(file.path), describe(src))
            if any(src.line in o.accept for o in occ):
                claimed.setdefault(key, set()).add(next(o.line for o in occ if src.line in o.accept))
                out.append(Located(knob, src, file, tuple(occ), None))
            else:
                pending.append((knob, src, file, occ))
    for knob, src, file, occ in pending:
        key = (str(file.path), describe(src))
        taken = claimed.setdefault(key, set())
        free = [o for o in occ if o.line not in taken] or occ
        if not free:
            out.append(Located(knob, src, file, (), None))
            continue
        best = min(free, key=lambda o: (abs(o.line - src.line), o.line))
        taken.add(best.line)
        out.append(Located(knob, src, file, tuple(occ), best.line))
    return out


def _problem_file(ctx: ProjectContext, src: Source) -> bool:
    """A source file that exists but could not be scanned is reported by PK900/PK902 instead."""
    name = src.file.rsplit("/", 1)[-1]
    scanned = {f.path for f in ctx.files}
    return any(matches(p, src.file) for p in ctx.display if p.name == name and p not in scanned)
