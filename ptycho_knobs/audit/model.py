"""The parity model: every statement the tree (and its spec) makes about each knob.

Built once per audit from the scanned files' statements. For each statement it decides which
knob, if any, it is about, in this order:
1. a registry source points at it (same file, same kind and identity), or
2. it is about a field of a known config class (the registry's `configs`, a class holding a
   registered field, or a dataclass with two or more knob-named fields), found through the
   receiver's type: `self` in the class, an annotated parameter, a local built from the class,
   or a conventional variable name (`configs[].vars`), and that field is a knob's; or
3. its name is a knob's name, catalog name, alias or field alias (inverted for an inverted
   alias).
Every knob then has `Layer`s: the registry's own default, and each statement with the value it
states in the knob's sense: inverted statements flipped, and a statement under the name of a
field alias with `values` (a field, keyword, attribute, key, flag dest or parameter called
`scheduler`) mapped through that table ('Default' -> 'default'; a value not in it as is).
The statement keeps what the code writes (`Layer.stmt.value`). Rules compare layers; `parity`
prints them; `discover` lists the statements no knob claims.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from ptycho_knobs.audit.findings import NOT_LITERAL, Arg, CallSite, DefFact, Stmt
from ptycho_knobs.audit.index import matches, normalise
from ptycho_knobs.audit.spec import SpecStmt
from ptycho_knobs.ktypes import FieldAlias, Knob, Source
from ptycho_knobs.typelang import Scalar, base_scalar

if TYPE_CHECKING:
    from ptycho_knobs.audit.rule import FileContext, ProjectContext

#: statement kinds that state a default (compared by the layer rule)
DEFAULTS = ("field", "flag", "env", "fallback", "construct", "param", "spec-field", "spec-flag")
#: a layer kind -> how messages name it
LABELS = {
    "registry": "the registry", "field": "field", "flag": "flag", "env": "environment default",
    "fallback": "fallback", "construct": "constructor argument", "param": "signature default",
    "spec-field": "spec", "spec-flag": "spec table", "check": "validation", "branch": "consumer",
    "assign": "assignment", "call": "call", "tf": "TF config",
}
_OPTIONAL = re.compile(r"\bOptional\b|\bNone\b|\|")
# A dataclass named like a settings holder is a config class even before the registry lists it
# (what `discover` needs on a tree the registry does not know yet).
_SETTINGS_CLASS = re.compile(r"(Config|Configuration|Settings|Options|Params|Hparams|HParams)$")


@dataclass(frozen=True)
class Layer:
    """One statement about one knob."""

    knob: Knob
    kind: str  # registry, a Stmt kind, spec-field / spec-flag, call
    path: str  # as shown
    line: int
    col: int
    value: Any  # the stated value in the knob's sense, or NOT_LITERAL
    label: str  # what states it: `PyTorchExecutionConfig.num_workers`, `--num-workers`, ...
    invert: bool = False
    registered: bool = False  # a registry source points at it
    stmt: Stmt | None = None
    spec: SpecStmt | None = None
    file: FileContext | None = None
    choices: tuple[Any, ...] | None = None  # offered (flag/Literal/spec) or accepted (check) values, knob sense
    primary: bool = True  # flags: the first add_argument of a dest sets its default
    alias: FieldAlias | None = None  # the `values` field alias its value and choices were mapped through

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def to_knob(self, value: Any) -> Any:
        """A value as this layer's statement writes it, in the knob's sense (for what rules read
        off `stmt` themselves: a check's bound, a branch's handled values)."""
        return self.alias.to_knob(value) if self.alias is not None else value

    def spelled(self, value: Any) -> Any:
        """A value in the knob's sense as this layer's statement would write it."""
        return self.alias.to_alias(value) if self.alias is not None else value

    @property
    def is_code(self) -> bool:
        return self.kind not in ("registry", "spec-field", "spec-flag")


@dataclass
class ClassInfo:
    file: FileContext
    name: str
    qualname: str
    defn: DefFact
    fields: dict[str, Stmt] = field(default_factory=dict)
    config: bool = False
    module: str = ""


@dataclass
class Model:
    project: ProjectContext
    layers: dict[str, list[Layer]] = field(default_factory=dict)  # knob name -> layers
    unclaimed: list[tuple[FileContext, Stmt]] = field(default_factory=list)
    classes: dict[str, list[ClassInfo]] = field(default_factory=dict)
    modules: dict[str, FileContext] = field(default_factory=dict)
    defs: dict[str, list[tuple[FileContext, DefFact]]] = field(default_factory=dict)  # short name -> defs
    inits: dict[str, list[tuple[FileContext, DefFact]]] = field(default_factory=dict)  # class -> its __init__
    undefined: list[tuple[FileContext, Stmt, ClassInfo]] = field(default_factory=list)  # reads of missing fields
    spec_shown: str = ""
    spec_stmts: list[SpecStmt] = field(default_factory=list)

    # -- building ------------------------------------------------------------------------

    @classmethod
    def build(cls, project: ProjectContext) -> Model:
        model = cls(project)
        registry = project.index.registry
        model.layers = {k.name: [] for k in registry.knobs}
        files = project.all_files
        for f in files:
            for module in _module_names(f.path, project.anchors):
                model.modules.setdefault(module, f)
        for f in files:
            for d in f.facts.defs:
                short = d.qualname.rsplit(".", 1)[-1]
                model.defs.setdefault(short, []).append((f, d))
                if short == "__init__" and "." in d.qualname:
                    model.inits.setdefault(d.qualname.rsplit(".", 2)[-2], []).append((f, d))
                if d.kind == "class":
                    info = ClassInfo(f, short, d.qualname, d)
                    model.classes.setdefault(short, []).append(info)
            for st in f.facts.stmts:
                if st.kind == "field":
                    for info in model.classes.get(st.owner, []):
                        if info.file is f and (info.qualname == st.scope or info.qualname.endswith("." + st.owner)
                                               or info.qualname == st.owner):
                            info.fields.setdefault(st.name, st)
        model._mark_configs()
        for knob in registry.knobs:
            model.layers[knob.name].append(Layer(knob, "registry", project.registry_shown, knob.position.line,
                                                 knob.position.col, knob.default, "the registry",
                                                 choices=_registry_choices(knob)))
        for f in files:
            model._file_layers(f)
        model._spec_layers()
        for knob_layers in model.layers.values():
            knob_layers.sort(key=lambda lay: (lay.kind != "registry", lay.path, lay.line, lay.col))
        return model

    def _mark_configs(self) -> None:
        registry = self.project.index.registry
        registered = {(s.field.split(".", 1)[0], s.file) for k in registry.knobs for s in k.sources if s.field}
        for infos in self.classes.values():
            for info in infos:
                named = any(c.name == info.name and matches(info.file.pure, c.file) for c in registry.configs)
                held = any(c == info.name and matches(info.file.pure, f) for c, f in registered)
                dataclass = "dataclass" in info.defn.decorators
                knobbish = dataclass and sum(1 for a in info.fields if registry.find_attr(a)) >= 2
                settings = dataclass and _SETTINGS_CLASS.search(info.name) is not None
                info.config = named or held or knobbish or settings
                info.module = next((m for m, f in self.modules.items() if f is info.file), "")

    # -- which knob a statement is about -------------------------------------------------

    def resolve_class(self, f: FileContext, name: str) -> ClassInfo | None:
        """The class `name` means in file `f`: its own, the one its imports name, or the only one."""
        infos = self.classes.get(name, [])
        if not infos:
            return None
        if len(infos) == 1:
            return infos[0]
        own = [i for i in infos if i.file is f]
        if own:
            return own[0]
        aliases = dict(f.facts.aliases)
        target = aliases.get(name)
        if target:
            module = target.rsplit(".", 1)[0].lstrip(".")
            for info in infos:
                if info.module == module or info.module.endswith("." + module) or module.endswith(info.module):
                    return info
        configs = [i for i in infos if i.config]
        return configs[0] if len(configs) == 1 else None

    def receiver_class(self, f: FileContext, scope: str, recv: str) -> ClassInfo | None:
        """The config class of the object `recv` names inside `scope`, when it can be known."""
        if not recv:
            return None
        registry = self.project.index.registry
        head = recv.split(".", 1)[0]
        if head in ("self", "cls") and recv in ("self", "cls"):
            cls_name = scope.split(".", 1)[0] if scope else ""
            info = next((i for i in self.classes.get(cls_name, []) if i.file is f), None)
            return info if info is not None and info.config else None
        last = recv.rsplit(".", 1)[-1]
        d = self._def(f, scope)
        if d is not None and "." not in recv:
            for name, _, annot, _ in d.params:
                if name == recv and annot:
                    for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", annot):
                        info = self.resolve_class(f, word)
                        if info is not None and info.config:
                            return info
            for name, callee, _ in d.locals:
                if name == recv:
                    info = self.resolve_class(f, callee)
                    if info is not None and info.config:
                        return info
        for config in registry.configs:
            if last in config.vars:
                found = [i for i in self.classes.get(config.name, []) if matches(i.file.pure, config.file)]
                if found:
                    return found[0]
        return None

    def _def(self, f: FileContext, scope: str) -> DefFact | None:
        parts = scope.split(".")
        while parts:
            qual = ".".join(parts)
            for d in f.facts.defs:
                if d.kind == "def" and d.qualname == qual:
                    return d
            parts.pop()
        return None

    def knob_of(self, f: FileContext, st: Stmt) -> tuple[Knob, bool, bool] | None:
        """(knob, inverted, registered) for a statement, or None when it is about no knob."""
        registry = self.project.index.registry
        hit = self.project.index.source_for(f.pure, st, f.facts.stmts)
        if hit is not None:
            knob, src = hit
            invert = src.invert or registry.find_attr(st.name) == (knob, True)
            return knob, invert, True
        kind = st.kind
        if kind == "field":
            info = self.resolve_class(f, st.owner)
            if info is None or not info.config:
                return self._by_tf(info, st)
            return self._attr(st.name) or self._by_tf(info, st)
        if kind == "flag":
            flags = st.owner.split(",")
            for knob in registry.knobs:
                if not knob.settable:
                    continue
                spellings = {knob.cli_flag, "--no-" + knob.cli_flag[2:], *(a.flag for a in knob.cli_aliases)}
                if spellings & set(flags):
                    negative = any(a.negative and a.flag in flags for a in knob.cli_aliases)
                    return knob, negative and False, False
            return self._attr(st.name)
        if kind == "env":
            for knob in registry.knobs:
                if any(s.env == st.name for s in knob.sources):
                    return knob, False, False
            return None
        if kind in ("fallback", "check", "branch", "assign"):
            info = self.receiver_class(f, st.scope, st.owner)
            if info is not None:
                if st.name not in info.fields:
                    if kind != "assign":
                        self.undefined.append((f, st, info))
                    return None
                field_st = info.fields[st.name]
                owner = self.knob_of(info.file, field_st)
                return owner if owner is not None else None
            if kind == "assign":
                return None  # `self.device = ...` on an object of unknown class says nothing of a knob
            if not config_like(st.owner):
                return None  # getattr(sampler, 'shuffle', ...) reads a sampler, not a setting
            return self._attr(st.name)
        if kind == "construct":
            info = self.resolve_class(f, st.owner)
            if info is None:
                return None
            field_st = info.fields.get(st.name)
            if field_st is not None:
                return self.knob_of(info.file, field_st)
            return self._attr(st.name) if info.config else None
        if kind == "param":
            return self._attr(st.name)
        return None

    def _attr(self, name: str) -> tuple[Knob, bool, bool] | None:
        got = self.project.index.registry.find_attr(name)
        if got is None:
            return None
        return got[0], got[1], False

    def _by_tf(self, info: ClassInfo | None, st: Stmt) -> tuple[Knob, bool, bool] | None:
        """A field of the TF canonical config, through a knob's `tf:` mapping."""
        for knob in self.project.index.registry.knobs:
            tf = knob.tf
            if tf is not None and tf.class_name == st.owner and tf.attr == st.name:
                return knob, tf.mapping.value == "inverted", False
        return None

    # -- layers ----------------------------------------------------------------------------

    def _file_layers(self, f: FileContext) -> None:
        seen_dests: set[str] = set()
        for st in f.facts.stmts:
            owner = self.knob_of(f, st)
            if owner is None:
                self.unclaimed.append((f, st))
                continue
            knob, invert, registered = owner
            primary = True
            if st.kind == "flag":
                primary = st.name not in seen_dests
                seen_dests.add(st.name)
            alias = knob.value_alias(st.name) if st.kind != "env" else None
            value, choices = self._knob_value(knob, st, invert, alias)
            self.layers[knob.name].append(Layer(
                knob, st.kind, f.shown, st.at.line, st.at.col, value, _label(st), invert, registered, st,
                file=f, choices=choices, primary=primary, alias=alias))
        for call in f.facts.calls:
            for arg in call.args:
                owner = self.project.index.owner(call.callee, arg.keyword, f.pure, call.at.line, call.at.end_line,
                                                 role=self.project.call_role(f, call))
                if owner is None:
                    continue
                value = arg.value
                if owner.invert and isinstance(value, bool):
                    value = not value
                src = owner.source
                here = src is not None and matches(f.pure, src.file) and (
                    arg.at.line <= src.line <= arg.at.end_line or src.line == call.at.line)
                self.layers[owner.knob.name].append(Layer(
                    owner.knob, "call", f.shown, arg.at.line, arg.at.col, value if arg.literal else NOT_LITERAL,
                    f"{call.callee}({arg.keyword}=)", owner.invert, here, file=f))

    def _knob_value(self, knob: Knob, st: Stmt, invert: bool,
                    alias: FieldAlias | None = None) -> tuple[Any, tuple[Any, ...] | None]:
        """The statement's value and choices in the knob's sense: inverted statements flipped,
        a `values` field alias's spellings mapped (`scheduler: str = 'Default'` is 'default').
        A cli alias's value map (`--scheduler Default`) is how *our* CLI reads the real
        spelling, not something the real code does, so a flag is mapped only through the field
        alias its dest is named after (argparse stores `--scheduler` in `args.scheduler`)."""
        value = st.value
        choices = st.choices
        if invert and isinstance(value, bool):
            value = not value
        if invert and choices is not None and all(isinstance(c, bool) for c in choices):
            choices = tuple(not c for c in choices)
        if alias is not None:
            if value is not NOT_LITERAL:
                value = alias.to_knob(value)
            if choices is not None:
                choices = tuple(alias.to_knob(c) for c in choices)
        if value is not NOT_LITERAL:
            value = normalise(knob, value)
        return value, choices

    def _spec_layers(self) -> None:
        registry = self.project.index.registry
        spec = self.project.spec
        if spec is None:
            return
        self.spec_shown, self.spec_stmts = spec
        for st in self.spec_stmts:
            if st.kind == "field":
                got = registry.find_attr(st.name)
                if got is None:
                    continue
                knob, invert = got
                alias = knob.value_alias(st.name)
                value, choices = self._spec_value(knob, st.value, st.choices, invert, alias)
                self.layers[knob.name].append(Layer(
                    knob, "spec-field", self.spec_shown, st.line, st.col, value, f"`{st.name}` bullet", invert,
                    registered=any(src.spec == st.name for src in knob.sources), spec=st, choices=choices,
                    alias=alias))
            elif st.kind == "flag":
                knob = self.knob_for_flags(st.name.split(" / "))
                if knob is None:
                    continue
                attr = st.config_field.rsplit(".", 1)[-1] if st.config_field else ""
                invert = bool(attr) and registry.find_attr(attr) == (knob, True)
                alias = knob.value_alias(attr) if attr else None
                if knob.cli_flag in st.name.split(" / "):
                    invert, alias = False, None  # the flag itself is the knob's own (--quiet), whatever the field
                value, _ = self._spec_value(knob, st.value, None, False, alias)
                flags = st.name.split(" / ")
                self.layers[knob.name].append(Layer(
                    knob, "spec-flag", self.spec_shown, st.line, st.col, value, f"`{flags[0]}` row",
                    registered=any(src.spec in flags for src in knob.sources), spec=st, alias=alias))

    @staticmethod
    def _spec_value(knob: Knob, value: Any, choices: tuple[Any, ...] | None, invert: bool,
                    alias: FieldAlias | None) -> tuple[Any, tuple[Any, ...] | None]:
        """A spec statement's default and choices in the knob's sense (see `_knob_value`)."""
        if invert and isinstance(value, bool):
            value = not value
        if alias is not None:
            value = alias.to_knob(value) if value is not NOT_LITERAL else value
            choices = tuple(alias.to_knob(c) for c in choices) if choices is not None else None
        return (normalise(knob, value) if value is not NOT_LITERAL else value), choices

    def knob_for_flags(self, flags: Iterable[str]) -> Knob | None:
        wanted = set(flags)
        for knob in self.project.index.registry.knobs:
            spellings = {knob.cli_flag, "--no-" + knob.cli_flag[2:], *(a.flag for a in knob.cli_aliases)}
            if spellings & wanted:
                return knob
        return None

    # -- queries -----------------------------------------------------------------------------

    def of(self, knob: str, *kinds: str) -> list[Layer]:
        return [lay for lay in self.layers.get(knob, []) if not kinds or lay.kind in kinds]

    def reads(self, attr: str) -> Iterator[tuple[FileContext, str]]:
        """(file, receiver) of every read of attribute or string `attr` in the audited tree."""
        for f in self.project.all_files:
            for name, recv in f.facts.loads:
                if name == attr:
                    yield f, recv


