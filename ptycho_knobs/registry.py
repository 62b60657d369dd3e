"""Strict loading of `knob_registry.yaml` into a frozen `Registry`.

Loading is the only place YAML is read: codegen, audit and the harness take the
`Registry` object. Every problem is a `RegistryError` at the exact file:line:col.
"""

from __future__ import annotations

import difflib
import hashlib
import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptycho_knobs import yamlpos
from ptycho_knobs.errors import RegistryError
from ptycho_knobs.ktypes import (
    SOURCE_KINDS,
    Callee,
    Category,
    CliAlias,
    CliEntry,
    Condition,
    ConfigClass,
    Constraints,
    Deprecation,
    FieldAlias,
    Home,
    Knob,
    Position,
    Rule,
    Source,
    SpecConfig,
    SpecSection,
    Target,
    TfMapping,
    TfMappingKind,
)
from ptycho_knobs.locate import REGISTRY_FILENAME, find_registry  # noqa: F401  (re-exported)
from ptycho_knobs.typelang import (
    Scalar,
    TypeParseError,
    base_scalar,
    coerce_text,
    coerce_yaml,
    describe_mismatch,
    parse_type,
)
from ptycho_knobs.yamlpos import Entry, Node

SCHEMA_VERSION = 1

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
_TF_FIELD = re.compile(r"^[A-Z][A-Za-z0-9_]*\.[a-z_][A-Za-z0-9_]*$")
_FLAG = re.compile(r"^--[a-z0-9][a-z0-9-]*$")
_ANY_FLAG = re.compile(r"^--?[A-Za-z0-9][A-Za-z0-9_-]*$")  # a real parser's spelling: --disable_mlflow
_QUALNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_CONDITION = re.compile(r"^\s*(?:(not)\s+)?([A-Za-z_]\w*)\s*(?:(==|!=|<=|>=|<|>|is not|is)\s*(.+?))?\s*$")

# Names a generated dataclass field cannot take: `self` shadows __post_init__'s argument.
_RESERVED_NAMES = {"self"}
_TOP_FIELDS = {"schema_version", "output_dir", "callees", "knobs", "configs", "clis", "spec"}
_KNOB_FIELDS = {
    "name", "category", "type", "default", "purpose", "home", "catalog_name", "aliases",
    "parity_notes", "home_note", "sources", "tf", "target", "constraints", "rules", "cli",
    "beyond_catalog", "absent", "field_aliases", "cli_aliases", "deprecated", "clis", "role",
}
_KNOB_REQUIRED = ("name", "category", "type", "default", "purpose", "home")
_SOURCE_FIELDS = {"file", "line", "keyword", "invert", "note", *SOURCE_KINDS}
_TF_FIELDS = {"field", "mapping", "default", "divergence"}
_CONSTRAINT_FIELDS = {"choices", "min", "max", "exclusive_min", "exclusive_max"}
_RULE_FIELDS = {"when", "require", "message"}
_CALLEE_FIELDS = {"qualified", "positional"}


@dataclass(frozen=True)
class Registry:
    """Every knob, indexed by name and alias. Build it with `load_registry`."""

    path: Path
    sha256: str
    output_dir: Path
    knobs: tuple[Knob, ...]
    callees: tuple[Callee, ...]
    configs: tuple[ConfigClass, ...] = ()
    clis: tuple[CliEntry, ...] = ()
    spec: SpecConfig | None = None
    _index: dict[str, Knob] = field(repr=False, compare=False, default_factory=dict)
    _attrs: dict[str, tuple[Knob, bool]] = field(repr=False, compare=False, default_factory=dict)

    def find(self, name: str) -> Knob | None:
        """The knob answering to `name` (its name, catalog name or an alias)."""
        return self._index.get(name)

    def find_attr(self, name: str) -> tuple[Knob, bool] | None:
        """(knob, inverted) for an attribute name code may use: a knob's name, catalog name,
        alias or field alias; `inverted` when that name holds the knob's opposite."""
        return self._attrs.get(name)

    def get(self, name: str) -> Knob:
        knob = self.find(name)
        if knob is None:
            raise KeyError(name)
        return knob

    def suggest(self, name: str, n: int = 3) -> list[str]:
        """The nearest known names, for did-you-mean messages: one per knob, as the user spelled it
        (`nepochs` for `nepoch`, not also `max_epochs`, the knob it is an alias of)."""
        out: list[str] = []
        seen: set[str] = set()
        for match in difflib.get_close_matches(name, list(self._index), n=len(self._index), cutoff=0.6):
            knob = self._index[match].name
            if knob not in seen:
                seen.add(knob)
                out.append(match)
        return out[:n]

    def settable(self) -> tuple[Knob, ...]:
        return tuple(k for k in self.knobs if k.settable)

    def by_home(self, home: Home) -> tuple[Knob, ...]:
        return tuple(k for k in self.knobs if k.home is home)

    def by_category(self, category: Category) -> tuple[Knob, ...]:
        return tuple(k for k in self.knobs if k.category is category)

    def callee(self, name: str) -> Callee | None:
        return next((c for c in self.callees if c.name == name), None)


