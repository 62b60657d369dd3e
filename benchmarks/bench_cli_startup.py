"""Start-up time of the light verbs against `python -c "import click, yaml, jinja2"`.

Runs each command N times as a subprocess, interleaved (so drift in machine load hits
every command alike), and prints the median wall time and its ratio to the baseline.
Targets: `--help` at most 1.5x the baseline; `generate --check` with nothing stale at most
1.5x (each command runs once, untimed, first: its cache is warm, as on a developer's machine).

It measures twice, because where Python's bytecode comes from changes the picture:
  PYTHONDONTWRITEBYTECODE=1  this package's __pycache__ folders are removed first, so its
                             modules compile from source on every start (as in a checkout
                             where that variable is set; installed libraries keep theirs)
  bytecode written           the variable is unset, so __pycache__ is written once and reused

    python benchmarks/bench_cli_startup.py [N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BASELINE = "baseline: import click, yaml, jinja2"
COMMANDS = {
    BASELINE: [PY, "-c", "import click, yaml, jinja2"],
    "ptycho-knobs --help": [PY, "-m", "ptycho_knobs", "--help"],
    "ptycho-knobs knobs list": [PY, "-m", "ptycho_knobs", "knobs", "list"],
    "ptycho-knobs generate --check": [PY, "-m", "ptycho_knobs", "generate", "--check"],
}
OWN_CODE = ("ptycho_knobs", "generated", "templates")


def drop_own_bytecode() -> None:
    for folder in OWN_CODE:
        for cache in (ROOT / folder).rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)


def measure(n: int, env: dict[str, str]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():  # warm-up: caches filled, bytecode written if allowed
        subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    for _ in range(n):
        for name, argv in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            times[name].append(time.perf_counter() - start)
    return times


def report(title: str, n: int, times: dict[str, list[float]]) -> None:
    base = statistics.median(times[BASELINE])
    print(f"{title}: median of {n} runs each (interleaved), python {sys.version.split()[0]}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:<40} {median * 1000:7.1f} ms  {median / base:5.2f}x")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    check = subprocess.run(COMMANDS["ptycho-knobs generate --check"], cwd=ROOT, capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit(f"generate --check is not clean here (exit {check.returncode}); the target is for nothing stale:\n"
                 f"{check.stdout[-2000:]}{check.stderr[-2000:]}")
    drop_own_bytecode()
    no_write = measure(n, {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    report("PYTHONDONTWRITEBYTECODE=1 (own modules compiled on every start)", n, no_write)
    written = measure(n, {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    report("bytecode written (__pycache__ reused)", n, written)


if __name__ == "__main__":
    main()
