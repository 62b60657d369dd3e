"""Frozen value objects shared by every verb: the in-memory registry model.

Nothing here reads files or imports heavy libraries; `registry.py` builds these from
YAML, and codegen, audit and the runtime harness only ever read them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ptycho_knobs.typelang import KType


class Category(str, enum.Enum):
    """The seed catalog's sections, in catalog order."""

    LIGHTNING_TRAINER = "lightning_trainer"
    DISTRIBUTED = "distributed"
    MLFLOW = "mlflow"
    OPTIMIZATION = "optimization"
    DATA_LOADING = "data_loading"
    CHECKPOINTING = "checkpointing"
    DATAGEN = "datagen"
    INFERENCE = "inference"
    REPRODUCIBILITY = "reproducibility"
    ARCHITECTURE = "architecture"
    WORKFLOW = "workflow"

    @property
    def title(self) -> str:
        return _CATEGORY_TITLES[self]


_CATEGORY_TITLES = {
    Category.LIGHTNING_TRAINER: "Lightning Trainer",
    Category.DISTRIBUTED: "Distributed training (DDP)",
    Category.MLFLOW: "MLflow integration",
    Category.OPTIMIZATION: "Learning rate and optimizer",
    Category.DATA_LOADING: "Data loading",
    Category.CHECKPOINTING: "Early stopping and checkpointing",
    Category.DATAGEN: "Data generation (simulation)",
    Category.INFERENCE: "Inference",
    Category.REPRODUCIBILITY: "Reproducibility and seeding",
    Category.ARCHITECTURE: "Model architecture",
    Category.WORKFLOW: "Workflow parameters",
}


class Home(str, enum.Enum):
    """Where a knob belongs. Settable homes each become one generated dataclass."""

    EXECUTION = "execution"  # PyTorchExecutionConfig, the new home for execution knobs
    TRAINING = "training"  # already in the PyTorch/TF TrainingConfig
    DATAGEN = "datagen"  # DatagenConfig / DataConfig (simulation)
    MODEL = "model"  # PyTorch ModelConfig (architecture)
    WORKFLOW = "workflow"  # function parameters of the workflow, not config
    ENV = "env"  # environment variable, read-only (set by a launcher or by the harness)
    IMPLICIT = "implicit"  # fixed by design or computed; documented, never set

    @property
    def settable(self) -> bool:
        return self not in (Home.ENV, Home.IMPLICIT)

    @property
    def class_name(self) -> str | None:
        return _HOME_CLASSES.get(self)


_HOME_CLASSES = {
    Home.EXECUTION: "PyTorchExecutionConfig",
    Home.TRAINING: "TrainingKnobs",
    Home.DATAGEN: "DatagenKnobs",
    Home.MODEL: "ModelKnobs",
    Home.WORKFLOW: "WorkflowKnobs",
}


class TfMappingKind(str, enum.Enum):
    SAME = "same"  # same name, same meaning
    RENAMED = "renamed"  # same meaning, other name (epochs <-> nepochs)
    INVERTED = "inverted"  # bool with opposite sense (shuffle <-> sequential_sampling)
    COMPUTED = "computed"  # derived; not carried across the bridge


@dataclass(frozen=True)
class Position:
    """A 1-based line/column in the registry YAML, for errors and in-place edits."""

    line: int
    col: int


# What a source can point at, in the order `Source.kind` tries them. Each names one kind of
# statement the scanner extracts; the value says which one in the file (see the registry header).
SOURCE_KINDS = ("callee", "field", "flag", "env", "param", "read", "check", "assign", "branch", "spec")


@dataclass(frozen=True)
class Source:
    """One place the real tree states or consumes the knob: a file, a line and what is there."""

    file: str
    line: int
    callee: str | None = None  # a call: "EarlyStopping" (watched) or an in-tree callable "set_seed"
    keyword: str | None = None  # with callee: the argument, e.g. "patience"
    field: str | None = None  # a dataclass field, "TrainingConfig.num_workers"
    env: str | None = None  # an environment read, "RANK"
    flag: str | None = None  # an argparse flag, "--disable_mlflow"
    param: str | None = None  # a signature default, "PtychoDataModule.val_split" or "set_seed.seed"
    read: str | None = None  # a getattr/.get/`or` fallback read of this attribute or key, "batch_size"
    check: str | None = None  # a validation of this attribute, "checkpoint_save_top_k"
    assign: str | None = None  # a helper assignment to this name or attribute, "enable_progress_bar"
    branch: str | None = None  # a consumer branch on this attribute, "logger_backend"
    spec: str | None = None  # a spec statement: a field bullet ("accelerator") or a flag row ("--quiet")
    invert: bool = False  # the statement carries the knob's opposite (`enable_progress_bar` for quiet)
    note: str | None = None
    line_pos: Position | None = None  # where the `line:` number sits in the YAML

    @property
    def kind(self) -> str:
        for kind in SOURCE_KINDS:
            if getattr(self, kind):
                return kind
        return "other"

    @property
    def what(self) -> str:
        """The identity of the pointed-at statement within its file (the kind's value)."""
        kind = self.kind
        if kind == "callee":
            return f"{self.callee}({self.keyword}=...)" if self.keyword else f"{self.callee}(...)"
        return getattr(self, kind) if kind != "other" else ""


