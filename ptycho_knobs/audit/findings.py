"""Value objects the audit passes around: per-file facts (cached) and findings (reported).

Facts are what the scanner read from one file, independent of any rule; rules turn facts
plus the registry into `Finding`s. Keeping the two apart is what makes the cache simple:
facts depend only on the file's bytes, the registry and the watched names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class _NotLiteral:
    """Marker for a value that flows from a name, attribute or call (not a literal)."""

    def __repr__(self) -> str:
        return "<not a literal>"

    def __reduce__(self) -> str:
        return "NOT_LITERAL"


NOT_LITERAL: Any = _NotLiteral()


class OutputFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"


@dataclass(frozen=True)
class Span:
    """1-based line, 1-based character column; `end_line` for multi-line statements."""

    line: int
    col: int
    end_line: int


@dataclass(frozen=True)
class Range:
    """An exact source range: 1-based lines, 1-based character columns, end column exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int


@dataclass(frozen=True)
class Arg:
    """One keyword reaching a watched call (given by name, by position, or from a dict)."""

    keyword: str
    value: Any  # the literal value, or NOT_LITERAL
    at: Span
    via: str = "keyword"  # keyword | positional | dict
    value_at: Range | None = None  # the value expression itself (what `fix` replaces)

    @property
    def literal(self) -> bool:
        return self.value is not NOT_LITERAL


@dataclass(frozen=True)
class CallFact:
    """A call to a watched class (or a subclass of one) with the arguments it receives."""

    callee: str  # the registry callee it resolves to, e.g. "Trainer"
    shown: str  # how the code spells it, e.g. "L.Trainer"
    at: Span
    args: tuple[Arg, ...]
    splats: tuple[Span, ...]  # `**kwargs` that could not be resolved
    text: str  # normalised source of the statement, for baseline fingerprints
    scope: str = ""  # qualname of the enclosing function
    hint: str = ""  # the first argument's source and the name the result is assigned to


@dataclass(frozen=True)
class Stmt:
    """One thing a file states about a named setting: the layers the audit compares.

    kinds (and what `owner` is):
      field      `name: T = value` in class `owner` (choices from a Literal annotation)
      flag       argparse `add_argument`: name = dest, owner = the flags joined by `,`;
                 value = default, choices, form = action, annot = type, detail = help
      fallback   `getattr(owner, 'name', value)`, `owner.get('name', value)`, `owner.name or value`
      env        `os.environ.get('name', value)` / `os.getenv` / `os.environ['name']`
      param      a signature default: `def owner(name=value)` (owner is the qualname)
      check      validation that raises: bound = (op, literal) rejected, or choices = the only
                 values accepted; form = raise | assert | guard (raise under another condition,
                 in detail)
      branch     a consumer: an if/elif chain on `owner.name` (choices = values handled, weak =
                 values whose branch only warns; form = if | if-else | if-raise) or a dict lookup
                 (form = dict with value = the default it falls back to, dict-strict without)
      assign     `owner.name = value` (invert: `= not other`, other in detail)
      construct  `owner(name=...)` constructing a config class; value = the literal, or the
                 default the expression states (getattr fallbacks, `not`, `or`), form = derived
    """

    kind: str
    name: str
    owner: str
    value: Any
    at: Span
    value_at: Range | None = None
    choices: tuple[Any, ...] | None = None
    choices_at: Range | None = None
    weak: tuple[Any, ...] = ()
    bound: tuple[str, Any] | None = None
    invert: bool = False
    form: str = ""
    scope: str = ""  # qualname of the enclosing function or class ("" at module level)
    annot: str = ""
    detail: str = ""
    detail_at: Range | None = None
    text: str = ""


