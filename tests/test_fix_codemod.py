"""`fix` per edit kind, source before and after (like LibCST's `assertCodemod`).

use-config edits come from the real audit (PK001 emits them); set-literal and set-choices
edits are built here at exact ranges, as the audit's rules will attach them.
"""

from __future__ import annotations

import pytest
from fix_helpers import EXAMPLE, fix_text, literal_range, reasons

from ptycho_knobs.audit.findings import Edit

HEAD = (
    "from typing import Optional\n"
    "import lightning as L\n"
    "from lightning.pytorch.callbacks import EarlyStopping\n"
    "from ptycho.config.config import PyTorchExecutionConfig\n"
)


def check(tmp_path, before: str, after: str, **kw):
    got, plan = fix_text(tmp_path, HEAD + before, **kw)
    assert got == HEAD + after
    return plan


# -- use-config ------------------------------------------------------------------------------


def test_parameter_annotated_with_the_class(tmp_path):
    check(tmp_path,
          "def build(cfg: PyTorchExecutionConfig):\n"
          "    return EarlyStopping('val_loss', patience=100)  # keep this comment\n",
          "def build(cfg: PyTorchExecutionConfig):\n"
          "    return EarlyStopping('val_loss', patience=cfg.early_stop_patience)  # keep this comment\n")


def test_every_other_byte_is_kept(tmp_path):
    before = ("def build(cfg: PyTorchExecutionConfig):\n"
              "    trainer = L.Trainer(\n"
              "        max_epochs = 3 ,   # spacing as it was\n"
              "        check_val_every_n_epoch = ( 1 ),  # parentheses too\n"
              "\n"
              "        # a comment line\n"
              "    )\n"
              "    return trainer\n")
    after = before.replace("( 1 )", "( cfg.check_val_every_n_epoch )")
    check(tmp_path, before, after)


def test_string_and_optional_annotation_with_a_guard_first(tmp_path):
    check(tmp_path,
          "def build(cfg: 'Optional[PyTorchExecutionConfig]' = None):\n"
          "    if cfg is None:\n"
          "        cfg = PyTorchExecutionConfig()\n"
          "    return L.Trainer(check_val_every_n_epoch=1)\n",
          "def build(cfg: 'Optional[PyTorchExecutionConfig]' = None):\n"
          "    if cfg is None:\n"
          "        cfg = PyTorchExecutionConfig()\n"
          "    return L.Trainer(check_val_every_n_epoch=cfg.check_val_every_n_epoch)\n")


def test_default_none_built_after_the_call_is_not_in_scope(tmp_path):
    before = ("def main(data, execution_config=None):\n"
              "    stop = EarlyStopping(monitor='val_loss', patience=100)\n"
              "    if execution_config is None:\n"
              "        execution_config = PyTorchExecutionConfig(num_workers=0)\n"
              "    return L.Trainer(callbacks=[stop], check_val_every_n_epoch=1)\n")
    after = before.replace("check_val_every_n_epoch=1", "check_val_every_n_epoch=execution_config.check_val_every_n_epoch")
    plan = check(tmp_path, before, after)
    assert reasons(plan) == [(6, "maybe-none", "execution_config defaults to None at line 5 and is built only at line 8")]


def test_inside_if_not_none_and_after_raise_guard(tmp_path):
    check(tmp_path,
          "def a(cfg: Optional[PyTorchExecutionConfig] = None):\n"
          "    if cfg is not None:\n"
          "        L.Trainer(check_val_every_n_epoch=1)\n"
          "def b(cfg: Optional[PyTorchExecutionConfig] = None):\n"
          "    if cfg is None:\n"
          "        raise ValueError('need a config')\n"
          "    L.Trainer(check_val_every_n_epoch=1)\n",
          "def a(cfg: Optional[PyTorchExecutionConfig] = None):\n"
          "    if cfg is not None:\n"
          "        L.Trainer(check_val_every_n_epoch=cfg.check_val_every_n_epoch)\n"
          "def b(cfg: Optional[PyTorchExecutionConfig] = None):\n"
          "    if cfg is None:\n"
          "        raise ValueError('need a config')\n"
          "    L.Trainer(check_val_every_n_epoch=cfg.check_val_every_n_epoch)\n")


