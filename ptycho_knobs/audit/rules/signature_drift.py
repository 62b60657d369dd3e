from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ptycho_knobs.audit.findings import NOT_LITERAL, Finding
from ptycho_knobs.audit.index import same
from ptycho_knobs.audit.model import Model, unreachable_note
from ptycho_knobs.audit.rule import AuditRule, Invalid, ProjectContext, Valid


def signature(model: Model, func: str) -> tuple[Any, tuple[tuple[str, Any, str, bool], ...]] | None:
    """(the file and def, its parameters) of the in-tree callable `func` (a function, or a class
    through its `__init__`) when the name means one callable in the tree; None otherwise."""
    found = [(f, d) for f, d in model.defs.get(func, []) if d.kind == "def"]
    found += model.inits.get(func, [])
    if len(found) != 1:
        return None
    f, d = found[0]
    return (f, d), tuple(p for p in d.params if p[0] not in ("self", "cls"))


class SignatureDrift(AuditRule):
    """A literal passed for a knob's parameter that differs from the callee's own default.

    **What.** A call to a function or class defined in the audited tree (or a registered file
    outside it) passes a literal for a parameter named like a knob (its name, alias or field
    alias), and the callee's signature gives that parameter a different literal default:
    `PtychoDataModule(..., val_split=0.05)` where `def __init__(..., val_split=0.1)`. Positional
    arguments count once bound to the callee's parameter names.

    **Why.** Two literals for one setting, one in the callee and one at each call: which one
    applies depends on the caller, and changing the callee's default silently does nothing.

    **Example.** `val_split=0.05` at every call while the data module defaults to 0.1.

    **Use instead.** Put the value in config (the registry knob) and pass it; or drop the
    literal and let the signature default apply.
    """

    CODE = "PK012"
    NAME = "signature-drift"
    MESSAGE = "A literal for a knob's parameter differs from the callee's own default."
    PROJECT = True
    PRIORITY = 12
    VALUE = True
    VALID = [
        Valid("def build(num_workers=4):\n    return num_workers\nbuild(num_workers=4)\nbuild(3 + 1)\n"),
    ]
    INVALID = [
        Invalid("def build(data, num_workers=4):\n    return num_workers\nloader = build(None, num_workers=0)\n", 3, 22,
                "[num_workers] num_workers=0 passed to build, whose own default is 4 (ptycho_torch/example.py:1)"),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        model = ctx.model
        registry = ctx.index.registry
        for f in ctx.files:
            for site in f.facts.sites:
                if not site.args:
                    continue
                sig = signature(model, site.func)
                if sig is None:
                    continue
                (where, d), params = sig
                names = [p[0] for p in params]
                for arg in site.args:
                    name = arg.keyword
                    if name.startswith("#"):
                        i = int(name[1:])
                        if i >= len(names):
                            continue
                        name = names[i]
                    param = next((p for p in params if p[0] == name), None)
                    if param is None or not param[3] or param[1] is NOT_LITERAL:
                        continue
                    owner = registry.find_attr(name)
                    if owner is None or same(arg.value, param[1]):
                        continue
                    if isinstance(arg.value, bool) != isinstance(param[1], bool):
                        continue
                    knob = owner[0]
                    yield self.finding(
                        f.shown, arg.at, knob.name,
                        f"{name}={arg.value!r} passed to {site.func}, whose own default is {param[1]!r} "
                        f"({where.shown}:{d.at.line}){unreachable_note(model, f, site.scope)}",
                        text=f"{site.text}|{name}", scope=(site.at.line, site.at.end_line),
                        related=((where.shown, d.at.line, f"{site.func} signature"),))
