"""`ptycho-knobs discover PATH`: the knobs a tree states that the registry lacks, as registry YAML.

It reads the tree exactly as `audit` does (the same scanner and model) and proposes a knob for
every declaration no registry knob claims: a field of a config class, an argparse flag, a
literal keyword of a watched call, an environment read. Statements with the same name (a
field, its flag, the getattr fallbacks that read it) become one knob with every place as a
source. Type and default come from the code; category and home are guessed from where the
knob is declared and used; the purpose is a placeholder a human must write. With
`--sources`, it lists instead, per registry knob, the statements the registry's sources do not
yet point at (to paste under that knob's `sources:`).

The YAML is written by hand (flow mappings, JSON-quoted strings) so it pastes into a
registry that keeps its comments.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ptycho_knobs.audit.findings import NOT_LITERAL, Stmt
from ptycho_knobs.audit.model import Layer, Model
from ptycho_knobs.audit.rule import FileContext, ProjectContext

_WATCH_CATEGORY = {"Trainer": "lightning_trainer", "DDPStrategy": "distributed", "DataLoader": "data_loading",
                   "EarlyStopping": "checkpointing", "ModelCheckpoint": "checkpointing", "MLFlowLogger": "mlflow",
                   "seed_everything": "reproducibility"}
_CLASS_WORDS = (("execution", "execution", "lightning_trainer"), ("datagen", "datagen", "datagen"),
                ("inference", "execution", "inference"), ("training", "training", "optimization"),
                ("model", "model", "architecture"), ("data", "datagen", "data_loading"))
_SIMPLE = {"int": "int", "float": "float", "bool": "bool", "str": "str", "Path": "path", "pathlib.Path": "path"}
_RESERVED = {"help", "self", "version"}
_SOURCE_KEY = {"field": "field", "flag": "flag", "env": "env", "param": "param", "fallback": "read",
               "check": "check", "branch": "branch", "assign": "assign", "construct": "assign"}


@dataclass
class Candidate:
    name: str
    type: str = ""
    default: Any = NOT_LITERAL
    category: str = "workflow"
    home: str = "execution"
    where: str = ""
    target: str = ""
    sources: list[str] = field(default_factory=list)
    declared: bool = False


def type_of(annotation: str, value: Any) -> str | None:
    """The registry type for a Python annotation (or, without one, a default), or None."""
    text = annotation.replace("typing.", "").replace(" ", "")
    if text in _SIMPLE:
        return _SIMPLE[text]
    m = re.fullmatch(r"Optional\[(.+)\]|Union\[(.+),None\]|(.+)\|None", text)
    if m:
        inner = type_of(next(g for g in m.groups() if g), NOT_LITERAL)
        return f"Optional[{inner}]" if inner and not inner.startswith("Optional") else None
    m = re.fullmatch(r"Literal\[(.+)\]", text)
    if m:
        members = _literal_members(m.group(1))
        if members is None or not [v for v in members if v is not None]:
            return None
        body = "Literal[" + ", ".join(repr(v) for v in members if v is not None) + "]"
        return f"Optional[{body}]" if None in members else body
    if not text:
        for kind, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
            if isinstance(value, kind):
                return name
    return None


def _literal_members(body: str) -> tuple[Any, ...] | None:
    """The members of `Literal[<body>]` when each is a str, int, bool or None constant."""
    try:
        members = ast.literal_eval(f"({body},)")
    except (ValueError, SyntaxError):
        return None
    ok = all(m is None or type(m) in (str, int, bool) for m in members)
    return tuple(members) if ok else None


def _fits(kind: str, value: Any) -> Any:
    """`value` as the registry type `kind` holds it, or NOT_LITERAL."""
    base = kind[9:-1] if kind.startswith("Optional[") else kind
    if value is None:
        return None if kind.startswith("Optional[") else NOT_LITERAL
    if base == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base == "bool" and isinstance(value, bool):
        return value
    if base in ("str", "path") and isinstance(value, str):
        return value
    if base == "float" and isinstance(value, float):
        return value
    if base.startswith("Literal["):
        members = _literal_members(base[8:-1]) or ()
        if any(type(value) is type(m) and value == m for m in members):
            return value
    return NOT_LITERAL


def _guess(cls: str) -> tuple[str, str]:
    low = cls.lower()
    for word, home, category in _CLASS_WORDS:
        if word in low:
            return home, category
    return "execution", "workflow"


def _source(f: FileContext, st: Stmt) -> str:
    key = _SOURCE_KEY.get(st.kind)
    if key is None:
        return ""
    if st.kind == "field":
        ident = f"{st.owner}.{st.name}"
    elif st.kind == "flag":
        ident = next((x for x in st.owner.split(",") if x.startswith("--")), st.owner.split(",")[0])
    elif st.kind == "param":
        ident = f"{st.owner.removesuffix('.__init__')}.{st.name}"
    else:
        ident = st.name
    return "{" + f"file: {_rel(f)}, line: {st.at.line}, {key}: {json.dumps(ident)}" + "}"


def _rel(f: FileContext) -> str:
    """The file as a registry source names it: relative to the registry's folder when it is
    below it, else relative to the audited root's parent (where `audit` resolves it too)."""
    import os

    registry_dir = f.index.registry.path.resolve().parent
    path = f.path.resolve()
    for anchor in (registry_dir, *(p.parent for p in _ROOTS)):
        rel = os.path.relpath(path, anchor)
        if not rel.startswith(".."):
            return json.dumps(rel.replace(os.sep, "/"))
    return json.dumps(f.shown)