_CONFIG_WORDS = re.compile(r"(?i)conf|cfg|arg|opt|param|setting|override|hparam|kw")


def config_like(receiver: str) -> bool:
    """Whether an object of unknown class is named like one that holds settings (`config`,
    `args`, `self.training_cfg`, `overrides`, `params_dict`), so a read of a knob's name on it
    is taken to be that knob."""
    return bool(_CONFIG_WORDS.search(receiver.rsplit(".", 1)[-1]))


def _registry_choices(knob: Knob) -> tuple[Any, ...] | None:
    if knob.constraints.choices is not None:
        return knob.constraints.choices
    from ptycho_knobs.typelang import LiteralOf

    base = base_scalar(knob.type)
    if isinstance(base, LiteralOf):
        return tuple(base.values)
    if base == Scalar("bool"):
        return None
    return None


def _label(st: Stmt) -> str:
    kind = st.kind
    if kind == "field":
        return f"{st.owner}.{st.name}"
    if kind == "flag":
        return st.owner.split(",")[0]
    if kind == "fallback":
        if st.form == "getattr":
            return f"getattr({st.owner}, {st.name!r}, ...)"
        if st.form == "get":
            return f"{st.owner}.get({st.name!r}, ...)"
        return f"{st.owner}.{st.name} or ..."
    if kind == "env":
        return f"${st.name}"
    if kind == "construct":
        return f"{st.owner}({st.name}=...)"
    if kind == "param":
        return f"{st.owner}({st.name}=...)"
    if kind == "check":
        return f"check of {st.owner}.{st.name}" if st.owner else f"check of {st.name}"
    if kind == "branch":
        return f"branch on {st.owner}.{st.name}" if st.owner else f"branch on {st.name}"
    if kind == "assign":
        return f"{st.owner}.{st.name} = ..."
    return st.name


