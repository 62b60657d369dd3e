"""Hostile YAML, in the registry and in run.yaml: alias bombs, recursive aliases, deep
nesting and values the safe constructor cannot build are located errors (exit 2) found in
bounded memory, never a traceback. Ordinary anchors and merges still load.

Memory is what the tests bound, because it is deterministic: an expanded depth-6 bomb takes
about 800 MB, a refused one a few MB. How fast the refusal comes is timed in
`benchmarks/bench_yaml_bomb.py`, not here, so a loaded CI machine cannot fail the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from ptycho_knobs import yamlpos
from ptycho_knobs.errors import RegistryError, RunConfigError
from ptycho_knobs.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]


def bomb(depth: int, key: str = "extra", indent: str = "") -> str:
    """The billion laughs in YAML: 9**depth strings from a few hundred bytes."""
    lines = [f'{indent}{key}:', f'{indent}  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghijk"[: depth - 1]:
        lines.append(f"{indent}  {name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "\n".join(lines) + "\n"


# A few MB is what loading the shipped registry itself takes; an expansion the budget let
# through would be hundreds of MB (9**6 nodes and up).
MEMORY_BOUND = 32 * 2**20
E = TypeVar("E", bound=Exception)


def refused(load: Callable[[], object], error: type[E]) -> E:
    """The `error` that `load` raised, after checking its peak allocation stayed bounded."""
    tracemalloc.start()
    try:
        with pytest.raises(error) as info:
            load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"peak {peak / 2**20:.0f} MiB while refusing"
    return info.value


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PTYCHO_KNOBS_")}
    # The timeout only stops a hang from stalling the suite; an unbounded bomb never returns.
    proc = subprocess.run([sys.executable, "-m", "ptycho_knobs", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("depth", [6, 8, 10])
@pytest.mark.parametrize("where", ["top-level key", "inside a knob"])
def test_an_alias_bomb_in_the_registry_is_refused_fast(tmp_path: Path, depth: int, where: str) -> None:
    text = (ROOT / "knob_registry.yaml").read_text()
    if where == "top-level key":
        payload = bomb(depth)
        text = payload + text
        first = 1
    else:  # under a knob's purpose-like field, which validation would only reach after expansion
        at = text.index("  - name: ")
        payload = bomb(depth, key="parity_notes", indent="    ")
        head = text[:at]
        knob_start = text.index("\n", at) + 1
        text = head + text[at:knob_start] + payload + text[knob_start:]
        first = head.count("\n") + 2
    registry = tmp_path / "knob_registry.yaml"
    registry.write_text(text)
    assert len(payload) < 1200
    err = refused(lambda: load_registry(registry), RegistryError)
    assert "YAML aliases expand this value to" in err.message and "alias bomb" in err.message
    assert first < err.line <= first + depth, (err.line, first)  # the anchored line that blows up
    for args in (("knobs", "list"), ("generate", "--check"), ("audit", ".")):
        proc = run(tmp_path, *args)
        assert proc.returncode == 2 and f"knob_registry.yaml:{err.line}:" in proc.stderr, proc.stderr


def test_an_alias_bomb_in_run_yaml_is_refused_fast(tmp_path: Path) -> None:
    payload = bomb(9, key="data_args")
    config = tmp_path / "run.yaml"
    config.write_text("epochs: 1\n" + payload)
    assert "alias bomb" in refused(lambda: yamlpos.load(config, RunConfigError), RunConfigError).message
    proc = run(ROOT, "train", "--config", str(config), "--dry-run")
    assert proc.returncode == 2 and "run.yaml:" in proc.stderr and "alias bomb" in proc.stderr


@pytest.mark.parametrize(("text", "line", "message"), [
    ("schema_version: 1\nknobs: &k [*k]\n", 2, "refers to the value that contains it"),
    ("schema_version: 1\nknobs:\n  - &m {name: x, again: *m}\n", 3, "refers to the value that contains it"),
    ("schema_version: 1\nx: &m\n  <<: *m\n", 2, "refers to the value that contains it"),
    ("schema_version: 1\nknobs: " + "[" * 150 + "]" * 150 + "\n", 2, "nested more than 100 levels deep"),
    ("schema_version: 1\nknobs: " + "1" * 5000 + "\n", 2, "unsupported YAML value"),
    ("schema_version: 1\nknobs: 2020-13-45\n", 2, "unsupported YAML value"),
    ("schema_version: 1\n? " + "9" * 5000 + "\n: 1\n", 2, "unsupported YAML value"),
])
def test_other_hostile_yaml_is_a_located_error(tmp_path: Path, text: str, line: int, message: str) -> None:
    registry = tmp_path / "knob_registry.yaml"
    registry.write_text(text)
    with pytest.raises(RegistryError) as info:
        load_registry(registry)
    assert info.value.line == line and message in info.value.message, info.value.render()
    proc = run(tmp_path, "knobs", "list")
    assert proc.returncode == 2 and f"knob_registry.yaml:{line}:" in proc.stderr and message in proc.stderr


def test_ordinary_anchors_and_merges_still_load(tmp_path: Path) -> None:
    text = (ROOT / "knob_registry.yaml").read_text()
    text = text.replace("schema_version: 1\n", "schema_version: 1\n", 1)
    anchored = text.replace("    category: lightning_trainer\n", "    category: &lt lightning_trainer\n", 1)
    anchored = anchored.replace("    category: lightning_trainer\n", "    category: *lt\n")
    registry = tmp_path / "knob_registry.yaml"
    registry.write_text(anchored)
    assert load_registry(registry).knobs == load_registry(ROOT / "knob_registry.yaml").knobs
    node = yamlpos.loads("base: &b {x: 1, y: [1, 2]}\nuse:\n  <<: *b\n  z: 3\n", "m.yaml", RegistryError)
    assert node is not None and node.plain() == {"base": {"x": 1, "y": [1, 2]}, "use": {"x": 1, "y": [1, 2], "z": 3}}


def test_the_tag_message_names_the_kind_of_file(tmp_path: Path) -> None:
    text = "schema_version: 1\nknobs: !!python/object:os.PathLike {a: 1}\n"
    with pytest.raises(RegistryError) as registry_error:
        yamlpos.loads(text, "knob_registry.yaml", RegistryError)
    assert "registries are loaded safely" in registry_error.value.message
    with pytest.raises(RunConfigError) as run_error:
        yamlpos.loads("data_args: !!python/object:os.PathLike {a: 1}\n", "run.yaml", RunConfigError)
    assert "run files are loaded safely" in run_error.value.message
