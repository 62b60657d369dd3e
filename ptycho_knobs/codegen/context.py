"""What the templates render: the registry reshaped into plain view objects.

Templates only loop and escape; every decision (which check a field needs, which argparse
converter, which bridge direction) is made here, in Python, where it can be tested.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, replace
from typing import Any

from ptycho_knobs.codegen.environment import py_literal
from ptycho_knobs.codegen.targets import GenerateError
from ptycho_knobs.ktypes import Category, CliAlias, Condition, Home, Knob, Rule, TfMappingKind
from ptycho_knobs.registry import Registry
from ptycho_knobs.typelang import LiteralOf, OptionalOf, Scalar, base_scalar, is_optional

HOME_DOCS = {
    Home.EXECUTION: "PyTorch Lightning runtime configuration that the canonical TensorFlow configs do not carry.",
    Home.TRAINING: "Training knobs that already live in TrainingConfig (PyTorch and TensorFlow).",
    Home.DATAGEN: "Simulation (data generation) knobs of DatagenConfig / DataConfig.",
    Home.MODEL: "Model architecture knobs of the PyTorch ModelConfig.",
    Home.WORKFLOW: "Workflow function parameters (stitching, flips, reassembly), not config fields.",
}

_KIND_NAMES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "path": "str"}


@dataclass(frozen=True)
class AliasView:
    """A field alias: a read-only property and a constructor keyword for another field."""

    name: str
    field: str
    invert: bool
    annotation: str  # the property's return annotation
    doc: str
    # a `values` alias: (its spelling, the field's value) pairs, the knob's values without a
    # spelling of their own added as themselves when the knob has a finite set of values
    values: tuple[tuple[Any, Any], ...] = ()
    closed: bool = False  # the alias takes only the spellings in `values` (else others pass as is)

    @property
    def table(self) -> str:
        """Python source of `(values, closed)` for the class's FIELD_ALIAS_VALUES."""
        return f"({py_literal(self.values)}, {self.closed})"

    @property
    def listed(self) -> str:
        """How the class docstring lists it: `enable_progress_bar` = `not quiet`."""
        text = f"`{self.name}` = `{'not ' if self.invert else ''}{self.field}`"
        renamed = [f"{given!r} = {mine!r}" for given, mine in self.values if not _same(given, mine)]
        return text + (f" ({', '.join(renamed)})" if renamed else "")


@dataclass(frozen=True)
class MappedFlagView:
    """A cli alias that takes a value through its own map (`--scheduler Default`)."""

    flag: str
    converter: str  # Python source: `_mapped({...}, <the knob's converter>)`
    metavar: str
    help: str


@dataclass(frozen=True)
class FieldView:
    """One dataclass field and its CLI flag."""

    knob: Knob
    annotation: str
    default: str  # Python source
    check: str  # the `_check(...)` call in __post_init__
    flag: str
    is_bool_flag: bool  # plain bool: `--x/--no-x`
    converter: str  # Python source of the argparse `type=` callable ('' for bool flags)
    choices: str  # Python source of the argparse choices tuple, or ''
    metavar: str
    help: str  # argparse help text, `%` already doubled
    aliases: tuple[AliasView, ...] = ()
    extra_flags: tuple[str, ...] = ()  # more spellings of the flag itself (bools: each sets True)
    negative_flags: tuple[str, ...] = ()  # bools: spellings that set False (besides --no-FLAG)
    mapped_flags: tuple[MappedFlagView, ...] = ()

    @property
    def name(self) -> str:
        return self.knob.name

    @property
    def alias_args(self) -> str:
        """Python source of the extra option strings, each followed by `, ` (or '')."""
        return "".join(py_literal(f) + ", " for f in self.extra_flags)

    @property
    def spellings(self) -> tuple[str, ...]:
        """Every flag that sets this knob."""
        no = ("--no-" + self.flag[2:],) if self.is_bool_flag else ()
        return (self.flag, *no, *self.extra_flags, *self.negative_flags, *(m.flag for m in self.mapped_flags))


