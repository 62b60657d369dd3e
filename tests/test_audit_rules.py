"""Every rule's VALID / INVALID examples, plus engine cases the examples do not cover."""

from __future__ import annotations

import pytest

from ptycho_knobs.audit.examples import run_example
from ptycho_knobs.audit.rule import Invalid, all_rules, iter_examples

EXAMPLES = list(iter_examples())


@pytest.mark.parametrize(("rule", "example"), [(r, e) for r, _, e in EXAMPLES], ids=[i for _, i, _ in EXAMPLES])
def test_rule_example(rule, example):
    findings = run_example(rule, example)
    if isinstance(example, Invalid):
        got = [(f.path, f.line, f.col, f.code, f.message) for f in findings]
        assert got == [(example.path, example.line, example.col, rule.CODE, example.message)]
    else:
        assert findings == [], [f"{f.line}:{f.col} {f.message}" for f in findings]


def test_every_rule_is_documented_and_has_examples():
    rules = all_rules()
    codes = [r.CODE for r in rules]
    assert codes == sorted(set(codes))
    for code in ("PK001", "PK002", "PK003", "PK004", "PK005", "PK006", "PK007", "PK900", "PK901"):
        rule = next(r for r in rules if r.CODE == code)
        assert rule.VALID and rule.INVALID, code
    for rule in rules:
        doc = rule.__doc__ or ""
        for part in ("**What.**", "**Why.**", "**Example.**", "**Use instead.**"):
            assert part in doc, (rule.CODE, part)


def test_rules_reference_lists_every_rule():
    from ptycho_knobs.audit.docs import render_rules_reference

    text = render_rules_reference()
    for rule in all_rules():
        assert f"## {rule.CODE} {rule.NAME}" in text
    assert text == render_rules_reference()  # deterministic, so generate --check is stable


def _scan(code: str, registry_text: str | None = None):
    import tempfile
    from pathlib import Path

    from ptycho_knobs.audit.callees import watch_set
    from ptycho_knobs.audit.engine import needs_for
    from ptycho_knobs.audit.examples import EXAMPLE_REGISTRY
    from ptycho_knobs.audit.scanner import scan_source
    from ptycho_knobs.registry import load_registry

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "knob_registry.yaml"
        path.write_text(registry_text or EXAMPLE_REGISTRY)
        registry = load_registry(path)
    watch = watch_set(registry).with_subclasses([code.encode()])
    return scan_source(code.encode(), watch, needs_for(registry))


@pytest.mark.parametrize("code", [
    "import lightning as L\nL.Trainer(max_epochs=3)\n",
    "import pytorch_lightning as pl\npl.Trainer(max_epochs=3)\n",
    "from lightning.pytorch import Trainer\nTrainer(max_epochs=3)\n",
    "from lightning.pytorch import Trainer as T\nT(max_epochs=3)\n",
    "import lightning\nlightning.pytorch.Trainer(max_epochs=3)\n",
    "def f():\n    import lightning as L\n    return L.Trainer(max_epochs=3)\n",
])
def test_import_aliases_resolve(code):
    facts = _scan(code)
    assert [(c.callee, [a.keyword for a in c.args]) for c in facts.calls] == [("Trainer", ["max_epochs"])]


def test_unrelated_same_name_is_not_watched():
    facts = _scan("from mylib import Trainer\nTrainer(max_epochs=3)\n")
    assert facts.calls == ()


def test_subclass_of_watched_class_is_watched_with_base_positionals():
    code = ("from torch.utils.data import DataLoader\nclass Fast(DataLoader):\n    pass\n"
            "class Faster(Fast):\n    pass\nFaster(ds, 8, True)\n")
    facts = _scan(code)
    (call,) = facts.calls
    assert call.callee == "DataLoader"
    assert [(a.keyword, a.value) for a in call.args][1:] == [("batch_size", 8), ("shuffle", True)]


def test_literal_evaluation():
    from ptycho_knobs.audit.findings import NOT_LITERAL

    code = ("import lightning as L\nL.Trainer(a=-1, b=1e-3, c=2 * 8, d=None, e='x', f=(1, 2), g=cfg.x, "
            "h=f'{x}', i=not True)\n")
    (call,) = _scan(code).calls
    values = {a.keyword: a.value for a in call.args}
    assert values == {"a": -1, "b": 0.001, "c": 16, "d": None, "e": "x", "f": (1, 2), "g": NOT_LITERAL,
                      "h": NOT_LITERAL, "i": False}


def test_normalised_comparison():
    from ptycho_knobs.audit.index import same

    assert same(1e-3, 0.001) and same([1, 2], (1, 2)) and not same(True, 1) and not same("Default", "default")
