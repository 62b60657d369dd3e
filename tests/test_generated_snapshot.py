"""The generated layers against the real PtychoPINN they are meant to replace.

Everything real is read from the PtychoPINN snapshot (GPL-3.0 test data, read in place and
never copied into this repository) at test time, with `ast`: the hand-written
`PyTorchExecutionConfig` and the TF canonical `TrainingConfig` / `InferenceConfig`
(`ptycho/config/config.py`), the attribute reads of `ptycho_torch/`, the argparse calls
of the train and inference CLIs and the flag -> config helper (`ptycho_torch/cli/shared.py`).
The snapshot cannot be imported (TensorFlow-era dependencies), so the few pieces that are
run are compiled from their own source here: the real dataclass, `resolve_accelerator`,
`build_execution_config_from_args` (its one import, `ptycho.config.config`, is answered by
a stand-in module), and each parser's `add_argument` calls, replayed on a fresh parser.

Where the registry and the real code deliberately disagree, the registry wins. Every such
difference is listed below in a KNOWN_* table with its reason, and the tests check each
entry still holds (a stale entry fails), so the list stays audited, not a blanket skip.

Set PTYCHO_KNOBS_SNAPSHOT to test against a snapshot elsewhere; without one the module is
skipped.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import functools
import math
import os
import re
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from knob_strategies import valid_values
from ptycho_knobs.generated import cli, config_bridge, execution_config

from ptycho_knobs.ktypes import Knob, TfMappingKind
from ptycho_knobs.registry import load_registry
from ptycho_knobs.typelang import LiteralOf, OptionalOf, base_scalar

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = load_registry(ROOT / "knob_registry.yaml")
SNAPSHOT = Path(os.environ.get("PTYCHO_KNOBS_SNAPSHOT", "/work/shared/ptychopinn-aaa014e"))
CONFIG = "ptycho/config/config.py"
SHARED = "ptycho_torch/cli/shared.py"
HELPERS = ("resolve_accelerator", "build_execution_config_from_args")
REAL_CLASS = "PyTorchExecutionConfig"

pytestmark = pytest.mark.skipif(
    not (SNAPSHOT / CONFIG).is_file(),
    reason=f"the PtychoPINN snapshot is absent ({SNAPSHOT}); set PTYCHO_KNOBS_SNAPSHOT to a checkout of it",
)

GEN = execution_config.PyTorchExecutionConfig
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- the known, audited differences (registry intent vs the real code) ---------------------

KNOWN_DEFAULTS: dict[str, tuple[Any, Any, str]] = {
    "strategy": ("auto", None, "None lets the harness pick ddp for more than one device or node"),
    "num_workers": (0, 4, "the registry loads data in worker processes by default"),
    "pin_memory": (False, True, "pinned host memory by default, for asynchronous GPU copies"),
    "persistent_workers": (False, True, "workers stay alive across epochs (needs num_workers > 0)"),
    "prefetch_factor": (None, 4, "an explicit prefetch depth instead of torch's implicit 2"),
    "enable_progress_bar": (False, True, "quiet defaults to False: the progress bar shows"),
    "logger_backend": ("csv", "tensorboard", "TensorBoard by default; a CSV logger always runs too"),
    "inference_batch_size": (None, 1000, "an explicit inference batch instead of 'the training batch size'"),
    "middle_trim": (0, 32, "the real field is 'not yet implemented'; the registry keeps the catalog's 32"),
    "pad_eval": (False, True, "the real field is 'not yet implemented'; the registry keeps the catalog's True"),
}
"""Real field -> (real default, generated default, why the registry differs)."""

KNOWN_TYPES: dict[str, str] = {
    "strategy": "Optional in the registry: None means 'let the harness choose'",
    "inference_batch_size": "int in the registry (default 1000); the real Optional[int] None means 'training batch size'",
}
"""Real field -> why its generated type has a different optionality."""

KNOWN_VALIDATION: dict[tuple[str, Any], str] = {
    ("checkpoint_save_top_k", -1): "the registry allows -1 (Lightning: keep every checkpoint); the real class rejects it",
}
"""(real field, value) the real class rejects and the generated one accepts -> why."""

KNOWN_SPELLINGS: dict[str, tuple[Any, str]] = {}
"""Real field -> (real value -> registry value, why): same meaning, another spelling. Empty: the
real `scheduler` spellings (Default, Exponential, ...) are the registry's field alias `values`, so
the generated `scheduler` alias takes and reads them as the real class does."""

ACCELERATOR_AUTO = (
    "the real class resolves 'auto' to 'cuda'/'cpu' when it is built; the generated config keeps 'auto' and "
    "Lightning resolves it when the Trainer is built"
)
EXPLICIT_WINS = (
    "the registry's deprecations never override a flag given explicitly; the real helper lets --device win over "
    "an explicit '--accelerator auto' and --disable_mlflow win over an explicit --logger"
)
DEVICE_DEFAULT = (
    "both real CLIs default --device to 'cpu', so with no flags the real helper turns accelerator 'auto' into "
    "'cpu' (with a DeprecationWarning on every run); the registry's device defaults to None: no flags keep 'auto'"
)


def _inference_batch(args: argparse.Namespace) -> None:
    args.inference_batch_size = 64


def _workers(args: argparse.Namespace) -> None:
    args.num_workers = 3


REAL_CODE_REJECTIONS: dict[str, tuple[str, Any]] = {
    "inference_batch_size": ("inference mode passes inference_batch_size=None; the registry's field is an int",
                             _inference_batch),
    "persistent_workers needs num_workers > 0": ("the real default --num-workers 0 breaks the registry's rule "
                                                 "(persistent_workers and prefetch_factor default on)", _workers),
}
"""What stops the real code (the helper, train.main) from building the generated class -> (why, the args
change that gets the helper past it)."""


# -- reading the snapshot -------------------------------------------------------------------


@functools.cache
def parse(rel: str) -> ast.Module:
    return ast.parse((SNAPSHOT / rel).read_text(encoding="utf-8"), filename=rel)


def class_def(rel: str, name: str) -> ast.ClassDef:
    found = [n for n in parse(rel).body if isinstance(n, ast.ClassDef) and n.name == name]
    assert len(found) == 1, f"{rel}: expected one class {name}"
    return found[0]


@dataclasses.dataclass(frozen=True)
class RealField:
    name: str
    annotation: str
    default: Any = dataclasses.MISSING


def _value(node: ast.expr) -> Any:
    """A default as written: literals, and `Path("...")`."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Path"
            and len(node.args) == 1 and not node.keywords):
        return Path(ast.literal_eval(node.args[0]))
    return ast.literal_eval(node)


