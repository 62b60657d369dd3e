from __future__ import annotations

from collections.abc import Iterable

from ptycho_knobs.audit.findings import NOT_LITERAL, Finding, Span
from ptycho_knobs.audit.model import unreachable_note, wrapped_arguments
from ptycho_knobs.audit.rule import AuditRule, Invalid, ProjectContext, Valid
from ptycho_knobs.ktypes import Category


class HardcodedSeed(AuditRule):
    """A literal seed: a reproducibility knob hard-coded at a seeding call, a seed helper or a
    fallback.

    **What.** A literal passed where a reproducibility knob (registry category
    `reproducibility`) flows: straight to a watched seeding call (`seed_everything(42)`), to an
    in-tree helper whose parameter reaches one unchanged (`set_seed(42)` where `set_seed` calls
    `seed_everything(seed)`), or as the `or` fallback of a seed read (`getattr(cfg, 'seed', None)
    or 42`, which also replaces a seed of 0). One finding per place, each naming the others.

    **Why.** Literal seeds in independent places cannot be changed together; a run that claims
    to be seeded by config is not.

    **Example.** `set_seed(42, n_devices=cfg.n_devices)` in the training entry point.

    **Use instead.** Pass the configured seed (`seed` in the registry).
    """

    CODE = "PK015"
    NAME = "hardcoded-seed"
    MESSAGE = "A reproducibility knob is hard-coded at a seeding call, seed helper or fallback."
    PROJECT = True
    PRIORITY = 18
    VALUE = True
    VALID = [
        Valid("import lightning as L\ndef set_seed(seed=42):\n    L.seed_everything(seed)\n"
              "def main(cfg):\n    set_seed(cfg.seed)\n"),
    ]
    INVALID = [
        Invalid("import lightning as L\ndef set_seed(seed=42):\n    L.seed_everything(seed)\n"
                "def main(cfg):\n    set_seed(42)\n", 5, 14,
                "[seed] literal seed 42 passed to set_seed(seed=...), which passes it to seed_everything(seed=...) "
                "at ptycho_torch/example.py:3"),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        model = ctx.model
        found: list[tuple[str, int, int, int, str, str, str]] = []  # path, line, col, end, knob, message, scope-file
        for f in ctx.files:
            for call in f.facts.calls:
                for arg in call.args:
                    if not arg.literal:
                        continue
                    owner = ctx.index.owner(call.callee, arg.keyword, f.pure, call.at.line, call.at.end_line)
                    if owner is None or owner.knob.category is not Category.REPRODUCIBILITY:
                        continue
                    found.append((f.shown, arg.at.line, arg.at.col, call.at.end_line, owner.knob.name,
                                  f"literal seed {arg.value!r} passed as {call.callee}({arg.keyword}=...)"
                                  f"{unreachable_note(model, f, call.scope)}", ""))
        for f, site, arg, name, wrap in wrapped_arguments(model, ctx.files):
            if wrap.knob.category is Category.REPRODUCIBILITY:
                found.append((f.shown, arg.at.line, arg.at.col, site.at.end_line, wrap.knob.name,
                              f"literal seed {arg.value!r} passed to {site.func}({name}=...), which passes it to "
                              f"{wrap.callee}({wrap.keyword}=...) at {wrap.file.shown}:{wrap.line}"
                              f"{unreachable_note(model, f, site.scope)}", ""))
        for knob in ctx.index.registry.knobs:
            if knob.category is not Category.REPRODUCIBILITY:
                continue
            for lay in model.of(knob.name, "fallback"):
                st = lay.stmt
                if st is None or st.form != "or" or lay.value is NOT_LITERAL or lay.file not in ctx.files:
                    continue
                found.append((lay.path, lay.line, lay.col, st.at.end_line, knob.name,
                              f"literal seed {st.value!r} is the fallback of {st.owner}.{st.name} ({st.text}): it "
                              f"replaces a missing seed and a seed of 0 alike"
                              f"{unreachable_note(model, lay.file, st.scope)}", ""))
        found.sort(key=lambda item: item[:3])  # "also at" lists in file order, whichever pass found them
        for path, line, col, end, knob, message, _ in found:
            others = [f"{p}:{ln}" for p, ln, _, _, k, _, _ in found if (p, ln) != (path, line)]
            also = f"; literal seeds also at {', '.join(others)}" if others else ""
            yield self.finding(path, Span(line, col, end), knob, message + also, text=f"seed|{message}",
                               scope=(line, end), related=tuple((p, ln, "literal seed") for p, ln, _, _, _, _, _ in found
                                                                if (p, ln) != (path, line)))
