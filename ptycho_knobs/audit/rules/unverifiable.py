from __future__ import annotations

from collections.abc import Iterable

from ptycho_knobs.audit.findings import Finding
from ptycho_knobs.audit.rule import AuditRule, FileContext, Invalid, Valid


class Unverifiable(AuditRule):
    """A watched call receives `**kwargs` (or `*args`) that cannot be resolved statically.

    **What.** `DDPStrategy(**kwargs)` where `kwargs` is a parameter, the result of a call, or
    a dict mutated through `.update()`. A dict literal or `dict(...)` assigned in the same
    function (plus `kwargs['key'] = value` items) is resolved and its items audited like
    keywords, so only what is truly unknown is reported.

    **Why.** Whatever arrives through the splat escapes every other rule; reporting it is
    better than calling the call clean.

    **Example.** `def build(**kw): return DDPStrategy(**kw)`

    **Use instead.** Pass the keywords explicitly from config, or build the dict literally in
    the same function; suppress with a reason where the splat is deliberate.
    """

    CODE = "PK007"
    NAME = "unverifiable"
    MESSAGE = "A watched call receives **kwargs the audit cannot resolve."
    VALID = [
        Valid("from lightning.pytorch.strategies import DDPStrategy\n"
              "def build(cfg):\n    kw = {'process_group_backend': cfg.backend}\n    return DDPStrategy(**kw)\n"),
        Valid("from lightning.pytorch.strategies import DDPStrategy\n"
              "def build(cfg):\n    return DDPStrategy(**dict(static_graph=cfg.static))\n"),
    ]
    INVALID = [
        Invalid("from lightning.pytorch.strategies import DDPStrategy\n"
                "def build(**kwargs):\n    return DDPStrategy(**kwargs)\n", 3, 24,
                "DDPStrategy(...) receives **kwargs that cannot be resolved statically; "
                "its keywords are not audited"),
        Invalid("import lightning as L\ndef build(opts):\n    kw = dict(opts)\n    kw.update(max_epochs=3)\n"
                "    return L.Trainer(**kw)\n", 5, 22,
                "Trainer(...) receives **kwargs that cannot be resolved statically; its keywords are not audited"),
    ]

    def check_file(self, ctx: FileContext) -> Iterable[Finding]:
        for call in ctx.facts.calls:
            for splat in call.splats:
                yield self.finding(
                    ctx.shown, splat, None,
                    f"{call.callee}(...) receives **kwargs that cannot be resolved statically; "
                    "its keywords are not audited",
                    text=call.text, scope=(call.at.line, call.at.end_line))
