"""The base class of every audit rule, and the examples each rule carries.

A rule is one class in one module under `rules/`, found by walking that package (no list
to keep in sync). It has a stable CODE and kebab NAME, a one-line MESSAGE for rule
metadata, a docstring in four parts (What / Why / Example / Use instead) that becomes the
rules reference, and VALID / INVALID examples that the test suite runs: an `Invalid` pins
the code, line:col and message of the one finding it must produce.

Rules do not parse: the scanner has already turned each file into `FileFacts`. A rule
looks at one file's facts (`check_file`) or at the whole audited tree (`check_project`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, ClassVar

from ptycho_knobs.audit.findings import Arg, CallFact, Edit, FileFacts, Finding, Fix, Span

if TYPE_CHECKING:
    from ptycho_knobs.audit.index import AuditIndex, Owner
    from ptycho_knobs.audit.model import Model
    from ptycho_knobs.audit.spec import SpecStmt


@dataclass(frozen=True)
class Valid:
    """Code (at `ptycho_torch/example.py`) on which the rule must stay quiet."""

    code: str
    tf_config: str | None = None
    spec: str | None = None  # markdown written to specs/spec.md (the example registry's spec)


@dataclass(frozen=True)
class Invalid:
    """Code on which the rule must report exactly one finding, at line:col with message."""

    code: str
    line: int
    col: int
    message: str
    path: str = "ptycho_torch/example.py"
    tf_config: str | None = None
    spec: str | None = None


@dataclass
class FileContext:
    """One scanned file: where it is, how to show it, its facts."""

    path: Path  # absolute
    shown: str  # as the user sees it
    facts: FileFacts
    index: AuditIndex
    pure: PurePath = field(init=False)

    def __post_init__(self) -> None:
        self.pure = PurePath(self.path)


@dataclass
class ProjectContext:
    """The whole audit: every scanned file, the audited roots, and how to show other files.

    `files` are the audited files; `outside` are registry sources and config modules outside
    the audited paths, read so that their layers are compared too (findings may point there).
    """

    files: list[FileContext]
    roots: list[Path]
    index: AuditIndex
    registry_shown: str
    tf_config: Path | None = None
    tf_config_shown: str = ""
    display: dict[Path, str] = field(default_factory=dict)
    outside: list[FileContext] = field(default_factory=list)
    spec: tuple[str, list[SpecStmt]] | None = None  # (shown path, statements) of the registry's spec
    anchors: tuple[Path, ...] = ()  # folders that module names and registry paths are relative to
    # every file that names a knob was read (the tree has a registry config class, so knob names
    # make files worth parsing): "nothing reads this field" can be claimed
    complete_reads: bool = True
    _model: Model | None = None

    @property
    def all_files(self) -> list[FileContext]:
        return [*self.files, *self.outside]

    @property
    def model(self) -> Model:
        if self._model is None:
            from ptycho_knobs.audit.model import Model

            self._model = Model.build(self)
        return self._model

    def call_role(self, f: FileContext, call: CallFact) -> str:
        from ptycho_knobs.audit.index import call_role

        return call_role(call.scope, call.hint)

    def knob_literals(self) -> Iterator[tuple[FileContext, CallFact, Arg, Owner]]:
        """Each literal argument of a watched call that sets a settable knob, with that knob.

        An implicit (not settable) knob is fixed by design: its literal is the design.
        """
        for f in self.files:
            for call in f.facts.calls:
                role = self.call_role(f, call)
                for arg in call.args:
                    if not arg.literal:
                        continue
                    owner = self.index.owner(call.callee, arg.keyword, f.pure, call.at.line, call.at.end_line, role)
                    if owner is not None and owner.knob.settable:
                        yield f, call, arg, owner


class AuditRule:
    """Base class. Subclasses set CODE, NAME, MESSAGE, the examples, and a check method."""

    CODE: ClassVar[str] = ""
    NAME: ClassVar[str] = ""
    MESSAGE: ClassVar[str] = ""
    VALID: ClassVar[list[Valid]] = []
    INVALID: ClassVar[list[Invalid]] = []
    PROJECT: ClassVar[bool] = False  # True: needs every file (cannot be cached per file)
    PRIORITY: ClassVar[int] = 0  # where two VALUE rules report one spot and knob, the higher keeps it
    VALUE: ClassVar[bool] = False  # the rule judges a value stated at its spot (a literal, a default)

    def check_file(self, ctx: FileContext) -> Iterable[Finding]:
        return ()

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        return ()

    def finding(self, shown: str, at: Span, knob: str | None, message: str, text: str = "",
                scope: tuple[int, int] | None = None, fix: Fix | None = None,
                edits: tuple[Edit, ...] = (), related: tuple[tuple[str, int, str], ...] = ()) -> Finding:
        prefix = f"[{knob}] " if knob else ""
        return Finding(shown, at.line, at.col, at.end_line, self.CODE, self.NAME, knob,
                       prefix + message, text, fix, scope, edits, related)


def all_rules() -> list[type[AuditRule]]:
    """Every rule class under `ptycho_knobs.audit.rules`, ordered by code."""
    from ptycho_knobs.audit import rules as package

    found: dict[str, type[AuditRule]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, AuditRule) and value is not AuditRule and value.CODE:
                found[value.CODE] = value
    return [found[c] for c in sorted(found)]


def iter_examples() -> Iterator[tuple[type[AuditRule], str, Valid | Invalid]]:
    """(rule, id, example) for every example of every rule; ids like `PK002-invalid-3`."""
    for rule in all_rules():
        for i, ok in enumerate(rule.VALID, 1):
            yield rule, f"{rule.CODE}-valid-{i}", ok
        for i, bad in enumerate(rule.INVALID, 1):
            yield rule, f"{rule.CODE}-invalid-{i}", bad