@dataclass(frozen=True)
class RuleView:
    when: str  # Python expression over `self.`
    violated: str  # Python expression: the rule's requirement does not hold
    message: str


@dataclass(frozen=True)
class HomeView:
    """One settable home: one generated dataclass."""

    home: Home
    class_name: str
    doc: str
    fields: tuple[FieldView, ...]
    rules: tuple[RuleView, ...]

    @property
    def aliases(self) -> tuple[AliasView, ...]:
        return tuple(a for f in self.fields for a in f.aliases)

    @property
    def value_aliases(self) -> tuple[AliasView, ...]:
        """The aliases that spell the field's values their own way (`scheduler`: 'Default')."""
        return tuple(a for a in self.aliases if a.values)

    @property
    def docstring(self) -> str:
        """The class docstring: the home's doc, then its field aliases, if any."""
        if not self.aliases:
            return self.doc
        listed = ", ".join(a.listed for a in self.aliases)
        text = ("Field aliases (read-only properties and constructor keywords, never dataclass fields): "
                + listed + ".")
        body = textwrap.fill(text, width=100, initial_indent="    ", subsequent_indent="    ",
                             break_on_hyphens=False, break_long_words=False)
        return f"{self.doc}\n\n{body}\n    "


@dataclass(frozen=True)
class DeprecationView:
    """A deprecated knob: its warning and what it sets (`mapped`: a this-value -> that-value map)."""

    knob: str
    message: str
    sets: str  # Python source: ((other knob, mapped, the value or a {this value: that value} map), ...)


@dataclass(frozen=True)
class CliView:
    """A real command-line entry point and the flag each of its knobs goes by there."""

    name: str
    flags: tuple[tuple[str, str], ...]  # (knob, spelling)


@dataclass(frozen=True)
class CategoryGroup:
    title: str
    fields: tuple[FieldView, ...]


@dataclass(frozen=True)
class BridgeItem:
    knob: str
    tf_attr: str
    tf_field: str
    mapping: str
    inverted: bool
    nullable: bool  # the PyTorch field accepts None


@dataclass(frozen=True)
class BridgeView:
    """The TF -> PyTorch function of one home."""

    home: Home
    class_name: str
    function: str
    items: tuple[BridgeItem, ...]
    computed: tuple[str, ...]  # knobs whose TF equivalent is computed, not carried
    divergences: tuple[tuple[str, str], ...]
    doc: str


