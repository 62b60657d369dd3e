from __future__ import annotations

from collections.abc import Iterable

from ptycho_knobs.audit.findings import Finding, Fix, Span
from ptycho_knobs.audit.rule import AuditRule, Invalid, ProjectContext, Valid
from ptycho_knobs.audit.rules._locate import describe, locate


class StaleLocation(AuditRule):
    """A registry source whose `file:line` no longer holds the knob.

    **What.** The registry says `EarlyStopping(patience=...)` is at `ptycho_torch/train.py:247`,
    but line 247 holds something else and the keyword is now on line 250. A source counts as
    still there when its line is the keyword argument's line (any line of a multi-line value)
    or the first line of the call; for fields, flags and env reads, any line of the statement.
    Where the same keyword appears more than once in the file, each source is matched to the
    nearest occurrence no other source already claims. Reported at the `line:` number in the
    registry, with the fix `--fix-locations` applies.

    **Why.** Stale locations send readers (and the catalog's users) to the wrong code, and
    hide a knob that moved into a different call.

    **Example.** `{file: ptycho_torch/train.py, line: 247, callee: EarlyStopping, keyword: patience}`
    after two lines were added above the call.

    **Use instead.** Run `ptycho-knobs audit ptycho_torch/ --fix-locations --diff`, then without
    `--diff`: only the numbers change, every comment stays.
    """

    CODE = "PK003"
    NAME = "stale-location"
    MESSAGE = "A registry source's file:line no longer holds the knob."
    PROJECT = True
    VALID = [
        Valid("import os\nfrom lightning.pytorch.callbacks import EarlyStopping\nrank = os.environ.get('RANK')\n"
              "stop = EarlyStopping(patience=cfg.patience)\n"),
        Valid("import os\nfrom lightning.pytorch.callbacks import EarlyStopping\nrank = os.environ.get('RANK')\n"
              "stop = EarlyStopping(\n    patience=cfg.patience)\n"),
    ]
    INVALID = [
        Invalid("import os\nfrom lightning.pytorch.callbacks import EarlyStopping\nrank = os.environ.get('RANK')\n\n\n"
                "stop = EarlyStopping(patience=cfg.patience)\n", 27, 47,
                "[early_stop_patience] ptycho_torch/example.py:4 no longer holds EarlyStopping(patience=...); "
                "it is at line 6 now", path="knob_registry.yaml"),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        for loc in locate(ctx):
            if loc.now is None or loc.file is None:
                continue
            pos = loc.source.line_pos
            line, col = (pos.line, pos.col) if pos else (loc.knob.position.line, loc.knob.position.col)
            fix = Fix(ctx.registry_shown, line, col, col + len(str(loc.source.line)), str(loc.now),
                      f"set line: {loc.now}")
            yield self.finding(
                ctx.registry_shown, Span(line, col, line), loc.knob.name,
                f"{loc.source.file}:{loc.source.line} no longer holds {describe(loc.source)}; it is at line {loc.now} now",
                text=f"{loc.source.file}|{describe(loc.source)}", fix=fix)