@functools.cache
def real_fields(rel: str, name: str) -> tuple[RealField, ...]:
    out = []
    for node in class_def(rel, name).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            default = dataclasses.MISSING if node.value is None else _value(node.value)
            out.append(RealField(node.target.id, ast.unparse(node.annotation), default))
    return tuple(out)


def compile_defs(rel: str, nodes: list[ast.stmt], namespace: dict[str, Any]) -> dict[str, Any]:
    exec(compile(ast.Module(body=nodes, type_ignores=[]), str(SNAPSHOT / rel), "exec", dont_inherit=True), namespace)
    return namespace


@functools.cache
def real_class() -> type:
    """The real PyTorchExecutionConfig, compiled from its own source (its __post_init__ imports torch)."""
    namespace = {"__name__": "ptychopinn_snapshot", "dataclass": dataclasses.dataclass, "Optional": Optional,
                 "Any": Any, "Literal": Literal, "warnings": warnings}
    return compile_defs(CONFIG, [class_def(CONFIG, REAL_CLASS)], namespace)[REAL_CLASS]


@functools.cache
def real_helpers() -> dict[str, Any]:
    nodes: list[ast.stmt] = [n for n in parse(SHARED).body if isinstance(n, ast.FunctionDef) and n.name in HELPERS]
    assert sorted(n.name for n in nodes) == sorted(HELPERS)
    namespace = {"__name__": "ptychopinn_snapshot_cli", "warnings": warnings, "argparse": argparse,
                 "Optional": Optional, "Path": Path}
    return compile_defs(SHARED, nodes, namespace)


