from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ptycho_knobs.audit.findings import NOT_LITERAL, Edit, Finding, Span
from ptycho_knobs.audit.index import same
from ptycho_knobs.audit.model import Layer, Model, unreachable_note
from ptycho_knobs.audit.rule import AuditRule, Invalid, ProjectContext, Valid
from ptycho_knobs.ktypes import Knob


def rejects(check: Layer, value: Any) -> bool:
    """Whether a validation layer raises for `value` (knob sense)."""
    st = check.stmt
    assert st is not None
    if st.bound is not None:
        op, limit = st.bound
        if op == "in":
            return any(same(value, check.to_knob(v)) for v in limit)
        limit = check.to_knob(limit)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not isinstance(limit, (int, float)):
            return op in ("==", "!=") and ((value == limit) if op == "==" else (value != limit))
        return {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit,
                "==": value == limit, "!=": value != limit}[op]
    if check.choices is not None:
        return not any(same(value, c) for c in check.choices)
    return False


def condition(check: Layer) -> str:
    st = check.stmt
    assert st is not None
    if st.bound is not None:
        op, limit = st.bound
        return f"{st.name} in {limit!r}" if op == "in" else f"{st.name} {op} {limit!r}"
    return f"{st.name} not in {{{', '.join(repr(c) for c in sorted(check.choices or (), key=repr))}}}"