def cli_text(value: Any) -> str:
    """How a value is typed on the command line (`none`, `true`, `0.001`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def check_call(knob: Knob) -> str:
    base = base_scalar(knob.type)
    args = [py_literal(knob.name)]
    if isinstance(base, LiteralOf):
        args.append("None")
    else:
        args.append(_KIND_NAMES[base.name])
    if isinstance(knob.type, OptionalOf):
        args.append("optional=True")
    if isinstance(base, LiteralOf):
        args.append("literal=" + py_literal(tuple(base.values)))
    c = knob.constraints
    if c.choices is not None:
        args.append("choices=" + py_literal(tuple(c.choices)))
    for key in ("min", "max", "exclusive_min", "exclusive_max"):
        bound = getattr(c, key)
        if bound is not None:
            args.append(f"{key}={py_literal(bound)}")
    return f"_check(self, {', '.join(args)})"


def _converter(knob: Knob) -> str:
    base = base_scalar(knob.type)
    if isinstance(base, LiteralOf):
        inner = f"_literal({py_literal(tuple(base.values))})"
    else:
        inner = {"int": "_int", "float": "_float", "bool": "_bool"}.get(base.name, "_str")
    return f"_optional({inner})" if isinstance(knob.type, OptionalOf) else inner


def field_view(knob: Knob) -> FieldView:
    base = base_scalar(knob.type)
    optional = isinstance(knob.type, OptionalOf)
    is_bool_flag = knob.type == Scalar("bool")
    values: tuple[Any, ...] | None = None
    if knob.constraints.choices is not None:
        values = tuple(knob.constraints.choices)
    elif isinstance(base, LiteralOf):
        values = tuple(base.values)
    if values is not None and optional:
        values = (*values, None)
    if values is not None:
        metavar = "{" + ",".join(cli_text(v) for v in values) + "}"
    else:
        metavar = base.name.upper() + ("|none" if optional else "")
    purpose = " ".join(knob.purpose.split())
    help_text = f"{purpose} (default: {cli_text(knob.default)})"
    if knob.deprecated is not None:
        help_text = f"[DEPRECATED] {' '.join(knob.deprecated.message.split())}. {help_text}"
    converter = "" if is_bool_flag else _converter(knob)
    plain = [a for a in knob.cli_aliases if not a.values and not a.negative]
    return FieldView(
        knob=knob,
        annotation=knob.type.annotation(),
        default=py_literal(knob.default),
        check=check_call(knob),
        flag=knob.cli_flag,
        is_bool_flag=is_bool_flag,
        converter=converter,
        choices="" if values is None or is_bool_flag else py_literal(values),
        metavar=metavar,
        help=help_text.replace("%", "%%"),
        aliases=tuple(alias_view(knob, a.name, a.invert, a.values) for a in knob.field_aliases),
        extra_flags=tuple(a.flag for a in plain),
        negative_flags=tuple(a.flag for a in knob.cli_aliases if a.negative and not a.values),
        mapped_flags=tuple(mapped_flag_view(knob, a, converter or "_bool", values) for a in knob.cli_aliases
                           if a.values),
    )


RESERVED_ATTRS = frozenset({"FIELD_ALIASES", "FIELD_ALIAS_VALUES"})
"""Class attributes the generated dataclasses define besides fields and aliases."""


def alias_view(knob: Knob, name: str, invert: bool, values: tuple[tuple[Any, Any], ...] = ()) -> AliasView:
    if name in RESERVED_ATTRS or knob.name in RESERVED_ATTRS:
        raise GenerateError(f"knob {knob.name!r}: {name!r} is reserved for the generated dataclass")
    if invert:
        doc = f"Field alias: `not {knob.name}`, the opposite of the field."
    elif any(not _same(given, mine) for given, mine in values):
        renamed = [f"{given!r} = {mine!r}" for given, mine in values if not _same(given, mine)]
        doc = (f"Field alias of `{knob.name}` in its own spellings ({', '.join(renamed)}); a value without "
               "one reads as itself.")
    else:
        doc = f"Field alias of `{knob.name}`."
    doc += " Read-only; the constructor and `replace()` take it as a keyword."
    if not values:
        return AliasView(name, knob.name, invert, "bool" if invert else knob.type.annotation(), doc)
    finite = knob_values(knob)
    table = list(values)
    if finite is not None:  # the knob's values without a spelling of their own are taken as themselves
        table += [(v, v) for v in finite if not any(_same(v, mine) for _, mine in values)
                  and not any(_same(v, given) for given, _ in values)]
    return AliasView(name, knob.name, False, _alias_annotation(knob, table, finite is not None), doc,
                     tuple(table), finite is not None)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def knob_values(knob: Knob) -> tuple[Any, ...] | None:
    """Every value the knob takes, when that is a finite set (choices, a Literal, a bool)."""
    base = base_scalar(knob.type)
    if knob.constraints.choices is not None:
        values: tuple[Any, ...] = tuple(knob.constraints.choices)
    elif isinstance(base, LiteralOf):
        values = tuple(base.values)
    elif base == Scalar("bool"):
        values = (True, False)
    else:
        return None
    return (*values, None) if isinstance(knob.type, OptionalOf) and None not in values else values


def _alias_annotation(knob: Knob, table: list[tuple[Any, Any]], closed: bool) -> str:
    """The return annotation of a `values` alias's property: the Literal of its spellings when
    it takes only those; else the knob's own annotation where every spelling fits it."""
    spellings = [given for given, _ in table]
    if closed:
        inner = [g for g in spellings if g is not None]
        text = "Literal[" + ", ".join(py_literal(g) for g in inner) + "]" if inner else "None"
        return f"Optional[{text}]" if None in spellings and inner else text
    base = base_scalar(knob.type)
    if isinstance(base, Scalar) and base.name in ("str", "path") and all(isinstance(g, str) for g in spellings):
        return knob.type.annotation()
    return "Any"


