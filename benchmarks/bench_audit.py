"""Benchmark `ptycho-knobs audit` on the installed lightning package against an ast.parse floor.

Every figure is whole-process wall time of a subprocess, the way a user or CI runs it:
  floor: `python -c` that ast.parses every .py file of the tree
  cold:  `ptycho-knobs audit <tree> --format json` with a fresh, empty cache dir
  warm:  the same command again: answered by the whole-run fast path (ptycho_knobs.fastpath),
         which replays the cold run's stdout, stderr and exit code byte for byte
Targets (issue 5): cold/floor <= 2.0, warm/floor <= 0.25. Median of --repeat runs.
The tool's own bytecode is compiled first, as `pip install` does for a wheel: with
PYTHONDONTWRITEBYTECODE set (as on CI images) an editable checkout would otherwise compile
its modules from source on every run, which no installed user pays.

    python benchmarks/bench_audit.py [--repeat 5] [--tree PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = """\
import ast, os, sys
for folder, _, files in os.walk(sys.argv[1]):
    for name in files:
        if name.endswith('.py'):
            with open(os.path.join(folder, name), 'rb') as fh:
                ast.parse(fh.read())
"""


def lightning_tree() -> Path:
    spec = importlib.util.find_spec("lightning")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        sys.exit("lightning is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    return time.perf_counter() - start, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=None)
    args = parser.parse_args()
    tree = args.tree or lightning_tree()
    exe = shutil.which("ptycho-knobs", path=str(Path(sys.executable).parent)) or "ptycho-knobs"
    files = sum(1 for _ in tree.rglob("*.py"))
    lines = sum(p.read_bytes().count(b"\n") for p in tree.rglob("*.py"))
    env = dict(os.environ)
    package = Path(importlib.util.find_spec("ptycho_knobs").origin).parent  # type: ignore[arg-type, union-attr]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    registry = ROOT / "knob_registry.yaml"
    cmd = [exe, "--registry", str(registry), "audit", str(tree), "--format", "json"]

    floors, colds, warms = [], [], []
    last = cold_proc = None
    verdict = ""
    for _ in range(args.repeat):
        floors.append(timed([sys.executable, "-c", FLOOR, str(tree)], env)[0])
        with tempfile.TemporaryDirectory(prefix="pk-bench-") as cache:
            env["PTYCHO_KNOBS_CACHE_DIR"] = cache
            t, cold_proc = timed(cmd, env)
            if cold_proc.returncode not in (0, 1):
                sys.exit(f"audit failed ({cold_proc.returncode}):\n{cold_proc.stderr}")
            colds.append(t)
            t, last = timed(cmd, env)
            warms.append(t)
            if (last.returncode, last.stdout, last.stderr) != (cold_proc.returncode, cold_proc.stdout, cold_proc.stderr):
                sys.exit("warm run differs from the cold run")
            debug = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                   env={**env, "PTYCHO_KNOBS_DEBUG_FASTPATH": "1"})  # untimed
            verdict = debug.stderr.splitlines()[0]
        env.pop("PTYCHO_KNOBS_CACHE_DIR")
    floor, cold, warm = (statistics.median(x) for x in (floors, colds, warms))
    assert last is not None and cold_proc is not None
    stats = re.search(r"(\d+) files: (\d+) parsed, (\d+) from cache, (\d+) skipped", cold_proc.stderr)
    print(f"tree: {tree} ({files} files, {lines} lines); registry: {registry.name}; cores: {os.cpu_count()}")
    print(f"ptycho_knobs bytecode: compiled first, as pip does at install ({package})")
    print(f"floor (ast.parse every file): {floor:.3f} s")
    print(f"cold audit (empty cache):     {cold:.3f} s   cold/floor = {cold / floor:.2f}  (target <= 2.0)")
    print(f"warm audit (cached):          {warm:.3f} s   warm/floor = {warm / floor:.2f}  (target <= 0.25)")
    if stats:
        total, parsed, _, skipped = map(int, stats.groups())
        print(f"pre-filter (cold): {parsed} files parsed, {skipped} skipped, of {total}")
    print(f"warm: {verdict} (stdout, stderr and exit code identical to the cold run)")
    print(f"summary: {last.stderr.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
