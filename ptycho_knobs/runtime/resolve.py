"""Resolve every settable knob: registry default < run.yaml < environment < command-line flag.

The order is fixed and independent of argument order. Every value remembers where it
came from (`default`, `run.yaml:LINE`, `env PTYCHO_KNOBS_X`, `--flag`) so `--print-config
--provenance` and the dry-run table can say why a value is what it is. All checking
happens here, before anything heavy starts, and every run.yaml problem names its
file:line:col. Pure Python: no torch, no lightning.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptycho_knobs import yamlpos
from ptycho_knobs.errors import KnobsError, RunConfigError, UsageError
from ptycho_knobs.ktypes import Home, Knob
from ptycho_knobs.registry import Registry
from ptycho_knobs.typelang import Scalar, base_scalar, coerce_text, coerce_yaml, describe_mismatch

#: run.yaml keys that are not knobs.
RESERVED_KEYS = ("model", "data", "model_args", "data_args")
_IMPORT_PATH = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"


@dataclass(frozen=True)
class Resolved:
    value: Any
    source: str  # "default" | "run.yaml:LINE" | "env NAME" | "--flag"


@dataclass(frozen=True)
class RunConfig:
    """The resolved run: one value per settable knob, plus the workload to train."""

    values: dict[str, Resolved]
    model: str | None = None
    data: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)
    data_args: dict[str, Any] = field(default_factory=dict)
    config_path: Path | None = None
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)  # run.yaml key (or "data_args.N") -> (line, col)

    def value(self, name: str) -> Any:
        return self.values[name].value

    def as_dict(self) -> dict[str, Any]:
        return {name: r.value for name, r in self.values.items()}

    def provenance(self) -> list[dict[str, Any]]:
        return [{"knob": n, "value": r.value, "source": r.source} for n, r in self.values.items()]

    def error(self, key: str, message: str, hint: str | None = None) -> KnobsError:
        """An error located at `key` in run.yaml when it came from there."""
        if self.config_path is not None and key in self.positions:
            line, col = self.positions[key]
            return RunConfigError(self.config_path, line, col, message, hint)
        return UsageError(message + (f"; {hint}" if hint else ""))

    def configs(self, module: Any) -> dict[str, Any]:
        """Instantiate each generated home dataclass of `module` (the generated execution_config)."""
        values = self.as_dict()
        result = {}
        for home, cls in module.HOME_CLASSES.items():
            names = [n for n, h in module.KNOB_HOMES.items() if h == home]
            try:
                result[home] = cls(**{n: values[n] for n in names})
            except ValueError as exc:  # resolve() checked first, so this means a stale generator
                raise KnobsError(f"generated {cls.__name__} rejected the resolved config: {exc}") from None
        return result

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; `from_dict` reads it back (run snapshots, DDP ranks)."""
        return {
            "values": {n: {"value": r.value, "source": r.source} for n, r in self.values.items()},
            "model": self.model, "data": self.data,
            "model_args": self.model_args, "data_args": self.data_args,
            "config_path": str(self.config_path) if self.config_path else None,
            "positions": {k: list(v) for k, v in self.positions.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return cls(
            values={n: Resolved(v["value"], v["source"]) for n, v in data["values"].items()},
            model=data["model"], data=data["data"],
            model_args=data["model_args"], data_args=data["data_args"],
            config_path=Path(data["config_path"]) if data["config_path"] else None,
            positions={k: (v[0], v[1]) for k, v in data["positions"].items()},
        )


def resolve(
    registry: Registry,
    config_path: Path | None,
    flag_values: Mapping[str, Any],
    env: Mapping[str, str],
) -> RunConfig:
    """Merge the four layers and check every value, rule and import path's shape."""
    settable = {k.name: k for k in registry.settable()}
    values = {name: Resolved(k.default, "default") for name, k in settable.items()}
    extras: dict[str, Any] = {"model": None, "data": None, "model_args": {}, "data_args": {}}
    positions: dict[str, tuple[int, int]] = {}

    if config_path is not None:
        _apply_yaml(registry, settable, config_path, values, extras, positions)

    for name, knob in settable.items():
        text = env.get(knob.env_var)
        if text is None:
            continue
        try:
            value = _checked(knob, coerce_text(knob.type, text))
        except ValueError as exc:
            raise UsageError(f"environment variable {knob.env_var}={text!r}: {exc}") from None
        values[name] = Resolved(value, f"env {knob.env_var}")

    for name, value in flag_values.items():
        knob = settable[name]
        try:
            value = _checked(knob, coerce_yaml(knob.type, value))
        except ValueError as exc:
            raise UsageError(f"{knob.cli_flag}: {exc}") from None
        is_negated_bool = base_scalar(knob.type) == Scalar("bool") and value is False
        flag = "--no-" + knob.cli_flag[2:] if is_negated_bool else knob.cli_flag
        values[name] = Resolved(value, flag)

    _apply_deprecations(settable, values)
    run = RunConfig(values=values, config_path=config_path, positions=positions, **extras)
    _check_rules(registry, run)
    return run


def deprecated_sets(knob: Knob, value: Any) -> dict[str, Any]:
    """What a deprecated knob given `value` sets: {other knob: value}; {} when it sets nothing."""
    assert knob.deprecated is not None
    out: dict[str, Any] = {}
    for other, how in knob.deprecated.sets:
        if isinstance(how, tuple):  # a value map: this knob's value -> the other's
            mapped = dict(how)
            if value in mapped:
                out[other] = mapped[value]
        elif value:  # a constant, set when the knob is on
            out[other] = how
    return out


def _apply_deprecations(settable: dict[str, Knob], values: dict[str, Resolved]) -> None:
    """A deprecated knob that was given (not at its default) warns once and sets the knobs it
    stands for, unless the user set those explicitly: the explicit, current spelling wins."""
    for name, knob in settable.items():
        given = values[name]
        if knob.deprecated is None or given.source == "default" or given.value == knob.default:
            continue
        sets = deprecated_sets(knob, given.value)
        kept = [o for o in sets if values[o].source != "default" and values[o].value != sets[o]]
        print(f"warning: {name} ({given.source}) is deprecated: {knob.deprecated.message}"
              + (f"; {', '.join(kept)} set explicitly, so it is ignored" if kept else ""), file=sys.stderr)
        for other, value in sets.items():
            if other not in kept:
                values[other] = Resolved(value, f"{given.source} (deprecated {name})")


def _apply_yaml(registry: Registry, settable: dict[str, Knob], path: Path, values: dict[str, Resolved],
                extras: dict[str, Any], positions: dict[str, tuple[int, int]]) -> None:
    if not path.is_file():
        raise UsageError(f"run config {path} does not exist")
    root = yamlpos.load(path, RunConfigError)
    if root is None:
        return
    if not root.is_map:
        raise RunConfigError(path, root.line, root.col, "run.yaml must be a mapping of knob names to values")
    seen: dict[str, str] = {}
    for key, entry in root.value.items():
        node = entry.node
        if key in RESERVED_KEYS:
            extras[key] = _reserved(path, key, node)
            positions[key] = (node.line, node.col)
            if node.is_map:  # each constructor argument's value, so a rejected one is pointed at
                positions.update({f"{key}.{arg}": (sub.node.line, sub.node.col) for arg, sub in node.value.items()})
            continue
        knob = registry.find(key)
        if knob is None:
            near = registry.suggest(key)
            hint = f"did you mean {', '.join(repr(n) for n in near)}?" if near else "see `ptycho-knobs knobs list`"
            raise RunConfigError(path, entry.key_line, entry.key_col, f"unknown knob {key!r}", hint)
        if not knob.settable:
            why = "set by the launcher or the harness" if knob.home is Home.ENV else "fixed by design"
            raise RunConfigError(path, entry.key_line, entry.key_col, f"knob {knob.name!r} is read-only ({why})")
        if knob.name in seen:
            raise RunConfigError(path, entry.key_line, entry.key_col,
                                 f"{key!r} sets knob {knob.name!r} again (already set as {seen[knob.name]!r})")
        seen[knob.name] = key
        value = _in_knob_sense(path, key, knob, node)
        problem = knob.constraints.violation(value)
        if problem is not None:
            raise RunConfigError(path, node.line, node.col, f"{key}: {value!r} {problem}")
        values[knob.name] = Resolved(value, f"{path.name}:{node.line}")
        positions[knob.name] = (node.line, node.col)


def _in_knob_sense(path: Path, key: str, knob: Knob, node: yamlpos.Node) -> Any:
    """The value of `key: value` as the knob holds it. A field alias means what the real field
    means: `enable_progress_bar: true` is quiet false, `scheduler: Default` is 'default'."""
    raw = node.plain()
    alias = next((a for a in knob.field_aliases if a.name == key and a.name != knob.name), None)
    if alias is not None and alias.invert:
        if not isinstance(raw, bool):
            raise RunConfigError(path, node.line, node.col, f"{key}: must be true or false, got {raw!r}")
        raw = not raw
    elif alias is not None and alias.values:
        raw = alias.to_knob(raw)
    try:
        return coerce_yaml(knob.type, raw)
    except ValueError:
        hint = None
        if alias is not None and alias.values:
            hint = f"{key} takes {', '.join(repr(g) for g, _ in alias.values)} (or set {knob.name!r} directly)"
        raise RunConfigError(path, node.line, node.col, f"{key}: {describe_mismatch(knob.type, node.plain())}",
                             hint) from None


def _reserved(path: Path, key: str, node: yamlpos.Node) -> Any:
    if key in ("model", "data"):
        if node.value is None:
            return None
        if not isinstance(node.value, str) or not re.match(_IMPORT_PATH, node.value):
            raise RunConfigError(path, node.line, node.col, f"{key} must be an import path like 'package.module:ClassName'")
        return node.value
    if node.value is None:
        return {}
    if not node.is_map:
        raise RunConfigError(path, node.line, node.col, f"{key} must be a mapping of constructor arguments")
    return node.plain()


def _checked(knob: Knob, value: Any) -> Any:
    problem = knob.constraints.violation(value)
    if problem is not None:
        raise ValueError(f"{value!r} {problem}")
    return value


def _check_rules(registry: Registry, run: RunConfig) -> None:
    plain = run.as_dict()
    for knob in registry.settable():
        for rule in knob.rules:
            if rule.when.holds(plain) and not rule.require.holds(plain):
                # Point at whichever side the user wrote in run.yaml, preferring the `when` knob.
                where = next((k for k in rule.knobs() if k in run.positions), rule.when.knob)
                sources = ", ".join(f"{k}={plain[k]!r} from {run.values[k].source}" for k in rule.knobs())
                raise run.error(where, f"{rule.message} ({sources})")
