from __future__ import annotations

from collections.abc import Iterable

from ptycho_knobs.audit.findings import Arg, Finding
from ptycho_knobs.audit.index import same
from ptycho_knobs.audit.model import unreachable_note
from ptycho_knobs.audit.rule import AuditRule, FileContext, Invalid, ProjectContext, Valid


class DivergentLiterals(AuditRule):
    """Calls to the same watched class disagree on the literal they pass for one knob.

    **What.** Every literal passed for a registered knob's keyword of a watched call
    (`EarlyStopping(patience=...)`), across the audited tree, grouped by callee and keyword (and
    by role: training and evaluation loaders are compared among themselves). When the literals
    differ, one finding at the odd one out (the minority value) lists every call and its value.

    **Why.** The same setting, hard-coded three ways: the run's behaviour depends on which code
    path built the object (the main trainer, a fine-tune stage, an API helper).

    **Example.** `EarlyStopping(patience=100)` in two places and `patience=5` in a third.

    **Use instead.** Take the value from the one config field (PK001 says which).
    """

    CODE = "PK014"
    NAME = "divergent-literals"
    MESSAGE = "Calls to the same watched class pass different literals for one knob."
    PROJECT = True
    PRIORITY = 8
    VALUE = True
    VALID = [
        Valid("from lightning.pytorch.callbacks import EarlyStopping\na = EarlyStopping(patience=100)\n"
              "b = EarlyStopping(patience=100)\n"),
    ]
    INVALID = [
        Invalid("from lightning.pytorch.callbacks import EarlyStopping\na = EarlyStopping(patience=100)\n"
                "b = EarlyStopping(patience=100)\nc = EarlyStopping(patience=5)\n", 4, 19,
                "[early_stop_patience] EarlyStopping(patience=...) is given 5 here but 100 at "
                "ptycho_torch/example.py:2, ptycho_torch/example.py:3"),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        model = ctx.model
        groups: dict[tuple[str, str, str], list[tuple[FileContext, Arg, str]]] = {}
        for f, call, arg, owner in ctx.knob_literals():
            groups.setdefault((owner.knob.name, call.callee, arg.keyword), []).append((f, arg, call.scope))
        for (knob, callee, keyword), uses in groups.items():
            values: list[list[tuple[FileContext, Arg, str]]] = []
            for use in uses:
                for bucket in values:
                    if same(bucket[0][1].value, use[1].value):
                        bucket.append(use)
                        break
                else:
                    values.append([use])
            if len(values) < 2:
                continue
            values.sort(key=lambda b: -len(b))
            odd = min((u for b in values[1:] for u in b), key=lambda u: (u[0].shown, u[1].at.line))
            others = [b for b in values if odd not in b]
            parts = "; ".join(f"{b[0][1].value!r} at " + ", ".join(f"{u[0].shown}:{u[1].at.line}" for u in b)
                              for b in others)
            yield self.finding(odd[0].shown, odd[1].at, knob,
                               f"{callee}({keyword}=...) is given {odd[1].value!r} here but {parts}"
                               f"{unreachable_note(model, odd[0], odd[2])}",
                               text=f"{callee}|{keyword}|divergent",
                               related=tuple((u[0].shown, u[1].at.line, f"{callee}({keyword}={u[1].value!r})")
                                             for b in values for u in b if u is not odd))