def test_self_attribute_assigned_from_a_typed_parameter(tmp_path):
    check(tmp_path,
          "class Tuner:\n"
          "    def __init__(self, execution_config: PyTorchExecutionConfig):\n"
          "        self.cfg = execution_config\n"
          "    def fit(self):\n"
          "        return L.Trainer(check_val_every_n_epoch=1)\n",
          "class Tuner:\n"
          "    def __init__(self, execution_config: PyTorchExecutionConfig):\n"
          "        self.cfg = execution_config\n"
          "    def fit(self):\n"
          "        return L.Trainer(check_val_every_n_epoch=self.cfg.check_val_every_n_epoch)\n")


def test_self_attribute_that_may_be_none_is_not_used(tmp_path):
    before = ("class Tuner:\n"
              "    def __init__(self, execution_config=None):\n"
              "        self.cfg = execution_config\n"
              "    def fit(self):\n"
              "        return L.Trainer(check_val_every_n_epoch=1)\n")
    plan = check(tmp_path, before, before)
    assert [r[1] for r in reasons(plan)] == ["maybe-none"]


def test_local_from_the_constructor_and_a_conventional_name(tmp_path):
    check(tmp_path,
          "def a():\n"
          "    conf = PyTorchExecutionConfig(accelerator='cpu')\n"
          "    return L.Trainer(check_val_every_n_epoch=1)\n"
          "def b(exec_cfg):\n"
          "    return L.Trainer(check_val_every_n_epoch=2)\n",
          "def a():\n"
          "    conf = PyTorchExecutionConfig(accelerator='cpu')\n"
          "    return L.Trainer(check_val_every_n_epoch=conf.check_val_every_n_epoch)\n"
          "def b(exec_cfg):\n"
          "    return L.Trainer(check_val_every_n_epoch=exec_cfg.check_val_every_n_epoch)\n")


def test_a_local_bound_on_one_branch_only_is_not_used(tmp_path):
    before = ("def a(flag):\n"
              "    if flag:\n"
              "        conf = PyTorchExecutionConfig()\n"
              "    return L.Trainer(check_val_every_n_epoch=1)\n"
              "def b(flag):\n"
              "    if flag:\n"
              "        conf = PyTorchExecutionConfig(num_workers=1)\n"
              "    else:\n"
              "        conf = PyTorchExecutionConfig()\n"
              "    return L.Trainer(check_val_every_n_epoch=1)\n")
    after = before[:before.rindex("=1)")] + "=conf.check_val_every_n_epoch)\n"
    plan = check(tmp_path, before, after)
    assert [r[1] for r in reasons(plan)] == ["maybe-none"]


def test_a_name_ever_set_to_none_or_to_something_else_is_not_used(tmp_path):
    before = ("def a():\n"
              "    conf = PyTorchExecutionConfig()\n"
              "    conf = None\n"
              "    return L.Trainer(check_val_every_n_epoch=1)\n"
              "def b(execution_config: dict):\n"
              "    return L.Trainer(check_val_every_n_epoch=1)\n")
    plan = check(tmp_path, before, before)
    assert [r[1] for r in reasons(plan)] == ["maybe-none", "no-object"]


def test_module_level_object(tmp_path):
    check(tmp_path,
          "cfg = PyTorchExecutionConfig()\n"
          "trainer = L.Trainer(check_val_every_n_epoch=1)\n",
          "cfg = PyTorchExecutionConfig()\n"
          "trainer = L.Trainer(check_val_every_n_epoch=cfg.check_val_every_n_epoch)\n")


