"""Where each registry source's knob is in the scanned tree: shared by stale-location and
missing-source, so the two never disagree about what "found" means.

A source is "still there" when its `line:` is the line of the keyword argument (any line
of it, for a multi-line value) or the first line of the call; for a field, flag or env
read, any line of the statement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from ptycho_knobs.audit.index import SOURCE_STMTS, _param_owner, matches
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
    file: Any  # a FileContext, the spec, or None when the file is not in the scanned tree
    occurrences: tuple[Occurrence, ...]
    now: int | None  # for a stale source, the line it should say


def describe(src: Source) -> str:
    kind = src.kind
    if kind == "callee":
        return f"{src.callee}({src.keyword}=...)" if src.keyword else f"a call to {src.callee}"
    return {
        "field": f"field {src.field}", "env": f"environment variable {src.env}", "flag": f"flag {src.flag}",
        "param": f"parameter {src.param}", "read": f"a fallback read of {src.read!r}",
        "check": f"a validation of {src.check}", "assign": f"an assignment of {src.assign}",
        "branch": f"a branch on {src.branch}", "spec": f"the spec's statement of {src.spec}",
    }.get(kind, "the source")


def _lines(first: int, last: int, at: int) -> Occurrence:
    return Occurrence(frozenset(range(first, last + 1)), at)


def occurrences(ctx: FileContext, src: Source, project: ProjectContext | None = None) -> list[Occurrence]:
    out: list[Occurrence] = []
    facts = ctx.facts
    kind = src.kind
    if kind == "callee":
        for call in facts.calls:
            if call.callee != src.callee:
                continue
            for arg in call.args:
                if arg.keyword == src.keyword or not src.keyword:
                    lines = set(range(arg.at.line, arg.at.end_line + 1)) | {call.at.line}
                    out.append(Occurrence(frozenset(lines), arg.at.line))
        params = _params(project, src.callee) if project is not None else ()
        for site in facts.sites:
            if site.func != src.callee:
                continue
            for arg in site.args:
                if _binds(arg.keyword, src.keyword, params):
                    out.append(Occurrence(frozenset(range(arg.at.line, arg.at.end_line + 1)) | {site.at.line}, arg.at.line))
            for keyword, _ in site.names:
                if keyword != "#n" and _binds(keyword, src.keyword, params):
                    out.append(_lines(site.at.line, site.at.end_line, site.at.line))
        return out
    wanted = SOURCE_STMTS.get(kind)
    if wanted is None:
        return out
    ident = getattr(src, kind)
    for st in facts.stmts:
        if st.kind not in wanted:
            continue
        if kind == "field":
            if f"{st.owner}.{st.name}" != ident:
                continue
        elif kind == "flag":
            if ident not in st.owner.split(","):
                continue
        elif kind == "param":
            if st.name != ident.rsplit(".", 1)[-1] or not _param_owner(ident, st.owner):
                continue
        elif st.name != ident:
            continue
        out.append(_lines(st.at.line, st.at.end_line, st.at.line))
    return out


def _params(project: ProjectContext, func: str | None) -> tuple[str, ...]:
    for _, d in project.model.defs.get(func or "", []):
        names = tuple(p[0] for p in d.params if p[0] not in ("self", "cls"))
        if names:
            return names
    return ()


def _binds(given: str, keyword: str | None, params: tuple[str, ...]) -> bool:
    """Whether an argument given as `given` (a keyword, or `#i` for the i-th positional) is `keyword`."""
    if not keyword:
        return True
    if given == keyword:
        return True
    if given.startswith("#") and given[1:].isdigit():
        i = int(given[1:])
        return i < len(params) and params[i] == keyword
    return False


def spec_occurrences(project: ProjectContext, src: Source) -> list[Occurrence] | None:
    """Where the spec states `src.spec` (a field bullet or a flag row); None when no spec is read."""
    if project.spec is None:
        return None
    _, stmts = project.spec
    out = []
    for st in stmts:
        if st.kind == "field" and st.name == src.spec or st.kind == "flag" and src.spec in st.name.split(" / "):
            out.append(Occurrence(frozenset({st.line}), st.line))
    return out


def in_scope(ctx: ProjectContext, src: Source, _memo: dict[str, bool] | None = None) -> bool:
    """Whether a source file falls under an audited path (anchored at the root's parent,
    the registry's folder, or the working directory)."""
    if _memo is not None and src.file in _memo:
        return _memo[src.file]
    anchors = {root.parent for root in ctx.roots} | {ctx.index.registry.path.resolve().parent, Path.cwd()}
    found = False
    for root in ctx.roots:
        for anchor in anchors:
            candidate = os.path.normpath(anchor / src.file)
            if candidate == str(root) or candidate.startswith(str(root).rstrip(os.sep) + os.sep):
                found = True
    if _memo is not None:
        _memo[src.file] = found
    return found


def locate(ctx: ProjectContext) -> list[Located]:
    """Every verifiable source under the audited paths, with where its knob is now (computed
    once per audit: stale-location and missing-source both ask)."""
    cached = ctx.__dict__.get("_located")
    if cached is None:
        cached = ctx.__dict__["_located"] = _locate(ctx)
    return cached


def _locate(ctx: ProjectContext) -> list[Located]:
    scope_memo: dict[str, bool] = {}
    out: list[Located] = []
    claimed: dict[tuple[str, str], set[int]] = {}
    pending: list[tuple[Knob, Source, FileContext, list[Occurrence]]] = []
    pending_spec: list[tuple[Knob, Source, list[Occurrence]]] = []
    by_name: dict[str, list[FileContext]] = {}
    for f in ctx.all_files:
        by_name.setdefault(f.path.name, []).append(f)
    for knob in ctx.index.registry.knobs:
        for src in knob.sources:
            if src.kind == "spec":
                spec_occ = spec_occurrences(ctx, src)
                if spec_occ is None or not matches(PurePath(ctx.spec[0]) if ctx.spec else PurePath(), src.file):
                    continue
                pending_spec.append((knob, src, spec_occ))
                continue
            files = [f for f in by_name.get(src.file.rsplit('/', 1)[-1], []) if matches(f.pure, src.file)]
            if not files:
                if in_scope(ctx, src, scope_memo) and not _problem_file(ctx, src):
                    out.append(Located(knob, src, None, (), None))
                continue
            if src.kind == "other":
                continue  # a note-only source names no code the audit can look for
            file = files[0]
            occ = occurrences(file, src, ctx)
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
    for knob, src, occ in pending_spec:
        here = any(src.line in o.accept for o in occ)
        now = None if here or not occ else min(occ, key=lambda o: (abs(o.line - src.line), o.line)).line
        out.append(Located(knob, src, _SpecFile(ctx.spec[0] if ctx.spec else "the spec"), tuple(occ), now))
    return out


class _SpecFile:
    """Stands for the spec file in a `Located` (it is not a scanned Python file)."""

    def __init__(self, shown: str) -> None:
        self.shown = shown


def _problem_file(ctx: ProjectContext, src: Source) -> bool:
    """A source file that exists but could not be scanned is reported by PK900/PK902 instead."""
    name = src.file.rsplit("/", 1)[-1]
    scanned = {f.path for f in ctx.files}
    return any(matches(p, src.file) for p in ctx.display if p.name == name and p not in scanned)