_ROOTS: list[Any] = []  # the audited roots of the current run (set by `candidates`)


def candidates(project: ProjectContext) -> tuple[list[Candidate], list[str]]:
    """(the knobs to propose, comments on what was skipped and why)."""
    model = project.model
    registry = project.index.registry
    _ROOTS[:] = project.roots
    found: dict[str, Candidate] = {}
    skipped: list[str] = []
    order: list[tuple[FileContext, Stmt]] = sorted(model.unclaimed, key=lambda fs: (fs[1].kind != "field", fs[1].kind != "flag",
                                                                                    fs[0].shown, fs[1].at.line))
    classes: dict[str, str] = {}  # knob name -> the class its field came from
    for f, st in order:
        if st.kind == "field":
            info = model.resolve_class(f, st.owner)
            if info is None or not info.config or st.form == "required":
                continue
            name = st.name
            if name in found and classes.get(name) not in (None, st.owner):
                name = _snake(st.owner) + "_" + st.name
            kind = type_of(st.annot, st.value)
            value = _fits(kind, st.value) if kind else NOT_LITERAL
            if kind is None or value is NOT_LITERAL:
                where = f"{st.owner}.{st.name} at {f.shown}:{st.at.line}"
                if st.value is NOT_LITERAL:
                    why = f"its default is computed, not a literal (type {st.annot or '?'})"
                elif kind is None:
                    why = f"type {st.annot or '?'} is not in the registry's type language (default {st.value!r})"
                else:
                    why = f"default {st.value!r} does not fit type {st.annot or '?'}"
                skipped.append(f"{where}: {why}")
                continue
            home, category = _guess(st.owner)
            cand = found.setdefault(name, Candidate(name, kind, value, category, home, f"{f.shown}:{st.at.line}"))
            classes.setdefault(name, st.owner)
            cand.declared = True
            cand.sources.append(_source(f, st))
        elif st.kind == "flag":
            name = st.name
            kind = "bool" if st.form in ("store_true", "store_false") else _SIMPLE.get(st.annot) or type_of("", st.value)
            if st.choices and all(isinstance(c, str) for c in st.choices):
                kind = "Literal[" + ", ".join(f"'{c}'" for c in st.choices) + "]"
            if kind and st.value is None and st.form not in ("store_true", "store_false"):
                kind = f"Optional[{kind}]"
            value = _fits(kind, st.value) if kind else NOT_LITERAL
            if name in found:
                found[name].sources.append(_source(f, st))
                continue
            if kind is None or value is NOT_LITERAL:
                skipped.append(f"{st.owner.split(',')[0]} at {f.shown}:{st.at.line}: type or default not readable")
                continue
            cand = Candidate(name, kind, value, "workflow", "execution", f"{f.shown}:{st.at.line}")
            cand.declared = True
            cand.sources.append(_source(f, st))
            found[name] = cand
        elif st.kind == "env":
            name = st.name.lower()
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
                continue
            kind = "str" if st.value is NOT_LITERAL else type_of("", st.value) or "str"
            value = st.value if st.value is not NOT_LITERAL else ""
            value = str(value) if kind == "str" else value
            cand = found.setdefault(name, Candidate(name, kind, value, "distributed", "env", f"{f.shown}:{st.at.line}"))
            cand.declared = True
            cand.sources.append("{" + f"file: {_rel(f)}, line: {st.at.line}, env: {json.dumps(st.name)}" + "}")
    for f, st in order:  # reads of a proposed knob's name become its sources too
        if st.kind in ("fallback", "check", "branch", "assign", "construct", "param") and st.name in found:
            src = _source(f, st)
            if src and src not in found[st.name].sources:
                found[st.name].sources.append(src)
    for f in project.files:  # literal keywords of watched calls no knob owns
        for call in f.facts.calls:
            for arg in call.args:
                if not arg.literal or project.index.owners.get((call.callee, arg.keyword)):
                    continue
                from ptycho_knobs.audit.index import STRUCTURAL_KEYWORDS

                if arg.keyword in STRUCTURAL_KEYWORDS:
                    continue
                name = arg.keyword if arg.keyword not in found or found[arg.keyword].target in ("", f"{call.callee}.{arg.keyword}") \
                    else _snake(call.callee) + "_" + arg.keyword
                kind = type_of("", arg.value)
                if kind is None:
                    continue
                cand = found.setdefault(name, Candidate(name, kind, arg.value, _WATCH_CATEGORY.get(call.callee, "workflow"),
                                                        "execution", f"{f.shown}:{arg.at.line}"))
                cand.declared = True
                cand.target = cand.target or f"{call.callee}.{arg.keyword}"
                if cand.category == "workflow":
                    cand.category = _WATCH_CATEGORY.get(call.callee, "workflow")
                src = "{" + f"file: {_rel(f)}, line: {arg.at.line}, callee: {call.callee}, keyword: {arg.keyword}" + "}"
                if src not in cand.sources:
                    cand.sources.append(src)
    taken = {n for k in registry.knobs for n in (*k.names, *k.attr_names)}
    out = [c for c in found.values() if c.declared and c.name not in taken and c.name not in _RESERVED
           and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c.name) and not c.name.startswith("__")]
    out = _unique_flags(out, registry)
    return out, skipped