def load_registry(path: str | Path) -> Registry:
    """Load and validate a registry; raises `RegistryError` naming file:line:col."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RegistryError(path, 1, 1, f"cannot read registry: {exc.strerror}") from None
    with yamlpos.gc_paused():
        root = yamlpos.load(path, RegistryError)
        return _Loader(path, hashlib.sha256(raw).hexdigest()).build(root)


class _Loader:
    def __init__(self, path: Path, sha256: str) -> None:
        self.path = path
        self.sha256 = sha256

    def fail(self, at: Node | Entry | Position, message: str, hint: str | None = None) -> RegistryError:
        if isinstance(at, Entry):
            line, col = at.key_line, at.key_col
        else:
            line, col = at.line, at.col
        return RegistryError(self.path, line, col, message, hint)

    # -- structure helpers -------------------------------------------------------------

    def mapping(self, node: Node, allowed: set[str], what: str) -> dict[str, Entry]:
        if not node.is_map:
            raise self.fail(node, f"{what} must be a mapping")
        for key, entry in node.value.items():
            if key not in allowed:
                near = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f"did you mean {near[0]!r}?" if near else f"allowed: {', '.join(sorted(allowed))}"
                raise self.fail(entry, f"unknown field {key!r} in {what}", hint)
        return node.value

    def scalar(self, entries: dict[str, Entry], key: str, kind: type | tuple[type, ...], what: str,
               required: bool = False, at: Node | None = None) -> Any:
        entry = entries.get(key)
        if entry is None:
            if required:
                assert at is not None
                raise self.fail(at, f"{what} is missing required field {key!r}")
            return None
        value = entry.node.value
        if value is None and not required:
            return None
        if not isinstance(value, kind) or isinstance(value, bool) and bool not in _as_tuple(kind):
            expected = " or ".join(t.__name__ for t in _as_tuple(kind))
            raise self.fail(entry.node, f"{what}.{key} must be {expected}, got {value!r}")
        return value

    # -- top level ---------------------------------------------------------------------

    def build(self, root: Node | None) -> Registry:
        if root is None:
            raise RegistryError(self.path, 1, 1, "registry is empty", "start from the header of the shipped knob_registry.yaml")
        top = self.mapping(root, _TOP_FIELDS, "the registry")
        version = self.scalar(top, "schema_version", int, "the registry", required=True, at=root)
        if version != SCHEMA_VERSION:
            raise self.fail(top["schema_version"].node, f"schema_version {version} is not supported (this tool reads {SCHEMA_VERSION})")
        out = self.scalar(top, "output_dir", str, "the registry") or "generated"
        # Confined to the registry's folder tree: generate must never write over the
        # repository's root, a parent folder or anything outside it.
        out_path = Path(out)
        if out_path.is_absolute() or ".." in out_path.parts or not out_path.parts or "\0" in out:
            raise self.fail(top["output_dir"].node,
                            f"output_dir {out!r} must be a relative path to a sub-folder of the registry's folder",
                            "e.g. output_dir: generated (no absolute path, no '..', not '.')")
        base = self.path.parent.resolve()
        if not (base / out_path).resolve().is_relative_to(base) or (base / out_path).resolve() == base:
            raise self.fail(top["output_dir"].node,
                            f"output_dir {out!r} leads out of the registry's folder (through a symbolic link)",
                            "point output_dir at a real sub-folder of the registry's folder")
        callees = self.callees(top.get("callees"))
        knobs_entry = top.get("knobs")
        if knobs_entry is None or not knobs_entry.node.is_list:
            raise self.fail(knobs_entry.node if knobs_entry else root, "the registry needs a `knobs:` list",
                            "`knobs: []` is a valid start; `ptycho-knobs discover PATH` proposes entries")
        clis = self.clis(top.get("clis"))
        self.cli_names = {c.name for c in clis}
        knobs = [self.knob(n) for n in knobs_entry.node.value]
        index = self.index(knobs, knobs_entry.node.value)
        for knob, node in zip(knobs, knobs_entry.node.value, strict=True):
            self.check_rules(knob, node, index)
            self.check_deprecation(knob, node, index)
        self.check_flags(knobs, knobs_entry.node.value)
        attrs = self.attrs(knobs, knobs_entry.node.value, index)
        return Registry(
            path=self.path,
            sha256=self.sha256,
            output_dir=(self.path.parent / out),
            knobs=tuple(knobs),
            callees=callees,
            configs=self.configs(top.get("configs")),
            clis=clis,
            spec=self.spec(top.get("spec")),
            _index=index,
            _attrs=attrs,
        )

    def configs(self, entry: Entry | None) -> tuple[ConfigClass, ...]:
        if entry is None or entry.node.value is None:
            return ()
        if not entry.node.is_list:
            raise self.fail(entry.node, "configs must be a list of {class, file, vars}")
        out = []
        for node in entry.node.value:
            c = self.mapping(node, {"class", "file", "vars"}, "a config class")
            name = self.scalar(c, "class", str, "a config class", required=True, at=node)
            if not _NAME.match(name):
                raise self.fail(c["class"].node, f"config class {name!r} must be an identifier")
            file = self.scalar(c, "file", str, f"config class {name}", required=True, at=node)
            out.append(ConfigClass(name, file, tuple(self.str_list(c.get("vars"), f"config class {name}.vars"))))
        return tuple(out)

    def clis(self, entry: Entry | None) -> tuple[CliEntry, ...]:
        if entry is None or entry.node.value is None:
            return ()
        out = []
        for name, item in self.mapping(entry.node, set(entry.node.value) if entry.node.is_map else set(), "clis").items():
            if not _NAME.match(name):
                raise self.fail(item, f"cli name {name!r} must be an identifier")
            c = self.mapping(item.node, {"file", "title"}, f"cli {name}")
            file = self.scalar(c, "file", str, f"cli {name}", required=True, at=item.node)
            out.append(CliEntry(name, file, self.scalar(c, "title", str, f"cli {name}") or ""))
        return tuple(out)

    def spec(self, entry: Entry | None) -> SpecConfig | None:
        if entry is None or entry.node.value is None:
            return None
        s = self.mapping(entry.node, {"file", "sections", "optional"}, "spec")
        file = self.scalar(s, "file", str, "spec", required=True, at=entry.node)
        sections = []
        node = s.get("sections")
        if node is not None and node.node.value is not None:
            if not node.node.is_list:
                raise self.fail(node.node, "spec.sections must be a list")
            seen: set[str] = set()
            for item in node.node.value:
                t = self.mapping(item, {"name", "section", "block", "template", "cli"}, "a spec section")
                name = self.scalar(t, "name", str, "a spec section", required=True, at=item)
                if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
                    raise self.fail(t["name"].node, f"spec section name {name!r} must be letters, digits, '-', '_' or '.'")
                if name in seen:
                    raise self.fail(t["name"].node, f"spec section name {name!r} is used twice")
                seen.add(name)
                section = t.get("section")
                value = None if section is None else section.node.value
                if isinstance(value, (float, bool)) or not isinstance(value, (str, int, type(None))):
                    raise self.fail(section.node, f"spec section {name}: section must be a number in quotes or a "
                                    f"heading title, not {value!r}",
                                    'quote section numbers ("4.9", "7.10"): YAML reads 7.10 as the number 7.1')
                section_text = None if value is None else str(value).strip() or None
                block = self.scalar(t, "block", str, f"spec section {name}") or "section"
                if block not in ("section", "list", "table"):
                    raise self.fail(t["block"].node, f"spec section {name}: block must be section, list or table, not {block!r}")
                cli = self.scalar(t, "cli", str, f"spec section {name}")
                if cli is not None and cli not in self.cli_names:
                    raise self.fail(t["cli"].node, f"spec section {name}: unknown cli {cli!r}",
                                    f"define it under the top-level clis: ({', '.join(sorted(self.cli_names)) or 'none yet'})")
                template = self.scalar(t, "template", str, f"spec section {name}", required=True, at=item)
                sections.append(SpecSection(name, template, section_text, block, cli, Position(item.line, item.col)))
        at = s["file"].node  # errors about the spec (a missing file) point at its name
        return SpecConfig(file, tuple(sections), Position(at.line, at.col),
                          bool(self.scalar(s, "optional", bool, "spec")))

    def callees(self, entry: Entry | None) -> tuple[Callee, ...]:
        if entry is None:
            return ()
        result = []
        for name, item in self.mapping(entry.node, set(entry.node.value) if entry.node.is_map else set(), "callees").items():
            if not _NAME.match(name):
                raise self.fail(item, f"callee name {name!r} must be an identifier")
            fields = self.mapping(item.node, _CALLEE_FIELDS, f"callee {name}")
            qualified = self.str_list(fields.get("qualified"), f"callee {name}.qualified")
            for q in qualified:
                if not q.endswith("." + name) and q != name:
                    raise self.fail(fields["qualified"].node, f"qualified name {q!r} does not end in .{name}")
            positional = self.str_list(fields.get("positional"), f"callee {name}.positional")
            result.append(Callee(name, tuple(qualified), tuple(positional)))
        return tuple(result)

    def str_list(self, entry: Entry | None, what: str) -> list[str]:
        if entry is None or entry.node.value is None:
            return []
        node = entry.node
        if isinstance(node.value, str):
            return [node.value]
        if not node.is_list or not all(isinstance(n.value, str) for n in node.value):
            raise self.fail(node, f"{what} must be a string or a list of strings")
        return [n.value for n in node.value]

    # -- one knob ----------------------------------------------------------------------

    def knob(self, node: Node) -> Knob:
        e = self.mapping(node, _KNOB_FIELDS, "a knob")
        name = self.scalar(e, "name", str, "a knob", required=True, at=node)
        what = f"knob {name!r}"
        for req in _KNOB_REQUIRED:
            if req not in e:
                raise self.fail(node, f"{what} is missing required field {req!r}")
        if not _NAME.match(name) or keyword.iskeyword(name) or name in _RESERVED_NAMES or name.startswith("__"):
            raise self.fail(e["name"].node, f"knob name {name!r} must be an ASCII Python identifier (letters A-Z a-z, "
                            "digits, _; not starting with a digit or __), not a keyword or reserved name: it becomes "
                            "a field name, a flag and an environment variable")
        category = self.enum(e["category"], Category, what)
        home = self.enum(e["home"], Home, what)
        type_node = e["type"].node
        if not isinstance(type_node.value, str):
            raise self.fail(type_node, f"{what}: type must be a string such as 'int' or 'Optional[float]'")
        try:
            ktype = parse_type(type_node.value)
        except TypeParseError as exc:
            raise self.fail(Position(type_node.line, type_node.col + exc.col - 1), f"{what}: {exc}") from None
        default_node = e["default"].node
        try:
            default = coerce_yaml(ktype, default_node.plain())
        except ValueError:
            raise self.fail(default_node, f"{what}: default {describe_mismatch(ktype, default_node.plain())}") from None
        constraints = self.constraints(e.get("constraints"), ktype, what)
        clash = _contradiction(constraints)
        if clash is not None:
            raise self.fail(e["constraints"].node, f"{what}: constraints contradict each other: {clash}, so no value "
                            "can satisfy them", "fix the bounds (or the choices) under constraints:")
        problem = constraints.violation(default)
        if problem is not None:
            raise self.fail(default_node, f"{what}: default {default!r} breaks its own constraint: {problem}")
        beyond = bool(self.scalar(e, "beyond_catalog", bool, what))
        catalog_name = self.scalar(e, "catalog_name", str, what)
        if beyond and catalog_name:
            raise self.fail(e["catalog_name"], f"{what} is beyond_catalog, so it cannot have a catalog_name")
        if not beyond and not catalog_name:
            raise self.fail(node, f"{what} needs catalog_name (its name in the seed catalog) or beyond_catalog: true")
        aliases = tuple(self.str_list(e.get("aliases"), f"{what}.aliases"))
        cli = self.scalar(e, "cli", str, what)
        if cli is not None and not _FLAG.match(cli):
            raise self.fail(e["cli"].node, f"{what}: cli flag {cli!r} must look like --lower-case-words")
        if cli is not None and not home.settable:
            raise self.fail(e["cli"], f"{what}: a knob with home {home.value!r} is not settable, so it has no CLI flag")
        knob = Knob(
            name=name,
            category=category,
            type=ktype,
            default=default,
            purpose=self.scalar(e, "purpose", str, what, required=True, at=node).strip(),
            home=home,
            catalog_name=catalog_name,
            aliases=aliases,
            parity_notes=(self.scalar(e, "parity_notes", str, what) or "").strip(),
            home_note=(self.scalar(e, "home_note", str, what) or "").strip(),
            sources=self.sources(e.get("sources"), what),
            tf=self.tf(e.get("tf"), ktype, what),
            targets=self.targets(e.get("target"), ktype, what),
            constraints=constraints,
            rules=(),  # filled in by check_rules once every knob is known
            cli_flag=cli or "--" + name.lower().replace("_", "-"),
            beyond_catalog=beyond,
            position=Position(node.line, node.col),
            absent=(self.scalar(e, "absent", str, what) or "").strip(),
            role=self.role(e.get("role"), what),
            field_aliases=self.field_aliases(e.get("field_aliases"), ktype, what),
            cli_aliases=self.cli_aliases(e.get("cli_aliases"), ktype, what),
            clis=(),  # filled in below, once the flags are known
        )
        flags = {knob.cli_flag, *(a.flag for a in knob.cli_aliases)}
        clis = tuple((name, flag or knob.cli_flag) for name, flag in self.knob_clis(e.get("clis"), what, flags))
        object.__setattr__(knob, "clis", clis)
        return knob

    def role(self, entry: Entry | None, what: str) -> str:
        if entry is None or entry.node.value is None:
            return ""
        if entry.node.value not in ("train", "eval"):
            raise self.fail(entry.node, f"{what}: role must be train or eval, not {entry.node.value!r}",
                            "train: the knob applies to training calls only (a training loader); eval: to "
                            "validation, test, prediction and inference calls only")
        return entry.node.value

    def field_aliases(self, entry: Entry | None, ktype: Any, what: str) -> tuple[FieldAlias, ...]:
        if entry is None or entry.node.value is None:
            return ()
        if not entry.node.is_list:
            raise self.fail(entry.node, f"{what}.field_aliases must be a list of names or {{name, invert, values}}")
        out = []
        for item in entry.node.value:
            values: tuple[tuple[Any, Any], ...] = ()
            if isinstance(item.value, str):
                name, invert = item.value, False
            else:
                a = self.mapping(item, {"name", "invert", "values"}, f"a field alias of {what}")
                name = self.scalar(a, "name", str, f"{what} field alias", required=True, at=item)
                invert = bool(self.scalar(a, "invert", bool, f"{what} field alias"))
                if "values" in a and a["values"].node.value is not None:
                    if invert:
                        raise self.fail(a["values"], f"{what}: field alias {name!r} has both invert and values",
                                        "an inverted alias is a bool holding the opposite; a values map spells each "
                                        "value its own way: give one of them")
                    values = self.alias_values(a["values"].node, ktype, f"{what}: field alias {name!r}",
                                               "what the real field holds to the knob's values")
            if not _NAME.match(name) or keyword.iskeyword(name) or name.startswith("__"):
                raise self.fail(item, f"{what}: field alias {name!r} must be a Python identifier")
            if invert and base_scalar(ktype) != Scalar("bool"):
                raise self.fail(item, f"{what}: only a bool knob can have an inverted field alias")
            out.append(FieldAlias(name, invert, values))
        return tuple(out)

    def alias_values(self, vnode: Node, ktype: Any, what: str, maps: str) -> tuple[tuple[Any, Any], ...]:
        """An alias's `values:` map (its spelling -> the knob's value), each value checked
        against the knob's type."""
        if not vnode.is_map or not vnode.value:
            raise self.fail(vnode, f"{what}: values must be a non-empty mapping of {maps}",
                            "e.g. values: {Default: default, Exponential: exponential}")
        pairs = []
        for given, target in vnode.value.items():
            try:
                pairs.append((given, coerce_yaml(ktype, target.node.plain())))
            except ValueError:
                raise self.fail(target.node, f"{what}: values.{given}: {describe_mismatch(ktype, target.node.plain())}",
                                "the right side of each entry is the knob's own value") from None
        return tuple(pairs)

    def cli_aliases(self, entry: Entry | None, ktype: Any, what: str) -> tuple[CliAlias, ...]:
        if entry is None or entry.node.value is None:
            return ()
        if not entry.node.is_list:
            raise self.fail(entry.node, f"{what}.cli_aliases must be a list of flags or {{flag, negative, values}}")
        out = []
        for item in entry.node.value:
            values: tuple[tuple[Any, Any], ...] = ()
            if isinstance(item.value, str):
                flag, negative = item.value, False
            else:
                a = self.mapping(item, {"flag", "negative", "values"}, f"a cli alias of {what}")
                flag = self.scalar(a, "flag", str, f"{what} cli alias", required=True, at=item)
                negative = bool(self.scalar(a, "negative", bool, f"{what} cli alias"))
                if "values" in a and a["values"].node.value is not None:
                    vnode = a["values"].node
                    if not vnode.is_map:
                        raise self.fail(vnode, f"{what}: cli alias values must map what the flag accepts to the knob's values")
                    pairs = []
                    for given, target in vnode.value.items():
                        try:
                            pairs.append((given, coerce_yaml(ktype, target.node.plain())))
                        except ValueError:
                            raise self.fail(target.node, f"{what}: cli alias value {describe_mismatch(ktype, target.node.plain())}") from None
                    values = tuple(pairs)
            if not _ANY_FLAG.match(flag):
                raise self.fail(item, f"{what}: cli alias {flag!r} must look like --flag-name or --flag_name")
            if negative and base_scalar(ktype) != Scalar("bool"):
                raise self.fail(item, f"{what}: only a bool knob can have a negative flag")
            out.append(CliAlias(flag, negative, values))
        return tuple(out)

    def knob_clis(self, entry: Entry | None, what: str, flags: set[str]) -> tuple[tuple[str, str], ...]:
        """`[train, inference]` (each spelling the knob's own flag) or `{train: --logger}`."""
        if entry is None or entry.node.value is None:
            return ()
        node = entry.node
        if node.is_map:
            pairs = [(name, self.scalar(node.value, name, str, f"{what}.clis", required=True, at=node))
                     for name in node.value]
        else:
            pairs = [(name, "") for name in self.str_list(entry, f"{what}.clis")]
        out = []
        for name, flag in pairs:
            if name not in self.cli_names:
                raise self.fail(node, f"{what}: unknown cli {name!r}",
                                f"define it under the top-level clis: ({', '.join(sorted(self.cli_names)) or 'none yet'})")
            if flag and flag not in flags:
                raise self.fail(node, f"{what}: clis.{name} spells the flag {flag!r}, which is neither its cli flag nor a cli alias")
            out.append((name, flag))
        return tuple(out)

    def enum(self, entry: Entry, enum_type: Any, what: str) -> Any:
        value = entry.node.value
        try:
            return enum_type(value)
        except ValueError:
            allowed = [m.value for m in enum_type]
            near = difflib.get_close_matches(str(value), allowed, n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"allowed: {', '.join(allowed)}"
            field_name = enum_type.__name__.lower()
            raise self.fail(entry.node, f"{what}: unknown {field_name} {value!r}", hint) from None

    def sources(self, entry: Entry | None, what: str) -> tuple[Source, ...]:
        if entry is None or entry.node.value is None:
            return ()
        if not entry.node.is_list:
            raise self.fail(entry.node, f"{what}.sources must be a list")
        result = []
        for node in entry.node.value:
            s = self.mapping(node, _SOURCE_FIELDS, f"a source of {what}")
            file = self.scalar(s, "file", str, f"{what} source", required=True, at=node)
            line = self.scalar(s, "line", int, f"{what} source", required=True, at=node)
            if line < 1:
                raise self.fail(s["line"].node, f"{what}: source line must be >= 1")
            kinds = [k for k in SOURCE_KINDS if k in s]
            if len(kinds) > 1:
                raise self.fail(s[kinds[1]], f"{what}: a source points at one statement; it has both {kinds[0]} and {kinds[1]}",
                                "split it into two sources")
            values = {k: self.scalar(s, k, str, f"{what} source") for k in (*SOURCE_KINDS, "keyword", "note")}
            if values["keyword"] and not values["callee"]:
                raise self.fail(s["keyword"], f"{what}: a source keyword needs its callee")
            fld = values["field"]
            if fld is not None and not _DOTTED.match(fld):
                raise self.fail(s["field"].node, f"{what}: source field {fld!r} must be Class.attr")
            if values["param"] is not None and not _QUALNAME.match(values["param"]):
                raise self.fail(s["param"].node, f"{what}: source param {values['param']!r} must be Callable.param "
                                "(set_seed.seed, PtychoDataModule.val_split, Class.method.arg)")
            for k in ("read", "check", "assign", "branch"):
                if values[k] is not None and not _NAME.match(values[k]):
                    raise self.fail(s[k].node, f"{what}: source {k} {values[k]!r} must be an attribute name")
            spec = values["spec"]
            if spec is not None and not (_NAME.match(spec) or _ANY_FLAG.match(spec)):
                raise self.fail(s["spec"].node, f"{what}: source spec {spec!r} must be a field name or a --flag")
            line_node = s["line"].node
            result.append(Source(
                file=file, line=line, keyword=values["keyword"], note=values["note"],
                invert=bool(self.scalar(s, "invert", bool, f"{what} source")),
                line_pos=Position(line_node.line, line_node.col),
                **{k: values[k] for k in SOURCE_KINDS},
            ))
        return tuple(result)

    def tf(self, entry: Entry | None, ktype: Any, what: str) -> TfMapping | None:
        if entry is None or entry.node.value is None:
            return None
        t = self.mapping(entry.node, _TF_FIELDS, f"{what}.tf")
        fld = self.scalar(t, "field", str, f"{what}.tf", required=True, at=entry.node)
        if not _TF_FIELD.match(fld):
            raise self.fail(t["field"].node, f"{what}: TF field {fld!r} is malformed", "write it as ConfigClass.field_name, e.g. TrainingConfig.nepochs")
        kind = self.enum(t["mapping"], TfMappingKind, f"{what}.tf") if "mapping" in t else None
        if kind is None:
            raise self.fail(entry.node, f"{what}.tf is missing required field 'mapping'")
        if kind is TfMappingKind.INVERTED and base_scalar(ktype) != Scalar("bool"):
            raise self.fail(t["mapping"].node, f"{what}: an inverted TF mapping needs a bool knob, not {ktype}")
        has_default = "default" in t
        default = t["default"].node.value if has_default else None
        return TfMapping(fld, kind, default, has_default, self.scalar(t, "divergence", str, f"{what}.tf"))

    def targets(self, entry: Entry | None, ktype: Any, what: str) -> tuple[Target, ...]:
        if entry is None or entry.node.value is None:
            return ()
        node = entry.node
        items = node.value if node.is_list else [node]
        result = []
        for item in items:
            if isinstance(item.value, str):
                path, invert = item.value, False
            else:
                t = self.mapping(item, {"path", "invert"}, f"{what}.target")
                path = self.scalar(t, "path", str, f"{what}.target", required=True, at=item)
                invert = bool(self.scalar(t, "invert", bool, f"{what}.target"))
            if not _DOTTED.match(path):
                raise self.fail(item, f"{what}: target {path!r} must be Class.attr, e.g. Trainer.max_epochs")
            if invert and base_scalar(ktype) != Scalar("bool"):
                raise self.fail(item, f"{what}: only a bool knob can have an inverted target")
            result.append(Target(path, invert))
        return tuple(result)

    def constraints(self, entry: Entry | None, ktype: Any, what: str) -> Constraints:
        if entry is None or entry.node.value is None:
            return Constraints()
        c = self.mapping(entry.node, _CONSTRAINT_FIELDS, f"{what}.constraints")
        choices = None
        if "choices" in c:
            node = c["choices"].node
            if not node.is_list or not node.value:
                raise self.fail(node, f"{what}: choices must be a non-empty list")
            values = []
            for item in node.value:
                try:
                    values.append(coerce_yaml(ktype, item.plain()))
                except ValueError:
                    raise self.fail(item, f"{what}: choice {describe_mismatch(ktype, item.plain())}") from None
            choices = tuple(values)
        bounds: dict[str, float | None] = {}
        for key in ("min", "max", "exclusive_min", "exclusive_max"):
            value = self.scalar(c, key, (int, float), f"{what}.constraints")
            base = base_scalar(ktype)
            if value is not None and not (isinstance(base, Scalar) and base.name in ("int", "float")):
                raise self.fail(c[key], f"{what}: {key} needs a numeric type, not {ktype}")
            bounds[key] = value
        return Constraints(choices=choices, **bounds)

    # -- whole-registry checks ---------------------------------------------------------

    def index(self, knobs: list[Knob], nodes: list[Node]) -> dict[str, Knob]:
        index: dict[str, Knob] = {}
        owner_node: dict[str, Node] = {}
        for knob, node in zip(knobs, nodes, strict=True):
            for name in knob.names:
                if name in index and index[name] is not knob:
                    first = owner_node[name]
                    raise self.fail(node, f"name or alias {name!r} of knob {knob.name!r} is already used by knob {index[name].name!r} (line {first.line})")
                index[name] = knob
                owner_node[name] = node
        return index

    def check_flags(self, knobs: list[Knob], nodes: list[Node]) -> None:
        seen: dict[str, str] = {}
        for knob, node in zip(knobs, nodes, strict=True):
            if not knob.settable:
                if knob.cli_aliases:
                    raise self.fail(node, f"knob {knob.name!r} is not settable (home {knob.home.value}), so it has no cli_aliases")
                continue
            flags = [knob.cli_flag]
            if base_scalar(knob.type) == Scalar("bool"):
                flags.append("--no-" + knob.cli_flag[2:])
            flags.extend(a.flag for a in knob.cli_aliases)
            for flag in flags:
                if flag in seen:
                    raise self.fail(node, f"CLI flag {flag} of knob {knob.name!r} is already used by {seen[flag]!r}")
                seen[flag] = knob.name

    def attrs(self, knobs: list[Knob], nodes: list[Node], index: dict[str, Knob]) -> dict[str, tuple[Knob, bool]]:
        """Attribute name -> (knob, inverted); a field alias may not shadow another knob's name."""
        attrs: dict[str, tuple[Knob, bool]] = {name: (knob, False) for name, knob in index.items()}
        for knob, node in zip(knobs, nodes, strict=True):
            for alias in knob.field_aliases:
                other = attrs.get(alias.name)
                if other is not None and other[0] is not knob:
                    raise self.fail(node, f"field alias {alias.name!r} of knob {knob.name!r} is already a name of knob {other[0].name!r}")
                attrs[alias.name] = (knob, alias.invert)
        return attrs

    def check_deprecation(self, knob: Knob, node: Node, index: dict[str, Knob]) -> None:
        entry = node.value.get("deprecated")
        if entry is None or entry.node.value is None:
            return
        d = self.mapping(entry.node, {"message", "sets"}, f"knob {knob.name!r}.deprecated")
        message = self.scalar(d, "message", str, f"knob {knob.name!r}.deprecated", required=True, at=entry.node)
        sets: list[tuple[str, Any]] = []
        if "sets" in d and d["sets"].node.value is not None:
            snode = d["sets"].node
            if not snode.is_map:
                raise self.fail(snode, f"knob {knob.name!r}: deprecated.sets maps knob names to values")
            for other_name, value in snode.value.items():
                other = index.get(other_name)
                if other is None or other.name != other_name or not other.settable or other is knob:
                    raise self.fail(value, f"knob {knob.name!r}: deprecated.sets names {other_name!r}, which is not another settable knob")
                if value.node.is_map:  # this knob's value -> the other knob's value
                    pairs = []
                    for given, target in value.node.value.items():
                        try:
                            pairs.append((_coerce_key(knob.type, given), coerce_yaml(other.type, target.node.plain())))
                        except ValueError:
                            raise self.fail(target.node, f"knob {knob.name!r}: deprecated.sets.{other_name}: {given!r} -> "
                                            f"{target.node.plain()!r} does not fit the two knobs' types") from None
                    sets.append((other_name, tuple(pairs)))
                else:
                    try:
                        sets.append((other_name, coerce_yaml(other.type, value.node.plain())))
                    except ValueError:
                        raise self.fail(value.node, f"knob {knob.name!r}: deprecated.sets.{other_name}: "
                                        f"{describe_mismatch(other.type, value.node.plain())}") from None
        object.__setattr__(knob, "deprecated", Deprecation(message.strip(), tuple(sets)))

    def check_rules(self, knob: Knob, node: Node, index: dict[str, Knob]) -> None:
        entry = node.value.get("rules")
        if entry is None or entry.node.value is None:
            return
        if not entry.node.is_list:
            raise self.fail(entry.node, f"knob {knob.name!r}: rules must be a list")
        rules = []
        for item in entry.node.value:
            r = self.mapping(item, _RULE_FIELDS, f"a rule of knob {knob.name!r}")
            parse = self._condition_parser(knob, index, r, item)
            message = self.scalar(r, "message", str, "a rule", required=True, at=item)
            rules.append(Rule(parse("when"), parse("require"), message))
        object.__setattr__(knob, "rules", tuple(rules))

    def _condition_parser(self, knob: Knob, index: dict[str, Knob], r: dict[str, Entry], item: Node) -> Callable[[str], Condition]:
        def parse(key: str) -> Condition:
            text = self.scalar(r, key, str, "a rule", required=True, at=item)
            at = r[key].node
            m = _CONDITION.match(text)
            if not m:
                raise self.fail(at, f"rule condition {text!r} does not parse", "write `knob`, `not knob`, `knob > 0`, `knob == 'gloo'` or `knob is None`")
            negate, name, op, literal = m.groups()
            other = index.get(name)
            if other is None or other.name != name:
                raise self.fail(at, f"rule condition names unknown knob {name!r}")
            if other.home is not knob.home or not other.settable:
                raise self.fail(at, f"rule condition knob {name!r} must be a settable knob of the same home as {knob.name!r}")
            if op is None:
                return Condition(name, "falsy" if negate else "truthy", None, text.strip())
            if negate:
                raise self.fail(at, "use `not` only with a bare knob name")
            if op in ("is", "is not"):
                if literal.strip() != "None":
                    raise self.fail(at, "`is` / `is not` compare with None only")
                return Condition(name, op, None, text.strip())
            value = yamlpos.loads(literal, self.path, RegistryError)
            plain = value.value if value is not None else None
            try:
                coerce_yaml(other.type, plain)
            except ValueError:
                raise self.fail(at, f"rule compares {name} with {plain!r}, which does not fit its type {other.type}") from None
            return Condition(name, op, plain, text.strip())
        return parse


def _coerce_key(ktype: Any, key: str) -> Any:
    """A YAML mapping key (always text here) as a value of `ktype`: 'cuda' for str, 'true' for bool."""
    try:
        return coerce_yaml(ktype, key)
    except ValueError:
        return coerce_text(ktype, key)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _contradiction(c: Constraints) -> str | None:
    """Why no value can satisfy `c` (a lower bound above an upper one, or no choice inside
    the bounds), or None."""
    lows = [(v, f"min {v!r}", False) for v in (c.min,) if v is not None]
    lows += [(v, f"exclusive_min {v!r}", True) for v in (c.exclusive_min,) if v is not None]
    highs = [(v, f"max {v!r}", False) for v in (c.max,) if v is not None]
    highs += [(v, f"exclusive_max {v!r}", True) for v in (c.exclusive_max,) if v is not None]
    for low, low_text, low_open in lows:
        for high, high_text, high_open in highs:
            if low > high or (low == high and (low_open or high_open)):
                return f"{low_text} is not below {high_text}"
    if c.choices is not None and all(Constraints(min=c.min, max=c.max, exclusive_min=c.exclusive_min,
                                                 exclusive_max=c.exclusive_max).violation(x) for x in c.choices):
        return "none of the choices is inside the bounds"
    return None
