"""`ptycho-knobs drift`: registry targets against the installed library signatures.

Saved configs and the harness break when Lightning renames or drops an argument; this
finds it first. For every target on a real library class (the registry's `callees`:
Trainer, DDPStrategy, DataLoader, EarlyStopping, ModelCheckpoint, MLFlowLogger) it imports
the class by its first importable qualified name and reads `inspect.signature`:
- `missing`: the argument no longer exists (always drift);
- `default-differs`: the library default is not the registry default (inverted targets
  compare the negation). The harness always passes the registry value explicitly, so this
  is reported but is drift only with `--strict-defaults` (for call sites that rely on
  library defaults).
Pseudo-targets (`optimizer.lr`, `workload.*`, `inference.*`, ...) are listed as skipped.
"""

from __future__ import annotations

import importlib
import inspect
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ptycho_knobs.registry import Registry
from ptycho_knobs.runtime.routing import LIBRARY_CLASSES
from ptycho_knobs.runtime.snapshot import library_versions

OK, MISSING, DEFAULT_DIFFERS, SKIPPED = "ok", "missing", "default-differs", "skipped"
LIBRARY_CHOOSES = "library-chooses"  # library default None: decided at run time, nothing to compare

#: Classes that take some targets through **kwargs and hand them to another class.
FORWARDS = {"DDPStrategy": ("torch.nn.parallel.DistributedDataParallel",)}


@dataclass(frozen=True)
class DriftRow:
    knob: str
    target: str
    status: str
    library: str = ""  # qualified name inspected
    library_default: Any = None
    registry_default: Any = None
    note: str = ""


@dataclass
class DriftReport:
    rows: list[DriftRow]
    versions: dict[str, str]
    check_defaults: bool = False
    drifted: bool = field(init=False)

    def __post_init__(self) -> None:
        bad = (MISSING, DEFAULT_DIFFERS) if self.check_defaults else (MISSING,)
        self.drifted = any(r.status in bad for r in self.rows)


def _load(qualified: tuple[str, ...]) -> tuple[str, type] | None:
    for name in qualified:
        module, _, attr = name.rpartition(".")
        try:
            return name, getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
    return None


def check(registry: Registry, *, check_defaults: bool = False) -> DriftReport:
    classes: dict[str, tuple[str, inspect.Signature] | None] = {}
    for callee in registry.callees:
        if callee.name in LIBRARY_CLASSES:
            found = _load(callee.qualified)
            classes[callee.name] = (found[0], inspect.signature(found[1].__init__)) if found else None
            forward = _load(FORWARDS.get(callee.name, ()))
            if found and forward:
                classes[callee.name + "**"] = (forward[0], inspect.signature(forward[1].__init__))
    rows = []
    for knob in registry.settable():
        for target in knob.targets:
            rows.append(_compare(knob.name, knob.default, target, classes))
    return DriftReport(rows, library_versions(), check_defaults)


def _compare(name: str, default: Any, target: Any, classes: dict[str, Any]) -> DriftRow:
    if target.class_name not in classes:
        return DriftRow(name, target.path, SKIPPED, note="not a library class (harness pseudo-target)")
    entry = classes[target.class_name]
    if entry is None:
        return DriftRow(name, target.path, MISSING, note=f"{target.class_name} does not import")
    qualified, sig = entry
    expected = (not default) if target.invert else default
    param = sig.parameters.get(target.attr)
    forwarded = classes.get(target.class_name + "**")
    if param is None and forwarded is not None and any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        qualified, sig = forwarded
        param = sig.parameters.get(target.attr)
    if param is None:
        return DriftRow(name, target.path, MISSING, qualified, registry_default=expected,
                        note=f"{qualified}.__init__ has no argument {target.attr!r}")
    lib = "<required>" if param.default is inspect.Parameter.empty else param.default
    if (lib is None or param.default is inspect.Parameter.empty) and expected is not None:
        return DriftRow(name, target.path, LIBRARY_CHOOSES, qualified, lib, expected,
                        note="no concrete library default (None or required)")
    status = OK if _same(lib, expected) else DEFAULT_DIFFERS
    return DriftRow(name, target.path, status, qualified, lib, expected)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - exotic defaults compare unequal
        return False


def render_text(report: DriftReport) -> str:
    lines = ["installed: " + ", ".join(f"{k} {v}" for k, v in report.versions.items())]
    for r in report.rows:
        if r.status == MISSING:
            lines.append(f"MISSING  {r.target} (knob {r.knob}): {r.note}")
        elif r.status == DEFAULT_DIFFERS:
            lines.append(f"DEFAULT  {r.target} (knob {r.knob}): library {r.library_default!r}, registry {r.registry_default!r}")
    skipped = [r.target for r in report.rows if r.status == SKIPPED]
    ok = sum(r.status == OK for r in report.rows)
    chooses = sum(r.status == LIBRARY_CHOOSES for r in report.rows)
    lines.append(f"{ok} ok, {chooses} library default None, {sum(r.status == MISSING for r in report.rows)} missing, "
                 f"{sum(r.status == DEFAULT_DIFFERS for r in report.rows)} default differs"
                 f"{'' if report.check_defaults else ' (reported; --strict-defaults fails on them)'}, {len(skipped)} skipped")
    lines.append("skipped (not library classes): " + ", ".join(sorted(set(skipped))))
    return "\n".join(lines) + "\n"


def render_json(report: DriftReport) -> str:
    body = {"versions": report.versions, "drifted": report.drifted, "rows": [asdict(r) for r in report.rows]}
    return json.dumps(body, indent=2, default=repr) + "\n"
