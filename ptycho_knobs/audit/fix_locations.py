"""`--fix-locations`: rewrite only the stale `line:` numbers in knob_registry.yaml.

Each stale-location finding carries a `Fix` at the exact line:col of the number in the
YAML (the loader records it as `Source.line_pos`). We replace those digits and nothing else,
so every comment, blank line and flow mapping stays byte-for-byte; the write is atomic.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from ptycho_knobs.atomic import write_text
from ptycho_knobs.audit.findings import Finding
from ptycho_knobs.errors import UsageError

_DIGITS = re.compile(r"\d+")


def apply(text: str, findings: list[Finding]) -> tuple[str, int]:
    """`text` with every stale number replaced; the count of replacements."""
    lines = text.splitlines(keepends=True)
    done = 0
    for f in sorted((f for f in findings if f.fix), key=lambda f: (f.fix.line, -f.fix.col)):  # type: ignore[union-attr]
        fix = f.fix
        assert fix is not None
        line = lines[fix.line - 1]
        match = _DIGITS.match(line, fix.col - 1)
        if not match:
            raise UsageError(f"registry line {fix.line} changed since it was read; rerun the audit")
        lines[fix.line - 1] = line[: match.start()] + fix.replacement + line[match.end():]
        done += 1
    return "".join(lines), done


def fix_locations(registry: Path, findings: list[Finding], diff_only: bool, shown: str) -> tuple[str, int]:
    """Apply (or, with `diff_only`, just diff) the fixes; returns (unified diff, count)."""
    stale = [f for f in findings if f.code == "PK003" and f.fix]
    old = registry.read_text(encoding="utf-8")
    new, count = apply(old, stale)
    diff = "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        f"a/{shown}", f"b/{shown}"))
    if count and not diff_only:
        write_text(registry, new, newline="")
    return diff, count