def is_optional(knob: Knob) -> bool:
    return _OPTIONAL.search(str(knob.type)) is not None


@functools.lru_cache(maxsize=4096)
def _module_parts(path: str, anchor: str) -> str:
    rel = os.path.relpath(path, anchor)
    if rel.startswith(".."):
        return ""
    parts = PurePath(rel).with_suffix("").parts
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _module_names(path: Path, anchors: Iterable[Path]) -> list[str]:
    out = []
    for anchor in anchors:
        name = _module_parts(str(path), str(anchor))
        if name:
            out.append(name)
    return out


def source_identity(src: Source) -> tuple[str, str]:
    """(statement kind, identity) a registry source points at, in the scanner's terms."""
    kind = src.kind
    mapping = {"field": "field", "flag": "flag", "env": "env", "param": "param", "read": "fallback",
               "check": "check", "assign": "assign", "branch": "branch"}
    if kind in mapping:
        return mapping[kind], getattr(src, kind)
    return kind, ""


# -- wrappers and reachability: project-wide facts the rules share -----------------------------


@dataclass(frozen=True)
class WrapperParam:
    """A parameter of an in-tree callable that is passed on, unchanged, to a watched call's
    keyword a knob owns: calls to the wrapper with a literal there hard-code that knob."""

    knob: Knob
    invert: bool
    callee: str  # the watched call it reaches, e.g. seed_everything
    keyword: str
    file: FileContext
    line: int  # the watched call inside the wrapper


