"""How fast a YAML alias bomb in the registry is refused, against loading the registry itself.

The alias budget measures a bomb's expanded size without expanding it, so refusing a bomb
of any depth should cost about what composing the file costs. Unbounded, a depth-6 bomb took
12.8 s and 819 MB and depth 8 did not finish. Target: each refusal within 2x of a plain load
of the shipped registry (the bomb sits in front of that same text).

The tests bound the memory of the refusal (deterministic); this is where its time lives.

    python benchmarks/bench_yaml_bomb.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ptycho_knobs.errors import RegistryError  # noqa: E402
from ptycho_knobs.registry import load_registry  # noqa: E402


def bomb(depth: int) -> str:
    """The billion laughs: 9**depth strings from a few hundred bytes."""
    lines = ["extra:", '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghijk"[: depth - 1]:
        lines.append(f"  {name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
        prev = name
    return "\n".join(lines) + "\n"


def median_seconds(path: Path, n: int, refused: bool) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        try:
            load_registry(path)
        except RegistryError:
            if not refused:
                raise
        else:
            if refused:
                raise SystemExit(f"{path.name} loaded: the alias budget let a bomb through")
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    text = (ROOT / "knob_registry.yaml").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "plain" / "knob_registry.yaml"
        plain.parent.mkdir()
        plain.write_text(text)
        load_registry(plain)  # imports and first-use costs out of the timings
        base = median_seconds(plain, n, refused=False)
        print(f"median of {n} loads each, python {sys.version.split()[0]}")
        print(f"  {'shipped registry (baseline)':<32} {base * 1e3:8.1f} ms  1.00x")
        for depth in (6, 8, 10):
            path = Path(tmp) / f"depth{depth}" / "knob_registry.yaml"
            path.parent.mkdir()
            path.write_text(bomb(depth) + text)
            seconds = median_seconds(path, n, refused=True)
            print(f"  {f'alias bomb, depth {depth} (9**{depth})':<32} {seconds * 1e3:8.1f} ms  {seconds / base:.2f}x")


if __name__ == "__main__":
    main()
