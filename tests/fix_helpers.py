"""Shared by the `fix` tests: a scratch tree with a small registry of its own (`configs` included),
and `fix_text`, which runs the audit and the fix engine on one file (like LibCST's
`assertCodemod`: source before, source after)."""

from __future__ import annotations

import os
from pathlib import Path

from ptycho_knobs.audit.findings import Edit, Finding, Range

EXAMPLE = "ptycho_torch/example.py"

# The tests' own registry (not the rule examples', which follow the rules): watched callees,
# the `configs` classes of the scratch tree, and the knobs the tests hard-code.
REGISTRY = """\
schema_version: 1
callees:
  Trainer:
    qualified: [lightning.pytorch.Trainer, lightning.Trainer, pytorch_lightning.Trainer]
  EarlyStopping:
    qualified: [lightning.pytorch.callbacks.EarlyStopping, pytorch_lightning.callbacks.EarlyStopping]
    positional: [monitor, min_delta, patience]
  DDPStrategy:
    qualified: [lightning.pytorch.strategies.DDPStrategy]
  DataLoader:
    qualified: [torch.utils.data.DataLoader]
    positional: [dataset, batch_size, shuffle]
configs:
  - {class: PyTorchExecutionConfig, file: ptycho/config/config.py, vars: [execution_config, exec_cfg]}
  - {class: TrainingConfig, file: ptycho_torch/config_params.py, vars: [training_config]}
knobs:
  - name: early_stop_patience
    catalog_name: patience
    category: checkpointing
    home: execution
    type: int
    default: 100
    purpose: Epochs without improvement before stopping.
    target: EarlyStopping.patience
  - name: check_val_every_n_epoch
    catalog_name: check_val_every_n_epoch
    category: lightning_trainer
    home: execution
    type: int
    default: 1
    purpose: Validate every N epochs.
    target: Trainer.check_val_every_n_epoch
  - name: quiet
    catalog_name: enable_progress_bar
    category: lightning_trainer
    home: execution
    type: bool
    default: false
    purpose: Hide the progress bar.
    field_aliases: [{name: enable_progress_bar, invert: true}]
    target: [{path: Trainer.enable_progress_bar, invert: true}]
  - name: ddp_backend
    catalog_name: process_group_backend
    category: distributed
    home: execution
    type: Literal['nccl', 'gloo']
    default: nccl
    purpose: DDP backend.
    target: DDPStrategy.process_group_backend
  - name: ddp_find_unused_parameters
    catalog_name: find_unused_parameters
    category: distributed
    home: execution
    type: bool
    default: false
    purpose: Find unused parameters.
    target: DDPStrategy.find_unused_parameters
  - name: pin_memory
    catalog_name: pin_memory
    category: data_loading
    home: execution
    type: bool
    default: true
    purpose: Pin host memory.
    target: DataLoader.pin_memory
  - name: num_workers
    catalog_name: num_workers
    category: data_loading
    home: training
    type: int
    default: 4
    purpose: Loader worker processes.
    sources:
      - {file: ptycho_torch/config_params.py, line: 6, field: TrainingConfig.num_workers}
    target: DataLoader.num_workers
"""

EXEC_CONFIG = '''\
from dataclasses import dataclass
from typing import Optional


@dataclass
class PyTorchExecutionConfig:
    early_stop_patience: int = 100
    enable_progress_bar: bool = False
    check_val_every_n_epoch: int = 1
    pin_memory: bool = True
    ddp_find_unused_parameters: bool = False
'''

TRAINING_CONFIG = '''\
from dataclasses import dataclass


@dataclass
class TrainingConfig:
    num_workers: int = 4
    n_devices: int = 1
'''


def make_tree(root: Path, source: str | bytes | None = None, files: dict[str, str] | None = None,
              registry: str = REGISTRY) -> Path:
    (root / "ptycho" / "config").mkdir(parents=True, exist_ok=True)
    (root / "ptycho_torch").mkdir(parents=True, exist_ok=True)
    (root / "knob_registry.yaml").write_text(registry, encoding="utf-8")
    (root / "ptycho" / "config" / "config.py").write_text(EXEC_CONFIG, encoding="utf-8")
    (root / "ptycho_torch" / "config_params.py").write_text(TRAINING_CONFIG, encoding="utf-8")
    if source is not None:
        target = root / EXAMPLE
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            target.write_text(source, encoding="utf-8")
    for name, text in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def literal_range(source: str, needle: str, nth: int = 0) -> Range:
    """The exact range of the `nth` occurrence of `needle` in `source` (1-based, end exclusive)."""
    at = -1
    for _ in range(nth + 1):
        at = source.index(needle, at + 1)
    line = source.count("\n", 0, at) + 1
    col = at - (source.rfind("\n", 0, at) + 1) + 1
    end = at + len(needle)
    end_line = source.count("\n", 0, end) + 1
    end_col = end - (source.rfind("\n", 0, end) + 1) + 1
    return Range(line, col, end_line, end_col)


def edit_finding(edit: Edit, code: str = "PK002") -> Finding:
    return Finding(edit.path, edit.at.line, edit.at.col, edit.at.end_line, code, "default-drift", edit.knob,
                   f"[{edit.knob}] drift", edits=(edit,))


def splice(text: str, changes: list) -> str:
    """`text` with each change's range replaced by its new text (what SARIF replacements say)."""
    lines = text.split("\n")
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln) + 1)
    out = text
    for c in sorted(changes, key=lambda c: (c.at.line, c.at.col), reverse=True):
        start = offsets[c.at.line - 1] + c.at.col - 1
        end = offsets[c.at.end_line - 1] + c.at.end_col - 1
        assert out[start:end] == c.old, (out[start:end], c.old)
        out = out[:start] + c.new + out[end:]
    return out


def fix_text(root: Path, source: str | None = None, *, select: tuple[str, ...] = ("PK001",),
             edits: list[Edit] | None = None, files: dict[str, str] | None = None,
             registry: str = REGISTRY):
    """(the example file after fixing, the plan). Findings come from the audit, or are
    built around `edits` (for edit kinds the rules do not emit yet)."""
    from ptycho_knobs.audit.engine import Options, run_audit
    from ptycho_knobs.audit.files import prefetch, walk_and_read
    from ptycho_knobs.fix.engine import plan_fixes
    from ptycho_knobs.registry import load_registry

    make_tree(root, source, files, registry)
    here = os.getcwd()
    os.chdir(root)
    try:
        reg = load_registry(root / "knob_registry.yaml")
        entries, roots = walk_and_read(["ptycho_torch"])
        prefetch(["ptycho_torch"], entries, roots)
        data = {e.shown: (e.path, e.data) for e in entries if e.data is not None}
        result = run_audit(["ptycho_torch"], reg, Options(select=select, cache=False, jobs=1))
        findings = result.findings if edits is None else [edit_finding(e) for e in edits]
        plan = plan_fixes(findings, reg, data, roots)
    finally:
        os.chdir(here)
    before = (root / EXAMPLE).read_bytes().decode("utf-8")
    changed = plan.files.get(EXAMPLE)
    after = changed.new.decode("utf-8") if changed and changed.new is not None else before
    if changed:
        assert splice(before, changed.changes) == after  # the changes say exactly what differs
        compile(after, EXAMPLE, "exec")
    return after, plan


def reasons(plan) -> list[tuple[int, str, str]]:
    return sorted((f.line, r.kind, r.detail) for f, r in plan.left)