def wrappers(model: Model) -> dict[str, dict[str, WrapperParam]]:
    """short callable name -> {parameter -> WrapperParam} (computed once per model)."""
    cached = model.__dict__.get("_wrappers")
    if cached is None:
        cached = model.__dict__["_wrappers"] = _wrappers(model)
    return cached


def wrapped_arguments(model: Model, files: Iterable[FileContext]) -> Iterator[tuple[FileContext, CallSite, Arg, str, WrapperParam]]:
    """Each argument a call in `files` gives a wrapper parameter that reaches a knob's keyword,
    with the parameter's name (positionals resolved through the wrapper's signature)."""
    wrapped = wrappers(model)
    for f in files:
        for site in f.facts.sites:
            params = wrapped.get(site.func)
            if not params:
                continue
            names = param_names(model, site.func)
            for arg in site.args:
                name = arg.keyword
                if name.startswith("#") and int(name[1:]) < len(names):
                    name = names[int(name[1:])]
                wrap = params.get(name)
                if wrap is not None:
                    yield f, site, arg, name, wrap


def param_names(model: Model, func: str) -> tuple[str, ...]:
    """The parameters of in-tree callable `func` (a function, or a class by its __init__), self aside."""
    for _, d in model.defs.get(func, []):
        if d.kind == "def":
            return tuple(p[0] for p in d.params if p[0] not in ("self", "cls"))
    for _, d in model.defs.get("__init__", []):
        if d.qualname.endswith(f"{func}.__init__"):
            return tuple(p[0] for p in d.params if p[0] not in ("self", "cls"))
    return ()