def test_class_recognised_by_qualified_name_not_by_spelling(tmp_path):
    before = ("from ptycho.config import config as pc\n"
              "from elsewhere import PyTorchExecutionConfig as Other\n"
              "def a(c: pc.PyTorchExecutionConfig):\n"
              "    return L.Trainer(check_val_every_n_epoch=1)\n"
              "def b(c: Other):\n"
              "    return L.Trainer(check_val_every_n_epoch=1)\n")
    after = before.replace("=1)", "=c.check_val_every_n_epoch)", 1)
    plan = check(tmp_path, before, after)
    assert [r[1] for r in reasons(plan)] == ["no-object"]


def test_prefers_the_object_the_statement_already_uses(tmp_path):
    check(tmp_path,
          "def a(first: PyTorchExecutionConfig, second: PyTorchExecutionConfig):\n"
          "    return L.Trainer(max_epochs=second.epochs, check_val_every_n_epoch=1)\n",
          "def a(first: PyTorchExecutionConfig, second: PyTorchExecutionConfig):\n"
          "    return L.Trainer(max_epochs=second.epochs, check_val_every_n_epoch=second.check_val_every_n_epoch)\n")


def test_inverted_knob_through_an_inverted_field_cancels(tmp_path):
    # quiet's real field is enable_progress_bar (inverted); Trainer(enable_progress_bar=) is too
    check(tmp_path,
          "def a(cfg: PyTorchExecutionConfig):\n"
          "    return L.Trainer(enable_progress_bar=True)\n",
          "def a(cfg: PyTorchExecutionConfig):\n"
          "    return L.Trainer(enable_progress_bar=cfg.enable_progress_bar)\n")


def test_inverted_knob_through_a_plain_field_gets_not(tmp_path):
    registry_exec = ("from dataclasses import dataclass\n@dataclass\nclass PyTorchExecutionConfig:\n"
                     "    quiet: bool = False\n")
    got, plan = fix_text(tmp_path, HEAD + "def a(cfg: PyTorchExecutionConfig):\n"
                         "    return L.Trainer(enable_progress_bar=True)\n",
                         files={"ptycho/config/config.py": registry_exec})
    assert got.endswith("    return L.Trainer(enable_progress_bar=not cfg.quiet)\n")


def test_field_source_class_wins_and_its_field_name_is_used(tmp_path):
    # num_workers: `field: TrainingConfig.num_workers` (a `configs` class) carries it
    check(tmp_path,
          "from torch.utils.data import DataLoader\n"
          "from ptycho_torch.config_params import TrainingConfig\n"
          "def loader(ds, training_config: TrainingConfig):\n"
          "    return DataLoader(ds, num_workers=0, pin_memory=True)\n",
          "from torch.utils.data import DataLoader\n"
          "from ptycho_torch.config_params import TrainingConfig\n"
          "def loader(ds, training_config: TrainingConfig):\n"
          "    return DataLoader(ds, num_workers=training_config.num_workers, pin_memory=True)\n")


def test_no_object_says_where_to_thread_one_and_no_field_says_which(tmp_path):
    before = ("from lightning.pytorch.strategies import DDPStrategy\n"
              "def build_callbacks():\n"
              "    return [EarlyStopping('val_loss', patience=100)]\n"
              "def strategy(cfg: PyTorchExecutionConfig):\n"
              "    return DDPStrategy(process_group_backend='gloo')\n")
    plan = check(tmp_path, before, before)
    assert reasons(plan) == [
        (7, "no-object", f"build_callbacks() at {EXAMPLE}:6 has no PyTorchExecutionConfig"),
        (9, "no-field", "PyTorchExecutionConfig (ptycho/config/config.py) has no ddp_backend / process_group_backend"),
    ]


def test_kwargs_dict_item(tmp_path):
    check(tmp_path,
          "from lightning.pytorch.strategies import DDPStrategy\n"
          "def strategy(cfg: PyTorchExecutionConfig):\n"
          "    kwargs = dict(static_graph=cfg.x)\n"
          "    kwargs['find_unused_parameters'] = False\n"
          "    return DDPStrategy(**kwargs)\n",
          "from lightning.pytorch.strategies import DDPStrategy\n"
          "def strategy(cfg: PyTorchExecutionConfig):\n"
          "    kwargs = dict(static_graph=cfg.x)\n"
          "    kwargs['find_unused_parameters'] = cfg.ddp_find_unused_parameters\n"
          "    return DDPStrategy(**kwargs)\n")


