from __future__ import annotations

from collections.abc import Iterable

from ptycho_knobs.audit.findings import Edit, Finding
from ptycho_knobs.audit.index import config_field
from ptycho_knobs.audit.rule import AuditRule, FileContext, Invalid, Valid


class HardcodedKnob(AuditRule):
    """A literal passed to a watched call where a registered knob should flow from config.

    **What.** `EarlyStopping(patience=100)`, `L.Trainer(check_val_every_n_epoch=1)`,
    `DDPStrategy(process_group_backend='nccl')`: a number, string, bool or None (or simple
    arithmetic on them) given for a keyword that a registry knob owns, by a source
    (`callee` + `keyword`) or a target (`EarlyStopping.patience`). Positional arguments count
    once bound to their keyword, and so do the items of a `**kwargs` dict built in the same
    function.

    **Why.** The value ignores the config: users cannot change it, and the config field that
    claims to control it silently does nothing.

    **Example.** `EarlyStopping(monitor="val_loss", patience=100)`

    **Use instead.** `EarlyStopping(monitor="val_loss", patience=cfg.early_stop_patience)`
    """

    CODE = "PK001"
    NAME = "hardcoded-knob"
    MESSAGE = "A literal is passed where a registered knob should flow from config."
    VALID = [
        Valid("from lightning.pytorch.callbacks import EarlyStopping\n"
              "def build(cfg):\n    return EarlyStopping(patience=cfg.early_stop_patience)\n"),
        Valid("import lightning as L\ntrainer = L.Trainer(log_every_n_steps=50)\n"),
        Valid("class Trainer:\n    pass\ntrainer = Trainer(check_val_every_n_epoch=1)\n"),
        Valid("from torch.utils.data import DataLoader\nval = DataLoader(ds, shuffle=False)  # shuffle_val is fixed\n"),
    ]
    INVALID = [
        Invalid("from lightning.pytorch.callbacks import EarlyStopping\nstop = EarlyStopping('val_loss', patience=100)\n",
                2, 34, "[early_stop_patience] literal 100 passed as EarlyStopping(patience=...); "
                "take it from PyTorchExecutionConfig.early_stop_patience"),
        Invalid("import lightning as L\ntrainer = L.Trainer(\n    max_epochs=cfg.epochs,\n    check_val_every_n_epoch=1,\n)\n",
                4, 5, "[check_val_every_n_epoch] literal 1 passed as Trainer(check_val_every_n_epoch=...); "
                "take it from PyTorchExecutionConfig.check_val_every_n_epoch"),
        Invalid("from torch.utils.data import DataLoader\nloader = DataLoader(ds, 32, pin_memory=True, num_workers=cfg.n)\n",
                2, 29, "[pin_memory] literal True passed as DataLoader(pin_memory=...); "
                "take it from PyTorchExecutionConfig.pin_memory"),
        Invalid("from lightning.pytorch.strategies import DDPStrategy\n"
                "def strategy():\n    kwargs = dict(process_group_backend=cfg.backend)\n"
                "    kwargs['find_unused_parameters'] = False\n    return DDPStrategy(**kwargs)\n",
                4, 5, "[ddp_find_unused_parameters] literal False passed as DDPStrategy(find_unused_parameters=...); "
                "take it from PyTorchExecutionConfig.ddp_find_unused_parameters"),
    ]

    def check_file(self, ctx: FileContext) -> Iterable[Finding]:
        for call in ctx.facts.calls:
            for arg in call.args:
                if not arg.literal:
                    continue
                owner = ctx.index.owner(call.callee, arg.keyword, ctx.pure, call.at.line, call.at.end_line)
                # An implicit knob is fixed by design: its literal is the design, and
                # default-drift still reports a literal that differs from it.
                if owner is None or not owner.knob.settable:
                    continue
                knob = owner.knob
                edits = ()
                if arg.value_at is not None and knob.home.class_name:
                    edits = (Edit("use-config", ctx.shown, arg.value_at, knob.name, config_class=knob.home.class_name,
                                  attr=knob.name, invert=owner.invert),)
                yield self.finding(
                    ctx.shown, arg.at, knob.name,
                    f"literal {arg.value!r} passed as {call.callee}({arg.keyword}=...); "
                    f"take it from {config_field(knob)}",
                    text=call.text, scope=(call.at.line, call.at.end_line), edits=edits)