class OfferedRejected(AuditRule):
    """A value one layer offers that another rejects, or that its consumer does not handle.

    **What.** Offers are what a user is told they may pass: argparse `choices`, a `Literal[...]`
    field type, numbers the flag's help or the spec's field bullet tell the reader to use ("Set to
    -1 to save all checkpoints"), and the spec's "MUST be in {...}". They are checked against:
    validations that raise (`if x not in {...}: raise`, `if x < 0: raise`, `assert`; a raise that
    depends on another condition is reported with that condition), and consumers: an `if/elif`
    chain on the setting whose branch for an offered value only logs a warning, or a dict lookup
    (`device_map.get(cfg.accelerator, 'cpu')`) without the offered value as a key, so the value
    silently becomes the fallback. Also a knob whose registry bounds allow values a guarded
    validation rejects. One finding per knob and problem, at the offer (or the consumer), naming
    every other place.

    **Why.** The user did what the help, the spec or the parser said, and the run fails late, or
    worse, runs with something else.

    **Example.** `--checkpoint-save-top-k` help says "-1 saves all checkpoints" while
    `__post_init__` raises for any negative value.

    **Use instead.** Offer only what works: fix the help, the spec or `choices` (`ptycho-knobs fix`
    rewrites argparse `choices` to the registry's), or handle the value.
    """

    CODE = "PK010"
    NAME = "offered-rejected"
    MESSAGE = "A value offered by one layer is rejected, or not handled, by another."
    PROJECT = True
    PRIORITY = 20
    VALUE = True
    VALID = [
        Valid("import argparse\np = argparse.ArgumentParser()\n"
              "p.add_argument('--ddp-backend', choices=['nccl', 'gloo'], default='nccl')\n"
              "class PyTorchExecutionConfig:\n    ddp_backend: str = 'nccl'\n    def __post_init__(self):\n"
              "        if self.ddp_backend not in {'nccl', 'gloo'}:\n            raise ValueError('bad')\n"),
    ]
    INVALID = [
        Invalid("import argparse\np = argparse.ArgumentParser()\n"
                "p.add_argument('--ddp-backend', choices=['nccl', 'gloo', 'mpi'], default='nccl')\n"
                "class PyTorchExecutionConfig:\n    ddp_backend: str = 'nccl'\n    def __post_init__(self):\n"
                "        if self.ddp_backend not in {'nccl', 'gloo'}:\n            raise ValueError('bad')\n", 3, 1,
                "[ddp_backend] 'mpi' is offered by --ddp-backend choices (ptycho_torch/example.py:3) but rejected "
                "by the validation at ptycho_torch/example.py:7 (ddp_backend not in {'gloo', 'nccl'})"),
        Invalid("def device(cfg):\n    table = {'nccl': 'cuda', 'gloo': 'cpu'}\n"
                "    return table.get(cfg.ddp_backend, 'cpu')\n"
                "import argparse\nargparse.ArgumentParser().add_argument('--ddp-backend', choices=['nccl', 'gloo', 'mpi'])\n",
                3, 12, "[ddp_backend] 'mpi' is offered by --ddp-backend choices (ptycho_torch/example.py:5) but not "
                "handled by the lookup at ptycho_torch/example.py:3 (table has no 'mpi'), which falls back to 'cpu'"),
    ]

    def check_project(self, ctx: ProjectContext) -> Iterable[Finding]:
        model = ctx.model
        for knob in ctx.index.registry.knobs:
            layers = model.of(knob.name)
            offers = _offers(model, knob, layers)
            checks = [lay for lay in layers if lay.kind == "check" and lay.stmt is not None]
            yield from self._rejected(model, knob, offers, checks)
            yield from self._guarded(model, knob, layers, checks)
            yield from self._unhandled(model, knob, offers, layers)

    def _rejected(self, model: Model, knob: Knob, offers: list[tuple[Any, Layer, str]],
                  checks: list[Layer]) -> Iterable[Finding]:
        hard = [c for c in checks if c.stmt is not None and c.stmt.form in ("raise", "assert")]
        bad: dict[int, tuple[Layer, list[tuple[Any, Layer, str]]]] = {}
        for value, offer, how in offers:
            for check in hard:
                if rejects(check, value):
                    bad.setdefault(id(check), (check, []))[1].append((value, offer, how))
                    break
        for check, items in bad.values():
            values = _shown(items)
            code_offers = [o for _, o, _ in items if o.is_code]
            at = min(code_offers or [o for _, o, _ in items], key=lambda o: (o.path, o.line))
            line = next((ln for v, o, how in items if o is at for ln in [_offer_line(o, v)]), at.line)
            who = _join(dict.fromkeys(f"{how} ({o.where if o.kind not in ('flag',) else o.path + ':' + str(_offer_line(o, v))})"
                                       for v, o, how in items))
            edits = _choices_edit(knob, at, [v for v, o, _ in items if o is at])
            note = unreachable_note(model, at.file, at.stmt.scope) if at.file is not None and at.stmt else ""
            yield self.finding(at.path, Span(line, at.col if line == at.line else 1, line), knob.name,
                               f"{', '.join(values)} {'is' if len(values) == 1 else 'are'} offered by {who} but rejected "
                               f"by the validation at {check.where} ({condition(check)}){note}",
                               text=f"{knob.name}|rejected|{','.join(values)}", edits=edits,
                               related=tuple((o.path, o.line, how) for _, o, how in items if o is not at)
                               + ((check.path, check.line, "validation"),))

    def _guarded(self, model: Model, knob: Knob, layers: list[Layer], checks: list[Layer]) -> Iterable[Finding]:
        """A raise under another condition rejects values the registry and the validation accept."""
        for check in checks:
            st = check.stmt
            if st is None or st.form != "guard" or st.bound is None or not st.detail:
                continue
            op, limit = st.bound
            if not isinstance(limit, (int, float)) or isinstance(limit, bool):
                continue
            probe = {">": limit + 1, ">=": limit, "<": limit - 1, "<=": limit}.get(op)
            if probe is None or knob.constraints.violation(probe) is not None:
                continue
            if any(rejects(c, probe) for c in checks if c.stmt is not None and c.stmt.form in ("raise", "assert")):
                continue
            accepted = [c.where for c in checks if c is not check and c.stmt is not None and c.stmt.form != "guard"]
            offered = [lay.where + f" ({lay.label})" for lay in layers if lay.kind in ("flag", "spec-field", "spec-flag")]
            why = f"accepted by the registry ({knob.constraints.describe() or 'no bound'})"
            if accepted:
                why += f" and by the validation at {', '.join(accepted)}"
            if offered:
                why += f", offered by {', '.join(offered)}"
            note = unreachable_note(model, check.file, st.scope) if check.file is not None else ""
            yield self.finding(check.path, Span(check.line, check.col, check.line), knob.name,
                               f"{st.name} {op} {limit!r} raises at {check.where} whenever `{st.detail}`; values "
                               f"{why}{note}", text=f"{knob.name}|guard|{st.detail}",
                               related=tuple((lay.path, lay.line, lay.label) for lay in layers
                                             if lay.kind in ("flag", "spec-field", "spec-flag")))

    def _unhandled(self, model: Model, knob: Knob, offers: list[tuple[Any, Layer, str]],
                   layers: list[Layer]) -> Iterable[Finding]:
        for branch in (lay for lay in layers if lay.kind == "branch" and lay.stmt is not None):
            st = branch.stmt
            assert st is not None
            # what the consumer compares with, in the knob's sense (a `scheduler` branch on 'Default')
            choices = [branch.to_knob(c) for c in st.choices or ()]
            weak = [branch.to_knob(w) for w in st.weak]
            handled = [c for c in (st.choices or ()) if not any(same(branch.to_knob(c), w) for w in weak)]
            if st.form == "dict":
                missing = [(v, o, how) for v, o, how in offers if not any(same(v, h) for h in choices)]
                tail = f"which falls back to {st.value!r}" if st.value is not NOT_LITERAL else "which raises KeyError"
                what = f"the lookup at {branch.where} ({st.detail} has no {{}})"
            else:
                missing = [(v, o, how) for v, o, how in offers if any(same(v, w) for w in weak)]
                tail = "whose branch only logs a warning" + (
                    f" (the chain handles {', '.join(repr(h) for h in handled)})" if handled else "")
                what = f"the consumer at {branch.where}"
            values = _shown([(v, o, how) for v, o, how in missing if v is not None])
            if not values:
                continue
            who = _join(dict.fromkeys(f"{how} ({o.where})" for v, o, how in missing if v is not None))
            what = what.replace("{}", " or ".join(values))
            note = unreachable_note(model, branch.file, st.scope) if branch.file is not None else ""
            yield self.finding(branch.path, Span(branch.line, branch.col, st.at.end_line), knob.name,
                               f"{', '.join(values)} {'is' if len(values) == 1 else 'are'} offered by {who} but not "
                               f"handled by {what}, {tail}{note}", text=f"{knob.name}|unhandled|{st.detail}",
                               related=tuple((o.path, o.line, how) for _, o, how in missing))


