from __future__ import annotations

from collections.abc import Iterable

from ptycho_knobs.audit.findings import Finding, Span
from ptycho_knobs.audit.rule import AuditRule, Invalid, ProjectContext, Valid
from ptycho_knobs.audit.rules._locate import describe, locate


class MissingSource(AuditRule):
    """A registry source file, or the knob inside it, that is not found at all.

    **What.** A source whose file falls under the audited paths but is not in the scanned tree
    (deleted or renamed), or whose file no longer contains the callee keyword, field, flag or
    environment read at any line. Sources in files outside the audited paths are not checked
    (auditing `ptycho_torch/` says nothing about `ptycho/`). A source with only a `note:` names
    no code the audit can look for: only its file is checked.

    **Why.** The registry claims the knob lives somewhere; if it does not, either the code lost
    the setting or the registry describes code that no longer exists.

    **Example.** `{file: ptycho_torch/train_full.py, line: 233, env: RANK}` after train_full.py
    was removed.

    **Use instead.** Point the source at the new place, or delete it from the registry.
    """

    CODE = "PK004"
    NAME = "missing-source"
    MESSAGE = "A registry source file or knob is not found at all."
    PROJECT = True
    VALID = [
        Valid("from dataclasses import dataclass\nimport os\nrank = os.environ.get('RANK')\n"
              "from lightning.pytorch.callbacks import EarlyStopping\n"
              "@dataclass\nclass TrainingConfig:\n    num_workers: int = 4\n    scheduler: str = 'default'\n"
              "    learning_rate: float = 1e-3\n    p = EarlyStopping(patience=cfg.p)\n"
              "import argparse\nargparse.ArgumentParser().add_argument('--disable_mlflow', action='store_true')\n"),
    ]
    INVALID = [
        Invalid("from dataclasses import dataclass\nimport os\nrank = os.environ.get('RANK')\n"
                "from lightning.pytorch.callbacks import EarlyStopping\n"
                "@dataclass\nclass TrainingConfig:\n    workers: int = 4\n    scheduler: str = 'default'\n"
                "    learning_rate: float = 1e-3\n    p = EarlyStopping(patience=cfg.p)\n"
                "import argparse\nargparse.ArgumentParser().add_argument('--disable_mlflow', action='store_true')\n",
                78, 47, "[num_workers] ptycho_torch/example.py has no field TrainingConfig.num_workers any more "
                "(the registry says line 5)", path="knob_registry.yaml"),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        for loc in locate(ctx):
            pos = loc.source.line_pos
            line, col = (pos.line, pos.col) if pos else (loc.knob.position.line, loc.knob.position.col)
            at = Span(line, col, line)
            if loc.file is None:
                yield self.finding(ctx.registry_shown, at, loc.knob.name,
                                   f"source file {loc.source.file} is not in the audited tree",
                                   text=f"{loc.source.file}|file")
            elif not loc.occurrences:
                yield self.finding(ctx.registry_shown, at, loc.knob.name,
                                   f"{loc.file.shown} has no {describe(loc.source)} any more "
                                   f"(the registry says line {loc.source.line})",
                                   text=f"{loc.source.file}|{describe(loc.source)}")
