from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ptycho_knobs.audit.findings import NOT_LITERAL, Edit, Finding, Span
from ptycho_knobs.audit.index import same
from ptycho_knobs.audit.model import LABELS, Layer, is_optional
from ptycho_knobs.audit.rule import AuditRule, Invalid, ProjectContext, Valid

# Where a disagreement is reported, among the layers that hold the odd value: code first,
# declarations before reads, then the spec, then the registry.
_PLACE = {"field": 0, "flag": 1, "construct": 2, "fallback": 3, "env": 4, "param": 5, "registry": 8}


def compared(layer: Layer) -> bool:
    """Whether a layer states a default the rule compares."""
    if layer.kind == "registry":
        return True
    if layer.value is NOT_LITERAL or layer.kind not in _PLACE:
        return False
    st = layer.stmt
    if layer.kind == "flag":
        if not layer.primary:
            return False  # --no-x and other spellings of one dest: the first add_argument sets it
        if layer.value is None and (st is None or st.value_at is None or not is_optional(layer.knob)):
            return False  # argparse's "not given", not a default
    if layer.kind == "param" and not layer.registered:
        return False  # a signature default is compared with its own callers (PK012), not here
    if layer.kind in ("fallback", "param") and layer.value is None and not is_optional(layer.knob):
        return False  # `d.get('x', None)`, `def f(x=None)`: "not given", no default of a non-Optional knob
    tf = layer.knob.tf
    if tf is not None and tf.has_default and layer.label == tf.field and same(layer.value, tf.default):
        return False  # the TF canonical default the registry declares
    return True


def show(value: Any) -> str:
    return repr(value)


def describe(layer: Layer) -> str:
    if layer.kind == "registry":
        return "the registry"
    what = layer.label
    if layer.invert and layer.stmt is not None and isinstance(layer.value, bool):
        what += f", which holds the opposite ({layer.stmt.name}={show(not layer.value)})"
    elif spelled_otherwise(layer):
        assert layer.alias is not None
        what += f", which spells it {layer.alias.name}={show(written(layer))}"
    return f"{layer.where} ({what})"


def written(layer: Layer) -> Any:
    """The value as the layer's code (or spec) writes it, before any mapping into the knob's sense."""
    if layer.stmt is not None:
        return layer.stmt.value
    return layer.spec.value if layer.spec is not None else NOT_LITERAL


def spelled_otherwise(layer: Layer) -> bool:
    """Whether the layer writes its value in a `values` field alias's own spelling ('Default')."""
    raw = written(layer)
    return (layer.alias is not None and raw is not NOT_LITERAL
            and any(type(given) is type(raw) and given == raw for given, _ in layer.alias.values)
            and not same(raw, layer.value))


def groups_of(layers: list[Layer]) -> list[list[Layer]]:
    groups: list[list[Layer]] = []
    for layer in layers:
        for group in groups:
            if same(group[0].value, layer.value):
                group.append(layer)
                break
        else:
            groups.append([layer])
    return groups