def _unique_flags(cands: list[Candidate], registry: Any) -> list[Candidate]:
    """Drop candidates whose derived flag (`--name`, `--no-name`) another knob already uses."""
    used = set()
    for k in registry.knobs:
        if k.settable:
            used.update({k.cli_flag, "--no-" + k.cli_flag[2:], *(a.flag for a in k.cli_aliases)})
    out = []
    for c in cands:
        flag = "--" + c.name.lower().replace("_", "-")
        mine = {flag, "--no-" + flag[2:]} if c.type == "bool" else {flag}
        if c.home != "env" and mine & used:
            continue
        used |= mine if c.home != "env" else set()
        out.append(c)
    return out


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def render(cands: list[Candidate], skipped: list[str], command: str) -> str:
    lines = [f"# {command}: {len(cands)} knob(s) the registry lacks.",
             "# Review each one: write its purpose, check category and home, then paste under `knobs:`."]
    for note in skipped:
        lines.append(f"# skipped {note}")
    lines.append("knobs:")
    for c in cands:
        lines += [f"  - name: {c.name}", "    beyond_catalog: true", f"    category: {c.category}",
                  f"    home: {c.home}", f"    type: {json.dumps(c.type)}", f"    default: {_yaml_value(c.default)}",
                  f"    purpose: {json.dumps(f'TODO(human): what {c.name} controls (discovered at {c.where})')}"]
        if c.sources:
            lines.append("    sources:")
            lines += [f"      - {s}" for s in c.sources if s]
        if c.target and c.home != "env":
            lines.append(f"    target: {c.target}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


BY_NAME = "# "
"""Marks a proposed source matched by name alone (a parameter called `device`): printed commented out."""


def missing_sources(project: ProjectContext) -> dict[str, list[str]]:
    """Registry knob -> source lines for the statements its sources do not point at yet. A
    signature default is tied to a knob by the parameter's name only (`Collate(device=None)`
    is a torch device, not the accelerator), so those lines start with BY_NAME: the user decides."""
    model: Model = project.model
    _ROOTS[:] = project.roots
    out: dict[str, list[str]] = {}
    for knob in project.index.registry.knobs:
        for lay in model.of(knob.name):
            if lay.registered or lay.kind == "registry":
                continue
            src = _spec_source(project, lay) if lay.spec is not None else _layer_source(lay) if lay.file else ""
            if src and lay.kind == "param":
                src = BY_NAME + src
            if src and src not in out.get(knob.name, []):
                out.setdefault(knob.name, []).append(src)
    return out


def _spec_source(project: ProjectContext, lay: Layer) -> str:
    import os

    registry_dir = project.index.registry.path.resolve().parent
    spec = project.index.registry.spec
    path = spec.file if spec is not None else lay.path
    if spec is not None:
        for anchor in project.anchors:
            if (anchor / spec.file).is_file():
                rel = os.path.relpath((anchor / spec.file).resolve(), registry_dir)
                path = spec.file if rel.startswith("..") else rel.replace(os.sep, "/")
                break
    assert lay.spec is not None
    name = lay.spec.name.split(" / ")[0]
    return "{" + f"file: {json.dumps(path)}, line: {lay.line}, spec: {json.dumps(name)}" + "}"


def _layer_source(lay: Layer) -> str:
    assert lay.file is not None
    if lay.kind == "call":
        callee, kw = lay.label[:-2].split("(", 1)
        return "{" + f"file: {_rel(lay.file)}, line: {lay.line}, callee: {callee}, keyword: {kw}" + "}"
    if lay.stmt is None:
        return ""
    src = _source(lay.file, lay.stmt)
    if src and lay.invert and lay.stmt.kind != "flag":
        src = src[:-1] + ", invert: true}"
    return src


def source_counts(found: dict[str, list[str]]) -> tuple[int, int, int]:
    """(sure sources, knobs with one, sources matched by parameter name only)."""
    sure = {k: [s for s in v if not s.startswith(BY_NAME)] for k, v in found.items()}
    weak = sum(1 for v in found.values() for s in v if s.startswith(BY_NAME))
    return sum(map(len, sure.values())), sum(1 for v in sure.values() if v), weak


def render_sources(found: dict[str, list[str]], command: str) -> str:
    sure, knobs, weak = source_counts(found)
    lines = [f"# {command}: sources the registry's knobs do not point at yet ({sure} in "
             f"{knobs} knobs). Paste each list under that knob's `sources:`."]
    if weak:
        lines.append(f"# {weak} parameter(s) only share a knob's name; they are commented out: uncomment the ones "
                     "that really take the knob.")
    for name, sources in found.items():
        lines.append(f"{name}:")
        lines += [f"  # - {s[len(BY_NAME):]}" if s.startswith(BY_NAME) else f"  - {s}" for s in sources]
    return "\n".join(lines) + "\n"


def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        if text in ("inf", "-inf", "nan"):
            return {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}[text]
        if "e" in text:  # YAML 1.1 reads 1e-05 as a string; 1.0e-05 is a float
            mantissa, exp = text.split("e")
            return f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exp if exp[0] in '+-' else '+' + exp}"
        return text
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)