def _wrappers(model: Model) -> dict[str, dict[str, WrapperParam]]:
    index = model.project.index
    positional = {c.name: c.positional for c in index.registry.callees}
    direct: dict[str, dict[str, WrapperParam]] = {}
    flows: list[tuple[str, FileContext, DefFact, str, str, str, int]] = []
    for f in model.project.all_files:
        lines = {(s.func, s.at.line) for s in f.facts.sites}
        for d in f.facts.defs:
            if d.kind != "def" or not d.flows:
                continue
            short = d.qualname.rsplit(".", 1)[-1]
            if short == "__init__":
                short = d.qualname.rsplit(".", 2)[-2] if "." in d.qualname else short
            params = [p[0] for p in d.params if p[0] not in ("self", "cls")]
            for param, callee, keyword in d.flows:
                if param not in params:
                    continue
                line = next((ln for fn, ln in sorted(lines) if fn == callee and d.at.line <= ln <= d.at.end_line), d.at.line)
                flows.append((short, f, d, param, callee, keyword, line))
    for short, f, _, param, callee, keyword, line in flows:
        if keyword.startswith("#"):
            i = int(keyword[1:])
            names = positional.get(callee, ())
            if i >= len(names):
                continue
            keyword = names[i]
        owner = index.owner(callee, keyword, f.pure, line, line)
        if owner is None or not owner.knob.settable and owner.knob.home.value != "implicit":
            continue
        direct.setdefault(short, {})[param] = WrapperParam(owner.knob, owner.invert, callee, keyword, f, line)
    return direct