class DefaultDrift(AuditRule):
    """The layers that state a knob's default do not agree.

    **What.** Every place in code that states a knob's default is a layer: the registry, each
    dataclass field carrying it (in the audited tree and in registered files outside it, by name,
    alias or registry source), the argparse `default=` of its flag, `getattr(x, 'name', d)` /
    `.get('name', d)` / `x.name or d` fallbacks, environment defaults, config constructions in CLI
    helpers (with the default their expression states: `enable_progress_bar = not getattr(args,
    'quiet', False)` is True) and registered signature defaults. (The spec is compared with the
    code by PK016.)
    Inverted layers (`enable_progress_bar` for `quiet`) are compared inverted, and layers under a
    field alias with `values` (`scheduler: str = 'Default'`) through that table, so the real
    spelling of the registry default agrees (`fix` writes that spelling back). One finding per
    knob whose layers disagree, at the odd one out (the minority value; code before the
    registry), naming every layer and its value. The TF canonical field's
    default is left out when the registry declares it (`tf.default`).

    **Why.** Two defaults for one setting means the behaviour depends on which entry point ran:
    the CLI, the dataclass, a helper's fallback, or what the spec promised.

    **Example.** `num_workers: int = 0` in one config class, `4` in another and `default=0` on
    `--num-workers`.

    **Use instead.** Make every layer say the registry's default (`ptycho-knobs fix` rewrites the
    code layers; `ptycho-knobs generate` the spec), or change the registry if it is wrong.
    """

    CODE = "PK002"
    NAME = "default-drift"
    MESSAGE = "The layers that state a knob's default disagree."
    PROJECT = True
    PRIORITY = 10
    VALUE = True
    VALID = [
        Valid("from dataclasses import dataclass\n@dataclass\nclass TrainingConfig:\n    num_workers: int = 4\n"
              "    scheduler: str = 'default'\n    learning_rate: float = 1e-3\n"
              "def loaders(config):\n    return getattr(config, 'num_workers', 4)\n"),
        Valid("import argparse\np = argparse.ArgumentParser()\np.add_argument('--quiet', action='store_true')\n"
              "p.add_argument('--num-workers', type=int, default=None)\n"),
        Valid("import os\nrank = int(os.environ.get('RANK', '0'))\nprint(os.environ.get('RANK', '?'))\n"),
    ]
    INVALID = [
        Invalid("from dataclasses import dataclass\n@dataclass\nclass TrainingConfig:\n    num_workers: int = 4\n"
                "    scheduler: str = 'Default'\n", 5, 5,
                "[scheduler_type] defaults disagree: 'Default' at ptycho_torch/example.py:5 "
                "(TrainingConfig.scheduler); 'default' in the registry"),
        Invalid("import argparse\np = argparse.ArgumentParser()\np.add_argument('--num-workers', type=int, default=0)\n"
                "def loaders(config):\n    return getattr(config, 'num_workers', 4)\n", 3, 1,
                "[num_workers] defaults disagree: 0 at ptycho_torch/example.py:3 (--num-workers); 4 at "
                "ptycho_torch/example.py:5 (getattr(config, 'num_workers', ...)) and in the registry"),
        Invalid("import argparse\np = argparse.ArgumentParser()\np.add_argument('--quiet', action='store_true')\n"
                "def helper(args):\n    progress = not getattr(args, 'quiet', False)\n"
                "    return PyTorchExecutionConfig(enable_progress_bar=progress)\n"
                "class PyTorchExecutionConfig:\n    enable_progress_bar: bool = False\n", 8, 5,
                "[quiet] defaults disagree: True at ptycho_torch/example.py:8 (PyTorchExecutionConfig.enable_progress_bar, "
                "which holds the opposite (enable_progress_bar=False)); False at ptycho_torch/example.py:3 (--quiet), "
                "ptycho_torch/example.py:5 (getattr(args, 'quiet', ...)), ptycho_torch/example.py:6 "
                "(PyTorchExecutionConfig(enable_progress_bar=...), which holds the opposite (enable_progress_bar=True)) "
                "and in the registry"),
        Invalid("from dataclasses import dataclass\n@dataclass\nclass TrainingConfig:\n    num_workers: int = 4\n"
                "    batch_size: int = 16\n    num_workers: int = 0\n", 6, 5,
                "[num_workers] defaults disagree: 0 at ptycho_torch/example.py:6 (TrainingConfig.num_workers); 4 at "
                "ptycho_torch/example.py:4 (TrainingConfig.num_workers) and in the registry; TrainingConfig.num_workers "
                "is declared 2 times in one class body (ptycho_torch/example.py:4, ptycho_torch/example.py:6): the "
                "last one wins"),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        model = ctx.model
        for knob in ctx.index.registry.knobs:
            layers = _unique([lay for lay in model.of(knob.name) if compared(lay)])
            groups = groups_of(layers)
            if len(groups) < 2:
                continue
            groups.sort(key=lambda g: (-len(g), not any(lay.kind == "registry" for lay in g)))
            odd = [lay for g in groups[1:] for lay in g]
            at = min(odd, key=lambda lay: (_PLACE[lay.kind], lay.path, lay.line))
            first = next(g for g in groups if at in g)
            message = "defaults disagree: " + "; ".join(_part(g) for g in [first, *(g for g in groups if g is not first)])
            message += _redeclared(layers)
            related = tuple((lay.path, lay.line, lay.label) for lay in layers if lay is not at and lay.kind != "registry")
            yield self.finding(at.path, Span(at.line, at.col, at.line), knob.name, message,
                               text=f"{knob.name}|{'|'.join(sorted(repr(g[0].value) for g in groups))}",
                               scope=(at.line, at.stmt.at.end_line if at.stmt else at.line),
                               edits=_edits(knob, layers), related=related)


def _redeclared(layers: list[Layer]) -> str:
    """A class body that declares one field twice: Python keeps the last, silently."""
    seen: dict[tuple[str, str], list[Layer]] = {}
    for lay in layers:
        if lay.kind == "field" and lay.stmt is not None:
            seen.setdefault((lay.path, lay.label), []).append(lay)
    notes = [f"; {twice[0].label} is declared {len(twice)} times in one class body "
             f"({', '.join(f'{lay.path}:{lay.line}' for lay in twice)}): the last one wins"
             for twice in seen.values() if len(twice) > 1]
    return "".join(notes)


def _part(group: list[Layer]) -> str:
    places = [describe(lay) for lay in group if lay.kind != "registry"]
    registry = any(lay.kind == "registry" for lay in group)
    text = ", ".join(places)
    if registry:
        text = f"at {text} and in the registry" if text else "in the registry"
    else:
        text = f"at {text}"
    return f"{show(group[0].value)} {text}"


def _unique(layers: list[Layer]) -> list[Layer]:
    """One layer per place: a construction and the fallback inside it are one statement."""
    seen: set[tuple[str, int]] = set()
    out = []
    for lay in layers:
        key = (lay.path, lay.line)
        if lay.kind != "registry" and key in seen:
            continue
        seen.add(key)
        out.append(lay)
    return out


def _edits(knob: Any, layers: list[Layer]) -> tuple[Edit, ...]:
    """set-literal edits that bring each literal code layer to the registry default."""
    out = []
    for lay in layers:
        st = lay.stmt
        if st is None or lay.file is None or st.value_at is None or st.form == "derived" or lay.kind == "construct":
            continue
        if same(lay.value, knob.default):
            continue
        value = knob.default
        if lay.invert:
            if not isinstance(value, bool):
                continue
            value = not value
        if lay.alias is not None:
            value = lay.spelled(value)  # the code's spelling: 'Default' in a `scheduler` field
        elif lay.kind == "flag":
            flags = set(st.owner.split(","))
            table = next((a.values for a in knob.cli_aliases if a.flag in flags and a.values), ())
            if table:
                back = [given for given, mine in table if same(mine, value)]
                if not back:
                    continue
                value = back[0]
        if type(st.value) is type(value) and st.value == value:
            continue  # the literal already spells it (`'Default'` mapped through the alias table)
        out.append(Edit("set-literal", lay.path, st.value_at, knob.name, value))
    return tuple(out)


__all__ = ["DefaultDrift", "compared", "describe", "groups_of", "spelled_otherwise", "written", "LABELS"]
