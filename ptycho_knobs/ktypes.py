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


@dataclass(frozen=True)
class Source:
    """One place the knob's value lives in ptycho_torch today."""

    file: str
    line: int
    callee: str | None = None  # e.g. "EarlyStopping"
    keyword: str | None = None  # e.g. "patience"
    field: str | None = None  # e.g. "TrainingConfig.num_workers"
    env: str | None = None  # e.g. "RANK"
    flag: str | None = None  # argparse flag, e.g. "--disable_mlflow"
    note: str | None = None
    line_pos: Position | None = None  # where the `line:` number sits in the YAML

    @property
    def kind(self) -> str:
        for kind in ("callee", "field", "env", "flag"):
            if getattr(self, kind):
                return kind
        return "other"


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


@dataclass(frozen=True)
class Callee:
    """A watched class: short name, import paths it is known by, how positionals bind."""

    name: str
    qualified: tuple[str, ...]
    positional: tuple[str, ...] = ()