@dataclass(frozen=True)
class DefFact:
    """A function or class definition: what the project-wide rules need to know of it."""

    kind: str  # def | class
    qualname: str
    at: Span
    params: tuple[tuple[str, Any, str, bool], ...] = ()  # (name, default or NOT_LITERAL, annotation, has default)
    bases: tuple[str, ...] = ()  # classes: base names as written (last component)
    returns: tuple[str, ...] = ()  # defs: names of classes/functions whose call it returns
    flows: tuple[tuple[str, str, str], ...] = ()  # (param, callee, keyword): a parameter passed on unchanged
    locals: tuple[tuple[str, str, int], ...] = ()  # (local, callee, line): a local assigned from a call
    decorators: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallSite:
    """A call to a plain name, `self.method` or `module.function`: a possible in-tree callable."""

    func: str  # the name called (last component)
    qualified: str  # through the file's imports
    at: Span
    args: tuple[Arg, ...]  # keywords by name; positionals as `#0`, `#1`, ...
    names: tuple[tuple[str, str], ...]  # (keyword or #i, the bare name passed)
    splat: bool
    scope: str
    text: str


@dataclass(frozen=True)
class Suppression:
    line: int
    col: int
    codes: tuple[str, ...]  # empty: every code


@dataclass(frozen=True)
class FileFacts:
    """Everything the rules need from one file."""

    calls: tuple[CallFact, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    problem: tuple[str, str, int, int] | None = None  # (code, message, line, col)
    lines: int = 0
    stmts: tuple[Stmt, ...] = ()
    defs: tuple[DefFact, ...] = ()
    sites: tuple[CallSite, ...] = ()
    loads: frozenset[tuple[str, str]] = frozenset()  # (attribute, receiver text) read anywhere
    strings: frozenset[str] = frozenset()  # identifier-like string constants (getattr names, keys)
    imports: tuple[str, ...] = ()  # modules imported (relative ones as `.name`)
    aliases: tuple[tuple[str, str], ...] = ()  # (local name, the dotted name an import binds it to)
    entry: bool = False  # has `if __name__ == "__main__":`


@dataclass(frozen=True)
class Fix:
    """A text replacement that resolves a finding (used by SARIF and --fix-locations)."""

    path: str
    line: int
    col: int
    end_col: int
    replacement: str
    description: str


@dataclass(frozen=True)
class Edit:
    """A change to Python source that resolves (part of) a finding; `ptycho-knobs fix` turns it
    into text with libcst and applies it.

    kinds:
      use-config   replace the expression at `at` by `<obj>.<attr>` (`not <obj>.<attr>` when
                   `invert`: the code's sense is the opposite of `config_class.attr`, as
                   `enable_progress_bar=not config.quiet`), where <obj> is an object of
                   `config_class` in scope there
      set-literal  replace the literal at `at` by `value`, keeping the literal's style
      set-choices  replace the sequence literal at `at` (argparse choices=) by `value` (a tuple)
    """

    kind: str
    path: str  # as shown in findings (relative to where the audit ran)
    at: Range
    knob: str
    value: Any = None
    config_class: str | None = None
    attr: str | None = None
    invert: bool = False


@dataclass(frozen=True)
class Finding:
    path: str  # as shown to the user: relative to the audited root's parent
    line: int
    col: int
    end_line: int
    code: str
    rule: str
    knob: str | None
    message: str
    text: str = ""  # normalised statement text, for baseline fingerprints
    fix: Fix | None = field(default=None, compare=False)
    scope: tuple[int, int] | None = field(default=None, compare=False)  # lines a suppression may sit on
    edits: tuple[Edit, ...] = field(default=(), compare=False)  # what `fix` would change in source
    related: tuple[tuple[str, int, str], ...] = field(default=(), compare=False)  # (path, line, what) of the other places

    def sort_key(self) -> tuple[Any, ...]:
        return (self.path, self.line, self.col, self.code, self.knob or "", self.message)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "end_line": self.end_line,
            "code": self.code,
            "rule": self.rule,
            "knob": self.knob,
            "message": self.message,
            "related": [{"path": path, "line": line, "message": what} for path, line, what in self.related],
        }
