"""Clear errors instead of wrong ones: non-ASCII knob names, contradictory constraints,
unusable coding declarations; and no import cycle between the fast path, the CLI and the
audit command."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ptycho_knobs.errors import RegistryError
from ptycho_knobs.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "audit_project"


def registry_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "knob_registry.yaml").read_text()
    assert old in text
    path = tmp_path / "knob_registry.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_a_non_ascii_identifier_is_refused_as_not_ascii(tmp_path: Path) -> None:
    assert "époques".isidentifier()
    path = registry_with(tmp_path, "  - name: epochs\n", "  - name: époques\n")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert info.value.line == line_of(path, "name: époques")
    assert "must be an ASCII Python identifier" in info.value.message


@pytest.mark.parametrize(("bounds", "clash"), [
    ("min: 10, max: 1", "min 10 is not below max 1"),
    ("exclusive_min: 3, max: 3", "exclusive_min 3 is not below max 3"),
    ("min: 0, exclusive_max: 0", "min 0 is not below exclusive_max 0"),
])
def test_contradictory_constraints_are_reported_as_such(tmp_path: Path, bounds: str, clash: str) -> None:
    text = (ROOT / "knob_registry.yaml").read_text()
    start = text.index("  - name: num_workers\n")
    end = text.index("\n  - name: ", start + 1)
    knob = text[start:end]
    assert "    constraints: {min: 0}\n" in knob
    path = tmp_path / "knob_registry.yaml"
    path.write_text(text[:start] + knob.replace("{min: 0}", f"{{{bounds}}}") + text[end:])
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert "constraints contradict each other" in info.value.message and clash in info.value.message
    assert "default" not in info.value.message
    assert info.value.line == line_of(path, f"constraints: {{{bounds}}}")


def test_a_default_outside_sane_constraints_is_still_a_bad_default(tmp_path: Path) -> None:
    path = tmp_path / "knob_registry.yaml"
    shutil.copy(Path(__file__).parent / "fixtures" / "registry_errors" / "default_outside_constraints.yaml", path)
    with pytest.raises(RegistryError, match="breaks its own constraint"):
        load_registry(path)


def test_a_utf16_coding_declaration_is_reported_as_what_it_is(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE, root)
    # Both mention a watched call, so the pre-filter sends them to the scanner.
    (root / "ptycho_torch" / "wide.py").write_bytes(b"# -*- coding: utf-16 -*-\nt = Trainer(max_epochs=3)\n")
    (root / "ptycho_torch" / "bad_ascii.py").write_bytes(b"# coding: ascii\nname = 'caf\xc3\xa9'\nt = Trainer()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTYCHO_KNOBS_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    proc = subprocess.run([sys.executable, "-m", "ptycho_knobs", "audit", "ptycho_torch/"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert ("ptycho_torch/wide.py:1:1: PK900 coding declaration 'utf-16' cannot be used for Python source"
            in proc.stdout), proc.stdout
    assert "ptycho_torch/bad_ascii.py:2:12: PK900 not valid ascii text" in proc.stdout, proc.stdout
    assert "UTF-8" not in "".join(line for line in proc.stdout.splitlines() if "wide.py" in line)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every ptycho_knobs module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)  # a module imported by name (importlib.import_module)
    return {m for m in found if m in modules}


def test_no_import_cycle_through_the_fast_path_the_cli_or_the_audit_command() -> None:
    package = ROOT / "ptycho_knobs"
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in package.rglob("*.py")}
    graph = {name: _imports(path, set(files)) - {name} for name, path in files.items()}
    for start in ("ptycho_knobs.fastpath", "ptycho_knobs.cli", "ptycho_knobs.audit.command"):
        seen, todo = set(), list(graph[start])
        while todo:
            name = todo.pop()
            assert name != start, f"{start} imports itself through {sorted(seen)}"
            if name not in seen:
                seen.add(name)
                todo.extend(graph.get(name, ()))
