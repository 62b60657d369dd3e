from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ptycho_knobs.audit.findings import NOT_LITERAL, Finding
from ptycho_knobs.audit.index import matches, matches_default, normalise
from ptycho_knobs.audit.rule import AuditRule, FileContext, Invalid, Valid
from ptycho_knobs.ktypes import Knob


class DefaultDrift(AuditRule):
    """A default in code that differs from the registry default.

    **What.** Four places a default hides: a literal at a watched call site
    (`EarlyStopping(patience=50)` when the registry says 100); a dataclass field default in
    the file and class a `field:` source names (`TrainingConfig.num_workers: int = 8`); an
    argparse `add_argument('--flag', default=...)` whose flag a source names, or whose dest
    is a knob's name or alias; an `os.environ.get('RANK', 1)` / `os.getenv` default for an
    environment knob. Values are compared after normalising to the knob's type (`1e-3` equals
    `0.001`; `'0'` equals `0` for an int knob), and an inverted target
    (`enable_progress_bar` for `quiet`) is compared inverted. `default=None` on a flag means
    "not given" and is not compared.

    **Why.** Two defaults for one setting means the behaviour depends on which entry point
    ran: the CLI, the dataclass, or a notebook.

    **Example.** `scheduler: str = 'Default'` while the registry says `default`.

    **Use instead.** Change the code (or the registry) so both say the same; better, take the
    default from the generated config.
    """

    CODE = "PK002"
    NAME = "default-drift"
    MESSAGE = "A default in code differs from the registry default."
    VALID = [
        Valid("from dataclasses import dataclass\n@dataclass\nclass TrainingConfig:\n    batch_size: int = 16\n"
              "    num_workers: int = 4\n    scheduler: str = 'default'\n    learning_rate: float = 1e-3\n"),
        Valid("import os\nrank = int(os.environ.get('RANK', '0'))\n"),
        Valid("import argparse\np = argparse.ArgumentParser()\np.add_argument('--disable_mlflow', action='store_true')\n"
              "p.add_argument('--epochs', type=int, default=None)\n"),
        Valid("import lightning as L\ntrainer = L.Trainer(enable_progress_bar=True, max_epochs=100)\n"),
    ]
    INVALID = [
        Invalid("from lightning.pytorch.callbacks import EarlyStopping\nstop = EarlyStopping(patience=50)\n", 2, 22,
                "[early_stop_patience] EarlyStopping(patience=50) differs from the registry default 100"),
        Invalid("from dataclasses import dataclass\n@dataclass\nclass TrainingConfig:\n    batch_size: int = 16\n"
                "    num_workers: int = 4\n    scheduler: str = 'Default'\n", 6, 5,
                "[scheduler_type] TrainingConfig.scheduler defaults to 'Default'; the registry default is 'default'"),
        Invalid("import argparse\np = argparse.ArgumentParser()\np.add_argument('--max-epochs', type=int, default=50)\n",
                3, 1, "[epochs] flag --max-epochs defaults to 50; the registry default is 100"),
        Invalid("import os\nrank = int(os.environ.get('RANK', 1))\n", 2, 12,
                "[rank] environment variable RANK defaults to 1; the registry default is 0"),
        Invalid("import lightning as L\ntrainer = L.Trainer(enable_progress_bar=False)\n", 2, 21,
                "[quiet] Trainer(enable_progress_bar=False) means quiet=True; the registry default is False"),
    ]

    def check_file(self, ctx: FileContext) -> Iterable[Finding]:
        index = ctx.index
        scope_of = lambda at: (at.line, at.end_line)  # noqa: E731
        for call in ctx.facts.calls:
            for arg in call.args:
                if not arg.literal:
                    continue
                owner = index.owner(call.callee, arg.keyword, ctx.pure, call.at.line, call.at.end_line)
                if owner is None or matches_default(owner.knob, arg.value, owner.invert):
                    continue
                knob = owner.knob
                if owner.invert:
                    said = f"means {knob.name}={(not arg.value)!r}"
                else:
                    said = "differs from"
                sep = "; the registry default is" if owner.invert else " the registry default"
                yield self.finding(ctx.shown, arg.at, knob.name,
                                   f"{call.callee}({arg.keyword}={arg.value!r}) {said}{sep} {knob.default!r}",
                                   text=call.text, scope=(call.at.line, call.at.end_line))
        for knob, src in index.fields:
            if not matches(ctx.pure, src.file):
                continue
            cls, attr = src.field.split(".", 1)  # type: ignore[union-attr]
            for f in ctx.facts.fields:
                if f.ref or f.cls != cls or f.attr != attr or not f.has_default or f.value is NOT_LITERAL:
                    continue
                if not matches_default(knob, f.value):
                    yield self.finding(ctx.shown, f.at, knob.name,
                                       f"{cls}.{attr} defaults to {f.value!r}; the registry default is {knob.default!r}",
                                       text=f.text, scope=scope_of(f.at))
        for flag in ctx.facts.flags:
            if not flag.has_default or flag.value is NOT_LITERAL or flag.value is None:
                continue
            knob = index.flag_knob(flag.flags, flag.dest)
            if knob is None or matches_default(knob, flag.value):
                continue
            shown = next((f for f in flag.flags if f.startswith("--")), flag.flags[0])
            yield self.finding(ctx.shown, flag.at, knob.name,
                               f"flag {shown} defaults to {flag.value!r}; the registry default is {knob.default!r}",
                               text=flag.text, scope=scope_of(flag.at))
        for env in ctx.facts.envs:
            if not env.has_default or env.value is NOT_LITERAL or env.var not in index.env:
                continue
            knob = index.env[env.var][0][0]
            if same_env(knob, env.value):
                continue
            yield self.finding(ctx.shown, env.at, knob.name,
                               f"environment variable {env.var} defaults to {env.value!r}; "
                               f"the registry default is {knob.default!r}",
                               text=env.text, scope=scope_of(env.at))


def same_env(knob: Knob, value: Any) -> bool:
    return matches_default(knob, value) or normalise(knob, str(value)) == knob.default

