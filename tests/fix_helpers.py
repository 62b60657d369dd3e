"""Shared by the `fix` tests: a scratch tree with the rule examples' registry plus `configs`,
and `fix_text`, which runs the audit and the fix engine on one file (like LibCST's
`assertCodemod`: source before, source after)."""

from __future__ import annotations

import os
from pathlib import Path

from ptycho_knobs.audit.examples import EXAMPLE_REGISTRY
from ptycho_knobs.audit.findings import Edit, Finding, Range

EXAMPLE = "ptycho_torch/example.py"

CONFIGS = """\
configs:
  - {class: PyTorchExecutionConfig, file: ptycho/config/config.py, vars: [execution_config, exec_cfg]}
  - {class: TrainingConfig, file: ptycho_torch/config_params.py, vars: [training_config]}
"""

# quiet's real field is enable_progress_bar, inverted (as in the project's registry)
REGISTRY = EXAMPLE_REGISTRY.replace("knobs:\n", CONFIGS + "knobs:\n", 1).replace(
    "    purpose: Hide the progress bar.\n",
    "    purpose: Hide the progress bar.\n    field_aliases: [{name: enable_progress_bar, invert: true}]\n", 1)

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
