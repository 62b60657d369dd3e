"""What `fix` prints and writes: a unified diff that `git apply` and `patch -p1` take, atomic
writes guarded by a hash check, and the summary of what was fixed and what was left."""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from collections import Counter
from pathlib import Path

from ptycho_knobs.atomic import atomic_open
from ptycho_knobs.audit.files import display_path
from ptycho_knobs.fix.engine import FileResult, Plan, Reason

NO_NEWLINE = "\\ No newline at end of file\n"


def _lines(text: str) -> list[str]:
    """Lines split at \\n only (what patch and git see; str.splitlines also splits at \\f, \\x1c, ...)."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def unified_diff(result: FileResult) -> bytes:
    """The file's change as a unified diff with `a/` and `b/` prefixes, in the file's encoding."""
    assert result.new is not None
    enc = result.encoding
    old = result.old.decode(enc, "surrogateescape")
    new = result.new.decode(enc, "surrogateescape")
    name = display_path(result.path)
    out = []
    for line in difflib.unified_diff(_lines(old), _lines(new), f"a/{name}", f"b/{name}", n=3):
        if line.startswith(("---", "+++")):
            out.append(line if line.endswith("\n") else line + "\n")
        elif line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n" + NO_NEWLINE)
    return "".join(out).encode(enc, "surrogateescape")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(result: FileResult) -> str | None:
    """Write the fixed file atomically, unless it changed since the audit read it; the error."""
    assert result.new is not None
    real = Path(os.path.realpath(result.path))  # a symlink keeps pointing at the fixed file
    try:
        current = real.read_bytes()
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except OSError as exc:
        return f"cannot read it again before writing: {exc.strerror or exc}"
    if sha256(current) != sha256(result.old):
        return "it changed since the audit read it; not written (run fix again)"
    try:
        with atomic_open(real, binary=True) as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(result.new)
    except OSError as exc:
        return f"cannot write it: {exc.strerror or exc}"
    return None


# -- summary ---------------------------------------------------------------------------------

_TITLES = {
    "no-edit": "the audit offers no edit for",
    "no-carrier": "no config class of the registry carries the knob",
    "no-field": "the config class has no field for the knob",
    "config-missing": "the config class's file was not found",
    "no-object": "no config object in scope (a config would have to be threaded in)",
    "maybe-none": "the config object may be None there",
    "parse": "libcst cannot parse the file",
    "range": "the edit's range holds no expression",
    "unwritable": "the value cannot be written as a literal there",
    "unchanged": "the literal already reads as the registry value",
    "conflict": "conflicting edits",
    "compile": "the fixed file would not compile (a ptycho-knobs bug; please report it)",
    "changed": "the file changed since the audit read it",
    "still-reported": "edited, but still reported",
    "unknown-edit": "an edit kind this version does not know",
    "unread": "the file was not read",
}
_ORDER = list(_TITLES)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _codes(findings: list) -> str:
    counts = Counter(f.code for f in findings)
    return ", ".join(f"{c} x{n}" for c, n in sorted(counts.items()))


def _group_details(kind: str, items: list[tuple[object, Reason]], limit: int = 8) -> list[str]:
    """One line per distinct detail, with the places it applies to."""
    by_detail: dict[str, list[str]] = {}
    for f, r in items:
        by_detail.setdefault(r.detail, []).append(r.where or f"{f.path}:{f.line}")  # type: ignore[attr-defined]
    lines = []
    for detail, places in sorted(by_detail.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        places = list(dict.fromkeys(places))
        shown = _compact(places, limit)
        if kind == "no-edit":
            lines.append(f"{detail}: {len(places)}" if len(places) > 1 else f"{detail}: {shown}")
        else:
            lines.append(f"{detail}: {shown}")
    return lines


def _compact(places: list[str], limit: int) -> str:
    """`a.py:1, 4, 9; b.py:3` (at most `limit` places, then a count)."""
    by_file: dict[str, list[str]] = {}
    for p in places:
        path, _, line = p.rpartition(":")
        if not path:
            path, line = p, ""
        by_file.setdefault(path, []).append(line)
    parts = []
    count = 0
    for path, lines in by_file.items():
        take = [ln for ln in lines if ln][: max(limit - count, 1)]
        count += len(take) or 1
        parts.append(f"{path}:{', '.join(take)}" if take else path)
        if count >= limit:
            break
    rest = len(places) - sum(len(v) for v in list(by_file.values())[:len(parts)])
    return "; ".join(parts) + (f"; and {rest} more" if rest > 0 else "")


def summary(plan: Plan, wrote: bool, explain: bool = False) -> str:
    fixed = [f for f, _ in plan.fixed]
    left = plan.left
    files = len(plan.files)
    verb = "Fixed" if wrote else "Would fix"
    if fixed:
        head = f"{verb} {_plural(len(fixed), 'finding')} ({_codes(fixed)}) in {_plural(files, 'file')}"
        if not wrote:
            head += " (--write applies them)"
    elif plan.files:
        head = f"Edited {_plural(files, 'file')}, but the audit still reports every finding edited"
    else:
        head = "Nothing to fix"
    if plan.also:
        n = sum(plan.also.values())
        head += f", and {n} more resolved along ({', '.join(f'{c} x{k}' for c, k in sorted(plan.also.items()))})"
    tail = ""
    if plan.appeared:
        n = sum(plan.appeared.values())
        tail = (f"\nThe audit of the fixed tree {'reports' if wrote else 'would report'} {n} "
                f"finding{'s' if n != 1 else ''} the old one did not "
                f"({', '.join(f'{c} x{k}' for c, k in sorted(plan.appeared.items()))}): run `ptycho-knobs audit`.")
        if plan.appeared.get("PK016"):
            tail += ("\nPK016: the spec still states the old values; `ptycho-knobs generate` renders its generated "
                     "sections from the registry (the rest of the spec is yours to edit).")
        if plan.appeared.get("PK001"):
            tail += ("\nPK001: a spot another rule reported before (now fixed) still passes a hard-coded literal: "
                     "thread the config in there, or suppress it with a reason.")
    if not left:
        return head + "; nothing left." + tail + "\n"
    out = [f"{head}; {len(left)} left ({_codes([f for f, _ in left])}):"]
    groups: dict[str, list[tuple[object, Reason]]] = {}
    for f, r in left:
        groups.setdefault(r.kind, []).append((f, r))
    for kind in sorted(groups, key=lambda k: (_ORDER.index(k) if k in _ORDER else len(_ORDER), k)):
        items = groups[kind]
        out.append(f"  {len(items)} {_TITLES.get(kind, kind)}:")
        for line in _group_details(kind, items, limit=1000 if explain else 8):
            out.append(f"      {line}")
    return "\n".join(out) + tail + "\n"


def explain_lines(plan: Plan, wrote: bool) -> str:
    """One line per finding (with --explain): `path:line:col: CODE [knob] fixed: what` or
    `... not fixed: why`."""
    rows = []
    done = "fixed" if wrote else "would fix"
    for f, changes in plan.fixed:
        what = "; ".join(dict.fromkeys(c.description for c in changes))
        places = [f"{c.path}:{c.at.line}" for c in changes]
        if any((c.path, c.at.line) != (f.path, f.line) for c in changes):  # anchored away from its edits
            what += f" (at {', '.join(dict.fromkeys(places))})"
        rows.append((f.sort_key(), f"{f.path}:{f.line}:{f.col}: {f.code} {('[' + f.knob + '] ') if f.knob else ''}"
                     f"{done}: {what}\n"))
    for f, r in plan.left:
        rows.append((f.sort_key(), f"{f.path}:{f.line}:{f.col}: {f.code} {('[' + f.knob + '] ') if f.knob else ''}"
                     f"not fixed: {_TITLES.get(r.kind, r.kind)}: {r.detail}\n"))
    return "".join(text for _, text in sorted(rows))