@dataclass(frozen=True)
class TfMapping:
    """The TensorFlow canonical equivalent (`TrainingConfig.nepochs`)."""

    field: str  # "Class.attr"
    mapping: TfMappingKind
    default: Any = None
    has_default: bool = False
    divergence: str | None = None  # declared reason why the defaults may differ

    @property
    def class_name(self) -> str:
        return self.field.split(".", 1)[0]

    @property
    def attr(self) -> str:
        return self.field.split(".", 1)[1]


@dataclass(frozen=True)
class Target:
    """Where the harness routes the value at run time (`Trainer.max_epochs`)."""

    path: str  # "Class.attr"
    invert: bool = False

    @property
    def class_name(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def attr(self) -> str:
        return self.path.split(".", 1)[1]


@dataclass(frozen=True)
class Condition:
    """`knob`, `not knob`, `knob OP literal`, `knob is None`, `knob is not None`."""

    knob: str
    op: str  # "truthy", "falsy", "==", "!=", "<", "<=", ">", ">=", "is", "is not"
    value: Any = None
    text: str = ""

    def holds(self, values: dict[str, Any]) -> bool:
        v = values[self.knob]
        op = self.op
        if op == "truthy":
            return bool(v)
        if op == "falsy":
            return not v
        if op == "is":
            return v is None
        if op == "is not":
            return v is not None
        if v is None:
            return op == "!="
        return {
            "==": v == self.value,
            "!=": v != self.value,
            "<": v < self.value,
            "<=": v <= self.value,
            ">": v > self.value,
            ">=": v >= self.value,
        }[op]

    def python(self, prefix: str = "self.") -> str:
        """The condition as a Python expression over `prefix + knob`."""
        ref = f"{prefix}{self.knob}"
        if self.op == "truthy":
            return ref
        if self.op == "falsy":
            return f"not {ref}"
        if self.op in ("is", "is not"):
            return f"{ref} {self.op} None"
        if self.op in ("<", "<=", ">", ">="):
            return f"({ref} is not None and {ref} {self.op} {self.value!r})"
        return f"{ref} {self.op} {self.value!r}"


@dataclass(frozen=True)
class Rule:
    """A cross-knob rule: when `when` holds, `require` must hold."""

    when: Condition
    require: Condition
    message: str

    def knobs(self) -> tuple[str, ...]:
        return (self.when.knob, self.require.knob)


@dataclass(frozen=True)
class Constraints:
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    exclusive_min: float | None = None
    exclusive_max: float | None = None

    def violation(self, value: Any) -> str | None:
        """Why `value` breaks these constraints, or None. None values are not bounded."""
        if value is None:
            return None
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(repr(c) for c in self.choices)}"
        if self.min is not None and value < self.min:
            return f"must be >= {self.min!r}"
        if self.max is not None and value > self.max:
            return f"must be <= {self.max!r}"
        if self.exclusive_min is not None and value <= self.exclusive_min:
            return f"must be > {self.exclusive_min!r}"
        if self.exclusive_max is not None and value >= self.exclusive_max:
            return f"must be < {self.exclusive_max!r}"
        return None

    def describe(self) -> str:
        parts = []
        if self.choices is not None:
            parts.append("one of " + ", ".join(repr(c) for c in self.choices))
        for label, bound in (
            (">=", self.min),
            (">", self.exclusive_min),
            ("<=", self.max),
            ("<", self.exclusive_max),
        ):
            if bound is not None:
                parts.append(f"{label} {bound!r}")
        return "; ".join(parts)


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps True and 1 (and 1 and 1.0) apart: how value maps compare."""
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class FieldAlias:
    """Another attribute name the generated dataclass answers to (a real field's name)."""

    name: str
    invert: bool = False  # a bool that holds the knob's opposite (enable_progress_bar for quiet)
    # the alias's spellings -> the knob's values ('Default' -> 'default'): the real field holds
    # the left side; a value not in the map means the same under both names
    values: tuple[tuple[Any, Any], ...] = ()

    def to_knob(self, value: Any) -> Any:
        """A value of the aliased attribute in the knob's sense; a value not in the map as is."""
        for given, mine in self.values:
            if same_value(given, value):
                return mine
        return value

    def to_alias(self, value: Any) -> Any:
        """The alias's spelling of a knob value (the first in the map); the value itself if none."""
        for given, mine in self.values:
            if same_value(mine, value):
                return given
        return value


@dataclass(frozen=True)
class CliAlias:
    """Another spelling of the knob's flag that the generated CLI accepts (a real CLI's flag)."""

    flag: str
    negative: bool = False  # a bool flag that sets False (--disable-checkpointing)
    values: tuple[tuple[Any, Any], ...] = ()  # what the flag accepts -> the knob's value ('none' -> None)


@dataclass(frozen=True)
class Deprecation:
    """A knob kept for compatibility: using it warns and sets other knobs."""

    message: str
    # knob -> the value to set; or a tuple of (this knob's value, the other's value) pairs
    sets: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Knob:
    """One registry entry. For settable homes, `name` is also the dataclass field name."""

    name: str
    category: Category
    type: KType
    default: Any
    purpose: str
    home: Home
    catalog_name: str | None  # the seed catalog's first column; None for beyond-catalog knobs
    aliases: tuple[str, ...] = ()
    parity_notes: str = ""
    home_note: str = ""  # why this home, where the catalog disagreed with itself
    sources: tuple[Source, ...] = ()
    tf: TfMapping | None = None
    targets: tuple[Target, ...] = ()
    constraints: Constraints = field(default_factory=Constraints)
    rules: tuple[Rule, ...] = ()
    cli_flag: str = ""  # "--early-stop-patience"
    beyond_catalog: bool = False
    position: Position = Position(1, 1)
    absent: str = ""  # why the tree has no place for this knob (a catalog knob it does not have)
    field_aliases: tuple[FieldAlias, ...] = ()
    cli_aliases: tuple[CliAlias, ...] = ()
    deprecated: Deprecation | None = None
    clis: tuple[tuple[str, str], ...] = ()  # (a registry `clis` name, the flag spelling that CLI uses)
    role: str = ""  # "train" or "eval": the calls it applies to (a training loader, an eval loader)

    @property
    def settable(self) -> bool:
        return self.home.settable

    @property
    def env_var(self) -> str:
        """The environment variable `train` reads to override this knob."""
        return "PTYCHO_KNOBS_" + self.name.upper()

    @property
    def names(self) -> tuple[str, ...]:
        """Every name this knob answers to: its own, its catalog name and its aliases."""
        extra = (self.catalog_name,) if self.catalog_name else ()
        return tuple(dict.fromkeys((self.name, *extra, *self.aliases)))

    def field_alias(self, name: str) -> FieldAlias | None:
        """The field alias called `name`, if the knob has one."""
        return next((a for a in self.field_aliases if a.name == name), None)

    def value_alias(self, name: str) -> FieldAlias | None:
        """The field alias called `name` when it has a `values` map: an attribute of that name
        holds the alias's spellings, not the knob's values."""
        alias = self.field_alias(name)
        return alias if alias is not None and alias.values else None

    @property
    def attr_names(self) -> dict[str, bool]:
        """Attribute names code may use for this knob -> whether that name holds the opposite:
        its own name, aliases, catalog name and field aliases."""
        out = {name: False for name in self.names}
        for alias in self.field_aliases:
            out[alias.name] = alias.invert
        return out


@dataclass(frozen=True)
class ConfigClass:
    """A class of the real tree whose fields hold knobs, and the names its objects go by."""

    name: str
    file: str
    vars: tuple[str, ...] = ()  # variable / parameter names that conventionally hold one


@dataclass(frozen=True)
class CliEntry:
    """A real command-line entry point (an argparse parser) of the tree."""

    name: str  # "train"
    file: str  # "ptycho_torch/train.py"
    title: str = ""


@dataclass(frozen=True)
class SpecSection:
    """One part of a markdown spec that `generate` renders (see the registry header)."""

    name: str  # marker name: <!-- BEGIN ptycho-knobs: NAME -->
    template: str
    section: str | None = None  # "4.9", "6", or a heading title; None: markers only
    block: str = "section"  # section | list | table: which part of the section is generated
    cli: str | None = None  # for flag tables: the registry `clis` entry
    position: Position = Position(1, 1)


@dataclass(frozen=True)
class SpecConfig:
    """Where the project's spec is and which of its sections are generated."""

    file: str  # relative to the registry's folder
    sections: tuple[SpecSection, ...] = ()
    position: Position = Position(1, 1)
    optional: bool = False  # a missing file is skipped with a note instead of an error


@dataclass(frozen=True)
class Callee:
    """A watched class: short name, import paths it is known by, how positionals bind."""

    name: str
    qualified: tuple[str, ...]
    positional: tuple[str, ...] = ()