def _offers(model: Model, knob: Knob, layers: list[Layer]) -> list[tuple[Any, Layer, str]]:
    """(value, layer, how it offers it) in the knob's sense."""
    out: list[tuple[Any, Layer, str]] = []
    for lay in layers:
        st = lay.stmt
        if lay.kind == "flag" and st is not None:
            # As written: a cli alias's value map is how our generated CLI reads the real spelling,
            # not what the real code does with it.
            out.extend((c, lay, f"{lay.label} choices") for c in lay.choices or ())
            for value in _help_offers(st.detail):
                out.append((value, lay, f"{lay.label} help"))
        elif lay.kind == "field" and lay.choices:
            out.extend((c, lay, f"{lay.label}'s Literal type") for c in lay.choices)
        elif lay.kind == "spec-field" and lay.spec is not None:
            out.extend((lay.to_knob(c), lay, "the spec") for c in lay.spec.choices or ())
            out.extend((lay.to_knob(c), lay, "the spec") for c in lay.spec.offers)
        elif lay.kind == "spec-flag" and lay.spec is not None:
            out.extend((lay.to_knob(c), lay, "the spec's flag table") for c in lay.spec.offers)
        elif lay.kind == "check" and st is not None and lay.choices and st.bound is None and st.form != "guard":
            out.extend((c, lay, "the validation's accepted values") for c in lay.choices)
    return out


def _shown(items: list[tuple[Any, Layer, str]]) -> list[str]:
    """The distinct offered values, each as the first layer offering it writes it ('MultiStage'
    for a `scheduler` field, though compared as the knob's 'multistage')."""
    shown: dict[str, str] = {}
    for value, offer, _ in items:
        shown.setdefault(repr(value), repr(offer.spelled(value)))
    return list(dict.fromkeys(shown.values()))


def _help_offers(text: str) -> list[Any]:
    from ptycho_knobs.audit.spec import _OFFER, parse_value

    return [v for v in (parse_value(m) for m in _OFFER.findall(text or "")) if isinstance(v, (int, float))]


def _offer_line(layer: Layer, value: Any) -> int:
    """The line of the help text that offers `value` (a flag's help spans several lines)."""
    st = layer.stmt
    if layer.kind != "flag" or st is None or st.detail_at is None or layer.file is None:
        return layer.line
    try:
        lines = layer.file.path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return layer.line
    value = layer.spelled(value)
    token = repr(value) if not isinstance(value, str) else value
    for n in range(st.detail_at.line, st.detail_at.end_line + 1):
        if 0 < n <= len(lines) and token in lines[n - 1]:
            return n
    return layer.line


def _choices_edit(knob: Knob, at: Layer, values: list[Any]) -> tuple[Edit, ...]:
    """A set-choices edit when the offer is an argparse `choices=` the registry can settle."""
    st = at.stmt
    if at.kind != "flag" or st is None or st.choices_at is None or at.file is None:
        return ()
    wanted = knob.constraints.choices
    if wanted is None:
        from ptycho_knobs.typelang import LiteralOf, base_scalar

        base = base_scalar(knob.type)
        wanted = tuple(base.values) if isinstance(base, LiteralOf) else None
    if wanted is None:
        return ()
    if at.alias is not None:  # the flag's dest is a `values` field alias: its choices are spelled that way
        spelled = tuple(at.spelled(v) for v in wanted)
    else:
        table = next((a.values for a in knob.cli_aliases if a.flag in st.owner.split(",") and a.values), ())
        back = {repr(mine): given for given, mine in table}
        spelled = tuple(back.get(repr(v), v) for v in wanted)
    return (Edit("set-choices", at.path, st.choices_at, knob.name, spelled),)


def _join(items: Iterable[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
