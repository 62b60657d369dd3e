from __future__ import annotations

from collections.abc import Iterable

from ptycho_knobs.audit.findings import Finding
from ptycho_knobs.audit.model import Model, unreachable_note
from ptycho_knobs.audit.rule import AuditRule, Invalid, ProjectContext, Valid

_ARGS = ("args", "opts", "options", "namespace", "parsed", "parsed_args", "cli_args")


class UnusedSetting(AuditRule):
    """A knob-carrying field or flag nothing reads, or a read of a setting nothing defines.

    **What.** Three generic checks over the whole audited tree (and registered files outside
    it):
    - a field of a config class that carries a registered knob, read nowhere: no `obj.field`
      load on an object that could be of that class, no `getattr(obj, 'field')`, no string
      `'field'` (dumping a config with `asdict` for logging is not reading it);
    - an argparse flag of a registered knob whose dest nothing reads (`args.dest`,
      `getattr(args, 'dest')`, `vars(args)`);
    - `getattr(obj, 'name', default)` (or a check or branch on `obj.name`) where `obj` is known to
      be a config class (annotation, constructor, `self`, the registry's `configs` vars) that has
      no field `name`, so the default is always used; and `getattr(args, 'name', default)` for a
      dest no parser in the tree defines.

    **Why.** A setting that is parsed or stored but never read silently does nothing; a read of
    a name nothing defines silently uses its fallback.

    **Example.** `TrainingConfig.strategy: str = 'ddp'` while every consumer reads
    `execution_config.strategy`.

    **Use instead.** Wire the setting to its consumer, or remove it; read the field the class has.
    """

    CODE = "PK011"
    NAME = "unused-setting"
    MESSAGE = "A knob's field or flag is read nowhere, or a read names a field nothing defines."
    PROJECT = True
    PRIORITY = 15
    VALID = [
        Valid("from dataclasses import dataclass\n@dataclass\nclass TrainingConfig:\n    num_workers: int = 4\n"
              "def loader(training_config: TrainingConfig):\n    return training_config.num_workers\n"),
    ]
    INVALID = [
        Invalid("from dataclasses import dataclass\n@dataclass\nclass TrainingConfig:\n    num_workers: int = 4\n"
                "    scheduler: str = 'default'\n"
                "def loader(training_config: TrainingConfig):\n    return training_config.num_workers\n", 5, 5,
                "[scheduler_type] TrainingConfig.scheduler is read nowhere in the tree: setting it changes nothing"),
        Invalid("from dataclasses import dataclass\n@dataclass\nclass TrainingConfig:\n    num_workers: int = 4\n"
                "def loader(training_config: TrainingConfig):\n"
                "    return getattr(training_config, 'learning_rate', 0.001), training_config.num_workers\n", 6, 12,
                "[learning_rate] getattr(training_config, 'learning_rate', ...) always gives 0.001: training_config is "
                "a TrainingConfig (ptycho_torch/example.py:3), which has no field learning_rate"),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        model = ctx.model
        if ctx.complete_reads:
            yield from self._dead_fields(model)
        yield from self._dead_flags(model)
        yield from self._undefined(model)

    def _dead_fields(self, model: Model) -> Iterable[Finding]:
        registry = model.project.index.registry
        strings = set().union(*(f.facts.strings for f in model.project.all_files))
        for infos in model.classes.values():
            for info in infos:
                if not info.config:
                    continue
                for attr, st in info.fields.items():
                    owner = model.knob_of(info.file, st)
                    if owner is None:
                        continue
                    if attr in strings or self._read(model, info, attr):
                        continue
                    knob = owner[0]
                    others = [lay for lay in model.of(knob.name, "field") if lay.stmt is not st and lay.file is not None]
                    hint = ""
                    if others:
                        hint = "; consumers read " + ", ".join(f"{lay.label} ({lay.where})" for lay in others[:3])
                    yield self.finding(info.file.shown, st.at, knob.name,
                                       f"{info.name}.{attr} is read nowhere in the tree: setting it changes nothing{hint}",
                                       text=f"{knob.name}|dead-field|{info.name}.{attr}", scope=(st.at.line, st.at.end_line))
        del registry

    def _read(self, model: Model, info: object, attr: str) -> bool:
        """A load of `.attr` on any object that could be of the class (not known to be another)."""
        for f in model.project.all_files:
            for name, recv in f.facts.loads:
                if name != attr:
                    continue
                other = model.receiver_class(f, "", recv) if recv else None
                if other is None or other is info:
                    return True
        return False

    def _dead_flags(self, model: Model) -> Iterable[Finding]:
        dests_read: set[str] = set()
        everything = False
        for f in model.project.all_files:
            dests_read.update(name for name, recv in f.facts.loads if recv.rsplit(".", 1)[-1] in _ARGS)
            dests_read.update(f.facts.strings)
            if any(s.func == "vars" for s in f.facts.sites):
                everything = True
        if everything:
            return
        for f in model.project.files:
            for st in f.facts.stmts:
                if st.kind != "flag" or st.name in dests_read:
                    continue
                owner = model.knob_of(f, st)
                if owner is None:
                    continue
                yield self.finding(f.shown, st.at, owner[0].name,
                                   f"{st.owner.split(',')[0]} is parsed into args.{st.name}, which nothing reads"
                                   f"{unreachable_note(model, f, st.scope)}",
                                   text=f"{owner[0].name}|dead-flag|{st.name}", scope=(st.at.line, st.at.end_line))

    def _undefined(self, model: Model) -> Iterable[Finding]:
        for f, st, info in model.undefined:
            if f not in model.project.files:
                continue
            knob = model.project.index.registry.find_attr(st.name)
            elsewhere = ""
            if knob is not None:
                carriers = [lay for lay in model.of(knob[0].name, "field") if lay.stmt is not None]
                if carriers:
                    elsewhere = "; " + ", ".join(f"{lay.label} ({lay.where}) has it, default {lay.stmt.value!r}"
                                                 for lay in carriers[:2])  # type: ignore[union-attr]
            what = f"getattr({st.owner}, {st.name!r}, ...) always gives {st.value!r}" if st.kind == "fallback" else \
                f"{st.owner}.{st.name} is read"
            yield self.finding(f.shown, st.at, knob[0].name if knob else None,
                               f"{what}: {st.owner} is a {info.name} ({info.file.shown}:{info.defn.at.line}), which has "
                               f"no field {st.name}{elsewhere}{unreachable_note(model, f, st.scope)}",
                               text=f"undefined|{st.owner}.{st.name}", scope=(st.at.line, st.at.end_line))
        dests = {st.name for g in model.project.all_files for st in g.facts.stmts if st.kind == "flag"}
        if not dests:
            return
        for f in model.project.files:
            for st in f.facts.stmts:
                if st.kind != "fallback" or st.form != "getattr" or st.owner.rsplit(".", 1)[-1] not in _ARGS:
                    continue
                if st.name in dests:
                    continue
                knob = model.project.index.registry.find_attr(st.name)
                yield self.finding(f.shown, st.at, knob[0].name if knob else None,
                                   f"getattr({st.owner}, {st.name!r}, ...) always gives {st.value!r}: no parser in the "
                                   f"tree defines a dest {st.name!r}{unreachable_note(model, f, st.scope)}",
                                   text=f"undefined-dest|{st.name}", scope=(st.at.line, st.at.end_line))