def test_lambda_and_comprehension_see_the_function_but_not_their_own_shadows(tmp_path):
    before = ("def a(cfg: PyTorchExecutionConfig):\n"
              "    make = lambda: L.Trainer(check_val_every_n_epoch=1)\n"
              "    other = [L.Trainer(check_val_every_n_epoch=1) for cfg in range(2)]\n"
              "    return make, other\n")
    after = before.replace("=1)\n", "=cfg.check_val_every_n_epoch)\n", 1)
    check(tmp_path, before, after)


# -- set-literal --------------------------------------------------------------------------


LITERALS = [
    # (old literal, registry value, new literal)
    ("50", 100, "100"),
    ("100_000", 50000, "50_000"),
    ("1e-4", 0.001, "1e-3"),
    ("1E+09", 1e8, "1E+08"),
    ("2.5e-3", 0.0001, "1e-4"),
    ("1.0e-3", 0.01, "1.0e-2"),
    ("4.", 8, "8."),
    ("4.0", 2, "2.0"),
    (".5", 0.25, ".25"),
    ("0.5", 1, "1.0"),
    ("1", 0.001, "0.001"),
    ("0x10", 32, "0x20"),
    ("-1", 5, "5"),
    ("5", -1, "-1"),
    ("'Default'", "default", "'default'"),
    ('"nccl"', "gloo", '"gloo"'),
    ("'it'", "it's", "'it\\'s'"),
    ('r"a\\b"', "c\\d", 'r"c\\d"'),
    ("'1e-3'", 0.0001, "'1e-4'"),
    ("'50'", 100, "'100'"),
    ("None", 4, "4"),
    ("True", False, "False"),
    ("'csv'", None, "None"),
    ("[1, 2]", [3, 4, 5], "[3, 4, 5]"),
]


@pytest.mark.parametrize(("old", "value", "new"), LITERALS, ids=[f"{o}->{n}" for o, _, n in LITERALS])
def test_set_literal_keeps_the_style(tmp_path, old, value, new):
    before = f"from dataclasses import dataclass\n@dataclass\nclass TrainingConfig:\n    x: object = {old}  # why\n"
    at = literal_range(before, old)
    after, plan = fix_text(tmp_path, before, edits=[Edit("set-literal", EXAMPLE, at, "x", value=value)])
    assert after == before.replace(f"= {old}", f"= {new}")
    assert len(plan.fixed) == 1


def test_set_literal_inverted_bool_and_argparse_default(tmp_path):
    before = ("import argparse\np = argparse.ArgumentParser()\n"
              "p.add_argument('--progress', type=bool, default=False, help='show it')\n")
    edit = Edit("set-literal", EXAMPLE, literal_range(before, "False"), "quiet", value=False, invert=True)
    after, _ = fix_text(tmp_path, before, edits=[edit])
    assert after == before.replace("default=False", "default=True")


def test_set_literal_that_already_reads_the_value_is_left(tmp_path):
    before = "X = 1e-3\n"
    edit = Edit("set-literal", EXAMPLE, literal_range(before, "1e-3"), "learning_rate", value=0.001)
    after, plan = fix_text(tmp_path, before, edits=[edit])
    assert after == before and [r[1] for r in reasons(plan)] == ["unchanged"]


# -- set-choices --------------------------------------------------------------------------


CHOICES = [
    ("['a', 'b']", ("x", "y", "z"), "['x', 'y', 'z']"),
    ('("a", "b", "c")', ("a", "c"), '("a", "c")'),
    ("('a', 'b')", ("b",), "('b',)"),
    ("['cpu']", ("cpu", "gpu"), "['cpu', 'gpu']"),
    ("{1, 2}", (1, 2, 4), "{1, 2, 4}"),
    ("[\n    'a',  # first\n    'b',  # second\n]", ("b", "c"),
     "[\n    'b',  # second\n    'c',\n]"),
    ("[\n    'a',  # first\n    'b'  # second\n]", ("c", "a", "b"),
     "[\n    'c',\n    'a',  # first\n    'b'  # second\n]"),
]


