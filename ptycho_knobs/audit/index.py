"""The registry, indexed the way the rules ask it questions, plus value comparison.

Built once per audit from the `Registry`; every rule reads it, none re-reads YAML.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from ptycho_knobs.ktypes import Knob, Source
from ptycho_knobs.registry import Registry
from ptycho_knobs.typelang import LiteralOf, Scalar, base_scalar, coerce_text

# Keywords that wire objects together rather than tune behaviour: a literal there (a file
# name, a dataset) is structure, not a knob, so unregistered-knob leaves them alone.
STRUCTURAL_KEYWORDS = frozenset({
    "dataset", "sampler", "batch_sampler", "collate_fn", "worker_init_fn", "generator",
    "multiprocessing_context", "callbacks", "plugins", "dirpath", "filename", "save_dir",
    "run_name", "tracking_uri", "tags", "artifact_location", "cluster_environment",
    "checkpoint_io", "precision_plugin", "parallel_devices", "ddp_comm_state", "ddp_comm_hook",
    "ddp_comm_wrapper", "model", "datamodule", "ckpt_path", "profiler", "name", "version",
})


@dataclass(frozen=True)
class Owner:
    knob: Knob
    invert: bool
    source: Source | None


# A registry source kind -> the statement kinds (Stmt.kind) it may point at.
SOURCE_STMTS = {
    "field": ("field",), "flag": ("flag",), "env": ("env",), "param": ("param",), "read": ("fallback",),
    "check": ("check",), "assign": ("assign", "construct"), "branch": ("branch",),
}
# Words in a call's scope, first argument or result name that mark an evaluation call
# (validation, test, prediction, inference) rather than a training one.
EVAL_WORDS = re.compile(r"(?i)(?:^|[^a-z])(val|valid|validation|test|predict|prediction|infer|inference|eval)(?:[^a-z]|$)")


@dataclass
class AuditIndex:
    registry: Registry
    owners: dict[tuple[str, str], list[Owner]] = field(default_factory=dict)
    env: dict[str, list[tuple[Knob, Source]]] = field(default_factory=dict)
    flags: dict[str, Knob] = field(default_factory=dict)
    names: dict[str, Knob] = field(default_factory=dict)
    fields: list[tuple[Knob, Source]] = field(default_factory=list)
    config_classes: frozenset[str] = frozenset()
    # (statement kind, name) -> [(knob, source)]: which registered sources may point at it
    stmt_sources: dict[tuple[str, str], list[tuple[Knob, Source]]] = field(default_factory=dict)

    @classmethod
    def build(cls, registry: Registry) -> AuditIndex:
        index = cls(registry)
        callees = {c.name for c in registry.callees}
        classes = {c.name for c in registry.configs}
        for knob in registry.knobs:
            for name in knob.names:
                index.names.setdefault(name, knob)
            for src in knob.sources:
                if src.callee and src.keyword:
                    inverted = src.invert or any(t.invert and t.class_name == src.callee and t.attr == src.keyword
                                                 for t in knob.targets)
                    index.owners.setdefault((src.callee, src.keyword), []).append(Owner(knob, inverted, src))
                if src.env:
                    index.env.setdefault(src.env, []).append((knob, src))
                if src.flag:
                    index.flags[src.flag] = knob
                if src.field:
                    index.fields.append((knob, src))
                    classes.add(src.field.split(".", 1)[0])
                kind = src.kind
                if kind in SOURCE_STMTS:
                    ident = getattr(src, kind)
                    name = ident.rsplit(".", 1)[-1] if kind in ("field", "param") else ident
                    for stmt_kind in SOURCE_STMTS[kind]:
                        index.stmt_sources.setdefault((stmt_kind, name), []).append((knob, src))
            for target in knob.targets:
                if target.class_name in callees:
                    key = (target.class_name, target.attr)
                    if not any(o.knob is knob for o in index.owners.get(key, [])):
                        index.owners.setdefault(key, []).append(Owner(knob, target.invert, None))
        index.config_classes = frozenset(classes)
        return index

    def owner(self, callee: str, keyword: str, path: PurePath, first: int, last: int, role: str = "") -> Owner | None:
        """The knob owning `callee(keyword=...)`; where several do, the one whose source is here.
        A knob with a role (train / eval) owns only calls of that role."""
        owners = [o for o in self.owners.get((callee, keyword), ()) if not (role and o.knob.role and o.knob.role != role)]
        if not owners:
            return None
        for o in owners:
            if o.source and matches(path, o.source.file) and first - 1 <= o.source.line <= last + 1:
                return o
        for o in owners:  # an inverted target must still know it is inverted
            if o.source is None or o.invert:
                return o
        return owners[0]

    def source_for(self, path: PurePath, st: Any, stmts: tuple[Any, ...] = ()) -> tuple[Knob, Source] | None:
        """The registry source that points at statement `st` of the file at `path`, if any:
        same file, kind and name, at the statement's line; a source whose line holds no such
        statement any more (it went stale) claims only the nearest one among `stmts`."""
        names = st.owner.split(",") if st.kind == "flag" else [st.name]
        found: list[tuple[Knob, Source]] = []
        for name in names:
            for knob, src in self.stmt_sources.get((st.kind, name), ()):
                if not matches(path, src.file):
                    continue
                if src.field and src.field.split(".", 1)[0] != st.owner:
                    continue
                if src.param and not _param_owner(src.param, st.owner):
                    continue
                found.append((knob, src))
        if not found:
            return None
        exact = [hit for hit in found if st.at.line <= hit[1].line <= st.at.end_line]
        if exact:
            return exact[0]
        same = [o for o in stmts if o.kind == st.kind and o.name == st.name] or [st]
        for hit in sorted(found, key=lambda h: abs(h[1].line - st.at.line)):
            line = hit[1].line
            if any(o.at.line <= line <= o.at.end_line for o in same):
                continue  # it points at another statement, which is there
            if min(same, key=lambda o: (abs(o.at.line - line), o.at.line)) is st:
                return hit
        return None

    def flag_knob(self, flags: tuple[str, ...], dest: str) -> Knob | None:
        for flag in flags:
            if flag in self.flags:
                return self.flags[flag]
        knob = self.names.get(dest)
        if knob is None:
            for flag in flags:
                knob = self.names.get(flag.lstrip("-").replace("-", "_"))
                if knob:
                    break
        return knob

    def source_files(self) -> set[str]:
        return {s.file for k in self.registry.knobs for s in k.sources}


@functools.lru_cache(maxsize=4096)
def _parts(text: str) -> tuple[str, ...]:
    return PurePath(text).parts


def _param_owner(param: str, qualname: str) -> bool:
    """Whether registry `param: Callable.arg` names a parameter of the def `qualname`
    (`PtychoDataModule.val_split` is a parameter of `PtychoDataModule.__init__`)."""
    callable_ = param.rsplit(".", 1)[0]
    for candidate in (qualname, qualname.removesuffix(".__init__")):
        if candidate == callable_ or candidate.endswith("." + callable_):
            return True
    return False


def call_role(scope: str, hint: str) -> str:
    """`eval` for a call in a validation/test/prediction/inference context, else `train`."""
    words = f"{scope.replace('.', ' ')} {hint}"
    return "eval" if EVAL_WORDS.search(words.replace("_", " ")) else "train"


def matches(path: PurePath, source_file: str) -> bool:
    """Whether a scanned file is the registry's `source_file` (its path ends with it)."""
    if not str(path).endswith(source_file.rsplit("/", 1)[-1]):
        return False
    want = _parts(source_file)
    have = path.parts
    return len(have) >= len(want) and have[-len(want):] == want