@contextlib.contextmanager
def ptycho_config_module(cls: type) -> Iterator[None]:
    """Answer the helper's `from ptycho.config.config import PyTorchExecutionConfig` with `cls`."""
    names = ("ptycho", "ptycho.config", "ptycho.config.config")
    saved = {n: sys.modules.get(n) for n in names}
    modules = [types.ModuleType(n) for n in names]
    modules[0].config = modules[1]  # type: ignore[attr-defined]
    modules[1].config = modules[2]  # type: ignore[attr-defined]
    modules[2].PyTorchExecutionConfig = cls  # type: ignore[attr-defined]
    sys.modules.update(zip(names, modules, strict=True))
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def real_build(args: argparse.Namespace, mode: str, cls: type | None = None) -> Any:
    """What the real build_execution_config_from_args makes of `args` (with `cls` as the class)."""
    with ptycho_config_module(cls or real_class()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return real_helpers()["build_execution_config_from_args"](args, mode=mode)


def helper_reads() -> set[str]:
    """The `args` attributes build_execution_config_from_args reads: the execution flags' dests."""
    func = next(n for n in parse(SHARED).body if isinstance(n, ast.FunctionDef) and n.name == HELPERS[1])
    arg = func.args.args[0].arg
    reads = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == arg:
            reads.add(node.attr)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                and isinstance(node.args[0], ast.Name) and node.args[0].id == arg
                and isinstance(node.args[1], ast.Constant)):
            reads.add(node.args[1].value)
    return reads


def helper_keywords(mode: str) -> set[str]:
    """The keywords build_execution_config_from_args passes to the class in `mode`."""
    func = next(n for n in parse(SHARED).body if isinstance(n, ast.FunctionDef) and n.name == HELPERS[1])
    for node in ast.walk(func):
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and isinstance(node.test.comparators[0], ast.Constant) and node.test.comparators[0].value == mode):
            calls = [c for c in ast.walk(node.body[0]) if isinstance(c, ast.Call)
                     and isinstance(c.func, ast.Name) and c.func.id == REAL_CLASS]
            return {k.arg for k in calls[0].keywords if k.arg}
    raise AssertionError(f"no {mode} branch in {HELPERS[1]}")


@dataclasses.dataclass(frozen=True)
class RealCli:
    name: str  # the registry's clis name
    file: str
    mode: str  # what it passes to build_execution_config_from_args
    calls: tuple[ast.Call, ...]  # its add_argument calls, in source order

    def parser(self) -> argparse.ArgumentParser:
        """A fresh parser with exactly the real add_argument calls replayed on it."""
        parser = argparse.ArgumentParser(prog=self.name)
        for call in self.calls:
            assert isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
            code = compile(ast.Expression(call), str(SNAPSHOT / self.file), "eval", dont_inherit=True)
            eval(code, {"__builtins__": {}, call.func.value.id: parser, "int": int, "float": float, "str": str})
        return parser

    def actions(self) -> list[argparse.Action]:
        return [a for a in self.parser()._actions if a.option_strings and a.dest != "help"]

    def required_argv(self) -> list[str]:
        return [arg for a in self.actions() if a.required for arg in (a.option_strings[0], "x")]


@functools.cache
def real_clis() -> tuple[RealCli, ...]:
    """Each registry cli's parser: the function of its file that calls build_execution_config_from_args."""
    out = []
    for entry in REGISTRY.clis:
        tree = parse(entry.file)
        for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            helper = [c for c in ast.walk(func) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                      and c.func.id == HELPERS[1]]
            if not helper:
                continue
            mode = next(k.value.value for k in helper[0].keywords if k.arg == "mode" and isinstance(k.value, ast.Constant))
            calls = sorted((c for c in ast.walk(func) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                            and c.func.attr == "add_argument"), key=lambda c: (c.lineno, c.col_offset))
            out.append(RealCli(entry.name, entry.file, mode, tuple(calls)))
    assert {c.name for c in out} == {c.name for c in REGISTRY.clis}
    return tuple(out)


def sample_values(action: argparse.Action) -> list[list[str]]:
    """Argument lists that use `action` once each: every choice, or one typical value."""
    flag = action.option_strings[0]
    if action.nargs == 0:
        return [[s] for s in action.option_strings]
    if action.choices:
        return [[flag, str(c)] for c in action.choices]
    text = {int: "3", float: "0.01"}.get(action.type, "train_loss")  # type: ignore[call-overload]
    return [[flag, text]]


