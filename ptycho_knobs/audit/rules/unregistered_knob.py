from __future__ import annotations

from collections.abc import Iterable

from ptycho_knobs.audit.findings import Finding
from ptycho_knobs.audit.index import STRUCTURAL_KEYWORDS
from ptycho_knobs.audit.rule import AuditRule, FileContext, Invalid, Valid


class UnregisteredKnob(AuditRule):
    """A literal keyword to a watched call that no registered knob owns.

    **What.** `L.Trainer(log_every_n_steps=50)` when the registry has no knob whose source
    or target is `Trainer.log_every_n_steps`. Keywords that wire objects together rather than
    tune them (`dataset`, `callbacks`, `dirpath`, `filename`, `collate_fn`, ...) are left
    alone, and so is every value that is not a literal.

    **Why.** The catalog stays complete only if new hard-coded settings are noticed when they
    are written, not months later.

    **Example.** `trainer = L.Trainer(log_every_n_steps=50)`

    **Use instead.** Add a knob to `knob_registry.yaml` (its `target: Trainer.log_every_n_steps`),
    regenerate, and pass `cfg.log_every_n_steps`.
    """

    CODE = "PK005"
    NAME = "unregistered-knob"
    MESSAGE = "A literal keyword to a watched call that no registered knob owns."
    VALID = [
        Valid("import lightning as L\ntrainer = L.Trainer(check_val_every_n_epoch=cfg.n)\n"),
        Valid("from lightning.pytorch.callbacks import ModelCheckpoint\nfrom torch.utils.data import DataLoader\n"
              "loader = DataLoader(dataset=ds, collate_fn=None)\n"),
        Valid("import lightning as L\ntrainer = L.Trainer(log_every_n_steps=cfg.log_every)\n"),
    ]
    INVALID = [
        Invalid("import lightning as L\ntrainer = L.Trainer(log_every_n_steps=50)\n", 2, 21,
                "Trainer(log_every_n_steps=50) hard-codes a setting no registered knob owns; "
                "register a knob for Trainer.log_every_n_steps or pass it from config"),
        Invalid("from torch.utils.data import DataLoader\nloader = DataLoader(ds, 64)\n", 2, 25,
                "DataLoader(batch_size=64) hard-codes a setting no registered knob owns; "
                "register a knob for DataLoader.batch_size or pass it from config"),
    ]

    def check_file(self, ctx: FileContext) -> Iterable[Finding]:
        for call in ctx.facts.calls:
            for arg in call.args:
                if not arg.literal or arg.keyword in STRUCTURAL_KEYWORDS:
                    continue
                if ctx.index.owners.get((call.callee, arg.keyword)):
                    continue
                yield self.finding(
                    ctx.shown, arg.at, None,
                    f"{call.callee}({arg.keyword}={arg.value!r}) hard-codes a setting no registered knob owns; "
                    f"register a knob for {call.callee}.{arg.keyword} or pass it from config",
                    text=call.text, scope=(call.at.line, call.at.end_line))
