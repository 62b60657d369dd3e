from __future__ import annotations

from collections.abc import Iterable

from ptycho_knobs.audit.findings import Finding
from ptycho_knobs.audit.model import unreachable_note
from ptycho_knobs.audit.rule import AuditRule, Invalid, ProjectContext, Valid
from ptycho_knobs.audit.rules.signature_drift import signature


class DroppedConfig(AuditRule):
    """A config object is built, then not passed to the callee that would use it.

    **What.** Inside a function, a local holds an object of a config class (built by the class
    or by a helper that returns one). A later call to an in-tree callable that has a parameter
    of the same name, defaulting to None, does not pass it (neither by keyword, nor by position,
    nor through `**kwargs`). The callee then runs on its own defaults: every setting the caller
    resolved (CLI flags included) is silently dropped on that path.

    **Why.** The entry point parses and validates the user's flags, then throws them away one
    call later; nothing fails, the run just ignores them.

    **Example.** `execution_config = build_execution_config_from_args(args)` followed by
    `run_workflow(train, test, config)` where `run_workflow(..., execution_config=None)`.

    **Use instead.** Pass it: `run_workflow(train, test, config, execution_config=execution_config)`.
    """

    CODE = "PK017"
    NAME = "dropped-config"
    MESSAGE = "A config object is built, then not passed to the callee that takes it."
    PROJECT = True
    PRIORITY = 16
    VALID = [
        Valid("class TrainingConfig:\n    num_workers: int = 4\n"
              "def run(data, training_config=None):\n    return data\n"
              "def main():\n    training_config = TrainingConfig()\n    run(1, training_config=training_config)\n"),
    ]
    INVALID = [
        Invalid("class TrainingConfig:\n    num_workers: int = 4\n"
                "def run(data, training_config=None):\n    return data\n"
                "def main():\n    training_config = TrainingConfig()\n    run(1)\n", 7, 5,
                "run(...) does not pass training_config (a TrainingConfig built at ptycho_torch/example.py:6), so "
                "run's training_config parameter (ptycho_torch/example.py:3) stays None and every setting in it is dropped"),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        model = ctx.model
        returns: dict[str, str] = {}  # helper -> the config class it returns
        for f in ctx.all_files:
            for d in f.facts.defs:
                for r in d.returns:
                    info = model.resolve_class(f, r)
                    if info is not None and info.config:
                        returns[d.qualname.rsplit(".", 1)[-1]] = info.name
        for f in ctx.files:
            for d in f.facts.defs:
                if d.kind != "def" or not d.locals:
                    continue
                held: dict[str, tuple[str, int]] = {}
                for local, callee, line in d.locals:
                    info = model.resolve_class(f, callee)
                    cls = info.name if info is not None and info.config else returns.get(callee)
                    if cls:
                        held.setdefault(local, (cls, line))
                if not held:
                    continue
                for site in f.facts.sites:
                    if site.scope != d.qualname or site.splat:
                        continue
                    sig = signature(model, site.func)
                    if sig is None:
                        continue
                    (where, callee_def), params = sig
                    passed = {k for k, _ in site.names if not k.startswith("#")} | {
                        a.keyword for a in site.args if not a.keyword.startswith("#")}
                    npos = int(dict(site.names).get("#n", "0"))
                    for i, (name, default, _, has_default) in enumerate(params):
                        if name not in held or not has_default or default is not None:
                            continue
                        cls, line = held[name]
                        if line >= site.at.line or name in passed or i < npos:
                            continue
                        fallback = next((ln for local, callee, ln in callee_def.locals
                                         if local == name and model.resolve_class(where, callee) is not None), None)
                        then = (f", so it runs with {cls}() ({where.shown}:{fallback})" if fallback else
                                f", so {site.func}'s {name} parameter ({where.shown}:{callee_def.at.line}) stays None")
                        if fallback:
                            then = (f", so {site.func}'s {name} parameter ({where.shown}:{callee_def.at.line}) defaults "
                                    f"to None and it runs with {cls}() ({where.shown}:{fallback})")
                        else:
                            then += " and every setting in it is dropped"
                        yield self.finding(
                            f.shown, site.at, None,
                            f"{site.func}(...) does not pass {name} (a {cls} built at {f.shown}:{line}){then}"
                            f"{unreachable_note(model, f, site.scope)}",
                            text=f"dropped|{site.func}|{name}", scope=(site.at.line, site.at.end_line),
                            related=((f.shown, line, f"{name} built"), (where.shown, callee_def.at.line, f"{site.func} signature")))