# -- fields and attributes -----------------------------------------------------------------


def generated_attr(name: str) -> tuple[Knob, bool]:
    """The registry knob behind attribute `name` of the generated class, and whether it is inverted."""
    if name in {f.name for f in dataclasses.fields(GEN)}:
        return REGISTRY.get(name), False
    field, invert = GEN.FIELD_ALIASES[name]
    return REGISTRY.get(field), invert


def test_every_real_field_is_a_field_or_a_documented_alias() -> None:
    fields = {f.name for f in dataclasses.fields(GEN)}
    real = real_fields(CONFIG, REAL_CLASS)
    covered = [f.name for f in real if f.name in fields or f.name in GEN.FIELD_ALIASES]
    assert covered == [f.name for f in real], f"{len(covered)}/{len(real)} real fields covered"
    default = GEN()
    for f in real:
        assert hasattr(default, f.name)
        if f.name in GEN.FIELD_ALIASES:
            assert f"`{f.name}`" in (GEN.__doc__ or "")  # the class docstring lists it
            assert (getattr(GEN, f.name).__doc__ or "").startswith("Field alias")


def _kind(annotation: str) -> tuple[str, bool]:
    m = re.fullmatch(r"Optional\[(\w+)\]", annotation)
    return (m.group(1), True) if m else (annotation, False)


def test_real_fields_have_compatible_types() -> None:
    for f in real_fields(CONFIG, REAL_CLASS):
        knob, invert = generated_attr(f.name)
        base = base_scalar(knob.type)
        kind = "bool" if invert else (type(base.values[0]).__name__ if isinstance(base, LiteralOf)
                                      else {"path": "str"}.get(base.name, base.name))
        real_kind, real_optional = _kind(f.annotation)
        assert kind == real_kind, f"{f.name}: real {f.annotation}, generated {knob.type}"
        optional = isinstance(knob.type, OptionalOf) and not invert
        assert (optional == real_optional) != (f.name in KNOWN_TYPES), f"{f.name}: real {f.annotation}, generated {knob.type}"


def test_real_defaults_match_or_are_known_differences() -> None:
    default = GEN()
    seen = set()
    for f in real_fields(CONFIG, REAL_CLASS):
        ours = getattr(default, f.name)
        if f.name in KNOWN_DEFAULTS:
            seen.add(f.name)
            real, generated, _ = KNOWN_DEFAULTS[f.name]
            assert (f.default, ours) == (real, generated), f"stale KNOWN_DEFAULTS entry {f.name}"
        else:
            assert ours == f.default and type(ours) is type(f.default), f.name
    assert seen == set(KNOWN_DEFAULTS)


PROBES = (-2, -1, 0, 1, 3, -0.5, 0.0, 1e-3, 1.5, math.nan, True, False, None, "", "bogus", "auto", "cpu",
          "cuda", "gpu", "ddp", "min", "max", "csv", "tensorboard", "mlflow", "none", "Default", "default", "val_loss")


def _rejects(cls: type, **kwargs: Any) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(**kwargs)
    except (ValueError, TypeError):
        return True
    return False


@pytest.mark.parametrize("field", [f.name for f in real_fields(CONFIG, REAL_CLASS)] if (SNAPSHOT / CONFIG).is_file() else [])
def test_what_the_real_class_rejects_the_generated_one_rejects(field: str) -> None:
    for value in PROBES:
        if _rejects(real_class(), **{field: value}) and not _rejects(GEN, **{field: value}):
            assert (field, value) in KNOWN_VALIDATION, f"{field}={value!r}: the real class rejects it, the generated one not"


def test_the_known_validation_differences_still_hold() -> None:
    for name, value in KNOWN_VALIDATION:
        assert _rejects(real_class(), **{name: value}) and not _rejects(GEN, **{name: value})


def _config_var(name: str) -> bool:
    vars_ = {v for c in REGISTRY.configs if c.name == REAL_CLASS for v in c.vars}
    return name in vars_ or re.fullmatch(r"exec(ution)?_(config|cfg)", name) is not None