@pytest.mark.parametrize(("old", "value", "new"), CHOICES, ids=[f"choices-{i}" for i in range(len(CHOICES))])
def test_set_choices_keeps_brackets_quotes_and_layout(tmp_path, old, value, new):
    before = f"import argparse\np = argparse.ArgumentParser()\np.add_argument('--x', choices={old}, default='a')\n"
    edit = Edit("set-choices", EXAMPLE, literal_range(before, old), "x", value=value)
    after, plan = fix_text(tmp_path, before, edits=[edit])
    assert after == before.replace(old, new)
    assert len(plan.fixed) == 1


# -- several edits --------------------------------------------------------------------------


def test_use_config_wins_over_set_literal_on_the_same_literal(tmp_path):
    before = HEAD + "def a(cfg: PyTorchExecutionConfig):\n    return EarlyStopping('val_loss', patience=50)\n"
    at = literal_range(before, "50")
    from fix_helpers import edit_finding

    from ptycho_knobs.audit.findings import Finding
    use = Finding(EXAMPLE, at.line, at.col, at.line, "PK001", "hardcoded-knob", "early_stop_patience", "x",
                  edits=(Edit("use-config", EXAMPLE, at, "early_stop_patience", config_class="PyTorchExecutionConfig",
                              attr="early_stop_patience"),))
    drift = edit_finding(Edit("set-literal", EXAMPLE, at, "early_stop_patience", value=100))
    from ptycho_knobs.fix.engine import plan_fixes
    from ptycho_knobs.registry import load_registry

    fix_text(tmp_path, before)  # writes the tree
    reg = load_registry(tmp_path / "knob_registry.yaml")
    path = tmp_path / EXAMPLE
    plan = plan_fixes([drift, use], reg, {EXAMPLE: (path, path.read_bytes())}, [tmp_path / "ptycho_torch"])
    assert {f.code for f, _ in plan.fixed} == {"PK001", "PK002"}
    assert plan.files[EXAMPLE].new.decode().endswith("patience=cfg.early_stop_patience)\n")


# -- positions ---------------------------------------------------------------------------------


def test_non_ascii_and_tabs_before_the_literal(tmp_path):
    check(tmp_path,
          "def build(cfg: PyTorchExecutionConfig):\n"
          "\treturn EarlyStopping('vål_løss', patience=100)\n",
          "def build(cfg: PyTorchExecutionConfig):\n"
          "\treturn EarlyStopping('vål_løss', patience=cfg.early_stop_patience)\n")


def test_where_names_the_def_line_of_a_decorated_function(tmp_path):
    # with and without a config class mentioned (libcst and the ast prescreen say the same)
    before = ("import functools\n"
              "@functools.lru_cache\n"
              "def a():\n"
              "    return EarlyStopping('val_loss', patience=100)\n"
              "@functools.lru_cache\n"
              "def b(x: int):\n"
              "    PyTorchExecutionConfig\n"
              "    return EarlyStopping('val_loss', patience=100)\n")
    plan = check(tmp_path, before, before)
    assert [r[2] for r in reasons(plan)] == [f"a() at {EXAMPLE}:7 has no PyTorchExecutionConfig",
                                             f"b() at {EXAMPLE}:10 has no PyTorchExecutionConfig"]


def test_self_attribute_used_in_init_before_it_is_set(tmp_path):
    before = ("class Tuner:\n"
              "    def __init__(self, execution_config: PyTorchExecutionConfig):\n"
              "        self.trainer = L.Trainer(check_val_every_n_epoch=1)\n"
              "        self.cfg = execution_config\n"
              "        self.again = L.Trainer(check_val_every_n_epoch=1)\n")
    after = before.replace("again = L.Trainer(check_val_every_n_epoch=1)",
                           "again = L.Trainer(check_val_every_n_epoch=execution_config.check_val_every_n_epoch)")
    after = after.replace("trainer = L.Trainer(check_val_every_n_epoch=1)",
                          "trainer = L.Trainer(check_val_every_n_epoch=execution_config.check_val_every_n_epoch)")
    check(tmp_path, before, after)