def absolute(name: str, f: FileContext, model: Model) -> list[str]:
    """The absolute module names a (possibly relative) import in file `f` means."""
    if not name.startswith("."):
        return [name]
    level = len(name) - len(name.lstrip("."))
    rest = name.lstrip(".")
    out = []
    for m in (m for m, g in model.modules.items() if g is f):
        parts = m.split(".")
        pkg = parts if f.path.name == "__init__.py" else parts[:-1]
        pkg = pkg[: len(pkg) - (level - 1)] if level > 1 else pkg
        out.append(".".join([*pkg, rest]) if rest else ".".join(pkg))
    return out


def reachable_modules(model: Model) -> set[str]:
    """Modules of the audited tree that something imports, or that run as entry points."""
    imported: set[str] = set()
    for f in model.project.all_files:
        for name in f.facts.imports:
            imported.update(absolute(name, f, model))
    out = set()
    for module, f in model.modules.items():
        if f.facts.entry or f.path.name in ("__init__.py", "__main__.py") or module in imported:
            out.add(module)
    return out


def referenced(model: Model, f: FileContext, name: str) -> bool:
    """Whether a top-level function or class `name` of file `f` is used anywhere: in its own
    file, through a `from module import name`, or as `module.name` after `import module`."""
    if name in {s.func for s in f.facts.sites} or any(n == name for n, _ in f.facts.loads):
        return True
    mods = {m for m, g in model.modules.items() if g is f}
    for g in model.project.all_files:
        for local, target in g.facts.aliases:
            head, _, last = target.rpartition(".")
            if last == name and any(m in mods for m in absolute(head, g, model)):
                return True
            if any(m in mods for m in absolute(target, g, model)) and (name, local) in g.facts.loads:
                return True
    return False