def attribute_reads() -> dict[str, list[str]]:
    """Attribute -> places where ptycho_torch/ reads it on an execution config (x.attr, getattr(x, 'attr'))."""
    reads: dict[str, list[str]] = {}
    for path in sorted((SNAPSHOT / "ptycho_torch").rglob("*.py")):
        rel = str(path.relative_to(SNAPSHOT))
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=rel)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            base, attr = None, None
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                base, attr = node.value, node.attr
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
                  and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
                base, attr = node.args[0], node.args[1].value
            name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else None
            if name and _config_var(name) and isinstance(attr, str):
                reads.setdefault(attr, []).append(f"{rel}:{node.lineno}")  # type: ignore[attr-defined]
    return reads


def test_every_attribute_ptycho_torch_reads_exists_on_the_generated_class() -> None:
    reads = attribute_reads()
    assert len(reads) >= 10, f"suspiciously few execution-config reads found: {sorted(reads)}"
    default = GEN()
    missing = {attr: where[:3] for attr, where in reads.items() if not hasattr(default, attr)}
    assert not missing, f"attributes ptycho_torch/ reads that the generated class lacks: {missing}"


# -- the CLIs --------------------------------------------------------------------------------


def execution_actions(real: RealCli) -> list[argparse.Action]:
    reads = helper_reads()
    return [a for a in real.actions() if a.dest in reads]


def generated_parser(name: str) -> argparse.ArgumentParser:
    return cli.add_cli_arguments(argparse.ArgumentParser(prog=name, allow_abbrev=False), name)


@pytest.mark.parametrize("name", [c.name for c in REGISTRY.clis])
def test_every_real_execution_flag_is_accepted_with_every_value(name: str) -> None:
    real = next(c for c in real_clis() if c.name == name)
    actions = execution_actions(real)
    assert actions, f"no execution flags found in {real.file}"
    parser = generated_parser(name)
    flags = [s for a in actions for s in a.option_strings]
    assert not [f for f in flags if f not in cli.FLAG_KNOBS], "real execution flags the generated CLI lacks"
    for action in actions:
        for argv in sample_values(action):
            parser.parse_args(argv)  # SystemExit would fail the test


@pytest.mark.parametrize("name", [c.name for c in REGISTRY.clis])
def test_the_registry_spells_each_cli_as_the_real_parser_does(name: str) -> None:
    real = next(c for c in real_clis() if c.name == name)
    real_flags = {s: a for a in real.actions() for s in a.option_strings}
    for knob, flag in cli.CLI_KNOBS[name].items():
        assert flag in real_flags, f"registry says {real.file} offers {flag} for {knob}"
    # every real flag the generated CLI knows belongs to a knob the registry lists for this cli
    known = {f: cli.FLAG_KNOBS[f] for f in real_flags if f in cli.FLAG_KNOBS}
    assert {k for k in known.values()} == set(cli.CLI_KNOBS[name])
    # knob flags the real helper does not read (--max_epochs, --batch_size, --output_dir) parse the same
    parser, required = real.parser(), real.required_argv()
    for flag, knob in known.items():
        action = real_flags[flag]
        if action.dest in helper_reads():
            continue
        for argv in sample_values(action):
            expected = getattr(parser.parse_args(required + argv), action.dest)
            assert cli.explicit_knob_values(generated_parser(name).parse_args(argv))[knob] == expected, argv
    # flag sources in the registry point at real flags of their file
    for k in REGISTRY.knobs:
        for s in k.sources:
            if s.flag and s.file == real.file:
                assert s.flag in real_flags, f"{k.name}: {s.file} has no flag {s.flag}"


def scenarios() -> list[tuple[str, tuple[str, ...]]]:
    """Each real execution flag with each value, --device with each --accelerator, and some pairs."""
    out: list[tuple[str, tuple[str, ...]]] = []
    if not (SNAPSHOT / CONFIG).is_file():
        return out
    for real in real_clis():
        actions = execution_actions(real)
        for action in actions:
            out += [(real.name, tuple(argv)) for argv in sample_values(action)]
        by_dest = {a.dest: a for a in actions}
        if "device" in by_dest and "accelerator" in by_dest:
            for device in sample_values(by_dest["device"]):
                out += [(real.name, tuple(device + acc)) for acc in sample_values(by_dest["accelerator"])]
        if "disable_mlflow" in by_dest:
            for other in ("quiet", "logger_backend"):
                if other in by_dest:
                    out += [(real.name, tuple(by_dest["disable_mlflow"].option_strings[:1] + argv))
                            for argv in sample_values(by_dest[other])]
    return out


