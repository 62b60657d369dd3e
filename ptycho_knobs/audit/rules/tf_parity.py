from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ptycho_knobs.audit.findings import NOT_LITERAL, Finding, Span
from ptycho_knobs.audit.index import same
from ptycho_knobs.audit.rule import AuditRule, Invalid, ProjectContext, Valid
from ptycho_knobs.audit.scanner import literal
from ptycho_knobs.errors import UsageError
from ptycho_knobs.ktypes import Knob, TfMappingKind

TF_CONFIG = (
    "from dataclasses import dataclass, field\nfrom pathlib import Path\n\n@dataclass\nclass ModelConfig:\n"
    "    N: int = 64\n    probe_scale: float = 4.0\n\n@dataclass\nclass TrainingConfig:\n"
    "    model: ModelConfig = field(default_factory=ModelConfig)\n    nepochs: int = 50\n"
    "    n_devices: int = 1\n    output_dir: Path = Path('training_outputs')\n"
)


@dataclass(frozen=True)
class TfField:
    value: Any
    has_default: bool
    at: Span


def read_tf_config(text: str) -> tuple[dict[str, Span], dict[str, dict[str, TfField]]]:
    """Classes and their annotated fields with literal defaults, read without importing."""
    tree = ast.parse(text)
    classes: dict[str, Span] = {}
    fields: dict[str, dict[str, TfField]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        classes[node.name] = Span(node.lineno, node.col_offset + 1, node.end_lineno or node.lineno)
        table = fields.setdefault(node.name, {})
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                table[stmt.target.id] = TfField(_default(stmt.value), stmt.value is not None,
                                                Span(stmt.lineno, stmt.col_offset + 1, stmt.end_lineno or stmt.lineno))
    return classes, fields


def _default(node: ast.expr | None) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
        name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        if name == "field":
            given = {k.arg: k.value for k in node.keywords}
            return _default(given["default"]) if "default" in given else NOT_LITERAL
        if name in ("Path", "PurePath", "str") and len(node.args) == 1 and not node.keywords:
            value = literal(node.args[0])
            return value if isinstance(value, str) else NOT_LITERAL
    return literal(node)


def expected(knob: Knob) -> Any:
    """The TF default the registry implies, or NOT_LITERAL when it implies none."""
    tf = knob.tf
    assert tf is not None
    if tf.has_default:
        return tf.default
    if tf.mapping in (TfMappingKind.SAME, TfMappingKind.RENAMED):
        return knob.default
    if tf.mapping is TfMappingKind.INVERTED and isinstance(knob.default, bool):
        return not knob.default
    return NOT_LITERAL


class TfParity(AuditRule):
    """A registry TF equivalent that the TF config module lacks, or whose default differs.

    **What.** With `--tf-config ptycho/config/config.py`, the module is read statically (parsed,
    never imported: no TensorFlow needed). For each knob with `tf:`, its class and field must
    exist, and the field's literal default must equal `tf.default` (or, without one, the knob's
    default for `same`/`renamed` and its negation for `inverted`), unless `tf.divergence`
    declares why they differ. Missing classes are reported at the knob in the registry,
    missing fields at the class, differing defaults at the field.

    **Why.** The config bridge maps TF fields to PyTorch ones; a renamed or removed TF field
    breaks it silently, and an undeclared default difference makes the two backends train
    differently from the same config.

    **Example.** `nepochs: int = 60` in TF while the registry says `tf.default: 50`.

    **Use instead.** Fix the TF default, update `tf.default`, or declare `tf.divergence`.
    """

    CODE = "PK006"
    NAME = "tf-parity"
    MESSAGE = "A registry TF equivalent is missing from the TF config or its default differs."
    PROJECT = True
    VALID = [Valid("x = 1\n", tf_config=TF_CONFIG), Valid("x = 1\n")]
    INVALID = [
        Invalid("x = 1\n", 12, 5, "[epochs] TrainingConfig.nepochs defaults to 60 in the TF config; "
                "the registry expects 50 (declare tf.divergence if intended)",
                path="ptycho/config/config.py", tf_config=TF_CONFIG.replace("nepochs: int = 50", "nepochs: int = 60")),
        Invalid("x = 1\n", 10, 1, "[n_devices] TrainingConfig has no field n_devices in the TF config",
                path="ptycho/config/config.py", tf_config=TF_CONFIG.replace("    n_devices: int = 1\n", "")),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        if ctx.tf_config is None:
            return
        try:
            text = ctx.tf_config.read_text(encoding="utf-8")
            classes, fields = read_tf_config(text)
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            raise UsageError(f"--tf-config {ctx.tf_config_shown}: cannot read it statically: {exc}") from None
        shown = ctx.tf_config_shown
        for knob in ctx.index.registry.knobs:
            tf = knob.tf
            if tf is None:
                continue
            cls, attr = tf.class_name, tf.attr
            if cls not in classes:
                at = Span(knob.position.line, knob.position.col, knob.position.line)
                yield self.finding(ctx.registry_shown, at, knob.name,
                                   f"tf class {cls} (tf: {tf.field}) is not defined in {shown}",
                                   text=f"tf|{tf.field}")
                continue
            field = fields[cls].get(attr)
            if field is None:
                yield self.finding(shown, classes[cls], knob.name, f"{cls} has no field {attr} in the TF config",
                                   text=f"tf|{tf.field}")
                continue
            want = expected(knob)
            if tf.divergence or want is NOT_LITERAL or not field.has_default or field.value is NOT_LITERAL:
                continue
            if not same(_widen(field.value, want), want):
                yield self.finding(shown, field.at, knob.name,
                                   f"{tf.field} defaults to {field.value!r} in the TF config; the registry expects "
                                   f"{want!r} (declare tf.divergence if intended)", text=f"tf|{tf.field}")


def _widen(value: Any, want: Any) -> Any:
    if isinstance(want, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