def mapped_flag_view(knob: Knob, alias: CliAlias, converter: str, values: tuple[Any, ...] | None) -> MappedFlagView:
    """`--scheduler Default`: the alias's own spellings first, then anything the knob's flag takes."""
    table = dict(alias.values)
    images = list(table.values())
    shown = [str(k) for k in table]
    if values is None and knob.type == Scalar("bool"):
        values = (True, False)
    if values is not None:
        shown += [cli_text(v) for v in values if not any(v is i or (v == i and type(v) is type(i)) for i in images)
                  and cli_text(v) not in shown]
        metavar = "{" + ",".join(shown) + "}"
    else:
        metavar = base_scalar(knob.type).name.upper()
    renamed = [f"{k} = {cli_text(v)}" for k, v in alias.values if str(k) != cli_text(v)]
    help_text = f"Alias of {knob.cli_flag}" + ("; " + ", ".join(renamed) if renamed else "") + "."
    return MappedFlagView(
        flag=alias.flag,
        converter=f"_mapped({py_literal({str(k): v for k, v in alias.values})}, {converter})",
        metavar=metavar,
        help=help_text.replace("%", "%%"),
    )


_NEGATED = {"truthy": "falsy", "falsy": "truthy", "is": "is not", "is not": "is", "==": "!=", "!=": "=="}


def negation(cond: Condition) -> str:
    """Python for `not cond`, without double negation or redundant parentheses."""
    if cond.op in _NEGATED:
        return replace(cond, op=_NEGATED[cond.op]).python("self.")
    return "not " + cond.python("self.")  # an ordering test, already parenthesized


def rule_view(rule: Rule) -> RuleView:
    return RuleView(rule.when.python("self."), negation(rule.require), rule.message)


def home_views(registry: Registry) -> tuple[HomeView, ...]:
    views = []
    for home in Home:
        if not home.settable:
            continue
        knobs = registry.by_home(home)
        if not knobs:
            continue
        assert home.class_name is not None
        views.append(HomeView(
            home=home,
            class_name=home.class_name,
            doc=HOME_DOCS[home],
            fields=tuple(field_view(k) for k in knobs),
            rules=tuple(rule_view(r) for k in knobs for r in k.rules),
        ))
    return tuple(views)


def deprecation_views(registry: Registry) -> tuple[DeprecationView, ...]:
    out = []
    for knob in registry.settable():
        if knob.deprecated is None:
            continue
        sets = tuple((other, isinstance(how, tuple), dict(how) if isinstance(how, tuple) else how)
                     for other, how in knob.deprecated.sets)
        out.append(DeprecationView(knob.name, " ".join(knob.deprecated.message.split()), py_literal(sets)))
    return tuple(out)


def cli_views(registry: Registry) -> tuple[CliView, ...]:
    """Each registry `clis` entry with the settable knobs it offers, in registry order."""
    return tuple(
        CliView(entry.name, tuple((k.name, flag) for k in registry.settable() for cli, flag in k.clis if cli == entry.name))
        for entry in registry.clis
    )


def category_groups(views: tuple[HomeView, ...]) -> tuple[CategoryGroup, ...]:
    """Settable fields grouped by category, in category then registry order."""
    fields = [f for v in views for f in v.fields]
    groups = []
    for category in Category:
        members = tuple(f for f in fields if f.knob.category is category)
        if members:
            groups.append(CategoryGroup(category.title, members))
    return tuple(groups)