def known_meaning(argv: tuple[str, ...], field: str, real: Any, ours: Any) -> str | None:
    """Why `ours` may differ from the real value of `field` for `argv`, or None."""
    if field == "accelerator" and "--device" in argv and "--accelerator" in argv and ours == "auto":
        return EXPLICIT_WINS
    if field == "logger_backend" and "--disable_mlflow" in argv and "--logger" in argv:
        given = argv[argv.index("--logger") + 1]
        if real is None and ours == (None if given == "none" else given):
            return EXPLICIT_WINS
    return None


def compare(name: str, argv: tuple[str, ...]) -> set[str]:
    """Check the generated meaning of `argv` against the real helper's; the known reasons used."""
    real = next(c for c in real_clis() if c.name == name)
    real_parser, required = real.parser(), real.required_argv()
    theirs = real_build(real_parser.parse_args(required + list(argv)), real.mode)
    their_base = real_build(real_parser.parse_args(required), real.mode)
    parser = generated_parser(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ours = cli.execution_config_from_args(parser.parse_args(list(argv)))
        except ValueError as exc:
            assert "--disable_mlflow" in argv and "mlflow" in argv[1:] and "contradicts disable_mlflow" in str(exc), exc
            return {EXPLICIT_WINS}  # and the registry's rule rejects --logger mlflow with --disable_mlflow
    deprecated = [f for f in argv if f in cli.FLAG_KNOBS and cli.FLAG_KNOBS[f] in cli.DEPRECATED]
    assert bool(deprecated) == any(issubclass(w.category, DeprecationWarning) for w in caught), argv
    our_base = cli.execution_config_from_args(parser.parse_args([]))
    used = set()
    for f in real_fields(CONFIG, REAL_CLASS):
        r, rb, o, ob = (getattr(x, f.name) for x in (theirs, their_base, ours, our_base))
        if r == rb and o == ob:
            continue  # neither side's flag touched this field
        if f.name in KNOWN_SPELLINGS:
            r = KNOWN_SPELLINGS[f.name][0](r)
        if o != r:
            why = known_meaning(argv, f.name, r, o)
            assert why, f"{name} {' '.join(argv)}: {f.name} real {r!r}, generated {o!r}"
            used.add(why)
    return used


@pytest.mark.parametrize(("name", "argv"), scenarios(), ids=lambda x: " ".join(x) if isinstance(x, tuple) else x)
def test_a_real_flag_means_what_the_real_helper_builds(name: str, argv: tuple[str, ...]) -> None:
    compare(name, argv)


@SETTINGS
@given(data=st.data())
def test_real_flag_combinations_mean_what_the_real_helper_builds(data: st.DataObject) -> None:
    real = data.draw(st.sampled_from(real_clis()))
    actions = execution_actions(real)
    chosen = data.draw(st.lists(st.sampled_from(actions), unique_by=lambda a: a.dest, max_size=len(actions)))
    argv = tuple(arg for a in chosen for arg in data.draw(st.sampled_from(sample_values(a))))
    compare(real.name, argv)


def test_the_known_cli_differences_still_hold() -> None:
    assert compare("train", ("--device", "cuda", "--accelerator", "auto")) == {EXPLICIT_WINS}
    assert compare("train", ("--disable_mlflow", "--logger", "csv")) == {EXPLICIT_WINS}
    assert compare("train", ("--device", "cuda")) == set()


def test_the_real_clis_default_device_is_cpu() -> None:
    # DEVICE_DEFAULT: no flags at all mean 'cpu' to the real helper and 'auto' to the generated CLI.
    for real in real_clis():
        device = next(a for a in real.actions() if "--device" in a.option_strings)
        assert device.default == "cpu"
        args = real.parser().parse_args(real.required_argv())
        assert real_build(args, real.mode).accelerator == "cpu"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and no DeprecationWarning either
            assert cli.execution_config_from_args(generated_parser(real.name).parse_args([])).accelerator == "auto"
    assert REGISTRY.get("device").default is None


def test_auto_accelerator_is_resolved_by_lightning_not_by_the_config() -> None:
    # ACCELERATOR_AUTO: the real class resolves 'auto' when it is built; the generated one keeps it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert real_class()().accelerator in ("cpu", "cuda")
    assert GEN().accelerator == "auto"


def test_num_workers_zero_needs_the_worker_knobs_off() -> None:
    # The real CLIs default to --num-workers 0; the registry's rules then want the worker-only
    # knobs off too (its defaults: persistent_workers on, prefetch_factor 4).
    parser = generated_parser("train")
    with pytest.raises(ValueError, match="persistent_workers needs num_workers > 0"):
        cli.execution_config_from_args(parser.parse_args(["--num-workers", "0"]))
    full = cli.add_knob_arguments(argparse.ArgumentParser())
    config = cli.execution_config_from_args(full.parse_args(
        ["--num-workers", "0", "--no-persistent-workers", "--prefetch-factor", "none"]))
    assert config.num_workers == 0


def test_the_real_helper_builds_the_generated_class() -> None:
    """Swapping the import in shared.py: every keyword the real helper passes is accepted (no TypeError);
    only the documented values are refused, and past them every keyword lands on the right field."""
    hit: set[str] = set()
    for real in real_clis():
        keywords = helper_keywords(real.mode)
        assert all(hasattr(GEN(), k) for k in keywords), keywords
        parser, required = real.parser(), real.required_argv()
        for argv in [[], ["--quiet"], ["--device", "cuda"], ["--accelerator", "cpu"]]:
            args = parser.parse_args(required + argv)
            for _ in REAL_CODE_REJECTIONS:
                try:
                    ours = real_build(args, real.mode, GEN)
                    break
                except ValueError as exc:
                    reason = next((r for r in REAL_CODE_REJECTIONS if r in str(exc)), None)
                    assert reason is not None, exc
                    hit.add(reason)
                    REAL_CODE_REJECTIONS[reason][1](args)
            else:
                ours = real_build(args, real.mode, GEN)
            theirs = real_build(args, real.mode)
            for k in keywords:
                t = getattr(theirs, k)
                if k in KNOWN_SPELLINGS:
                    t = KNOWN_SPELLINGS[k][0](t)
                assert getattr(ours, k) == t, (real.name, argv, k)
    assert hit == set(REAL_CODE_REJECTIONS)


def test_every_literal_construction_in_ptycho_torch_builds_the_generated_class() -> None:
    """`PyTorchExecutionConfig(accelerator='cpu', num_workers=0, ...)` calls with literal keywords
    (the helper's non-literal ones are tested above): accepted, or refused for a documented reason."""
    calls = []
    for path in sorted((SNAPSHOT / "ptycho_torch").rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == REAL_CLASS \
                    and not node.args and all(isinstance(k.value, ast.Constant) and k.arg for k in node.keywords):
                calls.append((f"{path.relative_to(SNAPSHOT)}:{node.lineno}",
                              {k.arg: k.value.value for k in node.keywords}))  # type: ignore[attr-defined]
    assert calls
    for where, kwargs in calls:
        try:
            GEN(**kwargs)
        except ValueError as exc:
            assert any(reason in str(exc) for reason in REAL_CODE_REJECTIONS), (where, exc)


# -- the TF bridge ---------------------------------------------------------------------------

TF_CLASSES = ("TrainingConfig", "InferenceConfig")
CARRIED = [k for k in REGISTRY.settable() if k.tf is not None and k.tf.mapping is not TfMappingKind.COMPUTED]
REQUIRED = object()  # stands in for the TF fields without a default (model, model_path, ...)


def tf_fields(cls: str) -> dict[str, RealField]:
    return {f.name: f for f in real_fields(CONFIG, cls)}


def test_every_tf_mapping_names_a_real_tf_field() -> None:
    mapped = [k for k in REGISTRY.knobs if k.tf is not None]
    assert mapped
    for knob in mapped:
        assert knob.tf is not None
        assert knob.tf.class_name in TF_CLASSES, f"{knob.name}: {knob.tf.field} is not a TF canonical config"
        fields = tf_fields(knob.tf.class_name)
        assert knob.tf.attr in fields, f"{knob.name}: the real {knob.tf.class_name} has no field {knob.tf.attr}"
        real = fields[knob.tf.attr]
        if knob.tf.has_default:
            default = os.fspath(real.default) if isinstance(real.default, Path) else real.default
            assert default == knob.tf.default, f"{knob.name}: real TF default {real.default!r}"
        kind = knob.tf.mapping
        if kind is TfMappingKind.SAME:
            assert knob.tf.attr == knob.name
        elif kind is TfMappingKind.RENAMED:
            assert knob.tf.attr != knob.name
        elif kind is TfMappingKind.INVERTED:
            assert real.annotation == "bool" and str(knob.type) == "bool"
        if kind is TfMappingKind.COMPUTED:
            assert knob.name not in config_bridge.TF_FIELDS
        else:
            assert config_bridge.TF_FIELDS[knob.name] == (knob.tf.field, kind.value)
        if str(knob.type) == "path":
            assert real.annotation == "Path"


def test_the_real_bridge_maps_the_same_fields() -> None:
    """ptycho_torch/config_bridge.py builds the TF TrainingConfig from PyTorch values: where it reads a
    knob (`'nepochs': training.epochs`), the registry maps that knob to the same TF field."""
    tree = parse("ptycho_torch/config_bridge.py")
    checked = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Dict):
            continue
        for key, value in zip(node.keys, node.values, strict=True):
            if not isinstance(key, ast.Constant) or key.value not in tf_fields("TrainingConfig"):
                continue
            attrs = [n.attr for n in ast.walk(value) if isinstance(n, ast.Attribute)]
            knobs = [k for k in CARRIED if attrs and attrs[-1] in (k.name, *k.aliases)]
            for knob in knobs:
                assert knob.tf is not None and knob.tf.attr == key.value, (knob.name, key.value)
                checked += 1
    assert checked >= 3


def stand_in(cls: str) -> type:
    """A dataclass with the real TF class's field names and defaults, in order."""
    fields = [(f.name, Any, dataclasses.field(default=REQUIRED if f.default is dataclasses.MISSING else f.default))
              for f in real_fields(CONFIG, cls)]
    return dataclasses.make_dataclass(cls, fields)


BRIDGES = (config_bridge.to_pytorch_execution_config, config_bridge.to_training_knobs, config_bridge.to_datagen_knobs)


def tf_value(knob: Knob, value: Any) -> Any:
    assert knob.tf is not None
    if knob.tf.mapping is TfMappingKind.INVERTED:
        return not value
    return Path(value) if str(knob.type) == "path" else value


@pytest.mark.parametrize("cls", TF_CLASSES)
@SETTINGS
@given(data=st.data())
def test_tf_to_pytorch_to_tf_returns_the_input_on_the_real_fields(cls: str, data: st.DataObject) -> None:
    standin = stand_in(cls)
    present = [k for k in CARRIED if k.tf is not None and k.tf.attr in tf_fields(cls)]
    assert present
    values = {k.tf.attr: tf_value(k, data.draw(valid_values(k))) for k in present if k.tf is not None}
    tf = standin(**values)
    configs = [bridge(tf) for bridge in BRIDGES]
    carried = config_bridge.to_tf_training_fields(*configs)
    assert {a: carried[a] for a in values} == values
    assert config_bridge.update_tf_config(standin(), *configs) == tf


def test_the_real_tf_defaults_cross_the_bridge() -> None:
    tf = stand_in("TrainingConfig")()
    training = config_bridge.to_training_knobs(tf)
    for knob in CARRIED:
        assert knob.tf is not None
        if knob.home.value != "training":
            continue
        real = tf_fields("TrainingConfig")[knob.tf.attr].default
        if real is None:  # declared divergence: a None TF value keeps the PyTorch default
            assert knob.name in config_bridge.TF_DIVERGENCES
            assert getattr(training, knob.name) == knob.default
        else:
            assert tf_value(knob, getattr(training, knob.name)) == real
    # the round trip therefore changes exactly those fields
    back = config_bridge.update_tf_config(tf, training)
    changed = {f.name for f in dataclasses.fields(tf) if getattr(tf, f.name) != getattr(back, f.name)}
    assert changed == {k.tf.attr for k in CARRIED if k.tf and k.home.value == "training"
                       and tf_fields("TrainingConfig")[k.tf.attr].default is None}
