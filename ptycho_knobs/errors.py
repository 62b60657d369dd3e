"""Typed, located errors.

Every error a user can cause is a `KnobsError`; the CLI prints it and exits 2. Errors
that point into a file carry the path, line and column so the message can show the
offending line with a caret, the way compilers do, and end with what to do about it.
"""

from __future__ import annotations

from pathlib import Path


class KnobsError(Exception):
    """Base class for every error the CLI reports without a traceback (exit code 2)."""

    exit_code = 2


class UsageError(KnobsError):
    """The command line or an input that is not a file position is wrong."""


class LocatedError(KnobsError):
    """An error at a position in a text file (1-based line and column)."""

    document = "files"  # what kind of file, in messages shared by every kind ("registries", ...)

    def __init__(
        self,
        path: str | Path,
        line: int,
        col: int,
        message: str,
        hint: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.col = col
        self.message = message
        self.hint = hint
        super().__init__(self.render())

    def source_line(self) -> str | None:
        try:
            lines = Path(self.path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None
        if 1 <= self.line <= len(lines):
            return lines[self.line - 1]
        return None

    def render(self) -> str:
        out = f"{self.path}:{self.line}:{self.col}: {self.message}"
        text = self.source_line()
        if text is not None:
            gutter = f"{self.line:>5} | "
            caret = " " * (len(gutter) + max(self.col - 1, 0)) + "^"
            out += f"\n{gutter}{text}\n{caret}"
        if self.hint:
            out += f"\n  hint: {self.hint}"
        return out


class RegistryError(LocatedError):
    """`knob_registry.yaml` does not load: schema, types, defaults or constraints."""

    document = "registries"


class RunConfigError(LocatedError):
    """A run.yaml value is unknown, mistyped or breaks a constraint."""

    document = "run files"