def config_field(knob: Knob) -> str:
    """Where a value should come from, for messages: `PyTorchExecutionConfig.early_stop_patience`."""
    home = knob.home.class_name
    if home:
        return f"{home}.{knob.name}"
    env = next((s.env for s in knob.sources if s.env), None)
    return f"the {env} environment variable" if env else f"the registry knob {knob.name}"


def normalise(knob: Knob, value: Any) -> Any:
    """`value` as the knob's type would hold it: '42' -> 42 for ints, 4 -> 4.0 for floats."""
    base = base_scalar(knob.type)
    if isinstance(value, str) and value.lower() in ("none", "null") and value != knob.default:
        return value
    kind = base.name if isinstance(base, Scalar) else None
    try:
        if isinstance(value, str) and kind in ("int", "float", "bool"):
            return coerce_text(knob.type, value)
        if kind in ("str", "path") and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(base, LiteralOf) and isinstance(value, (int, float)) and not isinstance(value, bool):
            return value if value in base.values else str(value)
    except ValueError:
        return value
    return value


def same(a: Any, b: Any) -> bool:
    """Equality after type normalisation: 1e-3 == 0.001, [1, 2] == (1, 2), True != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) or a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=False))
    return type(a) is type(b) and a == b


def matches_default(knob: Knob, value: Any, invert: bool = False) -> bool:
    if invert and isinstance(value, bool):
        value = not value
    return same(normalise(knob, value), knob.default)
