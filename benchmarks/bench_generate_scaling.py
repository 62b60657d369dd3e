"""`generate` time on a synthetic 5,000-knob registry against a 500-knob one.

Both registries are written to a temporary folder; each is loaded and rendered in
process (best of R runs, output into the temp folder). Target: linear, at most 12x.

    python benchmarks/bench_generate_scaling.py [R]
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

from ptycho_knobs.codegen.run import run_generate
from ptycho_knobs.registry import load_registry

CATEGORIES = ["lightning_trainer", "distributed", "data_loading", "checkpointing", "inference"]
HOMES = ["execution", "training", "datagen", "model", "workflow", "env"]
TYPES = [
    ("int", "4", "{min: 0}"),
    ("float", "0.5", "{exclusive_min: 0.0, max: 10.0}"),
    ("bool", "true", None),
    ("Optional[int]", "null", "{min: 1}"),
    ("Literal['a', 'b', 'c']", "b", None),
    ("str", "'x \"quoted\" \\\\ y'", None),
]


def synthetic_registry(n: int) -> str:
    lines = ["schema_version: 1", "knobs:"]
    for i in range(n):
        type_text, default, constraints = TYPES[i % len(TYPES)]
        name = f"knob_{i:05d}"
        lines += [
            f"  - name: {name}",
            f"    catalog_name: {name}",
            f"    aliases: [alias_{i:05d}]",
            f"    category: {CATEGORIES[i % len(CATEGORIES)]}",
            f"    home: {HOMES[(i // 7) % len(HOMES)]}",
            f"    type: \"{type_text}\"",
            f"    default: {default}",
            f"    purpose: Synthetic knob number {i}, with a \"quote\" and a | pipe.",
            f"    sources: [{{file: ptycho_torch/train.py, line: {i + 1}, callee: Trainer, keyword: k{i}}}]",
        ]
        if constraints:
            lines.append(f"    constraints: {constraints}")
        if i % 10 == 0 and type_text == "int":
            lines.append(f"    tf: {{field: TrainingConfig.tf_{i}, mapping: renamed, default: 4}}")
    return "\n".join(lines) + "\n"


def timed(folder: Path, n: int, repeats: int) -> tuple[float, float]:
    path = folder / f"reg_{n}" / "knob_registry.yaml"
    path.parent.mkdir()
    path.write_text(synthetic_registry(n), encoding="utf-8")
    best_load = best_total = float("inf")
    for _ in range(repeats):
        for child in (path.parent / "generated").glob("*"):
            child.unlink()
        start = time.perf_counter()
        registry = load_registry(path)
        loaded = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):
            run_generate(registry)
        done = time.perf_counter()
        best_load = min(best_load, loaded - start)
        best_total = min(best_total, done - start)
    return best_load, best_total


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as tmp:
        small = timed(Path(tmp), 500, repeats)
        large = timed(Path(tmp), 5000, repeats)
    print(f"best of {repeats}: load + render + write")
    print(f"  500 knobs   {small[1]:7.3f} s  (load {small[0]:.3f} s)")
    print(f"  5000 knobs  {large[1]:7.3f} s  (load {large[0]:.3f} s)")
    print(f"  ratio       {large[1] / small[1]:7.2f}x  (target <= 12x; load alone {large[0] / small[0]:.2f}x)")


if __name__ == "__main__":
    main()