def test_defaults_through_or_and_conditional_expressions(tmp_path):
    before = ("class Tuner:\n"
              "    def __init__(self, execution_config: Optional[PyTorchExecutionConfig] = None):\n"
              "        self.cfg = execution_config or PyTorchExecutionConfig()\n"
              "    def fit(self):\n"
              "        return L.Trainer(check_val_every_n_epoch=1)\n"
              "def a(execution_config=None):\n"
              "    conf = PyTorchExecutionConfig() if execution_config is None else execution_config\n"
              "    return L.Trainer(check_val_every_n_epoch=1)\n"
              "def b(execution_config=None, other=None):\n"
              "    conf = other or PyTorchExecutionConfig()\n"
              "    return L.Trainer(check_val_every_n_epoch=1)\n")
    after = before.replace("=1)", "=self.cfg.check_val_every_n_epoch)", 1).replace(
        "=1)", "=conf.check_val_every_n_epoch)", 1)
    plan = check(tmp_path, before, after)
    assert [r[0] for r in reasons(plan)] == [15]  # `other` may hold anything


def test_a_deleted_name_is_not_used(tmp_path):
    before = ("def a(cfg: PyTorchExecutionConfig):\n"
              "    del cfg\n"
              "    return L.Trainer(check_val_every_n_epoch=1)\n")
    check(tmp_path, before, before)


@pytest.mark.parametrize(("attr", "invert", "expected"), [
    ("quiet", True, "cfg.enable_progress_bar"),  # the generated home class and knob name: the keyword's own sense
    ("enable_progress_bar", False, "cfg.enable_progress_bar"),  # the real field, its inversion folded in
    ("enable_progress_bar", True, "not cfg.enable_progress_bar"),
])
def test_an_edit_may_name_the_generated_or_the_real_field(tmp_path, attr, invert, expected):
    before = HEAD + "def a(cfg: PyTorchExecutionConfig):\n    return L.Trainer(enable_progress_bar=True)\n"
    at = literal_range(before, "True")
    edit = Edit("use-config", EXAMPLE, at, "quiet", config_class="PyTorchExecutionConfig", attr=attr, invert=invert)
    after, _ = fix_text(tmp_path, before, edits=[edit])
    assert after == before.replace("=True)", f"={expected})")


def test_set_literal_none_only_where_the_annotation_admits_it(tmp_path):
    before = ("from dataclasses import dataclass\nfrom typing import Optional\n@dataclass\nclass TrainingConfig:\n"
              "    device: str = 'cuda'\n    other: Optional[str] = 'cuda'\n    third: 'str | None' = 'cpu'\n")
    edits = [Edit("set-literal", EXAMPLE, literal_range(before, "'cuda'", n), "device", value=None) for n in (0, 1)]
    edits.append(Edit("set-literal", EXAMPLE, literal_range(before, "'cpu'"), "device", value=None))
    after, plan = fix_text(tmp_path, before, edits=edits)
    assert after == before.replace("Optional[str] = 'cuda'", "Optional[str] = None").replace("= 'cpu'", "= None")
    assert reasons(plan) == [(5, "unwritable", "None would contradict the field's annotation `str`")]


def test_set_literal_in_a_signature_default_and_a_method(tmp_path):
    before = ("class Tuner:\n"
              "    def fine_tune(self, experiment_name = 'old name'):\n"
              "        return experiment_name\n"
              "def split(data, val_split: float = 0.1):\n"
              "    return data\n")
    edits = [Edit("set-literal", EXAMPLE, literal_range(before, "'old name'"), "experiment_name", value="runs"),
             Edit("set-literal", EXAMPLE, literal_range(before, "0.1"), "val_split", value=0.05)]
    after, plan = fix_text(tmp_path, before, edits=edits)
    assert after == before.replace("'old name'", "'runs'").replace("0.1", "0.05")
