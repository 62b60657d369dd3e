"""What the spec templates render: the §4.9-style field bullets and the §7-style flag tables.

The shapes are those of PtychoPINN's `specs/ptychodus_api_spec.md`: numbered category items with
one bullet per `PyTorchExecutionConfig` field (the field as the real class spells it, its
type, default, `MUST be ...` rules and the flags that set it), and one pipe table per
command-line entry point of the registry's `clis` (the flag as that CLI spells it, type,
default, config field, description), with a separate list of its deprecated flags.

As in `context.py`, templates only loop and escape: the views hold plain, unescaped values and
every decision (which name, which spelling, which default on which CLI) is made here. The
escaping filters of the spec templates are added in `spec_environment()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ptycho_knobs.codegen.environment import environment, py_literal
from ptycho_knobs.ktypes import Category, CliEntry, Home, Knob, SpecSection
from ptycho_knobs.registry import Registry
from ptycho_knobs.typelang import LiteralOf, OptionalOf, Scalar, base_scalar

if TYPE_CHECKING:  # jinja2 is imported only when a template is compiled or rendered
    import jinja2

EXECUTION_CLASS = "PyTorchExecutionConfig"

# The shipped spec templates (`generate` compiles every one of them, used or not, so a broken
# template fails the tool's own `generate --check`).
SPEC_TEMPLATES = ("spec_field_bullets.md.j2", "spec_flag_table.md.j2", "spec_deprecated_flags.md.j2")

# Category headings in the spec's words ("1. **Lightning Trainer Knobs:**").
SPEC_CATEGORY_TITLES = {
    Category.LIGHTNING_TRAINER: "Lightning Trainer Knobs",
    Category.DISTRIBUTED: "Distributed (DDP) Knobs",
    Category.MLFLOW: "MLflow Knobs",
    Category.OPTIMIZATION: "Optimization Knobs",
    Category.DATA_LOADING: "DataLoader Knobs",
    Category.CHECKPOINTING: "Checkpoint/Logging Knobs",
    Category.DATAGEN: "Data Generation Knobs",
    Category.INFERENCE: "Inference Knobs",
    Category.REPRODUCIBILITY: "Reproducibility Knobs",
    Category.ARCHITECTURE: "Architecture Knobs",
    Category.WORKFLOW: "Workflow Knobs",
}


# -- escaping filters -------------------------------------------------------------------------

_BREAKS = re.compile(r"\r\n|[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _inline_parts(text: str) -> list[tuple[bool, str]]:
    """`text` as (is a code span, piece): backtick runs closed by an equal run are code spans
    (CommonMark's rule); every other piece is plain text, stray backticks included."""
    out: list[tuple[bool, str]] = []
    plain_start = i = 0
    while i < len(text):
        if text[i] != "`":
            i += 1
            continue
        j = i
        while j < len(text) and text[j] == "`":
            j += 1
        close = next((m.start() for m in re.finditer(r"`+", text[j:]) if len(m.group()) == j - i), None)
        if close is None:
            i = j  # a stray run: plain text
            continue
        end = j + close + (j - i)
        out.append((False, text[plain_start:i]))
        out.append((True, text[i:end]))
        plain_start = i = end
    out.append((False, text[plain_start:]))
    return [(code, piece) for code, piece in out if piece]


def md_text(value: Any) -> str:
    """A registry string as inline markdown on one line (a bullet, a list item, a table cell).

    Every run of whitespace, line breaks included, becomes one space, so the text cannot end
    its line or start a block. Code spans the string writes (`seed`) stay code spans; outside
    them backslashes are doubled and stray backticks escaped, so nothing in the string can
    pair with the generated code spans around it."""
    text = " ".join(("" if value is None else str(value)).split())
    return "".join(piece if code else piece.replace("\\", "\\\\").replace("`", "\\`")
                   for code, piece in _inline_parts(text))


def md_cell(value: Any) -> str:
    """`md_text` for a table cell: pipes escaped too (GFM reads `\\|` as `|`, in code spans as well)."""
    return md_text(value).replace("|", "\\|")


def md_code(value: Any, cell: bool = False) -> str:
    """A value as one inline code span that shows exactly its text (line breaks as spaces).

    The fence is one backtick longer than the longest run of backticks inside; a space pads
    content that starts or ends with a backtick or with spaces on both ends (which CommonMark
    would strip). `cell=True` escapes pipes for a table cell (GFM reads `\\|` as `|`, also in code).
    """
    text = _BREAKS.sub(" ", "" if value is None else str(value))
    if not text:
        return "` `"  # a code span cannot be empty: a blank one
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = ""
    if text.startswith("`") or text.endswith("`") or (
            text.startswith(" ") and text.endswith(" ") and text.strip()):
        pad = " "
    out = f"{fence}{pad}{text}{pad}{fence}"
    return out.replace("|", "\\|") if cell else out


def spec_environment() -> jinja2.Environment:
    """The shared environment (loader, bytecode cache, `md` and friends) plus the spec filters.

    An overlay with its own filter table, made per call so it sees the bytecode cache that
    `generate` configured on the shared environment.
    """
    base = environment()
    env = base.overlay()
    env.filters = {**base.filters, "md_text": md_text, "md_cell": md_cell, "md_code": md_code}
    return env


# -- views ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exposure:
    """The flag spellings one or more CLIs use for a field."""

    flags: tuple[str, ...]  # ("--enable-checkpointing", "--disable-checkpointing")
    clis: tuple[str, ...]  # ("train",)


@dataclass(frozen=True)
class RuleText:
    when: str  # "persistent_workers"
    require: str  # "num_workers > 0"


@dataclass(frozen=True)
class FieldBullet:
    """One field of PyTorchExecutionConfig as a §4.9 bullet. Values are unescaped."""

    knob: Knob
    name: str  # the real class's field name: the first field alias, else the knob's name
    inverse_of: str | None  # the knob's name when `name` holds its opposite (enable_progress_bar)
    type: str  # "str", "int|None"
    default: str  # Python literal: 'auto', None, 0.001
    purpose: str  # one sentence or more, ending in a full stop
    choices: str | None  # "{'auto', 'cpu'}" (Python set display; None included for Optional)
    bounds: tuple[str, ...]  # ("≥ 0",), ("≥ 1", "≤ 15")
    rules: tuple[RuleText, ...]
    exposures: tuple[Exposure, ...]  # empty: no CLI offers it
    inverted_flags: bool  # the flags set the knob, which this field holds inverted
    deprecated: str | None  # the deprecation message


@dataclass(frozen=True)
class FieldGroup:
    title: str  # "Lightning Trainer Knobs"
    fields: tuple[FieldBullet, ...]


@dataclass(frozen=True)
class FlagRow:
    """One §7 flag-table row: a flag as one CLI spells it. Values are unescaped."""

    knob: Knob
    flags: tuple[str, ...]  # ("--quiet",) or ("--enable-checkpointing", "--disable-checkpointing")
    type: str  # str | int | float | bool (both spellings) | flag (one store-true spelling)
    default: str  # Python literal of the default as given on this CLI ('Default' for --scheduler)
    config_field: str  # "PyTorchExecutionConfig.enable_progress_bar"
    purpose: str
    choices: str | None  # the values this flag accepts, as a Python set display
    bounds: tuple[str, ...]
    rules: tuple[RuleText, ...]
    inverted_field: str | None  # the field name when the flag populates it inverted


@dataclass(frozen=True)
class SetText:
    """What a deprecated flag sets: `target` to `value`, or `target` by `mapping`."""

    target: str
    value: str | None  # Python literal
    mapping: tuple[tuple[str, str], ...]  # (this flag's value, the target's value), Python literals


@dataclass(frozen=True)
class DeprecatedFlag:
    knob: Knob
    flag: str
    type: str  # "str", "flag"
    message: str
    sets: tuple[SetText, ...]


@dataclass(frozen=True)
class CliView:
    """One registry `clis` entry: its flag table rows and deprecated flags."""

    name: str
    title: str
    file: str
    rows: tuple[FlagRow, ...]
    deprecated: tuple[DeprecatedFlag, ...]


def sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if not text or text.endswith((".", "!", "?")) else text + "."


def _type_name(value: Any) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


def type_text(knob: Knob) -> str:
    """The field's Python type the way the spec writes it: `str`, `int|None`, `float`."""
    base = base_scalar(knob.type)
    if isinstance(base, LiteralOf):
        names = tuple(dict.fromkeys(_type_name(v) for v in base.values))
        text = "|".join(names)
    else:
        text = base.annotation()
    return text + "|None" if isinstance(knob.type, OptionalOf) else text


def field_name(knob: Knob) -> tuple[str, bool]:
    """(the real class's field name, whether it holds the knob's opposite)."""
    if knob.field_aliases:
        alias = knob.field_aliases[0]
        return alias.name, alias.invert
    return knob.name, False


def _spelled(knob: Knob, value: Any) -> Any:
    """A knob value as the real class's field spells it (a `values` field alias: 'Default')."""
    alias = knob.field_aliases[0] if knob.field_aliases else None
    return alias.to_alias(value) if alias is not None else value


def _as_field(knob: Knob, value: Any, inverted: bool, home: bool) -> Any:
    """A knob value as the field a spec line names holds it: the opposite for an inverted
    alias, the alias's spelling for a `values` alias of the execution class."""
    if inverted:
        return _invert(value)
    return _spelled(knob, value) if home else value


def _invert(value: Any) -> Any:
    return value if value is None else not value


def _values(knob: Knob) -> tuple[Any, ...] | None:
    if knob.constraints.choices is not None:
        values: tuple[Any, ...] = tuple(knob.constraints.choices)
    else:
        base = base_scalar(knob.type)
        if not isinstance(base, LiteralOf):
            return None
        values = tuple(base.values)
    if isinstance(knob.type, OptionalOf) and None not in values:
        values = (*values, None)
    return values


def set_display(values: tuple[Any, ...]) -> str:
    return "{" + ", ".join(py_literal(v) for v in values) + "}"


def bounds_text(knob: Knob) -> tuple[str, ...]:
    c = knob.constraints
    out = []
    for symbol, bound in (("≥", c.min), (">", c.exclusive_min), ("≤", c.max), ("<", c.exclusive_max)):
        if bound is not None:
            out.append(f"{symbol} {py_literal(bound)}")
    return tuple(out)


def _rules(knob: Knob) -> tuple[RuleText, ...]:
    return tuple(RuleText(r.when.text, r.require.text) for r in knob.rules)


def _negatives(knob: Knob) -> tuple[str, ...]:
    return tuple(a.flag for a in knob.cli_aliases if a.negative)


def flag_spellings(knob: Knob, spelling: str) -> tuple[tuple[str, ...], bool]:
    """(the flags a CLI that spells the knob `spelling` offers, whether they set it inverted).

    A bool knob shows its negative aliases beside its own flag (`--enable-checkpointing` /
    `--disable-checkpointing`); a CLI that only has the negative spelling sets it inverted."""
    negatives = _negatives(knob)
    if spelling in negatives:
        return (spelling,), True
    if knob.type == Scalar("bool"):
        return (spelling, *negatives), False
    return (spelling,), False


def exposures(knob: Knob) -> tuple[Exposure, ...]:
    groups: dict[tuple[str, ...], list[str]] = {}
    for cli, spelling in knob.clis:
        flags, _ = flag_spellings(knob, spelling)
        groups.setdefault(flags, []).append(cli)
    return tuple(Exposure(flags, tuple(clis)) for flags, clis in groups.items())


def field_bullet(knob: Knob) -> FieldBullet:
    name, inverted = field_name(knob)
    values = None if inverted else _values(knob)
    kind = type_text(knob)
    if values is not None and knob.field_aliases and knob.field_aliases[0].values:
        values = tuple(_spelled(knob, v) for v in values)
        kind = "|".join(dict.fromkeys(_type_name(v) for v in values if v is not None))
        kind += "|None" if None in values else ""
    return FieldBullet(
        knob=knob,
        name=name,
        inverse_of=knob.name if inverted else None,
        type=kind,
        default=py_literal(_invert(knob.default) if inverted else _spelled(knob, knob.default)),
        purpose=sentence(knob.purpose),
        choices=set_display(values) if values is not None else None,
        bounds=bounds_text(knob),
        rules=_rules(knob),
        exposures=exposures(knob),
        inverted_flags=inverted,
        deprecated=sentence(knob.deprecated.message) if knob.deprecated else None,
    )


def execution_knobs(registry: Registry) -> tuple[Knob, ...]:
    return registry.by_home(Home.EXECUTION)


def field_groups(registry: Registry) -> tuple[FieldGroup, ...]:
    """Every PyTorchExecutionConfig field, grouped by category in catalog order."""
    knobs = execution_knobs(registry)
    groups = []
    for category in Category:
        members = tuple(field_bullet(k) for k in knobs if k.category is category)
        if members:
            groups.append(FieldGroup(SPEC_CATEGORY_TITLES[category], members))
    return tuple(groups)


def _cli_value_map(knob: Knob, spelling: str) -> dict[Any, Any]:
    """knob value -> what this flag spelling takes for it (a cli alias's `values`, reversed)."""
    alias = next((a for a in knob.cli_aliases if a.flag == spelling), None)
    if alias is None:
        return {}
    out: dict[Any, Any] = {}
    for given, value in alias.values:
        out.setdefault(_key(value), given)
    return out


def _key(value: Any) -> Any:
    """A dict key that keeps True and 1 apart."""
    return (type(value).__name__, value)


def flag_row(knob: Knob, spelling: str) -> FlagRow:
    flags, flag_inverted = flag_spellings(knob, spelling)
    name, field_inverted = field_name(knob)
    given = _cli_value_map(knob, spelling)
    default = knob.default
    values = _values(knob)
    if given:
        default = given.get(_key(default), default)
        if values is not None:
            values = tuple(given.get(_key(v), v) for v in values)
    if flag_inverted:
        default = _invert(default)
    if knob.type == Scalar("bool"):
        kind = "bool" if len(flags) > 1 else "flag"
        values = None
    else:
        kind = type_text(knob).removesuffix("|None")
    return FlagRow(
        knob=knob,
        flags=flags,
        type=kind,
        default=py_literal(default),
        config_field=f"{EXECUTION_CLASS}.{name}",
        purpose=sentence(knob.purpose),
        choices=set_display(values) if values is not None else None,
        bounds=bounds_text(knob),
        rules=_rules(knob),
        inverted_field=name if field_inverted != flag_inverted else None,
    )


def deprecated_flag(registry: Registry, knob: Knob, spelling: str) -> DeprecatedFlag:
    assert knob.deprecated is not None
    sets = []
    for target_name, value in knob.deprecated.sets:
        target = registry.get(target_name)
        field, inverted = field_name(target) if target.home is Home.EXECUTION else (target.name, False)
        home = target.home is Home.EXECUTION
        if isinstance(value, tuple):
            mapping = tuple((py_literal(a), py_literal(_as_field(target, b, inverted, home))) for a, b in value)
            sets.append(SetText(field, None, mapping))
        else:
            sets.append(SetText(field, py_literal(_as_field(target, value, inverted, home)), ()))
    return DeprecatedFlag(
        knob=knob,
        flag=spelling,
        type="flag" if knob.type == Scalar("bool") else type_text(knob).removesuffix("|None"),
        message=sentence(knob.deprecated.message),
        sets=tuple(sets),
    )


def cli_view(registry: Registry, cli: CliEntry) -> CliView:
    rows = []
    deprecated = []
    for knob in registry.knobs:
        spelling = dict(knob.clis).get(cli.name)
        if spelling is None:
            continue
        if knob.deprecated is not None:
            deprecated.append(deprecated_flag(registry, knob, spelling))
        elif knob.home is Home.EXECUTION:
            rows.append(flag_row(knob, spelling))
    return CliView(cli.name, cli.title, cli.file, tuple(rows), tuple(deprecated))


@dataclass(frozen=True)
class SpecViews:
    """The views every spec template shares, built once per `generate`."""

    field_groups: tuple[FieldGroup, ...]
    clis: dict[str, CliView]


def spec_views(registry: Registry) -> SpecViews:
    return SpecViews(field_groups(registry), {c.name: cli_view(registry, c) for c in registry.clis})


def spec_context(registry: Registry, section: SpecSection | None = None,
                 views: SpecViews | None = None) -> dict[str, Any]:
    """Everything a spec template may use. `cli` is defined only for a section with `cli:`."""
    views = views or spec_views(registry)
    context: dict[str, Any] = {
        "registry": registry,
        "section": section,
        "execution_class": EXECUTION_CLASS,
        "field_groups": views.field_groups,
        "clis": tuple(views.clis.values()),
    }
    if section is not None and section.cli is not None:
        context["cli"] = views.clis[section.cli]
    return context