def unreachable_note(model: Model, f: FileContext, scope: str) -> str:
    """' (in a module nothing imports)' and the like, for findings in code nothing reaches."""
    if len(model.project.files) < 2:
        return ""  # one file is its own program: nothing to be reached from
    cache = model.__dict__.setdefault("_reach", {})
    if "modules" not in cache:
        cache["modules"] = reachable_modules(model)
    mods = [m for m, g in model.modules.items() if g is f]
    if f in model.project.files and mods and not any(m in cache["modules"] for m in mods):
        return f" (in {f.shown}, which nothing in the audited tree imports)"
    top = scope.split(".", 1)[0] if scope else ""
    if top and not top.startswith("__"):
        key = (id(f), top)
        if key not in cache:
            cache[key] = referenced(model, f, top)
        if not cache[key]:
            return f" (in {top}, which nothing in the tree calls or imports)"
    return ""


def carrier(model: Model, knob: Knob) -> Layer | None:
    """The config class field that carries `knob` in the tree (the one a call site should read):
    a field layer in a config class, preferring the knob's generated home class name, then a
    class the registry lists in `configs`, then any; None when no config class has it. A field
    named after a `values` field alias holds another spelling of the value, so it is none."""
    fields = [lay for lay in model.of(knob.name, "field")
              if lay.stmt is not None and lay.file is not None and lay.alias is None]
    if not fields:
        return None
    listed = {(c.name, c.file) for c in model.project.index.registry.configs}
    home = knob.home.class_name

    def rank(lay: Layer) -> tuple[bool, bool, bool, str, int]:
        st = lay.stmt
        assert st is not None and lay.file is not None
        in_configs = any(name == st.owner and matches(lay.file.pure, file) for name, file in listed)
        return (st.owner != home, st.name != knob.name, not in_configs, lay.path, lay.line)

    return min(fields, key=rank)
