from __future__ import annotations

from collections.abc import Iterable

from ptycho_knobs.audit.findings import NOT_LITERAL, Arg, Edit, Finding
from ptycho_knobs.audit.index import call_role, config_field
from ptycho_knobs.audit.model import Model, carrier, unreachable_note, wrapped_arguments
from ptycho_knobs.audit.rule import AuditRule, FileContext, Invalid, ProjectContext, Valid
from ptycho_knobs.ktypes import Knob


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
    PROJECT = True
    PRIORITY = 5
    VALUE = True
    VALID = [
        Valid("from lightning.pytorch.callbacks import EarlyStopping\n"
              "def build(cfg):\n    return EarlyStopping(patience=cfg.early_stop_patience)\n"),
        Valid("import lightning as L\ntrainer = L.Trainer(log_every_n_steps=50)\n"),
        Valid("class Trainer:\n    pass\ntrainer = Trainer(check_val_every_n_epoch=1)\n"),
        Valid("from torch.utils.data import DataLoader\nval = DataLoader(ds, shuffle=False)  # shuffle_val is fixed\n"),
    ]
    INVALID = [
        Invalid("from lightning.pytorch.callbacks import EarlyStopping\nstop = EarlyStopping('val_loss', patience=100)\n"
                "class PyTorchExecutionConfig:\n    early_stop_patience: int = 100\n",
                2, 34, "[early_stop_patience] literal 100 passed as EarlyStopping(patience=...); "
                "take it from PyTorchExecutionConfig.early_stop_patience (ptycho_torch/example.py:4, default 100)"),
        Invalid("import lightning as L\ntrainer = L.Trainer(\n    max_epochs=cfg.epochs,\n    check_val_every_n_epoch=1,\n)\n",
                4, 5, "[check_val_every_n_epoch] literal 1 passed as Trainer(check_val_every_n_epoch=...); "
                "no config class in the tree has a field for check_val_every_n_epoch yet (the generated "
                "PyTorchExecutionConfig.check_val_every_n_epoch does)"),
        Invalid("from torch.utils.data import DataLoader\nloader = DataLoader(ds, 32, pin_memory=True, num_workers=cfg.n)\n",
                2, 29, "[pin_memory] literal True passed as DataLoader(pin_memory=...); "
                "no config class in the tree has a field for pin_memory yet (the generated PyTorchExecutionConfig.pin_memory does)"),
        Invalid("from lightning.pytorch.strategies import DDPStrategy\n"
                "def strategy():\n    kwargs = dict(process_group_backend=cfg.backend)\n"
                "    kwargs['find_unused_parameters'] = False\n    return DDPStrategy(**kwargs)\n",
                4, 5, "[ddp_find_unused_parameters] literal False passed as DDPStrategy(find_unused_parameters=...); "
                "no config class in the tree has a field for ddp_find_unused_parameters yet (the generated "
                "PyTorchExecutionConfig.ddp_find_unused_parameters does)"),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        model = ctx.model
        for f, call, arg, owner in ctx.knob_literals():
            yield self._report(model, f, arg, owner.knob, owner.invert, f"{call.callee}({arg.keyword}=...)",
                               call.text, (call.at.line, call.at.end_line), call.scope)
        for f, site, arg, name, wrap in wrapped_arguments(model, ctx.files):
            if not wrap.knob.settable or wrap.knob.category.value == "reproducibility":
                continue  # literal seeds are PK015's
            if wrap.knob.role and wrap.knob.role != ctx_role(site.scope):
                continue  # a training knob's literal in an evaluation loader, or the reverse
            via = f"{site.func}({name}=...), which passes it to {wrap.callee}({wrap.keyword}=...) at {wrap.file.shown}:{wrap.line}"
            yield self._report(model, f, arg, wrap.knob, wrap.invert, via, site.text,
                               (site.at.line, site.at.end_line), site.scope)

    def _report(self, model: Model, f: FileContext, arg: Arg, knob: Knob, invert: bool, where: str, text: str,
                scope: tuple[int, int], in_scope: str) -> Finding:
        home = carrier(model, knob)
        value = (not arg.value) if invert and isinstance(arg.value, bool) else arg.value
        if home is not None and home.stmt is not None:
            said = "" if home.stmt.value is NOT_LITERAL else f", default {home.stmt.value!r}"
            attr, cls = home.stmt.name, home.stmt.owner
            flip = invert != home.invert  # the field may hold the opposite (a field alias, an inverted tf: field)
            negate = "not " if flip else ""
            source = f"take it from {negate}{home.stmt.owner}.{home.stmt.name} ({home.where}{said})"
        else:
            source = (f"no config class in the tree has a field for {knob.name} yet "
                      f"(the generated {config_field(knob)} does)")
            attr, cls, flip = knob.name, knob.home.class_name, invert
        meaning = f" (that is {knob.name}={value!r})" if invert else ""
        edits = ()
        if arg.value_at is not None and cls:
            edits = (Edit("use-config", f.shown, arg.value_at, knob.name, config_class=cls, attr=attr, invert=flip),)
        note = unreachable_note(model, f, in_scope)
        return self.finding(f.shown, arg.at, knob.name, f"literal {arg.value!r} passed as {where}{meaning}; {source}{note}",
                            text=text, scope=scope, edits=edits)


def ctx_role(scope: str) -> str:
    return call_role(scope, "")