def function_name(class_name: str) -> str:
    """`PyTorchExecutionConfig` -> `to_pytorch_execution_config`."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", class_name.replace("PyTorch", "Pytorch"))
    return "to_" + words.lower()


def bridge_views(registry: Registry) -> tuple[BridgeView, ...]:
    views = []
    for home in Home:
        if not home.settable or home.class_name is None:
            continue
        knobs = registry.by_home(home)
        if not knobs:
            continue
        mapped = [k for k in knobs if k.tf is not None]
        items = tuple(
            BridgeItem(k.name, k.tf.attr, k.tf.field, k.tf.mapping.value, k.tf.mapping is TfMappingKind.INVERTED,
                       is_optional(k.type))
            for k in mapped if k.tf is not None and k.tf.mapping is not TfMappingKind.COMPUTED
        )
        if not items and home is not Home.EXECUTION:
            continue
        views.append(_bridge_view(home, home.class_name, items, mapped))
    return tuple(views)


def _bridge_view(home: Home, class_name: str, items: tuple[BridgeItem, ...], mapped: list[Knob]) -> BridgeView:
    computed = tuple(k.name for k in mapped if k.tf is not None and k.tf.mapping is TfMappingKind.COMPUTED)
    divergences = tuple((k.name, k.tf.divergence) for k in mapped if k.tf is not None and k.tf.divergence)
    lines = [f"Build a {class_name} from a TF config; `overrides` (knob -> value) win.", ""]
    if items:
        lines.append("Carried: " + ", ".join(
            f"{i.knob} <- {i.tf_field}" + (" (inverted)" if i.inverted else "") for i in items) + ".")
    else:
        lines.append("No knob of this class has a TF equivalent; only `overrides` and defaults apply.")
    if computed:
        lines.append("Computed in TF, not carried: " + ", ".join(computed) + ".")
    for name, why in divergences:
        lines.append(f"Divergent default of {name}: {' '.join(why.split())}")
    lines.append("Unknown override keys raise ValueError naming the nearest field.")
    doc = "\n    ".join(lines).replace("\n    \n", "\n\n") + "\n    "
    return BridgeView(
        home=home,
        class_name=class_name,
        function=function_name(class_name),
        items=items,
        computed=computed,
        divergences=divergences,
        doc=doc,
    )


def build_context(registry: Registry) -> dict[str, Any]:
    """Everything any template may use."""
    homes = home_views(registry)
    return {
        "registry": registry,
        "registry_sha256": registry.sha256,
        "homes": homes,
        "groups": category_groups(homes),
        "bridges": bridge_views(registry),
        "bridge_paths": tuple(k.name for k in registry.settable() if k.tf is not None
                              and k.tf.mapping is not TfMappingKind.COMPUTED and base_scalar(k.type) == Scalar("path")),
        "settable": tuple(f for v in homes for f in v.fields),
        "deprecations": deprecation_views(registry),
        "clis": cli_views(registry),
        "spec_categories": spec_categories(registry),
        "schema_properties": schema_properties(registry),
    }


# -- spec section 6 and JSON Schema ------------------------------------------------------


@dataclass(frozen=True)
class SpecRow:
    name: str
    type: str
    default: str
    cli: str
    tf: str
    purpose: str
    constraints: str
    parity: str
    sources: str


@dataclass(frozen=True)
class SpecCategory:
    number: str  # "6.1"
    title: str
    rows: tuple[SpecRow, ...]


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def spec_row(knob: Knob) -> SpecRow:
    if knob.home is Home.ENV:
        src_env = next((s.env for s in knob.sources if s.env), knob.name.upper())
        cli = f"read-only (environment variable {_code(src_env)})"
    elif not knob.settable:
        cli = "fixed (not settable)"
    elif knob.type == Scalar("bool"):
        cli = f"{_code(knob.cli_flag)} / {_code('--no-' + knob.cli_flag[2:])}"
    else:
        cli = _code(knob.cli_flag)
    tf = "none"
    if knob.tf is not None:
        tf = f"{_code(knob.tf.field)} ({knob.tf.mapping.value})"
        if knob.tf.has_default:
            tf += f", TF default {_code(repr(knob.tf.default))}"
    constraints = [knob.constraints.describe()] if knob.constraints.describe() else []
    constraints += [f"when {_code(r.when.text)}: {_code(r.require.text)}" for r in knob.rules]
    parity = [knob.parity_notes]
    if knob.tf is not None and knob.tf.divergence:
        parity.append("Divergence: " + knob.tf.divergence)
    if knob.home_note:
        parity.append("Home: " + knob.home_note)
    where = knob.home.class_name or knob.home.value
    sources = []
    for s in knob.sources:
        at = f"{s.file}:{s.line}"
        detail = f"{s.callee}({s.keyword}=...)" if s.callee and s.keyword else s.callee or s.field or s.env or s.flag
        sources.append(_code(at) + (f" {detail}" if detail else ""))
    return SpecRow(
        name=_code(knob.name) + ("" if knob.settable else " (read-only)" if knob.home is Home.ENV else " (fixed)"),
        type=_code(str(knob.type)),
        default=_code(repr(knob.default)),
        cli=cli,
        tf=tf,
        purpose=knob.purpose,
        constraints="; ".join(constraints) or "none",
        parity=" ".join(p for p in parity if p) + f" (home: {where})",
        sources=", ".join(sources) or "none",
    )


def spec_categories(registry: Registry) -> tuple[SpecCategory, ...]:
    result = []
    for category in Category:
        knobs = registry.by_category(category)
        if knobs:
            result.append(SpecCategory(f"6.{len(result) + 1}", category.title, tuple(spec_row(k) for k in knobs)))
    return tuple(result)


MODEL_PATTERN = r"^[\w.]+:[\w.]+$"


def schema_property(knob: Knob) -> dict[str, Any]:
    prop: dict[str, Any] = dict(knob.type.json_schema())
    c = knob.constraints
    if c.choices is not None:
        prop.pop("type", None)
        prop.pop("anyOf", None)
        prop["enum"] = list(c.choices) + ([None] if isinstance(knob.type, OptionalOf) else [])
    elif isinstance(knob.type, OptionalOf) and isinstance(knob.type.inner, LiteralOf):
        prop = {"enum": [*knob.type.inner.values, None]}
    for key, word in (("min", "minimum"), ("max", "maximum"), ("exclusive_min", "exclusiveMinimum"),
                      ("exclusive_max", "exclusiveMaximum")):
        if getattr(c, key) is not None:
            prop[word] = getattr(c, key)
    description = " ".join(knob.purpose.split())
    others = [n for n in knob.names if n != knob.name]
    if others:
        description += " Also accepted as: " + ", ".join(others) + "."
    prop["description"] = description
    if not (isinstance(knob.default, float) and not math.isfinite(knob.default)):
        prop["default"] = knob.default  # JSON has no inf/nan
    return prop


def schema_properties(registry: Registry) -> tuple[tuple[str, dict[str, Any]], ...]:
    props = [(k.name, schema_property(k)) for k in registry.settable()]
    props += [
        ("model", {"type": "string", "pattern": MODEL_PATTERN,
                   "description": "LightningModule to train, as module.path:ClassName (default: built-in workload)."}),
        ("data", {"type": "string", "pattern": MODEL_PATTERN,
                  "description": "LightningDataModule to train on, as module.path:ClassName (default: built-in workload)."}),
        ("model_args", {"type": "object", "description": "Keyword arguments for the model class."}),
        ("data_args", {"type": "object", "description": "Keyword arguments for the data module class."}),
    ]
    return tuple(props)
